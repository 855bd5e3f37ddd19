"""Fixtures of the contract suite: the target server(s), budgets, clients and the summary plugin."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from contract_tests._profiles import Budget, active_budget, register_profiles
from contract_tests._summary import RECORDER, Recorder, pytest_terminal_summary
from contract_tests._target import MockProcess, Target, mock_asgi_target, remote_target_from_env

__all__ = ["pytest_terminal_summary"]

register_profiles()

HERE = Path(__file__).resolve().parent


def target_names() -> list[str]:
    """``remote`` when ``QIWI_BASE_URL`` is set, else the mock in-process and over TCP."""
    if os.environ.get("QIWI_BASE_URL", "").strip():
        return ["remote"]
    wanted = os.environ.get("QIWI_CONTRACT_TARGETS", "asgi,tcp")
    names = [f"mock-{name.strip()}" for name in wanted.split(",") if name.strip()]
    unknown = set(names) - {"mock-asgi", "mock-tcp"}
    if unknown:
        raise pytest.UsageError(f"QIWI_CONTRACT_TARGETS may list asgi and tcp, not {sorted(unknown)}")
    return names


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Every test under contract_tests/ carries the ``contract`` marker."""
    for item in items:
        if HERE in Path(str(item.path)).resolve().parents:
            item.add_marker(pytest.mark.contract)


@pytest.fixture(scope="session", params=target_names())
def target(request: pytest.FixtureRequest) -> Iterator[Target]:
    """The server under test (one session-wide instance per target)."""
    name = request.param
    if name == "remote":
        remote = remote_target_from_env()
        assert remote is not None
        preflight(remote)
        yield remote
    elif name == "mock-asgi":
        yield mock_asgi_target()
    else:
        with MockProcess() as process:
            yield process.target()


def preflight(target: Target) -> None:
    """Fail fast, with one clear message, when the target cannot be reached or refuses the key."""
    try:
        with target.http() as client:
            response = client.get(
                f"/partner/bill/v1/bills/{target.id_prefix}preflight",
                headers={"Authorization": f"Bearer {target.secret_key}"},
            )
    except httpx.HTTPError as exc:
        pytest.fail(f"{target.base_url} cannot be reached: {exc!r}", pytrace=False)
    if response.status_code in (401, 403):
        pytest.fail(f"{target.base_url} refuses QIWI_SECRET_KEY ({response.status_code})", pytrace=False)


@pytest.fixture(scope="session")
def budget() -> Budget:
    """The active test budget (``QIWI_HYPOTHESIS_PROFILE``)."""
    return active_budget()


@pytest.fixture(scope="session")
def recorder() -> Recorder:
    """Where tests put what the summary prints."""
    return RECORDER
