"""The pipeline's stages: each reads its input from the store, does one job, writes its output back,
and returns counts (never PII) for XCom and the report. Airflow operators are thin wrappers over these.
"""

from __future__ import annotations

import datetime as dt
import functools
import logging
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from pydantic import BaseModel, Field

from ..config import DistrictConfig
from ..domain.batches import student_batches
from ..domain.envelope import read_envelope
from ..domain.forms import held_by_a_later_form, merge_forms
from ..domain.gates import BATCH_ITEM_KEY, HoldThresholds, batch_item, hold_reasons
from ..domain.mapping import Mapping, apply_mapping
from ..domain.matching import fingerprint
from ..domain.models import ContactMatch, FormRecord, MatchClass, Plan, RecordProblem, Snapshot
from ..domain.plan import build_plan
from ..domain.resolve import ops_hash, plan_hash, resolve
from ..domain.routing import FormRoutes, union
from ..store import Store
from .apply import AMBIGUOUS_CREATE, Applier, ApplyOutcome
from .matching_pages import match_stored
from .run_rules import writable_run
from .slices import snapshot_slice, sub_plan
from .stored_snapshot import StoredSnapshot, save_snapshot

log = logging.getLogger(__name__)

APPLY_ITEMS = ("stale:", f"{AMBIGUOUS_CREATE}:")  # review items apply adds (answered by apply, not by resolve)


class QualityGateError(RuntimeError):
    """Too many bad records: a sign of mapping or schema drift. The run stops before matching."""


class PlanChangedError(RuntimeError):
    """The plan or its decisions changed after approval: apply refuses to run."""


@dataclass
class RunParams:
    dry_run: bool = False
    submission_ids: list[str] = field(default_factory=list)
    student_numbers: list[str] = field(default_factory=list)
    re_review: bool = False
    retry_run_id: str = ""  # apply again what an earlier run did not confirm (failed or stale writes)


@dataclass
class RunContext:
    district: DistrictConfig
    store: Store
    run_id: str
    params: RunParams = field(default_factory=RunParams)
    today: dt.date = field(default_factory=lambda: dt.datetime.now(dt.UTC).date())
    _mapping: Mapping | None = None  # an override (tools, tests): every form is read with this one mapping
    _forms: FormRoutes | None = None

    @property
    def forms(self) -> FormRoutes:
        """The district's mappings by form (loaded once per task)."""
        if self._mapping is not None:
            return FormRoutes(self.district.name, (("*", self._mapping),))
        if self._forms is None:
            self._forms = self.district.load_forms()
        return self._forms

    @property
    def mapping(self) -> Mapping:
        """The district's first mapping (districts with one form; stages use `forms`)."""
        return self.forms.mappings[0]

    @property
    def region(self) -> str:
        return self.district.phone_region

    @property
    def stored(self) -> StoredSnapshot:
        """The run's snapshot in the store, read a part at a time."""
        return StoredSnapshot(self.store, self.run_id, extension_targets(self.forms.mappings))

    def snapshot(self) -> Snapshot:
        """The whole snapshot in memory (tools and small districts; the DAG's tasks read parts of it)."""
        if self.stored.exists():
            return self.stored.whole()
        data = self.store.get_data_text(self.run_id, "snapshot")  # a run extracted before snapshots were rows
        if data is None:
            raise RuntimeError(f"run {self.run_id} has no snapshot yet; run extract_snapshot first")
        return Snapshot.model_validate_json(data)

    def plan_snapshot(self) -> Snapshot:
        """The part of the snapshot the plan touches (`slices.py`); the whole one for a run planned before
        the slice was kept."""
        data = self.store.get_data_text(self.run_id, "snapshot_plan")
        return Snapshot.model_validate_json(data) if data is not None else self.snapshot()

    def plan(self) -> Plan:
        data = self.store.get_data_text(self.run_id, "plan")
        if data is None:
            raise RuntimeError(f"run {self.run_id} has no plan yet; run build_plan first")
        return Plan.model_validate_json(data)

    def records(self) -> list[FormRecord]:
        return [FormRecord.model_validate(r.record) for r in self.store.submissions(self.run_id, status="valid")]

    def counts(self, stage: str, counts: dict[str, Any]) -> dict[str, Any]:
        self.store.add_counts(self.run_id, stage, counts)
        log.info("%s: %s", stage, counts)  # counts only: no names, no values
        return counts


