"""The invariant checker can fail: on a small hand-made district it passes a faithful run and catches a planted
duplicate, an out-of-plan write, a lost write, an unrecorded failure and an unaudited change."""

from __future__ import annotations

import copy

from bench.invariants import State, check

DISTRICT = {
    "students": [{"dcid": 1, "id": 1, "student_number": "100001", "first_name": "Ana", "middle_name": "",
                  "last_name": "Garcia", "gender": "F", "dob": "2014-03-02", "street": "12 Oak St",
                  "city": "Springfield", "state": "CA", "zip": "94110", "home_phone": "(415) 555-0100"}],
    "extensions": {"u_students_extension": [{"id": 1, "studentsdcid": 1, "pref_first_name": "", "pref_last_name": "",
                                             "photo_release": "1"}]},
    "persons": [{"id": 5001, "first_name": "Maria", "middle_name": "", "last_name": "Lopez"}],
    "emails": [{"id": 1, "person_id": 5001, "address": "Maria.Lopez@example.org", "type": "Personal", "primary": True}],
    "phones": [{"id": 1, "person_id": 5001, "number": "415-555-0101", "extension": "", "type": "Mobile",
                "preferred": True, "sms": True, "sequence": 1}],
    "addresses": [],
    "links": [{"id": 9001, "person_id": 5001, "student_dcid": 1, "sequence": 1, "can_access_data": False}],
    "details": [{"id": 1, "link_id": 9001, "relationship": "Mother", "relationship_note": "", "custodial": True,
                 "emergency": True, "lives_with": True, "school_pickup": True, "receives_mail": True,
                 "start_date": "2020-08-01", "end_date": ""}],
}

OPS = [
    {"key": "student:1", "kind": "student_update", "student_dcid": 1, "student_number": "100001",
     "values": {"addresses.physical.street": "99 Elm St"}, "expected": {"addresses.physical.street": "12 Oak St"}},
    {"key": "phone_add:p:5001:Home", "kind": "phone_add", "person_ref": "p:5001", "student_number": "100001",
     "values": {"number": "(415) 555-0199", "extension": "", "type": "Home"}},
    {"key": "create:NEW-1", "kind": "contact_create", "person_ref": "new:NEW-1", "student_number": "100001",
     "values": {"first_name": "Sam", "middle_name": "", "last_name": "Ito"}},
    {"key": "link:new:NEW-1:1", "kind": "link_add", "person_ref": "new:NEW-1", "student_dcid": 1,
     "student_number": "100001", "values": {"relationship": "Father", "start_date": "2026-08-01"}},
]


def applied() -> tuple[dict, dict, dict]:
    """The district after a faithful run of OPS, with its ledger and audit."""
    d = copy.deepcopy(DISTRICT)
    d["students"][0]["street"] = "99 Elm St"
    d["phones"].append({"id": 2, "person_id": 5001, "number": "415-555-0199", "extension": "", "type": "Home",
                        "preferred": False, "sms": False, "sequence": 2})
    d["persons"].append({"id": 5100, "first_name": "Sam", "middle_name": "", "last_name": "Ito"})
    d["links"].append({"id": 9100, "person_id": 5100, "student_dcid": 1, "sequence": 2, "can_access_data": False})
    d["details"].append({"id": 100, "link_id": 9100, "relationship": "Father", "start_date": "2026-08-01",
                         "end_date": ""})
    ledger = {op["key"]: {"status": "done", "error": "", "result_id": 5100 if op["kind"] == "contact_create" else None}
              for op in OPS}
    audit = {op["key"]: ["SUCCESS"] for op in OPS}
    return d, ledger, audit


def run_check(final: dict, ledger: dict, audit: dict | None = None, **kw) -> list[str]:
    return check(DISTRICT, OPS, ledger, State.from_district(final), audit=audit, **kw)


def test_a_faithful_run_has_no_violations():
    final, ledger, audit = applied()
    assert run_check(final, ledger, audit) == []


def test_no_writes_at_all_but_failures_recorded_is_fine():
    ledger = {op["key"]: {"status": "failed", "error": "HTTP 503", "result_id": None} for op in OPS}
    assert run_check(copy.deepcopy(DISTRICT), ledger, {}) == []


def test_catches_a_second_person_for_one_create_key():
    final, ledger, audit = applied()
    final["persons"].append({"id": 5101, "first_name": "Sam", "middle_name": "", "last_name": "ITO"})
    violations = run_check(final, ledger, audit)
    assert any(v.startswith("duplicate:") and "5101" in v and "create:NEW-1" in v for v in violations), violations


