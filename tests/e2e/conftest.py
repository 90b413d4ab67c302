"""A whole deployment on loopback for the end-to-end test: both sandboxes as processes (`sandbox.processes`)
and a real Airflow — api-server, scheduler (LocalExecutor), dag-processor and triggerer as separate
processes on a SQLite metadata database in a temp AIRFLOW_HOME — loading this repo's DAGs and plugin,
with a SimpleAuthManager user `admin:admin`. Every process gets its own session (process group) and is
stopped by the fixture's teardown, whatever the test did.

Airflow 3 allows SQLite with the LocalExecutor (`airflow standalone` does exactly that); SQLite has a
single writer, so this is for tests and demos only. The components are started one by one rather than
through `airflow standalone`, which picks port 8080 and stops its children only on Ctrl-C.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest

from sandbox import processes
from sandbox.generate import write_files
from writeback.store import Store

ROOT = Path(__file__).resolve().parents[2]
AIRFLOW = str(Path(sys.executable).parent / "airflow")
DAG_ID = "writeback_demo"
USER, PASSWORD = "admin", "admin"
# 60 students; seed 1 gives possible matches (4), removed contacts (2), phone-type mismatches and shared
# contact changes, so every control of the review page has something to act on.
STUDENTS, SEED = 60, 1
COMPONENTS = ("api-server", "scheduler", "dag-processor", "triggerer")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def stop_process(proc: subprocess.Popen, timeout: float = 20) -> None:
    """SIGTERM the process group the process leads (it was started with its own session), then SIGKILL."""
    if proc.poll() is not None and not _group_alive(proc.pid):
        return
    for sig, wait in ((signal.SIGTERM, timeout), (signal.SIGKILL, 10)):
        try:
            os.killpg(proc.pid, sig)
        except ProcessLookupError:
            return
        try:
            proc.wait(timeout=wait)
        except subprocess.TimeoutExpired:
            continue
        deadline = time.monotonic() + wait  # the leader is gone; give its children (task runners) a moment
        while _group_alive(proc.pid) and time.monotonic() < deadline:
            time.sleep(0.2)
        if not _group_alive(proc.pid):
            return


def _group_alive(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


@dataclass
class Deployment:
    work: Path
    url: str
    env: dict[str, str]
    ps_url: str
    store_url: str
    truth: dict[str, Any]
    processes: dict[str, subprocess.Popen] = field(default_factory=dict)
    ready_in: float = 0.0  # seconds from the fixture's start until Airflow was ready
    _token: str | None = None

    @property
    def logs(self) -> Path:
        return self.work / "logs"

    def token(self) -> str:
        if self._token is None:
            r = httpx.post(f"{self.url}/auth/token", json={"username": USER, "password": PASSWORD}, timeout=30)
            r.raise_for_status()
            self._token = r.json()["access_token"]
        return self._token

    def api(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        """Airflow's REST API (`/api/v2/...`) as the admin user."""
        r = httpx.request(method, f"{self.url}/api/v2{path}", headers={"Authorization": f"Bearer {self.token()}"},
                          timeout=30, **kwargs)
        r.raise_for_status()
        return r

    def log_tails(self, chars: int = 2500) -> str:
        """The end of every component's log, for a failure message."""
        parts = []
        for path in sorted(self.logs.glob("*.log")):
            text = path.read_text(errors="replace")
            parts.append(f"--- {path.name} ---\n{text[-chars:]}")
        for path in sorted((self.work / "airflow" / "logs").rglob("*.log")):  # task logs
            text = path.read_text(errors="replace")
            if "ERROR" in text or "Traceback" in text:
                parts.append(f"--- task log {path.relative_to(self.work)} ---\n{text[-chars:]}")
        return "\n".join(parts)

    def check_alive(self) -> None:
        for name, proc in self.processes.items():
            if proc.poll() is not None:
                pytest.fail(f"airflow {name} exited {proc.returncode}:\n{self.log_tails()}", pytrace=False)


def unscheduled_include(work: Path) -> Path:
    """A copy of `include/` whose demo district has no schedule. With its cron schedule, unpausing the DAG
    makes the scheduler create a run for the latest cron time at once (CronTriggerTimetable, catchup off),
    and with `max_active_runs=1` the triggered run would queue behind that one."""
    include = work / "include"
    shutil.copytree(ROOT / "include", include)
    district = include / "districts" / "demo.yaml"
    text, n = re.subn(r"(?m)^schedule:.*$", "schedule: null", district.read_text())
    assert n == 1, "include/districts/demo.yaml has no schedule line"
    district.write_text(text)
    return include


