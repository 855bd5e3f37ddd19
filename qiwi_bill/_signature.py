"""Notification signatures: ``X-Api-Signature-SHA256`` = HMAC-SHA256 over five bill fields.

QIWI's rule (API doc, "Уведомления"; the same in the P2P docs; reproduced by all four official SDKs):

* message ``{amount.currency}|{amount.value}|{billId}|{siteId}|{status.value}``;
* ``amount.value`` with exactly two decimals (``1`` signs as ``1.00``: the official test vector only verifies
  that way), see :func:`qiwi_bill.normalize_amount`;
* key: the merchant's secret key string as UTF-8 bytes, as given (no base64 or hex decoding -- the bugs of
  glQiwiApi and aioqiwi);
* lowercase hex digest in the header.

The comparison is constant-time (``hmac.compare_digest`` on the raw 32 bytes); none of the official SDKs does
that. Upper-case hex is accepted too (header case carries no secret).
"""

from __future__ import annotations

import functools
import hmac
import json
from collections.abc import Mapping
from decimal import Decimal
from typing import Any

from ._errors import InvalidFieldError, InvalidNotificationError
from ._money import _CANONICAL, normalize_amount

__all__ = [
    "SIGNATURE_HEADER",
    "NotificationInput",
    "SignatureHeaderInput",
    "compute_signature",
    "signature_message",
    "verify_signature",
]

#: The notification header carrying the signature. Header names are case-insensitive (PHP sees
#: ``X-Api-Signature-Sha256``, bill-payments-php-sdk#26).
SIGNATURE_HEADER = "X-Api-Signature-SHA256"
_HEADER_LOWER = SIGNATURE_HEADER.lower()
_canonical_amount = _CANONICAL.fullmatch

NotificationInput = Mapping[str, Any] | bytes | bytearray | memoryview | str
"""A notification: the raw body (``bytes``/``str`` JSON) or a decoded mapping, with or without ``{"bill": ...}``.
Objects with a ``to_dict()`` method (the generated ``BillNotification`` / ``NotificationBill``) work too."""

SignatureHeaderInput = str | bytes | Mapping[str, str] | None
"""The header value, or the request's headers (any mapping; looked up case-insensitively), or ``None``."""


def _key(secret: str | bytes) -> bytes:
    if isinstance(secret, str):
        if secret:
            return secret.encode()
    elif isinstance(secret, bytes) and secret:
        return secret
    # Never echo the value: it is the merchant's secret key.
    raise InvalidFieldError("secret", "the secret key must be a non-empty str or bytes")


@functools.lru_cache(maxsize=64)
def _prepared(secret: str | bytes) -> hmac.HMAC:
    # An HMAC object with the key already absorbed: copying it costs a third of a fresh hmac.new / hmac.digest
    # (OpenSSL re-derives the padded key every time). Bounded; it holds only keys the process already holds.
    return hmac.new(_key(secret), digestmod="sha256")


def _mac(secret: str | bytes) -> hmac.HMAC:
    """A fresh HMAC-SHA256 keyed with ``secret`` (validated: non-empty ``str`` or ``bytes``)."""
    if (type(secret) is str or type(secret) is bytes) and secret:
        return _prepared(secret).copy()
    if isinstance(secret, str | bytes) and secret:  # subclasses: hash them as the plain type
        return _prepared(str(secret) if isinstance(secret, str) else bytes(secret)).copy()
    raise InvalidFieldError("secret", "the secret key must be a non-empty str or bytes")


def _decode(notification: object) -> Mapping[str, Any]:
    """A notification in any accepted form as a mapping (JSON decoded once)."""
    if isinstance(notification, Mapping):
        return notification
    if isinstance(notification, bytes | bytearray | memoryview | str):
        try:
            # Decimal for JSON numbers: `2.42` must sign as written, not as a binary float.
            data = json.loads(
                bytes(notification) if isinstance(notification, memoryview) else notification, parse_float=Decimal
            )
        except (ValueError, RecursionError):  # JSONDecodeError and UnicodeDecodeError are ValueErrors
            raise InvalidNotificationError("body", "not valid UTF-8 JSON") from None
    elif callable(getattr(notification, "to_dict", None)):
        data = notification.to_dict()  # type: ignore[attr-defined]
    else:
        raise InvalidNotificationError("body", f"expected bytes, str or a mapping, got {type(notification).__name__}")
    if not isinstance(data, Mapping):
        raise InvalidNotificationError("body", "expected a JSON object")
    return data


def _bill(data: Mapping[str, Any]) -> Mapping[str, Any]:
    """The ``bill`` object of a decoded notification, with or without the envelope."""
    bill = data.get("bill", data)
    if not isinstance(bill, Mapping):
        raise InvalidNotificationError("bill", "expected an object")
    return bill


def _text(container: Mapping[str, Any], key: str, path: str) -> str:
    value = container.get(key)
    if type(value) is not str:
        if value is None:
            raise InvalidNotificationError(path, "missing")
        raise InvalidNotificationError(path, f"expected a string, got {type(value).__name__}")
    return value


