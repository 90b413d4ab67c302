"""The mappings on the review page, in a real browser (headless Chromium through Playwright) inside a real
Airflow API server: the preview of one form (nothing written: the sandbox counts writes), and a run's
page showing the reason for each student's contact order and the write policy that decided a field."""

from __future__ import annotations

import re
from urllib.parse import quote

import httpx
import pytest
import requests

from tests import chromium

from .conftest import PREVIEW_PS, PREVIEW_SE_KEY, ROOT, AirflowServer, PreviewSandboxes

pytestmark = pytest.mark.integration

ARTIFACTS = ROOT / "test-artifacts" / "review"


@pytest.fixture(scope="module")
def browser():
    yield from chromium.launch()


@pytest.fixture()
def page(browser, airflow_server: AirflowServer):
    context = browser.new_context(viewport={"width": 1280, "height": 1600})
    context.add_cookies([{"name": "_token", "value": airflow_server.token("admin"), "url": airflow_server.url}])
    page = context.new_page()
    yield page
    context.close()


def _writes(url: str) -> int:
    return requests.get(f"{url}/_sandbox/stats", timeout=10).json()["writes"]


def _submission(world: PreviewSandboxes, form: str, **extra) -> dict:
    for sub in world.submissions:
        t = world.truth["submissions"][sub["id"]]
        if sub["form_id"] == form and t["valid"] and all((t.get("form") or {}).get(k) == v for k, v in extra.items()):
            return sub
    raise AssertionError(f"no {form} submission with {extra} in the preview district")


def _students(world: PreviewSandboxes) -> dict[str, dict]:
    token = requests.post(f"{world.ps_url}/oauth/access_token", auth=PREVIEW_PS,
                          data={"grant_type": "client_credentials"}, timeout=10).json()["access_token"]
    rows = requests.post(f"{world.ps_url}/ws/schema/query/com.writeback.snapshot.students?pagesize=0", json={},
                         headers={"Authorization": f"Bearer {token}"}, timeout=30).json()["record"]
    return {r["students.student_number"]: r for r in rows}


def test_a_registrar_previews_one_form_and_nothing_is_written(page, airflow_server, store, preview_sandboxes):
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    sub = _submission(preview_sandboxes, "returning-2026", mailing="differs")
    runs_before = {r.id for r in store.list_runs()}
    writes_before = _writes(preview_sandboxes.ps_url)
    page.goto(f"{airflow_server.url}/writeback/")
    with page.expect_navigation():
        page.locator(".preview-links a", has_text="demo").click()
    page.fill("input[name=submission]", sub["id"])
    with page.expect_navigation():
        page.click(".preview-form button[type=submit]")
    result = page.locator("#preview-result")
    assert result.get_attribute("data-submission") == sub["id"]
    assert result.locator(".mapping").inner_text() == "returning-2026"
    assert "Nothing was written" in result.locator(".written-nothing").inner_text()
    mailing = result.locator('tr[data-target="addresses.mailing.street"]')
    ps = _students(preview_sandboxes)[sub["student_number"]]
    assert mailing.locator(".old").inner_text() == ps["students.mailing_street"]
    assert mailing.locator(".new").inner_text() == sub["fields"]["mail_street"]
    assert mailing.locator(".policy.held").inner_text() == "if_empty"
    assert "PowerSchool has a value" in mailing.locator(".policy-note").inner_text()
    assert "guardian1 1" in result.locator(".order-reason").inner_text()
    assert result.locator(".preview-contacts li[data-section=guardian1]").count() == 1
    page.screenshot(path=str(ARTIFACTS / "preview-returning.png"), full_page=True)
    assert _writes(preview_sandboxes.ps_url) == writes_before, "the preview wrote to PowerSchool"
    assert {r.id for r in store.list_runs()} == runs_before, "the preview stored a run"


def test_an_unmapped_form_previews_as_quarantined(page, airflow_server, preview_sandboxes):
    extra = {"id": "SUB-BUS-1", "form_id": "transportation-2026", "student_number": "100001",
             "fields": {"student_number": "100001", "bus_stop": "Oak & 5th"}}
    assert requests.post(f"{preview_sandboxes.se_url}/_sandbox/submissions", json=[extra], timeout=10).ok
    page.goto(f"{airflow_server.url}/writeback/districts/demo/preview")
    page.fill("input[name=submission]", "SUB-BUS-1")
    with page.expect_navigation():
        page.click(".preview-form button[type=submit]")
    text = page.locator("table.quarantine").inner_text()
    assert "form 'transportation-2026' has no mapping in district demo" in text


def test_the_preview_needs_the_pages_csrf_token(airflow_server):
    with airflow_server.client("admin", cookie=True) as c:
        r = c.post("/districts/demo/preview", data={"submission": "SUB-000001"})
    assert r.status_code == 403 and "CSRF" in r.text
    with httpx.Client(base_url=f"{airflow_server.url}/writeback", timeout=30) as anonymous:
        assert anonymous.get("/districts/demo/preview").status_code in (302, 303, 307, 401)


def test_a_runs_page_shows_why_the_contacts_are_in_their_order_and_which_policy_decided(
        page, airflow_server, store, preview_sandboxes):
    """A run planned by the real stages over the multi-form district: a kindergarten student's panel says its
    contacts follow the kindergarten mapping's sections, a returning student's mailing street carries the
    if_empty badge that kept PowerSchool's value."""
    from writeback.config import district as district_config
    from writeback.operators.context import run_id_for
    from writeback.pipeline import stages
    from writeback.powerschool import PowerSchoolClient
    from writeback.sources.schoolengage import SchoolEngageClient

    dag_run_id = "manual__2026-08-02T00:00:00+00:00"
    run_id = run_id_for("demo", dag_run_id)
    store.ensure_run(run_id, "demo", dag_run_id=dag_run_id)
    ctx = stages.RunContext(district=district_config("demo"), store=store, run_id=run_id)
    stages.extract_submissions(ctx, SchoolEngageClient(preview_sandboxes.se_url, PREVIEW_SE_KEY))
    stages.extract_snapshot(ctx, PowerSchoolClient(preview_sandboxes.ps_url, *PREVIEW_PS))
    stages.check_quality(ctx)
    stages.match_contacts(ctx)
    stages.build_run_plan(ctx)
    students = [sp.student_number for sp in ctx.plan().students]
    kinder = _submission(preview_sandboxes, "kindergarten-2026")
    returning = _submission(preview_sandboxes, "returning-2026", mailing="differs")

    def panel(number: str):
        page.goto(f"{airflow_server.url}/writeback/runs/{quote(run_id, safe='')}?page={students.index(number) // 25 + 1}")
        return page.locator(f'section.student[data-student="{number}"]')

    reason = panel(kinder["student_number"]).locator(".order-reason").inner_text()
    assert reason.startswith("Order: ") and "kindergarten-2026" in reason
    places = panel(kinder["student_number"]).locator(".card-head .pos").all_text_contents()
    assert any(re.fullmatch(r"(mother|father|emergency[12]) · place \d", p) for p in places), places
    # (the demographics may be folded when nothing changes: read the text, not what is drawn)
    mailing = panel(returning["student_number"]).locator('tr[data-target="addresses.mailing.street"]')
    assert mailing.locator(".policy.held").text_content() == "if_empty"
    assert "PowerSchool has a value" in mailing.locator(".policy-note").text_content()
    legal = panel(returning["student_number"]).locator('tr[data-target="name.first_name"] .policy')
    assert legal.text_content() == "never"
    page.screenshot(path=str(ARTIFACTS / "run-order-reason.png"), full_page=True)
