"""Write policy per field: `always` (default), `if_empty` (fill a blank, never overwrite or remove),
`review` (a person approves), `never` (compare and show only). The plan says which policy decided a
field's status, and resolve writes exactly what the policies allow."""

from __future__ import annotations

import pytest
import yaml

from tests.unit.builders import (
    ANA_NO,
    JOSE,
    MARIA,
    MARIA_EMAIL,
    TODAY,
    decide,
    district,
    maria,
    ops_of,
    plan_for,
    record,
)
from writeback.domain.mapping import MappingError, apply_mapping, parse_mapping
from writeback.domain.models import FieldAction, FieldStatus, FormRecord, WritePolicy
from writeback.domain.plan import policy_note
from writeback.domain.resolve import resolve


def student_mapping(*lines: str):
    text = "version: 1\nname: policies\nstudent:\n" + "".join(f"  - {line}\n" for line in lines)
    return parse_mapping(yaml.safe_load(text), source="<test>")


def mapped(mapping, **fields) -> FormRecord:
    result = apply_mapping(mapping, "SUB-1", {"student_number": ANA_NO, **fields})
    assert isinstance(result, FormRecord), result
    return result


def change(plan, target):
    return next(fc for fc in plan.students[0].field_changes if fc.target == target)


def written(plan, snapshot) -> dict[str, str]:
    ops = resolve(plan, decide(plan, field_change="approve"), snapshot, TODAY)
    return next((op.values for op in ops if op.kind == "student_update"), {})


# ---------------------------------------------------------------- student fields

def test_if_empty_keeps_a_value_powerschool_has():
    """Ana's middle name is blank in PowerSchool, her first name is Ana: if_empty fills the blank and keeps
    the first name although the form says Anna."""
    mapping = student_mapping("{field: first, target: name.first_name, policy: if_empty}",
                              "{field: middle, target: name.middle_name, policy: if_empty}")
    plan, snapshot = plan_for([mapped(mapping, first="Anna", middle="Sofía")])
    first, middle = change(plan, "name.first_name"), change(plan, "name.middle_name")
    assert (first.action, first.status, first.held, first.old, first.new) == (
        FieldAction.IGNORE, FieldStatus.KEEP, True, "Ana", "Anna")  # the difference is shown, not written
    assert (middle.action, middle.status, middle.held) == (FieldAction.ADD, FieldStatus.NEW, False)
    assert written(plan, snapshot) == {"name.middle_name": "Sofía"}
    assert "PowerSchool has a value" in policy_note(first.policy, first.held)


def test_never_compares_and_shows_but_never_writes():
    mapping = student_mapping("{field: first, target: name.first_name, policy: never}",
                              "{field: middle, target: name.middle_name, policy: never}")
    plan, snapshot = plan_for([mapped(mapping, first="Anna", middle="Sofía")])
    for target, old, new in (("name.first_name", "Ana", "Anna"), ("name.middle_name", "", "Sofía")):
        fc = change(plan, target)
        assert (fc.action, fc.status, fc.held, fc.policy, fc.old, fc.new) == (
            FieldAction.IGNORE, FieldStatus.KEEP, True, WritePolicy.NEVER, old, new)
    assert written(plan, snapshot) == {}
    assert not plan.review_items


def test_review_asks_a_person_and_writes_only_what_is_approved():
    mapping = student_mapping("{field: first, target: name.first_name, policy: review}")
    plan, snapshot = plan_for([mapped(mapping, first="Anna")])
    [item] = plan.review_items
    assert item.kind == "field_change" and change(plan, "name.first_name").policy == WritePolicy.REVIEW
    assert resolve(plan, decide(plan, field_change="ignore"), snapshot, TODAY) == []
    assert written(plan, snapshot) == {"name.first_name": "Anna"}


def test_review_true_is_policy_review():
    mapping = student_mapping("{field: first, target: name.first_name, review: true}")
    rec = mapped(mapping, first="Anna")
    assert rec.policies == {"name.first_name": WritePolicy.REVIEW} and rec.review_targets == ["name.first_name"]


def test_always_is_the_default_and_writes():
    mapping = student_mapping("{field: first, target: name.first_name}")
    plan, snapshot = plan_for([mapped(mapping, first="Anna")])
    fc = change(plan, "name.first_name")
    assert (fc.policy, fc.held, fc.status) == (WritePolicy.ALWAYS, False, FieldStatus.REPLACE)
    assert written(plan, snapshot) == {"name.first_name": "Anna"}


def test_if_empty_never_blanks_a_value():
    """A blank that the mapping lets clear PowerSchool (ignore_if_empty: false) is still an overwrite."""
    mapping = student_mapping("{field: city, target: addresses.physical.city, ignore_if_empty: false, "
                              "policy: if_empty}")
    plan, snapshot = plan_for([mapped(mapping, city="")])
    assert change(plan, "addresses.physical.city").held and written(plan, snapshot) == {}


def test_review_true_and_another_policy_disagree():
    with pytest.raises(MappingError) as err:
        student_mapping("{field: first, target: name.first_name, review: true, policy: never}")
    assert any("review: true and policy: never disagree" in p for p in err.value.problems)


