"""Security on the real mock process: no one gets in, nothing leaks, loopback by default.

- Every API operation and every `/_mock/` control answers 401 without the right key, before it looks at the bill,
  the body or the id, with the same body for known and unknown bills (no existence oracle). `/_mock/health` is the
  one route without a key: it says only that the mock is up, what its clock reads, how many storage writes failed.
- One merchant's key never reads, pays, rejects, expires or refunds another merchant's bill: 404, as for a bill
  that does not exist, and the other merchant's bill is untouched.
- The secret keys never appear in anything the processes print or log, in any response, page, notification, repr
  or error message: a representative run captures it all and greps for the keys.
- The mock binds 127.0.0.1 unless told otherwise, and warns when it is told otherwise.
"""

from __future__ import annotations

import json
import logging
import subprocess
import sys
from pathlib import Path
from typing import Any

import httpx
import pytest
from conftest import Row, all_mock_output
from rel_procs import (
    PUBLIC_A,
    SECRET_A,
    SECRET_B,
    SITE_A,
    SITE_B,
    MerchantEndpoint,
    MockProcess,
    auth,
    bill_body,
    wait_until,
    write_config,
)

import qiwi_bill
from qiwi_bill import InvalidFieldError, make_client
from qiwi_bill_client.api.bills import create_bill, get_bill
from qiwi_bill_client.models import AmountRequest, CreateBillRequest
from qiwi_bill_mock.__main__ import build_settings, parse_args
from qiwi_bill_mock.settings import Merchant, Settings

API = "/partner/bill/v1/bills"
_VOLATILE = ("traceId", "dateTime")


@pytest.fixture(scope="module")
def secure_mock(module_mock_factory: Any, tmp_path_factory: pytest.TempPathFactory, merchant: MerchantEndpoint) -> Any:
    """Merchants A and B, debug logging (the most output there is to leak into), two workers."""
    tmp = tmp_path_factory.mktemp("security")
    config = write_config(tmp / "m.toml", notify_url=merchant.url)
    args = ["--db", str(tmp / "m.db"), "--config", str(config), "--workers", "2", "--log-level", "debug"]
    args += ["--unauthorized-body", "json"]  # the 401s below are compared body by body (the default is empty)
    return module_mock_factory(args)


def _routes(bill_id: str) -> list[tuple[str, str, dict[str, Any] | None]]:
    refund = {"amount": {"value": "1.00", "currency": "RUB"}}
    return [
        ("PUT", f"{API}/{bill_id}", bill_body()),
        ("GET", f"{API}/{bill_id}", None),
        ("POST", f"{API}/{bill_id}/reject", None),
        ("PUT", f"{API}/{bill_id}/refunds/r1", refund),
        ("GET", f"{API}/{bill_id}/refunds/r1", None),
        ("POST", f"/_mock/bills/{bill_id}/pay", None),
        ("POST", f"/_mock/bills/{bill_id}/expire", None),
        ("POST", "/_mock/clock/advance", {"seconds": 86400 * 365}),
        ("GET", "/_mock/notifications", None),
        ("POST", "/_mock/reset", None),
    ]


_BAD_AUTH: list[dict[str, str]] = [
    {},
    {"Authorization": ""},
    {"Authorization": "Bearer"},
    {"Authorization": "Bearer wrong-key"},
    {"Authorization": f"Basic {SECRET_A}"},
    {"Authorization": f"Bearer {SECRET_A.upper()}"},
    {"Authorization": f"Bearer {SECRET_A[:-1]}"},
    {"Authorization": f"Bearer {SECRET_A}x"},
    {"Authorization": f"Bearer {PUBLIC_A}"},
    {"Authorization": f"Token {SECRET_A}"},
    {"X-Api-Key": SECRET_A},
]


