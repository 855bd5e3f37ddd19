"""The package's public surface: an explicit, sorted ``__all__`` of names that all exist; private modules."""

from __future__ import annotations

import re
from pathlib import Path

import qiwi_bill

EXPECTED = [
    "ACK_BODY",
    "DEFAULT_API_BASE_URL",
    "DEFAULT_FORM_URL",
    "DEFAULT_TIMEOUT",
    "FINGERPRINT_CLIENT",
    "MAX_AMOUNT",
    "MIN_AMOUNT",
    "MOSCOW_TZ",
    "PAY_SOURCES",
    "SIGNATURE_HEADER",
    "AsyncSeenStore",
    "InvalidFieldError",
    "InvalidNotificationError",
    "InvalidSignatureError",
    "MemorySeenStore",
    "NotificationReceiver",
    "NotificationReply",
    "QiwiClient",
    "SeenStore",
    "compute_signature",
    "format_amount",
    "format_datetime",
    "format_lifetime",
    "generate_bill_id",
    "lifetime_by_days",
    "make_client",
    "normalize_amount",
    "notification_key",
    "parse_amount",
    "parse_datetime",
    "parse_lifetime",
    "parse_notification",
    "patch_pay_url",
    "payment_form_url",
    "signature_message",
    "verify_signature",
]


def _isort_key(name: str) -> tuple[int, str]:
    # The order ruff's RUF022 enforces: CONSTANTS, then Classes, then functions, each alphabetical.
    if name.isupper():
        return (0, name)
    return (1, name) if name[0].isupper() else (2, name)


def test_all_is_exactly_the_expected_list():
    assert qiwi_bill.__all__ == EXPECTED


def test_all_is_sorted():
    assert qiwi_bill.__all__ == sorted(qiwi_bill.__all__, key=_isort_key)
    assert len(set(qiwi_bill.__all__)) == len(qiwi_bill.__all__)


def test_every_name_in_all_exists():
    for name in qiwi_bill.__all__:
        assert hasattr(qiwi_bill, name), name


def test_star_import_gives_exactly_all():
    namespace: dict[str, object] = {}
    exec("from qiwi_bill import *", namespace)
    assert sorted(k for k in namespace if k != "__builtins__") == sorted(EXPECTED)


def test_the_cross_part_interface_is_present():
    # The names other parts of the project import (the mock signs with compute_signature).
    for name in (
        "compute_signature",
        "verify_signature",
        "parse_notification",
        "InvalidSignatureError",
        "format_amount",
        "parse_amount",
        "format_datetime",
        "parse_datetime",
        "MOSCOW_TZ",
        "lifetime_by_days",
        "format_lifetime",
        "parse_lifetime",
        "generate_bill_id",
        "payment_form_url",
        "patch_pay_url",
        "PAY_SOURCES",
        "make_client",
        "NotificationReceiver",
    ):
        assert name in qiwi_bill.__all__


def test_all_errors_are_value_errors():
    for error in (qiwi_bill.InvalidFieldError, qiwi_bill.InvalidSignatureError, qiwi_bill.InvalidNotificationError):
        assert issubclass(error, ValueError)
    assert issubclass(qiwi_bill.InvalidNotificationError, qiwi_bill.InvalidSignatureError)


def test_modules_are_private_and_typed():
    package = Path(qiwi_bill.__file__).parent
    modules = [p.name for p in package.glob("*.py") if p.name != "__init__.py"]
    assert modules
    assert all(re.fullmatch(r"_[a-z_]+\.py", name) for name in modules), modules
    assert (package / "py.typed").exists()
