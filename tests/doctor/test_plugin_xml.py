"""`writeback plugin-xml`: the plugin.xml grants exactly what the mapping reads and writes, and a real
sandbox with that plugin serves a full writeback while any one grant less makes its call fail (403)."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from sandbox.powerschool import contacts as sandbox_contacts
from sandbox.powerschool.plugin import parse_plugin
from sandbox.powerschool.powerquery import QUERIES
from tests.doctor.conftest import (
    MAPPING_PATH,
    client_for,
    install_plugin,
    sandbox,
    with_access,
    without,
)
from writeback.cli import main
from writeback.domain.mapping import load_mapping
from writeback.pipeline.snapshot import read_snapshot
from writeback.powerschool import PermissionDenied
from writeback.powerschool.grants import (
    ALL_QUERIES,
    CODESET_QUERY,
    CONTACT_WRITE_TABLES,
    FULL_ACCESS,
    SNAPSHOT_QUERIES,
    VIEW_ONLY,
    Grant,
    required_grants,
    v1_access_needed,
)

CONTACT_TABLES = {t for tables in CONTACT_WRITE_TABLES.values() for t in tables}
PORTAL_TABLES = {"pcas_account", "pcas_emailcontact", "guardianpersonassoc"}


def _local(tag: str) -> str:
    return tag.rsplit("}", 1)[-1]


def _grants_in(xml: str) -> list[Grant]:
    root = ET.fromstring(xml)
    (request,) = [e for e in root if _local(e.tag) == "access_request"]
    return [Grant(f.get("table").lower(), f.get("field").lower(), f.get("access")) for f in request
            if _local(f.tag) == "field"]


def test_our_query_columns_and_write_tables_are_the_servers():
    assert ALL_QUERIES == {name: tuple(q.columns) for name, q in QUERIES.items()}
    assert set(ALL_QUERIES) == set(SNAPSHOT_QUERIES) | {CODESET_QUERY}
    assert CONTACT_WRITE_TABLES == sandbox_contacts.WRITE_TABLES


def test_cli_writes_a_plugin_with_exactly_the_required_grants(tmp_path: Path, mapping, capsys):
    out = tmp_path / "plugin.xml"
    assert main(["plugin-xml", str(MAPPING_PATH), "--name", "Writeback Demo USD", "--publisher", "Demo USD IT",
                 "--email", "it@demo.example.org", "--out", str(out)]) == 0
    xml = out.read_text(encoding="utf-8")
    assert "82 field grants" in capsys.readouterr().out  # 6 of them read the code sets

    plugin = parse_plugin(xml)  # the sandbox's own parser: it would refuse an invalid plugin
    assert (plugin.name, plugin.version, plugin.publisher, plugin.email) == (
        "Writeback Demo USD", "1.0.0", "Demo USD IT", "it@demo.example.org")
    assert plugin.v1_level == "FULL"
    root = ET.fromstring(xml)
    assert _local(root.tag) == "plugin"
    oauth = [e for e in root if _local(e.tag) == "oauth"]
    assert len(oauth) == 1 and oauth[0].get("accessLevelV1Api") == "FULL"

    grants = _grants_in(xml)
    expected = required_grants(mapping)
    assert grants == expected  # one line per grant, same order
    assert grants == sorted(grants) and len({(g.table, g.field) for g in grants}) == len(grants)
    # reads: every column of every snapshot query and of the code sets; writes: targets and contact tables
    every_query_column = {tuple(c.split(".", 1)) for cols in ALL_QUERIES.values() for c in cols}
    assert {(g.table, g.field) for g in grants} == every_query_column
    access = {(g.table, g.field): g.access for g in grants}
    assert access[("students", "first_name")] == FULL_ACCESS  # name.first_name is mapped
    assert access[("students", "home_phone")] == VIEW_ONLY  # phones.main is not
    assert access[("students", "dcid")] == VIEW_ONLY
    assert access[("u_students_extension", "photo_release")] == FULL_ACCESS
    assert all(a == FULL_ACCESS for (t, _), a in access.items() if t in CONTACT_TABLES)
    assert all(a == VIEW_ONLY for (t, _), a in access.items() if t in PORTAL_TABLES)


def test_a_mapping_without_contacts_gets_no_contact_tables(students_only_path: Path, capsys):
    mapping = load_mapping(students_only_path)
    assert main(["plugin-xml", str(students_only_path)]) == 0
    xml = capsys.readouterr().out
    grants = _grants_in(xml)
    assert grants == required_grants(mapping)
    assert {g.table for g in grants} == {"students", "u_students_extension"}
    writes = {(g.table, g.field) for g in grants if g.access == FULL_ACCESS}
    assert writes == {("students", "first_name"), ("students", "city"), ("u_students_extension", "pref_first_name")}
    assert parse_plugin(xml).v1_level == "FULL"


def test_contacts_only_mapping_needs_v1_read_only(mapping):
    contacts_only = mapping.model_copy(update={"student": []})
    assert v1_access_needed(contacts_only) == "READ" and v1_access_needed(mapping) == "FULL"
    tables = {g.table for g in required_grants(contacts_only)}
    assert CONTACT_TABLES | PORTAL_TABLES | {"students"} <= tables
    assert all(g.access == VIEW_ONLY for g in required_grants(contacts_only) if g.table == "students")


def test_the_plugin_name_is_at_most_40_characters(tmp_path: Path, capsys):
    ok = tmp_path / "ok.xml"
    assert main(["plugin-xml", str(MAPPING_PATH), "--name", "N" * 40, "--out", str(ok)]) == 0
    assert parse_plugin(ok.read_text()).name == "N" * 40
    capsys.readouterr()
    too_long = tmp_path / "long.xml"
    assert main(["plugin-xml", str(MAPPING_PATH), "--name", "N" * 41, "--out", str(too_long)]) == 2
    err = capsys.readouterr().err
    assert "at most 40 characters" in err and "has 41" in err
    assert not too_long.exists()


def _phone_body(phone: dict) -> dict:
    return {k: phone[k] for k in ("phoneNumber", "extension", "phoneType", "preferred", "sms", "sequence")}


def _contact_writes(client, district) -> dict[str, callable]:
    """One real write per contact table, each one that succeeds with the generated plugin."""
    pid = district["persons"][0]["id"]
    demo = client.get_demographics(pid)
    email = client.list_children(pid, "emails")[0]
    phone = client.list_children(pid, "phones")[0]
    address = client.list_children(pid, "addresses")[0]
    link = client.list_links(pid)[0]
    lid = link["studentContactId"]
    detail = client.list_details(pid, lid)[0]
    detail_body = {k: v for k, v in detail.items() if k not in ("studentContactDetailId", "active")}
    address_body = {k: v for k, v in address.items() if k not in ("contactAddressId", "addressId")}
    person = lambda: client.put_demographics(pid, {"firstName": demo["firstName"], "lastName": demo["lastName"]})  # noqa: E731
    emails = lambda: client.update_child(pid, "emails", email["emailId"], {  # noqa: E731
        "address": email["address"], "type": email["type"], "primary": email["primary"]})
    phones = lambda: client.update_child(pid, "phones", phone["phoneNumberId"], _phone_body(phone))  # noqa: E731
    addresses = lambda: client.update_child(pid, "addresses", address["addressId"], address_body)  # noqa: E731
    links = lambda: client.update_link(pid, lid, {"sequence": link["sequence"]})  # noqa: E731
    details = lambda: client.update_detail(pid, lid, detail["studentContactDetailId"], detail_body)  # noqa: E731
    return {"person": person, "emailaddress": emails, "personemailaddressassoc": emails, "phonenumber": phones,
            "personphonenumberassoc": phones, "personaddress": addresses, "personaddressassoc": addresses,
            "studentcontactassoc": links, "studentcontactdetail": details}


@pytest.mark.integration
def test_generated_plugin_serves_a_full_writeback(district, mapping, plugin_xml):
    with sandbox(district, plugin_xml) as ps:
        client = client_for(ps.url)
        extension_targets = [s.target for s in mapping.student if s.target.startswith("extension.")]
        snapshot = read_snapshot(client, extension_targets)  # all 7 snapshot PowerQueries
        assert len(snapshot.students) == len(district["students"]) and snapshot.persons and snapshot.links

        dcid = district["students"][0]["dcid"]
        [result] = client.update_students([{
            "client_uid": "t1", "id": dcid, "name": {"first_name": "Renamed"},
            "addresses": {"physical": {"street": "1 Grant St", "city": "Springfield", "state_province": "CA",
                                       "postal_code": "94110"}},
            "_extension_data": {"_table_extension": {"name": "u_students_extension", "_field": [
                {"name": "pref_first_name", "value": "Ren"}]}}}])
        assert result.ok, result
        after = client.get_student(dcid, expansions="addresses", extensions="u_students_extension")
        assert after["name"]["first_name"] == "Renamed"

        pid = district["persons"][0]["id"]
        phone = client.list_children(pid, "phones")[0]
        client.update_child(pid, "phones", phone["phoneNumberId"], {**_phone_body(phone), "phoneNumber": "415-555-0199"})
        assert any(p["phoneNumber"] == "415-555-0199" for p in client.list_children(pid, "phones"))

        for write in dict.fromkeys(_contact_writes(client, district).values()):
            write()
        # what the applier and a rollback do beyond updates: create, add children, link, unlink, delete
        new = client.create_contact({"firstName": "Grant", "lastName": "Tester"})
        client.add_child(new, "emails", {"address": "grant.tester@example.org", "type": "Personal", "primary": True})
        client.add_child(new, "phones", {"phoneNumber": "415-555-0142", "extension": "", "phoneType": "Mobile",
                                         "preferred": True, "sms": False, "sequence": 1})
        link = client.add_link(new, {"dcid": dcid, "studentDetails": [{"relationship": "Other",
                                                                       "startDate": "2020-01-01"}]})
        client.delete_link(new, link)
        client.delete_contact(new)


@pytest.mark.integration
def test_any_one_grant_less_fails_its_call_with_the_documented_403(district, mapping, plugin_xml):
    grants = required_grants(mapping)
    queries_of: dict[tuple[str, str], list[str]] = {}
    for name, cols in ALL_QUERIES.items():
        for c in cols:
            queries_of.setdefault(tuple(c.split(".", 1)), []).append(name)
    with sandbox(district, plugin_xml) as ps:
        client = client_for(ps.url)
        writes = _contact_writes(client, district)
        for write in dict.fromkeys(writes.values()):
            write()  # every one succeeds with the full plugin
        checked_writes = 0
        for g in grants:
            install_plugin(ps.url, without(plugin_xml, g.table, g.field))
            assert queries_of[(g.table, g.field)], g
            for query in queries_of[(g.table, g.field)]:
                with pytest.raises(PermissionDenied) as exc:
                    next(iter(client.iter_powerquery(query, pagesize=1)))
                assert exc.value.status == 403 and exc.value.missing == [(g.table, g.field)], (g, query)
            if g.table in writes:
                for plugin in (without(plugin_xml, g.table, g.field),
                               with_access(plugin_xml, g.table, g.field, VIEW_ONLY)):
                    install_plugin(ps.url, plugin)
                    with pytest.raises(PermissionDenied) as exc:
                        writes[g.table]()
                    assert exc.value.status == 403 and exc.value.missing == [(g.table, g.field)], g
                checked_writes += 1
        assert checked_writes == sum(1 for g in grants if g.table in CONTACT_TABLES)
        # the v1 write needs FULL: READ makes it fail with the documented 401
        install_plugin(ps.url, plugin_xml.replace('accessLevelV1Api="FULL"', 'accessLevelV1Api="READ"'))
        from writeback.powerschool import AuthError

        with pytest.raises(AuthError, match="accessLevelV1Api FULL"):
            client.update_students([{"client_uid": "t", "id": district["students"][0]["dcid"],
                                     "name": {"first_name": "X"}}])


def test_a_districts_plugin_grants_the_union_of_every_forms_targets(tmp_path: Path, monkeypatch, capsys):
    """One form writes a student field, another only contacts: the district's plugin needs both (FULL /ws/v1
    access for the first, the contact tables for the second), which neither mapping alone asks for."""
    include = tmp_path / "include"
    (include / "mappings").mkdir(parents=True)
    (include / "districts").mkdir()
    (include / "mappings" / "students.yaml").write_text(
        "version: 1\nname: students\nform_id: a\nstudent:\n"
        "  - {field: pref, target: extension.u_students_extension.pref_last_name}\n")
    (include / "mappings" / "contacts.yaml").write_text(
        "version: 1\nname: contacts\nform_id: b\ncontacts:\n  sections:\n"
        "    emergency1: {position: 3, first_name: e_first, last_name: e_last, phones: {Mobile: e_cell}}\n")
    (include / "districts" / "two.yaml").write_text(
        "name: two\npowerschool_conn_id: ps\nsubmissions_conn_id: se\nforms:\n  a: students.yaml\n"
        "  b: contacts.yaml\n")
    monkeypatch.setenv("WRITEBACK_INCLUDE", str(include))
    assert main(["plugin-xml", "--district", "two"]) == 0
    xml = capsys.readouterr().out
    grants = {(g.table, g.field): g.access for g in _grants_in(xml)}
    students, contacts = (load_mapping(include / "mappings" / f) for f in ("students.yaml", "contacts.yaml"))
    assert set(_grants_in(xml)) == set(required_grants([students, contacts]))
    assert grants[("u_students_extension", "pref_last_name")] == FULL_ACCESS
    assert grants[("person", "lastname")] == FULL_ACCESS and ("codeset", "code") in grants
    assert parse_plugin(xml).v1_level == "FULL"
    assert not {(g.table, g.field) for g in required_grants(students)} >= {("person", "lastname")}
    contacts_only = {(g.table, g.field): g.access for g in required_grants(contacts)}
    assert contacts_only[("u_students_extension", "pref_last_name")] == VIEW_ONLY  # read, not written there
    assert "mappings students, contacts" in xml
