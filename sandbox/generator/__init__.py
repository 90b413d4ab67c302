"""Synthetic district generator: PowerSchool initial state, SchoolEngage submissions, ground truth."""

from __future__ import annotations

from collections.abc import Sequence

from .district import build_district
from .forms import FORM_FIELDS, build_submissions
from .layouts import ALL_FORMS, DEFAULT_WEIGHTS, REGISTRATION, relayout
from .tables import REFERENCE_DATE, SCENARIO_WEIGHTS, SCENARIOS


def build_all(students: int, seed: int, submissions_share: float = 0.5,
              forms: Sequence[str] = (REGISTRATION,)) -> tuple[dict, list, dict]:
    """(district.json, submissions.json, truth.json) contents; deterministic for a seed. `forms` other than
    the registration form move a share of the submissions onto those layouts (`layouts.py`)."""
    district = build_district(students, seed)
    submissions, truth = build_submissions(district, seed, submissions_share)
    unknown = set(forms) - set(ALL_FORMS)
    if unknown:
        raise ValueError(f"unknown form(s) {', '.join(sorted(unknown))} (forms: {', '.join(ALL_FORMS)})")
    if set(forms) - {REGISTRATION}:
        weights = {f: DEFAULT_WEIGHTS[f] for f in ALL_FORMS if f in forms or f == REGISTRATION}
        submissions, truth = relayout(district, submissions, truth, seed, weights)
    return district, submissions, truth


__all__ = ["ALL_FORMS", "FORM_FIELDS", "REFERENCE_DATE", "SCENARIOS", "SCENARIO_WEIGHTS", "build_all",
           "build_district", "build_submissions"]
