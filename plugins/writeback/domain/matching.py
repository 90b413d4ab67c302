"""Contact matching: blocking, fuzzy scores with reasons, and the certain / possible / none classes.

A submitted contact is compared with the PowerSchool persons that *blocking* proposes — never with all
of them:
- the persons whose email or phone is the same (exact indexes, after normalisation);
- the persons whose name lands in one of the same name blocks (Soundex of a surname part with Soundex of
  a nickname-canonical first name; a surname part with a first-name initial; a first name with a
  surname initial), also with first and last name swapped;
- the persons linked to this student, to the student's siblings and to the household.

Each candidate gets a score (weighted agreement of first name, last name, email, phone, plus a little for
the same address) and the reasons a reviewer reads ("first name ~0.95 (nickname Bill=William)", "last
name part equal", "email equal", "linked to this student in slot 2").

Classes (thresholds in the district config, `matching:`):
- **certain** — goes through without a person:
  * a reviewer confirmed this person for this student, slot and name before; or
  * exactly one person linked to this student has the same name (accents, case, punctuation,
    nicknames, surname particles aside), or a strongly agreeing name (a typo) with the same email or
    phone; or
  * the best candidate has the same name (a typo is not enough here: families share emails and
    phones) *and* the same email or phone;
  and in the last two cases no rival comes close — for a linked person, another linked look-alike or a
  look-alike with the same email or phone within `margin` of the score; otherwise any candidate within
  `margin` — so two PowerSchool persons that both fit (duplicates) are never certain.
- **possible** — some candidate agrees on at least one field; a reviewer confirms or says not a match.
- **none** — nobody agrees: a new contact.

Name mismatch (red person): the student's link in this slot points to a person whose name is not a
variant of the submitted one (a nickname, a dropped accent or a typo is a variant) — unless the family
only reordered its contacts and another slot of the same form matched that person certainly.
"""

from __future__ import annotations

import datetime as dt
import gc
from collections import defaultdict
from collections.abc import Iterable
from contextlib import contextmanager
from dataclasses import dataclass, field
from functools import lru_cache

from pydantic import Field, model_validator
from rapidfuzz import fuzz
from rapidfuzz.distance import OSA, JaroWinkler

from .models import (
    Candidate,
    ContactMatch,
    FormRecord,
    MatchClass,
    Model,
    Person,
    Snapshot,
    Student,
    StudentLink,
    SubmittedContact,
)
from .names import distinct_given_names, formal_names, nickname_equivalent, soundex, surname_parts
from .normalize import address_key, email_match_key, fold, phone_match_key

WEIGHTS = {"first_name": 0.25, "last_name": 0.30, "email": 0.25, "phone": 0.20}
ADDRESS_WEIGHT = 0.05  # the same home address: a little evidence, never enough on its own

_NICKNAME_SIM = 0.95  # Bill ~ William
_PART_SIM = 0.9  # "José" ~ "José Luis", "López" ~ "García-López"
_SAME = 0.95  # equal without particles
_SAME_FIRST = frozenset({"equal", "nickname"})
_SAME_LAST = frozenset({"equal", "equal without particles"})
_TYPO_SIM = 0.92  # one letter substituted, dropped, doubled or two swapped, in a name of 4+ letters


class MatchThresholds(Model):
    """`matching:` in the district config."""

    certain_name: float = Field(0.9, ge=0, le=1)  # first AND last name at least this: names strongly agree
    similar_name: float = Field(0.8, ge=0, le=1)  # a name field agrees at or above this (Jaro-Winkler)
    possible: float = Field(0.2, ge=0, le=1)  # lowest score a listed candidate has (one agreeing field)
    margin: float = Field(0.1, ge=0, le=1)  # a rival this close to the best blocks a certain match
    max_candidates: int = Field(5, ge=1)

    @model_validator(mode="after")
    def _ordered(self) -> MatchThresholds:
        if self.similar_name > self.certain_name:
            raise ValueError("matching.similar_name must not exceed matching.certain_name")
        return self


DEFAULT_THRESHOLDS = MatchThresholds()


# ---------------------------------------------------------------- comparison keys


@dataclass(frozen=True)
class NameKeys:
    first_tokens: tuple[str, ...]
    first_joined: str
    last_tokens: tuple[str, ...]
    last_joined: str
    last_parts: tuple[str, ...]
    full: str


