"""SchoolEngage submissions client (``/api/v1/submissions``).

Read-only, so every call is safe to repeat: retries with backoff on 5xx, 429 (``Retry-After``),
connection errors and timeouts (policy: :func:`writeback.powerschool.retry.decide`). Logs carry method,
path, counts and submission ids only — never field values.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator, Mapping
from typing import Any
from urllib.parse import quote

import requests

from writeback.http_client import SessionClient
from writeback.powerschool.retry import Outcome, decide, parse_retry_after

__all__ = [
    "SchoolEngageClient",
    "SchoolEngageError",
    "SchoolEngageAuthError",
    "SubmissionNotFound",
]

log = logging.getLogger(__name__)

SUBMISSIONS_PATH = "/api/v1/submissions"
DEFAULT_PER_PAGE = 100


class SchoolEngageError(Exception):
    """``status`` (None when no reply came back), ``message``, ``method``, ``path`` (no query string)."""

    def __init__(self, status: int | None, message: str, method: str | None = None, path: str | None = None):
        self.status = status
        self.message = (message or "")[:300]
        self.method = method
        self.path = path
        where = " ".join(p for p in (method, path) if p)
        code = f"HTTP {status}" if status is not None else "no response"
        super().__init__(f"{where}: {code}: {self.message}" if where else f"{code}: {self.message}")


class SchoolEngageAuthError(SchoolEngageError):
    """401/403: the API key is wrong or lacks access."""


class SubmissionNotFound(SchoolEngageError):
    """404 for one submission."""


class SchoolEngageClient(SessionClient):
    def __init__(
        self,
        base_url: str,
        api_key: str,
        *,
        timeout: float = 30,
        max_retries: int = 5,
        backoff: float = 0.5,
        per_page: int = DEFAULT_PER_PAGE,
        session: requests.Session | None = None,
    ):
        super().__init__(base_url, timeout=timeout, max_retries=max_retries, backoff=backoff, session=session)
        self._api_key = api_key
        self.per_page = per_page

    def __repr__(self) -> str:
        return f"SchoolEngageClient(base_url={self.base_url!r})"

    # ------------------------------------------------------------------------------------ plumbing

    def _get(self, op: str, path: str, params: Mapping[str, Any] | None = None) -> Any:
        params = {k: v for k, v in (params or {}).items() if v is not None}
        headers = {"Accept": "application/json", "Authorization": f"Bearer {self._api_key}"}
        attempt = 0
        while True:
            self.stats[op] += 1
            try:
                resp = self.session.get(
                    self.base_url + path, params=params or None, headers=headers, timeout=self.timeout
                )
            except (requests.ConnectionError, requests.Timeout) as exc:
                kind = type(exc).__name__
                d = decide(
                    safe=True, attempt=attempt, max_retries=self.max_retries, backoff=self.backoff, exc=exc
                )
                if d.outcome is Outcome.RETRY:
                    log.warning("GET %s: %s, retry %d in %.2fs", path, kind, attempt + 1, d.delay)
                    self._sleep(d.delay)
                    attempt += 1
                    continue
                raise SchoolEngageError(None, f"{kind} after {attempt + 1} attempt(s)", "GET", path) from None
            status = resp.status_code
            if status < 400:
                if not resp.content:
                    return None
                try:
                    return resp.json()
                except ValueError:
                    raise SchoolEngageError(status, "reply is not JSON", "GET", path) from None
            if status == 429 or status >= 500:
                retry_after = parse_retry_after(resp.headers.get("Retry-After"))
                d = decide(
                    safe=True,
                    attempt=attempt,
                    max_retries=self.max_retries,
                    backoff=self.backoff,
                    status=status,
                    retry_after=retry_after,
                )
                if d.outcome is Outcome.RETRY:
                    log.warning("GET %s: HTTP %d, retry %d in %.2fs", path, status, attempt + 1, d.delay)
                    self._sleep(d.delay)
                    attempt += 1
                    continue
            message = _error_message(resp)
            if status in (401, 403):
                raise SchoolEngageAuthError(status, message, "GET", path)
            if status == 404:
                raise SubmissionNotFound(status, message, "GET", path)
            raise SchoolEngageError(status, message, "GET", path)

    # ------------------------------------------------------------------------------------ API

    def _pages(self, since: str | None) -> Iterator[tuple[list[dict[str, Any]], str | None]]:
        page = 1
        while True:
            body = self._get(
                "list_submissions",
                SUBMISSIONS_PATH,
                {"since": since or None, "page": page, "per_page": self.per_page},
            )
            if not isinstance(body, Mapping):
                raise SchoolEngageError(200, "listing reply is not an object", "GET", SUBMISSIONS_PATH)
            data = body.get("data") or []
            if isinstance(data, dict):
                data = [data]
            cursor = body.get("cursor")
            yield list(data), (None if cursor in (None, "") else str(cursor))
            next_page = body.get("next_page")
            if not next_page or not data:
                return
            page = int(next_page)

    def iter_submissions(self, since: str | None = None) -> Iterator[dict[str, Any]]:
        """Every submission updated after the cursor ``since`` (all when None), over all pages, in the
        source's order ``(updated_at, id)``."""
        for data, _cursor in self._pages(since):
            yield from data

    def fetch_since(self, since: str | None = None) -> tuple[list[dict[str, Any]], str | None]:
        """All submissions after ``since`` and the listing's cursor to pass as ``since`` next time.

        When nothing new came back and the server gave no cursor, the old cursor is returned so a
        caller never goes back to the beginning."""
        out: list[dict[str, Any]] = []
        cursor: str | None = None
        for data, page_cursor in self._pages(since):
            out.extend(data)
            if page_cursor is not None:
                cursor = page_cursor
        log.info("SchoolEngage: %d submission(s) since %s", len(out), "start" if not since else "cursor")
        return out, cursor if cursor is not None else since

    def ping(self) -> int | None:
        """One cheap authenticated call (first page, one row); returns the listing's ``total``."""
        body = self._get("ping", SUBMISSIONS_PATH, {"page": 1, "per_page": 1})
        return body.get("total") if isinstance(body, Mapping) else None

    def get_submission(self, submission_id: str) -> dict[str, Any]:
        body = self._get("get_submission", f"{SUBMISSIONS_PATH}/{quote(str(submission_id), safe='')}")
        if isinstance(body, Mapping) and isinstance(body.get("data"), dict):
            return dict(body["data"])
        if not isinstance(body, Mapping):
            raise SchoolEngageError(200, "submission reply is not an object", "GET", SUBMISSIONS_PATH)
        return dict(body)


def _error_message(resp: requests.Response) -> str:
    try:
        body = resp.json()
    except ValueError:
        return (resp.text or "").strip().splitlines()[0][:200] if resp.text and resp.text.strip() else ""
    if isinstance(body, Mapping):
        for key in ("message", "error", "detail"):
            if isinstance(body.get(key), str):
                return body[key]
    return ""