def not_on_retry(stage):
    """A retry of an earlier run keeps that run's submissions, snapshot and plan: skip the stage."""

    @functools.wraps(stage)
    def wrapper(ctx: RunContext, *args: Any) -> dict[str, Any]:
        if ctx.params.retry_run_id:
            log.info("%s: skipped, this run retries %s", stage.__name__, ctx.params.retry_run_id)
            return {"skipped": True, "retry_of": ctx.params.retry_run_id}
        return stage(ctx, *args)

    return wrapper


# ---------------------------------------------------------------- extract


@not_on_retry
def extract_submissions(ctx: RunContext, source: Any) -> dict[str, Any]:
    """New or changed submissions since the district's last confirmed sync (or the ids a rerun names)."""
    p = ctx.params
    # the run's extraction ticket and the cursor, read together: they order the cursor (`report`) and
    # tell which run supersedes which (`run_rules.superseded`)
    since = ctx.store.begin_extraction(ctx.district.name, ctx.run_id)
    if p.submission_ids or p.student_numbers:
        since = None
    raw, cursor = source.fetch_since(since)
    wanted_ids, wanted_numbers = set(p.submission_ids), set(p.student_numbers)
    submissions, problems = [], []
    for position, item in enumerate(raw):
        sub, envelope_problems = read_envelope(item, position)  # a malformed one is kept, to quarantine
        if wanted_ids and sub.id not in wanted_ids:
            continue
        if wanted_numbers and sub.student_number not in wanted_numbers:
            continue
        submissions.append(sub)
        problems.extend(envelope_problems)
    n = ctx.store.save_submissions(ctx.run_id, submissions)
    ctx.store.put_data(ctx.run_id, "envelope_problems",
                       {"problems": [p.model_dump(mode="json") for p in problems]})
    ctx.store.update_run(ctx.run_id, cursor_from=since, cursor_to=cursor, status="extracted")
    return ctx.counts("extract_submissions", {"received": n, "incremental": since is not None,
                                              "subset": bool(wanted_ids or wanted_numbers)})


def extension_targets(mappings: Mapping | list[Mapping]) -> list[str]:
    """The extension targets of every mapping (the snapshot reads the union of every form's targets)."""
    return list(dict.fromkeys(s.target for m in union(mappings) for s in m.student
                              if s.target.startswith("extension.")))


@not_on_retry
def extract_snapshot(ctx: RunContext, client: Any) -> dict[str, Any]:
    """PowerSchool's state, written to the store page by page as it is read (never held whole)."""
    from ..powerschool.grants import snapshot_queries

    read = save_snapshot(ctx.store, ctx.run_id, client, snapshot_queries(ctx.forms.mappings))
    return ctx.counts("extract_snapshot", {"students": read.get("students", 0), "contacts": read.get("contacts", 0),
                                           "links": read.get("links", 0),
                                           "portal_accounts": read.get("portal_accounts", 0)})


# ---------------------------------------------------------------- quality


