"""`migrate_store`: the schema migration as a task, for deployments without a shell (managed Airflow)."""

from __future__ import annotations

from typing import Any

from airflow.sdk import BaseOperator


class MigrateStoreOperator(BaseOperator):
    """Creates or upgrades the district's store schema (Alembic, under a lock; a no-op when current).

    The same as `writeback store migrate --district NAME`. Opening a store never migrates: every other
    task refuses a store whose schema is behind, naming this task.
    """

    template_fields = ("district",)
    ui_color = "#eef4e8"

    def __init__(self, *, district: str, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.district = district

    def execute(self, context: Any) -> dict[str, Any]:
        from ..config import district
        from ..store import Store
        from ..store.locate import store_source
        from ..store.migrate import revision_of

        source = store_source(district(self.district))
        store = Store(source.resolve())
        try:
            before = revision_of(store.engine)
        finally:
            store.dispose()
        store = Store(source.resolve(), migrate=True)
        try:
            after = revision_of(store.engine)
        finally:
            store.dispose()
        self.log.info("writeback store (%s): schema %s -> %s", source.describe(), before or "none", after)
        return {"before": before, "after": after}
