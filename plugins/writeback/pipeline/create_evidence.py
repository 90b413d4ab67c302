"""A contact create is recognised after a lost reply only by evidence that the record is the op's own.

A create POSTs the new person *with* the values the run gives it (its emails, phones, addresses and
student links: the ops that carry them, `carried`), so the record it makes holds exactly those values.
Before the first POST the ledger keeps the op's `Evidence`: the highest person id then (`watermark`,
person ids rise), the fingerprint of the record, and which ops it carries. When a later attempt (or the
same one, after an unknown outcome) has to find out whether the create happened, it lists the persons
of that name created after the watermark that no create of any run claims, reads what each holds, reads
the run's ledger afterwards (every record a create of the run may have made was announced there before
it existed), and `judge`s:

- exactly one person holds exactly these values, the record is distinguishable (an email, a phone or a
  student link, not a bare name), and no other op of the run would make an identical record: it is this
  op's own;
- nobody holds these values and no person of that name is unexplained: the create did not happen;
- anything else is ambiguous (`Ambiguous`): a person decides (adopt a named person, create anew, skip).
  A person whose values are exactly another op's of the run is explained by that op, not a candidate.
"""

from __future__ import annotations

import hashlib
import json
import unicodedata
from dataclasses import dataclass, field
from typing import Any

from ..domain.codes import EMAIL_TYPE
from ..domain.models import WriteOp
from ..domain.normalize import fold

CONTACTS_QUERY = "com.writeback.snapshot.contacts"
# apply ops whose values a new contact's create carries, by the contact JSON list they go into
CARRIED = {"email_add": "emails", "phone_add": "phones", "address_add": "addresses", "link_add": "contactStudents"}


def _digits(text: Any) -> str:
    return "".join(ch for ch in str(text or "") if ch.isdigit())


def _text(value: Any) -> str:
    return " ".join(unicodedata.normalize("NFC", str(value or "")).split()).casefold()


# ---------------------------------------------------------------- the bodies (one definition for both paths)


def phone_body(op: WriteOp) -> dict[str, Any]:
    return {"phoneNumber": op.values["number"], "extension": op.values.get("extension", ""),
            "phoneType": op.values["type"], "preferred": False, "sms": False}


def email_body(op: WriteOp) -> dict[str, Any]:
    return {"address": op.values["address"], "type": EMAIL_TYPE, "primary": True}


def address_body(op: WriteOp) -> dict[str, Any]:
    v = op.values
    # The form has one street line (with any unit in it): the old address's separate unit and second
    # line are cleared, or they would be doubled with the new street and the value would never settle.
    return {"addressType": v["type"], "street": v["street"], "linetwo": "", "unit": "", "city": v["city"],
            "state": v["state"], "postalcode": v["postal_code"], "country": "US", "startDate": v["start_date"]}


def link_detail(op: WriteOp) -> dict[str, Any]:
    v = op.values
    return {"relationship": v["relationship"], "startDate": v["start_date"],
            **{camel(k): bool(v[k]) for k in ("emergency", "lives_with", "custodial") if k in v}}


def link_body(op: WriteOp) -> dict[str, Any]:
    return {"dcid": op.student_dcid, "studentDetails": [link_detail(op)]}


BODIES = {"email_add": email_body, "phone_add": phone_body, "address_add": address_body, "link_add": link_body}


def create_body(create: WriteOp, carried: list[WriteOp]) -> dict[str, Any]:
    """`POST /ws/contacts/contact`: the person with every value the carried ops give it."""
    body: dict[str, Any] = {"firstName": create.values["first_name"], "middleName": create.values.get("middle_name", ""),
                            "lastName": create.values["last_name"]}
    for op in carried:
        body.setdefault(CARRIED[op.kind], []).append(BODIES[op.kind](op))
    return body


def carried_ops(ops: list[WriteOp]) -> dict[str, list[WriteOp]]:
    """For each new contact created among `ops`, the apply ops whose values its create carries."""
    created = {op.person_ref for op in ops if op.kind == "contact_create"}
    out: dict[str, list[WriteOp]] = {}
    for op in ops:
        if op.kind in CARRIED and op.stage == "apply" and op.person_ref in created:
            out.setdefault(op.person_ref or "", []).append(op)
    return out


# ---------------------------------------------------------------- what a record holds


