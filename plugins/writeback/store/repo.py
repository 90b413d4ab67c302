"""The writeback store's repository: every read and write of the run's data goes through here."""

from __future__ import annotations

import datetime as dt
import os
from collections.abc import Iterable
from typing import Any

from sqlalchemy import (
    JSON,
    Text,
    bindparam,
    cast,
    create_engine,
    delete,
    event,
    func,
    insert,
    select,
    update,
)
from sqlalchemy.engine import Engine
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker

from ..domain.models import Decision, RecordProblem, ReviewItem, Submission
from .migrate import upgrade
from .schema import (
    CARRIED_CHECK,
    REFUSED_CHECKS,
    AuditRow,
    LedgerRow,
    QuarantineRow,
    RememberedDecision,
    ReviewItemRow,
    Run,
    RunData,
    SubmissionRow,
    SyncState,
    utcnow,
)
from .snapshot_rows import SnapshotRows


class StoreError(Exception):
    pass


class ItemNotFound(StoreError):
    pass


class DecisionConflict(StoreError):
    """Someone else decided the item since the version the caller saw."""


class InvalidDecision(StoreError):
    pass


class StoreNotConfigured(StoreError):
    """No store is configured: writeback never falls back to a file on whichever machine runs the task."""


class StoreSchemaOutdated(StoreError):
    """The store's database is not at the package's schema revision (`writeback store migrate`)."""


def default_store_url() -> str:
    """`WRITEBACK_STORE_URL` (the demo, tests, a one-off CLI call); anything else is `locate.store_source`'s."""
    url = os.environ.get("WRITEBACK_STORE_URL")
    if url:
        return url
    raise StoreNotConfigured(
        "no writeback store is configured: set store_conn_id in the district file, the Airflow option "
        "[writeback] store_conn_id (AIRFLOW__WRITEBACK__STORE_CONN_ID), or WRITEBACK_STORE_URL (docs/deployment.md)")


def _engine(url: str) -> Engine:
    if url.startswith("sqlite"):
        engine = create_engine(url, connect_args={"timeout": 30, "check_same_thread": False})

        @event.listens_for(engine, "connect")
        def _pragmas(dbapi_conn, _record):  # WAL lets the reviewer and the tasks work at once
            cur = dbapi_conn.cursor()
            cur.execute("PRAGMA journal_mode=WAL")
            # WAL + NORMAL survives a crash of the process (what the ledger must survive) and skips an
            # fsync per commit; only a power loss may lose the last commits, which the read-back heals
            cur.execute("PRAGMA synchronous=NORMAL")
            cur.execute("PRAGMA foreign_keys=ON")
            cur.close()

        return engine
    return create_engine(url, pool_pre_ping=True)


