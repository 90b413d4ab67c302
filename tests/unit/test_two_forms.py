"""The merge rule for several forms of one student in one run (`domain/forms.py`): which form is the
latest, what each field takes, what a person is asked, and what resolve then writes."""

from __future__ import annotations

import itertools

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.unit.builders import (
    ANA_NO,
    LINK_ANA_JOSE,
    MARIA_MOBILE,
    TODAY,
    contact,
    decide,
    district,
    items_of,
    jose,
    maria,
    ops_of,
    plan_for,
    record,
)
from writeback.domain.forms import KIND, held_by_a_later_form, merge_forms, merge_student, recency
from writeback.domain.resolve import resolve

STAMPS = {"SUB-A": ("2026-06-11T09:30:00+02:00", "2026-06-10T08:00:00Z"),  # 07:30Z
          "SUB-B": ("2026-06-11T08:00:00Z", "2026-06-11T08:00:00Z")}
HOME = {"addresses.physical.street": "12 Oak Street", "addresses.physical.city": "Springfield",
        "addresses.physical.state_province": "IL", "addresses.physical.postal_code": "62701"}


def forms(a_fields=None, b_fields=None, a_contacts=(), b_contacts=(), **kw):
    a = record(ANA_NO, *a_contacts, submission_id="SUB-A", fields=a_fields or {}, **kw)
    b = record(ANA_NO, *b_contacts, submission_id="SUB-B", fields=b_fields or {}, **kw)
    return [a, b]


# ---------------------------------------------------------------- the latest form


def test_the_latest_is_read_from_the_timestamps_as_instants_not_from_ids_or_order():
    for records in itertools.permutations(forms()):
        merged = merge_student(list(records), STAMPS)
        assert merged.submission_id == "SUB-B"  # 08:00Z is later than 09:30+02:00
        assert [f.submission_id for f in merged.forms.forms] == ["SUB-B", "SUB-A"]


def test_updated_at_then_submitted_at_then_the_id_decide_a_tie():
    assert recency("A", "2026-06-01T00:00:00Z", "2026-05-01T00:00:00Z") > recency("B", "", "2026-05-30T00:00:00Z")
    assert recency("A", "2026-06-01T00:00:00Z", "2026-05-02T00:00:00Z") > recency(
        "B", "2026-06-01T00:00:00Z", "2026-05-01T00:00:00Z")
    assert recency("B", "2026-06-01T00:00:00Z", "") > recency("A", "2026-06-01T00:00:00Z", "")
    assert recency("A", "", "2026-01-01T00:00:00Z") > recency("B", "not a time", "")  # unreadable: the oldest


@settings(max_examples=100, deadline=None)
@given(st.permutations(["SUB-1", "SUB-2", "SUB-3"]),
       st.lists(st.sampled_from(["2026-06-01T00:00:00Z", "2026-06-01T02:00:00+02:00", "", "junk"]),
                min_size=3, max_size=3))
def test_the_merge_is_the_same_in_any_order(order, stamps):
    stamp = dict(zip(["SUB-1", "SUB-2", "SUB-3"], ((s, "") for s in stamps), strict=True))
    records = {sid: record(ANA_NO, maria(phones={"Mobile": f"415-555-01{n}0"}), submission_id=sid,
                           fields={"name.first_name": f"Ana{n}"}) for n, sid in enumerate(["SUB-1", "SUB-2", "SUB-3"])}
    first = merge_student([records[s] for s in ["SUB-1", "SUB-2", "SUB-3"]], stamp)
    assert merge_student([records[s] for s in order], stamp) == first


# ---------------------------------------------------------------- per field


def test_per_field_the_latest_wins_and_an_empty_field_keeps_the_other_forms_value():
    merged = merge_student(forms({"name.first_name": "Ana", "extension.u_x.nickname": "Annie"},
                                 {"name.first_name": "Ana", "extension.u_x.nickname": ""}), STAMPS)
    assert merged.student_fields == {"name.first_name": "Ana", "extension.u_x.nickname": "Annie"}
    assert merged.forms.disagreements == []


