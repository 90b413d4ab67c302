"""Matching against a stored snapshot without holding the district: blocking runs over the persons a
page at a time, then each batch of forms is matched against only the part of the snapshot it needs.

`match_records` over the whole snapshot and `match_stored` give the same matches: a contact's
candidates come from blocking (equal keys, so the union over pages is what the whole gives:
`candidate_persons`), from its student's and household's links, and from its slot's link, and the part
loaded for a batch (`StoredSnapshot.around`) holds all of those and their data.
"""

from __future__ import annotations

import datetime as dt

from ..domain.match_keys import contact_keys
from ..domain.matching import MatchThresholds, build_index, candidate_persons, match_records
from ..domain.models import ContactMatch, FormRecord, Snapshot
from .stored_snapshot import StoredSnapshot

PERSON_PAGE = 10_000  # persons per blocking pass: the index of one page is what blocking holds
RECORD_BATCH = 1_000  # forms matched together against the part of the snapshot they need


def match_stored(records: list[FormRecord], stored: StoredSnapshot, today: dt.date,
                 remembered: dict[tuple[str, int], str] | None = None, region: str = "US",
                 thresholds: MatchThresholds | None = None, *, person_page: int = PERSON_PAGE,
                 record_batch: int = RECORD_BATCH) -> dict[tuple[str, int], ContactMatch]:
    queries = [contact_keys(c, region) for r in records for c in r.contacts]  # once, not once per page
    proposed: list[set[int]] = [set() for _ in queries]
    for page in stored.person_pages(person_page):
        found = candidate_persons(queries, build_index(Snapshot(persons=page), region), thresholds)
        for mine, ids in zip(proposed, found, strict=True):
            mine |= ids
        del page, found
    del queries
    matches: dict[tuple[str, int], ContactMatch] = {}
    position = 0
    for start in range(0, len(records), record_batch):
        batch = records[start:start + record_batch]
        n = sum(len(r.contacts) for r in batch)
        persons = set().union(*proposed[position:position + n])
        position += n
        part = stored.around({r.student_number for r in batch}, persons)
        matches.update(match_records(batch, part, today, remembered, region, build_index(part, region), thresholds))
    return matches
