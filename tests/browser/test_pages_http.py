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
from urllib.parse import parse_qs, quote, urlsplit

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
    service: Store | None = None


CTX = Ctx()


@pytest.fixture(scope="module")
def base_url():
    with serve_app(Starlette(routes=page_routes(CTX))) as url:  # type: ignore[arg-type]
        yield url


@pytest.fixture
def store():
    store = Store(Settings(merchants=(MERCHANT, OTHER), public_url="http://testserver"), clock=lambda: START)
    CTX.service = store
    yield store
    CTX.service = None
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


def page_token(client: httpx.Client, bill: Bill) -> str:
    """The token the bill's form page carries (Pay and Decline must send it back)."""
    match = re.search(r'name="token" value="([0-9a-f]+)"', client.get(form_url(bill)).text)
    # "" on a mock without tokens (test_the_form_carries_the_token_in_both_forms pins that there is one), so each
    # test fails on such a mock for what it checks.
    return match[1] if match else ""


def assert_page_headers(response, *, framable_by: str | None = None) -> None:
    assert response.headers["referrer-policy"] == "no-referrer-when-downgrade"
    csp = response.headers["content-security-policy"]
    assert "default-src 'none'" in csp
    if framable_by is None:
        assert "frame-ancestors 'none'" in csp
        assert response.headers["x-frame-options"] == "DENY"
    else:
        assert csp.endswith(f"; frame-ancestors {framable_by}")
        assert "x-frame-options" not in response.headers


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
    token = page_token(client, bill)
    response = client.post(pay_link(bill, successUrl="javascript:alert(1)"), data={"paySource": "qw", "token": token})
    assert response.status_code == 400
    assert store.get_bill(MERCHANT.site_id, bill.bill_id).status == "WAITING"


def test_comment_with_markup_renders_as_text(client, store):
    bill = issue(store, comment='<script>alert("xss")</script><img src=x onerror=alert(1)>')
    text = client.get(form_url(bill)).text
    assert "<script>alert" not in text
    assert "<img src=x" not in text
    # Jinja2's autoescaping (markupsafe) writes " as &#34;.
    assert "&lt;script&gt;alert(&#34;xss&#34;)&lt;/script&gt;" in text


# --- paying and declining ---------------------------------------------------------------------------------------


def test_pay_goes_through_the_store_and_redirects_to_success_url(client, store):
    bill = issue(store)
    success = "https://shop.example/thanks?order=1"
    response = client.post(
        f"/form/pay?invoice_uid={bill.invoice_uid}&successUrl=" + "https%3A%2F%2Fshop.example%2Fthanks%3Forder%3D1",
        data={"paySource": "card", "token": page_token(client, bill)},
    )
    assert response.status_code == 303
    assert response.headers["location"] == success
    assert_page_headers(response)
    paid = store.get_bill(MERCHANT.site_id, bill.bill_id)
    assert paid.status == "PAID"
    assert paid.pay_source == "card"


def test_pay_without_success_url_shows_the_paid_page(client, store):
    bill = issue(store)
    response = client.post(pay_link(bill), data={"paySource": "qw", "token": page_token(client, bill)})
    assert response.status_code == 303
    page = client.get(response.headers["location"])
    assert page.status_code == 200
    assert "The bill is paid" in page.text
    assert 'id="pay"' not in page.text


def test_paying_twice_is_refused(client, store):
    bill = issue(store)
    token = page_token(client, bill)
    client.post(pay_link(bill), data={"paySource": "qw", "token": token})
    response = client.post(pay_link(bill), data={"paySource": "qw", "token": token})
    assert response.status_code == 409
    assert "cannot be paid" in response.text


def test_pay_source_must_be_offered(client, store):
    bill = issue(store, custom_fields={"paySourcesFilter": "card"})
    token = page_token(client, bill)
    for source in ("qw", "bitcoin"):
        response = client.post(pay_link(bill), data={"paySource": source, "token": token})
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
    token = page_token(client, bill)
    response = client.post(f"/form/decline?invoice_uid={bill.invoice_uid}", data={"token": token})
    assert response.status_code == 303
    assert store.get_bill(MERCHANT.site_id, bill.bill_id).status == "REJECTED"
    page = client.get(response.headers["location"])
    assert "Bill rejected" in page.text
    assert client.post(pay_link(bill), data={"paySource": "qw", "token": token}).status_code == 409


