"""Fault campaign: seeded whole syncs under faults, each checked by the invariant checker (bench/invariants.py).

    .venv/bin/python bench/faults.py [--students 120] [--seeds 2] [--first-seed 1] [--only NAME ...]
                                     [--budget 6] [--work DIR] [--keep]

Every run generates a district (`sandbox.generate`, seed = the run's seed), starts both sandboxes as their
own processes on loopback, syncs the district's submissions into PowerSchool with the scripted reviewer
deciding from the generator's ground truth, then reads PowerSchool back over raw PowerQuery HTTP and
checks the invariants (nothing lost, nothing duplicated, nothing outside the approved plan, every failure
recorded, every change audited).

Two ways to drive a run (the table says which):
- `airflow`: the real DAG, `airflow dags test writeback_demo <date>` on an embedded SQLite metadata DB; a run
  that does not complete is run again with `{"retry_run_id": "<store run id>"}` until it completes or the
  budget of DAG runs ends. Airflow's own task retries (2, one minute apart) happen inside a DAG run.
- `stage`: the same stage functions the operators call (`pipeline/stages.py`), in this process, apply and
  cleanup attempted again (as Airflow's task retries would) until every op is confirmed or the budget ends.
  Faster: no Airflow start-up and no one-minute retry delay.

Scenarios: 5xx at 5/10/20% (fresh RNG seed per attempt), 429 bursts re-armed throughout, added latency,
dropped connections after a committed write (with the client's default 5 retries, and with retries cut to
1 so the ledger and the next attempt have to sort out ambiguous writes), the PowerSchool sandbox killed after its Nth committed write (`kill_after_writes`,
restarted on the same db and port, twice per run), the `airflow dags test` process SIGKILLed while apply
runs (then rerun with `retry_run_id`), the writeback store (PostgreSQL) stopped and started while the run
waits for review and again in the middle of apply, and PowerSchool changed between snapshot and apply
(student fields edited through the API: each must become a `stale_write`, kept by the reviewer, and
survive).
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import pwd
import random
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
for _p in (ROOT, ROOT / "plugins"):
    if str(_p) not in sys.path:
        sys.path.insert(0, str(_p))

import requests  # noqa: E402

from bench.invariants import check, student_column  # noqa: E402
from sandbox import processes  # noqa: E402
from sandbox.generate import write_files  # noqa: E402
from sandbox.reviewer import ReviewerThread, decide_pending  # noqa: E402

DISTRICT = "demo"
ENTITIES = ("students", "contacts", "emails", "phones", "addresses", "links", "portal_accounts")


# ---------------------------------------------------------------- PowerSchool over raw HTTP


class RawPowerSchool:
    """PowerSchool through plain HTTP (not our client), so the check does not share its bugs."""

    def __init__(self, url: str):
        self.url = url
        self._headers: dict[str, str] | None = None

    def headers(self) -> dict[str, str]:
        if self._headers is None:
            token = requests.post(f"{self.url}/oauth/access_token", auth=(processes.PS_CLIENT_ID,
                                                                          processes.PS_CLIENT_SECRET),
                                  data={"grant_type": "client_credentials"}, timeout=30).json()["access_token"]
            self._headers = {"Authorization": f"Bearer {token}", "Accept": "application/json"}
        return self._headers

    def export(self) -> dict[str, list[dict]]:
        out = {}
        for entity in ENTITIES:
            r = requests.post(f"{self.url}/ws/schema/query/com.writeback.snapshot.{entity}?pagesize=0", json={},
                              headers=self.headers(), timeout=60)
            r.raise_for_status()
            out[entity] = r.json()["record"]
        return out

    def update_student(self, dcid: int, body: dict[str, Any]) -> None:
        payload = {"students": {"student": [{"client_uid": f"harness-{dcid}", "action": "UPDATE", "id": dcid, **body}]}}
        r = requests.post(f"{self.url}/ws/v1/student", json=payload, headers=self.headers(), timeout=30)
        r.raise_for_status()
        result = r.json()["results"]["result"]
        result = result[0] if isinstance(result, list) else result
        if str(result.get("status", "")).upper() != "SUCCESS":
            raise RuntimeError(f"harness edit of student {dcid} refused: {result}")

    def faults(self, **settings: Any) -> None:
        requests.post(f"{self.url}/_sandbox/faults", json=settings, timeout=10).raise_for_status()

    def fault_state(self) -> dict[str, Any]:
        return requests.get(f"{self.url}/_sandbox/faults", timeout=10).json()

    def clear_faults(self) -> None:
        requests.delete(f"{self.url}/_sandbox/faults", timeout=10).raise_for_status()

    def stats(self) -> dict[str, Any]:
        return requests.get(f"{self.url}/_sandbox/stats", timeout=10).json()


# ---------------------------------------------------------------- a throwaway PostgreSQL for the store


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class PgServer:
    """A private PostgreSQL server from the installed binaries (as an unprivileged user when we are root)."""

    def __init__(self) -> None:
        self.initdb = shutil.which("initdb") or _glob_pg("initdb")
        self.pg_ctl = shutil.which("pg_ctl") or _glob_pg("pg_ctl")
        if not (self.initdb and self.pg_ctl):
            raise RuntimeError("initdb/pg_ctl not found")
        self.user = None
        if os.geteuid() == 0:
            for name in ("postgres", "writeback-pg"):
                try:
                    pwd.getpwnam(name)
                    self.user = name
                    break
                except KeyError:
                    pass
            if self.user is None:
                subprocess.run(["useradd", "--system", "--no-create-home", "writeback-pg"], check=True)
                self.user = "writeback-pg"
        self.root = Path(tempfile.mkdtemp(prefix="wb-fc-pg-"))
        self.data, self.log = self.root / "data", self.root / "server.log"
        self.port = _free_port()
        if self.user:
            entry = pwd.getpwnam(self.user)
            os.chown(self.root, entry.pw_uid, entry.pw_gid)
        self._run(self.initdb, "-D", str(self.data), "-U", "postgres", "--auth=trust", "--encoding=UTF8",
                  "--locale=C", "--no-sync")

    def _run(self, *args: str) -> None:
        cmd = list(args) if self.user is None else ["runuser", "-u", self.user, "--", *args]
        done = subprocess.run(cmd, capture_output=True, text=True, timeout=120, cwd=self.root)
        if done.returncode != 0:
            raise RuntimeError(f"{' '.join(cmd)} exited {done.returncode}: {done.stdout}{done.stderr}")

    @property
    def url(self) -> str:
        return f"postgresql+psycopg2://postgres@127.0.0.1:{self.port}/postgres"

    def start(self) -> None:
        opts = f"-p {self.port} -k {self.root} -c listen_addresses=127.0.0.1 -c fsync=off"
        self._run(self.pg_ctl, "-D", str(self.data), "-l", str(self.log), "-o", opts, "-w", "-t", "60", "start")

    def stop(self, mode: str = "fast") -> None:
        if (self.data / "postmaster.pid").exists():
            self._run(self.pg_ctl, "-D", str(self.data), "-m", mode, "-w", "stop")

    def destroy(self) -> None:
        try:
            self.stop()
        finally:
            shutil.rmtree(self.root, ignore_errors=True)


def _glob_pg(name: str) -> str | None:
    import glob

    found = sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{name}"))
    return found[-1] if found else None


# ---------------------------------------------------------------- one run's world


@dataclass
class Outcome:
    scenario: str
    seed: int
    path: str
    violations: list[str] = field(default_factory=list)
    writes: int = 0  # committed writes PowerSchool counted (`/_sandbox/stats`, summed over restarts)
    reported: int = 0  # writes the run's report says it made
    attempts: int = 0  # apply attempts (stage) or DAG runs (airflow)
    task_tries: int = 0  # airflow: apply/cleanup task tries over all DAG runs
    status: str = ""
    notes: list[str] = field(default_factory=list)
    fault_counters: Counter = field(default_factory=Counter)
    seconds: float = 0.0
    error: str = ""


class World:
    """A generated district, both sandboxes as processes, a writeback store."""

    def __init__(self, work: Path, students: int, seed: int, store_url: str | None = None):
        self.work, self.seed = work, seed
        (work / "logs").mkdir(parents=True, exist_ok=True)
        paths = write_files(work / "district", students, seed)
        self.district_file = paths["district"]
        self.district = json.loads(paths["district"].read_text())
        self.truth = json.loads(paths["truth"].read_text())
        self.ps_db = work / "ps.db"
        self.ps = processes.start_powerschool(self.district_file, work / "logs", db_path=self.ps_db)
        self.port = int(self.ps.url.rsplit(":", 1)[1])
        self.se = processes.start_schoolengage(paths["submissions"], work / "logs")
        self.raw = RawPowerSchool(self.ps.url)
        self.store_url = store_url or f"sqlite:///{work / 'store.db'}"
        from writeback.store import Store

        self.store = Store(self.store_url, migrate=True)
        self.restarts = 0
        self.counters: Counter = Counter()
        self.writes_before_restarts = 0  # committed writes counted by sandbox processes that were killed
        self.last_writes = 0
        self.writes_at_kill = 0

    def poll_writes(self) -> None:
        try:
            self.last_writes = int(self.raw.stats()["writes"])
        except (requests.RequestException, KeyError, ValueError):
            pass

    def total_writes(self) -> int:
        self.poll_writes()
        return self.writes_before_restarts + self.last_writes

    def arm_kill(self, seed: int, after: int) -> None:
        """Kill the sandbox right after its (after+1)th committed write from now."""
        self.poll_writes()
        self.writes_at_kill = self.last_writes + after + 1
        self.raw.faults(seed=seed, kill_after_writes=after)

    def restart_powerschool(self) -> None:
        """Start the sandbox again on the same db and port (its state survives; faults start afresh)."""
        self.restarts += 1
        self.writes_before_restarts += self.writes_at_kill  # the dead process's count, the killed write included
        self.last_writes = 0
        self.ps = processes.start_powerschool(self.district_file, self.work / "logs" / f"restart-{self.restarts}",
                                              db_path=self.ps_db, extra=["--port", str(self.port)])

    def note_fault_counters(self) -> None:
        try:
            counters = self.raw.fault_state().get("counters", {})
        except requests.RequestException:
            return
        for k in ("burst_429", "errors_500", "errors_503", "dropped", "delayed"):
            self.counters[k] += int(counters.get(k) or 0)

    def close(self) -> None:
        self.store.dispose()
        self.ps.stop()
        self.se.stop()


def collect(world: World, run_id: str, external: dict | None = None) -> tuple[list[str], dict[str, Any]]:
    """The approved ops, ledger and audit from the store, PowerSchool's final state over HTTP, and the check."""
    from writeback.config import district as district_config
    from writeback.pipeline import stages

    store = world.store
    run = store.get_run(run_id)
    cfg = district_config(DISTRICT).model_copy(update={"store_url": world.store_url})
    ctx = stages.RunContext(district=cfg, store=store, run_id=run_id, today=run.created_at.date())
    ops, _snapshot, _ = stages.approved_ops(ctx)
    ledger = store.ledger(run_id)
    audit: dict[str, list[str]] = {}
    for row in store.audit_rows(run_id):
        audit.setdefault(row.op_key, []).append(row.response or "")
    final = world.raw.export()
    violations = check(world.district, ops, ledger, final, audit=audit, external=external)
    info = {"ops": ops, "ledger": ledger, "report": store.get_data(run_id, "report") or {}, "run": run}
    return violations, info


