"""Which store a district uses, in one place for every entry point (tasks, trigger, review app, CLI).

A district's store is, in this order: the district file's `store_conn_id` (an Airflow connection), its
`store_url`, the Airflow option `[writeback] store_conn_id`, the `WRITEBACK_STORE_URL` variable. With none
of them, `StoreNotConfigured` is raised: a task never opens a SQLite file of whichever machine it runs on.

A `StoreSource` is what may travel (a deferred trigger's kwargs, a log line): a connection id, or a URL
without a password. The URL with the password is resolved where it is used, from the connection.
"""

from __future__ import annotations

import os
import threading
from dataclasses import dataclass
from typing import Any

from sqlalchemy.engine import make_url

from .repo import Store, StoreError, StoreNotConfigured

CONFIG_SECTION = "writeback"


def configured_conn_id() -> str:
    """`[writeback] store_conn_id` of the Airflow configuration ('' when unset or Airflow is absent)."""
    try:
        from airflow.configuration import conf
    except ImportError:  # pragma: no cover - the CLI without Airflow
        return ""
    return (conf.get(CONFIG_SECTION, "store_conn_id", fallback="") or "").strip()


@dataclass(frozen=True)
class StoreSource:
    conn_id: str | None = None
    url: str | None = None  # only ever a URL without a password (`from_url` refuses one)

    @classmethod
    def from_url(cls, url: str) -> StoreSource:
        if make_url(url).password:
            raise StoreError("a store URL with a password cannot be passed on (it would end up in the metadata "
                             "database); put the store in an Airflow connection and name it by store_conn_id")
        return cls(url=url)

    def describe(self) -> str:
        return f"connection {self.conn_id!r}" if self.conn_id else make_url(self.url or "").render_as_string()

    def resolve(self) -> str:
        """The SQLAlchemy URL, password included (for `Store`, never for a log or a serialised trigger)."""
        if self.conn_id:
            from ..hooks.store import StoreHook

            return StoreHook(self.conn_id).sqlalchemy_url()
        if not self.url:
            raise StoreNotConfigured("empty store source")
        return self.url

    async def aresolve(self) -> str:
        if self.conn_id:
            from ..hooks.store import StoreHook

            return await StoreHook.async_sqlalchemy_url(self.conn_id)
        return self.resolve()

    def serialize(self) -> dict[str, Any]:
        return {"store_conn_id": self.conn_id, "store_url": self.url}


def store_source(district: Any | None = None) -> StoreSource:
    """The store of `district` (a `DistrictConfig`), or the deployment's default store when None."""
    if district is not None and getattr(district, "store_conn_id", None):
        return StoreSource(conn_id=district.store_conn_id)
    if district is not None and getattr(district, "store_url", None):
        url = district.store_url
        return StoreSource.from_url(url) if not make_url(url).password else _WithSecretUrl(url=url)
    conn_id = configured_conn_id()
    if conn_id:
        return StoreSource(conn_id=conn_id)
    url = os.environ.get("WRITEBACK_STORE_URL")
    if url:
        return StoreSource(url=url) if not make_url(url).password else _WithSecretUrl(url=url)
    where = f"district {district.name!r}" if district is not None else "this deployment"
    raise StoreNotConfigured(
        f"no writeback store is configured for {where}: set store_conn_id in the district file, the Airflow "
        "option [writeback] store_conn_id (AIRFLOW__WRITEBACK__STORE_CONN_ID), or WRITEBACK_STORE_URL "
        "(docs/deployment.md)")


@dataclass(frozen=True)
class _WithSecretUrl(StoreSource):
    """A URL with a password from the environment or a district file (development setups): usable here,
    never passed on — a trigger gets the variable's name instead of its value."""

    def describe(self) -> str:
        return make_url(self.url or "").render_as_string(hide_password=True)

    def serialize(self) -> dict[str, Any]:
        raise StoreError("this store's URL carries a password, which a deferred trigger would write into "
                         "Airflow's metadata database: configure the store as an Airflow connection "
                         "(store_conn_id) instead")


def open_store(district: Any | None = None, *, check: bool = True) -> Store:
    """The district's store; with `check`, refuses a database whose schema is not up to date."""
    return open_store_at(store_source(district), check=check)


class DistrictStores:
    """The stores of every district, for the review app: a run id starts with its district's name
    (`operators.context.run_id_for`), which names the store it lives in. Runs are listed from every
    distinct store; any other call taking a run id as its first argument goes to that run's store."""

    def __init__(self, districts: list[Any] | None = None) -> None:
        self._districts = districts
        self._lock = threading.Lock()
        self._stores: dict[StoreSource, Store] = {}

    def districts(self) -> list[Any]:
        if self._districts is not None:
            return self._districts
        from ..config import district_files, load_district

        return [load_district(p) for p in district_files()]

    def _store(self, source: StoreSource) -> Store:
        with self._lock:
            if source not in self._stores:
                self._stores[source] = open_store_at(source)
            return self._stores[source]

    def for_district(self, name: str) -> Store:
        for config in self.districts():
            if config.name == name:
                return self._store(store_source(config))
        return self._store(store_source(None))

    def for_run(self, run_id: str) -> Store:
        return self.for_district(str(run_id).split(":", 1)[0])

    def all(self) -> list[Store]:
        sources: list[StoreSource] = []
        for config in self.districts():
            try:
                source = store_source(config)
            except StoreNotConfigured:
                continue
            if source not in sources:
                sources.append(source)
        if not sources:
            sources.append(store_source(None))  # raises StoreNotConfigured: nothing to review anywhere
        return [self._store(s) for s in sources]

    def list_runs(self, district: str | None = None, limit: int = 50) -> list[Any]:
        stores = [self.for_district(district)] if district else self.all()
        seen: dict[str, Any] = {}
        for store in stores:
            for run in store.list_runs(district, limit=limit):
                seen.setdefault(run.id, run)
        return sorted(seen.values(), key=lambda r: r.created_at, reverse=True)[:limit]

    def dispose(self) -> None:
        with self._lock:
            for store in self._stores.values():
                store.dispose()
            self._stores.clear()

    def __getattr__(self, name: str) -> Any:
        method = getattr(Store, name, None)
        if not callable(method):
            raise AttributeError(name)

        def routed(run_id: str, *args: Any, **kwargs: Any) -> Any:
            return getattr(self.for_run(run_id), name)(run_id, *args, **kwargs)

        return routed


def open_store_at(source: StoreSource, *, check: bool = True) -> Store:
    store = Store(source.resolve())
    if check:
        try:
            store.check_schema()
        except Exception:
            store.dispose()
            raise
    return store