@lru_cache(maxsize=1 << 18)
def name_keys(first: str, last: str) -> NameKeys:
    ft, lt = tuple(fold(first).split()), tuple(fold(last).split())
    return NameKeys(ft, "".join(ft), lt, "".join(lt), surname_parts(" ".join(lt)), " ".join(ft + lt))


@dataclass(frozen=True)
class PersonKeys:
    name: NameKeys
    emails: frozenset[str]
    phones: frozenset[str]
    addresses: frozenset[str]


def person_keys(person: Person, region: str) -> PersonKeys:
    return PersonKeys(
        name=name_keys(person.first_name, person.last_name),
        emails=frozenset(k for e in person.emails if (k := email_match_key(e.address))),
        phones=frozenset(k for p in person.phones if (k := phone_match_key(p.number, region))),
        addresses=frozenset(address_key(a.street, a.postal_code, a.unit) for a in person.addresses
                            if a.street and not a.end_date),
    )


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


def _first_set(name: NameKeys) -> set[str]:
    out: set[str] = set()
    for tok in name.first_tokens:
        out.add(tok)
        out |= formal_names(tok)
    return out


def _last_set(name: NameKeys) -> set[str]:
    return set(name.last_parts) | ({name.last_joined} if name.last_joined else set())


@lru_cache(maxsize=1 << 18)
def block_keys(name: NameKeys, swapped: bool = False) -> frozenset[str]:
    """The name blocks a name falls in. Each pairs a surname part with a first name, so blocks stay small
    and a one-letter typo in either name still shares one block with the right person."""
    if swapped:
        name = NameKeys(name.last_tokens, name.last_joined, name.first_tokens, name.first_joined,
                        surname_parts(" ".join(name.first_tokens)), name.full)
    firsts, lasts = _first_set(name), _last_set(name)
    keys: set[str] = set()
    for last in lasts:
        sl = soundex(last)
        for first in firsts:
            keys.add(f"a|{sl}|{soundex(first)}")
            keys.add(f"b|{last}|{first[:1]}")
            keys.add(f"c|{first}|{last[:1]}")
    return frozenset(keys)


# ---------------------------------------------------------------- the index


@dataclass
class ContactIndex:
    """Lookup tables over the snapshot's persons: exact email/phone, name blocks, links, households."""

    persons: dict[int, Person]
    region: str = "US"
    keys: dict[int, PersonKeys] = field(default_factory=dict)  # made when a person is first scored
    names: dict[int, NameKeys] = field(default_factory=dict)
    by_email: dict[str, list[int]] = field(default_factory=lambda: defaultdict(list))
    by_phone: dict[str, list[int]] = field(default_factory=lambda: defaultdict(list))
    by_name: dict[str, list[int]] = field(default_factory=lambda: defaultdict(list))
    links_by_student: dict[int, list[StudentLink]] = field(default_factory=lambda: defaultdict(list))
    links_by_person: dict[int, list[StudentLink]] = field(default_factory=lambda: defaultdict(list))
    household: dict[str, set[int]] = field(default_factory=lambda: defaultdict(set))  # family -> dcids

    def add_person(self, person: Person) -> None:
        """Index a person for blocking; its full comparison keys are made when it is first scored."""
        pid = person.id
        for e in person.emails:
            if key := email_match_key(e.address):
                self.by_email[key].append(pid)
        for p in person.phones:
            if key := phone_match_key(p.number, self.region):
                self.by_phone[key].append(pid)
        name = self.names[pid] = name_keys(person.first_name, person.last_name)
        for key in block_keys(name):
            self.by_name[key].append(pid)

    def keys_of(self, pid: int) -> PersonKeys:
        keys = self.keys.get(pid)
        if keys is None:
            keys = self.keys[pid] = person_keys(self.persons[pid], self.region)
        return keys


@contextmanager
def paused_gc():
    """Pause the cyclic garbage collector while millions of small, acyclic objects are made: its full
    passes over a district-sized heap would otherwise cost more than the work (2x at 100k persons)."""
    was = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was:
            gc.enable()


def build_index(snapshot: Snapshot, region: str = "US") -> ContactIndex:
    with paused_gc():
        return _build_index(snapshot, region)


def _build_index(snapshot: Snapshot, region: str) -> ContactIndex:
    index = ContactIndex(persons=snapshot.persons, region=region)
    for pid in sorted(snapshot.persons):
        index.add_person(snapshot.persons[pid])
    for link in snapshot.links:
        index.links_by_student[link.student_dcid].append(link)
        index.links_by_person[link.person_id].append(link)
    for links in index.links_by_student.values():
        links.sort(key=lambda lk: (lk.sequence, lk.id))
    for links in index.links_by_person.values():
        links.sort(key=lambda lk: (lk.student_dcid, lk.id))
    for student in snapshot.students.values():
        if student.family_ident:
            index.household[student.family_ident].add(student.dcid)
    return index


