"""Helpers shared by the contract tests: skips with reasons, generated clients, hypothesis strategies."""

from __future__ import annotations

import datetime as dt
import itertools
from decimal import Decimal
from typing import Any
from urllib.parse import quote

import httpx
import pytest
from hypothesis import strategies as st

from contract_tests._target import Target, in_process_transport
from contract_tests.checks import ERROR_FIELDS
from qiwi_bill import format_amount, make_client
from qiwi_bill_client import AuthenticatedClient
from qiwi_bill_client.models import AmountRequest, CreateBillRequest, Customer, CustomFields

__all__ = [
    "BILLS",
    "amounts",
    "api_client",
    "assert_qiwi_error",
    "auth_headers",
    "bill_body",
    "bill_requests",
    "bill_status",
    "create_bill_raw",
    "new_id",
    "require",
]

BILLS = "/partner/bill/v1/bills"

_counter = itertools.count()


def require(target: Target, *, controls: bool = False, destructive: bool = False) -> None:
    """Skip the calling test, with a reason the summary prints, when ``target`` cannot run it."""
    reason = target.skip_reason(needs_controls=controls, needs_destructive=destructive)
    if reason:
        pytest.skip(reason)


def new_id(target: Target, label: str) -> str:
    """An id unique to this session, under the target's prefix (so a real server's data is never touched)."""
    return f"{target.id_prefix}{label}-{next(_counter)}"


def auth_headers(target: Target) -> dict[str, str]:
    """``Authorization: Bearer <secret key>``, as QIWI expects it."""
    return {"Authorization": f"Bearer {target.secret_key}"}


def bill_body(amount: Decimal, currency: str = "RUB", **extra: Any) -> dict[str, Any]:
    """A valid create-bill body (raw JSON), expiring in a week."""
    expiry = (dt.datetime.now(dt.UTC) + dt.timedelta(days=7)).isoformat(timespec="seconds")
    return {"amount": {"currency": currency, "value": format_amount(amount)}, "expirationDateTime": expiry, **extra}


def create_bill_raw(client: httpx.Client, target: Target, bill_id: str, body: dict[str, Any]) -> httpx.Response:
    """``PUT /partner/bill/v1/bills/{billId}`` with a raw JSON body."""
    return client.put(f"{BILLS}/{quote(bill_id, safe='')}", json=body, headers=auth_headers(target))


def bill_status(client: httpx.Client, target: Target, bill_id: str) -> str:
    """The bill's current ``status.value`` (asserting the read succeeds)."""
    response = client.get(f"{BILLS}/{quote(bill_id, safe='')}", headers=auth_headers(target))
    assert response.status_code == 200, response.content
    return str(response.json()["status"]["value"])


def api_client(target: Target) -> AuthenticatedClient:
    """The generated client, made by ``qiwi_bill.make_client``, wired to ``target`` (ASGI or TCP)."""
    client = make_client(target.secret_key, base_url=target.base_url)
    if target.app is not None:
        headers = {"Authorization": f"Bearer {target.secret_key}"}
        client.set_httpx_client(
            httpx.Client(transport=in_process_transport(target.app), base_url=target.base_url, headers=headers)
        )
        client.set_async_httpx_client(
            httpx.AsyncClient(transport=httpx.ASGITransport(app=target.app), base_url=target.base_url, headers=headers)
        )
    return client


def assert_qiwi_error(response: httpx.Response | Any, *, status: int, codes: tuple[str, ...] = ()) -> dict[str, Any]:
    """Assert an error answer: the status, QIWI's JSON error body, and (optionally) its ``errorCode``."""
    assert response.status_code == status, (response.status_code, response.content[:300])
    body = httpx.Response(200, content=response.content).json()
    assert isinstance(body, dict), body
    missing = [name for name in ERROR_FIELDS if not isinstance(body.get(name), str)]
    assert not missing, f"error body lacks {missing}: {body}"
    if codes:
        assert body["errorCode"] in codes, body
    if body["errorCode"] == "validation.error":
        assert isinstance(body.get("cause"), dict), f"validation.error without cause: {body}"
        assert body["cause"], f"validation.error with an empty cause: {body}"
    return body


#: Amounts a merchant may bill: 0.01 .. 999999.99 with at most two decimals (Number(6.2) [doc]); one draw in
#: three is 0.01 .. 1.00, the low edge a uniform draw almost never reaches.
amounts = st.one_of(
    st.decimals(min_value=Decimal("0.01"), max_value=Decimal("1.00"), places=2),
    st.decimals(min_value=Decimal("0.01"), max_value=Decimal("999999.99"), places=2),
    st.decimals(min_value=Decimal("0.01"), max_value=Decimal("999999.99"), places=2),
)

_text = st.text(st.characters(codec="utf-8"), max_size=40)  # utf-8: no lone surrogates


def _expiration(offset_hours: int, days: int, seconds: int) -> dt.datetime:
    zone = dt.timezone(dt.timedelta(hours=offset_hours))
    moment = dt.datetime.now(dt.UTC) + dt.timedelta(days=days, seconds=seconds)
    return moment.astimezone(zone).replace(microsecond=0)


expirations = st.builds(
    _expiration,
    offset_hours=st.integers(-12, 14),
    days=st.integers(1, 45),
    seconds=st.integers(0, 86_399),
)


@st.composite
def bill_requests(draw: st.DrawFn, *, safe: bool = False) -> tuple[CreateBillRequest, Decimal, str]:
    """A create-bill request as a merchant builds it with the generated models, plus its amount and currency.

    With ``safe`` (a real server without the destructive opt-in) every bill is 1.00 RUB.
    """
    amount = Decimal("1.00") if safe else draw(amounts)
    currency = "RUB" if safe else draw(st.sampled_from(["RUB", "KZT"]))
    # The wire form varies as real clients vary: the SDKs' 2-decimal string, or a JSON number.
    as_number = draw(st.booleans()) and not safe
    value: str | float = float(amount) if as_number else format_amount(amount)
    request = CreateBillRequest(
        amount=AmountRequest(currency=currency, value=value),
        expiration_date_time=draw(expirations),
    )
    if draw(st.booleans()):
        request.comment = draw(_text)
    if draw(st.booleans()):
        request.customer = Customer(
            phone=draw(st.from_regex(r"7\d{10}", fullmatch=True)),
            email=draw(st.emails()),
            account=draw(_text),
        )
    if draw(st.booleans()):
        fields = CustomFields(
            theme_code=draw(_text), pay_sources_filter=draw(st.sampled_from(["qw", "card", "qw,card"]))
        )
        fields.additional_properties = draw(
            st.dictionaries(st.from_regex(r"[a-zA-Z]\w{0,15}", fullmatch=True), _text, max_size=3)
        )
        request.custom_fields = fields
    return request, amount, currency
