"""``python -m bench [--quick]``: run every benchmark of issue 8 and write the results.

Full run (``make bench``, a few minutes): results in ``bench/results/latest.{json,md,png}``.
Quick run (``make bench-quick``, well under a minute, what CI runs to keep the harness working; its
numbers are not judged): results in ``bench/results/raw/quick/`` (git-ignored).
"""

from __future__ import annotations

import argparse
import contextlib
import datetime
import os
import platform
import re
import shutil
import signal
import statistics
import subprocess
import sys
import time
import traceback
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from types import FrameType
from typing import Any

import httpx

from bench import load, micro, report, servers
from bench.load import LoadResult
from bench.procs import ServerProcess, say

__all__ = ["Config", "main"]

RESULTS = Path(__file__).resolve().parent / "results"
GET_BILL_ID = "bench-get"


@dataclass(frozen=True)
class Config:
    """Sizes and durations of one run."""

    quick: bool
    duration_s: float
    warmup_s: float
    rounds: int
    mixed_connections: tuple[int, ...]
    scale_sizes: tuple[int, ...]
    scale_duration_s: float
    client_calls: int
    client_rounds: int
    async_calls: int
    signature_loops: int
    signature_rounds: int

    @property
    def max_requests(self) -> int:
        """The request bound of one load run: far above any rate this machine reaches (a safety cap)."""
        return int(max(self.duration_s, self.scale_duration_s) * 60_000)

    @classmethod
    def full(cls) -> Config:
        """The ``make bench`` run."""
        return cls(
            quick=False,
            duration_s=3.0,
            warmup_s=1.0,
            rounds=5,
            mixed_connections=(1, 8, 32),
            scale_sizes=(1_000, 100_000, 1_000_000),
            scale_duration_s=5.0,
            client_calls=400,
            client_rounds=15,
            async_calls=640,
            signature_loops=50_000,
            signature_rounds=7,
        )

    @classmethod
    def quick_run(cls) -> Config:
        """The ``make bench-quick`` run: every code path, tiny sizes."""
        return cls(
            quick=True,
            duration_s=1.0,
            warmup_s=1.0,
            rounds=1,
            mixed_connections=(1, 8, 32),
            scale_sizes=(1_000, 10_000),
            scale_duration_s=1.0,
            client_calls=40,
            client_rounds=2,
            async_calls=64,
            signature_loops=2_000,
            signature_rounds=3,
        )


class Run:
    """The state of one benchmark run: what was measured, skipped, failed."""

    def __init__(self, config: Config, out: Path, raw: Path) -> None:
        """Start an empty run writing into ``out`` (results) and ``raw`` (scratch)."""
        self.config = config
        self.out = out
        self.raw = raw
        self.rounds: list[list[LoadResult]] = []
        self.results: dict[str, Any] = {"skipped": [], "failed": []}
        self.notes: list[str] = []
        self.wrk: str | None = None
        self.prefix = f"b{int(time.time())}"

    def skip(self, what: str, reason: str) -> None:
        """Record and print that ``what`` is skipped (a missing prerequisite, not a failure)."""
        say(f"bench: SKIP {what}: {reason}")
        self.results["skipped"].append({"what": what, "reason": reason})

    def fail(self, what: str, error: BaseException) -> None:
        """Record and print that ``what`` failed (the exit status becomes 1)."""
        reason = f"{type(error).__name__}: {error}"
        say(f"bench: FAILED {what}: {reason}")
        traceback.print_exc(file=sys.stderr)
        self.results["failed"].append({"what": what, "reason": reason})

    @contextlib.contextmanager
    def section(self, what: str) -> Iterator[None]:
        """Run a section; an error is recorded as a failure and the run goes on."""
        started = time.perf_counter()
        say(f"bench: {what} ...")
        try:
            yield
        except (KeyboardInterrupt, SystemExit):
            raise
        except Exception as error:
            self.fail(what, error)
        say(f"bench: {what} took {time.perf_counter() - started:.1f} s")

    def load(self, server: ServerProcess, scenario: str, connections: int, duration_s: float) -> LoadResult:
        """Run one load scenario against ``server`` with wrk, or with the Python generator without wrk."""
        prefix = f"{self.prefix}-{scenario}-{connections}-{time.monotonic_ns() % 10**9}"
        script, opts, py_scenario = _scenario(scenario, prefix)
        cpu_before = server.cpu_seconds()
        if self.wrk:
            result = load.run_wrk(
                base_url=server.base_url,
                script=script,
                opts={"key": servers.TOKEN, **opts},
                connections=connections,
                duration_s=duration_s,
                max_requests=self.config.max_requests,
                scratch=self.raw,
                scenario=scenario,
                server=server.name,
            )
        else:
            result = load.run_python_load(
                base_url=server.base_url,
                token=servers.TOKEN,
                scenario=py_scenario,
                connections=connections,
                duration_s=duration_s,
                max_requests=self.config.max_requests,
                scenario_name=scenario,
                server=server.name,
            )
        if result.requests >= self.config.max_requests:
            result.extra["capped"] = True
        if result.requests:
            # Server CPU per request: far less sensitive to the neighbours' load than throughput.
            result.extra["server_cpu_us"] = round((server.cpu_seconds() - cpu_before) / result.requests * 1e6, 1)
        say(
            f"bench:   {server.name:<8} {scenario:<6} c{connections:<3} {result.rps:>9,.0f} req/s  "
            f"p50 {result.p50_ms:6.2f} ms  p99 {result.p99_ms:6.2f} ms  errors {result.errors}  "
            f"server CPU {result.extra.get('server_cpu_us', 0):6.1f} us/req",
        )
        return result