def fingerprint(student_number: str, contact: SubmittedContact) -> str:
    """What a remembered decision is keyed by: the student, the slot and the submitted name."""
    return f"{student_number}|{contact.slot}|{fold(contact.first_name)}|{fold(contact.last_name)}"


# ---------------------------------------------------------------- name similarity


def _jw(a: str, b: str) -> float:
    return JaroWinkler.normalized_similarity(a, b) if a and b else 0.0


def first_name_similarity(a: NameKeys, b: NameKeys) -> tuple[float, str]:
    """(similarity 0..1, how) of two first names; symmetric."""
    return _first_sim(a.first_tokens, b.first_tokens)


@lru_cache(maxsize=1 << 20)  # names repeat (Zipf): most comparisons of a district are cache hits
def _first_sim(at: tuple[str, ...], bt: tuple[str, ...]) -> tuple[float, str]:
    a = NameKeys(at, "".join(at), (), "", (), "")
    b = NameKeys(bt, "".join(bt), (), "", (), "")
    if not a.first_joined or not b.first_joined:
        return 0.0, ""
    if a.first_joined == b.first_joined:
        return 1.0, "equal"
    for x in a.first_tokens:
        for y in b.first_tokens:
            if nickname_equivalent(x, y):
                pair = sorted((x, y), key=lambda t: (len(t), t))
                return _NICKNAME_SIM, f"nickname {pair[0].title()}={pair[1].title()}"
    sa, sb = set(a.first_tokens), set(b.first_tokens)
    if sa <= sb or sb <= sa:
        return _PART_SIM, "part"
    sim = max(_jw(a.first_joined, b.first_joined), _jw(a.first_tokens[0], b.first_tokens[0]))
    if distinct_given_names(a.first_tokens[0], b.first_tokens[0]) or distinct_given_names(a.first_joined,
                                                                                         b.first_joined):
        return min(sim, 0.75), "fuzzy"  # Mario / María, Daniel / Daniela: two names, not a typo
    if _one_typo(a.first_joined, b.first_joined):
        return max(sim, _TYPO_SIM), "one-letter typo"
    return sim, "fuzzy"


def _one_typo(a: str, b: str) -> bool:
    return min(len(a), len(b)) >= 4 and OSA.distance(a, b) == 1


def last_name_similarity(a: NameKeys, b: NameKeys) -> tuple[float, str]:
    """(similarity 0..1, how) of two surnames; symmetric. Hyphens, spaces, particles and part order aside."""
    return _last_sim(a.last_tokens, b.last_tokens)


@lru_cache(maxsize=1 << 20)
def _last_sim(at: tuple[str, ...], bt: tuple[str, ...]) -> tuple[float, str]:
    a = NameKeys((), "", at, "".join(at), surname_parts(" ".join(at)), "")
    b = NameKeys((), "", bt, "".join(bt), surname_parts(" ".join(bt)), "")
    if not a.last_joined or not b.last_joined:
        return 0.0, ""
    if a.last_joined == b.last_joined:
        return 1.0, "equal"
    if a.last_parts == b.last_parts or "".join(a.last_parts) == "".join(b.last_parts):
        return _SAME, "equal without particles"
    pa, pb = set(a.last_parts), set(b.last_parts)
    if pa == pb:
        return _PART_SIM, "parts reordered"
    if pa & pb:
        return _PART_SIM, "part equal"
    sim = _jw(a.last_joined, b.last_joined)
    for x in a.last_parts:
        for y in b.last_parts:
            sim = max(sim, _jw(x, y) * (1.0 if len(a.last_parts) == len(b.last_parts) == 1 else 0.97))
    if _one_typo(a.last_joined, b.last_joined):
        return max(sim, _TYPO_SIM), "one-letter typo"
    return sim, "fuzzy"


def name_similarity(a: NameKeys, b: NameKeys) -> float:
    """One number for two whole names (0.45 first + 0.55 last, or the swapped reading); symmetric."""
    first, _ = first_name_similarity(a, b)
    last, _ = last_name_similarity(a, b)
    straight = 0.45 * first + 0.55 * last
    return round(max(straight, _swapped(a, b)[0]), 4)


