"""PowerSchool sandbox: OAuth, metadata, /ws/v1 students (reads and POST updates) over loopback HTTP."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
import requests

from tests.sandbox.district_fixture import CLIENT_ID, CLIENT_SECRET, Client, start


@pytest.fixture(scope="module")
def server() -> Iterator[Any]:
    handle = start(max_page_size=2)
    yield handle
    handle.stop()


@pytest.fixture(scope="module")
def ps(server: Any) -> Client:
    return Client(server.url)


def _token(url: str, auth: tuple[str, str] = (CLIENT_ID, CLIENT_SECRET), path: str = "/oauth/access_token",
           grant: str = "client_credentials") -> requests.Response:
    return requests.post(f"{url}{path}", auth=auth, data={"grant_type": grant},
                         headers={"Accept": "application/json"}, timeout=10)


# -- OAuth ----------------------------------------------------------------------------------------------
def test_token_reply_has_string_expires_in_of_thirty_days(server: Any) -> None:
    body = _token(server.url).json()
    assert body["token_type"] == "Bearer"
    assert isinstance(body["expires_in"], str)
    assert 30 * 24 * 3600 - 60 <= int(body["expires_in"]) <= 30 * 24 * 3600


def test_same_token_until_expiry_and_trailing_slash_accepted(server: Any) -> None:
    first = _token(server.url).json()["access_token"]
    second = _token(server.url, path="/oauth/access_token/").json()["access_token"]
    assert first == second


def test_bad_credentials_and_grant_type_are_refused(server: Any) -> None:
    assert _token(server.url, auth=(CLIENT_ID, "wrong")).status_code == 401
    assert _token(server.url, grant="password").status_code == 400


def test_ws_requires_a_valid_bearer_token(server: Any) -> None:
    url = f"{server.url}/ws/v1/metadata"
    assert requests.get(url, timeout=10).status_code == 401
    assert requests.get(url, headers={"Authorization": "Bearer nope"}, timeout=10).status_code == 401
    token = _token(server.url).json()["access_token"]
    assert requests.get(url, headers={"Authorization": f"Bearer {token}"}, timeout=10).status_code == 200


def test_short_lived_token_expires_and_a_new_one_is_issued() -> None:
    handle = start(token_ttl_seconds=1)
    try:
        import time

        first = _token(handle.url).json()
        assert first["expires_in"] in ("0", "1")
        time.sleep(1.1)
        auth = {"Authorization": f"Bearer {first['access_token']}"}
        assert requests.get(f"{handle.url}/ws/v1/metadata", headers=auth, timeout=10).status_code == 401
        assert _token(handle.url).json()["access_token"] != first["access_token"]
    finally:
        handle.stop()


# -- metadata and student reads -------------------------------------------------------------------------
def test_metadata_reports_page_size_maxima(ps: Client) -> None:
    meta = ps.get("/ws/v1/metadata").json()["metadata"]
    assert meta["student_max_page_size"] == 2
    assert meta["schema_table_query_max_page_size"] == 2


def test_student_list_pages_are_capped_and_ordered(ps: Client) -> None:
    page1 = ps.get("/ws/v1/district/student", params={"page": 1, "pagesize": 50}).json()["students"]
    assert [s["id"] for s in page1["student"]] == [1, 2]
    page2 = ps.get("/ws/v1/district/student", params={"page": 2, "pagesize": 50}).json()["students"]
    # one item: a bare object, not a list
    assert isinstance(page2["student"], dict)
    assert page2["student"]["id"] == 3
    assert page2["student"]["local_id"] == 100003
    page3 = ps.get("/ws/v1/district/student", params={"page": 3, "pagesize": 2}).json()["students"]
    assert "student" not in page3
    assert "u_students_extension" in page3["@extensions"]


def test_student_count_and_fiql_filter(ps: Client) -> None:
    assert ps.get("/ws/v1/district/student/count").json() == {"resource": {"count": 3}}
    r = ps.get("/ws/v1/district/student/count", params={"q": "school_enrollment.grade_level=lt=6"})
    assert r.json() == {"resource": {"count": 2}}
    r = ps.get("/ws/v1/district/student/count", params={"q": "name.first_name==K*,family_ident==H00001"})
    assert r.json() == {"resource": {"count": 3}}
    r = ps.get("/ws/v1/district/student/count", params={"q": "name.first_name==K*;family_ident==H00001"})
    assert r.json() == {"resource": {"count": 0}}
    one = ps.get("/ws/v1/district/student", params={"q": "local_id==100002"}).json()["students"]["student"]
    assert one["name"]["first_name"] == "Luis"
    assert ps.get("/ws/v1/district/student", params={"q": "nosuchfield==1"}).status_code == 400


def test_single_student_with_expansions_and_extension(ps: Client) -> None:
    r = ps.get("/ws/v1/student/3", params={"expansions": "demographics,addresses,phones,school_enrollment",
                                           "extensions": "u_students_extension"})
    s = r.json()["student"]
    assert s["id"] == 3 and s["local_id"] == 100003
    assert s["demographics"]["birth_date"] == "2011-01-20" and s["demographics"]["gender"] == "M"
    assert s["addresses"]["mailing"] == {"street": "PO Box 7", "city": "Shelbyville", "state_province": "CA",
                                         "postal_code": "94112"}
    assert s["phones"]["main"]["number"] == "415-555-0300"
    assert s["school_enrollment"]["school_id"] == 200
    ext = s["_extension_data"]["_table_extension"]
    assert isinstance(ext, dict) and ext["name"] == "u_students_extension" and ext["recordFound"] is False
    s1 = ps.get("/ws/v1/student/1", params={"extensions": "u_students_extension"}).json()["student"]
    fields = {f["name"]: f["value"] for f in s1["_extension_data"]["_table_extension"]["_field"]}
    assert fields["pref_first_name"] == "Annie"
    assert "demographics" not in s1


def test_unknown_student_expansion_and_extension(ps: Client) -> None:
    assert ps.get("/ws/v1/student/999").status_code == 404
    assert ps.get("/ws/v1/student/1", params={"expansions": "bogus"}).status_code == 400
    assert ps.get("/ws/v1/student/1", params={"extensions": "u_nope"}).status_code == 400


# -- student updates ------------------------------------------------------------------------------------
def _update(ps: Client, *records: dict[str, Any]) -> dict[str, Any]:
    body = {"students": {"student": list(records) if len(records) > 1 else records[0]}}
    r = ps.post("/ws/v1/student", json=body)
    assert r.status_code == 200
    return r.json()["results"]


def test_update_student_name_address_phone_and_extension(ps: Client) -> None:
    res = _update(ps, {
        "client_uid": "u1", "action": "UPDATE", "id": 2,
        "name": {"first_name": "Luis", "middle_name": "T", "last_name": "Garcia Lopez"},
        "demographics": {"gender": "M", "birth_date": "2016-09-16"},
        "addresses": {"mailing": {"street": "PO Box 9", "city": "Springfield", "state_province": "CA",
                                  "postal_code": "94110-1234"}},
        "contact_info": {"home_phone": "415 555 0999"},
        "_extension_data": {"_table_extension": {"name": "u_students_extension", "recordFound": True,
                                                 "_field": [{"name": "pref_first_name", "type": "String",
                                                             "value": "Lu"}]}},
    })
    assert res["update_count"] == 1
    assert isinstance(res["result"], dict)
    assert res["result"]["status"] == "SUCCESS" and res["result"]["client_uid"] == "u1"
    assert res["result"]["success_message"]["id"] == 2
    s = ps.get("/ws/v1/student/2", params={"expansions": "addresses,demographics,phones",
                                           "extensions": "u_students_extension"}).json()["student"]
    assert s["name"]["last_name"] == "Garcia Lopez" and s["name"]["middle_name"] == "T"
    assert s["demographics"]["birth_date"] == "2016-09-16"
    assert s["addresses"]["mailing"]["postal_code"] == "94110-1234"
    assert s["phones"]["main"]["number"] == "415 555 0999"
    fields = {f["name"]: f["value"] for f in s["_extension_data"]["_table_extension"]["_field"]}
    assert fields["pref_first_name"] == "Lu" and fields["photo_release"] == "0"


def test_extension_row_is_created_when_missing(ps: Client) -> None:
    res = _update(ps, {"client_uid": "x", "action": "UPDATE", "id": 3, "_extension_data": {"_table_extension": [
        {"name": "u_students_extension", "recordFound": False,
         "_field": [{"name": "photo_release", "value": "1"}, {"name": "pref_last_name", "value": "Itō"}]}]}})
    assert res["result"]["status"] == "SUCCESS"
    ext = ps.get("/ws/v1/student/3", params={"extensions": "u_students_extension"}).json()["student"][
        "_extension_data"]["_table_extension"]
    assert ext["recordFound"] is True
    assert {f["name"]: f["value"] for f in ext["_field"]}["pref_last_name"] == "Itō"


@pytest.mark.parametrize("record, field", [
    ({"name": {"first_name": "  "}}, "name.first_name"),
    ({"name": {"last_name": ""}}, "name.last_name"),
    ({"demographics": {"gender": "X"}}, "demographics.gender"),
    ({"demographics": {"birth_date": "03/02/2014"}}, "demographics.birth_date"),
    ({"addresses": {"physical": {"street": "1 Main"}}}, "addresses.physical"),
    ({"addresses": {"physical": {"street": "1 Main", "city": "X", "state_province": "Cal",
                                 "postal_code": "1"}}}, "addresses.physical.state_province"),
    ({"addresses": {"mailing": {"street": "1 Main", "city": "X", "state_province": "CA",
                                "postal_code": "12345678901"}}}, "addresses.mailing.postal_code"),
    ({"contact_info": {"home_phone": "1" * 31}}, "contact_info.home_phone"),
    ({"_extension_data": {"_table_extension": {"name": "u_students_extension",
                                               "_field": {"name": "nope", "value": "1"}}}},
     "_extension_data.u_students_extension.nope"),
])
def test_invalid_student_updates_are_per_record_errors(ps: Client, record: dict[str, Any], field: str) -> None:
    before = ps.get("/ws/v1/student/1", params={"expansions": "addresses,demographics"}).json()["student"]
    res = _update(ps, {"client_uid": "bad", "action": "UPDATE", "id": 1, **record})
    assert res["update_count"] == 0
    assert res["result"]["status"] == "ERROR"
    assert field in [e["field"] for e in res["result"]["error_message"]["error"]]
    after = ps.get("/ws/v1/student/1", params={"expansions": "addresses,demographics"}).json()["student"]
    assert after == before


def test_one_bad_record_does_not_fail_the_batch(ps: Client) -> None:
    res = _update(
        ps,
        {"client_uid": "ok", "action": "UPDATE", "id": 1, "name": {"first_name": "Ana", "last_name": "Garcia"}},
        {"client_uid": "bad", "action": "UPDATE", "id": 1, "demographics": {"gender": "Q"}},
        {"client_uid": "missing", "action": "UPDATE", "id": 777, "name": {"first_name": "Z"}},
        {"client_uid": "insert", "action": "INSERT", "name": {"first_name": "New", "last_name": "Kid"}},
    )
    assert res["update_count"] == 1
    statuses = {r["client_uid"]: r["status"] for r in res["result"]}
    assert statuses == {"ok": "SUCCESS", "bad": "ERROR", "missing": "ERROR", "insert": "ERROR"}
    assert ps.get("/ws/v1/student/1").json()["student"]["name"]["last_name"] == "Garcia"
    assert ps.get("/ws/v1/district/student/count").json()["resource"]["count"] == 3


def test_malformed_student_post_is_400(ps: Client) -> None:
    assert ps.post("/ws/v1/student", json={"nope": 1}).status_code == 400
    assert ps.post("/ws/v1/student", data="{not json", headers={"Content-Type": "application/json"}).status_code == 400
