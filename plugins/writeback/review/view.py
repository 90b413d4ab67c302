"""What the review page and the JSON API show: plain dicts built from the store's run, plan and items."""

from __future__ import annotations

import datetime as dt
from collections import Counter, defaultdict
from typing import Any

from ..domain.models import ContactPlan, FieldChange, Plan, Snapshot, StudentPlan
from ..domain.plan import policy_note
from ..domain.values import ValueRow, chosen, invalid_choices, portal_emails_by_person, value_rows
from ..store.schema import QuarantineRow, ReviewItemRow, Run
from .auth import dag_id_for

KINDS = ["possible_match", "name_mismatch", "phone_type_mismatch", "shared_contact_change",
         "portal_email_conflict", "field_change", "contact_removal", "batch_approval", "conflicting_forms",
         "submissions_disagree", "stale_write", "ambiguous_create"]
STATES = ["pending", "decided"]

KIND_LABELS = {
    "possible_match": "Possible match",
    "name_mismatch": "Name mismatch",
    "phone_type_mismatch": "Phone type mismatch",
    "shared_contact_change": "Shared contact change",
    "portal_email_conflict": "Parent portal email conflict",
    "field_change": "Field change",
    "contact_removal": "Contact removal",
    "batch_approval": "Large change: approve the whole batch",
    "conflicting_forms": "Siblings' forms disagree",
    "submissions_disagree": "This student's forms disagree",
    "stale_write": "Changed in PowerSchool before apply",
    "ambiguous_create": "Was this new contact created?",
}

CHOICE_LABELS = {
    "not_a_match": "Not a match (new contact)",
    "do_not_update": "Do not update",
    "approve": "Approve",
    "ignore": "Ignore",
    "expire": "Expire",
    "unlink": "Unlink",
    "skip_data_access": "Skip data access",
    "same_person_keep_name": "Same person, keep PowerSchool name",
    "same_person_update_name": "Same person, update name",
    "new_contact_keep_old": "New contact, keep old link",
    "new_contact_expire_old": "New contact, expire old link",
    "use_submitted_type": "Use submitted phone type",
    "keep_powerschool_type": "Keep PowerSchool phone type",
    "update": "Update",
    "keep_and_add": "Do not update it; add the new value",
    "add": "Add",
    "remove": "Remove",
    "keep": "Keep",
    "create_new": "Not one of these: create the contact",
    "skip": "Do not create it",
}

# Bulk "approve everything safe": the kinds a rule can decide, and how. Matches, name and phone-type
# mismatches always need a person.
SAFE_CHOICES = {
    "field_change": "approve",
    "shared_contact_change": "approve",
    "portal_email_conflict": "skip_data_access",
    "contact_removal": "expire",
}

ENDING_CHOICES = {"expire", "unlink"}


def choice_label(choice: str, candidates: dict[int, dict[str, Any]] | None = None) -> str:
    if choice.startswith("confirm:"):
        pid = choice.split(":", 1)[1]
        cand = (candidates or {}).get(int(pid)) if pid.isdigit() else None
        name = f" {cand.get('first_name', '')} {cand.get('last_name', '')}".rstrip() if cand else ""
        return f"Confirm #{pid}{name}"
    if choice.startswith("use:"):
        return f"Use submission {choice.split(':', 1)[1]}"
    if choice.startswith("adopt:"):
        return f"It is #{choice.split(':', 1)[1]}"
    return CHOICE_LABELS.get(choice, choice.replace("_", " ").capitalize())


def item_json(row: ReviewItemRow) -> dict[str, Any]:
    return {
        "run_id": row.run_id, "key": row.item_key, "kind": row.kind, "submission_id": row.submission_id,
        "student_number": row.student_number, "slot": row.slot, "options": list(row.options or []),
        "payload": row.payload or {}, "state": row.state, "choice": row.choice,
        "data": row.decision_data or {}, "decided_by": row.decided_by,
        "decided_at": row.decided_at.isoformat() if row.decided_at else None, "comment": row.comment or "",
        "version": row.version,
    }


def quarantine_json(rows: list[QuarantineRow]) -> list[dict[str, Any]]:
    return [{"submission_id": r.submission_id, "field": r.field, "reason": r.reason, "value": r.value,
             "check": r.check} for r in rows]


