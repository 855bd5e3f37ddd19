"""The suite's own schemathesis checks: QIWI's rules that a JSON Schema cannot state.

They run next to the built-in checks in every phase (examples, coverage, fuzzing, stateful), both in
``python -m contract_tests`` and in a plain ``schemathesis run`` that loads ``contract_tests.hooks``:

- ``qiwi_error_body``: every error response (4xx/5xx, documented or not) carries QIWI's error body.
- ``qiwi_bill_lifecycle``: across the whole run, a ledger of every bill and refund seen proves that
  statuses move as documented (``WAITING`` → ``PAID``/``REJECTED``/``EXPIRED``, final statuses never
  change), that a repeated create returns the same bill, that a new bill echoes the requested amount,
  that refunds never exceed the bill and turn ``FULL`` exactly at the bill amount, and that a
  rejection of a schema-valid reject or refund is explained by the bill's state.
"""

from __future__ import annotations

import json
import threading
from dataclasses import dataclass, field
from decimal import ROUND_DOWN, Decimal, InvalidOperation
from typing import Any, TypeAlias
from urllib.parse import unquote

import schemathesis
from schemathesis.core.parameters import ParameterLocation

__all__ = ["ERROR_FIELDS", "FINAL_STATUSES", "LEDGER", "AnyCase", "Ledger"]

AnyCase: TypeAlias = schemathesis.Case[Any]

FINAL_STATUSES = frozenset({"PAID", "REJECTED", "EXPIRED"})
# The Error schema's required fields (openapi/qiwi-bill-payments.yaml, components.schemas.Error).
ERROR_FIELDS = ("serviceName", "errorCode", "description", "userMessage", "dateTime", "traceId")
CENT = Decimal("0.01")


def same_id(sent: object, returned: object) -> bool:
    """Whether the server echoed the id it was sent (coverage cases may carry it percent-encoded)."""
    return isinstance(sent, str) and returned in (sent, unquote(sent))


def request_amount(value: object) -> Decimal | None:
    """The amount a request asks for, as the server must read it (a number is rounded down to cents)."""
    if isinstance(value, bool) or not isinstance(value, str | int | float):
        return None
    try:
        return Decimal(str(value)).quantize(CENT, rounding=ROUND_DOWN)
    except InvalidOperation:
        return None


def _response_amount(body: dict[str, Any]) -> tuple[str, Decimal] | None:
    amount = body.get("amount")
    if not isinstance(amount, dict) or not isinstance(amount.get("value"), str):
        return None
    try:
        return str(amount.get("currency")), Decimal(amount["value"])
    except InvalidOperation:
        return None


@dataclass(slots=True)
class BillRecord:
    """What the run has seen of one bill."""

    status: str
    currency: str
    amount: Decimal
    refunds: dict[str, Decimal] = field(default_factory=dict)

    @property
    def refunded(self) -> Decimal:
        return sum(self.refunds.values(), Decimal(0))


