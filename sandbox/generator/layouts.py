"""A district's other SchoolEngage forms: the same families' answers on forms laid out differently.

The default generator writes every submission on the `registration-2026` form (the `contactN_` template).
Real districts run several forms at once; `relayout` moves a share of the submissions onto three other
layouts, each read by its own mapping in `include/mappings/`:

- `returning-2026` — returning-student update: other field names, named contact sections (guardian1,
  guardian2, emergency1, emergency2), a "same address as guardian 1" checkbox; no gender or birth date;
  some families type a mailing address (the mapping fills a blank mailing address, never replaces one)
  or write the student's legal first name as they call the child (the mapping never writes legal names);
- `kindergarten-2026` — mother and father sections without a relationship field (each has a default),
  two emergency contacts, dates as YYYY-MM-DD, a "same address as the mother" checkbox; only the
  father filled in makes him the first contact;
- `emergency-update-2026` — only the emergency contacts, at places 3 to 5, with no relationship field.

A submission moves only to a layout that carries everything its scenario changed (a form without a birth
date cannot carry a bad birth date), so the ground truth stays true; its contacts are keyed by the slot the
new layout's mapping gives them, and `truth["submissions"][id]["form"]` says what the form holds beyond
the registration layout. Deterministic for a seed, and a separate random stream: the registration
submissions are byte-identical with or without other forms.
"""

from __future__ import annotations

import copy
import random
from dataclasses import dataclass, field
from datetime import datetime

from .district import ascii_fold
from .tables import NICKNAMES, RELATIONSHIP_LABELS

REGISTRATION = "registration-2026"
RETURNING = "returning-2026"
KINDERGARTEN = "kindergarten-2026"
EMERGENCY = "emergency-update-2026"
ALL_FORMS = (REGISTRATION, RETURNING, KINDERGARTEN, EMERGENCY)
DEFAULT_WEIGHTS = {REGISTRATION: 40, RETURNING: 25, KINDERGARTEN: 20, EMERGENCY: 15}

_CONTACT = ["first_name", "last_name", "relationship", "cell_phone", "home_phone", "work_phone", "email",
            "street", "city", "state", "zip", "emergency", "lives_with", "custodial", "data_access", "remove"]
_SECTION_SUFFIX = {"cell_phone": "cell", "data_access": "portal_access"}  # others keep their name
_ADDRESS = ("street", "city", "state", "zip")


@dataclass(frozen=True)
class Section:
    prefix: str  # the layout's field prefix, e.g. "g1_"
    slot: int  # the slot the layout's mapping gives it (its position)
    fields: tuple[str, ...]  # registration suffixes it carries


@dataclass(frozen=True)
class Layout:
    form_id: str
    student: dict[str, str]  # registration student field -> this form's field (missing: not on the form)
    sections: tuple[Section, ...]
    same_address: tuple[str, str, str] | None = None  # (checkbox field, from prefix, to prefix)
    date_format: str = "%m/%d/%Y"
    by_relationship: dict[str, str] = field(default_factory=dict)  # PowerSchool relationship -> prefix


_ALL = tuple(_CONTACT)
_NO_RELATIONSHIP = tuple(s for s in _CONTACT if s != "relationship")
_EMERGENCY_ONLY = ("first_name", "last_name", "cell_phone", "home_phone", "work_phone", "email", "remove")

LAYOUTS: dict[str, Layout] = {
    RETURNING: Layout(
        RETURNING,
        {"student_number": "student_id", "student_legal_first_name": "legal_first",
         "student_legal_middle_name": "legal_middle", "student_legal_last_name": "legal_last",
         "student_preferred_first_name": "preferred_first", "student_preferred_last_name": "preferred_last",
         "home_street": "address_street", "home_city": "address_city", "home_state": "address_state",
         "home_zip": "address_zip", "mailing_street": "mail_street", "mailing_city": "mail_city",
         "mailing_state": "mail_state", "mailing_zip": "mail_zip", "photo_release": "photo_ok"},
        (Section("g1_", 1, _ALL), Section("g2_", 2, _ALL), Section("e1_", 3, _ALL), Section("e2_", 4, _ALL)),
        same_address=("g2_same_address", "g1_", "g2_")),
    KINDERGARTEN: Layout(
        KINDERGARTEN,
        {"student_number": "child_number", "student_legal_first_name": "child_first",
         "student_legal_middle_name": "child_middle", "student_legal_last_name": "child_last",
         "student_preferred_first_name": "child_preferred_first", "student_gender": "child_gender",
         "student_birthdate": "child_dob", "home_street": "home_address", "home_city": "home_city",
         "home_state": "home_state", "home_zip": "home_zip"},
        (Section("mother_", 1, _NO_RELATIONSHIP), Section("father_", 2, _NO_RELATIONSHIP),
         Section("emergency1_", 3, _ALL), Section("emergency2_", 4, _ALL)),
        same_address=("father_same_address", "mother_", "father_"), date_format="%Y-%m-%d",
        by_relationship={"Mother": "mother_", "Father": "father_"}),
    EMERGENCY: Layout(
        EMERGENCY, {"student_number": "student_number"},
        (Section("ec1_", 3, _EMERGENCY_ONLY), Section("ec2_", 4, _EMERGENCY_ONLY),
         Section("ec3_", 5, _EMERGENCY_ONLY))),
}

