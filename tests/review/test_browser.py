"""A registrar's session in a real browser (Debian's headless Chromium driven by Playwright) against the
review app inside a real Airflow API server, logged in with Airflow's own `_token` cookie."""

from __future__ import annotations

from urllib.parse import quote

import pytest

from tests import chromium

from .conftest import ROOT, AirflowServer

pytestmark = pytest.mark.integration

ARTIFACTS = ROOT / "test-artifacts" / "review"


@pytest.fixture(scope="module")
def browser():
    yield from chromium.launch()


def _progress(page) -> tuple[int, int]:
    el = page.locator("#progress")
    return int(el.get_attribute("data-decided")), int(el.get_attribute("data-total"))


def test_a_reviewer_works_through_a_run(browser, airflow_server: AirflowServer, store, run_id: str) -> None:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    context = browser.new_context(viewport={"width": 1280, "height": 1800})
    context.add_cookies([{"name": "_token", "value": airflow_server.token("admin"), "url": airflow_server.url}])
    page = context.new_page()
    page.on("dialog", lambda d: d.accept())
    run_url = f"{airflow_server.url}/writeback/runs/{quote(run_id, safe='')}"
    try:
        page.goto(run_url)
        assert page.title().startswith(store.get_run(run_id).dag_run_id)
        decided, total = _progress(page)
        assert decided == 0 and total == len(store.items(run_id))
        page.screenshot(path=str(ARTIFACTS / "01-run-page.png"))

        matches = store.items(run_id, kind="possible_match")
        assert len(matches) >= 2
        # confirm one possible match
        confirm = next(o for o in matches[0].options if o.startswith("confirm:"))
        with page.expect_navigation():
            page.locator(f'.item[data-key="{matches[0].item_key}"] button[data-choice="{confirm}"]').click()
        assert "Decided" in page.locator(".notice").first.inner_text()
        row = store.item(run_id, matches[0].item_key)
        assert (row.choice, row.decided_by) == (confirm, "admin")
        # mark another as not a match
        with page.expect_navigation():
            page.locator(f'.item[data-key="{matches[1].item_key}"] button[data-choice="not_a_match"]').click()
        assert store.item(run_id, matches[1].item_key).choice == "not_a_match"
        assert _progress(page)[0] == 2

        # reorder two contacts by dragging the second card above the first
        plan = store.get_data(run_id, "plan")
        student = next(s["student_number"] for s in plan["students"]
                       if len([c for c in s["contacts"] if not c["submitted"]["remove"]]) >= 2
                       and s["student_number"] in {sp["student_number"] for sp in plan["students"][:25]})
        cards = page.locator(f'#s-{student} li.contact[draggable="true"]')
        before = [cards.nth(i).get_attribute("data-ref") for i in range(cards.count())]
        page.locator(f"#s-{student} ol.contacts").evaluate("e => e.scrollIntoView()")  # both cards on screen
        first_box = cards.nth(0).bounding_box()
        with page.expect_navigation():
            cards.nth(1).locator(".handle").drag_to(cards.nth(0), target_position={"x": 10, "y": 5})
        saved = store.get_data(run_id, f"order:{student}")
        assert saved is not None and saved["order"][:2] == [before[1], before[0]], (before, saved)
        assert saved["decided_by"] == "admin" and first_box
        after = page.locator(f'#s-{student} li.contact[draggable="true"]')
        assert [after.nth(i).get_attribute("data-ref") for i in range(2)] == [before[1], before[0]]
        # and back with the arrow button (works without JavaScript too)
        with page.expect_navigation():
            after.nth(1).locator('button[aria-label="Move up"]').click()
        assert store.get_data(run_id, f"order:{student}")["order"][:2] == before[:2]
        page.locator(f"#s-{student}").screenshot(path=str(ARTIFACTS / "02-reordered-student.png"))

        # expire a removed contact with a chosen end date
        removal = store.items(run_id, kind="contact_removal")[0]
        block = page.locator(f'.item[data-key="{removal.item_key}"]')
        block.locator('input[name="end_date"]').fill("2026-09-15")
        with page.expect_navigation():
            block.locator('button[data-choice="expire"]').click()
        row = store.item(run_id, removal.item_key)
        assert (row.choice, row.decision_data) == ("expire", {"end_date": "2026-09-15"})
        # the expired contact is listed last in its student's contacts
        cards = page.locator(f"#s-{removal.student_number} li.contact")
        assert "expired" in (cards.nth(cards.count() - 1).get_attribute("class") or "")
        assert _progress(page)[0] == 3

        # approve everything safe (the page asks to confirm; the dialog handler accepts)
        with page.expect_navigation():
            page.locator("#bulk-approve").click()
        decided_now = sum(1 for i in store.items(run_id) if i.state == "decided")
        decided, total = _progress(page)
        assert decided == decided_now and total == len(store.items(run_id))
        assert page.locator("#progress .progress-text").inner_text().startswith(f"{decided} of {total} decided")
        left = {i.kind for i in store.items(run_id, state="pending")}
        assert left and left <= {"possible_match", "name_mismatch", "phone_type_mismatch", "conflicting_forms"}
        page.screenshot(path=str(ARTIFACTS / "03-after-bulk.png"))
        page.goto(run_url + "?state=pending")
        assert page.locator('.item[data-state="decided"]').count() == 0
        page.screenshot(path=str(ARTIFACTS / "04-pending-only.png"), full_page=True)
    finally:
        context.close()


def test_a_reviewer_chooses_per_value_options_on_a_contact_card(browser, airflow_server: AirflowServer, store,
                                                               run_id: str) -> None:
    from .test_api import PAGE_SIZE, student_with_values

    student, row = student_with_values(store, run_id)
    other = next(o for o in row["options"] if o != row["options"][0])
    numbers = [s["student_number"] for s in store.get_data(run_id, "plan")["students"]]
    context = browser.new_context(viewport={"width": 1280, "height": 1800})
    context.add_cookies([{"name": "_token", "value": airflow_server.token("admin"), "url": airflow_server.url}])
    page = context.new_page()
    try:
        page.goto(f"{airflow_server.url}/writeback/runs/{quote(run_id, safe='')}"
                  f"?page={numbers.index(student) // PAGE_SIZE + 1}")
        card = page.locator(f'#s-{student} tr[data-ref="{row["ref"]}"]').locator("xpath=ancestor::details[1]")
        card.evaluate("e => e.open = true")
        card.locator(f'select[name="v:{row["ref"]}"]').select_option(other)
        with page.expect_navigation():
            card.locator("button.save-values").click()
        assert "Value choices saved" in page.locator(".notice").first.inner_text()
        saved = store.get_data(run_id, f"values:{student}")
        assert saved["choices"] == {row["ref"]: other} and saved["decided_by"] == "admin"
        page.locator(f"#s-{student}").screenshot(path=str(ARTIFACTS / "05-value-choices.png"))
    finally:
        context.close()
