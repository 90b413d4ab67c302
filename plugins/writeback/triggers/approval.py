"""Trigger that waits, in the triggerer, until no review item of a run is pending.

The store is polled from a worker thread (`asyncio.to_thread`), so the triggerer's event loop is
never blocked and no worker slot is held while people review.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from typing import Any

from airflow.triggers.base import BaseTrigger, TriggerEvent


class ApprovalTrigger(BaseTrigger):
    def __init__(self, run_id: str, store_url: str, poll_interval: float = 30.0, timeout: float | None = None):
        super().__init__()
        self.run_id = run_id
        self.store_url = store_url
        self.poll_interval = poll_interval
        self.timeout = timeout

    def serialize(self) -> tuple[str, dict[str, Any]]:
        return ("writeback.triggers.approval.ApprovalTrigger",
                {"run_id": self.run_id, "store_url": self.store_url, "poll_interval": self.poll_interval,
                 "timeout": self.timeout})

    def _pending(self) -> int:
        from ..store import Store

        store = Store(self.store_url, migrate=False)
        try:
            return store.pending_count(self.run_id)
        finally:
            store.dispose()

    async def run(self) -> AsyncIterator[TriggerEvent]:
        deadline = None if self.timeout is None else time.monotonic() + self.timeout
        while True:
            pending = await asyncio.to_thread(self._pending)
            if pending == 0:
                yield TriggerEvent({"status": "decided", "run_id": self.run_id, "pending": 0})
                return
            if deadline is not None and time.monotonic() >= deadline:
                yield TriggerEvent({"status": "timeout", "run_id": self.run_id, "pending": pending})
                return
            await asyncio.sleep(self.poll_interval)
