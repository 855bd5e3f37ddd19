"""QIWI's error body: the one place the mock builds it.

Shape (p2p-payments-docs 2021 samples; the Node SDK's live tests assert `serviceName`,
`description` and `userMessage` of the not-found error):

    {"serviceName": "invoicing-api", "errorCode": "api.invoice.not.found", "description": "Invoice not found",
     "userMessage": "Invoice not found", "dateTime": "2021-01-18T14:34:40.865+03:00", "traceId": "b3d41cafa0c6d088"}

plus an optional `cause` (field → messages) on `validation.error`, the successor API's shape.
Codes without a documented v1 text follow the pre-v1 `error.code.*` family without its prefix
(docs/sources.md), e.g. `http.url.not.found`, `http.method.not.supported`.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from attrs import define
from starlette.responses import Response

from qiwi_bill_mock.wire import dumps, format_timestamp

__all__ = [
    "ALREADY_EXISTS",
    "CONVERSION_FAILED",
    "INTERNAL",
    "INVOICE_NOT_FOUND",
    "METHOD_NOT_SUPPORTED",
    "REFUND_ALREADY_EXISTS",
    "REFUND_INCORRECT_AMOUNT",
    "REFUND_NOT_FOUND",
    "SERVICE_NAME",
    "SERVICE_UNAVAILABLE",
    "TOO_MANY_REQUESTS",
    "UNAUTHORIZED",
    "UNSUPPORTED_MEDIA_TYPE",
    "URL_NOT_FOUND",
    "VALIDATION",
    "ErrorKind",
    "error_body",
    "error_response",
]

#: `serviceName` of live v1 answers (create doc sample, live SDK tests 2019-2021).
SERVICE_NAME = "invoicing-api"


@define(frozen=True)
class ErrorKind:
    """One entry of the error catalogue: HTTP status, `errorCode`, `description`, `userMessage`."""

    status: int
    code: str
    description: str
    user_message: str


# [doc] sample; userMessage empty as in the reference document's sample. Status [code].
UNAUTHORIZED = ErrorKind(401, "auth.unauthorized", "Неверные аутентификационные данные", "")
# [code] Node SDK live tests; the 404 status is [inf].
INVOICE_NOT_FOUND = ErrorKind(404, "api.invoice.not.found", "Invoice not found", "Invoice not found")
REFUND_NOT_FOUND = ErrorKind(404, "api.refund.not.found", "Refund not found", "Refund not found")  # [inf]
VALIDATION = ErrorKind(400, "validation.error", "Validation error", "Validation error")  # [inf] successor, v3
CONVERSION_FAILED = ErrorKind(400, "http.message.conversion.failed", "Bad request", "Bad request")  # [doc] P2P
REFUND_INCORRECT_AMOUNT = ErrorKind(
    400, "refund.incorrect.amount", "Неверная сумма возврата", "Неверная сумма возврата"
)  # [doc] code and text; status [inf]
ALREADY_EXISTS = ErrorKind(409, "api.invoice.already.exists", "Invoice already exists", "Invoice already exists")
REFUND_ALREADY_EXISTS = ErrorKind(409, "api.refund.already.exists", "Refund already exists", "Refund already exists")
UNSUPPORTED_MEDIA_TYPE = ErrorKind(
    415, "http.media.type.not.supported", "Unsupported media type", "Unsupported media type"
)
URL_NOT_FOUND = ErrorKind(404, "http.url.not.found", "Not found", "Not found")
METHOD_NOT_SUPPORTED = ErrorKind(405, "http.method.not.supported", "Method not supported", "Method not supported")
TOO_MANY_REQUESTS = ErrorKind(429, "http.too.many.requests", "Too many requests", "Too many requests")
SERVICE_UNAVAILABLE = ErrorKind(
    503, "internal.invoicing.core.error", "Service temporarily unavailable", "Service temporarily unavailable"
)
INTERNAL = ErrorKind(500, "internal.invoicing.error", "Internal error", "Internal error")


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


def error_response(
    kind: ErrorKind,
    *,
    trace_id: str | None,
    now_us: int,
    cause: Mapping[str, list[str]] | None = None,
    description: str | None = None,
    headers: Mapping[str, str] | None = None,
    empty: bool = False,
) -> Response:
    """The error as a JSON response (`empty=True`: no body, as QIWI's 401 sometimes had)."""
    if empty:
        return Response(status_code=kind.status, headers=dict(headers or {}))
    body = error_body(kind, trace_id=trace_id, now_us=now_us, cause=cause, description=description)
    return Response(dumps(body), status_code=kind.status, media_type="application/json", headers=headers)
