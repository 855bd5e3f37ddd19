"""Helpers of the payment-page tests: finding Debian's Chromium (servers: `qiwi_bill_mock.testing`).

A module with a unique name (not ``conftest``), so test modules can import it without clashing with the other
``conftest.py`` files of the suite.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

CHROMIUM = os.environ.get("QIWI_BILL_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
SCREENSHOTS = Path(__file__).resolve().parents[2] / "artifacts" / "screenshots"


def chromium_or_skip() -> str:
    """The Chromium binary, or skip (fail under ``CI=true``) with how to install it."""
    if Path(CHROMIUM).exists() or shutil.which(CHROMIUM):
        return CHROMIUM
    message = f"{CHROMIUM} is missing: run `make browser-deps` (installs Debian's chromium) to run the browser tests"
    if os.environ.get("CI") == "true":
        pytest.fail(f"CI must run the browser tests, but {message}")
    pytest.skip(message)
