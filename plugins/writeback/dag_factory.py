"""Build one writeback DAG per district configuration file."""

from __future__ import annotations

import datetime as dt

import pendulum
from airflow.sdk import DAG, Asset, Param
from airflow.timetables.trigger import CronTriggerTimetable

from .config import DistrictConfig
from .operators.maintenance import DoctorOperator, RollbackOperator
from .operators.stages import (
    ApplyBatchesOperator,
    ApplyPlanOperator,
    BuildPlanOperator,
    CheckQualityOperator,
    CleanupOperator,
    ExtractSnapshotOperator,
    ExtractSubmissionsOperator,
    MatchContactsOperator,
    ReportOperator,
)
from .operators.store import MigrateStoreOperator
from .sensors.approval import ApprovalSensor

DOC = """
### Writeback: {title}

SchoolEngage submissions → PowerSchool, for district `{name}` (forms {forms}; a form without a mapping
is quarantined).
Review items wait in the review table; `wait_for_approval` finishes when every item is decided.
Manual runs may name submission ids or student numbers, ask for a dry run (plan and review only,
no writes, the sync cursor stays), or re-review (ignore remembered match decisions).
"""


def applied_asset(district: str) -> Asset:
    """Emitted when a district's writeback is applied, so downstream DAGs can follow."""
    return Asset(name=f"writeback_{district}_applied", uri=f"writeback://{district}/applied")


def failure_notifiers(cfg: DistrictConfig) -> list:
    """Airflow notifiers for a failed task; none unless the district configures recipients."""
    if not cfg.notifications.email_on_failure:
        return []
    from airflow.providers.smtp.notifications.smtp import SmtpNotifier

    return [SmtpNotifier(to=cfg.notifications.email_on_failure, smtp_conn_id=cfg.notifications.smtp_conn_id,
                         subject=f"writeback {cfg.name}: task {{{{ ti.task_id }}}} failed in run {{{{ run_id }}}}",
                         html_content="The run's review page and report say what happened. "
                                      "No student data is included in this message.")]


def build_dag(cfg: DistrictConfig) -> DAG:
    # every mapping is checked when Airflow parses the DAG file, so a broken one (a key given twice, an
    # unknown target) is the file's import error, with the same message `writeback mappings check` prints
    forms = cfg.load_forms()
    schedule = CronTriggerTimetable(cfg.schedule, timezone=cfg.timezone) if cfg.schedule else None
    with DAG(
        dag_id=f"writeback_{cfg.name}",
        description=f"SchoolEngage → PowerSchool writeback for {cfg.title or cfg.name}",
        schedule=schedule,
        start_date=pendulum.datetime(2026, 1, 1, tz=cfg.timezone),
        catchup=False,
        max_active_runs=1,
        default_args={"retries": 2, "retry_delay": dt.timedelta(minutes=1),
                      "on_failure_callback": failure_notifiers(cfg)},
        tags=["writeback", *cfg.tags],
        doc_md=DOC.format(title=cfg.title or cfg.name, name=cfg.name,
                          forms=", ".join(f"`{form}` → `{m.name}`" for form, m in forms.routes)),
        params={
            "dry_run": Param(False, type="boolean", description="Plan and review only: no writes, cursor stays."),
            "submission_ids": Param([], type="array", items={"type": "string"},
                                    description="Only these submissions (a manual rerun)."),
            "student_numbers": Param([], type="array", items={"type": "string"},
                                     description="Only these students' submissions."),
            "re_review": Param(False, type="boolean", description="Ignore remembered match decisions."),
            "retry_run_id": Param("", type="string",
                                  description="Apply again the failed or stale writes of this earlier run "
                                              "(its store run id); extraction and planning are skipped. "
                                              "Refused for a dry run, and for a run a newer run has "
                                              "written after: start a new run then."),
        },
    ) as dag:
        common = {"district": cfg.name}
        ps = {"pool": cfg.pool_name}
        migrate = MigrateStoreOperator(task_id="migrate_store", **common)  # explicit; a no-op when current
        submissions = ExtractSubmissionsOperator(task_id="extract_submissions", **common)
        snapshot = ExtractSnapshotOperator(task_id="extract_snapshot", **common, **ps)
        quality = CheckQualityOperator(task_id="check_quality", **common)
        match = MatchContactsOperator(task_id="match_contacts", **common)
        plan = BuildPlanOperator(task_id="build_plan", **common)
        wait = ApprovalSensor(task_id="wait_for_approval", poke_interval=cfg.approval.poke_interval_seconds,
                              deferrable=cfg.approval.deferrable,
                              timeout=cfg.approval.timeout_hours * 3600, **common)
        # one apply task per batch of students (dynamic task mapping), so a large district's writes
        # spread over several workers; students sharing a contact are always in one batch
        batches = ApplyBatchesOperator(task_id="apply_batches", **common)
        apply = ApplyPlanOperator.partial(task_id="apply", outlets=[applied_asset(cfg.name)], **common, **ps).expand(
            batch=batches.output)
        clean = CleanupOperator(task_id="cleanup", **common, **ps)
        summary = ReportOperator(task_id="report", **common)
        migrate >> [submissions, snapshot]
        [submissions, snapshot] >> quality >> match >> plan >> wait >> batches >> apply >> clean >> summary
    return dag


