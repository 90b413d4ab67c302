"""The client against the sandbox's injected faults (real HTTP over loopback): every read completes
with the same rows, a write that is safe to repeat is repeated until it lands, and a create whose reply
is lost is never repeated blindly."""

from __future__ import annotations

import pytest
import requests

from sandbox.generate import build_district
from sandbox.powerschool.server import start_in_thread
from writeback.powerschool import PowerSchoolClient
from writeback.powerschool.errors import AmbiguousWriteError

CID, SECRET = "fault-client", "fault-secret"


@pytest.fixture(scope="module")
def ps():
    handle = start_in_thread(build_district(120, 4), port=0, client_id=CID, client_secret=SECRET)
    yield handle
    handle.stop()


@pytest.fixture
def faults(ps):
    def set_faults(**settings):
        requests.post(f"{ps.url}/_sandbox/faults", json=settings, timeout=10).raise_for_status()

    yield set_faults
    requests.delete(f"{ps.url}/_sandbox/faults", timeout=10)


def client(ps) -> PowerSchoolClient:
    return PowerSchoolClient(ps.url, CID, SECRET, timeout=10, backoff=0.01, max_retries=8)


def writes(ps) -> int:
    return requests.get(f"{ps.url}/_sandbox/stats", timeout=10).json()["writes"]


@pytest.mark.parametrize("seed", [1, 2])
def test_every_read_completes_with_the_same_rows_under_server_errors(ps, faults, seed):
    query = "com.writeback.snapshot.phones"
    clean = list(client(ps).iter_powerquery(query))
    faults(seed=seed, error_rate=0.25)
    c = client(ps)
    assert list(c.iter_powerquery(query)) == clean
    assert c.total_calls > len(clean) // 100 + 1, "the faults were really injected and retried"


def test_a_429_burst_is_waited_out(ps, faults):
    faults(seed=3, burst_429=2)
    c = client(ps)
    assert c.metadata()["student_max_page_size"]
    status = requests.get(f"{ps.url}/_sandbox/faults", timeout=10).json()
    assert status["counters"]["burst_429"] == 2


def test_a_safe_write_whose_reply_is_lost_is_repeated_and_lands_once(ps, faults):
    c = client(ps)
    contact = c.contacts_for_student(1)[0]
    pid = int(contact["contactId"])
    phone = contact["phones"][0]
    before = writes(ps)
    faults(seed=4, drop_after_writes=0)  # the next write is committed, then its connection dropped
    c.update_child(pid, "phones", int(phone["phoneNumberId"]), {**phone, "extension": "77"})
    phones = {int(p["phoneNumberId"]): p for p in c.list_children(pid, "phones")}
    assert phones[int(phone["phoneNumberId"])]["extension"] == "77"
    assert writes(ps) - before == 2  # the dropped PUT, then its repetition (same value: idempotent)


def test_a_create_whose_reply_is_lost_is_not_repeated(ps, faults):
    c = client(ps)
    pid = int(c.contacts_for_student(2)[0]["contactId"])
    count = len(c.list_children(pid, "emails"))
    before = writes(ps)
    faults(seed=5, drop_after_writes=0)
    with pytest.raises(AmbiguousWriteError):
        c.add_child(pid, "emails", {"address": "lost.reply@example.org", "type": "Personal", "primary": False})
    assert writes(ps) - before == 1, "the create was sent once and not repeated"
    assert len(c.list_children(pid, "emails")) == count + 1, "it happened: the caller must read back"
