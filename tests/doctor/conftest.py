"""Fixtures for the plugin.xml and doctor tests: a generated district and real sandboxes over loopback."""

from __future__ import annotations

import contextlib
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests

from sandbox.generate import build_all
from sandbox.powerschool.server import start_in_thread
from writeback.domain.mapping import load_mapping
from writeback.plugin_xml import build_plugin_xml
from writeback.powerschool import PowerSchoolClient

ROOT = Path(__file__).resolve().parents[2]
MAPPING_PATH = ROOT / "include" / "mappings" / "registration-2026.yaml"
CLIENT_ID = "doctor-client"
CLIENT_SECRET = "doctor-secret-9f3a71"  # noqa: S105 - a test secret; the tests assert it is never printed

STUDENTS_ONLY_YAML = """\
version: 1
name: students-only
student:
  - {field: student_legal_first_name, target: name.first_name}
  - {field: student_preferred_first_name, target: extension.u_students_extension.pref_first_name}
  - {field: home_city, target: addresses.physical.city}
"""


@pytest.fixture(scope="session")
def district() -> dict[str, Any]:
    return build_all(12, 7)[0]


@pytest.fixture(scope="session")
def mapping():
    return load_mapping(MAPPING_PATH)


@pytest.fixture(scope="session")
def plugin_xml(mapping) -> str:
    return build_plugin_xml(mapping)


@pytest.fixture()
def students_only_path(tmp_path: Path) -> Path:
    path = tmp_path / "students-only.yaml"
    path.write_text(STUDENTS_ONLY_YAML, encoding="utf-8")
    return path


@contextlib.contextmanager
def sandbox(district: dict[str, Any], plugin_xml: str | None, **kw: Any) -> Iterator[Any]:
    handle = start_in_thread(district, client_id=CLIENT_ID, client_secret=CLIENT_SECRET, plugin_xml=plugin_xml, **kw)
    try:
        yield handle
    finally:
        handle.stop()


def client_for(url: str, secret: str = CLIENT_SECRET, **kw: Any) -> PowerSchoolClient:
    return PowerSchoolClient(url, CLIENT_ID, secret, **{"max_retries": 0, **kw})


def install_plugin(url: str, xml: str) -> None:
    r = requests.put(f"{url}/_sandbox/plugin", data=xml.encode(), timeout=10)
    assert r.status_code == 200, r.text


def field_re(table: str, field: str) -> re.Pattern[str]:
    return re.compile(rf'\n\s*<field table="{table.upper()}" field="{field.upper()}" access="[A-Za-z]+"/>')


def without(xml: str, table: str, field: str) -> str:
    out, n = field_re(table, field).subn("", xml)
    assert n == 1, f"{table}.{field} not in the plugin"
    return out


def with_access(xml: str, table: str, field: str, access: str) -> str:
    line = f'<field table="{table.upper()}" field="{field.upper()}" access="{access}"/>'
    out, n = field_re(table, field).subn("\n    " + line, xml)
    assert n == 1
    return out
