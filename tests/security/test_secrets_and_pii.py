"""PowerSchool client errors against the sandbox carry neither the client secret, the token, nor the
values of the request body (student and contact PII): the exception text ends up in task logs."""

from __future__ import annotations

import re
from collections.abc import Iterator

import pytest

from sandbox.generate import build_all
from sandbox.powerschool.server import start_in_thread
from writeback.domain.mapping import load_mapping
from writeback.plugin_xml import build_plugin_xml
from writeback.powerschool import PowerSchoolClient
from writeback.powerschool.errors import AuthError, PermissionDenied, PowerSchoolError, ValidationError

from ..badinput.conftest import MAPPING

SECRET = "s3cr3t-Very-Long-Client-Secret-4242"
WRONG = "wr0ng-Client-Secret-777"
PII = {"first": "Zelda-Quintessa", "last": "Pii-Testperson", "email": "zelda.quintessa@pii.example.org",
       "phone": "415-555-0199", "bad_email": "zelda.quintessa@@pii.example"}


@pytest.fixture(scope="module")
def ps() -> Iterator[tuple[str, dict]]:
    district, _subs, _truth = build_all(10, 3)
    xml = build_plugin_xml(load_mapping(MAPPING))
    xml = re.sub(r'\s*<field table="U_STUDENTS_EXTENSION" field="PREF_FIRST_NAME"[^>]*/>', "", xml)  # 403
    handle = start_in_thread(district, client_id="cid", client_secret=SECRET, plugin_xml=xml)
    try:
        yield handle.url, district
    finally:
        handle.stop()


def clean(exc: BaseException, client: PowerSchoolClient, *values: str) -> None:
    texts = [str(exc), repr(exc), *map(str, exc.args), repr(client)]
    secrets = [SECRET, WRONG, *([client._token] if client._token else []), *values]
    for text in texts:
        for secret in secrets:
            assert secret not in text, f"{type(exc).__name__} text carries {secret!r}: {text}"


def test_wrong_secret_is_an_auth_error_without_the_secret(ps) -> None:
    url, _ = ps
    client = PowerSchoolClient(url, "cid", WRONG, max_retries=0)
    with pytest.raises(AuthError) as info:
        client.metadata()
    clean(info.value, client)
    assert info.value.status == 401


def test_missing_grants_name_the_fields_not_the_values(ps) -> None:
    url, district = ps
    client = PowerSchoolClient(url, "cid", SECRET, max_retries=0)
    client.metadata()  # a token is held now: it must not leak either
    assert client._token
    with pytest.raises(PermissionDenied) as info:
        client.insert_row("u_students_extension", {"studentsdcid": district["students"][0]["dcid"],
                                                   "pref_first_name": PII["first"]})
    clean(info.value, client, PII["first"])
    assert ("u_students_extension", "pref_first_name") in info.value.missing


def test_a_refused_contact_write_does_not_repeat_the_submitted_names(ps) -> None:
    url, _ = ps
    client = PowerSchoolClient(url, "cid", SECRET, max_retries=0)
    with pytest.raises(ValidationError) as info:
        client.create_contact({"firstName": PII["first"], "lastName": "", "gender": "X"})
    clean(info.value, client, PII["first"])


def test_a_refused_phone_does_not_repeat_the_number(ps) -> None:
    url, district = ps
    client = PowerSchoolClient(url, "cid", SECRET, max_retries=0)
    with pytest.raises(PowerSchoolError) as info:
        client.add_child(district["persons"][0]["id"], "phones", {"number": PII["phone"], "type": "Bogus"})
    clean(info.value, client, PII["phone"])


def test_a_refused_email_does_not_repeat_the_address(ps) -> None:
    url, district = ps
    client = PowerSchoolClient(url, "cid", SECRET, max_retries=0)
    with pytest.raises(ValidationError) as info:
        client.add_child(district["persons"][0]["id"], "emails",
                         {"address": PII["bad_email"], "type": "Personal", "primary": False})
    clean(info.value, client, PII["bad_email"])
