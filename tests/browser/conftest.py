"""Fixtures of the payment-page tests: a headless Chromium, pages, screenshots.

The browser tests drive Debian's ``chromium`` through Playwright's own driver (``executable_path``); Playwright's
bundled browsers are never downloaded. Without ``/usr/bin/chromium`` they are skipped with a hint to run
``make browser-deps``, except in CI (``CI=true``), where that is a failure: CI must run them.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from pages_harness import CHROMIUM_ARGS, SCREENSHOTS, chromium_or_skip


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    """A headless Chromium shared by a module's tests (each test opens its own context).

    Module scope keeps Playwright's event loop alive only while browser tests run, out of the way of the
    suite's asyncio tests.
    """
    executable = chromium_or_skip()
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=executable, headless=True, args=CHROMIUM_ARGS)
        try:
            yield browser
        finally:
            browser.close()


@pytest.fixture
def page(browser: Any) -> Iterator[Any]:
    """A fresh page in its own context (no shared cookies or storage between tests)."""
    context = browser.new_context(viewport={"width": 900, "height": 900}, locale="en-US")
    context.set_default_timeout(15_000)
    page = context.new_page()
    try:
        yield page
    finally:
        context.close()


@pytest.fixture
def screenshot(page: Any):
    """``screenshot(name)`` saves the page to ``artifacts/screenshots/<name>.png`` (git-ignored) for a person."""
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)

    def take(name: str) -> Path:
        path = SCREENSHOTS / f"{name}.png"
        page.screenshot(path=str(path), full_page=True)
        return path

    return take
