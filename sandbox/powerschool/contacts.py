"""``/ws/contacts``: contacts, their emails/phones/addresses, student links and details.

Write replies use the envelope ``status/action/_success_message/_error_message/savedObject``; a rule
violation is HTTP 400 (404 for an unknown id) with ``status: "ERROR"``. The rules live in
``contact_model``.

Plugin grants [sandbox choice]: reads need none; a write needs FullAccess on every column of the
PowerSchool tables behind the resource it changes (``WRITE_TABLES``, columns as the snapshot
PowerQueries name them), else 403 with the table API's NoAccess body, before anything is validated.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable
from typing import Any

from fastapi import APIRouter, Request, Response
from fastapi.responses import JSONResponse

from . import contact_model as m
from .powerquery import TABLE_COLUMNS
from .util import JsonBody, base_url, enforce, message, state

router = APIRouter(prefix="/ws/contacts")

WRITE_TABLES: dict[str, tuple[str, ...]] = {
    "person": ("person",),
    "emails": ("emailaddress", "personemailaddressassoc"),
    "phones": ("phonenumber", "personphonenumberassoc"),
    "addresses": ("personaddress", "personaddressassoc"),
    "students": ("studentcontactassoc", "studentcontactdetail"),
    "studentdetails": ("studentcontactdetail",),
}
ALL_CONTACT_TABLES = tuple(dict.fromkeys(t for tables in WRITE_TABLES.values() for t in tables))

WriteFn = Callable[[sqlite3.Connection, Any], tuple[int, str, Any]]


def _id(raw: str, what: str) -> int:
    if not raw.isdigit():
        raise message(404, f"{what} {raw!r} not found")
    return int(raw)


def _body(body: Any) -> dict[str, Any]:
    if not isinstance(body, dict):
        raise m.WriteError("body", "INVALID_VALUE", "The request body must be a JSON object")
    return body


def _write(request: Request, action: str, fn: WriteFn, tables: tuple[str, ...]) -> Response:
    """Check the grants on ``tables``, run ``fn(conn, sandbox) -> (id, ref path, savedObject)`` in one
    transaction and reply with the envelope."""
    sb = state(request)
    enforce(sb.policy.contacts_access(request, {t: TABLE_COLUMNS[t] for t in tables}))
    try:
        with sb.db.tx() as c:
            obj_id, ref, saved = fn(c, sb)
    except m.WriteError as exc:
        return JSONResponse({"status": "ERROR", "action": action, "_error_message": {"error": exc.errors}},
                            status_code=exc.status)
    reply: dict[str, Any] = {"status": "SUCCESS", "action": action,
                             "_success_message": {"id": obj_id, "ref": f"{base_url(request)}{ref}"}}
    if saved is not None:
        reply["savedObject"] = saved
    return JSONResponse(reply)


def _read(request: Request, fn: Callable[[sqlite3.Connection, Any], Any]) -> Any:
    sb = state(request)
    try:
        with sb.db.tx() as c:
            return fn(c, sb)
    except m.WriteError as exc:
        raise message(exc.status, exc.errors[0]["error_description"]) from None


def _contact(c: sqlite3.Connection, sb: Any, cid: int) -> dict[str, Any]:
    found = m.contacts_json(c, [cid], sb.today())
    if cid not in found:
        raise m.WriteError("contactId", "NOT_FOUND", f"Contact {cid} not found", 404)
    return found[cid]


def _link(c: sqlite3.Connection, sb: Any, cid: int, lid: int) -> dict[str, Any]:
    m.require_contact(c, cid)
    m.require_link(c, cid, lid)
    rows = c.execute(m.LINK_SELECT + " WHERE l.id = ?", (lid,)).fetchall()
    return m.links_json(c, rows, sb.today())[0]


# -- contacts --------------------------------------------------------------------------------------
@router.post("/contact")
def create_contact(request: Request, body: JsonBody = None) -> Response:
    def fn(c: sqlite3.Connection, sb: Any) -> tuple[int, str, Any]:
        cid = m.create_contact(c, _body(body), sb.db.codesets, sb.today())
        return cid, f"/ws/contacts/contact/{cid}", _contact(c, sb, cid)
    parts = {"emails": "emails", "phones": "phones", "addresses": "addresses", "contactStudents": "students"}
    sent = [part for key, part in parts.items() if isinstance(body, dict) and body.get(key)]
    return _write(request, "INSERT", fn, tuple(dict.fromkeys(t for p in ("person", *sent) for t in WRITE_TABLES[p])))


@router.get("/contact/{cid}")
def get_contact(cid: str, request: Request) -> Any:
    return _read(request, lambda c, sb: _contact(c, sb, _id(cid, "Contact")))


@router.get("/contacts")
def get_contacts(request: Request) -> Any:
    raw = request.query_params.get("contactids", "")
    ids = [int(x) for x in raw.split(",") if x.strip().isdigit()]
    if not ids:
        raise message(400, "contactids is required (comma-separated contact ids)")

    def fn(c: sqlite3.Connection, sb: Any) -> list[dict[str, Any]]:
        found = m.contacts_json(c, ids, sb.today())
        return [found[i] for i in dict.fromkeys(ids) if i in found]
    return _read(request, fn)


@router.get("/student/{dcid}")
def contacts_of_student(dcid: str, request: Request) -> Any:
    student = _id(dcid, "Student")

    def fn(c: sqlite3.Connection, sb: Any) -> list[dict[str, Any]]:
        if not c.execute("SELECT 1 FROM students WHERE dcid = ?", (student,)).fetchone():
            raise m.WriteError("dcid", "NOT_FOUND", f"Student {student} not found", 404)
        ids = [r["person_id"] for r in c.execute(
            "SELECT person_id FROM links WHERE student_dcid = ? ORDER BY sequence, id", (student,))]
        found = m.contacts_json(c, ids, sb.today())
        return [found[i] for i in ids if i in found]
    contacts = _read(request, fn)
    return contacts if contacts else Response(status_code=204)


@router.delete("/{cid}")
def delete_contact(cid: str, request: Request) -> Response:
    contact_id = _id(cid, "Contact")

    def fn(c: sqlite3.Connection, sb: Any) -> tuple[int, str, Any]:
        m.delete_contact(c, contact_id)
        return contact_id, f"/ws/contacts/contact/{contact_id}", None
    return _write(request, "DELETE", fn, ALL_CONTACT_TABLES)


@router.get("/{cid}/demographics")
def get_demographics(cid: str, request: Request) -> Any:
    return _read(request, lambda c, sb: m.demographics_json(m.require_contact(c, _id(cid, "Contact"))))


@router.put("/{cid}/demographics")
def put_demographics(cid: str, request: Request, body: JsonBody = None) -> Response:
    contact_id = _id(cid, "Contact")

    def fn(c: sqlite3.Connection, sb: Any) -> tuple[int, str, Any]:
        m.update_demographics(c, contact_id, _body(body))
        return contact_id, f"/ws/contacts/{contact_id}/demographics", m.demographics_json(
            m.require_contact(c, contact_id))
    return _write(request, "UPDATE", fn, WRITE_TABLES["person"])


# -- student links ---------------------------------------------------------------------------------
@router.get("/{cid}/students")
def list_links(cid: str, request: Request) -> Any:
    contact_id = _id(cid, "Contact")
    return _read(request, lambda c, sb: _contact(c, sb, contact_id)["contactStudents"])


@router.post("/{cid}/students")
def post_link(cid: str, request: Request, body: JsonBody = None) -> Response:
    contact_id = _id(cid, "Contact")

    def fn(c: sqlite3.Connection, sb: Any) -> tuple[int, str, Any]:
        m.require_contact(c, contact_id)
        lid = m.insert_link(c, contact_id, _body(body), sb.db.codesets, sb.today())
        return lid, f"/ws/contacts/{contact_id}/students/{lid}", _link(c, sb, contact_id, lid)
    return _write(request, "INSERT", fn, WRITE_TABLES["students"])


@router.get("/{cid}/students/{lid}")
def get_link(cid: str, lid: str, request: Request) -> Any:
    return _read(request, lambda c, sb: _link(c, sb, _id(cid, "Contact"), _id(lid, "Student link")))


@router.put("/{cid}/students/{lid}")
def put_link(cid: str, lid: str, request: Request, body: JsonBody = None) -> Response:
    contact_id, link_id = _id(cid, "Contact"), _id(lid, "Student link")

    def fn(c: sqlite3.Connection, sb: Any) -> tuple[int, str, Any]:
        m.require_contact(c, contact_id)
        m.update_link(c, contact_id, link_id, _body(body))
        return link_id, f"/ws/contacts/{contact_id}/students/{link_id}", _link(c, sb, contact_id, link_id)
    return _write(request, "UPDATE", fn, WRITE_TABLES["students"])


@router.delete("/{cid}/students/{lid}")
def delete_link(cid: str, lid: str, request: Request) -> Response:
    contact_id, link_id = _id(cid, "Contact"), _id(lid, "Student link")

    def fn(c: sqlite3.Connection, sb: Any) -> tuple[int, str, Any]:
        m.require_contact(c, contact_id)
        m.delete_link(c, contact_id, link_id)
        return link_id, f"/ws/contacts/{contact_id}/students/{link_id}", None
    return _write(request, "DELETE", fn, WRITE_TABLES["students"])


@router.get("/{cid}/students/{lid}/studentdetails")
def list_details(cid: str, lid: str, request: Request) -> Any:
    return _read(request, lambda c, sb: _link(c, sb, _id(cid, "Contact"), _id(lid, "Student link"))["studentDetails"])


@router.post("/{cid}/students/{lid}/studentdetails")
def post_detail(cid: str, lid: str, request: Request, body: JsonBody = None) -> Response:
    contact_id, link_id = _id(cid, "Contact"), _id(lid, "Student link")

    def fn(c: sqlite3.Connection, sb: Any) -> tuple[int, str, Any]:
        m.require_contact(c, contact_id)
        m.require_link(c, contact_id, link_id)
        did = m.insert_detail(c, link_id, m.detail_values(_body(body), None, sb.db.codesets))
        return did, f"/ws/contacts/{contact_id}/students/{link_id}/studentdetails/{did}", _detail(c, sb, link_id, did)
    return _write(request, "INSERT", fn, WRITE_TABLES["studentdetails"])


def _detail(c: sqlite3.Connection, sb: Any, link_id: int, did: int) -> dict[str, Any]:
    return m.detail_json(m.require_detail(c, link_id, did), sb.today())


@router.get("/{cid}/students/{lid}/studentdetails/{did}")
def get_detail(cid: str, lid: str, did: str, request: Request) -> Any:
    contact_id, link_id, detail_id = _id(cid, "Contact"), _id(lid, "Student link"), _id(did, "Detail")

    def fn(c: sqlite3.Connection, sb: Any) -> dict[str, Any]:
        m.require_contact(c, contact_id)
        m.require_link(c, contact_id, link_id)
        return _detail(c, sb, link_id, detail_id)
    return _read(request, fn)


@router.put("/{cid}/students/{lid}/studentdetails/{did}")
def put_detail(cid: str, lid: str, did: str, request: Request, body: JsonBody = None) -> Response:
    contact_id, link_id, detail_id = _id(cid, "Contact"), _id(lid, "Student link"), _id(did, "Detail")

    def fn(c: sqlite3.Connection, sb: Any) -> tuple[int, str, Any]:
        m.require_contact(c, contact_id)
        m.update_detail(c, contact_id, link_id, detail_id, _body(body), sb.db.codesets)
        return (detail_id, f"/ws/contacts/{contact_id}/students/{link_id}/studentdetails/{detail_id}",
                _detail(c, sb, link_id, detail_id))
    return _write(request, "UPDATE", fn, WRITE_TABLES["studentdetails"])


@router.delete("/{cid}/students/{lid}/studentdetails/{did}")
def delete_detail(cid: str, lid: str, did: str, request: Request) -> Response:
    contact_id, link_id, detail_id = _id(cid, "Contact"), _id(lid, "Student link"), _id(did, "Detail")

    def fn(c: sqlite3.Connection, sb: Any) -> tuple[int, str, Any]:
        m.require_contact(c, contact_id)
        m.delete_detail(c, contact_id, link_id, detail_id)
        return detail_id, f"/ws/contacts/{contact_id}/students/{link_id}/studentdetails/{detail_id}", None
    return _write(request, "DELETE", fn, WRITE_TABLES["studentdetails"])


# -- emails, phones, addresses ---------------------------------------------------------------------
def _kind(kind: str) -> m.Child:
    if kind not in m.CHILDREN:
        raise message(404, f"Unknown contact resource {kind!r}")
    return m.CHILDREN[kind]


@router.get("/{cid}/{kind}")
def list_children(cid: str, kind: str, request: Request) -> Any:
    child, contact_id = _kind(kind), _id(cid, "Contact")

    def fn(c: sqlite3.Connection, sb: Any) -> list[dict[str, Any]]:
        m.require_contact(c, contact_id)
        return [child.json(r) for r in child.list(c, contact_id)]
    return _read(request, fn)


@router.post("/{cid}/{kind}")
def post_child(cid: str, kind: str, request: Request, body: JsonBody = None) -> Response:
    child, contact_id = _kind(kind), _id(cid, "Contact")

    def fn(c: sqlite3.Connection, sb: Any) -> tuple[int, str, Any]:
        m.require_contact(c, contact_id)
        new_id = child.insert(c, contact_id, _body(body), sb.db.codesets)
        return new_id, f"/ws/contacts/{contact_id}/{kind}/{new_id}", child.json(child.get(c, contact_id, new_id))
    return _write(request, "INSERT", fn, WRITE_TABLES[kind])


@router.get("/{cid}/{kind}/{child_id}")
def get_child(cid: str, kind: str, child_id: str, request: Request) -> Any:
    child, contact_id, item = _kind(kind), _id(cid, "Contact"), _id(child_id, kind)

    def fn(c: sqlite3.Connection, sb: Any) -> dict[str, Any]:
        m.require_contact(c, contact_id)
        return child.json(child.get(c, contact_id, item))
    return _read(request, fn)


@router.put("/{cid}/{kind}/{child_id}")
def put_child(cid: str, kind: str, child_id: str, request: Request, body: JsonBody = None) -> Response:
    child, contact_id, item = _kind(kind), _id(cid, "Contact"), _id(child_id, kind)

    def fn(c: sqlite3.Connection, sb: Any) -> tuple[int, str, Any]:
        m.require_contact(c, contact_id)
        child.update(c, contact_id, item, _body(body), sb.db.codesets)
        return item, f"/ws/contacts/{contact_id}/{kind}/{item}", child.json(child.get(c, contact_id, item))
    return _write(request, "UPDATE", fn, WRITE_TABLES[kind])


@router.delete("/{cid}/{kind}/{child_id}")
def delete_child(cid: str, kind: str, child_id: str, request: Request) -> Response:
    child, contact_id, item = _kind(kind), _id(cid, "Contact"), _id(child_id, kind)

    def fn(c: sqlite3.Connection, sb: Any) -> tuple[int, str, Any]:
        m.require_contact(c, contact_id)
        child.delete(c, contact_id, item)
        return item, f"/ws/contacts/{contact_id}/{kind}/{item}", None
    return _write(request, "DELETE", fn, WRITE_TABLES[kind])
