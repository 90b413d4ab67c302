"""Named PowerQueries for bulk snapshots (``POST /ws/schema/query/{name}``), as fixed by the contract.

Rows are flat ``{"table.column": "<string>"}`` dicts in a stable order (by the first column).
``pagesize`` is capped by ``schema_table_query_max_page_size``; ``pagesize=0`` returns every row.

Paging is by page number (the contract), but served by keyset: the sandbox remembers where each page
it served ended, so page ``p+1`` continues after that key instead of an SQL ``OFFSET`` that rescans the
rows before it (which made a whole snapshot grow as rows^1.4). The remembered ends are dropped on any
write, so a page read after a write is exactly what ``OFFSET`` gives.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from typing import Any

from fastapi import APIRouter, Request

from .util import JsonBody, as_string, enforce, message, page_window, state


@dataclass(frozen=True)
class Query:
    name: str
    columns: list[str]
    sql: str  # selects exactly len(columns) values, in order; may use :today
    # the ORDER BY expressions (unique together, ascending) with their positions in a row: keyset paging
    keys: tuple[tuple[str, int], ...] = ()

    def after_key_sql(self) -> str:
        """The query restricted to rows after the key ``:k0, :k1, ...`` (same order, NULLs first)."""
        base, order = self.sql.rsplit(" ORDER BY ", 1)
        (e0, _), *rest = self.keys
        cond = f"{e0} > :k0"
        if rest:  # (a, b) > (:k0, :k1); a NULL second key (a LEFT JOIN with no match) is alone under its a
            (e1, _), = rest
            cond = f"({e0} > :k0 OR ({e0} = :k0 AND :k1 IS NOT NULL AND {e1} > :k1))"
        return f"{base} WHERE {cond} ORDER BY {order} LIMIT :limit"


def _cols(prefix: str, names: str) -> list[str]:
    return [f"{prefix}.{n.strip()}" for n in names.split(",")]


QUERIES: dict[str, Query] = {q.name: q for q in [
    Query("com.writeback.snapshot.students",
          _cols("students", "dcid, student_number, first_name, middle_name, last_name, gender, dob, grade_level, "
                            "schoolid, family_ident, street, city, state, zip, mailing_street, mailing_city, "
                            "mailing_state, mailing_zip, home_phone")
          + _cols("u_students_extension", "pref_first_name, pref_last_name, photo_release"),
          "SELECT s.dcid, s.student_number, s.first_name, s.middle_name, s.last_name, s.gender, s.dob, "
          "s.grade_level, s.school_id, s.family_ident, s.street, s.city, s.state, s.zip, s.mailing_street, "
          "s.mailing_city, s.mailing_state, s.mailing_zip, s.home_phone, x.pref_first_name, x.pref_last_name, "
          "x.photo_release FROM students s LEFT JOIN u_students_extension x ON x.studentsdcid = s.dcid "
          "ORDER BY s.dcid", (("s.dcid", 0),)),
    Query("com.writeback.snapshot.contacts",
          _cols("person", "id, firstname, middlename, lastname, prefix, suffix, gender, employer"),
          "SELECT id, first_name, middle_name, last_name, prefix, suffix, gender, employer FROM persons ORDER BY id", (("id", 0),)),
    Query("com.writeback.snapshot.emails",
          ["emailaddress.emailaddressid", "personemailaddressassoc.personid", "emailaddress.emailaddress",
           "personemailaddressassoc.emailtype", "personemailaddressassoc.isprimaryemailaddress"],
          "SELECT id, person_id, address, type, is_primary FROM emails ORDER BY id", (("id", 0),)),
    Query("com.writeback.snapshot.phones",
          ["phonenumber.phonenumberid", "personphonenumberassoc.personid", "phonenumber.phonenumber",
           "phonenumber.phonenumberext", "personphonenumberassoc.phonetype", "personphonenumberassoc.ispreferred",
           "phonenumber.issms", "personphonenumberassoc.phonenumberpriorityorder"],
          "SELECT id, person_id, number, extension, type, preferred, sms, sequence FROM phones ORDER BY id", (("id", 0),)),
    Query("com.writeback.snapshot.addresses",
          ["personaddress.personaddressid", "personaddressassoc.personid", "personaddressassoc.addresstype"]
          + _cols("personaddress", "street, linetwo, unit, city, state, postalcode, country")
          + ["personaddressassoc.startdate", "personaddressassoc.enddate"],
          "SELECT id, person_id, type, street, linetwo, unit, city, state, postal_code, country, start_date, "
          "end_date FROM addresses ORDER BY id", (("id", 0),)),
    Query("com.writeback.snapshot.links",
          _cols("studentcontactassoc", "studentcontactassocid, studentdcid, personid, contactpriorityorder, "
                                       "canaccessdata")
          + _cols("studentcontactdetail", "studentcontactdetailid, relationshiptype, relationshipnote, "
                                          "iscustodial, isemergency, liveswithflg, schoolpickupflg, receivesmailflg, "
                                          "startdate, enddate, isactive"),
          "SELECT l.id, l.student_dcid, l.person_id, l.sequence, l.can_access_data, d.id, d.relationship, "
          "d.relationship_note, d.custodial, d.emergency, d.lives_with, d.school_pickup, d.receives_mail, "
          "d.start_date, d.end_date, CASE WHEN d.id IS NULL THEN NULL "
          "WHEN (d.start_date = '' OR d.start_date <= :today) AND (d.end_date = '' OR d.end_date >= :today) "
          "THEN 1 ELSE 0 END FROM links l LEFT JOIN details d ON d.link_id = l.id ORDER BY l.id, d.id",
          (("l.id", 0), ("d.id", 5))),
    Query("com.writeback.snapshot.portal_accounts",
          ["pcas_account.pcas_accountid", "pcas_account.username", "pcas_account.isenabled",
           "pcas_emailcontact.emailaddress", "guardianpersonassoc.personid"],
          "SELECT id, username, enabled, email, person_id FROM portal_accounts ORDER BY id", (("id", 0),)),
    # CodeSet is a core table: the table API refuses it (405), a named query reads it
    Query("com.writeback.codesets",
          _cols("codeset", "codesetid, codetype, code, displayvalue, effectivestartdate, effectiveenddate"),
          "SELECT id, code_type, code, display_value, start_date, end_date FROM codesets ORDER BY id",
          (("id", 0),)),
]}

router = APIRouter(prefix="/ws/schema/query")


class _PageEnds:
    """The last key of each page served, valid while the database has not been written to."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._generation: Any = None
        self._ends: dict[tuple[str, str, int, int], tuple[Any, ...]] = {}

    def get(self, generation: Any, name: str, today: str, limit: int, page: int) -> tuple[Any, ...] | None:
        with self._lock:
            return self._ends.get((name, today, limit, page)) if generation == self._generation else None

    def put(self, generation: Any, name: str, today: str, limit: int, page: int, key: tuple[Any, ...]) -> None:
        with self._lock:
            if generation != self._generation:
                self._generation, self._ends = generation, {}
            if len(self._ends) > 100_000:
                self._ends.clear()
            self._ends[(name, today, limit, page)] = key


