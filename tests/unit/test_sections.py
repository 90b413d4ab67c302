"""Named contact sections: each section reads its own fields, takes its position in the student's contact
order, and gives a new link its default relationship; the `{n}` template stays as shorthand."""

from __future__ import annotations

import textwrap

import pytest
import yaml

from tests.unit.builders import (
    ANA_NO,
    JOSE,
    MARIA,
    TODAY,
    decide,
    district,
    ops_of,
    plan_for,
)
from writeback.domain.mapping import MappingError, apply_mapping, parse_mapping
from writeback.domain.models import FormRecord
from writeback.domain.resolve import resolve


def mapping_from(text: str):
    return parse_mapping(yaml.safe_load(textwrap.dedent(text)), source="<test>")


def section(name: str, prefix: str, *, position: int | None = None, default: str = "", relationship: bool = True,
            extra: str = "") -> str:
    lines = [f"    {name}:"]
    if position is not None:
        lines.append(f"      position: {position}")
    if default:
        lines.append(f"      default_relationship: {default}")
    lines += [f"      first_name: {prefix}first", f"      last_name: {prefix}last",
              f"      phones: {{Mobile: {prefix}cell}}", f"      email: {prefix}email"]
    if relationship:
        lines.append(f"      relationship: {prefix}relationship")
    lines.append(f"      remove: {prefix}remove")
    return "\n".join(lines) + ("\n" + extra if extra else "")


def sections_mapping(*sections: str, rules: str = "") -> str:
    return ("version: 1\nname: sections\nstudent_number_field: student_id\ncontacts:\n  sections:\n"
            + "\n".join(sections) + ("\n  combinations:\n" + rules if rules else "") + "\n")


def mapped(mapping, fields) -> FormRecord:
    result = apply_mapping(mapping, "SUB-1", {"student_id": ANA_NO, **fields})
    assert isinstance(result, FormRecord), result
    return result


MARIA_FIELDS = {"first": "María", "last": "García-López", "cell": "(415) 555-0101", "email": "maria@example.com",
                "relationship": "Mother"}
JOSE_FIELDS = {"first": "José", "last": "García", "cell": "415-555-0102", "email": "jose@example.com",
               "relationship": "Father"}


def prefixed(prefix: str, values: dict[str, str]) -> dict[str, str]:
    return {prefix + k: v for k, v in values.items()}


def final_order(ops) -> list[str] | None:
    found = ops_of(ops, "contact_order")
    return found[0].values["order"] if found else None


def test_each_section_reads_its_own_fields():
    mapping = mapping_from(sections_mapping(section("guardian1", "g1_"), section("emergency1", "e1_", position=3)))
    rec = mapped(mapping, {**prefixed("g1_", MARIA_FIELDS), "e1_first": "Rosa", "e1_last": "Chen",
                           "e1_cell": "415-555-0103"})
    by_section = {c.section: c for c in rec.contacts}
    assert set(by_section) == {"guardian1", "emergency1"}
    assert (by_section["guardian1"].first_name, by_section["guardian1"].email) == ("María", "maria@example.com")
    assert (by_section["emergency1"].first_name, by_section["emergency1"].phones[0].number) == ("Rosa",
                                                                                                "415-555-0103")
    # the slot is the section's place: review keys and matching name the same contact on every run
    assert (by_section["guardian1"].slot, by_section["emergency1"].slot) == (1, 3)
    assert (by_section["guardian1"].place, by_section["emergency1"].place) == (1, 3)


def test_the_order_follows_the_sections_positions_not_their_order_in_the_file():
    """Ana's PowerSchool order is María 1, José 2; a form whose `dad` section is at place 1 reorders them."""
    mapping = mapping_from(sections_mapping(section("mom", "m_", position=2), section("dad", "d_", position=1)))
    rec = mapped(mapping, {**prefixed("m_", MARIA_FIELDS), **prefixed("d_", JOSE_FIELDS)})
    plan, snapshot = plan_for([rec])
    ops = resolve(plan, decide(plan), snapshot, TODAY)
    assert final_order(ops)[:2] == [f"p:{JOSE}", f"p:{MARIA}"]


def test_a_section_placed_after_the_guardians_leaves_their_places_to_links_the_form_does_not_name():
    """An emergency-contact form (its section at place 3) adds a contact after Ana's two parents, who are
    not on the form: the new contact must not take place 1."""
    mapping = mapping_from(sections_mapping(section("emergency1", "e1_", position=3)))
    rec = mapped(mapping, {"e1_first": "Olga", "e1_last": "Petrova", "e1_cell": "415-555-0177"})
    plan, snapshot = plan_for([rec])
    ops = resolve(plan, decide(plan), snapshot, TODAY)
    order = final_order(ops)
    assert order[:2] == [f"p:{MARIA}", f"p:{JOSE}"] and order[2].startswith("new:"), order


