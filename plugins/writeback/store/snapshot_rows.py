"""The run's PowerSchool snapshot as rows (`wb_snapshot_rows`): written page by page as the PowerQueries
are read, read back by key, and checked for consistency in SQL, so that no task holds the whole
district in memory. What a row means is `pipeline/stored_snapshot.py`'s business; this module only
stores and finds rows."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any

from sqlalchemy import and_, delete, func, insert, literal, select
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
        with self._sessions.begin() as s:
            s.execute(insert(SnapshotRow), values)

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
        the whole snapshot (no task loads it for this)."""
        R = SnapshotRow
        mine = and_(R.run_id == run_id)

        def rows_of(entity: str):
            return select(R).where(mine, R.entity == entity).subquery()

        students, contacts, links = rows_of("students"), rows_of("contacts"), rows_of("links")

        def duplicated(table, column) -> list[Any]:
            col = table.c[column]
            return list(self._scalars(select(col).where(col.is_not(None)).group_by(col)
                                      .having(func.count() > 1).order_by(col)))

        def count(table, column="row_key") -> int:
            return self._scalar(select(func.count(func.distinct(table.c[column]))))

        # a link: one row per detail; its student, person and priority must be the same on each
        link_rows = select(links.c.row_key, links.c.student_dcid, links.c.person_id, links.c.sequence).distinct() \
            .subquery()
        split_links = list(self._scalars(select(link_rows.c.row_key).group_by(link_rows.c.row_key)
                                         .having(func.count() > 1).order_by(link_rows.c.row_key)))
        s_of = aliased(students)
        no_student = list(self._scalars(
            select(link_rows.c.row_key).outerjoin(s_of, s_of.c.row_key == link_rows.c.student_dcid)
            .where(s_of.c.id.is_(None)).distinct().order_by(link_rows.c.row_key)))
        p_of = select(contacts.c.row_key).distinct().subquery()
        no_person = list(self._scalars(
            select(link_rows.c.row_key).outerjoin(p_of, p_of.c.row_key == link_rows.c.person_id)
            .where(p_of.c.row_key.is_(None)).distinct().order_by(link_rows.c.row_key)))
        bad_sequence = list(self._scalars(select(link_rows.c.row_key).where(
            func.coalesce(link_rows.c.sequence, 0) < 1).distinct().order_by(link_rows.c.row_key)))
        per_priority = select(link_rows.c.student_dcid, link_rows.c.sequence) \
            .group_by(link_rows.c.student_dcid, link_rows.c.sequence) \
            .having(func.count(func.distinct(link_rows.c.row_key)) > 1).subquery()
        shared_priority = list(self._scalars(
            select(link_rows.c.row_key).join(per_priority, and_(
                per_priority.c.student_dcid == link_rows.c.student_dcid,
                per_priority.c.sequence == link_rows.c.sequence)).distinct().order_by(link_rows.c.row_key)))
        n_students, n_persons, n_links = count(students), count(contacts), count(links)
        n_student_rows = self._scalar(select(func.count()).select_from(students))
        n_person_rows = self._scalar(select(func.count()).select_from(contacts))
        return [
            IntegrityCheck("snapshot_students", "expect_column_values_to_be_unique", "dcid", n_student_rows,
                           duplicated(students, "row_key")),
            IntegrityCheck("snapshot_students", "expect_column_values_to_be_unique", "student_number",
                           n_student_rows, duplicated(students, "student_number")),
            IntegrityCheck("snapshot_persons", "expect_column_values_to_be_unique", "person_id", n_person_rows,
                           duplicated(contacts, "row_key")),
            IntegrityCheck("snapshot_links", "expect_column_values_to_be_unique", "link_id", n_links, split_links),
            IntegrityCheck("snapshot_links", "expect_column_values_to_be_in_set", "student_dcid", n_links,
                           no_student),
            IntegrityCheck("snapshot_links", "expect_column_values_to_be_in_set", "person_id", n_links, no_person),
            IntegrityCheck("snapshot_links", "expect_column_values_to_be_between", "sequence", n_links, bad_sequence),
            IntegrityCheck("snapshot_links", "expect_compound_columns_to_be_unique", "student_dcid+sequence",
                           n_links, shared_priority),
        ] if (n_students or n_persons or n_links) else []

    def _scalars(self, q) -> Iterator[Any]:
        with self._sessions() as s:
            return list(s.scalars(q))

    def _scalar(self, q) -> int:
        with self._sessions() as s:
            return int(s.scalar(q) or 0)
