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
from collections.abc import Callable, Iterable, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from functools import lru_cache
from operator import attrgetter

import numpy as np
from pydantic import Field, model_validator
from rapidfuzz import fuzz, process
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
from .names import (
    distinct_given_names,
    formal_names,
    known_first_name,
    nickname_equivalent,
    soundex,
    surname_parts,
)
from .normalize import (
    address_key,
    email_key,
    email_match_key,
    fold,
    phone_key,
    phone_match_key,
    phone_match_keys,
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


# ---------------------------------------------------------------- comparison keys


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
        addresses=_address_keys(person),
    )


def _address_keys(person: Person) -> frozenset[str]:
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
    and a one-letter typo in either name still shares one block with the right person. This is the
    definition: the index (NameBlocks) holds the same blocks as integer keys."""
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
#
# At district scale (10,000 submitted contacts against 200,000 persons) the blocking index and the cheap
# name test are integer arrays, and a whole batch of contacts goes through them at once:
# - the persons are grouped by *name* (the folded first and last name; many persons share one), and the
#   names by their spellings: per distinct first name and per distinct surname the block components
#   (Soundex codes, parts, initials) are made once, and a name's blocks are their product, made with numpy;
# - a block is a sorted array of name ids; a batch's blocks are looked up with one `searchsorted`;
# - the cheap name test (`_name_worth_scoring`) depends only on the pair of surnames and the pair of first
#   names, so it is computed once per distinct pair of spellings in the batch (rapidfuzz `cpdist` over
#   all of them at once for the Jaro-Winkler and OSA parts, Python only for compound names and nicknames);
# - only the persons that pass it, plus those with the same email or phone and the family's, reach the
#   full scorer (`_score`), and only candidates that make the list become pydantic objects.

_TAG_A, _TAG_B, _TAG_C = 1 << 58, 2 << 58, 3 << 58  # block kinds, see block_keys
_SHIFT = 29  # a block key is kind | last-side component << 29 | first-side component
_SWAP_SIM = 0.9  # both crossed names at least this: first and last name swapped
WORKERS = 1  # threads rapidfuzz may use for the batch comparisons (the rest of matching is one thread)
_BATCH = 4096  # contacts that go through the arrays together (bounds the memory of one batch)


@lru_cache(maxsize=1 << 16)
def _first_components(tokens: tuple[str, ...]) -> tuple[set[str], set[str], set[str]]:
    """(Soundex codes, initials, names) of a first name's tokens and the formal names they stand for."""
    names = _first_set(NameKeys(tokens, "", (), "", (), ""))
    return {soundex(x) for x in names}, {x[:1] for x in names}, names


@lru_cache(maxsize=1 << 16)
def _last_components(tokens: tuple[str, ...]) -> tuple[set[str], set[str], set[str]]:
    """(Soundex codes, parts, initials) of a surname's tokens: its parts without particles and the whole."""
    lasts = _last_set(NameKeys((), "", tokens, "".join(tokens), surname_parts(" ".join(tokens)), ""))
    return {soundex(x) for x in lasts}, lasts, {x[:1] for x in lasts}


