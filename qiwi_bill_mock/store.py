"""The mock's state machine and its SQLite persistence (standard library only, no HTTP imports).

Bills move `WAITING → PAID | REJECTED | EXPIRED` (only `WAITING` is not final, bill-payments-docs
status table); `PAID` bills take refunds, `PARTIAL` until their sum reaches the bill amount, then
`FULL`. A status change that must notify the merchant writes its outbox row in the SAME
transaction, so a committed `PAID` always has its notification (the notifier delivers it).

Persistence: one SQLite connection per `Store` (one per worker process), in memory by default or a
file (`Settings.db_path`) in WAL mode with `synchronous=NORMAL`, which survives `kill -9`. Every
read-modify-write runs in `BEGIN IMMEDIATE`, so several worker processes on one file stay correct
(one bill per `billId`, refunds never beyond the bill amount, one final status). A method that
returns has committed.

Store API (used by the HTTP layer, the `/_mock/` controls and the payment pages):

```python
store = Store(settings, clock=None, id_factory=None)    # clock() -> aware datetime; id_factory() -> str
store.now() -> datetime                                 # the mock clock (clock() + advanced offset)
store.advance_clock(seconds) -> datetime
store.create_bill(site_id, bill_id, draft: BillDraft) -> tuple[Bill, bool]   # (bill, created?)
store.get_bill(site_id, bill_id) -> Bill | None         # applies lazy expiry
store.bill_version(site_id, bill_id) -> (invoice_uid, status, changed_us) | None   # what the wire form depends on
store.get_bill_any_merchant(bill_id) -> Bill | None     # only for the `skip_auth_on_get` broken mode
store.get_bill_by_invoice_uid(invoice_uid) -> Bill | None   # payment pages (`payUrl` carries the uid)
store.pay_bill(site_id, bill_id, pay_source=None) -> Bill   # the ONE pay path (controls and pages)
store.reject_bill(site_id, bill_id) -> Bill
store.expire_bill(site_id, bill_id) -> Bill
store.create_refund(site_id, bill_id, refund_id, amount=Decimal, currency=str) -> tuple[Refund, bool]
store.get_refund(site_id, bill_id, refund_id) -> Refund | None
store.list_refunds(site_id, bill_id) -> list[Refund]
store.sweep_expired() -> int                            # the sweeper: expire overdue WAITING bills
store.reset(site_id) -> None                            # forget a merchant's data, reset the clock
store.list_deliveries(site_id, bill_id=None) -> list[dict]  # notification outbox + attempts
store.add_outbox_listener(callback)                     # called after a commit that queued a notification
store.claim_due_deliveries() / record_attempt(...) / release_leases(ids) / next_delivery_due()   # the notifier
store.checkpoint() / close()
```

For the form-create flow, look the merchant up with `settings.merchant_by_public_key(key)` and
call `create_bill(merchant.site_id, bill_id, BillDraft(...))`. `Bill.pay_source` is set by
`pay_bill`. Failures raise `StoreError` subclasses: `BillNotFound`, `RefundNotFound`,
`DraftInvalid` (`.cause` maps field → messages), `BillConflict`, `RefundConflict`,
`WrongBillStatus` (`.status`), `IncorrectRefundAmount`.
"""

from __future__ import annotations

import json
import os
import sqlite3
import threading
import time
import weakref
from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

from attrs import define, field

from qiwi_bill_mock.settings import Settings
from qiwi_bill_mock.wire import dumps, format_timestamp, notification_body, to_micros

__all__ = [
    "PAY_SOURCES",
    "Bill",
    "BillConflict",
    "BillDraft",
    "BillNotFound",
    "DatabaseInUse",
    "Delivery",
    "DraftInvalid",
    "IncorrectRefundAmount",
    "Refund",
    "RefundConflict",
    "RefundNotFound",
    "Store",
    "StoreError",
    "WrongBillStatus",
]

#: `paySource` values of the payment form (Kassa docs: qw, card, mobile, sovest).
PAY_SOURCES = frozenset({"qw", "card", "mobile", "sovest"})

_MAX_AMOUNT = Decimal("999999.99")  # "Number(6.2)" [doc]
_CENT = Decimal("0.01")
_MAX_CLOCK_US = to_micros(datetime(9000, 1, 1, tzinfo=UTC))
# json.dumps builds a new encoder per call when given options; these are built once.
_DETAILS = json.JSONEncoder(ensure_ascii=False)
_NO_DETAILS = _DETAILS.encode({"comment": None, "customer": {}, "customFields": {}})


class DatabaseInUse(sqlite3.OperationalError):
    """The database file is owned by another store (`Settings.db_owner`), or an owner found it in use."""


class StoreError(Exception):
    """Base of the store's refusals (each maps to one QIWI error in the HTTP layer)."""


class BillNotFound(StoreError):
    """No such bill for this merchant."""


class RefundNotFound(StoreError):
    """No such refund on this bill."""


class BillConflict(StoreError):
    """Strict idempotency: the `billId` exists with a different body."""


class RefundConflict(StoreError):
    """The `refundId` exists on this bill with a different amount."""


class DraftInvalid(StoreError):
    """A bill draft breaks a rule; `cause` maps field → messages (QIWI's `validation.error` shape)."""

    def __init__(self, cause: Mapping[str, list[str]]) -> None:
        super().__init__("; ".join(f"{k}: {', '.join(v)}" for k, v in cause.items()))
        self.cause = dict(cause)


class WrongBillStatus(StoreError):
    """The bill's status does not allow the action (reject a PAID bill, refund a WAITING one...)."""

    def __init__(self, status: str, action: str) -> None:
        super().__init__(f"cannot {action} a bill in status {status}")
        self.status = status
        self.action = action


