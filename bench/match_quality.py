"""Contact matching quality against the sandbox generator's ground truth.

    .venv/bin/python bench/match_quality.py [--students 2000] [--seeds 1 2]

For each seed: build a synthetic district and its form submissions (`sandbox.generate.build_all`), map
the submissions with the real mapping (include/mappings/registration-2026.yaml), read the district
through the snapshot row readers the DAG uses (rows shaped like the PowerQuery columns), match with the
DAG's `match_records`, and compare with `truth["submissions"][sid]["contacts"][slot]["person_id"]`
(None = a new contact). Prints:

- certain class: precision (certain links that are the true person), recall (true persons found
  certainly), F1;
- certain + possible (a possible match proposes its top candidate): precision, recall, F1;
- candidate recall: the true person is anywhere among the candidates;
- new contacts: how the truly new ones were classified; review load (possible share).

The bench imports `sandbox`; production code never does.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections import Counter
from datetime import date
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "plugins")]

from sandbox.generate import build_all  # noqa: E402
from sandbox.generator.tables import REFERENCE_DATE  # noqa: E402
from writeback.domain.mapping import apply_mapping, load_mapping  # noqa: E402
from writeback.domain.matching import match_records  # noqa: E402
from writeback.domain.models import FormRecord, MatchClass, Snapshot  # noqa: E402
from writeback.pipeline.snapshot import (  # noqa: E402
    links_from_rows,
    persons_from_rows,
    portal_accounts_from_rows,
    students_from_rows,
)

MAPPING = ROOT / "include" / "mappings" / "registration-2026.yaml"


def _b(flag: bool) -> str:
    return "1" if flag else "0"


def snapshot_from_district(d: dict) -> Snapshot:
    """district.json -> rows shaped like the named PowerQueries -> the DAG's row readers."""
    ext = {e["studentsdcid"]: e for e in d["extensions"]["u_students_extension"]}
    students = []
    for s in d["students"]:
        row = {f"students.{k}": str(v) for k, v in s.items()}
        row["students.schoolid"] = str(s["school_id"])
        e = ext.get(s["dcid"], {})
        row.update({"u_students_extension.pref_first_name": e.get("pref_first_name", ""),
                    "u_students_extension.pref_last_name": e.get("pref_last_name", ""),
                    "u_students_extension.photo_release": e.get("photo_release", "")})
        students.append(row)
    contacts = [{"person.id": str(p["id"]), "person.firstname": p["first_name"], "person.middlename": p["middle_name"],
                 "person.lastname": p["last_name"], "person.prefix": p["prefix"], "person.suffix": p["suffix"],
                 "person.gender": p["gender"], "person.employer": p["employer"]} for p in d["persons"]]
    emails = [{"emailaddress.emailaddressid": str(e["id"]), "personemailaddressassoc.personid": str(e["person_id"]),
               "emailaddress.emailaddress": e["address"], "personemailaddressassoc.emailtype": e["type"],
               "personemailaddressassoc.isprimaryemailaddress": _b(e["primary"])} for e in d["emails"]]
    phones = [{"phonenumber.phonenumberid": str(p["id"]), "personphonenumberassoc.personid": str(p["person_id"]),
               "phonenumber.phonenumber": p["number"], "phonenumber.phonenumberext": p["extension"],
               "personphonenumberassoc.phonetype": p["type"], "personphonenumberassoc.ispreferred": _b(p["preferred"]),
               "phonenumber.issms": _b(p["sms"]), "personphonenumberassoc.phonenumberpriorityorder": str(p["sequence"])}
              for p in d["phones"]]
    addresses = [{"personaddress.personaddressid": str(a["id"]), "personaddressassoc.personid": str(a["person_id"]),
                  "personaddressassoc.addresstype": a["type"], "personaddress.street": a["street"],
                  "personaddress.linetwo": a["linetwo"], "personaddress.unit": a["unit"], "personaddress.city": a["city"],
                  "personaddress.state": a["state"], "personaddress.postalcode": a["postal_code"],
                  "personaddress.country": a["country"], "personaddressassoc.startdate": a["start_date"],
                  "personaddressassoc.enddate": a["end_date"]} for a in d["addresses"]]
    by_link: dict[int, list[dict]] = {}
    for det in d["details"]:
        by_link.setdefault(det["link_id"], []).append(det)
    links = []
    for lk in d["links"]:
        for det in by_link.get(lk["id"], []):
            links.append({
                "studentcontactassoc.studentcontactassocid": str(lk["id"]),
                "studentcontactassoc.studentdcid": str(lk["student_dcid"]),
                "studentcontactassoc.personid": str(lk["person_id"]),
                "studentcontactassoc.contactpriorityorder": str(lk["sequence"]),
                "studentcontactassoc.canaccessdata": _b(lk["can_access_data"]),
                "studentcontactdetail.studentcontactdetailid": str(det["id"]),
                "studentcontactdetail.relationshiptype": det["relationship"],
                "studentcontactdetail.relationshipnote": det["relationship_note"],
                "studentcontactdetail.iscustodial": _b(det["custodial"]),
                "studentcontactdetail.isemergency": _b(det["emergency"]),
                "studentcontactdetail.liveswithflg": _b(det["lives_with"]),
                "studentcontactdetail.schoolpickupflg": _b(det["school_pickup"]),
                "studentcontactdetail.receivesmailflg": _b(det["receives_mail"]),
                "studentcontactdetail.startdate": det["start_date"], "studentcontactdetail.enddate": det["end_date"]})
    portal = [{"pcas_account.pcas_accountid": str(a["id"]), "pcas_account.username": a["username"],
               "pcas_account.isenabled": _b(a["enabled"]), "pcas_emailcontact.emailaddress": a["email"],
               "guardianpersonassoc.personid": str(a["person_id"] or "")} for a in d["portal_accounts"]]
    return Snapshot(taken_at=REFERENCE_DATE, students=students_from_rows(students),
                    persons=persons_from_rows(contacts, emails, phones, addresses),
                    links=links_from_rows(links), portal_accounts=portal_accounts_from_rows(portal))


