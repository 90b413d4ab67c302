"""Contact matching rules beyond v1: normalisation, nicknames, fuzzy names, blocking, classes, flags,
thresholds, and what the plan does with matches (Used By on candidates, one new contact per sibling set)."""

from __future__ import annotations

import inspect
import random

import pytest

from tests.unit.builders import (
    ANA,
    ANA_NO,
    JOSE,
    LUIS,
    LUIS_NO,
    MARIA,
    MIA,
    MIA_NO,
    ROSA,
    TODAY,
    contact,
    district,
    jose,
    maria,
    plan_for,
    record,
)
from writeback.config import DistrictConfig
from writeback.domain import names as names_module
from writeback.domain.matching import (
    MatchThresholds,
    build_index,
    candidate_ids,
    contact_keys,
    first_name_similarity,
    last_name_similarity,
    match_contact,
    match_records,
    name_keys,
)
from writeback.domain.models import Email, MatchClass, Person, Phone, Snapshot, StudentLink
from writeback.domain.names import distinct_given_names, nickname_equivalent, surname_parts
from writeback.domain.normalize import (
    _phone_key_slow,
    address_key,
    email_match_key,
    fold,
    phone_key,
    phone_match_key,
)


def match(c, dcid=ANA, snapshot=None, remembered=None, thresholds=None):
    snapshot = snapshot or district()
    return match_contact("SUB-1", c, snapshot.students[dcid], build_index(snapshot), TODAY, remembered,
                         thresholds=thresholds)


def cand(result, person_id):
    return next(c for c in result.candidates if c.person_id == person_id)


def ids(result):
    return [c.person_id for c in result.candidates]


# ---------------------------------------------------------------- normalisation


def test_nickname_table_covers_the_sandbox_generators_table_without_importing_it():
    from sandbox.generator.tables import NICKNAMES as GENERATOR

    for formal, nicks in GENERATOR.items():
        for nick in nicks:
            assert nickname_equivalent(fold(nick), fold(formal)), (nick, formal)
    assert "sandbox" not in inspect.getsource(names_module)
    assert len(names_module.NICKNAMES) >= 150


@pytest.mark.parametrize("nick, formal", [
    ("Bill", "William"), ("Bob", "Robert"), ("Liz", "Elizabeth"), ("Pat", "Patricia"), ("Patty", "Patricia"),
    ("Steve", "Steven"), ("Pepe", "José"), ("Paco", "Francisco"), ("Lupe", "Guadalupe"), ("Chuy", "Jesús"),
    ("Pat", "Patrick"), ("Alex", "Alejandro"), ("Alex", "Alexandra"), ("Lalo", "Eduardo"), ("Nacho", "Ignacio"),
])
def test_common_english_and_spanish_nicknames_are_one_name(nick, formal):
    assert nickname_equivalent(fold(nick), fold(formal))
    sim, how = first_name_similarity(name_keys(nick, "X"), name_keys(formal, "X"))
    assert sim == 0.95 and how.startswith("nickname")


def test_nicknames_are_not_transitive_across_different_formal_names():
    assert not nickname_equivalent("patrick", "patricia")  # Pat is both; Patrick is not Patricia
    assert distinct_given_names("patrick", "patricia")


@pytest.mark.parametrize("a, b", [("mario", "maria"), ("daniel", "daniela"), ("juan", "juana"),
                                  ("antonio", "antonia"), ("patrick", "patricia")])
def test_look_alike_given_names_are_two_names(a, b):
    assert distinct_given_names(a, b)
    sim, _ = first_name_similarity(name_keys(a, "X"), name_keys(b, "X"))
    assert sim < 0.8


def test_a_doubled_or_dropped_final_letter_is_a_typo_not_another_name():
    assert not distinct_given_names("karina", "karinaa")
    sim, how = first_name_similarity(name_keys("Karinaa", "X"), name_keys("Karina", "X"))
    assert sim >= 0.9 and how == "one-letter typo"


