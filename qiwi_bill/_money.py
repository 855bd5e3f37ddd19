"""Money: ``Decimal`` in, exact two-decimal strings on the wire, ``Decimal`` out."""

from __future__ import annotations

import re
from decimal import ROUND_HALF_DOWN, Context, Decimal, InvalidOperation

from ._errors import InvalidFieldError

__all__ = ["MAX_AMOUNT", "MIN_AMOUNT", "AmountInput", "format_amount", "normalize_amount", "parse_amount"]

AmountInput = Decimal | int | str
"""What the amount helpers accept. ``float`` is refused: money is never a float here."""

#: The largest amount QIWI accepts: ``amount.value`` is ``Number(6.2)`` in the API document.
MAX_AMOUNT = Decimal("999999.99")
#: The smallest positive amount with two decimals.
MIN_AMOUNT = Decimal("0.01")

_CENT = Decimal("0.01")
# A private context: results must not depend on whatever decimal context the caller's thread has set.
_CONTEXT = Context(prec=40, rounding=ROUND_HALF_DOWN, traps=[InvalidOperation])
# Already canonical: no sign, no leading zero, exactly two ASCII decimals. Such strings (every amount QIWI
# has sent since 2018) skip Decimal entirely, which keeps signature verification cheap.
_CANONICAL = re.compile(r"(?:0|[1-9][0-9]*)\.[0-9][0-9]")


def normalize_amount(value: AmountInput | float, *, field: str = "amount") -> str:
    """Spell an amount with exactly two decimals, without range checks (the signature rule).

    ``1``, ``"1"``, ``"1.0"`` and ``"1.00"`` all give ``"1.00"`` -- the official SDKs sign that spelling, and the
    official test vector only verifies with it. More than two decimals are rounded **half-down**
    (``"200.345"`` → ``"200.34"``, ``"100.019"`` → ``"100.02"``), the rule of the PHP (``PHP_ROUND_HALF_DOWN``)
    and Java (``setScale(2, HALF_DOWN)``) SDKs; it also agrees with every amount vector of the Node and .NET SDK
    tests. A ``float`` is accepted here only because ``json.loads`` produces one for a JSON number: it is read
    through its shortest ``repr`` (the digits that were in the JSON text), never through binary arithmetic.

    Args:
        value: The amount.
        field: The field name used in error messages.

    Returns:
        The two-decimal spelling, e.g. ``"10.50"``; negative values keep their sign.

    Raises:
        InvalidFieldError: ``value`` is not a number (NaN, infinity, a bool, unparsable text).
    """
    if type(value) is str and _CANONICAL.fullmatch(value):
        return value
    number = _to_decimal(value, field=field, allow_float=True)
    try:
        return f"{number.quantize(_CENT, rounding=ROUND_HALF_DOWN, context=_CONTEXT):f}"
    except InvalidOperation:
        raise InvalidFieldError(field, "amount is too large to represent with two decimals") from None


def format_amount(value: AmountInput, *, strict: bool = False, field: str = "amount") -> str:
    """Format an amount for the wire: exactly two decimals, ``0.01`` to ``999999.99``.

    >>> format_amount(Decimal("10.5"))
    '10.50'

    A third decimal is rounded half-down (see :func:`normalize_amount`), or refused with ``strict=True`` (QIWI
    itself answers ``validation.error`` for more than two decimals). The range is checked after rounding, so
    ``"0.004"`` is rejected rather than sent as ``"0.00"``.

    Args:
        value: A ``Decimal``, an ``int`` or a decimal string. ``float`` is refused.
        strict: Refuse values with more than two significant decimals instead of rounding them.
        field: The field name used in error messages.

    Returns:
        The amount as QIWI expects it, e.g. ``"10.50"``.

    Raises:
        InvalidFieldError: ``value`` is a float, a bool, not a finite number, ``<= 0`` or ``> 999999.99``, or
            (``strict``) has more than two decimals.
    """
    if isinstance(value, float):
        raise InvalidFieldError(field, "floats are not accepted for money; pass a Decimal, an int or a string")
    text = normalize_amount(value, field=field)
    if strict and Decimal(text) != _to_decimal(value, field=field, allow_float=False):
        raise InvalidFieldError(field, f"more than two decimals: {str(value).strip()[:40]}")
    number = Decimal(text)
    if number < MIN_AMOUNT:
        raise InvalidFieldError(field, f"must be at least {MIN_AMOUNT} after rounding to 2 decimals, got {text}")
    if number > MAX_AMOUNT:
        raise InvalidFieldError(field, f"must be at most {MAX_AMOUNT}, got {text}")
    return text


def parse_amount(value: AmountInput, *, field: str = "amount") -> Decimal:
    """Read an amount from a response or a notification as a ``Decimal``.

    Values with up to two decimals come back with exactly two (``"100"`` → ``Decimal("100.00")``), so
    ``format_amount(parse_amount(s))`` reproduces the wire spelling. A value with more decimals is returned exactly,
    unrounded: parsing never loses data. JSON numbers parsed as ``int`` are accepted (old doc samples show ``100``).

    Args:
        value: The amount as received: usually a string like ``"10.50"``.
        field: The field name used in error messages.

    Returns:
        The amount.

    Raises:
        InvalidFieldError: ``value`` is a float, a bool, or not a finite decimal number.
    """
    number = _to_decimal(value, field=field, allow_float=False)
    if number.as_tuple().exponent >= -2:  # type: ignore[operator]  # finite: the exponent is an int
        try:
            return number.quantize(_CENT, context=_CONTEXT)
        except InvalidOperation:
            raise InvalidFieldError(field, "amount is too large to represent with two decimals") from None
    return number


def _to_decimal(value: object, *, field: str, allow_float: bool) -> Decimal:
    if isinstance(value, bool):
        raise InvalidFieldError(field, "expected a decimal amount, got a bool")
    if isinstance(value, Decimal):
        number = value
    elif isinstance(value, int):
        number = Decimal(value)
    elif isinstance(value, str):
        try:
            number = Decimal(value.strip())
        except InvalidOperation:
            raise InvalidFieldError(field, f"not a decimal number: {value[:40]!r}") from None
    elif isinstance(value, float) and allow_float:
        number = Decimal(repr(value))
    elif isinstance(value, float):
        raise InvalidFieldError(field, "floats are not accepted for money; pass a Decimal, an int or a string")
    else:
        raise InvalidFieldError(field, f"expected a decimal amount, got {type(value).__name__}")
    if not number.is_finite():
        raise InvalidFieldError(field, f"must be a finite number, got {number}")
    return number
