"""The review app through a real Airflow API server: authentication and authorisation by Airflow's auth
manager, every JSON route and page, decisions with their user, conflicts, bad input, CSRF and escaping."""

from __future__ import annotations

import re
import threading
from collections import Counter
from urllib.parse import quote

import httpx
import pytest

from writeback.domain.models import Plan, RecordProblem, Snapshot
from writeback.review.app import PAGE_SIZE
from writeback.review.view import student_value_rows

from .conftest import AirflowServer

pytestmark = pytest.mark.integration


def q(s: str) -> str:
    return quote(s, safe="")


def routes(run_id: str, key: str, student: str) -> list[tuple[str, str, dict | None]]:
    r, k = q(run_id), q(key)
    return [
        ("GET", "/api/v1/runs", None),
        ("GET", f"/api/v1/runs/{r}", None),
        ("GET", f"/api/v1/runs/{r}/items", None),
        ("GET", f"/api/v1/runs/{r}/items/{k}", None),
        ("POST", f"/api/v1/runs/{r}/items/{k}/decision", {"choice": "do_not_update", "version": 1}),
        ("POST", f"/api/v1/runs/{r}/bulk-approve-safe", {}),
        ("GET", f"/api/v1/runs/{r}/quarantine", None),
        ("GET", f"/api/v1/runs/{r}/students/{student}/order", None),
        ("POST", f"/api/v1/runs/{r}/students/{student}/order", {"order": ["slot:1"]}),
        ("GET", f"/api/v1/runs/{r}/students/{student}/values", None),
        ("POST", f"/api/v1/runs/{r}/students/{student}/values", {"choices": {}}),
        ("GET", "/", None),
        ("GET", f"/runs/{r}", None),
        ("GET", f"/runs/{r}/report", None),
        ("GET", f"/runs/{r}/validation", None),
        ("GET", f"/dag-runs/writeback_demo/{q('manual__x')}", None),
    ]


def first(store, run_id: str, kind: str):
    return next(i for i in store.items(run_id) if i.kind == kind)


def student_with_two_contacts(store, run_id: str) -> str:
    plan = store.get_data(run_id, "plan")
    return next(s["student_number"] for s in plan["students"] if len(s["contacts"]) >= 2)


# ---------------------------------------------------------------- authentication and authorisation


def test_anonymous_gets_401_on_every_route(airflow_server: AirflowServer, store, run_id: str) -> None:
    item = first(store, run_id, "possible_match")
    with airflow_server.client() as anon:
        for method, path, body in routes(run_id, item.item_key, item.student_number):
            r = anon.request(method, path, json=body)
            assert r.status_code == 401, (method, path, r.status_code, r.text[:200])
        page = anon.get(f"/runs/{q(run_id)}")
        assert "Log in to Airflow" in page.text and "/auth/login" in page.text  # the auth manager's login URL
    assert store.item(run_id, item.item_key).state == "pending"


def test_a_forged_or_foreign_token_is_401(airflow_server: AirflowServer, run_id: str) -> None:
    with httpx.Client(base_url=f"{airflow_server.url}/writeback") as c:
        r = c.get("/api/v1/runs", headers={"Authorization": "Bearer not.a.jwt"})
        assert r.status_code == 401
        r = c.get("/api/v1/runs", cookies={"_token": "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJhZG1pbiJ9.x"})
        assert r.status_code == 401


def test_viewer_reads_every_route_but_may_not_decide(airflow_server: AirflowServer, store, run_id: str) -> None:
    item = first(store, run_id, "possible_match")
    with airflow_server.client("viewer") as viewer:
        for method, path, body in routes(run_id, item.item_key, item.student_number):
            r = viewer.request(method, path, json=body)
            if method == "GET":
                allowed = (200, 303, 404) if path.endswith(("/report", "/validation")) else (200, 303)
                assert r.status_code in allowed, (path, r.status_code, r.text[:200])  # 404: not written yet
            else:
                assert r.status_code == 403, (path, r.status_code, r.text[:200])
                assert "writeback_demo" in r.json()["detail"]
        page = viewer.get(f"/runs/{q(run_id)}")
        assert "Read-only" in page.text and 'data-choice="' not in page.text
        assert viewer.get("/api/v1/runs/" + q(run_id)).json()["can_decide"] is False
    assert store.item(run_id, item.item_key).state == "pending"
    assert store.get_data(run_id, f"order:{item.student_number}") is None


