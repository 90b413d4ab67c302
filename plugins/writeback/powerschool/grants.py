"""What a mapping needs from the district's PowerSchool plugin (plugin.xml): field grants and v1 level.

PowerSchool checks field-level grants on the table API, on PowerQueries and (sandbox choice, see
``docs/sandbox-contract.md`` "Plugin grants") on ``/ws/contacts`` writes; ``/ws/v1`` is governed by the
plugin's ``accessLevelV1Api`` instead. The integration needs:

- **reads** — every column returned by each snapshot PowerQuery it runs (a PowerQuery fails with 403 when
  any one returned column lacks a grant), and by the code set query `doctor` checks codes with:
  ``ViewOnly`` at least;
- **writes** — ``FullAccess`` on the student columns and extension columns the mapping targets (written
  through ``POST /ws/v1/student``), and on every column of the contact tables behind each contacts resource
  the applier writes (the columns as the snapshot PowerQueries name them). Rolling a run back deletes the
  contacts it created (``DELETE /ws/contacts/{id}``), which needs every contact table.

``required_grants(mapping)`` lists them, one per ``(table, field)``, sorted, lower-case.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import NamedTuple
from xml.sax.saxutils import quoteattr

from ..domain.mapping import Mapping
from ..domain.routing import union
from ..domain.targets import student_target

__all__ = [
    "FULL_ACCESS",
    "VIEW_ONLY",
    "Grant",
    "Need",
    "SNAPSHOT_QUERIES",
    "REFERENCE_QUERIES",
    "ALL_QUERIES",
    "CODESET_QUERY",
    "reference_queries",
    "STUDENT_QUERY",
    "CONTACT_QUERIES",
    "CONTACT_WRITE_TABLES",
    "required_grants",
    "grant_needs",
    "snapshot_queries",
    "contact_resources",
    "v1_access_needed",
    "field_line",
]

FULL_ACCESS, VIEW_ONLY = "FullAccess", "ViewOnly"
_RANK = {VIEW_ONLY: 1, FULL_ACCESS: 2}

QUERY_PREFIX = "com.writeback.snapshot."


def _cols(table: str, names: str) -> tuple[str, ...]:
    return tuple(f"{table}.{n.strip()}" for n in names.split(","))


# The named PowerQueries the snapshot reads and the ``table.column`` fields each returns
# (docs/sandbox-contract.md, "Named PowerQueries"; pipeline/snapshot.py reads these keys).
SNAPSHOT_QUERIES: dict[str, tuple[str, ...]] = {
    QUERY_PREFIX + "students": _cols("students", "dcid, student_number, first_name, middle_name, last_name, gender, "
                                                 "dob, grade_level, schoolid, family_ident, street, city, state, zip, "
                                                 "mailing_street, mailing_city, mailing_state, mailing_zip, home_phone")
    + _cols("u_students_extension", "pref_first_name, pref_last_name, photo_release"),
    QUERY_PREFIX + "contacts": _cols("person", "id, firstname, middlename, lastname, prefix, suffix, gender, employer"),
    QUERY_PREFIX + "emails": ("emailaddress.emailaddressid", "personemailaddressassoc.personid",
                              "emailaddress.emailaddress", "personemailaddressassoc.emailtype",
                              "personemailaddressassoc.isprimaryemailaddress"),
    QUERY_PREFIX + "phones": ("phonenumber.phonenumberid", "personphonenumberassoc.personid",
                              "phonenumber.phonenumber", "phonenumber.phonenumberext",
                              "personphonenumberassoc.phonetype", "personphonenumberassoc.ispreferred",
                              "phonenumber.issms", "personphonenumberassoc.phonenumberpriorityorder"),
    QUERY_PREFIX + "addresses": ("personaddress.personaddressid", "personaddressassoc.personid",
                                 "personaddressassoc.addresstype")
    + _cols("personaddress", "street, linetwo, unit, city, state, postalcode, country")
    + ("personaddressassoc.startdate", "personaddressassoc.enddate"),
    QUERY_PREFIX + "links": _cols("studentcontactassoc", "studentcontactassocid, studentdcid, personid, "
                                                         "contactpriorityorder, canaccessdata")
    + _cols("studentcontactdetail", "studentcontactdetailid, relationshiptype, relationshipnote, iscustodial, "
                                    "isemergency, liveswithflg, schoolpickupflg, receivesmailflg, startdate, enddate, "
                                    "isactive"),
    QUERY_PREFIX + "portal_accounts": ("pcas_account.pcas_accountid", "pcas_account.username",
                                       "pcas_account.isenabled", "pcas_emailcontact.emailaddress",
                                       "guardianpersonassoc.personid"),
}
STUDENT_QUERY = QUERY_PREFIX + "students"
CONTACT_QUERIES = tuple(q for q in SNAPSHOT_QUERIES if q != STUDENT_QUERY)

# PowerSchool's CodeSet is a core table (the table API refuses it): the plugin's named query reads it, so
# `doctor` can check the codes a mapping sends (domain/codes.py) against the district's code sets.
CODESET_QUERY = "com.writeback.codesets"
REFERENCE_QUERIES: dict[str, tuple[str, ...]] = {
    CODESET_QUERY: _cols("codeset", "codesetid, codetype, code, displayvalue, effectivestartdate, effectiveenddate"),
}

# Contacts API resource -> the PowerSchool tables behind it (a write needs FullAccess on all their columns).
CONTACT_WRITE_TABLES: dict[str, tuple[str, ...]] = {
    "person": ("person",),
    "emails": ("emailaddress", "personemailaddressassoc"),
    "phones": ("phonenumber", "personphonenumberassoc"),
    "addresses": ("personaddress", "personaddressassoc"),
    "students": ("studentcontactassoc", "studentcontactdetail"),
    "studentdetails": ("studentcontactdetail",),
}


class Grant(NamedTuple):
    """One ``<field table=... field=... access=.../>`` line of plugin.xml (names lower-case)."""

    table: str
    field: str
    access: str  # ViewOnly | FullAccess


@dataclass
class Need:
    """A grant with the reasons the integration needs it (query names, written targets, resources)."""

    table: str
    field: str
    access: str
    why: list[str] = field(default_factory=list)

    @property
    def grant(self) -> Grant:
        return Grant(self.table, self.field, self.access)


def field_line(grant: Grant | Need, access: str | None = None) -> str:
    """The plugin.xml line for a grant (table and field in capitals, as PowerSchool plugins spell them)."""
    return (f"<field table={quoteattr(grant.table.upper())} field={quoteattr(grant.field.upper())} "
            f"access={quoteattr(access or grant.access)}/>")


Mappings = Mapping | Iterable[Mapping]  # one mapping, or every form's of a district: the union is what counts


def _maps_contacts(mappings: Mappings) -> bool:
    return any(m.contact_slots() for m in union(mappings))


def snapshot_queries(mappings: Mappings) -> list[str]:
    """The snapshot PowerQueries a run of these mappings reads: students always; the contact queries
    (contacts, emails, phones, addresses, links, portal accounts) only when a mapping maps contacts."""
    return [STUDENT_QUERY, *(CONTACT_QUERIES if _maps_contacts(mappings) else ())]


def reference_queries(mappings: Mappings) -> list[str]:
    """The reference PowerQueries `doctor` reads: the code sets, when a mapping maps contacts (every code
    the writeback sends belongs to a contact)."""
    return [CODESET_QUERY] if _maps_contacts(mappings) else []


def contact_resources(mappings: Mappings, rollback: bool = True) -> list[str]:
    """The ``/ws/contacts`` resources the applier (and a rollback) writes for this mapping.

    Contacts are created and renamed (person) and linked/ordered/expired/unlinked (students, studentdetails)
    whenever contacts are mapped; emails, phones and addresses only when a slot maps them. A rollback deletes
    the contacts a run created, which touches every contact table.
    """
    slots = [slot for m in union(mappings) for slot in m.contact_slots()]
    if not slots:
        return []
    if rollback:
        return list(CONTACT_WRITE_TABLES)
    out = ["person"]
    if any(s.email is not None for s in slots):
        out.append("emails")
    if any(s.phones for s in slots):
        out.append("phones")
    if any(s.address for s in slots):
        out.append("addresses")
    out += ["students", "studentdetails"]
    return out


def _columns_by_table(fields: Iterable[str]) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    for f in fields:
        table, col = f.split(".", 1)
        cols = out.setdefault(table, [])
        if col not in cols:
            cols.append(col)
    return out


_QUERY_COLUMNS = _columns_by_table(f for cols in SNAPSHOT_QUERIES.values() for f in cols)
ALL_QUERIES: dict[str, tuple[str, ...]] = {**SNAPSHOT_QUERIES, **REFERENCE_QUERIES}


def grant_needs(mappings: Mappings, rollback: bool = True) -> list[Need]:
    """Every grant the mapping(s) need, with its reasons, sorted by (table, field)."""
    needs: dict[tuple[str, str], Need] = {}

    def add(table: str, column: str, access: str, why: str) -> None:
        key = (table.lower(), column.lower())
        need = needs.setdefault(key, Need(key[0], key[1], access))
        if _RANK[access] > _RANK[need.access]:
            need.access = access
        if why not in need.why:
            need.why.append(why)

    for query in [*snapshot_queries(mappings), *reference_queries(mappings)]:
        for f in ALL_QUERIES[query]:
            table, col = f.split(".", 1)
            add(table, col, VIEW_ONLY, f"read by PowerQuery {query}")
    for spec in (spec for m in union(mappings) for spec in m.student):
        target = student_target(spec.target)
        if target is None:  # load_mapping refuses unknown targets; a hand-built Mapping may still carry one
            continue
        table, col = target.snapshot_column.split(".", 1)
        add(table, col, FULL_ACCESS, f"written by target {spec.target} (POST /ws/v1/student)")
    for resource in contact_resources(mappings, rollback):
        for table in CONTACT_WRITE_TABLES[resource]:
            for col in _QUERY_COLUMNS[table]:
                add(table, col, FULL_ACCESS, f"written through /ws/contacts ({resource})")
    return [needs[k] for k in sorted(needs)]


def required_grants(mappings: Mappings, rollback: bool = True) -> list[Grant]:
    """The exact field grants the integration needs for the mapping(s), sorted by (table, field)."""
    return [n.grant for n in grant_needs(mappings, rollback)]


def v1_access_needed(mappings: Mappings) -> str:
    """``FULL`` when a mapping writes student fields (``POST /ws/v1/student``), else ``READ`` (the client
    still reads ``/ws/v1/metadata`` for page sizes and re-reads students before writing)."""
    return "FULL" if any(m.student for m in union(mappings)) else "READ"
