"""The database file's ownership lock and the WAL checkpoint thread (used by `storage.Database` only)."""

from __future__ import annotations

import os
import sqlite3
import threading
import weakref
from typing import Any

__all__ = ["Checkpointer", "DatabaseInUse", "claim_file"]


class DatabaseInUse(sqlite3.OperationalError):
    """The database file is owned by another process (`Settings.db_owner`), or an owner found it in use."""


def claim_file(path: str, *, owner: bool) -> int | None:
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


class Checkpointer:
    """A daemon thread that folds the WAL into the database file after commits, on its own connection.

    A PASSIVE checkpoint never blocks the writer or readers, and sqlite3 releases the GIL while it runs, so the
    event loop keeps answering meanwhile. But under a steady stream of commits it never copies the last frame
    before the next one lands, and only a fully copied WAL starts over: with PASSIVE alone the WAL grew by
    29 MB a second under `make bench`'s PUT load. So once a PASSIVE checkpoint found `RESTART_FRAMES` or more
    frames, a second one catches up and the thread asks the database for a restart (`Database.restart_due`): the
    database's next commit runs a RESTART checkpoint on its own connection, which copies the few frames written
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

    def __init__(self, path: str, database: weakref.ref[Any]) -> None:
        self._path = path
        self._store = database  # a weak reference: a database dropped without close() still ends the thread
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="qiwi-bill-mock-checkpoint", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        conn = sqlite3.connect(self._path, isolation_level=None, check_same_thread=False, timeout=30.0)
        try:
            seen = 0
            while not self._stop.wait(self.INTERVAL):
                store = self._store()
                if store is None or store.closed:
                    break
                now, restart_due = store.commits, store.restart_due
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
                    store.restart_due = True
                    del store
        finally:
            conn.close()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=30)
