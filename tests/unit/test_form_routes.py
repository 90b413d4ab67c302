"""A mapping per form: the district maps form ids (or patterns) to mappings; a submission of a form no
route names is quarantined with that reason, never read with another form's mapping."""

from __future__ import annotations

from pathlib import Path

import pytest

from writeback.config import DistrictConfig, district, load_district
from writeback.domain.mapping import MappingError, parse_mapping
from writeback.domain.routing import FormRoutes
from writeback.pipeline.stages import map_submission

ROOT = Path(__file__).resolve().parents[2]


def mapping(name: str, form_id: str = ""):
    return parse_mapping({"version": 1, "name": name, "form_id": form_id,
                          "student": [{"field": "first", "target": "name.first_name"}]})


REG, KINDER, RETURNING = mapping("reg"), mapping("kinder"), mapping("returning")
ROUTES = FormRoutes("springfield", (("registration-2026", REG), ("kindergarten-*", KINDER),
                                    ("returning-*", RETURNING)))


def test_an_exact_form_id_and_a_pattern_each_find_their_mapping():
    assert ROUTES.mapping_for("registration-2026") is REG
    assert ROUTES.mapping_for("kindergarten-2026") is KINDER
    assert ROUTES.mapping_for("returning-2026-spring") is RETURNING


def test_an_unmapped_form_is_refused_naming_the_district_and_its_forms():
    reason = ROUTES.mapping_for("transportation-2026")
    assert isinstance(reason, str)
    assert "'transportation-2026' has no mapping in district springfield" in reason
    assert "registration-2026, kindergarten-*, returning-*" in reason


def test_a_submission_without_a_form_id_is_not_given_a_mapping():
    assert "(no form id) has no mapping" in ROUTES.mapping_for("")


def test_two_patterns_matching_one_form_are_ambiguous_not_guessed():
    routes = FormRoutes("d", (("k*", KINDER), ("*-2026", RETURNING)))
    reason = routes.mapping_for("kindergarten-2026")
    assert isinstance(reason, str) and "matches several patterns" in reason and "k*, *-2026" in reason


def test_an_exact_form_id_wins_over_a_pattern():
    routes = FormRoutes("d", (("*", RETURNING), ("registration-2026", REG)))
    assert routes.mapping_for("registration-2026") is REG and routes.mapping_for("other") is RETURNING


def test_map_submission_quarantines_an_unmapped_form_with_its_reason():
    [problem] = map_submission(ROUTES, "SUB-9", {"form_id": "transportation-2026", "fields": {"first": "Ana"}})
    assert (problem.submission_id, problem.field, problem.check, problem.value) == (
        "SUB-9", "form_id", "form", "transportation-2026")
    record = map_submission(ROUTES, "SUB-1", {"form_id": "kindergarten-2026",
                                              "fields": {"student_number": "1", "first": "Ana"}})
    assert (record.mapping, record.form_id) == ("kinder", "kindergarten-2026")


def test_every_mapping_once_in_route_order():
    routes = FormRoutes("d", (("a", REG), ("b", KINDER), ("c", REG)))
    assert [m.name for m in routes.mappings] == ["reg", "kinder"]


# ---------------------------------------------------------------- the district file

def base_config(**kw):
    return {"name": "springfield", "powerschool_conn_id": "ps", "submissions_conn_id": "se", **kw}


def test_a_district_names_its_forms_or_one_mapping_not_both():
    with pytest.raises(ValueError, match="not both"):
        DistrictConfig.model_validate(base_config(mapping="a.yaml", forms={"x": "a.yaml"}))
    with pytest.raises(ValueError, match="not neither"):
        DistrictConfig.model_validate(base_config())


def test_a_single_mapping_reads_the_form_its_form_id_names():
    config = DistrictConfig.model_validate(base_config(mapping="registration-2026.yaml"))
    routes = config.load_forms()
    assert [form for form, _ in routes.routes] == ["registration-2026"]
    assert isinstance(routes.mapping_for("kindergarten-2026"), str)


def test_the_demo_district_maps_four_forms():
    routes = district("demo").load_forms()
    assert {form for form, _ in routes.routes} == {"registration-2026", "returning-2026", "kindergarten-*",
                                                   "emergency-update-2026"}
    assert routes.mapping_for("kindergarten-2026").name == "kindergarten-2026"


def test_every_problem_of_every_mapping_of_a_district_is_reported_at_once(tmp_path, monkeypatch):
    include = tmp_path / "include"
    (include / "mappings").mkdir(parents=True)
    (include / "districts").mkdir()
    (include / "mappings" / "a.yaml").write_text("version: 1\nname: a\nstudent:\n  - {field: x, target: nope}\n")
    (include / "mappings" / "b.yaml").write_text("version: 1\nname: b\nname: b2\n")
    (include / "districts" / "d.yaml").write_text(
        "name: d\npowerschool_conn_id: ps\nsubmissions_conn_id: se\nforms:\n  f1: a.yaml\n  f2: b.yaml\n")
    monkeypatch.setenv("WRITEBACK_INCLUDE", str(include))
    with pytest.raises(MappingError) as err:
        load_district(include / "districts" / "d.yaml").load_forms()
    joined = "\n".join(err.value.problems)
    assert "a.yaml" in joined and "unknown target 'nope'" in joined
    assert "b.yaml:3" in joined and "'name'" in joined


def test_a_form_given_twice_in_the_district_file_is_an_error(tmp_path):
    path = tmp_path / "d.yaml"
    path.write_text("name: d\npowerschool_conn_id: ps\nsubmissions_conn_id: se\nforms:\n"
                    "  registration-2026: a.yaml\n  registration-2026: b.yaml\n")
    with pytest.raises(MappingError) as err:
        load_district(path)
    assert any(f"{path}:6" in p and f"{path}:5" in p for p in err.value.problems), err.value.problems
