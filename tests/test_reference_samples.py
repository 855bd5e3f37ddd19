"""Every JSON sample of QIWI's reference document, checked against our OpenAPI document.

The samples (``tests/data/reference_samples.json``, copied verbatim with their line numbers) are
what QIWI published; several disagree with what the real service sent. Each such sample is listed
with the reasons it is known to be wrong. The test asserts both sides: the verbatim sample is
rejected (so a loosened schema is noticed), and the sample corrected for exactly those reasons —
the shape real captures show — is accepted (so the schema still describes the documented data).
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from scripts import lint_spec

DATA = json.loads((Path(__file__).parent / "data" / "reference_samples.json").read_text(encoding="utf-8"))
SAMPLES = DATA["samples"]


def _amount_to_string(amount: dict[str, Any]) -> None:
    amount["value"] = f"{float(amount['value']):.2f}"


def _add_offset(stamp: str) -> str:
    return stamp if re.search(r"(Z|[+-]\d\d:\d\d)$", stamp) else f"{stamp}+03:00"


def _fix_amount(body: dict[str, Any]) -> None:
    _amount_to_string(body["bill"]["amount"] if "bill" in body else body["amount"])


def _bill(body: dict[str, Any]) -> dict[str, Any]:
    return body.get("bill", body)


def _fix_creation_offset(body: dict[str, Any]) -> None:
    _bill(body)["creationDateTime"] = _add_offset(_bill(body)["creationDateTime"])


def _fix_status_offset(body: dict[str, Any]) -> None:
    status = _bill(body)["status"]
    key = "changedDateTime" if "changedDateTime" in status else "datetime"
    status[key] = _add_offset(status[key])


def _fix_status_key(body: dict[str, Any]) -> None:
    status = _bill(body)["status"]
    status["changedDateTime"] = status.pop("datetime")


def _fix_error_datetime(error: dict[str, Any]) -> None:
    error["dateTime"] = _add_offset(error.pop("datetime"))


def _fix_refund_datetime(refund: dict[str, Any]) -> None:
    refund["dateTime"] = re.sub(r"\+03$", "+03:00", refund.pop("datetime"))


# Why each kind of sample is wrong, and how a real capture looks instead.
FIXES: dict[str, tuple[str, Callable[[dict[str, Any]], None]]] = {
    "amount-as-number": (
        "samples show amount.value as a JSON number; real captures since 2018 carry a 2-decimal string "
        "(bill-payments-java-sdk#11, #27, #28; Node SDK README capture)",
        _fix_amount,
    ),
    "amount-without-decimals": (
        'the Kassa notification sample has "100"; notifications carry "1.00"-style values (P2P docs 2021)',
        _fix_amount,
    ),
    "creation-without-offset": (
        "creationDateTime without an offset; real responses carry milliseconds and +03:00 (java-sdk#27)",
        _fix_creation_offset,
    ),
    "status-without-offset": (
        "status timestamp without an offset in the Kassa notification sample",
        _fix_status_offset,
    ),
    "status-datetime-key": (
        "the Kassa notification sample spells status.datetime; the P2P sample and all bill responses use "
        "changedDateTime",
        _fix_status_key,
    ),
    "error-datetime-key": (
        "error samples spell datetime; P2P docs, live SDK tests and the Java/.NET DTOs use dateTime",
        _fix_error_datetime,
    ),
    "refund-datetime-key": (
        "refund samples spell datetime with +03; the real response (Node SDK README, 2018-07) uses dateTime, +03:00",
        _fix_refund_datetime,
    ),
}


def _validator(schema_name: str) -> Any:
    return lint_spec.schema_validator({"$ref": f"#/components/schemas/{schema_name}"})


def test_fixture_holds_every_sample_kind() -> None:
    assert {s["schema"] for s in SAMPLES} == {
        "CreateBillRequest", "CreateRefundRequest", "Bill", "Refund", "Error", "BillNotification", "NotificationAck",
    }  # fmt: skip
    assert all(reason in FIXES for s in SAMPLES for reason in s["known_wrong"])


@pytest.mark.parametrize("sample", [s for s in SAMPLES if not s["known_wrong"]], ids=lambda s: s["id"])
def test_correct_samples_validate(sample: dict[str, Any]) -> None:
    body = json.loads(sample["json"])
    errors = [e.message for e in _validator(sample["schema"]).iter_errors(body)]
    assert errors == [], f"line {sample['line']} ({sample['section']})"


@pytest.mark.parametrize("sample", [s for s in SAMPLES if s["known_wrong"]], ids=lambda s: s["id"])
def test_known_wrong_samples_are_rejected_verbatim_and_accepted_once_corrected(sample: dict[str, Any]) -> None:
    validator = _validator(sample["schema"])
    body = json.loads(sample["json"])
    assert not validator.is_valid(body), f"line {sample['line']} now validates: drop its known_wrong reasons"
    for reason in sample["known_wrong"]:
        FIXES[reason][1](body)
    errors = [e.message for e in validator.iter_errors(body)]
    assert errors == [], f"line {sample['line']} still invalid after fixing {sample['known_wrong']}"


@pytest.mark.parametrize("sample", [s for s in SAMPLES if len(s["known_wrong"]) > 1], ids=lambda s: s["id"])
def test_each_listed_reason_is_necessary(sample: dict[str, Any]) -> None:
    """Fixing all but one reason leaves the sample invalid: no reason is listed without cause."""
    validator = _validator(sample["schema"])
    for skipped in sample["known_wrong"]:
        body = json.loads(sample["json"])
        for reason in sample["known_wrong"]:
            if reason != skipped:
                FIXES[reason][1](body)
        assert not validator.is_valid(body), f"{sample['id']}: reason {skipped!r} is not needed"
