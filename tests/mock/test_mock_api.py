"""The HTTP layer: the five operations through the generated client, every error path, the controls."""

from __future__ import annotations

import logging
from datetime import datetime
from decimal import Decimal
from typing import Any

import httpx
import pytest
from mock_helpers import (
    AUTH,
    FUTURE,
    OTHER_AUTH,
    SECRET,
    SITE,
    FakeClock,
    bill_body,
    make_settings,
    sequential_ids,
)
from starlette.applications import Starlette

import qiwi_bill_mock
from qiwi_bill_client import AuthenticatedClient
from qiwi_bill_client.api.bills import create_bill, get_bill, reject_bill
from qiwi_bill_client.api.refunds import create_refund, get_refund
from qiwi_bill_client.models import (
    AmountRequest,
    Bill,
    BillStatusValue,
    CreateBillRequest,
    CreateRefundRequest,
    Error,
    Refund,
    RefundStatus,
)
from qiwi_bill_mock import Settings, create_app

BILLS = "/partner/bill/v1/bills"
JSON = {**AUTH, "Content-Type": "application/json"}


def test_exported_members() -> None:
    assert sorted(qiwi_bill_mock.__all__) == qiwi_bill_mock.__all__
    for name in qiwi_bill_mock.__all__:
        assert hasattr(qiwi_bill_mock, name)


def _request(value: str = "10.00") -> CreateBillRequest:
    return CreateBillRequest(
        amount=AmountRequest(currency="RUB", value=value),
        expiration_date_time=datetime.fromisoformat(FUTURE),
        comment="Text comment",
    )


def test_generated_sync_client_full_flow(app: Starlette, serve) -> None:
    server = serve(app)
    with AuthenticatedClient(base_url=server.url, token=SECRET, raise_on_unexpected_status=True) as client:
        created = create_bill.sync("order/1", client=client, body=_request())
        assert isinstance(created, Bill)
        assert created.bill_id == "order/1"
        assert created.amount.value == "10.00"
        assert created.status.value is BillStatusValue.WAITING
        assert created.pay_url.startswith("http://mock.test/form/?invoice_uid=")
        fetched = get_bill.sync("order/1", client=client)
        assert isinstance(fetched, Bill)
        assert fetched.to_dict() == created.to_dict()
        assert isinstance(create_refund.sync("order/1", "r1", client=client, body=_refund("1.00")), Error)
        httpx.post(f"{server.url}/_mock/bills/order%2F1/pay", headers=AUTH).raise_for_status()
        refund = create_refund.sync("order/1", "r1", client=client, body=_refund("1.00"))
        assert isinstance(refund, Refund)
        assert refund.status is RefundStatus.PARTIAL
        again = get_refund.sync("order/1", "r1", client=client)
        assert isinstance(again, Refund)
        assert again.to_dict() == refund.to_dict()
        rejected = reject_bill.sync_detailed("order/1", client=client)
        assert rejected.status_code == 400
        assert isinstance(rejected.parsed, Error)
        assert rejected.parsed.error_code == "validation.error"


def _refund(value: str) -> CreateRefundRequest:
    return CreateRefundRequest(amount=AmountRequest(currency="RUB", value=value))


async def test_generated_async_client_full_flow(app: Starlette) -> None:
    client = AuthenticatedClient(base_url="http://mock.test", token=SECRET)
    client.set_async_httpx_client(
        httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app),
            base_url="http://mock.test",
            headers={"Authorization": f"Bearer {SECRET}"},
        )
    )
    async with client:
        created = await create_bill.asyncio("b-1", client=client, body=_request("5"))
        assert isinstance(created, Bill)
        assert created.amount.value == "5.00"
        rejected = await reject_bill.asyncio("b-1", client=client)
        assert isinstance(rejected, Bill)
        assert rejected.status.value is BillStatusValue.REJECTED
        missing = await get_bill.asyncio_detailed("nope", client=client)
        assert missing.status_code == 404
        assert isinstance(missing.parsed, Error)
        assert missing.parsed.error_code == "api.invoice.not.found"
        assert missing.parsed.description == "Invoice not found"
        assert missing.parsed.service_name == "invoicing-api"


