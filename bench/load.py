"""Load generation: wrk with the Lua scripts in ``bench/lua``, or a small asyncio fallback.

Both generators run the same scenarios (GET one bill, GET random bills, PUT-create, the mixed flow),
are bounded in time *and* request count, and return a :class:`LoadResult`.
"""

from __future__ import annotations

import asyncio
import json
import math
import re
import shutil
import subprocess
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, ClassVar, Protocol
from urllib.parse import urlsplit

__all__ = [
    "CREATE_BODY",
    "REFUND_BODY",
    "GetScenario",
    "LoadResult",
    "MixedScenario",
    "PutScenario",
    "RandomGetScenario",
    "Scenario",
    "parse_duration_ms",
    "parse_wrk_output",
    "percentile",
    "run_python_load",
    "run_wrk",
    "wrk_path",
]

LUA_DIR = Path(__file__).with_name("lua")
BILLS = "/partner/bill/v1/bills/"
CREATE_BODY = b'{"amount":{"currency":"RUB","value":"10.00"},"expirationDateTime":"2030-01-01T00:00:00+03:00"}'
REFUND_BODY = b'{"amount":{"currency":"RUB","value":"5.00"}}'


@dataclass
class LoadResult:
    """One load run against one server.

    Attributes:
        scenario: Scenario name (``get``, ``put``, ``mixed``, ``get_random``).
        server: Server name (``mock``, ``hello``, ``prism``).
        connections: Concurrent keep-alive connections.
        tool: ``wrk`` or ``python`` (the fallback generator).
        requests: Completed requests.
        duration_s: Measured wall time of the run.
        rps: Requests per second.
        p50_ms: Median latency.
        p90_ms: 90th percentile latency.
        p99_ms: 99th percentile latency.
        mean_ms: Mean latency.
        max_ms: Maximum latency.
        errors: Socket errors plus responses with a status outside 2xx/3xx.
        non_2xx: Responses with a status outside 2xx/3xx.
        extra: Anything else worth keeping (e.g. peak RSS for scale runs).
    """

    scenario: str
    server: str
    connections: int
    tool: str
    requests: int
    duration_s: float
    rps: float
    p50_ms: float
    p90_ms: float
    p99_ms: float
    mean_ms: float
    max_ms: float
    errors: int = 0
    non_2xx: int = 0
    extra: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        """Return a JSON-ready dict."""
        return asdict(self)


# --------------------------------------------------------------------------------------------- wrk


def wrk_path() -> str | None:
    """Return the path of the ``wrk`` binary, or None when it is not installed."""
    return shutil.which("wrk")


_UNIT_MS = {"us": 0.001, "ms": 1.0, "s": 1000.0, "m": 60_000.0, "h": 3_600_000.0}
_DURATION = re.compile(r"^([0-9.]+)(us|ms|s|m|h)$")


def parse_duration_ms(text: str) -> float:
    """Convert one of wrk's printed durations (``950.00us``, ``1.23ms``, ``2.00s``) to milliseconds.

    Raises:
        ValueError: If the text is not a wrk duration.
    """
    match = _DURATION.match(text.strip())
    if match is None:
        raise ValueError(f"not a wrk duration: {text!r}")
    return float(match.group(1)) * _UNIT_MS[match.group(2)]


def _parse_count(text: str) -> float:
    """Convert a wrk count such as ``6.50k`` or ``1.2M`` to a number."""
    scale = {"k": 1e3, "M": 1e6, "G": 1e9}
    if text and text[-1] in scale:
        return float(text[:-1]) * scale[text[-1]]
    return float(text)


def parse_wrk_output(output: str) -> dict[str, float]:
    """Parse wrk's output into numbers (milliseconds for latencies).

    The ``WRK_JSON`` line printed by ``bench/lua/common.lua`` is preferred (exact microseconds);
    without it, the human-readable report of ``wrk --latency`` is parsed.

    Returns:
        Keys ``requests``, ``duration_s``, ``rps``, ``p50_ms``, ``p90_ms``, ``p99_ms``, ``mean_ms``,
        ``max_ms``, ``errors`` and ``non_2xx``.

    Raises:
        ValueError: If neither form is found.
    """
    for line in output.splitlines():
        if line.startswith("WRK_JSON "):
            raw = json.loads(line[len("WRK_JSON ") :])
            duration_s = raw["duration_us"] / 1e6
            socket_errors = sum(raw[f"errors_{k}"] for k in ("connect", "read", "write", "timeout"))
            return {
                "requests": raw["requests"],
                "duration_s": duration_s,
                "rps": raw["requests"] / duration_s if duration_s else 0.0,
                "p50_ms": raw["p50_us"] / 1000,
                "p90_ms": raw["p90_us"] / 1000,
                "p99_ms": raw["p99_us"] / 1000,
                "mean_ms": raw["mean_us"] / 1000,
                "max_ms": raw["max_us"] / 1000,
                "errors": socket_errors + raw["errors_status"],
                "non_2xx": raw["errors_status"],
            }
    return _parse_wrk_text(output)


