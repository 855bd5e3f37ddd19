"""Dates: timezone-aware in and out; every spelling QIWI used is parsed; Moscow time where QIWI implies it."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta, timezone, tzinfo
from typing import Literal

from ._errors import InvalidFieldError

__all__ = [
    "MOSCOW_TZ",
    "format_datetime",
    "format_lifetime",
    "lifetime_by_days",
    "parse_datetime",
    "parse_lifetime",
]

#: Moscow time, UTC+03:00. A fixed offset rather than ``ZoneInfo("Europe/Moscow")``: Moscow has kept +03:00
#: without DST since 2014-10-26 (before every date of the v1 API), QIWI's servers always answer ``+03:00``, and a
#: fixed offset needs no tz database (Windows ships none). The form's ``lifetime`` and offset-less timestamps are
#: read in this zone.
MOSCOW_TZ = timezone(timedelta(hours=3), "MSK")

# Every spelling seen in QIWI's docs, SDKs and captures (docs/sources.md):
# `2021-01-18T15:25:18+03` (notifications), `...18.672+03:00` (responses), `...18Z`, `...18+0300`, and no offset
# at all (doc samples). Seconds are required: no QIWI source ever omitted them.
_DATETIME = re.compile(
    r"(?P<date>[0-9]{4}-[0-9]{2}-[0-9]{2})[Tt](?P<hour>[0-9]{2}):(?P<minute>[0-9]{2}):(?P<second>[0-9]{2})"
    r"(?:[.,](?P<fraction>[0-9]{1,9}))?"
    r"(?:(?P<utc>[Zz])|(?P<sign>[+-])(?P<oh>[0-9]{2})(?::?(?P<om>[0-9]{2}))?)?"
)
_LIFETIME = re.compile(r"([0-9]{4})-([0-9]{2})-([0-9]{2})T([0-9]{2})([0-9]{2})")


def _require_aware(value: object, field: str) -> datetime:
    if not isinstance(value, datetime):
        raise InvalidFieldError(field, f"expected a datetime, got {type(value).__name__}")
    if value.utcoffset() is None:
        raise InvalidFieldError(field, "naive datetime; pass a timezone-aware one (e.g. tzinfo=qiwi_bill.MOSCOW_TZ)")
    return value


def format_datetime(
    value: datetime,
    *,
    tz: tzinfo | None = None,
    timespec: Literal["seconds", "milliseconds"] = "seconds",
    field: str = "datetime",
) -> str:
    """Format an aware datetime as ``YYYY-MM-DDTHH:MM:SS±HH:MM`` (what the official SDKs' ``normalizeDate`` sends).

    The value keeps its own offset unless ``tz`` is given; UTC is written ``+00:00``, never ``Z`` (as PHP and
    Node do). Fractions of a second are truncated, or kept to milliseconds with ``timespec="milliseconds"``
    (the shape of QIWI's own responses: ``2020-06-14T04:29:53.027+03:00``).

    Args:
        value: A timezone-aware datetime.
        tz: Convert to this zone first, e.g. :data:`MOSCOW_TZ`.
        timespec: ``"seconds"`` or ``"milliseconds"``.
        field: The field name used in error messages.

    Returns:
        The formatted timestamp.

    Raises:
        InvalidFieldError: ``value`` is naive or not a datetime, its offset is not a whole number of minutes,
            or ``timespec`` is unknown.
    """
    value = _require_aware(value, field)
    if tz is not None:
        value = value.astimezone(tz)
    offset = value.utcoffset()
    assert offset is not None  # _require_aware checked it
    if offset % timedelta(minutes=1):
        raise InvalidFieldError(field, f"offset {offset} is not a whole number of minutes; pass tz=")
    if timespec not in ("seconds", "milliseconds"):
        raise InvalidFieldError("timespec", f"expected 'seconds' or 'milliseconds', got {timespec!r}")
    return value.isoformat(timespec=timespec)


def parse_datetime(
    value: str, *, default_tz: tzinfo = MOSCOW_TZ, require_offset: bool = False, field: str = "datetime"
) -> datetime:
    """Parse any timestamp spelling QIWI used into an aware datetime.

    Accepted: ``YYYY-MM-DDTHH:MM:SS``, optionally with a fraction of 1 to 9 digits (beyond microseconds it is
    truncated), then ``Z``, ``±hh:mm``, ``±hhmm``, ``±hh`` or nothing. No offset means Moscow time (QIWI's
    servers run on it), or ``default_tz``; ``require_offset=True`` rejects it instead.

    Args:
        value: The timestamp text.
        default_tz: The zone of a timestamp without an offset.
        require_offset: Reject timestamps without an offset.
        field: The field name used in error messages.

    Returns:
        A timezone-aware datetime carrying the offset that was written.

    Raises:
        InvalidFieldError: The text is not such a timestamp, or a component is out of range.
    """
    if not isinstance(value, str):
        raise InvalidFieldError(field, f"expected a string, got {type(value).__name__}")
    match = _DATETIME.fullmatch(value)
    if match is None:
        raise InvalidFieldError(field, f"not an ISO 8601 timestamp like 2021-01-18T15:25:18+03:00: {value[:60]!r}")
    tz: tzinfo
    if match["utc"]:
        tz = UTC
    elif match["sign"]:
        hours, minutes = int(match["oh"]), int(match["om"] or 0)
        if hours > 23 or minutes > 59:
            raise InvalidFieldError(field, f"offset out of range: {value[:60]!r}")
        delta = timedelta(hours=hours, minutes=minutes)
        tz = timezone(-delta if match["sign"] == "-" else delta)
    elif require_offset:
        raise InvalidFieldError(field, f"the timestamp has no UTC offset: {value[:60]!r}")
    else:
        tz = default_tz
    fraction = match["fraction"] or ""
    try:
        year, month, day = (int(part) for part in match["date"].split("-"))
        return datetime(
            year,
            month,
            day,
            int(match["hour"]),
            int(match["minute"]),
            int(match["second"]),
            int(fraction[:6].ljust(6, "0")),
            tzinfo=tz,
        )
    except ValueError as error:
        raise InvalidFieldError(field, f"{error}: {value[:60]!r}") from None


def format_lifetime(value: datetime, *, field: str = "lifetime") -> str:
    """Format the payment form's ``lifetime``: ``YYYY-MM-DDTHHmm`` in Moscow time.

    The form takes no offset (API doc, "Форма оплаты": ``2020-12-01T0509``) and a colon makes the form ignore the
    value (bill-payments-php-sdk#20), so the instant is converted to Moscow time; seconds are dropped.

    Args:
        value: A timezone-aware datetime.
        field: The field name used in error messages.

    Returns:
        For example ``"2020-12-01T0509"``.

    Raises:
        InvalidFieldError: ``value`` is naive or not a datetime.
    """
    return _require_aware(value, field).astimezone(MOSCOW_TZ).strftime("%Y-%m-%dT%H%M")


def parse_lifetime(value: str, *, field: str = "lifetime") -> datetime:
    """Parse a form ``lifetime`` (``YYYY-MM-DDTHHmm``, Moscow time) into an aware datetime in :data:`MOSCOW_TZ`.

    Raises:
        InvalidFieldError: The text is not in that shape or names an impossible date or time.
    """
    match = _LIFETIME.fullmatch(value) if isinstance(value, str) else None
    if match is None:
        raise InvalidFieldError(field, f"expected YYYY-MM-DDTHHmm (e.g. 2020-12-01T0509), got {str(value)[:60]!r}")
    try:
        year, month, day, hour, minute = (int(part) for part in match.groups())
        return datetime(year, month, day, hour, minute, tzinfo=MOSCOW_TZ)
    except ValueError as error:
        raise InvalidFieldError(field, f"{error}: {value!r}") from None


def lifetime_by_days(days: float = 45, *, now: datetime | None = None) -> datetime:
    """The instant ``days`` from now, in Moscow time: the official SDKs' ``getLifetimeByDay``.

    Returns a datetime rather than a string, so it fits the generated client's ``expiration_date_time``, and
    :func:`format_datetime` / :func:`format_lifetime` give the wire spellings. Fractional days work (as in the Node
    SDK; PHP silently rounds up to one day). 45 days is the default because QIWI expires an unpaid bill 45 days
    after issue.

    Args:
        days: How far ahead, ``> 0``.
        now: The starting instant (aware); the current time by default.

    Returns:
        An aware datetime in :data:`MOSCOW_TZ`, truncated to whole seconds.

    Raises:
        InvalidFieldError: ``days`` is not a positive finite number, or ``now`` is naive.
    """
    if isinstance(days, bool) or not isinstance(days, int | float) or not 0 < days < 36500:
        raise InvalidFieldError("days", f"must be a positive number of days (below 100 years), got {days!r}")
    start = datetime.now(MOSCOW_TZ) if now is None else _require_aware(now, "now")
    return (start + timedelta(days=days)).astimezone(MOSCOW_TZ).replace(microsecond=0)
