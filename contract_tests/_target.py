"""Which server the suite tests, and how to reach it.

By default the suite tests the embedded mock twice: in-process through ASGI (fast) and over real TCP
with a ``python -m qiwi_bill_mock`` subprocess (what users run). Environment variables point it at
another server instead:

- ``QIWI_BASE_URL`` and ``QIWI_SECRET_KEY`` (required together), ``QIWI_PUBLIC_KEY`` (optional);
- ``QIWI_CONTRACT_DESTRUCTIVE=1``: fuzz creates and refunds with arbitrary amounts on that server
  (off by default: a non-mock target gets read-only calls and 1.00 RUB bills under a unique prefix);
- ``QIWI_CONTRACT_MOCK_CONTROLS=auto|0|1``: whether the target has the mock's ``/_mock/`` controls
  (``auto``, the default, asks ``GET /_mock/health``);
- ``QIWI_CONTRACT_TARGETS=asgi,tcp``: which of the two default mock targets to run.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import tempfile
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote

import httpx

from contract_tests.hooks import HookSettings, pay_over_http
from qiwi_bill_mock.testing import MockTransport

__all__ = [
    "MOCK_PUBLIC_KEY",
    "MOCK_SECRET_KEY",
    "MOCK_SITE_ID",
    "MockControls",
    "MockProcess",
    "Target",
    "build_mock_app",
    "env_flag",
    "in_process_transport",
    "mock_asgi_target",
    "probe_mock_controls",
    "remote_target_from_env",
]

MOCK_SECRET_KEY = "contract-secret-key"
MOCK_PUBLIC_KEY = "contract-public-key"
MOCK_SITE_ID = "270304"
# A second merchant on the suite's mocks: its key must never reach the first merchant's bills (issue 15, gap 7).
MOCK_SECOND_MERCHANT = {
    "secret_key": "contract-secret-key-2",
    "public_key": "contract-public-key-2",
    "site_id": "270305",
}


def in_process_transport(app: Any, *, lifespan: bool = False) -> MockTransport:
    """The testing kit's sync-and-async transport over an in-process mock app, by default without its lifespan:
    schemathesis starts the app's lifespan itself when it first calls the app. ``lifespan=True`` for a target
    that nothing else drives, whose notifier and expiry sweeper must run as in a user's test."""
    return MockTransport(app, lifespan=lifespan)


def env_flag(name: str) -> bool:
    """Whether an opt-in environment flag is set (``1``, ``true``, ``yes``)."""
    return os.environ.get(name, "").strip().lower() in {"1", "true", "yes"}


def build_mock_app(
    *,
    secret_key: str = MOCK_SECRET_KEY,
    public_key: str = MOCK_PUBLIC_KEY,
    site_id: str = MOCK_SITE_ID,
    broken: Iterable[str] = (),
    notify_url: str | None = None,
    **settings: Any,
) -> Any:
    """A fresh in-process mock (``qiwi_bill_mock.create_app``) with one merchant."""
    from qiwi_bill_mock import create_app
    from qiwi_bill_mock.settings import Merchant, Settings

    merchant = Merchant(secret_key=secret_key, public_key=public_key, site_id=site_id, notify_url=notify_url)
    second = Merchant(**MOCK_SECOND_MERCHANT)
    return create_app(Settings(merchants=(merchant, second), broken=frozenset(broken), **settings))