# ---------------------------------------------------------------- stage-level driver


def stage_run(world: World, *, budget: int, client_retries: int = 5,
              per_attempt: Callable[[World, int], None] | None = None,
              before_apply: Callable[[World, Any, list], dict] | None = None,
              during: Callable[[World, threading.Event], None] | None = None) -> tuple[str, dict, int]:
    """The pipeline's stages in this process; returns (store run id, harness changes, apply attempts)."""
    from writeback.config import district as district_config
    from writeback.pipeline import stages
    from writeback.powerschool.client import PowerSchoolClient
    from writeback.sources.schoolengage import SchoolEngageClient

    cfg = district_config(DISTRICT).model_copy(update={"store_url": world.store_url})
    run_id = f"{DISTRICT}:faults-{world.seed}-{int(time.time() * 1000)}"
    world.store.ensure_run(run_id, DISTRICT, dag_run_id=run_id)
    ctx = stages.RunContext(district=cfg, store=world.store, run_id=run_id,
                            today=world.store.get_run(run_id).created_at.date())
    ps = PowerSchoolClient(world.ps.url, processes.PS_CLIENT_ID, processes.PS_CLIENT_SECRET,
                           max_retries=client_retries, backoff=0.05)
    se = SchoolEngageClient(world.se.url, processes.SE_API_KEY)
    stop = threading.Event()
    helper = threading.Thread(target=during, args=(world, stop), daemon=True) if during else None
    if per_attempt:
        per_attempt(world, 0)
    if helper:
        helper.start()

    def task(fn: Callable, *args: Any, tries: int = 3, **kw: Any) -> Any:
        """One task, with Airflow-like retries (no delay)."""
        for i in range(tries):
            try:
                return fn(*args, **kw)
            except Exception:
                if i == tries - 1:
                    raise
        return None

    external: dict = {}
    attempts = 0
    try:
        task(stages.extract_submissions, ctx, se)
        task(stages.extract_snapshot, ctx, ps)
        task(stages.check_quality, ctx)
        task(stages.match_contacts, ctx)
        task(stages.build_run_plan, ctx)
        decide_pending(world.store, run_id, world.truth)
        state = stages.approval_state(ctx)
        if not state["approved"]:
            raise RuntimeError(f"not approved: {state}")
        if before_apply:
            ops, _, _ = stages.approved_ops(ctx)
            external = before_apply(world, ctx, ops)
        for attempt in range(budget):
            attempts += 1
            if per_attempt and attempt:
                world.note_fault_counters()
                per_attempt(world, attempt)
            for b in stages.batch_ids(ctx):
                try:
                    stages.apply_plan(ctx, ps, batch=b)
                except Exception as exc:  # a task failure: the next attempt is its retry
                    world.counters[f"apply raised {type(exc).__name__}"] += 1
            try:
                stages.cleanup(ctx, ps)
            except Exception as exc:
                world.counters[f"cleanup raised {type(exc).__name__}"] += 1
            decide_pending(world.store, run_id, world.truth)  # stale writes go back to review
            ops, _, _ = stages.approved_ops(ctx)
            ledger = world.store.ledger(run_id)
            if all(ledger.get(op.key) is not None and ledger[op.key].status in {"done", "skipped_by_reviewer"}
                   for op in ops):
                break
    finally:
        stop.set()
        if helper:
            helper.join(timeout=10)
        world.note_fault_counters()
        world.raw.clear_faults()
    stages.report(ctx)
    return run_id, external, attempts


