"""Contacts data: row -> JSON shapes of the API doc, batched reads, and the write rules.

Every function takes an open connection (inside ``db.tx()``); rule violations raise ``WriteError``,
which the endpoints turn into the write-reply envelope with HTTP 400 (or 404).
"""

from __future__ import annotations

import datetime as dt
import re
import sqlite3
from collections import defaultdict
from typing import Any

from .db import next_id
from .util import flag, is_active, valid_date

EMAIL_RE = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")


class WriteError(Exception):
    def __init__(self, field: str, code: str, description: str, status: int = 400) -> None:
        super().__init__(description)
        self.status = status
        self.errors = [{"field": field, "error_code": code, "error_description": description}]


def _chunks(ids: list[int], size: int = 500) -> list[list[int]]:
    return [ids[i:i + size] for i in range(0, len(ids), size)]


def _rows_by(c: sqlite3.Connection, sql: str, ids: list[int], key: str) -> dict[int, list[sqlite3.Row]]:
    out: dict[int, list[sqlite3.Row]] = defaultdict(list)
    for chunk in _chunks(ids):
        for row in c.execute(sql.format(ids=", ".join("?" * len(chunk))), chunk):
            out[row[key]].append(row)
    return out


# -- JSON shapes ---------------------------------------------------------------------------------------
def email_json(r: sqlite3.Row) -> dict[str, Any]:
    return {"contactEmailId": r["id"], "emailId": r["id"], "primary": bool(r["is_primary"]), "type": r["type"],
            "address": r["address"]}


def phone_json(r: sqlite3.Row) -> dict[str, Any]:
    return {"contactsPhoneId": r["id"], "phoneNumberId": r["id"], "sequence": r["sequence"],
            "preferred": bool(r["preferred"]), "phoneType": r["type"], "phoneNumber": r["number"],
            "phoneNumberAsEntered": r["number"], "extension": r["extension"], "sms": bool(r["sms"])}


def address_json(r: sqlite3.Row) -> dict[str, Any]:
    return {"contactAddressId": r["id"], "addressId": r["id"], "addressType": r["type"], "street": r["street"],
            "linetwo": r["linetwo"], "unit": r["unit"], "city": r["city"], "state": r["state"],
            "country": r["country"], "postalcode": r["postal_code"], "startDate": r["start_date"],
            "endDate": r["end_date"]}


def detail_json(r: sqlite3.Row, today: dt.date) -> dict[str, Any]:
    return {"studentContactDetailId": r["id"], "relationship": r["relationship"],
            "relationshipNote": r["relationship_note"], "custodial": bool(r["custodial"]),
            "emergency": bool(r["emergency"]), "livesWith": bool(r["lives_with"]),
            "schoolPickup": bool(r["school_pickup"]), "receivesMail": bool(r["receives_mail"]),
            "startDate": r["start_date"], "endDate": r["end_date"],
            "active": is_active(r["start_date"], r["end_date"], today),
            "excludeFromStateReporting": bool(r["exclude_from_state_reporting"])}


def links_json(c: sqlite3.Connection, link_rows: list[sqlite3.Row], today: dt.date) -> list[dict[str, Any]]:
    """contactStudents entries for ``link_rows`` (rows of links joined with student_number, account_id)."""
    details = _rows_by(c, "SELECT * FROM details WHERE link_id IN ({ids}) ORDER BY start_date, id",
                       [r["id"] for r in link_rows], "link_id")
    return [{"studentContactId": r["id"], "sequence": r["sequence"], "dcid": r["student_dcid"],
             "studentNumber": r["student_number"], "canAccessData": bool(r["can_access_data"]),
             "guardianId": r["account_id"], "studentDetails": [detail_json(d, today) for d in details[r["id"]]]}
            for r in link_rows]


LINK_SELECT = """SELECT l.*, s.student_number AS student_number,
    (SELECT MIN(a.id) FROM portal_accounts a WHERE a.person_id = l.person_id) AS account_id
    FROM links l LEFT JOIN students s ON s.dcid = l.student_dcid"""


