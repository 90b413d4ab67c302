"""`make demo`: one full writeback sync of a generated sandbox district through the real Airflow DAG.

    python -m sandbox.demo [--students 300] [--seed 7] [--work .demo] [--keep-running]

Starts both sandboxes on loopback, runs `airflow dags test writeback_demo` on embedded defaults
(SQLite for Airflow and for the writeback store) while a scripted reviewer decides the review items
from the generator's ground truth, prints the run's report, and stops what it started.
With --keep-running (or KEEP_RUNNING=1) it starts `airflow standalone` instead, triggers one run and
leaves everything up for a person to review; Ctrl-C stops it all.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

from . import processes
from .reviewer import ReviewerThread

DISTRICT = "demo"


def generate(work: Path, students: int, seed: int) -> Path:
    out = work / "district"
    if not (out / "district.json").exists():
        # every form the demo district maps (include/districts/demo.yaml), so each layout, section, rule and
        # write policy is exercised
        subprocess.run([sys.executable, "-m", "sandbox.generate", "--students", str(students), "--seed", str(seed),
                        "--out", str(out), "--forms", "all"], cwd=processes.ROOT, check=True)
    return out


def run_sync(env: dict[str, str], work: Path, truth: dict, store_url: str) -> tuple[str, int]:
    """Run one DAG run to the end with the scripted reviewer; returns the store's run id and reviews."""
    from writeback.store import Store

    store = Store(store_url, migrate=True)
    reviewer = ReviewerThread(store, DISTRICT, truth)
    reviewer.start()
    logical = dt.datetime.now(dt.UTC).replace(microsecond=0).isoformat()
    try:
        processes.airflow(env, "dags", "test", f"writeback_{DISTRICT}", logical, log_path=work / "logs" / "dag.log")
    finally:
        reviewer.stop()
    if reviewer.errors:
        print(f"scripted reviewer problems: {reviewer.errors[:3]}", file=sys.stderr)
    run = store.list_runs(DISTRICT, limit=1)[0]
    status = run.status
    store.dispose()
    if status != "complete":
        raise SystemExit(f"run {run.id} ended as {status!r}; see {work / 'logs' / 'dag.log'}")
    return run.id, reviewer.decided


def keep_running(env: dict[str, str], work: Path, ps, se) -> None:
    api = subprocess.Popen([str(Path(sys.executable).parent / "airflow"), "standalone"], env=env, cwd=processes.ROOT,
                           stdout=open(work / "logs" / "standalone.log", "w"), stderr=subprocess.STDOUT)
    print("Airflow standalone is starting on http://127.0.0.1:8080 (user admin; the password is in "
          f"{work / 'airflow' / 'simple_auth_manager_passwords.json.generated'})")
    print(f"PowerSchool sandbox: {ps.url}   SchoolEngage sandbox: {se.url}")
    print(f"Trigger the DAG writeback_{DISTRICT} in the UI; review with "
          f"`writeback --store {env['WRITEBACK_STORE_URL']} review list --run <run>`. Ctrl-C stops everything.")
    try:
        api.wait()
    except KeyboardInterrupt:
        api.terminate()
        api.wait(timeout=30)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--students", type=int, default=int(os.environ.get("DEMO_STUDENTS", 300)))
    p.add_argument("--seed", type=int, default=int(os.environ.get("DEMO_SEED", 7)))
    p.add_argument("--work", type=Path, default=Path(os.environ.get("DEMO_WORK", processes.ROOT / ".demo")))
    p.add_argument("--keep-running", action="store_true", default=os.environ.get("KEEP_RUNNING") == "1")
    args = p.parse_args(argv)

    work = args.work.resolve()
    if work.exists():
        shutil.rmtree(work)  # every demo starts from a fresh district, store and Airflow database
    (work / "logs").mkdir(parents=True)
    started = time.monotonic()
    district_dir = generate(work, args.students, args.seed)
    truth = json.loads((district_dir / "truth.json").read_text())
    ps = processes.start_powerschool(district_dir / "district.json", work / "logs", db_path=work / "powerschool.db")
    se = processes.start_schoolengage(district_dir / "submissions.json", work / "logs")
    try:
        store_url = f"sqlite:///{work / 'store.db'}"
        env = processes.airflow_env(work, ps.url, se.url, store_url, DISTRICT)
        processes.prepare_airflow(env, work / "logs" / "airflow-setup.log")
        if args.keep_running:
            keep_running(env, work, ps, se)
            return 0
        run_id, reviewed = run_sync(env, work, truth, store_url)
        from writeback.pipeline.report import format_report
        from writeback.store import Store

        store = Store(store_url)
        report = store.get_data(run_id, "report")
        print(format_report(report))
        print(f"  reviewed by the scripted reviewer: {reviewed} item(s)")
        print(f"  sandbox writes received: {_sandbox_writes(ps.url)}")
        print(f"  took {time.monotonic() - started:.0f} s; logs in {work / 'logs'}")
        (work / "report.json").write_text(json.dumps(report, indent=2))
        return 0
    finally:
        ps.stop()
        se.stop()


def _sandbox_writes(url: str) -> int:
    import requests

    return int(requests.get(f"{url}/_sandbox/stats", timeout=10).json()["writes"])


if __name__ == "__main__":
    sys.exit(main())
