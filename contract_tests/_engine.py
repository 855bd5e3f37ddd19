"""Run schemathesis' engine (the same one ``schemathesis run`` drives) and sum up what it did.

The suite does not trust a green run on its own: :class:`ConformanceReport` records how many
operations answered, how many cases were sent, which OpenAPI links the stateful phase followed, and
every check's pass/fail count, so a test can fail a run that tested nothing (docs/sources.md, Toolchain pitfalls: with
the wrong stateful roots a run is green while calling one operation). Cases, failures and errors are also kept per
operation and phase, so the suite reports (and JUnit shows) which operation broke in which phase; an optional
``progress`` callback hears about each phase and operation as the engine finishes it.

The spec is the one ``qiwi_bill_mock`` validates against (``qiwi_bill_mock.validation.find_spec``: the checkout's
``openapi/`` or the copy shipped in the package), and ``schemathesis.toml`` is read from this package (a symlink to
the repository's file in a checkout, a copy in the wheel), so an installed suite needs no checkout.
"""

from __future__ import annotations

import tomllib
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field, replace
from decimal import Decimal
from itertools import count
from pathlib import Path
from typing import Any

import schemathesis
import yaml
from schemathesis.config import SchemathesisConfig
from schemathesis.core.result import Ok
from schemathesis.engine import Status, events, from_schema

from contract_tests import checks, hooks
from contract_tests._target import Target
from qiwi_bill_mock.validation import find_spec

__all__ = [
    "ALL_CHECKS",
    "ALL_PHASES",
    "PACKAGE_DIR",
    "REPO_ROOT",
    "SPEC_PATH",
    "TOML_PATH",
    "ConformanceReport",
    "FailureRecord",
    "declared_links",
    "operation_ids",
    "run_conformance",
]

PACKAGE_DIR = Path(__file__).resolve().parent
REPO_ROOT = PACKAGE_DIR.parent  # the checkout's root; site-packages when installed (use SPEC_PATH, TOML_PATH)
SPEC_PATH = find_spec()
TOML_PATH = PACKAGE_DIR / "schemathesis.toml"
MAX_REPRODUCE = 600
_RUNS = count(1)
ALL_PHASES = ("examples", "coverage", "fuzzing", "stateful")
# Every built-in check the issue lists, plus the suite's own (contract_tests/checks.py).
ALL_CHECKS = (
    "not_a_server_error",
    "status_code_conformance",
    "content_type_conformance",
    "response_headers_conformance",
    "response_schema_conformance",
    "negative_data_rejection",
    "positive_data_acceptance",
    "missing_required_header",
    "unsupported_method",
    "use_after_free",
    "ensure_resource_availability",
    "ignored_auth",
    # Not in the list but built in and applicable: a 405 must list the allowed methods, and a
    # second identity must not read the first one's objects (vacuous with one merchant, kept for runs
    # that configure more).
    "allow_header_conformance",
    "object_level_authorization",
    "qiwi_error_body",
    "qiwi_bill_lifecycle",
    "qiwi_business_rules",
    "qiwi_idempotent_retry",
    "qiwi_merchant_isolation",
)


@dataclass(frozen=True, slots=True)
class FailureRecord:
    """One distinct failure, with what it takes to reproduce it, and where it happened (``""`` when unknown)."""

    check: str
    code: str
    title: str
    message: str
    operation: str
    reproduce: str
    operation_id: str = ""
    phase: str = ""

    def render(self, *, limit: int | None = None) -> str:
        """The failure with its reproduction; ``limit`` cuts a long ``curl`` command (for the summary)."""
        first = self.message.strip().splitlines()[0] if self.message.strip() else ""
        text = f"[{self.code} {self.check}] {self.operation}: {self.title}"
        if first:
            text += f"\n    {first}"
        reproduce = self.reproduce
        if limit is not None and len(reproduce) > limit:
            reproduce = reproduce[:limit] + " ... (cut here; the test's failure message has it in full)"
        return f"{text}\n    Reproduce with:\n      {reproduce}"


