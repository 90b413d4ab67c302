"""Throttling and faults on demand, applied by a raw ASGI gate in front of the whole app.

The gate (``gate``) sees every request before FastAPI does and talks to uvicorn's own ``send``, so
it can do what a middleware cannot: hold a committed write's response back and drop the connection
(the client sees a connection error although the write happened), or end the process right after a
commit. For each ``/ws`` request, in this order:

1. throttling — a request with a valid token that arrives less than ``min_interval_ms`` after the
   plugin's previous accepted ``/ws`` request gets 429 + ``Retry-After`` (nothing else happens);
2. ``latency_ms`` — the request waits that long before it is handled;
3. ``burst_429`` — the next N requests get 429 with ``Retry-After: 1``;
4. ``error_rate`` — that share of requests gets 500 or 503 before anything is done (no write);
5. the request runs; a successful state-changing call (``admin.is_write``, 2xx) may then be dropped
   (``drop_after_writes``) or end the process with exit code 137 (``kill_after_writes``).

OAuth and ``/_sandbox`` admin calls are never throttled nor faulted. Randomness comes only from
``random.Random(seed)``, so the same seed and the same request sequence give the same statuses.
"""

from __future__ import annotations

import asyncio
import json
import math
import os
import random
import time
from collections.abc import Awaitable, Callable
from typing import Any

from .admin import is_write

