"""Preview one form: "send a test record" before a new mapping is trusted.

One real submission goes through the same stages a run uses — extraction, the live PowerSchool snapshot,
mapping and quality, matching, planning — in a throwaway store, and the result is the plan and review items
that submission would produce. Nothing is written anywhere: PowerSchool is only read (its PowerQueries),
the district's store gains no run (its remembered match decisions are only read), and the throwaway store
is deleted. A dry run stays the tool for a whole batch.

Used by `writeback mappings preview` and the review app's preview page (one definition of the preview).
"""

from __future__ import annotations

import datetime as dt
import tempfile
from pathlib import Path
from typing import Any

from pydantic import BaseModel, Field

from ..config import DistrictConfig
from ..domain.models import FieldChange, ReviewItem, StudentPlan, SubmittedContact
from ..domain.plan import policy_note
from ..store import Store
from .stages import (
    RunContext,
    RunParams,
    build_run_plan,
    check_quality,
    extract_snapshot,
    extract_submissions,
)
from .stages import match_contacts as match_stage

__all__ = ["Preview", "district_clients", "preview_submission", "render_preview"]


class PreviewProblem(BaseModel):
    field: str
    reason: str
    value: str = ""
    check: str = ""


class Preview(BaseModel):
    district: str
    submission_id: str
    found: bool = True
    form_id: str = ""
    mapping: str = ""
    student_number: str = ""
    quarantined: list[PreviewProblem] = Field(default_factory=list)  # why the record would be quarantined
    plan: StudentPlan | None = None
    items: list[ReviewItem] = Field(default_factory=list)
    new_contacts: dict[str, SubmittedContact] = Field(default_factory=dict)
    snapshot: dict[str, int] = Field(default_factory=dict)  # rows read from PowerSchool, by entity


class _OneSubmission:
    """A submissions source holding the one submission the preview is about."""

    def __init__(self, submission: dict[str, Any]):
        self.submission = submission

    def fetch_since(self, since: str | None = None) -> tuple[list[dict[str, Any]], str | None]:
        return [self.submission], None


def district_clients(config: DistrictConfig) -> tuple[Any, Any]:
    """(SchoolEngage client, PowerSchool client) from the district's Airflow connections."""
    from ..hooks.powerschool import PowerSchoolHook
    from ..hooks.schoolengage import SchoolEngageHook

    return (SchoolEngageHook(config.submissions_conn_id).get_conn(),
            PowerSchoolHook(config.powerschool_conn_id).get_conn())


def preview_submission(district: DistrictConfig, submission_id: str, source: Any, client: Any, *,
                       today: dt.date | None = None, remembered_from: Store | None = None) -> Preview:
    """The plan and review items `submission_id` would produce in a run of `district`, writing nothing.

    `source` answers `get_submission(id)` (the SchoolEngage client), `client` is the PowerSchool client;
    `remembered_from` is the district's store, whose remembered match decisions a run would apply."""
    from ..sources.schoolengage import SubmissionNotFound

    try:
        submission = source.get_submission(submission_id)
    except SubmissionNotFound:
        return Preview(district=district.name, submission_id=submission_id, found=False)
    config = district.model_copy(deep=True)
    config.quality.max_bad_share = 1.0  # one record: its quarantine is the answer, not a stopped run
    with tempfile.TemporaryDirectory(prefix="writeback-preview-") as work:
        store = Store(f"sqlite:///{Path(work) / 'preview.db'}", migrate=True)
        try:
            run_id = f"preview:{submission_id}"
            store.ensure_run(run_id, config.name, dry_run=True)
            if remembered_from is not None:
                for (fingerprint, person_id), decision in remembered_from.remembered(config.name).items():
                    store.remember(config.name, fingerprint, person_id, decision, "preview")
            ctx = RunContext(district=config, store=store, run_id=run_id,
                             params=RunParams(dry_run=True, submission_ids=[submission_id]),
                             today=today or dt.datetime.now(dt.UTC).date())
            extract_submissions(ctx, _OneSubmission(submission))
            read = extract_snapshot(ctx, client)
            check_quality(ctx)
            out = Preview(district=config.name, submission_id=submission_id,
                          form_id=str(submission.get("form_id") or ""),
                          student_number=str(submission.get("student_number") or ""),
                          snapshot={k: v for k, v in read.items() if isinstance(v, int)})
            out.mapping = getattr(ctx.forms.mapping_for(out.form_id), "name", "")
            out.quarantined = [PreviewProblem(field=q.field, reason=q.reason, value=q.value, check=q.check)
                               for q in store.quarantine(run_id)]
            if out.quarantined:
                return out
            match_stage(ctx)
            build_run_plan(ctx)
            plan = ctx.plan()
            out.plan = plan.students[0] if plan.students else None
            out.items = plan.review_items
            out.new_contacts = plan.new_contacts
            return out
        finally:
            store.dispose()


# ---------------------------------------------------------------- as text (the command line)


def field_line(fc: FieldChange) -> str:
    decided = fc.held or fc.needs_review  # the policy decided this field's status
    note = policy_note(fc.policy, fc.held) if decided else (f"policy {fc.policy.value}"
                                                            if fc.policy.value != "always" else "")
    change = f"{fc.old or '∅'} → {fc.new or '∅'}" if fc.old != fc.new else (fc.old or "∅")
    return f"{fc.target}: {change} [{fc.action.value}, {fc.status.value}]" + (f" — {note}" if note else "")


def render_preview(p: Preview) -> str:
    head = f"preview of submission {p.submission_id} for district {p.district}"
    if not p.found:
        return f"{head}: no such submission in SchoolEngage"
    lines = [f"{head}: form {p.form_id or '(none)'}, mapping {p.mapping or '(none)'}, student {p.student_number}",
             "  nothing was written: PowerSchool was only read ("
             + ", ".join(f"{n} {k}" for k, n in sorted(p.snapshot.items())) + ")"]
    if p.quarantined:
        lines.append("  the record would be QUARANTINED:")
        lines += [f"    - {q.field}: {q.reason}" + (f" (value {q.value!r})" if q.value else "") for q in p.quarantined]
        return "\n".join(lines)
    sp = p.plan
    if sp is None:
        return "\n".join([*lines, "  no plan (the student is not in PowerSchool's snapshot)"])
    lines.append("  student fields:")
    lines += [f"    {field_line(fc)}" for fc in sp.field_changes]
    lines.append("  contacts" + (f" — order: {sp.order_reason}" if sp.order_reason else "") + ":")
    for cp in sorted(sp.contacts, key=lambda c: c.submitted.place):
        s = cp.submitted
        who = f"#{cp.person_id}" if cp.person_id else ("new contact" if cp.action.value == "create" else "?")
        lines.append(f"    place {s.place} {s.section}: {s.first_name} {s.last_name} — {cp.match_class.value} "
                     f"{who}, {cp.action.value}")
        for c in cp.changes:
            if c.op != "keep" or c.held:
                note = policy_note(c.policy, c.held)
                lines.append(f"      {c.kind} {c.key}: {c.old or '∅'} → {c.new or '∅'} [{c.op}]"
                             + (f" — {note}" if note else ""))
    lines += [f"  note: {n}" for n in sp.notes]
    lines.append(f"  review items: {len(p.items)}")
    lines += [f"    - {i.kind} ({i.key}): options {', '.join(i.options)}" for i in p.items]
    return "\n".join(lines)
