"""make_client: a generated-client subclass with a finite timeout, bounded retries and a secret-free repr."""

from __future__ import annotations

import json
from datetime import datetime

import httpx
import pytest

from qiwi_bill import (
    DEFAULT_API_BASE_URL,
    DEFAULT_TIMEOUT,
    MOSCOW_TZ,
    InvalidFieldError,
    QiwiClient,
    format_amount,
    format_datetime,
    generate_bill_id,
    make_client,
)
from qiwi_bill_client import AuthenticatedClient
from qiwi_bill_client.api.bills import create_bill, get_bill, reject_bill
from qiwi_bill_client.api.refunds import create_refund
from qiwi_bill_client.models import AmountRequest, Bill, CreateBillRequest, CreateRefundRequest

SECRET = "eyJ2ZXJzaW9uIjoicmVzdF92MyIsImRhdGEiOnsibWVyY2hhbnRfaWQiOjUyNjgxMiwiYXBpX3VzZXJfaWQiOjcxNjI2MTk3fX0="
NOW = datetime(2021, 1, 18, 15, 24, 53, tzinfo=MOSCOW_TZ)


def bill_json(bill_id: str = "b1", status: str = "WAITING") -> dict[str, object]:
    stamp = format_datetime(NOW, timespec="milliseconds")
    return {
        "siteId": "test",
        "billId": bill_id,
        "amount": {"value": "10.00", "currency": "RUB"},
        "status": {"value": status, "changedDateTime": stamp},
        "creationDateTime": stamp,
        "expirationDateTime": stamp,
        "payUrl": "https://oplata.qiwi.com/form/?invoice_uid=x",
    }


class Server:
    """An httpx MockTransport handler answering from a script of statuses (or exceptions)."""

    def __init__(self, *script: int | type[Exception]) -> None:
        self.script = list(script)
        self.requests: list[httpx.Request] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        step = self.script.pop(0) if self.script else 200
        if isinstance(step, type):
            raise step("scripted failure", request=request)  # type: ignore[call-arg]
        if step == 200:
            if "/refunds/" in request.url.path:
                body: dict[str, object] = {
                    "refundId": "r1",
                    "amount": {"value": "1.00", "currency": "RUB"},
                    "dateTime": "2021-01-18T15:24:53.000+03:00",
                    "status": "PARTIAL",
                }
            else:
                body = bill_json(request.url.path.rsplit("/", 2)[-2 if request.url.path.endswith("/reject") else -1])
            return httpx.Response(200, json=body)
        error = {
            "serviceName": "invoicing-api",
            "errorCode": "internal.error",
            "description": "Internal error",
            "userMessage": "Internal error",
            "dateTime": "2021-01-18T15:24:53.000+03:00",
            "traceId": "t1",
        }
        return httpx.Response(step, json=error)


def client_for(server: Server, **kwargs: object) -> QiwiClient:
    return make_client(
        SECRET,
        base_url="http://qiwi.test",
        httpx_args={"transport": httpx.MockTransport(server)},
        **kwargs,  # type: ignore[arg-type]
    )


def create_body() -> CreateBillRequest:
    return CreateBillRequest(amount=AmountRequest(currency="RUB", value=format_amount("10")), expiration_date_time=NOW)


# --- shape, defaults, secrecy ---------------------------------------------------------------------------------------


def test_generated_client_repr_leaks_the_token_which_is_why_we_subclass():
    assert "token='secret-value'" in repr(AuthenticatedClient(base_url="http://x", token="secret-value"))


def test_repr_and_str_never_show_the_secret_before_or_after_use():
    client = make_client(SECRET)
    assert SECRET not in repr(client)
    assert SECRET not in str(client)
    assert "token='***'" in repr(client)
    client.get_httpx_client()  # the generated code writes the Authorization header into _headers
    assert SECRET not in repr(client)
    assert SECRET not in repr(client.with_headers({"X-Trace": "1"}))
    assert SECRET not in repr(client.with_timeout(httpx.Timeout(3)))


def test_client_is_a_generated_authenticated_client_with_a_finite_default_timeout():
    client = make_client(SECRET)
    assert isinstance(client, AuthenticatedClient)
    assert client.get_httpx_client().timeout == httpx.Timeout(DEFAULT_TIMEOUT)
    assert client.get_async_httpx_client().timeout == httpx.Timeout(DEFAULT_TIMEOUT)
    assert str(client.get_httpx_client().base_url).rstrip("/") == DEFAULT_API_BASE_URL


def test_timeout_accepts_seconds_an_httpx_timeout_or_explicit_none():
    assert make_client(SECRET, timeout=2.5).get_httpx_client().timeout == httpx.Timeout(2.5)
    custom = httpx.Timeout(5, connect=1)
    assert make_client(SECRET, timeout=custom).get_httpx_client().timeout == custom
    assert make_client(SECRET, timeout=None).get_httpx_client().timeout == httpx.Timeout(None)


def test_generated_operations_accept_the_client_and_send_the_bearer_key():
    server = Server()
    client = client_for(server)
    bill_id = generate_bill_id()
    response = create_bill.sync_detailed(bill_id, client=client, body=create_body())
    assert response.status_code == 200
    assert isinstance(response.parsed, Bill)
    request = server.requests[0]
    assert request.method == "PUT"
    assert request.url.path == f"/partner/bill/v1/bills/{bill_id}"
    assert request.headers["Authorization"] == f"Bearer {SECRET}"
    assert json.loads(request.content)["amount"] == {"currency": "RUB", "value": "10.00"}


def test_with_headers_keeps_our_subclass_and_retries():
    client = make_client(SECRET, retries=2).with_headers({"X-A": "1"})
    assert isinstance(client, QiwiClient)
    assert client.retries == 2