_page_ends = _PageEnds()


@router.get("/api")
def list_queries() -> dict[str, Any]:
    return {"queries": [{"name": q.name, "columns": q.columns} for q in QUERIES.values()]}


def _prepare(name: str, request: Request, body: Any) -> Query:
    """The query, after checking its arguments (accepted and ignored [sandbox choice]) and the grants."""
    query = QUERIES.get(name)
    if query is None:
        raise message(404, f"PowerQuery {name} not found")
    if body is not None and not isinstance(body, dict):
        raise message(400, "The PowerQuery body must be a JSON object of arguments")
    enforce(state(request).policy.query_access(request, name, query.columns))
    return query


@router.post("/{name}/count")
def count(name: str, request: Request, body: JsonBody = None) -> dict[str, int]:
    query = _prepare(name, request, body)
    sb = state(request)
    with sb.db.tx() as c:
        n = c.execute(f"SELECT COUNT(*) FROM ({query.sql})", {"today": sb.today().isoformat()}).fetchone()[0]
    return {"count": n}


@router.post("/{name}")
def run(name: str, request: Request, body: JsonBody = None) -> dict[str, Any]:
    query = _prepare(name, request, body)
    sb = state(request)
    qp = request.query_params
    limit, offset = page_window(qp.get("page"), qp.get("pagesize"), sb.query_max_page_size, zero_means_all=True)
    today = sb.today().isoformat()
    params: dict[str, Any] = {"today": today, "limit": limit, "offset": offset}
    with sb.db.tx() as c:
        page = (offset // limit) + 1 if limit else 0
        generation = (id(c), c.total_changes)  # any write changes it: the remembered page ends are void
        after = _page_ends.get(generation, query.name, today, limit, page - 1) if limit and page > 1 else None
        if after is not None:
            sql = query.after_key_sql()
            params.update({f"k{i}": v for i, v in enumerate(after)})
        else:
            sql = query.sql + (" LIMIT :limit OFFSET :offset" if limit is not None else "")
        rows = c.execute(sql, params).fetchall()
        if limit and rows and query.keys:
            _page_ends.put(generation, query.name, today, limit, page, tuple(rows[-1][i] for _, i in query.keys))
    cols = query.columns
    return {"name": name, "record": [{col: as_string(v) for col, v in zip(cols, row, strict=True)} for row in rows],
            "@extensions": ""}


def table_columns() -> dict[str, list[str]]:
    """Each PowerSchool table the queries read, with its columns (in query order)."""
    out: dict[str, list[str]] = {}
    for query in QUERIES.values():
        for field in query.columns:
            table, col = field.split(".", 1)
            cols = out.setdefault(table, [])
            if col not in cols:
                cols.append(col)
    return out


TABLE_COLUMNS = table_columns()
