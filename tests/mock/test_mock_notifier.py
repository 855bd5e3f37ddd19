"""Notifications end to end, retries on the (scaled) schedule, restart-resume, and fault injection."""

from __future__ import annotations

import asyncio
import json
from datetime import datetime, timedelta
from decimal import Decimal
from pathlib import Path

import httpx
import pytest
from mock_helpers import AUTH, SECRET, SITE, FakeClock, Receiver, bill_body, make_settings, sequential_ids, wait_for

from qiwi_bill import verify_signature
from qiwi_bill_client import AuthenticatedClient
from qiwi_bill_client.api.bills import create_bill
from qiwi_bill_client.models import AmountRequest, Bill, CreateBillRequest
from qiwi_bill_mock import Fault, create_app
from qiwi_bill_mock.store import BillDraft

BILLS = "/partner/bill/v1/bills"
NOTIFY_URL = "http://merchant.test/qiwi/notify"


def test_paid_bill_sends_a_verifiable_signed_notification(serve) -> None:
    receiver = Receiver()
    merchant_site = serve(receiver.app)
    mock = serve(create_app(make_settings(notify_url=f"{merchant_site.url}/qiwi/notify")))
    with AuthenticatedClient(base_url=mock.url, token=SECRET) as client:
        body = CreateBillRequest(
            amount=AmountRequest(currency="RUB", value="1.00"),
            expiration_date_time=datetime.fromisoformat("2030-01-01T00:00:00+03:00"),
            comment="Text comment",
        )
        bill = create_bill.sync("cc961e8d", client=client, body=body)
        assert isinstance(bill, Bill)
    httpx.post(f"{mock.url}/_mock/bills/cc961e8d/pay", headers=AUTH).raise_for_status()
    assert receiver.received.wait(10)
    ((headers, raw),) = receiver.requests
    assert verify_signature(raw, headers, secret=SECRET)
    assert not verify_signature(raw, headers, secret="another-secret")
    assert headers["content-type"] == "application/json"
    assert headers["accept"] == "application/json"
    notification = json.loads(raw)
    assert notification["version"] == "1"
    assert notification["bill"]["amount"] == {"currency": "RUB", "value": "1.00"}
    assert notification["bill"]["status"]["value"] == "PAID"
    assert notification["bill"]["siteId"] == SITE
    assert notification["bill"]["comment"] == "Text comment"
    assert "payUrl" not in notification["bill"]
    wait_for(
        lambda: (
            httpx.get(f"{mock.url}/_mock/notifications", headers=AUTH).json()["deliveries"][0]["state"] == "delivered"
        )
    )
    (delivery,) = httpx.get(f"{mock.url}/_mock/notifications", headers=AUTH).json()["deliveries"]
    assert delivery["attempts"][0]["statusCode"] == 200
    assert delivery["attempts"][0]["latencyMs"] >= 0


def test_scaled_retry_schedule_in_real_time(serve) -> None:
    receiver = Receiver(statuses=[500, 502])
    merchant_site = serve(receiver.app)
    # time_scale 0.0002: the documented 15-minute gap becomes 0.18 s.
    mock = serve(create_app(make_settings(notify_url=f"{merchant_site.url}/qiwi/notify", time_scale=0.0002)))
    httpx.put(f"{mock.url}{BILLS}/b1", json=bill_body(), headers=AUTH).raise_for_status()
    httpx.post(f"{mock.url}/_mock/bills/b1/pay", headers=AUTH).raise_for_status()
    assert receiver.received.wait(10)
    wait_for(
        lambda: (
            httpx.get(f"{mock.url}/_mock/notifications", headers=AUTH).json()["deliveries"][0]["state"] == "delivered"
        )
    )
    (delivery,) = httpx.get(f"{mock.url}/_mock/notifications", headers=AUTH).json()["deliveries"]
    assert [a["statusCode"] for a in delivery["attempts"]] == [500, 502, 200]
    assert [a["error"] for a in delivery["attempts"]] == ["HTTP 500", "HTTP 502", None]
    bodies = {raw for _, raw in receiver.requests}
    assert len(bodies) == 1  # every retry sends the same signed body


async def test_retries_follow_the_mock_clock(clock: FakeClock) -> None:
    receiver = Receiver(statuses=[500, 404, 201])
    app = create_app(
        make_settings(notify_url=NOTIFY_URL),
        clock=clock,
        notify_transport=httpx.ASGITransport(app=receiver.app),
    )
    notifier = app.state.ctx.notifier
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as client:
        await client.put(f"{BILLS}/b1", json=bill_body(), headers=AUTH)
        await client.post("/_mock/bills/b1/pay", headers=AUTH)
        assert await notifier.drain() == 1
        assert await notifier.drain() == 0  # the next attempt is 15 minutes away
        clock.advance(899)
        assert await notifier.drain() == 0
        # Advancing through the control moves the mock clock and makes the retry due.
        await client.post("/_mock/clock/advance", json={"seconds": 1}, headers=AUTH)
        assert await notifier.drain() == 1
        clock.advance(900)
        assert await notifier.drain() == 1  # 201 is not 200: still a failure (docs since 2019-11)
        clock.advance(900)
        assert await notifier.drain() == 1
        (delivery,) = (await client.get("/_mock/notifications", headers=AUTH)).json()["deliveries"]
        assert delivery["state"] == "delivered"
        assert [a["statusCode"] for a in delivery["attempts"]] == [500, 404, 201, 200]
        filtered = (await client.get("/_mock/notifications?billId=other", headers=AUTH)).json()
        assert filtered == {"deliveries": [], "limit": 1000, "nextAfter": None}  # one page, the last
    await notifier.stop()


