"""docker-compose.yaml, Dockerfile and .dockerignore, checked without a Docker engine.

The compose file is parsed with PyYAML (merge keys resolved) and its ``${VAR:-default}`` variables are
replaced by their defaults, as ``docker compose config`` does with an empty environment. Each check is a
function returning a list of problems; the ``*_catches_*`` tests feed it a broken copy to prove it fails.
"""

from __future__ import annotations

import copy
import fnmatch
import json
import os
import re
import shlex
import shutil
import subprocess
import sys
import tomllib
import types
import uuid
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import pytest
import yaml
from packaging.requirements import Requirement
from packaging.specifiers import SpecifierSet
from sqlalchemy.engine import make_url

from writeback.config import load_district

ROOT = Path(__file__).resolve().parents[2]
COMPOSE = ROOT / "docker-compose.yaml"
DOCKERFILE = ROOT / "Dockerfile"
DOCKERIGNORE = ROOT / ".dockerignore"
DOCS = ROOT / "docs" / "deployment.md"
PG_INIT = ROOT / "deploy" / "postgres-init"

AIRFLOW_SERVICES = {
    "airflow-apiserver": "api-server",
    "airflow-scheduler": "scheduler",
    "airflow-dag-processor": "dag-processor",
    "airflow-worker": "celery worker",
    "airflow-triggerer": "triggerer",
    "airflow-init": None,
}
REQUIRED_SERVICES = {"postgres", "redis", *AIRFLOW_SERVICES}
SANDBOX_SERVICES = {"sandbox-generate", "powerschool-sandbox", "schoolengage-sandbox"}
ONE_SHOT = {"airflow-init", "sandbox-generate"}

# Defaults of secret-looking variables: public development values, each documented in docs/deployment.md.
DOCUMENTED_DEFAULTS = {
    "POSTGRES_PASSWORD": "airflow",
    "WRITEBACK_DB_PASSWORD": "writeback",
    "AIRFLOW__CORE__FERNET_KEY": "",
    "AIRFLOW__API_AUTH__JWT_SECRET": "dev-only-jwt-secret-change-me",
    "AIRFLOW__API__SECRET_KEY": "dev-only-secret-key-change-me",
    "SANDBOX_PS_CLIENT_SECRET": "sandbox-secret",
    "SANDBOX_SE_API_KEY": "sandbox-se-key",
}

INTERPOLATION = re.compile(r"\$\{([^}]*)\}")
VAR_WITH_DEFAULT = re.compile(r"^([A-Za-z_][A-Za-z0-9_]*)(:?-)(.*)$", re.S)
BARE_VAR = re.compile(r"\$[A-Za-z_]")
SECRET_NAME = re.compile(r"(?i)(passw|secret|api[_-]?key|token|fernet|private[_-]?key|credential)")
NOT_A_SECRET_NAME = re.compile(r"(?i)(_FILE|_PATH|_CMD)$")
PLACEHOLDER = "<var>"


# --- loading ------------------------------------------------------------------------------------------

def _strings(node: Any):
    if isinstance(node, str):
        yield node
    elif isinstance(node, dict):
        for key, value in node.items():
            yield from _strings(key)
            yield from _strings(value)
    elif isinstance(node, list):
        for item in node:
            yield from _strings(item)


def _map_strings(node: Any, fn) -> Any:
    if isinstance(node, str):
        return fn(node)
    if isinstance(node, dict):
        return {_map_strings(k, fn): _map_strings(v, fn) for k, v in node.items()}
    if isinstance(node, list):
        return [_map_strings(item, fn) for item in node]
    return node


def _interpolations(text: str) -> list[str]:
    return INTERPOLATION.findall(text.replace("$$", ""))


def resolve(text: str, placeholder: str | None = None) -> str:
    """Compose interpolation with an empty environment: each ``${VAR:-d}`` becomes ``d``, ``$$`` ``$``."""
    def sub(match: re.Match) -> str:
        found = VAR_WITH_DEFAULT.match(match.group(1))
        if placeholder is not None:
            return placeholder
        return found.group(3) if found else ""

    parts = text.split("$$")
    return "$".join(INTERPOLATION.sub(sub, part) for part in parts)


@pytest.fixture(scope="module")
def raw() -> dict:
    """The parsed file, variables not yet replaced."""
    return yaml.safe_load(COMPOSE.read_text(encoding="utf-8"))


