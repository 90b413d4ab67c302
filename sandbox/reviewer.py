"""A scripted reviewer: decides review items the way a careful registrar would, from the generator's
ground truth. Used by the demo and the integration tests; it goes through the same store API as
`writeback review decide`.
"""

from __future__ import annotations

import datetime as dt
import threading
from typing import Any

REVIEWER = "scripted-reviewer"


def choose(item: Any, truth: dict[str, Any], today: dt.date) -> tuple[str, dict[str, Any]]:
    """The choice (and its data) the ground truth calls for on one review item."""
    sub = truth["submissions"].get(item.submission_id, {})
    slot = (sub.get("contacts") or {}).get(str(item.slot), {}) if item.slot else {}
    true_person = slot.get("person_id")
    kind = item.kind
    if kind == "field_change" or kind == "shared_contact_change":
        return "approve", {}
    if kind == "contact_removal":
        return "expire", {"end_date": today.isoformat()}
    if kind == "phone_type_mismatch":
        return ("use_submitted_type" if slot.get("phone_type_changed") else "keep_powerschool_type"), {}
    if kind == "conflicting_forms":  # siblings' forms disagree: the most recent form is the family's latest word
        return max(o for o in item.options if o.startswith("use:")), {}
    if kind == "submissions_disagree":  # one student's forms disagree: the latest form is the family's latest word
        return f"use:{item.payload['latest']}", {}
    if kind == "batch_approval":
        return "approve_batch", {}
    if kind == "stale_write":  # PowerSchool changed since the snapshot: a careful registrar keeps it
        return "keep_powerschool", {}
    if kind == "portal_email_conflict":
        return "skip_data_access", {}
    if kind == "name_mismatch":
        slot_person = (item.payload.get("slot_person") or {}).get("person_id")
        if true_person is not None and true_person == slot_person:
            # the generator never renames a contact: a differing name is a typo, a nickname or lost accents
            return "same_person_keep_name", {}
        confirm = f"confirm:{true_person}"
        if true_person is not None and confirm in item.options:
            return confirm, {}
        return "new_contact_keep_old", {}
    if kind == "possible_match":
        confirm = f"confirm:{true_person}"
        if true_person is not None and confirm in item.options:
            return confirm, {}
        return "not_a_match", {}
    raise ValueError(f"the scripted reviewer has no rule for {kind!r}")


def decide_pending(store: Any, run_id: str, truth: dict[str, Any], today: dt.date | None = None) -> int:
    """Decide every pending item of a run; returns how many were decided."""
    today = today or dt.datetime.now(dt.UTC).date()
    n = 0
    for item in store.items(run_id, state="pending"):
        choice, data = choose(item, truth, today)
        store.decide(run_id, item.item_key, choice, user=REVIEWER, data=data, expected_version=item.version,
                     comment="decided from the sandbox's ground truth")
        n += 1
    return n


class ReviewerThread(threading.Thread):
    """Polls the store and decides whatever becomes pending in the district's runs, until stopped."""

    def __init__(self, store: Any, district: str, truth: dict[str, Any], interval: float = 0.5):
        super().__init__(daemon=True, name="scripted-reviewer")
        self.store, self.district, self.truth, self.interval = store, district, truth, interval
        self.decided = 0
        self.errors: list[str] = []
        self._stop_event = threading.Event()

    def run(self) -> None:
        while not self._stop_event.wait(self.interval):
            try:
                for run in self.store.list_runs(self.district, limit=5):
                    self.decided += decide_pending(self.store, run.id, self.truth)
            except Exception as exc:  # noqa: BLE001 - keep polling; report at the end
                self.errors.append(f"{type(exc).__name__}: {exc}")

    def stop(self) -> None:
        self._stop_event.set()
        self.join(timeout=10)
