"""`writeback doctor` against real sandboxes over loopback: credentials, v1 level, grants, page sizes and
throttle, each OK or FAIL with the exact fix; exit code 0 only when everything is OK."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
import requests

from tests.doctor.conftest import (
    CLIENT_ID,
    CLIENT_SECRET,
    MAPPING_PATH,
    client_for,
    sandbox,
    with_access,
    without,
)
from writeback.cli import main
from writeback.doctor import FAIL, OK, SKIP, run_doctor
from writeback.domain.mapping import load_mapping
from writeback.plugin_xml import build_plugin_xml

pytestmark = pytest.mark.integration

FIELD_LINE = re.compile(r'<field table="[A-Z_0-9]+" field="[A-Z_0-9]+" access="(?:ViewOnly|FullAccess)"/>')


def _token(url: str) -> str:
    r = requests.post(f"{url}/oauth/access_token", auth=(CLIENT_ID, CLIENT_SECRET),
                      data={"grant_type": "client_credentials"}, timeout=10)
    return r.json()["access_token"]


def _doctor(url: str, monkeypatch, capsys, mapping: Path = MAPPING_PATH, *extra: str,
            secret: str = CLIENT_SECRET) -> tuple[int, str]:
    monkeypatch.setenv("POWERSCHOOL_CLIENT_SECRET", secret)
    code = main(["doctor", "--base-url", url, "--client-id", CLIENT_ID, "--mapping", str(mapping), *extra])
    out = capsys.readouterr()
    return code, out.out + out.err


def _statuses(output: str) -> dict[str, str]:
    found = re.findall(r"^\[(OK|FAIL|SKIP)\]\s+(credentials|accessLevelV1Api|plugin grants|code sets|page sizes|throttle)",
                       output, flags=re.M)
    return {name: status for status, name in found}


def test_fully_granted_server_is_all_ok(district, plugin_xml, monkeypatch, capsys):
    with sandbox(district, plugin_xml) as ps:
        code, out = _doctor(ps.url, monkeypatch, capsys)
        token = _token(ps.url)
    assert code == 0, out
    assert _statuses(out) == dict.fromkeys(["credentials", "accessLevelV1Api", "plugin grants", "code sets",
                                            "page sizes", "throttle"], OK)
    assert "All checks OK." in out and not FIELD_LINE.search(out)
    assert "all 82 field grants present" in out  # 76 for the snapshot and the writes, 6 to read the code sets
    assert CLIENT_SECRET not in out and token not in out


def test_the_bundled_default_plugin_is_enough(district, mapping):
    with sandbox(district, None) as ps:
        report = run_doctor(client_for(ps.url, max_retries=2), mapping)
    assert report.ok and report.exit_code == 0, report.render()


def test_missing_grants_and_level_are_listed_exactly(district, plugin_xml, monkeypatch, capsys):
    dropped = [("phonenumber", "phonenumber"), ("u_students_extension", "pref_first_name")]
    xml = plugin_xml.replace('accessLevelV1Api="FULL"', 'accessLevelV1Api="READ"')
    for table, field in dropped:
        xml = without(xml, table, field)
    with sandbox(district, xml) as ps:
        code, out = _doctor(ps.url, monkeypatch, capsys)
        token = _token(ps.url)
    assert code == 1, out
    statuses = _statuses(out)
    assert statuses["accessLevelV1Api"] == FAIL and statuses["plugin grants"] == FAIL
    assert statuses["credentials"] == statuses["page sizes"] == statuses["throttle"] == OK
    assert "missing level: FULL" in out and '<oauth accessLevelV1Api="FULL"/>' in out
    assert sorted(FIELD_LINE.findall(out)) == [
        '<field table="PHONENUMBER" field="PHONENUMBER" access="FullAccess"/>',
        '<field table="U_STUDENTS_EXTENSION" field="PREF_FIRST_NAME" access="FullAccess"/>',
    ]
    assert "2 field grant(s) missing" in out and "An update to your PowerSchool plugin is required" in out
    assert CLIENT_SECRET not in out and token not in out


def test_view_only_where_full_access_is_needed_is_reported(district, mapping, plugin_xml):
    """The PowerQueries still run; the extension table's metadata and the contacts write probe catch it."""
    xml = with_access(plugin_xml, "u_students_extension", "pref_last_name", "ViewOnly")
    xml = with_access(xml, "emailaddress", "emailaddress", "ViewOnly")
    with sandbox(district, xml) as ps:
        report = run_doctor(client_for(ps.url, max_retries=2), mapping)
    assert report.exit_code == 1
    assert [(n.table, n.field, n.access) for n in report.missing_grants] == [
        ("emailaddress", "emailaddress", "FullAccess"), ("u_students_extension", "pref_last_name", "FullAccess")]
    grants = report.check("plugin grants")
    assert grants.status == FAIL and "PUT /ws/contacts/{id}/emails/{emailId}" in grants.details[0]
    assert report.check("accessLevelV1Api").status == OK


