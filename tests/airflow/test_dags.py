"""The DAG factory: every district file gives a DAG that Airflow's own DagBag loads without errors."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def dagbag(tmp_path, monkeypatch):
    monkeypatch.setenv("AIRFLOW__CORE__DAGS_FOLDER", str(ROOT / "dags"))
    monkeypatch.setenv("AIRFLOW__CORE__LOAD_EXAMPLES", "False")
    from airflow.dag_processing.dagbag import DagBag

    return DagBag(dag_folder=str(ROOT / "dags"))


def test_every_district_file_gives_a_dag_without_import_errors(dagbag):
    assert dagbag.import_errors == {}
    districts = [yaml.safe_load(p.read_text())["name"] for p in (ROOT / "include" / "districts").glob("*.yaml")]
    expected = [f"writeback_{d}{suffix}" for d in districts for suffix in ("", "_rollback", "_doctor")]
    assert sorted(dagbag.dag_ids) == sorted(expected)


def test_rollback_and_doctor_are_manual_dags_whose_trigger_form_accepts_the_defaults(dagbag):
    """Managed Airflow gives no shell: rollback and doctor are DAGs with typed Params. The trigger form
    submits the Params' defaults, which must validate; a wrong type is refused before anything runs."""
    from airflow.sdk.definitions.param import ParamsDict

    for suffix, names in (("_rollback", {"run_id", "student_number", "dry_run"}), ("_doctor", {"throttle_probes"})):
        dag = dagbag.dags[f"writeback_demo{suffix}"]
        assert type(dag.timetable).__name__ == "NullTimetable" and "maintenance" in dag.tags
        assert set(dag.params.keys()) == names
        assert dag.params.validate() == {k: dag.params[k] for k in names}
        assert all(dag.params.get_param(k).schema.get("type") for k in names), "every Param is typed"
    rollback = dagbag.dags["writeback_demo_rollback"]
    assert rollback.params["dry_run"] is True, "a rollback starts as a dry run"
    wrong_params = ParamsDict({k: rollback.params.get_param(k) for k in rollback.params})
    with pytest.raises(Exception, match="dry_run.*not of type 'boolean'"):
        wrong_params["dry_run"] = "yes"
        wrong_params.validate()
    assert rollback.get_task("rollback").pool == "powerschool_demo"


def test_a_rollback_without_a_run_id_fails_saying_what_to_give():
    from airflow.sdk.exceptions import AirflowFailException

    from writeback.operators.maintenance import RollbackOperator

    op = RollbackOperator(task_id="rollback", district="demo", run_id="", dry_run=True)
    with pytest.raises(AirflowFailException, match="store run id"):
        op.execute({})
    op = RollbackOperator(task_id="rollback", district="demo", run_id="north:manual__1", dry_run=True)
    with pytest.raises(AirflowFailException, match="not a run of district 'demo'"):
        op.execute({})


def test_demo_dag_shape(dagbag):
    dag = dagbag.dags["writeback_demo"]
    assert dag.get_task("migrate_store").downstream_task_ids == {"extract_submissions", "extract_snapshot"}
    order = ["check_quality", "match_contacts", "build_plan", "wait_for_approval", "apply_batches", "apply",
             "cleanup", "report"]
    for upstream, downstream in zip(order, order[1:], strict=False):
        assert dag.get_task(downstream).upstream_task_ids == {upstream}
    assert dag.get_task("check_quality").upstream_task_ids == {"extract_submissions", "extract_snapshot"}
    assert dag.max_active_runs == 1
    assert dag.catchup is False
    # every task that calls PowerSchool shares the district's pool
    assert {dag.get_task(t).pool for t in ("extract_snapshot", "apply", "cleanup")} == {"powerschool_demo"}
    assert set(dag.params.keys()) >= {"dry_run", "submission_ids", "student_numbers", "re_review"}
    assert [o.uri for o in dag.get_task("apply").outlets] == ["writeback://demo/applied"]
    # apply is mapped over the approved plan's batches, so a large district spreads over workers
    assert type(dag.get_task("apply")).__name__ == "MappedOperator"


def test_a_new_district_file_adds_a_dag(tmp_path, monkeypatch):
    include = tmp_path / "include"
    shutil.copytree(ROOT / "include", include)
    config = yaml.safe_load((include / "districts" / "demo.yaml").read_text())
    config.update(name="north", powerschool_conn_id="powerschool_north", submissions_conn_id="schoolengage_north")
    config["apply"]["pool"] = "powerschool_north"
    (include / "districts" / "north.yaml").write_text(yaml.safe_dump(config))
    monkeypatch.setenv("WRITEBACK_INCLUDE", str(include))
    from airflow.dag_processing.dagbag import DagBag

    bag = DagBag(dag_folder=str(ROOT / "dags"))
    assert bag.import_errors == {}
    assert {"writeback_demo", "writeback_north"} <= set(bag.dag_ids)
    assert bag.dags["writeback_north"].get_task("apply").pool == "powerschool_north"
    assert os.environ["WRITEBACK_INCLUDE"] == str(include)


def test_failure_notifications_are_off_by_default_and_configurable():
    from writeback.config import DistrictConfig, load_district
    from writeback.dag_factory import failure_notifiers

    demo = load_district(ROOT / "include" / "districts" / "demo.yaml")
    assert failure_notifiers(demo) == []
    configured = DistrictConfig.model_validate(
        {**demo.model_dump(), "notifications": {"email_on_failure": ["data-team@district.example"]}})
    [notifier] = failure_notifiers(configured)
    assert type(notifier).__name__ == "SmtpNotifier"
    assert "data-team@district.example" in str(notifier.to)


def test_a_key_given_twice_in_a_mapping_is_an_import_error_naming_both_lines(tmp_path, monkeypatch):
    """The DAG factory reads the district's mapping through the same loader as `writeback mappings check`:
    Airflow shows the duplicate as the DAG file's import error instead of a run that maps Mom to Father."""
    include = tmp_path / "include"
    shutil.copytree(ROOT / "include", include)
    mapping = include / "mappings" / "registration-2026.yaml"
    lines = mapping.read_text(encoding="utf-8").splitlines(keepends=True)
    first = next(n for n, line in enumerate(lines, start=1) if "Mom: Mother" in line)
    mapping.write_text("".join(lines[:first] + ["    Mom: Father\n"] + lines[first:]), encoding="utf-8")
    monkeypatch.setenv("WRITEBACK_INCLUDE", str(include))
    from airflow.dag_processing.dagbag import DagBag

    bag = DagBag(dag_folder=str(ROOT / "dags"))
    errors = "\n".join(str(e) for e in bag.import_errors.values())
    assert f"{mapping}:{first}" in errors and f"{mapping}:{first + 1}" in errors, errors
    assert "writeback_demo" not in bag.dag_ids
