"""Pydantic models of the domain: what families submit, what PowerSchool holds, what we plan to write.

Pure data, no I/O. Empty string means "no value" for every text field, as in PowerSchool's exports.
"""

from __future__ import annotations

import datetime as dt
from enum import StrEnum
from typing import Any

from pydantic import BaseModel, ConfigDict, Field


class Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=False)


# ---------------------------------------------------------------- submissions (SchoolEngage side)


class Submission(Model):
    """One form submission as the source delivers it: flat form fields, every value a string."""

    id: str
    form_id: str = ""
    student_number: str = ""
    submitted_at: str = ""
    updated_at: str = ""
    fields: dict[str, Any] = Field(default_factory=dict)


class SubmittedPhone(Model):
    type: str  # PowerSchool phone type code: Home / Mobile / Work
    number: str  # as the family typed it (what gets written)
    extension: str = ""
    e164: str = ""  # normalised, for comparison only


class SubmittedAddress(Model):
    street: str = ""
    city: str = ""
    state: str = ""
    postal_code: str = ""


class WritePolicy(StrEnum):
    """What a mapped field may do to PowerSchool (the mapping's `policy:`)."""

    ALWAYS = "always"  # write the submitted value (the default)
    IF_EMPTY = "if_empty"  # fill a blank, never overwrite or remove a value PowerSchool has
    REVIEW = "review"  # a change needs a person's approval
    NEVER = "never"  # compare and show only: never written


class SubmittedContact(Model):
    slot: int  # the form's contact: the template's n, or a named section's declared place
    first_name: str = ""
    middle_name: str = ""
    last_name: str = ""
    relationship: str = ""  # PowerSchool relationship code after the mapping's code map
    phones: list[SubmittedPhone] = Field(default_factory=list)
    email: str = ""
    address: SubmittedAddress | None = None
    emergency: bool | None = None
    lives_with: bool | None = None
    custodial: bool | None = None
    data_access: bool | None = None
    remove: bool = False
    # values the form left blank where the mapping says a blank clears PowerSchool ("phone:<type>", "email")
    clears: list[str] = Field(default_factory=list)
    section: str = ""  # the mapping's section ("guardian2"), or "contact<n>" for the template
    position: int = 0  # the place in the student's contact order the mapping gives it (0: its slot)
    default_relationship: str = ""  # for a new link when the form gives no relationship
    # write policies other than `always`, by value: "phone:<type>", "email", "address", "detail:<name>"
    policies: dict[str, WritePolicy] = Field(default_factory=dict)

    @property
    def place(self) -> int:
        return self.position or self.slot


class FormVersion(Model):
    """One of several forms merged for a student: its submission and the timestamp it was ordered by."""

    submission_id: str
    stamp: str = ""  # SchoolEngage's updated_at (else submitted_at), as the source sent it


class Disagreement(Model):
    """A field or contact value the merged forms give differently (after normalisation)."""

    ref: str  # field:<target> | address:<group> | contact<slot>:<name|relationship|phone:<type>|email|...>
    slot: int | None = None  # the merged record's contact slot, for a contact value
    values: dict[str, Any]  # submission id -> that form's value, latest form first (forms silent on it absent)
    shown: dict[str, str]  # submission id -> the value as a person reads it


class FormMerge(Model):
    """Several forms for one student in one run, merged into one record (`domain/forms.py`)."""

    forms: list[FormVersion]  # latest first: forms[0] is the merged record's own submission
    disagreements: list[Disagreement] = Field(default_factory=list)


class FormRecord(Model):
    """A submission after the mapping: student targets and ordered contacts, ready to compare."""

    submission_id: str
    student_number: str
    student_fields: dict[str, str] = Field(default_factory=dict)  # target -> new value
    blank_clears: list[str] = Field(default_factory=list)  # targets whose empty value clears PowerSchool
    review_targets: list[str] = Field(default_factory=list)  # targets whose changes need a person
    contacts: list[SubmittedContact] = Field(default_factory=list)
    form_id: str = ""
    mapping: str = ""  # the name of the mapping that read the form
    policies: dict[str, WritePolicy] = Field(default_factory=dict)  # target -> policy other than `always`
    order_reason: str = ""  # why the contacts take the places they take (the mapping's sections and rules)
    notes: list[str] = Field(default_factory=list)  # what a combination rule did (e.g. an address copied)
    forms: FormMerge | None = None  # set when this record merges several forms of the student


