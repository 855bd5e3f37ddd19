"""The benchmark harness's load-generation logic: wrk output parsing, scenarios, the fallback generator."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import pytest

# `bench` is a top-level folder of the repository, not an installed package: `pytest` run as a script
# (not `python -m pytest`) would not find it otherwise.
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench import load
from bench.procs import ServerProcess, tree_peak_rss_bytes

WRK_TEXT = """\
Running 5s test @ http://127.0.0.1:40123/
  1 threads and 8 connections
  Thread Stats   Avg      Stdev     Max   +/- Stdev
    Latency     1.04ms    1.19ms  10.03ms   86.66%
    Req/Sec    11.01k     3.97k   16.38k    56.67%
  Latency Distribution
     50%  531.00us
     75%    0.86ms
     90%    2.80ms
     99%    1.20s
  32887 requests in 3.01s, 15.15MB read
  Non-2xx or 3xx responses: 12
  Socket errors: connect 0, read 2, write 0, timeout 1
Requests/sec:  10918.44
Transfer/sec:      5.03MB
"""


@pytest.mark.parametrize(
    ("text", "expected"),
    [("531.00us", 0.531), ("0.86ms", 0.86), ("1.20s", 1200.0), ("2.00m", 120_000.0), ("1h", 3_600_000.0)],
)
def test_parse_duration_ms(text, expected):
    assert load.parse_duration_ms(text) == pytest.approx(expected)


def test_parse_duration_rejects_garbage():
    with pytest.raises(ValueError, match="not a wrk duration"):
        load.parse_duration_ms("fast")


def test_parse_wrk_text_report():
    numbers = load.parse_wrk_output(WRK_TEXT)
    assert numbers["requests"] == 32887
    assert numbers["duration_s"] == pytest.approx(3.01)
    assert numbers["rps"] == pytest.approx(10918.44)
    assert numbers["p50_ms"] == pytest.approx(0.531)
    assert numbers["p90_ms"] == pytest.approx(2.80)
    assert numbers["p99_ms"] == pytest.approx(1200.0)
    assert numbers["mean_ms"] == pytest.approx(1.04)
    assert numbers["max_ms"] == pytest.approx(10.03)
    assert numbers["non_2xx"] == 12
    assert numbers["errors"] == 15  # 12 statuses + 2 read + 1 timeout


def test_parse_wrk_prefers_the_json_line():
    raw = {
        "requests": 1000,
        "duration_us": 2_000_000,
        "bytes": 1,
        "errors_connect": 1,
        "errors_read": 0,
        "errors_write": 0,
        "errors_status": 3,
        "errors_timeout": 0,
        "mean_us": 800.5,
        "max_us": 9000,
        "p50_us": 700,
        "p90_us": 1500,
        "p99_us": 4200,
        "p999_us": 8000,
    }
    numbers = load.parse_wrk_output(WRK_TEXT + "WRK_JSON " + json.dumps(raw) + "\n")
    assert numbers["rps"] == pytest.approx(500.0)
    assert numbers["p99_ms"] == pytest.approx(4.2)
    assert numbers["mean_ms"] == pytest.approx(0.8005)
    assert (numbers["errors"], numbers["non_2xx"]) == (4, 3)


def test_parse_wrk_without_latency_distribution_fails_clearly():
    text = WRK_TEXT.split("  Latency Distribution")[0]
    with pytest.raises(ValueError, match="--latency"):
        load.parse_wrk_output(text)


def test_parse_wrk_of_nothing_fails():
    with pytest.raises(ValueError, match="no latency line"):
        load.parse_wrk_output("unable to connect to 127.0.0.1:1 Connection refused\n")


def test_percentile_nearest_rank():
    values = [float(v) for v in range(1, 101)]
    assert load.percentile(values, 50) == 50.0
    assert load.percentile(values, 99) == 99.0
    assert load.percentile(values, 100) == 100.0
    assert load.percentile([], 50) == 0.0
    assert load.percentile([3.0], 99) == 3.0


def test_put_scenario_ids_are_unique():
    scenario = load.PutScenario("run1")
    paths = {scenario.next_request()[1] for _ in range(1000)}
    assert len(paths) == 1000
    method, path, body = scenario.next_request()
    assert method == "PUT"
    assert path.startswith("/partner/bill/v1/bills/run1-")
    assert json.loads(body or b"")["amount"] == {"currency": "RUB", "value": "10.00"}


def test_random_get_scenario_stays_in_range():
    scenario = load.RandomGetScenario("s-", 10, seed=3)
    ids = {int(scenario.next_request()[1].rsplit("s-", 1)[1]) for _ in range(500)}
    assert ids == set(range(10))


def _bill_body(bill_id: str) -> bytes:
    return json.dumps({"billId": bill_id, "status": {"value": "WAITING"}}).encode()


def test_mixed_scenario_orders_each_flow():
    scenario = load.MixedScenario("m")
    seen: dict[str, list[str]] = {}
    for _ in range(200):
        method, path, _body = scenario.next_request()
        parts = path.split("/")
        if path.startswith("/_mock/"):
            bill_id, step = parts[3], "pay"
        elif path.endswith("/reject"):
            bill_id, step = parts[-2], "reject"
        elif "/refunds/" in path:
            bill_id, step = parts[-3], "refund"
        else:
            bill_id, step = parts[-1], "create" if method == "PUT" else "get"
        seen.setdefault(bill_id, []).append(step)
        if step == "refund":
            scenario.on_response(200, json.dumps({"refundId": bill_id, "status": "PARTIAL"}).encode())
        else:
            scenario.on_response(200, _bill_body(bill_id))
    finished = [steps for steps in seen.values() if steps[-1] in {"reject", "refund"}]
    assert finished
    for steps in finished:
        assert steps in (["create", "get", "reject"], ["create", "get", "pay", "refund"])
    assert scenario.lost == 0


def test_mixed_scenario_drops_a_failed_flow():
    scenario = load.MixedScenario("m")
    _, path, _ = scenario.next_request()
    scenario.on_response(400, b'{"errorCode":"validation.error"}')
    assert scenario.lost == 1
    method, next_path, _ = scenario.next_request()
    assert method == "PUT"
    assert next_path != path  # a new flow, not the failed one's next step


def test_lua_scripts_are_assembled_with_the_common_part(tmp_path: Path):
    for name in ("get", "get_random", "put", "mixed"):
        script = load._lua_script(name, tmp_path).read_text()
        assert "function done(summary, latency, requests)" in script
        assert "function init(args)" in script
        assert "count_response()" in script


def test_run_wrk_refuses_other_hosts(tmp_path: Path, monkeypatch):
    monkeypatch.setattr(load, "wrk_path", lambda: "/usr/bin/wrk")
    with pytest.raises(RuntimeError, match="non-loopback"):
        load.run_wrk(
            base_url="http://10.0.0.1:80",
            script="get",
            opts={},
            connections=1,
            duration_s=1,
            max_requests=1,
            scratch=tmp_path,
            scenario="get",
            server="x",
        )


def test_python_load_refuses_other_hosts():
    with pytest.raises(RuntimeError, match="non-loopback"):
        load.run_python_load(
            base_url="http://192.168.1.1:80",
            token="k",
            scenario=load.GetScenario("x"),
            connections=1,
            duration_s=0.1,
            max_requests=1,
            scenario_name="get",
            server="x",
        )


def test_python_load_against_the_hello_app(tmp_path: Path):
    server = ServerProcess(
        "hello",
        [sys.executable, "-m", "bench.hello", "--port", "0"],
        log_path=tmp_path / "hello.log",
        health_path="/_mock/health",
    )
    with server:
        assert server.base_url.startswith("http://127.0.0.1:")
        assert tree_peak_rss_bytes(server.pid) > 1_000_000
        result = load.run_python_load(
            base_url=server.base_url,
            token="k",
            scenario=load.MixedScenario("t"),
            connections=4,
            duration_s=10.0,
            max_requests=40,
            scenario_name="mixed",
            server="hello",
        )
        pid = server.pid
    assert result.requests == 40
    assert result.errors == 0
    assert result.tool == "python"
    assert 0 < result.p50_ms <= result.p99_ms <= result.max_ms
    assert not Path(f"/proc/{pid}").exists() or "zombie" in Path(f"/proc/{pid}/status").read_text().lower()


def test_tree_cpu_seconds_of_this_process():
    from bench.procs import tree_cpu_seconds

    before = tree_cpu_seconds(os.getpid())
    sum(i * i for i in range(300_000))
    assert tree_cpu_seconds(os.getpid()) >= before > 0
    assert tree_cpu_seconds(2**22 + 12345) == 0.0  # no such process
