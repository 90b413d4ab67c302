"""PowerSchool code sets: the codes the writeback sends, and checking them against a district's CodeSet.

PowerSchool keeps the allowed values of a contact's relationship, phone type, email type, address type
and state in its CodeSet table (one row per code, grouped by `CodeType`, each with optional effective
dates). A contact write whose code the district's set lacks is refused, record by record, at apply. The
codes a mapping makes the writeback send are known before any run — the values of the code maps its
contact fields go through, the phone types it maps, the constants the applier writes — so `doctor`
compares them with the server's CodeSet and names each missing one with the place that emits it.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from collections.abc import Mapping as MappingType
from dataclasses import dataclass
from enum import StrEnum
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .mapping import FieldSpec, Mapping


class CodeType(StrEnum):
    """`CodeSet.CodeType` of each code the Contacts API takes (PowerSchool's Contacts API reference)."""

    RELATIONSHIP = "Relationship"
    PHONE = "Phone"
    EMAIL = "Email"
    ADDRESS = "Address"
    STATE = "State"


# Codes the writeback itself sends (one definition: the applier and resolve use these).
EMAIL_TYPE = "Personal"  # the type of an email the writeback adds
ADDRESS_TYPE = "Home"  # the type of the contact address the writeback writes
DEFAULT_RELATIONSHIP = "Other"  # a new link's relationship when neither the form nor the mapping gives one


@dataclass(frozen=True)
class EmittedCode:
    code_type: CodeType
    code: str
    where: str  # the place in the mapping (or the writeback) that makes it


@dataclass(frozen=True)
class MissingCode:
    emitted: EmittedCode
    near: str | None  # a code of the set equal but for case, when there is one


def _mapped_values(spec: FieldSpec | None, mapping: Mapping, what: str) -> list[tuple[str, str]]:
    """(code, where) for each value the code maps on `spec` can produce."""
    from .mapping import transform_parts

    if spec is None:
        return []
    out = []
    for t in spec.transforms:
        name, arg = transform_parts(t)
        if name == "code_map" and isinstance(arg, str) and arg in mapping.code_maps:
            by_value: dict[str, list[str]] = {}
            for key, value in mapping.code_maps[arg].items():
                by_value.setdefault(value, []).append(key)
            out += [(value, f"code_maps.{arg}: {', '.join(keys)} (a contact's {what})")
                    for value, keys in by_value.items()]
    return out


def emitted_codes(mappings: Mapping | Iterable[Mapping]) -> list[EmittedCode]:
    """Every code the mapping(s) make the writeback send, once per (type, code, place)."""
    from .routing import union

    found: dict[tuple[CodeType, str, str], EmittedCode] = {}

    def add(code_type: CodeType, code: str, where: str) -> None:
        if code:
            found.setdefault((code_type, code, where), EmittedCode(code_type, code, where))

    for mapping in union(mappings):
        defs = mapping.slot_defs()
        for d in defs:
            slot = d.spec
            for code, where in _mapped_values(slot.relationship, mapping, "relationship"):
                add(CodeType.RELATIONSHIP, code, f"{mapping.name}: {where}")
            for code, where in _mapped_values(slot.address.get("state"), mapping, "address state"):
                add(CodeType.STATE, code, f"{mapping.name}: {where}")
            for kind in slot.phones:
                add(CodeType.PHONE, kind, f"{mapping.name}: contacts phones.{kind}")
            if slot.email is not None:
                add(CodeType.EMAIL, EMAIL_TYPE, "the type the writeback gives an email it adds")
            if slot.address:
                add(CodeType.ADDRESS, ADDRESS_TYPE, "the type of the contact address the writeback writes")
            if d.default_relationship:
                add(CodeType.RELATIONSHIP, d.default_relationship,
                    f"{mapping.name}: contacts {d.label} default_relationship")
        if defs:
            add(CodeType.RELATIONSHIP, DEFAULT_RELATIONSHIP,
                "a new contact's relationship when the form gives none")
    return sorted(found.values(), key=lambda e: (e.code_type, e.code, e.where))


def unchecked_code_fields(mappings: Mapping | Iterable[Mapping]) -> list[str]:
    """Contact fields whose typed value is sent as a code without a code map: the doctor cannot check
    them before a run (PowerSchool refuses a value its set lacks when the record is written)."""
    from .mapping import transform_parts
    from .routing import union

    out: list[str] = []
    for mapping in union(mappings):
        for slot in mapping.contact_slots():
            for what, spec in (("relationship", slot.relationship), ("address state", slot.address.get("state"))):
                if spec is not None and not any(transform_parts(t)[0] == "code_map" for t in spec.transforms):
                    note = f"{mapping.name}: a contact's {what} is sent as typed (no code map)"
                    if note not in out:
                        out.append(note)
    return out


def code_sets_from_rows(rows: Iterable[MappingType[str, str]], today: dt.date) -> dict[str, set[str]]:
    """The codes in effect today, by lower-cased CodeType, from rows of the `codeset` PowerQuery."""
    sets: dict[str, set[str]] = {}
    iso = today.isoformat()
    for row in rows:
        code_type = (row.get("codeset.codetype") or "").strip().lower()
        code = row.get("codeset.code") or ""
        start, end = row.get("codeset.effectivestartdate") or "", row.get("codeset.effectiveenddate") or ""
        if not code_type or not code or (start and start > iso) or (end and end < iso):
            continue
        sets.setdefault(code_type, set()).add(code)
    return sets


def missing_codes(emitted: Iterable[EmittedCode], sets: dict[str, set[str]]) -> list[MissingCode]:
    """The emitted codes the district's code sets lack (PowerSchool compares codes exactly)."""
    out = []
    for e in emitted:
        codes = sets.get(e.code_type.lower(), set())
        if e.code in codes:
            continue
        near = next((c for c in sorted(codes) if c.casefold() == e.code.casefold()), None)
        out.append(MissingCode(e, near))
    return out
