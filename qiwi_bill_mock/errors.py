"""QIWI's errors: the catalogue of error kinds, the exceptions that carry them, and the ONE renderer of the body.

Every refusal in the mock (rules, service, request parsing, HTTP adapters, pages' API calls) raises a `MockError`
carrying its `ErrorKind` (HTTP status, `errorCode`, description, `userMessage`) and, for `validation.error`,
a `cause`. `render_error` (and the body builder `error_body` it calls) is the one place such an exception
becomes QIWI's JSON body.

Shape (p2p-payments-docs 2021 samples; the Node SDK's live tests assert `serviceName`,
`description` and `userMessage` of the not-found error):

    {"serviceName": "invoicing-api", "errorCode": "api.invoice.not.found", "description": "Invoice not found",
     "userMessage": "Invoice not found", "dateTime": "2021-01-18T14:34:40.865+03:00", "traceId": "b3d41cafa0c6d088"}

plus an optional `cause` (field → messages) on `validation.error`, the successor API's shape.
Codes without a documented v1 text follow the pre-v1 `error.code.*` family without its prefix
(docs/sources.md), e.g. `http.url.not.found`, `http.method.not.supported`.

The 401 answer has an EMPTY body by default: qiwi-api-semantics.md ("401 can have an empty body"), QIWI's Java
SDK issue #26 ("BadResponseException: empty body, HTTP status 401") and that SDK's live test
`testClientWithIncorrectSecretKey`, which expects `BadResponseException` (a body it cannot map). The JSON
`auth.unauthorized` body stays available (`Settings.unauthorized_body="json"`).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from attrs import Factory, define, evolve, field

from qiwi_bill_mock.wire import dumps, format_timestamp

__all__ = [
    "ALREADY_EXISTS",
    "BAD_HOST",
    "CONVERSION_FAILED",
    "HEAD_TOO_LARGE",
    "INTERNAL",
    "INVOICE_NOT_FOUND",
    "MALFORMED",
    "METHOD_NOT_SUPPORTED",
    "MISSING_HOST",
    "REFUND_ALREADY_EXISTS",
    "REFUND_INCORRECT_AMOUNT",
    "REFUND_NOT_FOUND",
    "REQUEST_TIMEOUT",
    "SERVICE_NAME",
    "SERVICE_UNAVAILABLE",
    "TOO_MANY_CONNECTIONS",
    "TOO_MANY_REQUESTS",
    "TWO_AUTHORIZATIONS",
    "TWO_HOSTS",
    "UNAUTHORIZED",
    "UNSUPPORTED_MEDIA_TYPE",
    "URL_NOT_FOUND",
    "VALIDATION",
    "BillConflict",
    "BillNotFound",
    "ErrorKind",
    "IncorrectRefundAmount",
    "InvalidValues",
    "MockError",
    "RefundConflict",
    "RefundNotFound",
    "RenderedError",
    "Unreadable",
    "WrongBillStatus",
    "error_body",
    "render_error",
]

#: `serviceName` of live v1 answers (create doc sample, live SDK tests 2019-2021).
SERVICE_NAME = "invoicing-api"


@define(frozen=True)
class ErrorKind:
    """One entry of the error catalogue: HTTP status, `errorCode`, `description`, `userMessage` (by default the
    description: QIWI's samples repeat it, e.g. "Invoice not found" twice in the Node SDK's live tests)."""

    status: int
    code: str
    description: str
    user_message: str = field(default=Factory(lambda kind: kind.description, takes_self=True))

    def detailed(self, description: str) -> ErrorKind:
        """The same status, code and `userMessage` with another description (which rule the request broke)."""
        return evolve(self, description=description)


# [doc] sample; userMessage empty as in the reference document's sample. Status [code].
UNAUTHORIZED = ErrorKind(401, "auth.unauthorized", "Неверные аутентификационные данные", "")
# [code] Node SDK live tests; the 404 status is [inf].
INVOICE_NOT_FOUND = ErrorKind(404, "api.invoice.not.found", "Invoice not found")
REFUND_NOT_FOUND = ErrorKind(404, "api.refund.not.found", "Refund not found")  # [inf]
VALIDATION = ErrorKind(400, "validation.error", "Validation error")  # [inf] successor, v3
CONVERSION_FAILED = ErrorKind(400, "http.message.conversion.failed", "Bad request")  # [doc] P2P
REFUND_INCORRECT_AMOUNT = ErrorKind(400, "refund.incorrect.amount", "Неверная сумма возврата")  # [doc]; status [inf]
ALREADY_EXISTS = ErrorKind(409, "api.invoice.already.exists", "Invoice already exists")
REFUND_ALREADY_EXISTS = ErrorKind(409, "api.refund.already.exists", "Refund already exists")
UNSUPPORTED_MEDIA_TYPE = ErrorKind(415, "http.media.type.not.supported", "Unsupported media type")
URL_NOT_FOUND = ErrorKind(404, "http.url.not.found", "Not found")
METHOD_NOT_SUPPORTED = ErrorKind(405, "http.method.not.supported", "Method not supported")
TOO_MANY_REQUESTS = ErrorKind(429, "http.too.many.requests", "Too many requests")
SERVICE_UNAVAILABLE = ErrorKind(503, "internal.invoicing.core.error", "Service temporarily unavailable")
INTERNAL = ErrorKind(500, "internal.invoicing.error", "Internal error")

# The HTTP server's refusals (`protocol.py`), the mock's own ([inf]): behind QIWI's nginx these requests never
# reached the API. One code each, the description saying which rule the request broke.
MALFORMED = ErrorKind(400, "http.request.malformed", "Malformed HTTP request", "Bad request")
MISSING_HOST = MALFORMED.detailed("An HTTP/1.1 request needs a Host header")
TWO_HOSTS = MALFORMED.detailed("More than one Host header")
BAD_HOST = MALFORMED.detailed("Invalid Host header")
TWO_AUTHORIZATIONS = MALFORMED.detailed("More than one Authorization header")
HEAD_TOO_LARGE = ErrorKind(431, "http.request.header.too.large", "Request header fields too large")
REQUEST_TIMEOUT = ErrorKind(408, "http.request.timeout", "Request timeout")
TOO_MANY_CONNECTIONS = SERVICE_UNAVAILABLE.detailed("Too many connections")


class MockError(Exception):
    """A refusal that knows its QIWI error: `kind`, optional `cause` (field → messages) and extra headers."""

    kind: ErrorKind = INTERNAL

    def __init__(
        self,
        kind: ErrorKind | None = None,
        *,
        cause: Mapping[str, list[str]] | None = None,
        description: str | None = None,
        headers: Mapping[str, str] | None = None,
        message: str | None = None,
    ) -> None:
        if kind is not None:
            self.kind = kind
        self.cause = {name: list(messages) for name, messages in (cause or {}).items()}
        self.description = description
        self.headers = dict(headers or {})
        super().__init__(message or self._message())

    def _message(self) -> str:
        if self.cause:
            return "; ".join(f"{name}: {', '.join(messages)}" for name, messages in self.cause.items())
        return self.kind.code


class BillNotFound(MockError):
    """No such bill for this merchant (`api.invoice.not.found`)."""

    kind = INVOICE_NOT_FOUND

    def __init__(self, bill_id: str = "") -> None:
        super().__init__(message=f"no bill {bill_id!r}")


class RefundNotFound(MockError):
    """No such refund on a known bill (`api.refund.not.found`)."""

    kind = REFUND_NOT_FOUND

    def __init__(self, refund_id: str = "") -> None:
        super().__init__(message=f"no refund {refund_id!r}")


class BillConflict(MockError):
    """Strict idempotency: the `billId` exists with a different body (`api.invoice.already.exists`)."""

    kind = ALREADY_EXISTS

    def __init__(self, message: str = "") -> None:
        super().__init__(message=message or None)


class RefundConflict(MockError):
    """The `refundId` exists on this bill with a different amount (`api.refund.already.exists`)."""

    kind = REFUND_ALREADY_EXISTS

    def __init__(self, message: str = "") -> None:
        super().__init__(message=message or None)


class Unreadable(MockError):
    """The body cannot be read: not JSON, wrong JSON types, too large (`http.message.conversion.failed`)."""

    kind = CONVERSION_FAILED

    def __init__(self) -> None:
        super().__init__(message="unreadable request")


class InvalidValues(MockError):
    """Values break a rule; `cause` maps field → messages (`validation.error`)."""

    kind = VALIDATION

    def __init__(self, cause: Mapping[str, list[str]]) -> None:
        super().__init__(cause=cause)


# How each action's refusal reads in `cause.status` (pinned by tests since the first version).
_STATUS_MESSAGES = {
    "reject": "a {status} bill cannot be rejected",
    "refund": "a {status} bill cannot be refunded",
}


class WrongBillStatus(InvalidValues):
    """The bill's status does not allow the action (reject a PAID bill, refund a WAITING one...)."""

    def __init__(self, status: str, action: str) -> None:
        template = _STATUS_MESSAGES.get(action, "cannot {action} a {status} bill")
        super().__init__({"status": [template.format(status=status, action=action)]})
        self.status = status
        self.action = action


