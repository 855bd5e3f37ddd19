"""In-process httpx transports over the mock's ASGI app: no socket, the app's lifespan running.

`httpx.ASGITransport` is async-only and runs no lifespan, so without help the mock's notifier and expiry
sweeper never start (notifications go out only if a test calls an internal `drain()`). Here:

- `AppRunner` runs an ASGI app on an event loop in a background thread, inside `asgi_lifespan.LifespanManager`
  (startup on `start()`, shutdown on `close()`), and forwards requests to it from any thread or event loop.
- One app has one runner: every `MockTransport(app)` of the same app shares it (the first one starts it, closing
  the last one stops it). Two lifespans of one app on two loops would each start a notifier on shared state.
- `MockTransport` is ONE transport for both httpx flavours (`httpx.BaseTransport` and `httpx.AsyncBaseTransport`),
  so a single `qiwi_bill.make_client(..., httpx_args={"transport": transport})` serves the generated operations'
  `sync()` and `asyncio()` alike. Every request runs on the runner's loop, whichever loop or thread sent it: the
  app's state (group commit, notifier) lives on one loop, and pytest-asyncio's per-test loops cannot strand it.

```python
from qiwi_bill_mock import create_app
from qiwi_bill_mock.kit.transports import MockTransport

with MockTransport(create_app()) as transport:
    client = httpx.Client(transport=transport, base_url="https://api.qiwi.com")
```
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import threading
import weakref
from collections.abc import Coroutine
from typing import Any, TypeVar

import httpx
from asgi_lifespan import LifespanManager

__all__ = ["AppRunner", "MockTransport"]

T = TypeVar("T")

# What the app sees as the peer of an in-process request (the access log prints it).
_CLIENT = ("127.0.0.1", 50000)


class AppRunner:
    """An ASGI app served on a background thread's event loop, lifespan included.

    Args:
        app: The ASGI app, e.g. `qiwi_bill_mock.create_app(settings)`.
        lifespan: Run the app's lifespan (its notifier and expiry sweeper). `False` only for a caller that runs
            the lifespan itself elsewhere, e.g. schemathesis driving the same app.
        startup_timeout: Seconds the lifespan startup may take.
        shutdown_timeout: Seconds the lifespan shutdown may take.
    """

    def __init__(
        self, app: Any, *, lifespan: bool = True, startup_timeout: float = 20.0, shutdown_timeout: float = 20.0
    ) -> None:
        self.app = app
        self.lifespan = lifespan
        self._startup_timeout = startup_timeout
        self._shutdown_timeout = shutdown_timeout
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._stop: asyncio.Event | None = None
        self._served: concurrent.futures.Future[None] | None = None
        self._asgi: httpx.ASGITransport | None = None
        self._lock = threading.Lock()

    @property
    def running(self) -> bool:
        """Whether the app's lifespan has started and not yet stopped."""
        return self._asgi is not None

    @property
    def loop(self) -> asyncio.AbstractEventLoop:
        """The event loop the app runs on (started on first use)."""
        self.start()
        assert self._loop is not None
        return self._loop

    def start(self) -> AppRunner:
        """Start the thread and the app's lifespan (idempotent); returns `self`."""
        with self._lock:
            if self._asgi is not None:
                return self
            loop = asyncio.new_event_loop()
            thread = threading.Thread(target=loop.run_forever, daemon=True, name="qiwi-mock-app")
            thread.start()
            started: concurrent.futures.Future[httpx.ASGITransport] = concurrent.futures.Future()
            self._served = asyncio.run_coroutine_threadsafe(self._serve(started), loop)
            try:
                self._asgi = started.result(self._startup_timeout + 5)
            except Exception as exc:
                loop.call_soon_threadsafe(loop.stop)
                thread.join(5)
                loop.close()
                # asgi-lifespan waits out its timeout on `lifespan.startup.failed`: say what happened.
                raise RuntimeError(f"the mock app's lifespan did not start: {exc!r}") from exc
            self._loop, self._thread = loop, thread
            return self

    async def _serve(self, started: concurrent.futures.Future[httpx.ASGITransport]) -> None:
        # One task holds the lifespan from startup to shutdown: asgi-lifespan's task group must be entered and
        # left by the same task.
        self._stop = asyncio.Event()
        if not self.lifespan:
            started.set_result(httpx.ASGITransport(app=self.app, client=_CLIENT))
            await self._stop.wait()
            return
        try:
            async with LifespanManager(
                self.app, startup_timeout=self._startup_timeout, shutdown_timeout=self._shutdown_timeout
            ) as manager:
                started.set_result(httpx.ASGITransport(app=manager.app, client=_CLIENT))
                await self._stop.wait()
        except BaseException as exc:
            if not started.done():
                started.set_exception(exc)
            raise

    def close(self) -> None:
        """Shut the app's lifespan down and stop the thread (idempotent)."""
        with self._lock:
            loop, thread, served = self._loop, self._thread, self._served
            if loop is None or thread is None or served is None:
                return
            self._loop = self._thread = self._served = self._asgi = None
            assert self._stop is not None
            loop.call_soon_threadsafe(self._stop.set)
            try:
                served.result(self._shutdown_timeout + 5)
            finally:
                loop.call_soon_threadsafe(loop.stop)
                thread.join(10)
                loop.close()

    def call(self, coroutine: Coroutine[Any, Any, T]) -> T:
        """Run `coroutine` on the app's loop and wait for its result (from any thread but the loop's own)."""
        loop = self.loop
        if threading.current_thread() is self._thread:
            coroutine.close()
            raise RuntimeError("a blocking call into the mock from its own event loop would deadlock: use async")
        return asyncio.run_coroutine_threadsafe(coroutine, loop).result()

    async def acall(self, coroutine: Coroutine[Any, Any, T]) -> T:
        """Run `coroutine` on the app's loop and await its result from the caller's loop."""
        loop = self.loop
        if asyncio.get_running_loop() is loop:
            return await coroutine
        return await asyncio.wrap_future(asyncio.run_coroutine_threadsafe(coroutine, loop))

    async def send(self, request: httpx.Request, body: bytes) -> httpx.Response:
        """Send one request to the app (on the app's loop); the answer is read in full."""
        asgi = self._asgi
        if asgi is None:
            raise RuntimeError("the mock app is not running")
        forwarded = httpx.Request(request.method, request.url, headers=request.headers, content=body)
        try:
            response = await asgi.handle_async_request(forwarded)
            content = await response.aread()
        except Exception as exc:
            # The mock answers every error itself (QIWI's 500 body); an exception here is an answer it aborted on
            # purpose (fault injection's dropped connection). Over TCP a client sees the connection close.
            raise httpx.RemoteProtocolError(f"the mock dropped the connection ({exc!r})", request=request) from exc
        return httpx.Response(response.status_code, headers=response.headers.raw, content=content, request=request)

    def __enter__(self) -> AppRunner:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.close()


