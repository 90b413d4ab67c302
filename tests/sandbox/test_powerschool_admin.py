"""PowerSchool sandbox: admin endpoints (stats, write log), the CLI, and state kept across restarts."""

from __future__ import annotations

import json
import re
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests

from tests.sandbox.district_fixture import Client, district, start

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture()
def server() -> Iterator[object]:
    handle = start()
    yield handle
    handle.stop()


def test_health_and_stats_count_requests_and_successful_writes(server: object) -> None:
    url = server.url  # type: ignore[attr-defined]
    assert requests.get(f"{url}/_sandbox/health", timeout=10).json() == {"ok": True}
    ps = Client(url)  # one OAuth POST: counted as a request, never as a write
    assert requests.post(f"{url}/_sandbox/reset-stats", timeout=10).status_code == 200
    assert requests.get(f"{url}/_sandbox/stats", timeout=10).json() == {
        "requests": {"GET": 0, "POST": 0, "PUT": 0, "DELETE": 0}, "writes": 0}

    ps.get("/ws/v1/metadata")
    ps.post("/ws/schema/query/com.writeback.snapshot.contacts", json={})  # a read, not a write
    assert ps.put("/ws/contacts/5001/phones/2", json={"phoneType": "Work"}).status_code == 200
    assert ps.post("/ws/contacts/5001/phones", json={"phoneNumber": "415-555-0101",
                                                     "phoneType": "Home"}).status_code == 400  # not a write
    new_email = ps.post("/ws/contacts/5002/emails", json={"address": "j2@example.org", "type": "Work"})
    email_id = new_email.json()["_success_message"]["id"]
    assert ps.delete(f"/ws/contacts/5002/emails/{email_id}").status_code == 200
    ps.get("/ws/v1/metadata", headers={"Authorization": "Bearer wrong"})  # 401, still a request

    stats = requests.get(f"{url}/_sandbox/stats", timeout=10).json()
    assert stats == {"requests": {"GET": 2, "POST": 3, "PUT": 1, "DELETE": 1}, "writes": 3}
    writes = requests.get(f"{url}/_sandbox/writes", timeout=10).json()
    assert writes == [
        {"seq": 1, "method": "PUT", "path": "/ws/contacts/5001/phones/2", "status": 200},
        {"seq": 2, "method": "POST", "path": "/ws/contacts/5002/emails", "status": 200},
        {"seq": 3, "method": "DELETE", "path": f"/ws/contacts/5002/emails/{email_id}", "status": 200},
    ]
    requests.post(f"{url}/_sandbox/reset-stats", timeout=10)
    assert requests.get(f"{url}/_sandbox/writes", timeout=10).json() == []


def test_the_write_log_tells_one_write_sent_twice_from_two_writes(server: object) -> None:
    """With ``?digests=true`` each write carries the SHA-256 of its body: the same PUT twice has one
    digest, a different body on the same path another (what an exactly-once check counts)."""
    url = server.url  # type: ignore[attr-defined]
    ps = Client(url)
    requests.post(f"{url}/_sandbox/reset-stats", timeout=10)
    for phone_type in ("Work", "Work", "Home"):
        assert ps.put("/ws/contacts/5001/phones/2", json={"phoneType": phone_type}).status_code == 200
    logged = requests.get(f"{url}/_sandbox/writes", params={"digests": "true"}, timeout=10).json()
    assert [w["path"] for w in logged] == ["/ws/contacts/5001/phones/2"] * 3
    digests = [w["body_sha256"] for w in logged]
    assert digests[0] == digests[1] != digests[2]
    assert "body_sha256" not in requests.get(f"{url}/_sandbox/writes", timeout=10).json()[0]


def test_table_delete_204_counts_as_a_write(server: object) -> None:
    url = server.url  # type: ignore[attr-defined]
    ps = Client(url)
    requests.post(f"{url}/_sandbox/reset-stats", timeout=10)
    assert ps.delete("/ws/schema/table/u_students_extension/2").status_code == 204
    assert ps.delete("/ws/schema/table/u_students_extension/2").status_code == 404
    assert requests.get(f"{url}/_sandbox/writes", timeout=10).json() == [
        {"seq": 1, "method": "DELETE", "path": "/ws/schema/table/u_students_extension/2", "status": 204}]


def test_expire_tokens_forces_reauthentication(server: object) -> None:
    url = server.url  # type: ignore[attr-defined]
    ps = Client(url)
    assert ps.get("/ws/v1/metadata").status_code == 200
    requests.post(f"{url}/_sandbox/expire-tokens", timeout=10)
    assert ps.get("/ws/v1/metadata").status_code == 401
    assert Client(url).get("/ws/v1/metadata").status_code == 200