# ---------------------------------------------------------------- Airflow driver


class AirflowHome:
    """One embedded Airflow (SQLite metadata) shared by the campaign's DAG runs; connections per world."""

    def __init__(self, work: Path):
        self.work = work
        (work / "logs").mkdir(parents=True, exist_ok=True)
        env = processes.airflow_env(work, "http://127.0.0.1:1", "http://127.0.0.1:1", "sqlite:///:memory:")
        processes.prepare_airflow(env, work / "logs" / "airflow-setup.log")

    def env(self, world: World) -> dict[str, str]:
        return processes.airflow_env(self.work, world.ps.url, world.se.url, world.store_url, DISTRICT)


def dag_run(home: AirflowHome, world: World, log: Path, conf: dict | None = None,
            monitor: Callable[[subprocess.Popen], None] | None = None, reviewer_delay: threading.Event | None = None,
            timeout: float = 900) -> int:
    """One `airflow dags test` to its end (or until a monitor kills it); returns its exit code."""
    from writeback.store import Store

    review_store = Store(world.store_url, migrate=False)
    reviewer = ReviewerThread(review_store, DISTRICT, world.truth, interval=0.3)
    gate = reviewer_delay

    if gate is not None:  # the reviewer waits until the scenario lets it go
        run_reviewer = reviewer.run

        def gated() -> None:
            gate.wait()
            run_reviewer()

        reviewer.run = gated  # type: ignore[method-assign]
    reviewer.start()
    logical = (dt.datetime.now(dt.UTC).replace(microsecond=0) + dt.timedelta(seconds=random.randint(0, 10**6)))
    args = [str(Path(sys.executable).parent / "airflow"), "dags", "test", f"writeback_{DISTRICT}", logical.isoformat()]
    if conf:
        args += ["--conf", json.dumps(conf)]
    with open(log, "a") as out:
        proc = subprocess.Popen(args, env=home.env(world), cwd=ROOT, stdout=out, stderr=subprocess.STDOUT,
                                start_new_session=True)
        try:
            if monitor:
                monitor(proc)
            proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
        finally:
            if gate is not None:
                gate.set()
            reviewer.stop()
            review_store.dispose()
    world.counters["reviewer errors"] += len(reviewer.errors)
    return proc.returncode


