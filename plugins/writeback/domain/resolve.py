"""Turn a plan and the reviewers' decisions into the exact list of PowerSchool writes.

Pure and deterministic: the same plan and decisions always give the same operations in the same
order, so the hash taken at approval proves what apply executes.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from dataclasses import dataclass

from .codes import ADDRESS_TYPE, DEFAULT_RELATIONSHIP
from .forms import chosen_plan
from .models import (
    ContactAction,
    ContactPlan,
    Decision,
    FieldAction,
    MatchClass,
    Plan,
    ReviewItem,
    Snapshot,
    StudentLink,
    StudentPlan,
    WriteOp,
)
from .plan import _name_changes, _pair_values, conflict_key
from .targets import address_group
from .values import chosen, paired_ref, portal_emails_by_person, value_rows


@dataclass(frozen=True)
class _Lookups:
    """Indexes over the snapshot, built once per resolve (the plan may hold tens of thousands of contacts)."""

    links: dict[tuple[int, int], StudentLink]
    portal_emails: dict[int, set[str]]


class UnresolvedItems(ValueError):
    """Apply was asked to run while items are still pending."""

    def __init__(self, keys: list[str]):
        self.keys = keys
        super().__init__(f"{len(keys)} review item(s) are not decided")


def ops_hash(ops: list[WriteOp]) -> str:
    canonical = json.dumps([op.model_dump(mode="json") for op in ops], sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).hexdigest()


def plan_hash(plan: Plan) -> str:
    return hashlib.sha256(plan.model_dump_json().encode()).hexdigest()


def _choice(decisions: dict[str, Decision], item: ReviewItem | None) -> Decision | None:
    return decisions.get(item.key) if item else None


def resolve(plan: Plan, decisions: dict[str, Decision], snapshot: Snapshot, today: dt.date,
            region: str = "US", orders: dict[str, list[str]] | None = None,
            values: dict[str, dict[str, str]] | None = None) -> list[WriteOp]:
    """Every write the approved plan makes, in the order apply executes them.

    `orders` holds reviewers' contact orders by student number: refs `slot:<n>` (the form's contact in
    slot n, whoever it resolves to) and `p:<person id>` (a link the form does not name). `values` holds
    reviewers' per-value choices by student number (see `values.py`).
    """
    items_by_student: dict[str, list[ReviewItem]] = {}
    for item in plan.review_items:
        items_by_student.setdefault(item.submission_id, []).append(item)
    pending = [i.key for i in plan.review_items if i.key not in decisions]
    if pending:
        raise UnresolvedItems(pending)
    ops: list[WriteOp] = []
    created: set[str] = set()
    context = _Lookups(links={(lk.person_id, lk.student_dcid): lk for lk in snapshot.links},
                       portal_emails=portal_emails_by_person(snapshot))
    for sp in plan.students:
        ops.extend(_student_ops(sp, items_by_student.get(sp.submission_id, []), decisions, snapshot, context,
                                today, region, created, (orders or {}).get(sp.student_number),
                                (values or {}).get(sp.student_number) or {}))
    seen: set[str] = set()
    unique = []
    for op in ops:  # siblings' forms may ask for the same write to a shared new contact
        if op.key not in seen:
            seen.add(op.key)
            unique.append(op)
    return unique


def _student_ops(sp: StudentPlan, items: list[ReviewItem], decisions: dict[str, Decision], snapshot: Snapshot,
                 lookups: _Lookups, today: dt.date, region: str, created: set[str],
                 reviewer_order: list[str] | None = None, value_choices: dict[str, str] | None = None
                 ) -> list[WriteOp]:
    sp, decisions = chosen_plan(sp, decisions, today)  # where a student's forms disagree: the chosen value
    by_key = {i.key: i for i in items}
    ops: list[WriteOp] = []
    fields, expected = {}, {}
    for fc in sp.field_changes:
        if fc.action == FieldAction.IGNORE:
            continue
        decision = decisions.get(f"{sp.submission_id}:field:{fc.target}")
        if fc.needs_review and (decision is None or decision.choice != "approve"):
            continue
        fields[fc.target], expected[fc.target] = fc.new, fc.old
    # PowerSchool takes an address block whole: send its unchanged parts along with the changed ones.
    groups = {address_group(t) for t in fields} - {None}
    for fc in sp.field_changes:
        if address_group(fc.target) in groups and fc.target not in fields and fc.old:
            fields[fc.target], expected[fc.target] = fc.old, fc.old
    if fields:
        ops.append(WriteOp(key=f"student:{sp.student_dcid}", kind="student_update", student_dcid=sp.student_dcid,
                           student_number=sp.student_number, values=fields, expected=expected))

    order: list[tuple[int, str]] = []  # (form slot, person ref) of the contacts the form places
    places = {cp.slot: cp.submitted.place for cp in sp.contacts}  # the place the mapping gives each slot
    ending: dict[str, str] = {}  # person ref -> "expire:<date>" | "unlink"
    for cp in sp.contacts:
        outcome = _contact_outcome(cp, sp, by_key, decisions)
        if outcome is None:
            continue
        kind, person_id, keep_name, end = outcome
        if kind == "skip":
            continue
        if kind == "end":
            link = next((lk for lk in sp.existing_links if lk.person_id == person_id), None)
            if link:
                ending[f"p:{person_id}"] = end
            continue
        if kind == "keep_slot":
            order.append((cp.slot, f"p:{person_id}"))
            continue
        if kind == "create":
            ref = f"new:{cp.new_key}"
            person, link = None, None
            if cp.new_key not in created:
                created.add(cp.new_key)
                ops.append(WriteOp(key=f"create:{cp.new_key}", kind="contact_create", person_ref=ref,
                                   student_number=sp.student_number,
                                   values={"first_name": cp.submitted.first_name,
                                           "middle_name": cp.submitted.middle_name,
                                           "last_name": cp.submitted.last_name}))
        else:
            ref = f"p:{person_id}"
            person = snapshot.persons.get(person_id)
            link = lookups.links.get((person_id, sp.student_dcid))
        ops.extend(_contact_value_ops(cp, sp, ref, person, link, decisions, keep_name, today, region,
                                      value_choices or {},
                                      lookups.portal_emails.get(person_id, set()) if person else set()))
        order.append((cp.slot, ref))
        if end:
            ending[f"p:{end}"] = f"expire:{today.isoformat()}"

    if any(op.kind != "student_update" for op in ops) or ending or order or reviewer_order:
        ops.extend(_cleanup_ops(sp, order, ending, today, reviewer_order, places))
    return ops


def _contact_outcome(cp: ContactPlan, sp: StudentPlan, by_key: dict[str, ReviewItem],
                     decisions: dict[str, Decision]) -> tuple[str, int | None, bool, str] | None:
    """(kind, person id, keep PowerSchool's name, extra) for one contact after its decisions.

    kind: update | create | skip (do not update, not in the order) | keep_slot (no writes, keeps its place)
    | end (expire/unlink an existing link; extra is "expire:<date>" or "unlink").
    """
    base = f"{sp.submission_id}:contact{cp.slot}"
    if cp.submitted.remove:
        d = decisions.get(f"{base}:removal")
        if d is None or cp.person_id is None:
            return ("skip", None, True, "")
        if d.choice == "expire":
            return ("end", cp.person_id, True, f"expire:{d.data.get('end_date') or ''}")
        if d.choice == "unlink":
            return ("end", cp.person_id, True, "unlink")
        return ("keep_slot", cp.person_id, True, "")
    person_id, keep_name = cp.person_id, True
    name_d = decisions.get(f"{base}:name")
    match_d = decisions.get(f"{base}:match")
    extra = ""
    if name_d:
        slot_person = next((c.person_id for c in cp.candidates if any("slot" in r for r in c.reasons)), None)
        if name_d.choice == "do_not_update":
            return ("keep_slot", slot_person, True, "") if slot_person else ("skip", None, True, "")
        if name_d.choice.startswith("same_person"):
            person_id, keep_name = slot_person, name_d.choice == "same_person_keep_name"
        else:
            person_id = None
            if name_d.choice == "new_contact_expire_old" and slot_person:
                extra = str(slot_person)
    elif match_d:
        if match_d.choice == "do_not_update":
            return ("skip", None, True, "")
        if match_d.choice.startswith("confirm:"):
            # "same person" is not "rename": a differing name on a confirmed match is a typo or a nickname
            # far more often than a new name, and the person may be shared. Renaming is the explicit
            # name_mismatch choice same_person_update_name.
            person_id = int(match_d.choice.split(":", 1)[1])
        else:
            person_id = None
    elif cp.match_class != MatchClass.CERTAIN:
        person_id = None
    if cp.action == ContactAction.DO_NOT_UPDATE:
        return ("skip", None, True, "")
    if person_id is None:
        return ("create", None, False, extra)
    if decisions.get(f"{base}:shared") and decisions[f"{base}:shared"].choice == "do_not_update":
        return ("keep_slot", person_id, True, "")
    return ("update", person_id, keep_name, extra)


def _contact_value_ops(cp: ContactPlan, sp: StudentPlan, ref: str, person, link: StudentLink | None,
                       decisions: dict[str, Decision], keep_name: bool, today: dt.date, region: str,
                       value_choices: dict[str, str], protected_emails: set[str]) -> list[WriteOp]:
    base = f"{sp.submission_id}:contact{cp.slot}"
    owner = ref if ref.startswith("new:") else f"{ref}"
    ops: list[WriteOp] = []
    common = {"person_ref": ref, "student_number": sp.student_number}
    changes, _ = _pair_values(cp.submitted, person, link, region)
    if person is not None:  # a value siblings' forms disagree on is written only from the chosen form
        changes = [c for c in changes if _chosen(decisions, person.id, c, sp.submission_id)]
    if person is not None and not keep_name:
        changes = _name_changes(cp.submitted, person) + changes
    name_values = {c.key: c.new for c in changes if c.kind == "name"}
    if name_values:
        ops.append(WriteOp(key=f"name:{owner}", kind="contact_name", values=name_values,
                           expected={c.key: c.old for c in changes if c.kind == "name"}, **common))
    rows = {r.ref: r for r in value_rows(cp, person, changes, protected_emails)}
    for c in changes:
        if c.kind == "phone_type":
            d = decisions.get(f"{base}:phone_type:{c.target_id}")
            if d and d.choice == "use_submitted_type":
                ops.append(WriteOp(key=f"phone_type:{owner}:{c.target_id}", kind="phone_update",
                                   target_id=c.target_id, values={"type": c.new}, expected={"type": c.old},
                                   **common))
            continue
        row = rows.get(paired_ref(cp.slot, c)) if c.op != "keep" else None
        if row is None:
            continue
        choice = chosen(row, value_choices)
        if choice in {"do_not_update", "keep"}:
            continue
        if c.op == "remove":
            ops.append(_delete_op(c.kind, owner, c.target_id, c.old, common))
        elif c.kind == "phone":
            phone = next(p for p in cp.submitted.phones if p.type == c.key)
            values = {"number": phone.number, "extension": phone.extension, "type": phone.type}
            if c.op == "add" or choice == "keep_and_add":
                ops.append(WriteOp(key=f"phone_add:{owner}:{c.key}", kind="phone_add", values=values, **common))
            else:
                ops.append(WriteOp(key=f"phone_update:{owner}:{c.target_id}", kind="phone_update",
                                   target_id=c.target_id, values=values, expected={"number": c.old}, **common))
        elif c.kind == "email":
            # keep_and_add: the old address stays (no longer primary) and the new one is added as primary
            kind = "email_add" if c.op == "add" or choice == "keep_and_add" else "email_update"
            target = c.target_id if kind == "email_update" else None
            ops.append(WriteOp(key=f"{kind}:{owner}:{target or 'primary'}", kind=kind, target_id=target,
                               values={"address": cp.submitted.email},
                               expected={"address": c.old} if c.old and target else {}, **common))
        elif c.kind == "address":
            a = cp.submitted.address
            values = {"type": ADDRESS_TYPE, "street": a.street, "city": a.city, "state": a.state,
                      "postal_code": a.postal_code, "start_date": today.isoformat()}
            kind = "address_add" if c.op == "add" else "address_update"
            ops.append(WriteOp(key=f"{kind}:{owner}:{c.target_id or 'Home'}", kind=kind, target_id=c.target_id,
                               values=values, expected={"address": c.old} if c.old else {}, **common))
    for row in rows.values():  # the person's other values a reviewer chose to remove
        if row.op == "keep" and chosen(row, value_choices) == "remove":
            ops.append(_delete_op(row.kind, owner, row.target_id, row.old, common))
    detail_values = {c.key: c.new for c in changes if c.kind == "detail" and c.op != "keep"}  # not held
    if link is None:
        relationship = (detail_values.get("relationship") or cp.submitted.default_relationship
                        or DEFAULT_RELATIONSHIP)
        ops.append(WriteOp(key=f"link:{owner}:{sp.student_dcid}", kind="link_add", student_dcid=sp.student_dcid,
                           values={"relationship": relationship,
                                   **{k: v == "1" for k, v in detail_values.items() if k != "relationship"},
                                   "start_date": today.isoformat()}, **common))
    elif detail_values:
        detail = link.current_detail()
        ops.append(WriteOp(key=f"detail:{owner}:{sp.student_dcid}", kind="detail_update",
                           student_dcid=sp.student_dcid, target_id=detail.id if detail else None,
                           values={"link_id": link.id, **detail_values},
                           expected={c.key: c.old for c in changes if c.kind == "detail"}, **common))
    wants_access = any(c.kind == "data_access" for c in changes)
    portal = decisions.get(f"{base}:portal")
    if wants_access and not (portal and portal.choice in {"skip_data_access", "do_not_update"}):
        ops.append(WriteOp(key=f"access:{owner}:{sp.student_dcid}", kind="data_access",
                           student_dcid=sp.student_dcid, values={"can_access_data": True}, **common))
    return ops


def _delete_op(kind: str, owner: str, target_id: int | None, old: str, common: dict) -> WriteOp:
    """Remove one phone, email or address of a person (the value the reviewer saw is the one expected)."""
    field = {"phone": "number", "email": "address", "address": "address"}[kind]
    return WriteOp(key=f"{kind}_delete:{owner}:{target_id}", kind=f"{kind}_delete", target_id=target_id,
                   expected={field: old}, **common)


def _chosen(decisions: dict[str, Decision], person_id: int, change, submission_id: str) -> bool:
    decision = decisions.get(conflict_key(person_id, change.kind, change.key))
    return decision is None or decision.choice == f"use:{submission_id}"


def _cleanup_ops(sp: StudentPlan, order: list[tuple[int, str]], ending: dict[str, str],
                 today: dt.date, reviewer_order: list[str] | None = None,
                 places: dict[int, int] | None = None) -> list[WriteOp]:
    """Expirations, unlinks, and the final order: each form contact at the place its mapping gives it (its
    section's position, or what a combination rule decided; the template's slot n is place n), the links
    the form does not name filling the other places in their PowerSchool order, expired last."""
    places = places or {}
    ops: list[WriteOp] = []
    for ref, how in sorted(ending.items()):
        person_id = int(ref.split(":")[1])
        link = next((lk for lk in sp.existing_links if lk.person_id == person_id), None)
        if link is None:
            continue
        if how == "unlink":
            ops.append(WriteOp(key=f"unlink:{ref}:{sp.student_dcid}", kind="link_delete", stage="cleanup",
                               student_dcid=sp.student_dcid, student_number=sp.student_number, person_ref=ref,
                               target_id=link.link_id))
        else:
            end_date = how.split(":", 1)[1] or today.isoformat()
            ops.append(WriteOp(key=f"expire:{ref}:{sp.student_dcid}", kind="link_expire", stage="cleanup",
                               student_dcid=sp.student_dcid, student_number=sp.student_number, person_ref=ref,
                               target_id=link.link_id, values={"end_date": end_date}))
    unlinked = {ref for ref, how in ending.items() if how == "unlink"}
    expired_now = {ref for ref, how in ending.items() if how != "unlink"}
    seen = {ref for _, ref in order}
    placed: list[tuple[int, str]] = []
    for slot, ref in sorted(order, key=lambda p: (places.get(p[0], p[0]), p[0])):
        if ref not in ending and ref not in {r for _, r in placed}:  # one place per person
            placed.append((places.get(slot, slot), ref))
    rest = sorted((lk for lk in sp.existing_links if f"p:{lk.person_id}" not in seen | set(ending)),
                  key=lambda lk: lk.sequence)
    untouched = [f"p:{lk.person_id}" for lk in rest if not lk.expired]
    final: list[str] = []
    while placed or untouched:  # a form contact in slot N goes to place N when the places before are filled
        if placed and (not untouched or placed[0][0] <= len(final) + 1):
            final.append(placed.pop(0)[1])
        else:
            final.append(untouched.pop(0))
    if reviewer_order:  # a reviewer's order moves the active links; it never rewrites a person
        by_slot = dict(order)
        wanted = [by_slot.get(int(r.split(":")[1])) if r.startswith("slot:") else r for r in reviewer_order]
        wanted = [r for i, r in enumerate(wanted) if r in final and r not in wanted[:i]]
        final = wanted + [r for r in final if r not in wanted]
    final += [f"p:{lk.person_id}" for lk in rest if lk.expired]  # expired contacts always go last
    final += sorted(expired_now - unlinked)
    current = [f"p:{lk.person_id}" for lk in sorted(sp.existing_links, key=lambda lk: lk.sequence)
               if f"p:{lk.person_id}" not in unlinked]
    if final != current:
        ops.append(WriteOp(key=f"order:{sp.student_dcid}", kind="contact_order", stage="cleanup",
                           student_dcid=sp.student_dcid, student_number=sp.student_number,
                           values={"order": final}, expected={"order": current}))
    return ops
