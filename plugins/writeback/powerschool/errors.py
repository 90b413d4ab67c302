"""Typed PowerSchool errors.

Every error carries the HTTP status, a short message, the HTTP method and the request *path* (never the
query string, the request body, the client secret or the token: bodies and FIQL filters carry student
PII). ``error_from_response`` turns an error reply into the right subclass; it is a pure function so it
can be tested without a server.
"""

from __future__ import annotations

import re
from typing import Any, NamedTuple

__all__ = [
    "PowerSchoolError",
    "AuthError",
    "PermissionDenied",
    "ValidationError",
    "DuplicateError",
    "NotFound",
    "NotAllowed",
    "Conflict",
    "ServerError",
    "RateLimited",
    "AmbiguousWriteError",
    "TransportError",
    "FieldError",
    "error_from_response",
    "parse_missing_grants",
    "parse_field_errors",
]

_MAX_MESSAGE = 300


class FieldError(NamedTuple):
    """One field-level error reported by PowerSchool."""

    field: str
    code: str = ""
    description: str = ""


class PowerSchoolError(Exception):
    """Base class: ``status`` (None for transport failures), ``message``, ``method``, ``path``."""

    def __init__(self, status: int | None, message: str, method: str | None = None, path: str | None = None):
        self.status = status
        self.message = (message or "")[:_MAX_MESSAGE]
        self.method = method
        self.path = path
        super().__init__(self._render())

    def _render(self) -> str:
        where = " ".join(p for p in (self.method, self.path) if p)
        status = f"HTTP {self.status}" if self.status is not None else "no response"
        prefix = f"{where}: " if where else ""
        return f"{prefix}{status}: {self.message}" if self.message else f"{prefix}{status}"

    def __reduce__(self):  # keep subclasses picklable with their extra attributes
        return (_rebuild, (type(self), self.__dict__.copy()))


def _rebuild(cls: type, state: dict[str, Any]) -> PowerSchoolError:
    obj = cls.__new__(cls)
    Exception.__init__(obj)
    obj.__dict__.update(state)
    obj.args = (obj._render(),)
    return obj


class AuthError(PowerSchoolError):
    """401: bad credentials, an expired/revoked token that re-authentication did not fix, or a plugin
    without the ``accessLevelV1Api`` it needs."""


class PermissionDenied(PowerSchoolError):
    """403: the plugin lacks field grants. ``missing`` lists ``(table, field)`` pairs to grant."""

    def __init__(
        self,
        status: int | None,
        message: str,
        method: str | None = None,
        path: str | None = None,
        missing: list[tuple[str, str]] | None = None,
    ):
        self.missing = list(missing or [])
        super().__init__(status, message, method, path)

    def _render(self) -> str:
        base = super()._render()
        if self.missing:
            grants = ", ".join(f"{t}.{f}" for t, f in self.missing)
            return f"{base} (plugin needs grants: {grants})"
        return base


class ValidationError(PowerSchoolError):
    """400: PowerSchool refused the values. ``field``/``description`` of the first error; ``errors`` all."""

    def __init__(
        self,
        status: int | None,
        message: str,
        method: str | None = None,
        path: str | None = None,
        field: str | None = None,
        description: str | None = None,
        errors: list[FieldError] | None = None,
    ):
        self.errors = list(errors or [])
        if field is None and self.errors:
            field = self.errors[0].field
        if description is None and self.errors:
            description = self.errors[0].description
        self.field = field
        self.description = description
        super().__init__(status, message, method, path)

    def _render(self) -> str:
        base = super()._render()
        if self.field and self.field not in self.message:
            return f"{base} (field {self.field})"
        return base


class DuplicateError(ValidationError):
    """400 "Duplicate Error": the contact already has that phone/email."""


class NotFound(PowerSchoolError):
    """404."""


class NotAllowed(PowerSchoolError):
    """405 (e.g. a core table through the table API)."""


class Conflict(PowerSchoolError):
    """409."""


class ServerError(PowerSchoolError):
    """5xx after the retries allowed for the call were used up."""


class RateLimited(PowerSchoolError):
    """429 after the retries were used up. ``retry_after`` in seconds when the server said."""

    def __init__(
        self,
        status: int | None,
        message: str,
        method: str | None = None,
        path: str | None = None,
        retry_after: float | None = None,
    ):
        self.retry_after = retry_after
        super().__init__(status, message, method, path)


class AmbiguousWriteError(PowerSchoolError):
    """A create (POST that inserts) failed in a way that leaves its outcome unknown (connection dropped,
    timeout, 5xx). It was NOT retried: read back before trying again, or a row may be doubled."""


class TransportError(PowerSchoolError):
    """Connection error or timeout on a call that is safe to repeat, after the retries were used up."""


# --------------------------------------------------------------------------------------------- parsing


