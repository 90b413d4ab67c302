"""The run's PowerSchool snapshot as rows (`wb_snapshot_rows`): written page by page as the PowerQueries
are read, read back by key, and checked for consistency in SQL, so that no task holds the whole
district in memory. What a row means is `pipeline/stored_snapshot.py`'s business; this module only
stores and finds rows."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from sqlalchemy import and_, delete, exists, func, insert, literal, select
from sqlalchemy.orm import aliased

from .schema import SnapshotRow

_IN_CHUNK = 2000  # values per IN (...): under every backend's limit on bound parameters
_KEYS = ("row_key", "student_dcid", "person_id", "student_number", "family_ident", "email", "sequence")


@dataclass(frozen=True)
class IntegrityCheck:
    """One consistency check of a snapshot: what was checked, over how many rows, and the ids that fail."""

    suite: str
    expectation: str
    column: str
    evaluated: int
    failing: list[Any]


class SnapshotRows:
    """Mixed into Store (which owns `engine` and `_sessions`)."""

    def clear_snapshot(self, run_id: str) -> None:
        with self._sessions.begin() as s:
            s.execute(delete(SnapshotRow).where(SnapshotRow.run_id == run_id))

    def copy_snapshot(self, source_run: str, run_id: str) -> None:
        """Give `run_id` the snapshot rows of `source_run` (in SQL: nothing passes through memory)."""
        columns = ["entity", *_KEYS, "row"]
        source = select(literal(run_id), *(getattr(SnapshotRow, c) for c in columns)) \
            .where(SnapshotRow.run_id == source_run).order_by(SnapshotRow.id)
        with self._sessions.begin() as s:
            s.execute(delete(SnapshotRow).where(SnapshotRow.run_id == run_id))
            s.execute(insert(SnapshotRow).from_select(["run_id", *columns], source))
        meta = self.get_data(source_run, "snapshot_meta")
        if meta is not None:
            self.put_data(run_id, "snapshot_meta", meta)

    def add_snapshot_rows(self, run_id: str, entity: str, rows: list[dict[str, Any]]) -> None:
        """Append rows of one entity: each a dict of the lookup keys (`_KEYS`, absent = NULL) and `row`, the
        PowerQuery row as JSON text. One executemany per call: the caller passes a page at a time."""
        if not rows:
            return
        values = [{"run_id": run_id, "entity": entity, **{k: r.get(k) for k in _KEYS}, "row": r["row"]}
                  for r in rows]
        with self.engine.begin() as connection:  # Core executemany: no ORM bookkeeping per row
            connection.execute(insert(SnapshotRow.__table__), values)

    def snapshot_rows(self, run_id: str, entity: str, **where: Iterable[Any]) -> list[str]:
        """The rows of `entity` (JSON text, in the order they were read) whose key is any of the values
        given, for each key given (`person_id=[...]`, `student_dcid=[...]`, ...; several keys: any of
        them). No keys: every row (see `iter_snapshot_rows` for a district's worth)."""
        if not where:
            return [row for _, row in self._rows(run_id, entity, None)]
        found: dict[int, str] = {}
        for key, wanted in where.items():
            values = sorted(set(wanted))
            for start in range(0, len(values), _IN_CHUNK):
                condition = getattr(SnapshotRow, key).in_(values[start:start + _IN_CHUNK])
                found.update(self._rows(run_id, entity, condition))
        return [found[i] for i in sorted(found)]

    def _rows(self, run_id: str, entity: str, condition) -> list[tuple[int, str]]:
        q = select(SnapshotRow.id, SnapshotRow.row).where(SnapshotRow.run_id == run_id, SnapshotRow.entity == entity)
        if condition is not None:
            q = q.where(condition)
        with self._sessions() as s:
            return [tuple(r) for r in s.execute(q.order_by(SnapshotRow.id))]

    def snapshot_keys(self, run_id: str, entity: str, key: str, *, after: Any = None, limit: int | None = None,
                      among: Iterable[Any] | None = None) -> list[Any]:
        """Distinct values of one key of an entity's rows, ascending: a page of them (`after`, `limit`),
        or those among `among` (which of these ids the snapshot has)."""
        column = getattr(SnapshotRow, key)
        base = select(column).where(SnapshotRow.run_id == run_id, SnapshotRow.entity == entity,
                                    column.is_not(None)).distinct().order_by(column)
        with self._sessions() as s:
            if among is None:
                q = base if after is None else base.where(column > after)
                return list(s.scalars(q.limit(limit) if limit else q))
            values, out = sorted(set(among)), []
            for start in range(0, len(values), _IN_CHUNK):
                out += s.scalars(base.where(column.in_(values[start:start + _IN_CHUNK])))
            return out

    def snapshot_rows_between(self, run_id: str, entity: str, key: str, low: Any, high: Any) -> list[str]:
        """The rows of `entity` whose key is within [low, high], in the order they were read."""
        column = getattr(SnapshotRow, key)
        return [row for _, row in self._rows(run_id, entity, and_(column >= low, column <= high))]

    def snapshot_counts(self, run_id: str) -> dict[str, int]:
        """Distinct ids per entity (a link with two details is one link)."""
        with self._sessions() as s:
            rows = s.execute(select(SnapshotRow.entity, func.count(func.distinct(SnapshotRow.row_key)))
                             .where(SnapshotRow.run_id == run_id).group_by(SnapshotRow.entity))
            return {entity: n for entity, n in rows}

    # ------------------------------------------------------------ consistency, in SQL
    def snapshot_integrity(self, run_id: str) -> list[IntegrityCheck]:
        """Unique keys, links to existing rows, one priority per student: checked by the database over
        the whole snapshot (no task loads it for this). Every lookup goes through an index: a link's
        student and person are found by `ix_wb_snapshot_rows_student` / `_person`."""
        R, other = SnapshotRow, aliased(SnapshotRow)

        def of(entity: str, *columns):
            return select(*columns).where(R.run_id == run_id, R.entity == entity)

        def duplicated(entity: str, column) -> list[Any]:
            return self._scalars(of(entity, column).where(column.is_not(None)).group_by(column)
                                 .having(func.count() > 1).order_by(column))

        def missing(key, entity: str) -> list[Any]:
            """Links whose `key` names no row of `entity`."""
            found = exists().where(other.run_id == run_id, other.entity == entity,
                                   getattr(other, key.key) == key)
            return self._scalars(of("links", R.row_key).where(~found).distinct().order_by(R.row_key))

        # a link has one row per detail; its student, person and priority must be the same on each
        link = of("links", R.row_key, R.student_dcid, R.person_id, R.sequence).distinct().subquery()
        split = self._scalars(select(link.c.row_key).group_by(link.c.row_key).having(func.count() > 1)
                              .order_by(link.c.row_key))
        bad_sequence = self._scalars(of("links", R.row_key).where(func.coalesce(R.sequence, 0) < 1)
                                     .distinct().order_by(R.row_key))
        shared = set(self._rows_of(select(link.c.student_dcid, link.c.sequence)
                                   .group_by(link.c.student_dcid, link.c.sequence)
                                   .having(func.count(func.distinct(link.c.row_key)) > 1)))
        shared_priority = sorted({key for key, dcid, sequence in self._rows_of(
            of("links", R.row_key, R.student_dcid, R.sequence).where(R.student_dcid.in_({d for d, _ in shared})))
            if (dcid, sequence) in shared}) if shared else []
        counts = dict(self._rows_of(select(R.entity, func.count()).where(R.run_id == run_id).group_by(R.entity)))
        n_links = self.snapshot_counts(run_id).get("links", 0)
        if not (counts.get("students") or counts.get("contacts") or n_links):
            return []
        n_students, n_persons = counts.get("students", 0), counts.get("contacts", 0)
        return [
            IntegrityCheck("snapshot_students", "expect_column_values_to_be_unique", "dcid", n_students,
                           duplicated("students", R.row_key)),
            IntegrityCheck("snapshot_students", "expect_column_values_to_be_unique", "student_number", n_students,
                           duplicated("students", R.student_number)),
            IntegrityCheck("snapshot_persons", "expect_column_values_to_be_unique", "person_id", n_persons,
                           duplicated("contacts", R.row_key)),
            IntegrityCheck("snapshot_links", "expect_column_values_to_be_unique", "link_id", n_links, split),
            IntegrityCheck("snapshot_links", "expect_column_values_to_be_in_set", "student_dcid", n_links,
                           missing(R.student_dcid, "students")),
            IntegrityCheck("snapshot_links", "expect_column_values_to_be_in_set", "person_id", n_links,
                           missing(R.person_id, "contacts")),
            IntegrityCheck("snapshot_links", "expect_column_values_to_be_between", "sequence", n_links, bad_sequence),
            IntegrityCheck("snapshot_links", "expect_compound_columns_to_be_unique", "student_dcid+sequence",
                           n_links, shared_priority),
        ]

    def _rows_of(self, q) -> list[tuple]:
        with self._sessions() as s:
            return [tuple(r) for r in s.execute(q)]

    def _scalars(self, q) -> list[Any]:
        with self._sessions() as s:
            return list(s.scalars(q))

