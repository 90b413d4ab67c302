"""Malformed mapping files: random YAML structures, wrong types, unknown targets and transforms, a slot
without a last name, unreadable bytes. The only exception allowed is `MappingError`, listing every
problem; a mapping that loads must map the generator's submissions without an exception."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from writeback.domain.mapping import MappingError, apply_mapping, load_mapping, parse_mapping

from .conftest import MAPPING

RAW = yaml.safe_load(MAPPING.read_text(encoding="utf-8"))

scalars = st.one_of(st.none(), st.booleans(), st.integers(-1000, 1000), st.floats(allow_nan=False),
                    st.text(max_size=12), st.sampled_from(["{n}", "contact{n}_first_name", "trim", "phone",
                                                           "name.first_name", "extension.u_x.y", "%m/%d/%Y"]))
structures = st.recursive(scalars, lambda inner: st.one_of(
    st.lists(inner, max_size=4), st.dictionaries(st.text(max_size=10), inner, max_size=4),
    st.dictionaries(st.sampled_from(["field", "target", "transforms", "slots", "first_name", "last_name",
                                     "phones", "flags", "address", "code_map", "date", "max_length"]), inner,
                    max_size=4)), max_leaves=12)
SETTINGS = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow,
                                                                           HealthCheck.function_scoped_fixture])


def paths(value: Any, prefix: tuple = ()) -> list[tuple]:
    out = [prefix]
    if isinstance(value, dict):
        for k, v in value.items():
            out += paths(v, (*prefix, k))
    elif isinstance(value, list):
        for i, v in enumerate(value):
            out += paths(v, (*prefix, i))
    return out


ALL_PATHS = [p for p in paths(RAW) if p]


def edit(raw: dict, path: tuple, action: str, value: Any) -> dict:
    out = copy.deepcopy(raw)
    node = out
    for key in path[:-1]:
        node = node[key]
    last = path[-1]
    if action == "delete":
        del node[last]
    elif action == "replace":
        node[last] = value
    elif action == "add" and isinstance(node, dict):
        node[f"unknown_{last}"] = value
    return out


def assert_clear(exc: MappingError, source: str) -> None:
    assert exc.source == source and exc.problems and all(isinstance(p, str) and p.strip() for p in exc.problems)
    assert str(exc).startswith(f"{source}: ")


def try_mapping(world, raw: Any, source: str = "<fuzz>") -> None:
    try:
        mapping = parse_mapping(raw, source=source)
    except MappingError as exc:
        assert_clear(exc, source)
        return
    for sub in world.bases[:5]:  # a mapping that loads maps real submissions without an exception
        result = apply_mapping(mapping, sub["id"], sub["fields"])
        assert result is not None and (not isinstance(result, list) or result)


@SETTINGS
@given(raw=structures)
def test_random_yaml_structures_give_a_mapping_error_or_a_mapping(world, raw) -> None:
    try_mapping(world, raw)


@SETTINGS
@given(edits=st.lists(st.tuples(st.sampled_from(ALL_PATHS), st.sampled_from(["delete", "replace", "add"]),
                                structures), min_size=1, max_size=4))
def test_edited_registration_mapping_fails_clearly_or_still_works(world, edits) -> None:
    raw = RAW
    for path, action, value in edits:
        try:
            raw = edit(raw, path, action, value)
        except (KeyError, IndexError, TypeError):
            continue  # an earlier edit removed or replaced that place
    try_mapping(world, raw)


@settings(max_examples=60, deadline=None)
@given(blob=st.one_of(st.binary(max_size=200), st.text(max_size=200).map(lambda t: t.encode("utf-8")),
                      st.sampled_from([b"\xff\xfe\x00name: x", b"name: [unclosed", b"!!python/object:os.system {}",
                                       b"a: &x [*x]", b"- - - -", b"name: x\n\tbad: tab", b"\x00\x00"])))
def test_any_bytes_as_a_mapping_file_give_a_mapping_error_or_a_mapping(world, tmp_path_factory, blob) -> None:
    path = tmp_path_factory.mktemp("m") / "mapping.yaml"
    path.write_bytes(blob)
    try:
        load_mapping(path)
    except MappingError as exc:
        assert_clear(exc, str(path))


@pytest.mark.parametrize(("change", "expected"), [
    (lambda r: r["contacts"].pop("last_name"), "contacts slot 1: the contact's last name is not mapped"),
    (lambda r: r["student"].append({"field": "x", "target": "students.ssn"}), "unknown target 'students.ssn'"),
    (lambda r: r["student"][0].update(transforms=["rot13"]), "unknown transform 'rot13'"),
    (lambda r: r["student"][0].update(transforms=[{"code_map": "nope"}]), "code map 'nope' is not defined"),
    (lambda r: r["student"][6].update(transforms=["date"]), "date transform needs an input format"),
    (lambda r: r["contacts"].update(phones=["Mobile"]), "contacts.phones"),  # was an AttributeError
    (lambda r: r["contacts"].update(flags="yes"), "contacts.flags"),  # was an AttributeError
    (lambda r: r["contacts"].update(slots=10**9), "contacts.slots"),  # was a hang
    (lambda r: r["contacts"].update(slots=-1), "contacts.slots"),  # was silently no contacts
    (lambda r: r["contacts"]["relationship"].update(transforms=[{"code_map": []}]), "code map []"),  # was a TypeError
    (lambda r: r.update(version="two"), "version"),
    (lambda r: r.update(surprise=1), "surprise"),
])
def test_known_bad_mappings_name_the_place(change, expected: str) -> None:
    raw = copy.deepcopy(RAW)
    change(raw)
    with pytest.raises(MappingError) as info:
        parse_mapping(raw, source="registration-2026.yaml")
    assert any(expected in p for p in info.value.problems), info.value.problems


def test_every_problem_is_reported_at_once() -> None:
    raw = copy.deepcopy(RAW)
    raw["contacts"].pop("last_name")
    raw["student"][0]["target"] = "name.nickname"
    raw["student"][1]["transforms"] = ["shout"]
    with pytest.raises(MappingError) as info:
        parse_mapping(raw, source="m.yaml")
    text = " | ".join(info.value.problems)
    for expected in ("last name is not mapped", "unknown target 'name.nickname'", "unknown transform 'shout'"):
        assert expected in text


def test_an_unreadable_file_is_a_mapping_error(tmp_path: Path) -> None:
    """Found by this campaign: a file that is not UTF-8 raised UnicodeDecodeError."""
    bad = tmp_path / "latin1.yaml"
    bad.write_bytes("name: Inscripción\n".encode("latin-1"))
    with pytest.raises(MappingError, match="cannot read"):
        load_mapping(bad)
    with pytest.raises(MappingError, match="cannot read"):
        load_mapping(tmp_path / "missing.yaml")
