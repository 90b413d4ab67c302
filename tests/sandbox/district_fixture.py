"""A small hand-built district (the contract's district.json shape) and helpers for sandbox tests.

Students 1 and 2 are siblings sharing mother 5001 (portal account, Data Access) and father 5002
(two consecutive details on his link to student 1). Student 3 has father 5003 (whose primary email
is used by another portal account) and mother 5004 whose link is expired. Only students 1 and 2
have a ``u_students_extension`` row.
"""

from __future__ import annotations

import copy
from typing import Any

import requests

CLIENT_ID = "test-client"
CLIENT_SECRET = "test-secret"

_STUDENT_DEFAULTS = {"middle_name": "", "mailing_street": "", "mailing_city": "", "mailing_state": "",
                     "mailing_zip": "", "school_id": 100}


def _student(**kw: Any) -> dict[str, Any]:
    return {**_STUDENT_DEFAULTS, **kw}


def _detail(id_: int, link_id: int, relationship: str, start: str, end: str = "", **flags: bool) -> dict[str, Any]:
    base = {"custodial": True, "emergency": True, "lives_with": True, "school_pickup": True, "receives_mail": True}
    base.update(flags)
    return {"id": id_, "link_id": link_id, "relationship": relationship, "relationship_note": "",
            **base, "start_date": start, "end_date": end}


DISTRICT: dict[str, Any] = {
    "district": {"name": "Fixture Unified", "region": "US", "state": "CA", "seed": 0},
    "students": [
        _student(dcid=1, id=1, student_number="100001", first_name="Ana", last_name="García-López", gender="F",
                 dob="2014-03-02", grade_level=5, family_ident="H00001", street="12 Oak St",
                 city="Springfield", state="CA", zip="94110", home_phone="(415) 555-0100"),
        _student(dcid=2, id=2, student_number="100002", first_name="Luis", middle_name="Tomás",
                 last_name="García-López", gender="M", dob="2016-09-15", grade_level=3, family_ident="H00001",
                 street="12 Oak St", city="Springfield", state="CA", zip="94110", home_phone="(415) 555-0100"),
        _student(dcid=3, id=3, student_number="100003", first_name="Kai", last_name="Ito", gender="M",
                 dob="2011-01-20", grade_level=8, school_id=200, family_ident="H00002", street="9 Pine Ave",
                 city="Shelbyville", state="CA", zip="94112", mailing_street="PO Box 7",
                 mailing_city="Shelbyville", mailing_state="CA", mailing_zip="94112", home_phone="415-555-0300"),
    ],
    "extensions": {"u_students_extension": [
        {"id": 1, "studentsdcid": 1, "pref_first_name": "Annie", "pref_last_name": "", "photo_release": "1"},
        {"id": 2, "studentsdcid": 2, "pref_first_name": "", "pref_last_name": "", "photo_release": "0"},
    ]},
    "persons": [
        {"id": 5001, "first_name": "Maria", "middle_name": "", "last_name": "López", "prefix": "", "suffix": "",
         "gender": "F", "employer": "City Library"},
        {"id": 5002, "first_name": "Jorge", "middle_name": "", "last_name": "García", "prefix": "", "suffix": "",
         "gender": "M", "employer": ""},
        {"id": 5003, "first_name": "Ken", "middle_name": "", "last_name": "Ito", "prefix": "Mr.", "suffix": "",
         "gender": "M", "employer": ""},
        {"id": 5004, "first_name": "Yumi", "middle_name": "", "last_name": "Ito", "prefix": "", "suffix": "",
         "gender": "F", "employer": ""},
    ],
    "emails": [
        {"id": 1, "person_id": 5001, "address": "Maria.Lopez@example.org", "type": "Personal", "primary": True},
        {"id": 2, "person_id": 5002, "address": "jorge@example.org", "type": "Personal", "primary": True},
        {"id": 3, "person_id": 5003, "address": "shared@example.org", "type": "Work", "primary": True},
        {"id": 4, "person_id": 5004, "address": "yumi@example.org", "type": "Personal", "primary": True},
    ],
    "phones": [
        {"id": 1, "person_id": 5001, "number": "415-555-0101", "extension": "", "type": "Mobile",
         "preferred": True, "sms": True, "sequence": 1},
        {"id": 2, "person_id": 5001, "number": "(415) 555-0100", "extension": "", "type": "Home",
         "preferred": False, "sms": False, "sequence": 2},
        {"id": 3, "person_id": 5002, "number": "415-555-0199", "extension": "12", "type": "Work",
         "preferred": True, "sms": False, "sequence": 1},
        {"id": 4, "person_id": 5003, "number": "415-555-0301", "extension": "", "type": "Mobile",
         "preferred": True, "sms": True, "sequence": 1},
    ],
    "addresses": [
        {"id": 1, "person_id": 5001, "type": "Home", "street": "12 Oak St", "linetwo": "", "unit": "",
         "city": "Springfield", "state": "CA", "postal_code": "94110", "country": "US",
         "start_date": "2020-08-01", "end_date": ""},
        {"id": 2, "person_id": 5003, "type": "Home", "street": "9 Pine Ave", "linetwo": "", "unit": "2B",
         "city": "Shelbyville", "state": "CA", "postal_code": "94112", "country": "US",
         "start_date": "2018-01-01", "end_date": ""},
    ],
    "links": [
        {"id": 9001, "person_id": 5001, "student_dcid": 1, "sequence": 1, "can_access_data": True},
        {"id": 9002, "person_id": 5002, "student_dcid": 1, "sequence": 2, "can_access_data": False},
        {"id": 9003, "person_id": 5001, "student_dcid": 2, "sequence": 1, "can_access_data": True},
        {"id": 9004, "person_id": 5002, "student_dcid": 2, "sequence": 2, "can_access_data": False},
        {"id": 9005, "person_id": 5003, "student_dcid": 3, "sequence": 1, "can_access_data": False},
        {"id": 9006, "person_id": 5004, "student_dcid": 3, "sequence": 2, "can_access_data": False},
    ],
    "details": [
        _detail(1, 9001, "Mother", "2020-08-01"),
        _detail(2, 9002, "Father", "2020-08-01", "2022-06-30"),
        _detail(7, 9002, "Father", "2022-07-01", lives_with=False),
        _detail(3, 9003, "Mother", "2020-08-01"),
        _detail(4, 9004, "Father", "2020-08-01", lives_with=False),
        _detail(5, 9005, "Father", "2018-01-01"),
        _detail(6, 9006, "Mother", "2018-01-01", "2023-06-30"),
    ],
    "portal_accounts": [
        {"id": 1, "username": "mlopez", "email": "maria.lopez@example.org", "enabled": True, "person_id": 5001},
        {"id": 2, "username": "yito", "email": "shared@example.org", "enabled": True, "person_id": 5004},
    ],
    "codesets": {"relationship": ["Mother", "Father", "Guardian", "Grandparent", "Aunt", "Uncle",
                                  "Stepmother", "Stepfather", "Sibling", "Other"],
                 "phone_type": ["Home", "Mobile", "Work"],
                 "email_type": ["Personal", "Work"],
                 "address_type": ["Home", "Mailing"]},
}


