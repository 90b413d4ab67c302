"""Execute resolved write operations against PowerSchool: ledgered, conflict-checked, audited.

Each operation is recorded in the ledger before its call and confirmed after it, so a rerun skips
what is done and reads back what may have happened before a crash instead of doing it twice.

Before a write the target is re-read. When PowerSchool changed since the snapshot in something the
write touches, nothing is written: the ledger row becomes ``stale`` and a ``stale_write`` review item
shows, per field, the snapshot's value, PowerSchool's current value and the value the plan meant to
write. A later apply of the same run writes over the current value when the item is decided
``overwrite`` (after reading it again: a value that moved once more goes back to review), and marks
the row ``skipped_by_reviewer`` without a write when it is decided ``keep_powerschool``.

Rules are checked *before* a write (phone type changes need a decision, Data Access needs a valid
email no other portal account uses, detail dates never overlap), and every write is read back after
it (a value PowerSchool silently dropped is a ``failed`` row with the reason).
"""

from __future__ import annotations

import logging
import re
import threading
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

from ..domain.batches import connected_groups
from ..domain.models import ReviewItem, Snapshot, WriteOp
from ..domain.normalize import write_problem
from ..domain.plan import as_text
from ..domain.targets import student_target
from ..domain.values import address_text
from ..powerschool.errors import (
    AmbiguousWriteError,
    DuplicateError,
    NotFound,
    PowerSchoolError,
    ValidationError,
)
from ..store import Store
from ..store.schema import POWERSCHOOL_REFUSED, RULE_REFUSED
from . import create_evidence as ce
from .create_evidence import Ambiguous, Evidence, Identity
from .create_evidence import camel as _camel
from .run_rules import writable_run

log = logging.getLogger(__name__)

RETRYABLE_STATUSES = {0, 408, 429, 500, 502, 503, 504}
STALE_OPTIONS = ["overwrite", "keep_powerschool"]
SKIPPED_BY_REVIEWER = "skipped_by_reviewer"
AMBIGUOUS_CREATE = "ambiguous_create"  # the evidence cannot tell whether the create happened: a person decides
# PowerSchool (or a rule) will not take this write as planned: the record is quarantined with the reason and
# the run goes on, the cursor too; another attempt of the run tries it again (a fix may have come since)
REFUSED = "refused"
FINAL_STATUSES = {"done", SKIPPED_BY_REVIEWER}
CREATE_OPTIONS = ["create_new", "skip"]  # besides adopt:<person id> per candidate
EMAIL_RE = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
NAME_FIELDS = {"first_name": "firstName", "middle_name": "middleName", "last_name": "lastName"}
ADDRESS_FIELDS = {"street": "street", "city": "city", "state": "state", "postal_code": "postalcode"}
DETAIL_FIELDS = {"relationship": "relationship", "emergency": "emergency", "lives_with": "livesWith",
                 "custodial": "custodial"}


def stale_item_key(op_key: str) -> str:
    return f"stale:{op_key}"


def ambiguous_item_key(op_key: str) -> str:
    return f"{AMBIGUOUS_CREATE}:{op_key}"


def _digits(number: Any) -> str:
    return "".join(ch for ch in str(number or "") if ch.isdigit())


class StaleWrite(Exception):
    """PowerSchool changed since the snapshot in something this write touches."""

    def __init__(self, op_key: str, fields: dict[str, tuple[Any, Any]], intended: dict[str, Any] | None = None,
                 touched: dict[str, tuple[Any, Any, Any]] | None = None):
        self.fields = fields  # field -> (snapshot value, current value), the ones that changed
        self.intended = intended or {}  # field -> the value the write meant to set
        self.touched = touched or {}  # every field the write touches -> (snapshot, current, intended)
        super().__init__(f"{op_key}: changed in PowerSchool since the snapshot ({', '.join(fields)})")


class Refused(Exception):
    """A rule would be broken by this write: it is not made."""


class NotKept(Exception):
    """PowerSchool accepted the write, but reading it back shows it did not keep the value."""


class Skipped(Exception):
    """A reviewer decided this write (or the create it depends on) is not made."""

    def __init__(self, message: str, reviewer: str = ""):
        self.reviewer = reviewer
        super().__init__(message)


@dataclass
class ApplyOutcome:
    done: int = 0
    skipped: int = 0  # done in an earlier attempt
    failed: int = 0
    stale: int = 0
    refused: int = 0  # refused by PowerSchool or by a rule: the record is quarantined (not counted in failed)
    skipped_by_reviewer: int = 0  # stale writes a reviewer decided to keep PowerSchool's value for
    ambiguous: int = 0  # creates waiting for a person to say which record (if any) is theirs
    writes: int = 0  # operations that changed something
    http_writes: int = 0  # state-changing HTTP calls PowerSchool accepted
    by_kind: dict[str, int] = field(default_factory=dict)
    failures: list[dict[str, str]] = field(default_factory=list)

    def as_counts(self) -> dict[str, Any]:
        return {**{name: getattr(self, name) for name in COUNTED}, "http_writes": self.http_writes,
                "by_kind": self.by_kind}

    def add(self, other: ApplyOutcome) -> None:
        for name in COUNTED:
            setattr(self, name, getattr(self, name) + getattr(other, name))
        for kind, n in other.by_kind.items():
            self.by_kind[kind] = self.by_kind.get(kind, 0) + n
        self.failures.extend(other.failures)


COUNTED = ("done", "skipped", "failed", "stale", "refused", "skipped_by_reviewer", "ambiguous", "writes")


def student_body(op: WriteOp, values: dict[str, Any] | None = None) -> dict[str, Any]:
    """The `POST /ws/v1/student` record for one student's field changes (`values`, default the op's)."""
    body: dict[str, Any] = {"client_uid": op.key, "action": "UPDATE", "id": op.student_dcid}
    extensions: dict[str, dict[str, str]] = {}
    for target_name, value in (op.values if values is None else values).items():
        target = student_target(target_name)
        path = target.body_path
        if path[0] == "_extension_data":
            extensions.setdefault(path[1], {})[path[2]] = value
            continue
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


def read_student(client: Any, dcid: int) -> dict[str, Any]:
    return client.get_student(dcid, expansions=("demographics", "addresses", "phones"),
                              extensions=("u_students_extension",))


def current_order(client: Any, dcid: int) -> list[tuple[int, int, int]]:
    """The student's links as PowerSchool has them now: (sequence, person id, link id), by sequence."""
    rows = []
    for contact in client.contacts_for_student(dcid):
        for link in contact.get("contactStudents") or []:
            if int(link.get("dcid") or 0) == dcid:
                rows.append((int(link.get("sequence") or 0), int(contact["contactId"]), int(link["studentContactId"])))
    return sorted(rows)


