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
import re
from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from qiwi_bill_mock.store import Bill, Refund

__all__ = [
    "MOSCOW",
    "bill_to_wire",
    "dumps",
    "format_amount",
    "format_expiration",
    "format_timestamp",
    "from_micros",
    "notification_body",
    "parse_rfc3339",
    "pay_url",
    "refund_to_wire",
    "to_micros",
]

# Moscow has been UTC+3 all year since 2014-10-26; every capture shows +03:00.
MOSCOW = timezone(timedelta(hours=3))
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)

_RFC3339 = re.compile(
    r"(\d{4})-(\d{2})-(\d{2})[Tt](\d{2}):(\d{2}):(\d{2})(?:\.(\d+))?(?:([Zz])|([+-])(\d{2}):(\d{2}))",
    re.ASCII,
)


def to_micros(moment: datetime) -> int:
    """Aware datetime → integer microseconds since the epoch (exact, no float)."""
    if moment.tzinfo is None or moment.utcoffset() is None:
        raise ValueError("naive datetime: the mock only works with timezone-aware datetimes")
    delta = moment - _EPOCH
    return (delta.days * 86_400 + delta.seconds) * 1_000_000 + delta.microseconds


def from_micros(micros: int, tz: timezone = UTC) -> datetime:
    """Inverse of `to_micros`."""
    return (_EPOCH + timedelta(microseconds=micros)).astimezone(tz)


def _format(moment: datetime, *, millis: bool, offset: bool) -> str:
    text = (
        f"{moment.year:04d}-{moment.month:02d}-{moment.day:02d}"
        f"T{moment.hour:02d}:{moment.minute:02d}:{moment.second:02d}"
    )
    if millis:
        text += f".{moment.microsecond // 1000:03d}"
    if offset:
        delta = moment.utcoffset() or timedelta(0)
        minutes = int(delta.total_seconds()) // 60
        sign = "-" if minutes < 0 else "+"
        minutes = abs(minutes)
        text += f"{sign}{minutes // 60:02d}:{minutes % 60:02d}"
    return text


@functools.lru_cache(maxsize=8192)
def format_timestamp(micros: int, *, offset: bool = True) -> str:
    """Server timestamp as QIWI wrote it: Moscow time, milliseconds, `+03:00` (cached: bills are read often)."""
    return _format(from_micros(micros, MOSCOW), millis=True, offset=offset)


def parse_rfc3339(text: str) -> tuple[datetime, bool]:
    """Parse an RFC 3339 date-time (offset required, any fraction length).

    Returns:
        The aware datetime (fraction truncated to microseconds) and whether a fraction was sent.

    Raises:
        ValueError: not RFC 3339 with an offset, or out of Python's datetime range.
    """
    match = _RFC3339.fullmatch(text)
    if match is None:
        raise ValueError("must be an ISO 8601 date-time with an offset, e.g. 2030-04-13T14:30:00+03:00")
    year, month, day, hour, minute, second, fraction, zulu, sign, off_h, off_m = match.groups()
    if text[10] == "T" and zulu != "z" and (fraction is None or len(fraction) in (3, 6)):
        # The shapes clients send (`2030-04-13T14:30:00+03:00`, `.123`): the C parser reads them exactly.
        try:
            moment = datetime.fromisoformat(text)
            to_micros(moment)  # instants near year 1 or 9999 overflow in UTC
        except (ValueError, OverflowError):
            pass  # the general path below says why
        else:
            return moment, fraction is not None
    micro = int((fraction or "0")[:6].ljust(6, "0"))
    if zulu:
        tz = UTC
    else:
        delta = timedelta(hours=int(off_h), minutes=int(off_m))
        if delta >= timedelta(hours=24):
            raise ValueError("offset out of range")
        tz = timezone(-delta if sign == "-" else delta)
    try:
        moment = datetime(int(year), int(month), int(day), int(hour), int(minute), int(second), micro, tzinfo=tz)
        to_micros(moment)  # instants near year 1 or 9999 overflow in UTC
    except OverflowError:
        raise ValueError("date-time out of range") from None
    return moment, fraction is not None


def format_expiration(moment: datetime, *, with_fraction: bool) -> str:
    """`expirationDateTime` echoed in the offset and precision it was sent with (ms at most)."""
    return _format(moment, millis=with_fraction, offset=True)


def format_amount(value: Decimal) -> str:
    """Exact 2-decimal string (`"10.00"`), as every capture since 2018 shows."""
    return f"{value.quantize(Decimal('0.01')):f}"


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
