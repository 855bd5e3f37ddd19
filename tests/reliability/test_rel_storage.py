"""Storage faults (issue 16, items 10-12): a damaged or read-only database file is refused at start-up with one
line and exit status 2, QIWI's 500 body does not depend on the store, and failing writes log one line each,
rate-limited, counted in `/_mock/health`."""

from __future__ import annotations

import os
import shutil
import sqlite3
import subprocess
import sys
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import pytest
from conftest import Row
from rel_procs import PUBLIC_A, SECRET_A, SITE_A

from qiwi_bill_mock import Merchant, Settings
from qiwi_bill_mock.models import BillDraft
from qiwi_bill_mock.service import BillService

SIZES = {"quick": 200, "full": 20_000}
_ERROR_KEYS = {"serviceName", "errorCode", "description", "userMessage", "dateTime", "traceId"}


def _settings(db: Path) -> Settings:
    return Settings(merchants=(Merchant(site_id=SITE_A, secret_key=SECRET_A, public_key=PUBLIC_A),), db_path=str(db))


def _database_with_bills(db: Path, count: int, *, journal: str = "DELETE") -> None:
    """A mock database file holding `count` bills, its WAL folded in (everything in the file); `journal`: the
    mode it is left in (the mock's own is WAL)."""
    service = BillService(_settings(db))
    expires = datetime.now(UTC) + timedelta(days=1)
    draft = BillDraft(amount=Decimal("1.00"), currency="RUB", expiration=expires, expiration_text=expires.isoformat())
    for start in range(0, count, 1000):
        service.run_batch(
            [lambda n=n: service.create_bill(SITE_A, f"s-{n}", draft) for n in range(start, min(start + 1000, count))]
        )
    service.close()
    conn = sqlite3.connect(db)
    conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    conn.execute(f"PRAGMA journal_mode = {journal}")  # DELETE also deletes the WAL
    conn.close()


def _start(db: Path) -> subprocess.CompletedProcess[str]:
    """Run the CLI on `db` as a user would; a mock that starts anyway is stopped after its first line."""
    command = [sys.executable, "-m", "qiwi_bill_mock", "--port", "0", "--db", str(db), "--secret-key", SECRET_A]
    with subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) as proc:
        try:
            out, err = proc.communicate(timeout=20)
        except subprocess.TimeoutExpired:  # it is serving the file: the failure under test
            proc.terminate()
            out, err = proc.communicate(timeout=20)
        return subprocess.CompletedProcess(command, proc.returncode, out, err)


def _assert_refused(result: subprocess.CompletedProcess[str], reason: str) -> None:
    assert "listening" not in result.stdout, "the mock served the file"
    assert result.returncode == 2, result.stderr
    assert result.stderr.count("\n") == 1, result.stderr  # one line, no traceback
    assert reason in result.stderr
    assert "Traceback" not in result.stderr


def test_damaged_database_is_refused_at_start(scale: str, tmp_path: Path, row: Row) -> None:
    """Every page but the schema page overwritten: start-up says the file is damaged, in one line, status 2."""
    db = tmp_path / "m.db"
    _database_with_bills(db, SIZES[scale])
    page = 4096
    with db.open("r+b") as handle:
        size = db.stat().st_size
        handle.seek(page)
        handle.write(os.urandom(size - page))
    row.faults = size // page - 1
    result = _start(db)
    row.requests = 1
    _assert_refused(result, "is damaged (quick_check:")


@pytest.fixture(params=["WAL", "DELETE"])
def read_only(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Path]:
    """A mock database file that cannot be written, even by root (`chattr +i`), made writable again afterwards.

    In WAL mode (the mock's) it opens without a word; in DELETE mode the switch to WAL fails at open.
    """
    db = tmp_path / "m.db"
    _database_with_bills(db, 10, journal=request.param)
    if os.geteuid() != 0:
        db.chmod(0o444)
    elif shutil.which("chattr") is None or subprocess.run(["chattr", "+i", str(db)], check=False).returncode != 0:
        pytest.skip("running as root without chattr +i: no way to make a file read-only")
    yield db
    if os.geteuid() == 0:
        subprocess.run(["chattr", "-i", str(db)], check=True)
    db.chmod(0o644)


def test_read_only_database_is_refused_at_start(scale: str, read_only: Path, row: Row) -> None:
    """SQLite opens an unwritable file read-only without a word: start-up proves writability and refuses."""
    starts = 1 if scale == "quick" else 5  # the full size starts it again: every start refuses, none writes
    for _ in range(starts):
        result = _start(read_only)
        _assert_refused(result, "is read-only")
    row.requests = row.faults = starts


