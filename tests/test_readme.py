"""The documentation's Python examples run, as written, against the mock started the way the README says.

Every ```python block of the README and of docs/helpers.md is executed in a fresh interpreter, with
warnings as errors. The only substitution is the mock's address: the documents say `127.0.0.1:8080`;
the test starts `qiwi-bill-mock` once, with the README's own `make mock ARGS=...` arguments, on a free
port, and points the examples there.
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
README = (ROOT / "README.md").read_text(encoding="utf-8")
DOCUMENTS = ("README.md", "docs/helpers.md")
BLOCKS = [
    (f"{name} block {index}", code)
    for name in DOCUMENTS
    for index, code in enumerate(re.findall(r"```python\n(.*?)```", (ROOT / name).read_text(encoding="utf-8"), re.S))
]
DOC_ADDRESS = "http://127.0.0.1:8080"


def _readme_mock_args() -> list[str]:
    match = re.search(r'make mock ARGS="([^"]*)"', README)
    assert match, "the README shows how to start the mock with `make mock ARGS=...`"
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
    script = tmp_path / "block.py"
    script.write_text(code, encoding="utf-8")
    env = {**os.environ, "QIWI_MOCK_URL": mock_url}
    result = subprocess.run(
        [sys.executable, "-W", "error", str(script)],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, f"{where} failed:\n{code}\n{result.stdout}\n{result.stderr}"