@dataclass(slots=True)
class ConformanceReport:
    """What one engine run did."""

    target: str
    phases: tuple[str, ...]
    operations_total: int = 0
    operations_tested: set[str] = field(default_factory=set)
    cases: int = 0
    links_declared: set[str] = field(default_factory=set)
    links_covered: set[str] = field(default_factory=set)
    checks: Counter[tuple[str, str]] = field(default_factory=Counter)
    responses: Counter[tuple[str, int]] = field(default_factory=Counter)
    slices: Counter[tuple[str, str]] = field(default_factory=Counter)  # (operationId, phase) -> cases answered
    failures: list[FailureRecord] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    located_errors: list[tuple[str, str, str]] = field(default_factory=list)  # (operationId, phase, error)
    stop_reason: str = ""
    seconds: float = 0.0
    mode: str = ""  # how the target was run (full / safe / destructive), for the summary
    paid: dict[str, tuple[Decimal, str]] = field(default_factory=dict)  # billId -> (amount, currency) of paid bills

    @property
    def links_missed(self) -> set[str]:
        return self.links_declared - self.links_covered

    @property
    def checks_passed(self) -> int:
        return sum(n for (_, status), n in self.checks.items() if status == "success")

    @property
    def checks_failed(self) -> int:
        return sum(n for (_, status), n in self.checks.items() if status == "failure")

    def checks_run(self) -> set[str]:
        return {name for name, _ in self.checks}

    def failed_checks(self) -> set[str]:
        return {f.check for f in self.failures}

    @property
    def ok(self) -> bool:
        return not self.failures and not self.errors

    def failures_in(self, operation_id: str, phase: str) -> list[FailureRecord]:
        """The failures the engine attributed to ``operation_id`` in ``phase``."""
        return [f for f in self.failures if f.operation_id == operation_id and f.phase == phase]

    def errors_in(self, operation_id: str, phase: str) -> list[str]:
        """The engine's errors (unreachable, unexpected exceptions) for ``operation_id`` in ``phase``."""
        return [text for op, ph, text in self.located_errors if op == operation_id and ph == phase]

    def unlocated_failures(self) -> list[FailureRecord]:
        """Failures that belong to no single operation and phase (the engine's after-run checks)."""
        return [f for f in self.failures if not (f.operation_id and f.phase)]

    def unlocated_errors(self) -> list[str]:
        """Errors that belong to no single operation and phase."""
        return [text for op, ph, text in self.located_errors if not (op and ph)]

    def successes(self, operation_id: str) -> int:
        """How many 2xx answers ``operation_id`` gave."""
        return sum(n for (op, status), n in self.responses.items() if op == operation_id and 200 <= status < 300)

    def problems(
        self,
        *,
        require_links: bool = True,
        require_success: Iterable[str] = (),
        require_operations: int | None = None,
        located: bool = True,
    ) -> list[str]:
        """Why this run does not prove conformance (an empty list when it does).

        ``located=False`` leaves out the failures and errors of a single operation and phase (the suite reports
        those in that operation's own test, and a failure is printed once).
        """
        if located:
            out = [failure.render() for failure in self.failures] + self.errors
        else:
            out = [failure.render() for failure in self.unlocated_failures()] + self.unlocated_errors()
        expected = self.operations_total if require_operations is None else require_operations
        if len(self.operations_tested) < expected:
            out.append(f"Only {len(self.operations_tested)} of {expected} operations got a response")
        out.extend(
            f"{operation_id} never succeeded (answers: {self.answers(operation_id)})"
            for operation_id in require_success
            if not self.successes(operation_id)
        )
        if require_links and "stateful" in self.phases and self.links_missed:
            out.append("OpenAPI links never followed: " + ", ".join(sorted(self.links_missed)))
        return out

    def answers(self, operation_id: str) -> str:
        """``"200x12, 400x3"``: the status codes ``operation_id`` answered with."""
        counts = sorted((status, n) for (op, status), n in self.responses.items() if op == operation_id)
        return ", ".join(f"{status}x{n}" for status, n in counts) or "none"

    def summary_lines(self) -> list[str]:
        lines = [f"{self.target}: {self.mode}"] if self.mode else []
        lines += [
            f"{self.target}: {len(self.operations_tested)}/{self.operations_total} operations, "
            f"{self.cases} cases, phases {','.join(self.phases)}, {self.seconds:.1f}s",
        ]
        if "stateful" in self.phases:
            lines.append(f"  links covered: {len(self.links_declared & self.links_covered)}/{len(self.links_declared)}")
            lines.extend(f"    missed: {link}" for link in sorted(self.links_missed))
        lines.append(f"  checks: {self.checks_passed} passed, {self.checks_failed} failed")
        return lines


