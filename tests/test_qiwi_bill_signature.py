"""Notification signatures: the official vector, every malformed input, constant-time comparison, properties."""

from __future__ import annotations

import hmac
import json
from decimal import Decimal

import pytest
from hypothesis import given, settings, strategies as st

from qiwi_bill import (
    InvalidFieldError,
    InvalidNotificationError,
    InvalidSignatureError,
    compute_signature,
    signature_message,
    verify_signature,
)
from qiwi_bill_client.models import BillNotification

SECRET = "test-merchant-secret-for-signature-check"
GOLDEN = "07e0ebb10916d97760c196034105d010607a6c6b7d72bfa1c3451448ac484a3b"
# The same bill signed without two-decimal formatting (`RUB|1|...`): docs/sources.md, Official SDKs.
UNNORMALISED = "1536ed36e8e5fb82dc5ee3ca360afc307ddb151c65fe6a63becf201e5cc97b12"


def golden_bill(value: object = "1.00") -> dict[str, object]:
    return {
        "siteId": "test",
        "billId": "test_bill",
        "amount": {"value": value, "currency": "RUB"},
        "status": {"value": "PAID"},
    }


def full_body(value: object = "1.00") -> dict[str, object]:
    bill = golden_bill(value)
    bill["status"] = {"value": "PAID", "changedDateTime": "2021-01-18T15:25:18+03"}
    bill["creationDateTime"] = "2021-01-18T15:24:53+03"
    bill["expirationDateTime"] = "2025-12-10T09:02:00+03"
    return {"bill": bill, "version": "1"}


# --- the official vector ------------------------------------------------------------------------------------------


@pytest.mark.parametrize("value", [1, "1", "1.0", "1.00", Decimal(1), Decimal("1.00"), 1.0])
def test_official_vector_signs_every_spelling_of_one_rouble(value):
    assert compute_signature({"bill": golden_bill(value)}, secret=SECRET) == GOLDEN


def test_official_vector_message_has_two_decimals():
    assert signature_message({"bill": golden_bill(1)}) == "RUB|1.00|test_bill|test|PAID"


def test_unnormalised_amount_would_give_another_digest():
    raw = hmac.new(SECRET.encode(), b"RUB|1|test_bill|test|PAID", "sha256").hexdigest()
    assert raw == UNNORMALISED != GOLDEN


def test_verify_accepts_official_vector():
    assert verify_signature({"bill": golden_bill(1)}, GOLDEN, secret=SECRET) is True


def test_hmac_primitive_matches_java_sdk_vector():
    # Java BillPaymentsUtilsTest: HMAC-SHA256(key "key", data "data").
    assert (
        hmac.digest(b"key", b"data", "sha256").hex()
        == "5031fe3d989c6d1537a013fa6e739da23463fdaec3b70137d828e36ace221bd0"
    )


def test_java_sdk_join_vector():
    bill = {
        "siteId": "siteId",
        "billId": "billId",
        "amount": {"value": 10, "currency": "RUB"},
        "status": {"value": "PAID"},
    }
    assert signature_message(bill) == "RUB|10.00|billId|siteId|PAID"


def test_message_rounds_third_decimal_half_down():
    assert signature_message(golden_bill("200.345")).split("|")[1] == "200.34"
    assert signature_message(golden_bill("200.346")).split("|")[1] == "200.35"


# --- body shapes --------------------------------------------------------------------------------------------------


def test_body_as_bytes_str_mapping_and_bare_bill_all_verify():
    body = full_body()
    raw = json.dumps(body)
    for form in (body, body["bill"], raw, raw.encode(), bytearray(raw.encode()), memoryview(raw.encode())):
        assert verify_signature(form, GOLDEN, secret=SECRET), type(form)


def test_body_with_json_number_amount_verifies_from_bytes():
    # Doc samples carry numbers (`100`, `2.42`); JSON text is read with Decimal so no float rounding sneaks in.
    body = json.dumps({"bill": golden_bill(1)}).encode()
    assert verify_signature(body, GOLDEN, secret=SECRET)
    bill = golden_bill("2.42")
    sig = compute_signature(bill, secret=SECRET)
    assert verify_signature(json.dumps({"bill": golden_bill(2.42)}), sig, secret=SECRET)