@not_on_retry
def check_quality(ctx: RunContext) -> dict[str, Any]:
    """Map every submission; quarantine bad records with reasons; stop the run on systemic drift."""
    from ..quality import SnapshotIntegrityError, check_records, snapshot_problems  # heavy: load it here

    log: list[dict[str, Any]] = []  # kept with the run: counts per expectation, no values
    broken = snapshot_problems(ctx.store.snapshot_integrity(ctx.run_id), log)
    ctx.store.put_data(ctx.run_id, "validation", {"results": log})
    if broken:
        ctx.store.update_run(ctx.run_id, status="failed_quality")
        raise SnapshotIntegrityError("PowerSchool's snapshot is inconsistent, so nothing can be matched safely: "
                                     + "; ".join(broken))
    rows = ctx.store.submissions(ctx.run_id)
    records: dict[str, FormRecord] = {}
    envelope = ctx.store.get_data(ctx.run_id, "envelope_problems") or {"problems": []}
    problems: list[RecordProblem] = [RecordProblem.model_validate(p) for p in envelope["problems"]]
    for row in rows:
        result = map_submission(ctx.forms, row.submission_id, row.payload)
        if isinstance(result, list):
            problems.extend(result)
        else:
            records[row.submission_id] = result
    known = set(ctx.store.snapshot_keys(ctx.run_id, "students", "student_number",
                                        among={r.student_number for r in records.values()}))
    problems.extend(check_records(list(records.values()), known, log, ctx.region))
    ctx.store.put_data(ctx.run_id, "validation", {"results": log})
    # a student's several forms: an older one waits for a quarantined later one; the rest become one record
    stamps = {row.submission_id: (row.payload.get("updated_at") or "", row.payload.get("submitted_at") or "")
              for row in rows}
    bad = {p.submission_id for p in problems}
    number_of = {row.submission_id: (records[row.submission_id].student_number if row.submission_id in records
                                     else _typed_student_number(ctx.forms, row)) for row in rows}
    problems.extend(held_by_a_later_form({sid: number_of[sid] for sid in records if sid not in bad},
                                         {sid: number_of[sid] for sid in bad if number_of.get(sid)}, stamps))
    bad = {p.submission_id for p in problems}
    merged, into = merge_forms([r for sid, r in records.items() if sid not in bad], stamps, ctx.region)
    valid = {r.submission_id: r.model_dump(mode="json") for r in merged}
    ctx.store.record_quality(ctx.run_id, valid, problems,
                             merged={sid: records[sid].model_dump(mode="json") for sid in into})
    # what PowerSchool refused in earlier runs and nobody fixed yet is shown on this run's page too
    carried = ctx.store.carry_refusals(ctx.run_id, ctx.district.name)
    share = len(bad) / len(rows) if rows else 0.0
    counts = ctx.counts("check_quality", {"valid": len(valid), "quarantined": len(bad), "merged": len(into),
                                          "problems": len(problems), "bad_share": round(share, 4),
                                          "refused_earlier": carried,
                                          "by_check": dict(Counter(p.check for p in problems))})
    if share > ctx.district.quality.max_bad_share:
        ctx.store.update_run(ctx.run_id, status="failed_quality")
        raise QualityGateError(
            f"{len(bad)} of {len(rows)} submissions ({share:.0%}) failed the quality checks, above the "
            f"district's limit of {ctx.district.quality.max_bad_share:.0%}: the mapping or the form has probably "
            "changed. Nothing was matched or written; see the quarantine on the review page.")
    return counts


def map_submission(forms: FormRoutes, submission_id: str, payload: dict[str, Any]) -> FormRecord | list[RecordProblem]:
    """Read one stored submission with its form's mapping; a form without one is quarantined, never guessed."""
    form_id = payload.get("form_id") or ""
    mapping = forms.mapping_for(form_id)
    if not isinstance(mapping, Mapping):
        return [forms.problem_for(submission_id, form_id)]
    return apply_mapping(mapping, submission_id, payload.get("fields") or {}, form_id=form_id)


def _typed_student_number(forms: FormRoutes, row) -> str:
    """The student number a form carries, read as its form's mapping reads it (for a form that did not map)."""
    from ..domain.normalize import clean_text

    mapping = forms.mapping_for(row.payload.get("form_id") or "")
    raw = (row.payload.get("fields") or {}).get(mapping.student_number_field) if isinstance(mapping, Mapping) else None
    return clean_text(raw) if isinstance(raw, str) else (row.student_number or "")


# ---------------------------------------------------------------- match and plan


def _matches_from_store(ctx: RunContext) -> dict[tuple[str, int], ContactMatch]:
    data = ctx.store.get_data(ctx.run_id, "matches") or {"matches": []}
    return {(m["submission_id"], m["slot"]): ContactMatch.model_validate(m) for m in data["matches"]}


@not_on_retry
def match_contacts(ctx: RunContext) -> dict[str, Any]:
    remembered = {} if ctx.params.re_review else ctx.store.remembered(ctx.district.name)
    matches = match_stored(ctx.records(), ctx.stored, ctx.today, remembered, ctx.region, ctx.district.matching)
    ctx.store.put_data(ctx.run_id, "matches", {"matches": [m.model_dump(mode="json") for m in matches.values()]})
    by_class = Counter(m.match_class.value for m in matches.values())
    return ctx.counts("match_contacts", {"contacts": len(matches), **{c.value: by_class.get(c.value, 0)
                                                                      for c in MatchClass}})


