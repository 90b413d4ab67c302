"""``/ws/v1``: metadata, district students (list, count, single) and ``POST /ws/v1/student`` updates."""

from __future__ import annotations

import sqlite3
from typing import Any

from fastapi import APIRouter, Request

from .db import EXTENSION_KEY, Database
from .util import (
    JsonBody,
    as_list,
    as_string,
    base_url,
    enforce,
    fiql_to_sql,
    message,
    one_or_many,
    page_window,
    state,
    valid_date,
)

EXPANSIONS = ["demographics", "addresses", "alerts", "phones", "school_enrollment", "ethnicity_race",
              "contact", "contact_info", "initial_enrollment", "schedule_setup", "fees", "lunch"]

# FIQL fields on the student resource -> SQL columns
Q_FIELDS = {
    "id": "dcid", "dcid": "dcid", "local_id": "student_number", "student_number": "student_number",
    "name.first_name": "first_name", "name.middle_name": "middle_name", "name.last_name": "last_name",
    "demographics.gender": "gender", "demographics.birth_date": "dob",
    "school_enrollment.grade_level": "grade_level", "school_enrollment.school_id": "school_id",
    "family_ident": "family_ident",
}

router = APIRouter(prefix="/ws/v1")


def _guard(request: Request, write: bool = False) -> None:
    enforce(state(request).policy.v1_access(request, write))


@router.get("/metadata")
def metadata(request: Request) -> dict[str, Any]:
    _guard(request)
    sb = state(request)
    size = sb.max_page_size
    return {"metadata": {
        "student_max_page_size": size,
        "schema_table_query_max_page_size": sb.query_max_page_size,
        "school_max_page_size": size, "section_max_page_size": size, "staff_max_page_size": size,
        "course_max_page_size": size, "term_max_page_size": size, "event_max_page_size": size,
        "powerschool_version": "25.2.0.0 (sandbox)", "plugin_id": 1,
        "district_name": sb.db.district_info.get("name", ""),
    }}


# -- reading -------------------------------------------------------------------------------------------
def _local_id(student_number: str) -> int | str:
    """PowerSchool sends ``local_id`` as a number; keep a string when that would change it."""
    if student_number.isdigit() and not (len(student_number) > 1 and student_number.startswith("0")):
        return int(student_number)
    return student_number


def _requested(raw: str | None, allowed: list[str], what: str) -> list[str]:
    names = [n.strip().lower() for n in (raw or "").split(",") if n.strip()]
    for name in names:
        if name not in allowed:
            raise message(400, f"Invalid {what}: {name}")
    return names


def _extension_block(c: sqlite3.Connection, db: Database, dcid: int, names: list[str]) -> dict[str, Any]:
    blocks = []
    for name in names:
        cols = db.extensions[name]
        row = c.execute(f"SELECT * FROM {name} WHERE {EXTENSION_KEY} = ?", (dcid,)).fetchone()
        blocks.append({
            "name": name,
            "recordFound": row is not None,
            "_field": [{"name": col, "type": "String", "value": row[col]} for col in cols] if row else [],
        })
    return {"_table_extension": one_or_many(blocks)}


def student_json(c: sqlite3.Connection, db: Database, row: sqlite3.Row, expansions: list[str],
                 extensions: list[str]) -> dict[str, Any]:
    s: dict[str, Any] = {
        "id": row["dcid"],
        "local_id": _local_id(row["student_number"]),
        "student_username": "",
        "name": {"first_name": row["first_name"], "middle_name": row["middle_name"],
                 "last_name": row["last_name"]},
    }
    for name in expansions:
        if name == "demographics":
            s[name] = {"gender": row["gender"], "birth_date": row["dob"], "projected_graduation_year": 0,
                       "district_entry_date": ""}
        elif name == "addresses":
            s[name] = {
                "physical": {"street": row["street"], "city": row["city"], "state_province": row["state"],
                             "postal_code": row["zip"]},
                "mailing": {"street": row["mailing_street"], "city": row["mailing_city"],
                            "state_province": row["mailing_state"], "postal_code": row["mailing_zip"]},
            }
        elif name == "phones":
            s[name] = {"main": {"number": row["home_phone"]}}
        elif name == "contact_info":
            s[name] = {"email": row["email"], "home_phone": row["home_phone"]}
        elif name == "school_enrollment":
            s[name] = {"school_id": row["school_id"], "grade_level": row["grade_level"], "enroll_status": "A",
                       "enroll_status_description": "Active", "enroll_status_code": 0,
                       "entry_date": "", "exit_date": ""}
        elif name == "initial_enrollment":
            s[name] = {"district_entry_date": "", "school_entry_date": ""}
        else:
            s[name] = {}
    if extensions:
        s["_extension_data"] = _extension_block(c, db, row["dcid"], extensions)
    return s