_LABEL_CODE = {label.casefold(): key.split("/")[0] for key, labels in RELATIONSHIP_LABELS.items()
               for label in labels}


def relationship_code(label: str) -> str:
    return _LABEL_CODE.get(label.strip().casefold(), "")


class _Relayout:
    def __init__(self, district: dict, seed: int, weights: dict[str, int]):
        self.seed = seed
        self.rng = random.Random(seed * 104729 + 7919)  # not the forms' stream: registration stays as it was
        self.weights = {f: w for f, w in weights.items() if w > 0}
        self.students = {s["dcid"]: s for s in district["students"]}
        self.ext = {e["studentsdcid"]: e for e in district["extensions"]["u_students_extension"]}
        details: dict[int, list[dict]] = {}
        for d in district["details"]:
            details.setdefault(d["link_id"], []).append(d)
        self.relationship: dict[tuple[int, int], str] = {}  # (student, person) -> current relationship
        for link in district["links"]:
            dets = details.get(link["id"]) or []
            if dets:
                latest = max(dets, key=lambda x: (x["start_date"], x["id"]))
                self.relationship[(link["student_dcid"], link["person_id"])] = latest["relationship"]

    # ---- what PowerSchool holds, as the registration form shows it
    def _ps_student(self, dcid: int) -> dict[str, str]:
        s, ext = self.students[dcid], self.ext.get(dcid) or {}
        y, m, d = s["dob"].split("-")
        return {"student_legal_first_name": s["first_name"], "student_legal_middle_name": s["middle_name"],
                "student_legal_last_name": s["last_name"], "student_preferred_first_name": ext.get("pref_first_name", ""),
                "student_preferred_last_name": ext.get("pref_last_name", ""), "student_gender": s["gender"],
                "student_birthdate": f"{m}/{d}/{y}", "home_street": s["street"], "home_city": s["city"],
                "home_state": s["state"], "home_zip": s["zip"], "mailing_street": s["mailing_street"],
                "mailing_city": s["mailing_city"], "mailing_state": s["mailing_state"],
                "mailing_zip": s["mailing_zip"]}

    def _slot_relationship(self, sub: dict, truth: dict, slot: str) -> str:
        person = truth["contacts"][slot].get("person_id")
        if person is not None and truth.get("student_dcid") is not None:
            return self.relationship.get((truth["student_dcid"], person), "")
        return relationship_code(sub["fields"].get(f"contact{slot}_relationship", ""))

    def _assign(self, layout: Layout, sub: dict, truth: dict) -> dict[str, Section] | None:
        """Registration slot -> the layout's section, or None when the layout cannot carry the form."""
        slots = sorted(truth["contacts"], key=int)
        sections = {s.prefix: s for s in layout.sections}
        if layout.form_id == EMERGENCY:
            touched = {n for n in slots if int(n) <= 2 and (truth["contacts"][n]["typo"] or truth["contacts"][n]
                       ["phone_type_changed"] or truth["contacts"][n]["remove"] or truth["contacts"][n]["new_key"])}
            if touched or any(p.startswith(("contact1_", "contact2_")) for p in truth["problems"]):
                return None
            kept = [n for n in slots if int(n) >= 3]
            if not kept:
                return None
            return {n: next(s for s in layout.sections if s.slot == int(n)) for n in kept}
        if not layout.by_relationship:
            return {n: next(s for s in layout.sections if s.slot == int(n)) for n in slots}
        out: dict[str, Section] = {}
        others = [s for s in layout.sections if s.prefix not in layout.by_relationship.values()]
        for n in slots:
            prefix = layout.by_relationship.get(self._slot_relationship(sub, truth, n))
            if prefix and prefix not in {s.prefix for s in out.values()}:
                out[n] = sections[prefix]
            elif others:
                out[n] = others.pop(0)
            else:
                return None
        return out

    def _carries(self, layout: Layout, sub: dict, truth: dict) -> bool:
        """A form without a field can carry the submission only when the family left that field as it is."""
        if truth.get("student_dcid") is None:  # unknown or missing student number: any form shows it
            return True
        ps = self._ps_student(truth["student_dcid"])
        return all(sub["fields"].get(f, "") == ps[f] for f in ps if f not in layout.student)

    def move(self, sub: dict, truth: dict) -> tuple[dict, dict]:
        choices = [f for f in self.weights if f == REGISTRATION or self._fits(LAYOUTS[f], sub, truth)]
        form = self.rng.choices(choices, weights=[self.weights[f] for f in choices])[0]
        if form == REGISTRATION:
            return sub, truth
        layout = LAYOUTS[form]
        return self._rewrite(layout, sub, truth, self._assign(layout, sub, truth))

    def _fits(self, layout: Layout, sub: dict, truth: dict) -> bool:
        return self._carries(layout, sub, truth) and self._assign(layout, sub, truth) is not None

    def _rewrite(self, layout: Layout, sub: dict, truth: dict, assigned: dict[str, Section]) -> tuple[dict, dict]:
        old = sub["fields"]
        new: dict[str, str] = {}
        renamed: dict[str, str] = {}  # registration field -> this form's field (for the truth's problems)
        for src, dst in layout.student.items():
            value = old.get(src, "")
            if src == "student_birthdate":
                value = _redate(value, layout.date_format)
            new[dst] = value
            renamed[src] = dst
        for section in layout.sections:
            for suffix in section.fields:
                new[section.prefix + _SECTION_SUFFIX.get(suffix, suffix)] = ""
        contacts: dict[str, dict] = {}
        for slot, section in assigned.items():
            for suffix in section.fields:
                src, dst = f"contact{slot}_{suffix}", section.prefix + _SECTION_SUFFIX.get(suffix, suffix)
                new[dst] = old.get(src, "")
                renamed[src] = dst
            contacts[str(section.slot)] = truth["contacts"][slot]
        extra: dict[str, object] = {"form": layout.form_id}
        if layout.same_address:
            extra["same_address"] = self._same_address(layout, new)
        dcid = truth.get("student_dcid")
        if layout.form_id == RETURNING and dcid is not None:
            # each behaviour draws from its own stream (per submission): one does not shift the others
            mailing = self._rng(sub["id"], "mailing")
            if mailing.random() < (0.9 if self.students[dcid]["mailing_street"] else 0.3):
                extra["mailing"] = self._type_mailing(new, dcid, mailing)
            naming = self._rng(sub["id"], "legal_name")
            typed = _as_a_family_writes(new["legal_first"], naming)
            if naming.random() < 0.3 and typed != new["legal_first"]:  # shown, never written (policy: never)
                new["legal_first"], extra["legal_name"] = typed, "differs"
        moved = {**copy.deepcopy(sub), "form_id": layout.form_id, "fields": new}
        moved_truth = {**copy.deepcopy(truth), "contacts": contacts, "form": extra,
                       "problems": [_rename_problem(p, renamed) for p in truth["problems"]]}
        return moved, moved_truth

    def _same_address(self, layout: Layout, fields: dict[str, str]) -> bool:
        box, source, target = layout.same_address
        first = [fields.get(source + part, "") for part in _ADDRESS]
        second = [fields.get(target + part, "") for part in _ADDRESS]
        same = bool(first[0]) and first == second and self.rng.random() < 0.8
        fields[box] = "Yes" if same else self.rng.choice(["No", ""])
        if same:  # the form hides the second address once the box is ticked
            for part in _ADDRESS:
                fields[target + part] = ""
        return same

    def _rng(self, submission_id: str, what: str) -> random.Random:
        return random.Random(f"{self.seed}:{submission_id}:{what}")

    def _type_mailing(self, fields: dict[str, str], dcid: int, rng: random.Random) -> str:
        """A family types a mailing address: into a blank one (the mapping fills it), or over one the school
        has (the mapping's if_empty keeps the school's)."""
        s = self.students[dcid]
        if not s["mailing_street"]:
            for part, src in zip(("street", "city", "state", "zip"), ("address_street", "address_city",
                                                                     "address_state", "address_zip"), strict=True):
                fields[f"mail_{part}"] = fields[src]
            return "fills_blank"
        fields.update({"mail_street": f"PO Box {rng.randint(100, 9999)}", "mail_city": s["mailing_city"] or s["city"],
                       "mail_state": "CA", "mail_zip": s["mailing_zip"] or s["zip"]})
        return "differs"


def _as_a_family_writes(first: str, rng: random.Random) -> str:
    """The legal first name as families write it on an update form: a nickname, or without its accents."""
    if first in NICKNAMES:
        return rng.choice(NICKNAMES[first])
    return ascii_fold(first)


def _redate(value: str, fmt: str) -> str:
    try:
        return datetime.strptime(value, "%m/%d/%Y").strftime(fmt)
    except ValueError:
        return value  # a malformed date stays malformed


def _rename_problem(problem: str, renamed: dict[str, str]) -> str:
    name, sep, rest = problem.partition(":")
    return f"{renamed.get(name, name)}{sep}{rest}"


def relayout(district: dict, submissions: list[dict], truth: dict, seed: int,
             weights: dict[str, int] | None = None) -> tuple[list[dict], dict]:
    """Move a share of the registration submissions onto the other forms (see the module docstring)."""
    mover = _Relayout(district, seed, weights or DEFAULT_WEIGHTS)
    out_subs, out_truth = [], {**truth, "submissions": {}}
    for sub in submissions:
        moved, moved_truth = mover.move(sub, truth["submissions"][sub["id"]])
        out_subs.append(moved)
        out_truth["submissions"][sub["id"]] = moved_truth
    return out_subs, out_truth
