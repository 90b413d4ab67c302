"""Build the writeback plan: per student, the field diffs and the contact operations, and the review
items for everything a rule cannot make certain.
"""

from __future__ import annotations

import datetime as dt
import hashlib

from .matching import ContactIndex, build_index
from .models import (
    ContactAction,
    ContactMatch,
    ContactPlan,
    ExistingLink,
    FieldAction,
    FieldChange,
    FieldStatus,
    FormRecord,
    MatchClass,
    Person,
    Plan,
    ReviewItem,
    Snapshot,
    Student,
    StudentLink,
    StudentPlan,
    SubmittedContact,
    UsedBy,
    ValueChange,
    WritePolicy,
)
from .normalize import address_key, email_key, fold, phone_key, same_text
from .values import address_text


def diff_student_fields(record: FormRecord, student: Student) -> list[FieldChange]:
    """Edit / Add / Ignore per mapped field, with status keep / replace / new, and the write policy that
    decided it (see `field_change`)."""
    return [field_change(target, student.values.get(target, ""), new, target in record.blank_clears,
                         policy=record_policy(record, target))
            for target, new in record.student_fields.items()]


def record_policy(record: FormRecord, target: str) -> WritePolicy:
    return record.policies.get(target) or (
        WritePolicy.REVIEW if target in record.review_targets else WritePolicy.ALWAYS)


def field_change(target: str, old: str, new: str, clears: bool = False, review: bool = False,
                 policy: WritePolicy | None = None) -> FieldChange:
    """One field's action and status: an empty value keeps PowerSchool's unless it `clears`; a value equal
    to PowerSchool's after normalisation keeps it too (its spelling stays). Then the field's write policy:
    `if_empty` keeps a value PowerSchool has (fills only a blank), `never` keeps every value (the difference
    is shown, not written), `review` asks a person (`review=True` is the same)."""
    policy = policy or (WritePolicy.REVIEW if review else WritePolicy.ALWAYS)
    if not new and not clears:
        action, status, new = FieldAction.IGNORE, FieldStatus.KEEP, old
    elif same_text(new, old):
        action, status, new = FieldAction.IGNORE, FieldStatus.KEEP, old
    elif not old:
        action, status = FieldAction.ADD, FieldStatus.NEW
    else:
        action, status = FieldAction.EDIT, FieldStatus.REPLACE
    held = action != FieldAction.IGNORE and held_by(policy, old)
    if held:
        action, status = FieldAction.IGNORE, FieldStatus.KEEP
    return FieldChange(target=target, old=old, new=new, action=action, status=status,
                       needs_review=action != FieldAction.IGNORE and policy == WritePolicy.REVIEW, policy=policy,
                       held=held)


def held_by(policy: WritePolicy, old: str) -> bool:
    """Whether a policy keeps PowerSchool's value instead of a change: `never` always, `if_empty` when
    PowerSchool has a value (it fills blanks, never overwrites or removes)."""
    return policy == WritePolicy.NEVER or (policy == WritePolicy.IF_EMPTY and old != "")


def policy_note(policy: WritePolicy, held: bool) -> str:
    """What the page, the preview and the report say decided a field's (or a value's) status."""
    if policy == WritePolicy.ALWAYS:
        return ""
    if policy == WritePolicy.REVIEW:
        return "review: a person approves the change"
    if policy == WritePolicy.NEVER:
        return "never: compared and shown, never written" if held else "never: never written"
    return ("if_empty: PowerSchool has a value, so it is not overwritten" if held
            else "if_empty: fills a blank, never overwrites")


def household_of(student: Student) -> str:
    """The household a student belongs to: the snapshot's family, else the student alone."""
    return student.family_ident or f"dcid:{student.dcid}"


def new_contact_key(contact: SubmittedContact, region: str = "US", household: str = "") -> str:
    """Siblings' forms naming the same new parent get the same key, so one contact is created. The key
    is per household: two households naming an "Alex Kim" (even with one email) name two people until a
    reviewer says otherwise, so no new contact is ever linked to two households by the plan alone."""
    ident = email_key(contact.email) or min((p.e164 or phone_key(p.number, region) for p in contact.phones),
                                            default="")
    raw = f"{household}|{fold(contact.first_name)}|{fold(contact.last_name)}|{ident}"
    return "NEW-" + hashlib.sha256(raw.encode()).hexdigest()[:12]