def _q_column(field: str) -> str:
    if field.lower() not in Q_FIELDS:
        raise message(400, f"Invalid field specified in query: {field}")
    return Q_FIELDS[field.lower()]


@router.get("/district/student")
def list_students(request: Request) -> dict[str, Any]:
    _guard(request)
    sb = state(request)
    qp = request.query_params
    expansions = _requested(qp.get("expansions"), EXPANSIONS, "expansion")
    extensions = _requested(qp.get("extensions"), list(sb.db.extensions), "extension")
    limit, offset = page_window(qp.get("page"), qp.get("pagesize"), sb.max_page_size)
    where, params = fiql_to_sql(qp.get("q", ""), _q_column)
    with sb.db.tx() as c:
        rows = c.execute(f"SELECT * FROM students WHERE {where} ORDER BY dcid LIMIT ? OFFSET ?",
                         [*params, limit, offset]).fetchall()
        students = [student_json(c, sb.db, r, expansions, extensions) for r in rows]
    body: dict[str, Any] = {"@expansions": ", ".join(EXPANSIONS), "@extensions": ",".join(sb.db.extensions)}
    if students:  # [sandbox choice] an empty page has no "student" key at all
        body["student"] = one_or_many(students)
    return {"students": body}


@router.get("/district/student/count")
def count_students(request: Request) -> dict[str, Any]:
    _guard(request)
    sb = state(request)
    where, params = fiql_to_sql(request.query_params.get("q", ""), _q_column)
    with sb.db.tx() as c:
        n = c.execute(f"SELECT COUNT(*) FROM students WHERE {where}", params).fetchone()[0]
    return {"resource": {"count": n}}


@router.get("/student/{dcid}")
def get_student(dcid: str, request: Request) -> dict[str, Any]:
    _guard(request)
    sb = state(request)
    qp = request.query_params
    expansions = _requested(qp.get("expansions"), EXPANSIONS, "expansion")
    extensions = _requested(qp.get("extensions"), list(sb.db.extensions), "extension")
    with sb.db.tx() as c:
        row = c.execute("SELECT * FROM students WHERE dcid = ?", (dcid,)).fetchone() if dcid.isdigit() else None
        if row is None:
            raise message(404, f"Student {dcid} not found")
        s = student_json(c, sb.db, row, expansions, extensions)
    return {"student": {"@expansions": ", ".join(EXPANSIONS), "@extensions": ",".join(sb.db.extensions), **s}}


# -- writing -------------------------------------------------------------------------------------------
class RecordError(Exception):
    def __init__(self, errors: list[dict[str, str]]) -> None:
        super().__init__(errors)
        self.errors = errors


def _err(field: str, code: str, description: str) -> dict[str, str]:
    return {"field": field, "error_code": code, "error_description": description}


_NAME_FIELDS = {"first_name": "first_name", "middle_name": "middle_name", "last_name": "last_name"}
_DEMO_FIELDS = {"gender": "gender", "birth_date": "dob"}
_ADDRESS_FIELDS = ["street", "city", "state_province", "postal_code"]
_ADDRESS_COLUMNS = {
    "physical": {"street": "street", "city": "city", "state_province": "state", "postal_code": "zip"},
    "mailing": {"street": "mailing_street", "city": "mailing_city", "state_province": "mailing_state",
                "postal_code": "mailing_zip"},
}
_WRITABLE_TOP = {"client_uid", "action", "id", "local_id", "name", "demographics", "addresses", "contact_info",
                 "phones", "_extension_data", "@extensions", "@expansions"}