@pytest.mark.parametrize("a, b, how", [
    ("García-López", "Garcia Lopez", "equal"),
    ("GARCÍA LÓPEZ", "garcia-lopez", "equal"),
    ("García-López", "López", "part equal"),
    ("López García", "García-López", "parts reordered"),
    ("de la Cruz", "De La Cruz", "equal"),
    ("de la Cruz", "DeLaCruz", "equal"),
    ("de la Cruz", "Cruz", "equal without particles"),
    ("O'Brien", "OBrien", "equal"),
    ("O'Brien", "O Brien", "equal"),
    ("van Dyke", "Van Dyke", "equal"),
    ("Nguyễn", "Nguyen", "equal"),
])
def test_surnames_compare_by_parts_particles_and_accents(a, b, how):
    sim, got = last_name_similarity(name_keys("X", a), name_keys("X", b))
    assert got == how and sim >= 0.9


def test_surname_parts():
    assert surname_parts("garcia lopez") == ("garcia", "lopez")
    assert surname_parts("de la cruz") == ("cruz",)
    assert surname_parts("o brien") == ("obrien",)
    assert surname_parts("van der berg") == ("berg",)
    assert surname_parts("de") == ("de",)  # a surname that is only a particle stays


@pytest.mark.parametrize("typed", ["(415) 555-0101", "415-555-0101", "415.555.0101", "4155550101", "+1 415 555 0101",
                                   "1-415-555-0101", "(415)555-0101", "+1-415-555-0101", "415 555 0101 x12"])
def test_the_fast_phone_path_agrees_with_phonenumbers(typed):
    assert phone_key(typed) == _phone_key_slow(typed, "US") == "+14155550101"


def test_phones_use_the_district_region_and_keep_extensions_apart():
    assert phone_key("020 7946 0018", "GB") == "+442079460018"
    assert phone_key("020 7946 0018", "US") != "+442079460018"
    assert phone_match_key("415-555-0101 ext. 7") == phone_match_key("4155550101")
    assert phone_match_key("12") == "" and phone_match_key("55-01") == ""  # fragments identify nobody


def test_emails_compare_case_insensitively_and_only_when_valid():
    assert email_match_key(" Maria@Example.COM ") == "maria@example.com"
    for bad in ("maria@", "maria", "a@@b.com", "maria@example", "maria@example..org", "x@host.test"):
        assert email_match_key(bad) == "", bad
    assert email_match_key("josé@exämple.com") == "josé@exämple.com"  # unicode goes to email-validator


def test_addresses_normalise_suffixes_and_unit_designators():
    assert address_key("12 Oak Street Apt 4-B", "62701") == address_key("12 oak st #4b", "62701-0001")
    assert address_key("12 Oak St", "", "Unit 4B") == address_key("12 Oak Street Suite 4B")
    assert address_key("12 Oak St", "", "4B") == address_key("12 Oak St # 4B")
    assert address_key("5 North Elm Parkway") == address_key("5 N Elm Pkwy")
    assert address_key("12 Oak St Apt 4") != address_key("12 Oak St Apt 5")


# ---------------------------------------------------------------- candidates and blocking


def test_within_the_family_a_first_name_alone_makes_a_candidate():
    r = match(contact(2, "María", "Ortiz"), dcid=LUIS)  # María is Luis's mother; the surname is new
    assert "first name equal" in cand(r, MARIA).reasons and r.match_class == MatchClass.POSSIBLE


def test_district_wide_a_first_name_alone_is_no_candidate_but_a_fuzzy_whole_name_is():
    assert JOSE not in ids(match(contact(3, "José", "Quintana"), dcid=MIA))
    r = match(contact(3, "Jose", "Garcai"), dcid=MIA)  # José is nobody in Mia's family
    assert JOSE in ids(r) and "last name ~0.97 (one-letter typo)" in cand(r, JOSE).reasons


def test_swapped_first_and_last_name_is_a_candidate_never_certain():
    r = match(contact(3, "García", "José", phones={"Mobile": "415-555-0102"}), dcid=MIA)
    assert r.match_class == MatchClass.POSSIBLE
    assert any(reason.startswith("first and last name swapped") for reason in cand(r, JOSE).reasons)


