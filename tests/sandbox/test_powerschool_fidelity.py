"""PowerSchool sandbox fidelity: plugin.xml grants, throttling, faults on demand, kill and restart.

Everything goes over real loopback HTTP with ``requests``. The exact bodies come from section 1 of
``../shared/docs/powerschool-api.md``; the sandbox choices from docs/sandbox-contract.md.
"""

from __future__ import annotations

import json
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests

from sandbox.powerschool.app import create_app
from sandbox.powerschool.db import DEFAULT_EXTENSIONS, EXTENSION_KEY
from sandbox.powerschool.plugin import PluginError, default_plugin_xml, parse_plugin
from sandbox.powerschool.powerquery import QUERIES
from tests.sandbox.district_fixture import Client, district, start

ROOT = Path(__file__).resolve().parents[2]
EXT = "/ws/schema/table/u_students_extension"
TABLE = "u_students_extension"
TOO_FEW_COLUMNS = "At least one column lacks sufficient permission"


def plugin_xml(*fields: tuple[str, str, str], v1: str | None = "FULL", name: str = "Writeback Test",
               publisher: str | None = '<publisher name="Tests"><contact email="qa@example.org"/></publisher>') -> str:
    """A plugin.xml in the shape districts install (namespace, capitals), granting ``fields``."""
    oauth = f'<oauth accessLevelV1Api="{v1}"/>' if v1 is not None else "<oauth/>"
    grants = "".join(f'<field table="{t.upper()}" field="{c.upper()}" access="{a}"/>' for t, c, a in fields)
    return (f'<?xml version="1.0" encoding="UTF-8"?>\n<plugin xmlns="http://plugin.powerschool.pearson.com" '
            f'name="{name}" version="1.2" description="test">{publisher or ""}{oauth}'
            f"<access_request>{grants}</access_request></plugin>")


def admin(url: str, method: str, path: str, **kw: Any) -> requests.Response:
    return requests.request(method, f"{url}/_sandbox/{path}", timeout=10, **kw)


@pytest.fixture()
def server() -> Iterator[Any]:
    handle = start()
    yield handle
    handle.stop()


# -- plugin.xml ----------------------------------------------------------------------------------------
def test_default_plugin_grants_every_query_field_and_extension_column() -> None:
    plugin = parse_plugin(default_plugin_xml())
    assert plugin.v1_level == "FULL" and len(plugin.name) <= 40 and plugin.email
    for query in QUERIES.values():
        for field in query.columns:
            assert plugin.access(*field.split(".")) == "FullAccess", field
    for table, cols in DEFAULT_EXTENSIONS.items():
        for col in ("id", EXTENSION_KEY, *cols):
            assert plugin.access(table, col) == "FullAccess", (table, col)


def test_plugin_xml_is_parsed_and_invalid_plugins_refuse_to_start() -> None:
    good = parse_plugin(plugin_xml(("u_students_extension", "pref_first_name", "ViewOnly"),
                                   ("U_Students_Extension", "Pref_First_Name", "FullAccess"),
                                   ("person", "lastname", "ViewOnly"), v1="READ", name="x" * 40))
    assert (good.name, good.version, good.email, good.v1_level) == ("x" * 40, "1.2", "qa@example.org", "READ")
    assert good.access("u_students_extension", "PREF_FIRST_NAME") == "FullAccess"  # the stronger grant wins
    assert good.access("PERSON", "lastname") == "ViewOnly"
    assert good.access("person", "firstname") == "NoAccess"
    assert parse_plugin(plugin_xml(v1=None)).v1_level == "NONE"

    bad = {
        "at most 40 characters": plugin_xml(name="y" * 41),
        "contact email": plugin_xml(publisher='<publisher name="Tests"><contact/></publisher>'),
        "<publisher>": plugin_xml(publisher=None),
        "ViewOnly or FullAccess": plugin_xml(("person", "lastname", "Everything")),
        "accessLevelV1Api must be one of": plugin_xml(v1="WRITE"),
        "not well-formed": "<plugin name='a' version='1'",
    }
    for expected, xml in bad.items():
        with pytest.raises(PluginError, match=expected):
            parse_plugin(xml)
    with pytest.raises(PluginError, match="at most 40 characters"):
        create_app(district(), plugin_xml=plugin_xml(name="y" * 41))


