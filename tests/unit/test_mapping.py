"""Mapping v1: loading and checking a mapping file, and applying it to one submission."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from tests.unit.builders import ANA_NO, registration_fields
from writeback.domain.mapping import MappingError, apply_mapping, load_mapping, parse_mapping
from writeback.domain.models import FormRecord, RecordProblem

ROOT = Path(__file__).resolve().parents[2]
SHIPPED = ROOT / "include" / "mappings" / "registration-2026.yaml"

# Form field names from docs/sandbox-contract.md
CONTRACT_STUDENT_FIELDS = {
    "student_number", "student_legal_first_name", "student_legal_middle_name", "student_legal_last_name",
    "student_preferred_first_name", "student_preferred_last_name", "student_gender", "student_birthdate",
    "home_street", "home_city", "home_state", "home_zip", "mailing_street", "mailing_city", "mailing_state",
    "mailing_zip", "photo_release",
}
CONTRACT_CONTACT_FIELDS = {
    "first_name", "last_name", "relationship", "cell_phone", "home_phone", "work_phone", "email", "street",
    "city", "state", "zip", "emergency", "lives_with", "custodial", "data_access", "remove",
}


def write(tmp_path: Path, text: str, name: str = "m.yaml") -> Path:
    path = tmp_path / name
    path.write_text(textwrap.dedent(text), encoding="utf-8")
    return path


@pytest.fixture(scope="module")
def shipped():
    return load_mapping(SHIPPED)


def mapped(mapping, fields, submission_id="SUB-1"):
    result = apply_mapping(mapping, submission_id, fields)
    assert isinstance(result, FormRecord), result
    return result


def problems(mapping, fields, submission_id="SUB-1") -> list[RecordProblem]:
    result = apply_mapping(mapping, submission_id, fields)
    assert isinstance(result, list), f"expected problems, got a record: {result}"
    assert result, "an empty problem list is not a quarantine"
    return result


def problem_for(found: list[RecordProblem], field: str) -> RecordProblem:
    hits = [p for p in found if p.field == field]
    assert hits, f"no problem names {field}: {found}"
    return hits[0]


# ---------------------------------------------------------------- the shipped mapping


def test_shipped_mapping_loads_and_reads_only_contract_fields(shipped):
    assert shipped.name == "registration-2026"
    slots = shipped.contact_slots()
    assert len(slots) == 4
    for n, slot in enumerate(slots, start=1):
        assert slot.last_name is not None and slot.last_name.field == f"contact{n}_last_name"
    contract = CONTRACT_STUDENT_FIELDS | {f"contact{n}_{f}" for n in range(1, 5) for f in CONTRACT_CONTACT_FIELDS}
    unknown = shipped.form_fields() - contract
    assert not unknown, f"the mapping reads fields the form does not have: {sorted(unknown)}"


def test_shipped_mapping_maps_a_full_submission(shipped):
    rec = mapped(shipped, registration_fields())
    assert rec.student_number == ANA_NO
    assert rec.student_fields["demographics.birth_date"] == "2015-03-02"
    assert rec.student_fields["addresses.physical.state_province"] == "IL"  # upper transform
    assert rec.student_fields["extension.u_students_extension.photo_release"] == "1"  # yes_no code map
    assert set(rec.review_targets) >= {"name.first_name", "name.last_name", "demographics.birth_date"}
    assert [c.slot for c in rec.contacts] == [1]
    c = rec.contacts[0]
    assert (c.first_name, c.last_name, c.relationship) == ("María", "García-López", "Mother")
    assert c.email == "Maria@Example.com"  # what gets written is what the family typed
    assert c.address is not None and c.address.state == "IL"
    assert (c.emergency, c.lives_with, c.custodial, c.data_access, c.remove) == (True, True, True, False, False)


# ---------------------------------------------------------------- checking a mapping file


BAD = """\
version: 1
name: bad
code_maps:
  relationship: {Mom: Mother}
student:
  - {field: a, target: name.nickname}
  - {field: b, target: name.first_name, transforms: [shout]}
  - {field: c, target: demographics.gender, transforms: [{code_map: genders}]}
contacts:
  slots: 2
  first_name: "c{n}_first"
  last_name: "c{n}_last"
  phones:
    Pager: "c{n}_pager"