def _pair_values(contact: SubmittedContact, person: Person | None, link: StudentLink | None,
                 region: str) -> tuple[list[ValueChange], list[str]]:
    """Pair submitted values with the person's (phone by type, primary email, home address)."""
    changes: list[ValueChange] = []
    flags: list[str] = []
    existing_phones = person.phones if person else []
    for phone in contact.phones:
        key = phone.e164 or phone_key(phone.number, region)
        same_number = [p for p in existing_phones if phone_key(p.number, region) == key]
        same_type = [p for p in existing_phones if p.type == phone.type]
        if any(p.type == phone.type for p in same_number):
            existing = next(p for p in same_number if p.type == phone.type)
            op = "keep" if existing.extension == phone.extension else "update"
            changes.append(ValueChange(kind="phone", key=phone.type, old=existing.number, new=phone.number,
                                       op=op, target_id=existing.id))
        elif same_number:
            existing = same_number[0]
            flags.append("phone_type_mismatch")
            changes.append(ValueChange(kind="phone_type", key=phone.type, old=existing.type, new=phone.type,
                                       op="update", target_id=existing.id))
        elif same_type:
            changes.append(ValueChange(kind="phone", key=phone.type, old=same_type[0].number, new=phone.number,
                                       op="update", target_id=same_type[0].id))
        else:
            changes.append(ValueChange(kind="phone", key=phone.type, new=phone.number, op="add"))
    submitted_types = {p.type for p in contact.phones}
    paired_ids = {c.target_id for c in changes}
    for cleared in contact.clears:  # a blank the mapping lets clear PowerSchool: remove the value it pairs with
        kind, _, phone_type = cleared.partition(":")
        if kind == "phone" and phone_type not in submitted_types:
            existing = next((p for p in existing_phones if p.type == phone_type and p.id not in paired_ids), None)
            if existing:
                changes.append(ValueChange(kind="phone", key=phone_type, old=existing.number, op="remove",
                                           target_id=existing.id))
    emails = person.emails if person else []
    primary = next((e for e in emails if e.primary), emails[0] if emails else None)
    if "email" in contact.clears and not contact.email and primary:
        changes.append(ValueChange(kind="email", key="primary", old=primary.address, op="remove",
                                   target_id=primary.id))
    if contact.email:
        same = next((e for e in emails if email_key(e.address) == email_key(contact.email)), None)
        if same:  # the address is there already (any case): keep
            changes.append(ValueChange(kind="email", key="primary", old=same.address, new=contact.email, op="keep",
                                       target_id=same.id))
        else:
            if primary:
                changes.append(ValueChange(kind="email", key="primary", old=primary.address, new=contact.email,
                                           op="update", target_id=primary.id))
            else:
                changes.append(ValueChange(kind="email", key="primary", new=contact.email, op="add"))
    if contact.address and contact.address.street:
        home = next((a for a in (person.addresses if person else []) if a.type == "Home" and not a.end_date), None)
        a = contact.address
        new_text = address_text(a.street, a.city, a.state, a.postal_code)
        if home is None:
            changes.append(ValueChange(kind="address", key="Home", new=new_text, op="add"))
        else:
            same = (address_key(home.street, home.postal_code, home.unit), fold(home.city)) == (
                address_key(contact.address.street, contact.address.postal_code), fold(contact.address.city))
            changes.append(ValueChange(kind="address", key="Home", old=address_text(home.street, home.city, home.state, home.postal_code), new=new_text,
                                       op="keep" if same else "update", target_id=home.id))
    detail = link.current_detail() if link else None
    wanted = {"relationship": contact.relationship, "emergency": contact.emergency,
              "lives_with": contact.lives_with, "custodial": contact.custodial}
    for name, value in wanted.items():
        if value is None or value == "":
            continue
        old = getattr(detail, name) if detail else None
        if old != value:
            changes.append(ValueChange(kind="detail", key=name, old=as_text(old), new=as_text(value),
                                       op="update" if detail else "add",
                                       target_id=detail.id if detail else None))
    if contact.data_access and not (link and link.can_access_data):
        changes.append(ValueChange(kind="data_access", key="can_access_data", old="0", new="1", op="update"))
    return [_with_policy(c, contact.policies) for c in changes], flags


def _policy_key(change: ValueChange) -> str:
    if change.kind == "phone":
        return f"phone:{change.key}"
    if change.kind == "detail":
        return f"detail:{change.key}"
    return change.kind  # email, address


def _with_policy(change: ValueChange, policies: dict[str, WritePolicy]) -> ValueChange:
    """A contact value under its write policy: a change the policy does not allow becomes `keep`, with the
    submitted value still shown beside PowerSchool's (`held`)."""
    policy = policies.get(_policy_key(change))
    if policy is None or change.kind in ("phone_type", "data_access", "name"):
        return change
    change.policy = policy
    if change.op != "keep" and held_by(policy, change.old):
        change.op, change.held = "keep", True
    return change


