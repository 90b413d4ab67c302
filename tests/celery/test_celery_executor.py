"""A district's DAG on Airflow's distributed engine: CeleryExecutor, Redis, PostgreSQL, two workers.

One run of `writeback_demo` (`conftest.py` starts everything): the approval sensor defers to the
triggerer; the review is decided through the api-server (the review app's JSON API, with a token from
`POST /auth/token`); the mapped apply tasks are shared by both workers; in the middle of apply one
worker is killed with SIGKILL together with everything it started, as if its machine died. The run
must still finish, and PowerSchool — read over raw HTTP, with the sandbox's own write log — must hold
every write exactly once: no write sent twice, no contact created twice, nothing the forms asked for
missing. Nothing here reads our ledger or audit.
"""

from __future__ import annotations

import datetime as dt
import time
from collections import Counter
from types import SimpleNamespace
from typing import Any
from urllib.parse import quote

import httpx
import pytest

from sandbox.reviewer import choose
from tests.e2e.test_review_e2e import PowerSchool
from writeback.domain.normalize import fold
from writeback.operators.context import run_id_for

from .conftest import DAG_ID, WORKERS, CeleryDeployment

pytestmark = [pytest.mark.integration, pytest.mark.postgres]

LATENCY_MS = 60  # every PowerSchool call takes this long: an apply task runs long enough to be killed in


def tis(dep: CeleryDeployment, dag_run_id: str) -> list[dict[str, Any]]:
    path = f"/dags/{DAG_ID}/dagRuns/{quote(dag_run_id, safe='')}/taskInstances"
    return dep.api("GET", path, params={"limit": 500}).json()["task_instances"]


def tries(dep: CeleryDeployment, dag_run_id: str, task_id: str, map_index: int) -> list[dict[str, Any]]:
    path = f"/dags/{DAG_ID}/dagRuns/{quote(dag_run_id, safe='')}/taskInstances/{task_id}/{map_index}/tries"
    return dep.api("GET", path).json()["task_instances"]


def wait_for(dep: CeleryDeployment, dag_run_id: str, what: str, done, timeout: float) -> list[dict[str, Any]]:
    deadline = time.monotonic() + timeout
    while True:
        dep.check_alive()
        run = dep.api("GET", f"/dags/{DAG_ID}/dagRuns/{quote(dag_run_id, safe='')}").json()
        current = tis(dep, dag_run_id)
        if done(run, current):
            return current
        if run["state"] == "failed":
            pytest.fail(f"DAG run failed waiting for {what}: {summary(current)}\n{dep.log_tails()}", pytrace=False)
        if time.monotonic() > deadline:
            pytest.fail(f"no {what} in {timeout:.0f} s: run {run['state']}, {summary(current)}\n{dep.log_tails()}",
                        pytrace=False)
        time.sleep(0.5)


def summary(current: list[dict[str, Any]]) -> str:
    return ", ".join(f"{t['task_id']}[{t['map_index']}]={t['state']}@{t.get('hostname') or '-'}" for t in current)


def review_api(dep: CeleryDeployment, method: str, path: str, **kwargs: Any) -> Any:
    """The review app mounted in the api-server, as an API client: Bearer token from `POST /auth/token`."""
    r = httpx.request(method, f"{dep.url}/writeback/api/v1{path}", timeout=30,
                      headers={"Authorization": f"Bearer {dep.token()}"}, **kwargs)
    assert r.status_code == 200, f"{method} {path}: {r.status_code} {r.text[:500]}"
    return r.json()


def decide_everything(dep: CeleryDeployment, store_run: str) -> int:
    """Decide every pending item as a careful registrar would (the ground truth), through the JSON API."""
    today = dt.datetime.now(dt.UTC).date()
    run = quote(store_run, safe="")
    decided = 0
    for _ in range(10):  # deciding may raise no new items, but be patient with a slow page of them
        pending = review_api(dep, "GET", f"/runs/{run}/items", params={"state": "pending"})["items"]
        if not pending:
            return decided
        for item in pending:
            row = SimpleNamespace(kind=item["kind"], submission_id=item["submission_id"], slot=item["slot"],
                                  payload=item["payload"], options=item["options"])
            choice, data = choose(row, dep.truth, today)
            review_api(dep, "POST", f"/runs/{run}/items/{quote(item['key'], safe='')}/decision",
                       json={"choice": choice, "data": data, "version": item["version"],
                             "comment": "decided through the review API"})
            decided += 1
    pytest.fail("review items kept appearing")


