"""Per-value options on a contact: update, "do not update and add the new value", do not update, and
remove (from the form's blank when the mapping allows it, or a reviewer's choice on any other value)."""

from __future__ import annotations

import yaml

from tests.unit.builders import (
    ANA_NO,
    JOSE,
    JOSE_EMAIL,
    LUIS_NO,
    MARIA,
    MARIA_ADDRESS,
    MARIA_EMAIL,
    MARIA_HOME,
    MARIA_MOBILE,
    MIA_NO,
    TODAY,
    WEI_EMAIL,
    contact,
    decide,
    items_of,
    jose,
    maria,
    ops_of,
    plan_for,
    record,
    registration_fields,
)
from writeback.domain.mapping import apply_mapping, parse_mapping
from writeback.domain.resolve import resolve
from writeback.domain.values import invalid_choices, portal_emails_by_person, value_rows


def ops_with(records, values=None, **choices):
    plan, snapshot = plan_for(records)
    return resolve(plan, decide(plan, **choices), snapshot, TODAY, values=values)


def rows_of(records, student=0, slot=1):
    plan, snapshot = plan_for(records)
    cp = next(c for c in plan.students[student].contacts if c.slot == slot)
    return value_rows(cp, snapshot.persons.get(cp.person_id), cp.changes,
                      portal_emails_by_person(snapshot).get(cp.person_id, set()))


NEW_MOBILE = {"Mobile": "415-555-0111", "Home": "(415) 555-0199"}


# ---------------------------------------------------------------- the form's blank clears a value


MAPPING = """
name: clears
contacts:
  slots: 1
  first_name: "contact{n}_first_name"
  last_name: "contact{n}_last_name"
  phones:
    Mobile: {field: "contact{n}_cell_phone", transforms: [phone]}
    Home: {field: "contact{n}_home_phone", transforms: [phone], ignore_if_empty: false}
  email: {field: "contact{n}_email", transforms: [email], ignore_if_empty: false}
"""


def mapped(**overrides):
    mapping = parse_mapping(yaml.safe_load(MAPPING), "clears.yaml")
    return apply_mapping(mapping, "SUB-1", registration_fields(**overrides))


def test_a_blank_clears_only_where_the_mapping_says_so():
    rec = mapped(contact1_home_phone="", contact1_email="", contact1_cell_phone="")
    (c,) = rec.contacts
    assert c.clears == ["phone:Home", "email"]  # the blank mobile is ignored (ignore_if_empty by default)
    rec = mapped(contact1_home_phone="415-555-0199")
    assert rec.contacts[0].clears == []
    # a field the form did not send at all is not a blank the family chose
    fields = registration_fields()
    del fields["contact1_home_phone"]
    rec = apply_mapping(parse_mapping(yaml.safe_load(MAPPING), "clears.yaml"), "SUB-1", fields)
    assert "phone:Home" not in rec.contacts[0].clears


def test_a_cleared_phone_and_email_become_removals_of_the_paired_values():
    rec = record(ANA_NO, maria(phones={"Mobile": "415-555-0101"}, email="", clears=["phone:Home", "email"]))
    plan, _ = plan_for([rec])
    removals = [(c.kind, c.target_id, c.old) for c in plan.students[0].contacts[0].changes if c.op == "remove"]
    assert removals == [("phone", MARIA_HOME, "415-555-0199"), ("email", MARIA_EMAIL, "maria@example.com")]
    ops = resolve(plan, decide(plan), _snapshot(plan_for([rec])), TODAY)
    assert [(o.target_id, o.expected) for o in ops_of(ops, "phone_delete")] == [
        (MARIA_HOME, {"number": "415-555-0199"})]
    assert [(o.target_id, o.expected) for o in ops_of(ops, "email_delete")] == [
        (MARIA_EMAIL, {"address": "maria@example.com"})]
    assert ops_of(ops, "phone_update") == [] and ops_of(ops, "phone_add") == []


def _snapshot(plan_and_snapshot):
    return plan_and_snapshot[1]


