"""Wait until every review item of the run is decided, then bind the decisions to the plan."""

from __future__ import annotations

import os
import time
import tracemalloc
from typing import Any

from airflow.sdk import BaseSensorOperator, PokeReturnValue
from airflow.sdk.exceptions import AirflowSensorTimeout

from ..operators.context import run_context
from ..pipeline import stages
from ..review.links import ReviewLink
from ..store.locate import store_source
from ..triggers.approval import ApprovalTrigger


class ApprovalSensor(BaseSensorOperator):
    """Succeeds when no review item of the run is pending; returns the approval counts.

    Deferrable by default: the wait happens in the triggerer and holds no worker slot. With
    `deferrable=False` it pokes in reschedule mode instead (for deployments without a triggerer).
    On timeout it fails saying how many items are pending and where to decide them; nothing is lost.
    """

    template_fields = ("district",)
    ui_color = "#fff4d6"
    operator_extra_links = (ReviewLink(),)  # "Review" button: the run's review page

    def __init__(self, *, district: str, deferrable: bool = True, **kwargs: Any) -> None:
        kwargs.setdefault("mode", "reschedule")
        super().__init__(**kwargs)
        self.district = district
        self.deferrable = deferrable

    def execute(self, context: Any) -> Any:
        if not self.deferrable:
            return super().execute(context)
        result = self.poke(context)
        if result.is_done:
            return result.xcom_value
        ctx = run_context(self.district, context)
        ctx.store.dispose()
        source = store_source(ctx.district).serialize()  # a connection id, never a password
        self.defer(trigger=ApprovalTrigger(ctx.run_id, **source, poll_interval=self.poke_interval,
                                           timeout=self.timeout),
                   method_name="execute_complete")

    def execute_complete(self, context: Any, event: dict[str, Any] | None = None) -> Any:
        if event and event.get("status") == "timeout":
            raise AirflowSensorTimeout(
                f"{event['pending']} review item(s) of run {event['run_id']} are still pending; decide them on the "
                "writeback review page (the run's 'Review' link) and clear this task to continue")
        result = self.poke(context)
        if not result.is_done:  # someone reopened an item after the trigger fired: wait again
            return self.execute(context)
        return result.xcom_value

    def poke(self, context: Any) -> PokeReturnValue:
        ctx = run_context(self.district, context)
        trace = os.environ.get("WRITEBACK_TRACE_MEMORY") == "1"  # benchmarks: what the approving poke costs
        if trace:
            tracemalloc.start()
        started = time.monotonic()
        try:
            state = stages.approval_state(ctx)
            if state["approved"]:
                metrics: dict[str, Any] = {"seconds": round(time.monotonic() - started, 3)}
                if trace:
                    metrics["peak_mib"] = round(tracemalloc.get_traced_memory()[1] / 2**20, 1)
                ctx.store.add_task_metrics(ctx.run_id, self.task_id, metrics)
        finally:
            if trace:
                tracemalloc.stop()
            ctx.store.dispose()
        if not state["approved"]:
            self.log.info("%d review item(s) pending for run %s", state["pending"], ctx.run_id)
        return PokeReturnValue(is_done=state["approved"], xcom_value=state)
