"""The pytest plugin, tested the way users meet it: a test file in a temporary project, run by pytester."""

from __future__ import annotations

import pytest

pytest_plugins = ["pytester"]

HEADER = """
import datetime as dt
import json
import urllib.error
import urllib.request

import pytest

from qiwi_bill_client.api.bills import create_bill
from qiwi_bill_client.models import AmountRequest, CreateBillRequest


def body(value="10.00"):
    return CreateBillRequest(
        amount=AmountRequest(currency="RUB", value=value),
        expiration_date_time=dt.datetime.now(dt.UTC) + dt.timedelta(days=1),
    )
"""


INI = "[pytest]\nasyncio_default_fixture_loop_scope = function\n"


@pytest.fixture(autouse=True)
def _user_ini(pytester: pytest.Pytester) -> None:
    pytester.makeini(INI)  # the user's project: pytest-asyncio configured, nothing of ours


def _run(pytester: pytest.Pytester, source: str, *args: str) -> pytest.RunResult:
    pytester.makepyfile(test_user=HEADER + source)
    return pytester.runpytest("-p", "no:randomly", "-p", "no:cacheprovider", *args)


def test_qiwi_mock_gives_each_test_a_fresh_merchant_with_every_client(pytester: pytest.Pytester) -> None:
    result = _run(
        pytester,
        """
seen = []

def test_create_pay_notify_journal(qiwi_mock):
    bill = create_bill.sync(bill_id="order-1", client=qiwi_mock.client, body=body())
    assert bill.status.value.value == "WAITING"
    assert qiwi_mock.controls.pay("order-1", pay_source="card").status.value.value == "PAID"
    received = qiwi_mock.inbox.wait(bill_id="order-1", status="PAID")
    assert received.verified and received.notification.bill.site_id == qiwi_mock.site_id
    [create] = qiwi_mock.requests("createBill")
    assert create.body["amount"] == {"currency": "RUB", "value": "10.00"}
    seen.append(qiwi_mock.site_id)

def test_the_next_test_has_another_merchant_and_no_bills(qiwi_mock):
    assert qiwi_mock.site_id not in seen
    assert qiwi_mock.controls.bills() == []

@pytest.mark.asyncio
async def test_async(qiwi_mock):
    await create_bill.asyncio(bill_id="a-1", client=qiwi_mock.client, body=body())
    assert (await qiwi_mock.async_controls.pay("a-1")).status.value.value == "PAID"
    assert (await qiwi_mock.inbox.wait_async(bill_id="a-1")).verified
""",
    )
    result.assert_outcomes(passed=3)


def test_settings_come_from_the_marker_and_the_options_fixture(pytester: pytest.Pytester) -> None:
    pytester.makeconftest(
        """
import pytest

@pytest.fixture
def qiwi_mock_options():
    return {"accepted_currencies": {"RUB"}, "site_id": "from-conftest"}
"""
    )
    result = _run(
        pytester,
        """
pytestmark = pytest.mark.qiwi_mock(strict_idempotency=True)

def test_module_marker_and_conftest_options(qiwi_mock):
    assert qiwi_mock.site_id == "from-conftest"
    with qiwi_mock.http(headers={"Authorization": "Bearer " + qiwi_mock.secret_key}) as http:
        assert http.put("/partner/bill/v1/bills/s-1", json=body().to_dict()).status_code == 200
        again = http.put("/partner/bill/v1/bills/s-1", json=body("11.00").to_dict())
        assert (again.status_code, again.json()["errorCode"]) == (409, "api.invoice.already.exists")
        kzt = {**body().to_dict(), "amount": {"currency": "KZT", "value": "1"}}
        kzt = http.put("/partner/bill/v1/bills/s-2", json=kzt)
        assert kzt.status_code == 400

@pytest.mark.qiwi_mock(strict_idempotency=False, unauthorized_body="empty")
def test_the_closest_marker_wins(qiwi_mock):
    assert qiwi_mock.settings.strict_idempotency is False
    with qiwi_mock.http() as http:
        refused = http.get("/partner/bill/v1/bills/x")
    assert (refused.status_code, refused.content) == (401, b"")

@pytest.mark.parametrize("qiwi_mock_options", [{"notify_statuses": {"PAID", "REJECTED"}}])
def test_parametrized_options(qiwi_mock):
    assert qiwi_mock.settings.notify_statuses == {"PAID", "REJECTED"}
    assert qiwi_mock.site_id != "from-conftest"

@pytest.mark.qiwi_mock("positional")
def test_a_positional_marker_argument_is_a_usage_error(qiwi_mock):
    pass
""",
    )
    result.assert_outcomes(passed=3, errors=1)
    result.stdout.fnmatch_lines(["*keyword options only*"])


