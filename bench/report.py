"""Turn a benchmark run into targets (met / missed), ``latest.json``, a Markdown table and a PNG chart."""

from __future__ import annotations

import json
import statistics
from collections.abc import Iterable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from bench.load import LoadResult

TIMES = "\u00d7"  # the multiplication sign of ratios in tables
#: The mock of another source tree (`python -m bench --baseline-tree`; the name `bench.servers` gives it).
BASELINE = "mock@base"

__all__ = [
    "TIMES",
    "Target",
    "evaluate_targets",
    "median_p99",
    "median_run",
    "paired_ratio",
    "ratio",
    "render_markdown",
    "rerender",
    "summarise_rounds",
    "write_chart",
    "write_json",
]


@dataclass
class Target:
    """One target of the issue, with what this run measured.

    Attributes:
        name: What is compared, e.g. ``GET throughput vs Prism``.
        op: ``>=`` or ``<=``.
        limit: The bound (a ratio, or milliseconds / megabytes where ``unit`` says so).
        unit: ``x`` for ratios, ``ms``, ``MB``.
        measured: The measured value; None when it could not be measured.
        met: True / False; None when not measured.
        note: Why it was not measured, or what the number is made of.
    """

    name: str
    op: str
    limit: float
    unit: str
    measured: float | None
    met: bool | None
    note: str = ""


def ratio(numerator: float | None, denominator: float | None) -> float | None:
    """Return ``numerator / denominator``, or None when either is missing or the denominator is 0."""
    if numerator is None or denominator is None or denominator == 0:
        return None
    return numerator / denominator