def declared_links(spec: dict[str, Any] | None = None) -> set[str]:
    """The links the OpenAPI document declares, as ``"<operationId> -> <name> -> <operationId>"``."""
    if spec is None:
        spec = yaml.safe_load(SPEC_PATH.read_text(encoding="utf-8"))
    out = set()
    for item in spec["paths"].values():
        for method, operation in item.items():
            if method == "parameters":
                continue
            for response in operation.get("responses", {}).values():
                for name, link in (response.get("links") or {}).items():
                    out.add(f"{operation['operationId']} -> {name} -> {link['operationId']}")
    return out


def operation_ids(spec: dict[str, Any] | None = None) -> list[str]:
    """The document's operationIds, in the document's order."""
    if spec is None:
        spec = yaml.safe_load(SPEC_PATH.read_text(encoding="utf-8"))
    return [
        operation["operationId"]
        for item in spec["paths"].values()
        for method, operation in item.items()
        if method != "parameters"
    ]


def restricted_spec(operation_ids: Sequence[str] | None) -> dict[str, Any]:
    """The OpenAPI document with only ``operation_ids`` (all when ``None``), and only links between them.

    Removing operations from the document, rather than filtering the loaded schema, is what keeps a
    safe run from refunding: schemathesis 4.32 still follows a link into a filtered-out operation
    (measured: 43 createRefund calls with ``schema.include(operation_id=...)`` leaving it out).
    """
    spec: dict[str, Any] = yaml.safe_load(SPEC_PATH.read_text(encoding="utf-8"))
    if not operation_ids:
        return spec
    for path, item in list(spec["paths"].items()):
        for method in [m for m in item if m != "parameters"]:
            operation = item[method]
            if operation["operationId"] not in operation_ids:
                del item[method]
                continue
            for response in operation.get("responses", {}).values():
                links = response.get("links") or {}
                for name in [n for n, link in links.items() if link["operationId"] not in operation_ids]:
                    del links[name]
        if not [m for m in item if m != "parameters"]:
            del spec["paths"][path]
    return spec


#: Checks that judge a path by ALL its methods: with an operation of the same path left out of the document, they
#: would call its method "undocumented" (the outside review: `-k createBill` failed on a conforming mock).
PATH_WIDE_CHECKS = ("unsupported_method", "allow_header_conformance")


def splits_a_path(operation_ids: Sequence[str] | None) -> bool:
    """Whether a selection keeps some, but not all, of one path's operations."""
    if not operation_ids:
        return False
    spec: dict[str, Any] = yaml.safe_load(SPEC_PATH.read_text(encoding="utf-8"))
    for item in spec["paths"].values():
        kept = {item[m]["operationId"] in operation_ids for m in item if m != "parameters"}
        if kept == {True, False}:
            return True
    return False