def test_admin_decides_and_the_decision_records_the_airflow_user(airflow_server: AirflowServer, store,
                                                                 run_id: str) -> None:
    item = first(store, run_id, "possible_match")
    confirm = next(o for o in item.options if o.startswith("confirm:"))
    with airflow_server.client("admin") as admin:
        # the key holds ':' — sent raw as well as percent-encoded, both reach the item
        r = admin.post(f"/api/v1/runs/{q(run_id)}/items/{item.item_key}/decision",
                       json={"choice": confirm, "comment": "same phone as last year", "version": item.version})
        assert r.status_code == 200, r.text
        body = r.json()
        assert body["state"] == "decided" and body["choice"] == confirm and body["decided_by"] == "admin"
        assert body["comment"] == "same phone as last year" and body["version"] == item.version + 1
        got = admin.get(f"/api/v1/runs/{q(run_id)}/items/{q(item.item_key)}").json()
        assert got["choice"] == confirm
    row = store.item(run_id, item.item_key)
    assert (row.state, row.choice, row.decided_by) == ("decided", confirm, "admin")


# ---------------------------------------------------------------- conflicts and bad input


def test_two_decisions_with_the_same_version_one_wins_one_conflicts(airflow_server: AirflowServer, store,
                                                                     run_id: str) -> None:
    item = first(store, run_id, "name_mismatch")
    url = f"/api/v1/runs/{q(run_id)}/items/{q(item.item_key)}/decision"
    results: list[httpx.Response] = []
    start = threading.Barrier(2)

    def decide(choice: str) -> None:
        with airflow_server.client("admin") as c:
            start.wait()
            results.append(c.post(url, json={"choice": choice, "version": item.version}))

    threads = [threading.Thread(target=decide, args=(c,)) for c in ("same_person_keep_name", "do_not_update")]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    codes = sorted(r.status_code for r in results)
    assert codes == [200, 409], [r.text for r in results]
    winner = next(r for r in results if r.status_code == 200).json()["choice"]
    assert store.item(run_id, item.item_key).choice == winner
    # a reviewer who still holds the old version is refused, not silently overwriting
    with airflow_server.client("admin") as c:
        stale = c.post(url, json={"choice": "do_not_update", "version": item.version})
        assert stale.status_code == 409 and "reload" in stale.json()["detail"]


@pytest.mark.parametrize(("body", "code"), [
    ({"choice": "delete_everything", "version": 1}, 400),  # not one of the item's options
    ({"choice": "expire", "version": 1}, 400),  # an expiry without its end date (on a non-removal: bad either way)
    ({"choice": "do_not_update"}, 422),  # no version: optimistic concurrency is not optional
    ({"choice": "", "version": 1}, 422),
    ({"choice": "do_not_update", "version": 0}, 422),
    ({"choice": "do_not_update", "version": 1, "surprise": True}, 422),
    ({"choice": "do_not_update", "version": 1, "data": {"end_date": "2026-09-01"}}, 400),
])
def test_bad_decisions_are_refused(airflow_server: AirflowServer, store, run_id: str, body: dict,
                                   code: int) -> None:
    item = first(store, run_id, "possible_match")
    with airflow_server.client("admin") as c:
        r = c.post(f"/api/v1/runs/{q(run_id)}/items/{q(item.item_key)}/decision", json=body)
    assert r.status_code == code, r.text
    assert store.item(run_id, item.item_key).state == "pending"


def test_expire_needs_a_real_date_and_keeps_it(airflow_server: AirflowServer, store, run_id: str) -> None:
    item = first(store, run_id, "contact_removal")
    url = f"/api/v1/runs/{q(run_id)}/items/{q(item.item_key)}/decision"
    with airflow_server.client("admin") as c:
        bad = c.post(url, json={"choice": "expire", "data": {"end_date": "next tuesday"}, "version": item.version})
        assert bad.status_code == 400 and "YYYY-MM-DD" in bad.json()["detail"]
        ok = c.post(url, json={"choice": "expire", "data": {"end_date": "2026-09-01"}, "version": item.version})
        assert ok.status_code == 200 and ok.json()["data"] == {"end_date": "2026-09-01"}


