"""Mapping v1: which form field goes where in PowerSchool, and how it is cleaned on the way.

A mapping file (`include/mappings/*.yaml`) is checked whole: every problem is reported at once, each
naming the file and the place. Applying a mapping to a submission is a pure function that returns a
`FormRecord` or the list of problems that quarantine the record.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any

import phonenumbers
from pydantic import BaseModel, ConfigDict, Field, PrivateAttr, ValidationError, field_validator

from ..yamlfile import YamlFileError, read_yaml
from .combinations import apply_combinations
from .models import FormRecord, RecordProblem, SubmittedAddress, SubmittedContact, SubmittedPhone, WritePolicy
from .normalize import clean_text, email_problem, is_valid_phone, phone_key, split_extension
from .targets import student_target

PHONE_TYPES = ("Home", "Mobile", "Work")
CONTACT_FLAGS = ("emergency", "lives_with", "custodial", "data_access")
MAX_SLOTS = 100  # contact slots a template may expand to
TRANSFORMS = ("trim", "upper", "lower", "title", "phone", "email", "date", "code_map", "max_length")


class MappingError(ValueError):
    """A mapping file that cannot be used; `problems` lists every reason, each naming its place."""

    def __init__(self, source: str, problems: list[str]):
        self.source = source
        self.problems = problems
        super().__init__(f"{source}: " + "; ".join(problems))

    def report(self) -> str:
        """The lines a command prints for it: the file, then one problem a line."""
        return "\n".join([f"error: mapping {self.source}:", *(f"  - {p}" for p in self.problems)])


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class FieldSpec(_Strict):
    field: str
    transforms: list[str | dict[str, Any]] = Field(default_factory=list)
    ignore_if_empty: bool = True  # an empty value never blanks PowerSchool unless this is False
    review: bool = False  # shorthand for `policy: review`
    policy: WritePolicy | None = None  # always (default) | if_empty | review | never

    @classmethod
    def coerce(cls, value: Any) -> Any:
        return {"field": value} if isinstance(value, str) else value

    @property
    def write_policy(self) -> WritePolicy:
        return self.policy or (WritePolicy.REVIEW if self.review else WritePolicy.ALWAYS)


class StudentFieldSpec(FieldSpec):
    target: str


class ContactSlotSpec(_Strict):
    first_name: FieldSpec | None = None
    middle_name: FieldSpec | None = None
    last_name: FieldSpec | None = None
    relationship: FieldSpec | None = None
    phones: dict[str, FieldSpec] = Field(default_factory=dict)
    email: FieldSpec | None = None
    address: dict[str, FieldSpec] = Field(default_factory=dict)
    flags: dict[str, FieldSpec] = Field(default_factory=dict)
    remove: FieldSpec | None = None

    @field_validator("first_name", "middle_name", "last_name", "relationship", "email", "remove", mode="before")
    @classmethod
    def _one(cls, v: Any) -> Any:
        return FieldSpec.coerce(v)

    @field_validator("phones", "address", "flags", mode="before")
    @classmethod
    def _many(cls, v: Any) -> Any:
        if v is None:
            return {}
        if not isinstance(v, dict):
            return v  # not a mapping: let pydantic report the wrong type (a MappingError, not a crash)
        return {k: FieldSpec.coerce(x) for k, x in v.items()}


class SectionSpec(ContactSlotSpec):
    """A named contact section of a form (`guardian1`, `emergency2`, ...): its own fields, the place in the
    student's contact order it takes (`position`, default: its place among the sections), and the
    relationship a new link gets when the form asks none (`default_relationship`, a Relationship code)."""

    position: Annotated[int, Field(ge=1, le=MAX_SLOTS)] | None = None
    default_relationship: str = ""


class RuleWhen(_Strict):
    """Which sections a family filled (a name and not removed) and which checkboxes it ticked."""

    filled: list[str] = Field(default_factory=list)  # all of these filled
    empty: list[str] = Field(default_factory=list)  # none of these filled
    checked: str | None = None  # a form field that reads yes
    unchecked: str | None = None  # a form field that does not read yes

    def is_empty(self) -> bool:
        return not (self.filled or self.empty or self.checked or self.unchecked)


class CopyAddress(_Strict):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    source: str = Field(alias="from")
    to: str


class CombinationRule(_Strict):
    """A rule for one combination of filled sections: it may reorder them (`order`: these sections take
    places 1..k, the others keep their places after them) and copy one section's address to another
    (`copy_address`, e.g. a "same address as guardian 1" checkbox)."""

    name: str
    description: str = ""
    when: RuleWhen
    order: list[str] = Field(default_factory=list)
    copy_address: CopyAddress | None = None


class ContactsSpec(ContactSlotSpec):
    """Either a template (`{n}` in field names) repeated `slots` times, an explicit list of slots, or named
    `sections`; `combinations` are rules keyed by which sections a family filled."""

    # bounded: `slots: 100000` (a typo) took 35 s to expand and a billion never finished
    slots: Annotated[int, Field(ge=0, le=MAX_SLOTS)] | list[SectionSpec] = 0
    sections: dict[str, SectionSpec] = Field(default_factory=dict)
    combinations: list[CombinationRule] = Field(default_factory=list)


@dataclass(frozen=True)
class SlotDef:
    """One contact of the form as the mapping defines it: its slot (identity on the form, in review keys and
    matching), its name, the place it takes in the order, and its fields."""

    slot: int
    name: str
    position: int
    spec: ContactSlotSpec
    default_relationship: str = ""
    named: bool = False  # a section of `sections:` (not the template or the list)

    @property
    def label(self) -> str:
        return f"section {self.name}" if self.named else f"contact {self.slot}"


class Mapping(_Strict):
    version: int = 1
    name: str
    form_id: str = ""
    student_number_field: str = "student_number"
    phone_region: str = "US"
    code_maps: dict[str, dict[str, str]] = Field(default_factory=dict)
    student: list[StudentFieldSpec] = Field(default_factory=list)
    contacts: ContactsSpec | None = None
    _slot_defs: tuple[int, list[SlotDef]] | None = PrivateAttr(default=None)

    def slot_defs(self) -> list[SlotDef]:
        """The form's contacts in slot order (computed once per `contacts`: applying the mapping asks for
        every record)."""
        if self._slot_defs is None or self._slot_defs[0] != id(self.contacts):
            self._slot_defs = (id(self.contacts), _slot_defs(self.contacts))
        return self._slot_defs[1]

    def contact_slots(self) -> list[ContactSlotSpec]:
        return [d.spec for d in self.slot_defs()]

    def form_fields(self) -> set[str]:
        """Every form field the mapping reads (for data-quality checks and plugin grants)."""
        names = {self.student_number_field, *(s.field for s in self.student)}
        for slot in self.contact_slots():
            names.update(spec.field for _, spec in _slot_specs(slot))
        for rule in self.contacts.combinations if self.contacts else []:
            names.update(f for f in (rule.when.checked, rule.when.unchecked) if f)
        return names


_TEMPLATE_KEYS = set(ContactSlotSpec.model_fields)


def _slot_defs(contacts: ContactsSpec | None) -> list[SlotDef]:
    if contacts is None:
        return []
    if contacts.sections:
        defs, used = [], set()
        for i, (name, sec) in enumerate(contacts.sections.items(), start=1):
            position = sec.position or i
            if position in used:  # check_mapping reports it; keep slots unique meanwhile
                position = max(used) + 1
            used.add(position)
            defs.append(SlotDef(position, name, position, _plain(sec), sec.default_relationship, named=True))
        return sorted(defs, key=lambda d: d.slot)
    if isinstance(contacts.slots, list):
        return [SlotDef(n, f"contact{n}", sec.position or n, _plain(sec), sec.default_relationship)
                for n, sec in enumerate(contacts.slots, start=1)]
    template = contacts.model_dump(include=_TEMPLATE_KEYS, exclude_none=True)
    return [SlotDef(n, f"contact{n}", n, ContactSlotSpec.model_validate(_fill_slot(template, n)))
            for n in range(1, contacts.slots + 1)]


def _plain(section: SectionSpec) -> ContactSlotSpec:
    return ContactSlotSpec.model_validate(section.model_dump(include=_TEMPLATE_KEYS, exclude_none=True))


def _fill_slot(value: Any, n: int) -> Any:
    if isinstance(value, str):
        return value.replace("{n}", str(n))
    if isinstance(value, dict):
        return {k: _fill_slot(v, n) for k, v in value.items()}
    if isinstance(value, list):
        return [_fill_slot(v, n) for v in value]
    return value


def _slot_specs(slot: ContactSlotSpec) -> list[tuple[str, FieldSpec]]:
    pairs: list[tuple[str, FieldSpec]] = []
    for name in ("first_name", "middle_name", "last_name", "relationship", "email", "remove"):
        spec = getattr(slot, name)
        if spec is not None:
            pairs.append((name, spec))
    for group in ("phones", "address", "flags"):
        pairs.extend((f"{group}.{k}", v) for k, v in getattr(slot, group).items())
    return pairs


# ---------------------------------------------------------------- loading and checking


def load_mapping(path: str | Path) -> Mapping:
    """Read and check a mapping file (through the one YAML reader: a key given twice is an error)."""
    try:
        raw = read_yaml(path)
    except YamlFileError as exc:
        raise MappingError(exc.source, exc.problems) from exc
    return parse_mapping(raw, source=str(path))


def parse_mapping(raw: Any, source: str = "<mapping>") -> Mapping:
    if not isinstance(raw, dict):
        raise MappingError(source, ["the file must be a YAML mapping at the top level"])
    try:
        mapping = Mapping.model_validate(raw)
    except ValidationError as exc:
        problems = [f"{'.'.join(str(p) for p in err['loc'])}: {err['msg']}" for err in exc.errors()]
        raise MappingError(source, problems) from None
    problems = check_mapping(mapping)
    if problems:
        raise MappingError(source, problems)
    return mapping


def check_mapping(mapping: Mapping) -> list[str]:
    """Every problem of a parsed mapping, each naming its place."""
    problems: list[str] = []
    if mapping.version != 1:
        problems.append(f"version: {mapping.version} is not supported (only 1)")
    if mapping.phone_region not in phonenumbers.SUPPORTED_REGIONS:
        # a typo here would make every phone invalid: each record quarantined, nothing written
        problems.append(f"phone_region: {mapping.phone_region!r} is not a region code (e.g. US, CA, GB)")
    for name, table in mapping.code_maps.items():
        problems.extend(_case_twins(name, table))
    seen_targets: set[str] = set()
    for i, spec in enumerate(mapping.student):
        where = f"student[{i}] ({spec.field})"
        target = student_target(spec.target)
        if target is None:
            problems.append(f"{where}: unknown target {spec.target!r}")
        elif spec.target in seen_targets:
            problems.append(f"{where}: target {spec.target!r} is mapped twice")
        elif target.required and not spec.ignore_if_empty:
            problems.append(f"{where}: {spec.target} cannot be blanked in PowerSchool; keep ignore_if_empty")
        seen_targets.add(spec.target)
        problems.extend(_check_transforms(where, spec, mapping))
    for d in mapping.slot_defs():
        where = f"contacts {d.label}" if d.named else f"contacts slot {d.slot}"
        slot = d.spec
        if slot.last_name is None:
            problems.append(
                f"{where}: the contact's last name is not mapped; contacts are matched only when the "
                "last name is mapped to output, so this mapping cannot write contacts"
            )
        if slot.first_name is None:
            problems.append(f"{where}: the contact's first name is not mapped")
        for kind in slot.phones:
            if kind not in PHONE_TYPES:
                problems.append(f"{where}: unknown phone type {kind!r} (one of {', '.join(PHONE_TYPES)})")
        for flag in slot.flags:
            if flag not in CONTACT_FLAGS:
                problems.append(f"{where}: unknown flag {flag!r} (one of {', '.join(CONTACT_FLAGS)})")
        for part in slot.address:
            if part not in SubmittedAddress.model_fields:
                problems.append(f"{where}: unknown address part {part!r}")
        for name, spec in _slot_specs(slot):
            problems.extend(_check_transforms(f"{where} {name}", spec, mapping))
        problems.extend(_check_contact_policies(where, slot))
    if mapping.contacts is not None:
        problems.extend(_check_contacts_shape(mapping.contacts))
        problems.extend(_check_combinations(mapping))
    for i, spec in enumerate(mapping.student):
        if spec.review and spec.policy not in (None, WritePolicy.REVIEW):
            problems.append(f"student[{i}] ({spec.field}): review: true and policy: {spec.policy.value} disagree; "
                            "keep one of them")
    return problems


# a contact value's policy applies to these (names change only by a reviewer's name decision; a removal
# and Data Access are the family's explicit requests)
_POLICY_FREE = ("first_name", "middle_name", "last_name", "remove", "flags.data_access")


def _check_contact_policies(where: str, slot: ContactSlotSpec) -> list[str]:
    problems = []
    for name, spec in _slot_specs(slot):
        policy = spec.write_policy
        if policy == WritePolicy.REVIEW:
            problems.append(f"{where} {name}: policy review is for student fields; a contact's values are "
                            "decided on its card (use if_empty or never)")
        elif name in _POLICY_FREE and policy != WritePolicy.ALWAYS:
            problems.append(f"{where} {name}: takes no write policy (only always)")
    address = {spec.write_policy for spec in slot.address.values()}
    if len(address) > 1:
        problems.append(f"{where} address: PowerSchool takes an address whole; give its parts one policy "
                        f"(got {', '.join(sorted(p.value for p in address))})")
    return problems


def _check_contacts_shape(contacts: ContactsSpec) -> list[str]:
    problems = []
    if contacts.sections:
        template = [k for k in _TEMPLATE_KEYS if getattr(contacts, k) not in (None, {}, [])]
        if template or contacts.slots:
            problems.append("contacts: give either sections or a template (`{n}` fields and slots), not both"
                            + (f" (template fields: {', '.join(sorted(template))})" if template else ""))
        seen: dict[int, str] = {}
        for i, (name, sec) in enumerate(contacts.sections.items(), start=1):
            position = sec.position or i
            if position in seen:
                problems.append(f"contacts section {name}: position {position} is also section {seen[position]}'s; "
                                "each section takes its own place")
            seen.setdefault(position, name)
    return problems


def _check_combinations(mapping: Mapping) -> list[str]:
    contacts = mapping.contacts
    names = {d.name for d in mapping.slot_defs()}
    problems, seen = [], set()
    for i, rule in enumerate(contacts.combinations):
        where = f"contacts combinations[{i}] ({rule.name})"
        if rule.name in seen:
            problems.append(f"{where}: another rule has this name")
        seen.add(rule.name)
        if rule.when.is_empty():
            problems.append(f"{where}: `when` names no condition (filled, empty, checked or unchecked)")
        if not rule.order and rule.copy_address is None:
            problems.append(f"{where}: does nothing (give `order` or `copy_address`)")
        named = [*rule.when.filled, *rule.when.empty, *rule.order]
        if rule.copy_address:
            named += [rule.copy_address.source, rule.copy_address.to]
        for name in dict.fromkeys(named):
            if name not in names:
                problems.append(f"{where}: no section named {name!r} (sections: {', '.join(sorted(names))})")
        if set(rule.when.filled) & set(rule.when.empty):
            problems.append(f"{where}: a section cannot be both filled and empty")
        if len(set(rule.order)) != len(rule.order):
            problems.append(f"{where}: order names a section twice")
        copy = rule.copy_address
        if copy is not None and copy.source == copy.to:
            problems.append(f"{where}: copy_address from and to are the same section")
        elif copy is not None and copy.source in names:
            source = next(d for d in mapping.slot_defs() if d.name == copy.source)
            if not source.spec.address:
                problems.append(f"{where}: section {copy.source} maps no address to copy")
    return problems


def _case_twins(name: str, table: dict[str, str]) -> list[str]:
    """A code map compares the typed value ignoring case, so keys equal but for case are one key: the last
    one would win, exactly like a YAML key given twice."""
    first: dict[str, str] = {}
    problems = []
    for key in table:
        folded = key.casefold()
        if folded in first and table[first[folded]] != table[key]:
            problems.append(f"code_maps.{name}: {first[folded]!r} and {key!r} are one key (code maps ignore case) "
                            f"but map to {table[first[folded]]!r} and {table[key]!r}; keep one of them")
        first.setdefault(folded, key)
    return problems


def _check_transforms(where: str, spec: FieldSpec, mapping: Mapping) -> list[str]:
    problems = []
    for t in spec.transforms:
        name, arg = transform_parts(t)
        if name not in TRANSFORMS:
            problems.append(f"{where}: unknown transform {name!r}")
        elif name == "code_map" and (not isinstance(arg, str) or arg not in mapping.code_maps):
            problems.append(f"{where}: code map {arg!r} is not defined in code_maps")
        elif name == "date" and not _date_format_round_trips(arg):
            problems.append(f"{where}: date transform needs an input format with day, month and year that "
                            f"reads its own dates, e.g. {{date: '%m/%d/%Y'}} (got {arg!r})")
        elif name == "max_length" and not isinstance(arg, int):
            problems.append(f"{where}: max_length needs a whole number")
    return problems


def _date_format_round_trips(fmt: Any) -> bool:
    """True when `fmt` names day, month and year and parses a date it printed (a typo such as '%m/%d/%y%'
    or 'MM/DD/YYYY' would quarantine every record)."""
    if not isinstance(fmt, str):
        return False
    sample = dt.date(2001, 2, 13)
    try:
        return dt.datetime.strptime(sample.strftime(fmt), fmt).date() == sample
    except ValueError:
        return False


def transform_parts(t: str | dict[str, Any]) -> tuple[str, Any]:
    if isinstance(t, str):
        return t, None
    if len(t) != 1:
        return f"<{len(t)} keys>", None
    return next(iter(t.items()))


# ---------------------------------------------------------------- applying


class _Problem(Exception):
    def __init__(self, reason: str, check: str):
        self.reason, self.check = reason, check


def _transform(value: str, spec: FieldSpec, mapping: Mapping) -> str:
    value = clean_text(value)  # the one clean form (normalize.py): an invisible value is a missing one
    if not value:
        return value
    for t in spec.transforms:
        name, arg = transform_parts(t)
        if name == "upper":
            value = value.upper()
        elif name == "lower":
            value = value.lower()
        elif name == "title":
            value = value.title()
        elif name == "phone":
            if not is_valid_phone(value, mapping.phone_region):
                raise _Problem("not a valid phone number", "phone")
        elif name == "email":
            reason = email_problem(value)
            if reason:
                raise _Problem(f"not a valid email address ({reason})", "email")
        elif name == "date":
            try:
                value = dt.datetime.strptime(value, arg).date().isoformat()
            except ValueError:
                raise _Problem(f"not a date in the format {arg}", "date") from None
        elif name == "code_map":
            table = {k.casefold(): v for k, v in mapping.code_maps[arg].items()}
            if value.casefold() not in table:
                raise _Problem(f"not a known {arg} value", f"code_map:{arg}")
            value = table[value.casefold()]
        elif name == "max_length" and len(value) > arg:
            raise _Problem(f"longer than {arg} characters", "max_length")
    return clean_text(value)  # a case change can decompose a letter ("ǰ".upper())


def _read(submission_id: str, fields: dict[str, Any], spec: FieldSpec, mapping: Mapping,
          problems: list[RecordProblem]) -> str:
    raw = fields.get(spec.field)
    if raw is None:
        return ""
    if not isinstance(raw, str):
        try:
            raw = str(raw) if isinstance(raw, int | float) and not isinstance(raw, bool) else None
        except ValueError:  # an int too long to print (over sys.get_int_max_str_digits() digits)
            raw = None
        if raw is None:
            problems.append(RecordProblem(submission_id=submission_id, field=spec.field,
                                          reason="not a text value", value=_shown(fields.get(spec.field)),
                                          check="type"))
            return ""
    try:
        return _transform(raw, spec, mapping)
    except _Problem as p:
        problems.append(RecordProblem(submission_id=submission_id, field=spec.field, reason=p.reason,
                                      value=_shown(raw), check=p.check))
        return ""


def _shown(value: Any, limit: int = 80) -> str:
    try:
        text = repr(value) if not isinstance(value, str) else value
    except ValueError:  # an int too long to print
        text = f"<{type(value).__name__} too long to show>"
    return text if len(text) <= limit else text[:limit] + "…"


_TRUE = {"yes", "y", "true", "1", "on", "x"}
_FALSE = {"no", "n", "false", "0", "off", ""}


def _flag(submission_id: str, field: str, value: str, problems: list[RecordProblem]) -> bool | None:
    low = value.strip().casefold()
    if low in _TRUE:
        return True
    if low in _FALSE:
        return None if low == "" else False
    problems.append(RecordProblem(submission_id=submission_id, field=field, reason="not yes/no",
                                  value=_shown(value), check="flag"))
    return None


def apply_mapping(mapping: Mapping, submission_id: str, fields: dict[str, Any],
                  form_id: str = "") -> FormRecord | list[RecordProblem]:
    """Map one submission's form fields to a FormRecord, or return why the record must be quarantined."""
    problems: list[RecordProblem] = []
    number_spec = FieldSpec(field=mapping.student_number_field)
    student_number = _read(submission_id, fields, number_spec, mapping, problems)
    if not student_number and not problems:
        problems.append(RecordProblem(submission_id=submission_id, field=mapping.student_number_field,
                                      reason="missing student number", check="required"))
    student_fields: dict[str, str] = {}
    blank_clears: list[str] = []
    review_targets: list[str] = []
    policies: dict[str, WritePolicy] = {}
    for spec in mapping.student:
        value = _read(submission_id, fields, spec, mapping, problems)
        target = student_target(spec.target)
        if target and target.max_length and len(value) > target.max_length:
            problems.append(RecordProblem(submission_id=submission_id, field=spec.field,
                                          reason=f"longer than PowerSchool allows ({target.max_length})",
                                          value=_shown(value), check="max_length"))
            continue
        student_fields[spec.target] = value
        if not spec.ignore_if_empty:
            blank_clears.append(spec.target)
        if spec.write_policy != WritePolicy.ALWAYS:
            policies[spec.target] = spec.write_policy
        if spec.write_policy == WritePolicy.REVIEW:
            review_targets.append(spec.target)
    contacts = []
    for d in mapping.slot_defs():
        contact = _map_contact(d, mapping, submission_id, fields, problems)
        if contact is not None:
            contacts.append(contact)

    def checked(field: str) -> bool:
        raw = fields.get(field)
        return bool(_flag(submission_id, field, raw if isinstance(raw, str) else str(raw or ""), problems))

    combined = apply_combinations(mapping, contacts, submission_id, checked)
    problems.extend(combined.problems)
    if problems:
        return problems
    return FormRecord(submission_id=submission_id, student_number=student_number,
                      student_fields=student_fields, blank_clears=blank_clears,
                      review_targets=review_targets, contacts=contacts, form_id=form_id, mapping=mapping.name,
                      policies=policies, order_reason=combined.order_reason, notes=combined.notes)


