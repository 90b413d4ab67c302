"""Malformed submission envelopes from SchoolEngage (served by its sandbox over loopback) through
`extract_submissions` and `check_quality`: each is kept and quarantined with a reason, never dropped."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from sandbox.schoolengage.server import start_in_thread
from writeback.config import district as district_config
from writeback.pipeline import stages
from writeback.sources.schoolengage import SchoolEngageClient

KEY = "badinput-key"
@pytest.mark.parametrize(("name", "envelope", "field"), [
    ("fields-null", {"fields": None}, "student_number"),
    ("no-fields", {}, "student_number"),
    ("number-is-a-dict", {"student_number": {"$ne": 1}, "fields": {"student_number": {"$ne": 1}}}, "student_number"),
    ("number-is-an-int", {"student_number": 7, "fields": {"student_number": 7}}, "student_number"),
    ("fields-list", {"fields": [["student_number", "100001"]]}, "fields"),
    ("fields-text", {"fields": "student_number=100001"}, "fields"),
    ("form-id-number", {"form_id": 2026}, "form_id"),
    ("submitted-at-list", {"submitted_at": ["2026-08-01"]}, "submitted_at"),
])
def test_a_malformed_envelope_is_quarantined_not_fatal(world, name: str, envelope: dict[str, Any],
                                                       field: str) -> None:
    good = copy.deepcopy(world.bases[:3])
    bad = {"id": f"SUB-{name}", "updated_at": "2026-08-01T10:00:00Z", "fields": {}}
    bad.update(copy.deepcopy(envelope))
    server = start_in_thread([*good, bad], api_key=KEY)
    try:
        config = district_config("demo").model_copy(deep=True)
        config.quality.max_bad_share = 1.0
        ctx = world.context([], config=config, prefix=f"extract-{name}")
        counts = stages.extract_submissions(ctx, SchoolEngageClient(server.url, KEY))
    finally:
        server.stop()
    assert counts["received"] == 4
    stages.check_quality(ctx)
    rows = {r.submission_id: r.status for r in ctx.store.submissions(ctx.run_id)}
    assert rows[bad["id"]] == "quarantined" and list(rows.values()).count("valid") == 3
    problems = [q for q in ctx.store.quarantine(ctx.run_id) if q.submission_id == bad["id"]]
    assert problems and problems[0].field == field and problems[0].reason
