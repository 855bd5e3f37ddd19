"""The suite's own schemathesis checks: QIWI's rules that a JSON Schema cannot state.

They run next to the built-in checks in every phase (examples, coverage, fuzzing, stateful), both in
``python -m contract_tests`` and in a plain ``schemathesis run`` that loads ``contract_tests.hooks``:

- ``qiwi_error_body``: every error response (4xx/5xx, documented or not) carries QIWI's error body
  (a 401 may instead have an empty body, as the real service sometimes sent), with the documented
  ``errorCode`` for the operation, the status and the kind of case (:func:`expected_error_codes`),
  a ``cause`` on every ``validation.error``, and a ``dateTime`` near the client's clock.
- ``qiwi_bill_lifecycle``: across the whole run, a ledger of every bill and refund seen proves that
  statuses move as documented (``WAITING`` → ``PAID``/``REJECTED``/``EXPIRED``, final statuses never
  change) and ``status.changedDateTime`` moves forward with every status change (and only then), that
  a repeated create returns the same bill, that a new bill echoes what was asked (amount, comment,
  customer, customFields, the instant of ``expirationDateTime``) and every later answer keeps it, that
  server timestamps are near the client's clock, that refunds never exceed the bill and turn ``FULL``
  exactly at the bill amount, that an identical retry is never a conflict, and that a rejection of a
  schema-valid reject or refund is explained by the bill's state, with the code that state calls for.

The probes that send requests of their own (business-rule negatives, a second merchant) are in
``contract_tests/probes.py``.
"""

from __future__ import annotations

import datetime as dt
import json
import threading
import time
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from functools import cache
from typing import Any, TypeAlias
from urllib.parse import unquote

import jsonschema_rs
import schemathesis
import yaml
from schemathesis.core.parameters import ParameterLocation

from qiwi_bill import parse_datetime
from qiwi_bill_mock.rules import round_json_amount
from qiwi_bill_mock.validation import find_spec, leaf_errors

__all__ = [
    "CONVERSION",
    "ERROR_FIELDS",
    "FINAL_STATUSES",
    "INVOICE_NOT_FOUND",
    "LEDGER",
    "REFUND_INCORRECT_AMOUNT",
    "VALIDATION",
    "AnyCase",
    "Ledger",
    "body_error_codes",
    "expected_error_codes",
    "qiwi_error_problems",
]

AnyCase: TypeAlias = schemathesis.Case[Any]

FINAL_STATUSES = frozenset({"PAID", "REJECTED", "EXPIRED"})
# The Error schema's required fields (openapi/qiwi-bill-payments.yaml, components.schemas.Error).
ERROR_FIELDS = ("serviceName", "errorCode", "description", "userMessage", "dateTime", "traceId")
CENT = Decimal("0.01")

# The documented codes (the spec's examples and Error.errorCode description; ../DESIGN.md, decision table).
UNAUTHORIZED = "auth.unauthorized"
INVOICE_NOT_FOUND = "api.invoice.not.found"
REFUND_NOT_FOUND = "api.refund.not.found"
VALIDATION = "validation.error"
CONVERSION = "http.message.conversion.failed"
REFUND_INCORRECT_AMOUNT = "refund.incorrect.amount"
INVOICE_EXISTS = "api.invoice.already.exists"
REFUND_EXISTS = "api.refund.already.exists"
METHOD_NOT_SUPPORTED = "http.method.not.supported"
MEDIA_TYPE_NOT_SUPPORTED = "http.media.type.not.supported"
URL_NOT_FOUND = "http.url.not.found"

#: How far a server timestamp may be from the client's clock (two machines' clocks, not one process's).
CLOCK_SKEW = dt.timedelta(minutes=5)
#: A status change observed at least this long after the previous answer must carry a later changedDateTime
#: (the service writes milliseconds; 10 ms is far above one tick, and far below a stateful step on TCP).
STATUS_CHANGE_GAP = 0.010
_PATH_LIMIT = 200  # billId / refundId maxLength in the spec's components.parameters


def same_id(sent: object, returned: object) -> bool:
    """Whether the server echoed the id it was sent (coverage cases may carry it percent-encoded)."""
    return isinstance(sent, str) and returned in (sent, unquote(sent))


