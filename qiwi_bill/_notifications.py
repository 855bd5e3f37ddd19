"""Receiving QIWI's server notifications: verify, parse into the generated model, de-duplicate, acknowledge.

QIWI POSTs ``{"bill": {...}, "version": "1"}`` with an ``X-Api-Signature-SHA256`` header, retries anything but an
HTTP 200 "with increasing interval within 24 hours", and "may deliver a notification more than once even after a
200" (P2P docs, 2020-07). The signature covers five bill fields and **no timestamp or nonce**, so a captured
notification can be replayed forever: handlers must be idempotent on ``billId`` + ``status`` whatever this module's
de-duplication does (it is an optimisation, not a guarantee).
"""

from __future__ import annotations

import hmac
import inspect
import json
import threading
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Mapping
from typing import Any, Protocol, runtime_checkable

from attrs import field, frozen

from qiwi_bill_client.models import BillNotification

from ._dates import parse_datetime
from ._errors import InvalidFieldError, InvalidNotificationError, InvalidSignatureError
from ._money import normalize_amount
from ._signature import (
    SIGNATURE_HEADER,
    NotificationInput,
    SignatureHeaderInput,
    _decode,
    _key,
    _mac,
    _signature_bytes,
    signature_message,
)

__all__ = [
    "ACK_BODY",
    "AsyncSeenStore",
    "MemorySeenStore",
    "NotificationReceiver",
    "NotificationReply",
    "SeenStore",
    "notification_key",
    "parse_notification",
]

#: The acknowledgement QIWI expects with HTTP 200 (API doc, "Уведомления"; ``NotificationAck`` in the spec).
ACK_BODY = b'{"error":"0"}'
_JSON_HEADERS: Mapping[str, str] = {"Content-Type": "application/json"}


def _load(notification: NotificationInput) -> dict[str, Any]:
    """The notification as a ``{"bill": ..., "version": ...}`` dict, JSON decoded once."""
    data = _decode(notification)
    if "bill" not in data:
        # A bare bill (the envelope stripped by the caller); QIWI's envelope carries version "1".
        return {"bill": dict(data), "version": "1"}
    return dict(data)


def _model(data: Mapping[str, Any]) -> BillNotification:
    """Build the generated model from a verified notification, reading every QIWI spelling."""
    bill = dict(data["bill"])
    # The signed spelling ("1" -> "1.00"): the model's Amount.value is the two-decimal string.
    amount = dict(bill["amount"])
    amount["value"] = normalize_amount(amount["value"], field="bill.amount.value")
    bill["amount"] = amount
    status = dict(bill["status"])
    if "changedDateTime" not in status and "datetime" in status:
        # The Kassa notification sample spells the status time `datetime`; the P2P sample `changedDateTime`.
        status["changedDateTime"] = status.pop("datetime")
    for container, key, path in (
        (status, "changedDateTime", "bill.status.changedDateTime"),
        (bill, "creationDateTime", "bill.creationDateTime"),
        (bill, "expirationDateTime", "bill.expirationDateTime"),
    ):
        if key not in container:
            raise InvalidNotificationError(path, "missing")
        # Notifications carry `2021-01-18T15:25:18+03` (hour-only offset) and doc samples no offset at all; the
        # generated from_dict uses datetime.fromisoformat, which would make the latter naive. Normalise first.
        try:
            container[key] = parse_datetime(container[key], field=path).isoformat()
        except InvalidFieldError:
            # No echo of the value: messages about untrusted bodies end up in logs.
            raise InvalidNotificationError(path, "not an ISO 8601 timestamp") from None
    bill["status"] = status
    envelope = {**data, "bill": bill}
    if "version" not in envelope:
        raise InvalidNotificationError("version", "missing")
    try:
        return BillNotification.from_dict(envelope)
    except KeyError as error:
        raise InvalidNotificationError(f"bill.{error.args[0]}", "missing") from None
    except (TypeError, ValueError, AttributeError) as error:
        reason = f"does not match the notification schema ({type(error).__name__})"
        raise InvalidNotificationError("bill", reason) from None


