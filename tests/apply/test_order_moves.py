"""The contact order is reached with the fewest link moves (each move places one link and shifts the others)."""

from __future__ import annotations

import bisect
import random

from writeback.pipeline.apply import order_moves


def _apply(current: list[tuple[int, int]], moves: list[tuple[int, int, int]]) -> list[int]:
    state = list(current)
    for pid, link_id, place in moves:
        link = state.pop(next(i for i, (p, _) in enumerate(state) if p == pid))
        assert link[1] == link_id
        state.insert(place - 1, link)
    return [p for p, _ in state]


def _lis(seq: list[int]) -> int:
    tails: list[int] = []
    for x in seq:
        i = bisect.bisect_left(tails, x)
        tails[i:i + 1] = [x]
    return len(tails)


def test_one_link_moved_to_the_end_is_one_move() -> None:
    current = [(1, 11), (2, 12), (3, 13), (4, 14)]
    assert order_moves(current, [2, 3, 4, 1]) == [(1, 11, 4)]  # the old front-to-back walk made 3 moves
    assert order_moves(current, [1, 2, 3, 4]) == []
    assert _apply(current, order_moves(current, [4, 3])) == [4, 3, 1, 2]


def test_random_orders_reach_the_wanted_order_with_the_fewest_moves() -> None:
    rng = random.Random(7)
    for _ in range(3000):
        n = rng.randint(0, 8)
        pids = rng.sample(range(100, 200), n)
        current = [(p, p * 10) for p in pids]
        wanted = rng.sample(pids, n)[:rng.randint(0, n)]
        moves = order_moves(current, wanted)
        final = _apply(current, moves)
        others = [p for p in pids if p not in wanted]
        assert final == wanted + others  # the wanted links first, the others after in their old order
        rank = {p: i for i, p in enumerate(final)}
        assert len(moves) == n - _lis([rank[p] for p in pids])  # a link can only be fixed by moving it


def test_a_lost_create_is_never_credited_to_a_person_outside_the_slice(world):
    """Apply holds a slice of the snapshot: a district person of the same name, missing from the slice, is
    older than the create's watermark, so never its record; without a watermark it could only be a guess."""
    import pytest

    from writeback.domain.models import Snapshot, WriteOp
    from writeback.pipeline.apply import Applier
    from writeback.pipeline.create_evidence import Ambiguous, Evidence, Identity, create_body

    person = next(p for p in world.snapshot.persons.values() if p.first_name and p.last_name)
    op = WriteOp(key="create:x", kind="contact_create", person_ref="new:x",
                 values={"first_name": person.first_name, "last_name": person.last_name})
    applier = Applier(world.client, world.store, world.run_id, Snapshot(taken_at=world.snapshot.taken_at), {})
    identity = Identity.of(create_body(op, []))
    evidence = Evidence(watermark=applier._newest_person_id(), fingerprint=identity.fingerprint,
                        distinguishable=identity.distinguishable)
    assert evidence.watermark >= max(world.snapshot.persons)
    assert applier._recognise(op, evidence) is None
    evidence.watermark = 0
    with pytest.raises(Ambiguous):
        applier._recognise(op, evidence)
