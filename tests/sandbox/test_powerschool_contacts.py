"""PowerSchool sandbox: every /ws/contacts endpoint group and its rules, over loopback HTTP.

Each test gets a fresh sandbox (writes change shared state such as link order).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from typing import Any

import pytest

from tests.sandbox.district_fixture import Client, start


@pytest.fixture()
def ps() -> Iterator[Client]:
    handle = start()
    yield Client(handle.url)
    handle.stop()


def _ok(r: Any, action: str) -> dict[str, Any]:
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["status"] == "SUCCESS" and body["action"] == action
    assert "_success_message" in body and body["_success_message"]["ref"].startswith("http")
    return body


def _error(r: Any, status: int = 400) -> dict[str, Any]:
    assert r.status_code == status, r.text
    body = r.json()
    assert body["status"] == "ERROR"
    return body["_error_message"]["error"][0]


def _order(ps: Client, dcid: int) -> list[tuple[int, int]]:
    """(contactId, sequence) of a student's links, as the contacts-by-student endpoint returns them."""
    out = []
    for contact in ps.get(f"/ws/contacts/student/{dcid}").json():
        link = next(s for s in contact["contactStudents"] if s["dcid"] == dcid)
        out.append((contact["contactId"], link["sequence"]))
    return out


# -- reading ---------------------------------------------------------------------------------------------
def test_contact_json_shape(ps: Client) -> None:
    c = ps.get("/ws/contacts/contact/5001").json()
    assert set(c) >= {"contactId", "firstName", "middleName", "lastName", "prefix", "suffix", "gender", "employer",
                      "active", "emails", "phones", "addresses", "contactStudents", "contactAccount"}
    assert c["emails"] == [{"contactEmailId": 1, "emailId": 1, "primary": True, "type": "Personal",
                            "address": "Maria.Lopez@example.org"}]
    assert [p["phoneNumberId"] for p in c["phones"]] == [1, 2]
    phone = c["phones"][0]
    assert {k: phone[k] for k in ("contactsPhoneId", "sequence", "preferred", "phoneType", "phoneNumber",
                                  "extension", "sms")} == {
        "contactsPhoneId": 1, "sequence": 1, "preferred": True, "phoneType": "Mobile",
        "phoneNumber": "415-555-0101", "extension": "", "sms": True}
    addr = c["addresses"][0]
    assert {k: addr[k] for k in ("addressType", "street", "city", "state", "postalcode", "country", "startDate",
                                 "endDate")} == {
        "addressType": "Home", "street": "12 Oak St", "city": "Springfield", "state": "CA", "postalcode": "94110",
        "country": "US", "startDate": "2020-08-01", "endDate": ""}
    links = {s["dcid"]: s for s in c["contactStudents"]}
    assert set(links) == {1, 2}
    assert links[1]["studentContactId"] == 9001 and links[1]["studentNumber"] == "100001"
    assert links[1]["canAccessData"] is True and links[1]["guardianId"] == 1
    detail = links[1]["studentDetails"][0]
    assert detail["relationship"] == "Mother" and detail["active"] is True and detail["studentContactDetailId"] == 1
    assert c["contactAccount"]["username"] == "mlopez"


def test_expired_detail_is_inactive_and_contacts_by_student_ordered(ps: Client) -> None:
    contacts = ps.get("/ws/contacts/student/3").json()
    assert [c["contactId"] for c in contacts] == [5003, 5004]
    yumi = contacts[1]["contactStudents"][0]
    assert yumi["studentDetails"][0]["active"] is False
    assert ps.get("/ws/contacts/contact/5002").json()["contactStudents"][0]["studentDetails"][0]["active"] is False


def test_contacts_by_ids_and_unknowns(ps: Client) -> None:
    got = ps.get("/ws/contacts/contacts", params={"contactids": "5003,5001,424242"}).json()
    assert [c["contactId"] for c in got] == [5003, 5001]
    assert ps.get("/ws/contacts/contacts").status_code == 400
    assert ps.get("/ws/contacts/contact/424242").status_code == 404
    assert ps.get("/ws/contacts/student/999").status_code == 404


