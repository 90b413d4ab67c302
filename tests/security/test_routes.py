"""An automated sweep over every route of the review app as Airflow mounts it (`/writeback`), through the
real API server and its auth manager: anonymous → 401, the read-only `viewer` → 403 on every
state-changing method, and cookie-authenticated POSTs need the CSRF token. A route added without
protection — or without a sample request here — fails this file."""

from __future__ import annotations

import re
from urllib.parse import quote

import pytest
from fastapi.routing import APIRoute
from starlette.routing import Mount

from tests.review.conftest import AirflowServer
from writeback.review.app import create_app

pytestmark = pytest.mark.integration

# Routes that answer without a login, and why.
ALLOW_ANONYMOUS = {
    ("GET", "/api/v1/openapi.json"): "the API's schema: no data",
    ("GET", "/api/v1/docs"): "Swagger UI page: no data",
    ("GET", "/docs/oauth2-redirect"): "Swagger UI's static OAuth2 redirect helper: no data",
}
ALLOW_MOUNTS = {"/static": "CSS and JS of the page"}
STATE_CHANGING = {"POST", "PUT", "PATCH", "DELETE"}

# A request each state-changing route would accept from someone allowed to decide (json or form body).
SAMPLES = {
    ("POST", "/api/v1/runs/{run_id}/items/{item_key:path}/decision"): ("json", {"choice": "do_not_update"}),
    ("POST", "/api/v1/runs/{run_id}/bulk-approve-safe"): ("json", {}),
    ("POST", "/api/v1/runs/{run_id}/students/{student_number}/order"): ("json", {}),
    ("POST", "/runs/{run_id}/items/{item_key:path}/decide"): ("form", {"choice": "do_not_update"}),
    ("POST", "/runs/{run_id}/bulk-approve-safe"): ("form", {}),
    ("POST", "/runs/{run_id}/students/{student_number}/order"): ("form", {}),
    ("POST", "/api/v1/runs/{run_id}/students/{student_number}/values"): ("json", {"choices": {}}),
    ("POST", "/runs/{run_id}/students/{student_number}/values"): ("form", {}),
    ("POST", "/districts/{district}/preview"): ("form", {"submission": "SUB-000001"}),
}


def app_routes() -> list[tuple[str, str]]:
    app = create_app()  # what writeback.plugin mounts; routes do not depend on the store
    out = []
    for route in app.routes:
        if isinstance(route, Mount):
            assert route.path in ALLOW_MOUNTS, f"new mount {route.path}: protect it or allow-list it with a reason"
            continue
        for method in sorted(route.methods or []):
            if method != "HEAD":
                out.append((method, route.path))
    assert any(isinstance(r, APIRoute) for r in app.routes)
    return out


def fill(path: str, values: dict[str, str]) -> str:
    def sub(m: re.Match) -> str:
        name = m.group(1)
        assert name in values, f"no sample value for path parameter {name!r} in {path}"
        return values[name]

    return re.sub(r"\{(\w+)(?::\w+)?\}", sub, path)


def world_values(store, run_id: str) -> tuple[dict[str, str], object]:
    item = next(i for i in store.items(run_id) if i.kind == "possible_match")
    return {"run_id": quote(run_id, safe=""), "item_key": quote(item.item_key, safe=""),
            "student_number": item.student_number, "dag_id": "writeback_demo", "district": "demo",
            "dag_run_id": quote(store.get_run(run_id).dag_run_id, safe="")}, item


def body_for(method: str, path: str, item, store, run_id: str) -> dict:
    kind, body = SAMPLES[(method, path)]
    body = dict(body)
    if "decision" in path or "decide" in path:
        body["version"] = item.version if kind == "json" else str(item.version)
    if path.endswith("/order"):
        plan = store.get_data(run_id, "plan")
        student = next(s for s in plan["students"] if s["student_number"] == item.student_number)
        refs = [f"slot:{c['slot']}" for c in student["contacts"]][:1]
        body["order" if kind == "json" else "ref"] = refs
    return {"json": body} if kind == "json" else {"data": body}


