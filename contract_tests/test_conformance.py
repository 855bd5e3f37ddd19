"""Conformance: schemathesis' engine over every operation, every phase and every applicable check.

The engine runs once per target (the ``conformance`` fixture), over the operations and phases whose tests are
selected, so ``-k createBill`` runs createBill alone and ``-k "not stateful"`` skips the stateful phase. Its
findings are then reported per operation and phase, one test each (``test_operation_conforms[mock-asgi-createBill-
examples]``): a CI page, and the JUnit report, show which operation broke in which phase. A failure is reported
by the one test of the operation and phase it happened in, with its reproduction; ``test_run_covers_the_contract``
fails a run that tested too little (an operation that never answered, a declared link never followed).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from contextlib import nullcontext

import pytest

from contract_tests._engine import ALL_PHASES, ConformanceReport, operation_ids, run_conformance
from contract_tests._profiles import Budget
from contract_tests._summary import Recorder
from contract_tests._target import Target
from contract_tests._webhooks import NotificationInbox, notification_problems

OPERATIONS = tuple(operation_ids())
SAFE_OPERATIONS = ("createBill", "getBill", "rejectBill", "getRefund")
# Phases in which every operation must get at least one answered case (the stateful phase follows links, and
# which operations a scenario reaches is the engine's draw).
PHASES_WITH_CASES = ("examples", "coverage", "fuzzing")
PER_OPERATION_TEST = "test_operation_conforms"
#: Seconds the webhook test waits for the last notifications (the mock delivers within milliseconds).
NOTIFICATION_WAIT = 10.0


def _selection(request: pytest.FixtureRequest, target: Target) -> tuple[list[str], tuple[str, ...]]:
    """The operations and phases whose per-operation tests are selected for ``target`` (all when none are)."""
    params = [
        item.callspec.params
        for item in request.session.items
        if isinstance(item, pytest.Function) and item.originalname == PER_OPERATION_TEST
    ]
    chosen = [(p["operation"], p["phase"]) for p in params if p.get("target") == target.name]
    operations = [op for op in OPERATIONS if any(op == chosen_op for chosen_op, _ in chosen)] or list(OPERATIONS)
    phases = tuple(ph for ph in ALL_PHASES if any(ph == chosen_ph for _, chosen_ph in chosen)) or ALL_PHASES
    if not target.destructive:
        operations = [op for op in operations if op in SAFE_OPERATIONS]
    return operations, phases


def _progress(config: pytest.Config) -> Callable[[str], None] | None:
    """Print engine progress live (``--contract-progress``, which ``qiwi-contract`` passes), past pytest's capture."""
    reporter = config.pluginmanager.get_plugin("terminalreporter")
    if not config.getoption("contract_progress", False) or reporter is None:
        return None
    capture = config.pluginmanager.get_plugin("capturemanager")

    def say(line: str) -> None:
        with capture.global_and_fixture_disabled() if capture is not None else nullcontext():
            reporter.write_line(line)

    return say


@pytest.fixture(scope="session")
def conformance(
    target: Target, budget: Budget, recorder: Recorder, request: pytest.FixtureRequest
) -> ConformanceReport:
    """One engine run against ``target`` over the selected operations and phases.

    Against a non-mock target without ``QIWI_CONTRACT_DESTRUCTIVE=1`` the run is safe: positive data only (a lax
    server could take a malformed create for a real bill), no refunds, and every bill is 1.00 RUB under this
    session's id prefix (see contract_tests/hooks.py).
    """
    operations, phases = _selection(request, target)
    report = run_conformance(
        target,
        max_examples=budget.engine_examples,
        seed=budget.seed,
        phases=phases,
        operation_ids=None if list(operations) == list(OPERATIONS) else operations,
        generation_mode="all" if target.destructive else "positive",
        max_steps=budget.engine_steps,
        progress=_progress(request.config),
    )
    report.mode = target.mode
    recorder.add(report)
    return report


@pytest.mark.parametrize("phase", ALL_PHASES)
@pytest.mark.parametrize("operation", OPERATIONS)
def test_operation_conforms(target: Target, operation: str, phase: str, request: pytest.FixtureRequest) -> None:
    """Every check passed on every case the engine sent to ``operation`` in ``phase``."""
    if not target.destructive and operation not in SAFE_OPERATIONS:
        pytest.skip(f"{operation} is not called in a safe run of {target.name} (QIWI_CONTRACT_DESTRUCTIVE=1 allows it)")
    report: ConformanceReport = request.getfixturevalue("conformance")
    problems = [failure.render() for failure in report.failures_in(operation, phase)]
    problems += report.errors_in(operation, phase)
    if phase in PHASES_WITH_CASES and not report.slices[operation, phase] and not problems:
        problems.append(f"{operation} got no answered case in the {phase} phase: nothing was tested")
    if problems:
        checks = sorted({failure.check for failure in report.failures_in(operation, phase)}) or ["engine error"]
        gist = f"{operation}, {phase} phase, on {target.name}: {len(problems)} problem(s): {', '.join(checks)}"
        pytest.fail(gist + "\n\n" + "\n\n".join(problems), pytrace=False)


def test_run_covers_the_contract(target: Target, conformance: ConformanceReport) -> None:
    """The run reached every operation it ran, and, with the stateful phase, followed every declared link.

    Statuses that prove the workflows ran end to end: bills were created, read and rejected, and (on the mock,
    which can pay) refunds were made and read back. Failures of one operation and phase are reported by
    ``test_operation_conforms`` and not repeated here.
    """
    must_succeed = ["createBill", "getBill", "rejectBill"]
    if target.mock_controls:
        must_succeed += ["createRefund", "getRefund"]
    # Only a run of every phase over every operation it may call can prove the workflows and the links.
    expected = OPERATIONS if target.destructive else SAFE_OPERATIONS
    full = tuple(conformance.phases) == ALL_PHASES and conformance.operations_total == len(expected)
    problems = conformance.problems(require_success=must_succeed if full else (), require_links=full, located=False)
    if problems:
        pytest.fail("\n\n".join(problems), pytrace=False)


def test_notifications_conform(
    target: Target, conformance: ConformanceReport, notification_inbox: NotificationInbox | None
) -> None:
    """The webhook side of the document: every bill the run paid was notified, and every notification is signed,
    honours ``BillNotification`` and says version ``"1"`` (contract_tests/_webhooks.py)."""
    if notification_inbox is None:
        pytest.skip(f"{target.name}: notifications need a server that can be told where to send them (the mock)")
    if not conformance.paid:
        pytest.skip(f"the run on {target.name} paid no bill, so none was notified")
    deadline = time.monotonic() + NOTIFICATION_WAIT
    while True:
        problems = notification_problems(
            notification_inbox.snapshot(), secret_key=target.secret_key, paid=conformance.paid
        )
        if not problems or time.monotonic() > deadline:
            break
        time.sleep(0.1)
    if problems:
        pytest.fail(f"{len(problems)} problem(s) with notifications:\n" + "\n".join(problems[:20]), pytrace=False)
