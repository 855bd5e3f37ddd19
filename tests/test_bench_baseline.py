"""`python -m bench --baseline-tree PATH`: the mock of another source tree, side by side with this one (quick size)."""

from __future__ import annotations

import sys
from pathlib import Path

import httpx
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench import cli, report, servers
from bench.load import LoadResult

ROOT = Path(__file__).resolve().parent.parent


def _run(server: str, scenario: str, rps: float) -> LoadResult:
    return LoadResult(
        scenario=scenario,
        server=server,
        connections=8,
        tool="wrk",
        requests=int(rps),
        duration_s=1.0,
        rps=rps,
        p50_ms=1.0,
        p90_ms=1.5,
        p99_ms=2.0,
        mean_ms=1.1,
        max_ms=3.0,
    )


def test_a_tree_must_be_a_source_tree_of_the_project(tmp_path: Path) -> None:
    assert servers.check_baseline_tree(ROOT) == ROOT.resolve()
    with pytest.raises(ValueError, match="not a source tree"):
        servers.check_baseline_tree(tmp_path)
    with pytest.raises(SystemExit):
        cli.main(["--quick", "--only", "signature", "--baseline-tree", str(tmp_path)])


def test_the_baseline_server_runs_from_its_tree(tmp_path: Path) -> None:
    # A copy of this tree's mock package stands for "another tree": the server must import it from there.
    tree = tmp_path / "tree"
    (tree / "openapi").mkdir(parents=True)
    (tree / "openapi" / "qiwi-bill-payments.yaml").write_bytes(
        (ROOT / "openapi" / "qiwi-bill-payments.yaml").read_bytes()
    )
    package = tree / "qiwi_bill_mock"
    package.mkdir()
    for source in (ROOT / "qiwi_bill_mock").rglob("*"):
        if source.is_file() and "__pycache__" not in source.parts:
            target = package / source.relative_to(ROOT / "qiwi_bill_mock")
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(source.read_bytes())
    (package / "marker.py").write_text("TREE = 'baseline'\n")
    server = servers.mock_server(tmp_path, db=tmp_path / "base.db", name=servers.BASELINE, tree=tree)
    assert server.cwd == tree
    assert server.env == {"PYTHONPATH": str(tree)}
    with server:
        health = httpx.get(f"{server.base_url}/_mock/health", timeout=10)
        assert health.status_code == 200
        cli._create_get_bill(server.base_url)
    log = (tmp_path / "mock-base.log").read_text()
    assert "listening on" in log


def test_the_side_by_side_targets_appear_only_with_a_baseline() -> None:
    runs = [_run("mock", "get", 950.0), _run("mock", "put", 800.0)]
    names = [t.name for t in report.evaluate_targets({}, runs)]
    assert not any(servers.BASELINE in name for name in names)
    runs += [_run(servers.BASELINE, "get", 1000.0), _run(servers.BASELINE, "put", 1000.0)]
    targets = {t.name: t for t in report.evaluate_targets({}, runs)}
    get = targets[f"GET throughput vs {servers.BASELINE} (c8)"]
    put = targets[f"PUT-create throughput vs {servers.BASELINE} (c8)"]
    assert get.measured == pytest.approx(0.95)
    assert put.measured == pytest.approx(0.80)
    assert get.met
    assert not put.met