def test_every_route_answers_401_without_the_right_key(scale: str, secure_mock: MockProcess, row: Row) -> None:
    """401 with QIWI's body on every API and control route, for known and unknown bills alike, before any check."""
    with httpx.Client(base_url=secure_mock.url, trust_env=False, timeout=30) as client:
        known = f"sec-known-{scale}"
        assert client.put(f"{API}/{known}", json=bill_body(), headers=auth(SECRET_A)).status_code == 200
        before = client.get(f"{API}/{known}", headers=auth(SECRET_A)).json()
        ids = [known, f"sec-unknown-{scale}", "x" * 10_000, "%FF", "..%2F.."]
        answers: dict[tuple[str, str], list[dict[str, Any]]] = {}
        count = 0
        bad_auth = _BAD_AUTH if scale == "full" else _BAD_AUTH[::3]
        for headers in bad_auth:
            for bill_id in ids:
                for method, path, body in _routes(bill_id):
                    # Invalid bodies too: auth comes first, so a 400 would reveal that the key was not looked at.
                    content = json.dumps(body).encode() if body is not None and bill_id != ids[-1] else b"{not json"
                    r = client.request(
                        method, path, content=content, headers={**headers, "Content-Type": "application/json"}
                    )
                    count += 1
                    assert r.status_code == 401, f"{method} {path[:80]} with {headers}: {r.status_code}"
                    data = r.json()
                    assert data["errorCode"] == "auth.unauthorized"
                    answers.setdefault((method, path.replace(bill_id, "{id}")), []).append(
                        {k: v for k, v in data.items() if k not in _VOLATILE}
                    )
        after = client.get(f"{API}/{known}", headers=auth(SECRET_A)).json()
        health = client.get("/_mock/health")
    row.requests = count
    row.faults = count
    # No existence oracle: every 401 body is the same, whatever the bill, the route or the key.
    distinct = {json.dumps(a, sort_keys=True) for group in answers.values() for a in group}
    assert len(distinct) == 1, distinct
    assert after == before, "an unauthorized request changed the bill"
    # The one keyless route says nothing about anyone's data.
    assert health.status_code == 200
    # Issue 16 item 12 added a count of storage failures: a number, no merchant data.
    assert set(health.json()) == {"status", "dateTime", "storageFailures"}
    assert type(health.json()["storageFailures"]) is int


def test_one_merchant_never_touches_another_merchants_bill(scale: str, secure_mock: MockProcess, row: Row) -> None:
    """B's key on A's bill: 404 like a bill that does not exist, for read, pay, reject, expire, refunds."""
    bill_id = f"sec-owned-{scale}"
    count = 0
    with httpx.Client(base_url=secure_mock.url, trust_env=False, timeout=30) as client:
        a, b = auth(SECRET_A), auth(SECRET_B)
        assert client.put(f"{API}/{bill_id}", json=bill_body("55.00"), headers=a).status_code == 200
        original = client.get(f"{API}/{bill_id}", headers=a).json()
        refund = {"amount": {"value": "1.00", "currency": "RUB"}}
        attempts = [
            ("GET", f"{API}/{bill_id}", None),
            ("POST", f"{API}/{bill_id}/reject", None),
            ("POST", f"/_mock/bills/{bill_id}/pay", None),
            ("POST", f"/_mock/bills/{bill_id}/expire", None),
            ("PUT", f"{API}/{bill_id}/refunds/b-r1", refund),
            ("GET", f"{API}/{bill_id}/refunds/b-r1", None),
        ]

        def as_unknown(method: str, path: str, body: Any) -> tuple[int, str]:
            r = client.request(method, path.replace(bill_id, f"{bill_id}-nope"), json=body, headers=b)
            return r.status_code, r.json()["errorCode"]

        for method, path, body in attempts:
            r = client.request(method, path, json=body, headers=b)
            count += 2
            assert (r.status_code, r.json()["errorCode"]) == (404, "api.invoice.not.found"), f"{method} {path}"
            assert (r.status_code, r.json()["errorCode"]) == as_unknown(method, path, body)
        assert client.get(f"{API}/{bill_id}", headers=a).json() == original
        # Paid by A, then B tries to refund and read the refund of A.
        assert client.post(f"/_mock/bills/{bill_id}/pay", headers=a).status_code == 200
        assert client.put(f"{API}/{bill_id}/refunds/a-r1", json=refund, headers=a).status_code == 200
        for method, path, body in [
            ("PUT", f"{API}/{bill_id}/refunds/b-r2", refund),
            ("GET", f"{API}/{bill_id}/refunds/a-r1", None),
            ("POST", f"{API}/{bill_id}/reject", None),
        ]:
            r = client.request(method, path, json=body, headers=b)
            count += 1
            assert r.status_code == 404, f"{method} {path}: {r.status_code}"
        paid = client.get(f"{API}/{bill_id}", headers=a).json()
        # B may use the same billId for a bill of its own: a separate bill, and A's is unchanged.
        mine = client.put(f"{API}/{bill_id}", json=bill_body("1.00"), headers=b)
        assert mine.status_code == 200
        assert mine.json()["siteId"] == SITE_B
        assert mine.json()["amount"]["value"] == "1.00"
        assert client.get(f"{API}/{bill_id}", headers=a).json() == paid
        assert paid["siteId"] == SITE_A
        assert paid["status"]["value"] == "PAID"
        # B sees none of A's notifications, and B's reset leaves A's bills alone.
        wait_until(lambda: bool(client.get("/_mock/notifications", headers=a).json()["deliveries"]), timeout=20)
        b_deliveries = client.get("/_mock/notifications", headers=b).json()["deliveries"]
        assert all(d["billId"] != bill_id or d["status"] != "PAID" for d in b_deliveries)
        assert client.post("/_mock/reset", headers=b).status_code == 200
        assert client.get(f"{API}/{bill_id}", headers=a).status_code == 200
        assert client.get(f"{API}/{bill_id}/refunds/a-r1", headers=a).status_code == 200
        assert client.get(f"{API}/{bill_id}", headers=b).status_code == 404
        count += 12
    row.requests = count
    row.faults = count