class RecordProblem(Model):
    """Why a record was quarantined: the record, the field, the reason, and the offending value."""

    submission_id: str
    field: str
    reason: str
    value: str = ""
    check: str = ""  # the mapping transform or expectation that failed


# ---------------------------------------------------------------- PowerSchool snapshot


class Phone(Model):
    id: int
    number: str
    extension: str = ""
    type: str = ""
    preferred: bool = False
    sms: bool = False
    sequence: int = 0


class Email(Model):
    id: int
    address: str
    type: str = ""
    primary: bool = False


class Address(Model):
    id: int
    type: str = ""
    street: str = ""
    linetwo: str = ""
    unit: str = ""
    city: str = ""
    state: str = ""
    postal_code: str = ""
    country: str = ""
    start_date: str = ""
    end_date: str = ""


class LinkDetail(Model):
    id: int
    relationship: str = ""
    relationship_note: str = ""
    custodial: bool = False
    emergency: bool = False
    lives_with: bool = False
    school_pickup: bool = False
    receives_mail: bool = False
    start_date: str = ""
    end_date: str = ""


class StudentLink(Model):
    id: int
    person_id: int
    student_dcid: int
    sequence: int
    can_access_data: bool = False
    details: list[LinkDetail] = Field(default_factory=list)

    def current_detail(self) -> LinkDetail | None:
        """The detail in force: the one with the latest start date."""
        return max(self.details, key=lambda d: (d.start_date, d.id), default=None)

    def is_expired(self, today: dt.date) -> bool:
        detail = self.current_detail()
        return bool(detail and detail.end_date and detail.end_date < today.isoformat())


class Person(Model):
    id: int
    first_name: str = ""
    middle_name: str = ""
    last_name: str = ""
    prefix: str = ""
    suffix: str = ""
    gender: str = ""
    employer: str = ""
    phones: list[Phone] = Field(default_factory=list)
    emails: list[Email] = Field(default_factory=list)
    addresses: list[Address] = Field(default_factory=list)


class Student(Model):
    dcid: int
    student_number: str
    family_ident: str = ""
    values: dict[str, str] = Field(default_factory=dict)  # mapping target -> current value


class PortalAccount(Model):
    id: int
    username: str = ""
    email: str = ""
    enabled: bool = True
    person_id: int | None = None


class Snapshot(Model):
    """The PowerSchool state a run compares against."""

    taken_at: str = ""
    students: dict[int, Student] = Field(default_factory=dict)  # by dcid
    persons: dict[int, Person] = Field(default_factory=dict)
    links: list[StudentLink] = Field(default_factory=list)
    portal_accounts: list[PortalAccount] = Field(default_factory=list)

    def student_by_number(self) -> dict[str, Student]:
        return {s.student_number: s for s in self.students.values()}

    def links_of_student(self, dcid: int) -> list[StudentLink]:
        return sorted((lk for lk in self.links if lk.student_dcid == dcid), key=lambda lk: lk.sequence)


# ---------------------------------------------------------------- plan


class FieldAction(StrEnum):
    EDIT = "Edit"  # replace the existing value
    ADD = "Add"  # create a value PowerSchool lacks
    IGNORE = "Ignore"  # no write


class FieldStatus(StrEnum):
    KEEP = "keep"  # green: PowerSchool value stays
    REPLACE = "replace"  # red: PowerSchool value is overwritten
    NEW = "new"  # yellow: unique data PowerSchool lacks


class FieldChange(Model):
    target: str
    old: str
    new: str
    action: FieldAction
    status: FieldStatus
    needs_review: bool = False
    policy: WritePolicy = WritePolicy.ALWAYS
    held: bool = False  # the policy kept PowerSchool's value although the form differs


class MatchClass(StrEnum):
    CERTAIN = "certain"
    POSSIBLE = "possible"
    NONE = "none"


class UsedBy(Model):
    student_number: str
    student_dcid: int
    relationship: str = ""