def test_every_route_needs_a_login_and_deciding_needs_edit_rights(airflow_server: AirflowServer, store,
                                                                  run_id: str) -> None:
    values, item = world_values(store, run_id)
    routes = app_routes()
    assert len(routes) >= 12
    checked_anonymous, checked_viewer = [], []
    with airflow_server.client() as anon, airflow_server.client("viewer") as viewer, \
            airflow_server.client("viewer", cookie=True) as viewer_browser:
        for method, path in routes:
            url = fill(path, values)
            if (method, path) in ALLOW_ANONYMOUS:
                assert anon.request(method, url).status_code == 200, (method, path)
                continue
            kw = body_for(method, path, item, store, run_id) if (method, path) in SAMPLES else {}
            r = anon.request(method, url, **kw)
            assert r.status_code == 401, f"{method} {path} answered {r.status_code} to an anonymous request"
            checked_anonymous.append((method, path))
            if method in STATE_CHANGING:
                assert (method, path) in SAMPLES, f"new state-changing route {method} {path}: add a sample request"
                r = viewer.request(method, url, **kw)
                assert r.status_code == 403, f"{method} {path} answered {r.status_code} to the read-only viewer"
                page = viewer_browser.get(f"/runs/{values['run_id']}").text
                token = re.search(r'<meta name="csrf-token" content="([^"]+)"', page).group(1)
                kw_token = dict(kw)
                if "data" in kw_token:
                    kw_token["data"] = {**kw_token["data"], "csrf_token": token}
                r = viewer_browser.request(method, url, headers={"X-CSRF-Token": token}, **kw_token)
                assert r.status_code == 403, f"{method} {path}: viewer with a valid CSRF token got {r.status_code}"
                checked_viewer.append((method, path))
    assert len(checked_viewer) == len(SAMPLES) and len(checked_anonymous) == len(routes) - len(ALLOW_ANONYMOUS)
    assert store.item(run_id, item.item_key).state == "pending"  # nobody changed anything
    assert store.get_data(run_id, f"order:{item.student_number}") is None
    assert store.get_data(run_id, f"values:{item.student_number}") is None
    assert all(i.state == "pending" for i in store.items(run_id))


def test_cookie_posts_need_the_csrf_token_on_every_state_changing_route(airflow_server: AirflowServer, store,
                                                                        run_id: str) -> None:
    values, item = world_values(store, run_id)
    with airflow_server.client("admin", cookie=True) as browser:
        token = re.search(r'<meta name="csrf-token" content="([^"]+)"',
                          browser.get(f"/runs/{values['run_id']}").text).group(1)
        for method, path in app_routes():
            if method not in STATE_CHANGING:
                continue
            url = fill(path, values)
            kw = body_for(method, path, store.item(run_id, item.item_key), store, run_id)
            before = (store.item(run_id, item.item_key).version, store.get_data(run_id, f"order:{item.student_number}"),
                      store.get_data(run_id, f"values:{item.student_number}"), store.pending_count(run_id))
            for forged in ({}, {"X-CSRF-Token": "1.deadbeef"}, {"X-CSRF-Token": token[:-1] + "0"}):
                r = browser.request(method, url, headers=forged, **kw)
                assert r.status_code == 403, f"{method} {path} without a valid CSRF token: {r.status_code}"
            after = (store.item(run_id, item.item_key).version, store.get_data(run_id, f"order:{item.student_number}"),
                     store.get_data(run_id, f"values:{item.student_number}"), store.pending_count(run_id))
            assert after == before, f"{method} {path} changed state without a CSRF token"
            if "data" in kw:
                kw["data"] = {**kw["data"], "csrf_token": token}
                r = browser.request(method, url, **kw)
            else:
                r = browser.request(method, url, headers={"X-CSRF-Token": token}, **kw)
            assert r.status_code in (200, 303), f"{method} {path} with the token: {r.status_code} {r.text[:200]}"
            if "decision" in path or "decide" in path:  # really accepted, not a 303 with a "Not saved" notice
                assert store.item(run_id, item.item_key).version == before[0] + 1, (method, path)
            if path.endswith("/order"):
                assert store.get_data(run_id, f"order:{item.student_number}")["decided_by"] == "admin"
            if path.endswith("/values"):
                assert store.get_data(run_id, f"values:{item.student_number}")["decided_by"] == "admin"