async def test_response_shape_matches_real_captures(client: httpx.AsyncClient) -> None:
    body = bill_body(customer={}, customFields={}, unknownField=1)
    response = await client.put(f"{BILLS}/b1", json=body, headers=AUTH)
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/json"
    data = response.json()
    assert list(data) == [
        "siteId",
        "billId",
        "amount",
        "status",
        "creationDateTime",
        "expirationDateTime",
        "payUrl",
    ]
    assert data["siteId"] == SITE
    assert data["amount"] == {"currency": "RUB", "value": "10.00"}
    assert data["status"] == {"value": "WAITING", "changedDateTime": "2026-03-01T12:00:00.000+03:00"}
    assert data["creationDateTime"] == "2026-03-01T12:00:00.000+03:00"
    assert data["expirationDateTime"] == FUTURE
    # The injected id factory gave the traceId first, then the invoice uid.
    assert response.headers["x-trace-id"] == "00000000-0000-0000-0000-000000000001"
    assert data["payUrl"] == "http://mock.test/form/?invoice_uid=00000000-0000-0000-0000-000000000002"


async def test_full_body_is_echoed(client: httpx.AsyncClient) -> None:
    customer = {"phone": "79123456789", "email": "a@b.c", "account": "42", "extra": "dropped"}
    fields = {"themeCode": "Yvan-YKaSh", "paySourcesFilter": "qw,card", "apiClient": "node"}
    body = bill_body(comment="Тест", customer=customer, customFields=fields)
    data = (await client.put(f"{BILLS}/b1", json=body, headers=AUTH)).json()
    assert data["customer"] == {"phone": "79123456789", "email": "a@b.c", "account": "42"}
    assert data["customFields"] == fields
    assert data["comment"] == "Тест"
    assert list(data).index("customer") < list(data).index("customFields") < list(data).index("comment")


@pytest.mark.parametrize(
    ("value", "expected"),
    [("10", "10.00"), ("0.5", "0.50"), (10, "10.00"), (10.129, "10.12"), (0.019, "0.01"), (999999.99, "999999.99")],
)
async def test_amount_as_string_or_number_rounded_down(client: httpx.AsyncClient, value: Any, expected: str) -> None:
    response = await client.put(f"{BILLS}/b1", json=bill_body(value), headers=AUTH)
    assert response.status_code == 200, response.text
    assert response.json()["amount"]["value"] == expected


@pytest.mark.parametrize(
    "content_type", ["application/json", "application/json;charset=UTF-8", "application/json; charset=utf-8"]
)
async def test_json_content_types_accepted(client: httpx.AsyncClient, content_type: str) -> None:
    response = await client.put(
        f"{BILLS}/b1",
        content=httpx.Request("PUT", "/", json=bill_body()).content,
        headers={**AUTH, "Content-Type": content_type},
    )
    assert response.status_code == 200


@pytest.mark.parametrize("body", [b"", b"null", b'""'])
async def test_get_and_reject_accept_any_body(client: httpx.AsyncClient, body: bytes) -> None:
    await client.put(f"{BILLS}/b1", json=bill_body(), headers=AUTH)
    got = await client.request("GET", f"{BILLS}/b1", content=body, headers=JSON)
    assert got.status_code == 200
    rejected = await client.post(f"{BILLS}/b1/reject", content=body, headers=JSON)
    assert rejected.status_code == 200
    assert rejected.json()["status"]["value"] == "REJECTED"


async def test_percent_encoded_slash_stays_inside_the_id(client: httpx.AsyncClient) -> None:
    await client.put(f"{BILLS}/a%2Frefunds%2Fx", json=bill_body(), headers=AUTH)
    got = await client.get(f"{BILLS}/a%2Frefunds%2Fx", headers=AUTH)
    assert got.json()["billId"] == "a/refunds/x"
    assert (await client.get(f"{BILLS}/a/refunds/x", headers=AUTH)).json()["errorCode"] == "api.invoice.not.found"


def assert_error(response: httpx.Response, status: int, code: str) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/json"
    body = response.json()
    assert body["errorCode"] == code
    assert body["serviceName"] == "invoicing-api"
    assert body["traceId"] == response.headers["x-trace-id"]
    assert {"description", "userMessage", "dateTime"} <= set(body)
    return body


