"""The pytest plugin (entry point `pytest11`): fixtures `qiwi_mock` and `qiwi_mock_server`, marker `qiwi_mock`.

Installed with the package, active in every pytest run (`-p no:qiwi_bill_mock` turns it off). The kit's modules
are imported only when a fixture is used; loading the plugin still imports the `qiwi_bill_mock` package itself
(its `__init__` imports the app, about half a second), until that `__init__` imports lazily.

- `qiwi_mock` → a `QiwiMock`: an in-process mock with a fresh merchant per test, no socket. Its `client`
  (the generated client), `controls` / `async_controls`, `inbox` (the notifications it POSTed, verified) and
  `requests(...)` (the journal).
- `qiwi_mock_server` → a `MockServer`: a real `qiwi-bill-mock` process on a free port (`url`, `auth_headers`,
  `controls`, `client`), for requests, aiohttp or another language. One process per pytest-xdist worker and
  settings combination, started on first use; the merchant's state is reset after each test.
- `@pytest.mark.qiwi_mock(**options)` configures both: any `Settings` field (`strict_idempotency=True`,
  `unauthorized_body="json"`, `accepted_currencies={"RUB"}`...), the merchant (`secret_key=`, `site_id=`,
  `notify_url=`), and `fail_on_refused=True`. The `qiwi_mock_options` fixture (a dict, `{}` by default) does the
  same from a conftest or `@pytest.mark.parametrize("qiwi_mock_options", [...])`; the marker wins.
- `fail_on_refused` (marker option, `qiwi_mock_options` key, or the ini option `qiwi_mock_fail_on_refused = true`):
  a passing test using `qiwi_mock` or `qiwi_mock_server` fails when the code under test sent a request QIWI would
  have refused (invalid, unauthorized, rejected: see `qiwi_bill_mock.kit.journal`), listing those requests. A
  server process without the journal cannot be checked: the plugin warns instead.
"""

from __future__ import annotations

from collections.abc import Generator, Iterator
from typing import TYPE_CHECKING, Any

import pytest

if TYPE_CHECKING:
    from qiwi_bill_mock.kit.journal import JournalEntry
    from qiwi_bill_mock.kit.mock import QiwiMock
    from qiwi_bill_mock.kit.server import MockServer

__all__ = ["qiwi_mock", "qiwi_mock_options", "qiwi_mock_server"]

_FAIL_ON_REFUSED = "qiwi_mock_fail_on_refused"
_PLUGIN_OPTIONS = frozenset({"fail_on_refused"})


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addini(
        _FAIL_ON_REFUSED,
        "fail a test using qiwi_mock when the code under test sent a request QIWI would have refused",
        type="bool",
        default=False,
    )


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers",
        "qiwi_mock(**options): settings of the qiwi_mock / qiwi_mock_server fixtures (any qiwi_bill_mock.Settings "
        "field, secret_key=, site_id=, notify_url=, fail_on_refused=)",
    )


def _options(request: pytest.FixtureRequest, base: dict[str, Any]) -> dict[str, Any]:
    options = dict(base)
    # Closest marker last: a test's own marker overrides its class's and module's.
    for marker in reversed(list(request.node.iter_markers("qiwi_mock"))):
        if marker.args:
            raise pytest.UsageError("@pytest.mark.qiwi_mock takes keyword options only, e.g. strict_idempotency=True")
        options.update(marker.kwargs)
    return options