def _listening_addresses(port: int) -> set[str]:
    """Local addresses with a TCP socket listening on `port` (from /proc/net/tcp and tcp6)."""
    found = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            lines = Path(table).read_text().splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            fields = line.split()
            local, state = fields[1], fields[3]
            address, _, hex_port = local.partition(":")
            if state == "0A" and int(hex_port, 16) == port:  # 0A: LISTEN
                found.add(address)
    return found


def test_binds_loopback_by_default_and_warns_otherwise(
    mock_factory: Any, tmp_path: Path, scale: str, row: Row, monkeypatch: pytest.MonkeyPatch
) -> None:
    """No `--host`: 127.0.0.1 only. `--host 0.0.0.0`: it does, and says loudly that it is reachable."""
    monkeypatch.delenv("QIWI_MOCK_HOST", raising=False)  # an inherited setting must not decide this test
    config = write_config(tmp_path / "m.toml")
    default: MockProcess = mock_factory(["--config", str(config)], host=None)
    port = int(default.url.rsplit(":", 1)[1])
    assert default.url.startswith("http://127.0.0.1:")
    assert _listening_addresses(port) == {"0100007F"}  # 127.0.0.1, little-endian hex
    assert "WARNING" not in default.output
    default.stop()

    exposed: MockProcess = mock_factory(["--config", str(config)], host="0.0.0.0")
    port = int(exposed.url.rsplit(":", 1)[1])
    assert _listening_addresses(port) == {"00000000"}
    output = exposed.output
    assert "WARNING" in output
    assert "reachable from the network" in output
    row.requests = 2


_KEYS = (SECRET_A, SECRET_B)


def _leaks(text: str) -> list[str]:
    """Where a secret key (or a recognisable part of it) shows up in `text`."""
    found = []
    for key in _KEYS:
        for fragment in (key, key[-16:], key[:16]):
            index = text.find(fragment)
            if index >= 0:
                found.append(f"{fragment!r} at {index}: ...{text[max(0, index - 60) : index + 60]!r}...")
    return found


