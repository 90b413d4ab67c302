"""Resolve: a plan and the reviewers' decisions become the exact, ordered list of PowerSchool writes."""

from __future__ import annotations

import pytest

from tests.unit.builders import (
    ANA,
    ANA_NO,
    JOSE,
    LINK_ANA_JOSE,
    LUIS,
    LUIS_NO,
    MARIA,
    MARIA_EMAIL,
    MARIA_MOBILE,
    MIA,
    MIA_NO,
    PEDRO,
    ROSA,
    TODAY,
    WEI,
    contact,
    decide,
    district,
    items_of,
    jose,
    maria,
    ops_of,
    plan_for,
    record,
    resolve_all,
)
from writeback.domain.models import Decision
from writeback.domain.plan import new_contact_key
from writeback.domain.resolve import UnresolvedItems, ops_hash, plan_hash, resolve

REVIEWED = ["name.first_name", "name.last_name"]


def student_op(ops, dcid=ANA):
    found = [op for op in ops if op.kind == "student_update" and op.student_dcid == dcid]
    assert len(found) <= 1
    return found[0] if found else None


def order_of(ops, dcid=ANA):
    found = [op for op in ops if op.kind == "contact_order" and op.student_dcid == dcid]
    assert len(found) <= 1
    return found[0] if found else None


def writes_to(ops, person_ref):
    return [op for op in ops if op.person_ref == person_ref and op.stage == "apply"]


# ---------------------------------------------------------------- decisions required


def test_pending_items_refuse_to_resolve():
    plan, snap = plan_for([record(ANA_NO, maria(phones={"Home": "415-555-0101"}), contact(2, "Carmen", "Ortiz"))])
    assert {"phone_type_mismatch", "name_mismatch"} <= {i.kind for i in plan.review_items}
    with pytest.raises(UnresolvedItems) as err:
        resolve(plan, {}, snap, TODAY)
    assert sorted(err.value.keys) == sorted(i.key for i in plan.review_items)
    one = plan.review_items[0]
    with pytest.raises(UnresolvedItems) as err:
        resolve(plan, {one.key: Decision(item_key=one.key, choice=one.options[0])}, snap, TODAY)
    assert err.value.keys == [i.key for i in plan.review_items[1:]]


def test_an_unchanged_form_writes_nothing():
    assert resolve_all([record(ANA_NO, maria(), jose(), fields={"name.first_name": "Ana"})]) == []


# ---------------------------------------------------------------- student fields


def test_approved_review_field_is_written_ignored_is_not():
    rec = record(ANA_NO, fields={"name.first_name": "Anna", "name.last_name": "García-Ruiz",
                                 "extension.u_students_extension.pref_first_name": "Anita"}, review=REVIEWED)
    plan, snap = plan_for([rec])
    keys = {i.target: i.key for i in items_of(plan, "field_change")}
    assert set(keys) == set(REVIEWED)
    decisions = decide(plan, **{keys["name.first_name"]: "approve", keys["name.last_name"]: "ignore"})
    op = student_op(resolve(plan, decisions, snap, TODAY))
    assert op.values == {"name.first_name": "Anna", "extension.u_students_extension.pref_first_name": "Anita"}
    assert op.expected == {"name.first_name": "Ana", "extension.u_students_extension.pref_first_name": ""}
    decisions = decide(plan, field_change="ignore")
    op = student_op(resolve(plan, decisions, snap, TODAY))
    assert op.values == {"extension.u_students_extension.pref_first_name": "Anita"}


def test_a_changed_address_part_sends_the_whole_block():
    fields = {"addresses.physical.street": "12 Oak Street", "addresses.physical.city": "Shelbyville",
              "addresses.physical.state_province": "", "addresses.physical.postal_code": "62701",
              "addresses.mailing.street": "", "addresses.mailing.city": ""}
    op = student_op(resolve_all([record(ANA_NO, fields=fields)]))
    assert op.values == {"addresses.physical.street": "12 Oak Street", "addresses.physical.city": "Shelbyville",
                         "addresses.physical.state_province": "IL", "addresses.physical.postal_code": "62701"}
    assert op.expected["addresses.physical.city"] == "Springfield"
    assert not any(k.startswith("addresses.mailing") for k in op.values)


