"""`MockTransport` / `AppRunner`: sync and async httpx over the app, lifespan running, no socket."""

from __future__ import annotations

import asyncio

import httpx
import pytest

from qiwi_bill import make_client
from qiwi_bill_client.api.bills import create_bill, get_bill
from qiwi_bill_client.models import Bill
from qiwi_bill_mock import Merchant, Settings, create_app
from qiwi_bill_mock.testing import AppRunner, MockTransport, NotificationRouter

KEY = "sk-kit-transport"
AUTH = {"Authorization": f"Bearer {KEY}"}


def _settings(notify_url: str | None = None) -> Settings:
    merchant = Merchant(site_id="kit-1", secret_key=KEY, public_key="pk-kit", notify_url=notify_url)
    return Settings(merchants=[merchant], public_url="https://api.qiwi.com")


def test_a_plain_httpx_client_talks_to_the_app_with_no_socket(body_json) -> None:
    with (
        MockTransport(create_app(_settings())) as transport,
        httpx.Client(transport=transport, base_url="https://api.qiwi.com") as http,
    ):
        created = http.put("/partner/bill/v1/bills/t-1", json=body_json, headers=AUTH)
        assert created.status_code == 200
        assert created.json()["status"]["value"] == "WAITING"
        assert created.headers["X-Trace-Id"]
        assert http.get("/partner/bill/v1/bills/t-1", headers=AUTH).json()["billId"] == "t-1"
    assert not transport.runner.running  # closing the client closed the transport, which owned the app


def test_one_generated_client_works_sync_and_async_over_the_same_transport(body) -> None:
    transport = MockTransport(create_app(_settings()))
    client = make_client(KEY, httpx_args={"transport": transport})
    try:
        bill = create_bill.sync(bill_id="t-2", client=client, body=body)
        assert isinstance(bill, Bill)
        assert bill.amount.value == "10.00"

        async def read_async() -> object:
            return await get_bill.asyncio(bill_id="t-2", client=client)

        got = asyncio.run(read_async())
        assert isinstance(got, Bill)
        assert got.bill_id == "t-2"
    finally:
        transport.close()


def test_the_lifespan_runs_so_notifications_go_out_without_any_drain(body_json) -> None:
    settings = _settings(notify_url="http://merchant.test/notify")
    router = NotificationRouter(settings)
    app = create_app(settings, notify_transport=router)
    with MockTransport(app) as transport, httpx.Client(transport=transport, base_url="https://api.qiwi.com") as http:
        http.put("/partner/bill/v1/bills/t-3", json=body_json, headers=AUTH).raise_for_status()
        http.post("/_mock/bills/t-3/pay", headers=AUTH).raise_for_status()
        received = router.inbox.wait(bill_id="t-3", status="PAID", timeout=5)
    assert received.verified
    assert received.status_code == 200


def test_a_shared_runner_outlives_the_transports_closed_over_it() -> None:
    with AppRunner(create_app(_settings())) as runner:
        with httpx.Client(transport=MockTransport(runner), base_url="https://api.qiwi.com") as http:
            assert http.get("/_mock/health").status_code == 200
        assert runner.running
        with httpx.Client(transport=MockTransport(runner), base_url="https://api.qiwi.com") as http:
            assert http.get("/_mock/health").status_code == 200
    assert not runner.running


async def test_the_async_side_runs_on_the_apps_loop_not_the_callers(body_json) -> None:
    transport = MockTransport(create_app(_settings()))
    async with httpx.AsyncClient(transport=transport, base_url="https://api.qiwi.com") as http:
        answers = await asyncio.gather(
            *(http.put(f"/partner/bill/v1/bills/a-{i}", json=body_json, headers=AUTH) for i in range(5))
        )
        assert [a.status_code for a in answers] == [200] * 5
        assert transport.runner.loop is not asyncio.get_running_loop()
    assert not transport.runner.running


def test_a_blocking_call_from_the_apps_own_loop_is_refused_not_a_deadlock() -> None:
    with AppRunner(create_app(_settings())) as runner:

        async def inside() -> str:
            transport = MockTransport(runner)
            try:
                transport.handle_request(httpx.Request("GET", "https://api.qiwi.com/_mock/health"))
            except RuntimeError as exc:
                return str(exc)
            return "no error"

        assert "deadlock" in runner.call(inside())


def test_an_app_whose_startup_fails_raises_from_start() -> None:
    async def broken(scope, receive, send) -> None:
        message = await receive()
        assert message["type"] == "lifespan.startup"
        await send({"type": "lifespan.startup.failed", "message": "no database"})

    runner = AppRunner(broken, startup_timeout=0.5)
    with pytest.raises(RuntimeError, match="lifespan did not start"):
        runner.start()
    assert not runner.running


def test_transports_of_one_app_share_its_one_runner_until_the_last_closes(body_json) -> None:
    app = create_app(_settings())
    first, second = MockTransport(app), MockTransport(app)
    assert first.runner is second.runner
    with httpx.Client(transport=first, base_url="https://api.qiwi.com") as http:
        http.put("/partner/bill/v1/bills/s-1", json=body_json, headers=AUTH).raise_for_status()
    assert first.runner.running  # the second transport still uses it
    with httpx.Client(transport=second, base_url="https://api.qiwi.com") as http:
        assert http.get("/partner/bill/v1/bills/s-1", headers=AUTH).status_code == 200
    assert not second.runner.running
    second.close()  # closing twice is harmless
    third = MockTransport(app)
    assert third.runner is not first.runner  # a fresh start; the in-memory state lives in the app
    with httpx.Client(transport=third, base_url="https://api.qiwi.com") as http:
        assert http.get("/partner/bill/v1/bills/s-1", headers=AUTH).status_code == 200


def test_a_transport_used_again_after_close_takes_the_app_again_and_lets_go_again() -> None:
    transport = MockTransport(create_app(_settings()))
    for _ in range(2):
        with httpx.Client(transport=transport, base_url="https://api.qiwi.com") as http:
            assert http.get("/_mock/health").status_code == 200
        assert not transport.runner.running


def test_without_the_lifespan_nothing_is_delivered_until_someone_drains(body_json) -> None:
    settings = _settings(notify_url="http://merchant.test/notify")
    router = NotificationRouter(settings)
    app = create_app(settings, notify_transport=router)
    transport = MockTransport(app, lifespan=False)
    with httpx.Client(transport=transport, base_url="https://api.qiwi.com") as http:
        http.put("/partner/bill/v1/bills/l-1", json=body_json, headers=AUTH).raise_for_status()
        http.post("/_mock/bills/l-1/pay", headers=AUTH).raise_for_status()
        with pytest.raises(TimeoutError):
            router.inbox.wait(bill_id="l-1", timeout=0.3)
        assert transport.runner.call(app.state.ctx.notifier.drain()) == 1
        assert router.inbox.wait(bill_id="l-1").verified
