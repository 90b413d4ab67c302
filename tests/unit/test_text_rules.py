"""The text rules every stage shares (`domain/normalize.py`): one clean form of a typed value (NFC, no
format or control characters, every run of any Unicode space one space), an invisible value is a missing
one, and a phone number must be a real one for the district's region. Examples, then properties."""

from __future__ import annotations

import unicodedata
from pathlib import Path

from hypothesis import given, settings
from hypothesis import strategies as st

from tests.unit.builders import ANA_NO, district, registration_fields
from writeback.domain.mapping import apply_mapping, load_mapping
from writeback.domain.models import FieldStatus, FormRecord, RecordProblem
from writeback.domain.normalize import clean_text, fold, is_valid_phone, phone_key, same_text
from writeback.domain.plan import diff_student_fields
from writeback.quality import check_records

MAPPING = load_mapping(Path(__file__).resolve().parents[2] / "include" / "mappings" / "registration-2026.yaml")
SETTINGS = settings(max_examples=300, deadline=None)

FORMAT = "\u200b\u200e\u200f\u2060\u2061\u2066\u2069\u202a\u202e\ufeff\u00ad\u180e"  # Cf, never a spelling
SPACES = " \t\n\r\u00a0\u1680\u2000\u2002\u2007\u2009\u200a\u2028\u2029\u202f\u205f\u3000\x0b\x0c\x85"


# ---------------------------------------------------------------- examples


def test_the_values_of_the_report_are_the_ones_we_mean():
    assert clean_text("Jose\u0301\u00a0Mari\u0301a") == "José María"
    assert clean_text("  Renée \u2009\u00a0 Claire\n") == "Renée Claire"
    assert clean_text("\u200b\u00a0\u2060") == ""
    assert clean_text("Gar\u200bcía\u00ad") == "García"
    assert clean_text("\u202eniaM\u202c") == "niaM"  # a bidi override is removed, never obeyed
    assert clean_text("Ana\x00\x07") == "Ana"
    assert clean_text("\u3164") == "" and clean_text("\u2800") == ""  # fillers that render as nothing


def test_a_joiner_inside_a_word_is_part_of_its_spelling():
    persian = "\u0645\u06cc\u200c\u0631\u0632\u0627"  # Mi-rza, with the zero-width non-joiner Persian writes
    assert clean_text(persian) == persian
    assert clean_text("\u200c" + persian + "\u200d") == persian  # at the ends it joins nothing


def test_an_invisible_character_does_not_split_a_name_for_matching():
    assert fold("Gar\u200bcía") == fold("García") == "garcia"
    assert fold("\u0645\u06cc\u200c\u0631\u0632\u0627") == fold("\u0645\u06cc\u0631\u0632\u0627")


def test_equal_after_normalisation_means_the_same_text():
    assert same_text("José María", "Jose\u0301\u00a0\u00a0Mari\u0301a ")
    assert not same_text("José", "Jose")  # an accent is a different spelling: that is a change


def test_a_phone_number_must_exist_for_the_region():
    assert is_valid_phone("(415) 555-0101") and is_valid_phone("415.555.0199 x12")
    for fake in ("000-000-0000", "123-456-7890", "555-555-5555", "(111) 111-1111", "12", "hello"):
        assert not is_valid_phone(fake), fake
    assert is_valid_phone("+44 20 7946 0018")  # a family abroad: valid where it is
    assert is_valid_phone("020 7946 0018", "GB") and not is_valid_phone("020 7946 0018", "US")


def test_the_mapping_quarantines_an_impossible_phone_naming_the_field():
    problems = apply_mapping(MAPPING, "SUB-1", registration_fields(contact1_home_phone="000-000-0000"))
    assert isinstance(problems, list)
    assert [(p.field, p.reason) for p in problems] == [("contact1_home_phone", "not a valid phone number")]


def test_an_invisible_last_name_is_a_missing_last_name():
    problems = apply_mapping(MAPPING, "SUB-1", registration_fields(contact1_last_name="\u200b\u00a0"))
    assert isinstance(problems, list)
    assert [p.field for p in problems] == ["contact1_last_name"] and "no last name" in problems[0].reason


def test_an_invisible_student_name_never_blanks_powerschool():
    record = apply_mapping(MAPPING, "SUB-1", registration_fields(student_legal_last_name="\u2060\u200b"))
    assert isinstance(record, FormRecord) and record.student_fields["name.last_name"] == ""
    change = next(c for c in diff_student_fields(record, district().students[1]) if c.target == "name.last_name")
    assert change.status == FieldStatus.KEEP and change.new == "García"


def test_a_decomposed_name_with_no_break_spaces_keeps_powerschools_spelling():
    snapshot = district()
    snapshot.students[1].values["name.first_name"] = "Ana María"
    record = apply_mapping(MAPPING, "SUB-1", registration_fields(student_legal_first_name="Ana\u00a0Mari\u0301a"))
    assert record.student_fields["name.first_name"] == "Ana María"  # what would be written is NFC
    change = next(c for c in diff_student_fields(record, snapshot.students[1]) if c.target == "name.first_name")
    assert change.status == FieldStatus.KEEP and not change.needs_review


