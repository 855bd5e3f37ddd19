"""Fixtures of the testing-kit tests: bill bodies, and a user's project for the plugin's pytester runs."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest

from qiwi_bill_client.models import AmountRequest, CreateBillRequest


def bill_body(value: str = "10.00", currency: str = "RUB") -> CreateBillRequest:
    """A valid create-bill body, expiring in a day."""
    return CreateBillRequest(
        amount=AmountRequest(currency=currency, value=value),
        expiration_date_time=dt.datetime.now(dt.UTC) + dt.timedelta(days=1),
    )


@pytest.fixture
def body() -> CreateBillRequest:
    return bill_body()


@pytest.fixture
def body_json(body: CreateBillRequest) -> dict[str, Any]:
    return body.to_dict()
