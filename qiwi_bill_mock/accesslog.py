"""The access log: one line per request on the `qiwi_bill_mock.access` logger, and the CLI's cheap handler for it.

The line is `<traceId> <METHOD> <path> <status> <ms>ms`, then QIWI's `errorCode` for an error answer (the path
without its query: no keys in logs). In a
user's process it is an ordinary log record, so `caplog` and any logging setup see it. The CLI attaches
`BatchedLineHandler`, and while that handler is the logger's only output, `log_access` hands it the line
directly, without a `LogRecord`.

Why: through the root handler the line cost about 25 us of server CPU per request, a quarter of a GET
(LogRecord fields, the Formatter, one write and one flush per line; `python -m bench.profile get` and the server
CPU per request of `make bench`). The record alone is still about 5 us.
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import IO

__all__ = ["LOG_FORMAT", "BatchedLineHandler", "access_logger", "log_access"]

#: The CLI's log format (every logger); `BatchedLineHandler` writes exactly this text.
LOG_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"

access_logger = logging.getLogger("qiwi_bill_mock.access")

_ACCESS_FORMAT = "%s %s %s %s %.2fms"
_ERROR_FORMAT = _ACCESS_FORMAT + " %s"


class BatchedLineHandler(logging.StreamHandler):  # type: ignore[type-arg]
    """`LOG_FORMAT` lines, with the timestamp formatted once per second, written once per event-loop pass.

    The lines of one pass of the event loop go out in one write at the end of that pass: several lines per
    write under load, at once when idle. Off the event loop, each line is written at once.
    """

    def __init__(self, stream: IO[str]) -> None:
        super().__init__(stream)
        self.setFormatter(logging.Formatter(LOG_FORMAT))
        self._lines: list[str] = []
        self._second = -1
        self._stamp = ""
        self._scheduled = False

    def line(self, created: float, levelname: str, name: str, message: str) -> None:
        """Queue one line as `LOG_FORMAT` prints it."""
        second = int(created)
        if second != self._second:
            self._second, self._stamp = second, time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(second))
        msecs = int((created - second) * 1000)
        self._lines.append(f"{self._stamp},{msecs:03d} {levelname} {name}: {message}\n")
        if self._scheduled:
            return
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:  # not on the event loop: write now
            self.flush()
            return
        self._scheduled = True
        loop.call_soon(self.flush)

    def emit(self, record: logging.LogRecord) -> None:
        try:
            if record.exc_info or record.stack_info:
                self._lines.append(self.format(record) + "\n")
                self.flush()
            else:
                self.line(record.created, record.levelname, record.name, record.getMessage())
        except Exception:
            self.handleError(record)

    def flush(self) -> None:
        self.acquire()
        try:
            self._scheduled = False
            if self._lines:
                self.stream.write("".join(self._lines))
                self._lines.clear()
                self.stream.flush()
        finally:
            self.release()


def log_access(
    trace_id: str, method: str, path: str, status: int | str, elapsed_ms: float, error_code: str | None = None
) -> None:
    """Log one request's line (nothing when the access logger is off); `error_code` ends an error's line."""
    logger = access_logger
    if not logger.isEnabledFor(logging.INFO):
        return
    handlers = logger.handlers
    if (
        len(handlers) == 1
        and type(handlers[0]) is BatchedLineHandler
        and not logger.propagate
        and not logger.filters
        and not handlers[0].filters
        and handlers[0].level <= logging.INFO
    ):
        # The CLI's setup: the same text as the record would give, without building the record.
        message = _ACCESS_FORMAT % (trace_id, method, path, status, elapsed_ms)
        if error_code is not None:  # a 4xx/5xx answer only: the 200 path pays one comparison
            message += " " + error_code
        handlers[0].line(time.time(), "INFO", logger.name, message)
        return
    # makeRecord + handle skips findCaller's stack walk.
    args: tuple[object, ...] = (trace_id, method, path, status, elapsed_ms)
    text = _ACCESS_FORMAT
    if error_code is not None:
        text, args = _ERROR_FORMAT, (*args, error_code)
    logger.handle(logger.makeRecord(logger.name, logging.INFO, __file__, 0, text, args, None))