def test_an_unapproved_address_part_is_sent_with_its_powerschool_value():
    fields = {"addresses.physical.street": "9 Elm Road", "addresses.physical.city": "Shelbyville"}
    rec = record(ANA_NO, fields=fields, review=["addresses.physical.street"])
    plan, snap = plan_for([rec])
    op = student_op(resolve(plan, decide(plan, field_change="ignore"), snap, TODAY))
    assert op.values == {"addresses.physical.street": "12 Oak Street", "addresses.physical.city": "Shelbyville"}


# ---------------------------------------------------------------- possible matches


def test_confirmed_possible_match_updates_the_existing_person():
    rec = record(MIA_NO, contact(3, "José", "García", relationship="Uncle"))
    plan, snap = plan_for([rec])
    (item,) = items_of(plan, "possible_match")
    ops = resolve(plan, decide(plan, possible_match=f"confirm:{JOSE}"), snap, TODAY)
    assert ops_of(ops, "contact_create") == []
    (link,) = ops_of(ops, "link_add")
    assert (link.person_ref, link.student_dcid, link.values["relationship"]) == (f"p:{JOSE}", MIA, "Uncle")
    # the form names him in slot 3: Wei and Rosa, whom the form does not name, keep places 1 and 2
    assert order_of(ops, MIA).values["order"] == [f"p:{WEI}", f"p:{ROSA}", f"p:{JOSE}"]


def test_not_a_match_creates_a_new_contact_instead():
    c = contact(3, "José", "García", relationship="Uncle")
    plan, snap = plan_for([record(MIA_NO, c)])
    ops = resolve(plan, decide(plan, possible_match="not_a_match"), snap, TODAY)
    ref = f"new:{new_contact_key(c, household='F2')}"
    (create,) = ops_of(ops, "contact_create")
    assert create.person_ref == ref and create.values["first_name"] == "José"
    (link,) = ops_of(ops, "link_add")
    assert link.person_ref == ref
    assert all(op.person_ref != f"p:{JOSE}" for op in ops)


def test_do_not_update_on_a_possible_match_writes_nothing_for_it():
    plan, snap = plan_for([record(MIA_NO, contact(3, "José", "García", relationship="Uncle"))])
    assert resolve(plan, decide(plan, possible_match="do_not_update"), snap, TODAY) == []


# ---------------------------------------------------------------- new contacts across siblings


def test_siblings_naming_the_same_new_parent_create_one_contact_linked_to_both():
    def pablo(slot):
        return contact(slot, "Pablo", "Ortega", email="pablo@example.com", phones={"Mobile": "415-555-0177"},
                       relationship="Stepfather")
    ops = resolve_all([record(ANA_NO, maria(), jose(), pablo(3)), record(LUIS_NO, maria(), pablo(2))])
    ref = f"new:{new_contact_key(pablo(3), household='F1')}"
    (create,) = ops_of(ops, "contact_create")
    assert create.person_ref == ref
    links = ops_of(ops, "link_add")
    assert sorted((op.student_dcid, op.person_ref) for op in links) == [(ANA, ref), (LUIS, ref)]
    assert len(ops_of(ops, "phone_add")) == 1 and len(ops_of(ops, "email_add")) == 1
    assert ops.index(create) < min(ops.index(op) for op in links)  # created before it is linked
    assert len({op.key for op in ops}) == len(ops)