class IncorrectRefundAmount(StoreError):
    """Refund amount not positive, beyond what remains, or in another currency (`refund.incorrect.amount`)."""


@define(frozen=True, kw_only=True)
class BillDraft:
    """A validated create request.

    Args:
        amount: Exact amount, more than 0, at most 999999.99, at most 2 decimals.
        currency: ISO 4217 code; must be in `Settings.accepted_currencies`.
        expiration: Aware datetime; must lie in the future of the mock clock.
        expiration_text: How `expirationDateTime` is echoed back (the offset and precision sent).
        comment: Optional comment (≤ 255 characters).
        customer: `phone` / `email` / `account` strings; empty means none.
        custom_fields: Free-form string values; empty means none.
    """

    amount: Decimal
    currency: str
    expiration: datetime
    expiration_text: str
    comment: str | None = None
    customer: Mapping[str, str] = field(factory=dict)
    custom_fields: Mapping[str, str] = field(factory=dict)


@define(frozen=True, kw_only=True)
class Bill:
    """A stored bill. Times are integer microseconds since the epoch (server times are whole ms)."""

    site_id: str
    bill_id: str
    invoice_uid: str
    amount: Decimal
    currency: str
    status: str
    created_us: int
    changed_us: int
    expires_us: int
    expiration_text: str
    comment: str | None
    customer: Mapping[str, str]
    custom_fields: Mapping[str, str]
    pay_source: str | None
    refunded: Decimal


@define(frozen=True, kw_only=True)
class Refund:
    """A stored refund."""

    site_id: str
    bill_id: str
    refund_id: str
    amount: Decimal
    currency: str
    status: str
    created_us: int


@define(frozen=True, kw_only=True)
class Delivery:
    """A notification claimed for one delivery attempt."""

    id: int
    site_id: str
    bill_id: str
    event_status: str
    url: str
    body: bytes
    attempts: int


_SCHEMA = """
CREATE TABLE IF NOT EXISTS bills (
    site_id TEXT NOT NULL,
    bill_id TEXT NOT NULL,
    invoice_uid TEXT NOT NULL UNIQUE,
    currency TEXT NOT NULL,
    amount TEXT NOT NULL,
    status TEXT NOT NULL,
    created_us INTEGER NOT NULL,
    changed_us INTEGER NOT NULL,
    expires_us INTEGER NOT NULL,
    expiration_text TEXT NOT NULL,
    details TEXT NOT NULL,
    pay_source TEXT,
    refunded TEXT NOT NULL DEFAULT '0.00',
    fingerprint TEXT NOT NULL, -- no longer read: strict idempotency compares the stored fields
    PRIMARY KEY (site_id, bill_id)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS bills_waiting ON bills (status, expires_us);
CREATE TABLE IF NOT EXISTS refunds (
    site_id TEXT NOT NULL,
    bill_id TEXT NOT NULL,
    refund_id TEXT NOT NULL,
    currency TEXT NOT NULL,
    amount TEXT NOT NULL,
    status TEXT NOT NULL,
    created_us INTEGER NOT NULL,
    PRIMARY KEY (site_id, bill_id, refund_id)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS outbox (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    site_id TEXT NOT NULL,
    bill_id TEXT NOT NULL,
    event_status TEXT NOT NULL,
    url TEXT NOT NULL,
    body BLOB NOT NULL,
    state TEXT NOT NULL,
    attempts INTEGER NOT NULL DEFAULT 0,
    next_us INTEGER NOT NULL,
    lease_until REAL NOT NULL DEFAULT 0,
    created_us INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS outbox_due ON outbox (state, next_us);
CREATE TABLE IF NOT EXISTS attempts (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    delivery_id INTEGER NOT NULL,
    attempt INTEGER NOT NULL,
    at_us INTEGER NOT NULL,
    status_code INTEGER,
    latency_ms REAL NOT NULL,
    error TEXT
);
CREATE INDEX IF NOT EXISTS attempts_delivery ON attempts (delivery_id);
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value INTEGER NOT NULL);
"""

_BILL_COLUMNS = (
    "site_id, bill_id, invoice_uid, currency, amount, status, created_us, changed_us, expires_us, "
    "expiration_text, details, pay_source, refunded"
)


# A bill's columns, then the clock offset (NULL when the clock was never moved).
_READ_WITH_OFFSET = (
    f"SELECT {_BILL_COLUMNS}, (SELECT value FROM meta WHERE key = 'clock_offset_us') "
    "FROM bills WHERE site_id = ? AND bill_id = ?"
)


def _default_clock() -> datetime:
    return datetime.now(UTC)


class _Transaction:
    """`Store._write()`: a context manager class, not a generator (about 1 us less per write, and a PUT takes two)."""

    __slots__ = ("_nested", "_store")

    def __init__(self, store: Store) -> None:
        self._store = store
        self._nested = False

    def __enter__(self) -> sqlite3.Connection:
        store = self._store
        store._lock.acquire()
        conn = store._conn
        try:
            self._nested = store._in_batch  # the batch's transaction; run_batch undoes a failed operation
            if not self._nested:
                conn.execute("BEGIN IMMEDIATE")
                try:
                    if not store._schema_ready:
                        for statement in filter(None, (s.strip() for s in _SCHEMA.split(";"))):
                            conn.execute(statement)
                        store._schema_ready = True
                except BaseException:
                    conn.execute("ROLLBACK")
                    raise
                store._queued = False
        except BaseException:
            store._lock.release()
            raise
        return conn

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: Any) -> None:
        store = self._store
        conn = store._conn
        notify = False
        try:
            if self._nested:
                return
            if exc_type is not None:
                conn.execute("ROLLBACK")
                return
            notify = store._queued
            try:
                conn.execute("COMMIT")
            except BaseException:
                if conn.in_transaction:
                    conn.execute("ROLLBACK")
                raise
            store._commits += 1
            if store._restart_due:
                store._restart_wal(conn)
        finally:
            store._lock.release()
        if notify:
            for listener in list(store._listeners):
                listener()


