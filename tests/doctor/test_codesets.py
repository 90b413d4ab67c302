"""`writeback doctor` checks every code the mapping makes the writeback send (relationships, phone, email
and address types, states) against the district's PowerSchool CodeSet, read from the server over loopback.

PowerSchool refuses a contact write whose code its code set lacks, one record at a time at apply; the
doctor finds a mapping that emits such a code before any run (`Mom: Mommy`, a phone type the district
does not use, ...)."""

from __future__ import annotations

import copy
import re
from pathlib import Path

import pytest

from tests.doctor.conftest import CLIENT_ID, CLIENT_SECRET, MAPPING_PATH, sandbox
from writeback.cli import main

pytestmark = pytest.mark.integration


def _doctor(url: str, mapping: Path, monkeypatch, capsys) -> tuple[int, str]:
    monkeypatch.setenv("POWERSCHOOL_CLIENT_SECRET", CLIENT_SECRET)
    code = main(["doctor", "--base-url", url, "--client-id", CLIENT_ID, "--mapping", str(mapping)])
    out = capsys.readouterr()
    return code, out.out + out.err


def _status(output: str, name: str) -> str | None:
    m = re.search(rf"^\[(OK|FAIL|SKIP)\]\s+{re.escape(name)}\b", output, flags=re.M)
    return m.group(1) if m else None


def _mapping_with(tmp_path: Path, old: str, new: str) -> Path:
    text = MAPPING_PATH.read_text(encoding="utf-8")
    assert old in text
    path = tmp_path / "edited.yaml"
    path.write_text(text.replace(old, new, 1), encoding="utf-8")
    return path


def _district_with(district: dict, **codesets: list[str]) -> dict:
    out = copy.deepcopy(district)
    out["codesets"].update(codesets)
    return out


def test_the_shipped_mapping_emits_only_codes_the_district_has(district, plugin_xml, monkeypatch, capsys):
    with sandbox(district, plugin_xml) as ps:
        code, out = _doctor(ps.url, MAPPING_PATH, monkeypatch, capsys)
    assert _status(out, "code sets") == "OK", out
    assert code == 0, out


def test_a_relationship_the_code_set_lacks_is_named_with_its_place(district, plugin_xml, tmp_path, monkeypatch,
                                                                    capsys):
    mapping = _mapping_with(tmp_path, "    Mom: Mother\n", "    Mom: Mommy\n")
    with sandbox(district, plugin_xml) as ps:
        code, out = _doctor(ps.url, mapping, monkeypatch, capsys)
    assert code == 1 and _status(out, "code sets") == "FAIL", out
    assert re.search(r"Relationship.*'Mommy'", out), out
    assert "code_maps.relationship" in out and "Mom" in out, out


def test_a_phone_type_the_code_set_lacks_is_named(district, plugin_xml, monkeypatch, capsys):
    with sandbox(_district_with(district, phone_type=["Home", "Mobile"]), plugin_xml) as ps:
        code, out = _doctor(ps.url, MAPPING_PATH, monkeypatch, capsys)
    assert code == 1 and _status(out, "code sets") == "FAIL", out
    assert re.search(r"Phone.*'Work'", out), out
    assert "'Home'" not in out.split("[FAIL] code sets", 1)[1].split("\n[", 1)[0], out


def test_the_email_and_address_types_the_writeback_sends_are_checked(district, plugin_xml, monkeypatch, capsys):
    with sandbox(_district_with(district, email_type=["Work"], address_type=["Mailing"]), plugin_xml) as ps:
        code, out = _doctor(ps.url, MAPPING_PATH, monkeypatch, capsys)
    assert code == 1 and _status(out, "code sets") == "FAIL", out
    assert re.search(r"Email.*'Personal'", out), out
    assert re.search(r"Address.*'Home'", out), out


def test_a_state_code_map_value_the_code_set_lacks_is_named(district, plugin_xml, tmp_path, monkeypatch, capsys):
    text = MAPPING_PATH.read_text(encoding="utf-8")
    text = text.replace("  gender:\n", "  state:\n    California: CA\n    Calif: CF\n  gender:\n", 1)
    text = text.replace('state: {field: "contact{n}_state", transforms: [upper]}',
                        'state: {field: "contact{n}_state", transforms: [{code_map: state}]}', 1)
    mapping = tmp_path / "states.yaml"
    mapping.write_text(text, encoding="utf-8")
    with sandbox(district, plugin_xml) as ps:
        code, out = _doctor(ps.url, mapping, monkeypatch, capsys)
    assert code == 1 and _status(out, "code sets") == "FAIL", out
    assert re.search(r"State.*'CF'", out) and "'CA'" not in out.split("[FAIL] code sets", 1)[1].split("\n[", 1)[0], out


def test_an_expired_code_does_not_count(district, plugin_xml, monkeypatch, capsys):
    """A code whose EffectiveEndDate has passed is no longer offered by PowerSchool."""
    changed = copy.deepcopy(district)
    changed["codesets"]["relationship"] = [c if c != "Uncle" else {"code": "Uncle", "end_date": "2020-06-30"}
                                           for c in changed["codesets"]["relationship"]]
    with sandbox(changed, plugin_xml) as ps:
        code, out = _doctor(ps.url, MAPPING_PATH, monkeypatch, capsys)
    assert code == 1 and re.search(r"Relationship.*'Uncle'", out), out


def test_a_districts_every_form_is_checked_with_its_section_defaults(district, plugin_xml, monkeypatch, capsys):
    """`doctor --district` covers every form's mapping: the kindergarten form's father section gives new links
    the relationship Father, so a district whose code set lacks Father fails for that section too."""
    from tests.doctor.conftest import client_for
    from writeback.config import district as district_config
    from writeback.doctor import run_doctor

    mappings = district_config("demo").load_forms().mappings
    assert len(mappings) == 4
    lacking = _district_with(district, relationship=[c for c in district["codesets"]["relationship"]
                                                     if c != "Father"])
    with sandbox(lacking, None) as ps:
        report = run_doctor(client_for(ps.url, max_retries=2), mappings)
    check = report.check("code sets")
    assert check.status == "FAIL", report.render()
    text = "\n".join(check.details)
    assert "kindergarten-2026: contacts section father default_relationship" in text, text
    assert "registration-2026: code_maps.relationship" in text, text
    assert report.mapping == "registration-2026, returning-2026, kindergarten-2026, emergency-update-2026"