def test_a_new_contact_takes_its_form_position_in_the_order():
    pablo = contact(2, "Pablo", "Ortega", email="pablo@example.com")
    # José's link is in slot 2, so Pablo in slot 2 is a name mismatch: the reviewer says "new contact"
    ops = resolve_all([record(ANA_NO, maria(), pablo, jose(slot=3))], name_mismatch="new_contact_keep_old")
    order = order_of(ops)
    assert order.values["order"] == [f"p:{MARIA}", f"new:{new_contact_key(pablo, household='F1')}", f"p:{JOSE}", f"p:{PEDRO}"]
    assert order.expected["order"] == [f"p:{MARIA}", f"p:{JOSE}", f"p:{PEDRO}"]


# ---------------------------------------------------------------- values of existing contacts


def test_phone_type_use_submitted_type_updates_only_the_type():
    plan, snap = plan_for([record(ANA_NO, maria(phones={"Home": "415-555-0101"}))])
    ops = resolve(plan, decide(plan, phone_type_mismatch="use_submitted_type"), snap, TODAY)
    phone_ops = [op for op in ops if op.kind.startswith("phone")]
    assert len(phone_ops) == 1
    (op,) = phone_ops
    assert (op.kind, op.target_id, op.values, op.expected) == ("phone_update", MARIA_MOBILE, {"type": "Home"},
                                                               {"type": "Mobile"})


@pytest.mark.parametrize("choice", ["keep_powerschool_type", "do_not_update"])
def test_phone_type_keep_powerschool_type_writes_no_phone(choice):
    plan, snap = plan_for([record(ANA_NO, maria(phones={"Home": "415-555-0101"}))])
    ops = resolve(plan, decide(plan, phone_type_mismatch=choice), snap, TODAY)
    assert [op for op in ops if op.kind.startswith("phone")] == []


def test_value_updates_target_the_paired_record():
    ops = resolve_all([record(ANA_NO, maria(phones={"Mobile": "415-555-0111"}, email="maria.g@example.com"))],
                      shared_contact_change="approve")
    (phone,) = ops_of(ops, "phone_update")
    assert (phone.target_id, phone.values["number"], phone.expected) == (MARIA_MOBILE, "415-555-0111",
                                                                         {"number": "(415) 555-0101"})
    (email,) = ops_of(ops, "email_update")
    assert (email.target_id, email.values, email.expected) == (MARIA_EMAIL, {"address": "maria.g@example.com"},
                                                               {"address": "maria@example.com"})


def test_shared_contact_do_not_update_leaves_the_person_untouched_in_place():
    ops = resolve_all([record(ANA_NO, maria(email="maria.g@example.com"), jose())],
                      shared_contact_change="do_not_update")
    assert writes_to(ops, f"p:{MARIA}") == []
    assert order_of(ops) is None  # still first, nothing moved


def test_detail_update_for_an_existing_link():
    ops = resolve_all([record(ANA_NO, jose(relationship="Stepfather", emergency=True))])
    (op,) = ops_of(ops, "detail_update")
    assert op.values == {"link_id": LINK_ANA_JOSE, "relationship": "Stepfather", "emergency": "1"}
    assert op.expected == {"relationship": "Father", "emergency": "0"}


def test_data_access_is_written_unless_skipped_for_a_portal_conflict():
    ops = resolve_all([record(ANA_NO, jose(data_access=True))])
    assert [(op.person_ref, op.student_dcid) for op in ops_of(ops, "data_access")] == [(f"p:{JOSE}", ANA)]
    ops = resolve_all([record(ANA_NO, jose(email="wei@example.com", data_access=True))],
                      portal_email_conflict="skip_data_access", shared_contact_change="approve")
    assert ops_of(ops, "data_access") == []


def test_name_mismatch_same_person_update_name_renames_the_slot_person():
    # María, remarried, writes her new surname. ("Mary" was used here until matching learned nicknames:
    # Mary is María's nickname, a certain match with no name mismatch.)
    plan, snap = plan_for([record(ANA_NO, contact(1, "María", "Ortiz"))])
    ops = resolve(plan, decide(plan, name_mismatch="same_person_update_name"), snap, TODAY)
    (op,) = ops_of(ops, "contact_name")
    assert op.person_ref == f"p:{MARIA}" and op.values == {"last_name": "Ortiz"}
    ops = resolve(plan, decide(plan, name_mismatch="same_person_keep_name"), snap, TODAY)
    assert ops_of(ops, "contact_name") == []


