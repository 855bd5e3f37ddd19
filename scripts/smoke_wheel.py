"""``make smoke``: build the wheel and sdist, install the wheel into a fresh virtualenv outside the checkout, use it.

The virtualenv gets its dependencies from ``requirements.lock`` (``--require-hashes --no-deps``, the same pins as
``.venv``) and then the wheel alone (``--no-deps``), so the run proves the wheel, not the checkout: every command
runs from an empty directory, and the generated client must import from the virtualenv. Checked: the versions,
``qiwi-bill-mock --port 0`` starts and prints its listening line, ``qiwi-contract --base-url ...`` passes against
it and writes a JUnit file, a dead URL and a wrong key each exit 2 with one line, and the embedded mock works from
the installed package. Prints one ``smoke: ...`` line per step; exits non-zero on the first failure.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import socket
import subprocess
import sys
import tarfile
import tempfile
import time
import xml.etree.ElementTree as ET
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
LISTENING = re.compile(r"qiwi-bill-mock listening on (http://\S+)")
SECRET = "smoke-secret-key"


def say(message: str) -> None:
    print(f"smoke: {message}", flush=True)


def run(command: list[str], *, cwd: Path, env: dict[str, str] | None = None, timeout: float = 600) -> str:
    """Run ``command``; fail the smoke test with its output unless it exits 0. Returns its stdout."""
    result = subprocess.run(command, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout, check=False)
    if result.returncode != 0:
        raise SystemExit(
            f"smoke: FAILED {' '.join(command)} (exit {result.returncode})\n{result.stdout}\n{result.stderr}"
        )
    return result.stdout


def user_env(venv: Path) -> dict[str, str]:
    """A user's shell with the virtualenv activated: no QIWI_* of ours, nothing of the checkout on the path."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("QIWI_", "PYTHON", "VIRTUAL_ENV"))}
    env["PATH"] = f"{venv / 'bin'}{os.pathsep}{env.get('PATH', '')}"
    env["VIRTUAL_ENV"] = str(venv)
    return env


def build(out: Path) -> Path:
    """Build the sdist and the wheel; fail on any build warning and on an sdist that ships tests/. Returns the wheel."""
    # --no-isolation: the build backend comes from the lock (.venv), since the network may not serve build deps.
    # PYTHONDONTWRITEBYTECODE would make setuptools warn that it cannot byte-compile: not the package's doing.
    env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    output = run([sys.executable, "-m", "build", "--no-isolation", "--outdir", str(out)], cwd=ROOT, env=env)
    warnings = [line for line in output.splitlines() if "warning" in line.lower()]
    if warnings:
        raise SystemExit("smoke: FAILED the build warns:\n" + "\n".join(warnings))
    (sdist,) = out.glob("qiwi_bill_toolkit-*.tar.gz")
    with tarfile.open(sdist) as archive:
        tests = [name for name in archive.getnames() if "/tests/" in name]
    if tests:
        raise SystemExit(f"smoke: FAILED the sdist ships a partial tests/: {tests[:5]}")
    (wheel,) = out.glob("qiwi_bill_toolkit-*.whl")
    return wheel


def install(venv: Path, wheel: Path) -> None:
    run([sys.executable, "-m", "venv", str(venv)], cwd=venv.parent)
    pip = [str(venv / "bin" / "python"), "-m", "pip", "install", "--quiet", "--disable-pip-version-check"]
    run([*pip, "--require-hashes", "--no-deps", "-r", str(ROOT / "requirements.lock")], cwd=venv.parent, timeout=1200)
    run([*pip, "--no-deps", str(wheel)], cwd=venv.parent)


