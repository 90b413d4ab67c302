"""Apply benchmark: a district where every submitting student changed, applied at a configured rate.

Prints the writes PowerSchool received vs the minimum the approved plan needs (they must be equal),
the request rate achieved vs the connection's requests_per_second (target >= 90 %), and total time.

    .venv/bin/python bench/apply.py [--students 20000] [--changed 10000] [--rps 40]

The sandbox runs as its own process with a throttle just under the client's rate, so a client that
went faster would see 429s (counted and printed).
"""

from __future__ import annotations

import argparse
import copy
import json
import math
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "plugins")]

import requests  # noqa: E402

from sandbox import processes  # noqa: E402
from sandbox.generate import write_files  # noqa: E402
from sandbox.reviewer import decide_pending  # noqa: E402
from writeback.config import district as district_config  # noqa: E402
from writeback.domain.models import Submission  # noqa: E402
from writeback.pipeline import stages  # noqa: E402
from writeback.powerschool import PowerSchoolClient  # noqa: E402
from writeback.store import Store  # noqa: E402


def minimum_writes(ops, batch_size: int) -> int:
    """HTTP writes the approved operations need at the least: student updates batched, one per other op but
    those a new contact's create carries (its emails, phones, addresses and links go in with it)."""
    from writeback.pipeline.create_evidence import carried_ops

    carried = {op.key for group in carried_ops(ops).values() for op in group}  # written with their create
    students = sum(1 for op in ops if op.kind == "student_update")
    others = sum(1 for op in ops if op.kind not in ("student_update", "contact_order") and op.key not in carried)
    return math.ceil(students / batch_size) + others


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--students", type=int, default=20000)
    p.add_argument("--changed", type=int, default=10000)
    p.add_argument("--rps", type=float, default=40.0)
    p.add_argument("--seed", type=int, default=3)
    args = p.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        write_files(work / "d", args.students, args.seed, min(1.0, args.changed / args.students))
        subs = json.loads((work / "d" / "submissions.json").read_text())
        truth = json.loads((work / "d" / "truth.json").read_text())
        changed = []
        for s in subs:  # every submitting student changed something: a new street number
            s = copy.deepcopy(s)
            street = s["fields"].get("home_street") or "1 Main St"
            s["fields"]["home_street"] = "9" + street
            changed.append(Submission.model_validate(s))
        interval_ms = int(1000 / args.rps * 0.8)  # the server throttle, with headroom under the client rate
        ps = processes.start_powerschool(work / "d" / "district.json", work / "logs",
                                         extra=["--min-interval-ms", str(interval_ms)])
        try:
            store = Store(f"sqlite:///{work / 'store.db'}", migrate=True)
            config = district_config("demo").model_copy(deep=True)
            config.quality.hold_replace_share = 1.0  # a deliberate mass change: no batch hold here
            ctx = stages.RunContext(district=config, store=store, run_id="demo:bench-apply")
            store.ensure_run(ctx.run_id, "demo")
            store.save_submissions(ctx.run_id, changed)
            reader = PowerSchoolClient(ps.url, processes.PS_CLIENT_ID, processes.PS_CLIENT_SECRET,
                                       requests_per_second=args.rps)
            stages.extract_snapshot(ctx, reader)
            stages.check_quality(ctx)
            stages.match_contacts(ctx)
            stages.build_run_plan(ctx)
            decide_pending(store, ctx.run_id, truth)
            stages.approval_state(ctx)
            ops, _, _ = stages.approved_ops(ctx)
            apply_ops = [op for op in ops if op.stage == "apply"]
            before = requests.get(f"{ps.url}/_sandbox/stats", timeout=30).json()
            client = PowerSchoolClient(ps.url, processes.PS_CLIENT_ID, processes.PS_CLIENT_SECRET,
                                       requests_per_second=args.rps)
            started = time.monotonic()
            counts = stages.apply_plan(ctx, client)
            elapsed = time.monotonic() - started
            after = requests.get(f"{ps.url}/_sandbox/stats", timeout=30).json()
        finally:
            ps.stop()
    received = after["writes"] - before["writes"]
    minimum = minimum_writes(apply_ops, config.apply.student_batch_size)
    calls = client.total_calls
    rate = calls / elapsed
    throttled = client.stats.get("429", 0)
    print(f"\nApply: {args.changed} changed students of {args.students}, client limit {args.rps:g} req/s, "
          f"server throttle {interval_ms} ms\n")
    print("| operations | writes received | minimum writes | equal | calls | seconds | calls/s | of limit |")
    print("|---:|---:|---:|:---:|---:|---:|---:|---:|")
    print(f"| {len(apply_ops)} | {received} | {minimum} | {'yes' if received == minimum else 'NO'} | {calls} | "
          f"{elapsed:.1f} | {rate:.1f} | {100 * rate / args.rps:.0f} % |")
    print(f"\nfailed {counts['failed']}, stale {counts['stale']}, rate-limit wait {client.rate_limit_wait:.1f} s, "
          f"429s {throttled}; reads are re-reads before writes and read-backs after them (safety checks)")


if __name__ == "__main__":
    main()
