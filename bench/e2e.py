"""End-to-end benchmark: a generated district through the real DAG (`airflow dags test`) with the
scripted reviewer, at several sizes. Prints, per size: time per task, PowerSchool HTTP calls per task,
snapshot calls vs the minimum (rows / page size), writes made vs operations approved, peak memory per
task (tracemalloc inside each task), and the share of apply time spent waiting on the rate limiter.

    .venv/bin/python bench/e2e.py [--sizes 5000 20000 50000] [--submissions 10000] [--rps 0]

`--submissions` caps the form submissions (the generator's share is set to reach it); `--rps` sets the
PowerSchool connection's requests_per_second (0 = no client-side limit).
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import math
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "plugins")]

from sandbox import processes  # noqa: E402
from sandbox.generate import write_files  # noqa: E402
from sandbox.reviewer import ReviewerThread  # noqa: E402
from writeback.store import Store  # noqa: E402

PAGE = 100


def run_size(students: int, submissions: int, rps: float, work: Path) -> dict:
    share = min(1.0, submissions / students)
    write_files(work / "district", students, 1, share)
    truth = json.loads((work / "district" / "truth.json").read_text())
    district = json.loads((work / "district" / "district.json").read_text())
    ps = processes.start_powerschool(work / "district" / "district.json", work / "logs", db_path=work / "ps.db")
    se = processes.start_schoolengage(work / "district" / "submissions.json", work / "logs")
    try:
        store_url = f"sqlite:///{work / 'store.db'}"
        env = processes.airflow_env(work, ps.url, se.url, store_url)
        if rps:
            conn = json.loads(env["AIRFLOW_CONN_POWERSCHOOL_DEMO"])
            conn["extra"] = json.dumps({"requests_per_second": rps})
            env["AIRFLOW_CONN_POWERSCHOOL_DEMO"] = json.dumps(conn)
        env["WRITEBACK_TRACE_MEMORY"] = "1"
        processes.prepare_airflow(env, work / "logs" / "airflow-setup.log")
        store = Store(store_url)
        reviewer = ReviewerThread(store, "demo", truth, interval=1.0)
        reviewer.start()
        started = time.monotonic()
        try:
            processes.airflow(env, "dags", "test", "writeback_demo",
                              dt.datetime.now(dt.UTC).replace(microsecond=0).isoformat(),
                              log_path=work / "logs" / "dag.log", timeout=6 * 3600)
        finally:
            reviewer.stop()
        total = time.monotonic() - started
        run = store.list_runs("demo", limit=1)[0]
        report = store.get_data(run.id, "report")
        rows = (len(district["students"]) + len(district["persons"]) + len(district["emails"])
                + len(district["phones"]) + len(district["addresses"]) + len(district["details"])
                + len(district["portal_accounts"]))
        return {"students": students, "submissions": len(truth["submissions"]), "status": run.status,
                "seconds": round(total, 1), "tasks": run.counts.get("tasks", {}), "report": report,
                "snapshot_min_calls": sum(math.ceil(n / PAGE) for n in (
                    len(district["students"]), len(district["persons"]), len(district["emails"]),
                    len(district["phones"]), len(district["addresses"]), len(district["details"]),
                    len(district["portal_accounts"]))),
                "snapshot_rows": rows}
    finally:
        ps.stop()
        se.stop()


def print_result(r: dict) -> None:
    rep, tasks = r["report"], r["tasks"]
    print(f"\n### {r['students']} students, {r['submissions']} submissions — {r['status']}, {r['seconds']} s "
          "wall (dag test, one worker)\n")
    print("| task | seconds | PowerSchool calls | writes | peak MiB | rate-limit wait s |")
    print("|---|---:|---:|---:|---:|---:|")
    for name, m in sorted(tasks.items(), key=lambda kv: kv[0]):
        print(f"| {name} | {m.get('seconds', '')} | {m.get('http_calls', '')} | {m.get('http_writes', '')} | "
              f"{m.get('peak_mib', '')} | {m.get('rate_limit_wait', '')} |")
    snap = tasks.get("extract_snapshot", {})
    apply_tasks = [m for k, m in tasks.items() if k.startswith("apply[") or k == "apply"]
    apply_seconds = sum(m.get("seconds", 0) for m in apply_tasks) or 1
    waited = sum(m.get("rate_limit_wait", 0) for m in apply_tasks)
    w = rep["writes"]
    print(f"\nsnapshot: {snap.get('http_calls')} calls for {r['snapshot_rows']} rows; minimum "
          f"{r['snapshot_min_calls']} (+1 metadata, +1 token)")
    print(f"writes: {w['made']} HTTP writes for {w['operations_done']} operations done; "
          f"{w['failed']} failed, {w['stale']} stale")
    print(f"apply: {waited:.1f} s of {apply_seconds:.1f} s waiting on the rate limiter "
          f"({100 * waited / apply_seconds:.0f} %)")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--sizes", type=int, nargs="+", default=[5000, 20000, 50000])
    p.add_argument("--submissions", type=int, default=10000)
    p.add_argument("--rps", type=float, default=0.0)
    args = p.parse_args()
    results = []
    for n in args.sizes:
        with tempfile.TemporaryDirectory() as tmp:
            results.append(run_size(n, args.submissions, args.rps, Path(tmp)))
        print_result(results[-1])
        sys.stdout.flush()
    if len(results) > 1:
        print("\n| students | wall s | s per submission |")
        print("|---:|---:|---:|")
        for r in results:
            print(f"| {r['students']} | {r['seconds']} | {r['seconds'] / max(1, r['submissions']):.3f} |")


if __name__ == "__main__":
    main()
