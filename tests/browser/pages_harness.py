"""Helpers of the payment-page tests: servers in threads, and finding Debian's Chromium.

A module with a unique name (not ``conftest``), so test modules can import it without clashing with the other
``conftest.py`` files of the suite.
"""

from __future__ import annotations

import os
import shutil
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
import uvicorn

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


def bind_free_port() -> socket.socket:
    """A socket bound to a free port of 127.0.0.1 (bind first, so the URL is known before the app is built)."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    return sock


def url_of(sock: socket.socket) -> str:
    """The base URL of a socket from :func:`bind_free_port`."""
    return f"http://127.0.0.1:{sock.getsockname()[1]}"


@contextmanager
def serve_in_thread(app: Any, sock: socket.socket | None = None) -> Iterator[str]:
    """Run an ASGI app (lifespan included) with uvicorn on 127.0.0.1 in a daemon thread; yield its base URL."""
    sock = sock or bind_free_port()
    config = uvicorn.Config(app, log_level="warning", lifespan="on", access_log=False, ws="none")
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            raise RuntimeError("the test server did not start")
        time.sleep(0.01)
    try:
        yield url_of(sock)
    finally:
        server.should_exit = True
        thread.join(timeout=10)
        sock.close()


def chromium_or_skip() -> str:
    """The Chromium binary, or skip (fail under ``CI=true``) with how to install it."""
    if Path(CHROMIUM).exists() or shutil.which(CHROMIUM):
        return CHROMIUM
    message = f"{CHROMIUM} is missing: run `make browser-deps` (installs Debian's chromium) to run the browser tests"
    if os.environ.get("CI") == "true":
        pytest.fail(f"CI must run the browser tests, but {message}")
    pytest.skip(message)
