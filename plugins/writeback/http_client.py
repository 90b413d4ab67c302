"""What the PowerSchool and SchoolEngage clients share: base URL, a pooled session, retry settings,
call counters, and closing the session when used as a context manager."""

from __future__ import annotations

import time
from collections import Counter
from typing import Self

import requests


class SessionClient:
    def __init__(self, base_url: str, *, timeout: float, max_retries: int, backoff: float,
                 session: requests.Session | None):
        if not base_url:
            raise ValueError("base_url is required")
        self.base_url = base_url.rstrip("/")
        self.timeout = timeout
        self.max_retries = max(0, int(max_retries))
        self.backoff = backoff
        self.session = session or requests.Session()  # connection pooling
        self.stats: Counter[str] = Counter()
        self._sleep = time.sleep  # tests may replace it

    def close(self) -> None:
        self.session.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
