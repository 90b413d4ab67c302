"""Team isolation, against a real `airflow api-server` in multi-team mode: two DAG bundles, each owned by a
team (`writeback_a` by team_a, `writeback_b` by team_b, built by our DAG factory and parsed by Airflow),
SimpleAuthManager users in teams, a DAG run of each. For every user, every review route and both runs,
the review app must answer exactly as Airflow's own API answers for that DAG run — read where
`GET /api/v2/dags/{dag}/dagRuns/{run}` is allowed, decide where `PATCH` of it is too — and the runs list
and page must show only the runs of DAGs Airflow lets the user read. Airflow's answers are the oracle."""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterator
from urllib.parse import quote

import httpx
import pytest
import yaml

from tests.review.conftest import ROOT, AirflowServer, airflow, airflow_env, api_server
from tests.review.world import seed_run
from tests.security.test_routes import ALLOW_ANONYMOUS, SAMPLES, STATE_CHANGING, app_routes, fill
from writeback.store import Store

pytestmark = pytest.mark.integration

TEAMS = {"a": "team_a", "b": "team_b"}
# role and teams of each user; what Airflow must then allow is checked below (the setup really isolates)
USERS = {"admin": "admin", "alice": "user:team_a", "bob": "user:team_b", "vera": "viewer:team_a",
         "dana": "user:team_a|team_b", "olga": "op:team_b"}
DAG_FILE = '''"""The writeback DAG of the district described next to this file (an Airflow DAG bundle of one team)."""
from pathlib import Path

from writeback.config import load_district
from writeback.dag_factory import build_dag

dag = build_dag(load_district(Path(__file__).with_name("district.yaml")))
'''


@pytest.fixture(scope="module")
def teams(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict]:
    home = tmp_path_factory.mktemp("airflow-teams")
    store_url = f"sqlite:///{home / 'store.db'}"
    env = airflow_env(home, store_url)
    demo = yaml.safe_load((ROOT / "include" / "districts" / "demo.yaml").read_text())
    bundles = []
    for district, team in TEAMS.items():
        folder = home / f"bundle_{district}"
        folder.mkdir()
        (folder / "writeback_dag.py").write_text(DAG_FILE)
        (folder / "district.yaml").write_text(yaml.safe_dump({**demo, "name": district, "schedule": None,
                                                              "powerschool_conn_id": f"powerschool_{district}",
                                                              "submissions_conn_id": f"schoolengage_{district}"}))
        bundles.append({"name": f"bundle_{district}", "classpath": "airflow.dag_processing.bundles.local.LocalDagBundle",
                        "kwargs": {"path": str(folder), "refresh_interval": 0}, "team_name": team})
    shutil.rmtree(home / "dags", ignore_errors=True)
    env.update({
        "AIRFLOW__CORE__MULTI_TEAM": "True",
        "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS": ",".join(f"{u}:{r}" for u, r in USERS.items()),
        "AIRFLOW__DAG_PROCESSOR__DAG_BUNDLE_CONFIG_LIST": json.dumps(bundles),
        "WRITEBACK_INCLUDE": str(ROOT / "include"),
    })
    airflow(env, "db", "migrate")
    for team in TEAMS.values():
        airflow(env, "teams", "create", team)
    airflow(env, "dags", "reserialize")
    with api_server(home, env, store_url) as server:
        store = Store(store_url, migrate=True)
        runs = {}
        for district in TEAMS:
            dag_id = f"writeback_{district}"
            r = httpx.post(f"{server.url}/api/v2/dags/{dag_id}/dagRuns", timeout=30,
                           headers={"Authorization": f"Bearer {server.token('admin')}"},
                           json={"dag_run_id": f"manual__teams_{district}", "logical_date": None})
            assert r.status_code == 200, r.text
            runs[district] = {"dag_id": dag_id, "dag_run_id": f"manual__teams_{district}",
                              "run_id": seed_run(store, f"manual__teams_{district}", district=district)}
        try:
            yield {"server": server, "store": store, "runs": runs}
        finally:
            store.dispose()


def airflow_allows(server: AirflowServer, user: str, run: dict) -> dict[str, bool]:
    """What Airflow's own API lets the user do with the DAG run: read it (and its DAG), and edit it."""
    headers = {"Authorization": f"Bearer {server.token(user)}"}
    base = f"{server.url}/api/v2/dags/{run['dag_id']}"
    with httpx.Client(headers=headers, timeout=30) as c:
        dag = c.get(base).status_code
        read = c.get(f"{base}/dagRuns/{quote(run['dag_run_id'], safe='')}").status_code
        # an invalid state: answered 403 by the authorisation dependency, else refused as invalid (nothing changes)
        edit = c.patch(f"{base}/dagRuns/{quote(run['dag_run_id'], safe='')}", json={"state": "no-such-state"}).status_code
    assert dag in (200, 403) and read in (200, 403) and edit in (400, 403, 422), (user, run["dag_id"], dag, read, edit)
    assert (dag == 200) == (read == 200), (user, run["dag_id"], dag, read)
    return {"GET": read == 200, "PUT": read == 200 and edit != 403}


