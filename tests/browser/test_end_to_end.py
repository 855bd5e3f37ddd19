"""End to end, as a merchant's integration test would do it, against the whole mock (``create_app``):

the merchant issues a bill with the generated client → the customer's browser (headless Chromium) opens ``payUrl``
→ picks a payment method → pays → lands on the merchant's ``successUrl`` → the merchant's server receives the
notification, and ``qiwi_bill`` verifies its signature. The form-create flow is run the same way.
"""

from __future__ import annotations

import json
import time
import uuid
from datetime import timedelta
from decimal import Decimal

import pytest
from merchant_site import run_merchant_site

from qiwi_bill import (
    SIGNATURE_HEADER,
    lifetime_by_days,
    parse_amount,
    parse_notification,
    patch_pay_url,
    payment_form_url,
    verify_signature,
)
from qiwi_bill_client import AuthenticatedClient
from qiwi_bill_client.api.bills import create_bill, get_bill
from qiwi_bill_client.models import AmountRequest, Bill, BillCustomer, CreateBillRequest, Customer, CustomFields
from qiwi_bill_mock.app import create_app
from qiwi_bill_mock.settings import Merchant, Settings
from qiwi_bill_mock.testing import bind_free_port, serve_app

pytestmark = pytest.mark.browser

SECRET_KEY = "eyJ2ZXJzaW9uIjoiUDJQIiwiZGF0YSI6eyJwYXlpbl9tZXJjaGFudF9zaXRlX3VpZCI6ImUyZSJ9fQ-test"
PUBLIC_KEY = "48e7qUxn9T7RyYE1MVZswX1FRSbE6iyCj2gCRwwF3Dnh5XrasNTx3BGPiMsyXQFNKQhvukniQG8RTVhYm3iP-e2e"


@pytest.fixture(scope="module")
def site():
    with run_merchant_site() as site:
        yield site


@pytest.fixture(scope="module")
def mock(site):
    """The whole mock (API, notifier, pages) on 127.0.0.1; ``payUrl`` points at it."""
    sock = bind_free_port()
    merchant = Merchant(site_id="e2e-00", secret_key=SECRET_KEY, public_key=PUBLIC_KEY, notify_url=f"{site.url}/notify")
    app = create_app(Settings(merchants=(merchant,), public_url=f"http://127.0.0.1:{sock.getsockname()[1]}"))
    with serve_app(app, sock=sock) as url:
        yield url


@pytest.fixture
def qiwi(mock, site):
    site.clear()
    with AuthenticatedClient(base_url=mock, token=SECRET_KEY) as client:
        yield client


def delivery_log(qiwi, bill_id: str, until: str | None = None) -> list[tuple[str, str]]:
    """The mock's delivery log for a bill as (status, state) pairs, polled until every entry is ``until``."""
    deadline = time.monotonic() + 10
    while True:
        response = qiwi.get_httpx_client().get("/_mock/notifications", params={"billId": bill_id})
        assert response.status_code == 200
        log = [(entry["status"], entry["state"]) for entry in response.json()["deliveries"]]
        if until is None or (log and all(state == until for _, state in log)) or time.monotonic() > deadline:
            return log
        time.sleep(0.05)


