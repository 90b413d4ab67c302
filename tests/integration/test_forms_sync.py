"""The whole DAG over a district that runs four forms with different layouts (the registration template, a
returning-student update and a kindergarten form with named sections, an emergency-contact update at
places 3-5), plus a form nobody mapped. Real Airflow (`dags test`), both sandboxes as processes, the scripted
reviewer; then PowerSchool's state and every student's contact order are read over raw HTTP and compared
with what the forms, the generator's ground truth and the mappings' documented rules say — not with our
plan, ledger or audit."""

from __future__ import annotations

import datetime as dt
import json
from collections import Counter
from pathlib import Path

import pytest

from sandbox import processes
from sandbox.generate import write_files
from sandbox.generator import ALL_FORMS
from sandbox.reviewer import ReviewerThread
from writeback.domain.normalize import fold
from writeback.store import Store

from .test_full_sync import PowerSchoolReader

pytestmark = pytest.mark.integration

STUDENTS, SEED = 120, 13
UNMAPPED = {"id": "SUB-BUS-0001", "form_id": "transportation-2026", "student_number": "", "submitted_at":
            "2026-07-31T09:00:00Z", "updated_at": "2026-07-31T09:00:00Z", "fields": {"bus_stop": "Oak & 5th"}}


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    work: Path = tmp_path_factory.mktemp("forms")
    write_files(work / "district", STUDENTS, SEED, forms=ALL_FORMS)
    district, submissions, truth = (json.loads((work / "district" / f"{name}.json").read_text())
                                    for name in ("district", "submissions", "truth"))
    UNMAPPED["student_number"] = district["students"][0]["student_number"]
    (work / "district" / "submissions.json").write_text(json.dumps([*submissions, UNMAPPED]))
    ps = processes.start_powerschool(work / "district" / "district.json", work / "logs", db_path=work / "ps.db")
    se = processes.start_schoolengage(work / "district" / "submissions.json", work / "logs")
    store_url = f"sqlite:///{work / 'store.db'}"
    env = processes.airflow_env(work, ps.url, se.url, store_url)
    processes.prepare_airflow(env, work / "logs" / "airflow-setup.log")
    store = Store(store_url, migrate=True)
    reader = PowerSchoolReader(ps.url)
    before = {entity: reader.query(entity) for entity in ("students", "links", "contacts")}
    try:
        yield {"work": work, "env": env, "store": store, "district": district, "submissions": submissions,
               "truth": truth, "reader": reader, "before": before}
    finally:
        store.dispose()
        ps.stop()
        se.stop()


@pytest.fixture(scope="module")
def run(world):
    reviewer = ReviewerThread(world["store"], "demo", world["truth"], interval=0.3)
    reviewer.start()
    logical = dt.datetime.now(dt.UTC).replace(microsecond=0).isoformat()
    try:
        processes.airflow(world["env"], "dags", "test", "writeback_demo", logical,
                          log_path=world["work"] / "logs" / "dag.log")
    finally:
        reviewer.stop()
    assert not reviewer.errors, reviewer.errors
    [only] = world["store"].list_runs("demo")
    after = {entity: world["reader"].query(entity) for entity in ("students", "links", "contacts", "addresses")}
    quarantined = {q.submission_id for q in world["store"].quarantine(only.id)}
    return {"run_id": only.id, "after": after, "quarantined": quarantined}


def by_form(world, form: str, run=None) -> list[tuple[dict, dict]]:
    truth = world["truth"]["submissions"]
    return [(s, truth[s["id"]]) for s in world["submissions"] if s["form_id"] == form and truth[s["id"]]["valid"]
            and (run is None or s["id"] not in run["quarantined"])]


def students(rows: list[dict]) -> dict[str, dict]:
    return {r["students.student_number"]: r for r in rows}


