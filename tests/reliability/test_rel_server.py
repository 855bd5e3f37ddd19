"""The HTTP server under slow, idle, half-closed and odd clients, on the real mock process (issue 16, items 5, 6).

- **Slowloris.** Connections that send nothing, half a head or half a body, more of them than the process has
  descriptors, never make a normal request fail: the cap makes room by closing the longest-waiting ones (503 with
  QIWI's body); what is left gets 408 with QIWI's body when its head or body deadline passes.
- **Keep-alive ends.** An idle keep-alive connection is closed after `--keep-alive-timeout` even while it sends
  the empty lines a parser skips between requests.
- **Half-close.** `PUT` create, `PUT` refund and `POST` reject followed by the client's FIN are answered, and so
  is every request of a pipelined batch of creates sent before the FIN; nothing is committed unanswered.
- **RFC 9112 §3.2 and WebSocket.** No `Host` / two `Host` / two `Authorization` headers: 400 with QIWI's body; a
  WebSocket upgrade is answered as plain HTTP by the API (401 with QIWI's body without a key), then closed.
"""

from __future__ import annotations

import contextlib
import json
import resource
import socket
import time
from typing import Any

import httpx
from conftest import Row
from rawhttp import Answer
from rel_procs import SECRET_A, MockProcess, auth, bill_body

API = "/partner/bill/v1/bills"
SIZES: dict[str, dict[str, int]] = {
    # slow: connections beyond the descriptor limit `fds` (the mock itself holds ~16 descriptors idle).
    "quick": {"head_timeout": 3, "fds": 100, "slow": 120, "normal": 20, "batch": 100, "rounds": 3, "copies": 1},
    "full": {"head_timeout": 10, "fds": 1024, "slow": 1010, "normal": 200, "batch": 100, "rounds": 20, "copies": 30},
}
_JSON_LENGTH = b"Content-Type: application/json\r\nContent-Length: %d\r\n\r\n"
_KEY = f"Authorization: Bearer {SECRET_A}\r\nHost: 127.0.0.1\r\n".encode()


def _start(mock_factory: Any, *args: str) -> tuple[MockProcess, str, int]:
    mock = mock_factory(["--secret-key", SECRET_A, *args])
    host, port = mock.url.removeprefix("http://").split(":")
    return mock, host, int(port)


def _read_to_close(sock: socket.socket, timeout: float) -> tuple[bytes, bool]:
    """Everything the server sends until it closes; `(data, closed)` — `closed` False if `timeout` passed first."""
    deadline = time.monotonic() + timeout
    data = b""
    while (remaining := deadline - time.monotonic()) > 0:
        sock.settimeout(remaining)
        try:
            chunk = sock.recv(1 << 16)
        except TimeoutError:
            break
        except ConnectionResetError:
            return data, True
        if not chunk:
            return data, True
        data += chunk
    return data, False


def _answers(data: bytes) -> list[Answer]:
    """The responses in a byte stream (each with a Content-Length, as the mock always sends)."""
    answers = []
    while data:
        head, _, rest = data.partition(b"\r\n\r\n")
        lines = head.decode("latin-1").split("\r\n")
        headers = {k.strip().lower(): v.strip() for k, _, v in (line.partition(":") for line in lines[1:])}
        length = int(headers.get("content-length", "0"))
        answers.append(Answer(int(lines[0].split(" ")[1]), headers, rest[:length]))
        data = rest[length:]
    return answers


def _is_qiwi_error(answer: Answer, status: int, code: str) -> bool:
    if answer.status != status or answer.headers.get("content-type") != "application/json":
        return False
    body = json.loads(answer.body)
    return bool(body["errorCode"] == code and body["serviceName"] == "invoicing-api" and body["traceId"])


def _create(i: int, prefix: str) -> bytes:
    body = json.dumps(bill_body("1.00")).encode()
    return f"PUT {API}/{prefix}-{i} HTTP/1.1\r\n".encode() + _KEY + _JSON_LENGTH % len(body) + body


def _send_then_fin(host: str, port: int, data: bytes, timeout: float = 20.0) -> list[Answer]:
    """Send `data`, shut down the write side (`nc -N`), read every answer until the server closes."""
    with socket.create_connection((host, port), timeout=timeout) as sock:
        sock.sendall(data)
        sock.shutdown(socket.SHUT_WR)
        received, closed = _read_to_close(sock, timeout)
    assert closed, "the server kept a half-closed connection open after answering"
    return _answers(received)


def _slow_connection(host: str, port: int, kind: int) -> socket.socket:
    """Kind 0: sends nothing; 1: half a request head; 2: a whole head and half its body."""
    sock = socket.create_connection((host, port), timeout=10)
    if kind == 1:
        sock.sendall(f"GET {API}/slow HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: ".encode())
    elif kind == 2:
        sock.sendall(f"PUT {API}/slow HTTP/1.1\r\n".encode() + _KEY + _JSON_LENGTH % 500 + b"{")
    return sock


