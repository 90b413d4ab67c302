"""The `writeback` command.

  writeback mappings check FILE...           every problem of each mapping file, at once
  writeback review list --run RUN [--state pending] [--json]
  writeback review decide --run RUN --item KEY --choice CHOICE [--user NAME] [--end-date D] [--comment C]
  writeback runs [--district D]
  writeback report --run RUN [--json]
"""

from __future__ import annotations

import argparse
import getpass
import json
import sys
from typing import Any

from .domain.mapping import MappingError, load_mapping


def _store(args: argparse.Namespace):
    from .store import Store

    return Store(args.store)


def cmd_mappings_check(args: argparse.Namespace) -> int:
    failed = 0
    for path in args.files:
        try:
            mapping = load_mapping(path)
        except MappingError as exc:
            failed += 1
            print(f"{path}: {len(exc.problems)} problem(s)")
            for problem in exc.problems:
                print(f"  - {problem}")
            continue
        print(f"{path}: ok ({len(mapping.student)} student fields, {len(mapping.contact_slots())} contact slots)")
    return 1 if failed else 0


def cmd_review_list(args: argparse.Namespace) -> int:
    store = _store(args)
    rows = store.items(args.run, state=args.state, kind=args.kind)
    if args.json:
        print(json.dumps([_item_json(r) for r in rows], indent=2, default=str))
        return 0
    for r in rows:
        decided = f"{r.choice} by {r.decided_by}" if r.state == "decided" else "pending"
        print(f"{r.item_key}\t{r.kind}\t{r.student_number}\t{decided}\toptions: {', '.join(r.options)}")
    print(f"{len(rows)} item(s); {store.pending_count(args.run)} pending in run {args.run}")
    return 0


def _item_json(r: Any) -> dict[str, Any]:
    return {"key": r.item_key, "kind": r.kind, "submission_id": r.submission_id, "student_number": r.student_number,
            "slot": r.slot, "state": r.state, "options": r.options, "choice": r.choice, "version": r.version,
            "decided_by": r.decided_by, "payload": r.payload}


def cmd_review_decide(args: argparse.Namespace) -> int:
    from .store import DecisionConflict, InvalidDecision, ItemNotFound

    store = _store(args)
    data = {"end_date": args.end_date} if args.end_date else {}
    try:
        row = store.decide(args.run, args.item, args.choice, user=args.user, data=data, comment=args.comment,
                           expected_version=args.version)
    except (InvalidDecision, ItemNotFound, DecisionConflict) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(f"{row.item_key}: {row.choice} (by {row.decided_by}); {store.pending_count(args.run)} pending")
    return 0


def cmd_runs(args: argparse.Namespace) -> int:
    store = _store(args)
    for run in store.list_runs(args.district):
        print(f"{run.id}\t{run.status}\t{store.pending_count(run.id)} pending\t{run.created_at:%Y-%m-%d %H:%M}")
    return 0


def cmd_report(args: argparse.Namespace) -> int:
    from .pipeline.report import format_report

    report = _store(args).get_data(args.run, "report")
    if report is None:
        print(f"error: run {args.run} has no report yet", file=sys.stderr)
        return 2
    print(json.dumps(report, indent=2) if args.json else format_report(report))
    return 0


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="writeback", description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--store", help="store URL (default: WRITEBACK_STORE_URL or ~/.writeback/store.db)")
    sub = p.add_subparsers(dest="command", required=True)

    mappings = sub.add_parser("mappings", help="check mapping files").add_subparsers(dest="action", required=True)
    check = mappings.add_parser("check", help="report every problem in each file")
    check.add_argument("files", nargs="+")
    check.set_defaults(func=cmd_mappings_check)

    review = sub.add_parser("review", help="list and decide review items").add_subparsers(dest="action",
                                                                                          required=True)
    listing = review.add_parser("list")
    listing.add_argument("--run", required=True)
    listing.add_argument("--state", choices=["pending", "decided"])
    listing.add_argument("--kind")
    listing.add_argument("--json", action="store_true")
    listing.set_defaults(func=cmd_review_list)
    decide = review.add_parser("decide")
    decide.add_argument("--run", required=True)
    decide.add_argument("--item", required=True)
    decide.add_argument("--choice", required=True)
    decide.add_argument("--user", default=getpass.getuser())
    decide.add_argument("--end-date", help="for expire: YYYY-MM-DD")
    decide.add_argument("--comment", default="")
    decide.add_argument("--version", type=int, help="fail if the item changed since this version")
    decide.set_defaults(func=cmd_review_decide)

    runs = sub.add_parser("runs", help="list runs")
    runs.add_argument("--district")
    runs.set_defaults(func=cmd_runs)

    rep = sub.add_parser("report", help="print a run's report")
    rep.add_argument("--run", required=True)
    rep.add_argument("--json", action="store_true")
    rep.set_defaults(func=cmd_report)
    return p


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    return args.func(args)


if __name__ == "__main__":
    sys.exit(main())