def test_name_mismatch_new_contact_expire_old():
    c = contact(1, "Carmen", "Ortiz", relationship="Stepmother")
    plan, snap = plan_for([record(ANA_NO, c)])
    ops = resolve(plan, decide(plan, name_mismatch="new_contact_expire_old"), snap, TODAY)
    assert len(ops_of(ops, "contact_create")) == 1
    (expire,) = ops_of(ops, "link_expire")
    assert (expire.person_ref, expire.values["end_date"]) == (f"p:{MARIA}", TODAY.isoformat())
    assert order_of(ops).values["order"][-1] == f"p:{MARIA}"


# ---------------------------------------------------------------- cleanup: expire, unlink, order


def test_expire_with_a_date_expires_the_link_and_moves_it_last():
    plan, snap = plan_for([record(ANA_NO, maria(), jose(remove=True))])
    ops = resolve(plan, decide(plan, contact_removal=("expire", {"end_date": "2026-09-01"})), snap, TODAY)
    (expire,) = ops_of(ops, "link_expire")
    assert (expire.stage, expire.target_id, expire.values) == ("cleanup", LINK_ANA_JOSE, {"end_date": "2026-09-01"})
    assert writes_to(ops, f"p:{JOSE}") == []  # a removed contact gets no value writes
    order = order_of(ops)
    assert order.stage == "cleanup"
    assert order.values["order"] == [f"p:{MARIA}", f"p:{PEDRO}", f"p:{JOSE}"]


def test_unlink_deletes_the_link_and_leaves_it_out_of_the_order():
    plan, snap = plan_for([record(ANA_NO, maria(), jose(remove=True))])
    ops = resolve(plan, decide(plan, contact_removal="unlink"), snap, TODAY)
    (delete,) = ops_of(ops, "link_delete")
    assert (delete.stage, delete.target_id, delete.person_ref) == ("cleanup", LINK_ANA_JOSE, f"p:{JOSE}")
    assert ops_of(ops, "link_expire") == []
    order = order_of(ops)
    assert order is None or f"p:{JOSE}" not in order.values["order"]
    assert not any(op.kind in {"contact_name", "contact_create"} for op in ops)  # the person stays


def test_removal_do_not_update_keeps_the_contact_as_it_is():
    plan, snap = plan_for([record(ANA_NO, maria(), jose(remove=True))])
    assert resolve(plan, decide(plan, contact_removal="do_not_update"), snap, TODAY) == []


def test_reorder_moves_links_and_never_changes_a_person():
    ops = resolve_all([record(ANA_NO, jose(slot=1), maria(slot=2))])
    assert [op.kind for op in ops] == ["contact_order"]
    order = order_of(ops)
    assert order.values["order"] == [f"p:{JOSE}", f"p:{MARIA}", f"p:{PEDRO}"]
    assert sorted(order.values["order"]) == sorted(order.expected["order"])  # the same people


def test_expired_contacts_stay_after_the_active_ones():
    snap = district()
    # an expired link sits between the active ones in PowerSchool
    snap.links[1].sequence, snap.links[2].sequence = 3, 2
    plan, snap = plan_for([record(ANA_NO, maria(), jose(email="jose.g@example.com"))], snap)
    order = order_of(resolve(plan, decide(plan), snap, TODAY))
    assert order.values["order"] == [f"p:{MARIA}", f"p:{JOSE}", f"p:{PEDRO}"]


