"""The server protocol (`qiwi_bill_mock.protocol`): one write per response (`_JoiningTransport`), unit and over a
real socket; and the connection's life in process, on a transport that keeps asyncio's contract (a falsy
`eof_received()` closes it; `close()` reaches `connection_lost` a loop turn later): the client's FIN, refusals in
their turn, the head / body / keep-alive deadlines and the connection cap. The same behaviours against the real
process, at size, are in `tests/reliability/test_rel_server.py`.
"""

from __future__ import annotations

import asyncio
import json
import pickle
import re
import resource
import socket
from collections.abc import Callable
from typing import Any

import pytest
import uvicorn
from uvicorn.server import ServerState

from qiwi_bill_mock.__main__ import parse_args, server_options
from qiwi_bill_mock.protocol import (
    MAX_HEAD_BYTES,
    LimitedHttpToolsProtocol,
    ServerLimits,
    _JoiningTransport,
    descriptor_connection_cap,
)
from qiwi_bill_mock.testing import MockProcess


class FakeTransport:
    """Records writes; with a protocol, keeps asyncio's transport contract for it."""

    def __init__(self, protocol: asyncio.Protocol | None = None) -> None:
        self.writes: list[bytes] = []
        self.closed = False
        self.reading = True
        self._protocol = protocol
        self._unread: list[bytes] = []  # what the kernel holds while reading is paused

    def write(self, data: bytes) -> None:
        assert not self.closed, "a write after close"
        self.writes.append(data)

    def close(self) -> None:
        if not self.closed and self._protocol is not None:
            asyncio.get_running_loop().call_soon(self._protocol.connection_lost, None)
        self.closed = True

    def is_closing(self) -> bool:
        return self.closed

    def pause_reading(self) -> None:
        self.reading = False

    def resume_reading(self) -> None:
        self.reading = True
        if self._unread:
            asyncio.get_running_loop().call_soon(self.feed, b"".join(self._unread))
            self._unread.clear()

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        return default

    def feed(self, data: bytes) -> None:
        assert self._protocol is not None
        if not self.reading:
            self._unread.append(data)
        elif not self.closed:
            self._protocol.data_received(data)

    def feed_eof(self) -> None:
        assert self._protocol is not None
        if not self.closed and not self._protocol.eof_received():
            self.close()  # what asyncio's transports do when eof_received() returns a falsy value

    @property
    def output(self) -> bytes:
        return b"".join(self.writes)


def joining() -> tuple[_JoiningTransport, FakeTransport]:
    fake = FakeTransport()
    return _JoiningTransport(fake), fake  # type: ignore[arg-type]


def test_the_head_leaves_with_the_first_body_write() -> None:
    transport, fake = joining()
    transport.hold_next()
    transport.write(b"HTTP/1.1 200 OK\r\n\r\n")
    assert fake.writes == []
    transport.write(b"body")
    assert fake.writes == [b"HTTP/1.1 200 OK\r\n\r\nbody"]
    transport.write(b"more")  # only the head is held
    assert fake.writes[-1] == b"more"


def test_a_held_head_is_flushed_at_the_end_of_the_response_and_before_close() -> None:
    transport, fake = joining()
    transport.hold_next()
    transport.write(b"HTTP/1.1 204 No Content\r\n\r\n")  # HEAD or an empty body: no body write follows
    transport.flush()
    assert fake.writes == [b"HTTP/1.1 204 No Content\r\n\r\n"]
    transport.hold_next()
    transport.write(b"HTTP/1.1 500 Internal Server Error\r\n\r\n")
    transport.close()
    assert fake.writes[-1] == b"HTTP/1.1 500 Internal Server Error\r\n\r\n"
    assert fake.closed


def test_100_continue_is_never_held() -> None:
    transport, fake = joining()
    transport.hold_next()
    transport.write(b"HTTP/1.1 100 Continue\r\n\r\n")
    assert fake.writes == [b"HTTP/1.1 100 Continue\r\n\r\n"]
    transport.write(b"HTTP/1.1 200 OK\r\n\r\n")  # the final head is still held
    assert len(fake.writes) == 1


def test_other_attributes_reach_the_real_transport() -> None:
    transport, fake = joining()
    assert transport.is_closing() is False
    fake.closed = True
    assert transport.is_closing() is True


def _exchange(sock: socket.socket, request: bytes) -> bytes:
    sock.sendall(request)
    data = b""
    while b"\r\n\r\n" not in data:
        data += sock.recv(65536)
    head, _, rest = data.partition(b"\r\n\r\n")
    length = next(
        (int(line.split(b":", 1)[1]) for line in head.split(b"\r\n") if line.lower().startswith(b"content-length:")),
        0,
    )
    if not request.startswith(b"HEAD"):
        while len(rest) < length:
            rest += sock.recv(65536)
    return head + b"\r\n\r\n" + rest


