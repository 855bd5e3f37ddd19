"""QIWI's official Node SDK (`@qiwi/bill-payments-node-js-sdk` 3.2.1 from npm, unmodified) against the mock.

`compat/node/sdk_flow.js` drives the SDK through one merchant's flow against `qiwi-bill-mock --port 0`
(started with its defaults) and prints a report: what each SDK call returned or threw, and every request
the SDK put on the wire. Each test below asserts one step, as the SDK's user would see it. Facts about
the SDK are from ../shared/reference/qiwi-sdks.md (sections 1.1, 4.1, 4.3, 5).
"""

from __future__ import annotations

import json
import os
import re
import subprocess
from collections.abc import Mapping
from typing import Any

import pytest

from compat.conftest import NODE_DIR
from qiwi_bill_mock.testing import MockProcess, bind_free_port

CLIENT = "Node SDK 3.2.1 (npm package, run)"
SECRET = "compat-node-secret-key"


def compat(operation: str) -> pytest.MarkDecorator:
    return pytest.mark.compat(client=CLIENT, operation=operation)


@pytest.fixture(scope="module")
def report(node: str) -> dict[str, Any]:
    """Run the SDK flow once against a fresh mock; the script's JSON report."""
    sock = bind_free_port()
    notify_port = sock.getsockname()[1]
    sock.close()  # the script binds it; nothing else on loopback races for a just-freed ephemeral port
    with MockProcess(
        "--secret-key", SECRET, "--notify-url", f"http://127.0.0.1:{notify_port}/notify", "--log-level", "warning"
    ) as mock:
        env = {"QIWI_MOCK_URL": mock.url, "QIWI_SECRET_KEY": SECRET, "QIWI_NOTIFY_PORT": str(notify_port)}
        run = subprocess.run(
            [node, "sdk_flow.js"],
            cwd=NODE_DIR,
            env={**_without_proxies(os.environ), **env},
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
    assert run.returncode == 0, run.stderr + mock.output
    parsed: dict[str, Any] = json.loads(run.stdout)
    return parsed


def _without_proxies(environ: Mapping[str, str]) -> dict[str, str]:
    """The environment without proxy settings: `request` honours HTTP_PROXY even for the mock on loopback."""
    return {k: v for k, v in environ.items() if k.lower() not in ("http_proxy", "https_proxy", "all_proxy")}


def _step(report: dict[str, Any], name: str) -> dict[str, Any]:
    steps: list[dict[str, Any]] = [s for s in report["steps"] if s["name"] == name]
    (step,) = steps
    return step


def _ok(report: dict[str, Any], name: str) -> dict[str, Any]:
    step = _step(report, name)
    assert step["ok"], step
    result: dict[str, Any] = step["result"]
    return result


def _rejected(report: dict[str, Any], name: str) -> dict[str, Any]:
    """The error the SDK threw: request-promise's StatusCodeError (`.statusCode`, `.error` = parsed body)."""
    step = _step(report, name)
    assert not step["ok"], step
    error: dict[str, Any] = step["error"]
    assert error["name"] == "StatusCodeError", error
    return error


def _wire(report: dict[str, Any], method: str, suffix: str) -> list[dict[str, Any]]:
    """The merchant's own requests (right key) of `method` to a URL ending in `suffix`."""
    return [
        w
        for w in report["wire"]
        if w["method"] == method and w["uri"].endswith(suffix) and w["headers"]["Authorization"] == f"Bearer {SECRET}"
    ]


def test_the_pinned_sdk_version_ran(report: dict[str, Any]) -> None:
    assert report["sdkVersion"] == "3.2.1"


@compat("create")
def test_create(report: dict[str, Any]) -> None:
    bill = _ok(report, "create")
    assert bill["status"]["value"] == "WAITING"
    assert bill["amount"] == {"currency": "RUB", "value": "10.00"}
    assert bill["customFields"] == {"apiClient": "node_sdk", "apiClientVersion": "3.2.1"}
    assert bill["customer"] == {"email": "buyer@example.com", "account": "buyer-1"}
    # The SDK appends `&successUrl=` by string concatenation: payUrl must already carry a query.
    assert re.search(
        r"/form/?\?invoice_uid=[0-9a-f-]+&successUrl=https%3A%2F%2Fmerchant.example%2Fthanks$", bill["payUrl"]
    )
    # What went out: the SDK's own header spelling and body (getLifetimeByDay: local offset, no fraction).
    (put, *_) = _wire(report, "PUT", bill["billId"])
    assert put["headers"]["Content-Type"] == "application/json;charset=UTF-8"
    assert put["body"]["amount"] == {"currency": "RUB", "value": "10.00"}
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d[+-]\d\d:\d\d", put["body"]["expirationDateTime"])
    assert bill["expirationDateTime"] == put["body"]["expirationDateTime"]


@compat("create_repeated")
def test_repeated_create_returns_the_stored_bill(report: dict[str, Any]) -> None:
    first = _ok(report, "create")
    again = _ok(report, "create_repeated")
    assert again == first
    assert len(_wire(report, "PUT", first["billId"])) == 2


@compat("get")
def test_get(report: dict[str, Any]) -> None:
    bill = _ok(report, "get")
    created = _ok(report, "create")
    assert bill["billId"] == created["billId"]
    assert bill["status"]["value"] == "WAITING"
    # GET carries the literal JSON body `null` (request with json: true), which the mock must accept.
    (get,) = _wire(report, "GET", created["billId"])
    assert get["body"] is None
    assert get["json"] is True


@compat("reject")
def test_reject(report: dict[str, Any]) -> None:
    bill = _ok(report, "reject")
    assert bill["status"]["value"] == "REJECTED"
    (post,) = _wire(report, "POST", f"{bill['billId']}/reject")
    assert post["body"] is None


@compat("pay")
def test_pay_through_the_mock_controls(report: dict[str, Any]) -> None:
    assert _ok(report, "pay_via_mock")["status"]["value"] == "PAID"


@compat("notification")
def test_notification_verified_by_the_sdks_own_check(report: dict[str, Any]) -> None:
    note = _ok(report, "notification")
    assert note["body"]["bill"]["billId"] == _ok(report, "create")["billId"]
    assert note["body"]["bill"]["status"]["value"] == "PAID"
    assert re.fullmatch(r"[0-9a-f]{64}", note["signature"])
    assert note["verified"] is True  # checkNotificationSignature(signature, body, secret)
    assert note["tamperedVerified"] is False
    assert note["wrongKeyVerified"] is False


@compat("refund")
def test_refunds_partial_repeated_and_full(report: dict[str, Any]) -> None:
    partial = _ok(report, "refund_partial")
    assert partial["status"] == "PARTIAL"
    assert partial["amount"] == {"currency": "RUB", "value": "1.50"}
    assert _ok(report, "refund_repeated") == partial
    rest = _ok(report, "refund_rest")
    assert rest["status"] == "FULL"
    assert rest["amount"] == {"currency": "RUB", "value": "8.50"}
    assert set(partial) == {"amount", "dateTime", "refundId", "status"}


@compat("get_refund")
def test_get_refund(report: dict[str, Any]) -> None:
    assert _ok(report, "get_refund") == _ok(report, "refund_partial")


@compat("error_401")
def test_wrong_key_is_a_401_without_body(report: dict[str, Any]) -> None:
    error = _rejected(report, "error_401")
    assert error["statusCode"] == 401
    # QIWI's empty 401: request-promise leaves `.error` undefined (qiwi-sdks.md 4.3).
    assert error["bodyIsUndefined"] is True


@compat("error_404")
def test_unknown_bill_is_the_404_the_sdks_live_tests_expect(report: dict[str, Any]) -> None:
    for name in ("error_404", "error_404_refund"):
        error = _rejected(report, name)
        assert error["statusCode"] == 404
        # The exact members the Node SDK's live tests assert (test/QiwiBillPaymentsAPI.spec.js).
        assert {k: error["body"][k] for k in ("serviceName", "errorCode", "description", "userMessage")} == {
            "serviceName": "invoicing-api",
            "errorCode": "api.invoice.not.found",
            "description": "Invoice not found",
            "userMessage": "Invoice not found",
        }


@compat("error_400")
def test_invalid_amount_is_a_400_validation_error(report: dict[str, Any]) -> None:
    error = _rejected(report, "error_400")
    assert error["statusCode"] == 400
    assert error["body"]["errorCode"] == "validation.error"
    assert "amount.value" in error["body"]["cause"]
