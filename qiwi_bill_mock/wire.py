"""Wire shapes of the mock: bills, refunds and notifications as QIWI sent them (no HTTP imports).

Shapes follow real captures (docs/sources.md): amounts as 2-decimal strings, timestamps
in Moscow time with milliseconds and `+03:00`, empty `customer` / `customFields` and an absent
`comment` left out, and this key order: siteId, billId, amount{currency,value},
status{value,changedDateTime}, customer, customFields, comment, creationDateTime,
expirationDateTime, payUrl.
"""

from __future__ import annotations

import functools
import json
from datetime import datetime
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from qiwi_bill import MOSCOW_TZ, format_datetime, normalize_amount
from qiwi_bill_mock.models import from_micros, to_micros

if TYPE_CHECKING:
    from qiwi_bill_mock.models import Bill, Refund

__all__ = [
    "bill_to_wire",
    "dumps",
    "format_amount",
    "format_expiration",
    "format_timestamp",
    "from_micros",
    "notification_body",
    "pay_url",
    "refund_to_wire",
    "signed_fields",
    "to_micros",
]


@functools.lru_cache(maxsize=8192)
def format_timestamp(micros: int, *, offset: bool = True) -> str:
    """Server timestamp as QIWI wrote it: Moscow time, milliseconds, `+03:00` (cached: bills are read often)."""
    text = format_datetime(from_micros(micros), tz=MOSCOW_TZ, timespec="milliseconds")
    return text if offset else text[:-6]


def format_expiration(moment: datetime, *, with_fraction: bool) -> str:
    """`expirationDateTime` echoed in the offset and precision it was sent with (ms at most).

    `qiwi_bill.format_datetime`'s spelling; a parsed RFC 3339 value is aware with a whole-minute offset, which
    is all that function checks first, so the checks are skipped (2 us of a create, `python -m bench.profile put`).
    """
    return moment.isoformat(timespec="milliseconds" if with_fraction else "seconds")


def format_amount(value: Decimal) -> str:
    """Exact 2-decimal string (`"10.00"`), as every capture since 2018 shows (`qiwi_bill.normalize_amount`).

    A stored amount already has two decimals: its plain spelling is the answer (1 us less per bill answer).
    """
    text = f"{value:f}"
    return text if text[-3:-2] == "." else normalize_amount(value)


def pay_url(public_url: str, invoice_uid: str) -> str:
    """The real shape: `https://oplata.qiwi.com/form/?invoice_uid=<uuid>` (docs/sources.md)."""
    return f"{public_url.rstrip('/')}/form/?invoice_uid={invoice_uid}"


def bill_to_wire(bill: Bill, *, pay_url: str | None = None, broken: frozenset[str] = frozenset()) -> dict[str, Any]:
    """The bill as the API returns it (`pay_url=None` gives the notification shape, without payUrl)."""
    amount: dict[str, Any] = {"currency": bill.currency, "value": format_amount(bill.amount)}
    if "amount_as_number" in broken:
        amount["value"] = float(bill.amount)
    body: dict[str, Any] = {
        "siteId": bill.site_id,
        "billId": bill.bill_id,
        "amount": amount,
        "status": {"value": bill.status, "changedDateTime": format_timestamp(bill.changed_us)},
    }
    if bill.customer:
        body["customer"] = dict(bill.customer)
    if bill.custom_fields:
        body["customFields"] = dict(bill.custom_fields)
    if bill.comment is not None:
        body["comment"] = bill.comment
    body["creationDateTime"] = format_timestamp(bill.created_us, offset="datetime_without_offset" not in broken)
    body["expirationDateTime"] = bill.expiration_text
    if pay_url is not None:
        body["payUrl"] = pay_url
    return body


def refund_to_wire(refund: Refund) -> dict[str, Any]:
    """The refund as the API returns it; the timestamp key is `dateTime` (Node SDK README capture)."""
    return {
        "amount": {"currency": refund.currency, "value": format_amount(refund.amount)},
        "dateTime": format_timestamp(refund.created_us),
        "refundId": refund.refund_id,
        "status": refund.status,
    }


def notification_body(bill: Bill) -> dict[str, Any]:
    """`{"bill": {...}, "version": "1"}`: the bill without payUrl (neither doc sample has one)."""
    return {"bill": bill_to_wire(bill), "version": "1"}


_COMPACT = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False)  # built once, not per call


def dumps(obj: Any) -> bytes:
    """Compact UTF-8 JSON."""
    return _COMPACT.encode(obj).encode()


def signed_fields(*, site_id: str, bill_id: str, currency: str, amount: str, status: str) -> dict[str, Any]:
    """The notification's signed members, in its own shape (what `qiwi_bill.compute_signature` reads).

    `X-Api-Signature-SHA256` covers `amount.currency|amount.value|billId|siteId|status.value` (bill-payments-docs,
    notifications); the notifier signs this model, never a re-parsed body.
    """
    return {
        "bill": {
            "siteId": site_id,
            "billId": bill_id,
            "amount": {"currency": currency, "value": amount},
            "status": {"value": status},
        },
        "version": "1",
    }