"""


def test_every_problem_of_a_mapping_is_reported_at_once_naming_file_and_place(tmp_path):
    path = write(tmp_path, BAD)
    with pytest.raises(MappingError) as err:
        load_mapping(path)
    exc = err.value
    assert exc.source == str(path)
    assert str(path) in str(exc)
    text = "\n".join(exc.problems)
    assert "student[0] (a): unknown target 'name.nickname'" in text
    assert "student[1] (b): unknown transform 'shout'" in text
    assert "student[2] (c): code map 'genders' is not defined" in text
    assert "contacts slot 1: unknown phone type 'Pager'" in text
    assert "contacts slot 2: unknown phone type 'Pager'" in text
    assert len(exc.problems) == 5, exc.problems


def test_schema_errors_name_the_place(tmp_path):
    path = write(tmp_path, """\
        name: x
        studnet: []
        student:
          - {field: a}
        """)
    with pytest.raises(MappingError) as err:
        load_mapping(path)
    text = "\n".join(err.value.problems)
    assert "studnet" in text
    assert "student.0.target" in text


@pytest.mark.parametrize("text", ["- a\n- b\n", "just text\n", ""])
def test_a_file_that_is_not_a_yaml_mapping_is_refused(tmp_path, text):
    path = write(tmp_path, text)
    with pytest.raises(MappingError) as err:
        load_mapping(path)
    assert str(path) in str(err.value)


def test_an_unreadable_file_is_a_mapping_error_naming_it(tmp_path):
    missing = tmp_path / "nope.yaml"
    with pytest.raises(MappingError) as err:
        load_mapping(missing)
    assert str(missing) in str(err.value)
    broken = write(tmp_path, "name: [unclosed\n", "broken.yaml")
    with pytest.raises(MappingError) as err:
        load_mapping(broken)
    assert str(broken) in str(err.value)


def test_contacts_without_last_name_are_refused_template_form(tmp_path):
    path = write(tmp_path, """\
        name: nolast
        contacts:
          slots: 2
          first_name: "c{n}_first"
          email: "c{n}_email"
        """)
    with pytest.raises(MappingError) as err:
        load_mapping(path)
    assert str(path) in str(err.value)
    last = [p for p in err.value.problems if "last name is not mapped" in p]
    assert [p.split(":")[0] for p in last] == ["contacts slot 1", "contacts slot 2"]


def test_contacts_without_last_name_are_refused_explicit_slot_form(tmp_path):
    path = write(tmp_path, """\
        name: nolast
        contacts:
          slots:
            - {first_name: mom_first, last_name: mom_last}
            - {first_name: dad_first, email: dad_email}
        """)
    with pytest.raises(MappingError) as err:
        load_mapping(path)
    assert str(path) in str(err.value)
    last = [p for p in err.value.problems if "last name" in p]
    assert len(last) == 1 and last[0].startswith("contacts slot 2"), err.value.problems


def test_explicit_slot_form_with_last_names_loads_and_maps(tmp_path):
    mapping = load_mapping(write(tmp_path, """\
        name: explicit
        contacts:
          slots:
            - {first_name: mom_first, last_name: mom_last}
            - {first_name: dad_first, last_name: dad_last}
        """))
    rec = mapped(mapping, {"student_number": "1", "mom_first": "", "mom_last": "",
                           "dad_first": "Tom", "dad_last": "Li"})
    assert [(c.slot, c.first_name, c.last_name) for c in rec.contacts] == [(2, "Tom", "Li")]


def test_required_targets_cannot_be_blanked(tmp_path):
    with pytest.raises(MappingError) as err:
        parse_mapping({"name": "x", "student": [
            {"field": "first", "target": "name.first_name", "ignore_if_empty": False},
            {"field": "last", "target": "name.last_name", "ignore_if_empty": False},
        ]}, source="x.yaml")
    assert len(err.value.problems) == 2
    assert "student[0] (first)" in err.value.problems[0] and "name.first_name" in err.value.problems[0]
    # a target that may be blank accepts ignore_if_empty: false
    mapping = parse_mapping({"name": "x", "student": [
        {"field": "middle", "target": "name.middle_name", "ignore_if_empty": False}]})
    assert mapping.student[0].ignore_if_empty is False


def test_a_target_mapped_twice_is_a_problem():
    with pytest.raises(MappingError) as err:
        parse_mapping({"name": "x", "student": [{"field": "a", "target": "name.first_name"},
                                                  {"field": "b", "target": "name.first_name"}]})
    assert "student[1] (b)" in err.value.problems[0]


def test_extension_targets_are_accepted_only_on_extension_tables():
    parse_mapping({"name": "x", "student": [{"field": "a", "target": "extension.u_students_extension.x"}]})
    with pytest.raises(MappingError):
        parse_mapping({"name": "x", "student": [{"field": "a", "target": "extension.students.x"}]})


# ---------------------------------------------------------------- applying: values and transforms


def simple(**student):
    return parse_mapping({"name": "t", "code_maps": {"relationship": {"Mom": "Mother", "Tía": "Aunt"}},
                          "student": [dict(field=k, **v) for k, v in student.items()],
                          "contacts": {"slots": 2, "first_name": "c{n}_first", "last_name": "c{n}_last",
                                       "relationship": {"field": "c{n}_rel",
                                                        "transforms": [{"code_map": "relationship"}]},
                                       "phones": {"Mobile": {"field": "c{n}_cell", "transforms": ["phone"]},
                                                  "Home": {"field": "c{n}_home", "transforms": ["phone"]}},
                                       "email": {"field": "c{n}_email", "transforms": ["email"]},
                                       "flags": {"emergency": "c{n}_emergency"},
                                       "remove": "c{n}_remove"}})


def test_date_transform_converts_and_reports_bad_dates(shipped):
    rec = mapped(shipped, registration_fields(student_birthdate="12/31/2014"))
    assert rec.student_fields["demographics.birth_date"] == "2014-12-31"
    found = problems(shipped, registration_fields(student_birthdate="2014-12-31"), "SUB-77")
    p = problem_for(found, "student_birthdate")
    assert (p.submission_id, p.value, p.check) == ("SUB-77", "2014-12-31", "date")
    assert "%m/%d/%Y" in p.reason


@pytest.mark.parametrize("typed, code", [("Mom", "Mother"), ("mom", "Mother"), ("MOM", "Mother"),
                                         ("  mOm ", "Mother"), ("tía", "Aunt"), ("TÍA", "Aunt")])
def test_code_map_is_case_insensitive(typed, code):
    rec = mapped(simple(), {"student_number": "1", "c1_first": "A", "c1_last": "B", "c1_rel": typed})
    assert rec.contacts[0].relationship == code


def test_unknown_code_is_a_problem_naming_submission_field_and_value():
    found = problems(simple(), {"student_number": "1", "c1_first": "A", "c1_last": "B", "c1_rel": "Cousin"},
                     "SUB-9")
    p = problem_for(found, "c1_rel")
    assert (p.submission_id, p.value, p.check) == ("SUB-9", "Cousin", "code_map:relationship")


def test_invalid_phone_is_a_problem_naming_field_and_value():
    found = problems(simple(), {"student_number": "1", "c1_first": "A", "c1_last": "B", "c1_cell": "12"}, "S-1")
    p = problem_for(found, "c1_cell")
    assert (p.submission_id, p.value, p.check) == ("S-1", "12", "phone")


def test_invalid_email_is_a_problem_naming_field_and_value():
    found = problems(simple(), {"student_number": "1", "c2_first": "A", "c2_last": "B", "c2_email": "a@@b"},
                     "S-2")
    p = problem_for(found, "c2_email")
    assert (p.submission_id, p.value, p.check) == ("S-2", "a@@b", "email")


def test_all_problems_of_a_record_are_reported_together():
    found = problems(simple(), {"student_number": "1", "c1_first": "A", "c1_last": "B", "c1_cell": "12",
                                "c1_email": "nope", "c2_first": "C", "c2_last": "D", "c2_rel": "Cousin"})
    assert {p.field for p in found} == {"c1_cell", "c1_email", "c2_rel"}


def test_phone_extension_is_split_from_the_number(shipped):
    rec = mapped(shipped, registration_fields())
    home = next(p for p in rec.contacts[0].phones if p.type == "Home")
    assert (home.number, home.extension, home.e164) == ("415.555.0199", "12", "+14155550199")
    mobile = next(p for p in rec.contacts[0].phones if p.type == "Mobile")
    assert (mobile.number, mobile.extension) == ("(415) 555-0101", "")
    assert "Work" not in {p.type for p in rec.contacts[0].phones}  # empty answer -> no phone


def test_first_name_without_last_name_is_a_problem():
    found = problems(simple(), {"student_number": "1", "c1_first": "A", "c1_last": "B",
                                "c2_first": "Carla", "c2_last": "  "}, "S-3")
    p = problem_for(found, "c2_last")
    assert p.submission_id == "S-3" and "contact 2" in p.reason


def test_unused_slot_is_skipped_and_slots_keep_their_form_position():
    rec = mapped(simple(), {"student_number": "1", "c1_first": "", "c1_last": "",
                            "c2_first": "Carla", "c2_last": "Diaz"})
    assert [(c.slot, c.first_name) for c in rec.contacts] == [(2, "Carla")]
    rec = mapped(simple(), {"student_number": "1"})
    assert rec.contacts == []


def test_a_phone_or_email_in_a_slot_without_a_name_is_quarantined_not_dropped():
    found = problems(simple(), {"student_number": "1", "c1_first": "A", "c1_last": "B",
                                "c2_cell": "415-555-0101", "c2_email": "x@example.com"}, "S-4")
    p = problem_for(found, "c2_last")  # what is missing, with the values that would be lost
    assert p.submission_id == "S-4" and "contact 2" in p.reason and "c2_email" in p.reason and "c2_cell" in p.reason
    # pre-filled flags and codes in an unused slot are not a person's values
    rec = mapped(simple(), {"student_number": "1", "c2_emergency": "No", "c2_rel": "Mom", "c2_cell": " "})
    assert rec.contacts == []


def test_contact_values_longer_than_powerschool_allows_are_quarantined_with_their_field():
    found = problems(simple(), {"student_number": "1", "c1_first": "A" * 101, "c1_last": "B",
                                "c1_email": "a" * 95 + "@example.com"}, "S-5")
    assert {p.field for p in found} == {"c1_first", "c1_email"}
    assert all(p.check == "max_length" and "100" in p.reason for p in found)
    assert mapped(simple(), {"student_number": "1", "c1_first": "A" * 100, "c1_last": "B"}).contacts


def test_a_phone_region_or_date_format_typo_is_refused_at_load():
    base = {"name": "t", "student": [{"field": "dob", "target": "demographics.birth_date",
                                      "transforms": [{"date": "%m/%d/%Y"}]}]}
    parse_mapping(base)  # loads
    for broken, expected in (({"phone_region": "USA"}, "phone_region: 'USA'"),
                             ({"student": [{**base["student"][0], "transforms": [{"date": "MM/DD/YYYY"}]}]},
                              "date transform needs"),
                             ({"student": [{**base["student"][0], "transforms": [{"date": "%m/%d"}]}]},
                              "date transform needs")):
        with pytest.raises(MappingError) as err:
            parse_mapping({**base, **broken})
        assert any(expected in p for p in err.value.problems), err.value.problems


def test_ignore_if_empty_defaults_to_true():
    rec = mapped(simple(nick={"target": "name.middle_name"}), {"student_number": "1", "nick": ""})
    assert rec.blank_clears == []
    rec = mapped(simple(nick={"target": "name.middle_name", "ignore_if_empty": False}),
                 {"student_number": "1", "nick": ""})
    assert rec.blank_clears == ["name.middle_name"]


def test_review_fields_are_carried_to_the_record():
    rec = mapped(simple(a={"target": "name.first_name", "review": True}, b={"target": "name.last_name"}),
                 {"student_number": "1", "a": "X", "b": "Y"})
    assert rec.review_targets == ["name.first_name"]


def test_max_length_of_powerschool_target_is_a_problem(shipped):
    found = problems(shipped, registration_fields(home_state="Illinois"))
    p = problem_for(found, "home_state")
    assert p.value == "ILLINOIS" and p.check == "max_length"


def test_missing_student_number_is_a_problem(shipped):
    found = problems(shipped, registration_fields(student_number="  "), "S-4")
    p = problem_for(found, "student_number")
    assert p.submission_id == "S-4"


@pytest.mark.parametrize("value", [["Ana"], {"a": 1}, True, b"Ana", 3 + 4j])
def test_non_string_values_give_a_clear_problem(shipped, value):
    found = problems(shipped, registration_fields(student_legal_first_name=value), "S-5")
    p = problem_for(found, "student_legal_first_name")
    assert p.submission_id == "S-5" and p.check == "type" and "text" in p.reason
    assert p.value  # the offending value is shown


def test_numbers_and_missing_values_are_read_as_text(shipped):
    fields = registration_fields(student_number=100001)
    del fields["student_legal_middle_name"]
    rec = mapped(shipped, fields)
    assert rec.student_number == "100001"
    assert rec.student_fields["name.middle_name"] == ""


@pytest.mark.parametrize("typed, expected", [("Yes", True), ("y", True), ("TRUE", True), ("No", False),
                                             ("no", False), ("", None)])
def test_flags_read_yes_no(typed, expected):
    rec = mapped(simple(), {"student_number": "1", "c1_first": "A", "c1_last": "B", "c1_emergency": typed})
    assert rec.contacts[0].emergency is expected


def test_a_flag_that_is_not_yes_or_no_is_a_problem():
    found = problems(simple(), {"student_number": "1", "c1_first": "A", "c1_last": "B", "c1_emergency": "maybe"})
    assert problem_for(found, "c1_emergency").value == "maybe"


def test_remove_flag(shipped):
    rec = mapped(shipped, registration_fields(contact1_remove="Yes"))
    assert rec.contacts[0].remove is True