@pytest.fixture(scope="module")
def compose(raw) -> dict:
    return _map_strings(raw, resolve)


def env_of(service: dict) -> dict[str, str]:
    env = service.get("environment") or {}
    if isinstance(env, list):
        env = dict(item.split("=", 1) for item in env)
    return {k: "" if v is None else str(v) for k, v in env.items()}


def command_list(service: dict) -> list[str]:
    cmd = service.get("command") or []
    return shlex.split(cmd) if isinstance(cmd, str) else [str(c) for c in cmd]


def arg(service: dict, flag: str) -> str:
    args = command_list(service)
    assert flag in args, f"{flag} missing from {args}"
    return args[args.index(flag) + 1]


def init_script(compose: dict) -> str:
    cmd = compose["services"]["airflow-init"]["command"]
    assert cmd[0] == "-c", "airflow-init runs `/bin/bash -c SCRIPT`"
    return cmd[1]


def districts() -> list:
    return [load_district(p) for p in sorted((ROOT / "include" / "districts").glob("*.yaml"))]


def compose_connections(compose: dict) -> dict[str, dict]:
    """conn_id -> parsed JSON, from every AIRFLOW_CONN_* of every service."""
    found: dict[str, dict] = {}
    for name, service in compose["services"].items():
        for key, value in env_of(service).items():
            if key.startswith("AIRFLOW_CONN_"):
                conn_id = key.removeprefix("AIRFLOW_CONN_").lower()
                parsed = json.loads(value)
                assert found.setdefault(conn_id, parsed) == parsed, f"{key} differs between services ({name})"
    return found


# --- checks (each returns a list of problems) -----------------------------------------------------------

def problems_interpolation(raw: dict) -> list[str]:
    """Every variable is ``${VAR:-default}`` (or ``${VAR-default}``); no bare ``$VAR`` (write ``$$``)."""
    out = []
    for text in _strings(raw):
        for body in _interpolations(text):
            if not VAR_WITH_DEFAULT.match(body):
                out.append(f"${{{body}}} has no default (write ${{VAR:-default}})")
        if BARE_VAR.search(INTERPOLATION.sub("", text.replace("$$", ""))):
            out.append(f"bare $VAR in {text[:80]!r} (compose would interpolate it; escape as $$)")
    return out


def problems_secrets(text: str, raw: dict) -> list[str]:
    """No literal secret: credentials are variables whose defaults are the documented dev values."""
    out = []
    docs = DOCS.read_text(encoding="utf-8") if DOCS.exists() else ""
    for text_value in _strings(raw):
        for body in _interpolations(text_value):
            found = VAR_WITH_DEFAULT.match(body)
            if not found or not SECRET_NAME.search(found.group(1)):
                continue
            name, default = found.group(1), found.group(3)
            if DOCUMENTED_DEFAULTS.get(name) != default:
                out.append(f"${{{body}}}: default of a secret must be a documented development value")
            elif name not in docs or (default and f"`{default}`" not in docs):
                out.append(f"{name} and its default {default!r} are not documented in {DOCS.name}")
    for number, line in enumerate(text.splitlines(), 1):
        masked = resolve(line, PLACEHOLDER)
        for password in re.findall(r"://[^\s/:@]*:([^\s/@]*)@", masked):
            if password not in ("", PLACEHOLDER):
                out.append(f"line {number}: password in a URL")
        for key, value in re.findall(
                r"(?i)([\w-]*(?:passw|secret|api[_-]?key|token|fernet)[\w-]*)[\"']?\s*[:=]\s*[\"']?([^\"',}\s]*)",
                masked):
            if value not in ("", PLACEHOLDER) and not NOT_A_SECRET_NAME.search(key) and not value.startswith("/"):
                out.append(f"line {number}: {key} has a literal value")
        for token in re.findall(r"[A-Za-z0-9+/=_-]{24,}", masked):
            if re.search(r"\d", token) and re.search(r"[A-Za-z]", token):
                out.append(f"line {number}: {token[:6]}... looks like a key or token")
    for name, service in raw["services"].items():
        for key, value in env_of(service).items():
            if SECRET_NAME.search(key) and not NOT_A_SECRET_NAME.search(key) \
                    and not key.startswith("AIRFLOW_CONN_") and resolve(value, PLACEHOLDER) not in ("", PLACEHOLDER):
                out.append(f"{name}: {key} is not a variable")
        args = command_list(service)
        for flag, value in zip(args, args[1:], strict=False):
            if re.match(r"--[\w-]*(secret|password|api-key|token)", flag) and resolve(value, PLACEHOLDER) != PLACEHOLDER:
                out.append(f"{name}: {flag} is not a variable")
    return out