def load_toml() -> dict[str, Any]:
    """The repository's ``schemathesis.toml`` as a dict (the single place checks and phases are tuned)."""
    with TOML_PATH.open("rb") as fd:
        return tomllib.load(fd)


def build_config(
    target: Target,
    *,
    max_examples: int,
    seed: int | None,
    phases: Sequence[str],
    checks_enabled: Iterable[str],
    generation_mode: str,
    max_steps: int | None = None,
    no_shrink: bool = False,
) -> SchemathesisConfig:
    """``schemathesis.toml`` with the target's URL and key, this run's budget, phases and checks."""
    data = load_toml()
    data.pop("reports", None)  # the engine writes no reports; the CLI does
    data.pop("hooks", None)  # imported by this module already
    data["auth"] = {"openapi": {"bearerAuth": {"bearer": target.secret_key}}}
    data["base-url"] = target.base_url
    if seed is not None:
        data["seed"] = seed
    generation = data.setdefault("generation", {})
    generation["max-examples"] = max_examples
    generation["mode"] = generation_mode
    if no_shrink:
        generation["no-shrink"] = True
    phase_data = data.setdefault("phases", {})
    for name in ALL_PHASES:
        phase_data.setdefault(name, {})["enabled"] = name in phases
    if max_steps is not None:
        phase_data["stateful"]["max-steps"] = max_steps
    wanted = set(checks_enabled)
    check_data = data.setdefault("checks", {})
    for name in ALL_CHECKS:
        check_data.setdefault(name, {})["enabled"] = name in wanted
    for operation in data.get("operations", []):
        # Per-operation overrides in the toml may only relax a check's options, never re-enable it.
        for name in list(operation.get("checks", {})):
            if name not in wanted:
                operation["checks"][name]["enabled"] = False
    return SchemathesisConfig.from_dict(data)


def run_conformance(
    target: Target,
    *,
    max_examples: int,
    seed: int | None = None,
    phases: Sequence[str] = ALL_PHASES,
    checks_enabled: Iterable[str] = ALL_CHECKS,
    operation_ids: Sequence[str] | None = None,
    generation_mode: str = "all",
    max_steps: int | None = None,
    no_shrink: bool = False,
    progress: Callable[[str], None] | None = None,
) -> ConformanceReport:
    """Run every selected phase and check against ``target`` and report what happened.

    ``progress``, when given, gets one line per phase and per operation as the engine finishes it.
    """
    if splits_a_path(operation_ids):
        checks_enabled = [name for name in checks_enabled if name not in PATH_WIDE_CHECKS]
        if progress is not None:
            progress(f"  {', '.join(PATH_WIDE_CHECKS)}: not run (the selection keeps only part of a path's methods)")
    config = build_config(
        target,
        max_examples=max_examples,
        seed=seed,
        phases=phases,
        checks_enabled=checks_enabled,
        generation_mode=generation_mode,
        max_steps=max_steps,
        no_shrink=no_shrink,
    )
    schema = schemathesis.openapi.from_dict(restricted_spec(operation_ids), config=config)
    if target.app is not None:
        schema.app = target.app
    report = ConformanceReport(target=target.name, phases=tuple(phases))
    operations = [result.ok() for result in schema.get_all_operations() if isinstance(result, Ok)]
    report.operations_total = len(operations)
    report.links_declared = {
        link
        for link in declared_links()
        if not operation_ids or all(part in operation_ids for part in (link.split(" -> ")[0], link.split(" -> ")[2]))
    }
    labels = {operation.label: operation.definition.raw["operationId"] for operation in operations}
    seen_failures: set[tuple[str, str, str]] = set()
    say = progress or (lambda line: None)
    # No /_mock/reset (a server that only works after one must not pass): the run's positive ids live under a
    # namespace of their own, so every bill the run meets there is its own.
    namespace = f"{target.id_prefix}r{next(_RUNS)}-"
    checks.LEDGER.reset(fresh=True, namespace=namespace)
    with target.hook_settings() as settings, hooks.configure(replace(settings, id_prefix=namespace)):
        for event in from_schema(schema).execute():
            if isinstance(event, events.ScenarioFinished) and event.status is not Status.SKIP:
                _collect_scenario(report, event, labels, seen_failures)
                if event.label and not event.is_final:
                    operation_id = labels.get(event.label, event.label)
                    cases = report.slices[operation_id, str(event.phase)]
                    say(f"  {event.phase!s:<9} {operation_id:<13} {cases:>4} cases  {event.status!s}")
            elif isinstance(event, events.PhaseStarted) and str(event.phase.name) in phases:
                say(f"{target.name}: {event.phase.name} phase")
            elif (
                isinstance(event, events.PhaseFinished) and str(event.phase.name) == "stateful" and "stateful" in phases
            ):
                cases = sum(n for (_, phase), n in report.slices.items() if phase == "stateful")
                covered = len(report.links_declared & report.links_covered)
                say(f"  stateful  {cases} cases, links followed {covered}/{len(report.links_declared)}")
            elif isinstance(event, events.NonFatalError):
                text = f"{event.info.title}: {event.info.message}".strip()
                report.errors.append(text)
                location = labels.get(event.label, "") if event.phase else ""
                report.located_errors.append((location, str(event.phase or "") if location else "", text))
            elif isinstance(event, events.FatalError):
                report.errors.append(f"Fatal: {event.exception!r}")
                report.located_errors.append(("", "", f"Fatal: {event.exception!r}"))
            elif isinstance(event, events.EngineFinished):
                report.stop_reason = str(event.stop_reason)
                report.seconds = event.running_time
                for failure in event.failures:
                    record = FailureRecord("after_run", failure.code, failure.title, failure.message, "", "")
                    report.failures.append(record)
    # The bills the run paid, whose notifications the webhook test expects (contract_tests/_webhooks.py).
    report.paid = {
        bill_id: (bill.amount, bill.currency) for bill_id, bill in checks.LEDGER.bills.items() if bill.status == "PAID"
    }
    return report


