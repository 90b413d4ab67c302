"""A YAML key given twice in a mapping or district file is an error naming both places (file:line).

YAML keeps the last of two equal keys silently: `Mom: Mother` then `Mom: Father` maps every Mom to Father,
a second `student:` section leaves only its own fields, a second `Mobile:` writes the work number as the
mobile one. Every entry point that reads these files (mappings check, plugin-xml, doctor, the DAG
factory) goes through one loader that refuses them.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from writeback.cli import main
from writeback.config import load_district
from writeback.domain.mapping import MappingError, load_mapping

ROOT = Path(__file__).resolve().parents[2]
SHIPPED = ROOT / "include" / "mappings" / "registration-2026.yaml"
DEMO = ROOT / "include" / "districts" / "demo.yaml"


def line_of(text: str, needle: str, start: int = 1) -> int:
    """The 1-based number of the first line at or after `start` that contains `needle`."""
    for n, line in enumerate(text.splitlines(), start=1):
        if n >= start and needle in line:
            return n
    raise AssertionError(f"{needle!r} not in the text")


def insert_after(text: str, needle: str, new_line: str) -> str:
    lines = text.splitlines(keepends=True)
    n = line_of(text, needle)
    return "".join(lines[:n] + [new_line + "\n"] + lines[n:])


def check_cli(path: Path, capsys) -> tuple[int, str]:
    code = main(["mappings", "check", str(path)])
    out = capsys.readouterr()
    return code, out.out + out.err


def names_both(output: str, path: Path, first: int, second: int) -> bool:
    return f"{path}:{first}" in output and f"{path}:{second}" in output


def test_a_code_map_key_given_twice_names_both_lines(tmp_path, capsys):
    text = insert_after(SHIPPED.read_text(encoding="utf-8"), "    Mom: Mother", "    Mom: Father")
    path = tmp_path / "mom-twice.yaml"
    path.write_text(text, encoding="utf-8")
    first, second = line_of(text, "Mom: Mother"), line_of(text, "Mom: Father")
    code, out = check_cli(path, capsys)
    assert code == 1, out
    assert names_both(out, path, first, second), out
    assert "'Mom'" in out and "code_maps.relationship" in out, out


def test_a_second_student_section_names_both_lines(tmp_path, capsys):
    text = SHIPPED.read_text(encoding="utf-8") + "\nstudent:\n  - {field: home_city, target: addresses.physical.city}\n"
    path = tmp_path / "two-students.yaml"
    path.write_text(text, encoding="utf-8")
    first = line_of(text, "student:")
    second = line_of(text, "student:", start=first + 1)
    code, out = check_cli(path, capsys)
    assert code == 1, out
    assert names_both(out, path, first, second), out
    assert "'student'" in out


def test_a_phone_type_given_twice_names_both_lines(tmp_path, capsys):
    text = insert_after(SHIPPED.read_text(encoding="utf-8"), 'Work: {field: "contact{n}_work_phone"',
                        '    Mobile: {field: "contact{n}_work_phone", transforms: [phone]}')
    path = tmp_path / "mobile-twice.yaml"
    path.write_text(text, encoding="utf-8")
    first = line_of(text, "Mobile:")
    second = line_of(text, "Mobile:", start=first + 1)
    code, out = check_cli(path, capsys)
    assert code == 1, out
    assert names_both(out, path, first, second), out
    assert "contacts.phones" in out


def test_a_key_twice_inside_a_flow_mapping_is_refused(tmp_path):
    path = tmp_path / "flow.yaml"
    path.write_text("version: 1\nname: flow\nstudent:\n"
                    "  - {field: home_city, target: addresses.physical.city, field: home_zip}\n", encoding="utf-8")
    with pytest.raises(MappingError) as err:
        load_mapping(path)
    assert any(re.search(rf"{re.escape(str(path))}:4:\d+.*'field'.*{re.escape(str(path))}:4:\d+", p)
               for p in err.value.problems), err.value.problems


def test_every_duplicate_is_reported_at_once(tmp_path):
    text = insert_after(SHIPPED.read_text(encoding="utf-8"), "    Mom: Mother", "    Mom: Father")
    text = insert_after(text, "    Dad: Father", "    Dad: Mother")
    path = tmp_path / "two-dups.yaml"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(MappingError) as err:
        load_mapping(path)
    joined = "\n".join(err.value.problems)
    assert "'Mom'" in joined and "'Dad'" in joined


def test_code_map_keys_equal_but_for_case_are_refused(tmp_path):
    """Code maps compare the typed value case-insensitively, so `Mom` and `MOM` are one key."""
    text = insert_after(SHIPPED.read_text(encoding="utf-8"), "    Mom: Mother", "    MOM: Father")
    path = tmp_path / "mom-case.yaml"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(MappingError) as err:
        load_mapping(path)
    assert any("'Mom'" in p and "'MOM'" in p for p in err.value.problems), err.value.problems


def test_anchors_and_merge_keys_are_not_duplicates(tmp_path):
    path = tmp_path / "merge.yaml"
    path.write_text("version: 1\nname: merge\n"
                    "base: &base {field: home_city, target: addresses.physical.city}\n"
                    "student:\n  - <<: *base\n    target: addresses.mailing.city\n", encoding="utf-8")
    with pytest.raises(MappingError) as err:  # `base` is no mapping key: refused, but not as a duplicate
        load_mapping(path)
    assert not any("duplicate" in p for p in err.value.problems), err.value.problems


def test_a_district_file_key_given_twice_names_both_lines(tmp_path):
    text = DEMO.read_text(encoding="utf-8") + "schedule: \"0 3 * * *\"\n"
    path = tmp_path / "demo.yaml"
    path.write_text(text, encoding="utf-8")
    first = line_of(text, "schedule:")
    second = line_of(text, "schedule:", start=first + 1)
    with pytest.raises(MappingError) as err:
        load_district(path)
    assert any(f"{path}:{first}" in p and f"{path}:{second}" in p for p in err.value.problems), err.value.problems


def test_plugin_xml_refuses_a_mapping_with_a_key_twice(tmp_path, capsys):
    text = insert_after(SHIPPED.read_text(encoding="utf-8"), "    Mom: Mother", "    Mom: Father")
    path = tmp_path / "mom-twice.yaml"
    path.write_text(text, encoding="utf-8")
    out_file = tmp_path / "plugin.xml"
    code = main(["plugin-xml", str(path), "--out", str(out_file)])
    out = capsys.readouterr()
    assert code == 2 and not out_file.exists()
    assert names_both(out.err, path, line_of(text, "Mom: Mother"), line_of(text, "Mom: Father")), out.err


def test_doctor_refuses_a_mapping_with_a_key_twice_before_calling_powerschool(tmp_path, capsys, monkeypatch):
    text = insert_after(SHIPPED.read_text(encoding="utf-8"), "    Mom: Mother", "    Mom: Father")
    path = tmp_path / "mom-twice.yaml"
    path.write_text(text, encoding="utf-8")
    monkeypatch.setenv("POWERSCHOOL_CLIENT_SECRET", "unused")
    # port 9 (discard) on loopback: a call would fail differently; the mapping must be refused first
    code = main(["doctor", "--base-url", "http://127.0.0.1:9", "--client-id", "c", "--mapping", str(path)])
    out = capsys.readouterr()
    assert code == 2, out
    assert names_both(out.err, path, line_of(text, "Mom: Mother"), line_of(text, "Mom: Father")), out.err