@not_on_retry
def build_run_plan(ctx: RunContext) -> dict[str, Any]:
    records, matches = ctx.records(), _matches_from_store(ctx)
    # the part of the snapshot these forms need: their students, and the persons matched or proposed
    persons = {pid for m in matches.values() for pid in (m.person_id, m.slot_person_id, *(c.person_id for c in
                                                                                     m.candidates)) if pid}
    snapshot = ctx.stored.around({r.student_number for r in records}, persons)
    plan = build_plan(records, snapshot, matches, ctx.today, ctx.region)
    q = ctx.district.quality
    reasons = hold_reasons(plan, HoldThresholds(min_students=q.hold_min_students, expire_share=q.hold_expire_share,
                                                data_access_changes=q.hold_data_access_changes,
                                                replace_share=q.hold_replace_share))
    if reasons:  # an unusually large change: a person approves (or rejects) the whole batch first
        plan.review_items.insert(0, batch_item(plan, reasons))
    digest = plan_hash(plan)
    batches = student_batches(plan, ctx.district.apply.batch_students)
    # what later tasks read instead of the whole district: the plan's slice, and each batch's own part
    ctx.store.put_data_text(ctx.run_id, "snapshot_plan", snapshot_slice(snapshot, plan.students).model_dump_json())
    for i, numbers in enumerate(batches):
        part = sub_plan(plan, set(numbers))
        ctx.store.put_data_text(ctx.run_id, f"batch:{i}", _BatchDoc(plan=part, snapshot=snapshot_slice(
            snapshot, part.students)).model_dump_json())
    del snapshot
    ctx.store.put_data(ctx.run_id, "batches", {"batches": batches})
    ctx.store.put_data_text(ctx.run_id, "plan", plan.model_dump_json())
    ctx.store.replace_review_items(ctx.run_id, plan.review_items, digest)
    ctx.store.update_run(ctx.run_id, plan_hash=digest, approved_hash=None, status="awaiting_review")
    return ctx.counts("build_plan", {"students": len(plan.students), "review_items": len(plan.review_items),
                                     "held": bool(reasons), "batches": len(batches),
                                     "new_contacts": len(plan.new_contacts),
                                     "by_kind": dict(Counter(i.kind for i in plan.review_items))})


# ---------------------------------------------------------------- approval


def resolve_run(ctx: RunContext, plan: Plan, snapshot: Snapshot, decisions) -> list:
    """The run's writes after decisions; a rejected batch writes nothing."""
    batch = decisions.get(BATCH_ITEM_KEY)
    if batch is not None and batch.choice == "reject_batch":
        return []
    orders = {number: doc["order"] for number, doc in ctx.store.data_by_prefix(ctx.run_id, "order:").items()}
    values = {number: doc["choices"] for number, doc in ctx.store.data_by_prefix(ctx.run_id, "values:").items()}
    return resolve(plan, decisions, snapshot, ctx.today, ctx.region, orders, values)


def approval_state(ctx: RunContext) -> dict[str, Any]:
    """Pending count; when nothing is pending, bind the decisions to the plan by hashing the writes."""
    pending = ctx.store.pending_count(ctx.run_id)
    if pending:
        return {"pending": pending, "approved": False}
    plan, snapshot = ctx.plan(), ctx.plan_snapshot()
    decisions = ctx.store.decisions(ctx.run_id)
    ops = resolve_run(ctx, plan, snapshot, decisions)
    digest = ops_hash(ops)
    del snapshot
    ctx.store.put_data(ctx.run_id, "approved_batches", _approve_batches(ctx, plan, ops, decisions, digest))
    ctx.store.update_run(ctx.run_id, approved_hash=digest, approved_at=dt.datetime.now(dt.UTC).replace(tzinfo=None),
                         status="approved")
    _remember_match_decisions(ctx, plan, decisions)
    return {"pending": 0, "approved": True, "writes_planned": len(ops)}


