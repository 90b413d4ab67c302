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
    assert sorted(dagbag.dag_ids) == sorted(f"writeback_{d}" for d in districts)


def test_demo_dag_shape(dagbag):
    dag = dagbag.dags["writeback_demo"]
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
