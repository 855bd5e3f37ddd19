"""The payment pages in a real headless Chromium: pay, decline, expiry, the form-create flow, the popup, XSS.

These run the pages on a bare Starlette app around a real store (no notifier), so they test what the browser
does; the end-to-end test with the generated client and a signed notification is in ``test_end_to_end.py``.
Screenshots go to ``artifacts/screenshots/``.
"""

from __future__ import annotations

import html
import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from urllib.parse import quote

import httpx
import pytest
from merchant_site import run_merchant_site
from starlette.applications import Starlette

from qiwi_bill import MOSCOW_TZ, format_lifetime
from qiwi_bill_mock.pages import page_routes
from qiwi_bill_mock.settings import Merchant, Settings
from qiwi_bill_mock.store import Bill, BillDraft, Store
from qiwi_bill_mock.testing import serve_app

pytestmark = pytest.mark.browser

MERCHANT = Merchant(site_id="270305", secret_key="sk-browser-secret", public_key="pk-browser", notify_url=None)


@dataclass
class Ctx:
    service: Store | None = None


CTX = Ctx()


@pytest.fixture(scope="module")
def mock_url():
    with serve_app(Starlette(routes=page_routes(CTX))) as url:  # type: ignore[arg-type]
        yield url


@pytest.fixture(scope="module")
def site():
    with run_merchant_site() as site:
        yield site


@pytest.fixture
def store(mock_url, site):
    store = Store(Settings(merchants=(MERCHANT,), public_url=mock_url))
    CTX.service = store
    site.clear()
    yield store
    CTX.service = None
    store.close()


@pytest.fixture
def dialogs(page):
    """Every alert/confirm the page opens: an XSS payload that ran would show up here."""
    seen: list[str] = []

    def record(dialog) -> None:
        seen.append(dialog.message)
        dialog.dismiss()

    page.on("dialog", record)
    return seen


def issue(store: Store, bill_id: str = "order-1", **draft) -> Bill:
    expiration = datetime.now(UTC) + timedelta(days=1)
    values = {
        "amount": Decimal("1234.50"),
        "currency": "RUB",
        "expiration": expiration,
        "expiration_text": expiration.isoformat(),
        "comment": "Two coffees and a croissant",
        **draft,
    }
    bill, _ = store.create_bill(MERCHANT.site_id, bill_id, BillDraft(**values))
    return bill


def pay_url(mock_url: str, bill: Bill) -> str:
    return f"{mock_url}/form/?invoice_uid={bill.invoice_uid}"


def test_pay_with_a_card_lands_on_success_url(page, screenshot, store, mock_url, site):
    bill = issue(store, custom_fields={"themeCode": "Yvan-YKaSh"})
    success = f"{site.url}/success?order=1"
    page.goto(f"{pay_url(mock_url, bill)}&successUrl={quote(success, safe='')}")
    assert page.title().startswith("Payment")
    assert page.locator("[data-field=amount]").inner_text() == "1\u202f234.50\u00a0₽"
    assert page.locator("[data-field=comment]").inner_text() == "Two coffees and a croissant"
    assert page.locator("[data-field=status]").inner_text() == "Waiting for payment"
    assert "Yvan-YKaSh" in page.locator("[data-field=theme]").inner_text()
    assert page.locator("input[name=paySource]").count() == 4
    assert page.locator("input[value=qw]").is_checked()  # the "recommended" method
    screenshot("form")

    page.get_by_label("Bank card").check()
    page.locator("#pay").click()
    page.wait_for_url(success)
    assert page.locator("#thanks").inner_text() == "Thank you for your order"

    paid = store.get_bill(MERCHANT.site_id, bill.bill_id)
    assert paid.status == "PAID"
    assert paid.pay_source == "card"
    # Referrer-Policy no-referrer-when-downgrade: the merchant's page sees where the customer came from.
    visit = next(v for v in site.visits if v.path.startswith("/success"))
    assert visit.headers.get("Referer", "").startswith(mock_url)


