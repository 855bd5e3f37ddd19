"""Checks that send requests of their own: rules that no generated case reaches.

A schema-driven generator only sends what the schema describes, and the hooks keep positive cases valid,
so some documented rules are never exercised by generated data. These checks derive a few requests from a
successful answer and send them through schemathesis' transport (in-process or over TCP alike, so a remote
server gets the same scrutiny), each a bounded number of times per run:

- ``qiwi_business_rules``: the run's first successful create, repeated with one value that only a business
  rule refuses: an unaccepted currency, a past ``expirationDateTime``, an amount above 999999.99 sent as a
  JSON number (DESIGN.md, decision table: 400 ``validation.error`` with ``cause``), a comment holding the
  JSON escape of a lone surrogate (400 ``http.message.conversion.failed``: not text a server can store), and
  offsets spelled ``+0300`` / ``+03`` (not RFC 3339: refused as invalid, or read as the right instant). A
  refused create must leave no bill behind.
  A bill created to expire 1 s later is read by a later check: it must be ``EXPIRED`` (before any sweep).
  Bills whose ids hold reserved characters (``/``, ``%41``, a space, non-ASCII) are created and read back under
  exactly that id. Where bills can be paid (the mock's control) and refunds are allowed, a paid 10.00 bill is
  refunded 3.00, then exactly the 7.00 left (``PARTIAL``, then ``FULL``), then one cent more (refused).
- ``qiwi_idempotent_retry``: an identical retried create or refund returns the stored object (200), never a
  conflict and never a different object (decision table: repeated ``billId`` / ``refundId``, same body).
- ``qiwi_merchant_isolation``: with a second merchant's key (``QIWI_SECRET_KEY_2``; the embedded mock has a
  second merchant), reading, rejecting or refunding the first merchant's bill and reading its refund answer
  404 ``api.invoice.not.found``, never the bill, and change nothing.
"""

from __future__ import annotations

import datetime as dt
import functools
import json
import secrets
import time
from collections.abc import Callable
from typing import Any
from urllib.parse import quote

import schemathesis
from schemathesis.core.errors import OperationNotFound
from schemathesis.core.parameters import ParameterLocation
from schemathesis.specs.openapi._auth_retry import build_retry_transport_kwargs, get_security_parameters

from contract_tests import hooks
from contract_tests.checks import (
    CONVERSION,
    INVOICE_NOT_FOUND,
    LEDGER,
    REFUND_INCORRECT_AMOUNT,
    VALIDATION,
    AnyCase,
    qiwi_error_problems,
)
from qiwi_bill import parse_datetime

__all__ = ["business_rule_variants"]

_RUN_TAG = f"ct-{secrets.token_hex(4)}-"  # ids of a CLI run that has no namespace of its own


def _operation_id(case: AnyCase) -> str | None:
    value = case.operation.definition.raw.get("operationId")
    return value if isinstance(value, str) else None


def _authorization(response: schemathesis.Response) -> str | None:
    """The ``Authorization`` header the run sent (its merchant's key), as text."""
    value = response.request.headers.get("Authorization")
    if isinstance(value, bytes):
        value = value.decode("latin-1")
    return value or None


def _positive_success(case: AnyCase, response: schemathesis.Response) -> bool:
    meta = case.meta
    negative = meta is not None and any(
        meta.is_negative_at(location)
        for location in (ParameterLocation.PATH, ParameterLocation.BODY, ParameterLocation.HEADER)
    )
    return response.status_code == 200 and not negative


def _json(content: bytes | None) -> Any:
    try:
        return json.loads(content or b"null")
    except ValueError:
        return None


class _Skipped(Exception):
    """The operation a probe needs is not in this run's document (a restricted or safe run)."""


def _send(
    ctx: schemathesis.CheckContext,
    parent: AnyCase,
    operation_id: str,
    path: dict[str, str],
    *,
    authorization: str,
    body: bytes | None = None,
) -> schemathesis.Response:
    """One request derived from ``parent``, sent like the run's own (same transport, same app).

    Raises:
        _Skipped: ``operation_id`` is not part of this run.
    """
    try:
        operation = parent.operation.schema.find_operation_by_id(operation_id)
    except OperationNotFound:
        raise _Skipped(operation_id) from None
    headers = {"Authorization": authorization}
    if body is None:
        probe = operation.Case(path_parameters=path, headers=headers)
    else:
        # As QIWI's Node, PHP and Go SDKs send it (qiwi-sdks.md); the run's own cases send plain application/json.
        headers["Content-Type"] = "application/json;charset=UTF-8"
        probe = operation.Case(path_parameters=path, headers=headers, body=body, media_type="application/json")
    # The run's transport settings, none of its credentials (as schemathesis' own auth probes send theirs), and
    # not recorded as a child of `parent`: the engine would take the probe's answer for the case's own.
    kwargs = build_retry_transport_kwargs(ctx.internals.transport_kwargs, get_security_parameters(parent.operation))
    if parent.operation.app is not None:
        kwargs.setdefault("app", parent.operation.app)
    response: schemathesis.Response = parent.operation.schema.transport.send(probe, **kwargs)
    return response


