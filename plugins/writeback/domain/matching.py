"""Contact matching v1: exact comparisons after normalisation, with scores and reasons.

A submitted contact is matched to an existing PowerSchool person:
- **certain** when the student is already linked to a person with the same name, or when exactly one
  person has the same name and the same email or phone, or a reviewer confirmed it before;
- **possible** when some person shares a name, an email or a phone (a reviewer must decide);
- **none** otherwise (a new contact).
Fuzzy names and blocking at district scale come later; the shape of the result stays.
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from dataclasses import dataclass, field

from .models import (
    Candidate,
    ContactMatch,
    FormRecord,
    MatchClass,
    Person,
    Snapshot,
    Student,
    StudentLink,
    SubmittedContact,
)
from .normalize import email_key, fold, phone_key

WEIGHTS = {"first_name": 0.25, "last_name": 0.30, "email": 0.25, "phone": 0.20}


@dataclass
class ContactIndex:
    """Exact lookup tables over the snapshot's persons and links."""

    persons: dict[int, Person]
    by_email: dict[str, set[int]] = field(default_factory=lambda: defaultdict(set))
    by_phone: dict[str, set[int]] = field(default_factory=lambda: defaultdict(set))
    by_name: dict[tuple[str, str], set[int]] = field(default_factory=lambda: defaultdict(set))
    links_by_student: dict[int, list[StudentLink]] = field(default_factory=lambda: defaultdict(list))
    links_by_person: dict[int, list[StudentLink]] = field(default_factory=lambda: defaultdict(list))
    household: dict[str, set[int]] = field(default_factory=lambda: defaultdict(set))  # family -> dcids


def build_index(snapshot: Snapshot, region: str = "US") -> ContactIndex:
    index = ContactIndex(persons=snapshot.persons)
    for person in snapshot.persons.values():
        index.by_name[(fold(person.first_name), fold(person.last_name))].add(person.id)
        for email in person.emails:
            if email.address:
                index.by_email[email_key(email.address)].add(person.id)
        for phone in person.phones:
            key = phone_key(phone.number, region)
            if key:
                index.by_phone[key].add(person.id)
    for link in snapshot.links:
        index.links_by_student[link.student_dcid].append(link)
        index.links_by_person[link.person_id].append(link)
    for links in index.links_by_student.values():
        links.sort(key=lambda lk: lk.sequence)
    for student in snapshot.students.values():
        if student.family_ident:
            index.household[student.family_ident].add(student.dcid)
    return index


def fingerprint(student_number: str, contact: SubmittedContact) -> str:
    """What a remembered decision is keyed by: the student, the slot and the submitted name."""
    return f"{student_number}|{contact.slot}|{fold(contact.first_name)}|{fold(contact.last_name)}"


def score_candidate(contact: SubmittedContact, person: Person, region: str = "US") -> Candidate:
    reasons: list[str] = []
    score = 0.0
    if fold(contact.first_name) and fold(contact.first_name) == fold(person.first_name):
        score += WEIGHTS["first_name"]
        reasons.append("first name equal")
    if fold(contact.last_name) and fold(contact.last_name) == fold(person.last_name):
        score += WEIGHTS["last_name"]
        reasons.append("last name equal")
    if contact.email and email_key(contact.email) in {email_key(e.address) for e in person.emails}:
        score += WEIGHTS["email"]
        reasons.append("email equal")
    submitted = {p.e164 or phone_key(p.number, region) for p in contact.phones} - {""}
    existing = {phone_key(p.number, region) for p in person.phones}
    if submitted & existing:
        score += WEIGHTS["phone"]
        reasons.append("phone equal")
    return Candidate(person_id=person.id, score=round(score, 4), reasons=reasons,
                     first_name=person.first_name, last_name=person.last_name)


def match_contact(
    submission_id: str,
    contact: SubmittedContact,
    student: Student,
    index: ContactIndex,
    today: dt.date,
    remembered: dict[tuple[str, int], str] | None = None,
    region: str = "US",
) -> ContactMatch:
    remembered = remembered or {}
    fp = fingerprint(student.student_number, contact)
    name = (fold(contact.first_name), fold(contact.last_name))
    student_links = index.links_by_student.get(student.dcid, [])
    active = [lk for lk in student_links if not lk.is_expired(today)]
    slot_link = next((lk for lk in active if lk.sequence == contact.slot), None)
    slot_person = slot_link.person_id if slot_link else None

    ids: set[int] = set(index.by_name.get(name, set()))
    if contact.email:
        ids |= index.by_email.get(email_key(contact.email), set())
    for phone in contact.phones:
        ids |= index.by_phone.get(phone.e164 or phone_key(phone.number, region), set())
    linked_ids = {lk.person_id for lk in student_links}
    for dcid in index.household.get(student.family_ident, set()) if student.family_ident else ():
        linked_ids |= {lk.person_id for lk in index.links_by_student.get(dcid, [])}
    ids |= {pid for pid in linked_ids if pid in index.persons and fold(index.persons[pid].last_name) == name[1]}
    if slot_person is not None:
        ids.add(slot_person)
    ids = {pid for pid in ids if remembered.get((fp, pid)) != "not_a_match"}

    candidates = [score_candidate(contact, index.persons[pid], region) for pid in ids if pid in index.persons]
    for cand in candidates:
        if cand.person_id == slot_person:
            cand.reasons.append(f"linked to this student in slot {contact.slot}")
        elif cand.person_id in {lk.person_id for lk in student_links}:
            cand.reasons.append("linked to this student")
    candidates.sort(key=lambda c: (-c.score, c.person_id))

    def _result(cls: MatchClass, person_id: int | None, cands: list[Candidate], flags: list[str]) -> ContactMatch:
        return ContactMatch(submission_id=submission_id, slot=contact.slot, match_class=cls, person_id=person_id,
                            candidates=cands[:5], flags=flags, slot_person_id=slot_person)

    confirmed = [pid for pid in ids if remembered.get((fp, pid)) == "confirm"]
    if len(confirmed) == 1:
        return _result(MatchClass.CERTAIN, confirmed[0], candidates, [])

    same_name = [c for c in candidates if "first name equal" in c.reasons and "last name equal" in c.reasons]
    linked_same = [c for c in same_name if c.person_id in {lk.person_id for lk in student_links}]
    if len(linked_same) == 1:
        return _result(MatchClass.CERTAIN, linked_same[0].person_id, candidates, [])
    with_contact = [c for c in same_name if {"email equal", "phone equal"} & set(c.reasons)]
    if len(with_contact) == 1 and len(linked_same) == 0:
        return _result(MatchClass.CERTAIN, with_contact[0].person_id, candidates, [])

    flags = []
    if slot_person is not None and slot_person not in {c.person_id for c in same_name}:
        flags.append("name_mismatch")
    if candidates:
        return _result(MatchClass.POSSIBLE, None, candidates, flags)
    return _result(MatchClass.NONE, None, [], flags)


def match_records(records: list[FormRecord], snapshot: Snapshot, today: dt.date,
                  remembered: dict[tuple[str, int], str] | None = None, region: str = "US",
                  index: ContactIndex | None = None) -> dict[tuple[str, int], ContactMatch]:
    """Match every submitted contact of every record; keyed by (submission id, slot)."""
    index = index or build_index(snapshot, region)
    by_number = snapshot.student_by_number()
    matches = {}
    for record in records:
        student = by_number[record.student_number]
        for contact in record.contacts:
            matches[(record.submission_id, contact.slot)] = match_contact(
                record.submission_id, contact, student, index, today, remembered, region)
    return matches
