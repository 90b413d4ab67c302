"""Property tests: normalisation and mapping never raise on garbage; matching and resolve are deterministic."""

from __future__ import annotations

from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.unit.builders import (
    ANA_NO,
    LUIS_NO,
    MIA_NO,
    TODAY,
    contact,
    decide,
    district,
    plan_for,
    record,
    registration_fields,
)
from writeback.domain.mapping import apply_mapping, load_mapping
from writeback.domain.matching import build_index, match_contact
from writeback.domain.models import FormRecord, RecordProblem, SubmittedContact
from writeback.domain.normalize import email_key, fold, phone_key, split_extension
from writeback.domain.resolve import ops_hash, resolve

SETTINGS = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
MAPPING = load_mapping(Path(__file__).resolve().parents[2] / "include" / "mappings" / "registration-2026.yaml")
FIELD_NAMES = sorted(MAPPING.form_fields())

garbage_text = st.one_of(
    st.text(),
    st.text(alphabet=st.characters(codec="utf-8")),
    st.text(alphabet="0123456789()-+.xX# ext\u0660\u0661\uff11", max_size=40),
    st.sampled_from(["", " ", "\x00", "x", "ext", "+", "+1", "#", "\u202e", "e\u0301", "ﬁ", "İ", "ß"]),
)
any_value = st.one_of(garbage_text, st.none(), st.booleans(), st.integers(), st.floats(allow_nan=True),
                      st.lists(st.text(max_size=3), max_size=2), st.dictionaries(st.text(max_size=3), st.integers(),
                                                                                 max_size=2), st.binary(max_size=5))


@SETTINGS
@given(garbage_text)
def test_fold_never_raises_and_is_idempotent(text):
    once = fold(text)
    assert isinstance(once, str)
    assert fold(once) == once
    assert once == once.strip() and "  " not in once


@SETTINGS
@given(garbage_text)
def test_phone_key_and_split_extension_never_raise(text):
    key = phone_key(text)
    assert isinstance(key, str)
    head, ext = split_extension(text)
    assert isinstance(head, str) and isinstance(ext, str)
    assert isinstance(email_key(text), str)


@SETTINGS
@given(st.dictionaries(st.sampled_from(FIELD_NAMES), any_value, max_size=25), st.text(max_size=10))
def test_apply_mapping_never_raises_on_garbage(fields, submission_id):
    result = apply_mapping(MAPPING, submission_id, fields)
    if isinstance(result, list):
        assert result and all(isinstance(p, RecordProblem) for p in result)
        assert all(p.submission_id == submission_id and p.field for p in result)
    else:
        assert isinstance(result, FormRecord)


@SETTINGS
@given(st.dictionaries(st.sampled_from(FIELD_NAMES), garbage_text, max_size=25))
def test_apply_mapping_never_raises_on_a_valid_form_with_garbage_in_it(overrides):
    result = apply_mapping(MAPPING, "SUB-G", registration_fields(**overrides))
    assert isinstance(result, FormRecord | list)


names = st.sampled_from(["María", "Maria", "José", "Jose", "García", "Garcia", "García-López", "Chen", "Rosa",
                         "Wei", "Carmen", "Ortiz", "", "Pedro", "Ruiz"])
phones = st.sampled_from(["", "415-555-0101", "(415) 555-0102", "415.555.0103", "4155550105", "312-555-0199"])
emails = st.sampled_from(["", "maria@example.com", "JOSE@example.com", "wei@example.com", "new@example.com"])


@st.composite
def submitted(draw):
    kinds = draw(st.lists(st.sampled_from(["Mobile", "Home", "Work"]), unique=True, max_size=3))
    numbers = {k: n for k in kinds if (n := draw(phones))}
    return contact(draw(st.integers(1, 4)), draw(names) or "X", draw(names) or "Y", phones=numbers,
                   email=draw(emails))


@SETTINGS
@given(submitted(), st.sampled_from([1, 2, 3]))
def test_matching_is_deterministic(c: SubmittedContact, dcid):
    a = district()
    b = district()
    b.persons = dict(reversed(list(b.persons.items())))  # same data, another insertion order
    b.links = list(reversed(b.links))
    first = match_contact("S", c, a.students[dcid], build_index(a), TODAY)
    again = match_contact("S", c, b.students[dcid], build_index(b), TODAY)
    assert first == again


@SETTINGS
@given(st.lists(st.tuples(st.sampled_from([ANA_NO, LUIS_NO, MIA_NO]), submitted()), min_size=1, max_size=3,
                unique_by=lambda t: t[0]))
def test_plan_and_resolve_are_deterministic_and_op_keys_unique(forms):
    def records():
        by_student: dict[str, list] = {}
        for number, c in forms:
            by_student.setdefault(number, []).append(c)
        return [record(n, *cs) for n, cs in by_student.items()]

    plan1, snap1 = plan_for(records())
    plan2, snap2 = plan_for(records())
    assert plan1 == plan2
    ops1 = resolve(plan1, decide(plan1), snap1, TODAY)
    ops2 = resolve(plan2, decide(plan2), snap2, TODAY)
    assert ops_hash(ops1) == ops_hash(ops2)
    assert len({op.key for op in ops1}) == len(ops1)
    for op in ops1:
        if op.kind == "contact_order":
            order = op.values["order"]
            assert len(set(order)) == len(order)  # nobody twice
            assert set(op.expected["order"]) <= set(order) | {
                o.person_ref for o in ops1 if o.kind == "link_delete"}  # nobody dropped
