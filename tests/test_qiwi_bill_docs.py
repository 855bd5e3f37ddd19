"""docs/helpers.md shows every helper and carries the parity table (test_readme.py runs the examples)."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DOC = (ROOT / "docs" / "helpers.md").read_text(encoding="utf-8")
BLOCKS = re.findall(r"```python\n(.*?)```", DOC, flags=re.S)


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
        assert f"| `{name}" in DOC, name
