"""The benchmark harness's reporting: medians, ratios, targets, JSON, Markdown and the PNG chart."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

# `bench` is a top-level folder of the repository, not an installed package: `pytest` run as a script
# (not `python -m pytest`) would not find it otherwise.
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench import micro, report
from bench.load import LoadResult

X = report.TIMES


def _run(scenario: str, server: str, rps: float, connections: int = 8, p99: float = 5.0) -> LoadResult:
    return LoadResult(
        scenario=scenario,
        server=server,
        connections=connections,
        tool="wrk",
        requests=int(rps * 5),
        duration_s=5.0,
        rps=rps,
        p50_ms=1.0,
        p90_ms=2.0,
        p99_ms=p99,
        mean_ms=1.2,
        max_ms=20.0,
    )


def test_ratio_handles_missing_values():
    assert report.ratio(6.0, 2.0) == 3.0
    assert report.ratio(None, 2.0) is None
    assert report.ratio(1.0, None) is None
    assert report.ratio(1.0, 0.0) is None


def test_median_run_takes_the_middle_throughput():
    runs = [_run("get", "mock", rps) for rps in (300.0, 100.0, 200.0)]
    assert report.median_run(runs).rps == 200.0
    assert report.median_run(runs[:2]).rps == 100.0  # the lower middle for an even count
    with pytest.raises(ValueError, match="no runs"):
        report.median_run([])


def test_summarise_rounds_groups_and_orders():
    rounds = [
        [_run("put", "mock", 50.0), _run("get", "mock", 100.0), _run("mixed", "mock", 10.0, connections=32)],
        [_run("put", "mock", 70.0), _run("get", "mock", 120.0), _run("mixed", "mock", 12.0, connections=32)],
        [_run("put", "mock", 60.0), _run("get", "mock", 80.0), _run("mixed", "mock", 11.0, connections=32)],
    ]
    summary = report.summarise_rounds(rounds)
    assert [(r.scenario, r.connections) for r in summary] == [("get", 8), ("put", 8), ("mixed", 32)]
    assert [r.rps for r in summary] == [100.0, 60.0, 11.0]
    assert summary[0].extra["rps_rounds"] == [100.0, 120.0, 80.0]
    assert summary[0].extra["rps_median"] == 100.0


def _results(**extra):
    base = {
        "skipped": [],
        "client_overhead": {"sync": {"ratio": 1.05}, "async": {"ratio": 1.2}},
        "signature": {"ratio": 1.5},
        "scale": {
            "sizes": [
                {"bills": 1000, "p50_ms": 1.0, "peak_rss_mb": 60.0},
                {"bills": 1_000_000, "p50_ms": 1.1, "peak_rss_mb": 90.0},
            ]
        },
    }
    base.update(extra)
    return base


def test_targets_met_and_missed():
    runs = [
        _run("get", "mock", 6000.0, p99=4.0),
        _run("get", "prism", 1500.0),
        _run("get", "hello", 11000.0),
        _run("put", "mock", 3000.0, p99=12.0),
        _run("put", "prism", 2000.0),
    ]
    targets = {t.name: t for t in report.evaluate_targets(_results(), runs)}
    assert targets["GET throughput vs Prism (c8)"].measured == pytest.approx(4.0)
    assert targets["GET throughput vs Prism (c8)"].met is True
    assert targets["GET throughput vs hello-world floor (c8)"].met is True
    assert targets["PUT-create throughput vs Prism (c8)"].measured == pytest.approx(1.5)
    assert targets["PUT-create throughput vs Prism (c8)"].met is False
    assert targets["GET p99 latency (c8)"].met is True
    assert targets["PUT-create p99 latency (c8)"].met is False
    assert targets["Generated client vs raw httpx, sync"].met is True
    assert targets["Generated client vs raw httpx, async @32"].met is False
    assert targets["verify_signature vs bare HMAC compare (cost)"].met is True
    assert targets["GET p50 latency growth with store size"].measured == pytest.approx(1.1)
    assert targets["GET p50 latency growth with store size"].met is True
    assert targets["Server peak RSS with --db"].measured == 90.0
    assert targets["Server peak RSS with --db"].met is True


def test_targets_without_prism_are_not_measured_and_say_why():
    runs = [_run("get", "mock", 6000.0), _run("get", "hello", 11000.0), _run("put", "mock", 3000.0)]
    results = _results(skipped=[{"what": "prism", "reason": "Node.js is not installed"}])
    targets = {t.name: t for t in report.evaluate_targets(results, runs)}
    prism = targets["GET throughput vs Prism (c8)"]
    assert (prism.measured, prism.met) == (None, None)
    assert "Node.js is not installed" in prism.note
    assert targets["GET throughput vs hello-world floor (c8)"].met is True


def test_targets_with_nothing_measured():
    targets = report.evaluate_targets({"skipped": []}, [])
    assert len(targets) == 10
    assert all(t.met is None and t.measured is None for t in targets)


def _document(runs, targets, quick=False):
    return {
        "meta": {
            "date": "2026-11-28 05:00 UTC",
            "machine": "test machine",
            "quick": quick,
            "rounds": 3,
            "duration_s": 5.0,
            "load_generator": "wrk 4.1.0",
            "notes": ["a note"],
        },
        "targets": targets,
        **_results(skipped=[{"what": "prism", "reason": "not installed"}]),
        "client_overhead": {
            "sync": {"label": "sync", "calls": 400, "raw_s": 0.5, "generated_s": 0.52, "ratio": 1.04},
            "async": {"label": "async @32", "calls": 640, "raw_s": 1.0, "generated_s": 1.1, "ratio": 1.1},
            "note": "shared client",
        },
        "signature": {"bare_per_s": 500_000.0, "verify_per_s": 300_000.0, "ratio": 1.67, "note": "dict input"},
    }


def test_markdown_has_every_section():
    runs = [_run("get", "mock", 6000.0), _run("get", "hello", 11000.0), _run("mixed", "mock", 900.0, 32)]
    targets = report.evaluate_targets(_results(), runs)
    text = report.render_markdown(_document(runs, targets), runs, targets)
    assert text.startswith("# Benchmark results (full run)")
    assert f"| GET throughput vs hello-world floor (c8) | >= 0.5{X} | 0.55{X} | **met** |" in text
    assert "| get | 8 | mock | 6,000 | 1.00 | 2.00 | 5.00 | n/a | 0 | 30,000 | n/a |" in text
    assert "| mixed | 32 | mock | 900 |" in text
    assert f"| sync | 400 | 0.500 | 0.520 | 1.040{X} |" in text
    assert f"Cost ratio: 1.67{X}" in text
    assert "| 1,000,000 |" in text
    assert "- prism: not installed" in text
    assert "- a note" in text
    assert "not measured" in text  # PUT vs Prism has no data here


def test_json_round_trips_dataclasses(tmp_path: Path):
    runs = [_run("get", "mock", 6000.0)]
    targets = report.evaluate_targets(_results(), runs)
    path = tmp_path / "out" / "latest.json"
    report.write_json(path, {"targets": targets, "runs": [r.to_dict() for r in runs]})
    data = json.loads(path.read_text())
    assert data["runs"][0]["rps"] == 6000.0
    assert data["targets"][1]["name"] == "GET throughput vs hello-world floor (c8)"
    assert path.read_text().endswith("}\n")


def test_chart_is_a_png(tmp_path: Path):
    runs = [
        _run("get", "mock", 6000.0),
        _run("get", "prism", 1500.0),
        _run("put", "hello", 9000.0),
        _run("mixed", "mock", 800.0, connections=1),
        _run("mixed", "mock", 900.0, connections=32),
    ]
    path = tmp_path / "latest.png"
    report.write_chart(path, runs, "test chart")
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert path.stat().st_size > 10_000


def test_best_ratio_uses_the_fastest_rounds():
    assert micro.best_ratio([2.0, 1.0, 3.0], [1.5, 1.2]) == (1.0, 1.2, pytest.approx(1.2))
    with pytest.raises(ValueError, match="no timings"):
        micro.best_ratio([], [1.0])


def test_paired_ratio_is_the_median_of_per_round_ratios():
    rounds = [
        [_run("get", "mock", 3000.0), _run("get", "prism", 1000.0)],  # 3.0
        [_run("get", "mock", 1000.0), _run("get", "prism", 500.0)],  # 2.0 (a busy round for both)
        [_run("get", "mock", 4000.0), _run("get", "prism", 1000.0)],  # 4.0
    ]
    runs = report.summarise_rounds(rounds)
    value, note = report.paired_ratio(runs, rounds, "get", "mock", "prism")
    assert value == pytest.approx(3.0)
    assert "3.00, 2.00, 4.00" in note
    targets = {t.name: t for t in report.evaluate_targets({"skipped": []}, runs, rounds)}
    assert targets["GET throughput vs Prism (c8)"].measured == pytest.approx(3.0)
    assert targets["GET throughput vs Prism (c8)"].met is True


def test_paired_ratio_without_rounds_uses_the_aggregates():
    runs = [_run("put", "mock", 3000.0), _run("put", "prism", 2000.0)]
    assert report.paired_ratio(runs, [], "put", "mock", "prism") == (pytest.approx(1.5), "")
    assert report.paired_ratio(runs, [], "put", "mock", "hello") == (None, "")


def test_paired_median_ratio():
    assert micro.paired_median_ratio([1.0, 2.0, 1.0], [1.1, 2.6, 1.2]) == pytest.approx(1.2)
    with pytest.raises(ValueError, match="one raw and one other"):
        micro.paired_median_ratio([1.0], [1.0, 2.0])
    with pytest.raises(ValueError, match="positive"):
        micro.paired_median_ratio([0.0], [1.0])


def test_interleave_flips_the_order_every_round():
    calls: list[str] = []
    first_times, second_times = micro._interleave(lambda: calls.append("a"), lambda: calls.append("b"), 3)
    assert calls == ["a", "b", "a", "b", "b", "a", "a", "b"]  # warm-up, then AB BA AB
    assert len(first_times) == len(second_times) == 3


def test_p99_target_is_the_median_over_rounds():
    rounds = [
        [_run("get", "mock", 100.0, p99=3.0)],
        [_run("get", "mock", 200.0, p99=72.0)],  # one stalled round
        [_run("get", "mock", 150.0, p99=4.0)],
    ]
    runs = report.summarise_rounds(rounds)
    assert runs[0].p99_ms == 4.0  # the median-throughput round
    value, note = report.median_p99(runs, rounds, "get", "mock")
    assert value == 4.0
    assert "3.0, 72.0, 4.0" in note
    assert report.median_p99(runs, [], "get", "mock") == (4.0, "")
    assert report.median_p99(runs, [], "put", "mock") == (None, "")


def test_scale_note_gives_the_growth_past_the_cache():
    results = _results()
    results["scale"]["sizes"].insert(1, {"bills": 100_000, "p50_ms": 1.08, "peak_rss_mb": 80.0})
    targets = {t.name: t for t in report.evaluate_targets(results, [])}
    note = targets["GET p50 latency growth with store size"].note
    assert note.startswith("1,000 → 1,000,000 bills; 100,000 → 1,000,000: 1.02")


def test_rerender_rebuilds_table_and_chart_from_json(tmp_path: Path):
    rounds = [
        [_run("get", "mock", 100.0, p99=3.0)],
        [_run("get", "mock", 200.0, p99=50.0)],
        [_run("get", "mock", 150.0)],
    ]
    runs = report.summarise_rounds(rounds)
    targets = report.evaluate_targets({"skipped": []}, runs, rounds)
    document = _document(runs, targets)
    document["runs"] = [r.to_dict() for r in runs]
    document["rounds"] = [[r.to_dict() for r in batch] for batch in rounds]
    report.write_json(tmp_path / "latest.json", document)
    report.rerender(tmp_path)
    text = (tmp_path / "latest.md").read_text()
    assert "| get | 8 | mock | 150 | 1.00 | 2.00 | 5.00 | 5.00 | 0 | 750 | n/a |" in text
    assert (tmp_path / "latest.png").read_bytes()[:4] == b"\x89PNG"