def test_catches_a_doubled_phone_and_email_and_link():
    final, ledger, audit = applied()
    final["phones"].append({"id": 3, "person_id": 5001, "number": "(415) 555 0199", "extension": "", "type": "Home",
                            "preferred": False, "sms": False, "sequence": 3})
    final["emails"].append({"id": 2, "person_id": 5001, "address": "maria.lopez@EXAMPLE.org", "type": "Personal",
                            "primary": False})
    final["links"].append({"id": 9101, "person_id": 5100, "student_dcid": 1, "sequence": 3, "can_access_data": False})
    violations = run_check(final, ledger, audit)
    dupes = [v for v in violations if v.startswith("duplicate:")]
    assert any("phone number '4155550199' 2 times" in v for v in dupes), violations
    assert any("email 'maria.lopez@example.org' 2 times" in v for v in dupes), violations
    assert any("linked to student 1 2 times" in v for v in dupes), violations


def test_catches_writes_outside_the_plan():
    final, ledger, audit = applied()
    final["students"][0]["last_name"] = "Garcia-Lopez"  # no op writes the last name
    final["persons"][0]["first_name"] = "Mary"  # no contact_name op
    final["links"][0]["can_access_data"] = True  # no data_access op
    final["details"][0]["end_date"] = "2026-08-01"  # no link_expire op
    violations = [v for v in run_check(final, ledger, audit) if v.startswith("outside_plan:")]
    assert any("students.last_name" in v for v in violations), violations
    assert any("person 5001 first_name" in v for v in violations), violations
    assert any("Data Access" in v for v in violations), violations
    assert any("end_date" in v for v in violations), violations


def test_catches_a_value_the_op_did_not_mean_to_write():
    final, ledger, audit = applied()
    final["students"][0]["street"] = "98 Elm St"
    violations = run_check(final, ledger, audit)
    assert any(v.startswith("outside_plan:") and "students.street" in v for v in violations), violations
    assert any(v.startswith("lost:") and "student:1" in v for v in violations), violations


def test_catches_a_lost_write():
    final, ledger, audit = applied()
    final["phones"].pop()  # the ledger says done, PowerSchool has no such phone
    violations = run_check(final, ledger, audit)
    assert any(v.startswith("lost:") and "phone_add:p:5001:Home" in v for v in violations), violations


def test_catches_an_op_that_silently_never_ran():
    final, ledger, audit = applied()
    final["phones"].pop()
    del ledger["phone_add:p:5001:Home"]
    violations = run_check(final, ledger, audit)
    assert any(v.startswith("lost:") and "never attempted" in v for v in violations), violations


def test_catches_a_failure_without_an_error():
    final, ledger, audit = applied()
    final["phones"].pop()
    ledger["phone_add:p:5001:Home"] = {"status": "pending", "error": "", "result_id": None}
    violations = run_check(final, ledger, audit)
    assert any(v.startswith("unrecorded:") for v in violations), violations


def test_catches_a_change_audited_only_as_a_noop():
    final, ledger, audit = applied()
    audit["student:1"] = ["noop"]
    violations = run_check(final, ledger, audit)
    assert any(v.startswith("unaudited:") and "student:1" in v for v in violations), violations


def test_a_stale_write_kept_by_the_reviewer_must_survive():
    final, ledger, audit = applied()
    final["students"][0]["street"] = "1 Registrar Way"
    ledger["student:1"] = {"status": "skipped_by_reviewer", "error": "PowerSchool's value kept", "result_id": None}
    external = {("student", 1, "students.street"): "1 Registrar Way"}
    assert run_check(final, ledger, audit, external=external) == []
    final["students"][0]["street"] = "99 Elm St"  # written over the registrar's change
    violations = run_check(final, ledger, audit, external=external)
    assert any(v.startswith("overwritten:") for v in violations), violations


def test_a_change_two_ops_explain_needs_only_one_of_them_audited_as_a_write():
    ops = [*OPS, {"key": "student:1:again", "kind": "student_update", "student_dcid": 1, "student_number": "100001",
                  "values": {"addresses.physical.street": "99 Elm St"}, "expected": {}}]
    final, ledger, audit = applied()
    ledger["student:1:again"] = {"status": "done", "error": "", "result_id": None}
    audit["student:1:again"] = ["noop"]
    assert check(DISTRICT, ops, ledger, State.from_district(final), audit=audit) == []
