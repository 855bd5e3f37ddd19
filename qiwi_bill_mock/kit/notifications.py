"""Notifications delivered in-process: the mock's outgoing POSTs routed to receivers a test registers.

`create_app(..., notify_transport=router)` sends every notification through `NotificationRouter` (an httpx async
transport) instead of the network. The router looks up the POST's URL (a merchant's `notify_url`) among the
routes a test registered and hands the request to that target:

- a `qiwi_bill.NotificationReceiver` (the helper a merchant's site uses): its reply is the answer;
- an httpx transport, e.g. `httpx.ASGITransport(app=your_site)` or `httpx.WSGITransport(app=flask_app)`, so your
  real web app receives the POST exactly as from the network;
- a callable taking the `httpx.Request` and returning an `httpx.Response`, a status code or `None` (200 with
  QIWI's acknowledgement `{"error":"0"}`), sync or async.

A URL with no route is answered like a well-behaved merchant would: 200 with the acknowledgement when the signature
verifies, 403 otherwise. Either way the `NotificationInbox` records each POST: URL, headers, raw body, the
notification verified with the merchant's secret key (`qiwi_bill.parse_notification`) and the answer, so a test can
`inbox.wait(bill_id=..., status="PAID")`. An exception in a target is a failed attempt: the mock retries it on
its schedule, as QIWI would after a 500.
"""

from __future__ import annotations

import asyncio
import inspect
import json
import threading
import time
from collections.abc import Awaitable, Callable, Iterator, Mapping
from typing import Any

import httpx
from attrs import frozen

from qiwi_bill import ACK_BODY, NotificationReceiver, parse_notification
from qiwi_bill_client.models import BillNotification
from qiwi_bill_mock.settings import Settings

__all__ = ["NotificationInbox", "NotificationRouter", "NotificationTarget", "ReceivedNotification"]

NotificationTarget = (
    NotificationReceiver
    | httpx.AsyncBaseTransport
    | httpx.BaseTransport
    | Callable[[httpx.Request], "httpx.Response | int | Awaitable[httpx.Response | int | None] | None"]
)
"""Where a routed notification goes: a receiver, an httpx transport, or a callable (see the module docstring)."""


@frozen(kw_only=True)
class ReceivedNotification:
    """One notification POST the mock sent, as the receiving side saw it.

    Attributes:
        url: The URL it was POSTed to (the merchant's `notify_url`).
        headers: The request headers (`X-Api-Signature-SHA256` among them).
        body: The raw body, exactly as signed.
        notification: The notification, verified with the merchant's secret key; `None` if it did not verify.
        error: Why verification failed, else `None`.
        status_code: What the receiver answered (`0`: it raised, see `error`).
    """

    url: str
    headers: Mapping[str, str]
    body: bytes
    notification: BillNotification | None
    error: str | None
    status_code: int

    @property
    def verified(self) -> bool:
        """Whether the signature matched the merchant's secret key."""
        return self.notification is not None

    @property
    def bill_id(self) -> str | None:
        """The notified bill's id (when it verified)."""
        return None if self.notification is None else self.notification.bill.bill_id

    @property
    def status(self) -> str | None:
        """The notified status (`PAID`...) (when it verified)."""
        return None if self.notification is None else self.notification.bill.status.value.value


class NotificationInbox:
    """Every notification POST the router handled, in order; thread-safe, waitable."""

    def __init__(self) -> None:
        self._items: list[ReceivedNotification] = []
        self._changed = threading.Condition()

    def add(self, item: ReceivedNotification) -> None:
        """Record one POST (the router calls this)."""
        with self._changed:
            self._items.append(item)
            self._changed.notify_all()

    def clear(self) -> None:
        """Forget every recorded POST."""
        with self._changed:
            self._items.clear()

    @property
    def all(self) -> list[ReceivedNotification]:
        """A snapshot of every recorded POST, oldest first."""
        with self._changed:
            return list(self._items)

    def __len__(self) -> int:
        return len(self.all)

    def __iter__(self) -> Iterator[ReceivedNotification]:
        return iter(self.all)

    def find(self, *, bill_id: str | None = None, status: str | None = None) -> list[ReceivedNotification]:
        """The verified notifications of this bill and/or status."""
        return [
            item
            for item in self.all
            if item.verified
            and (bill_id is None or item.bill_id == bill_id)
            and (status is None or item.status == status)
        ]

    def wait(
        self, *, bill_id: str | None = None, status: str | None = None, timeout: float = 5.0
    ) -> ReceivedNotification:
        """Block until a verified notification of this bill and/or status arrived; return the first one.

        Raises:
            TimeoutError: None arrived within `timeout` seconds (the message lists what did arrive).
        """
        deadline = time.monotonic() + timeout
        with self._changed:
            while True:
                found = self.find(bill_id=bill_id, status=status)
                if found:
                    return found[0]
                left = deadline - time.monotonic()
                if left <= 0:
                    raise TimeoutError(self._timeout_message(bill_id, status, timeout))
                self._changed.wait(left)

    async def wait_async(
        self, *, bill_id: str | None = None, status: str | None = None, timeout: float = 5.0
    ) -> ReceivedNotification:
        """`wait()` for async tests: polls without blocking the caller's event loop."""
        deadline = time.monotonic() + timeout
        while True:
            found = self.find(bill_id=bill_id, status=status)
            if found:
                return found[0]
            if time.monotonic() >= deadline:
                raise TimeoutError(self._timeout_message(bill_id, status, timeout))
            await asyncio.sleep(0.01)

    def _timeout_message(self, bill_id: str | None, status: str | None, timeout: float) -> str:
        seen = [(item.url, item.bill_id, item.status, item.status_code, item.error) for item in self.all]
        return f"no verified notification (billId={bill_id!r}, status={status!r}) within {timeout}s; received: {seen}"


