"""Apply keeps the text rules too (`domain/normalize.py`): a write op carrying an impossible phone number,
an invisible last name or a value not in its clean form (a plan built before the rules, or by hand) is
refused with the reason, and nothing reaches PowerSchool (sandbox over loopback, real store)."""

from __future__ import annotations

import unicodedata

from writeback.domain.models import WriteOp
from writeback.pipeline.apply import Applier


def test_apply_refuses_values_the_text_rules_reject(world):
    person = next(p for p in world.snapshot.persons.values() if p.phones)
    phone = person.phones[0]
    fake_phone = WriteOp(key=f"phone_update:p:{person.id}:{phone.id}", kind="phone_update",
                         person_ref=f"p:{person.id}", target_id=phone.id,
                         values={"number": "000-000-0000", "extension": "", "type": phone.type},
                         expected={"number": phone.number})
    fake_add = WriteOp(key=f"phone_add:p:{person.id}:Work", kind="phone_add", person_ref=f"p:{person.id}",
                       values={"number": "123-456-7890", "extension": "", "type": "Work"})
    invisible = WriteOp(key="create:NEW-invisible", kind="contact_create", person_ref="new:NEW-invisible",
                        values={"first_name": "Maria", "middle_name": "", "last_name": "\u200b"})
    renamed = WriteOp(key=f"name:p:{person.id}", kind="contact_name", person_ref=f"p:{person.id}",
                      values={"last_name": "\u2060"}, expected={"last_name": person.last_name})
    student = next(iter(world.snapshot.students.values()))
    decomposed = WriteOp(key=f"student:{student.dcid}", kind="student_update", student_dcid=student.dcid,
                         student_number=student.student_number,
                         values={"name.first_name": unicodedata.normalize("NFD", "José\u00a0María")},
                         expected={"name.first_name": student.values.get("name.first_name", "")})
    ops = [fake_phone, fake_add, invisible, renamed, decomposed]
    writes = world.stats()["writes"]
    out = Applier(world.client, world.store, world.run_id, world.snapshot, {}).run(ops)
    assert world.stats()["writes"] == writes  # nothing written
    ledger = world.store.ledger(world.run_id)
    assert out.refused == len(ops)
    # refused, not retryable: the record is quarantined with the reason and the district moves on
    assert all(ledger[op.key].status == "refused" and not ledger[op.key].retryable for op in ops)
    assert "not a valid phone number" in ledger[fake_phone.key].error
    assert "not a valid phone number" in ledger[fake_add.key].error
    assert "no visible last name" in ledger[invisible.key].error
    assert "no visible last name" in ledger[renamed.key].error
    assert "name.first_name is not in its clean form" in ledger[decomposed.key].error
