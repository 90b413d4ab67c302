"""The seam for "full fidelity" behaviour (plugin grants, throttling, fault injection).

Endpoints never decide these things themselves; they ask the app's ``Policy``:

- ``before_request`` runs in the HTTP middleware for every ``/ws`` and ``/oauth`` request after the
  token check; returning a response short-circuits the call (throttling → 429 + Retry-After,
  injected 5xx, latency, dropped connections after N writes ...).
- ``after_response`` sees every such response before it is sent and may replace it (e.g. drop the
  connection after N successful writes, or count writes for throttling).
- ``v1_access`` is asked by every ``/ws/v1`` endpoint (401 when the plugin lacks accessLevelV1Api).
- ``table_access`` is asked by the table API with the columns a call reads or writes (403 NoAccess).
- ``query_access`` is asked by PowerQueries with the ``table.column`` fields they return (403).

Each returns ``None`` to allow, or a ``fastapi.Response`` to send instead. The default ``Policy``
allows everything; a plugin.xml-driven policy can be passed to ``create_app(policy=...)`` later
without touching the endpoint modules.
"""

from __future__ import annotations

from collections.abc import Sequence

from fastapi import Request, Response


class Policy:
    """Allow-all policy: the sandbox as a perfectly provisioned, unthrottled, healthy server."""

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