def _longest_increasing(seq: list[int]) -> set[int]:
    """Indexes into `seq` of one longest strictly increasing subsequence."""
    import bisect

    tails: list[int] = []  # value ending the best run of each length
    tail_at: list[int] = []  # index of that value
    back: list[int] = [-1] * len(seq)
    for i, x in enumerate(seq):
        k = bisect.bisect_left(tails, x)
        if k:
            back[i] = tail_at[k - 1]
        tails[k:k + 1] = [x]
        tail_at[k:k + 1] = [i]
    out, i = set(), tail_at[-1] if tail_at else -1
    while i >= 0:
        out.add(i)
        i = back[i]
    return out


def order_moves(current: list[tuple[int, int]], wanted: list[int]) -> list[tuple[int, int, int]]:
    """The fewest link moves (person id, link id, new 1-based place) that turn `current` [(person id, link
    id)] into `wanted` first, then the other links in their current order. A move puts one link at a place
    and shifts the others (PowerSchool keeps 1..n), so the links already in the wanted relative order (a
    longest increasing run) stay and each other link is moved once, right after its predecessor."""
    rank = {pid: i for i, pid in enumerate(wanted)}
    others = [pid for pid, _ in current if pid not in rank]
    rank.update({pid: len(wanted) + i for i, pid in enumerate(others)})
    target = sorted((pid for pid, _ in current), key=rank.__getitem__)
    keep = _longest_increasing([rank[pid] for pid, _ in current])
    state = list(current)
    moves = []
    for pid in sorted((pid for i, (pid, _) in enumerate(current) if i not in keep), key=rank.__getitem__):
        link = state.pop(next(i for i, (p, _) in enumerate(state) if p == pid))
        r = rank[pid]
        place = 0 if r == 0 else next(i for i, (p, _) in enumerate(state) if p == target[r - 1]) + 1
        state.insert(place, link)
        moves.append((pid, link[1], place + 1))
    if [p for p, _ in state] != target:  # cannot happen; the read-back would refuse it anyway
        raise AssertionError(f"contact order moves do not reach {target}")
    return moves


def details_overlap(details: list[dict[str, Any]], detail_id: int | None, start: str, end: str) -> dict | None:
    """The first other detail of a link whose inclusive date range overlaps start..end (empty = open)."""
    a = (start or "0000-00-00", end or "9999-99-99")
    for d in details:
        if detail_id is not None and int(d.get("studentContactDetailId") or 0) == detail_id:
            continue
        b = (d.get("startDate") or "0000-00-00", d.get("endDate") or "9999-99-99")
        if a[0] <= b[1] and b[0] <= a[1]:
            return d
    return None


def independent_groups(ops: list[WriteOp]) -> list[list[WriteOp]]:
    """Operations split into groups that share no student and no person, each in its original order."""
    def keys(op: WriteOp) -> list[str]:
        order = op.values.get("order", []) if op.kind == "contact_order" else []
        return [f"s:{op.student_number}", *([op.person_ref] if op.person_ref else []), *order]

    return connected_groups(ops, keys)


RECOVERED = "SUCCESS (written by an interrupted earlier attempt; found by the read-back)"

# The client calls that change PowerSchool. Before an op's first one in an attempt, the ledger records
# that the op may have written from then on (`LedgerRow.sent`): the only evidence that lets a later attempt
# claim a value it finds in place as this run's write (rather than another run's or a registrar's).
WRITE_CALLS = frozenset({"update_students", "create_contact", "delete_contact", "put_demographics", "add_child",
                         "update_child", "delete_child", "add_link", "update_link", "delete_link", "add_detail",
                         "update_detail", "delete_detail"})


class _AnnouncingClient:
    """The client as the Applier uses it: a write call first announces the ops it serves (`announce`)."""

    def __init__(self, client: Any, announce: Callable[[], None]):
        self._client, self._announce = client, announce

    def __getattr__(self, name: str) -> Any:
        attr = getattr(self._client, name)
        if name not in WRITE_CALLS:
            return attr

        def write(*args: Any, **kwargs: Any) -> Any:
            self._announce()
            return attr(*args, **kwargs)

        return write


