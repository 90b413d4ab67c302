"""End-to-end benchmark: a generated district through the real DAG (`airflow dags test`) with the
scripted reviewer, at several sizes. Prints, per size: time per task, HTTP calls per task (PowerSchool;
SchoolEngage for extract_submissions), calls per stage vs the minimum, the writes PowerSchool received
vs the minimum the approved plan needs (they must be equal), peak memory per task (tracemalloc inside
each task), and the share of apply time spent waiting on the client's rate limiter. With several
sizes, a growth table per task (seconds and peak memory) across the sizes.

    .venv/bin/python bench/e2e.py [--sizes 5000 20000 50000] [--submissions 10000] [--rps 0]

`--submissions` caps the form submissions (the generator's share is set to reach it, at most every
student); `--rps` sets the PowerSchool connection's requests_per_second (0 = no client-side limit).
`--json FILE` also writes the raw results. A size may be `STUDENTS:SUBMISSIONS` (e.g. `50000:10000`).
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import math
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "plugins")]

from sandbox import processes  # noqa: E402
from sandbox.generate import write_files  # noqa: E402
from sandbox.reviewer import ReviewerThread  # noqa: E402
from writeback.store import Store  # noqa: E402

SE_PER_PAGE = 100  # the SchoolEngage client's page (the sandbox's maximum)

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
        store = Store(store_url, migrate=True)
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
        received = _received_writes(ps.url)
        minimum = minimum_writes(store, run.id)
        with_detail = {d["link_id"] for d in district["details"]}
        query_rows = [len(district[k]) for k in ("students", "persons", "emails", "phones", "addresses",
                                                   "portal_accounts")]
        # the links query has a row per link and detail (LEFT JOIN): a link without details is one row
        query_rows.append(len(district["details"])
                          + sum(1 for lk in district["links"] if lk["id"] not in with_detail))
        rows = sum(query_rows)
        return {"students": students, "submissions": len(truth["submissions"]), "status": run.status,
                "received": received, "minimum": minimum, "cap": submissions, "rps": rps,
                "se_min_calls": max(1, math.ceil(len(truth["submissions"]) / SE_PER_PAGE)),
                "seconds": round(total, 1), "tasks": run.counts.get("tasks", {}), "report": report,
                # a page shorter than the page size ends a query: rows // size + 1 pages each
                "snapshot_min_calls": sum(n // PAGE + 1 for n in query_rows),
                "snapshot_rows": rows}
    finally:
        ps.stop()
        se.stop()


def _received_writes(url: str) -> dict[str, int]:
    """Writes the PowerSchool sandbox committed (2xx), by kind of path, and its request count."""
    import requests

    log = requests.get(f"{url}/_sandbox/writes", timeout=60).json()
    stats = requests.get(f"{url}/_sandbox/stats", timeout=60).json()
    ok = [w for w in log if 200 <= int(w.get("status") or 0) < 300]
    return {"writes": len(ok), "requests": sum((stats.get("requests") or {}).values()),
            "refused": len(log) - len(ok)}


def _lis(seq: list[int]) -> int:
    import bisect

    tails: list[int] = []
    for x in seq:
        i = bisect.bisect_left(tails, x)
        tails[i:i + 1] = [x]
    return len(tails)


def minimum_writes(store: Store, run_id: str) -> dict[str, int]:
    """The fewest HTTP writes the approved plan needs: student updates batched `student_batch_size` to a
    request within each apply task, one request per other operation (but those a new contact's create
    carries: its emails, phones, addresses and links go in with the create), and per contact reorder the links
    that are not in the longest run already in the wanted order (one move each)."""
    from writeback.config import district as district_config
    from writeback.pipeline import stages

    config = district_config("demo").model_copy(update={"store_url": store.url})
    run = store.get_run(run_id)
    ctx = stages.RunContext(district=config, store=store, run_id=run_id, today=run.created_at.date())
    ops, _, _ = stages.approved_ops(ctx)
    batches = (store.get_data(run_id, "batches") or {"batches": []})["batches"] or [[]]
    batch_of = {n: i for i, numbers in enumerate(batches) for n in numbers}
    size = config.apply.student_batch_size
    students = Counter(batch_of.get(op.student_number, 0) for op in ops if op.kind == "student_update")
    from writeback.pipeline.create_evidence import carried_ops

    carried = {op.key for group in carried_ops(ops).values() for op in group}  # written with their create
    apply_min = sum(math.ceil(n / size) for n in students.values()) + sum(
        1 for op in ops if op.stage == "apply" and op.kind != "student_update" and op.key not in carried)
    ledger = store.ledger(run_id)
    created = {k.removeprefix("create:"): r.result_id for k, r in ledger.items() if k.startswith("create:")}
    prior = {a.op_key: (a.before or {}).get("_prior", {}).get("order") for a in store.audit_rows(run_id)
             if a.kind == "contact_order"}
    moves = 0
    for op in ops:
        if op.kind != "contact_order" or not prior.get(op.key):
            continue
        wanted = [int(r[2:]) if r.startswith("p:") else created.get(r[4:]) for r in op.values.get("order", [])]
        place = {pid: i for i, pid in enumerate(wanted)}
        before = [place[pid] for _, pid, _ in prior[op.key] if pid in place]
        moves += len(before) - _lis(before)
    cleanup_min = sum(1 for op in ops if op.stage == "cleanup" and op.kind != "contact_order") + moves
    return {"apply": apply_min, "cleanup": cleanup_min, "total": apply_min + cleanup_min,
            "operations": len(ops), "order_ops": sum(1 for op in ops if op.kind == "contact_order"),
            "order_moves_min": moves}


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
    w, mn, rc = rep["writes"], r["minimum"], r["received"]

    def stage_sum(prefix: str, key: str) -> float:
        return sum(m.get(key, 0) or 0 for k, m in tasks.items() if k == prefix or k.startswith(prefix + "["))

    apply_calls, apply_writes = stage_sum("apply", "http_calls"), stage_sum("apply", "http_writes")
    clean_calls, clean_writes = stage_sum("cleanup", "http_calls"), stage_sum("cleanup", "http_writes")
    sub = tasks.get("extract_submissions", {})
    print("\n| stage | HTTP calls | minimum | calls / minimum | what the minimum is |")
    print("|---|---:|---:|---:|---|")
    print(f"| extract_submissions (SchoolEngage) | {sub.get('http_calls', '')} | {r['se_min_calls']} | "
          f"{_ratio(sub.get('http_calls'), r['se_min_calls'])} | pages of {SE_PER_PAGE} |")
    print(f"| extract_snapshot | {snap.get('http_calls')} | {r['snapshot_min_calls'] + 2} | "
          f"{_ratio(snap.get('http_calls'), r['snapshot_min_calls'] + 2)} | rows // page size + 1 per "
          "query (the short page ends it), +1 metadata, +1 token |")
    print(f"| apply (all batches) | {apply_calls} | {mn['apply']} | {_ratio(apply_calls, mn['apply'])} | "
          "the writes alone (each write also re-reads its target and reads it back) |")
    print(f"| cleanup | {clean_calls} | {mn['cleanup']} | {_ratio(clean_calls, mn['cleanup'])} | "
          "the writes alone (each reorder reads the order before and after) |")
    print(f"\nwrites: PowerSchool received {rc['writes']} (client counted {apply_writes + clean_writes}: apply "
          f"{apply_writes}, cleanup {clean_writes}); the approved plan's minimum is {mn['total']} (apply "
          f"{mn['apply']}, cleanup {mn['cleanup']}, of which {mn['order_moves_min']} link moves for "
          f"{mn['order_ops']} reorders) — {'EQUAL' if rc['writes'] == mn['total'] else 'NOT EQUAL'}; "
          f"{mn['operations']} operations approved, {w['operations_done']} done, {w['failed']} failed, "
          f"{w['stale']} stale; {rc['refused']} writes refused by PowerSchool")
    from writeback.config import district as district_config

    workers = district_config("demo").apply.concurrency  # the waits of a task's workers add up
    rate = apply_calls / apply_seconds
    limit = f", {100 * rate / r['rps']:.0f} % of the limit of {r['rps']:g}/s" if r.get("rps") else ", no client limit"
    print(f"apply: the workers waited {waited:.1f} s on the rate limiter in {apply_seconds:.1f} s of apply tasks "
          f"({100 * waited / (apply_seconds * workers):.1f} % of {workers} workers' time); {rate:.1f} calls/s{limit}")


def _ratio(a, b) -> str:
    return f"{a / b:.2f}" if a and b else ""


def print_growth(results: list[dict]) -> None:
    """Per task: seconds and peak MiB at each size, and the growth exponent from the smallest to the largest
    (1.0 = linear in students; 0 = flat). Mapped apply tasks are summed (seconds) / maxed (MiB)."""
    def per_task(r: dict) -> dict[str, tuple[float, float]]:
        out: dict[str, list[float]] = {}
        for name, m in r["tasks"].items():
            key = name.split("[")[0] + ("[*]" if "[" in name else "")
            sec, mib = out.setdefault(key, [0.0, 0.0])
            out[key] = [sec + (m.get("seconds") or 0), max(mib, m.get("peak_mib") or 0)]
        return {k: (v[0], v[1]) for k, v in out.items()}

    rows = [per_task(r) for r in results]
    names = sorted(set().union(*rows))
    sizes = [r["students"] for r in results]
    head = " | ".join(f"{n} s" for n in sizes) + " | " + " | ".join(f"{n} MiB" for n in sizes)
    print(f"\n| task | {head} | time exponent | memory exponent |")
    print("|---|" + "---:|" * (2 * len(sizes) + 2))
    span = math.log(sizes[-1] / sizes[0]) if sizes[-1] != sizes[0] else 0

    def exp(a: float, b: float) -> str:
        return f"{math.log(b / a) / span:.2f}" if span and a > 0 and b > 0 else ""

    for name in names:
        vals = [row.get(name, (0.0, 0.0)) for row in rows]
        cells = " | ".join(f"{v[0]:.1f}" for v in vals) + " | " + " | ".join(f"{v[1]:.1f}" for v in vals)
        print(f"| {name} | {cells} | {exp(vals[0][0], vals[-1][0])} | {exp(vals[0][1], vals[-1][1])} |")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--sizes", nargs="+", default=["5000", "20000", "50000"],
                   help="students per run; STUDENTS:SUBMISSIONS sets a run's own submission cap")
    p.add_argument("--submissions", type=int, default=10000)
    p.add_argument("--rps", type=float, default=0.0)
    p.add_argument("--json", type=Path, default=None, help="also write the raw results here")
    args = p.parse_args()
    results = []
    for size in args.sizes:
        n, _, subs = size.partition(":")
        with tempfile.TemporaryDirectory() as tmp:
            results.append(run_size(int(n), int(subs or args.submissions), args.rps, Path(tmp)))
        print_result(results[-1])
        if args.json:
            args.json.write_text(json.dumps(results, indent=1, default=str))
        sys.stdout.flush()
    if len(results) > 1:
        print("\n| students | submissions | wall s | s per submission |")
        print("|---:|---:|---:|---:|")
        for r in results:
            print(f"| {r['students']} | {r['submissions']} | {r['seconds']} | "
                  f"{r['seconds'] / max(1, r['submissions']):.3f} |")
        for cap in sorted({r["cap"] for r in results}):
            same = [r for r in results if r["cap"] == cap]
            if len(same) > 1:
                print(f"\nGrowth with district size at (up to) {cap} submissions:")
                print_growth(same)


if __name__ == "__main__":
    main()
