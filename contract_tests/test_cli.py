"""The suite's two command lines, run as a user runs them, from a directory that is not the checkout.

``qiwi-contract`` (``python -m contract_tests``): exit 0 when the server passes, 1 on a contract failure (each
failure reported once), 2 with one line when the server cannot be reached or refuses the key (nothing counted as
passed), 3 on a usage error; a JUnit report with one test case per operation and phase; ``--version``.

``schemathesis run`` with the suite's ``schemathesis.toml``: proves the toml works on its own (auth from
``QIWI_SECRET_KEY``, the hooks and custom checks, the JUnit report) and that the plain CLI, too, fails on a
broken server and on a wrong key.

Each test starts a command in a subprocess, so the module is marked ``cli``: ``make test`` runs it, and
``qiwi-contract`` itself leaves it out (``QIWI_CONTRACT_CLI_TESTS=1`` brings it back) to stay a one-minute job.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from importlib.metadata import version
from pathlib import Path

import pytest

from contract_tests._engine import SPEC_PATH, TOML_PATH, operation_ids
from contract_tests._target import MockProcess

pytestmark = pytest.mark.cli

SCHEMATHESIS = Path(sys.executable).with_name("schemathesis")
# One operation in one phase keeps each nested run to a few seconds; the full run is `make contract` itself.
ONE_CASE = "test_operation_conforms and createBill and examples"


def clean_env(**extra: str) -> dict[str, str]:
    """The environment without any QIWI_* variable of the outer run (a nested run must not inherit its target)."""
    env = {name: value for name, value in os.environ.items() if not name.startswith("QIWI_")}
    return {**env, "NO_COLOR": "1", **extra}


def qiwi_contract(cwd: Path, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    command = [sys.executable, "-m", "contract_tests", *args]
    return subprocess.run(
        command, cwd=cwd, env=clean_env(**env), capture_output=True, text=True, timeout=300, check=False
    )


def junit_cases(path: Path) -> dict[str, ET.Element]:
    return {case.attrib["name"]: case for case in ET.parse(path).getroot().iter("testcase")}


def free_dead_port() -> int:
    """A port nothing listens on (bound, then closed: connecting is refused)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture(scope="module")
def mock() -> Iterator[MockProcess]:
    """One healthy mock over TCP for the tests that need one."""
    with MockProcess() as process:
        yield process


def test_version_is_the_distribution_version(tmp_path: Path) -> None:
    import qiwi_bill

    expected = version("qiwi-bill-toolkit")
    assert qiwi_bill.__version__ == expected
    result = qiwi_contract(tmp_path, "--version")
    assert (result.returncode, result.stdout.strip()) == (0, f"qiwi-contract {expected}"), result.stderr
    mock_cli = [sys.executable, "-m", "qiwi_bill_mock", "--version"]
    shown = subprocess.run(mock_cli, capture_output=True, text=True, timeout=60, check=False, env=clean_env())
    assert (shown.returncode, shown.stdout.strip()) == (0, f"qiwi-bill-mock {expected}"), shown.stderr


def test_embedded_mock_passes_with_progress_and_a_junit_case_per_operation(tmp_path: Path) -> None:
    selection = f"{ONE_CASE} or test_operation_conforms and getBill and examples"
    result = qiwi_contract(tmp_path, "-k", selection, QIWI_CONTRACT_TARGETS="asgi")
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    assert "mock-asgi: examples phase" in result.stdout  # progress, per phase
    assert "examples  createBill" in result.stdout  # and per operation
    assert "RESULT: PASS" in result.stdout
    cases = junit_cases(tmp_path / "reports" / "qiwi-contract.xml")  # the default path, under the cwd
    assert set(cases) == {
        "test_operation_conforms[mock-asgi-createBill-examples]",
        "test_operation_conforms[mock-asgi-getBill-examples]",
    }
    assert not [case for case in cases.values() if case.find("failure") is not None or case.find("skipped")]


def test_another_server_passes_and_self_tests_are_left_out(mock: MockProcess, tmp_path: Path) -> None:
    junit = tmp_path / "out" / "contract.xml"
    args = ("--base-url", mock.base_url, "-k", "examples", "--junit-xml", str(junit))
    result = qiwi_contract(tmp_path, *args, QIWI_SECRET_KEY=mock.secret_key)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    cases = junit_cases(junit)
    assert set(cases) == {f"test_operation_conforms[remote-{op}-examples]" for op in operation_ids()}
    assert "not run (the breakage self-test" in result.stdout  # and says so
    assert "self-tests on local mocks" not in result.stdout  # nothing local counted


def test_a_contract_failure_exits_1_and_is_reported_once(tmp_path: Path) -> None:
    junit = tmp_path / "junit.xml"
    with MockProcess(broken=("wrong_status_code",)) as broken:
        args = ("--base-url", broken.base_url, "--secret-key", broken.secret_key, "-k", ONE_CASE)
        result = qiwi_contract(tmp_path, *args, "--junit-xml", str(junit))
    assert result.returncode == 1, result.stdout[-3000:] + result.stderr[-3000:]
    assert "status_code_conformance" in result.stdout
    # The reproduction is printed once (pytest's report of the failing test); the summary lists the test.
    assert result.stdout.count("Reproduce with:") == 1, result.stdout
    assert result.stdout.count(" status_code_conformance] ") == 1, result.stdout
    assert "RESULT: FAIL" in result.stdout
    failing = junit_cases(junit)["test_operation_conforms[remote-createBill-examples]"]
    failure = failing.find("failure")
    assert failure is not None
    assert "Undocumented" in failure.attrib.get("message", "") + (failure.text or "")


