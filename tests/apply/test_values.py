"""Per-value choices reach PowerSchool exactly (over loopback, real store): a value kept while the new one
is added, and phones, emails and addresses removed — conflict-checked, read back, idempotent, audited
and rolled back."""

from __future__ import annotations

import pytest

from writeback.domain.resolve import ops_hash, resolve
from writeback.pipeline.rollback import rollback

from .test_faults import final_state
from .world import TODAY, World

COLLEEN = 5014  # contact 1 of SUB-000005: mobile 25 "(209) 376-7232", work 26
OLD_EMAIL, MAILING = 9901, 9902


def value_edits(subs: list[dict], district: dict) -> None:
    f = {s["id"]: s["fields"] for s in subs}["SUB-000005"]
    f["contact1_cell_phone"] = "(209) 376-7299"  # a new mobile: the reviewer keeps the old one too
    f["contact1_work_phone"] = ""  # not on the form: the reviewer removes the work phone
    district["emails"].append({"id": OLD_EMAIL, "person_id": COLLEEN, "address": "colleen.old@example.com",
                               "type": "Personal", "primary": False})
    district["addresses"].append({"id": MAILING, "person_id": COLLEEN, "type": "Mailing", "street": "PO Box 12",
                                  "linetwo": "", "unit": "", "city": "Modesto", "state": "CA",
                                  "postal_code": "95320", "country": "US", "start_date": "2020-01-01",
                                  "end_date": ""})


CHOICES = {"slot:1:phone:Mobile": "keep_and_add", "slot:1:phone#26": "remove",
           f"slot:1:email#{OLD_EMAIL}": "remove", f"slot:1:address#{MAILING}": "remove"}


def value_world(tmp) -> World:
    w = World(tmp, edits=value_edits, choice=None)
    number = next(sp.student_number for sp in w.plan.students if sp.submission_id == "SUB-000005")
    w.ops = resolve(w.plan, w.store.decisions(w.run_id), w.snapshot, TODAY, "US", values={number: CHOICES})
    w.store.update_run(w.run_id, approved_hash=ops_hash(w.ops))
    return w


@pytest.fixture
def world(tmp_path):
    w = value_world(tmp_path)
    try:
        yield w
    finally:
        w.close()


def children(world, entity: str, column: str) -> list[dict]:
    return [r for r in world.query(entity) if r[column] == str(COLLEEN)]


def phones(world) -> dict[str, str]:
    return {r["phonenumber.phonenumber"]: r["personphonenumberassoc.phonetype"]
            for r in children(world, "phones", "personphonenumberassoc.personid")}


def test_the_chosen_values_are_written_and_nothing_else(world):
    mine = [op for op in world.ops if op.person_ref == f"p:{COLLEEN}"]
    assert sorted(op.key for op in mine if op.kind.endswith("_delete")) == [
        f"address_delete:p:{COLLEEN}:{MAILING}", f"email_delete:p:{COLLEEN}:{OLD_EMAIL}",
        f"phone_delete:p:{COLLEEN}:26"]
    assert [op.values["number"] for op in mine if op.kind == "phone_add"] == ["(209) 376-7299"]
    assert not [op for op in mine if op.kind == "phone_update"]
    before_phones = phones(world)
    assert len(before_phones) == 2

    out = world.apply()
    assert out["apply"].failed == 0, out["apply"].failures
    after = phones(world)
    assert set(after) == {"(209) 376-7232", "(209) 376-7299"}  # old mobile kept, new added, work removed
    emails = [r["emailaddress.emailaddress"] for r in children(world, "emails", "personemailaddressassoc.personid")]
    assert "colleen.old@example.com" not in emails and emails
    streets = [r["personaddress.street"] for r in children(world, "addresses", "personaddressassoc.personid")]
    assert "PO Box 12" not in streets and streets
    audit = {a.op_key: a for a in world.store.audit_rows(world.run_id)}
    removed = audit[f"phone_delete:p:{COLLEEN}:26"]
    assert removed.before["number"] == "+1 209 746 7754"
    assert removed.before["_prior"]["phoneType"] == "Work"  # what a rollback puts back

    writes = world.stats()["writes"]
    again = world.apply()
    assert world.stats()["writes"] == writes and again["apply"].http_writes == 0


