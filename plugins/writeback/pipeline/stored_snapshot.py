"""A run's PowerSchool snapshot kept as rows in the store, read back a part at a time.

A district's snapshot does not fit the promise that a task's memory does not grow with the district:
at 50,000 students one document of it took 1.3 GiB to extract and ~0.9 GiB in each task that read it.
So `save_snapshot` writes each PowerQuery's rows to `wb_snapshot_rows` page by page as they arrive,
and `StoredSnapshot` assembles domain models only for the students and persons asked for (with the
same `*_from_rows` functions as a snapshot read whole, so the two give equal models), or for one page
of persons at a time when something must see them all (blocking, in `matching_pages.py`).
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any

from ..domain.models import Person, PortalAccount, Snapshot, Student, StudentLink
from ..domain.normalize import email_key
from .snapshot import (
    ENTITIES,
    QUERY_PREFIX,
    PowerQueryReader,
    links_from_rows,
    persons_from_rows,
    portal_accounts_from_rows,
    snapshot_from_rows,
    students_from_rows,
)

PERSON_CHILDREN = ("emails", "phones", "addresses")
WRITE_PAGE = 2000  # rows per insert while the PowerQueries are read


def _int(row: dict, column: str) -> int | None:
    value = str(row.get(column) or "").strip()
    return int(value) if value else None


# the lookup keys of a row of each PowerQuery (row_key: the entity's own id)
ROW_KEYS: dict[str, Callable[[dict], dict[str, Any]]] = {
    "students": lambda r: {"row_key": _int(r, "students.dcid"), "student_dcid": _int(r, "students.dcid"),
                           "student_number": r.get("students.student_number") or "",
                           "family_ident": r.get("students.family_ident") or None},
    "contacts": lambda r: {"row_key": _int(r, "person.id"), "person_id": _int(r, "person.id")},
    "emails": lambda r: {"row_key": _int(r, "emailaddress.emailaddressid"),
                         "person_id": _int(r, "personemailaddressassoc.personid")},
    "phones": lambda r: {"row_key": _int(r, "phonenumber.phonenumberid"),
                         "person_id": _int(r, "personphonenumberassoc.personid")},
    "addresses": lambda r: {"row_key": _int(r, "personaddress.personaddressid"),
                            "person_id": _int(r, "personaddressassoc.personid")},
    "links": lambda r: {"row_key": _int(r, "studentcontactassoc.studentcontactassocid"),
                        "student_dcid": _int(r, "studentcontactassoc.studentdcid"),
                        "person_id": _int(r, "studentcontactassoc.personid"),
                        "sequence": _int(r, "studentcontactassoc.contactpriorityorder")},
    "portal_accounts": lambda r: {"row_key": _int(r, "pcas_account.pcas_accountid"),
                                  "person_id": _int(r, "guardianpersonassoc.personid"),
                                  "email": email_key(r.get("pcas_emailcontact.emailaddress") or "") or None},
}


def save_snapshot(store: Any, run_id: str, client: PowerQueryReader, queries: Iterable[str] | None = None) -> dict:
    """Read every snapshot PowerQuery (those of `queries`; all by default) into the store, a page at a
    time; a rerun replaces the run's rows. Returns the distinct ids read per entity."""
    wanted = None if queries is None else set(queries)
    store.clear_snapshot(run_id)
    # one page is written while the next is read: PowerSchool's time and the database's overlap, and no
    # more than two pages are held
    with ThreadPoolExecutor(1, thread_name_prefix="snapshot-writer") as writer:
        writing: Future | None = None
        for entity, page in _pages(client, wanted):
            if writing is not None:
                writing.result()
            writing = writer.submit(store.add_snapshot_rows, run_id, entity, page)
        if writing is not None:
            writing.result()
    store.put_data(run_id, "snapshot_meta", {"taken_at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds")})
    return store.snapshot_counts(run_id)


def _pages(client: PowerQueryReader, wanted: set[str] | None) -> Iterator[tuple[str, list[dict[str, Any]]]]:
    """(entity, up to WRITE_PAGE rows with their lookup keys) for each snapshot PowerQuery wanted."""
    for entity in ENTITIES:
        name = QUERY_PREFIX + entity
        if wanted is not None and name not in wanted:
            continue
        keys, page = ROW_KEYS[entity], []
        for row in client.iter_powerquery(name):
            page.append({**keys(row), "row": json.dumps(row, separators=(",", ":"))})
            if len(page) >= WRITE_PAGE:
                yield entity, page
                page = []
        if page:
            yield entity, page