# -- in process: the 500 path and failing writes --------------------------------------------------------------

API = "/partner/bill/v1/bills"
AUTH_A = {"Authorization": f"Bearer {SECRET_A}"}


def _bill(value: str = "1.00") -> dict[str, object]:
    expires = (datetime.now(UTC) + timedelta(days=1)).isoformat(timespec="seconds")
    return {"amount": {"value": value, "currency": "RUB"}, "expirationDateTime": expires}


class _BrokenConnection:
    """Stands in for the store's SQLite connection once its file is damaged: every statement fails."""

    def execute(self, *_: object) -> None:
        raise sqlite3.DatabaseError("database disk image is malformed")

    executemany = execute


async def test_the_500_body_is_qiwis_even_when_the_store_is_broken(scale: str, tmp_path: Path, row: Row) -> None:
    """With every statement failing, an API read answers 500 with QIWI's JSON error body (the error path reads
    nothing from the store), and `/_mock/health` still answers."""
    import httpx

    from qiwi_bill_mock import create_app

    app = create_app(_settings(tmp_path / "m.db"))
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://mock.test") as client:
        assert (await client.put(f"{API}/b1", json=_bill(), headers=AUTH_A)).status_code == 200
        database = app.state.ctx.service.database
        database._conn = database._tables._conn = _BrokenConnection()
        database._versions.clear()  # no answer from a cache either
        reads = 3 if scale == "quick" else 300
        answers = [await client.get(f"{API}/b{n}", headers=AUTH_A) for n in range(1, reads + 1)]
        answers.append(await client.put(f"{API}/b9", json=_bill(), headers=AUTH_A))
        health = await client.get("/_mock/health")
    row.requests = len(answers) + 1
    row.faults = len(answers)
    for answer in answers:
        assert answer.status_code == 500
        assert answer.headers["content-type"] == "application/json"
        assert set(answer.json()) == _ERROR_KEYS
        assert answer.json()["errorCode"] == "internal.invoicing.error"
    assert health.status_code == 200
    assert health.json()["storageFailures"] == len(answers)
    row.server_errors = 0  # the 500s are the answer under test: the store is broken on purpose


async def test_a_full_disk_logs_one_line_per_failure_rate_limited_and_counts_them(
    scale: str, tmp_path: Path, row: Row, caplog: pytest.LogCaptureFixture
) -> None:
    """The database may not grow (`PRAGMA max_page_count`, SQLite's "database or disk is full"): 60 (full: 600)
    creates fail with QIWI's 500, the log has one line each for the first 5 in the window and none with a
    traceback, `/_mock/health` counts every failure, and bills stored before are still served."""
    import httpx

    from qiwi_bill_mock import create_app

    creates = 60 if scale == "quick" else 600
    app = create_app(_settings(tmp_path / "m.db"))
    caplog.set_level("INFO", logger="qiwi_bill_mock")
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://mock.test") as client:
        assert (await client.put(f"{API}/before", json=_bill(), headers=AUTH_A)).status_code == 200
        database = app.state.ctx.service.database
        pages = database._conn.execute("PRAGMA page_count").fetchone()[0]
        database._conn.execute(f"PRAGMA max_page_count = {pages}")
        big = {**_bill(), "comment": "x" * 255, "customFields": {f"f{n}": "y" * 200 for n in range(20)}}
        answers = [await client.put(f"{API}/full-{n}", json=big, headers=AUTH_A) for n in range(creates)]
        health = (await client.get("/_mock/health")).json()
        before = await client.get(f"{API}/before", headers=AUTH_A)
    failed = [a for a in answers if a.status_code == 500]
    row.requests = creates + 2
    row.faults = len(failed)
    assert len(failed) >= creates - 10, [a.status_code for a in answers]  # a few may fit in the last free pages
    assert all(set(a.json()) == _ERROR_KEYS for a in failed)
    assert health["storageFailures"] == len(failed)
    assert before.status_code == 200
    lines = [r for r in caplog.records if r.levelname == "ERROR"]
    assert all(r.exc_info is None for r in lines), "a traceback was logged"
    assert all("\n" not in r.getMessage() for r in lines)
    assert all(r.name == "qiwi_bill_mock.storage" for r in lines), {r.name for r in lines}
    assert 1 <= len(lines) <= 5, [r.getMessage() for r in lines]
    assert "disk is full" in lines[0].getMessage()
