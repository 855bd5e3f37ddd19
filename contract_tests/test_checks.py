"""The suite's own checks can fail: each rule of ``qiwi_bill_lifecycle`` and ``qiwi_error_body`` on crafted answers.

The mock has no broken behaviour for the bill lifecycle, so these unit tests are the evidence that the
ledger is not a check that always passes; the expected ``errorCode`` per kind of case is pinned here too.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
from collections.abc import Callable
from typing import Any

import pytest
import requests
import schemathesis
from schemathesis.config import SchemathesisConfig

from contract_tests._engine import SPEC_PATH, run_conformance
from contract_tests._profiles import Budget
from contract_tests._target import MOCK_SECRET_KEY, mock_asgi_target
from contract_tests.checks import LEDGER, AnyCase, Ledger, expected_error_codes, qiwi_error_problems

SCHEMA = schemathesis.openapi.from_path(SPEC_PATH, config=SchemathesisConfig())
BILL = "/partner/bill/v1/bills/{billId}"
REFUND = "/partner/bill/v1/bills/{billId}/refunds/{refundId}"


def case(path: str, method: str, body: Any = None, **path_parameters: str) -> AnyCase:
    operation = SCHEMA[path][method]
    if body is None:
        return operation.Case(path_parameters=path_parameters)
    return operation.Case(path_parameters=path_parameters, body=body)


NOW = dt.datetime.now(dt.UTC).replace(microsecond=0)
CREATED = NOW.isoformat(timespec="milliseconds")


def bill(
    bill_id: str = "b1", status: str = "WAITING", value: str = "10.00", currency: str = "RUB", **extra: Any
) -> dict[str, Any]:
    changed = extra.pop("changed", CREATED)
    return {
        "billId": bill_id,
        "status": {"value": status, "changedDateTime": changed},
        "amount": {"currency": currency, "value": value},
        "creationDateTime": CREATED,
        "expirationDateTime": "2030-01-01T03:00:00+03:00",
        **extra,
    }


def later(milliseconds: int) -> str:
    return (NOW + dt.timedelta(milliseconds=milliseconds)).isoformat(timespec="milliseconds")


def refund(refund_id: str, value: str, status: str, currency: str = "RUB") -> dict[str, Any]:
    return {"refundId": refund_id, "amount": {"currency": currency, "value": value}, "status": status}


def create(value: str = "10.00", **extra: Any) -> AnyCase:
    body = {"amount": {"currency": "RUB", "value": value}, "expirationDateTime": "2030-01-01T00:00:00Z", **extra}
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
    ledger.observe_payment(bill(status="PAID", changed=later(50)))
    assert ledger.check(refund_case("r1", "4.00"), 200, refund("r1", "4.00", "PARTIAL")) == []
    assert ledger.check(refund_case("r2", "6.00"), 200, refund("r2", "6.00", "FULL")) == []
    assert ledger.check(refund_case("r3", "0.01"), 400, None) == []  # nothing left: refusal explained
    assert ledger.check(case(BILL, "GET", billId="b1"), 200, bill(status="PAID", changed=later(50))) == []


def test_a_final_status_that_changes_fails(ledger: Ledger) -> None:
    ledger.check(create(), 200, bill())
    rejected = bill(status="REJECTED", changed=later(20))
    assert ledger.check(case(BILL + "/reject", "POST", billId="b1"), 200, rejected) == []
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
        (401, b"", True),  # the real service sometimes sent 401 without a body (issue 15: both accepted)
        (401, b"Unauthorized", False),
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
    LEDGER.reset()  # not the run's own server: dateTime is not compared with the clock
    if ok:
        qiwi_error_body(context, response, case(BILL, "GET", billId="b1"))
    else:
        with pytest.raises(AssertionError):
            qiwi_error_body(context, response, case(BILL, "GET", billId="b1"))


def test_stored_fields_are_kept_on_every_later_answer(ledger: Ledger) -> None:
    """comment, customer (with phone), customFields and expirationDateTime: a later answer that drops one fails."""
    extra: dict[str, Any] = {"comment": "c", "customer": {"phone": "79000000000"}, "customFields": {"themeCode": "t"}}
    assert ledger.check(create(**extra), 200, bill(**extra)) == []
    dropped: list[tuple[str, dict[str, str] | None]] = [("customFields", None), ("customer", {}), ("comment", None)]
    for name, value in dropped:
        answer = {k: v for k, v in bill(**extra).items() if not (k == name and value is None)}
        if value is not None:
            answer[name] = value
        problems = ledger.check(case(BILL, "GET", billId="b1"), 200, answer)
        assert any(name in p for p in problems), (name, problems)
    moved = bill(**extra, expirationDateTime="2030-01-01T03:00:00-03:00")
    problems = ledger.check(case(BILL, "GET", billId="b1"), 200, moved)
    assert any("expirationDateTime" in p for p in problems), problems


def test_a_new_bill_must_echo_what_was_asked(ledger: Ledger) -> None:
    extra: dict[str, Any] = {"comment": "c", "customer": {"phone": "79000000000", "email": "a@b.c"}}
    extra["customFields"] = {"k": "v"}
    problems = ledger.check(create(**extra), 200, bill(comment="c", expirationDateTime="2030-01-01T00:00:00-03:00"))
    joined = "\n".join(problems)
    assert "customer" in joined, problems
    assert "customFields" in joined, problems
    assert "expiring" in joined, problems


def test_a_new_bill_has_timestamps_of_now(ledger: Ledger) -> None:
    old = "2020-01-01T00:00:00.000+03:00"
    problems = ledger.check(
        create(), 200, {**bill(), "creationDateTime": old, "status": {"value": "WAITING", "changedDateTime": old}}
    )
    assert any("far from the client's clock" in p for p in problems), problems
    problems = Ledger().check(create(), 200, bill(changed=later(-5000)))
    assert any("before creationDateTime" in p for p in problems), problems


def test_changed_datetime_moves_with_the_status_and_only_then(ledger: Ledger) -> None:
    ledger.check(create(), 200, bill())
    problems = ledger.check(case(BILL, "GET", billId="b1"), 200, bill(changed=later(5)))
    assert any("kept status WAITING" in p for p in problems), problems
    stale = Ledger()
    stale.reset(fresh=True)
    stale.check(create(), 200, bill())
    stale.bills["b1"].seen_at -= 1.0  # the reject left a second after the create answer
    problems = stale.check(case(BILL + "/reject", "POST", billId="b1"), 200, bill(status="REJECTED"))
    assert any("changedDateTime stayed" in p for p in problems), problems


def test_an_identical_refund_retry_is_not_a_conflict(ledger: Ledger) -> None:
    ledger.check(create(), 200, bill())
    ledger.observe_payment(bill(status="PAID", changed=later(50)))
    ledger.check(refund_case("r1", "4.00"), 200, refund("r1", "4.00", "PARTIAL"))
    problems = ledger.check(refund_case("r1", "4.00"), 409, None)
    assert any("identical retry" in p for p in problems), problems
    assert ledger.check(refund_case("r1", "5.00"), 409, None) == []  # another body: a conflict is documented


def test_refusals_carry_the_code_of_the_bill_state(ledger: Ledger) -> None:
    ledger.check(create(), 200, bill())
    wrong = {"errorCode": "refund.incorrect.amount"}
    assert any("not validation.error" in p for p in ledger.check(refund_case("r1", "1.00"), 400, wrong))
    problems = ledger.check(case(BILL, "GET", billId="b1"), 404, {"errorCode": "api.invoice.not.found"})
    assert any("answered 404" in p for p in problems), problems
    ledger.observe_payment(bill(status="PAID", changed=later(50)))
    problems = ledger.check(refund_case("r2", "11.00"), 400, {"errorCode": "validation.error"})
    assert any("not refund.incorrect.amount" in p for p in problems), problems


def test_a_waiting_bill_past_its_expiry_fails(ledger: Ledger) -> None:
    past = (NOW - dt.timedelta(hours=1)).isoformat()
    problems = ledger.check(case(BILL, "GET", billId="b1"), 200, bill(expirationDateTime=past))
    assert any("after its expirationDateTime" in p for p in problems), problems


@pytest.mark.parametrize(
    ("path", "method", "body", "status", "codes"),
    [
        (BILL, "GET", None, 404, {"api.invoice.not.found"}),
        (REFUND, "GET", None, 404, {"api.invoice.not.found", "api.refund.not.found"}),
        (BILL, "GET", None, 401, {"auth.unauthorized"}),
        (BILL, "PUT", None, 405, {"http.method.not.supported"}),
        (BILL, "PUT", None, 415, {"http.media.type.not.supported"}),
        (BILL, "PUT", None, 409, {"api.invoice.already.exists"}),
        (REFUND, "PUT", None, 409, {"api.refund.already.exists"}),
        # 400 by the kind of case: unreadable / wrong types, invalid values, a refund amount that is not positive.
        (BILL, "PUT", [], 400, {"http.message.conversion.failed"}),
        (
            BILL,
            "PUT",
            {"amount": {"currency": "RUB", "value": True}, "expirationDateTime": "x"},
            400,
            {"http.message.conversion.failed", "validation.error"},
        ),
        (
            BILL,
            "PUT",
            {"amount": {"currency": "RUB", "value": True}, "expirationDateTime": "2030-01-01T00:00:00Z"},
            400,
            {"http.message.conversion.failed"},
        ),
        (
            BILL,
            "PUT",
            {
                "amount": {"currency": "RUB", "value": "1.00"},
                "expirationDateTime": "2030-01-01T00:00:00Z",
                "comment": "x" * 256,
            },
            400,
            {"validation.error"},
        ),
        (
            BILL,
            "PUT",
            {"amount": {"currency": "RUB", "value": "1.00"}, "expirationDateTime": "2001-01-01T00:00:00Z"},
            400,
            {"validation.error"},
        ),
        (REFUND, "PUT", {"amount": {"currency": "RUB", "value": "-1"}}, 400, {"refund.incorrect.amount"}),
        (REFUND, "PUT", {"amount": {"currency": "rub", "value": "1.00"}}, 400, {"validation.error"}),
        (
            REFUND,
            "PUT",
            {"amount": {"currency": "RUB", "value": "1.00"}},
            400,
            {"validation.error", "refund.incorrect.amount"},
        ),
        (BILL + "/reject", "POST", None, 400, {"validation.error"}),
    ],
)
def test_expected_error_codes(path: str, method: str, body: Any, status: int, codes: set[str]) -> None:
    """The documented errorCode per (operation, status, kind of case): the spec's examples, DESIGN.md's table."""
    parameters = {"billId": "b1", "refundId": "r1"} if "refundId" in path else {"billId": "b1"}
    made = case(path, method, body, **parameters) if body is not None else case(path, method, **parameters)
    if status == 405:
        made = case(path, "GET", billId="b1")
        made.method = "DELETE"
    assert expected_error_codes(made, status) == frozenset(codes)


def test_an_invalid_path_is_a_validation_error() -> None:
    assert expected_error_codes(case(BILL, "GET", billId="x" * 201), 400) == frozenset({"validation.error"})


def test_error_problems() -> None:
    body = (
        b'{"serviceName":"invoicing-api","errorCode":"validation.error","description":"x","userMessage":"x",'
        b'"dateTime":"2021-01-18T14:34:40.865+03:00","traceId":"b3"}'
    )
    assert any("without a cause" in p for p in qiwi_error_problems(400, body, None, fresh=False))
    wrong = qiwi_error_problems(400, body, frozenset({"http.message.conversion.failed"}), fresh=False)
    assert any("expected http.message.conversion.failed" in p for p in wrong)
    assert any("far from the client's clock" in p for p in qiwi_error_problems(401, body, None, fresh=True))


# -- deviations a QIWI-compatible server could have, each a thin layer over the correct mock (issue 15, gap 7) --

Rewrite = Callable[[dict[str, Any], bytes, int, bytes], tuple[int, bytes]]


def _deviating(app: Any, respond: Rewrite, *, request: Callable[[dict[str, Any], bytes], bytes] | None = None) -> Any:
    """The mock with its answers (and optionally requests) rewritten: a small faulty proxy, in process."""

    async def wrapped(scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await app(scope, receive, send)
            return
        body, more = b"", True
        while more:
            message = await receive()
            body += message.get("body", b"")
            more = message.get("more_body", False)
        if request is not None:
            body = request(scope, body)
        delivered = False

        async def replay() -> dict[str, Any]:
            nonlocal delivered
            if delivered:
                return {"type": "http.disconnect"}
            delivered = True
            return {"type": "http.request", "body": body, "more_body": False}

        start: dict[str, Any] = {}
        chunks: list[bytes] = []

        async def capture(message: dict[str, Any]) -> None:
            if message["type"] == "http.response.start":
                start.update(message)
            else:
                chunks.append(message.get("body", b""))

        await app(scope, replay, capture)
        status, content = respond(scope, body, start["status"], b"".join(chunks))
        headers = [(k, v) for k, v in start.get("headers", []) if k.lower() != b"content-length"]
        headers.append((b"content-length", str(len(content)).encode()))
        await send({"type": "http.response.start", "status": status, "headers": headers})
        await send({"type": "http.response.body", "body": content})

    return wrapped


def _json_rewrite(when: Callable[[dict[str, Any], int], bool], change: Callable[[dict[str, Any]], None]) -> Rewrite:
    def respond(scope: dict[str, Any], _body: bytes, status: int, content: bytes) -> tuple[int, bytes]:
        if not when(scope, status):
            return status, content
        try:
            data = json.loads(content)
        except ValueError:
            return status, content
        if isinstance(data, dict):
            change(data)
        return status, json.dumps(data).encode()

    return respond


def _is(method: str, suffix: str = "") -> Callable[[dict[str, Any], int], bool]:
    return lambda scope, status: (
        scope["method"] == method
        and status == 200
        and scope["path"].startswith("/partner/")
        and scope["path"].endswith(suffix)
    )


def _stale_changed(data: dict[str, Any]) -> None:
    data["status"]["changedDateTime"] = data["creationDateTime"]


def _flip_offset(data: dict[str, Any]) -> None:
    text = data["expirationDateTime"]
    if text[-6] in "+-" and text[-5:] != "00:00":
        data["expirationDateTime"] = text[:-6] + ("-" if text[-6] == "+" else "+") + text[-5:]


def _refund_conflicts() -> Rewrite:
    seen: set[tuple[str, bytes]] = set()

    def respond(scope: dict[str, Any], body: bytes, status: int, content: bytes) -> tuple[int, bytes]:
        key = (scope["path"], body)
        if scope["method"] == "PUT" and "/refunds/" in scope["path"] and status == 200:
            if key in seen:
                error = {
                    "serviceName": "invoicing-api",
                    "errorCode": "api.refund.already.exists",
                    "description": "x",
                    "userMessage": "x",
                    "dateTime": CREATED,
                    "traceId": "t",
                }
                return 409, json.dumps(error).encode()
            seen.add(key)
        return status, content

    return respond


def _second_key_sees_first(scope: dict[str, Any], body: bytes) -> bytes:
    scope["headers"] = [
        (k, b"Bearer " + MOCK_SECRET_KEY.encode() if k == b"authorization" and v.endswith(b"-key-2") else v)
        for k, v in scope["headers"]
    ]
    return body


def _accept_any_currency(scope: dict[str, Any], body: bytes) -> bytes:
    return body.replace(b'"XXX"', b'"RUB"') if scope["method"] == "PUT" else body


def _drop_cause(data: dict[str, Any]) -> None:
    data.pop("cause", None)


def _conversion_as_validation(data: dict[str, Any]) -> None:
    if data.get("errorCode") == "http.message.conversion.failed":
        data["errorCode"] = "validation.error"
        data["cause"] = {"body": ["unreadable"]}


def _never_expired(data: dict[str, Any]) -> None:
    if (data.get("status") or {}).get("value") == "EXPIRED":
        data["status"]["value"] = "WAITING"


_ANY_ERROR = lambda scope, status: status >= 400  # noqa: E731
BILL_OPS = ("createBill", "getBill", "rejectBill")
DEVIATIONS: dict[str, tuple[Rewrite, Any, tuple[str, ...], tuple[str, ...], str]] = {
    # name: (answer rewrite, request rewrite, operations, phases, the check(s) that may report it, `|` between)
    "changedDateTime not updated on reject": (
        _json_rewrite(_is("POST", "/reject"), _stale_changed),
        None,
        BILL_OPS,
        ("stateful",),
        "qiwi_bill_lifecycle",
    ),
    "customFields dropped from reads": (
        _json_rewrite(_is("GET"), lambda data: data.pop("customFields", None)),
        None,
        BILL_OPS,
        ("examples", "stateful"),
        "qiwi_bill_lifecycle",
    ),
    "expiry offset with the wrong sign": (
        _json_rewrite(_is("PUT"), _flip_offset),
        None,
        ("createBill",),
        ("examples", "fuzzing"),
        "qiwi_bill_lifecycle",
    ),
    "another merchant's bill readable": (
        _json_rewrite(lambda s, c: False, _drop_cause),
        _second_key_sees_first,
        ("createBill", "getBill"),
        ("examples",),
        "qiwi_merchant_isolation",
    ),
    "unaccepted currency accepted": (
        _json_rewrite(lambda s, c: False, _drop_cause),
        _accept_any_currency,
        ("createBill",),
        ("examples",),
        "qiwi_business_rules",
    ),
    "validation.error without cause": (
        _json_rewrite(_ANY_ERROR, _drop_cause),
        None,
        ("createBill",),
        ("examples", "fuzzing"),
        "qiwi_error_body|qiwi_business_rules",
    ),
    "conversion failures labelled validation.error": (
        _json_rewrite(_ANY_ERROR, _conversion_as_validation),
        None,
        ("createBill",),
        ("examples", "fuzzing"),
        "qiwi_error_body|qiwi_business_rules",
    ),
    "bills never expire on read": (
        _json_rewrite(_is("GET"), _never_expired),
        None,
        BILL_OPS,
        ("examples", "coverage", "fuzzing", "stateful"),
        "qiwi_business_rules|qiwi_idempotent_retry|qiwi_merchant_isolation",  # the deferred read runs in any probe
    ),
    "identical refund retry answered 409": (
        _refund_conflicts(),
        None,
        ("createBill", "createRefund"),
        ("examples", "stateful"),
        "qiwi_idempotent_retry",
    ),
}


@pytest.mark.parametrize("name", sorted(DEVIATIONS))
def test_a_deviating_server_is_caught(name: str, budget: Budget) -> None:
    """Each deviation, put in front of a correct mock, is reported by the check that owns the rule."""
    respond, request, operations, phases, check = DEVIATIONS[name]
    correct = mock_asgi_target()
    target = dataclasses.replace(correct, app=_deviating(correct.app, respond, request=request))
    report = run_conformance(
        target, max_examples=5, seed=budget.seed, phases=phases, operation_ids=operations, no_shrink=True
    )
    assert set(check.split("|")) & report.failed_checks(), (name, sorted(report.failed_checks()), report.errors)


def test_a_selection_that_splits_a_path_is_told_apart() -> None:
    from contract_tests._engine import splits_a_path

    assert splits_a_path(["createBill"])  # getBill shares its path: the path-wide checks cannot judge it
    assert splits_a_path(["getRefund", "getBill"])
    assert not splits_a_path(None)
    assert not splits_a_path(["createBill", "getBill"])
    assert not splits_a_path(["rejectBill"])  # alone on its path
