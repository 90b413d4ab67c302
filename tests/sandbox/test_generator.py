"""Synthetic district generator: determinism, referential integrity, realism, scenarios and truth."""

from __future__ import annotations

import json
import re
import subprocess
import sys
import time
from collections import Counter, defaultdict
from datetime import date
from pathlib import Path

import pytest

from sandbox.generate import build_all, build_district, dumps, main
from sandbox.generator import FORM_FIELDS, SCENARIOS
from sandbox.generator.district import ascii_fold, phone_digits
from sandbox.generator.tables import NICKNAMES

REPO = Path(__file__).resolve().parents[2]
TODAY = "2026-08-01"


@pytest.fixture(scope="module")
def data():
    return build_all(400, 7)


def _latest(details):
    return max(details, key=lambda d: (d["start_date"], d["id"]))


def _index(district):
    details = defaultdict(list)
    for det in district["details"]:
        details[det["link_id"]].append(det)
    by_student = defaultdict(list)
    for link in district["links"]:
        by_student[link["student_dcid"]].append(link)
    for links in by_student.values():
        links.sort(key=lambda lk: lk["sequence"])
    return details, by_student


def _expired(dets):
    end = _latest(dets)["end_date"]
    return bool(end) and end < TODAY


def _osa(a: str, b: str) -> int:
    """Optimal string alignment distance (Levenshtein + adjacent transposition)."""
    d = [[0] * (len(b) + 1) for _ in range(len(a) + 1)]
    for i in range(len(a) + 1):
        d[i][0] = i
    for j in range(len(b) + 1):
        d[0][j] = j
    for i in range(1, len(a) + 1):
        for j in range(1, len(b) + 1):
            cost = a[i - 1] != b[j - 1]
            d[i][j] = min(d[i - 1][j] + 1, d[i][j - 1] + 1, d[i - 1][j - 1] + cost)
            if i > 1 and j > 1 and a[i - 1] == b[j - 2] and a[i - 2] == b[j - 1]:
                d[i][j] = min(d[i][j], d[i - 2][j - 2] + 1)
    return d[len(a)][len(b)]


# ---------------------------------------------------------------- determinism
def test_same_seed_gives_identical_output_and_other_seed_differs():
    a = build_all(150, 3)
    b = build_all(150, 3)
    assert [dumps(x) for x in a] == [dumps(x) for x in b]
    c = build_all(150, 4)
    assert dumps(a[0]) != dumps(c[0])
    assert dumps(a[1]) != dumps(c[1])
    # build_district is the district part of build_all
    assert dumps(build_district(150, 3)) == dumps(a[0])


