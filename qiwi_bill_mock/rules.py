"""QIWI's rules, each written once with its source: what the mock, its pages and the contract suite all read.

Tags as in `docs/sources.md`: [doc] the API document, [code] an official SDK or a live test, [inf] inferred.
The OpenAPI document's schema checks shapes and lengths first (`validation.py`); these are the rules a schema
cannot express or that the pages and the service need as values. Money and dates come from `qiwi_bill`.

| Rule | Where |
|---|---|
| amount range 0.01..999999.99, at most 2 decimals | `MAX_AMOUNT`, `MIN_AMOUNT` (`qiwi_bill`), `amount_problem` |
| a JSON-number amount is rounded down to 2 decimals | `round_json_amount` |
| accepted currencies | `DEFAULT_CURRENCIES` (`Settings.accepted_currencies`) |
| comment, customFields values at most 255 characters | `TEXT_MAX` |
| the mock's own bounds: customFields names and count, customer.email | `FIELD_NAME_MAX`, `FIELDS_MAX`, `EMAIL_MAX` |
| expiration in the future, and renderable in Moscow time | `expiration_problem`, `LATEST_EXPIRATION` |
| pay sources | `PAY_SOURCES` (`qiwi_bill`) |
| status transitions | `FINAL_STATUSES`, `transition` |
| refund arithmetic | `refund_outcome` |
"""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import ROUND_DOWN, Decimal

from qiwi_bill import MAX_AMOUNT, MIN_AMOUNT, MOSCOW_TZ, PAY_SOURCES
from qiwi_bill_mock.errors import IncorrectRefundAmount, InvalidValues, WrongBillStatus
from qiwi_bill_mock.models import Bill, BillDraft, to_micros

__all__ = [
    "CENT",
    "DEFAULT_CURRENCIES",
    "EMAIL_MAX",
    "FIELDS_MAX",
    "FIELD_NAME_MAX",
    "FINAL_STATUSES",
    "LATEST_EXPIRATION",
    "MAX_AMOUNT",
    "MIN_AMOUNT",
    "MOSCOW_TZ",
    "PAY_SOURCES",
    "TEXT_MAX",
    "amount_problem",
    "check_draft",
    "check_pay_source",
    "expiration_problem",
    "refund_outcome",
    "round_json_amount",
    "same_request",
    "transition",
]

CENT = Decimal("0.01")

#: Currencies a bill may be issued in by default: P2P bills are RUB or KZT [doc] (`Settings.accepted_currencies`).
DEFAULT_CURRENCIES = frozenset({"RUB", "KZT"})

#: `comment` and every `customFields` value: `String(255)` [doc].
TEXT_MAX = 255

# The mock's own bounds (issue 16): QIWI documents none for these [inf], but without one a single create could
# make every later read, page and notification of the bill as large as the 1 MiB body limit allows.
#: Characters in a `customFields` name: as many as a value may have.
FIELD_NAME_MAX = TEXT_MAX
#: `customFields` members of one bill: the documented keys (themeCode, paySourcesFilter, ...) are a handful.
FIELDS_MAX = 64
#: Characters in `customer.email`: the longest address SMTP can carry (RFC 5321 §4.5.3.1.3, 256-octet path).
EMAIL_MAX = 254

#: The latest `expirationDateTime` accepted: the last instant that still has a Moscow wall-clock time (UTC+3)
#: before year 10000. A later instant cannot be shown in Moscow time (Python's datetime ends at 9999-12-31), so
#: its payment page could not render it (issue 13: the page and `POST /form/pay` answered 500). QIWI's limit
#: is unknown [inf]; the form caps a bill's lifetime at 45 days [doc], so no real bill comes near this.
LATEST_EXPIRATION = datetime(9999, 12, 31, 20, 59, 59, 999999, tzinfo=UTC)
_LATEST_EXPIRATION_US = to_micros(LATEST_EXPIRATION)

#: Only `WAITING` is not final (bill-payments-docs, status table) [doc].
FINAL_STATUSES = frozenset({"PAID", "REJECTED", "EXPIRED"})

_AMOUNT_MESSAGE = f"must be more than 0 and at most {MAX_AMOUNT}, with at most 2 decimals"


def round_json_amount(value: Decimal | int) -> Decimal:
    """A JSON-number `amount.value`, rounded down to 2 decimals.

    "округленная в меньшую сторону до 2 десятичных знаков" (the API document, `amount.value`) [doc]. A string
    value is taken exactly (and refused by `amount_problem` beyond 2 decimals).
    """
    return Decimal(value).quantize(CENT, rounding=ROUND_DOWN)


def amount_problem(amount: Decimal) -> str | None:
    """Why `amount` cannot be billed (`Number(6.2)`, more than 0 [doc]), or `None`."""
    if not amount.is_finite() or amount < MIN_AMOUNT or amount > MAX_AMOUNT or amount != amount.quantize(CENT):
        return _AMOUNT_MESSAGE
    return None


