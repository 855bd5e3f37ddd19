"""Payment-form URLs and payUrl options: every documented parameter, RFC 3986 encoding, validation, properties."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal
from urllib.parse import parse_qs, parse_qsl, urlencode, urlsplit

import pytest
from hypothesis import given, settings, strategies as st

from qiwi_bill import (
    DEFAULT_FORM_URL,
    FINGERPRINT_CLIENT,
    MOSCOW_TZ,
    PAY_SOURCES,
    InvalidFieldError,
    generate_bill_id,
    patch_pay_url,
    payment_form_url,
)

PK = "48e7qUxn9T7RyYE1MVZswX1FRSbE6iyCj2gCRwwF3Dnh5XrasNTx3BGPiMsyXQFNKQhvukniQG8RTVhYm3iPsamHJ7XqhuFbPbXLZJh7GfG"
PAY_URL = "https://oplata.qiwi.com/form/?invoice_uid=d875277b-6f0f-445d-8a83-f62c7c07be77"


def query(url: str) -> list[tuple[str, str]]:
    return parse_qsl(urlsplit(url).query, keep_blank_values=True, strict_parsing=True)


# --- payment form -------------------------------------------------------------------------------------------------


def test_form_url_matches_the_php_sdk_vector_without_fingerprint():
    # PHP spec: billId, publicKey, amount 200.345 -> 200.34, successUrl, RFC 3986 encoding.
    url = payment_form_url(PK, bill_id="893794793973", amount="200.345", success_url="http://test.ru/")
    assert url == (
        f"https://oplata.qiwi.com/create?publicKey={PK}&billId=893794793973&amount=200.34"
        "&successUrl=http%3A%2F%2Ftest.ru%2F"
    )


def test_form_url_with_every_documented_parameter():
    lifetime = datetime(2020, 12, 1, 2, 9, tzinfo=UTC)
    url = payment_form_url(
        PK,
        bill_id="b-1",
        amount=Decimal("10.5"),
        phone="79991234567",
        email="payer@example.com",
        account="acc 1",
        comment="Оплата заказа №1 & co",
        custom_fields={"city": "Москва"},
        theme_code="Yvan-YKaSh",
        pay_sources_filter=["qw", "card"],
        lifetime=lifetime,
        success_url="https://merchant.example/ok?bill=b-1",
    )
    assert url.startswith(DEFAULT_FORM_URL + "?")
    assert query(url) == [
        ("publicKey", PK),
        ("billId", "b-1"),
        ("amount", "10.50"),
        ("phone", "79991234567"),
        ("email", "payer@example.com"),
        ("account", "acc 1"),
        ("comment", "Оплата заказа №1 & co"),
        ("customFields[themeCode]", "Yvan-YKaSh"),
        ("customFields[paySourcesFilter]", "qw,card"),
        ("customFields[city]", "Москва"),
        ("lifetime", "2020-12-01T0509"),
        ("successUrl", "https://merchant.example/ok?bill=b-1"),
    ]


def test_form_url_is_rfc3986_encoded():
    url = payment_form_url(PK, comment="a b+c/d~e*", email="x@y.z", custom_fields={"k": "v"})
    q = urlsplit(url).query
    assert "comment=a%20b%2Bc%2Fd~e%2A" in q
    assert "email=x%40y.z" in q
    assert "customFields%5Bk%5D=v" in q
    assert "+" not in q


def test_form_url_fingerprint_is_off_by_default_and_on_request():
    assert "apiClient" not in payment_form_url(PK)
    params = dict(query(payment_form_url(PK, fingerprint=True)))
    assert params["customFields[apiClient]"] == FINGERPRINT_CLIENT
    assert params["customFields[apiClientVersion]"]


def test_form_url_base_is_overridable_and_keeps_its_query():
    assert payment_form_url(PK, base_url="http://127.0.0.1:8080/create").startswith(
        "http://127.0.0.1:8080/create?publicKey="
    )
    url = payment_form_url(PK, base_url="http://127.0.0.1:8080/create?embedded=true")
    assert query(url)[:2] == [("embedded", "true"), ("publicKey", PK)]


def test_lifetime_is_converted_to_moscow_time():
    url = payment_form_url(PK, lifetime=datetime(2021, 5, 1, 23, 47, tzinfo=timezone(timedelta(hours=-5))))
    assert dict(query(url))["lifetime"] == "2021-05-02T0747"


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"public_key": ""}, "public_key"),
        ({"public_key": None}, "public_key"),
        ({"amount": "0"}, "amount"),
        ({"amount": "1000000"}, "amount"),
        ({"amount": 1.5}, "amount"),
        ({"amount": "abc"}, "amount"),
        ({"comment": "x" * 256}, "comment"),
        ({"comment": ""}, "comment"),
        ({"bill_id": "x" * 201}, "bill_id"),
        ({"phone": 79991234567}, "phone"),
        ({"email": ""}, "email"),
        ({"lifetime": datetime(2030, 1, 1)}, "lifetime"),
        ({"pay_sources_filter": ["qw", "bitcoin"]}, "pay_sources_filter"),
        ({"pay_sources_filter": "qw,card"}, "pay_sources_filter"),
        ({"pay_sources_filter": []}, "pay_sources_filter"),
        ({"theme_code": "x" * 256}, "theme_code"),
        ({"custom_fields": {"k": "x" * 256}}, "custom_fields['k']"),
        ({"custom_fields": {"a[b]": "v"}}, "custom_fields"),
        ({"custom_fields": {"": "v"}}, "custom_fields"),
        ({"custom_fields": {"themeCode": "v"}, "theme_code": "w"}, "custom_fields['themeCode']"),
        ({"custom_fields": {"apiClient": "v"}, "fingerprint": True}, "custom_fields['apiClient']"),
        ({"success_url": ""}, "success_url"),
        ({"base_url": "oplata.qiwi.com/create"}, "base_url"),
        ({"base_url": "ftp://oplata.qiwi.com/create"}, "base_url"),
    ],
)
def test_form_url_rejects_invalid_input_naming_the_field(kwargs, field):
    kwargs = {"public_key": PK, **kwargs}
    with pytest.raises(InvalidFieldError) as info:
        payment_form_url(**kwargs)
    assert info.value.field == field
    assert str(info.value).startswith(field)


def test_comment_of_exactly_255_characters_is_accepted():
    assert dict(query(payment_form_url(PK, comment="я" * 255)))["comment"] == "я" * 255


def test_duplicate_pay_sources_are_sent_once():
    assert dict(query(payment_form_url(PK, pay_sources_filter=["qw", "card", "qw"])))[
        "customFields[paySourcesFilter]"
    ] == ("qw,card")


# --- payUrl -------------------------------------------------------------------------------------------------------


def test_pay_url_success_url_matches_the_php_sdk_vector():
    assert patch_pay_url(PAY_URL, success_url="http://test.ru/") == PAY_URL + "&successUrl=http%3A%2F%2Ftest.ru%2F"


def test_pay_url_on_a_url_without_query_matches_the_java_sdk_vector():
    assert patch_pay_url("http://test.ru/", success_url="http://success-url.ru/") == (
        "http://test.ru/?successUrl=http%3A%2F%2Fsuccess-url.ru%2F"
    )


def test_pay_url_every_option():
    url = patch_pay_url(
        PAY_URL,
        pay_source="card",
        allowed_pay_sources=["card", "qw"],
        success_url="https://shop.example/done",
        lifetime=datetime(2020, 12, 1, 5, 9, tzinfo=MOSCOW_TZ),
    )
    assert query(url) == [
        ("invoice_uid", "d875277b-6f0f-445d-8a83-f62c7c07be77"),
        ("paySource", "card"),
        ("allowedPaySources", "card,qw"),
        ("successUrl", "https://shop.example/done"),
        ("lifetime", "2020-12-01T0509"),
    ]


def test_pay_url_replaces_an_option_already_present():
    once = patch_pay_url(PAY_URL, pay_source="qw", success_url="http://a.example/")
    twice = patch_pay_url(once, pay_source="card")
    params = parse_qs(urlsplit(twice).query)
    assert params["paySource"] == ["card"]
    assert params["successUrl"] == ["http://a.example/"]
    assert params["invoice_uid"] == ["d875277b-6f0f-445d-8a83-f62c7c07be77"]


def test_pay_url_replaces_percent_encoded_and_repeated_keys():
    url = "https://oplata.qiwi.com/form?invoiceUid=x&pay%53ource=qw&paySource=mobile"
    assert patch_pay_url(url, pay_source="card") == "https://oplata.qiwi.com/form?invoiceUid=x&paySource=card"


def test_pay_url_keeps_foreign_parameters_byte_for_byte_and_the_fragment():
    url = "https://oplata.qiwi.com/form/?invoice_uid=abc&x=a+b%2Fc&flag&y=#frag"
    patched = patch_pay_url(url, pay_source="qw")
    assert patched == "https://oplata.qiwi.com/form/?invoice_uid=abc&x=a+b%2Fc&flag&y=&paySource=qw#frag"


def test_pay_url_without_options_is_unchanged():
    assert patch_pay_url(PAY_URL) == PAY_URL
    odd = "https://oplata.qiwi.com/form/?invoice_uid=abc&&x=1"
    assert patch_pay_url(odd) == odd


def test_pay_url_is_idempotent():
    options = {"pay_source": "qw", "allowed_pay_sources": ["qw", "card"], "success_url": "http://t.ru/"}
    once = patch_pay_url(PAY_URL, **options)
    assert patch_pay_url(once, **options) == once


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"pay_source": "bitcoin"}, "pay_source"),
        ({"pay_source": "QW"}, "pay_source"),
        ({"allowed_pay_sources": ["qw", "cash"]}, "allowed_pay_sources"),
        ({"allowed_pay_sources": "qw"}, "allowed_pay_sources"),
        ({"allowed_pay_sources": []}, "allowed_pay_sources"),
        ({"pay_source": "mobile", "allowed_pay_sources": ["qw", "card"]}, "pay_source"),
        ({"success_url": ""}, "success_url"),
        ({"lifetime": datetime(2030, 1, 1)}, "lifetime"),
        ({"lifetime": "2030-01-01T0000"}, "lifetime"),
    ],
)
def test_pay_url_rejects_invalid_options_naming_the_field(kwargs, field):
    with pytest.raises(InvalidFieldError) as info:
        patch_pay_url(PAY_URL, **kwargs)
    assert info.value.field == field


@pytest.mark.parametrize("pay_url", ["", "oplata.qiwi.com/form/?invoice_uid=x", "javascript:alert(1)", None])
def test_pay_url_must_be_absolute_http(pay_url):
    with pytest.raises(InvalidFieldError, match=r"^pay_url:"):
        patch_pay_url(pay_url, pay_source="qw")


def test_pay_sources_are_the_documented_four():
    assert PAY_SOURCES == ("qw", "card", "mobile", "sovest")


# --- ids ----------------------------------------------------------------------------------------------------------


def test_generate_bill_id_is_a_fresh_uuid4():
    import uuid

    ids = {generate_bill_id() for _ in range(100)}
    assert len(ids) == 100
    for value in ids:
        assert uuid.UUID(value).version == 4
        assert len(value) == 36
        assert "|" not in value


# --- properties ---------------------------------------------------------------------------------------------------

_values = st.text(st.characters(blacklist_categories=("Cs",)), min_size=1, max_size=50)
_names = _values.filter(lambda s: "[" not in s and "]" not in s)
_sources = st.lists(st.sampled_from(PAY_SOURCES), min_size=1, max_size=4)


# Properties run without Hypothesis deadlines: timing belongs in benchmarks, and CI machines are shared.
@settings(deadline=None)
@given(
    public_key=_values,
    bill_id=_values,
    amount=st.decimals(min_value=Decimal("0.01"), max_value=Decimal("999999.99"), places=2),
    comment=st.text(max_size=255).filter(bool),
    account=_values,
    fields=st.dictionaries(_names, _values, max_size=4),
    success_url=_values,
    sources=_sources,
    lifetime=st.datetimes(min_value=datetime(2000, 1, 1), max_value=datetime(2100, 1, 1), timezones=st.just(UTC)),
)
def test_property_form_url_round_trips_through_urllib(
    public_key, bill_id, amount, comment, account, fields, success_url, sources, lifetime
):
    url = payment_form_url(
        public_key,
        bill_id=bill_id,
        amount=amount,
        comment=comment,
        account=account,
        custom_fields=fields,
        success_url=success_url,
        pay_sources_filter=sources,
        lifetime=lifetime,
    )
    parts = urlsplit(url)
    assert (parts.scheme, parts.netloc, parts.path) == ("https", "oplata.qiwi.com", "/create")
    params = dict(query(url))
    assert params["publicKey"] == public_key
    assert params["billId"] == bill_id
    assert Decimal(params["amount"]) == amount
    assert params["comment"] == comment
    assert params["account"] == account
    assert params["successUrl"] == success_url
    assert params["customFields[paySourcesFilter]"].split(",") == list(dict.fromkeys(sources))
    for name, value in fields.items():
        assert params[f"customFields[{name}]"] == value
    assert params["lifetime"] == lifetime.astimezone(MOSCOW_TZ).strftime("%Y-%m-%dT%H%M")
    # Only RFC 3986 unreserved characters and percent escapes in the query.
    assert all(ch.isascii() and (ch.isalnum() or ch in "-._~%=&") for ch in parts.query)


_foreign = st.lists(
    st.tuples(
        st.text("abcxyz_", min_size=1, max_size=8).filter(
            lambda k: k not in ("paySource", "allowedPaySources", "successUrl", "lifetime")
        ),
        st.text("abc123-._~ /&=?", max_size=10),
    ),
    max_size=5,
)


@settings(deadline=None)
@given(
    foreign=_foreign,
    pay_source=st.none() | st.sampled_from(PAY_SOURCES),
    allowed=st.none() | _sources,
    success_url=st.none() | _values,
    existing=st.lists(st.sampled_from(["paySource=qw", "successUrl=x", "lifetime=2020-01-01T0000"]), max_size=3),
)
def test_property_pay_url_patching_is_idempotent_and_keeps_foreign_parameters(
    foreign, pay_source, allowed, success_url, existing
):
    if pay_source is not None and allowed is not None and pay_source not in allowed:
        allowed = [*allowed, pay_source]
    foreign_query = urlencode(foreign)
    base = "https://oplata.qiwi.com/form/?" + "&".join(filter(None, [foreign_query, *existing]))
    options = {"pay_source": pay_source, "allowed_pay_sources": allowed, "success_url": success_url}
    once = patch_pay_url(base, **options)
    assert patch_pay_url(once, **options) == once
    pairs = parse_qsl(urlsplit(once).query, keep_blank_values=True)
    set_names = {"paySource": pay_source, "allowedPaySources": allowed, "successUrl": success_url}
    assert [p for p in pairs if set_names.get(p[0]) is None] == [
        *foreign,
        *(parse_qsl(e)[0] for e in existing if set_names.get(e.partition("=")[0]) is None),
    ]
    params = parse_qs(urlsplit(once).query, keep_blank_values=True)
    if pay_source is not None:
        assert params["paySource"] == [pay_source]
    if allowed is not None:
        assert params["allowedPaySources"] == [",".join(dict.fromkeys(allowed))]
    if success_url is not None:
        assert params["successUrl"] == [success_url]
