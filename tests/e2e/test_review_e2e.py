"""The whole thing, end to end, in a real browser: a registrar reviews a DAG run while Airflow waits.

A real Airflow (api-server, scheduler with the LocalExecutor, dag-processor, triggerer; `conftest.py`)
runs `writeback_demo` against both sandboxes. The test triggers a run through the REST API and waits
until `wait_for_approval` is deferred. Then Debian's headless Chromium (driven by Playwright) logs in on
Airflow's login page, opens the DAG run, its "Writeback review" tab (the plugin's external view, an
iframe) and the sensor's "Review" extra link, and decides the run on the review page: confirms a possible
match, marks another as not a match, drags a contact above another, expires a removed contact on a
chosen date, approves everything safe and decides what is left with the page's buttons. The triggerer
sees the run approved, the DAG applies the plan, and PowerSchool's state is read back through raw HTTP.
"""

from __future__ import annotations

import datetime as dt
import re
import time
from types import SimpleNamespace
from typing import Any
from urllib.parse import quote

import httpx
import pytest

from sandbox import processes
from sandbox.reviewer import choose
from tests import chromium
from writeback.operators.context import run_id_for

from .conftest import DAG_ID, PASSWORD, ROOT, USER, Deployment

pytestmark = pytest.mark.integration

ARTIFACTS = ROOT / "test-artifacts" / "e2e"


@pytest.fixture(scope="module")
def browser():
    yield from chromium.launch()


# ---------------------------------------------------------------- Airflow's REST API


def trigger(dep: Deployment) -> str:
    dep.api("PATCH", f"/dags/{DAG_ID}", json={"is_paused": False})
    run = dep.api("POST", f"/dags/{DAG_ID}/dagRuns", json={"logical_date": None, "conf": {}}).json()
    runs = dep.api("GET", f"/dags/{DAG_ID}/dagRuns").json()["dag_runs"]
    assert [r["dag_run_id"] for r in runs] == [run["dag_run_id"]], "only the triggered run exists"
    return run["dag_run_id"]


def task_states(dep: Deployment, dag_run_id: str) -> dict[str, str | None]:
    tis = dep.api("GET", f"/dags/{DAG_ID}/dagRuns/{quote(dag_run_id, safe='')}/taskInstances").json()
    return {f"{t['task_id']}[{t['map_index']}]" if t["map_index"] >= 0 else t["task_id"]: t["state"]
            for t in tis["task_instances"]}


def wait_until(dep: Deployment, dag_run_id: str, what: str, done, timeout: float) -> dict[str, Any]:
    """Poll the DAG run and its task instances until `done(run, states)`; fail early if the run fails."""
    deadline = time.monotonic() + timeout
    while True:
        dep.check_alive()
        run = dep.api("GET", f"/dags/{DAG_ID}/dagRuns/{quote(dag_run_id, safe='')}").json()
        states = task_states(dep, dag_run_id)
        if done(run, states):
            return run
        if run["state"] == "failed" or "failed" in states.values():
            pytest.fail(f"DAG run {run['state']} waiting for {what}; tasks {states}\n{dep.log_tails()}",
                        pytrace=False)
        if time.monotonic() > deadline:
            pytest.fail(f"no {what} in {timeout:.0f} s: run {run['state']}, tasks {states}\n{dep.log_tails()}",
                        pytrace=False)
        time.sleep(1)


# ---------------------------------------------------------------- PowerSchool, raw HTTP


class PowerSchool:
    """PowerSchool's state through its own API (not our client), like tests/integration/test_full_sync.py."""

    def __init__(self, url: str):
        self.url = url
        r = httpx.post(f"{url}/oauth/access_token", auth=(processes.PS_CLIENT_ID, processes.PS_CLIENT_SECRET),
                       data={"grant_type": "client_credentials"}, timeout=30)
        r.raise_for_status()
        self.headers = {"Authorization": f"Bearer {r.json()['access_token']}", "Accept": "application/json"}

    def query(self, entity: str) -> list[dict]:
        r = httpx.post(f"{self.url}/ws/schema/query/com.writeback.snapshot.{entity}?pagesize=0", json={},
                       headers=self.headers, timeout=60)
        r.raise_for_status()
        return r.json()["record"]

    def current_links(self, student_dcid: int) -> list[dict]:
        """The student's contacts, one row per person (its latest detail), in contact priority order."""
        current: dict[int, dict] = {}
        for r in self.query("links"):
            if int(r["studentcontactassoc.studentdcid"]) != student_dcid:
                continue
            pid = int(r["studentcontactassoc.personid"])
            if pid not in current or r["studentcontactdetail.startdate"] > current[pid]["studentcontactdetail.startdate"]:
                current[pid] = r
        return sorted(current.values(), key=lambda r: int(r["studentcontactassoc.contactpriorityorder"]))


