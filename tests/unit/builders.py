"""Small PowerSchool snapshots and form records, built by hand for the domain unit tests.

The district (see `district()`):

    family GARCIA (family_ident "F1")
      student 1  "100001"  Ana García   links: 1 María (Mother, seq 1)
                                               2 José  (Father, seq 2)
                                               3 Pedro Ruiz (expired 2025-06-30, seq 3)
      student 2  "100002"  Luis García  links: 1 María (Mother, seq 1)          <- María is shared
    family CHEN (family_ident "F2")
      student 3  "100003"  Mia Chen     links: 1 Wei Chen (Father, seq 1, portal access)
                                               2 Rosa Chen (Grandparent, seq 2)

Person ids are 500x, phone ids 60x, email ids 70x, address ids 80x, link ids 900x, detail ids 950x.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from writeback.domain.matching import match_records
from writeback.domain.models import (
    Address,
    Decision,
    Email,
    FormRecord,
    LinkDetail,
    Person,
    Phone,
    Plan,
    PortalAccount,
    Snapshot,
    Student,
    StudentLink,
    SubmittedAddress,
    SubmittedContact,
    SubmittedPhone,
    WriteOp,
)
from writeback.domain.normalize import phone_key, split_extension
from writeback.domain.plan import build_plan
from writeback.domain.resolve import resolve

TODAY = dt.date(2026, 8, 15)

# person ids
MARIA, JOSE, ROSA, PEDRO, WEI = 5001, 5002, 5003, 5004, 5005
# student dcids
ANA, LUIS, MIA = 1, 2, 3
ANA_NO, LUIS_NO, MIA_NO = "100001", "100002", "100003"

MARIA_MOBILE, MARIA_HOME, JOSE_MOBILE, ROSA_HOME, WEI_MOBILE = 601, 602, 603, 604, 605
MARIA_EMAIL, JOSE_EMAIL, WEI_EMAIL = 701, 702, 703
MARIA_ADDRESS = 801
LINK_ANA_MARIA, LINK_ANA_JOSE, LINK_ANA_PEDRO, LINK_LUIS_MARIA, LINK_MIA_WEI, LINK_MIA_ROSA = (
    9001, 9002, 9003, 9004, 9005, 9006)


def detail(id: int, relationship: str, **kw: Any) -> LinkDetail:
    return LinkDetail(id=id, relationship=relationship, start_date=kw.pop("start_date", "2020-08-01"), **kw)


def district() -> Snapshot:
    """A fresh copy of the hand-built district (tests may mutate it)."""
    garcia_home = {"addresses.physical.street": "12 Oak Street", "addresses.physical.city": "Springfield",
                   "addresses.physical.state_province": "IL", "addresses.physical.postal_code": "62701"}
    students = {
        ANA: Student(dcid=ANA, student_number=ANA_NO, family_ident="F1", values={
            "name.first_name": "Ana", "name.middle_name": "", "name.last_name": "García",
            "demographics.gender": "F", "demographics.birth_date": "2015-03-02", **garcia_home}),
        LUIS: Student(dcid=LUIS, student_number=LUIS_NO, family_ident="F1", values={
            "name.first_name": "Luis", "name.middle_name": "", "name.last_name": "García",
            "demographics.gender": "M", "demographics.birth_date": "2017-05-09", **garcia_home}),
        MIA: Student(dcid=MIA, student_number=MIA_NO, family_ident="F2", values={
            "name.first_name": "Mia", "name.last_name": "Chen", "demographics.gender": "F"}),
    }
    persons = {
        MARIA: Person(
            id=MARIA, first_name="María", last_name="García-López",
            phones=[Phone(id=MARIA_MOBILE, number="(415) 555-0101", type="Mobile", sequence=1),
                    Phone(id=MARIA_HOME, number="415-555-0199", type="Home", sequence=2)],
            emails=[Email(id=MARIA_EMAIL, address="maria@example.com", type="Current", primary=True)],
            addresses=[Address(id=MARIA_ADDRESS, type="Home", street="12 Oak Street", city="Springfield",
                               state="IL", postal_code="62701")]),
        JOSE: Person(id=JOSE, first_name="José", last_name="García",
                     phones=[Phone(id=JOSE_MOBILE, number="415-555-0102", type="Mobile", sequence=1)],
                     emails=[Email(id=JOSE_EMAIL, address="jose@example.com", primary=True)]),
        ROSA: Person(id=ROSA, first_name="Rosa", last_name="Chen",
                     phones=[Phone(id=ROSA_HOME, number="415-555-0103", type="Home", sequence=1)]),
        PEDRO: Person(id=PEDRO, first_name="Pedro", last_name="Ruiz"),
        WEI: Person(id=WEI, first_name="Wei", last_name="Chen",
                    phones=[Phone(id=WEI_MOBILE, number="415-555-0105", type="Mobile", sequence=1)],
                    emails=[Email(id=WEI_EMAIL, address="wei@example.com", primary=True)]),
    }
    links = [
        StudentLink(id=LINK_ANA_MARIA, person_id=MARIA, student_dcid=ANA, sequence=1,
                    details=[detail(9501, "Mother", custodial=True, lives_with=True, emergency=True)]),
        StudentLink(id=LINK_ANA_JOSE, person_id=JOSE, student_dcid=ANA, sequence=2,
                    details=[detail(9502, "Father", custodial=True, lives_with=True)]),
        StudentLink(id=LINK_ANA_PEDRO, person_id=PEDRO, student_dcid=ANA, sequence=3,
                    details=[detail(9503, "Other", end_date="2025-06-30")]),
        StudentLink(id=LINK_LUIS_MARIA, person_id=MARIA, student_dcid=LUIS, sequence=1,
                    details=[detail(9504, "Mother", custodial=True, lives_with=True, emergency=True)]),
        StudentLink(id=LINK_MIA_WEI, person_id=WEI, student_dcid=MIA, sequence=1, can_access_data=True,
                    details=[detail(9505, "Father", custodial=True)]),
        StudentLink(id=LINK_MIA_ROSA, person_id=ROSA, student_dcid=MIA, sequence=2,
                    details=[detail(9506, "Grandparent", emergency=True)]),
    ]
    portal = [PortalAccount(id=1, username="wchen", email="wei@example.com", person_id=WEI)]
    return Snapshot(taken_at="2026-08-15T06:00:00Z", students=students, persons=persons, links=links,
                    portal_accounts=portal)


def phone(kind: str, number: str) -> SubmittedPhone:
    """A submitted phone as the mapping builds it (extension split off, e164 for comparison)."""
    head, ext = split_extension(number)
    return SubmittedPhone(type=kind, number=head, extension=ext, e164=phone_key(head))


def contact(slot: int, first: str, last: str, *, phones: dict[str, str] | None = None, email: str = "",
            relationship: str = "", address: dict[str, str] | None = None, **kw: Any) -> SubmittedContact:
    return SubmittedContact(slot=slot, first_name=first, last_name=last, relationship=relationship,
                            phones=[phone(k, v) for k, v in (phones or {}).items()], email=email,
                            address=SubmittedAddress(**address) if address else None, **kw)


def maria(slot: int = 1, **kw: Any) -> SubmittedContact:
    """María exactly as PowerSchool has her (so: no value changes)."""
    kw.setdefault("phones", {"Mobile": "415-555-0101", "Home": "(415) 555-0199"})
    kw.setdefault("email", "maria@example.com")
    kw.setdefault("relationship", "Mother")
    return contact(slot, "María", "García-López", **kw)


def jose(slot: int = 2, **kw: Any) -> SubmittedContact:
    kw.setdefault("phones", {"Mobile": "415-555-0102"})
    kw.setdefault("email", "jose@example.com")
    kw.setdefault("relationship", "Father")
    return contact(slot, "José", "García", **kw)


def record(student_number: str, *contacts: SubmittedContact, submission_id: str | None = None,
           fields: dict[str, str] | None = None, blank_clears: list[str] | None = None,
           review: list[str] | None = None) -> FormRecord:
    return FormRecord(submission_id=submission_id or f"SUB-{student_number}", student_number=student_number,
                      student_fields=fields or {}, blank_clears=blank_clears or [], review_targets=review or [],
                      contacts=list(contacts))


def plan_for(records: list[FormRecord], snapshot: Snapshot | None = None,
             remembered: dict[tuple[str, int], str] | None = None) -> tuple[Plan, Snapshot]:
    snapshot = snapshot or district()
    matches = match_records(records, snapshot, TODAY, remembered)
    return build_plan(records, snapshot, matches, TODAY), snapshot


def decide(plan: Plan, **by_kind_or_key: str | tuple[str, dict[str, Any]]) -> dict[str, Decision]:
    """A decision for every item: `kind=choice` or `key=choice` (key wins), else the item's default,
    else its first option. A value may be `(choice, data)`."""
    out: dict[str, Decision] = {}
    for item in plan.review_items:
        raw = by_kind_or_key.get(item.key, by_kind_or_key.get(item.kind, item.default or item.options[0]))
        choice, data = raw if isinstance(raw, tuple) else (raw, {})
        out[item.key] = Decision(item_key=item.key, choice=choice, data=data, decided_by="test")
    return out


def resolve_all(records: list[FormRecord], snapshot: Snapshot | None = None, **choices: Any) -> list[WriteOp]:
    plan, snapshot = plan_for(records, snapshot)
    return resolve(plan, decide(plan, **choices), snapshot, TODAY)


def items_of(plan: Plan, kind: str) -> list:
    return [i for i in plan.review_items if i.kind == kind]


def ops_of(ops: list[WriteOp], kind: str) -> list[WriteOp]:
    return [op for op in ops if op.kind == kind]


def registration_fields(student_number: str = ANA_NO, **overrides: Any) -> dict[str, Any]:
    """Raw form fields of a registration-2026 submission (names from docs/sandbox-contract.md)."""
    fields: dict[str, Any] = {
        "student_number": student_number,
        "student_legal_first_name": "Ana", "student_legal_middle_name": "", "student_legal_last_name": "García",
        "student_preferred_first_name": "Anita", "student_preferred_last_name": "",
        "student_gender": "F", "student_birthdate": "03/02/2015",
        "home_street": "12 Oak Street", "home_city": "Springfield", "home_state": "il", "home_zip": "62701",
        "mailing_street": "", "mailing_city": "", "mailing_state": "", "mailing_zip": "",
        "photo_release": "Yes",
        "contact1_first_name": "María", "contact1_last_name": "García-López", "contact1_relationship": "Mom",
        "contact1_cell_phone": "(415) 555-0101", "contact1_home_phone": "415.555.0199 x12",
        "contact1_work_phone": "", "contact1_email": "Maria@Example.com",
        "contact1_street": "12 Oak Street", "contact1_city": "Springfield", "contact1_state": "il",
        "contact1_zip": "62701", "contact1_emergency": "Yes", "contact1_lives_with": "Yes",
        "contact1_custodial": "Yes", "contact1_data_access": "No", "contact1_remove": "",
    }
    fields.update(overrides)
    return fields
