"""Retry policy, backoff and a client-side rate limiter, shared by the HTTP clients.

The whole policy is :func:`decide`: given whether the call is safe to repeat and what went wrong, it says
*retry after N seconds*, *give up*, or *ambiguous write*. Tune it here.
"""

from __future__ import annotations

import random
import re
import threading
import time
from dataclasses import dataclass
from email.utils import parsedate_to_datetime
from enum import Enum

import requests
import urllib3.exceptions

__all__ = [
    "Outcome",
    "Decision",
    "decide",
    "is_safe_to_repeat",
    "backoff_delay",
    "parse_retry_after",
    "request_was_not_sent",
    "RateLimiter",
    "MAX_BACKOFF",
    "MAX_RETRY_AFTER",
]

MAX_BACKOFF = 30.0  # seconds, cap of one exponential backoff step
MAX_RETRY_AFTER = 300.0  # seconds, cap on a server's Retry-After

# POSTs that only read (PowerQueries), or that are idempotent (v1 student UPDATE, OAuth token).
_SAFE_POST = (
    re.compile(r"^/ws/schema/query/"),
    re.compile(r"^/ws/v1/student/?$"),
    re.compile(r"^/oauth/access_token/?$"),
)


def is_safe_to_repeat(method: str, path: str) -> bool:
    """GET/HEAD/PUT/DELETE are idempotent; of the POSTs only PowerQueries, the v1 student UPDATE and the
    token request are. Every other POST creates something and must not be repeated blindly."""
    m = method.upper()
    if m in ("GET", "HEAD", "OPTIONS", "PUT", "DELETE"):
        return True
    if m == "POST":
        p = path.split("?", 1)[0]
        return any(rx.match(p) for rx in _SAFE_POST)
    return False


class Outcome(Enum):
    RETRY = "retry"
    GIVE_UP = "give_up"  # raise the typed error for what happened
    AMBIGUOUS = "ambiguous"  # a create may or may not have happened: raise AmbiguousWriteError


@dataclass(frozen=True)
class Decision:
    outcome: Outcome
    delay: float = 0.0


def backoff_delay(attempt: int, base: float, rng: random.Random | None = None) -> float:
    """Exponential backoff with "equal jitter": ``base * 2**attempt`` capped, half of it random."""
    if base <= 0:
        return 0.0
    ceiling = min(MAX_BACKOFF, base * (2**attempt))
    r = (rng or random).random()
    return ceiling / 2 + r * ceiling / 2


def parse_retry_after(value: str | None) -> float | None:
    """``Retry-After`` as seconds (delta-seconds or HTTP date); None when missing or unparsable."""
    if not value:
        return None
    value = value.strip()
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        dt = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if dt is None:
        return None
    return max(0.0, dt.timestamp() - time.time())


def request_was_not_sent(exc: BaseException) -> bool:
    """True when a connection error certainly happened before the request reached the server
    (connect timeout, connection refused, DNS): then even a create can be retried."""
    if isinstance(exc, requests.exceptions.ConnectTimeout):
        return True
    if isinstance(exc, requests.exceptions.ConnectionError):
        reason = exc.args[0] if exc.args else None
        inner = getattr(reason, "reason", reason)
        return isinstance(inner, urllib3.exceptions.NewConnectionError)
    return False


def decide(
    *,
    safe: bool,
    attempt: int,
    max_retries: int,
    backoff: float,
    status: int | None = None,
    exc: BaseException | None = None,
    retry_after: float | None = None,
    rng: random.Random | None = None,
) -> Decision:
    """The retry policy.

    ``attempt`` is 0 for the first failure. ``status`` is the HTTP status when a reply came back,
    ``exc`` the transport exception otherwise.

    - 429: the server did not process the call, so every call may retry (after ``Retry-After`` when
      given, else backoff).
    - 5xx, connection errors, timeouts: retry calls that are safe to repeat. For creates: a connection
      error that certainly happened before sending retries; anything else is AMBIGUOUS.
    - other statuses: give up (the caller raises the typed error; 401 is handled by re-auth).
    """
    exhausted = attempt >= max_retries
    if status == 429:
        if exhausted:
            return Decision(Outcome.GIVE_UP)
        delay = retry_after if retry_after is not None else backoff_delay(attempt, backoff, rng)
        return Decision(Outcome.RETRY, min(delay, MAX_RETRY_AFTER))
    transient = exc is not None or (status is not None and status >= 500)
    if not transient:
        return Decision(Outcome.GIVE_UP)
    if not safe:
        if exc is not None and request_was_not_sent(exc):
            if exhausted:
                return Decision(Outcome.GIVE_UP)
            return Decision(Outcome.RETRY, backoff_delay(attempt, backoff, rng))
        return Decision(Outcome.AMBIGUOUS)
    if exhausted:
        return Decision(Outcome.GIVE_UP)
    if status is not None and retry_after is not None:
        return Decision(Outcome.RETRY, min(retry_after, MAX_RETRY_AFTER))
    return Decision(Outcome.RETRY, backoff_delay(attempt, backoff, rng))


class RateLimiter:
    """Minimum interval between requests (a token bucket of capacity 1), thread-safe.

    ``acquire()`` blocks until the next slot. ``requests_per_second`` <= 0 or None disables it.
    """

    def __init__(self, requests_per_second: float | None, *, clock=time.monotonic, sleep=time.sleep):
        self.interval = 1.0 / requests_per_second if requests_per_second and requests_per_second > 0 else 0.0
        self._clock = clock
        self._sleep = sleep
        self._lock = threading.Lock()
        self._next = 0.0

    def acquire(self) -> float:
        """Wait for a slot; return the seconds waited."""
        if not self.interval:
            return 0.0
        with self._lock:
            now = self._clock()
            wait = max(0.0, self._next - now)
            self._next = max(now, self._next) + self.interval
        if wait:
            self._sleep(wait)
        return wait

    def defer(self, seconds: float) -> None:
        """Push the next slot back (e.g. after a 429 with Retry-After)."""
        with self._lock:
            self._next = max(self._next, self._clock() + seconds)