def _parsed(rows: list[str]) -> list[dict]:
    return [json.loads(r) for r in rows]


class StoredSnapshot:
    """Parts of a run's stored snapshot as domain models."""

    def __init__(self, store: Any, run_id: str, extension_targets: Iterable[str] = ()):
        self.store, self.run_id = store, run_id
        self.extension_targets = list(extension_targets)

    def exists(self) -> bool:
        return self.store.get_data(self.run_id, "snapshot_meta") is not None

    @property
    def taken_at(self) -> str:
        return (self.store.get_data(self.run_id, "snapshot_meta") or {}).get("taken_at", "")

    def _rows(self, entity: str, **where: Iterable[Any]) -> list[dict]:
        return _parsed(self.store.snapshot_rows(self.run_id, entity, **where))

    def students(self, **where: Iterable[Any]) -> dict[int, Student]:
        """By `student_number=`, `student_dcid=` or `family_ident=`."""
        return students_from_rows(self._rows("students", **where), self.extension_targets)

    def persons(self, ids: Iterable[int]) -> dict[int, Person]:
        ids = set(ids)
        if not ids:
            return {}
        return persons_from_rows(*(self._rows(entity, person_id=ids) for entity in ("contacts", *PERSON_CHILDREN)))

    def links(self, *, student_dcids: Iterable[int] = (), person_ids: Iterable[int] = ()) -> list[StudentLink]:
        where = {k: v for k, v in (("student_dcid", set(student_dcids)), ("person_id", set(person_ids))) if v}
        return links_from_rows(self._rows("links", **where)) if where else []

    def portal_accounts(self, *, person_ids: Iterable[int] = (), emails: Iterable[str] = ()) -> list[PortalAccount]:
        where = {k: v for k, v in (("person_id", set(person_ids)),
                                   ("email", {email_key(e) for e in emails} - {""})) if v}
        return portal_accounts_from_rows(self._rows("portal_accounts", **where)) if where else []

    def person_pages(self, size: int) -> Iterator[dict[int, Person]]:
        """Every person of the snapshot, `size` at a time in id order, with their emails, phones and addresses."""
        after = None
        while True:
            ids = self.store.snapshot_keys(self.run_id, "contacts", "person_id", after=after, limit=size)
            if not ids:
                return
            low, high = ids[0], ids[-1]
            rows = [_parsed(self.store.snapshot_rows_between(self.run_id, entity, "person_id", low, high))
                    for entity in ("contacts", *PERSON_CHILDREN)]
            yield persons_from_rows(*rows)
            after = high

    def around(self, student_numbers: Iterable[str], person_ids: Iterable[int] = ()) -> Snapshot:
        """The part of the snapshot the students `student_numbers` and the persons `person_ids` need, for
        matching and planning: those students and their households; every link of those students and of
        those persons, and the students and persons those links name; the portal accounts of those persons
        or signing in with an email one of them has."""
        students = self.students(student_number=set(student_numbers))
        families = {s.family_ident for s in students.values() if s.family_ident}
        if families:
            students.update(self.students(family_ident=families))
        links = self.links(student_dcids=students)
        persons = set(person_ids) | {lk.person_id for lk in links}
        known = {lk.id for lk in links}
        links += [lk for lk in self.links(person_ids=persons) if lk.id not in known]
        links.sort(key=lambda lk: lk.id)
        others = {lk.student_dcid for lk in links} - set(students)
        if others:
            students.update(self.students(student_dcid=others))
        people = self.persons(persons)
        emails = {e.address for p in people.values() for e in p.emails}
        return Snapshot(taken_at=self.taken_at, students=dict(sorted(students.items())), persons=people,
                        links=links, portal_accounts=self.portal_accounts(person_ids=people, emails=emails))

    def whole(self) -> Snapshot:
        """The whole snapshot in memory: for small districts and tools, never a DAG task."""
        return snapshot_from_rows(self._rows, self.extension_targets, self.taken_at)