def problems_ports(compose: dict) -> list[str]:
    """Published ports bind to 127.0.0.1; no host networking."""
    out = []
    for name, service in compose["services"].items():
        if service.get("network_mode") == "host":
            out.append(f"{name}: network_mode host")
        for port in service.get("ports") or []:
            if isinstance(port, dict):
                ok = port.get("host_ip") == "127.0.0.1"
            else:
                ok = str(port).startswith("127.0.0.1:") and str(port).count(":") == 2
            if not ok:
                out.append(f"{name}: port {port!r} is not bound to 127.0.0.1")
    return out


def problems_common(compose: dict) -> list[str]:
    """Every Airflow service carries x-airflow-common: its image, build, environment, mounts, user."""
    common = compose["x-airflow-common"]
    out = []
    for name in AIRFLOW_SERVICES:
        service = compose["services"].get(name)
        if service is None:
            out.append(f"{name} missing")
            continue
        for key in ("image", "build", "volumes"):
            if service.get(key) != common.get(key):
                out.append(f"{name}: {key} differs from x-airflow-common")
        if service.get("user") != common["user"] and not (name == "airflow-init" and service.get("user") == "0:0"):
            out.append(f"{name}: user differs from x-airflow-common")
        env = env_of(service)
        for key, value in env_of(common).items():
            if env.get(key) != value:
                out.append(f"{name}: environment {key} differs from x-airflow-common")
    return out


def problems_profiles(compose: dict) -> list[str]:
    out = []
    services = compose["services"]
    for name in sorted(REQUIRED_SERVICES - set(services)):
        out.append(f"required service {name} missing")
    for name, service in services.items():
        profiles = service.get("profiles") or []
        runs_sandbox = any("sandbox." in part for part in command_list(service))
        if name in SANDBOX_SERVICES or runs_sandbox:
            if profiles != ["demo"]:
                out.append(f"{name} runs a sandbox but its profiles are {profiles}, not ['demo']")
        elif profiles:
            out.append(f"{name} is in profiles {profiles}: it would not start by default")
        depends = service.get("depends_on") or {}
        for other in depends:
            if not profiles and (services.get(other, {}).get("profiles")):
                out.append(f"{name} (always on) depends on {other}, which is in a profile")
    return out


def dockerignore_excludes(ignore_text: str):
    """A predicate: would .dockerignore leave this path out of the build context (last match wins)?"""
    patterns = [line.strip() for line in ignore_text.splitlines() if line.strip() and not line.startswith("#")]

    def excluded(path: str) -> bool:
        result = False
        for pattern in patterns:
            negate = pattern.startswith("!")
            pat = pattern.lstrip("!").rstrip("/")
            if fnmatch.fnmatch(path, pat) or path.startswith(pat + "/") or (
                    pat.startswith("**/") and fnmatch.fnmatch(path.split("/")[-1], pat[3:])):
                result = not negate
        return result

    return excluded


# --- tests: structure ---------------------------------------------------------------------------------

def test_services_and_profiles(compose):
    assert problems_profiles(compose) == []
    assert SANDBOX_SERVICES <= set(compose["services"])


def test_profiles_check_catches_a_sandbox_outside_the_demo_profile(compose):
    broken = copy.deepcopy(compose)
    del broken["services"]["powerschool-sandbox"]["profiles"]
    del broken["services"]["redis"]
    found = problems_profiles(broken)
    assert any("redis missing" in f for f in found)
    assert any(f.startswith("powerschool-sandbox runs a sandbox") for f in found)
    assert any("depends on sandbox-generate" in f for f in found)


def test_airflow_services_share_the_common_settings_and_our_image(compose):
    assert problems_common(compose) == []
    common = compose["x-airflow-common"]
    assert common["build"] == {"context": ".", "dockerfile": "Dockerfile"}
    assert common["image"] and not common["image"].startswith("apache/airflow")
    for name, command in AIRFLOW_SERVICES.items():
        if command:
            assert command_list(compose["services"][name]) == command.split(), name
    for name in SANDBOX_SERVICES:  # the sandboxes run from the same image
        service = compose["services"][name]
        assert (service["image"], service["build"]) == (common["image"], common["build"]), name


