"""The suite's own checks can fail: each rule of ``qiwi_bill_lifecycle`` and ``qiwi_error_body`` on crafted answers.

The mock has no broken behaviour for the bill lifecycle, so these unit tests are the evidence that the
ledger is not a check that always passes.
"""

from __future__ import annotations

from typing import Any

import pytest
import requests
import schemathesis
from schemathesis.config import SchemathesisConfig

from contract_tests._engine import SPEC_PATH
from contract_tests.checks import AnyCase, Ledger

SCHEMA = schemathesis.openapi.from_path(SPEC_PATH, config=SchemathesisConfig())
BILL = "/partner/bill/v1/bills/{billId}"
REFUND = "/partner/bill/v1/bills/{billId}/refunds/{refundId}"


def case(path: str, method: str, body: Any = None, **path_parameters: str) -> AnyCase:
    operation = SCHEMA[path][method]
    if body is None:
        return operation.Case(path_parameters=path_parameters)
    return operation.Case(path_parameters=path_parameters, body=body)


def bill(bill_id: str = "b1", status: str = "WAITING", value: str = "10.00", currency: str = "RUB") -> dict[str, Any]:
    return {"billId": bill_id, "status": {"value": status}, "amount": {"currency": currency, "value": value}}


def refund(refund_id: str, value: str, status: str, currency: str = "RUB") -> dict[str, Any]:
    return {"refundId": refund_id, "amount": {"currency": currency, "value": value}, "status": status}


def create(value: str = "10.00") -> AnyCase:
    body = {"amount": {"currency": "RUB", "value": value}, "expirationDateTime": "2030-01-01T00:00:00Z"}
    return case(BILL, "PUT", body, billId="b1")


def refund_case(refund_id: str, value: str, currency: str = "RUB") -> AnyCase:
    return case(REFUND, "PUT", {"amount": {"currency": currency, "value": value}}, billId="b1", refundId=refund_id)


@pytest.fixture
def ledger() -> Ledger:
    fresh = Ledger()
    fresh.reset(fresh=True)
    return fresh


def test_a_documented_lifecycle_passes(ledger: Ledger) -> None:
    assert ledger.check(create(), 200, bill()) == []
    assert ledger.check(case(BILL, "GET", billId="b1"), 200, bill()) == []
    ledger.observe_payment(bill(status="PAID"))
    assert ledger.check(refund_case("r1", "4.00"), 200, refund("r1", "4.00", "PARTIAL")) == []
    assert ledger.check(refund_case("r2", "6.00"), 200, refund("r2", "6.00", "FULL")) == []
    assert ledger.check(refund_case("r3", "0.01"), 400, None) == []  # nothing left: refusal explained
    assert ledger.check(case(BILL, "GET", billId="b1"), 200, bill(status="PAID")) == []


def test_a_final_status_that_changes_fails(ledger: Ledger) -> None:
    ledger.check(create(), 200, bill())
    assert ledger.check(case(BILL + "/reject", "POST", billId="b1"), 200, bill(status="REJECTED")) == []
    problems = ledger.check(case(BILL, "GET", billId="b1"), 200, bill(status="WAITING"))
    assert any("final status" in p for p in problems), problems


def test_a_reject_that_does_not_reject_fails(ledger: Ledger) -> None:
    ledger.check(create(), 200, bill())
    problems = ledger.check(case(BILL + "/reject", "POST", billId="b1"), 200, bill(status="WAITING"))
    assert any("expected REJECTED" in p for p in problems), problems


def test_a_new_bill_must_wait_and_keep_its_amount(ledger: Ledger) -> None:
    problems = ledger.check(create("12.345"), 200, bill(status="PAID", value="12.35"))
    assert any("expected WAITING" in p for p in problems), problems
    assert any("stored as 12.35" in p for p in problems), problems  # 12.345 rounds DOWN to 12.34


def test_a_repeated_create_with_another_amount_fails(ledger: Ledger) -> None:
    ledger.check(create(), 200, bill())
    problems = ledger.check(create("20.00"), 200, bill(value="20.00"))
    assert any("changed its amount" in p for p in problems), problems


def test_refunds_beyond_the_bill_fail(ledger: Ledger) -> None:
    ledger.check(create(), 200, bill())
    ledger.observe_payment(bill(status="PAID"))
    ledger.check(refund_case("r1", "8.00"), 200, refund("r1", "8.00", "PARTIAL"))
    problems = ledger.check(refund_case("r2", "5.00"), 200, refund("r2", "5.00", "FULL"))
    assert any("more than the bill" in p for p in problems), problems


def test_a_wrong_refund_status_fails(ledger: Ledger) -> None:
    ledger.check(create(), 200, bill())
    ledger.observe_payment(bill(status="PAID"))
    problems = ledger.check(refund_case("r1", "10.00"), 200, refund("r1", "10.00", "PARTIAL"))
    assert any("expected FULL" in p for p in problems), problems


def test_a_refund_of_an_unpaid_bill_fails(ledger: Ledger) -> None:
    ledger.check(create(), 200, bill())
    problems = ledger.check(refund_case("r1", "1.00"), 200, refund("r1", "1.00", "PARTIAL"))
    assert any("only PAID" in p for p in problems), problems


def test_refusing_an_allowed_reject_or_refund_fails(ledger: Ledger) -> None:
    ledger.check(create(), 200, bill())
    problems = ledger.check(case(BILL + "/reject", "POST", billId="b1"), 400, None)
    assert any("was refused" in p for p in problems), problems
    ledger.observe_payment(bill(status="PAID"))
    problems = ledger.check(refund_case("r1", "1.00"), 400, None)
    assert any("was refused" in p for p in problems), problems
    assert ledger.check(refund_case("r1", "1.00", currency="KZT"), 400, None) == []  # other currency: explained


def test_a_long_lived_server_is_not_assumed_empty() -> None:
    """Against a server with older bills (a CLI run), an unseen bill is not asserted to be new."""
    ledger = Ledger()
    ledger.reset(fresh=False)
    assert ledger.check(create(), 200, bill(status="PAID")) == []


@pytest.mark.parametrize(
    ("status", "content", "ok"),
    [
        (200, b"{}", True),
        (404, b"Not Found", False),
        (401, b"", True),  # QIWI's empty 401 (the spec's Unauthorized response)
        (403, b"", False),
        (400, b'{"errorCode": "validation.error"}', False),
        (
            404,
            b'{"serviceName":"invoicing-api","errorCode":"api.invoice.not.found","description":"x",'
            b'"userMessage":"x","dateTime":"2021-01-18T14:34:40.865+03:00","traceId":"b3"}',
            True,
        ),
    ],
)
def test_qiwi_error_body(status: int, content: bytes, ok: bool) -> None:
    from contract_tests.checks import qiwi_error_body

    response = schemathesis.Response(
        status_code=status, headers={}, content=content, request=requests.PreparedRequest(), elapsed=0.0, verify=True
    )
    context: Any = None  # the check does not use its context
    if ok:
        qiwi_error_body(context, response, case(BILL, "GET", billId="b1"))
    else:
        with pytest.raises(AssertionError):
            qiwi_error_body(context, response, case(BILL, "GET", billId="b1"))
