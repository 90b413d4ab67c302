"""Airflow hooks built from real Airflow Connections (``AIRFLOW_CONN_<ID>`` JSON env vars)."""

from __future__ import annotations

import json
import logging

import pytest

from tests.client.standin import Reply
from writeback.hooks.powerschool import PowerSchoolHook
from writeback.hooks.schoolengage import SchoolEngageHook
from writeback.powerschool import PowerSchoolClient
from writeback.sources.schoolengage import SchoolEngageClient

SECRET = "hook-secret-value"
META = {"metadata": {"student_max_page_size": 50, "schema_table_query_max_page_size": 75}}


def set_conn(monkeypatch, conn_id: str, **fields) -> None:
    monkeypatch.setenv(f"AIRFLOW_CONN_{conn_id.upper()}", json.dumps(fields))


def test_hook_class_attributes():
    assert PowerSchoolHook.conn_name_attr == "powerschool_conn_id"
    assert PowerSchoolHook.default_conn_name == "powerschool_default"
    assert PowerSchoolHook.conn_type == "powerschool" and PowerSchoolHook.hook_name == "PowerSchool"
    assert (
        SchoolEngageHook.conn_type == "schoolengage"
        and SchoolEngageHook.default_conn_name == "schoolengage_default"
    )
    from writeback.provider import get_provider_info

    forms = {c["connection-type"]: c for c in get_provider_info()["connection-types"]}
    ui = forms["powerschool"]["ui-field-behaviour"]
    assert ui["relabeling"]["login"] and ui["relabeling"]["password"]
    assert "login" in forms["schoolengage"]["ui-field-behaviour"]["hidden-fields"]
    assert {"timeout", "max_retries", "requests_per_second"} <= set(forms["powerschool"]["conn-fields"])


def test_powerschool_get_conn_builds_client(monkeypatch):
    set_conn(
        monkeypatch,
        "ps_a",
        conn_type="powerschool",
        host="ps.example.org",
        port=8443,
        login="cid",
        password=SECRET,
        extra={"timeout": "12.5", "requests_per_second": 4, "max_retries": "2"},
    )
    hook = PowerSchoolHook(powerschool_conn_id="ps_a")
    client = hook.get_conn()
    assert isinstance(client, PowerSchoolClient)
    assert client.base_url == "https://ps.example.org:8443"  # default scheme https
    assert client.client_id == "cid" and client._client_secret == SECRET
    assert client.timeout == 12.5 and client.max_retries == 2 and client.limiter.interval == 0.25
    assert hook.get_conn() is client  # cached


@pytest.mark.parametrize(
    "fields, url",
    [
        ({"host": "127.0.0.1", "port": 9000, "schema": "http"}, "http://127.0.0.1:9000"),
        ({"host": "https://ps.example.org/"}, "https://ps.example.org"),
        ({"host": "ps.example.org", "schema": "HTTPS"}, "https://ps.example.org"),
    ],
)
def test_powerschool_base_url_variants(monkeypatch, fields, url):
    set_conn(monkeypatch, "ps_b", conn_type="powerschool", login="cid", password=SECRET, **fields)
    assert PowerSchoolHook("ps_b").get_conn().base_url == url


def test_powerschool_bad_schema(monkeypatch):
    set_conn(monkeypatch, "ps_c", conn_type="powerschool", host="h", schema="ftp", login="a", password=SECRET)
    with pytest.raises(ValueError, match="http or https"):
        PowerSchoolHook("ps_c").get_conn()


def test_powerschool_test_connection(monkeypatch, standin, caplog):
    standin.script("GET", "/ws/v1/metadata", Reply(200, META))
    host, port = standin.url.removeprefix("http://").split(":")
    set_conn(
        monkeypatch,
        "ps_ok",
        conn_type="powerschool",
        host=host,
        port=int(port),
        schema="http",
        login="cid",
        password=SECRET,
    )
    with caplog.at_level(logging.DEBUG):
        ok, message = PowerSchoolHook("ps_ok").test_connection()
    assert ok, message
    assert "student_max_page_size=50" in message
    assert SECRET not in caplog.text and "tok-1" not in caplog.text


