"""`qiwi-bill-mock` / `python -m qiwi_bill_mock`: run the mock on uvicorn.

The first line on stdout is always `qiwi-bill-mock listening on http://HOST:PORT` (flushed), with
the real port when `--port 0` picked a free one; tools parse it. Every option also reads a
`QIWI_MOCK_*` environment variable (`--secret-key` ↔ `QIWI_MOCK_SECRET_KEY`), which keeps keys out
of the process list. SIGINT / SIGTERM shut down cleanly; committed data is never lost.
"""

from __future__ import annotations

import argparse
import functools
import ipaddress
import logging
import os
import signal
import socket
import sqlite3
import sys
import tomllib
from collections.abc import Sequence
from typing import Any

from qiwi_bill import __version__
from qiwi_bill_mock.accesslog import LOG_FORMAT, BatchedLineHandler, access_logger
from qiwi_bill_mock.settings import (
    BROKEN_BEHAVIOURS,
    Fault,
    Merchant,
    Settings,
    SettingsError,
    demo_merchant,
    site_id_from_secret_key,
)

__all__ = ["build_settings", "main", "parse_args", "server_options", "worker_app"]

_SETTINGS_ENV = "QIWI_MOCK__SETTINGS_JSON"  # internal: hands the settings to worker processes


def _env(name: str, default: str | None = None) -> str | None:
    return os.environ.get(f"QIWI_MOCK_{name}", default)


def _env_flag(name: str) -> bool:
    return (_env(name) or "").strip().lower() not in ("", "0", "false", "no", "off")


def _csv(value: str | None) -> list[str]:
    return [part.strip() for part in (value or "").split(",") if part.strip()]


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    """Parse the command line (defaults from `QIWI_MOCK_*` environment variables)."""
    parser = argparse.ArgumentParser(
        prog="qiwi-bill-mock",
        description="A faithful, stateful mock of the QIWI bill-payments API v1 with signed notifications.",
        epilog="Every option also reads QIWI_MOCK_<NAME> (e.g. QIWI_MOCK_SECRET_KEY, QIWI_MOCK_PORT).",
    )
    add = parser.add_argument
    add("--host", default=_env("HOST", "127.0.0.1"), help="interface to bind (default 127.0.0.1)")
    add("--port", type=int, default=int(_env("PORT", "8080") or 8080), help="port; 0 picks a free one")
    add("--db", default=_env("DB"), metavar="PATH", help="SQLite file (default: in memory, lost on exit)")
    add("--public-url", default=_env("PUBLIC_URL"), help="base URL for payUrl (default http://HOST:PORT)")
    add("--secret-key", default=_env("SECRET_KEY"), help="the default merchant's secret key (bearer token)")
    add("--public-key", default=_env("PUBLIC_KEY"), help="the default merchant's public key (payment form)")
    add("--site-id", default=_env("SITE_ID"), help="the default merchant's siteId")
    add("--notify-url", default=_env("NOTIFY_URL"), help="where the default merchant's notifications go")
    add("--config", default=_env("CONFIG"), metavar="TOML", help="merchants and settings file (merchants.toml)")
    add("--workers", type=int, default=int(_env("WORKERS", "1") or 1), help="worker processes (needs --db)")
    add(
        "--time-scale",
        type=float,
        default=float(_env("TIME_SCALE", "1") or 1),
        help="multiply retry delays and the expiry lag (0.001 turns 15 min into 0.9 s)",
    )
    add(
        "--broken",
        default=_env("BROKEN"),
        help=f"deliberately broken behaviours: {', '.join(sorted(BROKEN_BEHAVIOURS))}",
    )
    add(
        "--notify-statuses",
        default=_env("NOTIFY_STATUSES"),
        help="statuses that notify, comma-separated (default PAID; also REJECTED, EXPIRED)",
    )
    add("--strict-idempotency", action="store_true", default=_env_flag("STRICT_IDEMPOTENCY"))
    add(
        "--unauthorized-body",
        choices=["empty", "json"],
        default=_env("UNAUTHORIZED_BODY"),
        help="the 401 body: empty (default, as QIWI's Java SDK expects) or json (QIWI's auth.unauthorized body)",
    )
    add(
        "--empty-401", action="store_true", default=_env_flag("EMPTY_401"), help="the same as --unauthorized-body empty"
    )
    add("--expiry-lag", type=float, default=float(_env("EXPIRY_LAG", "0") or 0), help="seconds before EXPIRED shows")
    add(
        "--fault",
        action="append",
        default=[spec for spec in (_env("FAULTS") or "").split(";") if spec.strip()],
        help="fault injection, e.g. route=createBill,latency=0.2,error=0.1,throttle=0.05,drop=0.01 (repeatable)",
    )
    add("--fault-seed", type=int, default=None)
    add("--head-timeout", type=float, default=float(_env("HEAD_TIMEOUT", "60") or 60), help="request head, seconds")
    add("--body-timeout", type=float, default=float(_env("BODY_TIMEOUT", "60") or 60), help="request body, seconds")
    add("--keep-alive-timeout", type=float, default=float(_env("KEEP_ALIVE_TIMEOUT", "5") or 5), help="idle, seconds")
    add("--max-connections", type=int, default=int(_env("MAX_CONNECTIONS", "0") or 0), help="0: from descriptors")
    add(
        "--request-journal",
        action="store_true",
        default=_env_flag("REQUEST_JOURNAL"),
        help="keep a journal of API requests (GET /_mock/requests; about 20 us per request, so off by default)",
    )
    add("--log-level", default=_env("LOG_LEVEL", "info"), choices=["debug", "info", "warning", "error"])
    add("--version", action="version", version=f"%(prog)s {__version__}")
    return parser.parse_args(argv)