@pytest.mark.parametrize(
    "headers",
    [{}, {"Authorization": "Bearer wrong"}, {"Authorization": SECRET}, {"Authorization": "Basic " + SECRET}],
)
@pytest.mark.parametrize("body_setting", ["json", "empty"])
async def test_auth_comes_before_existence(clock: FakeClock, headers: dict[str, str], body_setting: str) -> None:
    app = create_app(make_settings(unauthorized_body=body_setting), clock=clock)
    client = httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://mock.test")
    await client.put(f"{BILLS}/b1", json=bill_body(), headers=AUTH)
    for method, url in [
        ("GET", f"{BILLS}/b1"),
        ("GET", f"{BILLS}/missing"),
        ("PUT", f"{BILLS}/b2"),
        ("POST", f"{BILLS}/b1/reject"),
        ("PUT", f"{BILLS}/b1/refunds/r"),
        ("GET", f"{BILLS}/missing/refunds/r"),
        ("GET", f"{BILLS}/{'x' * 300}"),
        ("POST", "/_mock/bills/b1/pay"),
        ("GET", "/_mock/notifications"),
        ("POST", "/_mock/reset"),
        ("POST", "/_mock/clock/advance"),
    ]:
        response = await client.request(method, url, headers={**headers, "Content-Type": "text/plain"}, content=b"{")
        if body_setting == "empty":  # the default: every 401 is the same empty answer
            assert (response.status_code, response.content) == (401, b"")
            assert response.headers["X-Trace-Id"]
            continue
        body = assert_error(response, 401, "auth.unauthorized")
        assert body["description"] == "Неверные аутентификационные данные"
    await client.aclose()


async def test_bearer_scheme_is_case_insensitive(client: httpx.AsyncClient) -> None:
    response = await client.put(f"{BILLS}/b1", json=bill_body(), headers={"Authorization": f"bearer  {SECRET} "})
    assert response.status_code == 200


async def test_another_merchants_bill_is_not_found(client: httpx.AsyncClient) -> None:
    await client.put(f"{BILLS}/b1", json=bill_body(), headers=AUTH)
    await client.post("/_mock/bills/b1/pay", headers=AUTH)
    assert_error(await client.get(f"{BILLS}/b1", headers=OTHER_AUTH), 404, "api.invoice.not.found")
    assert_error(await client.post(f"{BILLS}/b1/reject", headers=OTHER_AUTH), 404, "api.invoice.not.found")
    refund = {"amount": {"value": "1.00", "currency": "RUB"}}
    assert_error(
        await client.put(f"{BILLS}/b1/refunds/r", json=refund, headers=OTHER_AUTH), 404, "api.invoice.not.found"
    )


async def test_not_found_codes(client: httpx.AsyncClient) -> None:
    body = assert_error(await client.get(f"{BILLS}/nope", headers=AUTH), 404, "api.invoice.not.found")
    assert body["userMessage"] == "Invoice not found"
    assert_error(await client.post(f"{BILLS}/nope/reject", headers=AUTH), 404, "api.invoice.not.found")
    assert_error(await client.get(f"{BILLS}/nope/refunds/r", headers=AUTH), 404, "api.invoice.not.found")
    await client.put(f"{BILLS}/b1", json=bill_body(), headers=AUTH)
    assert_error(await client.get(f"{BILLS}/b1/refunds/r", headers=AUTH), 404, "api.refund.not.found")
    assert_error(await client.get("/partner/bill/v2/bills/b1", headers=AUTH), 404, "http.url.not.found")
    assert_error(await client.get("/", headers=AUTH), 404, "http.url.not.found")
    assert_error(await client.post("/_mock/bills/nope/pay", headers=AUTH), 404, "api.invoice.not.found")