def test_compound_first_names_agree_in_part():
    r = match(contact(3, "José Luis", "García"), dcid=MIA)
    assert "first name part equal" in cand(r, JOSE).reasons


def test_the_same_address_adds_a_little_evidence():
    c = contact(3, "Rosa", "García-López", address={"street": "12 Oak St.", "postal_code": "62701"})
    r = match(c, dcid=LUIS)
    assert "address equal" in cand(r, MARIA).reasons


def _big_district(n: int, seed: int = 3) -> Snapshot:
    rng = random.Random(seed)
    firsts = ["Ana", "Luis", "María", "José", "Wei", "Rosa", "Carmen", "Pedro", "Lucía", "Hugo", "Emma", "Noah"]
    lasts = [f"{a}{b}" for a in ("Gar", "Lo", "Mar", "Ro", "Chen", "Smi", "Ngu", "Ta") for b in ("cia", "pez", "tin", "th",
                                                                                          "yen", "ylor", "dri")]
    persons = {i: Person(id=i, first_name=rng.choice(firsts), last_name=rng.choice(lasts),
                         phones=[Phone(id=i, number=f"415{rng.randint(2000000, 9999999)}")],
                         emails=[Email(id=i, address=f"p{i}@example.org")]) for i in range(1, n + 1)}
    return Snapshot(persons=persons)


def test_blocking_scores_a_small_share_of_the_district_never_all_pairs():
    snap = _big_district(5000)
    index = build_index(snap)
    c = contact(1, "María", "Garcia", email="p17@example.org", phones={"Mobile": "415-555-0000"})
    proposed = candidate_ids(contact_keys(c, "US"), index)
    assert 17 in proposed
    assert len(proposed) < 0.05 * len(snap.persons)


def test_blocking_finds_the_person_through_a_typo_in_either_name():
    snap = _big_district(3000)
    index = build_index(snap)
    target = snap.persons[42]
    for first, last in ((target.first_name, target.last_name[:-1] + "x"),
                        (target.first_name[0] + target.first_name[2:] if len(target.first_name) > 3
                         else target.first_name, target.last_name)):
        assert 42 in candidate_ids(contact_keys(contact(1, first, last), "US"), index), (first, last)


# ---------------------------------------------------------------- classes


def _rename(snap: Snapshot, person_id: int, first: str, last: str | None = None) -> Snapshot:
    snap.persons[person_id].first_name = first
    if last is not None:
        snap.persons[person_id].last_name = last
    return snap


def test_a_nickname_of_the_linked_person_is_certain_without_a_name_mismatch():
    snap = _rename(district(), JOSE, "William")
    r = match(contact(2, "Bill", "García"), snapshot=snap)
    assert (r.match_class, r.person_id, r.flags) == (MatchClass.CERTAIN, JOSE, [])
    assert "first name ~0.95 (nickname Bill=William)" in cand(r, JOSE).reasons


def test_dropped_accents_and_case_of_the_linked_person_are_certain():
    r = match(contact(2, "JOSE", "garcia"))
    assert (r.match_class, r.person_id, r.flags) == (MatchClass.CERTAIN, JOSE, [])


def test_a_one_letter_typo_of_the_linked_person_is_certain_with_the_same_phone():
    r = match(contact(2, "José", "Gracia", phones={"Mobile": "415-555-0102"}))
    assert (r.match_class, r.person_id) == (MatchClass.CERTAIN, JOSE)


def test_a_one_letter_typo_of_the_linked_person_alone_is_possible_without_a_name_mismatch():
    r = match(contact(2, "José", "Gracia"))
    assert r.match_class == MatchClass.POSSIBLE and r.flags == []
    assert r.candidates[0].person_id == JOSE


def test_another_given_name_in_the_slot_is_a_name_mismatch():
    snap = _rename(district(), JOSE, "Mario")
    r = match(contact(2, "María", "García", phones={"Mobile": "415-555-0102"}), snapshot=snap)
    assert r.match_class == MatchClass.POSSIBLE and "name_mismatch" in r.flags


