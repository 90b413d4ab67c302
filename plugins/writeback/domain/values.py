"""A reviewer's per-value choices on a contact's phones, email and address.

The plan pairs each submitted value with the person's (phone by type, the primary email, the current
home address) and proposes keep / update / add / remove. A reviewer may override one value at a time:
an update can become "keep the old value and add the new one" (both are correct) or "do not update", an
addition or a removal can be declined, and any other phone, email or address of the person can be
removed ("the information has changed and the data needs deleting"). Choices are stored per student
as `values:<student number>` and bound into the approved writes like a reviewer's contact order.
"""

from __future__ import annotations

from .models import ContactPlan, Model, Person, Snapshot, ValueChange
from .normalize import email_key

VALUE_KINDS = ("phone", "email", "address")

# what a reviewer may choose for a proposed change, the default first
PAIRED_OPTIONS: dict[tuple[str, str], list[str]] = {
    ("phone", "update"): ["update", "keep_and_add", "do_not_update"],
    ("email", "update"): ["update", "keep_and_add", "do_not_update"],
    # a second current home address would leave the pairing ambiguous on the next run: no keep_and_add
    ("address", "update"): ["update", "do_not_update"],
    ("phone", "add"): ["add", "do_not_update"],
    ("email", "add"): ["add", "do_not_update"],
    ("address", "add"): ["add", "do_not_update"],
    ("phone", "remove"): ["remove", "keep"],
    ("email", "remove"): ["remove", "keep"],
}
UNPAIRED_OPTIONS = ["keep", "remove"]  # a value of the person the form does not mention


class ValueRow(Model):
    """One value a reviewer may decide on, with what the plan proposes for it."""

    ref: str  # "slot:<n>:<kind>:<key>" for a submitted value, "slot:<n>:<kind>#<id>" for another existing one
    kind: str  # phone | email | address
    key: str  # phone type, "primary", "Home"
    op: str  # what the plan proposes: update | add | remove | keep
    old: str = ""
    new: str = ""
    target_id: int | None = None
    options: list[str]

    @property
    def default(self) -> str:
        return self.options[0]


def paired_ref(slot: int, change: ValueChange) -> str:
    return f"slot:{slot}:{change.kind}:{change.key}"


def existing_ref(slot: int, kind: str, record_id: int) -> str:
    return f"slot:{slot}:{kind}#{record_id}"


def portal_emails_by_person(snapshot: Snapshot) -> dict[int, set[str]]:
    """Emails each person's portal account signs in with: never offered for removal (Data Access needs
    the account's email on the contact)."""
    emails: dict[int, set[str]] = {}
    for account in snapshot.portal_accounts:
        if account.person_id is not None and account.email:
            emails.setdefault(account.person_id, set()).add(email_key(account.email))
    return emails


def value_rows(cp: ContactPlan, person: Person | None, changes: list[ValueChange],
               protected_emails: set[str] = frozenset()) -> list[ValueRow]:
    """The values of one form contact a reviewer may decide on: the proposed changes, then the person's
    other phones, emails and current addresses (each may be removed)."""
    if cp.submitted.remove:  # the family removes the contact: its values are not written either way
        return []
    rows: list[ValueRow] = []
    paired: set[tuple[str, int]] = set()
    for c in changes:
        kind = "phone" if c.kind == "phone_type" else c.kind
        if kind in VALUE_KINDS and c.target_id is not None:
            paired.add((kind, c.target_id))
        options = PAIRED_OPTIONS.get((c.kind, c.op))
        if options is None:
            continue
        if c.kind == "email" and c.op == "remove" and email_key(c.old) in protected_emails:
            continue
        rows.append(ValueRow(ref=paired_ref(cp.slot, c), kind=c.kind, key=c.key, op=c.op, old=c.old, new=c.new,
                             target_id=c.target_id, options=options))
    if person is None:
        return rows
    for phone in person.phones:
        if ("phone", phone.id) not in paired:
            rows.append(ValueRow(ref=existing_ref(cp.slot, "phone", phone.id), kind="phone", key=phone.type,
                                 op="keep", old=phone.number, target_id=phone.id, options=UNPAIRED_OPTIONS))
    for email in person.emails:
        if ("email", email.id) not in paired and email_key(email.address) not in protected_emails:
            rows.append(ValueRow(ref=existing_ref(cp.slot, "email", email.id), kind="email",
                                 key="primary" if email.primary else email.type, op="keep", old=email.address,
                                 target_id=email.id, options=UNPAIRED_OPTIONS))
    for address in person.addresses:
        if ("address", address.id) not in paired and not address.end_date:
            rows.append(ValueRow(ref=existing_ref(cp.slot, "address", address.id), kind="address",
                                 key=address.type, op="keep", old=address_text(address.street, address.city, address.state,
                                                  address.postal_code), target_id=address.id,
                                 options=UNPAIRED_OPTIONS))
    return rows


def address_text(street: str, city: str, state: str, postal_code: str) -> str:
    """An address as one line, as the review page shows it and as a removal expects to find it."""
    return f"{street}, {city} {state} {postal_code}"


def chosen(row: ValueRow, choices: dict[str, str]) -> str:
    """The reviewer's choice for the row, or the plan's proposal. A choice the row does not offer (the
    plan changed under it) cannot be followed, so the proposal stands."""
    choice = choices.get(row.ref)
    return choice if choice in row.options else row.default


def invalid_choices(rows: list[ValueRow], choices: dict[str, str]) -> list[str]:
    """Why a set of choices cannot be saved: unknown values, or options a value does not have."""
    by_ref = {r.ref: r for r in rows}
    problems = []
    for ref, choice in choices.items():
        row = by_ref.get(ref)
        if row is None:
            problems.append(f"{ref}: not a value of this student's contacts")
        elif choice not in row.options:
            problems.append(f"{ref}: {choice!r} is not an option (options: {', '.join(row.options)})")
    return problems