def test_powerschool_test_connection_fails_cleanly(monkeypatch, standin):
    standin.script("POST", "/oauth/access_token", Reply(401, {"error": "invalid_client"}))
    host, port = standin.url.removeprefix("http://").split(":")
    set_conn(
        monkeypatch,
        "ps_bad",
        conn_type="powerschool",
        host=host,
        port=int(port),
        schema="http",
        login="cid",
        password=SECRET,
    )
    ok, message = PowerSchoolHook("ps_bad").test_connection()
    assert not ok and "AuthError" in message and SECRET not in message


def test_schoolengage_hook(monkeypatch, standin):
    standin.require_token = False
    standin.script(
        "GET",
        "/api/v1/submissions",
        Reply(200, {"data": [], "page": 1, "per_page": 1, "total": 0, "next_page": None, "cursor": "c0"}),
    )
    host, port = standin.url.removeprefix("http://").split(":")
    set_conn(
        monkeypatch,
        "se_a",
        conn_type="schoolengage",
        host=host,
        port=int(port),
        schema="http",
        password="se-key-value",
        extra={"timeout": 7, "max_retries": 1},
    )
    hook = SchoolEngageHook(schoolengage_conn_id="se_a")
    client = hook.get_conn()
    assert isinstance(client, SchoolEngageClient) and hook.get_conn() is client
    assert client.base_url == standin.url and client.timeout == 7 and client.max_retries == 1
    ok, message = hook.test_connection()
    assert ok, message
    assert standin.seen[-1].headers["Authorization"] == "Bearer se-key-value"


def _conn_fields(url: str) -> dict:
    host, port = url.removeprefix("http://").split(":")
    return {"host": host, "port": int(port), "schema": "http"}


def test_powerschool_hook_against_sandbox(monkeypatch):
    server = pytest.importorskip("sandbox.powerschool.server", reason="PowerSchool sandbox not importable")
    from sandbox.generator.district import build_district

    handle = server.start_in_thread(build_district(20, 3), port=0, client_id="hook-cid", client_secret=SECRET)
    try:
        set_conn(
            monkeypatch,
            "ps_sandbox",
            conn_type="powerschool",
            login="hook-cid",
            password=SECRET,
            extra={"requests_per_second": 50},
            **_conn_fields(handle.url),
        )
        hook = PowerSchoolHook(powerschool_conn_id="ps_sandbox")
        ok, message = hook.test_connection()
        assert ok, message
        client = hook.get_conn()
        assert client.base_url == handle.url and client.count_students() == 20

        set_conn(
            monkeypatch,
            "ps_sandbox_bad",
            conn_type="powerschool",
            login="hook-cid",
            password="nope",
            **_conn_fields(handle.url),
        )
        ok, message = PowerSchoolHook("ps_sandbox_bad").test_connection()
        assert not ok and "401" in message and "nope" not in message
    finally:
        handle.stop()


def test_schoolengage_hook_against_sandbox(monkeypatch):
    server = pytest.importorskip("sandbox.schoolengage.server", reason="SchoolEngage sandbox not importable")
    subs = [{"id": f"SUB-{i}", "updated_at": "2026-08-01T10:00:00Z", "fields": {}} for i in range(3)]
    handle = server.start_in_thread(subs, port=0, api_key="se-key-value")
    try:
        set_conn(
            monkeypatch,
            "se_sandbox",
            conn_type="schoolengage",
            password="se-key-value",
            **_conn_fields(handle.url),
        )
        hook = SchoolEngageHook("se_sandbox")
        ok, message = hook.test_connection()
        assert ok and "3 submission" in message, message
        assert [s["id"] for s in hook.get_conn().iter_submissions()] == ["SUB-0", "SUB-1", "SUB-2"]
        set_conn(
            monkeypatch,
            "se_sandbox_bad",
            conn_type="schoolengage",
            password="wrong",
            **_conn_fields(handle.url),
        )
        ok, message = SchoolEngageHook("se_sandbox_bad").test_connection()
        assert not ok and "wrong" not in message
    finally:
        handle.stop()
