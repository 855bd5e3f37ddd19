"""The mock's domain values: a bill draft, a bill, a refund, a notification delivery (no I/O, no rules).

Instants are kept as integer microseconds since the epoch (`*_us`: exact, cheap to compare and store; server
times are whole milliseconds), and offered as aware datetimes (`created`, `changed`, `expires`) to the code that
wants them. Money is `Decimal` everywhere.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal
from typing import Any

from attrs import define, field

__all__ = ["Attempt", "Bill", "BillDraft", "Delivery", "Refund", "from_micros", "to_micros"]

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def to_micros(moment: datetime) -> int:
    """Aware datetime → integer microseconds since the epoch (exact, no float).

    Raises:
        ValueError: `moment` is naive (the mock only works with timezone-aware datetimes).
    """
    if moment.tzinfo is None or moment.utcoffset() is None:
        raise ValueError("naive datetime: the mock only works with timezone-aware datetimes")
    delta = moment - _EPOCH
    return (delta.days * 86_400 + delta.seconds) * 1_000_000 + delta.microseconds


def from_micros(micros: int, tz: timezone = UTC) -> datetime:
    """Inverse of `to_micros`, in `tz`."""
    return (_EPOCH + timedelta(microseconds=micros)).astimezone(tz)


@define(frozen=True, kw_only=True)
class BillDraft:
    """A create request, parsed (the rules in `rules.check_draft` decide whether it may become a bill).

    Args:
        amount: Exact amount (rules: more than 0, at most 999999.99, at most 2 decimals).
        currency: ISO 4217 code (rules: one of `Settings.accepted_currencies`).
        expiration: Aware datetime (rules: in the future of the merchant's clock, renderable in Moscow time).
        expiration_text: How `expirationDateTime` is echoed back (the offset and precision sent).
        comment: Optional comment (rules: at most 255 characters).
        customer: `phone` / `email` / `account` strings; empty means none.
        custom_fields: Free-form string values; empty means none.
    """

    amount: Decimal
    currency: str
    expiration: datetime
    expiration_text: str
    comment: str | None = None
    customer: Mapping[str, str] = field(factory=dict)
    custom_fields: Mapping[str, str] = field(factory=dict)


@define(frozen=True, kw_only=True)
class Bill:
    """A stored bill."""

    site_id: str
    bill_id: str
    invoice_uid: str
    amount: Decimal
    currency: str
    status: str
    created_us: int
    changed_us: int
    expires_us: int
    expiration_text: str
    comment: str | None
    customer: Mapping[str, str]
    custom_fields: Mapping[str, str]
    pay_source: str | None
    refunded: Decimal

    @property
    def created(self) -> datetime:
        """`creationDateTime` as an aware datetime (UTC)."""
        return from_micros(self.created_us)

    @property
    def changed(self) -> datetime:
        """`status.changedDateTime` as an aware datetime (UTC)."""
        return from_micros(self.changed_us)

    @property
    def expires(self) -> datetime:
        """`expirationDateTime` as an aware datetime (UTC)."""
        return from_micros(self.expires_us)

    @property
    def version(self) -> tuple[str, str, int]:
        """`(invoice_uid, status, changed_us)`: everything the bill's wire form can change with."""
        return self.invoice_uid, self.status, self.changed_us


@define(frozen=True, kw_only=True)
class Refund:
    """A stored refund."""

    site_id: str
    bill_id: str
    refund_id: str
    amount: Decimal
    currency: str
    status: str
    created_us: int

    @property
    def created(self) -> datetime:
        """The refund's `dateTime` as an aware datetime (UTC)."""
        return from_micros(self.created_us)


@define(frozen=True, kw_only=True)
class Delivery:
    """A notification claimed for one delivery attempt.

    `notification` is the model the notifier signs and sends (`{"bill": {...}, "version": "1"}`); `body` is its
    exact JSON bytes, stored when the status changed.
    """

    id: int
    site_id: str
    bill_id: str
    event_status: str
    url: str
    body: bytes
    attempts: int
    notification: Mapping[str, Any]


@define(frozen=True, kw_only=True)
class Attempt:
    """One delivery attempt as the notifier saw it: when it started, the merchant's answer, how long it took."""

    started_us: int
    status_code: int | None
    latency_ms: float
    error: str | None
