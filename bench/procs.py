"""Start, watch and stop the server processes of a benchmark run (all on 127.0.0.1)."""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from types import TracebackType

import httpx

__all__ = ["ServerProcess", "free_port", "say", "tree_cpu_seconds", "tree_peak_rss_bytes"]

_LISTEN = re.compile(r"listening on (http://[0-9.]+:\d+)")


def say(message: str) -> None:
    """Print one progress line of the harness (flushed: the runs take a while)."""
    sys.stdout.write(message + "\n")
    sys.stdout.flush()


def free_port() -> int:
    """Return a TCP port on 127.0.0.1 that was free a moment ago."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _children(pid: int) -> list[int]:
    """Return the direct children of ``pid`` (Linux ``/proc``), empty when unknown."""
    found: list[int] = []
    for task in Path(f"/proc/{pid}/task").glob("*"):
        try:
            found.extend(int(c) for c in (task / "children").read_text().split())
        except OSError:
            continue
    return found


def _status_kib(pid: int, field: str) -> int:
    """Return one ``kB`` field of ``/proc/PID/status`` (``VmHWM``, ``VmRSS``), 0 when unknown."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith(field + ":"):
                return int(line.split()[1])
    except OSError:
        return 0
    return 0


def _tree(pid: int) -> Iterator[int]:
    """``pid`` and all its live descendants, each once."""
    stack, seen = [pid], set()
    while stack:
        current = stack.pop()
        if current in seen:
            continue
        seen.add(current)
        yield current
        stack.extend(_children(current))


def tree_peak_rss_bytes(pid: int) -> int:
    """Return the summed peak RSS (``VmHWM``) of ``pid`` and all its descendants, in bytes."""
    return sum(_status_kib(current, "VmHWM") for current in _tree(pid)) * 1024


def _cpu_ticks(pid: int) -> int:
    """Return utime + stime of ``pid`` (all its threads) in clock ticks, 0 when unknown."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return 0
    # The command name (field 2) may contain spaces: fields after its closing parenthesis are fixed.
    fields = stat[stat.rindex(")") + 2 :].split()
    return int(fields[11]) + int(fields[12])


def tree_cpu_seconds(pid: int) -> float:
    """Return the CPU time (user + system) used so far by ``pid`` and its live descendants."""
    return sum(_cpu_ticks(current) for current in _tree(pid)) / os.sysconf("SC_CLK_TCK")


class ServerProcess:
    """A server started for the benchmark, stopped (with its whole process group) on exit.

    The server's output goes to a log file; its base URL comes from the first
    ``listening on http://HOST:PORT`` line there, or from a port chosen beforehand.
    """

    def __init__(
        self,
        name: str,
        argv: list[str],
        *,
        log_path: Path,
        health_path: str,
        port: int | None = None,
        env: dict[str, str] | None = None,
        cwd: Path | None = None,
        stop_signal: int = signal.SIGTERM,
    ) -> None:
        """Describe the server; nothing starts before :meth:`start`.

        Args:
            name: Short name (``mock``, ``hello``, ``prism``).
            argv: The command line.
            log_path: Where the server's stdout and stderr go.
            health_path: A path that answers once the server is ready (any HTTP status counts).
            port: The port passed in ``argv``; None when the server prints its own address.
            env: Extra environment variables.
            cwd: Working directory.
            stop_signal: The first signal :meth:`stop` sends (SIGINT lets cProfile write its data).
        """
        self.name = name
        self.argv = argv
        self.log_path = log_path
        self.health_path = health_path
        self.port = port
        self.env = env
        self.cwd = cwd
        self.stop_signal = stop_signal
        self.base_url = f"http://127.0.0.1:{port}" if port else ""
        self._proc: subprocess.Popen[bytes] | None = None

    @property
    def pid(self) -> int:
        """The server's process id (raises if it was not started)."""
        if self._proc is None:
            raise RuntimeError(f"{self.name} is not running")
        return self._proc.pid

    def start(self, timeout_s: float = 60.0) -> str:
        """Start the server and wait until it answers; return its base URL.

        Raises:
            RuntimeError: If it exits or does not answer within ``timeout_s`` (it is stopped then).
        """
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        log = self.log_path.open("wb")
        env = {**os.environ, **(self.env or {})}
        self._proc = subprocess.Popen(
            self.argv, stdout=log, stderr=subprocess.STDOUT, env=env, cwd=self.cwd, start_new_session=True
        )
        log.close()
        deadline = time.monotonic() + timeout_s
        try:
            while time.monotonic() < deadline:
                if self._proc.poll() is not None:
                    raise RuntimeError(f"{self.name} exited with {self._proc.returncode}: {self.log_tail()}")
                if not self.base_url:
                    found = _LISTEN.search(self.log_path.read_text(errors="replace"))
                    if found:
                        self.base_url = found.group(1)
                if self.base_url and self._answers():
                    return self.base_url
                time.sleep(0.1)
            raise RuntimeError(f"{self.name} did not answer within {timeout_s:.0f} s: {self.log_tail()}")
        except BaseException:
            self.stop()
            raise

    def _answers(self) -> bool:
        """Return True once the health path gives any HTTP answer."""
        try:
            httpx.get(self.base_url + self.health_path, timeout=1.0)
        except httpx.HTTPError:
            return False
        return True

    def log_tail(self, chars: int = 800) -> str:
        """Return the end of the server's log."""
        try:
            return self.log_path.read_text(errors="replace")[-chars:].strip()
        except OSError:
            return ""

    def peak_rss_bytes(self) -> int:
        """Return the peak RSS of the server's process tree so far."""
        return tree_peak_rss_bytes(self.pid) if self._proc and self._proc.poll() is None else 0

    def cpu_seconds(self) -> float:
        """Return the CPU time the server's process tree has used so far (0.0 when it is not running)."""
        return tree_cpu_seconds(self.pid) if self._proc and self._proc.poll() is None else 0.0

    def stop(self, timeout_s: float = 10.0) -> None:
        """Stop the server's process group: SIGTERM (or ``stop_signal``), then SIGKILL after ``timeout_s``."""
        proc, self._proc = self._proc, None
        if proc is None or proc.poll() is not None:
            return
        try:
            os.killpg(proc.pid, self.stop_signal)
        except ProcessLookupError:
            return
        try:
            proc.wait(timeout=timeout_s)
        except subprocess.TimeoutExpired:
            pass
        # Whatever is left of the group (a worker that ignored SIGTERM) is killed outright.
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            return
        proc.wait(timeout=timeout_s)

    def __enter__(self) -> ServerProcess:
        """Start the server."""
        self.start()
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        """Stop the server."""
        self.stop()
