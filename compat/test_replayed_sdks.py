"""The exact requests of QIWI's Java, .NET and PHP SDKs replayed against the mock, read as each SDK reads them.

One `qiwi-bill-mock --port 0` (defaults, notifications to a local receiver) serves the module. Each test
sends one SDK's bytes and headers (compat/replay.py) with httpx and asserts what that SDK's caller would
get: Java's one-line, no-unknown-member Jackson mapping and its exception types, .NET's strict `.fff`
dates, PHP's error-by-`errorCode` rule. Sources: ../shared/reference/qiwi-sdks.md and issue 13.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from compat.conftest import Receiver
from compat.replay import DOTNET, JAVA, PHP, SDKS, Outcome, Sdk
from qiwi_bill_mock.testing import MockProcess

SECRET = "compat-replay-secret-key"
BILLS = "/partner/bill/v1/bills"


def cases(operation: str, sdks: tuple[Sdk, ...] = SDKS) -> list[Any]:
    """One parameter per SDK, each one cell (client, operation) of compat/results.md."""
    return [
        pytest.param(sdk, id=sdk.key, marks=pytest.mark.compat(client=sdk.name, operation=operation)) for sdk in sdks
    ]


@pytest.fixture(scope="module")
def mock(receiver: Receiver) -> Iterator[MockProcess]:
    with MockProcess("--secret-key", SECRET, "--notify-url", receiver.url, "--log-level", "warning") as process:
        yield process


@pytest.fixture(scope="module")
def http(mock: MockProcess) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=mock.url, trust_env=False, timeout=30) as client:
        yield client


def _id(sdk: Sdk, what: str) -> str:
    return f"{sdk.key}-{what}-{uuid.uuid4().hex[:12]}"


def create(http: httpx.Client, sdk: Sdk, bill_id: str, body: bytes | None = None) -> httpx.Response:
    content = body if body is not None else sdk.create_body("10.00", sdk.expiration)
    return http.put(f"{BILLS}/{bill_id}", headers=sdk.headers(SECRET, True), content=content)


def get(http: httpx.Client, sdk: Sdk, path: str, key: str = SECRET) -> httpx.Response:
    return http.request("GET", path, headers=sdk.headers(key, False), content=sdk.get_body)


def reject(http: httpx.Client, sdk: Sdk, bill_id: str) -> httpx.Response:
    headers = sdk.headers(SECRET, sdk.reject_json)
    return http.request("POST", f"{BILLS}/{bill_id}/reject", headers=headers, content=sdk.reject_body)


def refund(http: httpx.Client, sdk: Sdk, bill_id: str, refund_id: str, value: str) -> httpx.Response:
    path = f"{BILLS}/{bill_id}/refunds/{refund_id}"
    return http.put(path, headers=sdk.headers(SECRET, True), content=sdk.refund_body(value))


def paid_bill(http: httpx.Client, sdk: Sdk, what: str) -> str:
    """A bill the SDK created, then paid through the mock's control (not an SDK call); its id."""
    bill_id = _id(sdk, what)
    read_ok(sdk, create(http, sdk, bill_id))
    response = http.post(f"/_mock/bills/{bill_id}/pay", headers={"Authorization": f"Bearer {SECRET}"})
    assert response.status_code == 200, response.text
    return bill_id


def read_ok(sdk: Sdk, response: httpx.Response, model: str = "bill") -> Any:
    """The value the SDK hands its caller for a 200; fails with what the SDK would raise instead."""
    assert response.status_code == 200, response.text
    if sdk is JAVA:
        # Java reads only the first line: the answer must be one line of JSON.
        assert b"\n" not in response.content
    outcome = sdk.read(response, model)
    assert outcome.kind == "ok", outcome
    return outcome.value