def _swapped(a: NameKeys, b: NameKeys) -> tuple[float, float]:
    """(combined, token-sort ratio) when a's first/last are b's last/first; 0 when it does not read so."""
    if not (a.first_joined and a.last_joined and b.first_joined and b.last_joined):
        return 0.0, 0.0
    ratio = fuzz.token_sort_ratio(a.full, b.full) / 100
    if ratio < 0.9:
        return 0.0, ratio
    sa = _jw(a.first_joined, b.last_joined)
    sb = _jw(a.last_joined, b.first_joined)
    if min(sa, sb) < 0.9:
        return 0.0, ratio
    return (sa + sb) / 2, ratio  # equal weights: which side's first name it was must not matter


# ---------------------------------------------------------------- scoring


@dataclass
class _Scored:
    candidate: Candidate
    first: float
    last: float
    swapped: bool
    contact_agrees: bool  # email or phone equal
    agrees: bool  # at least one field agrees
    names_agree: bool  # both names at least similar (or swapped)
    how_first: str = ""
    how_last: str = ""

    @property
    def person_id(self) -> int:
        return self.candidate.person_id

    @property
    def score(self) -> float:
        return self.candidate.score

    def strong(self, t: MatchThresholds) -> bool:
        return not self.swapped and self.first >= t.certain_name and self.last >= t.certain_name

    def same_name(self) -> bool:
        """The same name up to accents, case, punctuation, nicknames and surname particles: no typo."""
        return not self.swapped and self.how_first in _SAME_FIRST and self.how_last in _SAME_LAST


def _score(q: PersonKeys, person: Person, p: PersonKeys, t: MatchThresholds) -> _Scored:
    reasons: list[str] = []
    score = 0.0
    first, how_first = first_name_similarity(q.name, p.name)
    last, how_last = last_name_similarity(q.name, p.name)
    swapped = False
    if (first < t.similar_name or last < t.similar_name) and first + last < 1.9:
        combined, ratio = _swapped(q.name, p.name)
        if combined:
            swapped = True
            first = last = combined
            reasons.append(f"first and last name swapped (token sort ~{ratio:.2f})")
            score += (WEIGHTS["first_name"] + WEIGHTS["last_name"]) * combined
    if not swapped:
        if first >= t.similar_name:
            score += WEIGHTS["first_name"] * first
            reasons.append("first name equal" if how_first == "equal" else
                           "first name part equal" if how_first == "part" else
                           f"first name ~{first:.2f}" + (f" ({how_first})" if how_first != "fuzzy" else ""))
        if last >= t.similar_name:
            score += WEIGHTS["last_name"] * last
            reasons.append("last name equal" if how_last == "equal" else
                           f"last name {how_last}" if how_last in {"part equal", "parts reordered"} else
                           f"last name ~{last:.2f}" + (f" ({how_last})" if how_last != "fuzzy" else ""))
    email = bool(q.emails & p.emails)
    phone = bool(q.phones & p.phones)
    if email:
        score += WEIGHTS["email"]
        reasons.append("email equal")
    if phone:
        score += WEIGHTS["phone"]
        reasons.append("phone equal")
    agrees = bool(reasons)
    if agrees and q.addresses & p.addresses:
        score += ADDRESS_WEIGHT
        reasons.append("address equal")
    names_agree = swapped or (first >= t.similar_name and last >= t.similar_name)
    cand = Candidate(person_id=person.id, score=round(min(score, 1.0), 4), reasons=reasons,
                     first_name=person.first_name, last_name=person.last_name)
    return _Scored(cand, first, last, swapped, email or phone, agrees, names_agree,
                   how_first.split(" ")[0] if how_first.startswith("nickname") else how_first, how_last)


def _name_worth_scoring(q: NameKeys, p: NameKeys, t: MatchThresholds) -> bool:
    """Cheap test for a person a name block proposed: does the whole name agree, straight or swapped?
    Most persons of a block fail it (the comparisons are cached: names repeat)."""
    if len(q.last_parts) == len(p.last_parts) == 1 == len(q.last_tokens) == len(p.last_tokens) \
            and q.last_joined != p.last_joined and _jw(q.last_joined, p.last_joined) < t.similar_name \
            and not _one_typo(q.last_joined, p.last_joined):
        last_ok = False  # what _last_sim would say for two one-word surnames, without building its keys
    else:
        last_ok = _last_sim(q.last_tokens, p.last_tokens)[0] >= t.similar_name
    if last_ok:
        return _first_sim(q.first_tokens, p.first_tokens)[0] >= t.similar_name
    return _jw(q.first_joined, p.last_joined) >= 0.9 and _jw(q.last_joined, p.first_joined) >= 0.9


