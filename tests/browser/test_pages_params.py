"""Unit tests of the payment pages' pure parts: query parsing, pay-source choice and HTML escaping."""

from __future__ import annotations

import importlib
from datetime import datetime, timedelta
from decimal import Decimal

import pytest

from qiwi_bill import MOSCOW_TZ, PAY_SOURCES
from qiwi_bill_mock.models import Bill, to_micros
from qiwi_bill_mock.pages import (
    PAGE_HEADERS,
    FormOptions,
    PageError,
    choose_pay_sources,
    effective_status,
    parse_create_params,
    parse_form_options,
    parse_invoice_uid,
    render_bill_page,
    render_error_page,
    render_final_page,
    validate_success_url,
)
from qiwi_bill_mock.pages_guard import PageGuard, frame_ancestor, page_headers
from qiwi_bill_mock.pages_params import origin_of
from qiwi_bill_mock.pages_views import PAY_SOURCE_LABELS

NOW = datetime(2026, 11, 28, 12, 0, tzinfo=MOSCOW_TZ)


def bill(**overrides) -> Bill:
    values: dict = {
        "site_id": "270305",
        "bill_id": "order-1",
        "invoice_uid": "4a1c2b9e-5d7f-4e7a-9a55-0f1e2d3c4b5a",
        "amount": Decimal("1234.50"),
        "currency": "RUB",
        "status": "WAITING",
        "created_us": to_micros(NOW),
        "changed_us": to_micros(NOW),
        "expires_us": to_micros(NOW + timedelta(days=1)),
        "expiration_text": (NOW + timedelta(days=1)).isoformat(),
        "comment": None,
        "customer": {},
        "custom_fields": {},
        "pay_source": None,
        "refunded": Decimal(0),
    }
    values.update(overrides)
    return Bill(**values)


# --- successUrl -------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "url", ["https://shop.example/thanks", "http://127.0.0.1:9000/ok?order=1&x=%20", "HTTPS://Shop.Example/"]
)
def test_success_url_accepts_http_and_https(url):
    assert validate_success_url(url) == url


@pytest.mark.parametrize(
    "url",
    [
        "javascript:alert(1)",
        "JavaScript:alert(document.cookie)",
        " javascript:alert(1)",
        "data:text/html,<script>alert(1)</script>",
        "vbscript:msgbox",
        "//evil.example/",
        "/relative/path",
        "ftp://files.example/",
        "https://",
        "https://shop.example/\nSet-Cookie: x",
        "https://shop.example/" + "a" * 3000,
    ],
)
def test_success_url_refuses_everything_else(url):
    with pytest.raises(PageError) as caught:
        validate_success_url(url)
    assert caught.value.status_code == 400
    assert "successUrl" in caught.value.detail


# --- payUrl options ---------------------------------------------------------------------------------------------


def test_form_options_parse_every_documented_option():
    options = parse_form_options(
        {
            "paySource": "card",
            "allowedPaySources": "card,qw",
            "successUrl": "https://shop.example/ok",
            "lifetime": "2026-12-01T0509",
            "embedded": "true",
        }
    )
    assert options.pay_source == "card"
    assert options.allowed_pay_sources == ("qw", "card")  # form order
    assert options.success_url == "https://shop.example/ok"
    assert options.lifetime == datetime(2026, 12, 1, 5, 9, tzinfo=MOSCOW_TZ)
    assert options.embedded
    assert options.notes == ()
    assert "successUrl=https%3A%2F%2Fshop.example%2Fok" in options.query("uid")


def test_unknown_pay_source_is_ignored_with_a_note():
    options = parse_form_options({"paySource": "bitcoin", "allowedPaySources": "card,bitcoin"})
    assert options.pay_source is None
    assert options.allowed_pay_sources == ("card",)
    assert any("bitcoin" in note for note in options.notes)


@pytest.mark.parametrize("lifetime", ["2021-05-01T14:47", "2021-05-01", "tomorrow", "2021-13-01T1200", ""])
def test_malformed_lifetime_is_a_400(lifetime):
    with pytest.raises(PageError) as caught:
        parse_form_options({"lifetime": lifetime})
    assert caught.value.status_code == 400
    assert "YYYY-MM-DDTHHmm" in caught.value.detail


def test_lifetime_with_a_colon_gets_a_hint():
    with pytest.raises(PageError, match="without a colon"):
        parse_form_options({"lifetime": "2021-05-01T14:47"})


def test_invoice_uid_both_spellings():
    assert parse_invoice_uid({"invoice_uid": "a"}) == "a"
    assert parse_invoice_uid({"invoiceUid": "b"}) == "b"
    assert parse_invoice_uid({"invoice_uid": "a", "invoiceUid": "a"}) == "a"
    for params in ({}, {"invoice_uid": ""}, {"invoice_uid": "a", "invoiceUid": "b"}):
        with pytest.raises(PageError):
            parse_invoice_uid(params)