def test_unknown_run_item_and_student_are_404(airflow_server: AirflowServer, store, run_id: str) -> None:
    with airflow_server.client("admin") as c:
        assert c.get("/api/v1/runs/demo%3Anope").status_code == 404
        assert c.get("/runs/demo%3Anope").status_code == 404
        r = c.post(f"/api/v1/runs/{q(run_id)}/items/SUB-nope%3Acontact1%3Amatch/decision",
                   json={"choice": "do_not_update", "version": 1})
        assert r.status_code == 404
        assert c.get(f"/api/v1/runs/{q(run_id)}/students/000000/order").status_code == 404
        assert c.get(f"/api/v1/runs/{q(run_id)}/items", params={"kind": "bogus"}).status_code == 400
        assert c.get(f"/api/v1/runs/{q(run_id)}/items", params={"state": "bogus"}).status_code == 422


def test_decisions_on_an_approved_run_are_refused(airflow_server: AirflowServer, store, run_id: str) -> None:
    item = first(store, run_id, "possible_match")
    store.update_run(run_id, approved_hash="0" * 64, status="approved")
    with airflow_server.client("admin") as c:
        r = c.post(f"/api/v1/runs/{q(run_id)}/items/{q(item.item_key)}/decision",
                   json={"choice": "do_not_update", "version": item.version})
        assert r.status_code == 409 and "approved" in r.json()["detail"]
        assert c.post(f"/api/v1/runs/{q(run_id)}/bulk-approve-safe", json={}).status_code == 409


# ---------------------------------------------------------------- listing, filters, quarantine, bulk, order


def test_runs_run_and_items_with_filters(airflow_server: AirflowServer, store, run_id: str) -> None:
    with airflow_server.client("admin") as c:
        runs = c.get("/api/v1/runs").json()
        mine = next(r for r in runs["runs"] if r["id"] == run_id)
        assert mine["dag_id"] == "writeback_demo" and mine["items"]["pending"] == mine["items"]["total"] > 0
        run = c.get(f"/api/v1/runs/{q(run_id)}").json()
        assert run["can_decide"] is True and run["students"]
        assert run["by_kind"] == dict(Counter(i.kind for i in store.items(run_id)))
        assert set(run["by_kind"]) >= {"possible_match", "name_mismatch", "shared_contact_change",
                                       "field_change", "contact_removal"}
        everything = c.get(f"/api/v1/runs/{q(run_id)}/items").json()["items"]
        assert len(everything) == mine["items"]["total"]
        matches = c.get(f"/api/v1/runs/{q(run_id)}/items", params={"kind": "possible_match"}).json()["items"]
        assert matches and {i["kind"] for i in matches} == {"possible_match"}
        assert all(i["payload"]["candidates"] and "reasons" in i["payload"]["candidates"][0] for i in matches)
        decided = c.get(f"/api/v1/runs/{q(run_id)}/items", params={"state": "decided"}).json()["items"]
        assert decided == []


def test_quarantine_lists_records_with_reasons(airflow_server: AirflowServer, store, run_id: str) -> None:
    store.record_quality(run_id, {}, [RecordProblem(submission_id="SUB-999", field="contact1_cell_phone",
                                                    reason="not a phone number", value="<b>call me</b>",
                                                    check="phone")])
    with airflow_server.client("admin") as c:
        rows = c.get(f"/api/v1/runs/{q(run_id)}/quarantine").json()["quarantine"]
        assert rows == [{"submission_id": "SUB-999", "field": "contact1_cell_phone", "reason": "not a phone number",
                         "value": "<b>call me</b>", "check": "phone"}]
        page = c.get(f"/runs/{q(run_id)}").text
        assert "not a phone number" in page and "&lt;b&gt;call me&lt;/b&gt;" in page and "<b>call me" not in page
        listed = next(r for r in c.get("/api/v1/runs").json()["runs"] if r["id"] == run_id)
        assert listed["quarantined"] == {"records": 1, "problems": 1}


