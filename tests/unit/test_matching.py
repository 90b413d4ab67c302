"""Contact matching v1: certain / possible / none, scores and reasons, name mismatch, remembered answers."""

from __future__ import annotations

from tests.unit.builders import (
    ANA,
    ANA_NO,
    JOSE,
    LUIS,
    MARIA,
    MIA,
    MIA_NO,
    PEDRO,
    ROSA,
    TODAY,
    WEI,
    contact,
    district,
    jose,
    maria,
    record,
)
from writeback.domain.matching import WEIGHTS, build_index, fingerprint, match_contact, match_records
from writeback.domain.models import Email, MatchClass, Person, Phone


def match(c, dcid=ANA, snapshot=None, remembered=None):
    snapshot = snapshot or district()
    return match_contact("SUB-1", c, snapshot.students[dcid], build_index(snapshot), TODAY, remembered)


def cand(result, person_id):
    return next(c for c in result.candidates if c.person_id == person_id)


def test_linked_person_with_the_same_name_is_certain():
    r = match(contact(1, "María", "García-López"))  # no phone, no email: the link and the name decide
    assert (r.match_class, r.person_id, r.flags) == (MatchClass.CERTAIN, MARIA, [])


def test_name_comparison_folds_accents_case_and_hyphens():
    r = match(contact(1, "MARIA", "Garcia Lopez"))
    assert (r.match_class, r.person_id) == (MatchClass.CERTAIN, MARIA)


def test_linked_person_in_another_slot_is_still_certain():
    r = match(jose(slot=1))  # José is linked in slot 2, the form lists him first
    assert (r.match_class, r.person_id) == (MatchClass.CERTAIN, JOSE)
    assert "name_mismatch" not in r.flags


def test_same_name_and_same_email_is_certain_for_an_unlinked_person():
    r = match(contact(3, "José", "García", email="JOSE@example.com"), dcid=MIA)
    assert (r.match_class, r.person_id) == (MatchClass.CERTAIN, JOSE)
    assert {"first name equal", "last name equal", "email equal"} <= set(cand(r, JOSE).reasons)


def test_same_name_and_same_phone_is_certain_for_an_unlinked_person():
    r = match(contact(3, "Jose", "Garcia", phones={"Mobile": "(415) 555-0102"}), dcid=MIA)
    assert (r.match_class, r.person_id) == (MatchClass.CERTAIN, JOSE)
    assert "phone equal" in cand(r, JOSE).reasons


def test_same_name_alone_for_an_unlinked_person_is_only_possible():
    r = match(contact(3, "José", "García"), dcid=MIA)
    assert r.match_class == MatchClass.POSSIBLE and r.person_id is None
    assert JOSE in {c.person_id for c in r.candidates}


def test_duplicates_with_the_same_name_and_email_are_not_certain():
    snap = district()
    snap.persons[5006] = Person(id=5006, first_name="José", last_name="García",
                                emails=[Email(id=799, address="jose@example.com")])
    r = match(contact(3, "José", "García", email="jose@example.com"), dcid=MIA, snapshot=snap)
    assert r.match_class == MatchClass.POSSIBLE and r.person_id is None
    assert {JOSE, 5006} <= {c.person_id for c in r.candidates}


def test_two_linked_persons_with_the_same_name_are_not_certain():
    snap = district()
    snap.persons[5006] = Person(id=5006, first_name="María", last_name="García-López")
    snap.links.append(snap.links[0].model_copy(update={"id": 9100, "person_id": 5006, "sequence": 4}))
    r = match(contact(1, "María", "García-López"), snapshot=snap)
    assert r.match_class == MatchClass.POSSIBLE


def test_sharing_only_a_phone_is_never_certain():
    r = match(contact(2, "Robert", "Smith", phones={"Mobile": "415-555-0105"}), dcid=LUIS)  # Wei's phone
    assert r.match_class != MatchClass.CERTAIN and r.person_id is None
    assert cand(r, WEI).reasons == ["phone equal"]


def test_sharing_only_an_email_is_never_certain():
    r = match(contact(3, "Robert", "Smith", email="jose@example.com"), dcid=MIA)
    assert r.match_class == MatchClass.POSSIBLE
    assert cand(r, JOSE).reasons == ["email equal"]


def test_sharing_only_a_last_name_is_never_certain():
    # Luis's household (F1) has José (linked to his sister Ana): same last name only.
    r = match(contact(2, "Carlos", "García"), dcid=LUIS)
    assert r.match_class == MatchClass.POSSIBLE and r.person_id is None
    assert cand(r, JOSE).reasons == ["last name equal"]


