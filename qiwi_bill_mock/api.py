"""The HTTP adapters of QIWI's five operations and the `/_mock/` controls: thin handlers over the service.

Each handler reads auth → route → parse → validate → call the service → respond, and refuses by raising the
`errors` exceptions; `app.py` renders them (`errors.render_error`, the one place). Auth always comes first, so a
wrong key gets 401 whether or not the bill exists (no existence oracle), and another merchant's bill is 404.
Handlers read the raw ASGI scope (no Starlette `Request` on the hot path) and answer with `JsonAnswer`.
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import Awaitable, Callable, MutableMapping
from decimal import Decimal
from typing import Any
from urllib.parse import parse_qsl

from qiwi_bill_mock import errors
from qiwi_bill_mock.context import MockContext
from qiwi_bill_mock.errors import BillNotFound, InvalidValues, MockError, RefundNotFound, Unreadable
from qiwi_bill_mock.models import to_micros
from qiwi_bill_mock.settings import Merchant
from qiwi_bill_mock.validation import (
    MAX_BODY_BYTES,
    check_json_content_type,
    draft_from_body,
    parse_json,
    refund_amount_from_body,
)
from qiwi_bill_mock.wire import dumps, format_timestamp, refund_to_wire

__all__ = ["BadParam", "Call", "ClientGone", "ConnectionDropped", "Handlers", "JsonAnswer"]

# `Cache-Control: no-store` on every API answer: a bill's status changes, no proxy or client may reuse an
# answer (issue 16). One more static header pair: no measurable cost (`python -m bench.profile get`).
_NO_STORE = (b"cache-control", b"no-store")


class BadParam:
    """A path segment that is not valid UTF-8 once percent-decoded."""


class ConnectionDropped(Exception):
    """Fault injection: abort the connection without an answer."""


class ClientGone(Exception):
    """The client disconnected before its body arrived."""


class JsonAnswer:
    """A JSON answer sent as two raw ASGI messages (the hot path skips building a Starlette `Response`)."""

    __slots__ = ("body", "status_code")

    def __init__(self, body: bytes, status_code: int = 200) -> None:
        self.body = body
        self.status_code = status_code

    async def send(self, send: Callable[[Any], Awaitable[None]], trace: tuple[bytes, bytes]) -> None:
        """Send it with the `X-Trace-Id` header pair `trace`."""
        headers = [(b"content-type", b"application/json"), (b"content-length", b"%d" % len(self.body)), _NO_STORE]
        headers.append(trace)
        await send({"type": "http.response.start", "status": self.status_code, "headers": headers})
        await send({"type": "http.response.body", "body": self.body})


NOTIFICATIONS_PAGE = 1000  # deliveries per page of GET /_mock/notifications, the default and the most


def _page_number(query: dict[str, str], name: str, default: int, *, low: int, high: int) -> int:
    """An integer query parameter of a paginated control, `default` when absent.

    Raises:
        InvalidValues: not a decimal integer between `low` and `high`.
    """
    text = query.get(name)
    if text is None:
        return default
    if not (text.isascii() and text.isdigit()) or not low <= int(text) <= high:
        raise InvalidValues({name: [f"must be an integer between {low} and {high}"]})
    return int(text)


def _json(body: Any, status_code: int = 200) -> JsonAnswer:
    return JsonAnswer(dumps(body), status_code)


class Call:
    """One API request as the handlers see it: the scope, the body stream, path parameters, the merchant."""

    __slots__ = ("params", "receive", "scope", "site_id")

    def __init__(self, scope: MutableMapping[str, Any], receive: Any, params: dict[str, Any]) -> None:
        self.scope = scope
        self.receive = receive
        self.params = params
        self.site_id: str | None = None

    def header(self, name: bytes) -> str | None:
        """One request header, read from the scope (no `Headers` object on the hot path)."""
        for key, value in self.scope["headers"]:
            if key == name:
                return str(value.decode("latin-1"))
        return None

    def base_url(self) -> str:
        """`scheme://host` as the client reached the mock (its `Host` header), for `payUrl`."""
        host = self.header(b"host")
        if not host:
            server = self.scope.get("server") or ("127.0.0.1", 8080)
            host = f"{server[0]}:{server[1]}"
        return f"{self.scope.get('scheme', 'http')}://{host}"

    async def body(self) -> bytes:
        """The body, refused as unreadable beyond `MAX_BODY_BYTES` (never buffered without limit)."""
        chunks: list[bytes] = []
        size = 0
        while True:
            message = await self.receive()
            if message["type"] != "http.request":  # http.disconnect
                raise ClientGone()
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > MAX_BODY_BYTES:
                raise Unreadable()
            chunks.append(chunk)
            if not message.get("more_body", False):
                return chunks[0] if len(chunks) == 1 else b"".join(chunks)

    async def json_object(self) -> dict[str, Any]:
        """Optional JSON object body of a control; empty or `null` means `{}`."""
        raw = await self.body()
        if not raw.strip():
            return {}
        body = parse_json(raw)
        if body is None:
            return {}
        if not isinstance(body, dict):
            raise Unreadable()
        return body


class Handlers:
    """Handlers of the five operations and the `/_mock/` controls."""

    def __init__(self, ctx: MockContext) -> None:
        self.ctx = ctx
        self.service = ctx.service
        self.broken = ctx.settings.broken
        self._fault_rng = random.Random(ctx.settings.fault_seed)
        # GET's wire cache: a bill's JSON changes only with its status (and payUrl with the request's base URL),
        # so repeated reads are answered from bytes keyed by (invoice uid, status, changedDateTime, base) and GET
        # costs one narrow indexed SELECT, or none (`storage.Database.bill_version`).
        self._wire_cache: dict[tuple[str, str, int, str], bytes] = {}

    # -- parse helpers --------------------------------------------------------------------------

    def _merchant(self, call: Call) -> Merchant:
        for name, value in call.scope["headers"]:
            if name == b"authorization":
                merchant = self.ctx.authenticate(value.decode("latin-1"))
                if merchant is not None:
                    call.site_id = merchant.site_id
                    return merchant
                break
        raise MockError(errors.UNAUTHORIZED)

    def _param(self, call: Call, name: str) -> str:
        value = call.params[name]
        if isinstance(value, BadParam):
            raise InvalidValues({name: ["must be valid UTF-8 once percent-decoded"]})
        self.ctx.validators.check_path(name, value)
        return str(value)

    async def _json_body(self, call: Call) -> Any:
        if not check_json_content_type(call.header(b"content-type")):
            raise MockError(errors.UNSUPPORTED_MEDIA_TYPE)
        return parse_json(await call.body())

    async def inject_fault(self, operation: str, send: Callable[[Any], Awaitable[None]]) -> None:
        """Apply the configured faults of this operation: latency, then maybe 503 / 429 / a dropped connection."""
        for fault in self.ctx.settings.faults:
            if fault.route not in ("*", operation):
                continue
            if fault.latency:
                await asyncio.sleep(fault.latency)
            roll = self._fault_rng.random()
            if roll < fault.drop_rate:
                # Start an answer and abort it: the client sees the connection die mid-response.
                await send({"type": "http.response.start", "status": 503, "headers": []})
                raise ConnectionDropped(operation)
            roll -= fault.drop_rate
            if roll < fault.error_rate:
                raise MockError(errors.SERVICE_UNAVAILABLE)
            roll -= fault.error_rate
            if roll < fault.throttle_rate:
                raise MockError(errors.TOO_MANY_REQUESTS, headers={"Retry-After": "1"})

    # -- QIWI's operations ----------------------------------------------------------------------

    async def create_bill(self, call: Call) -> JsonAnswer:
        merchant = self._merchant(call)
        bill_id = self._param(call, "billId")
        draft = draft_from_body(self.ctx.validators, await self._json_body(call))
        bill, _created = await self.ctx.write(lambda: self.service.create_bill(merchant.site_id, bill_id, draft))
        return _json(self.ctx.bill_json(bill, call.base_url()), 201 if "wrong_status_code" in self.broken else 200)

    async def get_bill(self, call: Call) -> JsonAnswer:
        skip_auth = "skip_auth_on_get" in self.broken
        try:
            merchant: Merchant | None = self._merchant(call)
        except MockError:
            if not skip_auth:
                raise
            merchant = None
        bill_id = self._param(call, "billId")
        if merchant is None:  # the `skip_auth_on_get` broken mode
            bill = self.service.get_bill_any_merchant(bill_id)
            if bill is None:
                raise BillNotFound(bill_id)
            return _json(self.ctx.bill_json(bill, call.base_url()))
        version = self.service.bill_version(merchant.site_id, bill_id)
        if version is None:
            raise BillNotFound(bill_id)
        base = call.base_url()
        key = (*version, base)
        body = self._wire_cache.get(key)
        if body is None:
            bill = self.service.get_bill(merchant.site_id, bill_id)
            if bill is None:  # reset by another request in between
                raise BillNotFound(bill_id)
            body = dumps(self.ctx.bill_json(bill, base))
            if len(self._wire_cache) >= 50_000:
                self._wire_cache.clear()
            self._wire_cache[(*bill.version, base)] = body
        return JsonAnswer(body)

    async def reject_bill(self, call: Call) -> JsonAnswer:
        merchant = self._merchant(call)
        # The body is ignored: the Node SDK sends `null`, the .NET SDK an empty string.
        bill_id = self._param(call, "billId")
        bill = await self.ctx.write(lambda: self.service.reject_bill(merchant.site_id, bill_id))
        return _json(self.ctx.bill_json(bill, call.base_url()))

    async def create_refund(self, call: Call) -> JsonAnswer:
        merchant = self._merchant(call)
        bill_id = self._param(call, "billId")
        refund_id = self._param(call, "refundId")
        amount, currency = refund_amount_from_body(self.ctx.validators, await self._json_body(call))
        if "refund_500" in self.broken:
            raise MockError(errors.INTERNAL)
        refund, _created = await self.ctx.write(
            lambda: self.service.create_refund(merchant.site_id, bill_id, refund_id, amount=amount, currency=currency)
        )
        return _json(refund_to_wire(refund))

    async def get_refund(self, call: Call) -> JsonAnswer:
        merchant = self._merchant(call)
        bill_id = self._param(call, "billId")
        refund_id = self._param(call, "refundId")
        # An unknown bill is api.invoice.not.found here too (Node SDK live tests, commit ccb2e55).
        if self.service.get_bill(merchant.site_id, bill_id) is None:
            raise BillNotFound(bill_id)
        refund = self.service.get_refund(merchant.site_id, bill_id, refund_id)
        if refund is None:
            raise RefundNotFound(refund_id)
        return _json(refund_to_wire(refund))

    # -- /_mock/ controls (not part of QIWI's API) ----------------------------------------------

    async def health(self, _call: Call) -> JsonAnswer:
        # storageFailures: this process's failed storage operations since start (a full disk shows here).
        now = format_timestamp(self.service.now_us())
        return _json({"status": "ok", "dateTime": now, "storageFailures": self.service.failures.count})

    async def pay(self, call: Call) -> JsonAnswer:
        merchant = self._merchant(call)
        bill_id = self._param(call, "billId")
        pay_source = (await call.json_object()).get("paySource")
        bill = self.service.pay_bill(merchant.site_id, bill_id, pay_source=pay_source)
        return _json(self.ctx.bill_json(bill, call.base_url()))

    async def expire(self, call: Call) -> JsonAnswer:
        merchant = self._merchant(call)
        bill_id = self._param(call, "billId")
        await call.json_object()
        bill = self.service.expire_bill(merchant.site_id, bill_id)
        return _json(self.ctx.bill_json(bill, call.base_url()))

    async def advance_clock(self, call: Call) -> JsonAnswer:
        merchant = self._merchant(call)
        seconds = (await call.json_object()).get("seconds")
        ok = isinstance(seconds, int | Decimal) and not isinstance(seconds, bool)
        if not ok or not 0 <= seconds <= 100 * 366 * 86400:  # type: ignore[operator]
            raise InvalidValues({"seconds": ["must be a number between 0 and 3162240000"]})
        now = self.service.advance_clock(float(seconds), site_id=merchant.site_id)  # type: ignore[arg-type]
        # In chunks that yield to the loop: an advance past 50k WAITING bills must not freeze the server.
        await self.service.sweep_expired_in_chunks()
        self.ctx.notifier.wake()
        return _json({"now": format_timestamp(to_micros(now))})

    async def notifications(self, call: Call) -> JsonAnswer:
        merchant = self._merchant(call)
        query = dict(parse_qsl(call.scope.get("query_string", b"").decode("latin-1"), keep_blank_values=True))
        bill_id = query.get("billId")
        limit = _page_number(query, "limit", NOTIFICATIONS_PAGE, low=1, high=NOTIFICATIONS_PAGE)
        after = _page_number(query, "after", 0, low=0, high=2**63 - 1)
        deliveries = self.service.list_deliveries(merchant.site_id, bill_id, after=after, limit=limit)
        # A full page may have more behind it: `after=nextAfter` reads the next one (null: this was the last).
        next_after = deliveries[-1]["id"] if len(deliveries) == limit else None
        return _json({"deliveries": deliveries, "limit": limit, "nextAfter": next_after})

    async def reset(self, call: Call) -> JsonAnswer:
        merchant = self._merchant(call)
        self.service.reset(merchant.site_id)
        return _json({"status": "reset"})
