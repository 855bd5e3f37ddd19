"""Load and races against the real mock process (`--db FILE --workers 2`) over loopback.

Each scenario states a property that concurrency must not break: one bill per `billId`, refunds never beyond
the bill amount, one final status per bill with a notification only for `PAID`, nothing lost or duplicated
under a sustained mixed load while another process reads.
"""

from __future__ import annotations

import asyncio
import json
import random
import sqlite3
import subprocess
import sys
import time
from decimal import Decimal
from typing import Any

import httpx
import pytest
from conftest import Row
from rel_procs import (
    SECRET_A,
    SITE_A,
    MerchantEndpoint,
    MockProcess,
    auth,
    bill_body,
    wait_until,
    write_config,
)

API = "/partner/bill/v1/bills"

SIZES: dict[str, dict[str, Any]] = {
    "quick": {"creates": 50, "refunds": 30, "parts": 10, "pairs": 6, "load_seconds": 2.0, "load_ops": 400},
    "full": {"creates": 200, "refunds": 100, "parts": 50, "pairs": 40, "load_seconds": 25.0, "load_ops": 6000},
}


@pytest.fixture(scope="module")
def mock(module_mock_factory: Any, tmp_path_factory: pytest.TempPathFactory, merchant: MerchantEndpoint) -> MockProcess:
    """One mock with two worker processes on one database file for the whole module (ids differ per test)."""
    tmp_path = tmp_path_factory.mktemp("races")
    config = write_config(tmp_path / "merchants.toml", notify_url=merchant.url, retry_schedule=[0.5] * 5)
    process: MockProcess = module_mock_factory(
        ["--db", str(tmp_path / "mock.db"), "--workers", "2", "--config", str(config)]
    )
    return process


def _client(mock: MockProcess, connections: int = 250) -> httpx.AsyncClient:
    limits = httpx.Limits(max_connections=connections, max_keepalive_connections=connections)
    return httpx.AsyncClient(base_url=mock.url, headers=auth(SECRET_A), timeout=60.0, limits=limits, trust_env=False)


async def test_concurrent_identical_creates_make_one_bill(scale: str, mock: MockProcess, row: Row) -> None:
    """N identical `PUT`s of one billId at once: every answer 200 with the same body, one bill stored."""
    n = SIZES[scale]["creates"]
    body = bill_body("321.09", comment="race")
    async with _client(mock) as client:
        responses = await asyncio.gather(*(client.put(f"{API}/race-create-{scale}", json=body) for _ in range(n)))
    row.requests = n
    row.server_errors = sum(r.status_code >= 500 for r in responses)
    assert [r.status_code for r in responses] == [200] * n
    bodies = {r.content for r in responses}
    assert len(bodies) == 1, f"{len(bodies)} different bodies for one billId"
    with sqlite3.connect(f"file:{mock.db}?mode=ro", uri=True) as db:
        count = db.execute("SELECT COUNT(*) FROM bills WHERE bill_id = ?", (f"race-create-{scale}",)).fetchone()[0]
    row.lost = abs(count - 1)
    assert count == 1