def _approve_batches(ctx: RunContext, plan: Plan, ops: list, decisions, digest: str) -> dict[str, Any]:
    """For each apply batch whose own part of the plan, against its own slice of the snapshot, resolves to
    exactly its share of the approved writes: the hashes its apply task checks (`batch_ops`). A batch
    that does not (or was planned before batches were kept) is applied from the whole plan."""
    numbers = (ctx.store.get_data(ctx.run_id, "batches") or {"batches": []})["batches"]
    out: dict[str, Any] = {"plan_hash": plan_hash(plan), "approved_hash": digest,
                           "inputs": _inputs_digest(ctx, decisions), "batches": {}}
    for i, batch in enumerate(numbers):
        text = ctx.store.get_data_text(ctx.run_id, f"batch:{i}")
        if text is None:
            continue
        doc = _BatchDoc.model_validate_json(text)
        part, part_snapshot = doc.plan, doc.snapshot
        students = set(batch)
        share = [op for op in ops if op.student_number in students]
        mine = resolve_run(ctx, part, part_snapshot, decisions)
        if {sp.student_number for sp in part.students} == students and ops_hash(mine) == ops_hash(share):
            out["batches"][str(i)] = {
                "plan_hash": plan_hash(part),
                "ops_hash": ops_hash([op for op in share if op.stage == "apply"]),
                "cleanup_hash": ops_hash([op for op in share if op.stage == "cleanup"])}
        else:
            log.warning("apply batch %s does not resolve alone to its share of the writes; it will be applied "
                        "from the whole plan", i)
    return out


def _inputs_digest(ctx: RunContext, decisions) -> str:
    """A digest of everything besides the plan that resolving reads: the decisions and the reviewers'
    orders and value choices. Unchanged since approval, a batch may be checked on its own."""
    import hashlib
    import json

    doc = {"decisions": {k: d.model_dump(mode="json") for k, d in sorted(decisions.items())
                         if not k.startswith(APPLY_ITEMS)},  # items apply raises are not resolved
           "order": ctx.store.data_by_prefix(ctx.run_id, "order:"),
           "values": ctx.store.data_by_prefix(ctx.run_id, "values:")}
    return hashlib.sha256(json.dumps(doc, sort_keys=True, default=str).encode()).hexdigest()


def _remember_match_decisions(ctx: RunContext, plan: Plan, decisions) -> None:
    contacts = {(sp.submission_id, cp.slot): cp.submitted for sp in plan.students for cp in sp.contacts}
    for item in plan.review_items:
        d = decisions.get(item.key)
        if d is None or item.kind not in {"possible_match", "name_mismatch"}:
            continue
        submitted = contacts[(item.submission_id, item.slot)]
        fp = fingerprint(item.student_number, submitted)
        if d.choice.startswith("confirm:"):
            ctx.store.remember(ctx.district.name, fp, int(d.choice.split(":")[1]), "confirm", d.decided_by)
        elif d.choice == "not_a_match":
            for cand in item.payload.get("candidates", []):
                ctx.store.remember(ctx.district.name, fp, cand["person_id"], "not_a_match", d.decided_by)


# ---------------------------------------------------------------- apply and cleanup


def approved_ops(ctx: RunContext):
    run = ctx.store.get_run(ctx.run_id)
    plan, snapshot = ctx.plan(), ctx.plan_snapshot()
    decisions = ctx.store.decisions(ctx.run_id)
    if run.plan_hash != plan_hash(plan):
        raise PlanChangedError(f"run {ctx.run_id}: the stored plan is not the one reviewers saw")
    ops = resolve_run(ctx, plan, snapshot, decisions)
    if run.approved_hash != ops_hash(ops):
        raise PlanChangedError(f"run {ctx.run_id}: the writes differ from what was approved; approve again")
    return ops, snapshot, _reviewer_of(plan, ops, decisions)


def _reviewer_of(plan: Plan, ops: list, decisions) -> dict[str, str]:
    reviewer_of_student: dict[str, str] = {}  # the first reviewer who decided an item of the student
    for item in plan.review_items:
        d = decisions.get(item.key)
        if d:
            reviewer_of_student.setdefault(item.student_number, d.decided_by)
    return {op.key: reviewer_of_student[op.student_number] for op in ops if op.student_number in reviewer_of_student}


