"""The mock's ASGI app: QIWI's five operations, the `/_mock/` test controls, and the payment pages.

Each API handler reads auth → route → parse → validate → act → respond. Auth always comes first,
so a wrong key gets 401 whether or not the bill exists (no existence oracle), and another
merchant's bill is 404. Routing runs on the raw path, so `%2F` inside an id is part of the id
(the generated client quotes ids with `safe=""`). Every error is QIWI's JSON error body; every
response carries `X-Trace-Id`, the same traceId as the error body and the request's log line.

```python
from qiwi_bill_mock import Settings, Merchant, create_app

app = create_app(Settings(merchants=[Merchant(site_id="270305", secret_key="sk", public_key="pk")]))
```
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from datetime import datetime
from decimal import Decimal
from typing import Any
from urllib.parse import unquote_to_bytes

import httpx
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.requests import ClientDisconnect, Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Match, NoMatchFound
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from qiwi_bill_mock import errors
from qiwi_bill_mock.accesslog import log_access
from qiwi_bill_mock.context import TRACE_SCOPE_KEY, MockContext
from qiwi_bill_mock.errors import ErrorKind, error_response
from qiwi_bill_mock.settings import Merchant, Settings
from qiwi_bill_mock.store import (
    PAY_SOURCES,
    BillConflict,
    BillNotFound,
    DraftInvalid,
    IncorrectRefundAmount,
    RefundConflict,
    WrongBillStatus,
)
from qiwi_bill_mock.validation import (
    MAX_BODY_BYTES,
    RefundAmountNotPositive,
    RequestInvalid,
    check_json_content_type,
    draft_from_body,
    parse_json,
    refund_amount_from_body,
)
from qiwi_bill_mock.wire import dumps, format_timestamp, refund_to_wire, to_micros

__all__ = ["create_app"]

logger = logging.getLogger("qiwi_bill_mock")

Endpoint = Callable[[Request, dict[str, Any]], Awaitable["Response | _Json"]]

_API = "/partner/bill/v1/bills"


class _BadParam:
    """A path segment that is not valid UTF-8 once percent-decoded."""


class _ConnectionDropped(Exception):
    """Fault injection: abort the connection without an answer."""


def _segments(scope: Scope) -> list[bytes]:
    raw: bytes = scope.get("raw_path") or scope["path"].encode("utf-8")
    # Keep empty segments: `/bills/` is an empty billId (400), not an unknown URL.
    return raw.split(b"?", 1)[0].removeprefix(b"/").split(b"/")


class _RawRoute(BaseRoute):
    """One path, every method: matches on the raw (still percent-encoded) path, dispatches inside.

    One route per path keeps the `Allow` header of a 405 complete (schemathesis ST205).
    """

    def __init__(
        self, ctx: MockContext, pattern: str, methods: Mapping[str, Endpoint], *, operations: Mapping[str, str]
    ) -> None:
        self.ctx = ctx
        # (parameter name, None) or (None, literal bytes) per path segment.
        self.template = tuple(
            (part[1:-1], None) if part.startswith("{") else (None, part.encode())
            for part in pattern.strip("/").split("/")
        )
        self.methods = dict(methods)
        if "GET" in self.methods:
            self.methods["HEAD"] = self.methods["GET"]
        self.allow = ", ".join(sorted(self.methods))
        self.operations = dict(operations)

    def _params(self, scope: Scope) -> dict[str, Any] | None:
        return self.match(_segments(scope))

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
                params[name] = _BadParam()
        return params

    def matches(self, scope: Scope) -> tuple[Match, Scope]:
        if scope["type"] != "http":
            return Match.NONE, {}
        params = self._params(scope)
        if params is None:
            return Match.NONE, {}
        return Match.FULL, {"path_params": params}

    def url_path_for(self, name: str, /, **path_params: Any) -> Any:
        raise NoMatchFound(name, path_params)

    async def answer(self, scope: Scope, receive: Receive, send: Send) -> Answer | None:
        """This route's answer to the request (`None`: the client went away, or a fault dropped the connection)."""
        endpoint = self.methods.get(scope["method"])
        request = Request(scope, receive)
        ctx = self.ctx
        if endpoint is None:
            return _error(ctx, request, errors.METHOD_NOT_SUPPORTED, headers={"Allow": self.allow})
        if ctx.settings.faults:
            operation = self.operations.get(scope["method"])
            if operation is not None:
                fault = await _inject_fault(ctx, request, operation, send)
                if fault is not None:
                    return fault
        try:
            return await endpoint(request, scope["path_params"])
        except ClientDisconnect:
            return None

    async def handle(self, scope: Scope, receive: Receive, send: Send) -> None:
        response = await self.answer(scope, receive, send)
        if response is not None:
            await response(scope, receive, send)


