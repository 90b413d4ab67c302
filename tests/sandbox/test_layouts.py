"""The generator's other forms: the same families' answers on differently laid-out forms, each read by
its mapping in include/mappings/ into the contacts the ground truth names, slot for slot."""

from __future__ import annotations

from collections import Counter

import pytest

from sandbox.generator import ALL_FORMS, build_all
from sandbox.generator.layouts import EMERGENCY, KINDERGARTEN, REGISTRATION, RETURNING
from writeback.config import district as district_config
from writeback.domain.models import FormRecord
from writeback.domain.normalize import fold
from writeback.pipeline.stages import map_submission

STUDENTS, SEED = 300, 7


@pytest.fixture(scope="module")
def generated():
    return build_all(STUDENTS, SEED, forms=ALL_FORMS)


@pytest.fixture(scope="module")
def routes():
    return district_config("demo").load_forms()


def test_the_registration_submissions_are_unchanged_by_the_other_forms(generated):
    _, plain, plain_truth = build_all(STUDENTS, SEED)
    _, moved, truth = generated
    kept = [s for s in moved if s["form_id"] == REGISTRATION]
    assert kept and all(s == next(p for p in plain if p["id"] == s["id"]) for s in kept)
    assert all(truth["submissions"][s["id"]] == plain_truth["submissions"][s["id"]] for s in kept)
    assert [s["id"] for s in moved] == [s["id"] for s in plain]


def test_every_form_is_used_and_each_layout_feature_occurs(generated):
    _, subs, truth = generated
    forms = Counter(s["form_id"] for s in subs)
    assert set(forms) == set(ALL_FORMS), forms
    extras = [t.get("form") or {} for t in truth["submissions"].values()]
    assert any(e.get("same_address") for e in extras if e.get("form") == RETURNING)
    assert any(e.get("same_address") for e in extras if e.get("form") == KINDERGARTEN)
    assert any(e.get("mailing") == "fills_blank" for e in extras)
    new_emergency = [t for t in truth["submissions"].values() if (t.get("form") or {}).get("form") == EMERGENCY
                     and any(c["new_key"] for c in t["contacts"].values())]
    assert new_emergency, "an emergency-contact form adds a contact (its link gets the default relationship)"


def test_each_form_is_read_by_its_mapping_into_the_truths_contacts(generated, routes):
    district, subs, truth = generated
    persons = {p["id"]: p for p in district["persons"]}
    for sub in subs:
        t = truth["submissions"][sub["id"]]
        result = map_submission(routes, sub["id"], sub)
        if not t["valid"]:
            if not t["problems"][0].startswith("student_number: unknown"):
                assert isinstance(result, list), (sub["form_id"], t["problems"])
            continue
        assert isinstance(result, FormRecord), (sub["form_id"], result)
        assert result.mapping == routes.mapping_for(sub["form_id"]).name
        assert sorted(str(c.slot) for c in result.contacts) == sorted(t["contacts"], key=int), sub["id"]
        for c in result.contacts:
            slot = t["contacts"][str(c.slot)]
            if slot["person_id"] is not None and not slot["typo"]:
                # the surname as the family wrote it (accents may be lost): the truth's person, not a neighbour's
                assert fold(c.last_name) == fold(persons[slot["person_id"]]["last_name"]), (sub["id"], c.slot)


def test_kindergarten_puts_the_mother_and_the_father_in_their_sections(generated, routes):
    district, subs, truth = generated
    relationship = {}
    for link in district["links"]:
        dets = [d for d in district["details"] if d["link_id"] == link["id"]]
        relationship[(link["student_dcid"], link["person_id"])] = max(dets, key=lambda d: d["start_date"])[
            "relationship"]
    seen = Counter()
    for sub in (s for s in subs if s["form_id"] == KINDERGARTEN):
        t = truth["submissions"][sub["id"]]
        record = map_submission(routes, sub["id"], sub)
        if not isinstance(record, FormRecord):
            continue
        for c in record.contacts:
            person = t["contacts"][str(c.slot)]["person_id"]
            if c.section in ("mother", "father") and person is not None:
                assert relationship[(t["student_dcid"], person)] == c.section.capitalize()
                seen[c.section] += 1
    assert seen["mother"] and seen["father"], seen


def test_the_same_address_checkbox_hides_the_second_address(generated):
    _, subs, truth = generated
    for sub in subs:
        extra = truth["submissions"][sub["id"]].get("form") or {}
        if extra.get("same_address"):
            box, target = (("g2_same_address", "g2_") if sub["form_id"] == RETURNING
                           else ("father_same_address", "father_"))
            assert sub["fields"][box] == "Yes"
            assert all(sub["fields"][target + part] == "" for part in ("street", "city", "state", "zip"))
