"""Apply against the PowerSchool sandbox over loopback with a real SQLite store: every kind of write,
reruns, stale writes going back to review, rules checked before a write, lost replies read back."""

from __future__ import annotations

from collections import Counter

from writeback.domain.models import WriteOp
from writeback.pipeline.apply import Applier

ALL_KINDS = {"student_update", "contact_create", "contact_name", "phone_add", "phone_update", "email_add",
             "email_update", "address_add", "address_update", "link_add", "detail_update", "data_access",
             "link_expire", "link_delete", "contact_order"}


def rows_of(rows, column, value):
    return [r for r in rows if r[column] == str(value)]


def test_every_kind_of_write_reaches_powerschool(world):
    before = world.export()
    assert {op.kind for op in world.ops} >= ALL_KINDS
    out = world.apply()
    assert out["apply"].failed == out["cleanup"].failed == 0, out["apply"].failures + out["cleanup"].failures
    ledger = world.store.ledger(world.run_id)
    assert {r.status for r in ledger.values()} == {"done"}
    assert {r.kind for r in ledger.values()} >= ALL_KINDS
    after = world.export()
    students = {r["students.student_number"]: r for r in after["students"]}
    # field edit (Edit) and extension field (Add), Ignore left alone
    assert students["100018"]["u_students_extension.pref_first_name"] == "Coco"
    old = {r["students.student_number"]: r for r in before["students"]}
    assert students["100017"]["students.middle_name"] == old["100017"]["students.middle_name"]  # ignored
    edited = [op for op in world.ops if op.kind == "student_update" and any(k.startswith("addresses") for k in op.values)]
    assert edited
    for op in edited:
        row = students[op.student_number]
        for target, value in op.values.items():
            if target == "addresses.physical.street":
                assert row["students.street"] == value
    # contact update: email, relationship, Data Access
    assert [r["emailaddress.emailaddress"] for r in rows_of(after["emails"], "personemailaddressassoc.personid", 5014)] \
        == ["colleen.grant.new@example.com"]
    link = [r for r in after["links"] if r["studentcontactassoc.personid"] == "5014"
            and r["studentcontactassoc.studentdcid"] == "18"]
    assert link and link[0]["studentcontactdetail.relationshiptype"] == "Guardian"
    assert link[0]["studentcontactassoc.canaccessdata"] == "1"
    # contact rename (same_person_update_name)
    rename = next(op for op in world.ops if op.kind == "contact_name")
    pid = int(rename.person_ref.split(":")[1])
    person = rows_of(after["contacts"], "person.id", pid)[0]
    assert all(person[f"person.{k.replace('_', '')}"] == v for k, v in rename.values.items())
    # do not update: contact 5002 untouched
    for entity, col in (("contacts", "person.id"), ("phones", "personphonenumberassoc.personid"),
                        ("emails", "personemailaddressassoc.personid"), ("addresses", "personaddressassoc.personid")):
        assert rows_of(after[entity], col, 5002) == rows_of(before[entity], col, 5002)
    # create: one person per new key, linked
    created = [r for r in after["contacts"] if int(r["person.id"]) not in world.snapshot.persons]
    assert len(created) == sum(1 for op in world.ops if op.kind == "contact_create")
    # expire and unlink
    assert not [r for r in after["links"] if r["studentcontactassoc.personid"] == "5004"
                and r["studentcontactassoc.studentdcid"] == "3"]
    expire = next(op for op in world.ops if op.kind == "link_expire")
    detail = [r for r in after["links"] if r["studentcontactassoc.studentcontactassocid"] == str(expire.target_id)]
    assert detail and detail[-1]["studentcontactdetail.enddate"] == expire.values["end_date"]
    # order: 1..n without gaps for every student, expired last
    by_student: dict[str, list[int]] = {}
    for r in after["links"]:
        by_student.setdefault(r["studentcontactassoc.studentdcid"], []).append(
            int(r["studentcontactassoc.contactpriorityorder"]))
    for seqs in by_student.values():
        assert sorted(set(seqs)) == list(range(1, len(set(seqs)) + 1))
    # every done write is audited, with the reviewer
    assert {a.op_key for a in world.store.audit_rows(world.run_id)} == set(ledger)