class _CatchAll(BaseRoute):
    """Unknown URL: QIWI's JSON 404 (`http.url.not.found`), never Starlette's plain text."""

    def matches(self, scope: Scope) -> tuple[Match, Scope]:
        return (Match.FULL, {}) if scope["type"] == "http" else (Match.NONE, {})

    def url_path_for(self, name: str, /, **path_params: Any) -> Any:
        raise NoMatchFound(name, path_params)

    async def handle(self, scope: Scope, receive: Receive, send: Send) -> None:
        request = Request(scope, receive)
        await _error(scope["app"].state.ctx, request, errors.URL_NOT_FOUND)(scope, receive, send)


# -- helpers ----------------------------------------------------------------------------------


def _now_us(ctx: MockContext) -> int:
    return to_micros(ctx.now())


def _error(
    ctx: MockContext,
    request: Request,
    kind: ErrorKind,
    *,
    cause: Mapping[str, list[str]] | None = None,
    description: str | None = None,
    headers: Mapping[str, str] | None = None,
) -> Response:
    trace_id = None if "no_trace_id" in ctx.settings.broken else ctx.trace_id(request)
    empty = kind is errors.UNAUTHORIZED and ctx.settings.empty_unauthorized_body
    return error_response(
        kind,
        trace_id=trace_id,
        now_us=_now_us(ctx),
        cause=cause,
        description=description,
        headers=headers,
        empty=empty,
    )


class _Json:
    """A JSON answer sent as two raw ASGI messages (the hot path skips building a Starlette `Response`)."""

    __slots__ = ("body", "status_code")

    def __init__(self, body: bytes, status_code: int = 200) -> None:
        self.body = body
        self.status_code = status_code

    async def __call__(self, _scope: Scope, _receive: Receive, send: Send) -> None:
        await self.send(send)

    async def send(self, send: Send, *extra: tuple[bytes, bytes]) -> None:
        headers = [(b"content-type", b"application/json"), (b"content-length", b"%d" % len(self.body)), *extra]
        await send({"type": "http.response.start", "status": self.status_code, "headers": headers})
        await send({"type": "http.response.body", "body": self.body})


Answer = Response | _Json


def _json(body: Any, status_code: int = 200) -> _Json:
    return _Json(dumps(body), status_code)


async def _read_body(request: Request) -> bytes:
    """The body, refused as unreadable beyond `MAX_BODY_BYTES` (never buffered without limit).

    Reads the ASGI messages directly: `Request.stream()` is an async generator, a few microseconds per body.
    """
    receive = request.receive
    chunks: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        if message["type"] != "http.request":  # http.disconnect
            raise ClientDisconnect()
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > MAX_BODY_BYTES:
            raise RequestInvalid(conversion=True)
        chunks.append(chunk)
        if not message.get("more_body", False):
            return chunks[0] if len(chunks) == 1 else b"".join(chunks)