def _config_file(path: str) -> dict[str, Any]:
    with open(path, "rb") as handle:
        data = tomllib.load(handle)
    if "merchant" in data:
        data["merchants"] = data.pop("merchant")
    if "fault" in data:
        data["faults"] = data.pop("fault")
    return data


def build_settings(args: argparse.Namespace, *, public_url: str | None = None) -> tuple[Settings, Merchant | None]:
    """Settings from the config file, then the command line. Returns the demo merchant if one was made.

    `public_url`: the fallback base of `payUrl`; `None` derives it from each request's `Host`.
    """
    data: dict[str, Any] = _config_file(args.config) if args.config else {}
    merchants = [Merchant(**m) for m in data.pop("merchants", [])]
    faults = [Fault(**f) for f in data.pop("faults", [])]
    demo: Merchant | None = None
    if args.secret_key:
        site_id = args.site_id or site_id_from_secret_key(args.secret_key) or "mock-site"
        merchant = demo_merchant(site_id=site_id)  # for its random public key
        merchants.insert(
            0,
            Merchant(
                site_id=site_id,
                secret_key=args.secret_key,
                public_key=args.public_key or merchant.public_key,
                notify_url=args.notify_url,
            ),
        )
    elif not merchants:
        demo = demo_merchant(site_id=args.site_id or "demo-00", notify_url=args.notify_url)
        if args.public_key:
            demo = Merchant(
                site_id=demo.site_id, secret_key=demo.secret_key, public_key=args.public_key, notify_url=demo.notify_url
            )
        merchants = [demo]
    faults += [Fault.parse(spec) for spec in args.fault or ()]
    data.update(
        merchants=tuple(merchants),
        faults=tuple(faults),
        public_url=args.public_url or data.get("public_url") or public_url,
    )
    if args.db:
        data["db_path"] = args.db
        # One process owns the file: its reads need not look for other writers (one SQLite query less per GET).
        data["db_owner"] = args.workers == 1
    if args.time_scale != 1:
        data["time_scale"] = args.time_scale
    if args.broken:
        data["broken"] = frozenset(_csv(args.broken))
    if args.notify_statuses:
        data["notify_statuses"] = frozenset(s.upper() for s in _csv(args.notify_statuses))
    if args.strict_idempotency:
        data["strict_idempotency"] = True
    if "empty_unauthorized_body" in data:  # the former config key
        data["unauthorized_body"] = "empty" if data.pop("empty_unauthorized_body") else "json"
    if args.unauthorized_body:
        data["unauthorized_body"] = args.unauthorized_body
    elif args.empty_401:
        data["unauthorized_body"] = "empty"
    if args.expiry_lag:
        data["expiry_lag"] = args.expiry_lag
    if args.fault_seed is not None:
        data["fault_seed"] = args.fault_seed
    for key in ("accepted_currencies", "notify_statuses", "broken"):
        if key in data:
            data[key] = frozenset(data[key])
    if "retry_schedule" in data:
        data["retry_schedule"] = tuple(float(x) for x in data["retry_schedule"])
    return Settings(**data), demo