# ---------------------------------------------------------------- the review page


def progress(page) -> tuple[int, int]:
    el = page.locator("#progress")
    return int(el.get_attribute("data-decided")), int(el.get_attribute("data-total"))


def click_decision(page, key: str, choice: str) -> None:
    """Press one of an item's option buttons; the form posts and the server redirects back to the page
    (with a `state=pending` filter the decided item is then gone from it)."""
    button = page.locator(f'.item[data-key="{key}"] button[data-choice="{choice}"]')
    with page.expect_navigation():
        button.click()
    notice = page.locator(".notice").first.inner_text()
    assert notice.startswith("Decided"), f"{key} → {choice}: {notice}"


def api_get(page, url: str, path: str, **params: str) -> Any:
    """The review app's JSON API with the browser's own `_token` cookie (a GET needs no CSRF token)."""
    r = page.request.get(f"{url}/writeback/api/v1{path}", params=params or None)
    assert r.ok, f"GET {path}: {r.status} {r.text()}"
    return r.json()


def careful_choice(item: dict, truth: dict, today: dt.date) -> str:
    """What a careful registrar picks (the sandbox's ground truth, as `sandbox.reviewer` decides)."""
    row = SimpleNamespace(kind=item["kind"], submission_id=item["submission_id"], slot=item["slot"],
                          payload=item["payload"], options=item["options"])
    return choose(row, truth, today)[0]


def card_person_id(card) -> int | None:
    """The PowerSchool person behind a contact card, when the page says so (a certain match or a link)."""
    for tag in card.locator(".card-head .tag").all_inner_texts():
        found = re.match(r"(?:matched )?#(\d+)", tag.strip())
        if found:
            return int(found.group(1))
    return None


def pick_reorder_student(page) -> tuple[str, list[int]]:
    """A student on this page without review items whose contacts are all known PowerSchool persons and
    movable, at least two of them: after the run, PowerSchool's order can be compared person by person."""
    for section in page.locator("section.student").all():
        if section.locator(".item").count():
            continue
        cards = section.locator("li.contact")
        movable = section.locator('li.contact[draggable="true"]')
        if movable.count() < 2 or movable.count() != cards.count():
            continue
        ids = [card_person_id(movable.nth(i)) for i in range(movable.count())]
        if None not in ids and len(set(ids)) == len(ids):
            return section.get_attribute("data-student"), ids
    pytest.fail("no student on the first page has two or more movable, known contacts and no review items")


