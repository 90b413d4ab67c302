"""Start the sandboxes as real processes on loopback and build the environment Airflow runs in."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlparse

ROOT = Path(__file__).resolve().parents[1]
PS_CLIENT_ID, PS_CLIENT_SECRET = "sandbox-client", "sandbox-secret"
SE_API_KEY = "sandbox-se-key"


@dataclass
class Service:
    name: str
    url: str
    process: subprocess.Popen

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


def start_service(name: str, module: str, args: list[str], log_path: Path, timeout: float = 120) -> Service:
    """Run `python -m module args` and wait for its `READY http://host:port` line."""
    log_path.parent.mkdir(parents=True, exist_ok=True)
    log = open(log_path, "w")  # noqa: SIM115 - owned by the process for its lifetime
    proc = subprocess.Popen([sys.executable, "-m", module, *args], cwd=ROOT, stdout=subprocess.PIPE,
                            stderr=log, text=True)
    found: list[str] = []

    def read() -> None:
        for line in proc.stdout:
            if line.startswith("READY ") and not found:
                found.append(line.split()[1].strip())
            log.write(line)
            log.flush()

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    reader.join(0)
    waited = 0.0
    while not found and proc.poll() is None and waited < timeout:
        reader.join(0.1)
        waited += 0.1
    if not found:
        proc.kill()
        raise RuntimeError(f"{name} did not start; see {log_path}")
    return Service(name, found[0], proc)


def start_powerschool(district_file: Path, log_dir: Path, db_path: Path | None = None,
                      extra: list[str] | None = None) -> Service:
    args = ["--host", "127.0.0.1", "--port", "0", "--district", str(district_file),
            "--client-id", PS_CLIENT_ID, "--client-secret", PS_CLIENT_SECRET]
    if db_path:
        args += ["--db", str(db_path)]
    return start_service("powerschool", "sandbox.powerschool", args + (extra or []), log_dir / "powerschool.log")


def start_schoolengage(submissions_file: Path, log_dir: Path) -> Service:
    args = ["--host", "127.0.0.1", "--port", "0", "--submissions", str(submissions_file), "--api-key", SE_API_KEY]
    return start_service("schoolengage", "sandbox.schoolengage", args, log_dir / "schoolengage.log")


def connection_uri_env(conn_id: str, conn_type: str, url: str, login: str | None, password: str) -> dict[str, str]:
    parsed = urlparse(url)
    conn = {"conn_type": conn_type, "host": parsed.hostname, "port": parsed.port, "schema": parsed.scheme,
            "password": password}
    if login:
        conn["login"] = login
    return {f"AIRFLOW_CONN_{conn_id.upper()}": json.dumps(conn)}


def airflow_env(work: Path, ps_url: str, se_url: str, store_url: str, district: str = "demo") -> dict[str, str]:
    """An embedded-defaults Airflow: SQLite metadata in `work`, this repo's DAGs and plugins."""
    env = dict(os.environ)
    env.update({
        "AIRFLOW_HOME": str(work / "airflow"),
        "AIRFLOW__CORE__DAGS_FOLDER": str(ROOT / "dags"),
        "AIRFLOW__CORE__PLUGINS_FOLDER": str(ROOT / "plugins"),
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "AIRFLOW__CORE__UNIT_TEST_MODE": "False",
        "AIRFLOW__LOGGING__LOGGING_LEVEL": "INFO",
        "GX_ANALYTICS_ENABLED": "False",
        "WRITEBACK_STORE_URL": store_url,
        "AIRFLOW__API__HOST": "127.0.0.1",  # the demo's Airflow listens on loopback only
        # `airflow standalone` starts its components as `airflow ...` subprocesses: find this venv's
        "PATH": os.pathsep.join([str(Path(sys.executable).parent), env.get("PATH", "")]),
        "PYTHONPATH": os.pathsep.join([str(ROOT / "plugins"), str(ROOT), env.get("PYTHONPATH", "")]),
    })
    env.update(connection_uri_env(f"powerschool_{district}", "powerschool", ps_url, PS_CLIENT_ID, PS_CLIENT_SECRET))
    env.update(connection_uri_env(f"schoolengage_{district}", "schoolengage", se_url, None, SE_API_KEY))
    return env


def airflow(env: dict[str, str], *args: str, log_path: Path | None = None, timeout: float = 1800,
            check: bool = True) -> subprocess.CompletedProcess:
    """Run the `airflow` command of this venv."""
    exe = str(Path(sys.executable).parent / "airflow")
    out = open(log_path, "a") if log_path else subprocess.PIPE  # noqa: SIM115
    try:
        result = subprocess.run([exe, *args], env=env, cwd=ROOT, stdout=out, stderr=subprocess.STDOUT, text=True,
                                timeout=timeout)
    finally:
        if log_path:
            out.close()
    if check and result.returncode != 0:
        raise RuntimeError(f"airflow {' '.join(args[:2])} failed (exit {result.returncode})"
                           + (f"; see {log_path}" if log_path else f": {result.stdout[-2000:]}"))
    return result


def prepare_airflow(env: dict[str, str], log_path: Path, pool: str = "powerschool_demo", slots: int = 4) -> None:
    airflow(env, "db", "migrate", log_path=log_path)
    airflow(env, "pools", "set", pool, str(slots), "Calls to the demo PowerSchool", log_path=log_path)
