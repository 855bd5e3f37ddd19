"""Business properties of the API, as hypothesis tests against the server.

- refunds never exceed the bill, and turn ``FULL`` exactly at the bill amount;
- a final status (``PAID``, ``REJECTED``, ``EXPIRED``) never changes;
- repeated creates with the same ``billId`` return the same bill;
- every error response carries QIWI's error body.
"""

from __future__ import annotations

import datetime as dt
import json
import time
from decimal import Decimal
from typing import Any
from urllib.parse import quote

import httpx
import pytest
from hypothesis import given, strategies as st

from contract_tests._profiles import contract_settings
from contract_tests._support import (
    BILLS,
    amounts,
    assert_qiwi_error,
    auth_headers,
    bill_body,
    bill_status,
    create_bill_raw,
    new_id,
    require,
)
from contract_tests._target import Target
from qiwi_bill import format_amount, parse_amount, parse_datetime

FINAL = ("PAID", "REJECTED", "EXPIRED")


@contract_settings()
@given(
    bill_amount=amounts,
    fractions=st.lists(st.decimals(min_value=Decimal("0.01"), max_value=Decimal("1.5"), places=2), max_size=6),
    currency=st.sampled_from(["RUB", "KZT"]),
)
def test_refunds_never_exceed_the_bill(
    target: Target, bill_amount: Decimal, fractions: list[Decimal], currency: str
) -> None:
    """Refunds are accepted while they fit what remains, refused with ``refund.incorrect.amount`` after."""
    require(target, controls=True)
    bill_id = new_id(target, "refunds")
    with target.http() as client:
        assert create_bill_raw(client, target, bill_id, bill_body(bill_amount, currency)).status_code == 200
        assert target.controls().pay(bill_id).status_code == 200
        refunded = Decimal(0)
        accepted: dict[str, Decimal] = {}
        for index, fraction in enumerate(fractions):
            value = max(Decimal("0.01"), (bill_amount * fraction / 2).quantize(Decimal("0.01")))
            refund_id = f"r{index}"
            path = f"{BILLS}/{quote(bill_id, safe='')}/refunds/{refund_id}"
            body = {"amount": {"currency": currency, "value": format_amount(value)}}
            response = client.put(path, json=body, headers=auth_headers(target))
            if refunded + value <= bill_amount:
                assert response.status_code == 200, response.content
                refunded += value
                accepted[refund_id] = value
                expected = "FULL" if refunded == bill_amount else "PARTIAL"
                assert response.json()["status"] == expected
                assert parse_amount(response.json()["amount"]["value"]) == value
            else:
                assert_qiwi_error(response, status=400, codes=("refund.incorrect.amount",))
        # A refund in another currency never counts either.
        other = "KZT" if currency == "RUB" else "RUB"
        path = f"{BILLS}/{quote(bill_id, safe='')}/refunds/other-currency"
        response = client.put(path, json={"amount": {"currency": other, "value": "0.01"}}, headers=auth_headers(target))
        assert_qiwi_error(response, status=400, codes=("refund.incorrect.amount",))
        for refund_id, value in accepted.items():
            read = client.get(f"{BILLS}/{quote(bill_id, safe='')}/refunds/{refund_id}", headers=auth_headers(target))
            assert read.status_code == 200
            assert parse_amount(read.json()["amount"]["value"]) == value
        assert refunded <= bill_amount
        assert bill_status(client, target, bill_id) == "PAID"  # refunds do not change the bill's status


@st.composite
def _actions(draw: st.DrawFn) -> list[str]:
    return draw(st.lists(st.sampled_from(["reject", "pay", "expire", "create", "refund", "read"]), max_size=8))


@contract_settings()
@given(final=st.sampled_from(FINAL), actions=_actions())
def test_a_final_status_never_changes(target: Target, final: str, actions: list[str]) -> None:
    """Once PAID, REJECTED or EXPIRED, nothing a merchant (or the mock's controls) does changes the status."""
    if final != "REJECTED":
        require(target, controls=True)
    bill_id = new_id(target, f"final-{final.lower()}")
    encoded = quote(bill_id, safe="")
    with target.http() as client:
        body = bill_body(Decimal("1.00"))
        assert create_bill_raw(client, target, bill_id, body).status_code == 200
        match final:
            case "REJECTED":
                assert client.post(f"{BILLS}/{encoded}/reject", headers=auth_headers(target)).status_code == 200
            case "PAID":
                assert target.controls().pay(bill_id).status_code == 200
            case _:
                assert target.controls().expire(bill_id).status_code == 200
        assert bill_status(client, target, bill_id) == final
        for index, action in enumerate(actions):
            match action:
                case "reject":
                    response = client.post(f"{BILLS}/{encoded}/reject", headers=auth_headers(target))
                    if final == "REJECTED":
                        assert response.status_code == 200
                    else:
                        assert_qiwi_error(response, status=400)
                case "pay" | "expire" if target.mock_controls:
                    control = target.controls().pay if action == "pay" else target.controls().expire
                    control(bill_id)
                case "create":
                    other = Decimal("1.00") if target.safe else Decimal("2.00")
                    again = create_bill_raw(client, target, bill_id, bill_body(other, comment="again"))
                    assert again.status_code in (200, 409)
                case "refund" if target.mock_controls:
                    path = f"{BILLS}/{encoded}/refunds/f{index}"
                    client.put(
                        path, json={"amount": {"currency": "RUB", "value": "0.01"}}, headers=auth_headers(target)
                    )
            assert bill_status(client, target, bill_id) == final, f"after {action}"