def score_candidate(contact: SubmittedContact, person: Person, region: str = "US",
                    thresholds: MatchThresholds | None = None) -> Candidate:
    """The score and reasons of one submitted contact against one person (no links considered)."""
    t = thresholds or DEFAULT_THRESHOLDS
    return _score(contact_keys(contact, region), person, person_keys(person, region), t).candidate


# ---------------------------------------------------------------- matching one contact


def _family_links(student: Student, index: ContactIndex) -> list[StudentLink]:
    links = list(index.links_by_student.get(student.dcid, []))
    if student.family_ident:
        for dcid in sorted(index.household.get(student.family_ident, set()) - {student.dcid}):
            links.extend(index.links_by_student.get(dcid, []))
    return links


def candidate_ids(q: PersonKeys, index: ContactIndex) -> set[int]:
    """Blocking: the persons worth scoring for these keys (exact email/phone, shared name blocks)."""
    by_value, by_name = _blocked(q, index)
    return by_value | by_name


def _blocked(q: PersonKeys, index: ContactIndex) -> tuple[set[int], set[int]]:
    """(persons with the same email or phone, persons sharing a name block)."""
    by_value: set[int] = set()
    for email in q.emails:
        by_value.update(index.by_email.get(email, ()))
    for phone in q.phones:
        by_value.update(index.by_phone.get(phone, ()))
    by_name: set[int] = set()
    for key in block_keys(q.name) | block_keys(q.name, swapped=True):
        by_name.update(index.by_name.get(key, ()))
    return by_value, by_name


def match_contact(
    submission_id: str,
    contact: SubmittedContact,
    student: Student,
    index: ContactIndex,
    today: dt.date,
    remembered: dict[tuple[str, int], str] | None = None,
    region: str = "US",
    thresholds: MatchThresholds | None = None,
) -> ContactMatch:
    t = thresholds or DEFAULT_THRESHOLDS
    remembered = remembered or {}
    fp = fingerprint(student.student_number, contact)
    q = contact_keys(contact, region)
    student_links = index.links_by_student.get(student.dcid, [])
    linked = {lk.person_id: lk for lk in student_links}
    active = [lk for lk in student_links if not lk.is_expired(today)]
    slot_link = next((lk for lk in active if lk.sequence == contact.slot), None)
    slot_person = slot_link.person_id if slot_link else None
    family = {lk.person_id for lk in _family_links(student, index)}

    by_value, by_name = _blocked(q, index)
    sure = by_value | family | ({slot_person} if slot_person is not None else set())
    persons, names = index.persons, index.names
    worth: dict[int, bool] = {}  # by NameKeys identity: persons of one block often share the whole name
    kept = set()
    for pid in by_name - sure:
        name = names[pid]
        ok = worth.get(id(name))
        if ok is None:
            ok = worth[id(name)] = _name_worth_scoring(q.name, name, t)
        if ok:
            kept.add(pid)
    by_name = kept
    ids = {pid for pid in sure | by_name if pid in persons and remembered.get((fp, pid)) != "not_a_match"}

    scored: list[_Scored] = []
    for pid in ids:
        in_family = pid in family
        s = _score(q, persons[pid], index.keys_of(pid), t)
        # district-wide, a name agrees only as a whole (thousands share a first or a last name);
        # within the family any one field is enough
        relevant = s.agrees and s.score >= t.possible and (in_family or s.contact_agrees or s.names_agree)
        if not (relevant or pid == slot_person):
            continue
        if pid == slot_person:
            s.candidate.reasons.append(f"linked to this student in slot {contact.slot}")
        elif pid in linked:
            s.candidate.reasons.append("linked to this student")
        scored.append(s)
    scored.sort(key=lambda s: (-s.score, s.person_id))

    def result(cls: MatchClass, person_id: int | None, flags: list[str]) -> ContactMatch:
        shown = [s.candidate for s in scored[:t.max_candidates]]
        if slot_person is not None and slot_person not in {c.person_id for c in shown}:
            shown += [s.candidate for s in scored if s.person_id == slot_person]  # the red person's subject
        return ContactMatch(submission_id=submission_id, slot=contact.slot, match_class=cls, person_id=person_id,
                            candidates=shown, flags=flags, slot_person_id=slot_person)

    confirmed = sorted(pid for pid in ids if remembered.get((fp, pid)) == "confirm")
    if len(confirmed) == 1:
        return result(MatchClass.CERTAIN, confirmed[0], [])

    certain = _certain(scored, linked, t)
    if certain is not None:
        return result(MatchClass.CERTAIN, certain, [])

    flags = []
    slot = next((s for s in scored if s.person_id == slot_person), None)
    if slot_person is not None and not (slot and slot.names_agree):
        flags.append("name_mismatch")
    if scored:
        return result(MatchClass.POSSIBLE, None, flags)
    return result(MatchClass.NONE, None, flags)