def test_apply_ops_come_before_cleanup_ops():
    pablo = contact(2, "Pablo", "Ortega", email="pablo@example.com")
    plan, snap = plan_for([record(ANA_NO, maria(), pablo, jose(slot=3, remove=True),
                                  fields={"addresses.physical.city": "Shelbyville"})])
    ops = resolve(plan, decide(plan, contact_removal=("expire", {"end_date": "2026-09-01"}),
                               name_mismatch="new_contact_keep_old"), snap, TODAY)
    stages = [op.stage for op in ops]
    assert stages == sorted(stages, key=lambda s: s == "cleanup")
    assert {"student_update", "contact_create", "link_add", "link_expire", "contact_order"} <= {
        op.kind for op in ops}


# ---------------------------------------------------------------- determinism


def scenario():
    return [record(ANA_NO, maria(phones={"Home": "415-555-0101"}, email="m.g@example.com"),
                   contact(2, "Pablo", "Ortega", email="pablo@example.com"), jose(slot=3, remove=True),
                   fields={"name.last_name": "Ruiz", "addresses.physical.city": "Shelbyville"}, review=REVIEWED),
            record(LUIS_NO, maria(), contact(2, "Pablo", "Ortega", email="pablo@example.com")),
            # Carmen in Rosa's slot: a name mismatch. (Ana's slot 2 no longer makes one since matching sees
            # that José, slot 2's link, is named in slot 3 of the same form: Pablo is simply a new contact.)
            record(MIA_NO, contact(1, "Wei", "Chen"), contact(2, "Carmen", "Ortiz"), contact(3, "José", "García"))]


def test_same_inputs_give_the_same_ops_and_hash():
    plan1, snap1 = plan_for(scenario())
    plan2, snap2 = plan_for(scenario())
    assert plan_hash(plan1) == plan_hash(plan2)
    ops1 = resolve(plan1, decide(plan1, possible_match=f"confirm:{JOSE}"), snap1, TODAY)
    ops2 = resolve(plan2, decide(plan2, possible_match=f"confirm:{JOSE}"), snap2, TODAY)
    assert ops1 == ops2 and ops_hash(ops1) == ops_hash(ops2)
    assert len({op.key for op in ops1}) == len(ops1)


def test_a_different_decision_gives_a_different_hash():
    plan, snap = plan_for(scenario())
    base = ops_hash(resolve(plan, decide(plan, possible_match=f"confirm:{JOSE}"), snap, TODAY))
    for other in (dict(possible_match="not_a_match"),
                  dict(possible_match=f"confirm:{JOSE}", field_change="ignore"),
                  dict(possible_match=f"confirm:{JOSE}", contact_removal="unlink"),
                  dict(possible_match=f"confirm:{JOSE}", phone_type_mismatch="keep_powerschool_type"),
                  dict(possible_match=f"confirm:{JOSE}", name_mismatch="new_contact_keep_old")):
        assert ops_hash(resolve(plan, decide(plan, **other), snap, TODAY)) != base, other


def test_op_keys_do_not_depend_on_decision_order():
    plan, snap = plan_for(scenario())
    decisions = decide(plan, possible_match=f"confirm:{JOSE}")
    reversed_decisions = dict(reversed(list(decisions.items())))
    assert ops_hash(resolve(plan, decisions, snap, TODAY)) == ops_hash(
        resolve(plan, reversed_decisions, snap, TODAY))


def test_mia_is_untouched_by_the_garcia_forms():
    ops = resolve_all(scenario()[:2], contact_removal="expire", name_mismatch="new_contact_keep_old")
    assert {op.student_dcid for op in ops if op.student_dcid is not None} <= {ANA, LUIS}
    assert all(op.student_number in {ANA_NO, LUIS_NO} for op in ops)
    assert MIA not in {op.student_dcid for op in ops}


def test_a_form_contact_added_in_a_later_slot_does_not_push_the_others_down():
    # Mia's form names only a new grandparent in slot 3; Wei (1) and Rosa (2) keep their places.
    zed = contact(3, "Zed", "Quinn", email="zed@example.com", relationship="Grandparent")
    order = order_of(resolve_all([record(MIA_NO, zed)]), MIA)
    assert order.values["order"] == [f"p:{WEI}", f"p:{ROSA}", f"new:{new_contact_key(zed, household='F2')}"]


