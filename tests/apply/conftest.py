from __future__ import annotations

import pytest

from .world import World


@pytest.fixture
def world(tmp_path):
    w = World(tmp_path)
    try:
        yield w
    finally:
        w.close()