def _collect_scenario(
    report: ConformanceReport,
    event: events.ScenarioFinished,
    labels: dict[str, str],
    seen_failures: set[tuple[str, str, str]],
) -> None:
    recorder = event.recorder
    phase = str(event.phase)
    for case_id, node in recorder.cases.items():
        interaction = recorder.interactions.get(case_id)
        if interaction is not None and interaction.response is not None:
            report.operations_tested.add(node.value.operation.label)
            if not event.is_final:
                operation_id = labels.get(node.value.operation.label, node.value.operation.label)
                report.responses[operation_id, interaction.response.status_code] += 1
                report.slices[operation_id, phase] += 1
        if not event.is_final:
            report.cases += 1
        transition = node.transition
        if transition is not None and node.is_transition_applied and node.parent_id is not None:
            parent = recorder.cases.get(node.parent_id)
            if parent is not None:
                source = labels.get(parent.value.operation.label, parent.value.operation.label)
                target = labels.get(node.value.operation.label, node.value.operation.label)
                name = transition.id.split(" -> ")[1].split("] ", 1)[-1]
                report.links_covered.add(f"{source} -> {name} -> {target}")
    for nodes in recorder.checks.values():
        for check in nodes:
            report.checks[check.name, str(check.status)] += 1
            info = check.failure_info
            if check.status is not Status.FAILURE or info is None:
                continue
            failure = info.failure
            operation = failure.operation or recorder.label
            key = (check.name, operation, failure.code)
            if key in seen_failures:
                continue
            seen_failures.add(key)
            steps = "\n      ".join(step.curl for step in info.steps) if info.steps else info.code_sample
            record = FailureRecord(check.name, failure.code, failure.title, failure.message, operation, steps)
            report.failures.append(replace(record, operation_id=labels.get(operation, operation), phase=phase))
