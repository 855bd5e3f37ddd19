"""The servers of a benchmark run (the mock, the hello-world floor, Prism) and their prerequisites."""

from __future__ import annotations

import os
import shutil
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

from bench.procs import ServerProcess, free_port, say
from bench.report import BASELINE

__all__ = [
    "BASELINE",
    "PRISM_PACKAGE",
    "SITE_ID",
    "TOKEN",
    "check_baseline_tree",
    "ensure_prism",
    "ensure_wrk",
    "hello_server",
    "mock_server",
    "prism_server",
    "seed_bills",
]

ROOT = Path(__file__).resolve().parent.parent
SPEC = ROOT / "openapi" / "qiwi-bill-payments.yaml"
NODE_DIR = Path(__file__).resolve().parent / ".node"
PRISM_PACKAGE = "@stoplight/prism-cli@5.14.2"
TOKEN = "bench-secret-key"
PUBLIC_KEY = "bench-public-key"
SITE_ID = "bench-site"


def hello_server(raw: Path) -> ServerProcess:
    """The hello-world floor: ``python -m bench.hello`` (Starlette on uvicorn, uvloop + httptools)."""
    return ServerProcess(
        "hello",
        [sys.executable, "-m", "bench.hello", "--port", "0"],
        log_path=raw / "hello.log",
        health_path="/_mock/health",
        cwd=ROOT,
    )


def check_baseline_tree(tree: Path) -> Path:
    """``tree`` resolved, if it is a source tree of this project (``qiwi_bill_mock/`` and ``openapi/`` inside).

    Raises:
        ValueError: it is not.
    """
    tree = tree.expanduser().resolve()
    for needed in ("qiwi_bill_mock/__main__.py", "openapi/qiwi-bill-payments.yaml"):
        if not (tree / needed).is_file():
            raise ValueError(f"{tree} is not a source tree of this project: {needed} is missing")
    return tree


def mock_server(
    raw: Path, *, db: Path | None = None, name: str = "mock", workers: int = 1, tree: Path | None = None
) -> ServerProcess:
    """The mock with its defaults (validation, auth, persistence on), ``workers`` processes, on a free port.

    ``tree``: run the mock of another source tree (a worktree of an older commit, say) with this venv's
    packages: its folder comes first on ``sys.path`` (``python -m`` from there, and ``PYTHONPATH``).
    """
    argv = [
        sys.executable,
        "-m",
        "qiwi_bill_mock",
        "--host",
        "127.0.0.1",
        "--port",
        "0",
        "--secret-key",
        TOKEN,
        "--public-key",
        PUBLIC_KEY,
        "--site-id",
        SITE_ID,
    ]
    if db is not None:
        argv += ["--db", str(db)]
    if workers != 1:
        argv += ["--workers", str(workers)]
    env = {"PYTHONPATH": str(tree)} if tree is not None else None
    log = raw / f"{name.replace('@', '-')}.log"
    return ServerProcess(name, argv, log_path=log, health_path="/_mock/health", cwd=tree or ROOT, env=env)


def prism_server(raw: Path, prism_bin: Path) -> ServerProcess:
    """Prism serving the same OpenAPI document, silent (its default logging halves its throughput)."""
    port = free_port()
    return ServerProcess(
        "prism",
        [str(prism_bin), "mock", str(SPEC), "-h", "127.0.0.1", "-p", str(port), "-v", "silent"],
        log_path=raw / "prism.log",
        health_path="/partner/bill/v1/bills/health",
        port=port,
        cwd=ROOT,
    )


