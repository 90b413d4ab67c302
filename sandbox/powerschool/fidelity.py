"""The seam for plugin grants: endpoints never decide access themselves, they ask the app's ``Policy``.

- ``before_request`` runs in the HTTP middleware for every ``/ws`` and ``/oauth`` request after the
  token check; returning a response short-circuits the call.
- ``after_response`` sees every such response before it is sent and may replace it.
- ``v1_access`` is asked by every ``/ws/v1`` endpoint (401 when the plugin lacks accessLevelV1Api).
- ``table_access`` is asked by the table API with the columns a call reads or writes (403 NoAccess).
- ``query_access`` is asked by PowerQueries with the ``table.column`` fields they return (403).
- ``contacts_access`` is asked by every ``/ws/contacts`` write with the tables and columns behind it.
- ``column_access`` answers FullAccess | ViewOnly | NoAccess for one column (table metadata, ``*``).

Each ``*_access`` hook and ``before_request`` return ``None`` to allow, or a ``fastapi.Response`` to
send instead. ``Policy`` allows everything; ``PluginPolicy`` enforces an installed plugin.xml and is
what ``create_app`` uses unless a policy is passed. Throttling and injected faults are not policy
decisions: they live in ``faults.py`` and apply whatever the policy.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from fastapi import Request, Response
from fastapi.responses import JSONResponse

from .plugin import FULL_ACCESS, Plugin


class Policy:
    """Allow-all policy: the sandbox as a perfectly provisioned server."""

    async def before_request(self, request: Request) -> Response | None:
        return None

    async def after_response(self, request: Request, response: Response) -> Response:
        return response

    def v1_access(self, request: Request, write: bool) -> Response | None:
        return None

    def table_access(self, request: Request, table: str, columns: Sequence[str], write: bool) -> Response | None:
        return None

    def query_access(self, request: Request, query: str, fields: Sequence[str]) -> Response | None:
        return None

    def contacts_access(self, request: Request, tables: Mapping[str, Sequence[str]]) -> Response | None:
        return None

    def column_access(self, table: str, column: str) -> str:
        return FULL_ACCESS


def no_access(missing: Sequence[tuple[str, str]]) -> JSONResponse:
    """The table API's 403: one ``NoAccess`` entry per ``(table, column)`` lacking a grant."""
    return JSONResponse({"message": "At least one column lacks sufficient permission",
                         "errors": [{"code": "NoAccess", "field": col, "resource": table} for table, col in missing]},
                        status_code=403)


def v1_denied(level: str) -> JSONResponse:
    return JSONResponse({"errorMessage": {"message": f"Plugin is missing required accessLevelV1Api {level} permission"}},
                        status_code=401)


class PluginPolicy(Policy):
    """Grants as an installed plugin.xml gives them (see docs/sandbox-contract.md, "Plugin grants").

    ``plugin`` may be replaced at run time (``PUT /_sandbox/plugin``); each check reads it afresh.
    """

    def __init__(self, plugin: Plugin) -> None:
        self.plugin = plugin

    def v1_access(self, request: Request, write: bool) -> Response | None:
        level = self.plugin.v1_level
        if level == "NONE":
            return v1_denied("READ")
        if write and level != "FULL":
            return v1_denied("FULL")
        return None

    def table_access(self, request: Request, table: str, columns: Sequence[str], write: bool) -> Response | None:
        allowed = self.plugin.can_write if write else self.plugin.can_read
        missing = [(table, col) for col in dict.fromkeys(columns) if not allowed(table, col)]
        return no_access(missing) if missing else None

    def query_access(self, request: Request, query: str, fields: Sequence[str]) -> Response | None:
        missing = [f for f in fields if not self.plugin.can_read(*f.split(".", 1))]
        if not missing:
            return None
        return JSONResponse({"message": "Validation Failed", "errors": [
            {"resource": query, "field": f, "code": "No access to the field"} for f in missing]}, status_code=403)

    def contacts_access(self, request: Request, tables: Mapping[str, Sequence[str]]) -> Response | None:
        missing = [(t, c) for t, cols in tables.items() for c in cols if not self.plugin.can_write(t, c)]
        return no_access(missing) if missing else None

    def column_access(self, table: str, column: str) -> str:
        return self.plugin.access(table, column)
