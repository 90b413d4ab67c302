"""The text rules every stage shares, and comparison keys for names, phones, emails and addresses.

`clean_text` is the one form a typed value is compared and written in (the mapping applies it to every
value, quality and the plan compare with it, apply refuses a value not in it); `is_valid_phone` the one
test of a phone number. The comparison keys (`fold`, `phone_key`, ...) are for comparison only: what gets
written is the family's value in its clean form.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable
from functools import lru_cache

import phonenumbers
from email_validator import EmailNotValidError, validate_email

_PUNCT = re.compile(r"[^\w\s]", re.UNICODE)
_SPACE = re.compile(r"\s+")


# Characters that render as nothing although Unicode does not call them format characters: Hangul
# fillers, the braille blank, the combining grapheme joiner and Khmer's invisible inherent vowels.
_INVISIBLE = frozenset("\u115f\u1160\u3164\uffa0\u2800\u034f\u17b4\u17b5")
_JOINERS = frozenset("\u200c\u200d")  # zero-width (non-)joiner: part of a spelling between two letters


def _invisible(ch: str) -> bool:
    """A character nobody sees: a format (Cf) or control (Cc) character, or a filler (not whitespace:
    that is collapsed, not removed)."""
    return ch in _INVISIBLE or (unicodedata.category(ch) in ("Cf", "Cc") and not ch.isspace())


def _letter(ch: str) -> bool:
    return unicodedata.category(ch)[0] in "LM"


@lru_cache(maxsize=1 << 16)
def clean_text(text: str) -> str:
    """The form of a typed value that is compared and written: format and control characters removed
    (zero-width spaces, bidi controls, soft hyphens, byte-order marks — but a zero-width (non-)joiner
    between two letters stays: Persian and Indic spellings need it), Unicode NFC, and every run of
    whitespace — any Unicode space, tab or line break — one ASCII space, none at the ends.
    An invisible value is therefore the empty string: a missing value."""
    if not text:
        return ""
    if text.isascii() and text.isprintable() and "  " not in text and text == text.strip():
        return text  # the common case, already clean
    kept = [ch for i, ch in enumerate(text) if not _invisible(ch) or (
        ch in _JOINERS and 0 < i < len(text) - 1 and _letter(text[i - 1]) and _letter(text[i + 1]))]
    return " ".join(unicodedata.normalize("NFC", "".join(kept)).split())


def same_text(a: str, b: str) -> bool:
    """Equal after normalisation: a submitted value that is the same text as PowerSchool's stays."""
    return clean_text(a or "") == clean_text(b or "")


@lru_cache(maxsize=1 << 18)  # names, cities and streets repeat: at district scale most folds are hits
def fold(text: str) -> str:
    """Case-, accent- and punctuation-insensitive form of a text: 'García-López' -> 'garcia lopez'."""
    decomposed = unicodedata.normalize("NFKD", text or "")
    # no accents, and nothing invisible (joiners included: a comparison key has no spelling to keep)
    stripped = "".join(ch for ch in decomposed if not unicodedata.combining(ch) and not _invisible(ch))
    return _SPACE.sub(" ", _PUNCT.sub(" ", stripped.casefold())).strip()


def name_key(first: str, last: str) -> tuple[str, str]:
    return fold(first), fold(last)


# The North American Numbering Plan: a clean 10-digit number (optionally +1 / 1-) needs no full parse.
_NANP_REGIONS = frozenset({"US", "CA", "PR", "GU", "VI", "AS", "MP", "AG", "AI", "BB", "BM", "BS", "DM", "DO",
                           "GD", "JM", "KN", "KY", "LC", "MS", "SX", "TC", "TT", "VC", "VG"})
_NANP_SHAPE = re.compile(r"^[2-9]\d{2}[2-9]\d{6}$")  # NPA-NXX-XXXX, the North American Numbering Plan
_NANP_CLEAN = re.compile(r"^\s*(?:\+\s?1|1)?[\s.\-]?\(?([2-9]\d{2})\)?[\s.\-]?([2-9]\d{2})[\s.\-]?(\d{4})\s*$")