@pytest.mark.parametrize(
    ("method", "url", "allow"),
    [
        ("DELETE", f"{BILLS}/b1", "GET, HEAD, PUT"),
        ("POST", f"{BILLS}/b1", "GET, HEAD, PUT"),
        ("GET", f"{BILLS}/b1/reject", "POST"),
        ("PATCH", f"{BILLS}/b1/refunds/r1", "GET, HEAD, PUT"),
        ("PUT", "/_mock/health", "GET, HEAD"),
        # The payment form a bill's payUrl names: the pages' router refuses it, with QIWI's body, never a 500.
        ("DELETE", "/form/?invoice_uid=x", "HEAD, GET"),
    ],
)
async def test_wrong_method_is_405_with_allow(client: httpx.AsyncClient, method: str, url: str, allow: str) -> None:
    response = await client.request(method, url, headers=AUTH)
    assert_error(response, 405, "http.method.not.supported")
    # The pages' router (Starlette) lists its methods in no fixed order: compare them as a set.
    assert set(response.headers["allow"].split(", ")) == set(allow.split(", "))


@pytest.mark.parametrize(
    ("content_type", "url"),
    [
        (None, f"{BILLS}/b1"),
        ("text/plain", f"{BILLS}/b1"),
        ("application/json; charset=latin-1", f"{BILLS}/b1/refunds/r"),
    ],
)
async def test_non_json_body_is_415(client: httpx.AsyncClient, content_type: str | None, url: str) -> None:
    headers = dict(AUTH) if content_type is None else {**AUTH, "Content-Type": content_type}
    assert_error(await client.put(url, content=b"{}", headers=headers), 415, "http.media.type.not.supported")


@pytest.mark.parametrize(
    "raw",
    [
        b"",
        b"{",
        b"null",
        b"[]",
        b'"x"',
        b"\xff\xfe",
        b'{"amount": NaN}',
        b'{"amount": {"value": "1.00", "currency": "RUB"}, "expirationDateTime": "\\ud800"}',
        b'{"amount": {"value": true, "currency": "RUB"}, "expirationDateTime": "2030-01-01T00:00:00Z"}',
        b'{"amount": {"value": "1.00", "currency": 643}, "expirationDateTime": "2030-01-01T00:00:00Z"}',
        b'{"amount": "1.00", "expirationDateTime": "2030-01-01T00:00:00Z"}',
        b'{"amount": {"value": 1e400, "currency": "RUB"}, "expirationDateTime": "2030-01-01T00:00:00Z"}',
        b"[" * 100_000,
        b'{"x": "' + b"a" * (1 << 21) + b'"}',
    ],
)
async def test_unreadable_bodies_are_conversion_failures(client: httpx.AsyncClient, raw: bytes) -> None:
    response = await client.put(f"{BILLS}/b1", content=raw, headers=JSON)
    if raw.startswith(b'{"amount": {"value": 1e400'):
        # A huge JSON number is readable, just out of range: that is a validation error.
        assert_error(response, 400, "validation.error")
        return
    body = assert_error(response, 400, "http.message.conversion.failed")
    assert body["description"] == "Bad request"


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"amount": {"value": "1.00", "currency": "RUB"}}, "expirationDateTime"),
        ({"expirationDateTime": FUTURE}, "amount"),
        (bill_body("0"), "amount.value"),
        (bill_body("0.00"), "amount.value"),
        (bill_body("-1"), "amount.value"),
        (bill_body("1.001"), "amount.value"),
        (bill_body("1e3"), "amount.value"),
        (bill_body(0.001), "amount.value"),
        (bill_body(1000000), "amount.value"),
        (bill_body(currency="rub"), "amount.currency"),
        (bill_body(currency="USD"), "amount.currency"),
        (bill_body(comment="x" * 256), "comment"),
        (bill_body(customFields={"k": "v" * 256}), "customFields.k"),
        ({**bill_body(), "expirationDateTime": "2030-04-13T14:30:00"}, "expirationDateTime"),
        ({**bill_body(), "expirationDateTime": "2030-04-13T14:30:00+03"}, "expirationDateTime"),
        ({**bill_body(), "expirationDateTime": "2020-04-13T14:30:00+03:00"}, "expirationDateTime"),
        ({**bill_body(), "expirationDateTime": "0000-01-01T00:00:00Z"}, "expirationDateTime"),
    ],
)
async def test_invalid_values_are_validation_errors(
    client: httpx.AsyncClient, body: dict[str, Any], field: str
) -> None:
    response = await client.put(f"{BILLS}/b1", json=body, headers=AUTH)
    error = assert_error(response, 400, "validation.error")
    assert field in error["cause"], error
    assert all(isinstance(m, str) for messages in error["cause"].values() for m in messages)
    assert (await client.get(f"{BILLS}/b1", headers=AUTH)).status_code == 404


