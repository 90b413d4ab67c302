"""Split a run's students into batches that can be applied in parallel without stepping on each other.

Students whose writes touch the same PowerSchool person (siblings sharing a parent, a new parent named
on several forms) must be in one batch, or two workers could race on one contact. Everything else is
independent, so batches are connected components packed up to a size.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

from .models import MatchClass, Plan

T = TypeVar("T")


def _people(sp) -> set[str]:
    refs = set()
    for cp in sp.contacts:
        if cp.person_id is not None:
            refs.add(f"p:{cp.person_id}")
        if cp.match_class != MatchClass.CERTAIN and cp.new_key:
            refs.add(f"new:{cp.new_key}")
        if cp.match_class != MatchClass.CERTAIN or "name_mismatch" in cp.flags:
            # a reviewer may confirm any candidate. A certain match writes only its own person (the other
            # candidates of a certain match chained thousands of students into one batch at 50,000)
            refs.update(f"p:{c.person_id}" for c in cp.candidates)
    refs.update(f"p:{lk.person_id}" for lk in sp.existing_links)
    return refs


def connected_groups(items: list[T], keys: Callable[[T], list[str]]) -> list[list[T]]:
    """Items joined whenever they share a key (union-find); each group keeps the items' order."""
    parent: dict[str, str] = {}

    def find(x: str) -> str:
        parent.setdefault(x, x)
        while parent[x] != x:
            parent[x] = parent[parent[x]]
            x = parent[x]
        return x

    firsts = []
    for item in items:
        own = keys(item)
        firsts.append(own[0])
        for k in own:
            parent[find(k)] = find(own[0])
    groups: dict[str, list[T]] = {}
    for item, first in zip(items, firsts, strict=True):
        groups.setdefault(find(first), []).append(item)
    return list(groups.values())


def student_batches(plan: Plan, size: int) -> list[list[str]]:
    """Student numbers in batches of about `size`; students sharing a person never split up."""
    components = connected_groups(plan.students, lambda sp: [f"s:{sp.student_number}", *sorted(_people(sp))])
    batches: list[list[str]] = []
    current: list[str] = []
    for group in sorted(([sp.student_number for sp in g] for g in components), key=lambda g: g[0]):
        if current and len(current) + len(group) > size:
            batches.append(current)
            current = []
        current.extend(group)
    if current:
        batches.append(current)
    return batches
