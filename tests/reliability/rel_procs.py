"""Real processes for the reliability suite: the mock CLI on loopback, and a scriptable merchant endpoint.

Everything here talks to 127.0.0.1 only. Every process started here is ended by its own id (the mock runs in
its own session, so `kill -9` reaches its worker processes through its process group, which this module made).
"""

from __future__ import annotations

import http.server
import json
import socket
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from qiwi_bill_mock.testing import MockProcess as _TestingMockProcess, MockProcessError

__all__ = [
    "PUBLIC_A",
    "PUBLIC_B",
    "SECRET_A",
    "SECRET_B",
    "SITE_A",
    "SITE_B",
    "MerchantEndpoint",
    "MockProcess",
    "Received",
    "auth",
    "bill_body",
    "free_port",
    "future_expiration",
    "wait_until",
    "write_config",
]

# Two merchants with distinctive keys: the leak test greps every captured byte for them.
SECRET_A = "rel-secret-A-7f3c9e1d2b4a6085"
SECRET_B = "rel-secret-B-19d0c4e8f2a7b365"
PUBLIC_A = "rel-public-A-0a1b2c3d"
PUBLIC_B = "rel-public-B-4e5f6a7b"
SITE_A = "rel-site-a"
SITE_B = "rel-site-b"

_START_TIMEOUT = 30.0


def future_expiration(days: int = 30) -> str:
    """An `expirationDateTime` safely in the future, with an offset, as QIWI wants it."""
    stamp = time.gmtime(time.time() + days * 86400)
    return time.strftime("%Y-%m-%dT%H:%M:%S+00:00", stamp)


def bill_body(value: str = "10.00", *, comment: str | None = None, **extra: Any) -> dict[str, Any]:
    """A valid create-bill body."""
    body: dict[str, Any] = {"amount": {"value": value, "currency": "RUB"}, "expirationDateTime": future_expiration()}
    if comment is not None:
        body["comment"] = comment
    body.update(extra)
    return body


def write_config(
    path: Path,
    *,
    notify_url: str | None = None,
    notify_timeout: float | None = None,
    retry_schedule: Sequence[float] | None = None,
) -> Path:
    """A merchants.toml with merchants A and B (both notified at `notify_url`) and optional notifier settings."""
    lines: list[str] = []
    if notify_timeout is not None:
        lines.append(f"notify_timeout = {notify_timeout}")
    if retry_schedule is not None:
        lines.append(f"retry_schedule = [{', '.join(str(float(x)) for x in retry_schedule)}]")
    for site, secret, public in ((SITE_A, SECRET_A, PUBLIC_A), (SITE_B, SECRET_B, PUBLIC_B)):
        lines += ["", "[[merchant]]", f'site_id = "{site}"', f'secret_key = "{secret}"', f'public_key = "{public}"']
        if notify_url:
            lines.append(f'notify_url = "{notify_url}"')
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


