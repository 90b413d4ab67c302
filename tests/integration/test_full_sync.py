"""The whole DAG, for real: generated district, both sandboxes as processes on loopback, Airflow's
`dags test` on a SQLite metadata DB, the writeback store, a scripted reviewer deciding from ground
truth. Then PowerSchool's state is checked through its API, independently of our client.
"""

from __future__ import annotations

import datetime as dt
import json
from collections import Counter
from pathlib import Path

import pytest
import requests

from sandbox import processes
from sandbox.generate import write_files
from sandbox.reviewer import ReviewerThread
from writeback.domain.normalize import fold
from writeback.store import Store

pytestmark = pytest.mark.integration

STUDENTS, SEED = 160, 11


class PowerSchoolReader:
    """Reads PowerSchool through raw HTTP (not our client), so the check does not share its bugs."""

    def __init__(self, url: str):
        self.url = url
        token = requests.post(f"{url}/oauth/access_token", auth=(processes.PS_CLIENT_ID, processes.PS_CLIENT_SECRET),
                              data={"grant_type": "client_credentials"}, timeout=30).json()["access_token"]
        self.headers = {"Authorization": f"Bearer {token}", "Accept": "application/json"}

    def query(self, entity: str) -> list[dict]:
        r = requests.post(f"{self.url}/ws/schema/query/com.writeback.snapshot.{entity}?pagesize=0",
                          json={}, headers=self.headers, timeout=60)
        r.raise_for_status()
        return r.json()["record"]

    def stats(self) -> dict:
        return requests.get(f"{self.url}/_sandbox/stats", timeout=10).json()

    def writes(self) -> list[dict]:
        return requests.get(f"{self.url}/_sandbox/writes", timeout=10).json()


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    work: Path = tmp_path_factory.mktemp("sync")
    write_files(work / "district", STUDENTS, SEED)
    district, submissions, truth = (json.loads((work / "district" / f"{name}.json").read_text())
                                    for name in ("district", "submissions", "truth"))
    ps = processes.start_powerschool(work / "district" / "district.json", work / "logs", db_path=work / "ps.db")
    se = processes.start_schoolengage(work / "district" / "submissions.json", work / "logs")
    store_url = f"sqlite:///{work / 'store.db'}"
    env = processes.airflow_env(work, ps.url, se.url, store_url)
    processes.prepare_airflow(env, work / "logs" / "airflow-setup.log")
    store = Store(store_url, migrate=True)
    try:
        yield {"work": work, "ps": ps, "se": se, "env": env, "store": store, "district": district,
               "submissions": submissions, "truth": truth, "reader": PowerSchoolReader(ps.url)}
    finally:
        store.dispose()
        ps.stop()
        se.stop()


def run_dag(world, conf: dict | None = None) -> str:
    """One DAG run to its end, with the scripted reviewer; returns the store's run id."""
    reviewer = ReviewerThread(world["store"], "demo", world["truth"], interval=0.3)
    reviewer.start()
    before = {r.id for r in world["store"].list_runs("demo")}
    logical = dt.datetime.now(dt.UTC).replace(microsecond=0).isoformat()
    args = ["dags", "test", "writeback_demo", logical]
    if conf:
        args += ["--conf", json.dumps(conf)]
    try:
        processes.airflow(world["env"], *args, log_path=world["work"] / "logs" / "dag.log")
    finally:
        reviewer.stop()
    assert not reviewer.errors, reviewer.errors
    new = [r for r in world["store"].list_runs("demo") if r.id not in before]
    assert len(new) == 1
    return new[0].id


@pytest.fixture(scope="module")
def first_run(world):
    before = world["reader"].stats()["writes"]
    run_id = run_dag(world)
    return {"run_id": run_id, "writes": world["reader"].stats()["writes"] - before,
            "write_log": world["reader"].writes()}