def as_text(value: object) -> str:
    """A value as the plan compares it: text, booleans as "1"/"0", None as ""."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "1" if value else "0"
    return str(value)


def _name_changes(contact: SubmittedContact, person: Person) -> list[ValueChange]:
    changes = []
    for name in ("first_name", "middle_name", "last_name"):
        new, old = getattr(contact, name), getattr(person, name)
        if new and fold(new) != fold(old):
            changes.append(ValueChange(kind="name", key=name, old=old, new=new, op="update"))
    return changes


def _used_by(person_id: int, student: Student, index: ContactIndex, snapshot: Snapshot) -> list[UsedBy]:
    others = []
    for link in index.links_by_person.get(person_id, []):
        if link.student_dcid == student.dcid:
            continue
        other = snapshot.students.get(link.student_dcid)
        detail = link.current_detail()
        others.append(UsedBy(student_number=other.student_number if other else "", student_dcid=link.student_dcid,
                             relationship=detail.relationship if detail else ""))
    return others


def portal_accounts_by_email(snapshot: Snapshot) -> dict[str, list[int | None]]:
    """The person id of each portal account (None: linked to nobody), by the account's email key."""
    accounts: dict[str, list[int | None]] = {}
    for a in snapshot.portal_accounts:
        accounts.setdefault(email_key(a.email), []).append(a.person_id)
    return accounts


def _portal_conflict(email: str, person_id: int | None, accounts: dict[str, list[int | None]]) -> bool:
    """True when another portal account uses the email. An account linked to nobody is another account
    too (a new contact has no person id, and None == None must not read as "the same person")."""
    return any(owner is None or owner != person_id for owner in accounts.get(email_key(email), []))


def _portal_email_problem(contact: SubmittedContact, person: Person | None, person_id: int | None,
                          accounts: dict[str, list[int | None]]) -> str | None:
    """Why Data Access cannot be granted as asked: no email at all, or an email of another portal account."""
    if not contact.data_access:
        return None
    email = contact.email or next((e.address for e in (person.emails if person else []) if e.primary),
                                  person.emails[0].address if person and person.emails else "")
    if not email:
        return "no_email"
    if contact.email and _portal_conflict(contact.email, person_id, accounts):
        return "email_in_use"
    return None


def plan_student(record: FormRecord, student: Student, snapshot: Snapshot, index: ContactIndex,
                 matches: dict[tuple[str, int], ContactMatch], today: dt.date, region: str,
                 portal: dict[str, list[int | None]] | None = None) -> StudentPlan:
    """One student's plan. `portal` is `portal_accounts_by_email(snapshot)`, built once per run."""
    links = index.links_by_student.get(student.dcid, [])
    plan = StudentPlan(
        submission_id=record.submission_id, student_number=student.student_number, student_dcid=student.dcid,
        field_changes=diff_student_fields(record, student), mapping=record.mapping,
        order_reason=record.order_reason, notes=list(record.notes),
        existing_links=[ExistingLink(link_id=lk.id, person_id=lk.person_id, sequence=lk.sequence,
                                     expired=lk.is_expired(today)) for lk in links],
        forms=record.forms,
    )
    for contact in record.contacts:
        result = matches[(record.submission_id, contact.slot)]
        cp = ContactPlan(slot=contact.slot, submitted=contact, match_class=result.match_class,
                         person_id=result.person_id, candidates=result.candidates[:5], flags=list(result.flags),
                         new_key=new_contact_key(contact, region, household_of(student)))
        if contact.remove and result.person_id is None and result.slot_person_id is not None:
            # a family removing a contact names the one in that slot, maybe by a nickname: the
            # removal targets the slot's person, and the reviewer sees the name mismatch on the item
            cp.person_id = result.slot_person_id
        person = snapshot.persons.get(cp.person_id) if cp.person_id else None
        link = next((lk for lk in links if lk.person_id == cp.person_id), None) if person else None
        cp.link_id = link.id if link else None
        if contact.remove:
            cp.action = ContactAction.EXPIRE if link else ContactAction.DO_NOT_UPDATE
        elif result.match_class == MatchClass.NONE:
            cp.action = ContactAction.CREATE
        values, flags = _pair_values(contact, person, link, region)
        cp.changes = values
        cp.flags += flags
        if person:
            cp.used_by = _used_by(person.id, student, index, snapshot)
            if cp.used_by:
                cp.flags.append("used_by")
        if result.match_class != MatchClass.CERTAIN:  # a reviewer confirming a shared person sees who shares it
            cp.candidates = [c.model_copy(update={"used_by": _used_by(c.person_id, student, index, snapshot)})
                             for c in cp.candidates]
        portal_problem = _portal_email_problem(contact, person, result.person_id,
                                               portal if portal is not None else portal_accounts_by_email(snapshot))
        if portal_problem:
            cp.flags.append("portal_email_conflict")
        plan.contacts.append(cp)
    return plan