def test_bill_paid_in_the_browser_notifies_the_merchant(page, screenshot, qiwi, mock, site):
    bill_id = f"order-{uuid.uuid4().hex[:12]}"
    body = CreateBillRequest(
        amount=AmountRequest(currency="RUB", value="499.90"),
        expiration_date_time=lifetime_by_days(1),
        comment="Заказ №42: кофе",
        customer=Customer(email="buyer@example.com"),
        custom_fields=CustomFields(theme_code="Yvan-YKaSh", pay_sources_filter="qw,card"),
    )
    response = create_bill.sync_detailed(bill_id, client=qiwi, body=body)
    assert response.status_code == 200, response.content
    bill = response.parsed
    assert isinstance(bill, Bill)
    assert bill.pay_url.startswith(f"{mock}/form/?invoice_uid=")

    success_url = f"{site.url}/success?order={bill_id}"
    page.goto(patch_pay_url(bill.pay_url, success_url=success_url))
    assert page.locator("[data-field=amount]").inner_text() == "499.90\u00a0₽"
    assert page.locator("[data-field=comment]").inner_text() == "Заказ №42: кофе"
    assert page.locator("input[name=paySource]").evaluate_all("els => els.map(e => e.value)") == ["qw", "card"]
    page.get_by_label("Bank card").check()
    screenshot("e2e-form")
    page.locator("#pay").click()
    page.wait_for_url(success_url)
    screenshot("e2e-success")

    (notification,) = site.wait_notifications(1)
    assert notification.path == "/notify"
    assert verify_signature(notification.body, notification.headers, secret=SECRET_KEY)
    assert not verify_signature(notification.body, notification.headers, secret="another-secret")
    parsed = parse_notification(notification.body, notification.headers[SIGNATURE_HEADER], secret=SECRET_KEY)
    assert parsed.bill.bill_id == bill_id
    assert parsed.bill.status.value == "PAID"
    assert parse_amount(parsed.bill.amount.value) == Decimal("499.90")
    assert json.loads(notification.body)["bill"]["siteId"] == "e2e-00"

    stored = get_bill.sync(bill_id, client=qiwi)
    assert isinstance(stored, Bill)
    assert stored.status.value == "PAID"
    assert delivery_log(qiwi, bill_id, until="delivered") == [("PAID", "delivered")]


def test_form_create_link_paid_in_the_browser_notifies_the_merchant(page, screenshot, qiwi, mock, site):
    bill_id = f"form-{uuid.uuid4().hex[:12]}"
    link = payment_form_url(
        PUBLIC_KEY,
        amount=Decimal("100"),
        bill_id=bill_id,
        phone="79123456789",
        comment="Created by opening the link",
        theme_code="codeStyle",
        lifetime=lifetime_by_days(2) - timedelta(minutes=5),
        success_url=f"{site.url}/success?order={bill_id}",
        fingerprint=True,
        base_url=f"{mock}/create",
    )
    page.goto(link)
    assert page.locator("[data-field=amount]").inner_text() == "100.00\u00a0₽"
    page.get_by_label("QIWI Wallet").check()
    page.locator("#pay").click()
    page.wait_for_url(f"{site.url}/success?order={bill_id}")

    (notification,) = site.wait_notifications(1)
    parsed = parse_notification(notification.body, notification.headers, secret=SECRET_KEY)
    assert parsed.bill.bill_id == bill_id
    assert parsed.bill.status.value == "PAID"

    stored = get_bill.sync(bill_id, client=qiwi)
    assert isinstance(stored, Bill)
    assert stored.status.value == "PAID"
    assert isinstance(stored.customer, BillCustomer)  # responses use the strict (null-free) model
    assert stored.customer.phone == "79123456789"


def test_declined_bill_sends_no_payment_notification(page, qiwi, mock, site):
    bill_id = f"order-{uuid.uuid4().hex[:12]}"
    body = CreateBillRequest(
        amount=AmountRequest(currency="RUB", value="10.00"), expiration_date_time=lifetime_by_days(1)
    )
    bill = create_bill.sync(bill_id, client=qiwi, body=body)
    assert isinstance(bill, Bill)
    page.goto(bill.pay_url)
    page.locator("#decline").click()
    assert page.locator("h1").inner_text() == "Bill rejected"
    stored = get_bill.sync(bill_id, client=qiwi)
    assert isinstance(stored, Bill)
    assert stored.status.value == "REJECTED"
    # Only PAID notifies by default (the documented event). The outbox row would be written in the same
    # transaction as the status change, so an empty delivery log is conclusive, not a race.
    assert delivery_log(qiwi, bill_id) == []
    assert site.notifications == []