def test_a_disagreement_is_kept_with_every_forms_value_latest_first():
    merged = merge_student(forms({"name.first_name": "Anna"}, {"name.first_name": "Ana"}), STAMPS)
    assert merged.student_fields["name.first_name"] == "Ana"
    [d] = merged.forms.disagreements
    assert (d.ref, d.values) == ("field:name.first_name", {"SUB-B": "Ana", "SUB-A": "Anna"})


def test_values_equal_after_normalisation_agree():
    merged = merge_student(forms({**HOME, "name.first_name": "Ana María"},
                                 {**HOME, "addresses.physical.street": "12 oak st", "name.first_name": "Ana María"},
                                 [maria(phones={"Mobile": "(415) 555-0101"})], [maria(phones={"Mobile": "415.555.0101"})]),
                           STAMPS)
    assert merged.forms.disagreements == []
    assert merged.student_fields["addresses.physical.street"] == "12 oak st"  # the latest form's spelling


def test_an_address_block_is_one_question():
    other = {**HOME, "addresses.physical.street": "34 Elm St", "addresses.physical.city": "Shelbyville"}
    merged = merge_student(forms(HOME, other), STAMPS)
    [d] = merged.forms.disagreements
    assert d.ref == "address:addresses.physical" and d.values["SUB-A"] == HOME and d.values["SUB-B"] == other


def test_a_disputed_field_is_asked_once_not_also_as_a_field_change():
    merged = merge_student(forms({"name.first_name": "Anna"}, {"name.first_name": "Ana"},
                                 review=["name.first_name"]), STAMPS)
    assert merged.review_targets == []


# ---------------------------------------------------------------- contacts


def test_contacts_pair_by_name_in_any_slot_and_by_slot_when_a_name_typo_is_fixed():
    a = [jose(1, phones={"Mobile": "415-555-0102"}), contact(2, "Jon", "Smith", relationship="Uncle")]
    b = [maria(1), jose(2, phones={"Mobile": "415-555-0177"}), contact(3, "John", "Smyth")]
    merged = merge_student(forms(a_contacts=a, b_contacts=b), STAMPS)
    names = [(c.slot, c.first_name, c.last_name) for c in merged.contacts]
    # Jon Smith (slot 2 of A) has neither name of John Smyth (slot 3 of B): two contacts, the earlier one
    # moved to a free slot since the latest form's José holds slot 2
    assert names == [(1, "María", "García-López"), (2, "José", "García"), (3, "John", "Smyth"), (4, "Jon", "Smith")]
    assert {d.ref for d in merged.forms.disagreements} == {"contact2:phone:Mobile"}


def test_two_parents_sharing_a_phone_and_an_email_are_never_paired():
    shared = {"phones": {"Home": "415-555-0199"}, "email": "family@example.com"}
    merged = merge_student(forms(a_contacts=[contact(1, "Ann", "Lee", **shared)],
                                 b_contacts=[contact(1, "Bo", "Park", **shared)]), STAMPS)
    assert [(c.first_name, c.slot) for c in merged.contacts] == [("Bo", 1), ("Ann", 2)]


def test_a_phone_only_one_form_gives_is_kept_and_a_differing_one_is_asked():
    merged = merge_student(forms(a_contacts=[maria(phones={"Mobile": "415-555-0111", "Work": "415-555-0123"})],
                                 b_contacts=[maria(phones={"Mobile": "415-555-0122"})]), STAMPS)
    [c] = merged.contacts
    assert {p.type: p.number for p in c.phones} == {"Mobile": "415-555-0122", "Work": "415-555-0123"}
    [d] = merged.forms.disagreements
    assert d.ref == "contact1:phone:Mobile" and d.shown == {"SUB-B": "415-555-0122", "SUB-A": "415-555-0111"}


# ---------------------------------------------------------------- plan, review, resolve


def test_planning_two_records_of_one_student_is_refused():
    with pytest.raises(ValueError, match="merge a student's forms before planning"):
        plan_for(forms())


def _plan(a_contacts, b_contacts, a_fields=None, b_fields=None):
    merged, into = merge_forms(forms(a_fields, b_fields, a_contacts, b_contacts), STAMPS)
    assert into == {"SUB-A": "SUB-B"}
    return plan_for(merged)