def request_amount(value: object) -> Decimal | None:
    """The amount a request asks for, as the server must read it (a number is rounded down to cents)."""
    if isinstance(value, bool) or not isinstance(value, str | int | float | Decimal):
        return None
    try:
        return round_json_amount(Decimal(str(value)))  # the mock's one rounding rule (the API document's)
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


def _stamp(value: object) -> dt.datetime | None:
    """A server timestamp as an aware datetime (``None`` when absent or unreadable: schema checks report it)."""
    if not isinstance(value, str):
        return None
    try:
        moment = parse_datetime(value)
    except ValueError:
        return None
    return moment if moment.tzinfo is not None else None


def _without_nulls(value: Any) -> Any:
    """A body with JSON ``null`` members dropped: QIWI's SDKs send them for unset fields (DESIGN.md, Decisions)."""
    if isinstance(value, dict):
        return {k: _without_nulls(v) for k, v in value.items() if v is not None}
    return value


# -- which errorCode a refusal must carry -------------------------------------------------------------


@cache
def _body_validators() -> dict[str, Any]:
    spec = yaml.safe_load(find_spec().read_text(encoding="utf-8"))

    def compile_schema(name: str) -> Any:
        schema = {"components": spec["components"], "$ref": f"#/components/schemas/{name}"}
        return jsonschema_rs.validator_for(schema, validate_formats=True)

    return {"createBill": compile_schema("CreateBillRequest"), "createRefund": compile_schema("CreateRefundRequest")}


def body_error_codes(operation_id: str, body: Any) -> frozenset[str] | None:
    """The codes a 400 to this create body may carry, or ``None`` when the body is schema-valid.

    The spec's BadRequest response: unreadable JSON or wrong types → ``http.message.conversion.failed``,
    an invalid value → ``validation.error``; RefundBadRequest and the decision table: a refund amount that
    is not positive → ``refund.incorrect.amount``. A body with problems of two kinds may get either code.
    JSON ``null`` members count as absent (DESIGN.md, Decisions); while a server still refuses them as
    wrong types, ``http.message.conversion.failed`` stays acceptable for such a body.
    """
    validator = _body_validators().get(operation_id)
    if validator is None:
        return None
    if not isinstance(body, dict):
        return frozenset({CONVERSION})
    stripped = _without_nulls(body)
    codes: set[str] = {CONVERSION} if stripped != body else set()
    try:
        # The spec's `anyOf: [X, {type: null}]` members: what is wrong is what X says (the mock reads them alike).
        errors = leaf_errors(list(validator.iter_errors(stripped)))
    except (ValueError, OverflowError, TypeError):  # a number the validator cannot hold: unreadable
        return frozenset({CONVERSION})
    if not errors:
        return None
    kinds = {error.kind.name for error in errors}
    paths = {tuple(error.instance_path) for error in errors}
    if "type" in kinds:
        codes.add(CONVERSION)
        if kinds != {"type"}:
            codes.add(VALIDATION)
        return frozenset(codes)
    if operation_id == "createRefund" and paths == {("amount", "value")}:
        value = request_amount((stripped.get("amount") or {}).get("value"))
        if value is not None and value <= 0:
            return frozenset(codes | {REFUND_INCORRECT_AMOUNT})
    return frozenset(codes | {VALIDATION})


def _path_ok(value: object) -> bool | None:
    """Whether a path parameter is valid (1..200 characters); ``None`` when its encodings disagree."""
    if not isinstance(value, str):
        return False
    verdicts = {1 <= len(text) <= _PATH_LIMIT for text in (value, unquote(value))}
    return verdicts.pop() if len(verdicts) == 1 else None


