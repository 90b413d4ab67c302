"""A value found in place after an earlier attempt is claimed as this run's write (audited as one, so a
rollback undoes it) only when that attempt sent the write: here the first attempt meets an outage and
sends nothing, then a registrar does exactly what the op would do. The retry must record a no-op, and
rolling the run back must leave the registrar's work alone (PowerSchool read over raw HTTP)."""

from __future__ import annotations

import pytest

from writeback.domain.models import WriteOp
from writeback.pipeline.apply import Applier, student_body
from writeback.pipeline.rollback import rollback

from .world import TODAY, World


def _op_of(world: World, kind: str) -> WriteOp:
    """An op of `kind` on a person already in PowerSchool (made here when the plan has none)."""
    person = next(p for p in world.snapshot.persons.values() if p.phones)
    if kind == "phone_add":
        return WriteOp(key=f"phone_add:p:{person.id}:Work", kind="phone_add", person_ref=f"p:{person.id}",
                       values={"number": "(415) 555-0199", "extension": "", "type": "Work"})
    if kind == "link_add":
        linked = {lk.student_dcid for lk in world.snapshot.links if lk.person_id == person.id}
        dcid = next(d for d in world.snapshot.students if d not in linked)
        return WriteOp(key=f"link:p:{person.id}:{dcid}", kind="link_add", person_ref=f"p:{person.id}",
                       student_dcid=dcid, values={"relationship": "Other", "start_date": TODAY.isoformat()})
    return next(op for op in world.ops if op.kind == kind and not (op.person_ref or "").startswith("new:"))


def _someone_else_writes(world: World, op: WriteOp) -> None:
    """A registrar (another writer) does exactly what the op would do."""
    pid = int(op.person_ref.split(":")[1]) if op.person_ref else None
    if op.kind == "phone_add":
        world.call("POST", f"/ws/contacts/{pid}/phones", {"phoneNumber": op.values["number"],
                                                           "phoneType": op.values["type"]})
    elif op.kind == "link_add":
        world.call("POST", f"/ws/contacts/{pid}/students", {
            "dcid": op.student_dcid, "studentDetails": [{"relationship": op.values["relationship"],
                                                         "startDate": op.values["start_date"]}]})
    elif op.kind == "email_update":
        world.call("PUT", f"/ws/contacts/{pid}/emails/{op.target_id}", {"address": op.values["address"]})
    elif op.kind == "link_delete":
        world.call("DELETE", f"/ws/contacts/{pid}/students/{op.target_id}")
    elif op.kind == "student_update":
        world.call("POST", "/ws/v1/student", {"students": {"student": [{**student_body(op),
                                                                         "client_uid": "registrar"}]}})
    else:
        raise AssertionError(op.kind)


@pytest.mark.parametrize("kind", ["phone_add", "link_add", "student_update", "email_update", "link_delete"])
def test_a_value_someone_else_wrote_between_attempts_is_not_claimed_nor_rolled_back(tmp_path, kind):
    world = World(tmp_path)
    try:
        op = _op_of(world, kind)
        client = world.new_client(max_retries=1)
        world.faults(error_rate=1.0)  # the first attempt sends nothing
        Applier(client, world.store, world.run_id, world.snapshot, {}).run([op])
        world.clear_faults()
        assert world.stats()["writes"] == 0
        _someone_else_writes(world, op)
        before = world.export()
        Applier(client, world.store, world.run_id, world.snapshot, {}).run([op])
        assert world.store.ledger(world.run_id)[op.key].status == "done"
        [audit] = [a for a in world.store.audit_rows(world.run_id) if a.op_key == op.key]
        assert audit.response.startswith("noop"), audit.response  # not this run's write
        outcome = rollback(client, world.store, world.run_id)
        assert outcome.http_writes == 0, outcome.as_dict()
        assert world.export() == before  # what the registrar did stays
    finally:
        world.close()