class _Replay(Exception):
    """A batched operation raised after writing: undo the batch and run it again with savepoints."""


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


def _same_request(bill: Bill, draft: BillDraft) -> bool:
    """Whether a repeated create asks for what the stored bill was created from (strict idempotency)."""
    return (
        bill.amount == draft.amount.quantize(_CENT)
        and bill.currency == draft.currency
        and bill.expires_us == to_micros(draft.expiration)
        and bill.comment == draft.comment
        and dict(bill.customer) == dict(draft.customer)
        and dict(bill.custom_fields) == dict(draft.custom_fields)
    )


def _truncate_ms(micros: int) -> int:
    return micros - micros % 1000


def _claim(path: str, *, owner: bool) -> int | None:
    """flock `<path>-lock`, exclusive for an owner, shared otherwise; `None` where flock does not exist.

    A lock file beside the database, not the database itself: closing any descriptor of the database file would
    drop this process's POSIX locks on it, SQLite's own included.
    """
    try:
        import fcntl
    except ImportError:  # Windows: no owner mode, reads always look for other writers
        return None
    lock_path = f"{path}-lock"
    try:
        fd = os.open(lock_path, os.O_RDWR | os.O_CREAT, 0o644)
    except OSError as exc:
        raise sqlite3.OperationalError(f"cannot create {lock_path}: {exc.strerror}") from None
    try:
        fcntl.flock(fd, (fcntl.LOCK_EX if owner else fcntl.LOCK_SH) | fcntl.LOCK_NB)
    except OSError:
        os.close(fd)
        if owner:
            raise DatabaseInUse(
                f"{path} is in use by another process (one mock owns a file; its --workers share it)"
            ) from None
        raise DatabaseInUse(f"{path} is owned by another mock process") from None
    return fd


class _Checkpointer:
    """A daemon thread that folds the WAL into the database file after commits, on its own connection.

    A PASSIVE checkpoint never blocks the writer or readers, and sqlite3 releases the GIL while it runs, so the
    event loop keeps answering meanwhile. But under a steady stream of commits it never copies the last frame
    before the next one lands, and only a fully copied WAL starts over: with PASSIVE alone the WAL grew by
    29 MB a second under `make bench`'s PUT load. So once a PASSIVE checkpoint found `RESTART_FRAMES` or more
    frames, a second one catches up and the thread asks the store for a restart (`Store._restart_due`): the
    store's next commit runs a RESTART checkpoint on its own connection, which copies the few frames written
    meanwhile and makes the WAL start over. That pauses the store for about 10 ms on this project's machine
    (two `fsync`), every few seconds under full write load, never while nothing writes. The WAL stays under
    about `RESTART_FRAMES` pages plus one interval of writes (about 100 MB at 6,000 creates a second).
    Checkpointing every 2 s rather than every 0.5 s gave a lower PUT p99 and more creates a second (fewer
    `fsync` calls competing with the WAL writes). (A RESTART from this thread starved behind a busy writer;
    checkpoints inside the committing request stalled it for tens of milliseconds: the PUT p99 of the first
    benchmark runs.)
    """

    INTERVAL = 2.0  # seconds between checkpoints (while anything commits)
    RESTART_FRAMES = 16384  # WAL frames (pages, 64 MiB) that call for a restart

    def __init__(self, path: str, store: Store) -> None:
        self._path = path
        self._store = weakref.ref(store)  # a store dropped without close() still ends the thread
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="qiwi-bill-mock-checkpoint", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        conn = sqlite3.connect(self._path, isolation_level=None, check_same_thread=False, timeout=30.0)
        try:
            seen = 0
            while not self._stop.wait(self.INTERVAL):
                store = self._store()
                if store is None or store._closed:
                    break
                now, restart_due = store._commits, store._restart_due
                del store
                if now == seen or restart_due:  # idle, or the store has not restarted the WAL yet
                    continue
                seen = now
                try:
                    _busy, frames, _copied = conn.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchone()
                except sqlite3.Error:  # busy or locked: the next round tries again
                    continue
                if frames < self.RESTART_FRAMES:
                    continue
                try:  # catch up with what was written meanwhile: the restart then has only a few frames to copy
                    conn.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchone()
                except sqlite3.Error:
                    continue
                if (store := self._store()) is not None:
                    store._restart_due = True
                    del store
        finally:
            conn.close()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=30)


