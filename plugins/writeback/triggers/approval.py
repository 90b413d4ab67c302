"""Trigger that waits, in the triggerer, until no review item of a run is pending.

The store is polled from a worker thread (`asyncio.to_thread`), so the triggerer's event loop is
never blocked and no worker slot is held while people review. The trigger's kwargs (kept in Airflow's
metadata database while it waits) name the store by its Airflow connection id, or by a URL without a
password (demo, tests); the connection is read in the triggerer, through its secrets backends.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from typing import Any

from airflow.triggers.base import BaseTrigger, TriggerEvent


class ApprovalTrigger(BaseTrigger):
    def __init__(self, run_id: str, store_conn_id: str | None = None, store_url: str | None = None,
                 poll_interval: float = 30.0, timeout: float | None = None):
        super().__init__()
        from ..store.locate import StoreSource

        self.run_id = run_id
        # validated here too: a URL with a password is refused before it reaches the metadata database
        self.source = StoreSource(conn_id=store_conn_id) if store_conn_id else StoreSource.from_url(store_url or "")
        self.poll_interval = poll_interval
        self.timeout = timeout

    def serialize(self) -> tuple[str, dict[str, Any]]:
        return ("writeback.triggers.approval.ApprovalTrigger",
                {"run_id": self.run_id, **self.source.serialize(), "poll_interval": self.poll_interval,
                 "timeout": self.timeout})

    def _pending(self, url: str) -> int:
        from ..store import Store

        store = Store(url)
        try:
            return store.pending_count(self.run_id)
        finally:
            store.dispose()

    async def run(self) -> AsyncIterator[TriggerEvent]:
        deadline = None if self.timeout is None else time.monotonic() + self.timeout
        url = await self.source.aresolve()
        while True:
            pending = await asyncio.to_thread(self._pending, url)
            if pending == 0:
                yield TriggerEvent({"status": "decided", "run_id": self.run_id, "pending": 0})
                return
            if deadline is not None and time.monotonic() >= deadline:
                yield TriggerEvent({"status": "timeout", "run_id": self.run_id, "pending": pending})
                return
            await asyncio.sleep(self.poll_interval)
