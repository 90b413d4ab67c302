"""Split a run's students into batches that can be applied in parallel without stepping on each other.

Students whose writes touch the same PowerSchool person (siblings sharing a parent, a new parent named
on several forms) must be in one batch, or two workers could race on one contact. Everything else is
independent, so batches are connected components packed up to a size.
"""

from __future__ import annotations

from .models import MatchClass, Plan


def _people(sp) -> set[str]:
    refs = set()
    for cp in sp.contacts:
        if cp.person_id is not None:
            refs.add(f"p:{cp.person_id}")
        if cp.match_class != MatchClass.CERTAIN and cp.new_key:
            refs.add(f"new:{cp.new_key}")
        refs.update(f"p:{c.person_id}" for c in cp.candidates)  # a reviewer may confirm any candidate
    refs.update(f"p:{lk.person_id}" for lk in sp.existing_links)
    return refs


def student_batches(plan: Plan, size: int) -> list[list[str]]:
    """Student numbers in batches of about `size`; students sharing a person never split up."""
    parent: dict[str, str] = {}

    def find(x: str) -> str:
        parent.setdefault(x, x)
        while parent[x] != x:
            parent[x] = parent[parent[x]]
            x = parent[x]
        return x

    for sp in plan.students:
        me = f"s:{sp.student_number}"
        find(me)
        for ref in _people(sp):
            parent[find(ref)] = find(me)
    groups: dict[str, list[str]] = {}
    for sp in plan.students:
        groups.setdefault(find(f"s:{sp.student_number}"), []).append(sp.student_number)
    batches: list[list[str]] = []
    current: list[str] = []
    for group in sorted(groups.values(), key=lambda g: g[0]):
        if current and len(current) + len(group) > size:
            batches.append(current)
            current = []
        current.extend(group)
    if current:
        batches.append(current)
    return batches