@pytest.mark.parametrize("sdk", cases("create"))
def test_create(http: httpx.Client, sdk: Sdk) -> None:
    bill_id = _id(sdk, "create")
    bill = read_ok(sdk, create(http, sdk, bill_id))
    assert bill["billId"] == bill_id
    assert bill["status"]["value"] == "WAITING"
    assert bill["amount"] == {"currency": "RUB", "value": "10.00"}
    assert bill["expirationDateTime"] == sdk.expiration  # echoed at the precision sent
    fingerprint = {"java": ("java_sdk", "1.5.0"), "dotnet": ("dotnet_sdk", "0.1.5"), "php": ("php_sdk", "0.2.2")}
    client, version = fingerprint[sdk.key]
    expected_fields = {"apiClient": client, "apiClientVersion": version}
    if sdk is PHP:
        expected_fields["city"] = "Москва"
        assert bill["comment"] == "a/b Привет"  # `\/` and raw UTF-8 read as PHP meant them
    else:
        assert bill["customer"] == {"email": "buyer@example.com", "account": "buyer-1", "phone": "79123456789"}
    # Java's `"checkoutReferer":null` and .NET's `"themeCode":null` are absent members, not stored nulls.
    assert bill["customFields"] == expected_fields


@pytest.mark.parametrize("sdk", cases("create_nulls"))
def test_create_with_the_nulls_the_sdk_sends(http: httpx.Client, sdk: Sdk) -> None:
    bill_id = _id(sdk, "nulls")
    bill = read_ok(sdk, create(http, sdk, bill_id, sdk.create_body_with_nulls("1.00", sdk.expiration)))
    # Java's live test testCreateAndCancelBill: customer = null, and the bill is WAITING.
    assert bill["status"]["value"] == "WAITING"
    assert "comment" not in bill
    if sdk is DOTNET:
        assert bill["customer"] == {"email": "buyer@example.com"}  # account/phone null = absent
    else:
        assert "customer" not in bill


@pytest.mark.parametrize("sdk", cases("create_repeated"))
def test_repeated_create_returns_the_stored_bill(http: httpx.Client, sdk: Sdk) -> None:
    bill_id = _id(sdk, "again")
    first = create(http, sdk, bill_id)
    again = create(http, sdk, bill_id)
    assert read_ok(sdk, again) == read_ok(sdk, first)


@pytest.mark.parametrize("sdk", cases("get"))
def test_get(http: httpx.Client, sdk: Sdk) -> None:
    bill_id = _id(sdk, "get")
    created = read_ok(sdk, create(http, sdk, bill_id))
    assert read_ok(sdk, get(http, sdk, f"{BILLS}/{bill_id}")) == created


@pytest.mark.parametrize("sdk", cases("reject"))
def test_reject(http: httpx.Client, sdk: Sdk) -> None:
    bill_id = _id(sdk, "reject")
    read_ok(sdk, create(http, sdk, bill_id))
    bill = read_ok(sdk, reject(http, sdk, bill_id))
    assert bill["status"]["value"] == "REJECTED"


@pytest.mark.parametrize("sdk", cases("notification"))
def test_notification_verifies_with_the_sdks_algorithm(http: httpx.Client, receiver: Receiver, sdk: Sdk) -> None:
    bill_id = paid_bill(http, sdk, "notify")
    headers, body = receiver.wait_for(bill_id)
    signature = headers["x-api-signature-sha256"]
    assert body["bill"]["status"]["value"] == "PAID"
    assert sdk.verify(signature, body, SECRET)
    tampered = json.loads(json.dumps(body))
    tampered["bill"]["amount"]["value"] = "10000.00"
    assert not sdk.verify(signature, tampered, SECRET)
    assert not sdk.verify(signature, body, SECRET + "x")