@dataclass(frozen=True)
class Identity:
    """What a contact record holds, compared loosely only in case, spacing and phone punctuation."""

    first: str
    middle: str
    last: str
    emails: tuple[str, ...] = ()
    phones: tuple[str, ...] = ()
    addresses: tuple[tuple[str, ...], ...] = ()
    students: tuple[int, ...] = ()

    @classmethod
    def of(cls, contact: dict[str, Any]) -> Identity:
        """From a create body or from PowerSchool's contact JSON (the same keys)."""
        return cls(first=_text(contact.get("firstName")), middle=_text(contact.get("middleName")),
                   last=_text(contact.get("lastName")),
                   emails=tuple(sorted(_text(e.get("address")) for e in contact.get("emails") or [])),
                   phones=tuple(sorted(_digits(p.get("phoneNumber")) + "x" + _digits(p.get("extension"))
                                       for p in contact.get("phones") or [])),
                   addresses=tuple(sorted(tuple(_text(a.get(k)) for k in ("addressType", "street", "city", "state",
                                                                           "postalcode"))
                                          for a in contact.get("addresses") or [])),
                   students=tuple(sorted(int(s.get("dcid") or 0) for s in contact.get("contactStudents") or [])))

    @property
    def fingerprint(self) -> str:
        raw = json.dumps([self.first, self.middle, self.last, self.emails, self.phones, self.addresses, self.students])
        return hashlib.sha256(raw.encode()).hexdigest()

    @property
    def distinguishable(self) -> bool:
        """A bare name is no evidence: anyone can enter a contact of that name."""
        return bool(self.emails or self.phones or self.students)

    def view(self) -> dict[str, Any]:
        """What a reviewer compares (the review item's payload)."""
        return {"name": " ".join(p for p in (self.first, self.middle, self.last) if p), "emails": list(self.emails),
                "phones": [p.rstrip("x") for p in self.phones], "students": list(self.students)}


@dataclass
class Evidence:
    """Kept in the create's ledger row before its first POST."""

    watermark: int  # the highest person id before the first POST: a record of this op has a higher one
    fingerprint: str
    distinguishable: bool
    carries: list[str] = field(default_factory=list)  # keys of the ops whose values the create carries

    @classmethod
    def load(cls, data: dict[str, Any] | None) -> Evidence | None:
        return cls(**data) if data else None

    def dump(self) -> dict[str, Any]:
        return {"watermark": self.watermark, "fingerprint": self.fingerprint,
                "distinguishable": self.distinguishable, "carries": list(self.carries)}


class Ambiguous(Exception):
    """The evidence cannot tell whether (or which) record is this create's: a person decides."""

    def __init__(self, reason: str, candidates: dict[int, Identity] | None = None, mine: set[int] | None = None):
        self.reason = reason
        self.candidates = candidates or {}
        self.mine = mine or set()  # candidates holding exactly the op's values
        super().__init__(reason)


def judge(evidence: Evidence, found: dict[int, Identity], explained: set[str], twins: bool) -> int | None:
    """This create's record among `found` (the unclaimed persons of its name above its watermark), None when
    the create did not happen, else Ambiguous. `explained`: fingerprints of the run's other creates that may
    have been sent; `twins`: one of them would make a record identical to this one."""
    mine = {pid for pid, ident in found.items() if ident.fingerprint == evidence.fingerprint}
    strangers = {pid for pid, ident in found.items() if pid not in mine and ident.fingerprint not in explained}
    if len(mine) == 1 and evidence.distinguishable and not twins:
        return next(iter(mine))
    if not mine and not strangers:
        return None
    if mine and not evidence.distinguishable:
        reason = ("the contact it creates holds only a name, and a new person of that name was found: anyone "
                  "could have entered it")
    elif mine and twins:
        reason = "another operation of this run would create an identical record, so the record found may be its"
    elif len(mine) > 1:
        reason = f"{len(mine)} new persons hold exactly the values it creates"
    else:
        reason = ("new persons of that name hold other values than it creates: one may be its record, changed "
                  "since, or someone else's")
    candidates = {pid: found[pid] for pid in sorted(mine | strangers)}
    raise Ambiguous(reason, candidates, mine)


def newest_person_id(client: Any) -> int:
    """The highest person id PowerSchool has now (the snapshot contacts query is ordered by id)."""
    last = next(client.powerquery_pages_from_end(CONTACTS_QUERY), [])
    return max((int(r["person.id"]) for r in last), default=0)


def persons_named_after(client: Any, first: str, last: str, watermark: int) -> list[int]:
    """Persons of this (folded) name created after `watermark`, read from the newest back to it."""
    name = (fold(first), fold(last))
    out: list[int] = []
    for page in client.powerquery_pages_from_end(CONTACTS_QUERY):
        out += [int(r["person.id"]) for r in page if int(r["person.id"]) > watermark
                and (fold(r.get("person.firstname") or ""), fold(r.get("person.lastname") or "")) == name]
        if not page or min(int(r["person.id"]) for r in page) <= watermark:
            break
    return out


def camel(name: str) -> str:
    head, *rest = name.split("_")
    return head + "".join(p.title() for p in rest)
