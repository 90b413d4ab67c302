"""Review items and decisions: replacement keeps still-valid decisions; deciding is optimistic and race-safe."""

from __future__ import annotations

import threading

import pytest

from writeback.domain.models import Decision, ReviewItem
from writeback.store import DecisionConflict, InvalidDecision, ItemNotFound, Store

MATCH_OPTIONS = ["confirm", "not_a_match"]


def _item(key: str, *, payload: dict | None = None, options: list[str] | None = None, kind: str = "possible_match",
          slot: int | None = 1) -> ReviewItem:
    return ReviewItem(key=key, kind=kind, submission_id=f"sub-{key}", student_number="S-1", slot=slot,
                      options=options or list(MATCH_OPTIONS),
                      payload={"candidate": {"person_id": 42, "score": 0.87, "reasons": ["last_name", "phone"]}}
                      if payload is None else payload)


@pytest.fixture
def run(store: Store) -> str:
    store.ensure_run("run-1", "north")
    return "run-1"


def test_replace_review_items_stores_the_plan_items(store: Store, run: str):
    items = [_item("a"), _item("b", kind="field_change", slot=None, options=["apply", "skip"], payload={"old": "x"})]
    store.replace_review_items(run, items, "hash-1")

    rows = store.items(run)
    assert [(r.item_key, r.kind, r.submission_id, r.student_number, r.slot, r.options, r.payload) for r in rows] == [
        (i.key, i.kind, i.submission_id, i.student_number, i.slot, i.options, i.payload) for i in items]
    assert {(r.state, r.choice, r.version, r.plan_hash) for r in rows} == {("pending", None, 1, "hash-1")}
    assert [r.item_key for r in store.items(run, kind="field_change")] == ["b"]
    assert store.pending_count(run) == 2


def test_replace_keeps_a_decision_for_the_same_item(store: Store, run: str):
    store.replace_review_items(run, [_item("same"), _item("changed"), _item("reoptioned"), _item("gone")], "h1")
    for key in ("same", "changed", "reoptioned", "gone"):
        store.decide(run, key, "confirm", user="rev", data={"why": key}, comment="looks right")
    assert store.pending_count(run) == 0

    store.replace_review_items(run, [
        _item("same"),
        _item("changed", payload={"candidate": {"person_id": 43, "score": 0.87, "reasons": ["phone"]}}),
        _item("reoptioned", options=["confirm", "not_a_match", "create_new"]),
        _item("new"),
    ], "h2")

    rows = {r.item_key: r for r in store.items(run)}
    assert set(rows) == {"same", "changed", "reoptioned", "new"}  # "gone" is no longer in the plan
    same = rows["same"]
    assert (same.state, same.choice, same.decided_by, same.decision_data, same.comment, same.version) == (
        "decided", "confirm", "rev", {"why": "same"}, "looks right", 2)
    assert same.decided_at is not None
    for key in ("changed", "reoptioned", "new"):
        r = rows[key]
        assert (r.state, r.choice, r.decided_by, r.decided_at, r.decision_data) == ("pending", None, None, None, {})
    assert rows["changed"].payload["candidate"]["person_id"] == 43
    assert (rows["changed"].version, rows["reoptioned"].version, rows["new"].version) == (3, 3, 1)  # never back
    assert rows["reoptioned"].options == ["confirm", "not_a_match", "create_new"]
    assert {r.plan_hash for r in rows.values()} == {"h2"}
    assert store.pending_count(run) == 3
    assert set(store.decisions(run)) == {"same"}


def test_replace_with_an_empty_plan_removes_all_items(store: Store, run: str):
    store.replace_review_items(run, [_item("a"), _item("b")], "h1")
    store.replace_review_items(run, [], "h2")
    assert store.items(run) == [] and store.pending_count(run) == 0


def test_items_of_other_runs_are_untouched(store: Store, run: str):
    store.ensure_run("run-2", "north")
    store.replace_review_items("run-2", [_item("a")], "h")
    store.decide("run-2", "a", "not_a_match", user="rev")
    store.replace_review_items(run, [_item("a"), _item("b")], "h")
    store.replace_review_items(run, [], "h2")
    assert [(r.item_key, r.choice) for r in store.items("run-2")] == [("a", "not_a_match")]
    assert store.pending_count("run-2") == 0


def test_pending_count_follows_decisions(store: Store, run: str):
    assert store.pending_count(run) == 0
    store.replace_review_items(run, [_item(k) for k in "abc"], "h")
    assert store.pending_count(run) == 3
    store.decide(run, "b", "confirm", user="rev")
    assert store.pending_count(run) == 2
    assert [r.item_key for r in store.items(run, state="pending")] == ["a", "c"]
    assert [r.item_key for r in store.items(run, state="decided")] == ["b"]
    assert store.pending_count("run-without-items") == 0


