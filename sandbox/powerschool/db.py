"""SQLite state of the PowerSchool sandbox: schema, indexes and loading a district dict.

One connection, guarded by a re-entrant lock (uvicorn runs one worker, endpoints run in a thread
pool). Use ``with db.tx() as c:`` for every read or write: it holds the lock and commits or rolls back.
A database file that already holds the same district (same fingerprint) is reused as is, so a
restarted sandbox keeps its state; otherwise the district dict is loaded with ``executemany``.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import sqlite3
import tempfile
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

# Extension tables are one-to-one with students and keyed by ``studentsdcid``.
DEFAULT_EXTENSIONS: dict[str, list[str]] = {
    "u_students_extension": ["pref_first_name", "pref_last_name", "photo_release"],
}
EXTENSION_KEY = "studentsdcid"
_NAME_RE = re.compile(r"^[a-z][a-z0-9_]{0,62}$")

SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS students (
    dcid INTEGER PRIMARY KEY, id INTEGER, student_number TEXT NOT NULL,
    first_name TEXT NOT NULL DEFAULT '', middle_name TEXT NOT NULL DEFAULT '',
    last_name TEXT NOT NULL DEFAULT '', gender TEXT NOT NULL DEFAULT '', dob TEXT NOT NULL DEFAULT '',
    grade_level INTEGER, school_id INTEGER, family_ident TEXT NOT NULL DEFAULT '',
    street TEXT NOT NULL DEFAULT '', city TEXT NOT NULL DEFAULT '', state TEXT NOT NULL DEFAULT '',
    zip TEXT NOT NULL DEFAULT '', mailing_street TEXT NOT NULL DEFAULT '',
    mailing_city TEXT NOT NULL DEFAULT '', mailing_state TEXT NOT NULL DEFAULT '',
    mailing_zip TEXT NOT NULL DEFAULT '', home_phone TEXT NOT NULL DEFAULT '',
    email TEXT NOT NULL DEFAULT ''
);
CREATE UNIQUE INDEX IF NOT EXISTS ix_students_number ON students(student_number);
CREATE INDEX IF NOT EXISTS ix_students_last ON students(last_name);
CREATE INDEX IF NOT EXISTS ix_students_family ON students(family_ident);

CREATE TABLE IF NOT EXISTS persons (
    id INTEGER PRIMARY KEY, first_name TEXT NOT NULL DEFAULT '', middle_name TEXT NOT NULL DEFAULT '',
    last_name TEXT NOT NULL DEFAULT '', prefix TEXT NOT NULL DEFAULT '', suffix TEXT NOT NULL DEFAULT '',
    gender TEXT NOT NULL DEFAULT '', employer TEXT NOT NULL DEFAULT ''
);
CREATE INDEX IF NOT EXISTS ix_persons_last ON persons(last_name);

CREATE TABLE IF NOT EXISTS emails (
    id INTEGER PRIMARY KEY, person_id INTEGER NOT NULL, address TEXT NOT NULL,
    type TEXT NOT NULL DEFAULT '', is_primary INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX IF NOT EXISTS ix_emails_person ON emails(person_id);
CREATE INDEX IF NOT EXISTS ix_emails_address ON emails(address COLLATE NOCASE);

CREATE TABLE IF NOT EXISTS phones (
    id INTEGER PRIMARY KEY, person_id INTEGER NOT NULL, number TEXT NOT NULL,
    extension TEXT NOT NULL DEFAULT '', type TEXT NOT NULL DEFAULT '',
    preferred INTEGER NOT NULL DEFAULT 0, sms INTEGER NOT NULL DEFAULT 0, sequence INTEGER NOT NULL DEFAULT 1
);
CREATE INDEX IF NOT EXISTS ix_phones_person ON phones(person_id, sequence);
CREATE INDEX IF NOT EXISTS ix_phones_number ON phones(number);

CREATE TABLE IF NOT EXISTS addresses (
    id INTEGER PRIMARY KEY, person_id INTEGER NOT NULL, type TEXT NOT NULL DEFAULT '',
    street TEXT NOT NULL DEFAULT '', linetwo TEXT NOT NULL DEFAULT '', unit TEXT NOT NULL DEFAULT '',
    city TEXT NOT NULL DEFAULT '', state TEXT NOT NULL DEFAULT '', postal_code TEXT NOT NULL DEFAULT '',
    country TEXT NOT NULL DEFAULT '', start_date TEXT NOT NULL DEFAULT '', end_date TEXT NOT NULL DEFAULT ''
);
CREATE INDEX IF NOT EXISTS ix_addresses_person ON addresses(person_id);

CREATE TABLE IF NOT EXISTS links (
    id INTEGER PRIMARY KEY, person_id INTEGER NOT NULL, student_dcid INTEGER NOT NULL,
    sequence INTEGER NOT NULL, can_access_data INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX IF NOT EXISTS ix_links_person ON links(person_id);
CREATE INDEX IF NOT EXISTS ix_links_student ON links(student_dcid, sequence);

CREATE TABLE IF NOT EXISTS details (
    id INTEGER PRIMARY KEY, link_id INTEGER NOT NULL, relationship TEXT NOT NULL DEFAULT '',
    relationship_note TEXT NOT NULL DEFAULT '', custodial INTEGER NOT NULL DEFAULT 0,
    emergency INTEGER NOT NULL DEFAULT 0, lives_with INTEGER NOT NULL DEFAULT 0,
    school_pickup INTEGER NOT NULL DEFAULT 0, receives_mail INTEGER NOT NULL DEFAULT 0,
    start_date TEXT NOT NULL DEFAULT '', end_date TEXT NOT NULL DEFAULT '',
    exclude_from_state_reporting INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX IF NOT EXISTS ix_details_link ON details(link_id);

CREATE TABLE IF NOT EXISTS portal_accounts (
    id INTEGER PRIMARY KEY, username TEXT NOT NULL, email TEXT NOT NULL DEFAULT '',
    enabled INTEGER NOT NULL DEFAULT 1, person_id INTEGER
);
CREATE INDEX IF NOT EXISTS ix_accounts_person ON portal_accounts(person_id);
CREATE INDEX IF NOT EXISTS ix_accounts_email ON portal_accounts(email COLLATE NOCASE);

CREATE TABLE IF NOT EXISTS codesets (
    id INTEGER PRIMARY KEY, code_type TEXT NOT NULL, code TEXT NOT NULL, display_value TEXT NOT NULL DEFAULT '',
    start_date TEXT NOT NULL DEFAULT '', end_date TEXT NOT NULL DEFAULT ''
);
"""

