"""schemathesis hooks that make generated requests meaningful for QIWI, plus the suite's custom checks.

``schemathesis.toml`` names this module (``hooks = "contract_tests.hooks"``), so a plain
``schemathesis run openapi/qiwi-bill-payments.yaml --url ...`` uses the same hooks and checks as
``python -m contract_tests``. Each hook exists because the OpenAPI document cannot say something the
server rightly enforces; each says which rule and where it comes from.

The hooks only touch *positive* parts of a case (the parts schemathesis generated to be valid). A
negative case stays negative, so ``negative_data_rejection`` keeps its teeth.

Settings come from :func:`configure` (the suite) or, for CLI runs, from the environment:

- ``QIWI_CONTRACT_MOCK_CONTROLS=1``: the target is the mock; pay bills through ``/_mock/`` before refunds.
- ``QIWI_CONTRACT_ID_PREFIX=...``: prefix every ``billId`` (safe runs against a real server).
- ``QIWI_CONTRACT_SAFE_AMOUNTS=1``: every created bill is ``1.00 RUB``.
- ``QIWI_SECRET_KEY_2=...``: a second merchant's key; the probes check that it never reaches the first
  merchant's bills (``contract_tests/probes.py``).
"""

from __future__ import annotations

import datetime as dt
import itertools
import os
import time
import zlib
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from typing import Any
from urllib.parse import quote

import httpx
import schemathesis
from schemathesis.core.parameters import ParameterLocation
from schemathesis.generation.meta import TestPhase

from contract_tests import checks
from contract_tests.checks import AnyCase

__all__ = ["ACCEPTED_CURRENCIES", "HookSettings", "configure", "current_settings"]

# The schema only says `^[A-Z]{3}$` (QIWI Kassa never published a currency list); QIWI P2P accepted
# RUB and KZT (p2p-payments-docs, 2021) and the mock accepts exactly these by default (docs/sources.md,
# Decisions). A positive case with another well-formed code would be a false positive_data_acceptance
# failure, so positive bodies get one of these.
ACCEPTED_CURRENCIES = ("RUB", "KZT")


@dataclass(frozen=True, slots=True)
class HookSettings:
    """What the hooks do for the current run.

    Attributes:
        pay_bill: Pays a bill through the mock's ``/_mock/`` control, or ``None`` when the target is
            not the mock. Called before every refund, so refunds meet ``PAID`` bills.
        id_prefix: Prefix for every ``billId`` (safe runs against a real server), or ``""``.
        safe_amounts: Force ``1.00 RUB`` on every created bill (safe runs against a real server).
        second_key: Another merchant's secret key on the same server, or ``None``.
    """

    pay_bill: Callable[[str], dict[str, Any] | None] | None = None
    id_prefix: str = ""
    safe_amounts: bool = False
    second_key: str | None = field(default=None, repr=False)


def _pay_from_env(base_url: str | None) -> Callable[[str], dict[str, Any] | None] | None:
    if os.environ.get("QIWI_CONTRACT_MOCK_CONTROLS") != "1" or not base_url:
        return None
    key = os.environ.get("QIWI_SECRET_KEY", "")

    def pay(bill_id: str) -> dict[str, Any] | None:
        return pay_over_http(base_url, key, bill_id)

    return pay


def pay_over_http(
    base_url: str, secret_key: str, bill_id: str, *, client: httpx.Client | None = None
) -> dict[str, Any] | None:
    """Pay a bill through the mock's ``POST /_mock/bills/{billId}/pay``; return the bill or ``None``."""
    url = f"{base_url.rstrip('/')}/_mock/bills/{quote(bill_id, safe='')}/pay"
    headers = {"Authorization": f"Bearer {secret_key}"}
    if client is not None:
        response = client.post(url, headers=headers)
    else:
        response = httpx.post(url, headers=headers, timeout=10)
    body = response.json() if response.status_code == 200 else None
    return body if isinstance(body, dict) else None


_settings = HookSettings(
    id_prefix=os.environ.get("QIWI_CONTRACT_ID_PREFIX", ""),
    safe_amounts=os.environ.get("QIWI_CONTRACT_SAFE_AMOUNTS") == "1",
    second_key=os.environ.get("QIWI_SECRET_KEY_2") or None,
)


def current_settings() -> HookSettings:
    """The settings the hooks use right now."""
    return _settings


@contextmanager
def configure(settings: HookSettings) -> Iterator[None]:
    """Use ``settings`` for the duration of a run (the suite runs one engine at a time)."""
    global _settings
    previous = _settings
    _settings = settings
    try:
        yield
    finally:
        _settings = previous