def test_generated_model_can_be_signed():
    model = BillNotification.from_dict(full_body())
    assert compute_signature(model, secret=SECRET) == GOLDEN
    assert compute_signature(model.bill, secret=SECRET) == GOLDEN


def test_unsigned_fields_do_not_change_the_signature():
    body = full_body()
    body["version"] = "3"
    body["bill"]["comment"] = "anything"  # type: ignore[index]
    assert verify_signature(body, GOLDEN, secret=SECRET)


def test_secret_may_be_bytes():
    assert compute_signature(golden_bill(), secret=SECRET.encode()) == GOLDEN


def test_secret_is_used_as_is_not_base64_decoded():
    # glQiwiApi base64-decodes the key; a base64-looking secret must still be used as its UTF-8 text.
    secret = "aGVsbG8="
    expected = hmac.new(secret.encode(), b"RUB|1.00|test_bill|test|PAID", "sha256").hexdigest()
    assert compute_signature(golden_bill(), secret=secret) == expected


def test_non_ascii_secret_is_utf8():
    secret = "секрет"
    expected = hmac.new(secret.encode("utf-8"), b"RUB|1.00|test_bill|test|PAID", "sha256").hexdigest()
    assert compute_signature(golden_bill(), secret=secret) == expected


# --- headers ------------------------------------------------------------------------------------------------------


def test_uppercase_hex_is_accepted():
    assert verify_signature(golden_bill(), GOLDEN.upper(), secret=SECRET)


def test_header_bytes_and_surrounding_whitespace_are_accepted():
    assert verify_signature(golden_bill(), GOLDEN.encode(), secret=SECRET)
    assert verify_signature(golden_bill(), f" {GOLDEN}\t", secret=SECRET)


@pytest.mark.parametrize(
    "name", ["X-Api-Signature-SHA256", "x-api-signature-sha256", "X-Api-Signature-Sha256", "X-API-SIGNATURE-SHA256"]
)
def test_header_lookup_in_a_plain_dict_is_case_insensitive(name):
    headers = {"Content-Type": "application/json", name: GOLDEN}
    assert verify_signature(golden_bill(), headers, secret=SECRET)


def test_header_lookup_with_bytes_header_names():
    assert verify_signature(golden_bill(), {b"x-api-signature-sha256": GOLDEN}, secret=SECRET)  # type: ignore[dict-item]


def test_header_lookup_in_a_headers_object():
    import httpx
    from starlette.datastructures import Headers

    assert verify_signature(golden_bill(), httpx.Headers({"x-api-signature-SHA256": GOLDEN}), secret=SECRET)
    assert verify_signature(golden_bill(), Headers({"X-Api-Signature-Sha256": GOLDEN}), secret=SECRET)


@pytest.mark.parametrize(
    "header",
    [
        None,
        "",
        "   ",
        "foo",  # the official SDKs' negative test
        GOLDEN[:-1],
        GOLDEN + "0",
        GOLDEN[:-2],
        "g" * 64,
        GOLDEN[:-1] + "z",
        GOLDEN[:30] + " " + GOLDEN[31:],
        GOLDEN[:-1] + "é",
        GOLDEN[:-1] + "\u0660",  # Arabic-Indic digit zero: Unicode digit, not ASCII hex
        "é" * 64,
        b"\xff" * 64,
        GOLDEN.encode()[:-1] + b"\xff",
        {},
        {"Content-Type": "application/json"},
        {"X-Api-Signature-SHA256": None},
        12345,
        ["list"],
    ],
)
def test_malformed_header_is_a_clean_false(header):
    assert verify_signature(golden_bill(), header, secret=SECRET) is False


def test_wrong_signature_of_the_right_shape_is_false():
    assert verify_signature(golden_bill(), "0" * 64, secret=SECRET) is False