def test_slow_and_idle_connections_never_crowd_out_requests(scale: str, row: Row, mock_factory: Any) -> None:
    size = SIZES[scale]
    head_timeout = float(size["head_timeout"])
    mock, host, port = _start(mock_factory, "--head-timeout", str(head_timeout), "--body-timeout", str(head_timeout))
    resource.prlimit(mock.pid, resource.RLIMIT_NOFILE, (size["fds"], size["fds"]))
    started = time.monotonic()
    slow = [_slow_connection(host, port, i % 3) for i in range(size["slow"])]
    statuses: list[int | None] = []
    with httpx.Client(base_url=mock.url, headers=auth(SECRET_A), timeout=10.0, trust_env=False) as client:
        assert client.put(f"{API}/under-siege", json=bill_body("5.00")).status_code == 200
        for _ in range(size["normal"]):
            try:  # a new connection for each request: each needs a descriptor of its own
                statuses.append(client.get(f"{API}/under-siege", headers={"Connection": "close"}).status_code)
            except httpx.HTTPError:
                statuses.append(None)
    assert time.monotonic() - started < head_timeout, "too slow to test under the siege: raise head_timeout"
    # Every slow connection ends, with QIWI's body: 503 if the cap closed it for room, else 408 at its deadline.
    outcomes = {"503": 0, "408": 0, "other": 0}
    for sock in slow:
        data, closed = _read_to_close(sock, head_timeout + 5.0)
        sock.close()
        answers = _answers(data) if data else []
        if closed and len(answers) == 1 and _is_qiwi_error(answers[0], 503, "internal.invoicing.core.error"):
            outcomes["503"] += 1
        elif closed and len(answers) == 1 and _is_qiwi_error(answers[0], 408, "http.request.timeout"):
            outcomes["408"] += 1
        else:
            outcomes["other"] += 1
    row.requests = size["normal"] + 1
    row.faults = size["slow"]
    row.server_errors = sum(s is not None and s >= 500 for s in statuses)
    row.lost = sum(s != 200 for s in statuses)
    assert statuses == [200] * size["normal"]
    assert outcomes["other"] == 0, outcomes
    assert outcomes["503"] > 0, outcomes  # the cap made room
    assert outcomes["408"] > 0, outcomes  # the deadline ended the rest
    assert httpx.get(f"{mock.url}/_mock/health", trust_env=False).status_code == 200


