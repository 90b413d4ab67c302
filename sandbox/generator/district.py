"""Synthetic PowerSchool district: students in households, shared contacts, messy phones and names."""

from __future__ import annotations

import random
import unicodedata
from datetime import date, timedelta

from faker import Faker

from .tables import (
    CITIES,
    CODESETS,
    EMAIL_DOMAINS,
    FEMALE_FORMAL,
    MALE_FORMAL,
    NICKNAMES,
    REFERENCE_DATE,
    SPECIAL_FIRST_F,
    SPECIAL_FIRST_M,
    SPECIAL_SURNAMES,
    STREET_SUFFIXES,
)

PERSON_ID_BASE = 5001
LINK_ID_BASE = 9001
REF = date.fromisoformat(REFERENCE_DATE)

# PowerSchool stores phones as entered: a district's data carries many formats
PS_PHONE_STYLES = ["paren", "paren", "paren", "dash", "dash", "dot", "plus1", "plain", "one_dash"]
ALL_PHONE_STYLES = ["paren", "dash", "dot", "plus1", "plain", "one_dash", "paren_nospace", "spaces"]


def ascii_fold(text: str) -> str:
    return "".join(c for c in unicodedata.normalize("NFKD", text) if not unicodedata.combining(c))


def format_phone(digits: str, style: str) -> str:
    a, b, c = digits[:3], digits[3:6], digits[6:]
    return {
        "paren": f"({a}) {b}-{c}",
        "paren_nospace": f"({a}){b}-{c}",
        "dash": f"{a}-{b}-{c}",
        "dot": f"{a}.{b}.{c}",
        "plus1": f"+1 {a} {b} {c}",
        "plain": f"{a}{b}{c}",
        "one_dash": f"1-{a}-{b}-{c}",
        "spaces": f"{a} {b} {c}",
    }[style]


def phone_digits(number: str) -> str:
    d = "".join(ch for ch in number if ch.isdigit())
    return d[1:] if len(d) == 11 and d.startswith("1") else d


def _unique(seq):
    return list(dict.fromkeys(s for s in seq if s))


class NamePools:
    """Names drawn from Faker once per seed; the generator then picks from them with its rng."""

    def __init__(self, seed: int):
        en = Faker("en_US")
        en.seed_instance(seed)
        es = Faker("es_MX")
        es.seed_instance(seed + 1)
        self.female = _unique([en.first_name_female() for _ in range(250)]
                              + [es.first_name_female() for _ in range(120)]
                              + FEMALE_FORMAL * 4 + SPECIAL_FIRST_F)
        self.male = _unique([en.first_name_male() for _ in range(250)]
                            + [es.first_name_male() for _ in range(120)]
                            + MALE_FORMAL * 4 + SPECIAL_FIRST_M)
        # keep nickname-table names frequent (they are what makes nickname matching matter)
        self.female += FEMALE_FORMAL * 3
        self.male += MALE_FORMAL * 3
        self.last_en = _unique([en.last_name() for _ in range(500)]) + SPECIAL_SURNAMES
        self.last_es = _unique([es.last_name() for _ in range(300)]) + [
            s for s in SPECIAL_SURNAMES if any(ord(ch) > 127 for ch in s) or s.startswith(("de", "De", "del"))]
        self.streets = _unique([en.street_name().rsplit(" ", 1)[0] for _ in range(400)])
        self.companies = _unique([en.company() for _ in range(200)])


