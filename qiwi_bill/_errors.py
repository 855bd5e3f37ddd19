"""The package's exception family: every helper rejects bad input with a ``ValueError`` subclass."""

from __future__ import annotations

__all__ = ["InvalidFieldError", "InvalidNotificationError", "InvalidSignatureError"]


class InvalidFieldError(ValueError):
    """A helper argument (or a field of a body handed to a helper) is invalid.

    The message starts with the field's name; the name is also kept in :attr:`field`. Messages never
    contain secret keys.

    Attributes:
        field: The name of the offending field, as the caller spells it (``"amount"``, ``"bill.amount.value"``).
    """

    def __init__(self, field: str, reason: str) -> None:
        super().__init__(f"{field}: {reason}")
        self.field = field
        self.reason = reason

    def __reduce__(self) -> tuple[type[InvalidFieldError], tuple[str, str]]:
        # Keep the two-argument constructor picklable (multiprocessing, task queues).
        return type(self), (self.field, self.reason)


class InvalidSignatureError(ValueError):
    """A notification was rejected: its ``X-Api-Signature-SHA256`` does not authenticate the body.

    Raised by :func:`qiwi_bill.parse_notification` for a missing, malformed or wrong signature. Its subclass
    :class:`InvalidNotificationError` covers a body that cannot be read at all, so catching this one class
    catches every rejected notification. The message never contains the secret key or the expected signature.
    """


class InvalidNotificationError(InvalidSignatureError, InvalidFieldError):
    """A notification body is malformed (not JSON, or a signed field is missing or of the wrong type).

    It is both an :class:`InvalidSignatureError` (the notification cannot be authenticated) and an
    :class:`InvalidFieldError` (the message and :attr:`field` name what is wrong).
    """

    def __init__(self, field: str, reason: str) -> None:
        InvalidFieldError.__init__(self, field, reason)
