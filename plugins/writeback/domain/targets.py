"""The PowerSchool places a mapping may write a student field to.

Each target names where the value lives in the snapshot (a PowerQuery column) and in the
`POST /ws/v1/student` body (a path). Extension fields are `extension.<table>.<column>`.
"""

from __future__ import annotations

from dataclasses import dataclass

_ADDRESS_PARTS = {"street": "street", "city": "city", "state_province": "state", "postal_code": "zip"}


@dataclass(frozen=True)
class StudentTarget:
    name: str
    snapshot_column: str  # PowerQuery column, e.g. "students.first_name"
    body_path: tuple[str, ...]  # where it goes in the v1 student body
    required: bool = False  # PowerSchool refuses to blank it
    max_length: int | None = None


def _core_targets() -> dict[str, StudentTarget]:
    targets = [
        StudentTarget("name.first_name", "students.first_name", ("name", "first_name"), required=True),
        StudentTarget("name.middle_name", "students.middle_name", ("name", "middle_name")),
        StudentTarget("name.last_name", "students.last_name", ("name", "last_name"), required=True),
        StudentTarget("demographics.gender", "students.gender", ("demographics", "gender")),
        StudentTarget("demographics.birth_date", "students.dob", ("demographics", "birth_date")),
        StudentTarget("phones.main", "students.home_phone", ("phones", "main", "number"), max_length=30),
    ]
    for kind, prefix in (("physical", ""), ("mailing", "mailing_")):
        for part, column in _ADDRESS_PARTS.items():
            limit = {"state_province": 2, "postal_code": 10}.get(part)
            targets.append(
                StudentTarget(
                    f"addresses.{kind}.{part}",
                    f"students.{prefix}{column}",
                    ("addresses", kind, part),
                    max_length=limit,
                )
            )
    return {t.name: t for t in targets}


CORE_TARGETS = _core_targets()
EXTENSION_PREFIX = "extension."


def student_target(name: str) -> StudentTarget | None:
    """The target of that name, or None when a mapping names something we cannot write."""
    if name in CORE_TARGETS:
        return CORE_TARGETS[name]
    parts = name.split(".")
    if len(parts) == 3 and parts[0] == "extension" and parts[1].startswith(("u_", "s_")) and parts[2]:
        table, column = parts[1], parts[2]
        return StudentTarget(name, f"{table}.{column}", ("_extension_data", table, column))
    return None


def address_group(target: str) -> str | None:
    """'addresses.mailing.city' -> 'addresses.mailing': PowerSchool takes an address block whole."""
    parts = target.split(".")
    return ".".join(parts[:2]) if parts[0] == "addresses" else None