def test_airflow_services_use_the_common_anchor_in_the_file():
    text = COMPOSE.read_text(encoding="utf-8")
    for name in AIRFLOW_SERVICES:
        block = re.search(rf"^  {re.escape(name)}:\n((?:    .*\n|\s*\n)+)", text, re.M)
        assert block and "<<: *airflow-common" in block.group(1), name


def test_common_check_catches_a_service_that_drifts(compose):
    broken = copy.deepcopy(compose)
    broken["services"]["airflow-worker"]["image"] = "apache/airflow:3.3.2"
    broken["services"]["airflow-triggerer"]["environment"]["AIRFLOW__CORE__EXECUTOR"] = "LocalExecutor"
    assert len(problems_common(broken)) == 2


def test_airflow_configuration(compose):
    env = env_of(compose["x-airflow-common"])
    assert env["AIRFLOW__CORE__EXECUTOR"] == "CeleryExecutor"
    db = make_url(env["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"])
    assert (db.drivername, db.host, db.database) == ("postgresql+psycopg2", "postgres", "airflow")
    assert urlparse(env["AIRFLOW__CELERY__BROKER_URL"]).hostname == "redis"
    assert env["AIRFLOW__CELERY__RESULT_BACKEND"].startswith("db+postgresql://")
    api = urlparse(env["AIRFLOW__CORE__EXECUTION_API_SERVER_URL"])
    assert (api.hostname, api.port, api.path) == ("airflow-apiserver", 8080, "/execution/")
    assert compose["services"]["airflow-apiserver"]["command"] == "api-server"
    for key in ("AIRFLOW__API_AUTH__JWT_SECRET", "AIRFLOW__API__SECRET_KEY", "AIRFLOW__CORE__FERNET_KEY"):
        assert key in env
    assert env["AIRFLOW__CORE__LOAD_EXAMPLES"].lower() == "false"
    assert env["WRITEBACK_INCLUDE"] == "/opt/airflow/include"


def test_healthchecks_and_startup_order(compose):
    services = compose["services"]
    for name, service in services.items():
        if name not in ONE_SHOT:
            assert service.get("healthcheck", {}).get("test"), f"{name} has no healthcheck"
    for name in set(AIRFLOW_SERVICES) - {"airflow-init"}:
        depends = services[name]["depends_on"]
        assert depends["airflow-init"]["condition"] == "service_completed_successfully", name
        assert depends["postgres"]["condition"] == depends["redis"]["condition"] == "service_healthy", name
    for name in ("powerschool-sandbox", "schoolengage-sandbox"):
        assert services[name]["depends_on"]["sandbox-generate"]["condition"] == "service_completed_successfully"


def test_mounted_folders_exist(compose):
    mounts = [str(v).split(":")[0] for s in compose["services"].values() for v in s.get("volumes") or []]
    binds = {m for m in mounts if m.startswith(".")}
    assert {"./dags", "./plugins", "./include", "./deploy/postgres-init"} <= binds
    for bind in binds:
        assert (ROOT / bind).is_dir(), f"{bind} is mounted but missing from the repository"
    named = {m for m in mounts if not m.startswith((".", "/"))}
    assert named <= set(compose.get("volumes") or {}), "named volumes must be declared"


# --- tests: ports, variables, secrets ------------------------------------------------------------------

def test_published_ports_bind_to_loopback(compose):
    assert problems_ports(compose) == []
    assert compose["services"]["airflow-apiserver"]["ports"] == ["127.0.0.1:8080:8080"]
    for name in ("postgres", "redis", *SANDBOX_SERVICES):
        assert not compose["services"][name].get("ports"), f"{name} should not be published"


def test_ports_check_catches_a_public_port(compose):
    broken = copy.deepcopy(compose)
    broken["services"]["airflow-apiserver"]["ports"] = ["8080:8080"]
    broken["services"]["powerschool-sandbox"]["ports"] = [{"target": 8000, "published": 8000}]
    broken["services"]["redis"]["ports"] = ["0.0.0.0:6379:6379"]
    assert len(problems_ports(broken)) == 3


def test_every_variable_has_a_default(raw):
    assert problems_interpolation(raw) == []


