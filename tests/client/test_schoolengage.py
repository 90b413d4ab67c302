"""SchoolEngageClient against the real SchoolEngage sandbox over loopback (plus a stand-in for faults)."""

from __future__ import annotations

import logging

import pytest
import requests

from tests.client.standin import Reply
from writeback.sources.schoolengage import (
    SchoolEngageAuthError,
    SchoolEngageClient,
    SchoolEngageError,
    SubmissionNotFound,
)

try:
    from sandbox.schoolengage.server import start_in_thread
except ImportError as exc:  # the sandbox is written in parallel
    pytest.skip(f"SchoolEngage sandbox not importable: {exc}", allow_module_level=True)

KEY = "test-se-key"


def submission(i: int, updated: str = "2026-08-01T10:00:00Z") -> dict:
    return {
        "id": f"SUB-{i:06d}",
        "form_id": "registration-2026",
        "student_number": f"{100000 + i}",
        "submitted_at": updated,
        "updated_at": updated,
        "fields": {"student_number": f"{100000 + i}", "student_legal_first_name": f"Private{i}"},
    }


@pytest.fixture(scope="module")
def se():
    subs = [submission(i, f"2026-08-01T10:{i // 60:02d}:{i % 60:02d}Z") for i in range(1, 251)]
    handle = start_in_thread(subs, port=0, api_key=KEY)
    yield handle
    handle.stop()


def client_for(url: str, **kw) -> SchoolEngageClient:
    kw.setdefault("backoff", 0.001)
    return SchoolEngageClient(url, KEY, **kw)


def test_iter_all_pages(se):
    client = client_for(se.url)
    subs = list(client.iter_submissions())
    assert [s["id"] for s in subs] == [f"SUB-{i:06d}" for i in range(1, 251)]
    assert client.stats["list_submissions"] == 3  # 100 + 100 + 50


def test_fetch_since_cursor_roundtrip(se):
    client = client_for(se.url)
    first, cursor = client.fetch_since(None)
    assert len(first) == 250 and cursor
    again, cursor2 = client.fetch_since(cursor)
    assert again == [] and cursor2 == cursor
    requests.post(
        f"{se.url}/_sandbox/submissions", json=[submission(7), submission(900)], timeout=5
    ).raise_for_status()
    new, cursor3 = client.fetch_since(cursor)
    assert {s["id"] for s in new} == {"SUB-000007", "SUB-000900"} and cursor3 != cursor
    assert client.fetch_since(cursor3) == ([], cursor3)


def test_get_submission(se):
    client = client_for(se.url)
    sub = client.get_submission("SUB-000001")
    assert sub["fields"]["student_number"] == "100001"
    with pytest.raises(SubmissionNotFound) as info:
        client.get_submission("SUB-999999")
    assert info.value.status == 404


def test_wrong_key(se):
    client = SchoolEngageClient(se.url, "wrong-key")
    with pytest.raises(SchoolEngageAuthError) as info:
        list(client.iter_submissions())
    assert "wrong-key" not in str(info.value)
    assert client.stats["list_submissions"] == 1  # 401 is not retried


def test_ping(se):
    assert client_for(se.url).ping() >= 250


def test_retries_gets_on_5xx_and_429(standin):
    standin.require_token = False
    page = {
        "data": [{"id": "SUB-1", "fields": {"x": "secret-value"}}],
        "page": 1,
        "per_page": 100,
        "total": 1,
        "next_page": None,
        "cursor": "c1",
    }
    standin.script(
        "GET", "/api/v1/submissions", Reply(500), Reply(429, None, {"Retry-After": "0"}), Reply(200, page)
    )
    client = client_for(standin.url)
    slept: list[float] = []
    client._sleep = slept.append
    assert client.fetch_since(None) == (page["data"], "c1")
    assert client.stats["list_submissions"] == 3 and len(slept) == 2


def test_gives_up_after_max_retries_without_logging_values(standin, caplog):
    standin.require_token = False
    standin.script("GET", "/api/v1/submissions/SUB-1", Reply(503, {"detail": "busy"}))
    client = client_for(standin.url, max_retries=2)
    client._sleep = lambda s: None
    with caplog.at_level(logging.DEBUG), pytest.raises(SchoolEngageError) as info:
        client.get_submission("SUB-1")
    assert info.value.status == 503 and client.stats["get_submission"] == 3
    assert KEY not in caplog.text
