"""A client factory for the generated ``qiwi_bill_client``: finite timeout, bounded retries, no secret in reprs.

The generated ``AuthenticatedClient`` defaults to no timeout at all and its attrs ``repr`` prints
``token='<the secret key>'``. Generated code is never edited, so :class:`QiwiClient` subclasses it: every generated
operation accepts it, ``repr`` hides the key, and its httpx clients retry the inherently idempotent calls.
"""

from __future__ import annotations

import asyncio
import math
import random
import time
from typing import Any

import httpx
from attrs import define, field

from qiwi_bill_client import AuthenticatedClient

from ._errors import InvalidFieldError

__all__ = ["DEFAULT_API_BASE_URL", "DEFAULT_TIMEOUT", "QiwiClient", "make_client"]

#: The API host; the generated operations add ``/partner/bill/v1/bills/...``.
DEFAULT_API_BASE_URL = "https://api.qiwi.com"
#: Seconds for each of connect, read, write and pool (the node-qiwi-sdk default is 10 s).
DEFAULT_TIMEOUT = 10.0

# Every PUT of this API is keyed by the caller's id (`PUT bills/{billId}`, `PUT .../refunds/{refundId}`): repeating
# it returns the stored object instead of creating a second one (API doc; docs/sources.md, Decisions), so PUT and GET
# are safe to repeat. `POST .../reject` is not retried: the API does not promise its idempotency.
_RETRY_METHODS = frozenset({"GET", "HEAD", "PUT"})
# QIWI's legacy error list marks internal.error / internal.invoicing.* (5xx) as worth retrying.
_RETRY_STATUSES = frozenset({500, 502, 503, 504})
# Failures where the request may not have been processed, or repeating it is harmless for the methods above.
_RETRY_ERRORS = (httpx.TimeoutException, httpx.NetworkError, httpx.RemoteProtocolError)
_MAX_DELAY = 8.0


def _delay(attempt: int, backoff: float, response: httpx.Response | None) -> float:
    retry_after = response.headers.get("Retry-After") if response is not None else None
    if retry_after is not None and retry_after.isdigit():
        return min(float(retry_after), _MAX_DELAY)
    # Exponential backoff with full jitter, capped.
    return random.uniform(0, min(backoff * 2**attempt, _MAX_DELAY))  # jitter, not cryptography


def _should_retry(request: httpx.Request, attempt: int, retries: int) -> bool:
    return attempt < retries and request.method in _RETRY_METHODS