def test_without_a_clear_a_missing_phone_is_left_alone():
    ops = ops_with([record(ANA_NO, maria(phones={"Mobile": "415-555-0101"}))])
    assert ops_of(ops, "phone_delete") == []


def test_a_reviewer_may_keep_a_value_the_form_cleared():
    rec = record(ANA_NO, maria(phones={"Mobile": "415-555-0101"}, clears=["phone:Home"]))
    ops = ops_with([rec], values={ANA_NO: {"slot:1:phone:Home": "keep"}})
    assert ops_of(ops, "phone_delete") == []


def test_a_removal_on_a_shared_contact_goes_to_review_like_any_change():
    rec = record(ANA_NO, maria(phones={"Mobile": "415-555-0101"}, clears=["phone:Home"]))
    plan, _ = plan_for([rec])
    (shared,) = items_of(plan, "shared_contact_change")  # María is Luis's mother too
    assert any(c["op"] == "remove" for c in shared.payload["changes"])
    ops = resolve(plan, decide(plan, shared_contact_change="do_not_update"), plan_for([rec])[1], TODAY)
    assert ops_of(ops, "phone_delete") == []


# ---------------------------------------------------------------- update, keep-and-add, do not update


def test_an_update_by_default_overwrites_the_paired_value():
    ops = ops_with([record(ANA_NO, maria(phones=NEW_MOBILE))])
    (update,) = ops_of(ops, "phone_update")
    assert (update.target_id, update.values["number"]) == (MARIA_MOBILE, "415-555-0111")


def test_keep_and_add_leaves_the_old_phone_and_adds_the_new_one():
    ops = ops_with([record(ANA_NO, maria(phones=NEW_MOBILE))], values={ANA_NO: {"slot:1:phone:Mobile": "keep_and_add"}})
    assert ops_of(ops, "phone_update") == []
    (add,) = ops_of(ops, "phone_add")
    assert (add.person_ref, add.values["number"], add.values["type"]) == (f"p:{MARIA}", "415-555-0111", "Mobile")


def test_keep_and_add_on_an_email_adds_the_new_address_and_keeps_the_old():
    rec = record(ANA_NO, jose(slot=1, email="jose.new@example.com"))
    ops = ops_with([rec], values={ANA_NO: {"slot:1:email:primary": "keep_and_add"}})
    assert ops_of(ops, "email_update") == []
    (add,) = ops_of(ops, "email_add")
    assert (add.person_ref, add.values) == (f"p:{JOSE}", {"address": "jose.new@example.com"})
    # and by default the old address is overwritten in place
    (update,) = ops_of(ops_with([rec]), "email_update")
    assert update.target_id == JOSE_EMAIL


def test_do_not_update_writes_nothing_for_that_value_only():
    rec = record(ANA_NO, maria(phones={"Mobile": "415-555-0111", "Home": "415-555-0188"}))
    ops = ops_with([rec], values={ANA_NO: {"slot:1:phone:Mobile": "do_not_update"}})
    assert [o.target_id for o in ops_of(ops, "phone_update")] == [MARIA_HOME]


def test_an_address_offers_no_keep_and_add():
    moved = {"street": "9 Elm Road", "city": "Springfield", "state": "IL", "postal_code": "62701"}
    rows = {r.ref: r for r in rows_of([record(ANA_NO, maria(address=moved))])}
    assert rows["slot:1:address:Home"].options == ["update", "do_not_update"]


# ---------------------------------------------------------------- removing any other value


def test_values_the_form_does_not_name_can_be_removed_by_a_reviewer():
    rec = record(ANA_NO, maria(phones={"Mobile": "415-555-0101"}))  # the home phone is not on the form
    rows = {r.ref: r for r in rows_of([rec])}
    home = rows[f"slot:1:phone#{MARIA_HOME}"]
    assert (home.op, home.old, home.options) == ("keep", "415-555-0199", ["keep", "remove"])
    assert f"slot:1:phone#{MARIA_MOBILE}" not in rows  # paired (kept) with the form's mobile
    assert ops_of(ops_with([rec]), "phone_delete") == []  # nothing is removed unless chosen
    ops = ops_with([rec], values={ANA_NO: {f"slot:1:phone#{MARIA_HOME}": "remove",
                                           f"slot:1:address#{MARIA_ADDRESS}": "remove"}})
    assert [o.target_id for o in ops_of(ops, "phone_delete")] == [MARIA_HOME]
    assert [(o.target_id, o.expected) for o in ops_of(ops, "address_delete")] == [
        (MARIA_ADDRESS, {"address": "12 Oak Street, Springfield IL 62701"})]


