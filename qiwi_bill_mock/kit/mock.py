"""`QiwiMock`: one in-process mock with a fresh merchant, its clients, its notification inbox and its journal.

Everything a user's test needs, wired once: the app from `create_app()` wrapped in the request journal, served
by an `AppRunner` (lifespan running, so notifications go out by themselves), a `MockTransport` over it, the
generated API client and the `/_mock/` control clients on that transport, and a `NotificationRouter` that delivers
the merchant's notifications in-process to the inbox (or to a receiver the test routes them to).

`mock_qiwi()` adds moto-style interception: while it is active, every httpx request to `https://api.qiwi.com`
(the host QIWI's SDKs and most integrations hard-code) is answered by the mock, through respx; any other host
passes through untouched.

```python
from qiwi_bill_mock.testing import mock_qiwi

with mock_qiwi(secret_key=MY_SETTINGS.qiwi_key) as mock:
    my_shop.checkout(order)  # calls https://api.qiwi.com/partner/bill/v1/bills/... with httpx
    assert mock.requests("createBill")[0].body["amount"] == {"currency": "RUB", "value": "10.00"}
```
"""

from __future__ import annotations

import contextlib
import contextvars
import functools
import inspect
from collections.abc import Callable, Iterator
from datetime import datetime
from typing import Any, TypeVar, cast, overload

import httpx
import respx

from qiwi_bill_mock.app import create_app
from qiwi_bill_mock.kit._merchant import OneMerchant, fresh_merchant
from qiwi_bill_mock.kit.controls import AsyncMockControls
from qiwi_bill_mock.kit.journal import DEFAULT_MAX_ENTRIES, JournalEntry, JournalQuery, with_journal
from qiwi_bill_mock.kit.notifications import NotificationInbox, NotificationRouter, NotificationTarget
from qiwi_bill_mock.kit.transports import AppRunner, MockTransport
from qiwi_bill_mock.settings import Settings

__all__ = ["API_BASE_URL", "DEFAULT_NOTIFY_URL", "QiwiMock", "mock_qiwi"]

#: QIWI's API host (the generated operations add `/partner/bill/v1/bills/...`); the in-process mock's URL.
API_BASE_URL = "https://api.qiwi.com"
#: The fresh merchant's `notify_url`: a reserved `.test` name, delivered in-process, never over the network.
DEFAULT_NOTIFY_URL = "http://merchant.test/qiwi/notify"

F = TypeVar("F", bound=Callable[..., Any])


class QiwiMock(OneMerchant):
    """An in-process mock of the QIWI bill-payments API with one fresh merchant.

    Args:
        secret_key: The merchant's secret key; default a random one in QIWI's P2P key format.
        public_key: The merchant's public key; default random.
        site_id: The merchant's `siteId`; default a unique `kit-xxxxxxxx`.
        notify_url: Where the merchant's notifications go (in-process: see `route_notifications`); `None`
            sends none.
        base_url: The URL the clients use; requests carry its host. `payUrl` starts with it unless `public_url`
            is given.
        clock: An injectable clock (aware datetimes), as for `create_app`.
        id_factory: An injectable id source, as for `create_app`.
        journal_size: Journal entries kept (per merchant).
        **settings: Any other `qiwi_bill_mock.Settings` field: `strict_idempotency=True`,
            `unauthorized_body="json"`, `accepted_currencies={"RUB"}`, `notify_statuses={"PAID", "REJECTED"}`...

    Attributes:
        merchant: The merchant (`secret_key`, `public_key`, `site_id`, `notify_url` are also properties).
        settings: The mock's `Settings`.
        base_url: The URL the clients use.
        journal: The `RequestJournal` wrapping the app (`app` is the same object).
        router: The `NotificationRouter` the app delivers notifications through (`inbox` is its inbox).
        runner: The `AppRunner` serving the app on its own thread.
        transport: A `MockTransport` on that runner, for any httpx client.
    """

    def __init__(
        self,
        *,
        secret_key: str | None = None,
        public_key: str | None = None,
        site_id: str | None = None,
        notify_url: str | None = DEFAULT_NOTIFY_URL,
        base_url: str = API_BASE_URL,
        clock: Callable[[], datetime] | None = None,
        id_factory: Callable[[], str] | None = None,
        journal_size: int = DEFAULT_MAX_ENTRIES,
        **settings: Any,
    ) -> None:
        self.merchant = fresh_merchant(
            secret_key=secret_key, public_key=public_key, site_id=site_id, notify_url=notify_url
        )
        self.base_url = base_url.rstrip("/")
        settings.setdefault("public_url", self.base_url)
        self.settings = Settings(merchants=(self.merchant,), **settings)
        self.router = NotificationRouter(self.settings)
        app = create_app(self.settings, clock=clock, id_factory=id_factory, notify_transport=self.router)
        self.journal = with_journal(app, self.settings, max_entries=journal_size)
        self.runner = AppRunner(self.journal)
        self.transport = MockTransport(self.runner)
        self._async_controls: AsyncMockControls | None = None

    def __repr__(self) -> str:
        return f"QiwiMock(site_id={self.site_id!r}, base_url={self.base_url!r}, secret_key='***')"

    @property
    def app(self) -> Any:
        """The ASGI app (journal included); `app.state.ctx` is the mock's context."""
        return self.journal

    # -- clients ------------------------------------------------------------------------------

    def _endpoint(self) -> tuple[str, Any]:
        return self.base_url, self.transport

    @property
    def async_controls(self) -> AsyncMockControls:
        """The `/_mock/` control client (async), for this merchant."""
        if self._async_controls is None:
            self._async_controls = AsyncMockControls(
                base_url=self.base_url, secret_key=self.secret_key, transport=self.transport
            )
        return self._async_controls

    def http(self, **kwargs: Any) -> httpx.Client:
        """A plain `httpx.Client` on the in-process transport (no key: add your own `Authorization`)."""
        return httpx.Client(transport=self.transport, base_url=self.base_url, **kwargs)

    # -- notifications and journal ------------------------------------------------------------

    @property
    def inbox(self) -> NotificationInbox:
        """Every notification the mock POSTed, verified with the merchant's key."""
        return self.router.inbox

    def route_notifications(self, target: NotificationTarget, url: str | None = None) -> None:
        """Deliver notifications POSTed to `url` (default the merchant's `notify_url`) to `target`.

        `target`: a `qiwi_bill.NotificationReceiver`, an httpx transport (`httpx.ASGITransport(app=your_site)`,
        `httpx.WSGITransport(app=flask_app)`), or a callable taking the `httpx.Request` (see
        `qiwi_bill_mock.kit.notifications`).
        """
        url = url or self.notify_url
        if url is None:
            raise ValueError("this merchant has no notify_url: pass url=")
        self.router.route(url, target)

    def requests(self, operation: str | None = None, **filters: Any) -> list[JournalEntry]:
        """The journal of this merchant's API requests, oldest first, filtered (see `MockControls.requests`)."""
        return self.journal.entries(self.site_id, JournalQuery(operation=operation, **filters))

    def refused(self) -> list[JournalEntry]:
        """Every request QIWI would have refused (invalid, unauthorized, rejected), whatever key it carried."""
        return self.journal.entries(None, JournalQuery(refused=True))

    # -- life cycle ---------------------------------------------------------------------------

    def start(self) -> QiwiMock:
        """Start the app (and its lifespan: notifier, expiry sweeper) on its thread; returns `self`."""
        self.runner.start()
        return self

    def close(self) -> None:
        """Close the clients and stop the app."""
        self._close_clients()
        self.runner.close()

    def __enter__(self) -> QiwiMock:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.close()

    @contextlib.contextmanager
    def intercept(self, base_url: str = API_BASE_URL) -> Iterator[respx.MockRouter]:
        """Answer every httpx request to `base_url`'s host with this mock, for the `with` block (respx).

        Other hosts pass through to the network untouched. Yields the respx router (its `calls` list every
        request it saw).
        """
        router = _Router(assert_all_called=False)
        router.route(host=httpx.URL(base_url).host).mock(side_effect=self._forward)
        router.route().pass_through()
        with router:
            yield router

    def _forward(self, request: httpx.Request) -> Any:
        if _IN_ASYNC.get():
            return self.transport.handle_async_request(request)
        return self.transport.handle_request(request)


