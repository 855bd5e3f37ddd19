"""The mock's storage: the ONLY place with SQL (SQLite, standard library), and its performance machinery.

`Database` owns one connection per process (in memory, or a file in WAL mode with `synchronous=NORMAL`, which
survives `kill -9`), the transactions (`BEGIN IMMEDIATE` for every read-modify-write, so several worker processes
on one file stay correct), group commit (`run_batch`), the WAL checkpoint thread, the database file's ownership
lock, and the read caches. `Tables` is what a transaction offers the service: rows in, domain models out. No
QIWI rule lives here: the service (`service.py`) decides, this module stores.

Each piece of machinery says what it measurably bought (`python -m bench.profile`, `make bench`).
"""

from __future__ import annotations

import itertools
import json
import os
import sqlite3
import threading
import time
import weakref
from collections.abc import Callable, Mapping, Sequence
from decimal import Decimal
from typing import Any

from qiwi_bill_mock.dbfile import Checkpointer, DatabaseInUse, claim_file
from qiwi_bill_mock.models import Attempt, Bill, Delivery, Refund
from qiwi_bill_mock.wire import signed_fields

__all__ = ["Database", "DatabaseInUse", "DatabaseUnusable", "Tables", "read_only_error"]


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
    currency TEXT NOT NULL,
    amount TEXT NOT NULL,
    url TEXT NOT NULL,
    body BLOB NOT NULL,
    state TEXT NOT NULL,
    attempts INTEGER NOT NULL DEFAULT 0,
    next_us INTEGER NOT NULL,
    lease_until REAL NOT NULL DEFAULT 0,
    created_us INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS outbox_due ON outbox (state, next_us);