def _header(request: Request, name: bytes) -> str | None:
    """One request header, read from the scope (no `Headers` object on the hot path)."""
    key: bytes
    value: bytes
    for key, value in request.scope["headers"]:
        if key == name:
            return value.decode("latin-1")
    return None


def _invalid(ctx: MockContext, request: Request, exc: RequestInvalid) -> Response:
    if exc.conversion:
        return _error(ctx, request, errors.CONVERSION_FAILED)
    return _error(ctx, request, errors.VALIDATION, cause=exc.cause)


def _path_param(ctx: MockContext, name: str, value: Any) -> str:
    if isinstance(value, _BadParam):
        raise RequestInvalid(cause={name: ["must be valid UTF-8 once percent-decoded"]})
    ctx.validators.check_path(name, value)
    return str(value)


async def _inject_fault(ctx: MockContext, request: Request, operation: str, send: Send) -> Response | None:
    """Apply the configured faults of this operation: latency, then maybe 503 / 429 / a dropped connection."""
    rng: random.Random = request.app.state.fault_rng
    for fault in ctx.settings.faults:
        if fault.route not in ("*", operation):
            continue
        if fault.latency:
            await asyncio.sleep(fault.latency)
        roll = rng.random()
        if roll < fault.drop_rate:
            # Start an answer and abort it: the client sees the connection die mid-response.
            await send({"type": "http.response.start", "status": 503, "headers": []})
            raise _ConnectionDropped(operation)
        roll -= fault.drop_rate
        if roll < fault.error_rate:
            return _error(ctx, request, errors.SERVICE_UNAVAILABLE)
        roll -= fault.error_rate
        if roll < fault.throttle_rate:
            return _error(ctx, request, errors.TOO_MANY_REQUESTS, headers={"Retry-After": "1"})
    return None


# -- the API ----------------------------------------------------------------------------------


