"""Contact combinations: rules keyed by which sections a family filled reorder the sections and copy an
address when a checkbox says so; the order's reason is kept for the review page."""

from __future__ import annotations

import pytest

from tests.unit.builders import ANA_NO, JOSE, MARIA, TODAY, decide, plan_for
from tests.unit.test_sections import (
    JOSE_FIELDS,
    MARIA_FIELDS,
    final_order,
    mapped,
    mapping_from,
    prefixed,
    section,
    sections_mapping,
)
from writeback.domain.mapping import MappingError, apply_mapping
from writeback.domain.resolve import resolve

ADDRESS = """\
      address:
        street: {p}street
        city: {p}city
        state: {p}state
        postal_code: {p}zip"""

ONLY_G2 = """\
    - name: guardian2-only
      description: only guardian 2 was filled in
      when: {filled: [guardian2], empty: [guardian1]}
      order: [guardian2]
"""
SAME_ADDRESS = """\
    - name: same-address
      when: {checked: g2_same_address}
      copy_address: {from: guardian1, to: guardian2}
"""


def guardians(rules: str, with_address: bool = False):
    extra1 = ADDRESS.format(p="g1_") if with_address else ""
    extra2 = ADDRESS.format(p="g2_") if with_address else ""
    return mapping_from(sections_mapping(section("guardian1", "g1_", extra=extra1),
                                         section("guardian2", "g2_", extra=extra2),
                                         section("emergency1", "e1_", position=3), rules=rules))


def by_section(record):
    return {c.section: c for c in record.contacts}


def test_only_guardian2_filled_makes_guardian2_priority_1():
    """Ana's PowerSchool order is María 1, José 2. A returning form with only guardian 2 (José) filled puts
    him first: the rule's order, not the section's place, decides."""
    rec = mapped(guardians(ONLY_G2), prefixed("g2_", JOSE_FIELDS))
    assert by_section(rec)["guardian2"].place == 1
    assert "guardian2-only" in rec.order_reason and "only guardian 2 was filled in" in rec.order_reason
    plan, snapshot = plan_for([rec])
    assert plan.students[0].order_reason == rec.order_reason  # what the review page shows beside the order
    assert final_order(resolve(plan, decide(plan), snapshot, TODAY))[:2] == [f"p:{JOSE}", f"p:{MARIA}"]


def test_with_both_guardians_filled_the_rule_does_not_apply():
    rec = mapped(guardians(ONLY_G2), {**prefixed("g1_", MARIA_FIELDS), **prefixed("g2_", JOSE_FIELDS)})
    assert [(c.section, c.place) for c in sorted(rec.contacts, key=lambda c: c.slot)] == [("guardian1", 1),
                                                                                          ("guardian2", 2)]
    assert "guardian2-only" not in rec.order_reason and "each section at its place" in rec.order_reason


def test_a_removed_guardian_is_not_filled():
    """The family removes guardian 1 and keeps guardian 2: guardian 2 is the only one filled."""
    rec = mapped(guardians(ONLY_G2), {**prefixed("g1_", MARIA_FIELDS), "g1_remove": "Yes",
                                      **prefixed("g2_", JOSE_FIELDS)})
    assert by_section(rec)["guardian2"].place == 1 and "guardian2-only" in rec.order_reason


def test_the_other_sections_keep_their_places_after_the_reordered_ones():
    rec = mapped(guardians(ONLY_G2), {**prefixed("g2_", JOSE_FIELDS), "e1_first": "Rosa", "e1_last": "Chen",
                                      "e1_cell": "415-555-0103"})
    assert {c.section: c.place for c in rec.contacts} == {"guardian2": 1, "emergency1": 3}


def test_the_first_rule_that_orders_wins():
    second = ONLY_G2.replace("guardian2-only", "emergency-first").replace("order: [guardian2]",
                                                                          "order: [emergency1, guardian2]")
    rec = mapped(guardians(ONLY_G2 + second), {**prefixed("g2_", JOSE_FIELDS), "e1_first": "Rosa",
                                                "e1_last": "Chen", "e1_cell": "415-555-0103"})
    assert by_section(rec)["guardian2"].place == 1 and "emergency-first" not in rec.order_reason


