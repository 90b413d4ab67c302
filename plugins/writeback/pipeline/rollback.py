"""Roll a run back: compensating writes, newest first, that restore what PowerSchool held before.

Source of truth is the run's audit (what was written, with the values read just before the write) and
its ledger (ids of what was created). Every compensation is conflict-checked: a value that changed in
PowerSchool since the writeback is not rolled back silently — it is refused and listed. Compensations
are recorded in the ledger and audit of the run ``<run>:rollback`` (audit kinds ``rollback_<kind>``),
so a second rollback skips what is done, and since each one first checks PowerSchool's state, a value
that is already back writes nothing either.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any

from ..domain.models import WriteOp
from ..domain.targets import address_group
from ..powerschool.errors import NotFound, PowerSchoolError
from ..store import Store
from .apply import (
    DETAIL_FIELDS,
    NAME_FIELDS,
    SKIPPED_BY_REVIEWER,
    _current_student_values,
    _digits,
    current_order,
    read_student,
    student_body,
)
from .run_rules import rollback_target

log = logging.getLogger(__name__)


def rollback_run_id(run_id: str) -> str:
    return f"{run_id}:rollback"


# What a phone, email or address holds, by its contacts API resource (a restore also puts a phone back
# in its place; a re-added address also gets its start date back)
CHILD_FIELDS = {"phones": ("phoneNumber", "extension", "phoneType", "preferred", "sms"),
                "emails": ("address", "type", "primary"),
                "addresses": ("addressType", "street", "linetwo", "unit", "city", "state", "postalcode", "country",
                              "endDate")}


class RollbackConflict(Exception):
    """PowerSchool changed since the writeback: the compensation is refused."""

    def __init__(self, message: str, fields: dict[str, dict[str, Any]] | None = None):
        self.fields = fields or {}
        super().__init__(message)


@dataclass
class RollbackOutcome:
    run_id: str
    dry_run: bool = False
    restored: list[dict[str, Any]] = field(default_factory=list)  # compensations written (or, dry run, due)
    already: list[str] = field(default_factory=list)  # nothing to do: PowerSchool holds the before-value
    refused: list[dict[str, Any]] = field(default_factory=list)  # changed since the writeback: listed
    failed: list[dict[str, Any]] = field(default_factory=list)
    http_writes: int = 0

    def as_dict(self) -> dict[str, Any]:
        return {"run_id": self.run_id, "dry_run": self.dry_run, "restored": self.restored, "already": self.already,
                "refused": self.refused, "failed": self.failed, "http_writes": self.http_writes}


class _DryRun(Exception):
    """Raised instead of the first write of a compensation in a dry run."""

    def __init__(self, what: str):
        self.what = what
        super().__init__(what)


class Rollback:
    def __init__(self, client: Any, store: Store, run_id: str, *, dry_run: bool = False):
        self.client, self.store, self.run_id, self.dry_run = client, store, run_id, dry_run
        self.rb_id = rollback_run_id(run_id)
        self.outcome = RollbackOutcome(run_id=run_id, dry_run=dry_run)
        self.ledger = store.ledger(run_id)

    # ------------------------------------------------------------ plumbing
    def _write(self, what: str, fn, *args: Any) -> Any:
        if self.dry_run:
            raise _DryRun(what)
        return fn(*args)

    def _person(self, ref: str) -> int | None:
        kind, _, value = (ref or "").partition(":")
        if kind == "p":
            return int(value)
        row = self.ledger.get(f"create:{value}")
        return row.result_id if row is not None else None

    def run(self, student_number: str | None = None) -> RollbackOutcome:
        start = getattr(self.client, "writes_succeeded", 0)
        try:
            self._run(student_number)
        finally:
            self.outcome.http_writes = getattr(self.client, "writes_succeeded", 0) - start
        return self.outcome

    def _run(self, student_number: str | None) -> None:
        run = rollback_target(self.store, self.run_id)
        if not self.dry_run:
            self.store.ensure_run(self.rb_id, run.district, dag_run_id=run.dag_run_id)
        done = {k for k, r in self.store.ledger(self.rb_id).items() if r.status == "done"}
        rows = [a for a in self.store.audit_rows(self.run_id)
                if not a.response.startswith(("noop", SKIPPED_BY_REVIEWER))]
        if student_number is not None:
            rows = [a for a in rows if a.student_number == student_number]
        for audit in reversed(rows):  # newest first
            key = f"rollback:{audit.op_key}"
            if key in done:
                self.outcome.already.append(audit.op_key)
                continue
            if not self.dry_run:
                self.store.ledger_begin(self.rb_id, key, f"rollback_{audit.kind}")
            try:
                result = getattr(self, f"_undo_{audit.kind}")(audit)
            except _DryRun as exc:
                self.outcome.restored.append({"op": audit.op_key, "kind": audit.kind, "would": exc.what})
                continue
            except RollbackConflict as exc:
                self.outcome.refused.append({"op": audit.op_key, "kind": audit.kind,
                                             "student_number": audit.student_number, "reason": str(exc),
                                             "fields": exc.fields})
                if not self.dry_run:
                    self.store.ledger_finish(self.rb_id, key, "refused", error=str(exc))
                continue
            except PowerSchoolError as exc:
                self.outcome.failed.append({"op": audit.op_key, "kind": audit.kind, "error": str(exc)})
                if not self.dry_run:
                    self.store.ledger_finish(self.rb_id, key, "failed", error=str(exc), retryable=True)
                continue
            if result is None:
                self.outcome.already.append(audit.op_key)
                if not self.dry_run:
                    self.store.ledger_finish(self.rb_id, key, "done")
                continue
            before, after = result
            self.outcome.restored.append({"op": audit.op_key, "kind": audit.kind})
            if not self.dry_run:
                self.store.ledger_finish(self.rb_id, key, "done")
                self.store.audit(self.rb_id, key, f"rollback_{audit.kind}", student_number=audit.student_number,
                                 person_ref=audit.person_ref, before=before, after=after, reviewer="rollback",
                                 response="SUCCESS")

    # ------------------------------------------------------------ students
    def _undo_student_update(self, a) -> tuple[dict, dict] | None:
        intended = dict(a.after)
        prior = (a.before or {}).get("_prior") or {k: v for k, v in (a.before or {}).items() if k != "_prior"}
        dcid = int(self._dcid(a))
        current = _current_student_values(read_student(self.client, dcid), intended)
        conflicts = {k: {"before": prior.get(k, ""), "written": v, "current": current[k]}
                     for k, v in intended.items() if current[k] not in (v, prior.get(k, ""))}
        # PowerSchool takes an address block whole: a conflict anywhere in a block holds the whole block
        held_groups = {address_group(k) for k in conflicts} - {None}
        restore = {k: prior.get(k, "") for k, v in intended.items()
                   if k not in conflicts and address_group(k) not in held_groups and current[k] != prior.get(k, "")}
        groups = {address_group(k) for k in restore} - {None}  # PowerSchool takes an address block whole
        restore |= {k: prior.get(k, "") for k in intended if address_group(k) in groups and k not in restore}
        if restore:
            body = student_body(WriteOp(key=f"rollback:{a.op_key}", kind="student_update", student_dcid=dcid,
                                        values=restore))
            results = self._write(f"student {a.student_number}: restore {', '.join(sorted(restore))}",
                                  self.client.update_students, [body])
            bad = [r for r in results if r.status != "SUCCESS"]
            if bad:
                raise PowerSchoolError(400, "; ".join(f"{e.field}: {e.description}" for e in bad[0].errors)
                                       or "student update refused")
        if conflicts:
            raise RollbackConflict(f"student {a.student_number}: changed in PowerSchool since the writeback: "
                                   f"{', '.join(sorted(conflicts))}"
                                   + (f" (restored: {', '.join(sorted(restore))})" if restore else ""), conflicts)
        if not restore:
            return None
        return {k: current[k] for k in restore}, restore

    def _dcid(self, a) -> int:
        key = a.op_key
        if key.startswith("student:"):
            return int(key.split(":")[1])
        raise ValueError(f"no student dcid in {key}")

    # ------------------------------------------------------------ contacts
    def _undo_contact_create(self, a) -> tuple[dict, dict] | None:
        pid = self.ledger[a.op_key].result_id if a.op_key in self.ledger else None
        if pid is None:
            return None
        try:
            links = self.client.list_links(pid)
        except NotFound:
            return None  # gone already
        if links:
            raise RollbackConflict(f"contact {pid} created by the run is still linked to student(s) "
                                   f"{', '.join(str(lk.get('studentNumber') or lk.get('dcid')) for lk in links)}; "
                                   "not deleted", {"links": {"current": len(links), "before": 0}})
        self._write(f"delete contact {pid}", self.client.delete_contact, pid)
        return {"contact_id": pid}, {"deleted": True}

    def _undo_contact_name(self, a) -> tuple[dict, dict] | None:
        pid = self._person(a.person_ref)
        prior = (a.before or {}).get("_prior") or {k: v for k, v in a.before.items() if k != "_prior"}
        current = self.client.get_demographics(pid)
        conflicts = {k: {"before": prior.get(k, ""), "written": v, "current": current.get(NAME_FIELDS[k]) or ""}
                     for k, v in a.after.items() if (current.get(NAME_FIELDS[k]) or "") not in (v, prior.get(k, ""))}
        if conflicts:
            raise RollbackConflict(f"contact {pid}: name changed since the writeback ({', '.join(conflicts)})",
                                   conflicts)
        restore = {NAME_FIELDS[k]: prior.get(k, "") for k in a.after
                   if (current.get(NAME_FIELDS[k]) or "") != prior.get(k, "")}
        if not restore:
            return None
        body = {k: v for k, v in current.items() if k != "contactId"} | restore
        self._write(f"contact {pid}: restore name", self.client.put_demographics, pid, body)
        return {k: current.get(k) for k in restore}, restore

    def _child(self, pid: int, kind: str, id_key: str, child_id: int | None) -> dict | None:
        try:
            return next((c for c in self.client.list_children(pid, kind) if int(c.get(id_key) or 0) == child_id), None)
        except NotFound:
            return None

    def _delete_added(self, a, kind: str, id_key: str, same) -> tuple[dict, dict] | None:
        pid = self._person(a.person_ref)
        row = self.ledger.get(a.op_key)
        child_id = row.result_id if row else None
        if pid is None or child_id is None:
            return None
        current = self._child(pid, kind, id_key, child_id)
        if current is None:
            return None
        if not same(current):
            raise RollbackConflict(f"{kind[:-1]} {child_id} of contact {pid} changed since the writeback; not deleted",
                                   {kind[:-1]: {"written": a.after, "current": current}})
        self._write(f"delete {kind[:-1]} {child_id} of contact {pid}", self.client.delete_child, pid, kind, child_id)
        return {kind[:-1]: current}, {"deleted": True}

    def _undo_phone_add(self, a):
        return self._delete_added(a, "phones", "phoneNumberId",
                                  lambda c: _digits(c.get("phoneNumber")) == _digits(a.after.get("number")))

    def _undo_email_add(self, a):
        result = self._delete_added(a, "emails", "emailId",
                                    lambda c: str(c.get("address", "")).casefold()
                                    == str(a.after.get("address", "")).casefold())
        prior = (a.before or {}).get("_prior") or {}
        pid = self._person(a.person_ref)
        if prior.get("primary_email_id") and pid is not None:  # the added email took the primary flag
            old = self._child(pid, "emails", "emailId", prior["primary_email_id"])
            if old is not None and not old.get("primary") and \
                    not any(e.get("primary") for e in self.client.list_children(pid, "emails")):
                body = {k: v for k, v in old.items() if k in ("address", "type")} | {"primary": True}
                self._write(f"email {prior['primary_email_id']} of contact {pid}: primary again",
                            self.client.update_child, pid, "emails", prior["primary_email_id"], body)
                result = result or ({"primary": False}, {"primary": True})
        return result

    def _undo_address_add(self, a):
        return self._delete_added(a, "addresses", "addressId",
                                  lambda c: c.get("street") == a.after.get("street"))

    def _readd_removed(self, a, kind: str, same) -> tuple[dict, dict] | None:
        """Put back a phone/email/address the run removed, unless the person has it again already."""
        pid = self._person(a.person_ref)
        prior = (a.before or {}).get("_prior") or {}
        if pid is None or not prior:
            raise RollbackConflict(f"{kind[:-1]} {a.op_key.rsplit(':', 1)[1]}: what it held before its removal "
                                   "was not recorded; not restored")
        try:
            current = self.client.list_children(pid, kind)
        except NotFound:
            raise RollbackConflict(f"contact {pid} was deleted since the writeback") from None
        if any(same(c, prior) for c in current):
            return None
        keep = CHILD_FIELDS[kind] + (("startDate",) if kind == "addresses" else ())
        body = {k: v for k, v in prior.items() if k in keep and v is not None}
        if kind == "emails" and any(c.get("primary") for c in current):
            body["primary"] = False  # the primary flag moved on meanwhile: do not take it back silently
        new_id = self._write(f"contact {pid}: re-add the removed {kind[:-1]}", self.client.add_child, pid, kind, body)
        return {kind[:-1]: "removed"}, {**body, "id": new_id}

    def _undo_phone_delete(self, a):
        return self._readd_removed(a, "phones", lambda c, p: _digits(c.get("phoneNumber")) == _digits(p.get("phoneNumber")))

    def _undo_email_delete(self, a):
        return self._readd_removed(a, "emails", lambda c, p: str(c.get("address", "")).casefold()
                                   == str(p.get("address", "")).casefold())

    def _undo_address_delete(self, a):
        return self._readd_removed(a, "addresses", lambda c, p: all((c.get(k) or "") == (p.get(k) or "") for k in (
            "addressType", "street", "city", "postalcode")))

    def _restore_child(self, a, kind: str, id_key: str, written: dict[str, Any]) -> tuple[dict, dict] | None:
        """Put a phone/email/address back to its prior values, if it still holds what the run wrote."""
        pid = self._person(a.person_ref)
        child_id = self._target_id(a)
        prior = (a.before or {}).get("_prior") or {}
        current = self._child(pid, kind, id_key, child_id)
        if current is None:
            raise RollbackConflict(f"{kind[:-1]} {child_id} of contact {pid} was deleted since the writeback",
                                   {kind[:-1]: {"before": prior, "current": "deleted"}})
        if all((current.get(k) or "") == (v or "") for k, v in prior.items()):
            return None
        conflicts = {k: {"before": prior.get(k), "written": v, "current": current.get(k)}
                     for k, v in written.items() if (current.get(k) or "") != (v or "")}
        if conflicts:
            raise RollbackConflict(f"{kind[:-1]} {child_id} of contact {pid} changed since the writeback "
                                   f"({', '.join(conflicts)})", conflicts)
        keep = CHILD_FIELDS[kind] + (("sequence",) if kind == "phones" else ())
        body = {k: v for k, v in current.items() if k in keep} | prior
        self._write(f"{kind[:-1]} {child_id} of contact {pid}: restore", self.client.update_child, pid, kind,
                    child_id, body)
        return {k: current.get(k) for k in prior}, prior

    def _target_id(self, a) -> int:
        return int(a.op_key.rsplit(":", 1)[1])

    def _undo_phone_update(self, a):
        written = {}
        if "number" in a.after:
            written |= {"phoneNumber": a.after["number"], "extension": a.after.get("extension", "")}
        if "type" in a.after:
            written["phoneType"] = a.after["type"]
        return self._restore_child(a, "phones", "phoneNumberId", written)

    def _undo_email_update(self, a):
        return self._restore_child(a, "emails", "emailId", {"address": a.after["address"]})

    def _undo_address_update(self, a):
        v = a.after
        return self._restore_child(a, "addresses", "addressId", {"street": v["street"], "city": v["city"],
                                                                  "state": v["state"], "postalcode": v["postal_code"]})

    # ------------------------------------------------------------ links
    def _links(self, pid: int) -> list[dict]:
        try:
            return self.client.list_links(pid)
        except NotFound:
            return []

    def _undo_link_add(self, a):
        pid = self._person(a.person_ref)
        row = self.ledger.get(a.op_key)
        link_id = row.result_id if row else None
        if pid is None or link_id is None:
            return None
        link = next((lk for lk in self._links(pid) if int(lk.get("studentContactId") or 0) == link_id), None)
        if link is None:
            return None
        self._write(f"unlink contact {pid} from student {a.student_number}", self.client.delete_link, pid, link_id)
        return {"link_id": link_id}, {"deleted": True}

    def _undo_detail_update(self, a):
        pid = self._person(a.person_ref)
        prior = dict((a.before or {}).get("_prior") or {})
        link_id = prior.pop("link_id", None) or a.after.get("link_id")
        detail_id = prior.pop("detail_id", None)
        try:
            details = self.client.list_details(pid, link_id)
        except NotFound:
            raise RollbackConflict(f"link {link_id} of contact {pid} was deleted since the writeback") from None
        current = next((d for d in details if int(d.get("studentContactDetailId") or 0) == detail_id), None)
        if current is None:
            raise RollbackConflict(f"detail {detail_id} of contact {pid} was deleted since the writeback")
        if all(current.get(k) == v for k, v in prior.items()):
            return None
        written = {DETAIL_FIELDS.get(k, k): (v if k == "relationship" else v == "1") for k, v in a.after.items()
                   if k != "link_id"}
        conflicts = {k: {"before": prior.get(k), "written": v, "current": current.get(k)}
                     for k, v in written.items() if current.get(k) != v}
        if conflicts:
            raise RollbackConflict(f"detail {detail_id} of contact {pid} changed since the writeback "
                                   f"({', '.join(conflicts)})", conflicts)
        body = {k: v for k, v in current.items() if k not in ("studentContactDetailId", "active")} | prior
        self._write(f"detail {detail_id} of contact {pid}: restore", self.client.update_detail, pid, link_id,
                    detail_id, body)
        return {k: current.get(k) for k in prior}, prior

    def _undo_data_access(self, a):
        pid = self._person(a.person_ref)
        prior = (a.before or {}).get("_prior") or {}
        dcid = int(a.op_key.rsplit(":", 1)[1])
        link = next((lk for lk in self._links(pid) if int(lk.get("dcid") or 0) == dcid), None)
        if link is None:
            raise RollbackConflict(f"contact {pid} is no longer linked to student {a.student_number}")
        if not link.get("canAccessData") or prior.get("canAccessData"):
            return None
        self._write(f"contact {pid}: Data Access off for student {a.student_number}", self.client.update_link, pid,
                    int(link["studentContactId"]), {"canAccessData": False})
        return {"canAccessData": True}, {"canAccessData": False}

    def _undo_link_expire(self, a):
        pid = self._person(a.person_ref)
        prior = (a.before or {}).get("_prior") or {}
        link_id = prior.get("link_id")
        try:
            details = self.client.list_details(pid, link_id)
        except NotFound:
            raise RollbackConflict(f"link {link_id} of contact {pid} was deleted since the writeback") from None
        detail_id = prior.get("detail_id")
        current = next((d for d in details if int(d.get("studentContactDetailId") or 0) == detail_id), None)
        if current is None:
            raise RollbackConflict(f"detail {detail_id} of contact {pid} was deleted since the writeback")
        before_end = prior.get("endDate") or ""
        now_end = current.get("endDate") or ""
        if now_end == before_end:
            return None
        if now_end != a.after.get("end_date"):
            raise RollbackConflict(f"end date of contact {pid}'s link changed since the writeback",
                                   {"endDate": {"before": before_end, "written": a.after.get("end_date"),
                                                "current": now_end}})
        body = {k: v for k, v in current.items() if k not in ("studentContactDetailId", "active")} | {
            "endDate": before_end}
        self._write(f"contact {pid}: clear the expiration for student {a.student_number}", self.client.update_detail,
                    pid, link_id, detail_id, body)
        return {"endDate": now_end}, {"endDate": before_end}

    def _undo_link_delete(self, a):
        pid = self._person(a.person_ref)
        prior = (a.before or {}).get("_prior") or {}
        dcid = int(prior.get("dcid") or a.op_key.rsplit(":", 1)[1])
        if any(int(lk.get("dcid") or 0) == dcid for lk in self._links(pid)):
            return None
        n = len(current_order(self.client, dcid))
        body = {"dcid": dcid, "sequence": min(int(prior.get("sequence") or n + 1), n + 1), "canAccessData": False,
                "studentDetails": prior.get("studentDetails") or []}
        link_id = self._write(f"re-link contact {pid} to student {a.student_number}", self.client.add_link, pid, body)
        if prior.get("canAccessData"):
            self.client.update_link(pid, link_id, {"canAccessData": True})
        return {"linked": False}, {"link_id": link_id, **body}

    def _undo_contact_order(self, a):
        prior = (a.before or {}).get("_prior") or {}
        dcid = int(a.op_key.rsplit(":", 1)[1])
        before = [int(pid) for _, pid, _ in sorted(prior.get("order") or [])]
        written = [self._person(ref) for ref in a.after.get("order", [])]
        now = current_order(self.client, dcid)
        present = [pid for _, pid, _ in now]
        want = [pid for pid in before if pid in present]
        if present[:len(want)] == want:
            return None
        written_now = [pid for pid in written if pid in present]
        if present[:len(written_now)] != written_now:
            raise RollbackConflict(f"contact order of student {a.student_number} changed since the writeback",
                                   {"order": {"before": before, "written": written, "current": present}})
        for position, pid in enumerate(want, start=1):
            current = [(p, lid) for _, p, lid in current_order(self.client, dcid)]
            if current[position - 1][0] == pid:
                continue
            link_id = next(lid for p, lid in current if p == pid)
            self._write(f"student {a.student_number}: contact order back to {want}", self.client.update_link, pid,
                        link_id, {"sequence": position})
        return {"order": present}, {"order": want}


def rollback(client: Any, store: Store, run_id: str, *, student_number: str | None = None,
             dry_run: bool = False) -> RollbackOutcome:
    """Roll back a run's done writes (one student's, with `student_number`), newest first."""
    return Rollback(client, store, run_id, dry_run=dry_run).run(student_number)