def test_secret_keys_never_appear_in_any_output(
    scale: str,
    secure_mock: MockProcess,
    mock_factory: Any,
    merchant: MerchantEndpoint,
    tmp_path: Path,
    capfd: pytest.CaptureFixture[str],
    caplog: pytest.LogCaptureFixture,
    row: Row,
) -> None:
    """A representative run: API calls (ok, invalid, unauthorized, cross-merchant), payments and their signed
    notifications, refunds, payment pages, the client's and settings' reprs and errors, a mock started with the key
    on its command line. Everything captured is grepped for the keys."""
    caplog.set_level(logging.DEBUG)
    captured: list[str] = []
    bill_id = f"sec-leak-{scale}"
    with httpx.Client(base_url=secure_mock.url, trust_env=False, timeout=30) as raw:
        for headers in (auth(SECRET_A), auth(SECRET_B), {"Authorization": f"Bearer {SECRET_A}-wrong"}, {}):
            for method, path, body in _routes(bill_id):
                if path.startswith("/_mock/reset") or path.startswith("/_mock/clock"):
                    continue
                r = raw.request(method, path, json=body, headers=headers)
                captured.append(f"{r.status_code} {r.headers} {r.text}")
        r = raw.put(
            f"{API}/{bill_id}-bad", content=b"{broken", headers={**auth(SECRET_A), "Content-Type": "application/json"}
        )
        captured.append(r.text)
        assert raw.put(f"{API}/{bill_id}-2", json=bill_body("4.00"), headers=auth(SECRET_A)).status_code == 200
        paid = raw.post(f"/_mock/bills/{bill_id}-2/pay", headers=auth(SECRET_A))
        captured.append(paid.text)
        created = raw.put(f"{API}/{bill_id}-3", json=bill_body("5.00", comment="leak check"), headers=auth(SECRET_A))
        pay_url = created.json()["payUrl"]
        for url in (pay_url, pay_url + "&successUrl=https%3A%2F%2Fshop.example%2Fok", "/form/?invoice_uid=nope"):
            page = raw.get(url)
            captured.append(f"{page.status_code} {page.headers} {page.text}")
        token = raw.get(pay_url).text.partition('name="token" value="')[2].partition('"')[0]  # Pay needs the page's
        form = raw.post(pay_url.replace("/form/?", "/form/pay?"), data={"token": token})
        captured.append(f"{form.status_code} {form.headers} {form.text}")
        create_page = raw.get("/create", params={"publicKey": PUBLIC_A, "amount": "3.00", "comment": "c"})
        captured.append(f"{create_page.status_code} {create_page.headers} {create_page.text}")
        expected = {f"{bill_id}-2", f"{bill_id}-3"}  # paid by the control and by the payment form

        def notified() -> set[str]:
            return {b["bill"]["billId"] for b in merchant.bodies()} & expected

        assert wait_until(lambda: notified() == expected, timeout=30), f"notified: {notified()}"
        captured.append(json.dumps(raw.get("/_mock/notifications", headers=auth(SECRET_A)).json()))

    # The client, its reprs and its errors.
    client = make_client(SECRET_A, base_url=secure_mock.url, retries=1, backoff=0.01)
    with client:
        request = CreateBillRequest(amount=AmountRequest(currency="RUB", value="9.00"), expiration_date_time=_future())
        captured.append(repr(create_bill.sync_detailed(f"{bill_id}-4", client=client, body=request)))
        captured.append(repr(get_bill.sync_detailed(f"{bill_id}-missing", client=client)))
        captured += [repr(client), str(client), repr(client.get_httpx_client())]
    for bad in ({"timeout": -1}, {"base_url": "ftp://x"}, {"retries": 99}):
        with pytest.raises(InvalidFieldError) as error:
            make_client(SECRET_A, **bad)
        captured += [str(error.value), repr(error.value)]
    with pytest.raises(InvalidFieldError) as error:
        make_client(f" {SECRET_A}\n")
    captured.append(str(error.value))
    with pytest.raises(qiwi_bill.InvalidSignatureError) as sig_error:
        qiwi_bill.parse_notification(merchant.received[0].body, "0" * 64, secret=SECRET_A)
    captured.append(str(sig_error.value))

    # Settings and merchants: reprs, and errors about them.
    merchant_a = Merchant(site_id=SITE_A, secret_key=SECRET_A, public_key=PUBLIC_A)
    settings = Settings(merchants=[merchant_a, Merchant(site_id=SITE_B, secret_key=SECRET_B, public_key="pb")])
    captured += [repr(merchant_a), str(merchant_a), repr(settings), str(settings)]
    with pytest.raises(ValueError, match="share") as dup:
        Settings(merchants=[merchant_a, Merchant(site_id="other", secret_key=SECRET_A, public_key="pk2")])
    captured.append(str(dup.value))
    cli_settings, _ = build_settings(parse_args(["--secret-key", SECRET_A]), public_url="http://127.0.0.1:1")
    captured.append(repr(cli_settings))

    # The key on a mock's command line: a refused start (the key clashes with the config's) and a normal one.
    config = write_config(tmp_path / "cli.toml")
    clash = subprocess.run(
        [sys.executable, "-m", "qiwi_bill_mock", "--port", "0", "--config", str(config), "--secret-key", SECRET_A],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert clash.returncode != 0
    assert "share the same secret_key" in clash.stderr
    captured += [clash.stdout, clash.stderr]
    keyed: MockProcess = mock_factory(["--secret-key", SECRET_B, "--site-id", "cli-site"])
    r = httpx.get(f"{keyed.url}{API}/{bill_id}", headers=auth(SECRET_B), trust_env=False)
    assert r.status_code == 404
    captured.append(r.text)
    keyed.stop()

    # Notifications as the merchant received them: bodies and headers (the signature, never the key).
    for received in merchant.received:
        captured.append(f"{received.headers} {received.body.decode('utf-8', 'replace')}")
    assert merchant.received, "no notification was delivered: that part of the run did not happen"

    out, err = capfd.readouterr()
    everything = {
        "responses, pages, reprs, errors": "\n".join(captured),
        "this test's stdout/stderr": out + err,
        "this test's log records": caplog.text,
        "mock processes of this session (stdout, stderr, logs)": all_mock_output(),
    }
    row.requests = len(captured)
    leaks = {where: found for where, text in everything.items() if (found := _leaks(text))}
    row.lost = sum(len(found) for found in leaks.values())
    assert not leaks, json.dumps(leaks, indent=2, ensure_ascii=False)
    # The capture is real: the mock's debug log and the access lines are in it.
    assert "qiwi_bill_mock.access" in everything["mock processes of this session (stdout, stderr, logs)"]


def _future() -> Any:
    import datetime as dt

    return dt.datetime.now(dt.UTC) + dt.timedelta(days=2)
