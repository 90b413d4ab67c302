"""The pipeline's stages on a real store and a real PowerSchool sandbox (HTTP over loopback), without
Airflow: the gates that stop or hold a run, dry runs, and approval bound to the writes.
"""

from __future__ import annotations

import copy
import json

import pytest
import requests
from sqlalchemy import delete

from sandbox.generate import build_all
from sandbox.powerschool.server import start_in_thread
from sandbox.reviewer import decide_pending
from writeback.config import district as district_config
from writeback.domain.gates import BATCH_ITEM_KEY
from writeback.domain.mapping import Mapping
from writeback.domain.models import Submission
from writeback.pipeline import stages
from writeback.pipeline.stored_snapshot import ROW_KEYS
from writeback.powerschool import PowerSchoolClient
from writeback.quality import SnapshotIntegrityError
from writeback.store import Store
from writeback.store.schema import SnapshotRow

LINK_ID, LINK_DCID = "studentcontactassoc.studentcontactassocid", "studentcontactassoc.studentdcid"
LINK_ORDER = "studentcontactassoc.contactpriorityorder"


@pytest.fixture(scope="module")
def world():
    district, submissions, truth = build_all(80, 5)
    server = start_in_thread(district, port=0, client_id="c", client_secret="s")
    try:
        yield {"district": district, "submissions": submissions, "truth": truth, "url": server.url}
    finally:
        server.stop()


@pytest.fixture
def make_ctx(world, tmp_path):
    made = []

    def make(run_id="demo:test", config=None, mapping: Mapping | None = None, **params):
        store = Store(f"sqlite:///{tmp_path / 'store.db'}", migrate=True)
        store.ensure_run(run_id, "demo")
        store.save_submissions(run_id, [Submission.model_validate(s) for s in world["submissions"]])
        ctx = stages.RunContext(district=config or district_config("demo"), store=store, run_id=run_id,
                                params=stages.RunParams(**params), _mapping=mapping)
        made.append(store)
        return ctx

    yield make
    for store in made:
        store.dispose()


def client(world) -> PowerSchoolClient:
    return PowerSchoolClient(world["url"], "c", "s")


def writes(world) -> int:
    return requests.get(f"{world['url']}/_sandbox/stats", timeout=10).json()["writes"]


def test_a_drifted_mapping_stops_the_run_before_matching(world, make_ctx):
    ctx = make_ctx()
    drifted = ctx.mapping.model_copy(deep=True)
    drifted.code_maps["relationship"] = {"Mother": "Mother"}  # the form's labels no longer map
    ctx._mapping = drifted
    stages.extract_snapshot(ctx, client(world))
    with pytest.raises(stages.QualityGateError, match="above the district's limit"):
        stages.check_quality(ctx)
    assert ctx.store.get_run(ctx.run_id).status == "failed_quality"
    reasons = {q.reason for q in ctx.store.quarantine(ctx.run_id)}
    assert "not a known relationship value" in reasons  # every bad record is kept with its reason
    assert ctx.store.get_data(ctx.run_id, "matches") is None  # nothing was matched


def test_an_inconsistent_snapshot_stops_the_run(world, make_ctx):
    ctx = make_ctx()
    stages.extract_snapshot(ctx, client(world))
    rows = [json.loads(r) for r in ctx.store.snapshot_rows(ctx.run_id, "links")]
    first = rows[0]
    second = next(r for r in rows if r[LINK_ID] != first[LINK_ID])
    for r in rows:  # the second link moves onto the first one's student and priority, on each of its rows
        if r[LINK_ID] == second[LINK_ID]:
            r[LINK_DCID], r[LINK_ORDER] = first[LINK_DCID], first[LINK_ORDER]
    with ctx.store.engine.begin() as connection:
        connection.execute(delete(SnapshotRow).where(SnapshotRow.run_id == ctx.run_id, SnapshotRow.entity == "links"))
    ctx.store.add_snapshot_rows(ctx.run_id, "links", [{**ROW_KEYS["links"](r), "row": json.dumps(r)} for r in rows])
    with pytest.raises(SnapshotIntegrityError, match="student_dcid"):
        stages.check_quality(ctx)