def test_fail_on_refused_fails_a_passing_test_that_sent_a_refused_request(pytester: pytest.Pytester) -> None:
    pytester.makeini(INI + "qiwi_mock_fail_on_refused = true\n")
    result = _run(
        pytester,
        """
def test_sends_a_bad_amount(qiwi_mock):
    with qiwi_mock.http(headers={"Authorization": "Bearer " + qiwi_mock.secret_key}) as http:
        http.put("/partner/bill/v1/bills/bad", json={**body().to_dict(), "amount": {"currency": "RUB", "value": "0"}})

def test_sends_only_good_requests(qiwi_mock):
    create_bill.sync(bill_id="good", client=qiwi_mock.client, body=body())

def test_a_wrong_key_counts_too(qiwi_mock):
    with qiwi_mock.http(headers={"Authorization": "Bearer wrong"}) as http:
        http.get("/partner/bill/v1/bills/good")

@pytest.mark.qiwi_mock(fail_on_refused=False)
def test_opted_out_by_the_marker(qiwi_mock):
    with qiwi_mock.http() as http:
        http.get("/partner/bill/v1/bills/x")

def test_a_failing_test_reports_its_own_failure(qiwi_mock):
    with qiwi_mock.http() as http:
        http.get("/partner/bill/v1/bills/x")
    assert False, "its own assertion"
""",
    )
    result.assert_outcomes(passed=2, failed=3)
    result.stdout.fnmatch_lines(
        [
            "*sent 1 request(s) QIWI would have refused*",
            "*PUT /partner/bill/v1/bills/bad -> 400 validation.error {'amount.value'*",
            "*GET /partner/bill/v1/bills/good -> 401 unauthorized*",
            "*its own assertion*",
        ]
    )


def test_fail_on_refused_from_the_options_fixture_and_for_a_server(pytester: pytest.Pytester) -> None:
    result = _run(
        pytester,
        """
@pytest.mark.parametrize("qiwi_mock_options", [{"fail_on_refused": True}])
def test_options_fixture_opts_in(qiwi_mock):
    with qiwi_mock.http() as http:
        http.get("/partner/bill/v1/bills/x")

@pytest.mark.qiwi_mock(fail_on_refused=True)
def test_a_server_process_is_checked_through_its_journal(qiwi_mock_server):
    with pytest.raises(urllib.error.HTTPError) as refused:
        urllib.request.urlopen(qiwi_mock_server.url + "/partner/bill/v1/bills/y", timeout=10)
    assert refused.value.code == 401

@pytest.mark.qiwi_mock(fail_on_refused=True)
def test_a_server_test_that_sent_nothing_refused_passes(qiwi_mock_server):
    urllib.request.urlopen(qiwi_mock_server.url + "/_mock/health", timeout=10).close()
""",
    )
    result.assert_outcomes(passed=1, failed=2)
    result.stdout.fnmatch_lines(["*GET /partner/bill/v1/bills/x -> 401*", "*GET /partner/bill/v1/bills/y -> 401*"])


def test_fail_on_refused_is_off_by_default(pytester: pytest.Pytester) -> None:
    result = _run(
        pytester,
        """
def test_sends_a_bad_request(qiwi_mock):
    with qiwi_mock.http() as http:
        assert http.get("/partner/bill/v1/bills/x").status_code == 401
    assert [e.outcome for e in qiwi_mock.refused()] == ["unauthorized"]
""",
    )
    result.assert_outcomes(passed=1)