@contract_settings()
@given(first=st.fixed_dictionaries({"comment": st.text(max_size=20)}), second=st.text(max_size=20))
def test_repeated_create_returns_the_same_bill(target: Target, first: dict[str, str], second: str) -> None:
    """The same billId twice: the stored bill, unchanged; a different body gets it too (or 409 if strict)."""
    bill_id = new_id(target, "repeat")
    amount = Decimal("1.00") if target.safe else Decimal("12.34")
    with target.http() as client:
        body = bill_body(amount, **first)
        created = create_bill_raw(client, target, bill_id, body)
        assert created.status_code == 200, created.content
        same = create_bill_raw(client, target, bill_id, body)
        assert same.status_code == 200
        assert same.json() == created.json()
        other = amount if target.safe else amount + 1  # safe runs create 1.00 RUB bills only
        different = create_bill_raw(client, target, bill_id, bill_body(other, comment=f"{second}!"))
        if different.status_code == 409:  # a strict server (documented in the spec)
            assert_qiwi_error(different, status=409)
        else:
            assert different.status_code == 200
            assert different.json() == created.json()
        assert client.post(f"{BILLS}/{quote(bill_id, safe='')}/reject", headers=auth_headers(target)).status_code == 200
        after_reject = create_bill_raw(client, target, bill_id, body)
        assert after_reject.status_code == 200
        assert after_reject.json()["status"]["value"] == "REJECTED"
        assert after_reject.json()["creationDateTime"] == created.json()["creationDateTime"]


def _bad_requests(target: Target, bill_id: str) -> dict[str, tuple[str, str, dict[str, str], bytes | None, int]]:
    """Requests QIWI must refuse: name -> (method, path, headers, body, expected status).

    The expected ``errorCode`` of each is in :data:`BAD_REQUEST_CODES`.
    """
    auth = auth_headers(target)
    json_type = {**auth, "Content-Type": "application/json"}
    bill = f"{BILLS}/{quote(bill_id, safe='')}"

    def body(value: object, currency: str = "RUB", **extra: Any) -> bytes:
        expiry = (dt.datetime.now(dt.UTC) + dt.timedelta(days=3)).isoformat()
        return json.dumps(
            {"amount": {"currency": currency, "value": value}, "expirationDateTime": expiry, **extra}
        ).encode()

    return {
        "no key": ("GET", bill, {}, None, 401),
        "wrong key": ("GET", bill, {"Authorization": "Bearer not-the-key"}, None, 401),
        "wrong key on create": (
            "PUT",
            bill,
            {"Authorization": "Bearer x", "Content-Type": "application/json"},
            body("1.00"),
            401,
        ),
        "unknown bill": ("GET", bill, auth, None, 404),
        "reject unknown bill": ("POST", f"{bill}/reject", auth, None, 404),
        "refund of unknown bill": (
            "PUT",
            f"{bill}/refunds/r1",
            json_type,
            b'{"amount":{"currency":"RUB","value":"1.00"}}',
            404,
        ),
        "unknown refund": ("GET", f"{bill}/refunds/r1", auth, None, 404),
        "not JSON": ("PUT", bill, json_type, b"{not json", 400),
        "JSON null": ("PUT", bill, json_type, b"null", 400),
        "amount zero": ("PUT", bill, json_type, body("0.00"), 400),
        "amount negative": ("PUT", bill, json_type, body(-1), 400),
        "three decimals as string": ("PUT", bill, json_type, body("1.234"), 400),
        "amount too large": ("PUT", bill, json_type, body(1000000), 400),
        "unknown currency": ("PUT", bill, json_type, body("1.00", "USD"), 400),
        "lowercase currency": ("PUT", bill, json_type, body("1.00", "rub"), 400),
        "comment too long": ("PUT", bill, json_type, body("1.00", comment="x" * 256), 400),
        "expiry in the past": (
            "PUT",
            bill,
            json_type,
            json.dumps(
                {"amount": {"currency": "RUB", "value": "1.00"}, "expirationDateTime": "2001-01-01T00:00:00+03:00"}
            ).encode(),
            400,
        ),
        "not json content type": ("PUT", bill, {**auth, "Content-Type": "text/plain"}, body("1.00"), 415),
        "unsupported method": ("DELETE", bill, auth, None, 405),
    }


