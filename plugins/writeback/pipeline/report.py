"""The run report: what was written, skipped, quarantined or failed, overall and per student."""

from __future__ import annotations

from collections import Counter, defaultdict
from typing import Any

CONTACT_VALUE_KINDS = {"contact_name", "phone_add", "phone_update", "email_add", "email_update", "address_add",
                       "address_update", "detail_update", "data_access"}


def build_report(ctx) -> dict[str, Any]:
    run = ctx.store.get_run(ctx.run_id)
    ledger = ctx.store.ledger(ctx.run_id)
    items = ctx.store.items(ctx.run_id)
    quarantine = ctx.store.quarantine(ctx.run_id)
    plan_data = ctx.store.get_data(ctx.run_id, "plan") or {"students": []}
    matches = (ctx.store.get_data(ctx.run_id, "matches") or {"matches": []})["matches"]
    audit = ctx.store.audit_rows(ctx.run_id)

    done = [r for r in ledger.values() if r.status == "done"]
    by_kind = Counter(r.kind for r in done)
    made = sum((run.counts or {}).get(stage, {}).get("http_writes", 0) for stage in ("apply", "cleanup"))
    writes_per_student: dict[str, Counter] = defaultdict(Counter)
    for a in audit:
        writes_per_student[a.student_number][a.kind] += 1
    updated_persons = {a.person_ref for a in audit if a.kind in CONTACT_VALUE_KINDS and a.person_ref.startswith("p:")}
    decisions = Counter(i.choice.split(":")[0] for i in items if i.choice)
    confirmed = decisions.get("confirm", 0) + decisions.get("same_person_keep_name", 0) + decisions.get(
        "same_person_update_name", 0)
    per_student = []
    for sp in plan_data["students"]:
        number = sp["student_number"]
        per_student.append({
            "student_number": number, "submission_id": sp["submission_id"],
            "writes": dict(writes_per_student.get(number, {})),
            "review_items": sum(1 for i in items if i.student_number == number),
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
            "by_kind": dict(by_kind),
        },
        "quarantine": [{"submission_id": q.submission_id, "field": q.field, "reason": q.reason, "check": q.check}
                       for q in quarantine],
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
        f"{w['stale']} stale",
    ]
    if report["quarantine"]:
        lines.append("  quarantined records:")
        for q in report["quarantine"][:20]:
            lines.append(f"    {q['submission_id']}: {q['field']} — {q['reason']}")
        if len(report["quarantine"]) > 20:
            lines.append(f"    … and {len(report['quarantine']) - 20} more")
    return "\n".join(lines)