def test_student_without_contacts_gives_204_without_body(ps: Client) -> None:
    for link in (9005, 9006):
        contact = 5003 if link == 9005 else 5004
        _ok(ps.delete(f"/ws/contacts/{contact}/students/{link}"), "DELETE")
    r = ps.get("/ws/contacts/student/3")
    assert r.status_code == 204
    assert r.content == b""


# -- create / delete / demographics ----------------------------------------------------------------------
def test_create_contact_with_children_and_link(ps: Client) -> None:
    body = {"firstName": "Sam", "lastName": "Ito", "gender": "M",
            "emails": [{"address": "sam@example.org", "type": "Personal", "primary": True}],
            "phones": [{"phoneNumber": "415-555-0400", "phoneType": "Mobile", "preferred": True, "sms": True}],
            "addresses": [{"addressType": "Home", "street": "1 Elm", "city": "Shelbyville", "state": "CA",
                           "postalcode": "94112", "country": "US", "startDate": "2024-01-01", "endDate": ""}],
            "contactStudents": [{"dcid": 3, "sequence": 1, "studentDetails": [
                {"relationship": "Stepfather", "emergency": True, "startDate": "2024-01-01"}]}]}
    reply = _ok(ps.post("/ws/contacts/contact", json=body), "INSERT")
    cid = reply["_success_message"]["id"]
    saved = reply["savedObject"]
    assert saved["contactId"] == cid and saved["emails"][0]["address"] == "sam@example.org"
    assert saved["contactStudents"][0]["studentDetails"][0]["relationship"] == "Stepfather"
    assert ps.get(f"/ws/contacts/contact/{cid}").json() == saved
    assert _order(ps, 3) == [(cid, 1), (5003, 2), (5004, 3)]


@pytest.mark.parametrize("body, field", [
    ({"firstName": "No", "lastName": ""}, "lastName"),
    ({"firstName": "A", "lastName": "B", "contactAccount": {"username": "x"}}, "contactAccount"),
    ({"firstName": "A", "lastName": "B", "phones": [{"phoneNumber": "1", "phoneType": "Pager"}]}, "phoneType"),
    ({"firstName": "A", "lastName": "B", "contactStudents": [{"dcid": 999}]}, "dcid"),
])
def test_create_contact_rejections_leave_nothing_behind(ps: Client, body: dict[str, Any], field: str) -> None:
    assert _error(ps.post("/ws/contacts/contact", json=body))["field"] == field
    snapshot = ps.post("/ws/schema/query/com.writeback.snapshot.contacts/count", json={}).json()
    assert snapshot == {"count": 4}


def test_delete_contact_closes_link_gaps_and_refuses_portal_accounts(ps: Client) -> None:
    _ok(ps.delete("/ws/contacts/5003"), "DELETE")
    assert ps.get("/ws/contacts/contact/5003").status_code == 404
    assert _order(ps, 3) == [(5004, 1)]
    assert _error(ps.delete("/ws/contacts/5001"))["error_code"] == "HAS_ACCOUNT"
    assert _error(ps.delete("/ws/contacts/424242"), 404)["error_code"] == "NOT_FOUND"


def test_demographics_get_and_put(ps: Client) -> None:
    assert ps.get("/ws/contacts/5002/demographics").json()["firstName"] == "Jorge"
    reply = _ok(ps.put("/ws/contacts/5002/demographics", json={"middleName": "Luis", "employer": "Acme"}), "UPDATE")
    assert reply["savedObject"]["middleName"] == "Luis" and reply["savedObject"]["lastName"] == "García"
    assert ps.get("/ws/contacts/contact/5002").json()["employer"] == "Acme"
    assert _error(ps.put("/ws/contacts/5002/demographics", json={"lastName": " "}))["field"] == "lastName"
    assert _error(ps.put("/ws/contacts/5002/demographics", json={"gender": "Z"}))["field"] == "gender"