def valid_submissions(world, scenario: str) -> list[tuple[dict, dict]]:
    truth = world["truth"]["submissions"]
    return [(s, truth[s["id"]]) for s in world["submissions"]
            if truth[s["id"]]["valid"] and truth[s["id"]]["scenario"] == scenario]


def test_run_completes_and_every_operation_is_confirmed(world, first_run):
    store = world["store"]
    run = store.get_run(first_run["run_id"])
    assert run.status == "complete"
    ledger = store.ledger(first_run["run_id"])
    assert ledger and {r.status for r in ledger.values()} == {"done"}
    report = store.get_data(first_run["run_id"], "report")
    assert report["writes"]["failed"] == 0
    # every write PowerSchool accepted is one the applier made and counted: nothing outside the plan
    assert report["writes"]["made"] == first_run["writes"]
    assert first_run["writes"] > 0


def test_malformed_records_are_quarantined_with_reasons_not_dropped(world, first_run):
    quarantined = {q.submission_id: q for q in world["store"].quarantine(first_run["run_id"])}
    expected = {sid for sid, t in world["truth"]["submissions"].items() if not t["valid"]}
    assert expected and expected <= set(quarantined)
    for sid in expected:
        assert quarantined[sid].field and quarantined[sid].reason


def test_edited_addresses_reach_powerschool(world, first_run):
    students = {r["students.student_number"]: r for r in world["reader"].query("students")}
    cases = valid_submissions(world, "edited_address")
    assert cases
    for sub, _ in cases:
        row = students[sub["student_number"]]
        assert row["students.street"] == sub["fields"]["home_street"]
        assert row["students.zip"] == sub["fields"]["home_zip"]


def test_siblings_naming_one_new_parent_share_one_new_contact(world, first_run):
    reader = world["reader"]
    persons = {int(r["person.id"]): r for r in reader.query("contacts")}
    links = reader.query("links")
    truth = world["truth"]
    checked = 0
    for key, info in truth["new_contacts"].items():
        subs = [s for s in info["submissions"] if truth["submissions"][s]["valid"]]
        if len(subs) < 2:
            continue
        same_name = [pid for pid, p in persons.items()
                     if (fold(p["person.firstname"]), fold(p["person.lastname"]))
                     == (fold(info["first_name"]), fold(info["last_name"]))]
        assert len(same_name) == 1, f"{key}: {len(same_name)} persons with that name"
        dcids = {int(truth["submissions"][s]["student_dcid"]) for s in subs}
        linked = {int(r["studentcontactassoc.studentdcid"]) for r in links
                  if int(r["studentcontactassoc.personid"]) == same_name[0]}
        assert dcids <= linked
        checked += 1
    assert checked > 0


def test_no_contact_was_duplicated(world, first_run):
    original = Counter((fold(p["first_name"]), fold(p["last_name"])) for p in world["district"]["persons"])
    now = Counter((fold(r["person.firstname"]), fold(r["person.lastname"])) for r in world["reader"].query("contacts"))
    created = Counter((fold(i["first_name"]), fold(i["last_name"])) for i in world["truth"]["new_contacts"].values())
    for name, count in now.items():
        assert count <= original.get(name, 0) + min(created.get(name, 0), 1), name


def test_removed_contacts_are_expired_and_ordered_last(world, first_run):
    links = world["reader"].query("links")
    cases = valid_submissions(world, "removed_contact")
    assert cases
    for _, truth in cases:
        dcid = truth["student_dcid"]
        removed = [int(c["person_id"]) for c in truth["contacts"].values() if c.get("remove")]
        current: dict[int, dict] = {}  # one row per detail: keep each link's current (latest) detail
        for r in links:
            if int(r["studentcontactassoc.studentdcid"]) == dcid:
                pid = int(r["studentcontactassoc.personid"])
                if pid not in current or r["studentcontactdetail.startdate"] > current[pid]["studentcontactdetail.startdate"]:
                    current[pid] = r
        rows = sorted(current.values(), key=lambda r: int(r["studentcontactassoc.contactpriorityorder"]))
        by_person = current
        for pid in removed:
            assert by_person[pid]["studentcontactdetail.enddate"], "the link has an end date"
        active = [int(r["studentcontactassoc.personid"]) for r in rows if not r["studentcontactdetail.enddate"]]
        order = [int(r["studentcontactassoc.personid"]) for r in rows]
        assert order[: len(active)] == active, "expired contacts come after every active one"
        sequences = sorted({int(r["studentcontactassoc.contactpriorityorder"]) for r in rows})
        assert sequences == list(range(1, len(sequences) + 1)), "order stays 1..n without gaps"


