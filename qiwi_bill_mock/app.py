"""The mock as an ASGI app: ONE routing path and ONE trace path for the API, the `/_mock/` controls and the pages.

`create_app()` returns a `MockApp`: an honest plain ASGI app, not a Starlette subclass. Every request takes the
same way: a traceId, then the routes (QIWI's operations and the controls matched on the raw path, so `%2F`
inside an id is part of the id; then the payment pages on a Starlette router; then QIWI's JSON 404), then the
answer with `X-Trace-Id`, the access-log line and the request listeners. Any `MockError` a handler raises becomes
QIWI's body in `errors.render_error`, the one renderer; an unexpected exception becomes QIWI's 500.

Why not Starlette's middleware stack: its error middleware, exception middleware and router cost a GET
several coroutine calls per message; the API skipped them before (and a user's `add_middleware` then never saw
an API request). To add ASGI middleware, wrap the app: `app = SomeMiddleware(create_app(...))`; every request
passes through it. `MockApp.add_middleware` still works (deprecated) and wraps the whole app the same way.

```python
from qiwi_bill_mock import Settings, Merchant, create_app

app = create_app(Settings(merchants=[Merchant(site_id="270305", secret_key="sk", public_key="pk")]))
```
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
import warnings
from collections.abc import Awaitable, Callable, Mapping
from datetime import datetime
from typing import Any
from urllib.parse import unquote_to_bytes

import httpx
from starlette.datastructures import State
from starlette.exceptions import HTTPException
from starlette.routing import Router
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from qiwi_bill_mock import errors
from qiwi_bill_mock.accesslog import log_access
from qiwi_bill_mock.api import BadParam, Call, ClientGone, ConnectionDropped, Handlers, JsonAnswer
from qiwi_bill_mock.context import TRACE_SCOPE_KEY, MockContext, RequestRecord
from qiwi_bill_mock.errors import MockError, render_error
from qiwi_bill_mock.failures import is_storage_failure
from qiwi_bill_mock.pages import page_routes
from qiwi_bill_mock.settings import Settings

__all__ = ["MockApp", "create_app"]

logger = logging.getLogger("qiwi_bill_mock")

Handler = Callable[[Call], Awaitable[JsonAnswer]]

_API = "/partner/bill/v1/bills"
_FAST_PREFIXES = (b"/partner/", b"/_mock/")


def _segments(scope: Scope) -> list[bytes]:
    raw: bytes = scope.get("raw_path") or scope["path"].encode("utf-8")
    # Keep empty segments: `/bills/` is an empty billId (400), not an unknown URL.
    return raw.split(b"?", 1)[0].removeprefix(b"/").split(b"/")


class _RawRoute:
    """One path, every method: matches on the raw (still percent-encoded) path.

    One route per path keeps the `Allow` header of a 405 complete (schemathesis ST205).
    """

    def __init__(self, pattern: str, methods: Mapping[str, tuple[Handler, str]]) -> None:
        # (parameter name, None) or (None, literal bytes) per path segment.
        self.template = tuple(
            (part[1:-1], None) if part.startswith("{") else (None, part.encode())
            for part in pattern.strip("/").split("/")
        )
        self.methods = dict(methods)
        if "GET" in self.methods:
            self.methods["HEAD"] = self.methods["GET"]
        self.allow = ", ".join(sorted(self.methods))

    def match(self, segments: list[bytes]) -> dict[str, Any] | None:
        """The path parameters when the raw path's `segments` fit this route, else `None`."""
        if len(segments) != len(self.template):
            return None
        params: dict[str, Any] = {}
        for (name, literal), segment in zip(self.template, segments, strict=True):
            if name is None:
                if literal != segment:
                    return None
                continue
            try:
                params[name] = (unquote_to_bytes(segment) if b"%" in segment else segment).decode("utf-8")
            except UnicodeDecodeError:
                params[name] = BadParam()
        return params