# district.json's code set names -> PowerSchool's CodeSet.CodeType (as the Contacts API reference names them)
CODE_TYPES = {"relationship": "Relationship", "phone_type": "Phone", "email_type": "Email",
              "address_type": "Address", "state": "State", "country": "Country", "gender": "Gender"}


def codeset_entries(codesets: dict[str, list[Any]]) -> list[tuple[str, str, str, str, str, str]]:
    """(kind, CodeType, code, display value, start date, end date) per code; an entry of district.json's
    ``codesets`` is a code or ``{"code", "display_value", "start_date", "end_date"}``."""
    out = []
    for kind, entries in codesets.items():
        for entry in entries:
            e = entry if isinstance(entry, dict) else {"code": entry}
            out.append((kind, CODE_TYPES.get(kind, kind), str(e["code"]), str(e.get("display_value", "")),
                        str(e.get("start_date", "")), str(e.get("end_date", ""))))
    return out

STUDENT_COLUMNS = [
    "dcid", "id", "student_number", "first_name", "middle_name", "last_name", "gender", "dob",
    "grade_level", "school_id", "family_ident", "street", "city", "state", "zip", "mailing_street",
    "mailing_city", "mailing_state", "mailing_zip", "home_phone",
]

# (table, district key, [(column, source key, default)])
_LOADS: list[tuple[str, str, list[tuple[str, str, Any]]]] = [
    ("persons", "persons", [(c, c, "") for c in
                            ("id", "first_name", "middle_name", "last_name", "prefix", "suffix", "gender",
                             "employer")]),
    ("emails", "emails", [("id", "id", None), ("person_id", "person_id", None), ("address", "address", ""),
                          ("type", "type", ""), ("is_primary", "primary", False)]),
    ("phones", "phones", [("id", "id", None), ("person_id", "person_id", None), ("number", "number", ""),
                          ("extension", "extension", ""), ("type", "type", ""),
                          ("preferred", "preferred", False), ("sms", "sms", False), ("sequence", "sequence", 1)]),
    ("addresses", "addresses", [("id", "id", None), ("person_id", "person_id", None), ("type", "type", "")]
     + [(c, c, "") for c in ("street", "linetwo", "unit", "city", "state", "postal_code", "country",
                             "start_date", "end_date")]),
    ("links", "links", [("id", "id", None), ("person_id", "person_id", None),
                        ("student_dcid", "student_dcid", None), ("sequence", "sequence", 1),
                        ("can_access_data", "can_access_data", False)]),
    ("details", "details", [("id", "id", None), ("link_id", "link_id", None)]
     + [(c, c, "") for c in ("relationship", "relationship_note")]
     + [(c, c, False) for c in ("custodial", "emergency", "lives_with", "school_pickup", "receives_mail")]
     + [("start_date", "start_date", ""), ("end_date", "end_date", ""),
        ("exclude_from_state_reporting", "exclude_from_state_reporting", False)]),
    ("portal_accounts", "portal_accounts", [("id", "id", None), ("username", "username", ""),
                                            ("email", "email", ""), ("enabled", "enabled", True),
                                            ("person_id", "person_id", None)]),
]