def test_a_registrar_reviews_a_waiting_dag_run_in_the_browser(browser, deployment: Deployment) -> None:
    started = time.monotonic()
    dep = deployment
    phases: dict[str, float] = {"airflow ready": dep.ready_in}
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    today = dt.datetime.now(dt.UTC).date()

    # 1-2. trigger the DAG through the REST API and wait for the approval sensor to defer
    dag_run_id = trigger(dep)
    wait_until(dep, dag_run_id, "deferred wait_for_approval",
               lambda run, states: states.get("wait_for_approval") == "deferred", timeout=300)
    phases["trigger → deferred"] = time.monotonic() - started
    store_run = run_id_for("demo", dag_run_id)
    review_url = f"{dep.url}/writeback/runs/{quote(store_run, safe='')}"
    dag_run_url = f"{dep.url}/dags/{DAG_ID}/runs/{quote(dag_run_id, safe='')}"

    context = browser.new_context(viewport={"width": 1400, "height": 1000})
    context.set_default_timeout(30_000)
    page = context.new_page()
    page.on("dialog", lambda d: d.accept())  # "Approve everything safe" asks to confirm
    try:
        # 3a. Airflow's own login page (SimpleAuthManager); it sets the `_token` cookie the review app reads
        page.goto(f"{dep.url}/")
        page.wait_for_url(re.compile(r"/auth/login"))
        page.get_by_label("Username").fill(USER)
        page.get_by_label("Password").fill(PASSWORD)
        page.get_by_role("button", name="Sign in").click()
        page.wait_for_url(lambda u: "/auth/login" not in u)
        assert "_token" in {c["name"] for c in context.cookies()}

        # 3b. the DAG run, its "Writeback review" tab: the review page inside Airflow (an iframe)
        page.goto(dag_run_url)
        page.locator('a[href$="/plugin/writeback-review-run"]', has_text="Writeback review").click()
        page.wait_for_url(re.compile(r"/plugin/writeback-review-run$"))
        frame = page.frame_locator("iframe")
        frame.locator("#progress").wait_for()
        assert frame.locator("h1").inner_text() == f"Run {dag_run_id}"
        assert frame.locator("#progress").get_attribute("data-decided") == "0"
        page.screenshot(path=str(ARTIFACTS / "01-airflow-dag-run-review-tab.png"))

        # 3c. the sensor's "Review" extra link (task instance → Details) opens the same page on its own
        page.goto(f"{dag_run_url}/tasks/wait_for_approval/details")
        link = page.locator('a[href*="/writeback/runs/"]', has_text="Review")
        link.wait_for()
        link.click()
        page.wait_for_url(review_url)
        decided, total = progress(page)
        assert decided == 0 and total > 0
        page.screenshot(path=str(ARTIFACTS / "02-review-before.png"))
        page.screenshot(path=str(ARTIFACTS / "02-review-before-full.png"), full_page=True)

        items = {i["key"]: i for i in api_get(page, dep.url, f"/runs/{quote(store_run, safe='')}/items")["items"]}
        assert len(items) == total
        kinds = {i["kind"] for i in items.values()}
        assert {"possible_match", "contact_removal"} <= kinds, kinds

        # confirm one possible match (the candidate the ground truth names) and mark another as not a match
        matches = [k for k, i in items.items() if i["kind"] in ("possible_match", "name_mismatch")]
        assert len(matches) >= 2, matches
        page.goto(f"{review_url}?kind={items[matches[0]]['kind']}&state=pending")
        first = items[matches[0]]
        confirm = careful_choice(first, dep.truth, today)
        if not confirm.startswith(("confirm:", "same_person")):
            confirm = next(o for o in first["options"] if o.startswith("confirm:"))
        click_decision(page, matches[0], confirm)
        assert api_get(page, dep.url, f"/runs/{quote(store_run, safe='')}/items/{quote(matches[0], safe='')}")[
            "choice"] == confirm
        page.goto(f"{review_url}?kind={items[matches[1]]['kind']}&state=pending")
        not_match = "not_a_match" if "not_a_match" in items[matches[1]]["options"] else "new_contact_keep_old"
        click_decision(page, matches[1], not_match)
        assert progress(page)[0] == 2

        # reorder: drag a student's second contact above the first
        page.goto(review_url)
        student, ids = pick_reorder_student(page)
        cards = page.locator(f'#s-{student} li.contact[draggable="true"]')
        before = [cards.nth(i).get_attribute("data-ref") for i in range(cards.count())]
        page.locator(f"#s-{student} ol.contacts").evaluate("e => e.scrollIntoView()")
        with page.expect_navigation():
            cards.nth(1).locator(".handle").drag_to(cards.nth(0), target_position={"x": 10, "y": 5})
        assert page.locator(".notice").first.inner_text() == "Contact order saved"
        after = page.locator(f'#s-{student} li.contact[draggable="true"]')
        reordered = [after.nth(i).get_attribute("data-ref") for i in range(after.count())]
        assert reordered == [before[1], before[0], *before[2:]], (before, reordered)
        expected_ids = [card_person_id(after.nth(i)) for i in range(after.count())]
        assert expected_ids == [ids[1], ids[0], *ids[2:]]
        saved = api_get(page, dep.url, f"/runs/{quote(store_run, safe='')}/students/{student}/order")
        assert saved["order"][:len(reordered)] == reordered and saved["decided_by"] == USER
        page.locator(f"#s-{student}").screenshot(path=str(ARTIFACTS / "03-reordered-student.png"))

        # expire a contact the family removed, on a chosen date
        removal_key = next(k for k, i in items.items() if i["kind"] == "contact_removal")
        removal = items[removal_key]
        end_date = (today - dt.timedelta(days=2)).isoformat()
        page.goto(f"{review_url}?kind=contact_removal&state=pending")
        block = page.locator(f'.item[data-key="{removal_key}"]')
        block.locator('input[name="end_date"]').fill(end_date)
        click_decision(page, removal_key, "expire")
        decided_removal = api_get(page, dep.url, f"/runs/{quote(store_run, safe='')}/items/{quote(removal_key, safe='')}")
        assert (decided_removal["choice"], decided_removal["data"], decided_removal["decided_by"]) == (
            "expire", {"end_date": end_date}, USER)
        assert progress(page)[0] == 3

        # approve everything safe (the page asks to confirm; the dialog handler accepts)
        page.goto(review_url)
        with page.expect_navigation():
            page.locator("#bulk-approve").click()
        assert page.locator(".notice").first.inner_text().startswith("Approved ")
        left = api_get(page, dep.url, f"/runs/{quote(store_run, safe='')}/items", state="pending")["items"]
        assert {i["kind"] for i in left} <= {"possible_match", "name_mismatch", "phone_type_mismatch"}
        assert progress(page) == (total - len(left), total)

        # decide what is left with the page's buttons, as the ground truth says, until nothing is pending
        page.goto(f"{review_url}?state=pending")
        for _ in range(len(left) + 5):
            pending = page.locator('.item[data-state="pending"]')
            if not pending.count():
                break
            key = pending.first.get_attribute("data-key")
            item = api_get(page, dep.url, f"/runs/{quote(store_run, safe='')}/items/{quote(key, safe='')}")
            click_decision(page, key, careful_choice(item, dep.truth, today))
        page.goto(review_url)
        assert progress(page) == (total, total)
        assert page.locator("#progress .progress-text").inner_text().startswith(f"{total} of {total} decided")
        page.screenshot(path=str(ARTIFACTS / "04-review-all-decided.png"))
        page.screenshot(path=str(ARTIFACTS / "04-review-all-decided-full.png"), full_page=True)

        phases["browser review"] = time.monotonic() - started - sum(list(phases.values())[1:])
        # 4. the triggerer sees the run approved; the DAG applies, cleans up and reports
        wait_until(dep, dag_run_id, "successful DAG run", lambda run, states: run["state"] == "success", timeout=300)
        phases["approved → success"] = time.monotonic() - started - sum(list(phases.values())[1:])
        states = task_states(dep, dag_run_id)
        assert states["wait_for_approval"] == "success"
        assert {states[t] for t in ("apply_batches", "cleanup", "report")} == {"success"}
        assert all(s == "success" for t, s in states.items() if t.startswith("apply[")), states
        page.goto(dag_run_url)
        page.get_by_text("Success").first.wait_for()
        page.screenshot(path=str(ARTIFACTS / "05-airflow-dag-run-success.png"))
        page.goto(review_url)
        assert page.locator(".notice.ok").inner_text().startswith("This run is approved")
        assert page.locator(".runbar .status").inner_text() == "complete"
    finally:
        context.close()

    # 5. PowerSchool, read through its own API
    ps = PowerSchool(dep.ps_url)
    student_dcid = {r["students.student_number"]: int(r["students.dcid"]) for r in ps.query("students")}
    # the expired contact has the chosen end date and sits after every active contact
    sub_truth = dep.truth["submissions"][removal["submission_id"]]
    rows = ps.current_links(int(sub_truth["student_dcid"]))
    by_person = {int(r["studentcontactassoc.personid"]): r for r in rows}
    expired_person = int(removal["payload"]["person_id"])
    assert by_person[expired_person]["studentcontactdetail.enddate"][:10] == end_date
    ended = [bool(r["studentcontactdetail.enddate"]) for r in rows]
    assert ended == sorted(ended), f"expired contacts come last: {rows}"
    sequences = [int(r["studentcontactassoc.contactpriorityorder"]) for r in rows]
    assert sequences == list(range(1, len(rows) + 1))
    # the reordered student's contacts are in the order the reviewer set
    rows = ps.current_links(student_dcid[student])
    active = [int(r["studentcontactassoc.personid"]) for r in rows if not r["studentcontactdetail.enddate"]]
    assert active == expected_ids, (active, expected_ids)
    timing = ", ".join(f"{k} {v:.0f} s" for k, v in phases.items())
    print(f"\nrun {dag_run_id}: {total} review items; {timing}")
    (ARTIFACTS / "timing.txt").write_text(timing + "\n")
