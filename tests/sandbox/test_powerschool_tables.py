"""PowerSchool sandbox: table API for extension tables and the named snapshot PowerQueries."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from tests.sandbox.district_fixture import Client, start

EXT = "/ws/schema/table/u_students_extension"

QUERY_COLUMNS = {
    "com.writeback.snapshot.students": (
        "students.dcid, students.student_number, students.first_name, students.middle_name, students.last_name, "
        "students.gender, students.dob, students.grade_level, students.schoolid, students.family_ident, "
        "students.street, students.city, students.state, students.zip, students.mailing_street, "
        "students.mailing_city, students.mailing_state, students.mailing_zip, students.home_phone, "
        "u_students_extension.pref_first_name, u_students_extension.pref_last_name, "
        "u_students_extension.photo_release"),
    "com.writeback.snapshot.contacts": (
        "person.id, person.firstname, person.middlename, person.lastname, person.prefix, person.suffix, "
        "person.gender, person.employer"),
    "com.writeback.snapshot.emails": (
        "emailaddress.emailaddressid, personemailaddressassoc.personid, emailaddress.emailaddress, "
        "personemailaddressassoc.emailtype, personemailaddressassoc.isprimaryemailaddress"),
    "com.writeback.snapshot.phones": (
        "phonenumber.phonenumberid, personphonenumberassoc.personid, phonenumber.phonenumber, "
        "phonenumber.phonenumberext, personphonenumberassoc.phonetype, personphonenumberassoc.ispreferred, "
        "phonenumber.issms, personphonenumberassoc.phonenumberpriorityorder"),
    "com.writeback.snapshot.addresses": (
        "personaddress.personaddressid, personaddressassoc.personid, personaddressassoc.addresstype, "
        "personaddress.street, personaddress.linetwo, personaddress.unit, personaddress.city, personaddress.state, "
        "personaddress.postalcode, personaddress.country, personaddressassoc.startdate, personaddressassoc.enddate"),
    "com.writeback.snapshot.links": (
        "studentcontactassoc.studentcontactassocid, studentcontactassoc.studentdcid, studentcontactassoc.personid, "
        "studentcontactassoc.contactpriorityorder, studentcontactassoc.canaccessdata, "
        "studentcontactdetail.studentcontactdetailid, studentcontactdetail.relationshiptype, "
        "studentcontactdetail.relationshipnote, studentcontactdetail.iscustodial, studentcontactdetail.isemergency, "
        "studentcontactdetail.liveswithflg, studentcontactdetail.schoolpickupflg, "
        "studentcontactdetail.receivesmailflg, studentcontactdetail.startdate, studentcontactdetail.enddate, "
        "studentcontactdetail.isactive"),
    "com.writeback.snapshot.portal_accounts": (
        "pcas_account.pcas_accountid, pcas_account.username, pcas_account.isenabled, "
        "pcas_emailcontact.emailaddress, guardianpersonassoc.personid"),
    "com.writeback.codesets": (
        "codeset.codesetid, codeset.codetype, codeset.code, codeset.displayvalue, codeset.effectivestartdate, "
        "codeset.effectiveenddate"),
}
QUERY_COUNTS = {"com.writeback.codesets": 17, "com.writeback.snapshot.students": 3, "com.writeback.snapshot.contacts": 4,
                "com.writeback.snapshot.emails": 4, "com.writeback.snapshot.phones": 4,
                "com.writeback.snapshot.addresses": 2, "com.writeback.snapshot.links": 7,
                "com.writeback.snapshot.portal_accounts": 2}


@pytest.fixture(scope="module")
def ps() -> Iterator[Client]:
    handle = start(max_page_size=3)
    yield Client(handle.url)
    handle.stop()


# -- table API -------------------------------------------------------------------------------------------
def test_projection_is_required(ps: Client) -> None:
    assert ps.get(EXT).status_code == 400
    r = ps.get(EXT, params={"projection": "studentsdcid,pref_first_name"})
    assert r.status_code == 200
    body = r.json()
    assert body["name"] == "u_students_extension"
    first = body["record"][0]
    assert first["id"] == 1 and first["name"] == "u_students_extension"
    assert first["tables"]["u_students_extension"] == {"studentsdcid": "1", "pref_first_name": "Annie"}


def test_query_count_and_paging(ps: Client) -> None:
    r = ps.get(EXT, params={"projection": "*", "q": "photo_release==0"}).json()["record"]
    assert [row["id"] for row in r] == [2]
    assert ps.get(f"{EXT}/count").json() == {"count": 2}
    assert ps.get(f"{EXT}/count", params={"q": "studentsdcid==1"}).json() == {"count": 1}
    page2 = ps.get(EXT, params={"projection": "id", "page": 2, "pagesize": 1}).json()["record"]
    assert [row["id"] for row in page2] == [2]


def test_invalid_column_core_table_and_unknown_table(ps: Client) -> None:
    r = ps.get(EXT, params={"projection": "pref_first_name,shoe_size"})
    assert r.status_code == 400
    assert r.json()["message"] == "Invalid field specified: shoe_size is not valid column for table u_students_extension"
    assert ps.get(EXT, params={"projection": "id", "q": "shoe_size==1"}).status_code == 400
    assert ps.get("/ws/schema/table/teachers", params={"projection": "*"}).status_code == 405
    assert ps.get("/ws/schema/table/students/count").status_code == 405
    assert ps.get("/ws/schema/table/u_nope", params={"projection": "*"}).status_code == 404


def test_metadata_with_access_expansion(ps: Client) -> None:
    plain = ps.get(f"{EXT}/metadata").json()
    assert plain["name"] == "u_students_extension"
    assert [c["name"] for c in plain["columns"]] == ["id", "studentsdcid", "pref_first_name", "pref_last_name",
                                                     "photo_release"]
    assert "access" not in plain["columns"][0]
    full = ps.get(f"{EXT}/metadata", params={"expansions": "access"}).json()
    assert {c["access"] for c in full["columns"]} == {"FullAccess"}


def test_table_crud(ps: Client) -> None:
    r = ps.post(EXT, json={"tables": {"u_students_extension": {"studentsdcid": "3", "photo_release": True}}})
    assert r.status_code == 200, r.text
    new_id = r.json()["result"]["success_message"]["id"]
    row = ps.get(f"{EXT}/{new_id}").json()
    assert row["id"] == new_id
    assert row["tables"]["u_students_extension"]["photo_release"] == "1"
    assert row["tables"]["u_students_extension"]["pref_first_name"] == ""
    dup = ps.post(EXT, json={"tables": {"u_students_extension": {"studentsdcid": "3"}}})
    assert dup.status_code == 400
    r = ps.put(f"{EXT}/{new_id}", json={"tables": {"u_students_extension": {"id": str(new_id),
                                                                            "pref_first_name": "Kaito"}}})
    assert r.status_code == 200 and r.json()["result"]["action"] == "UPDATE"
    assert ps.get(f"{EXT}/{new_id}", params={"projection": "pref_first_name"}).json()["tables"] == {
        "u_students_extension": {"pref_first_name": "Kaito"}}
    assert ps.put(f"{EXT}/{new_id}", json={"tables": {"u_students_extension": {"bogus": "1"}}}).status_code == 400
    r = ps.delete(f"{EXT}/{new_id}")
    assert r.status_code == 204
    assert ps.get(f"{EXT}/{new_id}").status_code == 404
    assert ps.delete(f"{EXT}/{new_id}").status_code == 404
    assert ps.post(EXT, json={"tables": {"u_students_extension": {"studentsdcid": "999"}}}).status_code == 400


# -- PowerQueries ----------------------------------------------------------------------------------------
def test_query_api_lists_every_named_query(ps: Client) -> None:
    names = [q["name"] for q in ps.get("/ws/schema/query/api").json()["queries"]]
    assert sorted(names) == sorted(QUERY_COLUMNS)


@pytest.mark.parametrize("name", sorted(QUERY_COLUMNS))
def test_named_query_columns_paging_and_count(ps: Client, name: str) -> None:
    expected_cols = [c.strip() for c in QUERY_COLUMNS[name].split(",")]
    total = QUERY_COUNTS[name]
    assert ps.post(f"/ws/schema/query/{name}/count", json={}).json() == {"count": total}
    everything = ps.post(f"/ws/schema/query/{name}", params={"pagesize": 0}, json={}).json()
    assert everything["name"] == name and everything["@extensions"] == ""
    rows = everything["record"]
    assert len(rows) == total
    for row in rows:
        assert list(row) == expected_cols
        assert all(isinstance(v, str) for v in row.values())
    firsts = [int(r[expected_cols[0]]) for r in rows]
    assert firsts == sorted(firsts)
    # pagesize is capped at 3 (schema_table_query_max_page_size)
    paged: list[dict[str, Any]] = []
    page = 1
    while True:
        got = ps.post(f"/ws/schema/query/{name}", params={"page": page, "pagesize": 50}, json={}).json()["record"]
        assert len(got) <= 3
        if not got:
            break
        paged.extend(got)
        page += 1
    assert paged == rows


def test_query_values(ps: Client) -> None:
    students = ps.post("/ws/schema/query/com.writeback.snapshot.students", params={"pagesize": 0}).json()["record"]
    ana = students[0]
    assert ana["students.dcid"] == "1" and ana["students.grade_level"] == "5" and ana["students.schoolid"] == "100"
    assert ana["u_students_extension.pref_first_name"] == "Annie"
    assert students[2]["u_students_extension.photo_release"] == ""  # no extension row
    links = ps.post("/ws/schema/query/com.writeback.snapshot.links", params={"pagesize": 0}, json={}).json()["record"]
    by_detail = {r["studentcontactdetail.studentcontactdetailid"]: r for r in links}
    assert by_detail["6"]["studentcontactdetail.isactive"] == "0"
    assert by_detail["6"]["studentcontactdetail.enddate"] == "2023-06-30"
    assert by_detail["1"]["studentcontactdetail.isactive"] == "1"
    assert by_detail["1"]["studentcontactassoc.canaccessdata"] == "1"
    assert [r["studentcontactdetail.studentcontactdetailid"] for r in links if
            r["studentcontactassoc.studentcontactassocid"] == "9002"] == ["2", "7"]
    emails = ps.post("/ws/schema/query/com.writeback.snapshot.emails", json={}).json()["record"]
    assert emails[0]["personemailaddressassoc.isprimaryemailaddress"] == "1"
    accounts = ps.post("/ws/schema/query/com.writeback.snapshot.portal_accounts", json={}).json()["record"]
    assert accounts[0] == {"pcas_account.pcas_accountid": "1", "pcas_account.username": "mlopez",
                           "pcas_account.isenabled": "1", "pcas_emailcontact.emailaddress": "maria.lopez@example.org",
                           "guardianpersonassoc.personid": "5001"}


def test_query_errors(ps: Client) -> None:
    assert ps.post("/ws/schema/query/com.example.nope", json={}).status_code == 404
    assert ps.post("/ws/schema/query/com.writeback.snapshot.contacts", json=[1]).status_code == 400
    assert ps.post("/ws/schema/query/com.writeback.snapshot.contacts", params={"page": 0}).status_code == 400


def test_named_query_pages_after_a_write_are_what_offset_paging_gives() -> None:
    """Pages are served by keyset (where the previous page ended); a write voids the remembered ends."""
    handle = start(max_page_size=3)
    try:
        ps = Client(handle.url)
        name = "com.writeback.snapshot.links"

        def page(n: int) -> list[dict[str, Any]]:
            return ps.post(f"/ws/schema/query/{name}", params={"page": n, "pagesize": 3}, json={}).json()["record"]

        rows = ps.post(f"/ws/schema/query/{name}", params={"pagesize": 0}, json={}).json()["record"]
        assert page(1) + page(2) + page(3) == rows[:9]
        assert page(3) == rows[6:9]  # again, and without reading page 2 first
        first = rows[0]
        r = ps.request("DELETE", f"/ws/contacts/{first['studentcontactassoc.personid']}/students/"
                                 f"{first['studentcontactassoc.studentcontactassocid']}")
        assert r.status_code in (200, 204), r.text
        after = ps.post(f"/ws/schema/query/{name}", params={"pagesize": 0}, json={}).json()["record"]
        assert len(after) < len(rows)
        assert page(2) == after[3:6]  # not the rows after page 1's old end
        assert page(1) + page(2) + page(3) == after[:9]
    finally:
        handle.stop()