def _scenario(name: str, prefix: str) -> tuple[str, dict[str, str], load.Scenario]:
    """Return the Lua script, its options and the Python twin of a scenario."""
    if name == "get":
        return "get", {"bill_id": GET_BILL_ID}, load.GetScenario(GET_BILL_ID)
    if name == "put":
        return "put", {"prefix": prefix}, load.PutScenario(prefix)
    if name == "mixed":
        return "mixed", {"prefix": prefix}, load.MixedScenario(prefix)
    raise ValueError(f"unknown scenario {name}")


def _machine() -> str:
    """Describe the machine in one line: CPU model, cores, memory, OS, Python."""
    cpu = platform.processor() or "unknown CPU"
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    memory = ""
    with contextlib.suppress(OSError, ValueError, IndexError):
        kib = int(Path("/proc/meminfo").read_text().splitlines()[0].split()[1])
        memory = f", {kib / 1024 / 1024:.0f} GiB RAM"
    return (
        f"{cpu}, {os.cpu_count()} cores{memory}, {platform.system()} {platform.release()}, "
        f"Python {platform.python_version()} (shared with other jobs: absolute numbers are noisy, ratios are "
        "measured side by side)"
    )


def _version(argv: list[str]) -> str:
    """Return the first line a tool prints for its version, or ``""``."""
    try:
        proc = subprocess.run(argv, capture_output=True, text=True, timeout=30, check=False)
    except (OSError, subprocess.TimeoutExpired):
        return ""
    return (proc.stdout or proc.stderr).strip().splitlines()[0] if (proc.stdout or proc.stderr).strip() else ""


def _wrk_version(binary: str) -> str:
    """Return wrk's version number (``4.1.0``), or ``""``."""
    found = re.search(r"\d+\.\d+\.\d+", _version([binary, "--version"]))
    return found.group(0) if found else ""


def _create_get_bill(base_url: str) -> None:
    """Create the bill that the GET scenario reads (a 200 from a fresh PUT)."""
    response = httpx.put(
        f"{base_url}/partner/bill/v1/bills/{GET_BILL_ID}",
        json={"amount": {"currency": "RUB", "value": "10.00"}, "expirationDateTime": "2030-01-01T00:00:00+03:00"},
        headers={"Authorization": f"Bearer {servers.TOKEN}"},
        timeout=10,
    )
    if response.status_code != 200:
        raise RuntimeError(f"creating the GET bill answered {response.status_code}: {response.text[:300]}")


def _start(run: Run, stack: contextlib.ExitStack, server: ServerProcess) -> ServerProcess | None:
    """Start a server under ``stack`` (stopped when the run ends); None and a skip if it cannot start."""
    try:
        server.start()
    except Exception as error:
        run.skip(server.name, f"could not start: {error}")
        return None
    stack.callback(server.stop)
    say(f"bench: {server.name} at {server.base_url} (pid {server.pid})")
    return server


