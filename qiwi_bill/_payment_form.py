"""The QIWI payment form (``https://oplata.qiwi.com/create?...``) and options appended to a bill's ``payUrl``.

Both are plain URLs QIWI documents but the OpenAPI document cannot express (API doc, "Форма оплаты" and "Опции
payUrl"). Values are percent-encoded per RFC 3986 (space → ``%20``, brackets → ``%5B``/``%5D``), as the PHP SDK
does; the Node SDK's raw ``customFields[apiClient]`` brackets and form-style ``+`` for spaces are avoided.
"""

from __future__ import annotations

import importlib.metadata
from collections.abc import Mapping, Sequence
from datetime import datetime
from urllib.parse import quote, unquote, urlsplit, urlunsplit

from ._dates import format_lifetime
from ._errors import InvalidFieldError
from ._money import AmountInput, format_amount

__all__ = [
    "DEFAULT_FORM_URL",
    "FINGERPRINT_CLIENT",
    "PAY_SOURCES",
    "patch_pay_url",
    "payment_form_url",
]

#: The payment form's address; pass ``base_url=`` to target the mock (it serves ``/create`` too).
DEFAULT_FORM_URL = "https://oplata.qiwi.com/create"

#: Payment methods QIWI names for ``paySource`` / ``allowedPaySources`` (payUrl options) and
#: ``customFields[paySourcesFilter]``: wallet, bank card, mobile account, and the Sovest instalment card.
PAY_SOURCES: tuple[str, ...] = ("qw", "card", "mobile", "sovest")

#: ``customFields[apiClient]`` sent with ``fingerprint=True`` (the official SDKs send ``node_sdk``, ``php_sdk``...).
FINGERPRINT_CLIENT = "python_qiwi_bill"

_COMMENT_MAX = 255  # API doc: comment String(255)
_CUSTOM_FIELD_MAX = 255  # API doc: customFields values String(255)
_BILL_ID_MAX = 200  # API doc: billId String(200)


def _version() -> str:
    try:
        return importlib.metadata.version("qiwi-bill-toolkit")
    except importlib.metadata.PackageNotFoundError:  # pragma: no cover - running from a source tree
        return "0"


def _encode(pairs: Sequence[tuple[str, str]]) -> str:
    # quote(safe="") leaves exactly RFC 3986's unreserved set (ALPHA DIGIT - . _ ~) unencoded.
    return "&".join(f"{quote(name, safe='')}={quote(value, safe='')}" for name, value in pairs)


def _text(value: object, field: str, *, max_length: int | None = None) -> str:
    if not isinstance(value, str):
        raise InvalidFieldError(field, f"expected a string, got {type(value).__name__}")
    if not value:
        raise InvalidFieldError(field, "must not be empty (leave the argument out instead)")
    if max_length is not None and len(value) > max_length:
        raise InvalidFieldError(field, f"at most {max_length} characters, got {len(value)}")
    return value


def _absolute_url(value: object, field: str) -> str:
    text = _text(value, field)
    parts = urlsplit(text)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise InvalidFieldError(field, f"expected an absolute http(s) URL, got {text[:80]!r}")
    return text


def _pay_sources(values: object, field: str) -> list[str]:
    if isinstance(values, str) or not isinstance(values, Sequence | set | frozenset):
        raise InvalidFieldError(field, f"expected a list of pay sources from {PAY_SOURCES}, got {values!r}")
    result: list[str] = []
    for value in values:
        if value not in PAY_SOURCES:
            raise InvalidFieldError(field, f"unknown pay source {value!r}; expected one of {', '.join(PAY_SOURCES)}")
        if value not in result:
            result.append(value)
    if not result:
        raise InvalidFieldError(field, "must name at least one pay source")
    return result


