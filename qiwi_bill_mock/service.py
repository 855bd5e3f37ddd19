"""The mock's one facade: create / get / reject / pay / expire / refund, the merchants' clocks, the outbox.

Used by the API routes, the `/_mock/` controls, the payment pages and the users' testing kit. It knows no
HTTP and no SQL: it applies QIWI's rules (`rules.py`) to models (`models.py`) kept by the storage
(`storage.py`), and refuses with the exceptions of `errors.py`, which carry their QIWI error.

Bills move `WAITING → PAID | REJECTED | EXPIRED`; a status change that must notify the merchant queues its
notification in the SAME transaction, so a committed `PAID` always has its notification. Every merchant has its
own clock: the injected clock (default: real time) plus what `/_mock/clock/advance` added for that merchant;
expiry, "must be in the future" and that merchant's notification retries follow it.

```python
service = BillService(settings, clock=None, id_factory=None)
bill, created = service.create_bill(site_id, bill_id, BillDraft(...))
service.get_bill(site_id, bill_id) / get_bill_by_invoice_uid(uid) / pay_bill(site_id, bill_id, pay_source=None)
service.reject_bill(site_id, bill_id) / expire_bill(site_id, bill_id) / create_refund(...) / get_refund(...)
service.now(site_id) / advance_clock(seconds, site_id=...) / reset(site_id) / merchant_by_public_key(key)
```
"""

from __future__ import annotations

import asyncio
import os
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from qiwi_bill_mock import rules
from qiwi_bill_mock.errors import BillConflict, BillNotFound, InvalidValues, RefundConflict
from qiwi_bill_mock.failures import StorageFailures
from qiwi_bill_mock.models import Attempt, Bill, BillDraft, Delivery, Refund, from_micros, to_micros
from qiwi_bill_mock.settings import Merchant, Settings
from qiwi_bill_mock.storage import Database, Tables
from qiwi_bill_mock.wire import dumps, format_timestamp, notification_body

__all__ = ["BillService", "OutboxSide"]

_MAX_CLOCK_US = to_micros(datetime(9000, 1, 1, tzinfo=UTC))
SWEEP_CHUNK = 500  # bills expired per transaction by the sweep on the event loop (a few ms each)


def _default_clock() -> datetime:
    return datetime.now(UTC)


class _RandomIds:
    """Random (version 4) UUID strings from the OS's CSPRNG, read 4 KiB at a time, not 16 bytes per call."""

    def __init__(self) -> None:
        self._pool = b""
        self._next = 0
        self._lock = threading.Lock()

    def __call__(self) -> str:
        with self._lock:
            if self._next >= len(self._pool):
                self._pool, self._next = os.urandom(4096), 0
            start = self._next
            self._next += 16
        value = int.from_bytes(self._pool[start : start + 16], "big")
        # Version 4, RFC 4122 variant: what uuid.UUID(bytes=..., version=4) sets, without building the object.
        h = "%032x" % (value & ~(0xF000 << 64) & ~(0xC000 << 48) | (0x4000 << 64) | (0x8000 << 48))
        return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"


_default_id = _RandomIds()


def _truncate_ms(micros: int) -> int:
    return micros - micros % 1000  # server times are whole milliseconds, as in every capture


