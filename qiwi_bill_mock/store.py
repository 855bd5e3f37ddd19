"""Deprecated: the former `Store` module. The mock's core is now `models`, `rules`, `errors`, `service`, `storage`.

`Store` is `service.BillService` (same constructor, same methods). The clock is per merchant now
(`now(site_id)`, `advance_clock(seconds, site_id=...)`); `Store.advance_clock(seconds)` without a merchant keeps
its former meaning, every merchant's clock. Import from the new modules instead.
"""

from __future__ import annotations

from datetime import datetime

from qiwi_bill_mock.errors import (
    BillConflict,
    BillNotFound,
    IncorrectRefundAmount,
    InvalidValues,
    MockError as StoreError,
    RefundConflict,
    WrongBillStatus,
)
from qiwi_bill_mock.models import Bill, BillDraft, Delivery, Refund
from qiwi_bill_mock.rules import PAY_SOURCES
from qiwi_bill_mock.service import BillService
from qiwi_bill_mock.storage import DatabaseInUse

__all__ = [
    "PAY_SOURCES",
    "Bill",
    "BillConflict",
    "BillDraft",
    "BillNotFound",
    "DatabaseInUse",
    "Delivery",
    "DraftInvalid",
    "IncorrectRefundAmount",
    "Refund",
    "RefundConflict",
    "Store",
    "StoreError",
    "WrongBillStatus",
]

DraftInvalid = InvalidValues  # the former name of a refused draft


class Store(BillService):
    """Deprecated name of `BillService`; `advance_clock` without `site_id` moves every merchant's clock."""

    def advance_clock(self, seconds: float, *, site_id: str | None = None) -> datetime:
        """Move one merchant's clock, or (`site_id=None`, the former behaviour) every configured merchant's."""
        if site_id is not None:
            return super().advance_clock(seconds, site_id=site_id)
        for merchant in self.settings.merchants:
            super().advance_clock(seconds, site_id=merchant.site_id)
        return self.now(self.settings.merchants[0].site_id)
