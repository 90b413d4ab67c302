"""Operators for the writeback pipeline: thin wrappers that call one stage each.

Every operator takes the district name (templated), builds the run's context, calls the stage and
returns its counts (XCom carries counts and ids only, never student data).
"""

from __future__ import annotations

import os
import time
import tracemalloc
from typing import Any

from airflow.sdk import BaseOperator
from airflow.sdk.exceptions import AirflowFailException

from ..pipeline import stages
from ..pipeline.run_rules import RunRefused
from ..quality import SnapshotIntegrityError
from .context import run_context

# a person must act (fix the mapping, approve again, start a new run): Airflow's retries cannot help
NOT_RETRYABLE = (stages.QualityGateError, stages.PlanChangedError, SnapshotIntegrityError, RunRefused)


class WritebackStageOperator(BaseOperator):
    """Base: subclasses name the stage function and say which connection it needs, if any."""

    template_fields = ("district",)
    ui_color = "#e8f1fb"
    stage: str = ""
    needs: str | None = None  # "powerschool" | "submissions" | None

    def __init__(self, *, district: str, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.district = district

    def execute(self, context: Any) -> dict[str, Any]:
        try:
            ctx = run_context(self.district, context)
        except RunRefused as exc:
            raise AirflowFailException(str(exc)) from exc
        self._client = None
        self._source = None
        trace = os.environ.get("WRITEBACK_TRACE_MEMORY") == "1"  # benchmarks: peak memory of each task
        if trace:
            tracemalloc.start()
        started = time.monotonic()
        try:
            result = self.run_stage(ctx, context)
            ctx.store.add_task_metrics(ctx.run_id, self._metrics_name(context), self._metrics(started, trace))
            return result
        except NOT_RETRYABLE as exc:
            raise AirflowFailException(str(exc)) from exc
        finally:
            ctx.store.dispose()


    def run_stage(self, ctx: stages.RunContext, context: Any) -> dict[str, Any]:
        fn = getattr(stages, self.stage)
        return fn(ctx, *self.stage_args(ctx))

    def _metrics_name(self, context: Any) -> str:
        index = getattr(context.get("ti"), "map_index", -1) if hasattr(context, "get") else -1
        return self.task_id if index is None or index < 0 else f"{self.task_id}[{index}]"

    def _metrics(self, started: float, trace: bool) -> dict[str, Any]:
        metrics: dict[str, Any] = {"seconds": round(time.monotonic() - started, 3)}
        client = self._client
        if client is not None:  # PowerSchool calls made by this task
            metrics.update(http_calls=client.total_calls, http_writes=client.writes_succeeded,
                           rate_limit_wait=round(client.rate_limit_wait, 3))
        if self._source is not None:  # SchoolEngage calls made by this task
            metrics.update(http_calls=sum(self._source.stats.values()), http_writes=0)
        if trace:
            metrics["peak_mib"] = round(tracemalloc.get_traced_memory()[1] / 2**20, 1)
            tracemalloc.stop()
        return metrics

    def stage_args(self, ctx: stages.RunContext) -> list[Any]:
        if self.needs == "powerschool":
            from ..hooks.powerschool import PowerSchoolHook

            self._client = PowerSchoolHook(ctx.district.powerschool_conn_id).get_conn()
            return [self._client]
        if self.needs == "submissions":
            from ..hooks.schoolengage import SchoolEngageHook

            self._source = SchoolEngageHook(ctx.district.submissions_conn_id).get_conn()
            return [self._source]
        return []


class ExtractSubmissionsOperator(WritebackStageOperator):
    stage, needs = "extract_submissions", "submissions"


class ExtractSnapshotOperator(WritebackStageOperator):
    stage, needs = "extract_snapshot", "powerschool"


class CheckQualityOperator(WritebackStageOperator):
    stage = "check_quality"


class MatchContactsOperator(WritebackStageOperator):
    stage = "match_contacts"


class BuildPlanOperator(WritebackStageOperator):
    stage = "build_run_plan"


class ApplyBatchesOperator(WritebackStageOperator):
    """Returns the indexes of the approved plan's batches: the list the apply task is mapped over."""

    stage = "batch_ids"


class ApplyPlanOperator(WritebackStageOperator):
    """Applies one batch of the approved plan (mapped over the batches; `batch=None` applies all)."""

    template_fields = ("district", "batch")
    stage, needs = "apply_plan", "powerschool"

    def __init__(self, *, batch: int | None = None, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.batch = batch

    def run_stage(self, ctx: stages.RunContext, context: Any) -> dict[str, Any]:
        return stages.apply_plan(ctx, *self.stage_args(ctx), batch=self.batch)


class CleanupOperator(WritebackStageOperator):
    stage, needs = "cleanup", "powerschool"


class ReportOperator(WritebackStageOperator):
    stage = "report"