# app -> {lifespan flag: (its runner, how many transports hold it)}
_shared: weakref.WeakKeyDictionary[Any, dict[bool, tuple[AppRunner, int]]] = weakref.WeakKeyDictionary()
_shared_lock = threading.Lock()


def _acquire(app: Any, lifespan: bool) -> AppRunner:
    with _shared_lock:
        runners = _shared.setdefault(app, {})
        runner, users = runners.get(lifespan, (None, 0))
        if runner is None:
            runner = AppRunner(app, lifespan=lifespan)
        runners[lifespan] = (runner, users + 1)
        return runner


def _release(app: Any, lifespan: bool) -> None:
    with _shared_lock:
        runners = _shared.get(app, {})
        runner, users = runners.get(lifespan, (None, 0))
        if runner is None:
            return
        if users > 1:
            runners[lifespan] = (runner, users - 1)
            return
        del runners[lifespan]
    runner.close()


class MockTransport(httpx.BaseTransport, httpx.AsyncBaseTransport):
    """A sync AND async httpx transport that hands every request to the mock app, in-process.

    Args:
        app: An ASGI app: the transport shares the app's one `AppRunner` with every other `MockTransport` of the
            same app (started on first use, stopped when the last of them closes). Or an `AppRunner` you manage
            (left running on `close()`).
        lifespan: With an app: run its lifespan (default). `False` when something else runs it (schemathesis):
            then requests still run on a loop of their own, but no notifier or sweeper is started here.
    """

    def __init__(self, app: Any, *, lifespan: bool = True) -> None:
        self._app: Any = None if isinstance(app, AppRunner) else app
        self._lifespan = lifespan
        self.runner: AppRunner = app if self._app is None else _acquire(app, lifespan)
        self._held = self._app is not None
        self._lock = threading.Lock()

    def _running(self) -> AppRunner:
        # Used again after close() (one transport handed to two clients in turn): take the app's runner again.
        with self._lock:
            if self._app is not None and not self._held:
                self.runner, self._held = _acquire(self._app, self._lifespan), True
            return self.runner

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        """Send a request from synchronous code (`httpx.Client`)."""
        body = request.read()
        runner = self._running()
        return runner.call(runner.send(request, body))

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        """Send a request from asynchronous code (`httpx.AsyncClient`)."""
        body = await request.aread()
        runner = self._running()
        return await runner.acall(runner.send(request, body))

    def close(self) -> None:
        """Let go of the app; the last transport of an app stops it (an `httpx.Client` calls this on close)."""
        with self._lock:
            held, self._held = self._held, False
        if held:
            _release(self._app, self._lifespan)

    async def aclose(self) -> None:
        """`close()` for an `httpx.AsyncClient`, off the caller's event loop (stopping the app waits)."""
        await asyncio.to_thread(self.close)

    def __enter__(self) -> MockTransport:
        # httpx.Client.__enter__ calls this: start the app now, on the runner this transport holds.
        self._running().start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