def _str(x: Any) -> str:
    return "" if x is None else str(x)


def parse_missing_grants(body: Any) -> list[tuple[str, str]]:
    """Return ``(table, field)`` pairs from either documented 403 body.

    - table API: ``{"errors":[{"code":"NoAccess","field":"<col>","resource":"<table>"}]}``
    - PowerQuery: ``{"errors":[{"resource":"<query>","field":"<table.col>","code":"No access to the field"}]}``
    """
    out: list[tuple[str, str]] = []
    if not isinstance(body, dict):
        return out
    errors = body.get("errors")
    if isinstance(errors, dict):
        errors = [errors]
    for err in errors or []:
        if not isinstance(err, dict):
            continue
        field = _str(err.get("field")).strip()
        resource = _str(err.get("resource")).strip()
        if not field:
            continue
        if "." in field:  # PowerQuery form: field is "table.col", resource is the query name
            table, col = field.split(".", 1)
        else:
            table, col = resource, field
        pair = (table.lower(), col.lower())
        if pair not in out:
            out.append(pair)
    return out


def parse_field_errors(body: Any) -> list[FieldError]:
    """Field errors from any of the shapes PowerSchool uses.

    - contacts write reply: ``{"_error_message":{"error":[{"field","error_code","error_description"}]}}``
    - v1 record result: ``{"error_message":{"error":[...]}}`` (``error`` may be a bare object)
    - generic: ``{"errors":[{"field","code","message"|"description"}]}``
    """
    if not isinstance(body, dict):
        return []
    out: list[FieldError] = []
    for key in ("_error_message", "error_message"):
        block = body.get(key)
        if isinstance(block, dict):
            errs = block.get("error")
            if isinstance(errs, dict):
                errs = [errs]
            for e in errs or []:
                if isinstance(e, dict):
                    out.append(
                        FieldError(
                            _str(e.get("field")),
                            _str(e.get("error_code") or e.get("code")),
                            _str(e.get("error_description") or e.get("description") or e.get("message")),
                        )
                    )
    errs = body.get("errors")
    if isinstance(errs, dict):
        errs = [errs]
    if isinstance(errs, list):
        for e in errs:
            if isinstance(e, dict):
                out.append(
                    FieldError(
                        _str(e.get("field")),
                        _str(e.get("code") or e.get("error_code")),
                        _str(e.get("description") or e.get("error_description") or e.get("message")),
                    )
                )
    return out


def _message_of(body: Any, fallback: str) -> str:
    if isinstance(body, dict):
        em = body.get("errorMessage")
        if isinstance(em, dict) and em.get("message"):
            return _str(em["message"])
        if isinstance(em, str) and em:
            return em
        for key in ("message", "error_description", "error", "detail"):
            val = body.get(key)
            if isinstance(val, str) and val:
                return val
        errs = parse_field_errors(body)
        if errs:
            e = errs[0]
            return e.description or e.code or fallback
    elif isinstance(body, str) and body.strip():
        return body.strip().splitlines()[0]
    return fallback


def _is_duplicate(message: str, errors: list[FieldError]) -> bool:
    texts = [message] + [e.description for e in errors] + [e.code for e in errors]
    return any("duplicate" in (t or "").lower() for t in texts)


_QUOTED = re.compile(r"'[^'\n]{1,500}'|\"[^\"\n]{1,500}\"")


def redact_values(text: str) -> str:
    """PowerSchool quotes the offending value in some messages ("'x@@y' is not a valid email address"):
    that value is student data, so it is masked before the message reaches an exception, a log or the
    ledger. The field name stays, which is what a person needs to act."""
    return _QUOTED.sub("'…'", text or "")


def error_from_response(
    status: int,
    body: Any,
    method: str | None = None,
    path: str | None = None,
    retry_after: float | None = None,
) -> PowerSchoolError:
    """Map an error reply (status + parsed JSON body, or text) to the typed error. Pure function."""
    if path and "?" in path:
        path = path.split("?", 1)[0]
    message = redact_values(_message_of(body, f"HTTP {status}"))
    if status == 401:
        return AuthError(status, message, method, path)
    if status == 403:
        return PermissionDenied(status, message, method, path, missing=parse_missing_grants(body))
    if status == 400 or status == 422:
        errors = [e._replace(description=redact_values(e.description)) for e in parse_field_errors(body)]
        cls = DuplicateError if _is_duplicate(message, errors) else ValidationError
        return cls(status, message, method, path, errors=errors)
    if status == 404:
        return NotFound(status, message, method, path)
    if status == 405:
        return NotAllowed(status, message, method, path)
    if status == 409:
        return Conflict(status, message, method, path)
    if status == 429:
        return RateLimited(status, message, method, path, retry_after=retry_after)
    if status >= 500:
        return ServerError(status, message, method, path)
    return PowerSchoolError(status, message, method, path)