def _object(value: Any, field: str, errors: list[dict[str, str]]) -> dict[str, Any]:
    if value is None:
        return {}
    if not isinstance(value, dict):
        errors.append(_err(field, "INVALID_VALUE", f"{field} must be an object"))
        return {}
    return value


def _student_changes(rec: dict[str, Any], db: Database) -> tuple[dict[str, str], dict[str, dict[str, str]]]:
    """Validate one update record; return (student column -> value, extension table -> {col: value})."""
    errors: list[dict[str, str]] = []
    cols: dict[str, str] = {}
    for key in rec:
        if key not in _WRITABLE_TOP:
            errors.append(_err(key, "INVALID_FIELD", f"{key} is not writable through the student resource"))

    for key, value in _object(rec.get("name"), "name", errors).items():
        if key not in _NAME_FIELDS:
            errors.append(_err(f"name.{key}", "INVALID_FIELD", f"Unknown field name.{key}"))
            continue
        value = as_string(value).strip()
        if key in ("first_name", "last_name") and not value:
            errors.append(_err(f"name.{key}", "REQUIRED", f"name.{key} cannot be blank"))
        cols[_NAME_FIELDS[key]] = value

    for key, value in _object(rec.get("demographics"), "demographics", errors).items():
        if key not in _DEMO_FIELDS:
            errors.append(_err(f"demographics.{key}", "INVALID_FIELD", f"Unknown field demographics.{key}"))
            continue
        value = as_string(value).strip()
        if key == "gender" and value not in ("M", "F"):
            errors.append(_err("demographics.gender", "INVALID_VALUE", "gender must be M or F"))
        if key == "birth_date" and not valid_date(value):
            errors.append(_err("demographics.birth_date", "INVALID_FORMAT", "birth_date must be a YYYY-MM-DD date"))
        cols[_DEMO_FIELDS[key]] = value

    for kind, block in _object(rec.get("addresses"), "addresses", errors).items():
        if kind not in _ADDRESS_COLUMNS:
            errors.append(_err(f"addresses.{kind}", "INVALID_FIELD", f"Unknown address block {kind}"))
            continue
        block = _object(block, f"addresses.{kind}", errors)
        unknown = [k for k in block if k not in _ADDRESS_FIELDS]
        for k in unknown:
            errors.append(_err(f"addresses.{kind}.{k}", "INVALID_FIELD", f"Unknown field addresses.{kind}.{k}"))
        values = {k: as_string(block.get(k)).strip() for k in _ADDRESS_FIELDS}
        filled = [k for k in _ADDRESS_FIELDS if values[k]]
        if filled and (len(filled) < len(_ADDRESS_FIELDS) or any(k not in block for k in _ADDRESS_FIELDS)):
            missing = [k for k in _ADDRESS_FIELDS if not values[k]]
            errors.append(_err(f"addresses.{kind}", "INCOMPLETE_ADDRESS",
                               f"The {kind} address must have street, city, state_province and postal_code; "
                               f"missing {', '.join(missing)}"))
        if len(values["state_province"]) > 2:
            errors.append(_err(f"addresses.{kind}.state_province", "MAX_LENGTH", "state_province is at most 2 characters"))
        if len(values["postal_code"]) > 10:
            errors.append(_err(f"addresses.{kind}.postal_code", "MAX_LENGTH", "postal_code is at most 10 characters"))
        if not unknown:
            cols.update({_ADDRESS_COLUMNS[kind][k]: values[k] for k in _ADDRESS_FIELDS})

    phone_fields: list[tuple[str, Any]] = []
    for key, value in _object(rec.get("contact_info"), "contact_info", errors).items():
        if key == "home_phone":
            phone_fields.append(("contact_info.home_phone", value))
        elif key == "email":
            cols["email"] = as_string(value).strip()
        else:
            errors.append(_err(f"contact_info.{key}", "INVALID_FIELD", f"Unknown field contact_info.{key}"))
    for key, value in _object(rec.get("phones"), "phones", errors).items():
        if key == "main" and isinstance(value, dict) and set(value) <= {"number"}:
            phone_fields.append(("phones.main.number", value.get("number")))
        else:
            errors.append(_err(f"phones.{key}", "INVALID_FIELD", "Only phones.main.number is writable"))
    for field, value in phone_fields:
        value = as_string(value).strip()
        if len(value) > 30:
            errors.append(_err(field, "MAX_LENGTH", "phone numbers are at most 30 characters"))
        cols["home_phone"] = value

    ext_changes = _extension_changes(rec.get("_extension_data"), db, errors)
    if errors:
        raise RecordError(errors)
    return cols, ext_changes