def ensure_prism(*, install: bool, timeout_s: float = 240.0) -> tuple[Path | None, str]:
    """Find Prism in ``bench/.node`` (git-ignored), installing it with npm when allowed.

    Returns:
        ``(path of the prism binary, "")``, or ``(None, reason it is unavailable)``.
    """
    binary = NODE_DIR / "node_modules" / ".bin" / "prism"
    if binary.exists():
        return binary, ""
    if shutil.which("node") is None:
        return None, "Node.js is not installed (Debian: apt-get install nodejs npm)"
    npm = shutil.which("npm")
    if npm is None:
        return None, "npm is not installed (Debian: apt-get install npm)"
    if not install:
        return None, f"{PRISM_PACKAGE} is not installed in bench/.node (a full run installs it with npm)"
    NODE_DIR.mkdir(parents=True, exist_ok=True)
    package_json = NODE_DIR / "package.json"
    if not package_json.exists():
        package_json.write_text('{"name": "qiwi-bench-node", "private": true}\n')
    say(f"bench: installing {PRISM_PACKAGE} into bench/.node with npm (once) ...")
    try:
        proc = subprocess.run(
            [npm, "install", "--no-audit", "--no-fund", "--no-package-lock", PRISM_PACKAGE],
            cwd=NODE_DIR,
            capture_output=True,
            text=True,
            timeout=timeout_s,
            check=False,
        )
    except subprocess.TimeoutExpired:
        return None, f"npm install {PRISM_PACKAGE} did not finish within {timeout_s:.0f} s"
    if proc.returncode != 0 or not binary.exists():
        return None, f"npm install {PRISM_PACKAGE} failed: {(proc.stderr or proc.stdout).strip()[-300:]}"
    return binary, ""


def ensure_wrk(*, install: bool) -> tuple[str | None, str]:
    """Find wrk; as root on Debian, install it with apt-get when allowed.

    Returns:
        ``(path of wrk, "")``, or ``(None, reason)``.
    """
    found = shutil.which("wrk")
    if found:
        return found, ""
    hint = "wrk is not installed (Debian: apt-get install wrk)"
    if not install or shutil.which("apt-get") is None or os.geteuid() != 0:
        return None, hint
    say("bench: installing wrk with apt-get (Debian's package) ...")
    try:
        subprocess.run(["apt-get", "install", "-y", "-qq", "wrk"], capture_output=True, timeout=300, check=False)
    except subprocess.TimeoutExpired:
        return None, hint + "; apt-get install timed out"
    found = shutil.which("wrk")
    return (found, "") if found else (None, hint + "; apt-get install wrk failed")


def seed_bills(db: Path, *, count: int, prefix: str) -> float:
    """Create a mock database file holding ``count`` WAITING bills ``prefix + i``; return the seconds taken.

    One bill is created through the service's own API (so every column has the storage's format), then
    copied ``count`` times with bulk SQL in one transaction: seeding a million bills through HTTP
    would take the better part of an hour, this takes seconds.
    """
    from qiwi_bill_mock.models import BillDraft
    from qiwi_bill_mock.service import BillService
    from qiwi_bill_mock.settings import Merchant, Settings

    started = time.perf_counter()
    for suffix in ("", "-wal", "-shm"):
        Path(f"{db}{suffix}").unlink(missing_ok=True)
    settings = Settings(merchants=[Merchant(site_id=SITE_ID, secret_key=TOKEN, public_key=PUBLIC_KEY)], db_path=str(db))
    store = BillService(settings)
    try:
        from datetime import datetime
        from decimal import Decimal

        expiry = datetime.fromisoformat("2030-01-01T00:00:00+03:00")
        draft = BillDraft(
            amount=Decimal("10.00"), currency="RUB", expiration=expiry, expiration_text="2030-01-01T00:00:00+03:00"
        )
        store.create_bill(SITE_ID, "seed-template", draft)
    finally:
        store.close()
    conn = sqlite3.connect(db, isolation_level=None)
    try:
        columns = [row[1] for row in conn.execute("PRAGMA table_info(bills)")]
        template = dict(zip(columns, conn.execute(f"SELECT {', '.join(columns)} FROM bills").fetchone(), strict=True))
        conn.execute("DELETE FROM bills")
        conn.execute("PRAGMA synchronous = OFF")
        conn.execute("BEGIN")
        uid_head = str(template["invoice_uid"])[:-12]
        placeholders = ", ".join("?" for _ in columns)

        def rows() -> object:
            for i in range(count):
                template["bill_id"] = f"{prefix}{i}"
                template["invoice_uid"] = f"{uid_head}{i:012x}"
                yield tuple(template[c] for c in columns)

        conn.executemany(f"INSERT INTO bills ({', '.join(columns)}) VALUES ({placeholders})", rows())  # type: ignore[arg-type]
        conn.execute("COMMIT")
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    finally:
        conn.close()
    return time.perf_counter() - started
