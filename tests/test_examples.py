"""`examples/merchant.py` does what the README's walkthrough says: verified notifications, a thank-you page."""

from __future__ import annotations

import re
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from qiwi_bill import compute_signature
from qiwi_bill_mock.testing import MockProcess

ROOT = Path(__file__).resolve().parent.parent
SECRET = "my-secret"
BODY = {"amount": {"currency": "RUB", "value": "499.90"}, "expirationDateTime": "2030-01-01T00:00:00+03:00"}


class Merchant:
    """examples/merchant.py as a child process, its stdout collected line by line."""

    def __init__(self) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, str(ROOT / "examples" / "merchant.py"), "--port", "0", "--secret-key", SECRET],
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        assert self.proc.stdout is not None
        first = self.proc.stdout.readline()
        match = re.fullmatch(r"merchant server on (http://\S+)\n", first)
        assert match, first
        self.url = match.group(1)
        self.lines: list[str] = []
        threading.Thread(target=lambda: self.lines.extend(self.proc.stdout or []), daemon=True).start()

    def wait_for(self, text: str, timeout: float = 15) -> str:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for line in self.lines:
                if text in line:
                    return line
            time.sleep(0.05)
        raise AssertionError(f"merchant printed no {text!r}; output: {self.lines}")


@pytest.fixture
def merchant() -> Iterator[Merchant]:
    site = Merchant()
    yield site
    site.proc.terminate()
    site.proc.wait(10)


def test_the_walkthrough_notification_arrives_verified(merchant: Merchant) -> None:
    with MockProcess("--secret-key", SECRET, "--site-id", "270305", "--notify-url", f"{merchant.url}/notify") as mock:
        auth = {"Authorization": f"Bearer {SECRET}"}
        bill = httpx.put(f"{mock.url}/partner/bill/v1/bills/order-42", json=BODY, headers=auth).json()
        # The Pay button and this control take the same path in the mock's store.
        httpx.post(f"{mock.url}/_mock/bills/order-42/pay", headers=auth).raise_for_status()
        line = merchant.wait_for("notification: bill order-42")
    assert line.strip() == "notification: bill order-42 is PAID, 499.90 RUB; signature verified"
    assert bill["status"]["value"] == "WAITING"
    assert httpx.get(f"{merchant.url}/thanks").status_code == 200


def test_a_forged_notification_is_refused_and_not_handled(merchant: Merchant) -> None:
    notification = {
        "bill": {
            "siteId": "270305",
            "billId": "forged",
            "amount": {"currency": "RUB", "value": "1.00"},
            "status": {"value": "PAID", "changedDateTime": "2026-01-01T00:00:00+03:00"},
            "creationDateTime": "2026-01-01T00:00:00+03:00",
            "expirationDateTime": "2026-02-01T00:00:00+03:00",
        },
        "version": "1",
    }
    wrong = compute_signature(notification, secret="someone-else")
    forged = httpx.post(f"{merchant.url}/notify", json=notification, headers={"X-Api-Signature-SHA256": wrong})
    assert forged.status_code == 403
    good = compute_signature(notification, secret=SECRET)
    accepted = httpx.post(f"{merchant.url}/notify", json=notification, headers={"X-Api-Signature-SHA256": good})
    assert (accepted.status_code, accepted.json()) == (200, {"error": "0"})
    merchant.wait_for("bill forged")
    # Same billId as the forged one: exactly one line means the forgery never reached the handler.
    assert sum("bill forged" in line for line in merchant.lines) == 1