def _routes(api: Handlers) -> list[_RawRoute]:
    bill = f"{_API}/{{billId}}"
    return [
        _RawRoute(bill, {"PUT": (api.create_bill, "createBill"), "GET": (api.get_bill, "getBill")}),
        _RawRoute(f"{bill}/reject", {"POST": (api.reject_bill, "rejectBill")}),
        _RawRoute(
            f"{bill}/refunds/{{refundId}}",
            {"PUT": (api.create_refund, "createRefund"), "GET": (api.get_refund, "getRefund")},
        ),
        _RawRoute("/_mock/health", {"GET": (api.health, "_mock.health")}),
        _RawRoute("/_mock/bills/{billId}/pay", {"POST": (api.pay, "_mock.pay")}),
        _RawRoute("/_mock/bills/{billId}/expire", {"POST": (api.expire, "_mock.expire")}),
        _RawRoute("/_mock/clock/advance", {"POST": (api.advance_clock, "_mock.clock.advance")}),
        _RawRoute("/_mock/notifications", {"GET": (api.notifications, "_mock.notifications")}),
        _RawRoute("/_mock/reset", {"POST": (api.reset, "_mock.reset")}),
    ]


async def _url_not_found(_scope: Scope, _receive: Receive, _send: Send) -> None:
    raise MockError(errors.URL_NOT_FOUND)


async def _sweep(ctx: MockContext) -> None:
    """Expire overdue bills in the background (reads also expire them lazily)."""
    while True:
        await asyncio.sleep(ctx.settings.sweep_interval)
        try:
            await ctx.service.sweep_expired_in_chunks()
        except Exception as exc:  # a locked database must not stop the sweeper
            if is_storage_failure(exc):
                ctx.service.failures.record("the expiry sweep", exc)
            else:
                logger.exception("expiry sweep failed")