def _load_section(run: Run, stack: contextlib.ExitStack) -> ServerProcess | None:
    """GET / PUT at 8 connections on every server, and the mixed flow on the mock; return the mock."""
    config = run.config
    started: list[ServerProcess] = []
    hello = _start(run, stack, servers.hello_server(run.raw))
    if hello:
        started.append(hello)
    prism_bin, reason = (None, "--no-prism given") if run.results.get("no_prism") else (None, "")
    if not reason:
        prism_bin, reason = servers.ensure_prism(install=True)
    if prism_bin is None:
        run.skip("prism", reason)
    else:
        prism = _start(run, stack, servers.prism_server(run.raw, prism_bin))
        if prism:
            started.append(prism)
    db = run.raw / "mock-load.db"
    for suffix in ("", "-wal", "-shm"):
        Path(f"{db}{suffix}").unlink(missing_ok=True)
    mock = _start(run, stack, servers.mock_server(run.raw, db=db))
    if mock:
        try:
            _create_get_bill(mock.base_url)
        except Exception as error:
            run.fail("mock GET bill", error)
            mock = None
        else:
            started.append(mock)
        # Diagnostics, not targets: the same mock without --db (what the file store's commits cost), and with
        # two worker processes on one file (what a second core buys; Prism and the floor stay one process).
        memory = _start(run, stack, servers.mock_server(run.raw, name="mock-mem"))
        if memory:
            _create_get_bill(memory.base_url)
            started.append(memory)
        db2 = run.raw / "mock-load-w2.db"
        for suffix in ("", "-wal", "-shm"):
            Path(f"{db2}{suffix}").unlink(missing_ok=True)
        two = _start(run, stack, servers.mock_server(run.raw, db=db2, name="mock-w2", workers=2))
        if two:
            _create_get_bill(two.base_url)
            started.append(two)
    baseline_tree = run.results.get("baseline_tree")
    if baseline_tree:
        # The same mock from another source tree (e.g. a worktree of the commit before a redesign), on its own
        # database file, measured in the same rounds: the side-by-side ratios of `report.evaluate_targets`.
        db3 = run.raw / "mock-load-base.db"
        for suffix in ("", "-wal", "-shm"):
            Path(f"{db3}{suffix}").unlink(missing_ok=True)
        base = _start(run, stack, servers.mock_server(run.raw, db=db3, name=servers.BASELINE, tree=Path(baseline_tree)))
        if base:
            _create_get_bill(base.base_url)
            started.append(base)
    if not started:
        raise RuntimeError("no server could be started")
    for server in started:  # warm-up: imports, caches, JIT (Prism), connection set-up
        for scenario in ("get", "put"):
            run.load(server, scenario, 8, config.warmup_s)
    for index in range(config.rounds):
        say(f"bench: round {index + 1} of {config.rounds}")
        batch: list[LoadResult] = []
        # Scenario-major, with the server order rotated every round: the two runs of each compared pair
        # are close in time, and no server is always first after a pause.
        order = started[index % len(started) :] + started[: index % len(started)]
        for scenario in ("get", "put"):
            for server in order:
                batch.append(run.load(server, scenario, 8, config.duration_s))
        if mock:
            for connections in config.mixed_connections:
                batch.append(run.load(mock, "mixed", connections, config.duration_s))
        run.rounds.append(batch)
    return mock


def _client_section(run: Run, target: ServerProcess) -> None:
    """Generated client vs raw httpx, sync and async at concurrency 32, on ``target``."""
    config = run.config
    result = micro.measure_client_overhead(
        target.base_url,
        servers.TOKEN,
        get_bill_id=GET_BILL_ID,
        calls=config.client_calls,
        async_calls=config.async_calls,
        rounds=config.client_rounds,
        concurrency=32,
        prefix=f"{run.prefix}-client",
    )
    result["server"] = target.name
    result["note"] = (
        f"Against the {target.name} server; both sides share one httpx client, so the ratio is the generated "
        "layer's own cost (request model, kwargs, attrs parsing) over a round trip. Ratio: the median of "
        f"{config.client_rounds} interleaved rounds' paired ratios (the ratio of the fastest rounds is in the JSON)."
    )
    result["target_note"] = f"median of {config.client_rounds} paired rounds, on the {target.name}"
    run.results["client_overhead"] = result
    for mode in ("sync", "async"):
        part = result[mode]
        say(
            f"bench:   client {part['label']}: raw {part['raw_s']:.3f} s, generated {part['generated_s']:.3f} s, "
            f"ratio {part['ratio']:.3f}",
        )