def _stable_hash(value: object) -> int:
    return zlib.crc32(repr(value).encode())


_ZONES = tuple(
    dt.timezone(dt.timedelta(minutes=m)) for m in (180, 0, -300, 345, -570, 840, -720, 330)
)  # Moscow, UTC, New York, Kathmandu (+05:45), Marquesas (-09:30), Kiritimati (+14), -12, India


def future_expiration(seed: object, *, now: dt.datetime | None = None) -> str:
    """A valid ``expirationDateTime`` 1 to 40 days ahead, in one of the RFC 3339 spellings clients send.

    The spec's ``format: date-time`` is RFC 3339 (section 5.6 and its note: ``T`` and ``Z`` may be lower
    case; any number of fraction digits; any offset): the server's parser sees every one of them, and the
    lifecycle ledger checks that the bill answers the same instant.
    """
    h = _stable_hash(seed)
    moment = (now or dt.datetime.now(dt.UTC)) + dt.timedelta(
        days=1 + h % 40, seconds=h % 86_400, microseconds=h % 10**6
    )
    local = moment.astimezone(_ZONES[(h >> 3) % len(_ZONES)])
    base = local.strftime("%Y-%m-%dT%H:%M:%S")
    offset = local.isoformat()[-6:]
    fraction = f"{local.microsecond:06d}"
    match h % 8:
        case 0:
            return f"{base}.{fraction[:3]}{offset}"  # what the SDKs send, milliseconds
        case 1:
            return moment.strftime("%Y-%m-%dT%H:%M:%SZ")
        case 2:
            return f"{base}{offset}"
        case 3:
            return moment.strftime("%Y-%m-%dt%H:%M:%S.%f")[:-3] + "z"  # lower-case t and z
        case 4:
            return f"{base}.{fraction[:1]}{offset}"  # one fraction digit
        case 5:
            return f"{base}.{fraction}{h % 10}{offset}"  # seven fraction digits (.NET's DateTime "o")
        case 6:
            return f"{base}.{fraction}{offset}"  # microseconds (Python's isoformat)
        case _:
            return f"{base}.{fraction[:2]}Z".replace("T", "t")


def _small_amount(h: int) -> str | float:
    """0.01 .. 1.00, as a 2-decimal string or a JSON number: the low edge of Number(6.2) [doc]."""
    cents = 1 + h % 100
    return f"{cents / 100:.2f}" if h & 1 else cents / 100


def _realistic_amount(amount: Any, h: int, settings: HookSettings) -> None:
    if not isinstance(amount, dict):
        return
    if settings.safe_amounts:
        amount["currency"] = "RUB"
        amount["value"] = "1.00"
        return
    currency = amount.get("currency")
    if isinstance(currency, str) and currency not in ACCEPTED_CURRENCIES:
        amount["currency"] = ACCEPTED_CURRENCIES[h % len(ACCEPTED_CURRENCIES)]
    if (h >> 5) % 4 == 0 and isinstance(amount.get("value"), str | int | float):
        # Generated amounts are almost never below 1.00; one case in four asks for cents.
        amount["value"] = _small_amount(h >> 7)


def _is_positive(case: AnyCase, location: ParameterLocation) -> bool:
    meta = case.meta
    return meta is None or not meta.is_negative_at(location)


def _operation_id(case: AnyCase) -> str | None:
    operation_id = case.operation.definition.raw.get("operationId")
    return operation_id if isinstance(operation_id, str) else None


def _realistic_bill(case: AnyCase) -> None:
    """Give a positive createBill body an accepted currency and an expiry in the future.

    ``expirationDateTime`` must lie in the future (the reference document: the bill's "срок действия";
    the spec's CreateBillRequest says so), which JSON Schema cannot express; a generated date is
    almost always in the past.
    """
    body = case.body
    if isinstance(body, dict) and _is_positive(case, ParameterLocation.BODY):
        h = _stable_hash(body)
        _realistic_amount(body.get("amount"), h, _settings)
        if isinstance(body.get("expirationDateTime"), str):
            body["expirationDateTime"] = future_expiration(body["expirationDateTime"])


def _realistic_refund(case: AnyCase) -> None:
    """Give a positive refund body an accepted currency (see :data:`ACCEPTED_CURRENCIES`)."""
    body = case.body
    if isinstance(body, dict) and _is_positive(case, ParameterLocation.BODY):
        _realistic_amount(body.get("amount"), _stable_hash(body), replace(_settings, safe_amounts=False))


_STATEFUL_BILLS = itertools.count(1)


