"""Run-level gates: an unusually large change holds the run for approval of the whole batch."""

from __future__ import annotations

from tests.unit.builders import ANA_NO, LUIS_NO, MIA_NO, jose, maria, plan_for, record
from writeback.domain.gates import BATCH_ITEM_KEY, HoldThresholds, batch_item, change_profile, hold_reasons


def _removing_plan():
    records = [record(ANA_NO, maria(), jose(remove=True)), record(LUIS_NO, maria()), record(MIA_NO)]
    plan, _ = plan_for(records)
    return plan


def test_profile_counts_students_losing_a_contact():
    profile = change_profile(_removing_plan())
    assert profile["students"] == 3
    assert profile["students_losing_a_contact"] == 1


def test_many_expirations_at_once_hold_the_batch():
    plan = _removing_plan()
    assert hold_reasons(plan, HoldThresholds(min_students=1, expire_share=0.5)) == []
    reasons = hold_reasons(plan, HoldThresholds(min_students=1, expire_share=0.2))
    assert reasons == ["1 of 3 students lose a contact (limit 20%)"]


def test_small_batches_are_not_held_on_shares():
    assert hold_reasons(_removing_plan(), HoldThresholds(min_students=10, expire_share=0.0)) == []


def test_many_data_access_grants_hold_the_batch_whatever_its_size():
    plan, _ = plan_for([record(ANA_NO, maria(data_access=True))])
    assert change_profile(plan)["data_access_grants"] == 1
    assert hold_reasons(plan, HoldThresholds(data_access_changes=0)) == ["1 Data Access grants (limit 0)"]
    assert hold_reasons(plan, HoldThresholds(data_access_changes=1)) == []


def test_the_batch_item_is_one_run_wide_decision():
    plan = _removing_plan()
    item = batch_item(plan, ["why"])
    assert item.key == BATCH_ITEM_KEY and item.kind == "batch_approval"
    assert item.options == ["approve_batch", "reject_batch"]
    assert item.payload["reasons"] == ["why"] and item.payload["profile"]["students"] == 3