class MockProcess(_TestingMockProcess):
    """`qiwi_bill_mock.testing.MockProcess` (the CLI in its own process group) as this suite uses it.

    Adds: `--host 127.0.0.1` unless `host=None` (then the CLI's default decides), `--log-level info` so the
    access log is in `output`, a wait for `/_mock/health` after the first line, the database path, the statuses
    of the access log, and a `stop()` that falls back to `kill -9` instead of raising.

    Args:
        args: Command-line arguments (e.g. `--db`, `--workers`, `--config`).
        env: Extra environment variables.
        host: The `--host` to bind (default loopback; `None` passes none).
    """

    def __init__(
        self, args: Sequence[str], *, env: dict[str, str] | None = None, host: str | None = "127.0.0.1"
    ) -> None:
        host_args = ["--host", host] if host is not None else []
        super().__init__(*host_args, "--log-level", "info", *args, env=env, startup_timeout=_START_TIMEOUT)
        self.db = args[list(args).index("--db") + 1] if "--db" in args else None

    def start(self) -> MockProcess:
        """Start, wait for the first line and for a healthy answer."""
        super().start()
        deadline = time.monotonic() + _START_TIMEOUT
        while time.monotonic() < deadline:
            try:
                if httpx.get(f"{self.url}/_mock/health", timeout=2.0, trust_env=False).status_code == 200:
                    return self
            except httpx.HTTPError:
                pass
            time.sleep(0.05)
        self.kill()
        raise MockProcessError("the mock never answered /_mock/health")

    def restart(self) -> MockProcess:
        """Start again with the same arguments (same `--db`), after `kill()` or `stop()`; the port may change."""
        return self.start()

    def stop(self, timeout: float = 15.0) -> int:
        """SIGTERM and wait (a clean shutdown); `kill -9` if that fails. Returns the exit status (or -9)."""
        if self._proc is None:
            return 0
        try:
            return super().stop(timeout)
        except MockProcessError:
            return -9

    def access_statuses(self) -> list[int]:
        """HTTP statuses from the mock's access log lines (`<trace> METHOD PATH STATUS 1.23ms [errorCode]`)."""
        statuses = []
        for line in self.output.splitlines():
            if " qiwi_bill_mock.access: " in line:
                parts = line.split(" qiwi_bill_mock.access: ", 1)[1].split(" ")
                if len(parts) >= 5 and parts[3].isdigit():
                    statuses.append(int(parts[3]))
        return statuses


@dataclass
class Received:
    """One notification POST as the merchant received it."""

    at: float
    headers: dict[str, str]
    body: bytes
    answered: int | None


@dataclass
class MerchantEndpoint:
    """A merchant's notification endpoint on 127.0.0.1 whose answers are scripted per attempt.

    `script` is consumed one entry per request: an int status to answer, or `("sleep", seconds)` to answer 200
    only after that long (the mock's timeout cuts it off first). When the script is empty every request is 200.
    `down()` closes the port (connections refused); `up()` opens the same port again.
    """

    script: list[int | tuple[str, float]] = field(default_factory=list)
    received: list[Received] = field(default_factory=list)
    port: int = 0
    _server: http.server.ThreadingHTTPServer | None = None
    _thread: threading.Thread | None = None
    _lock: threading.Lock = field(default_factory=threading.Lock)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/notify"

    def _handler(self) -> type[http.server.BaseHTTPRequestHandler]:
        endpoint = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(min(length, 1 << 20))
                with endpoint._lock:
                    action: int | tuple[str, float] = endpoint.script.pop(0) if endpoint.script else 200
                record = Received(time.time(), {k.lower(): v for k, v in self.headers.items()}, body, None)
                with endpoint._lock:
                    endpoint.received.append(record)
                status = 200
                if isinstance(action, tuple):
                    time.sleep(action[1])
                else:
                    status = action
                record.answered = status
                try:
                    self.send_response(status)
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", "2")
                    self.end_headers()
                    self.wfile.write(b"{}")
                except OSError:
                    record.answered = None  # the mock gave up (timeout) before the answer

            def log_message(self, format: str, *args: Any) -> None:  # quiet
                return

        return Handler

    def up(self) -> MerchantEndpoint:
        """Listen (again) on `port` (a free one the first time)."""
        server = http.server.ThreadingHTTPServer(("127.0.0.1", self.port), self._handler())
        server.daemon_threads = True
        self.port = server.server_address[1]
        self._server = server
        self._thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
        self._thread.start()
        return self

    def down(self) -> None:
        """Stop listening: the mock's attempts are refused."""
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None
        if self._thread is not None:
            self._thread.join(timeout=5)

    def bodies(self) -> list[dict[str, Any]]:
        with self._lock:
            return [json.loads(r.body) for r in self.received]


def wait_until(predicate: Callable[[], bool], *, timeout: float, interval: float = 0.1) -> bool:
    """Poll `predicate` until true or `timeout` seconds pass (a bound against hangs, not a timing target)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(interval)
    return predicate()


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def auth(secret: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {secret}"}
