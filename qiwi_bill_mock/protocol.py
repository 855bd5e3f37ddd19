"""uvicorn's httptools protocol with limits on the request head, QIWI's error body for malformed HTTP, and one
socket write per response.

uvicorn (0.54) with httptools puts no limit on the request line or the headers: an endless header is buffered
until memory runs out. And it answers unparseable HTTP with a plain-text 400. This protocol refuses a request
head (request line and headers) larger than `MAX_HEAD_BYTES` with 431, more than `MAX_HEADERS` headers with 431,
and answers malformed HTTP with 400; each with QIWI's JSON error body, then closes the connection.

uvicorn writes a response's head and its body in two `transport.write` calls, two `send` system calls with
uvloop: about a fifth of a GET's server CPU in `make bench`. Here the head waits for the first body write and
both leave in one (`_JoiningTransport`).
"""

from __future__ import annotations

import asyncio
import secrets
from datetime import UTC, datetime
from typing import Any

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from qiwi_bill_mock.errors import ErrorKind, error_body
from qiwi_bill_mock.wire import dumps, to_micros

__all__ = ["MAX_HEADERS", "MAX_HEAD_BYTES", "LimitedHttpToolsProtocol"]

#: Request line plus headers, in bytes (a real QIWI request head is well under 1 KiB; nginx allows 4 x 8 KiB).
MAX_HEAD_BYTES = 32 * 1024
#: Header fields per request.
MAX_HEADERS = 100

MALFORMED = ErrorKind(400, "http.request.malformed", "Malformed HTTP request", "Bad request")  # [inf]
HEAD_TOO_LARGE = ErrorKind(
    431, "http.request.header.too.large", "Request header fields too large", "Request header fields too large"
)  # [inf]
_REASONS = {400: b"Bad Request", 431: b"Request Header Fields Too Large"}


class _JoiningTransport:
    """The connection's transport, holding a response head back until the first body write joins it.

    `hold_next()` marks the next write (the head of the response to the request just parsed) to be held. A held
    write always leaves with the next write, at the end of the response (`flush()`), or before `close()`, so
    the bytes and their order on the wire are unchanged. `100 Continue` is never held (the client waits for it).
    """

    __slots__ = ("_held", "_hold", "_transport")

    def __init__(self, transport: asyncio.Transport) -> None:
        self._transport = transport
        self._held = b""
        self._hold = False

    def hold_next(self) -> None:
        self._hold = True

    def write(self, data: bytes) -> None:
        if self._held:
            data, self._held = self._held + data, b""
        elif self._hold and not data.startswith(b"HTTP/1.1 100 "):
            self._hold = False
            self._held = data
            return
        self._transport.write(data)

    def flush(self) -> None:
        self._hold = False
        if self._held:
            data, self._held = self._held, b""
            self._transport.write(data)

    def close(self) -> None:
        self.flush()
        self._transport.close()

    def __getattr__(self, name: str) -> Any:
        return getattr(self._transport, name)


class LimitedHttpToolsProtocol(HttpToolsProtocol):
    """`HttpToolsProtocol` that bounds the request head and speaks QIWI's error body when it refuses one."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._in_head = True
        self._head_bytes = 0  # request line and headers parsed so far
        self._unparsed = 0  # bytes of a head still in the parser's buffer (an unfinished line)
        self._header_count = 0
        self._refusal: ErrorKind | None = None

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self.transport = self._joining = _JoiningTransport(transport)  # type: ignore[assignment]

    def on_response_complete(self) -> None:
        self._joining.flush()
        super().on_response_complete()

    def on_message_begin(self) -> None:
        super().on_message_begin()
        self._in_head = True
        self._head_bytes = self._unparsed = self._header_count = 0

    def _count(self, size: int, headers: int = 0) -> None:
        self._head_bytes += size
        self._header_count += headers
        if self._head_bytes > MAX_HEAD_BYTES or self._header_count > MAX_HEADERS:
            self._refusal = HEAD_TOO_LARGE
            raise ValueError("request head too large")  # httptools raises HttpParserCallbackError: send_400_response

    def on_url(self, url: bytes) -> None:
        self._count(len(url))
        super().on_url(url)

    def on_header(self, name: bytes, value: bytes) -> None:
        self._count(len(name) + len(value), headers=1)
        super().on_header(name, value)

    def on_headers_complete(self) -> None:
        self._in_head = False
        self._joining.hold_next()
        super().on_headers_complete()

    def data_received(self, data: bytes) -> None:
        super().data_received(data)
        if self._in_head and not self.transport.is_closing():
            # The whole chunk was (part of) a request head: count it, refuse before buffering without end.
            self._unparsed += len(data)
            if self._unparsed > MAX_HEAD_BYTES:
                self._refuse(HEAD_TOO_LARGE)

    def send_400_response(self, msg: str) -> None:
        del msg  # uvicorn's plain-text message; QIWI's error body replaces it
        self._refuse(self._refusal or MALFORMED)

    def _refuse(self, kind: ErrorKind) -> None:
        now_us = to_micros(datetime.now(UTC))
        body = dumps(error_body(kind, trace_id=secrets.token_hex(8), now_us=now_us))
        head = [b"HTTP/1.1 %d %s\r\n" % (kind.status, _REASONS.get(kind.status, b"Error"))]
        for name, value in self.server_state.default_headers:
            head.append(name + b": " + value + b"\r\n")
        head.append(b"content-type: application/json\r\ncontent-length: %d\r\nconnection: close\r\n\r\n" % len(body))
        self.transport.write(b"".join(head) + body)
        self.transport.close()
