"""Hand-written helpers for the QIWI bill-payments API v1: what the OpenAPI document cannot express.

Notification signatures, the payment-form and ``payUrl`` builders, money and dates, and a client factory for the
generated ``qiwi_bill_client``. Everything public is importable from ``qiwi_bill``; the modules are private.
"""

from ._dates import MOSCOW_TZ, format_datetime, format_lifetime, lifetime_by_days, parse_datetime, parse_lifetime
from ._errors import InvalidFieldError, InvalidNotificationError, InvalidSignatureError
from ._money import MAX_AMOUNT, MIN_AMOUNT, format_amount, normalize_amount, parse_amount
from ._signature import SIGNATURE_HEADER, compute_signature, signature_message, verify_signature

__all__ = [
    "MAX_AMOUNT",
    "MIN_AMOUNT",
    "MOSCOW_TZ",
    "SIGNATURE_HEADER",
    "InvalidFieldError",
    "InvalidNotificationError",
    "InvalidSignatureError",
    "compute_signature",
    "format_amount",
    "format_datetime",
    "format_lifetime",
    "lifetime_by_days",
    "normalize_amount",
    "parse_amount",
    "parse_datetime",
    "parse_lifetime",
    "signature_message",
    "verify_signature",
]