def run_json(run: Run, items: list[ReviewItemRow], quarantined: list[QuarantineRow]) -> dict[str, Any]:
    decided = sum(1 for i in items if i.state == "decided")
    return {
        "id": run.id, "district": run.district, "dag_id": dag_id_for(run.district), "dag_run_id": run.dag_run_id,
        "status": run.status, "dry_run": run.dry_run,
        "created_at": run.created_at.isoformat() if run.created_at else None,
        "approved": bool(run.approved_hash),
        "items": {"total": len(items), "decided": decided, "pending": len(items) - decided},
        "quarantined": {"records": len({q.submission_id for q in quarantined}), "problems": len(quarantined)},
    }


# ---------------------------------------------------------------- one student's panel


def contact_ref(cp: ContactPlan) -> str:
    """A form contact's place in a reorder: its form slot (the person behind it may still be undecided)."""
    return f"slot:{cp.slot}"


def _person_name(snapshot: Snapshot | None, person_id: int | None) -> str:
    if snapshot is None or person_id is None:
        return ""
    p = snapshot.persons.get(person_id)
    return f"{p.first_name} {p.last_name}".strip() if p else ""


def run_wide_items(items: list[ReviewItemRow]) -> list[dict[str, Any]]:
    """Items that belong to no single student (a batch hold, siblings' forms that disagree)."""
    return [_item_view(i) for i in items if i.submission_id == "*"]


def _item_view(row: ReviewItemRow) -> dict[str, Any]:
    payload = row.payload or {}
    candidates = {c["person_id"]: c for c in payload.get("candidates", []) if "person_id" in c}
    options = [{"value": o, "label": choice_label(o, candidates), "needs_date": o == "expire",
                "chosen": row.state == "decided" and row.choice == o} for o in row.options or []]
    return {**item_json(row), "label": KIND_LABELS.get(row.kind, row.kind), "option_views": options,
            "choice_label": choice_label(row.choice, candidates) if row.choice else ""}


def contact_value_rows(cp: ContactPlan, snapshot: Snapshot | None,
                       portal: dict[int, set[str]] | None = None) -> list[ValueRow]:
    """The values of a form contact a reviewer may decide one by one (see domain/values.py)."""
    person = snapshot.persons.get(cp.person_id) if snapshot and cp.person_id is not None else None
    protected = (portal if portal is not None else portal_emails_by_person(snapshot) if snapshot else {}).get(
        cp.person_id, set())
    return value_rows(cp, person, cp.changes, protected)


def student_value_rows(sp: StudentPlan, snapshot: Snapshot | None) -> list[ValueRow]:
    portal = portal_emails_by_person(snapshot) if snapshot else {}
    return [r for cp in sp.contacts for r in contact_value_rows(cp, snapshot, portal)]


def checked_value_choices(sp: StudentPlan, snapshot: Snapshot | None,
                          choices: dict[str, str]) -> tuple[list[str], dict[str, str]]:
    """(why the choices cannot be saved, the choices that differ from the plan's proposal)."""
    rows = student_value_rows(sp, snapshot)
    defaults = {r.ref: r.default for r in rows}
    return invalid_choices(rows, choices), {ref: c for ref, c in choices.items() if defaults.get(ref) != c}


def values_document(sp: StudentPlan, choices: dict[str, str], user: str,
                    previous: dict[str, Any] | None) -> dict[str, Any]:
    """What a reviewer's per-value choices store under `values:<student number>`."""
    return {"student_number": sp.student_number, "choices": dict(sorted(choices.items())), "decided_by": user,
            "decided_at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
            "version": int((previous or {}).get("version", 0)) + 1}


def _value_views(cp: ContactPlan, snapshot: Snapshot | None, choices: dict[str, str],
                 portal: dict[int, set[str]] | None) -> list[dict[str, Any]]:
    """One line per value of the card: the plan's pairing, and a choice where the reviewer has one."""
    rows = {r.ref: r for r in contact_value_rows(cp, snapshot, portal)}
    lines = []
    for c in cp.changes:
        ref = f"slot:{cp.slot}:{c.kind}:{c.key}"
        note = policy_note(c.policy, c.held) if c.held else ""
        lines.append((c.kind, c.key, c.old, c.new, c.op, rows.pop(ref, None) if c.op != "keep" else None, note))
    lines += [(r.kind, r.key, r.old, "", "other", r, "") for r in rows.values()]  # values the form does not name
    return [{"kind": kind, "key": key, "old": old, "new": new, "op": op, "ref": row.ref if row else "",
             "choice": chosen(row, choices) if row else "", "policy_note": note,
             "options": [{"value": o, "label": choice_label(o), "chosen": o == chosen(row, choices)}
                         for o in row.options] if row else []}
            for kind, key, old, new, op, row, note in lines]


