"""Rollback restores the before-state (checked through PowerQuery exports, not our client), refuses what
changed since, is itself idempotent; the report renders as escaped, self-contained HTML; both CLIs."""

from __future__ import annotations

import json
from types import SimpleNamespace

from writeback import cli
from writeback.pipeline.report import build_report, render_html, save_report
from writeback.pipeline.rollback import rollback, rollback_run_id

from .test_apply import _set_pref_first_name

ID_COLUMNS = {"studentcontactassoc.studentcontactassocid", "studentcontactdetail.studentcontactdetailid"}


def normalised(export: dict[str, list[dict]]) -> dict[str, list]:
    """Exports comparable across a re-link (a re-created link gets new link and detail ids)."""
    out = {}
    for entity, rows in export.items():
        out[entity] = sorted(json.dumps({k: v for k, v in r.items() if k not in ID_COLUMNS}, sort_keys=True)
                             for r in rows)
    return out


def test_rollback_restores_the_before_state_and_a_second_rollback_writes_nothing(world):
    before = world.export()
    world.apply()
    assert normalised(world.export()) != normalised(before)
    outcome = rollback(world.client, world.store, world.run_id)
    assert not outcome.refused and not outcome.failed, (outcome.refused, outcome.failed)
    assert outcome.restored
    assert normalised(world.export()) == normalised(before)
    kinds = {a.kind for a in world.store.audit_rows(rollback_run_id(world.run_id))}
    assert {"rollback_student_update", "rollback_contact_create", "rollback_link_delete",
            "rollback_contact_order", "rollback_email_update", "rollback_data_access"} <= kinds
    writes = world.stats()["writes"]
    again = rollback(world.client, world.store, world.run_id)
    assert world.stats()["writes"] == writes and again.http_writes == 0 and not again.restored


def test_rollback_refuses_a_value_changed_since_and_lists_it(world, tmp_path, monkeypatch, capsys):
    world.apply()
    _set_pref_first_name(world, 18, "Cece")  # someone edits the written value afterwards
    store_url = world.store.url
    monkeypatch.setenv("POWERSCHOOL_CLIENT_SECRET", "sandbox-secret")
    args = ["--store", store_url, "rollback", "--run", world.run_id, "--student", "100018",
            "--base-url", world.url, "--client-id", "sandbox-client"]
    writes = world.stats()["writes"]
    assert cli.main([*args, "--dry-run"]) == 3
    assert world.stats()["writes"] == writes  # a dry run writes nothing
    printed = capsys.readouterr().out
    assert "would restore" in printed and "REFUSED" in printed
    assert cli.main([*args, "--json"]) == 3
    result = json.loads(capsys.readouterr().out)
    refused = {r["op"]: r for r in result["refused"]}
    assert "extension.u_students_extension.pref_first_name" in refused["student:18"]["fields"]
    students = {r["students.dcid"]: r for r in world.query("students")}
    assert students["18"]["u_students_extension.pref_first_name"] == "Cece"  # not restored
    # the rest of the student's writes were rolled back: the contact email is back
    emails = [r["emailaddress.emailaddress"] for r in world.query("emails")
              if r["personemailaddressassoc.personid"] == "5014"]
    assert emails == ["colleen.grant74@example.com"]
    # other students' writes are untouched by a --student rollback
    assert any(a.student_number != "100018" for a in world.store.audit_rows(world.run_id))
    writes = world.stats()["writes"]
    assert cli.main(args) == 3  # still refused, nothing else to do
    assert world.stats()["writes"] == writes


def test_report_html_is_escaped_self_contained_and_stored(world, tmp_path):
    world.apply()
    world.store.ledger_finish(world.run_id, "student:18", "failed", error="<script>alert(1)</script> & co")
    ctx = SimpleNamespace(store=world.store, run_id=world.run_id, params=SimpleNamespace(dry_run=False))
    report = build_report(ctx)
    assert report["writes"]["failed"] == 1 and report["failed_writes"][0]["op"] == "student:18"
    page = render_html(report)
    assert "<script>" not in page and "&lt;script&gt;alert(1)&lt;/script&gt; &amp; co" in page
    assert "http://" not in page and "https://" not in page and "<link" not in page
    for heading in ("Operations by outcome", "Per student", "Quarantine", "Stale writes", "Failed writes"):
        assert heading in page
    save_report(world.store, world.run_id, report)
    assert world.store.get_data(world.run_id, "report_html")["html"] == page
    out = tmp_path / "report.html"
    assert cli.main(["--store", world.store.url, "report", "--run", world.run_id, "--html", str(out)]) == 0
    assert out.read_text(encoding="utf-8") == page
