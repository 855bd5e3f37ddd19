"""`qiwi_bill_mock.testing`: the helpers users (and our own suites) run the mock with."""

from __future__ import annotations

import os
import re

import httpx
import pytest

from qiwi_bill_mock import Merchant, Settings, create_app
from qiwi_bill_mock.testing import MockProcess, MockProcessError, bind_free_port, serve_app, wait_for_line

BODY = {"amount": {"currency": "RUB", "value": "1.00"}, "expirationDateTime": "2030-01-01T00:00:00+03:00"}
AUTH = {"Authorization": "Bearer sk-testing"}


def test_serve_app_runs_the_app_on_a_thread_and_knows_its_url_in_advance() -> None:
    sock = bind_free_port()
    expected = f"http://127.0.0.1:{sock.getsockname()[1]}"
    merchant = Merchant(site_id="1", secret_key="sk-testing", public_key="pk")
    app = create_app(Settings(merchants=[merchant], public_url=expected))
    with serve_app(app, sock=sock) as url:
        assert url == expected
        bill = httpx.put(f"{url}/partner/bill/v1/bills/b1", json=BODY, headers=AUTH).json()
        assert bill["payUrl"].startswith(f"{expected}/form/?invoice_uid=")
    with pytest.raises(httpx.ConnectError):
        httpx.get(f"{url}/_mock/health", timeout=2)


def test_mock_process_starts_the_cli_logs_trace_ids_and_stops_cleanly() -> None:
    with MockProcess("--secret-key", "sk-testing", "--site-id", "1") as mock:
        response = httpx.get(f"{mock.url}/partner/bill/v1/bills/missing", headers=AUTH)
        assert response.status_code == 404
        trace_id = response.json()["traceId"]
        assert trace_id in wait_for_line(mock, re.escape(trace_id))
        assert mock.stop() == 0
    assert "sk-testing" not in mock.output


def test_kill_is_a_kill_9_of_the_group_and_restart_keeps_the_database(tmp_path) -> None:
    db = str(tmp_path / "bills.sqlite3")
    mock = MockProcess("--secret-key", "sk-testing", "--db", db, "--workers", "2").start()
    try:
        assert httpx.put(f"{mock.url}/partner/bill/v1/bills/kept", json=BODY, headers=AUTH).status_code == 200
        pid = mock.pid
        mock.kill()
        with pytest.raises(ProcessLookupError):
            os.killpg(pid, 0)  # no process of the group is left
        mock.restart()
        assert httpx.get(f"{mock.url}/partner/bill/v1/bills/kept", headers=AUTH).json()["billId"] == "kept"
    finally:
        mock.stop()


def test_a_mock_that_cannot_start_raises_with_its_output() -> None:
    with pytest.raises(MockProcessError, match="did not start") as info:
        MockProcess("--broken", "no-such-behaviour", startup_timeout=20).start()
    assert "no-such-behaviour" in str(info.value)


def test_the_testing_module_exports_the_kit_explicitly() -> None:
    import qiwi_bill_mock.testing as testing
    from qiwi_bill_mock.kit import controls, journal, mock, notifications, server, transports

    exported = set(testing.__all__)
    assert len(exported) == len(testing.__all__)
    # Nothing these helpers offered before the kit is lost.
    assert {"MockProcess", "MockProcessError", "bind_free_port", "serve_app", "wait_for_line"} <= exported
    # Every other name is one a kit module itself declares public.
    kit = set().union(*(module.__all__ for module in (controls, journal, mock, notifications, server, transports)))
    assert exported - {"MockProcess", "MockProcessError", "bind_free_port", "serve_app", "wait_for_line"} <= kit
    assert {"QiwiMock", "mock_qiwi", "MockTransport", "MockControls", "MockServer", "RequestJournal"} <= exported
    for name in testing.__all__:
        assert getattr(testing, name) is not None