def test_usable_without_javascript(browser, store, mock_url, site):
    bill = issue(store)
    context = browser.new_context(java_script_enabled=False)
    try:
        page = context.new_page()
        page.goto(f"{pay_url(mock_url, bill)}&successUrl={quote(site.url + '/success?nojs=1', safe='')}")
        page.get_by_label("Mobile phone balance").check()
        page.locator("#pay").click()
        page.wait_for_url(f"{site.url}/success?nojs=1")
    finally:
        context.close()
    assert store.get_bill(MERCHANT.site_id, bill.bill_id).pay_source == "mobile"


def test_pay_url_options_in_the_browser(page, screenshot, store, mock_url):
    bill = issue(store, custom_fields={"paySourcesFilter": "qw,card,mobile"})
    page.goto(f"{pay_url(mock_url, bill)}&allowedPaySources=card,mobile,sovest&paySource=mobile")
    values = page.locator("input[name=paySource]").evaluate_all("els => els.map(e => e.value)")
    assert values == ["card", "mobile"]
    assert page.locator("input[value=mobile]").is_checked()
    screenshot("form-options")
    page.locator("#pay").click()
    assert page.locator("h1").inner_text() == "Paid"
    assert store.get_bill(MERCHANT.site_id, bill.bill_id).pay_source == "mobile"
    screenshot("paid")
    page.reload()  # the result page is a GET: reloading never pays twice
    assert page.locator("h1").inner_text() == "Paid"


def test_decline(page, screenshot, store, mock_url):
    bill = issue(store)
    page.goto(pay_url(mock_url, bill))
    page.locator("#decline").click()
    assert page.locator("h1").inner_text() == "Bill rejected"
    assert page.locator("#pay").count() == 0
    assert store.get_bill(MERCHANT.site_id, bill.bill_id).status == "REJECTED"
    screenshot("rejected")


def test_expired_bill_cannot_be_paid(page, screenshot, store, mock_url):
    bill = issue(store)
    page.goto(pay_url(mock_url, bill))
    store.advance_clock(2 * 86400)  # the bill expires while the customer looks at the form
    page.locator("#pay").click()
    assert page.locator("h1").inner_text() == "Bill expired"
    assert "cannot be paid" in page.locator(".refused").inner_text()
    assert store.get_bill(MERCHANT.site_id, bill.bill_id).status == "EXPIRED"
    screenshot("expired")
    page.goto(pay_url(mock_url, bill))
    assert page.locator("h1").inner_text() == "Bill expired"
    assert page.locator("#pay").count() == 0


def test_form_create_flow(page, screenshot, store, mock_url, site):
    lifetime = (datetime.now(MOSCOW_TZ) + timedelta(days=10)).replace(second=0, microsecond=0)
    query = (
        f"publicKey={MERCHANT.public_key}&billId=893794793973&amount=42.24&phone=79123456789&email=m%40ya.ru"
        "&account=acc-7&comment=%D0%9A%D0%BE%D1%84%D0%B5&customFields%5BthemeCode%5D=codeStyle"
        f"&customFields[paySourcesFilter]=qw,card&lifetime={format_lifetime(lifetime)}"
        f"&successUrl={quote(site.url + '/success?from=create', safe='')}"
    )
    page.goto(f"{mock_url}/create?{query}")
    assert "/form/?invoice_uid=" in page.url
    assert page.locator("[data-field=amount]").inner_text() == "42.24\u00a0₽"
    assert page.locator("[data-field=comment]").inner_text() == "Кофе"
    assert page.locator("[data-field=pay-before]").inner_text() == lifetime.strftime("%d.%m.%Y %H:%M MSK")
    values = page.locator("input[name=paySource]").evaluate_all("els => els.map(e => e.value)")
    assert values == ["qw", "card"]
    screenshot("create-form")
    page.locator("#pay").click()
    page.wait_for_url(re.compile(r".*/success\?from=create$"))
    bill = store.get_bill(MERCHANT.site_id, "893794793973")
    assert bill.status == "PAID"
    assert dict(bill.customer) == {"phone": "79123456789", "email": "m@ya.ru", "account": "acc-7"}
    # Opening the same link again opens the existing (paid) bill instead of issuing another.
    page.goto(f"{mock_url}/create?{query}")
    assert page.locator("h1").inner_text() == "Paid"


