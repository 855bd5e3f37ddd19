"""`verify_signature` / `parse_notification` fuzzed with hypothesis over arbitrary headers and bodies.

Property: `verify_signature` returns a `bool` and never raises for anything a network can deliver;
`parse_notification` returns the model or raises `InvalidSignatureError` (its subclass `InvalidNotificationError`
included), never anything else, even for bodies that are correctly signed but otherwise nonsense. And the
signature comparison is constant-time: it goes through `hmac.compare_digest`, checked with that function mocked.
"""

from __future__ import annotations

import hmac
import json
from typing import Any
from unittest import mock

import httpx
import pytest
from conftest import Row
from hypothesis import HealthCheck, given, settings, strategies as st

import qiwi_bill
from qiwi_bill import (
    SIGNATURE_HEADER,
    InvalidSignatureError,
    compute_signature,
    parse_notification,
    verify_signature,
)
from qiwi_bill_client.models import BillNotification

SECRET = "rel-notify-secret-0f9e8d7c"
EXAMPLES = {"quick": 300, "full": 5000}

_json_scalar = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=40),
)
_json = st.recursive(
    _json_scalar,
    lambda inner: st.one_of(st.lists(inner, max_size=4), st.dictionaries(st.text(max_size=10), inner, max_size=4)),
    max_leaves=12,
)
_stamp = st.one_of(
    st.sampled_from(
        ["2021-01-18T15:25:18+03", "2021-01-18T15:25:18.123+03:00", "2021-01-18T15:25:18", "2021-13-45T99:99:99Z", ""]
    ),
    st.text(max_size=30),
    _json,
)
_amount_value = st.one_of(
    st.sampled_from(["1", "1.00", "10.5", "-1", "1e3", "NaN", "Infinity", "1.001", " 1.00", "\uff11.\uff10\uff10"]),
    st.decimals(allow_nan=True).map(str),
    st.integers(),
    st.floats(),
    _json,
)


@st.composite
def _notifications(draw: st.DrawFn) -> dict[str, Any]:
    """Notification-shaped objects whose every field may be of the wrong type, missing or odd."""

    def field(usual: st.SearchStrategy[Any], odd: st.SearchStrategy[Any]) -> Any:
        # Mostly well-typed, so that many examples carry a valid signature and reach the parsing behind it.
        return draw(odd if draw(st.integers(0, 5)) == 5 else usual)

    money = st.decimals(places=2, min_value=0, max_value=10**6, allow_nan=False, allow_infinity=False).map(str)
    bill: dict[str, Any] = {
        "siteId": field(st.text(max_size=20), _json),
        "billId": field(st.text(max_size=20), _json),
        "amount": field(
            st.fixed_dictionaries(
                {"value": st.one_of(money, _amount_value), "currency": st.sampled_from(["RUB", "KZT"])}
            ),
            _json,
        ),
        "status": field(
            st.fixed_dictionaries({"value": st.sampled_from(["PAID", "WAITING"]), "changedDateTime": _stamp}),
            _json,
        ),
        "customer": draw(_json),
        "customFields": draw(_json),
        "comment": draw(_json),
        "creationDateTime": draw(_stamp),
        "expirationDateTime": draw(_stamp),
    }
    if draw(st.integers(0, 3)) == 3:
        for key in draw(st.lists(st.sampled_from(sorted(bill)), max_size=3)):
            bill.pop(key, None)
    envelope: dict[str, Any] = {"bill": bill, "version": draw(st.one_of(st.just("1"), _json))}
    if draw(st.booleans()):
        envelope.pop("version")
    return envelope if draw(st.booleans()) else bill


@st.composite
def _signable(draw: st.DrawFn) -> dict[str, Any]:
    """A notification-shaped object whose signed fields are well-typed, so it always has a correct signature
    (its other fields may still be anything): the fuzzer reaches the parsing behind the check by construction."""
    notification = draw(_notifications())
    bill = notification["bill"] if isinstance(notification.get("bill"), dict) else notification
    money = st.decimals(places=2, min_value=0, max_value=10**6, allow_nan=False, allow_infinity=False).map(str)
    bill["siteId"], bill["billId"] = draw(st.text(max_size=20)), draw(st.text(max_size=20))
    bill["amount"] = {"value": draw(money), "currency": draw(st.sampled_from(["RUB", "KZT"]))}
    bill["status"] = {"value": draw(st.sampled_from(["PAID", "WAITING"])), "changedDateTime": draw(_stamp)}
    return notification


_bodies = st.one_of(
    st.binary(max_size=200),
    st.text(max_size=200),
    _json.map(lambda v: json.dumps(v, allow_nan=True)),
    # Notification-shaped bodies three times as often as the rest: those are the ones that get past the check.
    *[_notifications().map(lambda v: json.dumps(v, allow_nan=True).encode()), _notifications()] * 3,
    _json,
)
_header_values = st.one_of(
    st.none(),
    st.text(max_size=80),
    st.binary(max_size=80),
    st.text(alphabet="0123456789abcdefABCDEF \t", min_size=60, max_size=70),
)
_headers = st.one_of(
    _header_values,
    st.dictionaries(
        st.one_of(st.sampled_from([SIGNATURE_HEADER, SIGNATURE_HEADER.lower(), "X-API-SIGNATURE-SHA256"]), st.text()),
        st.text(max_size=80),
        max_size=4,
    ),
    st.dictionaries(st.binary(max_size=30), st.binary(max_size=80), max_size=3),
)


