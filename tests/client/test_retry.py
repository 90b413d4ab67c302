"""Retry policy, backoff, rate limiter and auth against a scripted stand-in server on loopback."""

from __future__ import annotations

import random
import socket

import pytest
import requests

from tests.client.standin import Reply
from writeback.powerschool import (
    AmbiguousWriteError,
    AuthError,
    PowerSchoolClient,
    RateLimited,
    RateLimiter,
    ServerError,
    TransportError,
)
from writeback.powerschool.retry import (
    MAX_BACKOFF,
    Outcome,
    backoff_delay,
    decide,
    is_safe_to_repeat,
    parse_retry_after,
    request_was_not_sent,
)

SECRET = "s3cr3t-value"
META = {"metadata": {"student_max_page_size": 100, "schema_table_query_max_page_size": 100}}


def make_client(url: str, **kw) -> tuple[PowerSchoolClient, list[float]]:
    kw.setdefault("max_retries", 3)
    kw.setdefault("backoff", 0.01)
    client = PowerSchoolClient(url, "client-id", SECRET, timeout=kw.pop("timeout", 2.0), **kw)
    sleeps: list[float] = []
    client._sleep = sleeps.append  # record backoff instead of waiting
    return client, sleeps


# ------------------------------------------------------------------------------------ pure policy


@pytest.mark.parametrize(
    "method, path, safe",
    [
        ("GET", "/ws/v1/student/1", True),
        ("PUT", "/ws/contacts/1/phones/2", True),
        ("DELETE", "/ws/contacts/1", True),
        ("POST", "/ws/schema/query/com.writeback.snapshot.students", True),
        ("POST", "/ws/schema/query/com.writeback.snapshot.students/count", True),
        ("POST", "/ws/v1/student", True),
        ("POST", "/oauth/access_token/", True),
        ("POST", "/ws/contacts/contact", False),
        ("POST", "/ws/contacts/1/phones", False),
        ("POST", "/ws/contacts/1/students", False),
        ("POST", "/ws/contacts/1/students/9/studentdetails", False),
        ("POST", "/ws/schema/table/u_students_extension", False),
    ],
)
def test_is_safe_to_repeat(method, path, safe):
    assert is_safe_to_repeat(method, path) is safe


def test_decide_matrix():
    kw = {"attempt": 0, "max_retries": 3, "backoff": 0.5, "rng": random.Random(1)}
    assert decide(safe=True, status=500, **kw).outcome is Outcome.RETRY
    assert decide(safe=False, status=500, **kw).outcome is Outcome.AMBIGUOUS
    assert decide(safe=False, status=429, retry_after=4, **kw) == decide(
        safe=True, status=429, retry_after=4, **kw
    )
    assert decide(safe=False, status=429, retry_after=4, **kw).delay == 4
    assert decide(safe=True, status=400, **kw).outcome is Outcome.GIVE_UP
    assert decide(safe=True, status=404, **kw).outcome is Outcome.GIVE_UP
    timeout = requests.exceptions.ReadTimeout("x")
    assert decide(safe=True, exc=timeout, **kw).outcome is Outcome.RETRY
    assert decide(safe=False, exc=timeout, **kw).outcome is Outcome.AMBIGUOUS
    connect = requests.exceptions.ConnectTimeout("x")
    assert decide(safe=False, exc=connect, **kw).outcome is Outcome.RETRY
    kw["attempt"] = 3
    assert decide(safe=True, status=500, **kw).outcome is Outcome.GIVE_UP
    assert decide(safe=True, status=429, **kw).outcome is Outcome.GIVE_UP
    assert decide(safe=False, exc=connect, **kw).outcome is Outcome.GIVE_UP
    assert decide(safe=True, status=429, retry_after=10_000, attempt=0, max_retries=1, backoff=0).delay == 300


def test_backoff_grows_with_jitter_and_cap():
    rng = random.Random(7)
    for attempt in range(8):
        ceiling = min(MAX_BACKOFF, 0.5 * 2**attempt)
        d = backoff_delay(attempt, 0.5, rng)
        assert ceiling / 2 <= d <= ceiling
    assert backoff_delay(3, 0) == 0
    assert len({backoff_delay(2, 1.0) for _ in range(20)}) > 1  # jittered


def test_parse_retry_after():
    assert parse_retry_after("3") == 3
    assert parse_retry_after(" 1.5 ") == 1.5
    assert parse_retry_after(None) is None
    assert parse_retry_after("soon") is None
    assert parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT") == 0  # in the past


def test_rate_limiter_min_interval():
    now = [100.0]
    slept: list[float] = []

    def sleep(s):
        slept.append(s)
        now[0] += s

    rl = RateLimiter(4, clock=lambda: now[0], sleep=sleep)
    for _ in range(5):
        rl.acquire()
    assert slept == pytest.approx([0.25, 0.25, 0.25, 0.25])
    now[0] += 10  # idle: no burst credit beyond one slot
    assert rl.acquire() == 0
    rl.defer(2)
    assert rl.acquire() == pytest.approx(2)
    assert RateLimiter(None).acquire() == 0