def _contact_card(cp: ContactPlan, items: list[ReviewItemRow], snapshot: Snapshot | None,
                  choices: dict[str, str] | None = None, portal: dict[int, set[str]] | None = None) -> dict[str, Any]:
    s = cp.submitted
    removal = next((i for i in items if i.kind == "contact_removal"), None)
    ending = bool(s.remove) or cp.action.value in ENDING_CHOICES or (
        removal is not None and removal.state == "decided" and removal.choice in ENDING_CHOICES)
    return {
        "ref": contact_ref(cp), "slot": cp.slot, "form": True, "section": s.section, "place": s.place,
        "name": " ".join(x for x in (s.first_name, s.middle_name, s.last_name) if x),
        "relationship": s.relationship, "email": s.email,
        "phones": [{"type": p.type, "number": p.number} for p in s.phones],
        "match_class": cp.match_class.value, "person_id": cp.person_id,
        "person_name": _person_name(snapshot, cp.person_id), "new_key": cp.new_key,
        "action": cp.action.value, "remove": s.remove,
        "changes": [c.model_dump() for c in cp.changes],
        "values": _value_views(cp, snapshot, choices or {}, portal),
        "flags": list(cp.flags),
        "name_mismatch": "name_mismatch" in cp.flags,
        "phone_type_mismatch": "phone_type_mismatch" in cp.flags
        or any(c.kind == "phone_type" for c in cp.changes),
        "used_by": [u.model_dump() for u in cp.used_by],
        "candidates": [c.model_dump() for c in cp.candidates],
        "items": [_item_view(i) for i in items],
        "ending": ending, "expired": False, "end_date": "",
    }


def _existing_card(link, snapshot: Snapshot | None) -> dict[str, Any]:
    end = ""
    if snapshot is not None:
        full = next((lk for lk in snapshot.links if lk.id == link.link_id), None)
        detail = full.current_detail() if full else None
        end = detail.end_date if detail else ""
    return {"ref": f"p:{link.person_id}", "slot": None, "form": False, "name": _person_name(snapshot, link.person_id),
            "person_id": link.person_id, "sequence": link.sequence, "expired": link.expired, "end_date": end,
            "ending": False, "items": [], "flags": [], "used_by": [], "candidates": [], "changes": [], "values": [],
            "phones": []}


def student_panel(sp: StudentPlan, items: list[ReviewItemRow], snapshot: Snapshot | None,
                  saved_order: dict[str, Any] | None, saved_values: dict[str, Any] | None = None,
                  portal: dict[int, set[str]] | None = None) -> dict[str, Any]:
    by_slot: dict[int | None, list[ReviewItemRow]] = defaultdict(list)
    by_target: dict[str, list[ReviewItemRow]] = defaultdict(list)
    for row in items:
        if row.kind == "field_change":
            by_target[str((row.payload or {}).get("target") or row.item_key.rsplit(":field:", 1)[-1])].append(row)
        else:
            by_slot[row.slot].append(row)
    fields = [{**field_view(fc), "items": [_item_view(i) for i in by_target.get(fc.target, [])]}
              for fc in sp.field_changes]
    choices = (saved_values or {}).get("choices") or {}
    cards = [_contact_card(cp, by_slot.get(cp.slot, []), snapshot, choices, portal)
             for cp in sorted(sp.contacts, key=lambda c: c.slot)]
    on_form = {cp.person_id for cp in sp.contacts if cp.person_id is not None}
    cards += [_existing_card(lk, snapshot) for lk in sorted(sp.existing_links, key=lambda lk: lk.sequence)
              if lk.person_id not in on_form]
    order = list((saved_order or {}).get("order") or [])
    rank = {ref: n for n, ref in enumerate(order)}
    base = {c["ref"]: n for n, c in enumerate(cards)}
    # The reviewer's order first (form order otherwise); contacts leaving or already expired always last.
    cards.sort(key=lambda c: (c["expired"] or c["ending"], rank.get(c["ref"], len(rank) + base[c["ref"]])))
    student_items = [_item_view(i) for i in by_slot.get(None, [])]
    decided = sum(1 for i in items if i.state == "decided")
    return {"student_number": sp.student_number, "student_dcid": sp.student_dcid, "submission_id": sp.submission_id,
            "mapping": sp.mapping, "order_reason": sp.order_reason, "notes": list(sp.notes),
            "fields": fields, "contacts": cards, "items": student_items, "order": saved_order,
            "values": saved_values,
            "forms": [f.model_dump() for f in sp.forms.forms] if sp.forms else [],  # several forms, latest first
            "total": len(items), "decided": decided, "pending": len(items) - decided}


