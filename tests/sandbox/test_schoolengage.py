"""SchoolEngage sandbox over loopback HTTP: auth, paging, since-cursor, admin upsert, CLI."""

from __future__ import annotations

import json
import os
import queue
import signal
import subprocess
import sys
import threading
from pathlib import Path

import pytest
import requests

from sandbox.generate import build_all
from sandbox.schoolengage.server import start_in_thread

REPO = Path(__file__).resolve().parents[2]
KEY = "test-key"
AUTH = {"Authorization": f"Bearer {KEY}"}


@pytest.fixture(scope="module")
def submissions():
    return build_all(300, 9)[1]  # 150 submissions


@pytest.fixture()
def se(submissions):
    handle = start_in_thread(submissions, port=0, api_key=KEY)
    try:
        yield handle
    finally:
        handle.stop()


def _list(se, **params):
    r = requests.get(f"{se.url}/api/v1/submissions", headers=AUTH, params=params, timeout=10)
    assert r.status_code == 200, r.text
    return r.json()


def _all(se, since=None):
    out, page, cursors = [], 1, set()
    while page:
        params = {"page": page, "per_page": 40}
        if since:
            params["since"] = since
        body = _list(se, **params)
        out += body["data"]
        cursors.add(body["cursor"])
        page = body["next_page"]
    assert len(cursors) == 1, "the cursor is the same on every page of one listing"
    return out, cursors.pop()


def test_requires_bearer_key(se):
    assert requests.get(f"{se.url}/api/v1/submissions", timeout=10).status_code == 401
    bad = {"Authorization": "Bearer nope"}
    assert requests.get(f"{se.url}/api/v1/submissions", headers=bad, timeout=10).status_code == 401
    assert requests.get(f"{se.url}/api/v1/submissions/SUB-000001", timeout=10).status_code == 401
    assert requests.get(f"{se.url}/api/v1/submissions", headers={"Authorization": KEY},
                        timeout=10).status_code == 401
    assert requests.get(f"{se.url}/_sandbox/health", timeout=10).json()["ok"] is True


def test_paging(se, submissions):
    body = _list(se, page=1, per_page=40)
    assert (body["page"], body["per_page"], body["total"], body["next_page"]) == (1, 40, 150, 2)
    assert len(body["data"]) == 40
    last = _list(se, page=4, per_page=40)
    assert len(last["data"]) == 30 and last["next_page"] is None
    beyond = _list(se, page=5, per_page=40)
    assert beyond["data"] == [] and beyond["next_page"] is None and beyond["total"] == 150
    capped = _list(se, per_page=500)
    assert capped["per_page"] == 100 and len(capped["data"]) == 100 and capped["next_page"] == 2
    everything, _ = _all(se)
    expected = sorted(submissions, key=lambda s: (s["updated_at"], s["id"]))
    assert [s["id"] for s in everything] == [s["id"] for s in expected]
    assert everything[0] == expected[0]
    bad = requests.get(f"{se.url}/api/v1/submissions", headers=AUTH, params={"page": 0}, timeout=10)
    assert bad.status_code in (400, 422)


def test_since_cursor(se, submissions):
    _, cursor = _all(se)
    again = _list(se, since=cursor)
    assert again["data"] == [] and again["total"] == 0 and again["cursor"] == cursor

    changed = dict(submissions[5])
    changed["fields"] = dict(changed["fields"], home_street="1 New Street")
    r = requests.post(f"{se.url}/_sandbox/submissions", json=[changed], timeout=10)
    assert r.status_code == 200, r.text
    newer, cursor2 = _all(se, since=cursor)
    assert [s["id"] for s in newer] == [changed["id"]]
    assert newer[0]["fields"]["home_street"] == "1 New Street"
    assert newer[0]["updated_at"] > max(s["updated_at"] for s in submissions)
    assert cursor2 != cursor
    assert _list(se, since=cursor2)["data"] == []
    # total count unchanged: replaced, not added
    assert _list(se)["total"] == 150

    # two more posts: a new id and the same id again; server clock strictly increases
    extra = {"id": "SUB-900001", "form_id": "registration-2026", "student_number": "100001",
             "submitted_at": "2026-08-01T09:00:00Z", "updated_at": "2000-01-01T00:00:00Z", "fields": {}}
    s1 = requests.post(f"{se.url}/_sandbox/submissions", json=[extra], timeout=10).json()
    s2 = requests.post(f"{se.url}/_sandbox/submissions", json=[changed], timeout=10).json()
    t1, t2 = s1["submissions"][0]["updated_at"], s2["submissions"][0]["updated_at"]
    assert newer[0]["updated_at"] < t1 < t2
    latest, _ = _all(se, since=cursor2)
    assert [s["id"] for s in latest] == ["SUB-900001", changed["id"]]
    assert _list(se)["total"] == 151


def test_get_one_and_404(se, submissions):
    sub = submissions[3]
    r = requests.get(f"{se.url}/api/v1/submissions/{sub['id']}", headers=AUTH, timeout=10)
    assert r.status_code == 200 and r.json() == sub
    r = requests.get(f"{se.url}/api/v1/submissions/SUB-999999", headers=AUTH, timeout=10)
    assert r.status_code == 404


def test_bad_cursor_is_rejected(se):
    r = requests.get(f"{se.url}/api/v1/submissions", headers=AUTH, params={"since": "not a cursor!"}, timeout=10)
    assert r.status_code == 400


def test_cli_prints_ready_and_serves(tmp_path, submissions):
    path = tmp_path / "submissions.json"
    path.write_text(json.dumps(submissions[:7]), encoding="utf-8")
    proc = subprocess.Popen([sys.executable, "-m", "sandbox.schoolengage", "--host", "127.0.0.1", "--port", "0",
                             "--submissions", str(path), "--api-key", "cli-key"],
                            cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    lines: queue.Queue[str] = queue.Queue()
    threading.Thread(target=lambda: [lines.put(x) for x in proc.stdout], daemon=True).start()
    try:
        try:
            line = lines.get(timeout=30)
        except queue.Empty:
            pytest.fail(f"no READY line; stderr: {proc.stderr.read() if proc.poll() is not None else ''}")
        assert line.startswith("READY http://127.0.0.1:"), line
        url = line.split()[1]
        assert requests.get(f"{url}/_sandbox/health", timeout=10).json()["ok"] is True
        assert requests.get(f"{url}/api/v1/submissions", headers=AUTH, timeout=10).status_code == 401
        body = requests.get(f"{url}/api/v1/submissions", headers={"Authorization": "Bearer cli-key"},
                            timeout=10).json()
        assert body["total"] == 7
    finally:
        proc.send_signal(signal.SIGINT if os.name != "nt" else signal.SIGTERM)
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
    assert lines.qsize() == 0, "exactly one line on stdout"