def _signature_section(run: Run) -> None:
    """verify_signature per second against the bare HMAC compare."""
    try:
        import qiwi_bill

        qiwi_bill.verify_signature  # noqa: B018 - present once issue 3 has landed
    except (ImportError, AttributeError) as error:
        run.skip("signature", f"qiwi_bill.verify_signature is not available: {error}")
        return
    result = micro.measure_signature(loops=run.config.signature_loops, rounds=run.config.signature_rounds)
    run.results["signature"] = result
    say(
        f"bench:   bare HMAC {result['bare_per_s']:,.0f}/s, verify_signature {result['verify_per_s']:,.0f}/s, "
        f"cost ratio {result['ratio']:.2f}",
    )


def _random_get(run: Run, server: ServerProcess, count: int, seconds: float) -> LoadResult:
    """GET random seeded bills ``s-0`` .. ``s-{count-1}`` on one connection."""
    if run.wrk:
        return load.run_wrk(
            base_url=server.base_url,
            script="get_random",
            opts={"key": servers.TOKEN, "prefix": "s-", "count": str(count)},
            connections=1,
            duration_s=seconds,
            max_requests=run.config.max_requests,
            scratch=run.raw,
            scenario="get_random",
            server=f"mock-{count}",
        )
    return load.run_python_load(
        base_url=server.base_url,
        token=servers.TOKEN,
        scenario=load.RandomGetScenario("s-", count),
        connections=1,
        duration_s=seconds,
        max_requests=run.config.max_requests,
        scenario_name="get_random",
        server=f"mock-{count}",
    )


def _scale_section(run: Run) -> None:
    """GET latency and peak RSS of the file-backed mock seeded with each size.

    One server per size runs for the whole section, and the sizes are measured in interleaved rounds
    (the p50 kept is the median of the rounds), so a load swing of the shared machine does not land on
    one size only. Peak RSS is each server's ``VmHWM`` at the end.
    """
    config = run.config
    sizes: list[dict[str, Any]] = []
    run.results["scale"] = {"sizes": sizes, "connections": 1, "rounds": config.rounds}
    entries: list[tuple[int, Path, ServerProcess, dict[str, Any]]] = []
    try:
        for count in config.scale_sizes:
            db = run.raw / f"scale-{count}.db"
            seed_s = servers.seed_bills(db, count=count, prefix="s-")
            server = servers.mock_server(run.raw, db=db, name=f"mock-{count}")
            entries.append((count, db, server, {"bills": count, "seed_s": seed_s, "db_mb": db.stat().st_size / 1e6}))
            server.start()
            _random_get(run, server, count, config.warmup_s)
        results: dict[int, list[LoadResult]] = {count: [] for count, *_ in entries}
        for index in range(config.rounds):
            order = entries[index % len(entries) :] + entries[: index % len(entries)]
            for count, _db, server, _row in order:
                results[count].append(_random_get(run, server, count, config.scale_duration_s))
        for count, _db, server, row in entries:
            chosen = report.median_run(results[count])
            row.update(
                rps=chosen.rps,
                p50_ms=statistics.median(r.p50_ms for r in results[count]),
                p50_rounds_ms=[r.p50_ms for r in results[count]],
                p90_ms=chosen.p90_ms,
                p99_ms=statistics.median(r.p99_ms for r in results[count]),
                mean_ms=chosen.mean_ms,
                errors=sum(r.errors for r in results[count]),
                peak_rss_mb=server.peak_rss_bytes() / 1024 / 1024,
            )
            sizes.append(row)
            say(
                f"bench:   {count:>9,} bills: seeded in {row['seed_s']:.1f} s ({row['db_mb']:.0f} MB), GET p50 "
                f"{row['p50_ms']:.3f} ms (rounds {', '.join(f'{v:.3f}' for v in row['p50_rounds_ms'])}), "
                f"p99 {row['p99_ms']:.3f} ms, errors {row['errors']}, peak RSS {row['peak_rss_mb']:.1f} MB"
            )
            if row["errors"]:
                raise RuntimeError(f"{row['errors']} errors reading seeded bills at {count:,}")
    finally:
        for _count, db, server, _row in entries:
            server.stop()
            for suffix in ("", "-wal", "-shm"):
                Path(f"{db}{suffix}").unlink(missing_ok=True)


