"""Every example of docs/testing.md runs: each `# file: NAME` block becomes a test file of a user's project.

The README's blocks marked the same way (its first-screen fixture example) run too; a block that both documents
name must be the same text in both.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

pytest_plugins = ["pytester"]

ROOT = Path(__file__).resolve().parents[2]
DOCUMENTS = (ROOT / "docs" / "testing.md", ROOT / "README.md")
_BLOCK = re.compile(r"```python\n# file: (?P<name>\S+)[^\n]*\n(?P<code>.*?)```", re.DOTALL)


def doc_files() -> dict[str, str]:
    """The documents' test files by name."""
    files: dict[str, str] = {}
    for document in DOCUMENTS:
        for match in _BLOCK.finditer(document.read_text(encoding="utf-8")):
            name, code = match["name"], match["code"]
            assert files.setdefault(name, code) == code, f"{name} differs between the documents"
    return files


def test_the_doc_has_an_example_for_each_style() -> None:
    assert set(doc_files()) >= {
        "test_checkout.py",  # in-process, generated client
        "test_legacy_shop.py",  # interception of api.qiwi.com
        "test_requests_client.py",  # a server process for non-httpx code
        "test_notify_endpoint.py",  # a notification receiver under test
        "test_first_screen.py",  # the README's first screen
    }


def test_every_example_passes(pytester: pytest.Pytester) -> None:
    files = doc_files()
    pytester.makeini("[pytest]\nasyncio_default_fixture_loop_scope = function\n")
    for name, code in files.items():
        pytester.makepyfile(**{name.removesuffix(".py"): code})
    result = pytester.runpytest("-p", "no:randomly", "-p", "no:cacheprovider", "-v")
    outcomes = result.parseoutcomes()
    assert outcomes.get("failed", 0) == outcomes.get("errors", 0) == outcomes.get("skipped", 0) == 0, result.stdout
    assert outcomes["passed"] == 11
    for name in files:
        result.stdout.fnmatch_lines([f"{name}::* PASSED*"])
