"""The parts of a run's snapshot and plan that one task needs, so that no task after build_plan holds the
whole district.

Extraction, quality and matching look at every student and contact of the district; everything after
build_plan only touches the students of the plan and the contacts their forms, candidates and links
name. `build_run_plan` keeps, next to the whole snapshot, the slice of it the plan needs
(`snapshot_plan`), and for each apply batch the batch's part of the plan with its own slice
(`batch:<i>`). Resolving a plan against its slice gives the same writes as against the whole snapshot;
approval checks, batch by batch, that the batch alone resolves to exactly its share of the approved
writes (`approved_batches`), and an apply task then reads and resolves only its batch.
"""

from __future__ import annotations

from collections.abc import Iterable

from ..domain.models import MatchClass, Plan, Snapshot, StudentPlan
from ..domain.normalize import email_key  # apply compares portal emails by it too


def plan_person_ids(students: Iterable[StudentPlan]) -> set[int]:
    """Every PowerSchool person a student plan can write to or show: its matched persons, the candidates
    a reviewer can choose (not the other candidates of a certain match), and the linked persons."""
    ids: set[int] = set()
    for sp in students:
        for cp in sp.contacts:
            if cp.person_id is not None:
                ids.add(cp.person_id)
            if cp.match_class != MatchClass.CERTAIN or "name_mismatch" in cp.flags:
                ids.update(c.person_id for c in cp.candidates)
        ids.update(lk.person_id for lk in sp.existing_links)
    return ids


def snapshot_slice(snapshot: Snapshot, students: list[StudentPlan]) -> Snapshot:
    """The snapshot restricted to the students of `students`, the persons they name, every link of
    those students and persons, the persons of the students' links, and the portal accounts of those
    persons or signing in with an email any of them has or is given. (Nothing after planning reads
    other students.)"""
    dcids = {sp.student_dcid for sp in students}
    persons = plan_person_ids(students)
    links = [lk for lk in snapshot.links if lk.student_dcid in dcids or lk.person_id in persons]
    persons.update(lk.person_id for lk in links if lk.student_dcid in dcids)
    kept_persons = {pid: snapshot.persons[pid] for pid in sorted(persons) if pid in snapshot.persons}
    emails = {email_key(e.address) for p in kept_persons.values() for e in p.emails}
    emails.update(email_key(cp.submitted.email) for sp in students for cp in sp.contacts if cp.submitted.email)
    accounts = [a for a in snapshot.portal_accounts
                if (a.person_id is not None and a.person_id in persons) or (a.email and email_key(a.email) in emails)]
    return Snapshot(taken_at=snapshot.taken_at,
                    students={d: snapshot.students[d] for d in sorted(dcids) if d in snapshot.students},
                    persons=kept_persons, links=links, portal_accounts=accounts)


def sub_plan(plan: Plan, numbers: set[str]) -> Plan:
    """The part of `plan` for the students `numbers` (items and new contacts of those students only)."""
    students = [sp for sp in plan.students if sp.student_number in numbers]
    submissions = {sp.submission_id for sp in students}
    keys = {cp.new_key for sp in students for cp in sp.contacts if cp.new_key}
    return Plan(students=students,
                new_contacts={k: v for k, v in plan.new_contacts.items() if k in keys},
                review_items=[i for i in plan.review_items if i.submission_id in submissions])
