"""Conformance: schemathesis' engine over every operation, every phase and every applicable check."""

from __future__ import annotations

import pytest

from contract_tests._engine import ALL_PHASES, run_conformance
from contract_tests._profiles import Budget
from contract_tests._summary import Recorder
from contract_tests._target import Target

SAFE_OPERATIONS = ("createBill", "getBill", "rejectBill", "getRefund")


def test_server_honours_the_contract(target: Target, budget: Budget, recorder: Recorder) -> None:
    """All phases, all checks; the run must reach every operation and follow every declared link.

    Against a non-mock target without ``QIWI_CONTRACT_DESTRUCTIVE=1`` the run is safe: positive data
    only (a lax server could take a malformed create for a real bill), no refunds, and every bill is
    1.00 RUB under this session's id prefix (see contract_tests/hooks.py).
    """
    report = run_conformance(
        target,
        max_examples=budget.engine_examples,
        seed=budget.seed,
        phases=ALL_PHASES,
        operation_ids=None if target.destructive else SAFE_OPERATIONS,
        generation_mode="all" if target.destructive else "positive",
        max_steps=budget.engine_steps,
    )
    report.mode = target.mode
    recorder.add(report)
    # Statuses that prove the workflows ran end to end: bills were created, read and rejected, and
    # (on the mock, which can pay) refunds were made and read back.
    must_succeed = ["createBill", "getBill", "rejectBill"]
    if target.mock_controls:
        must_succeed += ["createRefund", "getRefund"]
    problems = report.problems(require_success=must_succeed)
    if problems:
        pytest.fail("\n\n".join(problems), pytrace=False)
