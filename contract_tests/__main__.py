"""``python -m contract_tests [pytest options]``: the whole contract suite, then a short summary.

The main job of the project (``make contract``). By default it tests the embedded mock in-process and
over TCP; ``QIWI_BASE_URL`` + ``QIWI_SECRET_KEY`` point it at another server (see docs/contract-tests.md).
Extra arguments go to pytest, e.g. ``python -m contract_tests -k conformance -x``. The exit status is
pytest's: non-zero on any failure.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

# Nothing else from this package is imported here: pytest must import the suite itself, or it cannot
# rewrite its asserts (PytestAssertRewriteWarning, an error under the project's filterwarnings).
REPO_ROOT = Path(__file__).resolve().parent.parent


def main(argv: list[str] | None = None) -> int:
    """Run the suite from the repository root and return pytest's exit status."""
    os.chdir(REPO_ROOT)
    args = ["contract_tests", "-q", "--no-header", *(sys.argv[1:] if argv is None else argv)]
    return int(pytest.main(args))


if __name__ == "__main__":
    raise SystemExit(main())