# respx calls one side effect for sync and async clients alike; its async handler sets this, so the side effect
# can hand back a coroutine to await instead of blocking the caller's event loop.
_IN_ASYNC: contextvars.ContextVar[bool] = contextvars.ContextVar("qiwi_mock_in_async", default=False)


class _Router(respx.MockRouter):
    async def async_handler(self, request: httpx.Request) -> httpx.Response:
        token = _IN_ASYNC.set(True)
        try:
            return await super().async_handler(request)
        finally:
            _IN_ASYNC.reset(token)


class _Interception:
    """What `mock_qiwi(...)` returns: a context manager, and a decorator making a fresh mock per call."""

    def __init__(self, options: dict[str, Any]) -> None:
        self._options = options
        self._stack: list[contextlib.ExitStack] = []

    def __enter__(self) -> QiwiMock:
        stack = contextlib.ExitStack()
        options = dict(self._options)
        intercepted = options.pop("intercept", API_BASE_URL)
        mock = stack.enter_context(QiwiMock(**options))
        stack.enter_context(mock.intercept(intercepted))
        self._stack.append(stack)
        return mock

    def __exit__(self, *exc: object) -> None:
        self._stack.pop().close()

    def __call__(self, func: F) -> F:
        if inspect.iscoroutinefunction(func):

            @functools.wraps(func)
            async def run_async(*args: Any, **kwargs: Any) -> Any:
                with _Interception(self._options):
                    return await func(*args, **kwargs)

            return cast(F, run_async)

        @functools.wraps(func)
        def run(*args: Any, **kwargs: Any) -> Any:
            with _Interception(self._options):
                return func(*args, **kwargs)

        return cast(F, run)


@overload
def mock_qiwi(func: F, /) -> F: ...


@overload
def mock_qiwi(func: None = None, /, **options: Any) -> _Interception: ...


def mock_qiwi(func: F | None = None, /, **options: Any) -> F | _Interception:
    """Intercept httpx calls to QIWI's API host with a fresh in-process mock (moto style).

    `with mock_qiwi(...) as mock:` yields the `QiwiMock`; `@mock_qiwi` and `@mock_qiwi(...)` decorate a test
    (sync or async) with a fresh mock per call. Options are `QiwiMock`'s (`secret_key=` your code's configured
    key, `strict_idempotency=True`...), plus `intercept=` another base URL than `https://api.qiwi.com`.
    """
    interception = _Interception(options)
    return interception(func) if func is not None else interception