def test_bulk_approve_decides_only_safe_kinds(airflow_server: AirflowServer, store, run_id: str) -> None:
    with airflow_server.client("admin") as c:
        r = c.post(f"/api/v1/runs/{q(run_id)}/bulk-approve-safe", json={"end_date": "2026-08-31"})
        assert r.status_code == 200, r.text
        result = r.json()
    safe = {"field_change": "approve", "shared_contact_change": "approve",
            "portal_email_conflict": "skip_data_access", "contact_removal": "expire"}
    assert result["decided"] == sum(result["by_kind"].values()) > 0 and set(result["by_kind"]) <= set(safe)
    for row in store.items(run_id):
        if row.kind in safe:
            assert (row.state, row.choice, row.decided_by) == ("decided", safe[row.kind], "admin"), row.item_key
            if row.kind == "contact_removal":
                assert row.decision_data == {"end_date": "2026-08-31"}
        else:  # a person must look at matches and mismatches
            assert row.state == "pending", row.item_key
    assert result["pending"] == store.pending_count(run_id) > 0


def test_reorder_is_stored_validated_and_shown(airflow_server: AirflowServer, store, run_id: str) -> None:
    student = student_with_two_contacts(store, run_id)
    base = f"/api/v1/runs/{q(run_id)}/students/{student}/order"
    with airflow_server.client("admin") as c:
        current = c.get(base).json()["order"]
        assert current[0] == "slot:1" and len(current) >= 2  # form order until someone reorders
        wanted = [current[1], current[0], *current[2:]]
        r = c.post(base, json={"order": wanted})
        assert r.status_code == 200, r.text
        doc = r.json()
        assert doc["order"] == wanted and doc["decided_by"] == "admin" and doc["version"] == 1
        assert store.get_data(run_id, f"order:{student}")["order"] == wanted
        assert c.get(base).json()["order"] == wanted
        assert c.post(base, json={"order": ["p:1"]}).status_code == 400
        assert c.post(base, json={"order": [wanted[0], wanted[0]]}).status_code == 400
        assert c.post(base, json={"order": []}).status_code == 422
        page = c.get(f"/runs/{q(run_id)}").text
        section = page[page.index(f'id="s-{student}"'):]
        refs = re.findall(r'<li class="contact[^"]*" data-ref="([^"]+)"', section.split("</section>")[0])
        assert refs[:2] == wanted[:2]


def student_with_values(store, run_id: str) -> tuple[str, dict]:
    """A student whose matched contact has a value a reviewer may decide on, and that value."""
    plan = Plan.model_validate(store.get_data(run_id, "plan"))
    snapshot = Snapshot.model_validate(store.get_data(run_id, "snapshot"))
    for sp in plan.students:
        rows = student_value_rows(sp, snapshot)
        if rows:
            return sp.student_number, rows[0].model_dump()
    raise AssertionError("the seeded run has no value a reviewer could decide on")


def test_value_choices_are_stored_validated_and_shown(airflow_server: AirflowServer, store, run_id: str) -> None:
    student, row = student_with_values(store, run_id)
    base = f"/api/v1/runs/{q(run_id)}/students/{student}/values"
    other = next(o for o in row["options"] if o != row["options"][0])
    with airflow_server.client("admin") as c:
        listed = c.get(base).json()
        assert listed["version"] == 0 and listed["choices"] == {}
        assert any(v["ref"] == row["ref"] and v["default"] == row["options"][0] for v in listed["values"])
        r = c.post(base, json={"choices": {row["ref"]: other}})
        assert r.status_code == 200, r.text
        assert r.json()["choices"] == {row["ref"]: other} and r.json()["decided_by"] == "admin"
        assert store.get_data(run_id, f"values:{student}")["version"] == 1
        # a value that is not the student's, or an option the value does not have: 400, naming it
        r = c.post(base, json={"choices": {"slot:9:phone:Home": "remove"}})
        assert r.status_code == 400 and "slot:9:phone:Home" in r.json()["detail"]
        r = c.post(base, json={"choices": {row["ref"]: "rewrite_everything"}})
        assert r.status_code == 400 and "rewrite_everything" in r.json()["detail"]
        assert store.get_data(run_id, f"values:{student}")["choices"] == {row["ref"]: other}  # unchanged
        numbers = [s["student_number"] for s in store.get_data(run_id, "plan")["students"]]
        page = c.get(f"/runs/{q(run_id)}?page={numbers.index(student) // PAGE_SIZE + 1}").text
        section = page[page.index(f'id="s-{student}"'):].split("</section>")[0]
        select = section[section.index(f'name="v:{row["ref"]}"'):].split("</select>")[0]
        assert re.search(rf'<option value="{other}" selected>', select), select  # the saved choice is shown