def test_decide_records_the_decision_and_bumps_the_version(store: Store, run: str):
    store.replace_review_items(run, [_item("a")], "h")
    row = store.decide(run, "a", "not_a_match", user="alice", data={"note": 1}, comment="different person")
    assert (row.state, row.choice, row.decided_by, row.decision_data, row.comment, row.version) == (
        "decided", "not_a_match", "alice", {"note": 1}, "different person", 2)
    assert row.decided_at is not None
    row = store.decide(run, "a", "confirm", user="bob")  # without a version: a plain re-decision
    assert (row.choice, row.decided_by, row.decision_data, row.comment, row.version) == ("confirm", "bob", {}, "", 3)


def test_decide_refuses_a_choice_that_is_not_an_option(store: Store, run: str):
    store.replace_review_items(run, [_item("a")], "h")
    with pytest.raises(InvalidDecision, match="'delete_everything' is not an option"):
        store.decide(run, "a", "delete_everything", user="rev")
    row = store.item(run, "a")
    assert (row.state, row.choice, row.version) == ("pending", None, 1)


def test_unknown_item_is_not_found(store: Store, run: str):
    store.replace_review_items(run, [_item("a")], "h")
    with pytest.raises(ItemNotFound, match="nope"):
        store.item(run, "nope")
    with pytest.raises(ItemNotFound, match="nope"):
        store.decide(run, "nope", "confirm", user="rev")
    with pytest.raises(ItemNotFound):
        store.decide("other-run", "a", "confirm", user="rev")


def test_stale_version_conflicts(store: Store, run: str):
    store.replace_review_items(run, [_item("a")], "h")
    seen = store.item(run, "a").version
    store.decide(run, "a", "confirm", user="alice", expected_version=seen)
    with pytest.raises(DecisionConflict, match="'a'"):
        store.decide(run, "a", "not_a_match", user="bob", expected_version=seen)
    row = store.item(run, "a")
    assert (row.choice, row.decided_by, row.version) == ("confirm", "alice", seen + 1)
    row = store.decide(run, "a", "not_a_match", user="bob", expected_version=row.version)  # after a reload
    assert (row.choice, row.decided_by) == ("not_a_match", "bob")


def test_a_changed_item_conflicts_with_a_version_seen_before_the_change(store: Store, run: str):
    """A reviewer who saw the old payload must not decide the new one with the version they hold."""
    store.replace_review_items(run, [_item("a")], "h1")
    seen = store.item(run, "a").version
    store.replace_review_items(run, [_item("a", payload={"candidate": {"person_id": 99}})], "h2")
    with pytest.raises(DecisionConflict):
        store.decide(run, "a", "confirm", user="rev", expected_version=seen)
    assert store.item(run, "a").state == "pending"


@pytest.mark.parametrize("deciders", [2, 6])
def test_racing_deciders_exactly_one_wins(store_url: str, store: Store, run: str, deciders: int):
    """Deciders in separate threads (each with its own engine, like two api-server workers) hold the same
    version and decide at the same moment: exactly one succeeds, all others get DecisionConflict."""
    rounds = 4
    stores = [Store(store_url, migrate=False) for _ in range(deciders)]
    try:
        for rnd in range(rounds):
            store.replace_review_items(run, [_item("a", payload={"round": rnd})], f"h{rnd}")
            version = store.item(run, "a").version
            barrier = threading.Barrier(deciders)
            outcomes: list[tuple[str, str]] = [("", "")] * deciders

            def decide(i: int, version: int = version, barrier: threading.Barrier = barrier,
                       outcomes: list = outcomes) -> None:
                choice = MATCH_OPTIONS[i % 2]
                try:
                    barrier.wait(timeout=30)
                    stores[i].decide(run, "a", choice, user=f"user{i}", expected_version=version)
                    outcomes[i] = ("ok", choice)
                except DecisionConflict:
                    outcomes[i] = ("conflict", choice)
                except Exception as exc:
                    outcomes[i] = ("error", repr(exc))

            threads = [threading.Thread(target=decide, args=(i,)) for i in range(deciders)]
            for t in threads:
                t.start()
            for t in threads:
                t.join(timeout=60)
            assert not any(t.is_alive() for t in threads)

            assert [o for o in outcomes if o[0] == "error"] == []
            winners = [i for i, o in enumerate(outcomes) if o[0] == "ok"]
            assert len(winners) == 1, outcomes
            row = store.item(run, "a")
            assert (row.decided_by, row.choice, row.version) == (f"user{winners[0]}", outcomes[winners[0]][1],
                                                                 version + 1)
    finally:
        for s in stores:
            s.dispose()


def test_decisions_returns_decision_models(store: Store, run: str):
    store.replace_review_items(run, [
        _item("m"),
        _item("x", kind="contact_removal", options=["expire", "unlink", "keep"], payload={"person_id": 7}),
        _item("pending"),
    ], "h")
    store.decide(run, "m", "confirm", user="alice")
    store.decide(run, "x", "expire", user="bob", data={"end_date": "2026-09-01"})

    decisions = store.decisions(run)

    assert decisions == {
        "m": Decision(item_key="m", choice="confirm", data={}, decided_by="alice"),
        "x": Decision(item_key="x", choice="expire", data={"end_date": "2026-09-01"}, decided_by="bob"),
    }
    assert all(isinstance(d, Decision) for d in decisions.values())
