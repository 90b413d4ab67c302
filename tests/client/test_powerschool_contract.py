"""PowerSchoolClient against the real PowerSchool sandbox over loopback (no mocks)."""

from __future__ import annotations

import copy
import math

import pytest
import requests

from writeback.powerschool import (
    AuthError,
    DuplicateError,
    NotAllowed,
    NotFound,
    PowerSchoolClient,
    ValidationError,
)
from writeback.powerschool.shapes import build_extension_data, read_extension_tables

try:
    from sandbox.powerschool.server import start_in_thread
except ImportError as exc:  # the sandbox is written in parallel
    pytest.skip(f"PowerSchool sandbox not importable: {exc}", allow_module_level=True)

from sandbox.generator.district import build_district

CID, SECRET = "contract-client", "contract-secret-value"
MAX_PAGE = 100
LONELY_DCID = 99999  # a student added to the district with no contacts and no extension row
QUERIES = [
    "com.writeback.snapshot." + n
    for n in ("students", "contacts", "emails", "phones", "addresses", "links", "portal_accounts")
]


def _district() -> dict:
    d = build_district(230, 7)
    lonely = copy.deepcopy(d["students"][0])
    lonely.update(
        dcid=LONELY_DCID, id=LONELY_DCID, student_number="999999", first_name="Lonely", last_name="Zed"
    )
    d["students"].append(lonely)
    return d


@pytest.fixture(scope="module")
def district():
    return _district()


@pytest.fixture(scope="module")
def ps(district):
    handle = start_in_thread(
        copy.deepcopy(district), port=0, client_id=CID, client_secret=SECRET, max_page_size=MAX_PAGE
    )
    yield handle
    handle.stop()


@pytest.fixture
def client(ps):
    c = PowerSchoolClient(ps.url, CID, SECRET, timeout=10, backoff=0.01)
    yield c
    c.close()


def pages(rows: int, size: int) -> int:
    return math.ceil(rows / size)


# ------------------------------------------------------------------------------------ auth


def test_token_is_fetched_once_and_reused(client):
    client.metadata()
    client.count_students()
    client.get_student(1)
    assert client.stats["token"] == 1


def test_reauthenticates_once_after_token_revoked(ps, client):
    client.metadata()
    requests.post(f"{ps.url}/_sandbox/expire-tokens", timeout=5).raise_for_status()
    assert client.count_students() == 231
    assert client.stats["token"] == 2 and client.stats["count_students"] == 2


def test_bad_secret(ps):
    bad = PowerSchoolClient(ps.url, CID, "wrong-secret", backoff=0.01)
    with pytest.raises(AuthError) as info:
        bad.metadata()
    assert "wrong-secret" not in str(info.value)


def test_metadata(client):
    md = client.metadata()
    assert md["student_max_page_size"] == MAX_PAGE and md["schema_table_query_max_page_size"] == MAX_PAGE


# ------------------------------------------------------------------------------------ students


@pytest.mark.parametrize("pagesize", [50, 46, 23, 1000])
def test_iter_students_pages(client, district, pagesize):
    students = list(client.iter_students(pagesize=pagesize))
    assert [int(s["id"]) for s in students] == sorted(s["dcid"] for s in district["students"])
    effective = min(pagesize, MAX_PAGE)
    calls = client.stats["iter_students"]
    assert pages(231, effective) <= calls <= pages(231, effective) + 1


def test_iter_students_single_object_quirk_and_count(client):
    [s] = list(client.iter_students(q="local_id==999999"))
    assert int(s["id"]) == LONELY_DCID
    assert client.count_students(q="local_id==999999") == 1
    assert client.count_students() == 231


def test_get_student_with_extension(client):
    s = client.get_student(1, expansions=["demographics", "addresses"], extensions=["u_students_extension"])
    assert int(s["id"]) == 1
    ext = read_extension_tables(s)
    assert "photo_release" in ext["u_students_extension"]


def test_get_student_not_found(client):
    with pytest.raises(NotFound):
        client.get_student(123456789)