class Applier:
    """Executes operations for one run. `client` is a PowerSchoolClient."""

    def __init__(self, client: Any, store: Store, run_id: str, snapshot: Snapshot, reviewer_of: dict[str, str],
                 concurrency: int = 1, region: str = "US"):
        self.region = region  # the district's phone region, for the text rules (`write_problem`)
        self.concurrency = max(1, concurrency)  # independent groups of contacts applied at once
        self._local = threading.local()
        self._outcomes: list[ApplyOutcome] = []
        self._outcomes_lock = threading.Lock()
        self.client = _AnnouncingClient(client, self._announce)
        self.store = store
        self.run_id = run_id
        self.snapshot = snapshot
        self.reviewer_of = reviewer_of  # op key -> who approved it (for the audit)
        self.ledger = store.ledger(run_id)
        self.links: dict[tuple[int, int], int] = {(lk.person_id, lk.student_dcid): lk.id for lk in snapshot.links}
        self.accepted: dict[str, dict[str, str]] = {}  # op key -> field -> current value a reviewer overwrites
        self._prior: dict[str, dict[str, Any]] = {}  # op key -> what PowerSchool held before the write
        self._response: dict[str, str] = {}
        self._submission_of: dict[str, str] | None = None
        items = store.items(run_id)
        self.stale_items = {r.item_key: r for r in items if r.kind == "stale_write"}
        self.ambiguous_items = {r.item_key: r for r in items if r.kind == AMBIGUOUS_CREATE}
        self._carried: dict[str, list[WriteOp]] = {}  # new contact ref -> the ops its create carries
        self._watermark: int | None = None
        self._watermark_lock = threading.Lock()
        # phone ids whose type change a reviewer approved; persons with a phone type mismatch still open
        self.type_change_approved: set[int] = set()
        self.unresolved_type_persons: set[int] = set()
        phone_owner = {ph.id: p.id for p in snapshot.persons.values() for ph in p.phones}
        for r in items:
            if r.kind != "phone_type_mismatch":
                continue
            phone_id = int((r.payload or {}).get("phone_id") or 0)
            if r.state == "decided" and r.choice == "use_submitted_type":
                self.type_change_approved.add(phone_id)
            elif r.state != "decided" and phone_id in phone_owner:
                self.unresolved_type_persons.add(phone_owner[phone_id])

    # ------------------------------------------------------------ bookkeeping
    def _is_done(self, op: WriteOp) -> bool:
        row = self.ledger.get(op.key)
        return bool(row and row.status in FINAL_STATUSES)

    def _earlier_attempt(self, op: WriteOp) -> bool:
        """An earlier attempt of this op ran and did not finish it."""
        row = self.ledger.get(op.key)
        return bool(row and row.attempts and row.status not in FINAL_STATUSES)

    def _sent_before(self, op: WriteOp) -> bool:
        """An earlier attempt of this op sent a write whose outcome it never confirmed: only then is a value
        found in place this run's own write (and audited as one, so a rollback undoes it)."""
        row = self.ledger.get(op.key)
        return bool(row and row.sent and row.status not in FINAL_STATUSES)

    def _sending(self, keys: list[str]) -> None:
        """The ops the next write calls of this thread serve (announced with the first of them)."""
        self._local.sending, self._local.announced = keys, False

    def _announce(self) -> None:
        keys = getattr(self._local, "sending", None)
        if keys is None:
            raise RuntimeError("a PowerSchool write outside an operation: nothing would record it")
        if not self._local.announced:
            self.store.ledger_announce(self.run_id, keys)
            self._local.announced = True

    def _person_id(self, ref: str | None) -> int:
        kind, _, value = (ref or "").partition(":")
        if kind == "p":
            return int(value)
        row = self.store.ledger_row(self.run_id, f"create:{value}")
        if row is not None and row.status == SKIPPED_BY_REVIEWER:
            raise Skipped(f"its new contact {value} is not created: {row.error}")
        if row is not None and row.status == REFUSED:
            raise Refused(f"its new contact {value} was not created: {row.error}")
        if row is None or row.result_id is None or row.status != "done":
            raise PowerSchoolError(0, f"contact {value} was not created", "", "")
        return row.result_id

    def _written_with_create(self, op: WriteOp) -> bool:
        """The op's value went in with its new contact's create (the create carried it)."""
        kind, _, value = (op.person_ref or "").partition(":")
        if kind != "new":
            return False
        row = self.store.ledger_row(self.run_id, f"create:{value}")
        return bool(row and row.status == "done" and op.key in ((row.evidence or {}).get("carries") or []))

    def _found_in_place(self, op: WriteOp, found: str, absent: str) -> int:
        """A value found already there: this op's write when an attempt of it sent one, part of its new
        contact's create when that carried it, else someone else's (a no-op). Returns the writes to count."""
        if self._sent_before(op):
            self._response[op.key] = f"SUCCESS ({found} after an earlier attempt)"
            return 1
        if self._written_with_create(op):
            self._response[op.key] = "SUCCESS (written with its new contact's create)"
            return 0
        self._response[op.key] = absent
        return 0

    def _finish(self, op: WriteOp, status: str, *, result_id: int | None = None, error: str = "",
                retryable: bool = False, response: str = "", writes: int = 1) -> None:
        audit = None
        response = response or self._response.get(op.key, "")
        if status == "done":
            self.outcome.done += 1
            self.outcome.writes += writes
            self.outcome.by_kind[op.kind] = self.outcome.by_kind.get(op.kind, 0) + 1
            before = dict(op.expected)
            if op.key in self._prior:
                before["_prior"] = self._prior[op.key]
            if not writes and self._sent_before(op) and not response:
                # A value found in place after an attempt of this op sent its write (and never learnt the
                # outcome) was written by that attempt: audit it as a write, or a rollback would skip it.
                # Without that evidence it is someone else's (another run, a registrar): a no-op.
                response = RECOVERED
                # what was re-read now is this run's own write, not the value before it: a rollback must
                # restore the snapshot's value (the op's `expected`) instead
                before.pop("_prior", None)
            audit = {"kind": op.kind, "student_number": op.student_number, "person_ref": op.person_ref or "",
                     "before": before, "after": op.values, "reviewer": self.reviewer_of.get(op.key, "rule"),
                     "response": response or ("SUCCESS" if writes else "noop")}
        earlier = self.ledger.get(op.key)
        self.store.ledger_finish(self.run_id, op.key, status, result_id=result_id, error=error, retryable=retryable,
                                 audit=audit, clear_refusal=bool(earlier and earlier.status == REFUSED))
        if status == "stale":
            self.outcome.stale += 1
        elif status == AMBIGUOUS_CREATE:
            self.outcome.ambiguous += 1
        elif status != "done":
            self.outcome.failed += 1
            self.outcome.failures.append({"op": op.key, "error": error})

    def _fail(self, op: WriteOp, exc: Exception) -> None:
        if isinstance(exc, ValidationError):  # PowerSchool refused the values (400): this record's, not an outage
            fields = [e.field for e in exc.errors if e.field] or [op.kind]
            self._refused(op, str(exc), fields, POWERSCHOOL_REFUSED)
            return
        status = getattr(exc, "status", 0) or 0
        retryable = isinstance(exc, AmbiguousWriteError) or status in RETRYABLE_STATUSES
        log.warning("write %s failed: %s", op.key, type(exc).__name__)
        self._finish(op, "failed", error=str(exc), retryable=retryable)

    def _refused(self, op: WriteOp, reason: str, fields: list[str], check: str) -> None:
        """The write will not be made as planned: its record is quarantined with the reason (shown on this
        run's page and on later runs' until fixed, `Store.carry_refusals`), and nothing else waits for it."""
        log.warning("write %s refused", op.key)
        self.outcome.refused += 1
        shown = {k: v for k, v in op.values.items() if any(k == f or k.startswith(f"{f}.") for f in fields)}
        refusal = {"submission_id": self._submission_id(op.student_number), "field": ", ".join(dict.fromkeys(fields)),
                   "reason": reason, "check": check,
                   "value": "; ".join(f"{k} = {as_text(v)}" for k, v in (shown or op.values).items())[:2000]}
        self.store.ledger_finish(self.run_id, op.key, REFUSED, error=reason, refusal=refusal)

    def _skip(self, op: WriteOp, exc: Skipped) -> None:
        self.store.ledger_finish(self.run_id, op.key, SKIPPED_BY_REVIEWER, error=str(exc))
        self.store.audit(self.run_id, op.key, op.kind, student_number=op.student_number,
                         person_ref=op.person_ref or "", before=op.expected, after={}, reviewer=exc.reviewer,
                         response=SKIPPED_BY_REVIEWER)
        self.outcome.skipped_by_reviewer += 1

    def _ambiguous(self, op: WriteOp, exc: Ambiguous, creates: Identity) -> None:
        """The create stops for a person: a review item naming each candidate with what it holds."""
        candidates = [{"person_id": pid, "exact": pid in exc.mine, **ident.view()}
                      for pid, ident in exc.candidates.items()]
        item = ReviewItem(key=ambiguous_item_key(op.key), kind=AMBIGUOUS_CREATE,
                          submission_id=self._submission_id(op.student_number), student_number=op.student_number,
                          target=op.kind, options=[*(f"adopt:{pid}" for pid in exc.candidates), *CREATE_OPTIONS],
                          payload={"op": op.key, "person_ref": op.person_ref or "", "reason": exc.reason,
                                   "creates": creates.view(), "candidates": candidates})
        self.store.add_review_item(self.run_id, item)
        self._finish(op, AMBIGUOUS_CREATE, error=f"which contact is this create's cannot be told: {exc.reason}")

    def _refuse(self, op: WriteOp, exc: Refused) -> None:
        self._refused(op, f"refused: {exc}", [op.kind], RULE_REFUSED)

    def _submission_id(self, student_number: str) -> str:
        if self._submission_of is None:
            self._submission_of = {r.student_number: r.submission_id for r in self.store.submissions(self.run_id)}
            plan = self.store.get_data(self.run_id, "plan") or {}
            for sp in plan.get("students", []):
                self._submission_of.setdefault(sp.get("student_number", ""), sp.get("submission_id", ""))
        return self._submission_of.get(student_number, "")

    def _stale(self, op: WriteOp, exc: StaleWrite) -> None:
        """The write goes back to review: a `stale_write` item with the three values per field."""
        touched = exc.touched or {k: (s, c, exc.intended.get(k, op.values.get(k))) for k, (s, c) in exc.fields.items()}
        fields = {k: {"snapshot": as_text(s), "current": as_text(c), "intended": as_text(i), "changed": k in exc.fields}
                  for k, (s, c, i) in touched.items()}
        for k, (s, c) in exc.fields.items():
            fields.setdefault(k, {"snapshot": as_text(s), "current": as_text(c),
                                  "intended": as_text(exc.intended.get(k, op.values.get(k))), "changed": True})
        item = ReviewItem(key=stale_item_key(op.key), kind="stale_write",
                          submission_id=self._submission_id(op.student_number), student_number=op.student_number,
                          target=op.kind, options=list(STALE_OPTIONS),
                          payload={"op": op.key, "op_kind": op.kind, "person_ref": op.person_ref or "",
                                   "student_dcid": op.student_dcid, "fields": fields})
        self.store.add_review_item(self.run_id, item)
        self._finish(op, "stale", error=str(exc))

    def _check_stale(self, op: WriteOp, touched: dict[str, tuple[Any, Any, Any]]) -> None:
        """Raise StaleWrite when a touched field's current value is neither the snapshot's, nor the one we
        write, nor one a reviewer saw and chose to overwrite. touched: field -> (snapshot, current, intended)."""
        accepted = self.accepted.get(op.key, {})
        changed = {k: (s, c) for k, (s, c, i) in touched.items()
                   if as_text(c) not in (as_text(s), as_text(i)) and not (k in accepted and accepted[k] == as_text(c))}
        if changed:
            raise StaleWrite(op.key, changed, {k: i for k, (_s0, _c, i) in touched.items()}, touched)

    def _create_gate(self, op: WriteOp) -> bool:
        """For a create left ambiguous: False while its item is undecided (a person is still to say)."""
        row = self.ledger.get(op.key)
        if row is None or row.status != AMBIGUOUS_CREATE:
            return True
        item = self.ambiguous_items.get(ambiguous_item_key(op.key))
        if item is not None and item.state == "decided":
            return True
        self.outcome.ambiguous += 1
        return False

    def _stale_gate(self, op: WriteOp) -> bool:
        """For an op left stale by an earlier attempt: False while its item is undecided (or decided
        keep_powerschool, which finishes it here); True to execute it (decided overwrite, or no item)."""
        row = self.ledger.get(op.key)
        if row is None or row.status != "stale":
            return True
        item = self.stale_items.get(stale_item_key(op.key))
        if item is None:
            return True  # the item is gone (the plan was rebuilt): re-read and decide afresh
        if item.state != "decided":
            self.outcome.stale += 1
            return False
        if item.choice == "keep_powerschool":
            self.store.ledger_finish(self.run_id, op.key, SKIPPED_BY_REVIEWER,
                                     error=f"PowerSchool's value kept by {item.decided_by or 'a reviewer'}")
            self.store.audit(self.run_id, op.key, op.kind, student_number=op.student_number,
                             person_ref=op.person_ref or "", before=op.expected, after={},
                             reviewer=item.decided_by or "", response=SKIPPED_BY_REVIEWER)
            self.outcome.skipped_by_reviewer += 1
            return False
        self.accepted[op.key] = {k: v.get("current", "") for k, v in (item.payload.get("fields") or {}).items()
                                 if v.get("changed")}
        return True

    def _guard(self, op: WriteOp) -> None:
        """Rules checked before anything is written for the op."""
        kind, _, value = (op.person_ref or "").partition(":")
        if kind == "p" and int(value) in self.unresolved_type_persons:
            raise Refused(f"contact {value} has an unresolved phone type mismatch; decide it before apply")
        problem = write_problem(op.values, op.expected, self.region)
        if problem:
            raise Refused(problem)

    @property
    def outcome(self) -> ApplyOutcome:
        """This thread's tally (workers never share a counter); `run` merges them."""
        mine = getattr(self._local, "outcome", None)
        if mine is None:
            mine = self._local.outcome = ApplyOutcome()
            with self._outcomes_lock:
                self._outcomes.append(mine)
        return mine

    def _merged(self) -> ApplyOutcome:
        total = ApplyOutcome()
        for part in self._outcomes:
            total.add(part)
        return total

    # ------------------------------------------------------------ run
    def run(self, ops: list[WriteOp], batch_size: int = 50) -> ApplyOutcome:
        writable_run(self.store, self.run_id)  # never a dry run's plan, never a superseded run's
        # a value a rule refuses is not carried into a create: its own op refuses it (and quarantines it)
        self._carried = {ref: [o for o in carried if not write_problem(o.values, o.expected, self.region)]
                         for ref, carried in ce.carried_ops(ops).items()}
        start = getattr(self.client, "writes_succeeded", 0)
        self._run(ops, batch_size)
        total = self._merged()
        total.http_writes = getattr(self.client, "writes_succeeded", 0) - start
        return total

    def _run(self, ops: list[WriteOp], batch_size: int) -> ApplyOutcome:
        pending = []
        for op in ops:
            if self._is_done(op):
                self.outcome.skipped += 1
            elif self._stale_gate(op) and self._create_gate(op):
                pending.append(op)
        students = [op for op in pending if op.kind == "student_update"]
        # A student whose earlier attempt failed goes alone, so one bad record cannot sink a batch twice.
        alone = [op for op in students if self._earlier_attempt(op) or op.key in self.accepted]
        together = [op for op in students if op not in alone]
        for i in range(0, len(together), batch_size):
            self._apply_students(together[i:i + batch_size])
        for op in alone:
            self._apply_students([op])
        others = [op for op in pending if op.kind != "student_update"]
        groups = independent_groups(others)
        if self.concurrency > 1 and len(groups) > 1:
            # groups share no student and no person, so their writes cannot interleave on one record;
            # the shared client keeps the connection's rate limit for all of them together
            with ThreadPoolExecutor(self.concurrency, thread_name_prefix="apply") as pool:
                list(pool.map(self._apply_sequence, groups))
        else:
            self._apply_sequence(others)
        return self.outcome

    def _apply_sequence(self, ops: list[WriteOp]) -> None:
        for op in ops:
            self._apply_one(op)

    def _apply_one(self, op: WriteOp) -> None:
        self.store.ledger_begin(self.run_id, op.key, op.kind)
        self._sending([op.key])
        try:
            self._guard(op)
            writes = getattr(self, f"_op_{op.kind}")(op)
            if writes is None or isinstance(writes, int):
                result_id = None
            else:
                result_id, writes = writes
            self._finish(op, "done", result_id=result_id, writes=writes if isinstance(writes, int) else 1)
        except StaleWrite as exc:
            self._stale(op, exc)
        except Skipped as exc:
            self._skip(op, exc)
        except Ambiguous as exc:
            self._ambiguous(op, exc, Identity.of(ce.create_body(op, self._carried.get(op.person_ref or "", []))))
        except Refused as exc:
            self._refuse(op, exc)
        except NotKept as exc:
            self._refused(op, f"PowerSchool did not keep: {exc}", [op.kind], POWERSCHOOL_REFUSED)
        except PowerSchoolError as exc:
            self._fail(op, exc)

    # ------------------------------------------------------------ students (batched)
    def _apply_students(self, ops: list[WriteOp]) -> None:
        ready = []
        for op in ops:
            self.store.ledger_begin(self.run_id, op.key, op.kind)
            try:
                self._guard(op)
                current = _current_student_values(self._read_student(op.student_dcid), op.values)
                self._check_stale(op, {k: (op.expected.get(k, ""), current[k], v) for k, v in op.values.items()})
            except StaleWrite as exc:
                self._stale(op, exc)
                continue
            except Refused as exc:
                self._refuse(op, exc)
                continue
            except PowerSchoolError as exc:
                self._fail(op, exc)
                continue
            if all(current[k] == v for k, v in op.values.items()):
                # already there: an earlier attempt whose reply was lost wrote it (the before-value for a
                # rollback is then the snapshot's, `expected`), or someone else did (a no-op)
                self._finish(op, "done", writes=0)
                continue
            self._prior[op.key] = current
            ready.append(op)
        if not ready:
            return
        self._sending([op.key for op in ready])
        try:
            results = self.client.update_students([student_body(op) for op in ready])
        except PowerSchoolError as exc:
            for op in ready:  # the batch failed as a whole: each record is retried alone next time
                self._finish(op, "failed", error=f"batch of {len(ready)} failed: {exc}",
                             retryable=isinstance(exc, AmbiguousWriteError)
                             or (getattr(exc, "status", 0) or 0) in RETRYABLE_STATUSES)
            return
        by_uid = {r.client_uid: r for r in results}
        for op in ready:
            result = by_uid.get(op.key)
            if result is None:
                self._finish(op, "failed", error="no result for this record", retryable=False)
                continue
            if result.status != "SUCCESS":  # PowerSchool refused this record (the others of the batch stand)
                errors = "; ".join(f"{e.field}: {e.description}" for e in result.errors) or "refused"
                self._refused(op, errors, [e.field for e in result.errors if e.field] or [op.kind],
                              POWERSCHOOL_REFUSED)
                continue
            try:
                after = _current_student_values(self._read_student(op.student_dcid), op.values)
            except PowerSchoolError as exc:
                self._fail(op, exc)
                continue
            dropped = [k for k, v in op.values.items() if after[k] != v]
            if dropped:
                self._refused(op, f"PowerSchool did not keep: {', '.join(dropped)}", dropped, POWERSCHOOL_REFUSED)
            else:
                self._finish(op, "done", response="SUCCESS")

    def _read_student(self, dcid: int) -> dict[str, Any]:
        return read_student(self.client, dcid)

    # ------------------------------------------------------------ contacts
    def _op_contact_create(self, op: WriteOp) -> tuple[int, int]:
        """POST the person with every value the run gives it, so that the record is recognisable as this
        op's own after a lost reply (`create_evidence.py`); never adopt a record on a name alone."""
        row = self.ledger.get(op.key)
        evidence = Evidence.load(row.evidence if row else None)
        if row is not None and row.status == AMBIGUOUS_CREATE:
            adopted = self._decided_create(op, self.ambiguous_items[ambiguous_item_key(op.key)])
            if adopted is not None:
                return adopted, 0
            evidence = None  # "create anew": a new watermark, so the records found before stay apart
        elif evidence is None and row is not None and row.attempts and row.sent is None:
            # an attempt made before the ledger recorded what was sent: nothing tells what it did
            raise Ambiguous("an attempt made by an earlier version may have created it; look for the contact in "
                            "PowerSchool")
        elif evidence is not None and self._sent_before(op):  # an earlier POST's outcome was never learnt
            found = self._recognise(op, evidence)
            if found is not None:
                self._response[op.key] = "SUCCESS (found after an earlier attempt: the only new contact " \
                                         "holding exactly its values)"
                return self._check_created(op, found), 1
        carried = self._carried.get(op.person_ref or "", [])
        if evidence is not None and [c.key for c in carried] != evidence.carries:
            evidence = None  # applied with other ops than before: the record it makes now is another one
        body = ce.create_body(op, carried)
        if evidence is None:
            identity = Identity.of(body)
            evidence = Evidence(watermark=self._newest_person_id(), fingerprint=identity.fingerprint,
                                distinguishable=identity.distinguishable, carries=[c.key for c in carried])
            self.store.ledger_evidence(self.run_id, op.key, evidence.dump())  # before the POST
        try:
            pid = self.client.create_contact(body)
        except AmbiguousWriteError:
            found = self._recognise(op, evidence)
            if found is None:
                raise
            self._response[op.key] = "SUCCESS (found after an unknown outcome: the only new contact holding " \
                                     "exactly its values)"
            pid = found
        return self._check_created(op, pid), 1

    def _decided_create(self, op: WriteOp, item) -> int | None:
        """A person's answer to an ambiguous create: the adopted person's id, None to create anew, or Skipped."""
        who = item.decided_by or "a reviewer"
        if item.choice == "skip":
            raise Skipped(f"not created: {who} decided to skip it", who)
        if item.choice == "create_new":
            return None
        pid = int(str(item.choice).split(":", 1)[1])
        claimed = {p: by for p, by in self.store.claimed_persons([pid]).items() if by != f"{self.run_id} {op.key}"}
        if claimed:
            raise Ambiguous(f"person {pid}, adopted by {who}, was claimed since by {claimed[pid]}")
        self.client.get_demographics(pid)  # still there (NotFound otherwise)
        self._response[op.key] = f"SUCCESS (identified by {who} as created by an earlier attempt)"
        return pid

    def _newest_person_id(self) -> int:
        """One watermark per apply task, taken before its first create: any record a create of this task
        makes has a higher person id (an older one can only be a lower bound, which is safe)."""
        with self._watermark_lock:
            if self._watermark is None:
                self._watermark = ce.newest_person_id(self.client)
            return self._watermark

    def _recognise(self, op: WriteOp, evidence: Evidence) -> int | None:
        """This create's record, None when the create did not happen, or Ambiguous (`create_evidence.judge`)."""
        named = ce.persons_named_after(self.client, op.values["first_name"], op.values["last_name"],
                                       evidence.watermark)
        claimed = self.store.claimed_persons(named)
        free = [pid for pid in named if pid not in claimed]
        found = {int(c["contactId"]): Identity.of(c) for c in self.client.get_contacts(free)} if free else {}
        # read after PowerSchool: a create of the run announces itself in the ledger before its record exists
        others = [Evidence.load(r.evidence) for r in self.store.ledger_of_kind(self.run_id, "contact_create")
                  if r.op_key != op.key and r.sent and r.evidence]
        explained = {e.fingerprint for e in others if e is not None}
        return ce.judge(evidence, found, explained, evidence.fingerprint in explained)

    def _check_created(self, op: WriteOp, pid: int) -> int:
        current = self.client.get_demographics(pid)
        dropped = [k for k, api in NAME_FIELDS.items() if k in op.values and (current.get(api) or "") != op.values[k]]
        if dropped:
            raise NotKept(f"contact {pid} {', '.join(dropped)}")
        return pid

    def _snapshot_person(self, pid: int):
        return self.snapshot.persons.get(pid)

    def _op_contact_name(self, op: WriteOp) -> int:
        pid = self._person_id(op.person_ref)
        current = self.client.get_demographics(pid)
        self._check_stale(op, {k: (op.expected.get(k, ""), current.get(NAME_FIELDS[k]) or "", v)
                               for k, v in op.values.items()})
        self._prior[op.key] = {k: current.get(api) or "" for k, api in NAME_FIELDS.items()}
        if all((current.get(NAME_FIELDS[k]) or "") == v for k, v in op.values.items()):
            return 0
        body = {**current, **{NAME_FIELDS[k]: v for k, v in op.values.items()}}
        body.pop("contactId", None)
        self.client.put_demographics(pid, body)
        after = self.client.get_demographics(pid)
        dropped = [k for k, v in op.values.items() if (after.get(NAME_FIELDS[k]) or "") != v]
        if dropped:
            raise NotKept(f"contact {pid} {', '.join(dropped)}")
        return 1

    def _child_exists(self, pid: int, kind: str, match) -> dict | None:
        return next((c for c in self.client.list_children(pid, kind) if match(c)), None)

    def _add_child(self, op: WriteOp, pid: int, kind: str, body: dict[str, Any], match, id_key: str) -> tuple[int, int]:
        """Add a phone/email/address unless it is there; after a lost reply, look before trying again."""
        existing = self._child_exists(pid, kind, match)
        if existing:
            return int(existing.get(id_key) or 0), self._found_in_place(op, "found", "noop: already present")
        try:
            new_id = self.client.add_child(pid, kind, body)
        except (AmbiguousWriteError, DuplicateError):
            existing = self._child_exists(pid, kind, match)
            if existing is None:
                raise
            self._response[op.key] = "SUCCESS (found after an unknown outcome)"
            new_id = int(existing.get(id_key) or 0)
        kept = self._child_exists(pid, kind, lambda c: int(c.get(id_key) or 0) == new_id and match(c))
        if kept is None:
            raise NotKept(f"{kind[:-1]} {new_id} of contact {pid} does not read back as written")
        return new_id, 1

    def _phone_snapshot(self, pid: int, phone_id: int | None) -> Any:
        person = self._snapshot_person(pid)
        return next((p for p in (person.phones if person else []) if p.id == phone_id), None)

    def _op_phone_add(self, op: WriteOp) -> tuple[int, int]:
        pid = self._person_id(op.person_ref)
        digits = _digits(op.values["number"])
        return self._add_child(op, pid, "phones", ce.phone_body(op), lambda c: _digits(c.get("phoneNumber")) == digits,
                               "phoneNumberId")

    def _op_phone_update(self, op: WriteOp) -> int:
        pid = self._person_id(op.person_ref)
        current = self._child_exists(pid, "phones", lambda c: int(c.get("phoneNumberId") or 0) == op.target_id)
        snap = self._phone_snapshot(pid, op.target_id)
        if current is None:
            raise StaleWrite(op.key, {"phone": ("present", "deleted")}, {"phone": op.values.get("number", "")})
        touched = {}
        if "number" in op.values:
            touched["number"] = (op.expected.get("number", snap.number if snap else ""), current.get("phoneNumber"),
                                 op.values["number"])
        if "type" in op.values:
            touched["type"] = (op.expected.get("type", snap.type if snap else ""), current.get("phoneType"),
                               op.values["type"])
        self._check_stale(op, touched)
        if "type" in op.values and current.get("phoneType") != op.values["type"] and (
                "type" not in op.expected or op.target_id not in self.type_change_approved):
            raise Refused(f"phone {op.target_id} of contact {pid}: changing its type from "
                          f"{current.get('phoneType')!r} to {op.values['type']!r} needs a reviewer's "
                          "use_submitted_type decision")
        self._prior[op.key] = {"phoneNumber": current.get("phoneNumber"), "extension": current.get("extension") or "",
                               "phoneType": current.get("phoneType")}
        body = {k: v for k, v in current.items() if k in ("phoneNumber", "extension", "phoneType", "preferred",
                                                           "sms", "sequence")}
        if "number" in op.values:
            body.update(phoneNumber=op.values["number"], extension=op.values.get("extension", ""))
        if "type" in op.values:
            body["phoneType"] = op.values["type"]
        if all(current.get(k) == body[k] for k in ("phoneNumber", "phoneType")) and \
                (current.get("extension") or "") == (body.get("extension") or ""):
            return 0
        self.client.update_child(pid, "phones", op.target_id, body)
        after = self._child_exists(pid, "phones", lambda c: int(c.get("phoneNumberId") or 0) == op.target_id) or {}
        dropped = [k for k in ("phoneNumber", "phoneType") if after.get(k) != body[k]]
        if dropped:
            raise NotKept(f"phone {op.target_id} of contact {pid}: {', '.join(dropped)}")
        return 1

    def _op_email_add(self, op: WriteOp) -> tuple[int, int]:
        pid = self._person_id(op.person_ref)
        wanted = op.values["address"].casefold()
        emails = self.client.list_children(pid, "emails")
        primary = next((e for e in emails if e.get("primary")), None)
        if primary is not None and str(primary.get("address", "")).casefold() != wanted:
            self._prior[op.key] = {"primary_email_id": int(primary.get("emailId") or 0),
                                   "primary_address": primary.get("address")}
        return self._add_child(op, pid, "emails", ce.email_body(op),
                               lambda c: str(c.get("address", "")).casefold() == wanted, "emailId")

    def _op_email_update(self, op: WriteOp) -> int:
        pid = self._person_id(op.person_ref)
        current = self._child_exists(pid, "emails", lambda c: int(c.get("emailId") or 0) == op.target_id)
        if current is None:
            raise StaleWrite(op.key, {"address": (op.expected.get("address"), "(deleted)")},
                             {"address": op.values["address"]})
        self._check_stale(op, {"address": (op.expected.get("address"), current.get("address"), op.values["address"])})
        self._prior[op.key] = {"address": current.get("address")}
        if current.get("address") == op.values["address"]:
            return 0
        body = {k: v for k, v in current.items() if k in ("address", "type", "primary")}
        self.client.update_child(pid, "emails", op.target_id, {**body, "address": op.values["address"]})
        after = self._child_exists(pid, "emails", lambda c: int(c.get("emailId") or 0) == op.target_id) or {}
        if after.get("address") != op.values["address"]:
            raise NotKept(f"email {op.target_id} of contact {pid}: address")
        return 1

    def _op_address_add(self, op: WriteOp) -> tuple[int, int]:
        pid = self._person_id(op.person_ref)
        return self._add_child(op, pid, "addresses", ce.address_body(op),
                               lambda c: c.get("street") == op.values["street"]
                               and c.get("addressType") == op.values["type"], "addressId")

    def _op_address_update(self, op: WriteOp) -> int:
        pid = self._person_id(op.person_ref)
        current = self._child_exists(pid, "addresses", lambda c: int(c.get("addressId") or 0) == op.target_id)
        if current is None:
            raise StaleWrite(op.key, {"address": ("present", "deleted")}, {"address": op.values["street"]})
        person = self._snapshot_person(pid)
        snap = next((a for a in (person.addresses if person else []) if a.id == op.target_id), None)
        self._check_stale(op, {k: (getattr(snap, k) if snap else current.get(api), current.get(api), op.values[k])
                               for k, api in ADDRESS_FIELDS.items()})
        self._prior[op.key] = {api: current.get(api) or "" for api in ("addressType", "street", "linetwo", "unit",
                                                                       "city", "state", "postalcode", "country")}
        if all(current.get(api) == op.values[k] for k, api in ADDRESS_FIELDS.items()):
            return 0
        body = {**{k: v for k, v in current.items() if k not in ("addressId", "contactAddressId")},
                **ce.address_body(op)}
        body.pop("startDate", None)
        self.client.update_child(pid, "addresses", op.target_id, body)
        after = self._child_exists(pid, "addresses", lambda c: int(c.get("addressId") or 0) == op.target_id) or {}
        dropped = [k for k, api in ADDRESS_FIELDS.items() if after.get(api) != op.values[k]]
        if dropped:
            raise NotKept(f"address {op.target_id} of contact {pid}: {', '.join(dropped)}")
        return 1

    def _op_link_add(self, op: WriteOp) -> tuple[int, int]:
        pid = self._person_id(op.person_ref)

        def linked() -> int | None:
            for link in self.client.list_links(pid):
                if int(link.get("dcid") or 0) == op.student_dcid:
                    return int(link["studentContactId"])
            return None

        found = linked()  # linked already (a rerun after a crash)
        if found is not None:
            self.links[(pid, op.student_dcid)] = found
            return found, self._found_in_place(op, "found", "noop: already linked")
        try:
            link_id = self.client.add_link(pid, ce.link_body(op))
        except (AmbiguousWriteError, DuplicateError):
            link_id = linked()
            if link_id is None:
                raise
            self._response[op.key] = "SUCCESS (found after an unknown outcome)"
        self.links[(pid, op.student_dcid)] = link_id
        return link_id, 1

    def _link_id(self, pid: int, dcid: int) -> int:
        if (pid, dcid) not in self.links:
            for link in self.client.list_links(pid):
                if int(link.get("dcid") or 0) == dcid:
                    self.links[(pid, dcid)] = int(link["studentContactId"])
        if (pid, dcid) not in self.links:
            raise StaleWrite(f"link {pid}-{dcid}", {"link": ("present", "deleted")})
        return self.links[(pid, dcid)]

    def _snapshot_detail(self, detail_id: int | None):
        details = getattr(self, "_details_by_id", None)
        if details is None:  # built once: a scan of every link per detail op was quadratic
            details = self._details_by_id = {d.id: d for lk in self.snapshot.links for d in lk.details}
        return details.get(detail_id)

    def _op_detail_update(self, op: WriteOp) -> int:
        pid = self._person_id(op.person_ref)
        link_id = op.values["link_id"]
        try:
            details = self.client.list_details(pid, link_id)
        except NotFound:
            raise StaleWrite(op.key, {"link": ("present", "deleted")}, {"link": "update"}) from None
        current = next((d for d in details if int(d.get("studentContactDetailId") or 0) == op.target_id), None)
        if current is None:
            raise StaleWrite(op.key, {"detail": ("present", "deleted")}, {"detail": "update"})
        changes = {k: v for k, v in op.values.items() if k != "link_id"}
        self._check_stale(op, {k: (op.expected.get(k, ""), as_text(current.get(DETAIL_FIELDS.get(k, _camel(k)))), v)
                               for k, v in changes.items()})
        self._prior[op.key] = {"link_id": link_id, "detail_id": op.target_id, **{DETAIL_FIELDS.get(k, _camel(k)): current.get(
            DETAIL_FIELDS.get(k, _camel(k))) for k in changes}}
        body = {k: v for k, v in current.items() if k not in ("studentContactDetailId", "active")}
        for k, v in changes.items():
            body[DETAIL_FIELDS.get(k, _camel(k))] = v if k == "relationship" else v == "1"
        clash = details_overlap(details, op.target_id, body.get("startDate") or "", body.get("endDate") or "")
        if clash:
            raise Refused(f"detail {op.target_id} would overlap detail {clash.get('studentContactDetailId')} "
                          "of the same student link")
        if all(current.get(k) == v for k, v in body.items()):
            return 0
        self.client.update_detail(pid, link_id, op.target_id, body)
        return 1

    def _op_data_access(self, op: WriteOp) -> int:
        pid = self._person_id(op.person_ref)
        link_id = self._link_id(pid, op.student_dcid)
        link = next((lk for lk in self.client.list_links(pid) if int(lk.get("studentContactId") or 0) == link_id), {})
        self._prior[op.key] = {"link_id": link_id, "canAccessData": bool(link.get("canAccessData"))}
        if link.get("canAccessData"):
            return 0
        emails = self.client.list_children(pid, "emails")
        primary = next((e for e in emails if e.get("primary")), None)
        address = str((primary or {}).get("address") or "")
        if not EMAIL_RE.match(address):
            raise Refused(f"Data Access for contact {pid} needs a valid primary email; it has "
                          f"{'none' if not address else 'an invalid one'}")
        taken = next((a for a in self.snapshot.portal_accounts
                      if a.email.casefold() == address.casefold() and a.person_id != pid), None)
        if taken is not None:
            raise Refused(f"Data Access for contact {pid} needs an email not used by another portal account; "
                          f"its primary email is used by portal account {taken.username!r}")
        self.client.update_link(pid, link_id, {"canAccessData": True})
        after = next((lk for lk in self.client.list_links(pid) if int(lk.get("studentContactId") or 0) == link_id), {})
        if not after.get("canAccessData"):
            raise NotKept(f"canAccessData of link {link_id}")
        return 1

    # ------------------------------------------------------------ cleanup
    def _op_link_expire(self, op: WriteOp) -> int:
        pid = self._person_id(op.person_ref)
        try:
            details = self.client.list_details(pid, op.target_id)
        except NotFound:
            raise StaleWrite(op.key, {"link": ("present", "deleted")}, {"link": "expire"}) from None
        if not details:
            raise StaleWrite(op.key, {"detail": ("present", "deleted")}, {"detail": "expire"})
        current = max(details, key=lambda d: (d.get("startDate") or "", d.get("studentContactDetailId") or 0))
        detail_id = int(current["studentContactDetailId"])
        snap = self._snapshot_detail(detail_id)
        self._check_stale(op, {"end_date": (snap.end_date if snap else "", current.get("endDate") or "",
                                            op.values["end_date"])})
        self._prior[op.key] = {"link_id": op.target_id, "detail_id": detail_id, "endDate": current.get("endDate") or ""}
        if current.get("endDate") == op.values["end_date"]:
            return 0
        start = current.get("startDate") or ""
        if start and op.values["end_date"] < start:
            raise Refused(f"end date {op.values['end_date']} is before the link's start date {start}")
        clash = details_overlap(details, detail_id, start, op.values["end_date"])
        if clash:
            raise Refused(f"expiring detail {detail_id} would overlap detail {clash.get('studentContactDetailId')}")
        body = {k: v for k, v in current.items() if k not in ("studentContactDetailId", "active")}
        self.client.update_detail(pid, op.target_id, detail_id, {**body, "endDate": op.values["end_date"]})
        return 1

    # ------------------------------------------------------------ removals (a reviewer's or the form's)
    def _delete_child(self, op: WriteOp, kind: str, id_key: str, field: str, shown) -> int:
        """Delete one phone/email/address, if it still holds the value the plan saw; then read back."""
        pid = self._person_id(op.person_ref)
        current = self._child_exists(pid, kind, lambda c: int(c.get(id_key) or 0) == op.target_id)
        if current is None:  # gone: our earlier attempt whose reply was lost, or someone else's removal
            if self._sent_before(op):
                self._response[op.key] = "SUCCESS (found done after an earlier attempt)"
                return 1
            self._response[op.key] = "noop: already removed"
            return 0
        self._check_stale(op, {field: (op.expected.get(field, ""), shown(current), "(removed)")})
        self._prior[op.key] = {k: v for k, v in current.items() if not k.endswith("Id")}  # for a rollback
        try:
            self.client.delete_child(pid, kind, op.target_id)
        except NotFound:  # a retried DELETE whose first reply was lost
            pass
        if self._child_exists(pid, kind, lambda c: int(c.get(id_key) or 0) == op.target_id) is not None:
            raise NotKept(f"{kind[:-1]} {op.target_id} of contact {pid} is still there after its removal")
        return 1

    def _op_phone_delete(self, op: WriteOp) -> int:
        return self._delete_child(op, "phones", "phoneNumberId", "number", lambda c: c.get("phoneNumber") or "")

    def _op_email_delete(self, op: WriteOp) -> int:
        return self._delete_child(op, "emails", "emailId", "address", lambda c: c.get("address") or "")

    def _op_address_delete(self, op: WriteOp) -> int:
        return self._delete_child(op, "addresses", "addressId", "address",
                                  lambda c: address_text(*(c.get(k) or "" for k in ("street", "city", "state",
                                                                                     "postalcode"))))

    def _op_link_delete(self, op: WriteOp) -> int:
        pid = self._person_id(op.person_ref)
        link = next((lk for lk in self.client.list_links(pid) if int(lk.get("studentContactId") or 0) == op.target_id),
                    None)
        if link is None:
            if self._sent_before(op):
                self._response[op.key] = "SUCCESS (found done after an earlier attempt)"
                return 1
            return 0
        self._prior[op.key] = {"dcid": int(link.get("dcid") or 0), "sequence": int(link.get("sequence") or 0),
                               "canAccessData": bool(link.get("canAccessData")),
                               "studentDetails": [{k: v for k, v in d.items()
                                                   if k not in ("studentContactDetailId", "active")}
                                                  for d in link.get("studentDetails") or []]}
        try:
            self.client.delete_link(pid, op.target_id)
        except NotFound:  # a retried DELETE whose first reply was lost
            if any(int(lk.get("studentContactId") or 0) == op.target_id for lk in self.client.list_links(pid)):
                raise
        return 1

    def _op_contact_order(self, op: WriteOp) -> int:
        """Move links into the final order, one position at a time; never rewrites a person. Then read the
        order back: it must be 1..n without gaps, the wanted contacts in the wanted places."""
        writes = 0
        before = current_order(self.client, op.student_dcid)
        linked = {pid for _, pid, _ in before}
        refs = {}
        for ref in op.values["order"]:
            try:
                refs[ref] = self._person_id(ref)
            except (Skipped, Refused):  # its new contact is not created (skipped, or quarantined): placed nowhere
                continue
        for ref, pid in list(refs.items()):
            if pid in linked:
                continue
            # one row, not the run's whole ledger per order op (that made cleanup quadratic)
            link_op = self.store.ledger_row(self.run_id, f"link:{ref}:{op.student_dcid}")
            if link_op is not None and link_op.status in (REFUSED, SKIPPED_BY_REVIEWER):
                del refs[ref]  # its link will not be made in this run: the others are placed
                continue
            if link_op is not None and link_op.status != "done":  # its link is not made yet: try again later
                raise PowerSchoolError(0, f"the contact order waits for the link of {ref} (not made yet)", "", "")
            raise StaleWrite(op.key, {"order": (f"{ref} linked", f"{ref} not linked")},
                             {"order": ",".join(op.values["order"])})
        wanted = list(refs.values())
        expected = [int(ref.split(":")[1]) for ref in op.expected.get("order", []) if ref.startswith("p:")]
        known = set(expected)
        now = [pid for _, pid, _ in before if pid in known]
        self._check_stale(op, {"order": (",".join(map(str, expected)), ",".join(map(str, now)),
                                         ",".join(str(p) for p in wanted if p in known))})
        self._prior[op.key] = {"order": [[seq, pid, lid] for seq, pid, lid in before]}
        # A move puts the link at that place and shifts the others (PowerSchool keeps 1..n), so the
        # order is followed locally instead of re-read after every move; the read-back below checks it.
        for pid, link_id, position in order_moves([(p, lid) for _, p, lid in before], wanted):
            self.client.update_link(pid, link_id, {"sequence": position})
            writes += 1
        # nothing moved: the order read just now is the one to check (no second read of the contacts)
        after = current_order(self.client, op.student_dcid) if writes else before
        sequences = [seq for seq, _, _ in after]
        if sequences != list(range(1, len(after) + 1)):
            raise NotKept(f"contact order of student {op.student_dcid} is {sequences}, not 1..{len(after)}")
        present = [pid for _, pid, _ in after]
        if present[:len(wanted)] != wanted:
            raise NotKept(f"contact order of student {op.student_dcid} reads back as {present}, not {wanted}")
        return writes