# --- pay sources ------------------------------------------------------------------------------------------------


def test_all_methods_by_default_qw_selected():
    choice = choose_pay_sources({}, FormOptions())
    assert choice.offered == ("qw", "card", "mobile", "sovest")
    assert choice.selected == "qw"


def test_pay_sources_filter_then_allowed_then_preselect():
    choice = choose_pay_sources(
        {"paySourcesFilter": "qw,card,mobile"},
        FormOptions(allowed_pay_sources=("card", "mobile", "sovest"), pay_source="mobile"),
    )
    assert choice.offered == ("card", "mobile")
    assert choice.selected == "mobile"


def test_pay_source_not_offered_falls_back_to_the_first():
    choice = choose_pay_sources({"paySourcesFilter": "card"}, FormOptions(pay_source="qw"))
    assert choice.offered == ("card",)
    assert choice.selected == "card"
    assert choice.notes


def test_filters_that_leave_nothing_are_ignored():
    choice = choose_pay_sources({"paySourcesFilter": "qw"}, FormOptions(allowed_pay_sources=("card",)))
    assert choice.offered == ("qw",)
    assert any("allowedPaySources" in note for note in choice.notes)


def test_payurl_lifetime_only_shortens():
    options = FormOptions(lifetime=NOW - timedelta(minutes=1))
    assert effective_status(bill(), options, NOW) == "EXPIRED"
    assert effective_status(bill(), FormOptions(lifetime=NOW + timedelta(days=9)), NOW) == "WAITING"
    assert effective_status(bill(status="PAID"), options, NOW) == "PAID"


# --- /create ----------------------------------------------------------------------------------------------------


def test_create_params_every_documented_parameter():
    params = parse_create_params(
        [
            ("publicKey", "pk"),
            ("billId", "order_42-a"),
            ("amount", "42.24"),
            ("phone", "79123456789"),
            ("email", "m@ya.ru"),
            ("account", "acc-1"),
            ("comment", "Кофе"),
            ("customFields[themeCode]", "codeStyle"),
            ("customFields[paySourcesFilter]", "qw,card"),
            ("lifetime", "2026-12-01T0509"),
            ("successUrl", "http://test.ru/"),
            ("embedded", "true"),
            ("billref", "popup"),
        ]
    )
    assert params.public_key == "pk"
    assert params.bill_id == "order_42-a"
    assert params.amount == Decimal("42.24")
    assert params.customer == {"phone": "79123456789", "email": "m@ya.ru", "account": "acc-1"}
    assert params.comment == "Кофе"
    assert params.custom_fields == {"themeCode": "codeStyle", "paySourcesFilter": "qw,card"}
    assert params.lifetime == datetime(2026, 12, 1, 5, 9, tzinfo=MOSCOW_TZ)
    assert params.options.success_url == "http://test.ru/"
    assert params.options.embedded


@pytest.mark.parametrize(("amount", "expected"), [("100", "100.00"), ("0.01", "0.01"), ("999999.99", "999999.99")])
def test_create_amount_spellings(amount, expected):
    assert parse_create_params([("publicKey", "pk"), ("amount", amount)]).amount == Decimal(expected)


def test_create_amount_is_optional():
    assert parse_create_params([("publicKey", "pk")]).amount is None


@pytest.mark.parametrize(
    ("items", "needle"),
    [
        ([], "publicKey is required"),
        ([("publicKey", " ")], "publicKey is required"),
        ([("publicKey", "pk"), ("amount", "0")], "between"),
        ([("publicKey", "pk"), ("amount", "1000000")], "amount"),
        ([("publicKey", "pk"), ("amount", "1.005")], "2 decimals"),
        ([("publicKey", "pk"), ("amount", "1,50")], "amount"),
        ([("publicKey", "pk"), ("amount", "-5")], "amount"),
        ([("publicKey", "pk"), ("amount", "NaN")], "amount"),
        ([("publicKey", "pk"), ("comment", "x" * 256)], "comment"),
        ([("publicKey", "pk"), ("billId", "a b")], "billId"),
        ([("publicKey", "pk"), ("billId", "x" * 201)], "billId"),
        ([("publicKey", "pk"), ("customFields[a]", "x" * 256)], "customFields[a]"),
        ([("publicKey", "pk"), ("customFields", "[object Object]")], "one field at a time"),
        ([("publicKey", "pk"), ("customFields[a][b]", "1")], "customFields"),
        ([("publicKey", "pk"), ("lifetime", "2021-05-01T14:47")], "lifetime"),
        ([("publicKey", "pk"), ("successUrl", "javascript:alert(1)")], "successUrl"),
        ([("publicKey", "pk"), ("publicKey", "other")], "more than once"),
        ([("public_key", "pk")], "publicKey"),
        ([("publicKey", "pk"), ("success_url", "https://x.example/")], "successUrl"),
        ([("publicKey", "pk"), ("email", "e" * 300)], "email"),
    ],
)
def test_create_params_refused_with_a_clear_400(items, needle):
    with pytest.raises(PageError) as caught:
        parse_create_params(items)
    assert caught.value.status_code == 400
    assert needle in caught.value.detail