def test_a_rerun_writes_nothing(world):
    world.apply()
    writes = world.stats()["writes"]
    out = world.apply()
    assert world.stats()["writes"] == writes
    assert out["apply"].http_writes == out["cleanup"].http_writes == 0
    assert out["apply"].skipped + out["cleanup"].skipped == len(world.ops)


def _set_pref_first_name(world, dcid: int, value: str) -> None:
    world.call("POST", "/ws/v1/student", {"students": {"student": [{
        "client_uid": "someone-else", "action": "UPDATE", "id": dcid,
        "_extension_data": {"_table_extension": [{"name": "u_students_extension",
                                                  "_field": [{"name": "pref_first_name", "value": value}]}]}}]}})


def test_a_change_since_the_snapshot_goes_back_to_review_and_is_not_overwritten(world):
    _set_pref_first_name(world, 18, "Cora")  # someone edits PowerSchool between snapshot and apply
    world.call("PUT", "/ws/contacts/5014/emails/12", {"address": "colleen@office.example.com"})
    world.apply()
    ledger = world.store.ledger(world.run_id)
    assert ledger["student:18"].status == "stale"
    assert ledger["email_update:p:5014:12"].status == "stale"
    students = {r["students.dcid"]: r for r in world.query("students")}
    assert students["18"]["u_students_extension.pref_first_name"] == "Cora"  # not overwritten
    items = {i.item_key: i for i in world.store.items(world.run_id, kind="stale_write")}
    student_item = items["stale:student:18"]
    assert student_item.options == ["overwrite", "keep_powerschool"] and student_item.state == "pending"
    assert student_item.payload["fields"]["extension.u_students_extension.pref_first_name"] == {
        "snapshot": "", "current": "Cora", "intended": "Coco", "changed": True}
    email_item = items["stale:email_update:p:5014:12"]
    assert email_item.payload["fields"]["address"] == {
        "snapshot": "colleen.grant74@example.com", "current": "colleen@office.example.com",
        "intended": "colleen.grant.new@example.com", "changed": True}
    assert email_item.submission_id == "SUB-000005"

    # undecided: a rerun leaves them stale and writes nothing for them
    writes = world.stats()["writes"]
    world.apply()
    assert world.stats()["writes"] == writes
    assert world.store.ledger(world.run_id)["student:18"].status == "stale"

    world.store.decide(world.run_id, "stale:student:18", "overwrite", user="registrar")
    world.store.decide(world.run_id, "stale:email_update:p:5014:12", "keep_powerschool", user="registrar")
    world.apply()
    ledger = world.store.ledger(world.run_id)
    assert ledger["student:18"].status == "done"
    assert ledger["email_update:p:5014:12"].status == "skipped_by_reviewer"
    students = {r["students.dcid"]: r for r in world.query("students")}
    assert students["18"]["u_students_extension.pref_first_name"] == "Coco"
    emails = rows_of(world.query("emails"), "personemailaddressassoc.personid", 5014)
    assert [r["emailaddress.emailaddress"] for r in emails] == ["colleen@office.example.com"]
    writes = world.stats()["writes"]
    world.apply()
    assert world.stats()["writes"] == writes


def test_overwrite_reads_again_and_a_second_change_goes_back_to_review(world):
    _set_pref_first_name(world, 18, "Cora")
    world.apply()
    world.store.decide(world.run_id, "stale:student:18", "overwrite", user="registrar")
    _set_pref_first_name(world, 18, "Cici")  # changed again after the reviewer looked
    world.apply()
    assert world.store.ledger(world.run_id)["student:18"].status == "stale"
    item = world.store.item(world.run_id, "stale:student:18")
    assert item.state == "pending"
    assert item.payload["fields"]["extension.u_students_extension.pref_first_name"]["current"] == "Cici"


def _one(world, kind: str) -> WriteOp:
    return next(op for op in world.ops if op.kind == kind)


