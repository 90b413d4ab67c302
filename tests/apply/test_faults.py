"""Under 5xx, 429 bursts and replies lost after a commit, repeated apply attempts converge to the state a
fault-free run reaches, with no person, phone or email doubled. Seeded: the same requests get the same faults."""

from __future__ import annotations

from collections import Counter

import pytest

from .world import World

ROW_IDS = {"personaddress.personaddressid", "emailaddress.emailaddressid", "phonenumber.phonenumberid",
           "studentcontactassoc.studentcontactassocid", "studentcontactdetail.studentcontactdetailid"}
PERSON_COLUMNS = {"person.id", "personaddressassoc.personid", "personemailaddressassoc.personid",
                  "personphonenumberassoc.personid", "studentcontactassoc.personid", "guardianpersonassoc.personid"}


def final_state(world: World) -> dict[str, list]:
    """The district's state, with ids the order of creation decides (new persons, rows) replaced by content."""
    export = world.export()
    new_person = {r["person.id"]: f"new:{r['person.firstname']} {r['person.lastname']}" for r in export["contacts"]
                  if int(r["person.id"]) not in world.snapshot.persons}
    out = {}
    for entity, rows in export.items():
        out[entity] = sorted(tuple(sorted((k, new_person.get(v, v) if k in PERSON_COLUMNS else v)
                                          for k, v in r.items() if k not in ROW_IDS)) for r in rows)
    return out


@pytest.fixture
def reference(tmp_path_factory):
    w = World(tmp_path_factory.mktemp("clean"))
    try:
        out = w.apply()
        assert out["apply"].failed == out["cleanup"].failed == 0
        yield final_state(w)
    finally:
        w.close()


@pytest.mark.parametrize("seed", [3, 8])
def test_repeated_attempts_under_faults_converge_to_the_fault_free_state(tmp_path, reference, seed):
    w = World(tmp_path)
    try:
        client = w.new_client(max_retries=2)
        for attempt in range(25):
            w.faults(seed=seed * 100 + attempt, error_rate=0.15, burst_429=2 if attempt % 3 == 0 else 0,
                     drop_after_writes=attempt % 4)
            w.apply(client=client, batch_size=5)
            ledger = w.store.ledger(w.run_id)
            if len(ledger) == len(w.ops) and {r.status for r in ledger.values()} == {"done"}:
                break
        else:
            pytest.fail(f"no convergence: {Counter(r.status for r in w.store.ledger(w.run_id).values())}")
        w.clear_faults()
        counters = w.stats()
        assert counters["writes"] > 0
        state = final_state(w)
        assert state == reference
        persons = Counter((r["person.firstname"], r["person.lastname"]) for r in w.query("contacts"))
        new = [name for name, n in persons.items() if n > 1]
        assert not [n for n in new if n not in {(p.first_name, p.last_name) for p in w.snapshot.persons.values()}]
        phones = Counter((r["personphonenumberassoc.personid"], r["phonenumber.phonenumber"]) for r in w.query("phones"))
        assert max(phones.values()) == 1
        emails = Counter((r["personemailaddressassoc.personid"], r["emailaddress.emailaddress"].lower())
                         for r in w.query("emails"))
        assert max(emails.values()) == 1
        # once converged, another attempt writes nothing
        writes = w.stats()["writes"]
        w.apply(client=client)
        assert w.stats()["writes"] == writes
    finally:
        w.close()