class OutboxSide:
    """The notification outbox's side of the facade (the notifier's; it owns the retry policy).

    `BillService` is one: the outbox rows are written in the transactions of its status changes.
    """

    database: Database

    def clock_us(self) -> int:
        """The injected clock in microseconds (`BillService` defines it)."""
        raise NotImplementedError

    def add_outbox_listener(self, callback: Callable[[], None]) -> None:
        """Call `callback()` (from the committing thread) after any commit that queued a notification."""
        self.database.add_commit_listener(callback)

    def claim_due_deliveries(
        self,
        *,
        limit: int = 16,
        lease_seconds: float = 60.0,
        per_site: int | None = None,
        busy: Mapping[str, int] | None = None,
    ) -> list[Delivery]:
        """Lease deliveries due on their merchant's clock to this process (other workers skip them meanwhile).

        Round-robin across merchants; with `per_site`, at most that many per merchant, counting the `busy`
        ones (site_id -> deliveries this process is already attempting).
        """
        if not self.database.has_deliveries_due(self.clock_us()):
            return []
        with self.database.write() as tables:
            return tables.claim_deliveries(
                self.clock_us(), limit=limit, lease_seconds=lease_seconds, per_site=per_site, busy=busy
            )

    def record_attempt(self, delivery: Delivery, attempt: Attempt, *, outcome: str, retry_in_us: int = 0) -> None:
        """Record one attempt with the notifier's verdict: `delivered`, `failed`, or `pending` (in `retry_in_us`)."""
        with self.database.write() as tables:
            now_us = self.clock_us() + tables.clock_offset(delivery.site_id)
            next_us = now_us + retry_in_us if outcome == "pending" else now_us
            tables.record_attempt(delivery, attempt, state=outcome, next_us=next_us)

    def release_leases(self, delivery_ids: Sequence[int]) -> None:
        """Give deliveries back (clean shutdown mid-attempt), so a restart resumes them at once."""
        if delivery_ids:
            with self.database.write() as tables:
                tables.release_leases(delivery_ids)

    def next_delivery_due(self) -> datetime | None:
        """When (on the injected clock) the earliest pending delivery not leased by a worker falls due, if any."""
        due = self.database.next_delivery_due_us()
        return None if due is None else from_micros(due)

    def list_deliveries(
        self, site_id: str, bill_id: str | None = None, *, after: int = 0, limit: int = -1
    ) -> list[dict[str, Any]]:
        """Deliveries of this merchant (newest last) with every attempt, as JSON-ready dicts.

        Only those with an `id` above `after`, at most `limit` of them (-1: all): one page of the journal.
        """
        return [
            {
                "id": row[0],
                "billId": row[1],
                "status": row[2],
                "url": row[3],
                "state": row[4],
                "attemptCount": row[5],
                "nextAttemptDateTime": format_timestamp(row[6]) if row[4] == "pending" else None,
                "createdDateTime": format_timestamp(row[7]),
                "attempts": [
                    {
                        "attempt": a[0],
                        "dateTime": format_timestamp(a[1]),
                        "statusCode": a[2],
                        "latencyMs": round(a[3], 3),
                        "error": a[4],
                    }
                    for a in attempts
                ],
            }
            for row, attempts in self.database.deliveries(site_id, bill_id, after=after, limit=limit)
        ]