def _fresh_stateful_bill(case: AnyCase) -> None:
    """A stateful workflow starts from a bill of its own: a positive createBill of the stateful phase gets a
    unique ``billId`` (the generated one plus ``-s<n>``).

    Generated ids repeat across phases ("0", "00"...), and the refund hook pays the bills it meets, so a
    workflow that started from such an id met a PAID bill it did not create: its reject link then answered
    400 every time in some runs, and whether `rejectBill` ever succeeded depended on the draw. Links out of
    createBill carry the id on, so the whole workflow works on its own WAITING bill. Repeated creates of one
    id are still generated by the other phases.
    """
    meta = case.meta
    if meta is None or meta.phase.name != TestPhase.STATEFUL or not _is_positive(case, ParameterLocation.PATH):
        return
    bill_id = case.path_parameters.get("billId") if case.path_parameters else None
    if isinstance(bill_id, str):
        case.path_parameters["billId"] = f"{bill_id[:190]}-s{next(_STATEFUL_BILLS)}"


def _prefixed_bill_id(case: AnyCase) -> None:
    """Keep every positive ``billId`` inside this run's own namespace (``HookSettings.id_prefix``).

    The run then needs no ``/_mock/reset`` (a server that only works after one would go unnoticed) and never
    touches older bills: safe runs against a real server, and bills of earlier runs on a long-lived mock. A
    negative path parameter stays as generated (a prefix could make a too-long id valid); a long id keeps its
    tail, where the stateful suffix ``-s<n>`` is.
    """
    prefix = _settings.id_prefix
    bill_id = case.path_parameters.get("billId") if case.path_parameters else None
    if not prefix or not isinstance(bill_id, str) or bill_id.startswith(prefix):
        return
    if not _is_positive(case, ParameterLocation.PATH):
        return
    room = 200 - len(prefix)  # billId maxLength (spec, components.parameters.billId)
    case.path_parameters["billId"] = prefix + (bill_id[-room:] if len(bill_id) > room else bill_id)


def adjust_case(case: AnyCase) -> AnyCase:
    """Apply every adjustment this module makes to one generated case."""
    match _operation_id(case):
        case "createBill":
            _realistic_bill(case)
            _fresh_stateful_bill(case)
        case "createRefund":
            _realistic_refund(case)
    _prefixed_bill_id(case)
    return case


@schemathesis.hook("map_case")
def realistic_case(ctx: schemathesis.HookContext, case: AnyCase) -> AnyCase:
    """Adjust cases of the coverage, fuzzing and stateful phases (see :func:`adjust_case`)."""
    return adjust_case(case)


@schemathesis.hook("before_add_examples")
def realistic_examples(ctx: schemathesis.HookContext, examples: list[AnyCase]) -> None:
    """Adjust cases of the examples phase, which ``map_case`` does not see (schemathesis 4.32
    ``ExamplesGenerator`` only dispatches ``before_add_examples``). A property without an example gets
    schemathesis' filler, e.g. ``expirationDateTime: 2000-01-01T00:00:00Z``."""
    for case in examples:
        adjust_case(case)


@schemathesis.hook("before_call")
def before_call(ctx: schemathesis.HookContext, case: AnyCase, kwargs: dict[str, Any]) -> None:
    """Note when each request leaves (the ledger times status changes), pause before a status change so the
    server's clock moves on, and pay bills before refunds (:func:`pay_before_refund`)."""
    operation_id = _operation_id(case)
    bill_id = case.path_parameters.get("billId") if case.path_parameters else None
    if operation_id in ("rejectBill", "createRefund"):
        checks.LEDGER.wait_for_status_change(bill_id)
    if operation_id == "createRefund":
        pay_before_refund(case)
    checks.LEDGER.mark_sent(case.id)


def pay_before_refund(case: AnyCase) -> None:
    """Refunds are only for ``PAID`` bills ([doc] "refund for the paid invoice"); the customer's payment
    cannot be generated from the schema, so on the mock it is made through ``/_mock/bills/{billId}/pay``.

    A bill that is not ``WAITING`` stays as it is (the mock answers 400), so reject-then-refund still
    meets an unpaid bill.
    """
    pay = _settings.pay_bill or _pay_from_env(case.operation.schema.get_base_url())
    bill_id = case.path_parameters.get("billId") if case.path_parameters else None
    if pay is None or not isinstance(bill_id, str):
        return
    sent = time.monotonic()
    bill = pay(bill_id)
    if isinstance(bill, dict):
        checks.LEDGER.observe_payment(bill, sent=sent)


# The checks that send probes of their own register themselves on import; a plain `schemathesis run`
# loads only this module (schemathesis.toml), so it imports them. At the end: probes imports this module.
from contract_tests import probes  # noqa: E402, F401