# ---------------------------------------------------------------- browser-style requests: CSRF and escaping


def csrf_of(page: str) -> str:
    return re.search(r'<meta name="csrf-token" content="([^"]+)"', page).group(1)


def test_cookie_requests_need_the_csrf_token_bearer_requests_do_not(airflow_server: AirflowServer, store,
                                                                      run_id: str) -> None:
    items = [i for i in store.items(run_id) if i.kind == "shared_contact_change"][:3]
    with airflow_server.client("admin", cookie=True) as browser:
        page = browser.get(f"/runs/{q(run_id)}")
        assert page.status_code == 200
        token = csrf_of(page.text)
        url = f"/api/v1/runs/{q(run_id)}/items/{q(items[0].item_key)}/decision"
        body = {"choice": "approve", "version": items[0].version}
        assert browser.post(url, json=body).status_code == 403  # a forged cross-site request has no token
        assert browser.post(url, json=body, headers={"X-CSRF-Token": token + "0"}).status_code == 403
        ok = browser.post(url, json=body, headers={"X-CSRF-Token": token})
        assert ok.status_code == 200 and ok.json()["decided_by"] == "admin"
        # the page's own form post: token in the form, redirect back to the student
        form = {"csrf_token": token, "choice": "do_not_update", "version": str(items[1].version),
                "anchor": f"s-{items[1].student_number}"}
        r = browser.post(f"/runs/{q(run_id)}/items/{q(items[1].item_key)}/decide", data=form)
        assert r.status_code == 303 and r.headers["location"].endswith(f"#s-{items[1].student_number}")
        assert store.item(run_id, items[1].item_key).choice == "do_not_update"
        forged = {k: v for k, v in form.items() if k != "csrf_token"} | {"version": str(items[2].version)}
        assert browser.post(f"/runs/{q(run_id)}/items/{q(items[2].item_key)}/decide", data=forged).status_code == 403
        assert store.item(run_id, items[2].item_key).state == "pending"
    # the viewer's token is valid for the viewer only, and the viewer still may not decide
    with airflow_server.client("viewer", cookie=True) as viewer:
        r = viewer.post(url, json=body, headers={"X-CSRF-Token": token})
        assert r.status_code == 403
    with airflow_server.client("admin") as api:  # Bearer: not cookie-authenticated, so no CSRF token needed
        r = api.post(f"/api/v1/runs/{q(run_id)}/items/{q(items[2].item_key)}/decision",
                     json={"choice": "approve", "version": items[2].version})
        assert r.status_code == 200


def test_run_page_shows_the_diff_and_escapes_injected_names(airflow_server: AirflowServer, store,
                                                           run_id: str) -> None:
    with airflow_server.client("admin", cookie=True) as browser:
        page = browser.get(f"/runs/{q(run_id)}").text
        runs = browser.get("/").text
    assert "<script>alert('x')</script>" not in page
    assert "&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt;" in page
    assert re.search(r'<tr class="st-(keep|replace|new)"', page)
    for marker in ('aria-label="Name mismatch"', 'aria-label="Phone type mismatch"', "<summary>Used By",
                   'id="progress"', 'data-choice="not_a_match"', 'type="date" name="end_date"',
                   "Approve everything safe", 'draggable="true"'):
        assert marker in page, marker
    assert f'href="/dags/writeback_demo/runs/{q(store.get_run(run_id).dag_run_id)}"' in runs


def test_dag_run_view_redirects_to_the_store_run(airflow_server: AirflowServer, store, run_id: str) -> None:
    dag_run_id = store.get_run(run_id).dag_run_id
    with airflow_server.client("viewer") as c:
        r = c.get(f"/dag-runs/writeback_demo/{q(dag_run_id)}")
    assert r.status_code == 303 and r.headers["location"] == f"/writeback/runs/{q(run_id)}"