def _batch_entries(ctx: RunContext, decisions) -> dict[str, Any]:
    """The approval's hashes of each batch that may be checked on its own: the run is approved as it is
    now, and nothing resolving reads changed since (otherwise none: the whole run is checked, as before
    there were batches)."""
    run = ctx.store.get_run(ctx.run_id)
    approved = ctx.store.get_data(ctx.run_id, "approved_batches") or {}
    if (run.approved_hash is None or approved.get("approved_hash") != run.approved_hash
            or approved.get("plan_hash") != run.plan_hash or approved.get("inputs") != _inputs_digest(ctx, decisions)):
        return {}
    return approved.get("batches") or {}


def batch_ops(ctx: RunContext, batch: int, stage: str = "apply", entries: dict[str, Any] | None = None,
              decisions=None):
    """The approved writes of one batch at one stage, read and resolved from the batch's own part of the
    plan and slice of the snapshot (never the whole district); checked against the hashes taken at
    approval. Returns (ops, snapshot slice, reviewer of each op, the batch's plan)."""
    if decisions is None:
        decisions = ctx.store.decisions(ctx.run_id)
    entry = (_batch_entries(ctx, decisions) if entries is None else entries).get(str(batch))
    if entry is None:
        ops, snapshot, reviewer_of = approved_ops(ctx)
        batches = (ctx.store.get_data(ctx.run_id, "batches") or {"batches": []})["batches"]
        students = set(batches[batch]) if batch < len(batches) else set()
        part = sub_plan(ctx.plan(), students)
        return [op for op in ops if op.stage == stage and op.student_number in students], snapshot, reviewer_of, part
    text = ctx.store.get_data_text(ctx.run_id, f"batch:{batch}")
    doc = _BatchDoc.model_validate_json(text) if text else _BatchDoc()
    part, snapshot = doc.plan, doc.snapshot
    if plan_hash(part) != entry["plan_hash"]:
        raise PlanChangedError(f"run {ctx.run_id}: the stored plan of batch {batch} is not the one reviewers saw")
    ops = [op for op in resolve_run(ctx, part, snapshot, decisions) if op.stage == stage]
    if ops_hash(ops) != entry["ops_hash" if stage == "apply" else f"{stage}_hash"]:
        raise PlanChangedError(f"run {ctx.run_id}: the writes differ from what was approved; approve again")
    return ops, snapshot, _reviewer_of(part, ops, decisions), part


class _BatchDoc(BaseModel):
    plan: Plan = Field(default_factory=Plan)
    snapshot: Snapshot = Field(default_factory=Snapshot)


def batch_ids(ctx: RunContext) -> list[int]:
    """Indexes of the run's apply batches (what the apply task is mapped over)."""
    data = ctx.store.get_data(ctx.run_id, "batches") or {"batches": []}
    return list(range(len(data["batches"]))) or [0]


def _execute(ctx: RunContext, client: Any, stage: str, batch: int | None = None) -> dict[str, Any]:
    name = stage if batch is None else f"{stage}_batch_{batch}"
    if ctx.params.dry_run:
        return ctx.counts(name, {"dry_run": True, "writes": 0})
    writable_run(ctx.store, ctx.run_id)  # before anything is resolved: a dry or superseded run is refused
    if batch is not None and stage == "apply":
        mine, snapshot, reviewer_of, _ = batch_ops(ctx, batch)
    else:
        ops, snapshot, reviewer_of = approved_ops(ctx)
        mine = [op for op in ops if op.stage == stage]
        if batch is not None:
            batches = (ctx.store.get_data(ctx.run_id, "batches") or {"batches": []})["batches"]
            students = set(batches[batch]) if batch < len(batches) else set()
            mine = [op for op in mine if op.student_number in students]
    applier = Applier(client, ctx.store, ctx.run_id, snapshot, reviewer_of,
                      concurrency=ctx.district.apply.concurrency,
                      region=ctx.region)
    outcome = applier.run(mine, batch_size=ctx.district.apply.student_batch_size)
    left = outcome.failed or outcome.stale or outcome.ambiguous
    ctx.store.update_run(ctx.run_id, status=f"{stage}_partial" if left else f"{stage}_done")
    # a retried task (or a retry_run_id run) adds to the writes of the attempts before it
    earlier = (ctx.store.get_run(ctx.run_id).counts or {}).get(name, {})
    total = earlier.get("http_writes_total", earlier.get("http_writes", 0)) + outcome.http_writes
    return ctx.counts(name, {"operations": len(mine), **outcome.as_counts(), "http_writes_total": total})


