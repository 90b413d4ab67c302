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
from .db import Database
from .fidelity import Policy
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


def create_app(district: dict[str, Any], *, client_id: str = DEFAULT_CLIENT_ID,
               client_secret: str = DEFAULT_CLIENT_SECRET, db_path: str | None = None,
               max_page_size: int = 100, query_max_page_size: int | None = None,
               token_ttl_seconds: int = auth.DEFAULT_TTL_SECONDS, policy: Policy | None = None,
               today: Callable[[], dt.date] | None = None) -> FastAPI:
    """A PowerSchool sandbox app holding ``district`` (see docs/sandbox-contract.md).

    ``max_page_size`` is both metadata maxima unless ``query_max_page_size`` is given. ``today``
    overrides the clock used to derive ``active`` flags. ``policy`` is the full-fidelity seam.
    """
    db = Database(db_path)
    db.load(district)
    sandbox = SandboxState(
        db=db,
        tokens=auth.TokenStore(client_id, client_secret, token_ttl_seconds),
        policy=policy or Policy(),
        max_page_size=max_page_size,
        query_max_page_size=query_max_page_size or max_page_size,
        today=today or dt.date.today,
    )
    app = FastAPI(title="PowerSchool sandbox", docs_url=None, redoc_url=None, openapi_url=None)
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
