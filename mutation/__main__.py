"""``python -m mutation``: mutation testing of the mock's API code against the contract suite.

For each mutant of a seeded sample (mutation/config.toml): copy the repository's code to a scratch
directory once, apply the mutant there, and run the contract suite on the in-process mock from that copy,
conformance first, then the rest, each with a timeout. Outcomes: killed by conformance, killed by the rest
of the suite, survived, timed out, not importable. mutation/report.md and report.json hold the result; the
score is computed on contract-observable mutants (survivors listed in mutation/equivalent.toml are not).

    python -m mutation                 # the seeded sample of config.toml (make mutation)
    python -m mutation --sample 10     # a smaller one
    python -m mutation --ci            # re-run mutants the last report killed; fail if one survives
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import random
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import tomllib
from collections import Counter
from pathlib import Path
from typing import Any

from mutation._mutants import Mutant, apply, diff, iter_all

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
COPIED = ("qiwi_bill_mock", "qiwi_bill", "contract_tests", "openapi", "generated_client")
COPIED_FILES = ("pyproject.toml", "schemathesis.toml")
# A mutant that hangs a stage is killed by it: "timed-out" is the conformance stage, "timed-out-rest" the rest.
KILLED = ("killed-conformance", "killed-suite", "timed-out", "timed-out-rest")
BY_CONFORMANCE = ("killed-conformance", "timed-out")


def _say(*parts: object, **kwargs: Any) -> None:
    """Progress on stdout (this is a command-line tool)."""
    print(*parts, **kwargs)  # noqa: T201


def _key(result: dict[str, Any]) -> tuple[str, str, str, str]:
    file, function, original, mutated = result["key"]
    return (file, function, original, mutated)


def _config() -> dict[str, Any]:
    with (HERE / "config.toml").open("rb") as handle:
        return tomllib.load(handle)


def _equivalent() -> dict[tuple[str, str, str, str], str]:
    path = HERE / "equivalent.toml"
    if not path.is_file():
        return {}
    with path.open("rb") as handle:
        data = tomllib.load(handle)
    return {(e["file"], e["function"], e["original"], e["mutated"]): e["reason"] for e in data.get("equivalent", [])}


def _scratch() -> Path:
    """A copy of the code the suite needs (the original tree is never touched)."""
    scratch = Path(tempfile.mkdtemp(prefix="qiwi-mutation-"))
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc", ".hypothesis", ".pytest_cache")
    for name in COPIED:
        shutil.copytree(ROOT / name, scratch / name, ignore=ignore)
    for name in COPIED_FILES:
        shutil.copy2(ROOT / name, scratch / name)
    return scratch


def _pytest(scratch: Path, tests: list[str], timeout: float) -> str:
    """``passed``, ``failed`` or ``timeout`` for one pytest run from the scratch copy."""
    env = {
        **os.environ,
        "QIWI_CONTRACT_TARGETS": "asgi",
        "QIWI_HYPOTHESIS_PROFILE": "dev",
        # The copy comes first on sys.path (pytest's rootdir insertion and the cwd put it there too).
        "PYTHONPATH": str(scratch),
    }
    env.pop("QIWI_BASE_URL", None)
    command = [sys.executable, "-m", "pytest", *tests, "-x", "-q", "-p", "no:randomly", "-p", "no:cacheprovider"]
    try:
        result = subprocess.run(command, cwd=scratch, env=env, capture_output=True, timeout=timeout, check=False)
    except subprocess.TimeoutExpired:
        return "timeout"
    return "passed" if result.returncode == 0 else "failed"


def _importable(scratch: Path, mutant: Mutant) -> bool:
    module = mutant.file.removesuffix(".py").replace("/", ".")
    env = {**os.environ, "PYTHONPATH": str(scratch)}
    code = f"import {module}, qiwi_bill_mock.app; qiwi_bill_mock.app.create_app()"
    result = subprocess.run([sys.executable, "-c", code], cwd=scratch, env=env, capture_output=True, check=False)
    return result.returncode == 0


def run_one(scratch: Path, mutant: Mutant, run: dict[str, Any]) -> str:
    """The outcome of one mutant (the scratch file is restored afterwards)."""
    path = scratch / mutant.file
    original = path.read_text(encoding="utf-8")
    try:
        mutated = apply(original, mutant)
        try:
            compile(mutated, mutant.file, "exec")
        except SyntaxError:
            return "not-importable"
        path.write_text(mutated, encoding="utf-8")
        if not _importable(scratch, mutant):
            return "not-importable"
        conformance = _pytest(scratch, run["conformance"], run["timeout"])
        if conformance != "passed":
            return "timed-out" if conformance == "timeout" else "killed-conformance"
        rest = _pytest(scratch, run["rest"], run["timeout"])
        if rest != "passed":
            return "timed-out-rest" if rest == "timeout" else "killed-suite"
        return "survived"
    finally:
        path.write_text(original, encoding="utf-8")


def _score(results: list[dict[str, Any]]) -> dict[str, Any]:
    observable = [r for r in results if r["outcome"] != "not-importable" and not r["equivalent"]]
    killed = [r for r in observable if r["outcome"] in KILLED]
    by_conformance = [r for r in observable if r["outcome"] in BY_CONFORMANCE]
    n = len(observable)
    return {
        "observable": n,
        "killed_suite": len(killed),
        "killed_conformance": len(by_conformance),
        "score_suite": round(100 * len(killed) / n, 1) if n else None,
        "score_conformance": round(100 * len(by_conformance) / n, 1) if n else None,
    }


def _report(results: list[dict[str, Any]], meta: dict[str, Any]) -> str:
    score = _score(results)
    lines = [
        "# Mutation testing: the contract suite against mutants of the mock's API code",
        "",
        f"Run {meta['date']} (UTC), seed {meta['seed']}, {meta['sampled']} mutants sampled of {meta['total']} "
        f"({meta['mode']}{', on ' + meta['rerun'] if meta.get('rerun') else ''}), {meta['seconds']:.0f} s on this "
        "machine. `make mutation` re-runs it (mutation/README.md).",
        "",
        f"**Score on contract-observable mutants ({score['observable']}):** whole contract suite "
        f"{score['score_suite']}% ({score['killed_suite']} killed), conformance alone {score['score_conformance']}% "
        f"({score['killed_conformance']}). Timed-out mutants count as killed, by the stage they hung (a hung "
        "conformance run is conformance's kill); mutants listed in "
        "mutation/equivalent.toml and not-importable ones are left out of the score.",
        "",
        "| file | mutants | killed by conformance | killed by the rest | timed out | survived | equivalent "
        "| not importable |",
        "|---|---|---|---|---|---|---|---|",
    ]
    files = sorted({r["file"] for r in results})
    for file in files:
        rows = [r for r in results if r["file"] == file]
        count = Counter(r["outcome"] for r in rows if not r["equivalent"])
        equivalent = sum(1 for r in rows if r["equivalent"])
        timed_out = count["timed-out"] + count["timed-out-rest"]
        lines.append(
            f"| {file} | {len(rows)} | {count['killed-conformance']} | {count['killed-suite']} | {timed_out} "
            f"| {count['survived']} | {equivalent} | {count['not-importable']} |"
        )
    survivors = [r for r in results if r["outcome"] == "survived" and not r["equivalent"]]
    lines += ["", f"## Survivors not reviewed as equivalent ({len(survivors)})", ""]
    for r in survivors:
        lines += [f"- `{r['file']}` `{r['function']}` ({r['operator']}):", "", "```diff", r["diff"].rstrip(), "```", ""]
    reviewed = [r for r in results if r["equivalent"]]
    lines += ["", f"## Survivors reviewed as not contract-observable ({len(reviewed)}, mutation/equivalent.toml)", ""]
    lines += [
        f"- `{r['file']}` `{r['function']}`: `{r['original']}` → `{r['mutated']}`: {r['equivalent']}" for r in reviewed
    ]
    return "\n".join(lines) + "\n"


_OPTIONS = (
    ("--sample", int, "how many mutants (default: config.toml)"),
    ("--seed", int, "sampling seed (default: config.toml)"),
    ("--ci", bool, "re-run mutants the last report killed; fail if one survives"),
    ("--list", bool, "print how many mutants each file has and exit"),
    ("--rerun-survivors", bool, "re-run the last report's unreviewed survivors with the current suite"),
    ("--rerun-weak", bool, "re-run what conformance did not kill outright: survivors, kills by the rest, timeouts"),
)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m mutation", description=__doc__.splitlines()[0])
    for name, kind, text in _OPTIONS:
        parser.add_argument(name, **({"type": int} if kind is int else {"action": "store_true"}), help=text)
    args = parser.parse_args(argv)
    config = _config()
    run = config["run"]
    excluded = frozenset(config["mutate"].get("exclude_functions", ()))
    mutants = sorted(iter_all(ROOT, config["mutate"]["files"], excluded))
    if args.list:
        for file, n in sorted(Counter(m.file for m in mutants).items()):
            _say(f"{file}: {n}")
        _say(f"total: {len(mutants)}")
        return 0
    seed = args.seed if args.seed is not None else run["seed"]
    equivalent = _equivalent()
    previous: list[dict[str, Any]] = []
    if args.rerun_survivors or args.rerun_weak:
        baseline = json.loads((HERE / "report.json").read_text(encoding="utf-8"))
        previous = baseline["results"]
        weak = ("killed-suite", "timed-out", "timed-out-rest") if args.rerun_weak else ()
        again = {
            tuple(r["key"])
            for r in previous
            if (r["outcome"] == "survived" and not equivalent.get(tuple(r["key"]))) or r["outcome"] in weak
        }
        chosen = [m for m in mutants if m.key in again]
        what = "survivors, kills by the rest and timeouts" if args.rerun_weak else "unreviewed survivors"
        seed, mode = baseline["meta"]["seed"], baseline["meta"]["mode"].split(";")[0] + f"; {what} re-run"
    elif args.ci:
        baseline = json.loads((HERE / "report.json").read_text(encoding="utf-8"))
        # Timed-out mutants count as killed but cost the whole timeout each: CI re-runs the quickly killed ones.
        killed = {tuple(r["key"]) for r in baseline["results"] if r["outcome"] in KILLED[:2]}
        # One mutant per key: a key's twin may be the one that hung (two identical edits in one function).
        first = {m.key: m for m in reversed([m for m in mutants if m.key in killed])}
        chosen = sorted(first.values())[: args.sample or run["ci_sample"]]
        mode = "CI: mutants the last full run killed"
    else:
        chosen = sorted(random.Random(seed).sample(mutants, min(args.sample or run["sample"], len(mutants))))
        mode = "seeded sample"
    # A stopped run still cleans up: SystemExit unwinds through subprocess.run (which kills the suite it was
    # running) and the `finally` below (which removes the scratch copy).
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    scratch = _scratch()
    started = time.monotonic()
    results: list[dict[str, Any]] = []
    try:
        for index, mutant in enumerate(chosen, 1):
            t0 = time.monotonic()
            outcome = run_one(scratch, mutant, run)
            source = (ROOT / mutant.file).read_text(encoding="utf-8")
            results.append(
                {
                    "key": list(mutant.key),
                    "file": mutant.file,
                    "function": mutant.function,
                    "line": mutant.line,
                    "operator": mutant.operator,
                    "original": mutant.original,
                    "mutated": mutant.mutated,
                    "outcome": outcome,
                    "equivalent": equivalent.get(mutant.key, "") if outcome == "survived" else "",
                    "diff": diff(source, mutant),
                    "seconds": round(time.monotonic() - t0, 1),
                }
            )
            _say(f"[{index}/{len(chosen)}] {outcome:18} {mutant.label} ({time.monotonic() - t0:.0f}s)", flush=True)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    meta = {
        "date": dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M"),
        "seed": seed,
        "sampled": len(chosen),
        "total": len(mutants),
        "mode": mode,
        "seconds": time.monotonic() - started,
    }
    if previous:
        # The earlier outcomes stand, the re-run ones replace theirs; reviews are re-read for every survivor.
        rerun = {_key(r): r for r in results}
        results = [rerun.get(_key(r), r) for r in previous]
        for r in results:
            r["equivalent"] = equivalent.get(_key(r), "") if r["outcome"] == "survived" else ""
        old = json.loads((HERE / "report.json").read_text(encoding="utf-8"))["meta"]
        meta = {**old, "mode": mode, "rerun": meta["date"], "seconds": old["seconds"] + meta["seconds"]}
    _say(json.dumps(_score(results)))
    if args.ci:
        lost = [r for r in results if r["outcome"] == "survived"]
        for r in lost:
            _say(f"REGRESSION: a mutant the last full run killed survives:\n{r['diff']}", file=sys.stderr)
        return 1 if lost else 0
    report = {"meta": meta, "score": _score(results), "results": results}
    (HERE / "report.json").write_text(json.dumps(report, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
    (HERE / "report.md").write_text(_report(results, meta), encoding="utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
