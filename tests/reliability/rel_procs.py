"""Real processes for the reliability suite: the mock CLI on loopback, and a scriptable merchant endpoint.

Everything here talks to 127.0.0.1 only. Every process started here is ended by its own id (the mock runs in
its own session, so `kill -9` reaches its worker processes through its process group, which this module made).
"""

from __future__ import annotations

import http.server
import json
import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

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

_LISTEN = re.compile(r"qiwi-bill-mock listening on (http://\S+)")
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


class MockProcess:
    """`python -m qiwi_bill_mock` in its own process group, with stdout and stderr captured to files.

    Args:
        workdir: Where the log files go (one pair per start, so restarts keep the earlier logs).
        args: Command-line arguments after `--host 127.0.0.1 --port 0` (e.g. `--db`, `--workers`, `--config`).
        env: Extra environment variables.
        host: The `--host` to bind (default loopback).
    """

    def __init__(
        self, workdir: Path, args: Sequence[str], *, env: dict[str, str] | None = None, host: str | None = "127.0.0.1"
    ) -> None:
        self.workdir = workdir
        self.args = list(args)
        self.env = env or {}
        self.host = host
        self.proc: subprocess.Popen[bytes] | None = None
        self.url = ""
        self.starts = 0
        self.logs: list[Path] = []

    def start(self) -> MockProcess:
        """Start and wait for the first line (`... listening on URL`) and a healthy answer."""
        self.starts += 1
        out = self.workdir / f"mock-{self.starts}.stdout"
        err = self.workdir / f"mock-{self.starts}.stderr"
        self.logs += [out, err]
        command = [sys.executable, "-m", "qiwi_bill_mock", "--port", "0", "--log-level", "info", *self.args]
        if self.host is not None:
            command[3:3] = ["--host", self.host]
        env = {**os.environ, **self.env}
        with out.open("wb") as stdout, err.open("wb") as stderr:
            self.proc = subprocess.Popen(command, stdout=stdout, stderr=stderr, env=env, start_new_session=True)
        deadline = time.monotonic() + _START_TIMEOUT
        while time.monotonic() < deadline:
            match = _LISTEN.search(out.read_text("utf-8", "replace"))
            if match:
                self.url = match.group(1)
                break
            if self.proc.poll() is not None:
                raise RuntimeError(f"mock exited with {self.proc.returncode}: {err.read_text('utf-8', 'replace')}")
            time.sleep(0.05)
        else:
            self.kill()
            raise RuntimeError("mock printed no listening line in time")
        self._wait_healthy(deadline)
        return self

    def _wait_healthy(self, deadline: float) -> None:
        while time.monotonic() < deadline:
            try:
                if httpx.get(f"{self.url}/_mock/health", timeout=2.0, trust_env=False).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.05)
        self.kill()
        raise RuntimeError("mock never answered /_mock/health")

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    def kill(self) -> None:
        """`kill -9` the mock and every worker process of it (its own process group), then reap it."""
        if self.proc is None or self.proc.poll() is not None:
            return
        try:
            os.killpg(self.proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        self.proc.wait(timeout=10)
        self._wait_group_gone()

    def stop(self) -> int:
        """SIGTERM (clean shutdown); `kill -9` if it has not ended after 15 s. Returns the exit code."""
        if self.proc is None:
            return 0
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.kill()
        self._wait_group_gone()
        return self.proc.returncode

    def _wait_group_gone(self) -> None:
        """Worker processes left over in the group (after a parent's kill -9) are killed too."""
        assert self.proc is not None
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                os.killpg(self.proc.pid, 0)
            except ProcessLookupError:
                return
            try:
                os.killpg(self.proc.pid, signal.SIGKILL)
            except ProcessLookupError:
                return
            time.sleep(0.05)

    def restart(self) -> MockProcess:
        """Start again with the same arguments (same `--db`), after `kill` or `stop`."""
        return self.start()

    def output(self) -> str:
        """Everything the process(es) printed so far, stdout and stderr of every start."""
        return "\n".join(path.read_text("utf-8", "replace") for path in self.logs if path.exists())

    def access_statuses(self) -> list[int]:
        """HTTP statuses from the mock's access log lines (`<trace> METHOD PATH STATUS 1.23ms`)."""
        statuses = []
        for line in self.output().splitlines():
            if " qiwi_bill_mock.access: " in line:
                parts = line.rsplit(" ", 2)
                if len(parts) == 3 and parts[1].isdigit():
                    statuses.append(int(parts[1]))
        return statuses

    def __enter__(self) -> MockProcess:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


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