def expected_error_codes(case: AnyCase, status: int) -> frozenset[str] | None:
    """The documented ``errorCode`` values an answer ``status`` to ``case`` may carry (``None``: not pinned).

    From the spec's responses and examples and DESIGN.md's decision table: 401 ``auth.unauthorized``; 404
    ``api.invoice.not.found`` (or ``api.refund.not.found`` when reading a refund); 405
    ``http.method.not.supported``; 409 ``api.invoice.already.exists`` / ``api.refund.already.exists``; 415
    ``http.media.type.not.supported``; 400 by what is wrong with the request (:func:`body_error_codes`), and
    for a well-formed request by the business rule it breaks (``validation.error``; a refund may also get
    ``refund.incorrect.amount``). 5xx, 429 and other statuses are not pinned here.
    """
    operation_id = case.operation.definition.raw.get("operationId")
    if operation_id is None or case.method.upper() != case.operation.method.upper():
        # schemathesis' unsupported_method check sends other methods to the operation's path.
        return frozenset({METHOD_NOT_SUPPORTED}) if status == 405 else None
    path = case.path_parameters or {}
    verdicts = [_path_ok(path.get(name)) for name in ("billId", "refundId") if name in path]
    path_bad, path_unsure = False in verdicts, None in verdicts
    # A dot segment or a slash changes the URL itself: the answer may be the unknown-URL one.
    odd_path = any(isinstance(v, str) and (unquote(v) in (".", "..") or "/" in unquote(v)) for v in path.values())
    match status:
        case 401:
            return frozenset({UNAUTHORIZED})
        case 404:
            found = {INVOICE_NOT_FOUND} | ({REFUND_NOT_FOUND} if operation_id == "getRefund" else set())
            return frozenset(found | ({URL_NOT_FOUND} if odd_path or path_bad else set()))
        case 405:
            return frozenset({METHOD_NOT_SUPPORTED})
        case 409:
            return {"createBill": frozenset({INVOICE_EXISTS}), "createRefund": frozenset({REFUND_EXISTS})}.get(
                operation_id
            )
        case 415:
            return frozenset({MEDIA_TYPE_NOT_SUPPORTED})
        case 400:
            pass
        case _:
            return None
    # An invalid path parameter is an invalid value; a server may look at the body first, or not at all.
    codes: set[str] = {VALIDATION} if path_bad or path_unsure else set()
    if operation_id in _body_validators():
        from_body = body_error_codes(operation_id, None if _body_absent(case) else case.body)
        if isinstance(case.body, dict) and _without_nulls(case.body) != case.body:
            codes.add(CONVERSION)  # null members, while a server still refuses them as wrong types
        if from_body is not None:
            codes |= from_body
        elif not path_bad:
            # A well-formed request refused by a business rule: the value (currency, expiry), or for a refund
            # the bill's state (validation.error) or what remains of it (refund.incorrect.amount).
            codes |= {VALIDATION, REFUND_INCORRECT_AMOUNT} if operation_id == "createRefund" else {VALIDATION}
    elif not path_bad:
        codes.add(VALIDATION)  # rejectBill of a PAID / EXPIRED bill (decision table); reads have no such rule
    return frozenset(codes)


def _body_absent(case: AnyCase) -> bool:
    from schemathesis.core import NOT_SET

    return case.body is NOT_SET


def _json(response: schemathesis.Response) -> Any:
    try:
        return json.loads(response.content or b"null")
    except ValueError:
        return None


def qiwi_error_problems(status: int, content: bytes, expected: frozenset[str] | None, *, fresh: bool) -> list[str]:
    """What is wrong with an error answer (empty when it is QIWI's error body with an expected code).

    ``fresh``: the server's clock is known to be the real one (the run's own server), so ``dateTime`` must be
    near the client's clock.
    """
    if status == 401 and not content.strip():
        return []  # the real service sometimes answered 401 without a body (spec: Unauthorized)
    try:
        body = json.loads(content or b"null")
    except ValueError:
        body = None
    if not isinstance(body, dict):
        return [f"{status} response without QIWI's JSON error body: {content[:200]!r}"]
    missing = [name for name in ERROR_FIELDS if not isinstance(body.get(name), str)]
    if missing:
        return [f"{status} error body lacks string field(s) {', '.join(missing)}: {body}"]
    code = body["errorCode"]
    if not code:
        return [f"{status} error body has an empty errorCode: {body}"]
    problems = []
    if expected is not None and code not in expected:
        problems.append(f"{status} answer has errorCode {code!r}, expected {' or '.join(sorted(expected))}: {body}")
    cause = body.get("cause")
    if code == VALIDATION and not (
        isinstance(cause, dict)
        and cause
        and all(isinstance(v, list) and all(isinstance(m, str) for m in v) for v in cause.values())
    ):
        problems.append(f"validation.error without a cause naming the field(s): {body}")
    moment = _stamp(body["dateTime"])
    if moment is None:
        problems.append(f"error dateTime {body['dateTime']!r} is not a date-time with an offset")
    elif fresh and abs(moment - dt.datetime.now(dt.UTC)) > CLOCK_SKEW:
        problems.append(f"error dateTime {body['dateTime']} is far from the client's clock")
    return problems


