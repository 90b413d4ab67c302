"""A real Airflow API server with our plugin loaded from the plugins folder, SimpleAuthManager users
`admin` (admin role) and `viewer` (viewer role), a writeback store with a real plan, and real tokens
from `POST /auth/token`. Every review test talks to the app through that server over loopback.
"""

from __future__ import annotations

import contextlib
import json
import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest

from writeback.store import Store

from .world import seed_run

ROOT = Path(__file__).resolve().parents[2]
AIRFLOW = str(Path(sys.executable).parent / "airflow")
DAG_RUN_ID = "manual__2026-08-01T00:00:00+00:00"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass
class AirflowServer:
    url: str
    home: Path
    env: dict[str, str]
    process: subprocess.Popen
    store_url: str
    tokens: dict[str, str] = field(default_factory=dict)

    def token(self, username: str) -> str:
        if username not in self.tokens:
            passwords = json.loads((self.home / "simple_auth_manager_passwords.json.generated").read_text())
            r = httpx.post(f"{self.url}/auth/token", json={"username": username, "password": passwords[username]},
                           timeout=30)
            r.raise_for_status()
            self.tokens[username] = r.json()["access_token"]
        return self.tokens[username]

    def client(self, username: str | None = None, *, cookie: bool = False) -> httpx.Client:
        """A client for /writeback: with a Bearer header (API style) or the `_token` cookie (browser style)."""
        headers, cookies = {}, {}
        if username and cookie:
            cookies["_token"] = self.token(username)
        elif username:
            headers["Authorization"] = f"Bearer {self.token(username)}"
        return httpx.Client(base_url=f"{self.url}/writeback", headers=headers, cookies=cookies, timeout=60,
                            follow_redirects=False)


def airflow_env(home: Path, store_url: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("AIRFLOW__")}
    dags = home / "dags"
    dags.mkdir(parents=True, exist_ok=True)
    env.update({
        "AIRFLOW_HOME": str(home),
        "AIRFLOW__CORE__DAGS_FOLDER": str(dags),
        "AIRFLOW__CORE__PLUGINS_FOLDER": str(ROOT / "plugins"),
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "AIRFLOW__CORE__UNIT_TEST_MODE": "False",
        "AIRFLOW__CORE__AUTH_MANAGER":
            "airflow.api_fastapi.auth.managers.simple.simple_auth_manager.SimpleAuthManager",
        "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS": "admin:admin,viewer:viewer",
        "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_ALL_ADMINS": "False",
        "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"sqlite:///{home / 'airflow.db'}",
        "AIRFLOW__API__SECRET_KEY": "review-tests-secret-key",
        "AIRFLOW__API_AUTH__JWT_SECRET": "review-tests-jwt-secret",
        "AIRFLOW__API__EXPOSE_CONFIG": "False",
        "AIRFLOW__LOGGING__LOGGING_LEVEL": "WARNING",
        "WRITEBACK_STORE_URL": store_url,
        "PYTHONPATH": os.pathsep.join([str(ROOT / "plugins"), str(ROOT), env.get("PYTHONPATH", "")]),
    })
    return env


def airflow(env: dict[str, str], *args: str) -> subprocess.CompletedProcess:
    """An `airflow` command with the server's environment; fails the test with its output."""
    done = subprocess.run([AIRFLOW, *args], env=env, cwd=ROOT, capture_output=True, text=True, timeout=600)
    if done.returncode != 0:
        pytest.fail(f"airflow {' '.join(args)} failed:\n{done.stdout[-3000:]}{done.stderr[-3000:]}")
    return done


@contextlib.contextmanager
def api_server(home: Path, env: dict[str, str], store_url: str) -> Iterator[AirflowServer]:
    """`airflow api-server` on a free loopback port, until the block ends (the metadata DB is migrated)."""
    log = home / "api-server.log"
    port = _free_port()
    with open(log, "w") as out:
        proc = subprocess.Popen([AIRFLOW, "api-server", "--host", "127.0.0.1", "--port", str(port), "--workers", "1"],
                                env=env, cwd=ROOT, stdout=out, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 180
    try:
        while True:
            if proc.poll() is not None:
                pytest.fail(f"airflow api-server exited {proc.returncode}:\n{log.read_text()[-4000:]}")
            try:
                if httpx.get(f"{url}/api/v2/monitor/health", timeout=5).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline:
                pytest.fail(f"airflow api-server did not answer in 180 s:\n{log.read_text()[-4000:]}")
            time.sleep(0.5)
        yield AirflowServer(url=url, home=home, env=env, process=proc, store_url=store_url)
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


@dataclass
class PreviewSandboxes:
    """The demo district's PowerSchool and SchoolEngage, for the preview page (every form of the district)."""

    district: dict
    submissions: list[dict]
    truth: dict
    ps_url: str
    se_url: str


PREVIEW_PS = ("preview-client", "preview-secret-8c21")
PREVIEW_SE_KEY = "preview-se-key"


@pytest.fixture(scope="session")
def preview_sandboxes() -> Iterator[PreviewSandboxes]:
    from sandbox.generator import ALL_FORMS, build_all
    from sandbox.powerschool.server import start_in_thread as start_powerschool
    from sandbox.schoolengage.server import start_in_thread as start_schoolengage

    district, submissions, truth = build_all(120, 13, forms=ALL_FORMS)
    ps = start_powerschool(district, client_id=PREVIEW_PS[0], client_secret=PREVIEW_PS[1])
    se = start_schoolengage(submissions, api_key=PREVIEW_SE_KEY)
    try:
        yield PreviewSandboxes(district, submissions, truth, ps.url, se.url)
    finally:
        ps.stop()
        se.stop()


def _connection(url: str, **kw: str) -> str:
    host, port = url.removeprefix("http://").split(":")
    return json.dumps({"host": host, "port": int(port), "schema": "http", **kw})


@pytest.fixture(scope="session")
def airflow_server(tmp_path_factory: pytest.TempPathFactory,
                   preview_sandboxes: PreviewSandboxes) -> Iterator[AirflowServer]:
    home = tmp_path_factory.mktemp("airflow")
    store_url = f"sqlite:///{home / 'store.db'}"
    env = airflow_env(home, store_url)
    # the demo district's connections, for the preview page (include/districts/demo.yaml names them)
    env["AIRFLOW_CONN_POWERSCHOOL_DEMO"] = _connection(preview_sandboxes.ps_url, conn_type="powerschool",
                                                       login=PREVIEW_PS[0], password=PREVIEW_PS[1])
    env["AIRFLOW_CONN_SCHOOLENGAGE_DEMO"] = _connection(preview_sandboxes.se_url, conn_type="schoolengage",
                                                        password=PREVIEW_SE_KEY)
    airflow(env, "db", "migrate")
    with api_server(home, env, store_url) as server:
        yield server


@pytest.fixture(scope="session")
def store(airflow_server: AirflowServer) -> Iterator[Store]:
    s = Store(airflow_server.store_url, migrate=True)
    yield s
    s.dispose()


_runs = iter(range(1, 10_000))


@pytest.fixture
def run_id(store: Store) -> str:
    """A fresh run (its own DAG run id) with the generated district's plan, for one test."""
    return seed_run(store, f"{DAG_RUN_ID}.{next(_runs)}", inject_name="<script>alert('x')</script>")
