"""The run report: what was written, skipped, quarantined or failed, overall and per student."""

from __future__ import annotations

import html
from collections import Counter, defaultdict
from typing import Any

from ..domain.forms import merged_forms
from ..store.schema import CARRIED_CHECK

# ledger statuses that leave a run unfinished (the cursor stays): a write that may still succeed (failed:
# an outage, a missing grant), one waiting for a person (stale, ambiguous_create) or never confirmed.
# A refused write does not: its record is quarantined with the reason and the district moves on.
BLOCKING = ("failed", "stale", "ambiguous_create", "pending")
CONTACT_VALUE_KINDS = {"contact_name", "phone_add", "phone_update", "email_add", "email_update", "address_add",
                       "address_update", "detail_update", "data_access", "phone_delete", "email_delete",
                       "address_delete"}


def build_report(ctx) -> dict[str, Any]:
    run = ctx.store.get_run(ctx.run_id)
    ledger = ctx.store.ledger(ctx.run_id)
    items = ctx.store.items(ctx.run_id)
    every_quarantine = ctx.store.quarantine(ctx.run_id)
    quarantine = [q for q in every_quarantine if q.check != CARRIED_CHECK]
    carried = [q for q in every_quarantine if q.check == CARRIED_CHECK]
    plan_data = ctx.store.get_data(ctx.run_id, "plan") or {"students": []}
    matches = (ctx.store.get_data(ctx.run_id, "matches") or {"matches": []})["matches"]
    audit = ctx.store.audit_rows(ctx.run_id)

    stale_items: dict[str, list] = defaultdict(list)  # by key: a stale row's item without a scan per row
    for i in items:
        stale_items[i.item_key].append(i)
    done = [r for r in ledger.values() if r.status == "done"]
    by_kind = Counter(r.kind for r in done)
    made = sum(counts.get("http_writes_total", counts.get("http_writes", 0)) for stage, counts in (run.counts or {}).items()
               if stage.startswith(("apply", "cleanup")) and isinstance(counts, dict))  # apply may be batched
    writes_per_student: dict[str, Counter] = defaultdict(Counter)
    for a in audit:
        writes_per_student[a.student_number][a.kind] += 1
    updated_persons = {a.person_ref for a in audit if a.kind in CONTACT_VALUE_KINDS and a.person_ref.startswith("p:")}
    decisions = Counter(i.choice.split(":")[0] for i in items if i.choice)
    confirmed = decisions.get("confirm", 0) + decisions.get("same_person_keep_name", 0) + decisions.get(
        "same_person_update_name", 0)
    items_per_student = Counter(i.student_number for i in items)  # one pass, not one scan per student
    per_student = []
    for sp in plan_data["students"]:
        number = sp["student_number"]
        per_student.append({
            "student_number": number, "submission_id": sp["submission_id"],
            "writes": dict(writes_per_student.get(number, {})),
            "review_items": items_per_student.get(number, 0),
        })
    return {
        "run_id": ctx.run_id,
        "district": run.district,
        "dry_run": ctx.params.dry_run,
        "stages": run.counts,
        "students": {
            "planned": len(plan_data["students"]),
            "updated": sum(1 for s in per_student if s["writes"]),
            "quarantined": len({q.submission_id for q in quarantine}),
        },
        "contacts": {
            "matched": sum(1 for m in matches if m["match_class"] == "certain") + confirmed,
            "created": by_kind.get("contact_create", 0),
            "updated": len(updated_persons),
            "expired": by_kind.get("link_expire", 0),
            "unlinked": by_kind.get("link_delete", 0),
            "reordered_students": by_kind.get("contact_order", 0),
        },
        "review": {"items": len(items), "decided": sum(1 for i in items if i.state == "decided"),
                   "by_kind": dict(Counter(i.kind for i in items))},
        "writes": {
            "operations_done": len(done),
            "made": made,
            "failed": sum(1 for r in ledger.values() if r.status == "failed"),
            "stale": sum(1 for r in ledger.values() if r.status == "stale"),
            "refused": sum(1 for r in ledger.values() if r.status == "refused"),
            "ambiguous": sum(1 for r in ledger.values() if r.status == "ambiguous_create"),
            "blocking": sum(1 for r in ledger.values() if r.status in BLOCKING),
            "skipped_by_reviewer": sum(1 for r in ledger.values() if r.status == "skipped_by_reviewer"),
            "by_kind": dict(by_kind),
            "by_outcome": dict(Counter(r.status for r in ledger.values())),
        },
        "failed_writes": [{"op": r.op_key, "kind": r.kind, "error": r.error, "retryable": r.retryable,
                           "attempts": r.attempts} for r in ledger.values() if r.status == "failed"],
        "refused_writes": [{"op": r.op_key, "kind": r.kind, "reason": r.error} for r in ledger.values()
                           if r.status == "refused"],
        "stale_writes": [{"op": r.op_key, "kind": r.kind, "error": r.error,
                          "item": next(({"key": i.item_key, "state": i.state, "choice": i.choice,
                                         "fields": (i.payload or {}).get("fields", {})}
                                        for i in stale_items.get(f"stale:{r.op_key}", [])), None)}
                         for r in ledger.values() if r.status == "stale"],
        "quarantine": [{"submission_id": q.submission_id, "field": q.field, "reason": q.reason, "check": q.check}
                       for q in quarantine],
        "earlier_refusals": [{"submission_id": q.submission_id, "field": q.field, "reason": q.reason}
                             for q in carried],
        # a family's several forms for one student: which were merged, and what was chosen where they disagreed
        "merged_forms": merged_forms(plan_data["students"], {i.item_key: i.choice for i in items if i.choice}),
        "per_student": per_student,
    }