def test_keep_alive_get_head_and_expect_continue_over_a_real_socket(tmp_path: Any) -> None:
    with MockProcess("--secret-key", "sk") as mock:
        host, port = mock.url.removeprefix("http://").split(":")
        with socket.create_connection((host, int(port)), timeout=10) as sock:
            auth = b"Authorization: Bearer sk\r\nHost: x\r\n"
            body = b'{"amount":{"currency":"RUB","value":"1.00"},"expirationDateTime":"2099-01-01T00:00:00+03:00"}'
            put = (
                b"PUT /partner/bill/v1/bills/b1 HTTP/1.1\r\n" + auth + b"Content-Type: application/json\r\n"
                b"Expect: 100-continue\r\nContent-Length: %d\r\n\r\n" % len(body)
            )
            sock.sendall(put)
            assert sock.recv(65536).startswith(b"HTTP/1.1 100 Continue")  # not held back: the client waits for it
            created = _exchange(sock, body)
            assert created.startswith(b"HTTP/1.1 200 ")
            assert created.endswith(b"}")
            head = _exchange(sock, b"HEAD /partner/bill/v1/bills/b1 HTTP/1.1\r\n" + auth + b"\r\n")
            assert head.startswith(b"HTTP/1.1 200 ")
            assert head.endswith(b"\r\n\r\n")
            got = _exchange(sock, b"GET /partner/bill/v1/bills/b1 HTTP/1.1\r\n" + auth + b"\r\n")
            assert got.startswith(b"HTTP/1.1 200 ")
            assert b'"billId":"b1"' in got


# -- The connection's life, in process ------------------------------------------------------------------------


async def _app(scope: dict[str, Any], receive: Any, send: Any) -> None:
    """Reads the whole body; `/slow/...` answers after 50 ms (as a committed write waits for its group commit);
    `/hold/...` answers after 500 ms without reading its body (as a GET does)."""
    assert scope["type"] == "http"
    size, more = 0, not scope["path"].startswith("/hold/")
    while more:
        message = await receive()
        if message["type"] == "http.disconnect":
            return
        size += len(message.get("body", b""))
        more = message.get("more_body", False)
    if scope["path"].startswith("/slow/"):
        await asyncio.sleep(0.05)
    elif not more and size == 0 and scope["path"].startswith("/hold/"):
        await asyncio.sleep(0.5)
    body = json.dumps({"path": scope["path"], "size": size}).encode()
    headers = [(b"content-type", b"application/json"), (b"content-length", b"%d" % len(body))]
    await send({"type": "http.response.start", "status": 200, "headers": headers})
    await send({"type": "http.response.body", "body": body})


class Server:
    """uvicorn's shared server state and config, and a way to open connections to the protocol under test."""

    def __init__(self, limits: ServerLimits, keep_alive: float = 5.0) -> None:
        self.config = uvicorn.Config(_app, ws="none", log_config=None, timeout_keep_alive=keep_alive)  # type: ignore[arg-type]
        self.config.load()
        self.state = ServerState()
        self.limits = limits

    def connect(self) -> FakeTransport:
        protocol = LimitedHttpToolsProtocol(
            config=self.config, server_state=self.state, app_state={}, limits=self.limits
        )
        transport = FakeTransport(protocol)
        protocol.connection_made(transport)  # type: ignore[arg-type]
        return transport


@pytest.fixture
def server() -> Server:
    return Server(ServerLimits(head_timeout=0.3, body_timeout=0.3))


def _responses(output: bytes) -> list[tuple[int, bytes]]:
    """`(status, body)` of each response in the bytes written (every one has a Content-Length)."""
    responses = []
    while output:
        head, _, rest = output.partition(b"\r\n\r\n")
        length = int(re.search(rb"content-length: (\d+)", head, re.IGNORECASE).group(1))  # type: ignore[union-attr]
        responses.append((int(head.split(b" ", 2)[1]), rest[:length]))
        output = rest[length:]
    return responses


def _statuses(output: bytes) -> list[int]:
    return [status for status, _ in _responses(output)]


def _error(output: bytes) -> dict[str, Any]:
    body: dict[str, Any] = json.loads(_responses(output)[-1][1])
    return body


def _get(path: str) -> bytes:
    return f"GET {path} HTTP/1.1\r\nHost: x\r\n\r\n".encode()


