"""The one place that knows PowerSchool's reply shapes.

PowerSchool returns a list of one item as a bare object (``student``, ``result``, ``_table_extension``,
``_field``...), counts in two shapes, PowerQuery rows flattened or grouped by table, and write replies in
two dialects (v1 ``results`` and the contacts API's ``_success_message``). Everything here is pure.
If a real server turns out to differ from the sandbox, fix it here, not in callers.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import date, datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from .errors import FieldError, parse_field_errors

__all__ = [
    "as_list",
    "RecordResult",
    "ContactWriteResult",
    "read_v1_results",
    "read_contact_write",
    "read_created_id",
    "read_count",
    "read_metadata",
    "read_students",
    "read_student",
    "read_table_rows",
    "read_table_row",
    "read_powerquery_rows",
    "read_extension_tables",
    "build_extension_data",
    "encode_table_value",
    "encode_table_values",
]


def as_list(x: Any) -> list[Any]:
    """``None``/``""`` → ``[]``; a list stays; a bare object becomes ``[object]``."""
    if x is None or x == "":
        return []
    if isinstance(x, list):
        return x
    if isinstance(x, tuple):
        return list(x)
    return [x]


def _int_or_none(x: Any) -> int | None:
    if x is None or x == "":
        return None
    try:
        return int(x)
    except (TypeError, ValueError):
        return None


class RecordResult(BaseModel):
    """One record's outcome in a v1 batch write (``POST /ws/v1/student``)."""

    model_config = ConfigDict(frozen=True)

    client_uid: str | None = None
    status: str = ""
    action: str | None = None
    id: int | None = None
    errors: list[FieldError] = Field(default_factory=list)

    @property
    def ok(self) -> bool:
        return self.status.upper() == "SUCCESS"


class ContactWriteResult(BaseModel):
    """A contacts API write reply (``status``, ``_success_message``, ``_error_message``, ``savedObject``)."""

    status: str = ""
    action: str | None = None
    id: int | None = None
    ref: str | None = None
    errors: list[FieldError] = Field(default_factory=list)
    warnings: list[FieldError] = Field(default_factory=list)
    saved_object: dict[str, Any] | None = None

    @property
    def ok(self) -> bool:
        return self.status.upper() in ("SUCCESS", "") and not self.errors


def read_v1_results(body: Any) -> list[RecordResult]:
    """``{"results":{"result": {...} | [...]}}`` → list of :class:`RecordResult`."""
    if not isinstance(body, Mapping):
        return []
    results = body.get("results", body)
    if not isinstance(results, Mapping):
        return []
    out = []
    for r in as_list(results.get("result")):
        if not isinstance(r, Mapping):
            continue
        success = r.get("success_message") or {}
        rid = _int_or_none(success.get("id")) if isinstance(success, Mapping) else None
        if rid is None:
            rid = _int_or_none(r.get("id"))
        uid = r.get("client_uid")
        out.append(
            RecordResult(
                client_uid=None if uid is None else str(uid),
                status=str(r.get("status") or ""),
                action=r.get("action"),
                id=rid,
                errors=parse_field_errors(r),
            )
        )
    return out


def read_contact_write(body: Any) -> ContactWriteResult:
    """A contacts API write reply → :class:`ContactWriteResult` (tolerates an empty body)."""
    if not isinstance(body, Mapping):
        return ContactWriteResult()
    success = body.get("_success_message") or body.get("success_message") or {}
    warnings_block = body.get("_warning_message") or body.get("warning_message") or {}
    warnings: list[FieldError] = []
    if isinstance(warnings_block, Mapping):
        for w in as_list(warnings_block.get("warning") or warnings_block.get("error")):
            if isinstance(w, Mapping):
                warnings.append(
                    FieldError(
                        str(w.get("field") or ""),
                        str(w.get("warning_code") or w.get("error_code") or ""),
                        str(w.get("warning_description") or w.get("error_description") or ""),
                    )
                )
    saved = body.get("savedObject")
    return ContactWriteResult(
        status=str(body.get("status") or ""),
        action=body.get("action"),
        id=_int_or_none(success.get("id")) if isinstance(success, Mapping) else None,
        ref=success.get("ref") if isinstance(success, Mapping) else None,
        errors=parse_field_errors({"_error_message": body.get("_error_message")}),
        warnings=warnings,
        saved_object=saved if isinstance(saved, dict) else None,
    )


def read_created_id(body: Any) -> int | None:
    """The id of a created object from any write-reply dialect.

    Tries, in order: contacts ``_success_message.id``; v1/table ``result[0].success_message.id``
    (``result`` at the top or under ``results``); a bare ``id``.
    """
    if not isinstance(body, Mapping):
        return None
    for key in ("_success_message", "success_message"):
        block = body.get(key)
        if isinstance(block, Mapping) and _int_or_none(block.get("id")) is not None:
            return _int_or_none(block.get("id"))
    results = read_v1_results(body)
    for r in results:
        if r.id is not None:
            return r.id
    return _int_or_none(body.get("id"))


