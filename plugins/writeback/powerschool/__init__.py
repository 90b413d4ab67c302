"""PowerSchool SIS HTTP client (no Airflow imports)."""

from .client import CHILD_KINDS, PowerSchoolClient
from .errors import (
    AmbiguousWriteError,
    AuthError,
    Conflict,
    DuplicateError,
    FieldError,
    NotAllowed,
    NotFound,
    PermissionDenied,
    PowerSchoolError,
    RateLimited,
    ServerError,
    TransportError,
    ValidationError,
)
from .retry import RateLimiter
from .shapes import ContactWriteResult, RecordResult, as_list

__all__ = [
    "CHILD_KINDS",
    "PowerSchoolClient",
    "AmbiguousWriteError",
    "AuthError",
    "Conflict",
    "DuplicateError",
    "FieldError",
    "NotAllowed",
    "NotFound",
    "PermissionDenied",
    "PowerSchoolError",
    "RateLimited",
    "ServerError",
    "TransportError",
    "ValidationError",
    "RateLimiter",
    "ContactWriteResult",
    "RecordResult",
    "as_list",
]
