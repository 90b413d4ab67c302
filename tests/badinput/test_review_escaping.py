"""Injected strings reach the review page inert: a run built by the real stages from submissions carrying
script, template and SQL strings in names, streets and (quarantined) emails and phones is rendered by the
review app over a real store, and no raw markup appears — only its escaped text.

Authentication is not under test here (tests/security covers it with the real Airflow auth manager), so
the app gets a fixed reviewer through its `Auth` interface and is driven in-process."""

from __future__ import annotations

import copy
from urllib.parse import quote

import pytest
from fastapi import Request
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from markupsafe import escape

from writeback.config import district as district_config
from writeback.domain.models import RecordProblem
from writeback.pipeline import stages
from writeback.review.app import create_app
from writeback.review.auth import Principal

from .strategies import INJECTIONS

MARKUP = [s for s in INJECTIONS if any(c in s for c in "<>\"'")]


class Reviewer:
    """A signed-in reviewer with edit rights (the `Auth` interface, in-process)."""

    async def authenticate(self, request: Request) -> Principal:
        return Principal(username="registrar", via="bearer")

    def is_authorized(self, principal: Principal, dag_id: str, method: str) -> bool:
        return True

    def login_url(self, next_url: str) -> str | None:
        return None

    def secret(self) -> bytes:
        return b"badinput-test-secret"


@pytest.fixture(scope="module")
def hostile_run(world):
    """A run whose valid records carry every injection string and whose quarantine holds more."""
    subs = []
    for i, base in enumerate(world.bases[:8]):
        sub = copy.deepcopy(base)
        f = sub["fields"]
        f["contact1_first_name"] = INJECTIONS[i % len(INJECTIONS)]
        f["contact1_last_name"] = INJECTIONS[(i + 3) % len(INJECTIONS)]
        f["student_legal_first_name"] = INJECTIONS[(i + 5) % len(INJECTIONS)]
        f["home_street"] = INJECTIONS[(i + 7) % len(INJECTIONS)]
        subs.append(sub)
    for j, base in enumerate(world.bases[8:10]):  # quarantined: the bad value itself is hostile
        sub = copy.deepcopy(base)
        sub["fields"]["contact1_email"] = "<script>alert('q')</script>@example.com"
        sub["fields"]["contact1_cell_phone"] = '"><img src=x onerror=alert(2)>'
        sub["id"] = f"<b>SUB-{j}</b>"
        subs.append(sub)
    config = district_config("demo").model_copy(deep=True)
    config.quality.max_bad_share = 1.0
    ctx = world.context(subs, config=config, prefix="hostile")
    stages.check_quality(ctx)
    stages.match_contacts(ctx)
    stages.build_run_plan(ctx)
    return ctx


def page_of(world, run_id: str) -> str:
    app = create_app(lambda: world.store, Reviewer(), mount_prefix="")
    with TestClient(app) as client:
        r = client.get(f"/runs/{quote(run_id, safe='')}")
    assert r.status_code == 200, r.text[:500]
    return r.text


def test_injected_strings_are_stored_verbatim_and_shown_escaped(world, hostile_run) -> None:
    store, run_id = hostile_run.store, hostile_run.run_id
    rows = store.submissions(run_id)
    assert {r.status for r in rows} == {"valid", "quarantined"}
    quarantined = {q.submission_id: q for q in store.quarantine(run_id)}
    assert set(quarantined) == {"<b>SUB-0</b>", "<b>SUB-1</b>"}
    plan = hostile_run.plan()
    shown = {cp.submitted.first_name for sp in plan.students for cp in sp.contacts}
    assert set(INJECTIONS[:8]) <= shown  # verbatim in the plan the reviewer decides on

    page = page_of(world, run_id)
    for raw in MARKUP + ["<script>alert('q')</script>", '"><img src=x onerror=alert(2)>', "<b>SUB-0</b>"]:
        assert raw not in page, f"unescaped: {raw}"
    for raw in {*INJECTIONS[:8], "<b>SUB-0</b>"}:
        assert str(escape(raw)) in page, f"not shown: {raw}"
    assert str(escape("<script>alert('q')</script>@example.com")) in page  # the quarantined value, as typed
    assert "{{7*7}}" in page  # no template evaluation of a family's text
    assert page.count("<script") == page.count("<script src=")  # only the app's own script tags


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(text=st.text(min_size=1, max_size=60), where=st.sampled_from(["field", "reason", "value", "submission_id"]))
def test_any_quarantined_text_is_escaped_on_the_page(world, hostile_run, text: str, where: str) -> None:
    value = f"<script>alert({text!r})</script>"
    problem = {"submission_id": "SUB-X", "field": "contact1_email", "reason": "not a valid email address",
               "value": "x", "check": "email"} | {where: value}
    ctx = world.context([], prefix="esc")
    ctx.store.record_quality(ctx.run_id, {}, [RecordProblem(**problem)])
    page = page_of(world, ctx.run_id)
    assert value not in page
    assert str(escape(value)) in page
