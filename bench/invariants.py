"""Invariants of a writeback run, checked against PowerSchool's real state (the fault campaign's oracle).

    violations = check(initial, ops, ledger, final, audit=..., external=...)

- `initial`: the district as the generator wrote it (`district.json`, a dict).
- `ops`: the approved plan's write operations (`WriteOp`s or their dicts; `stages.approved_ops(ctx)[0]`).
- `ledger`: op key -> `{"status", "error", "result_id"}` (or the store's `LedgerRow`s).
- `final`: PowerSchool's final state as raw PowerQuery exports, entity -> rows
  (`students`, `contacts`, `emails`, `phones`, `addresses`, `links`), read over HTTP, not through our client.
- `audit` (optional): op key -> the responses of its audit rows; a change PowerSchool shows whose op was
  audited only as `noop` is a write rollback would miss.
- `external` (optional): changes the harness itself made behind the pipeline's back (a registrar editing
  PowerSchool between snapshot and apply): `{("student", dcid, column): value}`. They explain a difference,
  and they must survive (a stale write is never written over them).

Checks (each violation is one line, `kind: detail`; an empty list means the run kept every invariant):
- `lost`: an approved op whose intended value is not in the final state and whose ledger row does not record
  a failure (status failed/stale/skipped_by_reviewer/pending *with* an error).
- `duplicate`: two new persons for one `contact_create` key; a phone number (digits) or an email (casefold)
  present more often on a person than before; two links between one person and one student.
- `outside_plan`: a difference between the initial and the final state that no approved op explains (per
  student column, per person names, phones, emails, addresses, links, details, access and sequences), or
  one an op explains but with a value the op did not mean to write.
- `unrecorded`: a ledger row that is not `done` and has no error.
- `unaudited`: PowerSchool changed as an op intended, but that op is not `done` or was audited only as a
  no-op: the write is not in the audit, so a rollback would not undo it.
- `overwritten`: a harness change (`external`) no longer holds: a stale write was written over it.
- `sequence`: a student whose contact order does not read 1..n without gaps.

The parsing here is deliberately separate from the pipeline's snapshot reader, so a bug there is not
shared by the oracle.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

STUDENT_KEY_COLUMNS = {"school_id": "students.schoolid"}
SKIP_STUDENT_KEYS = {"id", "dcid"}


def digits(value: Any) -> str:
    return "".join(ch for ch in str(value or "") if ch.isdigit())


def _b(value: Any) -> str:
    """Booleans the way PowerQuery answers them."""
    if isinstance(value, bool):
        return "1" if value else "0"
    if value is None:
        return ""
    text = str(value).strip().lower()
    if text in {"true", "yes", "1"}:
        return "1"
    if text in {"false", "no", "0", ""}:
        return "0"
    return str(value)


def _s(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "1" if value else "0"
    return str(value)


# ---------------------------------------------------------------- state


@dataclass
class State:
    """PowerSchool's state, normalised: one dict of facts per entity, keyed by PowerSchool's ids."""

    students: dict[int, dict[str, str]] = field(default_factory=dict)  # dcid -> export column -> value
    persons: dict[int, dict[str, str]] = field(default_factory=dict)  # id -> first/middle/last
    phones: dict[int, dict[str, Any]] = field(default_factory=dict)
    emails: dict[int, dict[str, Any]] = field(default_factory=dict)
    addresses: dict[int, dict[str, Any]] = field(default_factory=dict)
    links: dict[int, dict[str, Any]] = field(default_factory=dict)
    details: dict[int, dict[str, Any]] = field(default_factory=dict)

    @classmethod
    def from_exports(cls, exports: Mapping[str, Iterable[dict]]) -> State:
        st = cls()
        for r in exports.get("students", []):
            st.students[int(r["students.dcid"])] = {k: _s(v) for k, v in r.items() if k != "students.dcid"}
        for r in exports.get("contacts", []):
            st.persons[int(r["person.id"])] = {"first_name": _s(r.get("person.firstname")),
                                               "middle_name": _s(r.get("person.middlename")),
                                               "last_name": _s(r.get("person.lastname"))}
        for r in exports.get("phones", []):
            st.phones[int(r["phonenumber.phonenumberid"])] = {
                "person": int(r["personphonenumberassoc.personid"]), "digits": digits(r.get("phonenumber.phonenumber")),
                "extension": _s(r.get("phonenumber.phonenumberext")), "type": _s(r.get("personphonenumberassoc.phonetype")),
                "preferred": _b(r.get("personphonenumberassoc.ispreferred")), "sms": _b(r.get("phonenumber.issms")),
                "sequence": _s(r.get("personphonenumberassoc.phonenumberpriorityorder"))}
        for r in exports.get("emails", []):
            st.emails[int(r["emailaddress.emailaddressid"])] = {
                "person": int(r["personemailaddressassoc.personid"]),
                "address": _s(r.get("emailaddress.emailaddress")).casefold(),
                "type": _s(r.get("personemailaddressassoc.emailtype")),
                "primary": _b(r.get("personemailaddressassoc.isprimaryemailaddress"))}
        for r in exports.get("addresses", []):
            st.addresses[int(r["personaddress.personaddressid"])] = {
                "person": int(r["personaddressassoc.personid"]), "type": _s(r.get("personaddressassoc.addresstype")),
                **{k: _s(r.get(f"personaddress.{c}")) for k, c in (("street", "street"), ("linetwo", "linetwo"),
                                                                   ("unit", "unit"), ("city", "city"),
                                                                   ("state", "state"), ("postal_code", "postalcode"),
                                                                   ("country", "country"))},
                "start_date": _s(r.get("personaddressassoc.startdate")),
                "end_date": _s(r.get("personaddressassoc.enddate"))}
        for r in exports.get("links", []):
            lid = int(r["studentcontactassoc.studentcontactassocid"])
            st.links[lid] = {"person": int(r["studentcontactassoc.personid"]),
                             "dcid": int(r["studentcontactassoc.studentdcid"]),
                             "sequence": int(_s(r.get("studentcontactassoc.contactpriorityorder")) or 0),
                             "access": _b(r.get("studentcontactassoc.canaccessdata"))}
            if _s(r.get("studentcontactdetail.studentcontactdetailid")):
                st.details[int(r["studentcontactdetail.studentcontactdetailid"])] = {
                    "link": lid, "relationship": _s(r.get("studentcontactdetail.relationshiptype")),
                    "relationship_note": _s(r.get("studentcontactdetail.relationshipnote")),
                    "custodial": _b(r.get("studentcontactdetail.iscustodial")),
                    "emergency": _b(r.get("studentcontactdetail.isemergency")),
                    "lives_with": _b(r.get("studentcontactdetail.liveswithflg")),
                    "school_pickup": _b(r.get("studentcontactdetail.schoolpickupflg")),
                    "receives_mail": _b(r.get("studentcontactdetail.receivesmailflg")),
                    "start_date": _s(r.get("studentcontactdetail.startdate")),
                    "end_date": _s(r.get("studentcontactdetail.enddate"))}
        return st

    @classmethod
    def from_district(cls, district: Mapping[str, Any]) -> State:
        """The generator's district.json in the same shape (student columns named as PowerQuery names them)."""
        exports: dict[str, list[dict]] = defaultdict(list)
        ext_by_dcid: dict[int, dict[str, str]] = defaultdict(dict)
        for table, rows in (district.get("extensions") or {}).items():
            for row in rows:
                for k, v in row.items():
                    if k not in {"id", "studentsdcid"}:
                        ext_by_dcid[int(row["studentsdcid"])][f"{table}.{k}"] = _s(v)
        for s in district.get("students", []):
            row = {"students.dcid": s["dcid"]}
            row.update({STUDENT_KEY_COLUMNS.get(k, f"students.{k}"): _s(v) for k, v in s.items()
                        if k not in SKIP_STUDENT_KEYS})
            row.update(ext_by_dcid.get(int(s["dcid"]), {}))
            exports["students"].append(row)
        for p in district.get("persons", []):
            exports["contacts"].append({"person.id": p["id"], "person.firstname": p.get("first_name"),
                                        "person.middlename": p.get("middle_name"), "person.lastname": p.get("last_name")})
        for p in district.get("phones", []):
            exports["phones"].append({"phonenumber.phonenumberid": p["id"], "personphonenumberassoc.personid": p["person_id"],
                                      "phonenumber.phonenumber": p.get("number"),
                                      "phonenumber.phonenumberext": p.get("extension"),
                                      "personphonenumberassoc.phonetype": p.get("type"),
                                      "personphonenumberassoc.ispreferred": p.get("preferred"),
                                      "phonenumber.issms": p.get("sms"),
                                      "personphonenumberassoc.phonenumberpriorityorder": p.get("sequence")})
        for e in district.get("emails", []):
            exports["emails"].append({"emailaddress.emailaddressid": e["id"], "personemailaddressassoc.personid": e["person_id"],
                                      "emailaddress.emailaddress": e.get("address"),
                                      "personemailaddressassoc.emailtype": e.get("type"),
                                      "personemailaddressassoc.isprimaryemailaddress": e.get("primary")})
        for a in district.get("addresses", []):
            exports["addresses"].append({"personaddress.personaddressid": a["id"], "personaddressassoc.personid": a["person_id"],
                                         "personaddressassoc.addresstype": a.get("type"),
                                         **{f"personaddress.{c}": a.get(k) for k, c in (
                                             ("street", "street"), ("linetwo", "linetwo"), ("unit", "unit"),
                                             ("city", "city"), ("state", "state"), ("postal_code", "postalcode"),
                                             ("country", "country"))},
                                         "personaddressassoc.startdate": a.get("start_date"),
                                         "personaddressassoc.enddate": a.get("end_date")})
        details_by_link: dict[int, list[dict]] = defaultdict(list)
        for d in district.get("details", []):
            details_by_link[int(d["link_id"])].append(d)
        for lk in district.get("links", []):
            base = {"studentcontactassoc.studentcontactassocid": lk["id"], "studentcontactassoc.personid": lk["person_id"],
                    "studentcontactassoc.studentdcid": lk["student_dcid"],
                    "studentcontactassoc.contactpriorityorder": lk.get("sequence"),
                    "studentcontactassoc.canaccessdata": lk.get("can_access_data")}
            for d in details_by_link.get(int(lk["id"]), []) or [{}]:
                row = dict(base)
                if d:
                    row.update({"studentcontactdetail.studentcontactdetailid": d["id"],
                                "studentcontactdetail.relationshiptype": d.get("relationship"),
                                "studentcontactdetail.relationshipnote": d.get("relationship_note"),
                                "studentcontactdetail.iscustodial": d.get("custodial"),
                                "studentcontactdetail.isemergency": d.get("emergency"),
                                "studentcontactdetail.liveswithflg": d.get("lives_with"),
                                "studentcontactdetail.schoolpickupflg": d.get("school_pickup"),
                                "studentcontactdetail.receivesmailflg": d.get("receives_mail"),
                                "studentcontactdetail.startdate": d.get("start_date"),
                                "studentcontactdetail.enddate": d.get("end_date")})
                exports["links"].append(row)
        return cls.from_exports(exports)

    def link_of(self, person: int, dcid: int) -> list[int]:
        return [lid for lid, lk in self.links.items() if lk["person"] == person and lk["dcid"] == dcid]

    def latest_detail(self, link_id: int) -> tuple[int, dict] | None:
        ds = [(did, d) for did, d in self.details.items() if d["link"] == link_id]
        return max(ds, key=lambda p: (p[1]["start_date"], p[0])) if ds else None


