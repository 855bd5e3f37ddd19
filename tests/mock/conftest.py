"""Fixtures for the mock's tests."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Iterator
from typing import Any

import httpx
import pytest
from mock_helpers import FakeClock, ThreadServer, make_settings, sequential_ids
from starlette.applications import Starlette

from qiwi_bill_mock import Settings, create_app


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
def serve() -> Iterator[Callable[[Any], ThreadServer]]:
    servers: list[ThreadServer] = []

    def start(app: Any) -> ThreadServer:
        server = ThreadServer(app).__enter__()
        servers.append(server)
        return server

    yield start
    for server in reversed(servers):
        server.__exit__(None, None, None)