def airflow_env(work: Path, ps_url: str, se_url: str, store_url: str, url: str) -> dict[str, str]:
    """`sandbox.processes.airflow_env` (connections, DAGs and plugins folders, store URL) without any
    AIRFLOW__ setting inherited from the caller's shell, plus a LocalExecutor deployment on loopback."""
    base = processes.airflow_env(work, ps_url, se_url, store_url)
    base["WRITEBACK_INCLUDE"] = str(unscheduled_include(work))
    env = {k: v for k, v in base.items() if not (k.startswith("AIRFLOW__") and k in os.environ)}
    home = work / "airflow"
    home.mkdir(parents=True, exist_ok=True)
    passwords = work / "passwords.json"
    passwords.write_text(json.dumps({USER: PASSWORD}))
    env.update({
        "PATH": os.pathsep.join([str(Path(sys.executable).parent), env.get("PATH", "")]),
        "AIRFLOW__CORE__DAGS_FOLDER": str(ROOT / "dags"),
        "AIRFLOW__CORE__PLUGINS_FOLDER": str(ROOT / "plugins"),
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "AIRFLOW__CORE__UNIT_TEST_MODE": "False",
        "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"sqlite:///{home / 'airflow.db'}",
        "AIRFLOW__CORE__EXECUTOR": "LocalExecutor",
        "AIRFLOW__CORE__PARALLELISM": "8",
        "AIRFLOW__CORE__AUTH_MANAGER":
            "airflow.api_fastapi.auth.managers.simple.simple_auth_manager.SimpleAuthManager",
        "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS": f"{USER}:admin",
        "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE": str(passwords),
        "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_ALL_ADMINS": "False",
        "AIRFLOW__CORE__EXECUTION_API_SERVER_URL": f"{url}/execution/",
        "AIRFLOW__API__BASE_URL": url,
        "AIRFLOW__API__HOST": "127.0.0.1",
        "AIRFLOW__API__PORT": url.rsplit(":", 1)[1],
        "AIRFLOW__API__SECRET_KEY": "e2e-secret-key",
        "AIRFLOW__API_AUTH__JWT_SECRET": "e2e-jwt-secret",
        "AIRFLOW__API__EXPOSE_CONFIG": "False",
        "AIRFLOW__LOGGING__WORKER_LOG_SERVER_PORT": str(free_port()),
        "AIRFLOW__LOGGING__TRIGGER_LOG_SERVER_PORT": str(free_port()),
        "AIRFLOW__SCHEDULER__ENABLE_HEALTH_CHECK": "False",
    })
    return env


def _start(name: str, args: list[str], env: dict[str, str], logs: Path) -> subprocess.Popen:
    with open(logs / f"{name}.log", "w") as out:
        return subprocess.Popen([AIRFLOW, *args], env=env, cwd=ROOT, stdout=out, stderr=subprocess.STDOUT,
                                start_new_session=True)


def _wait_ready(dep: Deployment, timeout: float = 180) -> None:
    """The API server answers, scheduler, dag-processor and triggerer heartbeat, and the DAG is parsed."""
    deadline = time.monotonic() + timeout
    last = ""
    while True:
        dep.check_alive()
        try:
            health = httpx.get(f"{dep.url}/api/v2/monitor/health", timeout=5)
            if health.status_code == 200:
                body = health.json()
                states = {k: (body.get(k) or {}).get("status") for k in ("scheduler", "triggerer", "dag_processor")}
                last = json.dumps(states)
                if all(s == "healthy" for s in states.values()):
                    r = httpx.get(f"{dep.url}/api/v2/dags/{DAG_ID}",
                                  headers={"Authorization": f"Bearer {dep.token()}"}, timeout=10)
                    if r.status_code == 200:
                        return
                    last = f"{last}; GET dag {r.status_code}"
        except httpx.HTTPError as exc:
            last = repr(exc)
        if time.monotonic() > deadline:
            pytest.fail(f"Airflow was not ready in {timeout:.0f} s ({last}):\n{dep.log_tails()}", pytrace=False)
        time.sleep(1)


@pytest.fixture(scope="module")
def deployment(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Deployment]:
    started = time.monotonic()
    work = tmp_path_factory.mktemp("e2e")
    (work / "logs").mkdir()
    write_files(work / "district", STUDENTS, SEED)
    truth = json.loads((work / "district" / "truth.json").read_text())
    services = []
    dep = None
    try:
        ps = processes.start_powerschool(work / "district" / "district.json", work / "logs", db_path=work / "ps.db")
        services.append(ps)
        se = processes.start_schoolengage(work / "district" / "submissions.json", work / "logs")
        services.append(se)
        url = f"http://127.0.0.1:{free_port()}"
        store_url = f"sqlite:///{work / 'store.db'}"
        env = airflow_env(work, ps.url, se.url, store_url, url)
        # Create the store's schema first, as docker-compose's airflow-init does: the first two tasks run in
        # parallel and each `Store()` migrates, which races on a fresh database ("table wb_audit already
        # exists"; the task fails and is retried a minute later).
        Store(store_url, migrate=True).dispose()
        processes.prepare_airflow(env, work / "logs" / "airflow-setup.log")
        dep = Deployment(work=work, url=url, env=env, ps_url=ps.url, store_url=store_url, truth=truth)
        port = url.rsplit(":", 1)[1]
        commands = {
            "api-server": ["api-server", "--host", "127.0.0.1", "--port", port, "--workers", "1"],
            "scheduler": ["scheduler", "--skip-serve-logs"],
            "dag-processor": ["dag-processor"],
            "triggerer": ["triggerer", "--skip-serve-logs"],
        }
        for name in COMPONENTS:
            dep.processes[name] = _start(name, commands[name], env, dep.logs)
        _wait_ready(dep)
        dep.ready_in = time.monotonic() - started
        yield dep
    finally:
        if dep is not None:
            for proc in reversed(list(dep.processes.values())):
                stop_process(proc)
        for service in services:
            service.stop()