# ---------------------------------------------------------------- inputs


def _op(op: Any) -> dict[str, Any]:
    if hasattr(op, "model_dump"):
        return op.model_dump(mode="json")
    return dict(op)


def _ledger(ledger: Mapping[str, Any]) -> dict[str, dict[str, Any]]:
    out = {}
    for key, row in ledger.items():
        if isinstance(row, Mapping):
            out[key] = {"status": row.get("status", ""), "error": row.get("error") or "",
                        "result_id": row.get("result_id")}
        else:
            out[key] = {"status": row.status, "error": row.error or "", "result_id": row.result_id}
    return out


def student_column(target: str) -> str:
    """The PowerQuery column of a mapping target (same rule as `writeback.domain.targets`)."""
    from writeback.domain.targets import student_target

    t = student_target(target)
    if t is None:
        raise ValueError(f"unknown student target {target!r}")
    return t.snapshot_column


# ---------------------------------------------------------------- the check


def check(initial: Mapping[str, Any] | State, ops: Iterable[Any], ledger: Mapping[str, Any],
          final: Mapping[str, Iterable[dict]] | State, *, audit: Mapping[str, list[str]] | None = None,
          external: Mapping[tuple, str] | None = None) -> list[str]:
    before = initial if isinstance(initial, State) else State.from_district(initial)
    after = final if isinstance(final, State) else State.from_exports(final)
    return _Checker(before, after, [_op(o) for o in ops], _ledger(ledger), audit, dict(external or {})).run()


