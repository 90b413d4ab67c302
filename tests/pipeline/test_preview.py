"""`writeback mappings preview`: one real submission through mapping, quality, matching and planning
against the live PowerSchool (both sandboxes over loopback, clients from the district's Airflow
connections), showing the plan and items — and writing nothing: the sandbox's write counter stays, the
district's store gains no run. Expected values are read from PowerSchool over raw HTTP."""

from __future__ import annotations

import json

import pytest
import requests

from sandbox.generator import ALL_FORMS, build_all
from sandbox.powerschool.server import start_in_thread as start_powerschool
from sandbox.schoolengage.server import start_in_thread as start_schoolengage
from writeback.cli import main
from writeback.store import Store

pytestmark = pytest.mark.integration

PS_ID, PS_SECRET, SE_KEY = "preview-client", "preview-secret-31d9", "preview-se-key"


@pytest.fixture(scope="module")
def world():
    district, submissions, truth = build_all(120, 13, forms=ALL_FORMS)
    ps = start_powerschool(district, client_id=PS_ID, client_secret=PS_SECRET)
    extra = {"id": "SUB-TRANSPORT", "form_id": "transportation-2026", "student_number": "100001",
             "submitted_at": "2026-07-30T10:00:00Z", "updated_at": "2026-07-30T10:00:00Z",
             "fields": {"student_number": "100001", "bus_stop": "Oak & 5th"}}
    se = start_schoolengage([*submissions, extra], api_key=SE_KEY)
    try:
        yield {"district": district, "submissions": submissions, "truth": truth, "ps": ps, "se": se}
    finally:
        ps.stop()
        se.stop()


@pytest.fixture()
def cli(world, monkeypatch, tmp_path):
    for name, conn in (("POWERSCHOOL_DEMO", {"conn_type": "powerschool", "login": PS_ID, "password": PS_SECRET,
                                             **_host(world["ps"].url)}),
                       ("SCHOOLENGAGE_DEMO", {"conn_type": "schoolengage", "password": SE_KEY,
                                              **_host(world["se"].url)})):
        monkeypatch.setenv(f"AIRFLOW_CONN_{name}", json.dumps(conn))
    store_url = f"sqlite:///{tmp_path / 'store.db'}"
    monkeypatch.setenv("WRITEBACK_STORE_URL", store_url)
    Store(store_url, migrate=True).dispose()  # the district's store exists (empty) before the preview

    def run(*args: str, capsys=None) -> tuple[int, str]:
        code = main(["mappings", "preview", "--district", "demo", *args])
        return code, capsys.readouterr().out if capsys else ""

    run.store_url = store_url
    return run


def _host(url: str) -> dict:
    host, port = url.removeprefix("http://").split(":")
    return {"host": host, "port": int(port), "schema": "http"}


def _writes(url: str) -> int:
    return requests.get(f"{url}/_sandbox/stats", timeout=10).json()["writes"]


def _students(url: str) -> dict[str, dict]:
    token = requests.post(f"{url}/oauth/access_token", auth=(PS_ID, PS_SECRET),
                          data={"grant_type": "client_credentials"}, timeout=10).json()["access_token"]
    rows = requests.post(f"{url}/ws/schema/query/com.writeback.snapshot.students?pagesize=0", json={},
                         headers={"Authorization": f"Bearer {token}"}, timeout=30).json()["record"]
    return {r["students.student_number"]: r for r in rows}


def _pick(world, form: str, **extra) -> dict:
    for sub in world["submissions"]:
        t = world["truth"]["submissions"][sub["id"]]
        if sub["form_id"] == form and t["valid"] and all((t.get("form") or {}).get(k) == v for k, v in extra.items()):
            return sub
    raise AssertionError(f"the generated district has no {form} submission with {extra}")


def test_a_returning_form_previews_its_policies_and_writes_nothing(world, cli, capsys):
    sub = _pick(world, "returning-2026", mailing="differs")
    before = _writes(world["ps"].url)
    code, out = cli("--submission", sub["id"], capsys=capsys)
    assert code == 0, out
    assert _writes(world["ps"].url) == before, "a preview must not write to PowerSchool"
    assert Store(cli.store_url).list_runs("demo") == [], "a preview must not store a run"
    assert f"form returning-2026, mapping returning-2026, student {sub['student_number']}" in out
    assert "nothing was written" in out
    ps = _students(world["ps"].url)[sub["student_number"]]
    held = f"addresses.mailing.street: {ps['students.mailing_street']} → {sub['fields']['mail_street']}"
    assert held in out and "if_empty: PowerSchool has a value, so it is not overwritten" in out, out
    assert f"name.first_name: {ps['students.first_name']}" in out and "never" in out
    assert "order: mapping returning-2026: each section at its place (guardian1 1" in out, out


def test_the_json_preview_carries_the_plan_and_the_items(world, cli, capsys):
    sub = _pick(world, "kindergarten-2026")
    code, out = cli("--submission", sub["id"], "--json", capsys=capsys)
    assert code == 0
    result = json.loads(out)
    assert result["mapping"] == "kindergarten-2026" and result["plan"]["submission_id"] == sub["id"]
    sections = {c["submitted"]["section"] for c in result["plan"]["contacts"]}
    assert sections and sections <= {"mother", "father", "emergency1", "emergency2"}
    assert all(i["submission_id"] in (sub["id"], "*") for i in result["items"])


def test_an_unmapped_form_previews_as_quarantined_with_its_reason(world, cli, capsys):
    before = _writes(world["ps"].url)
    code, out = cli("--submission", "SUB-TRANSPORT", capsys=capsys)
    assert code == 0
    assert "QUARANTINED" in out and "form 'transportation-2026' has no mapping in district demo" in out, out
    assert _writes(world["ps"].url) == before


def test_an_unknown_submission_is_a_clear_answer(world, cli, capsys):
    code, out = cli("--submission", "SUB-NOPE", capsys=capsys)
    assert code == 1 and "no such submission" in out
