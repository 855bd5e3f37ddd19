"""`MockControls` / `AsyncMockControls`: every `/_mock/` control, typed, in-process and over HTTP."""

from __future__ import annotations

import datetime as dt

import httpx
import pytest

from qiwi_bill_client.api.bills import create_bill, reject_bill
from qiwi_bill_client.models import Bill, BillStatusValue
from qiwi_bill_mock import Merchant, Settings, create_app
from qiwi_bill_mock.testing import MockControlError, MockControls, QiwiMock, RequestJournal, serve_app


@pytest.fixture
def mock():
    with QiwiMock() as mock:
        yield mock


def test_pay_with_a_pay_source_returns_the_generated_bill_model(mock, body) -> None:
    create_bill.sync(bill_id="c-1", client=mock.client, body=body)
    paid = mock.controls.pay("c-1", pay_source="card")
    assert isinstance(paid, Bill)
    assert paid.status.value is BillStatusValue.PAID
    assert paid.bill_id == "c-1"


def test_a_refused_control_raises_with_qiwis_error_code_and_never_the_key(mock, body) -> None:
    with pytest.raises(MockControlError) as info:
        mock.controls.pay("missing")
    assert info.value.status_code == 404
    assert info.value.error_code == "api.invoice.not.found"
    assert info.value.trace_id
    create_bill.sync(bill_id="c-2", client=mock.client, body=body)
    with pytest.raises(MockControlError) as bad:
        mock.controls.pay("c-2", pay_source="cash")
    assert bad.value.error_code == "validation.error"
    assert bad.value.cause is not None
    assert "paySource" in bad.value.cause
    assert mock.secret_key not in str(bad.value)
    assert mock.secret_key not in repr(mock.controls)


def test_expire_and_ids_that_need_quoting(mock, body) -> None:
    create_bill.sync(bill_id="a/b?c", client=mock.client, body=body)
    assert mock.controls.expire("a/b?c").status.value is BillStatusValue.EXPIRED


def test_advance_clock_returns_the_new_mock_time_and_expires_overdue_bills(mock, body) -> None:
    before = mock.controls.health()["dateTime"]
    create_bill.sync(bill_id="c-3", client=mock.client, body=body)
    now = mock.controls.advance_clock(2 * 86400)
    assert now.tzinfo is not None
    assert now - dt.datetime.fromisoformat(before) >= dt.timedelta(days=2)
    [bill] = mock.controls.bills()
    assert bill.status.value is BillStatusValue.EXPIRED


def test_notifications_and_waiting_for_one(mock, body) -> None:
    create_bill.sync(bill_id="c-4", client=mock.client, body=body)
    assert mock.controls.notifications() == []
    mock.controls.pay("c-4")
    delivery = mock.controls.wait_for_notification("c-4", timeout=5)
    assert (delivery.bill_id, delivery.status, delivery.state) == ("c-4", "PAID", "delivered")
    assert delivery.url == mock.notify_url
    assert delivery.attempts[0].status_code == 200
    assert [d.bill_id for d in mock.controls.notifications("c-4")] == ["c-4"]
    assert mock.controls.notifications("other") == []


def test_waiting_for_a_notification_that_never_comes_times_out_saying_what_was_seen(mock, body) -> None:
    create_bill.sync(bill_id="c-5", client=mock.client, body=body)
    reject_bill.sync(bill_id="c-5", client=mock.client)  # REJECTED does not notify by default
    with pytest.raises(TimeoutError, match="c-5"):
        mock.controls.wait_for_notification("c-5", timeout=0.2)


def test_bills_lists_this_merchants_bills_in_creation_order_and_reset_forgets_them(mock, body) -> None:
    for bill_id in ("b-2", "b-1", "b-3"):
        create_bill.sync(bill_id=bill_id, client=mock.client, body=body)
    create_bill.sync(bill_id="b-1", client=mock.client, body=body)  # a repeated create is one bill
    mock.controls.pay("b-1")
    bills = mock.controls.bills()
    assert [b.bill_id for b in bills] == ["b-2", "b-1", "b-3"]
    assert bills[1].status.value is BillStatusValue.PAID
    mock.controls.reset()
    assert mock.controls.bills() == []
    assert mock.controls.requests() == []  # the reset forgot the journal too


def test_requests_filters(mock, body) -> None:
    create_bill.sync(bill_id="r-1", client=mock.client, body=body)
    mock.http().get("/partner/bill/v1/bills/r-1")  # no key
    with mock.http(headers={"Authorization": f"Bearer {mock.secret_key}"}) as http:
        http.get("/partner/bill/v1/bills/nope")
    assert [e.operation for e in mock.controls.requests()] == ["createBill", "getBill"]
    assert [e.bill_id for e in mock.controls.requests(error_code="api.invoice.not.found")] == ["nope"]
    assert [e.status_code for e in mock.controls.requests(include_unauthenticated=True, refused=True)] == [401, 404]
    assert [e.bill_id for e in mock.controls.requests(limit=1)] == ["nope"]
    assert mock.controls.requests("createBill", outcome="accepted")[0].body["amount"]["value"] == "10.00"
    mock.controls.clear_requests()
    assert mock.controls.requests() == []


async def test_the_async_client_has_the_same_controls(mock, body) -> None:
    await create_bill.asyncio(bill_id="x-1", client=mock.client, body=body)
    controls = mock.async_controls
    assert (await controls.pay("x-1", pay_source="qw")).status.value is BillStatusValue.PAID
    assert (await controls.wait_for_notification("x-1")).state == "delivered"
    assert [b.bill_id for b in await controls.bills()] == ["x-1"]
    assert [e.operation for e in await controls.requests(outcome="accepted")] == ["createBill"]
    assert (await controls.advance_clock(1.5)).tzinfo is not None
    assert (await controls.health())["status"] == "ok"
    await controls.clear_requests()
    await controls.reset()
    assert await controls.notifications() == []


def test_the_same_client_works_over_http_against_a_running_mock(body_json) -> None:
    merchant = Merchant(site_id="kit-http", secret_key="sk-http", public_key="pk-http")
    settings = Settings(merchants=[merchant])
    with (
        serve_app(RequestJournal(create_app(settings))) as url,
        MockControls(base_url=url, secret_key="sk-http") as controls,
    ):
        httpx.put(f"{url}/partner/bill/v1/bills/h-1", json=body_json, headers={"Authorization": "Bearer sk-http"})
        assert controls.pay("h-1").status.value is BillStatusValue.PAID
        assert [e.operation for e in controls.requests()] == ["createBill"]
        assert [b.bill_id for b in controls.bills()] == ["h-1"]


def test_against_a_mock_without_the_journal_the_error_says_so(body_json) -> None:
    merchant = Merchant(site_id="kit-nj", secret_key="sk-nj", public_key="pk-nj")
    with (
        serve_app(create_app(Settings(merchants=[merchant]))) as url,
        MockControls(base_url=url, secret_key="sk-nj") as controls,
    ):
        with pytest.raises(MockControlError, match=r"http\.url\.not\.found") as info:
            controls.requests()
        assert "RequestJournal" in str(info.value.__cause__)