ROLLBACK_DOC = """
### Roll back a writeback run: {title}

Undoes the audited writes of one run of `writeback_{name}`, newest first, each conflict-checked: a value
changed in PowerSchool since the writeback is not rolled back but listed (the task then fails). The same
as `writeback rollback --district {name}`, for deployments without a shell. Start with a dry run.
"""

DOCTOR_DOC = """
### Check PowerSchool for {title}

Credentials, the plugin's v1 access level and field grants for mapping `{mapping}`, page sizes and
throttling. The same as `writeback doctor --district {name}`; the report is in the task log.
"""


def _manual_dag(cfg: DistrictConfig, suffix: str, description: str, doc: str, params: dict) -> DAG:
    return DAG(
        dag_id=f"writeback_{cfg.name}_{suffix}",
        description=description,
        schedule=None,  # manual only
        start_date=pendulum.datetime(2026, 1, 1, tz=cfg.timezone),
        catchup=False,
        max_active_runs=1,
        tags=["writeback", "maintenance", *cfg.tags],
        doc_md=doc.format(title=cfg.title or cfg.name, name=cfg.name, mapping=cfg.mapping),
        params=params,
    )


def build_rollback_dag(cfg: DistrictConfig) -> DAG:
    with _manual_dag(cfg, "rollback", f"Roll back a writeback run of {cfg.title or cfg.name}", ROLLBACK_DOC, {
        "run_id": Param("", type="string", description="The store run id to roll back, e.g. "
                        f"{cfg.name}:manual__2026-08-01T00:00:00+00:00 (the review page lists runs)."),
        "student_number": Param("", type="string", description="Only this student's writes (empty: all)."),
        "dry_run": Param(True, type="boolean", description="List what would be restored; write nothing."),
    }) as dag:
        RollbackOperator(task_id="rollback", district=cfg.name, run_id="{{ params.run_id }}",
                         student_number="{{ params.student_number }}", dry_run="{{ params.dry_run }}",
                         pool=cfg.pool_name)
    return dag


def build_doctor_dag(cfg: DistrictConfig) -> DAG:
    with _manual_dag(cfg, "doctor", f"Check the PowerSchool server of {cfg.title or cfg.name}", DOCTOR_DOC, {
        "throttle_probes": Param(5, type="integer", minimum=0, maximum=50,
                                 description="Requests sent back to back to learn the server's throttle."),
    }) as dag:
        DoctorOperator(task_id="doctor", district=cfg.name, throttle_probes="{{ params.throttle_probes }}",
                       pool=cfg.pool_name)
    return dag