class _Checker:
    def __init__(self, before: State, after: State, ops: list[dict], ledger: dict[str, dict], audit, external):
        self.b, self.a, self.ops, self.ledger, self.audit, self.external = before, after, ops, ledger, audit, external
        self.v: list[str] = []
        self.new_persons = sorted(set(after.persons) - set(before.persons))
        self.creates = [o for o in ops if o["kind"] == "contact_create"]
        self.person_of_key: dict[str, int | None] = {}
        self._resolve_creates()
        self.changed_facts: list[list[str]] = []  # per changed fact: the op keys that explain it

    # -------------------------------------------------------- helpers
    def add(self, kind: str, detail: str) -> None:
        self.v.append(f"{kind}: {detail}")

    def _resolve_creates(self) -> None:
        by_name: dict[tuple[str, str], list[int]] = defaultdict(list)
        for pid in self.new_persons:
            p = self.a.persons[pid]
            by_name[(p["first_name"].casefold(), p["last_name"].casefold())].append(pid)
        for op in self.creates:
            key = op["key"].split(":", 1)[1]
            row = self.ledger.get(op["key"])
            if row and row["status"] == "done" and row["result_id"]:
                self.person_of_key[key] = int(row["result_id"])
                continue
            name = (str(op["values"].get("first_name", "")).casefold(), str(op["values"].get("last_name", "")).casefold())
            found = by_name.get(name, [])
            self.person_of_key[key] = found[0] if len(found) == 1 else None

    def pid(self, ref: str | None) -> int | None:
        kind, _, value = (ref or "").partition(":")
        if kind == "p":
            return int(value)
        if kind == "new":
            return self.person_of_key.get(value)
        return None

    def status(self, op: dict) -> str:
        return (self.ledger.get(op["key"]) or {}).get("status", "")

    def explain(self, *ops: dict) -> None:
        """These ops (any one of them) explain one changed fact."""
        if ops:
            self.changed_facts.append([o["key"] for o in ops])

    # -------------------------------------------------------- run
    def run(self) -> list[str]:
        self.check_ledger_recorded()
        self.check_persons()
        self.check_students()
        self.check_children("phones", "phone", self.explain_phone)
        self.check_children("emails", "email", self.explain_email)
        self.check_children("addresses", "address", self.explain_address)
        self.check_links()
        self.check_duplicates()
        self.check_ops_landed()
        self.check_external()
        self.check_audited()
        return self.v

    def check_ledger_recorded(self) -> None:
        for key, row in sorted(self.ledger.items()):
            if row["status"] != "done" and not row["error"]:
                self.add("unrecorded", f"ledger row {key} is {row['status'] or 'missing a status'} without an error")

    # -------------------------------------------------------- persons
    def check_persons(self) -> None:
        for pid in sorted(set(self.b.persons) - set(self.a.persons)):
            self.add("outside_plan", f"person {pid} was deleted")
        claimed: dict[int, str] = {}
        for key, pid in self.person_of_key.items():
            if pid is not None:
                claimed[pid] = key
        creates_by_name: dict[tuple[str, str], list[str]] = defaultdict(list)
        for op in self.creates:
            creates_by_name[(str(op["values"].get("first_name", "")).casefold(),
                             str(op["values"].get("last_name", "")).casefold())].append(op["key"])
        for pid in self.new_persons:
            p = self.a.persons[pid]
            name = (p["first_name"].casefold(), p["last_name"].casefold())
            if pid in claimed:
                self.explain({"key": f"create:{claimed[pid]}"})
                continue
            keys = creates_by_name.get(name, [])
            if keys:
                self.add("duplicate", f"person {pid} is a second person for {', '.join(keys)} "
                                      f"(created as {[self.person_of_key.get(k.split(':', 1)[1]) for k in keys]})")
            else:
                self.add("outside_plan", f"person {pid} was created by no contact_create op")
        renames = defaultdict(list)
        for op in self.ops:
            if op["kind"] == "contact_name":
                renames[self.pid(op["person_ref"])].append(op)
        for pid in sorted(set(self.b.persons) & set(self.a.persons)):
            for f, old in self.b.persons[pid].items():
                new = self.a.persons[pid][f]
                if new == old:
                    continue
                ops = [o for o in renames.get(pid, []) if f in o["values"]]
                if ops and any(_s(o["values"][f]) == new for o in ops):
                    self.explain(*ops)
                elif not self._external_ok(("person", pid, f), new):
                    self.add("outside_plan", f"person {pid} {f}: {old!r} -> {new!r}"
                             + (f" (the plan wrote {[o['values'][f] for o in ops]!r})" if ops else ""))

    # -------------------------------------------------------- students
    def check_students(self) -> None:
        by_dcid: dict[int, list[dict]] = defaultdict(list)
        for op in self.ops:
            if op["kind"] == "student_update":
                by_dcid[int(op["student_dcid"])].append(op)
        for dcid in sorted(set(self.b.students) - set(self.a.students)):
            self.add("outside_plan", f"student {dcid} disappeared")
        for dcid in sorted(set(self.a.students) - set(self.b.students)):
            self.add("outside_plan", f"student {dcid} appeared")
        for dcid in sorted(set(self.a.students) & set(self.b.students)):
            old_row, new_row = self.b.students[dcid], self.a.students[dcid]
            for col, new in new_row.items():
                if col not in old_row or old_row[col] == new:
                    continue
                intended = [(o, _s(v)) for o in by_dcid.get(dcid, []) for t, v in o["values"].items()
                            if student_column(t) == col]
                if any(v == new for _, v in intended):
                    self.explain(*(o for o, _ in intended))
                elif not self._external_ok(("student", dcid, col), new):
                    self.add("outside_plan", f"student {dcid} {col}: {old_row[col]!r} -> {new!r}"
                             + (f" (the plan wrote {[v for _, v in intended]!r})" if intended else ""))

    def _external_ok(self, key: tuple, value: str) -> bool:
        return key in self.external and _s(self.external[key]) == value

    # -------------------------------------------------------- phones, emails, addresses
    def _ops_on(self, kinds: set[str], pid: int) -> list[dict]:
        return [o for o in self.ops if o["kind"] in kinds and self.pid(o["person_ref"]) == pid]

    def check_children(self, attr: str, label: str, explain_one) -> None:
        b, a = getattr(self.b, attr), getattr(self.a, attr)
        for cid in sorted(set(b) - set(a)):
            removals = [o for o in self._ops_on({f"{label}_delete"}, b[cid]["person"]) if o.get("target_id") == cid]
            if removals:
                self.explain(*removals)
            else:
                self.add("outside_plan", f"{label} {cid} of person {b[cid]['person']} was deleted")
        for cid in sorted(set(a) - set(b)):
            problem = explain_one(cid, None, a[cid])
            if problem:
                self.add("outside_plan", f"{label} {cid} added to person {a[cid]['person']}: {problem}")
        for cid in sorted(set(a) & set(b)):
            if a[cid] != b[cid]:
                problem = explain_one(cid, b[cid], a[cid])
                if problem:
                    diff = {k: (b[cid].get(k), v) for k, v in a[cid].items() if b[cid].get(k) != v}
                    self.add("outside_plan", f"{label} {cid} of person {a[cid]['person']} changed {diff}: {problem}")

    def explain_phone(self, cid: int, old: dict | None, new: dict) -> str:
        pid = new["person"]
        if old is None:
            ops = [o for o in self._ops_on({"phone_add"}, pid) if digits(o["values"].get("number")) == new["digits"]]
            if not ops:
                return "no phone_add op for this number"
            self.explain(ops[0])
            return ""
        if old["person"] != pid:
            return "moved to another person"
        problems = []
        updates = [o for o in self._ops_on({"phone_update"}, pid) if o.get("target_id") == cid]
        for f in ("digits", "extension", "type"):
            if old[f] == new[f]:
                continue
            src = {"digits": "number", "extension": "extension", "type": "type"}[f]
            vals = [(o, digits(o["values"][src]) if f == "digits" else _s(o["values"][src])) for o in updates
                    if src in o["values"]]
            if any(v == new[f] for _, v in vals):
                self.explain(*(o for o, _ in vals))
            else:
                problems.append(f"{f} {old[f]!r} -> {new[f]!r} by no op")
        if any(old[f] != new[f] for f in ("preferred", "sms", "sequence")) and not self._ops_on(
                {"phone_add", "phone_update"}, pid):
            problems.append("flags/sequence changed with no phone op on the person")
        return "; ".join(problems)

    def explain_email(self, cid: int, old: dict | None, new: dict) -> str:
        pid = new["person"]
        if old is None:
            ops = [o for o in self._ops_on({"email_add"}, pid)
                   if str(o["values"].get("address", "")).casefold() == new["address"]]
            if not ops:
                return "no email_add op for this address"
            self.explain(ops[0])
            return ""
        problems = []
        if old["address"] != new["address"]:
            ops = [o for o in self._ops_on({"email_update"}, pid) if o.get("target_id") == cid]
            if any(str(o["values"].get("address", "")).casefold() == new["address"] for o in ops):
                self.explain(*ops)
            else:
                problems.append(f"address changed by no op (plan: {[o['values'] for o in ops]})")
        if (old["primary"] != new["primary"] or old["type"] != new["type"]) and not self._ops_on(
                {"email_add", "email_update"}, pid):
            problems.append("primary/type changed with no email op on the person")
        return "; ".join(problems)

    def explain_address(self, cid: int, old: dict | None, new: dict) -> str:
        pid = new["person"]
        keys = ("street", "city", "state", "postal_code")
        if old is None:
            ops = [o for o in self._ops_on({"address_add"}, pid)
                   if all(_s(o["values"].get(k)) == new[k] for k in keys) and _s(o["values"].get("type")) == new["type"]]
            if not ops:
                return "no address_add op for this address"
            self.explain(ops[0])
            return ""
        ops = [o for o in self._ops_on({"address_update"}, pid) if o.get("target_id") == cid]
        if any(old[k] != new[k] for k in keys):
            if any(all(_s(o["values"].get(k)) == new[k] for k in keys) for o in ops):
                self.explain(*ops)
            else:
                return f"changed by no op (plan: {[o['values'] for o in ops]})"
        if any(old[k] != new[k] for k in new if k not in keys) and not ops:
            return "changed with no address op on it"
        return ""

    # -------------------------------------------------------- links, details, order
    def check_links(self) -> None:
        b, a = self.b, self.a
        link_ops = [o for o in self.ops if o["kind"] in {"link_add", "link_delete", "link_expire", "detail_update",
                                                         "data_access", "contact_order"}]
        touched_students = {int(o["student_dcid"]) for o in link_ops if o.get("student_dcid") is not None}
        for lid in sorted(set(b.links) - set(a.links)):
            ops = [o for o in link_ops if o["kind"] == "link_delete" and o.get("target_id") == lid]
            if ops:
                self.explain(ops[0])
            else:
                self.add("outside_plan", f"link {lid} (person {b.links[lid]['person']}, student "
                                         f"{b.links[lid]['dcid']}) was deleted by no op")
        for lid in sorted(set(a.links) - set(b.links)):
            lk = a.links[lid]
            ops = [o for o in link_ops if o["kind"] == "link_add" and int(o["student_dcid"]) == lk["dcid"]
                   and self.pid(o["person_ref"]) == lk["person"]]
            if ops:
                self.explain(ops[0])
            else:
                self.add("outside_plan", f"link {lid} (person {lk['person']}, student {lk['dcid']}) made by no op")
        for lid in sorted(set(a.links) & set(b.links)):
            old, new = b.links[lid], a.links[lid]
            if (old["person"], old["dcid"]) != (new["person"], new["dcid"]):
                self.add("outside_plan", f"link {lid} now joins person {new['person']} and student {new['dcid']}")
            if old["access"] != new["access"]:
                ops = [o for o in link_ops if o["kind"] == "data_access" and int(o["student_dcid"]) == new["dcid"]
                       and self.pid(o["person_ref"]) == new["person"]]
                if ops and new["access"] == "1":
                    self.explain(ops[0])
                else:
                    self.add("outside_plan", f"link {lid} Data Access {old['access']} -> {new['access']} by no op")
            if old["sequence"] != new["sequence"]:
                ops = [o for o in link_ops if o["kind"] in {"contact_order", "link_add", "link_delete"}
                       and int(o["student_dcid"]) == new["dcid"]]
                if ops:
                    if not any(o["kind"] == "link_delete" for o in ops):
                        self.explain(*(o for o in ops if o["kind"] == "contact_order"))
                else:
                    self.add("outside_plan", f"link {lid} sequence {old['sequence']} -> {new['sequence']} by no op")
        # details
        for did in sorted(set(b.details) - set(a.details)):
            if b.details[did]["link"] in a.links:
                self.add("outside_plan", f"detail {did} of link {b.details[did]['link']} was deleted")
        for did in sorted(set(a.details) - set(b.details)):
            if a.details[did]["link"] in b.links:
                self.add("outside_plan", f"detail {did} added to existing link {a.details[did]['link']}")
        for did in sorted(set(a.details) & set(b.details)):
            old, new = b.details[did], a.details[did]
            if old == new:
                continue
            lid = new["link"]
            problems = []
            for f, v in new.items():
                if old.get(f) == v:
                    continue
                if f == "end_date":
                    ops = [o for o in link_ops if o["kind"] == "link_expire" and o.get("target_id") == lid
                           and _s(o["values"].get("end_date")) == v]
                else:
                    ops = [o for o in link_ops if o["kind"] == "detail_update" and o.get("target_id") == did
                           and f in o["values"] and (_s(o["values"][f]) if f == "relationship" else _b(o["values"][f])) == v]
                if ops:
                    self.explain(ops[0])
                else:
                    problems.append(f"{f} {old.get(f)!r} -> {v!r}")
            if problems:
                self.add("outside_plan", f"detail {did} of link {lid}: {', '.join(problems)} by no op")
        # sequences 1..n per student whose links the run touched (and that read 1..n before)
        for dcid in sorted(touched_students):
            seqs_before = sorted(lk["sequence"] for lk in b.links.values() if lk["dcid"] == dcid)
            seqs = sorted(lk["sequence"] for lk in a.links.values() if lk["dcid"] == dcid)
            if seqs_before == list(range(1, len(seqs_before) + 1)) and seqs != list(range(1, len(seqs) + 1)):
                self.add("sequence", f"student {dcid} contact order reads {seqs}, not 1..{len(seqs)}")

    # -------------------------------------------------------- duplicates
    def check_duplicates(self) -> None:
        for attr, key, label in (("phones", "digits", "phone number"), ("emails", "address", "email")):
            count_b = Counter((c["person"], c[key]) for c in getattr(self.b, attr).values())
            count_a = Counter((c["person"], c[key]) for c in getattr(self.a, attr).values())
            for (pid, value), n in sorted(count_a.items(), key=lambda p: str(p[0])):
                if n > max(1, count_b.get((pid, value), 0)):
                    self.add("duplicate", f"person {pid} has {label} {value!r} {n} times "
                                          f"(before: {count_b.get((pid, value), 0)})")
        pairs_b = Counter((lk["person"], lk["dcid"]) for lk in self.b.links.values())
        pairs_a = Counter((lk["person"], lk["dcid"]) for lk in self.a.links.values())
        for pair, n in sorted(pairs_a.items()):
            if n > max(1, pairs_b.get(pair, 0)):
                self.add("duplicate", f"person {pair[0]} is linked to student {pair[1]} {n} times")

    # -------------------------------------------------------- lost writes
    def check_ops_landed(self) -> None:
        for op in self.ops:
            row = self.ledger.get(op["key"])
            status = row["status"] if row else ""
            if status in {"failed", "stale", "skipped_by_reviewer", "pending"} and row["error"]:
                continue  # recorded: the report lists it, nothing is lost silently
            if status != "done":
                self.add("lost", f"{op['key']} is {status or 'not in the ledger'}"
                                 + ("" if status else " (never attempted)"))
                continue
            problem = self.landed(op)
            if problem:
                self.add("lost", f"{op['key']} is done in the ledger but {problem}")

    def landed(self, op: dict) -> str:
        a, kind, v = self.a, op["kind"], op["values"]
        pid = self.pid(op.get("person_ref"))
        if kind == "student_update":
            row = a.students.get(int(op["student_dcid"]), {})
            wrong = {t: (val, row.get(student_column(t))) for t, val in v.items() if _s(val) != row.get(student_column(t))}
            return f"PowerSchool holds {wrong}" if wrong else ""
        if pid is None and kind != "contact_order":
            return f"its person {op.get('person_ref')} cannot be found"
        if kind in {"contact_create", "contact_name"}:
            person = a.persons.get(pid)
            if person is None:
                return f"person {pid} does not exist"
            wrong = {k: (val, person.get(k)) for k, val in v.items() if k in person and _s(val) != person[k]}
            return f"person {pid} holds {wrong}" if wrong else ""
        if kind == "phone_add":
            return "" if any(c["person"] == pid and c["digits"] == digits(v["number"]) for c in a.phones.values()) \
                else f"person {pid} has no phone {digits(v['number'])}"
        if kind == "phone_update":
            c = a.phones.get(op.get("target_id"))
            if c is None:
                return f"phone {op.get('target_id')} is gone"
            wrong = []
            if "number" in v and c["digits"] != digits(v["number"]):
                wrong.append(f"number {c['digits']} != {digits(v['number'])}")
            if "type" in v and c["type"] != v["type"]:
                wrong.append(f"type {c['type']} != {v['type']}")
            return "; ".join(wrong)
        if kind == "email_add":
            return "" if any(c["person"] == pid and c["address"] == str(v["address"]).casefold()
                             for c in a.emails.values()) else f"person {pid} has no email {v['address']!r}"
        if kind == "email_update":
            c = a.emails.get(op.get("target_id"))
            return "" if c and c["address"] == str(v["address"]).casefold() else f"email {op.get('target_id')} is {c}"
        if kind in {"address_add", "address_update"}:
            keys = ("street", "city", "state", "postal_code")
            pool = [a.addresses.get(op.get("target_id"))] if kind == "address_update" else \
                [c for c in a.addresses.values() if c["person"] == pid]
            return "" if any(c and all(c[k] == _s(v.get(k)) for k in keys) for c in pool) \
                else f"person {pid} has no address {[v.get(k) for k in keys]}"
        if kind in {"phone_delete", "email_delete", "address_delete"}:
            pool = {"phone_delete": a.phones, "email_delete": a.emails, "address_delete": a.addresses}[kind]
            return f"{kind[:-7]} {op.get('target_id')} is still there" if op.get("target_id") in pool else ""
        if kind == "link_add":
            links = a.link_of(pid, int(op["student_dcid"]))
            return "" if links else f"person {pid} is not linked to student {op['student_dcid']}"
        if kind == "detail_update":
            d = a.details.get(op.get("target_id"))
            if d is None:
                return f"detail {op.get('target_id')} is gone"
            wrong = {k: (val, d.get(k)) for k, val in v.items() if k != "link_id"
                     and (_s(val) if k == "relationship" else _b(val)) != d.get(k)}
            return f"detail holds {wrong}" if wrong else ""
        if kind == "data_access":
            links = a.link_of(pid, int(op["student_dcid"]))
            return "" if any(a.links[lid]["access"] == "1" for lid in links) else "Data Access is off"
        if kind == "link_expire":
            latest = a.latest_detail(op.get("target_id"))
            return "" if latest and latest[1]["end_date"] == v["end_date"] else f"the latest detail is {latest}"
        if kind == "link_delete":
            return f"link {op.get('target_id')} still exists" if op.get("target_id") in a.links else ""
        if kind == "contact_order":
            dcid = int(op["student_dcid"])
            rows = sorted((lk["sequence"], lk["person"]) for lk in a.links.values() if lk["dcid"] == dcid)
            wanted = [self.pid(r) for r in v["order"]]
            present = [p for _, p in rows]
            return "" if present[:len(wanted)] == wanted else f"order reads {present}, wanted {wanted}"
        return f"unknown op kind {kind}"

    # -------------------------------------------------------- harness changes, audit
    def check_external(self) -> None:
        for key, value in self.external.items():
            what, ident, col = key
            now = (self.a.students.get(ident, {}) if what == "student" else self.a.persons.get(ident, {})).get(col)
            if now != _s(value):
                self.add("overwritten", f"{what} {ident} {col} was changed in PowerSchool to {value!r} before apply, "
                                        f"now reads {now!r}")

    def check_audited(self) -> None:
        """Every changed fact needs one explaining op that is done and audited as a write."""
        if self.audit is None:
            return
        reported: set[tuple[str, ...]] = set()
        for keys in self.changed_facts:
            if any(self.status({"key": k}) == "done" and any(
                    not r.startswith(("noop", "skipped_by_reviewer")) for r in self.audit.get(k, [])) for k in keys):
                continue
            group = tuple(sorted(set(keys)))
            if group in reported:
                continue
            reported.add(group)
            states = ", ".join(f"{k} is {self.status({'key': k}) or 'not in the ledger'}, audited as "
                               f"{self.audit.get(k) or 'nothing'}" for k in group)
            self.add("unaudited", f"PowerSchool changed as {states} (a rollback would not undo it)")
