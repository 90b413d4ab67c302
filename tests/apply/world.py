"""One run against the PowerSchool sandbox over loopback, with a real SQLite store: generated district,
our snapshot reader, the registration mapping, matching, the plan, decisions (the scripted reviewer's,
with overrides), resolve, and the Applier. No part is mocked."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from pathlib import Path
from typing import Any

import requests

from sandbox.generate import build_all
from sandbox.generator import REFERENCE_DATE
from sandbox.powerschool.server import start_in_thread
from sandbox.reviewer import choose
from writeback.domain.mapping import apply_mapping, load_mapping
from writeback.domain.matching import build_index, match_records
from writeback.domain.models import FormRecord, Snapshot, WriteOp
from writeback.domain.plan import build_plan
from writeback.domain.resolve import ops_hash, plan_hash, resolve
from writeback.pipeline.apply import Applier, ApplyOutcome
from writeback.pipeline.snapshot import ENTITIES, read_snapshot
from writeback.powerschool.client import PowerSchoolClient
from writeback.store import Store

ROOT = Path(__file__).resolve().parents[2]
MAPPING = ROOT / "include" / "mappings" / "registration-2026.yaml"
CLIENT_ID, CLIENT_SECRET = "sandbox-client", "sandbox-secret"
TODAY = REFERENCE_DATE if isinstance(REFERENCE_DATE, dt.date) else dt.date.fromisoformat(str(REFERENCE_DATE)[:10])


def coverage_edits(subs: list[dict], district: dict) -> None:
    """Form answers that make every kind of write appear at least once (on top of the generator's)."""
    by_id = {s["id"]: s["fields"] for s in subs}
    f = by_id["SUB-000005"]  # an unchanged form: extension field, detail, email update, Data Access
    f["student_preferred_first_name"] = "Coco"
    f["contact1_relationship"] = "Guardian"
    f["contact1_email"] = "colleen.grant.new@example.com"
    f["contact1_data_access"] = "Yes"
    by_id["SUB-000007"]["contact1_first_name"] = "Zebediah"  # a name that differs from the slot's contact
    by_id["SUB-000020"]["contact2_remove"] = "Yes"  # an unlink (the reviewer decides unlink below)


def coverage_choice(item, truth, today) -> tuple[str, dict] | None:
    if item.kind == "contact_removal" and item.submission_id == "SUB-000020":
        return "unlink", {}
    if item.kind == "name_mismatch" and item.submission_id == "SUB-000007":
        return "same_person_update_name", {}  # a contact rename
    if item.kind == "shared_contact_change" and (item.payload or {}).get("person_id") == 5002:
        return "do_not_update", {}  # contact 5002 stays as it is (on each sibling's form that changes it)
    if item.kind == "field_change":
        return "ignore", {}
    return None


class World:
    def __init__(self, tmp: Path, students: int = 40, seed: int = 5,
                 edits: Callable[[list[dict], dict], None] | None = coverage_edits,
                 choice: Callable[..., tuple[str, dict] | None] | None = coverage_choice,
                 run_id: str = "demo:run-1", db_path: Path | None = None):
        self.district, self.subs, self.truth = build_all(students, seed)
        if edits:
            edits(self.subs, self.district)
        self.handle = start_in_thread(self.district, client_id=CLIENT_ID, client_secret=CLIENT_SECRET,
                                      db_path=str(db_path or tmp / "ps.db"), today=lambda: TODAY)
        self.url = self.handle.url
        self.client = self.new_client()
        self.store = Store(f"sqlite:///{tmp / 'store.db'}", migrate=True)
        self.run_id = run_id
        mapping = load_mapping(MAPPING)
        ext = [s.target for s in mapping.student if s.target.startswith("extension.")]
        self.snapshot: Snapshot = read_snapshot(self.client, ext)
        known = {s.student_number for s in self.snapshot.students.values()}
        records: list[FormRecord] = []
        for sub in self.subs:
            result = apply_mapping(mapping, sub["id"], sub.get("fields") or {})
            if not isinstance(result, list) and result.student_number in known:
                records.append(result)
        matches = match_records(records, self.snapshot, TODAY, {}, "US", build_index(self.snapshot, "US"))
        self.plan = build_plan(records, self.snapshot, matches, TODAY, "US")
        self.store.ensure_run(run_id, "demo")
        digest = plan_hash(self.plan)
        self.store.replace_review_items(run_id, self.plan.review_items, digest)
        for item in self.store.items(run_id):
            picked = (choice(item, self.truth, TODAY) if choice else None) or choose(item, self.truth, TODAY)
            self.store.decide(run_id, item.item_key, picked[0], user="tester", data=picked[1])
        self.ops: list[WriteOp] = resolve(self.plan, self.store.decisions(run_id), self.snapshot, TODAY, "US")
        self.store.update_run(run_id, plan_hash=digest, approved_hash=ops_hash(self.ops), status="approved")
        self.store.put_data(run_id, "snapshot", self.snapshot.model_dump(mode="json"))
        self.store.put_data(run_id, "plan", self.plan.model_dump(mode="json"))
        self._token: str | None = None

    def new_client(self, **kw: Any) -> PowerSchoolClient:
        client = PowerSchoolClient(self.url, CLIENT_ID, CLIENT_SECRET, backoff=kw.pop("backoff", 0.01), **kw)
        client._sleep = lambda s: None if s <= 0 else __import__("time").sleep(min(s, 0.05))
        return client

    def close(self) -> None:
        self.store.dispose()
        self.handle.stop()

    # ------------------------------------------------------------ apply, as the apply and cleanup tasks do
    def apply(self, client: PowerSchoolClient | None = None, batch_size: int = 50) -> dict[str, ApplyOutcome]:
        out = {}
        for stage in ("apply", "cleanup"):
            mine = [op for op in self.ops if op.stage == stage]
            out[stage] = Applier(client or self.client, self.store, self.run_id, self.snapshot, {}).run(
                mine, batch_size=batch_size)
        return out

    # ------------------------------------------------------------ raw HTTP (not our client)
    def headers(self) -> dict[str, str]:
        if self._token is None:
            self._token = requests.post(f"{self.url}/oauth/access_token", auth=(CLIENT_ID, CLIENT_SECRET),
                                        data={"grant_type": "client_credentials"}, timeout=10).json()["access_token"]
        return {"Authorization": f"Bearer {self._token}", "Accept": "application/json"}

    def query(self, entity: str) -> list[dict]:
        r = requests.post(f"{self.url}/ws/schema/query/com.writeback.snapshot.{entity}?pagesize=0", json={},
                          headers=self.headers(), timeout=30)
        r.raise_for_status()
        return r.json()["record"]

    def export(self) -> dict[str, list[dict]]:
        return {e: self.query(e) for e in ENTITIES}

    def stats(self) -> dict:
        return requests.get(f"{self.url}/_sandbox/stats", timeout=10).json()

    def faults(self, **settings: Any) -> None:
        r = requests.post(f"{self.url}/_sandbox/faults", json=settings, timeout=10)
        r.raise_for_status()

    def clear_faults(self) -> None:
        requests.delete(f"{self.url}/_sandbox/faults", timeout=10).raise_for_status()

    def call(self, method: str, path: str, body: Any = None) -> Any:
        r = requests.request(method, f"{self.url}{path}", json=body, headers=self.headers(), timeout=10)
        r.raise_for_status()
        return r.json() if r.content else None
