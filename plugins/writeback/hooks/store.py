"""Airflow hook for the writeback store: its database comes from an Airflow connection, so a secrets
backend (Vault, AWS Secrets Manager, GCP Secret Manager, ...) holds its password like any other.

Connection types it accepts:
- ``writeback_store`` (this package's): host, port, login, password, schema = the database name, extra
  ``driver`` (default ``postgresql+psycopg2``); a ``sqlite`` driver takes the file path from host.
- ``postgres`` (the Postgres provider's): host, port, login, password, schema = the database name.
- ``sqlite``: host = the database file (demo and tests).
"""

from __future__ import annotations

from typing import Any

from sqlalchemy.engine import URL

try:  # Airflow 3
    from airflow.sdk.bases.hook import BaseHook
except ImportError:  # pragma: no cover - Airflow 2
    from airflow.hooks.base import BaseHook  # type: ignore[no-redef]

__all__ = ["StoreHook", "url_from_connection"]

POSTGRES_DRIVER = "postgresql+psycopg2"


def url_from_connection(conn: Any) -> str:
    """The SQLAlchemy URL (password included: never log it, never serialise it) of a store connection."""
    conn_type = (conn.conn_type or "").lower()
    extras = dict(conn.extra_dejson or {})
    driver = str(extras.get("driver") or "").strip()
    if conn_type == "sqlite" or driver == "sqlite":
        path = (conn.host or "").strip()
        if not path:
            raise ValueError(f"store connection {conn.conn_id!r}: a SQLite store needs the file path as host")
        return f"sqlite:///{path}"
    if conn_type not in ("writeback_store", "postgres", "postgresql"):
        raise ValueError(f"store connection {conn.conn_id!r} has conn_type {conn.conn_type!r}; "
                         "use writeback_store, postgres or sqlite")
    if not conn.host:
        raise ValueError(f"store connection {conn.conn_id!r} has no host")
    if not conn.schema:
        raise ValueError(f"store connection {conn.conn_id!r} names no database (the schema field)")
    query = {k: str(v) for k, v in extras.items() if k in ("sslmode", "sslrootcert", "connect_timeout",
                                                            "application_name")}
    return URL.create(driver or POSTGRES_DRIVER, username=conn.login or None, password=conn.password or None,
                      host=conn.host, port=int(conn.port) if conn.port else None, database=conn.schema,
                      query=query).render_as_string(hide_password=False)


class StoreHook(BaseHook):
    """Gives the store's SQLAlchemy URL from an Airflow connection (see the module doc)."""

    conn_name_attr = "store_conn_id"
    default_conn_name = "writeback_store"
    conn_type = "writeback_store"
    hook_name = "Writeback store"

    def __init__(self, store_conn_id: str = default_conn_name, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.store_conn_id = store_conn_id

    def sqlalchemy_url(self) -> str:
        return url_from_connection(self.get_connection(self.store_conn_id))

    @classmethod
    async def async_sqlalchemy_url(cls, store_conn_id: str) -> str:
        """For a trigger: reads the connection without blocking the triggerer's event loop."""
        return url_from_connection(await cls.aget_connection(store_conn_id))

    def get_conn(self) -> str:
        return self.sqlalchemy_url()

    def test_connection(self) -> tuple[bool, str]:
        """Connect and report the store's schema revision."""
        from ..store.migrate import current_revision

        try:
            revision = current_revision(self.sqlalchemy_url())
        except Exception as exc:  # the message names the database, never the password
            return False, f"{type(exc).__name__}: {exc}"
        return True, f"Connected to the writeback store (schema revision {revision or 'none: run writeback store migrate'})"