def _split(options: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    mock = {k: v for k, v in options.items() if k not in _PLUGIN_OPTIONS}
    plugin = {k: v for k, v in options.items() if k in _PLUGIN_OPTIONS}
    return mock, plugin


def _fail_on_refused(item: pytest.Item) -> bool:
    """The marker's `fail_on_refused` when given, else the ini option."""
    for marker in item.iter_markers("qiwi_mock"):  # closest first
        if "fail_on_refused" in marker.kwargs:
            return bool(marker.kwargs["fail_on_refused"])
    fixture_options = getattr(item, "funcargs", {}).get("qiwi_mock_options") or {}
    if "fail_on_refused" in fixture_options:
        return bool(fixture_options["fail_on_refused"])
    return bool(item.config.getini(_FAIL_ON_REFUSED))


def _journal_position(server: MockServer) -> int | None:
    """The id of the server's newest journal entry (0: none yet); `None` when the server keeps no journal."""
    from qiwi_bill_mock.kit.controls import MockControlError

    try:
        newest = server.controls.requests(include_unauthenticated=True, limit=1)
    except MockControlError as error:
        if error.error_code == "http.url.not.found":
            return None
        raise
    return newest[-1].id if newest else 0


@pytest.fixture
def qiwi_mock_options() -> dict[str, Any]:
    """Options for `qiwi_mock` / `qiwi_mock_server` (override this fixture, or parametrize it); default none."""
    return {}


@pytest.fixture
def qiwi_mock(request: pytest.FixtureRequest, qiwi_mock_options: dict[str, Any]) -> Iterator[QiwiMock]:
    """An in-process QIWI mock with a fresh merchant, its clients, notification inbox and request journal."""
    from qiwi_bill_mock.kit.mock import QiwiMock

    options, _plugin = _split(_options(request, qiwi_mock_options))
    with QiwiMock(**options) as mock:
        request.node.stash[_mock_key] = mock
        yield mock


@pytest.fixture(scope="session")
def _qiwi_mock_servers() -> Iterator[dict[str, MockServer]]:
    servers: dict[str, MockServer] = {}
    try:
        yield servers
    finally:
        for server in servers.values():
            server.close()


@pytest.fixture
def qiwi_mock_server(
    request: pytest.FixtureRequest, qiwi_mock_options: dict[str, Any], _qiwi_mock_servers: dict[str, MockServer]
) -> Iterator[MockServer]:
    """A real `qiwi-bill-mock` process on a free port (one per xdist worker and settings), reset after the test."""
    from qiwi_bill_mock.kit.server import MockServer

    options, _plugin = _split(_options(request, qiwi_mock_options))
    key = repr(sorted((name, _canonical(value)) for name, value in options.items()))
    server = _qiwi_mock_servers.get(key)
    if server is None:
        server = _qiwi_mock_servers[key] = MockServer(**options).start()
    request.node.stash[_server_key] = (server, _journal_position(server))
    try:
        yield server
    finally:
        server.controls.reset()


def _canonical(value: Any) -> str:
    # {"RUB", "KZT"} and {"KZT", "RUB"} are the same settings: one process for both.
    return repr(sorted(value)) if isinstance(value, set | frozenset) else repr(value)


_mock_key = pytest.StashKey["QiwiMock"]()
_server_key = pytest.StashKey["tuple[MockServer, int | None]"]()


def _describe(entry: JournalEntry) -> str:
    cause = f" {dict(entry.cause)}" if entry.cause else ""
    return f"  {entry.method} {entry.path} -> {entry.status_code} {entry.error_code or entry.outcome}{cause}"


def _refused(item: pytest.Item) -> list[JournalEntry]:
    refused: list[JournalEntry] = []
    mock = item.stash.get(_mock_key, None)
    if mock is not None:
        refused += mock.refused()
    server, after = item.stash.get(_server_key, (None, None))
    if server is not None and after is None:
        item.warn(
            pytest.PytestWarning(
                "qiwi_mock fail_on_refused: this qiwi-bill-mock process keeps no request journal "
                "(no GET /_mock/requests), so qiwi_mock_server's requests were not checked"
            )
        )
    elif server is not None:
        refused += server.controls.requests(refused=True, include_unauthenticated=True, after=after)
    return refused


@pytest.hookimpl(wrapper=True)
def pytest_runtest_call(item: pytest.Item) -> Generator[None, None, None]:
    result = yield  # re-raises the test's own failure: only a passing test is checked
    if _fail_on_refused(item):
        refused = _refused(item)
        if refused:
            lines = "\n".join(_describe(entry) for entry in refused)
            pytest.fail(f"the code under test sent {len(refused)} request(s) QIWI would have refused:\n{lines}")
    return result
