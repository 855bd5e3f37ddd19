"""The generated client (sync and async) against the server, with hypothesis inputs and the helpers.

Every operation is driven through ``qiwi_bill_client``; what comes back is read the way an
integrator reads it: amounts with ``qiwi_bill.parse_amount`` (``Decimal``), dates with
``qiwi_bill.parse_datetime`` (aware ``datetime``).
"""

from __future__ import annotations

import asyncio
import dataclasses
import datetime as dt
import json
import time
from decimal import Decimal

from hypothesis import given, strategies as st

from contract_tests._profiles import contract_settings
from contract_tests._support import api_client, bill_requests, new_id, require
from contract_tests._target import Target
from qiwi_bill import format_amount, parse_amount, parse_datetime
from qiwi_bill_client.api.bills import create_bill, get_bill, reject_bill
from qiwi_bill_client.api.refunds import create_refund, get_refund
from qiwi_bill_client.models import (
    AmountRequest,
    Bill,
    BillStatusValue,
    CreateBillRequest,
    CreateRefundRequest,
    Error,
    Refund,
    RefundStatus,
)


def _assert_bill(bill: object, *, bill_id: str, amount: Decimal, currency: str, status: str) -> Bill:
    assert isinstance(bill, Bill), bill
    assert bill.bill_id == bill_id
    assert parse_amount(bill.amount.value) == amount
    assert bill.amount.currency == currency
    assert bill.status.value == BillStatusValue(status)
    for stamp in (bill.creation_date_time, bill.expiration_date_time, bill.status.changed_date_time):
        assert stamp.tzinfo is not None, f"naive datetime {stamp!r} in bill {bill_id}"
    return bill


def _raw_dates_are_aware(raw: dict[str, object]) -> None:
    """The wire strings themselves, not the generator's lenient parse, carry an offset."""
    for value in (raw["creationDateTime"], raw["expirationDateTime"], raw["status"]["changedDateTime"]):  # type: ignore[index]
        assert isinstance(value, str)
        assert parse_datetime(value).tzinfo is not None


@contract_settings()
@given(data=st.data())
def test_create_read_reject_sync(target: Target, data: st.DataObject) -> None:
    """create → get → reject → get with the sync client: WAITING, then REJECTED, amounts exact."""
    request, amount, currency = data.draw(bill_requests(safe=target.safe))
    bill_id = new_id(target, "sync")
    with api_client(target) as client:
        created = create_bill.sync_detailed(bill_id, client=client, body=request)
        assert created.status_code == 200, created.content
        bill = _assert_bill(created.parsed, bill_id=bill_id, amount=amount, currency=currency, status="WAITING")
        _raw_dates_are_aware(json.loads(created.content))
        assert bill.creation_date_time == bill.status.changed_date_time  # [code] equal at creation
        assert abs(bill.expiration_date_time - request.expiration_date_time) < dt.timedelta(seconds=1)
        if isinstance(request.comment, str) and request.comment:
            assert bill.comment == request.comment

        read = get_bill.sync_detailed(bill_id, client=client)
        assert read.status_code == 200
        read_bill = _assert_bill(read.parsed, bill_id=bill_id, amount=amount, currency=currency, status="WAITING")
        assert read_bill.pay_url == bill.pay_url

        time.sleep(0.01)  # the server's clock moves past the creation (it writes milliseconds)
        rejected = reject_bill.sync_detailed(bill_id, client=client)
        assert rejected.status_code == 200, rejected.content
        after = _assert_bill(rejected.parsed, bill_id=bill_id, amount=amount, currency=currency, status="REJECTED")
        assert after.status.changed_date_time > bill.status.changed_date_time  # changedDateTime moves with the status
        assert after.creation_date_time == bill.creation_date_time
        assert after.comment == bill.comment
        assert after.customer == bill.customer
        assert after.custom_fields == bill.custom_fields

        again = get_bill.sync_detailed(bill_id, client=client)
        _assert_bill(again.parsed, bill_id=bill_id, amount=amount, currency=currency, status="REJECTED")