class _Api:
    """Handlers of the five operations and the `/_mock/` controls."""

    def __init__(self, ctx: MockContext) -> None:
        self.ctx = ctx
        self.store = ctx.store
        self.broken = ctx.settings.broken
        self._wire_cache: dict[tuple[str, str, int], bytes] = {}

    def _merchant(self, request: Request) -> Merchant | None:
        for name, value in request.scope["headers"]:
            if name == b"authorization":
                return self.ctx.authenticate(value.decode("latin-1"))
        return None

    def _unauthorized(self, request: Request) -> Response:
        return _error(self.ctx, request, errors.UNAUTHORIZED)

    async def create_bill(self, request: Request, params: dict[str, Any]) -> Answer:
        ctx = self.ctx
        # auth
        merchant = self._merchant(request)
        if merchant is None:
            return self._unauthorized(request)
        # parse + validate
        try:
            bill_id = _path_param(ctx, "billId", params["billId"])
            if not check_json_content_type(_header(request, b"content-type")):
                return _error(ctx, request, errors.UNSUPPORTED_MEDIA_TYPE)
            draft = draft_from_body(ctx.validators, parse_json(await _read_body(request)))
        except RequestInvalid as exc:
            return _invalid(ctx, request, exc)
        # act
        try:
            bill, _created = await ctx.write(lambda: self.store.create_bill(merchant.site_id, bill_id, draft))
        except DraftInvalid as exc:
            return _error(ctx, request, errors.VALIDATION, cause=exc.cause)
        except BillConflict:
            return _error(ctx, request, errors.ALREADY_EXISTS)
        # respond
        return _json(ctx.bill_json(bill), 201 if "wrong_status_code" in self.broken else 200)

    async def get_bill(self, request: Request, params: dict[str, Any]) -> Answer:
        ctx = self.ctx
        merchant = self._merchant(request)
        skip_auth = "skip_auth_on_get" in self.broken
        if merchant is None and not skip_auth:
            return self._unauthorized(request)
        try:
            bill_id = _path_param(ctx, "billId", params["billId"])
        except RequestInvalid as exc:
            return _invalid(ctx, request, exc)
        if skip_auth and merchant is None:
            bill = self.store.get_bill_any_merchant(bill_id)
            if bill is None:
                return _error(ctx, request, errors.INVOICE_NOT_FOUND)
            return _json(ctx.bill_json(bill))
        assert merchant is not None
        # A bill's wire form changes only with its status: answer repeated reads from a cache keyed by
        # (invoice uid, status, changedDateTime), so GET costs one narrow indexed SELECT.
        version = self.store.bill_version(merchant.site_id, bill_id)
        if version is None:
            return _error(ctx, request, errors.INVOICE_NOT_FOUND)
        body = self._wire_cache.get(version)
        if body is None:
            bill = self.store.get_bill(merchant.site_id, bill_id)
            if bill is None:  # reset by another request in between
                return _error(ctx, request, errors.INVOICE_NOT_FOUND)
            body = dumps(ctx.bill_json(bill))
            if len(self._wire_cache) >= 50_000:
                self._wire_cache.clear()
            self._wire_cache[(bill.invoice_uid, bill.status, bill.changed_us)] = body
        return _Json(body)

    async def reject_bill(self, request: Request, params: dict[str, Any]) -> Answer:
        ctx = self.ctx
        merchant = self._merchant(request)
        if merchant is None:
            return self._unauthorized(request)
        # The body is ignored: the Node SDK sends `null`, the .NET SDK an empty string.
        try:
            bill_id = _path_param(ctx, "billId", params["billId"])
        except RequestInvalid as exc:
            return _invalid(ctx, request, exc)
        try:
            bill = await ctx.write(lambda: self.store.reject_bill(merchant.site_id, bill_id))
        except BillNotFound:
            return _error(ctx, request, errors.INVOICE_NOT_FOUND)
        except WrongBillStatus as exc:
            return _error(
                ctx, request, errors.VALIDATION, cause={"status": [f"a {exc.status} bill cannot be rejected"]}
            )
        return _json(ctx.bill_json(bill))

    async def create_refund(self, request: Request, params: dict[str, Any]) -> Answer:
        ctx = self.ctx
        merchant = self._merchant(request)
        if merchant is None:
            return self._unauthorized(request)
        try:
            bill_id = _path_param(ctx, "billId", params["billId"])
            refund_id = _path_param(ctx, "refundId", params["refundId"])
            if not check_json_content_type(_header(request, b"content-type")):
                return _error(ctx, request, errors.UNSUPPORTED_MEDIA_TYPE)
            amount, currency = refund_amount_from_body(ctx.validators, parse_json(await _read_body(request)))
        except RefundAmountNotPositive as exc:
            return _error(ctx, request, errors.REFUND_INCORRECT_AMOUNT, cause=exc.cause)
        except RequestInvalid as exc:
            return _invalid(ctx, request, exc)
        if "refund_500" in self.broken:
            return _error(ctx, request, errors.INTERNAL)
        try:
            refund, _created = await ctx.write(
                lambda: self.store.create_refund(merchant.site_id, bill_id, refund_id, amount=amount, currency=currency)
            )
        except BillNotFound:
            return _error(ctx, request, errors.INVOICE_NOT_FOUND)
        except RefundConflict:
            return _error(ctx, request, errors.REFUND_ALREADY_EXISTS)
        except WrongBillStatus as exc:
            return _error(
                ctx, request, errors.VALIDATION, cause={"status": [f"a {exc.status} bill cannot be refunded"]}
            )
        except IncorrectRefundAmount as exc:
            return _error(ctx, request, errors.REFUND_INCORRECT_AMOUNT, cause={"amount": [str(exc)]})
        return _json(refund_to_wire(refund))

    async def get_refund(self, request: Request, params: dict[str, Any]) -> Answer:
        ctx = self.ctx
        merchant = self._merchant(request)
        if merchant is None:
            return self._unauthorized(request)
        try:
            bill_id = _path_param(ctx, "billId", params["billId"])
            refund_id = _path_param(ctx, "refundId", params["refundId"])
        except RequestInvalid as exc:
            return _invalid(ctx, request, exc)
        # An unknown bill is api.invoice.not.found here too (Node SDK live tests, commit ccb2e55).
        if self.store.get_bill(merchant.site_id, bill_id) is None:
            return _error(ctx, request, errors.INVOICE_NOT_FOUND)
        refund = self.store.get_refund(merchant.site_id, bill_id, refund_id)
        if refund is None:
            return _error(ctx, request, errors.REFUND_NOT_FOUND)
        return _json(refund_to_wire(refund))

    # -- /_mock/ controls (not part of QIWI's API) --------------------------------------------

    async def _control_body(self, request: Request) -> dict[str, Any]:
        """Optional JSON object body of a control; empty or `null` means `{}`."""
        raw = await _read_body(request)
        if not raw.strip():
            return {}
        body = parse_json(raw)
        if body is None:
            return {}
        if not isinstance(body, dict):
            raise RequestInvalid(conversion=True)
        return body

    async def health(self, _request: Request, _params: dict[str, Any]) -> Answer:
        return _json({"status": "ok", "dateTime": format_timestamp(_now_us(self.ctx))})

    async def pay(self, request: Request, params: dict[str, Any]) -> Answer:
        return await self._bill_control(request, params, "pay")

    async def expire(self, request: Request, params: dict[str, Any]) -> Answer:
        return await self._bill_control(request, params, "expire")

    async def _bill_control(self, request: Request, params: dict[str, Any], action: str) -> Answer:
        ctx = self.ctx
        merchant = self._merchant(request)
        if merchant is None:
            return self._unauthorized(request)
        try:
            bill_id = _path_param(ctx, "billId", params["billId"])
            body = await self._control_body(request)
            pay_source = body.get("paySource")
            if pay_source is not None and (not isinstance(pay_source, str) or pay_source not in PAY_SOURCES):
                raise RequestInvalid(cause={"paySource": [f"must be one of {', '.join(sorted(PAY_SOURCES))}"]})
        except RequestInvalid as exc:
            return _invalid(ctx, request, exc)
        try:
            if action == "pay":
                bill = self.store.pay_bill(merchant.site_id, bill_id, pay_source=pay_source)
            else:
                bill = self.store.expire_bill(merchant.site_id, bill_id)
        except BillNotFound:
            return _error(ctx, request, errors.INVOICE_NOT_FOUND)
        except WrongBillStatus as exc:
            return _error(ctx, request, errors.VALIDATION, cause={"status": [f"cannot {action} a {exc.status} bill"]})
        return _json(ctx.bill_json(bill))

    async def advance_clock(self, request: Request, _params: dict[str, Any]) -> Answer:
        ctx = self.ctx
        if self._merchant(request) is None:
            return self._unauthorized(request)
        try:
            seconds = (await self._control_body(request)).get("seconds")
            ok = isinstance(seconds, int | Decimal) and not isinstance(seconds, bool)
            if not ok or not 0 <= seconds <= 100 * 366 * 86400:  # type: ignore[operator]
                raise RequestInvalid(cause={"seconds": ["must be a number between 0 and 3162240000"]})
        except RequestInvalid as exc:
            return _invalid(ctx, request, exc)
        try:
            now: datetime = self.store.advance_clock(float(seconds))  # type: ignore[arg-type]
        except ValueError as exc:
            return _error(ctx, request, errors.VALIDATION, cause={"seconds": [str(exc)]})
        self.store.sweep_expired()
        ctx.notifier.wake()
        return _json({"now": format_timestamp(to_micros(now))})

    async def notifications(self, request: Request, _params: dict[str, Any]) -> Answer:
        merchant = self._merchant(request)
        if merchant is None:
            return self._unauthorized(request)
        bill_id = request.query_params.get("billId")
        return _json({"deliveries": self.store.list_deliveries(merchant.site_id, bill_id)})

    async def reset(self, request: Request, _params: dict[str, Any]) -> Answer:
        merchant = self._merchant(request)
        if merchant is None:
            return self._unauthorized(request)
        self.store.reset(merchant.site_id)
        return _json({"status": "reset"})


