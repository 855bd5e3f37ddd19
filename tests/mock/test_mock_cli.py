"""The command line: first-line contract, demo merchant, clean shutdown, kill -9 durability, workers, config."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest
from mock_helpers import bill_body

from qiwi_bill_mock.__main__ import build_settings, parse_args

BILLS = "/partner/bill/v1/bills"
FIRST_LINE = re.compile(r"^qiwi-bill-mock listening on (http://127\.0\.0\.1:(\d+))$")


@contextmanager
def running(
    tmp_path: Path, *args: str, env: dict[str, str] | None = None
) -> Iterator[tuple[subprocess.Popen[str], str]]:
    stderr = (tmp_path / "stderr.log").open("w")
    proc = subprocess.Popen(
        [sys.executable, "-m", "qiwi_bill_mock", "--port", "0", *args],
        stdout=subprocess.PIPE,
        stderr=stderr,
        text=True,
        env={**os.environ, **(env or {})},
    )
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline().rstrip("\n")
        match = FIRST_LINE.match(line)
        assert match, f"unexpected first line {line!r}; stderr: {(tmp_path / 'stderr.log').read_text()}"
        assert int(match.group(2)) > 0
        yield proc, match.group(1)
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.wait(10)
        assert proc.stdout is not None
        proc.stdout.close()
        stderr.close()


def _stop(proc: subprocess.Popen[str]) -> int:
    proc.send_signal(signal.SIGTERM)
    return proc.wait(15)


def test_demo_merchant_port_zero_and_clean_shutdown(tmp_path: Path) -> None:
    with running(tmp_path) as (proc, url):
        assert proc.stdout is not None
        assert proc.stdout.readline().startswith("demo merchant: siteId=demo-00")
        secret = proc.stdout.readline().rsplit(" ", 1)[1].strip()
        assert proc.stdout.readline().startswith("  public key")
        assert httpx.get(f"{url}/_mock/health").json()["status"] == "ok"
        created = httpx.put(f"{url}{BILLS}/b1", json=bill_body(), headers={"Authorization": f"Bearer {secret}"})
        assert created.status_code == 200
        assert created.json()["payUrl"].startswith(f"{url}/form/?invoice_uid=")
        trace_id = created.headers["x-trace-id"]
        assert _stop(proc) == 0
    log = (tmp_path / "stderr.log").read_text()
    assert trace_id in log
    assert secret not in log


def test_acknowledged_data_survives_kill_9(tmp_path: Path) -> None:
    db = str(tmp_path / "mock.db")
    env = {"QIWI_MOCK_SECRET_KEY": "sk-live", "QIWI_MOCK_SITE_ID": "270305"}
    auth = {"Authorization": "Bearer sk-live"}
    with running(tmp_path, "--db", db, env=env) as (proc, url):
        for n in range(20):
            assert httpx.put(f"{url}{BILLS}/b{n}", json=bill_body(), headers=auth).status_code == 200
        assert httpx.post(f"{url}/_mock/bills/b7/pay", headers=auth).status_code == 200
        proc.send_signal(signal.SIGKILL)
        proc.wait(10)
    with running(tmp_path, "--db", db, env=env) as (proc, url):
        assert httpx.get(f"{url}{BILLS}/b19", headers=auth).json()["siteId"] == "270305"
        assert httpx.get(f"{url}{BILLS}/b7", headers=auth).json()["status"]["value"] == "PAID"
        assert _stop(proc) == 0


def test_several_workers_share_one_database(tmp_path: Path) -> None:
    auth = {"Authorization": "Bearer sk"}
    args = ("--workers", "2", "--db", str(tmp_path / "mock.db"), "--secret-key", "sk")
    with running(tmp_path, *args) as (proc, url):
        with httpx.Client(base_url=url, headers=auth) as client:
            for _ in range(100):  # wait until both workers answer
                if client.get("/_mock/health").status_code == 200:
                    break
            with ThreadPoolExecutor(8) as pool:
                bills = list(pool.map(lambda _: client.put(f"{BILLS}/same", json=bill_body("10.00")).json(), range(16)))
                assert all(b == bills[0] for b in bills)
                client.post("/_mock/bills/same/pay").raise_for_status()
                refund = {"amount": {"value": "1.00", "currency": "RUB"}}
                codes = list(
                    pool.map(lambda n: client.put(f"{BILLS}/same/refunds/r{n}", json=refund).status_code, range(12))
                )
            assert codes.count(200) == 10
            assert codes.count(400) == 2
        assert _stop(proc) == 0


def test_config_file_with_several_merchants(tmp_path: Path) -> None:
    config = tmp_path / "merchants.toml"
    config.write_text(
        'public_url = "https://pay.example.test"\n'
        'notify_statuses = ["PAID", "REJECTED"]\n'
        '[[merchant]]\nsite_id = "1"\nsecret_key = "sk-1"\npublic_key = "pk-1"\n'
        '[[merchant]]\nsite_id = "2"\nsecret_key = "sk-2"\npublic_key = "pk-2"\nnotify_url = "http://127.0.0.1:9/n"\n'
        '[[fault]]\nroute = "getBill"\nlatency = 0.0\n'
    )
    settings, demo = build_settings(parse_args(["--config", str(config), "--time-scale", "0.5"]), public_url="x")
    assert demo is None
    assert [m.site_id for m in settings.merchants] == ["1", "2"]
    assert settings.public_url == "https://pay.example.test"
    assert settings.notify_statuses == {"PAID", "REJECTED"}
    assert settings.time_scale == 0.5
    assert settings.faults[0].route == "getBill"
    with running(tmp_path, "--config", str(config)) as (proc, url):
        headers = {"Authorization": "Bearer sk-2"}
        bill = httpx.put(f"{url}{BILLS}/b", json=bill_body(), headers=headers).json()
        assert bill["siteId"] == "2"
        assert bill["payUrl"].startswith("https://pay.example.test/form/")
        assert httpx.get(f"{url}{BILLS}/b", headers={"Authorization": "Bearer sk-1"}).status_code == 404
        assert _stop(proc) == 0


@pytest.mark.parametrize(
    ("args", "body"),
    [([], "empty"), (["--empty-401"], "empty"), (["--unauthorized-body", "json"], "json")],
)
def test_401_body_is_empty_by_default_and_json_on_request(args: list[str], body: str) -> None:
    settings, _ = build_settings(parse_args(["--secret-key", "sk", *args]), public_url="http://x")
    assert settings.unauthorized_body == body


def test_site_id_is_read_from_a_real_format_key() -> None:
    key = (
        "eyJ2ZXJzaW9uIjoiUDJQIiwiZGF0YSI6eyJwYXlpbl9tZXJjaGFudF9zaXRlX3VpZCI6IjloaDRqYi0wMCIsInVzZXJfaWQiOiI3"
        "OTAwMDAwMDAwMCIsInNlY3JldCI6ImFiYyJ9fQ=="
    )
    settings, _ = build_settings(parse_args(["--secret-key", key]), public_url="http://x")
    assert settings.merchants[0].site_id == "9hh4jb-00"


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--broken", "refund_500,nope"], "unknown broken behaviour"),
        (["--workers", "2"], "--db"),
        (["--fault", "error=5"], "between 0 and 1"),
    ],
)
def test_bad_options_fail_at_start(tmp_path: Path, args: list[str], message: str) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "qiwi_bill_mock", "--port", "0", *args], capture_output=True, text=True, timeout=30
    )
    assert result.returncode != 0
    assert message in result.stderr


def test_non_loopback_host_warns(tmp_path: Path) -> None:
    proc = subprocess.Popen(
        [sys.executable, "-m", "qiwi_bill_mock", "--port", "0", "--host", "0.0.0.0"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None
        assert proc.stdout.readline().startswith("qiwi-bill-mock listening on http://0.0.0.0:")
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=15)
        assert "WARNING: qiwi-bill-mock is bound to 0.0.0.0" in err
        assert proc.returncode == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def test_unopenable_database_is_a_clear_error(tmp_path: Path) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "qiwi_bill_mock", "--port", "0", "--db", str(tmp_path / "missing-dir" / "mock.db")],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert result.returncode != 0
    assert "cannot open the database" in result.stderr
    assert "Traceback" not in result.stderr
    assert result.stdout == ""


def test_a_second_mock_on_an_owned_database_refuses_to_start(tmp_path: Path) -> None:
    # One worker owns its file (its GETs skip looking for other writers), so a second mock must not share it.
    db = str(tmp_path / "mock.db")
    with running(tmp_path, "--db", db, "--secret-key", "sk") as (proc, url):
        result = subprocess.run(
            [sys.executable, "-m", "qiwi_bill_mock", "--port", "0", "--db", db],
            capture_output=True,
            text=True,
            timeout=30,
        )
        assert result.returncode != 0
        assert "cannot open the database" in result.stderr
        assert "in use by another process" in result.stderr
        assert "Traceback" not in result.stderr
        auth = {"Authorization": "Bearer sk"}
        assert httpx.put(f"{url}{BILLS}/b1", json=bill_body(), headers=auth).status_code == 200
        assert _stop(proc) == 0
    # Once the owner has exited, the file is free again.
    with running(tmp_path, "--db", db, "--secret-key", "sk") as (proc, url):
        assert httpx.get(f"{url}{BILLS}/b1", headers={"Authorization": "Bearer sk"}).status_code == 200
        assert _stop(proc) == 0


@pytest.mark.parametrize(
    ("argv", "config", "expected"),
    [
        ([], "", "empty"),
        (["--unauthorized-body", "json"], "", "json"),
        (["--empty-401"], "", "empty"),
        ([], "empty_unauthorized_body = false\n", "json"),  # the former config key
        (["--unauthorized-body", "empty"], 'unauthorized_body = "json"\n', "empty"),
    ],
)
def test_the_401_body_options(tmp_path, argv: list[str], config: str, expected: str) -> None:
    if config:
        path = tmp_path / "m.toml"
        path.write_text(config)
        argv = [*argv, "--config", str(path)]
    settings, _ = build_settings(parse_args(argv))
    assert settings.unauthorized_body == expected
    assert settings.public_url is None  # payUrl follows each request's Host unless --public-url is given