def test_cli_refuses_a_plugin_whose_name_is_too_long(tmp_path: Path) -> None:
    (tmp_path / "district.json").write_text(json.dumps(district()), encoding="utf-8")
    (tmp_path / "plugin.xml").write_text(plugin_xml(name="Z" * 41), encoding="utf-8")
    proc = subprocess.run([sys.executable, "-m", "sandbox.powerschool", "--port", "0", "--district",
                           str(tmp_path / "district.json"), "--plugin", str(tmp_path / "plugin.xml")],
                          cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert proc.returncode != 0 and "READY" not in proc.stdout
    assert "plugin name must be at most 40 characters" in proc.stderr and "plugin.xml" in proc.stderr


# -- grants: /ws/v1 ------------------------------------------------------------------------------------
def _student_update() -> dict[str, Any]:
    return {"students": {"student": {"client_uid": "1", "action": "UPDATE", "id": 1,
                                     "name": {"first_name": "Ana", "last_name": "García-López"}}}}


def test_v1_access_level_none_read_full() -> None:
    handle = start(plugin_xml=plugin_xml(v1=None))
    try:
        url, ps = handle.url, Client(handle.url)
        for path in ("/ws/v1/metadata", "/ws/v1/district/student", "/ws/v1/district/student/count",
                     "/ws/v1/student/1"):
            r = ps.get(path)
            assert r.status_code == 401 and r.json() == {
                "errorMessage": {"message": "Plugin is missing required accessLevelV1Api READ permission"}}, path
        assert ps.post("/ws/v1/student", json=_student_update()).json() == {
            "errorMessage": {"message": "Plugin is missing required accessLevelV1Api READ permission"}}

        assert admin(url, "PUT", "plugin", data=plugin_xml(v1="NONE")).json()["accessLevelV1Api"] == "NONE"
        assert ps.get("/ws/v1/metadata").status_code == 401

        admin(url, "PUT", "plugin", data=plugin_xml(v1="READ"))
        assert ps.get("/ws/v1/student/1").status_code == 200
        r = ps.post("/ws/v1/student", json=_student_update())
        assert r.status_code == 401 and r.json() == {
            "errorMessage": {"message": "Plugin is missing required accessLevelV1Api FULL permission"}}

        admin(url, "PUT", "plugin", data=plugin_xml(v1="FULL"))
        r = ps.post("/ws/v1/student", json=_student_update())
        assert r.status_code == 200 and r.json()["results"]["update_count"] == 1
        # an invalid plugin is refused at run time too, and the installed one stays
        r = admin(url, "PUT", "plugin", data=plugin_xml(name="n" * 41))
        assert r.status_code == 400 and "40 characters" in r.json()["message"]
        assert admin(url, "GET", "plugin").json()["accessLevelV1Api"] == "FULL"
    finally:
        handle.stop()


# -- grants: table API ---------------------------------------------------------------------------------
TABLE_GRANTS = [(TABLE, "id", "FullAccess"), (TABLE, "pref_first_name", "FullAccess"),
                (TABLE, "pref_last_name", "ViewOnly")]  # studentsdcid and photo_release: no grant


def _no_access(*cols: str, table: str = TABLE) -> dict[str, Any]:
    return {"message": TOO_FEW_COLUMNS,
            "errors": [{"code": "NoAccess", "field": col, "resource": table} for col in cols]}


def test_table_api_reports_missing_grants_one_entry_per_column() -> None:
    handle = start(plugin_xml=plugin_xml(*TABLE_GRANTS))
    try:
        ps = Client(handle.url)
        r = ps.get(EXT, params={"projection": "pref_first_name,photo_release"})
        assert r.status_code == 403 and r.json() == _no_access("photo_release")
        r = ps.get(EXT, params={"projection": "studentsdcid,pref_first_name,photo_release"})
        assert r.status_code == 403 and r.json() == _no_access("studentsdcid", "photo_release")
        r = ps.get(f"{EXT}/count", params={"q": "photo_release==1"})
        assert r.status_code == 403 and r.json() == _no_access("photo_release")
        r = ps.get(EXT, params={"projection": "pref_first_name", "sort": "studentsdcid"})
        assert r.status_code == 403 and r.json() == _no_access("studentsdcid")
        r = ps.get(f"{EXT}/1", params={"projection": "photo_release"})
        assert r.status_code == 403 and r.json() == _no_access("photo_release")

        # an unknown column is a 400, checked before the grants
        r = ps.get(EXT, params={"projection": "photo_release,nope"})
        assert r.status_code == 400 and r.json() == {
            "message": "Invalid field specified: nope is not valid column for table u_students_extension"}
        r = ps.put(f"{EXT}/1", json={"tables": {TABLE: {"photo_release": "0", "nope": "x"}}})
        assert r.status_code == 400 and r.json() == {
            "message": "Invalid field specified: nope is not valid column for table u_students_extension"}

        # * means the columns the plugin may read
        everything = ps.get(EXT, params={"projection": "*"}).json()["record"]
        assert everything[0]["tables"][TABLE] == {"id": "1", "pref_first_name": "Annie", "pref_last_name": ""}
        assert ps.get(f"{EXT}/2").json()["tables"][TABLE] == {"id": "2", "pref_first_name": "",
                                                              "pref_last_name": ""}
    finally:
        handle.stop()


def test_view_only_reads_but_cannot_write_and_metadata_reports_access() -> None:
    handle = start(plugin_xml=plugin_xml(*TABLE_GRANTS))
    try:
        ps = Client(handle.url)
        r = ps.get(EXT, params={"projection": "pref_last_name", "q": "pref_last_name==*"})
        assert r.status_code == 200 and len(r.json()["record"]) == 2

        r = ps.put(f"{EXT}/1", json={"tables": {TABLE: {"id": "1", "pref_first_name": "Ann",
                                                        "pref_last_name": "Lopez"}}})
        assert r.status_code == 403 and r.json() == _no_access("pref_last_name")
        row = ps.get(f"{EXT}/1", params={"projection": "pref_first_name,pref_last_name"}).json()
        assert row["tables"][TABLE] == {"pref_first_name": "Annie", "pref_last_name": ""}  # nothing written
        assert ps.put(f"{EXT}/1", json={"tables": {TABLE: {"pref_first_name": "Ann"}}}).status_code == 200

        r = ps.post(EXT, json={"tables": {TABLE: {"studentsdcid": "3", "pref_first_name": "K"}}})
        assert r.status_code == 403 and r.json() == _no_access("studentsdcid")
        r = ps.delete(f"{EXT}/1")  # a delete touches every column
        assert r.status_code == 403 and r.json() == _no_access("studentsdcid", "pref_last_name", "photo_release")

        meta = ps.get(f"{EXT}/metadata", params={"expansions": "access"}).json()
        assert meta["name"] == TABLE
        assert [(c["name"], c["access"]) for c in meta["columns"]] == [
            ("id", "FullAccess"), ("studentsdcid", "NoAccess"), ("pref_first_name", "FullAccess"),
            ("pref_last_name", "ViewOnly"), ("photo_release", "NoAccess")]
    finally:
        handle.stop()


def test_default_plugin_reports_full_access_everywhere(server: Any) -> None:
    ps = Client(server.url)
    meta = ps.get(f"{EXT}/metadata", params={"expansions": "access"}).json()
    assert {c["access"] for c in meta["columns"]} == {"FullAccess"}
    plugin = admin(server.url, "GET", "plugin").json()
    assert plugin["accessLevelV1Api"] == "FULL" and plugin["name"] == "Writeback SchoolEngage Sync"


# -- grants: PowerQueries and contacts -----------------------------------------------------------------
def test_powerquery_lists_every_field_without_a_grant() -> None:
    person = [("person", c, "ViewOnly") for c in ("id", "firstname", "middlename", "lastname", "prefix", "suffix")]
    handle = start(plugin_xml=plugin_xml(*person))
    try:
        ps = Client(handle.url)
        name = "com.writeback.snapshot.contacts"
        expected = {"message": "Validation Failed", "errors": [
            {"resource": name, "field": "person.gender", "code": "No access to the field"},
            {"resource": name, "field": "person.employer", "code": "No access to the field"}]}
        for path in (f"/ws/schema/query/{name}", f"/ws/schema/query/{name}/count"):
            r = ps.post(path, json={})
            assert r.status_code == 403 and r.json() == expected, path
        admin(handle.url, "PUT", "plugin",
              data=plugin_xml(*person, ("person", "gender", "ViewOnly"), ("person", "employer", "FullAccess")))
        r = ps.post(f"/ws/schema/query/{name}", json={})  # ViewOnly is enough to read
        assert r.status_code == 200 and len(r.json()["record"]) == 4
    finally:
        handle.stop()


def test_contact_writes_need_full_access_on_the_tables_behind_them() -> None:
    person_cols = ["id", "firstname", "middlename", "lastname", "prefix", "suffix", "gender", "employer"]
    phone = [("phonenumber", c, "FullAccess") for c in ("phonenumberid", "phonenumber", "phonenumberext", "issms")]
    phone += [("personphonenumberassoc", c, "FullAccess")
              for c in ("personid", "phonetype", "ispreferred", "phonenumberpriorityorder")]
    handle = start(plugin_xml=plugin_xml(*[("person", c, "ViewOnly") for c in person_cols], *phone))
    try:
        ps = Client(handle.url)
        assert ps.get("/ws/contacts/contact/5001").status_code == 200  # reads need no grant
        r = ps.put("/ws/contacts/5002/demographics", json={"employer": "Nope Inc"})
        assert r.status_code == 403 and r.json() == _no_access(*person_cols, table="person")
        assert ps.get("/ws/contacts/5002/demographics").json()["employer"] == ""
        r = ps.post("/ws/contacts/5002/emails", json={"address": "j3@example.org", "type": "Work"})
        assert r.status_code == 403 and [e["resource"] for e in r.json()["errors"]] == [
            "emailaddress", "emailaddress", "personemailaddressassoc", "personemailaddressassoc",
            "personemailaddressassoc"]
        r = ps.put("/ws/contacts/5001/phones/2", json={"phoneType": "Work"})
        assert r.status_code == 200 and r.json()["status"] == "SUCCESS"
    finally:
        handle.stop()


# -- throttling ----------------------------------------------------------------------------------------
def test_min_interval_throttles_ws_requests_with_retry_after() -> None:
    handle = start(min_interval_ms=800)
    try:
        url, ps = handle.url, Client(handle.url)
        assert ps.get("/ws/v1/metadata").status_code == 200
        r = ps.get("/ws/v1/metadata")
        assert r.status_code == 429
        wait = int(r.headers["Retry-After"])
        assert wait >= 1 and r.json() == {"message": f"too many requests, wait {wait} seconds"}
        for _ in range(3):  # OAuth and admin calls are never throttled
            assert Client(url).session.headers["Authorization"].startswith("Bearer ")
            assert admin(url, "GET", "health").status_code == 200
        time.sleep(wait)
        assert ps.get("/ws/v1/metadata").status_code == 200
        assert admin(url, "GET", "throttle").json() == {"min_interval_ms": 800, "throttled": 1}

        assert admin(url, "PUT", "throttle", json={"min_interval_ms": 0}).status_code == 200
        assert [ps.get("/ws/v1/metadata").status_code for _ in range(5)] == [200] * 5
        assert admin(url, "PUT", "throttle", json={"min_interval_ms": -1}).status_code == 400
    finally:
        handle.stop()


# -- faults --------------------------------------------------------------------------------------------
def _set_faults(url: str, **settings: Any) -> dict[str, Any]:
    r = admin(url, "POST", "faults", json=settings)
    assert r.status_code == 200, r.text
    return r.json()


def test_fault_settings_round_trip_validate_and_clear(server: Any) -> None:
    url = server.url
    off = {"seed": 0, "latency_ms": 0, "error_rate": 0.0, "burst_429": 0, "drop_after_writes": None,
           "kill_after_writes": None}
    assert {k: v for k, v in admin(url, "GET", "faults").json().items() if k != "counters"} == off
    got = _set_faults(url, seed=5, latency_ms=1, error_rate=0.25, burst_429=2, drop_after_writes=3)
    assert {k: v for k, v in got.items() if k != "counters"} == {**off, "seed": 5, "latency_ms": 1,
                                                                 "error_rate": 0.25, "burst_429": 2,
                                                                 "drop_after_writes": 3}
    assert admin(url, "GET", "faults").json() == got
    for bad in ({"error_rate": 1.5}, {"burst_429": -1}, {"latency": 5}, {"drop_after_writes": "2"}, [1]):
        assert admin(url, "POST", "faults", json=bad).status_code == 400, bad
    cleared = admin(url, "DELETE", "faults").json()
    assert {k: v for k, v in cleared.items() if k != "counters"} == off
    assert set(cleared["counters"].values()) == {0}


def test_latency_delays_ws_requests(server: Any) -> None:
    ps = Client(server.url)
    _set_faults(server.url, latency_ms=300)
    started = time.monotonic()
    assert ps.get("/ws/v1/metadata").status_code == 200
    assert time.monotonic() - started >= 0.3
    assert admin(server.url, "GET", "faults").json()["counters"]["delayed"] == 1


def test_error_rate_one_fails_every_ws_request_and_writes_nothing(server: Any) -> None:
    url, ps = server.url, Client(server.url)
    _set_faults(url, error_rate=1.0, seed=1)
    statuses = [ps.get("/ws/v1/metadata").status_code for _ in range(8)]
    statuses.append(ps.put("/ws/contacts/5002/demographics", json={"employer": "Lost"}).status_code)
    assert set(statuses) <= {500, 503} and len(statuses) == 9
    assert Client(url).get("/ws/v1/metadata").status_code in (500, 503)  # OAuth itself still works
    _set_faults(url, error_rate=0.0)
    assert [ps.get("/ws/v1/metadata").status_code for _ in range(8)] == [200] * 8
    assert ps.get("/ws/contacts/5002/demographics").json()["employer"] == ""


def test_seeded_error_rate_is_reproducible(server: Any) -> None:
    ps = Client(server.url)

    def run(seed: int) -> list[int]:
        _set_faults(server.url, seed=seed, error_rate=0.5)
        return [ps.get("/ws/v1/metadata").status_code for _ in range(24)]

    first = run(11)
    assert {200} < set(first) and set(first) - {200} <= {500, 503}
    assert run(11) == first
    counters = admin(server.url, "GET", "faults").json()["counters"]
    assert counters["requests"] == 24 and counters["errors_500"] + counters["errors_503"] == first.count(500) + first.count(503)


def test_burst_429_then_normal(server: Any) -> None:
    ps = Client(server.url)
    _set_faults(server.url, burst_429=3)
    replies = [ps.get("/ws/v1/metadata") for _ in range(4)]
    assert [r.status_code for r in replies] == [429, 429, 429, 200]
    for r in replies[:3]:
        assert r.headers["Retry-After"] == "1" and r.json() == {"message": "too many requests, wait 1 seconds"}
    assert admin(server.url, "GET", "faults").json()["burst_429"] == 0


def test_dropped_connection_after_a_committed_write(server: Any) -> None:
    url, ps = server.url, Client(server.url)
    _set_faults(url, drop_after_writes=1)
    assert ps.put("/ws/contacts/5002/demographics", json={"employer": "First"}).status_code == 200
    # a failing write is not a committed write: it neither counts nor gets dropped
    assert ps.post("/ws/contacts/5001/phones", json={"phoneNumber": "415-555-0101",
                                                     "phoneType": "Home"}).status_code == 400
    admin(url, "POST", "reset-stats")
    with pytest.raises(requests.exceptions.ConnectionError):
        ps.put("/ws/contacts/5002/demographics", json={"employer": "Ambiguous"})
    assert ps.get("/ws/contacts/5002/demographics").json()["employer"] == "Ambiguous"  # it happened
    assert admin(url, "GET", "writes").json() == [
        {"seq": 1, "method": "PUT", "path": "/ws/contacts/5002/demographics", "status": 200}]
    faults = admin(url, "GET", "faults").json()
    assert faults["drop_after_writes"] is None and faults["counters"]["dropped"] == 1
    assert ps.put("/ws/contacts/5002/demographics", json={"employer": "Third"}).status_code == 200


# -- kill and restart ----------------------------------------------------------------------------------
def _start_cli(args: list[str]) -> tuple[subprocess.Popen[str], str]:
    proc = subprocess.Popen([sys.executable, "-m", "sandbox.powerschool", *args], cwd=ROOT,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    lines: list[str] = []
    reader = threading.Thread(target=lambda: lines.append(proc.stdout.readline()), daemon=True)  # type: ignore[union-attr]
    reader.start()
    reader.join(60)
    if not lines or not lines[0].startswith("READY "):
        proc.kill()
        pytest.fail(f"no READY line; stderr: {proc.communicate()[1]}")
    return proc, lines[0].split()[1]


def _cli_token(url: str) -> dict[str, str]:
    r = requests.post(f"{url}/oauth/access_token", auth=("sandbox-client", "sandbox-secret"),
                      data={"grant_type": "client_credentials"}, timeout=10)
    return {"Authorization": f"Bearer {r.json()['access_token']}"}


def test_kill_after_writes_exits_137_and_a_restart_keeps_the_state(tmp_path: Path) -> None:
    (tmp_path / "district.json").write_text(json.dumps(district()), encoding="utf-8")
    args = ["--port", "0", "--district", str(tmp_path / "district.json"), "--db", str(tmp_path / "ps.db")]
    proc, url = _start_cli(args)
    try:
        headers = _cli_token(url)
        _set_faults(url, kill_after_writes=1)
        r = requests.put(f"{url}/ws/contacts/5002/demographics", json={"employer": "Before kill"},
                         headers=headers, timeout=10)
        assert r.status_code == 200
        with pytest.raises(requests.exceptions.ConnectionError):
            requests.post(f"{url}/ws/contacts/5002/emails", json={"address": "kill@example.org", "type": "Work"},
                          headers=headers, timeout=10)
        assert proc.wait(30) == 137
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.communicate()

    proc, url = _start_cli(args)
    try:
        headers = _cli_token(url)
        demo = requests.get(f"{url}/ws/contacts/5002/demographics", headers=headers, timeout=10).json()
        assert demo["employer"] == "Before kill"
        emails = requests.get(f"{url}/ws/contacts/5002/emails", headers=headers, timeout=10).json()
        assert "kill@example.org" in [e["address"] for e in emails]  # committed right before the exit
        assert admin(url, "GET", "faults").json()["kill_after_writes"] is None  # faults do not survive
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
        proc.communicate()