def test_a_new_link_gets_the_sections_default_relationship_when_the_form_asks_none():
    mapping = mapping_from(sections_mapping(section("grandparent", "gp_", position=4,
                                                    default="Grandparent", relationship=False)))
    rec = mapped(mapping, {"gp_first": "Olga", "gp_last": "Petrova", "gp_cell": "415-555-0177"})
    plan, snapshot = plan_for([rec])
    [link] = ops_of(resolve(plan, decide(plan), snapshot, TODAY), "link_add")
    assert link.values["relationship"] == "Grandparent"


def test_a_default_relationship_never_rewrites_an_existing_links_relationship():
    """María is Ana's Mother in PowerSchool; a section defaulting to Guardian that she is written in does not
    turn her into a Guardian (the family did not say so)."""
    mapping = mapping_from(sections_mapping(section("parent", "p_", default="Guardian", relationship=False)))
    fields = prefixed("p_", MARIA_FIELDS)
    fields.pop("p_relationship")
    rec = mapped(mapping, fields)
    plan, snapshot = plan_for([rec])
    ops = resolve(plan, decide(plan), snapshot, TODAY)
    assert not ops_of(ops, "detail_update") and not ops_of(ops, "link_add")


def test_a_typed_relationship_wins_over_the_default():
    mapping = mapping_from(sections_mapping(section("other", "o_", position=4, default="Other")))
    rec = mapped(mapping, {"o_first": "Olga", "o_last": "Petrova", "o_cell": "415-555-0177",
                           "o_relationship": "Aunt"})
    plan, snapshot = plan_for([rec])
    [link] = ops_of(resolve(plan, decide(plan), snapshot, TODAY), "link_add")
    assert link.values["relationship"] == "Aunt"


def test_the_template_stays_shorthand_slot_n_at_place_n():
    mapping = mapping_from("""\
        version: 1
        name: template
        contacts:
          slots: 3
          first_name: "c{n}_first"
          last_name: "c{n}_last"
        """)
    rec = apply_mapping(mapping, "SUB-1", {"student_number": ANA_NO, "c2_first": "José", "c2_last": "García"})
    [c] = rec.contacts
    assert (c.slot, c.place, c.section) == (2, 2, "contact2")


def test_sections_without_a_position_take_their_place_in_the_file():
    mapping = mapping_from(sections_mapping(section("a", "a_"), section("b", "b_"), section("c", "c_", position=5)))
    assert [(d.name, d.slot, d.position) for d in mapping.slot_defs()] == [("a", 1, 1), ("b", 2, 2), ("c", 5, 5)]


@pytest.mark.parametrize(("text", "expected"), [
    (sections_mapping(section("a", "a_", position=2), section("b", "b_", position=2)),
     "position 2 is also section a's"),
    (sections_mapping(section("a", "a_")).replace("  sections:\n", "  first_name: \"c{n}_first\"\n  sections:\n"),
     "give either sections or a template"),
    (sections_mapping(section("a", "a_").replace("email: a_email", "email: {field: a_email, policy: review}")),
     "policy review is for student fields"),
    (sections_mapping(section("a", "a_").replace("last_name: a_last", "last_name: {field: a_last, policy: never}")),
     "last_name: takes no write policy"),
])
def test_bad_sections_are_refused_naming_the_place(text, expected):
    with pytest.raises(MappingError) as err:
        mapping_from(text)
    assert any(expected in p for p in err.value.problems), err.value.problems


def test_every_sections_fields_are_read_by_the_mapping():
    mapping = mapping_from(sections_mapping(section("a", "a_"), section("b", "b_", position=4)))
    assert {"a_first", "a_last", "a_cell", "a_email", "b_first", "b_relationship", "b_remove"} <= mapping.form_fields()


def test_a_sections_problem_names_the_section():
    mapping = mapping_from(sections_mapping(section("guardian2", "g2_")))
    result = apply_mapping(mapping, "SUB-1", {"student_id": ANA_NO, "g2_first": "José"})
    assert isinstance(result, list)
    assert any(p.field == "g2_last" and "section guardian2" in p.reason for p in result), result


def test_a_snapshot_with_the_section_order_already_is_not_reordered():
    mapping = mapping_from(sections_mapping(section("mom", "m_"), section("dad", "d_")))
    rec = mapped(mapping, {**prefixed("m_", MARIA_FIELDS), **prefixed("d_", JOSE_FIELDS)})
    plan, snapshot = plan_for([rec], district())
    assert final_order(resolve(plan, decide(plan), snapshot, TODAY)) is None