BAD_REQUESTS = sorted(_bad_requests(Target(name="names", base_url="", secret_key="k"), "b"))
# The documented code of each (the spec's examples; DESIGN.md's decision table): unreadable JSON and wrong types
# are conversion failures, invalid values validation errors.
BAD_REQUEST_CODES = {
    "no key": "auth.unauthorized",
    "wrong key": "auth.unauthorized",
    "wrong key on create": "auth.unauthorized",
    "unknown bill": "api.invoice.not.found",
    "reject unknown bill": "api.invoice.not.found",
    "refund of unknown bill": "api.invoice.not.found",
    "unknown refund": "api.invoice.not.found",
    "not JSON": "http.message.conversion.failed",
    "JSON null": "http.message.conversion.failed",
    "amount zero": "validation.error",
    "amount negative": "validation.error",
    "three decimals as string": "validation.error",
    "amount too large": "validation.error",
    "unknown currency": "validation.error",
    "lowercase currency": "validation.error",
    "comment too long": "validation.error",
    "expiry in the past": "validation.error",
    "not json content type": "http.media.type.not.supported",
    "unsupported method": "http.method.not.supported",
}


def _assert_error_answer(response: httpx.Response, status: int, code: str | None = None) -> None:
    if status == 401 and not response.content.strip():
        return  # the real service sometimes answered 401 without a body (the spec's Unauthorized response)
    body = assert_qiwi_error(response, status=status, codes=(code,) if code else ())
    assert parse_datetime(body["dateTime"]).tzinfo is not None
    assert body["traceId"], "empty traceId"
    if body["errorCode"] == "validation.error":
        assert isinstance(body.get("cause"), dict), f"validation.error without cause: {body}"


@pytest.mark.parametrize("name", BAD_REQUESTS)
def test_every_error_carries_qiwi_error_body(target: Target, name: str) -> None:
    """Whatever is wrong with a request, the answer is a 4xx with QIWI's error body (never a 5xx, never text)."""
    method, path, headers, content, status = _bad_requests(target, new_id(target, "errors"))[name]
    with target.http() as client:
        response = client.request(method, path, headers=headers, content=content)
    _assert_error_answer(response, status, BAD_REQUEST_CODES[name])


def test_every_bad_request_has_a_documented_code() -> None:
    assert set(BAD_REQUEST_CODES) == set(BAD_REQUESTS)


def test_a_bill_read_after_its_expiry_is_expired_before_any_sweep(target: Target) -> None:
    """Expiry is a rule of reading, not of a background job: the first read after expirationDateTime says EXPIRED.

    The in-process mock runs no sweeper at all (no lifespan), so there the read is the only way the bill can
    expire; the bill then refuses a reject with validation.error, and stays EXPIRED.
    """
    bill_id = new_id(target, "lapse")
    expiry = dt.datetime.now(dt.UTC) + dt.timedelta(seconds=1.2)
    body = {
        "amount": {"currency": "RUB", "value": "1.00"},
        "expirationDateTime": expiry.isoformat(timespec="milliseconds"),
    }
    with target.http() as client:
        assert create_bill_raw(client, target, bill_id, body).status_code == 200
        assert bill_status(client, target, bill_id) == "WAITING"
        # A remote server's clock may lag ours a little; the mock shares this machine's.
        time.sleep(max(0.0, (expiry - dt.datetime.now(dt.UTC)).total_seconds()) + (0.3 if target.mock_controls else 3))
        read = client.get(f"{BILLS}/{quote(bill_id, safe='')}", headers=auth_headers(target))
        assert read.status_code == 200
        assert read.json()["status"]["value"] == "EXPIRED"
        assert parse_datetime(read.json()["status"]["changedDateTime"]) >= parse_datetime(
            read.json()["creationDateTime"]
        )
        refused = client.post(f"{BILLS}/{quote(bill_id, safe='')}/reject", headers=auth_headers(target))
        _assert_error_answer(refused, 400, "validation.error")
        assert bill_status(client, target, bill_id) == "EXPIRED"