@dataclass(frozen=True, slots=True)
class Target:
    """A server under test.

    Attributes:
        name: ``mock-asgi``, ``mock-tcp`` or ``remote``.
        base_url: Where the API lives (``http://localhost`` for the in-process app).
        secret_key: The merchant's secret key (bearer token).
        public_key: The merchant's public key, when known.
        app: The ASGI app for in-process targets, else ``None``.
        mock_controls: Whether the ``/_mock/`` test controls exist.
        destructive: Whether arbitrary creates and refunds are allowed.
        id_prefix: Prefix of every id the suite creates on this target.
        secret_key_2: Another merchant's secret key on the same server (``QIWI_SECRET_KEY_2``), or ``None``.
        lifespan: For an in-process app: its transports run the app's lifespan (notifier, sweeper) themselves.
    """

    name: str
    base_url: str
    secret_key: str = field(repr=False)  # never in reprs, logs or test output
    public_key: str | None = None
    app: Any = None
    mock_controls: bool = True
    destructive: bool = True
    id_prefix: str = field(default_factory=lambda: f"ct-{secrets.token_hex(4)}-")
    secret_key_2: str | None = field(default=None, repr=False)
    lifespan: bool = False

    @property
    def mode(self) -> str:
        """How the suite runs against this target, in words (printed in the summary)."""
        if self.app is not None or self.name.startswith("mock"):
            return "the embedded mock, full run"
        if self.mock_controls:
            return f"{self.base_url}, full run (it answers /_mock/health; QIWI_CONTRACT_MOCK_CONTROLS overrides)"
        if self.destructive:
            return f"{self.base_url}, destructive run (QIWI_CONTRACT_DESTRUCTIVE=1), no /_mock/ controls"
        return f"{self.base_url}, safe run: positive data, no refunds, 1.00 RUB bills under {self.id_prefix}"

    @property
    def safe(self) -> bool:
        """A non-mock target without the destructive opt-in: read-only calls and 1.00 RUB bills only."""
        return not self.destructive

    def skip_reason(self, *, needs_controls: bool = False, needs_destructive: bool = False) -> str | None:
        """Why a test cannot run against this target, or ``None``."""
        if needs_controls and not self.mock_controls:
            return f"{self.name} has no /_mock/ controls (set QIWI_CONTRACT_MOCK_CONTROLS=1 if it is the mock)"
        if needs_destructive and not self.destructive:
            return f"{self.name} is not the mock; set QIWI_CONTRACT_DESTRUCTIVE=1 to fuzz creates and refunds"
        return None

    def http(self) -> httpx.Client:
        """A synchronous httpx client for this target (through :func:`in_process_transport` for in-process apps)."""
        if self.app is not None:
            transport = in_process_transport(self.app, lifespan=self.lifespan)
            return httpx.Client(transport=transport, base_url=self.base_url)
        return httpx.Client(base_url=self.base_url, timeout=httpx.Timeout(10.0, connect=5.0))

    def controls(self) -> MockControls:
        """The ``/_mock/`` controls; raise when this target has none."""
        if not self.mock_controls:
            raise RuntimeError(self.skip_reason(needs_controls=True))
        return MockControls(self)

    @contextlib.contextmanager
    def hook_settings(self) -> Iterator[HookSettings]:
        """What the schemathesis hooks must do for this target, for the duration of one run."""
        with self.http() as client:

            def pay(bill_id: str) -> dict[str, Any] | None:
                return pay_over_http(self.base_url, self.secret_key, bill_id, client=client)

            yield HookSettings(
                pay_bill=pay if self.mock_controls else None,
                id_prefix="" if self.destructive else self.id_prefix,
                safe_amounts=self.safe,
                second_key=self.secret_key_2,
            )


class MockControls:
    """The mock's test-only ``/_mock/`` endpoints (not part of the QIWI API)."""

    def __init__(self, target: Target) -> None:
        self._target = target
        self._headers = {"Authorization": f"Bearer {target.secret_key}"}

    def _call(self, method: str, path: str, json: Any = None) -> httpx.Response:
        with self._target.http() as client:
            return client.request(method, path, headers=self._headers, json=json)

    def pay(self, bill_id: str) -> httpx.Response:
        return self._call("POST", f"/_mock/bills/{quote(bill_id, safe='')}/pay")

    def expire(self, bill_id: str) -> httpx.Response:
        return self._call("POST", f"/_mock/bills/{quote(bill_id, safe='')}/expire")

    def advance_clock(self, seconds: float) -> httpx.Response:
        return self._call("POST", "/_mock/clock/advance", json={"seconds": seconds})

    def notifications(self) -> Any:
        response = self._call("GET", "/_mock/notifications")
        response.raise_for_status()
        return response.json()

    def reset(self) -> None:
        self._call("POST", "/_mock/reset").raise_for_status()


def probe_mock_controls(base_url: str) -> bool:
    """Whether ``base_url`` answers ``GET /_mock/health`` like the mock does."""
    try:
        response = httpx.get(f"{base_url.rstrip('/')}/_mock/health", timeout=5)
    except httpx.HTTPError:
        return False
    return response.status_code == 200


