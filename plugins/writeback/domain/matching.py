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
from collections import defaultdict
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from functools import lru_cache

import numpy as np
from pydantic import Field, model_validator
from rapidfuzz import fuzz, process
from rapidfuzz.distance import OSA, JaroWinkler

from .match_index import (
    ContactIndex,
    NameBlocks,
    Spellings,
    build_index,
    clear_index_caches,
    distinct_values,
    paused_gc,
)
from .match_keys import NameKeys, PersonKeys, clear_key_caches, contact_keys, name_keys, person_keys
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
from .names import (
    distinct_given_names,
    nickname_equivalent,
    soundex,
    surname_parts,
)
from .normalize import (
    email_match_key,
    fold,
    phone_key,
)

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


_SWAP_SIM = 0.9  # both crossed names at least this: first and last name swapped
WORKERS = 1  # threads rapidfuzz may use for the batch comparisons (the rest of matching is one thread)
_BATCH = 4096  # contacts that go through the arrays together (bounds the memory of one batch)


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
    aj, bj = "".join(at), "".join(bt)
    if not aj or not bj:
        return 0.0, ""
    if aj == bj:
        return 1.0, "equal"
    for x in at:
        for y in bt:
            if nickname_equivalent(x, y):
                pair = sorted((x, y), key=lambda t: (len(t), t))
                return _NICKNAME_SIM, f"nickname {pair[0].title()}={pair[1].title()}"
    sa, sb = set(at), set(bt)
    if sa <= sb or sb <= sa:
        return _PART_SIM, "part"
    sim = max(_jw(aj, bj), _jw(at[0], bt[0]))
    if distinct_given_names(at[0], bt[0]) or distinct_given_names(aj, bj):
        return min(sim, 0.75), "fuzzy"  # Mario / María, Daniel / Daniela: two names, not a typo
    if _one_typo(aj, bj):
        return max(sim, _TYPO_SIM), "one-letter typo"
    return sim, "fuzzy"


def _one_typo(a: str, b: str) -> bool:
    return min(len(a), len(b)) >= 4 and OSA.distance(a, b) == 1


def last_name_similarity(a: NameKeys, b: NameKeys) -> tuple[float, str]:
    """(similarity 0..1, how) of two surnames; symmetric. Hyphens, spaces, particles and part order aside."""
    return _last_sim(a.last_tokens, b.last_tokens)


@lru_cache(maxsize=1 << 20)
def _last_sim(at: tuple[str, ...], bt: tuple[str, ...]) -> tuple[float, str]:
    aj, bj = "".join(at), "".join(bt)
    if not aj or not bj:
        return 0.0, ""
    if aj == bj:
        return 1.0, "equal"
    ap, bp = _surname_parts(at), _surname_parts(bt)
    if ap == bp or "".join(ap) == "".join(bp):
        return _SAME, "equal without particles"
    pa, pb = set(ap), set(bp)
    if pa == pb:
        return _PART_SIM, "parts reordered"
    if pa & pb:
        return _PART_SIM, "part equal"
    sim = _jw(aj, bj)
    weight = 1.0 if len(ap) == len(bp) == 1 else 0.97
    for x in ap:
        for y in bp:
            sim = max(sim, _jw(x, y) * weight)
    if _one_typo(aj, bj):
        return max(sim, _TYPO_SIM), "one-letter typo"
    return sim, "fuzzy"


@lru_cache(maxsize=1 << 16)
def _surname_parts(tokens: tuple[str, ...]) -> tuple[str, ...]:
    return surname_parts(" ".join(tokens))


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


@dataclass(slots=True)
class _Scored:
    person: Person
    person_id: int
    score: float
    reasons: list[str]
    first: float
    last: float
    swapped: bool
    contact_agrees: bool  # email or phone equal
    agrees: bool  # at least one field agrees
    names_agree: bool  # both names at least similar (or swapped)
    how_first: str = ""
    how_last: str = ""

    def candidate(self) -> dict:
        """The Candidate's fields (ContactMatch validates them with itself: half the cost of Candidate(...))."""
        p = self.person
        return {"person_id": p.id, "score": self.score, "reasons": self.reasons, "first_name": p.first_name,
                "last_name": p.last_name}

    def strong(self, t: MatchThresholds) -> bool:
        return not self.swapped and self.first >= t.certain_name and self.last >= t.certain_name

    def same_name(self) -> bool:
        """The same name up to accents, case, punctuation, nicknames and surname particles: no typo."""
        return not self.swapped and self.how_first in _SAME_FIRST and self.how_last in _SAME_LAST


