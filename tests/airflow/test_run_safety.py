"""Through real Airflow (`airflow dags test` with --conf, both sandboxes as processes on loopback, the
writeback store, the scripted reviewer): a dry run's plan is written by no path, and a retry of a run a
newer run superseded is refused, its rollback touches nothing of the newer run, the cursor never moves
back. PowerSchool is read over raw HTTP; its write counter (`/_sandbox/stats`) is the witness.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest
import requests

from sandbox import processes
from sandbox.generate import write_files
from sandbox.reviewer import ReviewerThread
from writeback.store import Store

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
STUDENTS = 24
ENTITIES = ("students", "contacts", "emails", "phones", "addresses", "links")


@pytest.fixture(scope="module")
def airflow_home(tmp_path_factory) -> Path:
    """One Airflow metadata DB for the module's DAG runs (each world brings its own connections)."""
    work = tmp_path_factory.mktemp("airflow-home")
    env = processes.airflow_env(work, "http://127.0.0.1:1", "http://127.0.0.1:1", "sqlite:///:memory:")
    processes.prepare_airflow(env, work / "airflow-setup.log")
    return work


class World:
    """A generated district, both sandboxes as processes, a store, and `airflow dags test` runs."""

    def __init__(self, home: Path, work: Path, seed: int):
        paths = write_files(work / "district", STUDENTS, seed)
        self.truth = json.loads(paths["truth"].read_text())
        self.ps = processes.start_powerschool(paths["district"], work / "logs", db_path=work / "ps.db")
        self.se = processes.start_schoolengage(paths["submissions"], work / "logs")
        self.store_url = f"sqlite:///{work / 'store.db'}"
        self.store = Store(self.store_url, migrate=True)
        self.env = processes.airflow_env(home, self.ps.url, self.se.url, self.store_url)
        conn = json.loads(self.env["AIRFLOW_CONN_POWERSCHOOL_DEMO"])
        conn["extra"] = {"max_retries": 1, "backoff": 0.01}  # an outage fails fast instead of backing off
        self.env["AIRFLOW_CONN_POWERSCHOOL_DEMO"] = json.dumps(conn)
        self.log = work / "logs" / "dag.log"
        token = requests.post(f"{self.ps.url}/oauth/access_token", auth=(processes.PS_CLIENT_ID,
                                                                         processes.PS_CLIENT_SECRET),
                              data={"grant_type": "client_credentials"}, timeout=30).json()["access_token"]
        self.headers = {"Authorization": f"Bearer {token}"}

    def close(self) -> None:
        self.store.dispose()
        self.ps.stop()
        self.se.stop()

    # ---------------------------------------------------------------- PowerSchool over raw HTTP
    def writes(self) -> int:
        return requests.get(f"{self.ps.url}/_sandbox/stats", timeout=10).json()["writes"]

    def faults(self, **settings) -> None:
        requests.post(f"{self.ps.url}/_sandbox/faults", json=settings, timeout=10).raise_for_status()

    def export(self) -> dict[str, list[dict]]:
        out = {}
        for entity in ENTITIES:
            r = requests.post(f"{self.ps.url}/ws/schema/query/com.writeback.snapshot.{entity}?pagesize=0", json={},
                              headers=self.headers, timeout=60)
            r.raise_for_status()
            out[entity] = r.json()["record"]
        return out

    # ---------------------------------------------------------------- Airflow
    def dag_run(self, conf: dict | None = None, before_review: Callable[[], None] | None = None) -> tuple[int, str]:
        """One `airflow dags test` to its end; returns (exit code, the log it wrote). With `before_review`,
        the reviewer starts only after it ran, once the new run's plan waits for review."""
        before = {r.id for r in self.store.list_runs("demo")}
        logical = dt.datetime.now(dt.UTC).replace(microsecond=0).isoformat()
        args = [str(Path(sys.executable).parent / "airflow"), "dags", "test", "writeback_demo", logical]
        if conf:
            args += ["--conf", json.dumps(conf)]
        mark = self.log.stat().st_size if self.log.exists() else 0
        reviewer = ReviewerThread(self.store, "demo", self.truth, interval=0.2)
        with open(self.log, "a") as out:
            proc = subprocess.Popen(args, env=self.env, cwd=ROOT, stdout=out, stderr=subprocess.STDOUT)
            try:
                if before_review is not None:
                    while proc.poll() is None and not any(
                            r.id not in before and r.status == "awaiting_review" for r in self.store.list_runs("demo")):
                        time.sleep(0.1)
                    before_review()
                reviewer.start()
                proc.wait(timeout=600)
            finally:
                reviewer.stop()
                if proc.poll() is None:
                    proc.kill()
        assert not reviewer.errors, reviewer.errors
        with open(self.log, errors="replace") as f:
            f.seek(mark)
            return proc.returncode, f.read()

    def new_run(self, before: set[str]) -> str:
        [run] = [r for r in self.store.list_runs("demo") if r.id not in before]
        return run.id

    def rollback(self, run_id: str) -> subprocess.CompletedProcess:
        env = {**os.environ, "WRITEBACK_STORE_URL": self.store_url,
               "POWERSCHOOL_CLIENT_SECRET": processes.PS_CLIENT_SECRET}
        return subprocess.run([str(Path(sys.executable).parent / "writeback"), "rollback", "--run", run_id,
                               "--base-url", self.ps.url, "--client-id", processes.PS_CLIENT_ID],
                              env=env, cwd=ROOT, capture_output=True, text=True, timeout=300)