def _extension_changes(data: Any, db: Database, errors: list[dict[str, str]]) -> dict[str, dict[str, str]]:
    changes: dict[str, dict[str, str]] = {}
    if data is None:
        return changes
    if not isinstance(data, dict):
        errors.append(_err("_extension_data", "INVALID_VALUE", "_extension_data must be an object"))
        return changes
    for table in as_list(data.get("_table_extension")):
        name = str((table or {}).get("name", "")).lower() if isinstance(table, dict) else ""
        if name not in db.extensions:
            errors.append(_err(f"_extension_data.{name}", "INVALID_FIELD", f"Unknown extension table {name!r}"))
            continue
        fields = changes.setdefault(name, {})
        for f in as_list(table.get("_field")):
            col = str((f or {}).get("name", "")).lower() if isinstance(f, dict) else ""
            if col not in db.extensions[name]:
                errors.append(_err(f"_extension_data.{name}.{col}", "INVALID_FIELD",
                                   f"Invalid field specified: {col} is not valid column for table {name}"))
                continue
            fields[col] = as_string(f.get("value"))
    return changes


def _apply(c: sqlite3.Connection, dcid: int, cols: dict[str, str], ext: dict[str, dict[str, str]]) -> None:
    if cols:
        c.execute(f"UPDATE students SET {', '.join(f'{k} = ?' for k in cols)} WHERE dcid = ?", [*cols.values(), dcid])
    for table, fields in ext.items():
        if not fields:
            continue
        found = c.execute(f"SELECT id FROM {table} WHERE {EXTENSION_KEY} = ?", (dcid,)).fetchone()
        if found:
            c.execute(f"UPDATE {table} SET {', '.join(f'{k} = ?' for k in fields)} WHERE id = ?",
                      [*fields.values(), found["id"]])
        else:
            names = [EXTENSION_KEY, *fields]
            c.execute(f"INSERT INTO {table} ({', '.join(names)}) VALUES ({', '.join('?' * len(names))})",
                      [dcid, *fields.values()])


@router.post("/student")
def post_students(request: Request, body: JsonBody = None) -> dict[str, Any]:
    _guard(request, write=True)
    sb = state(request)
    try:
        records = as_list(body["students"]["student"])
    except (KeyError, TypeError):
        raise message(400, 'Body must be {"students":{"student":[...]}}') from None
    results, updated = [], 0
    for rec in records:
        if not isinstance(rec, dict):
            raise message(400, "Each student record must be an object")
        action = str(rec.get("action", "")).upper()
        result: dict[str, Any] = {"client_uid": as_string(rec.get("client_uid")), "status": "SUCCESS",
                                  "action": action}
        try:
            if action != "UPDATE":
                raise RecordError([_err("action", "UNSUPPORTED_ACTION",
                                        f"action {action or '(missing)'} is not supported; use UPDATE")])
            dcid = rec.get("id")
            if isinstance(dcid, str) and dcid.isdigit():
                dcid = int(dcid)
            cols, ext = _student_changes(rec, sb.db)
            with sb.db.tx() as c:
                if not isinstance(dcid, int) or not c.execute(
                        "SELECT 1 FROM students WHERE dcid = ?", (dcid,)).fetchone():
                    raise RecordError([_err("id", "NOT_FOUND", f"No student with id {rec.get('id')!r}")])
                _apply(c, dcid, cols, ext)
            updated += 1
            result["success_message"] = {"id": dcid, "ref": f"{base_url(request)}/ws/v1/student/{dcid}"}
        except RecordError as exc:
            result["status"] = "ERROR"
            result["error_message"] = {"error": exc.errors}
        results.append(result)
    return {"results": {"insert_count": 0, "update_count": updated, "delete_count": 0,
                        "result": one_or_many(results)}}

