"""The `writeback` command.

  writeback store migrate [--district D] [--check]   create or upgrade the store's schema
  writeback mappings check (FILE... | --district D)   every problem of each mapping file, at once
  writeback mappings preview --district D --submission ID   one form through mapping, quality, matching and
                                             planning against the live PowerSchool: the plan, nothing written
  writeback review list --run RUN [--state pending] [--json]
  writeback review decide --run RUN --item KEY --choice CHOICE [--user NAME] [--end-date D] [--comment C]
  writeback runs [--district D]
  writeback plugin-xml (MAPPING.yaml... | --district D) [--name N] [--publisher P --email E] [--out plugin.xml]
  writeback doctor (--district NAME | --base-url URL --client-id ID --mapping FILE)
                                             (secret from POWERSCHOOL_CLIENT_SECRET with --base-url)
  writeback report --run RUN [--json] [--html OUT.html]
  writeback rollback --run RUN [--student NUMBER] [--dry-run] (--district NAME | --base-url URL --client-id ID)
                                             (secret from POWERSCHOOL_CLIENT_SECRET with --base-url)
  writeback match --incoming A.csv --existing B.csv --out M.csv [--region US] [--district D]
"""

from __future__ import annotations

import argparse
import contextlib
import getpass
import json
import os
import sys
from typing import Any

from .domain.mapping import MappingError, load_mapping


def _store_source(args: argparse.Namespace):
    """--store URL, else --store-conn-id, else the store of --district (if the command has one), else the
    deployment's (store/locate.py: never a silent local file)."""
    from .store.locate import StoreSource, store_source

    if args.store:
        return StoreSource(url=args.store)
    if args.store_conn_id:
        return StoreSource(conn_id=args.store_conn_id)
    name = getattr(args, "district", None)
    if name:
        from .config import district

        return store_source(district(name))
    return store_source(None)


def _store(args: argparse.Namespace):
    from .store.locate import open_store_at

    return open_store_at(_store_source(args))


def cmd_store_migrate(args: argparse.Namespace) -> int:
    """Create the store's schema or bring it to the package's revision (Alembic; safe to run again)."""
    from .store import Store
    from .store.migrate import head_revision, revision_of

    source = _store_source(args)
    store = Store(source.resolve())
    try:
        before = revision_of(store.engine)
        if args.check:
            ok = before == head_revision()
            print(f"{source.describe()}: at {before or 'none'}, package needs {head_revision()}"
                  + ("" if ok else " (run `writeback store migrate`)"))
            return 0 if ok else 1
        store = Store(source.resolve(), migrate=True)
        print(f"{source.describe()}: schema {before or 'none'} -> {revision_of(store.engine)}")
        return 0
    finally:
        store.dispose()


def _mapping_summary(mapping: Any) -> str:
    defs = mapping.slot_defs()
    if any(d.named for d in defs):
        contacts = "sections " + ", ".join(f"{d.name} at {d.position}" for d in defs)
    else:
        contacts = f"{len(defs)} contact slots"
    rules = len(mapping.contacts.combinations) if mapping.contacts else 0
    return (f"{len(mapping.student)} student fields, {contacts}"
            + (f", {rules} combination rule(s)" if rules else ""))


def cmd_mappings_check(args: argparse.Namespace) -> int:
    """Every problem of each mapping file at once; with --district, of every mapping of the district."""
    from pathlib import Path

    files = list(args.files)
    routes: dict[str, list[str]] = {}
    if args.district:
        from .config import district, include_dir

        try:
            config = district(args.district)
        except MappingError as exc:  # a broken district file (e.g. a key given twice)
            print(exc.report())
            return 1
        except KeyError as exc:
            print(f"error: {exc.args[0]}", file=sys.stderr)
            return 2
        for form, file in (config.forms or {"(every form)": config.mapping or ""}).items():
            routes.setdefault(str(include_dir() / "mappings" / file), []).append(form)
        files += list(routes)
    if not files:
        print("error: give mapping files or --district NAME", file=sys.stderr)
        return 2
    failed = 0
    for path in dict.fromkeys(files):
        forms = f" (form {', '.join(routes[path])})" if path in routes else ""
        try:
            mapping = load_mapping(Path(path))
        except MappingError as exc:
            failed += 1
            print(f"{path}{forms}: {len(exc.problems)} problem(s)")
            for problem in exc.problems:
                print(f"  - {problem}")
            continue
        print(f"{path}{forms}: ok ({_mapping_summary(mapping)})")
    return 1 if failed else 0


