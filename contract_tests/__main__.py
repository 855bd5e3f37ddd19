"""``qiwi-contract`` / ``python -m contract_tests``: the contract suite as a command, from any directory.

By default it tests the embedded mock (in-process and over TCP) and also runs the suite's self-tests (the
breakage self-test against local mocks, the checks' own unit tests). ``--base-url`` and ``--secret-key`` (or the
environment variables ``QIWI_BASE_URL`` and ``QIWI_SECRET_KEY``) point it at another server; then only the tests
against that server run, unless ``--self-test`` is given. Every test case is reported per operation and phase in
a JUnit XML file (``reports/qiwi-contract.xml`` unless ``--junit-xml`` says otherwise).

Exit status: 0 the server honours the contract; 1 contract failures; 2 the server cannot be reached or refuses
the key (one line, nothing run); 3 a usage error (bad option, missing key, a ``-k`` that selects nothing);
130 interrupted. Arguments after ``--`` go to pytest unchanged.
"""

from __future__ import annotations

import argparse
import importlib.metadata
import importlib.util
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import NoReturn
from urllib.parse import urlsplit

# Only light modules are imported here: pytest must import the suite and its plugins itself (httpx would import
# anyio, a pytest plugin), or it cannot rewrite their asserts (PytestAssertRewriteWarning, an error under the
# suite's filterwarnings). contract_tests._preflight uses the standard library only.
from contract_tests._preflight import (
    EXIT_FAILED,
    EXIT_INTERRUPTED,
    EXIT_OK,
    EXIT_UNREACHABLE,
    EXIT_USAGE,
    PREFLIGHT_EXIT,
    PreflightError,
    preflight,
)

PACKAGE_DIR = Path(__file__).resolve().parent
DEFAULT_JUNIT = Path("reports") / "qiwi-contract.xml"
PROG = "qiwi-contract"

# pytest's exit codes (pytest.ExitCode) -> this command's.
_EXIT_CODES = {0: EXIT_OK, 1: EXIT_FAILED, 2: EXIT_INTERRUPTED, 3: EXIT_FAILED, 4: EXIT_USAGE, 5: EXIT_USAGE}


class _Parser(argparse.ArgumentParser):
    """argparse exits 2 on a usage error; 2 means "target unreachable" here, so usage errors exit 3."""

    def error(self, message: str) -> NoReturn:
        self.print_usage(sys.stderr)
        self.exit(EXIT_USAGE, f"{self.prog}: error: {message}\n")


def _version() -> str:
    """The distribution's version, as ``qiwi_bill.__version__`` reads it (importing qiwi_bill would import httpx)."""
    try:
        return importlib.metadata.version("qiwi-bill-toolkit")
    except importlib.metadata.PackageNotFoundError:
        return "0+unknown"


def build_parser() -> argparse.ArgumentParser:
    """The command line (``qiwi-contract --help``)."""
    parser = _Parser(
        prog=PROG,
        description="Check a QIWI bill-payments API v1 server against the OpenAPI contract "
        "(default: the embedded mock).",
        epilog="Exit status: 0 pass, 1 contract failures, 2 server unreachable or key refused, 3 usage error. "
        "Arguments after -- go to pytest. Environment: QIWI_BASE_URL, QIWI_SECRET_KEY, QIWI_PUBLIC_KEY, "
        "QIWI_HYPOTHESIS_PROFILE, QIWI_CONTRACT_SEED, QIWI_CONTRACT_DESTRUCTIVE, QIWI_CONTRACT_MOCK_CONTROLS "
        "(see docs/ci.md).",
    )
    add = parser.add_argument
    add("--version", action="version", version=f"%(prog)s {_version()}")
    add("--base-url", default=os.environ.get("QIWI_BASE_URL") or None, help="the server to test (QIWI_BASE_URL)")
    add("--secret-key", help="its merchant's secret key; prefer QIWI_SECRET_KEY, arguments show up in ps")
    add("--public-key", default=os.environ.get("QIWI_PUBLIC_KEY") or None, help="its public key (QIWI_PUBLIC_KEY)")
    add(
        "--junit-xml",
        default=str(DEFAULT_JUNIT),
        metavar="PATH",
        help=f"where the JUnit report goes (default {DEFAULT_JUNIT}; '' writes none)",
    )
    add("--profile", choices=["dev", "ci"], default=None, help="test budget (QIWI_HYPOTHESIS_PROFILE, default dev)")
    add("--seed", type=int, default=None, help="the engine's seed, to replay a run (QIWI_CONTRACT_SEED)")
    add(
        "--destructive",
        action="store_true",
        help="fuzz creates and refunds on a server that is not the mock (QIWI_CONTRACT_DESTRUCTIVE=1)",
    )
    add("-k", dest="keyword", default=None, metavar="EXPR", help="only tests matching EXPR, e.g. -k createBill")
    add("-x", "--exitfirst", action="store_true", help="stop at the first failing test")
    add("-v", "--verbose", action="store_true", help="one line per test case")
    self_test = parser.add_mutually_exclusive_group()
    self_test.add_argument(
        "--self-test",
        dest="self_test",
        action="store_true",
        default=None,
        help="also run the suite's self-tests on local mocks (the default without --base-url)",
    )
    self_test.add_argument("--no-self-test", dest="self_test", action="store_false", help="skip them")
    add("pytest_args", nargs="*", metavar="-- PYTEST-ARGS", help="passed to pytest unchanged")
    return parser


