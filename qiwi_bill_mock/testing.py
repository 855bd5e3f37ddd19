"""Run the mock inside your own tests: in-process with no socket, on a thread, or as the real process.

The testing kit (docs/testing.md), re-exported from `qiwi_bill_mock.kit`:

- `QiwiMock` — an in-process mock with a fresh merchant: the generated client, the `/_mock/` controls, the
  notifications it sent (verified), the request journal; no port. `mock_qiwi()` — the same, answering every
  httpx call to `https://api.qiwi.com` (moto style: `with mock_qiwi() as mock:` or `@mock_qiwi`).
- `MockTransport` — a sync and async httpx transport over any mock app, its lifespan running.
- `MockControls` / `AsyncMockControls` — the typed `/_mock/` client, in-process or over HTTP.
- `MockServer` — the `qiwi-bill-mock` process with one merchant on a free port, for non-httpx code.
- `RequestJournal` — the ASGI wrapper recording every API request (`GET /_mock/requests`).
- The pytest plugin (`qiwi_mock`, `qiwi_mock_server` fixtures) is installed with the package.

Lower-level helpers, both binding 127.0.0.1 on a free port and yielding when the server answers:

- `serve_app(app)` runs any ASGI app (normally `create_app(...)`) with uvicorn on a background thread of
  this process. Fast, and the app object stays reachable (`app.state.ctx` for the store and the clock).
- `MockProcess(...)` starts the command-line mock as a child process (what users run, with real
  worker processes, `--db` files and signals), reads its first stdout line
  (`qiwi-bill-mock listening on http://HOST:PORT`), and keeps its whole output for inspection.
  `kill()` is a `kill -9` of the whole process group (workers included), `restart()` starts it
  again with the same arguments, so crash-recovery tests read like the scenario they check.

```python
from qiwi_bill_mock.testing import MockProcess

with MockProcess("--secret-key", "sk", "--db", "/tmp/bills.sqlite3") as mock:
    ...  # call mock.url with any HTTP client
```
"""

from __future__ import annotations

import contextlib
import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator, Mapping
from typing import Any

import uvicorn

from qiwi_bill_mock.kit.controls import AsyncMockControls, Delivery, DeliveryAttempt, MockControlError, MockControls
from qiwi_bill_mock.kit.journal import JournalEntry, JournalQuery, RequestJournal
from qiwi_bill_mock.kit.mock import API_BASE_URL, DEFAULT_NOTIFY_URL, QiwiMock, mock_qiwi
from qiwi_bill_mock.kit.notifications import (
    NotificationInbox,
    NotificationRouter,
    NotificationTarget,
    ReceivedNotification,
)
from qiwi_bill_mock.kit.server import MockServer
from qiwi_bill_mock.kit.transports import AppRunner, MockTransport

__all__ = [
    "API_BASE_URL",
    "DEFAULT_NOTIFY_URL",
    "AppRunner",
    "AsyncMockControls",
    "Delivery",
    "DeliveryAttempt",
    "JournalEntry",
    "JournalQuery",
    "MockControlError",
    "MockControls",
    "MockProcess",
    "MockProcessError",
    "MockServer",
    "MockTransport",
    "NotificationInbox",
    "NotificationRouter",
    "NotificationTarget",
    "QiwiMock",
    "ReceivedNotification",
    "RequestJournal",
    "bind_free_port",
    "mock_qiwi",
    "serve_app",
    "wait_for_line",
]

_LISTENING = re.compile(r"qiwi-bill-mock listening on (http://\S+)")


class MockProcessError(RuntimeError):
    """The mock process did not start, or did not stop, as expected."""