def test_qiwi_mock_server_is_a_real_process_for_code_that_does_not_use_httpx(pytester: pytest.Pytester) -> None:
    result = _run(
        pytester,
        """
urls = []

def put(server, bill_id, data):
    request = urllib.request.Request(
        f"{server.url}/partner/bill/v1/bills/{bill_id}", data=json.dumps(data).encode(), method="PUT",
        headers={**server.auth_headers, "Content-Type": "application/json"},
    )
    with urllib.request.urlopen(request, timeout=10) as response:
        return json.load(response)

def test_stdlib_client(qiwi_mock_server):
    assert put(qiwi_mock_server, "u-1", body().to_dict())["status"]["value"] == "WAITING"
    assert qiwi_mock_server.controls.pay("u-1").status.value.value == "PAID"
    urls.append(qiwi_mock_server.url)

def test_the_same_process_is_reset_between_tests(qiwi_mock_server):
    assert qiwi_mock_server.url == urls[0]
    assert qiwi_mock_server.controls.notifications() == []

@pytest.mark.qiwi_mock(strict_idempotency=True)
def test_other_settings_get_their_own_process(qiwi_mock_server):
    assert qiwi_mock_server.url != urls[0]
    put(qiwi_mock_server, "u-2", body().to_dict())
    try:
        put(qiwi_mock_server, "u-2", body("12.00").to_dict())
    except urllib.error.HTTPError as error:
        assert error.code == 409
    else:
        raise AssertionError("strict idempotency was not applied")

@pytest.mark.qiwi_mock(clock=lambda: None)
def test_in_process_only_options_are_refused(qiwi_mock_server):
    pass
""",
    )
    result.assert_outcomes(passed=3, errors=1)
    result.stdout.fnmatch_lines(["*clock cannot be given to a mock process*"])


def test_under_xdist_each_worker_has_its_own_mocks_and_no_fixed_port(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    pytester.makepyfile(
        test_user=HEADER
        + """
import os
import pathlib

@pytest.mark.parametrize("n", range(4))
def test_in_process(qiwi_mock, n):
    create_bill.sync(bill_id="same-id", client=qiwi_mock.client, body=body())
    qiwi_mock.controls.pay("same-id")
    assert qiwi_mock.inbox.wait(bill_id="same-id").verified
    assert [e.bill_id for e in qiwi_mock.requests()] == ["same-id"]

@pytest.mark.parametrize("n", range(4))
def test_server(qiwi_mock_server, n, tmp_path_factory):
    create_bill.sync(bill_id="same-id", client=qiwi_mock_server.client, body=body())
    qiwi_mock_server.controls.pay("same-id")
    worker = os.environ.get("PYTEST_XDIST_WORKER", "main")
    out = pathlib.Path(os.environ["KIT_URLS_DIR"]) / f"{worker}-{n}"
    out.write_text(qiwi_mock_server.url)
"""
    )
    urls = pytester.mkdir("urls")
    monkeypatch.setenv("KIT_URLS_DIR", str(urls))
    result = pytester.runpytest_subprocess("-p", "xdist", "-n", "2", "-p", "no:randomly", "-p", "no:cacheprovider")
    result.assert_outcomes(passed=8)
    by_worker: dict[str, set[str]] = {}
    for path in urls.iterdir():
        by_worker.setdefault(path.name.split("-")[0], set()).add(path.read_text())
    assert sorted(by_worker) == ["gw0", "gw1"]
    assert all(len(found) == 1 for found in by_worker.values())  # one process per worker, reused
    assert len(set.union(*by_worker.values())) == 2  # and the two workers' processes differ


def test_the_plugin_can_be_turned_off(pytester: pytest.Pytester) -> None:
    result = _run(pytester, "def test_x(qiwi_mock):\n    pass\n", "-p", "no:qiwi_bill_mock")
    result.assert_outcomes(errors=1)
    result.stdout.fnmatch_lines(["*fixture 'qiwi_mock' not found*"])