def _environment(args: argparse.Namespace) -> dict[str, str]:
    """The environment variables that carry the target and the budget to the suite's fixtures."""
    env: dict[str, str] = {}
    if args.base_url:
        env["QIWI_BASE_URL"] = args.base_url
        env["QIWI_SECRET_KEY"] = args.secret_key or ""
        if args.public_key:
            env["QIWI_PUBLIC_KEY"] = args.public_key
    if args.profile:
        env["QIWI_HYPOTHESIS_PROFILE"] = args.profile
    if args.seed is not None:
        env["QIWI_CONTRACT_SEED"] = str(args.seed)
    if args.destructive:
        env["QIWI_CONTRACT_DESTRUCTIVE"] = "1"
    self_test = args.self_test if args.self_test is not None else not args.base_url
    env["QIWI_CONTRACT_SELF_TEST"] = "1" if self_test else "0"
    # The tests of this command start it again in a subprocess: `make test` runs them, not every contract run.
    env["QIWI_CONTRACT_CLI_TESTS"] = os.environ.get("QIWI_CONTRACT_CLI_TESTS", "0")
    return env


def pytest_arguments(args: argparse.Namespace) -> list[str]:
    """What ``pytest.main`` gets: the installed package, its own ini file, the report and the selection."""
    out = [str(PACKAGE_DIR), "-c", str(PACKAGE_DIR / "_pytest.ini"), "--rootdir", str(PACKAGE_DIR.parent)]
    out += ["--no-header", "-rN", "-v" if args.verbose else "-q", "--contract-progress"]
    if args.junit_xml:
        out.append(f"--junit-xml={args.junit_xml}")
    if args.keyword:
        out += ["-k", args.keyword]
    if args.exitfirst:
        out.append("-x")
    return out + list(args.pytest_args)


def _is_http_url(text: str) -> bool:
    try:
        url = urlsplit(text)
        url.port  # noqa: B018 - raises ValueError on a port that is not a number
    except ValueError:
        return False
    return url.scheme in ("http", "https") and bool(url.hostname)


def _fail(code: int, message: str) -> int:
    print(f"{PROG}: {message}", file=sys.stderr, flush=True)  # noqa: T201 - a command's one-line verdict
    return code


def main(argv: Sequence[str] | None = None) -> int:
    """Run the suite; return the exit status described in the module docstring."""
    args = build_parser().parse_args(sys.argv[1:] if argv is None else argv)
    if args.secret_key and not args.base_url:
        return _fail(EXIT_USAGE, "--secret-key without --base-url: the embedded mock has its own key")
    # The key from the environment only counts with a target (a QIWI_SECRET_KEY left in a shell is no error).
    args.secret_key = args.secret_key or os.environ.get("QIWI_SECRET_KEY") or None
    if args.base_url and not args.secret_key:
        return _fail(EXIT_USAGE, "--base-url needs --secret-key (or QIWI_SECRET_KEY): the merchant's secret key")
    profile = args.profile or os.environ.get("QIWI_HYPOTHESIS_PROFILE", "").strip() or "dev"
    if profile not in ("dev", "ci"):
        return _fail(EXIT_USAGE, f"QIWI_HYPOTHESIS_PROFILE must be dev or ci, not {profile!r}")
    # Looked up, not imported: schemathesis is a pytest plugin, and a plugin imported before pytest starts cannot
    # have its asserts rewritten (PytestAssertRewriteWarning, an error under the suite's filterwarnings).
    missing = [name for name in ("pytest", "schemathesis", "hypothesis") if importlib.util.find_spec(name) is None]
    if missing:
        return _fail(EXIT_USAGE, f"{', '.join(missing)} missing: pip install 'qiwi-bill-toolkit[contract]'")
    if args.base_url:
        if not _is_http_url(args.base_url):
            return _fail(EXIT_USAGE, f"--base-url {args.base_url!r} is not an http:// or https:// URL")
        try:
            preflight(args.base_url, args.secret_key)
        except PreflightError as exc:
            return _fail(EXIT_UNREACHABLE, str(exc))
    os.environ.update(_environment(args))
    import pytest

    status = int(pytest.main(pytest_arguments(args)))
    if args.junit_xml and Path(args.junit_xml).is_file():
        print(f"JUnit report: {args.junit_xml}", flush=True)  # noqa: T201 - where CI picks it up
    if status == PREFLIGHT_EXIT:  # the fixture's own preflight failed (the server went away mid-run)
        return EXIT_UNREACHABLE
    return _EXIT_CODES.get(status, EXIT_FAILED)


if __name__ == "__main__":
    raise SystemExit(main())