def test_a_run_on_two_celery_workers_survives_one_being_killed_mid_apply(celery_deployment: CeleryDeployment):
    dep = celery_deployment
    started = time.monotonic()
    phases = {"deployment ready": dep.ready_in}
    ps_admin = f"{dep.ps_url}/_sandbox"

    dep.api("PATCH", f"/dags/{DAG_ID}", json={"is_paused": False})
    dag_run_id = dep.api("POST", f"/dags/{DAG_ID}/dagRuns", json={"logical_date": None, "conf": {}}).json()[
        "dag_run_id"]
    store_run = run_id_for("demo", dag_run_id)

    # 1. the approval sensor defers: the wait happens in the triggerer, no worker slot is held
    current = wait_for(dep, dag_run_id, "a deferred approval sensor",
                       lambda run, ts: any(t["task_id"] == "wait_for_approval" and t["state"] == "deferred"
                                           for t in ts), timeout=300)
    phases["trigger → deferred"] = time.monotonic() - started
    ran_before = {t["task_id"]: t["hostname"] for t in current if t["state"] == "success"}
    assert set(ran_before.values()) <= set(WORKERS), ran_before
    assert httpx.get(f"{ps_admin}/writes", timeout=10).json() == [], "nothing is written before approval"

    # 2. every PowerSchool call gets slower, so that an apply task is still running when its worker dies
    httpx.post(f"{ps_admin}/faults", json={"latency_ms": LATENCY_MS}, timeout=10).raise_for_status()
    decided = decide_everything(dep, store_run)
    assert decided > 0
    phases["review through the API"] = time.monotonic() - started - sum(list(phases.values())[1:])

    # 3. apply is mapped over the batches and shared by both workers; kill worker-b in the middle of its apply
    def both_applying(run, ts) -> bool:
        hosts = {t["hostname"] for t in ts if t["task_id"] == "apply" and t["state"] in ("running", "success")}
        on_b = [t for t in ts if t["task_id"] == "apply" and t["state"] == "running" and t["hostname"] == "worker-b"]
        writes = httpx.get(f"{ps_admin}/stats", timeout=10).json()["writes"]
        return set(WORKERS) <= hosts and bool(on_b) and writes > 0

    current = wait_for(dep, dag_run_id, "apply running on both workers", both_applying, timeout=300)
    writes_at_kill = httpx.get(f"{ps_admin}/stats", timeout=10).json()["writes"]
    killed_tasks = {t["map_index"] for t in current
                    if t["task_id"] == "apply" and t["state"] == "running" and t["hostname"] == "worker-b"}
    killed = dep.kill_worker("worker-b")
    assert len(killed) >= 3, f"the worker, its pool and the running task: {killed}"
    phases["approved → worker-b killed"] = time.monotonic() - started - sum(list(phases.values())[1:])

    # 4. the scheduler notices the dead worker's tasks (no heartbeat) and retries them on worker-a
    current = wait_for(dep, dag_run_id, "the run to succeed", lambda run, ts: run["state"] == "success", timeout=420)
    phases["kill → success"] = time.monotonic() - started - sum(list(phases.values())[1:])
    httpx.delete(f"{ps_admin}/faults", timeout=10)
    assert {t["state"] for t in current} == {"success"}, summary(current)
    applies = [t for t in current if t["task_id"] == "apply"]
    assert len(applies) >= 3, "the plan is applied by several mapped tasks"
    hosts_by_task = {t["map_index"]: [tr["hostname"] for tr in tries(dep, dag_run_id, "apply", t["map_index"])]
                     for t in applies}
    ran = Counter(h for hosts in hosts_by_task.values() for h in hosts)
    assert ran["worker-a"] > 0 and ran["worker-b"] > 0, f"both workers ran apply tasks: {hosts_by_task}"
    for index in killed_tasks:
        history = tries(dep, dag_run_id, "apply", index)
        assert [tr["hostname"] for tr in history][0] == "worker-b", history
        assert history[0]["state"] == "failed" and history[-1]["state"] == "success", history
        assert history[-1]["hostname"] == "worker-a", history
    sensor = tries(dep, dag_run_id, "wait_for_approval", -1)
    assert any(tr["state"] == "success" for tr in sensor)
    trigger_logs = list((dep.work / "airflow" / "logs").rglob("task_id=wait_for_approval/attempt=*.log.trigger.*.log"))
    assert any("'status': 'decided'" in p.read_text(errors="replace") for p in trigger_logs), \
        f"the triggerer ran the approval trigger until the review was decided: {trigger_logs}"

    # 5. PowerSchool, over raw HTTP: every write exactly once
    log = httpx.get(f"{ps_admin}/writes", params={"digests": "true"}, timeout=30).json()
    assert len(log) > writes_at_kill, "writes went on after the kill"
    repeated = [key for key, n in Counter((w["method"], w["path"], w["body_sha256"]) for w in log).items() if n > 1]
    assert not repeated, f"writes PowerSchool received twice: {repeated[:5]}"
    ps = PowerSchool(dep.ps_url)
    check_powerschool(dep, ps, log)
    timing = ", ".join(f"{k} {v:.0f} s" for k, v in phases.items())
    print(f"\ncelery run {dag_run_id}: {decided} review items, {len(log)} writes, killed apply "
          f"{sorted(killed_tasks)} on worker-b; {timing}")