def _parse_wrk_text(output: str) -> dict[str, float]:
    """Parse the human-readable report of ``wrk --latency``."""
    result: dict[str, float] = {"errors": 0, "non_2xx": 0}
    latency = re.search(r"^\s*Latency\s+(\S+)\s+(\S+)\s+(\S+)", output, re.M)
    if latency is None:
        raise ValueError("no latency line in wrk output")
    result["mean_ms"] = parse_duration_ms(latency.group(1))
    result["max_ms"] = parse_duration_ms(latency.group(3))
    for pct, key in (("50", "p50_ms"), ("90", "p90_ms"), ("99", "p99_ms")):
        found = re.search(rf"^\s*{pct}%\s+(\S+)", output, re.M)
        if found is None:
            raise ValueError(f"no {pct}% line in wrk output (run wrk with --latency)")
        result[key] = parse_duration_ms(found.group(1))
    total = re.search(r"^\s*(\d+) requests in (\S+),", output, re.M)
    rps = re.search(r"^Requests/sec:\s+([0-9.]+)", output, re.M)
    if total is None or rps is None:
        raise ValueError("no request totals in wrk output")
    result["requests"] = int(total.group(1))
    result["duration_s"] = parse_duration_ms(total.group(2)) / 1000
    result["rps"] = float(rps.group(1))
    non_2xx = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", output)
    if non_2xx:
        result["non_2xx"] = int(non_2xx.group(1))
    sockets = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", output)
    socket_errors = sum(int(g) for g in sockets.groups()) if sockets else 0
    result["errors"] = socket_errors + result["non_2xx"]
    return result


def _lua_script(name: str, scratch: Path) -> Path:
    """Write ``common.lua`` + the scenario's script into one file that wrk can load."""
    scratch.mkdir(parents=True, exist_ok=True)
    target = scratch / f"{name}.lua"
    target.write_text((LUA_DIR / "common.lua").read_text() + "\n" + (LUA_DIR / f"{name}.lua").read_text())
    return target


def run_wrk(
    *,
    base_url: str,
    script: str,
    opts: dict[str, str],
    connections: int,
    duration_s: float,
    max_requests: int,
    scratch: Path,
    scenario: str,
    server: str,
) -> LoadResult:
    """Run wrk (one thread) with one of the Lua scenarios and parse its report.

    Args:
        base_url: ``http://127.0.0.1:PORT``.
        script: Lua scenario name in ``bench/lua`` (``get``, ``get_random``, ``put``, ``mixed``).
        opts: ``key=value`` options for the script (``key``, ``bill_id``, ``prefix``...).
        connections: Concurrent connections.
        duration_s: Time bound of the run.
        max_requests: Request bound of the run.
        scratch: Folder for the assembled script and wrk's raw output.
        scenario: Scenario name recorded in the result.
        server: Server name recorded in the result.

    Raises:
        RuntimeError: If wrk is missing, fails, or prints no report.
    """
    binary = wrk_path()
    if binary is None:
        raise RuntimeError("wrk is not installed")
    host = urlsplit(base_url).hostname
    if host not in {"127.0.0.1", "localhost", "::1"}:
        raise RuntimeError(f"refusing to load a non-loopback host: {host}")
    script_path = _lua_script(script, scratch)
    seconds = max(1, round(duration_s))
    argv = [
        binary,
        "-t1",
        f"-c{connections}",
        f"-d{seconds}s",
        "--timeout",
        "5s",
        "--latency",
        "-s",
        str(script_path),
        base_url + "/",
        "--",
        f"max_requests={max_requests}",
        *(f"{k}={v}" for k, v in opts.items()),
    ]
    proc = subprocess.run(argv, capture_output=True, text=True, timeout=seconds + 30, check=False)
    (scratch / f"wrk-{server}-{scenario}-c{connections}.txt").write_text(proc.stdout + proc.stderr)
    if proc.returncode != 0:
        raise RuntimeError(f"wrk exited with {proc.returncode}: {proc.stderr.strip()[:500]}")
    numbers = parse_wrk_output(proc.stdout)
    return LoadResult(
        scenario=scenario,
        server=server,
        connections=connections,
        tool="wrk",
        requests=int(numbers["requests"]),
        duration_s=numbers["duration_s"],
        rps=numbers["rps"],
        p50_ms=numbers["p50_ms"],
        p90_ms=numbers["p90_ms"],
        p99_ms=numbers["p99_ms"],
        mean_ms=numbers["mean_ms"],
        max_ms=numbers["max_ms"],
        errors=int(numbers["errors"]),
        non_2xx=int(numbers["non_2xx"]),
    )