def _score(q: PersonKeys, person: Person, part: tuple, email: bool, phone: bool,
           addresses: Callable[[int], frozenset[str]]) -> _Scored:
    """Score one person: its name part (_name_part: persons of one contact often share a name, so it is
    made once per name), email and phone (equal or not: the exact indexes know), and addresses(person id),
    asked only when something else agrees and the contact gave an address."""
    score, name_reasons, first, last, swapped, how_first, how_last, names_agree = part
    reasons = list(name_reasons)
    if email:
        score += WEIGHTS["email"]
        reasons.append("email equal")
    if phone:
        score += WEIGHTS["phone"]
        reasons.append("phone equal")
    agrees = bool(reasons)
    if agrees and q.addresses and q.addresses & addresses(person.id):
        score += ADDRESS_WEIGHT
        reasons.append("address equal")
    return _Scored(person, person.id, round(min(score, 1.0), 4), reasons, first, last, swapped, email or phone,
                   agrees, names_agree, how_first, how_last)


def _name_part(q: NameKeys, name: NameKeys, t: MatchThresholds) -> tuple:
    """(score, reasons, first, last, swapped, how first, how last, names agree) of the names alone."""
    reasons: list[str] = []
    score = 0.0
    first, how_first = _first_sim(q.first_tokens, name.first_tokens)
    last, how_last = _last_sim(q.last_tokens, name.last_tokens)
    swapped = False
    if (first < t.similar_name or last < t.similar_name) and first + last < 1.9:
        combined, ratio = _swapped(q, name)
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
    names_agree = swapped or (first >= t.similar_name and last >= t.similar_name)
    return (score, tuple(reasons), first, last, swapped,
            how_first.split(" ")[0] if how_first.startswith("nickname") else how_first, how_last, names_agree)


def _name_worth_scoring(q: NameKeys, p: NameKeys, t: MatchThresholds) -> bool:
    """Cheap test for a person a name block proposed: does the whole name agree, straight or swapped?
    Most persons of a block fail it. This is the definition; `_names_worth_scoring` computes the same for
    a whole batch of pairs at once."""
    if _last_agrees(q.last_tokens, p.last_tokens, t.similar_name):
        return _first_sim(q.first_tokens, p.first_tokens)[0] >= t.similar_name
    return _jw(q.first_joined, p.last_joined) >= _SWAP_SIM and _jw(q.last_joined, p.first_joined) >= _SWAP_SIM


def _last_agrees(a: tuple[str, ...], b: tuple[str, ...], threshold: float) -> bool:
    if len(a) == len(b) == 1 and a != b:
        # what _last_sim says for two one-word surnames (one part each), without building its keys
        sim = _jw(a[0], b[0])
        return sim >= threshold or (_one_typo(a[0], b[0]) and _TYPO_SIM >= threshold)
    return _last_sim(a, b)[0] >= threshold