def _terminate(signum: int, _frame: FrameType | None) -> None:
    """Turn SIGTERM into KeyboardInterrupt, so that every started server is stopped."""
    raise KeyboardInterrupt(f"signal {signum}")


def main(argv: list[str] | None = None) -> int:
    """Run the benchmarks; return 0, or 1 when a section failed (a skipped prerequisite is not a failure)."""
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="seconds-long smoke run (CI); results in raw/quick/")
    parser.add_argument(
        "--out", type=Path, help="results folder (default bench/results; quick: bench/results/raw/quick)"
    )
    parser.add_argument("--no-prism", action="store_true", help="skip the Prism baseline")
    parser.add_argument(
        "--baseline-tree",
        type=Path,
        metavar="PATH",
        help="also run the mock of this source tree (e.g. a worktree of an older commit) as 'mock@base', side by side",
    )
    parser.add_argument(
        "--only",
        default="load,client,signature,scale",
        help="comma-separated sections to run (load, client, signature, scale)",
    )
    args = parser.parse_args(argv)
    config = Config.quick_run() if args.quick else Config.full()
    out: Path = args.out or (RESULTS / "raw" / "quick" if args.quick else RESULTS)
    raw = RESULTS / "raw"
    raw.mkdir(parents=True, exist_ok=True)
    sections = {s.strip() for s in args.only.split(",") if s.strip()}
    run = Run(config, out, raw)
    run.results["no_prism"] = args.no_prism
    if args.baseline_tree is not None:
        try:
            run.results["baseline_tree"] = str(servers.check_baseline_tree(args.baseline_tree))
        except ValueError as error:
            parser.error(str(error))
    signal.signal(signal.SIGTERM, _terminate)
    started = time.perf_counter()

    run.wrk, reason = servers.ensure_wrk(install=not config.quick)
    if run.wrk is None:
        run.notes.append(
            f"{reason}: the built-in Python load generator was used instead. It saturates long before the servers "
            "do, so its throughput numbers are not comparable with wrk's."
        )
        say(f"bench: NOTE {run.notes[-1]}")

    with contextlib.ExitStack() as stack:
        mock: ServerProcess | None = None
        hello: ServerProcess | None = None
        if "load" in sections:
            with run.section("load (GET, PUT, mixed)"):
                mock = _load_section(run, stack)
        if "client" in sections:
            with run.section("client overhead"):
                target = mock
                if target is None:
                    hello = _start(run, stack, servers.hello_server(run.raw))
                    target = hello
                    run.notes.append("The client overhead was measured on the hello-world app (no mock).")
                if target is not None:
                    _create_get_bill(target.base_url)
                    _client_section(run, target)
    if "signature" in sections:
        with run.section("signature"):
            _signature_section(run)
    if "scale" in sections:
        with run.section("scale"):
            _scale_section(run)

    runs = report.summarise_rounds(run.rounds)
    run.results.pop("no_prism", None)
    if "baseline_tree" in run.results:
        run.notes.append(f"{servers.BASELINE}: the mock of {run.results['baseline_tree']}, run side by side.")
    meta = {
        "date": datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "machine": _machine(),
        "quick": config.quick,
        "rounds": config.rounds,
        "duration_s": config.duration_s,
        "load_generator": (
            f"wrk {_wrk_version(run.wrk)} (-t1, Lua scripts in bench/lua)"
            if run.wrk
            else "built-in Python asyncio generator (wrk missing)"
        ),
        "node": _version(["node", "--version"]) if shutil.which("node") else "",
        "wall_s": 0.0,
        "notes": run.notes,
    }
    targets = report.evaluate_targets(run.results, runs, run.rounds)
    meta["wall_s"] = round(time.perf_counter() - started, 1)
    document = {"meta": meta, "targets": targets, "runs": [r.to_dict() for r in runs], **run.results}
    document["rounds"] = [[r.to_dict() for r in batch] for batch in run.rounds]
    out.mkdir(parents=True, exist_ok=True)
    report.write_json(out / "latest.json", document)
    markdown = report.render_markdown(document, runs, targets)
    (out / "latest.md").write_text(markdown)
    if runs:
        report.write_chart(out / "latest.png", runs, f"QIWI bill mock vs baselines, {meta['date']}")
    say("\n" + markdown)
    say(f"bench: wrote {out / 'latest.json'}, latest.md, latest.png in {meta['wall_s']:.0f} s")
    return 1 if run.results["failed"] else 0