def contacts_json(c: sqlite3.Connection, ids: list[int], today: dt.date) -> dict[int, dict[str, Any]]:
    """Full contact JSON for every existing id in ``ids``, batched."""
    persons = _rows_by(c, "SELECT * FROM persons WHERE id IN ({ids})", ids, "id")
    found = list(persons)
    emails = _rows_by(c, "SELECT * FROM emails WHERE person_id IN ({ids}) ORDER BY id", found, "person_id")
    phones = _rows_by(c, "SELECT * FROM phones WHERE person_id IN ({ids}) ORDER BY sequence, id", found,
                      "person_id")
    addresses = _rows_by(c, "SELECT * FROM addresses WHERE person_id IN ({ids}) ORDER BY id", found, "person_id")
    links = _rows_by(c, LINK_SELECT + " WHERE l.person_id IN ({ids}) ORDER BY l.id", found, "person_id")
    accounts = _rows_by(c, "SELECT * FROM portal_accounts WHERE person_id IN ({ids}) ORDER BY id", found,
                        "person_id")
    out = {}
    for pid in found:
        p = persons[pid][0]
        account = accounts[pid][0] if accounts[pid] else None
        out[pid] = {
            "contactId": pid, "firstName": p["first_name"], "middleName": p["middle_name"],
            "lastName": p["last_name"], "prefix": p["prefix"], "suffix": p["suffix"], "gender": p["gender"],
            "employer": p["employer"], "active": True,
            "emails": [email_json(r) for r in emails[pid]],
            "phones": [phone_json(r) for r in phones[pid]],
            "addresses": [address_json(r) for r in addresses[pid]],
            "contactStudents": links_json(c, links[pid], today),
            "contactAccount": None if account is None else {
                "accountId": account["id"], "username": account["username"], "email": account["email"],
                "enabled": bool(account["enabled"])},
        }
    return out


def demographics_json(p: sqlite3.Row) -> dict[str, Any]:
    return {"contactId": p["id"], "firstName": p["first_name"], "middleName": p["middle_name"],
            "lastName": p["last_name"], "prefix": p["prefix"], "suffix": p["suffix"], "gender": p["gender"],
            "employer": p["employer"]}


# -- validation helpers ------------------------------------------------------------------------------
def _check_keys(body: dict[str, Any], allowed: set[str], ignored: set[str], where: str) -> None:
    for key in body:
        if key not in allowed and key not in ignored:
            raise WriteError(key, "INVALID_FIELD", f"{key} is not a valid field for {where}")


def _text(body: dict[str, Any], key: str, default: str = "") -> str:
    value = body.get(key, default)
    return "" if value is None else str(value).strip()


def _code(codesets: dict[str, list[str]], kind: str, value: str, field: str) -> None:
    allowed = codesets.get(kind) or []
    if allowed and value not in allowed:
        raise WriteError(field, "INVALID_CODE", f"{value!r} is not a valid {kind} code ({', '.join(allowed)})")


def _date(value: str, field: str) -> None:
    if value and not valid_date(value):
        raise WriteError(field, "INVALID_FORMAT", f"{field} must be a YYYY-MM-DD date")


def _max(value: str, n: int, field: str) -> None:
    if len(value) > n:
        raise WriteError(field, "MAX_LENGTH", f"{field} is at most {n} characters")


def require_contact(c: sqlite3.Connection, cid: int) -> sqlite3.Row:
    row = c.execute("SELECT * FROM persons WHERE id = ?", (cid,)).fetchone()
    if row is None:
        raise WriteError("contactId", "NOT_FOUND", f"Contact {cid} not found", status=404)
    return row


# -- person ----------------------------------------------------------------------------------------
PERSON_FIELDS = {"firstName": "first_name", "middleName": "middle_name", "lastName": "last_name",
                 "prefix": "prefix", "suffix": "suffix", "gender": "gender", "employer": "employer"}


def person_values(body: dict[str, Any], current: dict[str, str]) -> dict[str, str]:
    values = dict(current)
    for key, col in PERSON_FIELDS.items():
        if key in body:
            values[col] = _text(body, key)
    for key, col in (("firstName", "first_name"), ("lastName", "last_name")):
        if not values.get(col):
            raise WriteError(key, "REQUIRED", f"{key} cannot be blank")
    if values.get("gender") not in ("", "M", "F"):
        raise WriteError("gender", "INVALID_VALUE", "gender must be M, F or empty")
    for key, col in PERSON_FIELDS.items():
        _max(values.get(col, ""), 100, key)
    return values


