"""Contact combinations: rules of a mapping keyed by which sections a family filled.

The seed: "Contacts will be ordered by a combination of your form and how it is mapped … New mappings can
be created for specific contact combinations." A form's sections each take a place in the student's
contact order (`position`); a rule may give other places when some sections are filled and others are
not (only guardian 2 filled: guardian 2 becomes priority 1), and may copy one section's address to
another when a checkbox says so ("same address as guardian 1"). A section is *filled* when the family
gave it a name and did not remove it.

Pure: works on the contacts the mapping read, sets their `position` and `address`, and returns the reason
for the order (shown to reviewers) and notes of what the rules did.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from .models import RecordProblem, SubmittedContact


@dataclass
class Outcome:
    order_reason: str = ""
    notes: list[str] = field(default_factory=list)
    problems: list[RecordProblem] = field(default_factory=list)


def apply_combinations(mapping, contacts: list[SubmittedContact], submission_id: str,
                       checked: Callable[[str], bool]) -> Outcome:
    """Apply the mapping's combination rules to one form's contacts (in place).

    `checked(field)` tells whether a form field reads yes (and records a problem when it is not yes/no)."""
    out = Outcome()
    defs = {d.name: d for d in mapping.slot_defs()}
    rules = mapping.contacts.combinations if mapping.contacts else []
    by_name = {c.section: c for c in contacts}
    filled = [c.section for c in sorted(contacts, key=lambda c: c.slot) if not c.remove]
    order_rule = None
    for rule in rules:
        if not _holds(rule.when, set(filled), checked):
            continue
        if rule.copy_address is not None:
            _copy_address(rule, by_name, defs, submission_id, out)
        if rule.order and order_rule is None:  # the first rule that orders wins
            order_rule = rule
    named = any(d.named for d in defs.values())
    if order_rule is None:
        if named and contacts:
            out.order_reason = f"mapping {mapping.name}: each section at its place (" + ", ".join(
                f"{c.section} {c.place}" for c in sorted(contacts, key=lambda c: c.place) if not c.remove) + ")"
        return out
    listed = [name for name in order_rule.order if name in filled]
    place: dict[str, int] = {name: k for k, name in enumerate(listed, start=1)}
    last = len(listed)
    for c in sorted((c for c in contacts if c.section not in place), key=lambda c: c.place):
        place[c.section] = max(c.place, last + 1)
        last = place[c.section]
    for c in contacts:
        c.position = place[c.section]
    why = order_rule.description or _describe(order_rule.when)
    out.order_reason = f"mapping {mapping.name}, rule {order_rule.name} ({why}): " + ", ".join(
        f"{c.section} {c.position}" for c in sorted(contacts, key=lambda c: c.position) if not c.remove)
    return out


def _holds(when, filled: set[str], checked: Callable[[str], bool]) -> bool:
    if not set(when.filled) <= filled or set(when.empty) & filled:
        return False
    if when.checked and not checked(when.checked):
        return False
    return not (when.unchecked and checked(when.unchecked))


def _describe(when) -> str:
    parts = []
    if when.filled:
        parts.append(f"{', '.join(when.filled)} filled")
    if when.empty:
        parts.append(f"{', '.join(when.empty)} empty")
    if when.checked:
        parts.append(f"{when.checked} checked")
    if when.unchecked:
        parts.append(f"{when.unchecked} not checked")
    return "; ".join(parts)


def _copy_address(rule, by_name: dict[str, SubmittedContact], defs, submission_id: str, out: Outcome) -> None:
    source, target = by_name.get(rule.copy_address.source), by_name.get(rule.copy_address.to)
    if source is None or target is None or source.address is None:
        return
    if target.address is not None and target.address != source.address:
        # the family said "same address" and typed another one: which is right is not ours to guess
        street = defs[target.section].spec.address.get("street")
        out.problems.append(RecordProblem(
            submission_id=submission_id, field=rule.when.checked or (street.field if street else target.section),
            reason=f"{target.section}: the form says its address is {source.section}'s (rule {rule.name}) but "
                   "another address was typed too", check="combination"))
        return
    target.address = source.address.model_copy()
    out.notes.append(f"rule {rule.name}: {target.section} has {source.section}'s address"
                     + (f" ({rule.when.checked} checked)" if rule.when.checked else ""))
