"""Build a stage's RunContext from an Airflow task context (the one place that knows both)."""

from __future__ import annotations

import re
from typing import Any

from ..config import district as load_district_config
from ..pipeline.run_rules import retry_target
from ..pipeline.stages import RunContext, RunParams
from ..store.locate import open_store

_SAFE = re.compile(r"[^A-Za-z0-9_.:+-]")


def run_id_for(district: str, dag_run_id: str) -> str:
    """The store's run id: the district and the Airflow run id, so a rerun of a task finds its run."""
    return f"{district}:{_SAFE.sub('_', dag_run_id)}"[:200]


def params_from(context: dict[str, Any]) -> RunParams:
    params = context.get("params") or {}
    return RunParams(
        dry_run=bool(params.get("dry_run", False)),
        submission_ids=[s for s in (params.get("submission_ids") or []) if s],
        student_numbers=[s for s in (params.get("student_numbers") or []) if s],
        re_review=bool(params.get("re_review", False)),
        retry_run_id=str(params.get("retry_run_id") or ""),
    )


def run_context(district: str, context: dict[str, Any]) -> RunContext:
    config = load_district_config(district)
    store = open_store(config)
    dag_run = context["dag_run"]
    params = params_from(context)
    run_id = run_id_for(district, dag_run.run_id)
    if params.retry_run_id:  # act on the earlier run's plan, decisions and ledger, when it may be retried
        try:
            run = retry_target(store, params.retry_run_id, district)
        except Exception:
            store.dispose()
            raise
        return RunContext(district=config, store=store, run_id=run.id, params=params, today=run.created_at.date())
    run = store.ensure_run(run_id, district, dag_run_id=dag_run.run_id, dry_run=params.dry_run)
    # "today" is the run's first day, not the task's: a plan approved on Friday and applied on Monday
    # must resolve to the same writes (dates in them included), or the approval hash would not match.
    return RunContext(district=config, store=store, run_id=run_id, params=params, today=run.created_at.date())