CREATE INDEX IF NOT EXISTS outbox_site_due ON outbox (state, site_id, next_us);
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
CREATE TABLE IF NOT EXISTS clocks (site_id TEXT PRIMARY KEY, offset_us INTEGER NOT NULL) WITHOUT ROWID;
"""

_BILL_COLUMNS = (
    "site_id, bill_id, invoice_uid, currency, amount, status, created_us, changed_us, expires_us, "
    "expiration_text, details, pay_source, refunded"
)
# A merchant's clock offset, NULL when nobody moved that merchant's clock.
_OFFSET = "(SELECT offset_us FROM clocks WHERE clocks.site_id = {table}.site_id)"
# One statement reads a bill and its merchant's clock offset (a GET that misses the wire cache).
_READ_WITH_OFFSET = (
    f"SELECT {_BILL_COLUMNS}, {_OFFSET.format(table='bills')} FROM bills WHERE site_id = ? AND bill_id = ?"
)
_READ_VERSION = (
    f"SELECT invoice_uid, status, changed_us, expires_us, {_OFFSET.format(table='bills')} "
    "FROM bills WHERE site_id = ? AND bill_id = ?"
)
# json.dumps builds a new encoder per call when given options; these are built once.
_DETAILS = json.JSONEncoder(ensure_ascii=False)
_NO_DETAILS = _DETAILS.encode({"comment": None, "customer": {}, "customFields": {}})


def _upgrade(conn: sqlite3.Connection) -> None:
    """Bring a database file of an older mock (before issue 12) up to this schema: nothing it holds is lost."""
    bills = {row[1] for row in conn.execute("PRAGMA table_info(bills)")}
    if "fingerprint" in bills:  # no longer read since strict idempotency compares the stored fields
        conn.execute("ALTER TABLE bills DROP COLUMN fingerprint")
    outbox = {row[1] for row in conn.execute("PRAGMA table_info(outbox)")}
    if "currency" not in outbox:  # the signed fields of queued notifications, from their bills
        conn.execute("ALTER TABLE outbox ADD COLUMN currency TEXT NOT NULL DEFAULT ''")
        conn.execute("ALTER TABLE outbox ADD COLUMN amount TEXT NOT NULL DEFAULT ''")
        for column in ("currency", "amount"):
            conn.execute(
                f"UPDATE outbox SET {column} = (SELECT b.{column} FROM bills b "
                "WHERE b.site_id = outbox.site_id AND b.bill_id = outbox.bill_id) "
                "WHERE EXISTS (SELECT 1 FROM bills b WHERE b.site_id = outbox.site_id AND b.bill_id = outbox.bill_id)"
            )
    if conn.execute("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'meta'").fetchone():
        # One clock for everyone before: every merchant with data keeps the time it had.
        conn.execute(
            "INSERT OR IGNORE INTO clocks (site_id, offset_us) SELECT s.site_id, m.value FROM "
            "(SELECT site_id FROM bills UNION SELECT site_id FROM outbox) s, meta m WHERE m.key = 'clock_offset_us'"
        )
        conn.execute("DROP TABLE meta")


def _row_to_bill(row: Sequence[Any]) -> Bill:
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


class _Transaction:
    """`Database.write()`: a context manager class, not a generator (about 1 us less per write, and a PUT takes two)."""

    __slots__ = ("_db", "_nested")

    def __init__(self, db: Database) -> None:
        self._db = db
        self._nested = False

    def __enter__(self) -> Tables:
        db = self._db
        db._lock.acquire()
        conn = db._conn
        try:
            self._nested = db._in_batch  # the batch's transaction; run_batch undoes a failed operation
            if not self._nested:
                conn.execute("BEGIN IMMEDIATE")
                try:
                    if not db._schema_ready:
                        for statement in filter(None, (s.strip() for s in _SCHEMA.split(";"))):
                            conn.execute(statement)
                        _upgrade(conn)
                        db._schema_ready = True
                except BaseException:
                    if conn.in_transaction:
                        conn.execute("ROLLBACK")
                    raise
                db._queued = False
        except BaseException:
            db._lock.release()
            raise
        return db._tables

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: Any) -> None:
        db = self._db
        conn = db._conn
        notify = False
        try:
            if self._nested:
                return
            if exc_type is not None:
                # SQLite already rolled back after some errors (SQLITE_FULL, SQLITE_IOERR): a second ROLLBACK
                # would raise "no transaction is active" and hide the real failure (a full disk, issue 16 item 12).
                if conn.in_transaction:
                    conn.execute("ROLLBACK")
                db._offsets.clear()  # an offset written in the rolled-back transaction is gone
                return
            notify = db._queued
            try:
                conn.execute("COMMIT")
            except BaseException:
                if conn.in_transaction:
                    conn.execute("ROLLBACK")
                db._offsets.clear()
                raise
            db.commits += 1
            if db.restart_due:
                db._restart_wal(conn)
        finally:
            db._lock.release()
        if notify:
            for listener in list(db._listeners):
                listener()


class _Replay(Exception):
    """A batched operation raised after writing: undo the batch and run it again with savepoints."""


class Tables:
    """What one transaction (or a locked read) can do with the rows; models in and out."""

    def __init__(self, db: Database) -> None:
        self._db = db
        self._conn = db._conn

    # -- clocks -------------------------------------------------------------------------------

    def clock_offset(self, site_id: str) -> int:
        """Microseconds this merchant's clock was moved (0 when never)."""
        offsets = self._db._offsets
        offset = offsets.get(site_id)
        if offset is not None:
            return offset
        row = self._conn.execute("SELECT offset_us FROM clocks WHERE site_id = ?", (site_id,)).fetchone()
        offset = int(row[0]) if row else 0
        # In memory or on an owned file, only this process moves clocks: keep the offset in hand (0.1 us instead
        # of a 1.9 us SELECT, and a create or a transition reads it once or twice). On a shared file another
        # worker may move it, so it is read every time (one indexed row).
        if not self._db.shared:
            offsets[site_id] = offset
        return offset

    def add_clock_offset(self, site_id: str, delta_us: int) -> None:
        """Move this merchant's clock by `delta_us`."""
        self._conn.execute(
            "INSERT INTO clocks (site_id, offset_us) VALUES (?, ?) "
            "ON CONFLICT (site_id) DO UPDATE SET offset_us = offset_us + excluded.offset_us",
            (site_id, delta_us),
        )
        self._db._offsets.pop(site_id, None)

    # -- bills --------------------------------------------------------------------------------

    def bill(self, site_id: str, bill_id: str) -> Bill | None:
        """The stored bill, as it is (no expiry applied)."""
        row = self._conn.execute(
            f"SELECT {_BILL_COLUMNS} FROM bills WHERE site_id = ? AND bill_id = ?", (site_id, bill_id)
        ).fetchone()
        return _row_to_bill(row) if row else None

    def insert_bill(self, bill: Bill) -> bool:
        """Store a new bill; `False` (and nothing written) when its `billId` exists for this merchant."""
        details_text = _NO_DETAILS
        if bill.comment is not None or bill.customer or bill.custom_fields:
            details = {"comment": bill.comment, "customer": dict(bill.customer)}
            details_text = _DETAILS.encode({**details, "customFields": dict(bill.custom_fields)})
        # The PUT hot path: a new bill costs this one statement (a repeated billId changes nothing here).
        return bool(
            self._conn.execute(
                f"INSERT INTO bills ({_BILL_COLUMNS}) VALUES (?, ?, ?, ?, ?, 'WAITING', ?, ?, ?, ?, ?, NULL, '0.00') "
                "ON CONFLICT (site_id, bill_id) DO NOTHING",
                (
                    bill.site_id,
                    bill.bill_id,
                    bill.invoice_uid,
                    bill.currency,
                    str(bill.amount),
                    bill.created_us,
                    bill.changed_us,
                    bill.expires_us,
                    bill.expiration_text,
                    details_text,
                ),
            ).rowcount
        )

    def set_status(self, bill: Bill, status: str, changed_us: int, pay_source: str | None) -> Bill:
        """Change a bill's status (and pay source); returns the updated bill."""
        self._conn.execute(
            "UPDATE bills SET status = ?, changed_us = ?, pay_source = COALESCE(?, pay_source) "
            "WHERE site_id = ? AND bill_id = ?",
            (status, changed_us, pay_source, bill.site_id, bill.bill_id),
        )
        updated = self.bill(bill.site_id, bill.bill_id)
        assert updated is not None
        return updated

    def waiting_bills_due(self, clock_us: int, lag_us: int, *, limit: int = -1) -> list[Bill]:
        """WAITING bills whose expiry (plus `lag_us`) passed on their merchant's clock (`clock_us` + offset).

        At most `limit` (-1: all), the earliest expiry first, so the sweep can work in chunks (issue 16, item 7).
        """
        rows = self._conn.execute(
            f"SELECT {_BILL_COLUMNS} FROM bills WHERE status = 'WAITING' "
            f"AND expires_us + ? <= ? + COALESCE({_OFFSET.format(table='bills')}, 0) ORDER BY expires_us LIMIT ?",
            (lag_us, clock_us, limit),
        ).fetchall()
        return [_row_to_bill(row) for row in rows]

    def delete_merchant(self, site_id: str) -> None:
        """Forget a merchant's bills, refunds, notifications and clock."""
        self._conn.execute("DELETE FROM refunds WHERE site_id = ?", (site_id,))
        self._conn.execute("DELETE FROM bills WHERE site_id = ?", (site_id,))
        self._conn.execute(
            "DELETE FROM attempts WHERE delivery_id IN (SELECT id FROM outbox WHERE site_id = ?)", (site_id,)
        )
        self._conn.execute("DELETE FROM outbox WHERE site_id = ?", (site_id,))
        self._conn.execute("DELETE FROM clocks WHERE site_id = ?", (site_id,))
        self._db._offsets.pop(site_id, None)

    # -- refunds ------------------------------------------------------------------------------

    def refund(self, site_id: str, bill_id: str, refund_id: str) -> Refund | None:
        """The stored refund, if any."""
        row = self._conn.execute(
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

    def insert_refund(self, refund: Refund, *, refunded_total: Decimal) -> None:
        """Store a refund and the bill's new refunded total."""
        self._conn.execute(
            "INSERT INTO refunds (site_id, bill_id, refund_id, currency, amount, status, created_us) "
            "VALUES (?, ?, ?, ?, ?, ?, ?)",
            (
                refund.site_id,
                refund.bill_id,
                refund.refund_id,
                refund.currency,
                str(refund.amount),
                refund.status,
                refund.created_us,
            ),
        )
        self._conn.execute(
            "UPDATE bills SET refunded = ? WHERE site_id = ? AND bill_id = ?",
            (str(refunded_total), refund.site_id, refund.bill_id),
        )

    # -- notification outbox ------------------------------------------------------------------

    def queue_notification(self, bill: Bill, *, url: str, body: bytes, now_us: int) -> None:
        """Queue a notification of the bill's current status (in the transaction that changed it)."""
        self._conn.execute(
            "INSERT INTO outbox (site_id, bill_id, event_status, currency, amount, url, body, state, next_us, "
            "created_us) VALUES (?, ?, ?, ?, ?, ?, ?, 'pending', ?, ?)",
            (bill.site_id, bill.bill_id, bill.status, bill.currency, str(bill.amount), url, body, now_us, now_us),
        )
        self._db._queued = True

    def claim_deliveries(
        self,
        clock_us: int,
        *,
        limit: int,
        lease_seconds: float,
        per_site: int | None = None,
        busy: Mapping[str, int] | None = None,
    ) -> list[Delivery]:
        """Lease pending deliveries due on their merchant's clock to this process, round-robin across merchants.

        Rows are taken in rounds, the oldest due of every merchant first, then each one's second, ...; with
        `per_site`, a merchant gets at most `per_site - busy[site_id]` of them, so one merchant's backlog never
        takes every slot of the notifier (issue 16, item 2).
        """
        wall = time.time()
        busy = busy or {}
        due = (
            "SELECT id, site_id, bill_id, event_status, currency, amount, url, body, attempts FROM outbox "
            f"WHERE state = 'pending' AND next_us <= ? + COALESCE({_OFFSET.format(table='outbox')}, 0) "
            "AND lease_until <= ?"
        )
        if per_site is None:
            rows = self._conn.execute(due + " ORDER BY next_us, id LIMIT ?", (clock_us, wall, limit)).fetchall()
        else:
            # One indexed query per merchant with pending rows (a few), each for its share only: a window over
            # every pending row cost 80 ms per claim at 20k rows, and the notifier claims after every attempt.
            per_merchant = [
                self._conn.execute(
                    due + " AND site_id = ? ORDER BY next_us, id LIMIT ?",
                    (clock_us, wall, site_id, min(limit, per_site - busy.get(site_id, 0))),
                ).fetchall()
                for site_id in self._pending_sites()
                if busy.get(site_id, 0) < per_site
            ]
            # Round-robin: every merchant's oldest first, then every merchant's second, ...
            rows = [row for turn in itertools.zip_longest(*per_merchant) for row in turn if row is not None][:limit]
        self._conn.executemany(
            "UPDATE outbox SET lease_until = ? WHERE id = ?", [(wall + lease_seconds, row[0]) for row in rows]
        )
        deliveries = []
        for delivery_id, site_id, bill_id, status, currency, amount, url, body, attempts in rows:
            signed = signed_fields(site_id=site_id, bill_id=bill_id, currency=currency, amount=amount, status=status)
            deliveries.append(
                Delivery(
                    id=delivery_id,
                    site_id=site_id,
                    bill_id=bill_id,
                    event_status=status,
                    url=url,
                    body=bytes(body),
                    attempts=attempts,
                    notification=signed,
                )
            )
        return deliveries

    def _pending_sites(self) -> list[str]:
        """The merchants with pending deliveries, found by skipping along the index (one probe per merchant)."""
        rows = self._conn.execute(
            "WITH RECURSIVE sites(site_id) AS ("
            "SELECT MIN(site_id) FROM outbox WHERE state = 'pending' UNION ALL "
            "SELECT (SELECT MIN(site_id) FROM outbox WHERE state = 'pending' AND site_id > sites.site_id) "
            "FROM sites WHERE sites.site_id IS NOT NULL) SELECT site_id FROM sites WHERE site_id IS NOT NULL"
        ).fetchall()
        return [row[0] for row in rows]

    def record_attempt(self, delivery: Delivery, attempt: Attempt, *, state: str, next_us: int) -> None:
        """Record one attempt and the delivery's new state (`pending` at `next_us`, `delivered`, `failed`)."""
        number = delivery.attempts + 1
        self._conn.execute(
            "INSERT INTO attempts (delivery_id, attempt, at_us, status_code, latency_ms, error) "
            "VALUES (?, ?, ?, ?, ?, ?)",
            (delivery.id, number, attempt.started_us, attempt.status_code, attempt.latency_ms, attempt.error),
        )
        self._conn.execute(
            "UPDATE outbox SET state = ?, attempts = ?, next_us = ?, lease_until = 0 WHERE id = ?",
            (state, number, next_us, delivery.id),
        )

    def release_leases(self, delivery_ids: Sequence[int]) -> None:
        """Give leased deliveries back."""
        self._conn.executemany("UPDATE outbox SET lease_until = 0 WHERE id = ?", [(i,) for i in delivery_ids])


def read_only_error(exc: sqlite3.Error) -> bool:
    """Whether SQLite refused a write because the file (or its directory) is read-only."""
    code = getattr(exc, "sqlite_errorcode", None)
    return (code is not None and code & 0xFF == sqlite3.SQLITE_READONLY) or "readonly" in str(exc)


class DatabaseUnusable(Exception):
    """The database file must not be served (`Database.check_usable`); the message is one line for the CLI."""


class Database:
    """One SQLite connection with its transactions, group commit, checkpoints, ownership lock and read caches.

    Args:
        path: A file, or `None` for memory (one process only).
        owner: This process alone uses the file (see `Settings.db_owner`): enforced with a lock file, and reads
            then skip looking for other connections' commits.
    """

    def __init__(self, path: str | None, *, owner: bool = False) -> None:
        self.path = path
        self._lock = threading.RLock()
        self._listeners: list[Callable[[], None]] = []
        self._lock_fd: int | None = claim_file(path, owner=owner) if path else None
        # Other connections may commit to this file: reads must look for their commits.
        self.shared = bool(path) and not (owner and self._lock_fd is not None)
        try:
            self._conn = sqlite3.connect(path or ":memory:", isolation_level=None, check_same_thread=False, timeout=30)
            self._conn.execute("PRAGMA busy_timeout = 30000")
            if path:
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
        self._tables = Tables(self)
        self._schema_ready = False
        self._offsets: dict[str, int] = {}  # clock offsets in hand, see Tables.clock_offset
        self._queued = False
        self._in_batch = False
        self.closed = False
        self.commits = 0
        self.restart_due = False  # set by the checkpointer thread, see Checkpointer
        # bill_version's rows, see there.
        self._versions: dict[tuple[str, str], tuple[Any, ...]] = {}
        self._versions_stamp = -1
        self._checkpointer: Checkpointer | None = None
        with self.write():
            pass  # creates the schema
        if path:
            self._checkpointer = Checkpointer(path, weakref.ref(self))

    def write(self) -> _Transaction:
        """One `BEGIN IMMEDIATE` transaction: committed when the block exits, rolled back on error.

        Inside `run_batch`, the batch's transaction instead.
        """
        return _Transaction(self)

    def read(self) -> _Locked:
        """The tables under the connection's lock, outside any transaction (plain reads)."""
        return _Locked(self)

    def add_commit_listener(self, callback: Callable[[], None]) -> None:
        """Call `callback()` (from the committing thread) after any commit that queued a notification."""
        self._listeners.append(callback)

    def _restart_wal(self, conn: sqlite3.Connection) -> None:
        """The RESTART checkpoint the checkpointer asked for (see `Checkpointer`), right after a commit."""
        try:
            conn.execute("PRAGMA wal_checkpoint(RESTART)").fetchone()
        except sqlite3.Error:  # another process's checkpoint or reader: the checkpointer will ask again
            pass
        finally:
            self.restart_due = False

    def run_batch(self, operations: Sequence[Callable[[], Any]]) -> list[Any]:
        """Group commit: run write operations in ONE transaction, committed once.

        An operation that raises is undone alone and the others still commit. Returns each operation's result, or
        the exception it raised (returned, not raised). Nothing is committed before this returns; if the commit
        itself fails, that error is raised for the whole batch. One commit per batch is the point: on a file, a
        commit is the costly part of a create (it writes the WAL pages).
        """
        if len(operations) == 1:  # a failure rolls the whole transaction back
            try:
                with self.write():
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
        conn = self._conn
        with self.write():
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
                            self._offsets.clear()
                        elif conn.total_changes != changes:
                            raise _Replay from exc
                        results.append(exc)
                    if savepoints:
                        conn.execute("RELEASE operation")
            finally:
                self._in_batch = False
        return results

    def bill_version(self, site_id: str, bill_id: str) -> tuple[Any, ...] | None:
        """`(invoice_uid, status, changed_us, expires_us, clock offset or None)` of a stored bill: the GET hot path.

        Rows read here are kept until anything commits: a commit of this process, or, on a shared file, of any
        other connection (`PRAGMA data_version` changes). A repeated read of an unchanged store then costs no query
        in memory or on an owned file (`Settings.db_owner`), one pragma on a shared file (in `make bench`, that
        pragma was 14 us of a 84 us GET: it takes and drops the WAL read lock).
        """
        key = (site_id, bill_id)
        with self._lock:
            stamp = self.commits
            if self.shared:
                stamp = (stamp << 32) + self._conn.execute("PRAGMA data_version").fetchone()[0]
            if stamp != self._versions_stamp:
                self._versions.clear()
                self._versions_stamp = stamp
            row = self._versions.get(key)
            if row is None:
                row = self._conn.execute(_READ_VERSION, key).fetchone()
                if row is None:
                    return None
                if len(self._versions) >= 100_000:
                    self._versions.clear()
                self._versions[key] = row
            return row

    def bill_with_offset(self, site_id: str, bill_id: str) -> tuple[Bill, int] | None:
        """A stored bill and its merchant's clock offset, in one statement (no expiry applied)."""
        with self._lock:
            row = self._conn.execute(_READ_WITH_OFFSET, (site_id, bill_id)).fetchone()
        if row is None:
            return None
        offset = self._offsets.get(site_id)
        return _row_to_bill(row), int(row[-1] or 0) if offset is None else offset

    def find_bill(self, *, invoice_uid: str | None = None, bill_id: str | None = None) -> tuple[str, str] | None:
        """`(site_id, bill_id)` of the bill with this invoice uid, or of the first with this `billId`."""
        with self._lock:
            if invoice_uid is not None:
                query, key = "SELECT site_id, bill_id FROM bills WHERE invoice_uid = ?", invoice_uid
            else:
                query, key = "SELECT site_id, bill_id FROM bills WHERE bill_id = ? LIMIT 1", bill_id or ""
            row = self._conn.execute(query, (key,)).fetchone()
        return (row[0], row[1]) if row else None

    def has_bills_due(self, clock_us: int, lag_us: int) -> bool:
        """Whether any WAITING bill may be overdue (a cheap probe before the sweeper's write)."""
        with self._lock:
            # The largest offset first: the probe then uses the (status, expires_us) index.
            row = self._conn.execute("SELECT MAX(offset_us) FROM clocks").fetchone()
            latest = clock_us + max(int(row[0] or 0), 0)
            return (
                self._conn.execute(
                    "SELECT 1 FROM bills WHERE status = 'WAITING' AND expires_us <= ? LIMIT 1", (latest - lag_us,)
                ).fetchone()
                is not None
            )

    def has_deliveries_due(self, clock_us: int) -> bool:
        """Whether any pending, unleased delivery is due on its merchant's clock."""
        with self._lock:
            return (
                self._conn.execute(
                    "SELECT 1 FROM outbox WHERE state = 'pending' AND lease_until <= ? "
                    f"AND next_us <= ? + COALESCE({_OFFSET.format(table='outbox')}, 0) LIMIT 1",
                    (time.time(), clock_us),
                ).fetchone()
                is not None
            )

    def next_delivery_due_us(self) -> int | None:
        """Real-clock microseconds when the earliest pending delivery not leased by a worker falls due."""
        with self._lock:
            # Rows leased by another worker are that worker's: waiting on them would spin until the lease ends.
            row = self._conn.execute(
                f"SELECT MIN(next_us - COALESCE({_OFFSET.format(table='outbox')}, 0)) FROM outbox "
                "WHERE state = 'pending' AND lease_until <= ?",
                (time.time(),),
            ).fetchone()
        return None if row is None or row[0] is None else int(row[0])

    def deliveries(
        self, site_id: str, bill_id: str | None, *, after: int = 0, limit: int = -1
    ) -> list[tuple[tuple[Any, ...], list[tuple[Any, ...]]]]:
        """Outbox rows of a merchant (oldest first) with ids above `after`, at most `limit` (-1: all), each with
        its attempt rows: one query for the whole page (issue 16, item 7: not one per delivery)."""
        where = "site_id = ? AND id > ?" + (" AND bill_id = ?" if bill_id is not None else "")
        params: tuple[Any, ...] = (site_id, after) + ((bill_id,) if bill_id is not None else ())
        query = (
            "WITH page AS (SELECT id, bill_id, event_status, url, state, attempts, next_us, created_us FROM outbox "
            f"WHERE {where} ORDER BY id LIMIT ?) "
            "SELECT page.*, a.attempt, a.at_us, a.status_code, a.latency_ms, a.error FROM page "
            "LEFT JOIN attempts a ON a.delivery_id = page.id ORDER BY page.id, a.attempt"
        )
        with self._lock:
            joined = self._conn.execute(query, (*params, limit)).fetchall()
        pages: list[tuple[tuple[Any, ...], list[tuple[Any, ...]]]] = []
        for row in joined:
            if not pages or pages[-1][0][0] != row[0]:
                pages.append((tuple(row[:8]), []))
            if row[8] is not None:  # a delivery not attempted yet joins one row of NULLs
                pages[-1][1].append(tuple(row[8:]))
        return pages

    def check_usable(self) -> None:
        """Prove at start-up that the file can be served: intact (`PRAGMA quick_check`) and writable.

        A damaged file opened fine and every request then failed with a plain-text 500 (issue 16, item 10); a
        read-only one opened fine too, since SQLite silently falls back to reading, and every write failed
        (item 11). A write is tried, then rolled back: nothing else tells a read-only file apart.

        Raises:
            DatabaseUnusable: the file is damaged or read-only; its message is the one line to show.
        """
        if not self.path:
            return
        with self._lock:
            try:
                problems = [str(row[0]) for row in self._conn.execute("PRAGMA quick_check").fetchall()]
            except sqlite3.DatabaseError as exc:
                problems = [str(exc)]
            if problems != ["ok"]:
                # One line: quick_check's first row may itself hold many lines, under a "*** in database" title.
                lines = [line.strip() for row in problems for line in row.splitlines()]
                found = [line for line in lines if line and not line.startswith("***")] or ["unknown damage"]
                more = f" and {len(found) - 1} more problems" if len(found) > 1 else ""
                raise DatabaseUnusable(f"the database {self.path} is damaged (quick_check: {found[0]}{more})")
            try:
                self._conn.execute("BEGIN IMMEDIATE")
                try:
                    self._conn.execute("CREATE TABLE _write_probe (x)")
                finally:
                    if self._conn.in_transaction:
                        self._conn.execute("ROLLBACK")
            except sqlite3.OperationalError as exc:
                if read_only_error(exc):
                    raise DatabaseUnusable(f"the database {self.path} is read-only") from None
                raise DatabaseUnusable(f"the database {self.path} cannot be written: {exc}") from None

    def checkpoint(self) -> None:
        """Fold the WAL into the database file (clean shutdown; committed data is safe without it)."""
        if self.path and not self.closed:
            with self._lock:
                self._conn.execute("PRAGMA wal_checkpoint(PASSIVE)")

    def close(self) -> None:
        """Close the connection (idempotent)."""
        with self._lock:
            if not self.closed:
                self.closed = True
                if self._checkpointer is not None:
                    self._checkpointer.stop()
                self._conn.close()
                if self._lock_fd is not None:
                    os.close(self._lock_fd)  # releases the flock


class _Locked:
    """`Database.read()`: the tables under the lock, no transaction."""

    __slots__ = ("_db",)

    def __init__(self, db: Database) -> None:
        self._db = db

    def __enter__(self) -> Tables:
        self._db._lock.acquire()
        return self._db._tables

    def __exit__(self, *_: object) -> None:
        self._db._lock.release()
