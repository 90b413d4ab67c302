"""Runs, their counts and their large per-run documents."""

from __future__ import annotations

import datetime as dt

import pytest
import sqlalchemy as sa

from writeback.store import Store, StoreError


def test_ensure_run_is_idempotent(store: Store):
    created = store.ensure_run("run-1", "north", dag_run_id="manual__1", dry_run=True)
    assert (created.id, created.district, created.dag_run_id, created.dry_run) == ("run-1", "north", "manual__1", True)
    assert created.status == "created" and created.counts == {}
    store.update_run("run-1", status="extracting")

    again = store.ensure_run("run-1", "south", dag_run_id="other", dry_run=False)

    assert (again.district, again.dag_run_id, again.dry_run, again.status) == ("north", "manual__1", True, "extracting")
    assert [r.id for r in store.list_runs()] == ["run-1"]


def test_update_run_sets_the_given_fields(store: Store):
    store.ensure_run("run-1", "north")
    approved_at = dt.datetime(2026, 5, 1, 12, 30, 15, 123456)
    store.update_run("run-1", status="approved", plan_hash="a" * 64, approved_hash="a" * 64, approved_at=approved_at,
                     cursor_from="2026-01-01T00:00:00Z")
    run = store.get_run("run-1")
    assert (run.status, run.plan_hash, run.approved_hash, run.approved_at, run.cursor_from) == (
        "approved", "a" * 64, "a" * 64, approved_at, "2026-01-01T00:00:00Z")
    assert run.cursor_to is None and run.district == "north"


def test_unknown_run_is_an_error(store: Store):
    with pytest.raises(StoreError, match="nope"):
        store.get_run("nope")
    with pytest.raises(StoreError, match="nope"):
        store.update_run("nope", status="x")
    with pytest.raises(StoreError, match="nope"):
        store.add_counts("nope", "extract", {"submissions": 1})


def test_add_counts_merges_stages(store: Store):
    store.ensure_run("run-1", "north")
    store.add_counts("run-1", "extract", {"submissions": 3})
    store.add_counts("run-1", "quality", {"valid": 2, "quarantined": 1})
    assert store.get_run("run-1").counts == {"extract": {"submissions": 3}, "quality": {"valid": 2, "quarantined": 1}}

    store.add_counts("run-1", "extract", {"submissions": 4, "pages": 2})  # a rerun replaces its own stage only

    assert store.get_run("run-1").counts == {"extract": {"submissions": 4, "pages": 2},
                                             "quality": {"valid": 2, "quarantined": 1}}


def test_list_runs_filters_by_district_and_orders_newest_first(store: Store):
    base = dt.datetime(2026, 3, 1, 8, 0, 0)
    for i, (run_id, district) in enumerate([("a", "north"), ("b", "south"), ("c", "north"), ("d", "north")]):
        store.ensure_run(run_id, district)
        store.update_run(run_id, created_at=base + dt.timedelta(minutes=i))
    store.update_run("a", created_at=base + dt.timedelta(hours=1))  # the newest, though created first

    assert [r.id for r in store.list_runs()] == ["a", "d", "c", "b"]
    assert [r.id for r in store.list_runs("north")] == ["a", "d", "c"]
    assert [r.id for r in store.list_runs("south")] == ["b"]
    assert [r.id for r in store.list_runs("north", limit=2)] == ["a", "d"]
    assert store.list_runs("east") == []
    for run_id in ("e", "f"):  # created in the same instant: still one order, every time
        store.ensure_run(run_id, "west")
        store.update_run(run_id, created_at=base)
    assert [r.id for r in store.list_runs("west")] == ["f", "e"]


def test_data_by_prefix_returns_each_students_document_in_one_query(store: Store):
    store.ensure_run("run-1", "north")
    store.ensure_run("run-2", "north")
    store.put_data("run-1", "order:100001", {"order": ["slot:2"]})
    store.put_data("run-1", "order:100002", {"order": ["slot:1"]})
    store.put_data("run-1", "orders_total", {"n": 2})  # shares the letters, not the prefix "order:"
    store.put_data("run-1", "order_%:x", {"weird": True})  # LIKE wildcards in a kind are escaped
    store.put_data("run-2", "order:100003", {"order": []})
    assert store.data_by_prefix("run-1", "order:") == {"100001": {"order": ["slot:2"]},
                                                      "100002": {"order": ["slot:1"]}}
    assert store.data_by_prefix("run-1", "order_%:") == {"x": {"weird": True}}
    assert store.data_by_prefix("run-1", "values:") == {}


def _big_document() -> dict:
    return {
        "taken_at": "2026-05-01T00:00:00Z",
        "students": {str(1000 + i): {"dcid": 1000 + i, "student_number": f"S{i:05d}",
                                     "values": {"first_name": f"Zoë {i}", "home_phone": None, "grade": i % 13}}
                     for i in range(1500)},
        "persons": [{"id": p, "first_name": "José", "last_name": "Ñúñez-O'Brien \"Jr\"", "active": p % 2 == 0,
                     "score": p / 7, "phones": [{"id": p * 10 + k, "number": f"555-01{k:02d}", "tags": []}
                                                for k in range(3)],
                     "addresses": [{"street": "1 Elm\nApt 2", "nested": {"deep": {"deeper": [1, [2, [3, {}]]]}}}]}
                    for p in range(2000)],
        "big_int": 2**53 - 1,
        "empty": {},
        "text": "x" * 200_000,
    }


def test_put_and_get_data_round_trip_a_large_nested_document(store: Store):
    store.ensure_run("run-1", "north")
    doc = _big_document()
    store.put_data("run-1", "snapshot", doc)

    assert store.get_data("run-1", "snapshot") == doc
    assert store.get_data("run-1", "plan") is None
    assert store.get_data("other-run", "snapshot") is None

    store.put_data("run-1", "snapshot", {"replaced": True})  # a rerun overwrites, it does not add a row
    store.put_data("run-1", "plan", {"students": []})
    assert store.get_data("run-1", "snapshot") == {"replaced": True}
    assert store.get_data("run-1", "plan") == {"students": []}


def test_get_data_text_is_the_document_as_json_a_model_parses(store: Store):
    """Large documents (snapshot, plan) are parsed straight from the stored JSON text on both backends."""
    import json

    from writeback.domain.models import Person, Snapshot, Student

    store.ensure_run("run-1", "north")
    doc = _big_document()
    store.put_data("run-1", "doc", doc)
    assert json.loads(store.get_data_text("run-1", "doc")) == doc
    assert store.get_data_text("run-1", "nothing") is None
    snapshot = Snapshot(taken_at="t", students={7: Student(dcid=7, student_number="100", values={"a": "Zoë"})},
                        persons={5001: Person(id=5001, first_name="Ana", last_name="López")})
    store.put_data("run-1", "snapshot", snapshot.model_dump(mode="json"))
    assert Snapshot.model_validate_json(store.get_data_text("run-1", "snapshot")) == snapshot
    store.put_data_text("run-1", "snapshot", snapshot.model_dump_json())  # replaces, as put_data does
    assert store.get_data("run-1", "snapshot") == snapshot.model_dump(mode="json")
    assert Snapshot.model_validate_json(store.get_data_text("run-1", "snapshot")) == snapshot
    store.put_data_text("run-1", "fresh", json.dumps(doc))
    assert store.get_data("run-1", "fresh") == doc


def test_run_data_needs_an_existing_run(store: Store):
    """Foreign keys are enforced on both backends (SQLite only with its pragma)."""
    with pytest.raises(sa.exc.IntegrityError):
        store.put_data("no-such-run", "plan", {})
