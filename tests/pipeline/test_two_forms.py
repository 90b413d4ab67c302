"""A parent submits twice for one student in one run, through a whole sync over loopback (SchoolEngage and
PowerSchool sandboxes, real store, every stage). The later form (by its own timestamp in the SchoolEngage
payload, not its id) wins per field; a field only the earlier form filled in is still written; where the
forms disagree a person decides from both values; the earlier form is kept and named in the report; and
there is one plan for the student, so no op key or review document collides."""

from __future__ import annotations

import copy

import pytest

from sandbox.generate import build_all
from writeback.pipeline.report import format_report

from .sync import Sync

LATER_ID = "SUB-0000001"  # sorts before the earlier form's id: "latest" must come from the timestamps
EARLIER_STREET, LATER_STREET = "12 First St", "77 Lakeview Dr"
EARLIER_MOBILE, LATER_MOBILE = "(415) 555-0111", "(415) 555-0122"
MAILING = {"mailing_street": "PO Box 9", "mailing_city": "Oakdale", "mailing_state": "CA", "mailing_zip": "95361"}


@pytest.fixture(scope="module")
def twice(tmp_path_factory):
    district, submissions, truth = build_all(40, 5)
    earlier = next(s for s in submissions if truth["submissions"][s["id"]]["scenario"] == "unchanged"
                   and s["fields"].get("contact1_cell_phone"))
    later = copy.deepcopy(earlier)
    later.update(id=LATER_ID, submitted_at="2026-06-20T08:00:00Z", updated_at="2026-06-20T08:00:00Z")
    earlier.update(submitted_at="2026-06-10T08:00:00Z", updated_at="2026-06-11T09:30:00+02:00")
    earlier["fields"].update(home_street=EARLIER_STREET, contact1_cell_phone=EARLIER_MOBILE, **MAILING)
    later["fields"].update(home_street=LATER_STREET, contact1_cell_phone=LATER_MOBILE,
                           student_preferred_first_name="Tiny",
                           **{k: "" for k in MAILING})  # left empty: the earlier form's mailing address stands
    submissions.append(later)
    student = next(s for s in district["students"] if s["student_number"] == earlier["student_number"])
    person = next(lk["person_id"] for lk in district["links"] if lk["student_dcid"] == student["dcid"]
                  and lk["sequence"] == 1)

    def reviewer(item):  # the registrar keeps the later street but calls the family: the earlier mobile is right
        if item.kind == "submissions_disagree" and item.payload["ref"] == "address:addresses.physical":
            return f"use:{LATER_ID}", {}
        if item.kind == "submissions_disagree" and item.payload["ref"] == "contact1:phone:Mobile":
            return f"use:{earlier['id']}", {}
        return None

    sync = Sync(tmp_path_factory.mktemp("twice"), district, submissions, truth)
    try:
        ctx = sync.run("demo:two-forms", chooser=reviewer)
        yield {"sync": sync, "ctx": ctx, "earlier": earlier, "student": student, "person": person}
    finally:
        sync.close()


def test_where_the_forms_disagree_a_person_sees_both_values(twice):
    sync, ctx, earlier = twice["sync"], twice["ctx"], twice["earlier"]
    items = {i.payload["ref"]: i for i in sync.store.items(ctx.run_id) if i.kind == "submissions_disagree"}
    assert set(items) == {"address:addresses.physical", "contact1:phone:Mobile"}
    street = items["address:addresses.physical"]
    assert street.options == [f"use:{LATER_ID}", f"use:{earlier['id']}", "do_not_update"]
    assert [(p["submission_id"], LATER_STREET in p["value"] or EARLIER_STREET in p["value"])
            for p in street.payload["proposals"]] == [(LATER_ID, True), (earlier["id"], True)]
    assert LATER_STREET in street.payload["proposals"][0]["value"]
    phone = items["contact1:phone:Mobile"]
    assert [p["value"] for p in phone.payload["proposals"]] == [LATER_MOBILE, EARLIER_MOBILE]
    # the street's question is this item's: no separate field_change item asks it again
    assert not [i for i in sync.store.items(ctx.run_id) if i.kind == "field_change"
                and i.student_number == earlier["student_number"] and "physical" in i.item_key]


