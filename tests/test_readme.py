"""The documentation's Python examples run, as written, against the mock started the way the documents say.

Every ```python block of the README and of the guides that moved out of it (docs/client.md, docs/walkthrough.md,
docs/behaviour.md, docs/helpers.md) is executed in a fresh interpreter, with warnings as errors; a block that
defines `test_` functions (the README's first-screen example) runs under pytest, which must collect and pass
them. The only substitution is the mock's address: the documents say `127.0.0.1:8080`; the test starts
`qiwi-bill-mock` once, with the documents' first `make mock ARGS=...` arguments, on a free port, and points the
examples there.
"""

from __future__ import annotations

import os
import re
import shlex
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from qiwi_bill_mock.testing import MockProcess

ROOT = Path(__file__).resolve().parent.parent
DOCUMENTS = ("README.md", "docs/client.md", "docs/walkthrough.md", "docs/behaviour.md", "docs/helpers.md")
TEXT = {name: (ROOT / name).read_text(encoding="utf-8") for name in DOCUMENTS}
BLOCKS = [
    (f"{name} block {index}", code)
    for name in DOCUMENTS
    for index, code in enumerate(re.findall(r"```python\n(.*?)```", TEXT[name], re.S))
]
DOC_ADDRESS = "http://127.0.0.1:8080"


def _readme_mock_args() -> list[str]:
    match = re.search(r'make mock ARGS="([^"]*)"', "\n".join(TEXT.values()))
    assert match, "the documents show how to start the mock with `make mock ARGS=...`"
    return shlex.split(match.group(1))


@pytest.fixture(scope="module")
def mock_url() -> Iterator[str]:
    with MockProcess(*_readme_mock_args()) as mock:
        yield mock.url


@pytest.mark.parametrize("name", DOCUMENTS)
def test_document_has_examples(name: str) -> None:
    assert any(where.startswith(f"{name} ") for where, _ in BLOCKS)


@pytest.mark.parametrize(("where", "code"), BLOCKS, ids=[where for where, _ in BLOCKS])
def test_python_block_runs(where: str, code: str, mock_url: str, tmp_path: Path) -> None:
    code = code.replace(DOC_ADDRESS, mock_url)
    is_test = re.search(r"^def test_", code, re.M) is not None
    script = tmp_path / ("test_block.py" if is_test else "block.py")
    script.write_text(code, encoding="utf-8")
    env = {**os.environ, "QIWI_MOCK_URL": mock_url}
    # A pytest example runs under pytest in a directory of its own (no project config), as in a fresh project: the
    # dev venv's pytest-asyncio would warn about its unset loop scope, an error under -W error.
    command = [sys.executable, "-W", "error", "-m", "pytest", "-q", "-p", "no:cacheprovider", "-p", "no:asyncio"]
    command.append(str(script))
    result = subprocess.run(
        command if is_test else [sys.executable, "-W", "error", str(script)],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, f"{where} failed:\n{code}\n{result.stdout}\n{result.stderr}"
    if is_test:
        assert re.search(r"\b[1-9]\d* passed\b", result.stdout), result.stdout  # collected and ran, not 0 tests