# -- trace + access log -----------------------------------------------------------------------


_FAST_PREFIXES = (b"/partner/", b"/_mock/")


async def _traced(
    ctx: MockContext, scope: Scope, receive: Receive, send: Send, route: _RawRoute | None, app: ASGIApp | None
) -> None:
    """Serve one request with its traceId (`X-Trace-Id` header, error bodies, one access-log line).

    `route`: an API or control route, answered directly; otherwise `app` (Starlette's stack) answers.
    """
    trace_id = ctx.new_trace_id()
    scope[TRACE_SCOPE_KEY] = trace_id
    started = time.perf_counter()
    status = 0
    header = (b"x-trace-id", trace_id.encode("latin-1", "replace"))

    async def send_with_trace(message: Message) -> None:  # Starlette's way, and the 500 answer
        nonlocal status
        if message["type"] == "http.response.start":
            status = message["status"]
            message = {**message, "headers": [*message.get("headers", ()), header]}
        await send(message)

    try:
        if route is not None:
            response = await route.answer(scope, receive, send)
            if response is not None:
                status = response.status_code
                if isinstance(response, _Json):
                    await response.send(send, header)
                else:
                    response.raw_headers.append(header)
                    await response(scope, receive, send)
        else:
            assert app is not None
            await app(scope, receive, send_with_trace)
    except _ConnectionDropped:
        status = 0
        raise
    except Exception:
        if status:
            raise
        logger.exception("unhandled error (traceId %s)", trace_id)
        request = Request(scope, receive)
        await _error(ctx, request, errors.INTERNAL)(scope, receive, send_with_trace)
    finally:
        raw = scope.get("raw_path") or scope["path"].encode()
        log_access(
            trace_id,
            scope["method"],
            raw.split(b"?", 1)[0].decode("latin-1"),
            status or "dropped",
            (time.perf_counter() - started) * 1000,
        )