def test_powerschool_holds_each_chosen_value_and_what_only_one_form_gave(twice):
    sync, student, person = twice["sync"], twice["student"], twice["person"]
    row = next(r for r in sync.query("students") if r["students.dcid"] == str(student["dcid"]))
    assert row["students.street"] == LATER_STREET  # the reviewer's choice (the latest form's)
    assert (row["students.mailing_street"], row["students.mailing_city"], row["students.mailing_zip"]) == (
        "PO Box 9", "Oakdale", "95361")  # only the earlier form gave it: not lost
    assert row["u_students_extension.pref_first_name"] == "Tiny"  # only the later form gave it
    mobiles = [r["phonenumber.phonenumber"] for r in sync.query("phones")
               if r["personphonenumberassoc.personid"] == str(person)
               and r["personphonenumberassoc.phonetype"] == "Mobile"]
    assert mobiles == [EARLIER_MOBILE]  # the reviewer's choice (the earlier form's)


def test_one_plan_for_the_student_and_the_earlier_form_is_kept_and_reported(twice):
    sync, ctx, earlier = twice["sync"], twice["ctx"], twice["earlier"]
    plan = sync.store.get_data(ctx.run_id, "plan")
    mine = [sp for sp in plan["students"] if sp["student_number"] == earlier["student_number"]]
    assert [sp["submission_id"] for sp in mine] == [LATER_ID]
    assert [f["submission_id"] for f in mine[0]["forms"]["forms"]] == [LATER_ID, earlier["id"]]
    rows = {r.submission_id: r for r in sync.store.submissions(ctx.run_id)}
    assert rows[earlier["id"]].status == "merged" and rows[earlier["id"]].record["submission_id"] == earlier["id"]
    assert rows[LATER_ID].status == "valid"
    report = sync.store.get_data(ctx.run_id, "report")
    merged = [m for m in report["merged_forms"] if m["student_number"] == earlier["student_number"]]
    assert merged == [{"student_number": earlier["student_number"], "submission_id": LATER_ID,
                       "merged": [earlier["id"]], "disagreements": [
                           {"ref": "address:addresses.physical", "forms": [LATER_ID, earlier["id"]],
                            "choice": f"use:{LATER_ID}"},
                           {"ref": "contact1:phone:Mobile", "forms": [LATER_ID, earlier["id"]],
                            "choice": f"use:{earlier['id']}"}]}]
    assert f"{earlier['id']} merged into {LATER_ID}" in format_report(report)
    assert f"{earlier['id']} merged into" not in " ".join(q.reason for q in sync.store.quarantine(ctx.run_id))
    ledger = sync.store.ledger(ctx.run_id)
    assert all(row.status == "done" for row in ledger.values()), {k: r.error for k, r in ledger.items()
                                                                   if r.status != "done"}


class _Registrar:
    """A signed-in reviewer (the review app's `Auth` interface, in-process: auth is tests/security's)."""

    async def authenticate(self, request):
        from writeback.review.auth import Principal

        return Principal(username="registrar", via="bearer")

    def is_authorized(self, principal, dag_id: str, method: str) -> bool:
        return True

    def login_url(self, next_url: str) -> str | None:
        return None

    def secret(self) -> bytes:
        return b"two-forms-test-secret"


def test_the_review_page_says_the_forms_were_merged_and_shows_both_values(twice):
    from urllib.parse import quote

    from fastapi.testclient import TestClient

    from writeback.review.app import create_app

    sync, ctx, earlier = twice["sync"], twice["ctx"], twice["earlier"]
    with TestClient(create_app(lambda: sync.store, auth=_Registrar())) as client:
        page = client.get(f"/runs/{quote(ctx.run_id, safe='')}", params={"kind": "submissions_disagree"})
    assert page.status_code == 200
    text = page.text
    assert f"the latest, <strong>{LATER_ID}</strong>" in text and f"{earlier['id']} (" in text
    assert "superseded" in text
    assert LATER_STREET in text and EARLIER_STREET in text and EARLIER_MOBILE in text and LATER_MOBILE in text
    assert "This student&#39;s forms disagree" in text or "This student's forms disagree" in text
