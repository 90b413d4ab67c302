"""Operators for the writeback pipeline: thin wrappers that call one stage each.

Every operator takes the district name (templated), builds the run's context, calls the stage and
returns its counts (XCom carries counts and ids only, never student data).
"""

from __future__ import annotations

from typing import Any

from airflow.sdk import BaseOperator
from airflow.sdk.exceptions import AirflowFailException

from ..pipeline import stages
from ..quality import SnapshotIntegrityError
from .context import run_context


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
        ctx = run_context(self.district, context)
        try:
            fn = getattr(stages, self.stage)
            if self.needs == "powerschool":
                from ..hooks.powerschool import PowerSchoolHook

                return fn(ctx, PowerSchoolHook(ctx.district.powerschool_conn_id).get_conn())
            if self.needs == "submissions":
                from ..hooks.schoolengage import SchoolEngageHook

                return fn(ctx, SchoolEngageHook(ctx.district.submissions_conn_id).get_conn())
            return fn(ctx)
        except (stages.QualityGateError, stages.PlanChangedError, SnapshotIntegrityError) as exc:
            raise AirflowFailException(str(exc)) from exc  # retrying cannot help: a person must act
        finally:
            ctx.store.dispose()


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


class ApplyPlanOperator(WritebackStageOperator):
    stage, needs = "apply_plan", "powerschool"


class CleanupOperator(WritebackStageOperator):
    stage, needs = "cleanup", "powerschool"


class ReportOperator(WritebackStageOperator):
    stage = "report"
