"""Apply batches: students that share a person are never split across parallel tasks."""

from __future__ import annotations

from tests.unit.builders import (
    ANA_NO,
    LUIS,
    LUIS_NO,
    MIA_NO,
    contact,
    district,
    jose,
    maria,
    plan_for,
    record,
)
from writeback.domain.batches import student_batches


def test_siblings_sharing_a_parent_stay_in_one_batch_even_with_batch_size_one():
    plan, _ = plan_for([record(ANA_NO, maria(), jose()), record(LUIS_NO, maria()), record(MIA_NO)])
    batches = student_batches(plan, size=1)
    together = next(b for b in batches if ANA_NO in b)
    assert LUIS_NO in together, "Ana and Luis share María: one batch"
    assert [MIA_NO] in batches, "Mia shares nobody with them: her own batch"
    assert sorted(n for b in batches for n in b) == sorted([ANA_NO, LUIS_NO, MIA_NO])


def test_a_new_parent_named_on_two_siblings_forms_joins_their_batches():
    # Luis shares nobody with Ana here (his link to María is dropped), so only the one new contact both
    # forms name can tie them together
    snapshot = district()
    snapshot.links = [lk for lk in snapshot.links if lk.student_dcid != LUIS]
    step = {"phones": {"Mobile": "415-555-0177"}, "email": "sam@example.com", "relationship": "Stepfather"}
    plan, _ = plan_for([record(ANA_NO, contact(2, "Sam", "Ito", **step)),
                        record(LUIS_NO, contact(3, "Sam", "Ito", **step))], snapshot)
    assert student_batches(plan, size=1) == [[ANA_NO, LUIS_NO]]


def test_same_named_new_contacts_of_two_households_do_not_join_batches():
    step = {"phones": {"Mobile": "415-555-0177"}, "email": "sam@example.com", "relationship": "Stepfather"}
    plan, _ = plan_for([record(ANA_NO, maria(), contact(2, "Sam", "Ito", **step)),
                        record(MIA_NO, contact(3, "Sam", "Ito", **step))])
    assert sorted(student_batches(plan, size=1)) == [[ANA_NO], [MIA_NO]]


def test_independent_students_pack_up_to_the_size():
    plan, _ = plan_for([record(ANA_NO), record(MIA_NO)])
    assert [len(b) for b in student_batches(plan, size=10)] == [2]


def test_only_candidates_a_reviewer_can_choose_join_batches():
    from writeback.domain.models import Candidate, MatchClass

    plan, _ = plan_for([record(ANA_NO, maria()), record(MIA_NO)])
    ana = next(sp for sp in plan.students if sp.student_number == ANA_NO)
    mia = next(sp for sp in plan.students if sp.student_number == MIA_NO)
    cp = ana.contacts[0]
    other = Candidate.model_construct(person_id=77777, score=0.5, match_class=MatchClass.POSSIBLE, reasons=[])
    mia.existing_links = [ana.existing_links[0].model_copy(update={"person_id": 77777, "link_id": 99999})]
    cp.candidates = [*cp.candidates, other]
    cp.match_class, cp.flags = MatchClass.CERTAIN, []
    assert sorted(map(sorted, student_batches(plan, size=1))) == [[ANA_NO], [MIA_NO]], \
        "a certain match writes its own person only: its other candidates do not tie Ana to Mia"
    cp.match_class = MatchClass.POSSIBLE
    assert student_batches(plan, size=1) == [[ANA_NO, MIA_NO]], "a possible match may be confirmed as 77777"