def test_one_plan_one_item_per_disagreement_and_each_choice_is_written():
    plan, snapshot = _plan([maria(phones={"Mobile": "415-555-0111"})], [maria(phones={"Mobile": "415-555-0122"})],
                           {"name.first_name": "Anna"}, {"name.first_name": "Ana"})
    assert [sp.submission_id for sp in plan.students] == ["SUB-B"]
    items = items_of(plan, KIND)
    assert [(i.key, i.options, i.default) for i in items] == [
        (f"forms:{ANA_NO}:field:name.first_name", ["use:SUB-B", "use:SUB-A", "do_not_update"], "use:SUB-B"),
        (f"forms:{ANA_NO}:contact1:phone:Mobile", ["use:SUB-B", "use:SUB-A", "do_not_update"], "use:SUB-B")]
    items = items[1:]
    assert items[0].payload["proposals"] == [{"submission_id": "SUB-B", "stamp": STAMPS["SUB-B"][0],
                                              "value": "415-555-0122"},
                                             {"submission_id": "SUB-A", "stamp": STAMPS["SUB-A"][0],
                                              "value": "415-555-0111"}]
    assert "used_by" in items[0].payload and items[0].payload["used_by"]  # María is Luis's mother too

    def mobile(choice):
        ops = resolve(plan, decide(plan, **{items[0].key: choice}), snapshot, TODAY)
        assert len({op.key for op in ops}) == len(ops)
        return [op.values["number"] for op in ops_of(ops, "phone_update") if op.target_id == MARIA_MOBILE]

    assert mobile("use:SUB-B") == ["415-555-0122"]
    assert mobile("use:SUB-A") == ["415-555-0111"]
    assert mobile("do_not_update") == []


def test_a_student_field_choice_is_written_and_do_not_update_writes_nothing():
    plan, snapshot = _plan([], [], {"extension.u_x.nickname": "Annie"}, {"extension.u_x.nickname": "Nan"})
    [item] = items_of(plan, KIND)

    def nickname(choice):
        ops = resolve(plan, decide(plan, **{item.key: choice}), snapshot, TODAY)
        return [op.values.get("extension.u_x.nickname") for op in ops_of(ops, "student_update")]

    assert nickname("use:SUB-B") == ["Nan"] and nickname("use:SUB-A") == ["Annie"] and nickname("do_not_update") == []


def test_an_earlier_forms_removal_is_asked_and_when_chosen_expires_the_link():
    plan, snapshot = _plan([maria(1), jose(2, remove=True)], [maria(1), jose(2)])
    [item] = items_of(plan, KIND)
    assert item.payload["ref"] == "contact2:remove" and not items_of(plan, "contact_removal")
    kept = resolve(plan, decide(plan, **{item.key: "use:SUB-B"}), snapshot, TODAY)
    removed = resolve(plan, decide(plan, **{item.key: "use:SUB-A"}), snapshot, TODAY)
    assert not ops_of(kept, "link_expire")
    assert [(op.target_id, op.values["end_date"]) for op in ops_of(removed, "link_expire")] == [
        (LINK_ANA_JOSE, TODAY.isoformat())]


def test_a_removal_the_latest_form_asks_for_is_its_own_contact_removal_item():
    plan, _ = _plan([maria(1), jose(2)], [maria(1), jose(2, remove=True)])
    assert not items_of(plan, KIND) and len(items_of(plan, "contact_removal")) == 1
    assert [d.ref for d in plan.students[0].forms.disagreements] == ["contact2:remove"]  # still on record


def test_an_older_form_waits_for_a_quarantined_later_one():
    problems = held_by_a_later_form({"SUB-A": ANA_NO}, {"SUB-B": ANA_NO, "SUB-X": "100009"}, STAMPS)
    assert [(p.submission_id, p.check) for p in problems] == [("SUB-A", "later_form_quarantined")]
    assert "SUB-B" in problems[0].reason
    assert held_by_a_later_form({"SUB-B": ANA_NO}, {"SUB-A": ANA_NO}, STAMPS) == []  # a quarantined older one


def test_the_snapshot_is_not_touched_by_the_merge():
    snapshot = district()
    before = snapshot.model_dump()
    _plan([maria(1)], [maria(1)])
    assert snapshot.model_dump() == before
