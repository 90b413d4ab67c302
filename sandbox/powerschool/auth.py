"""OAuth client-credentials tokens: ``POST /oauth/access_token`` (and with a trailing slash)."""

from __future__ import annotations

import base64
import binascii
import secrets
import threading
import time
from urllib.parse import parse_qs

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

from .util import state

DEFAULT_TTL_SECONDS = 30 * 24 * 3600


class TokenStore:
    """One live token per client; asking again returns it until it expires (or is revoked)."""

    def __init__(self, client_id: str, client_secret: str, ttl_seconds: int = DEFAULT_TTL_SECONDS) -> None:
        self.client_id = client_id
        self.client_secret = client_secret
        self.ttl_seconds = ttl_seconds
        self._lock = threading.Lock()
        self._token: str | None = None
        self._expires_at = 0.0

    def credentials_ok(self, client_id: str, client_secret: str) -> bool:
        return secrets.compare_digest(client_id, self.client_id) and secrets.compare_digest(
            client_secret, self.client_secret)

    def issue(self) -> tuple[str, int]:
        """The current token and its remaining lifetime in seconds (a new token when none is live)."""
        with self._lock:
            now = time.time()
            if self._token is None or now >= self._expires_at:
                self._token = secrets.token_hex(16)
                self._expires_at = now + self.ttl_seconds
            return self._token, max(0, int(self._expires_at - now))

    def valid(self, token: str | None) -> bool:
        with self._lock:
            return (token is not None and self._token is not None
                    and secrets.compare_digest(token, self._token) and time.time() < self._expires_at)

    def revoke(self) -> None:
        with self._lock:
            self._token = None
            self._expires_at = 0.0


def bearer_token(request: Request) -> str | None:
    header = request.headers.get("authorization", "")
    scheme, _, token = header.partition(" ")
    return token.strip() if scheme.lower() == "bearer" and token.strip() else None


def unauthorized() -> JSONResponse:
    return JSONResponse({"error": "invalid_token", "message": "Invalid or expired access token"},
                        status_code=401, headers={"WWW-Authenticate": 'Bearer error="invalid_token"'})


def _basic_credentials(request: Request) -> tuple[str, str] | None:
    header = request.headers.get("authorization", "")
    scheme, _, encoded = header.partition(" ")
    if scheme.lower() != "basic":
        return None
    try:
        client_id, sep, secret = base64.b64decode(encoded.strip(), validate=True).decode("utf-8").partition(":")
    except (binascii.Error, UnicodeDecodeError):
        return None
    return (client_id, secret) if sep else None


router = APIRouter()


@router.post("/oauth/access_token")
@router.post("/oauth/access_token/")
async def access_token(request: Request) -> JSONResponse:
    tokens: TokenStore = state(request).tokens
    creds = _basic_credentials(request)
    if creds is None or not tokens.credentials_ok(*creds):
        return JSONResponse({"error": "invalid_client", "error_description": "Bad client credentials"},
                            status_code=401, headers={"WWW-Authenticate": 'Basic realm="oauth"'})
    form = parse_qs((await request.body()).decode("utf-8", "replace"))
    if form.get("grant_type", [""])[0] != "client_credentials":
        return JSONResponse({"error": "unsupported_grant_type",
                             "error_description": "grant_type must be client_credentials"}, status_code=400)
    token, remaining = tokens.issue()
    return JSONResponse({"access_token": token, "token_type": "Bearer", "expires_in": str(remaining)})
