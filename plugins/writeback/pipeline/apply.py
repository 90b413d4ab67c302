"""Execute resolved write operations against PowerSchool: ledgered, conflict-checked, audited.

Each operation is recorded in the ledger before its call and confirmed after it, so a rerun skips
what is done and reads back what may have happened before a crash instead of doing it twice.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from ..domain.models import Snapshot, WriteOp
from ..domain.targets import student_target
from ..powerschool.errors import AmbiguousWriteError, PowerSchoolError
from ..store import Store

log = logging.getLogger(__name__)

RETRYABLE_STATUSES = {0, 408, 429, 500, 502, 503, 504}


class StaleWrite(Exception):
    """PowerSchool changed since the snapshot in something this write touches."""

    def __init__(self, op_key: str, fields: dict[str, tuple[Any, Any]]):
        self.fields = fields  # field -> (snapshot value, current value)
        super().__init__(f"{op_key}: changed in PowerSchool since the snapshot ({', '.join(fields)})")


@dataclass
class ApplyOutcome:
    done: int = 0
    skipped: int = 0  # done in an earlier attempt
    failed: int = 0
    stale: int = 0
    writes: int = 0  # operations that changed something
    http_writes: int = 0  # state-changing HTTP calls PowerSchool accepted
    by_kind: dict[str, int] = field(default_factory=dict)
    failures: list[dict[str, str]] = field(default_factory=list)

    def as_counts(self) -> dict[str, Any]:
        return {"done": self.done, "skipped": self.skipped, "failed": self.failed, "stale": self.stale,
                "writes": self.writes,
                "http_writes": self.http_writes, "by_kind": self.by_kind}


def student_body(op: WriteOp) -> dict[str, Any]:
    """The `POST /ws/v1/student` record for one student's field changes."""
    body: dict[str, Any] = {"client_uid": op.key, "action": "UPDATE", "id": op.student_dcid}
    extensions: dict[str, dict[str, str]] = {}
    groups: set[str] = set()
    for target_name, value in op.values.items():
        target = student_target(target_name)
        path = target.body_path
        if path[0] == "_extension_data":
            extensions.setdefault(path[1], {})[path[2]] = value
            continue
        if path[0] == "addresses":
            groups.add(path[1])
        node = body
        for part in path[:-1]:
            node = node.setdefault(part, {})
        node[path[-1]] = value
    if extensions:
        body["_extension_data"] = {"_table_extension": [
            {"name": table, "_field": [{"name": k, "value": v} for k, v in cols.items()]}
            for table, cols in extensions.items()]}
    return body


def _current_student_values(student: dict[str, Any], targets: Iterable[str]) -> dict[str, str]:
    """Pick the targets' values out of a v1 student resource (with expansions and extensions)."""
    ext_fields: dict[tuple[str, str], str] = {}
    ext = (student.get("_extension_data") or {}).get("_table_extension") or []
    for table in ext if isinstance(ext, list) else [ext]:
        fields = table.get("_field") or []
        for f in fields if isinstance(fields, list) else [fields]:
            ext_fields[(table.get("name", "").lower(), f.get("name", "").lower())] = "" if f.get("value") is None \
                else str(f.get("value"))
    values = {}
    for name in targets:
        path = student_target(name).body_path
        if path[0] == "_extension_data":
            values[name] = ext_fields.get((path[1], path[2]), "")
            continue
        node: Any = student
        for part in path:
            node = node.get(part) if isinstance(node, dict) else None
        values[name] = "" if node is None else str(node)
    return values