def _ack(status_code: int) -> httpx.Response:
    body = ACK_BODY if status_code == 200 else b'{"error":"rejected"}'
    return httpx.Response(status_code, headers={"Content-Type": "application/json"}, content=body)


class NotificationRouter(httpx.AsyncBaseTransport):
    """The mock's notification transport: routes each POST by URL and records it in `inbox`.

    Args:
        settings: The mock's settings (the merchants whose keys verify the signatures).
        inbox: Where POSTs are recorded; a new `NotificationInbox` by default.
    """

    def __init__(self, settings: Settings, *, inbox: NotificationInbox | None = None) -> None:
        self._settings = settings
        self.inbox = inbox if inbox is not None else NotificationInbox()
        self._routes: dict[str, NotificationTarget] = {}

    def route(self, url: str, target: NotificationTarget) -> None:
        """Send POSTs to `url` (compared without its query string) to `target` from now on."""
        self._routes[_key(url)] = target

    def unroute(self, url: str) -> None:
        """Answer POSTs to `url` with the default acknowledgement again."""
        self._routes.pop(_key(url), None)

    def _verify(self, body: bytes, headers: httpx.Headers) -> tuple[BillNotification | None, str | None]:
        site_id = _site_id(body)
        merchant = None if site_id is None else self._settings.merchant_by_site_id(site_id)
        if merchant is None:
            return None, f"no merchant with siteId {site_id!r}"
        try:
            return parse_notification(body, headers, secret=merchant.secret_key), None
        except ValueError as exc:  # InvalidSignatureError / InvalidNotificationError
            return None, str(exc)

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        """Deliver one notification POST to its route (or acknowledge it), and record it."""
        body = await request.aread()
        notification, error = self._verify(body, request.headers)
        target = self._routes.get(_key(str(request.url)))
        status = 0
        try:
            response = _ack(200 if notification is not None else 403) if target is None else None
            if response is None:
                assert target is not None
                response = await _dispatch(target, request, body)
            await response.aread()
            status = response.status_code
            return response
        except Exception as exc:
            error = f"{type(exc).__name__}: {exc}"
            raise
        finally:
            self.inbox.add(
                ReceivedNotification(
                    url=str(request.url),
                    headers=dict(request.headers),
                    body=body,
                    notification=notification,
                    error=error,
                    status_code=status,
                )
            )


def _key(url: str) -> str:
    return url.split("?", 1)[0].split("#", 1)[0]


def _site_id(body: bytes) -> str | None:
    try:
        data = json.loads(body)
        site_id = data["bill"]["siteId"]
    except (ValueError, TypeError, KeyError):
        return None
    return site_id if isinstance(site_id, str) else None


async def _dispatch(target: NotificationTarget, request: httpx.Request, body: bytes) -> httpx.Response:
    if isinstance(target, NotificationReceiver):
        reply = await target.handle_async(body, request.headers)
        return httpx.Response(reply.status_code, headers=dict(reply.headers), content=reply.body)
    fresh = httpx.Request(request.method, request.url, headers=request.headers, content=body)
    if isinstance(target, httpx.AsyncBaseTransport):
        return await target.handle_async_request(fresh)
    if isinstance(target, httpx.BaseTransport):
        # A WSGI app (Flask, Django) blocks: run it off the mock's event loop.
        response = await asyncio.to_thread(target.handle_request, fresh)
        await asyncio.to_thread(response.read)
        return response
    result: Any = target(fresh)
    if inspect.isawaitable(result):
        result = await result
    if result is None:
        return _ack(200)
    if isinstance(result, int) and not isinstance(result, bool):
        return _ack(result)
    if isinstance(result, httpx.Response):
        return result
    raise TypeError(f"a notification target returned {type(result).__name__}; expected httpx.Response, int or None")
