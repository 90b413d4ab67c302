"""Headless Debian Chromium for the browser tests, driven by Playwright (no downloaded browser)."""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

CHROMIUM = os.environ.get("WRITEBACK_CHROMIUM", "/usr/bin/chromium")
# as root, with this machine's closed network: no sandbox, no background connections
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
        "--disable-component-update", "--disable-sync", "--no-first-run"]


def missing(reason: str) -> None:
    """Under CI a missing browser fails the run (CI installs it); elsewhere the test is skipped."""
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(f"the browser tests need Chromium in CI: {reason}", pytrace=False)
    pytest.skip(reason)


def launch() -> Iterator:
    if not (Path(CHROMIUM).exists() or shutil.which(CHROMIUM)):
        missing(f"{CHROMIUM} not found (apt-get install -y chromium)")
    try:
        from playwright.sync_api import sync_playwright
    except ImportError as exc:
        missing(f"playwright is not installed: {exc}")
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=ARGS, headless=True)
        try:
            yield browser
        finally:
            browser.close()
