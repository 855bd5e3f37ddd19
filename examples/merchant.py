"""A stand-in for your shop's server: receives QIWI notifications and serves the page customers return to.

Run it next to the mock (see the README's walkthrough):

    .venv/bin/python examples/merchant.py --port 8081 --secret-key my-secret

POST any path: a QIWI notification. It is verified with `qiwi_bill.NotificationReceiver` (signature first,
then de-duplication, then your handler) and answered `200 {"error":"0"}`; a forged one gets 403.
GET any path: the "thank you" page that `successUrl` points at.
"""

from __future__ import annotations

import argparse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from qiwi_bill import NotificationReceiver
from qiwi_bill_client.models import BillNotification


def on_notification(notification: BillNotification) -> None:
    """Your business logic. QIWI signs no timestamp and may repeat itself: be idempotent on billId + status."""
    bill = notification.bill
    print(
        f"notification: bill {bill.bill_id} is {bill.status.value}, {bill.amount.value} {bill.amount.currency}; "
        "signature verified",
        flush=True,
    )


def make_handler(receiver: NotificationReceiver) -> type[BaseHTTPRequestHandler]:
    """The HTTP handler class, bound to a receiver."""

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
            reply = receiver.handle(body, dict(self.headers))
            self.send_response(reply.status_code)
            for name, value in reply.headers.items():
                self.send_header(name, value)
            self.end_headers()
            self.wfile.write(reply.body)

        def do_GET(self) -> None:
            page = b"<!doctype html><meta charset=utf-8><title>Paid</title><h1>Thank you! Your order is paid.</h1>"
            self.send_response(200)
            self.send_header("Content-Type", "text/html; charset=utf-8")
            self.end_headers()
            self.wfile.write(page)

        def log_message(self, format: str, *args: object) -> None:  # quiet: keep the terminal for notifications
            return

    return Handler


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, default=8081, help="0 picks a free port")
    parser.add_argument("--secret-key", required=True, help="the merchant's secret key (the mock's --secret-key)")
    args = parser.parse_args()
    receiver = NotificationReceiver(secret=args.secret_key, handler=on_notification)
    server = ThreadingHTTPServer(("127.0.0.1", args.port), make_handler(receiver))
    print(f"merchant server on http://127.0.0.1:{server.server_address[1]}", flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass


if __name__ == "__main__":
    main()