_invalid_values = st.one_of(
    st.decimals(max_value=Decimal("0.00"), allow_nan=False, allow_infinity=False, places=2).map(str),
    st.decimals(min_value=Decimal("1000000"), max_value=Decimal("1e12"), places=2).map(str),
    st.decimals(min_value=Decimal("0.001"), max_value=Decimal("999"), places=3)
    .filter(lambda d: d != d.quantize(Decimal("0.01")))
    .map(str),
    st.floats(max_value=0.0, allow_nan=False, allow_infinity=False),
    st.floats(min_value=1_000_000.0, allow_nan=False, allow_infinity=False),
    st.text(max_size=8).filter(lambda t: not t.replace(".", "", 1).isdigit()),
    st.none(),
    st.booleans(),
)


@contract_settings()
@given(value=_invalid_values)
def test_invalid_amounts_are_refused_with_the_error_body(target: Target, value: object) -> None:
    """Any amount outside 0.01..999999.99 or with more than two decimals (as a string) gets 400 and the body."""
    bill_id = new_id(target, "bad-amount")
    with target.http() as client:
        response = create_bill_raw(
            client, target, bill_id, {**bill_body(Decimal("1.00")), "amount": {"currency": "RUB", "value": value}}
        )
    _assert_error_answer(response, 400)


def test_unknown_refund_of_a_known_bill(target: Target) -> None:
    """A known bill with an unknown refund id: 404 ``api.refund.not.found``."""
    bill_id = new_id(target, "no-refund")
    with target.http() as client:
        assert create_bill_raw(client, target, bill_id, bill_body(Decimal("1.00"))).status_code == 200
        response = client.get(f"{BILLS}/{quote(bill_id, safe='')}/refunds/nope", headers=auth_headers(target))
    assert_qiwi_error(response, status=404, codes=("api.refund.not.found",))


def test_bills_expire_when_their_time_passes(target: Target) -> None:
    """A WAITING bill reads as EXPIRED once the (mock) clock passes expirationDateTime, and stays so."""
    require(target, controls=True)
    bill_id = new_id(target, "expiry")
    controls = target.controls()
    try:
        with target.http() as client:
            expiry = (dt.datetime.now(dt.UTC) + dt.timedelta(hours=1)).isoformat(timespec="seconds")
            body = {"amount": {"currency": "RUB", "value": "5.00"}, "expirationDateTime": expiry}
            assert create_bill_raw(client, target, bill_id, body).status_code == 200
            assert bill_status(client, target, bill_id) == "WAITING"
            assert controls.advance_clock(2 * 3600).status_code == 200
            # Reading a refund of the bill reads the bill too (another read path), right after the clock moved.
            refund = client.get(f"{BILLS}/{quote(bill_id, safe='')}/refunds/none", headers=auth_headers(target))
            assert_qiwi_error(refund, status=404, codes=("api.refund.not.found",))
            assert bill_status(client, target, bill_id) == "EXPIRED"
            refused = client.post(f"{BILLS}/{quote(bill_id, safe='')}/reject", headers=auth_headers(target))
            assert_qiwi_error(refused, status=400)
            assert bill_status(client, target, bill_id) == "EXPIRED"
    finally:
        controls.reset()  # the clock is the whole mock's: put it back for the tests that follow


# What the official SDKs send (docs/sources.md, Official SDKs; spec: rejectBill description): a charset in the
# Content-Type, a literal `null` body (Node SDK) or an empty one (.NET SDK).
SDK_REQUESTS: dict[str, tuple[str, str, dict[str, str], bytes | None]] = {
    "create with charset": ("PUT", "", {"Content-Type": "application/json;charset=UTF-8"}, None),
    "reject with null body": ("POST", "/reject", {"Content-Type": "application/json"}, b"null"),
    "reject with empty body": ("POST", "/reject", {"Content-Type": "application/json"}, b""),
    "get with null body": ("GET", "", {"Content-Type": "application/json"}, b"null"),
}


@pytest.mark.parametrize("name", sorted(SDK_REQUESTS))
def test_requests_the_official_sdks_send_are_accepted(target: Target, name: str) -> None:
    """Real clients' request quirks get the normal answer, not an error."""
    method, suffix, headers, content = SDK_REQUESTS[name]
    bill_id = new_id(target, "sdk")
    with target.http() as client:
        if content is None:  # the create itself is the request under test
            payload = json.dumps(bill_body(Decimal("1.00"))).encode()
        else:
            assert create_bill_raw(client, target, bill_id, bill_body(Decimal("1.00"))).status_code == 200
            payload = content
        path = f"{BILLS}/{quote(bill_id, safe='')}{suffix}"
        response = client.request(method, path, headers={**auth_headers(target), **headers}, content=payload)
    assert response.status_code == 200, response.content
    assert response.json()["billId"] == bill_id
