"""The payment pages on the real mock process: every user-supplied value is rendered escaped, a `successUrl`
that could run code (`javascript:`, `data:`, scheme-relative, control characters) is refused, and (issue 16) a
public key reaches only the bills its own form-create link issued, Pay and Decline work only from the mock's own
page, no page can be framed by another origin, and the popup script opens only the mock's own `payUrl`s."""

from __future__ import annotations

import contextlib
import html
import http.server
import os
import re
import shutil
import threading
from collections.abc import Iterator
from typing import Any
from urllib.parse import parse_qs, quote, urlencode, urlsplit

import httpx
import markupsafe
import pytest
from conftest import Row
from rel_procs import PUBLIC_A, PUBLIC_B, SECRET_A, MockProcess, auth, bill_body, write_config

API = "/partner/bill/v1/bills"

PAYLOADS = [
    '<script>alert("xss")</script>',
    '"><img src=x onerror=alert(1)>',
    "' onmouseover='alert(1)",
    "</textarea><svg/onload=alert(1)>",
    "<!--",
    "javascript:alert(1)",
]
#: Variants enough to tell "escaped" from "passed through": any of these verbatim in a page is a hole.
DANGEROUS = ["<script>", "<img", "<svg", "' onmouseover='", "</textarea>", "<!--"]

REFUSED_SUCCESS_URLS = [
    "javascript:alert(document.cookie)",
    "JaVaScRiPt:alert(1)",
    " javascript:alert(1)",
    "java\tscript:alert(1)",
    "data:text/html,<script>alert(1)</script>",
    "vbscript:msgbox(1)",
    "//evil.example/phish",
    "/relative/path",
    "https://",
    "ftp://merchant.example/ok",
]


@pytest.fixture(scope="module")
def pages_mock(module_mock_factory: Any, tmp_path_factory: pytest.TempPathFactory) -> MockProcess:
    tmp = tmp_path_factory.mktemp("pages")
    process: MockProcess = module_mock_factory(["--config", str(write_config(tmp / "m.toml"))])
    return process


def _dangerous(text: str) -> list[str]:
    return [marker for marker in DANGEROUS if marker in text]


def _token(client: httpx.Client, pay_url: str) -> str:
    """The token of a bill's form page (what the page's Pay and Decline forms send back)."""
    match = re.search(r'name="token" value="([0-9a-f]+)"', client.get(pay_url).text)
    return match[1] if match else ""  # "" on a mock without tokens: the scenario then shows what that mock does


def test_every_user_supplied_field_is_escaped(scale: str, pages_mock: MockProcess, row: Row) -> None:
    """Payloads in comment, customer, customFields (names and values), billId and the query: never raw in HTML."""
    payloads = PAYLOADS if scale == "full" else PAYLOADS[:3]
    pages = 0
    with httpx.Client(base_url=pages_mock.url, trust_env=False, timeout=30) as client:
        for i, payload in enumerate(payloads):
            bill_id = f"xss-{scale}-{i}-{payload}"[:200]
            body = bill_body(
                "10.00",
                comment=payload,
                customer={"email": payload, "phone": payload, "account": payload},
                customFields={"themeCode": payload, "comment": payload, "paySourcesFilter": "qw,card"},
            )
            created = client.put(f"{API}/{quote(bill_id, safe='')}", json=body, headers=auth(SECRET_A))
            assert created.status_code == 200, created.text
            pay_url = created.json()["payUrl"]
            urls = [
                pay_url,
                pay_url + "&" + urlencode({"successUrl": f"https://shop.example/?q={payload}", "paySource": payload}),
                pay_url + "&" + urlencode({"lifetime": payload, "embedded": payload}),
                "/form/?" + urlencode({"invoice_uid": payload}),
                "/create?" + urlencode({"publicKey": payload, "amount": "1.00"}),
                "/create?" + urlencode({"publicKey": PUBLIC_A, "comment": payload, "email": payload}),
                "/create?" + urlencode({"publicKey": PUBLIC_A, "billId": payload, "amount": "1.00"}),
                "/create?" + urlencode({"publicKey": PUBLIC_A, f"customFields[{payload}]": "x", "amount": "1.00"}),
                "/create?"
                + urlencode({"publicKey": PUBLIC_A, "amount": "2.00", "comment": payload[:255], "account": payload}),
                "/static/" + quote(payload, safe=""),
            ]
            for url in urls:
                page = client.get(url, follow_redirects=True)
                pages += 1
                assert page.status_code < 500, url
                if "html" in page.headers.get("content-type", ""):
                    assert not _dangerous(page.text), f"{url}: {_dangerous(page.text)}"
                    assert "default-src 'none'" in page.headers.get("content-security-policy", ""), url
            # The escaped comment is really on the bill's page (the test looks at the right place), in either
            # spelling of the entities (Jinja2's markupsafe: &#34; &#39;; html.escape: &quot; &#x27;).
            shown = client.get(pay_url).text
            assert f'data-field="comment">{markupsafe.escape(payload)}<' in shown or html.escape(payload) in shown
    row.requests = pages
    row.faults = pages


