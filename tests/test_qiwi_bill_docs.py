"""docs/helpers.md: every ```python block runs as written (the mock's address swapped for a live mock's)."""

from __future__ import annotations

import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from qiwi_bill_mock.testing import MockProcess

ROOT = Path(__file__).resolve().parent.parent
DOC = (ROOT / "docs" / "helpers.md").read_text(encoding="utf-8")
README = (ROOT / "README.md").read_text(encoding="utf-8")  # the parity table lives there
BLOCKS = re.findall(r"```python\n(.*?)```", DOC, flags=re.S)
DOC_ADDRESS = "http://127.0.0.1:8080"
# The README's mock invocation: the examples use this merchant.
MOCK_ARGS = ["--secret-key", "my-secret", "--public-key", "my-public", "--site-id", "270305"]


@pytest.fixture(scope="module")
def mock_url() -> Iterator[str]:
    with MockProcess(*MOCK_ARGS) as mock:
        yield mock.url


def test_every_helper_has_an_example():
    code = "\n".join(BLOCKS)
    for name in (
        "compute_signature",
        "verify_signature",
        "parse_notification",
        "NotificationReceiver",
        "payment_form_url",
        "patch_pay_url",
        "format_amount",
        "parse_amount",
        "format_datetime",
        "parse_datetime",
        "lifetime_by_days",
        "format_lifetime",
        "parse_lifetime",
        "generate_bill_id",
        "make_client",
        "MOSCOW_TZ",
    ):
        assert name in code, name


def test_parity_table_names_every_official_helper():
    for name in (
        "createPaymentForm",
        "checkNotificationSignature",
        "getLifetimeByDay",
        "normalizeDate",
        "generateId",
        "getPayUrl",
    ):
        assert f"| `{name}" in README, name


@pytest.mark.parametrize("index", range(len(BLOCKS)))
def test_doc_python_block_runs(index: int, request: pytest.FixtureRequest, tmp_path: Path) -> None:
    code = BLOCKS[index]
    if DOC_ADDRESS in code:
        code = code.replace(DOC_ADDRESS, request.getfixturevalue("mock_url"))
    script = tmp_path / f"helpers_block_{index}.py"
    script.write_text(code, encoding="utf-8")
    result = subprocess.run(
        [sys.executable, "-W", "error", str(script)],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, f"docs/helpers.md block {index} failed:\n{code}\n{result.stdout}\n{result.stderr}"
