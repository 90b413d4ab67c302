"""A record PowerSchool refuses (not retryably) is quarantined with PowerSchool's reason, shown on the
next runs' pages, and the district moves on; an outage still holds the cursor. Three nightly runs
through the real stages: SchoolEngage and PowerSchool sandboxes over loopback, a real store, the
scripted reviewer deciding from the generator's ground truth."""

from __future__ import annotations

from pathlib import Path

import requests

from sandbox.generate import build_all
from sandbox.powerschool.server import start_in_thread as start_powerschool
from sandbox.reviewer import decide_pending
from sandbox.schoolengage.server import start_in_thread as start_schoolengage
from writeback.config import district as district_config
from writeback.pipeline import stages
from writeback.powerschool.client import PowerSchoolClient
from writeback.sources.schoolengage import SchoolEngageClient
from writeback.store import Store

from .world import CLIENT_ID, CLIENT_SECRET, TODAY

SE_KEY = "se-key"
STREET = "12 Half Written Rd"  # a mailing street with no city, state or zip: quality passes it, PowerSchool not


class Nightly:
    """The DAG's stages in order, as a scheduled (or manual) run makes them, in this process."""

    def __init__(self, tmp: Path, students: int = 30, seed: int = 5, refuse: bool = True):
        self.district, self.subs, self.truth = build_all(students, seed)
        student = {s["student_number"]: s for s in self.district["students"]}
        self.refused = next(s for s in self.subs if self.truth["submissions"][s["id"]]["scenario"] == "unchanged"
                            and not student[s["student_number"]]["mailing_street"])
        if refuse:
            self.refused["fields"].update(mailing_street=STREET, mailing_city="", mailing_state="", mailing_zip="")
        self.ps = start_powerschool(self.district, client_id=CLIENT_ID, client_secret=CLIENT_SECRET,
                                    db_path=str(tmp / "ps.db"), today=lambda: TODAY)
        self.se = start_schoolengage(self.subs, api_key=SE_KEY)
        self.store = Store(f"sqlite:///{tmp / 'store.db'}", migrate=True)
        self.config = district_config("demo")
        self.nights = 0

    def close(self) -> None:
        self.store.dispose()
        self.ps.stop()
        self.se.stop()

    def faults(self, **settings) -> None:
        requests.post(f"{self.ps.url}/_sandbox/faults", json=settings, timeout=10).raise_for_status()

    def writes(self) -> int:
        return requests.get(f"{self.ps.url}/_sandbox/stats", timeout=10).json()["writes"]

    def run(self, during_apply=None, **params) -> str:
        self.nights += 1
        run_id = f"demo:night-{self.nights}"
        self.store.ensure_run(run_id, "demo", dag_run_id=run_id)
        ctx = stages.RunContext(district=self.config, store=self.store, run_id=run_id,
                                params=stages.RunParams(**params), today=TODAY)
        ps = PowerSchoolClient(self.ps.url, CLIENT_ID, CLIENT_SECRET, max_retries=1, backoff=0.01)
        stages.extract_submissions(ctx, SchoolEngageClient(self.se.url, SE_KEY))
        stages.extract_snapshot(ctx, ps)
        stages.check_quality(ctx)
        stages.match_contacts(ctx)
        stages.build_run_plan(ctx)
        decide_pending(self.store, run_id, self.truth, TODAY)
        assert stages.approval_state(ctx)["approved"]
        if during_apply:
            during_apply()
        for batch in stages.batch_ids(ctx):
            stages.apply_plan(ctx, ps, batch=batch)
        stages.cleanup(ctx, ps)
        self.faults()
        stages.report(ctx)
        return run_id

    def mailing_street(self) -> str:
        token = requests.post(f"{self.ps.url}/oauth/access_token", auth=(CLIENT_ID, CLIENT_SECRET),
                              data={"grant_type": "client_credentials"}, timeout=10).json()["access_token"]
        rows = requests.post(f"{self.ps.url}/ws/schema/query/com.writeback.snapshot.students?pagesize=0", json={},
                             headers={"Authorization": f"Bearer {token}"}, timeout=30).json()["record"]
        row = next(r for r in rows if r["students.student_number"] == self.refused["student_number"])
        return row["students.mailing_street"]


def refusals(store: Store, run_id: str, submission_id: str) -> list:
    return [q for q in store.quarantine(run_id) if q.submission_id == submission_id]


def test_a_refused_record_is_quarantined_and_the_district_moves_on(tmp_path):
    night = Nightly(tmp_path)
    sid = night.refused["id"]
    try:
        first = night.run()
        run = night.store.get_run(first)
        assert run.status == "complete"
        assert night.store.cursor("demo") == run.cursor_to is not None, "the cursor moved on"
        [refused] = refusals(night.store, first, sid)
        assert refused.check == "powerschool_refused"
        assert "missing city" in refused.reason  # PowerSchool's own reason
        assert refused.field == "addresses.mailing"
        report = night.store.get_data(first, "report")
        assert sid in {q["submission_id"] for q in report["quarantine"]}
        assert night.mailing_street() == ""

        for _ in range(2):  # the next nights: nothing re-raised, the refusal still shown
            later = night.run()
            counts = night.store.get_run(later).counts
            assert counts["extract_submissions"]["received"] == 0
            assert night.store.items(later) == []
            [shown] = refusals(night.store, later, sid)
            assert shown.check == "refused_earlier" and first in shown.reason and "missing city" in shown.reason
            assert night.store.cursor("demo") == run.cursor_to

        # the registrar fixes the form and runs that one record again
        fixed = dict(night.refused, fields={**night.refused["fields"], "mailing_city": "Oakdale",
                                            "mailing_state": "CA", "mailing_zip": "95361"})
        requests.post(f"{night.se.url}/_sandbox/submissions", json=[fixed], timeout=10).raise_for_status()
        manual = night.run(submission_ids=[sid])
        assert night.store.get_run(manual).status == "complete"
        assert refusals(night.store, manual, sid) == []
        assert night.mailing_street() == STREET
        after = night.run()  # the fixed form comes again with the schedule: already written, nothing shown
        assert refusals(night.store, after, sid) == []
    finally:
        night.close()


def test_an_outage_still_holds_the_cursor(tmp_path):
    night = Nightly(tmp_path, refuse=False)
    try:
        first = night.run(during_apply=lambda: night.faults(error_rate=1.0))
        assert night.store.get_run(first).status == "incomplete"
        assert night.store.cursor("demo") is None
        assert night.writes() == 0
        second = night.run()
        assert night.store.get_run(second).status == "complete"
        assert night.store.get_run(second).counts["extract_submissions"]["received"] == len(night.subs)
        assert night.store.cursor("demo") is not None
    finally:
        night.close()
