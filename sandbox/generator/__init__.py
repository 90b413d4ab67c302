"""Synthetic district generator: PowerSchool initial state, SchoolEngage submissions, ground truth."""

from __future__ import annotations

from .district import build_district
from .forms import FORM_FIELDS, build_submissions
from .tables import REFERENCE_DATE, SCENARIO_WEIGHTS, SCENARIOS


def build_all(students: int, seed: int, submissions_share: float = 0.5) -> tuple[dict, list, dict]:
    """(district.json, submissions.json, truth.json) contents; deterministic for a seed."""
    district = build_district(students, seed)
    submissions, truth = build_submissions(district, seed, submissions_share)
    return district, submissions, truth


__all__ = ["FORM_FIELDS", "REFERENCE_DATE", "SCENARIOS", "SCENARIO_WEIGHTS", "build_all", "build_district",
           "build_submissions"]