def test_reordered_contacts_raise_no_name_mismatch():
    # PowerSchool: 1 María, 2 José. The form: 1 a new stepmother, 2 María, 3 José.
    rec = record(ANA_NO, contact(1, "Carmen", "Ortiz"), maria(slot=2), jose(slot=3))
    m = match_records([rec], district(), TODAY)
    assert (m[(rec.submission_id, 2)].person_id, m[(rec.submission_id, 3)].person_id) == (MARIA, JOSE)
    first = m[(rec.submission_id, 1)]
    assert first.flags == [] and first.match_class == MatchClass.NONE and first.candidates == []


def test_a_slot_name_mismatch_stays_when_the_slot_person_is_not_on_the_form():
    rec = record(ANA_NO, contact(1, "Carmen", "Ortiz"), jose())
    m = match_records([rec], district(), TODAY)
    assert "name_mismatch" in m[(rec.submission_id, 1)].flags


def test_two_slots_certain_of_one_person_are_both_left_to_a_person():
    rec = record(ANA_NO, maria(slot=1), maria(slot=3))
    m = match_records([rec], district(), TODAY)
    assert {m[(rec.submission_id, s)].match_class for s in (1, 3)} == {MatchClass.POSSIBLE}


def test_an_unlinked_person_with_a_nickname_and_the_same_phone_is_certain():
    r = match(contact(3, "Pepe", "García", phones={"Mobile": "415 555 0102"}), dcid=MIA)
    assert (r.match_class, r.person_id) == (MatchClass.CERTAIN, JOSE)


def test_a_spouse_sharing_the_phone_and_last_name_is_never_certain():
    r = match(contact(3, "Rosa", "García", phones={"Mobile": "415-555-0102"}), dcid=MIA)
    assert r.match_class != MatchClass.CERTAIN and r.person_id is None
    assert set(cand(r, JOSE).reasons) == {"last name equal", "phone equal"}


def test_a_linked_person_and_an_unlinked_duplicate_with_the_same_phone_are_possible():
    snap = district()
    snap.persons[5010] = Person(id=5010, first_name="Pepe", last_name="Garcia",
                                phones=[Phone(id=690, number="4155550102", type="Mobile")])
    r = match(jose(email=""), snapshot=snap)  # José 0.75 (name, phone), Pepe 0.74 (nickname, phone): close
    assert r.match_class == MatchClass.POSSIBLE and {JOSE, 5010} <= set(ids(r))
    assert match(jose(), snapshot=snap).person_id == JOSE  # José's email too: 1.0 against 0.74, not close


def test_a_linked_person_stays_certain_beside_an_unrelated_namesake():
    snap = district()
    snap.persons[5010] = Person(id=5010, first_name="José", last_name="García",
                                phones=[Phone(id=690, number="312-555-0177", type="Mobile")])
    r = match(contact(2, "José", "García"), snapshot=snap)
    assert (r.match_class, r.person_id) == (MatchClass.CERTAIN, JOSE)
    assert 5010 in ids(r)


def test_an_invalid_email_never_makes_two_people_alike():
    snap = district()
    snap.persons[ROSA].emails = [Email(id=790, address="x@")]
    r = match(contact(3, "Zed", "Quinn", email="x@"), dcid=LUIS, snapshot=snap)
    assert ROSA not in ids(r)


# ---------------------------------------------------------------- thresholds in the district config


def test_thresholds_live_in_the_district_config_with_defaults():
    config = DistrictConfig(name="d", mapping="m.yaml", powerschool_conn_id="p", submissions_conn_id="s")
    assert config.matching == MatchThresholds(certain_name=0.9, similar_name=0.8, possible=0.2, margin=0.1)
    custom = DistrictConfig(name="d", mapping="m.yaml", powerschool_conn_id="p", submissions_conn_id="s",
                            matching={"margin": 0.3, "certain_name": 0.95})
    assert (custom.matching.margin, custom.matching.certain_name) == (0.3, 0.95)
    with pytest.raises(ValueError):
        DistrictConfig(name="d", mapping="m.yaml", powerschool_conn_id="p", submissions_conn_id="s",
                       matching={"certian": 0.9})
    with pytest.raises(ValueError, match="similar_name"):
        MatchThresholds(similar_name=0.95, certain_name=0.9)