class MockApp:
    """The mock's ASGI app (see the module docstring). `app.state.ctx` is its `MockContext`.

    Its lifespan runs the notifier and the expiry sweeper; without the lifespan,
    `await app.state.ctx.notifier.drain()` delivers.
    """

    def __init__(self, ctx: MockContext) -> None:
        self.state = State()
        self.state.ctx = ctx
        self._ctx = ctx
        self._handlers = Handlers(ctx)
        self._routes = _routes(self._handlers)
        self._pages = Router(routes=list(page_routes(ctx)), default=_url_not_found)
        self._wrapped: ASGIApp | None = None  # the deprecated add_middleware's stack
        self._sweeper: asyncio.Task[None] | None = None

    def add_middleware(self, middleware_class: Callable[..., ASGIApp], *args: Any, **kwargs: Any) -> None:
        """Deprecated: wrap the app instead (`app = Middleware(app)`). Wraps every request, API included."""
        warnings.warn(
            "MockApp.add_middleware is deprecated: wrap the ASGI app instead (app = YourMiddleware(app))",
            DeprecationWarning,
            stacklevel=2,
        )
        self._wrapped = middleware_class(self._wrapped or self._dispatch, *args, **kwargs)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        scope["app"] = self
        if self._wrapped is not None:
            await self._wrapped(scope, receive, send)
        elif scope["type"] == "http":  # the hot path: one coroutine call less than through _dispatch
            await self._serve(scope, receive, send)
        else:
            await self._dispatch(scope, receive, send)

    async def _dispatch(self, scope: Scope, receive: Receive, send: Send) -> None:
        kind = scope["type"]
        if kind == "http":
            await self._serve(scope, receive, send)
        elif kind == "lifespan":
            await self._lifespan(receive, send)
        else:  # websocket: the mock has none
            await send({"type": "websocket.close", "code": 1000})

    async def _lifespan(self, receive: Receive, send: Send) -> None:
        ctx = self._ctx
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                ctx.notifier.start()
                self._sweeper = asyncio.create_task(_sweep(ctx), name="qiwi-bill-mock-sweeper")
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                if self._sweeper is not None:
                    self._sweeper.cancel()
                    with contextlib.suppress(asyncio.CancelledError):
                        await self._sweeper
                await ctx.notifier.stop()
                ctx.service.checkpoint()
                await send({"type": "lifespan.shutdown.complete"})
                return

    async def _serve(self, scope: Scope, receive: Receive, send: Send) -> None:
        """THE trace path: traceId, route, answer with `X-Trace-Id`, one access-log line, the request listeners."""
        ctx = self._ctx
        trace_id = ctx.new_trace_id()
        scope[TRACE_SCOPE_KEY] = trace_id
        started = time.perf_counter()
        trace = (b"x-trace-id", trace_id.encode("latin-1", "replace"))
        status = 0
        error_code: str | None = None
        call: Call | None = None
        operation: str | None = None

        async def send_with_trace(message: Message) -> None:  # the pages' Starlette responses
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                message = {**message, "headers": [*message.get("headers", ()), trace]}
            await send(message)

        try:
            try:
                route, params = self._route(scope)
                if route is None:
                    await self._pages(scope, receive, send_with_trace)
                else:
                    call = Call(scope, receive, params)
                    handler = route.methods.get(scope["method"])
                    if handler is None:
                        raise MockError(errors.METHOD_NOT_SUPPORTED, headers={"Allow": route.allow})
                    operation = handler[1]
                    if ctx.settings.faults and not operation.startswith("_mock."):
                        await self._handlers.inject_fault(operation, send)
                    answer = await handler[0](call)
                    status = answer.status_code
                    await answer.send(send, trace)
            except MockError as exc:
                error_code = await self._send_error(exc, trace, trace_id, call, send)
                status = exc.kind.status
            except HTTPException as exc:  # the pages' router: a method it does not serve
                kind = {404: errors.URL_NOT_FOUND, 405: errors.METHOD_NOT_SUPPORTED}.get(exc.status_code)
                error = MockError(kind or errors.INTERNAL, headers=exc.headers)
                error_code = await self._send_error(error, trace, trace_id, call, send)
                status = error.kind.status
        except ClientGone:  # nobody to answer
            status = 0
        except ConnectionDropped:
            status = 0
            raise
        except Exception as exc:
            if status:
                raise
            if is_storage_failure(exc):  # a full disk: one line per failure, rate-limited, no traceback flood
                ctx.service.failures.record(f"{scope['method']} {scope['path'][:100]} (traceId {trace_id})", exc)
            else:
                logger.exception("unhandled error (traceId %s)", trace_id)
            error_code = await self._send_error(MockError(errors.INTERNAL), trace, trace_id, call, send)
            status = 500
        finally:
            raw = scope.get("raw_path") or scope["path"].encode()
            path = raw.split(b"?", 1)[0].decode("latin-1")
            elapsed_ms = (time.perf_counter() - started) * 1000
            log_access(trace_id, scope["method"], path, status or "dropped", elapsed_ms, error_code)
            if ctx.request_listeners:
                record = RequestRecord(
                    trace_id=trace_id,
                    method=scope["method"],
                    path=path,
                    operation=operation,
                    site_id=call.site_id if call is not None else None,
                    status=status,
                    error_code=error_code,
                    elapsed_ms=elapsed_ms,
                )
                for listener in list(ctx.request_listeners):
                    listener(record)

    def _route(self, scope: Scope) -> tuple[_RawRoute | None, dict[str, Any]]:
        raw = scope.get("raw_path") or scope["path"].encode("utf-8")
        if raw.startswith(_FAST_PREFIXES):
            segments = _segments(scope)
            for route in self._routes:
                params = route.match(segments)
                if params is not None:
                    return route, params
        return None, {}

    async def _send_error(
        self, error: MockError, trace: tuple[bytes, bytes], trace_id: str, call: Call | None, send: Send
    ) -> str:
        settings = self._ctx.settings
        service = self._ctx.service
        try:
            now_us = service.now_us(call.site_id if call is not None else None)
        except Exception:  # a broken store (its clock offset) must not turn QIWI's 500 into a plain-text one
            now_us = service.clock_us()
        rendered = render_error(
            error,
            trace_id=None if "no_trace_id" in settings.broken else trace_id,
            now_us=now_us,
            empty_unauthorized=settings.unauthorized_body == "empty",
        )
        headers = [*rendered.headers, trace]
        if call is not None:
            headers.append((b"cache-control", b"no-store"))
        await send({"type": "http.response.start", "status": rendered.status, "headers": headers})
        await send({"type": "http.response.body", "body": rendered.body})
        return rendered.code


def create_app(
    settings: Settings | None = None,
    *,
    clock: Callable[[], datetime] | None = None,
    id_factory: Callable[[], str] | None = None,
    notify_transport: httpx.AsyncBaseTransport | None = None,
) -> MockApp:
    """Build the mock as an ASGI app (in-process use: tests, other people's test suites).

    Args:
        settings: Merchants and behaviour; default `Settings()`, one demo merchant with random keys
            (read them from `app.state.ctx.settings.merchants`).
        clock: Returns the current aware datetime (default: the system clock); a merchant's
            `/_mock/clock/advance` adds to it for that merchant.
        id_factory: Returns unique ids, used for invoice uids (`payUrl`) and traceIds; default random.
        notify_transport: httpx transport for notification delivery (tests); default the network.

    Returns:
        The plain ASGI app; `app.state.ctx` is its `MockContext`.
    """
    settings = settings if settings is not None else Settings()
    return MockApp(MockContext(settings, clock=clock, id_factory=id_factory, notify_transport=notify_transport))