# -- emails, phones, addresses ---------------------------------------------------------------------------
def test_email_crud_primary_and_duplicate(ps: Client) -> None:
    reply = _ok(ps.post("/ws/contacts/5002/emails", json={"address": "jg@work.example", "type": "Work",
                                                          "primary": True}), "INSERT")
    new_id = reply["_success_message"]["id"]
    emails = {e["emailId"]: e for e in ps.get("/ws/contacts/5002/emails").json()}
    assert emails[new_id]["primary"] is True and emails[2]["primary"] is False
    dup = _error(ps.post("/ws/contacts/5002/emails", json={"address": "JORGE@example.org", "type": "Personal"}))
    assert dup["error_code"] == "DUPLICATE" and "Duplicate Error" in dup["error_description"]
    _ok(ps.put(f"/ws/contacts/5002/emails/{new_id}", json={"type": "Personal"}), "UPDATE")
    assert ps.get(f"/ws/contacts/5002/emails/{new_id}").json()["type"] == "Personal"
    assert _error(ps.put(f"/ws/contacts/5002/emails/{new_id}", json={"address": "jorge@example.org"}))[
        "error_code"] == "DUPLICATE"
    assert _error(ps.post("/ws/contacts/5002/emails", json={"address": "not-an-email"}))["field"] == "address"
    _ok(ps.delete(f"/ws/contacts/5002/emails/{new_id}"), "DELETE")
    assert ps.get(f"/ws/contacts/5002/emails/{new_id}").status_code == 404
    assert ps.get("/ws/contacts/5001/emails/2").status_code == 404  # another contact's email


def test_phone_crud_duplicate_sequence_and_as_entered(ps: Client) -> None:
    dup = _error(ps.post("/ws/contacts/5001/phones", json={"phoneNumber": "415.555.0101", "phoneType": "Work"}))
    assert dup["error_code"] == "DUPLICATE" and "Duplicate Error" in dup["error_description"]
    reply = _ok(ps.post("/ws/contacts/5001/phones", json={
        "phoneNumber": "+1 (415) 555 0177", "extension": "", "phoneType": "Work", "preferred": True,
        "sms": False, "sequence": 1}), "INSERT")
    assert reply["savedObject"]["phoneNumber"] == "+1 (415) 555 0177"
    new_id = reply["_success_message"]["id"]
    phones = ps.get("/ws/contacts/5001/phones").json()
    assert [(p["phoneNumberId"], p["sequence"], p["preferred"]) for p in phones] == [
        (new_id, 1, True), (1, 2, False), (2, 3, False)]
    _ok(ps.put("/ws/contacts/5001/phones/2", json={"phoneType": "Mobile", "sequence": 1}), "UPDATE")
    assert [(p["phoneNumberId"], p["sequence"]) for p in ps.get("/ws/contacts/5001/phones").json()] == [
        (2, 1), (new_id, 2), (1, 3)]
    assert _error(ps.put("/ws/contacts/5001/phones/2", json={"sequence": 9}))["field"] == "sequence"
    _ok(ps.delete(f"/ws/contacts/5001/phones/{new_id}"), "DELETE")
    assert [(p["phoneNumberId"], p["sequence"]) for p in ps.get("/ws/contacts/5001/phones").json()] == [(2, 1), (1, 2)]
    assert _error(ps.post("/ws/contacts/5001/phones", json={"phoneNumber": "1" * 31, "phoneType": "Home"}))[
        "error_code"] == "MAX_LENGTH"