def test_interpolation_check_catches_a_variable_without_default(raw):
    broken = copy.deepcopy(raw)
    env = broken["services"]["postgres"]["environment"]
    env["POSTGRES_PASSWORD"] = "${POSTGRES_PASSWORD}"
    env["POSTGRES_USER"] = "${POSTGRES_USER:?required}"
    env["POSTGRES_DB"] = "$POSTGRES_DB"
    assert len(problems_interpolation(broken)) == 3


def test_no_secret_in_the_compose_file(raw):
    assert problems_secrets(COMPOSE.read_text(encoding="utf-8"), raw) == []


@pytest.mark.parametrize("line, env_key, env_value", [
    ('x: "postgresql://airflow:hunter2@postgres/airflow"', None, None),
    ('x: {"conn_type": "powerschool", "password": "real-client-secret"}', None, None),
    ("x: AbCdEfGh1234567890IjKlMnOpQr", None, None),
    ("", "AIRFLOW__CORE__FERNET_KEY", "plain-text-key"),
    ("", "AIRFLOW__API_AUTH__JWT_SECRET", "${AIRFLOW__API_AUTH__JWT_SECRET:-undocumented-default}"),
])
def test_secret_check_catches_literal_secrets(raw, line, env_key, env_value):
    broken = copy.deepcopy(raw)
    text = COMPOSE.read_text(encoding="utf-8") + "\n" + line
    if env_key:
        broken["services"]["postgres"]["environment"][env_key] = env_value
    assert problems_secrets(text, broken)


# --- tests: Dockerfile against requirements.txt and pyproject.toml --------------------------------------

def test_dockerfile_base_image_matches_the_pins():
    text = DOCKERFILE.read_text(encoding="utf-8")
    froms = re.findall(r"^FROM\s+(\S+)", text, re.M)
    assert len(froms) == 1, froms
    found = re.fullmatch(r"apache/airflow:(\d+\.\d+\.\d+)-python(\d+)\.(\d+)", froms[0])
    assert found, f"base image {froms[0]} is not apache/airflow:X.Y.Z-pythonA.B"
    airflow_version, py_major, py_minor = found.group(1), int(found.group(2)), int(found.group(3))

    requirements = ROOT / "requirements.txt"
    pins = {}
    for line in requirements.read_text(encoding="utf-8").splitlines():
        line = line.split("#", 1)[0].strip()
        if line and not line.startswith("-"):
            req = Requirement(line)
            pins[req.name.lower()] = req.specifier
    assert str(pins["apache-airflow"]) == f"=={airflow_version}", "Dockerfile FROM and requirements.txt disagree"
    assert not {"pytest", "hypothesis", "playwright", "ruff"} & set(pins), "test tools belong in requirements-dev.txt"
    dev = (ROOT / "requirements-dev.txt").read_text(encoding="utf-8")
    assert re.search(r"^-r requirements\.txt$", dev, re.M) and re.search(r"^pytest==", dev, re.M)
    constraints = (ROOT / "constraints.txt").read_text(encoding="utf-8")
    assert re.search(rf"^apache-airflow=={re.escape(airflow_version)}\s*$", constraints, re.M)

    requires = SpecifierSet(tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["requires-python"])
    assert requires.contains(f"{py_major}.{py_minor}.0") and requires.contains(f"{py_major}.{py_minor}.99")
    assert not requires.contains(f"{py_major}.{py_minor + 1}.0") and not requires.contains(f"{py_major}.{py_minor - 1}.0"), \
        "requires-python allows other Python versions than the image's"


def test_dockerfile_installs_the_pins_and_the_project():
    text = re.sub(r"\\\n", " ", DOCKERFILE.read_text(encoding="utf-8"))
    runs = [line for line in text.splitlines() if line.startswith("RUN ")]
    assert any(re.search(r"pip install --no-cache-dir -r \S*requirements\.txt -c \S*constraints\.txt", r) for r in runs)
    assert not any("requirements-dev" in r for r in runs), "the image installs no test tools"
    assert any(re.search(r"pip install --no-cache-dir --no-deps ", r) for r in runs)
    copied = []
    for line in text.splitlines():
        if line.startswith("COPY "):
            parts = [p for p in line.split()[1:] if not p.startswith("--")]
            copied += [p.rstrip("/") for p in parts[:-1]]
    assert {"requirements.txt", "constraints.txt", "pyproject.toml", "plugins", "dags", "include", "sandbox"} <= set(copied)
    for path in copied:
        assert (ROOT / path).exists(), path
    excluded = dockerignore_excludes(DOCKERIGNORE.read_text(encoding="utf-8"))
    assert [p for p in copied if excluded(p)] == [], ".dockerignore excludes what the Dockerfile copies"
    for private in (".venv", ".git", ".env", "tests", ".demo", "plugins/writeback.egg-info",
                    "plugins/writeback/__pycache__"):
        assert excluded(private), f"{private} would be sent to the build"


