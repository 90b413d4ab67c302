"""Run-level gates: signs that a batch is unusual enough that a person must approve it whole.

A mapping or form change can make every record look like a change; many contacts expiring or many
Data Access grants at once are the kind of batch a registrar should see before anything is written.
"""

from __future__ import annotations

from dataclasses import dataclass

from .models import FieldStatus, Plan, ReviewItem

BATCH_ITEM_KEY = "run:batch_approval"


@dataclass(frozen=True)
class HoldThresholds:
    min_students: int = 20
    expire_share: float = 0.2
    data_access_changes: int = 50
    replace_share: float = 0.5


def change_profile(plan: Plan) -> dict[str, int]:
    students = len(plan.students)
    expiring = sum(1 for sp in plan.students if any(cp.submitted.remove for cp in sp.contacts))
    data_access = sum(1 for sp in plan.students for cp in sp.contacts for c in cp.changes if c.kind == "data_access")
    replacing = sum(1 for sp in plan.students if any(fc.status == FieldStatus.REPLACE for fc in sp.field_changes))
    return {"students": students, "students_losing_a_contact": expiring, "data_access_grants": data_access,
            "students_with_replaced_fields": replacing}


def hold_reasons(plan: Plan, limits: HoldThresholds) -> list[str]:
    """Why this batch needs an explicit approval as a whole (empty: it does not)."""
    p = change_profile(plan)
    reasons = []
    if p["data_access_grants"] > limits.data_access_changes:
        reasons.append(f"{p['data_access_grants']} Data Access grants (limit {limits.data_access_changes})")
    if p["students"] >= limits.min_students:
        for key, share, label in (("students_losing_a_contact", limits.expire_share, "students lose a contact"),
                                  ("students_with_replaced_fields", limits.replace_share,
                                   "students have fields replaced")):
            if p[key] / p["students"] > share:
                reasons.append(f"{p[key]} of {p['students']} {label} (limit {share:.0%})")
    return reasons


def batch_item(plan: Plan, reasons: list[str]) -> ReviewItem:
    return ReviewItem(key=BATCH_ITEM_KEY, kind="batch_approval", submission_id="*", student_number="*",
                      options=["approve_batch", "reject_batch"],
                      payload={"reasons": reasons, "profile": change_profile(plan)})
