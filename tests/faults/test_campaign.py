"""A reduced fault campaign (bench/faults.py): 5xx at 10%, dropped connections, PowerSchool changed between
snapshot and apply, and the `airflow dags test` process SIGKILLed mid-apply then rerun with retry_run_id.
Every run must keep every invariant (bench/invariants.py)."""

from __future__ import annotations

import pytest

from bench import faults

pytestmark = pytest.mark.integration

REDUCED = ["5xx 10%", "dropped connections", "changed before apply", "airflow SIGKILL mid-apply"]


def test_reduced_fault_campaign_keeps_every_invariant(tmp_path):
    args = faults.parse_args(["--students", "80", "--seeds", "1", "--first-seed", "3", "--work", str(tmp_path),
                              "--keep"])
    scenarios = [s for s in faults.SCENARIOS if s.name in REDUCED]
    assert [s.name for s in scenarios] == REDUCED
    lines: list[str] = []
    outcomes = faults.run_campaign(args, scenarios, log=lines.append)
    report = "\n".join(lines) + "\n" + faults.table(outcomes)
    assert len(outcomes) == len(REDUCED), report
    assert [o.error for o in outcomes if o.error] == [], report
    assert [v for o in outcomes for v in o.violations] == [], report
    assert all(o.status == "complete" for o in outcomes), report
    assert all(o.writes > 0 for o in outcomes), report
    stale = next(o for o in outcomes if o.scenario == "changed before apply")
    assert any("stale items" in n and not n.startswith("0 ") for n in stale.notes), report
    killed = next(o for o in outcomes if o.scenario == "airflow SIGKILL mid-apply")
    assert killed.fault_counters["airflow killed"] == 1 and killed.attempts == 2, report