async def test_schedule_exhausted_marks_delivery_failed(clock: FakeClock) -> None:
    receiver = Receiver(statuses=[500] * 10)
    settings = make_settings(notify_url=NOTIFY_URL, retry_schedule=(60.0, 60.0))
    app = create_app(settings, clock=clock, notify_transport=httpx.ASGITransport(app=receiver.app))
    store, notifier = app.state.ctx.store, app.state.ctx.notifier
    store.create_bill(SITE, "b", _draft(clock))
    store.pay_bill(SITE, "b")
    for _ in range(5):
        await notifier.drain()
        clock.advance(60)
    (delivery,) = store.list_deliveries(SITE)
    assert delivery["state"] == "failed"
    assert delivery["attemptCount"] == 3
    assert delivery["nextAttemptDateTime"] is None
    await notifier.stop()


def _draft(clock: FakeClock) -> BillDraft:
    expiration = clock() + timedelta(days=1)
    return BillDraft(amount=Decimal("1.00"), currency="RUB", expiration=expiration, expiration_text="x")


async def test_restart_resumes_pending_deliveries(tmp_path: Path, clock: FakeClock) -> None:
    settings = make_settings(notify_url=NOTIFY_URL, db_path=str(tmp_path / "mock.db"))
    down = Receiver(statuses=[503])
    first = create_app(settings, clock=clock, notify_transport=httpx.ASGITransport(app=down.app))
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=first), base_url="http://t") as client:
        await client.put(f"{BILLS}/b1", json=bill_body(), headers=AUTH)
        await client.post("/_mock/bills/b1/pay", headers=AUTH)
    await first.state.ctx.notifier.drain()
    await first.state.ctx.notifier.stop()
    first.state.ctx.store.close()

    up = Receiver()
    second = create_app(settings, clock=clock, notify_transport=httpx.ASGITransport(app=up.app))
    clock.advance(900)
    assert await second.state.ctx.notifier.drain() == 1
    ((headers, raw),) = up.requests
    assert verify_signature(raw, headers, secret=SECRET)
    (delivery,) = second.state.ctx.store.list_deliveries(SITE)
    assert [a["statusCode"] for a in delivery["attempts"]] == [503, 200]
    await second.state.ctx.notifier.stop()


async def test_rejected_and_expired_notify_when_configured(clock: FakeClock) -> None:
    receiver = Receiver()
    settings = make_settings(notify_url=NOTIFY_URL, notify_statuses=frozenset({"PAID", "REJECTED", "EXPIRED"}))
    app = create_app(settings, clock=clock, notify_transport=httpx.ASGITransport(app=receiver.app))
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as client:
        await client.put(f"{BILLS}/r", json=bill_body(), headers=AUTH)
        await client.put(
            f"{BILLS}/e", json={**bill_body(), "expirationDateTime": "2026-03-01T12:00:01+03:00"}, headers=AUTH
        )
        await client.post(f"{BILLS}/r/reject", headers=AUTH)
        clock.advance(2)
        assert app.state.ctx.store.sweep_expired() == 1
    await app.state.ctx.notifier.drain()
    statuses = sorted(json.loads(raw)["bill"]["status"]["value"] for _, raw in receiver.requests)
    assert statuses == ["EXPIRED", "REJECTED"]
    assert all(verify_signature(raw, headers, secret=SECRET) for headers, raw in receiver.requests)
    await app.state.ctx.notifier.stop()