def test_address_crud_and_validation(ps: Client) -> None:
    body = {"addressType": "Mailing", "street": "PO Box 1", "linetwo": "", "unit": "", "city": "Springfield",
            "state": "CA", "country": "US", "postalcode": "94110", "startDate": "2025-01-01", "endDate": ""}
    reply = _ok(ps.post("/ws/contacts/5002/addresses", json=body), "INSERT")
    aid = reply["_success_message"]["id"]
    assert ps.get(f"/ws/contacts/5002/addresses/{aid}").json()["addressType"] == "Mailing"
    _ok(ps.put(f"/ws/contacts/5002/addresses/{aid}", json={"endDate": "2025-12-31"}), "UPDATE")
    assert ps.get("/ws/contacts/5002/addresses").json()[0]["endDate"] == "2025-12-31"
    assert _error(ps.post("/ws/contacts/5002/addresses", json={**body, "state": "Calif"}))["field"] == "state"
    assert _error(ps.post("/ws/contacts/5002/addresses", json={**body, "city": ""}))["field"] == "city"
    assert _error(ps.post("/ws/contacts/5002/addresses", json={**body, "startDate": "1/1/2025"}))[
        "field"] == "startDate"
    _ok(ps.delete(f"/ws/contacts/5002/addresses/{aid}"), "DELETE")
    assert ps.get("/ws/contacts/5002/addresses").json() == []


# -- student links and details -----------------------------------------------------------------------------
def test_add_link_inserts_at_sequence_and_creates_default_detail(ps: Client) -> None:
    reply = _ok(ps.post("/ws/contacts/5003/students", json={"dcid": 1, "sequence": 2}), "INSERT")
    saved = reply["savedObject"]
    assert saved["dcid"] == 1 and saved["sequence"] == 2
    assert len(saved["studentDetails"]) == 1
    assert saved["studentDetails"][0]["startDate"] == dt.date.today().isoformat()
    assert saved["studentDetails"][0]["active"] is True
    assert _order(ps, 1) == [(5001, 1), (5003, 2), (5002, 3)]
    # default sequence is last; outside 1..n+1 is refused; linking twice is refused
    _ok(ps.post("/ws/contacts/5004/students", json={"dcid": 1, "studentDetails": [{"relationship": "Aunt"}]}),
        "INSERT")
    assert _order(ps, 1)[-1] == (5004, 4)
    assert _error(ps.post("/ws/contacts/5003/students", json={"dcid": 2, "sequence": 4}))["field"] == "sequence"
    assert _error(ps.post("/ws/contacts/5003/students", json={"dcid": 1}))["error_code"] == "DUPLICATE"


def test_put_link_moves_sequence_and_ignores_details(ps: Client) -> None:
    _ok(ps.post("/ws/contacts/5003/students", json={"dcid": 1}), "INSERT")  # 5001, 5002, 5003
    reply = _ok(ps.put("/ws/contacts/5003/students/" + str(_link_id(ps, 5003, 1)), json={
        "sequence": 1, "studentDetails": [{"relationship": "Uncle"}]}), "UPDATE")
    assert reply["savedObject"]["sequence"] == 1
    assert [d["relationship"] for d in reply["savedObject"]["studentDetails"]] == ["Other"]
    assert _order(ps, 1) == [(5003, 1), (5001, 2), (5002, 3)]
    _ok(ps.put("/ws/contacts/5003/students/" + str(_link_id(ps, 5003, 1)), json={"sequence": 3}), "UPDATE")
    assert _order(ps, 1) == [(5001, 1), (5002, 2), (5003, 3)]
    assert _error(ps.put("/ws/contacts/5001/students/9001", json={"sequence": 4}))["field"] == "sequence"
    assert _error(ps.put("/ws/contacts/5001/students/9001", json={"sequence": 0}))["field"] == "sequence"
    # siblings' order is untouched
    assert _order(ps, 2) == [(5001, 1), (5002, 2)]


def _link_id(ps: Client, contact: int, dcid: int) -> int:
    links = ps.get(f"/ws/contacts/{contact}/students").json()
    return next(s["studentContactId"] for s in links if s["dcid"] == dcid)


def test_delete_link_closes_gap_and_keeps_person(ps: Client) -> None:
    _ok(ps.post("/ws/contacts/5003/students", json={"dcid": 1}), "INSERT")
    _ok(ps.delete("/ws/contacts/5001/students/9001"), "DELETE")
    assert _order(ps, 1) == [(5002, 1), (5003, 2)]
    assert ps.get("/ws/contacts/contact/5001").status_code == 200
    assert ps.get("/ws/contacts/5001/students/9001").status_code == 404