def test_form_create_asks_for_a_missing_amount(page, screenshot, store, mock_url):
    page.goto(f"{mock_url}/create?publicKey={MERCHANT.public_key}&billId=ask-1&comment=Tip")
    screenshot("create-amount")
    page.locator("#amount").fill("150")
    page.locator("#continue").click()
    assert page.locator("[data-field=amount]").inner_text() == "150.00\u00a0₽"
    assert store.get_bill(MERCHANT.site_id, "ask-1").amount == Decimal("150.00")


def test_form_create_invalid_parameters(page, screenshot, store, mock_url):
    response = page.goto(f"{mock_url}/create?publicKey={MERCHANT.public_key}&amount=10&lifetime=2099-12-01T05:09")
    assert response.status == 400
    assert "without a colon" in page.locator("[data-field=error]").inner_text()
    screenshot("error")
    response = page.goto(f"{mock_url}/create?publicKey=nobody&amount=10")
    assert response.status == 403


def test_xss_comment_renders_as_text_and_javascript_success_url_is_refused(page, screenshot, store, mock_url, dialogs):
    payload = '<script>alert("xss")</script><img src=x onerror="alert(1)">'
    bill = issue(store, comment=payload, custom_fields={"themeCode": '"><script>alert(2)</script>'})
    page.goto(pay_url(mock_url, bill))
    assert page.locator("[data-field=comment]").inner_text() == payload
    assert page.locator("script").count() == 0
    assert page.locator("img").count() == 0
    screenshot("xss-comment")

    response = page.goto(f"{pay_url(mock_url, bill)}&successUrl=javascript%3Aalert(document.domain)")
    assert response.status == 400
    assert "successUrl" in page.locator("[data-field=error]").inner_text()
    assert page.locator("#pay").count() == 0
    assert dialogs == []
    assert store.get_bill(MERCHANT.site_id, bill.bill_id).status == "WAITING"


# --- the Checkout Popup -----------------------------------------------------------------------------------------


def open_shop(page, site, mock_url) -> None:
    page.goto(f"{site.url}/shop?mock={quote(mock_url, safe='')}")
    page.wait_for_function("typeof window.QiwiCheckout === 'object'")


def outcome(page) -> dict:
    page.wait_for_function("window.outcome !== null")
    return page.evaluate("window.outcome")


def test_popup_open_invoice_resolves_after_payment(page, screenshot, store, mock_url, site):
    bill = issue(store)
    link = f"{mock_url}/form?invoiceUid={bill.invoice_uid}"
    open_shop(page, site, mock_url)
    page.evaluate("url => window.checkout('openInvoice', {payUrl: url})", link)
    frame = page.frame_locator("#qiwi-checkout-frame")
    frame.locator("#pay").wait_for()
    screenshot("popup")
    frame.get_by_label("QIWI Wallet").check()
    frame.locator("#pay").click()
    assert outcome(page) == {"ok": True, "data": {"payUrl": link}}
    assert store.get_bill(MERCHANT.site_id, bill.bill_id).status == "PAID"
    # As the real popup does, the overlay closes itself 2 seconds after the payment.
    page.locator("#qiwi-checkout-popup").wait_for(state="detached", timeout=6000)


