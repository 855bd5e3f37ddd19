"""Profile the mock's request path: ``python -m bench.profile [get|put|mixed] [--seconds N] [--top N]``.

Runs the mock's own CLI under the standard library's cProfile (file-backed store, default
features), loads it with wrk (or the Python generator) on 127.0.0.1 for a bounded time, stops it
with SIGTERM (the mock shuts down cleanly, so cProfile writes its data), and prints the functions
with the largest own and cumulative time. Raw data: ``bench/results/raw/profile-<scenario>.prof``.
"""

from __future__ import annotations

import argparse
import io
import pstats
import signal
import sys
from pathlib import Path

from bench import load, servers
from bench.cli import _create_get_bill, _scenario
from bench.procs import ServerProcess, say

__all__ = ["main"]

RAW = Path(__file__).resolve().parent / "results" / "raw"


def main(argv: list[str] | None = None) -> int:
    """Profile one scenario and print the hottest functions."""
    parser = argparse.ArgumentParser(prog="python -m bench.profile", description=__doc__.split("\n\n")[0])
    parser.add_argument("scenario", nargs="?", default="get", choices=["get", "put", "mixed"])
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--connections", type=int, default=8)
    parser.add_argument("--top", type=int, default=35)
    args = parser.parse_args(argv)
    RAW.mkdir(parents=True, exist_ok=True)
    prof = RAW / f"profile-{args.scenario}.prof"
    db = RAW / "profile.db"
    for suffix in ("", "-wal", "-shm"):
        Path(f"{db}{suffix}").unlink(missing_ok=True)
    mock = servers.mock_server(RAW, db=db, name="mock-profile")
    server = ServerProcess(
        mock.name,
        _profile_argv(mock.argv, prof),
        log_path=mock.log_path,
        health_path="/_mock/health",
        stop_signal=signal.SIGINT,
    )
    prof.unlink(missing_ok=True)
    with server:
        _create_get_bill(server.base_url)
        script, opts, py_scenario = _scenario(args.scenario, f"prof{args.scenario}")
        if load.wrk_path():
            result = load.run_wrk(
                base_url=server.base_url,
                script=script,
                opts={"key": servers.TOKEN, **opts},
                connections=args.connections,
                duration_s=args.seconds,
                max_requests=int(args.seconds * 60_000),
                scratch=RAW,
                scenario=args.scenario,
                server="mock-profile",
            )
        else:
            result = load.run_python_load(
                base_url=server.base_url,
                token=servers.TOKEN,
                scenario=py_scenario,
                connections=args.connections,
                duration_s=args.seconds,
                max_requests=int(args.seconds * 60_000),
                scenario_name=args.scenario,
                server="mock-profile",
            )
    say(f"{args.scenario}: {result.rps:,.0f} req/s under cProfile, p50 {result.p50_ms:.2f} ms, errors {result.errors}")
    if not prof.exists():
        say(f"no profile written; server log:\n{server.log_tail()}")
        return 1
    for order in ("tottime", "cumulative"):
        out = io.StringIO()
        pstats.Stats(str(prof), stream=out).sort_stats(order).print_stats(args.top)
        say(f"---- by {order} ----\n" + out.getvalue().split("\n\n", 2)[-1])
    return 0


def _profile_argv(argv: list[str], prof: Path) -> list[str]:
    """``python -m qiwi_bill_mock ARGS`` → ``python -m cProfile -o PROF -m qiwi_bill_mock ARGS``."""
    module_at = argv.index("qiwi_bill_mock")
    return [sys.executable, "-m", "cProfile", "-o", str(prof), "-m", "qiwi_bill_mock", *argv[module_at + 1 :]]


if __name__ == "__main__":
    raise SystemExit(main())
