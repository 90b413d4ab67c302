"""The district's installed plugin (plugin.xml): its v1 access level and its field-level grants.

``parse_plugin(xml_text)`` reads the parts of a real plugin.xml the sandbox honours::

    <plugin xmlns="http://plugin.powerschool.pearson.com" name="..." version="...">   (name <= 40 chars)
      <publisher name="..."><contact email="..."/></publisher>                        (email required)
      <oauth accessLevelV1Api="NONE|READ|FULL"/>                     (attribute missing = no /ws/v1)
      <access_request>
        <field table="U_STUDENTS_EXTENSION" field="PREF_FIRST_NAME" access="ViewOnly|FullAccess"/>
      </access_request>
    </plugin>

Anything wrong raises ``PluginError`` (a ``ValueError``) with a message saying what and where; the
sandbox refuses to start with it. Table and field names are case-insensitive (PowerSchool plugins
usually spell them in capitals); other elements (``<links>``, ``<description>`` ...) are ignored.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

FULL_ACCESS, VIEW_ONLY, NO_ACCESS = "FullAccess", "ViewOnly", "NoAccess"
_RANK = {NO_ACCESS: 0, VIEW_ONLY: 1, FULL_ACCESS: 2}
V1_LEVELS = ("NONE", "READ", "FULL")
MAX_NAME_LENGTH = 40
DEFAULT_PLUGIN_PATH = Path(__file__).with_name("default_plugin.xml")


class PluginError(ValueError):
    """plugin.xml is not a plugin the sandbox can install."""


@dataclass
class Plugin:
    name: str
    version: str
    publisher: str
    email: str
    v1_level: str  # NONE | READ | FULL
    grants: dict[tuple[str, str], str] = field(default_factory=dict)  # (table, column) -> access

    def access(self, table: str, column: str) -> str:
        """FullAccess, ViewOnly or NoAccess for ``table.column`` (case-insensitive)."""
        return self.grants.get((table.lower(), column.lower()), NO_ACCESS)

    def can_read(self, table: str, column: str) -> bool:
        return self.access(table, column) != NO_ACCESS

    def can_write(self, table: str, column: str) -> bool:
        return self.access(table, column) == FULL_ACCESS

    def grant(self, table: str, column: str, access: str) -> None:
        """Add a grant; the stronger one wins when the pair is already granted."""
        key = (table.lower(), column.lower())
        if _RANK[access] > _RANK[self.grants.get(key, NO_ACCESS)]:
            self.grants[key] = access

    def as_json(self) -> dict[str, object]:
        return {"name": self.name, "version": self.version, "publisher": self.publisher, "email": self.email,
                "accessLevelV1Api": self.v1_level,
                "fields": [{"table": t, "field": c, "access": a} for (t, c), a in sorted(self.grants.items())]}


def _local(tag: str) -> str:
    """The tag without its XML namespace (real plugin.xml files declare one)."""
    return tag.rsplit("}", 1)[-1]


def _children(element: ET.Element, name: str) -> list[ET.Element]:
    return [child for child in element if _local(child.tag) == name]


def parse_plugin(xml_text: str) -> Plugin:
    """The plugin described by ``xml_text``; ``PluginError`` says what is wrong with it."""
    try:
        root = ET.fromstring(xml_text)
    except ET.ParseError as exc:
        raise PluginError(f"plugin.xml is not well-formed XML: {exc}") from None
    if _local(root.tag) != "plugin":
        raise PluginError(f"plugin.xml: the root element must be <plugin>, not <{_local(root.tag)}>")
    name = (root.get("name") or "").strip()
    if not name:
        raise PluginError("plugin.xml: <plugin> needs a name attribute")
    if len(name) > MAX_NAME_LENGTH:
        raise PluginError(f"plugin.xml: the plugin name must be at most {MAX_NAME_LENGTH} characters, "
                          f"{name!r} has {len(name)}")
    version = (root.get("version") or "").strip()
    if not version:
        raise PluginError("plugin.xml: <plugin> needs a version attribute")

    publishers = _children(root, "publisher")
    if not publishers:
        raise PluginError("plugin.xml: a <publisher> element with a <contact email=...> is required")
    publisher = publishers[0]
    contacts = _children(publisher, "contact")
    email = (contacts[0].get("email") or "").strip() if contacts else ""
    if not email:
        raise PluginError("plugin.xml: <publisher> needs a <contact email=\"...\"/> with a non-empty email")

    oauths = _children(root, "oauth")
    if not oauths:
        raise PluginError("plugin.xml: no <oauth/> element, so the plugin has no API credentials")
    level = (oauths[0].get("accessLevelV1Api") or "NONE").strip().upper()
    if level not in V1_LEVELS:
        raise PluginError(f"plugin.xml: accessLevelV1Api must be one of {', '.join(V1_LEVELS)}, "
                          f"not {oauths[0].get('accessLevelV1Api')!r}")

    plugin = Plugin(name=name, version=version, publisher=(publisher.get("name") or "").strip(), email=email,
                    v1_level=level)
    for request in _children(root, "access_request"):
        for grant in _children(request, "field"):
            table, column = (grant.get("table") or "").strip(), (grant.get("field") or "").strip()
            access = (grant.get("access") or "").strip()
            if not table or not column:
                raise PluginError("plugin.xml: every <field> in <access_request> needs table and field attributes")
            canonical = {a.lower(): a for a in (VIEW_ONLY, FULL_ACCESS)}.get(access.lower())
            if canonical is None:
                raise PluginError(f"plugin.xml: <field table={table!r} field={column!r}> has access {access!r}; "
                                  "use ViewOnly or FullAccess")
            plugin.grant(table, column, canonical)
    return plugin


def default_plugin_xml() -> str:
    """The bundled plugin.xml that grants everything the writeback needs."""
    return DEFAULT_PLUGIN_PATH.read_text(encoding="utf-8")


def access_request_xml(fields: Iterable[tuple[str, str, str]]) -> str:
    """An ``<access_request>`` block for ``(table, field, access)`` triples (tables/fields in capitals)."""
    lines = ["<access_request>"]
    for table, column, access in fields:
        lines.append(f'  <field table="{table.upper()}" field="{column.upper()}" access="{access}"/>')
    lines.append("</access_request>")
    return "\n".join(lines)
