"""Hand-written helpers for the QIWI bill-payments API v1: what the OpenAPI document cannot express.

Notification signatures and a notification receiver, the payment-form and ``payUrl`` builders, money and dates,
bill ids, and a client factory for the generated ``qiwi_bill_client``. Everything public is importable from
``qiwi_bill``; the modules are private. ``__version__`` is the installed distribution's version (one number for
the whole toolkit: ``qiwi-bill-mock --version`` and ``qiwi-contract --version`` print it too).
"""

from importlib.metadata import PackageNotFoundError, version as _distribution_version

from ._client import DEFAULT_API_BASE_URL, DEFAULT_TIMEOUT, QiwiClient, make_client
from ._dates import MOSCOW_TZ, format_datetime, format_lifetime, lifetime_by_days, parse_datetime, parse_lifetime
from ._errors import InvalidFieldError, InvalidNotificationError, InvalidSignatureError
from ._ids import generate_bill_id
from ._money import MAX_AMOUNT, MIN_AMOUNT, format_amount, normalize_amount, parse_amount
from ._notifications import (
    ACK_BODY,
    AsyncSeenStore,
    MemorySeenStore,
    NotificationReceiver,
    NotificationReply,
    SeenStore,
    notification_key,
    parse_notification,
)
from ._payment_form import DEFAULT_FORM_URL, FINGERPRINT_CLIENT, PAY_SOURCES, patch_pay_url, payment_form_url
from ._signature import SIGNATURE_HEADER, compute_signature, signature_message, verify_signature

try:
    __version__ = _distribution_version("qiwi-bill-toolkit")
except PackageNotFoundError:  # a checkout on sys.path that was never installed: no metadata to read
    __version__ = "0+unknown"

__all__ = [
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
