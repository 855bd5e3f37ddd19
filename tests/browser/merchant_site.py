"""A tiny merchant site for the browser tests: the successUrl page, a shop page using the popup, a notification
receiver, and any page a test puts up (:meth:`MerchantSite.serve`, e.g. an attacker's page). It runs on its own port
of 127.0.0.1, so to the browser it is another origin than the mock.
"""

from __future__ import annotations

import html
import json
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit


@dataclass
class Received:
    """One request the site received."""

    path: str
    headers: dict[str, str]
    body: bytes = b""


@dataclass
class MerchantSite:
    """The site's URL and what it received."""

    url: str = ""
    notifications: list[Received] = field(default_factory=list)
    visits: list[Received] = field(default_factory=list)
    pages: dict[str, str] = field(default_factory=dict)
    _changed: threading.Condition = field(default_factory=threading.Condition)

    def serve(self, path: str, html_text: str) -> str:
        """Serve ``html_text`` at ``path`` (until :meth:`clear`); returns the page's URL."""
        self.pages[path] = html_text
        return f"{self.url}{path}"

    def wait_notifications(self, count: int = 1, timeout: float = 15.0) -> list[Received]:
        """Block until ``count`` notifications arrived; return them."""
        with self._changed:
            if not self._changed.wait_for(lambda: len(self.notifications) >= count, timeout=timeout):
                raise AssertionError(f"expected {count} notification(s) within {timeout} s, got {self.notifications}")
            return list(self.notifications)

    def clear(self) -> None:
        with self._changed:
            self.notifications.clear()
            self.visits.clear()
            self.pages.clear()


SHOP_PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Test shop</title></head>
<body>
<h1>Test shop</h1>
<p>Merchant page that uses the Checkout Popup.</p>
<script src="{mock}/popup/v1.js"></script>
<script>
window.outcome = null;
window.checkout = function (method, params) {{
  window.outcome = null;
  QiwiCheckout[method](params).then(
    function (data) {{ window.outcome = {{ ok: true, data: data }}; }},
    function (error) {{ window.outcome = {{ ok: false, reason: error && error.reason, message: String(error) }}; }}
  );
}};
</script>
</body></html>
"""

SUCCESS_PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Thank you</title></head>
<body><h1 id="thanks">Thank you for your order</h1><p>The merchant's successUrl page.</p></body></html>
"""


@contextmanager
def run_merchant_site() -> Iterator[MerchantSite]:
    """Serve the site on a free port of 127.0.0.1 for the duration of the block."""
    site = MerchantSite()

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, format: str, *args: Any) -> None:  # keep test output clean
            pass

        def _send(self, status: int, body: bytes, content_type: str) -> None:
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def do_GET(self) -> None:
            parts = urlsplit(self.path)
            with site._changed:
                site.visits.append(Received(self.path, dict(self.headers.items())))
                site._changed.notify_all()
            if parts.path == "/shop":
                mock = parse_qs(parts.query)["mock"][0]
                self._send(200, SHOP_PAGE.format(mock=html.escape(mock)).encode(), "text/html; charset=utf-8")
            elif parts.path in site.pages:
                self._send(200, site.pages[parts.path].encode(), "text/html; charset=utf-8")
            elif parts.path.startswith("/success"):
                self._send(200, SUCCESS_PAGE.encode(), "text/html; charset=utf-8")
            else:
                self._send(404, b"not found", "text/plain")

        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
            with site._changed:
                site.notifications.append(Received(self.path, dict(self.headers.items()), body))
                site._changed.notify_all()
            # What QIWI expects back (API doc, notifications): HTTP 200 and {"error":"0"}.
            self._send(200, json.dumps({"error": "0"}).encode(), "application/json")

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    site.url = f"http://127.0.0.1:{server.server_address[1]}"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield site
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=10)
