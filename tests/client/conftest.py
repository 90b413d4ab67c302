from __future__ import annotations

import pytest

from tests.client.standin import StandIn


@pytest.fixture
def standin():
    """A scripted HTTP stand-in on 127.0.0.1 for fault sequences (see standin.py)."""
    server = StandIn()
    yield server
    server.stop()
