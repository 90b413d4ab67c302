"""Hostile values and malformed submissions for the bad-input campaign.

A submission starts as a well-formed one the sandbox generator wrote (its student exists in PowerSchool)
and gets a list of mutations. Each mutation says whether it *must* quarantine the record (a definite
fault: a list where a name belongs, a date that is no date, a slot with a first name and no last name)
or is merely hostile (an injection string in a street, an extra field, mixed scripts): those must not
crash anything, and the record must still end up valid or quarantined.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from hypothesis import strategies as st

INJECTIONS = [
    "'; DROP TABLE students;--",
    "Robert'); DROP TABLE wb_submissions;--",
    "<script>alert(1)</script>",
    "<img src=x onerror=alert(1)>",
    '"><svg onload=alert(1)>',
    "{{7*7}}",
    "${7*7}",
    "{% raw %}{{ config }}{% endraw %}",
    "../../etc/passwd",
    "..\\..\\windows\\win.ini",
    "%s%s%s%n",
    "1 OR 1=1",
    "students.dcid==1;last_name==*",  # FIQL
]
MIXED_SCRIPTS = [
    "Ольга Петрова", "山田 太郎", "محمد الأحمد", "Zoë Ñúñez-Ö'Brien", "Ελένη Παπαδοπούλου", "José\u0301 Man\u0303a",
    "\u202egnirts desrever", "𝔘𝔫𝔦𝔠𝔬𝔡𝔢 😀👨‍👩‍👧", "ǅemal", "Straße", "İstanbul", "ﬁnance",
]
CONTROL = ["a\x00b", "\x07\x08\x1b[31mred", "line\nbreak", "tab\there", "\r\n\r\n", "\ufeffbom", "\x7f\x85\u2028\u2029"]
HUGE = ["A" * 100_000, "<script>" * 12_500, "ñ" * 100_000, "9" * 100_000]
BAD_DATES = ["13/45/2020", "02/30/2021", "2014-03-02", "tomorrow", "00/00/0000", "1/1/99999", "12/31/-001",
             "<script>alert(1)</script>", "'; DROP TABLE students;--", "01/01/2014 extra"]
BAD_PHONES = ["123", "abc", "not a phone", "<script>alert(1)</script>", "'; DROP TABLE students;--", "+",
              "0", "555", "{{7*7}}", "../../etc/passwd"]
BAD_EMAILS = ["no-at-sign", "a@", "@b.com", "a@@b.com", "a b@c.com", "<script>alert(1)</script>@x.com",
              "'; DROP TABLE students;--", "x@localhost", "a@b", "{{7*7}}@example", ".a@example.com"]
BAD_CODES = ["Martian", "<script>alert(1)</script>", "'; DROP TABLE students;--", "{{7*7}}", "Moth er"]
BAD_FLAGS = ["maybe", "sí", "2", "<b>yes</b>", "{{7*7}}"]
BAD_ZIPS = ["ABCDE", "1234", "<script>", "94110-12", "'; DROP--"]

hostile_text = st.one_of(
    st.sampled_from(INJECTIONS),
    st.sampled_from(MIXED_SCRIPTS),
    st.sampled_from(CONTROL),
    st.sampled_from(HUGE),
    st.text(max_size=40),
)
wrong_type = st.one_of(
    st.integers(min_value=-(10**30), max_value=10**30),
    st.floats(allow_nan=False, allow_infinity=False),
    st.booleans(),
    st.none(),
    st.lists(st.text(max_size=5), max_size=3),
    st.dictionaries(st.text(max_size=5), st.integers(), max_size=3),
)
not_text = st.one_of(st.booleans(), st.lists(st.integers(), min_size=0, max_size=3),
                     st.dictionaries(st.text(max_size=3), st.text(max_size=3), max_size=2))

STUDENT_FIELDS = [
    "student_legal_first_name", "student_legal_middle_name", "student_legal_last_name",
    "student_preferred_first_name", "student_preferred_last_name", "student_gender", "student_birthdate",
    "home_street", "home_city", "home_state", "home_zip", "mailing_street", "mailing_city", "mailing_state",
    "mailing_zip", "photo_release",
]
FREE_TEXT = ["student_legal_first_name", "student_legal_middle_name", "student_legal_last_name",
             "student_preferred_first_name", "student_preferred_last_name", "home_street", "home_city",
             "mailing_street", "mailing_city"]
SLOT_PARTS = ["first_name", "last_name", "relationship", "cell_phone", "home_phone", "work_phone", "email",
              "street", "city", "state", "zip", "emergency", "lives_with", "custodial", "data_access", "remove"]


@dataclass(frozen=True)
class Mutation:
    kind: str  # set | delete | extra
    field: str
    value: Any = None
    definite: bool = False  # must quarantine the record (given the slot is in use, for `slot` faults)
    slot: int = 0  # a fault in a contact field that only counts when the slot is in use

    def apply(self, fields: dict[str, Any]) -> None:
        if self.kind == "delete":
            fields.pop(self.field, None)
        else:
            fields[self.field] = self.value

    def __repr__(self) -> str:  # keep hypothesis' falsifying examples readable with 100k values
        shown = repr(self.value)
        return f"Mutation({self.kind} {self.field}={shown[:60]}{'…' if len(shown) > 60 else ''}, " \
               f"definite={self.definite}, slot={self.slot})"


def _set(field: str, values, definite: bool = False, slot: int = 0):
    return values.map(lambda v: Mutation("set", field, v, definite, slot))


slots = st.integers(min_value=1, max_value=4)

mutations = st.one_of(
    # definite faults in fields that are always read
    st.sampled_from(["student_number", *STUDENT_FIELDS]).flatmap(lambda f: _set(f, not_text, True)),
    slots.flatmap(lambda n: st.sampled_from(["first_name", "last_name"]).flatmap(
        lambda p: _set(f"contact{n}_{p}", not_text, True))),
    _set("student_birthdate", st.sampled_from(BAD_DATES), True),
    _set("student_gender", st.sampled_from(BAD_CODES), True),
    _set("home_zip", st.sampled_from(BAD_ZIPS), True),
    _set("home_state", st.sampled_from(["California", "C", "<script>", "1A"]), True),
    _set("student_number", st.sampled_from(["999999999", "'; DROP TABLE students;--", "<script>", "-1", "١٢٣"]),
         True),
    st.just(Mutation("delete", "student_number", definite=True)),
    slots.map(lambda n: Mutation("set", f"contact{n}_first_name", "Lone", True, 0)).map(
        lambda m: m),  # paired with a blank last name below
    # faults that count only when the slot names somebody
    slots.flatmap(lambda n: st.sampled_from(["cell_phone", "home_phone", "work_phone"]).flatmap(
        lambda p: _set(f"contact{n}_{p}", st.sampled_from(BAD_PHONES), True, n))),
    slots.flatmap(lambda n: _set(f"contact{n}_email", st.sampled_from(BAD_EMAILS), True, n)),
    slots.flatmap(lambda n: _set(f"contact{n}_relationship", st.sampled_from(BAD_CODES), True, n)),
    slots.flatmap(lambda n: st.sampled_from(["emergency", "lives_with", "custodial", "data_access"]).flatmap(
        lambda p: _set(f"contact{n}_{p}", st.sampled_from(BAD_FLAGS), True, n))),
    slots.flatmap(lambda n: st.sampled_from(SLOT_PARTS).flatmap(
        lambda p: _set(f"contact{n}_{p}", not_text, True, n))),
    # hostile but not necessarily wrong
    st.sampled_from(FREE_TEXT).flatmap(lambda f: _set(f, hostile_text)),
    slots.flatmap(lambda n: st.sampled_from(["street", "city"]).flatmap(
        lambda p: _set(f"contact{n}_{p}", hostile_text))),
    st.sampled_from(["student_number", *STUDENT_FIELDS]).map(lambda f: Mutation("delete", f)),
    slots.flatmap(lambda n: st.sampled_from(SLOT_PARTS).map(lambda p: Mutation("delete", f"contact{n}_{p}"))),
    st.tuples(st.text(min_size=1, max_size=30), st.one_of(hostile_text, wrong_type)).map(
        lambda kv: Mutation("extra", "x_" + kv[0], kv[1])),
    st.sampled_from(["student_number", *STUDENT_FIELDS]).flatmap(lambda f: _set(f, wrong_type)),
)


def mutate(fields: dict[str, Any], muts: list[Mutation]) -> dict[str, Any]:
    out = dict(fields)
    for m in muts:
        m.apply(out)
        if m.definite and m.field.endswith("_first_name") and m.value == "Lone":
            out[m.field.replace("_first_name", "_last_name")] = ""
    return out


def slot_in_use(fields: dict[str, Any], n: int) -> bool:
    """The mapping reads a slot's other fields only when its first or last name is filled in."""
    names = [fields.get(f"contact{n}_first_name"), fields.get(f"contact{n}_last_name")]
    return any(isinstance(v, str) and v.strip() for v in names) or any(
        v is not None and not isinstance(v, str) for v in names)


PERSON_VALUES = ("cell_phone", "home_phone", "work_phone", "email", "street")


def typed_without_name(fields: dict[str, Any], n: int) -> bool:
    """A phone, email or street in a slot with no name: quarantined (naming the slot's last name), since
    the value would otherwise be dropped silently."""
    return not slot_in_use(fields, n) and any(
        fields.get(f"contact{n}_{part}") is not None and str(fields.get(f"contact{n}_{part}")).strip()
        for part in PERSON_VALUES)


def must_quarantine(final: dict[str, Any], muts: list[Mutation]) -> list[Mutation]:
    """The mutations that, applied in this order, leave a definite fault in the final fields."""
    out = []
    for i, m in enumerate(muts):
        if not m.definite:
            continue
        if any(later.field == m.field for later in muts[i + 1:]):
            continue  # overwritten or deleted later
        if m.value == "Lone" and any(later.field == m.field.replace("_first_name", "_last_name")
                                     for later in muts[i + 1:]):
            continue
        if m.slot and not slot_in_use(final, m.slot) and not typed_without_name(final, m.slot):
            continue  # a code or flag in an unused slot is never read
        out.append(m)
    return out