@pytest.mark.parametrize(
    "body",
    [
        b"",
        b"not json",
        b"\xff\xfe",
        "[]",
        "null",
        "42",
        {"bill": None},
        {"bill": "x"},
        {"bill": {}},
        {"bill": {**golden_bill(), "amount": None}},
        {"bill": {**golden_bill(), "amount": {"currency": "RUB"}}},
        {"bill": {**golden_bill(), "amount": {"value": "abc", "currency": "RUB"}}},
        {"bill": {**golden_bill(), "amount": {"value": "NaN", "currency": "RUB"}}},
        {"bill": {**golden_bill(), "amount": {"value": True, "currency": "RUB"}}},
        {"bill": {**golden_bill(), "amount": {"value": "1", "currency": 643}}},
        {"bill": {**golden_bill(), "billId": 1}},
        {"bill": {**golden_bill(), "siteId": None}},
        {"bill": {**golden_bill(), "status": "PAID"}},
        {"bill": {**golden_bill(), "status": {}}},
        b"[" * 100000,
        12,
        None,
    ],
)
def test_malformed_body_is_a_clean_false(body):
    assert verify_signature(body, GOLDEN, secret=SECRET) is False


@pytest.mark.parametrize(
    ("body", "field"),
    [
        (b"not json", "body"),
        ({"bill": {**golden_bill(), "amount": {"currency": "RUB"}}}, "bill.amount.value"),
        ({"bill": {**golden_bill(), "amount": {"value": "abc", "currency": "RUB"}}}, "bill.amount.value"),
        ({"bill": {**golden_bill(), "billId": 1}}, "bill.billId"),
        ({"bill": {**golden_bill(), "status": {}}}, "bill.status.value"),
        ({"bill": {k: v for k, v in golden_bill().items() if k != "siteId"}}, "bill.siteId"),
    ],
)
def test_compute_on_malformed_body_names_the_field(body, field):
    with pytest.raises(InvalidNotificationError) as info:
        compute_signature(body, secret=SECRET)
    assert info.value.field == field
    assert str(info.value).startswith(field)
    assert isinstance(info.value, InvalidSignatureError)
    assert isinstance(info.value, ValueError)


@pytest.mark.parametrize("secret", ["", b"", None, 123])
def test_empty_or_wrong_type_secret_is_a_configuration_error(secret):
    with pytest.raises(InvalidFieldError, match=r"^secret:"):
        verify_signature(golden_bill(), GOLDEN, secret=secret)
    with pytest.raises(InvalidFieldError, match=r"^secret:"):
        compute_signature(golden_bill(), secret=secret)


def test_error_messages_never_contain_the_secret():
    messages = []
    for body in (b"x", {"bill": {}}, {"bill": {**golden_bill(), "amount": {"value": SECRET, "currency": "RUB"}}}):
        with pytest.raises(ValueError, match=r"^(body|bill)") as info:
            compute_signature(body, secret=SECRET)
        messages.append(str(info.value))
    assert messages
    assert all(SECRET not in message for message in messages), messages


# --- constant time ------------------------------------------------------------------------------------------------


def test_comparison_goes_through_hmac_compare_digest(monkeypatch):
    calls: list[tuple[bytes, bytes]] = []
    real = hmac.compare_digest

    def spy(a, b):
        calls.append((a, b))
        return real(a, b)

    monkeypatch.setattr(hmac, "compare_digest", spy)
    assert verify_signature(golden_bill(), GOLDEN, secret=SECRET) is True
    assert verify_signature(golden_bill(), "0" * 64, secret=SECRET) is False
    assert len(calls) == 2
    # Raw digest bytes, not hex text: both sides are the 32-byte HMAC.
    assert calls[0] == (bytes.fromhex(GOLDEN), bytes.fromhex(GOLDEN))
    assert all(isinstance(a, bytes) and isinstance(b, bytes) and len(a) == len(b) == 32 for a, b in calls)


