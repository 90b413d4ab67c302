"""No path writes a dry run's plan or a superseded run's plan: the Applier, the apply and cleanup stages
(as a rerun of a task or a `retry_run_id` run calls them), the retry's context and the rollback all
refuse, with the reason and what to do. Against the PowerSchool sandbox over loopback."""

from __future__ import annotations

import pytest

from writeback.config import district as district_config
from writeback.operators.context import run_context
from writeback.pipeline import stages
from writeback.pipeline.apply import Applier
from writeback.pipeline.rollback import rollback
from writeback.pipeline.run_rules import RunRefused


class _DagRun:
    run_id = "manual__retry"


def _retry_context(world, run_id: str, monkeypatch):
    monkeypatch.setenv("WRITEBACK_STORE_URL", world.store.url)
    return run_context("demo", {"dag_run": _DagRun(), "params": {"retry_run_id": run_id}})


def test_no_path_writes_a_dry_runs_plan(world, monkeypatch):
    world.store.update_run(world.run_id, dry_run=True)
    writes = world.stats()["writes"]
    with pytest.raises(RunRefused, match=f"run {world.run_id} was a dry run"):
        Applier(world.client, world.store, world.run_id, world.snapshot, {}).run(world.ops)
    ctx = stages.RunContext(district=district_config("demo"), store=world.store, run_id=world.run_id)
    for stage in (stages.apply_plan, stages.cleanup):  # a rerun of the task with dry_run off
        with pytest.raises(RunRefused, match="was a dry run"):
            stage(ctx, world.client)
    with pytest.raises(RunRefused, match="was a dry run"):
        _retry_context(world, world.run_id, monkeypatch)
    with pytest.raises(RunRefused, match="nothing of it to roll back"):
        rollback(world.client, world.store, world.run_id)
    assert world.stats()["writes"] == writes
    assert world.store.ledger(world.run_id) == {}


def test_no_path_writes_a_superseded_runs_plan(world, monkeypatch):
    older, newer = world.run_id, "demo:newer"
    world.store.begin_extraction("demo", older)
    world.store.ensure_run(newer, "demo")
    world.store.begin_extraction("demo", newer)
    assert _retry_context(world, older, monkeypatch).run_id == older  # nothing newer has written yet
    world.store.ledger_begin(newer, "student:1", "student_update")  # the newer run has begun writing
    writes = world.stats()["writes"]
    with pytest.raises(RunRefused, match=f"run {older} is superseded by run {newer}"):
        Applier(world.client, world.store, older, world.snapshot, {}).run(world.ops)
    with pytest.raises(RunRefused, match="superseded"):
        _retry_context(world, older, monkeypatch)
    assert world.stats()["writes"] == writes
    assert world.store.ledger(older) == {}
    # the newer run itself is not held back by the older one
    Applier(world.client, world.store, newer, world.snapshot, {}).run([])
