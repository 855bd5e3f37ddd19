"""Helpers for the mock's tests: a controllable clock, deterministic ids, a notification receiver."""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from qiwi_bill_mock import Merchant, Settings

SECRET = "test-merchant-secret"
OTHER_SECRET = "other-merchant-secret"
SITE = "270305"
OTHER_SITE = "9hh4jb-00"
AUTH = {"Authorization": f"Bearer {SECRET}"}
OTHER_AUTH = {"Authorization": f"Bearer {OTHER_SECRET}"}
FUTURE = "2030-04-13T14:30:00+03:00"
START = datetime(2026, 3, 1, 9, 0, 0, tzinfo=UTC)


class FakeClock:
    """A clock that moves only when told to."""

    def __init__(self, start: datetime = START) -> None:
        self.now = start

    def __call__(self) -> datetime:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += timedelta(seconds=seconds)


def sequential_ids() -> Callable[[], str]:
    counter = iter(range(1, 1_000_000))
    return lambda: str(uuid.UUID(int=next(counter)))


def make_settings(**overrides: Any) -> Settings:
    merchants = (
        Merchant(site_id=SITE, secret_key=SECRET, public_key="pk-main", notify_url=overrides.pop("notify_url", None)),
        Merchant(site_id=OTHER_SITE, secret_key=OTHER_SECRET, public_key="pk-other"),
    )
    return Settings(merchants=merchants, public_url="http://mock.test", **overrides)


def bill_body(value: Any = "10.00", currency: str = "RUB", **extra: Any) -> dict[str, Any]:
    return {"amount": {"value": value, "currency": currency}, "expirationDateTime": FUTURE, **extra}


class Receiver:
    """A merchant's notification endpoint: records every request, answers from a list of statuses (then 200)."""

    def __init__(self, statuses: list[int] | None = None) -> None:
        self.statuses = list(statuses or [])
        self.requests: list[tuple[dict[str, str], bytes]] = []
        self.received = threading.Event()

        async def notify(request: Request) -> Response:
            self.requests.append((dict(request.headers), await request.body()))
            status = self.statuses.pop(0) if self.statuses else 200
            if status == 200:
                self.received.set()
            return JSONResponse({"error": "0"}, status_code=status)

        self.app = Starlette(routes=[Route("/qiwi/notify", notify, methods=["POST"])])


def wait_for(predicate: Callable[[], bool], timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError("condition not reached in time")
        time.sleep(0.02)
