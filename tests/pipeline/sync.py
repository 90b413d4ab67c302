"""A whole sync without Airflow: both sandboxes over loopback (SchoolEngage for the forms, PowerSchool for
the district), a real SQLite store, and the stages in the DAG's order — extract, quality, match, plan,
a reviewer deciding through the store, approval, apply batch by batch, cleanup, report. What PowerSchool
holds afterwards is read with raw HTTP (PowerQueries), not with our client or snapshot reader."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from pathlib import Path
from typing import Any

import requests

from sandbox.generator import REFERENCE_DATE
from sandbox.powerschool.server import start_in_thread as start_powerschool
from sandbox.reviewer import choose
from sandbox.schoolengage.server import start_in_thread as start_schoolengage
from writeback.config import district as district_config
from writeback.pipeline import stages
from writeback.powerschool import PowerSchoolClient
from writeback.sources.schoolengage import SchoolEngageClient
from writeback.store import Store

CLIENT_ID, CLIENT_SECRET, SE_KEY = "sync-client", "sync-secret", "sync-key"
TODAY = REFERENCE_DATE if isinstance(REFERENCE_DATE, dt.date) else dt.date.fromisoformat(str(REFERENCE_DATE)[:10])
Chooser = Callable[[Any], tuple[str, dict[str, Any]] | None]


def approve_everything(item: Any, truth: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    """The least careful reviewer: approves every change it is shown (what reaches PowerSchool is then
    exactly what the product offered to write); otherwise the scripted reviewer's ground-truth choice."""
    if item.kind == "field_change":
        return "approve", {}
    return choose(item, truth, TODAY)


class Sync:
    def __init__(self, tmp: Path, district: dict[str, Any], submissions: list[dict[str, Any]],
                 truth: dict[str, Any]):
        self.district, self.truth = district, truth
        self.powerschool = start_powerschool(district, client_id=CLIENT_ID, client_secret=CLIENT_SECRET,
                                             db_path=str(tmp / "ps.db"), today=lambda: TODAY)
        self.schoolengage = start_schoolengage(submissions, api_key=SE_KEY)
        self.store = Store(f"sqlite:///{tmp / 'store.db'}", migrate=True)
        self._token: str | None = None

    def close(self) -> None:
        self.store.dispose()
        self.powerschool.stop()
        self.schoolengage.stop()

    def client(self) -> PowerSchoolClient:
        return PowerSchoolClient(self.powerschool.url, CLIENT_ID, CLIENT_SECRET)

    def run(self, run_id: str, chooser: Chooser | None = None, until: str = "report") -> stages.RunContext:
        """One run through the stages; `chooser(item)` may override the reviewer for an item."""
        self.store.ensure_run(run_id, "demo")
        ctx = stages.RunContext(district=district_config("demo"), store=self.store, run_id=run_id, today=TODAY)
        stages.extract_submissions(ctx, SchoolEngageClient(self.schoolengage.url, SE_KEY))
        stages.extract_snapshot(ctx, self.client())
        stages.check_quality(ctx)
        stages.match_contacts(ctx)
        stages.build_run_plan(ctx)
        if until == "plan":
            return ctx
        for item in self.store.items(run_id, state="pending"):
            choice, data = (chooser(item) if chooser else None) or approve_everything(item, self.truth)
            self.store.decide(run_id, item.item_key, choice, user="tester", data=data,
                              expected_version=item.version)
        assert stages.approval_state(ctx)["approved"] is True
        for batch in stages.batch_ids(ctx):
            stages.apply_plan(ctx, self.client(), batch)
        stages.cleanup(ctx, self.client())
        stages.report(ctx)
        return ctx

    # ------------------------------------------------------------ PowerSchool as it is (raw HTTP)
    def query(self, entity: str) -> list[dict[str, Any]]:
        if self._token is None:
            self._token = requests.post(f"{self.powerschool.url}/oauth/access_token", auth=(CLIENT_ID, CLIENT_SECRET),
                                        data={"grant_type": "client_credentials"}, timeout=10).json()["access_token"]
        r = requests.post(f"{self.powerschool.url}/ws/schema/query/com.writeback.snapshot.{entity}?pagesize=0",
                          json={}, headers={"Authorization": f"Bearer {self._token}", "Accept": "application/json"},
                          timeout=30)
        r.raise_for_status()
        return r.json()["record"]

    def writes(self) -> int:
        return requests.get(f"{self.powerschool.url}/_sandbox/stats", timeout=10).json()["writes"]
