"""Several forms for one student in one run (a parent submits twice): merged into one record before
matching and planning, so that nothing a family submitted disappears without a trace.

- **Latest** is the form with the latest timestamp of its own: SchoolEngage's `updated_at` (the family's
  last save), else `submitted_at`, read as instants (a form without a readable one counts as the oldest);
  ties go to the later `submitted_at`, then to the greater submission id — the same answer in any order.
- **Per field the latest wins**: each field and contact value takes the latest form's statement; a field a
  form leaves empty states nothing, so another form's value is kept (an empty value never blanks; a blank
  the mapping lets clear PowerSchool is a statement like any value).
- **Where forms disagree** (different after normalisation), the merged record carries the latest value and
  the disagreement; a review item (`submissions_disagree`) shows every form's value, with `use:<submission
  id>` for each and `do_not_update`. `resolve` writes the chosen one (`chosen_plan`).
- The earlier forms stay in the store (status `merged`, with their own records) and the plan, the page and
  the report name them.

Contacts of the forms are the same contact when their folded first and last names are equal, or when they
sit in the same slot with an equal first or last name (a typo fixed); never by a shared phone or email
(two parents often share both).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from typing import Any

from .models import (
    ContactAction,
    Decision,
    Disagreement,
    FormMerge,
    FormRecord,
    FormVersion,
    RecordProblem,
    ReviewItem,
    StudentPlan,
    SubmittedAddress,
    SubmittedContact,
    SubmittedPhone,
)
from .normalize import address_key, clean_text, email_key, fold, phone_key
from .plan import field_change
from .targets import address_group

KIND = "submissions_disagree"
DO_NOT_UPDATE = "do_not_update"
FLAGS = ("emergency", "lives_with", "custodial", "data_access")
_OLDEST = dt.datetime.min.replace(tzinfo=dt.UTC)
_CLEAR = {"clear": True}  # a blank that clears PowerSchool (the mapping's ignore_if_empty: false)


# ---------------------------------------------------------------- which form is the latest


def _instant(text: str) -> dt.datetime | None:
    try:
        value = dt.datetime.fromisoformat((text or "").strip())
    except ValueError:
        return None
    return value.replace(tzinfo=dt.UTC) if value.tzinfo is None else value.astimezone(dt.UTC)


def recency(submission_id: str, updated_at: str = "", submitted_at: str = "") -> tuple:
    """Sort key of a form: greater is later (see the module's "Latest")."""
    submitted = _instant(submitted_at)
    return (_instant(updated_at) or submitted or _OLDEST, submitted or _OLDEST, submission_id)


Stamps = dict[str, tuple[str, str]]  # submission id -> (updated_at, submitted_at) as the source sent them


def _latest_first(ids: Iterable[str], stamps: Stamps) -> list[str]:
    return sorted(ids, key=lambda sid: recency(sid, *stamps.get(sid, ("", ""))), reverse=True)


# ---------------------------------------------------------------- what each form states


class _Said:
    """One form's statement about one field: the value (JSON), how a person reads it, how it compares."""

    __slots__ = ("value", "shown", "key")

    def __init__(self, value: Any, shown: str, key: Any):
        self.value, self.shown, self.key = value, shown, key


def _student_statements(r: FormRecord) -> dict[str, _Said]:
    said: dict[str, _Said] = {}
    blocks: dict[str, dict[str, str]] = {}
    for target, value in r.student_fields.items():
        group = address_group(target)
        if group:
            blocks.setdefault(group, {})[target] = value
        elif value:
            said[f"field:{target}"] = _Said(value, value, clean_text(value))
        elif target in r.blank_clears:
            said[f"field:{target}"] = _Said("", "(blank: clears PowerSchool's value)", "")
    for group, parts in blocks.items():  # PowerSchool takes an address block whole: so does a choice
        if any(parts.values()):
            street = next((v for t, v in parts.items() if t.endswith(".street")), "")
            postal = next((v for t, v in parts.items() if t.endswith(".postal_code")), "")
            key = (address_key(street, postal), *sorted((t, fold(v)) for t, v in parts.items()
                                                        if not t.endswith((".street", ".postal_code"))))
            said[f"address:{group}"] = _Said(dict(parts), ", ".join(v for v in parts.values() if v), key)
    return said


def _contact_statements(c: SubmittedContact, region: str) -> dict[str, _Said]:
    said: dict[str, _Said] = {}
    names = (c.first_name, c.middle_name, c.last_name)
    if any(names):
        said["name"] = _Said(dict(zip(("first_name", "middle_name", "last_name"), names, strict=True)),
                             " ".join(n for n in names if n), tuple(clean_text(n) for n in names))
    if c.relationship:
        said["relationship"] = _Said(c.relationship, c.relationship, c.relationship)
    typed = set()
    for phone in c.phones:
        typed.add(phone.type)
        shown = phone.number + (f" x{phone.extension}" if phone.extension else "")
        said[f"phone:{phone.type}"] = _Said({"number": phone.number, "extension": phone.extension, "e164": phone.e164},
                                            shown, (phone.e164 or phone_key(phone.number, region), phone.extension))
    for cleared in c.clears:
        kind, _, phone_type = cleared.partition(":")
        if kind == "phone" and phone_type not in typed:
            said[cleared] = _Said(_CLEAR, "(blank: removes the phone)", "")
    if c.email:
        said["email"] = _Said({"address": c.email}, c.email, email_key(c.email))
    elif "email" in c.clears:
        said["email"] = _Said(_CLEAR, "(blank: removes the email)", "")
    if c.address is not None and any(c.address.model_dump().values()):
        a = c.address
        said["address"] = _Said(a.model_dump(), ", ".join(v for v in (a.street, a.city, a.state, a.postal_code) if v),
                                (address_key(a.street, a.postal_code), fold(a.city), fold(a.state)))
    for flag in FLAGS:
        value = getattr(c, flag)
        if value is not None:
            said[flag] = _Said(value, "yes" if value else "no", value)
    said["remove"] = _Said(c.remove, "remove this contact" if c.remove else "keep this contact", c.remove)
    return said


def _agreed(ref: str, slot: int | None, by_form: list[tuple[str, _Said]],
            disagreements: list[Disagreement]) -> tuple[str, _Said, bool]:
    """The latest statement (the form's id, the statement) and whether the forms' statements differ (then
    the disagreement is noted)."""
    disputed = len({said.key for _, said in by_form}) > 1
    if disputed:
        disagreements.append(Disagreement(ref=ref, slot=slot, values={sid: said.value for sid, said in by_form},
                                          shown={sid: said.shown for sid, said in by_form}))
    return by_form[0][0], by_form[0][1], disputed


# ---------------------------------------------------------------- contacts across forms


def _same_contact(a: SubmittedContact, b: SubmittedContact) -> bool:
    (first_a, last_a), (first_b, last_b) = _name(a), _name(b)
    if (first_a, last_a) == (first_b, last_b):
        return True
    return a.slot == b.slot and bool((first_a and first_a == first_b) or (last_a and last_a == last_b))


def _name(c: SubmittedContact) -> tuple[str, str]:
    return fold(c.first_name), fold(c.last_name)


def _contact_groups(forms: list[FormRecord]) -> list[list[tuple[str, SubmittedContact]]]:
    """Each contact of the forms (latest first) with its counterparts in the other forms."""
    groups: list[list[tuple[str, SubmittedContact]]] = []
    for r in forms:
        for c in sorted(r.contacts, key=lambda c: c.slot):
            free = [g for g in groups if all(sid != r.submission_id for sid, _ in g)]
            home = next((g for g in free if _name(g[0][1]) == _name(c)), None) \
                or next((g for g in free if any(_same_contact(m, c) for _, m in g)), None)
            if home is None:
                groups.append([(r.submission_id, c)])
            else:
                home.append((r.submission_id, c))
    return groups


def _merged_contact(slot: int, said: dict[str, _Said]) -> SubmittedContact:
    name = said["name"].value if "name" in said else {}
    phones, clears = [], []
    for ref, s in said.items():
        if ref.startswith("phone:"):
            if s.value == _CLEAR:
                clears.append(ref)
            else:
                phones.append(SubmittedPhone(type=ref.split(":", 1)[1], **s.value))
    email = said.get("email")
    if email is not None and email.value == _CLEAR:
        clears.append("email")
    address = said.get("address")
    return SubmittedContact(
        slot=slot, **name, relationship=said["relationship"].value if "relationship" in said else "",
        phones=phones, email=email.value["address"] if email is not None and email.value != _CLEAR else "",
        address=SubmittedAddress(**address.value) if address is not None else None,
        remove=bool(said["remove"].value) if "remove" in said else False, clears=clears,
        **{flag: said[flag].value for flag in FLAGS if flag in said})


# ---------------------------------------------------------------- merging


def merge_student(forms: list[FormRecord], stamps: Stamps, region: str = "US") -> FormRecord:
    """One student's forms as one record (see the module docstring); one form is returned as it is."""
    if len(forms) == 1:
        return forms[0]
    order = _latest_first((r.submission_id for r in forms), stamps)
    forms = sorted(forms, key=lambda r: order.index(r.submission_id))
    latest, own = forms[0], {r.submission_id: r for r in forms}
    disagreements: list[Disagreement] = []
    statements = {r.submission_id: _student_statements(r) for r in forms}
    fields: dict[str, str] = {}
    clears: set[str] = set()
    in_dispute: set[str] = set()
    for ref in dict.fromkeys(ref for r in forms for ref in statements[r.submission_id]):
        sid, said, disputed = _agreed(ref, None, [(r.submission_id, statements[r.submission_id][ref])
                                                  for r in forms if ref in statements[r.submission_id]], disagreements)
        kind, _, name = ref.partition(":")
        targets = list(said.value) if kind == "address" else [name]
        fields.update(said.value if kind == "address" else {name: said.value})
        clears.update(t for t in targets if not fields[t] and t in own[sid].blank_clears)
        if disputed:
            in_dispute.update(targets)
    for r in forms:  # fields no form stated keep their empty value (nothing to write)
        for target in r.student_fields:
            fields.setdefault(target, "")
    contacts = []
    taken: set[int] = set()
    groups = _contact_groups(forms)
    for group in groups:  # the latest form's contacts keep their slots; the others' their own, else the next
        slot = group[0][1].slot
        if slot in taken:
            slot = max(taken | {c.slot for r in forms for c in r.contacts}) + 1
        taken.add(slot)
        by_form = {sid: _contact_statements(c, region) for sid, c in group}
        said = {ref: _agreed(f"contact{slot}:{ref}", slot, [(sid, s[ref]) for sid, s in by_form.items() if ref in s],
                             disagreements)[1]
                for ref in dict.fromkeys(ref for s in by_form.values() for ref in s)}
        contacts.append(_merged_contact(slot, said))
    review = sorted({t for r in forms for t in r.review_targets} - in_dispute)  # the item asks about those
    versions = [FormVersion(submission_id=r.submission_id, stamp=next((t for t in stamps.get(r.submission_id, ())
                                                                       if t), "")) for r in forms]
    return FormRecord(submission_id=latest.submission_id, student_number=latest.student_number,
                      student_fields=fields, blank_clears=sorted(clears), review_targets=review,
                      contacts=sorted(contacts, key=lambda c: c.slot),
                      forms=FormMerge(forms=versions, disagreements=disagreements))


def merge_forms(records: list[FormRecord], stamps: Stamps, region: str = "US"
                ) -> tuple[list[FormRecord], dict[str, str]]:
    """One record per student, in the order the students first appear. Returns the records and, for each
    earlier form, the submission it was merged into."""
    by_student: dict[str, list[FormRecord]] = {}
    for r in records:
        by_student.setdefault(r.student_number, []).append(r)
    merged, into = [], {}
    for forms in by_student.values():
        record = merge_student(forms, stamps, region)
        merged.append(record)
        for r in forms:
            if r.submission_id != record.submission_id:
                into[r.submission_id] = record.submission_id
    return merged, into


def held_by_a_later_form(valid: dict[str, str], quarantined: dict[str, str], stamps: Stamps) -> list[RecordProblem]:
    """A form older than a quarantined form of the same student is held too: the family's latest word is
    not readable yet, so an older one must not be written in its place. `valid` and `quarantined` map
    submission ids to student numbers."""
    problems = []
    for sid, number in sorted(valid.items()):
        later = [q for q, n in quarantined.items() if n == number
                 and recency(q, *stamps.get(q, ("", ""))) > recency(sid, *stamps.get(sid, ("", "")))]
        if later:
            problems.append(RecordProblem(
                submission_id=sid, field="submission", check="later_form_quarantined", value=", ".join(sorted(later)),
                reason=f"held: a later form of this student ({', '.join(sorted(later))}) is quarantined; "
                       "fix it and rerun, and both are merged"))
    return problems


# ---------------------------------------------------------------- review and resolve


def item_key(student_number: str, ref: str) -> str:
    return f"forms:{student_number}:{ref}"


def review_items(sp: StudentPlan) -> list[ReviewItem]:
    """One item per disagreement: every form's value, `use:<submission id>` for each, and do not update.
    A removal the latest form asks for is decided by its own contact_removal item instead."""
    if sp.forms is None:
        return []
    stamp = {f.submission_id: f.stamp for f in sp.forms.forms}
    contacts = {cp.slot: cp for cp in sp.contacts}
    items = []
    for d in sp.forms.disagreements:
        if d.ref.endswith(":remove") and next(iter(d.values.values())) is True:
            continue
        latest = next(iter(d.values))
        cp = contacts.get(d.slot) if d.slot is not None else None
        items.append(ReviewItem(
            key=item_key(sp.student_number, d.ref), kind=KIND, submission_id=sp.submission_id,
            student_number=sp.student_number, slot=d.slot, target=d.ref,
            options=[f"use:{sid}" for sid in d.values] + [DO_NOT_UPDATE], default=f"use:{latest}",
            payload={"ref": d.ref, "what": _what(d.ref), "latest": latest,
                     "contact": " ".join(n for n in (cp.submitted.first_name, cp.submitted.last_name) if n) if cp else "",
                     "proposals": [{"submission_id": sid, "stamp": stamp.get(sid, ""), "value": d.shown[sid]}
                                   for sid in d.values],
                     "used_by": [u.model_dump() for u in cp.used_by] if cp else []}))
    return items


def _what(ref: str) -> str:
    """A field or contact value as a registrar names it."""
    head, _, rest = ref.partition(":")
    if head in ("field", "address"):
        return rest.replace(".", " ").replace("_", " ")
    return rest.replace(":", " ").replace("_", " ")


def chosen_plan(sp: StudentPlan, decisions: dict[str, Decision], today: dt.date
                ) -> tuple[StudentPlan, dict[str, Decision]]:
    """The student's plan with each decided disagreement's chosen value in place (the latest form's value
    is already there), and any decision that choice implies (an earlier form's removal: expire today)."""
    if sp.forms is None or not sp.forms.disagreements:
        return sp, decisions
    out, extra = sp.model_copy(deep=True), {}
    for d in out.forms.disagreements:
        decision = decisions.get(item_key(sp.student_number, d.ref))
        if decision is None or decision.choice == f"use:{next(iter(d.values))}":
            continue
        sid = decision.choice.removeprefix("use:")
        if decision.choice != DO_NOT_UPDATE and sid not in d.values:
            continue  # not an option of the item (the store refuses it before it gets here)
        value = None if decision.choice == DO_NOT_UPDATE else d.values[sid]
        if d.slot is None:
            _choose_field(out, d.ref, value)
        else:
            cp = next(c for c in out.contacts if c.slot == d.slot)
            ref = d.ref.split(":", 1)[1]
            if ref == "remove" and value is True:
                extra[f"{sp.submission_id}:contact{d.slot}:removal"] = Decision(
                    item_key=f"{sp.submission_id}:contact{d.slot}:removal", choice="expire",
                    data={"end_date": today.isoformat()}, decided_by=decision.decided_by)
            _choose_contact_value(cp, ref, value)
    return out, ({**decisions, **extra} if extra else decisions)


def _choose_field(sp: StudentPlan, ref: str, value: Any) -> None:
    kind, _, name = ref.partition(":")
    for i, fc in enumerate(sp.field_changes):
        if kind == "address" and address_group(fc.target) == name:
            new = "" if value is None else value.get(fc.target, "")
            sp.field_changes[i] = field_change(fc.target, fc.old, new, policy=fc.policy)
        elif kind == "field" and fc.target == name:
            sp.field_changes[i] = field_change(fc.target, fc.old, value or "", clears=value == "", policy=fc.policy)


def _choose_contact_value(cp, ref: str, value: Any) -> None:
    c = cp.submitted
    if value is None and ref in ("name", "remove"):  # do not update this contact at all
        cp.action = ContactAction.DO_NOT_UPDATE
    elif ref == "name":
        c.first_name, c.middle_name, c.last_name = value["first_name"], value["middle_name"], value["last_name"]
    elif ref == "remove":
        c.remove = bool(value)
    elif ref == "relationship":
        c.relationship = value or ""
    elif ref.startswith("phone:"):
        phone_type = ref.split(":", 1)[1]
        c.phones = [p for p in c.phones if p.type != phone_type]
        c.clears = [x for x in c.clears if x != ref]
        if value == _CLEAR:
            c.clears.append(ref)
        elif value is not None:
            c.phones.append(SubmittedPhone(type=phone_type, **value))
    elif ref == "email":
        c.clears = [x for x in c.clears if x != "email"]
        c.email = value["address"] if value and value != _CLEAR else ""
        if value == _CLEAR:
            c.clears.append("email")
    elif ref == "address":
        c.address = SubmittedAddress(**value) if value else None
    elif ref in FLAGS:
        setattr(c, ref, value)


def merged_forms(plan_students: Iterable[dict[str, Any]], choices: dict[str, str]) -> list[dict[str, Any]]:
    """For the report: each student whose forms were merged, the forms (latest first), and every
    disagreement — which forms stated it and the choice (ids only: the values stay on the review page).
    `choices` are the run's decisions by item key."""
    out = []
    for sp in plan_students:
        forms = sp.get("forms")
        if not forms:
            continue
        latest = forms["forms"][0]["submission_id"]
        out.append({"student_number": sp["student_number"], "submission_id": latest,
                    "merged": [f["submission_id"] for f in forms["forms"][1:]],
                    "disagreements": [{"ref": d["ref"], "forms": list(d["values"]),
                                       "choice": choices.get(item_key(sp["student_number"], d["ref"]), "")}
                                      for d in forms.get("disagreements", [])]})
    return out
