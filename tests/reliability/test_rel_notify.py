"""Hostile notification receivers (issue 16, items 1-2): huge and endless answers, trickled answers, slow merchants.

Each scenario runs the real mock process against a raw-socket receiver on 127.0.0.1 whose every answer is
scripted byte by byte, so the mock sees exactly what a broken or malicious merchant endpoint sends.
"""

from __future__ import annotations

import json
import socket
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from conftest import Row
from rawhttp import rss_peak_kib
from rel_procs import SECRET_A, SECRET_B, SITE_A, MockProcess, auth, bill_body, wait_until, write_config

API = "/partner/bill/v1/bills"
MiB = 1 << 20

# How the receiver answers one notification: it gets the connection after the request was read.
Answer = Callable[[socket.socket, dict[str, Any]], None]


class RawReceiver:
    """A notification endpoint on 127.0.0.1 that reads each request whole, then runs `answer(sock, body)`."""

    def __init__(self, answer: Answer) -> None:
        self.answer = answer
        self.received: list[tuple[float, dict[str, Any]]] = []
        self.finished: list[tuple[float, str]] = []  # (when, how) each answer ended: "done" or the error
        self._lock = threading.Lock()
        self._server = socket.create_server(("127.0.0.1", 0))
        self._server.settimeout(0.2)
        self.url = f"http://127.0.0.1:{self._server.getsockname()[1]}/notify"
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._accept, daemon=True)
        self._thread.start()

    def _accept(self) -> None:
        while not self._stop.is_set():
            try:
                conn, _ = self._server.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            threading.Thread(target=self._serve, args=(conn,), daemon=True).start()

    def _serve(self, conn: socket.socket) -> None:
        with conn:
            conn.settimeout(30)
            data = b""
            try:
                while b"\r\n\r\n" not in data:
                    chunk = conn.recv(65536)
                    if not chunk:
                        return
                    data += chunk
                head, _, body = data.partition(b"\r\n\r\n")
                length = next(
                    int(line.split(b":", 1)[1])
                    for line in head.split(b"\r\n")
                    if line.lower().startswith(b"content-length:")
                )
                while len(body) < length:
                    body += conn.recv(65536)
                notification = json.loads(body)
                with self._lock:
                    self.received.append((time.monotonic(), notification))
                self.answer(conn, notification)
                how = "done"
            except OSError as exc:
                how = type(exc).__name__
            with self._lock:
                self.finished.append((time.monotonic(), how))

    def close(self) -> None:
        self._stop.set()
        self._server.close()
        self._thread.join(timeout=5)


@pytest.fixture
def receiver_factory() -> Iterator[Callable[[Answer], RawReceiver]]:
    made: list[RawReceiver] = []

    def make(answer: Answer) -> RawReceiver:
        made.append(RawReceiver(answer))
        return made[-1]

    yield make
    for receiver in made:
        receiver.close()


def _pay(mock: MockProcess, bill_id: str, secret: str = SECRET_A) -> None:
    with httpx.Client(base_url=mock.url, headers=auth(secret), trust_env=False, timeout=30) as client:
        assert client.put(f"{API}/{bill_id}", json=bill_body()).status_code == 200
        assert client.post(f"/_mock/bills/{bill_id}/pay").status_code == 200


def _delivery(mock: MockProcess, bill_id: str, secret: str = SECRET_A) -> dict[str, Any] | None:
    answer = httpx.get(
        f"{mock.url}/_mock/notifications", params={"billId": bill_id}, headers=auth(secret), trust_env=False
    )
    answer.raise_for_status()
    deliveries = answer.json()["deliveries"]
    return deliveries[0] if deliveries else None


def _attempted(mock: MockProcess, bill_id: str, n: int = 1, secret: str = SECRET_A) -> bool:
    delivery = _delivery(mock, bill_id, secret)
    return delivery is not None and len(delivery["attempts"]) >= n


# -- item 1: the answer's body is not read ----------------------------------------------------------


def _huge_body(total: int | None) -> Answer:
    """200 with a `total`-byte body (`None`: chunked and endless), streamed until done or the mock hangs up."""

    def answer(conn: socket.socket, _: dict[str, Any]) -> None:
        chunk = b"x" * (256 * 1024)
        if total is None:
            conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n")
            frame = b"%x\r\n" % len(chunk) + chunk + b"\r\n"
            deadline = time.monotonic() + 60  # a bound for the test, far past anything the mock should read
            while time.monotonic() < deadline:
                conn.sendall(frame)
            return
        conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n" % total)
        sent = 0
        while sent < total:
            conn.sendall(chunk)
            sent += len(chunk)

    return answer


