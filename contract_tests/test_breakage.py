"""Proof that the suite catches real breakage: the mock's deliberately broken behaviours, one at a time.

Each broken behaviour (``qiwi_bill_mock.settings.BROKEN_BEHAVIOURS``, off by default) is switched on
in a fresh in-process mock, the same engine run as the conformance test is pointed at it, and the
test asserts that the check that should notice it reports a failure. A suite that cannot fail is
worthless; this file is the evidence that this one can.
"""

from __future__ import annotations

import pytest

from contract_tests._engine import run_conformance
from contract_tests._profiles import Budget
from contract_tests._summary import Recorder
from contract_tests._target import mock_asgi_target
from qiwi_bill_mock.settings import BROKEN_BEHAVIOURS

# behaviour -> (operations to run, phases, checks that must report it). The operations and phases
# are the smallest set that reaches the broken code, to keep `make test` fast; every check runs.
EXPECTED: dict[str, tuple[tuple[str, ...], tuple[str, ...], frozenset[str]]] = {
    "refund_500": (("createBill", "createRefund"), ("examples", "fuzzing"), frozenset({"not_a_server_error"})),
    "amount_as_number": (
        ("createBill", "getBill"),
        ("examples", "fuzzing"),
        frozenset({"response_schema_conformance"}),
    ),
    "no_trace_id": (
        ("getBill",),
        ("examples", "fuzzing"),
        frozenset({"response_schema_conformance", "qiwi_error_body"}),
    ),
    "skip_auth_on_get": (("createBill", "getBill"), ("examples", "fuzzing"), frozenset({"ignored_auth"})),
    "wrong_status_code": (("createBill",), ("examples", "fuzzing"), frozenset({"status_code_conformance"})),
    "datetime_without_offset": (("createBill",), ("examples", "fuzzing"), frozenset({"response_schema_conformance"})),
}


def test_every_broken_behaviour_has_an_expectation() -> None:
    """A new broken behaviour in the mock must get a row here (else it would go unproven)."""
    assert set(EXPECTED) == set(BROKEN_BEHAVIOURS)


@pytest.mark.parametrize("behaviour", sorted(EXPECTED))
def test_suite_reports_the_broken_behaviour(behaviour: str, budget: Budget, recorder: Recorder) -> None:
    """The engine run against a mock with ``behaviour`` switched on reports it through the expected check."""
    operations, phases, expected = EXPECTED[behaviour]
    target = mock_asgi_target(broken=(behaviour,))
    report = run_conformance(
        target,
        max_examples=min(budget.engine_examples, 10),
        seed=budget.seed,
        phases=phases,
        operation_ids=operations,
        no_shrink=True,  # the failure itself is the evidence; a minimal example is not needed
    )
    failed = report.failed_checks()
    recorder.caught[behaviour] = sorted(failed & expected)
    assert expected <= failed, f"{behaviour} went unnoticed by {sorted(expected - failed)}; reported: {sorted(failed)}"