class IncorrectRefundAmount(MockError):
    """Refund amount not positive, beyond what remains, or in another currency (`refund.incorrect.amount`)."""

    kind = REFUND_INCORRECT_AMOUNT

    def __init__(self, message: str) -> None:
        super().__init__(cause={"amount": [message]}, message=message)


def error_body(
    kind: ErrorKind,
    *,
    trace_id: str | None,
    now_us: int,
    cause: Mapping[str, list[str]] | None = None,
    description: str | None = None,
) -> dict[str, Any]:
    """The error body; `trace_id=None` leaves `traceId` out (the `no_trace_id` broken mode only)."""
    body: dict[str, Any] = {
        "serviceName": SERVICE_NAME,
        "errorCode": kind.code,
        "description": description or kind.description,
        "userMessage": kind.user_message,
        "dateTime": format_timestamp(now_us),
    }
    if trace_id is not None:
        body["traceId"] = trace_id
    if cause:
        body["cause"] = {field: list(messages) for field, messages in cause.items()}
    return body


@define(frozen=True)
class RenderedError:
    """An error answer: status, headers (bytes pairs, content type included) and body."""

    status: int
    headers: list[tuple[bytes, bytes]]
    body: bytes
    code: str


def render_error(
    error: MockError, *, trace_id: str | None, now_us: int, empty_unauthorized: bool = False
) -> RenderedError:
    """THE place a `MockError` becomes QIWI's answer (API, `/_mock/` controls, unknown URLs, crashes alike).

    Args:
        error: The refusal.
        trace_id: This request's traceId; `None` leaves it out (the `no_trace_id` broken mode).
        now_us: The error's `dateTime`, in microseconds.
        empty_unauthorized: Answer a 401 with an empty body (the default setting, see the module docstring).
    """
    kind = error.kind
    extra = [(name.lower().encode("latin-1"), value.encode("latin-1")) for name, value in error.headers.items()]
    if empty_unauthorized and kind.status == 401:
        return RenderedError(kind.status, [(b"content-length", b"0"), *extra], b"", kind.code)
    body = dumps(error_body(kind, trace_id=trace_id, now_us=now_us, cause=error.cause, description=error.description))
    headers = [(b"content-type", b"application/json"), (b"content-length", b"%d" % len(body)), *extra]
    return RenderedError(kind.status, headers, body, kind.code)
