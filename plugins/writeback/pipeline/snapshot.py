"""Read a district snapshot from PowerSchool's named PowerQueries into domain models.

One PowerQuery per entity, in pages: the cost is O(rows / page size) calls, not one per student.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterable, Iterator
from typing import Protocol

from ..domain.models import (
    Address,
    Email,
    LinkDetail,
    Person,
    Phone,
    PortalAccount,
    Snapshot,
    Student,
    StudentLink,
)
from ..domain.targets import CORE_TARGETS, student_target
from ..powerschool.grants import QUERY_PREFIX, SNAPSHOT_QUERIES

ENTITIES = tuple(q.removeprefix(QUERY_PREFIX) for q in SNAPSHOT_QUERIES)  # one PowerQuery each


class PowerQueryReader(Protocol):
    def iter_powerquery(self, name: str, args: dict | None = None, pagesize: int | None = None) -> Iterator[dict]: ...


def _flag(value: str) -> bool:
    return str(value).strip().lower() in {"1", "true", "yes"}


def _int(value: str) -> int:
    return int(str(value).strip() or 0)


def students_from_rows(rows: Iterable[dict], extension_targets: Iterable[str] = ()) -> dict[int, Student]:
    columns = {t.name: t.snapshot_column for t in CORE_TARGETS.values()}
    for name in extension_targets:
        target = student_target(name)
        if target:
            columns[name] = target.snapshot_column
    students = {}
    for row in rows:
        dcid = _int(row["students.dcid"])
        students[dcid] = Student(
            dcid=dcid, student_number=row.get("students.student_number", ""),
            family_ident=row.get("students.family_ident", ""),
            values={target: row.get(column, "") or "" for target, column in columns.items()},
        )
    return students


def persons_from_rows(contacts: Iterable[dict], emails: Iterable[dict], phones: Iterable[dict],
                      addresses: Iterable[dict]) -> dict[int, Person]:
    persons: dict[int, Person] = {}
    for r in contacts:
        pid = _int(r["person.id"])
        persons[pid] = Person(id=pid, first_name=r.get("person.firstname", ""), middle_name=r.get("person.middlename", ""),
                              last_name=r.get("person.lastname", ""), prefix=r.get("person.prefix", ""),
                              suffix=r.get("person.suffix", ""), gender=r.get("person.gender", ""),
                              employer=r.get("person.employer", ""))
    for r in emails:
        person = persons.get(_int(r["personemailaddressassoc.personid"]))
        if person:
            person.emails.append(Email(id=_int(r["emailaddress.emailaddressid"]),
                                       address=r.get("emailaddress.emailaddress", ""),
                                       type=r.get("personemailaddressassoc.emailtype", ""),
                                       primary=_flag(r.get("personemailaddressassoc.isprimaryemailaddress", "0"))))
    for r in phones:
        person = persons.get(_int(r["personphonenumberassoc.personid"]))
        if person:
            person.phones.append(Phone(id=_int(r["phonenumber.phonenumberid"]),
                                       number=r.get("phonenumber.phonenumber", ""),
                                       extension=r.get("phonenumber.phonenumberext", ""),
                                       type=r.get("personphonenumberassoc.phonetype", ""),
                                       preferred=_flag(r.get("personphonenumberassoc.ispreferred", "0")),
                                       sms=_flag(r.get("phonenumber.issms", "0")),
                                       sequence=_int(r.get("personphonenumberassoc.phonenumberpriorityorder", "0"))))
    for r in addresses:
        person = persons.get(_int(r["personaddressassoc.personid"]))
        if person:
            person.addresses.append(Address(
                id=_int(r["personaddress.personaddressid"]), type=r.get("personaddressassoc.addresstype", ""),
                street=r.get("personaddress.street", ""), linetwo=r.get("personaddress.linetwo", ""),
                unit=r.get("personaddress.unit", ""), city=r.get("personaddress.city", ""),
                state=r.get("personaddress.state", ""), postal_code=r.get("personaddress.postalcode", ""),
                country=r.get("personaddress.country", ""), start_date=r.get("personaddressassoc.startdate", ""),
                end_date=r.get("personaddressassoc.enddate", "")))
    return persons


def links_from_rows(rows: Iterable[dict]) -> list[StudentLink]:
    links: dict[int, StudentLink] = {}
    for r in rows:
        lid = _int(r["studentcontactassoc.studentcontactassocid"])
        link = links.get(lid)
        if link is None:
            link = links[lid] = StudentLink(
                id=lid, person_id=_int(r["studentcontactassoc.personid"]),
                student_dcid=_int(r["studentcontactassoc.studentdcid"]),
                sequence=_int(r.get("studentcontactassoc.contactpriorityorder", "0")),
                can_access_data=_flag(r.get("studentcontactassoc.canaccessdata", "0")))
        if r.get("studentcontactdetail.studentcontactdetailid"):
            link.details.append(LinkDetail(
                id=_int(r["studentcontactdetail.studentcontactdetailid"]),
                relationship=r.get("studentcontactdetail.relationshiptype", ""),
                relationship_note=r.get("studentcontactdetail.relationshipnote", ""),
                custodial=_flag(r.get("studentcontactdetail.iscustodial", "0")),
                emergency=_flag(r.get("studentcontactdetail.isemergency", "0")),
                lives_with=_flag(r.get("studentcontactdetail.liveswithflg", "0")),
                school_pickup=_flag(r.get("studentcontactdetail.schoolpickupflg", "0")),
                receives_mail=_flag(r.get("studentcontactdetail.receivesmailflg", "0")),
                start_date=r.get("studentcontactdetail.startdate", ""),
                end_date=r.get("studentcontactdetail.enddate", "")))
    return list(links.values())


def portal_accounts_from_rows(rows: Iterable[dict]) -> list[PortalAccount]:
    return [PortalAccount(id=_int(r["pcas_account.pcas_accountid"]), username=r.get("pcas_account.username", ""),
                          enabled=_flag(r.get("pcas_account.isenabled", "1")),
                          email=r.get("pcas_emailcontact.emailaddress", ""),
                          person_id=_int(r["guardianpersonassoc.personid"]) if r.get("guardianpersonassoc.personid")
                          else None)
            for r in rows]


def read_snapshot(client: PowerQueryReader, extension_targets: Iterable[str] = (),
                  queries: Iterable[str] | None = None) -> Snapshot:
    """`queries`: the PowerQueries to run (all by default); a mapping without contacts reads only
    students, so a plugin that grants no contact tables still serves it."""
    wanted = None if queries is None else set(queries)

    def rows(entity: str) -> Iterator[dict]:
        name = QUERY_PREFIX + entity
        if wanted is not None and name not in wanted:
            return iter(())
        return client.iter_powerquery(name)

    return snapshot_from_rows(rows, extension_targets, dt.datetime.now(dt.UTC).isoformat(timespec="seconds"))


def snapshot_from_rows(rows: Callable[[str], Iterable[dict]], extension_targets: Iterable[str] = (),
                       taken_at: str = "") -> Snapshot:
    """A snapshot of every row `rows(entity)` gives for each PowerQuery's entity."""
    return Snapshot(
        taken_at=taken_at,
        students=students_from_rows(rows("students"), extension_targets),
        persons=persons_from_rows(rows("contacts"), rows("emails"), rows("phones"), rows("addresses")),
        links=links_from_rows(rows("links")),
        portal_accounts=portal_accounts_from_rows(rows("portal_accounts")),
    )
