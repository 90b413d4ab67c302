"""Table API ``/ws/schema/table/{t}`` for the extension tables (e.g. ``u_students_extension``).

Core tables answer 405 [sandbox choice], unknown tables 404, unknown columns 400 (checked before
the fidelity policy's grants). Every column named in ``projection``, ``q``, ``sort`` or a body needs
a grant (ViewOnly to read, FullAccess to write); ``projection=*`` means the columns the plugin may
read; a DELETE needs FullAccess on every column. Values travel as strings.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request, Response

from .db import EXTENSION_KEY, next_id
from .plugin import NO_ACCESS
from .util import ApiError, JsonBody, as_string, base_url, enforce, fiql_to_sql, message, page_window, state

CORE_TABLES = {
    "students", "teachers", "schools", "users", "schoolstaff", "cc", "sections", "courses", "terms",
    "attendance", "storedgrades", "person", "emailaddress", "personemailaddressassoc", "phonenumber",
    "personphonenumberassoc", "personaddress", "personaddressassoc", "studentcontactassoc",
    "studentcontactdetail", "pcas_account", "pcas_emailcontact", "guardian", "guardianpersonassoc",
    "guardianstudent", "codeset", "gen", "prefs", "reenrollments",
}

router = APIRouter(prefix="/ws/schema/table")


def _table(request: Request, name: str) -> list[str]:
    """All columns of extension table ``name`` (404 unknown, 405 core)."""
    name = name.lower()
    if name in CORE_TABLES:
        raise ApiError(405, {"message": f"Table {name} is a core table and cannot be accessed through the "
                                        "table API; use the /ws/v1 resources or a PowerQuery"})
    cols = state(request).db.extensions.get(name)
    if cols is None:
        raise message(404, f"Table {name} not found")
    return ["id", EXTENSION_KEY, *cols]


def _invalid(col: str, table: str) -> ApiError:
    return message(400, f"Invalid field specified: {col} is not valid column for table {table}")


def _columns(raw: str, table: str, all_cols: list[str], request: Request | None = None) -> list[str]:
    """The named columns (400 for an unknown one); ``*`` is every column the plugin may read."""
    names = [c.strip().lower() for c in raw.split(",") if c.strip()]
    if names == ["*"]:
        if request is None:
            return list(all_cols)
        policy = state(request).policy
        return [c for c in all_cols if policy.column_access(table, c) != NO_ACCESS]
    for col in names:
        if col not in all_cols:
            raise _invalid(col, table)
    return list(dict.fromkeys(names))


def _where(request: Request, table: str, all_cols: list[str]) -> tuple[str, list[Any], list[str]]:
    used: list[str] = []

    def resolve(field: str) -> str:
        col = field.lower().removeprefix(f"{table}.")
        if col not in all_cols:
            raise _invalid(field, table)
        used.append(col)
        return col
    where, params = fiql_to_sql(request.query_params.get("q", ""), resolve)
    return where, params, used


def _row_json(table: str, row: Any, cols: list[str]) -> dict[str, Any]:
    return {"id": row["id"], "name": table, "tables": {table: {c: as_string(row[c]) for c in cols}}}


@router.get("/{name}/count")
def count(name: str, request: Request) -> dict[str, int]:
    all_cols = _table(request, name)
    table = name.lower()
    where, params, used = _where(request, table, all_cols)
    sb = state(request)
    enforce(sb.policy.table_access(request, table, used, False))
    with sb.db.tx() as c:
        return {"count": c.execute(f"SELECT COUNT(*) FROM {table} WHERE {where}", params).fetchone()[0]}


@router.get("/{name}/metadata")
def metadata(name: str, request: Request) -> dict[str, Any]:
    all_cols = _table(request, name)
    table = name.lower()
    with_access = "access" in request.query_params.get("expansions", "").lower().split(",")
    columns = []
    for col in all_cols:
        entry: dict[str, Any] = {"name": col, "type": "Long" if col in ("id", EXTENSION_KEY) else "String"}
        if with_access:
            entry["access"] = state(request).policy.column_access(table, col)
        columns.append(entry)
    return {"name": table, "columns": columns}


@router.get("/{name}")
def list_rows(name: str, request: Request) -> dict[str, Any]:
    all_cols = _table(request, name)
    table = name.lower()
    qp = request.query_params
    if not qp.get("projection", "").strip():
        raise message(400, "projection is required (comma-separated columns, or *)")
    cols = _columns(qp["projection"], table, all_cols, request)
    where, params, used = _where(request, table, all_cols)
    sort_cols = _columns(qp.get("sort", "") or "id", table, all_cols)
    desc = " DESC" if qp.get("sortdescending", "").lower() == "true" else ""
    sb = state(request)
    sorted_by = sort_cols if qp.get("sort") else []
    enforce(sb.policy.table_access(request, table, list(dict.fromkeys(cols + used + sorted_by)), False))
    limit, offset = page_window(qp.get("page"), qp.get("pagesize"), sb.query_max_page_size)
    order = ", ".join(f"{c}{desc}" for c in sort_cols) + ("" if "id" in sort_cols else ", id")
    with sb.db.tx() as c:
        rows = c.execute(f"SELECT * FROM {table} WHERE {where} ORDER BY {order} LIMIT ? OFFSET ?",
                         [*params, limit, offset]).fetchall()
    return {"name": table, "record": [_row_json(table, r, cols) for r in rows]}


@router.get("/{name}/{row_id}")
def get_row(name: str, row_id: str, request: Request) -> dict[str, Any]:
    all_cols = _table(request, name)
    table = name.lower()
    cols = _columns(request.query_params.get("projection", "") or "*", table, all_cols, request)
    sb = state(request)
    enforce(sb.policy.table_access(request, table, cols, False))
    with sb.db.tx() as c:
        row = c.execute(f"SELECT * FROM {table} WHERE id = ?", (row_id,)).fetchone() if row_id.isdigit() else None
    if row is None:
        raise message(404, f"Record {row_id} not found in table {table}")
    return _row_json(table, row, cols)


def _values(body: Any, table: str, all_cols: list[str]) -> dict[str, str]:
    try:
        values = body["tables"][table]
        if not isinstance(values, dict):
            raise TypeError
    except (KeyError, TypeError):
        raise message(400, f'Body must be {{"tables":{{"{table}":{{...}}}}}}') from None
    out = {}
    for col, value in values.items():
        col = col.lower()
        if col not in all_cols:
            raise _invalid(col, table)
        if col != "id":
            out[col] = as_string(value)
    return out


def _result(request: Request, table: str, action: str, row_id: int) -> dict[str, Any]:
    return {"result": {"status": "SUCCESS", "action": action, "success_message": {
        "id": row_id, "ref": f"{base_url(request)}/ws/schema/table/{table}/{row_id}"}}}


def _check_parent(c: Any, table: str, values: dict[str, str], row_id: int | None) -> None:
    if EXTENSION_KEY not in values:
        return
    parent = values[EXTENSION_KEY]
    if not parent.isdigit() or not c.execute("SELECT 1 FROM students WHERE dcid = ?", (int(parent),)).fetchone():
        raise message(400, f"{EXTENSION_KEY} {parent!r} is not an existing student dcid")
    other = c.execute(f"SELECT id FROM {table} WHERE {EXTENSION_KEY} = ? AND id != ?",
                      (int(parent), row_id or -1)).fetchone()
    if other:
        raise message(400, f"Duplicate Error: {table} already has record {other['id']} for {EXTENSION_KEY} {parent}")


@router.post("/{name}")
def insert_row(name: str, request: Request, body: JsonBody = None) -> dict[str, Any]:
    all_cols = _table(request, name)
    table = name.lower()
    values = _values(body, table, all_cols)
    sb = state(request)
    enforce(sb.policy.table_access(request, table, list(values), True))
    if EXTENSION_KEY not in values:
        raise message(400, f"{EXTENSION_KEY} is required")
    with sb.db.tx() as c:
        _check_parent(c, table, values, None)
        row_id = next_id(c, table)
        cols = ["id", *values]
        c.execute(f"INSERT INTO {table} ({', '.join(cols)}) VALUES ({', '.join('?' * len(cols))})",
                  [row_id, *values.values()])
    return _result(request, table, "INSERT", row_id)


@router.put("/{name}/{row_id}")
def update_row(name: str, row_id: str, request: Request, body: JsonBody = None) -> dict[str, Any]:
    all_cols = _table(request, name)
    table = name.lower()
    values = _values(body, table, all_cols)
    sb = state(request)
    enforce(sb.policy.table_access(request, table, list(values), True))
    with sb.db.tx() as c:
        if not row_id.isdigit() or not c.execute(f"SELECT 1 FROM {table} WHERE id = ?", (row_id,)).fetchone():
            raise message(404, f"Record {row_id} not found in table {table}")
        _check_parent(c, table, values, int(row_id))
        if values:
            c.execute(f"UPDATE {table} SET {', '.join(f'{k} = ?' for k in values)} WHERE id = ?",
                      [*values.values(), int(row_id)])
    return _result(request, table, "UPDATE", int(row_id))


@router.delete("/{name}/{row_id}")
def delete_row(name: str, row_id: str, request: Request) -> Response:
    all_cols = _table(request, name)
    table = name.lower()
    sb = state(request)
    enforce(sb.policy.table_access(request, table, all_cols, True))  # a delete touches every column
    with sb.db.tx() as c:
        if not row_id.isdigit() or not c.execute(f"DELETE FROM {table} WHERE id = ?", (int(row_id),)).rowcount:
            raise message(404, f"Record {row_id} not found in table {table}")
    return Response(status_code=204)
