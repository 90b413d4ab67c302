"""The sandboxes listen only on loopback: started by `sandbox/processes.py` (as the demo and the
integration tests start them) and by their CLIs with default arguments."""

from __future__ import annotations

import json
import time
from pathlib import Path

import psutil
import pytest

from sandbox.generate import build_all
from sandbox.processes import Service, start_powerschool, start_schoolengage, start_service

LOOPBACK = {"127.0.0.1", "::1"}


def listening(pid: int) -> set[tuple[str, int]]:
    proc = psutil.Process(pid)
    procs = [proc, *proc.children(recursive=True)]
    return {(c.laddr.ip, c.laddr.port) for p in procs for c in p.net_connections(kind="inet")
            if c.status == psutil.CONN_LISTEN}


def assert_loopback_only(service: Service) -> None:
    deadline = time.monotonic() + 10
    addresses: set[tuple[str, int]] = set()
    while not addresses and time.monotonic() < deadline:
        addresses = listening(service.process.pid)
        time.sleep(0.05)
    assert addresses, f"{service.name} listens nowhere"
    assert {ip for ip, _ in addresses} <= LOOPBACK, f"{service.name} listens on {addresses}"
    assert service.url.startswith(("http://127.0.0.1:", "http://[::1]:"))


@pytest.fixture(scope="module")
def files(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    out = tmp_path_factory.mktemp("sandbox-files")
    district, submissions, _ = build_all(10, 3)
    (out / "district.json").write_text(json.dumps(district))
    (out / "submissions.json").write_text(json.dumps(submissions))
    return {"district": out / "district.json", "submissions": out / "submissions.json", "logs": out / "logs"}


def test_processes_start_the_sandboxes_on_loopback(files) -> None:
    services = []
    try:
        services.append(start_powerschool(files["district"], files["logs"]))
        services.append(start_schoolengage(files["submissions"], files["logs"]))
        for service in services:
            assert_loopback_only(service)
    finally:
        for service in services:
            service.stop()


@pytest.mark.parametrize(("name", "module", "args"), [
    ("powerschool", "sandbox.powerschool", ["--students", "5"]),  # it needs data; everything else default
    ("schoolengage", "sandbox.schoolengage", []),
])
def test_the_clis_default_to_loopback(files, name: str, module: str, args: list[str]) -> None:
    service = start_service(name, module, args, files["logs"] / f"{name}-cli.log")
    try:
        assert_loopback_only(service)
    finally:
        service.stop()

