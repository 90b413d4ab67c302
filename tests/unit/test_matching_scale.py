"""The array machinery that lets matching run at district scale computes exactly what its scalar
definitions say: name blocks (block_keys), the cheap name test (_name_worth_scoring), the exact
email/phone indexes (email_match_key, phone_match_key), and a batch gives what one contact at a time gives."""

from __future__ import annotations

import random

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.unit.builders import ANA, LUIS, MIA, TODAY, contact, district, jose, maria
from writeback.domain import matching
from writeback.domain.match_index import ExactIndex, NameBlocks, distinct_values
from writeback.domain.match_keys import block_keys
from writeback.domain.matching import (
    MatchThresholds,
    _name_worth_scoring,
    _names_worth_scoring,
    build_index,
    candidate_ids,
    clear_caches,
    contact_keys,
    fingerprint,
    match_contact,
    match_contacts,
    name_keys,
)
from writeback.domain.models import Email, MatchClass, Person, Phone, Snapshot
from writeback.domain.normalize import email_match_key, phone_match_key, phone_match_keys

FIRSTS = ["María", "Maria", "Mario", "MARIA", "Mária", "José", "Jose", "Pepe", "José Luis", "Luis", "Bill", "William",
          "Will", "Liz", "Elizabeth", "Beth", "Wei", "Ana", "Ana María", "Anna", "Pat", "Patricia", "Patrick", "Zoë",
          "Daniel", "Daniela", "Chris", "Christopher", "Kristopher", "Jo", "Karina", "Karinaa", "Garcia", "Chen",
          "Nguyễn", "", "O'Neil", "Mary Ann", "Juan Carlos", "Bob", "Roberto", "Beto", "Lupe", "Guadalupe"]
LASTS = ["García", "Garcia", "Garcai", "Gracia", "García-López", "López García", "Lopez", "de la Cruz", "Cruz",
         "De La Cruz", "O'Brien", "OBrien", "O Brien", "Chen", "Chan", "Cheng", "Smith", "Smyth", "Smith-Jones",
         "Jones", "Nguyễn", "Nguyen", "Ng", "van der Berg", "Berg", "Wei", "Maria", "Luis", "", "Del Toro", "Toro",
         "Martínez", "Martinez", "Martin", "Hernández Hernández", "y", "de"]


def _names(rng: random.Random, n: int) -> list[tuple[str, str]]:
    return [(rng.choice(FIRSTS), rng.choice(LASTS)) for _ in range(n)]


def _persons(pairs: list[tuple[str, str]]) -> dict[int, Person]:
    return {i: Person(id=i, first_name=f, last_name=last) for i, (f, last) in enumerate(pairs, start=1)}


@pytest.mark.parametrize("similar", [0.0, 0.5, 0.8, 0.9, 0.93, 0.96, 1.0])
def test_the_vectorised_name_test_is_the_scalar_one_for_every_pair(similar):
    t = MatchThresholds(similar_name=similar, certain_name=1.0)
    rng = random.Random(7)
    persons = _persons(_names(rng, 400) + [(f, last) for f in FIRSTS[:12] for last in LASTS[:12]])
    blocks = NameBlocks(sorted(persons), [persons[i].first_name for i in sorted(persons)],
                        [persons[i].last_name for i in sorted(persons)])
    queries = [name_keys(f, last) for f in FIRSTS for last in LASTS[::3]] + \
        [name_keys(f, last) for f, last in _names(rng, 60)]
    n_names = len(blocks.name_first)
    # every (query, person's name) pair, not only the pairs blocks propose
    query = np.repeat(np.arange(len(queries)), n_names)
    name = np.tile(np.arange(n_names), len(queries))
    got = _names_worth_scoring(blocks, queries, query, name, t)
    of_name = [name_keys(persons[int(blocks.person_ids[blocks.name_ptr[i]])].first_name,
                         persons[int(blocks.person_ids[blocks.name_ptr[i]])].last_name) for i in range(n_names)]
    want = [_name_worth_scoring(queries[q], of_name[n], t) for q, n in zip(query.tolist(), name.tolist(), strict=True)]
    assert got.tolist() == want
    assert 0 < sum(want) < len(want) or similar in (0.0, 1.0)


def test_the_block_index_is_the_string_block_keys():
    rng = random.Random(11)
    persons = _persons(_names(rng, 600))
    index = build_index(Snapshot(persons=persons))
    for first, last in _names(rng, 80) + [("Bill", "Garcai"), ("Garcia", "Maria"), ("", "Chen"), ("Wei", "")]:
        q = contact_keys(contact(1, first, last), "US")
        spec = block_keys(q.name) | block_keys(q.name, swapped=True)
        want = {pid for pid, p in persons.items() if spec & block_keys(name_keys(p.first_name, p.last_name))}
        assert candidate_ids(q, index) == want, (first, last)


