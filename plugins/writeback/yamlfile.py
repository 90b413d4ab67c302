"""The one reader of the project's YAML configuration (mappings, district files).

YAML keeps the last of two equal keys in a mapping and drops the first without a word: `Mom: Mother`
then `Mom: Father` maps every Mom to Father, a second `student:` section leaves only its own fields, a
second `Mobile:` writes the work number as the mobile one. Here a key given twice, at any depth, is an
error naming both places (`file:line`, with the column when both are on one line); every duplicate of
the file is reported at once. Merge keys (`<<: *anchor`) are YAML's way to override on purpose and are
not duplicates.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

__all__ = ["YamlFileError", "parse_yaml", "read_yaml"]

_MERGE_TAG = "tag:yaml.org,2002:merge"


class YamlFileError(ValueError):
    """A configuration file that cannot be read as YAML; `problems` lists every reason with its place."""

    def __init__(self, source: str, problems: list[str]):
        self.source = source
        self.problems = problems
        super().__init__(f"{source}: " + "; ".join(problems))


def read_yaml(path: str | Path) -> Any:
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise YamlFileError(str(path), [f"cannot read: {exc}"]) from exc
    return parse_yaml(text, str(path))


def parse_yaml(text: str, source: str = "<yaml>") -> Any:
    """The document in `text` (None when empty), refused when any mapping in it repeats a key."""
    try:
        loader = yaml.SafeLoader(text)  # reads the stream: a control character fails here already
    except yaml.YAMLError as exc:
        raise YamlFileError(source, [f"cannot read: {exc}"]) from exc
    try:
        node = loader.get_single_node()
        if node is None:
            return None
        problems = _duplicate_keys(node, loader, source)
        if problems:
            raise YamlFileError(source, problems)
        return loader.construct_document(node)
    except yaml.YAMLError as exc:
        raise YamlFileError(source, [f"cannot read: {exc}"]) from exc
    finally:
        loader.dispose()


def _duplicate_keys(root: yaml.Node, loader: yaml.SafeLoader, source: str) -> list[str]:
    problems: list[str] = []
    seen: set[int] = set()  # each node once: aliases point to nodes already walked (no billion laughs)
    stack: list[tuple[yaml.Node, str]] = [(root, "")]
    while stack:
        node, where = stack.pop()
        if id(node) in seen:
            continue
        seen.add(id(node))
        if isinstance(node, yaml.SequenceNode):
            stack.extend((child, f"{where}[{i}]") for i, child in reversed(list(enumerate(node.value))))
        elif isinstance(node, yaml.MappingNode):
            first_at: dict[Any, yaml.Node] = {}
            children = []
            for key, value in node.value:
                label = key.value if isinstance(key, yaml.ScalarNode) else "?"
                children.append((value, f"{where}.{label}" if where else str(label)))
                if not isinstance(key, yaml.ScalarNode) or key.tag == _MERGE_TAG:
                    continue
                ident = _identity(loader, key)
                if ident is None:
                    continue
                if ident in first_at:
                    problems.append(_problem(source, first_at[ident], key, where))
                else:
                    first_at[ident] = key
            stack.extend(reversed(children))
    return problems


def _identity(loader: yaml.SafeLoader, key: yaml.ScalarNode) -> Any:
    """What YAML compares keys by: the constructed value (`1` and `0x1`, `yes` and `true` are one key)."""
    try:
        value = loader.construct_object(key)
        hash(value)
    except (yaml.YAMLError, TypeError):
        return None  # the constructor reports it when the document is built
    return (type(value).__name__, value)


def _place(source: str, node: yaml.Node, with_column: bool) -> str:
    mark = node.start_mark
    return f"{source}:{mark.line + 1}" + (f":{mark.column + 1}" if with_column else "")


def _problem(source: str, first: yaml.Node, again: yaml.Node, where: str) -> str:
    same_line = first.start_mark.line == again.start_mark.line
    inside = f"in {where}" if where else "at the top level"
    return (f"{_place(source, again, same_line)}: key {again.value!r} {inside} is given twice (first at "
            f"{_place(source, first, same_line)}); YAML would silently keep only the last one, so remove or "
            "rename one of them")
