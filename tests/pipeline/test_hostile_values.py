"""Values that look fine and are not, through a whole sync over loopback (SchoolEngage and PowerSchool
sandboxes, real store, every stage): an impossible phone number, a last name made of invisible
characters, and names typed in decomposed Unicode with no-break spaces. What PowerSchool holds afterwards
is read back with raw HTTP: the real phone is still there, no invisible name was written, and PowerSchool's
NFC spelling was neither offered for review nor rewritten; a new contact is written in NFC."""

from __future__ import annotations

import unicodedata

import pytest

from sandbox.generate import build_all

from .sync import Sync

NFD = lambda s: unicodedata.normalize("NFD", s)  # noqa: E731 - the way a Mac keyboard or a PDF hands it over
INVISIBLE_LAST = "\u200b\u00a0\u2060"  # zero-width space, no-break space, word joiner
STUDENT_FIRST = "José María"
PREF_FIRST = "Zoë"
NEW_CONTACT_FIRST = "Renée Claire"
REAL_HOME = "(650) 555-0142"


def _plain(truth, sub) -> bool:
    """A valid form the family sent back unchanged: whatever changes in PowerSchool is this test's doing."""
    return truth["submissions"][sub["id"]]["valid"] and truth["submissions"][sub["id"]]["scenario"] == "unchanged"


def _free_slot(fields) -> int | None:
    return next((n for n in range(1, 5) if not fields.get(f"contact{n}_first_name")
                 and not fields.get(f"contact{n}_last_name")), None)


@pytest.fixture(scope="module")
def hostile(tmp_path_factory):
    district, submissions, truth = build_all(40, 5)
    persons = {p["id"]: p for p in district["persons"]}
    homes = {ph["person_id"] for ph in district["phones"] if ph["type"] == "Home"}
    students = {s["student_number"]: s for s in district["students"]}
    linked = {}
    for lk in district["links"]:
        linked.setdefault(lk["student_dcid"], []).append(lk["person_id"])
    used: set[str] = set()
    families: set[str] = set()

    def pick(test) -> dict:
        for sub in submissions:
            student = students.get(sub["student_number"])
            if (sub["id"] in used or student is None or student["family_ident"] in families
                    or not _plain(truth, sub) or not (found := test(sub, student))):
                continue
            used.add(sub["id"])
            families.add(student["family_ident"])
            return found
        raise AssertionError("the generated district has no submission for this case")

    def phone_case(sub, student):  # a contact the form names exactly
        f = sub["fields"]
        for n in range(1, 5):
            for pid in linked.get(student["dcid"], []):
                p = persons[pid]
                if (f.get(f"contact{n}_first_name"), f.get(f"contact{n}_last_name")) == (p["first_name"],
                                                                                         p["last_name"]):
                    return {"sub": sub, "slot": n, "person": pid}
        return None

    phone = pick(phone_case)
    if phone["person"] not in homes:  # the contact's real home phone
        district["phones"].append({"id": 99001, "person_id": phone["person"], "number": REAL_HOME, "extension": "",
                                   "type": "Home", "preferred": False, "sms": False, "sequence": 9})
    phone["homes"] = sorted(ph["number"] for ph in district["phones"]
                            if ph["person_id"] == phone["person"] and ph["type"] == "Home")
    phone["sub"]["fields"][f"contact{phone['slot']}_home_phone"] = "000-000-0000"

    invisible = pick(lambda sub, student: (n := _free_slot(sub["fields"])) and {"sub": sub, "slot": n})
    invisible["sub"]["fields"].update({
        f"contact{invisible['slot']}_first_name": "Maria", f"contact{invisible['slot']}_last_name": INVISIBLE_LAST,
        f"contact{invisible['slot']}_relationship": "Aunt", f"contact{invisible['slot']}_cell_phone": "(415) 555-0177"})

    spelled = pick(lambda sub, student: (n := _free_slot(sub["fields"]))
                   and {"sub": sub, "slot": n, "student": student})
    student = spelled["student"]
    student["first_name"] = STUDENT_FIRST  # PowerSchool's spelling, NFC
    ext = next(e for e in district["extensions"]["u_students_extension"] if e["studentsdcid"] == student["dcid"])
    ext["pref_first_name"] = PREF_FIRST
    n = spelled["slot"]
    spelled["sub"]["fields"].update({
        "student_legal_first_name": NFD("José") + "\u00a0" + NFD("María"),
        "student_preferred_first_name": " " + NFD(PREF_FIRST) + "\u2009",
        f"contact{n}_first_name": NFD("Renée") + "\u00a0\u00a0" + "Claire", f"contact{n}_last_name": "Dubois",
        f"contact{n}_relationship": "Aunt", f"contact{n}_cell_phone": "(415) 555-0188",
        f"contact{n}_email": "renee.dubois@example.net"})

    sync = Sync(tmp_path_factory.mktemp("hostile"), district, submissions, truth)
    try:
        ctx = sync.run("demo:hostile-values")
        yield {"sync": sync, "ctx": ctx, "phone": phone, "invisible": invisible, "spelled": spelled}
    finally:
        sync.close()