def test_update_students_one_and_many_results(client):
    [one] = client.update_students(
        [{"client_uid": "u-1", "id": 2, "name": {"first_name": "Renamed", "last_name": "Person"}}]
    )
    assert one.ok and one.client_uid == "u-1" and one.id == 2 and one.action == "UPDATE"
    assert client.get_student(2)["name"]["first_name"] == "Renamed"

    results = client.update_students(
        [
            {
                "client_uid": "ok",
                "id": 3,
                "_extension_data": build_extension_data(
                    {"u_students_extension": {"pref_first_name": "Pref"}}
                ),
            },
            {"client_uid": "bad", "id": 4, "name": {"last_name": ""}},
        ]
    )
    by_uid = {r.client_uid: r for r in results}
    assert by_uid["ok"].ok
    assert not by_uid["bad"].ok and by_uid["bad"].errors and by_uid["bad"].errors[0].field
    ext = read_extension_tables(client.get_student(3, extensions=["u_students_extension"]))
    assert ext["u_students_extension"]["pref_first_name"] == "Pref"


# ------------------------------------------------------------------------------------ PowerQueries


def test_list_powerqueries(client):
    names = {q["name"] for q in client.list_powerqueries()}
    assert set(QUERIES) <= names


@pytest.mark.parametrize("pagesize", [40, 50, 100, 500])
def test_powerquery_paging(client, district, pagesize):
    name = "com.writeback.snapshot.phones"
    rows = list(client.iter_powerquery(name, pagesize=pagesize))
    assert len(rows) == len(district["phones"]) == client.count_powerquery(name)
    assert {r["phonenumber.phonenumberid"] for r in rows} == {str(p["id"]) for p in district["phones"]}
    assert all(isinstance(v, str) for r in rows for v in r.values())
    effective = min(pagesize, MAX_PAGE)
    assert pages(len(rows), effective) <= client.stats["iter_powerquery"] <= pages(len(rows), effective) + 1


@pytest.mark.parametrize("name", QUERIES)
def test_every_snapshot_query_counts_match(client, name):
    rows = list(client.iter_powerquery(name))
    assert len(rows) == client.count_powerquery(name)
    assert rows and all("." in k for k in rows[0])


# ------------------------------------------------------------------------------------ contacts


def test_contacts_for_student_204_is_empty_list(client):
    assert client.contacts_for_student(LONELY_DCID) == []
    contacts = client.contacts_for_student(8)
    assert len(contacts) == 4 and all("contactId" in c for c in contacts)


def test_get_contact_and_contacts(client):
    c = client.get_contact(5001)
    assert c["contactId"] == 5001
    many = client.get_contacts([5001, 5002, 5001])
    assert [x["contactId"] for x in many] == [5001, 5002]
    with pytest.raises(NotFound):
        client.get_contact(1)


def test_phone_create_update_delete_and_duplicate(client):
    contact = 5010
    before = client.list_children(contact, "phones")
    body = {
        "phoneNumber": "555-0100-77",
        "extension": "",
        "phoneType": "Mobile",
        "preferred": False,
        "sms": False,
        "sequence": len(before) + 1,
    }
    phone_id = client.add_child(contact, "phones", body)
    assert isinstance(phone_id, int)
    with pytest.raises(DuplicateError) as info:
        client.add_child(contact, "phones", body)
    assert info.value.status == 400
    got = client.get_child(contact, "phones", phone_id)
    assert got["phoneNumber"] == "555-0100-77"
    result = client.update_child(contact, "phones", phone_id, {**body, "phoneType": "Work"})
    assert result.ok and result.id == phone_id
    assert client.get_child(contact, "phones", phone_id)["phoneType"] == "Work"
    client.delete_child(contact, "phones", phone_id)
    after = client.list_children(contact, "phones")
    assert len(after) == len(before)
    with pytest.raises(NotFound):
        client.get_child(contact, "phones", phone_id)


def test_email_duplicate(client):
    contact = 5001
    [first, *_] = client.list_children(contact, "emails")
    with pytest.raises(DuplicateError):
        client.add_child(
            contact, "emails", {"address": first["address"], "type": "Personal", "primary": False}
        )


def test_link_sequence_move(client):
    student = 8

    def order() -> list[tuple[int, int]]:
        out = []
        for c in client.contacts_for_student(student):
            for link in c["contactStudents"]:
                if link["dcid"] == student:
                    out.append((link["sequence"], c["contactId"]))
        return sorted(out)

    start = order()
    assert [s for s, _ in start] == [1, 2, 3, 4]
    last_contact = start[-1][1]
    [link] = [x for x in client.list_links(last_contact) if x["dcid"] == student]
    result = client.update_link(last_contact, link["studentContactId"], {"sequence": 1})
    assert result.ok
    moved = order()
    assert [s for s, _ in moved] == [1, 2, 3, 4]
    assert [c for _, c in moved] == [last_contact] + [c for _, c in start[:-1]]
    with pytest.raises(ValidationError):
        client.update_link(last_contact, link["studentContactId"], {"sequence": 9})
    client.update_link(last_contact, link["studentContactId"], {"sequence": 4})
    assert order() == start


