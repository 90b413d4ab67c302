"""Comparison keys for names, phones, emails and addresses.

Normalised forms are for comparison only: what gets written is always the value the family typed.
"""

from __future__ import annotations

import re
import unicodedata
from functools import lru_cache

import phonenumbers
from email_validator import EmailNotValidError, validate_email

_PUNCT = re.compile(r"[^\w\s]", re.UNICODE)
_SPACE = re.compile(r"\s+")


def fold(text: str) -> str:
    """Case-, accent- and punctuation-insensitive form of a text: 'García-López' -> 'garcia lopez'."""
    decomposed = unicodedata.normalize("NFKD", text or "")
    stripped = "".join(ch for ch in decomposed if not unicodedata.combining(ch))
    return _SPACE.sub(" ", _PUNCT.sub(" ", stripped.casefold())).strip()


def name_key(first: str, last: str) -> tuple[str, str]:
    return fold(first), fold(last)


@lru_cache(maxsize=65536)
def phone_key(number: str, region: str = "US") -> str:
    """E.164 form of a phone number, or its bare digits when it cannot be parsed. Extensions dropped."""
    if not number or not number.strip():
        return ""
    try:
        parsed = phonenumbers.parse(number, region)
        if phonenumbers.is_possible_number(parsed):
            return phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.E164)
    except phonenumbers.NumberParseException:
        pass
    return re.sub(r"\D", "", number.split("x")[0])


def split_extension(number: str, region: str = "US") -> tuple[str, str]:
    """'415-555-0101 x12' -> ('415-555-0101', '12'); the number part keeps the family's format."""
    text = (number or "").strip()
    try:
        parsed = phonenumbers.parse(text, region)
    except phonenumbers.NumberParseException:
        return text, ""
    ext = parsed.extension or ""
    if not ext:
        return text, ""
    head = re.split(r"(?i)\s*(?:ext\.?|extension|x|#)\s*\d+\s*$", text)[0].strip()
    return head, ext


def is_valid_phone(number: str, region: str = "US") -> bool:
    try:
        return phonenumbers.is_possible_number(phonenumbers.parse(number, region))
    except phonenumbers.NumberParseException:
        return False


def email_key(address: str) -> str:
    return (address or "").strip().casefold()


def email_problem(address: str) -> str | None:
    """None when the address is syntactically valid; otherwise the reason, for the quarantine."""
    try:
        validate_email(address, check_deliverability=False)
    except EmailNotValidError as exc:
        return str(exc)
    return None


_STREET_WORDS = {
    "street": "st", "st.": "st", "avenue": "ave", "av": "ave", "road": "rd", "drive": "dr",
    "lane": "ln", "court": "ct", "boulevard": "blvd", "place": "pl", "terrace": "ter",
    "apartment": "apt", "suite": "ste", "unit": "unit", "north": "n", "south": "s", "east": "e", "west": "w",
}


def address_key(street: str, postal_code: str = "") -> str:
    words = [_STREET_WORDS.get(w, w) for w in fold(street).split()]
    return " ".join(words) + ("|" + postal_code.strip()[:5] if postal_code else "")
