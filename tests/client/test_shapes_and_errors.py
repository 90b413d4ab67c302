"""Pure functions: reply-shape normalisation and error parsing."""

from __future__ import annotations

import pickle
from datetime import date

import pytest

from writeback.powerschool import errors as E
from writeback.powerschool import shapes as S


@pytest.mark.parametrize(
    "value, expected",
    [(None, []), ("", []), ([], []), ([1, 2], [1, 2]), ({"a": 1}, [{"a": 1}]), ("x", ["x"]), ((1,), [1])],
)
def test_as_list(value, expected):
    assert S.as_list(value) == expected


def test_v1_results_single_object_and_array():
    one = {
        "results": {
            "insert_count": 0,
            "update_count": 1,
            "delete_count": 0,
            "result": {
                "client_uid": "a-1",
                "status": "SUCCESS",
                "action": "UPDATE",
                "success_message": {"id": 7, "ref": "http://x/ws/v1/student/7"},
            },
        }
    }
    [r] = S.read_v1_results(one)
    assert (r.client_uid, r.status, r.action, r.id, r.errors, r.ok) == (
        "a-1",
        "SUCCESS",
        "UPDATE",
        7,
        [],
        True,
    )

    many = {
        "results": {
            "result": [
                {"client_uid": 1, "status": "SUCCESS", "action": "UPDATE", "success_message": {"id": "8"}},
                {
                    "client_uid": "2",
                    "status": "ERROR",
                    "action": "UPDATE",
                    "error_message": {
                        "error": {
                            "field": "name.last_name",
                            "error_code": "REQ",
                            "error_description": "required",
                        }
                    },
                },
            ]
        }
    }
    a, b = S.read_v1_results(many)
    assert a.client_uid == "1" and a.id == 8 and a.ok
    assert not b.ok and b.id is None
    assert b.errors == [E.FieldError("name.last_name", "REQ", "required")]
    assert b.errors[0].description == "required"


def test_v1_results_empty_shapes():
    assert S.read_v1_results(None) == []
    assert S.read_v1_results({"results": {"insert_count": 0}}) == []


def test_contact_write_reply():
    body = {
        "status": "SUCCESS",
        "action": "INSERT",
        "_success_message": {"id": 5003, "ref": "/ws/contacts/contact/5003"},
        "savedObject": {"contactId": 5003},
    }
    r = S.read_contact_write(body)
    assert r.ok and r.id == 5003 and r.saved_object == {"contactId": 5003}
    err = S.read_contact_write(
        {
            "status": "ERROR",
            "_error_message": {
                "error": [
                    {"field": "phoneNumber", "error_code": "DUP", "error_description": "Duplicate Error"}
                ]
            },
        }
    )
    assert not err.ok and err.errors[0].field == "phoneNumber"
    assert S.read_contact_write(None).ok


def test_created_id_dialects():
    assert S.read_created_id({"_success_message": {"id": "12"}}) == 12
    assert S.read_created_id({"result": {"status": "SUCCESS", "success_message": {"id": 3}}}) == 3
    assert (
        S.read_created_id({"results": {"result": [{"status": "SUCCESS", "success_message": {"id": 4}}]}}) == 4
    )
    assert S.read_created_id({"id": 9}) == 9
    assert S.read_created_id({}) is None


def test_counts():
    assert S.read_count({"count": 3}) == 3
    assert S.read_count({"resource": {"count": "4"}}) == 4
    with pytest.raises(ValueError):
        S.read_count({"nope": 1})


def test_students_quirk():
    assert S.read_students({"students": {"@expansions": "", "student": {"id": 1}}}) == [{"id": 1}]
    assert S.read_students({"students": {"student": [{"id": 1}, {"id": 2}]}}) == [{"id": 1}, {"id": 2}]
    assert S.read_students({"students": {}}) == []
    assert S.read_students({"students": None}) == []
    assert S.read_student({"student": {"id": 3}}) == {"id": 3}


def test_table_rows():
    page = {
        "name": "u_students_extension",
        "record": {
            "id": 1,
            "name": "u_students_extension",
            "tables": {"U_STUDENTS_EXTENSION": {"pref_first_name": "A"}},
        },
    }
    assert S.read_table_rows(page) == [{"pref_first_name": "A", "id": 1}]
    assert S.read_table_row({"id": 2, "name": "t", "tables": {"t": {"c": "v"}}}) == {"c": "v", "id": 2}
    assert S.read_table_rows({"name": "t"}) == []


def test_powerquery_rows_flat_and_grouped():
    flat = {"name": "q", "record": {"students.dcid": "1"}, "@extensions": ""}
    assert S.read_powerquery_rows(flat) == [{"students.dcid": "1"}]
    grouped = {"record": [{"tables": {"students": {"dcid": "1"}, "u_x": {"a": "b"}}}]}
    assert S.read_powerquery_rows(grouped) == [{"students.dcid": "1", "u_x.a": "b"}]
    assert S.read_powerquery_rows({"record": []}) == []


