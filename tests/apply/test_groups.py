"""Concurrent apply only runs groups of writes that share no student and no person."""

from __future__ import annotations

from writeback.domain.models import WriteOp
from writeback.pipeline.apply import independent_groups


def op(key: str, student: str, person: str | None = None, **values) -> WriteOp:
    return WriteOp(key=key, kind=values.pop("kind", "phone_add"), student_number=student, person_ref=person,
                   values=values)


def test_writes_to_a_shared_person_or_a_new_contact_stay_in_one_group_in_order():
    ops = [op("a1", "100", "p:1"), op("b1", "200", "p:1"),  # siblings share person 1
           op("c1", "300", "new:K"), op("d1", "400", "new:K"),  # two forms name one new parent
           op("e1", "500", "p:9"), op("a2", "100", "p:2"),
           op("o5", "600", None, kind="contact_order", order=["p:9", "p:7"])]  # the order touches p:9 too
    groups = [[o.key for o in g] for g in independent_groups(ops)]
    assert sorted(groups) == sorted([["a1", "b1", "a2"], ["c1", "d1"], ["e1", "o5"]])


def test_unrelated_students_are_separate_groups():
    assert len(independent_groups([op("x", "1", "p:1"), op("y", "2", "p:2"), op("z", "3", "p:3")])) == 3
