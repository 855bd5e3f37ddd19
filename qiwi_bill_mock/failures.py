"""Storage failures, counted and logged one line each under a rate limit (issue 16, item 12).

A full disk made every failing write log a full traceback (521 in one run). `StorageFailures.record` logs one
line per failure instead (where it happened, the exception's type and message), at most `burst` lines per
`window` seconds; failures beyond that are only counted, and the next line that is logged says how many were
left out. The total is what `/_mock/health` reports as `storageFailures`.
"""

from __future__ import annotations

import logging
import sqlite3
import threading
import time
from collections.abc import Callable

__all__ = ["StorageFailures", "is_storage_failure"]

logger = logging.getLogger("qiwi_bill_mock.storage")


def is_storage_failure(exc: BaseException) -> bool:
    """Whether `exc` is the store failing (SQLite or the file system), not a bug of the mock."""
    return isinstance(exc, sqlite3.Error | OSError)


class StorageFailures:
    """A thread-safe failure counter with a rate-limited one-line log.

    Args:
        burst: Lines logged at most per `window`.
        window: Seconds.
        clock: Monotonic seconds (tests).
    """

    def __init__(self, *, burst: int = 5, window: float = 10.0, clock: Callable[[], float] = time.monotonic) -> None:
        self.count = 0
        self._burst = burst
        self._window = window
        self._clock = clock
        self._window_start = float("-inf")
        self._logged = 0
        self._left_out = 0
        self._lock = threading.Lock()

    def record(self, where: str, exc: BaseException) -> None:
        """Count one failure of `where` and log it in one line unless the rate limit is reached."""
        with self._lock:
            self.count += 1
            now = self._clock()
            if now - self._window_start >= self._window:
                self._window_start, self._logged = now, 0
            if self._logged >= self._burst:
                self._left_out += 1
                return
            self._logged += 1
            left_out, self._left_out = self._left_out, 0
            number = self.count
        note = f" ({left_out} more not logged)" if left_out else ""
        message = " ".join(str(exc).split())[:300]
        logger.error("storage failure #%d in %s: %s: %s%s", number, where, type(exc).__name__, message, note)