class Applier:
    """Executes operations for one run. `client` is a PowerSchoolClient."""

    def __init__(self, client: Any, store: Store, run_id: str, snapshot: Snapshot, reviewer_of: dict[str, str]):
        self.client = client
        self.store = store
        self.run_id = run_id
        self.snapshot = snapshot
        self.reviewer_of = reviewer_of  # op key -> who approved it (for the audit)
        self.ledger = store.ledger(run_id)
        self.outcome = ApplyOutcome()
        self.links: dict[tuple[int, int], int] = {(lk.person_id, lk.student_dcid): lk.id for lk in snapshot.links}

    # ------------------------------------------------------------ bookkeeping
    def _is_done(self, op: WriteOp) -> bool:
        row = self.ledger.get(op.key)
        return bool(row and row.status == "done")

    def _person_id(self, ref: str | None) -> int:
        kind, _, value = (ref or "").partition(":")
        if kind == "p":
            return int(value)
        row = self.store.ledger(self.run_id).get(f"create:{value}")
        if row is None or row.result_id is None:
            raise PowerSchoolError(0, f"contact {value} was not created", "", "")
        return row.result_id

    def _finish(self, op: WriteOp, status: str, *, result_id: int | None = None, error: str = "",
                retryable: bool = False, response: str = "", writes: int = 1) -> None:
        self.store.ledger_finish(self.run_id, op.key, status, result_id=result_id, error=error, retryable=retryable)
        if status == "done":
            self.outcome.done += 1
            self.outcome.writes += writes
            self.outcome.by_kind[op.kind] = self.outcome.by_kind.get(op.kind, 0) + 1
            self.store.audit(self.run_id, op.key, op.kind, student_number=op.student_number,
                             person_ref=op.person_ref or "", before=op.expected, after=op.values,
                             reviewer=self.reviewer_of.get(op.key, "rule"),
                             response=response or ("SUCCESS" if writes else "noop"))
        elif status == "stale":
            self.outcome.stale += 1
        else:
            self.outcome.failed += 1
            self.outcome.failures.append({"op": op.key, "error": error})

    def _fail(self, op: WriteOp, exc: Exception) -> None:
        status = getattr(exc, "status", 0) or 0
        retryable = isinstance(exc, AmbiguousWriteError) or status in RETRYABLE_STATUSES
        log.warning("write %s failed: %s", op.key, type(exc).__name__)
        self._finish(op, "failed", error=str(exc), retryable=retryable)

    # ------------------------------------------------------------ run
    def run(self, ops: list[WriteOp], batch_size: int = 50) -> ApplyOutcome:
        start = getattr(self.client, "writes_succeeded", 0)
        try:
            return self._run(ops, batch_size)
        finally:
            self.outcome.http_writes = getattr(self.client, "writes_succeeded", 0) - start

    def _run(self, ops: list[WriteOp], batch_size: int) -> ApplyOutcome:
        pending = []
        for op in ops:
            if self._is_done(op):
                self.outcome.skipped += 1
            else:
                pending.append(op)
        students = [op for op in pending if op.kind == "student_update"]
        for i in range(0, len(students), batch_size):
            self._apply_students(students[i:i + batch_size])
        for op in pending:
            if op.kind == "student_update":
                continue
            self.store.ledger_begin(self.run_id, op.key, op.kind)
            try:
                writes = getattr(self, f"_op_{op.kind}")(op)
                if writes is None or isinstance(writes, int):
                    result_id = None
                else:
                    result_id, writes = writes
                self._finish(op, "done", result_id=result_id, writes=writes if isinstance(writes, int) else 1)
            except StaleWrite as exc:
                self._finish(op, "stale", error=str(exc))
            except PowerSchoolError as exc:
                self._fail(op, exc)
        return self.outcome

    # ------------------------------------------------------------ students (batched)
    def _apply_students(self, ops: list[WriteOp]) -> None:
        ready = []
        for op in ops:
            self.store.ledger_begin(self.run_id, op.key, op.kind)
            try:
                current = _current_student_values(self._read_student(op.student_dcid), op.values)
            except PowerSchoolError as exc:
                self._fail(op, exc)
                continue
            changed = {k: (op.expected.get(k, ""), current[k]) for k in op.values
                       if current[k] != op.expected.get(k, "") and current[k] != op.values[k]}
            if changed:
                self._finish(op, "stale", error=str(StaleWrite(op.key, changed)))
                continue
            if all(current[k] == v for k, v in op.values.items()):
                self._finish(op, "done", writes=0)  # already there (a rerun after a crash)
                continue
            ready.append(op)
        if not ready:
            return
        try:
            results = self.client.update_students([student_body(op) for op in ready])
        except PowerSchoolError as exc:
            for op in ready:
                self._fail(op, exc)
            return
        by_uid = {r.client_uid: r for r in results}
        for op in ready:
            result = by_uid.get(op.key)
            if result is None or result.status != "SUCCESS":
                errors = "; ".join(f"{e.field}: {e.description}" for e in (result.errors if result else [])) \
                    or "no result for this record"
                self._finish(op, "failed", error=errors, retryable=False)
                continue
            after = _current_student_values(self._read_student(op.student_dcid), op.values)
            dropped = [k for k, v in op.values.items() if after[k] != v]
            if dropped:
                self._finish(op, "failed", error=f"PowerSchool did not keep: {', '.join(dropped)}")
            else:
                self._finish(op, "done", response="SUCCESS")

    def _read_student(self, dcid: int) -> dict[str, Any]:
        return self.client.get_student(dcid, expansions=("demographics", "addresses", "phones"),
                                       extensions=("u_students_extension",))

    # ------------------------------------------------------------ contacts
    def _op_contact_create(self, op: WriteOp) -> tuple[int, int]:
        row = self.ledger.get(op.key)
        if row is not None and row.status in {"pending", "failed"} and row.result_id is None and row.attempts:
            found = self._find_created(op)  # a create that may have happened before a crash
            if found is not None:
                return found, 0
        body = {"firstName": op.values["first_name"], "middleName": op.values.get("middle_name", ""),
                "lastName": op.values["last_name"]}
        try:
            return self.client.create_contact(body), 1
        except AmbiguousWriteError:
            found = self._find_created(op)
            if found is not None:
                return found, 1
            raise

    def _find_created(self, op: WriteOp) -> int | None:
        known = set(self.snapshot.persons)
        for row in self.client.iter_powerquery("com.writeback.snapshot.contacts"):
            pid = int(row["person.id"])
            if pid not in known and (row.get("person.firstname"), row.get("person.lastname")) == (
                    op.values["first_name"], op.values["last_name"]):
                return pid
        return None

    def _op_contact_name(self, op: WriteOp) -> int:
        pid = self._person_id(op.person_ref)
        current = self.client.get_demographics(pid)
        names = {"first_name": "firstName", "middle_name": "middleName", "last_name": "lastName"}
        stale = {k: (v, current.get(names[k], "")) for k, v in op.expected.items()
                 if current.get(names[k], "") not in (v, op.values.get(k))}
        if stale:
            raise StaleWrite(op.key, stale)
        body = {**current, **{names[k]: v for k, v in op.values.items()}}
        self.client.put_demographics(pid, body)
        return 1

    def _child_exists(self, pid: int, kind: str, match) -> dict | None:
        return next((c for c in self.client.list_children(pid, kind) if match(c)), None)

    def _op_phone_add(self, op: WriteOp) -> tuple[int, int]:
        pid = self._person_id(op.person_ref)
        digits = "".join(ch for ch in op.values["number"] if ch.isdigit())
        existing = self._child_exists(pid, "phones", lambda c: "".join(
            ch for ch in str(c.get("phoneNumber", "")) if ch.isdigit()) == digits)
        if existing:
            return int(existing.get("phoneNumberId") or 0), 0
        body = {"phoneNumber": op.values["number"], "extension": op.values.get("extension", ""),
                "phoneType": op.values["type"], "preferred": False, "sms": False}
        return self.client.add_child(pid, "phones", body), 1

    def _op_phone_update(self, op: WriteOp) -> int:
        pid = self._person_id(op.person_ref)
        current = self._child_exists(pid, "phones", lambda c: int(c.get("phoneNumberId") or 0) == op.target_id)
        if current is None:
            raise StaleWrite(op.key, {"phone": ("present", "deleted")})
        if "number" in op.expected and current.get("phoneNumber") not in (op.expected["number"], op.values["number"]):
            raise StaleWrite(op.key, {"number": (op.expected["number"], current.get("phoneNumber"))})
        if "type" in op.expected and current.get("phoneType") not in (op.expected["type"], op.values["type"]):
            raise StaleWrite(op.key, {"type": (op.expected["type"], current.get("phoneType"))})
        body = dict(current)
        if "number" in op.values:
            body.update(phoneNumber=op.values["number"], extension=op.values.get("extension", ""))
        if "type" in op.values:
            body["phoneType"] = op.values["type"]
        self.client.update_child(pid, "phones", op.target_id, body)
        return 1

    def _op_email_add(self, op: WriteOp) -> tuple[int, int]:
        pid = self._person_id(op.person_ref)
        wanted = op.values["address"].casefold()
        existing = self._child_exists(pid, "emails", lambda c: str(c.get("address", "")).casefold() == wanted)
        if existing:
            return int(existing.get("emailId") or 0), 0
        return self.client.add_child(pid, "emails", {"address": op.values["address"], "type": "Personal",
                                                     "primary": True}), 1

    def _op_email_update(self, op: WriteOp) -> int:
        pid = self._person_id(op.person_ref)
        current = self._child_exists(pid, "emails", lambda c: int(c.get("emailId") or 0) == op.target_id)
        if current is None or current.get("address") not in (op.expected.get("address"), op.values["address"]):
            raise StaleWrite(op.key, {"address": (op.expected.get("address"), (current or {}).get("address"))})
        self.client.update_child(pid, "emails", op.target_id, {**current, "address": op.values["address"]})
        return 1

    def _address_body(self, op: WriteOp) -> dict[str, Any]:
        v = op.values
        return {"addressType": v["type"], "street": v["street"], "city": v["city"], "state": v["state"],
                "postalcode": v["postal_code"], "country": "US", "startDate": v["start_date"]}

    def _op_address_add(self, op: WriteOp) -> tuple[int, int]:
        pid = self._person_id(op.person_ref)
        existing = self._child_exists(pid, "addresses", lambda c: c.get("street") == op.values["street"]
                                      and c.get("addressType") == op.values["type"])
        if existing:
            return int(existing.get("addressId") or 0), 0
        return self.client.add_child(pid, "addresses", self._address_body(op)), 1

    def _op_address_update(self, op: WriteOp) -> int:
        pid = self._person_id(op.person_ref)
        current = self._child_exists(pid, "addresses", lambda c: int(c.get("addressId") or 0) == op.target_id)
        if current is None:
            raise StaleWrite(op.key, {"address": ("present", "deleted")})
        body = {**current, **self._address_body(op)}
        body.pop("startDate", None)
        self.client.update_child(pid, "addresses", op.target_id, body)
        return 1

    def _op_link_add(self, op: WriteOp) -> tuple[int, int]:
        pid = self._person_id(op.person_ref)
        for link in self.client.list_links(pid):  # linked already (a rerun after a crash)
            if int(link.get("dcid") or 0) == op.student_dcid:
                self.links[(pid, op.student_dcid)] = int(link["studentContactId"])
                return int(link["studentContactId"]), 0
        v = op.values
        detail = {"relationship": v["relationship"], "startDate": v["start_date"],
                  **{_camel(k): bool(v[k]) for k in ("emergency", "lives_with", "custodial") if k in v}}
        link_id = self.client.add_link(pid, {"dcid": op.student_dcid, "studentDetails": [detail]})
        self.links[(pid, op.student_dcid)] = link_id
        return link_id, 1

    def _link_id(self, pid: int, dcid: int) -> int:
        if (pid, dcid) not in self.links:
            for link in self.client.list_links(pid):
                if int(link.get("dcid") or 0) == dcid:
                    self.links[(pid, dcid)] = int(link["studentContactId"])
        return self.links[(pid, dcid)]

    def _op_detail_update(self, op: WriteOp) -> int:
        pid = self._person_id(op.person_ref)
        link_id = op.values["link_id"]
        details = self.client.list_details(pid, link_id)
        current = next((d for d in details if int(d.get("studentContactDetailId") or 0) == op.target_id), None)
        if current is None:
            raise StaleWrite(op.key, {"detail": ("present", "deleted")})
        body = dict(current)
        for k, v in op.values.items():
            if k == "link_id":
                continue
            body[_camel(k)] = v if k == "relationship" else v == "1"
        self.client.update_detail(pid, link_id, op.target_id, body)
        return 1

    def _op_data_access(self, op: WriteOp) -> int:
        pid = self._person_id(op.person_ref)
        self.client.update_link(pid, self._link_id(pid, op.student_dcid), {"canAccessData": True})
        return 1

    # ------------------------------------------------------------ cleanup
    def _op_link_expire(self, op: WriteOp) -> int:
        pid = self._person_id(op.person_ref)
        details = self.client.list_details(pid, op.target_id)
        current = max(details, key=lambda d: (d.get("startDate") or "", d.get("studentContactDetailId") or 0))
        if current.get("endDate") == op.values["end_date"]:
            return 0
        self.client.update_detail(pid, op.target_id, int(current["studentContactDetailId"]),
                                  {**current, "endDate": op.values["end_date"]})
        return 1

    def _op_link_delete(self, op: WriteOp) -> int:
        pid = self._person_id(op.person_ref)
        if not any(int(lk.get("studentContactId") or 0) == op.target_id for lk in self.client.list_links(pid)):
            return 0
        self.client.delete_link(pid, op.target_id)
        return 1

    def _op_contact_order(self, op: WriteOp) -> int:
        """Move links into the final order, one position at a time; never rewrites a person."""
        writes = 0
        wanted = [self._person_id(ref) for ref in op.values["order"]]
        for position, pid in enumerate(wanted, start=1):
            current = self._current_order(op.student_dcid)
            if position - 1 < len(current) and current[position - 1][0] == pid:
                continue
            link_id = next((lid for p, lid in current if p == pid), None)
            if link_id is None:
                continue
            self.client.update_link(pid, link_id, {"sequence": position})
            writes += 1
        return writes

    def _current_order(self, dcid: int) -> list[tuple[int, int]]:
        rows = []
        for contact in self.client.contacts_for_student(dcid):
            for link in contact.get("contactStudents") or []:
                if int(link.get("dcid") or 0) == dcid:
                    rows.append((int(link.get("sequence") or 0), int(contact["contactId"]),
                                 int(link["studentContactId"])))
        return [(pid, lid) for _, pid, lid in sorted(rows)]


def _camel(name: str) -> str:
    head, *rest = name.split("_")
    return head + "".join(p.title() for p in rest)