def apply_plan(ctx: RunContext, client: Any, batch: int | None = None) -> dict[str, Any]:
    return _execute(ctx, client, "apply", batch)


def _unused_contacts(plan: Plan) -> set[int]:
    return {c.person_id for sp in plan.students for cp in sp.contacts for c in cp.candidates
            if cp.submitted.remove is False and c.person_id != cp.person_id and cp.match_class != MatchClass.CERTAIN}


def cleanup(ctx: RunContext, client: Any) -> dict[str, Any]:
    """Expirations, unlinks and contact orders, batch by batch (one batch's plan and snapshot slice in
    memory at a time; batches share no contact), or the whole run at once when the batches cannot be
    checked on their own."""
    if not ctx.params.dry_run:
        writable_run(ctx.store, ctx.run_id)
    batches = (ctx.store.get_data(ctx.run_id, "batches") or {"batches": []})["batches"]
    decisions = ctx.store.decisions(ctx.run_id)
    entries = _batch_entries(ctx, decisions)
    if ctx.params.dry_run or not batches or any(str(b) not in entries for b in range(len(batches))):
        counts = _execute(ctx, client, "cleanup")
        unused = _unused_contacts(ctx.plan())
    else:
        total, operations, unused = ApplyOutcome(), 0, set()
        for b in range(len(batches)):
            mine, snapshot, reviewer_of, part = batch_ops(ctx, b, "cleanup", entries, decisions)
            applier = Applier(client, ctx.store, ctx.run_id, snapshot, reviewer_of,
                              concurrency=ctx.district.apply.concurrency,
                              region=ctx.region)
            outcome = applier.run(mine, batch_size=ctx.district.apply.student_batch_size)
            operations += len(mine)
            total.add(outcome)
            total.http_writes += outcome.http_writes
            unused |= _unused_contacts(part)
            del mine, snapshot, part, applier
        ctx.store.update_run(ctx.run_id, status="cleanup_partial" if total.failed or total.stale or total.ambiguous
                             else "cleanup_done")
        earlier = (ctx.store.get_run(ctx.run_id).counts or {}).get("cleanup", {})
        writes = earlier.get("http_writes_total", earlier.get("http_writes", 0)) + total.http_writes
        counts = ctx.counts("cleanup", {"operations": operations, **total.as_counts(), "http_writes_total": writes})
    ctx.store.put_data(ctx.run_id, "unused_contacts", {"person_ids": sorted(unused)})
    return {**counts, "unused_matched_contacts": len(unused)}


# ---------------------------------------------------------------- report


def report(ctx: RunContext) -> dict[str, Any]:
    """Summarise the run, and advance the sync cursor only when nothing is left that may still be written:
    no failed (retryable or not), stale, ambiguous or unconfirmed write. A refused write does not hold it:
    its record is quarantined with the reason, shown on later runs' pages until fixed, and the district
    moves on."""
    from .report import build_report, save_report

    summary = build_report(ctx)
    save_report(ctx.store, ctx.run_id, summary)
    run = ctx.store.get_run(ctx.run_id)
    complete = summary["writes"]["blocking"] == 0
    subset = (run.counts or {}).get("extract_submissions", {}).get("subset", False)
    cursor_advanced = False
    if not (ctx.params.dry_run or run.dry_run) and complete and not subset:
        # compare-and-set: a run that extracted after this one may have moved the cursor further already
        cursor_advanced = ctx.store.advance_cursor(ctx.district.name, run.cursor_to, ctx.run_id, run.extract_seq)
    ctx.store.update_run(ctx.run_id, status="complete" if complete else "incomplete")
    return {"students_updated": summary["students"]["updated"], "writes": summary["writes"]["made"],
            "failed": summary["writes"]["failed"], "cursor_advanced": cursor_advanced}
