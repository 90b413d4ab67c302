"""PostgreSQL for the tests: a configured server, or a throwaway one started from the installed binaries.

- `postgres_url` (session): `WRITEBACK_TEST_PG_URL` when set (its role needs CREATEDB: every test gets its
  own database), else a private server started from the installed binaries under a temp dir (as root
  through `runuser` and an unprivileged user, since PostgreSQL refuses to run as root), stopped at the end.
  When no server can be had the PostgreSQL tests skip with the reason — except with `CI=true`, where
  they fail loudly: in CI a missing PostgreSQL is a failure, not a skip.
- `store_url`: a fresh, empty store database per test, parametrised over sqlite and postgresql.
"""

from __future__ import annotations

import glob
import itertools
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url
from sqlalchemy.pool import NullPool

PG_URL_ENV = "WRITEBACK_TEST_PG_URL"


def _pg_bin(name: str) -> str | None:
    found = shutil.which(name)
    if found:
        return found
    candidates = sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{name}"),
                        key=lambda p: [int(x) if x.isdigit() else 0 for x in Path(p).parts[-3].split(".")])
    return candidates[-1] if candidates else None


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _unprivileged_user() -> str:
    """PostgreSQL refuses to run as root: use `postgres` (Debian creates it) or a system user of our own."""
    for name in ("postgres", "writeback-pg"):
        try:
            pwd.getpwnam(name)
            return name
        except KeyError:
            pass
    subprocess.run(["useradd", "--system", "--no-create-home", "writeback-pg"], check=True,
                   capture_output=True, text=True)
    return "writeback-pg"


class _Throwaway:
    def __init__(self) -> None:
        self.initdb, self.pg_ctl = _pg_bin("initdb"), _pg_bin("pg_ctl")
        if not (self.initdb and self.pg_ctl):
            raise RuntimeError("initdb/pg_ctl not found on PATH nor under /usr/lib/postgresql/*/bin")
        self.user = _unprivileged_user() if os.geteuid() == 0 else None
        self.root = Path(tempfile.mkdtemp(prefix="wb-pg-"))  # short: the socket path must fit 107 bytes
        self.data, self.log = self.root / "data", self.root / "server.log"
        self.port = _free_port()
        if self.user is not None:
            entry = pwd.getpwnam(self.user)
            os.chown(self.root, entry.pw_uid, entry.pw_gid)

    def _run(self, *args: str) -> None:
        cmd = list(args) if self.user is None else ["runuser", "-u", self.user, "--", *args]
        done = subprocess.run(cmd, capture_output=True, text=True, timeout=120, cwd=self.root)
        if done.returncode != 0:
            log = self.log.read_text(errors="replace")[-2000:] if self.log.exists() else ""
            raise RuntimeError(f"{' '.join(cmd)} exited {done.returncode}:\n{done.stdout}{done.stderr}{log}")

    def start(self) -> str:
        self._run(self.initdb, "-D", str(self.data), "-U", "postgres", "--auth=trust", "--encoding=UTF8",
                  "--locale=C", "--no-sync")
        opts = (f"-p {self.port} -k {self.root} -c listen_addresses=127.0.0.1 "
                "-c fsync=off -c synchronous_commit=off -c full_page_writes=off")
        self._run(self.pg_ctl, "-D", str(self.data), "-l", str(self.log), "-o", opts, "-w", "-t", "60", "start")
        return f"postgresql+psycopg2://postgres@127.0.0.1:{self.port}/postgres"

    def stop(self) -> None:
        try:
            if (self.data / "postmaster.pid").exists():
                self._run(self.pg_ctl, "-D", str(self.data), "-m", "fast", "-w", "stop")
        finally:
            shutil.rmtree(self.root, ignore_errors=True)


def _unavailable(reason: str) -> None:
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(f"PostgreSQL is required in CI but unavailable: {reason}", pytrace=False)
    pytest.skip(f"PostgreSQL unavailable: {reason}")


@pytest.fixture(scope="session")
def postgres_url() -> Iterator[str]:
    """A URL of a PostgreSQL server database the tests may create databases from."""
    configured = os.environ.get(PG_URL_ENV)
    if configured:
        try:
            with create_engine(configured, poolclass=NullPool).connect() as conn:
                conn.execute(text("select 1"))
        except Exception as exc:
            _unavailable(f"{PG_URL_ENV}={make_url(configured)!r} does not answer: {exc}")
        yield configured
        return
    server = None
    try:
        server = _Throwaway()
        url = server.start()
    except Exception as exc:
        if server is not None:
            server.stop()
        _unavailable(str(exc))
    try:
        yield url
    finally:
        server.stop()


_db_numbers = itertools.count(1)


@pytest.fixture
def _fresh_postgres_db(postgres_url: str) -> Iterator[str]:
    """A new empty database on the server (`CREATE DATABASE`), dropped after the test."""
    admin = create_engine(postgres_url, poolclass=NullPool, isolation_level="AUTOCOMMIT")
    name = f"wb_test_{os.getpid()}_{next(_db_numbers)}"
    try:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
            conn.execute(text(f'CREATE DATABASE "{name}" TEMPLATE template0'))
        yield make_url(postgres_url).set(database=name).render_as_string(hide_password=False)
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    finally:
        admin.dispose()


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def store_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """A fresh, empty database for one test: a SQLite file, or a new PostgreSQL database."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'store.db'}"
    return request.getfixturevalue("_fresh_postgres_db")