def _value(v: Any) -> Any:
    if isinstance(v, bool):
        return int(v)
    return "" if v is None else v


def _sql_name(name: str) -> str:
    if not _NAME_RE.match(name):
        raise ValueError(f"invalid table or column name: {name!r}")
    return name


class Database:
    """The sandbox state. ``extensions`` maps extension table -> data columns (without id/studentsdcid)."""

    def __init__(self, path: str | None = None) -> None:
        self.temporary = path is None
        if path is None:
            fd, path = tempfile.mkstemp(prefix="ps-sandbox-", suffix=".sqlite3")
            os.close(fd)
            os.unlink(path)
        self.path = path
        self.lock = threading.RLock()
        self._connect()
        self.extensions: dict[str, list[str]] = {}
        self.codesets: dict[str, list[str]] = {}
        self.district_info: dict[str, Any] = {}

    def _connect(self) -> None:
        self.conn = sqlite3.connect(self.path, check_same_thread=False, isolation_level=None)
        self.conn.row_factory = sqlite3.Row
        self.conn.execute("PRAGMA journal_mode=WAL")
        self.conn.execute("PRAGMA synchronous=NORMAL")
        self.conn.executescript(SCHEMA)

    def _wipe(self) -> None:
        self.conn.close()
        for suffix in ("", "-wal", "-shm"):
            if os.path.exists(self.path + suffix):
                os.unlink(self.path + suffix)
        self._connect()

    @contextmanager
    def tx(self) -> Iterator[sqlite3.Connection]:
        with self.lock:
            self.conn.execute("BEGIN IMMEDIATE")
            try:
                yield self.conn
            except BaseException:
                self.conn.execute("ROLLBACK")
                raise
            else:
                self.conn.execute("COMMIT")

    def close(self) -> None:
        """Close the connection; a temporary database file (no path given) is removed."""
        with self.lock:
            self.conn.close()
            if self.temporary:
                for suffix in ("", "-wal", "-shm"):
                    if os.path.exists(self.path + suffix):
                        os.unlink(self.path + suffix)

    # -- loading ---------------------------------------------------------------------------------
    def is_loaded(self) -> bool:
        row = self.conn.execute("SELECT value FROM meta WHERE key='loaded'").fetchone()
        return row is not None

    def load(self, district: dict[str, Any]) -> None:
        """Load ``district`` unless this database already holds it (then its state is kept as is).

        A database holding a *different* district (another fingerprint) is wiped and reloaded.
        """
        fingerprint = hashlib.sha256(json.dumps(district, sort_keys=True).encode()).hexdigest()
        with self.lock:
            row = self.conn.execute("SELECT value FROM meta WHERE key='fingerprint'").fetchone()
            if row is not None and row["value"] != fingerprint:
                self._wipe()
        with self.tx() as c:
            if not self.is_loaded():
                self._load(c, district)
                c.execute("INSERT INTO meta (key, value) VALUES ('fingerprint', ?)", (fingerprint,))
            meta = {r["key"]: r["value"] for r in c.execute("SELECT key, value FROM meta")}
        self.extensions = json.loads(meta["extensions"])
        self.codesets = {kind: [] for kind in json.loads(meta["codesets"])}
        for kind, _, code, *_ in codeset_entries(json.loads(meta["codesets"])):
            self.codesets[kind].append(code)
        self.district_info = json.loads(meta["district"])

    def _load(self, c: sqlite3.Connection, district: dict[str, Any]) -> None:
        students = district.get("students", [])
        c.executemany(
            f"INSERT INTO students ({', '.join(STUDENT_COLUMNS)}) VALUES ({', '.join('?' * len(STUDENT_COLUMNS))})",
            ([_value(s.get(col, s.get("dcid") if col == "id" else "")) for col in STUDENT_COLUMNS]
             for s in students),
        )
        for table, key, cols in _LOADS:
            names = [c_ for c_, _, _ in cols]
            c.executemany(
                f"INSERT INTO {table} ({', '.join(names)}) VALUES ({', '.join('?' * len(names))})",
                ([_value(row.get(src, default)) for _, src, default in cols] for row in district.get(key, [])),
            )
        extensions = {k: list(v) for k, v in DEFAULT_EXTENSIONS.items()}
        for table, rows in (district.get("extensions") or {}).items():
            cols = extensions.setdefault(_sql_name(table), [])
            for row in rows:
                for col in row:
                    if col not in ("id", EXTENSION_KEY) and col not in cols:
                        cols.append(_sql_name(col))
        for table, cols in extensions.items():
            col_sql = "".join(f", {col} TEXT NOT NULL DEFAULT ''" for col in cols)
            c.execute(f"CREATE TABLE {table} (id INTEGER PRIMARY KEY, {EXTENSION_KEY} INTEGER NOT NULL{col_sql})")
            c.execute(f"CREATE UNIQUE INDEX ix_{table}_parent ON {table}({EXTENSION_KEY})")
            rows = (district.get("extensions") or {}).get(table, [])
            names = ["id", EXTENSION_KEY, *cols]
            c.executemany(
                f"INSERT INTO {table} ({', '.join(names)}) VALUES ({', '.join('?' * len(names))})",
                ([_value(r.get("id")), _value(r.get(EXTENSION_KEY))] + [str(_value(r.get(col, ""))) for col in cols]
                 for r in rows),
            )
        c.executemany("INSERT INTO codesets (code_type, code, display_value, start_date, end_date) "
                      "VALUES (?, ?, ?, ?, ?)", (row[1:] for row in codeset_entries(district.get("codesets") or {})))
        meta = {
            "extensions": json.dumps(extensions),
            "codesets": json.dumps(district.get("codesets") or {}),
            "district": json.dumps(district.get("district") or {}),
            "loaded": "1",
        }
        c.executemany("INSERT INTO meta (key, value) VALUES (?, ?)", meta.items())


def next_id(c: sqlite3.Connection, table: str) -> int:
    return int(c.execute(f"SELECT COALESCE(MAX(id), 0) + 1 FROM {table}").fetchone()[0])
