"""Delivers the notification outbox: signed POSTs to the merchant, retried on QIWI's schedule (`RetryPolicy`).

The service queues an outbox row in the same transaction as the status change; this module delivers. Each
attempt POSTs the stored body `{"bill": {...}, "version": "1"}` with `X-Api-Signature-SHA256` computed by
`qiwi_bill.compute_signature` over the delivery's notification model (keyed with the merchant's secret key),
`Content-Type` and `Accept: application/json` (bill-payments-docs, notifications). The retry policy is this
module's: anything but HTTP 200 is a failure (docs since 2019-11-08) and is retried after the next delay of
`Settings.retry_schedule` (default 36 x 15 min then 15 x 60 min) times `Settings.time_scale`, on the
merchant's own clock. Every attempt is recorded with its status, latency and error. Rows are leased, so several
worker processes never send one attempt twice, and a restart resumes whatever is still pending.

Hardening (issue 16, items 1-2): `notify_timeout` is a deadline for the whole attempt (connect, send, status
line), not httpx's per-read timeout, which a receiver trickling a byte a second never reaches; the answer's body
is streamed and at most `_BODY_LIMIT` bytes of it read (a sender needs only the status line: Stripe ignores
webhook response bodies), so an endless body costs nothing; and deliveries run on a fixed number of independent
workers, claimed round-robin across merchants with at most half of the workers per merchant, so one merchant's
slow endpoint never delays another merchant's notifications.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
import time

import httpx

from qiwi_bill import SIGNATURE_HEADER, compute_signature
from qiwi_bill_mock.failures import is_storage_failure
from qiwi_bill_mock.models import Attempt, Delivery
from qiwi_bill_mock.service import BillService
from qiwi_bill_mock.settings import Settings

__all__ = ["Notifier", "RetryPolicy"]

logger = logging.getLogger("qiwi_bill_mock.notifier")

_MAX_POLL_SECONDS = 1.0  # other workers' commits and clock advances are noticed within this
_MIN_POLL_SECONDS = 0.005
_CAPPED_POLL_SECONDS = 0.05  # a merchant at its cap has rows due that this process may not take yet
_BODY_LIMIT = 4096  # bytes of the merchant's answer read at most: enough to reuse a keep-alive connection


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
    """Background delivery of pending notifications by a fixed pool of workers, fair across merchants.

    Args:
        store: The service holding the outbox.
        transport: Optional httpx transport (tests); default real network.
        concurrency: Workers, i.e. deliveries in flight at once; one merchant gets at most half of them
            (at least one), so another merchant's notification always finds a free worker.
    """

    def __init__(
        self, store: BillService, *, transport: httpx.AsyncBaseTransport | None = None, concurrency: int = 8
    ) -> None:
        self._store = store
        self._settings = store.settings
        self.policy = RetryPolicy.from_settings(store.settings)
        self._transport = transport
        self._concurrency = concurrency
        self.per_site = max(1, concurrency // 2)
        self._client: httpx.AsyncClient | None = None
        self._task: asyncio.Task[None] | None = None
        self._workers: list[asyncio.Task[None]] = []
        self._queue: asyncio.Queue[Delivery] | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._wake: asyncio.Event | None = None
        self._in_flight: dict[int, str] = {}  # delivery id -> site_id, from its claim to its record
        self._thread_id: int | None = None
        store.add_outbox_listener(self.wake)

    def _http(self) -> httpx.AsyncClient:
        if self._client is None:
            # The deadline of the whole attempt is `_deliver`'s; httpx's own timeouts (per phase, per read)
            # stay as a backstop only.
            self._client = httpx.AsyncClient(
                transport=self._transport,
                timeout=self._settings.notify_timeout,
                follow_redirects=False,
                trust_env=False,
            )
        return self._client

    async def _post(self, delivery: Delivery, signature: str) -> int:
        """POST the notification within `notify_timeout` and return the status.

        The deadline covers connect, send and the answer's status line and headers: a receiver that trickles its
        answer is cut at it (`TimeoutError`). Of the body, at most `_BODY_LIMIT` bytes are read, within what is
        left of the deadline and best effort (the status is the answer), then the response is closed.
        """
        deadline = asyncio.get_running_loop().time() + self._settings.notify_timeout
        request = self._http().build_request(
            "POST",
            delivery.url,
            content=delivery.body,
            headers={
                "Content-Type": "application/json",
                "Accept": "application/json",
                SIGNATURE_HEADER: signature,
                "User-Agent": "qiwi-bill-mock",
            },
        )
        try:
            async with asyncio.timeout_at(deadline):
                response = await self._http().send(request, stream=True)
        except TimeoutError:
            raise TimeoutError(f"no answer within notify_timeout ({self._settings.notify_timeout:g} s)") from None
        try:
            # StreamError: an in-process transport (the testing kit's) hands over a response already read.
            with contextlib.suppress(TimeoutError, httpx.HTTPError, httpx.StreamError):
                async with asyncio.timeout_at(deadline):
                    read = 0
                    async for chunk in response.aiter_raw():
                        read += len(chunk)
                        if read >= _BODY_LIMIT:
                            break  # closing a response before its end closes its connection: nothing more is read
        finally:
            await response.aclose()
        return response.status_code

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
            status_code = await self._post(delivery, signature)
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

    def _claim(self, limit: int) -> list[Delivery]:
        """Lease up to `limit` due deliveries, round-robin across merchants, each within its share of workers."""
        if limit <= 0:
            return []
        # Long enough for one attempt; short enough that deliveries leased by a killed worker resume soon.
        lease = self._settings.notify_timeout + 5.0
        busy: dict[str, int] = {}
        for site_id in self._in_flight.values():
            busy[site_id] = busy.get(site_id, 0) + 1
        deliveries = self._store.claim_due_deliveries(
            limit=limit, lease_seconds=lease, per_site=self.per_site, busy=busy
        )
        self._in_flight.update((d.id, d.site_id) for d in deliveries)
        return deliveries

    def _capped(self) -> bool:
        """Whether some merchant has as many deliveries in flight as it may."""
        counts: dict[str, int] = {}
        for site_id in self._in_flight.values():
            counts[site_id] = counts.get(site_id, 0) + 1
        return any(count >= self.per_site for count in counts.values())

    async def run_once(self) -> int:
        """Attempt the deliveries due now (on the mock clock) that one round of workers takes; returns how many."""
        deliveries = self._claim(self._concurrency - len(self._in_flight))
        if not deliveries:
            return 0
        try:
            await asyncio.gather(*(self._deliver(d) for d in deliveries))
        finally:
            for delivery in deliveries:
                self._in_flight.pop(delivery.id, None)
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

    async def _work(self) -> None:
        """One worker: attempt the queued deliveries one at a time, independently of the other workers."""
        assert self._queue is not None
        while True:
            delivery = await self._queue.get()
            try:
                await self._deliver(delivery)
            except Exception as exc:  # recording failed (e.g. a full disk): the lease runs out, the row is retried
                if is_storage_failure(exc):
                    self._store.failures.record(f"recording notification {delivery.id}", exc)
                else:
                    logger.exception("notification %s: the attempt could not be recorded", delivery.id)
            finally:
                self._in_flight.pop(delivery.id, None)
                self._queue.task_done()
                self.wake()  # a worker is free: the dispatcher may claim again

    async def _serve(self) -> None:
        """The dispatcher: claim what the idle workers can start now, hand it to them, sleep until due or woken."""
        assert self._wake is not None
        assert self._queue is not None
        while True:
            self._wake.clear()
            try:
                # Claim no more than idle workers take at once: a claimed row waits for no one, so its lease
                # (notify_timeout + 5 s) always covers its attempt.
                for delivery in self._claim(self._concurrency - len(self._in_flight)):
                    self._queue.put_nowait(delivery)
                if len(self._in_flight) >= self._concurrency:
                    timeout = _MAX_POLL_SECONDS  # every worker is busy: a finishing one wakes this loop
                else:
                    timeout = self._sleep_seconds()
                    if self._capped():
                        timeout = max(timeout, _CAPPED_POLL_SECONDS)
            except Exception as exc:  # keep delivering whatever happens (e.g. a locked database)
                if is_storage_failure(exc):
                    self._store.failures.record("the notifier's claim", exc)
                else:
                    logger.exception("notifier round failed")
                timeout = _MAX_POLL_SECONDS
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), timeout)

    def start(self) -> None:
        """Start the dispatcher and the workers in the running event loop."""
        if self._task is not None:
            return
        self._loop = asyncio.get_running_loop()
        self._thread_id = threading.get_ident()
        self._wake = asyncio.Event()
        self._queue = asyncio.Queue()
        self._workers = [
            asyncio.create_task(self._work(), name=f"qiwi-bill-mock-notifier-{n}") for n in range(self._concurrency)
        ]
        self._task = asyncio.create_task(self._serve(), name="qiwi-bill-mock-notifier")

    async def stop(self) -> None:
        """Stop the loop and hand unfinished deliveries back, so a restart resumes them."""
        task, self._task = self._task, None
        tasks = ([task] if task is not None else []) + self._workers
        self._workers = []
        for each in tasks:
            each.cancel()
        for each in tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await each
        self._store.release_leases(sorted(self._in_flight))
        self._in_flight.clear()
        self._loop = self._wake = None
        self._queue = None
        if self._client is not None:
            await self._client.aclose()
            self._client = None