# PowerSchool's limits on contact values (docs/sandbox-contract.md): checked at mapping time, so a value too
# long is quarantined with its field instead of failing at apply
CONTACT_LIMITS = {"first_name": 100, "middle_name": 100, "last_name": 100, "email": 100, "phone": 30,
                  "state": 2, "postal_code": 10}


def _limit_name(spec: FieldSpec | None, slot: ContactSlotSpec) -> str:
    if spec is None:
        return ""
    for name in ("first_name", "middle_name", "last_name", "email"):
        if getattr(slot, name) is spec:
            return name
    if any(spec is p for p in slot.phones.values()):
        return "phone"
    return next((part for part, p in slot.address.items() if p is spec), "")


def _name_free(spec: FieldSpec, slot: ContactSlotSpec) -> bool:
    """A value that belongs to a person (phone, email, street): flags and codes may be pre-filled on a form."""
    return any(spec is p for p in slot.phones.values()) or spec is slot.email or spec is slot.address.get("street")


def _typed(fields: dict[str, Any], spec: FieldSpec) -> bool:
    value = fields.get(spec.field)
    return value is not None and str(value).strip() != ""


def _contact_policies(slot: ContactSlotSpec) -> dict[str, WritePolicy]:
    """The write policies of a contact's values other than `always`, keyed as the plan pairs values."""
    keyed = [(f"phone:{kind}", spec) for kind, spec in slot.phones.items()]
    keyed += [("email", slot.email), ("detail:relationship", slot.relationship)]
    keyed += [(f"detail:{flag}", spec) for flag, spec in slot.flags.items() if flag != "data_access"]
    keyed += [("address", spec) for spec in slot.address.values()]
    return {key: spec.write_policy for key, spec in keyed
            if spec is not None and spec.write_policy != WritePolicy.ALWAYS}


