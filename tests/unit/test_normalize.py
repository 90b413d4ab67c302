"""Comparison keys: names fold accents, case and punctuation; phones compare by E.164; emails by case."""

from __future__ import annotations

import pytest

from writeback.domain.normalize import (
    address_key,
    email_key,
    email_problem,
    fold,
    is_valid_phone,
    name_key,
    phone_key,
    split_extension,
)


@pytest.mark.parametrize("a, b", [
    ("García", "garcia"),
    ("GARCÍA", "Garcia"),
    ("José", "JOSE"),
    ("Zoë", "zoe"),
    ("Ñúñez", "nunez"),
    ("  María   Luisa ", "maria luisa"),
    ("O'Brien", "O Brien"),
    ("St. John", "st john"),
    ("Straße", "STRASSE"),  # casefold, not lower
])
def test_fold_ignores_accents_case_and_punctuation(a, b):
    assert fold(a) == fold(b)


@pytest.mark.parametrize("a, b", [("García", "Garcíaz"), ("Ana", "Anna"), ("Lee", "Li")])
def test_fold_keeps_different_names_apart(a, b):
    assert fold(a) != fold(b)


def test_hyphenated_names_fold_to_their_parts():
    assert fold("García-López") == "garcia lopez"
    assert fold("García-López") == fold("Garcia Lopez") == fold("GARCIA - LOPEZ")
    assert fold("García-López") != fold("García")
    assert name_key("Mary-Jane", "Smith-Jones") == ("mary jane", "smith jones")


def test_fold_of_nothing_is_empty():
    assert fold("") == "" and fold("  ") == "" and fold("-'.") == ""


@pytest.mark.parametrize("typed", ["(415) 555-0101", "415-555-0101", "415.555.0101", "4155550101",
                                   "+1 415 555 0101", "1-415-555-0101", " 415 555 0101 ", "+14155550101"])
def test_phone_formats_are_equal_after_phone_key(typed):
    assert phone_key(typed) == "+14155550101"


def test_different_numbers_have_different_keys():
    assert phone_key("415-555-0101") != phone_key("415-555-0102")
    assert phone_key("") == "" and phone_key("   ") == ""


def test_phone_key_drops_the_extension_split_extension_keeps_it():
    assert phone_key("415-555-0101 x12") == phone_key("415-555-0101")
    assert split_extension("415-555-0101 x12") == ("415-555-0101", "12")
    assert split_extension("(415) 555-0101 ext. 7") == ("(415) 555-0101", "7")
    assert split_extension("415.555.0101 extension 345") == ("415.555.0101", "345")
    assert split_extension("415-555-0101") == ("415-555-0101", "")
    assert split_extension("not a phone") == ("not a phone", "")


def test_phone_key_of_unparseable_text_is_its_digits():
    assert phone_key("call me") == ""
    assert phone_key("12") == "12"


def test_is_valid_phone():
    assert is_valid_phone("(415) 555-0101")
    assert not is_valid_phone("12")
    assert not is_valid_phone("hello")


def test_email_is_case_insensitive_and_trimmed():
    assert email_key("Maria@Example.COM ") == email_key("maria@example.com")
    assert email_key("maria@example.com") != email_key("mario@example.com")
    assert email_key("") == ""


def test_email_problem():
    assert email_problem("maria@example.com") is None
    assert email_problem("Maria@Example.com") is None
    for bad in ("maria", "maria@", "@example.com", "a@@b.com", "maria@example"):
        assert email_problem(bad), bad


def test_address_key_ignores_street_word_forms_and_zip_plus_four():
    assert address_key("12 Oak Street", "62701") == address_key("12 oak st.", "62701-1234")
    assert address_key("5 North Elm Avenue") == address_key("5 N Elm Ave")
    assert address_key("12 Oak Street", "62701") != address_key("14 Oak Street", "62701")