class Ledger:
    """Every bill and refund the current run has seen, keyed by ``billId``.

    Checks may be re-run on the same response (shrinking, replay), so every update is idempotent.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.bills: dict[str, BillRecord] = {}
        self.fresh = False

    def reset(self, *, fresh: bool = False) -> None:
        """Forget everything; ``fresh`` says the server holds no bill this run did not create.

        Only then is a bill the ledger has not seen a *new* bill (``WAITING``, with the requested
        amount). A long-lived server (a CLI run against a running mock) keeps bills from earlier runs.
        """
        with self._lock:
            self.bills.clear()
            self.fresh = fresh

    def observe_payment(self, bill: dict[str, Any]) -> None:
        """Record a bill returned by the mock's pay control (the hooks call this)."""
        with self._lock:
            self._observe_bill(bill)

    def _observe_bill(self, bill: dict[str, Any]) -> list[str]:
        problems: list[str] = []
        bill_id, status, amount = bill.get("billId"), (bill.get("status") or {}).get("value"), _response_amount(bill)
        if not isinstance(bill_id, str) or not isinstance(status, str) or amount is None:
            return problems  # response_schema_conformance reports malformed bills
        record = self.bills.get(bill_id)
        if record is None:
            self.bills[bill_id] = BillRecord(status=status, currency=amount[0], amount=amount[1])
            return problems
        if record.status in FINAL_STATUSES and status != record.status:
            problems.append(f"Bill {bill_id!r} was {record.status} (a final status) and is now {status}")
        if (record.currency, record.amount) != amount:
            problems.append(
                f"Bill {bill_id!r} changed its amount from {record.amount} {record.currency} to {amount[1]} {amount[0]}"
            )
        if record.status not in FINAL_STATUSES:
            record.status = status
        return problems

    def check(self, case: AnyCase, status_code: int, body: Any) -> list[str]:
        """Record one response and return the documented rules it breaks."""
        operation_id = case.operation.definition.raw.get("operationId")
        path = case.path_parameters or {}
        bill_id = path.get("billId")
        positive = case.meta is None or not any(
            case.meta.is_negative_at(location) for location in (ParameterLocation.PATH, ParameterLocation.BODY)
        )
        with self._lock:
            if 200 <= status_code < 300 and isinstance(body, dict):
                if operation_id in ("createBill", "getBill", "rejectBill"):
                    return self._check_bill(operation_id, case, bill_id, body, positive)
                if operation_id in ("createRefund", "getRefund"):
                    return self._check_refund(operation_id, case, bill_id, body)
            if status_code == 400 and positive and isinstance(bill_id, str):
                return self._check_refusal(operation_id, case, bill_id)
        return []

    def _check_bill(
        self, operation_id: str, case: AnyCase, bill_id: Any, body: dict[str, Any], positive: bool
    ) -> list[str]:
        problems = []
        if not same_id(bill_id, body.get("billId")):
            problems.append(f"Asked for bill {bill_id!r}, got bill {body.get('billId')!r}")
        if _response_amount(body) is None:
            return problems  # a malformed bill: response_schema_conformance reports it, the ledger cannot use it
        status = (body.get("status") or {}).get("value")
        is_new = self._find(body.get("billId")) is None
        if operation_id == "rejectBill" and status != "REJECTED":
            problems.append(f"A successful reject returned status {status}, expected REJECTED")
        request: Any = case.body
        if operation_id == "createBill" and is_new and self.fresh and positive and isinstance(request, dict):
            if status != "WAITING":
                problems.append(f"A new bill has status {status}, expected WAITING")
            asked = request_amount((request.get("amount") or {}).get("value"))
            got = _response_amount(body)
            if asked is not None and got is not None and got[1] != asked:
                problems.append(f"A new bill for {asked} was stored as {got[1]}")
        problems.extend(self._observe_bill(body))
        return problems

    def _check_refund(self, operation_id: str, case: AnyCase, bill_id: Any, body: dict[str, Any]) -> list[str]:
        problems = []
        refund_id = (case.path_parameters or {}).get("refundId")
        amount = _response_amount(body)
        if not same_id(refund_id, body.get("refundId")):
            problems.append(f"Asked for refund {refund_id!r}, got refund {body.get('refundId')!r}")
        record = self._find(bill_id)
        if amount is None or record is None or not isinstance(refund_id, str):
            return problems
        refund_id = body.get("refundId", refund_id)
        known = record.refunds.get(refund_id)
        if known is not None:
            if known != amount[1]:
                problems.append(f"Refund {refund_id!r} was {known} and is now {amount[1]}")
            return problems
        if operation_id == "getRefund":
            return problems  # a refund made before the ledger saw it (another run); nothing to compare
        if record.status != "PAID":
            problems.append(f"A refund of bill {bill_id!r} in status {record.status} was accepted (only PAID bills)")
        if amount[0] != record.currency:
            problems.append(f"A refund in {amount[0]} of a bill in {record.currency} was accepted")
        total = record.refunded + amount[1]
        if total > record.amount:
            problems.append(f"Refunds of bill {bill_id!r} total {total}, more than the bill's {record.amount}")
        expected = "FULL" if total == record.amount else "PARTIAL"
        if body.get("status") != expected:
            problems.append(
                f"Refunds total {total} of {record.amount}: status is {body.get('status')}, expected {expected}"
            )
        record.refunds[refund_id] = amount[1]
        return problems

    def _find(self, bill_id: object) -> BillRecord | None:
        if not isinstance(bill_id, str):
            return None
        return self.bills.get(bill_id) or self.bills.get(unquote(bill_id))

    def _check_refusal(self, operation_id: str, case: AnyCase, bill_id: str) -> list[str]:
        record = self._find(bill_id)
        if record is None:
            return []
        if operation_id == "rejectBill" and record.status in ("WAITING", "REJECTED"):
            return [f"Rejecting bill {bill_id!r} in status {record.status} was refused with 400"]
        request: Any = case.body
        if operation_id == "createRefund" and record.status == "PAID" and isinstance(request, dict):
            amount = request.get("amount") or {}
            value, refund_id = request_amount(amount.get("value")), (case.path_parameters or {}).get("refundId")
            if (
                value is not None
                and value > 0
                and amount.get("currency") == record.currency
                and isinstance(refund_id, str)
                and refund_id not in record.refunds
                and unquote(refund_id) not in record.refunds
                and record.refunded + value <= record.amount
            ):
                return [
                    f"A refund of {value} {record.currency} of PAID bill {bill_id!r} "
                    f"({record.amount - record.refunded} left) was refused with 400"
                ]
        return []


LEDGER = Ledger()


def _json(response: schemathesis.Response) -> Any:
    try:
        return json.loads(response.content or b"null")
    except ValueError:
        return None


@schemathesis.check
def qiwi_error_body(ctx: schemathesis.CheckContext, response: schemathesis.Response, case: AnyCase) -> None:
    """Every 4xx/5xx answer, documented or not (405, unknown routes), carries QIWI's error body."""
    if response.status_code < 400:
        return
    if response.status_code == 401 and not response.content:
        return  # QIWI's 401 had no body (the spec's Unauthorized response; Java SDK live test, java-sdk#26)
    body = _json(response)
    if not isinstance(body, dict):
        content = response.content[:200]
        raise AssertionError(f"{response.status_code} response without QIWI's JSON error body: {content!r}")
    missing = [name for name in ERROR_FIELDS if not isinstance(body.get(name), str)]
    if missing:
        raise AssertionError(f"{response.status_code} error body lacks string field(s) {', '.join(missing)}: {body}")
    if not body["errorCode"]:
        raise AssertionError(f"{response.status_code} error body has an empty errorCode: {body}")


@schemathesis.check
def qiwi_bill_lifecycle(ctx: schemathesis.CheckContext, response: schemathesis.Response, case: AnyCase) -> None:
    """Statuses, amounts and refunds move as QIWI documents them (see the module docstring)."""
    problems = LEDGER.check(case, response.status_code, _json(response))
    if problems:
        raise AssertionError("\n".join(problems))