def _put(path: str, body: bytes, length: int | None = None) -> bytes:
    head = f"PUT {path} HTTP/1.1\r\nHost: x\r\nContent-Length: {len(body) if length is None else length}\r\n\r\n"
    return head.encode() + body


async def _until(done: Callable[[], bool], timeout: float = 3.0) -> None:
    """Run the loop until `done()` (a bound against a hang; the test's asserts say what must have happened)."""
    for _ in range(int(timeout / 0.01)):
        if done():
            return
        await asyncio.sleep(0.01)


async def _until_closed(transport: FakeTransport) -> None:
    await _until(lambda: transport.closed)


async def _until_answered(transport: FakeTransport, count: int) -> None:
    await _until(lambda: transport.closed or len(_statuses(transport.output)) >= count)


async def test_every_request_before_the_fin_is_answered_then_the_connection_closes(server: Server) -> None:
    transport = server.connect()
    transport.feed(b"".join(_put(f"/slow/{i}", b"{}") for i in range(5)))
    transport.feed_eof()  # uvicorn closed here: the five writes went on, their answers were dropped
    await _until_closed(transport)
    assert _statuses(transport.output) == [200] * 5
    assert [json.loads(body)["path"] for _, body in _responses(transport.output)] == [f"/slow/{i}" for i in range(5)]
    assert transport.closed


async def test_a_request_the_fin_cut_short_is_dropped_after_the_answers_before_it(server: Server) -> None:
    transport = server.connect()
    transport.feed(_get("/slow/a") + _get("/slow/b") + _put("/slow/c", b"{", length=10))
    transport.feed_eof()
    await _until_closed(transport)
    assert _statuses(transport.output) == [200, 200]
    assert transport.closed


async def test_a_fin_with_nothing_pending_closes_at_once(server: Server) -> None:
    transport = server.connect()
    transport.feed(_get("/a"))
    await _until_answered(transport, 1)
    transport.feed_eof()
    assert transport.closed
    assert _statuses(transport.output) == [200]


async def test_a_refusal_waits_for_the_answers_of_the_requests_before_it(server: Server) -> None:
    transport = server.connect()
    transport.feed(_get("/slow/first") + b"NOT HTTP\r\n\r\n")  # uvicorn wrote the 400 first, then lost the 200
    await _until_closed(transport)
    assert _statuses(transport.output) == [200, 400]
    assert _error(transport.output)["errorCode"] == "http.request.malformed"
    assert transport.closed


async def test_the_head_deadline_is_not_moved_by_trickled_bytes(server: Server) -> None:
    transport = server.connect()
    transport.feed(b"GET / HTTP/1.1\r\nHost: x\r\nX-Slow: ")
    for _ in range(5):
        await asyncio.sleep(0.1)
        transport.feed(b"x")
    assert _statuses(transport.output) == [408]
    assert _error(transport.output)["errorCode"] == "http.request.timeout"
    assert transport.closed


async def test_a_body_deadline_answers_the_request_being_received_with_408(server: Server) -> None:
    transport = server.connect()
    transport.feed(_put("/a", b'{"x"', length=100))
    await _until_closed(transport)
    assert _statuses(transport.output) == [408]
    assert transport.closed


async def test_the_deadline_waits_while_the_server_is_not_reading(server: Server) -> None:
    transport = server.connect()
    # A pipelined request behind one that takes 500 ms: its head is read, then reading pauses, so the rest of its
    # body stays unread (in the kernel) past body_timeout (300 ms). The client was not slow: no 408.
    transport.feed(_get("/hold/x") + _put("/b", b"{", length=2))
    assert not transport.reading
    transport.feed(b"}")
    await _until_answered(transport, 2)
    assert _statuses(transport.output) == [200, 200]
    assert not transport.closed


async def test_empty_lines_do_not_keep_an_idle_connection_open() -> None:
    server = Server(ServerLimits(), keep_alive=0.2)
    transport = server.connect()
    transport.feed(_get("/a"))
    for _ in range(6):  # uvicorn's keep-alive timer was cancelled by any byte, and the parser skips empty lines
        await asyncio.sleep(0.06)
        transport.feed(b"\r\n")
    assert _statuses(transport.output) == [200]
    assert transport.closed


async def test_the_cap_closes_the_connection_that_waited_longest() -> None:
    server = Server(ServerLimits(max_connections=2))
    first, second = server.connect(), server.connect()
    first.feed(_get("/a"))  # answered: now waiting (idle), after `second` began to wait
    second.feed(b"GET / HTTP/1.1\r\n")
    await _until_answered(first, 1)
    third = server.connect()  # one too many: `second` waited longest
    assert second.closed
    assert _statuses(second.output) == [503]
    assert _error(second.output)["errorCode"] == "internal.invoicing.core.error"
    server.connect()  # `first` (idle keep-alive) goes silently
    assert first.closed
    assert _statuses(first.output) == [200]
    assert not third.closed


