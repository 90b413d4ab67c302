"""Match a run's forms against the snapshot kept as rows, as the DAG does (blocking over pages of persons,
then each batch of forms against the part of the snapshot it needs), beside matching against the whole
snapshot loaded into memory (what the DAG did before), and print both ways' time and peak memory and
whether the matches are identical.

    .venv/bin/python bench/match_stored.py [--students 50000] [--share 0.2] [--seed 1]

The PowerSchool sandbox runs in this process's threads only to be extracted from, before anything is
measured. Times are untraced; each peak is measured in a separate pass with tracemalloc.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
import tracemalloc
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "plugins")]

from sandbox.generate import build_all  # noqa: E402
from sandbox.powerschool.server import start_in_thread  # noqa: E402
from writeback.config import district as district_config  # noqa: E402
from writeback.domain.matching import build_index, match_records  # noqa: E402
from writeback.domain.models import Submission  # noqa: E402
from writeback.pipeline import stages  # noqa: E402
from writeback.pipeline.matching_pages import PERSON_PAGE, RECORD_BATCH, match_stored  # noqa: E402
from writeback.powerschool import PowerSchoolClient  # noqa: E402
from writeback.store import Store  # noqa: E402


def _timed(work):
    started = time.perf_counter()
    result = work()
    return result, time.perf_counter() - started


def _peak_mib(work) -> float:
    tracemalloc.start()
    try:
        work()
        return tracemalloc.get_traced_memory()[1] / 2**20
    finally:
        tracemalloc.stop()


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--students", type=int, default=50000)
    p.add_argument("--share", type=float, default=0.2, help="share of students with a submission")
    p.add_argument("--seed", type=int, default=1)
    args = p.parse_args()
    district, submissions, _ = build_all(args.students, args.seed, args.share)
    server = start_in_thread(district, port=0, client_id="c", client_secret="s")
    with tempfile.TemporaryDirectory() as tmp:
        store = Store(f"sqlite:///{Path(tmp) / 'store.db'}", migrate=True)
        try:
            store.ensure_run("demo:bench", "demo")
            store.save_submissions("demo:bench", [Submission.model_validate(s) for s in submissions])
            ctx = stages.RunContext(district=district_config("demo"), store=store, run_id="demo:bench")
            stages.extract_snapshot(ctx, PowerSchoolClient(server.url, "c", "s"))
            stages.check_quality(ctx)
        finally:
            server.stop()
        records = ctx.records()
        contacts = sum(len(r.contacts) for r in records)

        def paged():
            return match_stored(records, ctx.stored, ctx.today, {}, ctx.region, ctx.district.matching)

        def whole():
            snapshot = ctx.snapshot()
            return match_records(records, snapshot, ctx.today, {}, ctx.region, build_index(snapshot, ctx.region),
                                 thresholds=ctx.district.matching)

        got, paged_s = _timed(paged)
        expected, whole_s = _timed(whole)
        paged_mib, whole_mib = _peak_mib(paged), _peak_mib(whole)
        store.dispose()
    print(f"\nMatching {len(records)} forms ({contacts} contacts) against {args.students} students' snapshot "
          f"(seed {args.seed}; pages of {PERSON_PAGE} persons, batches of {RECORD_BATCH} forms)\n")
    print("| way | seconds | peak MiB |")
    print("|---|---:|---:|")
    print(f"| from the stored rows, in pages and batches (the DAG) | {paged_s:.1f} | {paged_mib:.1f} |")
    print(f"| the whole snapshot loaded, then matched | {whole_s:.1f} | {whole_mib:.1f} |")
    print(f"\ntime paged / whole: {paged_s / whole_s:.2f}; peak whole / paged: {whole_mib / paged_mib:.1f}x; "
          f"matches identical: {'yes' if got == expected else 'NO'}")
    if got != expected:
        sys.exit(1)


if __name__ == "__main__":
    main()