def _cross(tag: int, n_last: np.ndarray, n_first: np.ndarray, last_csr: tuple[np.ndarray, np.ndarray],
           first_csr: tuple[np.ndarray, np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    """(block keys, name ids): for every name, each of its surname's components with each of its first
    name's components (one kind of block)."""
    lptr, lval = last_csr
    fptr, fval = first_csr
    lstart, lcount = lptr[n_last], lptr[n_last + 1] - lptr[n_last]
    fstart, fcount = fptr[n_first], fptr[n_first + 1] - fptr[n_first]
    count = lcount * fcount
    owner = np.repeat(np.arange(len(n_last), dtype=np.int64), count)
    k = np.arange(int(count.sum()), dtype=np.int64) - np.repeat(np.cumsum(count) - count, count)
    fc = fcount[owner]
    keys = tag | (lval[lstart[owner] + k // fc] << _SHIFT) | fval[fstart[owner] + k % fc]
    return keys, owner


def _starts(sorted_values: np.ndarray) -> np.ndarray:
    """True where a sorted array's value differs from the one before."""
    out = np.ones(len(sorted_values), dtype=bool)
    out[1:] = sorted_values[1:] != sorted_values[:-1]
    return out


def _distinct(values: np.ndarray, inverse: bool = False):
    """np.unique by sorting (numpy's default hash-based unique is ~15x slower on these int64 arrays):
    the sorted distinct values, and with inverse=True also each value's index among them."""
    if not inverse:
        ordered = np.sort(values)
        return ordered[_starts(ordered)]
    order = np.argsort(values, kind="stable")
    ordered = values[order]
    new = _starts(ordered)
    back = np.empty(len(values), dtype=np.int64)
    back[order] = np.cumsum(new) - 1
    return ordered[new], back


def _csr(rows: list[list[int]]) -> tuple[np.ndarray, np.ndarray]:
    ptr = np.zeros(len(rows) + 1, dtype=np.int64)
    ptr[1:] = np.cumsum([len(r) for r in rows])
    val = np.fromiter((x for r in rows for x in r), dtype=np.int64, count=int(ptr[-1]))
    return ptr, val


def _expand(ptr: np.ndarray, rows: np.ndarray, owners: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(owner, position) for every element of CSR row rows[i], owned by owners[i]."""
    start, count = ptr[rows], ptr[rows + 1] - ptr[rows]
    total = int(count.sum())
    pos = np.arange(total, dtype=np.int64) - np.repeat(np.cumsum(count) - count - start, count)
    return np.repeat(owners, count), pos


class Spellings:
    """Distinct first names (or surnames) as folded tokens, with what the vectorised name test reads of
    each as arrays: the tokens joined, one token or not, its length, a name of the nickname table or not."""

    def __init__(self, tokens: list[tuple[str, ...]]) -> None:
        self.tokens = tokens
        self.joined = np.array(["".join(t) for t in tokens], dtype=object)
        self.single = np.array([len(t) == 1 for t in tokens], dtype=bool)
        self.length = np.array([len(j) for j in self.joined.tolist()], dtype=np.int64)
        self.known = np.array([len(t) == 1 and known_first_name(t[0]) for t in tokens], dtype=bool)


class NameBlocks:
    """The name blocks of a set of persons as arrays; see block_keys for what a block is."""

    def __init__(self, pids: list[int], firsts: list[str], lasts: list[str]) -> None:
        self.ids: dict[str, int] = {}  # component string -> int
        self.first_tokens: list[tuple[str, ...]] = []  # by first-name id (folded spelling)
        self.last_tokens: list[tuple[str, ...]] = []  # by surname id
        self._query_keys: dict[tuple[tuple[str, ...], tuple[str, ...]], list[int]] = {}
        self._first_side: dict[tuple[str, ...], tuple[list[int], ...]] = {}
        self._last_side: dict[tuple[str, ...], tuple[list[int], ...]] = {}
        p_first = self._spellings(firsts, self.first_tokens)
        p_last = self._spellings(lasts, self.last_tokens)
        n_firsts, n_lasts = len(self.first_tokens), len(self.last_tokens)
        self.firsts = Spellings(self.first_tokens)
        self.lasts = Spellings(self.last_tokens)
        # names: distinct (first, last) spellings; the persons of each, by person id
        names, of_person = _distinct(p_first * max(n_lasts, 1) + p_last, inverse=True)
        self.name_first = names // max(n_lasts, 1)
        self.name_last = names % max(n_lasts, 1)
        order = np.argsort(of_person, kind="stable")
        self.person_ids = np.asarray(pids, dtype=np.int64)[order]
        self.name_ptr = np.zeros(len(names) + 1, dtype=np.int64)
        self.name_ptr[1:] = np.cumsum(np.bincount(of_person, minlength=len(names)))
        # block components per spelling, then every name's blocks
        fa, fb, fc = zip(*(self._intern(_first_components(t)) for t in self.first_tokens), strict=True) \
            if n_firsts else ((), (), ())
        la, lb, lc = zip(*(self._intern(_last_components(t)) for t in self.last_tokens), strict=True) \
            if n_lasts else ((), (), ())
        parts = [_cross(tag, self.name_last, self.name_first, _csr(list(lcomp)), _csr(list(fcomp)))
                 for tag, lcomp, fcomp in ((_TAG_A, la, fa), (_TAG_B, lb, fb), (_TAG_C, lc, fc))]
        keys = np.concatenate([k for k, _ in parts]) if parts else np.zeros(0, dtype=np.int64)
        owners = np.concatenate([o for _, o in parts]) if parts else np.zeros(0, dtype=np.int64)
        order = np.lexsort((owners, keys))
        keys, self.block_names = keys[order], owners[order]
        first_at = np.flatnonzero(_starts(keys))  # keys are sorted
        self.block_keys = keys[first_at]
        self.block_ptr = np.append(first_at, len(keys)).astype(np.int64)

    @staticmethod
    def _spellings(raw: list[str], table: list[tuple[str, ...]]) -> np.ndarray:
        """Id of each raw name's folded spelling (table gets the distinct spellings' tokens)."""
        distinct = {s: n for n, s in enumerate(dict.fromkeys(raw))}
        of_raw = list(map(distinct.__getitem__, raw))
        folded: dict[tuple[str, ...], int] = {}
        spelling = []
        for s in distinct:
            tokens = tuple(fold(s).split())
            sid = folded.get(tokens)
            if sid is None:
                sid = folded[tokens] = len(table)
                table.append(tokens)
            spelling.append(sid)
        return np.asarray(spelling, dtype=np.int64)[np.asarray(of_raw, dtype=np.int64)] if raw \
            else np.zeros(0, dtype=np.int64)

    def _intern(self, comps: tuple[set[str], ...]) -> list[list[int]]:
        ids = self.ids
        return [sorted(ids.setdefault(s, len(ids)) for s in comp) for comp in comps]

    def query_keys(self, name: NameKeys) -> list[int]:
        """The block keys of a submitted name, straight and with first and last name swapped (only those
        whose components occur among the persons: no other block exists)."""
        key = (name.first_tokens, name.last_tokens)
        got = self._query_keys.get(key)
        if got is None:
            out: set[int] = set()
            for ft, lt in ((name.first_tokens, name.last_tokens), (name.last_tokens, name.first_tokens)):
                fa, fb, fc = self._first_ids(ft)
                la, lb, lc = self._last_ids(lt)
                out.update([x | y for x in la for y in fa])
                out.update([x | y for x in lb for y in fb])
                out.update([x | y for x in lc for y in fc])
            got = self._query_keys[key] = list(out)
        return got

    def _first_ids(self, tokens: tuple[str, ...]) -> tuple[list[int], ...]:
        """The first-side components of these tokens, as ids (those that occur among the persons)."""
        got = self._first_side.get(tokens)
        if got is None:
            ids = self.ids
            got = self._first_side[tokens] = tuple([ids[s] for s in comp if s in ids]
                                                   for comp in _first_components(tokens))
        return got

    def _last_ids(self, tokens: tuple[str, ...]) -> tuple[list[int], ...]:
        """The surname-side components of these tokens, as ids shifted into place and tagged by kind."""
        got = self._last_side.get(tokens)
        if got is None:
            ids = self.ids
            got = self._last_side[tokens] = tuple([tag | ids[s] << _SHIFT for s in comp if s in ids]
                                                  for tag, comp in zip((_TAG_A, _TAG_B, _TAG_C),
                                                                       _last_components(tokens), strict=True))
        return got

    def block_pairs(self, names: list[NameKeys]) -> tuple[np.ndarray, np.ndarray]:
        """(query index, name id): every distinct pair of a submitted name and a person's name that share a
        block, ordered by query then name."""
        flat: list[int] = []
        counts: list[int] = []
        for n in names:
            got = self.query_keys(n)
            flat += got
            counts.append(len(got))
        keys = np.array(flat, dtype=np.int64)
        owner = np.repeat(np.arange(len(names), dtype=np.int64), counts)
        at = np.searchsorted(self.block_keys, keys)
        hit = at < len(self.block_keys)
        hit[hit] = self.block_keys[at[hit]] == keys[hit]
        query, pos = _expand(self.block_ptr, at[hit], owner[hit])
        n_names = max(len(self.name_first), 1)
        pair = _distinct(query * n_names + self.block_names[pos])
        return pair // n_names, pair % n_names

    def persons_of(self, query: np.ndarray, name: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(query index, person id) for the persons of each (query, name) pair."""
        owner, pos = _expand(self.name_ptr, name, query)
        return owner, self.person_ids[pos]


class ExactIndex:
    """key -> persons, for keys nearly all of which belong to one person (emails, phones): the first person
    of each key in one dict (one dict.setdefault per key), the few others in a second. Empty keys are not
    indexed."""

    __slots__ = ("first", "more")

    def __init__(self, keys: list[str], pids: list[int]) -> None:
        first: dict[str, int] = {}
        put = first.setdefault
        more: dict[str, list[int]] = {}
        for key, pid in [(k, p) for k, p in zip(keys, pids, strict=True) if k and put(k, p) != p]:
            more.setdefault(key, []).append(pid)
        self.first, self.more = first, more

    def get(self, key: str, default: Iterable[int] = ()) -> Iterable[int]:
        pid = self.first.get(key)
        if pid is None:
            return default
        more = self.more.get(key)
        return [pid, *more] if more else (pid,)


@dataclass
class MatchStats:
    """What blocking and scoring did (for benchmarks): counts summed over the calls of an index."""

    contacts: int = 0
    block_pairs: int = 0  # (contact, person) pairs proposed by a shared name block
    name_pairs: int = 0  # distinct (contact, person's name) pairs the vectorised name test checked
    value_pairs: int = 0  # (contact, person) pairs proposed by the same email or phone
    scored: int = 0  # pairs the full scorer scored (name test passed, same email/phone, family)


@dataclass
class ContactIndex:
    """Lookup tables over the snapshot's persons: exact email/phone, name blocks, links, households."""

    persons: dict[int, Person]
    region: str = "US"
    addresses: dict[int, frozenset[str]] = field(default_factory=dict)  # address keys, made when first asked
    by_email: ExactIndex = field(default_factory=lambda: ExactIndex([], []))  # email_key -> persons
    by_phone: ExactIndex = field(default_factory=lambda: ExactIndex([], []))  # phone_match_key -> persons
    blocks: NameBlocks = field(default_factory=lambda: NameBlocks([], [], []))
    links_by_student: dict[int, list[StudentLink]] = field(default_factory=lambda: defaultdict(list))
    links_by_person: dict[int, list[StudentLink]] = field(default_factory=lambda: defaultdict(list))
    household: dict[str, set[int]] = field(default_factory=lambda: defaultdict(set))  # family -> dcids
    stats: MatchStats = field(default_factory=MatchStats)

    def addresses_of(self, pid: int) -> frozenset[str]:
        """The person's current address keys (made when first asked)."""
        keys = self.addresses.get(pid)
        if keys is None:
            keys = self.addresses[pid] = _address_keys(self.persons[pid])
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
    pids = sorted(snapshot.persons)
    people = list(map(snapshot.persons.__getitem__, pids))
    pid_array = np.asarray(pids, dtype=np.int64)
    fields = list(map(attrgetter("first_name", "last_name", "emails", "phones"), people))
    firsts, lasts, emails, phones = zip(*fields, strict=True) if fields else ((), (), (), ())
    # emails by email_key: the match key of an address is its email_key when email-validator accepts it and
    # '' otherwise, so a submitted (valid) email finds exactly the persons whose match key equals it
    index.by_email = ExactIndex([email_key(e.address) for es in emails for e in es],
                                np.repeat(pid_array, list(map(len, emails))).tolist())
    index.by_phone = ExactIndex(phone_match_keys([ph.number for ps in phones for ph in ps], region),
                                np.repeat(pid_array, list(map(len, phones))).tolist())
    index.blocks = NameBlocks(pids, list(firsts), list(lasts))
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
    pairs, back = _distinct(left * n_right + right, inverse=True)
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
    for cached in (name_keys, _first_keys, _last_keys, block_keys, _first_components, _last_components, _first_sim,
                   _last_sim, _surname_parts, soundex, fold, phone_key, email_match_key):
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
