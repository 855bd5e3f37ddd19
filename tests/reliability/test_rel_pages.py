"""The payment pages on the real mock process: every user-supplied value is rendered escaped, and a `successUrl`
that could run code (`javascript:`, `data:`, scheme-relative, control characters) is refused."""

from __future__ import annotations

from typing import Any
from urllib.parse import quote, urlencode

import httpx
import pytest
from conftest import Row
from rel_procs import PUBLIC_A, SECRET_A, MockProcess, auth, bill_body, write_config

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
            # The escaped comment is really on the bill's page (the test looks at the right place).
            shown = client.get(pay_url).text
            assert "&lt;" in shown or "&#x27;" in shown or "&quot;" in shown
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
        paid = client.post(pay_url.replace("/form/?", "/form/pay?") + "&" + urlencode({"successUrl": good}))
        assert paid.status_code == 303
        assert paid.headers["location"] == good
    row.requests = checked + 2
    row.faults = checked