def _probe(check: Callable[[schemathesis.CheckContext, schemathesis.Response, AnyCase], None]) -> Any:
    """Register ``check`` with schemathesis; a probe whose operation the run leaves out passes silently."""

    @functools.wraps(check)
    def run(ctx: schemathesis.CheckContext, response: schemathesis.Response, case: AnyCase) -> None:
        problems = [problem for action in LEDGER.take_due() for problem in action(ctx, case)]
        try:
            check(ctx, response, case)
        except _Skipped:
            pass
        except AssertionError as exc:
            problems.append(str(exc))
        if problems:
            raise AssertionError("\n".join(problems))

    return schemathesis.check(run)


def _optional(send: Any, *args: Any, **kwargs: Any) -> schemathesis.Response | None:
    """``send(...)``, or ``None`` when the run leaves out the operation (the probe's other requests still count)."""
    try:
        result: schemathesis.Response = send(*args, **kwargs)
    except _Skipped:
        return None
    return result


def _member(
    ctx: schemathesis.CheckContext, case: AnyCase, operation_id: str, path: dict[str, str], name: str, **kwargs: Any
) -> tuple[schemathesis.Response | None, Any]:
    """Send one probe (see :func:`_optional`); its answer and the top-level JSON member ``name`` of it."""
    answer = _optional(_send, ctx, case, operation_id, path, **kwargs)
    got = _json(answer.content) if answer is not None else None
    return answer, got.get(name) if isinstance(got, dict) else None


def _probe_id(tag: str) -> str:
    prefix = hooks.current_settings().id_prefix or LEDGER.namespace or _RUN_TAG
    return f"{prefix}probe-{secrets.token_hex(3)}-{tag}"


def _valid_create(body: dict[str, Any]) -> dict[str, Any]:
    """A minimal valid create body with the amount of ``body`` (a successful create's)."""
    given = body.get("amount")
    amount: dict[str, Any] = dict(given) if isinstance(given, dict) else {"currency": "RUB", "value": "1.00"}
    future = dt.datetime.now(dt.UTC) + dt.timedelta(days=3)
    return {"amount": amount, "expirationDateTime": future.isoformat(timespec="seconds")}


def business_rule_variants(body: dict[str, Any], *, safe: bool) -> dict[str, tuple[bytes, str, str | None]]:
    """Create bodies a business rule refuses: name -> (raw JSON, expected errorCode, field ``cause`` names).

    ``safe``: leave out the over-limit amount (a lax real server would issue a real bill for it).
    """
    valid = _valid_create(body)
    amount = valid["amount"]
    past = (dt.datetime.now(dt.UTC) - dt.timedelta(minutes=5)).strftime("%Y-%m-%dt%H:%M:%S.%f")[:-3] + "z"
    variants: dict[str, dict[str, Any]] = {
        # "XXX" is ISO 4217's "no currency": no server accepts bills in it (the mock: RUB, KZT).
        "unaccepted currency": {**valid, "amount": {**amount, "currency": "XXX"}},
        "expiry in the past": {**valid, "expirationDateTime": past},
        "expiry long past": {**valid, "expirationDateTime": "2001-01-01T00:00:00+03:00"},
        # RFC 3339's first year: schema-valid, past, and beyond what some parsers (Python's datetime) can hold.
        "expiry in year 0000": {**valid, "expirationDateTime": "0000-01-01T00:00:00Z"},
    }
    if not safe:
        variants["amount over the limit as a number"] = {**valid, "amount": {**amount, "value": 1000000}}
        variants["amount over the limit with cents"] = {**valid, "amount": {**amount, "value": 1000000.5}}
    fields = {
        "unaccepted currency": "currency",
        "expiry in the past": "expirationDateTime",
        "expiry long past": "expirationDateTime",
        "expiry in year 0000": "expirationDateTime",
        "amount over the limit as a number": "amount",
        "amount over the limit with cents": "amount",
    }
    out: dict[str, tuple[bytes, str, str | None]] = {
        name: (json.dumps(value).encode(), VALIDATION, fields[name]) for name, value in variants.items()
    }
    # json.dumps escapes the lone surrogate as `\ud800` (ASCII), exactly the bytes a client would send.
    out["lone surrogate in comment"] = (json.dumps({**valid, "comment": "ab\ud800"}).encode(), CONVERSION, None)
    return out


