"""Who is asking, and may they see or decide a run? Behind a small interface so the app does not care which.

`AirflowAuth` uses the Airflow API server's own auth manager (SimpleAuthManager, FAB, Keycloak, ...):
the JWT comes from `Authorization: Bearer <token>` or, for a browser, the `_token` cookie Airflow's login
sets; a run is checked against its DAG (`writeback_<district>`) exactly as Airflow's API checks a DAG run
(`airflow.api_fastapi.core_api.security.requires_access_dag` on the dagRuns routes): `is_authorized_dag`
with the DAG run entity and `DagDetails(id=..., team_name=DagModel.get_team_name(dag_id))` — the team
that owns the DAG's bundle in multi-team mode, so a user of one team never reads or decides another
team's runs — GET to see a run, PUT to decide. Plugin `fastapi_apps` do not inherit Airflow's auth, so
every route of the review app goes through this.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import secrets
import time
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol

from fastapi import HTTPException, Request, status

COOKIE_NAME = "_token"  # Airflow's COOKIE_NAME_JWT_TOKEN
Method = Literal["GET", "PUT"]


@dataclass
class Principal:
    """An authenticated caller. `via` says how: a Bearer header (API client) or the session cookie (browser)."""

    username: str
    via: Literal["bearer", "cookie"]
    user: Any = None  # the auth manager's own user object
    _cache: dict[tuple[str, str], bool] = field(default_factory=dict, repr=False)


class Auth(Protocol):
    async def authenticate(self, request: Request) -> Principal:
        """The caller, or HTTPException(401) when the request carries no valid credential."""

    def is_authorized(self, principal: Principal, dag_id: str, method: Method) -> bool:
        """May `principal` read (GET) or edit (PUT) the DAG?"""

    def login_url(self, next_url: str) -> str | None:
        """Where a browser without a session should go to log in."""

    def secret(self) -> bytes:
        """The key CSRF tokens are signed with (the same on every API server worker)."""


def dag_id_for(district: str) -> str:
    return f"writeback_{district}"


def _bearer(request: Request) -> str | None:
    header = request.headers.get("authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() == "bearer" and token.strip():
        return token.strip()
    return None


class AirflowAuth:
    """Authentication and authorisation by the running Airflow API server's auth manager."""

    def _manager(self):
        from airflow.api_fastapi.app import get_auth_manager

        return get_auth_manager()

    async def authenticate(self, request: Request) -> Principal:
        from jwt import ExpiredSignatureError, InvalidTokenError

        token, via = _bearer(request), "bearer"
        if token is None:
            token, via = request.cookies.get(COOKIE_NAME), "cookie"
        if not token:
            raise HTTPException(status.HTTP_401_UNAUTHORIZED, "Not authenticated: log in to Airflow first")
        try:
            user = await self._manager().get_user_from_token(token)
        except ExpiredSignatureError:
            raise HTTPException(status.HTTP_401_UNAUTHORIZED, "Token expired: log in to Airflow again") from None
        except InvalidTokenError:
            raise HTTPException(status.HTTP_401_UNAUTHORIZED, "Invalid token") from None
        return Principal(username=user.get_name(), via=via, user=user)  # type: ignore[arg-type]

    def is_authorized(self, principal: Principal, dag_id: str, method: Method) -> bool:
        key = (dag_id, method)
        if key not in principal._cache:
            from airflow.api_fastapi.auth.managers.models.resource_details import DagAccessEntity, DagDetails
            from airflow.models.dag import DagModel

            # as GET/PATCH /api/v2/dags/{dag_id}/dagRuns/{run} authorise: the DAG's team comes from the bundle
            # that holds it (None outside multi-team mode, or for a DAG no bundle owns)
            details = DagDetails(id=dag_id, team_name=DagModel.get_team_name(dag_id))
            principal._cache[key] = bool(self._manager().is_authorized_dag(
                method=method, access_entity=DagAccessEntity.RUN, details=details, user=principal.user))
        return principal._cache[key]

    def login_url(self, next_url: str) -> str | None:
        try:
            return self._manager().get_url_login(next_url=next_url)
        except Exception:  # noqa: BLE001 - a login link is a convenience, never a reason to fail
            return None

    def secret(self) -> bytes:
        from airflow.configuration import conf

        key = conf.get("api", "secret_key", fallback="") or os.environ.get("WRITEBACK_REVIEW_SECRET", "")
        return key.encode() if key else _process_secret()


_PROCESS_SECRET = secrets.token_bytes(32)


def _process_secret() -> bytes:
    return _PROCESS_SECRET


# ---------------------------------------------------------------- CSRF


CSRF_FIELD = "csrf_token"
CSRF_HEADER = "x-csrf-token"
CSRF_MAX_AGE = 12 * 3600


def csrf_token(secret: bytes, username: str, now: float | None = None) -> str:
    """`<issued>.<HMAC(secret, username|issued)>`: bound to the user, valid for CSRF_MAX_AGE seconds."""
    issued = str(int(now if now is not None else time.time()))
    mac = hmac.new(secret, f"csrf|{username}|{issued}".encode(), hashlib.sha256).hexdigest()
    return f"{issued}.{mac}"


def csrf_valid(secret: bytes, username: str, token: str | None, now: float | None = None) -> bool:
    if not token or "." not in token:
        return False
    issued, _, mac = token.partition(".")
    if not issued.isdigit():
        return False
    age = (now if now is not None else time.time()) - int(issued)
    if age < 0 or age > CSRF_MAX_AGE:
        return False
    expected = hmac.new(secret, f"csrf|{username}|{issued}".encode(), hashlib.sha256).hexdigest()
    return hmac.compare_digest(expected, mac)
