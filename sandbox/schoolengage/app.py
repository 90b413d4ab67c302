"""FastAPI app for the SchoolEngage sandbox (see docs/sandbox-contract.md, "SchoolEngage sandbox")."""

from __future__ import annotations

import base64
import binascii
import copy
import threading
from datetime import UTC, datetime, timedelta
from typing import Any

from fastapi import Body, FastAPI, HTTPException, Query, Request
from fastapi.responses import JSONResponse

DEFAULT_API_KEY = "sandbox-se-key"
MAX_PER_PAGE = 100
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def parse_ts(value: str) -> datetime:
    """ISO-8601 timestamp ('Z' or offset, optional fraction) -> aware UTC datetime."""
    text = value.strip()
    if text.endswith(("Z", "z")):
        text = text[:-1] + "+00:00"
    dt = datetime.fromisoformat(text)
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=UTC)
    return dt.astimezone(UTC)


def format_ts(dt: datetime) -> str:
    """Whole seconds, 'Z': the same shape the generator writes, so the strings also sort correctly."""
    return dt.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def encode_cursor(position: tuple[datetime, str] | None) -> str:
    raw = "" if position is None else f"{position[0].strftime('%Y-%m-%dT%H:%M:%S.%fZ')}|{position[1]}"
    return base64.urlsafe_b64encode(("v1:" + raw).encode()).decode().rstrip("=")


def decode_cursor(cursor: str) -> tuple[datetime, str] | None:
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
    except (binascii.Error, UnicodeDecodeError, ValueError) as exc:
        raise ValueError("malformed cursor") from exc
    if not raw.startswith("v1:"):
        raise ValueError("malformed cursor")
    raw = raw[3:]
    if not raw:
        return None
    ts, sep, sid = raw.partition("|")
    if not sep:
        raise ValueError("malformed cursor")
    return parse_ts(ts), sid


class SubmissionStore:
    """In-memory submissions with a server clock that only moves forward."""

    def __init__(self, submissions: list[dict] | None = None):
        self._lock = threading.Lock()
        self._items: dict[str, dict] = {}
        self._keys: dict[str, tuple[datetime, str]] = {}
        self._last_stamp = _EPOCH
        for sub in submissions or []:
            self._put(copy.deepcopy(sub), stamp=None)

    def _put(self, sub: dict, stamp: datetime | None) -> None:
        if not isinstance(sub, dict) or not isinstance(sub.get("id"), str) or not sub["id"]:
            raise ValueError("each submission needs a non-empty string 'id'")
        if stamp is not None:
            sub["updated_at"] = format_ts(stamp)
            sub.setdefault("submitted_at", sub["updated_at"])
        updated = parse_ts(sub.get("updated_at") or sub.get("submitted_at") or format_ts(_EPOCH))
        sub.setdefault("updated_at", format_ts(updated))
        self._items[sub["id"]] = sub
        self._keys[sub["id"]] = (updated, sub["id"])
        self._last_stamp = max(self._last_stamp, updated)

    def _now(self) -> datetime:
        """Server clock in whole seconds, strictly later than every updated_at the store has seen
        (two stamps in one wall-clock second: the second one is pushed to the next second)."""
        now = datetime.now(UTC).replace(microsecond=0)
        if now <= self._last_stamp:
            now = self._last_stamp.replace(microsecond=0) + timedelta(seconds=1)
        return now

    def upsert(self, submissions: list[dict]) -> list[dict]:
        with self._lock:
            out = []
            for sub in submissions:
                sub = copy.deepcopy(sub)
                self._put(sub, stamp=self._now())
                out.append(copy.deepcopy(sub))
            return out

    def get(self, sid: str) -> dict | None:
        with self._lock:
            sub = self._items.get(sid)
            return copy.deepcopy(sub) if sub is not None else None

    def listing(self, since: tuple[datetime, str] | None, page: int, per_page: int) -> dict:
        with self._lock:
            keys = sorted(k for k in self._keys.values() if since is None or k > since)
            total = len(keys)
            window = keys[(page - 1) * per_page: page * per_page]
            data = [copy.deepcopy(self._items[sid]) for _, sid in window]
        cursor = encode_cursor(keys[-1] if keys else since)
        return {"data": data, "page": page, "per_page": per_page, "total": total,
                "next_page": page + 1 if page * per_page < total else None, "cursor": cursor}

    def __len__(self) -> int:
        return len(self._items)


def create_app(submissions: list[dict] | None = None, api_key: str = DEFAULT_API_KEY,
               store: SubmissionStore | None = None) -> FastAPI:
    store = store if store is not None else SubmissionStore(submissions)
    app = FastAPI(title="SchoolEngage sandbox", docs_url=None, redoc_url=None, openapi_url=None)
    app.state.store = store

    def require_key(request: Request) -> None:
        header = request.headers.get("authorization", "")
        scheme, _, token = header.partition(" ")
        if scheme.lower() != "bearer" or token.strip() != api_key:
            raise HTTPException(401, "missing or invalid API key (Authorization: Bearer <key>)",
                                headers={"WWW-Authenticate": "Bearer"})

    @app.get("/api/v1/submissions")
    def list_submissions(request: Request, since: str | None = None, page: int = Query(1, ge=1),
                         per_page: int = Query(MAX_PER_PAGE, ge=1)) -> dict:
        require_key(request)
        position = None
        if since:
            try:
                position = decode_cursor(since)
            except ValueError:
                raise HTTPException(400, "invalid 'since' cursor") from None
        return store.listing(position, page, min(per_page, MAX_PER_PAGE))

    @app.get("/api/v1/submissions/{sid}")
    def get_submission(sid: str, request: Request) -> dict:
        require_key(request)
        sub = store.get(sid)
        if sub is None:
            raise HTTPException(404, f"submission {sid} not found")
        return sub

    @app.post("/_sandbox/submissions")
    def admin_upsert(body: Any = Body(...)) -> JSONResponse:  # noqa: B008
        items = body if isinstance(body, list) else [body]
        try:
            saved = store.upsert(items)
        except (ValueError, TypeError) as exc:
            return JSONResponse({"detail": str(exc)}, status_code=400)
        return JSONResponse({"ok": True, "count": len(saved),
                             "submissions": [{"id": s["id"], "updated_at": s["updated_at"]} for s in saved]})

    @app.get("/_sandbox/health")
    def health() -> dict:
        return {"ok": True, "submissions": len(store)}

    return app
