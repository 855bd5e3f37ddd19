"""Every example of docs/testing.md runs: each `# file: NAME` block becomes a test file of a user's project."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

pytest_plugins = ["pytester"]

DOC = Path(__file__).resolve().parents[2] / "docs" / "testing.md"
_BLOCK = re.compile(r"```python\n# file: (?P<name>\S+)\n(?P<code>.*?)```", re.DOTALL)


def doc_files() -> dict[str, str]:
    """The doc's test files by name."""
    return {match["name"]: match["code"] for match in _BLOCK.finditer(DOC.read_text(encoding="utf-8"))}


def test_the_doc_has_an_example_for_each_style() -> None:
    assert set(doc_files()) >= {
        "test_checkout.py",  # in-process, generated client
        "test_legacy_shop.py",  # interception of api.qiwi.com
        "test_requests_client.py",  # a server process for non-httpx code
        "test_notify_endpoint.py",  # a notification receiver under test
    }


def test_every_example_passes(pytester: pytest.Pytester) -> None:
    files = doc_files()
    pytester.makeini("[pytest]\nasyncio_default_fixture_loop_scope = function\n")
    for name, code in files.items():
        pytester.makepyfile(**{name.removesuffix(".py"): code})
    result = pytester.runpytest("-p", "no:randomly", "-p", "no:cacheprovider", "-v")
    outcomes = result.parseoutcomes()
    assert outcomes.get("failed", 0) == outcomes.get("errors", 0) == outcomes.get("skipped", 0) == 0, result.stdout
    assert outcomes["passed"] == 10
    for name in files:
        result.stdout.fnmatch_lines([f"{name}::* PASSED*"])