def test_rules_are_checked_before_the_write(world):
    # a phone update that changes the type without a use_submitted_type decision
    phone = next(p for p in world.snapshot.persons[5002].phones)
    other = next(t for t in ("Home", "Mobile", "Work") if t != phone.type)
    sneaky = WriteOp(key="phone_update:p:5002:x", kind="phone_update", person_ref="p:5002", target_id=phone.id,
                     values={"number": phone.number, "extension": phone.extension, "type": other},
                     expected={"number": phone.number})
    # Data Access for a contact whose email a portal account of another person uses
    account = next(a for a in world.snapshot.portal_accounts if a.person_id)
    holder = next(lk for lk in world.snapshot.links if lk.person_id != account.person_id
                  and any(e.primary for e in world.snapshot.persons[lk.person_id].emails))
    email = next(e for e in world.snapshot.persons[holder.person_id].emails if e.primary)
    world.call("PUT", f"/ws/contacts/{holder.person_id}/emails/{email.id}", {"address": account.email})
    access = WriteOp(key=f"access:p:{holder.person_id}:{holder.student_dcid}", kind="data_access",
                     person_ref=f"p:{holder.person_id}", student_dcid=holder.student_dcid,
                     values={"can_access_data": True})
    # an expiration that would end the link before it starts (detail dates must stay a valid, non-overlapping range)
    link = next(lk for lk in world.snapshot.links if len(lk.details) == 1 and not lk.details[0].end_date
                and lk.details[0].start_date > "2000-01-01")
    expire = WriteOp(key=f"expire:p:{link.person_id}:{link.student_dcid}", kind="link_expire", stage="cleanup",
                     person_ref=f"p:{link.person_id}", student_dcid=link.student_dcid, target_id=link.id,
                     values={"end_date": "1999-12-31"})
    writes = world.stats()["writes"]
    out = Applier(world.client, world.store, world.run_id, world.snapshot, {}).run([sneaky, access, expire])
    assert world.stats()["writes"] == writes  # nothing written
    ledger = world.store.ledger(world.run_id)
    assert out.refused == 3 and out.failed == 0  # refused, not failed: quarantined, nothing waits for them
    assert "needs a reviewer's use_submitted_type decision" in ledger[sneaky.key].error
    assert "not used by another portal account" in ledger[access.key].error
    assert "before the link's start date" in ledger[expire.key].error
    assert all(ledger[k].status == "refused" and not ledger[k].retryable for k in (sneaky.key, access.key, expire.key))
    quarantined = {q.op_key: q for q in world.store.quarantine(world.run_id)}
    assert {k: quarantined[k].check for k in (sneaky.key, access.key, expire.key)} == dict.fromkeys(
        (sneaky.key, access.key, expire.key), "rule_refused")


def test_a_create_whose_reply_was_lost_is_found_not_doubled(world):
    creates = [op for op in world.ops if op.kind in ("contact_create", "phone_add", "email_add", "link_add",
                                                     "address_add")]
    applier_ops = creates
    world.faults(seed=1, drop_after_writes=0)  # the first committed write's reply is lost
    Applier(world.client, world.store, world.run_id, world.snapshot, {}).run(applier_ops)
    ledger = world.store.ledger(world.run_id)
    first = ledger[creates[0].key]
    assert first.status == "done"
    audit = {a.op_key: a for a in world.store.audit_rows(world.run_id)}
    assert "unknown outcome" in audit[creates[0].key].response
    world.faults(seed=2, drop_after_writes=3)
    Applier(world.client, world.store, world.run_id, world.snapshot, {}).run(applier_ops)
    world.clear_faults()
    Applier(world.client, world.store, world.run_id, world.snapshot, {}).run(applier_ops)
    assert {world.store.ledger(world.run_id)[op.key].status for op in creates} == {"done"}
    persons = world.query("contacts")
    names = Counter((r["person.firstname"], r["person.lastname"]) for r in persons
                    if int(r["person.id"]) not in world.snapshot.persons)
    assert names and max(names.values()) == 1
    phones = Counter((r["personphonenumberassoc.personid"], r["phonenumber.phonenumber"]) for r in world.query("phones"))
    assert max(phones.values()) == 1
    emails = Counter((r["personemailaddressassoc.personid"], r["emailaddress.emailaddress"].lower())
                     for r in world.query("emails"))
    assert max(emails.values()) == 1