async def test_path_parameter_length(client: httpx.AsyncClient) -> None:
    assert (await client.put(f"{BILLS}/{'x' * 200}", json=bill_body(), headers=AUTH)).status_code == 200
    for url in (f"{BILLS}/{'x' * 201}", f"{BILLS}/b/refunds/{'r' * 201}", f"{BILLS}/%FF%FE"):
        body = assert_error(await client.get(url, headers=AUTH), 400, "validation.error")
        assert set(body["cause"]) <= {"billId", "refundId"}
    assert_error(await client.get(f"{BILLS}/", headers=AUTH), 400, "validation.error")


async def test_strict_idempotency_answers_409(clock: FakeClock) -> None:
    app = create_app(make_settings(strict_idempotency=True), clock=clock)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as client:
        assert (await client.put(f"{BILLS}/b1", json=bill_body(), headers=AUTH)).status_code == 200
        assert (await client.put(f"{BILLS}/b1", json=bill_body(), headers=AUTH)).status_code == 200
        assert_error(
            await client.put(f"{BILLS}/b1", json=bill_body("2"), headers=AUTH), 409, "api.invoice.already.exists"
        )


async def test_repeated_create_returns_stored_bill(client: httpx.AsyncClient, clock: FakeClock) -> None:
    first = (await client.put(f"{BILLS}/b1", json=bill_body(), headers=AUTH)).json()
    clock.advance(10)
    second = await client.put(f"{BILLS}/b1", json=bill_body("99"), headers=AUTH)
    assert second.status_code == 200
    assert second.json() == first


async def test_refund_errors(client: httpx.AsyncClient) -> None:
    refund = {"amount": {"value": "4.00", "currency": "RUB"}}
    await client.put(f"{BILLS}/b1", json=bill_body(), headers=AUTH)
    body = assert_error(await client.put(f"{BILLS}/b1/refunds/r1", json=refund, headers=AUTH), 400, "validation.error")
    assert "status" in body["cause"]
    await client.post("/_mock/bills/b1/pay", headers=AUTH)
    first = await client.put(f"{BILLS}/b1/refunds/r1", json=refund, headers=AUTH)
    assert first.json()["status"] == "PARTIAL"
    assert (await client.put(f"{BILLS}/b1/refunds/r1", json=refund, headers=AUTH)).json() == first.json()
    other = {"amount": {"value": "5.00", "currency": "RUB"}}
    assert_error(await client.put(f"{BILLS}/b1/refunds/r1", json=other, headers=AUTH), 409, "api.refund.already.exists")
    too_much = {"amount": {"value": "6.01", "currency": "RUB"}}
    body = assert_error(
        await client.put(f"{BILLS}/b1/refunds/r2", json=too_much, headers=AUTH), 400, "refund.incorrect.amount"
    )
    assert body["description"] == "Неверная сумма возврата"
    kzt = {"amount": {"value": "1.00", "currency": "KZT"}}
    assert_error(await client.put(f"{BILLS}/b1/refunds/r2", json=kzt, headers=AUTH), 400, "refund.incorrect.amount")
    assert_error(await client.put(f"{BILLS}/b1/refunds/r2", json={}, headers=AUTH), 400, "validation.error")
    rest = {"amount": {"value": 6, "currency": "RUB"}}
    last = await client.put(f"{BILLS}/b1/refunds/r2", json=rest, headers=AUTH)
    assert last.json() == {
        "amount": {"currency": "RUB", "value": "6.00"},
        "dateTime": "2026-03-01T12:00:00.000+03:00",
        "refundId": "r2",
        "status": "FULL",
    }


async def test_reject_rules(client: httpx.AsyncClient) -> None:
    await client.put(f"{BILLS}/b1", json=bill_body(), headers=AUTH)
    first = await client.post(f"{BILLS}/b1/reject", headers=AUTH)
    assert first.json()["status"]["value"] == "REJECTED"
    again = await client.post(f"{BILLS}/b1/reject", headers=AUTH)
    assert again.status_code == 200
    assert again.json() == first.json()
    body = assert_error(await client.post("/_mock/bills/b1/pay", headers=AUTH), 400, "validation.error")
    assert body["cause"] == {"status": ["cannot pay a REJECTED bill"]}