@pytest.fixture
def world(airflow_home, tmp_path):
    w = World(airflow_home, tmp_path, seed=21)
    try:
        yield w
    finally:
        w.close()


def test_a_dry_runs_plan_is_written_by_no_path(world):
    before = {r.id for r in world.store.list_runs("demo")}
    code, _ = world.dag_run({"dry_run": True})
    assert code == 0
    dry = world.new_run(before)
    assert world.store.get_run(dry).dry_run and world.store.get_run(dry).approved_hash
    assert world.writes() == 0
    state = world.export()

    code, log = world.dag_run({"retry_run_id": dry})
    assert world.writes() == 0, "a retry of a dry run wrote to PowerSchool"
    assert code != 0 and f"run {dry} was a dry run" in log
    assert world.store.ledger(dry) == {} and world.store.audit_rows(dry) == []

    done = world.rollback(dry)
    assert done.returncode != 0 and f"run {dry} was a dry run" in done.stderr
    assert world.writes() == 0
    assert world.export() == state
    assert world.store.cursor("demo") is None


def test_a_retry_of_a_superseded_run_is_refused_and_its_rollback_touches_nothing_newer(world):
    before = {r.id for r in world.store.list_runs("demo")}
    world.dag_run(before_review=lambda: world.faults(error_rate=1.0))  # run A: an outage during apply
    world.faults()
    a = world.new_run(before)
    assert world.store.get_run(a).status == "incomplete"
    assert world.writes() == 0

    before = {r.id for r in world.store.list_runs("demo")}
    code, _ = world.dag_run()  # run B re-extracts the same forms, applies them, completes
    assert code == 0
    b = world.new_run(before)
    assert world.store.get_run(b).status == "complete"
    written = world.writes()
    assert written > 0
    cursor = world.store.cursor("demo")
    assert cursor == world.store.get_run(b).cursor_to
    state = world.export()
    audit_a = [(r.op_key, r.response) for r in world.store.audit_rows(a)]

    code, log = world.dag_run({"retry_run_id": a})
    assert f"run {a} is superseded by run {b}" in log, "the retry of the older run was not refused"
    assert code != 0
    assert world.writes() == written
    assert [(r.op_key, r.response) for r in world.store.audit_rows(a)] == audit_a == []
    assert world.store.cursor("demo") == cursor

    done = world.rollback(a)
    assert done.returncode == 0, done.stdout + done.stderr
    assert world.writes() == written, "rolling back the older run wrote to PowerSchool"
    assert world.export() == state
    assert world.store.cursor("demo") == cursor  # the next run extracts from where B left it