class _RetryingClient(httpx.Client):
    def __init__(self, *, retries: int, backoff: float, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._retries = retries
        self._backoff = backoff

    def send(self, request: httpx.Request, **kwargs: Any) -> httpx.Response:
        attempt = 0
        while True:
            try:
                response = super().send(request, **kwargs)
            except _RETRY_ERRORS:
                if not _should_retry(request, attempt, self._retries):
                    raise
                time.sleep(_delay(attempt, self._backoff, None))
            else:
                if response.status_code not in _RETRY_STATUSES or not _should_retry(request, attempt, self._retries):
                    return response
                response.close()
                time.sleep(_delay(attempt, self._backoff, response))
            attempt += 1


class _RetryingAsyncClient(httpx.AsyncClient):
    def __init__(self, *, retries: int, backoff: float, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._retries = retries
        self._backoff = backoff

    async def send(self, request: httpx.Request, **kwargs: Any) -> httpx.Response:
        attempt = 0
        while True:
            try:
                response = await super().send(request, **kwargs)
            except _RETRY_ERRORS:
                if not _should_retry(request, attempt, self._retries):
                    raise
                await asyncio.sleep(_delay(attempt, self._backoff, None))
            else:
                if response.status_code not in _RETRY_STATUSES or not _should_retry(request, attempt, self._retries):
                    return response
                await response.aclose()
                await asyncio.sleep(_delay(attempt, self._backoff, response))
            attempt += 1


@define(repr=False)
class QiwiClient(AuthenticatedClient):
    """The generated ``AuthenticatedClient`` with bounded retries and a repr that hides the secret key.

    Build it with :func:`make_client`. Attributes beyond the generated ones: ``retries`` (extra attempts for GET
    and PUT after a transport error or a 500/502/503/504) and ``backoff`` (base seconds of the jittered
    exponential delay, capped at 8 s; ``Retry-After`` seconds win).
    """

    retries: int = field(default=0, kw_only=True)
    backoff: float = field(default=0.5, kw_only=True)

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}(base_url={self._base_url!r}, timeout={self._timeout!r}, "
            f"retries={self.retries!r}, token='***')"
        )

    def _httpx_kwargs(self) -> dict[str, Any]:
        # The same construction as the generated get_httpx_client, including its Authorization header.
        self._headers[self.auth_header_name] = f"{self.prefix} {self.token}" if self.prefix else self.token
        return {
            "base_url": self._base_url,
            "cookies": self._cookies,
            "headers": self._headers,
            "timeout": self._timeout,
            "verify": self._verify_ssl,
            "follow_redirects": self._follow_redirects,
            **self._httpx_args,
        }

    def get_httpx_client(self) -> httpx.Client:
        """The underlying ``httpx.Client`` (retrying when ``retries > 0``), built on first use."""
        if self._client is None:
            self._client = _RetryingClient(retries=self.retries, backoff=self.backoff, **self._httpx_kwargs())
        return self._client

    def get_async_httpx_client(self) -> httpx.AsyncClient:
        """The underlying ``httpx.AsyncClient`` (retrying when ``retries > 0``), built on first use."""
        if self._async_client is None:
            self._async_client = _RetryingAsyncClient(
                retries=self.retries, backoff=self.backoff, **self._httpx_kwargs()
            )
        return self._async_client


def make_client(
    secret_key: str,
    *,
    base_url: str = DEFAULT_API_BASE_URL,
    timeout: float | httpx.Timeout | None = DEFAULT_TIMEOUT,
    retries: int = 0,
    backoff: float = 0.5,
    headers: dict[str, str] | None = None,
    verify_ssl: bool | str = True,
    raise_on_unexpected_status: bool = False,
    httpx_args: dict[str, Any] | None = None,
) -> QiwiClient:
    """A client for every generated operation (``create_bill``, ``get_bill``, ``reject_bill``, refunds).

    Args:
        secret_key: The merchant's secret key, sent as ``Authorization: Bearer <key>``. Never shown in reprs.
        base_url: The API host, e.g. the mock's ``http://127.0.0.1:8080``.
        timeout: Seconds (or an ``httpx.Timeout``) for connect, read, write and pool. ``None`` waits forever
            (the generator's default, not recommended).
        retries: Extra attempts for GET and PUT (create bill and create refund are keyed by your id, so
            repeating them is safe) after a transport error or a 500/502/503/504. ``0`` disables retries.
        backoff: Base delay in seconds of the jittered exponential backoff between attempts.
        headers: Extra headers for every request.
        verify_ssl: TLS verification (``True``, ``False`` or a CA bundle path).
        raise_on_unexpected_status: Raise ``qiwi_bill_client.errors.UnexpectedStatus`` for undocumented statuses.
        httpx_args: More ``httpx.Client`` / ``httpx.AsyncClient`` arguments (``proxy``, ``transport``, ...).

    Returns:
        A :class:`QiwiClient`; use it as a context manager, or call ``get_httpx_client().close()``.

    Raises:
        InvalidFieldError: An argument is invalid.
    """
    if not isinstance(secret_key, str) or not secret_key:
        raise InvalidFieldError("secret_key", "must be a non-empty string")
    if not secret_key.isprintable() or secret_key != secret_key.strip():
        # Never echo the key. Control characters would break (or inject into) the Authorization header.
        raise InvalidFieldError("secret_key", "contains whitespace at the ends or control characters")
    if isinstance(timeout, int | float) and not isinstance(timeout, bool):
        if not (math.isfinite(timeout) and timeout > 0):
            raise InvalidFieldError("timeout", f"must be a positive number of seconds, got {timeout!r}")
        timeout = httpx.Timeout(float(timeout))
    elif timeout is not None and not isinstance(timeout, httpx.Timeout):
        raise InvalidFieldError("timeout", f"expected seconds or an httpx.Timeout, got {type(timeout).__name__}")
    if isinstance(retries, bool) or not isinstance(retries, int) or not 0 <= retries <= 10:
        raise InvalidFieldError("retries", f"must be an integer from 0 to 10, got {retries!r}")
    if isinstance(backoff, bool) or not isinstance(backoff, int | float) or not (0 <= backoff <= 60):
        raise InvalidFieldError("backoff", f"must be 0 to 60 seconds, got {backoff!r}")
    try:
        parts = httpx.URL(base_url) if isinstance(base_url, str) else None
    except httpx.InvalidURL:
        parts = None
    if parts is None or parts.scheme not in ("http", "https") or not parts.host:
        raise InvalidFieldError("base_url", f"expected an absolute http(s) URL, got {base_url!r}")
    return QiwiClient(
        base_url=base_url,
        token=secret_key,
        timeout=timeout,
        headers=dict(headers or {}),
        verify_ssl=verify_ssl,
        raise_on_unexpected_status=raise_on_unexpected_status,
        httpx_args=dict(httpx_args or {}),
        retries=retries,
        backoff=float(backoff),
    )