def test_result_is_whatever_compare_digest_says(monkeypatch):
    # Proves no other equality check short-circuits the answer.
    monkeypatch.setattr(hmac, "compare_digest", lambda a, b: False)
    assert verify_signature(golden_bill(), GOLDEN, secret=SECRET) is False
    monkeypatch.setattr(hmac, "compare_digest", lambda a, b: True)
    assert verify_signature(golden_bill(), "0" * 64, secret=SECRET) is True


# --- properties ---------------------------------------------------------------------------------------------------

_text = st.text(min_size=1, max_size=40)
_amounts = st.decimals(min_value=Decimal("0.01"), max_value=Decimal("999999.99"), places=2)
_bills = st.fixed_dictionaries(
    {
        "siteId": _text,
        "billId": _text,
        "currency": st.sampled_from(["RUB", "KZT", "USD"]) | st.text(min_size=1, max_size=5),
        "value": _amounts,
        "status": st.sampled_from(["WAITING", "PAID", "REJECTED", "EXPIRED"]),
    }
)
_secrets = st.text(min_size=1, max_size=64)


def as_body(bill: dict[str, object], spelling: str = "str") -> dict[str, object]:
    value = bill["value"]
    assert isinstance(value, Decimal)
    spelled: object = {"str": f"{value:f}", "decimal": value, "short": f"{value.normalize():f}"}[spelling]
    return {
        "bill": {
            "siteId": bill["siteId"],
            "billId": bill["billId"],
            "amount": {"value": spelled, "currency": bill["currency"]},
            "status": {"value": bill["status"]},
        },
        "version": "1",
    }


# Properties run without Hypothesis deadlines: timing belongs in benchmarks, and CI machines are shared.
@settings(deadline=None)
@given(bill=_bills, secret=_secrets, spelling=st.sampled_from(["str", "decimal", "short"]))
def test_property_verify_accepts_its_own_signature(bill, secret, spelling):
    body = as_body(bill, spelling)
    signature = compute_signature(body, secret=secret)
    assert verify_signature(body, signature, secret=secret)
    assert verify_signature(json.dumps(as_body(bill)).encode(), signature.upper(), secret=secret)


@settings(deadline=None)
@given(
    bill=_bills,
    secret=_secrets,
    field=st.sampled_from(["siteId", "billId", "currency", "value", "status"]),
    data=st.data(),
)
def test_property_changing_one_signed_field_breaks_the_signature(bill, secret, field, data):
    signature = compute_signature(as_body(bill), secret=secret)
    strategy = {"siteId": _text, "billId": _text, "currency": _text, "value": _amounts, "status": _text}[field]
    changed = {**bill, field: data.draw(strategy.filter(lambda v: v != bill[field]), label=field)}
    assert not verify_signature(as_body(changed), signature, secret=secret)


@settings(deadline=None)
@given(bill=_bills, secret=_secrets, other=_secrets)
def test_property_another_secret_breaks_the_signature(bill, secret, other):
    if other.encode() == secret.encode():
        return
    signature = compute_signature(as_body(bill), secret=secret)
    assert not verify_signature(as_body(bill), signature, secret=other)


@settings(deadline=None)
@given(bill=_bills, secret=_secrets, header=st.one_of(st.text(), st.binary(), st.none()))
def test_property_arbitrary_headers_never_raise(bill, secret, header):
    assert verify_signature(as_body(bill), header, secret=secret) in (True, False)


@settings(deadline=None)
@given(body=st.one_of(st.binary(max_size=200), st.text(max_size=200)), secret=_secrets)
def test_property_arbitrary_bodies_never_raise(body, secret):
    assert verify_signature(body, "0" * 64, secret=secret) is False


def test_secret_subclasses_and_alternating_secrets_sign_correctly():
    class Secret(str):
        pass

    assert compute_signature(golden_bill(), secret=Secret(SECRET)) == GOLDEN
    # The prepared-key cache must never mix keys up.
    for _ in range(3):
        assert compute_signature(golden_bill(), secret="other") != GOLDEN
        assert compute_signature(golden_bill(), secret=SECRET) == GOLDEN