def test_cli_writes_byte_identical_files(tmp_path):
    assert main(["--students", "60", "--seed", "11", "--out", str(tmp_path / "a")]) == 0
    proc = subprocess.run([sys.executable, "-m", "sandbox.generate", "--students", "60", "--seed", "11",
                           "--out", str(tmp_path / "b")], cwd=REPO, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    for name in ("district.json", "submissions.json", "truth.json"):
        ba, bb = (tmp_path / "a" / name).read_bytes(), (tmp_path / "b" / name).read_bytes()
        assert ba == bb, name
        json.loads(ba)
    district = json.loads((tmp_path / "a" / "district.json").read_text(encoding="utf-8"))
    assert district["district"] == {"name": "Sandbox Unified", "region": "US", "state": "CA", "seed": 11}
    assert len(district["students"]) == 60
    assert len(json.loads((tmp_path / "a" / "submissions.json").read_text(encoding="utf-8"))) == 30


def test_submissions_share_is_respected():
    _, subs, truth = build_all(200, 5, submissions_share=0.25)
    assert len(subs) == 50 and len(truth["submissions"]) == 50
    _, subs, _ = build_all(200, 5, submissions_share=0.0)
    assert subs == []
    _, subs, _ = build_all(200, 5, submissions_share=1.0)
    assert len(subs) == 200


# ---------------------------------------------------------------- district integrity
def test_ids_unique_and_references_resolve(data):
    district = data[0]
    for key in ("students", "persons", "emails", "phones", "addresses", "links", "details", "portal_accounts"):
        ids = [r["id"] for r in district[key]]
        assert len(ids) == len(set(ids)), key
    assert min(p["id"] for p in district["persons"]) == 5001
    assert min(lk["id"] for lk in district["links"]) == 9001
    assert len({s["student_number"] for s in district["students"]}) == len(district["students"])
    students = {s["dcid"] for s in district["students"]}
    persons = {p["id"] for p in district["persons"]}
    links = {lk["id"] for lk in district["links"]}
    for lk in district["links"]:
        assert lk["student_dcid"] in students and lk["person_id"] in persons
    for key in ("emails", "phones", "addresses", "portal_accounts"):
        assert all(r["person_id"] in persons for r in district[key]), key
    linked = {d["link_id"] for d in district["details"]}
    assert all(d["link_id"] in links for d in district["details"])
    assert linked == links, "every link has at least one detail"
    exts = district["extensions"]["u_students_extension"]
    assert all(e["studentsdcid"] in students for e in exts)
    assert len({e["studentsdcid"] for e in exts}) == len(exts)
    assert len(exts) >= 0.8 * len(students)
    assert {e["photo_release"] for e in exts} == {"0", "1"}
    assert sum(1 for e in exts if e["pref_first_name"]) < 0.2 * len(exts)
    # one person linked at most once per student
    pairs = [(lk["student_dcid"], lk["person_id"]) for lk in district["links"]]
    assert len(pairs) == len(set(pairs))


def test_sequences_are_1_to_n_with_expired_last(data):
    district = data[0]
    details, by_student = _index(district)
    assert set(by_student) == {s["dcid"] for s in district["students"]}, "every student has contacts"
    expired_seen = 0
    for dcid, links in by_student.items():
        assert [lk["sequence"] for lk in links] == list(range(1, len(links) + 1)), dcid
        assert 1 <= len(links) <= 4
        flags = [_expired(details[lk["id"]]) for lk in links]
        assert not flags[0], "first contact is active"
        assert flags == sorted(flags), f"expired links must come last for student {dcid}"
        expired_seen += sum(flags)
        for lk in links:  # a link's details never overlap in time
            dets = sorted(details[lk["id"]], key=lambda d: d["start_date"])
            for earlier, later in zip(dets, dets[1:], strict=False):
                assert earlier["end_date"] and earlier["end_date"] < later["start_date"]
    assert expired_seen > 0
    ends = [d["end_date"] for d in district["details"] if d["end_date"]]
    assert any(e.startswith("2025-") for e in ends)


def test_households_share_contacts_with_same_relationship(data):
    district = data[0]
    details, by_student = _index(district)
    households = defaultdict(list)
    for s in district["students"]:
        households[s["family_ident"]].append(s)
    multi = [kids for kids in households.values() if len(kids) >= 2]
    assert len(multi) >= 20
    for kids in multi:
        views = []
        for s in kids:
            views.append([(lk["person_id"], _latest(details[lk["id"]])["relationship"])
                          for lk in by_student[s["dcid"]]])
        assert all(v == views[0] for v in views), kids[0]["family_ident"]
        assert len({(s["street"], s["city"], s["zip"], s["last_name"]) for s in kids}) == 1
    # some persons are linked to students of different households (shared / "Used By")
    fam = {s["dcid"]: s["family_ident"] for s in district["students"]}
    fams_per_person = defaultdict(set)
    for lk in district["links"]:
        fams_per_person[lk["person_id"]].add(fam[lk["student_dcid"]])
    assert any(len(f) > 1 for f in fams_per_person.values())


def test_district_realism(data):
    district = data[0]
    lasts = [p["last_name"] for p in district["persons"]] + [s["last_name"] for s in district["students"]]
    assert any("-" in n for n in lasts), "hyphenated surnames"
    assert any(" " in n for n in lasts), "compound surnames"
    assert any("'" in n for n in lasts) or any(n.startswith(("de ", "De ", "del ")) for n in lasts)
    names = [p["first_name"] + p["last_name"] for p in district["persons"]]
    assert any(ascii_fold(n) != n for n in names), "accented names"
    # phone formats
    shapes = Counter(re.sub(r"\d", "9", ph["number"]) for ph in district["phones"])
    assert len(shapes) >= 5, shapes
    assert all(len(phone_digits(ph["number"])) == 10 for ph in district["phones"])
    assert any(ph["extension"] for ph in district["phones"] if ph["type"] == "Work")
    assert {ph["type"] for ph in district["phones"]} == {"Home", "Mobile", "Work"}
    # per person: phone sequences 1..n and one preferred
    per = defaultdict(list)
    for ph in district["phones"]:
        per[ph["person_id"]].append(ph)
    for phones in per.values():
        assert sorted(p["sequence"] for p in phones) == list(range(1, len(phones) + 1))
        assert sum(p["preferred"] for p in phones) == 1
    emails = [e["address"] for e in district["emails"]]
    assert any(e != e.lower() for e in emails) and any(e == e.lower() for e in emails)
    prim = Counter(e["person_id"] for e in district["emails"] if e["primary"])
    assert max(prim.values()) == 1
    # duplicate persons: same phone digits on two different persons with (folded) similar names
    owners = defaultdict(set)
    for ph in district["phones"]:
        owners[phone_digits(ph["number"])].add(ph["person_id"])
    persons = {p["id"]: p for p in district["persons"]}
    dup_pairs = [ids for ids in owners.values() if len(ids) == 2
                 and len({ascii_fold(persons[i]["last_name"]).lower() for i in ids}) == 1]
    assert dup_pairs, "some persons exist twice in PowerSchool"
    # portal accounts: unique emails belonging to their person, data access granted on that person's links
    accounts = district["portal_accounts"]
    assert 0 < len(accounts) < len(district["persons"]) / 3
    assert len({a["email"].lower() for a in accounts}) == len(accounts)
    assert len({a["username"] for a in accounts}) == len(accounts)
    by_person = defaultdict(set)
    for e in district["emails"]:
        by_person[e["person_id"]].add(e["address"].lower())
    account_people = {a["person_id"] for a in accounts}
    for a in accounts:
        assert a["email"] in by_person[a["person_id"]]
    for lk in district["links"]:
        assert lk["can_access_data"] == (lk["person_id"] in account_people and lk["can_access_data"])
    assert any(lk["can_access_data"] for lk in district["links"])
    # students: grade-consistent birthdays, dates are ISO
    for s in district["students"]:
        age = (date(2026, 9, 1) - date.fromisoformat(s["dob"])).days / 365.25
        assert 4.9 <= age - s["grade_level"] <= 6.1, s
    rels = {d["relationship"] for d in district["details"]}
    assert rels <= set(district["codesets"]["relationship"])
    assert {"Mother", "Father", "Grandparent"} <= rels


# ---------------------------------------------------------------- submissions and truth
def test_every_scenario_appears_and_mix_is_roughly_right(data):
    _, subs, truth = data
    mix = Counter(t["scenario"] for t in truth["submissions"].values())
    print("scenario mix (400 students):", dict(sorted(mix.items())))
    assert set(mix) == set(SCENARIOS)
    assert len(subs) == 200
    assert 0.2 <= mix["unchanged"] / 200 <= 0.4
    assert mix["malformed"] <= 0.06 * 200


def test_submission_shape(data):
    district, subs, truth = data
    ids = [s["id"] for s in subs]
    assert ids == sorted(ids) and len(set(ids)) == len(ids)
    assert set(ids) == set(truth["submissions"])
    assert [s["submitted_at"] for s in subs] == sorted(s["submitted_at"] for s in subs)
    numbers = {s["student_number"]: s["dcid"] for s in district["students"]}
    seen_students = set()
    for s in subs:
        assert set(s) == {"id", "form_id", "student_number", "submitted_at", "updated_at", "fields"}
        assert re.fullmatch(r"SUB-\d{6}", s["id"])
        assert s["updated_at"] >= s["submitted_at"]
        assert s["updated_at"] < "2026-08-01T00:00:01Z"
        assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", s["updated_at"])
        assert list(s["fields"]) == FORM_FIELDS
        assert all(isinstance(v, str) for v in s["fields"].values())
        assert s["student_number"] == s["fields"]["student_number"]
        t = truth["submissions"][s["id"]]
        assert t["student_dcid"] not in seen_students or t["student_dcid"] is None
        seen_students.add(t["student_dcid"])
        if t["valid"]:
            assert t["problems"] == []
            assert numbers[s["student_number"]] == t["student_dcid"]
        used = {str(n) for n in range(1, 5)
                if s["fields"][f"contact{n}_first_name"] or s["fields"][f"contact{n}_last_name"]}
        assert set(t["contacts"]) == used, s["id"]
        for slot in t["contacts"].values():
            assert (slot["person_id"] is None) != (slot["new_key"] is None)


def test_existing_slots_follow_powerschool_order(data):
    district, subs, truth = data
    details, by_student = _index(district)
    for s in subs:
        t = truth["submissions"][s["id"]]
        dcid = t["student_dcid"]
        if dcid is None:
            dcid = next(x["dcid"] for x in district["students"]
                        if x["first_name"] == s["fields"]["student_legal_first_name"]
                        and x["last_name"] == s["fields"]["student_legal_last_name"])
        active = [lk["person_id"] for lk in by_student[dcid] if not _expired(details[lk["id"]])]
        existing = [t["contacts"][k]["person_id"] for k in sorted(t["contacts"]) if t["contacts"][k]["person_id"]]
        assert existing == active[: len(existing)] and len(existing) == min(len(active), 4), s["id"]


def test_truth_matches_each_scenario(data):
    district, subs, truth = data
    persons = {p["id"]: p for p in district["persons"]}
    phones = defaultdict(list)
    for ph in district["phones"]:
        phones[ph["person_id"]].append(ph)
    students = {s["dcid"]: s for s in district["students"]}
    field_of = {"Mobile": "cell_phone", "Home": "home_phone", "Work": "work_phone"}
    by_household_key = defaultdict(list)
    for s in subs:
        f, t = s["fields"], truth["submissions"][s["id"]]
        sc = t["scenario"]
        slots = t["contacts"]
        removed = [n for n, sl in slots.items() if sl["remove"]]
        assert removed == [n for n in slots if f[f"contact{n}_remove"] == "Yes"]
        typos = [n for n, sl in slots.items() if sl["typo"]]
        changed = [n for n, sl in slots.items() if sl["phone_type_changed"]]
        new = [n for n, sl in slots.items() if sl["new_key"]]
        assert len(removed) == (sc == "removed_contact")
        assert len(typos) == (sc == "contact_typo")
        assert len(changed) == (sc == "phone_type_changed")
        assert len(new) == (sc in ("new_contact", "sibling_new_parent"))
        assert t["valid"] == (sc != "malformed")
        if sc == "removed_contact":
            assert removed[0] != "1"
        if sc == "contact_typo":
            n = typos[0]
            p = persons[slots[n]["person_id"]]
            # the typo may sit on the nickname the family wrote (Steven -> Steve -> Sreve)
            firsts = [p["first_name"], *NICKNAMES.get(p["first_name"], [])]
            dist = [_osa(ascii_fold(f[f"contact{n}_first_name"]).lower(), ascii_fold(x).lower()) for x in firsts]
            dist.append(_osa(ascii_fold(f[f"contact{n}_last_name"]).lower(), ascii_fold(p["last_name"]).lower()))
            assert 1 in dist, (s["id"], f[f"contact{n}_first_name"], f[f"contact{n}_last_name"], p)
        if sc == "phone_type_changed":
            n = changed[0]
            pid = slots[n]["person_id"]
            form = {k: phone_digits(f[f"contact{n}_{k}"].split(" x")[0].split(" ext")[0])
                    for k in ("cell_phone", "home_phone", "work_phone") if f[f"contact{n}_{k}"]}
            ps = {}
            for ph in sorted(phones[pid], key=lambda x: x["sequence"]):
                ps.setdefault(field_of[ph["type"]], phone_digits(ph["number"]))
            assert sorted(form.values()) == sorted(ps.values()) and form != ps, s["id"]
        if sc == "malformed":
            assert t["problems"], s["id"]
            for problem in t["problems"]:
                field, _, reason = problem.partition(": ")
                assert field in f and reason
                if field == "student_number":
                    assert t["student_dcid"] is None
                    assert f["student_number"] not in {x["student_number"] for x in students.values()}
                if field == "student_birthdate":
                    assert not re.fullmatch(r"(0[1-9]|1[0-2])/(0[1-9]|[12]\d|3[01])/\d{4}", f[field]) \
                        or f[field].startswith("02/30")
                if field.endswith("_email"):
                    assert not re.fullmatch(r"[A-Za-z0-9._%+-]+@[A-Za-z0-9-]+(\.[A-Za-z0-9-]+)+", f[field])
                if field.endswith("_last_name"):
                    assert f[field] == "" and f[field.replace("last", "first")]
        if sc in ("new_contact", "sibling_new_parent"):
            n = new[0]
            key = slots[n]["new_key"]
            reg = truth["new_contacts"][key]
            assert (reg["first_name"], reg["last_name"]) == (f[f"contact{n}_first_name"], f[f"contact{n}_last_name"])
            assert s["id"] in reg["submissions"]
            assert int(n) == max(int(k) for k in slots)
            by_household_key[key].append((s, n))
    for key, entries in by_household_key.items():
        reg = truth["new_contacts"][key]
        assert sorted(reg["submissions"]) == sorted(s["id"] for s, _ in entries)
        scen = {truth["submissions"][s["id"]]["scenario"] for s, _ in entries}
        if scen == {"sibling_new_parent"}:
            assert len(entries) >= 2, key
            fams = {students[truth["submissions"][s["id"]]["student_dcid"]]["family_ident"] for s, _ in entries}
            assert len(fams) == 1
            assert len({phone_digits(s["fields"][f"contact{n}_cell_phone"]) for s, n in entries}) == 1
            assert len({s["fields"][f"contact{n}_email"].lower() for s, n in entries}) == 1
        else:
            assert len(entries) == 1
    assert set(truth["new_contacts"]) == set(by_household_key)


def test_forms_vary_formats_and_labels():
    district, subs, truth = build_all(1500, 2)
    labels = {s["fields"][f"contact{n}_relationship"] for s in subs for n in range(1, 5)} - {""}
    assert {"Mom", "Mother", "mother"} <= labels and any(lab.startswith("Step") for lab in labels)
    persons = {p["id"]: p for p in district["persons"]}
    nick = case = 0
    emails = {e["person_id"]: e["address"] for e in district["emails"] if e["primary"]}
    for s in subs:
        if not truth["submissions"][s["id"]]["valid"]:
            continue
        for n, slot in truth["submissions"][s["id"]]["contacts"].items():
            pid = slot["person_id"]
            if not pid or slot["typo"]:
                continue
            first = s["fields"][f"contact{n}_first_name"]
            if ascii_fold(first) != ascii_fold(persons[pid]["first_name"]):
                nick += 1
            em = s["fields"][f"contact{n}_email"]
            if pid in emails and em and em != emails[pid]:
                assert em.lower() == emails[pid].lower()
                case += 1
    assert nick > 0, "nicknames on forms"
    assert case > 0, "emails in another case"


def test_scale_50k_students():
    t0 = time.perf_counter()
    district, subs, truth = build_all(50000, 1)
    elapsed = time.perf_counter() - t0
    print(f"build_all(50000, 1): {elapsed:.1f}s, {len(district['persons'])} persons, "
          f"{len(district['links'])} links, {len(subs)} submissions")
    assert len(district["students"]) == 50000
    assert len(subs) == 25000 == len(truth["submissions"])