async def test_past_the_cap_with_every_connection_busy_a_request_gets_503() -> None:
    server = Server(ServerLimits(max_connections=1))
    busy = server.connect()
    busy.feed(_get("/slow/busy"))
    extra = server.connect()
    extra.feed(_get("/a"))
    assert _statuses(extra.output) == [503]
    assert extra.closed
    await _until_answered(busy, 1)
    assert _statuses(busy.output) == [200]


@pytest.mark.parametrize(
    ("head", "description"),
    [
        (b"GET / HTTP/1.1\r\n\r\n", "An HTTP/1.1 request needs a Host header"),
        (b"GET / HTTP/1.1\r\nHost: a\r\nHost: a\r\n\r\n", "More than one Host header"),
        (b"GET / HTTP/1.1\r\nHost: a b\r\n\r\n", "Invalid Host header"),
        (b"GET / HTTP/1.1\r\nHost: evil/x?\r\n\r\n", "Invalid Host header"),
        (
            b"GET / HTTP/1.1\r\nHost: a\r\nAuthorization: a\r\nauthorization: b\r\n\r\n",
            "More than one Authorization header",
        ),
    ],
)
async def test_host_and_authorization_rules(server: Server, head: bytes, description: str) -> None:
    transport = server.connect()
    transport.feed(head)
    assert _statuses(transport.output) == [400]
    assert _error(transport.output)["description"] == description
    assert transport.closed


@pytest.mark.parametrize(
    "head",
    [
        b"GET /" + b"a" * (MAX_HEAD_BYTES + 1) + b" HTTP/1.1\r\nHost: a\r\n\r\n",  # one long line
        b"GET / HTTP/1.1\r\nHost: a\r\n" + b"X-Pad: " + b"b" * (MAX_HEAD_BYTES + 1) + b"\r\n\r\n",
    ],
    ids=["url", "header"],
)
async def test_an_oversized_head_gets_431_with_qiwis_body(server: Server, head: bytes) -> None:
    transport = server.connect()
    transport.feed(head)
    await _until_closed(transport)
    assert _statuses(transport.output) == [431]
    assert _error(transport.output)["errorCode"] == "http.request.header.too.large"


@pytest.mark.parametrize("host", [b"", b"a.example", b"127.0.0.1:8080", b"[::1]:80", b"xn--d1acufc.xn--p1ai"])
async def test_valid_hosts_and_http_1_0_without_host_pass(server: Server, host: bytes) -> None:
    transport = server.connect()
    transport.feed(b"GET /a HTTP/1.1\r\nHost: " + host + b"\r\n\r\nGET /b HTTP/1.0\r\n\r\n")
    await _until_answered(transport, 2)
    assert _statuses(transport.output) == [200, 200]


async def test_an_upgrade_request_is_answered_as_http_then_closed(server: Server) -> None:
    transport = server.connect()
    transport.feed(b"GET /ws HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n")
    await _until_closed(transport)
    assert _statuses(transport.output) == [200]
    assert b"connection: close" in transport.output
    assert transport.closed


def test_the_cli_hands_its_limits_to_the_protocol(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("QIWI_MOCK_HEAD_TIMEOUT", "7")
    args = parse_args(["--body-timeout", "8", "--keep-alive-timeout", "2", "--max-connections", "50"])
    options = server_options(
        head_timeout=args.head_timeout,
        body_timeout=args.body_timeout,
        keep_alive_timeout=args.keep_alive_timeout,
        max_connections=args.max_connections,
    )
    assert options["http"].func is LimitedHttpToolsProtocol
    assert options["http"].keywords["limits"] == ServerLimits(head_timeout=7.0, body_timeout=8.0, max_connections=50)
    assert (options["ws"], options["timeout_keep_alive"]) == ("none", 2.0)
    assert pickle.loads(pickle.dumps(options["http"])).keywords == options["http"].keywords  # --workers N spawn
    monkeypatch.delenv("QIWI_MOCK_HEAD_TIMEOUT")
    defaults = parse_args([])
    assert (defaults.head_timeout, defaults.body_timeout, defaults.keep_alive_timeout) == (60.0, 60.0, 5.0)
    assert defaults.max_connections == 0  # 0: from the descriptor limit


def test_the_default_cap_leaves_descriptors_for_the_rest() -> None:
    soft, _hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    assert descriptor_connection_cap() == max(soft - soft // 16 - 64, 8)
    assert 0 < descriptor_connection_cap() < soft
