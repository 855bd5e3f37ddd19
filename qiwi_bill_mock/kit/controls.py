"""A typed client for the mock's `/_mock/` test controls, sync (`MockControls`) and async (`AsyncMockControls`).

Bills come back as the generated `qiwi_bill_client.models.Bill`, the same class the API operations return;
deliveries and journal entries as the small attrs classes below. Both clients work in-process (give them the kit's
`MockTransport`) and against a running `qiwi-bill-mock` over HTTP (give them its URL).

Each control is written once, as a *plan*: a generator that yields the HTTP calls (and pauses) it needs and
returns the result. The sync and async clients only differ in how they run a plan, so a control that takes
several calls (`bills()`, `wait_for_notification()`) is not written twice.

```python
from qiwi_bill_mock.kit.controls import MockControls

controls = MockControls(base_url="http://127.0.0.1:8080", secret_key=key)
bill = controls.pay("order-1", pay_source="card")  # qiwi_bill_client.models.Bill, status PAID
delivery = controls.wait_for_notification("order-1", timeout=5)
```
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Generator, Mapping
from datetime import datetime
from typing import Any, Generic, TypeVar
from urllib.parse import quote

import httpx
from attrs import frozen

from qiwi_bill import parse_datetime
from qiwi_bill_client.models import Bill
from qiwi_bill_mock.kit.journal import UNJOURNALED_HEADER, JournalEntry, JournalQuery

__all__ = [
    "AsyncMockControls",
    "Delivery",
    "DeliveryAttempt",
    "MockControlError",
    "MockControls",
]

T = TypeVar("T")
_TransportT = TypeVar("_TransportT", httpx.BaseTransport, httpx.AsyncBaseTransport)
_HttpT = TypeVar("_HttpT", httpx.Client, httpx.AsyncClient)

_DEFAULT_TIMEOUT = 10.0


class MockControlError(RuntimeError):
    """A control answered an error (QIWI's error body); the secret key is never part of the message.

    Attributes:
        status_code: The HTTP status.
        error_code: The body's `errorCode` (`None` for a non-JSON answer).
        description: The body's `description`.
        cause: The body's `cause` (field → messages), if any.
        trace_id: The body's `traceId`.
    """

    def __init__(self, response: httpx.Response) -> None:
        try:
            body = response.json()
        except ValueError:
            body = None
        body = body if isinstance(body, dict) else {}
        self.status_code = response.status_code
        self.error_code: str | None = body.get("errorCode")
        self.description: str | None = body.get("description")
        self.cause: Mapping[str, list[str]] | None = body.get("cause")
        self.trace_id: str | None = body.get("traceId") or response.headers.get("X-Trace-Id")
        where = f"{response.request.method} {response.request.url.path}"
        detail = f"{self.error_code}: {self.description}" if self.error_code else response.text[:200]
        cause = f" {dict(self.cause)}" if self.cause else ""
        super().__init__(f"{where} answered {self.status_code} {detail}{cause} (traceId {self.trace_id})")


@frozen(kw_only=True)
class DeliveryAttempt:
    """One attempt at delivering a notification.

    Attributes:
        attempt: 1 for the first attempt.
        at: When it was made (mock clock).
        status_code: The merchant's HTTP status, `None` when no answer came.
        latency_ms: How long it took.
        error: Why it failed (`HTTP 500`, a connection error...), `None` on success.
    """

    attempt: int
    at: datetime
    status_code: int | None
    latency_ms: float
    error: str | None


@frozen(kw_only=True)
class Delivery:
    """A notification the mock queued, and how delivering it went (`GET /_mock/notifications`).

    Attributes:
        id: The delivery's id.
        bill_id: The bill it is about.
        status: The bill status it notifies (`PAID`...).
        url: Where it is POSTed (the merchant's `notify_url`).
        state: `pending`, `delivered` or `failed` (retries exhausted).
        attempt_count: Attempts so far.
        next_attempt_at: When the next attempt is due (pending only).
        created_at: When it was queued.
        attempts: Every attempt, oldest first.
    """

    id: int
    bill_id: str
    status: str
    url: str
    state: str
    attempt_count: int
    next_attempt_at: datetime | None
    created_at: datetime
    attempts: tuple[DeliveryAttempt, ...]

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Delivery:
        """Read one item of `GET /_mock/notifications`' `deliveries`."""
        next_at = data.get("nextAttemptDateTime")
        return cls(
            id=int(data["id"]),
            bill_id=data["billId"],
            status=data["status"],
            url=data["url"],
            state=data["state"],
            attempt_count=int(data["attemptCount"]),
            next_attempt_at=None if next_at is None else parse_datetime(next_at, field="nextAttemptDateTime"),
            created_at=parse_datetime(data["createdDateTime"], field="createdDateTime"),
            attempts=tuple(
                DeliveryAttempt(
                    attempt=int(a["attempt"]),
                    at=parse_datetime(a["dateTime"], field="dateTime"),
                    status_code=a.get("statusCode"),
                    latency_ms=float(a.get("latencyMs") or 0.0),
                    error=a.get("error"),
                )
                for a in data.get("attempts", ())
            ),
        )


# -- plans: each control once, as the calls it makes -------------------------------------------


@frozen
class _Call:
    """One HTTP request of a plan; the plan receives the `httpx.Response`."""

    method: str
    path: str
    params: Mapping[str, str] | None = None
    json: Any = None


@frozen
class _Pause:
    """Wait this many seconds before the plan's next call."""

    seconds: float


Plan = Generator[_Call | _Pause, httpx.Response | None, T]


def _quoted(bill_id: str) -> str:
    # Ids may hold "/" or "?": quote everything, as the generated client does (safe="").
    return quote(bill_id, safe="")


def _ok(response: httpx.Response | None) -> httpx.Response:
    assert response is not None
    if response.status_code >= 400:
        raise MockControlError(response)
    return response


def _bill_plan(action: str, bill_id: str, body: Any = None) -> Plan[Bill]:
    response = yield _Call("POST", f"/_mock/bills/{_quoted(bill_id)}/{action}", json=body)
    return Bill.from_dict(_ok(response).json())


def _pay_plan(bill_id: str, pay_source: str | None) -> Plan[Bill]:
    return (yield from _bill_plan("pay", bill_id, None if pay_source is None else {"paySource": pay_source}))


def _advance_plan(seconds: float) -> Plan[datetime]:
    # Whole seconds go as an integer: the control accepts any JSON number, and 60 reads better than 60.0 in logs.
    number: float | int = int(seconds) if float(seconds).is_integer() else seconds
    response = yield _Call("POST", "/_mock/clock/advance", json={"seconds": number})
    return parse_datetime(_ok(response).json()["now"], field="now")


def _reset_plan() -> Plan[None]:
    _ok((yield _Call("POST", "/_mock/reset")))


def _health_plan() -> Plan[dict[str, Any]]:
    response = yield _Call("GET", "/_mock/health")
    body: dict[str, Any] = _ok(response).json()
    return body


def _deliveries_plan(bill_id: str | None) -> Plan[list[Delivery]]:
    # The journal is paginated (`limit`, `after`); follow `nextAfter` until the last page.
    deliveries: list[Delivery] = []
    params: dict[str, str] = {} if bill_id is None else {"billId": bill_id}
    while True:
        body = _ok((yield _Call("GET", "/_mock/notifications", params=params or None))).json()
        deliveries += [Delivery.from_dict(item) for item in body["deliveries"]]
        if body.get("nextAfter") is None:
            return deliveries
        params = {**params, "after": str(body["nextAfter"])}


def _wait_plan(bill_id: str, status: str | None, state: str | None, timeout: float) -> Plan[Delivery]:
    deadline = time.monotonic() + timeout
    while True:
        deliveries = yield from _deliveries_plan(bill_id)
        for delivery in deliveries:
            if (status is None or delivery.status == status) and (
                delivery.state == state if state is not None else delivery.attempt_count > 0
            ):
                return delivery
        if time.monotonic() >= deadline:
            seen = [(d.status, d.state, d.attempt_count, [a.error for a in d.attempts]) for d in deliveries]
            raise TimeoutError(
                f"no {state or 'attempted'} notification of bill {bill_id!r} (status {status}) within {timeout}s;"
                f" deliveries: {seen}"
            )
        yield _Pause(0.02)


def _requests_plan(query: JournalQuery) -> Plan[list[JournalEntry]]:
    response = yield _Call("GET", "/_mock/requests", params=query.to_params())
    if response is not None and response.status_code == 404 and "http.url.not.found" in response.text:
        raise MockControlError(response) from RuntimeError(
            "this mock has no request journal: wrap its app in qiwi_bill_mock.kit.journal.RequestJournal"
        )
    return [JournalEntry.from_dict(item) for item in _ok(response).json()["requests"]]


def _clear_requests_plan() -> Plan[None]:
    _ok((yield _Call("DELETE", "/_mock/requests")))


def _bills_plan() -> Plan[list[Bill]]:
    # The mock has no "list bills" control; until it does (GET /_mock/bills), the journal knows every bill this
    # merchant created, and the API returns each one's current state.
    response = yield _Call("GET", "/_mock/bills")
    if response is not None and response.status_code == 200:
        return [Bill.from_dict(item) for item in response.json()["bills"]]
    entries = yield from _requests_plan(JournalQuery(operation="createBill", outcome="accepted"))
    bills: list[Bill] = []
    for bill_id in dict.fromkeys(entry.bill_id for entry in entries if entry.bill_id is not None):
        got = yield _Call("GET", f"/partner/bill/v1/bills/{_quoted(bill_id)}")
        if got is not None and got.status_code == 200:  # a reset since forgot it
            bills.append(Bill.from_dict(got.json()))
    return bills


# -- the two runners ---------------------------------------------------------------------------


class _Base(Generic[_TransportT, _HttpT]):
    # The one constructor of both clients: they differ only in the httpx client (and transport) they use.
    _http_class: Callable[..., _HttpT]

    def __init__(
        self,
        *,
        base_url: str,
        secret_key: str,
        transport: _TransportT | None = None,
        timeout: float = _DEFAULT_TIMEOUT,
    ) -> None:
        if not secret_key:
            raise ValueError("secret_key must be the merchant's (non-empty) secret key")
        # The control client's own API reads (`bills()`) stay out of the journal of the code under test.
        self._headers = {
            "Authorization": f"Bearer {secret_key}",
            "Accept": "application/json",
            UNJOURNALED_HEADER: "1",
        }
        self._http: _HttpT = self._http_class(base_url=base_url, transport=transport, timeout=timeout, trust_env=False)

    def __repr__(self) -> str:
        return f"{type(self).__name__}(secret_key='***')"


class MockControls(_Base[httpx.BaseTransport, httpx.Client]):
    """The `/_mock/` controls, synchronous.

    Args:
        base_url: The mock's URL (`http://127.0.0.1:PORT`, or any URL for an in-process transport).
        secret_key: The merchant's secret key: every control acts on this merchant only.
        transport: An httpx transport, e.g. the kit's in-process `MockTransport`; default the network.
        timeout: Seconds per request.
    """

    _http_class = httpx.Client

    def _run(self, plan: Plan[T]) -> T:
        try:
            step = next(plan)
            while True:
                if isinstance(step, _Pause):
                    time.sleep(step.seconds)
                    step = plan.send(None)
                else:
                    response = self._http.request(
                        step.method, step.path, params=step.params, json=step.json, headers=self._headers
                    )
                    step = plan.send(response)
        except StopIteration as done:
            result: T = done.value
            return result

    def pay(self, bill_id: str, *, pay_source: str | None = None) -> Bill:
        """Pay a WAITING bill (`qw`, `card`, `mobile` or `sovest`); its signed notification is queued."""
        return self._run(_pay_plan(bill_id, pay_source))

    def expire(self, bill_id: str) -> Bill:
        """Expire a WAITING bill now."""
        return self._run(_bill_plan("expire", bill_id))

    def advance_clock(self, seconds: float) -> datetime:
        """Move this merchant's mock clock forward; overdue bills expire, due retries run. Returns the new time."""
        return self._run(_advance_plan(seconds))

    def reset(self) -> None:
        """Forget this merchant's bills, refunds, notifications and journal; reset its clock."""
        self._run(_reset_plan())

    def health(self) -> dict[str, Any]:
        """`GET /_mock/health` (no key needed)."""
        return self._run(_health_plan())

    def notifications(self, bill_id: str | None = None) -> list[Delivery]:
        """This merchant's notification deliveries (of one bill), oldest first, with every attempt."""
        return self._run(_deliveries_plan(bill_id))

    def wait_for_notification(
        self, bill_id: str, *, status: str | None = "PAID", state: str | None = "delivered", timeout: float = 5.0
    ) -> Delivery:
        """Wait until a notification of `bill_id` reaches `state` (`None`: was attempted at least once).

        Raises:
            TimeoutError: It did not within `timeout` seconds (the message lists the deliveries seen).
        """
        return self._run(_wait_plan(bill_id, status, state, timeout))

    def bills(self) -> list[Bill]:
        """Every bill of this merchant the mock still holds, in creation order."""
        return self._run(_bills_plan())

    def requests(self, operation: str | None = None, **filters: Any) -> list[JournalEntry]:
        """This merchant's request journal, oldest first, filtered.

        Args:
            operation: An operationId: `createBill`, `getBill`, `rejectBill`, `createRefund`, `getRefund`.
            **filters: Any other `JournalQuery` field: `bill_id`, `refund_id`, `method`, `status_code`,
                `error_code`, `outcome`, `refused`, `include_unauthenticated`, `limit`.
        """
        return self._run(_requests_plan(JournalQuery(operation=operation, **filters)))

    def clear_requests(self) -> None:
        """Forget this merchant's journal entries."""
        self._run(_clear_requests_plan())

    def close(self) -> None:
        """Close the underlying HTTP client."""
        self._http.close()

    def __enter__(self) -> MockControls:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class AsyncMockControls(_Base[httpx.AsyncBaseTransport, httpx.AsyncClient]):
    """The `/_mock/` controls, asynchronous; the same methods as `MockControls`, awaited.

    Args:
        base_url: The mock's URL.
        secret_key: The merchant's secret key.
        transport: An httpx async transport, e.g. the kit's in-process `MockTransport`; default the network.
        timeout: Seconds per request.
    """

    _http_class = httpx.AsyncClient

    async def _run(self, plan: Plan[T]) -> T:
        try:
            step = next(plan)
            while True:
                if isinstance(step, _Pause):
                    await asyncio.sleep(step.seconds)
                    step = plan.send(None)
                else:
                    response = await self._http.request(
                        step.method, step.path, params=step.params, json=step.json, headers=self._headers
                    )
                    step = plan.send(response)
        except StopIteration as done:
            result: T = done.value
            return result

    async def pay(self, bill_id: str, *, pay_source: str | None = None) -> Bill:
        """Pay a WAITING bill; see `MockControls.pay`."""
        return await self._run(_pay_plan(bill_id, pay_source))

    async def expire(self, bill_id: str) -> Bill:
        """Expire a WAITING bill now."""
        return await self._run(_bill_plan("expire", bill_id))

    async def advance_clock(self, seconds: float) -> datetime:
        """Move this merchant's mock clock forward; returns the new time."""
        return await self._run(_advance_plan(seconds))

    async def reset(self) -> None:
        """Forget this merchant's state; see `MockControls.reset`."""
        await self._run(_reset_plan())

    async def health(self) -> dict[str, Any]:
        """`GET /_mock/health`."""
        return await self._run(_health_plan())

    async def notifications(self, bill_id: str | None = None) -> list[Delivery]:
        """This merchant's notification deliveries; see `MockControls.notifications`."""
        return await self._run(_deliveries_plan(bill_id))

    async def wait_for_notification(
        self, bill_id: str, *, status: str | None = "PAID", state: str | None = "delivered", timeout: float = 5.0
    ) -> Delivery:
        """Wait for a notification of `bill_id`; see `MockControls.wait_for_notification`."""
        return await self._run(_wait_plan(bill_id, status, state, timeout))

    async def bills(self) -> list[Bill]:
        """Every bill of this merchant; see `MockControls.bills`."""
        return await self._run(_bills_plan())

    async def requests(self, operation: str | None = None, **filters: Any) -> list[JournalEntry]:
        """This merchant's request journal, filtered; see `MockControls.requests`."""
        return await self._run(_requests_plan(JournalQuery(operation=operation, **filters)))

    async def clear_requests(self) -> None:
        """Forget this merchant's journal entries."""
        await self._run(_clear_requests_plan())

    async def aclose(self) -> None:
        """Close the underlying HTTP client."""
        await self._http.aclose()

    async def __aenter__(self) -> AsyncMockControls:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()
