"""A real run in a store: the sandbox generator's district served by the PowerSchool sandbox, our snapshot
reader over loopback, the registration mapping, matching and the plan — the same path the DAG takes."""

from __future__ import annotations

import datetime as dt
import functools
from collections import Counter
from pathlib import Path

from sandbox.generate import build_all
from sandbox.generator import REFERENCE_DATE
from sandbox.powerschool.server import start_in_thread
from writeback.domain.mapping import apply_mapping, load_mapping
from writeback.domain.matching import build_index, match_records
from writeback.domain.models import FormRecord, Plan
from writeback.domain.plan import build_plan
from writeback.domain.resolve import plan_hash
from writeback.pipeline.snapshot import read_snapshot
from writeback.powerschool.client import PowerSchoolClient
from writeback.store import Store

ROOT = Path(__file__).resolve().parents[2]
MAPPING = ROOT / "include" / "mappings" / "registration-2026.yaml"
DISTRICT = "demo"
CLIENT_ID, CLIENT_SECRET = "sandbox-client", "sandbox-secret"


def reference_today() -> dt.date:
    ref = REFERENCE_DATE
    return ref if isinstance(ref, dt.date) else dt.date.fromisoformat(str(ref)[:10])


def add_possible_matches(district: dict, submissions: list[dict], n: int) -> None:
    """The generator's families rarely name someone who is only *possibly* a known contact, so write a few:
    a grandparent in a free form slot whose name equals a person of another family, with an email and phone
    PowerSchool has never seen. Matching must then ask a person (confirm or not a match)."""
    linked: dict[str, set[int]] = {}
    dcid_of = {str(s["student_number"]): s["dcid"] for s in district["students"]}
    for lk in district["links"]:
        linked.setdefault(lk["student_dcid"], set()).add(lk["person_id"])
    names = {}
    for p in district["persons"]:
        names.setdefault((p["first_name"], p["last_name"]), []).append(p["id"])
    unique = [pid for ids in names.values() if len(ids) == 1 for pid in ids]
    persons = {p["id"]: p for p in district["persons"]}
    done = 0
    for k, sub in enumerate(submissions):
        if done >= n:
            break
        fields = sub["fields"]
        if fields.get("contact4_first_name") or fields.get("contact4_last_name"):
            continue
        mine = linked.get(dcid_of.get(str(sub["student_number"])), set())
        other = next((persons[pid] for pid in unique[k * 7:] if pid not in mine), None)
        if other is None:
            continue
        fields.update({"contact4_first_name": other["first_name"], "contact4_last_name": other["last_name"],
                       "contact4_relationship": "Grandparent", "contact4_cell_phone": f"831.555.01{k:02d}",
                       "contact4_email": f"grand{k}@new.example.net", "contact4_emergency": "Yes"})
        done += 1


@functools.lru_cache(maxsize=8)
def build_world(students: int = 60, seed: int = 7, inject_name: str | None = None,
                possible_matches: int = 2) -> tuple[dict, dict]:
    """(snapshot, plan) as JSON for generated data, through the sandbox and the domain; cached per arguments."""
    district, submissions, _truth = build_all(students, seed)
    mapping = load_mapping(MAPPING)
    add_possible_matches(district, submissions, possible_matches)
    if inject_name:  # a hostile value typed into the form: it must reach the page escaped
        submissions[0]["fields"]["contact1_first_name"] = inject_name
    handle = start_in_thread(district, client_id=CLIENT_ID, client_secret=CLIENT_SECRET)
    try:
        extension_targets = [s.target for s in mapping.student if s.target.startswith("extension.")]
        snapshot = read_snapshot(PowerSchoolClient(handle.url, CLIENT_ID, CLIENT_SECRET), extension_targets)
    finally:
        handle.stop()
    known = {s.student_number for s in snapshot.students.values()}
    records: list[FormRecord] = []
    for sub in submissions:
        result = apply_mapping(mapping, sub["id"], sub.get("fields") or {})
        if not isinstance(result, list) and result.student_number in known:
            records.append(result)
    today = reference_today()
    matches = match_records(records, snapshot, today, {}, "US", build_index(snapshot, "US"))
    plan = build_plan(records, snapshot, matches, today, "US")
    return snapshot.model_dump(mode="json"), plan.model_dump(mode="json")


def seed_run(store: Store, dag_run_id: str, students: int = 60, seed: int = 7,
             inject_name: str | None = None, possible_matches: int = 2, district: str = DISTRICT) -> str:
    """Store one run's snapshot, plan and review items (as build_plan does); returns the store run id."""
    from writeback.operators.context import run_id_for

    snapshot, plan_json = build_world(students, seed, inject_name, possible_matches)
    plan = Plan.model_validate(plan_json)
    run_id = run_id_for(district, dag_run_id)
    store.ensure_run(run_id, district, dag_run_id=dag_run_id)
    store.put_data(run_id, "snapshot", snapshot)
    store.put_data(run_id, "plan", plan_json)
    digest = plan_hash(plan)
    store.replace_review_items(run_id, plan.review_items, digest)
    store.update_run(run_id, plan_hash=digest, status="awaiting_review")
    return run_id


if __name__ == "__main__":  # a quick look at what a seed produces
    import sys
    import tempfile

    s = Store(f"sqlite:///{tempfile.mkdtemp()}/s.db", migrate=True)
    rid = seed_run(s, "manual__2026-08-01T00:00:00+00:00", int(sys.argv[1]) if len(sys.argv) > 1 else 60,
                   int(sys.argv[2]) if len(sys.argv) > 2 else 7, inject_name="<script>x</script>")
    print(rid, Counter(i.kind for i in s.items(rid)))