def test_powerschools_own_odd_spacing_is_not_a_change_either():
    snapshot = district()
    snapshot.students[1].values["name.first_name"] = "Ana  María "  # typed that way into PowerSchool long ago
    record = apply_mapping(MAPPING, "SUB-1", registration_fields(student_legal_first_name="Ana María"))
    change = next(c for c in diff_student_fields(record, snapshot.students[1]) if c.target == "name.first_name")
    assert change.status == FieldStatus.KEEP


def test_quality_catches_what_a_mapping_without_the_rules_lets_through():
    """A record built without the phone transform or the text rules (an older mapping, a hand-made record)
    still does not pass: quality applies the same rules."""
    record = apply_mapping(MAPPING, "SUB-1", registration_fields())
    record.contacts[0].last_name = "\u200b"
    record.contacts[0].phones[0].number = "000-000-0000"
    problems = check_records([record], {ANA_NO}, region="US")
    assert {(p.field, p.reason) for p in problems} >= {
        ("contact1.last_name", "contact 1 last_name is required"),
        ("contact1.phones.Mobile", "contact 1 Mobile phone is not a valid phone number")}
    assert all(isinstance(p, RecordProblem) and p.submission_id == "SUB-1" for p in problems)


# ---------------------------------------------------------------- properties

names = st.text(alphabet=st.characters(codec="utf-8", exclude_categories=["Cs"]), max_size=30)
letters = st.text(alphabet=st.characters(categories=["Lu", "Ll", "Lo", "Mn"]), min_size=1, max_size=8)


@SETTINGS
@given(names)
def test_clean_text_is_idempotent_nfc_and_single_spaced(text):
    once = clean_text(text)
    assert clean_text(once) == once
    assert unicodedata.is_normalized("NFC", once)
    assert once == once.strip() and "  " not in once
    assert all(ch == " " or not ch.isspace() for ch in once)
    assert all(unicodedata.category(ch) not in {"Cc", "Zl", "Zp"} for ch in once)
    assert all(unicodedata.category(ch) != "Cf" or ch in "\u200c\u200d" for ch in once)


@SETTINGS
@given(st.lists(letters, min_size=1, max_size=4), st.data())
def test_any_spaces_and_invisible_characters_give_the_same_clean_text(words, data):
    plain = " ".join(words)
    noisy = ""
    for word in words:
        noisy += data.draw(st.text(alphabet=SPACES, min_size=1, max_size=3))
        for ch in word:  # a format character before any letter: never part of the spelling
            noisy += data.draw(st.text(alphabet=FORMAT, max_size=1)) + ch
    noisy += data.draw(st.text(alphabet=SPACES + FORMAT, max_size=3))
    assert clean_text(noisy) == clean_text(plain)
    assert clean_text(unicodedata.normalize("NFD", noisy)) == clean_text(plain)
    assert same_text(noisy, plain)


@SETTINGS
@given(st.text(alphabet=SPACES + FORMAT + "\u3164\u2800\x00\x1b", max_size=12))
def test_a_value_of_nothing_visible_is_empty(text):
    assert clean_text(text) == ""


@SETTINGS
@given(st.from_regex(r"\A[2-9][0-9]{2}[2-9][0-9]{6}\Z"), st.sampled_from(["{a}-{b}-{c}", "({a}) {b}-{c}", "{a}.{b}.{c}",
                                                                     "+1 {a} {b} {c}", "1-{a}-{b}-{c}"]))
def test_a_valid_number_stays_valid_in_any_format_and_keys_alike(digits, shape):
    typed = shape.format(a=digits[:3], b=digits[3:6], c=digits[6:])
    assert is_valid_phone(typed) == is_valid_phone(digits)
    assert phone_key(typed) == phone_key(digits)


@SETTINGS
@given(st.from_regex(r"\A(?:[01][0-9]{9}|[0-9]{3}[01][0-9]{6})\Z").filter(lambda d: not d.startswith("011")))
def test_an_area_code_or_exchange_starting_with_0_or_1_is_never_valid_in_the_us(digits):
    # (011 is the US's international prefix: "011-690-2200" dials abroad, a number of its own)
    assert not is_valid_phone(f"{digits[:3]}-{digits[3:6]}-{digits[6:]}")


def test_an_exchange_starting_with_0_is_invalid_in_every_plus_one_region():
    # phonenumbers' metadata for the Dominican Republic (809, 829, 849) takes 809-000-0000; the plan of +1 does not
    assert not is_valid_phone("809-000-0000") and not is_valid_phone("+1 829 100 1234")
    assert is_valid_phone("809-555-0134") and is_valid_phone("+1 809 222 0134")
