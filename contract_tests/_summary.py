"""The short human summary printed at the end of a contract run (a pytest plugin, loaded by conftest)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from contract_tests._engine import MAX_REPRODUCE, ConformanceReport
from contract_tests._profiles import active_budget

__all__ = ["RECORDER", "Recorder", "pytest_terminal_summary"]

MAX_FAILURES_SHOWN = 5


@dataclass(slots=True)
class Recorder:
    """What the session's tests found, for the summary."""

    reports: list[ConformanceReport] = field(default_factory=list)
    caught: dict[str, list[str]] = field(default_factory=dict)  # broken behaviour -> checks that caught it

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
        lines.append(f"breakage self-test (local mocks): {caught}/{len(RECORDER.caught)} broken behaviours caught")
        lines.extend(
            f"  {name}: {', '.join(sorted(checks)) if checks else 'NOT CAUGHT'}"
            for name, checks in sorted(RECORDER.caught.items())
        )
    passed, failed = len(stats.get("passed", [])), len(stats.get("failed", [])) + len(stats.get("error", []))
    skipped = stats.get("skipped", [])
    lines.append(f"tests: {passed} passed, {failed} failed, {len(skipped)} skipped")
    reasons = sorted({_skip_reason(report) for report in skipped})
    lines.extend(f"  skipped: {reason}" for reason in reasons)
    failures = [failure for report in reports for failure in report.failures]
    if failures:
        lines.append(f"first failures ({min(len(failures), MAX_FAILURES_SHOWN)} of {len(failures)}):")
        for failure in failures[:MAX_FAILURES_SHOWN]:
            lines.extend("  " + line for line in failure.render(limit=MAX_REPRODUCE).splitlines())
    for report in (stats.get("failed", []) + stats.get("error", []))[:MAX_FAILURES_SHOWN]:
        if not any(report.nodeid.endswith(f"[{r.target}]") for r in reports if r.failures):
            lines.append(f"  FAILED {report.nodeid}: {_reason(report)}")
    lines.append("RESULT: " + ("FAIL" if failed else "PASS"))
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