@lru_cache(maxsize=262144)
def phone_key(number: str, region: str = "US") -> str:
    """E.164 form of a phone number, or its bare digits when it cannot be parsed. Extensions dropped."""
    if not number or not number.strip():
        return ""
    if region in _NANP_REGIONS:
        clean = _NANP_CLEAN.match(number)
        if clean:  # the same answer phonenumbers gives, ~50x faster (matters at district scale)
            return "+1" + "".join(clean.groups())
    return _phone_key_slow(number, region)


def _phone_key_slow(number: str, region: str) -> str:
    try:
        parsed = phonenumbers.parse(number, region)
        if phonenumbers.is_possible_number(parsed):
            return phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.E164)
    except phonenumbers.NumberParseException:
        pass
    return re.sub(r"\D", "", number.split("x")[0])


def phone_match_keys(numbers: Iterable[str], region: str = "US") -> list[str]:
    """phone_match_key of each number; a clean North American number takes phone_key's shortcut inline
    (the same regular expression, the same answer) instead of a cached call per number (a snapshot's
    whole list of phones at once)."""
    if region not in _NANP_REGIONS:
        return [phone_match_key(n, region) for n in numbers]
    clean = _NANP_CLEAN.match
    return [("+1" + "".join(m.groups())) if n and (m := clean(n)) else phone_match_key(n, region)
            for n in numbers]


def phone_match_key(number: str, region: str = "US") -> str:
    """The phone key matching compares: '' for fragments too short to identify anybody (under 7 digits)."""
    key = phone_key(number, region)  # "+" and digits, or digits only
    return key if len(key) - key.startswith("+") >= 7 else ""


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


@lru_cache(maxsize=1 << 16)
def is_valid_phone(number: str, region: str = "US") -> bool:
    """A number that can exist: read with the district's region as the default (a number with a country
    code is valid where it belongs), then checked against the numbering plan (phonenumbers'
    is_valid_number), not only its length: 000-000-0000 and 123-456-7890 have the shape of a US number
    and are none."""
    try:
        parsed = phonenumbers.parse(number, region)
    except phonenumbers.NumberParseException:
        return False
    if parsed.country_code == 1 and not _NANP_SHAPE.match(str(parsed.national_number)):
        # the plan of all of +1: neither the area code nor the exchange starts with 0 or 1. phonenumbers'
        # metadata for some +1 regions (the Dominican Republic's 809, say) lets 809-000-0000 through
        return False
    return phonenumbers.is_valid_number(parsed)


_NEEDS_A_VISIBLE_VALUE = ("last_name", "name.first_name", "name.last_name")  # a person's, a student's names


def write_problem(values: dict, expected: dict, region: str = "US") -> str | None:
    """Why a write's values break the text rules, or None: apply's check that what it sends is what quality
    and the mapping would have let through (a plan made before a rule, or by hand, is refused, not written).
    A value the write leaves as it was (an address block's unchanged parts) is PowerSchool's own: not checked."""
    for key, value in values.items():
        if not isinstance(value, str) or value == expected.get(key):
            continue
        if key in _NEEDS_A_VISIBLE_VALUE and not clean_text(value):
            return f"no visible {key.rpartition('.')[2].replace('_', ' ')} ({value!r})"
        if value != clean_text(value):
            return f"{key} is not in its clean form ({value!r}; it would be {clean_text(value)!r})"
        if key == "number" and not is_valid_phone(value, region):
            return f"{value!r} is not a valid phone number for {region}"
    return None


def email_key(address: str) -> str:
    return (address or "").strip().casefold()


