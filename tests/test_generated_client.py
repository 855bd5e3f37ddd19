"""The committed generated client is exactly what the pinned generator makes from the spec."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import qiwi_bill_client
from qiwi_bill_client import AuthenticatedClient, Client

ROOT = Path(__file__).resolve().parent.parent


def test_committed_client_matches_a_fresh_generation() -> None:
    result = subprocess.run(
        [sys.executable, "scripts/regen_client.py", "--check"], cwd=ROOT, capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_package_is_typed_and_exports_both_clients() -> None:
    assert (Path(qiwi_bill_client.__file__).parent / "py.typed").is_file()
    assert {"AuthenticatedClient", "Client"} <= set(qiwi_bill_client.__all__)
    assert AuthenticatedClient.__module__ == Client.__module__ == "qiwi_bill_client.client"