def parse_notification(
    body: NotificationInput, signature_header: SignatureHeaderInput, *, secret: str | bytes
) -> BillNotification:
    """Verify a notification's signature, then return it as the generated ``BillNotification`` model.

    Args:
        body: The raw request body (``bytes`` or ``str``), or the decoded JSON, with or without ``{"bill": ...}``.
        signature_header: The ``X-Api-Signature-SHA256`` value, or the request's headers (any mapping).
        secret: The merchant's secret key.

    Returns:
        The notification. ``bill.amount.value`` is the two-decimal string that was signed (use
        :func:`qiwi_bill.parse_amount` for a ``Decimal``); all datetimes are timezone-aware.

    Raises:
        InvalidSignatureError: The header is missing or malformed, or the signature does not match.
        InvalidNotificationError: (a subclass) The body is not JSON, or a field is missing or malformed.
        InvalidFieldError: ``secret`` is empty.
    """
    mac = _mac(secret)
    received = _signature_bytes(signature_header)
    if received is None:
        raise InvalidSignatureError(f"missing or malformed {SIGNATURE_HEADER} header (expected 64 hex digits)")
    data = _load(body)
    mac.update(signature_message(data).encode())
    if not hmac.compare_digest(mac.digest(), received):
        raise InvalidSignatureError(f"the {SIGNATURE_HEADER} signature does not match the notification")
    return _model(data)


def notification_key(notification: BillNotification) -> str:
    """The de-duplication key of a notification: site, bill and status (``'["test", "test_bill", "PAID"]'``).

    JSON keeps it unambiguous whatever characters the ids contain.
    """
    bill = notification.bill
    return json.dumps([bill.site_id, bill.bill_id, bill.status.value.value], ensure_ascii=False)


@runtime_checkable
class SeenStore(Protocol):
    """Where a :class:`NotificationReceiver` remembers handled notifications (e.g. a DB table or Redis).

    ``mark`` is called only after the handler succeeded, so a failed handling is retried by QIWI. Two deliveries
    racing each other may both be handled: keep handlers idempotent.
    """

    def seen(self, key: str) -> bool:
        """Whether ``key`` was marked before (and not yet forgotten)."""
        ...

    def mark(self, key: str) -> None:
        """Remember ``key``; keep it at least 24 hours (QIWI's retry window)."""
        ...


class AsyncSeenStore(Protocol):
    """The ``async`` flavour of :class:`SeenStore`, usable with :meth:`NotificationReceiver.handle_async`."""

    async def seen(self, key: str) -> bool:
        """Whether ``key`` was marked before."""
        ...

    async def mark(self, key: str) -> None:
        """Remember ``key`` for at least 24 hours."""
        ...


class MemorySeenStore:
    """A bounded, thread-safe, in-process :class:`SeenStore` (the default).

    Keys are forgotten after ``ttl`` seconds (default 48 h, twice QIWI's 24 h retry window) or, oldest first,
    when more than ``max_entries`` are held. One process only: with several workers use a shared store.

    Args:
        max_entries: The most keys kept.
        ttl: Seconds a key is remembered.
        clock: A monotonic clock in seconds (injectable for tests).
    """

    def __init__(
        self, *, max_entries: int = 100_000, ttl: float = 48 * 3600, clock: Callable[[], float] = time.monotonic
    ) -> None:
        if max_entries < 1:
            raise InvalidFieldError("max_entries", f"must be at least 1, got {max_entries}")
        if not ttl > 0:
            raise InvalidFieldError("ttl", f"must be positive, got {ttl}")
        self._entries: OrderedDict[str, float] = OrderedDict()
        self._lock = threading.Lock()
        self._max_entries = max_entries
        self._ttl = ttl
        self._clock = clock

    def seen(self, key: str) -> bool:
        """Whether ``key`` was marked less than ``ttl`` seconds ago."""
        with self._lock:
            expires = self._entries.get(key)
            if expires is None:
                return False
            if expires <= self._clock():
                del self._entries[key]
                return False
            return True

    def mark(self, key: str) -> None:
        """Remember ``key`` for ``ttl`` seconds, evicting expired and then the oldest keys."""
        with self._lock:
            now = self._clock()
            self._entries.pop(key, None)
            self._entries[key] = now + self._ttl
            while self._entries:
                oldest_key, oldest_expiry = next(iter(self._entries.items()))
                if oldest_expiry > now and len(self._entries) <= self._max_entries:
                    break
                del self._entries[oldest_key]

    def __len__(self) -> int:
        return len(self._entries)

    def __repr__(self) -> str:
        return f"MemorySeenStore(entries={len(self._entries)}, max_entries={self._max_entries}, ttl={self._ttl})"


