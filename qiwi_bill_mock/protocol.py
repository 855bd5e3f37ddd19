"""uvicorn's httptools protocol hardened for a shared mock: bounded request heads, request timeouts, a connection
cap, half-closed requests answered, RFC 9112 `Host` rules, and QIWI's error body for every refusal; plus one socket
write per response.

What uvicorn (0.54) with httptools does not do, and this protocol does:

- **Bounded heads.** No limit on the request line or the headers: an endless header is buffered until memory runs
  out. Here a head (request line and headers) over `MAX_HEAD_BYTES`, or with more than `MAX_HEADERS` headers, is
  refused with 431; malformed HTTP with 400 (uvicorn answers plain text).
- **Timeouts (slowloris).** A connection that sends nothing, or half a head and a byte now and then, was held
  forever. A head must be complete `head_timeout` seconds after its first byte (after the connection opened, for
  the first request), a body `body_timeout` seconds after its head; else 408, then close. Both are whole-message
  deadlines, not gaps between reads: nginx's `client_header_timeout` (60 s) is one for the head, its
  `client_body_timeout` (60 s) a gap between reads, but a QIWI request body is a few hundred bytes (the mock takes
  up to 1 MiB), so a deadline costs no honest client and a byte every 59 s buys nothing. The clock stops while
  the server itself is not reading (a pipelined request waits for the one before it). An idle keep-alive
  connection is closed after uvicorn's `timeout_keep_alive`, whatever it sends meanwhile (uvicorn's own timer was
  cancelled by any byte, even the empty lines a parser skips between requests, so `\\r\\n` every few seconds held
  a connection forever).
- **A connection cap.** `max_connections` (by default the descriptor limit minus a reserve for the database, the
  notifier and the log): past it, the connection that has waited longest without a request in progress (idle
  keep-alive, an unfinished head or body) is closed to make room, as nginx drains its "reusable" connections when
  it runs out; if every connection is busy with a request, the newcomer's request gets 503. uvicorn's
  `limit_concurrency` answers a plain-text 503 and still lets slow connections hold every descriptor.
- **Half-closed requests answered.** uvicorn's `eof_received` returns `None`, so asyncio closes the transport on
  the client's FIN (`printf ... | nc -N`) and every response still being computed, or queued behind a pipelined
  one, is dropped — after its write was committed. Here every request received before the FIN is answered, then
  the connection closes; only a request the FIN cut short is dropped (it can never be complete).
- **`Host` and `Authorization`** (RFC 9112 §3.2: an HTTP/1.1 request without `Host`, any request with two or an
  invalid one, is a 400; RFC 9110 §5.3: a field that is not a list must not be repeated): two `Authorization`
  headers are refused with 400 too, never "the first one wins".
- **Refusals wait their turn.** A refusal (400, 408, 431, 503) is written only after every earlier pipelined
  request is answered, so it never cuts into, or replaces, another response.

uvicorn writes a response's head and its body in two `transport.write` calls, two `send` system calls with
uvloop: about a fifth of a GET's server CPU in `make bench`. Here the head waits for the first body write and
both leave in one (`_JoiningTransport`).
"""

from __future__ import annotations

import asyncio
import re
import resource
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import httptools
from uvicorn.protocols.http.httptools_impl import STATUS_LINE, HttpToolsProtocol

from qiwi_bill_mock.errors import (
    BAD_HOST,
    HEAD_TOO_LARGE,
    MALFORMED,
    MISSING_HOST,
    REQUEST_TIMEOUT,
    TOO_MANY_CONNECTIONS,
    TWO_AUTHORIZATIONS,
    TWO_HOSTS,
    ErrorKind,
    error_body,
)
from qiwi_bill_mock.wire import dumps, to_micros

__all__ = [
    "BAD_HOST",
    "HEAD_TOO_LARGE",
    "MALFORMED",
    "MAX_HEADERS",
    "MAX_HEAD_BYTES",
    "MISSING_HOST",
    "REQUEST_TIMEOUT",
    "TOO_MANY_CONNECTIONS",
    "TWO_AUTHORIZATIONS",
    "TWO_HOSTS",
    "LimitedHttpToolsProtocol",
    "ServerLimits",
    "descriptor_connection_cap",
]