def cmd_mappings_preview(args: argparse.Namespace) -> int:
    """One submission through mapping, quality, matching and planning against the live snapshot: the plan
    and review items it would produce. Writes nothing (PowerSchool is only read; no run is stored)."""
    from .config import district
    from .pipeline.preview import district_clients, preview_submission, render_preview

    try:
        config = district(args.district)
        config.load_forms()
    except KeyError as exc:
        print(f"error: {exc.args[0]}", file=sys.stderr)
        return 2
    except MappingError as exc:
        print(exc.report(), file=sys.stderr)
        return 2
    try:
        with contextlib.redirect_stdout(sys.stderr):  # Airflow's hooks log where the plan is printed
            source, client = district_clients(config)
    except Exception as exc:  # a missing or invalid Airflow connection; messages carry no secret
        print(f"error: cannot build the district's clients from its Airflow connections: {type(exc).__name__}: "
              f"{exc}", file=sys.stderr)
        return 2
    from .store import StoreNotConfigured

    try:  # the district's store, for its remembered match decisions (read only)
        store = _store(args)
    except StoreNotConfigured:
        store = None
        print("note: no writeback store is configured: remembered match decisions are not applied",
              file=sys.stderr)
    from .powerschool.errors import PowerSchoolError
    from .quality import SnapshotIntegrityError
    from .sources.schoolengage import SchoolEngageError

    try:
        with contextlib.redirect_stdout(sys.stderr):
            result = preview_submission(config, args.submission, source, client, remembered_from=store)
    except (PowerSchoolError, SchoolEngageError, SnapshotIntegrityError) as exc:  # messages carry no secret
        print(f"error: the preview could not read what it needs: {exc}", file=sys.stderr)
        return 2
    finally:
        source.close()
        client.close()
        if store is not None:
            store.dispose()
    print(result.model_dump_json(indent=2) if args.json else render_preview(result))
    return 0 if result.found else 1


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

    store = _store(args)
    report = store.get_data(args.run, "report")
    if report is None:
        print(f"error: run {args.run} has no report yet", file=sys.stderr)
        return 2
    if getattr(args, "html", None):
        from .pipeline.report import render_html

        stored = store.get_data(args.run, "report_html")
        page = stored["html"] if stored and stored.get("html") else render_html(report)
        with open(args.html, "w", encoding="utf-8") as fh:
            fh.write(page)
        print(f"wrote {args.html}")
        return 0
    print(json.dumps(report, indent=2) if args.json else format_report(report))
    return 0


def _powerschool_client(args: argparse.Namespace):
    if args.district:
        from .config import district
        from .hooks.powerschool import PowerSchoolHook

        return PowerSchoolHook(district(args.district).powerschool_conn_id).get_conn()
    secret = os.environ.get("POWERSCHOOL_CLIENT_SECRET")
    if not (args.base_url and args.client_id and secret):
        raise SystemExit("error: give --district NAME, or --base-url and --client-id with the secret in "
                         "POWERSCHOOL_CLIENT_SECRET")
    from .powerschool.client import PowerSchoolClient

    return PowerSchoolClient(args.base_url, args.client_id, secret)


def cmd_rollback(args: argparse.Namespace) -> int:
    from .pipeline.rollback import rollback
    from .pipeline.run_rules import RunRefused

    store = _store(args)
    client = _powerschool_client(args)
    try:
        outcome = rollback(client, store, args.run, student_number=args.student, dry_run=args.dry_run)
    except RunRefused as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    if args.json:
        print(json.dumps(outcome.as_dict(), indent=2, default=str))
    else:
        verb = "would restore" if args.dry_run else "restored"
        for r in outcome.restored:
            print(f"{verb}\t{r['op']}" + (f"\t{r['would']}" if "would" in r else ""))
        for r in outcome.refused:
            print(f"REFUSED\t{r['op']}\t{r['reason']}")
        for r in outcome.failed:
            print(f"FAILED\t{r['op']}\t{r['error']}")
        print(f"{len(outcome.restored)} {verb}, {len(outcome.already)} already as before, "
              f"{len(outcome.refused)} refused (changed since the writeback), {len(outcome.failed)} failed; "
              f"{outcome.http_writes} HTTP write(s)")
    return 0 if not (outcome.refused or outcome.failed) else 3


def cmd_plugin_xml(args: argparse.Namespace) -> int:
    from .plugin_xml import cli_plugin_xml

    return cli_plugin_xml(args)


def cmd_doctor(args: argparse.Namespace) -> int:
    from .doctor import cli_doctor

    return cli_doctor(args)


MATCH_COLUMNS = ("id", "first_name", "last_name", "email", "phone", "street", "city", "state", "postal_code")
MATCH_OUTPUT = ("incoming_id", "existing_id", "score", "match_class", "reasons")