def _offset_variants() -> dict[str, tuple[bytes, dt.datetime]]:
    """``+0300`` and ``+03``: QIWI's own notifications used them, RFC 3339 does not allow them."""
    moment = (dt.datetime.now(dt.UTC) + dt.timedelta(days=2)).replace(microsecond=0)
    local = moment.astimezone(dt.timezone(dt.timedelta(hours=3))).strftime("%Y-%m-%dT%H:%M:%S")
    amount = {"currency": "RUB", "value": "1.00"}
    return {
        f"offset {suffix}": (json.dumps({"amount": amount, "expirationDateTime": local + suffix}).encode(), moment)
        for suffix in ("+0300", "+03")
    }


#: Ids with characters a URL path reserves: the client percent-encodes them (the generated client quotes with
#: ``safe=""``), the server must route on the raw path and decode once: `a/b` is one id, `p%41` is not `pA`.
RESERVED_IDS = {"slash": "a/b", "percent": "p%41", "space and plus": "s t+u", "non-ASCII": "счёт-ü"}


def _reserved_id_problems(ctx: schemathesis.CheckContext, case: AnyCase, authorization: str) -> list[str]:
    problems = []
    raw = json.dumps(_valid_create(case.body if isinstance(case.body, dict) else {})).encode()
    for tag, suffix in RESERVED_IDS.items():
        bill_id = _probe_id("id-") + suffix
        # schemathesis sends path parameters as given (and requests unquotes %41 to A): encode them here.
        path = {"billId": quote(bill_id, safe="")}
        for operation_id, body in (("createBill", raw), ("getBill", None)):
            answer, echoed = _member(ctx, case, operation_id, path, "billId", authorization=authorization, body=body)
            if answer is not None and (answer.status_code != 200 or echoed != bill_id):
                problems.append(
                    f"{operation_id} of a bill id with {tag} ({bill_id!r}) answered {answer.status_code} "
                    f"with billId {echoed!r}"
                )
    return problems


#: Seconds between creating the lapsing bill and its expirationDateTime.
LAPSE = 1.0


def _start_lapse(ctx: schemathesis.CheckContext, case: AnyCase, authorization: str) -> None:
    """Create a bill that expires in :data:`LAPSE` seconds; a later check reads it (:func:`_lapsed_problems`).

    A read after ``expirationDateTime`` must say ``EXPIRED`` whether or not a sweep ran (DESIGN.md, Decisions:
    moving to EXPIRED "when read or swept"), and the identical create retried then must answer that stored bill,
    not refuse the expiry that has passed since. The server's clock is measured from the create's answer, so a
    server whose clock differs from ours is read when *its* clock has passed the expiry.
    """
    sent = dt.datetime.now(dt.UTC)
    expiry = sent + dt.timedelta(seconds=LAPSE)
    body = {**_valid_create(case.body if isinstance(case.body, dict) else {})}
    body["expirationDateTime"] = expiry.isoformat(timespec="milliseconds")
    bill_id = _probe_id("lapse")
    raw = json.dumps(body).encode()
    made = _optional(_send, ctx, case, "createBill", {"billId": bill_id}, authorization=authorization, body=raw)
    answer = _json(made.content) if made is not None else None
    if made is None or made.status_code != 200 or not isinstance(answer, dict):
        return  # e.g. a server whose clock is ahead of ours found the expiry past: nothing to wait for
    try:
        offset = (parse_datetime(str(answer.get("creationDateTime"))) - sent).total_seconds()
    except (ValueError, TypeError):
        offset = 0.0
    wait = (expiry - dt.datetime.now(dt.UTC)).total_seconds() - offset + 0.3

    def check(ctx: schemathesis.CheckContext, later: AnyCase) -> list[str]:
        read = _optional(_send, ctx, later, "getBill", {"billId": bill_id}, authorization=authorization)
        got = _json(read.content) if read is not None else None
        status = (got.get("status") or {}).get("value") if isinstance(got, dict) else None
        if read is None:
            return []
        if status != "EXPIRED":
            return [
                f"Bill {bill_id!r} read after its expirationDateTime {body['expirationDateTime']} answered "
                f"{read.status_code} status {status!r}, not EXPIRED"
            ]
        # The create retried now, its expiry past: a retry is answered with the stored bill in its current status,
        # not refused for the expiry its first send passed (qiwi-api-semantics.md §1: "200 with the stored bill
        # unchanged, in its current status"; DESIGN.md, Decisions).
        again = _optional(_send, ctx, later, "createBill", {"billId": bill_id}, authorization=authorization, body=raw)
        if again is None or (again.status_code == 200 and _json(again.content) == got):
            return []
        return [
            f"A retry of the create of bill {bill_id!r} after its expiry answered {again.status_code} "
            f"{(again.content or b'')[:300]!r}, not the stored bill {got}"
        ]

    LEDGER.defer(time.monotonic() + max(wait, 0.0), check)


