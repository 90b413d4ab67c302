"""The review app finds each district's store: a district whose file names its own store (an Airflow
connection) shows up in the runs list beside the deployment's default store, and its runs are read and
decided in that store. Authentication is not under test here (tests/security): a fixed reviewer."""

from __future__ import annotations

import json
from urllib.parse import quote

from fastapi.testclient import TestClient
from sqlalchemy.engine import make_url

from tests.badinput.test_review_escaping import Reviewer
from writeback.config import district
from writeback.domain.models import ReviewItem
from writeback.review.app import create_app
from writeback.store import Store
from writeback.store.locate import DistrictStores


def _seed(store: Store, run_id: str, district_name: str) -> None:
    store.ensure_run(run_id, district_name)
    store.replace_review_items(run_id, [ReviewItem(key="S1:field:name.first_name", kind="field_change",
                                                   submission_id="S1", student_number="100",
                                                   options=["approve", "ignore"], payload={"new": "x"})], "hash")


def test_a_district_with_its_own_store_shows_up_and_is_decided_in_that_store(store_url, tmp_path, monkeypatch):
    default_url = f"sqlite:///{tmp_path / 'default.db'}"
    monkeypatch.setenv("WRITEBACK_STORE_URL", default_url)
    url = make_url(store_url)  # the north district's own store, on SQLite and on PostgreSQL
    conn = ({"conn_type": "sqlite", "host": url.database} if url.drivername.startswith("sqlite") else
            {"conn_type": "writeback_store", "host": url.host, "port": url.port, "login": url.username,
             "password": url.password or "", "schema": url.database})
    monkeypatch.setenv("AIRFLOW_CONN_NORTH_STORE", json.dumps(conn))
    demo = district("demo")
    north = demo.model_copy(update={"name": "north", "store_conn_id": "north_store"})
    default_store, north_store = Store(default_url, migrate=True), Store(store_url, migrate=True)
    try:
        _seed(default_store, "demo:r1", "demo")
        _seed(north_store, "north:r1", "north")
        app = create_app(lambda: DistrictStores([demo, north]), Reviewer(), mount_prefix="")
        with TestClient(app) as client:
            runs = client.get("/api/v1/runs").json()["runs"]
            assert {r["id"] for r in runs} == {"demo:r1", "north:r1"}
            assert {r["dag_id"] for r in runs} == {"writeback_demo", "writeback_north"}
            page = client.get("/").text
            assert "north:r1" in page and "demo:r1" in page
            items = client.get(f"/api/v1/runs/{quote('north:r1', safe='')}/items").json()["items"]
            assert [i["key"] for i in items] == ["S1:field:name.first_name"]
            r = client.post(f"/api/v1/runs/{quote('north:r1', safe='')}/items/{quote(items[0]['key'], safe='')}"
                            "/decision", json={"choice": "approve", "version": items[0]["version"]})
            assert r.status_code == 200, r.text
        assert north_store.pending_count("north:r1") == 0, "decided in the north district's own store"
        assert default_store.pending_count("demo:r1") == 1
        assert [r.id for r in default_store.list_runs()] == ["demo:r1"]
    finally:
        default_store.dispose()
        north_store.dispose()
