from __future__ import annotations

from collections.abc import Iterator

import pytest

from writeback.store import Store


@pytest.fixture
def store(store_url: str) -> Iterator[Store]:
    """A migrated store on a fresh database (sqlite or postgresql)."""
    s = Store(store_url, migrate=True)
    yield s
    s.dispose()