def remote_target_from_env() -> Target | None:
    """The target named by ``QIWI_BASE_URL``/``QIWI_SECRET_KEY``, or ``None`` when unset."""
    base_url = os.environ.get("QIWI_BASE_URL", "").strip()
    if not base_url:
        return None
    secret_key = os.environ.get("QIWI_SECRET_KEY", "")
    if not secret_key:
        raise RuntimeError("QIWI_BASE_URL is set but QIWI_SECRET_KEY is not: the suite needs the merchant's secret key")
    controls = os.environ.get("QIWI_CONTRACT_MOCK_CONTROLS", "auto").strip().lower()
    has_controls = probe_mock_controls(base_url) if controls == "auto" else controls in {"1", "true", "yes"}
    return Target(
        name="remote",
        base_url=base_url.rstrip("/"),
        secret_key=secret_key,
        public_key=os.environ.get("QIWI_PUBLIC_KEY") or None,
        mock_controls=has_controls,
        destructive=has_controls or env_flag("QIWI_CONTRACT_DESTRUCTIVE"),
        secret_key_2=os.environ.get("QIWI_SECRET_KEY_2") or None,
    )


class MockProcess:
    """The command-line mock (``python -m qiwi_bill_mock``) on 127.0.0.1 and a free port, for a ``with`` block.

    A thin layer over ``qiwi_bill_mock.testing.MockProcess`` (which starts, reads and stops the process)
    that passes the suite's merchant and switches, and waits until ``/_mock/health`` answers.
    """

    def __init__(
        self,
        *,
        secret_key: str = MOCK_SECRET_KEY,
        public_key: str = MOCK_PUBLIC_KEY,
        site_id: str = MOCK_SITE_ID,
        broken: Iterable[str] = (),
        notify_url: str | None = None,
        startup_timeout: float = 30.0,
    ) -> None:
        from qiwi_bill_mock.testing import MockProcess as Process

        self.secret_key, self.public_key, self.site_id = secret_key, public_key, site_id
        arguments = ["--host", "127.0.0.1", "--port", "0", "--secret-key", secret_key, "--public-key", public_key]
        arguments += ["--site-id", site_id, "--log-level", "warning"]  # one log line per request is noise here
        if broken:
            arguments += ["--broken", ",".join(broken)]
        if notify_url:
            arguments += ["--notify-url", notify_url]
        # The second merchant comes from a config file (the CLI's own options configure one merchant).
        with tempfile.NamedTemporaryFile("w", suffix=".toml", delete=False) as config:
            config.write("[[merchant]]\n" + "".join(f'{k} = "{v}"\n' for k, v in MOCK_SECOND_MERCHANT.items()))
        self._config = config.name
        arguments += ["--config", self._config]
        # The mock reads QIWI_MOCK_* defaults from the environment; the suite's mock must not inherit a
        # user's database, faults or broken behaviours, so each such variable is blanked.
        blank = {name: "" for name in os.environ if name.startswith("QIWI_MOCK_")}
        self._process = Process(*arguments, env=blank, startup_timeout=startup_timeout)

    @property
    def base_url(self) -> str:
        return self._process.url.rstrip("/")

    def __enter__(self) -> MockProcess:
        self._process.start()
        deadline = time.monotonic() + self._process.startup_timeout
        while not probe_mock_controls(self.base_url):
            if time.monotonic() > deadline:
                self._process.kill()
                raise RuntimeError(f"the mock at {self.base_url} never answered /_mock/health")
            time.sleep(0.05)
        return self

    def __exit__(self, *exc: object) -> None:
        self._process.stop()
        os.unlink(self._config)

    def target(self, *, name: str = "mock-tcp") -> Target:
        return Target(
            name=name,
            base_url=self.base_url,
            secret_key=self.secret_key,
            public_key=self.public_key,
            secret_key_2=MOCK_SECOND_MERCHANT["secret_key"],
        )


def mock_asgi_target(**settings: Any) -> Target:
    """A fresh in-process mock as a target."""
    return Target(
        name="mock-asgi",
        base_url="http://localhost",
        secret_key=settings.get("secret_key", MOCK_SECRET_KEY),
        public_key=settings.get("public_key", MOCK_PUBLIC_KEY),
        app=build_mock_app(**settings),
        secret_key_2=MOCK_SECOND_MERCHANT["secret_key"],
    )
