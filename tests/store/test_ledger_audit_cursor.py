"""Remembered match decisions, the applied-writes ledger, the audit trail and the sync cursor."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from writeback.store import Store
from writeback.store.schema import RememberedDecision, SyncState


@pytest.fixture
def run(store: Store) -> str:
    store.ensure_run("run-1", "north")
    return "run-1"


def test_remember_upserts(store: Store):
    store.remember("north", "ana|diaz|555", 42, "confirmed", "alice")
    store.remember("north", "ana|diaz|555", 43, "not_a_match", "alice")
    store.remember("south", "ana|diaz|555", 42, "not_a_match", "carol")
    assert store.remembered("north") == {("ana|diaz|555", 42): "confirmed", ("ana|diaz|555", 43): "not_a_match"}
    with store.session() as s:
        first_at = s.get(RememberedDecision, ("north", "ana|diaz|555", 42)).decided_at

    store.remember("north", "ana|diaz|555", 42, "not_a_match", "bob")  # changed mind: replaces, does not add

    assert store.remembered("north") == {("ana|diaz|555", 42): "not_a_match", ("ana|diaz|555", 43): "not_a_match"}
    assert store.remembered("south") == {("ana|diaz|555", 42): "not_a_match"}
    assert store.remembered("east") == {}
    with store.session() as s:
        rows = s.scalars(select(RememberedDecision).where(RememberedDecision.district == "north",
                                                          RememberedDecision.person_id == 42)).all()
        assert [(r.decision, r.decided_by) for r in rows] == [("not_a_match", "bob")]
        assert rows[0].decided_at >= first_at


def test_ledger_begin_counts_attempts(store: Store, run: str):
    first = store.ledger_begin(run, "op-1", "update_phone")
    assert (first.op_key, first.kind, first.status, first.attempts, first.result_id, first.error) == (
        "op-1", "update_phone", "pending", 1, None, "")
    store.ledger_begin(run, "op-2", "create_contact")
    again = store.ledger_begin(run, "op-1", "update_phone")  # a retry after a crash: same row, one more attempt
    assert (again.id, again.attempts, again.status) == (first.id, 2, "pending")
    ledger = store.ledger(run)
    assert set(ledger) == {"op-1", "op-2"}
    assert (ledger["op-1"].attempts, ledger["op-2"].attempts) == (2, 1)


def test_ledger_finish_sets_status_result_and_error(store: Store, run: str):
    store.ledger_begin(run, "ok", "create_contact")
    store.ledger_begin(run, "bad", "update_email")
    store.ledger_finish(run, "ok", "done", result_id=9001)
    store.ledger_finish(run, "bad", "failed", error="HTTP 503 " + "x" * 5000, retryable=True)

    ledger = store.ledger(run)
    ok, bad = ledger["ok"], ledger["bad"]
    assert (ok.status, ok.result_id, ok.error, ok.retryable) == ("done", 9001, "", False)
    assert (bad.status, bad.result_id, bad.retryable) == ("failed", None, True)
    assert bad.error.startswith("HTTP 503 x") and len(bad.error) == 2000

    retry = store.ledger_begin(run, "bad", "update_email")  # retrying a failed write makes it pending again
    assert (retry.status, retry.attempts) == ("pending", 2)
    store.ledger_finish(run, "bad", "done", result_id=17)
    bad = store.ledger(run)["bad"]
    assert (bad.status, bad.result_id, bad.error, bad.retryable, bad.attempts) == ("done", 17, "", False, 2)


def test_ledger_is_per_run(store: Store, run: str):
    store.ensure_run("run-2", "north")
    store.ledger_begin(run, "op", "k")
    store.ledger_begin("run-2", "op", "k")
    store.ledger_finish("run-2", "op", "done", result_id=1)
    assert (store.ledger(run)["op"].status, store.ledger("run-2")["op"].status) == ("pending", "done")
    assert store.ledger("run-3") == {}


def test_audit_rows_keep_before_after_and_order(store: Store, run: str):
    store.audit(run, "op-1", "update_phone", student_number="S-1", person_ref="p:42",
                before={"number": "555-0100", "type": "Home"}, after={"number": "555-0199", "type": "Home"},
                reviewer="alice", response='{"id": 7}')
    store.audit(run, "op-2", "create_contact", after={"first_name": "Zoë", "phones": [{"n": "1"}]},
                response="r" * 3000)
    store.audit("run-2", "op-1", "expire_link")  # audit outlives its run: no run row needed

    rows = store.audit_rows(run)
    assert [(r.op_key, r.kind, r.student_number, r.person_ref, r.before, r.after, r.reviewer) for r in rows] == [
        ("op-1", "update_phone", "S-1", "p:42", {"number": "555-0100", "type": "Home"},
         {"number": "555-0199", "type": "Home"}, "alice"),
        ("op-2", "create_contact", "", "", {}, {"first_name": "Zoë", "phones": [{"n": "1"}]}, ""),
    ]
    assert rows[0].response == '{"id": 7}' and len(rows[1].response) == 2000
    assert all(r.at is not None for r in rows)
    assert [r.kind for r in store.audit_rows("run-2")] == ["expire_link"]


def test_cursor_advances_and_none_is_a_no_op(store: Store, run: str):
    assert store.cursor("north") is None
    assert store.begin_extraction("north", run) is None
    ticket = store.get_run(run).extract_seq
    assert store.advance_cursor("north", None, run, ticket) is False
    assert store.cursor("north") is None

    assert store.advance_cursor("north", "2026-04-01T00:00:00Z", run, ticket) is True
    assert store.cursor("north") == "2026-04-01T00:00:00Z"

    store.ensure_run("run-2", "north")
    assert store.begin_extraction("north", "run-2") == "2026-04-01T00:00:00Z"
    store.advance_cursor("north", None, "run-2", store.get_run("run-2").extract_seq)  # nothing new: it stays
    assert store.cursor("north") == "2026-04-01T00:00:00Z"

    store.ensure_run("run-3", "north")
    store.begin_extraction("north", "run-3")
    assert store.advance_cursor("north", "2026-04-02T00:00:00Z", "run-3", store.get_run("run-3").extract_seq)
    assert store.cursor("north") == "2026-04-02T00:00:00Z"
    assert store.cursor("south") is None
    with store.session() as s:
        assert s.get(SyncState, "north").last_run_id == "run-3"


def test_extraction_tickets_rise_per_district(store: Store, run: str):
    for name in ("run-2", "run-3", "south-1"):
        store.ensure_run(name, "south" if name.startswith("south") else "north")
    store.begin_extraction("north", run)
    store.begin_extraction("north", "run-2")
    store.begin_extraction("south", "south-1")
    store.begin_extraction("north", "run-3")
    tickets = [store.get_run(r).extract_seq for r in (run, "run-2", "run-3", "south-1")]
    assert tickets == [1, 2, 3, 1]
    store.begin_extraction("north", run)  # a retried extract task takes a new ticket: it read later
    assert store.get_run(run).extract_seq == 4


def test_cursor_only_moves_forward(store: Store, run: str):
    """Compare-and-set: a run that extracted earlier never puts its position over a later run's."""
    store.ensure_run("run-2", "north")
    store.begin_extraction("north", run)
    store.begin_extraction("north", "run-2")
    early, late = store.get_run(run).extract_seq, store.get_run("run-2").extract_seq
    assert store.advance_cursor("north", "LATE", "run-2", late) is True
    assert store.advance_cursor("north", "EARLY", run, early) is False
    assert store.cursor("north") == "LATE"
    assert store.advance_cursor("north", "LATE", "run-2", late) is True  # the same run again: idempotent
    assert store.advance_cursor("north", "OLD", "legacy", None) is False  # no ticket: cannot overwrite one
    assert store.cursor("north") == "LATE"
    with store.session() as s:
        assert s.get(SyncState, "north").last_run_id == "run-2"


def test_a_run_is_superseded_by_a_later_extraction_that_wrote(store: Store, run: str):
    for name, dry in (("run-2", True), ("run-3", False), ("run-4", False)):
        store.ensure_run(name, "north", dry_run=dry)
    store.ensure_run("south-1", "south")
    for name in (run, "run-2", "run-3", "run-4"):
        store.begin_extraction("north", name)
    store.begin_extraction("south", "south-1")
    assert store.superseding_run(run) is None  # nothing later has written yet
    store.ledger_begin("run-2", "student:1", "student_update")  # a dry run never supersedes
    store.ledger_begin("south-1", "student:1", "student_update")  # another district does not either
    assert store.superseding_run(run) is None
    store.ledger_begin("run-3", "student:1", "student_update")
    assert store.superseding_run(run).id == "run-3"
    assert store.superseding_run("run-3") is None
    store.ledger_begin("run-4", "student:2", "student_update")
    assert store.superseding_run(run).id == "run-4" and store.superseding_run("run-3").id == "run-4"
