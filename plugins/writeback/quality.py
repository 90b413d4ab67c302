"""Data-quality checks on mapped submissions, with Great Expectations 1.x.

Record-level failures become `RecordProblem`s that quarantine the record (naming the expectation,
the field and the value); the caller decides whether the share of bad records stops the run.
"""

from __future__ import annotations

import logging
import os
from typing import Any

from .domain.models import FormRecord, RecordProblem
from .domain.normalize import clean_text, is_valid_phone

os.environ.setdefault("GX_ANALYTICS_ENABLED", "False")  # no network, no telemetry

log = logging.getLogger(__name__)

DATE = r"^\d{4}-\d{2}-\d{2}$"
POSTAL = r"^\d{5}(?:-\d{4})?$"
STATE = r"^[A-Z]{2}$"


def _student_frame(records: list[FormRecord]) -> list[dict[str, Any]]:
    rows = []
    for r in records:
        f = r.student_fields
        rows.append({
            "submission_id": r.submission_id,
            "student_number": r.student_number,
            "demographics.birth_date": f.get("demographics.birth_date") or None,
            "demographics.gender": f.get("demographics.gender") or None,
            "addresses.physical.postal_code": f.get("addresses.physical.postal_code") or None,
            "addresses.physical.state_province": f.get("addresses.physical.state_province") or None,
        })
    return rows


def _contact_frame(records: list[FormRecord]) -> list[dict[str, Any]]:
    rows = []
    for r in records:
        for c in r.contacts:
            # the text rules again (normalize.py), not the mapping's word for it: an invisible name is none
            rows.append({"submission_id": r.submission_id, "slot": c.slot, "row_id": f"{r.submission_id}#{c.slot}",
                         # a section without a relationship field gives its default (the link gets it)
                         "relationship": c.relationship or c.default_relationship or None,
                         "last_name": clean_text(c.last_name) or None,
                         "postal_code": (c.address.postal_code if c.address else "") or None})
    return rows


PHONE_VALID = "phone_valid"


def _phone_frame(records: list[FormRecord], region: str) -> list[dict[str, Any]]:
    """One row per submitted phone (the student's main phone, each contact's phones), with whether the
    number can exist in the district's region (`normalize.is_valid_phone`), whatever the mapping checked;
    each row carries the problem it would be."""
    rows = []
    for r in records:
        main = r.student_fields.get("phones.main")
        if main:
            rows.append({"row_id": f"{r.submission_id}#phones.main", PHONE_VALID: is_valid_phone(main, region),
                         "_problem": (r.submission_id, "phones.main", "the student's phone", main)})
        for c in r.contacts:
            for phone in c.phones:
                rows.append({"row_id": f"{r.submission_id}#{c.slot}#{phone.type}",
                             PHONE_VALID: is_valid_phone(phone.number, region),
                             "_problem": (r.submission_id, f"contact{c.slot}.phones.{phone.type}",
                                          f"contact {c.slot} {phone.type} phone", phone.number)})
    return rows


# A set expectation is checked on a derived column `<column>__in_set` (True/False, None for None) with the
# value set [True], and reported under the original column and value. Great Expectations re-serialises an
# expectation's whole value_set on every access to its configuration (thousands of times per suite), so a
# value set of every student or person in a district made these checks take minutes at 20,000 students.
_IN_SET = "__in_set"


def _in_set(column: str):
    import great_expectations.expectations as gxe

    return gxe.ExpectColumnValuesToBeInSet(column=column + _IN_SET, value_set=[True])


def _with_membership(rows: list[dict[str, Any]], column: str, allowed: set | dict) -> list[dict[str, Any]]:
    for row in rows:
        value = row.get(column)
        row[column + _IN_SET] = None if value is None else value in allowed
    return rows


def _student_expectations(known_students: set[str]):
    import great_expectations.expectations as gxe

    return [
        gxe.ExpectColumnValuesToNotBeNull(column="student_number"),
        gxe.ExpectColumnValuesToMatchRegex(column="student_number", regex=r"^\d{1,12}$"),
        _in_set("student_number"),  # against known_students: see _with_membership
        gxe.ExpectColumnValuesToMatchRegex(column="demographics.birth_date", regex=DATE),
        gxe.ExpectColumnValuesToBeInSet(column="demographics.gender", value_set=["M", "F"]),
        gxe.ExpectColumnValuesToMatchRegex(column="addresses.physical.postal_code", regex=POSTAL),
        gxe.ExpectColumnValuesToMatchRegex(column="addresses.physical.state_province", regex=STATE),
    ]


def _phone_expectations():
    import great_expectations.expectations as gxe

    return [gxe.ExpectColumnValuesToBeInSet(column=PHONE_VALID, value_set=[True])]


def _contact_expectations():
    import great_expectations.expectations as gxe

    return [
        gxe.ExpectColumnValuesToNotBeNull(column="last_name"),
        gxe.ExpectColumnValuesToNotBeNull(column="relationship"),
        gxe.ExpectColumnValuesToMatchRegex(column="postal_code", regex=POSTAL),
    ]