class Store:
    """Bills, refunds, the notification outbox and the mock clock, in SQLite.

    Args:
        settings: Merchants, notification statuses, currencies, expiry lag, retry schedule.
        clock: Returns the current aware datetime; `/_mock/clock/advance` adds an offset to it.
        id_factory: Returns a new unique id (invoice uids); default a random UUID string.
    """

    def __init__(
        self,
        settings: Settings,
        *,
        clock: Callable[[], datetime] | None = None,
        id_factory: Callable[[], str] | None = None,
    ) -> None:
        self.settings = settings
        self._clock = clock or _default_clock
        to_micros(self._clock())  # fail now, not on every request, if the injected clock gives naive datetimes
        self._new_id = id_factory or _default_id
        self._lock = threading.RLock()
        self._listeners: list[Callable[[], None]] = []
        self._lag_us = int(settings.expiry_lag * settings.time_scale * 1_000_000)
        path = settings.db_path or ":memory:"
        self._lock_fd: int | None = None
        if settings.db_path:
            self._lock_fd = _claim(settings.db_path, owner=settings.db_owner)
        # Other connections may commit to this file: reads must look for their commits.
        self._shared = bool(settings.db_path) and not (settings.db_owner and self._lock_fd is not None)
        try:
            self._conn = sqlite3.connect(path, isolation_level=None, check_same_thread=False, timeout=30.0)
            self._conn.execute("PRAGMA busy_timeout = 30000")
            if settings.db_path:
                # WAL: readers never block the writer; NORMAL: a commit survives kill -9 (not power loss).
                self._conn.execute("PRAGMA journal_mode = WAL")
                self._conn.execute("PRAGMA synchronous = NORMAL")
                # Checkpoints (WAL → database file, with an fsync) run in a background thread, not in the commit
                # that crosses SQLite's 1000-page threshold: that commit used to stall every request for tens of
                # milliseconds (the PUT p99 of `make bench`).
                self._conn.execute("PRAGMA wal_autocheckpoint = 0")
        except BaseException:
            if self._lock_fd is not None:
                os.close(self._lock_fd)
            raise
        self._schema_ready = False
        self._offset_cache: int | None = None
        self._queued = False
        self._in_batch = False
        self._closed = False
        self._commits = 0
        self._restart_due = False  # set by the checkpointer thread, see _Checkpointer
        self._versions: dict[tuple[str, str], tuple[Any, ...]] = {}  # bill_version's rows, see there
        self._versions_stamp = -1
        self._checkpointer: _Checkpointer | None = None
        with self._write():
            pass  # creates the schema
        if settings.db_path:
            self._checkpointer = _Checkpointer(settings.db_path, self)

    # -- plumbing ---------------------------------------------------------------------------

    def _write(self) -> _Transaction:
        """One `BEGIN IMMEDIATE` transaction: committed when the block exits, rolled back on error.

        Inside `run_batch`, the batch's transaction instead.
        """
        return _Transaction(self)

    def _restart_wal(self, conn: sqlite3.Connection) -> None:
        """The RESTART checkpoint the checkpointer asked for (see `_Checkpointer`), right after a commit."""
        try:
            conn.execute("PRAGMA wal_checkpoint(RESTART)").fetchone()
        except sqlite3.Error:  # another process's checkpoint or reader: the checkpointer will ask again
            pass
        finally:
            self._restart_due = False

    def run_batch(self, operations: Sequence[Callable[[], Any]]) -> list[Any]:
        """Group commit: run write operations (calls of this store's methods) in ONE transaction, committed once.

        An operation that raises is undone alone and the others still commit. Returns each operation's result, or
        the exception it raised (returned, not raised). Nothing is committed before this returns; if the commit
        itself fails, that error is raised for the whole batch. One commit per batch is the point: on a file, a
        commit is the costly part of a create (it writes the WAL pages).
        """
        if len(operations) == 1:  # a failure rolls the whole transaction back
            try:
                with self._write():
                    self._in_batch = True
                    try:
                        return [operations[0]()]
                    finally:
                        self._in_batch = False
            except Exception as exc:
                return [exc]
        try:
            return self._run_together(operations, savepoints=False)
        except _Replay:
            return self._run_together(operations, savepoints=True)

    def _run_together(self, operations: Sequence[Callable[[], Any]], *, savepoints: bool) -> list[Any]:
        # Operations refuse before they write (unknown bill, wrong status, invalid draft...), so a batch first runs
        # without savepoints (two statements per operation). One that raises after writing (a bug, a disk error)
        # rolls the batch back, and the batch runs again with a savepoint per operation.
        results: list[Any] = []
        with self._write() as conn:
            self._in_batch = True
            try:
                for operation in operations:
                    if savepoints:
                        conn.execute("SAVEPOINT operation")
                    changes = conn.total_changes
                    try:
                        results.append(operation())
                    except Exception as exc:
                        if savepoints:
                            conn.execute("ROLLBACK TO operation")
                        elif conn.total_changes != changes:
                            raise _Replay from exc
                        results.append(exc)
                    if savepoints:
                        conn.execute("RELEASE operation")
            finally:
                self._in_batch = False
        return results

    def _offset_us(self, conn: sqlite3.Connection) -> int:
        # In memory or on an owned file, only this store moves the clock: keep the offset in hand. On a shared
        # file, another worker may have moved it, so read it (one indexed row).
        if self._offset_cache is not None:
            return self._offset_cache
        row = conn.execute("SELECT value FROM meta WHERE key = 'clock_offset_us'").fetchone()
        offset = int(row[0]) if row else 0
        if not self._shared:
            self._offset_cache = offset
        return offset

    def _clock_us(self) -> int:
        """The injected clock in microseconds (the system clock without building a datetime)."""
        if self._clock is _default_clock:
            return time.time_ns() // 1000
        return to_micros(self._clock())

    def _now_us(self, conn: sqlite3.Connection) -> int:
        return self._clock_us() + self._offset_us(conn)

    def add_outbox_listener(self, callback: Callable[[], None]) -> None:
        """Call `callback()` (from the committing thread) after any commit that queued a notification."""
        self._listeners.append(callback)

    def checkpoint(self) -> None:
        """Fold the WAL into the database file (clean shutdown; committed data is safe without it)."""
        if self.settings.db_path and not self._closed:
            with self._lock:
                self._conn.execute("PRAGMA wal_checkpoint(PASSIVE)")

    def close(self) -> None:
        """Close the connection (idempotent)."""
        with self._lock:
            if not self._closed:
                self._closed = True
                if self._checkpointer is not None:
                    self._checkpointer.stop()
                self._conn.close()
                if self._lock_fd is not None:
                    os.close(self._lock_fd)  # releases the flock

    # -- clock ------------------------------------------------------------------------------

    def now(self) -> datetime:
        """The mock clock: the injected clock plus every `advance_clock`."""
        with self._lock:
            return self._clock() + timedelta(microseconds=self._offset_us(self._conn))

    def advance_clock(self, seconds: float) -> datetime:
        """Move the mock clock forward (shared by every worker on one database file)."""
        if not seconds >= 0:
            raise ValueError("seconds must be a non-negative number")
        delta = int(Decimal(str(seconds)) * 1_000_000)
        with self._write() as conn:
            # Keep the mock clock where datetimes and SQLite integers work (and well before year 9999).
            if self._now_us(conn) + delta > _MAX_CLOCK_US:
                raise ValueError("the mock clock cannot move past the year 9000")
            conn.execute(
                "INSERT INTO meta (key, value) VALUES ('clock_offset_us', ?) "
                "ON CONFLICT (key) DO UPDATE SET value = value + excluded.value",
                (delta,),
            )
            self._offset_cache = None
        return self.now()

    # -- bills ------------------------------------------------------------------------------

    def _row_to_bill(self, row: tuple[Any, ...]) -> Bill:
        details = json.loads(row[10])
        return Bill(
            site_id=row[0],
            bill_id=row[1],
            invoice_uid=row[2],
            currency=row[3],
            amount=Decimal(row[4]),
            status=row[5],
            created_us=row[6],
            changed_us=row[7],
            expires_us=row[8],
            expiration_text=row[9],
            comment=details.get("comment"),
            customer=details.get("customer") or {},
            custom_fields=details.get("customFields") or {},
            pay_source=row[11],
            refunded=Decimal(row[12]),
        )

    def _select(self, conn: sqlite3.Connection, site_id: str, bill_id: str) -> Bill | None:
        row = conn.execute(
            f"SELECT {_BILL_COLUMNS} FROM bills WHERE site_id = ? AND bill_id = ?", (site_id, bill_id)
        ).fetchone()
        return self._row_to_bill(row) if row else None

    def _overdue(self, bill: Bill, now_us: int) -> bool:
        return bill.status == "WAITING" and now_us >= bill.expires_us + self._lag_us

    def _set_status(
        self, conn: sqlite3.Connection, bill: Bill, status: str, changed_us: int, *, pay_source: str | None = None
    ) -> Bill:
        """Change the status and queue the notification in the same transaction."""
        conn.execute(
            "UPDATE bills SET status = ?, changed_us = ?, pay_source = COALESCE(?, pay_source) "
            "WHERE site_id = ? AND bill_id = ?",
            (status, changed_us, pay_source, bill.site_id, bill.bill_id),
        )
        updated = self._select(conn, bill.site_id, bill.bill_id)
        assert updated is not None
        self._queue_notification(conn, updated)
        return updated

    def _queue_notification(self, conn: sqlite3.Connection, bill: Bill) -> None:
        if bill.status not in self.settings.notify_statuses:
            return
        merchant = self.settings.merchant_by_site_id(bill.site_id)
        if merchant is None or not merchant.notify_url:
            return
        now_us = self._now_us(conn)
        conn.execute(
            "INSERT INTO outbox (site_id, bill_id, event_status, url, body, state, next_us, created_us) "
            "VALUES (?, ?, ?, ?, ?, 'pending', ?, ?)",
            (
                bill.site_id,
                bill.bill_id,
                bill.status,
                merchant.notify_url,
                dumps(notification_body(bill)),
                now_us,
                now_us,
            ),
        )
        self._queued = True

    def _expire_if_overdue(self, conn: sqlite3.Connection, bill: Bill, now_us: int) -> Bill:
        if not self._overdue(bill, now_us):
            return bill
        # The successor's EXPIRED example sets changedDateTime to expirationDateTime [doc, successor].
        return self._set_status(conn, bill, "EXPIRED", _truncate_ms(bill.expires_us))

    def check_draft(self, draft: BillDraft, *, now_us: int | None = None) -> None:
        """Raise `DraftInvalid` unless the draft obeys the rules the schema cannot express.

        `now_us`: the mock clock in microseconds, when the caller has just read it (default: read it here).
        """
        cause: dict[str, list[str]] = {}
        amount = draft.amount
        if not amount.is_finite() or amount <= 0 or amount > _MAX_AMOUNT or amount != amount.quantize(_CENT):
            cause["amount.value"] = ["must be more than 0 and at most 999999.99, with at most 2 decimals"]
        if draft.currency not in self.settings.accepted_currencies:
            accepted = ", ".join(sorted(self.settings.accepted_currencies))
            cause["amount.currency"] = [f"currency is not accepted (accepted: {accepted})"]
        if to_micros(draft.expiration) <= (to_micros(self.now()) if now_us is None else now_us):
            cause["expirationDateTime"] = ["must be in the future"]
        if draft.comment is not None and len(draft.comment) > 255:
            cause["comment"] = ["size must be between 0 and 255"]
        for key, value in draft.custom_fields.items():
            if len(value) > 255:
                cause[f"customFields.{key}"] = ["size must be between 0 and 255"]
        if cause:
            raise DraftInvalid(cause)

    def create_bill(self, site_id: str, bill_id: str, draft: BillDraft) -> tuple[Bill, bool]:
        """Issue a bill, or return the stored one for a repeated `billId` (logically idempotent).

        Returns:
            The bill and whether it was created now.

        Raises:
            DraftInvalid: the draft breaks a rule (checked before anything is stored) and no bill has this id.
            BillConflict: strict idempotency is on and the stored bill was created from another body.
        """
        with self._write() as conn:
            now_us = self._now_us(conn)
            try:
                self.check_draft(draft, now_us=now_us)
            except DraftInvalid:
                # A repeated create answers with the stored bill even when its body no longer passes (the
                # expiration has passed since, say).
                existing = self._select(conn, site_id, bill_id)
                if existing is None:
                    raise
                return self._repeated_create(conn, existing, draft, now_us), False
            now_us = _truncate_ms(now_us)
            created = Bill(
                site_id=site_id,
                bill_id=bill_id,
                invoice_uid=self._new_id(),
                amount=draft.amount.quantize(_CENT),
                currency=draft.currency,
                status="WAITING",
                created_us=now_us,
                changed_us=now_us,
                expires_us=to_micros(draft.expiration),
                expiration_text=draft.expiration_text,
                comment=draft.comment,
                customer=dict(draft.customer),
                custom_fields=dict(draft.custom_fields),
                pay_source=None,
                refunded=Decimal("0.00"),
            )
            details_text = _NO_DETAILS
            if created.comment is not None or created.customer or created.custom_fields:
                details = {"comment": created.comment, "customer": created.customer}
                details_text = _DETAILS.encode({**details, "customFields": created.custom_fields})
            # The PUT hot path: a new bill costs this one statement (a repeated billId changes nothing here and
            # is read next). The `fingerprint` column is no longer read; '' keeps older database files writable.
            inserted = conn.execute(
                f"INSERT INTO bills ({_BILL_COLUMNS}, fingerprint) "
                "VALUES (?, ?, ?, ?, ?, 'WAITING', ?, ?, ?, ?, ?, NULL, '0.00', '') "
                "ON CONFLICT (site_id, bill_id) DO NOTHING",
                (
                    site_id,
                    bill_id,
                    created.invoice_uid,
                    created.currency,
                    str(created.amount),
                    now_us,
                    now_us,
                    created.expires_us,
                    created.expiration_text,
                    details_text,
                ),
            ).rowcount
            if inserted:
                return created, True
            existing = self._select(conn, site_id, bill_id)
            assert existing is not None  # the conflict was on this very key, in this transaction
            return self._repeated_create(conn, existing, draft, self._now_us(conn)), False

    def _repeated_create(self, conn: sqlite3.Connection, existing: Bill, draft: BillDraft, now_us: int) -> Bill:
        if self.settings.strict_idempotency and not _same_request(existing, draft):
            raise BillConflict(f"bill {existing.bill_id!r} already exists with other parameters")
        return self._expire_if_overdue(conn, existing, now_us)

    def _read_bill(self, site_id: str, bill_id: str) -> Bill | None:
        with self._lock:
            # One statement reads the bill and the clock offset (a GET that misses the wire cache).
            row = self._conn.execute(_READ_WITH_OFFSET, (site_id, bill_id)).fetchone()
            if row is None:
                return None
            bill = self._row_to_bill(row)
            # Only a WAITING bill can be overdue: final bills need no clock (the hot path of GET).
            if bill.status != "WAITING":
                return bill
            offset = self._offset_cache if self._offset_cache is not None else int(row[-1] or 0)
            if not self._overdue(bill, self._clock_us() + offset):
                return bill
        with self._write() as conn:
            current = self._select(conn, site_id, bill_id)
            return None if current is None else self._expire_if_overdue(conn, current, self._now_us(conn))

    def bill_version(self, site_id: str, bill_id: str) -> tuple[str, str, int] | None:
        """`(invoice_uid, status, changed_us)` of the bill after lazy expiry: what its wire form depends on.

        The GET hot path. Rows read here are kept until anything commits: a commit of this store, or, on a
        shared file, of any other connection (`PRAGMA data_version` changes). A repeated read of an unchanged
        store then costs no query in memory or on an owned file (`Settings.db_owner`), one pragma on a shared
        file (in `make bench`, that pragma was 14 us of a 84 us GET: it takes and drops the WAL read lock).
        """
        key = (site_id, bill_id)
        with self._lock:
            stamp = self._commits
            if self._shared:
                stamp = (stamp << 32) + self._conn.execute("PRAGMA data_version").fetchone()[0]
            if stamp != self._versions_stamp:
                self._versions.clear()
                self._versions_stamp = stamp
            row = self._versions.get(key)
            if row is None:
                # One statement reads the bill's version and the clock offset.
                row = self._conn.execute(
                    "SELECT invoice_uid, status, changed_us, expires_us, (SELECT value FROM meta WHERE key = "
                    "'clock_offset_us') FROM bills WHERE site_id = ? AND bill_id = ?",
                    key,
                ).fetchone()
                if row is None:
                    return None
                if len(self._versions) >= 100_000:
                    self._versions.clear()
                self._versions[key] = row
            if row[1] != "WAITING":
                return row[0], row[1], row[2]
            offset = self._offset_cache if self._offset_cache is not None else int(row[4] or 0)
            if self._clock_us() + offset < row[3] + self._lag_us:
                return row[0], row[1], row[2]
        bill = self._read_bill(site_id, bill_id)
        return None if bill is None else (bill.invoice_uid, bill.status, bill.changed_us)

    def get_bill(self, site_id: str, bill_id: str) -> Bill | None:
        """The bill in its current status (moved to EXPIRED first if it is overdue)."""
        return self._read_bill(site_id, bill_id)

    def get_bill_any_merchant(self, bill_id: str) -> Bill | None:
        """First bill with this id, whoever owns it (only the `skip_auth_on_get` broken mode uses this)."""
        with self._lock:
            row = self._conn.execute("SELECT site_id FROM bills WHERE bill_id = ? LIMIT 1", (bill_id,)).fetchone()
        return self._read_bill(row[0], bill_id) if row else None

    def get_bill_by_invoice_uid(self, invoice_uid: str) -> Bill | None:
        """The bill behind a `payUrl` (`?invoice_uid=`), for the payment pages."""
        with self._lock:
            row = self._conn.execute(
                "SELECT site_id, bill_id FROM bills WHERE invoice_uid = ?", (invoice_uid,)
            ).fetchone()
        return self._read_bill(row[0], row[1]) if row else None

    def _transition(self, site_id: str, bill_id: str, action: str, target: str, pay_source: str | None) -> Bill:
        with self._write() as conn:
            bill = self._select(conn, site_id, bill_id)
            if bill is None:
                raise BillNotFound(bill_id)
            now_us = self._now_us(conn)
            bill = self._expire_if_overdue(conn, bill, now_us)
            if bill.status == target:
                return bill  # repeating a transition is idempotent
            if bill.status != "WAITING":
                raise WrongBillStatus(bill.status, action)
            return self._set_status(conn, bill, target, _truncate_ms(now_us), pay_source=pay_source)

    def pay_bill(self, site_id: str, bill_id: str, *, pay_source: str | None = None) -> Bill:
        """Mark a WAITING bill PAID (and queue its notification). Paying a PAID bill returns it.

        Raises:
            BillNotFound: no such bill.
            WrongBillStatus: the bill is REJECTED or EXPIRED.
            ValueError: `pay_source` is not one of `PAY_SOURCES`.
        """
        if pay_source is not None and pay_source not in PAY_SOURCES:
            raise ValueError(f"paySource must be one of {', '.join(sorted(PAY_SOURCES))}")
        return self._transition(site_id, bill_id, "pay", "PAID", pay_source)

    def reject_bill(self, site_id: str, bill_id: str) -> Bill:
        """Cancel a WAITING bill; a REJECTED bill returns itself (inferred from the successor's idempotence).

        Raises:
            BillNotFound: no such bill.
            WrongBillStatus: the bill is PAID ("you can only refund", node SDK #32) or EXPIRED.
        """
        return self._transition(site_id, bill_id, "reject", "REJECTED", None)

    def expire_bill(self, site_id: str, bill_id: str) -> Bill:
        """Expire a WAITING bill now (test control); an EXPIRED bill returns itself."""
        return self._transition(site_id, bill_id, "expire", "EXPIRED", None)

    def sweep_expired(self) -> int:
        """Move every overdue WAITING bill to EXPIRED; returns how many moved."""
        with self._lock:
            now_us = self._now_us(self._conn)
            due = self._conn.execute(
                "SELECT 1 FROM bills WHERE status = 'WAITING' AND expires_us <= ? LIMIT 1", (now_us - self._lag_us,)
            ).fetchone()
        if due is None:
            return 0
        moved = 0
        with self._write() as conn:
            now_us = self._now_us(conn)
            rows = conn.execute(
                f"SELECT {_BILL_COLUMNS} FROM bills WHERE status = 'WAITING' AND expires_us <= ?",
                (now_us - self._lag_us,),
            ).fetchall()
            for row in rows:
                self._expire_if_overdue(conn, self._row_to_bill(row), now_us)
                moved += 1
        return moved

    # -- refunds ----------------------------------------------------------------------------

    def _select_refund(self, conn: sqlite3.Connection, site_id: str, bill_id: str, refund_id: str) -> Refund | None:
        row = conn.execute(
            "SELECT currency, amount, status, created_us FROM refunds "
            "WHERE site_id = ? AND bill_id = ? AND refund_id = ?",
            (site_id, bill_id, refund_id),
        ).fetchone()
        if row is None:
            return None
        return Refund(
            site_id=site_id,
            bill_id=bill_id,
            refund_id=refund_id,
            currency=row[0],
            amount=Decimal(row[1]),
            status=row[2],
            created_us=row[3],
        )

    def create_refund(
        self, site_id: str, bill_id: str, refund_id: str, *, amount: Decimal, currency: str
    ) -> tuple[Refund, bool]:
        """Refund part or all of a PAID bill; a repeated `refundId` with the same amount returns the stored refund.

        Returns:
            The refund and whether it was created now.

        Raises:
            BillNotFound: no such bill.
            RefundConflict: the `refundId` exists with another amount or currency.
            WrongBillStatus: the bill is not PAID.
            IncorrectRefundAmount: amount ≤ 0, beyond what remains, or in another currency.
        """
        with self._write() as conn:
            bill = self._select(conn, site_id, bill_id)
            if bill is None:
                raise BillNotFound(bill_id)
            existing = self._select_refund(conn, site_id, bill_id, refund_id)
            if existing is not None:
                if existing.amount == amount and existing.currency == currency:
                    return existing, False
                raise RefundConflict(f"refund {refund_id!r} already exists with another amount")
            now_us = self._now_us(conn)
            bill = self._expire_if_overdue(conn, bill, now_us)
            if bill.status != "PAID":
                raise WrongBillStatus(bill.status, "refund")
            remaining = bill.amount - bill.refunded
            if currency != bill.currency:
                raise IncorrectRefundAmount(f"the refund currency must be the bill's ({bill.currency})")
            if amount <= 0 or amount != amount.quantize(_CENT):
                raise IncorrectRefundAmount("the refund amount must be positive, with at most 2 decimals")
            if amount > remaining:
                raise IncorrectRefundAmount(f"the refund amount exceeds what remains ({remaining:.2f})")
            total = bill.refunded + amount
            status = "FULL" if total == bill.amount else "PARTIAL"
            created_us = _truncate_ms(now_us)
            conn.execute(
                "INSERT INTO refunds (site_id, bill_id, refund_id, currency, amount, status, created_us) "
                "VALUES (?, ?, ?, ?, ?, ?, ?)",
                (site_id, bill_id, refund_id, currency, str(amount.quantize(_CENT)), status, created_us),
            )
            conn.execute(
                "UPDATE bills SET refunded = ? WHERE site_id = ? AND bill_id = ?",
                (str(total.quantize(_CENT)), site_id, bill_id),
            )
            refund = self._select_refund(conn, site_id, bill_id, refund_id)
            assert refund is not None
            return refund, True

    def get_refund(self, site_id: str, bill_id: str, refund_id: str) -> Refund | None:
        """The refund, or `None` (the caller checks the bill first for the right 404 code)."""
        with self._lock:
            return self._select_refund(self._conn, site_id, bill_id, refund_id)

    def list_refunds(self, site_id: str, bill_id: str) -> list[Refund]:
        """Every refund of a bill, oldest first."""
        with self._lock:
            rows = self._conn.execute(
                "SELECT refund_id FROM refunds WHERE site_id = ? AND bill_id = ? ORDER BY created_us, refund_id",
                (site_id, bill_id),
            ).fetchall()
            return [r for (rid,) in rows if (r := self._select_refund(self._conn, site_id, bill_id, rid))]

    # -- reset ------------------------------------------------------------------------------

    def reset(self, site_id: str) -> None:
        """Forget this merchant's bills, refunds and notifications, and reset the mock clock."""
        with self._write() as conn:
            conn.execute("DELETE FROM refunds WHERE site_id = ?", (site_id,))
            conn.execute("DELETE FROM bills WHERE site_id = ?", (site_id,))
            conn.execute(
                "DELETE FROM attempts WHERE delivery_id IN (SELECT id FROM outbox WHERE site_id = ?)", (site_id,)
            )
            conn.execute("DELETE FROM outbox WHERE site_id = ?", (site_id,))
            conn.execute("DELETE FROM meta WHERE key = 'clock_offset_us'")
            self._offset_cache = None

    # -- notification outbox ----------------------------------------------------------------

    def claim_due_deliveries(self, *, limit: int = 16, lease_seconds: float = 60.0) -> list[Delivery]:
        """Lease due pending deliveries to this process (other workers skip them until the lease ends)."""
        wall = time.time()
        with self._lock:
            now_us = self._now_us(self._conn)
            probe = self._conn.execute(
                "SELECT 1 FROM outbox WHERE state = 'pending' AND next_us <= ? AND lease_until <= ? LIMIT 1",
                (now_us, wall),
            ).fetchone()
        if probe is None:
            return []
        with self._write() as conn:
            rows = conn.execute(
                "SELECT id, site_id, bill_id, event_status, url, body, attempts FROM outbox "
                "WHERE state = 'pending' AND next_us <= ? AND lease_until <= ? ORDER BY next_us, id LIMIT ?",
                (self._now_us(conn), wall, limit),
            ).fetchall()
            conn.executemany(
                "UPDATE outbox SET lease_until = ? WHERE id = ?", [(wall + lease_seconds, row[0]) for row in rows]
            )
        return [
            Delivery(id=r[0], site_id=r[1], bill_id=r[2], event_status=r[3], url=r[4], body=bytes(r[5]), attempts=r[6])
            for r in rows
        ]

    def record_attempt(
        self,
        delivery: Delivery,
        *,
        started_us: int,
        status_code: int | None,
        latency_ms: float,
        error: str | None,
    ) -> None:
        """Record one attempt; schedule the next one per the retry schedule, or finish the delivery.

        Only HTTP 200 counts as delivered (bill-payments-docs, since 2019-11-08).
        """
        attempt = delivery.attempts + 1
        ok = status_code == 200
        schedule = self.settings.retry_schedule
        with self._write() as conn:
            conn.execute(
                "INSERT INTO attempts (delivery_id, attempt, at_us, status_code, latency_ms, error) "
                "VALUES (?, ?, ?, ?, ?, ?)",
                (delivery.id, attempt, started_us, status_code, latency_ms, error),
            )
            if ok:
                state, next_us = "delivered", self._now_us(conn)
            elif attempt <= len(schedule):
                delay_us = int(schedule[attempt - 1] * self.settings.time_scale * 1_000_000)
                state, next_us = "pending", self._now_us(conn) + delay_us
            else:
                state, next_us = "failed", self._now_us(conn)
            conn.execute(
                "UPDATE outbox SET state = ?, attempts = ?, next_us = ?, lease_until = 0 WHERE id = ?",
                (state, attempt, next_us, delivery.id),
            )

    def release_leases(self, delivery_ids: list[int]) -> None:
        """Give deliveries back (clean shutdown mid-attempt), so a restart resumes them at once."""
        if not delivery_ids:
            return
        with self._write() as conn:
            conn.executemany("UPDATE outbox SET lease_until = 0 WHERE id = ?", [(i,) for i in delivery_ids])

    def next_delivery_due(self) -> datetime | None:
        """Mock-clock time of the earliest pending delivery not leased by a worker, if any."""
        with self._lock:
            # Rows leased by another worker are that worker's: waiting on them would spin until the lease ends.
            row = self._conn.execute(
                "SELECT MIN(next_us) FROM outbox WHERE state = 'pending' AND lease_until <= ?", (time.time(),)
            ).fetchone()
        if row is None or row[0] is None:
            return None
        return datetime(1970, 1, 1, tzinfo=UTC) + timedelta(microseconds=row[0])

    def list_deliveries(self, site_id: str, bill_id: str | None = None) -> list[dict[str, Any]]:
        """Deliveries of this merchant (newest last) with every attempt, as JSON-ready dicts."""
        query = (
            "SELECT id, bill_id, event_status, url, state, attempts, next_us, created_us FROM outbox WHERE site_id = ?"
        )
        params: tuple[str, ...] = (site_id,)
        if bill_id is not None:
            query += " AND bill_id = ?"
            params += (bill_id,)
        with self._lock:
            rows = self._conn.execute(query + " ORDER BY id", params).fetchall()
            result = []
            for row in rows:
                attempts = self._conn.execute(
                    "SELECT attempt, at_us, status_code, latency_ms, error FROM attempts "
                    "WHERE delivery_id = ? ORDER BY attempt",
                    (row[0],),
                ).fetchall()
                result.append(
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
                )
            return result
