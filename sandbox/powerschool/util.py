"""Small helpers shared by the endpoint modules: errors, dates, flags, the one-item quirk, FIQL."""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Callable
from typing import Annotated, Any

from fastapi import Body, Request, Response
from fastapi.responses import JSONResponse

JsonBody = Annotated[Any, Body()]
"""The whole JSON request body, unvalidated (endpoints validate it themselves)."""


class ApiError(Exception):
    """Turned into a JSON response with ``status`` and ``body`` by the app's exception handler."""

    def __init__(self, status: int, body: Any, headers: dict[str, str] | None = None) -> None:
        super().__init__(str(body))
        self.status = status
        self.body = body
        self.headers = headers


def message(status: int, text: str) -> ApiError:
    return ApiError(status, {"message": text})


def api_error_handler(_request: Request, exc: Exception) -> Response:
    assert isinstance(exc, ApiError)
    if isinstance(exc.body, Response):
        return exc.body
    return JSONResponse(exc.body, status_code=exc.status, headers=exc.headers)


def enforce(decision: Response | None) -> None:
    """Raise the fidelity policy's response, if it returned one (see fidelity.py)."""
    if decision is not None:
        raise ApiError(decision.status_code, decision)


# -- the app-wide objects endpoints need ---------------------------------------------------------
def state(request: Request) -> Any:
    return request.app.state.sandbox


def base_url(request: Request) -> str:
    return str(request.base_url).rstrip("/")


# -- values ----------------------------------------------------------------------------------------
_DATE_RE = re.compile(r"^\d{4}-\d{2}-\d{2}$")


def valid_date(value: str) -> bool:
    if not _DATE_RE.match(value):
        return False
    try:
        dt.date.fromisoformat(value)
    except ValueError:
        return False
    return True


def is_active(start: str, end: str, today: dt.date) -> bool:
    """A detail/address is active when it has started (or has no start) and has not ended."""
    iso = today.isoformat()
    return (not start or start <= iso) and (not end or end >= iso)


def flag(value: Any) -> bool:
    if isinstance(value, str):
        return value.strip().lower() in ("1", "true", "yes", "y")
    return bool(value)


def as_string(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "1" if value else "0"
    return str(value)


def one_or_many(items: list[Any]) -> Any:
    """The PowerSchool XML-to-JSON quirk: a list of one item is the bare item."""
    return items[0] if len(items) == 1 else items


def as_list(value: Any) -> list[Any]:
    if value is None or value == "":
        return []
    return value if isinstance(value, list) else [value]


def int_param(value: str | None, name: str, default: int, minimum: int = 0) -> int:
    if value is None or value == "":
        return default
    try:
        number = int(value)
    except ValueError:
        raise message(400, f"Invalid value for {name}: {value!r}") from None
    if number < minimum:
        raise message(400, f"Invalid value for {name}: {value!r}")
    return number


def page_window(page: str | None, pagesize: str | None, max_page_size: int,
                zero_means_all: bool = False) -> tuple[int | None, int]:
    """(limit, offset) for 1-based ``page`` and ``pagesize`` capped at ``max_page_size``."""
    number = int_param(page, "page", 1, minimum=1)
    size = int_param(pagesize, "pagesize", max_page_size)
    if size == 0:
        if zero_means_all:
            return None, 0
        size = max_page_size
    size = min(size, max_page_size)
    return size, (number - 1) * size


# -- FIQL (the subset PowerSchool clients use) ----------------------------------------------------
_FIQL_RE = re.compile(r"^([A-Za-z0-9_.]+)(==|!=|=gt=|=ge=|=lt=|=le=|=in=|=out=)(.*)$")
_SQL_OPS = {"==": "=", "!=": "<>", "=gt=": ">", "=ge=": ">=", "=lt=": "<", "=le=": "<="}


def fiql_to_sql(q: str, resolve: Callable[[str], str]) -> tuple[str, list[Any]]:
    """Translate ``a==1;b=gt=2,c==x*`` (``;`` = and, binds tighter than ``,`` = or) into SQL.

    ``resolve`` maps a field name to a SQL column expression and raises ApiError for unknown fields.
    ``*`` in an ``==``/``!=`` value is a wildcard; ``=in=(a,b)`` lists values.
    """
    if not q:
        return "1=1", []
    params: list[Any] = []
    or_parts = []
    for or_term in _split_top(q, ","):
        and_parts = []
        for term in _split_top(or_term, ";"):
            m = _FIQL_RE.match(term.strip())
            if not m:
                raise message(400, f"Invalid query expression: {term!r}")
            field, op, raw = m.groups()
            col = resolve(field)
            if op in ("=in=", "=out="):
                values = [v for v in raw.strip().strip("()").split(",") if v != ""]
                if not values:
                    raise message(400, f"Invalid query expression: {term!r}")
                params.extend(values)
                neg = "NOT " if op == "=out=" else ""
                and_parts.append(f"CAST({col} AS TEXT) {neg}IN ({', '.join('?' * len(values))})")
            elif op in ("==", "!=") and "*" in raw:
                params.append(raw.replace("%", r"\%").replace("_", r"\_").replace("*", "%"))
                neg = "NOT " if op == "!=" else ""
                and_parts.append(f"CAST({col} AS TEXT) {neg}LIKE ? ESCAPE '\\'")
            else:
                params.append(raw)
                and_parts.append(f"{col} {_SQL_OPS[op]} ?")
        or_parts.append("(" + " AND ".join(and_parts) + ")")
    return "(" + " OR ".join(or_parts) + ")", params


def _split_top(text: str, sep: str) -> list[str]:
    """Split on ``sep`` outside parentheses (so ``=in=(a,b)`` stays whole)."""
    parts, depth, current = [], 0, []
    for ch in text:
        if ch == "(":
            depth += 1
        elif ch == ")":
            depth -= 1
        if ch == sep and depth == 0:
            parts.append("".join(current))
            current = []
        else:
            current.append(ch)
    parts.append("".join(current))
    return parts