class Store(SnapshotRows):
    """The store at `url`. Opening it changes no schema: `writeback store migrate` (or the DAG's
    `migrate_store` task, or `migrate=True` for a throwaway database) brings the schema up to date."""

    def __init__(self, url: str | None = None, *, migrate: bool = False):
        self.url = url or default_store_url()
        self.engine = _engine(self.url)
        if migrate:
            upgrade(self.engine)
        self._sessions = sessionmaker(self.engine, expire_on_commit=False)

    def check_schema(self) -> None:
        """Raise `StoreSchemaOutdated` unless the database is at the package's newest revision."""
        from .migrate import head_revision, revision_of

        at, head = revision_of(self.engine), head_revision()
        if at != head:
            where = self.engine.url.render_as_string(hide_password=True)
            raise StoreSchemaOutdated(f"the writeback store {where} is at schema revision {at or 'none'}, this "
                                      f"package needs {head}: run `writeback store migrate` (or the DAG's "
                                      "migrate_store task)")

    def session(self) -> Session:
        return self._sessions.begin()  # type: ignore[return-value]

    def dispose(self) -> None:
        self.engine.dispose()

    # ------------------------------------------------------------ runs
    def ensure_run(self, run_id: str, district: str, *, dag_run_id: str = "", dry_run: bool = False) -> Run:
        with self._sessions.begin() as s:
            run = s.get(Run, run_id)
            if run is None:
                run = Run(id=run_id, district=district, dag_run_id=dag_run_id, dry_run=dry_run, counts={})
                s.add(run)
            return run

    def get_run(self, run_id: str) -> Run:
        with self._sessions() as s:
            run = s.get(Run, run_id)
            if run is None:
                raise StoreError(f"unknown run {run_id!r}")
            return run

    def update_run(self, run_id: str, **values: Any) -> None:
        with self._sessions.begin() as s:
            run = s.get(Run, run_id)
            if run is None:
                raise StoreError(f"unknown run {run_id!r}")
            for k, v in values.items():
                setattr(run, k, v)

    def add_counts(self, run_id: str, stage: str, counts: dict[str, Any]) -> None:
        with self._sessions.begin() as s:
            run = s.get(Run, run_id)
            if run is None:
                raise StoreError(f"unknown run {run_id!r}")
            run.counts = {**(run.counts or {}), stage: counts}

    def add_task_metrics(self, run_id: str, task: str, metrics: dict[str, Any]) -> None:
        """Per-task measurements (duration, HTTP calls, peak memory) kept with the run's counts."""
        with self._sessions.begin() as s:
            run = s.get(Run, run_id)
            if run is not None:
                counts = dict(run.counts or {})
                counts["tasks"] = {**counts.get("tasks", {}), task: metrics}
                run.counts = counts

    def list_runs(self, district: str | None = None, limit: int = 100) -> list[Run]:
        with self._sessions() as s:
            # runs created in the same instant (a retried trigger, a test) still list in one order
            q = select(Run).order_by(Run.created_at.desc(), Run.id.desc()).limit(limit)
            if district:
                q = q.where(Run.district == district)
            return list(s.scalars(q))

    def put_data(self, run_id: str, kind: str, data: dict[str, Any]) -> None:
        with self._sessions.begin() as s:
            row = s.get(RunData, (run_id, kind))
            if row is None:
                s.add(RunData(run_id=run_id, kind=kind, data=data))
            else:
                row.data = data

    def put_data_text(self, run_id: str, kind: str, text: str) -> None:
        """`put_data` of a document already serialised as JSON (a model's `model_dump_json()`): no dict
        copy of a document as large as a district's snapshot on the way to the database."""
        value: Any = bindparam("data_text", text, type_=Text)
        if self.engine.dialect.name != "sqlite":  # SQLite keeps JSON as text; PostgreSQL needs the cast
            value = cast(value, JSON)
        with self._sessions.begin() as s:
            s.execute(delete(RunData).where(RunData.run_id == run_id, RunData.kind == kind))
            s.execute(insert(RunData).values(run_id=run_id, kind=kind, data=value, updated_at=utcnow()))

    def get_data(self, run_id: str, kind: str) -> dict[str, Any] | None:
        with self._sessions() as s:
            row = s.get(RunData, (run_id, kind))
            return row.data if row else None

    def get_data_text(self, run_id: str, kind: str) -> str | None:
        """A run document as its JSON text, for a model to parse directly (no intermediate dict of a
        document as large as a district's snapshot)."""
        with self._sessions() as s:
            return s.scalar(select(cast(RunData.data, Text)).where(RunData.run_id == run_id, RunData.kind == kind))

    def data_by_prefix(self, run_id: str, prefix: str) -> dict[str, dict[str, Any]]:
        """Every document of the run whose kind starts with `prefix` (e.g. each student's `order:`), by
        the rest of the kind: one query instead of one per student."""
        with self._sessions() as s:
            rows = s.execute(select(RunData.kind, RunData.data).where(RunData.run_id == run_id,
                                                                      RunData.kind.startswith(prefix, autoescape=True)))
            return {kind[len(prefix):]: data for kind, data in rows}

    # ------------------------------------------------------------ submissions and quarantine
    def save_submissions(self, run_id: str, submissions: Iterable[Submission]) -> int:
        """Replace the run's submissions (a rerun of extract gives the same rows, not more)."""
        with self._sessions.begin() as s:
            s.execute(delete(SubmissionRow).where(SubmissionRow.run_id == run_id))
            n = 0
            for sub in submissions:
                s.add(SubmissionRow(run_id=run_id, submission_id=sub.id, student_number=sub.student_number,
                                    updated_at=sub.updated_at, payload=sub.model_dump(mode="json")))
                n += 1
            return n

    def submissions(self, run_id: str, status: str | None = None) -> list[SubmissionRow]:
        with self._sessions() as s:
            q = select(SubmissionRow).where(SubmissionRow.run_id == run_id).order_by(SubmissionRow.id)
            if status:
                q = q.where(SubmissionRow.status == status)
            return list(s.scalars(q))

    def record_quality(self, run_id: str, valid: dict[str, dict[str, Any]], problems: list[RecordProblem],
                       merged: dict[str, dict[str, Any]] | None = None) -> None:
        """Mark each submission valid (with its mapped record), quarantined (with every problem), or merged:
        an earlier form of a student merged into the latest one's record (`merged` holds its own record,
        kept)."""
        bad = {p.submission_id for p in problems}
        merged = merged or {}
        with self._sessions.begin() as s:
            s.execute(delete(QuarantineRow).where(QuarantineRow.run_id == run_id))
            for row in s.scalars(select(SubmissionRow).where(SubmissionRow.run_id == run_id)):
                if row.submission_id in bad:
                    row.status, row.record = "quarantined", None
                elif row.submission_id in merged:
                    row.status, row.record = "merged", merged[row.submission_id]
                elif row.submission_id in valid:
                    row.status, row.record = "valid", valid[row.submission_id]
            for p in problems:
                s.add(QuarantineRow(run_id=run_id, submission_id=p.submission_id, field=p.field, reason=p.reason,
                                    value=p.value, check=p.check))

    def carry_refusals(self, run_id: str, district: str) -> int:
        """Show on this run each refusal of an earlier run of the district not fixed since (`CARRIED_CHECK`
        rows): the newest refusal of a submission, unless a later run that finished (its report ran, not a
        dry run) included that submission again, or this run does. Returns how many records it shows."""
        with self._sessions.begin() as s:
            s.execute(delete(QuarantineRow).where(QuarantineRow.run_id == run_id, QuarantineRow.check == CARRIED_CHECK))
            runs = {r.id: r for r in s.scalars(select(Run).where(Run.district == district, Run.id != run_id))}
            if not runs:
                return 0

            def age(rid: str) -> tuple:
                return runs[rid].created_at, rid

            newest: dict[str, list[QuarantineRow]] = {}
            for q in s.scalars(select(QuarantineRow).where(QuarantineRow.run_id.in_(list(runs)),
                                                           QuarantineRow.check.in_(REFUSED_CHECKS))):
                held = newest.get(q.submission_id)
                if held is None or age(q.run_id) > age(held[0].run_id):
                    newest[q.submission_id] = [q]
                elif q.run_id == held[0].run_id:
                    held.append(q)
            if not newest:
                return 0
            here = set(s.scalars(select(SubmissionRow.submission_id).where(SubmissionRow.run_id == run_id)))
            for sid, rid in s.execute(select(SubmissionRow.submission_id, SubmissionRow.run_id).where(
                    SubmissionRow.submission_id.in_(list(newest)), SubmissionRow.run_id.in_(list(runs)))):
                later = runs[rid]
                if sid in newest and age(rid) > age(newest[sid][0].run_id) and not later.dry_run \
                        and later.status in ("complete", "incomplete"):
                    here.add(sid)  # a later run took the record over
            carried = 0
            for sid, rows in newest.items():
                if sid in here:
                    continue
                carried += 1
                for q in rows:
                    s.add(QuarantineRow(run_id=run_id, submission_id=sid, field=q.field, value=q.value,
                                        check=CARRIED_CHECK, op_key=q.op_key,
                                        reason=f"refused in run {q.run_id}: {q.reason}. Fix the record, then trigger "
                                               f'a run with submission_ids ["{sid}"]'))
            return carried

    def quarantine(self, run_id: str) -> list[QuarantineRow]:
        with self._sessions() as s:
            return list(s.scalars(select(QuarantineRow).where(QuarantineRow.run_id == run_id)
                                  .order_by(QuarantineRow.id)))

    # ------------------------------------------------------------ review items and decisions
    def replace_review_items(self, run_id: str, items: list[ReviewItem], plan_hash: str) -> None:
        """Store the plan's items. An item decided earlier keeps its decision if it is still the same item."""
        with self._sessions.begin() as s:
            existing = {r.item_key: r for r in s.scalars(select(ReviewItemRow).where(ReviewItemRow.run_id == run_id))}
            keep = set()
            for item in items:
                row = existing.get(item.key)
                same = row is not None and row.payload == item.payload and row.options == item.options
                if not same:
                    # A changed item starts over, but its version keeps rising: a reviewer still holding the
                    # version of the old item must get a conflict, not decide an item they never saw.
                    version = 1
                    if row is not None:
                        version = row.version + 1
                        s.delete(row)
                        s.flush()
                    row = ReviewItemRow(run_id=run_id, item_key=item.key, kind=item.kind,
                                        submission_id=item.submission_id, student_number=item.student_number,
                                        slot=item.slot, options=item.options, payload=item.payload,
                                        decision_data={}, state="pending", version=version)
                    s.add(row)
                row.plan_hash = plan_hash
                keep.add(item.key)
            for key, row in existing.items():
                if key not in keep:
                    s.delete(row)

    def add_review_item(self, run_id: str, item: ReviewItem) -> ReviewItemRow:
        """Add one item to a run after its plan was built (e.g. a `stale_write` found by apply).

        Same key, same payload and options: the item (and its decision) stays as it is. Same key with a
        different payload: it starts over as pending, its version rising (a reviewer holding the old
        version gets a conflict, not a decision on something they never saw)."""
        with self._sessions.begin() as s:
            row = s.scalar(select(ReviewItemRow).where(ReviewItemRow.run_id == run_id,
                                                       ReviewItemRow.item_key == item.key))
            if row is not None and row.payload == item.payload and row.options == item.options:
                return row
            version = 1
            plan_hash = None
            if row is not None:
                version, plan_hash = row.version + 1, row.plan_hash
                s.delete(row)
                s.flush()
            row = ReviewItemRow(run_id=run_id, item_key=item.key, kind=item.kind, submission_id=item.submission_id,
                                student_number=item.student_number, slot=item.slot, options=item.options,
                                payload=item.payload, decision_data={}, state="pending", version=version,
                                plan_hash=plan_hash)
            s.add(row)
            return row

    def items(self, run_id: str, *, state: str | None = None, kind: str | None = None) -> list[ReviewItemRow]:
        with self._sessions() as s:
            q = select(ReviewItemRow).where(ReviewItemRow.run_id == run_id).order_by(ReviewItemRow.id)
            if state:
                q = q.where(ReviewItemRow.state == state)
            if kind:
                q = q.where(ReviewItemRow.kind == kind)
            return list(s.scalars(q))

    def item(self, run_id: str, item_key: str) -> ReviewItemRow:
        with self._sessions() as s:
            row = s.scalar(select(ReviewItemRow).where(ReviewItemRow.run_id == run_id,
                                                       ReviewItemRow.item_key == item_key))
            if row is None:
                raise ItemNotFound(f"run {run_id!r} has no review item {item_key!r}")
            return row

    def pending_count(self, run_id: str) -> int:
        with self._sessions() as s:
            return s.scalar(select(func.count()).select_from(ReviewItemRow)
                            .where(ReviewItemRow.run_id == run_id, ReviewItemRow.state == "pending")) or 0

    def decide(self, run_id: str, item_key: str, choice: str, *, user: str, data: dict[str, Any] | None = None,
               comment: str = "", expected_version: int | None = None) -> ReviewItemRow:
        """Record a decision. With `expected_version`, a concurrent decision makes this one fail (409)."""
        row = self.item(run_id, item_key)
        if choice not in row.options:
            raise InvalidDecision(f"{choice!r} is not an option of {item_key!r} (options: {', '.join(row.options)})")
        version = row.version if expected_version is None else expected_version
        with self._sessions.begin() as s:
            result = s.execute(
                update(ReviewItemRow)
                .where(ReviewItemRow.id == row.id, ReviewItemRow.version == version)
                .values(choice=choice, decision_data=data or {}, decided_by=user, decided_at=utcnow(),
                        comment=comment, state="decided", version=version + 1)
            )
            if result.rowcount != 1:
                raise DecisionConflict(f"{item_key!r} was changed by someone else; reload and decide again")
        return self.item(run_id, item_key)

    def decisions(self, run_id: str) -> dict[str, Decision]:
        return {
            r.item_key: Decision(item_key=r.item_key, choice=r.choice, data=r.decision_data or {},
                                 decided_by=r.decided_by or "")
            for r in self.items(run_id, state="decided")
        }

    def remember(self, district: str, fingerprint: str, person_id: int, decision: str, user: str) -> None:
        with self._sessions.begin() as s:
            row = s.get(RememberedDecision, (district, fingerprint, person_id))
            if row is None:
                s.add(RememberedDecision(district=district, fingerprint=fingerprint, person_id=person_id,
                                         decision=decision, decided_by=user))
            else:
                row.decision, row.decided_by, row.decided_at = decision, user, utcnow()

    def remembered(self, district: str) -> dict[tuple[str, int], str]:
        with self._sessions() as s:
            rows = s.scalars(select(RememberedDecision).where(RememberedDecision.district == district))
            return {(r.fingerprint, r.person_id): r.decision for r in rows}

    # ------------------------------------------------------------ ledger and audit
    def ledger(self, run_id: str) -> dict[str, LedgerRow]:
        with self._sessions() as s:
            return {r.op_key: r for r in s.scalars(select(LedgerRow).where(LedgerRow.run_id == run_id))}

    def ledger_row(self, run_id: str, op_key: str) -> LedgerRow | None:
        """One ledger row (the unique index on run and key): what a single lookup needs, not the run's ledger."""
        with self._sessions() as s:
            return s.scalar(select(LedgerRow).where(LedgerRow.run_id == run_id, LedgerRow.op_key == op_key))

    def ledger_begin(self, run_id: str, op_key: str, kind: str) -> LedgerRow:
        with self._sessions.begin() as s:
            row = s.scalar(select(LedgerRow).where(LedgerRow.run_id == run_id, LedgerRow.op_key == op_key))
            if row is None:
                row = LedgerRow(run_id=run_id, op_key=op_key, kind=kind, status="pending", attempts=0, error="")
                s.add(row)
            row.attempts = (row.attempts or 0) + 1
            row.status = "pending"
            return row

    def ledger_finish(self, run_id: str, op_key: str, status: str, *, result_id: int | None = None,
                      error: str = "", retryable: bool = False, audit: dict[str, Any] | None = None,
                      refusal: dict[str, Any] | None = None, clear_refusal: bool = False) -> None:
        """Confirm an operation; with `audit`, its audit row is written in the same transaction, so a crash
        can never leave a confirmed write without its audit (which a rollback relies on). With `refusal`
        (submission_id, field, reason, value, check) the refused write's record is quarantined in the same
        transaction; `clear_refusal` drops the quarantine of an earlier refusal of the op."""
        with self._sessions.begin() as s:
            s.execute(update(LedgerRow).where(LedgerRow.run_id == run_id, LedgerRow.op_key == op_key)
                      .values(status=status, result_id=result_id, error=error[:2000], retryable=retryable,
                              updated_at=utcnow()))
            if audit is not None:
                s.add(_audit_row(run_id, op_key, **audit))
            if refusal is not None or clear_refusal:
                s.execute(delete(QuarantineRow).where(QuarantineRow.run_id == run_id, QuarantineRow.op_key == op_key,
                                                      QuarantineRow.check.in_(REFUSED_CHECKS)))
            if refusal is not None:
                s.add(QuarantineRow(run_id=run_id, op_key=op_key, **refusal))

    def ledger_announce(self, run_id: str, op_keys: list[str]) -> None:
        """Before an attempt's first write request: these ops may have written from now on (`LedgerRow.sent`)."""
        with self._sessions.begin() as s:
            s.execute(update(LedgerRow).where(LedgerRow.run_id == run_id, LedgerRow.op_key.in_(op_keys))
                      .values(sent=True, updated_at=utcnow()))

    def ledger_evidence(self, run_id: str, op_key: str, evidence: dict[str, Any] | None) -> None:
        with self._sessions.begin() as s:
            s.execute(update(LedgerRow).where(LedgerRow.run_id == run_id, LedgerRow.op_key == op_key)
                      .values(evidence=evidence, updated_at=utcnow()))

    def ledger_of_kind(self, run_id: str, kind: str) -> list[LedgerRow]:
        with self._sessions() as s:
            return list(s.scalars(select(LedgerRow).where(LedgerRow.run_id == run_id, LedgerRow.kind == kind)))

    def claimed_persons(self, person_ids: Iterable[int]) -> dict[int, str]:
        """Which of these persons a create of any run recorded as its result: person id -> `run op key`."""
        ids = sorted(set(person_ids))
        if not ids:
            return {}
        with self._sessions() as s:
            rows = s.execute(select(LedgerRow.result_id, LedgerRow.run_id, LedgerRow.op_key)
                             .where(LedgerRow.kind == "contact_create", LedgerRow.result_id.in_(ids)))
            return {pid: f"{run} {key}" for pid, run, key in rows}

    def audit(self, run_id: str, op_key: str, kind: str, *, student_number: str = "", person_ref: str = "",
              before: dict[str, Any] | None = None, after: dict[str, Any] | None = None, reviewer: str = "",
              response: str = "") -> None:
        with self._sessions.begin() as s:
            s.add(_audit_row(run_id, op_key, kind=kind, student_number=student_number, person_ref=person_ref,
                             before=before, after=after, reviewer=reviewer, response=response))

    def audit_rows(self, run_id: str) -> list[AuditRow]:
        with self._sessions() as s:
            return list(s.scalars(select(AuditRow).where(AuditRow.run_id == run_id).order_by(AuditRow.id)))

    # ------------------------------------------------------------ sync cursor
    def cursor(self, district: str) -> str | None:
        with self._sessions() as s:
            row = s.get(SyncState, district)
            return row.cursor if row else None

    def begin_extraction(self, district: str, run_id: str) -> str | None:
        """Give the run the district's next extraction ticket and return the cursor to extract from, read in
        the same transaction: a run with a higher ticket read the cursor (and SchoolEngage) later."""
        for _ in range(3):
            try:
                with self._sessions.begin() as s:
                    bumped = s.execute(update(SyncState).where(SyncState.district == district)
                                       .values(extractions=func.coalesce(SyncState.extractions, 0) + 1))
                    if bumped.rowcount == 0:
                        s.add(SyncState(district=district, cursor=None, extractions=1))
                        s.flush()
                    row = s.get(SyncState, district, populate_existing=True)
                    run = s.get(Run, run_id)
                    if run is None:
                        raise StoreError(f"unknown run {run_id!r}")
                    run.extract_seq = row.extractions
                    return row.cursor
            except IntegrityError:  # another run created the district's row at the same moment: bump it
                continue
        raise StoreError(f"could not take an extraction ticket for district {district!r}")

    def advance_cursor(self, district: str, cursor: str | None, run_id: str, ticket: int | None) -> bool:
        """Compare-and-set: the cursor becomes the run's only when no run that extracted later (a higher
        ticket) has set it already, so it never moves back. Returns whether it moved. A run without a
        ticket (extracted before tickets existed) moves only a cursor no ticketed run has set."""
        if cursor is None:
            return False
        newer = SyncState.cursor_seq.is_(None) if ticket is None else (
            SyncState.cursor_seq.is_(None) | (SyncState.cursor_seq <= ticket))
        for _ in range(3):
            try:
                with self._sessions.begin() as s:
                    moved = s.execute(update(SyncState).where(SyncState.district == district, newer)
                                      .values(cursor=cursor, cursor_seq=ticket, last_run_id=run_id,
                                              updated_at=utcnow()))
                    if moved.rowcount:
                        return True
                    if s.get(SyncState, district) is not None:
                        return False  # a run that extracted later moved it already
                    s.add(SyncState(district=district, cursor=cursor, cursor_seq=ticket, last_run_id=run_id,
                                    extractions=ticket))
                    return True
            except IntegrityError:
                continue
        return False

    def superseding_run(self, run_id: str) -> Run | None:
        """The newest run of the same district, not a dry run, that extracted after this one (a higher
        ticket) and began writing (it has ledger rows): this run's plan is older than what it wrote."""
        run = self.get_run(run_id)
        with self._sessions() as s:
            wrote = select(LedgerRow.id).where(LedgerRow.run_id == Run.id).exists()
            q = (select(Run).where(Run.district == run.district, Run.id != run.id, Run.dry_run.is_(False),
                                   Run.extract_seq.is_not(None), wrote)
                 .order_by(Run.extract_seq.desc()).limit(1))
            if run.extract_seq is not None:
                q = q.where(Run.extract_seq > run.extract_seq)
            return s.scalar(q)


def _audit_row(run_id: str, op_key: str, *, kind: str, student_number: str = "", person_ref: str = "",
               before: dict[str, Any] | None = None, after: dict[str, Any] | None = None, reviewer: str = "",
               response: str = "") -> AuditRow:
    return AuditRow(run_id=run_id, op_key=op_key, kind=kind, student_number=student_number,
                    person_ref=person_ref or "", before=before or {}, after=after or {}, reviewer=reviewer,
                    response=(response or "")[:2000])


def today() -> dt.date:
    return dt.datetime.now(dt.UTC).date()
