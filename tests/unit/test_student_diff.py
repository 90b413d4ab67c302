"""Student demographics: Edit / Add / Ignore with keep / replace / new; empty never blanks unless mapped so."""

from __future__ import annotations

from tests.unit.builders import ANA, ANA_NO, district, items_of, plan_for, record
from writeback.domain.models import FieldAction, FieldStatus, Student
from writeback.domain.plan import diff_student_fields


def student() -> Student:
    return district().students[ANA]


def diff(fields, blank_clears=(), review=()):
    rec = record(ANA_NO, fields=fields, blank_clears=list(blank_clears), review=list(review))
    return {fc.target: fc for fc in diff_student_fields(rec, student())}


def test_equal_value_is_kept():
    fc = diff({"addresses.physical.city": "Springfield"})["addresses.physical.city"]
    assert (fc.action, fc.status, fc.old, fc.new) == (FieldAction.IGNORE, FieldStatus.KEEP, "Springfield",
                                                      "Springfield")


def test_different_value_replaces_with_edit():
    fc = diff({"addresses.physical.city": "Shelbyville"})["addresses.physical.city"]
    assert (fc.action, fc.status, fc.old, fc.new) == (FieldAction.EDIT, FieldStatus.REPLACE, "Springfield",
                                                      "Shelbyville")


def test_value_powerschool_lacks_is_new_with_add():
    fields = {"addresses.mailing.street": "PO Box 4", "extension.u_students_extension.pref_first_name": "Anita",
              "name.middle_name": "Sofía"}
    for target, fc in diff(fields).items():
        assert (fc.action, fc.status, fc.old, fc.new) == (FieldAction.ADD, FieldStatus.NEW, "", fields[target])


def test_empty_submitted_value_never_blanks_powerschool():
    fc = diff({"addresses.physical.city": ""})["addresses.physical.city"]
    assert fc.action == FieldAction.IGNORE and fc.status == FieldStatus.KEEP
    assert fc.new == "Springfield"  # the value that stays


def test_empty_submitted_value_clears_when_the_mapping_says_so():
    fc = diff({"addresses.physical.city": ""}, blank_clears=["addresses.physical.city"])["addresses.physical.city"]
    assert (fc.action, fc.status, fc.old, fc.new) == (FieldAction.EDIT, FieldStatus.REPLACE, "Springfield", "")


def test_empty_on_empty_is_nothing_even_when_blank_clears():
    fc = diff({"addresses.mailing.city": ""}, blank_clears=["addresses.mailing.city"])["addresses.mailing.city"]
    assert fc.action == FieldAction.IGNORE


def test_review_fields_need_review_only_when_the_value_changes():
    changes = diff({"name.first_name": "Ana", "name.last_name": "Garcia Lopez", "name.middle_name": "",
                    "addresses.physical.city": "Shelbyville"},
                   review=["name.first_name", "name.last_name", "name.middle_name"])
    assert not changes["name.first_name"].needs_review  # equal
    assert changes["name.last_name"].needs_review  # changed
    assert not changes["name.middle_name"].needs_review  # empty: ignored
    assert not changes["addresses.physical.city"].needs_review  # changed, but not a review field


def test_review_field_items_appear_only_for_changed_values():
    rec = record(ANA_NO, fields={"name.first_name": "Ana", "name.last_name": "García-Ruiz",
                                 "demographics.birth_date": "2015-03-02", "addresses.physical.city": "X"},
                 review=["name.first_name", "name.last_name", "demographics.birth_date"])
    plan, _ = plan_for([rec])
    items = items_of(plan, "field_change")
    assert [i.target for i in items] == ["name.last_name"]
    assert items[0].payload["old"] == "García" and items[0].payload["new"] == "García-Ruiz"
    assert set(items[0].options) == {"approve", "ignore"}