async def test_trace_id_in_header_body_and_single_log_line(
    client: httpx.AsyncClient, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.INFO, logger="qiwi_bill_mock.access"):
        ok = await client.put(f"{BILLS}/b1", json=bill_body(), headers=AUTH)
        error = await client.get(f"{BILLS}/missing", headers=AUTH)
    lines = [r.getMessage() for r in caplog.records if r.name == "qiwi_bill_mock.access"]
    assert len(lines) == 2
    assert ok.headers["x-trace-id"] in lines[0]
    assert error.json()["traceId"] == error.headers["x-trace-id"]
    assert error.headers["x-trace-id"] in lines[1]
    assert " 404 " in lines[1]
    assert SECRET not in caplog.text


async def test_controls_pay_expire_clock_notifications_reset(client: httpx.AsyncClient) -> None:
    assert (await client.get("/_mock/health")).json()["status"] == "ok"
    await client.put(f"{BILLS}/b1", json=bill_body(), headers=AUTH)
    await client.put(f"{BILLS}/b2", json=bill_body(), headers=AUTH)
    await client.put(
        f"{BILLS}/b3", json={**bill_body(), "expirationDateTime": "2026-03-01T13:00:00+03:00"}, headers=AUTH
    )
    paid = await client.post("/_mock/bills/b1/pay", json={"paySource": "card"}, headers=AUTH)
    assert paid.json()["status"]["value"] == "PAID"
    assert_error(
        await client.post("/_mock/bills/b2/pay", json={"paySource": "x"}, headers=AUTH), 400, "validation.error"
    )
    assert_error(
        await client.post("/_mock/bills/b2/pay", content=b"{", headers=JSON), 400, "http.message.conversion.failed"
    )
    expired = await client.post("/_mock/bills/b2/expire", headers=AUTH)
    assert expired.json()["status"]["value"] == "EXPIRED"
    advanced = await client.post("/_mock/clock/advance", json={"seconds": 3600}, headers=AUTH)
    assert advanced.json() == {"now": "2026-03-01T13:00:00.000+03:00"}
    assert (await client.get(f"{BILLS}/b3", headers=AUTH)).json()["status"] == {
        "value": "EXPIRED",
        "changedDateTime": "2026-03-01T13:00:00.000+03:00",
    }
    for bad in ({}, {"seconds": -1}, {"seconds": "1"}, {"seconds": True}):
        assert_error(await client.post("/_mock/clock/advance", json=bad, headers=AUTH), 400, "validation.error")
    listed = await client.get("/_mock/notifications", headers=AUTH)
    # No notify URL is configured for this merchant: one empty page, the last.
    assert listed.json() == {"deliveries": [], "limit": 1000, "nextAfter": None}
    assert (await client.post("/_mock/reset", headers=AUTH)).json() == {"status": "reset"}
    assert (await client.get(f"{BILLS}/b1", headers=AUTH)).status_code == 404


async def test_the_401_body_is_empty_by_default(client: httpx.AsyncClient) -> None:
    # qiwi-api-semantics.md ("401 can have an empty body"), Java SDK #26 and its testClientWithIncorrectSecretKey.
    response = await client.get(f"{BILLS}/b1")
    assert (response.status_code, response.content) == (401, b"")


@pytest.mark.parametrize(("old", "new"), [(True, "empty"), (False, "json")])
async def test_the_former_empty_unauthorized_body_setting_still_works(clock: FakeClock, old: bool, new: str) -> None:
    with pytest.warns(DeprecationWarning, match="unauthorized_body"):
        settings = make_settings(empty_unauthorized_body=old)
    assert settings.unauthorized_body == new
    assert Settings.from_json(settings.to_json()).unauthorized_body == new
    app = create_app(settings, clock=clock)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as client:
        response = await client.get(f"{BILLS}/b1")
        assert response.status_code == 401
        assert (response.content == b"") is old


async def _broken_client(*broken: str) -> tuple[httpx.AsyncClient, Starlette]:
    app = create_app(make_settings(broken=frozenset(broken)), clock=FakeClock(), id_factory=sequential_ids())
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t"), app


