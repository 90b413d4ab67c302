"""Submissions of a run, their quality verdicts and the quarantine."""

from __future__ import annotations

from writeback.domain.models import RecordProblem, Submission
from writeback.store import Store


def _subs(*ids: str) -> list[Submission]:
    return [Submission(id=i, form_id="reg-2026", student_number=f"S-{i}", submitted_at="2026-04-01T10:00:00Z",
                       updated_at=f"2026-04-02T10:00:0{n}Z",
                       fields={"first_name": f"Ana {i}", "contacts": [{"last": "Díaz", "phone": "555-0100"}]})
            for n, i in enumerate(ids)]


def _rows(store: Store, run_id: str, status: str | None = None) -> list[tuple]:
    return [(r.submission_id, r.student_number, r.updated_at, r.status, r.payload, r.record)
            for r in store.submissions(run_id, status)]


def test_save_submissions_stores_each_submission(store: Store):
    store.ensure_run("r", "north")
    subs = _subs("s1", "s2", "s3")
    assert store.save_submissions("r", subs) == 3
    assert _rows(store, "r") == [(s.id, s.student_number, s.updated_at, "received", s.model_dump(mode="json"), None)
                                 for s in subs]
    assert Submission.model_validate(store.submissions("r")[1].payload) == subs[1]


def test_save_submissions_replaces_on_rerun(store: Store):
    store.ensure_run("r", "north")
    store.ensure_run("other", "north")
    store.save_submissions("other", _subs("s1"))
    store.save_submissions("r", _subs("s1", "s2", "s3"))
    before = _rows(store, "r")

    assert store.save_submissions("r", _subs("s1", "s2", "s3")) == 3
    assert _rows(store, "r") == before

    assert store.save_submissions("r", _subs("s2")) == 1  # a narrower rerun leaves only what it extracted
    assert [r.submission_id for r in store.submissions("r")] == ["s2"]
    assert [r.submission_id for r in store.submissions("other")] == ["s1"]  # other runs untouched


def test_record_quality_marks_valid_and_quarantined(store: Store):
    store.ensure_run("r", "north")
    store.save_submissions("r", _subs("s1", "s2", "s3", "s4"))
    record = {"submission_id": "s1", "student_number": "S-s1", "student_fields": {"first_name": "Ana"}}
    problems = [
        RecordProblem(submission_id="s2", field="contacts[1].phone", reason="not a phone number", value="12ab",
                      check="phone_format"),
        RecordProblem(submission_id="s2", field="birthdate", reason="not a date", value="31/02/2020"),
        RecordProblem(submission_id="s3", field="student_number", reason="unknown student", value="S-s3"),
    ]
    store.record_quality("r", {"s1": record, "s4": {"submission_id": "s4"}}, problems)

    status = {r.submission_id: (r.status, r.record) for r in store.submissions("r")}
    assert status == {"s1": ("valid", record), "s2": ("quarantined", None), "s3": ("quarantined", None),
                      "s4": ("valid", {"submission_id": "s4"})}
    assert [r.submission_id for r in store.submissions("r", "quarantined")] == ["s2", "s3"]
    assert [r.submission_id for r in store.submissions("r", "valid")] == ["s1", "s4"]

    q = [(r.submission_id, r.field, r.reason, r.value, r.check) for r in store.quarantine("r")]
    assert q == [("s2", "contacts[1].phone", "not a phone number", "12ab", "phone_format"),
                 ("s2", "birthdate", "not a date", "31/02/2020", ""),
                 ("s3", "student_number", "unknown student", "S-s3", "")]


def test_problem_wins_over_a_valid_record_of_the_same_submission(store: Store):
    store.ensure_run("r", "north")
    store.save_submissions("r", _subs("s1"))
    store.record_quality("r", {"s1": {"ok": True}}, [RecordProblem(submission_id="s1", field="email", reason="bad")])
    assert [(r.status, r.record) for r in store.submissions("r")] == [("quarantined", None)]


def test_record_quality_again_replaces_earlier_quarantine(store: Store):
    store.ensure_run("r", "north")
    store.ensure_run("other", "north")
    store.save_submissions("r", _subs("s1", "s2"))
    store.save_submissions("other", _subs("s1"))
    store.record_quality("other", {}, [RecordProblem(submission_id="s1", field="f", reason="other run")])
    store.record_quality("r", {"s2": {"n": 2}}, [RecordProblem(submission_id="s1", field="email", reason="bad",
                                                               value="a@")])

    # the family fixed s1, s2 now fails a different check
    store.record_quality("r", {"s1": {"n": 1}}, [RecordProblem(submission_id="s2", field="zip", reason="bad zip",
                                                               value="ABCDE")])

    assert {r.submission_id: (r.status, r.record) for r in store.submissions("r")} == {
        "s1": ("valid", {"n": 1}), "s2": ("quarantined", None)}
    assert [(r.submission_id, r.field, r.reason, r.value) for r in store.quarantine("r")] == [
        ("s2", "zip", "bad zip", "ABCDE")]
    assert [(r.submission_id, r.reason) for r in store.quarantine("other")] == [("s1", "other run")]
