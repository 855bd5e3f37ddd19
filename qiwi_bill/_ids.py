"""Bill and refund ids."""

from __future__ import annotations

import uuid

__all__ = ["generate_bill_id"]


def generate_bill_id() -> str:
    """A new random ``billId`` (or ``refundId``): a UUID4 string, like the official SDKs' ``generateId``.

    36 characters, well under QIWI's 200-character limit, and free of ``|`` (which the notification signature
    uses as its field separator).
    """
    return str(uuid.uuid4())
