"""A distributed Airflow on this machine for the CeleryExecutor test.

PostgreSQL (the throwaway server of `tests/conftest.py`) holds Airflow's metadata database, the Celery
result backend and the writeback store; Debian's `redis-server`, started here on a free port, is the
Celery broker. api-server, scheduler, dag-processor, triggerer and two Celery workers run as separate
processes, each in its own session, against both sandboxes. The workers are told apart by
`[core] hostname_callable` (`worker_name.hostname`): each task instance records the worker that ran it.
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url
from sqlalchemy.pool import NullPool

from sandbox import processes
from sandbox.generate import write_files
from tests.e2e.conftest import Deployment, _start, airflow_env, free_port, stop_process
from writeback.store import Store

DAG_ID = "writeback_demo"
WORKERS = ("worker-a", "worker-b")
# 60 students of seed 1 (as the e2e test): review items of every common kind. Small apply batches give
# several mapped apply tasks for the two workers to share.
STUDENTS, SEED, BATCH_STUDENTS = 60, 1, 6
CORE = ("api-server", "scheduler", "dag-processor", "triggerer")


def _redis_server() -> str:
    found = shutil.which("redis-server")
    if found:
        return found
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail("redis-server is required in CI (.ci/run installs it)", pytrace=False)
    pytest.skip("redis-server is not installed (apt-get install redis-server)")


class Redis:
    """A private redis-server on a free loopback port, no persistence, stopped by `stop()`."""

    def __init__(self, work: Path) -> None:
        self.port = free_port()
        self.proc = subprocess.Popen(
            [_redis_server(), "--port", str(self.port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
             "--dir", str(work)], stdout=open(work / "redis.log", "w"), stderr=subprocess.STDOUT,  # noqa: SIM115
            start_new_session=True)
        deadline = time.monotonic() + 30
        while True:
            try:
                out = subprocess.run(["redis-cli", "-p", str(self.port), "ping"], capture_output=True, text=True,
                                     timeout=5).stdout.strip() if shutil.which("redis-cli") else self._ping()
                if out == "PONG":
                    break
            except (OSError, subprocess.TimeoutExpired):
                pass
            if self.proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"redis-server did not start: {(work / 'redis.log').read_text()[-1000:]}")
            time.sleep(0.2)

    def _ping(self) -> str:
        import socket

        with socket.create_connection(("127.0.0.1", self.port), timeout=2) as s:
            s.sendall(b"PING\r\n")
            return s.recv(16).decode().strip().lstrip("+")

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def stop(self) -> None:
        stop_process(self.proc, timeout=10)


def create_database(server_url: str, name: str) -> str:
    admin = create_engine(server_url, poolclass=NullPool, isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
            conn.execute(text(f'CREATE DATABASE "{name}" TEMPLATE template0'))
    finally:
        admin.dispose()
    return make_url(server_url).set(database=name).render_as_string(hide_password=False)


def split_apply_batches(include: Path) -> None:
    """The demo district (in the test's copy of `include/`, already unscheduled) in apply batches of
    BATCH_STUDENTS students."""
    district = include / "districts" / "demo.yaml"
    body, n = re.subn(r"(?m)^apply:\n", f"apply:\n  batch_students: {BATCH_STUDENTS}\n", district.read_text())
    assert n == 1, "include/districts/demo.yaml has no apply section"
    district.write_text(body)


def session_members(sid: int) -> list[int]:
    """Every live process of a session (a worker, its pool, the task supervisors and the tasks, which
    each get their own process group but stay in the session)."""
    pids = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[3]) == sid:  # fields after the comm: state, ppid, pgrp, session
            pids.append(int(entry.name))
    return pids


@dataclass
class CeleryDeployment(Deployment):
    redis: Redis | None = None

    def kill_worker(self, name: str) -> list[int]:
        """SIGKILL a worker with everything it started, as if its machine died; returns the pids."""
        proc = self.processes.pop(name)
        pids = session_members(proc.pid)
        for pid in pids:
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        proc.wait(timeout=30)
        return pids


def _wait_workers_ready(dep: CeleryDeployment, timeout: float = 120) -> None:
    """Each worker logs `celery@<name> ready.` once it consumes from the broker."""
    deadline = time.monotonic() + timeout
    while True:
        dep.check_alive()
        logs = {name: (dep.logs / f"{name}.log").read_text(errors="replace") for name in WORKERS}
        if all(re.search(rf"{name}@\S+ ready\.", log) for name, log in logs.items()):
            return
        if time.monotonic() > deadline:
            pytest.fail(f"Celery workers not ready in {timeout:.0f} s:\n{dep.log_tails()}", pytrace=False)
        time.sleep(1)


def _wait_ready(dep: CeleryDeployment, timeout: float = 240) -> None:
    from tests.e2e import conftest as e2e

    e2e._wait_ready(dep, timeout)
    _wait_workers_ready(dep)


@pytest.fixture(scope="module")
def celery_deployment(tmp_path_factory: pytest.TempPathFactory, postgres_url: str) -> Iterator[CeleryDeployment]:
    started = time.monotonic()
    work = tmp_path_factory.mktemp("celery")
    (work / "logs").mkdir()
    write_files(work / "district", STUDENTS, SEED)
    import json

    truth = json.loads((work / "district" / "truth.json").read_text())
    metadata_url = create_database(postgres_url, "celery_airflow")
    store_url = create_database(postgres_url, "celery_store")
    services: list = []
    dep = None
    redis = None
    try:
        redis = Redis(work)
        ps = processes.start_powerschool(work / "district" / "district.json", work / "logs", db_path=work / "ps.db")
        services.append(ps)
        se = processes.start_schoolengage(work / "district" / "submissions.json", work / "logs")
        services.append(se)
        url = f"http://127.0.0.1:{free_port()}"
        env = airflow_env(work, ps.url, se.url, store_url, url)
        split_apply_batches(Path(env["WRITEBACK_INCLUDE"]))
        result_backend = "db+" + make_url(metadata_url).set(drivername="postgresql").render_as_string(
            hide_password=False)
        env.update({
            "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": metadata_url,
            "AIRFLOW__CORE__EXECUTOR": "CeleryExecutor",
            "AIRFLOW__CELERY__BROKER_URL": redis.url,
            "AIRFLOW__CELERY__RESULT_BACKEND": result_backend,
            "AIRFLOW__CELERY__WORKER_CONCURRENCY": "2",
            # one task at a time per free process: queued apply tasks go to whichever worker is free
            "AIRFLOW__CELERY__WORKER_PREFETCH_MULTIPLIER": "1",
            # a killed worker's tasks stop heart-beating: fail them (and retry elsewhere) after 20 s, not 5 min
            "AIRFLOW__SCHEDULER__TASK_INSTANCE_HEARTBEAT_TIMEOUT": "20",
            "AIRFLOW__SCHEDULER__TASK_INSTANCE_HEARTBEAT_TIMEOUT_DETECTION_INTERVAL": "2",
        })
        processes.prepare_airflow(env, work / "logs" / "airflow-setup.log")
        Store(store_url, migrate=True).dispose()  # what `writeback store migrate` does
        dep = CeleryDeployment(work=work, url=url, env=env, ps_url=ps.url, store_url=store_url, truth=truth,
                               redis=redis)
        port = url.rsplit(":", 1)[1]
        commands = {
            "api-server": ["api-server", "--host", "127.0.0.1", "--port", port, "--workers", "1"],
            "scheduler": ["scheduler", "--skip-serve-logs"],
            "dag-processor": ["dag-processor"],
            "triggerer": ["triggerer", "--skip-serve-logs"],
        }
        for name in CORE:
            dep.processes[name] = _start(name, commands[name], env, dep.logs)
        for name in WORKERS:
            worker_env = {**env, "WRITEBACK_TEST_WORKER": name,
                          "AIRFLOW__CORE__HOSTNAME_CALLABLE": "tests.celery.worker_name.hostname"}
            dep.processes[name] = _start(name, ["celery", "worker", "--celery-hostname", f"{name}@%h",
                                                "--skip-serve-logs", "--without-mingle", "--without-gossip"],
                                         worker_env, dep.logs)
        _wait_ready(dep)
        dep.ready_in = time.monotonic() - started
        yield dep
    finally:
        if dep is not None:
            for proc in reversed(list(dep.processes.values())):
                stop_process(proc)
        for service in services:
            service.stop()
        if redis is not None:
            redis.stop()
