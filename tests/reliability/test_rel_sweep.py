"""The expiry sweep and the notification journal at scale (issue 16, item 7): neither freezes the server.

The bills are written into the database file in process (through `BillService`, as the mock itself stores them),
then the real mock process serves that file: the scenario is the advance, not 50k HTTP creates.
"""

from __future__ import annotations

import asyncio
import time
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx
from conftest import Row
from rel_procs import PUBLIC_A, SECRET_A, SITE_A, MockProcess, auth, write_config

from qiwi_bill_mock import Merchant, Settings
from qiwi_bill_mock.models import BillDraft
from qiwi_bill_mock.service import BillService

API = "/partner/bill/v1/bills"
SIZES = {"quick": 5_000, "full": 50_000}
HEALTH_BOUND_S = 0.5  # one 500-bill chunk takes milliseconds; the whole sweep in one transaction took seconds


def _fill(db: Path, count: int) -> None:
    """`count` WAITING bills of merchant A, all expiring in one day, and as many delivered-to-nowhere deliveries."""
    settings = Settings(
        merchants=(Merchant(site_id=SITE_A, secret_key=SECRET_A, public_key=PUBLIC_A),), db_path=str(db)
    )
    service = BillService(settings)
    expires = datetime.now(UTC) + timedelta(days=1)
    draft = BillDraft(amount=Decimal("10.00"), currency="RUB", expiration=expires, expiration_text=expires.isoformat())
    step = 1000
    for start in range(0, count, step):
        service.run_batch(
            [lambda n=n: service.create_bill(SITE_A, f"sweep-{n}", draft) for n in range(start, start + step)]
        )
    service.close()


async def _advance_while_probing(mock: MockProcess) -> tuple[float, list[float], dict[str, Any]]:
    async with httpx.AsyncClient(base_url=mock.url, headers=auth(SECRET_A), trust_env=False, timeout=60) as client:
        done = asyncio.Event()
        waits: list[float] = []

        async def probe() -> None:
            while not done.is_set():
                started = time.monotonic()
                assert (await client.get("/_mock/health")).status_code == 200
                waits.append(time.monotonic() - started)
                await asyncio.sleep(0.01)

        prober = asyncio.create_task(probe())
        await asyncio.sleep(0.05)
        started = time.monotonic()
        answer = await client.post("/_mock/clock/advance", json={"seconds": 2 * 86400})
        took = time.monotonic() - started
        done.set()
        await prober
        assert answer.status_code == 200
        return took, waits, answer.json()


def test_advance_past_many_waiting_bills_keeps_the_server_responsive(
    scale: str, mock_factory: Any, tmp_path: Path, row: Row
) -> None:
    """5k (full: 50k) WAITING bills; one advance expires them all while `/_mock/health` is polled: every health
    answer comes within 0.5 s and within half the advance's time, every bill is EXPIRED afterwards, and the
    journal pages through all the deliveries (1000 a page, each page within 1 s)."""
    count = SIZES[scale]
    db = tmp_path / "m.db"
    _fill(db, count)
    # Every EXPIRED bill queues a notification (to a closed port): the journal has `count` deliveries.
    config = write_config(tmp_path / "m.toml", notify_url="http://127.0.0.1:9/notify", retry_schedule=[3600.0])
    mock: MockProcess = mock_factory(["--db", str(db), "--config", str(config), "--notify-statuses", "EXPIRED"])
    took, waits, _ = asyncio.run(_advance_while_probing(mock))
    row.requests = len(waits) + 1
    row.faults = count
    with httpx.Client(base_url=mock.url, headers=auth(SECRET_A), trust_env=False, timeout=60) as client:
        for n in (0, count // 2, count - 1):
            assert client.get(f"{API}/sweep-{n}").json()["status"]["value"] == "EXPIRED"
        ids: list[int] = []
        page_times: list[float] = []
        after: int | None = 0
        while after is not None:
            started = time.monotonic()
            page = client.get("/_mock/notifications", params={"after": after, "limit": 1000})
            page_times.append(time.monotonic() - started)
            assert page.status_code == 200
            body = page.json()
            assert body["limit"] == 1000
            assert len(body["deliveries"]) <= 1000
            ids += [d["id"] for d in body["deliveries"]]
            after = body["nextAfter"]
    row.server_errors = sum(s >= 500 for s in mock.access_statuses())
    assert waits, "no health probe ran during the advance"
    assert max(waits) < HEALTH_BOUND_S, f"/_mock/health waited {max(waits):.2f} s during a {took:.2f} s advance"
    # In chunks, a probe waits for one chunk (a tenth of the quick sweep), not for the whole advance.
    assert max(waits) < max(took / 2, 0.05), f"/_mock/health waited {max(waits):.2f} s of a {took:.2f} s advance"
    assert len(ids) == count
    assert ids == sorted(set(ids))
    assert max(page_times) < 1.0