def review_items_for(sp: StudentPlan, snapshot: Snapshot) -> list[ReviewItem]:
    """Everything in one student's plan that a person must decide."""
    items: list[ReviewItem] = []
    base = f"{sp.submission_id}"
    for fc in sp.field_changes:
        if fc.needs_review:
            items.append(ReviewItem(
                key=f"{base}:field:{fc.target}", kind="field_change", submission_id=sp.submission_id,
                student_number=sp.student_number, target=fc.target, options=["approve", "ignore"],
                payload={"old": fc.old, "new": fc.new, "action": fc.action, "status": fc.status}))
    for cp in sp.contacts:
        common = {"submission_id": sp.submission_id, "student_number": sp.student_number, "slot": cp.slot}
        submitted = cp.submitted.model_dump(mode="json")
        candidates = [c.model_dump() for c in cp.candidates]
        if cp.submitted.remove:
            if cp.link_id:
                items.append(ReviewItem(key=f"{base}:contact{cp.slot}:removal", kind="contact_removal",
                                        options=["expire", "unlink", "do_not_update"], default="expire",
                                        payload={"submitted": submitted, "person_id": cp.person_id,
                                                 "flags": cp.flags, "candidates": candidates}, **common))
            continue
        if "name_mismatch" in cp.flags:
            slot_person = next((c for c in cp.candidates if any("slot" in r for r in c.reasons)), None)
            items.append(ReviewItem(
                key=f"{base}:contact{cp.slot}:name", kind="name_mismatch",
                options=["same_person_keep_name", "same_person_update_name", "new_contact_keep_old",
                         "new_contact_expire_old", "do_not_update"],
                payload={"submitted": submitted, "slot_person": slot_person.model_dump() if slot_person else None,
                         "candidates": candidates}, **common))
        elif cp.match_class == MatchClass.POSSIBLE:
            items.append(ReviewItem(
                key=f"{base}:contact{cp.slot}:match", kind="possible_match",
                options=[f"confirm:{c.person_id}" for c in cp.candidates] + ["not_a_match", "do_not_update"],
                payload={"submitted": submitted, "candidates": candidates}, **common))
        for change in cp.changes:
            if change.kind == "phone_type":
                items.append(ReviewItem(
                    key=f"{base}:contact{cp.slot}:phone_type:{change.target_id}", kind="phone_type_mismatch",
                    options=["use_submitted_type", "keep_powerschool_type", "do_not_update"],
                    payload={"phone_id": change.target_id, "powerschool_type": change.old,
                             "submitted_type": change.new, "submitted": submitted}, **common))
        if cp.used_by and any(c.op != "keep" and c.kind in {"name", "phone", "phone_type", "email", "address"}
                              for c in cp.changes):
            items.append(ReviewItem(
                key=f"{base}:contact{cp.slot}:shared", kind="shared_contact_change",
                options=["approve", "do_not_update"],
                payload={"person_id": cp.person_id, "used_by": [u.model_dump() for u in cp.used_by],
                         "changes": [c.model_dump() for c in cp.changes if c.op != "keep"]}, **common))
        if "portal_email_conflict" in cp.flags:
            items.append(ReviewItem(
                key=f"{base}:contact{cp.slot}:portal", kind="portal_email_conflict",
                options=["skip_data_access", "do_not_update"], default="skip_data_access",
                payload={"email": cp.submitted.email, "person_id": cp.person_id,
                         "reason": "email_in_use" if cp.submitted.email else "no_email"}, **common))
    return items