def _per_distinct(left: np.ndarray, right: np.ndarray, n_right: int, test) -> np.ndarray:
    """test(left id, right id) for each pair, computed once per distinct pair; test takes two int arrays
    (the distinct pairs) and returns a bool array."""
    if not len(left):
        return np.zeros(0, dtype=bool)
    pairs, back = distinct_values(left * n_right + right, inverse=True)
    return test(pairs // n_right, pairs % n_right)[back]


def _names_worth_scoring(blocks: NameBlocks, names: list[NameKeys], query: np.ndarray, name: np.ndarray,
                         t: MatchThresholds) -> np.ndarray:
    """_name_worth_scoring for each (query index, person's name id) pair, as a bool array. The test only
    depends on the pair of surnames and the pair of first names, so each part is computed once per
    distinct pair of spellings: Jaro-Winkler and OSA in bulk (rapidfuzz cpdist), Python (_first_sim,
    _last_sim, cached) only for compound names and for pairs the bulk scores cannot rule out."""
    threshold = t.similar_name
    q_first_ids: dict[tuple[str, ...], int] = {}
    q_last_ids: dict[tuple[str, ...], int] = {}
    qf = np.array([q_first_ids.setdefault(n.first_tokens, len(q_first_ids)) for n in names], dtype=np.int64)
    ql = np.array([q_last_ids.setdefault(n.last_tokens, len(q_last_ids)) for n in names], dtype=np.int64)
    q_firsts, q_lasts = Spellings(list(q_first_ids)), Spellings(list(q_last_ids))
    p_firsts, p_lasts = blocks.firsts, blocks.lasts

    def bulk(a: Spellings, b: Spellings, ai: np.ndarray, bi: np.ndarray, exact, nickname: bool) -> np.ndarray:
        """exact(a tokens, b tokens) >= threshold for each pair; one-token pairs that Jaro-Winkler, a
        one-letter typo, equality or (first names) the nickname table cannot lift to the threshold are
        ruled out in bulk, the rest go to exact."""
        out = np.zeros(len(ai), dtype=bool)
        simple = np.flatnonzero(a.single[ai] & b.single[bi])
        x, y = a.joined[ai[simple]], b.joined[bi[simple]]
        xs, ys = x.tolist(), y.tolist()
        maybe = process.cpdist(xs, ys, scorer=JaroWinkler.normalized_similarity, dtype=np.float64,
                               workers=WORKERS) >= threshold
        maybe |= x == y
        if _TYPO_SIM >= threshold:
            maybe |= (process.cpdist(xs, ys, scorer=OSA.distance, dtype=np.int64, workers=WORKERS) == 1) \
                & (np.minimum(a.length[ai[simple]], b.length[bi[simple]]) >= 4)
        if nickname and _NICKNAME_SIM >= threshold:  # two names of the nickname table: are they one name?
            both = np.flatnonzero(~maybe & a.known[ai[simple]] & b.known[bi[simple]])
            maybe[both] = np.fromiter((nickname_equivalent(u, v) for u, v in zip(x[both].tolist(), y[both].tolist(),
                                                                                 strict=True)), bool, len(both))
        if not nickname:  # surnames: for one word each, Jaro-Winkler, typo and equality are the whole test
            out[simple] = maybe
            simple = simple[:0]
            maybe = maybe[:0]
        rest = np.concatenate([simple[maybe], np.flatnonzero(~(a.single[ai] & b.single[bi]))])
        at, bt = a.tokens, b.tokens
        out[rest] = np.fromiter((exact(at[i], bt[j])[0] >= threshold
                                 for i, j in zip(ai[rest].tolist(), bi[rest].tolist(), strict=True)), bool, len(rest))
        return out

    def crossed(a: Spellings, b: Spellings, ai: np.ndarray, bi: np.ndarray) -> np.ndarray:
        """Jaro-Winkler of the joined names >= _SWAP_SIM (an empty name never agrees, as in _jw)."""
        sim = process.cpdist(a.joined[ai].tolist(), b.joined[bi].tolist(), scorer=JaroWinkler.normalized_similarity,
                             dtype=np.float64, workers=WORKERS)
        return (sim >= _SWAP_SIM) & (a.length[ai] > 0) & (b.length[bi] > 0)

    n_pf, n_pl = max(len(p_firsts.tokens), 1), max(len(p_lasts.tokens), 1)
    p_first, p_last = blocks.name_first[name], blocks.name_last[name]
    q_f, q_l = qf[query], ql[query]
    last_ok = _per_distinct(q_l, p_last, n_pl, lambda i, j: bulk(q_lasts, p_lasts, i, j, _last_sim, False))
    worth = np.zeros(len(query), dtype=bool)
    on = np.flatnonzero(last_ok)
    worth[on] = _per_distinct(q_f[on], p_first[on], n_pf, lambda i, j: bulk(q_firsts, p_firsts, i, j, _first_sim, True))
    off = np.flatnonzero(~last_ok)
    off = off[_per_distinct(q_f[off], p_last[off], n_pl, lambda i, j: crossed(q_firsts, p_lasts, i, j))]
    worth[off] = _per_distinct(q_l[off], p_first[off], n_pf, lambda i, j: crossed(q_lasts, p_firsts, i, j))
    return worth


def score_candidate(contact: SubmittedContact, person: Person, region: str = "US",
                    thresholds: MatchThresholds | None = None) -> Candidate:
    """The score and reasons of one submitted contact against one person (no links considered)."""
    t = thresholds or DEFAULT_THRESHOLDS
    q, p = contact_keys(contact, region), person_keys(person, region)
    return Candidate(**_score(q, person, _name_part(q.name, p.name, t), bool(q.emails & p.emails),
                              bool(q.phones & p.phones), lambda _: p.addresses).candidate())


# ---------------------------------------------------------------- matching


def _family_links(student: Student, index: ContactIndex) -> list[StudentLink]:
    links = list(index.links_by_student.get(student.dcid, []))
    if student.family_ident:
        for dcid in sorted(index.household.get(student.family_ident, set()) - {student.dcid}):
            links.extend(index.links_by_student.get(dcid, []))
    return links


def candidate_ids(q: PersonKeys, index: ContactIndex) -> set[int]:
    """Blocking: the persons worth scoring for these keys (exact email/phone, shared name blocks)."""
    by_value = _by_value(q, index)
    blocks = index.blocks
    query, name = blocks.block_pairs([q.name])
    _, persons = blocks.persons_of(query, name)
    return by_value | set(persons.tolist())


def _by_value(q: PersonKeys, index: ContactIndex) -> set[int]:
    """The persons with the same email or phone."""
    return _same_email(q, index) | _same_phone(q, index)


_NO_IDS: frozenset[int] = frozenset()


def _same_email(q: PersonKeys, index: ContactIndex) -> set[int]:
    found: set[int] = set()
    for email in q.emails:
        found.update(index.by_email.get(email, ()))
    return found


def _same_phone(q: PersonKeys, index: ContactIndex) -> set[int]:
    found: set[int] = set()
    for phone in q.phones:
        found.update(index.by_phone.get(phone, ()))
    return found


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
    """Match one submitted contact (match_contacts does a batch at once, with the same result)."""
    return match_contacts([(submission_id, contact, student)], index, today, remembered, region, thresholds)[0]


def match_contacts(
    items: Sequence[tuple[str, SubmittedContact, Student]],
    index: ContactIndex,
    today: dt.date,
    remembered: dict[tuple[str, int], str] | None = None,
    region: str = "US",
    thresholds: MatchThresholds | None = None,
) -> list[ContactMatch]:
    """Match a batch of (submission id, contact, student), in order: blocking and the cheap name test run
    over the whole batch as arrays, then each contact is scored and classed on its own."""
    t = thresholds or DEFAULT_THRESHOLDS
    remembered = remembered or {}
    out: list[ContactMatch] = []
    for start in range(0, len(items), _BATCH):
        chunk = items[start:start + _BATCH]
        queries = [contact_keys(contact, region) for _, contact, _ in chunk]
        named = _named_candidates(queries, index, t)
        out.extend(_match_one(sid, contact, student, q, by_name, index, today, remembered, t)
                   for (sid, contact, student), q, by_name in zip(chunk, queries, named, strict=True))
    return out


def candidate_persons(queries: Sequence[PersonKeys], index: ContactIndex,
                      thresholds: MatchThresholds | None = None) -> list[set[int]]:
    """Per contact (its `contact_keys`), the persons of the index that blocking proposes and the cheap
    name test keeps, and those with the same email or phone: every person `match_contacts` could score
    for it apart from the student's family and slot. Blocking is by equal keys, so over a district in
    parts it is the union of what each part gives (`pipeline/matching_pages.py` relies on it)."""
    t = thresholds or DEFAULT_THRESHOLDS
    out: list[set[int]] = []
    for start in range(0, len(queries), _BATCH):
        chunk = list(queries[start:start + _BATCH])
        named = _named_candidates(chunk, index, t)
        out.extend(set(by_name) | _by_value(q, index) for q, by_name in zip(chunk, named, strict=True))
    return out


def _named_candidates(queries: list[PersonKeys], index: ContactIndex, t: MatchThresholds) -> list[list[int]]:
    """Per query, the persons a shared name block proposes whose name passes the cheap name test."""
    blocks = index.blocks
    names = [q.name for q in queries]
    query, name = blocks.block_pairs(names)
    keep = _names_worth_scoring(blocks, names, query, name, t)
    stats = index.stats
    stats.contacts += len(queries)
    stats.name_pairs += len(query)
    stats.block_pairs += int((blocks.name_ptr[name + 1] - blocks.name_ptr[name]).sum())
    owner, persons = blocks.persons_of(query[keep], name[keep])
    bounds = np.searchsorted(owner, np.arange(len(queries) + 1)).tolist()
    listed = persons.tolist()
    return [listed[bounds[i]:bounds[i + 1]] for i in range(len(queries))]


def _match_one(submission_id: str, contact: SubmittedContact, student: Student, q: PersonKeys, by_name: list[int],
               index: ContactIndex, today: dt.date, remembered: dict[tuple[str, int], str],
               t: MatchThresholds) -> ContactMatch:
    fp = fingerprint(student.student_number, contact) if remembered else ""
    student_links = index.links_by_student.get(student.dcid, [])
    linked: dict[int, StudentLink] = {}
    slot_person = None
    if student_links:
        linked = {lk.person_id: lk for lk in student_links}
        active = [lk for lk in student_links if not lk.is_expired(today)]
        slot_link = next((lk for lk in active if lk.sequence == contact.slot), None)
        slot_person = slot_link.person_id if slot_link else None
    family = {lk.person_id for lk in _family_links(student, index)} \
        if student_links or student.family_ident else _NO_IDS

    same_email = _same_email(q, index) if q.emails else _NO_IDS
    same_phone = _same_phone(q, index) if q.phones else _NO_IDS
    by_value = same_email | same_phone
    index.stats.value_pairs += len(by_value)
    persons = index.persons
    ids = set(by_name)  # persons of the snapshot by construction, like by_value; links may name others
    ids.update(by_value)
    if family:
        ids.update(pid for pid in family if pid in persons)
    if slot_person is not None and slot_person in persons:
        ids.add(slot_person)
    if remembered:
        ids = {pid for pid in ids if remembered.get((fp, pid)) != "not_a_match"}

    scored: list[_Scored] = []
    index.stats.scored += len(ids)
    names: dict[tuple[str, str], tuple] = {}  # the name part, by the person's name as written
    addresses_of, possible, qname = index.addresses_of, t.possible, q.name
    for pid in ids:
        person = persons[pid]
        written = (person.first_name, person.last_name)
        part = names.get(written)
        if part is None:
            part = names[written] = _name_part(qname, name_keys(*written), t)
        s = _score(q, person, part, pid in same_email, pid in same_phone, addresses_of)
        # district-wide, a name agrees only as a whole (thousands share a first or a last name);
        # within the family any one field is enough
        relevant = s.agrees and s.score >= possible and (s.contact_agrees or s.names_agree or pid in family)
        if pid == slot_person:
            s.reasons.append(f"linked to this student in slot {contact.slot}")
        elif not relevant:
            continue
        elif pid in linked:
            s.reasons.append("linked to this student")
        scored.append(s)
    scored.sort(key=lambda s: (-s.score, s.person_id))

    def result(cls: MatchClass, person_id: int | None, flags: list[str]) -> ContactMatch:
        shown = scored[:t.max_candidates]
        if slot_person is not None and slot_person not in {s.person_id for s in shown}:
            shown += [s for s in scored if s.person_id == slot_person]  # the red person's subject
        return ContactMatch(submission_id=submission_id, slot=contact.slot, match_class=cls, person_id=person_id,
                            candidates=[s.candidate() for s in shown], flags=flags, slot_person_id=slot_person)

    if remembered:
        confirmed = sorted(pid for pid in ids if remembered.get((fp, pid)) == "confirm")
        if len(confirmed) == 1:
            return result(MatchClass.CERTAIN, confirmed[0], [])

    certain = _certain(scored, linked, t)
    if certain is not None:
        return result(MatchClass.CERTAIN, certain, [])

    flags = []
    if slot_person is not None:
        slot = next((s for s in scored if s.person_id == slot_person), None)
        if not (slot and slot.names_agree):
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
                   and (s.same_name() or (s.strong(t) and s.contact_agrees))] if linked else []
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
    fits = [s for s in scored if s.contact_agrees and s.same_name()]
    if not fits:
        return None
    best = fits[0]
    if any(s is not best and close(best, s) for s in scored):
        return None
    return best.person_id


def clear_caches() -> None:
    """Forget every memoised key and name comparison of matching (and of the normalisers it uses): for
    benchmarks that time a cold start."""
    clear_key_caches()
    clear_index_caches()
    for cached in (_first_sim, _last_sim, _surname_parts, soundex, fold, phone_key, email_match_key):
        cached.cache_clear()


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
    items = [(record.submission_id, contact, by_number[record.student_number])
             for record in records for contact in record.contacts]
    found = iter(match_contacts(items, index, today, remembered, region, thresholds))
    for record in records:
        mine = [next(found) for _ in record.contacts]
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