def _map_contact(d: SlotDef, mapping: Mapping, submission_id: str,
                 fields: dict[str, Any], problems: list[RecordProblem]) -> SubmittedContact | None:
    n, slot = d.label, d.spec

    def read(spec: FieldSpec | None) -> str:
        return _read(submission_id, fields, spec, mapping, problems) if spec else ""

    first, middle, last = read(slot.first_name), read(slot.middle_name), read(slot.last_name)
    if not first and not last:
        typed = [spec.field for _, spec in _slot_specs(slot) if _name_free(spec, slot) and _typed(fields, spec)]
        if typed:  # a phone or an email with nobody to give it to would be lost silently
            problems.append(RecordProblem(submission_id=submission_id, field=slot.last_name.field,
                                          reason=f"{n} has no name but has values ({', '.join(typed)})",
                                          check="required"))
        return None  # an unused slot
    if not last:
        problems.append(RecordProblem(submission_id=submission_id, field=slot.last_name.field,
                                      reason=f"{n} has a first name but no last name", check="required"))
        return None
    phones, clears = [], []
    for kind, spec in slot.phones.items():
        raw = read(spec)
        if raw:
            number, ext = split_extension(raw, mapping.phone_region)
            phones.append(SubmittedPhone(type=kind, number=number, extension=ext,
                                         e164=phone_key(number, mapping.phone_region)))
        elif not spec.ignore_if_empty and spec.field in fields:  # a blank the form sent, not a missing field
            clears.append(f"phone:{kind}")
    email = read(slot.email)
    if slot.email and not email and not slot.email.ignore_if_empty and slot.email.field in fields:
        clears.append("email")
    address = None
    if slot.address:
        parts = {part: read(spec) for part, spec in slot.address.items()}
        if any(parts.values()):
            address = SubmittedAddress(**parts)
    for spec, value in ((slot.first_name, first), (slot.middle_name, middle), (slot.last_name, last),
                        (slot.email, email), *((slot.phones[p.type], p.number) for p in phones),
                        *((slot.address.get(part), getattr(address, part)) for part in CONTACT_LIMITS
                          if address is not None and part in slot.address)):
        limit = CONTACT_LIMITS.get(_limit_name(spec, slot))
        if spec is not None and limit and len(value) > limit:  # PowerSchool would refuse it at apply
            problems.append(RecordProblem(submission_id=submission_id, field=spec.field,
                                          reason=f"longer than PowerSchool allows ({limit})", value=_shown(value),
                                          check="max_length"))
    flags = {name: _flag(submission_id, spec.field, read(spec), problems) for name, spec in slot.flags.items()}
    remove = bool(slot.remove and _flag(submission_id, slot.remove.field, read(slot.remove), problems))
    return SubmittedContact(slot=d.slot, first_name=first, middle_name=middle, last_name=last,
                            relationship=read(slot.relationship), phones=phones, email=email,
                            address=address, remove=remove, clears=clears, section=d.name, position=d.position,
                            default_relationship=d.default_relationship, policies=_contact_policies(slot),
                            **flags)
