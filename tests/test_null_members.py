"""Property (issue 13): a JSON `null` for any optional create member gives the same bill as leaving it out.

QIWI's Java SDK 1.5.0 sends `"comment":null`, `"customer":null` and `"customFields":{"checkoutReferer":null}`,
its .NET SDK `"themeCode":null`, pyqiwip2p `"customer":{"phone":null,...}`: the real (Java/Jackson) service read
them as absent. A required member sent as `null` is refused like a missing one: 400 `validation.error`.
"""

from __future__ import annotations

import datetime as dt
import itertools
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from hypothesis import HealthCheck, assume, given, settings, strategies as st

from qiwi_bill_mock import create_app
from qiwi_bill_mock.settings import Merchant, Settings
from qiwi_bill_mock.testing import serve_app

SECRET = "null-members-secret"
AUTH = {"Authorization": f"Bearer {SECRET}"}
BILLS = "/partner/bill/v1/bills"
NOW = dt.datetime(2030, 1, 1, 12, 0, tzinfo=dt.UTC)
_ids = itertools.count()


@pytest.fixture(scope="module")
def client() -> Iterator[httpx.Client]:
    merchant = Merchant(site_id="null-site", secret_key=SECRET, public_key="pk-null")
    app = create_app(Settings(merchants=(merchant,)), clock=lambda: NOW)
    with serve_app(app) as url, httpx.Client(base_url=url, trust_env=False, timeout=30) as http:
        yield http


_text = st.text(st.characters(codec="utf-8", exclude_categories=("Cs", "Cc")), min_size=1, max_size=30)
_key = st.from_regex(r"[a-zA-Z][a-zA-Z0-9_]{0,15}", fullmatch=True)

bodies = st.fixed_dictionaries(
    {
        "amount": st.fixed_dictionaries(
            {
                "currency": st.sampled_from(["RUB", "KZT"]),
                "value": st.decimals(min_value="0.01", max_value="999999.99", places=2).map(str),
            }
        ),
        "expirationDateTime": st.integers(1, 90 * 86400).map(
            lambda s: (NOW + dt.timedelta(seconds=s)).isoformat(timespec="seconds")
        ),
    },
    optional={
        "comment": _text,
        "customer": st.fixed_dictionaries(
            {}, optional={"phone": st.from_regex(r"7[0-9]{10}", fullmatch=True), "email": _text, "account": _text}
        ),
        "customFields": st.dictionaries(_key, _text, max_size=4),
    },
)

# Where a null can go: a top-level optional member, a customer member, or a customFields value.
_null_places = st.one_of(
    st.sampled_from([("comment",), ("customer",), ("customFields",)]),
    st.sampled_from(["phone", "email", "account"]).map(lambda m: ("customer", m)),
    st.one_of(st.sampled_from(["themeCode", "paySourcesFilter", "checkoutReferer"]), _key).map(
        lambda k: ("customFields", k)
    ),
)


def with_nulls(body: dict[str, Any], places: list[tuple[str, ...]]) -> dict[str, Any]:
    """`body` with `null` inserted at each place that it leaves absent (a present value is never replaced)."""
    out = {k: dict(v) if isinstance(v, dict) else v for k, v in body.items()}
    for place in places:
        if len(place) == 1:
            out.setdefault(place[0], None)
        elif isinstance(out.get(place[0], {}), dict):  # not where a whole-member null went already
            out.setdefault(place[0], {}).setdefault(place[1], None)
    return out


def _create(client: httpx.Client, body: dict[str, Any]) -> dict[str, Any]:
    response = client.put(f"{BILLS}/nulls-{next(_ids)}", json=body, headers=AUTH)
    assert response.status_code == 200, response.text
    bill: dict[str, Any] = response.json()
    return {k: v for k, v in bill.items() if k not in ("billId", "payUrl")}


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(body=bodies, places=st.lists(_null_places, min_size=1, max_size=5))
def test_a_null_optional_member_is_the_member_left_out(
    client: httpx.Client, body: dict[str, Any], places: list[tuple[str, ...]]
) -> None:
    nulled = with_nulls(body, places)
    assume(nulled != body)  # every chosen place held a value: nothing to compare
    assert _create(client, nulled) == _create(client, body)


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"amount": None, "expirationDateTime": "2030-02-01T00:00:00Z"}, "amount"),
        ({"amount": {"currency": "RUB", "value": None}, "expirationDateTime": "2030-02-01T00:00:00Z"}, "amount.value"),
        (
            {"amount": {"currency": None, "value": "1.00"}, "expirationDateTime": "2030-02-01T00:00:00Z"},
            "amount.currency",
        ),
        ({"amount": {"currency": "RUB", "value": "1.00"}, "expirationDateTime": None}, "expirationDateTime"),
    ],
)
def test_a_null_required_member_is_refused_like_a_missing_one(
    client: httpx.Client, body: dict[str, Any], field: str
) -> None:
    response = client.put(f"{BILLS}/nulls-{next(_ids)}", json=body, headers=AUTH)
    assert response.status_code == 400
    error = response.json()
    assert error["errorCode"] == "validation.error"
    assert error["cause"] == {field: ["must not be null"]}
    # The same member left out: the same code, the same field.
    missing = {k: v for k, v in body.items() if v is not None}
    if "." in field:
        missing["amount"] = {k: v for k, v in body["amount"].items() if v is not None}
    left_out = client.put(f"{BILLS}/nulls-{next(_ids)}", json=missing, headers=AUTH).json()
    assert left_out["errorCode"] == "validation.error"
    assert list(left_out["cause"]) == [field]


def test_a_null_refund_amount_is_refused(client: httpx.Client) -> None:
    response = client.put(f"{BILLS}/nulls-x/refunds/r1", json={"amount": None}, headers=AUTH)
    assert response.status_code == 400
    assert response.json()["cause"] == {"amount": ["must not be null"]}