def values_for(store: Store, run: dict) -> tuple[dict[str, str], object]:
    item = next(i for i in store.items(run["run_id"]) if i.kind == "possible_match")
    return {"run_id": quote(run["run_id"], safe=""), "item_key": quote(item.item_key, safe=""),
            "student_number": item.student_number, "dag_id": run["dag_id"],
            "dag_run_id": quote(run["dag_run_id"], safe="")}, item


def state(store: Store, run: dict, item) -> tuple:
    """Everything a review route may change in a run: its items' decisions, orders and value choices."""
    rows = tuple((i.item_key, i.version, i.state, i.choice, i.decided_by) for i in store.items(run["run_id"]))
    return (rows, store.data_by_prefix(run["run_id"], "order:"), store.data_by_prefix(run["run_id"], "values:"))


def body(method: str, path: str, store: Store, run: dict, item) -> dict:
    kind, sample = SAMPLES[(method, path)]
    sample = dict(sample)
    if "decision" in path or "decide" in path:
        version = store.item(run["run_id"], item.item_key).version
        sample["version"] = version if kind == "json" else str(version)
    if path.endswith("/order"):
        plan = store.get_data(run["run_id"], "plan")
        student = next(s for s in plan["students"] if s["student_number"] == item.student_number)
        sample["order" if kind == "json" else "ref"] = [f"slot:{c['slot']}" for c in student["contacts"]][:1]
    return {"json": sample} if kind == "json" else {"data": sample}


def test_airflow_itself_isolates_the_teams(teams):
    server, runs = teams["server"], teams["runs"]
    expected = {"admin": ("ab", "ab"), "alice": ("a", "a"), "bob": ("b", "b"), "vera": ("a", ""),
                "dana": ("ab", "ab"), "olga": ("b", "b")}
    for user, (reads, edits) in expected.items():
        allowed = {d: airflow_allows(server, user, run) for d, run in runs.items()}
        assert "".join(d for d in "ab" if allowed[d]["GET"]) == reads, user
        assert "".join(d for d in "ab" if allowed[d]["PUT"]) == edits, user


def test_every_review_route_answers_as_airflow_does_for_every_user_and_run(teams):
    server, store, runs = teams["server"], teams["store"], teams["runs"]
    routes = [r for r in app_routes() if r not in ALLOW_ANONYMOUS]
    run_routes = [r for r in routes if "{run_id}" in r[1] or "{dag_id}" in r[1]]
    assert len(run_routes) >= 14
    swept = 0
    for user in USERS:
        for district, run in runs.items():
            allowed = airflow_allows(server, user, run)
            values, item = values_for(store, run)
            with server.client(user) as client:
                for method, path in run_routes:
                    kw = body(method, path, store, run, item) if (method, path) in SAMPLES else {}
                    before = state(store, run, item)
                    r = client.request(method, fill(path, values), **kw)
                    want = allowed["PUT"] if method in STATE_CHANGING else allowed["GET"]
                    if want:
                        assert r.status_code not in (401, 403), (user, district, method, path, r.status_code, r.text)
                    else:
                        assert r.status_code == 403, (user, district, method, path, r.status_code, r.text[:300])
                        assert state(store, run, item) == before, (user, district, method, path)
                    swept += 1
    assert swept == len(USERS) * len(runs) * len(run_routes)


def test_lists_show_only_the_runs_of_dags_the_user_may_read(teams):
    server, store, runs = teams["server"], teams["store"], teams["runs"]
    for user in USERS:
        readable = {d for d, run in runs.items() if airflow_allows(server, user, run)["GET"]}
        headers = {"Authorization": f"Bearer {server.token(user)}"}
        listed = httpx.get(f"{server.url}/api/v2/dags", params={"dag_id_pattern": "writeback_%"}, headers=headers,
                           timeout=30).json()
        assert {d["dag_id"] for d in listed["dags"]} == {runs[d]["dag_id"] for d in readable}, user
        with server.client(user) as client:
            api = client.get("/api/v1/runs")
            assert api.status_code == 200
            assert {r["id"] for r in api.json()["runs"]} == {runs[d]["run_id"] for d in readable}, user
            page = client.get("/").text
        for d, run in runs.items():
            assert (quote(run["run_id"], safe="") in page) == (d in readable), (user, d)
    assert {i.state for i in store.items(runs["a"]["run_id"])} >= {"pending"}
