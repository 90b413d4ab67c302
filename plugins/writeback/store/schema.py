"""Tables of the writeback store. Alembic migrations in `migrations/` create them; a test proves the two agree."""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column


def utcnow() -> dt.datetime:
    return dt.datetime.now(dt.UTC).replace(tzinfo=None)


class Base(DeclarativeBase):
    type_annotation_map = {dict[str, Any]: JSON, list[Any]: JSON}


class Run(Base):
    __tablename__ = "wb_runs"
    id: Mapped[str] = mapped_column(String(200), primary_key=True)
    district: Mapped[str] = mapped_column(String(100), index=True)
    dag_run_id: Mapped[str] = mapped_column(String(250), default="")
    status: Mapped[str] = mapped_column(String(30), default="created")
    dry_run: Mapped[bool] = mapped_column(Boolean, default=False)
    cursor_from: Mapped[str | None] = mapped_column(String(200), nullable=True)
    cursor_to: Mapped[str | None] = mapped_column(String(200), nullable=True)
    # the district's extraction ticket this run took when it read the submissions (`Store.begin_extraction`):
    # a higher ticket read SchoolEngage later; it orders the cursor and says which run supersedes which
    extract_seq: Mapped[int | None] = mapped_column(Integer, nullable=True)
    plan_hash: Mapped[str | None] = mapped_column(String(64), nullable=True)
    approved_hash: Mapped[str | None] = mapped_column(String(64), nullable=True)
    approved_at: Mapped[dt.datetime | None] = mapped_column(DateTime, nullable=True)
    counts: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    created_at: Mapped[dt.datetime] = mapped_column(DateTime, default=utcnow)
    updated_at: Mapped[dt.datetime] = mapped_column(DateTime, default=utcnow, onupdate=utcnow)


class RunData(Base):
    """Large per-run documents (snapshot, plan) kept whole; XCom carries only ids and counts."""

    __tablename__ = "wb_run_data"
    run_id: Mapped[str] = mapped_column(ForeignKey("wb_runs.id", ondelete="CASCADE"), primary_key=True)
    kind: Mapped[str] = mapped_column(String(40), primary_key=True)
    data: Mapped[dict[str, Any]] = mapped_column(JSON)
    updated_at: Mapped[dt.datetime] = mapped_column(DateTime, default=utcnow, onupdate=utcnow)


class SnapshotRow(Base):
    """One row of PowerSchool's snapshot PowerQueries, verbatim, with the keys tasks look it up by.

    A district's snapshot is kept as rows rather than one document so that no task holds the whole
    district: extraction writes page by page, and matching and planning read only the students,
    persons and links they need (`pipeline/stored_snapshot.py`)."""

    __tablename__ = "wb_snapshot_rows"
    __table_args__ = (Index("ix_wb_snapshot_rows_person", "run_id", "entity", "person_id"),
                      Index("ix_wb_snapshot_rows_student", "run_id", "entity", "student_dcid"),
                      Index("ix_wb_snapshot_rows_number", "run_id", "student_number"),
                      Index("ix_wb_snapshot_rows_family", "run_id", "family_ident"),
                      Index("ix_wb_snapshot_rows_email", "run_id", "email"))
    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True,
                                    autoincrement=True)
    run_id: Mapped[str] = mapped_column(ForeignKey("wb_runs.id", ondelete="CASCADE"))
    entity: Mapped[str] = mapped_column(String(20))  # students, contacts, emails, phones, addresses, links, ...
    row_key: Mapped[int] = mapped_column(BigInteger)  # the entity's own id (a link's, for each of its detail rows)
    sequence: Mapped[int | None] = mapped_column(Integer, nullable=True)  # a link's contact priority
    student_dcid: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    person_id: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    student_number: Mapped[str | None] = mapped_column(String(50), nullable=True)
    family_ident: Mapped[str | None] = mapped_column(String(100), nullable=True)
    email: Mapped[str | None] = mapped_column(String(320), nullable=True)  # a portal account's, email_key
    row: Mapped[str] = mapped_column(Text)  # the PowerQuery row as JSON