def airflow_sync(home: AirflowHome, world: World, *, budget: int,
                 first_monitor: Callable[[World, subprocess.Popen], None] | None = None,
                 every_monitor: Callable[[World, subprocess.Popen], None] | None = None,
                 reviewer_gate: threading.Event | None = None) -> tuple[str, int, int]:
    """DAG runs until the store run completes (later ones with retry_run_id); returns (run id, DAG runs, task tries)."""
    log = world.work / "logs" / "dag.log"
    before = {r.id for r in world.store.list_runs(DISTRICT)}
    run_id = ""
    runs = 0
    for i in range(budget):
        runs += 1
        monitor = first_monitor if i == 0 else every_monitor
        conf = {"retry_run_id": run_id} if run_id else None
        mark = log.stat().st_size if log.exists() else 0
        code = dag_run(home, world, log, conf, monitor=(lambda p, m=monitor: m(world, p)) if monitor else None,
                       reviewer_delay=reviewer_gate if i == 0 else None)
        world.counters[f"dags test exit {code}"] += 1
        world.counters["task tries"] += _count_task_tries(log, mark)
        if not run_id:
            new = [r for r in _retry(lambda: world.store.list_runs(DISTRICT)) if r.id not in before]
            if not new:
                continue  # killed before the run was recorded: start over
            run_id = new[0].id
        run = _retry(lambda rid=run_id: world.store.get_run(rid))
        if run.status == "complete":
            break
        if not _retry(lambda rid=run_id: world.store.get_data(rid, "plan")):
            run_id = ""  # no plan yet: a retry has nothing to apply; start a fresh run
    return run_id, runs, world.counters["task tries"]