def expiration_problem(expires_us: int, now_us: int) -> str | None:
    """Why a bill cannot expire at `expires_us` (microseconds) when its merchant's clock reads `now_us`, or `None`.

    In the past: refused (inferred, docs/sources.md) [inf]. After `LATEST_EXPIRATION`: refused (see there).
    """
    if expires_us <= now_us:
        return "must be in the future"
    if expires_us > _LATEST_EXPIRATION_US:
        return "must be at most 9999-12-31T23:59:59.999+03:00 (the latest time the payment page can show)"
    return None


def check_draft(draft: BillDraft, *, now_us: int, currencies: frozenset[str]) -> None:
    """Every value rule of a create request.

    Raises:
        InvalidValues: `cause` maps each failing field to its messages (QIWI's `validation.error` shape).
    """
    cause: dict[str, list[str]] = {}
    if problem := amount_problem(draft.amount):
        cause["amount.value"] = [problem]
    if draft.currency not in currencies:
        cause["amount.currency"] = [f"currency is not accepted (accepted: {', '.join(sorted(currencies))})"]
    if problem := expiration_problem(to_micros(draft.expiration), now_us):
        cause["expirationDateTime"] = [problem]
    if draft.comment is not None and len(draft.comment) > TEXT_MAX:
        cause["comment"] = [f"size must be between 0 and {TEXT_MAX}"]
    for key, value in draft.custom_fields.items():
        if len(key) > FIELD_NAME_MAX:
            # The name itself is too long to serve as the cause's key.
            cause.setdefault("customFields", []).append(f"field names must be at most {FIELD_NAME_MAX} characters")
        elif len(value) > TEXT_MAX:
            cause[f"customFields.{key}"] = [f"size must be between 0 and {TEXT_MAX}"]
    if len(draft.custom_fields) > FIELDS_MAX:
        cause.setdefault("customFields", []).append(f"at most {FIELDS_MAX} fields")
    if len(draft.customer.get("email") or "") > EMAIL_MAX:
        cause["customer.email"] = [f"size must be between 0 and {EMAIL_MAX}"]
    if "customFields" in cause:
        cause["customFields"] = sorted(set(cause["customFields"]))
    if cause:
        raise InvalidValues(cause)


def same_request(bill: Bill, draft: BillDraft) -> bool:
    """Whether a repeated create asks for what the stored bill was created from (strict idempotency)."""
    return (
        bill.amount == draft.amount.quantize(CENT)
        and bill.currency == draft.currency
        and bill.expires_us == to_micros(draft.expiration)
        and bill.comment == draft.comment
        and dict(bill.customer) == dict(draft.customer)
        and dict(bill.custom_fields) == dict(draft.custom_fields)
    )


def check_pay_source(pay_source: object) -> str | None:
    """`paySource` of a payment, one of `PAY_SOURCES` (Kassa docs: qw, card, mobile, sovest) [doc], or `None`.

    Raises:
        InvalidValues: any other value.
    """
    if pay_source is None:
        return None
    if not isinstance(pay_source, str) or pay_source not in PAY_SOURCES:
        raise InvalidValues({"paySource": [f"must be one of {', '.join(sorted(PAY_SOURCES))}"]})
    return pay_source


def transition(bill: Bill, target: str, action: str) -> bool:
    """Whether `action` moves `bill` to `target` (`True`), or leaves it as it is (`False`: a repeat).

    `WAITING` moves to any final status; repeating a transition returns the bill unchanged (a REJECTED bill
    rejected again: inferred from the successor API's idempotence [inf]); anything else is refused (reject a
    PAID bill: "you can only refund", Node SDK #32 [code]).

    Raises:
        WrongBillStatus: the bill is in another final status.
    """
    if bill.status == target:
        return False
    if bill.status != "WAITING":
        raise WrongBillStatus(bill.status, action)
    return True


def refund_outcome(bill: Bill, amount: Decimal, currency: str) -> tuple[Decimal, str]:
    """The refund arithmetic: the bill's refunded total after `amount`, and the refund's status.

    Only a PAID bill takes refunds [inf]; a refund is positive, in the bill's currency, at most what remains, and
    `FULL` once the refunds reach the bill amount, else `PARTIAL` (Node SDK README, refund statuses) [code].

    Raises:
        WrongBillStatus: the bill is not PAID.
        IncorrectRefundAmount: not positive, more than 2 decimals, beyond what remains, or another currency.
    """
    if bill.status != "PAID":
        raise WrongBillStatus(bill.status, "refund")
    if currency != bill.currency:
        raise IncorrectRefundAmount(f"the refund currency must be the bill's ({bill.currency})")
    if amount <= 0 or amount != amount.quantize(CENT):
        raise IncorrectRefundAmount("the refund amount must be positive, with at most 2 decimals")
    remaining = bill.amount - bill.refunded
    if amount > remaining:
        raise IncorrectRefundAmount(f"the refund amount exceeds what remains ({remaining:.2f})")
    total = bill.refunded + amount
    return total, "FULL" if total == bill.amount else "PARTIAL"
