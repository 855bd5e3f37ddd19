"""Fixtures of the compatibility suite, and the recorder behind `compat/results.{json,md}`.

Every test carries `@pytest.mark.compat(client=..., operation=...)`, one cell of the table; with
`--compat-results` (`make compat` passes it) the run's outcomes are written by `compat.results.write`.
A missing Node.js or npm skips the Node SDK tests with the reason locally and fails them when `CI=true`,
as the browser tests do with Chromium.
"""

from __future__ import annotations

import http.server
import json
import os
import shutil
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from compat import results

NODE_DIR = Path(__file__).resolve().parent / "node"
SDK_DIR = NODE_DIR / "node_modules" / "@qiwi" / "bill-payments-node-js-sdk"
_CELLS = pytest.StashKey[list[dict[str, Any]]]()


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--compat-results", action="store_true", help="write compat/results.json and results.md from this run"
    )


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "compat(client, operation): one cell of the table in compat/results.md")
    config.stash[_CELLS] = []


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item) -> Iterator[None]:
    outcome = yield
    report = outcome.get_result()  # type: ignore[attr-defined]
    marker = item.get_closest_marker("compat")
    if marker is None or not (report.when == "call" or (report.when == "setup" and not report.passed)):
        return
    item.config.stash[_CELLS].append(
        {
            "client": marker.kwargs["client"],
            "operation": marker.kwargs["operation"],
            "test": item.nodeid,
            "outcome": report.outcome,
        }
    )


def pytest_sessionfinish(session: pytest.Session) -> None:
    cells = session.config.stash[_CELLS]
    if session.config.getoption("--compat-results") and cells:
        results.write(cells)


def unavailable(reason: str) -> None:
    """Skip with `reason` locally; fail under CI (`CI=true`), which must run every client."""
    if os.environ.get("CI", "").lower() in ("1", "true", "yes"):
        pytest.fail(f"{reason} (CI must run the compatibility suite)", pytrace=False)
    pytest.skip(reason)


@pytest.fixture(scope="session")
def node() -> str:
    """The `node` executable, with QIWI's SDK installed under compat/node/ by `make compat`."""
    missing = [tool for tool in ("node", "npm") if shutil.which(tool) is None]
    if missing:
        unavailable(f"{' and '.join(missing)} not installed (.ci/run installs Debian's nodejs and npm)")
    if not (SDK_DIR / "package.json").is_file():
        unavailable("QIWI's Node SDK is not installed: run `make compat` (npm ci in compat/node/)")
    return str(shutil.which("node"))


class Receiver:
    """A merchant's notification endpoint on 127.0.0.1: answers `{"error":"0"}`, keeps every POST."""

    def __init__(self) -> None:
        self.received: list[tuple[dict[str, str], bytes]] = []
        self._arrived = threading.Condition()
        receiver = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.end_headers()
                self.wfile.write(b'{"error":"0"}')
                with receiver._arrived:
                    receiver.received.append(({k.lower(): v for k, v in self.headers.items()}, body))
                    receiver._arrived.notify_all()

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/notify"
        self._thread = threading.Thread(target=self.server.serve_forever, daemon=True, name="compat-receiver")
        self._thread.start()

    def wait_for(self, bill_id: str, timeout: float = 15.0) -> tuple[dict[str, str], dict[str, Any]]:
        """The first notification about `bill_id`: its headers (lower-case names) and parsed body."""

        def find() -> tuple[dict[str, str], dict[str, Any]] | None:
            for headers, raw in self.received:
                body = json.loads(raw)
                if body["bill"]["billId"] == bill_id:
                    return headers, body
            return None

        with self._arrived:
            if not self._arrived.wait_for(lambda: find() is not None, timeout):
                raise AssertionError(f"no notification for {bill_id} within {timeout} s")
            found = find()
        assert found is not None
        return found

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture(scope="module")
def receiver() -> Iterator[Receiver]:
    """A notification receiver for this module's mock."""
    server = Receiver()
    try:
        yield server
    finally:
        server.close()