def build_plan(records: list[FormRecord], snapshot: Snapshot, matches: dict[tuple[str, int], ContactMatch],
               today: dt.date, region: str = "US") -> Plan:
    """The whole run's plan. Records whose student is not in the snapshot must be quarantined earlier; a
    student's several forms must be merged into one record first (`forms.merge_forms`): one plan per
    student, so no two plans share an op key or a review document."""
    from .forms import review_items as form_items  # forms.py builds on this module

    seen: dict[str, str] = {}
    for record in records:
        if record.student_number in seen:
            raise ValueError(f"student {record.student_number} has two records ({seen[record.student_number]}, "
                             f"{record.submission_id}); merge a student's forms before planning")
        seen[record.student_number] = record.submission_id
    index = build_index(snapshot, region)
    by_number = snapshot.student_by_number()
    portal = portal_accounts_by_email(snapshot)
    plan = Plan()
    for record in records:
        student = by_number[record.student_number]
        plan.students.append(plan_student(record, student, snapshot, index, matches, today, region, portal))
    _unite_new_contacts(plan, snapshot, region)
    for sp in plan.students:
        for cp in sp.contacts:
            if cp.match_class != MatchClass.CERTAIN and cp.new_key:
                plan.new_contacts.setdefault(cp.new_key, cp.submitted)
        plan.review_items.extend(review_items_for(sp, snapshot))
        plan.review_items.extend(form_items(sp))
    plan.review_items.extend(conflicting_values(plan))
    return plan


SHARED_VALUE_KINDS = {"phone", "email", "address"}  # person-level values siblings' forms may both set


def conflict_key(person_id: int, kind: str, key: str) -> str:
    return f"conflict:p:{person_id}:{kind}:{key}"


def conflicting_values(plan: Plan) -> list[ReviewItem]:
    """Siblings' forms that set one shared contact's value to different things: a person chooses which
    form is right, instead of the first form silently winning."""
    proposals: dict[tuple[int, str, str], dict[str, tuple[str, str]]] = {}
    changing: set[tuple[int, str, str]] = set()
    for sp in plan.students:
        for cp in sp.contacts:
            if cp.match_class != MatchClass.CERTAIN or cp.person_id is None or cp.submitted.remove:
                continue
            for c in cp.changes:
                if c.kind in SHARED_VALUE_KINDS:
                    # a form confirming today's value disagrees with one changing (or removing) it as much
                    # as two forms changing it differently
                    proposals.setdefault((cp.person_id, c.kind, c.key), {})[sp.submission_id] = (
                        sp.student_number, c.new)
                    if c.op != "keep":
                        changing.add((cp.person_id, c.kind, c.key))
    items = []
    for (person_id, kind, key), by_form in sorted(proposals.items()):
        values = {_comparable(kind, new) for _, new in by_form.values()}
        if len(by_form) < 2 or len(values) < 2 or (person_id, kind, key) not in changing:
            continue
        items.append(ReviewItem(
            key=conflict_key(person_id, kind, key), kind="conflicting_forms", submission_id="*",
            student_number="*", options=[f"use:{sid}" for sid in sorted(by_form)] + ["do_not_update"],
            payload={"person_id": person_id, "kind": kind, "key": key,
                     "proposals": [{"submission_id": sid, "student_number": number, "new": new}
                                   for sid, (number, new) in sorted(by_form.items())]}))
    return items


def _comparable(kind: str, value: str) -> str:
    if kind == "phone":
        return phone_key(value)
    if kind == "email":
        return email_key(value)
    return fold(value)


def _unite_new_contacts(plan: Plan, snapshot: Snapshot, region: str) -> None:
    """Siblings' forms naming one new parent share one key even when one form carries the email and the
    other only the phone: within a household, the same folded name and any equal email or phone unite
    their keys (the smallest key of the group names it, so record order does not matter)."""
    family_of = {s.dcid: household_of(s) for s in snapshot.students.values()}
    groups: dict[tuple[str, str, str], list[ContactPlan]] = {}
    for sp in plan.students:
        for cp in sp.contacts:
            if cp.match_class != MatchClass.CERTAIN and cp.new_key and not cp.submitted.remove:
                name = (family_of.get(sp.student_dcid, ""), fold(cp.submitted.first_name),
                        fold(cp.submitted.last_name))
                groups.setdefault(name, []).append(cp)
    for members in groups.values():
        parent = {cp.new_key: cp.new_key for cp in members}
        for i, a in enumerate(members):
            for b in members[i + 1:]:
                if _contact_values(a, region) & _contact_values(b, region):
                    ra, rb = _root(parent, a.new_key), _root(parent, b.new_key)
                    if ra != rb:
                        parent[max(ra, rb)] = min(ra, rb)
        for cp in members:
            cp.new_key = _root(parent, cp.new_key)


def _root(parent: dict[str, str], key: str) -> str:
    while parent[key] != key:
        key = parent[key]
    return key


def _contact_values(cp: ContactPlan, region: str) -> set[str]:
    email = email_key(cp.submitted.email)
    phones = {p.e164 or phone_key(p.number, region) for p in cp.submitted.phones}
    return ({f"e:{email}"} if email else set()) | {f"p:{p}" for p in phones if p}
