"""Faults: `kill -9` mid-load, a failing / slow / absent merchant endpoint, and the client against fault injection.

Properties: whatever got a 2xx survives a `kill -9` unchanged and nothing half-written shows after the restart;
every notification is eventually delivered with a valid signature on the (time-scaled) retry schedule, every
attempt recorded; the generated client built by `qiwi_bill.make_client` retries only idempotent calls, never
waits forever, and fails with a clear exception.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import itertools
import random
import sqlite3
import threading
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx
import pytest
from conftest import Row
from rel_procs import (
    SECRET_A,
    MerchantEndpoint,
    MockProcess,
    auth,
    bill_body,
    free_port,
    wait_until,
    write_config,
)

from qiwi_bill import SIGNATURE_HEADER, make_client, verify_signature
from qiwi_bill_client import errors as client_errors
from qiwi_bill_client.api.bills import create_bill, get_bill, reject_bill
from qiwi_bill_client.api.refunds import create_refund, get_refund
from qiwi_bill_client.models import AmountRequest, Bill, CreateBillRequest, CreateRefundRequest

API = "/partner/bill/v1/bills"
_UNSTABLE = ("payUrl",)  # carries the mock's base URL, which a restart on port 0 changes

SIZES: dict[str, dict[str, Any]] = {
    "quick": {"kills": 1, "bills": 20, "concurrency": 16, "fail_first": 2, "client_calls": 5},
    "full": {"kills": 3, "bills": 120, "concurrency": 32, "fail_first": 5, "client_calls": 25},
}


def _stable(bill: dict[str, Any], *also: str) -> dict[str, Any]:
    return {k: v for k, v in bill.items() if k not in _UNSTABLE and k not in also}


def _invoice_uid(bill: dict[str, Any]) -> str:
    return str(bill["payUrl"].rsplit("invoice_uid=", 1)[1])


# -- kill -9 ------------------------------------------------------------------------------------


async def _load_until_killed(mock: MockProcess, prefix: str, paid: list[str], size: dict[str, Any]) -> dict[str, Any]:
    """Creates, pays and refunds at full speed while the mock is `kill -9`ed; returns what got a 2xx."""
    rng = random.Random(prefix)
    acked_bills: dict[str, dict[str, Any]] = {}
    acked_refunds: dict[tuple[str, str], dict[str, Any]] = {}
    acked_paid: set[str] = set()
    uncertain: set[str] = set()
    failures = 0
    counter = iter(range(1_000_000))
    killed = threading.Event()
    limits = httpx.Limits(max_connections=64)
    async with httpx.AsyncClient(
        base_url=mock.url, headers=auth(SECRET_A), timeout=30.0, limits=limits, trust_env=False
    ) as client:

        async def worker() -> None:
            nonlocal failures
            while not killed.is_set():
                n = next(counter)
                try:
                    kind = rng.random()
                    if kind < 0.5 or not paid:
                        bill_id = f"{prefix}-b{n}"
                        value = f"{rng.randint(100, 99999)}.{rng.randint(0, 99):02d}"
                        r = await client.put(f"{API}/{bill_id}", json=bill_body(value, comment=f"load {n}"))
                        if r.status_code == 200:
                            acked_bills[bill_id] = r.json()
                            if kind < 0.15:
                                uncertain.add(bill_id)  # a pay cut off by the kill may or may not have landed
                                p = await client.post(f"/_mock/bills/{bill_id}/pay")
                                if p.status_code == 200:
                                    uncertain.discard(bill_id)
                                    acked_paid.add(bill_id)
                                    acked_bills[bill_id] = p.json()
                    else:
                        bill_id = rng.choice(paid)
                        body = {"amount": {"value": "0.01", "currency": "RUB"}}
                        r = await client.put(f"{API}/{bill_id}/refunds/k{n}", json=body)
                        if r.status_code == 200:
                            acked_refunds[(bill_id, f"k{n}")] = r.json()
                    assert r.status_code < 500, r.text
                except httpx.TransportError:
                    failures += 1
                    await asyncio.sleep(0.01)

        async def killer() -> None:
            # Kill once writes are flowing (a bounded wait), so requests are in flight at that moment.
            for _ in range(200):
                if len(acked_bills) + len(acked_refunds) >= size["bills"]:
                    break
                await asyncio.sleep(0.01)
            await asyncio.to_thread(mock.kill)
            killed.set()

        await asyncio.gather(killer(), *(worker() for _ in range(size["concurrency"])))
    return {
        "bills": acked_bills,
        "refunds": acked_refunds,
        "paid": acked_paid,
        "uncertain": uncertain,
        "failures": failures,
    }


async def test_kill_9_mid_load_keeps_every_acknowledged_write(
    scale: str, mock_factory: Any, tmp_path: Path, row: Row
) -> None:
    """`kill -9` during creates / pays / refunds, restart on the same `--db`: every 2xx is there, unchanged."""
    size = SIZES[scale]
    db = tmp_path / "mock.db"
    notify = f"http://127.0.0.1:{free_port()}/down"  # nobody listens: outbox rows stay pending
    config = write_config(tmp_path / "merchants.toml", notify_url=notify, retry_schedule=[3600.0])
    mock: MockProcess = mock_factory(["--db", str(db), "--workers", "2", "--config", str(config)])
    paid = [f"kill-{scale}-paid-{i}" for i in range(4)]
    with httpx.Client(base_url=mock.url, headers=auth(SECRET_A), trust_env=False, timeout=30) as client:
        for bill_id in paid:
            assert client.put(f"{API}/{bill_id}", json=bill_body("999999.99")).status_code == 200
            assert client.post(f"/_mock/bills/{bill_id}/pay").status_code == 200
    bills: dict[str, dict[str, Any]] = {}
    refunds: dict[tuple[str, str], dict[str, Any]] = {}
    paid_now: set[str] = set(paid)
    uncertain: set[str] = set()
    failures = requests = 0
    for round_ in range(size["kills"]):
        got = await _load_until_killed(mock, f"kill-{scale}-{round_}", paid, size)
        bills.update(got["bills"])
        refunds.update(got["refunds"])
        paid_now |= got["paid"]
        uncertain |= got["uncertain"]
        failures += got["failures"]
        requests += len(got["bills"]) + len(got["refunds"]) + got["failures"]
        mock.restart()

    lost: list[str] = []
    with httpx.Client(base_url=mock.url, headers=auth(SECRET_A), trust_env=False, timeout=30) as client:
        for bill_id, acked in bills.items():
            r = client.get(f"{API}/{bill_id}")
            if r.status_code != 200 or _invoice_uid(r.json()) != _invoice_uid(acked):
                lost.append(bill_id)
            elif bill_id in uncertain and r.json()["status"]["value"] in ("WAITING", "PAID"):
                # Only the unanswered pay may have changed it: everything but the status is as acknowledged.
                if _stable(r.json(), "status") != _stable(acked, "status"):
                    lost.append(bill_id)
            elif _stable(r.json()) != _stable(acked):
                lost.append(bill_id)
        for (bill_id, refund_id), acked in refunds.items():
            r = client.get(f"{API}/{bill_id}/refunds/{refund_id}")
            if r.status_code != 200 or r.json() != acked:
                lost.append(f"{bill_id}/{refund_id}")
        statuses = [r.status_code for r in (client.get(f"{API}/{b}") for b in paid)]
    row.requests = requests + len(bills) + len(refunds)
    row.faults = size["kills"]
    row.server_errors = sum(s >= 500 for s in mock.access_statuses())
    row.lost = len(lost)
    assert bills, "no write was acknowledged before the kill: the scenario did not run"
    assert failures, "no request was cut off by the kill: the kill did not land mid-load"
    assert not lost, f"acknowledged writes lost or changed after kill -9: {lost[:5]}"
    assert statuses == [200] * len(paid)
    assert row.server_errors == 0
    # Nothing half-written: the database is intact, each bill's refunded total is the sum of its refund rows,
    # and every PAID bill (and only those) has exactly one notification queued in the same transaction.
    with sqlite3.connect(f"file:{db}?mode=ro", uri=True) as conn:
        assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        mismatched = conn.execute(
            "SELECT b.bill_id, b.refunded, COALESCE(SUM(CAST(r.amount AS REAL)), 0) FROM bills b "
            "LEFT JOIN refunds r ON r.site_id = b.site_id AND r.bill_id = b.bill_id GROUP BY b.site_id, b.bill_id"
        ).fetchall()
        refund_rows = conn.execute("SELECT bill_id, amount FROM refunds").fetchall()
        outbox = conn.execute("SELECT bill_id, COUNT(*) FROM outbox GROUP BY bill_id").fetchall()
        db_paid = {b for (b,) in conn.execute("SELECT bill_id FROM bills WHERE status = 'PAID'")}
    sums: dict[str, Decimal] = {}
    for bill_id, amount in refund_rows:
        sums[bill_id] = sums.get(bill_id, Decimal(0)) + Decimal(amount)
    assert [b for b, refunded, _ in mismatched if Decimal(refunded or "0") != sums.get(b, Decimal(0))] == []
    assert dict(outbox) == dict.fromkeys(db_paid, 1)
    assert paid_now <= db_paid


# -- notifications ----------------------------------------------------------------------------


def _deliveries(mock: MockProcess, bill_id: str) -> list[dict[str, Any]]:
    r = httpx.get(
        f"{mock.url}/_mock/notifications", params={"billId": bill_id}, headers=auth(SECRET_A), trust_env=False
    )
    r.raise_for_status()
    return list(r.json()["deliveries"])


def _delivered(mock: MockProcess, bill_id: str) -> bool:
    try:
        return any(d["state"] == "delivered" for d in _deliveries(mock, bill_id))
    except httpx.HTTPError:
        return False


def _pay(mock: MockProcess, bill_id: str) -> dict[str, Any]:
    with httpx.Client(base_url=mock.url, headers=auth(SECRET_A), trust_env=False, timeout=30) as client:
        assert client.put(f"{API}/{bill_id}", json=bill_body("42.42")).status_code == 200
        paid = client.post(f"/_mock/bills/{bill_id}/pay")
        assert paid.status_code == 200
        return dict(paid.json())


def _stamp(text: str) -> dt.datetime:
    return dt.datetime.fromisoformat(text)


def _check_received(merchant: MerchantEndpoint, bill_id: str, bill: dict[str, Any]) -> int:
    """Every POST the merchant got: the same bytes, a valid signature, the bill as paid. Returns how many."""
    mine = [r for r in merchant.received if bill_id.encode() in r.body]
    assert mine, "the merchant never received the notification"
    assert len({r.body for r in mine}) == 1, "duplicate notifications differ"
    for received in mine:
        assert verify_signature(received.body, received.headers, secret=SECRET_A)
        assert received.headers[SIGNATURE_HEADER.lower()] == mine[0].headers[SIGNATURE_HEADER.lower()]
        body = merchant.bodies()[merchant.received.index(received)]
        assert body["bill"]["billId"] == bill_id
        assert body["bill"]["status"]["value"] == "PAID"
        assert body["bill"]["amount"] == bill["amount"]
        assert body["version"] == "1"
    return len(mine)


def _check_schedule(attempts: list[dict[str, Any]], delay: float) -> None:
    """Attempts are numbered 1..n, and each retry waited at least the scheduled (scaled) delay."""
    assert [a["attempt"] for a in attempts] == list(range(1, len(attempts) + 1))
    for earlier, later in itertools.pairwise(attempts):
        gap = (_stamp(later["dateTime"]) - _stamp(earlier["dateTime"])).total_seconds()
        assert gap >= delay - 0.001, f"retry after {gap:.3f} s, schedule says {delay} s"


_SCALED_15_MIN = 15 * 60 * 0.001  # the documented first retry delay under --time-scale 0.001


@pytest.fixture
def merchant() -> Any:
    endpoint = MerchantEndpoint().up()
    yield endpoint
    endpoint.down()


def test_notification_retried_after_500s_until_delivered(
    scale: str, mock_factory: Any, tmp_path: Path, merchant: MerchantEndpoint, row: Row
) -> None:
    """The merchant answers 500 to the first N attempts: delivered on attempt N+1, each attempt recorded."""
    n = SIZES[scale]["fail_first"]
    merchant.script = [500] * n
    config = write_config(tmp_path / "m.toml", notify_url=merchant.url)
    mock: MockProcess = mock_factory(["--db", str(tmp_path / "m.db"), "--config", str(config), "--time-scale", "0.001"])
    bill = _pay(mock, f"n500-{scale}")
    assert wait_until(lambda: _delivered(mock, f"n500-{scale}"), timeout=30 + n * 3)
    (delivery,) = _deliveries(mock, f"n500-{scale}")
    attempts = delivery["attempts"]
    row.requests = _check_received(merchant, f"n500-{scale}", bill)
    row.faults = n
    row.server_errors = sum(s >= 500 for s in mock.access_statuses())
    assert [a["statusCode"] for a in attempts] == [500] * n + [200]
    assert delivery["attemptCount"] == n + 1
    assert row.requests == n + 1
    _check_schedule(attempts, _SCALED_15_MIN)


def test_notification_retried_after_timeout(
    scale: str, mock_factory: Any, tmp_path: Path, merchant: MerchantEndpoint, row: Row
) -> None:
    """The merchant is too slow (past the mock's notify timeout): the attempt fails and is retried; the copies
    the merchant did get are identical and validly signed."""
    slow = 1 if scale == "quick" else 3
    merchant.script = [("sleep", 2.0)] * slow
    config = write_config(tmp_path / "m.toml", notify_url=merchant.url, notify_timeout=0.5)
    mock: MockProcess = mock_factory(["--db", str(tmp_path / "m.db"), "--config", str(config), "--time-scale", "0.001"])
    bill = _pay(mock, f"nslow-{scale}")
    assert wait_until(lambda: _delivered(mock, f"nslow-{scale}"), timeout=60)
    (delivery,) = _deliveries(mock, f"nslow-{scale}")
    attempts = delivery["attempts"]
    row.requests = _check_received(merchant, f"nslow-{scale}", bill)
    row.faults = slow
    assert [a["statusCode"] for a in attempts] == [None] * slow + [200]
    assert all("Timeout" in a["error"] for a in attempts[:slow])
    _check_schedule(attempts, _SCALED_15_MIN)


def test_notification_survives_merchant_down_across_mock_restart(
    scale: str, mock_factory: Any, tmp_path: Path, merchant: MerchantEndpoint, row: Row
) -> None:
    """The merchant is down, the mock restarts (SIGTERM; `kill -9` in the full run) on the same `--db`, the merchant
    comes back: the notification is delivered, and the attempts before the restart are still on record."""
    merchant.down()
    config = write_config(tmp_path / "m.toml", notify_url=merchant.url, notify_timeout=1.0)
    args = ["--db", str(tmp_path / "m.db"), "--config", str(config), "--time-scale", "0.001"]
    if scale == "full":
        args += ["--workers", "2"]
    mock: MockProcess = mock_factory(args)
    bill_id = f"ndown-{scale}"
    bill = _pay(mock, bill_id)
    assert wait_until(lambda: len(_deliveries(mock, bill_id)[0]["attempts"]) >= 2, timeout=30)
    if scale == "quick":
        assert mock.stop() == 0
    else:
        mock.kill()
    before = len(_deliveries(mock.restart(), bill_id)[0]["attempts"])
    merchant.up()
    # A kill -9 mid-attempt leaves that delivery leased for notify_timeout + 30 s: the bound allows for it.
    assert wait_until(lambda: _delivered(mock, bill_id), timeout=90)
    (delivery,) = _deliveries(mock, bill_id)
    attempts = delivery["attempts"]
    row.requests = len(attempts)
    row.faults = len(attempts) - 1 + 1  # refused attempts, plus the restart
    row.server_errors = sum(s >= 500 for s in mock.access_statuses())
    assert before >= 2
    assert len(attempts) > before
    assert all(a["statusCode"] is None and "Connect" in a["error"] for a in attempts[:-1])
    assert attempts[-1]["statusCode"] == 200
    assert _check_received(merchant, bill_id, bill) == 1
    _check_schedule(attempts, _SCALED_15_MIN)


# -- the client against fault injection ------------------------------------------------------------


class _Attempts:
    """Counts the requests the client really sent (httpx event hook, called for every attempt)."""

    def __init__(self) -> None:
        self.by_method: dict[str, int] = {}
        self.total = 0  # never cleared

    def __call__(self, request: httpx.Request) -> None:
        self.by_method[request.method] = self.by_method.get(request.method, 0) + 1
        self.total += 1


def _bill_request() -> CreateBillRequest:
    return CreateBillRequest(
        amount=AmountRequest(currency="RUB", value="77.00"),
        expiration_date_time=dt.datetime.now(dt.UTC) + dt.timedelta(days=3),
    )


@pytest.fixture(scope="module")
def faulty_mock(module_mock_factory: Any, tmp_path_factory: pytest.TempPathFactory) -> MockProcess:
    """One mock, a different fault on each operation; `/_mock/` controls are never faulted."""
    tmp_path = tmp_path_factory.mktemp("faulty")
    config = write_config(tmp_path / "m.toml")
    faults = [
        "route=getBill,latency=1.5",  # past the client's timeout: a timeout, retried (GET is idempotent)
        "route=rejectBill,drop=1.0",  # the connection dies mid-answer: POST reject is not retried
        "route=createBill,error=0.3,drop=0.1",  # flaky: PUT create is keyed by billId, retried until it lands
        "route=createRefund,error=1.0",  # always 503: retried, then a clear exception
    ]
    args = ["--db", str(tmp_path / "m.db"), "--config", str(config), "--fault-seed", "1"]
    for fault in faults:
        args += ["--fault", fault]
    process: MockProcess = module_mock_factory(args)
    return process


def test_client_retries_only_idempotent_calls_with_finite_timeouts(
    scale: str, faulty_mock: MockProcess, row: Row
) -> None:
    """`make_client` + the generated operations against latency, 503s and dropped connections."""
    calls = SIZES[scale]["client_calls"]
    attempts = _Attempts()
    hooks = {"event_hooks": {"request": [attempts]}}
    client = make_client(SECRET_A, base_url=faulty_mock.url, timeout=0.5, retries=10, backoff=0.01, httpx_args=hooks)
    strict = make_client(
        SECRET_A,
        base_url=faulty_mock.url,
        timeout=0.5,
        retries=2,
        backoff=0.01,
        raise_on_unexpected_status=True,
        httpx_args=hooks,
    )
    assert client.get_httpx_client().timeout.read == 0.5
    assert make_client(SECRET_A).get_httpx_client().timeout.read is not None, "the default timeout must be finite"
    with client, strict:
        # Flaky create (503 / dropped): retried with the same billId until it lands; one bill per id.
        for i in range(calls):
            response = create_bill.sync_detailed(f"flaky-{scale}-{i}", client=client, body=_bill_request())
            assert response.status_code == 200
            assert isinstance(response.parsed, Bill)
        created_attempts = attempts.by_method.get("PUT", 0)
        assert created_attempts > calls, "no create was retried: the fault injection did not bite"

        # A GET slower than the timeout: retried, then a clear timeout exception, never a hang.
        attempts.by_method.clear()
        with pytest.raises(httpx.TimeoutException):
            get_bill.sync_detailed(f"flaky-{scale}-0", client=strict)
        assert attempts.by_method == {"GET": 3}

        # A reject whose connection dies: POST is not idempotent, so exactly one attempt and a clear exception.
        attempts.by_method.clear()
        with pytest.raises(httpx.RemoteProtocolError):
            reject_bill.sync_detailed(f"flaky-{scale}-0", client=client)
        assert attempts.by_method == {"POST": 1}

        # A refund that always gets 503: PUT is keyed by refundId, retried, then UnexpectedStatus (503 is not in
        # the contract), with the status in the message.
        attempts.by_method.clear()
        body = CreateRefundRequest(amount=AmountRequest(currency="RUB", value="1.00"))
        with pytest.raises(client_errors.UnexpectedStatus, match="503"):
            create_refund.sync_detailed(f"flaky-{scale}-0", "r1", client=strict, body=body)
        assert attempts.by_method == {"PUT": 3}
        # getRefund has no fault: it answers at once (404, the refund never landed).
        assert get_refund.sync_detailed(f"flaky-{scale}-0", "r1", client=strict).status_code == 404

    # Every flaky create made exactly one bill, unchanged by its retries; the reject never happened.
    with httpx.Client(base_url=faulty_mock.url, headers=auth(SECRET_A), trust_env=False) as plain:
        statuses = [plain.post(f"/_mock/bills/flaky-{scale}-{i}/expire").status_code for i in range(calls)]
    row.requests = attempts.total + calls
    row.faults = attempts.total - calls - 1  # every attempt beyond one per create, and the 3 + 1 + 3 faulted calls
    row.server_errors = 0  # the 503s are the injected faults, not server errors
    assert statuses == [200] * calls, "a bill that got 200 is missing, or the dropped reject went through"


async def test_async_client_times_out_and_does_not_retry_posts(faulty_mock: MockProcess, scale: str, row: Row) -> None:
    """The async side of `make_client`: a finite timeout on a slow GET, one attempt for a dropped POST."""
    attempts = _Attempts()

    async def hook(request: httpx.Request) -> None:
        attempts(request)

    client = make_client(
        SECRET_A,
        base_url=faulty_mock.url,
        timeout=0.3,
        retries=1,
        backoff=0.01,
        httpx_args={"event_hooks": {"request": [hook]}},
    )
    creator = make_client(SECRET_A, base_url=faulty_mock.url, timeout=5, retries=10, backoff=0.01)
    async with creator:  # createBill is flaky on this mock: enough retries to land the bill
        created = await create_bill.asyncio_detailed(f"async-{scale}", client=creator, body=_bill_request())
        assert created.status_code == 200
    async with client:
        attempts.by_method.clear()
        with pytest.raises(httpx.TimeoutException):
            await get_bill.asyncio_detailed(f"async-{scale}", client=client)
        with pytest.raises(httpx.RemoteProtocolError):
            await reject_bill.asyncio_detailed(f"async-{scale}", client=client)
    row.requests = attempts.total + 1
    row.faults = attempts.total
    assert attempts.by_method == {"GET": 2, "POST": 1}
