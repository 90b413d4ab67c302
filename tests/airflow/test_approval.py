"""The approval trigger and sensor against a real store."""

from __future__ import annotations

import asyncio
import threading

import pytest
from airflow.sdk.exceptions import AirflowSensorTimeout

from writeback.domain.models import ReviewItem
from writeback.sensors.approval import ApprovalSensor
from writeback.store import Store
from writeback.triggers.approval import ApprovalTrigger


@pytest.fixture
def store(tmp_path):
    s = Store(f"sqlite:///{tmp_path / 'store.db'}", migrate=True)
    s.ensure_run("demo:r1", "demo")
    items = [ReviewItem(key=f"S{i}:field:name.first_name", kind="field_change", submission_id=f"S{i}",
                        student_number=str(100 + i), options=["approve", "ignore"], payload={"new": "x"})
             for i in range(2)]
    s.replace_review_items("demo:r1", items, "hash")
    yield s
    s.dispose()


def _first_event(trigger: ApprovalTrigger):
    async def first():
        async for event in trigger.run():
            return event.payload

    return asyncio.run(first())


def test_trigger_serialises_to_its_own_arguments(store):
    trigger = ApprovalTrigger("demo:r1", store_url=store.url, poll_interval=2.0, timeout=60.0)
    path, kwargs = trigger.serialize()
    assert path == "writeback.triggers.approval.ApprovalTrigger"
    assert ApprovalTrigger(**kwargs).serialize() == (path, kwargs)


def test_the_serialised_trigger_names_the_store_connection_never_its_password(store, monkeypatch):
    """What Airflow keeps in its metadata database while the trigger waits: the connection id. The
    triggerer reads the connection (through its secrets backends) and polls the store behind it."""
    import json

    password = "s3cret-store-password"
    monkeypatch.setenv("AIRFLOW_CONN_DISTRICT_STORE", json.dumps(
        {"conn_type": "sqlite", "host": store.engine.url.database, "password": password}))
    path, kwargs = ApprovalTrigger("demo:r1", store_conn_id="district_store", poll_interval=0.05,
                                   timeout=0.2).serialize()
    assert kwargs["store_conn_id"] == "district_store" and kwargs["store_url"] is None
    assert password not in json.dumps(kwargs)
    event = _first_event(ApprovalTrigger(**kwargs))  # resolves the connection, reads the real store
    assert event == {"status": "timeout", "run_id": "demo:r1", "pending": 2}


def test_a_store_url_with_a_password_is_refused_before_it_is_serialised():
    from writeback.store import StoreError

    with pytest.raises(StoreError, match="password.*Airflow connection"):
        ApprovalTrigger("demo:r1", store_url="postgresql+psycopg2://wb:s3cret@db/writeback")


def test_the_sensor_defers_with_the_districts_store_connection(monkeypatch):
    from writeback.config import district
    from writeback.store.locate import store_source

    monkeypatch.delenv("WRITEBACK_STORE_URL", raising=False)
    config = district("demo").model_copy(update={"store_conn_id": "demo_store"})
    assert store_source(config).serialize() == {"store_conn_id": "demo_store", "store_url": None}
    monkeypatch.setenv("WRITEBACK_STORE_URL", "postgresql+psycopg2://wb:s3cret@db/writeback")
    with pytest.raises(Exception, match="password"):
        store_source(district("demo")).serialize()


def test_trigger_fires_only_once_every_item_is_decided(store):
    decided = threading.Event()

    def reviewer():
        for item in store.items("demo:r1"):
            store.decide("demo:r1", item.item_key, "approve", user="registrar")
        decided.set()

    timer = threading.Timer(0.5, reviewer)
    timer.start()
    event = _first_event(ApprovalTrigger("demo:r1", store_url=store.url, poll_interval=0.1, timeout=30))
    assert decided.is_set(), "the trigger fired while items were still pending"
    assert event == {"status": "decided", "run_id": "demo:r1", "pending": 0}


def test_trigger_times_out_with_the_pending_count(store):
    store.decide("demo:r1", store.items("demo:r1")[0].item_key, "approve", user="registrar")
    event = _first_event(ApprovalTrigger("demo:r1", store_url=store.url, poll_interval=0.05, timeout=0.2))
    assert event == {"status": "timeout", "run_id": "demo:r1", "pending": 1}


def test_sensor_timeout_says_how_many_are_pending_and_where(store):
    sensor = ApprovalSensor(task_id="wait_for_approval", district="demo")
    with pytest.raises(AirflowSensorTimeout, match=r"1 review item\(s\) of run demo:r1 are still pending.*review"):
        sensor.execute_complete({}, {"status": "timeout", "run_id": "demo:r1", "pending": 1})
    assert store.pending_count("demo:r1") == 2  # nothing was decided or lost by timing out


def test_sensor_is_deferrable_by_default_and_can_fall_back_to_reschedule():
    assert ApprovalSensor(task_id="a", district="demo").deferrable is True
    fallback = ApprovalSensor(task_id="b", district="demo", deferrable=False)
    assert fallback.deferrable is False and fallback.mode == "reschedule"