def _count_task_tries(log: Path, mark: int) -> int:
    with open(log, errors="replace") as f:
        f.seek(mark)
        text = f.read()
    return text.count("starting task_id=apply ") + text.count("starting task_id=cleanup ")


def _retry(fn: Callable[[], Any], tries: int = 20) -> Any:
    for i in range(tries):
        try:
            return fn()
        except Exception:
            if i == tries - 1:
                raise
            time.sleep(0.5)
    return None


def wait_until(proc: subprocess.Popen, cond: Callable[[], bool], timeout: float = 600, interval: float = 0.1) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and proc.poll() is None:
        try:
            if cond():
                return True
        except Exception:  # noqa: BLE001 - the store may be down or mid-migration
            pass
        time.sleep(interval)
    return False


def _latest_run(world: World):
    runs = world.store.list_runs(DISTRICT, limit=1)
    return runs[0] if runs else None


def _ledger_size(world: World) -> int:
    run = _latest_run(world)
    return len(world.store.ledger(run.id)) if run else 0


# ---------------------------------------------------------------- scenarios


@dataclass
class Scenario:
    name: str
    path: str  # stage | airflow
    run: Callable[[Scenario, Path, int, argparse.Namespace, AirflowHome | None], Outcome]
    help: str = ""
    settings: dict[str, Any] = field(default_factory=dict)


def _finish(out: Outcome, world: World, run_id: str, external: dict | None = None) -> Outcome:
    violations, info = collect(world, run_id, external)
    out.violations = violations
    out.writes = world.total_writes()
    out.reported = int((info["report"].get("writes") or {}).get("made", 0))
    c = world.counters
    if out.reported < out.writes:
        c["runs whose report undercounts writes"] += 1
    elif out.reported > out.writes:
        c["runs whose report overcounts writes"] += 1
    out.status = info["run"].status
    for status, n in Counter(r.status for r in info["ledger"].values()).items():
        if status != "done":
            c[f"ledger {status}"] += n
    try:
        log = requests.get(f"{world.ps.url}/_sandbox/writes", timeout=30).json()
        c["PUT/DELETE repeated"] += sum(n - 1 for n in Counter((w["method"], w["path"]) for w in log
                                                              if w["method"] != "POST").values())
    except requests.RequestException:
        pass
    c["lost replies found"] += sum(1 for r in world.store.audit_rows(run_id) if "found" in (r.response or ""))
    out.fault_counters = c
    return out


def run_stage_faults(sc: Scenario, work: Path, seed: int, args: argparse.Namespace, _home) -> Outcome:
    out = Outcome(sc.name, seed, "stage")
    world = World(work, args.students, seed)
    s = sc.settings
    try:
        def per_attempt(w: World, attempt: int) -> None:
            settings = {k: v for k, v in s.items() if k in {"latency_ms", "error_rate"}}
            w.raw.faults(seed=seed * 1000 + attempt, **settings)

        stop_rearm = s.get("rearm")

        def during(w: World, stop: threading.Event) -> None:
            """Re-arm one-shot faults (429 bursts, a dropped write) while the run goes on."""
            rng = random.Random(seed)
            while not stop.wait(s.get("rearm_every", 0.5)):
                try:
                    cur = w.raw.fault_state()
                    if stop_rearm == "burst" and not cur.get("burst_429"):
                        w.note_fault_counters()
                        w.raw.faults(seed=rng.randrange(10**6), burst_429=rng.randint(1, s.get("burst", 3)),
                                     **{k: v for k, v in s.items() if k in {"latency_ms", "error_rate"}})
                    elif stop_rearm == "drop" and cur.get("drop_after_writes") is None:
                        w.note_fault_counters()
                        w.raw.faults(seed=rng.randrange(10**6), drop_after_writes=rng.randint(0, s.get("drop_gap", 4)))
                except requests.RequestException:
                    pass

        run_id, _, attempts = stage_run(world, budget=args.budget, client_retries=s.get("client_retries", 5),
                                        per_attempt=per_attempt, during=during if stop_rearm else None)
        out.attempts = attempts
        return _finish(out, world, run_id)
    finally:
        world.close()


