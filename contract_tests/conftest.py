"""Fixtures of the contract suite: the target server(s), budgets, clients and the summary plugin.

Tests that take the ``target`` fixture test the server; the others are the suite's self-tests (the breakage
self-test and the checks' unit tests run on local mocks only). Against another server (``QIWI_BASE_URL``) the
self-tests are deselected unless ``QIWI_CONTRACT_SELF_TEST=1`` (``qiwi-contract --self-test``): they say nothing
about that server, and a summary that counted them would call a dead server "passed". The tests of the command
line itself (marker ``cli``, contract_tests/test_cli.py) start nested runs; ``qiwi-contract`` leaves them out
(``QIWI_CONTRACT_CLI_TESTS=0``, which it sets unless already set), ``make test`` runs them.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from contract_tests._preflight import PREFLIGHT_EXIT, PreflightError, preflight as preflight_request
from contract_tests._profiles import Budget, active_budget, register_profiles
from contract_tests._summary import RECORDER, Recorder, pytest_terminal_summary
from contract_tests._target import MockProcess, Target, env_flag, mock_asgi_target, remote_target_from_env
from contract_tests._webhooks import NotificationInbox

__all__ = ["pytest_terminal_summary"]

register_profiles()

HERE = Path(__file__).resolve().parent
SELF_TEST_ENV = "QIWI_CONTRACT_SELF_TEST"
CLI_TESTS_ENV = "QIWI_CONTRACT_CLI_TESTS"


def pytest_addoption(parser: pytest.Parser) -> None:
    """``--contract-progress``: print the engine's progress per phase and operation (``qiwi-contract`` sets it)."""
    parser.addoption("--contract-progress", action="store_true", default=False, help="print contract run progress")


def pytest_configure(config: pytest.Config) -> None:
    """Register the ``contract`` marker (an installed suite has no pyproject.toml to declare it)."""
    config.addinivalue_line("markers", "contract: the schemathesis contract suite (make contract)")
    config.addinivalue_line("markers", "cli: starts qiwi-contract or schemathesis in a subprocess (make test)")


def remote() -> bool:
    """Whether the suite tests another server (``QIWI_BASE_URL``) rather than the embedded mock."""
    return bool(os.environ.get("QIWI_BASE_URL", "").strip())


def self_tests_wanted() -> bool:
    """``QIWI_CONTRACT_SELF_TEST``, by default on for the embedded mock and off for another server."""
    value = os.environ.get(SELF_TEST_ENV, "").strip()
    return env_flag(SELF_TEST_ENV) if value else not remote()


def target_names() -> list[str]:
    """``remote`` when ``QIWI_BASE_URL`` is set, else the mock in-process and over TCP."""
    if remote():
        return ["remote"]
    wanted = os.environ.get("QIWI_CONTRACT_TARGETS", "asgi,tcp")
    names = [f"mock-{name.strip()}" for name in wanted.split(",") if name.strip()]
    unknown = set(names) - {"mock-asgi", "mock-tcp"}
    if unknown:
        raise pytest.UsageError(f"QIWI_CONTRACT_TARGETS may list asgi and tcp, not {sorted(unknown)}")
    return names


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Mark every contract test ``contract``; against another server, leave out the self-tests unless asked."""
    ours = [item for item in items if HERE in Path(str(item.path)).resolve().parents]
    for item in ours:
        item.add_marker(pytest.mark.contract)
    local = [item for item in ours if "target" not in getattr(item, "fixturenames", ())]
    RECORDER.target_tests = {item.nodeid for item in ours} - {item.nodeid for item in local}
    left_out = []
    if os.environ.get(CLI_TESTS_ENV, "").strip() and not env_flag(CLI_TESTS_ENV):
        left_out = [item for item in local if item.get_closest_marker("cli")]
        RECORDER.cli_tests_left_out = len(left_out)
    if not self_tests_wanted():
        RECORDER.self_tests_left_out = len(local) - len(left_out)
        left_out = local
    if left_out:
        config.hook.pytest_deselected(items=left_out)
        items[:] = [item for item in items if item not in set(left_out)]


@pytest.fixture(scope="session")
def notification_inbox() -> Iterator[NotificationInbox | None]:
    """Where the mock targets send their merchant's notifications (``None`` against another server, which
    cannot be told where to send them)."""
    if remote():
        yield None
        return
    with NotificationInbox() as inbox:
        yield inbox


@pytest.fixture(scope="session", params=target_names())
def target(request: pytest.FixtureRequest, notification_inbox: NotificationInbox | None) -> Iterator[Target]:
    """The server under test (one session-wide instance per target); a mock notifies ``notification_inbox``."""
    name = request.param
    if name == "remote":
        try:
            server = remote_target_from_env()
        except RuntimeError as exc:
            pytest.exit(str(exc), returncode=pytest.ExitCode.USAGE_ERROR)
        assert server is not None
        preflight(server)
        yield server
    else:
        assert notification_inbox is not None
        if name == "mock-asgi":
            yield mock_asgi_target(notify_url=notification_inbox.url)
        else:
            with MockProcess(notify_url=notification_inbox.url) as process:
                yield process.target()


def preflight(target: Target) -> None:
    """Stop the whole session, with one clear line, when the target cannot be reached or refuses the key."""
    try:
        preflight_request(target.base_url, target.secret_key)
    except PreflightError as exc:
        pytest.exit(str(exc), returncode=PREFLIGHT_EXIT)


@pytest.fixture(scope="session")
def budget() -> Budget:
    """The active test budget (``QIWI_HYPOTHESIS_PROFILE``)."""
    return active_budget()


@pytest.fixture(scope="session")
def recorder() -> Recorder:
    """Where tests put what the summary prints."""
    return RECORDER