# ------------------------------------------------------------------------------- python fallback


class Scenario(Protocol):
    """What the Python load generator needs from a scenario (mirrors the Lua scripts)."""

    def next_request(self) -> tuple[str, str, bytes | None]:
        """Return ``(method, path, body)`` of the next request."""
        ...

    def on_response(self, status: int, body: bytes) -> None:
        """See the response of a request returned by :meth:`next_request`."""
        ...


class GetScenario:
    """GET one existing bill over and over (``bench/lua/get.lua``)."""

    def __init__(self, bill_id: str) -> None:
        """Read ``bill_id`` on every request."""
        self._path = BILLS + bill_id

    def next_request(self) -> tuple[str, str, bytes | None]:
        """Return the GET."""
        return "GET", self._path, None

    def on_response(self, status: int, body: bytes) -> None:
        """Ignore the response."""


class RandomGetScenario:
    """GET a random bill ``prefix + i`` for ``i`` in ``range(count)`` (``bench/lua/get_random.lua``)."""

    def __init__(self, prefix: str, count: int, seed: int = 1) -> None:
        """Pick among ``count`` ids with a seeded generator."""
        import random

        self._prefix = BILLS + prefix
        self._count = count
        self._random = random.Random(seed)

    def next_request(self) -> tuple[str, str, bytes | None]:
        """Return a GET of a random seeded bill."""
        return "GET", f"{self._prefix}{self._random.randrange(self._count)}", None

    def on_response(self, status: int, body: bytes) -> None:
        """Ignore the response."""


class PutScenario:
    """PUT-create a bill with a new id on every request (``bench/lua/put.lua``)."""

    def __init__(self, prefix: str) -> None:
        """Number new ids after ``prefix``."""
        self._prefix = BILLS + prefix + "-0-"
        self._seq = 0

    def next_request(self) -> tuple[str, str, bytes | None]:
        """Return the next PUT-create."""
        self._seq += 1
        return "PUT", f"{self._prefix}{self._seq}", CREATE_BODY

    def on_response(self, status: int, body: bytes) -> None:
        """Ignore the response."""


class MixedScenario:
    """The mixed flow of ``bench/lua/mixed.lua``: create, get, then reject or pay + refund.

    A flow's next step is only handed out after the response of its previous step arrived;
    responses are matched by the id in their body, exactly as the Lua script does.
    """

    STEPS: ClassVar[dict[str, tuple[str, ...]]] = {
        "reject": ("create", "get", "reject"),
        "refund": ("create", "get", "pay", "refund"),
    }
    _ID = re.compile(rb'"refundId"\s*:\s*"([^"]+)"|"billId"\s*:\s*"([^"]+)"')

    def __init__(self, prefix: str) -> None:
        """Number new flows after ``prefix``."""
        self._prefix = prefix + "-0-"
        self._seq = 0
        self._next: dict[str, int] = {}
        self._kind: dict[str, str] = {}
        self._ready: list[str] = []
        self.lost = 0

    def next_request(self) -> tuple[str, str, bytes | None]:
        """Return the next step of a ready flow, or the create of a new flow."""
        if self._ready:
            bill_id = self._ready.pop(0)
        else:
            self._seq += 1
            bill_id = f"{self._prefix}{self._seq}"
            self._next[bill_id] = 0
            self._kind[bill_id] = "reject" if self._seq % 2 == 0 else "refund"
        step = self.STEPS[self._kind[bill_id]][self._next[bill_id]]
        if step == "create":
            return "PUT", BILLS + bill_id, CREATE_BODY
        if step == "get":
            return "GET", BILLS + bill_id, None
        if step == "reject":
            return "POST", f"{BILLS}{bill_id}/reject", None
        if step == "pay":
            return "POST", f"/_mock/bills/{bill_id}/pay", None
        return "PUT", f"{BILLS}{bill_id}/refunds/{bill_id}", REFUND_BODY

    def on_response(self, status: int, body: bytes) -> None:
        """Advance the flow that the response belongs to."""
        match = self._ID.search(body)
        bill_id = (match.group(1) or match.group(2)).decode() if match else None
        if status != 200 or bill_id is None or bill_id not in self._next:
            self.lost += 1
            return
        self._next[bill_id] += 1
        if self._next[bill_id] >= len(self.STEPS[self._kind[bill_id]]):
            del self._next[bill_id], self._kind[bill_id]
        else:
            self._ready.append(bill_id)