class _Builder:
    def __init__(self, students: int, seed: int):
        if students < 1:
            raise ValueError("students must be >= 1")
        self.n = students
        self.seed = seed
        self.rng = random.Random(seed)
        self.pools = NamePools(seed)
        self.students: list[dict] = []
        self.ext: list[dict] = []
        self.persons: list[dict] = []
        self.emails: list[dict] = []
        self.phones: list[dict] = []
        self.addresses: list[dict] = []
        self.links: list[dict] = []
        self.details: list[dict] = []
        self.accounts: list[dict] = []
        self.used_emails: set[str] = set()
        self.used_phones: set[str] = set()
        self.used_usernames: set[str] = set()
        self.parent_ids: list[int] = []  # persons that may be reused / duplicated by later households
        self.person_by_id: dict[int, dict] = {}
        self.person_phones: dict[int, list[dict]] = {}
        self.person_emails: dict[int, list[dict]] = {}

    # ---------- small helpers ----------
    def _phone_number(self, area: str) -> str:
        rng = self.rng
        while True:
            digits = f"{area}{rng.randint(201, 989)}{rng.randint(0, 9999):04d}"
            if digits not in self.used_phones:
                self.used_phones.add(digits)
                return digits

    def _email_address(self, first: str, last: str) -> str:
        rng = self.rng
        f = ascii_fold(first).replace(" ", "").replace("'", "").replace("-", "")
        la = ascii_fold(last).replace(" ", "").replace("'", "")
        domain = rng.choice(EMAIL_DOMAINS)
        for attempt in range(50):
            style = rng.randrange(5)
            local = [f"{f}.{la}", f"{f[0]}{la}", f"{f}{la}", f"{la}.{f}", f"{f}_{la[:1]}"][style]
            if attempt or rng.random() < 0.3:
                local += str(rng.randint(1, 99) if attempt < 20 else rng.randint(100, 99999))
            case = rng.random()
            if case < 0.45:
                local = local.lower()
            elif case < 0.55:
                local, domain = local.upper(), domain.upper()
            elif case < 0.65:
                domain = domain.capitalize()
            addr = f"{local}@{domain}"
            if addr.lower() not in self.used_emails:
                self.used_emails.add(addr.lower())
                return addr
        raise RuntimeError("could not draw a unique email")

    def _first(self, gender: str) -> str:
        return self.rng.choice(self.pools.female if gender == "F" else self.pools.male)

    def _street(self) -> str:
        rng = self.rng
        return f"{rng.randint(1, 9999)} {rng.choice(self.pools.streets)} {rng.choice(STREET_SUFFIXES)}"

    # ---------- persons ----------
    def _person(self, first, last, gender, *, middle="", employer="", prefix="", suffix="") -> dict:
        pid = PERSON_ID_BASE + len(self.persons)
        p = {"id": pid, "first_name": first, "middle_name": middle, "last_name": last, "prefix": prefix,
             "suffix": suffix, "gender": gender, "employer": employer}
        self.persons.append(p)
        self.person_by_id[pid] = p
        self.person_phones[pid] = []
        self.person_emails[pid] = []
        return p

    def _add_phone(self, pid: int, digits: str, ptype: str, *, ext: str = "", style: str | None = None) -> None:
        lst = self.person_phones[pid]
        ph = {"id": len(self.phones) + 1, "person_id": pid,
              "number": format_phone(digits, style or self.rng.choice(PS_PHONE_STYLES)),
              "extension": ext, "type": ptype, "preferred": not lst,
              "sms": ptype == "Mobile" and self.rng.random() < 0.7, "sequence": len(lst) + 1}
        lst.append(ph)
        self.phones.append(ph)

    def _add_email(self, pid: int, address: str, etype: str = "Personal") -> None:
        lst = self.person_emails[pid]
        em = {"id": len(self.emails) + 1, "person_id": pid, "address": address, "type": etype,
              "primary": not lst}
        lst.append(em)
        self.emails.append(em)

    def _add_address(self, pid: int, hh: dict | None, start: str, *, atype: str = "Home") -> None:
        rng = self.rng
        if hh is not None:
            street, unit, city, zipc = hh["street"], hh["unit"], hh["city"], hh["zip"]
        else:
            city, _areas, zp = rng.choice(CITIES)
            street, unit, city, zipc = self._street(), "", city, f"{zp}{rng.randint(0, 99):02d}"
        if atype == "Mailing":
            street, unit = f"PO Box {rng.randint(10, 9999)}", ""
        self.addresses.append({"id": len(self.addresses) + 1, "person_id": pid, "type": atype,
                               "street": street, "linetwo": "", "unit": unit, "city": city, "state": "CA",
                               "postal_code": zipc, "country": "US", "start_date": start, "end_date": ""})

    def _new_contact(self, hh: dict, gender: str, last: str, role: str) -> dict:
        """role: parent (lives with, phones, email) or extra (emergency contact living elsewhere)."""
        rng = self.rng
        middle = ""
        r = rng.random()
        if r < 0.12:
            middle = self._first(gender)
        elif r < 0.22:
            middle = self._first(gender)[0] + ("." if rng.random() < 0.5 else "")
        prefix = "Dr." if rng.random() < 0.02 else ""
        suffix = rng.choice(["Jr.", "III", "Sr."]) if gender == "M" and rng.random() < 0.03 else ""
        employer = rng.choice(self.pools.companies) if role == "parent" and rng.random() < 0.4 else ""
        p = self._person(self._first(gender), last, gender, middle=middle, employer=employer,
                         prefix=prefix, suffix=suffix)
        pid = p["id"]
        area = rng.choice(hh["areas"]) if role == "parent" or rng.random() < 0.7 else rng.choice(CITIES)[1][0]
        phone_plan: list[tuple[str, str, str]] = []
        if role == "parent":
            if rng.random() < 0.95:
                phone_plan.append(("Mobile", self._phone_number(area), ""))
            if hh["landline"] and rng.random() < 0.85:
                phone_plan.append(("Home", hh["landline"], ""))
            if rng.random() < 0.35:
                ext = str(rng.randint(2, 4999)) if rng.random() < 0.3 else ""
                phone_plan.append(("Work", self._phone_number(rng.choice(hh["areas"])), ext))
            if not phone_plan:
                phone_plan.append(("Mobile", self._phone_number(area), ""))
            if rng.random() < 0.25:  # home phone listed first for some
                phone_plan.sort(key=lambda t: t[0] != "Home")
        else:
            phone_plan.append(("Mobile" if rng.random() < 0.85 else "Home", self._phone_number(area), ""))
        for ptype, digits, ext in phone_plan:
            self._add_phone(pid, digits, ptype, ext=ext)
        if role == "parent" and rng.random() < 0.92 or role != "parent" and rng.random() < 0.5:
            self._add_email(pid, self._email_address(p["first_name"], last))
            if role == "parent" and rng.random() < 0.08:
                self._add_email(pid, self._email_address(p["first_name"], last), "Work")
        if role == "parent":
            self._add_address(pid, hh, hh["moved_in"])
            if rng.random() < 0.03:
                self._add_address(pid, hh, hh["moved_in"], atype="Mailing")
        elif rng.random() < 0.6:
            self._add_address(pid, None, "2019-01-01")
        return p

    def _duplicate_of(self, src: dict) -> dict:
        """The same human entered twice: slightly different spelling / formats."""
        rng = self.rng
        first, last, middle = src["first_name"], src["last_name"], src["middle_name"]
        variant = rng.randrange(4)
        if variant == 0 and first in NICKNAMES:
            first = rng.choice(NICKNAMES[first])
        elif variant == 1 and ascii_fold(first + last) != first + last:
            first, last = ascii_fold(first), ascii_fold(last)
        elif variant == 2:
            middle = "" if middle else self._first(src["gender"])[0]
        else:
            last = last.upper() if rng.random() < 0.5 else last.lower()
        p = self._person(first, last, src["gender"], middle=middle)
        for ph in self.person_phones[src["id"]][:1]:
            self._add_phone(p["id"], phone_digits(ph["number"]), ph["type"],
                            style=rng.choice(ALL_PHONE_STYLES))
        for em in self.person_emails[src["id"]][:1]:
            if rng.random() < 0.6:
                self._add_email(p["id"], em["address"].swapcase() if rng.random() < 0.5 else em["address"].lower())
        return p

    # ---------- households ----------
    def _household(self, hh_no: int, size: int) -> None:
        rng = self.rng
        city, areas, zp = rng.choice(CITIES)
        culture = rng.choices(["en", "es", "mixed"], weights=[50, 38, 12])[0]
        pool_last = self.pools.last_en if culture == "en" else self.pools.last_es
        moved_in = date(rng.randint(2008, 2025), rng.randint(1, 12), rng.randint(1, 28)).isoformat()
        unit = f"Apt {rng.randint(1, 40)}{rng.choice(['', 'A', 'B'])}" if rng.random() < 0.15 else ""
        hh = {"family_ident": f"H{hh_no:05d}", "city": city, "areas": areas, "zip": f"{zp}{rng.randint(0, 99):02d}",
              "street": self._street(), "unit": unit, "moved_in": moved_in,
              "landline": self._phone_number(rng.choice(areas)) if rng.random() < 0.55 else ""}

        # ---- family structure ----
        fam = rng.choices(["two", "single_mom", "single_dad", "stepdad", "grand", "guardian", "same_sex"],
                          weights=[55, 20, 7, 6, 5, 3, 4])[0]
        p_last = rng.choice(pool_last)
        m_last = rng.choice(self.pools.last_es if culture != "en" else self.pools.last_en)
        if culture == "es":
            kid_last = rng.choices([f"{p_last}-{m_last}", f"{p_last} {m_last}", p_last], weights=[30, 20, 50])[0]
        elif culture == "mixed":
            kid_last = rng.choice([f"{p_last}-{m_last}", p_last, m_last])
        else:
            kid_last = p_last
            if rng.random() > 0.25:
                m_last = p_last
        # contacts: (person, relationship, kind) kind in parent / extra / expired
        contacts: list[tuple[dict, str, str]] = []
        if fam == "two":
            mom = self._new_contact(hh, "F", m_last, "parent")
            dad = self._new_contact(hh, "M", p_last, "parent")
            contacts += [(mom, "Mother", "parent"), (dad, "Father", "parent")] if rng.random() < 0.7 else \
                [(dad, "Father", "parent"), (mom, "Mother", "parent")]
        elif fam == "single_mom":
            contacts.append((self._new_contact(hh, "F", m_last if culture != "en" else kid_last, "parent"),
                             "Mother", "parent"))
        elif fam == "single_dad":
            contacts.append((self._new_contact(hh, "M", p_last, "parent"), "Father", "parent"))
        elif fam == "stepdad":
            contacts.append((self._new_contact(hh, "F", m_last, "parent"), "Mother", "parent"))
            contacts.append((self._new_contact(hh, "M", rng.choice(pool_last), "parent"), "Stepfather", "parent"))
        elif fam == "grand":
            g = rng.choice("FM")
            contacts.append((self._new_contact(hh, g, p_last, "parent"), "Grandparent", "parent"))
        elif fam == "guardian":
            g = rng.choice("FM")
            contacts.append((self._new_contact(hh, g, rng.choice(pool_last), "parent"), "Guardian", "parent"))
        else:
            g = rng.choice("FM")
            rel = "Mother" if g == "F" else "Father"
            contacts.append((self._new_contact(hh, g, kid_last, "parent"), rel, "parent"))
            contacts.append((self._new_contact(hh, g, rng.choice(pool_last), "parent"), rel, "parent"))

        # ---- extra (emergency) contacts, some reused or duplicated from other households ----
        r = rng.random()
        if len(contacts) < 4 and self.parent_ids and r < 0.03:
            src = self.person_by_id[rng.choice(self.parent_ids)]
            contacts.append((self._duplicate_of(src), "Other", "extra"))
        elif len(contacts) < 4 and self.parent_ids and r < 0.07:
            contacts.append((self.person_by_id[rng.choice(self.parent_ids)], "Other", "extra"))
        elif len(contacts) < 4 and r < 0.35:
            rel = rng.choice(["Grandparent", "Grandparent", "Aunt", "Uncle", "Other", "Sibling"])
            g = {"Aunt": "F", "Uncle": "M"}.get(rel, rng.choice("FM"))
            last = rng.choice([p_last, m_last, rng.choice(pool_last)])
            contacts.append((self._new_contact(hh, g, last, "extra"), rel, "extra"))
        if len(contacts) < 3 and rng.random() < 0.12:
            rel = rng.choice(["Grandparent", "Aunt", "Uncle", "Other"])
            g = {"Aunt": "F", "Uncle": "M"}.get(rel, rng.choice("FM"))
            contacts.append((self._new_contact(hh, g, rng.choice(pool_last), "extra"), rel, "extra"))
        # ---- stale links: expired last ----
        if len(contacts) < 4 and rng.random() < 0.09:
            rel = rng.choice(["Stepfather", "Stepmother", "Other", "Guardian", "Grandparent"])
            g = {"Stepfather": "M", "Stepmother": "F"}.get(rel, rng.choice("FM"))
            contacts.append((self._new_contact(hh, g, rng.choice(pool_last), "extra"), rel, "expired"))
        # orphan duplicate: the same parent entered again years ago, linked to nobody
        if rng.random() < 0.01:
            self._duplicate_of(contacts[0][0])

        for p, _rel, kind in contacts:
            if kind == "parent":
                self.parent_ids.append(p["id"])

        # ---- portal account for one parent ----
        portal_pid = None
        if rng.random() < 0.15:
            p = contacts[0][0]
            ems = self.person_emails[p["id"]]
            if ems and contacts[0][2] == "parent":
                base = ascii_fold(p["first_name"][0] + p["last_name"]).lower()
                base = "".join(ch for ch in base if ch.isalnum())
                uname, k = base, 1
                while uname in self.used_usernames:
                    k += 1
                    uname = f"{base}{k}"
                self.used_usernames.add(uname)
                self.accounts.append({"id": len(self.accounts) + 1, "username": uname,
                                      "email": ems[0]["address"].lower(), "enabled": rng.random() < 0.95,
                                      "person_id": p["id"]})
                portal_pid = p["id"]

        # ---- students ----
        grades = rng.sample(range(0, 13), size)
        twins = size >= 2 and rng.random() < 0.05
        if twins:
            grades[1] = grades[0]
        home_phone = hh["landline"] or phone_digits(self.person_phones[contacts[0][0]["id"]][0]["number"])
        home_phone_fmt = format_phone(home_phone, rng.choice(PS_PHONE_STYLES))
        mailing = rng.random() < 0.08
        mailing_street = f"PO Box {rng.randint(10, 9999)}" if mailing else ""
        first_dob = None
        # per-contact detail flags: identical for every sibling
        contact_flags = []
        for _p, rel, kind in contacts:
            parent = kind == "parent"
            flags = {"custodial": parent, "emergency": True, "lives_with": parent,
                     "school_pickup": parent or rng.random() < 0.5, "receives_mail": parent}
            note = "Family friend" if rel == "Other" and rng.random() < 0.5 else ""
            contact_flags.append((flags, note, rel in ("Stepfather", "Stepmother") and kind == "parent"
                                  and rng.random() < 0.4))
        expired_end = date(2025, rng.randint(1, 12), rng.randint(1, 28)).isoformat()
        for i, grade in enumerate(grades):
            dcid = len(self.students) + 1
            g = rng.choice("FM")
            first = self._first(g)
            middle = ""
            if rng.random() < 0.5:
                middle = self._first(g)
            # kindergarten of 2026-27: born 2020-09-02 .. 2021-09-01
            start = date(2020 - grade, 9, 2)
            dob = start + timedelta(days=rng.randrange(365))
            if twins and i == 1:
                dob = first_dob
            first_dob = first_dob or dob
            street = hh["street"] + (f" {hh['unit']}" if hh["unit"] else "")
            self.students.append({
                "dcid": dcid, "id": dcid, "student_number": str(100000 + dcid), "first_name": first,
                "middle_name": middle, "last_name": kid_last, "gender": g, "dob": dob.isoformat(),
                "grade_level": grade, "school_id": 100 if grade <= 5 else (200 if grade <= 8 else 300),
                "family_ident": hh["family_ident"], "street": street, "city": hh["city"], "state": "CA",
                "zip": hh["zip"], "mailing_street": mailing_street,
                "mailing_city": hh["city"] if mailing else "", "mailing_state": "CA" if mailing else "",
                "mailing_zip": hh["zip"] if mailing else "", "home_phone": home_phone_fmt})
            if rng.random() < 0.92:
                pref_first = ""
                if rng.random() < 0.06:
                    pref_first = rng.choice(NICKNAMES[first]) if first in NICKNAMES else self._first(g)
                pref_last = p_last if kid_last != p_last and rng.random() < 0.2 else ""
                self.ext.append({"id": len(self.ext) + 1, "studentsdcid": dcid, "pref_first_name": pref_first,
                                 "pref_last_name": pref_last, "photo_release": "1" if rng.random() < 0.85 else "0"})
            enrolled = max(dob + timedelta(days=5 * 365 + 200), date(2012, 8, 15))
            # never later than the reference school year: a link cannot start in the future
            enrolled = date(min(enrolled.year, 2026), 8, rng.randint(10, 25))
            enrolled = min(enrolled, date(2026, 8, 1)).isoformat()
            for seq, (p, rel, kind) in enumerate(contacts, start=1):
                link_id = LINK_ID_BASE + len(self.links)
                self.links.append({"id": link_id, "person_id": p["id"], "student_dcid": dcid, "sequence": seq,
                                   "can_access_data": p["id"] == portal_pid})
                flags, note, history = contact_flags[seq - 1]
                if kind == "expired":
                    self._detail(link_id, rel, flags, min(enrolled, "2023-08-15"), expired_end, note)
                elif history:
                    # was "Other" before becoming a stepparent: two non-overlapping details
                    self._detail(link_id, "Other", flags, "2016-08-15", "2019-06-30")
                    self._detail(link_id, rel, flags, "2019-07-01", "", note)
                else:
                    self._detail(link_id, rel, flags, enrolled, "", note)

    def _detail(self, link_id, rel, flags, start, end, note=""):
        self.details.append({"id": len(self.details) + 1, "link_id": link_id, "relationship": rel,
                             "relationship_note": note, **flags, "start_date": start, "end_date": end})

    def build(self) -> dict:
        rng = self.rng
        hh_no = 0
        while len(self.students) < self.n:
            hh_no += 1
            size = rng.choices([1, 2, 3, 4], weights=[45, 33, 16, 6])[0]
            self._household(hh_no, min(size, self.n - len(self.students)))
        return {
            "district": {"name": "Sandbox Unified", "region": "US", "state": "CA", "seed": self.seed},
            "students": self.students,
            "extensions": {"u_students_extension": self.ext},
            "persons": self.persons,
            "emails": self.emails,
            "phones": self.phones,
            "addresses": self.addresses,
            "links": self.links,
            "details": self.details,
            "portal_accounts": self.accounts,
            "codesets": {k: list(v) for k, v in CODESETS.items()},
        }


def build_district(students: int, seed: int) -> dict:
    """district.json content for a synthetic district of `students` students (deterministic per seed)."""
    return _Builder(students, seed).build()


def is_expired(details_of_link: list[dict], today: str = REFERENCE_DATE) -> bool:
    latest = max(details_of_link, key=lambda d: (d["start_date"], d["id"]))
    return bool(latest["end_date"]) and latest["end_date"] < today
