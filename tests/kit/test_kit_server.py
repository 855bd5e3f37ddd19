"""`MockServer`: the real process with one merchant, configured through a TOML file, never argv."""

from __future__ import annotations

import tomllib

import httpx
import pytest

from qiwi_bill_mock import Merchant, SettingsError
from qiwi_bill_mock.kit.server import settings_toml
from qiwi_bill_mock.testing import MockServer, QiwiMock


def test_the_config_file_round_trips_every_kind_of_setting() -> None:
    merchant = Merchant(site_id="s", secret_key='k"ey\\', public_key="p", notify_url="http://127.0.0.1:1/n")
    text = settings_toml(
        merchant,
        {
            "strict_idempotency": True,
            "accepted_currencies": {"RUB", "KZT"},
            "retry_schedule": [1.5, 2],
            "time_scale": 0.5,
        },
    )
    data = tomllib.loads(text)
    assert data["strict_idempotency"] is True
    assert data["accepted_currencies"] == ["KZT", "RUB"]
    assert data["retry_schedule"] == [1.5, 2]
    assert data["merchant"] == [merchant.to_dict()]


def test_bad_settings_fail_before_any_process_starts() -> None:
    with pytest.raises(SettingsError, match="notify_statuses"):
        MockServer(notify_statuses={"WAITING"})
    with pytest.raises(ValueError, match="clock"):
        MockServer(clock=lambda: None)
    with pytest.raises(TypeError, match="object"):
        settings_toml(Merchant(site_id="s", secret_key="k", public_key="p"), {"public_url": object()})


def test_the_process_serves_the_merchant_and_its_key_is_not_on_the_command_line(body_json) -> None:
    with MockServer(site_id="kit-proc") as server:
        assert server.secret_key not in " ".join(server.process.command)
        assert server.secret_key not in repr(server)
        created = httpx.put(f"{server.url}/partner/bill/v1/bills/p-1", json=body_json, headers=server.auth_headers)
        assert created.json()["siteId"] == "kit-proc"
        assert server.controls.pay("p-1").status.value.value == "PAID"
        assert [b.bill_id for b in server.controls.notifications()] == []  # no notify_url: nothing queued
    assert server.process.output  # stopped cleanly, output kept


def test_reprs_never_show_the_secret_key() -> None:
    mock = QiwiMock(secret_key="sk-very-secret")
    assert "sk-very-secret" not in repr(mock)
    assert "sk-very-secret" not in repr(mock.controls)
    mock.close()