def percentile(sorted_values: list[float], pct: float) -> float:
    """Return the ``pct`` percentile (nearest rank) of already sorted values, 0.0 when empty."""
    if not sorted_values:
        return 0.0
    rank = max(0, min(len(sorted_values) - 1, math.ceil(pct / 100 * len(sorted_values)) - 1))
    return sorted_values[rank]


async def _read_response(reader: asyncio.StreamReader) -> tuple[int, bytes]:
    """Read one HTTP/1.1 response (Content-Length or chunked) and return ``(status, body)``."""
    head = await reader.readuntil(b"\r\n\r\n")
    lines = head.split(b"\r\n")
    status = int(lines[0].split()[1])
    headers = {}
    for line in lines[1:]:
        if b":" in line:
            name, _, value = line.partition(b":")
            headers[name.strip().lower()] = value.strip()
    if headers.get(b"transfer-encoding", b"").lower() == b"chunked":
        chunks = []
        while True:
            size = int((await reader.readuntil(b"\r\n")).strip().split(b";")[0], 16)
            if size == 0:
                await reader.readuntil(b"\r\n")
                break
            chunks.append(await reader.readexactly(size))
            await reader.readexactly(2)
        return status, b"".join(chunks)
    length = int(headers.get(b"content-length", b"0"))
    return status, await reader.readexactly(length)


async def _python_load(
    host: str, port: int, token: str, scenario: Scenario, connections: int, duration_s: float, max_requests: int
) -> tuple[list[float], int, int, float]:
    """Drive ``connections`` keep-alive connections; return latencies, non-2xx, socket errors, wall time."""
    latencies: list[float] = []
    counters = {"non_2xx": 0, "errors": 0, "sent": 0}
    deadline = time.perf_counter() + duration_s

    async def connection() -> None:
        try:
            reader, writer = await asyncio.open_connection(host, port)
        except OSError:
            counters["errors"] += 1
            return
        try:
            while time.perf_counter() < deadline and counters["sent"] < max_requests:
                counters["sent"] += 1
                method, path, body = scenario.next_request()
                head = f"{method} {path} HTTP/1.1\r\nHost: {host}:{port}\r\nAuthorization: Bearer {token}\r\n"
                if body is not None:
                    head += f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n"
                started = time.perf_counter()
                writer.write(head.encode() + b"\r\n" + (body or b""))
                status, payload = await asyncio.wait_for(_read_response(reader), timeout=5)
                latencies.append((time.perf_counter() - started) * 1000)
                if status >= 400:
                    counters["non_2xx"] += 1
                scenario.on_response(status, payload)
        except (TimeoutError, OSError, asyncio.IncompleteReadError, ValueError):
            counters["errors"] += 1
        finally:
            writer.close()

    started = time.perf_counter()
    await asyncio.gather(*(connection() for _ in range(connections)))
    return latencies, counters["non_2xx"], counters["errors"], time.perf_counter() - started


def run_python_load(
    *,
    base_url: str,
    token: str,
    scenario: Scenario,
    connections: int,
    duration_s: float,
    max_requests: int,
    scenario_name: str,
    server: str,
) -> LoadResult:
    """Run the asyncio fallback load generator (used when wrk is missing; far slower than wrk).

    Its numbers measure the generator as much as the server: the harness labels them ``python``.
    """
    parts = urlsplit(base_url)
    host, port = parts.hostname or "127.0.0.1", parts.port or 80
    if host not in {"127.0.0.1", "localhost", "::1"}:
        raise RuntimeError(f"refusing to load a non-loopback host: {host}")
    latencies, non_2xx, errors, wall = asyncio.run(
        _python_load(host, port, token, scenario, connections, duration_s, max_requests)
    )
    latencies.sort()
    return LoadResult(
        scenario=scenario_name,
        server=server,
        connections=connections,
        tool="python",
        requests=len(latencies),
        duration_s=wall,
        rps=len(latencies) / wall if wall else 0.0,
        p50_ms=percentile(latencies, 50),
        p90_ms=percentile(latencies, 90),
        p99_ms=percentile(latencies, 99),
        mean_ms=sum(latencies) / len(latencies) if latencies else 0.0,
        max_ms=latencies[-1] if latencies else 0.0,
        errors=errors + non_2xx,
        non_2xx=non_2xx,
    )