def test_phone_index_keys_are_phone_match_key():
    numbers = ["415-555-0101", "(415) 555-0101", "+1 415 555 0101", "1-415-555-0101", "415.555.0101", "4155550101",
               " 415 555 0101 ", "415-555-0101 x12", "415-555-0101 ext. 3", "555-0101", "12", "", "   ",
               "+44 20 7946 0958", "020 7946 0958", "1-800-FLOWERS", "(115) 555-0101", "415-155-0101",
               "+1 (415) 555-0101", "+52 55 1234 5678", "４１５５５５０１０１", "415-555-010", "4155550101999"]
    for region in ("US", "CA", "GB", "MX"):
        assert phone_match_keys(numbers, region) == [phone_match_key(n, region) for n in numbers], region


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.text(alphabet="0123456789 +-.()x#ext", max_size=22), max_size=8))
def test_phone_index_keys_are_phone_match_key_for_any_text(numbers):
    assert phone_match_keys(numbers, "US") == [phone_match_key(n, "US") for n in numbers]


def test_exact_index_keeps_every_person_of_a_shared_key_and_no_empty_key():
    index = ExactIndex(["a", "b", "a", "", "a", "c", "b"], [1, 2, 3, 4, 3, 5, 2])
    assert set(index.get("a")) == {1, 3}
    assert set(index.get("b")) == {2}
    assert set(index.get("c")) == {5}
    assert list(index.get("")) == [] and list(index.get("zzz")) == []


def test_the_email_index_finds_exactly_the_persons_whose_match_key_is_the_submitted_one():
    addresses = ["Maria@Example.com", " maria@example.com", "maria@example.com ", "MARIA@EXAMPLE.COM", "maria@example",
                 "maria@@example.com", "maria@example.test", "x@y.org", "", "not an email", "maría@example.com",
                 "maria@exämple.com", "a.b+c@example.co.uk"]
    persons = {i: Person(id=i, last_name="X", emails=[Email(id=i, address=a)]) for i, a in enumerate(addresses, 1)}
    index = build_index(Snapshot(persons=persons))
    for submitted in addresses:
        q = contact_keys(contact(1, "Nobody", "Else", email=submitted), "US")
        want = {pid for pid, p in persons.items() if email_match_key(submitted)
                and email_match_key(submitted) in {email_match_key(e.address) for e in p.emails}}
        assert candidate_ids(q, index) == want, submitted


def test_distinct_is_numpys_unique():
    rng = np.random.default_rng(3)
    for values in (rng.integers(0, 50, 1000), rng.integers(0, 1 << 40, 500), np.zeros(0, dtype=np.int64),
                   np.array([7], dtype=np.int64)):
        values = values.astype(np.int64)
        got, back = distinct_values(values, inverse=True)
        want, want_back = np.unique(values, return_inverse=True)
        assert got.tolist() == want.tolist() and back.tolist() == want_back.ravel().tolist()
        assert distinct_values(values).tolist() == want.tolist()


def _items(snapshot: Snapshot) -> list:
    contacts = [maria(1), jose(2), contact(1, "Maria", "Garcia Lopez", phones={"Mobile": "415-555-0101"}),
                contact(1, "Mary", "García-López", email="maria@example.com"), contact(2, "Jose", "Garcai"),
                contact(3, "Pedro", "Ruiz"), contact(1, "Wei", "Chen", email="wei@example.com"),
                contact(2, "Chen", "Rosa", phones={"Home": "415-555-0103"}), contact(1, "Nueva", "Persona"),
                contact(1, "Lopez", "Maria"), contact(3, "", "García"), contact(1, "Rosa", "")]
    return [(f"SUB-{n}", c, snapshot.students[dcid]) for n, dcid in enumerate((ANA, LUIS, MIA))
            for c in contacts]


@pytest.mark.parametrize("batch", [1, 3, 4096])
def test_a_batch_matches_as_one_contact_at_a_time(monkeypatch, batch):
    monkeypatch.setattr(matching, "_BATCH", batch)
    snapshot = district()
    index = build_index(snapshot)
    items = _items(snapshot)
    remembered = {(fingerprint(items[0][2].student_number, items[0][1]), 9999): "not_a_match",
                  (fingerprint(items[4][2].student_number, items[4][1]), 101): "confirm"}
    for rem in (None, remembered):
        together = match_contacts(items, index, TODAY, rem)
        alone = [match_contact(sid, c, student, index, TODAY, rem) for sid, c, student in items]
        assert [m.model_dump() for m in together] == [m.model_dump() for m in alone]
    assert {m.match_class for m in together} >= {MatchClass.CERTAIN, MatchClass.POSSIBLE, MatchClass.NONE}


def test_cold_and_warm_caches_give_the_same_matches():
    rng = random.Random(5)
    persons = _persons(_names(rng, 300))
    for pid, p in persons.items():
        p.phones = [Phone(id=pid, number=f"415-555-{pid:04d}")]
    snapshot = Snapshot(persons=persons)
    items = [("S", contact(1, f, last, phones={"Mobile": f"415-555-{n:04d}"}), district().students[ANA])
             for n, (f, last) in enumerate(_names(rng, 40), start=1)]
    clear_caches()
    cold = [m.model_dump() for m in match_contacts(items, build_index(snapshot), TODAY)]
    warm = [m.model_dump() for m in match_contacts(items, build_index(snapshot), TODAY)]
    assert cold == warm


def test_an_empty_snapshot_matches_nobody():
    index = build_index(Snapshot())
    out = match_contacts([("S", maria(1), district().students[ANA])], index, TODAY)
    assert out[0].match_class == MatchClass.NONE and out[0].candidates == []
    assert candidate_ids(contact_keys(maria(1), "US"), index) == set()
