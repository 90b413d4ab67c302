"""Writes the fault campaign (bench/faults.py) found a rollback would not undo, as deterministic reproductions.

1. An update whose reply was lost (the connection dropped after PowerSchool committed it and the client's
   retries were used up; or the read-back after it failed) is confirmed by the next attempt, which finds the
   value in place (scenarios "dropped connections, client retries 1" seed 1, "429 bursts" seed 2). Since
   616f0fe it is audited as a write (`RECOVERED`), but its `_prior` is the re-read, i.e. the value this run
   wrote, and `writeback rollback` restores `_prior`: it restores nothing. fixed: such writes are audited without the re-read value, so rollback restores the snapshot's.
2. The process dying between the ledger's `done` and the audit row (scenario "airflow SIGKILL mid-apply",
   seed 1) left a confirmed write with no audit; fixed in 616f0fe (one transaction), pinned here.
"""

from __future__ import annotations

import pytest

from tests.apply.world import World
from writeback.pipeline.apply import Applier
from writeback.pipeline.rollback import rollback


@pytest.fixture
def world(tmp_path):
    w = World(tmp_path)
    try:
        yield w
    finally:
        w.close()


def _lost_reply_then_retry(world: World, kind: str):
    op = next(o for o in world.ops if o.kind == kind)
    person = [o for o in world.ops if op.person_ref and o.key == f"create:{op.person_ref.split(':', 1)[1]}"]
    first = Applier(world.new_client(), world.store, world.run_id, world.snapshot, {})
    first.run(person)  # a new contact's create, if the op needs one
    client = world.new_client(max_retries=0)
    world.faults(drop_after_writes=0)  # the op's PUT commits, its reply is lost
    Applier(client, world.store, world.run_id, world.snapshot, {}).run([op])
    world.clear_faults()
    row = world.store.ledger(world.run_id)[op.key]
    assert row.status == "failed" and row.retryable, (row.status, row.error)
    Applier(world.new_client(), world.store, world.run_id, world.snapshot, {}).run([op])  # the next attempt
    assert world.store.ledger(world.run_id)[op.key].status == "done"
    audit = [a for a in world.store.audit_rows(world.run_id) if a.op_key == op.key]
    return op, audit


def test_a_found_contact_rename_is_audited_and_rolled_back(world):
    op, audit = _lost_reply_then_retry(world, "contact_name")
    pid = int(op.person_ref.split(":")[1])
    rollback(world.client, world.store, world.run_id)
    person = next(r for r in world.query("contacts") if int(r["person.id"]) == pid)
    assert {k: person[f"person.{k.replace('_', '')}"] for k in op.values} == \
        {k: op.expected.get(k, "") for k in op.values}, [a.response for a in audit]


def test_a_found_student_update_is_rolled_back(world):
    op, audit = _lost_reply_then_retry(world, "student_update")
    assert audit and not audit[-1].response.startswith("noop")
    rollback(world.client, world.store, world.run_id)
    from writeback.domain.targets import student_target

    row = next(r for r in world.query("students") if int(r["students.dcid"]) == op.student_dcid)
    assert {k: row[student_target(k).snapshot_column] for k in op.values} == \
        {k: op.expected.get(k, "") for k in op.values}, audit[-1].before.get("_prior")


class Died(BaseException):
    """The process ends here (SIGKILL, OOM, the store going away): nothing after it runs."""


def test_a_crash_before_the_confirmation_commits_leaves_the_write_audited_by_the_rerun(world, monkeypatch):
    op = next(o for o in world.ops if o.kind == "student_update")
    real_finish = world.store.ledger_finish

    def die_on_done(run_id, op_key, status, **kwargs):
        if status == "done":
            raise Died()  # PowerSchool has the write; neither the ledger's done nor the audit row committed
        return real_finish(run_id, op_key, status, **kwargs)

    monkeypatch.setattr(world.store, "ledger_finish", die_on_done)
    with pytest.raises(Died):
        Applier(world.new_client(), world.store, world.run_id, world.snapshot, {}).run([op])
    monkeypatch.setattr(world.store, "ledger_finish", real_finish)
    assert world.store.ledger(world.run_id)[op.key].status == "pending"
    Applier(world.new_client(), world.store, world.run_id, world.snapshot, {}).run([op])  # the rerun
    assert world.store.ledger(world.run_id)[op.key].status == "done"
    audited = [a for a in world.store.audit_rows(world.run_id) if a.op_key == op.key]
    assert audited and not audited[-1].response.startswith("noop"), [a.response for a in audited]