# --- tests: districts, connections, pools, store -------------------------------------------------------

def test_every_compose_connection_belongs_to_a_district_or_is_the_store(compose):
    conns = compose_connections(compose)
    assert conns, "the demo connections are defined"
    named = {d.powerschool_conn_id: "powerschool" for d in districts()}
    named |= {d.submissions_conn_id: "schoolengage" for d in districts()}
    named[env_of(compose["x-airflow-common"])["AIRFLOW__WRITEBACK__STORE_CONN_ID"]] = "writeback_store"
    for conn_id, conn in conns.items():
        assert conn_id in named, f"AIRFLOW_CONN_{conn_id.upper()} names no district's connection"
        assert conn["conn_type"] == named[conn_id], conn_id


def test_every_district_connection_is_defined_or_documented(compose):
    conns = compose_connections(compose)
    docs = DOCS.read_text(encoding="utf-8")
    for district in districts():
        needed = [district.powerschool_conn_id, district.submissions_conn_id]
        notifications = getattr(district, "notifications", None)
        if notifications is not None and notifications.email_on_failure:
            needed.append(notifications.smtp_conn_id)
        for conn_id in needed:
            assert conn_id in conns or f"`{conn_id}`" in docs, \
                f"{district.name}: connection {conn_id} is neither in the demo nor in {DOCS.name}"


def test_demo_connections_reach_the_sandboxes_with_their_credentials(compose, monkeypatch):
    """The compose connections, read by the real hooks through Airflow's environment backend."""
    from sandbox import processes
    from writeback.hooks.powerschool import PowerSchoolHook
    from writeback.hooks.schoolengage import SchoolEngageHook

    services = compose["services"]
    for key, value in env_of(compose["x-airflow-common"]).items():
        if key.startswith("AIRFLOW_CONN_"):
            monkeypatch.setenv(key, value)
    demo = next(d for d in districts() if d.name == "demo")

    ps = PowerSchoolHook(demo.powerschool_conn_id).get_conn()
    sandbox = services["powerschool-sandbox"]
    assert ps.base_url == f"http://powerschool-sandbox:{arg(sandbox, '--port')}"
    assert (ps.client_id, ps._client_secret) == (arg(sandbox, "--client-id"), arg(sandbox, "--client-secret"))
    assert (ps.client_id, ps._client_secret) == (processes.PS_CLIENT_ID, processes.PS_CLIENT_SECRET)

    se = SchoolEngageHook(demo.submissions_conn_id).get_conn()
    sandbox = services["schoolengage-sandbox"]
    assert se.base_url == f"http://schoolengage-sandbox:{arg(sandbox, '--port')}"
    assert se._api_key == arg(sandbox, "--api-key") == processes.SE_API_KEY

    for name in ("powerschool-sandbox", "schoolengage-sandbox"):
        assert arg(services[name], "--host") == "0.0.0.0"  # inside the container network only
        assert str(arg(services[name], "--port")) in {str(p) for p in services[name]["expose"]}


def test_sandbox_data_flows_through_one_volume(compose):
    services = compose["services"]
    generate = " ".join(command_list(services["sandbox-generate"]))
    out = re.search(r"--out (\S+)", generate).group(1)
    for name, flag in (("powerschool-sandbox", "--district"), ("schoolengage-sandbox", "--submissions")):
        assert Path(arg(services[name], flag)).parent == Path(out), name
    for name in SANDBOX_SERVICES:
        assert services[name]["volumes"] == [f"sandbox-data:{out}"], name


def pools_created(compose) -> dict[str, int]:
    pools = {}
    for line in init_script(compose).splitlines():
        words = shlex.split(line) if line.strip() else []
        if words[:3] == ["airflow", "pools", "set"]:
            pools[words[3]] = int(words[4])
    return pools


def test_init_creates_each_district_pool(compose):
    wanted = {d.pool_name: d.apply.pool_slots for d in districts()}
    assert pools_created(compose) == wanted