def signature_message(notification: NotificationInput) -> str:
    """The exact text QIWI signs for this notification, e.g. ``RUB|1.00|test_bill|test|PAID``.

    Raises:
        InvalidNotificationError: The body is not JSON, or a signed field is missing or has the wrong type.
    """
    if type(notification) is dict:
        # Hot path for a decoded body whose fields are already canonical: plain lookups, no ABC checks and no
        # Decimal. Anything unusual falls through to the checked path below, which explains what is wrong.
        bill = notification.get("bill", notification)
        try:
            amount = bill["amount"]
            currency, value = amount["currency"], amount["value"]
            bill_id, site_id, status = bill["billId"], bill["siteId"], bill["status"]["value"]
        except (KeyError, TypeError, IndexError):
            pass
        else:
            if (
                type(currency) is str
                and type(value) is str
                and type(bill_id) is str
                and type(site_id) is str
                and type(status) is str
                and _canonical_amount(value)
            ):
                return f"{currency}|{value}|{bill_id}|{site_id}|{status}"
    return _checked_message(notification)


def _checked_message(notification: NotificationInput) -> str:
    bill = _bill(_decode(notification))
    amount = bill.get("amount")
    status = bill.get("status")
    if not isinstance(amount, Mapping):
        raise InvalidNotificationError("bill.amount", "missing or not an object")
    if not isinstance(status, Mapping):
        raise InvalidNotificationError("bill.status", "missing or not an object")
    value = amount.get("value")
    if value is None:
        raise InvalidNotificationError("bill.amount.value", "missing")
    try:
        value_text = normalize_amount(value, field="bill.amount.value")
    except InvalidFieldError:
        # Do not echo the value: messages about untrusted bodies end up in logs.
        raise InvalidNotificationError("bill.amount.value", "not a finite decimal number") from None
    return (
        f"{_text(amount, 'currency', 'bill.amount.currency')}|{value_text}|{_text(bill, 'billId', 'bill.billId')}"
        f"|{_text(bill, 'siteId', 'bill.siteId')}|{_text(status, 'value', 'bill.status.value')}"
    )


def compute_signature(notification: NotificationInput, *, secret: str | bytes) -> str:
    """Sign a notification the way QIWI does: the lowercase hex ``X-Api-Signature-SHA256`` value.

    >>> compute_signature({"bill": {"siteId": "test", "billId": "test_bill", "amount": {"value": 1, "currency": "RUB"},
    ...                    "status": {"value": "PAID"}}}, secret="test-merchant-secret-for-signature-check")
    '07e0ebb10916d97760c196034105d010607a6c6b7d72bfa1c3451448ac484a3b'

    Args:
        notification: The body as ``bytes``/``str`` JSON or a mapping, with or without the ``{"bill": ...}``
            envelope (or a generated model with ``to_dict()``).
        secret: The merchant's secret key (the same key as the API's Bearer token).

    Returns:
        64 lowercase hex digits.

    Raises:
        InvalidNotificationError: The body is not JSON, or a signed field is missing or has the wrong type.
        InvalidFieldError: ``secret`` is empty.
    """
    mac = _mac(secret)
    mac.update(signature_message(notification).encode())
    return mac.hexdigest()


def _header_value(signature_header: SignatureHeaderInput) -> str | bytes | None:
    if signature_header is None or isinstance(signature_header, str | bytes):
        return signature_header
    if isinstance(signature_header, Mapping):
        # Case-insensitive mappings (Starlette, httpx, Django, requests) answer directly; plain dicts are scanned.
        for name in (SIGNATURE_HEADER, _HEADER_LOWER):
            value = signature_header.get(name)
            if value is not None:
                return value
        for name, value in signature_header.items():
            if (
                isinstance(name, str | bytes)
                and (name.decode("latin-1") if isinstance(name, bytes) else name).lower() == _HEADER_LOWER
            ):
                return value
        return None
    return None


def _signature_bytes(signature_header: SignatureHeaderInput) -> bytes | None:
    """The 32 signature bytes, or ``None`` for a missing or malformed header (never raises)."""
    value = signature_header if type(signature_header) is str else _header_value(signature_header)
    if isinstance(value, bytes):
        try:
            value = value.decode("ascii")
        except UnicodeDecodeError:
            return None
    if not isinstance(value, str):
        return None
    if len(value) != 64:
        value = value.strip()
    try:
        # fromhex takes either case and rejects non-hex and non-ASCII text; it skips inner whitespace, which the
        # length check catches (64 characters with a space cannot hold 32 bytes).
        received = bytes.fromhex(value)
    except ValueError:
        return None
    return received if len(received) == 32 else None


def verify_signature(
    notification: NotificationInput, signature_header: SignatureHeaderInput, *, secret: str | bytes
) -> bool:
    """Check a notification's ``X-Api-Signature-SHA256`` in constant time.

    Never raises for bad input from the network: a missing, empty, wrong-length, non-hex or non-ASCII header, or
    a body that is not a readable notification, gives ``False``. Upper- and lower-case hex are both accepted.

    Args:
        notification: The body as ``bytes``/``str`` JSON or a mapping, with or without ``{"bill": ...}``. Pass the
            raw body when you have it.
        signature_header: The header's value, or the whole headers mapping (looked up case-insensitively).
        secret: The merchant's secret key.

    Returns:
        ``True`` only if the signature matches.

    Raises:
        InvalidFieldError: ``secret`` is empty (a configuration error, not bad input).
    """
    mac = _mac(secret)
    received = _signature_bytes(signature_header)
    if received is None:
        return False
    try:
        mac.update(signature_message(notification).encode())
    except InvalidNotificationError:
        return False
    # Compare the raw bytes with hmac.compare_digest: time does not depend on where the first difference is.
    return hmac.compare_digest(mac.digest(), received)