@pytest.mark.parametrize("body", ["huge", "endless"])
def test_huge_or_endless_answer_is_not_read(
    body: str, scale: str, mock_factory: Any, tmp_path: Path, receiver_factory: Any, row: Row
) -> None:
    """The merchant answers 200 with a 64 MiB (full: 256 MiB) or endless body: the attempt ends promptly, is
    recorded as delivered (the status line is the answer), the mock hangs up on the body and its peak RSS grows
    by less than 16 MiB."""
    size = (64 if scale == "quick" else 256) * MiB
    receiver = receiver_factory(_huge_body(size if body == "huge" else None))
    config = write_config(tmp_path / "m.toml", notify_url=receiver.url, notify_timeout=10)
    mock: MockProcess = mock_factory(["--config", str(config), "--time-scale", "0.001"])
    bills = 1 if scale == "quick" else 3
    baseline = rss_peak_kib(mock.pid)
    for n in range(bills):
        _pay(mock, f"big-{body}-{n}")
    for n in range(bills):
        assert wait_until(lambda n=n: _attempted(mock, f"big-{body}-{n}"), timeout=30)
    grown_kib = rss_peak_kib(mock.pid) - baseline
    deliveries = [_delivery(mock, f"big-{body}-{n}") for n in range(bills)]
    row.requests = len(receiver.received)
    row.faults = bills
    row.server_errors = sum(s >= 500 for s in mock.access_statuses())
    for delivery in deliveries:
        assert delivery is not None
        assert delivery["state"] == "delivered"
        assert [a["statusCode"] for a in delivery["attempts"]] == [200]
        assert delivery["attempts"][0]["latencyMs"] < 5000
    # The mock closed the connection long before the body ended: the receiver's writes failed.
    assert wait_until(lambda: len(receiver.finished) == bills, timeout=30)
    assert all(how != "done" for _, how in receiver.finished)
    assert grown_kib < 16 * 1024, f"peak RSS grew by {grown_kib / 1024:.0f} MiB"


# -- item 2: notify_timeout is a deadline; slow merchants do not delay others ------------------------


def _trickle(gap: float, *, stop: threading.Event) -> Answer:
    """Send a 200 answer's head one byte every `gap` seconds (each byte resets a per-read timeout)."""

    def answer(conn: socket.socket, _: dict[str, Any]) -> None:
        for byte in b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\n{}":
            if stop.wait(gap):
                return
            conn.sendall(bytes([byte]))

    return answer


def test_notify_timeout_bounds_the_whole_attempt(
    scale: str, mock_factory: Any, tmp_path: Path, receiver_factory: Any, row: Row
) -> None:
    """A receiver trickles its answer a byte every 1.5 s under `notify_timeout = 2`: each attempt is cut at about
    2 s, recorded as a failed attempt (no status, a timeout error) and retried on the schedule."""
    stop = threading.Event()
    receiver = receiver_factory(_trickle(1.5, stop=stop))
    config = write_config(tmp_path / "m.toml", notify_url=receiver.url, notify_timeout=2)
    mock: MockProcess = mock_factory(["--config", str(config), "--time-scale", "0.001"])
    attempts = 2 if scale == "quick" else 4
    _pay(mock, "trickle")
    try:
        assert wait_until(lambda: _attempted(mock, "trickle", attempts), timeout=attempts * 4 + 10)
    finally:
        stop.set()
    delivery = _delivery(mock, "trickle")
    assert delivery is not None
    recorded = delivery["attempts"][:attempts]
    row.requests = len(receiver.received)
    row.faults = attempts
    row.server_errors = sum(s >= 500 for s in mock.access_statuses())
    assert [a["statusCode"] for a in recorded] == [None] * attempts
    assert all("notify_timeout" in a["error"] for a in recorded), recorded
    assert all(1900 <= a["latencyMs"] <= 3000 for a in recorded), [a["latencyMs"] for a in recorded]
    assert delivery["state"] == "pending"


def test_slow_merchant_does_not_delay_another_merchants_notification(
    scale: str, mock_factory: Any, tmp_path: Path, receiver_factory: Any, row: Row
) -> None:
    """Merchant A's endpoint takes 6 s per answer and A has 8 (full: 40) notifications due; merchant B's
    notification, paid just after, still reaches B within 2 s."""
    release = threading.Event()

    def answer(conn: socket.socket, notification: dict[str, Any]) -> None:
        if notification["bill"]["siteId"] == SITE_A:
            release.wait(6)
        conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\n{}")

    receiver = receiver_factory(answer)
    config = write_config(tmp_path / "m.toml", notify_url=receiver.url, notify_timeout=10)
    mock: MockProcess = mock_factory(["--config", str(config), "--time-scale", "0.001"])
    slow = 8 if scale == "quick" else 40
    try:
        for n in range(slow):
            _pay(mock, f"slow-{n}")
        assert wait_until(lambda: len(receiver.received) >= 4, timeout=10)  # A's first ones are in flight
        paid_b = time.monotonic()
        _pay(mock, "fast-b", SECRET_B)
        assert wait_until(lambda: any(n["bill"]["billId"] == "fast-b" for _, n in receiver.received), timeout=15), (
            "B's notification never arrived"
        )
        reached_b = next(at for at, n in receiver.received if n["bill"]["billId"] == "fast-b")
    finally:
        release.set()
    row.requests = len(receiver.received)
    row.faults = slow
    row.server_errors = sum(s >= 500 for s in mock.access_statuses())
    assert reached_b - paid_b < 2.0, f"B waited {reached_b - paid_b:.1f} s behind A's slow endpoint"
    assert wait_until(lambda: _attempted(mock, "fast-b", secret=SECRET_B), timeout=10)
    delivery = _delivery(mock, "fast-b", SECRET_B)
    assert delivery is not None
    assert delivery["state"] == "delivered"
