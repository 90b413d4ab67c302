"""Wait until every review item of the run is decided, then bind the decisions to the plan."""

from __future__ import annotations

from typing import Any

from airflow.sdk import BaseSensorOperator, PokeReturnValue

from ..operators.context import run_context
from ..pipeline import stages


class ApprovalSensor(BaseSensorOperator):
    """Succeeds when no review item of the run is pending; returns the approval counts.

    Runs in reschedule mode by default, so no worker slot is held while people review.
    """

    template_fields = ("district",)
    ui_color = "#fff4d6"

    def __init__(self, *, district: str, **kwargs: Any) -> None:
        kwargs.setdefault("mode", "reschedule")
        super().__init__(**kwargs)
        self.district = district

    def poke(self, context: Any) -> PokeReturnValue:
        ctx = run_context(self.district, context)
        try:
            state = stages.approval_state(ctx)
        finally:
            ctx.store.dispose()
        if not state["approved"]:
            self.log.info("%d review item(s) pending for run %s", state["pending"], ctx.run_id)
        return PokeReturnValue(is_done=state["approved"], xcom_value=state)