def run_stale(sc: Scenario, work: Path, seed: int, args: argparse.Namespace, _home) -> Outcome:
    """Student fields edited in PowerSchool after the plan, before apply: stale writes, kept, never overwritten."""
    out = Outcome(sc.name, seed, "stage")
    world = World(work, args.students, seed)
    changed_ops: list[str] = []
    try:
        def before_apply(w: World, ctx, ops: list) -> dict:
            rng = random.Random(seed)
            editable = [op for op in ops if op.kind == "student_update" and _editable_targets(op)]
            external = {}
            for op in rng.sample(editable, min(sc.settings.get("edits", 4), len(editable))):
                target = rng.choice(_editable_targets(op))
                value = _registrar_value(target, rng)
                w.raw.update_student(op.student_dcid, _student_fields_body(op, target, value))
                external[("student", op.student_dcid, student_column(target))] = value
                changed_ops.append(op.key)
            return external

        run_id, external, attempts = stage_run(world, budget=args.budget, before_apply=before_apply)
        out.attempts = attempts
        out = _finish(out, world, run_id, external)
        ledger = world.store.ledger(run_id)
        items = {i.item_key: i for i in world.store.items(run_id, kind="stale_write")}
        for key in changed_ops:
            row = ledger.get(key)
            if row is None or row.status not in {"stale", "skipped_by_reviewer"}:
                out.violations.append(f"not_stale: {key} was edited in PowerSchool before apply but its ledger row is "
                                      f"{row.status if row else 'missing'}")
            if f"stale:{key}" not in items:
                out.violations.append(f"not_stale: no stale_write review item for {key}")
        out.notes.append(f"{len(changed_ops)} fields edited before apply, {len(items)} stale items")
        return out
    finally:
        world.close()


EDITABLE = ("name.", "addresses.", "extension.")


def _editable_targets(op) -> list[str]:
    """Targets of a student op a registrar could plausibly edit meanwhile (text, changed by the plan)."""
    return sorted(t for t in op.values if t.startswith(EDITABLE) and op.values[t] != op.expected.get(t)
                  and not (t.startswith("addresses.") and not all(op.expected.get(g) for g in op.values
                                                                   if g.rsplit(".", 1)[0] == t.rsplit(".", 1)[0])))


def _registrar_value(target: str, rng: random.Random) -> str:
    part = target.rsplit(".", 1)[1]
    return {"state_province": "NV", "postal_code": f"8{rng.randrange(1000, 9999)}",
            "street": f"{rng.randrange(10, 99)} Registrar Way"}.get(part, f"Registrar{rng.randrange(100, 999)}")


def _student_fields_body(op, target: str, value: str) -> dict[str, Any]:
    """A v1 student UPDATE setting `target` to `value`; an address goes whole, its other parts unchanged."""
    from writeback.domain.targets import address_group, student_target

    values = {target: value}
    group = address_group(target)
    if group:
        values.update({t: op.expected.get(t, "") for t in op.values if address_group(t) == group and t != target})
    body: dict[str, Any] = {}
    for name, v in values.items():
        path = student_target(name).body_path
        if path[0] == "_extension_data":
            body.setdefault("_extension_data", {"_table_extension": []})["_table_extension"].append(
                {"name": path[1], "_field": [{"name": path[2], "value": v}]})
            continue
        node = body
        for part in path[:-1]:
            node = node.setdefault(part, {})
        node[path[-1]] = v
    return body


def run_ps_kill(sc: Scenario, work: Path, seed: int, args: argparse.Namespace, home: AirflowHome) -> Outcome:
    """The PowerSchool sandbox dies right after its Nth committed write (os._exit(137), no reply), twice;
    the harness restarts it on the same db and port while the DAG's apply task keeps going."""
    out = Outcome(sc.name, seed, "airflow")
    world = World(work, args.students, seed)
    rng = random.Random(seed)
    kills = sc.settings.get("kills", 2)
    try:
        world.arm_kill(seed, rng.randint(3, 15))

        def monitor(w: World, proc: subprocess.Popen) -> None:
            done = 0
            while proc.poll() is None:
                if w.ps.process.poll() is not None:  # killed after a committed write
                    done += 1
                    w.counters["sandbox killed"] += 1
                    time.sleep(rng.uniform(0.0, 2.0))
                    w.restart_powerschool()
                    w.raw = RawPowerSchool(w.ps.url)
                    if done < kills:
                        w.arm_kill(seed + done, rng.randint(3, 25))
                time.sleep(0.05)

        run_id, runs, tries = airflow_sync(home, world, budget=args.budget_dags, first_monitor=monitor,
                                           every_monitor=monitor)
        out.attempts, out.task_tries = runs, tries
        return _finish(out, world, run_id)
    finally:
        world.close()