def test_no_agreement_is_none():
    r = match(contact(3, "Zed", "Quinn", email="zed@example.com", phones={"Mobile": "312-555-0199"}), dcid=MIA)
    assert (r.match_class, r.person_id, r.candidates) == (MatchClass.NONE, None, [])


def test_slot_person_with_another_name_is_a_name_mismatch():
    r = match(contact(1, "Carmen", "Ortiz"))
    assert r.match_class == MatchClass.POSSIBLE and r.person_id is None
    assert r.flags == ["name_mismatch"]
    assert r.slot_person_id == MARIA
    assert any("slot 1" in reason for reason in cand(r, MARIA).reasons)


def test_a_changed_name_keeps_the_slot_person_as_candidate_with_what_agreed():
    # María typed a new last name but her usual phone and email: the slot person is the top candidate.
    r = match(contact(1, "María", "Ortiz", email="maria@example.com", phones={"Mobile": "415 555 0101"}))
    assert r.match_class == MatchClass.POSSIBLE and "name_mismatch" in r.flags
    top = r.candidates[0]
    assert top.person_id == MARIA
    assert {"first name equal", "email equal", "phone equal"} <= set(top.reasons)
    assert "last name equal" not in top.reasons
    assert top.score == round(WEIGHTS["first_name"] + WEIGHTS["email"] + WEIGHTS["phone"], 4)


def test_expired_link_is_not_the_slot_person():
    r = match(contact(3, "Lucía", "Ruiz"))  # Pedro's link in slot 3 expired
    assert r.slot_person_id is None and "name_mismatch" not in r.flags
    assert cand(r, PEDRO).reasons == ["last name equal", "linked to this student"]


def test_candidates_are_ranked_by_score_with_reasons():
    snap = district()
    # Rosa shares only the phone with the submitted contact; José shares name, email and phone.
    snap.persons[ROSA].phones.append(Phone(id=690, number="415-555-0102", type="Work"))
    r = match(contact(3, "José", "García", email="jose@example.com", phones={"Work": "415-555-0102"}),
              dcid=MIA, snapshot=snap)
    assert r.person_id == JOSE
    assert [c.person_id for c in r.candidates][:2] == [JOSE, ROSA]
    assert r.candidates[0].score > r.candidates[1].score
    assert set(r.candidates[0].reasons) == {"first name equal", "last name equal", "email equal", "phone equal"}
    assert r.candidates[1].reasons == ["phone equal", "linked to this student"]


def test_remembered_not_a_match_removes_the_candidate():
    c = contact(3, "José", "García", email="jose@example.com")
    remembered = {(fingerprint(MIA_NO, c), JOSE): "not_a_match"}
    r = match(c, dcid=MIA, remembered=remembered)
    assert JOSE not in {x.person_id for x in r.candidates}
    assert r.match_class == MatchClass.NONE


def test_remembered_not_a_match_applies_only_to_that_student_and_slot():
    c = contact(3, "José", "García", email="jose@example.com")
    remembered = {(fingerprint(ANA_NO, c), JOSE): "not_a_match"}
    assert match(c, dcid=MIA, remembered=remembered).person_id == JOSE


def test_remembered_confirm_makes_a_possible_match_certain():
    c = contact(3, "Robert", "Smith", phones={"Mobile": "415-555-0105"})
    assert match(c, dcid=MIA).match_class == MatchClass.POSSIBLE
    r = match(c, dcid=MIA, remembered={(fingerprint(MIA_NO, c), WEI): "confirm"})
    assert (r.match_class, r.person_id) == (MatchClass.CERTAIN, WEI)


def test_match_records_keys_by_submission_and_slot_and_is_deterministic():
    recs = [record(ANA_NO, maria(), jose(), contact(3, "Carmen", "Ortiz")),
            record(MIA_NO, contact(1, "Wei", "Chen"), contact(2, "Rosa", "Chen"))]
    first = match_records(recs, district(), TODAY)
    assert set(first) == {("SUB-100001", 1), ("SUB-100001", 2), ("SUB-100001", 3),
                          ("SUB-100003", 1), ("SUB-100003", 2)}
    assert first[("SUB-100003", 2)].person_id == ROSA
    again = match_records(list(reversed(recs)), district(), TODAY)
    assert {k: v.model_dump() for k, v in first.items()} == {k: v.model_dump() for k, v in again.items()}


def test_a_link_to_a_person_missing_from_the_snapshot_does_not_crash_matching():
    snap = district()
    snap.links.append(snap.links[0].model_copy(update={"id": 9200, "person_id": 7777, "sequence": 5}))
    r = match(contact(1, "María", "García-López"), snapshot=snap)
    assert (r.match_class, r.person_id) == (MatchClass.CERTAIN, MARIA)
    assert 7777 not in {c.person_id for c in r.candidates}
