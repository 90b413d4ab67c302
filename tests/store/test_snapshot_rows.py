"""The snapshot kept as rows: found by key in the order read, paged by key, and checked for consistency by
the database (SQLite and PostgreSQL)."""

from __future__ import annotations

import json

from writeback.store import Store


def _student(dcid: int, number: str, family: str | None = None) -> dict:
    return {"row_key": dcid, "student_dcid": dcid, "student_number": number, "family_ident": family,
            "row": json.dumps({"students.dcid": str(dcid), "students.student_number": number})}


def _link(link_id: int, dcid: int, pid: int, sequence: int, detail: int = 0) -> dict:
    return {"row_key": link_id, "student_dcid": dcid, "person_id": pid, "sequence": sequence,
            "row": json.dumps({"link": link_id, "detail": detail})}


def _contact(pid: int) -> dict:
    return {"row_key": pid, "person_id": pid, "row": json.dumps({"person.id": str(pid)})}


def _consistent(store: Store, run_id: str = "run-1") -> None:
    store.ensure_run(run_id, "demo")
    store.add_snapshot_rows(run_id, "students", [_student(1, "1001", "F1"), _student(2, "1002", "F1"),
                                                 _student(3, "1003")])
    store.add_snapshot_rows(run_id, "contacts", [_contact(10), _contact(11), _contact(12)])
    store.add_snapshot_rows(run_id, "links", [_link(100, 1, 10, 1), _link(100, 1, 10, 1, detail=2),
                                              _link(101, 1, 11, 2), _link(102, 2, 10, 1), _link(103, 3, 12, 1)])


def _failing(store: Store, run_id: str = "run-1") -> dict[tuple[str, str], list]:
    return {(c.column, c.expectation): c.failing for c in store.snapshot_integrity(run_id) if c.failing}


def test_rows_are_found_by_any_key_in_the_order_read(store):
    _consistent(store)
    links = [json.loads(r) for r in store.snapshot_rows("run-1", "links", student_dcid=[1])]
    assert [(r["link"], r["detail"]) for r in links] == [(100, 0), (100, 2), (101, 0)]
    either = store.snapshot_rows("run-1", "links", student_dcid=[3], person_id=[10])
    assert [json.loads(r)["link"] for r in either] == [100, 100, 102, 103]  # any key, each row once
    assert [json.loads(r)["students.student_number"]
            for r in store.snapshot_rows("run-1", "students", family_ident=["F1"])] == ["1001", "1002"]
    assert store.snapshot_rows("run-1", "students", student_number=["9999"]) == []
    assert store.snapshot_rows("other-run", "students") == []
    assert store.snapshot_counts("run-1") == {"students": 3, "contacts": 3, "links": 4}  # distinct links


def test_keys_page_in_order_and_a_long_list_of_ids_is_looked_up_in_parts(store):
    store.ensure_run("run-1", "demo")
    store.add_snapshot_rows("run-1", "contacts", [_contact(pid) for pid in range(1, 4502)])
    assert store.snapshot_keys("run-1", "contacts", "person_id", limit=3) == [1, 2, 3]
    assert store.snapshot_keys("run-1", "contacts", "person_id", after=4499, limit=3) == [4500, 4501]
    wanted = set(range(0, 9000, 2))  # more ids than one IN (...) takes
    assert store.snapshot_keys("run-1", "contacts", "person_id", among=wanted) == sorted(wanted & set(range(1, 4502)))
    assert len(store.snapshot_rows("run-1", "contacts", person_id=wanted)) == 2250
    assert [json.loads(r)["person.id"] for r in store.snapshot_rows_between("run-1", "contacts", "person_id",
                                                                            10, 12)] == ["10", "11", "12"]


def test_a_consistent_snapshot_passes_every_check(store):
    _consistent(store)
    checks = store.snapshot_integrity("run-1")
    assert len(checks) == 8 and not _failing(store)
    assert {c.column: c.evaluated for c in checks if c.suite == "snapshot_links"}["sequence"] == 4


def test_the_database_finds_each_kind_of_inconsistency(store):
    _consistent(store)
    store.add_snapshot_rows("run-1", "students", [_student(4, "1003")])  # a number twice
    store.add_snapshot_rows("run-1", "contacts", [_contact(12)])  # a person twice
    store.add_snapshot_rows("run-1", "links", [
        _link(104, 9, 10, 1),  # a student that does not exist
        _link(105, 3, 99, 2),  # a person that does not exist
        _link(106, 3, 11, 0),  # no priority
        _link(107, 2, 11, 1),  # the priority of link 102
        _link(101, 2, 11, 2, detail=3),  # link 101 again, on another student
    ])
    assert _failing(store) == {
        ("student_number", "expect_column_values_to_be_unique"): ["1003"],
        ("person_id", "expect_column_values_to_be_unique"): [12],
        ("student_dcid", "expect_column_values_to_be_in_set"): [104],
        ("person_id", "expect_column_values_to_be_in_set"): [105],
        ("sequence", "expect_column_values_to_be_between"): [106],
        ("student_dcid+sequence", "expect_compound_columns_to_be_unique"): [102, 107],
        ("link_id", "expect_column_values_to_be_unique"): [101],
    }


def test_clearing_a_run_keeps_the_other_runs_rows(store):
    _consistent(store, "run-1")
    _consistent(store, "run-2")
    store.clear_snapshot("run-1")
    assert store.snapshot_counts("run-1") == {}
    assert store.snapshot_counts("run-2")["links"] == 4
    assert store.snapshot_integrity("run-1") == []


def test_a_copied_snapshot_is_the_same_rows_in_the_same_order(store):
    _consistent(store, "run-1")
    store.put_data("run-1", "snapshot_meta", {"taken_at": "2026-11-29T10:00:00+00:00"})
    store.ensure_run("run-2", "demo")
    store.copy_snapshot("run-1", "run-2")
    for entity in ("students", "contacts", "links"):
        assert store.snapshot_rows("run-2", entity) == store.snapshot_rows("run-1", entity)
    assert store.get_data("run-2", "snapshot_meta") == store.get_data("run-1", "snapshot_meta")
    assert store.snapshot_integrity("run-2") == store.snapshot_integrity("run-1")
