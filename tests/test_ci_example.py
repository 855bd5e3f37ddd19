"""The users' CI example (examples/ci/) works: the script runs the workflow's steps, word for word, and passes.

``github-actions.yml`` cannot run here, so ``run-ci.sh`` carries the same ``run:`` bodies and this test checks
both halves: every ``run:`` of the workflow appears in the script verbatim and in order, and the script, run in a
throwaway "user project" with this checkout's virtualenv first on ``PATH``, installs the toolkit (already there:
pip has nothing to fetch), starts ``qiwi-bill-mock --port 0``, runs the user's tests against it, runs
``qiwi-contract`` and leaves the JUnit report where the workflow uploads it, then stops the mock.
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
import time
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parent.parent
CI = ROOT / "examples" / "ci"
WORKFLOW: dict[str, Any] = yaml.safe_load((CI / "github-actions.yml").read_text(encoding="utf-8"))
SCRIPT = (CI / "run-ci.sh").read_text(encoding="utf-8")
STEPS: list[dict[str, Any]] = WORKFLOW["jobs"]["test"]["steps"]
REPORT = "reports/qiwi-contract.xml"

USER_TEST = """
import os

from qiwi_bill import make_client
from qiwi_bill_client.api.bills import get_bill


def test_my_code_reaches_the_mock():
    with make_client(os.environ["QIWI_SECRET_KEY"], base_url=os.environ["QIWI_BASE_URL"]) as client:
        response = get_bill.sync_detailed("no-such-bill", client=client)
    assert response.status_code == 404  # the mock knows the key and answers QIWI's "Invoice not found"
"""


def test_every_run_step_of_the_workflow_is_in_the_script_in_order() -> None:
    bodies = [textwrap.dedent(step["run"]).strip() for step in STEPS if "run" in step]
    assert len(bodies) >= 4, bodies
    position = 0
    for body in bodies[:-1]:  # the last one ("Stop the mock") is the script's EXIT trap
        found = SCRIPT.find(body, position)
        assert found >= 0, f"not in run-ci.sh (after offset {position}):\n{body}"
        position = found + len(body)
    assert bodies[-1] in SCRIPT


def test_the_workflow_uploads_the_report_the_contract_step_writes() -> None:
    (upload,) = [step for step in STEPS if str(step.get("uses", "")).startswith("actions/upload-artifact")]
    assert upload["with"]["path"] == REPORT
    assert upload["if"] == "always()"  # a failing contract run is the one whose report matters
    assert any(f"--junit-xml {REPORT}" in step.get("run", "") for step in STEPS)


def test_the_script_runs_the_users_tests_and_the_contract_suite(tmp_path: Path) -> None:
    project = tmp_path / "project"
    (project / "tests").mkdir(parents=True)
    (project / "tests" / "test_billing.py").write_text(USER_TEST, encoding="utf-8")
    github_env = tmp_path / "github_env"
    github_env.touch()
    env = {name: value for name, value in os.environ.items() if not name.startswith(("QIWI_", "PYTEST_"))}
    env.update(
        PATH=f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}",
        GITHUB_ENV=str(github_env),
        PIP_DISABLE_PIP_VERSION_CHECK="1",
        NO_COLOR="1",
    )
    script = ["bash", str(CI / "run-ci.sh")]
    result = subprocess.run(script, cwd=project, env=env, capture_output=True, text=True, timeout=600, check=False)
    output = result.stdout + result.stderr
    assert result.returncode == 0, output[-5000:]
    assert "1 passed" in result.stdout, output[-5000:]  # the user's own test ran against the mock
    assert "RESULT: PASS" in result.stdout
    cases = list(ET.parse(project / REPORT).getroot().iter("testcase"))
    assert cases
    assert not [case for case in cases if case.find("failure") is not None or case.find("error") is not None]
    exported = dict(line.split("=", 1) for line in github_env.read_text().splitlines() if "=" in line)
    assert exported["QIWI_BASE_URL"].startswith("http://127.0.0.1:")
    assert _stopped(int(exported["QIWI_MOCK_PID"]))  # the trap stopped the mock


def _stopped(pid: int, timeout: float = 10.0) -> bool:
    """Whether ``pid`` is gone (or a zombie waiting for its reaper) within ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            status = Path(f"/proc/{pid}/status").read_text()
        except FileNotFoundError:
            return True
        if "\nState:\tZ" in status:
            return True
        time.sleep(0.1)
    return False