def _output_problem(out: str, inputs: tuple[str, ...]) -> str | None:
    """Why `out` cannot be written, found before any work is done: its folder is missing (or is not a
    folder), it is a folder, or it is one of the input files."""
    folder = os.path.dirname(os.path.abspath(out))
    if not os.path.isdir(folder):
        return f"the folder {folder} does not exist" if not os.path.exists(folder) else f"{folder} is not a folder"
    if os.path.isdir(out):
        return "is a folder; give a file name"
    if os.path.exists(out) and any(os.path.exists(i) and os.path.samefile(out, i) for i in inputs):
        return "is one of the input files; give another file name"
    return None


def cmd_match(args: argparse.Namespace) -> int:
    """Match the contacts of one CSV against the persons of another with the DAG's matching engine."""
    import datetime as dt

    from .csvfiles import CsvFileError, SafeWriter, read_dicts
    from .domain.matching import DEFAULT_THRESHOLDS, build_index, match_contacts, paused_gc
    from .domain.models import (
        Address,
        Email,
        MatchClass,
        Person,
        Phone,
        Snapshot,
        Student,
        SubmittedAddress,
        SubmittedContact,
        SubmittedPhone,
    )
    from .domain.normalize import email_problem, phone_key, split_extension

    thresholds = DEFAULT_THRESHOLDS
    if args.district:
        from .config import district

        thresholds = district(args.district).matching

    def check_email(path: str, row: dict[str, str]) -> None:
        if row["email"] and (problem := email_problem(row["email"])):
            print(f"warning: {path}: id {row['id']!r}, email {row['email']!r}: {problem} (not used for matching)",
                  file=sys.stderr)

    problem = _output_problem(args.out, (args.incoming, args.existing))
    if problem:
        print(f"error: --out {args.out}: {problem}", file=sys.stderr)
        return 2
    try:
        existing = read_dicts(args.existing, ("id", "last_name"), MATCH_COLUMNS)
        incoming = read_dicts(args.incoming, ("id", "last_name"), MATCH_COLUMNS)
    except CsvFileError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except OSError as exc:
        print(f"error: {exc.filename}: {exc.strerror}", file=sys.stderr)
        return 2
    persons: dict[int, Person] = {}
    existing_ids: dict[int, str] = {}
    for n, row in enumerate(existing, start=1):
        check_email(args.existing, row)
        number, ext = split_extension(row["phone"], args.region)
        persons[n] = Person(
            id=n, first_name=row["first_name"], last_name=row["last_name"],
            emails=[Email(id=n, address=row["email"])] if row["email"] else [],
            phones=[Phone(id=n, number=number, extension=ext)] if number else [],
            addresses=[Address(id=n, street=row["street"], city=row["city"], state=row["state"],
                               postal_code=row["postal_code"])] if row["street"] else [])
        existing_ids[n] = row["id"]
    index = build_index(Snapshot(persons=persons), args.region)
    nobody = Student(dcid=0, student_number="")  # no student: no links, no household
    today = dt.date.today()
    every = max(1, args.progress_every)
    written = 0
    contacts = []
    for row in incoming:
        check_email(args.incoming, row)
        number, ext = split_extension(row["phone"], args.region)
        contacts.append((row["id"], SubmittedContact(
            slot=1, first_name=row["first_name"], last_name=row["last_name"], email=row["email"],
            phones=[SubmittedPhone(type="Mobile", number=number, extension=ext,
                                   e164=phone_key(number, args.region))] if number else [],
            address=SubmittedAddress(street=row["street"], city=row["city"], state=row["state"],
                                     postal_code=row["postal_code"]) if row["street"] else None), nobody))
    try:
        fh = open(args.out, "w", newline="", encoding="utf-8")
    except OSError as exc:
        print(f"error: --out {args.out}: {exc.strerror}", file=sys.stderr)
        return 2
    with fh, paused_gc():
        out = SafeWriter(fh)  # ids come from the files and may be formulas: every cell is written safe
        out.writerow(MATCH_OUTPUT)
        for start in range(0, len(contacts), every):  # a chunk at a time: the batch path, with progress
            chunk = contacts[start:start + every]
            for (incoming_id, _, _), m in zip(chunk, match_contacts(chunk, index, today, None, args.region,
                                                                    thresholds), strict=True):
                for cand in m.candidates:
                    if cand.score < thresholds.possible:
                        continue
                    certain = m.match_class == MatchClass.CERTAIN and cand.person_id == m.person_id
                    out.writerow([incoming_id, existing_ids[cand.person_id], f"{cand.score:.4f}",
                                  "certain" if certain else "possible", "; ".join(cand.reasons)])
                    written += 1
            done = start + len(chunk)
            print(f"matched {done}/{len(contacts)} ({100 * done / len(contacts):.0f}%)", file=sys.stderr)
    print(f"{len(incoming)} incoming x {len(existing)} existing: {written} candidate row(s) in {args.out}",
          file=sys.stderr)
    return 0


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="writeback", description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--store", help="store URL (development; default: the store of --district, else "
                                   "[writeback] store_conn_id, else WRITEBACK_STORE_URL)")
    p.add_argument("--store-conn-id", help="the Airflow connection of the store (conn type writeback_store or "
                                           "postgres)")
    sub = p.add_subparsers(dest="command", required=True)

    st = sub.add_parser("store", help="the writeback store").add_subparsers(dest="action", required=True)
    mig = st.add_parser("migrate", help="create or upgrade the store's schema (explicit: opening a store never does)")
    mig.add_argument("--district", help="this district's store (its store_conn_id)")
    mig.add_argument("--check", action="store_true", help="only say whether the schema is current (exit 1 if not)")
    mig.set_defaults(func=cmd_store_migrate)

    mappings = sub.add_parser("mappings", help="check mapping files").add_subparsers(dest="action", required=True)
    check = mappings.add_parser("check", help="report every problem in each file")
    check.add_argument("files", nargs="*")
    check.add_argument("--district", help="check every mapping of this district (each form's)")
    check.set_defaults(func=cmd_mappings_check)
    preview = mappings.add_parser("preview", help="one submission through mapping, quality, matching and planning "
                                                  "against the live PowerSchool: the plan, nothing written")
    preview.add_argument("--district", required=True)
    preview.add_argument("--submission", required=True, help="the SchoolEngage submission id")
    preview.add_argument("--json", action="store_true")
    preview.set_defaults(func=cmd_mappings_preview)

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
    rep.add_argument("--html", metavar="OUT.html", help="write the report as a self-contained HTML page")
    rep.set_defaults(func=cmd_report)

    rb = sub.add_parser("rollback", help="undo a run's writes in PowerSchool (conflict-checked, audited)")
    rb.add_argument("--run", required=True)
    rb.add_argument("--student", help="only this student number's writes")
    rb.add_argument("--dry-run", action="store_true", help="list the compensating writes, write nothing")
    rb.add_argument("--district", help="district name: PowerSchool client from its Airflow connection")
    rb.add_argument("--base-url", help="PowerSchool base URL (with --client-id; secret from "
                                       "POWERSCHOOL_CLIENT_SECRET)")
    rb.add_argument("--client-id")
    rb.add_argument("--json", action="store_true")
    rb.set_defaults(func=cmd_rollback)

    px = sub.add_parser("plugin-xml", help="write the plugin.xml granting exactly what a mapping needs")
    px.add_argument("mapping", nargs="*", help="include/mappings/<file>.yaml (one or more: the union is granted)")
    px.add_argument("--district", help="every mapping of this district (the union of every form's targets)")
    px.add_argument("--name", default="Writeback SchoolEngage Sync", help="plugin name (at most 40 characters)")
    px.add_argument("--plugin-version", default="1.0.0")
    px.add_argument("--publisher", default="Writeback project")
    px.add_argument("--email", default="writeback@example.org", help="publisher contact email")
    px.add_argument("--out", help="file to write (default: stdout)")
    px.set_defaults(func=cmd_plugin_xml)

    dr = sub.add_parser("doctor", help="check a PowerSchool server: credentials, v1 level, grants, page sizes, "
                                       "throttle")
    dr.add_argument("--district", help="district name: PowerSchool client from its Airflow connection")
    dr.add_argument("--base-url", help="PowerSchool base URL (with --client-id and --mapping; secret from "
                                       "POWERSCHOOL_CLIENT_SECRET)")
    dr.add_argument("--client-id")
    dr.add_argument("--mapping", action="append", help="mapping file, repeatable (default with --district: every "
                                                       "mapping of the district)")
    dr.add_argument("--requests-per-second", type=float, help="with --base-url: the client's rate limit")
    dr.set_defaults(func=cmd_doctor)
    match = sub.add_parser("match", help="match contacts of one CSV against another (the DAG's engine)")
    match.add_argument("--incoming", required=True, help=f"CSV with columns {', '.join(MATCH_COLUMNS)}")
    match.add_argument("--existing", required=True, help="CSV with the same columns")
    match.add_argument("--out", required=True, help="CSV: incoming_id, existing_id, score, match_class, reasons")
    match.add_argument("--region", default="US", help="default phone region (default: US)")
    match.add_argument("--district", help="take the matching thresholds from this district's config")
    match.add_argument("--progress-every", type=int, default=1000, help="progress line on stderr every N rows")
    match.set_defaults(func=cmd_match)
    return p


def main(argv: list[str] | None = None) -> int:
    from .store import StoreNotConfigured, StoreSchemaOutdated

    args = parser().parse_args(argv)
    try:
        return args.func(args)
    except (StoreNotConfigured, StoreSchemaOutdated) as exc:  # a setup step is missing: say which
        print(f"error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
