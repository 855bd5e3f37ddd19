"""Issue 14's acceptance check: the built wheel alone, in a fresh virtualenv, outside the checkout.

Run from the checkout (`make venv` first); it takes a minute or two and prints each step:

    .venv/bin/python tests/kit/wheel_acceptance.py [--keep]

1. builds the wheel (`python -m build --no-isolation --wheel`) into a temporary folder;
2. creates a fresh virtualenv there and installs only that wheel (its dependencies resolved by pip, pinned to
   `requirements.lock`'s versions) plus pytest and pytest-xdist: no checkout on `sys.path`;
3. writes a user's test file using the `qiwi_mock` fixture: it creates a bill with the generated client, pays it
   with the control client, receives the signed notification and verifies its signature, and asserts on the
   request journal, with every socket `connect`/`bind` forbidden (no ports);
4. runs it with plain pytest, then with `-p xdist -n 2`. Exit status 0 only if both pass.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import TextIO

ROOT = Path(__file__).resolve().parents[2]

USER_TEST = """
import datetime as dt
import socket

import pytest

import qiwi_bill_mock
from qiwi_bill import verify_signature
from qiwi_bill_client.api.bills import create_bill
from qiwi_bill_client.models import AmountRequest, BillStatusValue, CreateBillRequest


@pytest.fixture
def no_sockets(monkeypatch):
    def refuse(*args, **kwargs):
        raise AssertionError("the in-process mock opened a network connection")

    for name in ("connect", "connect_ex", "bind"):
        monkeypatch.setattr(socket.socket, name, refuse)


def test_the_socket_guard_works(no_sockets):
    with pytest.raises(AssertionError, match="network connection"):
        socket.create_connection(("127.0.0.1", 9), timeout=1)


def test_installed_from_the_wheel():
    assert "site-packages" in qiwi_bill_mock.__file__, qiwi_bill_mock.__file__


@pytest.mark.parametrize("n", range(4))
def test_create_pay_notify_journal(no_sockets, qiwi_mock, n):
    body = CreateBillRequest(
        amount=AmountRequest(currency="RUB", value="10.00"),
        expiration_date_time=dt.datetime.now(dt.UTC) + dt.timedelta(hours=1),
    )
    bill = create_bill.sync(bill_id=f"order-{n}", client=qiwi_mock.client, body=body)
    assert bill.status.value is BillStatusValue.WAITING

    paid = qiwi_mock.controls.pay(f"order-{n}", pay_source="card")
    assert paid.status.value is BillStatusValue.PAID

    received = qiwi_mock.inbox.wait(bill_id=f"order-{n}", status="PAID", timeout=10)
    assert verify_signature(received.body, received.headers, secret=qiwi_mock.secret_key)
    assert received.notification.bill.amount.value == "10.00"

    [create] = qiwi_mock.requests("createBill")
    assert create.outcome == "accepted"
    assert create.body["amount"] == {"currency": "RUB", "value": "10.00"}
    assert qiwi_mock.controls.requests(refused=True) == []
"""


def say(text: str, *, stream: TextIO = sys.stdout) -> None:
    stream.write(text + "\n")
    stream.flush()


def run(*cmd: str | Path, cwd: Path, env: dict[str, str] | None = None) -> None:
    say("$ " + " ".join(str(c) for c in cmd))
    subprocess.run([str(c) for c in cmd], cwd=cwd, env=env, check=True)


def constraints(lock: Path) -> str:
    """`name==version` of every package in the lock (its hashes are for the project's own venv)."""
    # `name[extra]==1.0 ; marker \` lines: keep the marker (the lock is universal), drop extras and the backslash.
    pins = re.findall(r"^([A-Za-z0-9_.\-]+)(?:\[[^\]]*\])?(==[^ \\]+(?: ; [^\\]+)?)", lock.read_text(), re.MULTILINE)
    return "".join(f"{name}{rest.strip()}\n" for name, rest in pins)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--keep", action="store_true", help="keep the temporary folder")
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="qiwi-kit-wheel-"))
    try:
        run(
            ROOT / ".venv" / "bin" / "python",
            "-m",
            "build",
            "--no-isolation",
            "--wheel",
            "--outdir",
            work / "dist",
            cwd=ROOT,
        )
        [wheel] = (work / "dist").glob("*.whl")
        run(sys.executable, "-m", "venv", work / "venv", cwd=work)
        python = work / "venv" / "bin" / "python"
        (work / "constraints.txt").write_text(constraints(ROOT / "requirements.lock"))
        run(
            python,
            "-m",
            "pip",
            "install",
            "--quiet",
            "-c",
            work / "constraints.txt",
            wheel,
            "pytest",
            "pytest-xdist",
            cwd=work,
        )
        project = work / "project"
        project.mkdir()
        (project / "test_user.py").write_text(USER_TEST)
        env = {
            k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV") and not k.startswith("QIWI_")
        }
        run(python, "-m", "pytest", "-q", "-p", "no:cacheprovider", cwd=project, env=env)
        run(python, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-p", "xdist", "-n", "2", cwd=project, env=env)
    except subprocess.CalledProcessError as error:
        say(f"FAILED: {error}", stream=sys.stderr)
        return 1
    finally:
        if args.keep:
            say(f"kept {work}")
        else:
            shutil.rmtree(work, ignore_errors=True)
    say("OK: the wheel alone passes the user's qiwi_mock test, plain and with -n 2, with no ports")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
