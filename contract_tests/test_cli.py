"""``schemathesis run`` with the repository's ``schemathesis.toml``: what a user runs by hand, or in CI.

Proves the toml works on its own (auth from ``QIWI_SECRET_KEY``, the hooks and custom checks, the
JUnit report) and that the CLI, too, fails on a broken server and on a wrong key.
"""

from __future__ import annotations

import os
import subprocess
import sys
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from pathlib import Path

import pytest

from contract_tests._engine import REPO_ROOT, SPEC_PATH
from contract_tests._target import MockProcess

SCHEMATHESIS = Path(sys.executable).with_name("schemathesis")


def run_cli(url: str, key: str, junit: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "QIWI_SECRET_KEY": key, "QIWI_CONTRACT_MOCK_CONTROLS": "1", "NO_COLOR": "1"}
    command = [str(SCHEMATHESIS), "run", str(SPEC_PATH.relative_to(REPO_ROOT)), "--url", url]
    command += ["--seed", "1", "--report-junit-path", str(junit), *args]
    return subprocess.run(command, cwd=REPO_ROOT, env=env, capture_output=True, text=True, timeout=300, check=False)


@pytest.fixture(scope="module")
def mock() -> Iterator[MockProcess]:
    """One healthy mock over TCP for the CLI tests that need one."""
    with MockProcess() as process:
        yield process


def test_cli_passes_against_the_mock_and_writes_junit(mock: MockProcess, tmp_path: Path) -> None:
    junit = tmp_path / "junit.xml"
    result = run_cli(mock.base_url, mock.secret_key, junit, "-n", "3", "--phases", "examples,fuzzing")
    assert result.returncode == 0, result.stdout[-3000:]
    suite = ET.parse(junit).getroot()
    cases = suite.findall(".//testcase")
    assert len(cases) == 5, ET.tostring(suite)[:500]
    assert not suite.findall(".//failure")


def test_cli_fails_on_a_broken_server(tmp_path: Path) -> None:
    junit = tmp_path / "junit.xml"
    with MockProcess(broken=("wrong_status_code",)) as mock:
        args = ("-n", "3", "--phases", "examples", "--include-operation-id", "createBill")
        result = run_cli(mock.base_url, mock.secret_key, junit, *args)
    assert result.returncode != 0
    assert "Undocumented status code" in result.stdout, result.stdout[-3000:]
    assert ET.parse(junit).getroot().findall(".//failure")


def test_cli_fails_with_a_wrong_key(mock: MockProcess, tmp_path: Path) -> None:
    args = ("-n", "3", "--phases", "examples", "--include-operation-id", "getBill")
    result = run_cli(mock.base_url, "not-the-key", tmp_path / "junit.xml", *args)
    assert result.returncode != 0, result.stdout[-3000:]