async def test_concurrent_partial_refunds_never_exceed_the_bill(scale: str, mock: MockProcess, row: Row) -> None:
    """N refunds of 1/parts each at once: exactly `parts` succeed, the rest `refund.incorrect.amount`, FULL."""
    n, parts = SIZES[scale]["refunds"], SIZES[scale]["parts"]
    amount = Decimal("123.50")
    share = amount / parts
    assert share == share.quantize(Decimal("0.01"))
    async with _client(mock) as client:
        assert (await client.put(f"{API}/race-refund-{scale}", json=bill_body(str(amount)))).status_code == 200
        assert (await client.post(f"/_mock/bills/race-refund-{scale}/pay")).status_code == 200
        refund_body = {"amount": {"value": str(share), "currency": "RUB"}}
        responses = await asyncio.gather(
            *(client.put(f"{API}/race-refund-{scale}/refunds/r-{i}", json=refund_body) for i in range(n))
        )
        final = (await client.get(f"{API}/race-refund-{scale}")).json()
        stored = [(await client.get(f"{API}/race-refund-{scale}/refunds/r-{i}")) for i in range(n)]
    row.requests = n + 3 + n
    row.server_errors = sum(r.status_code >= 500 for r in responses)
    ok = [r for r in responses if r.status_code == 200]
    refused = [r for r in responses if r.status_code != 200]
    assert len(ok) == parts
    assert all(r.status_code == 400 and r.json()["errorCode"] == "refund.incorrect.amount" for r in refused)
    total = sum(Decimal(r.json()["amount"]["value"]) for r in ok)
    row.lost = int((amount - total) / Decimal("0.01"))
    assert total == amount
    assert final["status"]["value"] == "PAID"
    # Exactly the refunds that got 200 are stored, each as answered.
    stored_ok = {s.json()["refundId"]: s.content for s in stored if s.status_code == 200}
    assert stored_ok == {r.json()["refundId"]: r.content for r in ok}
    assert all(s.status_code == 404 for s in stored if s.json().get("refundId") not in stored_ok)
    # The refund that reached the bill amount is FULL, every earlier one PARTIAL ("Возврат по счету").
    assert sorted(json.loads(c)["status"] for c in stored_ok.values()) == ["FULL"] + ["PARTIAL"] * (parts - 1)
    with sqlite3.connect(f"file:{mock.db}?mode=ro", uri=True) as db:
        refunded = db.execute("SELECT refunded FROM bills WHERE bill_id = ?", (f"race-refund-{scale}",)).fetchone()[0]
        rows = db.execute("SELECT amount, status FROM refunds WHERE bill_id = ?", (f"race-refund-{scale}",)).fetchall()
    assert Decimal(refunded) == amount
    assert sum(Decimal(a) for a, _ in rows) == amount
    assert sorted(s for _, s in rows) == ["FULL"] + ["PARTIAL"] * (parts - 1)


async def test_concurrent_reject_and_pay_end_in_one_status(
    scale: str, mock: MockProcess, merchant: MerchantEndpoint, row: Row
) -> None:
    """Reject and pay one bill at once: exactly one wins; a notification exists only for PAID bills."""
    pairs = SIZES[scale]["pairs"]
    rng = random.Random(7)
    async with _client(mock) as client:
        ids = [f"race-rp-{scale}-{i}" for i in range(pairs)]
        created = await asyncio.gather(*(client.put(f"{API}/{bill_id}", json=bill_body("50.00")) for bill_id in ids))
        assert all(r.status_code == 200 for r in created)

        async def both(bill_id: str) -> tuple[httpx.Response, httpx.Response]:
            reject = client.post(f"{API}/{bill_id}/reject")
            pay = client.post(f"/_mock/bills/{bill_id}/pay")
            if rng.random() < 0.5:
                r, p = await asyncio.gather(reject, pay)
            else:
                p, r = await asyncio.gather(pay, reject)
            return r, p

        results = await asyncio.gather(*(both(bill_id) for bill_id in ids))
        finals = {bill_id: (await client.get(f"{API}/{bill_id}")).json()["status"]["value"] for bill_id in ids}
        paid = {bill_id for bill_id, status in finals.items() if status == "PAID"}
        # Wait for every PAID bill's notification to be delivered (bounded), then look at all deliveries.
        delivered: set[str] = set()

        def all_delivered() -> bool:
            nonlocal delivered
            got = httpx.get(f"{mock.url}/_mock/notifications", headers=auth(SECRET_A), trust_env=False).json()
            delivered = {d["billId"] for d in got["deliveries"] if d["state"] == "delivered" and d["billId"] in finals}
            return paid <= delivered

        await asyncio.to_thread(wait_until, all_delivered, timeout=30)
        deliveries = [
            d for d in (await client.get("/_mock/notifications")).json()["deliveries"] if d["billId"] in finals
        ]
    row.requests = pairs * 4
    row.server_errors = sum(r.status_code >= 500 or p.status_code >= 500 for r, p in results)
    for (reject, pay), bill_id in zip(results, ids, strict=True):
        winners = [name for name, resp in (("REJECTED", reject), ("PAID", pay)) if resp.status_code == 200]
        assert len(winners) == 1, f"{bill_id}: {reject.status_code} / {pay.status_code}"
        assert finals[bill_id] == winners[0]
        loser = pay if winners[0] == "REJECTED" else reject
        assert loser.status_code == 400
        assert loser.json()["errorCode"] == "validation.error"
    notified = [d["billId"] for d in deliveries]
    assert sorted(notified) == sorted(paid), "a notification for every PAID bill and for no other"
    assert paid <= delivered
    mine = [b for b in merchant.bodies() if b["bill"]["billId"] in finals]
    assert {b["bill"]["billId"] for b in mine} == paid
    assert all(b["bill"]["status"]["value"] == "PAID" for b in mine)


