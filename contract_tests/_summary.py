"""The short human summary printed at the end of a contract run (a pytest plugin, loaded by conftest).

It keeps the tests against the server apart from the suite's self-tests on local mocks (a dead server must never
read as "passed" because the self-tests passed), and lists each failed test in one line: the full failure, with
its ``curl`` reproduction, is printed once, by pytest, in that test's own report (and in the JUnit file).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from contract_tests._engine import ConformanceReport
from contract_tests._profiles import active_budget

__all__ = ["RECORDER", "Recorder", "pytest_terminal_summary"]

MAX_FAILURES_SHOWN = 20


@dataclass(slots=True)
class Recorder:
    """What the session's tests found, for the summary."""

    reports: list[ConformanceReport] = field(default_factory=list)
    caught: dict[str, list[str]] = field(default_factory=dict)  # broken behaviour -> checks that caught it
    target_tests: set[str] = field(default_factory=set)  # node ids of the tests that take the `target` fixture
    self_tests_left_out: int = 0  # self-tests deselected because the target is another server
    cli_tests_left_out: int = 0  # tests of the command line itself, deselected by qiwi-contract

    def add(self, report: ConformanceReport) -> None:
        self.reports.append(report)


RECORDER = Recorder()


def _skip_reason(report: Any) -> str:
    longrepr = report.longrepr
    if isinstance(longrepr, tuple) and len(longrepr) == 3:
        return str(longrepr[2]).removeprefix("Skipped: ")
    return str(longrepr)


def _reason(report: Any) -> str:
    """The gist of a failed test: pytest's ``E ...`` line, or the failure's first line."""
    text = str(getattr(report, "longreprtext", "") or "").strip()
    errors = [line[1:].strip() for line in text.splitlines() if line.startswith("E ")]
    reason = errors[0] if errors else (text.splitlines() or [""])[0]
    return reason[:200]


def _is_contract(report: Any) -> bool:
    return str(getattr(report, "nodeid", "")).startswith("contract_tests/")


def summary_lines(stats: dict[str, list[Any]]) -> list[str]:
    """The summary, from pytest's terminal statistics and :data:`RECORDER`."""
    budget = active_budget()
    lines = [f"profile {budget.name} (QIWI_HYPOTHESIS_PROFILE), engine seed {budget.seed} (QIWI_CONTRACT_SEED)"]
    reports = RECORDER.reports
    if reports:
        operations = set().union(*(r.operations_tested for r in reports))
        declared = set().union(*(r.links_declared for r in reports))
        covered = set().union(*(r.links_covered for r in reports)) & declared
        lines.append(
            f"conformance: {len(reports)} run(s), {len(operations)} operations tested, "
            f"{sum(r.cases for r in reports)} cases generated, links covered {len(covered)}/{len(declared)}, "
            f"checks {sum(r.checks_passed for r in reports)} passed / {sum(r.checks_failed for r in reports)} failed"
        )
        for report in reports:
            lines.extend("  " + line for line in report.summary_lines())
    if RECORDER.caught:
        caught = sum(1 for checks in RECORDER.caught.values() if checks)
        lines.append(
            f"breakage self-test (on local embedded mocks, not on the target): {caught}/{len(RECORDER.caught)} "
            "broken behaviours caught"
        )
        lines.extend(
            f"  {name}: {', '.join(sorted(checks)) if checks else 'NOT CAUGHT'}"
            for name, checks in sorted(RECORDER.caught.items())
        )
    elif RECORDER.self_tests_left_out:
        lines.append(
            f"self-tests: {RECORDER.self_tests_left_out} not run (the breakage self-test and the checks' unit tests "
            "run on local mocks, never on the target, so they prove nothing about it; --self-test runs them)"
        )
    if RECORDER.cli_tests_left_out:
        lines.append(f"command-line tests: {RECORDER.cli_tests_left_out} not run here (make test runs them)")
    lines.extend(_counts(stats))
    failed = stats.get("failed", []) + stats.get("error", [])
    if failed:
        lines.append(f"failed ({min(len(failed), MAX_FAILURES_SHOWN)} of {len(failed)}; details above, once each):")
        lines.extend(f"  {report.nodeid}: {_reason(report)}" for report in failed[:MAX_FAILURES_SHOWN])
    lines.append("RESULT: " + ("FAIL" if failed else "PASS"))
    return lines


def _counts(stats: dict[str, list[Any]]) -> list[str]:
    """Passed / failed / skipped, for the tests against the server and for the self-tests apart."""
    lines = []
    for label, against in (("tests against the server", True), ("self-tests on local mocks", False)):
        part = {
            key: [r for r in reports if (r.nodeid in RECORDER.target_tests) == against]
            for key, reports in stats.items()
        }
        total = sum(len(reports) for reports in part.values())
        if not total:
            continue
        failed = len(part.get("failed", [])) + len(part.get("error", []))
        skipped = part.get("skipped", [])
        lines.append(f"{label}: {len(part.get('passed', []))} passed, {failed} failed, {len(skipped)} skipped")
        lines.extend(f"  skipped: {reason}" for reason in sorted({_skip_reason(report) for report in skipped}))
    return lines


def pytest_terminal_summary(terminalreporter: Any, exitstatus: int, config: Any) -> None:
    """Print the summary after pytest's own (only when contract tests ran)."""
    stats = {
        key: [report for report in terminalreporter.stats.get(key, []) if _is_contract(report)]
        for key in ("passed", "failed", "skipped", "error")
    }
    if not any(stats.values()):
        return
    terminalreporter.section("QIWI contract summary")
    for line in summary_lines(stats):
        terminalreporter.write_line(line)
