"""Malformed submissions through the real stages — mapping and the Great Expectations suites
(`check_quality`) on a real store with a snapshot the sandbox served, then `match_contacts` and
`build_run_plan` for what passes.

Properties: no exception but `QualityGateError` (and that only above the district's bad share); every
submission ends up valid (with its FormRecord) or quarantined — the counts add up; every quarantined
record has problems naming it and a field one of its mutations touched; a definite fault is never
waved through; hostile text in free-text fields is kept as typed in the stored payload, and in the record
with only what nobody sees changed (invisible characters dropped, spacing made single, NFC).
"""

from __future__ import annotations

import copy
import unicodedata
from typing import Any

from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from writeback.config import district as district_config
from writeback.domain.models import FormRecord
from writeback.pipeline import stages

from .strategies import FREE_TEXT, Mutation, hostile_text, must_quarantine, mutate, mutations

# GX runs once per example (~0.8 s): 30 examples of up to 6 submissions keep this file near 30 s.
SETTINGS = settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow,
                                                                          HealthCheck.data_too_large])

hostile_names = st.integers(1, 4).flatmap(lambda n: st.sampled_from(["first_name", "last_name"]).flatmap(
    lambda p: hostile_text.map(lambda v: Mutation("set", f"contact{n}_{p}", v))))
submission_mutations = st.lists(st.one_of(mutations, hostile_names), max_size=5)


# Characters that render as nothing: control and format characters, Hangul fillers, the braille blank and
# the like. Spelled out here rather than taken from `domain.normalize`, which this test checks.
_UNSEEN = set("\u115f\u1160\u3164\uffa0\u2800\u034f\u17b4\u17b5")


def seen(text: str) -> str:
    """What a person sees of a text: its visible characters in order (NFC), spacing aside."""
    kept = "".join(ch for ch in text if not (ch.isspace() or ch in _UNSEEN
                                             or unicodedata.category(ch) in ("Cc", "Cf")))
    return unicodedata.normalize("NFC", kept)


def kept_as_typed(stored: str, typed: str) -> bool:
    """The record holds what the family typed, with only invisible characters and spacing changed."""
    return (seen(stored) == seen(typed) and stored == stored.strip() and "  " not in stored
            and stored == unicodedata.normalize("NFC", stored))


def related(problem_field: str, m: Mutation, targets: dict[str, str]) -> bool:
    if problem_field in (m.field, targets.get(m.field)):
        return True
    if m.field.startswith("contact") and "_" in m.field:
        slot = m.field[len("contact"):].split("_", 1)[0]
        return problem_field.startswith(f"contact{slot}")
    return False


@SETTINGS
@given(data=st.data(), plan=st.lists(submission_mutations, min_size=1, max_size=6), strict=st.booleans())
def test_bad_records_are_quarantined_with_reasons_and_nothing_is_dropped(world, data, plan, strict) -> None:
    bases = data.draw(st.lists(st.sampled_from(world.bases), min_size=len(plan), max_size=len(plan),
                               unique_by=lambda s: s["id"]))
    submissions: list[dict[str, Any]] = []
    muts_of: dict[str, list[Mutation]] = {}
    for base, muts in zip(bases, plan, strict=True):
        sub = copy.deepcopy(base)
        sub["fields"] = mutate(base["fields"], muts)
        submissions.append(sub)
        muts_of[sub["id"]] = muts
    config = district_config("demo").model_copy(deep=True)
    config.quality.max_bad_share = 0.0 if strict else 1.0  # both sides of the gate
    ctx = world.context(submissions, config=config)

    try:
        counts = stages.check_quality(ctx)
    except stages.QualityGateError as exc:
        assert strict, "the gate must only stop a run above the district's limit"
        assert "above the district's limit" in str(exc)
        assert ctx.store.get_run(ctx.run_id).status == "failed_quality"
        counts = None

    rows = {r.submission_id: r for r in ctx.store.submissions(ctx.run_id)}
    sent = {s["id"]: s for s in submissions}
    assert set(rows) == set(sent)  # nothing dropped, nothing invented
    for sid, row in rows.items():
        assert row.payload["fields"] == sent[sid]["fields"], "the submission must be stored verbatim"
    valid = {sid for sid, r in rows.items() if r.status == "valid"}
    quarantined = {sid for sid, r in rows.items() if r.status == "quarantined"}
    assert valid | quarantined == set(rows) and not valid & quarantined  # every record: one of the two
    if counts is not None:
        assert counts["valid"] + counts["quarantined"] == len(submissions)

    problems: dict[str, list] = {}
    for q in ctx.store.quarantine(ctx.run_id):
        problems.setdefault(q.submission_id, []).append(q)
    assert set(problems) == quarantined  # a quarantined record always says why
    targets = {s.field: s.target for s in world.mapping.student}
    for sid in quarantined:
        for q in problems[sid]:
            assert q.field and q.reason.strip(), q
            assert any(related(q.field, m, targets) for m in muts_of[sid]), (q.field, q.reason, muts_of[sid])
    for sid in valid:
        record = FormRecord.model_validate(rows[sid].record)
        assert not must_quarantine(sent[sid]["fields"], muts_of[sid]), f"{sid} passed with a definite fault"
        for m in muts_of[sid]:  # hostile text that survived is kept as typed, never rewritten
            later = [x for x in muts_of[sid] if x.field == m.field]
            if m.kind == "set" and isinstance(m.value, str) and later[-1] is m and m.field in FREE_TEXT:
                stored = record.student_fields.get(targets[m.field], "")
                assert kept_as_typed(stored, m.value), (m.field, m.value, stored)
            if m.kind == "set" and isinstance(m.value, str) and later[-1] is m and m.field.endswith("_name") \
                    and m.field.startswith("contact") and seen(m.value):
                slot = int(m.field[len("contact"):].split("_", 1)[0])
                contact = next(c for c in record.contacts if c.slot == slot)
                part = m.field.split("_", 1)[1]
                assert kept_as_typed(getattr(contact, part), m.value), (m.field, m.value, getattr(contact, part))

    event(f"gate stopped the run: {counts is None}")
    event(f"quarantined records: {min(len(quarantined), 3)}{'+' if len(quarantined) >= 3 else ''}")
    if counts is None:
        return
    matched = stages.match_contacts(ctx)
    assert matched["contacts"] == sum(len(FormRecord.model_validate(rows[s].record).contacts) for s in valid)
    planned = stages.build_run_plan(ctx)
    plan = ctx.plan()
    assert {sp.submission_id for sp in plan.students} == valid and planned["students"] == len(valid)
