"""Money: Decimal in, exact two-decimal strings out, never a float."""

from __future__ import annotations

from decimal import Decimal

import pytest
from hypothesis import given, settings, strategies as st

from qiwi_bill import MAX_AMOUNT, MIN_AMOUNT, InvalidFieldError, format_amount, normalize_amount, parse_amount


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (Decimal("10.5"), "10.50"),
        (Decimal(10), "10.00"),
        (10, "10.00"),
        ("10", "10.00"),
        ("10.5", "10.50"),
        ("10.50", "10.50"),
        ("010.50", "10.50"),
        (" 7.1 ", "7.10"),
        ("1e2", "100.00"),
        (Decimal("0.01"), "0.01"),
        (Decimal("999999.99"), "999999.99"),
        (Decimal("1.000"), "1.00"),
    ],
)
def test_format_amount_spells_two_decimals(value, expected):
    assert format_amount(value) == expected


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        # The official SDKs' vectors (docs/sources.md, Official SDKs): all agree with half-down.
        ("200.345", "200.34"),
        ("100.019", "100.02"),
        ("499.90", "499.90"),
        # Half-down: exactly half goes down, anything above half goes up.
        ("0.125", "0.12"),
        ("0.135", "0.13"),
        ("0.1251", "0.13"),
        ("0.1249", "0.12"),
        ("999999.994", "999999.99"),
        ("999999.995", "999999.99"),
    ],
)
def test_format_amount_rounds_a_third_decimal_half_down(value, expected):
    assert format_amount(value) == expected


@pytest.mark.parametrize(
    "value",
    ["0", "0.00", "0.004", "0.005", "-1", "-0.01", "1000000", "999999.996", "1e30", Decimal("-5")],
)
def test_format_amount_rejects_out_of_range(value):
    with pytest.raises(InvalidFieldError, match=r"^amount:"):
        format_amount(value)


@pytest.mark.parametrize(
    "value",
    [
        1.5,
        0.1,
        float("nan"),
        True,
        False,
        None,
        "",
        "abc",
        "1,00",
        "NaN",
        "inf",
        "-Infinity",
        Decimal("NaN"),
        Decimal("Infinity"),
        Decimal("sNaN"),
        [1],
        b"1.00",
    ],
)
def test_format_amount_rejects_non_numbers_and_floats(value):
    with pytest.raises(InvalidFieldError) as info:
        format_amount(value)
    assert info.value.field == "amount"
    assert isinstance(info.value, ValueError)


def test_float_error_explains_why():
    with pytest.raises(InvalidFieldError, match="floats are not accepted"):
        format_amount(10.5)


def test_error_names_the_given_field():
    with pytest.raises(InvalidFieldError, match=r"^refund\.amount:") as info:
        format_amount("0", field="refund.amount")
    assert info.value.field == "refund.amount"


def test_normalize_amount_keeps_sign_and_has_no_range():
    assert normalize_amount("-1") == "-1.00"
    assert normalize_amount("0") == "0.00"
    assert normalize_amount(Decimal("12345678.9")) == "12345678.90"


def test_normalize_amount_reads_json_floats_through_repr():
    # json.loads gives floats for `2.42`; the JSON digits are what was signed.
    assert normalize_amount(2.42) == "2.42"
    assert normalize_amount(0.1 + 0.2) == "0.30"


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("10.50", "10.50"),
        ("100", "100.00"),
        (100, "100.00"),
        ("1.5", "1.50"),
        (Decimal("3"), "3.00"),
        ("-2.50", "-2.50"),
        (" 4.00", "4.00"),
    ],
)
def test_parse_amount_returns_two_decimal_decimal(value, expected):
    result = parse_amount(value)
    assert isinstance(result, Decimal)
    assert str(result) == expected


def test_parse_amount_keeps_extra_decimals_exactly():
    assert parse_amount("1.005") == Decimal("1.005")
    assert str(parse_amount("1.005")) == "1.005"


@pytest.mark.parametrize("value", ["", "abc", "1,00", "NaN", "Infinity", 1.5, True, None, "1e99999"])
def test_parse_amount_rejects_non_numbers(value):
    with pytest.raises(InvalidFieldError, match=r"^amount:"):
        parse_amount(value)


def test_limits_are_the_documented_number_6_2():
    assert MIN_AMOUNT == Decimal("0.01")
    assert MAX_AMOUNT == Decimal("999999.99")


_in_range = st.decimals(
    min_value=Decimal("0.01"), max_value=Decimal("999999.99"), allow_nan=False, allow_infinity=False
)


# Properties run without Hypothesis deadlines: timing belongs in benchmarks, and CI machines are shared.
@settings(deadline=None)
@given(_in_range.map(lambda d: d.quantize(Decimal("0.01"))))
def test_property_two_decimal_amounts_round_trip(value):
    text = format_amount(value)
    assert parse_amount(text) == value
    assert format_amount(parse_amount(text)) == text
    assert format_amount(text) == text


@settings(deadline=None)
@given(st.decimals(allow_nan=False, allow_infinity=False, min_value=Decimal("-1e7"), max_value=Decimal("1e7")))
def test_property_output_never_has_more_than_two_decimals(value):
    try:
        text = format_amount(value)
    except InvalidFieldError:
        assert not (MIN_AMOUNT <= value.quantize(Decimal("0.01"), rounding="ROUND_HALF_DOWN") <= MAX_AMOUNT)
        return
    whole, dot, cents = text.partition(".")
    assert dot == "."
    assert len(cents) == 2
    assert whole.isdigit()
    assert cents.isdigit()
    assert MIN_AMOUNT <= Decimal(text) <= MAX_AMOUNT
    assert abs(Decimal(text) - value) <= Decimal("0.005")


@settings(deadline=None)
@given(
    st.decimals(allow_nan=False, allow_infinity=False, places=2, min_value=Decimal("-1e9"), max_value=Decimal("1e9"))
)
def test_property_normalize_matches_decimal_formatting(value):
    assert normalize_amount(f"{value:f}") == f"{value.quantize(Decimal('0.01')):f}"
    assert normalize_amount(value) == normalize_amount(str(value))


@pytest.mark.parametrize("value", ["1.005", "0.001", Decimal("10.123")])
def test_strict_format_refuses_a_third_decimal(value):
    with pytest.raises(InvalidFieldError, match=r"^amount: more than two decimals"):
        format_amount(value, strict=True)


@pytest.mark.parametrize(("value", "expected"), [("1.000", "1.00"), ("1.5", "1.50"), (7, "7.00"), ("1.10", "1.10")])
def test_strict_format_accepts_trailing_zeros(value, expected):
    assert format_amount(value, strict=True) == expected


def test_results_do_not_depend_on_the_callers_decimal_context():
    import decimal

    with decimal.localcontext() as context:
        context.prec = 3
        context.rounding = decimal.ROUND_UP
        assert format_amount("123456.785") == "123456.78"
        assert parse_amount("123456.78") == Decimal("123456.78")


def test_errors_pickle_round_trip():
    import pickle

    error = InvalidFieldError("amount", "must be positive")
    copy = pickle.loads(pickle.dumps(error))
    assert (type(copy), copy.field, str(copy)) == (InvalidFieldError, "amount", "amount: must be positive")