@pytest.mark.parametrize("problem", ["dead port", "wrong key"])
def test_unreachable_or_refused_exits_2_with_one_line(problem: str, mock: MockProcess, tmp_path: Path) -> None:
    url = f"http://127.0.0.1:{free_dead_port()}" if problem == "dead port" else mock.base_url
    result = qiwi_contract(tmp_path, "--base-url", url, QIWI_SECRET_KEY="not-the-key")
    assert result.returncode == 2, result.stdout + result.stderr
    assert result.stdout == ""
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert ("cannot be reached" if problem == "dead port" else "refuses the secret key") in lines[0]
    assert "not-the-key" not in result.stderr  # the key is never printed
    assert not (tmp_path / "reports").exists()  # nothing ran, so no report claims anything


def test_plain_pytest_against_a_dead_server_stops_with_one_line(tmp_path: Path) -> None:
    """Without the command, the suite's own preflight stops the session once (not once per test)."""
    package = Path(__file__).resolve().parent
    command = [sys.executable, "-m", "pytest", str(package), "-c", str(package / "_pytest.ini"), "-q"]
    command += ["--rootdir", str(package.parent)]
    env = clean_env(QIWI_BASE_URL=f"http://127.0.0.1:{free_dead_port()}", QIWI_SECRET_KEY="k")
    result = subprocess.run(command, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300, check=False)
    assert result.returncode == 42, result.stdout[-3000:]  # contract_tests._preflight.PREFLIGHT_EXIT
    assert (result.stdout + result.stderr).count("cannot be reached") == 1, result.stdout[-3000:]
    assert " passed" not in result.stdout


@pytest.mark.parametrize(
    ("args", "env", "message"),
    [
        (["--no-such-option"], {}, "unrecognized arguments"),
        (["--base-url", "http://127.0.0.1:9"], {}, "needs --secret-key"),
        (["--base-url", "127.0.0.1:9", "--secret-key", "k"], {}, "not an http:// or https:// URL"),
        (["--profile", "huge"], {}, "invalid choice"),
        (["-k", "no_test_is_named_like_this", "--no-self-test"], {"QIWI_CONTRACT_TARGETS": "asgi"}, "deselected"),
    ],
    ids=["unknown option", "url without key", "not a url", "bad profile", "selects nothing"],
)
def test_usage_errors_exit_3(args: list[str], env: dict[str, str], message: str, tmp_path: Path) -> None:
    result = qiwi_contract(tmp_path, *args, **env)
    assert result.returncode == 3, result.stdout[-3000:] + result.stderr[-3000:]
    assert message in result.stdout + result.stderr


def run_schemathesis(url: str, key: str, junit: Path, *args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    env = clean_env(QIWI_SECRET_KEY=key, QIWI_CONTRACT_MOCK_CONTROLS="1")
    command = [str(SCHEMATHESIS), "--config-file", str(TOML_PATH), "run", str(SPEC_PATH), "--url", url]
    command += ["--seed", "1", "--report-junit-path", str(junit), *args]
    return subprocess.run(command, cwd=cwd, env=env, capture_output=True, text=True, timeout=300, check=False)


def test_schemathesis_cli_passes_against_the_mock_and_writes_junit(mock: MockProcess, tmp_path: Path) -> None:
    junit = tmp_path / "junit.xml"
    args = ("-n", "3", "--phases", "examples,fuzzing")
    result = run_schemathesis(mock.base_url, mock.secret_key, junit, *args, cwd=tmp_path)
    assert result.returncode == 0, result.stdout[-3000:]
    suite = ET.parse(junit).getroot()
    cases = suite.findall(".//testcase")
    assert len(cases) == 5, ET.tostring(suite)[:500]
    assert not suite.findall(".//failure")


def test_schemathesis_cli_fails_on_a_broken_server(tmp_path: Path) -> None:
    junit = tmp_path / "junit.xml"
    with MockProcess(broken=("wrong_status_code",)) as broken:
        args = ("-n", "3", "--phases", "examples", "--include-operation-id", "createBill")
        result = run_schemathesis(broken.base_url, broken.secret_key, junit, *args, cwd=tmp_path)
    assert result.returncode != 0
    assert "Undocumented status code" in result.stdout, result.stdout[-3000:]
    assert ET.parse(junit).getroot().findall(".//failure")


def test_schemathesis_cli_fails_with_a_wrong_key(mock: MockProcess, tmp_path: Path) -> None:
    args = ("-n", "3", "--phases", "examples", "--include-operation-id", "getBill")
    result = run_schemathesis(mock.base_url, "not-the-key", tmp_path / "junit.xml", *args, cwd=tmp_path)
    assert result.returncode != 0, result.stdout[-3000:]