# --- HTML -------------------------------------------------------------------------------------------------------

XSS = '<script>alert("x")</script>&\'"'


def test_bill_page_escapes_every_supplied_value():
    page = bill(
        comment=XSS,
        bill_id="order-1",
        custom_fields={"themeCode": XSS, "paySourcesFilter": XSS},
    )
    status, text = render_bill_page(page, parse_form_options({"paySource": XSS, "allowedPaySources": XSS}), now=NOW)
    assert status == 200
    assert "<script>alert" not in text
    # Jinja2's autoescaping (markupsafe): " is &#34; and ' is &#39;.
    assert "&lt;script&gt;alert(&#34;x&#34;)&lt;/script&gt;&amp;&#39;&#34;" in text
    assert "<script" not in text  # not embedded: no script at all


def test_bill_page_shows_amount_comment_status_expiry_methods_and_buttons():
    status, text = render_bill_page(
        bill(comment="Order #1", custom_fields={"themeCode": "Yvan-YKaSh"}),
        FormOptions(pay_source="card"),
        now=NOW,
    )
    assert status == 200
    assert "1\u202f234.50\u00a0₽" in text
    assert "Order #1" in text
    assert "Waiting for payment" in text
    assert "29.11.2026 12:00 MSK" in text
    assert "Yvan-YKaSh" in text
    for label in ("QIWI Wallet", "Bank card", "Mobile phone balance", "Sovest card"):
        assert label in text
    assert 'value="card" checked' in text
    assert 'id="pay"' in text
    assert 'id="decline"' in text
    assert "/form/pay?invoice_uid=" in text


@pytest.mark.parametrize(("status", "headline"), [("PAID", "Paid"), ("REJECTED", "rejected"), ("EXPIRED", "expired")])
def test_final_pages(status, headline):
    text = render_final_page(bill(status=status), FormOptions(), status=status)
    assert headline in text
    assert 'id="pay"' not in text


def test_embedded_pages_report_to_the_popup():
    text = render_final_page(bill(status="PAID"), FormOptions(embedded=True), status="PAID")
    assert 'data-popup-event="paid"' in text
    assert "/static/qiwi-form.js" in text


def test_error_page_escapes_and_shows_status():
    text = render_error_page(PageError(400, "Bad <b>", "detail <i>"))
    assert "Bad &lt;b&gt;" in text
    assert "detail &lt;i&gt;" in text
    assert "HTTP 400" in text


PAGE_MODULES = ["pages_params", "pages_views", "pages_guard", "pages_backend"]
CONSTANTS = {"PAGE_HEADERS", "PAY_SOURCE_LABELS", "BillStatus"}  # values without a __module__ of their own


def _defined_here(module) -> set[str]:
    return {
        name
        for name, value in vars(module).items()
        if not name.startswith("_") and getattr(value, "__module__", None) == module.__name__
    }


@pytest.mark.parametrize("name", PAGE_MODULES)
def test_all_lists_exactly_the_public_names(name):
    module = importlib.import_module(f"qiwi_bill_mock.{name}")
    assert module.__doc__
    assert sorted(module.__all__) == sorted(_defined_here(module) | (CONSTANTS & set(vars(module))))


def test_pages_exports_its_routes_and_the_parts_users_import():
    module = importlib.import_module("qiwi_bill_mock.pages")
    parts = set().union(*(importlib.import_module(f"qiwi_bill_mock.{name}").__all__ for name in PAGE_MODULES))
    assert _defined_here(module) == {"page_routes"}
    assert set(module.__all__) <= parts | {"page_routes"}
    assert "page_routes" in module.__all__
    for name in module.__all__:
        assert getattr(module, name) is not None


def test_every_pages_module_stays_small():
    # Issue 12: no module of the pages over about 400 lines.
    for name in ["pages", *PAGE_MODULES]:
        path = importlib.import_module(f"qiwi_bill_mock.{name}").__file__
        assert path is not None
        with open(path, encoding="utf-8") as source:
            assert sum(1 for _ in source) <= 400, name


def test_pay_source_labels_follow_qiwi_bill():
    # One pay-source list (qiwi_bill.PAY_SOURCES); the pages only name each entry, in its order.
    assert tuple(PAY_SOURCE_LABELS) == PAY_SOURCES


