"""Dates: aware in and out, every QIWI spelling parsed, Moscow time for the form's lifetime."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest
from hypothesis import given, settings, strategies as st

from qiwi_bill import (
    MOSCOW_TZ,
    InvalidFieldError,
    format_datetime,
    format_lifetime,
    lifetime_by_days,
    parse_datetime,
    parse_lifetime,
)

MSK_NOON = datetime(2021, 1, 18, 12, 0, 0, tzinfo=MOSCOW_TZ)


def test_moscow_is_utc_plus_three():
    assert MOSCOW_TZ.utcoffset(None) == timedelta(hours=3)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2021-01-18T15:25:18+03", datetime(2021, 1, 18, 15, 25, 18, tzinfo=MOSCOW_TZ)),
        ("2021-01-18T15:25:18+03:00", datetime(2021, 1, 18, 15, 25, 18, tzinfo=MOSCOW_TZ)),
        ("2021-01-18T15:25:18+0300", datetime(2021, 1, 18, 15, 25, 18, tzinfo=MOSCOW_TZ)),
        ("2021-01-18T12:25:18Z", datetime(2021, 1, 18, 15, 25, 18, tzinfo=MOSCOW_TZ)),
        ("2021-01-18T12:25:18z", datetime(2021, 1, 18, 15, 25, 18, tzinfo=MOSCOW_TZ)),
        ("2021-01-18T15:25:18", datetime(2021, 1, 18, 15, 25, 18, tzinfo=MOSCOW_TZ)),
        ("2021-01-18T14:22:56.672+03:00", datetime(2021, 1, 18, 14, 22, 56, 672000, tzinfo=MOSCOW_TZ)),
        ("2021-01-18T14:22:56.6+03", datetime(2021, 1, 18, 14, 22, 56, 600000, tzinfo=MOSCOW_TZ)),
        ("2021-01-18T14:22:56.123456789Z", datetime(2021, 1, 18, 14, 22, 56, 123456, tzinfo=UTC)),
        ("2021-01-18T14:22:56,5+03:00", datetime(2021, 1, 18, 14, 22, 56, 500000, tzinfo=MOSCOW_TZ)),
        ("2021-01-18T06:55:18-05:30", datetime(2021, 1, 18, 15, 25, 18, tzinfo=MOSCOW_TZ)),
        ("2021-01-18T06:55:18-0530", datetime(2021, 1, 18, 15, 25, 18, tzinfo=MOSCOW_TZ)),
        ("2021-01-18T10:25:18-02", datetime(2021, 1, 18, 15, 25, 18, tzinfo=MOSCOW_TZ)),
    ],
)
def test_parse_datetime_accepts_every_qiwi_spelling(text, expected):
    parsed = parse_datetime(text)
    assert parsed == expected
    assert parsed.utcoffset() is not None


def test_parse_datetime_keeps_the_written_offset():
    assert parse_datetime("2021-01-18T15:25:18-0530").utcoffset() == -timedelta(hours=5, minutes=30)
    assert parse_datetime("2021-01-18T15:25:18Z").utcoffset() == timedelta(0)


def test_no_offset_means_moscow_or_the_given_default():
    assert parse_datetime("2021-01-18T15:25:18").tzinfo is MOSCOW_TZ
    assert parse_datetime("2021-01-18T15:25:18", default_tz=UTC).tzinfo is UTC


def test_require_offset_rejects_offsetless_text():
    with pytest.raises(InvalidFieldError, match=r"^expirationDateTime: .*no UTC offset"):
        parse_datetime("2021-01-18T15:25:18", require_offset=True, field="expirationDateTime")
    assert parse_datetime("2021-01-18T15:25:18+03", require_offset=True) == datetime(
        2021, 1, 18, 15, 25, 18, tzinfo=MOSCOW_TZ
    )


@pytest.mark.parametrize(
    "text",
    [
        "",
        "2021-01-18",
        "2021-01-18T15:25",
        "2021-01-18 15:25:18+03:00",
        "20210118T152518+03",
        "2021-13-18T15:25:18+03",
        "2021-02-30T15:25:18+03",
        "2021-01-18T24:00:00+03",
        "2021-01-18T15:60:18+03",
        "2021-01-18T15:25:60+03",
        "2021-01-18T15:25:18+3",
        "2021-01-18T15:25:18+03:0",
        "2021-01-18T15:25:18+24:00",
        "2021-01-18T15:25:18+03:60",
        "2021-01-18T15:25:18.+03",
        "2021-01-18T15:25:18.1234567890+03",
        "2021-01-18T15:25:18+03:00 ",
        "2021-01-18T15:25:18MSK",
        "\uff12\uff10\uff12\uff11-01-18T15:25:18+03",
        "2021-W03-1T15:25:18+03",
    ],
)
def test_parse_datetime_rejects_malformed_text(text):
    with pytest.raises(InvalidFieldError, match=r"^datetime:"):
        parse_datetime(text)


@pytest.mark.parametrize("value", [None, 1611000000, b"2021-01-18T15:25:18+03", MSK_NOON])
def test_parse_datetime_rejects_non_strings(value):
    with pytest.raises(InvalidFieldError, match="expected a string"):
        parse_datetime(value)


def test_format_datetime_writes_offset_with_colon_and_no_fraction():
    value = datetime(2018, 2, 4, 20, 16, 58, 999999, tzinfo=MOSCOW_TZ)
    assert format_datetime(value) == "2018-02-04T20:16:58+03:00"


def test_format_datetime_writes_utc_as_plus_zero():
    assert format_datetime(datetime(2018, 2, 4, 17, 16, 58, tzinfo=UTC)) == "2018-02-04T17:16:58+00:00"


def test_format_datetime_converts_with_tz_and_keeps_milliseconds_on_request():
    value = datetime(2020, 6, 14, 1, 29, 53, 27999, tzinfo=UTC)
    assert format_datetime(value, tz=MOSCOW_TZ, timespec="milliseconds") == "2020-06-14T04:29:53.027+03:00"


def test_format_datetime_rejects_naive_and_non_datetimes():
    with pytest.raises(InvalidFieldError, match=r"^expirationDateTime: naive"):
        format_datetime(datetime(2021, 1, 1), field="expirationDateTime")
    with pytest.raises(InvalidFieldError, match="expected a datetime"):
        format_datetime("2021-01-01T00:00:00+03:00")  # type: ignore[arg-type]


def test_format_datetime_rejects_sub_minute_offsets_and_unknown_timespec():
    odd = timezone(timedelta(hours=2, minutes=30, seconds=17))
    with pytest.raises(InvalidFieldError, match="whole number of minutes"):
        format_datetime(datetime(1900, 1, 1, tzinfo=odd))
    assert format_datetime(datetime(1900, 1, 1, tzinfo=odd), tz=UTC).endswith("+00:00")
    with pytest.raises(InvalidFieldError, match=r"^timespec:"):
        format_datetime(MSK_NOON, timespec="hours")  # type: ignore[arg-type]


def test_format_lifetime_is_moscow_time_without_colon():
    assert format_lifetime(datetime(2020, 12, 1, 2, 9, 59, tzinfo=UTC)) == "2020-12-01T0509"
    assert format_lifetime(datetime(2019, 4, 4, 15, 40, tzinfo=MOSCOW_TZ)) == "2019-04-04T1540"


def test_format_lifetime_rejects_naive():
    with pytest.raises(InvalidFieldError, match=r"^lifetime: naive"):
        format_lifetime(datetime(2020, 12, 1, 5, 9))


def test_parse_lifetime_reads_moscow_time():
    assert parse_lifetime("2020-12-01T0509") == datetime(2020, 12, 1, 5, 9, tzinfo=MOSCOW_TZ)


@pytest.mark.parametrize(
    "text",
    ["", "2020-12-01T05:09", "2020-12-01T059", "2020-12-01T2460", "2020-02-30T0509", "2020-12-01T0509+03:00", None],
)
def test_parse_lifetime_rejects_other_shapes(text):
    with pytest.raises(InvalidFieldError, match=r"^lifetime:"):
        parse_lifetime(text)


def test_lifetime_by_days_defaults_to_45_days_in_moscow_time():
    start = datetime(2021, 1, 1, 9, 0, 0, 123456, tzinfo=UTC)
    result = lifetime_by_days(now=start)
    assert result == datetime(2021, 2, 15, 12, 0, 0, tzinfo=MOSCOW_TZ)
    assert result.utcoffset() == timedelta(hours=3)


def test_lifetime_by_days_accepts_fractional_days():
    start = datetime(2021, 1, 1, 0, 0, tzinfo=MOSCOW_TZ)
    assert lifetime_by_days(0.5, now=start) == datetime(2021, 1, 1, 12, 0, tzinfo=MOSCOW_TZ)
    assert lifetime_by_days(1, now=start) == datetime(2021, 1, 2, 0, 0, tzinfo=MOSCOW_TZ)


def test_lifetime_by_days_uses_the_current_time_by_default():
    before = datetime.now(UTC).replace(microsecond=0)
    result = lifetime_by_days(2)
    after = datetime.now(UTC)
    assert before + timedelta(days=2) <= result <= after + timedelta(days=2)


@pytest.mark.parametrize("days", [0, -1, float("nan"), float("inf"), True, "45", None, 40000])
def test_lifetime_by_days_rejects_non_positive_or_silly_days(days):
    with pytest.raises(InvalidFieldError, match=r"^days:"):
        lifetime_by_days(days)


def test_lifetime_by_days_rejects_naive_now():
    with pytest.raises(InvalidFieldError, match=r"^now:"):
        lifetime_by_days(now=datetime(2021, 1, 1))


# --- properties ---------------------------------------------------------------------------------------------------

_offsets = st.integers(min_value=-23 * 60 - 59, max_value=23 * 60 + 59).map(lambda m: timezone(timedelta(minutes=m)))
_aware = st.datetimes(min_value=datetime(1970, 1, 2), max_value=datetime(9998, 12, 30), timezones=_offsets)


def spell_offset(offset: timedelta, style: str) -> str:
    minutes = int(offset.total_seconds()) // 60
    sign = "-" if minutes < 0 else "+"
    hours, mins = divmod(abs(minutes), 60)
    if style == "Z":
        return "Z"
    if style == "colon":
        return f"{sign}{hours:02d}:{mins:02d}"
    if style == "basic":
        return f"{sign}{hours:02d}{mins:02d}"
    return f"{sign}{hours:02d}"


# Properties run without Hypothesis deadlines: timing belongs in benchmarks, and CI machines are shared.
@settings(deadline=None)
@given(_aware)
def test_property_format_then_parse_is_the_same_instant(value):
    text = format_datetime(value)
    assert parse_datetime(text) == value.replace(microsecond=0)
    assert parse_datetime(text).utcoffset() == value.utcoffset()
    millis = format_datetime(value, timespec="milliseconds")
    assert parse_datetime(millis) == value.replace(microsecond=value.microsecond // 1000 * 1000)


@settings(deadline=None)
@given(_aware, st.sampled_from(["colon", "basic", "hours", "Z", "none"]), st.booleans())
def test_property_every_offset_spelling_parses_to_the_same_instant(value, style, fraction):
    if style in ("hours",):
        value = value.replace(tzinfo=timezone(timedelta(hours=int(value.utcoffset().total_seconds() / 3600))))
    if style == "Z":
        value = value.astimezone(UTC)
    if style == "none":
        value = value.astimezone(MOSCOW_TZ)
    local = value.strftime("%Y-%m-%dT%H:%M:%S") + (f".{value.microsecond:06d}" if fraction else "")
    text = local + ("" if style == "none" else spell_offset(value.utcoffset(), style))
    expected = value if fraction else value.replace(microsecond=0)
    assert parse_datetime(text) == expected


@settings(deadline=None)
@given(_aware)
def test_property_lifetime_round_trips_to_the_minute(value):
    text = format_lifetime(value)
    assert parse_lifetime(text) == value.replace(second=0, microsecond=0)
