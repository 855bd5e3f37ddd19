"""The payment pages over HTTP, without a browser: status codes, redirects, escaping, headers, the store path.

The pages are mounted on a bare Starlette app (served by uvicorn on 127.0.0.1) around a real
:class:`~qiwi_bill_mock.store.Store` with an injected clock, so these tests do not depend on the rest of the mock's
HTTP layer. One server serves the whole module; each test swaps in a fresh store.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
from starlette.applications import Starlette

from qiwi_bill import MOSCOW_TZ
from qiwi_bill_mock.pages import page_routes
from qiwi_bill_mock.settings import Merchant, Settings
from qiwi_bill_mock.store import Bill, BillDraft, Store
from qiwi_bill_mock.testing import serve_app

START = datetime(2026, 11, 28, 12, 0, tzinfo=MOSCOW_TZ)
MERCHANT = Merchant(site_id="270305", secret_key="sk-never-shown", public_key="pk-test-public", notify_url=None)
OTHER = Merchant(site_id="other-00", secret_key="sk-other", public_key="pk-other", notify_url=None)


@dataclass
class Ctx:
    store: Store | None = None


CTX = Ctx()


@pytest.fixture(scope="module")
def base_url():
    with serve_app(Starlette(routes=page_routes(CTX))) as url:  # type: ignore[arg-type]
        yield url


@pytest.fixture
def store():
    store = Store(Settings(merchants=(MERCHANT, OTHER), public_url="http://testserver"), clock=lambda: START)
    CTX.store = store
    yield store
    CTX.store = None
    store.close()


@pytest.fixture
def client(base_url, store):
    with httpx.Client(base_url=base_url, follow_redirects=False) as client:
        yield client


def issue(store: Store, bill_id: str = "order-1", **draft) -> Bill:
    expiration = draft.pop("expiration", START + timedelta(days=1))
    values = {
        "amount": Decimal("1234.50"),
        "currency": "RUB",
        "expiration": expiration,
        "expiration_text": expiration.isoformat(),
        **draft,
    }
    bill, created = store.create_bill(MERCHANT.site_id, bill_id, BillDraft(**values))
    assert created
    return bill


def form_url(bill: Bill, **options: str) -> str:
    query = "".join(f"&{name}={value}" for name, value in options.items())
    return f"/form/?invoice_uid={bill.invoice_uid}{query}"


def pay_link(bill: Bill, **options: str) -> str:
    return form_url(bill, **options).replace("/form/?", "/form/pay?")


def assert_page_headers(response) -> None:
    assert response.headers["referrer-policy"] == "no-referrer-when-downgrade"
    assert "default-src 'none'" in response.headers["content-security-policy"]


def assert_no_external_assets(text: str) -> None:
    for url in re.findall(r'(?:src|href|action)="([^"]*)"', text):
        assert not urlsplit(url).netloc, f"external asset {url!r}"


# --- the payUrl page --------------------------------------------------------------------------------------------


def test_pay_url_page_shows_the_bill(client, store):
    bill = issue(store, comment="Two coffees", custom_fields={"themeCode": "Yvan-YKaSh"})
    response = client.get(form_url(bill))
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/html")
    assert_page_headers(response)
    text = response.text
    assert "1\u202f234.50\u00a0₽" in text
    assert "Two coffees" in text
    assert "Waiting for payment" in text
    assert "29.11.2026 12:00 MSK" in text
    assert "Yvan-YKaSh" in text
    assert 'id="pay"' in text
    assert 'id="decline"' in text
    assert "<script" not in text  # usable without JavaScript: no script outside the popup
    assert_no_external_assets(text)
    assert MERCHANT.secret_key not in text


def test_both_spellings_of_the_form_url(client, store):
    bill = issue(store)
    assert client.get(f"/form?invoiceUid={bill.invoice_uid}").status_code == 200
    assert client.get(f"/form/?invoice_uid={bill.invoice_uid}").status_code == 200


def test_pay_url_options(client, store):
    bill = issue(store, custom_fields={"paySourcesFilter": "qw,card,mobile"})
    text = client.get(form_url(bill, allowedPaySources="card,mobile,sovest", paySource="mobile")).text
    assert "Bank card" in text
    assert "Mobile phone balance" in text
    assert "QIWI Wallet" not in text
    assert "Sovest card" not in text
    assert 'value="mobile" checked' in text


@pytest.mark.parametrize(
    ("query", "status"),
    [
        ("", 400),
        ("?invoice_uid=", 400),
        ("?invoice_uid=00000000-0000-0000-0000-000000000000", 404),
        ("?invoice_uid=a&invoice_uid=b", 400),
        ("?invoice_uid=<script>", 404),
    ],
)
def test_bad_form_links_get_an_error_page(client, query, status):
    response = client.get(f"/form/{query}")
    assert response.status_code == status
    assert_page_headers(response)
    assert "Traceback" not in response.text
    assert "<script>" not in response.text


def test_javascript_success_url_is_refused(client, store):
    bill = issue(store)
    for url in ("javascript:alert(1)", "JAVASCRIPT%3Aalert(1)", "data:text/html,x"):
        response = client.get(form_url(bill, successUrl=url))
        assert response.status_code == 400
        assert "successUrl" in response.text
    response = client.post(pay_link(bill, successUrl="javascript:alert(1)"), data={"paySource": "qw"})
    assert response.status_code == 400
    assert store.get_bill(MERCHANT.site_id, bill.bill_id).status == "WAITING"


def test_comment_with_markup_renders_as_text(client, store):
    bill = issue(store, comment='<script>alert("xss")</script><img src=x onerror=alert(1)>')
    text = client.get(form_url(bill)).text
    assert "<script>alert" not in text
    assert "<img src=x" not in text
    assert "&lt;script&gt;alert(&quot;xss&quot;)&lt;/script&gt;" in text


# --- paying and declining ---------------------------------------------------------------------------------------


def test_pay_goes_through_the_store_and_redirects_to_success_url(client, store):
    bill = issue(store)
    success = "https://shop.example/thanks?order=1"
    response = client.post(
        f"/form/pay?invoice_uid={bill.invoice_uid}&successUrl=" + "https%3A%2F%2Fshop.example%2Fthanks%3Forder%3D1",
        data={"paySource": "card"},
    )
    assert response.status_code == 303
    assert response.headers["location"] == success
    assert_page_headers(response)
    paid = store.get_bill(MERCHANT.site_id, bill.bill_id)
    assert paid.status == "PAID"
    assert paid.pay_source == "card"


def test_pay_without_success_url_shows_the_paid_page(client, store):
    bill = issue(store)
    response = client.post(pay_link(bill), data={"paySource": "qw"})
    assert response.status_code == 303
    page = client.get(response.headers["location"])
    assert page.status_code == 200
    assert "The bill is paid" in page.text
    assert 'id="pay"' not in page.text


def test_paying_twice_is_refused(client, store):
    bill = issue(store)
    client.post(pay_link(bill), data={"paySource": "qw"})
    response = client.post(pay_link(bill), data={"paySource": "qw"})
    assert response.status_code == 409
    assert "cannot be paid" in response.text


def test_pay_source_must_be_offered(client, store):
    bill = issue(store, custom_fields={"paySourcesFilter": "card"})
    for source in ("qw", "bitcoin"):
        response = client.post(pay_link(bill), data={"paySource": source})
        assert response.status_code == 400
    assert store.get_bill(MERCHANT.site_id, bill.bill_id).status == "WAITING"


def test_a_get_of_a_button_url_shows_the_form_and_changes_nothing(client, store):
    bill = issue(store)
    for action in ("pay", "decline"):
        response = client.get(f"/form/{action}?invoice_uid={bill.invoice_uid}&paySource=card")
        assert response.status_code == 303
        assert response.headers["location"] == f"/form/?invoice_uid={bill.invoice_uid}&paySource=card"
    assert store.get_bill(MERCHANT.site_id, bill.bill_id).status == "WAITING"


def test_decline_rejects_the_bill(client, store):
    bill = issue(store)
    response = client.post(f"/form/decline?invoice_uid={bill.invoice_uid}")
    assert response.status_code == 303
    assert store.get_bill(MERCHANT.site_id, bill.bill_id).status == "REJECTED"
    page = client.get(response.headers["location"])
    assert "Bill rejected" in page.text
    assert client.post(pay_link(bill), data={"paySource": "qw"}).status_code == 409


def test_expired_bill_shows_expired_and_cannot_be_paid(client, store):
    bill = issue(store)
    store.advance_clock(2 * 86400)
    page = client.get(form_url(bill))
    assert page.status_code == 200
    assert "Bill expired" in page.text
    assert 'id="pay"' not in page.text
    assert client.post(pay_link(bill), data={"paySource": "qw"}).status_code == 409
    assert client.post(f"/form/decline?invoice_uid={bill.invoice_uid}").status_code == 409
    assert store.get_bill(MERCHANT.site_id, bill.bill_id).status == "EXPIRED"


def test_the_form_expires_on_time_even_when_the_api_lags(client):
    # node-qiwi-sdk#6: the form said "expired" while GET still answered WAITING (the mock's --expiry-lag).
    lagging = Store(Settings(merchants=(MERCHANT,), expiry_lag=3600), clock=lambda: START)
    CTX.store = lagging
    try:
        bill = issue(lagging)
        lagging.advance_clock(86400 + 60)
        assert lagging.get_bill(MERCHANT.site_id, bill.bill_id).status == "WAITING"
        assert "Bill expired" in client.get(form_url(bill)).text
        assert client.post(pay_link(bill), data={"paySource": "qw"}).status_code == 409
        assert lagging.get_bill(MERCHANT.site_id, bill.bill_id).status == "WAITING"
    finally:
        lagging.close()


def test_pay_url_lifetime_shortens_the_form(client, store):
    bill = issue(store)
    assert "Bill expired" in client.get(form_url(bill, lifetime="2026-11-28T1159")).text
    assert client.post(pay_link(bill, lifetime="2026-11-28T1159"), data={"paySource": "qw"}).status_code == 409
    assert 'id="pay"' in client.get(form_url(bill, lifetime="2026-11-28T1300")).text
    assert client.get(form_url(bill, lifetime="2026-11-28T12:59")).status_code == 400


# --- /create ----------------------------------------------------------------------------------------------------


def test_create_issues_the_bill_and_redirects_to_the_form(client, store):
    response = client.get(
        "/create",
        params={
            "publicKey": MERCHANT.public_key,
            "billId": "form-1",
            "amount": "42.24",
            "phone": "79123456789",
            "email": "m@ya.ru",
            "account": "acc-7",
            "comment": "Via the form",
            "customFields[themeCode]": "codeStyle",
            "lifetime": "2026-12-01T0509",
            "successUrl": "http://test.ru/",
        },
    )
    assert response.status_code == 303
    assert_page_headers(response)
    bill = store.get_bill(MERCHANT.site_id, "form-1")
    assert bill is not None
    assert bill.amount == Decimal("42.24")
    assert bill.currency == "RUB"
    assert dict(bill.customer) == {"phone": "79123456789", "email": "m@ya.ru", "account": "acc-7"}
    assert bill.comment == "Via the form"
    assert bill.custom_fields["themeCode"] == "codeStyle"
    assert bill.expires_us == int(datetime(2026, 12, 1, 5, 9, tzinfo=MOSCOW_TZ).timestamp() * 1_000_000)
    location = urlsplit(response.headers["location"])
    assert location.path == "/form/"
    assert parse_qs(location.query) == {"invoice_uid": [bill.invoice_uid], "successUrl": ["http://test.ru/"]}
    page = client.get(response.headers["location"])
    assert "42.24" in page.text
    assert "codeStyle" in page.text


def test_create_again_opens_the_existing_bill(client, store):
    params = {"publicKey": MERCHANT.public_key, "billId": "form-2", "amount": "10"}
    first = client.get("/create", params=params)
    second = client.get("/create", params={**params, "amount": "99"})
    assert first.headers["location"] == second.headers["location"]
    assert store.get_bill(MERCHANT.site_id, "form-2").amount == Decimal("10.00")


def test_create_without_bill_id_generates_one(client, store):
    response = client.get("/create", params={"publicKey": MERCHANT.public_key, "amount": "5"})
    assert response.status_code == 303
    uid = parse_qs(urlsplit(response.headers["location"]).query)["invoice_uid"][0]
    assert store.get_bill_by_invoice_uid(uid).amount == Decimal("5.00")


def test_create_without_amount_asks_for_it(client, store):
    response = client.get("/create", params={"publicKey": MERCHANT.public_key, "billId": "ask-1", "comment": "<b>"})
    assert response.status_code == 200
    assert 'name="amount"' in response.text
    assert 'name="billId" value="ask-1"' in response.text
    assert 'value="&lt;b&gt;"' in response.text
    assert store.get_bill(MERCHANT.site_id, "ask-1") is None


def test_create_default_lifetime_is_45_days(client, store):
    client.get("/create", params={"publicKey": MERCHANT.public_key, "billId": "life-1", "amount": "1"})
    bill = store.get_bill(MERCHANT.site_id, "life-1")
    assert bill.expires_us == int((START + timedelta(days=45)).timestamp() * 1_000_000)


@pytest.mark.parametrize(
    ("params", "status", "needle"),
    [
        ({}, 400, "publicKey is required"),
        ({"publicKey": "pk-unknown", "amount": "1"}, 403, "publicKey"),
        ({"publicKey": MERCHANT.public_key, "amount": "abc"}, 400, "amount"),
        ({"publicKey": MERCHANT.public_key, "amount": "1", "lifetime": "2020-01-01T0000"}, 400, "lifetime"),
        ({"publicKey": MERCHANT.public_key, "amount": "1", "lifetime": "2026-12-01T05:09"}, 400, "without a colon"),
        ({"publicKey": MERCHANT.public_key, "amount": "1", "comment": "c" * 256}, 400, "comment"),
        ({"publicKey": MERCHANT.public_key, "amount": "1", "successUrl": "javascript:alert(1)"}, 400, "successUrl"),
        ({"publicKey": MERCHANT.public_key, "amount": "1", "customFields": "[object Object]"}, 400, "customFields"),
        ({"publicKey": MERCHANT.public_key, "amount": "1", "billId": "<script>"}, 400, "billId"),
    ],
)
def test_create_invalid_parameters_get_a_clear_4xx(client, params, status, needle):
    response = client.get("/create", params=params)
    assert response.status_code == status
    assert needle in response.text
    assert "Traceback" not in response.text
    assert "<script>" not in response.text
    assert_page_headers(response)


def test_create_with_a_bill_id_of_another_merchant_creates_its_own(client, store):
    client.get("/create", params={"publicKey": OTHER.public_key, "billId": "shared", "amount": "1"})
    client.get("/create", params={"publicKey": MERCHANT.public_key, "billId": "shared", "amount": "2"})
    assert store.get_bill(OTHER.site_id, "shared").amount == Decimal("1.00")
    assert store.get_bill(MERCHANT.site_id, "shared").amount == Decimal("2.00")


# --- static files -----------------------------------------------------------------------------------------------


def test_popup_script_and_static_files(client):
    script = client.get("/popup/v1.js")
    assert script.status_code == 200
    assert script.headers["content-type"].startswith("text/javascript")
    assert "QiwiCheckout" in script.text
    assert "http" not in re.sub(r"//.*|/\*[\s\S]*?\*/", "", script.text).replace("https?", "")
    assert client.get("/static/qiwi-form.css").headers["content-type"].startswith("text/css")
    assert client.get("/static/qiwi-form.js").status_code == 200
    for name in ("../pages.py", "popup-v1.js.bak", "nope.css"):
        assert client.get(f"/static/{name}").status_code == 404