def start_mock(venv: Path, work: Path) -> tuple[subprocess.Popen[str], str]:
    """``qiwi-bill-mock --port 0`` in the background; its URL from the first stdout line."""
    command = [str(venv / "bin" / "qiwi-bill-mock"), "--port", "0", "--log-level", "warning"]
    env = {**user_env(venv), "QIWI_MOCK_SECRET_KEY": SECRET}
    process = subprocess.Popen(command, cwd=work, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    assert process.stdout is not None
    line = process.stdout.readline()
    match = LISTENING.search(line)
    if not match:
        process.kill()
        raise SystemExit(f"smoke: FAILED qiwi-bill-mock printed {line!r} first, not its listening line")
    return process, match.group(1).rstrip("/")


def expect_one_line_exit_2(venv: Path, work: Path, url: str, key: str, what: str) -> None:
    command = [str(venv / "bin" / "qiwi-contract"), "--base-url", url, "--junit-xml", ""]
    env = {**user_env(venv), "QIWI_SECRET_KEY": key}
    result = subprocess.run(command, cwd=work, env=env, capture_output=True, text=True, timeout=120, check=False)
    lines = (result.stdout + result.stderr).strip().splitlines()
    if result.returncode != 2 or len(lines) != 1 or what not in lines[0]:
        raise SystemExit(f"smoke: FAILED {what}: exit {result.returncode}, output:\n{result.stdout}{result.stderr}")
    say(f"exit 2, one line: {lines[0]}")


def dead_url() -> str:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return f"http://127.0.0.1:{sock.getsockname()[1]}"


def junit_counts(path: Path) -> tuple[int, int]:
    cases = list(ET.parse(path).getroot().iter("testcase"))
    failed = [case for case in cases if case.find("failure") is not None or case.find("error") is not None]
    return len(cases), len(failed)


def smoke(base: Path) -> None:
    started = time.monotonic()
    wheel = build(base / "dist")
    say(f"built {wheel.name} and the sdist, without warnings; the sdist has no tests/")
    venv, work = base / "venv", base / "work"
    work.mkdir()
    install(venv, wheel)
    say(f"installed into a fresh virtualenv at {venv} (lock file, then the wheel with --no-deps)")
    python = str(venv / "bin" / "python")
    env = user_env(venv)
    code = "import qiwi_bill, qiwi_bill_client, qiwi_bill_mock, contract_tests; print(qiwi_bill_client.__file__)"
    where = run([python, "-c", code], cwd=work, env=env).strip()
    if not where.startswith(str(venv)):
        raise SystemExit(f"smoke: FAILED the generated client imports from {where}, not from the virtualenv")
    say(f"the generated client imports from the virtualenv ({where})")
    expected = wheel.name.split("-")[1]
    for command in ("qiwi-bill-mock", "qiwi-contract"):
        shown = run([str(venv / "bin" / command), "--version"], cwd=work, env=env).strip()
        if shown != f"{command} {expected}":
            raise SystemExit(f"smoke: FAILED {command} --version printed {shown!r}, expected {expected}")
    say(f"qiwi-bill-mock and qiwi-contract --version: {expected}")
    mock, url = start_mock(venv, work)
    try:
        say(f"qiwi-bill-mock --port 0 listening on {url}")
        junit = work / "reports" / "contract.xml"
        contract = [str(venv / "bin" / "qiwi-contract"), "--base-url", url, "--junit-xml", str(junit)]
        output = run(contract, cwd=work, env={**env, "QIWI_SECRET_KEY": SECRET})
        cases, failed = junit_counts(junit)
        if not cases or failed or "RESULT: PASS" not in output:
            raise SystemExit(f"smoke: FAILED qiwi-contract: {cases} cases, {failed} failed\n{output}")
        say(f"qiwi-contract --base-url {url}: passed, {cases} test cases in {junit.relative_to(work)}")
        expect_one_line_exit_2(venv, work, url, "not-the-key", "refuses the secret key")
    finally:
        mock.terminate()
        mock.wait(timeout=30)
    expect_one_line_exit_2(venv, work, dead_url(), SECRET, "cannot be reached")
    embedded = [str(venv / "bin" / "qiwi-contract"), "-k", "test_operation_conforms and getBill and examples"]
    output = run(embedded, cwd=work, env={**env, "QIWI_CONTRACT_TARGETS": "asgi"})
    if "RESULT: PASS" not in output:
        raise SystemExit(f"smoke: FAILED qiwi-contract against the embedded mock\n{output}")
    say("qiwi-contract against the embedded mock (from the installed package): passed")
    say(f"OK in {time.monotonic() - started:.0f} s")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--keep", action="store_true", help="keep the temporary folder (printed) for inspection")
    args = parser.parse_args()
    base = Path(tempfile.mkdtemp(prefix="qiwi-smoke-"))
    try:
        smoke(base)
    finally:
        if args.keep:
            say(f"kept {base}")
        else:
            shutil.rmtree(base, ignore_errors=True)


if __name__ == "__main__":
    main()