def test_popup_create_invoice_resolves_with_the_params(page, store, mock_url, site):
    open_shop(page, site, mock_url)
    params = {
        "publicKey": MERCHANT.public_key,
        "amount": 1.23,
        "phone": "79123456789",
        "billId": "popup-1",
        "comment": "From the popup",
        "customFields": {"themeCode": "codeStyle"},
    }
    page.evaluate("params => window.checkout('createInvoice', params)", params)
    frame = page.frame_locator("#qiwi-checkout-frame")
    assert frame.locator("[data-field=amount]").inner_text() == "1.23\u00a0₽"
    frame.locator("#pay").click()
    assert outcome(page) == {"ok": True, "data": params}
    bill = store.get_bill(MERCHANT.site_id, "popup-1")
    assert bill.status == "PAID"
    assert bill.custom_fields["themeCode"] == "codeStyle"
    assert bill.customer["phone"] == "79123456789"


def test_popup_rejects_when_closed(page, store, mock_url, site):
    bill = issue(store)
    open_shop(page, site, mock_url)
    page.evaluate("url => window.checkout('openInvoice', {payUrl: url})", pay_url(mock_url, bill))
    page.frame_locator("#qiwi-checkout-frame").locator("#pay").wait_for()
    page.locator("#qiwi-checkout-close").click()
    result = outcome(page)
    assert result["ok"] is False
    assert result["reason"] == "POPUP_CLOSED"
    assert page.locator("#qiwi-checkout-popup").count() == 0
    assert store.get_bill(MERCHANT.site_id, bill.bill_id).status == "WAITING"


def test_popup_rejects_on_escape(page, store, mock_url, site):
    bill = issue(store)
    open_shop(page, site, mock_url)
    page.evaluate("url => window.checkout('openInvoice', {payUrl: url})", pay_url(mock_url, bill))
    frame = page.frame_locator("#qiwi-checkout-frame")
    frame.locator("#pay").focus()  # the focus inside the iframe: the form forwards the key to the popup
    page.keyboard.press("Escape")
    assert outcome(page)["reason"] == "POPUP_CLOSED"
    assert page.locator("#qiwi-checkout-popup").count() == 0


def test_popup_rejects_when_the_payment_fails(page, store, mock_url, site):
    bill = issue(store)
    open_shop(page, site, mock_url)
    page.evaluate("url => window.checkout('openInvoice', {payUrl: url})", pay_url(mock_url, bill))
    page.frame_locator("#qiwi-checkout-frame").locator("#decline").click()
    result = outcome(page)
    assert result["ok"] is False
    assert result["reason"] == "PAYMENT_FAILED"
    assert store.get_bill(MERCHANT.site_id, bill.bill_id).status == "REJECTED"


def test_popup_rejects_an_expired_bill_and_bad_params(page, store, mock_url, site):
    bill = issue(store)
    store.expire_bill(MERCHANT.site_id, bill.bill_id)
    open_shop(page, site, mock_url)
    page.evaluate("url => window.checkout('openInvoice', {payUrl: url})", pay_url(mock_url, bill))
    assert outcome(page)["reason"] == "PAYMENT_FAILED"
    page.locator("#qiwi-checkout-popup").wait_for(state="detached", timeout=6000)

    page.evaluate("() => window.checkout('createInvoice', {publicKey: 'pk'})")
    result = outcome(page)
    assert result["ok"] is False
    assert "publicKey and amount" in result["message"]
    page.evaluate("() => window.checkout('openInvoice', {payUrl: 'https://example.invalid/form'})")
    assert "invoiceUid" in outcome(page)["message"]


# --- issue 16: another origin can neither pay by auto-submitting a form, nor frame the form; javascript: payUrls ---


def form_token(mock_url: str, bill: Bill) -> str:
    """The page token, as an attacker could read it from the form page with any HTTP client."""
    text = httpx.get(f"{mock_url}/form/?invoice_uid={bill.invoice_uid}").text
    match = re.search(r'name="token" value="([0-9a-f]+)"', text)
    return match[1] if match else ""  # "" on a mock without tokens, so the test shows what such a mock does


