"""The decision a create makes after an unknown outcome (`create_evidence.judge`), case by case."""

from __future__ import annotations

import pytest

from writeback.pipeline.create_evidence import Ambiguous, Evidence, Identity

OURS = Identity(first="alex", middle="", last="kim", emails=("alex@a.example",), phones=("4155550100x",),
                students=(7,))
BARE = Identity(first="alex", middle="", last="kim")
OTHER_FAMILY = Identity(first="alex", middle="", last="kim", emails=("alex@b.example",), students=(9,))
CHANGED = Identity(first="alex", middle="", last="kim", emails=("new@a.example",), students=(7,))


def evidence(identity: Identity) -> Evidence:
    return Evidence(watermark=100, fingerprint=identity.fingerprint, distinguishable=identity.distinguishable)


def judge(identity, found, explained=(), twins=False):
    from writeback.pipeline.create_evidence import judge as decide

    return decide(evidence(identity), found, set(explained), twins)


def test_its_own_record_is_the_only_one_holding_exactly_its_values():
    assert judge(OURS, {101: OURS}) == 101
    # another family's record of the same name, explained by that family's create, does not matter
    assert judge(OURS, {101: OURS, 102: OTHER_FAMILY}, explained={OTHER_FAMILY.fingerprint}) == 101


def test_nothing_found_means_the_create_did_not_happen():
    assert judge(OURS, {}) is None
    assert judge(OURS, {102: OTHER_FAMILY}, explained={OTHER_FAMILY.fingerprint}) is None


@pytest.mark.parametrize("case, found, explained, twins, reason", [
    ("a bare name proves nothing", {101: BARE}, (), False, "only a name"),
    ("an identical create of the run", {101: OURS}, (OURS.fingerprint,), True, "identical record"),
    ("two records with its values", {101: OURS, 103: OURS}, (), False, "2 new persons"),
    ("a same-named stranger, maybe its own changed since", {104: CHANGED}, (), False, "other values"),
])
def test_anything_else_goes_to_a_person(case, found, explained, twins, reason):
    identity = BARE if case.startswith("a bare") else OURS
    with pytest.raises(Ambiguous, match=reason) as caught:
        judge(identity, found, explained, twins)
    assert set(caught.value.candidates) == set(found)


def test_identity_reads_the_same_from_the_body_and_from_powerschool():
    body = {"firstName": "Alex ", "middleName": "", "lastName": "KIM",
            "emails": [{"address": "Alex@A.example", "type": "Personal", "primary": True}],
            "phones": [{"phoneNumber": "(415) 555-0100", "extension": ""}],
            "contactStudents": [{"dcid": 7, "studentDetails": []}]}
    contact = {"contactId": 101, "firstName": "Alex", "middleName": None, "lastName": "Kim",
               "emails": [{"emailId": 1, "address": "alex@a.example", "primary": True}],
               "phones": [{"phoneNumberId": 2, "phoneNumber": "415-555-0100", "extension": None}],
               "addresses": [], "contactStudents": [{"studentContactId": 5, "dcid": 7, "sequence": 3}]}
    assert Identity.of(body) == Identity.of(contact) == OURS
    assert not Identity.of({"firstName": "Alex", "lastName": "Kim"}).distinguishable
