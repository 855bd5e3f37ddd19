"""A notification sent by the mock reaches a local receiver and is verified with ``qiwi_bill``."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from contextlib import contextmanager
from decimal import Decimal

import pytest

from contract_tests._support import BILLS, auth_headers, bill_body, create_bill_raw, new_id
from contract_tests._target import MOCK_SECRET_KEY, MockProcess, Target, build_mock_app
from contract_tests._webhooks import NotificationInbox, notification_validator
from qiwi_bill import InvalidSignatureError, parse_amount, parse_datetime, parse_notification, verify_signature


@contextmanager
def notifying_mock(kind: str, notify_url: str) -> Iterator[Target]:
    """A fresh mock of the same kind as the session's target, whose merchant notifies ``notify_url``.

    The in-process one runs its lifespan, so its own notifier delivers, as it does over TCP: a server that
    never starts delivering fails here, not only one that delivers wrongly.
    """
    if kind == "mock-asgi":
        app = build_mock_app(notify_url=notify_url)
        yield Target(name=kind, base_url="http://localhost", secret_key=MOCK_SECRET_KEY, app=app, lifespan=True)
    else:
        with MockProcess(notify_url=notify_url) as process:
            yield process.target()


def _wait(inbox: NotificationInbox, *, timeout: float = 10.0) -> list[tuple[dict[str, str], bytes]]:
    deadline = time.monotonic() + timeout
    while not inbox.snapshot() and time.monotonic() < deadline:
        time.sleep(0.05)
    return inbox.snapshot()


def test_paid_bill_notification_is_signed_and_verifiable(target: Target) -> None:
    """create → pay → the merchant receives one signed PAID notification that ``qiwi_bill`` accepts."""
    if target.name not in ("mock-asgi", "mock-tcp"):
        pytest.skip(f"{target.name}: notifications need a server that can be told where to send them (the mock)")
    with NotificationInbox() as inbox, notifying_mock(target.name, inbox.url) as mock:
        bill_id = new_id(mock, "notify")
        with mock.http() as client:
            created = create_bill_raw(client, mock, bill_id, bill_body(Decimal("99.90"), "RUB", comment="notify me"))
            assert created.status_code == 200, created.content
            assert mock.controls().pay(bill_id).status_code == 200
            received = _wait(inbox)
            assert received, "no notification arrived"
            headers, body = received[0]

            # The receiving side, as an integrator writes it.
            notification = parse_notification(body, headers, secret=mock.secret_key)
            assert notification.bill.bill_id == bill_id
            assert notification.bill.status.value.value == "PAID"
            assert parse_amount(notification.bill.amount.value) == Decimal("99.90")
            assert notification.bill.amount.currency == "RUB"
            signature = {k.lower(): v for k, v in headers.items()}["x-api-signature-sha256"]
            verify_signature(json.loads(body), signature, secret=mock.secret_key)
            raw = json.loads(body)
            assert parse_datetime(raw["bill"]["status"]["changedDateTime"]).tzinfo is not None
            # The document types `version` as a string; both of QIWI's sample notifications (the v1 reference
            # document and the P2P docs) send "1" (the SDKs' "3" is a signature-test fixture, never sent).
            assert raw["version"] == "1", raw["version"]
            assert headers.get("Content-Type", "").startswith("application/json")

            # The body honours the spec's webhook schema.
            errors = [str(e) for e in notification_validator().iter_errors(raw)]
            assert not errors, errors

            # A wrong key, or a tampered amount, is refused.
            with pytest.raises(InvalidSignatureError):
                parse_notification(body, headers, secret="not-the-secret")
            raw["bill"]["amount"]["value"] = "9990.00"
            with pytest.raises(InvalidSignatureError):
                parse_notification(json.dumps(raw).encode(), headers, secret=mock.secret_key)

            # The bill the notification names reads as PAID (QIWI recommends checking with GET).
            read = client.get(f"{BILLS}/{bill_id}", headers=auth_headers(mock))
            assert read.json()["status"]["value"] == "PAID"