def test_dangerous_success_urls_are_refused(scale: str, pages_mock: MockProcess, row: Row) -> None:
    """A successUrl that is not an absolute http(s) URL is a 400 page, on the form and on /create; a good one works."""
    checked = 0
    with httpx.Client(base_url=pages_mock.url, trust_env=False, timeout=30) as client:
        created = client.put(f"{API}/success-{scale}", json=bill_body(), headers=auth(SECRET_A))
        pay_url = created.json()["payUrl"]
        for bad in REFUSED_SUCCESS_URLS:
            for url in (
                pay_url + "&" + urlencode({"successUrl": bad}),
                "/create?" + urlencode({"publicKey": PUBLIC_A, "amount": "1.00", "successUrl": bad}),
            ):
                page = client.get(url)
                checked += 1
                assert page.status_code == 400, f"{bad!r} accepted by {url[:60]}"
                assert "successUrl" in page.text
                assert not _dangerous(page.text)
            paid = client.post(pay_url.replace("/form/?", "/form/pay?") + "&" + urlencode({"successUrl": bad}))
            checked += 1
            assert paid.status_code == 400, f"pay with {bad!r}: {paid.status_code}"
        # Nothing was paid by the refused requests; a good successUrl is where paying leads.
        assert client.get(f"{API}/success-{scale}", headers=auth(SECRET_A)).json()["status"]["value"] == "WAITING"
        good = "https://shop.example/thanks?order=1"
        paid = client.post(
            pay_url.replace("/form/?", "/form/pay?") + "&" + urlencode({"successUrl": good}),
            data={"token": _token(client, pay_url)},
        )
        assert paid.status_code == 303
        assert paid.headers["location"] == good
    row.requests = checked + 2
    row.faults = checked


def test_public_key_reaches_only_bills_of_its_own_link(scale: str, pages_mock: MockProcess, row: Row) -> None:
    """Issue 16 item 3: `/create?publicKey&billId=<an API bill>` is a 409 page that shows nothing of the bill; a
    form-created bill opens again only for the same link; the other merchant's public key issues its own bill."""
    count = 20 if scale == "full" else 3
    checked = 0
    with httpx.Client(base_url=pages_mock.url, trust_env=False, timeout=30) as client:
        for i in range(count):
            bill_id = f"order-{scale}-{i}"  # guessable, as merchants' ids are
            created = client.put(f"{API}/{bill_id}", json=bill_body("77.00", comment="private"), headers=auth(SECRET_A))
            uid = parse_qs(urlsplit(created.json()["payUrl"]).query)["invoice_uid"][0]
            for amount in ("77.00", "1.00"):
                page = client.get("/create", params={"publicKey": PUBLIC_A, "billId": bill_id, "amount": amount})
                checked += 1
                assert page.status_code == 409, page.status_code
                assert uid not in page.text
                assert "private" not in page.text
                assert "location" not in page.headers
            link = {"publicKey": PUBLIC_A, "billId": f"link-{scale}-{i}", "amount": "5.00", "comment": "by link"}
            first = client.get("/create", params=link)
            again = client.get("/create", params={**link, "successUrl": "https://shop.example/ok"})
            other = client.get("/create", params={**link, "comment": "changed"})
            foreign = client.get("/create", params={**link, "publicKey": PUBLIC_B})
            checked += 4
            assert first.status_code == again.status_code == foreign.status_code == 303
            uid_of = lambda r: parse_qs(urlsplit(r.headers["location"]).query)["invoice_uid"]  # noqa: E731
            assert uid_of(first) == uid_of(again) != uid_of(foreign)
            assert other.status_code == 409
        for i in range(count):  # the API bills were neither read nor changed by the refused links
            bill = client.get(f"{API}/order-{scale}-{i}", headers=auth(SECRET_A)).json()
            assert (bill["status"]["value"], bill["amount"]["value"]) == ("WAITING", "77.00")
    row.requests = checked + 2 * count
    row.faults = checked