def test_an_unknown_policy_is_refused():
    with pytest.raises(MappingError) as err:
        student_mapping("{field: first, target: name.first_name, policy: sometimes}")
    assert any("policy" in p for p in err.value.problems)


def test_a_held_part_of_an_address_block_is_sent_as_powerschool_has_it():
    """PowerSchool takes an address block whole: when the street may change but the city is if_empty (and
    PowerSchool has one), the block goes with PowerSchool's city."""
    mapping = student_mapping("{field: street, target: addresses.physical.street}",
                              "{field: city, target: addresses.physical.city, policy: if_empty}")
    plan, snapshot = plan_for([mapped(mapping, street="9 Elm Street", city="Chicago")])
    assert written(plan, snapshot) == {"addresses.physical.street": "9 Elm Street",
                                       "addresses.physical.city": "Springfield"}


# ---------------------------------------------------------------- contact values

def contact_mapping(**policies: str):
    """One section, María's fields; `rel=`, `work=`, `email=` give those fields a policy."""
    def spec(field: str, key: str) -> dict:
        return {"field": field, **({"policy": policies[key]} if key in policies else {})}

    return parse_mapping({"version": 1, "name": "contact-policies", "contacts": {"sections": {"guardian": {
        "position": 1, "first_name": "first", "last_name": "last", "relationship": spec("relationship", "rel"),
        "phones": {"Mobile": "cell", "Work": spec("work", "work")}, "email": spec("email", "email")}}}},
        source="<test>")


MARIA_FORM = {"first": "María", "last": "García-López", "cell": "(415) 555-0101", "email": "maria@example.com",
              "relationship": "Mother"}


def contact_plan(policies: dict[str, str], **form):
    rec = mapped(contact_mapping(**policies), **{**MARIA_FORM, **form})
    plan, snapshot = plan_for([rec])
    return plan, snapshot, plan.students[0].contacts[0]


def test_if_empty_email_keeps_the_primary_email_powerschool_has():
    plan, snapshot, cp = contact_plan({"email": "if_empty"}, email="maria.new@example.com")
    email = next(c for c in cp.changes if c.kind == "email")
    assert (email.op, email.held, email.old, email.new) == ("keep", True, "maria@example.com",
                                                            "maria.new@example.com")
    ops = resolve(plan, decide(plan), snapshot, TODAY)
    assert not [op for op in ops if op.kind.startswith("email")]
    assert not [i for i in plan.review_items if i.kind == "shared_contact_change"]  # nothing changes on María


def test_if_empty_email_fills_a_contact_without_one():
    snapshot = district()
    snapshot.persons[MARIA].emails = []
    rec = mapped(contact_mapping(email="if_empty"), **{**MARIA_FORM, "email": "maria.new@example.com"})
    plan, snapshot = plan_for([rec], snapshot)
    [op] = ops_of(resolve(plan, decide(plan), snapshot, TODAY), "email_add")
    assert op.values["address"] == "maria.new@example.com"


def test_never_on_a_phone_does_not_even_add_it():
    plan, snapshot, cp = contact_plan({"work": "never"}, work="415-555-0111")
    work = next(c for c in cp.changes if c.kind == "phone" and c.key == "Work")
    assert (work.op, work.held, work.policy) == ("keep", True, WritePolicy.NEVER)
    assert not ops_of(resolve(plan, decide(plan), snapshot, TODAY), "phone_add")


def test_always_on_a_phone_adds_it():
    plan, snapshot, _ = contact_plan({}, work="415-555-0111")
    [op] = ops_of(resolve(plan, decide(plan), snapshot, TODAY), "phone_add")
    assert op.values["number"] == "415-555-0111"


def test_if_empty_relationship_keeps_the_links_relationship():
    plan, snapshot, cp = contact_plan({"rel": "if_empty"}, relationship="Guardian")
    rel = next(c for c in cp.changes if c.kind == "detail" and c.key == "relationship")
    assert (rel.op, rel.held) == ("keep", True)
    assert not ops_of(resolve(plan, decide(plan), snapshot, TODAY), "detail_update")


def test_a_held_value_is_offered_no_choice():
    """The district's policy decides: the value row a reviewer could flip does not exist for it."""
    from writeback.domain.values import value_rows

    plan, snapshot, cp = contact_plan({"email": "if_empty"}, email="maria.new@example.com")
    rows = value_rows(cp, snapshot.persons[MARIA], cp.changes)
    assert not [r for r in rows if r.kind == "email" and r.target_id == MARIA_EMAIL and r.op != "keep"]


def test_contact_policies_stay_out_of_the_template_records_by_default():
    rec = record(ANA_NO, maria(1))
    assert rec.contacts[0].policies == {}
    plan, _ = plan_for([rec])
    assert all(c.policy == WritePolicy.ALWAYS and not c.held for c in plan.students[0].contacts[0].changes)
    assert JOSE  # the builders' district is the one the docstrings describe
