"""Extract a district snapshot through the named PowerQueries, as the DAG does (page by page into the
store's snapshot rows), and print: HTTP calls made vs the minimum (rows / max page size), time, and peak
memory, at several sizes; beside it, the peak of reading the same snapshot whole into memory (what the
DAG did before the snapshot was kept as rows).

    .venv/bin/python bench/snapshot.py [--sizes 5000 20000 50000] [--seed 1] [--page-size 100]

The sandbox runs as its own process on loopback; memory is measured in this (the client's) process
with tracemalloc, so the sandbox's own memory does not count.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import tempfile
import time
import tracemalloc
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "plugins")]

from sandbox import processes  # noqa: E402
from sandbox.generate import write_files  # noqa: E402
from writeback.pipeline.snapshot import ENTITIES, QUERY_PREFIX, read_snapshot  # noqa: E402
from writeback.pipeline.stored_snapshot import save_snapshot  # noqa: E402
from writeback.powerschool import PowerSchoolClient  # noqa: E402
from writeback.store import Store  # noqa: E402


def _peak(work) -> int:
    tracemalloc.start()
    try:
        work()
        return tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


def measure(students: int, seed: int, page_size: int, work: Path) -> dict:
    out = work / f"d{students}"
    write_files(out, students, seed)
    ps = processes.start_powerschool(out / "district.json", work / "logs", extra=["--max-page-size", str(page_size)])
    try:
        client = PowerSchoolClient(ps.url, processes.PS_CLIENT_ID, processes.PS_CLIENT_SECRET)
        rows = {e: client.count_powerquery(QUERY_PREFIX + e) for e in ENTITIES}
        store = Store(f"sqlite:///{work / f'store{students}.db'}", migrate=True)
        store.ensure_run("bench", "bench")
        # time untraced (tracemalloc slows every allocation, and the two ways allocate differently), then
        # the peak of each traced
        client.reset_stats()
        started = time.perf_counter()
        read = save_snapshot(store, "bench", client)
        elapsed = time.perf_counter() - started
        calls = client.stats.get("powerquery", 0) or sum(v for k, v in client.stats.items() if "query" in k)
        all_calls = client.total_calls
        started = time.perf_counter()
        whole = read_snapshot(client)
        whole_seconds = time.perf_counter() - started
        assert len(whole.persons) == read["contacts"]
        del whole
        peak = _peak(lambda: save_snapshot(store, "bench", client))
        whole_peak = _peak(lambda: read_snapshot(client))
        store.dispose()
        minimum = sum(max(1, math.ceil(n / page_size)) for n in rows.values())
        return {"students": students, "rows": sum(rows.values()), "persons": read["contacts"],
                "calls": calls, "all_calls": all_calls, "minimum_calls": minimum,
                "seconds": round(elapsed, 2), "peak_mib": round(peak / 2**20, 1),
                "whole_peak_mib": round(whole_peak / 2**20, 1), "whole_seconds": round(whole_seconds, 2)}
    finally:
        ps.stop()


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--sizes", type=int, nargs="+", default=[5000, 20000, 50000])
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--page-size", type=int, default=100)
    args = p.parse_args()
    results = []
    with tempfile.TemporaryDirectory() as tmp:
        for n in args.sizes:
            results.append(measure(n, args.seed, args.page_size, Path(tmp)))
            print(json.dumps(results[-1]), file=sys.stderr)
    print(f"\nSnapshot extraction through PowerQueries (page size {args.page_size}, seed {args.seed})\n")
    print("| students | rows | query calls | minimum | calls/minimum | seconds (into the store) | seconds (read "
          "whole) | peak MiB (into the store) | peak MiB (read whole) | whole / store |")
    print("|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    for r in results:
        print(f"| {r['students']} | {r['rows']} | {r['calls']} | {r['minimum_calls']} | "
              f"{r['calls'] / r['minimum_calls']:.3f} | {r['seconds']} | {r['whole_seconds']} | {r['peak_mib']} | "
              f"{r['whole_peak_mib']} | {r['whole_peak_mib'] / r['peak_mib']:.1f}x |")
    if len(results) > 1:
        a, b = results[0], results[-1]
        slope = math.log(b["seconds"] / a["seconds"]) / math.log(b["rows"] / a["rows"])
        memory = math.log(b["peak_mib"] / a["peak_mib"]) / math.log(b["rows"] / a["rows"])
        print(f"\nfrom {a['students']} to {b['students']} students: time grows with rows^{slope:.2f}, the peak "
              f"memory of extraction into the store with rows^{memory:.2f} (0 = flat)")


if __name__ == "__main__":
    main()