def _prf(tp: int, fp: int, positives: int) -> tuple[float, float, float]:
    p = tp / (tp + fp) if tp + fp else 1.0
    r = tp / positives if positives else 1.0
    return p, r, (2 * p * r / (p + r) if p + r else 0.0)


def run(students: int, seed: int) -> dict:
    t0 = time.perf_counter()
    district, submissions, truth = build_all(students, seed)
    snapshot = snapshot_from_district(district)
    mapping = load_mapping(MAPPING)
    known = set(snapshot.student_by_number())
    records: list[FormRecord] = []
    for sub in submissions:
        rec = apply_mapping(mapping, sub["id"], sub["fields"])
        if isinstance(rec, FormRecord) and rec.student_number in known:
            records.append(rec)
    t1 = time.perf_counter()
    matches = match_records(records, snapshot, date.fromisoformat(REFERENCE_DATE))
    t2 = time.perf_counter()

    existing = tp_c = fp_c = tp_cp = fp_cp = cand_hit = 0
    new_classes: Counter[str] = Counter()
    classes: Counter[str] = Counter()
    fp_examples: list[str] = []
    miss_examples: list[str] = []
    scenario_fp: Counter[str] = Counter()
    for (sid, slot), m in sorted(matches.items()):
        t = truth["submissions"][sid]
        slot_truth = t["contacts"].get(str(slot))
        if slot_truth is None:
            continue
        want = slot_truth["person_id"]
        classes[m.match_class.value] += 1
        proposal = m.person_id if m.match_class == MatchClass.CERTAIN else (
            m.candidates[0].person_id if m.match_class == MatchClass.POSSIBLE and m.candidates else None)
        if want is None:
            new_classes[m.match_class.value] += 1
        else:
            existing += 1
            if want in {c.person_id for c in m.candidates} or m.person_id == want:
                cand_hit += 1
            elif len(miss_examples) < 5:
                miss_examples.append(f"{sid}/{slot} want {want}, candidates {[c.person_id for c in m.candidates]}")
        if m.match_class == MatchClass.CERTAIN:
            if m.person_id == want:
                tp_c += 1
            else:
                fp_c += 1
                scenario_fp[t["scenario"]] += 1
                if len(fp_examples) < 5:
                    fp_examples.append(f"{sid}/{slot} ({t['scenario']}): certain {m.person_id}, truth {want}; "
                                       f"{m.candidates[:2]}")
        if proposal is not None:
            if proposal == want:
                tp_cp += 1
            else:
                fp_cp += 1
    return {"seed": seed, "students": students, "records": len(records), "contacts": sum(classes.values()),
            "existing": existing, "classes": dict(classes), "new": dict(new_classes),
            "certain": _prf(tp_c, fp_c, existing), "certain_fp": fp_c, "certain+possible": _prf(tp_cp, fp_cp, existing),
            "candidate_recall": cand_hit / existing if existing else 1.0, "fp_by_scenario": dict(scenario_fp),
            "fp_examples": fp_examples, "miss_examples": miss_examples,
            "prepare_s": t1 - t0, "match_s": t2 - t1}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.strip().splitlines()[0])
    ap.add_argument("--students", type=int, default=2000)
    ap.add_argument("--seeds", type=int, nargs="+", default=[1, 2])
    args = ap.parse_args(argv)
    for seed in args.seeds:
        r = run(args.students, seed)
        print(f"== {r['students']} students, seed {r['seed']}: {r['records']} mapped records, {r['contacts']} "
              f"submitted contacts ({r['existing']} existing persons, {sum(r['new'].values())} new); "
              f"prepare {r['prepare_s']:.1f}s, match {r['match_s']:.2f}s")
        print(f"   classes: {r['classes']}; truly new contacts classified as: {r['new']}")
        for label in ("certain", "certain+possible"):
            p, rc, f1 = r[label]
            print(f"   {label:<17} precision {p:.4f}  recall {rc:.4f}  F1 {f1:.4f}")
        print(f"   candidate recall  {r['candidate_recall']:.4f}   (targets: candidate recall >= 0.995, "
              f"certain precision >= 0.999)")
        print(f"   certain false positives: {r['certain_fp']} {r['fp_by_scenario']}")
        for line in r["fp_examples"]:
            print(f"     FP {line}")
        for line in r["miss_examples"]:
            print(f"     MISS {line}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