def median_run(runs: list[LoadResult]) -> LoadResult:
    """Return the run with the median throughput (the lower middle one for an even count).

    Raises:
        ValueError: If ``runs`` is empty.
    """
    if not runs:
        raise ValueError("no runs")
    ordered = sorted(runs, key=lambda r: r.rps)
    return ordered[(len(ordered) - 1) // 2]


def _target(name: str, op: str, limit: float, unit: str, measured: float | None, note: str = "") -> Target:
    """Build a :class:`Target`, deciding ``met`` from ``op``."""
    if measured is None:
        return Target(name, op, limit, unit, None, None, note)
    met = measured >= limit if op == ">=" else measured <= limit
    return Target(name, op, limit, unit, measured, met, note)


def _find(runs: Iterable[LoadResult], scenario: str, server: str, connections: int) -> LoadResult | None:
    """Return the run of ``scenario`` on ``server`` at ``connections``, if any."""
    for run in runs:
        if (run.scenario, run.server, run.connections) == (scenario, server, connections):
            return run
    return None


def paired_ratio(
    runs: list[LoadResult], rounds: list[list[LoadResult]], scenario: str, server: str, base: str
) -> tuple[float | None, str]:
    """Throughput ratio ``server / base`` for ``scenario`` at 8 connections, and how it was formed.

    With rounds, the ratio is the median of the per-round ratios: both servers of a pair ran
    back to back in the same round, so a load swing of the shared machine hits both alike.
    Without rounds, it is the ratio of the aggregated runs.
    """
    per_round = []
    for batch in rounds:
        mine, theirs = _find(batch, scenario, server, 8), _find(batch, scenario, base, 8)
        value = ratio(mine.rps if mine else None, theirs.rps if theirs else None)
        if value is not None:
            per_round.append(value)
    if per_round:
        spread = ", ".join(f"{v:.2f}" for v in per_round)
        return statistics.median(per_round), f"median of per-round ratios ({spread})"
    mine, theirs = _find(runs, scenario, server, 8), _find(runs, scenario, base, 8)
    return ratio(mine.rps if mine else None, theirs.rps if theirs else None), ""


def median_p99(
    runs: list[LoadResult], rounds: list[list[LoadResult]], scenario: str, server: str
) -> tuple[float | None, str]:
    """The p99 latency of ``scenario`` on ``server`` at 8 connections: the median over the rounds.

    One stall of the shared machine (a neighbour's burst, a disk flush) can put a single round's p99
    far out; the median of the rounds is the typical p99, and the note lists every round's.
    """
    values = [run.p99_ms for batch in rounds if (run := _find(batch, scenario, server, 8)) is not None]
    if values:
        return statistics.median(values), "median of per-round p99 (" + ", ".join(f"{v:.1f}" for v in values) + ")"
    run = _find(runs, scenario, server, 8)
    return (run.p99_ms if run else None), ""


def evaluate_targets(
    results: dict[str, Any], runs: list[LoadResult], rounds: list[list[LoadResult]] | None = None
) -> list[Target]:
    """Compute every target of issue 8 from one run's results.

    Args:
        results: The run's JSON-ready results (``client_overhead``, ``signature``, ``scale``, ``skipped``).
        runs: The aggregated (median) load runs.
        rounds: The runs of every round, for paired throughput ratios (see :func:`paired_ratio`).
    """
    skipped = {s["what"]: s["reason"] for s in results.get("skipped", [])}
    prism_note = f"Prism skipped: {skipped['prism']}" if "prism" in skipped else ""
    mock_note = f"mock skipped: {skipped['mock']}" if "mock" in skipped else ""
    targets = []
    for scenario, base, limit, label in (
        ("get", "prism", 3.0, "GET throughput vs Prism (c8)"),
        ("get", "hello", 0.5, "GET throughput vs hello-world floor (c8)"),
        ("put", "prism", 2.0, "PUT-create throughput vs Prism (c8)"),
    ):
        measured, note = paired_ratio(runs, rounds or [], scenario, "mock", base)
        missing = (prism_note if base == "prism" else "") or mock_note
        targets.append(_target(label, ">=", limit, "x", measured, missing or note))
    if any(r.server == BASELINE for r in runs):  # `--baseline-tree`: the redesign may cost at most 10%
        for scenario, label in (("get", "GET"), ("put", "PUT-create")):
            measured, note = paired_ratio(runs, rounds or [], scenario, "mock", BASELINE)
            targets.append(_target(f"{label} throughput vs {BASELINE} (c8)", ">=", 0.90, "x", measured, note))
    for scenario, label in (("get", "GET"), ("put", "PUT-create")):
        p99, note = median_p99(runs, rounds or [], scenario, "mock")
        targets.append(_target(f"{label} p99 latency (c8)", "<=", 10.0, "ms", p99, mock_note or note))
    overhead = results.get("client_overhead") or {}
    targets.append(
        _target(
            "Generated client vs raw httpx, sync",
            "<=",
            1.10,
            "x",
            (overhead.get("sync") or {}).get("ratio"),
            overhead.get("target_note", ""),
        )
    )
    targets.append(
        _target(
            "Generated client vs raw httpx, async @32",
            "<=",
            1.15,
            "x",
            (overhead.get("async") or {}).get("ratio"),
            overhead.get("target_note", ""),
        )
    )
    signature = results.get("signature") or {}
    targets.append(
        _target(
            "verify_signature vs bare HMAC compare (cost)",
            "<=",
            2.0,
            "x",
            signature.get("ratio"),
            "decoded-dict input" if signature.get("ratio") is not None else signature.get("note", ""),
        )
    )
    scale = results.get("scale") or {}
    sizes = scale.get("sizes") or []
    growth = None
    rss = None
    if len(sizes) >= 2:
        growth = ratio(sizes[-1].get("p50_ms"), sizes[0].get("p50_ms"))
        rss = max(s.get("peak_rss_mb", 0.0) for s in sizes)
    span = f"{sizes[0]['bills']:,} → {sizes[-1]['bills']:,} bills" if len(sizes) >= 2 else ""
    growth_note = span
    if len(sizes) >= 3:
        tail = ratio(sizes[-1].get("p50_ms"), sizes[-2].get("p50_ms"))
        if tail is not None:
            growth_note += f"; {sizes[-2]['bills']:,} → {sizes[-1]['bills']:,}: {tail:.2f}{TIMES}"
    targets.append(
        _target("GET p50 latency growth with store size", "<=", 1.20, "x", growth, growth_note or scale.get("note", ""))
    )
    targets.append(_target("Server peak RSS with --db", "<=", 150.0, "MB", rss, span or scale.get("note", "")))
    return targets


# ----------------------------------------------------------------------------------------- output


def write_json(path: Path, results: dict[str, Any]) -> None:
    """Write ``results`` as indented JSON (stable key order, trailing newline)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(results, indent=2, ensure_ascii=False, default=_jsonable) + "\n")


def _jsonable(value: Any) -> Any:
    """JSON fallback for dataclasses."""
    if hasattr(value, "__dataclass_fields__"):
        return asdict(value)
    raise TypeError(f"not JSON serialisable: {type(value).__name__}")


def _fmt(value: float | None, digits: int = 2) -> str:
    """Format a number for a table cell (``n/a`` when missing)."""
    if value is None:
        return "n/a"
    return f"{value:,.{digits}f}"


def _status(target: Target) -> str:
    """Return the table cell for a target's outcome."""
    if target.met is None:
        return "not measured"
    return "**met**" if target.met else "**missed**"


def render_markdown(results: dict[str, Any], runs: list[LoadResult], targets: list[Target]) -> str:
    """Render the run as Markdown: targets, load table, client overhead, signature, scale, skips."""
    meta = results["meta"]
    lines = [
        f"# Benchmark results ({'quick' if meta['quick'] else 'full'} run)",
        "",
        f"- Date: {meta['date']}",
        f"- Machine: {meta['machine']}",
        f"- Load generator: {meta['load_generator']}; every server is one process on 127.0.0.1, "
        f"{meta['rounds']} interleaved round(s) of {meta['duration_s']:g} s per cell, the median round shown.",
        "",
        "## Targets",
        "",
        "| target | bound | measured | result | note |",
        "|---|---|---|---|---|",
    ]
    for t in targets:
        digits = 1 if t.unit in {"ms", "MB"} else 2
        measured = "n/a" if t.measured is None else f"{t.measured:.{digits}f} {t.unit}".replace(" x", TIMES)
        bound = f"{t.op} {t.limit:g} {t.unit}".replace(" x", TIMES)
        lines.append(f"| {t.name} | {bound} | {measured} | {_status(t)} | {t.note} |")
    lines += [
        "",
        "## Throughput and latency",
        "",
        "| scenario | connections | server | req/s | p50 ms | p90 ms | p99 ms | p99 ms, median of rounds "
        "| errors | requests | server CPU µs/req |",
        "|---|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for run in runs:
        lines.append(
            f"| {run.scenario} | {run.connections} | {run.server} | {_fmt(run.rps, 0)} | {_fmt(run.p50_ms)} "
            f"| {_fmt(run.p90_ms)} | {_fmt(run.p99_ms)} | {_fmt(run.extra.get('p99_median_ms'))} "
            f"| {run.errors} | {run.requests:,} "
            f"| {_fmt(run.extra.get('server_cpu_median_us'), 0)} |"
        )
    overhead = results.get("client_overhead") or {}
    if overhead.get("sync") or overhead.get("async"):
        lines += [
            "",
            "## Generated client overhead (same server, same calls)",
            "",
            "| mode | calls per round | fastest raw round, s | fastest generated round, s | median paired ratio |",
            "|---|---:|---:|---:|---:|",
        ]
        for mode in ("sync", "async"):
            part = overhead.get(mode)
            if part:
                lines.append(
                    f"| {part['label']} | {part['calls']:,} | {part['raw_s']:.3f} | {part['generated_s']:.3f} "
                    f"| {part['ratio']:.3f}{TIMES} |"
                )
        if overhead.get("note"):
            lines += ["", overhead["note"]]
    signature = results.get("signature") or {}
    if signature.get("ratio") is not None:
        lines += [
            "",
            "## Notification signature check",
            "",
            "| check | calls/s |",
            "|---|---:|",
            f"| bare `hmac.new(...).hexdigest()` + `compare_digest` | {signature['bare_per_s']:,.0f} |",
            f"| `qiwi_bill.verify_signature` | {signature['verify_per_s']:,.0f} |",
            "",
            f"Cost ratio: {signature['ratio']:.2f}{TIMES}. {signature.get('note', '')}".rstrip(),
        ]
    scale = results.get("scale") or {}
    if scale.get("sizes"):
        lines += [
            "",
            "## Scale (file-backed store, GET of random existing bills, 1 connection, median of interleaved rounds)",
            "",
            "| bills | seed s | db MB | req/s | p50 ms | p99 ms | server peak RSS MB |",
            "|---:|---:|---:|---:|---:|---:|---:|",
        ]
        for size in scale["sizes"]:
            lines.append(
                f"| {size['bills']:,} | {_fmt(size.get('seed_s'), 1)} | {_fmt(size.get('db_mb'), 1)} "
                f"| {_fmt(size.get('rps'), 0)} | {_fmt(size.get('p50_ms'))} | {_fmt(size.get('p99_ms'))} "
                f"| {_fmt(size.get('peak_rss_mb'), 1)} |"
            )
    if results.get("skipped"):
        lines += ["", "## Skipped", ""]
        lines += [f"- {s['what']}: {s['reason']}" for s in results["skipped"]]
    if meta.get("notes"):
        lines += ["", "## Notes", ""]
        lines += [f"- {n}" for n in meta["notes"]]
    return "\n".join(lines) + "\n"


_COLOURS = {
    "mock": "#1f77b4",
    "mock@base": "#2ca02c",
    "mock-mem": "#9ecae1",
    "mock-w2": "#08519c",
    "hello": "#7f7f7f",
    "prism": "#ff7f0e",
}


def write_chart(path: Path, runs: list[LoadResult], title: str) -> None:
    """Write a PNG: throughput (top) and p50 / p99 latency (bottom) per scenario and server."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    cells = sorted({(r.scenario, r.connections) for r in runs}, key=lambda c: (_SCENARIO_ORDER.get(c[0], 9), c[1]))
    servers = [s for s in _SERVER_ORDER if any(r.server == s for r in runs)]
    fig, (top, bottom) = plt.subplots(2, 1, figsize=(12, 7.5), sharex=True)
    labelled: set[str] = set()
    for position, (scenario, connections) in enumerate(cells):
        present = [(s, run) for s in servers if (run := _find(runs, scenario, s, connections)) is not None]
        width = 0.8 / max(1, len(present))
        for index, (server, run) in enumerate(present):
            x = position + (index - (len(present) - 1) / 2) * width
            colour = _COLOURS.get(server)
            first = server not in labelled
            labelled.add(server)
            top.bar(x, run.rps, width, color=colour, label=server if first else None)
            p99 = run.extra.get("p99_median_ms", run.p99_ms)
            bottom.bar(x, p99, width, color=colour, alpha=0.35, label=f"{server} p99" if first else None)
            bottom.bar(x, run.p50_ms, width, color=colour, label=f"{server} p50" if first else None)
    top.set_ylabel("requests / s")
    top.set_title(title)
    top.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0))
    top.grid(axis="y", alpha=0.3)
    bottom.set_ylabel("latency, ms, log scale\n(solid p50, light p99: median of rounds)")
    bottom.set_yscale("log")
    bottom.axhline(10.0, color="red", linewidth=0.8, linestyle="--", label="10 ms p99 target")
    bottom.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.01, 1.0))
    bottom.grid(axis="y", alpha=0.3)
    bottom.set_xticks(range(len(cells)))
    bottom.set_xticklabels([f"{s}\nc{c}" for s, c in cells])
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=100)
    plt.close(fig)


_SCENARIO_ORDER = {"get": 0, "put": 1, "mixed": 2}
_SERVER_ORDER = {"mock": 0, BASELINE: 1, "mock-mem": 2, "mock-w2": 3, "hello": 4, "prism": 5}


def summarise_rounds(rounds: list[list[LoadResult]]) -> list[LoadResult]:
    """Group the runs of all rounds by (scenario, server, connections) and keep each median run.

    The medians carry the spread of the rounds' throughput in ``extra["rps_rounds"]``.
    """
    groups: dict[tuple[str, str, int], list[LoadResult]] = {}
    for batch in rounds:
        for run in batch:
            groups.setdefault((run.scenario, run.server, run.connections), []).append(run)
    summary = []
    for key in sorted(groups, key=lambda k: (_SCENARIO_ORDER.get(k[0], 9), k[2], _SERVER_ORDER.get(k[1], 9))):
        best = median_run(groups[key])
        best.extra["rps_rounds"] = [round(r.rps, 1) for r in groups[key]]
        best.extra["rps_median"] = round(statistics.median(r.rps for r in groups[key]), 1)
        best.extra["p99_median_ms"] = statistics.median(r.p99_ms for r in groups[key])
        cpu = [r.extra["server_cpu_us"] for r in groups[key] if "server_cpu_us" in r.extra]
        if cpu:
            best.extra["server_cpu_median_us"] = statistics.median(cpu)
        summary.append(best)
    return summary


def rerender(out: Path) -> None:
    """Rebuild ``latest.md`` and ``latest.png`` in ``out`` from its ``latest.json`` (same data, new layout)."""
    document = json.loads((out / "latest.json").read_text())
    rounds = [[LoadResult(**r) for r in batch] for batch in document.get("rounds", [])]
    runs = summarise_rounds(rounds) if rounds else [LoadResult(**r) for r in document["runs"]]
    targets = [Target(**t) for t in document["targets"]]
    (out / "latest.md").write_text(render_markdown(document, runs, targets))
    write_chart(out / "latest.png", runs, f"QIWI bill mock vs baselines, {document['meta']['date']}")