def active_order(links: list[dict], dcid: int, today: str) -> list[int]:
    """The student's active links, in PowerSchool's priority order (one row per detail: the latest counts)."""
    latest: dict[str, dict] = {}
    for r in links:
        if int(r["studentcontactassoc.studentdcid"]) != dcid:
            continue
        key = r["studentcontactassoc.studentcontactassocid"]
        if key not in latest or r["studentcontactdetail.startdate"] > latest[key]["studentcontactdetail.startdate"]:
            latest[key] = r
    active = [r for r in latest.values() if not (r["studentcontactdetail.enddate"]
                                                  and r["studentcontactdetail.enddate"] < today)]
    return [int(r["studentcontactassoc.personid"])
            for r in sorted(active, key=lambda r: int(r["studentcontactassoc.contactpriorityorder"]))]


def relationship_of(links: list[dict], dcid: int, person: int) -> str:
    rows = [r for r in links if int(r["studentcontactassoc.studentdcid"]) == dcid
            and int(r["studentcontactassoc.personid"]) == person]
    return max(rows, key=lambda r: r["studentcontactdetail.startdate"])["studentcontactdetail.relationshiptype"]


def test_the_run_completes_and_every_form_was_read_by_its_own_mapping(world, run):
    store = world["store"]
    assert store.get_run(run["run_id"]).status == "complete"
    ledger = store.ledger(run["run_id"])
    assert ledger and {r.status for r in ledger.values()} == {"done"}
    records = {r.submission_id: r.record for r in store.submissions(run["run_id"], status="valid")}
    forms = Counter(world["truth"]["submissions"][sid].get("form", {}).get("form", "registration-2026")
                    for sid in records)
    assert set(forms) == set(ALL_FORMS), forms
    for sid, record in records.items():
        sub = next(s for s in world["submissions"] if s["id"] == sid)
        assert record["mapping"] == sub["form_id"]  # each demo form's mapping is named after it


def test_a_form_nobody_mapped_is_quarantined_with_that_reason(world, run):
    problems = [q for q in world["store"].quarantine(run["run_id"]) if q.submission_id == UNMAPPED["id"]]
    assert [(q.field, q.check) for q in problems] == [("form_id", "form")]
    assert "'transportation-2026' has no mapping in district demo" in problems[0].reason


def expected_places(sub: dict, t: dict) -> dict[str, int]:
    """Each form contact's place from the mappings' documented rules: a section's slot is its position; on the
    kindergarten form only the father filled puts him first, on the returning form only guardian 2."""
    slots = {n: int(n) for n, c in t["contacts"].items() if not c["remove"]}
    first_alone = {"kindergarten-2026": ("2", "1"), "returning-2026": ("2", "1")}.get(sub["form_id"])
    if first_alone and first_alone[0] in slots and first_alone[1] not in slots:
        slots[first_alone[0]] = 1
    return slots


def test_contact_orders_follow_each_forms_sections_and_rules(world, run):
    today = dt.date.today().isoformat()
    before, after = world["before"], run["after"]
    persons_after = {int(p["person.id"]): p for p in after["contacts"]}
    checked = Counter()
    for form in ALL_FORMS:
        for sub, t in by_form(world, form, run):
            dcid = t["student_dcid"]
            final = active_order(after["links"], dcid, today)
            places = expected_places(sub, t)
            on_form: dict[int, int] = {}  # person -> place
            for slot, place in places.items():
                c = t["contacts"][slot]
                if c["person_id"] is not None:
                    on_form[c["person_id"]] = place
                else:  # a new contact: the person created under the truth's name, linked to this student
                    new = world["truth"]["new_contacts"][c["new_key"]]
                    found = [pid for pid in final if fold(persons_after[pid]["person.firstname"]) == fold(
                        new["first_name"]) and fold(persons_after[pid]["person.lastname"]) == fold(new["last_name"])]
                    assert len(found) == 1, (sub["id"], new, final)
                    on_form[found[0]] = place
            removed = {c["person_id"] for c in t["contacts"].values() if c["remove"]}
            untouched = [p for p in active_order(before["links"], dcid, today) if p not in on_form
                         and p not in removed]
            form_order = [p for p, _ in sorted(on_form.items(), key=lambda kv: kv[1])]
            if untouched and min(on_form.values(), default=99) <= len(untouched):
                continue  # links the form does not name interleave with it: the unit tests cover that rule
            # a removed contact ends today (still active until tomorrow) and is ordered after every other one
            kept = [p for p in final if p not in removed]
            assert final[:len(kept)] == kept, (form, sub["id"], final, removed)
            assert kept == untouched + form_order, (form, sub["id"], final, untouched, form_order)
            checked[form] += 1
    assert all(checked[f] for f in ALL_FORMS), checked
    # the kindergarten rule ran: a father alone on the form is the first contact
    fathers_alone = [(s, t) for s, t in by_form(world, "kindergarten-2026", run)
                     if "2" in t["contacts"] and "1" not in t["contacts"]]
    assert fathers_alone
    for _sub, t in fathers_alone:
        assert active_order(after["links"], t["student_dcid"], today)[0] == t["contacts"]["2"]["person_id"]