def test_page_headers():
    assert PAGE_HEADERS["Referrer-Policy"] == "no-referrer-when-downgrade"
    assert "script-src 'self'" in PAGE_HEADERS["Content-Security-Policy"]


# --- the guard: tokens, origins, framing ------------------------------------------------------------------------

OWN = ["http://127.0.0.1:8080"]


def test_page_tokens_are_per_bill_and_per_process():
    guard = PageGuard(secret=b"k" * 32)
    assert guard.token("a") == PageGuard(secret=b"k" * 32).token("a")
    assert guard.token("a") != guard.token("b")
    assert guard.token("a") != PageGuard().token("a")
    guard.check_action(invoice_uid="a", token=guard.token("a"), headers={}, own_origins=OWN)


@pytest.mark.parametrize(
    ("headers", "token_ok", "allowed"),
    [
        ({}, True, True),  # an HTTP client without browser headers, with the page's token
        ({"sec-fetch-site": "same-origin", "origin": "http://127.0.0.1:8080"}, True, True),
        ({"origin": "https://127.0.0.1:8080"}, True, True),  # behind a TLS proxy the scheme differs, not the host
        ({}, False, False),
        ({"sec-fetch-site": "cross-site"}, True, False),
        ({"sec-fetch-site": "same-site"}, True, False),
        ({"sec-fetch-site": "none"}, True, False),
        ({"origin": "http://127.0.0.1:8081"}, True, False),
        ({"origin": "null"}, True, False),
        ({"origin": "not a url"}, True, False),
    ],
)
def test_check_action(headers, token_ok, allowed):
    guard = PageGuard()
    token = guard.token("uid") if token_ok else "x"
    if allowed:
        guard.check_action(invoice_uid="uid", token=token, headers=headers, own_origins=OWN)
    else:
        with pytest.raises(PageError) as caught:
            guard.check_action(invoice_uid="uid", token=token, headers=headers, own_origins=OWN)
        assert caught.value.status_code == 403


@pytest.mark.parametrize(
    ("url", "origin"),
    [
        ("https://Shop.Example/thanks?x=1", "https://shop.example"),
        ("https://shop.example:443/", "https://shop.example"),
        ("http://127.0.0.1:8081/shop", "http://127.0.0.1:8081"),
        ("http://[::1]:9/", "http://[::1]:9"),
    ],
)
def test_origin_of(url, origin):
    assert origin_of(url) == origin


def test_frame_ancestor_order_and_refusals():
    def ancestor(**values):
        base = {"embedded": True, "frame_origin": None, "success_url": None, "referer": None, "own_origins": OWN}
        return frame_ancestor(**{**base, **values})

    shop, site = "http://127.0.0.1:9", "https://shop.example"
    assert ancestor(embedded=False, frame_origin=shop) is None
    assert ancestor(frame_origin=shop, success_url=f"{site}/ok", referer="http://other.example/") == shop
    assert ancestor(success_url=f"{site}/ok", referer="http://other.example/") == site
    assert ancestor(referer="http://other.example/page") == "http://other.example"
    assert ancestor(referer="http://127.0.0.1:8080/form/?invoice_uid=x") is None  # the mock's own page
    assert ancestor(frame_origin="javascript:alert(1)", referer="garbage") is None
    assert ancestor() is None


def test_page_headers_for_framed_and_unframed_pages():
    assert PAGE_HEADERS["X-Frame-Options"] == "DENY"
    assert PAGE_HEADERS["Content-Security-Policy"].endswith("; frame-ancestors 'none'")
    framed = page_headers("https://shop.example")
    assert "X-Frame-Options" not in framed
    assert framed["Content-Security-Policy"].endswith("; frame-ancestors https://shop.example")
    assert framed["Content-Security-Policy"].startswith("default-src 'none';")


def test_the_form_carries_the_token_in_both_forms():
    _, text = render_bill_page(bill(), FormOptions(), now=NOW, token="t0k3n")
    assert text.count('<input type="hidden" name="token" value="t0k3n">') == 2


def test_create_fingerprint_ignores_form_options_only():
    base = [("publicKey", "pk"), ("billId", "b"), ("amount", "10")]
    same = parse_create_params(base).fingerprint()
    assert (
        parse_create_params([*base, ("successUrl", "https://x.example/"), ("embedded", "true")]).fingerprint() == same
    )
    assert parse_create_params([("publicKey", "pk"), ("billId", "b"), ("amount", "10.00")]).fingerprint() == same
    for extra in (("comment", "c"), ("email", "e@x"), ("customFields[a]", "1"), ("lifetime", "2026-12-01T0000")):
        assert parse_create_params([*base, extra]).fingerprint() != same
    assert parse_create_params([("publicKey", "pk2"), *base[1:]]).fingerprint() != same