def bind_free_port(host: str = "127.0.0.1") -> socket.socket:
    """A listening-ready TCP socket on a free port of `host` (bind first, so the URL is known before the app)."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, 0))
    return sock


@contextlib.contextmanager
def serve_app(app: Any, *, sock: socket.socket | None = None, timeout: float = 20.0) -> Iterator[str]:
    """Serve an ASGI app with uvicorn on a daemon thread (lifespan included); yield its base URL.

    Args:
        app: The ASGI application, e.g. `qiwi_bill_mock.create_app(settings)`.
        sock: A socket from `bind_free_port()`, when the URL must be known before the app is built
            (e.g. to put it in `Settings(public_url=...)`); default a fresh one.
        timeout: Seconds to wait for start-up and for shutdown.

    Yields:
        `http://127.0.0.1:PORT`.
    """
    sock = sock or bind_free_port()
    host, port = sock.getsockname()[:2]
    config = uvicorn.Config(app, log_config=None, access_log=False, lifespan="on", ws="none")
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True, name="qiwi-mock-server")
    thread.start()
    deadline = time.monotonic() + timeout
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            raise MockProcessError("the in-process server did not start")
        time.sleep(0.01)
    try:
        yield f"http://{host}:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout)
        sock.close()


class MockProcess:
    """The `qiwi-bill-mock` command line as a child process, on a free port unless `--port` is given.

    Args:
        *args: Command-line arguments, e.g. `"--secret-key", "sk", "--db", path`.
        env: Extra environment variables (`QIWI_MOCK_*` settings work here too).
        startup_timeout: Seconds to wait for the first line.
    """

    def __init__(self, *args: str, env: Mapping[str, str] | None = None, startup_timeout: float = 30.0) -> None:
        self.args: tuple[str, ...] = args if "--port" in args else (*args, "--port", "0")
        self.env = {**os.environ, **(env or {})}
        self.startup_timeout = startup_timeout
        self.url = ""
        self._proc: subprocess.Popen[str] | None = None
        self._lines: list[str] = []
        self._reader: threading.Thread | None = None

    @property
    def command(self) -> list[str]:
        """The command line (the interpreter running this code, so the same environment is used)."""
        return [sys.executable, "-m", "qiwi_bill_mock", *self.args]

    @property
    def pid(self) -> int:
        """The process id (also its process-group id)."""
        if self._proc is None:
            raise MockProcessError("the mock is not running")
        return self._proc.pid

    @property
    def output(self) -> str:
        """Everything the process wrote to stdout and stderr so far (merged, in order)."""
        return "".join(self._lines)

    def start(self) -> MockProcess:
        """Start the process and wait for its `listening on` line; returns `self`."""
        if self._proc is not None and self._proc.poll() is None:
            raise MockProcessError("the mock is already running")
        # A session of its own: kill() then reaches uvicorn's worker processes too.
        proc = subprocess.Popen(
            self.command,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            text=True,
            env=self.env,
            start_new_session=True,
        )
        self._proc = proc
        found = threading.Event()

        def read() -> None:
            assert proc.stdout is not None
            for line in proc.stdout:
                self._lines.append(line)
                match = _LISTENING.match(line)
                if match and not found.is_set():
                    self.url = match.group(1)
                    found.set()

        self._reader = threading.Thread(target=read, daemon=True, name="qiwi-mock-output")
        self._reader.start()
        deadline = time.monotonic() + self.startup_timeout
        while not found.wait(0.05):
            if proc.poll() is not None or time.monotonic() > deadline:
                self.kill()
                raise MockProcessError(f"qiwi-bill-mock did not start; its output:\n{self.output}")
        return self

    def stop(self, timeout: float = 15.0) -> int:
        """SIGTERM (a clean shutdown) and wait; returns the exit status."""
        proc = self._require()
        if proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGTERM)
            try:
                proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.kill()
                raise MockProcessError(f"qiwi-bill-mock ignored SIGTERM for {timeout}s") from None
        self._join_reader()
        return proc.returncode

    def kill(self) -> None:
        """`kill -9` the whole process group (workers included) and wait until it is gone."""
        proc = self._require()
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:  # workers are reparented; wait until none is left
            try:
                os.killpg(proc.pid, 0)
            except ProcessLookupError:
                break
            time.sleep(0.05)
        self._join_reader()

    def restart(self) -> MockProcess:
        """Start again with the same arguments (after `stop()` or `kill()`); the port may change."""
        return self.start()

    def _require(self) -> subprocess.Popen[str]:
        if self._proc is None:
            raise MockProcessError("the mock was never started")
        return self._proc

    def _join_reader(self) -> None:
        if self._reader is not None:
            self._reader.join(5)
        if self._proc is not None and self._proc.stdout is not None and not self._reader_alive():
            self._proc.stdout.close()  # the reader saw EOF: release the pipe (else a ResourceWarning per start)

    def _reader_alive(self) -> bool:
        return self._reader is not None and self._reader.is_alive()

    def __enter__(self) -> MockProcess:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        if self._proc is not None and self._proc.poll() is None:
            try:
                self.stop()
            except MockProcessError:
                pass  # already killed by stop()


def wait_for_line(process: MockProcess, pattern: str, *, timeout: float = 10.0) -> str:
    """Wait until the process output has a line matching `pattern`; return it (e.g. a traceId's log line)."""
    compiled = re.compile(pattern)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for line in process.output.splitlines():
            if compiled.search(line):
                return line
        time.sleep(0.02)
    raise MockProcessError(f"no output line matched {pattern!r} within {timeout}s")