def test_pay_and_decline_only_from_the_mock_page(scale: str, pages_mock: MockProcess, row: Row) -> None:
    """Issue 16 item 3: a POST without the page's token, or with it from another origin (what an auto-submitted
    form on another site sends), neither pays nor declines; the mock's own page pays, and the merchant is notified."""
    forged = [
        ({}, {}),
        ({"token": "0" * 64}, {}),
        ("token", {"Origin": "http://evil.example", "Sec-Fetch-Site": "cross-site"}),
        ("token", {"Origin": "null"}),
        ("token", {"Sec-Fetch-Site": "same-site"}),
    ]
    rounds = 10 if scale == "full" else 1
    checked = 0
    with httpx.Client(base_url=pages_mock.url, trust_env=False, timeout=30) as client:
        for i in range(rounds):
            bill_id = f"csrf-{scale}-{i}"
            pay_url = client.put(f"{API}/{bill_id}", json=bill_body(), headers=auth(SECRET_A)).json()["payUrl"]
            token = _token(client, pay_url)
            for data, headers in forged:
                for action in ("pay", "decline"):
                    body = {"paySource": "qw", **({"token": token} if data == "token" else data)}
                    answer = client.post(pay_url.replace("/form/?", f"/form/{action}?"), data=body, headers=headers)
                    checked += 1
                    assert answer.status_code == 403, (action, data, headers, answer.status_code)
            status = client.get(f"{API}/{bill_id}", headers=auth(SECRET_A)).json()["status"]["value"]
            assert status == "WAITING"
            own = {"Origin": pages_mock.url, "Sec-Fetch-Site": "same-origin"}
            paid = client.post(pay_url.replace("/form/?", "/form/pay?"), data={"token": token}, headers=own)
            assert paid.status_code == 303
            assert client.get(f"{API}/{bill_id}", headers=auth(SECRET_A)).json()["status"]["value"] == "PAID"
    row.requests = checked + 4 * rounds
    row.faults = checked


def test_no_page_can_be_framed_by_another_origin(scale: str, pages_mock: MockProcess, row: Row) -> None:
    """Issue 16 item 8: every page says `frame-ancestors 'none'` and `X-Frame-Options: DENY`, except an embedded
    (popup) page, which names the one origin allowed to frame it."""
    checked = 0
    shop = "http://127.0.0.1:9"
    with httpx.Client(base_url=pages_mock.url, trust_env=False, timeout=30) as client:
        pay_url = client.put(f"{API}/frame-{scale}", json=bill_body(), headers=auth(SECRET_A)).json()["payUrl"]
        unframed = [
            pay_url,
            pay_url + "&embedded=true",  # embedded, but nothing names the merchant's origin
            pay_url + "&embedded=true&frameOrigin=" + quote(pages_mock.url, safe="") + "x",  # refused: a 400 page
            "/form/?invoice_uid=nope",
            "/create?" + urlencode({"publicKey": PUBLIC_A}),
        ]
        for url in unframed:
            page = client.get(url)
            checked += 1
            assert page.headers.get("x-frame-options") == "DENY", url
            assert page.headers["content-security-policy"].endswith("frame-ancestors 'none'"), url
        framed = [
            pay_url + "&embedded=true&frameOrigin=" + quote(shop, safe=""),
            pay_url + "&embedded=true&successUrl=" + quote(shop + "/thanks", safe=""),
            "/form/?invoice_uid=nope&embedded=true&frameOrigin=" + quote(shop, safe=""),
        ]
        for url in framed:
            page = client.get(url)
            checked += 1
            assert "x-frame-options" not in page.headers, url
            assert page.headers["content-security-policy"].endswith(f"frame-ancestors {shop}"), url
        by_referer = client.get(pay_url + "&embedded=true", headers={"Referer": shop + "/checkout"})
        checked += 1
        assert by_referer.headers["content-security-policy"].endswith(f"frame-ancestors {shop}")
    row.requests = checked + 1
    row.faults = checked


