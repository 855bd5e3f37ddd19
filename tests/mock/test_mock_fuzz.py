"""Property: no body, id or header a client can send makes the mock answer 5xx (QIWI's 4xx body instead)."""

from __future__ import annotations

import asyncio
import json
from typing import Any
from urllib.parse import quote

import httpx
from hypothesis import HealthCheck, given, settings, strategies as st
from mock_helpers import AUTH, FakeClock, make_settings, sequential_ids

from qiwi_bill_mock import create_app

BILLS = "/partner/bill/v1/bills"

scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(10**30), max_value=10**30),
    st.floats(allow_nan=False, allow_infinity=False),
    st.text(max_size=20),
    st.sampled_from(["10.00", "0", "-1", "1e5", "RUB", "KZT", "2030-01-01T00:00:00Z", "2030-01-01T00:00:00", ""]),
)
json_values = st.recursive(
    scalars,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=3),
    max_leaves=8,
)
# Bodies shaped like the real ones, with any value in any slot: where validation bugs hide.
amounts = st.fixed_dictionaries({}, optional={"value": json_values, "currency": json_values})
shaped = st.fixed_dictionaries(
    {},
    optional={
        "amount": amounts | json_values,
        "expirationDateTime": json_values,
        "comment": json_values,
        "customer": st.dictionaries(st.sampled_from(["phone", "email", "account", "x"]), json_values, max_size=3),
        "customFields": st.dictionaries(st.text(max_size=8), json_values, max_size=3),
        "seconds": json_values | st.integers(min_value=0, max_value=10**12),
        "paySource": json_values | st.sampled_from(["qw", "card", "mobile", "sovest"]),
    },
)
ids = st.text(min_size=0, max_size=210).map(lambda s: quote(s, safe="", errors="surrogatepass"))


def _app() -> Any:
    return create_app(make_settings(), clock=FakeClock(), id_factory=sequential_ids())


APP = _app()


async def _call(method: str, url: str, content: bytes, content_type: str) -> httpx.Response:
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=APP), base_url="http://t") as client:
        return await client.request(method, url, content=content, headers={**AUTH, "Content-Type": content_type})


@settings(max_examples=300, deadline=None, suppress_health_check=list(HealthCheck))
@given(
    body=shaped | json_values,
    bill_id=ids,
    refund_id=ids,
    operation=st.sampled_from(["create", "get", "reject", "refund", "get_refund", "pay", "advance"]),
    content_type=st.sampled_from(["application/json", "application/json;charset=UTF-8", "text/plain", ""]),
)
def test_no_input_gives_a_server_error(
    body: Any, bill_id: str, refund_id: str, operation: str, content_type: str
) -> None:
    method, url = {
        "create": ("PUT", f"{BILLS}/{bill_id}"),
        "get": ("GET", f"{BILLS}/{bill_id}"),
        "reject": ("POST", f"{BILLS}/{bill_id}/reject"),
        "refund": ("PUT", f"{BILLS}/{bill_id}/refunds/{refund_id}"),
        "get_refund": ("GET", f"{BILLS}/{bill_id}/refunds/{refund_id}"),
        "pay": ("POST", f"/_mock/bills/{bill_id}/pay"),
        "advance": ("POST", "/_mock/clock/advance"),
    }[operation]
    if operation == "refund":
        # Make refunds reach the amount logic too: a paid bill under this id.
        create = json.dumps(
            {"amount": {"value": "10.00", "currency": "RUB"}, "expirationDateTime": "2030-01-01T00:00:00Z"}
        )
        asyncio.run(_call("PUT", f"{BILLS}/{bill_id}", create.encode(), "application/json"))
        asyncio.run(_call("POST", f"/_mock/bills/{bill_id}/pay", b"", "application/json"))
    response = asyncio.run(_call(method, url, json.dumps(body).encode(), content_type))
    assert response.status_code < 500, (response.status_code, response.text)
    if response.status_code >= 400:
        error = response.json()
        assert error["traceId"] == response.headers["x-trace-id"]
        assert error["serviceName"] == "invoicing-api"