def test_request_was_not_sent_on_refused_port():
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    sock.close()
    with pytest.raises(requests.ConnectionError) as info:
        requests.get(f"http://127.0.0.1:{port}/", timeout=1)
    assert request_was_not_sent(info.value)
    assert not request_was_not_sent(requests.exceptions.ReadTimeout("x"))


# ------------------------------------------------------------------------------------ over HTTP


def test_token_fetched_once_and_reused(standin):
    standin.script("GET", "/ws/v1/metadata", Reply(200, META))
    client, _ = make_client(standin.url)
    for _ in range(3):
        assert client.metadata()["student_max_page_size"] == 100
    assert client.stats["token"] == 1 and client.stats["metadata"] == 3
    [tok] = standin.requests_to("POST", "/oauth/access_token")
    assert tok.headers["Authorization"].startswith("Basic ")
    assert tok.body == b"grant_type=client_credentials"
    assert standin.requests_to("GET", "/ws/v1/metadata")[0].headers["Authorization"] == "Bearer tok-1"


def test_token_expiry_as_string_is_honoured(standin):
    standin.script("POST", "/oauth/access_token", Reply(200, {"access_token": "short", "expires_in": "0"}))
    standin.valid_tokens.add("short")
    standin.script("GET", "/ws/v1/metadata", Reply(200, META))
    client, _ = make_client(standin.url)
    client.metadata()
    client.metadata()
    assert client.stats["token"] == 2  # an expired token is not reused


def test_reauth_once_on_401(standin):
    standin.script("GET", "/ws/v1/metadata", Reply(200, META))
    client, _ = make_client(standin.url)
    client.metadata()
    standin.revoke_tokens()
    client.metadata()
    assert client.stats["token"] == 2 and client.stats["metadata"] == 3
    assert standin.requests_to("GET", "/ws/v1/metadata")[-1].headers["Authorization"] == "Bearer tok-2"


def test_persistent_401_raises_auth_error_after_one_reauth(standin):
    body = {"errorMessage": {"message": "Plugin is missing required accessLevelV1Api READ permission"}}
    standin.script("GET", "/ws/v1/metadata", Reply(401, body))
    client, _ = make_client(standin.url)
    with pytest.raises(AuthError) as info:
        client.metadata()
    assert "accessLevelV1Api" in str(info.value)
    assert client.stats["token"] == 2 and client.stats["metadata"] == 2


def test_bad_credentials(standin):
    standin.script("POST", "/oauth/access_token", Reply(401, {"error": "invalid_client"}))
    client, _ = make_client(standin.url)
    with pytest.raises(AuthError) as info:
        client.metadata()
    assert SECRET not in str(info.value) and "client-id" not in repr(info.value.args)
    assert client.stats["token"] == 1


def test_5xx_on_get_is_retried_with_backoff(standin):
    standin.script("GET", "/ws/v1/metadata", Reply(500), Reply(503), Reply(200, META))
    client, sleeps = make_client(standin.url)
    assert client.metadata()["schema_table_query_max_page_size"] == 100
    assert client.stats["metadata"] == 3 and len(sleeps) == 2
    assert 0.005 <= sleeps[0] <= 0.01 and 0.01 <= sleeps[1] <= 0.02


def test_5xx_gives_up_after_max_retries(standin):
    standin.script("GET", "/ws/v1/metadata", Reply(502, {"message": "bad gateway"}))
    client, sleeps = make_client(standin.url, max_retries=2)
    with pytest.raises(ServerError) as info:
        client.metadata()
    assert info.value.status == 502 and client.stats["metadata"] == 3 and len(sleeps) == 2


def test_429_honours_retry_after(standin):
    standin.script(
        "GET",
        "/ws/v1/metadata",
        Reply(429, {"message": "too many requests, wait 2 seconds"}, {"Retry-After": "2"}),
        Reply(200, META),
    )
    client, sleeps = make_client(standin.url)
    client.metadata()
    assert sleeps == [2.0]


def test_429_exhausted_raises_rate_limited(standin):
    standin.script("GET", "/ws/v1/metadata", Reply(429, {"message": "wait"}, {"Retry-After": "1"}))
    client, _ = make_client(standin.url, max_retries=1)
    with pytest.raises(RateLimited) as info:
        client.metadata()
    assert info.value.retry_after == 1


def test_429_on_create_is_retried(standin):
    ok = Reply(200, {"status": "SUCCESS", "action": "INSERT", "_success_message": {"id": 77}})
    standin.script("POST", "/ws/contacts/contact", Reply(429, None, {"Retry-After": "0"}), ok)
    client, _ = make_client(standin.url)
    assert client.create_contact({"firstName": "A", "lastName": "B"}) == 77
    assert len(standin.requests_to("POST", "/ws/contacts/contact")) == 2


