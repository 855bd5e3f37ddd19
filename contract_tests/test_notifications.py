"""A notification sent by the mock reaches a local receiver and is verified with ``qiwi_bill``."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from decimal import Decimal
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import jsonschema_rs
import pytest
import yaml

from contract_tests._engine import SPEC_PATH
from contract_tests._support import BILLS, auth_headers, bill_body, create_bill_raw, new_id
from contract_tests._target import MOCK_SECRET_KEY, MockProcess, Target, build_mock_app
from qiwi_bill import InvalidSignatureError, parse_amount, parse_datetime, parse_notification, verify_signature


@contextmanager
def receiver() -> Iterator[tuple[str, list[tuple[dict[str, str], bytes]]]]:
    """A merchant's notification endpoint on 127.0.0.1: records each POST and answers 200 ``{"error":"0"}``."""
    received: list[tuple[dict[str, str], bytes]] = []

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
            received.append((dict(self.headers.items()), body))
            reply = b'{"error":"0"}'
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(reply)))
            self.end_headers()
            self.wfile.write(reply)

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/qiwi/notify", received
    finally:
        server.shutdown()
        server.server_close()


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


def _notification_validator() -> Any:
    spec = yaml.safe_load(SPEC_PATH.read_text(encoding="utf-8"))
    schema = {"components": spec["components"], "$ref": "#/components/schemas/BillNotification"}
    return jsonschema_rs.Draft202012Validator(schema, validate_formats=True)


def _wait(received: list[Any], *, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not received and time.monotonic() < deadline:
        time.sleep(0.05)


def test_paid_bill_notification_is_signed_and_verifiable(target: Target) -> None:
    """create → pay → the merchant receives one signed PAID notification that ``qiwi_bill`` accepts."""
    if target.name not in ("mock-asgi", "mock-tcp"):
        pytest.skip(f"{target.name}: notifications need a server that can be told where to send them (the mock)")
    with receiver() as (url, received), notifying_mock(target.name, url) as mock:
        bill_id = new_id(mock, "notify")
        with mock.http() as client:
            created = create_bill_raw(client, mock, bill_id, bill_body(Decimal("99.90"), "RUB", comment="notify me"))
            assert created.status_code == 200, created.content
            assert mock.controls().pay(bill_id).status_code == 200
            _wait(received)
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
            errors = [str(e) for e in _notification_validator().iter_errors(raw)]
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