def test_expired_bill_shows_expired_and_cannot_be_paid(client, store):
    bill = issue(store)
    token = page_token(client, bill)  # the customer opened the form before it expired
    store.advance_clock(2 * 86400)
    page = client.get(form_url(bill))
    assert page.status_code == 200
    assert "Bill expired" in page.text
    assert 'id="pay"' not in page.text
    assert client.post(pay_link(bill), data={"paySource": "qw", "token": token}).status_code == 409
    assert client.post(f"/form/decline?invoice_uid={bill.invoice_uid}", data={"token": token}).status_code == 409
    assert store.get_bill(MERCHANT.site_id, bill.bill_id).status == "EXPIRED"


def test_the_form_expires_on_time_even_when_the_api_lags(client):
    # node-qiwi-sdk#6: the form said "expired" while GET still answered WAITING (the mock's --expiry-lag).
    lagging = Store(Settings(merchants=(MERCHANT,), expiry_lag=3600), clock=lambda: START)
    CTX.service = lagging
    try:
        bill = issue(lagging)
        token = page_token(client, bill)
        lagging.advance_clock(86400 + 60)
        assert lagging.get_bill(MERCHANT.site_id, bill.bill_id).status == "WAITING"
        assert "Bill expired" in client.get(form_url(bill)).text
        assert client.post(pay_link(bill), data={"paySource": "qw", "token": token}).status_code == 409
        assert lagging.get_bill(MERCHANT.site_id, bill.bill_id).status == "WAITING"
    finally:
        lagging.close()


def test_pay_url_lifetime_shortens_the_form(client, store):
    bill = issue(store)
    token = page_token(client, bill)
    assert "Bill expired" in client.get(form_url(bill, lifetime="2026-11-28T1159")).text
    shortened = client.post(pay_link(bill, lifetime="2026-11-28T1159"), data={"paySource": "qw", "token": token})
    assert shortened.status_code == 409
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
    # The same link (other form options are fine: they change the page, not the bill) opens the same bill.
    second = client.get("/create", params={**params, "amount": "10.00", "successUrl": "https://shop.example/ok"})
    assert first.status_code == second.status_code == 303
    assert (
        parse_qs(urlsplit(first.headers["location"]).query)["invoice_uid"]
        == (parse_qs(urlsplit(second.headers["location"]).query)["invoice_uid"])
    )
    # Issue 16 (isolation): before, a link with another amount opened the bill too; now it is refused.
    third = client.get("/create", params={**params, "amount": "99"})
    assert third.status_code == 409
    assert "location" not in third.headers
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


# --- issue 16, item 3: a public key reaches only bills its own link issued; Pay and Decline only from the page ---


def test_create_never_opens_a_bill_issued_with_the_secret_key(client, store):
    # Before: /create?publicKey=...&billId=<an API bill> redirected to that bill's form (amount, comment, Pay).
    bill = issue(store, bill_id="order-1001", comment="secret order details")
    for amount in ("1234.50", "1"):
        response = client.get(
            "/create", params={"publicKey": MERCHANT.public_key, "billId": "order-1001", "amount": amount}
        )
        assert response.status_code == 409
        assert_page_headers(response)
        assert "Bill already exists" in response.text
        assert "location" not in response.headers
        assert bill.invoice_uid not in response.text
        assert "secret order details" not in response.text
    # A link without amount asks for it, whether or not the billId exists, and shows nothing of the bill.
    asked = client.get("/create", params={"publicKey": MERCHANT.public_key, "billId": "order-1001"})
    assert asked.status_code == 200
    assert 'name="amount"' in asked.text
    assert bill.invoice_uid not in asked.text
    assert store.get_bill(MERCHANT.site_id, "order-1001").status == "WAITING"


def test_create_opens_a_form_bill_only_for_the_same_parameters(client, store):
    params = {"publicKey": MERCHANT.public_key, "billId": "link-1", "amount": "10", "comment": "Coffee"}
    first = client.get("/create", params=params)
    assert first.status_code == 303
    assert client.get("/create", params=params).headers["location"] == first.headers["location"]
    for changed in (
        {"comment": "Tea"},
        {"phone": "79000000000"},
        {"customFields[x]": "1"},
        {"lifetime": "2026-12-01T0000"},
    ):
        response = client.get("/create", params={**params, **changed})
        assert response.status_code == 409, changed
        assert "location" not in response.headers
    # The other merchant's public key never reaches this merchant's bill: it issues its own.
    other = client.get("/create", params={**params, "publicKey": OTHER.public_key})
    assert other.status_code == 303
    assert other.headers["location"] != first.headers["location"]


