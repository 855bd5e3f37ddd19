"""`MockServer`: the real `qiwi-bill-mock` process on a free port, with one merchant and its clients.

For code that does not use httpx (requests, aiohttp, another language's SDK): it gets a URL. The merchant and any
`Settings` field go to the process as a TOML `--config` file (never on the command line, where `ps` would show the
secret key); `--port 0` picks a free port, so parallel test workers never collide.

```python
from qiwi_bill_mock.kit.server import MockServer

with MockServer(strict_idempotency=True) as server:
    requests.put(f"{server.url}/partner/bill/v1/bills/b1", json=body, headers=server.auth_headers)
    server.controls.pay("b1")
```
"""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Iterable, Mapping
from typing import Any

from qiwi_bill_mock.kit._merchant import OneMerchant, fresh_merchant
from qiwi_bill_mock.settings import Merchant, Settings

__all__ = ["MockServer", "settings_toml"]

# Settings that only make sense in-process (callables) or that the process owns (its port and URL).
_NOT_FOR_A_PROCESS = frozenset({"clock", "id_factory", "base_url", "journal_size"})


def _toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    if isinstance(value, str):
        return json.dumps(value)  # a JSON string is a valid TOML basic string
    if isinstance(value, Iterable) and not isinstance(value, Mapping):
        items = sorted(value) if isinstance(value, set | frozenset) else list(value)
        return "[" + ", ".join(_toml_value(item) for item in items) + "]"
    raise TypeError(f"cannot write {type(value).__name__} to the mock's TOML config")


def settings_toml(merchant: Merchant, settings: Mapping[str, Any]) -> str:
    """A `qiwi-bill-mock --config` file: `settings` (Settings fields) at the top, then the merchant."""
    Settings(merchants=(merchant,), **settings)  # fail here, with the settings' own message, not in the child
    lines = [f"{name} = {_toml_value(value)}" for name, value in settings.items() if value is not None]
    lines.append("[[merchant]]")
    lines += [f"{name} = {_toml_value(value)}" for name, value in merchant.to_dict().items() if value is not None]
    return "\n".join(lines) + "\n"


class MockServer(OneMerchant):
    """`qiwi-bill-mock` as a child process on 127.0.0.1 and a free port, with one fresh merchant.

    Args:
        secret_key: The merchant's secret key; default random (QIWI's P2P key format).
        public_key: The merchant's public key; default random.
        site_id: The merchant's `siteId`; default a unique `kit-xxxxxxxx`.
        notify_url: Where the merchant's notifications are POSTed (your receiver's URL); default none.
        **settings: Any other `qiwi_bill_mock.Settings` field (`strict_idempotency=True`...).
    """

    def __init__(
        self,
        *,
        secret_key: str | None = None,
        public_key: str | None = None,
        site_id: str | None = None,
        notify_url: str | None = None,
        **settings: Any,
    ) -> None:
        unusable = sorted(_NOT_FOR_A_PROCESS & settings.keys())
        if unusable:
            raise ValueError(f"{', '.join(unusable)} cannot be given to a mock process (in-process qiwi_mock only)")
        self.merchant = fresh_merchant(
            secret_key=secret_key, public_key=public_key, site_id=site_id, notify_url=notify_url
        )
        handle, self._config = tempfile.mkstemp(prefix="qiwi-mock-", suffix=".toml")
        with os.fdopen(handle, "w", encoding="utf-8") as config:
            config.write(settings_toml(self.merchant, settings))
        # The child must not inherit a user's QIWI_MOCK_* database, faults or keys: blank every such variable.
        blank = {name: "" for name in os.environ if name.startswith("QIWI_MOCK_")}
        from qiwi_bill_mock.testing import MockProcess  # testing re-exports this module: import it late

        self.process = MockProcess("--config", self._config, "--request-journal", "--log-level", "warning", env=blank)

    def __repr__(self) -> str:
        return f"MockServer(url={self.url!r}, site_id={self.site_id!r}, secret_key='***')"

    @property
    def url(self) -> str:
        """`http://127.0.0.1:PORT` (empty until started)."""
        return self.process.url.rstrip("/")

    def _endpoint(self) -> tuple[str, Any]:
        return self.url, None

    def start(self) -> MockServer:
        """Start the process and wait until it listens; returns `self`."""
        self.process.start()
        return self

    def close(self) -> None:
        """Stop the process (SIGTERM, then SIGKILL) and remove its config file."""
        self._close_clients()
        try:
            self.process.__exit__(None, None, None)
        finally:
            os.unlink(self._config)

    def __enter__(self) -> MockServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.close()