AUTO_SUBMIT = """<!doctype html><html><head><meta charset="utf-8"><title>Win a prize</title></head><body>
<form id="f" method="post" action="{action}">
<input type="hidden" name="paySource" value="qw"><input type="hidden" name="token" value="{token}">
</form>
<script>document.getElementById("f").submit();</script>
</body></html>
"""


@pytest.mark.parametrize("action", ["pay", "decline"])
def test_a_page_on_another_origin_cannot_pay_or_decline_by_auto_submitting(page, store, mock_url, site, action):
    # Before: this page on another origin auto-submitted POST /form/pay and the bill became PAID.
    bill = issue(store)
    attacker = site.serve(
        "/prize",
        AUTO_SUBMIT.format(
            action=f"{mock_url}/form/{action}?invoice_uid={bill.invoice_uid}", token=form_token(mock_url, bill)
        ),
    )
    with page.expect_response(re.compile(rf".*/form/{action}\?.*")) as answer:
        page.goto(attacker)
    assert answer.value.status == 403
    page.wait_for_url(re.compile(rf".*/form/{action}\?.*"))
    assert page.locator("h1").inner_text() == "Request refused"
    assert store.get_bill(MERCHANT.site_id, bill.bill_id).status == "WAITING"


FRAMING = """<!doctype html><html><head><meta charset="utf-8"><title>Framing</title></head><body>
<iframe id="f" src="{src}" onload="window.loaded = true" style="width:600px;height:600px"></iframe>
</body></html>
"""


def framed_pay_buttons(page, site, src: str) -> int:
    """How many Pay buttons the page on the merchant site's origin sees inside an iframe of ``src``."""
    page.goto(site.serve("/frame", FRAMING.format(src=html.escape(src))))
    page.wait_for_function("window.loaded === true")
    frame = page.frame_locator("#f")
    return frame.locator("#pay").count()


def test_another_origin_cannot_frame_the_form(page, screenshot, store, mock_url, site):
    # Before: no frame-ancestors and no X-Frame-Options, so any page could frame the one-click Pay form.
    bill = issue(store)
    link = pay_url(mock_url, bill)
    assert framed_pay_buttons(page, site, link) == 0
    screenshot("framing-refused")
    # embedded=true framed by an origin other than the one the link names: refused too.
    assert framed_pay_buttons(page, site, f"{link}&embedded=true&frameOrigin={quote(mock_url, safe='')}") == 0
    # The control: the merchant's own origin may frame the embedded page (what the popup does).
    assert framed_pay_buttons(page, site, f"{link}&embedded=true&frameOrigin={quote(site.url, safe='')}") == 1
    assert store.get_bill(MERCHANT.site_id, bill.bill_id).status == "WAITING"


def test_popup_refuses_a_javascript_or_foreign_pay_url(page, store, mock_url, site, dialogs):
    # Before: "javascript:...//?invoice_uid=1" passed the invoiceUid check and became the iframe's src.
    bill = issue(store)
    open_shop(page, site, mock_url)
    for pay_url_ in (
        "javascript:alert(document.domain)//?invoice_uid=1",
        "JavaScript:alert(1)//?invoiceUid=1",
        "data:text/html,<script>alert(1)</script>?invoice_uid=1",
        f"{site.url}/form/?invoice_uid={bill.invoice_uid}",  # http, but not the mock's origin
    ):
        page.evaluate("url => window.checkout('openInvoice', {payUrl: url})", pay_url_)
        result = outcome(page)
        assert result["ok"] is False, pay_url_
        assert "payUrl" in result["message"]
        assert page.locator("#qiwi-checkout-popup").count() == 0
    assert dialogs == []
    # The mock's own payUrl still opens.
    page.evaluate("url => window.checkout('openInvoice', {payUrl: url})", pay_url(mock_url, bill))
    page.frame_locator("#qiwi-checkout-frame").locator("#pay").wait_for()
