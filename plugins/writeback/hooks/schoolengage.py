"""Airflow hook for the SchoolEngage submissions API.

Connection (conn_type ``schoolengage``): host (may carry ``https://``), port, schema = ``http``|``https``
(default https), password = API key. Extras: ``timeout``, ``max_retries``, ``per_page``.
"""

from __future__ import annotations

from functools import cached_property
from typing import Any

from writeback.hooks.powerschool import _extra_number, base_url_from_connection
from writeback.sources.schoolengage import SchoolEngageClient

try:  # Airflow 3
    from airflow.sdk.bases.hook import BaseHook
except ImportError:  # pragma: no cover - Airflow 2
    from airflow.hooks.base import BaseHook  # type: ignore[no-redef]

__all__ = ["SchoolEngageHook"]


class SchoolEngageHook(BaseHook):
    """Builds a :class:`SchoolEngageClient` from an Airflow connection."""

    conn_name_attr = "schoolengage_conn_id"
    default_conn_name = "schoolengage_default"
    conn_type = "schoolengage"
    hook_name = "SchoolEngage"

    def __init__(self, schoolengage_conn_id: str = default_conn_name, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.schoolengage_conn_id = schoolengage_conn_id

    @cached_property
    def client(self) -> SchoolEngageClient:
        conn = self.get_connection(self.schoolengage_conn_id)
        extras = dict(conn.extra_dejson or {})
        kwargs: dict[str, Any] = {}
        for key, cast in (("timeout", float), ("max_retries", int), ("per_page", int), ("backoff", float)):
            value = _extra_number(extras, key, cast)
            if value is not None:
                kwargs[key] = value
        base_url = base_url_from_connection(conn)
        self.log.info("SchoolEngage connection %s -> %s", self.schoolengage_conn_id, base_url)
        return SchoolEngageClient(base_url, conn.password or "", **kwargs)

    def get_conn(self) -> SchoolEngageClient:
        """The (cached) client for this hook's connection."""
        return self.client

    def test_connection(self) -> tuple[bool, str]:
        """Fetch the first page of the listing (authenticates the key)."""
        try:
            total = self.get_conn().ping()
        except Exception as exc:
            return False, f"{type(exc).__name__}: {exc}"
        return True, f"Connected to SchoolEngage ({total} submission(s))"
