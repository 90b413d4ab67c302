"""Assembles the PowerSchool sandbox FastAPI app from its modules."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse

from . import admin, auth, contacts, powerquery, tables, v1
from .db import EXTENSION_KEY, Database
from .faults import Faults, Throttle, gate
from .fidelity import PluginPolicy, Policy
from .plugin import FULL_ACCESS, Plugin, default_plugin_xml, parse_plugin
from .util import ApiError, api_error_handler

DEFAULT_CLIENT_ID = "sandbox-client"
DEFAULT_CLIENT_SECRET = "sandbox-secret"


@dataclass
class SandboxState:
    db: Database
    tokens: auth.TokenStore
    policy: Policy
    max_page_size: int = 100
    query_max_page_size: int = 100
    today: Callable[[], dt.date] = dt.date.today
    stats: admin.Stats = field(default_factory=admin.Stats)
    throttle: Throttle = field(default_factory=Throttle)
    faults: Faults = field(default_factory=Faults)


class SandboxApp(FastAPI):
    """FastAPI with the throttling/fault gate (faults.py) in front, talking to uvicorn's own ``send``."""

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        await gate(super().__call__, self.state.sandbox, scope, receive, send)


def load_plugin(plugin_xml: str | None, db: Database) -> Plugin:
    """The installed plugin: ``plugin_xml``, or the bundled default (see docs/sandbox-contract.md).

    The default also grants FullAccess on every column of the district's extension tables, so a
    district with extra ``U_``/``S_`` tables is fully provisioned unless a plugin.xml says otherwise.
    """
    if plugin_xml is not None:
        return parse_plugin(plugin_xml)
    plugin = parse_plugin(default_plugin_xml())
    for table, cols in db.extensions.items():
        for col in ("id", EXTENSION_KEY, *cols):
            plugin.grant(table, col, FULL_ACCESS)
    return plugin


def create_app(district: dict[str, Any], *, client_id: str = DEFAULT_CLIENT_ID,
               client_secret: str = DEFAULT_CLIENT_SECRET, db_path: str | None = None,
               max_page_size: int = 100, query_max_page_size: int | None = None,
               token_ttl_seconds: int = auth.DEFAULT_TTL_SECONDS, policy: Policy | None = None,
               today: Callable[[], dt.date] | None = None, plugin_xml: str | None = None,
               min_interval_ms: int = 0) -> FastAPI:
    """A PowerSchool sandbox app holding ``district`` (see docs/sandbox-contract.md).

    ``max_page_size`` is both metadata maxima unless ``query_max_page_size`` is given. ``today``
    overrides the clock used to derive ``active`` flags. ``plugin_xml`` is the installed plugin's
    XML (default: the bundled default_plugin.xml; an invalid one raises ``PluginError``). ``policy``
    replaces the plugin-driven policy altogether. ``min_interval_ms`` throttles ``/ws`` requests.
    """
    plugin = parse_plugin(plugin_xml) if plugin_xml is not None else None  # fail before touching the db
    db = Database(db_path)
    db.load(district)
    sandbox = SandboxState(
        db=db,
        tokens=auth.TokenStore(client_id, client_secret, token_ttl_seconds),
        policy=policy or PluginPolicy(plugin or load_plugin(None, db)),
        max_page_size=max_page_size,
        query_max_page_size=query_max_page_size or max_page_size,
        today=today or dt.date.today,
        throttle=Throttle(min_interval_ms),
    )
    app = SandboxApp(title="PowerSchool sandbox", docs_url=None, redoc_url=None, openapi_url=None)
    app.state.sandbox = sandbox
    app.add_exception_handler(ApiError, api_error_handler)
    app.add_exception_handler(RequestValidationError, _bad_request)
    app.middleware("http")(admin.sandbox_middleware)
    for module in (auth, admin, v1, contacts, tables, powerquery):
        app.include_router(module.router)
    return app


def _bad_request(_request: Request, exc: Exception) -> JSONResponse:
    """PowerSchool answers malformed bodies with 400, not FastAPI's 422."""
    return JSONResponse({"message": "Malformed request body: the body must be valid JSON"}, status_code=400)