@contract_settings()
@given(data=st.data())
def test_pay_and_refund_async(target: Target, data: st.DataObject) -> None:
    """create → pay (mock control) → refunds → get refund with the async client; FULL exactly at the amount."""
    require(target, controls=True)
    request, amount, currency = data.draw(bill_requests(safe=target.safe))
    first = data.draw(st.decimals(min_value=Decimal("0.01"), max_value=amount, places=2))
    bill_id = new_id(target, "async")

    async def scenario() -> None:
        async with api_client(target) as client:
            created = await create_bill.asyncio_detailed(bill_id, client=client, body=request)
            assert created.status_code == 200, created.content
            paid = target.controls().pay(bill_id)
            assert paid.status_code == 200, paid.content
            read = await get_bill.asyncio_detailed(bill_id, client=client)
            _assert_bill(read.parsed, bill_id=bill_id, amount=amount, currency=currency, status="PAID")

            refunds = [first] + ([amount - first] if first < amount else [])
            for index, value in enumerate(refunds):
                refund_id = f"r{index}"
                body = CreateRefundRequest(amount=AmountRequest(currency=currency, value=format_amount(value)))
                made = await create_refund.asyncio_detailed(bill_id, refund_id, client=client, body=body)
                assert made.status_code == 200, made.content
                refund = made.parsed
                assert isinstance(refund, Refund)
                assert refund.refund_id == refund_id
                assert parse_amount(refund.amount.value) == value
                assert refund.date_time.tzinfo is not None
                expected = RefundStatus.FULL if index == len(refunds) - 1 else RefundStatus.PARTIAL
                assert refund.status == expected
                fetched = await get_refund.asyncio_detailed(bill_id, refund_id, client=client)
                assert fetched.status_code == 200
                assert isinstance(fetched.parsed, Refund)
                assert fetched.parsed.status == refund.status
                assert parse_amount(fetched.parsed.amount.value) == value

            # Nothing remains: one more cent is refused with QIWI's documented code.
            extra = CreateRefundRequest(amount=AmountRequest(currency=currency, value="0.01"))
            refused = await create_refund.asyncio_detailed(bill_id, "extra", client=client, body=extra)
            assert refused.status_code == 400
            assert isinstance(refused.parsed, Error)
            assert refused.parsed.error_code == "refund.incorrect.amount"

    asyncio.run(scenario())


def test_errors_parse_into_the_error_model(target: Target) -> None:
    """Documented errors come back as the generated ``Error`` model, sync and async."""
    missing = new_id(target, "missing")
    with api_client(target) as client:
        not_found = get_bill.sync_detailed(missing, client=client)
        assert not_found.status_code == 404
        assert isinstance(not_found.parsed, Error)
        assert not_found.parsed.error_code == "api.invoice.not.found"
        assert not_found.parsed.date_time.tzinfo is not None
        refund = get_refund.sync_detailed(missing, "r1", client=client)
        assert refund.status_code == 404
        assert isinstance(refund.parsed, Error)

    async def wrong_key() -> None:
        async with api_client(dataclasses.replace(target, secret_key="wrong-key")) as client:
            try:
                response = await get_bill.asyncio_detailed(missing, client=client)
            except json.JSONDecodeError:
                return  # a 401 without a body (as the real service sometimes sent): nothing to parse
            assert response.status_code == 401
            if response.content.strip():
                assert isinstance(response.parsed, Error)
                assert response.parsed.error_code == "auth.unauthorized"

    asyncio.run(wrong_key())


def test_bad_request_is_reported_by_field(target: Target) -> None:
    """An invalid value gets 400 ``validation.error`` with ``cause`` naming the field."""
    bill_id = new_id(target, "invalid")
    future = dt.datetime.now(dt.UTC) + dt.timedelta(days=1)
    body = CreateBillRequest(amount=AmountRequest(currency="RUB", value="1.00"), expiration_date_time=future)
    body.comment = "x" * 256
    with api_client(target) as client:
        response = create_bill.sync_detailed(bill_id, client=client, body=body)
    assert response.status_code == 400
    assert isinstance(response.parsed, Error)
    assert response.parsed.error_code == "validation.error"