def _signed(body: Any) -> str | None:
    """The correct signature of `body`, when it has one (so the fuzzer also reaches the parsing past the check)."""
    try:
        return compute_signature(body, secret=SECRET)
    except InvalidSignatureError:
        return None


def _check_verify(body: Any, header: Any) -> None:
    result = verify_signature(body, header, secret=SECRET)
    assert type(result) is bool


def _check_parse(body: Any, header: Any) -> None:
    try:
        result = parse_notification(body, header, secret=SECRET)
    except InvalidSignatureError:
        return
    assert isinstance(result, BillNotification)


@pytest.mark.parametrize("function", [_check_verify, _check_parse], ids=["verify_signature", "parse_notification"])
def test_signature_helpers_only_answer_or_raise_invalid_signature(scale: str, function: Any, row: Row) -> None:
    """Arbitrary bodies with arbitrary headers, and arbitrary bodies with their own correct signature."""
    count = {"n": 0, "signed": 0}

    @settings(
        max_examples=EXAMPLES[scale],
        deadline=None,
        suppress_health_check=list(HealthCheck),
        database=None,
        derandomize=scale == "quick",  # the quick form is reproducible; the full form explores anew each run
    )
    @given(
        body=_bodies,
        notification=_notifications(),
        signable=_signable(),
        header=_headers,
        sign=st.sampled_from(["no", "body", "notification", "notification-bytes", "signable"]),
        as_mapping=st.booleans(),
    )
    def run(
        body: Any, notification: dict[str, Any], signable: dict[str, Any], header: Any, sign: str, as_mapping: bool
    ) -> None:
        count["n"] += 1
        if sign != "no":
            if sign == "signable":
                body = signable
            elif sign != "body":  # a notification-shaped body, signed: the parsing behind the check is reached
                body = notification if sign == "notification" else json.dumps(notification, allow_nan=True).encode()
            signature = _signed(body)
            assert signature is not None or sign != "signable", body
            if signature is not None:
                count["signed"] += 1
                header = httpx.Headers({SIGNATURE_HEADER: signature}) if as_mapping else signature
        function(body, header)

    run()
    row.requests = count["n"]
    row.faults = count["n"] - count["signed"]
    assert count["signed"] >= count["n"] // 10, (
        "few correctly signed examples: the parsing after the check is barely exercised"
    )


def test_a_valid_notification_still_verifies_and_parses(scale: str) -> None:
    """The fuzz property is not met by refusing everything: a real notification passes."""
    body = {
        "bill": {
            "siteId": "270305",
            "billId": "b1",
            "amount": {"value": "1.00", "currency": "RUB"},
            "status": {"value": "PAID", "changedDateTime": "2021-01-18T15:25:18+03"},
            "creationDateTime": "2021-01-18T15:24:53+03",
            "expirationDateTime": "2021-02-17T15:24:53+03",
        },
        "version": "1",
    }
    raw = json.dumps(body).encode()
    signature = compute_signature(raw, secret=SECRET)
    assert verify_signature(raw, {SIGNATURE_HEADER: signature}, secret=SECRET) is True
    assert parse_notification(raw, signature, secret=SECRET).bill.bill_id == "b1"
    assert (
        verify_signature(raw, signature.replace(signature[0], "0" if signature[0] != "0" else "1"), secret=SECRET)
        is False
    )


def test_signatures_are_compared_with_compare_digest(scale: str, row: Row) -> None:
    """Constant-time comparison: every verification path calls `hmac.compare_digest` with the raw digests, and
    the answer is what `compare_digest` says (a plain `==` anywhere would bypass the mock)."""
    raw = json.dumps(
        {
            "bill": {
                "siteId": "s",
                "billId": "b",
                "amount": {"value": "1.00", "currency": "RUB"},
                "status": {"value": "PAID"},
            }
        }
    ).encode()
    right = compute_signature(raw, secret=SECRET)
    wrong = "0" * 64
    for answer in (True, False):
        with mock.patch.object(hmac, "compare_digest", autospec=True, return_value=answer) as spy:
            # With the comparison forced, a wrong signature passes and a right one fails: nothing else decides.
            assert verify_signature(raw, wrong if answer else right, secret=SECRET) is answer
            assert spy.call_count == 1
            left, received = spy.call_args.args
            assert isinstance(left, bytes)
            assert isinstance(received, bytes)
            assert len(left) == len(received) == 32
    with mock.patch.object(hmac, "compare_digest", autospec=True, return_value=False) as spy:
        with pytest.raises(InvalidSignatureError):
            parse_notification(raw, right, secret=SECRET)
        assert spy.call_count == 1
    # And the module uses the hmac module's function (not a copy bound at import time, which the mock would miss).
    assert "compare_digest" not in vars(qiwi_bill._signature)
    row.requests = 3