#: Request line plus headers, in bytes (a real QIWI request head is well under 1 KiB; nginx allows 4 x 8 KiB).
MAX_HEAD_BYTES = 32 * 1024
#: Header fields per request.
MAX_HEADERS = 100

# RFC 9112 §3.2 / RFC 3986 §3.2.2: Host = uri-host [ ":" port ]; an IP literal in brackets or a reg-name (which
# may be empty). Anything else (spaces, "/", "@", "?") is an invalid Host: 400. The mock builds payUrl from it.
_HOST = re.compile(rb"(?:\[[0-9A-Za-z._~!$&'()*+,;=:%-]*\]|[0-9A-Za-z._~!$&'()*+,;=%-]*)(?::[0-9]*)?")

# What a connection is waiting for; `None`: a request is being answered, no timeout runs.
_HEAD = "head"  # the head of a request (a new connection starts here)
_BODY = "body"  # the rest of a request's body
_IDLE = "idle"  # the next request on a keep-alive connection


@dataclass(frozen=True, slots=True)
class ServerLimits:
    """The settable limits of `LimitedHttpToolsProtocol` (`qiwi-bill-mock --head-timeout` etc.).

    Attributes:
        head_timeout: Seconds for a request head to arrive, from its first byte (or the connection's start).
        body_timeout: Seconds for a request body to arrive, from the end of its head.
        max_connections: Open connections per process; `None`: from the descriptor limit
            (`descriptor_connection_cap()`).
    """

    head_timeout: float = 60.0
    body_timeout: float = 60.0
    max_connections: int | None = None


