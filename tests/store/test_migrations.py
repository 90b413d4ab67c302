"""Alembic brings an empty database to head, and the migrated schema is exactly the models' schema."""

from __future__ import annotations

import pytest
import sqlalchemy as sa
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory

from writeback.store import Store
from writeback.store.migrate import alembic_config, upgrade
from writeback.store.schema import Base

TABLES = {"wb_runs", "wb_run_data", "wb_submissions", "wb_quarantine", "wb_review_items", "wb_remembered",
          "wb_ledger", "wb_audit", "wb_sync_state", "wb_snapshot_rows"}


def _head() -> str:
    return ScriptDirectory.from_config(alembic_config()).get_current_head()


def _current(engine: sa.Engine) -> str | None:
    with engine.connect() as conn:
        return MigrationContext.configure(conn).get_current_revision()


def _diff(engine: sa.Engine, metadata: sa.MetaData = Base.metadata) -> list:
    with engine.connect() as conn:
        ctx = MigrationContext.configure(conn, opts={"compare_type": True, "compare_server_default": True})
        return compare_metadata(ctx, metadata)


def test_opening_a_store_changes_no_schema_and_store_migrate_brings_it_to_head(store_url, monkeypatch, capsys):
    from writeback.cli import main
    from writeback.store import StoreSchemaOutdated

    engine = sa.create_engine(store_url)
    try:
        assert _current(engine) is None
        store = Store(store_url)  # opening: no side effect on the schema
        with pytest.raises(StoreSchemaOutdated, match="revision none.*writeback store migrate"):
            store.check_schema()
        store.dispose()
        assert _head() == "0003_run_safety"
        assert not TABLES & set(sa.inspect(engine).get_table_names())
        assert main(["--store", store_url, "store", "migrate", "--check"]) == 1
        assert main(["--store", store_url, "store", "migrate"]) == 0
        assert capsys.readouterr().out.strip().endswith(f"schema none -> {_head()}")
        assert _current(engine) == _head()
        assert TABLES <= set(sa.inspect(engine).get_table_names())
        Store(store_url).check_schema()  # now current
        assert main(["--store", store_url, "store", "migrate", "--check"]) == 0
    finally:
        engine.dispose()


def test_without_a_configured_store_tasks_fail_loudly_instead_of_using_a_local_file(monkeypatch, tmp_path):
    from writeback.config import district
    from writeback.store import StoreNotConfigured
    from writeback.store.locate import open_store

    monkeypatch.delenv("WRITEBACK_STORE_URL", raising=False)
    monkeypatch.delenv("AIRFLOW__WRITEBACK__STORE_CONN_ID", raising=False)
    monkeypatch.setenv("HOME", str(tmp_path))
    with pytest.raises(StoreNotConfigured, match="district 'demo'.*store_conn_id"):
        open_store(district("demo"))
    with pytest.raises(StoreNotConfigured):
        Store()
    assert not list(tmp_path.rglob("*.db")), "no SQLite file was created anywhere"


def test_migrated_schema_matches_the_models(store):
    assert _diff(store.engine) == []


def test_schema_comparison_would_see_a_drift(store):
    """The no-diff assertion above is not vacuous: a model change the migrations lack is reported."""
    drifted = sa.MetaData()
    for table in Base.metadata.sorted_tables:
        table.to_metadata(drifted)
    sa.Table("wb_runs", drifted, sa.Column("extra", sa.String(10)), extend_existing=True)
    diff = _diff(store.engine, drifted)
    assert [d[0] for d in diff] == ["add_column"]
    assert diff[0][3].name == "extra"


def test_upgrade_twice_is_a_no_op(store_url):
    first = Store(store_url, migrate=True)
    first.ensure_run("r1", "d1")
    first.put_data("r1", "plan", {"keep": [1, 2, 3]})
    upgrade(first.engine)  # the same engine again
    first.dispose()
    second = Store(store_url)  # a new process opening the same store
    try:
        assert _current(second.engine) == _head()
        with second.engine.connect() as conn:
            versions = conn.execute(sa.text("select version_num from alembic_version")).scalars().all()
        assert versions == [_head()]
        assert [r.id for r in second.list_runs()] == ["r1"]
        assert second.get_data("r1", "plan") == {"keep": [1, 2, 3]}
        assert _diff(second.engine) == []
    finally:
        second.dispose()


def test_downgrade_to_base_and_back(store):
    config = alembic_config(store.engine)
    with store.engine.begin() as conn:
        config.attributes["connection"] = conn
        command.downgrade(config, "base")
    assert not TABLES & set(sa.inspect(store.engine).get_table_names())
    assert _current(store.engine) is None
    upgrade(store.engine)
    assert _current(store.engine) == _head()
    assert _diff(store.engine) == []


def test_processes_opening_a_fresh_store_at_once_do_not_race(store_url):
    """Several `migrate_store` tasks (one per district DAG sharing a store) migrate at once: all succeed."""
    import subprocess
    import sys

    code = ("import sys; from writeback.cli import main; sys.exit(main(['--store', sys.argv[1], 'store', 'migrate']))")
    procs = [subprocess.Popen([sys.executable, "-c", code, store_url], stderr=subprocess.PIPE, text=True)
             for _ in range(4)]
    results = [(p.wait(timeout=120), p.stderr.read()) for p in procs]
    assert [rc for rc, _ in results] == [0, 0, 0, 0], [err[-500:] for _, err in results if err]


def test_a_store_of_the_first_release_upgrades_and_keeps_its_runs(store_url):
    engine = sa.create_engine(store_url)
    try:
        upgrade(engine, "0001")
        with engine.begin() as conn:
            conn.execute(sa.text("INSERT INTO wb_runs (id, district, dag_run_id, status, dry_run, counts, created_at, "
                                 "updated_at) VALUES ('old-run', 'demo', '', 'complete', false, '{}', "
                                 "CURRENT_TIMESTAMP, CURRENT_TIMESTAMP)"))
        assert "wb_snapshot_rows" not in sa.inspect(engine).get_table_names()
        store = Store(store_url, migrate=True)  # `writeback store migrate` brings it to head
        try:
            assert _current(engine) == _head()
            assert store.get_run("old-run").status == "complete"
            store.add_snapshot_rows("old-run", "contacts", [{"row_key": 1, "person_id": 1, "row": "{}"}])
            assert store.snapshot_counts("old-run") == {"contacts": 1}
        finally:
            store.dispose()
    finally:
        engine.dispose()