def test_rerun_with_no_new_submissions_writes_nothing(world, first_run):
    before = world["reader"].stats()["writes"]
    run_id = run_dag(world)
    assert world["store"].get_run(run_id).counts["extract_submissions"]["received"] == 0
    assert world["reader"].stats()["writes"] == before


def test_manual_rerun_of_an_applied_submission_writes_nothing(world, first_run):
    """Naming an already-applied submission again finds PowerSchool already equal: zero writes.

    (Not one whose sibling's form set a shared contact differently: there the reviewer chose the other
    form's value, and rerunning this form alone rightly writes this one.)"""
    contested = {p["submission_id"] for i in world["store"].items(first_run["run_id"], kind="conflicting_forms")
                 for p in i.payload["proposals"]}
    sub, _ = next(c for c in valid_submissions(world, "edited_address") if c[0]["id"] not in contested)
    before = world["reader"].stats()["writes"]
    run_id = run_dag(world, {"submission_ids": [sub["id"]]})
    assert world["store"].get_run(run_id).counts["extract_submissions"]["received"] == 1
    extra = world["reader"].writes()[before:]
    assert world["reader"].stats()["writes"] == before, (extra, {k: (r.status, r.kind) for k, r in
                                                                world["store"].ledger(run_id).items()})


def _pii(world) -> set[str]:
    """Distinctive student data of the generated district: emails, phone digits, full names."""
    d = world["district"]
    values = {e["address"].lower() for e in d["emails"]}
    values |= {"".join(ch for ch in p["number"] if ch.isdigit())[-10:] for p in d["phones"]}
    values |= {f"{p['first_name']} {p['last_name']}".lower() for p in d["persons"]}
    values |= {f"{s['first_name']} {s['last_name']}".lower() for s in d["students"]}
    return {v for v in values if len(v) >= 7}


def test_no_secret_or_student_data_in_task_logs(world, first_run):
    log = (world["work"] / "logs" / "dag.log").read_text(errors="replace").lower()
    assert "task_id=apply" in log or "apply" in log  # the log is the run's, not empty
    for secret in (processes.PS_CLIENT_SECRET, processes.SE_API_KEY):
        assert secret.lower() not in log
    digits_only = "".join(ch for ch in log if ch.isdigit() or ch == "\n")
    leaked = sorted(v for v in _pii(world) if (v in digits_only if v.isdigit() else v in log))
    assert leaked == []


def test_no_student_data_in_xcom(world, first_run):
    import sqlite3

    db = sqlite3.connect(world["work"] / "airflow" / "airflow.db")
    try:
        values = [str(v).lower() for (v,) in db.execute("SELECT value FROM xcom")]
    finally:
        db.close()
    assert values, "the tasks pushed their counts"
    blob = "\n".join(values)
    assert [v for v in _pii(world) if not v.isdigit() and v in blob] == []


def test_sandboxes_listen_on_loopback_only(world):
    import psutil

    for service in (world["ps"], world["se"]):
        addresses = {c.laddr.ip for c in psutil.Process(service.process.pid).net_connections(kind="inet")
                     if c.status == psutil.CONN_LISTEN}
        assert addresses == {"127.0.0.1"}, (service.name, addresses)
