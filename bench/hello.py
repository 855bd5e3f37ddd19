"""The floor of the stack: a hello-world Starlette app that answers every bill path with one fixed bill.

No auth, no validation, no state: what Starlette on the mock's server stack costs by itself (uvicorn with
uvloop, the mock's httptools protocol and server options, one worker, no access log). Run it with
``python -m bench.hello --port 0``; like the mock, it prints ``... listening on http://HOST:PORT`` as its first
line.
"""

from __future__ import annotations

import argparse
import socket
import sys

import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from qiwi_bill_mock.__main__ import server_options

__all__ = ["BILL_JSON", "app", "main"]

BILL_JSON = (
    b'{"siteId":"bench-site","billId":"bench-get","amount":{"currency":"RUB","value":"10.00"},'
    b'"status":{"value":"WAITING","changedDateTime":"2026-01-01T12:00:00.000+03:00"},'
    b'"creationDateTime":"2026-01-01T12:00:00.000+03:00","expirationDateTime":"2030-01-01T00:00:00+03:00",'
    b'"payUrl":"https://oplata.qiwi.com/form/?invoice_uid=00000000-0000-4000-8000-000000000000"}'
)


async def bill(_request: Request) -> Response:
    """Return the fixed bill, whatever the request."""
    return Response(BILL_JSON, media_type="application/json")


app = Starlette(
    routes=[
        Route("/partner/bill/v1/bills/{billId}", bill, methods=["GET", "PUT"]),
        Route("/partner/bill/v1/bills/{billId}/reject", bill, methods=["POST"]),
        Route("/partner/bill/v1/bills/{billId}/refunds/{refundId}", bill, methods=["GET", "PUT"]),
        Route("/_mock/health", bill, methods=["GET"]),
    ]
)


def main(argv: list[str] | None = None) -> None:
    """Serve :data:`app` on 127.0.0.1 with the same uvicorn settings as the mock's CLI."""
    parser = argparse.ArgumentParser(prog="python -m bench.hello", description=__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0)
    args = parser.parse_args(argv)
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((args.host, args.port))
    host, port = sock.getsockname()[:2]
    sys.stdout.write(f"bench-hello listening on http://{host}:{port}\n")
    sys.stdout.flush()
    config = uvicorn.Config(
        app, loop="uvloop", access_log=False, log_level="warning", lifespan="off", **server_options()
    )
    uvicorn.Server(config).run(sockets=[sock])


if __name__ == "__main__":
    main()