def test_pool_check_catches_a_renamed_pool(compose):
    broken = copy.deepcopy(compose)
    broken["services"]["airflow-init"]["command"][1] = init_script(compose).replace(
        "pools set powerschool_demo", "pools set powerschool")
    assert pools_created(broken) != {d.pool_name: d.apply.pool_slots for d in districts()}


def store_url_of(compose: dict) -> str:
    """The store's URL as the Airflow services build it: [writeback] store_conn_id names a connection."""
    from writeback.hooks.store import url_from_connection

    env = env_of(compose["x-airflow-common"])
    conn_id = env["AIRFLOW__WRITEBACK__STORE_CONN_ID"]
    assert "WRITEBACK_STORE_URL" not in env, "the store is a connection, not a URL in the environment"
    fields = compose_connections(compose)[conn_id]
    conn = types.SimpleNamespace(conn_id=conn_id, conn_type=fields["conn_type"], host=fields["host"],
                                 port=fields.get("port"), login=fields.get("login"), password=fields.get("password"),
                                 schema=fields.get("schema"), extra_dejson=fields.get("extra") or {})
    return url_from_connection(conn)


def test_store_url_points_at_the_database_the_init_script_creates(compose):
    url = make_url(store_url_of(compose))
    postgres = compose["services"]["postgres"]
    pg = env_of(postgres)
    assert (url.drivername, url.host) == ("postgresql+psycopg2", "postgres")
    assert (url.database, url.username, url.password) == (
        pg["WRITEBACK_DB_NAME"], pg["WRITEBACK_DB_USER"], pg["WRITEBACK_DB_PASSWORD"])
    assert url.database != pg["POSTGRES_DB"]
    assert "./deploy/postgres-init:/docker-entrypoint-initdb.d:ro" in postgres["volumes"]
    scripts = sorted(PG_INIT.glob("*.sh"))
    assert scripts and all("WRITEBACK_DB_NAME" in s.read_text() for s in scripts)


# --- tests: the scripts in the file, run for real where no engine is needed ----------------------------

def test_shell_scripts_parse(compose):
    bash = shutil.which("bash")
    scripts = [init_script(compose), command_list(compose["services"]["sandbox-generate"])[0]]
    scripts += [p.read_text() for p in PG_INIT.glob("*.sh")]
    for script in scripts:
        done = subprocess.run([bash, "-n"], input=script, capture_output=True, text=True)
        assert done.returncode == 0, done.stderr


def test_init_python_steps_run(compose, tmp_path):
    """The `python -c` and `python - <<PY` steps of airflow-init, against a SQLite store."""
    script = init_script(compose)
    snippets = re.findall(r"^python -c '([^']*)'$", script, re.M)
    snippets += re.findall(r"^python - <<'PY'\n(.*?)^PY$", script, re.M | re.S)
    commands = re.findall(r"^(writeback .*)$", script, re.M)
    assert len(snippets) >= 1 and commands == ["writeback store migrate"]
    # the compose store connection, pointed at a SQLite file: what `writeback store migrate` reaches
    env = dict(os.environ, PYTHONPATH=str(ROOT / "plugins"), WRITEBACK_INCLUDE=str(ROOT / "include"),
               AIRFLOW__WRITEBACK__STORE_CONN_ID="writeback_store",
               AIRFLOW_CONN_WRITEBACK_STORE=json.dumps({"conn_type": "sqlite", "host": str(tmp_path / "store.db")}))
    env.pop("WRITEBACK_STORE_URL", None)
    for cmd in [[sys.executable, "-c", code] for code in snippets] + [
            [sys.executable, "-m", "writeback.cli", *shlex.split(c)[1:]] for c in commands]:
        done = subprocess.run(cmd, env=env, cwd=tmp_path, capture_output=True, text=True, timeout=300)
        assert done.returncode == 0, done.stderr[-2000:]
    assert (tmp_path / "store.db").exists()