def update_demographics(c: sqlite3.Connection, cid: int, body: dict[str, Any]) -> None:
    p = require_contact(c, cid)
    _check_keys(body, set(PERSON_FIELDS), {"contactId"}, "demographics")
    values = person_values(body, {col: p[col] for col in PERSON_FIELDS.values()})
    c.execute(f"UPDATE persons SET {', '.join(f'{k} = ?' for k in values)} WHERE id = ?", [*values.values(), cid])


def create_contact(c: sqlite3.Connection, body: dict[str, Any], codesets: dict[str, list[str]],
                   today: dt.date) -> int:
    if body.get("contactAccount"):
        raise WriteError("contactAccount", "NOT_ALLOWED", "A portal account cannot be created through the API")
    _check_keys(body, set(PERSON_FIELDS) | {"emails", "phones", "addresses", "contactStudents"},
                {"contactId", "active", "contactAccount"}, "a contact")
    values = person_values(body, dict.fromkeys(PERSON_FIELDS.values(), ""))
    cid = next_id(c, "persons")
    c.execute(f"INSERT INTO persons (id, {', '.join(values)}) VALUES (?, {', '.join('?' * len(values))})",
              [cid, *values.values()])
    for kind in ("emails", "phones", "addresses"):
        items = body.get(kind) or []
        if not isinstance(items, list):
            raise WriteError(kind, "INVALID_VALUE", f"{kind} must be a list")
        for item in items:
            CHILDREN[kind].insert(c, cid, _obj(item, kind), codesets)
    links = body.get("contactStudents") or []
    if not isinstance(links, list):
        raise WriteError("contactStudents", "INVALID_VALUE", "contactStudents must be a list")
    for link in links:
        insert_link(c, cid, _obj(link, "contactStudents"), codesets, today)
    return cid


def delete_contact(c: sqlite3.Connection, cid: int) -> None:
    require_contact(c, cid)
    account = c.execute("SELECT username FROM portal_accounts WHERE person_id = ?", (cid,)).fetchone()
    if account:
        raise WriteError("contactId", "HAS_ACCOUNT",
                         f"Contact {cid} has portal account {account['username']!r} and cannot be deleted")
    for link in c.execute("SELECT id FROM links WHERE person_id = ?", (cid,)).fetchall():
        delete_link(c, cid, link["id"])
    for table in ("emails", "phones", "addresses"):
        c.execute(f"DELETE FROM {table} WHERE person_id = ?", (cid,))
    c.execute("DELETE FROM persons WHERE id = ?", (cid,))


