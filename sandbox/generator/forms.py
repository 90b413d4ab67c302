"""SchoolEngage form submissions derived from a synthetic district, plus the ground truth behind them."""

from __future__ import annotations

import random
from collections import defaultdict
from datetime import UTC, datetime, timedelta

from .district import (
    ALL_PHONE_STYLES,
    NamePools,
    ascii_fold,
    format_phone,
    is_expired,
    phone_digits,
)
from .tables import (
    CITIES,
    EMAIL_DOMAINS,
    MALFORMED_KINDS,
    NICKNAMES,
    REFERENCE_DATE,
    RELATIONSHIP_LABELS,
    SCENARIO_WEIGHTS,
    STREET_SUFFIXES,
)

FORM_ID = "registration-2026"
STUDENT_FIELDS = [
    "student_number", "student_legal_first_name", "student_legal_middle_name", "student_legal_last_name",
    "student_preferred_first_name", "student_preferred_last_name", "student_gender", "student_birthdate",
    "home_street", "home_city", "home_state", "home_zip",
    "mailing_street", "mailing_city", "mailing_state", "mailing_zip", "photo_release",
]
CONTACT_SUFFIXES = [
    "first_name", "last_name", "relationship", "cell_phone", "home_phone", "work_phone", "email",
    "street", "city", "state", "zip", "emergency", "lives_with", "custodial", "data_access", "remove",
]
SLOTS = 4
FORM_FIELDS = STUDENT_FIELDS + [f"contact{n}_{s}" for n in range(1, SLOTS + 1) for s in CONTACT_SUFFIXES]
PHONE_FIELD = {"Mobile": "cell_phone", "Home": "home_phone", "Work": "work_phone"}
NEW_RELATIONSHIPS = ["Grandparent", "Grandparent", "Aunt", "Uncle", "Other", "Guardian", "Stepmother",
                     "Stepfather"]
_KEYBOARD_NEIGHBOURS = {
    "a": "sqz", "b": "vn", "c": "xv", "d": "sf", "e": "wr", "f": "dg", "g": "fh", "h": "gj", "i": "uo",
    "j": "hk", "k": "jl", "l": "k", "m": "n", "n": "bm", "o": "ip", "p": "o", "q": "w", "r": "et",
    "s": "ad", "t": "ry", "u": "yi", "v": "cb", "w": "qe", "x": "zc", "y": "tu", "z": "x",
}
SESSION_START = datetime.fromisoformat(REFERENCE_DATE).replace(tzinfo=UTC) - timedelta(days=60)
SESSION_END = datetime.fromisoformat(REFERENCE_DATE).replace(tzinfo=UTC) - timedelta(seconds=1)


def _ts(dt: datetime) -> str:
    return dt.strftime("%Y-%m-%dT%H:%M:%SZ")


def _yes(flag: bool) -> str:
    return "Yes" if flag else "No"


def make_typo(name: str, rng: random.Random) -> str:
    """One-letter typo (substitute/drop/transpose/double) that stays the same person's name."""
    letters = [i for i, ch in enumerate(name) if ch.isalpha()]
    for _ in range(50):
        i = rng.choice(letters[1:]) if len(letters) > 1 else letters[0]
        op = rng.randrange(4)
        if op == 0:
            low = ascii_fold(name[i]).lower()
            rep = rng.choice(_KEYBOARD_NEIGHBOURS.get(low, "e"))
            out = name[:i] + (rep.upper() if name[i].isupper() else rep) + name[i + 1:]
        elif op == 1 and len(letters) > 3:
            out = name[:i] + name[i + 1:]
        elif op == 2 and i + 1 < len(name) and name[i + 1].isalpha():
            out = name[:i] + name[i + 1] + name[i] + name[i + 2:]
        else:
            out = name[:i] + name[i] + name[i:]
        if ascii_fold(out).lower() != ascii_fold(name).lower():
            return out
    return name + "e"