@frozen
class NotificationReply:
    """What to answer QIWI, framework-neutral: ``status_code``, ``headers`` and ``body`` bytes.

    Attributes:
        status_code: 200 when handled or a duplicate; 403 for a bad signature; 400 for an unreadable body.
        body: ``{"error":"0"}`` on success (what QIWI expects), a short JSON reason otherwise.
        headers: ``Content-Type: application/json``.
        notification: The verified notification, if the signature was good.
        duplicate: The notification had been handled before; the handler was not called.
        error: Why it was rejected (no secrets), else ``None``.
    """

    status_code: int
    body: bytes
    headers: Mapping[str, str] = field(factory=lambda: dict(_JSON_HEADERS))
    notification: BillNotification | None = None
    duplicate: bool = False
    error: str | None = None

    @property
    def ok(self) -> bool:
        """Whether QIWI will consider the notification delivered (HTTP 200)."""
        return self.status_code == 200


Handler = Callable[[BillNotification], object]
"""A notification handler; its return value is ignored. For :meth:`NotificationReceiver.handle_async` it may be a
coroutine function."""


class NotificationReceiver:
    """Verify, de-duplicate and dispatch QIWI notifications; produce the reply ``200 {"error":"0"}``.

    Framework-neutral: give it the raw body and the request's headers, send back the returned
    :class:`NotificationReply`. Order: verify the signature (403 if bad, 400 if unreadable, the handler is not
    called) → skip a notification already handled (by site, bill and status; 200, handler not called) → call the
    handler → remember it → 200. If the handler raises, nothing is remembered and the exception propagates: let
    your framework answer 500 and QIWI will retry.

    QIWI signs no timestamp, so de-duplication cannot stop a deliberate replay and concurrent duplicates can both
    reach the handler: make the handler idempotent on ``billId`` + ``status``.

    Args:
        secret: The merchant's secret key.
        handler: Called with each new verified notification.
        seen_store: Where handled notifications are remembered; a :class:`MemorySeenStore` by default.
    """

    def __init__(
        self,
        *,
        secret: str | bytes,
        handler: Handler,
        seen_store: SeenStore | AsyncSeenStore | None = None,
    ) -> None:
        _key(secret)  # fail now, not on the first notification
        self._secret = secret
        self._handler = handler
        self.seen_store: SeenStore | AsyncSeenStore = MemorySeenStore() if seen_store is None else seen_store

    def __repr__(self) -> str:
        return f"NotificationReceiver(secret='***', handler={self._handler!r}, seen_store={self.seen_store!r})"

    def _verify(self, body: NotificationInput, headers: SignatureHeaderInput) -> BillNotification | NotificationReply:
        try:
            return parse_notification(body, headers, secret=self._secret)
        except InvalidNotificationError as error:
            return NotificationReply(400, b'{"error":"bad request"}', error=str(error))
        except InvalidSignatureError as error:
            return NotificationReply(403, b'{"error":"invalid signature"}', error=str(error))

    def handle(self, body: NotificationInput, headers: SignatureHeaderInput) -> NotificationReply:
        """Process one notification synchronously.

        Args:
            body: The raw request body (preferably ``bytes``).
            headers: The request's headers (any mapping), or just the signature header's value.

        Returns:
            The reply to send.
        """
        verified = self._verify(body, headers)
        if isinstance(verified, NotificationReply):
            return verified
        key = notification_key(verified)
        seen = self.seen_store.seen(key)
        if inspect.isawaitable(seen):
            _close(seen)
            raise TypeError("this seen_store is async; use `await receiver.handle_async(...)`")
        if seen:
            return NotificationReply(200, ACK_BODY, notification=verified, duplicate=True)
        result = self._handler(verified)
        if inspect.isawaitable(result):
            _close(result)
            raise TypeError("the handler is async; use `await receiver.handle_async(...)`")
        self.seen_store.mark(key)
        return NotificationReply(200, ACK_BODY, notification=verified)

    async def handle_async(self, body: NotificationInput, headers: SignatureHeaderInput) -> NotificationReply:
        """Process one notification; the handler and the seen-store may be sync or async.

        Args:
            body: The raw request body (preferably ``bytes``).
            headers: The request's headers (any mapping), or just the signature header's value.

        Returns:
            The reply to send.
        """
        verified = self._verify(body, headers)
        if isinstance(verified, NotificationReply):
            return verified
        key = notification_key(verified)
        if await _maybe_await(self.seen_store.seen(key)):
            return NotificationReply(200, ACK_BODY, notification=verified, duplicate=True)
        await _maybe_await(self._handler(verified))
        await _maybe_await(self.seen_store.mark(key))
        return NotificationReply(200, ACK_BODY, notification=verified)


async def _maybe_await(value: object) -> Any:
    if inspect.isawaitable(value):
        return await value
    return value


def _close(awaitable: Awaitable[object]) -> None:
    # Avoid "coroutine was never awaited" warnings when refusing an async callable in the sync path.
    close = getattr(awaitable, "close", None)
    if callable(close):
        close()