def test_no_v1_access_at_all(district, plugin_xml, monkeypatch, capsys):
    xml = plugin_xml.replace(' accessLevelV1Api="FULL"', "")  # missing attribute = no /ws/v1
    with sandbox(district, xml) as ps:
        code, out = _doctor(ps.url, monkeypatch, capsys)
    statuses = _statuses(out)
    assert code == 1 and statuses["accessLevelV1Api"] == FAIL and statuses["page sizes"] == FAIL
    assert statuses["plugin grants"] == OK  # PowerQueries are not /ws/v1
    assert "missing level: FULL" in out and not FIELD_LINE.search(out.split("[FAIL] page sizes")[0]
                                                                  .split("[OK]   plugin grants")[-1])


def test_throttled_server_gets_a_requests_per_second(district, students_only_path, monkeypatch, capsys):
    mapping = load_mapping(students_only_path)
    with sandbox(district, build_plugin_xml(mapping), min_interval_ms=1500) as ps:
        code, out = _doctor(ps.url, monkeypatch, capsys, students_only_path)
        throttled = requests.get(f"{ps.url}/_sandbox/throttle", timeout=5).json()["throttled"]
    assert code == 1, out
    statuses = _statuses(out)
    assert statuses["throttle"] == FAIL
    assert {statuses[n] for n in ("credentials", "accessLevelV1Api", "plugin grants", "page sizes")} == {OK}
    assert "Retry-After 2 s" in out
    m = re.search(r'set "requests_per_second": ([0-9.]+) in the extras', out)
    assert m, out
    assert 0.45 <= float(m.group(1)) <= 1 / 1.5  # keeps to the server's 1.5 s, not far below
    assert throttled <= 4  # only the probe (1 + at most 3 narrowing steps) hit it: the other checks were paced


def test_configured_rate_that_keeps_to_the_throttle_is_ok(district, students_only_path, monkeypatch, capsys):
    mapping = load_mapping(students_only_path)
    with sandbox(district, build_plugin_xml(mapping), min_interval_ms=150) as ps:
        code, out = _doctor(ps.url, monkeypatch, capsys, students_only_path, "--requests-per-second", "3")
    assert code == 0, out
    assert _statuses(out)["throttle"] == OK and "requests_per_second=3 keeps to it" in out


def test_bad_credentials(district, plugin_xml, monkeypatch, capsys):
    wrong = "not-the-secret-4242"
    with sandbox(district, plugin_xml) as ps:
        code, out = _doctor(ps.url, monkeypatch, capsys, secret=wrong)
    assert code == 1
    statuses = _statuses(out)
    assert statuses["credentials"] == FAIL
    assert {statuses[n] for n in ("accessLevelV1Api", "plugin grants", "page sizes", "throttle")} == {SKIP}
    assert "HTTP 401" in out and "Data Configuration" in out
    assert wrong not in out and CLIENT_SECRET not in out


def test_district_mode_uses_the_airflow_connection(district, plugin_xml, monkeypatch, capsys, tmp_path):
    include = tmp_path / "include"
    (include / "districts").mkdir(parents=True)
    (include / "mappings").mkdir()
    (include / "mappings" / "registration-2026.yaml").write_text(MAPPING_PATH.read_text())
    (include / "districts" / "doctor.yaml").write_text(
        "name: doctor_test\nmapping: registration-2026.yaml\npowerschool_conn_id: powerschool_doctor\n"
        "submissions_conn_id: se_doctor\n")
    monkeypatch.setenv("WRITEBACK_INCLUDE", str(include))
    monkeypatch.delenv("POWERSCHOOL_CLIENT_SECRET", raising=False)
    with sandbox(district, plugin_xml, min_interval_ms=100) as ps:
        host, port = ps.url.removeprefix("http://").split(":")
        monkeypatch.setenv("AIRFLOW_CONN_POWERSCHOOL_DOCTOR", json.dumps({
            "conn_type": "powerschool", "host": host, "port": int(port), "schema": "http", "login": CLIENT_ID,
            "password": CLIENT_SECRET, "extra": {"requests_per_second": 5}}))
        code = main(["doctor", "--district", "doctor_test"])
        out = capsys.readouterr().out
    assert code == 0, out
    assert "mapping registration-2026" in out and "requests_per_second=5 keeps to it" in out
    assert CLIENT_SECRET not in out


def test_base_url_mode_needs_the_secret_in_the_environment(monkeypatch, capsys):
    monkeypatch.delenv("POWERSCHOOL_CLIENT_SECRET", raising=False)
    code = main(["doctor", "--base-url", "http://127.0.0.1:9", "--client-id", CLIENT_ID,
                 "--mapping", str(MAPPING_PATH)])
    assert code == 2 and "POWERSCHOOL_CLIENT_SECRET" in capsys.readouterr().err