def format_report(report: dict[str, Any]) -> str:
    """A plain-text summary for a terminal (counts and ids only)."""
    s, c, r, w = report["students"], report["contacts"], report["review"], report["writes"]
    lines = [
        f"writeback report — district {report['district']}, run {report['run_id']}"
        + (" (dry run)" if report["dry_run"] else ""),
        f"  students:   {s['planned']} planned, {s['updated']} updated, {s['quarantined']} quarantined",
        f"  contacts:   {c['matched']} matched, {c['created']} created, {c['updated']} updated, "
        f"{c['expired']} expired, {c['unlinked']} unlinked, {c['reordered_students']} students reordered",
        f"  review:     {r['items']} items, {r['decided']} decided "
        + "(" + ", ".join(f"{k} {v}" for k, v in sorted(r["by_kind"].items())) + ")",
        f"  writes:     {w['made']} made ({w['operations_done']} operations), {w['failed']} failed, "
        f"{w['stale']} stale, {w.get('refused', 0)} refused (quarantined), {w.get('ambiguous', 0)} ambiguous creates",
    ]
    for f in report.get("failed_writes", [])[:20]:
        lines.append(f"    failed {f['op']}: {f['error']}")
    for f in report.get("refused_writes", [])[:20]:
        lines.append(f"    refused {f['op']}: {f['reason']}")
    if report.get("merged_forms"):
        lines.append("  forms merged (a family sent more than one for a student; the latest wins per field):")
        for m in report["merged_forms"]:
            lines.append(f"    {', '.join(m['merged'])} merged into {m['submission_id']} (student "
                         f"{m['student_number']}): {_disagreements(m)}")
    if report["quarantine"]:
        lines.append("  quarantined records:")
        for q in report["quarantine"][:20]:
            lines.append(f"    {q['submission_id']}: {q['field']} — {q['reason']}")
        if len(report["quarantine"]) > 20:
            lines.append(f"    … and {len(report['quarantine']) - 20} more")
    if report.get("earlier_refusals"):
        lines.append("  refused in earlier runs, not fixed yet:")
        for q in report["earlier_refusals"][:20]:
            lines.append(f"    {q['submission_id']}: {q['field']} — {q['reason']}")
    return "\n".join(lines)


_CSS = """body{font:14px/1.4 system-ui,sans-serif;margin:2em;color:#222}table{border-collapse:collapse;margin:.5em 0 1.5em}
td,th{border:1px solid #ccc;padding:.25em .6em;text-align:left;vertical-align:top}th{background:#f3f3f3}
.failed{color:#a00}.stale{color:#a60}h1{font-size:1.4em}h2{font-size:1.15em;margin-top:1.5em}code{font-size:.95em}"""


def _e(value: Any) -> str:
    return html.escape("" if value is None else str(value), quote=True)


