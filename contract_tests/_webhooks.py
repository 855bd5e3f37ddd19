"""The webhook side of the contract: a merchant's notification endpoint, and what every notification must be.

The document's ``webhooks: billStatusChanged`` is part of the contract, but schemathesis tests no webhook. The
suite's mock targets are configured to notify a :class:`NotificationInbox` of the session; after the
conformance run, :func:`notification_problems` checks every notification that arrived and that every bill the
run paid was notified. A remote server cannot be told where to send them, so this applies to the mock targets.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterable, Mapping
from decimal import Decimal
from functools import cache
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Any

import jsonschema_rs
import yaml

from contract_tests._engine import SPEC_PATH
from qiwi_bill import InvalidNotificationError, InvalidSignatureError, parse_amount, parse_notification

__all__ = ["NotificationInbox", "notification_problems", "notification_validator"]


class NotificationInbox:
    """A merchant's notification endpoint on 127.0.0.1, for a ``with`` block: records every POST (headers,
    body) and answers 200 ``{"error":"0"}``, as QIWI expects."""

    def __init__(self) -> None:
        self.received: list[tuple[dict[str, str], bytes]] = []
        self._lock = threading.Lock()
        inbox = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                with inbox._lock:
                    inbox.received.append((dict(self.headers.items()), body))
                reply = b'{"error":"0"}'
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(reply)))
                self.end_headers()
                self.wfile.write(reply)

            def log_message(self, *args: Any) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}/qiwi/notify"

    def __enter__(self) -> NotificationInbox:
        self._thread.start()
        return self

    def __exit__(self, *exc: type[BaseException] | BaseException | TracebackType | None) -> None:
        self._server.shutdown()
        self._server.server_close()

    def snapshot(self) -> list[tuple[dict[str, str], bytes]]:
        """What has arrived so far."""
        with self._lock:
            return list(self.received)


@cache
def notification_validator() -> Any:
    """A validator of the document's ``BillNotification`` schema."""
    spec = yaml.safe_load(SPEC_PATH.read_text(encoding="utf-8"))
    schema = {"components": spec["components"], "$ref": "#/components/schemas/BillNotification"}
    return jsonschema_rs.Draft202012Validator(schema, validate_formats=True)


def notified_bills(received: Iterable[tuple[Mapping[str, str], bytes]]) -> dict[tuple[str, str], Any]:
    """``(billId, status)`` -> the raw notification, for the notifications that parse as JSON."""
    out: dict[tuple[str, str], Any] = {}
    for _, body in received:
        try:
            raw = json.loads(body)
            bill = raw["bill"]
            out[str(bill["billId"]), str(bill["status"]["value"])] = raw
        except (ValueError, TypeError, KeyError):
            continue
    return out


def notification_problems(
    received: Iterable[tuple[Mapping[str, str], bytes]], *, secret_key: str, paid: Mapping[str, tuple[Decimal, str]]
) -> list[str]:
    """What is wrong with the notifications that arrived, for bills ``paid`` (billId -> amount, currency).

    Every notification honours the document's ``BillNotification`` schema, carries a valid
    ``X-Api-Signature-SHA256`` for the merchant's key, and says ``version`` ``"1"`` (both of QIWI's sample
    notifications, the v1 reference document and the P2P docs; the SDKs' ``"3"`` is a signature-test fixture).
    Every paid bill got a ``PAID`` notification with its amount and currency ([doc]: a notification is sent on
    payment).
    """
    received = list(received)
    problems: list[str] = []
    for headers, body in received:
        try:
            notification = parse_notification(body, headers, secret=secret_key)
        except (InvalidNotificationError, InvalidSignatureError) as exc:
            problems.append(f"A notification was refused by qiwi_bill.parse_notification ({exc}): {body[:300]!r}")
            continue
        raw = json.loads(body)
        errors = [str(error) for error in notification_validator().iter_errors(raw)]
        if errors:
            problems.append(f"Notification for bill {notification.bill.bill_id!r} breaks BillNotification: {errors}")
        if raw.get("version") != "1":
            problems.append(f"Notification for bill {notification.bill.bill_id!r} has version {raw.get('version')!r}")
    notified = notified_bills(received)
    for bill_id, (amount, currency) in sorted(paid.items()):
        raw = notified.get((bill_id, "PAID"))
        if raw is None:
            problems.append(f"Bill {bill_id!r} was paid, but no PAID notification arrived")
            continue
        sent = raw["bill"].get("amount") or {}
        try:
            same = parse_amount(str(sent.get("value"))) == amount and sent.get("currency") == currency
        except (ValueError, TypeError):
            same = False
        if not same:
            problems.append(f"The PAID notification of bill {bill_id!r} says {sent}, the bill {amount} {currency}")
    return problems