def test_a_same_address_checkbox_copies_guardian1s_address_to_guardian2():
    fields = {**prefixed("g1_", MARIA_FIELDS), **prefixed("g2_", JOSE_FIELDS), "g1_street": "9 Elm Street",
              "g1_city": "Springfield", "g1_state": "IL", "g1_zip": "62704", "g2_same_address": "Yes"}
    rec = mapped(guardians(SAME_ADDRESS, with_address=True), fields)
    g2 = by_section(rec)["guardian2"]
    assert g2.address is not None and (g2.address.street, g2.address.postal_code) == ("9 Elm Street", "62704")
    assert any("same-address" in n and "guardian2 has guardian1's address" in n for n in rec.notes)
    plan, snapshot = plan_for([rec])
    jose_card = next(cp for cp in plan.students[0].contacts if cp.slot == 2)
    assert any(c.kind == "address" and "9 Elm Street" in c.new for c in jose_card.changes)


def test_without_the_checkbox_nothing_is_copied():
    fields = {**prefixed("g1_", MARIA_FIELDS), **prefixed("g2_", JOSE_FIELDS), "g1_street": "9 Elm Street",
              "g1_city": "Springfield", "g1_state": "IL", "g1_zip": "62704", "g2_same_address": "No"}
    rec = mapped(guardians(SAME_ADDRESS, with_address=True), fields)
    assert by_section(rec)["guardian2"].address is None and not rec.notes


def test_a_ticked_checkbox_with_another_typed_address_is_quarantined_not_guessed():
    fields = {**prefixed("g1_", MARIA_FIELDS), **prefixed("g2_", JOSE_FIELDS), "g1_street": "9 Elm Street",
              "g1_city": "Springfield", "g1_state": "IL", "g1_zip": "62704", "g2_same_address": "Yes",
              "g2_street": "1 Other Road", "g2_city": "Springfield", "g2_state": "IL", "g2_zip": "62701"}
    result = apply_mapping(guardians(SAME_ADDRESS, with_address=True), "SUB-1", {"student_id": ANA_NO, **fields})
    assert isinstance(result, list)
    assert any(p.field == "g2_same_address" and "another address was typed" in p.reason for p in result), result


def test_a_checkbox_that_is_not_yes_or_no_is_a_problem():
    fields = {**prefixed("g1_", MARIA_FIELDS), **prefixed("g2_", JOSE_FIELDS), "g2_same_address": "maybe"}
    result = apply_mapping(guardians(SAME_ADDRESS, with_address=True), "SUB-1", {"student_id": ANA_NO, **fields})
    assert isinstance(result, list) and any(p.field == "g2_same_address" for p in result), result


def test_the_checkbox_is_a_field_the_mapping_reads():
    assert "g2_same_address" in guardians(SAME_ADDRESS, with_address=True).form_fields()


@pytest.mark.parametrize(("rule", "expected"), [
    ("    - {name: r, when: {filled: [nobody]}, order: [guardian2]}\n", "no section named 'nobody'"),
    ("    - {name: r, when: {}, order: [guardian2]}\n", "names no condition"),
    ("    - {name: r, when: {filled: [guardian2]}}\n", "does nothing"),
    ("    - {name: r, when: {filled: [guardian1], empty: [guardian1]}, order: [guardian1]}\n",
     "both filled and empty"),
    ("    - {name: r, when: {checked: box}, copy_address: {from: guardian1, to: guardian1}}\n", "are the same section"),
    ("    - {name: r, when: {checked: box}, copy_address: {from: emergency1, to: guardian1}}\n", "maps no address"),
    ("    - {name: r, when: {filled: [guardian2]}, order: [guardian2, guardian2]}\n", "names a section twice"),
])
def test_bad_rules_are_refused_naming_the_rule(rule, expected):
    with pytest.raises(MappingError) as err:
        guardians(rule, with_address=True)
    assert any("combinations[0] (r)" in p and expected in p for p in err.value.problems), err.value.problems