def read_count(body: Any) -> int:
    """``{"count":N}`` (table/PowerQuery) or ``{"resource":{"count":N}}`` (v1)."""
    if isinstance(body, Mapping):
        if "count" in body:
            return int(body["count"])
        res = body.get("resource")
        if isinstance(res, Mapping) and "count" in res:
            return int(res["count"])
    raise ValueError("reply has no count")


def read_metadata(body: Any) -> dict[str, Any]:
    """``{"metadata":{...}}`` → the inner dict."""
    if isinstance(body, Mapping):
        inner = body.get("metadata", body)
        if isinstance(inner, Mapping):
            return dict(inner)
    return {}


def read_students(body: Any) -> list[dict[str, Any]]:
    """``{"students":{"student": {...}|[...]}}`` → list of student dicts (empty page tolerated)."""
    if not isinstance(body, Mapping):
        return []
    students = body.get("students")
    if not isinstance(students, Mapping):
        return []
    return [s for s in as_list(students.get("student")) if isinstance(s, dict)]


def read_student(body: Any) -> dict[str, Any]:
    """``{"student":{...}}`` → the student dict."""
    if isinstance(body, Mapping) and isinstance(body.get("student"), dict):
        return body["student"]
    return dict(body) if isinstance(body, Mapping) else {}


def _table_values(record: Mapping[str, Any], table: str | None) -> dict[str, Any]:
    tables = record.get("tables")
    if not isinstance(tables, Mapping) or not tables:
        return {}
    if table is not None:
        for k, v in tables.items():
            if k.lower() == table.lower() and isinstance(v, Mapping):
                return dict(v)
    merged: dict[str, Any] = {}
    for v in tables.values():
        if isinstance(v, Mapping):
            merged.update(v)
    return merged


def read_table_row(body: Any, table: str | None = None) -> dict[str, Any]:
    """``{"id":1,"name":"t","tables":{"t":{...}}}`` → ``{"id": 1, **columns}``."""
    if not isinstance(body, Mapping):
        return {}
    row = _table_values(body, table or body.get("name"))
    if "id" in body and "id" not in row:
        row["id"] = body["id"]
    return row


def read_table_rows(body: Any, table: str | None = None) -> list[dict[str, Any]]:
    """A table API page ``{"name":"t","record":[...]|{...}}`` → list of flat rows with ``id``."""
    if not isinstance(body, Mapping):
        return []
    table = table or body.get("name")
    return [read_table_row(r, table) for r in as_list(body.get("record")) if isinstance(r, Mapping)]


def read_powerquery_rows(body: Any) -> list[dict[str, Any]]:
    """A PowerQuery page → rows keyed ``table.column``.

    Rows may come flattened (``{"students.dcid": "1"}``) or grouped by table
    (``{"tables": {"students": {"dcid": "1"}}}``); both end up flattened.
    """
    if not isinstance(body, Mapping):
        return []
    out = []
    for rec in as_list(body.get("record")):
        if not isinstance(rec, Mapping):
            continue
        tables = rec.get("tables")
        if isinstance(tables, Mapping):
            flat: dict[str, Any] = {k: v for k, v in rec.items() if k != "tables"}
            for t, cols in tables.items():
                if isinstance(cols, Mapping):
                    for c, v in cols.items():
                        flat[f"{t}.{c}"] = v
            out.append(flat)
        else:
            out.append(dict(rec))
    return out


def read_extension_tables(student: Mapping[str, Any]) -> dict[str, dict[str, Any]]:
    """A student's ``_extension_data`` → ``{table: {column: value}}`` (both one-item quirks handled)."""
    ext = student.get("_extension_data") if isinstance(student, Mapping) else None
    if not isinstance(ext, Mapping):
        return {}
    out: dict[str, dict[str, Any]] = {}
    for t in as_list(ext.get("_table_extension")):
        if not isinstance(t, Mapping) or not t.get("name"):
            continue
        cols = out.setdefault(str(t["name"]).lower(), {})
        for f in as_list(t.get("_field")):
            if isinstance(f, Mapping) and f.get("name"):
                cols[str(f["name"]).lower()] = f.get("value")
    return out


def build_extension_data(
    tables: Mapping[str, Mapping[str, Any]], record_found: Mapping[str, bool] | None = None
) -> dict[str, Any]:
    """``{table: {col: value}}`` → the ``_extension_data`` block of a v1 student update.

    Values are sent as strings (booleans "1"/"0", None ""). ``record_found`` says per table whether the
    extension row already exists (default False, which PowerSchool treats as insert-or-update).
    """
    record_found = record_found or {}
    blocks = []
    for name, cols in tables.items():
        blocks.append(
            {
                "name": name,
                "recordFound": bool(record_found.get(name, False)),
                "_field": [
                    {"name": col, "type": "String", "value": encode_table_value(val)}
                    for col, val in cols.items()
                ],
            }
        )
    return {"_table_extension": blocks}


def encode_table_value(v: Any) -> str:
    """Table API values are strings: booleans "1"/"0", None "", dates ISO."""
    if v is None:
        return ""
    if isinstance(v, bool):
        return "1" if v else "0"
    if isinstance(v, datetime | date):
        return v.isoformat()
    return str(v)


def encode_table_values(values: Mapping[str, Any]) -> dict[str, str]:
    return {k: encode_table_value(v) for k, v in values.items()}
