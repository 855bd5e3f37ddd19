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
"""

from __future__ import annotations

import datetime as dt
import itertools
import os
import zlib
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, replace
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
    """

    pay_bill: Callable[[str], dict[str, Any] | None] | None = None
    id_prefix: str = ""
    safe_amounts: bool = False


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


def future_expiration(seed: object, *, now: dt.datetime | None = None) -> str:
    """A valid ``expirationDateTime`` 1 to 40 days ahead, in one of the spellings clients send."""
    h = _stable_hash(seed)
    moment = (now or dt.datetime.now(dt.UTC)) + dt.timedelta(days=1 + h % 40, seconds=h % 86_400)
    match h % 3:
        case 0:
            return moment.astimezone(dt.timezone(dt.timedelta(hours=3))).isoformat(timespec="milliseconds")
        case 1:
            return moment.strftime("%Y-%m-%dT%H:%M:%SZ")
        case _:
            return moment.astimezone(dt.timezone(dt.timedelta(hours=-5))).isoformat(timespec="seconds")


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
    """In safe runs against a real server, keep every ``billId`` inside this run's own namespace."""
    prefix = _settings.id_prefix
    bill_id = case.path_parameters.get("billId") if case.path_parameters else None
    if prefix and isinstance(bill_id, str) and not bill_id.startswith(prefix):
        case.path_parameters["billId"] = (prefix + bill_id)[:200]


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
def pay_before_refund(ctx: schemathesis.HookContext, case: AnyCase, kwargs: dict[str, Any]) -> None:
    """Refunds are only for ``PAID`` bills ([doc] "refund for the paid invoice"); the customer's payment
    cannot be generated from the schema, so on the mock it is made through ``/_mock/bills/{billId}/pay``.

    A bill that is not ``WAITING`` stays as it is (the mock answers 400), so reject-then-refund still
    meets an unpaid bill.
    """
    if _operation_id(case) != "createRefund":
        return
    pay = _settings.pay_bill or _pay_from_env(case.operation.schema.get_base_url())
    bill_id = case.path_parameters.get("billId") if case.path_parameters else None
    if pay is None or not isinstance(bill_id, str):
        return
    bill = pay(bill_id)
    if isinstance(bill, dict):
        checks.LEDGER.observe_payment(bill)
