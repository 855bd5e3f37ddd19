"""Fixtures for the mock's tests."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Callable, Iterator
from types import SimpleNamespace
from typing import Any

import httpx
import pytest
from mock_helpers import FakeClock, make_settings, sequential_ids
from starlette.applications import Starlette

from qiwi_bill_mock import Settings, create_app
from qiwi_bill_mock.testing import serve_app


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def settings() -> Settings:
    return make_settings()


@pytest.fixture
def app(settings: Settings, clock: FakeClock) -> Starlette:
    return create_app(settings, clock=clock, id_factory=sequential_ids())


@pytest.fixture
async def client(app: Starlette) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://mock.test") as c:
        yield c


@pytest.fixture
def serve() -> Iterator[Callable[[Any], SimpleNamespace]]:
    """Serve apps on threads (`qiwi_bill_mock.testing.serve_app`) until the test ends; each result has `.url`."""
    with contextlib.ExitStack() as stack:
        yield lambda app: SimpleNamespace(url=stack.enter_context(serve_app(app)))