def _validate(name: str, rows: list[dict[str, Any]], expectations: list, index_column: str,
              log: list[dict[str, Any]] | None = None) -> list[dict]:
    """Run a suite over rows; return one failure per unexpected row: expectation, column, value, row id.

    `log` collects one line per expectation (counts only, no values) to keep with the run.
    """
    if not rows:
        return []
    import great_expectations as gx
    import pandas as pd

    context = gx.get_context(mode="ephemeral")
    try:
        context.variables.progress_bars = {"globally": False, "metric_calculations": False}
    except Exception:  # noqa: BLE001 - older layouts of the variables object; bars are cosmetic
        pass
    asset = context.data_sources.add_pandas(name).add_dataframe_asset(name)
    batch_definition = asset.add_batch_definition_whole_dataframe("all")
    suite = context.suites.add(gx.ExpectationSuite(name=f"{name}_suite"))
    for expectation in expectations:
        suite.add_expectation(expectation)
    validation = context.validation_definitions.add(
        gx.ValidationDefinition(name=f"{name}_validation", data=batch_definition, suite=suite))
    result = validation.run(batch_parameters={"dataframe": pd.DataFrame(rows)},
                            result_format={"result_format": "COMPLETE",
                                           "unexpected_index_column_names": [index_column]})
    failures = []
    by_index: dict[Any, dict[str, Any]] | None = None
    for r in result.results:
        kwargs = r.expectation_config.kwargs
        column = kwargs.get("column") or "+".join(kwargs.get("column_list") or [])
        derived = column.endswith(_IN_SET)
        if derived:  # report the original column and its value (see _in_set)
            column = column.removesuffix(_IN_SET)
            if by_index is None:
                by_index = {row[index_column]: row for row in rows}
        if log is not None:
            log.append({"suite": name, "expectation": r.expectation_config.type, "column": column,
                        "success": bool(r.success), "evaluated": len(rows),
                        "unexpected": int(r.result.get("unexpected_count") or 0)})
        for unexpected in r.result.get("unexpected_index_list") or []:
            value = by_index[unexpected[index_column]].get(column) if derived else unexpected.get(column)
            failures.append({"expectation": r.expectation_config.type, "column": column,
                             "row": unexpected[index_column], "value": value})
    return failures


_MESSAGES = {
    "expect_column_values_to_not_be_null": "is required",
    "expect_column_values_to_be_in_set": "is not a known value",
    "expect_column_values_to_match_regex": "is not in the expected format",
}


def check_records(records: list[FormRecord], known_students: set[str],
                  log: list[dict[str, Any]] | None = None, region: str = "US") -> list[RecordProblem]:
    """Problems found by the submission suites, one per record and field; `region` is the district's
    phone region."""
    problems = []
    students = _with_membership(_student_frame(records), "student_number", known_students)
    for f in _validate("students", students, _student_expectations(known_students), "submission_id", log):
        if f["column"] == "student_number" and f["expectation"] == "expect_column_values_to_be_in_set":
            reason = "no student with this number in PowerSchool"
        else:
            reason = f"{f['column']} {_MESSAGES.get(f['expectation'], 'failed ' + f['expectation'])}"
        problems.append(RecordProblem(submission_id=f["row"], field=f["column"], reason=reason,
                                      value=str(f["value"] if f["value"] is not None else ""), check=f["expectation"]))
    for f in _validate("contacts", _contact_frame(records), _contact_expectations(), "row_id", log):
        submission_id, slot = f["row"].rsplit("#", 1)
        problems.append(RecordProblem(
            submission_id=submission_id, field=f"contact{slot}.{f['column']}",
            reason=f"contact {slot} {f['column']} {_MESSAGES.get(f['expectation'], 'failed ' + f['expectation'])}",
            value=str(f["value"] if f["value"] is not None else ""), check=f["expectation"]))
    frame = _phone_frame(records, region)
    about = {row["row_id"]: row.pop("_problem") for row in frame}
    for f in _validate("phones", frame, _phone_expectations(), "row_id", log):
        submission_id, field, what, number = about[f["row"]]
        problems.append(RecordProblem(submission_id=submission_id, field=field, value=number, check="phone",
                                      reason=f"{what} is not a valid phone number"))
    return problems


class SnapshotIntegrityError(RuntimeError):
    """PowerSchool's export contradicts itself; matching on it could link the wrong people."""


def snapshot_problems(checks, log: list[dict[str, Any]] | None = None) -> list[str]:
    """Systemic problems of a snapshot, from the store's consistency checks over it (unique keys, links to
    existing rows, consistent order: `Store.snapshot_integrity`, run by the database so that no task
    loads the district); `log` gets one line per check, like the suites'."""
    problems = []
    for c in checks:
        if log is not None:
            log.append({"suite": c.suite, "expectation": c.expectation, "column": c.column,
                        "success": not c.failing, "evaluated": c.evaluated, "unexpected": len(c.failing)})
        if c.failing:
            problems.append(f"{c.column}: {c.expectation} failed for {len(c.failing)} row(s), e.g. "
                            + ", ".join(map(str, c.failing[:5])))
    return sorted(problems)


def render_validation_html(run_id: str, log: list[dict[str, Any]]) -> str:
    """The run's validation results as one self-contained HTML page (no network, values escaped)."""
    from html import escape

    rows = "".join(
        f"<tr class={'ok' if e['success'] else 'bad'}><td>{escape(e['suite'])}</td><td>{escape(e['expectation'])}"
        f"</td><td>{escape(str(e['column']))}</td><td>{e['evaluated']}</td><td>{e['unexpected']}</td>"
        f"<td>{'passed' if e['success'] else 'failed'}</td></tr>" for e in log)
    return ("<!doctype html><html lang=en><meta charset=utf-8><title>Validation — "
            f"{escape(run_id)}</title><style>body{{font:14px system-ui;margin:2em}}table{{border-collapse:collapse}}"
            "td,th{border:1px solid #ccc;padding:4px 8px}.ok td:last-child{color:#17663a}"
            ".bad td:last-child{color:#b00020;font-weight:bold}</style>"
            f"<h1>Data quality — run {escape(run_id)}</h1><table><tr><th>suite</th><th>expectation</th>"
            f"<th>column</th><th>rows</th><th>unexpected</th><th>result</th></tr>{rows}</table></html>")