_CHROMIUM = os.environ.get("QIWI_BILL_CHROMIUM", "/usr/bin/chromium")


@contextlib.contextmanager
def _shop_site(page_html: str) -> Iterator[str]:
    """The merchant's page on a loopback origin of its own (a page Playwright made up would count as public, and
    Chromium's Local Network Access then blocks its script from 127.0.0.1)."""

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            body = page_html.encode()
            self.send_response(200)
            self.send_header("Content-Type", "text/html; charset=utf-8")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: Any) -> None:  # quiet
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/shop"
    finally:
        server.shutdown()
        server.server_close()


_SHOP = """<!doctype html><html><head><meta charset="utf-8"><title>shop</title></head><body>
<script src="{mock}/popup/v1.js"></script></body></html>"""


def test_popup_opens_only_the_mock_own_pay_urls(scale: str, pages_mock: MockProcess, row: Row) -> None:
    """Issue 16 item 9: the served popup script, in Chromium, refuses `javascript:`/`data:` and foreign `payUrl`s
    (no dialog runs, no iframe) and still opens the mock's own."""
    if not (os.path.exists(_CHROMIUM) or shutil.which(_CHROMIUM)):
        if os.environ.get("CI") == "true":
            pytest.fail(f"CI must run this scenario, but {_CHROMIUM} is missing: run `make browser-deps`")
        pytest.skip(f"{_CHROMIUM} is missing: run `make browser-deps`")
    from playwright.sync_api import sync_playwright

    with httpx.Client(base_url=pages_mock.url, trust_env=False, timeout=30) as client:
        pay_url = client.put(f"{API}/popup-{scale}", json=bill_body(), headers=auth(SECRET_A)).json()["payUrl"]
    bad = [
        "javascript:alert(document.domain)//?invoice_uid=1",
        "JAVASCRIPT:alert(1)//?invoiceUid=1",
        "data:text/html,<script>alert(1)</script>?invoice_uid=1",
        "vbscript:x//?invoice_uid=1",
        "http://127.0.0.1:9/form/?invoice_uid=1",
        "//evil.example/form/?invoice_uid=1",
    ]
    if scale == "quick":
        bad = bad[:2] + bad[4:5]
    dialogs: list[str] = []
    with _shop_site(_SHOP.format(mock=pages_mock.url)) as shop_url, sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=_CHROMIUM, headless=True, args=["--no-sandbox"])
        try:
            page = browser.new_page()

            def record(dialog: Any) -> None:  # a payUrl that ran code would open one
                dialogs.append(dialog.message)
                dialog.dismiss()

            page.on("dialog", record)
            page.goto(shop_url)
            page.wait_for_function("typeof window.QiwiCheckout === 'object'")
            for url in bad:
                # A payUrl that became the iframe's src never settles the promise: give up after 3 s, not hang.
                message = page.evaluate(
                    "url => Promise.race([QiwiCheckout.openInvoice({payUrl: url}).then(() => 'resolved', String),"
                    " new Promise(done => setTimeout(() => done('no answer'), 3000))])",
                    url,
                )
                assert "payUrl" in message, (url, message)
                assert page.locator("#qiwi-checkout-popup").count() == 0
            page.evaluate("url => { QiwiCheckout.openInvoice({payUrl: url}); }", pay_url)
            page.frame_locator("#qiwi-checkout-frame").locator("#pay").wait_for(timeout=15_000)
        finally:
            browser.close()
    assert dialogs == []
    row.requests = len(bad) + 2
    row.faults = len(bad)
