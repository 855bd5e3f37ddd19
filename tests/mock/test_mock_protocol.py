"""The server protocol's one write per response (`_JoiningTransport`), unit and over a real socket."""

from __future__ import annotations

import socket
from typing import Any

from qiwi_bill_mock.protocol import _JoiningTransport
from qiwi_bill_mock.testing import MockProcess


class FakeTransport:
    def __init__(self) -> None:
        self.writes: list[bytes] = []
        self.closed = False

    def write(self, data: bytes) -> None:
        self.writes.append(data)

    def close(self) -> None:
        self.closed = True

    def is_closing(self) -> bool:
        return self.closed


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