def _refund_problems(ctx: schemathesis.CheckContext, case: AnyCase, authorization: str) -> list[str]:
    """A bill of 10.00 paid through the mock's control, refunded 3.00 and then exactly the 7.00 left: ``PARTIAL``,
    then ``FULL``; one cent more is 400 ``refund.incorrect.amount`` (qiwi-api-semantics.md: refunds up to the
    bill's amount, ``FULL`` when they reach it). Only where bills can be paid and refunds are allowed."""
    settings = hooks.current_settings()
    if settings.pay_bill is None or settings.safe_amounts:
        return []
    currency = (_valid_create(case.body if isinstance(case.body, dict) else {})["amount"]).get("currency", "RUB")
    body = {**_valid_create({}), "amount": {"currency": currency, "value": "10.00"}}
    bill_id = _probe_id("cents")
    made = _send(
        ctx, case, "createBill", {"billId": bill_id}, authorization=authorization, body=json.dumps(body).encode()
    )
    if made.status_code != 200 or settings.pay_bill(bill_id) is None:
        return []  # the create's own checks report a refused create; a bill that cannot be paid cannot be refunded
    problems = []
    steps = (("3.00", 200, "PARTIAL"), ("7.00", 200, "FULL"), ("0.01", 400, REFUND_INCORRECT_AMOUNT))
    for number, (value, status, expected) in enumerate(steps):
        raw = json.dumps({"amount": {"currency": currency, "value": value}}).encode()
        path = {"billId": bill_id, "refundId": f"r{number}"}
        answer = _optional(_send, ctx, case, "createRefund", path, authorization=authorization, body=raw)
        if answer is None:
            return []
        got = _json(answer.content)
        said = got.get("status" if answer.status_code == 200 else "errorCode") if isinstance(got, dict) else None
        if answer.status_code != status or said != expected:
            problems.append(
                f"A refund of {value} {currency} of paid bill {bill_id!r} (10.00, refunded "
                f"{['0.00', '3.00', '10.00'][number]} before) answered {answer.status_code} {said!r}, "
                f"expected {status} {expected}"
            )
    return problems


def _refusal_problems(name: str, response: schemathesis.Response, code: str, field: str | None) -> list[str]:
    problems = [
        f"{name}: {line}"
        for line in qiwi_error_problems(response.status_code, response.content or b"", None, fresh=False)
    ]
    body = _json(response.content)
    got = body.get("errorCode") if isinstance(body, dict) else None
    if response.status_code != 400 or got != code:
        problems.append(f"{name}: expected 400 {code}, got {response.status_code} {got!r}")
    cause = body.get("cause") if isinstance(body, dict) else None
    # The field is a whole segment of a key (`amount.currency` names `currency`), never a part of one.
    if field is not None and not (
        isinstance(cause, dict) and any(field.lower() in str(key).lower().split(".") for key in cause)
    ):
        problems.append(f"{name}: the cause {cause!r} does not name {field}")
    return problems