def test_5xx_on_create_is_ambiguous_and_not_repeated(standin):
    standin.script("POST", "/ws/contacts/contact", Reply(500, {"message": "boom"}))
    client, sleeps = make_client(standin.url)
    with pytest.raises(AmbiguousWriteError) as info:
        client.create_contact({"firstName": "Secret", "lastName": "Person"})
    assert len(standin.requests_to("POST", "/ws/contacts/contact")) == 1 and sleeps == []
    msg = str(info.value)
    assert "POST /ws/contacts/contact" in msg and "Secret" not in msg and "Person" not in msg


def test_dropped_connection_on_create_is_ambiguous(standin):
    standin.script("POST", "/ws/contacts/5001/phones", Reply(drop=True))
    client, _ = make_client(standin.url)
    with pytest.raises(AmbiguousWriteError):
        client.add_child(5001, "phones", {"phoneNumber": "415-555-0101", "phoneType": "Mobile"})
    assert len(standin.requests_to("POST", "/ws/contacts/5001/phones")) == 1


def test_dropped_connection_on_put_is_retried(standin):
    ok = Reply(200, {"status": "SUCCESS", "action": "UPDATE", "_success_message": {"id": 3}})
    standin.script("PUT", "/ws/contacts/5001/phones/3", Reply(drop=True), ok)
    client, sleeps = make_client(standin.url)
    assert client.update_child(5001, "phones", 3, {"phoneNumber": "1"}).id == 3
    assert len(standin.requests_to("PUT", "/ws/contacts/5001/phones/3")) == 2 and len(sleeps) == 1


def test_timeout_on_powerquery_is_retried(standin):
    page = {"name": "q", "record": [{"t.a": "1"}], "@extensions": ""}
    standin.script("GET", "/ws/v1/metadata", Reply(200, META))
    standin.script("POST", "/ws/schema/query/q", Reply(200, page, delay=1.0), Reply(200, page))
    client, _ = make_client(standin.url, timeout=0.3)
    assert list(client.iter_powerquery("q")) == [{"t.a": "1"}]
    assert client.stats["iter_powerquery"] == 2


def test_timeout_on_table_insert_is_ambiguous(standin):
    standin.script("POST", "/ws/schema/table/u_x", Reply(200, {"result": {"status": "SUCCESS"}}, delay=1.0))
    client, _ = make_client(standin.url, timeout=0.3)
    with pytest.raises(AmbiguousWriteError):
        client.insert_row("u_x", {"a": 1})


def test_refused_connection_gives_transport_error(standin):
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    sock.close()
    client, sleeps = make_client(f"http://127.0.0.1:{port}", max_retries=2)
    with pytest.raises(TransportError) as info:
        client.metadata()
    assert client.stats["token"] == 3 and len(sleeps) == 2
    assert SECRET not in str(info.value)


def test_update_students_is_retried_on_5xx(standin):
    ok = {
        "results": {
            "update_count": 1,
            "result": {
                "client_uid": "u1",
                "status": "SUCCESS",
                "action": "UPDATE",
                "success_message": {"id": 1},
            },
        }
    }
    standin.script("POST", "/ws/v1/student", Reply(500), Reply(200, ok))
    client, _ = make_client(standin.url)
    [r] = client.update_students([{"client_uid": "u1", "id": 1, "name": {"first_name": "A"}}])
    assert r.ok and r.id == 1
    sent = standin.requests_to("POST", "/ws/v1/student")[-1].body
    assert b'"action": "UPDATE"' in sent and b'"students": {"student": [' in sent


def test_rate_limiter_in_client(standin):
    standin.script("GET", "/ws/v1/metadata", Reply(200, META))
    client, _ = make_client(standin.url, requests_per_second=1000)
    waits: list[float] = []
    client.limiter._sleep = waits.append
    client.limiter.interval = 10.0  # large interval so every call after the first must wait
    client.metadata()
    client.metadata()
    assert len(waits) == 2  # token + metadata, then metadata: the 2nd and 3rd requests waited


def test_errors_never_carry_secret_token_or_query(standin):
    standin.script(
        "GET",
        "/ws/v1/district/student",
        Reply(
            403,
            {
                "message": "At least one column lacks sufficient permission",
                "errors": [{"code": "NoAccess", "field": "dob", "resource": "students"}],
            },
        ),
    )
    standin.script("GET", "/ws/v1/metadata", Reply(200, META))
    client, _ = make_client(standin.url)
    with pytest.raises(Exception) as info:
        list(client.iter_students(q="name.last_name==Garcia"))
    text = str(info.value) + repr(info.value.args)
    for leaked in (SECRET, "tok-1", "Garcia"):
        assert leaked not in text
    assert info.value.missing == [("students", "dob")]
    assert SECRET not in repr(client)