class Candidate(Model):
    person_id: int
    score: float
    reasons: list[str]
    first_name: str = ""
    last_name: str = ""
    used_by: list[UsedBy] = Field(default_factory=list)  # other students linked to this person (plan fills it)


class ContactMatch(Model):
    """The matching outcome for one submitted contact (one form slot)."""

    submission_id: str
    slot: int
    match_class: MatchClass
    person_id: int | None = None
    candidates: list[Candidate] = Field(default_factory=list)
    flags: list[str] = Field(default_factory=list)
    slot_person_id: int | None = None  # the person the student's link in this slot points to


class ContactAction(StrEnum):
    UPDATE = "update"
    CREATE = "create"
    DO_NOT_UPDATE = "do_not_update"
    EXPIRE = "expire"
    UNLINK = "unlink"


class ValueChange(Model):
    """One contact value paired with its PowerSchool counterpart (phone 1 <-> phone 1, and so on)."""

    kind: str  # name | phone | email | address | detail | data_access
    key: str  # which value: a field name, a phone type, "primary" for the email
    old: str = ""
    new: str = ""
    op: str = "keep"  # keep | update | add | remove
    target_id: int | None = None  # the existing child record (phone id, email id, detail id, ...)
    policy: WritePolicy = WritePolicy.ALWAYS
    held: bool = False  # the policy turned an update/add/remove into keep (old and new still show both)


class ContactPlan(Model):
    slot: int
    submitted: SubmittedContact
    match_class: MatchClass
    person_id: int | None = None  # matched existing person
    link_id: int | None = None  # the student's existing link to that person
    new_key: str | None = None  # shared key of a contact to create (siblings share it)
    candidates: list[Candidate] = Field(default_factory=list)
    action: ContactAction = ContactAction.UPDATE
    changes: list[ValueChange] = Field(default_factory=list)
    flags: list[str] = Field(default_factory=list)  # name_mismatch, phone_type_mismatch, used_by, ...
    used_by: list[UsedBy] = Field(default_factory=list)


class ExistingLink(Model):
    """A link the student has in PowerSchool, as the snapshot saw it (for the final order)."""

    link_id: int
    person_id: int
    sequence: int
    expired: bool = False


class StudentPlan(Model):
    submission_id: str
    student_number: str
    student_dcid: int
    field_changes: list[FieldChange] = Field(default_factory=list)
    contacts: list[ContactPlan] = Field(default_factory=list)
    existing_links: list[ExistingLink] = Field(default_factory=list)
    mapping: str = ""  # the mapping that read the form
    order_reason: str = ""  # why the form's contacts take their places (shown beside the order)
    notes: list[str] = Field(default_factory=list)
    forms: FormMerge | None = None  # the forms merged into this plan (`domain/forms.py`)


class ReviewItem(Model):
    """Something a person must decide before apply. `key` is stable for the same plan."""

    key: str
    kind: str  # possible_match | name_mismatch | phone_type_mismatch | shared_contact_change |
    #            portal_email_conflict | field_change | contact_removal
    submission_id: str
    student_number: str
    slot: int | None = None
    target: str | None = None
    options: list[str]
    default: str | None = None
    payload: dict[str, Any] = Field(default_factory=dict)


class Plan(Model):
    students: list[StudentPlan] = Field(default_factory=list)
    new_contacts: dict[str, SubmittedContact] = Field(default_factory=dict)
    review_items: list[ReviewItem] = Field(default_factory=list)


class Decision(Model):
    item_key: str
    choice: str
    data: dict[str, Any] = Field(default_factory=dict)  # e.g. {"end_date": "2026-09-01"}
    decided_by: str = ""


class WriteOp(Model):
    """One PowerSchool write. `key` is the idempotency key: stable for the same approved plan."""

    key: str
    kind: str
    stage: str = "apply"  # apply | cleanup
    student_dcid: int | None = None
    student_number: str = ""
    person_ref: str | None = None  # "p:<person id>" or "new:<new_key>"
    target_id: int | None = None
    values: dict[str, Any] = Field(default_factory=dict)
    expected: dict[str, Any] = Field(default_factory=dict)  # snapshot values the write assumes