def test_a_form_slot_beyond_the_others_goes_after_them():
    zed = contact(4, "Zed", "Quinn", email="zed@example.com")
    order = order_of(resolve_all([record(MIA_NO, zed, contact(1, "Rosa", "Chen"))]), MIA)
    assert order.values["order"] == [f"p:{ROSA}", f"p:{WEI}", f"new:{new_contact_key(zed, household='F2')}"]


def test_confirming_a_possible_match_never_renames_the_person():
    # a one-letter typo of José's name, his email: possible match; the reviewer confirms it is José
    plan, snap = plan_for([record(MIA_NO, contact(3, "Jsoé", "García", email="jose@example.com",
                                                  relationship="Uncle"))])
    (item,) = items_of(plan, "possible_match")
    ops = resolve(plan, decide(plan, possible_match=f"confirm:{JOSE}"), snap, TODAY)
    assert ops_of(ops, "contact_name") == []
    assert [op.person_ref for op in ops_of(ops, "link_add")] == [f"p:{JOSE}"]


def test_a_reviewers_order_moves_links_but_expired_stay_last_and_no_person_is_rewritten():
    from tests.unit.builders import ANA_NO, JOSE, MARIA, PEDRO, TODAY, decide, jose, maria, plan_for, record
    from writeback.domain.resolve import resolve

    plan, snapshot = plan_for([record(ANA_NO, maria(), jose())])
    decisions = decide(plan)
    default = {op.kind: op for op in resolve(plan, decisions, snapshot, TODAY)}
    assert "contact_order" not in default  # María 1, José 2, Pedro (expired) 3: nothing to move
    ops = resolve(plan, decisions, snapshot, TODAY, orders={ANA_NO: ["slot:2", f"p:{PEDRO}", "slot:1"]})
    [order] = [op for op in ops if op.kind == "contact_order"]
    assert order.values["order"] == [f"p:{JOSE}", f"p:{MARIA}", f"p:{PEDRO}"]
    assert sorted(order.values["order"]) == sorted(order.expected["order"])  # the same people, moved


def test_siblings_forms_that_disagree_on_a_shared_value_go_to_review_and_only_the_chosen_one_is_written():
    from tests.unit.builders import ANA_NO, LUIS_NO, MARIA, TODAY, decide, maria, plan_for, record
    from writeback.domain.plan import conflict_key
    from writeback.domain.resolve import resolve

    ana = record(ANA_NO, maria(phones={"Mobile": "415-555-0111", "Home": "(415) 555-0199"}),
                 submission_id="SUB-A")
    luis = record(LUIS_NO, maria(phones={"Mobile": "415-555-0222", "Home": "(415) 555-0199"}),
                  submission_id="SUB-L")
    plan, snapshot = plan_for([ana, luis])
    key = conflict_key(MARIA, "phone", "Mobile")
    [item] = [i for i in plan.review_items if i.kind == "conflicting_forms"]
    assert item.key == key and item.options == ["use:SUB-A", "use:SUB-L", "do_not_update"]
    for choice, expected in (("use:SUB-L", ["415-555-0222"]), ("use:SUB-A", ["415-555-0111"]),
                             ("do_not_update", [])):
        ops = resolve(plan, decide(plan, **{key: choice}), snapshot, TODAY)
        mobile = [op.values["number"] for op in ops if op.kind in ("phone_update", "phone_add")
                  and op.values.get("type") == "Mobile"]
        assert mobile == expected, choice


def test_siblings_forms_that_agree_raise_no_conflict():
    from tests.unit.builders import ANA_NO, LUIS_NO, maria, plan_for, record

    same = {"Mobile": "(415) 555-0111", "Home": "(415) 555-0199"}
    plan, _ = plan_for([record(ANA_NO, maria(phones=same)), record(LUIS_NO, maria(phones=same))])
    assert [i for i in plan.review_items if i.kind == "conflicting_forms"] == []
