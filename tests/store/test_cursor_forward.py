"""The sync cursor only moves forward, on SQLite and PostgreSQL: runs extract from a real SchoolEngage
sandbox over loopback, and the report stage of an older run cannot put the cursor back."""

from __future__ import annotations

import pytest
import requests

from sandbox.generate import build_all
from sandbox.schoolengage.server import start_in_thread
from writeback.config import district as district_config
from writeback.pipeline import stages
from writeback.sources.schoolengage import SchoolEngageClient
from writeback.store import Store

KEY = "se-key"


@pytest.fixture(scope="module")
def schoolengage():
    _district, submissions, _truth = build_all(12, 3)
    server = start_in_thread(submissions, api_key=KEY)
    try:
        yield server
    finally:
        server.stop()


def _ctx(store: Store, run_id: str) -> stages.RunContext:
    store.ensure_run(run_id, "demo", dag_run_id=run_id)
    return stages.RunContext(district=district_config("demo"), store=store, run_id=run_id)


def _new_form(schoolengage, sid: str) -> None:
    requests.post(f"{schoolengage.url}/_sandbox/submissions", timeout=10, json=[{
        "id": sid, "form_id": "registration-2026", "student_number": "100001",
        "fields": {"student_number": "100001"}}]).raise_for_status()


def test_an_older_run_completing_late_does_not_move_the_cursor_back(store: Store, schoolengage):
    source = SchoolEngageClient(schoolengage.url, KEY)
    older = _ctx(store, "demo:older")
    stages.extract_submissions(older, source)
    _new_form(schoolengage, "SUB-LATE-1")  # a form arrives between the two extractions
    newer = _ctx(store, "demo:newer")
    stages.extract_submissions(newer, source)
    assert newer.store.get_run(newer.run_id).cursor_to != older.store.get_run(older.run_id).cursor_to

    assert stages.report(newer)["cursor_advanced"] is True
    ahead = store.cursor("demo")
    assert ahead == store.get_run(newer.run_id).cursor_to
    stages.report(older)  # the older run finishes later (a retry): it must not put its position back
    assert store.cursor("demo") == ahead, "the cursor moved back to the older run's position"

    # the next run starts from the newer position: the late form is not extracted again
    nxt = _ctx(store, "demo:next")
    stages.extract_submissions(nxt, source)
    assert store.get_run(nxt.run_id).counts["extract_submissions"]["received"] == 0