# -- the ledger -----------------------------------------------------------------------------------------

#: The fields a bill answer echoes from the create request, compared on every later answer.
ECHOED = ("comment", "customer", "customFields")


@dataclass(slots=True)
class BillRecord:
    """What the run has seen of one bill."""

    status: str
    currency: str
    amount: Decimal
    changed: dt.datetime | None = None
    created: dt.datetime | None = None
    expiration: dt.datetime | None = None
    echoed: dict[str, Any] = field(default_factory=dict)
    seen_at: float = 0.0  # time.monotonic() of the latest answer about this bill
    refunds: dict[str, tuple[Decimal, str, Any]] = field(default_factory=dict)  # id -> (amount, currency, dateTime)
    pending: list[str] = field(default_factory=list)  # problems found outside a check (the pay control)

    @property
    def refunded(self) -> Decimal:
        return sum((amount for amount, _, _ in self.refunds.values()), Decimal(0))


class Ledger:
    """Every bill and refund the current run has seen, keyed by ``billId``.

    Checks may be re-run on the same response (shrinking, replay), so every update is idempotent.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.bills: dict[str, BillRecord] = {}
        self.fresh = False
        self.namespace = ""
        self._claims: dict[str, int] = {}
        self._sent: dict[str, float] = {}
        self.deferred: list[tuple[float, Any]] = []  # (time.monotonic() due, action): probes that wait for time

    def mark_sent(self, case_id: str) -> None:
        """Note when a request leaves (a ``before_call`` hook calls this), to tell a status change's timing."""
        with self._lock:
            if len(self._sent) > 10_000:  # requests whose check never ran (errors): forget them
                self._sent.clear()
            self._sent[case_id] = time.monotonic()

    def reset(self, *, fresh: bool = False, namespace: str = "") -> None:
        """Forget everything; ``fresh`` says the server holds no bill this run did not create.

        Only then is a bill the ledger has not seen a *new* bill (``WAITING``, with the requested
        amount). With a ``namespace`` that holds only for ids that start with it (the run's own ids,
        on a server that keeps older bills). A long-lived server (a CLI run against a running mock)
        keeps bills from earlier runs.
        """
        with self._lock:
            self.bills.clear()
            self._claims.clear()
            self._sent.clear()
            self.deferred.clear()
            self.fresh = fresh
            self.namespace = namespace

    def claim(self, kind: str, limit: int) -> bool:
        """Whether a probe of ``kind`` may still run in this run (at most ``limit`` times)."""
        with self._lock:
            count = self._claims.get(kind, 0)
            if count >= limit:
                return False
            self._claims[kind] = count + 1
            return True

    def defer(self, due: float, action: Any) -> None:
        """Run ``action()`` at the first check after ``due`` (``time.monotonic()``): a probe that waits for time."""
        with self._lock:
            self.deferred.append((due, action))

    def take_due(self) -> list[Any]:
        """The deferred actions whose time has come (each is handed out once)."""
        now = time.monotonic()
        with self._lock:
            due = [action for when, action in self.deferred if when <= now]
            self.deferred = [(when, action) for when, action in self.deferred if when > now]
        return due

    def is_fresh(self, bill_id: object) -> bool:
        """Whether a bill the ledger has not seen must be new (see :meth:`reset`)."""
        return self.fresh and isinstance(bill_id, str) and unquote(bill_id).startswith(self.namespace)

    def record(self, bill_id: object) -> BillRecord | None:
        """What the ledger knows of ``bill_id`` (percent-encoded or not)."""
        with self._lock:
            return self._find(bill_id)

    def wait_for_status_change(self, bill_id: object) -> None:
        """Before a request that changes the bill's status: let the server's clock pass the last answer.

        Then the new ``changedDateTime`` must be later than the old one (:data:`STATUS_CHANGE_GAP`); without
        the pause, an in-process create → reject often falls in the same millisecond.
        """
        record = self.record(bill_id)
        if record is not None and record.status not in FINAL_STATUSES:
            delay = record.seen_at + STATUS_CHANGE_GAP * 1.5 - time.monotonic()
            if delay > 0:
                time.sleep(delay)

    def observe_payment(self, bill: dict[str, Any], *, sent: float | None = None) -> None:
        """Record a bill returned by the mock's pay control (the hooks call this); problems wait for a check.

        ``sent``: ``time.monotonic()`` when the pay request left.
        """
        with self._lock:
            bill_id = bill.get("billId")
            problems = self._observe_bill(bill, sent=sent)
            record = self._find(bill_id)
            if record is not None:
                record.pending.extend(problems)

    def _observe_bill(self, bill: dict[str, Any], *, sent: float | None = None) -> list[str]:
        problems: list[str] = []
        bill_id, status, amount = bill.get("billId"), (bill.get("status") or {}).get("value"), _response_amount(bill)
        if not isinstance(bill_id, str) or not isinstance(status, str) or amount is None:
            return problems  # response_schema_conformance reports malformed bills
        now = time.monotonic()
        sent = now if sent is None else sent
        changed = _stamp((bill.get("status") or {}).get("changedDateTime"))
        created = _stamp(bill.get("creationDateTime"))
        expiration = _stamp(bill.get("expirationDateTime"))
        if changed is not None and created is not None and changed < created:
            problems.append(f"Bill {bill_id!r}: status.changedDateTime {changed} is before creationDateTime {created}")
        if (
            status == "WAITING"
            and expiration is not None
            and expiration + CLOCK_SKEW < dt.datetime.now(dt.UTC) - dt.timedelta(seconds=now - sent)
        ):
            problems.append(f"Bill {bill_id!r} reads WAITING after its expirationDateTime {expiration} (EXPIRED)")
        record = self.bills.get(bill_id)
        if record is None:
            echoed = {name: bill[name] for name in ECHOED if name in bill}
            self.bills[bill_id] = BillRecord(
                status, amount[0], amount[1], changed, created, expiration, echoed, seen_at=now
            )
            return problems
        if record.status in FINAL_STATUSES and status != record.status:
            problems.append(f"Bill {bill_id!r} was {record.status} (a final status) and is now {status}")
        if (record.currency, record.amount) != amount:
            problems.append(
                f"Bill {bill_id!r} changed its amount from {record.amount} {record.currency} to {amount[1]} {amount[0]}"
            )
        problems.extend(self._compare_stored(bill_id, record, bill, created, expiration))
        problems.extend(self._compare_changed(bill_id, record, status, changed, sent=sent))
        if record.status not in FINAL_STATUSES:
            record.status = status
            if changed is not None and (record.changed is None or changed > record.changed):
                record.changed = changed
        record.seen_at = now
        return problems

    @staticmethod
    def _compare_stored(
        bill_id: str, record: BillRecord, bill: dict[str, Any], created: dt.datetime | None, expiration: Any
    ) -> list[str]:
        """Every field the first answer showed is kept by every later answer (gap: fields forgotten)."""
        problems = []
        for name, value in record.echoed.items():
            now = bill.get(name)
            if name == "customFields" and isinstance(now, dict) and isinstance(value, dict):
                # The service adds keys of its own to paid bills (CHECKOUT_REFERER, spec: CustomFields).
                now = {k: v for k, v in now.items() if k in value}
            if now != value:
                problems.append(f"Bill {bill_id!r} answered {name}={value!r} before and {bill.get(name)!r} now")
        if record.created is not None and created is not None and created != record.created:
            problems.append(f"Bill {bill_id!r} changed its creationDateTime from {record.created} to {created}")
        if record.expiration is not None and expiration != record.expiration:
            problems.append(f"Bill {bill_id!r} changed its expirationDateTime from {record.expiration} to {expiration}")
        return problems

    @staticmethod
    def _compare_changed(
        bill_id: str, record: BillRecord, status: str, changed: dt.datetime | None, *, sent: float
    ) -> list[str]:
        """``status.changedDateTime`` is when the status last changed: it moves with the status, only then."""
        if changed is None or record.changed is None:
            return []
        if status == record.status or record.status in FINAL_STATUSES:  # a final status changing is reported apart
            if changed != record.changed:
                return [f"Bill {bill_id!r} kept status {record.status} but its changedDateTime moved to {changed}"]
            return []
        if changed < record.changed:
            return [f"Bill {bill_id!r} became {status} with a changedDateTime {changed} before the previous one"]
        if changed == record.changed and sent - record.seen_at >= STATUS_CHANGE_GAP:
            return [f"Bill {bill_id!r} became {status} but status.changedDateTime stayed {changed}"]
        return []

    def check(self, case: AnyCase, status_code: int, body: Any, *, elapsed: float = 0.0) -> list[str]:
        """Record one response and return the documented rules it breaks.

        ``elapsed``: how long the request took (seconds), to tell when it was sent when no hook noted it.
        """
        operation_id = case.operation.definition.raw.get("operationId")
        path = case.path_parameters or {}
        bill_id = path.get("billId")
        positive = case.meta is None or not any(
            case.meta.is_negative_at(location) for location in (ParameterLocation.PATH, ParameterLocation.BODY)
        )
        with self._lock:
            sent = self._sent.pop(case.id, time.monotonic() - elapsed)
            problems = self._pending(bill_id)
            if 200 <= status_code < 300 and isinstance(body, dict):
                if operation_id in ("createBill", "getBill", "rejectBill"):
                    return problems + self._check_bill(operation_id, case, bill_id, body, positive, sent)
                if operation_id in ("createRefund", "getRefund"):
                    return problems + self._check_refund(operation_id, case, bill_id, body)
            if status_code == 409 and operation_id == "createRefund" and isinstance(bill_id, str):
                return problems + self._check_conflict(case, bill_id)
            if status_code in (400, 404) and positive and isinstance(bill_id, str):
                return problems + self._check_refusal(operation_id, case, bill_id, status_code, body)
        return problems

    def _pending(self, bill_id: object) -> list[str]:
        record = self._find(bill_id)
        if record is None or not record.pending:
            return []
        problems, record.pending = record.pending, []
        return problems

    def _check_bill(
        self, operation_id: str, case: AnyCase, bill_id: Any, body: dict[str, Any], positive: bool, sent: float
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
        if operation_id != "createBill" and is_new and self.is_fresh(bill_id):
            problems.append(f"{operation_id} answered bill {bill_id!r}, which this run never created")
        request: Any = case.body
        if (
            operation_id == "createBill"
            and is_new
            and self.is_fresh(bill_id)
            and positive
            and isinstance(request, dict)
        ):
            problems.extend(self._check_new_bill(_without_nulls(request), body, time.monotonic() - sent))
        problems.extend(self._observe_bill(body, sent=sent))
        return problems

    @staticmethod
    def _check_new_bill(request: dict[str, Any], body: dict[str, Any], elapsed: float) -> list[str]:
        """A new bill: ``WAITING``, what was asked for, and timestamps of now."""
        problems = []
        status = body.get("status") or {}
        if status.get("value") != "WAITING":
            problems.append(f"A new bill has status {status.get('value')}, expected WAITING")
        asked = request_amount((request.get("amount") or {}).get("value"))
        got = _response_amount(body)
        if asked is not None and got is not None and got[1] != asked:
            problems.append(f"A new bill for {asked} was stored as {got[1]}")
        if got is not None and got[0] != (request.get("amount") or {}).get("currency"):
            problems.append(f"A new bill in {(request.get('amount') or {}).get('currency')} was stored in {got[0]}")
        for name in ("comment", "customer", "customFields"):
            sent, echoed = request.get(name), body.get(name)
            if name == "comment" and isinstance(sent, str) and echoed != sent:
                problems.append(f"A new bill with comment {sent!r} answered comment {echoed!r}")
            if isinstance(sent, dict):
                # Only the documented customer fields are kept; customFields keep every string value.
                keys = ("phone", "email", "account") if name == "customer" else tuple(sent)
                wanted = {k: sent[k] for k in keys if isinstance(sent.get(k), str)}
                kept = {k: echoed.get(k) for k in wanted} if isinstance(echoed, dict) else {}
                if kept != wanted:
                    problems.append(f"A new bill with {name} {wanted} answered {name} {echoed!r}")
        asked_expiry = _stamp(request.get("expirationDateTime"))
        got_expiry = _stamp(body.get("expirationDateTime"))
        # The service answers in milliseconds: a finer fraction may be cut, never the instant moved.
        if asked_expiry and got_expiry and abs(got_expiry - asked_expiry) >= dt.timedelta(milliseconds=1):
            problems.append(
                f"A new bill expiring at {request.get('expirationDateTime')} answered {body.get('expirationDateTime')}"
            )
        created, changed = _stamp(body.get("creationDateTime")), _stamp(status.get("changedDateTime"))
        now = dt.datetime.now(dt.UTC) - dt.timedelta(seconds=elapsed)
        if created is not None and abs(created - now) > CLOCK_SKEW:
            problems.append(f"A new bill's creationDateTime {created} is far from the client's clock ({now})")
        if created is not None and changed is not None and changed != created:
            problems.append(f"A new bill's changedDateTime {changed} is not its creationDateTime {created}")
        return problems

    def _check_refund(self, operation_id: str, case: AnyCase, bill_id: Any, body: dict[str, Any]) -> list[str]:
        problems = []
        refund_id = (case.path_parameters or {}).get("refundId")
        amount = _response_amount(body)
        if not same_id(refund_id, body.get("refundId")):
            problems.append(f"Asked for refund {refund_id!r}, got refund {body.get('refundId')!r}")
        record = self._find(bill_id)
        if amount is None or record is None or not isinstance(refund_id, str):
            if record is None and self.is_fresh(bill_id):
                problems.append(f"{operation_id} answered a refund of bill {bill_id!r}, which this run never created")
            return problems
        refund_id = body.get("refundId", refund_id)
        known = record.refunds.get(refund_id)
        if known is not None:
            if known[:2] != amount[::-1]:
                problems.append(f"Refund {refund_id!r} was {known[0]} {known[1]} and is now {amount[1]} {amount[0]}")
            if body.get("dateTime") != known[2]:
                problems.append(f"Refund {refund_id!r} was made at {known[2]} and now at {body.get('dateTime')}")
            return problems
        if operation_id == "getRefund":
            if self.is_fresh(bill_id):
                problems.append(f"getRefund answered refund {refund_id!r}, which this run never made")
            return problems  # a refund made before the ledger saw it (another run); nothing to compare
        if record.status != "PAID":
            problems.append(f"A refund of bill {bill_id!r} in status {record.status} was accepted (only PAID bills)")
        if amount[0] != record.currency:
            problems.append(f"A refund in {amount[0]} of a bill in {record.currency} was accepted")
        asked = self._refund_request(case)[0]
        if asked is not None and asked != amount[1]:
            problems.append(f"A refund of {asked} was stored as {amount[1]}")
        total = record.refunded + amount[1]
        if total > record.amount:
            problems.append(f"Refunds of bill {bill_id!r} total {total}, more than the bill's {record.amount}")
        expected = "FULL" if total == record.amount else "PARTIAL"
        if body.get("status") != expected:
            problems.append(
                f"Refunds total {total} of {record.amount}: status is {body.get('status')}, expected {expected}"
            )
        made = _stamp(body.get("dateTime"))
        if self.is_fresh(bill_id) and made is not None and abs(made - dt.datetime.now(dt.UTC)) > CLOCK_SKEW:
            problems.append(f"A new refund's dateTime {made} is far from the client's clock")
        record.refunds[refund_id] = (amount[1], amount[0], body.get("dateTime"))
        return problems

    def _find(self, bill_id: object) -> BillRecord | None:
        if not isinstance(bill_id, str):
            return None
        return self.bills.get(bill_id) or self.bills.get(unquote(bill_id))

    @staticmethod
    def _refund_request(case: AnyCase) -> tuple[Decimal | None, Any, Any]:
        request: Any = case.body
        amount = (request.get("amount") if isinstance(request, dict) else None) or {}
        refund_id = (case.path_parameters or {}).get("refundId")
        return request_amount(amount.get("value")), amount.get("currency"), refund_id

    def _check_conflict(self, case: AnyCase, bill_id: str) -> list[str]:
        """A retried refund with the same body is not a conflict: it returns the stored refund (decision table)."""
        record = self._find(bill_id)
        value, currency, refund_id = self._refund_request(case)
        if record is None or not isinstance(refund_id, str):
            return []
        known = record.refunds.get(refund_id) or record.refunds.get(unquote(refund_id))
        if known is not None and known[:2] == (value, currency):
            return [f"An identical retry of refund {refund_id!r} of bill {bill_id!r} was answered 409"]
        return []

    def _check_refusal(self, operation_id: str, case: AnyCase, bill_id: str, status_code: int, body: Any) -> list[str]:
        # A 404 is compared with the exact id only: `%41` may be sent encoded once more and name another bill.
        record = self.bills.get(bill_id) if status_code == 404 else self._find(bill_id)
        code = body.get("errorCode") if isinstance(body, dict) else None
        if record is None:
            return []
        if status_code == 404:
            if operation_id in ("getBill", "rejectBill", "createRefund") or code == INVOICE_NOT_FOUND:
                return [f"{operation_id} of bill {bill_id!r}, which this run saw, answered 404 ({code})"]
            return []
        if operation_id == "rejectBill" and record.status in ("WAITING", "REJECTED"):
            return [f"Rejecting bill {bill_id!r} in status {record.status} was refused with 400"]
        if operation_id != "createRefund":
            return []
        if record.status != "PAID":
            # Refunding a bill that is not PAID: validation.error (decision table); only a PAID bill has an amount
            # left to be wrong about.
            if code is not None and code != VALIDATION:
                return [f"A refund of a {record.status} bill {bill_id!r} was refused with {code}, not {VALIDATION}"]
            return []
        value, currency, refund_id = self._refund_request(case)
        if value is None or not isinstance(refund_id, str):
            return []
        if refund_id in record.refunds or unquote(refund_id) in record.refunds:
            return []  # a retry of a known refund with another body: a conflict, whatever the code
        if value > 0 and currency == record.currency and record.refunded + value <= record.amount:
            return [
                f"A refund of {value} {record.currency} of PAID bill {bill_id!r} "
                f"({record.amount - record.refunded} left) was refused with 400"
            ]
        if code is not None and code != REFUND_INCORRECT_AMOUNT:
            return [
                f"A refund of {value} {currency} of a PAID bill was refused with {code}, not {REFUND_INCORRECT_AMOUNT}"
            ]
        return []


LEDGER = Ledger()


@schemathesis.check
def qiwi_error_body(ctx: schemathesis.CheckContext, response: schemathesis.Response, case: AnyCase) -> None:
    """Every 4xx/5xx answer, documented or not (405, unknown routes), carries QIWI's error body and code."""
    if response.status_code < 400:
        return
    expected = expected_error_codes(case, response.status_code)
    problems = qiwi_error_problems(response.status_code, response.content or b"", expected, fresh=LEDGER.fresh)
    if problems:
        raise AssertionError("\n".join(problems))


@schemathesis.check
def qiwi_bill_lifecycle(ctx: schemathesis.CheckContext, response: schemathesis.Response, case: AnyCase) -> None:
    """Statuses, amounts, stored fields and refunds move as QIWI documents them (see the module docstring)."""
    problems = LEDGER.check(case, response.status_code, _json(response), elapsed=response.elapsed or 0.0)
    if problems:
        raise AssertionError("\n".join(problems))