def run_airflow_kill(sc: Scenario, work: Path, seed: int, args: argparse.Namespace, home: AirflowHome) -> Outcome:
    """SIGKILL to the whole `airflow dags test` process group while apply writes; rerun with retry_run_id."""
    out = Outcome(sc.name, seed, "airflow")
    world = World(work, args.students, seed)
    rng = random.Random(seed)
    try:
        threshold = rng.randint(5, 30)

        def monitor(w: World, proc: subprocess.Popen) -> None:
            if wait_until(proc, lambda: _ledger_size(w) >= threshold, interval=0.02):
                time.sleep(rng.uniform(0, 0.3))
                os.killpg(proc.pid, signal.SIGKILL)
                w.counters["airflow killed"] += 1

        run_id, runs, tries = airflow_sync(home, world, budget=args.budget_dags, first_monitor=monitor)
        out.attempts, out.task_tries = runs, tries
        out.notes.append(f"dags test SIGKILLed at ledger row ~{threshold}" if world.counters["airflow killed"]
                         else "apply ended before the kill")
        return _finish(out, world, run_id)
    finally:
        world.close()


def run_store_restart(sc: Scenario, work: Path, seed: int, args: argparse.Namespace, home: AirflowHome) -> Outcome:
    """The writeback store is PostgreSQL; it is stopped and started while the run waits for review (between
    build_plan and apply), and again in the middle of apply."""
    out = Outcome(sc.name, seed, "airflow")
    pg = PgServer()
    pg.start()
    world = None
    rng = random.Random(seed)
    try:
        world = World(work, args.students, seed, store_url=pg.url)
        gate = threading.Event()
        threshold = rng.randint(5, 30)

        def restart(w: World, down: float) -> None:
            pg.stop("fast")
            time.sleep(down)
            pg.start()
            w.counters["store restarts"] += 1

        def monitor(w: World, proc: subprocess.Popen) -> None:
            try:
                if wait_until(proc, lambda: _latest_run(w) is not None and _latest_run(w).status == "awaiting_review"):
                    restart(w, 1.0)  # between tasks: the plan is built, nobody has reviewed yet
                gate.set()
                if wait_until(proc, lambda: _ledger_size(w) >= threshold, interval=0.02):
                    restart(w, 2.0)  # mid-apply: ledger writes fail until it is back
            finally:
                gate.set()

        run_id, runs, tries = airflow_sync(home, world, budget=args.budget_dags, first_monitor=monitor,
                                           reviewer_gate=gate)
        out.attempts, out.task_tries = runs, tries
        return _finish(out, world, run_id)
    finally:
        if world:
            world.close()
        pg.destroy()


SCENARIOS = [
    Scenario("5xx 5%", "stage", run_stage_faults, settings={"error_rate": 0.05}),
    Scenario("5xx 10%", "stage", run_stage_faults, settings={"error_rate": 0.10}),
    Scenario("5xx 20%", "stage", run_stage_faults, settings={"error_rate": 0.20}),
    Scenario("429 bursts", "stage", run_stage_faults, settings={"rearm": "burst", "burst": 3, "rearm_every": 0.5}),
    Scenario("latency 30ms + 5xx 5%", "stage", run_stage_faults, settings={"latency_ms": 30, "error_rate": 0.05}),
    Scenario("dropped connections", "stage", run_stage_faults,
             settings={"rearm": "drop", "drop_gap": 4, "rearm_every": 0.05}),
    Scenario("dropped connections, client retries 1", "stage", run_stage_faults,
             settings={"rearm": "drop", "drop_gap": 4, "rearm_every": 0.05, "client_retries": 1}),
    Scenario("changed before apply", "stage", run_stale, settings={"edits": 4}),
    Scenario("sandbox killed mid-write", "airflow", run_ps_kill, settings={"kills": 2}),
    Scenario("airflow SIGKILL mid-apply", "airflow", run_airflow_kill),
    Scenario("store restart (postgres)", "airflow", run_store_restart),
]


# ---------------------------------------------------------------- campaign


