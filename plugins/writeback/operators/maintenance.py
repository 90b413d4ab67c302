"""Rollback and doctor as tasks: managed Airflow (Astronomer, MWAA, Cloud Composer) gives no shell for
`writeback rollback` / `writeback doctor`, so each district also gets two manually triggered DAGs whose
typed Params are these operators' arguments (`dag_factory.build_rollback_dag`, `build_doctor_dag`)."""

from __future__ import annotations

from typing import Any

from airflow.sdk import BaseOperator
from airflow.sdk.exceptions import AirflowFailException


class RollbackOperator(BaseOperator):
    """Undoes a run's audited writes (`pipeline.rollback.rollback`), conflict-checked: a value changed since
    the writeback is refused and listed, and the task fails so that someone looks. Returns the counts."""

    template_fields = ("district", "run_id", "student_number", "dry_run")
    ui_color = "#fbe9e7"

    def __init__(self, *, district: str, run_id: str, student_number: str = "", dry_run: Any = True,
                 **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.district, self.run_id, self.student_number, self.dry_run = district, run_id, student_number, dry_run

    def execute(self, context: Any) -> dict[str, Any]:
        from ..config import district
        from ..hooks.powerschool import PowerSchoolHook
        from ..pipeline.rollback import rollback
        from ..store.locate import open_store

        run_id = str(self.run_id or "").strip()
        if not run_id:
            raise AirflowFailException("give the store run id to roll back (the run_id param, e.g. "
                                       "demo:manual__2026-08-01T00:00:00+00:00; the review page's runs list shows it)")
        config = district(self.district)
        if not run_id.startswith(f"{config.name}:"):
            raise AirflowFailException(f"run {run_id!r} is not a run of district {config.name!r}")
        dry_run = self.dry_run if isinstance(self.dry_run, bool) else str(self.dry_run).lower() == "true"
        store = open_store(config)
        try:
            client = PowerSchoolHook(config.powerschool_conn_id).get_conn()
            outcome = rollback(client, store, run_id, student_number=str(self.student_number or "").strip() or None,
                               dry_run=dry_run)
        finally:
            store.dispose()
        verb = "would restore" if dry_run else "restored"
        for r in outcome.restored:  # op keys and kinds only: no family data in the task log
            self.log.info("%s %s", verb, r["op"])
        for r in outcome.refused:
            self.log.warning("refused %s: %s", r["op"], r["reason"])
        counts = {"run_id": run_id, "dry_run": dry_run, "restored": len(outcome.restored),
                  "already": len(outcome.already), "refused": len(outcome.refused), "failed": len(outcome.failed),
                  "http_writes": outcome.http_writes}
        if outcome.refused or outcome.failed:
            raise AirflowFailException(f"rollback of {run_id}: {counts['refused']} refused (changed since the "
                                       f"writeback), {counts['failed']} failed; see the log above")
        return counts


class DoctorOperator(BaseOperator):
    """`writeback doctor --district NAME` as a task: credentials, v1 access level, field grants, page sizes and
    throttling of the district's PowerSchool. The report goes to the task log; a failed check fails the task."""

    template_fields = ("district", "throttle_probes")
    ui_color = "#e8f5e9"

    def __init__(self, *, district: str, throttle_probes: Any = 5, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.district, self.throttle_probes = district, throttle_probes

    def execute(self, context: Any) -> dict[str, Any]:
        from ..config import district
        from ..doctor import run_doctor
        from ..hooks.powerschool import PowerSchoolHook

        config = district(self.district)
        client = PowerSchoolHook(config.powerschool_conn_id).get_conn()
        with client:
            report = run_doctor(client, config.load_mapping(), conn_id=config.powerschool_conn_id,
                                throttle_probes=int(self.throttle_probes))
        for line in report.render().splitlines():
            self.log.info("%s", line)
        result = {c.name: c.status for c in report.checks}
        if not report.ok:
            raise AirflowFailException(f"doctor: {', '.join(n for n, s in result.items() if s != 'OK')} not OK; "
                                       "the task log says what to fix")
        return result