def check_powerschool(dep: CeleryDeployment, ps: PowerSchool, log: list[dict[str, Any]]) -> None:
    """PowerSchool's state against the forms and the ground truth (not against our ledger)."""
    import json

    district = json.loads((dep.work / "district" / "district.json").read_text())
    submissions = {s["id"]: s for s in json.loads((dep.work / "district" / "submissions.json").read_text())}
    truth = dep.truth
    original_ids = {int(p["id"]) for p in district["persons"]}
    persons = {int(r["person.id"]): r for r in ps.query("contacts")}
    created = set(persons) - original_ids
    # every new contact the forms name (siblings naming one count once) exists once, made by one POST
    wanted = {key for key, info in truth["new_contacts"].items()
              if any(truth["submissions"][s]["valid"] for s in info["submissions"])}
    creates = [w for w in log if w["method"] == "POST" and w["path"] == "/ws/contacts/contact"]
    assert len(created) == len(wanted) == len(creates), (len(created), len(wanted), len(creates))
    names = Counter((fold(persons[p]["person.firstname"]), fold(persons[p]["person.lastname"])) for p in created)
    assert names == Counter((fold(truth["new_contacts"][k]["first_name"]), fold(truth["new_contacts"][k]["last_name"]))
                            for k in wanted)
    # no person holds one phone number or one email twice
    phones = Counter((int(r["personphonenumberassoc.personid"]), "".join(ch for ch in r["phonenumber.phonenumber"]
                                                                          if ch.isdigit()))
                     for r in ps.query("phones"))
    assert not [k for k, n in phones.items() if n > 1], "a phone written twice"
    emails = Counter((int(r["personemailaddressassoc.personid"]), r["emailaddress.emailaddress"].strip().lower())
                     for r in ps.query("emails"))
    assert not [k for k, n in emails.items() if n > 1], "an email written twice"
    # each student links each person once, in an order 1..n, expired contacts last
    links = ps.query("links")
    assocs = {int(r["studentcontactassoc.studentcontactassocid"]): r for r in links}
    pairs = Counter((int(r["studentcontactassoc.studentdcid"]), int(r["studentcontactassoc.personid"]))
                    for r in assocs.values())
    assert not [k for k, n in pairs.items() if n > 1], "a student linked to one person twice"
    students = {r["students.student_number"]: r for r in ps.query("students")}
    for sid, info in truth["submissions"].items():
        if not info["valid"]:
            continue
        sub = submissions[sid]
        rows = ps.current_links(int(info["student_dcid"]))
        assert [int(r["studentcontactassoc.contactpriorityorder"]) for r in rows] == list(range(1, len(rows) + 1))
        ended = [bool(r["studentcontactdetail.enddate"]) for r in rows]
        assert ended == sorted(ended), f"{sid}: expired contacts come last"
        linked = {int(r["studentcontactassoc.personid"]) for r in rows}
        for slot in info["contacts"].values():
            if slot["person_id"] is not None:
                assert int(slot["person_id"]) in linked, f"{sid}: contact {slot['person_id']} linked"
            if slot.get("remove"):
                row = next(r for r in rows if int(r["studentcontactassoc.personid"]) == int(slot["person_id"]))
                assert row["studentcontactdetail.enddate"], f"{sid}: removed contact expired"
        if info["scenario"] == "edited_address":
            row = students[sub["student_number"]]
            assert (row["students.street"], row["students.zip"]) == (sub["fields"]["home_street"],
                                                                     sub["fields"]["home_zip"]), sid
