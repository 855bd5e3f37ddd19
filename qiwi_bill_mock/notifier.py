"""Delivers the notification outbox: signed POSTs to the merchant, retried on QIWI's schedule (`RetryPolicy`).

The service queues an outbox row in the same transaction as the status change; this module delivers. Each
attempt POSTs the stored body `{"bill": {...}, "version": "1"}` with `X-Api-Signature-SHA256` computed by
`qiwi_bill.compute_signature` over the delivery's notification model (keyed with the merchant's secret key),
`Content-Type` and `Accept: application/json` (bill-payments-docs, notifications). The retry policy is this
module's: anything but HTTP 200 is a failure (docs since 2019-11-08) and is retried after the next delay of
`Settings.retry_schedule` (default 36 x 15 min then 15 x 60 min) times `Settings.time_scale`, on the
merchant's own clock. Every attempt is recorded with its status, latency and error. Rows are leased, so several
worker processes never send one attempt twice, and a restart resumes whatever is still pending.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
import time

import httpx

from qiwi_bill import SIGNATURE_HEADER, compute_signature
from qiwi_bill_mock.models import Attempt, Delivery
from qiwi_bill_mock.service import BillService
from qiwi_bill_mock.settings import Settings

__all__ = ["Notifier", "RetryPolicy"]

logger = logging.getLogger("qiwi_bill_mock.notifier")

_MAX_POLL_SECONDS = 1.0  # other workers' commits and clock advances are noticed within this
_MIN_POLL_SECONDS = 0.005


class RetryPolicy:
    """What an attempt's answer means: delivered, retried later, or given up.

    Args:
        schedule: Delays, in unscaled seconds, before each retry (`Settings.retry_schedule`).
        time_scale: Multiplies every delay (`Settings.time_scale`).
    """

    def __init__(self, schedule: tuple[float, ...], time_scale: float) -> None:
        self.delays_us = tuple(int(delay * time_scale * 1_000_000) for delay in schedule)

    @classmethod
    def from_settings(cls, settings: Settings) -> RetryPolicy:
        """The policy `settings` configure."""
        return cls(settings.retry_schedule, settings.time_scale)

    def verdict(self, attempt: int, status_code: int | None) -> tuple[str, int]:
        """`(outcome, retry_in_us)` after attempt number `attempt` (1-based) answered `status_code`.

        Only HTTP 200 counts as delivered (bill-payments-docs, since 2019-11-08); any other answer, or none, is
        retried while the schedule lasts, then the delivery fails.
        """
        if status_code == 200:
            return "delivered", 0
        if attempt <= len(self.delays_us):
            return "pending", self.delays_us[attempt - 1]
        return "failed", 0


class Notifier:
    """Background delivery of pending notifications.

    Args:
        store: The service holding the outbox.
        transport: Optional httpx transport (tests); default real network.
        concurrency: Deliveries in flight at once.
    """

    def __init__(
        self, store: BillService, *, transport: httpx.AsyncBaseTransport | None = None, concurrency: int = 8
    ) -> None:
        self._store = store
        self._settings = store.settings
        self.policy = RetryPolicy.from_settings(store.settings)
        self._transport = transport
        self._concurrency = concurrency
        self._client: httpx.AsyncClient | None = None
        self._task: asyncio.Task[None] | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._wake: asyncio.Event | None = None
        self._in_flight: set[int] = set()
        self._thread_id: int | None = None
        store.add_outbox_listener(self.wake)

    def _http(self) -> httpx.AsyncClient:
        if self._client is None:
            self._client = httpx.AsyncClient(
                transport=self._transport,
                timeout=self._settings.notify_timeout,
                follow_redirects=False,
                trust_env=False,
            )
        return self._client

    async def _deliver(self, delivery: Delivery) -> None:
        started_us = self._store.now_us(delivery.site_id)
        merchant = self._settings.merchant_by_site_id(delivery.site_id)
        status_code: int | None = None
        error: str | None = None
        started = time.perf_counter()
        try:
            if merchant is None:
                raise LookupError(f"merchant {delivery.site_id!r} is no longer configured")
            signature = compute_signature(delivery.notification, secret=merchant.secret_key)
            response = await self._http().post(
                delivery.url,
                content=delivery.body,
                headers={
                    "Content-Type": "application/json",
                    "Accept": "application/json",
                    SIGNATURE_HEADER: signature,
                    "User-Agent": "qiwi-bill-mock",
                },
            )
            status_code = response.status_code
            if status_code != 200:
                error = f"HTTP {status_code}"
        except Exception as exc:  # any failure is a failed attempt, recorded and retried
            error = f"{type(exc).__name__}: {exc}"[:500] or type(exc).__name__
        latency_ms = (time.perf_counter() - started) * 1000
        outcome, retry_in_us = self.policy.verdict(delivery.attempts + 1, status_code)
        attempt = Attempt(started_us=started_us, status_code=status_code, latency_ms=latency_ms, error=error)
        self._store.record_attempt(delivery, attempt, outcome=outcome, retry_in_us=retry_in_us)
        logger.info(
            "notification %s bill=%s status=%s attempt=%d -> %s (%.1f ms)",
            delivery.id,
            delivery.bill_id,
            delivery.event_status,
            delivery.attempts + 1,
            status_code if status_code is not None else error,
            latency_ms,
        )

    async def run_once(self) -> int:
        """Attempt every delivery due now (on the mock clock); returns how many were attempted."""
        # Long enough for one attempt; short enough that deliveries leased by a killed worker resume soon.
        lease = self._settings.notify_timeout + 5.0
        deliveries = self._store.claim_due_deliveries(limit=self._concurrency, lease_seconds=lease)
        if not deliveries:
            return 0
        self._in_flight.update(d.id for d in deliveries)
        try:
            await asyncio.gather(*(self._deliver(d) for d in deliveries))
        finally:
            self._in_flight.difference_update(d.id for d in deliveries)
        return len(deliveries)

    async def drain(self, *, max_rounds: int = 1000) -> int:
        """Attempt deliveries until none is due now; returns the number of attempts (tests)."""
        total = 0
        for _ in range(max_rounds):
            done = await self.run_once()
            if not done:
                break
            total += done
        return total

    def wake(self) -> None:
        """Deliver promptly (safe from any thread): a notification was just queued or the clock moved."""
        loop, event = self._loop, self._wake
        if loop is None or event is None or loop.is_closed():
            return
        if threading.get_ident() == self._thread_id:
            event.set()
        else:
            with contextlib.suppress(RuntimeError):
                loop.call_soon_threadsafe(event.set)

    def _sleep_seconds(self) -> float:
        due = self._store.next_delivery_due()
        if due is None:
            return _MAX_POLL_SECONDS
        # A small floor: a row that is due yet cannot be claimed (a lease just taken) never makes this loop spin.
        return min(max((due - self._store.now()).total_seconds(), _MIN_POLL_SECONDS), _MAX_POLL_SECONDS)

    async def _serve(self) -> None:
        assert self._wake is not None
        while True:
            try:
                while await self.run_once():
                    pass
                timeout = self._sleep_seconds()
            except Exception:  # keep delivering whatever happens (e.g. a locked database)
                logger.exception("notifier round failed")
                timeout = _MAX_POLL_SECONDS
            if timeout > 0:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._wake.wait(), timeout)
            self._wake.clear()

    def start(self) -> None:
        """Start the background loop in the running event loop."""
        if self._task is not None:
            return
        self._loop = asyncio.get_running_loop()
        self._thread_id = threading.get_ident()
        self._wake = asyncio.Event()
        self._task = asyncio.create_task(self._serve(), name="qiwi-bill-mock-notifier")

    async def stop(self) -> None:
        """Stop the loop and hand unfinished deliveries back, so a restart resumes them."""
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._store.release_leases(sorted(self._in_flight))
        self._in_flight.clear()
        self._loop = self._wake = None
        if self._client is not None:
            await self._client.aclose()
            self._client = None