@_probe
def qiwi_business_rules(ctx: schemathesis.CheckContext, response: schemathesis.Response, case: AnyCase) -> None:
    """Once per run, after a successful create: creates that only a business rule refuses are refused."""
    if _operation_id(case) != "createBill" or not _positive_success(case, response):
        return
    authorization = _authorization(response)
    if not isinstance(case.body, dict) or not authorization or not LEDGER.claim("business_rules", 1):
        return
    problems: list[str] = []
    settings = hooks.current_settings()
    for name, (raw, code, field) in business_rule_variants(case.body, safe=settings.safe_amounts).items():
        bill_id = _probe_id("rule")
        refused = _send(ctx, case, "createBill", {"billId": bill_id}, authorization=authorization, body=raw)
        problems.extend(_refusal_problems(name, refused, code, field))
        read = _optional(_send, ctx, case, "getBill", {"billId": bill_id}, authorization=authorization)
        if read is not None and read.status_code != 404:
            problems.append(f"{name}: the refused create left bill {bill_id!r} behind ({read.status_code})")
    problems.extend(_reserved_id_problems(ctx, case, authorization))
    problems.extend(_refund_problems(ctx, case, authorization))
    _start_lapse(ctx, case, authorization)
    for name, (raw, moment) in _offset_variants().items():
        answer = _send(ctx, case, "createBill", {"billId": _probe_id("offset")}, authorization=authorization, body=raw)
        body = _json(answer.content)
        if answer.status_code == 200 and isinstance(body, dict):
            try:
                got = parse_datetime(str(body.get("expirationDateTime")))
            except ValueError:
                got = None
            if got != moment:
                problems.append(f"{name}: accepted, but the bill expires at {body.get('expirationDateTime')}")
        else:
            problems.extend(_refusal_problems(name, answer, VALIDATION, "expirationDateTime"))
    if problems:
        raise AssertionError("\n".join(problems))


@_probe
def qiwi_idempotent_retry(ctx: schemathesis.CheckContext, response: schemathesis.Response, case: AnyCase) -> None:
    """An identical retry of a successful create or refund returns the same object (a few times per run)."""
    operation_id = _operation_id(case)
    if operation_id not in ("createBill", "createRefund") or not _positive_success(case, response):
        return
    authorization = _authorization(response)
    sent = response.request.body
    first = _json(response.content)
    if not authorization or not isinstance(sent, bytes | str) or not isinstance(first, dict):
        return
    if not LEDGER.claim(f"retry-{operation_id}", 3):
        return
    raw = sent.encode() if isinstance(sent, str) else sent
    again = _send(ctx, case, operation_id, dict(case.path_parameters or {}), authorization=authorization, body=raw)
    if again.status_code != 200 or _json(again.content) != first:
        raise AssertionError(
            f"An identical retry of {operation_id} answered {again.status_code} "
            f"{(again.content or b'')[:300]!r}, not the stored object {first}"
        )


@_probe
def qiwi_merchant_isolation(ctx: schemathesis.CheckContext, response: schemathesis.Response, case: AnyCase) -> None:
    """With another merchant's key, the first merchant's bill and refunds are 404, and stay untouched."""
    second = hooks.current_settings().second_key
    operation_id = _operation_id(case)
    body = _json(response.content)
    if not second or response.status_code != 200 or not isinstance(body, dict) or case.meta is None:
        return
    bill_id = (case.path_parameters or {}).get("billId")
    if not isinstance(bill_id, str) or body.get("billId", bill_id) != bill_id:
        return  # only plain ids: a percent-encoded one would be encoded again and name another bill
    other = f"Bearer {second}"
    path = {"billId": bill_id}
    sends: list[tuple[str, dict[str, str], bytes | None]] = []
    if operation_id in ("createBill", "getBill") and LEDGER.claim("isolation-bill", 2):
        sends = [("getBill", path, None), ("rejectBill", path, None)]
        if not hooks.current_settings().safe_amounts:
            refund = json.dumps({"amount": {"currency": "RUB", "value": "0.01"}}).encode()
            sends.append(("createRefund", {**path, "refundId": "isolation"}, refund))
    elif operation_id in ("createRefund", "getRefund") and LEDGER.claim("isolation-refund", 2):
        sends = [("getRefund", dict(case.path_parameters or {}), None)]
    problems = []
    for target_operation, parameters, raw in sends:
        answer, code = _member(ctx, case, target_operation, parameters, "errorCode", authorization=other, body=raw)
        if answer is not None and (answer.status_code != 404 or code != INVOICE_NOT_FOUND):
            problems.append(
                f"{target_operation} of another merchant's bill {bill_id!r} answered {answer.status_code} "
                f"{(answer.content or b'')[:200]!r}, expected 404 {INVOICE_NOT_FOUND}"
            )
    if sends and operation_id in ("createBill", "getBill"):
        authorization = _authorization(response) or ""
        after = _json(_send(ctx, case, "getBill", path, authorization=authorization).content)
        if isinstance(after, dict) and (after.get("status") or {}).get("value") != (body.get("status") or {}).get(
            "value"
        ):
            problems.append(f"Another merchant's requests changed bill {bill_id!r}: {body} -> {after}")
    if problems:
        raise AssertionError("\n".join(problems))