# --- retries ------------------------------------------------------------------------------------------------------


def test_retries_are_off_by_default():
    server = Server(503)
    response = get_bill.sync_detailed("b1", client=client_for(server))
    assert response.status_code == 503
    assert len(server.requests) == 1


def test_get_is_retried_after_5xx_until_success():
    server = Server(500, 503)
    response = get_bill.sync_detailed("b1", client=client_for(server, retries=3, backoff=0))
    assert response.status_code == 200
    assert len(server.requests) == 3


def test_put_create_is_retried_with_the_same_bill_id_and_body():
    server = Server(httpx.ReadTimeout, 502)
    create_bill.sync_detailed("same-id", client=client_for(server, retries=2, backoff=0), body=create_body())
    assert len(server.requests) == 3
    assert {r.url.path for r in server.requests} == {"/partner/bill/v1/bills/same-id"}
    assert len({r.content for r in server.requests}) == 1


def test_put_refund_is_retried():
    server = Server(504)
    body = CreateRefundRequest(amount=AmountRequest(currency="RUB", value="1.00"))
    response = create_refund.sync_detailed("b1", "r1", client=client_for(server, retries=1, backoff=0), body=body)
    assert response.status_code == 200
    assert len(server.requests) == 2


def test_post_reject_is_never_retried():
    server = Server(503, httpx.ConnectError)
    response = reject_bill.sync_detailed("b1", client=client_for(server, retries=3, backoff=0))
    assert response.status_code == 503
    assert len(server.requests) == 1
    with pytest.raises(httpx.ConnectError):
        reject_bill.sync_detailed("b1", client=client_for(Server(httpx.ConnectError), retries=3, backoff=0))


def test_retries_are_bounded_and_the_last_answer_is_returned():
    server = Server(500, 500, 500, 500, 500)
    response = get_bill.sync_detailed("b1", client=client_for(server, retries=2, backoff=0))
    assert response.status_code == 500
    assert len(server.requests) == 3


def test_transport_errors_are_retried_then_raised():
    server = Server(httpx.ConnectError, httpx.ConnectError, httpx.ConnectError)
    with pytest.raises(httpx.ConnectError):
        get_bill.sync_detailed("b1", client=client_for(server, retries=2, backoff=0))
    assert len(server.requests) == 3


@pytest.mark.parametrize("status", [400, 401, 404, 501])
def test_client_errors_are_not_retried(status):
    server = Server(status)
    get_bill.sync_detailed("b1", client=client_for(server, retries=3, backoff=0))
    assert len(server.requests) == 1


def test_retry_after_seconds_are_honoured(monkeypatch):
    import qiwi_bill._client as module

    slept: list[float] = []
    monkeypatch.setattr(module.time, "sleep", slept.append)

    def handler(request: httpx.Request) -> httpx.Response:
        if not slept:
            return httpx.Response(503, headers={"Retry-After": "3"})
        return httpx.Response(200, json=bill_json())

    client = make_client(
        SECRET,
        base_url="http://qiwi.test",
        retries=1,
        backoff=0,
        httpx_args={"transport": httpx.MockTransport(handler)},
    )
    assert get_bill.sync_detailed("b1", client=client).status_code == 200
    assert slept == [3.0]


def test_backoff_is_exponential_with_jitter_and_capped(monkeypatch):
    import qiwi_bill._client as module

    slept: list[float] = []
    monkeypatch.setattr(module.time, "sleep", slept.append)
    monkeypatch.setattr(module.random, "uniform", lambda low, high: high)
    get_bill.sync_detailed("b1", client=client_for(Server(500, 500, 500, 500, 500, 500), retries=5, backoff=1))
    assert slept == [1.0, 2.0, 4.0, 8.0, 8.0]


async def test_async_get_is_retried():
    server = Server(503, httpx.ReadError)
    response = await get_bill.asyncio_detailed("b1", client=client_for(server, retries=2, backoff=0))
    assert response.status_code == 200
    assert len(server.requests) == 3


async def test_async_reject_is_not_retried():
    server = Server(503)
    response = await reject_bill.asyncio_detailed("b1", client=client_for(server, retries=2, backoff=0))
    assert response.status_code == 503
    assert len(server.requests) == 1


# --- validation ---------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("args", "kwargs", "field"),
    [
        (("",), {}, "secret_key"),
        ((None,), {}, "secret_key"),
        ((" sekret-123",), {}, "secret_key"),
        (("sekret-123\r\nX-Injected: 1",), {}, "secret_key"),
        ((SECRET,), {"timeout": 0}, "timeout"),
        ((SECRET,), {"timeout": -1}, "timeout"),
        ((SECRET,), {"timeout": float("inf")}, "timeout"),
        ((SECRET,), {"timeout": "10"}, "timeout"),
        ((SECRET,), {"retries": -1}, "retries"),
        ((SECRET,), {"retries": 11}, "retries"),
        ((SECRET,), {"retries": True}, "retries"),
        ((SECRET,), {"backoff": -1}, "backoff"),
        ((SECRET,), {"base_url": "api.qiwi.com"}, "base_url"),
        ((SECRET,), {"base_url": "::::"}, "base_url"),
        ((SECRET,), {"base_url": "ftp://api.qiwi.com"}, "base_url"),
    ],
)
def test_make_client_rejects_invalid_arguments_naming_the_field(args, kwargs, field):
    with pytest.raises(InvalidFieldError) as info:
        make_client(*args, **kwargs)
    assert info.value.field == field
    if args and isinstance(args[0], str) and args[0]:
        assert args[0].strip() not in str(info.value)
