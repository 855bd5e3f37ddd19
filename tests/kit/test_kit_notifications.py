"""Notifications delivered in-process: to a `NotificationReceiver`, an ASGI app, a callable; the inbox."""

from __future__ import annotations

import httpx
import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from qiwi_bill import ACK_BODY, NotificationReceiver
from qiwi_bill_client.api.bills import create_bill
from qiwi_bill_mock.testing import QiwiMock


@pytest.fixture
def mock():
    # Retries one second apart (time_scale 0.001 of a 1000 s schedule): a failed first attempt is retried quickly.
    with QiwiMock(retry_schedule=(1000.0,) * 3, time_scale=0.001) as mock:
        yield mock


def test_unrouted_notifications_are_verified_acknowledged_and_kept_in_the_inbox(mock, body) -> None:
    create_bill.sync(bill_id="n-1", client=mock.client, body=body)
    mock.controls.pay("n-1")
    received = mock.inbox.wait(bill_id="n-1", status="PAID")
    assert received.verified
    assert received.error is None
    assert received.status_code == 200
    assert received.url == mock.notify_url
    assert received.notification is not None
    assert received.notification.bill.site_id == mock.site_id
    assert "x-api-signature-sha256" in received.headers
    assert mock.inbox.find(bill_id="n-1") == [received]


def test_a_notification_receiver_under_test_gets_the_signed_notification(mock, body) -> None:
    handled = []
    mock.route_notifications(NotificationReceiver(secret=mock.secret_key, handler=handled.append))
    create_bill.sync(bill_id="n-2", client=mock.client, body=body)
    mock.controls.pay("n-2", pay_source="card")
    assert mock.controls.wait_for_notification("n-2").attempts[0].status_code == 200
    assert [n.bill.bill_id for n in handled] == ["n-2"]


def test_a_receiver_with_the_wrong_key_answers_403_and_the_mock_retries(mock, body) -> None:
    mock.route_notifications(NotificationReceiver(secret="not-the-key", handler=lambda n: None))
    create_bill.sync(bill_id="n-3", client=mock.client, body=body)
    mock.controls.pay("n-3")
    delivery = mock.controls.wait_for_notification("n-3", state=None)
    assert delivery.attempts[0].status_code == 403
    assert mock.inbox.all[0].status_code == 403
    assert mock.inbox.all[0].verified  # the inbox verifies with the merchant's real key


def test_a_web_app_receives_the_post_through_an_asgi_transport(mock, body) -> None:
    bodies: list[bytes] = []

    async def notify(request: Request) -> Response:
        bodies.append(await request.body())
        return Response(ACK_BODY, media_type="application/json")

    site = Starlette(routes=[Route("/qiwi/notify", notify, methods=["POST"])])
    mock.route_notifications(httpx.ASGITransport(app=site))
    create_bill.sync(bill_id="n-4", client=mock.client, body=body)
    mock.controls.pay("n-4")
    mock.controls.wait_for_notification("n-4")
    assert b'"billId":"n-4"' in bodies[0].replace(b" ", b"")


def test_a_callable_that_fails_first_is_retried_until_it_answers_200(mock, body) -> None:
    answers = iter([500, None])
    mock.route_notifications(lambda request: next(answers))
    create_bill.sync(bill_id="n-5", client=mock.client, body=body)
    mock.controls.pay("n-5")
    delivery = mock.controls.wait_for_notification("n-5", timeout=10)
    assert [a.status_code for a in delivery.attempts] == [500, 200]
    assert [r.status_code for r in mock.inbox] == [500, 200]


def test_a_target_that_raises_is_a_failed_attempt_recorded_in_the_inbox(mock, body) -> None:
    def boom(request: httpx.Request) -> None:
        raise ConnectionError("merchant site down")

    mock.route_notifications(boom)
    create_bill.sync(bill_id="n-6", client=mock.client, body=body)
    mock.controls.pay("n-6")
    delivery = mock.controls.wait_for_notification("n-6", state=None)
    assert "merchant site down" in (delivery.attempts[0].error or "")
    assert mock.inbox.all[0].status_code == 0
    assert "merchant site down" in (mock.inbox.all[0].error or "")


async def test_an_async_handler_and_the_async_wait(mock, body) -> None:
    async def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, content=ACK_BODY)

    mock.route_notifications(handler)
    await create_bill.asyncio(bill_id="n-7", client=mock.client, body=body)
    await mock.async_controls.pay("n-7")
    received = await mock.inbox.wait_async(bill_id="n-7", status="PAID")
    assert received.status_code == 200
    with pytest.raises(TimeoutError, match="n-8"):
        await mock.inbox.wait_async(bill_id="n-8", timeout=0.05)


def test_the_inbox_wait_times_out_listing_what_arrived(mock) -> None:
    with pytest.raises(TimeoutError, match=r"received: \[\]"):
        mock.inbox.wait(bill_id="never", timeout=0.05)


def test_a_merchant_without_notify_url_sends_none_and_cannot_be_routed(body) -> None:
    with QiwiMock(notify_url=None) as mock:
        create_bill.sync(bill_id="n-9", client=mock.client, body=body)
        mock.controls.pay("n-9")
        assert mock.controls.notifications() == []
        with pytest.raises(ValueError, match="notify_url"):
            mock.route_notifications(lambda request: None)