async def test_unreachable_merchant_is_recorded_as_an_error(clock: FakeClock) -> None:
    def refuse(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("connection refused", request=request)

    app = create_app(make_settings(notify_url=NOTIFY_URL), clock=clock, notify_transport=httpx.MockTransport(refuse))
    store = app.state.ctx.store
    store.create_bill(SITE, "b", _draft(clock))
    store.pay_bill(SITE, "b")
    await app.state.ctx.notifier.drain()
    (delivery,) = store.list_deliveries(SITE)
    (attempt,) = delivery["attempts"]
    assert attempt["statusCode"] is None
    assert attempt["error"] == "ConnectError: connection refused"
    assert delivery["state"] == "pending"
    await app.state.ctx.notifier.stop()


# -- fault injection ---------------------------------------------------------------------------


def _faulty(*faults: Fault, seed: int | None = None) -> httpx.AsyncClient:
    app = create_app(make_settings(faults=faults, fault_seed=seed), clock=FakeClock(), id_factory=sequential_ids())
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t")


async def test_fault_error_and_throttle_answers_are_qiwi_errors() -> None:
    async with _faulty(Fault(route="getBill", error_rate=1.0)) as client:
        assert (await client.put(f"{BILLS}/b", json=bill_body(), headers=AUTH)).status_code == 200
        response = await client.get(f"{BILLS}/b", headers=AUTH)
        assert response.status_code == 503
        assert response.json()["traceId"] == response.headers["x-trace-id"]
        assert (await client.get("/_mock/health")).status_code == 200  # controls are never faulted
    async with _faulty(Fault(throttle_rate=1.0, latency=0.001)) as client:
        response = await client.put(f"{BILLS}/b", json=bill_body(), headers=AUTH)
        assert response.status_code == 429
        assert response.headers["retry-after"] == "1"
        assert response.json()["errorCode"] == "http.too.many.requests"


async def test_fault_dropped_connection() -> None:
    async with _faulty(Fault(route="createBill", drop_rate=1.0)) as client:
        with pytest.raises(Exception, match="createBill"):
            await client.put(f"{BILLS}/b", json=bill_body(), headers=AUTH)


async def test_fault_rates_are_reproducible_with_a_seed() -> None:
    outcomes = []
    for _ in range(2):
        async with _faulty(Fault(error_rate=0.5), seed=7) as client:
            codes = [(await client.get(f"{BILLS}/b{n}", headers=AUTH)).status_code for n in range(30)]
        outcomes.append(codes)
    assert outcomes[0] == outcomes[1]
    assert set(outcomes[0]) == {404, 503}


@pytest.mark.parametrize("spec", ["route=getBill,latency=0.5,error=0.1,throttle=0.2,drop=0.05", "error=1", "route=*"])
def test_fault_spec_parsing(spec: str) -> None:
    fault = Fault.parse(spec)
    assert 0 <= fault.error_rate <= 1


@pytest.mark.parametrize("spec", ["error=2", "bogus=1", "latency=x", "route"])
def test_bad_fault_specs(spec: str) -> None:
    with pytest.raises(ValueError):  # noqa: PT011 - SettingsError is a ValueError
        Fault.parse(spec)


async def test_two_workers_never_send_one_attempt_twice(tmp_path: Path, clock: FakeClock) -> None:
    receiver = Receiver()
    settings = make_settings(notify_url=NOTIFY_URL, db_path=str(tmp_path / "mock.db"))
    workers = [
        create_app(settings, clock=clock, notify_transport=httpx.ASGITransport(app=receiver.app)) for _ in range(2)
    ]
    store = workers[0].state.ctx.store
    for n in range(20):
        store.create_bill(SITE, f"b{n}", _draft(clock))
        store.pay_bill(SITE, f"b{n}")
    counts = await asyncio.gather(*(w.state.ctx.notifier.drain() for w in workers))
    assert sum(counts) == 20
    assert len(receiver.requests) == 20
    assert len({json.loads(raw)["bill"]["billId"] for _, raw in receiver.requests}) == 20
    assert workers[1].state.ctx.store.next_delivery_due() is None
    for w in workers:
        await w.state.ctx.notifier.stop()


async def test_the_journal_is_paginated_by_limit_and_after() -> None:
    """Issue 16, item 7: `GET /_mock/notifications` pages (`limit`, `after` = the last id seen, `nextAfter`)."""
    app = create_app(make_settings(notify_url=NOTIFY_URL))
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://mock.test") as client:
        for n in range(5):
            assert (await client.put(f"{BILLS}/p{n}", json=bill_body(), headers=AUTH)).status_code == 200
            assert (await client.post(f"/_mock/bills/p{n}/pay", headers=AUTH)).status_code == 200
        seen: list[str] = []
        after: int | None = 0
        pages = 0
        while after is not None:
            body = (await client.get("/_mock/notifications", params={"limit": 2, "after": after}, headers=AUTH)).json()
            assert body["limit"] == 2
            assert len(body["deliveries"]) <= 2
            seen += [d["billId"] for d in body["deliveries"]]
            after = body["nextAfter"]
            pages += 1
        assert seen == [f"p{n}" for n in range(5)]
        assert pages == 3
        everything = (await client.get("/_mock/notifications", headers=AUTH)).json()
        assert [d["billId"] for d in everything["deliveries"]] == seen
        assert everything["nextAfter"] is None
        for bad in ({"limit": "0"}, {"limit": "1001"}, {"limit": "x"}, {"after": "-1"}):
            refused = await client.get("/_mock/notifications", params=bad, headers=AUTH)
            assert refused.status_code == 400
            assert refused.json()["errorCode"] == "validation.error"
