"""The browser for these tests: Debian's /usr/bin/chromium (or GATEWAY_CHROMIUM), driven by
Playwright; Playwright's own browser downloads are never used. `scripts/test-deps`
installs Chromium, so a missing one fails the tests rather than skipping them."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from playwright import sync_api as playwright_api

CHROMIUM = Path(os.environ.get("GATEWAY_CHROMIUM", "/usr/bin/chromium"))
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    # A missing browser is a broken test machine, not a reason to pass.
    assert CHROMIUM.exists(), f"no Chromium at {CHROMIUM}: run scripts/test-deps"
    with playwright_api.sync_playwright() as driver:
        chromium = driver.chromium.launch(
            executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_ARGS
        )
        try:
            yield chromium
        finally:
            chromium.close()