def _app(settings: Settings, *, journal: bool) -> Any:
    """The served app: `create_app(settings)`, wrapped in the request journal when asked for (`--request-journal`).

    The journal is opt-in on the command line: it costs about 20 us of CPU per API request, 2-3 times what the
    mock's own GET costs in process (measured with a direct ASGI loop), and the benchmark's targets are about the
    mock as most people run it. The testing kit's in-process mock and its server fixture always turn it on.
    """
    from qiwi_bill_mock.app import create_app
    from qiwi_bill_mock.kit.journal import with_journal

    app = create_app(settings)
    return with_journal(app) if journal else app


def worker_app() -> Any:
    """uvicorn factory for `--workers N`: every worker builds its app from the inherited settings."""
    return _app(Settings.from_json(os.environ[_SETTINGS_ENV]), journal=_env_flag("REQUEST_JOURNAL"))


def _say(text: str, *, stream: Any = None) -> None:
    """One flushed line (stdout by default): other tools read the first line to find the port."""
    stream = stream or sys.stdout
    stream.write(text + "\n")
    stream.flush()


def _exit_cleanly(_signum: int, _frame: object) -> None:
    raise SystemExit(0)


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _configure_logging(level: str) -> None:
    """The CLI's logging: one format on stderr; the access log through its cheap batching handler."""
    logging.basicConfig(level=level.upper(), stream=sys.stderr, format=LOG_FORMAT)
    # The format uses none of these: skip looking them up for every record (logging docs, "Optimization").
    logging.logThreads = False
    logging.logProcesses = False
    logging.logMultiprocessing = False
    access_logger.addHandler(BatchedLineHandler(sys.stderr))
    access_logger.propagate = False


class _DropFilter(logging.Filter):
    """Hide uvicorn's traceback for connections dropped on purpose by fault injection."""

    def filter(self, record: logging.LogRecord) -> bool:
        exc = record.exc_info[1] if record.exc_info else None
        return type(exc).__name__ != "_ConnectionDropped"


def _bind(host: str, port: int) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, port))
    sock.listen(2048)  # listening before the first line is printed: early clients queue, never get refused
    sock.set_inheritable(True)
    return sock


def _http_protocol(limits: dict[str, Any]) -> Any:
    """httptools with the limits of `qiwi_bill_mock.protocol` and QIWI's error body (h11 if httptools is missing)."""
    try:
        from qiwi_bill_mock.protocol import LimitedHttpToolsProtocol, ServerLimits
    except ImportError:  # uvicorn without the [standard] extra: h11 bounds the head itself (16 KiB)
        return "h11"
    # A partial of module-level names pickles: `--workers N` hands the config to spawned processes.
    return functools.partial(LimitedHttpToolsProtocol, limits=ServerLimits(**limits))


def server_options(
    *,
    head_timeout: float = 60.0,
    body_timeout: float = 60.0,
    keep_alive_timeout: float = 5.0,
    max_connections: int | None = None,
) -> dict[str, Any]:
    """The server stack's uvicorn options (the benchmark's hello-world floor runs on exactly these).

    No proxy-headers middleware: nothing in the mock reads the client address or the scheme, and it is a
    layer of per-request work. `ws="none"`: the mock has no WebSocket route, so an `Upgrade` request is answered
    as plain HTTP by the application (QIWI's body), not refused by uvicorn's WebSocket layer with a plain 403.
    """
    limits = {"head_timeout": head_timeout, "body_timeout": body_timeout, "max_connections": max_connections}
    return {
        "http": _http_protocol(limits),
        "proxy_headers": False,
        "ws": "none",
        "timeout_keep_alive": keep_alive_timeout,
    }