def test_timeouts_answer_408_and_idle_keep_alive_ends(scale: str, row: Row, mock_factory: Any) -> None:
    copies = SIZES[scale]["copies"]
    _mock, host, port = _start(mock_factory, "--head-timeout", "1", "--body-timeout", "1", "--keep-alive-timeout", "1")
    cases = {
        "silent": b"",
        "half head": f"GET {API}/t HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: ".encode(),
        "half body": f"PUT {API}/t HTTP/1.1\r\n".encode() + _KEY + _JSON_LENGTH % 50 + b"{",
    }
    slow = [(name, socket.create_connection((host, port), timeout=10)) for _ in range(copies) for name in cases]
    started = time.monotonic()
    for name, sock in slow:
        sock.sendall(cases[name])
    for _ in range(4):  # a byte now and then does not extend the deadline
        time.sleep(0.3)
        for name, sock in slow:
            if cases[name]:
                with contextlib.suppress(OSError):  # past the deadline the server has closed
                    sock.sendall(b"x")
    for name, sock in slow:
        data, closed = _read_to_close(sock, 5.0)
        sock.close()
        answers = _answers(data)
        assert closed, name
        assert len(answers) == 1, name
        assert _is_qiwi_error(answers[0], 408, "http.request.timeout"), name
    assert time.monotonic() - started < 4.0
    # Keep-alive: after an answer, empty lines (skipped by the parser between requests) do not keep it open.
    with socket.create_connection((host, port), timeout=10) as sock:
        sock.sendall(b"GET /_mock/health HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
        started = time.monotonic()
        data, closed = b"", False
        while not closed and time.monotonic() - started < 4.0:
            more, closed = _read_to_close(sock, 0.2)
            data += more
            if not closed:
                try:
                    sock.sendall(b"\r\n")
                except OSError:
                    closed = True
        elapsed = time.monotonic() - started
    assert closed, "an idle keep-alive connection was held open by empty lines"
    assert elapsed < 3.0
    assert [a.status for a in _answers(data)] == [200]
    row.requests = row.faults = len(slow) + 1


def test_half_closed_requests_are_answered(scale: str, row: Row, mock_factory: Any) -> None:
    size = SIZES[scale]
    mock, host, port = _start(mock_factory)
    client = httpx.Client(base_url=mock.url, headers=auth(SECRET_A), timeout=10.0, trust_env=False)
    answered = 0
    # One write each, then the FIN: create, refund (of a paid bill), reject.
    [created] = _send_then_fin(host, port, _create(0, "hc"))
    assert (created.status, created.json()["billId"]) == (200, "hc-0")
    assert client.post("/_mock/bills/hc-0/pay").status_code == 200
    refund = json.dumps({"amount": {"value": "0.50", "currency": "RUB"}}).encode()
    put_refund = f"PUT {API}/hc-0/refunds/r1 HTTP/1.1\r\n".encode() + _KEY
    put_refund += _JSON_LENGTH % len(refund) + refund
    [refunded] = _send_then_fin(host, port, put_refund)
    assert (refunded.status, refunded.json()["refundId"]) == (200, "r1")
    [_second] = _send_then_fin(host, port, _create(1, "hc"))
    reject = f"POST {API}/hc-1/reject HTTP/1.1\r\n".encode() + _KEY + b"Content-Length: 0\r\n\r\n"
    [rejected] = _send_then_fin(host, port, reject)
    assert (rejected.status, rejected.json()["status"]["value"]) == (200, "REJECTED")
    answered += 4
    # Pipelined batches of creates, then the FIN: every one answered, in order, and stored.
    for r in range(size["rounds"]):
        ids = [f"hcb{r}-{i}" for i in range(size["batch"])]
        answers = _send_then_fin(host, port, b"".join(_create(i, f"hcb{r}") for i in range(size["batch"])))
        assert [a.status for a in answers] == [200] * size["batch"], f"round {r}: {len(answers)} answers"
        assert [a.json()["billId"] for a in answers] == ids
        answered += len(answers)
    stored = [client.get(f"{API}/hcb{r}-{i}").status_code for r in range(size["rounds"]) for i in range(size["batch"])]
    client.close()
    row.requests = 4 + size["rounds"] * size["batch"]
    row.lost = row.requests - answered + sum(s != 200 for s in stored)
    assert row.lost == 0


def test_host_authorization_and_websocket_get_qiwi_bodies(scale: str, row: Row, mock_factory: Any) -> None:
    # QIWI's JSON 401 body (the default 401 is empty), so that every refusal here is checked body by body.
    _mock, host, port = _start(mock_factory, "--unauthorized-body", "json")
    get = f"GET {API}/x HTTP/1.1\r\n".encode()
    key = f"Authorization: Bearer {SECRET_A}\r\n".encode()
    upgrade = b"Connection: Upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Version: 13\r\n"
    upgrade += b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
    cases: list[tuple[bytes, int, str]] = [
        (get + key + b"\r\n", 400, "http.request.malformed"),  # HTTP/1.1 without Host
        (get + b"Host: a\r\nHost: b\r\n" + key + b"\r\n", 400, "http.request.malformed"),
        (get + b"Host: a/b@c\r\n" + key + b"\r\n", 400, "http.request.malformed"),
        (get + b"Host: a\r\n" + key + b"Authorization: Bearer other\r\n\r\n", 400, "http.request.malformed"),
        (get + b"Host: a\r\n" + upgrade + b"\r\n", 401, "auth.unauthorized"),  # WebSocket: the API's own answer
        (get + b"Host: a\r\n" + key + upgrade + b"\r\n", 404, "api.invoice.not.found"),
    ]
    for request, status, code in cases * SIZES[scale]["copies"]:
        with socket.create_connection((host, port), timeout=10) as sock:
            sock.sendall(request)
            data, closed = _read_to_close(sock, 5.0)
        answers = _answers(data)
        assert closed, request
        assert len(answers) == 1, (request, data[:200])
        assert _is_qiwi_error(answers[0], status, code), (request, data[:200])
    # HTTP/1.0 needs no Host; a valid one (with a port, or an IPv6 literal) is fine.
    for request in (
        f"GET {API}/x HTTP/1.0\r\n".encode() + key + b"\r\n",
        get + b"Host: 127.0.0.1:8080\r\n" + key + b"Connection: close\r\n\r\n",
        get + b"Host: [::1]:8080\r\n" + key + b"Connection: close\r\n\r\n",
    ):
        with socket.create_connection((host, port), timeout=10) as sock:
            sock.sendall(request)
            data, _closed = _read_to_close(sock, 5.0)
        assert _is_qiwi_error(_answers(data)[0], 404, "api.invoice.not.found"), data[:200]
    row.requests = row.faults = len(cases) * SIZES[scale]["copies"] + 3
