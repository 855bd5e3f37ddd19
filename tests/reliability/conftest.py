"""Fixtures of the reliability suite, and the plugin that prints its summary table.

Every scenario runs in two sizes: `quick` (small counts; part of `make test`) and `full` (marked `slow`; what
`make reliability` runs). The `full` variants are deselected unless the run's `-m` expression names `slow`, so a
plain `pytest` stays fast and a `-m slow` run gets only the full sizes. Each scenario fills one row of the table
printed at the end of the session (scenario, requests, faults injected, 5xx seen, data lost, result); the table
is also written to `artifacts/reliability/table.md`.
"""

from __future__ import annotations

from collections.abc import Generator, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from rel_procs import MerchantEndpoint, MockProcess

_HERE = Path(__file__).resolve().parent
_ROWS = pytest.StashKey[list["Row"]]()
_PROCESSES: list[MockProcess] = []  # every mock started in this session: the leak test greps their output
_TABLE_FILE = _HERE.parent.parent / "artifacts" / "reliability" / "table.md"


@dataclass
class Row:
    """One line of the summary table."""

    scenario: str
    requests: int = 0
    faults: int = 0
    server_errors: int = 0
    lost: int = 0
    result: str = "not run"


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Keep the `slow` (full-size) variants out of runs that did not ask for them with `-m ...slow...`."""
    if "slow" in (config.option.markexpr or ""):
        return
    keep: list[pytest.Item] = []
    dropped: list[pytest.Item] = []
    for item in items:
        in_suite = _HERE in Path(str(item.path)).resolve().parents
        (dropped if in_suite and item.get_closest_marker("slow") else keep).append(item)
    if dropped:
        config.hook.pytest_deselected(items=dropped)
        items[:] = keep


@pytest.fixture(params=[pytest.param("quick", id="quick"), pytest.param("full", id="full", marks=pytest.mark.slow)])
def scale(request: pytest.FixtureRequest) -> str:
    """`quick` or `full`: each scenario picks its counts from it."""
    return str(request.param)


@pytest.fixture
def row(request: pytest.FixtureRequest) -> Row:
    """This scenario's row of the table; the test fills in the counts, the plugin the result."""
    rows = request.config.stash.setdefault(_ROWS, [])
    entry = Row(scenario=request.node.name)
    rows.append(entry)
    request.node.stash[_ROW_OF_ITEM] = entry
    return entry


_ROW_OF_ITEM = pytest.StashKey[Row]()


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(
    item: pytest.Item, call: pytest.CallInfo[None]
) -> Generator[None, pytest.TestReport, pytest.TestReport]:
    report = yield
    entry = item.stash.get(_ROW_OF_ITEM, None)
    if entry is not None:
        if report.when == "call":
            entry.result = "pass" if report.passed else ("skipped" if report.skipped else "FAIL")
        elif report.failed:
            entry.result = "FAIL"
    return report


def _mock_factory(tmp_path: Path) -> Iterator[Any]:
    started: list[MockProcess] = []

    def start(args: list[str], *, env: dict[str, str] | None = None, host: str | None = "127.0.0.1") -> MockProcess:
        process = MockProcess(args, env=env, host=host)
        started.append(process)
        _PROCESSES.append(process)
        return process.start()

    yield start
    for process in reversed(started):
        process.stop()


@pytest.fixture
def mock_factory(tmp_path: Path) -> Iterator[Any]:
    """Start `MockProcess`es on loopback; every one is stopped (or killed) when the test ends."""
    yield from _mock_factory(tmp_path)


@pytest.fixture(scope="module")
def merchant() -> Iterator[MerchantEndpoint]:
    """A local notification receiver for the whole module (test_rel_faults overrides it per test)."""
    endpoint = MerchantEndpoint().up()
    yield endpoint
    endpoint.down()


@pytest.fixture(scope="module")
def module_mock_factory(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    """`mock_factory` whose processes live as long as the test module (tests use distinct ids)."""
    yield from _mock_factory(tmp_path_factory.mktemp("mocks"))


def all_mock_output() -> str:
    """stdout and stderr of every mock process this session started (for the secret-leak grep)."""
    return "\n".join(process.output for process in _PROCESSES)


def _table(rows: list[Row]) -> list[str]:
    header = ("scenario", "requests", "faults injected", "5xx seen", "data lost", "result")
    cells = [header] + [
        (r.scenario, str(r.requests), str(r.faults), str(r.server_errors), str(r.lost), r.result) for r in rows
    ]
    widths = [max(len(line[i]) for line in cells) for i in range(len(header))]
    lines = ["| " + " | ".join(c.ljust(w) for c, w in zip(line, widths, strict=True)) + " |" for line in cells]
    lines.insert(1, "|" + "|".join("-" * (w + 2) for w in widths) + "|")
    return lines


def pytest_terminal_summary(terminalreporter: Any, config: pytest.Config) -> None:
    rows = config.stash.get(_ROWS, [])
    if not rows:
        return
    lines = _table(rows)
    terminalreporter.write_sep("=", "reliability summary")
    for line in lines:
        terminalreporter.write_line(line)
    try:
        _TABLE_FILE.parent.mkdir(parents=True, exist_ok=True)
        _TABLE_FILE.write_text("\n".join(lines) + "\n", encoding="utf-8")
    except OSError:
        pass