def _certain(scored: list[_Scored], linked: dict[int, StudentLink], t: MatchThresholds) -> int | None:
    """The one person a rule makes certain, or None."""
    def close(a: _Scored, b: _Scored) -> bool:
        return b.score >= a.score - t.margin - 1e-9

    # 1. a person linked to this student: the same name, or a strongly agreeing name with the same email/phone
    linked_fits = [s for s in scored if s.person_id in linked
                   and (s.same_name() or (s.strong(t) and s.contact_agrees))]
    if len(linked_fits) == 1:
        best = linked_fits[0]
        rivals = [s for s in scored if s is not best and s.strong(t)
                  and (s.person_id in linked or (s.contact_agrees and close(best, s)))]
        if not rivals:
            return best.person_id
    if linked_fits:
        return None  # two linked persons fit: a person decides
    # 2. anyone: the same name (nickname, accents, particles aside; a typo is not enough for a person the
    #    student has no link to: families share emails and phones) and the same email or phone; nobody
    #    else comes close
    fits = [s for s in scored if s.same_name() and s.contact_agrees]
    if not fits:
        return None
    best = fits[0]
    if any(s is not best and close(best, s) for s in scored):
        return None
    return best.person_id


# ---------------------------------------------------------------- a whole batch


def match_records(records: list[FormRecord], snapshot: Snapshot, today: dt.date,
                  remembered: dict[tuple[str, int], str] | None = None, region: str = "US",
                  index: ContactIndex | None = None,
                  thresholds: MatchThresholds | None = None) -> dict[tuple[str, int], ContactMatch]:
    """Match every submitted contact of every record; keyed by (submission id, slot)."""
    index = index or build_index(snapshot, region)
    by_number = snapshot.student_by_number()
    matches = {}
    with paused_gc():
        _match_all(records, by_number, index, today, remembered, region, thresholds, matches)
    return matches


def _match_all(records: list[FormRecord], by_number: dict[str, Student], index: ContactIndex, today: dt.date,
               remembered: dict[tuple[str, int], str] | None, region: str, thresholds: MatchThresholds | None,
               matches: dict[tuple[str, int], ContactMatch]) -> None:
    for record in records:
        student = by_number[record.student_number]
        mine = [match_contact(record.submission_id, contact, student, index, today, remembered, region, thresholds)
                for contact in record.contacts]
        for m in reconcile_form(mine, thresholds):
            matches[(record.submission_id, m.slot)] = m


def reconcile_form(matches: Iterable[ContactMatch], thresholds: MatchThresholds | None = None) -> list[ContactMatch]:
    """Cross-slot rules of one form:
    - a slot whose linked person another slot matched certainly was only reordered by the family: no
      name mismatch, and that person is no candidate for this slot unless something else agrees;
    - two slots certain of the same person: neither is certain (the family listed someone twice, or the
      rules are fooled), a person decides."""
    t = thresholds or DEFAULT_THRESHOLDS
    matches = list(matches)
    certain_count: dict[int, int] = defaultdict(int)
    for m in matches:
        if m.match_class == MatchClass.CERTAIN and m.person_id is not None:
            certain_count[m.person_id] += 1
    out = []
    for m in matches:
        m = m.model_copy(deep=True)
        if m.match_class == MatchClass.CERTAIN and certain_count.get(m.person_id, 0) > 1:
            m.match_class, m.person_id = MatchClass.POSSIBLE, None
        elif m.match_class != MatchClass.CERTAIN and m.slot_person_id is not None \
                and certain_count.get(m.slot_person_id, 0) == 1:
            if "name_mismatch" in m.flags:
                m.flags = [f for f in m.flags if f != "name_mismatch"]
                m.candidates = [c for c in m.candidates
                                if not (c.person_id == m.slot_person_id and c.score < t.possible)]
            if not m.candidates:
                m.match_class = MatchClass.NONE
        out.append(m)
    return out