def test_a_portal_accounts_email_is_never_offered_for_removal():
    wei = contact(1, "Wei", "Chen", phones={"Mobile": "415-555-0105"}, email="", clears=["email"])
    rows = rows_of([record(MIA_NO, wei)])
    assert not any(r.kind == "email" for r in rows)
    plan, snapshot = plan_for([record(MIA_NO, wei)])
    ops = resolve(plan, decide(plan), snapshot, TODAY, values={MIA_NO: {f"slot:1:email#{WEI_EMAIL}": "remove"}})
    assert ops_of(ops, "email_delete") == []


def test_invalid_choices_name_the_value_and_the_options():
    rows = rows_of([record(ANA_NO, maria(phones=NEW_MOBILE))])
    problems = invalid_choices(rows, {"slot:1:phone:Mobile": "remove", "slot:9:phone:Home": "keep"})
    assert problems == ["slot:1:phone:Mobile: 'remove' is not an option (options: update, keep_and_add, do_not_update)",
                        "slot:9:phone:Home: not a value of this student's contacts"]


def test_a_choice_the_value_does_not_offer_leaves_the_plans_proposal():
    ops = ops_with([record(ANA_NO, maria(phones=NEW_MOBILE))], values={ANA_NO: {"slot:1:phone:Mobile": "remove"}})
    assert [o.target_id for o in ops_of(ops, "phone_update")] == [MARIA_MOBILE]
    assert ops_of(ops, "phone_delete") == []


def test_removal_ops_are_deterministic_and_deduplicated_between_siblings():
    values = {ANA_NO: {f"slot:1:phone#{MARIA_HOME}": "remove"}, LUIS_NO: {f"slot:1:phone#{MARIA_HOME}": "remove"}}
    recs = [record(ANA_NO, maria(phones={"Mobile": "415-555-0101"})),
            record(LUIS_NO, maria(phones={"Mobile": "415-555-0101"}))]
    first, second = ops_with(recs, values=values), ops_with(recs, values=values)
    assert [o.key for o in ops_of(first, "phone_delete")] == [f"phone_delete:p:{MARIA}:{MARIA_HOME}"]
    assert first == second


# ---------------------------------------------------------------- siblings' forms that disagree


def test_a_form_confirming_a_value_and_a_sibling_form_changing_it_go_to_review():
    recs = [record(ANA_NO, maria(phones=NEW_MOBILE)), record(LUIS_NO, maria())]
    plan, _ = plan_for(recs)
    (conflict,) = items_of(plan, "conflicting_forms")
    assert (conflict.payload["kind"], conflict.payload["key"]) == ("phone", "Mobile")
    assert {p["new"] for p in conflict.payload["proposals"]} == {"415-555-0111", "415-555-0101"}
    keep = next(o for o in conflict.options if o == f"use:SUB-{LUIS_NO}")
    ops = resolve(plan, decide(plan, conflicting_forms=keep), plan_for(recs)[1], TODAY)
    assert ops_of(ops, "phone_update") == []


def test_two_forms_confirming_the_same_values_are_no_conflict():
    recs = [record(ANA_NO, maria()), record(LUIS_NO, maria(phones={"Mobile": "(415) 555-0101",
                                                                  "Home": "415-555-0199"}))]
    plan, _ = plan_for(recs)
    assert items_of(plan, "conflicting_forms") == []


def test_a_contact_the_family_removes_offers_no_value_choices():
    gone = maria(phones=NEW_MOBILE, remove=True)
    assert rows_of([record(ANA_NO, gone)]) == []