def _table(headers: list[str], rows: list[list[Any]], css: str = "") -> str:
    if not rows:
        return "<p>None.</p>"
    head = "".join(f"<th>{_e(h)}</th>" for h in headers)
    body = "".join("<tr" + (f' class="{css}"' if css else "") + ">" + "".join(f"<td>{_e(c)}</td>" for c in row)
                   + "</tr>" for row in rows)
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def render_html(report: dict[str, Any]) -> str:
    """The report as one self-contained HTML page (inline CSS, no scripts, no network); every value escaped."""
    s, c, r, w = report["students"], report["contacts"], report["review"], report["writes"]
    title = f"writeback report — district {report['district']}, run {report['run_id']}" + (
        " (dry run)" if report.get("dry_run") else "")
    parts = [f"<!DOCTYPE html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>{_e(title)}</title>"
             f"<style>{_CSS}</style></head><body><h1>{_e(title)}</h1>"]
    parts.append("<h2>Summary</h2>" + _table(["", "count"], [
        ["students planned", s["planned"]], ["students updated", s["updated"]],
        ["students quarantined", s["quarantined"]], ["contacts matched", c["matched"]],
        ["contacts created", c["created"]], ["contacts updated", c["updated"]], ["links expired", c["expired"]],
        ["links removed", c["unlinked"]], ["students reordered", c["reordered_students"]],
        ["review items", r["items"]], ["review items decided", r["decided"]],
        ["HTTP writes made", w["made"]], ["operations done", w["operations_done"]],
        ["operations failed", w["failed"]], ["operations stale", w["stale"]],
        ["operations refused (quarantined)", w.get("refused", 0)],
        ["creates waiting for a person", w.get("ambiguous", 0)],
        ["kept PowerSchool's value (reviewer)", w.get("skipped_by_reviewer", 0)]]))
    by_outcome = w.get("by_outcome") or {}
    parts.append("<h2>Operations by outcome</h2>"
                 + _table(["outcome", "operations"], [[k, v] for k, v in sorted(by_outcome.items())]))
    parts.append("<h2>Operations by kind</h2>"
                 + _table(["kind", "done"], [[k, v] for k, v in sorted((w.get("by_kind") or {}).items())]))
    parts.append("<h2>Failed writes</h2>" + _table(
        ["operation", "kind", "error", "retryable", "attempts"],
        [[f["op"], f["kind"], f["error"], "yes" if f["retryable"] else "no", f["attempts"]]
         for f in report.get("failed_writes", [])], "failed"))
    stale_rows = []
    for st in report.get("stale_writes", []):
        item = st.get("item") or {}
        fields = item.get("fields") or {}
        detail = "; ".join(f"{k}: snapshot {v.get('snapshot')!r}, now {v.get('current')!r}, "
                           f"intended {v.get('intended')!r}" for k, v in fields.items() if v.get("changed"))
        stale_rows.append([st["op"], st["kind"], detail or st.get("error", ""),
                           item.get("choice") or item.get("state") or "no review item"])
    parts.append("<h2>Stale writes (back to review)</h2>"
                 + _table(["operation", "kind", "changed in PowerSchool", "decision"], stale_rows, "stale"))
    parts.append("<h2>Refused writes (quarantined)</h2>" + _table(
        ["operation", "kind", "reason"], [[f["op"], f["kind"], f["reason"]] for f in report.get("refused_writes", [])],
        "failed"))
    parts.append("<h2>Forms merged (several forms for one student; the latest wins per field)</h2>" + _table(
        ["student", "latest form", "earlier forms (superseded, merged in)", "disagreements and choices"],
        [[m["student_number"], m["submission_id"], ", ".join(m["merged"]), _disagreements(m)]
         for m in report.get("merged_forms", [])]))
    parts.append("<h2>Quarantine</h2>" + _table(
        ["submission", "field", "reason", "check"],
        [[q["submission_id"], q["field"], q["reason"], q.get("check", "")] for q in report.get("quarantine", [])]))
    parts.append("<h2>Refused in earlier runs, not fixed yet</h2>" + _table(
        ["submission", "field", "reason"],
        [[q["submission_id"], q["field"], q["reason"]] for q in report.get("earlier_refusals", [])]))
    parts.append("<h2>Per student</h2>" + _table(
        ["student", "submission", "writes", "review items"],
        [[p["student_number"], p["submission_id"],
          ", ".join(f"{k} {v}" for k, v in sorted(p["writes"].items())) or "none", p["review_items"]]
         for p in report.get("per_student", [])]))
    parts.append("</body></html>")
    return "\n".join(parts)


def _disagreements(merged: dict[str, Any]) -> str:
    if not merged["disagreements"]:
        return "no disagreement"
    return "; ".join(f"{d['ref']} ({' / '.join(d['forms'])}) → {d['choice'] or 'undecided'}"
                     for d in merged["disagreements"])


def save_report(store, run_id: str, report: dict[str, Any]) -> None:
    """Keep the report as run data: the JSON summary (`report`) and its page (`report_html`)."""
    store.put_data(run_id, "report", report)
    store.put_data(run_id, "report_html", {"html": render_html(report)})
