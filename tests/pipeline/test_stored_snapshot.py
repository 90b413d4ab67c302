"""The snapshot kept as rows gives what the snapshot read whole gives: the same models, the same matches
when blocking runs a page of persons at a time and forms are matched a batch at a time against only the
part they need, and the same plan from that part. A generated district on the PowerSchool sandbox (HTTP
over loopback), our client, a real store."""

from __future__ import annotations

import pytest

from sandbox.generate import build_all
from sandbox.powerschool.server import start_in_thread
from writeback.config import district as district_config
from writeback.domain.matching import match_records
from writeback.domain.models import MatchClass, Submission
from writeback.domain.plan import build_plan
from writeback.pipeline import stages
from writeback.pipeline.matching_pages import match_stored
from writeback.pipeline.snapshot import read_snapshot
from writeback.pipeline.stored_snapshot import StoredSnapshot, save_snapshot
from writeback.powerschool import PowerSchoolClient
from writeback.store import Store


@pytest.fixture(scope="module")
def world():
    district, submissions, _ = build_all(300, 11, submissions_share=0.6)
    server = start_in_thread(district, port=0, client_id="c", client_secret="s")
    try:
        yield {"submissions": submissions, "client": PowerSchoolClient(server.url, "c", "s")}
    finally:
        server.stop()


@pytest.fixture(scope="module")
def run(world, tmp_path_factory):
    """A run through extract and quality: its valid records and its stored snapshot, and the whole one."""
    store = Store(f"sqlite:///{tmp_path_factory.mktemp('stored') / 'store.db'}", migrate=True)
    store.ensure_run("demo:stored", "demo")
    store.save_submissions("demo:stored", [Submission.model_validate(s) for s in world["submissions"]])
    ctx = stages.RunContext(district=district_config("demo"), store=store, run_id="demo:stored")
    stages.extract_snapshot(ctx, world["client"])
    stages.check_quality(ctx)
    whole = read_snapshot(world["client"], stages.extension_targets(ctx.mapping))
    yield ctx, ctx.records(), whole
    store.dispose()


def test_the_stored_snapshot_reads_back_as_the_powerqueries_read_whole(run, store_url, world):
    ctx, _, whole = run
    assert ctx.stored.whole().model_dump(exclude={"taken_at"}) == whole.model_dump(exclude={"taken_at"})
    store = Store(store_url, migrate=True)  # and on the other backend, too
    try:
        store.ensure_run("r", "demo")
        counts = save_snapshot(store, "r", world["client"])
        assert counts["students"] == len(whole.students) and counts["links"] == len(whole.links)
        stored = StoredSnapshot(store, "r", stages.extension_targets(ctx.mapping))
        assert stored.whole().model_dump(exclude={"taken_at"}) == whole.model_dump(exclude={"taken_at"})
        some = sorted(whole.persons)[::7]
        assert stored.persons(some) == {pid: whole.persons[pid] for pid in some}
    finally:
        store.dispose()


def test_person_pages_cover_every_person_once_in_order(run):
    ctx, _, whole = run
    pages = list(ctx.stored.person_pages(37))
    assert len(pages) == -(-len(whole.persons) // 37)
    assert [pid for page in pages for pid in page] == sorted(whole.persons)
    assert all(page[pid] == whole.persons[pid] for page in pages for pid in page)


def test_matching_in_pages_and_batches_gives_the_matches_of_the_whole(run):
    ctx, records, whole = run
    expected = match_records(records, whole, ctx.today, {}, ctx.region, thresholds=ctx.district.matching)
    got = match_stored(records, ctx.stored, ctx.today, {}, ctx.region, ctx.district.matching,
                       person_page=41, record_batch=13)
    assert got == expected
    classes = {m.match_class for m in got.values()}
    assert {MatchClass.CERTAIN, MatchClass.POSSIBLE, MatchClass.NONE} <= classes  # not a trivial district
    assert len(expected) > 200


def test_the_part_around_a_batch_plans_what_the_whole_plans(run):
    ctx, records, whole = run
    matches = match_records(records, whole, ctx.today, {}, ctx.region, thresholds=ctx.district.matching)
    persons = {pid for m in matches.values() for pid in (m.person_id, m.slot_person_id,
                                                         *(c.person_id for c in m.candidates)) if pid}
    part = ctx.stored.around({r.student_number for r in records}, persons)
    assert len(part.persons) < len(whole.persons)  # a part, not the district
    assert build_plan(records, part, matches, ctx.today, ctx.region) == \
        build_plan(records, whole, matches, ctx.today, ctx.region)
