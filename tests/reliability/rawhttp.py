"""A raw-socket HTTP/1.1 exchange for the fuzzer: send exactly these bytes, read exactly one answer (or none)."""

from __future__ import annotations

import json
import socket
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

__all__ = ["Answer", "exchange", "rss_peak_kib"]


@dataclass
class Answer:
    """What came back: a parsed response, or `status=None` if the server closed without one."""

    status: int | None
    headers: dict[str, str] = field(default_factory=dict)
    body: bytes = b""
    hang: bool = False

    def json(self) -> Any:
        return json.loads(self.body)


def _read_answer(sock: socket.socket, deadline: float) -> Answer:
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = _recv(sock, deadline)
        if chunk is None:
            return Answer(None, hang=True)
        if not chunk:
            return Answer(None) if not data else Answer(-1, body=data)
        data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    parts = lines[0].split(" ", 2)
    status = int(parts[1]) if len(parts) > 1 and parts[1].isdigit() else -1
    headers = {}
    for line in lines[1:]:
        name, _, value = line.partition(":")
        headers[name.strip().lower()] = value.strip()
    length = int(headers.get("content-length", "0") or 0)
    while len(body) < length:
        chunk = _recv(sock, deadline)
        if chunk is None:
            return Answer(status, headers, body, hang=True)
        if not chunk:
            break
        body += chunk
    return Answer(status, headers, body[:length])


def _recv(sock: socket.socket, deadline: float) -> bytes | None:
    remaining = deadline - time.monotonic()
    if remaining <= 0:
        return None
    sock.settimeout(remaining)
    try:
        return sock.recv(1 << 16)
    except TimeoutError:
        return None
    except OSError:
        return b""


def exchange(host: str, port: int, head: bytes, body: Iterable[bytes] = (), *, timeout: float = 10.0) -> Answer:
    """Send `head` then each chunk of `body`; return the first answer. `hang=True` if none came in `timeout`.

    The server may answer and close before the whole body is sent (a body over its limit): sending then stops,
    and the answer it already sent is read.
    """
    deadline = time.monotonic() + timeout
    with socket.create_connection((host, port), timeout=timeout) as sock:
        try:
            sock.sendall(head)
            for chunk in body:
                sock.settimeout(max(deadline - time.monotonic(), 0.001))
                sock.sendall(chunk)
        except TimeoutError:
            pass  # the server stopped reading: it must have answered (or must close)
        except OSError:
            pass  # the server closed the connection: read what it said first
        # No half-close: asyncio servers close on EOF, which would hide the answer being tested.
        return _read_answer(sock, deadline)


def rss_peak_kib(pid: int) -> int:
    """Peak resident memory (`VmHWM`) of a process, in KiB."""
    with open(f"/proc/{pid}/status", encoding="ascii") as handle:
        for line in handle:
            if line.startswith("VmHWM:"):
                return int(line.split()[1])
    raise RuntimeError("no VmHWM")