def test_a_value_changed_since_the_snapshot_is_not_removed_and_goes_back_to_review(world):
    world.call("PUT", f"/ws/contacts/{COLLEEN}/emails/{OLD_EMAIL}", {"address": "colleen.work@example.com"})
    world.apply()
    key = f"email_delete:p:{COLLEEN}:{OLD_EMAIL}"
    assert world.store.ledger(world.run_id)[key].status == "stale"
    item = world.store.item(world.run_id, f"stale:{key}")
    assert item.payload["fields"]["address"] == {"snapshot": "colleen.old@example.com",
                                                 "current": "colleen.work@example.com", "intended": "(removed)",
                                                 "changed": True}
    emails = [r["emailaddress.emailaddress"] for r in children(world, "emails", "personemailaddressassoc.personid")]
    assert "colleen.work@example.com" in emails


def test_a_value_already_removed_by_someone_else_is_no_write(world):
    world.call("DELETE", f"/ws/contacts/{COLLEEN}/phones/26")
    writes = world.stats()["writes"]
    out = world.apply()
    row = world.store.ledger(world.run_id)[f"phone_delete:p:{COLLEEN}:26"]
    assert row.status == "done"
    audit = {a.op_key: a for a in world.store.audit_rows(world.run_id)}
    assert audit[f"phone_delete:p:{COLLEEN}:26"].response == "noop: already removed"
    # the removal made no HTTP write: the writes counted are the other operations' only
    assert out["apply"].http_writes + out["cleanup"].http_writes == world.stats()["writes"] - writes
    assert out["apply"].by_kind["phone_delete"] == 1


def test_rollback_puts_removed_values_back_once(world):
    world.apply()
    number = next(sp.student_number for sp in world.plan.students if sp.submission_id == "SUB-000005")
    outcome = rollback(world.client, world.store, world.run_id, student_number=number)
    assert not outcome.refused and not outcome.failed, (outcome.refused, outcome.failed)
    assert set(phones(world)) == {"(209) 376-7232", "+1 209 746 7754"}  # the added mobile is gone again
    assert phones(world)["+1 209 746 7754"] == "Work"
    emails = [r["emailaddress.emailaddress"] for r in children(world, "emails", "personemailaddressassoc.personid")]
    assert "colleen.old@example.com" in emails
    streets = [r["personaddress.street"] for r in children(world, "addresses", "personaddressassoc.personid")]
    assert "PO Box 12" in streets
    writes = world.stats()["writes"]
    again = rollback(world.client, world.store, world.run_id, student_number=number)
    assert world.stats()["writes"] == writes and again.http_writes == 0


def test_removals_under_faults_converge_to_the_fault_free_state(tmp_path_factory):
    clean = value_world(tmp_path_factory.mktemp("clean"))
    try:
        assert clean.apply()["apply"].failed == 0
        reference = final_state(clean)
    finally:
        clean.close()
    w = value_world(tmp_path_factory.mktemp("faults"))
    try:
        client = w.new_client(max_retries=2)
        for attempt in range(25):  # 5xx, 429 bursts, and replies lost after the write was committed
            w.faults(seed=700 + attempt, error_rate=0.2, burst_429=2 if attempt % 3 == 0 else 0,
                     drop_after_writes=attempt % 3)
            w.apply(client=client, batch_size=5)
            ledger = w.store.ledger(w.run_id)
            if len(ledger) == len(w.ops) and {r.status for r in ledger.values()} == {"done"}:
                break
        else:
            pytest.fail("no convergence under faults")
        w.clear_faults()
        assert final_state(w) == reference
        assert {r.status for r in w.store.ledger(w.run_id).values()} == {"done"}
    finally:
        w.close()
