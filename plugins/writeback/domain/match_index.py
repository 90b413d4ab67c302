"""The blocking index over a snapshot's persons.

At district scale (10,000 submitted contacts against 200,000 persons) the blocking index and the cheap
name test are integer arrays, and a whole batch of contacts goes through them at once:
- the persons are grouped by *name* (the folded first and last name; many persons share one), and the
  names by their spellings: per distinct first name and per distinct surname the block components
  (Soundex codes, parts, initials) are made once, and a name's blocks are their product, made with numpy;
- a block is a sorted array of name ids; a batch's blocks are looked up with one `searchsorted`;
- the cheap name test (`_name_worth_scoring`) depends only on the pair of surnames and the pair of first
  names, so it is computed once per distinct pair of spellings in the batch (rapidfuzz `cpdist` over
  all of them at once for the Jaro-Winkler and OSA parts, Python only for compound names and nicknames);
- only the persons that pass it, plus those with the same email or phone and the family's, reach the
  full scorer (`_score`), and only candidates that make the list become pydantic objects.
"""

from __future__ import annotations

import gc
from collections import defaultdict
from collections.abc import Iterable
from contextlib import contextmanager
from dataclasses import dataclass, field
from functools import lru_cache
from operator import attrgetter

import numpy as np

from .match_keys import NameKeys, first_name_set, person_address_keys, surname_set
from .models import (
    Person,
    Snapshot,
    StudentLink,
)
from .names import (
    known_first_name,
    soundex,
    surname_parts,
)
from .normalize import (
    email_key,
    fold,
    phone_match_keys,
)

_TAG_A, _TAG_B, _TAG_C = 1 << 58, 2 << 58, 3 << 58  # block kinds, see block_keys
_SHIFT = 29  # a block key is kind | last-side component << 29 | first-side component


@lru_cache(maxsize=1 << 16)
def _first_components(tokens: tuple[str, ...]) -> tuple[set[str], set[str], set[str]]:
    """(Soundex codes, initials, names) of a first name's tokens and the formal names they stand for."""
    names = first_name_set(NameKeys(tokens, "", (), "", (), ""))
    return {soundex(x) for x in names}, {x[:1] for x in names}, names


@lru_cache(maxsize=1 << 16)
def _last_components(tokens: tuple[str, ...]) -> tuple[set[str], set[str], set[str]]:
    """(Soundex codes, parts, initials) of a surname's tokens: its parts without particles and the whole."""
    lasts = surname_set(NameKeys((), "", tokens, "".join(tokens), surname_parts(" ".join(tokens)), ""))
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


def distinct_values(values: np.ndarray, inverse: bool = False):
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
        names, of_person = distinct_values(p_first * max(n_lasts, 1) + p_last, inverse=True)
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
        pair = distinct_values(query * n_names + self.block_names[pos])
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
            keys = self.addresses[pid] = person_address_keys(self.persons[pid])
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




def clear_index_caches() -> None:
    for cached in (_first_components, _last_components):
        cached.cache_clear()
