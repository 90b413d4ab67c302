"""Which mapping reads a submission: a district runs several SchoolEngage forms at once (new-student
enrollment, returning-student update, kindergarten, an emergency-contact update), each laid out
differently, and its configuration maps each form id (or a pattern such as `kindergarten-*`) to its
mapping. A submission of a form no route names is never read with another form's mapping: it is
quarantined with that reason.
"""

from __future__ import annotations

import fnmatch
from collections.abc import Iterable
from dataclasses import dataclass

from .mapping import Mapping
from .models import RecordProblem

_WILDCARDS = set("*?[")


def is_pattern(form: str) -> bool:
    return bool(_WILDCARDS & set(form))


@dataclass(frozen=True)
class FormRoutes:
    """The district's routes, form id or pattern -> mapping, in the order the configuration gives them."""

    district: str
    routes: tuple[tuple[str, Mapping], ...]

    @property
    def mappings(self) -> list[Mapping]:
        """Every mapping of the district, once each (by name), in route order."""
        seen: dict[str, Mapping] = {}
        for _, mapping in self.routes:
            seen.setdefault(mapping.name, mapping)
        return list(seen.values())

    def mapping_for(self, form_id: str) -> Mapping | str:
        """The mapping for a form id, or why there is none (the reason a record is quarantined with).

        An exact form id wins over patterns; a form id that two patterns match is ambiguous, not guessed."""
        exact = [m for form, m in self.routes if not is_pattern(form) and form == form_id]
        if exact:
            return exact[0]
        matching = [(form, m) for form, m in self.routes if is_pattern(form) and fnmatch.fnmatchcase(form_id, form)]
        if len({m.name for _, m in matching}) == 1:
            return matching[0][1]
        known = ", ".join(form for form, _ in self.routes)
        if matching:
            return (f"form {form_id!r} matches several patterns of district {self.district} "
                    f"({', '.join(form for form, _ in matching)}): which mapping reads it is not guessed")
        shown = repr(form_id) if form_id else "(no form id)"
        return f"form {shown} has no mapping in district {self.district} (mapped forms: {known})"

    def problem_for(self, submission_id: str, form_id: str) -> RecordProblem | None:
        found = self.mapping_for(form_id)
        if isinstance(found, Mapping):
            return None
        return RecordProblem(submission_id=submission_id, field="form_id", reason=found, value=form_id,
                             check="form")


def union(mappings: Mapping | Iterable[Mapping]) -> list[Mapping]:
    """One mapping or several, as a list (what plugin grants, doctor and the snapshot cover)."""
    return [mappings] if isinstance(mappings, Mapping) else list(mappings)