def test_write_policies_hold_what_they_say(world, run):
    before, after = students(world["before"]["students"]), students(run["after"]["students"])
    checked = Counter()
    for sub, t in by_form(world, "returning-2026", run):
        number, f, extra = sub["student_number"], sub["fields"], t.get("form") or {}
        # never: the legal names stay as PowerSchool has them, whatever the form says
        for field, column in (("legal_first", "first_name"), ("legal_middle", "middle_name"),
                              ("legal_last", "last_name")):
            assert after[number][f"students.{column}"] == before[number][f"students.{column}"]
            checked["never"] += f[field] != before[number][f"students.{column}"]
        # if_empty: a mailing address fills a blank, never replaces one
        if extra.get("mailing") == "differs":
            assert after[number]["students.mailing_street"] == before[number]["students.mailing_street"] != f[
                "mail_street"]
            checked["if_empty kept"] += 1
        elif extra.get("mailing") == "fills_blank":
            assert before[number]["students.mailing_street"] == ""
            assert after[number]["students.mailing_street"] == f["mail_street"]
            checked["if_empty filled"] += 1
        # always: the preferred first name is written
        assert after[number]["u_students_extension.pref_first_name"] == f["preferred_first"]
    assert checked["never"] and checked["if_empty kept"] and checked["if_empty filled"], checked


def test_new_emergency_contacts_get_the_sections_default_relationship(world, run):
    links = run["after"]["links"]
    persons = {int(p["person.id"]): p for p in run["after"]["contacts"]}
    found = 0
    for _sub, t in by_form(world, "emergency-update-2026", run):
        for c in t["contacts"].values():
            if c["new_key"] is None:
                continue
            new = world["truth"]["new_contacts"][c["new_key"]]
            linked = [int(r["studentcontactassoc.personid"]) for r in links
                      if int(r["studentcontactassoc.studentdcid"]) == t["student_dcid"]]
            [pid] = {p for p in linked if fold(persons[p]["person.lastname"]) == fold(new["last_name"])
                     and fold(persons[p]["person.firstname"]) == fold(new["first_name"])}
            assert relationship_of(links, t["student_dcid"], pid) == "Other"
            found += 1
    assert found


def test_a_same_address_checkbox_gives_the_second_guardian_the_first_ones_address(world, run):
    homes: dict[int, list[dict]] = {}
    for a in run["after"]["addresses"]:
        if a["personaddressassoc.addresstype"] == "Home" and not a["personaddressassoc.enddate"]:
            homes.setdefault(int(a["personaddressassoc.personid"]), []).append(a)
    checked = 0
    for form, first, second in (("returning-2026", "g1_", "2"), ("kindergarten-2026", "mother_", "2")):
        for sub, t in by_form(world, form, run):
            extra = t.get("form") or {}
            person = (t["contacts"].get(second) or {}).get("person_id")
            if not extra.get("same_address") or person is None or t["contacts"][second]["remove"]:
                continue
            streets = {fold(f"{a['personaddress.street']} {a['personaddress.unit']}".strip())  # a unit apart
                       for a in homes.get(person, [])} | {fold(a["personaddress.street"]) for a in homes.get(person, [])}
            assert fold(sub["fields"][first + "street"]) in streets, (sub["id"], streets)
            checked += 1
    assert checked