class _FormBuilder:
    def __init__(self, district: dict, seed: int, share: float):
        if not 0 <= share <= 1:
            raise ValueError("submissions_share must be within 0..1")
        self.d = district
        self.rng = random.Random(seed * 7919 + 104729)
        self.share = share
        self.pools = NamePools(seed + 17)
        self.students = {s["dcid"]: s for s in district["students"]}
        self.ext = {e["studentsdcid"]: e for e in district["extensions"]["u_students_extension"]}
        self.persons = {p["id"]: p for p in district["persons"]}
        self.phones: dict[int, list[dict]] = defaultdict(list)
        for ph in district["phones"]:
            self.phones[ph["person_id"]].append(ph)
        self.emails: dict[int, list[dict]] = defaultdict(list)
        for em in district["emails"]:
            self.emails[em["person_id"]].append(em)
        self.home_addr: dict[int, dict] = {}
        for a in district["addresses"]:
            if a["type"] == "Home" and not a["end_date"]:
                self.home_addr.setdefault(a["person_id"], a)
        details: dict[int, list[dict]] = defaultdict(list)
        for det in district["details"]:
            details[det["link_id"]].append(det)
        self.active_links: dict[int, list[tuple[dict, dict]]] = defaultdict(list)
        for link in sorted(district["links"], key=lambda lk: (lk["student_dcid"], lk["sequence"])):
            dets = details[link["id"]]
            if not is_expired(dets):
                latest = max(dets, key=lambda x: (x["start_date"], x["id"]))
                self.active_links[link["student_dcid"]].append((link, latest))
        self.households: dict[str, list[int]] = defaultdict(list)
        for s in district["students"]:
            self.households[s["family_ident"]].append(s["dcid"])
        self.used_digits = {phone_digits(ph["number"]) for ph in district["phones"]}
        self.used_emails = {em["address"].lower() for em in district["emails"]}
        self.student_numbers = {s["student_number"] for s in district["students"]}
        self.new_contacts: dict[int, dict] = {}  # temp key -> {"first_name", "last_name"}

    # ---------- helpers ----------
    def _fmt_phone(self, ph: dict) -> str:
        rng = self.rng
        text = ph["number"]
        if rng.random() < 0.35:
            text = format_phone(phone_digits(text), rng.choice(ALL_PHONE_STYLES))
        if ph["extension"]:
            text += rng.choice([" x", " x", " ext. ", " ext "]) + ph["extension"]
        return text

    def _vary_email(self, addr: str) -> str:
        r = self.rng.random()
        if r < 0.15:
            return addr.lower()
        if r < 0.22:
            return addr.upper()
        if r < 0.3:
            local, _, dom = addr.partition("@")
            return f"{local.capitalize()}@{dom.lower()}"
        return addr

    def _vary_first(self, first: str) -> str:
        rng = self.rng
        if first in NICKNAMES and rng.random() < 0.08:
            return rng.choice(NICKNAMES[first])
        if rng.random() < 0.15:
            return ascii_fold(first)
        return first

    def _label(self, rel: str, gender: str) -> str:
        key = f"{rel}/{gender}" if f"{rel}/{gender}" in RELATIONSHIP_LABELS else rel
        return self.rng.choice(RELATIONSHIP_LABELS.get(key, [rel]))

    def _new_digits(self) -> str:
        rng = self.rng
        while True:
            d = f"{rng.choice(rng.choice(CITIES)[1])}{rng.randint(201, 989)}{rng.randint(0, 9999):04d}"
            if d not in self.used_digits:
                self.used_digits.add(d)
                return d

    def _new_email(self, first: str, last: str) -> str:
        rng = self.rng
        f = ascii_fold(first).replace(" ", "").lower()
        la = ascii_fold(last).replace(" ", "").replace("'", "").lower()
        while True:
            addr = f"{f}.{la}{rng.randint(1, 999)}@{rng.choice(EMAIL_DOMAINS)}"
            if addr not in self.used_emails:
                self.used_emails.add(addr)
                return addr

    # ---------- base form ----------
    def base_form(self, dcid: int) -> tuple[dict, dict]:
        s = self.students[dcid]
        ext = self.ext.get(dcid)
        rng = self.rng
        f = dict.fromkeys(FORM_FIELDS, "")
        y, m, d = s["dob"].split("-")
        photo = ext["photo_release"] == "1" if ext else rng.random() < 0.8
        f.update({
            "student_number": s["student_number"], "student_legal_first_name": s["first_name"],
            "student_legal_middle_name": s["middle_name"], "student_legal_last_name": s["last_name"],
            "student_preferred_first_name": ext["pref_first_name"] if ext else "",
            "student_preferred_last_name": ext["pref_last_name"] if ext else "",
            "student_gender": s["gender"], "student_birthdate": f"{m}/{d}/{y}",
            "home_street": s["street"], "home_city": s["city"], "home_state": s["state"], "home_zip": s["zip"],
            "mailing_street": s["mailing_street"], "mailing_city": s["mailing_city"],
            "mailing_state": s["mailing_state"], "mailing_zip": s["mailing_zip"], "photo_release": _yes(photo),
        })
        slots: dict[str, dict] = {}
        for n, (link, det) in enumerate(self.active_links[dcid][:SLOTS], start=1):
            p = self.persons[link["person_id"]]
            pre = f"contact{n}_"
            f[pre + "first_name"] = self._vary_first(p["first_name"])
            f[pre + "last_name"] = p["last_name"] if rng.random() > 0.1 else ascii_fold(p["last_name"])
            f[pre + "relationship"] = self._label(det["relationship"], p["gender"])
            for ph in sorted(self.phones[p["id"]], key=lambda x: x["sequence"]):
                key = pre + PHONE_FIELD.get(ph["type"], "cell_phone")
                if not f[key]:
                    f[key] = self._fmt_phone(ph)
            ems = [e for e in self.emails[p["id"]] if e["primary"]]
            if ems:
                f[pre + "email"] = self._vary_email(ems[0]["address"])
            addr = self.home_addr.get(p["id"])
            if addr:
                f[pre + "street"] = addr["street"] + (f" {addr['unit']}" if addr["unit"] else "")
                f[pre + "city"], f[pre + "state"], f[pre + "zip"] = addr["city"], addr["state"], addr["postal_code"]
            f[pre + "emergency"] = _yes(det["emergency"])
            f[pre + "lives_with"] = _yes(det["lives_with"])
            f[pre + "custodial"] = _yes(det["custodial"])
            f[pre + "data_access"] = _yes(link["can_access_data"])
            slots[str(n)] = {"person_id": p["id"], "new_key": None, "remove": False, "typo": False,
                             "phone_type_changed": False}
        truth = {"valid": True, "scenario": "unchanged", "problems": [], "student_dcid": dcid, "contacts": slots}
        return f, truth

    # ---------- scenarios ----------
    def applicable(self, scenario: str, dcid: int) -> bool:
        links = self.active_links[dcid]
        n = min(len(links), SLOTS)
        if scenario == "new_contact":
            return n < SLOTS
        if scenario == "removed_contact":
            return n >= 2
        if scenario == "phone_type_changed":
            return any(ph["type"] in ("Mobile", "Home") for lk, _ in links[:SLOTS]
                       for ph in self.phones[lk["person_id"]])
        if scenario == "contact_typo":
            return any(sum(ch.isalpha() for ch in self.persons[lk["person_id"]][part]) >= 3
                       for lk, _ in links[:SLOTS] for part in ("first_name", "last_name"))
        return True

    def _fill_new_contact(self, f: dict, n: int, person: dict, rel: str) -> None:
        rng = self.rng
        pre = f"contact{n}_"
        f[pre + "first_name"] = person["first_name"]
        f[pre + "last_name"] = person["last_name"]
        f[pre + "relationship"] = self._label(rel, person["gender"])
        f[pre + "cell_phone"] = format_phone(person["digits"], rng.choice(ALL_PHONE_STYLES))
        f[pre + "email"] = self._vary_email(person["email"])
        lives = rel in ("Stepmother", "Stepfather", "Guardian")
        if lives:
            for k in ("street", "city", "state", "zip"):
                f[pre + k] = f[f"home_{k}"]
        f[pre + "emergency"] = "Yes"
        f[pre + "lives_with"] = _yes(lives)
        f[pre + "custodial"] = _yes(lives)
        f[pre + "data_access"] = "No"

    def _new_person(self, rel: str) -> dict:
        rng = self.rng
        gender = {"Aunt": "F", "Stepmother": "F", "Uncle": "M", "Stepfather": "M"}.get(rel, rng.choice("FM"))
        first = rng.choice(self.pools.female if gender == "F" else self.pools.male)
        last = rng.choice(self.pools.last_en if rng.random() < 0.6 else self.pools.last_es)
        return {"first_name": first, "last_name": last, "gender": gender, "digits": self._new_digits(),
                "email": self._new_email(first, last)}

    def apply(self, scenario: str, dcid: int, f: dict, truth: dict) -> None:
        rng = self.rng
        truth["scenario"] = scenario
        slots = truth["contacts"]
        used = sorted(int(k) for k in slots)
        if scenario == "edited_name":
            choice = rng.randrange(3)
            if choice == 0:
                old = f["student_legal_middle_name"]
                g = f["student_gender"]
                pool = self.pools.female if g == "F" else self.pools.male
                new = old
                while new == old:
                    new = rng.choice(pool)
                f["student_legal_middle_name"] = new
            elif choice == 1:
                first = f["student_legal_first_name"]
                old = f["student_preferred_first_name"]
                cands = NICKNAMES.get(first, []) + [first[:3] if len(first) > 4 else first + "ie"]
                cands = [c for c in cands if c != old] or [old + "a"]
                f["student_preferred_first_name"] = rng.choice(cands)
            else:
                last = f["student_legal_last_name"]
                old = f["student_preferred_last_name"]
                new = last.split("-")[0].split(" ")[0] if ("-" in last or " " in last) else rng.choice(
                    self.pools.last_en)
                if new == old or new == last:
                    new = rng.choice(self.pools.last_en)
                f["student_preferred_last_name"] = new
        elif scenario == "edited_address":
            city, _areas, zp = rng.choice(CITIES)
            street = (f"{rng.randint(1, 9999)} {rng.choice(self.pools.streets)} {rng.choice(STREET_SUFFIXES)}"
                      + (f" Apt {rng.randint(1, 30)}" if rng.random() < 0.15 else ""))
            zipc = f"{zp}{rng.randint(0, 99):02d}"
            f.update({"home_street": street, "home_city": city, "home_state": "CA", "home_zip": zipc})
            for n in used:
                pre = f"contact{n}_"
                if f[pre + "lives_with"] == "Yes":
                    f.update({pre + "street": street, pre + "city": city, pre + "state": "CA", pre + "zip": zipc})
        elif scenario == "new_contact":
            n = len(used) + 1
            rel = rng.choice(NEW_RELATIONSHIPS)
            person = self._new_person(rel)
            key = len(self.new_contacts) + 1
            self.new_contacts[key] = person
            self._fill_new_contact(f, n, person, rel)
            slots[str(n)] = {"person_id": None, "new_key": key, "remove": False, "typo": False,
                             "phone_type_changed": False}
        elif scenario == "contact_typo":
            cands = [(n, part) for n in used for part in ("first_name", "last_name")
                     if sum(ch.isalpha() for ch in f[f"contact{n}_{part}"]) >= 3]
            n, part = rng.choice(cands)
            key = f"contact{n}_{part}"
            f[key] = make_typo(f[key], rng)
            slots[str(n)]["typo"] = True
        elif scenario == "phone_type_changed":
            cands = [(n, src) for n in used for src in ("cell_phone", "home_phone") if f[f"contact{n}_{src}"]]
            n, src = rng.choice(cands)
            pre = f"contact{n}_"
            other = "home_phone" if src == "cell_phone" else "cell_phone"
            targets = [t for t in (other, "work_phone") if not f[pre + t]]
            if targets:
                dst = targets[0] if rng.random() < 0.8 else rng.choice(targets)
                f[pre + dst], f[pre + src] = f[pre + src], ""
            else:
                f[pre + src], f[pre + other] = f[pre + other], f[pre + src]
            slots[str(n)]["phone_type_changed"] = True
        elif scenario == "removed_contact":
            n = rng.choice(used[1:])
            f[f"contact{n}_remove"] = "Yes"
            slots[str(n)]["remove"] = True
        elif scenario == "malformed":
            kind = rng.choice(MALFORMED_KINDS)
            truth["valid"] = False
            if kind == "unknown_student_number":
                num = str(rng.randint(900000, 999999))
                while num in self.student_numbers:
                    num = str(rng.randint(900000, 999999))
                f["student_number"] = num
                truth["problems"].append("student_number: unknown")
                truth["student_dcid"] = None
            elif kind == "empty_student_number":
                f["student_number"] = ""
                truth["problems"].append("student_number: missing")
                truth["student_dcid"] = None
            elif kind == "bad_birthdate":
                m, d, y = f["student_birthdate"].split("/")
                f["student_birthdate"] = rng.choice([f"13/{d}/{y}", f"02/30/{y}", f"{m}/{d}", "next tuesday",
                                                     "N/A", f"{m}/{d}/{y}x"])
                truth["problems"].append("student_birthdate: not a date")
            elif kind == "invalid_email":
                n = rng.choice(used)
                first = ascii_fold(f[f"contact{n}_first_name"]).lower().replace(" ", "") or "parent"
                f[f"contact{n}_email"] = rng.choice([f"{first}@@example", f"{first}@", f"{first} at example.org",
                                                     f"{first}.example.org", f"{first}@example..org"])
                truth["problems"].append(f"contact{n}_email: invalid")
            else:
                n = rng.choice(used)
                f[f"contact{n}_last_name"] = ""
                truth["problems"].append(f"contact{n}_last_name: missing")
        elif scenario != "unchanged":
            raise ValueError(f"unknown scenario {scenario}")

    # ---------- orchestration ----------
    def build(self) -> tuple[list, dict]:
        rng = self.rng
        n_students = len(self.students)
        target = round(self.share * n_students)
        hh_keys = list(self.households)
        rng.shuffle(hh_keys)
        chosen: list[tuple[str, list[int]]] = []
        count = 0
        for key in hh_keys:
            if count >= target:
                break
            kids = self.households[key][: target - count]
            chosen.append((key, kids))
            count += len(kids)

        # sibling_new_parent is a household-level scenario
        total_w = sum(SCENARIO_WEIGHTS.values())
        sib_target = round(count * SCENARIO_WEIGHTS["sibling_new_parent"] / total_w)
        sib_households: set[str] = set()
        sib_count = 0
        for key, kids in chosen:
            if sib_count >= sib_target:
                break
            if len(kids) >= 2 and all(self.applicable("new_contact", k) for k in kids):
                sib_households.add(key)
                sib_count += len(kids)

        # individual scenarios by quota (largest remainder), shuffled
        rest = count - sib_count
        weights = {k: v for k, v in SCENARIO_WEIGHTS.items() if k != "sibling_new_parent"}
        wsum = sum(weights.values())
        exact = {k: rest * v / wsum for k, v in weights.items()}
        quota = {k: int(x) for k, x in exact.items()}
        for k in sorted(exact, key=lambda k: (quota[k] - exact[k], k))[: rest - sum(quota.values())]:
            quota[k] += 1
        bag = [k for k in weights for _ in range(quota[k])]
        rng.shuffle(bag)

        records = []  # (submitted_at, dcid, form, truth, updated_at)
        for key, kids in chosen:
            t = SESSION_START + timedelta(seconds=rng.randrange(int((SESSION_END - SESSION_START).total_seconds())))
            sib_person, sib_rel, sib_key = None, None, None
            if key in sib_households:
                sib_rel = rng.choice(["Stepfather", "Stepmother", "Stepfather", "Guardian"])
                sib_person = self._new_person(sib_rel)
                sib_key = len(self.new_contacts) + 1
                self.new_contacts[sib_key] = sib_person
            for dcid in kids:
                form, truth = self.base_form(dcid)
                if sib_person is not None:
                    truth["scenario"] = "sibling_new_parent"
                    n = len(truth["contacts"]) + 1
                    self._fill_new_contact(form, n, sib_person, sib_rel)
                    truth["contacts"][str(n)] = {"person_id": None, "new_key": sib_key, "remove": False,
                                                 "typo": False, "phone_type_changed": False}
                else:
                    idx = next((i for i, sc in enumerate(bag) if self.applicable(sc, dcid)), None)
                    scenario = bag.pop(idx) if idx is not None else "unchanged"
                    self.apply(scenario, dcid, form, truth)
                submitted = min(t, SESSION_END)
                updated = submitted
                if rng.random() < 0.2:
                    updated = min(submitted + timedelta(seconds=rng.randint(600, 3 * 86400)), SESSION_END)
                records.append((submitted, dcid, form, truth, updated))
                t += timedelta(seconds=rng.randint(60, 900))
            _move_household_together(records[-len(kids):])

        records.sort(key=lambda r: (r[0], r[1]))
        submissions, truth_subs = [], {}
        key_map: dict[int, str] = {}
        new_contacts: dict[str, dict] = {}
        for i, (submitted, _dcid, form, truth, updated) in enumerate(records, start=1):
            sid = f"SUB-{i:06d}"
            for slot in truth["contacts"].values():
                if slot["new_key"] is not None:
                    tmp = slot["new_key"]
                    if tmp not in key_map:
                        key_map[tmp] = f"NEW-{len(key_map) + 1:04d}"
                        p = self.new_contacts[tmp]
                        new_contacts[key_map[tmp]] = {"first_name": p["first_name"], "last_name": p["last_name"],
                                                      "submissions": []}
                    slot["new_key"] = key_map[tmp]
                    new_contacts[slot["new_key"]]["submissions"].append(sid)
            submissions.append({"id": sid, "form_id": FORM_ID, "student_number": form["student_number"],
                                "submitted_at": _ts(submitted), "updated_at": _ts(updated), "fields": form})
            truth_subs[sid] = truth
        return submissions, {"submissions": truth_subs, "new_contacts": new_contacts}


def _move_household_together(records: list[tuple]) -> None:
    """A family that moved tells the school once per child: every sibling's form carries the new home
    address, for the student and for the contacts who live with them (one form moving the parents while
    the other keeps the old address would be a conflict no real family produces on purpose)."""
    movers = [form for _, _, form, truth, _ in records if truth["scenario"] == "edited_address"]
    if not movers:
        return
    new = {k: movers[0][f"home_{k}"] for k in ("street", "city", "state", "zip")}
    for _, _, form, truth, _ in records:
        form.update({f"home_{k}": v for k, v in new.items()})
        for n in truth["contacts"]:
            pre = f"contact{n}_"
            if form.get(pre + "lives_with") == "Yes":
                form.update({pre + k: v for k, v in new.items()})


def build_submissions(district: dict, seed: int, submissions_share: float = 0.5) -> tuple[list, dict]:
    return _FormBuilder(district, seed, submissions_share).build()