def main(argv: Sequence[str] | None = None) -> None:
    """Run the mock until SIGINT / SIGTERM."""
    import uvicorn
    from uvicorn.supervisors import Multiprocess

    # Before uvicorn runs, SIGINT/SIGTERM exit at once with status 0 (nothing is open yet). uvicorn then installs
    # its own handlers (graceful shutdown) and, once done, re-raises the signal through this one: status 0 again.
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, _exit_cleanly)
    args = parse_args(argv)
    _configure_logging(args.log_level)
    logging.getLogger("uvicorn.error").addFilter(_DropFilter())
    if args.workers < 1:
        raise SystemExit("qiwi-bill-mock: --workers must be at least 1")
    if min(args.head_timeout, args.body_timeout, args.keep_alive_timeout) <= 0 or args.max_connections < 0:
        raise SystemExit("qiwi-bill-mock: timeouts must be positive and --max-connections at least 1")
    if args.workers > 1 and not args.db:
        raise SystemExit("qiwi-bill-mock: several --workers share state only through a file: add --db PATH")
    if not _is_loopback(args.host):
        _say(
            f"WARNING: qiwi-bill-mock is bound to {args.host}, reachable from the network. It is a test server:"
            " anyone who can reach it can pay bills and move its clock. Bind 127.0.0.1 unless you must.",
            stream=sys.stderr,
        )
    try:
        sock = _bind(args.host, args.port)
    except OSError as exc:
        raise SystemExit(f"qiwi-bill-mock: cannot bind {args.host}:{args.port}: {exc.strerror}") from None
    port = sock.getsockname()[1]
    shown_host = f"[{args.host}]" if ":" in args.host else args.host
    base_url = f"http://{shown_host}:{port}"
    try:
        settings, demo = build_settings(args)  # payUrl: --public-url, else each request's Host
    except (SettingsError, OSError, tomllib.TOMLDecodeError, TypeError, ValueError) as exc:
        sock.close()
        raise SystemExit(f"qiwi-bill-mock: {exc}") from None

    if settings.db_path:
        # Open the database once here: an unwritable path is a one-line error, not a traceback per worker.
        from qiwi_bill_mock.storage import Database, DatabaseUnusable, read_only_error

        # Status 2 and one line for a file that must not be served: unopenable, damaged or read-only (issue 16,
        # items 10-11). A read-only file fails here if the schema needs writing, else in check_usable.
        try:
            database = Database(settings.db_path, owner=settings.db_owner)
            try:
                database.check_usable()
            finally:
                database.close()
        except DatabaseUnusable as exc:
            problem = str(exc)
        except sqlite3.Error as exc:
            problem = (
                f"the database {settings.db_path} is read-only"
                if read_only_error(exc)
                else f"cannot open the database {settings.db_path}: {exc}"
            )
        else:
            problem = ""
        if problem:
            sock.close()
            _say(f"qiwi-bill-mock: {problem}", stream=sys.stderr)
            raise SystemExit(2)

    _say(f"qiwi-bill-mock listening on {base_url}")
    if demo is not None:
        _say(f"demo merchant: siteId={demo.site_id}")
        _say(f"  secret key (Bearer token, notification HMAC key): {demo.secret_key}")
        _say(f"  public key (payment form): {demo.public_key}")

    common: dict[str, Any] = {"access_log": False, "log_config": None, "lifespan": "on", "timeout_graceful_shutdown": 5}
    common.update(
        server_options(
            head_timeout=args.head_timeout,
            body_timeout=args.body_timeout,
            keep_alive_timeout=args.keep_alive_timeout,
            max_connections=args.max_connections or None,
        )
    )
    if args.workers > 1:
        os.environ[_SETTINGS_ENV] = settings.to_json()
        if args.request_journal:
            os.environ["QIWI_MOCK_REQUEST_JOURNAL"] = "1"
        config = uvicorn.Config("qiwi_bill_mock.__main__:worker_app", factory=True, workers=args.workers, **common)
        Multiprocess(config, sockets=[sock]).run()
    else:
        config = uvicorn.Config(_app(settings, journal=args.request_journal), **common)
        server = uvicorn.Server(config)
        server.run(sockets=[sock])
        if not server.started:
            raise SystemExit(3)


if __name__ == "__main__":
    main()