def test_contact_create_link_detail_delete(client):
    cid = client.create_contact({"firstName": "Client", "lastName": "Contract", "gender": "F"})
    assert client.get_contact(cid)["lastName"] == "Contract"
    demo = client.get_demographics(cid)
    assert demo
    assert client.put_demographics(cid, {**demo, "employer": "Acme"}).ok
    assert client.get_demographics(cid)["employer"] == "Acme"
    link_id = client.add_link(
        cid,
        {
            "dcid": LONELY_DCID,
            "canAccessData": False,
            "studentDetails": [{"relationship": "Aunt", "startDate": "2020-01-01", "endDate": "2020-12-31"}],
        },
    )
    assert [c["contactId"] for c in client.contacts_for_student(LONELY_DCID)] == [cid]
    assert client.get_link(cid, link_id)["sequence"] == 1
    detail_id = client.add_detail(cid, link_id, {"relationship": "Guardian", "startDate": "2021-01-01"})
    details = client.list_details(cid, link_id)
    assert {d["relationship"] for d in details} == {"Aunt", "Guardian"}
    assert client.update_detail(
        cid, link_id, detail_id, {"relationship": "Other", "startDate": "2021-01-01"}
    ).ok
    client.delete_detail(cid, link_id, detail_id)
    assert len(client.list_details(cid, link_id)) == 1
    client.delete_link(cid, link_id)
    assert client.contacts_for_student(LONELY_DCID) == []
    client.delete_contact(cid)
    with pytest.raises(NotFound):
        client.get_contact(cid)


# ------------------------------------------------------------------------------------ table API


def test_table_crud(client):
    t = "u_students_extension"
    md = client.table_metadata(t)
    cols = [c["name"] for c in md["columns"]]
    assert {"id", "studentsdcid", "pref_first_name"} <= set(cols)
    total = client.count_table(t)
    rows = list(client.iter_table(t, ["id", "studentsdcid", "photo_release"], pagesize=40))
    assert len(rows) == total and all(isinstance(r["photo_release"], str) for r in rows)
    assert pages(total, 40) <= client.stats["iter_table"] <= pages(total, 40) + 1

    row_id = client.insert_row(
        t, {"studentsdcid": LONELY_DCID, "pref_first_name": "Lo", "photo_release": True}
    )
    assert client.get_row(t, row_id, ["studentsdcid", "pref_first_name", "photo_release"]) == {
        "id": row_id,
        "studentsdcid": str(LONELY_DCID),
        "pref_first_name": "Lo",
        "photo_release": "1",
    }
    with pytest.raises(DuplicateError):
        client.insert_row(t, {"studentsdcid": LONELY_DCID})
    client.update_row(t, row_id, {"pref_first_name": None, "photo_release": False})
    row = client.get_row(t, row_id, "pref_first_name,photo_release")
    assert row["pref_first_name"] == "" and row["photo_release"] == "0"
    assert client.count_table(t, q=f"studentsdcid=={LONELY_DCID}") == 1
    client.delete_row(t, row_id)
    assert client.count_table(t) == total
    with pytest.raises(NotFound):
        client.get_row(t, row_id, "id")


def test_table_errors(client):
    with pytest.raises(NotAllowed):
        list(client.iter_table("teachers", "id"))
    with pytest.raises(ValidationError) as info:
        list(client.iter_table("u_students_extension", "id,bogus"))
    assert "bogus" in str(info.value)
    with pytest.raises(NotFound):
        client.table_metadata("u_nope")


def test_stats_count_every_call(ps, client):
    requests.post(f"{ps.url}/_sandbox/reset-stats", timeout=5).raise_for_status()
    list(client.iter_powerquery("com.writeback.snapshot.contacts"))
    client.get_contact(5001)
    server = requests.get(f"{ps.url}/_sandbox/stats", timeout=5).json()
    assert sum(server["requests"].values()) == client.total_calls
