"""`apply_mapping` on malformed submissions: never an exception, and a record either maps or comes back
with problems that name the record and a field the submission really has wrong."""

from __future__ import annotations

from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from writeback.domain.mapping import apply_mapping
from writeback.domain.models import FormRecord

from .strategies import hostile_text, must_quarantine, mutate, mutations, wrong_type

SETTINGS = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow,
                                                                           HealthCheck.function_scoped_fixture])


def _fields_of(mapping) -> set[str]:
    return mapping.form_fields()


@SETTINGS
@given(data=st.data(), muts=st.lists(mutations, min_size=1, max_size=6))
def test_a_mutated_submission_maps_or_names_its_faults(world, data, muts) -> None:
    base = data.draw(st.sampled_from(world.bases))
    fields = mutate(base["fields"], muts)
    result = apply_mapping(world.mapping, base["id"], fields)
    definite = [m for m in must_quarantine(fields, muts)
                if m.field not in ("home_zip", "home_state") and m.field != "student_number"
                or m.kind == "delete" or not isinstance(m.value, str)]  # the rest fail later, in the GX suite
    if isinstance(result, FormRecord):
        assert not definite, f"mapped although {definite} must quarantine it"
        assert result.submission_id == base["id"]
        return
    assert result, "an empty problem list would drop the record silently"
    readable = _fields_of(world.mapping)
    for p in result:
        assert p.submission_id == base["id"]
        assert p.field in readable, p
        assert p.reason.strip() and p.check.strip(), p
        assert len(p.value) <= 81  # the offending value, shortened for the page (80 + "…")
    touched = {m.field for m in muts} | {m.field.replace("_first_name", "_last_name") for m in muts} | {
        f"{m.field.split('_')[0]}_last_name" for m in muts if m.field.startswith("contact")}  # no name
    assert {p.field for p in result} & touched, (result, muts)


@settings(max_examples=200, deadline=None)
@given(fields=st.dictionaries(st.one_of(st.sampled_from(sorted(["student_number", "student_birthdate",
                                                                 "contact1_first_name", "contact1_last_name",
                                                                 "contact1_email", "contact1_cell_phone",
                                                                 "contact2_first_name", "contact1_emergency",
                                                                 "student_gender", "home_zip"])),
                                        st.text(max_size=20)),
                              st.one_of(hostile_text, wrong_type), max_size=12))
def test_any_flat_dictionary_maps_or_is_quarantined(world, fields: dict[str, Any]) -> None:
    result = apply_mapping(world.mapping, "SUB-fuzz", fields)
    if isinstance(result, list):
        assert result and all(p.submission_id == "SUB-fuzz" and p.field and p.reason for p in result)
    else:
        assert result.student_number  # a record without a student number is never valid


def test_an_integer_too_long_to_print_is_a_problem_not_a_crash(world) -> None:
    """Found by this campaign: `str()` of an int over 4300 digits raises ValueError (Python 3.11)."""
    result = apply_mapping(world.mapping, "SUB-big", {"student_number": 10**5000})
    assert isinstance(result, list)
    assert [(p.field, p.reason) for p in result] == [("student_number", "not a text value")]
    assert "too long" in result[0].value