def test_extension_tables_read_and_build():
    student = {
        "_extension_data": {
            "_table_extension": {
                "name": "U_Students_Extension",
                "recordFound": True,
                "_field": {"name": "Pref_First_Name", "type": "String", "value": "Al"},
            }
        }
    }
    assert S.read_extension_tables(student) == {"u_students_extension": {"pref_first_name": "Al"}}
    built = S.build_extension_data({"u_students_extension": {"photo_release": True, "pref_first_name": None}})
    assert built == {
        "_table_extension": [
            {
                "name": "u_students_extension",
                "recordFound": False,
                "_field": [
                    {"name": "photo_release", "type": "String", "value": "1"},
                    {"name": "pref_first_name", "type": "String", "value": ""},
                ],
            }
        ]
    }


def test_encode_table_values():
    assert S.encode_table_values(
        {"a": True, "b": False, "c": None, "d": 5, "e": date(2020, 1, 2), "f": "x"}
    ) == {
        "a": "1",
        "b": "0",
        "c": "",
        "d": "5",
        "e": "2020-01-02",
        "f": "x",
    }


# ----------------------------------------------------------------------------------------- errors


def test_403_table_api_grants():
    body = {
        "message": "At least one column lacks sufficient permission",
        "errors": [{"code": "NoAccess", "field": "pref_first_name", "resource": "U_STUDENTS_EXTENSION"}],
    }
    err = E.error_from_response(403, body, "GET", "/ws/schema/table/u_students_extension?projection=x")
    assert isinstance(err, E.PermissionDenied)
    assert err.missing == [("u_students_extension", "pref_first_name")]
    assert err.path == "/ws/schema/table/u_students_extension"
    assert "u_students_extension.pref_first_name" in str(err)
    assert "projection" not in str(err)


def test_403_powerquery_grants():
    body = {
        "message": "Validation Failed",
        "errors": [
            {
                "resource": "com.writeback.snapshot.students",
                "field": "students.home_phone",
                "code": "No access to the field",
            },
            {
                "resource": "com.writeback.snapshot.students",
                "field": "u_students_extension.pref_first_name",
                "code": "x",
            },
            {"resource": "com.writeback.snapshot.students", "field": "students.home_phone", "code": "dup"},
        ],
    }
    err = E.error_from_response(403, body, "POST", "/ws/schema/query/com.writeback.snapshot.students")
    assert err.missing == [("students", "home_phone"), ("u_students_extension", "pref_first_name")]


def test_401_v1_access_level():
    body = {"errorMessage": {"message": "Plugin is missing required accessLevelV1Api READ permission"}}
    err = E.error_from_response(401, body, "GET", "/ws/v1/metadata")
    assert isinstance(err, E.AuthError) and "accessLevelV1Api" in str(err)


def test_400_validation_and_duplicate():
    body = {
        "status": "ERROR",
        "_error_message": {
            "error": [
                {"field": "phoneNumber", "error_code": "DUPLICATE", "error_description": "Duplicate Error"}
            ]
        },
    }
    err = E.error_from_response(400, body, "POST", "/ws/contacts/5001/phones")
    assert isinstance(err, E.DuplicateError) and isinstance(err, E.ValidationError)
    assert err.field == "phoneNumber" and err.description == "Duplicate Error"

    err = E.error_from_response(
        400,
        {"message": "Invalid field specified: bogus is not valid column for table students"},
        "GET",
        "/ws/x",
    )
    assert type(err) is E.ValidationError and "bogus" in err.message

    err = E.error_from_response(
        400, {"errors": [{"field": "sequence", "code": "RANGE", "message": "out of range"}]}
    )
    assert err.field == "sequence" and err.description == "out of range"


@pytest.mark.parametrize(
    "status, cls",
    [
        (404, E.NotFound),
        (405, E.NotAllowed),
        (409, E.Conflict),
        (500, E.ServerError),
        (503, E.ServerError),
        (429, E.RateLimited),
        (418, E.PowerSchoolError),
    ],
)
def test_status_mapping(status, cls):
    err = E.error_from_response(status, "plain text body\nsecond line", "GET", "/ws/v1/student/1")
    assert type(err) is cls
    assert err.status == status and err.method == "GET" and err.path == "/ws/v1/student/1"
    assert str(err).startswith(f"GET /ws/v1/student/1: HTTP {status}")


def test_rate_limited_carries_retry_after_and_errors_pickle():
    err = E.error_from_response(
        429, {"message": "too many requests, wait 3 seconds"}, "GET", "/ws/v1/metadata", retry_after=3
    )
    assert err.retry_after == 3
    again = pickle.loads(pickle.dumps(err))
    assert type(again) is E.RateLimited and again.retry_after == 3 and str(again) == str(err)
    pd = pickle.loads(pickle.dumps(E.PermissionDenied(403, "m", "GET", "/p", missing=[("t", "c")])))
    assert pd.missing == [("t", "c")]