class SubmissionRow(Base):
    __tablename__ = "wb_submissions"
    __table_args__ = (UniqueConstraint("run_id", "submission_id"),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    run_id: Mapped[str] = mapped_column(ForeignKey("wb_runs.id", ondelete="CASCADE"), index=True)
    submission_id: Mapped[str] = mapped_column(String(100))
    student_number: Mapped[str] = mapped_column(String(50), default="")
    updated_at: Mapped[str] = mapped_column(String(50), default="")
    status: Mapped[str] = mapped_column(String(20), default="received")  # received | valid | quarantined | merged
    payload: Mapped[dict[str, Any]] = mapped_column(JSON)
    record: Mapped[dict[str, Any] | None] = mapped_column(JSON, nullable=True)  # the mapped FormRecord


class QuarantineRow(Base):
    """A record kept instead of written, with why: a quality problem (check_quality), a write that was
    refused (`REFUSED_CHECKS`, with its op), or an earlier run's refusal not fixed yet (`CARRIED_CHECK`)."""

    __tablename__ = "wb_quarantine"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    run_id: Mapped[str] = mapped_column(ForeignKey("wb_runs.id", ondelete="CASCADE"), index=True)
    submission_id: Mapped[str] = mapped_column(String(100))
    field: Mapped[str] = mapped_column(String(200))
    reason: Mapped[str] = mapped_column(Text)
    value: Mapped[str] = mapped_column(Text, default="")
    check: Mapped[str] = mapped_column(String(200), default="")
    # a write PowerSchool (or a rule) refused for the record: the op it was (`Store.ledger_finish`)
    op_key: Mapped[str | None] = mapped_column(String(300), nullable=True)


# quarantine checks of a write refused at apply: by PowerSchool (its reason), or by one of our rules
POWERSCHOOL_REFUSED, RULE_REFUSED = "powerschool_refused", "rule_refused"
REFUSED_CHECKS = (POWERSCHOOL_REFUSED, RULE_REFUSED)
CARRIED_CHECK = "refused_earlier"  # an earlier run's refusal, shown on a later run until it is fixed


class ReviewItemRow(Base):
    __tablename__ = "wb_review_items"
    __table_args__ = (UniqueConstraint("run_id", "item_key"),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    run_id: Mapped[str] = mapped_column(ForeignKey("wb_runs.id", ondelete="CASCADE"), index=True)
    item_key: Mapped[str] = mapped_column(String(300))
    kind: Mapped[str] = mapped_column(String(40), index=True)
    submission_id: Mapped[str] = mapped_column(String(100))
    student_number: Mapped[str] = mapped_column(String(50))
    slot: Mapped[int | None] = mapped_column(Integer, nullable=True)
    options: Mapped[list[Any]] = mapped_column(JSON)
    payload: Mapped[dict[str, Any]] = mapped_column(JSON)
    state: Mapped[str] = mapped_column(String(20), default="pending", index=True)  # pending | decided
    choice: Mapped[str | None] = mapped_column(String(100), nullable=True)
    decision_data: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    decided_by: Mapped[str | None] = mapped_column(String(200), nullable=True)
    decided_at: Mapped[dt.datetime | None] = mapped_column(DateTime, nullable=True)
    comment: Mapped[str] = mapped_column(Text, default="")
    plan_hash: Mapped[str | None] = mapped_column(String(64), nullable=True)
    version: Mapped[int] = mapped_column(Integer, default=1)


class RememberedDecision(Base):
    """Match decisions kept across runs: a confirmed match or a 'not a match' is not asked again."""

    __tablename__ = "wb_remembered"
    district: Mapped[str] = mapped_column(String(100), primary_key=True)
    fingerprint: Mapped[str] = mapped_column(String(400), primary_key=True)
    person_id: Mapped[int] = mapped_column(Integer, primary_key=True)
    decision: Mapped[str] = mapped_column(String(30))
    decided_by: Mapped[str] = mapped_column(String(200), default="")
    decided_at: Mapped[dt.datetime] = mapped_column(DateTime, default=utcnow)


class LedgerRow(Base):
    """The applied-writes ledger: a key recorded before each write and confirmed after it.

    `sent` is set before an attempt's first write request leaves: only then may a later attempt claim a
    value it finds in place as this op's own. `evidence` is what a create records before its first POST
    (the highest person id then, the fingerprint of the record it creates, the ops whose values it
    carries), so that a retry recognises its own contact and no other."""

    __tablename__ = "wb_ledger"
    __table_args__ = (UniqueConstraint("run_id", "op_key"), Index("ix_wb_ledger_result", "kind", "result_id"))
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    run_id: Mapped[str] = mapped_column(ForeignKey("wb_runs.id", ondelete="CASCADE"), index=True)
    op_key: Mapped[str] = mapped_column(String(300))
    kind: Mapped[str] = mapped_column(String(40))
    # pending | done | failed | stale | refused | ambiguous_create | skipped_by_reviewer
    status: Mapped[str] = mapped_column(String(20), default="pending")
    result_id: Mapped[int | None] = mapped_column(Integer, nullable=True)
    error: Mapped[str] = mapped_column(Text, default="")
    retryable: Mapped[bool] = mapped_column(Boolean, default=False)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    sent: Mapped[bool | None] = mapped_column(Boolean, nullable=True, default=False)
    evidence: Mapped[dict[str, Any] | None] = mapped_column(JSON, nullable=True)
    created_at: Mapped[dt.datetime] = mapped_column(DateTime, default=utcnow)
    updated_at: Mapped[dt.datetime] = mapped_column(DateTime, default=utcnow, onupdate=utcnow)


class AuditRow(Base):
    __tablename__ = "wb_audit"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    run_id: Mapped[str] = mapped_column(String(200), index=True)
    op_key: Mapped[str] = mapped_column(String(300))
    kind: Mapped[str] = mapped_column(String(40))
    student_number: Mapped[str] = mapped_column(String(50), default="")
    person_ref: Mapped[str] = mapped_column(String(100), default="")
    before: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    after: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    reviewer: Mapped[str] = mapped_column(String(200), default="")
    response: Mapped[str] = mapped_column(Text, default="")
    at: Mapped[dt.datetime] = mapped_column(DateTime, default=utcnow)


class SyncState(Base):
    """A district's sync cursor, and the extraction tickets that order it (it only moves forward)."""

    __tablename__ = "wb_sync_state"
    district: Mapped[str] = mapped_column(String(100), primary_key=True)
    cursor: Mapped[str | None] = mapped_column(String(200), nullable=True)
    last_run_id: Mapped[str | None] = mapped_column(String(200), nullable=True)
    cursor_seq: Mapped[int | None] = mapped_column(Integer, nullable=True)  # ticket of the run that set it
    extractions: Mapped[int | None] = mapped_column(Integer, nullable=True)  # the last ticket handed out
    updated_at: Mapped[dt.datetime] = mapped_column(DateTime, default=utcnow, onupdate=utcnow)