# a plain ASCII address (dot-atom local part, LDH domain labels, alphabetic TLD): what email-validator
# accepts too, checked ~100x faster; anything else goes to email-validator itself
_PLAIN_EMAIL = re.compile(r"^[a-z0-9!#$%&'*+/=?^_`{|}~-]+(?:\.[a-z0-9!#$%&'*+/=?^_`{|}~-]+)*"
                          r"@(?:[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?\.)+([a-z]{2,63})$")
_SPECIAL_USE = frozenset({"arpa", "invalid", "local", "localhost", "onion", "test"})


@lru_cache(maxsize=262144)
def email_match_key(address: str) -> str:
    """The email key matching compares: case-insensitive, and '' unless email-validator accepts it
    (a malformed address must not make two people look alike)."""
    key = email_key(address)
    if not key or "@" not in key:
        return ""
    plain = _PLAIN_EMAIL.match(key)
    if plain and len(key) <= 254 and len(key.split("@")[0]) <= 64 and plain.group(1) not in _SPECIAL_USE:
        return key
    return key if email_problem(key) is None else ""


def email_problem(address: str) -> str | None:
    """None when the address is syntactically valid; otherwise the reason, for the quarantine."""
    try:
        validate_email(address, check_deliverability=False)
    except EmailNotValidError as exc:
        return str(exc)
    return None


# USPS street suffixes and directionals (Publication 28, the common ones) -> one form
_STREET_WORDS = {
    "street": "st", "str": "st", "avenue": "ave", "av": "ave", "avn": "ave", "road": "rd", "drive": "dr",
    "drv": "dr", "lane": "ln", "court": "ct", "crt": "ct", "boulevard": "blvd", "boul": "blvd", "place": "pl",
    "terrace": "ter", "terr": "ter", "circle": "cir", "circ": "cir", "parkway": "pkwy", "pkway": "pkwy",
    "highway": "hwy", "square": "sq", "trail": "trl", "plaza": "plz", "crescent": "cres", "alley": "aly",
    "expressway": "expy", "freeway": "fwy", "point": "pt", "mount": "mt", "heights": "hts", "center": "ctr",
    "centre": "ctr", "creek": "crk", "estates": "est", "grove": "grv", "harbor": "hbr", "hollow": "holw",
    "junction": "jct", "meadows": "mdws", "park": "park", "ridge": "rdg", "station": "sta", "turnpike": "tpke",
    "valley": "vly", "village": "vlg", "way": "way", "loop": "loop", "row": "row", "run": "run",
    "north": "n", "south": "s", "east": "e", "west": "w",
    "northeast": "ne", "northwest": "nw", "southeast": "se", "southwest": "sw",
}
# unit designators: "Apt 4B" ~ "#4B" ~ "Unit 4-B" ~ "Suite 4B" for comparison
_UNIT_WORDS = frozenset({"apt", "apartment", "unit", "ste", "suite", "spc", "space", "rm", "room", "bldg",
                         "building", "fl", "floor", "lot", "trlr"})


def address_key(street: str, postal_code: str = "", unit: str = "") -> str:
    """Comparison form of a street line (plus a separate unit, as PowerSchool stores it) and ZIP-5:
    '12 Oak Street Apt 4-B' ~ '12 oak st #4b' ~ ('12 Oak St', unit 'Unit 4B')."""
    text = street or ""
    if unit and unit.strip():
        head = fold(unit).split()[:1]
        text += " " + (unit if head and head[0] in _UNIT_WORDS else "# " + unit)
    words = fold(text.replace("#", " unitmark ")).split()
    out: list[str] = []
    unit_id: str | None = None
    for word in words:
        if word in _UNIT_WORDS or word == "unitmark":
            unit_id = unit_id or ""
        elif unit_id is not None:  # everything after the designator is the unit id: "4 b" -> "4b"
            unit_id += word
        else:
            out.append(_STREET_WORDS.get(word, word))
    if unit_id is not None:
        out.append("#" + unit_id)
    return " ".join(out) + ("|" + postal_code.strip()[:5] if postal_code else "")