def run_campaign(args: argparse.Namespace, scenarios: list[Scenario] | None = None,
                 log: Callable[[str], None] = print) -> list[Outcome]:
    scenarios = scenarios or [s for s in SCENARIOS if not args.only or s.name in args.only]
    work = Path(args.work or tempfile.mkdtemp(prefix="wb-faults-")).resolve()
    work.mkdir(parents=True, exist_ok=True)
    home = AirflowHome(work / "airflow-home") if any(s.path == "airflow" for s in scenarios) else None
    outcomes = []
    for sc in scenarios:
        for seed in range(args.first_seed, args.first_seed + args.seeds):
            started = time.monotonic()
            slug = "".join(ch if ch.isalnum() else "_" for ch in sc.name.replace("%", "pct"))
            run_dir = work / f"{slug}-{seed}"
            shutil.rmtree(run_dir, ignore_errors=True)  # a fresh district, sandbox db and store
            try:
                out = sc.run(sc, run_dir, seed, args, home)
            except Exception as exc:  # noqa: BLE001 - a crashed harness run is reported, the campaign goes on
                out = Outcome(sc.name, seed, sc.path, error=f"{type(exc).__name__}: {exc}")
            out.seconds = time.monotonic() - started
            outcomes.append(out)
            log(f"  {sc.name} seed {seed}: {len(out.violations)} violation(s), {out.writes} writes, "
                f"{out.attempts} attempt(s), status {out.status or '-'} {out.error} ({out.seconds:.0f}s)")
            for v in out.violations[:20]:
                log(f"      {v}")
    if not args.keep:
        shutil.rmtree(work, ignore_errors=True)
    return outcomes


def table(outcomes: list[Outcome]) -> str:
    rows = ["| scenario | path | runs | invariant violations | writes | retries/attempts | notes |",
            "| --- | --- | --- | --- | --- | --- | --- |"]
    by: dict[str, list[Outcome]] = {}
    for o in outcomes:
        by.setdefault(o.scenario, []).append(o)
    for name, outs in by.items():
        path = outs[0].path
        violations = sum(len(o.violations) for o in outs)
        errors = [o for o in outs if o.error]
        writes = "/".join(str(o.writes) for o in outs)
        if path == "airflow":
            attempts = (f"DAG runs {'/'.join(str(o.attempts) for o in outs)}; apply+cleanup task tries "
                        f"{'/'.join(str(o.task_tries) for o in outs)}")
        else:
            attempts = "apply attempts " + "/".join(f"{o.attempts}" for o in outs)
        faults = Counter()
        for o in outs:
            faults.update(o.fault_counters)
        bits = [f"{k}={v}" for k, v in sorted(faults.items()) if v and k not in {"task tries"}]
        notes = sorted({n for o in outs for n in o.notes})
        statuses = Counter(o.status for o in outs if o.status)
        text = "; ".join([*(f"run {k}×{v}" for k, v in statuses.items()), *bits, *notes,
                          *(f"seed {o.seed} harness error: {o.error}" for o in errors)])
        rows.append(f"| {name} | {path} | {len(outs)} | {violations}{' + errors' if errors else ''} | {writes} | "
                    f"{attempts} | {text} |")
    return "\n".join(rows)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--students", type=int, default=120)
    p.add_argument("--seeds", type=int, default=2, help="seeds per scenario")
    p.add_argument("--first-seed", type=int, default=1)
    p.add_argument("--budget", type=int, default=8, help="stage path: apply attempts per run")
    p.add_argument("--budget-dags", type=int, default=3, help="airflow path: DAG runs per sync")
    p.add_argument("--only", nargs="*", default=[], help="scenario names to run (default all)")
    p.add_argument("--work", help="work directory (default a temporary one)")
    p.add_argument("--keep", action="store_true", help="keep the work directory (logs, dbs)")
    p.add_argument("--list", action="store_true", help="list the scenarios and exit")
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    import logging

    logging.disable(logging.WARNING)  # the stages' retry warnings and GX's chatter; the table is the output
    args = parse_args(argv)
    if args.list:
        for s in SCENARIOS:
            print(f"{s.name} ({s.path})")
        return 0
    started = time.monotonic()
    print(f"fault campaign: {args.students} students, seeds {args.first_seed}..{args.first_seed + args.seeds - 1}")
    outcomes = run_campaign(args)
    print()
    print(table(outcomes))
    print(f"\ntook {time.monotonic() - started:.0f} s")
    bad = sum(len(o.violations) for o in outcomes) + sum(1 for o in outcomes if o.error)
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
