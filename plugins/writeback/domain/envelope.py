"""Read one submission envelope from the source, keeping a malformed one as a record to quarantine.

A source may send anything; one bad envelope must not stop the run or vanish: it becomes a Submission
(with whatever could be read) plus the problems that will quarantine it.
"""

from __future__ import annotations

from typing import Any

from .models import RecordProblem, Submission

TEXT_FIELDS = ("form_id", "submitted_at", "updated_at")


def read_envelope(item: Any, position: int) -> tuple[Submission, list[RecordProblem]]:
    if not isinstance(item, dict):
        sid = f"unreadable-{position}"
        return Submission(id=sid), [RecordProblem(submission_id=sid, field="submission",
                                                  reason="the source sent something that is not a submission",
                                                  value=_shown(item), check="envelope")]
    sid = item.get("id")
    sid = sid if isinstance(sid, str) and sid.strip() else f"no-id-{position}"
    problems: list[RecordProblem] = []
    if sid.startswith("no-id-"):
        problems.append(RecordProblem(submission_id=sid, field="id", reason="the submission has no id",
                                      value=_shown(item.get("id")), check="envelope"))
    fields = item.get("fields")
    if fields is None:
        fields = {}
    elif not isinstance(fields, dict):
        problems.append(RecordProblem(submission_id=sid, field="fields", reason="the form fields are not an object",
                                      value=_shown(fields), check="envelope"))
        fields = {}
    text = {}
    for name in TEXT_FIELDS:
        value = item.get(name, "")
        if value is None:
            value = ""
        if not isinstance(value, str):
            problems.append(RecordProblem(submission_id=sid, field=name, reason=f"{name} is not text",
                                          value=_shown(value), check="envelope"))
            value = ""
        text[name] = value
    number = item.get("student_number")
    number = number if isinstance(number, str) else ("" if number is None else _shown(number))
    return Submission(id=sid, student_number=number, fields=fields, **text), problems


def _shown(value: Any, limit: int = 80) -> str:
    try:
        text = value if isinstance(value, str) else repr(value)
    except ValueError:  # e.g. an integer too long to print
        text = f"<{type(value).__name__}>"
    return text if len(text) <= limit else text[:limit] + "…"