def test_pay_and_decline_need_the_page_token(client, store):
    # Before: one keyless POST with no token paid any bill whose invoice_uid was known.
    bill = issue(store)
    for data in ({}, {"token": ""}, {"token": "0" * 64}, {"token": page_token(client, issue(store, "order-2"))}):
        for url in (pay_link(bill), f"/form/decline?invoice_uid={bill.invoice_uid}"):
            response = client.post(url, data={"paySource": "qw", **data})
            assert response.status_code == 403, (url, data)
            assert "payment page" in response.text
            assert_page_headers(response)
    assert store.get_bill(MERCHANT.site_id, bill.bill_id).status == "WAITING"


@pytest.mark.parametrize(
    "headers",
    [
        {"Origin": "http://evil.example"},
        {"Origin": "null"},
        {"Sec-Fetch-Site": "cross-site"},
        {"Sec-Fetch-Site": "same-site"},  # another port of 127.0.0.1 is "same-site", not the mock's origin
        {"Sec-Fetch-Site": "same-origin", "Origin": "http://evil.example"},
    ],
)
def test_a_cross_origin_post_with_the_token_does_not_pay(client, store, headers):
    bill = issue(store)
    token = page_token(client, bill)  # even an attacker who read the page elsewhere
    for url in (pay_link(bill), f"/form/decline?invoice_uid={bill.invoice_uid}"):
        response = client.post(url, data={"paySource": "qw", "token": token}, headers=headers)
        assert response.status_code == 403
        assert "another site" in response.text
    assert store.get_bill(MERCHANT.site_id, bill.bill_id).status == "WAITING"


def test_a_same_origin_post_with_the_token_pays(client, store, base_url):
    bill = issue(store)
    headers = {"Origin": base_url, "Sec-Fetch-Site": "same-origin"}
    response = client.post(
        pay_link(bill), data={"paySource": "card", "token": page_token(client, bill)}, headers=headers
    )
    assert response.status_code == 303
    assert store.get_bill(MERCHANT.site_id, bill.bill_id).pay_source == "card"


# --- issue 16, item 8: no framing, except an embedded page by the merchant's origin ----------------------------


def test_form_pages_cannot_be_framed(client, store):
    # Before: a strict CSP without frame-ancestors (which does not fall back to default-src) and no X-Frame-Options.
    bill = issue(store)
    for url in (form_url(bill), "/form/?invoice_uid=nope", f"/create?publicKey={MERCHANT.public_key}"):
        assert_page_headers(client.get(url))
    # embedded=true with nothing that names the merchant's origin: not framable either.
    assert_page_headers(client.get(form_url(bill, embedded="true")))


def test_embedded_pages_are_framable_only_by_the_merchant_origin(client, store):
    bill = issue(store)
    shop = "http://127.0.0.1:9"
    page = client.get(form_url(bill, embedded="true", frameOrigin=shop))
    assert_page_headers(page, framable_by=shop)
    assert f'data-parent-origin="{shop}"' in page.text
    # The form's own buttons and redirects carry the origin on, so the paid page still loads in the popup.
    assert "frameOrigin=http%3A%2F%2F127.0.0.1%3A9" in page.text
    success = "https://shop.example/thanks?x=1"
    assert_page_headers(
        client.get(form_url(bill, embedded="true", successUrl=quote(success, safe=""))),
        framable_by="https://shop.example",
    )
    # The Referer of the page that opened the iframe, when it is another origin than the mock's.
    by_referer = client.get(form_url(bill, embedded="true"), headers={"Referer": f"{shop}/checkout?step=2"})
    assert_page_headers(by_referer, framable_by=shop)
    own = client.get(form_url(bill, embedded="true"), headers={"Referer": f"{client.base_url}form/"})
    assert_page_headers(own)
    # Error pages and the amount page inside the popup follow the same rule.
    assert_page_headers(client.get("/form/?invoice_uid=nope&embedded=true&frameOrigin=" + shop), framable_by=shop)
    amount = client.get("/create", params={"publicKey": MERCHANT.public_key, "embedded": "true", "frameOrigin": shop})
    assert_page_headers(amount, framable_by=shop)
    assert client.get(form_url(bill, embedded="true", frameOrigin="javascript:alert(1)")).status_code == 400


def test_a_paid_embedded_page_keeps_its_frame_origin(client, store):
    bill = issue(store)
    shop = "http://127.0.0.1:9"
    token = page_token(client, bill)
    response = client.post(pay_link(bill, embedded="true", frameOrigin=shop), data={"paySource": "qw", "token": token})
    assert response.status_code == 303
    paid = client.get(response.headers["location"])
    assert "The bill is paid" in paid.text
    assert 'data-popup-event="paid"' in paid.text
    assert_page_headers(paid, framable_by=shop)