def test_can_access_data_rule(ps: Client) -> None:
    # 5003's primary email is the recovery email of another person's portal account
    err = _error(ps.put("/ws/contacts/5003/students/9005", json={"canAccessData": True}))
    assert err["field"] == "canAccessData" and "shared@example.org" in err["error_description"]
    # 5002 has a primary email nobody's account uses
    reply = _ok(ps.put("/ws/contacts/5002/students/9002", json={"canAccessData": True}), "UPDATE")
    assert reply["savedObject"]["canAccessData"] is True
    # a contact without any email cannot get data access
    cid = _ok(ps.post("/ws/contacts/contact", json={"firstName": "No", "lastName": "Mail"}), "INSERT")[
        "_success_message"]["id"]
    err = _error(ps.post(f"/ws/contacts/{cid}/students", json={"dcid": 3, "canAccessData": True}))
    assert err["error_code"] == "NO_VALID_EMAIL"
    # turning it off is always allowed; the owner of the account may keep its own email
    _ok(ps.put("/ws/contacts/5001/students/9001", json={"canAccessData": False}), "UPDATE")
    _ok(ps.put("/ws/contacts/5001/students/9001", json={"canAccessData": True}), "UPDATE")


def test_detail_crud_overlap_and_only_detail_rules(ps: Client) -> None:
    base = "/ws/contacts/5004/students/9006/studentdetails"
    assert [d["studentContactDetailId"] for d in ps.get(base).json()] == [6]
    only = _error(ps.delete(f"{base}/6"))
    assert only["error_code"] == "ONLY_DETAIL"
    overlap = _error(ps.post(base, json={"relationship": "Mother", "startDate": "2023-06-30"}))
    assert overlap["error_code"] == "OVERLAP"
    assert _error(ps.post(base, json={"relationship": "Mother"}))["error_code"] == "OVERLAP"  # open range
    reply = _ok(ps.post(base, json={"relationship": "Guardian", "startDate": "2023-07-01", "custodial": True}),
                "INSERT")
    new_id = reply["_success_message"]["id"]
    assert reply["savedObject"]["active"] is True and reply["savedObject"]["custodial"] is True
    assert ps.get(f"{base}/{new_id}").json()["relationship"] == "Guardian"
    # moving the old detail's end into the new one's range overlaps
    assert _error(ps.put(f"{base}/6", json={"endDate": "2024-01-01"}))["error_code"] == "OVERLAP"
    _ok(ps.put(f"{base}/{new_id}", json={"relationshipNote": "since 2023"}), "UPDATE")
    assert _error(ps.put(f"{base}/{new_id}", json={"relationship": "Cousin"}))["error_code"] == "INVALID_CODE"
    _ok(ps.delete(f"{base}/6"), "DELETE")
    assert [d["studentContactDetailId"] for d in ps.get(base).json()] == [new_id]
    assert ps.get(f"{base}/6").status_code == 404


def test_expire_link_by_setting_detail_end_date(ps: Client) -> None:
    yesterday = (dt.date.today() - dt.timedelta(days=1)).isoformat()
    reply = _ok(ps.put("/ws/contacts/5001/students/9003/studentdetails/3", json={"endDate": yesterday}), "UPDATE")
    assert reply["savedObject"]["active"] is False
    assert _error(ps.put("/ws/contacts/5001/students/9003/studentdetails/3", json={"endDate": "2019-01-01"}))[
        "field"] == "endDate"


def test_unknown_ids_are_404(ps: Client) -> None:
    assert ps.get("/ws/contacts/5001/students/9005").status_code == 404  # 9005 belongs to 5003
    assert ps.get("/ws/contacts/5001/bogus").status_code == 404
    assert ps.get("/ws/contacts/abc/emails").status_code == 404
    assert _error(ps.put("/ws/contacts/5001/phones/3", json={"phoneType": "Home"}), 404)["error_code"] == "NOT_FOUND"