Scope = dict[str, Any]
Message = dict[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

KILL_EXIT_CODE = 137


def _too_many(seconds: int) -> tuple[int, dict[str, str], dict[str, Any]]:
    return 429, {"Retry-After": str(seconds)}, {"message": f"too many requests, wait {seconds} seconds"}


class Throttle:
    """A minimum interval between accepted ``/ws`` requests per plugin (client_id); 0 = off."""

    def __init__(self, min_interval_ms: int = 0) -> None:
        if min_interval_ms < 0:
            raise ValueError("min_interval_ms must be >= 0")
        self.min_interval_ms = min_interval_ms
        self.throttled = 0
        self._last: dict[str, float] = {}

    def check(self, client_id: str) -> int | None:
        """Seconds to wait (an integer >= 1) when the request comes too soon; else record it and None."""
        if self.min_interval_ms <= 0:
            return None
        now = time.monotonic()
        last = self._last.get(client_id)
        remaining = (last + self.min_interval_ms / 1000 - now) if last is not None else 0.0
        if remaining > 0:
            self.throttled += 1
            return max(1, math.ceil(remaining))
        self._last[client_id] = now
        return None

    def configure(self, body: Any) -> None:
        if not isinstance(body, dict) or set(body) != {"min_interval_ms"}:
            raise ValueError('body must be {"min_interval_ms": <int >= 0>}')
        value = body["min_interval_ms"]
        if not isinstance(value, int) or isinstance(value, bool) or value < 0:
            raise ValueError("min_interval_ms must be an integer >= 0")
        self.min_interval_ms = value
        self._last.clear()

    def snapshot(self) -> dict[str, int]:
        return {"min_interval_ms": self.min_interval_ms, "throttled": self.throttled}


_INT_FIELDS = ("seed", "latency_ms", "burst_429")
_OPTIONAL_FIELDS = ("drop_after_writes", "kill_after_writes")
FIELDS = (*_INT_FIELDS, "error_rate", *_OPTIONAL_FIELDS)


def _count(name: str, value: Any, *, allow_negative: bool = False) -> int:
    if not isinstance(value, int) or isinstance(value, bool) or (value < 0 and not allow_negative):
        raise ValueError(f"{name} must be an integer" + ("" if allow_negative else " >= 0"))
    return value


class Faults:
    """The current fault settings (``POST /_sandbox/faults``), their RNG and counters."""

    def __init__(self) -> None:
        self.clear()

    def clear(self) -> None:
        self.seed = 0
        self.latency_ms = 0
        self.error_rate = 0.0
        self.burst_429 = 0
        self.drop_after_writes: int | None = None
        self.kill_after_writes: int | None = None
        self.rng = random.Random(0)
        self.counters = {"requests": 0, "delayed": 0, "burst_429": 0, "errors_500": 0, "errors_503": 0,
                         "writes": 0, "dropped": 0}

    def configure(self, body: Any) -> None:
        """Replace every setting (omitted ones are off), reseed the RNG and zero the counters."""
        if not isinstance(body, dict):
            raise ValueError("the body must be a JSON object")
        unknown = sorted(set(body) - set(FIELDS))
        if unknown:
            raise ValueError(f"unknown fault settings: {', '.join(unknown)} (known: {', '.join(FIELDS)})")
        seed = _count("seed", body.get("seed", 0), allow_negative=True)
        latency = _count("latency_ms", body.get("latency_ms", 0))
        burst = _count("burst_429", body.get("burst_429", 0))
        rate = body.get("error_rate", 0.0)
        if not isinstance(rate, int | float) or isinstance(rate, bool) or not 0.0 <= rate <= 1.0:
            raise ValueError("error_rate must be a number between 0 and 1")
        optional = {k: None if body.get(k) is None else _count(k, body[k]) for k in _OPTIONAL_FIELDS}
        self.clear()
        self.seed, self.latency_ms, self.burst_429, self.error_rate = seed, latency, burst, float(rate)
        self.drop_after_writes = optional["drop_after_writes"]
        self.kill_after_writes = optional["kill_after_writes"]
        self.rng = random.Random(seed)

    def snapshot(self) -> dict[str, Any]:
        return {"seed": self.seed, "latency_ms": self.latency_ms, "error_rate": self.error_rate,
                "burst_429": self.burst_429, "drop_after_writes": self.drop_after_writes,
                "kill_after_writes": self.kill_after_writes, "counters": dict(self.counters)}

    def before(self) -> tuple[float, tuple[int, dict[str, str], dict[str, Any]] | None]:
        """(seconds to wait, an injected (status, headers, body) or None) for one ``/ws`` request."""
        self.counters["requests"] += 1
        delay = self.latency_ms / 1000
        if delay:
            self.counters["delayed"] += 1
        if self.burst_429 > 0:
            self.burst_429 -= 1
            self.counters["burst_429"] += 1
            return delay, _too_many(1)
        if self.error_rate > 0 and self.rng.random() < self.error_rate:
            status = self.rng.choice((500, 503))
            self.counters[f"errors_{status}"] += 1
            text = "Internal Server Error" if status == 500 else "Service Unavailable"
            return delay, (status, {}, {"message": text})
        return delay, None

    def after_write(self) -> str | None:
        """Called once per committed write: ``"kill"``, ``"drop"`` or None (send the reply)."""
        self.counters["writes"] += 1
        outcome = None
        if self.kill_after_writes is not None:
            if self.kill_after_writes == 0:
                outcome = "kill"
            else:
                self.kill_after_writes -= 1
        if self.drop_after_writes is not None:
            if self.drop_after_writes == 0:
                self.drop_after_writes = None
                if outcome is None:
                    outcome = "drop"
                    self.counters["dropped"] += 1
            else:
                self.drop_after_writes -= 1
        return outcome


def _bearer(scope: Scope) -> str | None:
    for name, value in scope.get("headers", []):
        if name.lower() == b"authorization":
            scheme, _, token = value.decode("latin-1").partition(" ")
            return token.strip() if scheme.lower() == "bearer" and token.strip() else None
    return None


async def _reply(send: Send, status: int, headers: dict[str, str], body: dict[str, Any]) -> None:
    payload = json.dumps(body).encode()
    raw = [(b"content-type", b"application/json"), (b"content-length", str(len(payload)).encode())]
    raw += [(k.lower().encode(), v.encode()) for k, v in headers.items()]
    await send({"type": "http.response.start", "status": status, "headers": raw})
    await send({"type": "http.response.body", "body": payload, "more_body": False})


async def _drop_connection(send: Send) -> None:
    """Close the client's connection without a byte of the response.

    uvicorn's ``send`` is a bound method of the request cycle, which holds the asyncio transport.
    Once the transport is gone uvicorn marks the cycle disconnected and sends nothing more.
    """
    cycle = getattr(send, "__self__", None)
    transport = getattr(cycle, "transport", None)
    if transport is None:  # not uvicorn: fail the request instead
        raise ConnectionAbortedError("connection dropped by fault injection")
    transport.abort()
    for _ in range(200):
        if getattr(cycle, "disconnected", True):
            return
        await asyncio.sleep(0)


async def gate(app: ASGIApp, sb: Any, scope: Scope, receive: Receive, send: Send) -> None:
    """Run ``app`` for one ASGI call with the sandbox's throttling and faults applied (see module doc)."""
    if scope["type"] != "http":
        await app(scope, receive, send)
        return
    path, method = scope["path"], scope["method"]
    if path.startswith("/_sandbox"):
        await app(scope, receive, send)
        return
    sb.stats.count(method)
    if not (path == "/ws" or path.startswith("/ws/")):
        await app(scope, receive, send)
        return
    if sb.throttle.min_interval_ms > 0 and sb.tokens.valid(_bearer(scope)):
        wait = sb.throttle.check(sb.tokens.client_id)
        if wait is not None:
            await _reply(send, *_too_many(wait))
            return
    delay, injected = sb.faults.before()
    if delay:
        await asyncio.sleep(delay)
    if injected is not None:
        await _reply(send, *injected)
        return
    if not is_write(method, path):
        await app(scope, receive, send)
        return
    held: list[Message] = []
    body = scope["writeback.body"] = bytearray()  # the write log keeps a digest of each write's body

    async def hold(message: Message) -> None:
        held.append(message)

    async def received() -> Message:
        message = await receive()
        if message["type"] == "http.request":
            body.extend(message.get("body", b""))
        return message

    await app(scope, received, hold)
    start = next((m for m in held if m["type"] == "http.response.start"), None)
    outcome = sb.faults.after_write() if start is not None and 200 <= start["status"] < 300 else None
    if outcome == "kill":
        os._exit(KILL_EXIT_CODE)
    if outcome == "drop":
        await _drop_connection(send)
        return
    for message in held:
        await send(message)
