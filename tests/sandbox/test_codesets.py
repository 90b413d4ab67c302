"""The sandbox's CodeSet: served by the named query `com.writeback.codesets` (a core table: the table API
refuses it), with PowerSchool's CodeType names, effective dates, and enforced on contact writes."""

from __future__ import annotations

from typing import Any

import pytest

from tests.sandbox.district_fixture import Client, district
from tests.sandbox.district_fixture import start as start_fixture

QUERY = "/ws/schema/query/com.writeback.codesets"


@pytest.fixture()
def server():
    d = district()
    d["codesets"]["state"] = ["CA", "NV", {"code": "XX", "end_date": "2020-01-01", "display_value": "Retired"}]
    from sandbox.powerschool.server import start_in_thread
    from tests.sandbox.district_fixture import CLIENT_ID, CLIENT_SECRET

    handle = start_in_thread(d, client_id=CLIENT_ID, client_secret=CLIENT_SECRET)
    yield handle
    handle.stop()


def _rows(ps: Client) -> list[dict[str, Any]]:
    r = ps.post(QUERY, json={}, params={"pagesize": 0})
    assert r.status_code == 200, r.text
    return r.json()["record"]


def test_code_sets_are_served_by_code_type_with_their_dates(server):
    rows = _rows(Client(server.url))
    by_type: dict[str, list[str]] = {}
    for row in rows:
        by_type.setdefault(row["codeset.codetype"], []).append(row["codeset.code"])
    assert by_type["Relationship"][:2] == ["Mother", "Father"] and "Other" in by_type["Relationship"]
    assert by_type["Phone"] == ["Home", "Mobile", "Work"]
    assert by_type["Email"] == ["Personal", "Work"]
    assert by_type["Address"] == ["Home", "Mailing"]
    assert by_type["State"] == ["CA", "NV", "XX"]
    retired = next(r for r in rows if r["codeset.code"] == "XX")
    assert retired["codeset.effectiveenddate"] == "2020-01-01" and retired["codeset.displayvalue"] == "Retired"
    assert all(set(r) == {"codeset.codesetid", "codeset.codetype", "codeset.code", "codeset.displayvalue",
                          "codeset.effectivestartdate", "codeset.effectiveenddate"} for r in rows)
    assert len({r["codeset.codesetid"] for r in rows}) == len(rows)


def test_the_table_api_refuses_the_core_codeset_table(server):
    r = Client(server.url).get("/ws/schema/table/codeset", params={"projection": "code"})
    assert r.status_code == 405


def test_a_contact_address_with_a_state_the_set_lacks_is_refused(server):
    ps = Client(server.url)
    body = {"addressType": "Home", "street": "1 Main St", "city": "Reno", "state": "ZZ", "postalcode": "89501"}
    r = ps.post("/ws/contacts/5001/addresses", json=body)
    assert r.status_code == 400 and "ZZ" in r.text, r.text
    r = ps.post("/ws/contacts/5001/addresses", json={**body, "state": "NV"})
    assert r.status_code in (200, 201), r.text


def test_without_a_state_code_set_any_two_letter_state_is_taken():
    handle = start_fixture()
    try:
        r = Client(handle.url).post("/ws/contacts/5001/addresses", json={
            "addressType": "Home", "street": "1 Main St", "city": "Reno", "state": "ZZ", "postalcode": "89501"})
        assert r.status_code in (200, 201), r.text
    finally:
        handle.stop()