@pytest.mark.postgres
def test_postgres_init_script_creates_the_store_database(postgres_url, compose):
    """deploy/postgres-init against a throwaway server, then the store's migrations as the new role."""
    from sqlalchemy import create_engine, text

    from tests.conftest import _pg_bin
    from writeback.store import Store

    psql = _pg_bin("psql")
    if not psql:
        pytest.skip("psql not found")
    admin = make_url(postgres_url)
    suffix = uuid.uuid4().hex[:8]
    name, user, password = f"wb_store_{suffix}", f"wb_user_{suffix}", "pw-" + suffix
    env = dict(os.environ, PATH=f"{Path(psql).parent}:{os.environ['PATH']}", PGHOST=admin.host,
               PGPORT=str(admin.port), POSTGRES_USER=admin.username, POSTGRES_DB=admin.database,
               WRITEBACK_DB_NAME=name, WRITEBACK_DB_USER=user, WRITEBACK_DB_PASSWORD=password)
    engine = create_engine(postgres_url, isolation_level="AUTOCOMMIT")
    try:
        for script in sorted(PG_INIT.glob("*.sh")):
            done = subprocess.run(["bash", str(script)], env=env, capture_output=True, text=True, timeout=60)
            assert done.returncode == 0, done.stderr
        store_url = make_url(store_url_of(compose)).set(
            host=admin.host, port=admin.port, database=name, username=user, password=password)
        store = Store(store_url.render_as_string(hide_password=False), migrate=True)
        with store.engine.connect() as conn:
            owner = conn.execute(text("select pg_get_userbyid(datdba) from pg_database where datname = :n"),
                                 {"n": name}).scalar()
            tables = conn.execute(text("select count(*) from pg_tables where schemaname = 'public'")).scalar()
        store.engine.dispose()
        assert owner == user and tables > 0
    finally:
        with engine.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
            conn.execute(text(f'DROP ROLE IF EXISTS "{user}"'))
        engine.dispose()


@pytest.mark.integration
def test_sandboxes_start_with_the_compose_arguments(compose, tmp_path, monkeypatch):
    """sandbox-generate and both sandboxes run with the file's exact arguments (host, port and the data
    folder moved to loopback/tmp), and the compose connections authenticate against them."""
    from sandbox import processes
    from writeback.hooks.powerschool import PowerSchoolHook
    from writeback.hooks.schoolengage import SchoolEngageHook

    services = compose["services"]
    generate = re.search(r"python -m sandbox\.generate (.*)$", command_list(services["sandbox-generate"])[0], re.M)
    data = re.search(r"--out (\S+)", generate.group(1)).group(1)

    def local(args: list[str]) -> list[str]:
        args = [a.replace(data, str(tmp_path)) for a in args]
        for flag, value in (("--host", "127.0.0.1"), ("--port", "0")):
            if flag in args:
                args[args.index(flag) + 1] = value
        return args

    gen_args = local(shlex.split(generate.group(1)))
    gen_args[gen_args.index("--students") + 1] = "30"
    subprocess.run([sys.executable, "-m", "sandbox.generate", *gen_args], cwd=ROOT, check=True, capture_output=True,
                   timeout=120)
    started = []
    try:
        for name, conn_env in (("powerschool-sandbox", "AIRFLOW_CONN_POWERSCHOOL_DEMO"),
                               ("schoolengage-sandbox", "AIRFLOW_CONN_SCHOOLENGAGE_DEMO")):
            cmd = command_list(services[name])
            assert services[name]["entrypoint"] == ["python"] and cmd[0] == "-m"
            svc = processes.start_service(name, cmd[1], local(cmd[2:]), tmp_path / f"{name}.log", timeout=60)
            started.append(svc)
            conn = json.loads(env_of(compose["x-airflow-common"])[conn_env])
            parsed = urlparse(svc.url)
            conn.update(host=parsed.hostname, port=parsed.port)
            monkeypatch.setenv(conn_env, json.dumps(conn))
        demo = next(d for d in districts() if d.name == "demo")
        ok, message = PowerSchoolHook(demo.powerschool_conn_id).test_connection()
        assert ok, message
        ok, message = SchoolEngageHook(demo.submissions_conn_id).test_connection()
        assert ok, message
    finally:
        for svc in started:
            svc.stop()


def test_docker_compose_config_accepts_the_file():
    """`docker compose config` validates the file against the Compose schema; it needs no engine."""
    for cmd in (["docker", "compose"], ["docker-compose"]):
        if shutil.which(cmd[0]) and subprocess.run([*cmd, "version"], capture_output=True).returncode == 0:
            break
    else:
        pytest.skip("neither `docker compose` nor `docker-compose` is installed")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("COMPOSE_", "DOCKER_"))}
    for profile in ([], ["--profile", "demo"]):
        done = subprocess.run([*cmd, "-f", str(COMPOSE), *profile, "config", "-q"], cwd=ROOT, env=env,
                              capture_output=True, text=True, timeout=60)
        assert done.returncode == 0, done.stderr