def test_the_plugin_is_registered_with_airflow(airflow_server: AirflowServer) -> None:
    r = httpx.get(f"{airflow_server.url}/api/v2/plugins",
                  headers={"Authorization": f"Bearer {airflow_server.token('admin')}"}, timeout=30)
    assert r.status_code == 200, r.text
    plugin = next(p for p in r.json()["plugins"] if p["name"] == "writeback")
    assert plugin["fastapi_apps"][0]["url_prefix"] == "/writeback"
    views = {v["destination"]: v["href"] for v in plugin["external_views"]}
    assert views == {"nav": "/writeback/", "dag_run": "/writeback/dag-runs/{DAG_ID}/{RUN_ID}"}
    assert any("ReviewLink" in link for link in plugin["operator_extra_links"])


def test_review_link_points_at_the_store_run() -> None:
    from types import SimpleNamespace

    from writeback.review.links import ReviewLink
    from writeback.sensors.approval import ApprovalSensor

    assert any(isinstance(link, ReviewLink) for link in ApprovalSensor.operator_extra_links)
    ti_key = SimpleNamespace(dag_id="writeback_demo", run_id="manual__2026-08-01T00:00:00+00:00")
    link = ReviewLink().get_link(SimpleNamespace(district="demo"), ti_key=ti_key)
    assert link == "/writeback/runs/demo%3Amanual__2026-08-01T00%3A00%3A00%2B00%3A00"


def test_report_validation_and_outcome_chart_are_linked_from_the_run_page(airflow_server: AirflowServer, store,
                                                                         run_id: str) -> None:
    with airflow_server.client("admin", cookie=True) as browser:
        assert browser.get(f"/runs/{q(run_id)}/report").status_code == 404  # no report before the report task
        store.put_data(run_id, "validation", {"results": [
            {"suite": "students", "expectation": "expect_column_values_to_be_in_set", "column": "student_number",
             "success": False, "evaluated": 3, "unexpected": 1}]})
        store.put_data(run_id, "report", {"run_id": run_id, "district": "demo", "dry_run": False, "stages": {},
                                          "students": {"planned": 1, "updated": 1, "quarantined": 0},
                                          "contacts": {"matched": 1, "created": 0, "updated": 0, "expired": 0,
                                                       "unlinked": 0, "reordered_students": 0},
                                          "review": {"items": 0, "decided": 0, "by_kind": {}},
                                          "writes": {"operations_done": 1, "made": 1, "failed": 0, "stale": 0,
                                                     "by_kind": {}},
                                          "quarantine": [], "per_student": []})
        page = browser.get(f"/runs/{q(run_id)}").text
        validation = browser.get(f"/runs/{q(run_id)}/validation")
        report = browser.get(f"/runs/{q(run_id)}/report")
    assert f'/runs/{q(run_id)}/report"' in page and f'/runs/{q(run_id)}/validation"' in page
    assert validation.status_code == 200 and "expect_column_values_to_be_in_set" in validation.text
    assert report.status_code == 200 and run_id in report.text
    kinds = {i.kind for i in store.items(run_id)}
    assert page.count('<th scope="row">') == len(kinds)  # one chart row per item kind


def test_run_wide_items_are_shown_and_decidable_on_the_page(airflow_server: AirflowServer, store,
                                                            run_id: str) -> None:
    from writeback.domain.models import ReviewItem

    store.add_review_item(run_id, ReviewItem(
        key="conflict:p:1:phone:Mobile", kind="conflicting_forms", submission_id="*", student_number="*",
        options=["use:SUB-1", "use:SUB-2", "do_not_update"],
        payload={"person_id": 1, "kind": "phone", "key": "Mobile", "proposals": [
            {"submission_id": "SUB-1", "student_number": "1", "new": "<b>555</b>"},
            {"submission_id": "SUB-2", "student_number": "2", "new": "556"}]}))
    with airflow_server.client("admin", cookie=True) as browser:
        page = browser.get(f"/runs/{q(run_id)}").text
    assert "Decisions for the whole run" in page and "Siblings&#39; forms disagree" in page
    assert 'data-choice="use:SUB-2"' in page and "&lt;b&gt;555&lt;/b&gt;" in page
    with airflow_server.client("admin") as api:
        r = api.post(f"/api/v1/runs/{q(run_id)}/items/{q('conflict:p:1:phone:Mobile')}/decision",
                     json={"choice": "use:SUB-2", "version": 1})
    assert r.status_code == 200 and store.item(run_id, "conflict:p:1:phone:Mobile").choice == "use:SUB-2"
