"""Comparison keys of names, persons and submitted contacts, and the name blocks (the definition the
index in match_index.py holds as integer keys)."""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

from .models import (
    Person,
    SubmittedContact,
)
from .names import (
    formal_names,
    soundex,
    surname_parts,
)
from .normalize import (
    address_key,
    email_match_key,
    fold,
    phone_match_key,
    phone_match_keys,
)


@dataclass(frozen=True, slots=True)
class NameKeys:
    first_tokens: tuple[str, ...]
    first_joined: str
    last_tokens: tuple[str, ...]
    last_joined: str
    last_parts: tuple[str, ...]
    full: str


@lru_cache(maxsize=1 << 18)
def name_keys(first: str, last: str) -> NameKeys:
    ft, fj = _first_keys(first)
    lt, lj, parts = _last_keys(last)
    return NameKeys(ft, fj, lt, lj, parts, " ".join(ft + lt))


@lru_cache(maxsize=1 << 16)  # a district has far fewer distinct first names and surnames than names
def _first_keys(first: str) -> tuple[tuple[str, ...], str]:
    ft = tuple(fold(first).split())
    return ft, "".join(ft)


@lru_cache(maxsize=1 << 16)
def _last_keys(last: str) -> tuple[tuple[str, ...], str, tuple[str, ...]]:
    lt = tuple(fold(last).split())
    return lt, "".join(lt), surname_parts(" ".join(lt))


@dataclass(frozen=True, slots=True)
class PersonKeys:
    name: NameKeys
    emails: frozenset[str]
    phones: frozenset[str]
    addresses: frozenset[str]


_NO_KEYS: frozenset[str] = frozenset()


def person_keys(person: Person, region: str) -> PersonKeys:
    emails, phones = person.emails, person.phones
    return PersonKeys(
        name=name_keys(person.first_name, person.last_name),
        emails=frozenset([k for e in emails if (k := email_match_key(e.address))]) if emails else _NO_KEYS,
        phones=frozenset([k for k in phone_match_keys([p.number for p in phones], region) if k]) if phones else _NO_KEYS,
        addresses=person_address_keys(person),
    )


def person_address_keys(person: Person) -> frozenset[str]:
    addresses = person.addresses
    return frozenset([address_key(a.street, a.postal_code, a.unit) for a in addresses
                      if a.street and not a.end_date]) if addresses else _NO_KEYS


def contact_keys(contact: SubmittedContact, region: str) -> PersonKeys:
    phones = set()
    for p in contact.phones:
        key = phone_match_key(p.e164 or p.number, region)
        if key:
            phones.add(key)
    a = contact.address
    return PersonKeys(
        name=name_keys(contact.first_name, contact.last_name),
        emails=frozenset({k} if (k := email_match_key(contact.email)) else ()),
        phones=frozenset(phones),
        addresses=frozenset({address_key(a.street, a.postal_code)} if a and a.street else ()),
    )


def first_name_set(name: NameKeys) -> set[str]:
    out: set[str] = set()
    for tok in name.first_tokens:
        out.add(tok)
        out |= formal_names(tok)
    return out


def surname_set(name: NameKeys) -> set[str]:
    return set(name.last_parts) | ({name.last_joined} if name.last_joined else set())


@lru_cache(maxsize=1 << 18)
def block_keys(name: NameKeys, swapped: bool = False) -> frozenset[str]:
    """The name blocks a name falls in. Each pairs a surname part with a first name, so blocks stay small
    and a one-letter typo in either name still shares one block with the right person. This is the
    definition: the index (NameBlocks) holds the same blocks as integer keys."""
    if swapped:
        name = NameKeys(name.last_tokens, name.last_joined, name.first_tokens, name.first_joined,
                        surname_parts(" ".join(name.first_tokens)), name.full)
    firsts, lasts = first_name_set(name), surname_set(name)
    keys: set[str] = set()
    for last in lasts:
        sl = soundex(last)
        for first in firsts:
            keys.add(f"a|{sl}|{soundex(first)}")
            keys.add(f"b|{last}|{first[:1]}")
            keys.add(f"c|{first}|{last[:1]}")
    return frozenset(keys)




def clear_key_caches() -> None:
    for cached in (name_keys, _first_keys, _last_keys, block_keys):
        cached.cache_clear()
