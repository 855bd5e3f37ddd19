"""`mock_qiwi`: httpx calls to https://api.qiwi.com answered in-process (respx); other hosts untouched."""

from __future__ import annotations

import httpx
import pytest

from qiwi_bill import make_client
from qiwi_bill_client.api.bills import create_bill, get_bill
from qiwi_bill_client.models import Bill
from qiwi_bill_mock import Merchant, Settings, create_app
from qiwi_bill_mock.testing import QiwiMock, mock_qiwi, serve_app

KEY = "sk-hard-coded-in-the-shop"
QIWI = "https://api.qiwi.com/partner/bill/v1/bills"


def shop_checkout(order_id: str, body_json: dict) -> dict:
    """Code under test: hard-codes QIWI's host and uses plain httpx."""
    response = httpx.put(f"{QIWI}/{order_id}", json=body_json, headers={"Authorization": f"Bearer {KEY}"})
    response.raise_for_status()
    return response.json()


def test_the_context_manager_answers_qiwis_host_with_the_mock(body_json) -> None:
    with mock_qiwi(secret_key=KEY) as mock:
        bill = shop_checkout("order-1", body_json)
        assert bill["status"]["value"] == "WAITING"
        assert mock.controls.pay("order-1").status.value.value == "PAID"
        [entry] = mock.requests("createBill")
        assert entry.body["amount"] == {"currency": "RUB", "value": "10.00"}
        assert mock.inbox.wait(bill_id="order-1").verified


def test_the_generated_client_with_its_default_host_is_intercepted(body) -> None:
    with mock_qiwi() as mock, make_client(mock.secret_key) as client:
        assert isinstance(create_bill.sync(bill_id="g-1", client=client, body=body), Bill)
        assert isinstance(get_bill.sync(bill_id="g-1", client=client), Bill)
        assert [e.operation for e in mock.requests()] == ["createBill", "getBill"]


@mock_qiwi(secret_key=KEY)
def test_the_bare_decorator_form_with_options(body_json) -> None:
    assert shop_checkout("order-2", body_json)["billId"] == "order-2"


@mock_qiwi
def test_the_bare_decorator_without_options_answers_an_unknown_key_401() -> None:
    response = httpx.get(f"{QIWI}/x", headers={"Authorization": f"Bearer {KEY}"})
    assert (response.status_code, response.content) == (401, b"")  # QIWI's empty 401, the default


@mock_qiwi(secret_key=KEY)
async def test_the_decorator_on_an_async_test_intercepts_async_clients(body_json) -> None:
    async with httpx.AsyncClient() as http:
        response = await http.put(f"{QIWI}/order-3", json=body_json, headers={"Authorization": f"Bearer {KEY}"})
    assert response.status_code == 200


def test_a_fresh_mock_per_decorated_call(body_json) -> None:
    @mock_qiwi(secret_key=KEY)
    def create_then_read(order_id: str) -> int:
        shop_checkout(order_id, body_json)
        return httpx.get(f"{QIWI}/first", headers={"Authorization": f"Bearer {KEY}"}).status_code

    assert create_then_read("first") == 200
    assert create_then_read("second") == 404  # the first call's bill died with its mock


def test_other_hosts_pass_through_to_the_network(body_json) -> None:
    merchant = Merchant(site_id="real", secret_key="sk-real", public_key="pk-real")
    auth = {"Authorization": "Bearer sk-real"}
    with serve_app(create_app(Settings(merchants=[merchant]))) as url:
        with QiwiMock(secret_key=KEY) as mock, mock.intercept() as router:
            local = httpx.put(f"{url}/partner/bill/v1/bills/l-1", json=body_json, headers=auth)
            assert local.status_code == 200  # answered by the real server on 127.0.0.1
            assert mock.requests() == []
            assert router.calls.call_count >= 1  # it went through respx's pass-through route


def test_intercepting_another_base_url_and_the_interception_ends_with_the_block() -> None:
    # A port nothing listens on: without the interception this would be a connection error.
    with mock_qiwi(secret_key=KEY, intercept="http://127.0.0.1:9") as mock:
        response = httpx.get("http://127.0.0.1:9/_mock/health")
        assert response.status_code == 200
        assert mock.requests() == []
    with pytest.raises(httpx.ConnectError):
        httpx.get("http://127.0.0.1:9/_mock/health", timeout=2)