async def test_broken_behaviours() -> None:
    client, _ = await _broken_client(*qiwi_bill_mock.BROKEN_BEHAVIOURS)
    async with client:
        created = await client.put(f"{BILLS}/b1", json=bill_body(), headers=AUTH)
        assert created.status_code == 201
        assert created.json()["amount"]["value"] == 10.0
        assert created.json()["creationDateTime"] == "2026-03-01T12:00:00.000"
        assert (await client.get(f"{BILLS}/b1")).status_code == 200  # no key at all
        missing = await client.get(f"{BILLS}/nope", headers=AUTH)
        assert "traceId" not in missing.json()
        await client.post("/_mock/bills/b1/pay", headers=AUTH)
        refund = await client.put(
            f"{BILLS}/b1/refunds/r", json={"amount": {"value": "1", "currency": "RUB"}}, headers=AUTH
        )
        assert refund.status_code == 500


def test_unknown_broken_behaviour_is_a_startup_error() -> None:
    with pytest.raises(qiwi_bill_mock.SettingsError, match="no_such_thing"):
        Settings(broken=frozenset({"no_such_thing"}))


async def test_demo_settings_work_out_of_the_box() -> None:
    app = create_app()
    merchant = app.state.ctx.settings.merchants[0]
    assert SECRET not in repr(merchant)
    assert merchant.secret_key not in repr(merchant)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as client:
        headers = {"Authorization": f"Bearer {merchant.secret_key}"}
        response = await client.put(f"{BILLS}/b1", json=bill_body(Decimal("1.5").__float__()), headers=headers)
        assert response.json()["siteId"] == "demo-00"


@pytest.mark.parametrize("value", ["0", "0.00", "-1", 0, -5])
async def test_refund_of_zero_or_less_is_incorrect_amount(client: httpx.AsyncClient, value: Any) -> None:
    await client.put(f"{BILLS}/b1", json=bill_body(), headers=AUTH)
    await client.post("/_mock/bills/b1/pay", headers=AUTH)
    response = await client.put(
        f"{BILLS}/b1/refunds/r", json={"amount": {"value": value, "currency": "RUB"}}, headers=AUTH
    )
    assert_error(response, 400, "refund.incorrect.amount")


async def test_unexpected_failure_is_a_qiwi_500_with_trace_id(
    app: Starlette, client: httpx.AsyncClient, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    def explode(*_: Any) -> None:
        raise RuntimeError("disk on fire")

    monkeypatch.setattr(app.state.ctx.store, "bill_version", explode)
    with caplog.at_level(logging.ERROR, logger="qiwi_bill_mock"):
        response = await client.get(f"{BILLS}/b1", headers=AUTH)
    body = assert_error(response, 500, "internal.invoicing.error")
    assert body["traceId"] in caplog.text


def test_every_module_exports_what_it_declares() -> None:
    import importlib

    modules = ("accesslog", "api", "app", "context", "dbfile", "errors", "models", "notifier", "rules", "service")
    for name in (*modules, "settings", "storage", "store", "validation", "wire", "__main__"):
        module = importlib.import_module(f"qiwi_bill_mock.{name}")
        for exported in module.__all__:
            assert hasattr(module, exported), (name, exported)


@pytest.mark.parametrize(
    "body",
    [{"amount": {"currency": "RUB"}}, {"amount": {"value": None, "currency": "RUB"}}, {"amount": {}}, {"amount": 1}],
)
async def test_refund_body_without_a_value_is_a_client_error(client: httpx.AsyncClient, body: dict[str, Any]) -> None:
    await client.put(f"{BILLS}/b1", json=bill_body(), headers=AUTH)
    response = await client.put(f"{BILLS}/b1/refunds/r", json=body, headers=AUTH)
    assert response.status_code == 400


async def test_clock_cannot_be_advanced_out_of_range(client: httpx.AsyncClient) -> None:
    century = {"seconds": 100 * 365 * 86400}
    codes = [(await client.post("/_mock/clock/advance", json=century, headers=AUTH)).status_code for _ in range(75)]
    assert codes.count(200) == 69
    assert set(codes[69:]) == {400}
    assert (await client.get(f"{BILLS}/b1", headers=AUTH)).status_code == 404