def payment_form_url(
    public_key: str,
    *,
    amount: AmountInput | None = None,
    bill_id: str | None = None,
    phone: str | None = None,
    email: str | None = None,
    account: str | None = None,
    comment: str | None = None,
    custom_fields: Mapping[str, str] | None = None,
    theme_code: str | None = None,
    pay_sources_filter: Sequence[str] | None = None,
    lifetime: datetime | None = None,
    success_url: str | None = None,
    fingerprint: bool = False,
    base_url: str = DEFAULT_FORM_URL,
) -> str:
    """Build a payment-form link: the bill is created when the payer opens it (no API call, no secret key).

    The official SDKs' ``createPaymentForm``, with every documented parameter. Parameters appear in the order
    below; ``None`` leaves one out.

    Args:
        public_key: The merchant's public key (``publicKey``), required.
        amount: ``amount``, formatted with two decimals (:func:`qiwi_bill.format_amount`: 0.01 to 999999.99).
        bill_id: ``billId`` (up to 200 characters); QIWI generates one if omitted. :func:`generate_bill_id`.
        phone: ``phone``, the payer's phone number.
        email: ``email``, the payer's e-mail.
        account: ``account``, the payer's id in the merchant's system.
        comment: ``comment``, up to 255 characters.
        custom_fields: More ``customFields[name]`` values (each up to 255 characters).
        theme_code: ``customFields[themeCode]``, a form style from the merchant's cabinet.
        pay_sources_filter: ``customFields[paySourcesFilter]``: which methods the form offers, from
            :data:`PAY_SOURCES` (sent comma-separated).
        lifetime: ``lifetime``: until when the link works, an aware datetime sent as ``YYYY-MM-DDTHHmm`` in Moscow
            time (the form takes no offset).
        success_url: ``successUrl``, where to send the payer after paying.
        fingerprint: Add ``customFields[apiClient]`` / ``customFields[apiClientVersion]`` like the official SDKs.
        base_url: The form's address; the mock serves the same ``/create`` path.

    Returns:
        The URL.

    Raises:
        InvalidFieldError: An argument is invalid; the message names it.
    """
    url = _absolute_url(base_url, "base_url")
    pairs: list[tuple[str, str]] = [("publicKey", _text(public_key, "public_key"))]
    if bill_id is not None:
        pairs.append(("billId", _text(bill_id, "bill_id", max_length=_BILL_ID_MAX)))
    if amount is not None:
        pairs.append(("amount", format_amount(amount)))
    for name, value, field in (("phone", phone, "phone"), ("email", email, "email"), ("account", account, "account")):
        if value is not None:
            pairs.append((name, _text(value, field)))
    if comment is not None:
        pairs.append(("comment", _text(comment, "comment", max_length=_COMMENT_MAX)))
    fields: dict[str, str] = {}
    if theme_code is not None:
        fields["themeCode"] = _text(theme_code, "theme_code", max_length=_CUSTOM_FIELD_MAX)
    if pay_sources_filter is not None:
        fields["paySourcesFilter"] = ",".join(_pay_sources(pay_sources_filter, "pay_sources_filter"))
    if fingerprint:
        fields["apiClient"] = FINGERPRINT_CLIENT
        fields["apiClientVersion"] = _version()
    for name, value in (custom_fields or {}).items():
        label = f"custom_fields[{name!r}]"
        if not isinstance(name, str) or not name or "[" in name or "]" in name:
            raise InvalidFieldError("custom_fields", f"names must be non-empty strings without brackets: {name!r}")
        if name in fields:
            raise InvalidFieldError(label, "also set by a dedicated argument (theme_code, pay_sources_filter, ...)")
        fields[name] = _text(value, label, max_length=_CUSTOM_FIELD_MAX)
    pairs.extend((f"customFields[{name}]", value) for name, value in fields.items())
    if lifetime is not None:
        pairs.append(("lifetime", format_lifetime(lifetime)))
    if success_url is not None:
        pairs.append(("successUrl", _text(success_url, "success_url")))
    parts = urlsplit(url)
    query = f"{parts.query}&{_encode(pairs)}" if parts.query else _encode(pairs)
    return urlunsplit(parts._replace(query=query))


def patch_pay_url(
    pay_url: str,
    *,
    pay_source: str | None = None,
    allowed_pay_sources: Sequence[str] | None = None,
    success_url: str | None = None,
    lifetime: datetime | None = None,
) -> str:
    """Add the documented options to a bill's ``payUrl`` (``https://oplata.qiwi.com/form/?invoice_uid=...``).

    Like the PHP SDK's ``getPayUrl`` (which only knows ``successUrl``), plus ``paySource``, ``allowedPaySources``
    and ``lifetime``, which no official SDK supports. The existing query is kept byte for byte (``invoice_uid``
    and anything else); an option already present is replaced; options are appended in a fixed order, so
    patching twice with the same arguments gives the same URL. With no options the URL is returned unchanged.

    Args:
        pay_url: The ``payUrl`` from create bill.
        pay_source: ``paySource``: the method preselected on the form, one of :data:`PAY_SOURCES`.
        allowed_pay_sources: ``allowedPaySources``: the only methods offered (sent comma-separated).
        success_url: ``successUrl``: where the payer goes after paying.
        lifetime: ``lifetime``: an aware datetime, sent as ``YYYY-MM-DDTHHmm`` in Moscow time.

    Returns:
        The patched URL.

    Raises:
        InvalidFieldError: An argument is invalid (unknown pay source, ``pay_source`` not among
            ``allowed_pay_sources``, a naive ``lifetime``, ``pay_url`` not an absolute http(s) URL).
    """
    url = _absolute_url(pay_url, "pay_url")
    options: list[tuple[str, str]] = []
    allowed: list[str] | None = None
    if pay_source is not None:
        if pay_source not in PAY_SOURCES:
            raise InvalidFieldError("pay_source", f"unknown pay source {pay_source!r}; expected one of {PAY_SOURCES}")
        options.append(("paySource", pay_source))
    if allowed_pay_sources is not None:
        allowed = _pay_sources(allowed_pay_sources, "allowed_pay_sources")
        if pay_source is not None and pay_source not in allowed:
            raise InvalidFieldError("pay_source", f"{pay_source!r} is not among allowed_pay_sources {allowed}")
        options.append(("allowedPaySources", ",".join(allowed)))
    if success_url is not None:
        options.append(("successUrl", _text(success_url, "success_url")))
    if lifetime is not None:
        options.append(("lifetime", format_lifetime(lifetime)))
    if not options:
        return url
    names = {name for name, _ in options}
    parts = urlsplit(url)
    # Foreign parameters stay as they were written (no decode/re-encode round trip); empty `&&` segments go.
    kept = [raw for raw in parts.query.split("&") if raw and unquote(raw.partition("=")[0]) not in names]
    query = "&".join([*kept, _encode(options)])
    return urlunsplit(parts._replace(query=query))