def test_a_wider_margin_turns_a_certain_match_into_a_possible_one():
    snap = district()
    snap.persons[5010] = Person(id=5010, first_name="José", last_name="García")  # a namesake, no phone
    c = contact(3, "José", "García", phones={"Mobile": "415-555-0102"})
    assert match(c, dcid=MIA, snapshot=snap).match_class == MatchClass.CERTAIN  # 0.75 vs 0.55
    wide = MatchThresholds(margin=0.25)
    assert match(c, dcid=MIA, snapshot=snap, thresholds=wide).match_class == MatchClass.POSSIBLE
    recs = [record(MIA_NO, c)]
    assert match_records(recs, snap, TODAY, thresholds=wide)[("SUB-100003", 3)].match_class == MatchClass.POSSIBLE


def test_a_stricter_name_threshold_keeps_typos_from_being_certain():
    c = contact(2, "José", "Gracia", phones={"Mobile": "415-555-0102"})
    assert match(c).match_class == MatchClass.CERTAIN
    assert match(c, thresholds=MatchThresholds(certain_name=0.99)).match_class == MatchClass.POSSIBLE


# ---------------------------------------------------------------- what the plan does with matches


def test_candidates_of_a_possible_match_show_who_else_uses_them():
    plan, _ = plan_for([record(MIA_NO, contact(3, "María", "García-López"))])  # María: Ana's and Luis's mother
    (item,) = [i for i in plan.review_items if i.kind == "possible_match"]
    maria_cand = next(c for c in item.payload["candidates"] if c["person_id"] == MARIA)
    assert {u["student_number"] for u in maria_cand["used_by"]} == {ANA_NO, LUIS_NO}


def test_siblings_naming_one_new_parent_with_email_on_one_form_only_share_one_contact():
    pablo_a = contact(2, "Pablo", "Ortega", email="pablo@example.com", phones={"Mobile": "415-555-0177"})
    pablo_l = contact(3, "Pablo", "Ortega", phones={"Mobile": "(415) 555-0177"})  # no email on this form
    plan, _ = plan_for([record(ANA_NO, pablo_a), record(LUIS_NO, pablo_l)])
    keys = {cp.new_key for sp in plan.students for cp in sp.contacts}
    assert len(keys) == 1 and list(plan.new_contacts) == list(keys)


def test_the_same_new_name_in_two_households_or_with_other_values_stays_two_contacts():
    a = contact(2, "Pablo", "Ortega", email="pablo@example.com", phones={"Mobile": "415-555-0177"})
    other_household = contact(3, "Pablo", "Ortega", phones={"Mobile": "415-555-0177"})
    plan, _ = plan_for([record(ANA_NO, a), record(MIA_NO, other_household)])
    assert len(plan.new_contacts) == 2
    b = contact(3, "Pablo", "Ortega", email="other@example.com", phones={"Mobile": "415-555-0188"})
    plan, _ = plan_for([record(ANA_NO, a), record(LUIS_NO, b)])
    assert len(plan.new_contacts) == 2


def test_one_new_contact_does_not_depend_on_record_order():
    a = contact(2, "Pablo", "Ortega", email="pablo@example.com", phones={"Mobile": "415-555-0177"})
    b = contact(3, "Pablo", "Ortega", phones={"Mobile": "415-555-0177"})
    one, _ = plan_for([record(ANA_NO, a), record(LUIS_NO, b)])
    two, _ = plan_for([record(LUIS_NO, b), record(ANA_NO, a)])
    assert set(one.new_contacts) == set(two.new_contacts)


def test_match_records_handles_a_link_to_a_missing_student_household():
    snap = district()
    snap.links.append(StudentLink(id=9300, person_id=JOSE, student_dcid=99, sequence=1))
    m = match_records([record(MIA_NO, contact(1, "Wei", "Chen"))], snap, TODAY)
    assert m[("SUB-100003", 1)].match_class == MatchClass.CERTAIN
