"""CSV files a person hands us and CSV files a person opens in a spreadsheet afterwards.

Reading: a file that is not UTF-8 or not CSV is an error naming the file and the line, never a traceback.
Writing: no cell may be one a spreadsheet executes (OWASP, "CSV Injection"): a cell that begins with a
formula trigger (= + - @), with a tab or a carriage return, or with the trigger behind characters a
spreadsheet may skip (spaces, control and format characters such as a zero-width space) is written
behind a single quote, which makes it text. A plain number stays a number.
"""

from __future__ import annotations

import csv
import io
import re
import unicodedata
from collections.abc import Iterable
from pathlib import Path

FORMULA_TRIGGERS = frozenset("=+-@＝＋－＠")  # and the full-width forms some spreadsheets read alike
_SKIPPED = frozenset({"Cc", "Cf", "Zs", "Zl", "Zp"})  # what may stand before a trigger unseen
_NUMBER = re.compile(r"^[+-]?\d+(?:\.\d+)?$")


class CsvFileError(ValueError):
    """A file that cannot be read as the CSV we expect; the message names the file (and line)."""


def is_live(cell: str) -> bool:
    """Would a spreadsheet execute this cell (or may it, after skipping leading blanks)?"""
    if not cell or _NUMBER.match(cell):
        return False
    if cell[0] in "\t\r":
        return True
    for ch in cell:
        if unicodedata.category(ch) not in _SKIPPED:
            return ch in FORMULA_TRIGGERS
    return False


def safe_cell(value: object) -> str:
    """The cell as text a spreadsheet shows and never executes; its content is kept behind the quote."""
    text = "" if value is None else str(value)
    return "'" + text if is_live(text) else text


class SafeWriter:
    """csv.writer whose every cell is made safe (`safe_cell`)."""

    def __init__(self, fh):
        self._out = csv.writer(fh)

    def writerow(self, row: Iterable[object]) -> None:
        self._out.writerow([safe_cell(v) for v in row])


def read_text(path: str | Path) -> str:
    """The file's text (UTF-8, with or without a byte-order mark), or CsvFileError naming file and line."""
    data = Path(path).read_bytes()
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = data.count(b"\n", 0, exc.start) + 1
        raise CsvFileError(f"{path}: line {line}: not UTF-8 text (byte 0x{data[exc.start]:02x}); "
                           "save the file as UTF-8 and try again") from None


def read_dicts(path: str | Path, required: Iterable[str], columns: Iterable[str]) -> list[dict[str, str]]:
    """Rows of a CSV file with a header, as {column: stripped text} for `columns` (a missing one is "")."""
    reader = csv.DictReader(io.StringIO(read_text(path), newline=""))
    try:
        header = reader.fieldnames or []
        missing = [c for c in required if c not in header]
        if missing:
            raise CsvFileError(f"{path}: missing column(s) {', '.join(missing)} (expected: {', '.join(columns)})")
        return [{c: (row.get(c) or "").strip() for c in columns} for row in reader]
    except csv.Error as exc:
        raise CsvFileError(f"{path}: line {reader.line_num}: not readable as CSV ({exc})") from None