class _TraceMiddleware:
    """Starlette's side of `_traced`: the payment pages and unknown URLs."""

    def __init__(self, app: ASGIApp, ctx: MockContext) -> None:
        self.app = app
        self.ctx = ctx

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        await _traced(self.ctx, scope, receive, send, None, self.app)


class _MockApp(Starlette):
    """Starlette, with the API and the `/_mock/` controls answered before its middleware stack.

    The hot path: a GET or PUT skips Starlette's router, its error middleware and its send wrappers (each a
    coroutine call per message); the pages and unknown URLs take the normal way. Both ways run `_traced`.
    """

    def __init__(self, ctx: MockContext, api_routes: list[_RawRoute], **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._ctx = ctx
        self._api_routes = api_routes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            raw = scope.get("raw_path")
            if raw is not None and raw.startswith(_FAST_PREFIXES):
                segments = _segments(scope)
                for route in self._api_routes:
                    params = route.match(segments)
                    if params is not None:
                        scope["app"] = self
                        scope["path_params"] = params
                        await _traced(self._ctx, scope, receive, send, route, None)
                        return
        await super().__call__(scope, receive, send)


async def _http_exception(request: Request, exc: Exception) -> Response:
    ctx: MockContext = request.app.state.ctx
    status = exc.status_code if isinstance(exc, HTTPException) else 500
    kind = {404: errors.URL_NOT_FOUND, 405: errors.METHOD_NOT_SUPPORTED}.get(status)
    if kind is None:
        kind = ErrorKind(status, "http.error", "Request failed", "Request failed") if status < 500 else errors.INTERNAL
    return _error(ctx, request, kind)


def _routes(api: _Api) -> list[_RawRoute]:
    bill = f"{_API}/{{billId}}"

    def route(pattern: str, methods: Mapping[str, Endpoint], **operations: str) -> _RawRoute:
        return _RawRoute(api.ctx, pattern, methods, operations=operations)

    return [
        route(bill, {"PUT": api.create_bill, "GET": api.get_bill}, PUT="createBill", GET="getBill"),
        route(f"{bill}/reject", {"POST": api.reject_bill}, POST="rejectBill"),
        route(
            f"{bill}/refunds/{{refundId}}",
            {"PUT": api.create_refund, "GET": api.get_refund},
            PUT="createRefund",
            GET="getRefund",
        ),
        route("/_mock/health", {"GET": api.health}),
        route("/_mock/bills/{billId}/pay", {"POST": api.pay}),
        route("/_mock/bills/{billId}/expire", {"POST": api.expire}),
        route("/_mock/clock/advance", {"POST": api.advance_clock}),
        route("/_mock/notifications", {"GET": api.notifications}),
        route("/_mock/reset", {"POST": api.reset}),
    ]


def _page_routes(ctx: MockContext) -> list[BaseRoute]:
    try:
        from qiwi_bill_mock.pages import page_routes  # type: ignore[attr-defined,unused-ignore]
    except ImportError:  # the payment pages land separately (issue 4's pages part)
        return []
    return list(page_routes(ctx))


async def _sweep(ctx: MockContext) -> None:
    """Expire overdue bills in the background (reads also expire them lazily)."""
    while True:
        await asyncio.sleep(ctx.settings.sweep_interval)
        try:
            ctx.store.sweep_expired()
        except Exception:  # a locked database must not stop the sweeper
            logger.exception("expiry sweep failed")


def create_app(
    settings: Settings | None = None,
    *,
    clock: Callable[[], datetime] | None = None,
    id_factory: Callable[[], str] | None = None,
    notify_transport: httpx.AsyncBaseTransport | None = None,
) -> Starlette:
    """Build the mock as an ASGI app (in-process use: tests, other people's test suites).

    Args:
        settings: Merchants and behaviour; default `Settings()`, one demo merchant with random keys
            (read them from `app.state.ctx.settings.merchants`).
        clock: Returns the current aware datetime (default: the system clock); `/_mock/clock/advance`
            adds to it.
        id_factory: Returns unique ids, used for invoice uids (`payUrl`) and traceIds; default random.
        notify_transport: httpx transport for notification delivery (tests); default the network.

    Returns:
        The Starlette app; `app.state.ctx` is its `MockContext`. Its lifespan runs the notifier and
        the expiry sweeper; without the lifespan, `await app.state.ctx.notifier.drain()` delivers.
    """
    settings = settings if settings is not None else Settings()
    ctx = MockContext(settings, clock=clock, id_factory=id_factory, notify_transport=notify_transport)
    api = _Api(ctx)

    @contextlib.asynccontextmanager
    async def lifespan(_app: Starlette) -> AsyncIterator[None]:
        ctx.notifier.start()
        sweeper = asyncio.create_task(_sweep(ctx), name="qiwi-bill-mock-sweeper")
        try:
            yield
        finally:
            sweeper.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await sweeper
            await ctx.notifier.stop()
            ctx.store.checkpoint()

    api_routes = _routes(api)
    routes = [*api_routes, *_page_routes(ctx), _CatchAll()]
    app = _MockApp(
        ctx,
        api_routes,
        routes=routes,
        middleware=[Middleware(_TraceMiddleware, ctx=ctx)],
        exception_handlers={HTTPException: _http_exception, Exception: _http_exception},
        lifespan=lifespan,
    )
    app.state.ctx = ctx
    app.state.fault_rng = random.Random(settings.fault_seed)
    return app
