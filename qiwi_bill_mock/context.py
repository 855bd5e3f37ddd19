"""The app context: what every route (API, `/_mock/` controls, payment pages) shares.

`MockContext` is what `qiwi_bill_mock.pages.page_routes(ctx)` receives:

- `ctx.settings` (`Settings`): merchants (`merchant_by_public_key`, `merchant_by_site_id`), `public_url`...
- `ctx.service` (`BillService`): the one facade (create / get / reject / pay / expire / refund / clocks /
  outbox); see `service.py`. `ctx.store` is its former name, kept for users' code.
- `ctx.notifier` (`Notifier`): delivers the outbox (`await ctx.notifier.drain()` in tests).
- `ctx.validators` (`SpecValidators`): the OpenAPI document's compiled request validators.
- `await ctx.write(fn)`: run a service write (`lambda: ctx.service.create_bill(...)`) in the next group commit.
- `ctx.now(site_id=None)` → aware datetime on a merchant's clock; `ctx.new_trace_id()`; `ctx.pay_url(bill, base)`;
  `ctx.bill_json(bill, base)` (the API's wire shape); `ctx.trace_id(request)` (this request's traceId);
  `ctx.add_request_listener(fn)`: `fn(RequestRecord)` after every request (the testing kit's journal hook).
"""

from __future__ import annotations

import asyncio
import hashlib
import random
from collections.abc import Awaitable, Callable
from datetime import datetime
from typing import Any, TypeVar

import httpx
from attrs import define
from starlette.requests import Request

from qiwi_bill_mock.models import Bill
from qiwi_bill_mock.notifier import Notifier
from qiwi_bill_mock.service import BillService
from qiwi_bill_mock.settings import Merchant, Settings
from qiwi_bill_mock.validation import SpecValidators, load_validators
from qiwi_bill_mock.wire import bill_to_wire, pay_url

__all__ = ["TRACE_SCOPE_KEY", "GroupCommit", "MockContext", "RequestRecord"]

#: Where the trace path puts this request's traceId in the ASGI scope.
TRACE_SCOPE_KEY = "qiwi_bill_mock.trace_id"


_trace_bits = random.Random().getrandbits

T = TypeVar("T")


@define(frozen=True, kw_only=True)
class RequestRecord:
    """One finished request, as `MockContext.add_request_listener` callbacks receive it.

    Args:
        trace_id: The request's traceId (`X-Trace-Id`).
        method: HTTP method.
        path: Raw path without the query.
        operation: The operationId (`createBill`...), a control's name (`_mock.pay`...), or `None` (pages, 404).
        site_id: The authenticated merchant, if any.
        status: HTTP status, `0` when the connection was dropped.
        error_code: QIWI's `errorCode` of an error answer, else `None`.
        elapsed_ms: Time spent answering.
    """

    trace_id: str
    method: str
    path: str
    operation: str | None
    site_id: str | None
    status: int
    error_code: str | None
    elapsed_ms: float


class GroupCommit:
    """Service writes of one event-loop pass, committed together (`BillService.run_batch`).

    A request's write is queued and runs at the end of the current pass, with every other write queued in
    that pass, in one transaction; each request is answered only after that commit returned, so a 2xx still
    means committed. Under concurrent load a file store then writes its WAL pages once per batch instead of
    once per request; a lone request waits one loop pass (microseconds).
    """

    def __init__(self, store: BillService) -> None:
        self._store = store
        self._pending: list[tuple[Callable[[], Any], asyncio.Future[Any]]] = []

    async def run(self, operation: Callable[[], T]) -> T:
        """Run `operation()` (one service write) in the next batch; returns its result or raises its error."""
        loop = asyncio.get_running_loop()
        future: asyncio.Future[T] = loop.create_future()
        self._pending.append((operation, future))
        if len(self._pending) == 1:
            loop.call_soon(self._flush)
        return await future

    def _flush(self) -> None:
        batch, self._pending = self._pending, []
        try:
            results = self._store.run_batch([operation for operation, _ in batch])
        except Exception as exc:  # the commit failed: nothing of the batch is stored
            for _, future in batch:
                if not future.done():
                    future.set_exception(exc)
            return
        for (_, future), result in zip(batch, results, strict=True):
            if future.done():  # the request was cancelled; its write stands, like an answer lost in transit
                continue
            if isinstance(result, Exception):
                future.set_exception(result)
            else:
                future.set_result(result)


def _digest(key: str) -> bytes:
    return hashlib.sha256(key.encode("utf-8", "surrogatepass")).digest()


class MockContext:
    """Shared state of one app instance (one per worker process).

    Args:
        settings: The mock's settings.
        clock: Injectable clock (aware datetimes); default the system clock.
        id_factory: Injectable id source for invoice uids and trace ids; default random.
        notify_transport: httpx transport for notification delivery (tests); default the network.
    """

    def __init__(
        self,
        settings: Settings,
        *,
        clock: Callable[[], datetime] | None = None,
        id_factory: Callable[[], str] | None = None,
        notify_transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self.settings = settings
        self.service = BillService(settings, clock=clock, id_factory=id_factory)
        self.store = self.service  # the former name (users' tests): the same facade
        self.notifier = Notifier(self.service, transport=notify_transport)
        self.validators: SpecValidators = load_validators()
        self.request_listeners: list[Callable[[RequestRecord], None]] = []
        self._group_commit = GroupCommit(self.service)
        self._id_factory = id_factory
        # Keys are looked up by digest: the dict never holds, and a lookup never compares, a raw secret.
        self._by_key = {_digest(m.secret_key): m for m in settings.merchants}

    def write(self, operation: Callable[[], T]) -> Awaitable[T]:
        """Run one service write in the next group commit (see `GroupCommit`); await the result."""
        return self._group_commit.run(operation)

    def now(self, site_id: str | None = None) -> datetime:
        """A merchant's clock (`None`: the injected clock, which no merchant moved)."""
        return self.service.now(site_id)

    def add_request_listener(self, callback: Callable[[RequestRecord], None]) -> None:
        """Call `callback(record)` after every request (merchant, operation, status, errorCode), e.g. a journal.

        Called on the event loop once the answer was sent; keep it quick. Without listeners nothing is built.
        """
        self.request_listeners.append(callback)

    def new_trace_id(self) -> str:
        """A trace id: 16 hex digits like QIWI's (`b3d41cafa0c6d088`), or the injected id factory's."""
        # Not a secret, just unique enough to find a log line: the PRNG is cheaper than os.urandom.
        return self._id_factory() if self._id_factory is not None else f"{_trace_bits(64):016x}"

    @staticmethod
    def trace_id(request: Request) -> str:
        """The traceId of this request (also in its log line and `X-Trace-Id` header)."""
        return str(request.scope.get(TRACE_SCOPE_KEY, ""))

    def authenticate(self, authorization: str | None) -> Merchant | None:
        """The merchant whose secret key is the bearer token, or `None`."""
        if not authorization:
            return None
        scheme, _, token = authorization.strip().partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            return None
        return self._by_key.get(_digest(token.strip()))

    def pay_url(self, bill: Bill, base_url: str | None = None) -> str:
        """`{public_url}/form/?invoice_uid=<uuid>`; without `Settings.public_url`, `base_url` (the request's own)."""
        return pay_url(self.settings.public_url or base_url or "http://127.0.0.1:8080", bill.invoice_uid)

    def bill_json(self, bill: Bill, base_url: str | None = None) -> dict[str, Any]:
        """The bill in the API's wire shape, with `payUrl` (see `pay_url`)."""
        return bill_to_wire(bill, pay_url=self.pay_url(bill, base_url), broken=self.settings.broken)
