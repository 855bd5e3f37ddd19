"""The README's Python examples run, as written, against the mock started the way the README says.

Each ```python block is executed in a fresh interpreter. The only substitution is the mock's address:
the README says `127.0.0.1:8080`; the test starts `qiwi-bill-mock` with the README's own arguments on
a free port and points the examples there.
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
BLOCKS = re.findall(r"```python\n(.*?)```", README, flags=re.S)
README_ADDRESS = "http://127.0.0.1:8080"


def _readme_mock_args() -> list[str]:
    match = re.search(r'make mock ARGS="([^"]*)"', README)
    assert match, "the README shows how to start the mock with `make mock ARGS=...`"
    return shlex.split(match.group(1))


@pytest.fixture(scope="module")
def mock_url() -> Iterator[str]:
    with MockProcess(*_readme_mock_args()) as mock:
        yield mock.url


def test_readme_has_examples() -> None:
    assert BLOCKS


@pytest.mark.parametrize("index", range(len(BLOCKS)))
def test_readme_python_block_runs(index: int, mock_url: str, tmp_path: Path) -> None:
    code = BLOCKS[index].replace(README_ADDRESS, mock_url)
    script = tmp_path / f"readme_block_{index}.py"
    script.write_text(code, encoding="utf-8")
    env = {**os.environ, "QIWI_MOCK_URL": mock_url}
    result = subprocess.run(
        [sys.executable, str(script)], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=60, check=False
    )
    assert result.returncode == 0, f"README block {index} failed:\n{code}\n{result.stdout}\n{result.stderr}"
