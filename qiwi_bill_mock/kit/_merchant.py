"""The one merchant of a kit mock (`QiwiMock`, `MockServer`): made fresh per mock, its keys and clients."""

from __future__ import annotations

import secrets
from typing import Any

import httpx

from qiwi_bill import QiwiClient, make_client
from qiwi_bill_mock.kit.controls import MockControls
from qiwi_bill_mock.settings import Merchant, demo_merchant

__all__ = ["OneMerchant", "fresh_merchant"]


def fresh_merchant(
    *, secret_key: str | None, public_key: str | None, site_id: str | None, notify_url: str | None
) -> Merchant:
    """A merchant with the given fields, the rest fresh: random keys in QIWI's P2P format, a `kit-xxxxxxxx` site."""
    fresh = demo_merchant(site_id=site_id or f"kit-{secrets.token_hex(4)}")
    return Merchant(
        site_id=fresh.site_id,
        secret_key=secret_key or fresh.secret_key,
        public_key=public_key or fresh.public_key,
        notify_url=notify_url,
    )


class OneMerchant:
    """Base of a mock with one merchant (`self.merchant`): its fields, and the clients acting as it.

    Subclasses say where the clients go (`_endpoint()`); the clients are built on first use and closed by
    `_close_clients()`.
    """

    merchant: Merchant
    _client: QiwiClient | None = None
    _controls: MockControls | None = None

    def _endpoint(self) -> tuple[str, Any]:
        """The base URL the clients use, and the httpx transport (`None`: the network)."""
        raise NotImplementedError

    @property
    def client(self) -> QiwiClient:
        """The generated client (`qiwi_bill.make_client`) for this merchant: `sync()` and `asyncio()` both work."""
        if self._client is None:
            base_url, transport = self._endpoint()
            extra = {} if transport is None else {"transport": transport}
            self._client = make_client(self.secret_key, base_url=base_url, httpx_args=extra)
        return self._client

    @property
    def controls(self) -> MockControls:
        """The `/_mock/` control client (sync) for this merchant."""
        if self._controls is None:
            base_url, transport = self._endpoint()
            self._controls = MockControls(base_url=base_url, secret_key=self.secret_key, transport=transport)
        return self._controls

    def _close_clients(self) -> None:
        if self._controls is not None:
            self._controls.close()
        if self._client is not None:
            client: httpx.Client = self._client.get_httpx_client()
            client.close()

    @property
    def secret_key(self) -> str:
        """The merchant's secret key (bearer token, notification HMAC key)."""
        return self.merchant.secret_key

    @property
    def public_key(self) -> str:
        """The merchant's public key (payment form)."""
        return self.merchant.public_key

    @property
    def site_id(self) -> str:
        """The merchant's `siteId`."""
        return self.merchant.site_id

    @property
    def notify_url(self) -> str | None:
        """Where the merchant's notifications go."""
        return self.merchant.notify_url

    @property
    def auth_headers(self) -> dict[str, str]:
        """`{"Authorization": "Bearer <secret key>"}` for any HTTP client."""
        return {"Authorization": f"Bearer {self.secret_key}"}