def _start_cli(args: list[str]) -> tuple[subprocess.Popen[str], str]:
    proc = subprocess.Popen([sys.executable, "-m", "sandbox.powerschool", *args], cwd=ROOT,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    lines: list[str] = []
    reader = threading.Thread(target=lambda: lines.append(proc.stdout.readline()), daemon=True)  # type: ignore[union-attr]
    reader.start()
    reader.join(60)
    if not lines:
        proc.kill()
        pytest.fail(f"no READY line; stderr: {proc.communicate()[1]}")
    return proc, lines[0]


def _stop(proc: subprocess.Popen[str]) -> None:
    proc.terminate()
    try:
        proc.wait(10)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def test_cli_prints_ready_serves_default_credentials_and_keeps_state(tmp_path: Path) -> None:
    district_file = tmp_path / "district.json"
    district_file.write_text(json.dumps(district()), encoding="utf-8")
    db = tmp_path / "ps.sqlite3"
    args = ["--host", "127.0.0.1", "--port", "0", "--district", str(district_file), "--db", str(db),
            "--max-page-size", "7"]
    proc, line = _start_cli(args)
    try:
        m = re.fullmatch(r"READY (http://127\.0\.0\.1:(\d+))\n", line)
        assert m and int(m.group(2)) > 0, line
        url = m.group(1)
        assert requests.get(f"{url}/_sandbox/health", timeout=10).json() == {"ok": True}
        r = requests.post(f"{url}/oauth/access_token", auth=("sandbox-client", "sandbox-secret"),
                          data={"grant_type": "client_credentials"}, timeout=10)
        headers = {"Authorization": f"Bearer {r.json()['access_token']}"}
        meta = requests.get(f"{url}/ws/v1/metadata", headers=headers, timeout=10).json()["metadata"]
        assert meta["student_max_page_size"] == 7
        r = requests.put(f"{url}/ws/contacts/5002/demographics", json={"employer": "Persisted Inc"},
                         headers=headers, timeout=10)
        assert r.status_code == 200
    finally:
        _stop(proc)

    # same district + same --db: the state survives a restart
    proc, line = _start_cli(args)
    try:
        url = line.split()[1]
        r = requests.post(f"{url}/oauth/access_token", auth=("sandbox-client", "sandbox-secret"),
                          data={"grant_type": "client_credentials"}, timeout=10)
        headers = {"Authorization": f"Bearer {r.json()['access_token']}"}
        got = requests.get(f"{url}/ws/contacts/5002/demographics", headers=headers, timeout=10).json()
        assert got["employer"] == "Persisted Inc"
    finally:
        _stop(proc)

    # another district with the same --db starts from that district
    changed = district()
    changed["persons"][1]["employer"] = "Fresh Start"
    district_file.write_text(json.dumps(changed), encoding="utf-8")
    proc, line = _start_cli(args)
    try:
        url = line.split()[1]
        r = requests.post(f"{url}/oauth/access_token", auth=("sandbox-client", "sandbox-secret"),
                          data={"grant_type": "client_credentials"}, timeout=10)
        headers = {"Authorization": f"Bearer {r.json()['access_token']}"}
        got = requests.get(f"{url}/ws/contacts/5002/demographics", headers=headers, timeout=10).json()
        assert got["employer"] == "Fresh Start"
    finally:
        _stop(proc)


def test_cli_generates_a_district_from_students_and_seed() -> None:
    pytest.importorskip("sandbox.generate")
    proc, line = _start_cli(["--port", "0", "--students", "25", "--seed", "3"])
    try:
        url = line.split()[1]
        r = requests.post(f"{url}/oauth/access_token", auth=("sandbox-client", "sandbox-secret"),
                          data={"grant_type": "client_credentials"}, timeout=10)
        headers = {"Authorization": f"Bearer {r.json()['access_token']}"}
        count = requests.get(f"{url}/ws/v1/district/student/count", headers=headers, timeout=10).json()
        assert count == {"resource": {"count": 25}}
    finally:
        _stop(proc)


def test_fidelity_policy_seam_can_throttle_and_deny_grants() -> None:
    from fastapi.responses import JSONResponse

    from sandbox.powerschool.fidelity import Policy

    class Strict(Policy):
        calls = 0

        async def before_request(self, request):  # type: ignore[no-untyped-def]
            Strict.calls += 1
            if request.url.path.startswith("/ws/v1/district"):
                return JSONResponse({"message": "too many requests, wait 3 seconds"}, status_code=429,
                                    headers={"Retry-After": "3"})
            return None

        def table_access(self, request, table, columns, write):  # type: ignore[no-untyped-def]
            if "photo_release" in columns:
                return JSONResponse({"message": "At least one column lacks sufficient permission", "errors": [
                    {"code": "NoAccess", "field": "photo_release", "resource": table}]}, status_code=403)
            return None

    handle = start(policy=Strict())
    try:
        ps = Client(handle.url)
        r = ps.get("/ws/v1/district/student")
        assert r.status_code == 429 and r.headers["Retry-After"] == "3"
        assert ps.get("/ws/v1/metadata").status_code == 200
        ext = "/ws/schema/table/u_students_extension"
        assert ps.get(ext, params={"projection": "pref_first_name"}).status_code == 200
        denied = ps.get(ext, params={"projection": "photo_release"})
        assert denied.status_code == 403 and denied.json()["errors"][0]["code"] == "NoAccess"
        # unknown columns are still 400, checked before grants
        assert ps.get(ext, params={"projection": "nope,photo_release"}).status_code == 400
        assert Strict.calls >= 5
    finally:
        handle.stop()
