"""Admin endpoints (``/_sandbox/*``, no auth, loopback only) and the request-counting middleware."""

from __future__ import annotations

import hashlib
import ipaddress
import json
import threading
from typing import Any

from fastapi import APIRouter, Request, Response
from fastapi.responses import JSONResponse

from .auth import bearer_token, unauthorized
from .fidelity import PluginPolicy
from .plugin import PluginError, parse_plugin
from .util import state

COUNTED_METHODS = ("GET", "POST", "PUT", "DELETE")
WRITE_METHODS = ("POST", "PUT", "DELETE")


class Stats:
    """Requests by method, and every successful state-changing call under ``/ws``."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.reset()

    def reset(self) -> None:
        with self._lock:
            self.requests = dict.fromkeys(COUNTED_METHODS, 0)
            self.writes: list[dict[str, Any]] = []

    def count(self, method: str) -> None:
        if method in self.requests:
            with self._lock:
                self.requests[method] += 1

    def record_write(self, method: str, path: str, status: int, body: bytes = b"") -> None:
        with self._lock:
            self.writes.append({"seq": len(self.writes) + 1, "method": method, "path": path, "status": status,
                                "body_sha256": hashlib.sha256(body).hexdigest()})

    def snapshot(self) -> dict[str, Any]:
        with self._lock:
            return {"requests": dict(self.requests), "writes": len(self.writes)}

    def write_log(self, digests: bool = False) -> list[dict[str, Any]]:
        """Every recorded write; with ``digests`` also the SHA-256 of its request body, so a check can
        tell one write sent twice from two different writes to one path."""
        with self._lock:
            return [w if digests else {k: v for k, v in w.items() if k != "body_sha256"} for w in
                    (dict(w) for w in self.writes)]


def is_write(method: str, path: str) -> bool:
    """State-changing calls under /ws; PowerQuery POSTs are reads."""
    return method in WRITE_METHODS and path.startswith("/ws/") and not path.startswith("/ws/schema/query/")


def _loopback(request: Request) -> bool:
    host = request.client.host if request.client else ""
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return host in ("localhost", "testclient")


async def sandbox_middleware(request: Request, call_next: Any) -> Response:
    """The Bearer check for /ws, the fidelity policy's hooks and the write log.

    Requests are counted earlier, by the ASGI gate in ``faults.py`` (so throttled and faulted
    requests count too).
    """
    sb = state(request)
    path, method = request.url.path, request.method
    if path.startswith("/_sandbox"):
        if not _loopback(request):
            return JSONResponse({"message": "admin endpoints are loopback only"}, status_code=403)
        return await call_next(request)
    if path.startswith("/ws") and not sb.tokens.valid(bearer_token(request)):
        return unauthorized()
    blocked = await sb.policy.before_request(request)
    if blocked is not None:
        return blocked
    response = await sb.policy.after_response(request, await call_next(request))
    if is_write(method, path) and 200 <= response.status_code < 300:
        sb.stats.record_write(method, path, response.status_code, bytes(request.scope.get("writeback.body", b"")))
    return response


router = APIRouter(prefix="/_sandbox")


@router.get("/health")
def health() -> dict[str, bool]:
    return {"ok": True}


@router.get("/stats")
def stats(request: Request) -> dict[str, Any]:
    return state(request).stats.snapshot()


@router.get("/writes")
def writes(request: Request, digests: bool = False) -> list[dict[str, Any]]:
    return state(request).stats.write_log(digests)


@router.post("/reset-stats")
def reset_stats(request: Request) -> dict[str, bool]:
    state(request).stats.reset()
    return {"ok": True}


def _bad(exc: ValueError) -> JSONResponse:
    return JSONResponse({"message": str(exc)}, status_code=400)


async def _json(request: Request) -> Any:
    try:
        return json.loads(await request.body() or b"null")
    except ValueError:
        raise ValueError("the body must be JSON") from None


# -- faults and throttling (faults.py) -------------------------------------------------------------
@router.get("/faults")
async def get_faults(request: Request) -> dict[str, Any]:
    return state(request).faults.snapshot()


@router.post("/faults", response_model=None)
async def set_faults(request: Request) -> dict[str, Any] | JSONResponse:
    faults = state(request).faults
    try:
        faults.configure(await _json(request))
    except ValueError as exc:
        return _bad(exc)
    return faults.snapshot()


@router.delete("/faults")
async def clear_faults(request: Request) -> dict[str, Any]:
    faults = state(request).faults
    faults.clear()
    return faults.snapshot()


@router.get("/throttle")
async def get_throttle(request: Request) -> dict[str, int]:
    return state(request).throttle.snapshot()


@router.put("/throttle", response_model=None)
async def set_throttle(request: Request) -> dict[str, int] | JSONResponse:
    throttle = state(request).throttle
    try:
        throttle.configure(await _json(request))
    except ValueError as exc:
        return _bad(exc)
    return throttle.snapshot()


# -- the installed plugin (plugin.py, fidelity.PluginPolicy) ---------------------------------------
@router.get("/plugin", response_model=None)
async def get_plugin(request: Request) -> dict[str, Any] | JSONResponse:
    policy = state(request).policy
    if not isinstance(policy, PluginPolicy):
        return JSONResponse({"message": "this sandbox runs a custom policy, not a plugin.xml"}, status_code=409)
    return policy.plugin.as_json()


@router.put("/plugin", response_model=None)
async def put_plugin(request: Request) -> dict[str, Any] | JSONResponse:
    """Install another plugin.xml (the raw XML is the body) without restarting."""
    policy = state(request).policy
    if not isinstance(policy, PluginPolicy):
        return JSONResponse({"message": "this sandbox runs a custom policy, not a plugin.xml"}, status_code=409)
    try:
        policy.plugin = parse_plugin((await request.body()).decode("utf-8", "replace"))
    except PluginError as exc:
        return _bad(exc)
    return policy.plugin.as_json()


@router.post("/expire-tokens")
def expire_tokens(request: Request) -> dict[str, bool]:
    """Not in the contract: revoke the live token so clients can be tested re-authenticating on 401."""
    state(request).tokens.revoke()
    return {"ok": True}