class BillService(OutboxSide):
    """Bills, refunds, clocks and the notification outbox, by QIWI's rules.

    Args:
        settings: Merchants, notification statuses, currencies, expiry lag.
        clock: Returns the current aware datetime; a merchant's `advance_clock` adds an offset to it.
        id_factory: Returns a new unique id (invoice uids); default a random UUID string.
        database: The storage; default one from `settings.db_path` / `settings.db_owner`.
    """

    def __init__(
        self,
        settings: Settings,
        *,
        clock: Callable[[], datetime] | None = None,
        id_factory: Callable[[], str] | None = None,
        database: Database | None = None,
    ) -> None:
        self.settings = settings
        self._clock = clock or _default_clock
        to_micros(self._clock())  # fail now, not on every request, if the injected clock gives naive datetimes
        self._new_id = id_factory or _default_id
        self._lag_us = int(settings.expiry_lag * settings.time_scale * 1_000_000)
        self.database = database or Database(settings.db_path, owner=settings.db_owner)
        self.failures = StorageFailures()  # failing writes, logged one line each and counted for /_mock/health

    # -- clocks -------------------------------------------------------------------------------

    def clock_us(self) -> int:
        """The injected clock in microseconds (the system clock without building a datetime)."""
        if self._clock is _default_clock:
            return time.time_ns() // 1000
        return to_micros(self._clock())

    def now_us(self, site_id: str | None = None) -> int:
        """A merchant's clock in microseconds (`None`: the injected clock, which no merchant moved)."""
        if site_id is None:
            return self.clock_us()
        with self.database.read() as tables:
            return self.clock_us() + tables.clock_offset(site_id)

    def now(self, site_id: str | None = None) -> datetime:
        """A merchant's clock: the injected clock plus that merchant's `advance_clock` calls."""
        return from_micros(self.now_us(site_id))

    def advance_clock(self, seconds: float, *, site_id: str) -> datetime:
        """Move one merchant's clock forward (shared by every worker on one database file).

        Raises:
            InvalidValues: `seconds` is negative, or the clock would pass the year 9000.
        """
        if not seconds >= 0:
            raise InvalidValues({"seconds": ["seconds must be a non-negative number"]})
        delta = int(Decimal(str(seconds)) * 1_000_000)
        with self.database.write() as tables:
            # Keep the clock where datetimes and SQLite integers work (and well before year 9999).
            if self.clock_us() + tables.clock_offset(site_id) + delta > _MAX_CLOCK_US:
                raise InvalidValues({"seconds": ["the mock clock cannot move past the year 9000"]})
            tables.add_clock_offset(site_id, delta)
        return self.now(site_id)

    # -- bills --------------------------------------------------------------------------------

    def create_bill(self, site_id: str, bill_id: str, draft: BillDraft) -> tuple[Bill, bool]:
        """Issue a bill, or return the stored one for a repeated `billId` (logically idempotent).

        Raises:
            InvalidValues: the draft breaks a rule (checked before anything is stored) and no bill has this id.
            BillConflict: strict idempotency is on and the stored bill was created from another body.
        """
        with self.database.write() as tables:
            now_us = self.clock_us() + tables.clock_offset(site_id)
            try:
                rules.check_draft(draft, now_us=now_us, currencies=self.settings.accepted_currencies)
            except InvalidValues:
                # A repeated create answers with the stored bill even when its body no longer passes (the
                # expiration has passed since, say).
                existing = tables.bill(site_id, bill_id)
                if existing is None:
                    raise
                return self._repeated_create(tables, existing, draft, now_us), False
            created_us = _truncate_ms(now_us)
            bill = Bill(
                site_id=site_id,
                bill_id=bill_id,
                invoice_uid=self._new_id(),
                amount=draft.amount.quantize(rules.CENT),
                currency=draft.currency,
                status="WAITING",
                created_us=created_us,
                changed_us=created_us,
                expires_us=to_micros(draft.expiration),
                expiration_text=draft.expiration_text,
                comment=draft.comment,
                customer=dict(draft.customer),
                custom_fields=dict(draft.custom_fields),
                pay_source=None,
                refunded=Decimal("0.00"),
            )
            if tables.insert_bill(bill):
                return bill, True
            existing = tables.bill(site_id, bill_id)
            assert existing is not None  # the conflict was on this very key, in this transaction
            return self._repeated_create(tables, existing, draft, now_us), False

    def _repeated_create(self, tables: Tables, existing: Bill, draft: BillDraft, now_us: int) -> Bill:
        if self.settings.strict_idempotency and not rules.same_request(existing, draft):
            raise BillConflict(f"bill {existing.bill_id!r} already exists with other parameters")
        return self._expire_if_overdue(tables, existing, now_us)

    def get_bill(self, site_id: str, bill_id: str) -> Bill | None:
        """The bill in its current status (moved to EXPIRED first if it is overdue on its merchant's clock)."""
        found = self.database.bill_with_offset(site_id, bill_id)
        if found is None:
            return None
        bill, offset = found
        # Only a WAITING bill can be overdue: final bills need no clock (the hot path of GET).
        if bill.status != "WAITING" or not self._overdue(bill, self.clock_us() + offset):
            return bill
        with self.database.write() as tables:
            current = tables.bill(site_id, bill_id)
            if current is None:
                return None
            return self._expire_if_overdue(tables, current, self.clock_us() + tables.clock_offset(site_id))

    def bill_version(self, site_id: str, bill_id: str) -> tuple[str, str, int] | None:
        """`(invoice_uid, status, changed_us)` after lazy expiry: what the bill's wire form depends on (GET)."""
        row = self.database.bill_version(site_id, bill_id)
        if row is None:
            return None
        if row[1] != "WAITING" or self.clock_us() + int(row[4] or 0) < row[3] + self._lag_us:
            return row[0], row[1], row[2]
        bill = self.get_bill(site_id, bill_id)
        return None if bill is None else bill.version

    def get_bill_any_merchant(self, bill_id: str) -> Bill | None:
        """First bill with this id, whoever owns it (only the `skip_auth_on_get` broken mode uses this)."""
        key = self.database.find_bill(bill_id=bill_id)
        return self.get_bill(*key) if key else None

    def get_bill_by_invoice_uid(self, invoice_uid: str) -> Bill | None:
        """The bill behind a `payUrl` (`?invoice_uid=`), for the payment pages."""
        key = self.database.find_bill(invoice_uid=invoice_uid)
        return self.get_bill(*key) if key else None

    def _overdue(self, bill: Bill, now_us: int) -> bool:
        return bill.status == "WAITING" and now_us >= bill.expires_us + self._lag_us

    def _set_status(self, tables: Tables, bill: Bill, status: str, changed_us: int, pay_source: str | None) -> Bill:
        """Change the status and queue the notification in the same transaction."""
        updated = tables.set_status(bill, status, changed_us, pay_source)
        merchant = self.settings.merchant_by_site_id(bill.site_id)
        if status in self.settings.notify_statuses and merchant is not None and merchant.notify_url:
            now_us = self.clock_us() + tables.clock_offset(bill.site_id)
            tables.queue_notification(
                updated, url=merchant.notify_url, body=dumps(notification_body(updated)), now_us=now_us
            )
        return updated

    def _expire_if_overdue(self, tables: Tables, bill: Bill, now_us: int) -> Bill:
        if not self._overdue(bill, now_us):
            return bill
        # The successor's EXPIRED example sets changedDateTime to expirationDateTime [doc, successor].
        return self._set_status(tables, bill, "EXPIRED", _truncate_ms(bill.expires_us), None)

    def _transition(self, site_id: str, bill_id: str, action: str, target: str, pay_source: str | None) -> Bill:
        with self.database.write() as tables:
            bill = tables.bill(site_id, bill_id)
            if bill is None:
                raise BillNotFound(bill_id)
            now_us = self.clock_us() + tables.clock_offset(site_id)
            bill = self._expire_if_overdue(tables, bill, now_us)
            if not rules.transition(bill, target, action):
                return bill
            return self._set_status(tables, bill, target, _truncate_ms(now_us), pay_source)

    def pay_bill(self, site_id: str, bill_id: str, *, pay_source: str | None = None) -> Bill:
        """Mark a WAITING bill PAID (and queue its notification): the ONE pay path (controls and pages).

        Raises:
            BillNotFound: no such bill.
            WrongBillStatus: the bill is REJECTED or EXPIRED.
            InvalidValues: `pay_source` is not one of `rules.PAY_SOURCES`.
        """
        return self._transition(site_id, bill_id, "pay", "PAID", rules.check_pay_source(pay_source))

    def reject_bill(self, site_id: str, bill_id: str) -> Bill:
        """Cancel a WAITING bill; a REJECTED bill returns itself (see `rules.transition`)."""
        return self._transition(site_id, bill_id, "reject", "REJECTED", None)

    def expire_bill(self, site_id: str, bill_id: str) -> Bill:
        """Expire a WAITING bill now (test control); an EXPIRED bill returns itself."""
        return self._transition(site_id, bill_id, "expire", "EXPIRED", None)

    def sweep_expired(self, *, limit: int = -1) -> int:
        """Move overdue WAITING bills (on their merchant's clock) to EXPIRED, at most `limit` (-1: all), in one
        transaction; returns how many moved. `sweep_expired_in_chunks` is the one for the event loop."""
        if not self.database.has_bills_due(self.clock_us(), self._lag_us):
            return 0
        with self.database.write() as tables:
            due = tables.waiting_bills_due(self.clock_us(), self._lag_us, limit=limit)
            for bill in due:
                self._expire_if_overdue(tables, bill, self.clock_us() + tables.clock_offset(bill.site_id))
        return len(due)

    async def sweep_expired_in_chunks(self, chunk: int = SWEEP_CHUNK) -> int:
        """`sweep_expired` in transactions of `chunk` bills, yielding to the event loop between them.

        One transaction for 50k overdue bills held the loop for 2.2-2.6 s (issue 16, item 7): every other request
        of the process waited. A chunk of 500 takes a few milliseconds.
        """
        total = 0
        while True:
            moved = self.sweep_expired(limit=chunk)
            total += moved
            if moved < chunk:
                return total
            await asyncio.sleep(0)

    # -- refunds ------------------------------------------------------------------------------

    def create_refund(
        self, site_id: str, bill_id: str, refund_id: str, *, amount: Decimal, currency: str
    ) -> tuple[Refund, bool]:
        """Refund part or all of a PAID bill; a repeated `refundId` with the same amount returns the stored refund.

        Raises:
            BillNotFound: no such bill.
            RefundConflict: the `refundId` exists with another amount or currency.
            WrongBillStatus: the bill is not PAID.
            IncorrectRefundAmount: see `rules.refund_outcome`.
        """
        with self.database.write() as tables:
            bill = tables.bill(site_id, bill_id)
            if bill is None:
                raise BillNotFound(bill_id)
            existing = tables.refund(site_id, bill_id, refund_id)
            if existing is not None:
                if existing.amount == amount and existing.currency == currency:
                    return existing, False
                raise RefundConflict(f"refund {refund_id!r} already exists with another amount")
            now_us = self.clock_us() + tables.clock_offset(site_id)
            bill = self._expire_if_overdue(tables, bill, now_us)
            total, status = rules.refund_outcome(bill, amount, currency)
            refund = Refund(
                site_id=site_id,
                bill_id=bill_id,
                refund_id=refund_id,
                amount=amount.quantize(rules.CENT),
                currency=currency,
                status=status,
                created_us=_truncate_ms(now_us),
            )
            tables.insert_refund(refund, refunded_total=total.quantize(rules.CENT))
            return refund, True

    def get_refund(self, site_id: str, bill_id: str, refund_id: str) -> Refund | None:
        """The refund, or `None` (the caller checks the bill first for the right 404 code)."""
        with self.database.read() as tables:
            return tables.refund(site_id, bill_id, refund_id)

    # -- merchants ------------------------------------------------------------------------------

    def merchant_by_public_key(self, public_key: str) -> Merchant | None:
        """The merchant owning `public_key` (the payment form's create flow), if any."""
        return self.settings.merchant_by_public_key(public_key)

    def reset(self, site_id: str) -> None:
        """Forget this merchant's bills, refunds and notifications, and put its clock back to real time."""
        with self.database.write() as tables:
            tables.delete_merchant(site_id)

    # -- storage plumbing ---------------------------------------------------------------------

    def run_batch(self, operations: Sequence[Callable[[], Any]]) -> list[Any]:
        """Group commit (see `storage.Database.run_batch`)."""
        return self.database.run_batch(operations)

    def checkpoint(self) -> None:
        """Fold the WAL into the database file (clean shutdown)."""
        self.database.checkpoint()

    def close(self) -> None:
        """Close the storage (idempotent)."""
        self.database.close()