def field_view(fc: FieldChange) -> dict[str, Any]:
    """One student field as the page shows it, with the write policy that decided its status (when one did:
    it held PowerSchool's value, or it asks a person)."""
    decided = fc.held or fc.needs_review
    return {"target": fc.target, "old": fc.old, "new": fc.new, "action": fc.action.value, "status": fc.status.value,
            "needs_review": fc.needs_review, "policy": fc.policy.value, "held": fc.held,
            "policy_note": policy_note(fc.policy, fc.held) if decided else ""}


def orderable_refs(sp: StudentPlan) -> list[str]:
    on_form = {cp.person_id for cp in sp.contacts if cp.person_id is not None}
    return [contact_ref(cp) for cp in sp.contacts] + [
        f"p:{lk.person_id}" for lk in sp.existing_links if lk.person_id not in on_form]


def order_document(sp: StudentPlan, order: list[str], user: str, previous: dict[str, Any] | None) -> dict[str, Any]:
    """What a reorder stores under `order:<student number>`: the refs in the reviewer's order and what each is."""
    slots = {contact_ref(cp): {"slot": cp.slot, "person_id": cp.person_id, "new_key": cp.new_key}
             for cp in sp.contacts}
    return {"student_number": sp.student_number, "student_dcid": sp.student_dcid, "order": order,
            "refs": {ref: slots.get(ref, {"person_id": int(ref.split(":")[1])} if ref.startswith("p:") else {})
                     for ref in order},
            "decided_by": user, "decided_at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
            "version": int((previous or {}).get("version", 0)) + 1}


def load_plan(data: dict[str, Any] | None) -> Plan | None:
    return Plan.model_validate(data) if data else None


def load_snapshot(data: dict[str, Any] | None) -> Snapshot | None:
    return Snapshot.model_validate(data) if data else None


def outcome_chart(items: list[Any]) -> list[dict[str, Any]]:
    """Items by kind and outcome for the run page's chart: one row per kind, bar widths in percent."""
    by_kind: dict[str, Counter] = {}
    for item in items:
        outcome = "pending" if item.state == "pending" else (item.choice or "decided").split(":")[0]
        by_kind.setdefault(item.kind, Counter())[outcome] += 1
    widest = max((sum(c.values()) for c in by_kind.values()), default=1)
    return [{"kind": kind, "total": sum(c.values()),
             "parts": [{"outcome": o, "n": n, "pct": round(100 * n / widest, 1)} for o, n in sorted(c.items())]}
            for kind, c in sorted(by_kind.items())]


def preview_view(p: Any) -> dict[str, Any]:
    """What the preview page shows of a `pipeline.preview.Preview`: the same field and value views as a run's
    student panel (policies included), the order and its reason, and the items that would be asked."""
    sp = p.plan
    contacts = []
    for cp in sorted(sp.contacts, key=lambda c: c.submitted.place) if sp else []:
        s = cp.submitted
        contacts.append({"section": s.section, "place": s.place, "slot": cp.slot,
                         "name": " ".join(x for x in (s.first_name, s.middle_name, s.last_name) if x),
                         "match_class": cp.match_class.value, "person_id": cp.person_id, "action": cp.action.value,
                         "changes": [{"kind": c.kind, "key": c.key, "old": c.old, "new": c.new, "op": c.op,
                                      "policy_note": policy_note(c.policy, c.held) if c.held else ""}
                                     for c in cp.changes if c.op != "keep" or c.held]})
    return {"found": p.found, "submission_id": p.submission_id, "form_id": p.form_id, "mapping": p.mapping,
            "student_number": p.student_number, "snapshot": dict(sorted(p.snapshot.items())),
            "quarantined": [q.model_dump() for q in p.quarantined],
            "fields": [field_view(fc) for fc in sp.field_changes] if sp else [],
            "order_reason": sp.order_reason if sp else "", "notes": list(sp.notes) if sp else [],
            "contacts": contacts, "planned": sp is not None,
            "items": [{"key": i.key, "kind": i.kind, "label": KIND_LABELS.get(i.kind, i.kind),
                       "options": [choice_label(o) for o in i.options]} for i in p.items]}