def district() -> dict[str, Any]:
    """A fresh copy of the fixture district."""
    return copy.deepcopy(DISTRICT)


def start(**kw: Any) -> Any:
    """Start a sandbox holding the fixture district in a thread (stop it with ``.stop()``)."""
    from sandbox.powerschool.server import start_in_thread

    return start_in_thread(district(), client_id=CLIENT_ID, client_secret=CLIENT_SECRET, **kw)


def token(url: str) -> str:
    r = requests.post(f"{url}/oauth/access_token", auth=(CLIENT_ID, CLIENT_SECRET),
                      data={"grant_type": "client_credentials"}, headers={"Accept": "application/json"}, timeout=10)
    r.raise_for_status()
    return r.json()["access_token"]


class Client:
    """``requests`` bound to a sandbox base URL with a Bearer token (no retries, no normalisation)."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.session = requests.Session()
        self.session.headers.update({"Authorization": f"Bearer {token(url)}", "Accept": "application/json"})

    def request(self, method: str, path: str, **kw: Any) -> requests.Response:
        kw.setdefault("timeout", 10)
        return self.session.request(method, f"{self.url}{path}", **kw)

    def get(self, path: str, **kw: Any) -> requests.Response:
        return self.request("GET", path, **kw)

    def post(self, path: str, **kw: Any) -> requests.Response:
        return self.request("POST", path, **kw)

    def put(self, path: str, **kw: Any) -> requests.Response:
        return self.request("PUT", path, **kw)

    def delete(self, path: str, **kw: Any) -> requests.Response:
        return self.request("DELETE", path, **kw)