def _plan(ctx, world):
    stages.extract_snapshot(ctx, client(world))
    stages.check_quality(ctx)
    stages.match_contacts(ctx)
    return stages.build_run_plan(ctx)


def test_a_large_change_holds_the_run_and_a_rejected_batch_writes_nothing(world, make_ctx):
    config = district_config("demo").model_copy(deep=True)
    config.quality.hold_min_students = 1
    config.quality.hold_replace_share = 0.0  # any replaced field counts as a large change here
    ctx = make_ctx(config=config)
    counts = _plan(ctx, world)
    assert counts["held"] is True
    batch = ctx.store.item(ctx.run_id, BATCH_ITEM_KEY)
    assert batch.kind == "batch_approval" and batch.payload["reasons"]
    decide_pending(ctx.store, ctx.run_id, world["truth"])  # everything decided ...
    ctx.store.decide(ctx.run_id, BATCH_ITEM_KEY, "reject_batch", user="registrar",
                     expected_version=ctx.store.item(ctx.run_id, BATCH_ITEM_KEY).version)
    state = stages.approval_state(ctx)
    assert state == {"pending": 0, "approved": True, "writes_planned": 0}
    before = writes(world)
    assert stages.apply_plan(ctx, client(world))["operations"] == 0
    assert writes(world) == before


def test_a_dry_run_writes_nothing_and_leaves_the_cursor(world, make_ctx):
    ctx = make_ctx(dry_run=True)
    ctx.store.update_run(ctx.run_id, cursor_to="CURSOR-AFTER-THIS-RUN", dry_run=True)
    _plan(ctx, world)
    decide_pending(ctx.store, ctx.run_id, world["truth"])
    assert stages.approval_state(ctx)["writes_planned"] > 0
    before = writes(world)
    assert stages.apply_plan(ctx, client(world)) == {"dry_run": True, "writes": 0}
    stages.cleanup(ctx, client(world))
    assert stages.report(ctx)["cursor_advanced"] is False
    assert ctx.store.cursor("demo") is None
    assert writes(world) == before


def test_decisions_changed_after_approval_are_not_applied(world, make_ctx):
    ctx = make_ctx()
    _plan(ctx, world)
    decide_pending(ctx.store, ctx.run_id, world["truth"])
    stages.approval_state(ctx)
    item = next(i for i in ctx.store.items(ctx.run_id) if "ignore" in i.options or "do_not_update" in i.options)
    other = "ignore" if "ignore" in item.options else "do_not_update"
    ctx.store.decide(ctx.run_id, item.item_key, other, user="someone-else", expected_version=item.version)
    before = writes(world)
    with pytest.raises(stages.PlanChangedError, match="differ from what was approved"):
        stages.apply_plan(ctx, client(world))
    assert writes(world) == before


def test_validation_results_are_kept_with_the_run_and_render_without_network(world, make_ctx):
    from writeback.quality import render_validation_html

    ctx = make_ctx()
    stranger = copy.deepcopy(world["submissions"][0])  # a well-formed form for a student PowerSchool lacks
    stranger.update(id="SUB-STRANGER", student_number="999999")
    stranger["fields"]["student_number"] = "999999"
    ctx.store.save_submissions(ctx.run_id, [Submission.model_validate(s) for s in [*world["submissions"], stranger]])
    stages.extract_snapshot(ctx, client(world))
    stages.check_quality(ctx)
    quarantined = {q.submission_id: q for q in ctx.store.quarantine(ctx.run_id)}
    assert quarantined["SUB-STRANGER"].reason == "no student with this number in PowerSchool"
    results = ctx.store.get_data(ctx.run_id, "validation")["results"]
    suites = {r["suite"] for r in results}
    assert {"students", "contacts", "snapshot_links"} <= suites
    failed = [r for r in results if not r["success"]]
    assert [(r["suite"], r["column"], r["unexpected"]) for r in failed] == [("students", "student_number", 1)]
    html = render_validation_html(ctx.run_id, results)
    assert "http://" not in html and "https://" not in html
    assert html.count("<tr class=bad>") == len(failed)