def test_an_impossible_phone_number_is_quarantined_and_the_real_one_stays(hostile):
    sync, phone = hostile["sync"], hostile["phone"]
    rows = sync.query("phones")
    homes = sorted(r["phonenumber.phonenumber"] for r in rows if r["personphonenumberassoc.personid"]
                   == str(phone["person"]) and r["personphonenumberassoc.phonetype"] == "Home")
    assert homes == phone["homes"]
    assert not any("".join(filter(str.isdigit, r["phonenumber.phonenumber"])) == "0000000000" for r in rows)
    problems = {(q.submission_id, q.field): q.reason for q in sync.store.quarantine(hostile["ctx"].run_id)}
    assert "not a valid phone number" in problems.get((phone["sub"]["id"], f"contact{phone['slot']}_home_phone"), "")


def test_an_invisible_last_name_is_a_missing_one(hostile):
    sync, invisible = hostile["sync"], hostile["invisible"]
    for person in sync.query("contacts"):
        last = "".join(ch for ch in person["person.lastname"]
                       if unicodedata.category(ch) not in {"Cf", "Cc", "Zs", "Zl", "Zp"})
        assert last, f"person {person['person.id']} has an invisible last name {person['person.lastname']!r}"
    assert not any(p["person.firstname"] == "Maria" for p in sync.query("contacts"))
    problems = {(q.submission_id, q.field): q.reason for q in sync.store.quarantine(hostile["ctx"].run_id)}
    assert "no last name" in problems.get((invisible["sub"]["id"], f"contact{invisible['slot']}_last_name"), "")


def test_a_decomposed_spelling_with_odd_spaces_is_powerschools_own_and_stays(hostile):
    sync, spelled, ctx = hostile["sync"], hostile["spelled"], hostile["ctx"]
    dcid = str(spelled["student"]["dcid"])
    row = next(r for r in sync.query("students") if r["students.dcid"] == dcid)
    assert row["students.first_name"] == STUDENT_FIRST  # byte for byte: PowerSchool's NFC spelling
    assert row["u_students_extension.pref_first_name"] == PREF_FIRST
    # equal after normalisation means "stays": nothing about these names was even offered for review
    offered = [i.target for i in sync.store.items(ctx.run_id) if i.submission_id == spelled["sub"]["id"]
               and i.kind == "field_change"]
    assert "name.first_name" not in offered
    assert spelled["sub"]["id"] not in {q.submission_id for q in sync.store.quarantine(ctx.run_id)}


def test_a_new_contact_is_written_in_nfc_with_single_spaces(hostile):
    sync = hostile["sync"]
    created = [p for p in sync.query("contacts") if p["person.lastname"] == "Dubois"]
    assert [p["person.firstname"] for p in created] == [NEW_CONTACT_FIRST]
    assert unicodedata.is_normalized("NFC", created[0]["person.firstname"])