@pytest.mark.parametrize("sdk", cases("refund"))
def test_refunds(http: httpx.Client, sdk: Sdk) -> None:
    bill_id = paid_bill(http, sdk, "refund")
    partial = read_ok(sdk, refund(http, sdk, bill_id, "r1", "1.50"), "refund")
    assert partial["status"] == "PARTIAL"
    assert partial["amount"] == {"currency": "RUB", "value": "1.50"}
    assert read_ok(sdk, refund(http, sdk, bill_id, "r1", "1.50"), "refund") == partial
    full = read_ok(sdk, refund(http, sdk, bill_id, "r2", "8.50"), "refund")
    assert full["status"] == "FULL"


@pytest.mark.parametrize("sdk", cases("get_refund"))
def test_get_refund(http: httpx.Client, sdk: Sdk) -> None:
    bill_id = paid_bill(http, sdk, "getrefund")
    made = read_ok(sdk, refund(http, sdk, bill_id, "r1", "2.00"), "refund")
    assert read_ok(sdk, get(http, sdk, f"{BILLS}/{bill_id}/refunds/r1"), "refund") == made


@pytest.mark.parametrize("sdk", cases("error_401"))
def test_wrong_key(http: httpx.Client, sdk: Sdk) -> None:
    response = get(http, sdk, f"{BILLS}/{_id(sdk, 'any')}", key="not-the-key")
    assert response.status_code == 401
    assert response.content == b""
    outcome = sdk.read(response, "bill")
    expected = {
        # Java's live test testClientWithIncorrectSecretKey expects exactly this (java-sdk#26: "empty body, HTTP
        # status 401"); a JSON body would map to ErrorResponse and raise BillPaymentServiceException instead.
        "java": Outcome("BadResponseException", message="empty body, HTTP status 401"),
        "dotnet": Outcome("BadResponseException", message="Empty body, HTTP status 401"),
        # PHP does not check the status: a body-less answer returns `true` (its known behaviour, php-sdk #25).
        "php": Outcome("ok", True),
    }
    assert outcome == expected[sdk.key]


@pytest.mark.parametrize("sdk", cases("error_404"))
def test_unknown_bill(http: httpx.Client, sdk: Sdk) -> None:
    response = get(http, sdk, f"{BILLS}/{_id(sdk, 'missing')}")
    assert response.status_code == 404
    if sdk is JAVA:
        # BillsPaymentsSdkNegativeScenariosTest: getBillInfo("nonexistent") → BillPaymentServiceException with
        # errorCode api.invoice.not.found, so the body must be exactly the 6-member ErrorResponse, on one line.
        outcome = sdk.read(response, "bill")
        assert outcome.kind == "BillPaymentServiceException", outcome
        assert outcome.message == "api.invoice.not.found"
    elif sdk is DOTNET:
        # Read as .NET's ErrorResponse: every member present, dateTime in its strict format.
        outcome = sdk.read(response, "error")
        assert outcome.kind == "ok", outcome
        assert outcome.value["errorCode"] == "api.invoice.not.found"
        assert set(outcome.value) >= {"serviceName", "errorCode", "description", "userMessage", "dateTime", "traceId"}
    else:
        assert sdk.read(response, "bill") == Outcome("BillPaymentsException", 404, message="Invoice not found")


@pytest.mark.parametrize("sdk", cases("error_400"))
def test_invalid_create(http: httpx.Client, sdk: Sdk) -> None:
    response = create(http, sdk, _id(sdk, "bad"), sdk.invalid_create_body(sdk.expiration))
    assert response.status_code == 400
    assert response.json()["errorCode"] == "validation.error"
    outcome = sdk.read(response, "bill")
    if sdk is JAVA:
        # The negative live test: a null amount → HTTP 400 and BadResponseException (the body carries `cause`,
        # which Java's 6-member ErrorResponse cannot map). Null is refused as "must not be null", like a missing one.
        assert response.json()["cause"] == {"amount": ["must not be null"]}
        assert outcome.kind == "BadResponseException", outcome
    elif sdk is DOTNET:
        assert sdk.read(response, "error").kind == "ok"
    else:
        assert outcome == Outcome("BillPaymentsException", 400, message="Validation error")
