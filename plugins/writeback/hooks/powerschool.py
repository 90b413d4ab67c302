"""Airflow hook for a district's PowerSchool server.

Connection (conn_type ``powerschool``): host (may carry ``https://``), port, schema = ``http``|``https``
(default https), login = OAuth client id, password = client secret. Extras (all optional):
``timeout`` (seconds), ``requests_per_second``, ``max_retries``, ``backoff``.
"""

from __future__ import annotations

from functools import cached_property
from typing import Any

from writeback.powerschool import PowerSchoolClient

try:  # Airflow 3
    from airflow.sdk.bases.hook import BaseHook
except ImportError:  # pragma: no cover - Airflow 2
    from airflow.hooks.base import BaseHook  # type: ignore[no-redef]

__all__ = ["PowerSchoolHook", "base_url_from_connection"]


def base_url_from_connection(conn: Any, default_scheme: str = "https") -> str:
    """``scheme://host[:port]`` from a Connection's host/port/schema; a host that already carries a
    scheme (``https://ps.example.org``) keeps it."""
    host = (conn.host or "").strip().rstrip("/")
    if not host:
        raise ValueError(f"connection {conn.conn_id!r} has no host")
    if "://" in host:
        base = host
    else:
        scheme = (conn.schema or "").strip().lower() or default_scheme
        if scheme not in ("http", "https"):
            raise ValueError(f"connection {conn.conn_id!r}: schema must be http or https, not {scheme!r}")
        base = f"{scheme}://{host}"
    if conn.port:
        base = f"{base}:{int(conn.port)}"
    return base


def _extra_number(extras: dict[str, Any], key: str, cast: type) -> Any:
    value = extras.get(key)
    if value in (None, ""):
        return None
    try:
        return cast(value)
    except (TypeError, ValueError):
        raise ValueError(f"connection extra {key!r} must be a number") from None


class PowerSchoolHook(BaseHook):
    """Builds a :class:`PowerSchoolClient` from an Airflow connection."""

    conn_name_attr = "powerschool_conn_id"
    default_conn_name = "powerschool_default"
    conn_type = "powerschool"
    hook_name = "PowerSchool"

    def __init__(self, powerschool_conn_id: str = default_conn_name, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.powerschool_conn_id = powerschool_conn_id

    @cached_property
    def client(self) -> PowerSchoolClient:
        conn = self.get_connection(self.powerschool_conn_id)
        extras = dict(conn.extra_dejson or {})
        kwargs: dict[str, Any] = {}
        for key, cast in (
            ("timeout", float),
            ("requests_per_second", float),
            ("max_retries", int),
            ("backoff", float),
        ):
            value = _extra_number(extras, key, cast)
            if value is not None:
                kwargs[key] = value
        base_url = base_url_from_connection(conn)
        self.log.info("PowerSchool connection %s -> %s", self.powerschool_conn_id, base_url)
        return PowerSchoolClient(base_url, conn.login or "", conn.password or "", **kwargs)

    def get_conn(self) -> PowerSchoolClient:
        """The (cached) client for this hook's connection."""
        return self.client

    def test_connection(self) -> tuple[bool, str]:
        """Authenticate and read ``/ws/v1/metadata``."""
        try:
            md = self.get_conn().metadata()
        except Exception as exc:  # the UI shows the message; our errors never carry secrets
            return False, f"{type(exc).__name__}: {exc}"
        return True, (
            "Connected to PowerSchool "
            f"(student_max_page_size={md.get('student_max_page_size')}, "
            f"schema_table_query_max_page_size={md.get('schema_table_query_max_page_size')})"
        )
