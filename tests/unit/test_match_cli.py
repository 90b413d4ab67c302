"""`writeback match --incoming A.csv --existing B.csv --out M.csv`: the DAG's matching engine over CSVs."""

from __future__ import annotations

import csv
from pathlib import Path

from writeback.cli import main

HEADER = ["id", "first_name", "last_name", "email", "phone", "street", "city", "state", "postal_code"]


def write(path: Path, rows: list[list[str]], header: list[str] = HEADER) -> Path:
    with path.open("w", newline="", encoding="utf-8") as fh:
        w = csv.writer(fh)
        w.writerow(header)
        w.writerows(rows)
    return path


def read(path: Path) -> list[dict[str, str]]:
    with path.open(newline="", encoding="utf-8") as fh:
        return list(csv.DictReader(fh))


EXISTING = [
    ["P-1", "William", "García-López", "bill@example.com", "(415) 555-0101", "12 Oak Street", "Springfield", "IL", "62701"],
    ["P-2", "María", "García", "", "415-555-0199", "", "", "", ""],
    ["P-3", "Wei", "Chen", "wei@example.com", "415-555-0105", "", "", "", ""],
    ["P-4", "Robert", "Smith", "", "312 555 0142", "", "", "", ""],
    ["P-5", "Robert", "Smith", "", "312-555-0142", "", "", "", ""],  # a duplicate of P-4
]
INCOMING = [
    ["A", "Bill", "Garcia Lopez", "BILL@example.com", "415.555.0101 x12", "12 Oak St", "Springfield", "IL", "62701"],
    ["B", "Carmen", "Ortiz", "carmen@example.com", "209-555-0111", "", "", "", ""],  # nobody
    ["C", "Rosa", "Perez", "", "415-555-0105", "", "", "", ""],  # Wei's phone only
    ["D", "Bob", "Smith", "", "(312) 555-0142", "", "", "", ""],  # two persons fit: never certain
    ["E", "Chen", "Wei", "", "", "", "", "", ""],  # swapped
]


def run(tmp_path: Path, *extra: str, incoming=INCOMING, existing=EXISTING) -> tuple[int, list[dict[str, str]]]:
    a = write(tmp_path / "incoming.csv", incoming)
    b = write(tmp_path / "existing.csv", existing)
    out = tmp_path / "matches.csv"
    code = main(["match", "--incoming", str(a), "--existing", str(b), "--out", str(out), *extra])
    return code, read(out) if out.exists() else []


def test_match_writes_one_row_per_candidate_best_first_with_class_and_reasons(tmp_path, capsys):
    code, rows = run(tmp_path)
    assert code == 0
    assert list(rows[0]) == ["incoming_id", "existing_id", "score", "match_class", "reasons"]
    by_incoming: dict[str, list[dict[str, str]]] = {}
    for row in rows:
        by_incoming.setdefault(row["incoming_id"], []).append(row)
    a = by_incoming["A"]
    assert (a[0]["existing_id"], a[0]["match_class"]) == ("P-1", "certain")
    assert a[0]["reasons"].split("; ") == ["first name ~0.95 (nickname Bill=William)", "last name equal",
                                           "email equal", "phone equal", "address equal"]
    assert "B" not in by_incoming  # no candidate: a new contact
    assert [(r["existing_id"], r["match_class"], r["reasons"]) for r in by_incoming["C"]] == [
        ("P-3", "possible", "phone equal")]
    d = by_incoming["D"]
    assert {r["existing_id"] for r in d} == {"P-4", "P-5"} and {r["match_class"] for r in d} == {"possible"}
    assert by_incoming["E"][0]["existing_id"] == "P-3" and "swapped" in by_incoming["E"][0]["reasons"]
    for group in by_incoming.values():
        scores = [float(r["score"]) for r in group]
        assert scores == sorted(scores, reverse=True)
    assert "5 incoming x 5 existing" in capsys.readouterr().err


def test_match_reports_progress_on_stderr(tmp_path, capsys):
    code, _ = run(tmp_path, "--progress-every", "2")
    err = capsys.readouterr().err
    assert code == 0 and "matched 2/5 (40%)" in err and "matched 4/5 (80%)" in err


def test_match_refuses_files_without_the_id_or_last_name_column(tmp_path, capsys):
    a = write(tmp_path / "incoming.csv", [["A", "Bill"]], header=["id", "first_name"])
    b = write(tmp_path / "existing.csv", EXISTING)
    code = main(["match", "--incoming", str(a), "--existing", str(b), "--out", str(tmp_path / "m.csv")])
    err = capsys.readouterr().err
    assert code == 2 and "incoming.csv: missing column(s) last_name" in err


def test_match_warns_about_an_invalid_email_naming_the_row_and_does_not_match_on_it(tmp_path, capsys):
    existing = [["P-9", "Zed", "Quinn", "zed@", "", "", "", "", ""]]
    incoming = [["Z", "Amy", "Lowe", "zed@", "", "", "", "", ""]]
    code, rows = run(tmp_path, existing=existing, incoming=incoming)
    err = capsys.readouterr().err
    assert code == 0 and rows == []
    assert "incoming.csv: id 'Z', email 'zed@'" in err and "existing.csv: id 'P-9', email 'zed@'" in err


def test_match_uses_the_phone_region(tmp_path):
    existing = [["P-1", "Olivia", "Brown", "", "+44 20 7946 0018", "", "", "", ""]]
    incoming = [["A", "Kim", "Smith", "", "020 7946 0018", "", "", "", ""]]
    _, us = run(tmp_path, incoming=incoming, existing=existing)
    _, gb = run(tmp_path, "--region", "GB", incoming=incoming, existing=existing)
    assert us == [] and [(r["existing_id"], r["reasons"]) for r in gb] == [("P-1", "phone equal")]


def test_match_ignores_extra_columns_and_empty_cells(tmp_path):
    header = [*HEADER, "notes"]
    a = write(tmp_path / "incoming.csv", [["A", "Wei", "Chen", "", "", "", "", "", "", "hello"]], header=header)
    b = write(tmp_path / "existing.csv", [["P-3", "Wei", "Chen", "", "", "", "", "", "", ""]], header=header)
    out = tmp_path / "m.csv"
    assert main(["match", "--incoming", str(a), "--existing", str(b), "--out", str(out)]) == 0
    assert [(r["existing_id"], r["match_class"]) for r in read(out)] == [("P-3", "possible")]  # a name alone