def _obj(value: Any, field: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise WriteError(field, "INVALID_VALUE", f"{field} entries must be objects")
    return value


# -- emails, phones, addresses ------------------------------------------------------------------------
def _digits(number: str) -> str:
    return re.sub(r"\D", "", number) or number.lower()


class Child:
    """One kind of contact child (emails, phones, addresses): validation and writes."""

    table = ""
    json = staticmethod(email_json)

    def get(self, c: sqlite3.Connection, cid: int, child_id: int) -> sqlite3.Row:
        row = c.execute(f"SELECT * FROM {self.table} WHERE id = ? AND person_id = ?", (child_id, cid)).fetchone()
        if row is None:
            raise WriteError("id", "NOT_FOUND", f"{self.table[:-1]} {child_id} not found for contact {cid}", 404)
        return row

    def list(self, c: sqlite3.Connection, cid: int) -> list[sqlite3.Row]:
        return c.execute(f"SELECT * FROM {self.table} WHERE person_id = ? ORDER BY {self.order}", (cid,)).fetchall()

    order = "id"

    def values(self, body: dict[str, Any], current: sqlite3.Row | None, codesets: dict[str, list[str]],
               c: sqlite3.Connection, cid: int) -> dict[str, Any]:
        raise NotImplementedError

    def insert(self, c: sqlite3.Connection, cid: int, body: dict[str, Any], codesets: dict[str, list[str]]) -> int:
        values = self.values(body, None, codesets, c, cid)
        new_id = next_id(c, self.table)
        self.before_write(c, cid, new_id, values, None)
        cols = ["id", "person_id", *values]
        c.execute(f"INSERT INTO {self.table} ({', '.join(cols)}) VALUES ({', '.join('?' * len(cols))})",
                  [new_id, cid, *values.values()])
        return new_id

    def update(self, c: sqlite3.Connection, cid: int, child_id: int, body: dict[str, Any],
               codesets: dict[str, list[str]]) -> None:
        current = self.get(c, cid, child_id)
        values = self.values(body, current, codesets, c, cid)
        self.before_write(c, cid, child_id, values, current)
        c.execute(f"UPDATE {self.table} SET {', '.join(f'{k} = ?' for k in values)} WHERE id = ?",
                  [*values.values(), child_id])

    def delete(self, c: sqlite3.Connection, cid: int, child_id: int) -> None:
        self.get(c, cid, child_id)
        c.execute(f"DELETE FROM {self.table} WHERE id = ?", (child_id,))

    def before_write(self, c: sqlite3.Connection, cid: int, child_id: int, values: dict[str, Any],
                     current: sqlite3.Row | None) -> None:
        return None


class Emails(Child):
    table = "emails"
    json = staticmethod(email_json)

    def values(self, body, current, codesets, c, cid):  # type: ignore[no-untyped-def]
        _check_keys(body, {"address", "type", "primary"}, {"contactEmailId", "emailId"}, "an email")
        address = _text(body, "address", current["address"] if current else "")
        etype = _text(body, "type", current["type"] if current else "")
        primary = flag(body["primary"]) if "primary" in body else bool(current and current["is_primary"])
        if not EMAIL_RE.match(address):
            raise WriteError("address", "INVALID_FORMAT", f"{address!r} is not a valid email address")
        _max(address, 100, "address")
        _code(codesets, "email_type", etype, "type")
        dup = c.execute("SELECT id FROM emails WHERE person_id = ? AND address = ? COLLATE NOCASE AND id != ?",
                        (cid, address, current["id"] if current else -1)).fetchone()
        if dup:
            raise WriteError("address", "DUPLICATE",
                             f"Duplicate Error: contact {cid} already has email {address} (emailId {dup['id']})")
        if current is None and not c.execute("SELECT 1 FROM emails WHERE person_id = ?", (cid,)).fetchone():
            primary = True  # a contact's first email is its primary one
        return {"address": address, "type": etype, "is_primary": int(primary)}

    def before_write(self, c, cid, child_id, values, current):  # type: ignore[no-untyped-def]
        if values["is_primary"]:
            c.execute("UPDATE emails SET is_primary = 0 WHERE person_id = ? AND id != ?", (cid, child_id))


class Phones(Child):
    table = "phones"
    json = staticmethod(phone_json)
    order = "sequence, id"

    def values(self, body, current, codesets, c, cid):  # type: ignore[no-untyped-def]
        _check_keys(body, {"phoneNumber", "extension", "phoneType", "preferred", "sms", "sequence"},
                    {"contactsPhoneId", "phoneNumberId", "phoneNumberAsEntered"}, "a phone")
        number = _text(body, "phoneNumber", current["number"] if current else "")
        ext = _text(body, "extension", current["extension"] if current else "")
        ptype = _text(body, "phoneType", current["type"] if current else "")
        if not number:
            raise WriteError("phoneNumber", "REQUIRED", "phoneNumber is required")
        _max(number, 30, "phoneNumber")
        _max(ext, 10, "extension")
        _code(codesets, "phone_type", ptype, "phoneType")
        dup = next((r for r in c.execute("SELECT id, number FROM phones WHERE person_id = ? AND id != ?",
                                         (cid, current["id"] if current else -1))
                    if _digits(r["number"]) == _digits(number)), None)
        if dup:
            raise WriteError("phoneNumber", "DUPLICATE",
                             f"Duplicate Error: contact {cid} already has phone number {number} "
                             f"(phoneNumberId {dup['id']})")
        count = c.execute("SELECT COUNT(*) FROM phones WHERE person_id = ?", (cid,)).fetchone()[0]
        last = count + 1 if current is None else count
        seq = body.get("sequence", current["sequence"] if current else last)
        if not isinstance(seq, int) or isinstance(seq, bool) or not 1 <= seq <= last:
            raise WriteError("sequence", "INVALID_VALUE", f"sequence must be between 1 and {last}")
        return {"number": number, "extension": ext, "type": ptype,
                "preferred": int(flag(body["preferred"]) if "preferred" in body
                                 else bool(current and current["preferred"])),
                "sms": int(flag(body["sms"]) if "sms" in body else bool(current and current["sms"])),
                "sequence": seq}

    def before_write(self, c, cid, child_id, values, current):  # type: ignore[no-untyped-def]
        if values["preferred"]:
            c.execute("UPDATE phones SET preferred = 0 WHERE person_id = ? AND id != ?", (cid, child_id))
        place(c, "phones", "person_id", cid, child_id, current["sequence"] if current else None, values["sequence"])

    def delete(self, c, cid, child_id):  # type: ignore[no-untyped-def]
        row = self.get(c, cid, child_id)
        c.execute("DELETE FROM phones WHERE id = ?", (child_id,))
        place(c, "phones", "person_id", cid, child_id, row["sequence"], None)


ADDRESS_FIELDS = {"addressType": "type", "street": "street", "linetwo": "linetwo", "unit": "unit",
                  "city": "city", "state": "state", "postalcode": "postal_code", "country": "country",
                  "startDate": "start_date", "endDate": "end_date"}


class Addresses(Child):
    table = "addresses"
    json = staticmethod(address_json)

    def values(self, body, current, codesets, c, cid):  # type: ignore[no-untyped-def]
        _check_keys(body, set(ADDRESS_FIELDS), {"contactAddressId", "addressId"}, "an address")
        v = {col: _text(body, key, current[col] if current else "") for key, col in ADDRESS_FIELDS.items()}
        for key in ("addressType", "street", "city", "state", "postalcode"):
            if not v[ADDRESS_FIELDS[key]]:
                raise WriteError(key, "REQUIRED", f"{key} is required (an address must be complete)")
        _code(codesets, "address_type", v["type"], "addressType")
        _code(codesets, "state", v["state"], "state")
        _max(v["state"], 2, "state")
        _max(v["postal_code"], 10, "postalcode")
        _date(v["start_date"], "startDate")
        _date(v["end_date"], "endDate")
        if v["start_date"] and v["end_date"] and v["end_date"] < v["start_date"]:
            raise WriteError("endDate", "INVALID_VALUE", "endDate is before startDate")
        return v


CHILDREN: dict[str, Child] = {"emails": Emails(), "phones": Phones(), "addresses": Addresses()}


# -- ordering --------------------------------------------------------------------------------------
def place(c: sqlite3.Connection, table: str, group_col: str, group: int, row_id: int, old: int | None,
          new: int | None) -> None:
    """Keep ``sequence`` 1..n within a group: insert (old None), move, or remove (new None) ``row_id``."""
    if old is None and new is not None:
        c.execute(f"UPDATE {table} SET sequence = sequence + 1 WHERE {group_col} = ? AND sequence >= ? AND id != ?",
                  (group, new, row_id))
    elif new is None and old is not None:
        c.execute(f"UPDATE {table} SET sequence = sequence - 1 WHERE {group_col} = ? AND sequence > ? AND id != ?",
                  (group, old, row_id))
    elif old is not None and new is not None and new < old:
        c.execute(f"UPDATE {table} SET sequence = sequence + 1 WHERE {group_col} = ? AND sequence >= ? "
                  "AND sequence < ? AND id != ?", (group, new, old, row_id))
    elif old is not None and new is not None and new > old:
        c.execute(f"UPDATE {table} SET sequence = sequence - 1 WHERE {group_col} = ? AND sequence > ? "
                  "AND sequence <= ? AND id != ?", (group, old, new, row_id))


# -- student links and details ------------------------------------------------------------------------
DETAIL_FIELDS = {"relationship": "relationship", "relationshipNote": "relationship_note",
                 "custodial": "custodial", "emergency": "emergency", "livesWith": "lives_with",
                 "schoolPickup": "school_pickup", "receivesMail": "receives_mail", "startDate": "start_date",
                 "endDate": "end_date", "excludeFromStateReporting": "exclude_from_state_reporting"}
_DETAIL_FLAGS = {"custodial", "emergency", "lives_with", "school_pickup", "receives_mail",
                 "exclude_from_state_reporting"}


def require_link(c: sqlite3.Connection, cid: int, link_id: int) -> sqlite3.Row:
    row = c.execute("SELECT * FROM links WHERE id = ? AND person_id = ?", (link_id, cid)).fetchone()
    if row is None:
        raise WriteError("studentContactId", "NOT_FOUND", f"Student link {link_id} not found for contact {cid}", 404)
    return row


def require_detail(c: sqlite3.Connection, link_id: int, detail_id: int) -> sqlite3.Row:
    row = c.execute("SELECT * FROM details WHERE id = ? AND link_id = ?", (detail_id, link_id)).fetchone()
    if row is None:
        raise WriteError("studentContactDetailId", "NOT_FOUND",
                         f"Student detail {detail_id} not found for link {link_id}", 404)
    return row


def detail_values(body: dict[str, Any], current: sqlite3.Row | None, codesets: dict[str, list[str]]) -> dict[str, Any]:
    _check_keys(body, set(DETAIL_FIELDS), {"studentContactDetailId", "active"}, "a student detail")
    v: dict[str, Any] = {}
    for key, col in DETAIL_FIELDS.items():
        if col in _DETAIL_FLAGS:
            v[col] = int(flag(body[key])) if key in body else (current[col] if current else 0)
        else:
            v[col] = _text(body, key, current[col] if current else "")
    if not v["relationship"]:
        raise WriteError("relationship", "REQUIRED", "relationship is required")
    _code(codesets, "relationship", v["relationship"], "relationship")
    _date(v["start_date"], "startDate")
    _date(v["end_date"], "endDate")
    if v["start_date"] and v["end_date"] and v["end_date"] < v["start_date"]:
        raise WriteError("endDate", "INVALID_VALUE", "endDate is before startDate")
    return v


def _overlaps(a: tuple[str, str], b: tuple[str, str]) -> bool:
    """Inclusive date ranges; an empty start is open to the past, an empty end open to the future."""
    a_start, a_end = a[0] or "0000-00-00", a[1] or "9999-99-99"
    b_start, b_end = b[0] or "0000-00-00", b[1] or "9999-99-99"
    return a_start <= b_end and b_start <= a_end


def _check_overlap(c: sqlite3.Connection, link_id: int, values: dict[str, Any], exclude: int | None) -> None:
    for other in c.execute("SELECT * FROM details WHERE link_id = ? AND id != ?", (link_id, exclude or -1)):
        if _overlaps((values["start_date"], values["end_date"]), (other["start_date"], other["end_date"])):
            raise WriteError("startDate", "OVERLAP",
                             f"Detail dates {values['start_date'] or '(open)'}..{values['end_date'] or '(open)'} "
                             f"overlap detail {other['id']} ({other['start_date'] or '(open)'}.."
                             f"{other['end_date'] or '(open)'}) of the same student link")


def insert_detail(c: sqlite3.Connection, link_id: int, values: dict[str, Any]) -> int:
    _check_overlap(c, link_id, values, None)
    new_id = next_id(c, "details")
    cols = ["id", "link_id", *values]
    c.execute(f"INSERT INTO details ({', '.join(cols)}) VALUES ({', '.join('?' * len(cols))})",
              [new_id, link_id, *values.values()])
    return new_id


def update_detail(c: sqlite3.Connection, cid: int, link_id: int, detail_id: int, body: dict[str, Any],
                  codesets: dict[str, list[str]]) -> None:
    require_link(c, cid, link_id)
    current = require_detail(c, link_id, detail_id)
    values = detail_values(body, current, codesets)
    _check_overlap(c, link_id, values, detail_id)
    c.execute(f"UPDATE details SET {', '.join(f'{k} = ?' for k in values)} WHERE id = ?", [*values.values(), detail_id])


def delete_detail(c: sqlite3.Connection, cid: int, link_id: int, detail_id: int) -> None:
    require_link(c, cid, link_id)
    require_detail(c, link_id, detail_id)
    if c.execute("SELECT COUNT(*) FROM details WHERE link_id = ?", (link_id,)).fetchone()[0] <= 1:
        raise WriteError("studentContactDetailId", "ONLY_DETAIL",
                         f"Detail {detail_id} is the only detail of student link {link_id} and cannot be deleted")
    c.execute("DELETE FROM details WHERE id = ?", (detail_id,))


def check_data_access(c: sqlite3.Connection, cid: int) -> None:
    """canAccessData needs a valid primary email that no other portal account uses."""
    email = c.execute("SELECT address FROM emails WHERE person_id = ? AND is_primary = 1", (cid,)).fetchone()
    if email is None or not EMAIL_RE.match(email["address"]):
        raise WriteError("canAccessData", "NO_VALID_EMAIL",
                         f"Data Access needs a valid primary email; contact {cid} has none")
    other = c.execute("SELECT username FROM portal_accounts WHERE email = ? COLLATE NOCASE "
                      "AND (person_id IS NULL OR person_id != ?)", (email["address"], cid)).fetchone()
    if other:
        raise WriteError("canAccessData", "EMAIL_IN_USE",
                         f"Data Access needs an email not used by another portal account; {email['address']} "
                         f"is used by portal account {other['username']!r}")


def _bool_field(body: dict[str, Any], key: str) -> bool:
    value = body[key]
    if not isinstance(value, bool):
        raise WriteError(key, "INVALID_VALUE", f"{key} must be true or false")
    return value


def _sequence(body: dict[str, Any], last: int) -> int:
    seq = body.get("sequence", last)
    if not isinstance(seq, int) or isinstance(seq, bool) or not 1 <= seq <= last:
        raise WriteError("sequence", "INVALID_VALUE", f"sequence must be between 1 and {last}")
    return seq


def insert_link(c: sqlite3.Connection, cid: int, body: dict[str, Any], codesets: dict[str, list[str]],
                today: dt.date | None = None) -> int:
    _check_keys(body, {"dcid", "sequence", "canAccessData", "studentDetails"},
                {"studentContactId", "studentNumber", "guardianId"}, "a student link")
    dcid = body.get("dcid")
    if isinstance(dcid, str) and dcid.isdigit():
        dcid = int(dcid)
    if not isinstance(dcid, int) or not c.execute("SELECT 1 FROM students WHERE dcid = ?", (dcid,)).fetchone():
        raise WriteError("dcid", "NOT_FOUND", f"No student with dcid {body.get('dcid')!r}")
    existing = c.execute("SELECT id FROM links WHERE person_id = ? AND student_dcid = ?", (cid, dcid)).fetchone()
    if existing:
        raise WriteError("dcid", "DUPLICATE",
                         f"Duplicate Error: contact {cid} is already linked to student {dcid} "
                         f"(studentContactId {existing['id']})")
    count = c.execute("SELECT COUNT(*) FROM links WHERE student_dcid = ?", (dcid,)).fetchone()[0]
    seq = _sequence(body, count + 1)
    access = _bool_field(body, "canAccessData") if "canAccessData" in body else False
    if access:
        check_data_access(c, cid)
    details = body.get("studentDetails") or []
    if not isinstance(details, list):
        raise WriteError("studentDetails", "INVALID_VALUE", "studentDetails must be a list")
    detail_rows = [detail_values(_obj(d, "studentDetails"), None, codesets) for d in details]
    link_id = next_id(c, "links")
    place(c, "links", "student_dcid", dcid, link_id, None, seq)
    c.execute("INSERT INTO links (id, person_id, student_dcid, sequence, can_access_data) VALUES (?, ?, ?, ?, ?)",
              (link_id, cid, dcid, seq, int(access)))
    if not detail_rows:  # [sandbox choice] the default detail: relationship Other, starting today
        detail_rows = [detail_values({"relationship": _default_relationship(codesets),
                                      "startDate": (today or dt.date.today()).isoformat()}, None, codesets)]
    for values in detail_rows:
        insert_detail(c, link_id, values)
    return link_id


def _default_relationship(codesets: dict[str, list[str]]) -> str:
    allowed = codesets.get("relationship") or ["Other"]
    return "Other" if "Other" in allowed else allowed[-1]


def update_link(c: sqlite3.Connection, cid: int, link_id: int, body: dict[str, Any]) -> None:
    """Moves the link (``sequence``) and sets ``canAccessData``; details sent along are ignored."""
    link = require_link(c, cid, link_id)
    if "sequence" in body:
        count = c.execute("SELECT COUNT(*) FROM links WHERE student_dcid = ?", (link["student_dcid"],)).fetchone()[0]
        seq = _sequence(body, count)
        place(c, "links", "student_dcid", link["student_dcid"], link_id, link["sequence"], seq)
        c.execute("UPDATE links SET sequence = ? WHERE id = ?", (seq, link_id))
    if "canAccessData" in body:
        access = _bool_field(body, "canAccessData")
        if access:
            check_data_access(c, cid)
        c.execute("UPDATE links SET can_access_data = ? WHERE id = ?", (int(access), link_id))


def delete_link(c: sqlite3.Connection, cid: int, link_id: int) -> None:
    link = require_link(c, cid, link_id)
    c.execute("DELETE FROM details WHERE link_id = ?", (link_id,))
    c.execute("DELETE FROM links WHERE id = ?", (link_id,))
    place(c, "links", "student_dcid", link["student_dcid"], link_id, link["sequence"], None)