def descriptor_connection_cap() -> int:
    """The default connection cap: the process's descriptor limit minus a reserve (1/16 of it plus 64).

    The reserve keeps descriptors for what is not a client connection: the SQLite file and its WAL, the notifier's
    connections to merchants, the log, the event loop itself. Read at every new connection, so a limit changed
    while the mock runs (`prlimit`) is followed.
    """
    soft, _hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft == resource.RLIM_INFINITY:
        return 1 << 20
    return max(soft - soft // 16 - 64, 8)


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


def _refusal(kind: ErrorKind, default_headers: list[tuple[bytes, bytes]]) -> bytes:
    """A whole `Connection: close` response carrying QIWI's error body for `kind`."""
    body = dumps(error_body(kind, trace_id=secrets.token_hex(8), now_us=to_micros(datetime.now(UTC))))
    head = [STATUS_LINE[kind.status]]
    head += [name + b": " + value + b"\r\n" for name, value in default_headers]
    head.append(b"content-type: application/json\r\ncontent-length: %d\r\nconnection: close\r\n\r\n" % len(body))
    return b"".join(head) + body


class LimitedHttpToolsProtocol(HttpToolsProtocol):
    """`HttpToolsProtocol` with the limits, timeouts and answers of the module docstring.

    Every connection has one phase (`_HEAD`, `_BODY`, `_IDLE`, or `None` while a request is being answered) and one
    deadline for it, watched by at most one timer (`_watch`) that is re-armed lazily: the request path only reads
    the loop's clock, it never creates or cancels a timer. The connections in a phase (those that may be closed to
    make room) are kept in the server's `_waiting` dict, oldest first.

    Args:
        *args: uvicorn's arguments (`config`, `server_state`, `app_state`, `_loop`).
        limits: Timeouts and the connection cap (default `ServerLimits()`).
        **kwargs: uvicorn's arguments.
    """

    def __init__(self, *args: Any, limits: ServerLimits | None = None, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._limits = limits or ServerLimits()
        # One dict per server, in uvicorn's shared state: connections waiting for a client, oldest first.
        state = self.server_state.__dict__
        self._waiting: dict[LimitedHttpToolsProtocol, None] = state.setdefault("qiwi_waiting", {})
        self._phase: str | None = None
        self._deadline = 0.0
        self._watch: asyncio.TimerHandle | None = None
        self._watch_at = 0.0
        self._cap = 0
        self._eof = False  # the client shut down its write side
        self._failure: ErrorKind | None = None  # a refusal decided, sent once earlier requests are answered
        self._reason: ErrorKind | None = None  # why a parser callback raised
        self._head_bytes = 0  # request line and headers parsed so far
        self._unparsed = 0  # bytes of a head still in the parser's buffer (an unfinished line)
        self._header_count = 0
        self._hosts = 0
        self._host = b""
        self._valid_host: bytes | None = None
        self._authorizations = 0

    # The phase clock -------------------------------------------------------------------------------------------

    def _enter(self, phase: str, timeout: float) -> None:
        self._phase = phase
        self._deadline = deadline = self.loop.time() + timeout
        waiting = self._waiting
        waiting.pop(self, None)
        waiting[self] = None  # to the end: the longest-waiting connection stays first
        if self._watch is None or deadline < self._watch_at:
            self._arm(deadline)

    def _leave(self) -> None:
        self._phase = None
        self._waiting.pop(self, None)

    def _arm(self, when: float) -> None:
        if self._watch is not None:
            self._watch.cancel()
        self._watch_at = when
        self._watch = self.loop.call_at(when, self._on_watch)

    def _on_watch(self) -> None:
        self._watch = None
        phase = self._phase
        if phase is None or self.transport.is_closing():
            return  # a request is being answered: the next phase arms a new watch
        if self.loop.time() < self._deadline:
            self._arm(self._deadline)  # the phase moved on since this watch was armed
        elif phase is _IDLE:
            self._leave()
            self.transport.close()  # keep-alive's end: a silent close, as uvicorn's own timeout does
        elif self.flow.read_paused:
            # The server stopped reading (a pipelined request waits for the one before it): not the client's delay.
            self._enter(phase, self._limits.head_timeout if phase is _HEAD else self._limits.body_timeout)
        else:
            self._fail(REQUEST_TIMEOUT)

    def _make_room(self) -> bool:
        """Close the connection that has waited longest for its client (not this one); False if there is none."""
        for victim in self._waiting:
            if victim is not self:
                break
        else:
            return False
        self.connections.discard(victim)  # counted out now; uvicorn's connection_lost comes a loop turn later
        if victim._phase is _IDLE:
            victim._leave()
            victim.transport.close()
        else:
            victim._fail(TOO_MANY_CONNECTIONS)
        return True

    # Refusals --------------------------------------------------------------------------------------------------

    def _fail(self, kind: ErrorKind) -> None:
        """Refuse with `kind` and close: now, or after the requests received before are answered."""
        if self._failure is not None or self.transport.is_closing():
            return
        self._failure = kind
        self._leave()
        self.flow.pause_reading()
        cycle = self.cycle
        if cycle is not None and not cycle.response_complete:
            if cycle.more_body:  # the request being received: it will never be complete
                if self.pipeline and self.pipeline[0][0] is cycle:
                    self.pipeline.popleft()  # queued behind others: answered after them, by the refusal
                elif not cycle.response_started:
                    self._refuse()  # the refusal is its answer (its application sees a disconnect)
            return  # earlier requests are being answered: `on_response_complete` refuses after the last
        self._refuse()

    def _refuse(self) -> None:
        assert self._failure is not None
        self.transport.write(_refusal(self._failure, self.server_state.default_headers))
        self.transport.close()

    # asyncio.Protocol ------------------------------------------------------------------------------------------

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self.transport = self._joining = _JoiningTransport(transport)  # type: ignore[assignment]
        self._cap = self._limits.max_connections or descriptor_connection_cap()
        self._enter(_HEAD, self._limits.head_timeout)
        if len(self.connections) > self._cap:
            self._make_room()  # if none can go, this connection's request gets the 503 (on_headers_complete)

    def connection_lost(self, exc: Exception | None) -> None:
        super().connection_lost(exc)
        self._leave()
        if self._watch is not None:
            self._watch.cancel()
            self._watch = None

    def data_received(self, data: bytes) -> None:
        # uvicorn's data_received without its keep-alive timer (the phase clock replaces it), its plain-text 400
        # and its WebSocket hand-over: the mock runs with ws="none", so an Upgrade request is answered as plain
        # HTTP by the application, with QIWI's body (RFC 9110 §7.8 lets a server ignore Upgrade).
        if self._failure is not None:
            return  # refused: what follows is not read
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserUpgrade:
            return  # the parser reads nothing after an Upgrade request; it is answered, then closed
        except httptools.HttpParserError:
            if self._reason is None:
                self.logger.warning("Invalid HTTP request received.")
            else:
                self.logger.info("Refused a request: %s", self._reason.description)
            self._fail(self._reason or MALFORMED)
            return
        if self._phase is _HEAD and not self.transport.is_closing():
            # The whole chunk was (part of) a request head: count it, refuse before buffering without end.
            self._unparsed += len(data)
            if self._unparsed > MAX_HEAD_BYTES:
                self._fail(HEAD_TOO_LARGE)

    def eof_received(self) -> bool:  # type: ignore[override]
        """The client's FIN: answer what it sent before it, then close (True keeps the transport open for that)."""
        self._eof = True
        self._leave()
        cycle = self.cycle
        if cycle is None or cycle.response_complete:
            return False  # everything is answered: close now
        if cycle.more_body and self._failure is None:  # the FIN cut this request short: it can never be answered
            if self.pipeline and self.pipeline[0][0] is cycle:
                self.pipeline.popleft()
            elif not cycle.response_started:
                return False  # it is the only one left: close (its application sees a disconnect)
        return True

    # Parser callbacks ------------------------------------------------------------------------------------------

    def on_message_begin(self) -> None:
        super().on_message_begin()
        if self._phase is not _HEAD:  # a new connection's first request keeps the deadline set when it opened
            self._enter(_HEAD, self._limits.head_timeout)
        self._head_bytes = self._unparsed = self._header_count = 0
        self._hosts = self._authorizations = 0

    def _too_large(self) -> None:
        self._reason = HEAD_TOO_LARGE
        raise ValueError("request head too large")  # httptools raises HttpParserCallbackError: data_received

    def on_url(self, url: bytes) -> None:
        self._head_bytes += len(url)
        if self._head_bytes > MAX_HEAD_BYTES:
            self._too_large()
        self.url += url  # uvicorn's on_url, inline: it runs for every request

    def on_header(self, name: bytes, value: bytes) -> None:
        self._head_bytes += len(name) + len(value)
        self._header_count += 1
        if self._head_bytes > MAX_HEAD_BYTES or self._header_count > MAX_HEADERS:
            self._too_large()
        # uvicorn's on_header, inline (it runs for every header), counting Host and Authorization on the way.
        name = name.lower()
        if name == b"host":
            self._hosts += 1
            self._host = value
        elif name == b"authorization":
            self._authorizations += 1
        elif name == b"expect" and value.lower() == b"100-continue":
            self.expect_100_continue = True
        self.headers.append((name, value))

    def _head_refusal(self) -> ErrorKind | None:
        if self._hosts != 1:
            if self._hosts > 1:
                return TWO_HOSTS
            if self.parser.get_http_version() == "1.1":  # HTTP/1.0 has no Host requirement
                return MISSING_HOST
        elif self._host != self._valid_host:  # a keep-alive client sends the same Host each time: check it once
            if _HOST.fullmatch(self._host) is None:
                return BAD_HOST
            self._valid_host = self._host
        if self._authorizations > 1:
            return TWO_AUTHORIZATIONS
        if len(self.connections) > self._cap and not self._make_room():
            return TOO_MANY_CONNECTIONS
        return None

    def on_headers_complete(self) -> None:
        refusal = self._head_refusal()
        if refusal is not None:
            self._reason = refusal
            raise ValueError(refusal.description)  # httptools raises HttpParserCallbackError: data_received
        self._enter(_BODY, self._limits.body_timeout)
        self._joining.hold_next()
        super().on_headers_complete()
        if self.parser.should_upgrade():
            # The parser reads nothing after an Upgrade request: answer it, then close.
            self.cycle.keep_alive = False

    def on_message_complete(self) -> None:
        super().on_message_complete()
        if self.cycle.response_complete:  # answered before its body was read (e.g. 401): wait for the next request
            self._enter(_IDLE, self.timeout_keep_alive)
        else:
            self._leave()

    # uvicorn's hooks -------------------------------------------------------------------------------------------

    def on_response_complete(self) -> None:
        # uvicorn's on_response_complete, with a refusal or the client's FIN after the last answer, and keep-alive
        # on the phase clock instead of a timer armed and cancelled per request.
        self._joining.flush()
        self.server_state.total_requests += 1
        if self.transport.is_closing():
            return
        if self.pipeline:
            self.flow.resume_reading()
            cycle, app = self.pipeline.pop()
            self._start_asgi_task(cycle, app)
        elif self._failure is not None:
            self._refuse()
        elif self._eof:
            self.transport.close()
        else:
            self.flow.resume_reading()
            if self._phase is None:  # not already reading the next request
                self._enter(_IDLE, self.timeout_keep_alive)