_READER = r"""
import json, sys, time, httpx
url, secret, prefix, count, seconds = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4]), float(sys.argv[5])
seen, requests, errors, vanished, regressed = {}, 0, 0, [], []
order = {"WAITING": 0, "PAID": 1, "REJECTED": 1}
deadline = time.monotonic() + seconds
with httpx.Client(base_url=url, headers={"Authorization": "Bearer " + secret}, timeout=30, trust_env=False) as c:
    i = 0
    while time.monotonic() < deadline and requests < 20000:
        bill_id = f"{prefix}{i % count}"
        i += 1
        r = c.get(f"/partner/bill/v1/bills/{bill_id}")
        requests += 1
        if r.status_code >= 500:
            errors += 1
        elif r.status_code == 200:
            status = r.json()["status"]["value"]
            if order.get(status, 1) < order.get(seen.get(bill_id, "WAITING"), 0):
                regressed.append(bill_id)
            seen[bill_id] = status
        elif r.status_code == 404 and bill_id in seen:
            vanished.append(bill_id)
print(json.dumps({"requests": requests, "errors": errors, "vanished": vanished, "regressed": regressed}))
"""


async def test_sustained_mixed_load_loses_nothing(scale: str, mock: MockProcess, row: Row) -> None:
    """Creates (some repeated), pays, rejects, refunds and reads for a bounded time, with a second reading process.

    Every acknowledged write is in the final state exactly once, the totals reconcile, nothing answered 5xx, and
    the other process never saw a bill vanish or go back to WAITING.
    """
    seconds, max_ops = SIZES[scale]["load_seconds"], SIZES[scale]["load_ops"]
    n_bills = max_ops // 4
    reader = subprocess.Popen(
        [sys.executable, "-c", _READER, mock.url, SECRET_A, f"load-{scale}-", str(n_bills), str(seconds + 2)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    rng = random.Random(11)
    bills: dict[str, dict[str, Any]] = {}  # acknowledged state: amount, status, refunds
    statuses: list[int] = []
    ops = 0
    ids = iter(range(1_000_000))

    async with _client(mock, connections=32) as client:
        deadline = time.monotonic() + seconds

        async def worker() -> None:
            nonlocal ops
            while time.monotonic() < deadline and ops < max_ops:
                ops += 1
                choice = rng.random()
                if choice < 0.4 or not bills:
                    bill_id = f"load-{scale}-{next(ids)}"
                    value = f"{rng.randint(1, 99999)}.{rng.randint(0, 99):02d}"
                    r = await client.put(f"{API}/{bill_id}", json=bill_body(value))
                    statuses.append(r.status_code)
                    if r.status_code == 200:
                        assert r.json()["amount"]["value"] == value
                        bills[bill_id] = {"amount": Decimal(value), "status": "WAITING", "refunds": {}}
                    continue
                bill_id = rng.choice(list(bills))
                entry = bills[bill_id]
                if choice < 0.5:  # repeat the create: must answer the stored bill
                    r = await client.put(f"{API}/{bill_id}", json=bill_body("1.00"))
                    statuses.append(r.status_code)
                    assert r.status_code == 200
                    assert r.json()["amount"]["value"] == f"{entry['amount']:.2f}"
                elif choice < 0.6 and entry["status"] == "WAITING":
                    r = await client.post(f"/_mock/bills/{bill_id}/pay")
                    statuses.append(r.status_code)
                    if r.status_code == 200:
                        entry["status"] = "PAID"
                elif choice < 0.65 and entry["status"] == "WAITING":
                    r = await client.post(f"{API}/{bill_id}/reject")
                    statuses.append(r.status_code)
                    if r.status_code == 200:
                        entry["status"] = "REJECTED"
                elif choice < 0.8 and entry["status"] == "PAID":
                    refund_id = f"rf-{next(ids)}"
                    refund_value = Decimal(rng.randint(1, 500)) / 100
                    r = await client.put(
                        f"{API}/{bill_id}/refunds/{refund_id}",
                        json={"amount": {"value": str(refund_value), "currency": "RUB"}},
                    )
                    statuses.append(r.status_code)
                    if r.status_code == 200:
                        entry["refunds"][refund_id] = refund_value
                else:
                    r = await client.get(f"{API}/{bill_id}")
                    statuses.append(r.status_code)

        await asyncio.gather(*(worker() for _ in range(16)))
        final = {bill_id: (await client.get(f"{API}/{bill_id}")) for bill_id in bills}

    out, err = await asyncio.to_thread(reader.communicate, timeout=120)
    assert reader.returncode == 0, err.decode()
    read = json.loads(out)
    server_errors = sum(s >= 500 for s in statuses) + read["errors"] + sum(s >= 500 for s in mock.access_statuses())
    lost = [b for b, r in final.items() if r.status_code != 200]
    changed = [
        b
        for b, r in final.items()
        if r.status_code == 200
        and (
            r.json()["status"]["value"] != bills[b]["status"]
            or r.json()["amount"]["value"] != f"{bills[b]['amount']:.2f}"
        )
    ]
    with sqlite3.connect(f"file:{mock.db}?mode=ro", uri=True) as db:
        stored = dict(
            db.execute(
                "SELECT bill_id, amount FROM bills WHERE site_id = ? AND bill_id LIKE ?", (SITE_A, f"load-{scale}-%")
            )
        )
        refunds = db.execute(
            "SELECT bill_id, refund_id, amount FROM refunds WHERE site_id = ? AND bill_id LIKE ?",
            (SITE_A, f"load-{scale}-%"),
        ).fetchall()
        count = db.execute("SELECT COUNT(*) FROM bills WHERE bill_id LIKE ?", (f"load-{scale}-%",)).fetchone()[0]
    row.requests = len(statuses) + read["requests"] + len(bills)
    row.server_errors = server_errors
    row.lost = len(lost) + len(changed) + abs(count - len(bills))
    assert server_errors == 0
    assert not lost, f"acknowledged bills missing: {lost[:5]}"
    assert not changed, f"acknowledged bills changed: {changed[:5]}"
    assert count == len(stored) == len(bills), "a bill stored that was never acknowledged, or one twice"
    assert sum(Decimal(v) for v in stored.values()) == sum(e["amount"] for e in bills.values())
    assert {(b, r): Decimal(a) for b, r, a in refunds} == {
        (b, r): v for b, e in bills.items() for r, v in e["refunds"].items()
    }
    assert not read["vanished"], f"the reader saw bills disappear: {read['vanished'][:5]}"
    assert not read["regressed"], f"the reader saw a final status go back: {read['regressed'][:5]}"
    assert read["requests"] > 0
