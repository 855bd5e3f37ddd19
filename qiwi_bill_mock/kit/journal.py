"""The request journal (WireMock's "verify"): every API request the mock received, and what it answered.

`RequestJournal` is an ASGI wrapper around the app `create_app()` builds. For each request under
`/partner/bill/v1/` it records the method, path, operationId, ids, the JSON body (the first 64 KiB), the status,
the `errorCode` and `cause` of an error answer, the traceId and an outcome (`accepted`, `invalid`,
`unauthorized`, `rejected`, `failed`, `dropped`). Entries are kept per merchant (the one whose secret key was the
bearer token; a missing or unknown key files them under "unauthenticated"), at most `max_entries` each, oldest
dropped first. The secret key itself is never stored. Requests with the `X-Qiwi-Mock-Unjournaled` header (the
control client's own reads) are answered but not recorded.

It answers two control routes itself (same auth and error body as every `/_mock/` control):

- `GET /_mock/requests` → `{"requests": [...]}`, oldest first, this merchant's entries; filters as query
  parameters: `operation`, `method`, `billId`, `refundId`, `statusCode`, `errorCode`, `outcome`, `refused`
  (`true`/`false`), `includeUnauthenticated` (`true`: also requests no merchant could be named for), `after`
  (only entries with a greater `id`), `limit`
  (the newest N).
- `DELETE /_mock/requests` forgets this merchant's entries; `POST /_mock/reset` (the mock's own) does too.

```python
from qiwi_bill_mock import create_app
from qiwi_bill_mock.kit.journal import RequestJournal

app = RequestJournal(create_app(settings))  # until create_app applies it itself
```

The journal lives in the process memory: with `--workers N` each worker keeps its own.
"""

from __future__ import annotations

import hashlib
import json
import secrets
import threading
import time
from collections import deque
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime
from typing import Any, Literal
from urllib.parse import parse_qsl, unquote

from attrs import field, frozen
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from qiwi_bill import MOSCOW_TZ, format_datetime, parse_datetime
from qiwi_bill_mock import errors
from qiwi_bill_mock.settings import Merchant, Settings
from qiwi_bill_mock.wire import dumps, to_micros

__all__ = [
    "DEFAULT_MAX_ENTRIES",
    "OUTCOMES",
    "UNJOURNALED_HEADER",
    "JournalEntry",
    "JournalQuery",
    "Outcome",
    "RequestJournal",
    "operation_of",
    "with_journal",
]

#: Entries kept per merchant (and for unauthenticated requests) before the oldest are dropped.
DEFAULT_MAX_ENTRIES = 1000
# Bodies are recorded up to this size: enough for any valid QIWI request (a bill's fields are capped at 255
# characters each), small enough that a bounded journal stays small.
_BODY_CAP = 64 * 1024

Outcome = Literal["accepted", "invalid", "unauthorized", "rejected", "failed", "dropped"]
#: Every outcome: `accepted` (2xx); `invalid` (the request broke a rule of the API: `validation.error`,
#: `http.message.conversion.failed`, `refund.incorrect.amount`, unknown URL, method or media type);
#: `unauthorized` (401); `rejected` (another 4xx: unknown bill, conflict); `failed` (429 or 5xx, e.g. injected
#: faults); `dropped` (no answer: the connection was dropped).
OUTCOMES: tuple[str, ...] = ("accepted", "invalid", "unauthorized", "rejected", "failed", "dropped")
# Outcomes QIWI would have refused the same request with: the caller's fault, not the server's.
_REFUSED = frozenset({"invalid", "unauthorized", "rejected"})
_INVALID_CODES = frozenset(
    {
        errors.VALIDATION.code,
        errors.CONVERSION_FAILED.code,
        errors.REFUND_INCORRECT_AMOUNT.code,
        errors.URL_NOT_FOUND.code,
        errors.METHOD_NOT_SUPPORTED.code,
        errors.UNSUPPORTED_MEDIA_TYPE.code,
    }
)

_API_PREFIX = "/partner/bill/v1/"
#: A request carrying this header is the kit's own (the control client reading bills for `bills()`): it is
#: answered as usual but not journaled, so it never shows up among the requests of the code under test.
UNJOURNALED_HEADER = "X-Qiwi-Mock-Unjournaled"
_UNJOURNALED = UNJOURNALED_HEADER.lower().encode()
_REQUESTS_PATH = "/_mock/requests"
_RESET_PATH = "/_mock/reset"


def operation_of(method: str, segments: list[str]) -> str | None:
    """The operationId of an API request from its method and decoded path segments after `bills/`, else `None`."""
    match (method, segments):
        case ("PUT", [_]):
            return "createBill"
        case ("GET" | "HEAD", [_]):
            return "getBill"
        case ("POST", [_, "reject"]):
            return "rejectBill"
        case ("PUT", [_, "refunds", _]):
            return "createRefund"
        case ("GET" | "HEAD", [_, "refunds", _]):
            return "getRefund"
    return None


def _outcome(status: int, error_code: str | None) -> Outcome:
    if status == 0:
        return "dropped"
    if 200 <= status < 300:
        return "accepted"
    if status == 401:
        return "unauthorized"
    if status == 429 or status >= 500:
        return "failed"
    if error_code in _INVALID_CODES:
        return "invalid"
    return "rejected"


def _json_or_none(raw: bytes) -> Any:
    if not raw.strip():
        return None
    try:
        return json.loads(raw)
    except (ValueError, UnicodeDecodeError, RecursionError):  # deeply nested JSON: the mock refused it with a 400
        return None


@frozen(kw_only=True)
class JournalEntry:
    """One API request the mock received, and its answer.

    Attributes:
        id: Position in the journal (increasing across merchants).
        received_at: When the request arrived (wall clock, aware).
        method: The HTTP method.
        path: The raw path (ids still percent-encoded), without the query.
        operation: `createBill`, `getBill`, `rejectBill`, `createRefund`, `getRefund`, or `None` (no such route).
        bill_id: The `billId` path parameter, decoded, when the path has one.
        refund_id: The `refundId` path parameter, decoded, when the path has one.
        site_id: The merchant named by the bearer token; `None` when the key was missing or unknown.
        body: The request body decoded as JSON; `None` when empty, not JSON, or beyond 64 KiB.
        raw_body: The request body as text (the first 64 KiB, undecodable bytes replaced).
        status_code: The answer's status; `0` when the connection was dropped.
        error_code: The error body's `errorCode`, if any.
        cause: The error body's `cause` (field → messages), if any.
        trace_id: The answer's `X-Trace-Id`.
        outcome: One of `OUTCOMES`.
        duration_ms: Time to answer, in milliseconds.
    """

    id: int
    received_at: datetime
    method: str
    path: str
    operation: str | None
    bill_id: str | None = None
    refund_id: str | None = None
    site_id: str | None = None
    body: Any = None
    raw_body: str = ""
    status_code: int = 0
    error_code: str | None = None
    cause: Mapping[str, list[str]] | None = None
    trace_id: str | None = None
    outcome: str = "dropped"
    duration_ms: float = field(default=0.0, eq=False)

    @property
    def refused(self) -> bool:
        """Whether QIWI would have refused this request (invalid, unauthorized or rejected: a 4xx but 429)."""
        return self.outcome in _REFUSED

    @property
    def accepted(self) -> bool:
        """Whether the mock answered 2xx."""
        return self.outcome == "accepted"

    def to_dict(self) -> dict[str, Any]:
        """The entry as `GET /_mock/requests` writes it (camelCase keys)."""
        return {
            "id": self.id,
            # Moscow time with milliseconds, like every timestamp the mock writes (QIWI's own shape).
            "dateTime": format_datetime(self.received_at, tz=MOSCOW_TZ, timespec="milliseconds"),
            "method": self.method,
            "path": self.path,
            "operation": self.operation,
            "billId": self.bill_id,
            "refundId": self.refund_id,
            "siteId": self.site_id,
            "body": self.body,
            "rawBody": self.raw_body,
            "statusCode": self.status_code,
            "errorCode": self.error_code,
            "cause": None if self.cause is None else {k: list(v) for k, v in self.cause.items()},
            "traceId": self.trace_id,
            "outcome": self.outcome,
            "refused": self.refused,
            "durationMs": round(self.duration_ms, 3),
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> JournalEntry:
        """Inverse of `to_dict` (the control client reads `GET /_mock/requests` with it)."""
        return cls(
            id=int(data["id"]),
            received_at=parse_datetime(data["dateTime"], field="dateTime"),
            method=data["method"],
            path=data["path"],
            operation=data.get("operation"),
            bill_id=data.get("billId"),
            refund_id=data.get("refundId"),
            site_id=data.get("siteId"),
            body=data.get("body"),
            raw_body=data.get("rawBody") or "",
            status_code=int(data["statusCode"]),
            error_code=data.get("errorCode"),
            cause=data.get("cause"),
            trace_id=data.get("traceId"),
            outcome=data["outcome"],
            duration_ms=float(data.get("durationMs") or 0.0),
        )


class QueryInvalid(ValueError):
    """A `GET /_mock/requests` filter is malformed; `cause` is QIWI's field → messages shape."""

    def __init__(self, cause: dict[str, list[str]]) -> None:
        super().__init__(cause)
        self.cause = cause


def _flag(name: str, value: str) -> bool:
    lowered = value.strip().lower()
    if lowered in ("true", "1", "yes"):
        return True
    if lowered in ("false", "0", "no"):
        return False
    raise QueryInvalid({name: ["must be true or false"]})


def _number(name: str, value: str, low: int, high: int) -> int:
    if not value.strip().isdigit() or not low <= int(value) <= high:
        raise QueryInvalid({name: [f"must be an integer from {low} to {high}"]})
    return int(value)


@frozen(kw_only=True)
class JournalQuery:
    """Filters over the journal; each one left `None` matches everything.

    Attributes:
        operation: An operationId (`createBill`...).
        method: An HTTP method (`PUT`...).
        bill_id: The bill's id.
        refund_id: The refund's id.
        status_code: The answer's status.
        error_code: The answer's `errorCode`.
        outcome: One of `OUTCOMES`.
        refused: Only requests QIWI would (`True`) or would not (`False`) have refused.
        include_unauthenticated: Also requests whose key named no merchant.
        after: Only entries whose `id` is greater (what came after an entry already seen).
        limit: Only the newest `limit` matching entries.
    """

    operation: str | None = None
    method: str | None = None
    bill_id: str | None = None
    refund_id: str | None = None
    status_code: int | None = None
    error_code: str | None = None
    outcome: str | None = None
    refused: bool | None = None
    include_unauthenticated: bool = False
    after: int | None = None
    limit: int | None = None

    def matches(self, entry: JournalEntry) -> bool:
        """Whether `entry` passes every filter."""
        return (
            (self.operation is None or entry.operation == self.operation)
            and (self.method is None or entry.method == self.method.upper())
            and (self.bill_id is None or entry.bill_id == self.bill_id)
            and (self.refund_id is None or entry.refund_id == self.refund_id)
            and (self.status_code is None or entry.status_code == self.status_code)
            and (self.error_code is None or entry.error_code == self.error_code)
            and (self.outcome is None or entry.outcome == self.outcome)
            and (self.refused is None or entry.refused == self.refused)
            and (self.after is None or entry.id > self.after)
        )

    def to_params(self) -> dict[str, str]:
        """The filters as `GET /_mock/requests` query parameters."""
        params = {
            "operation": self.operation,
            "method": self.method,
            "billId": self.bill_id,
            "refundId": self.refund_id,
            "statusCode": None if self.status_code is None else str(self.status_code),
            "errorCode": self.error_code,
            "outcome": self.outcome,
            "refused": None if self.refused is None else str(self.refused).lower(),
            "includeUnauthenticated": "true" if self.include_unauthenticated else None,
            "after": None if self.after is None else str(self.after),
            "limit": None if self.limit is None else str(self.limit),
        }
        return {key: value for key, value in params.items() if value is not None}

    @classmethod
    def from_params(cls, params: Iterable[tuple[str, str]]) -> JournalQuery:
        """Parse query parameters (the inverse of `to_params`); raises `QueryInvalid` naming the bad one."""
        names = {"billId": "bill_id", "refundId": "refund_id", "errorCode": "error_code"}
        kwargs: dict[str, Any] = {}
        for name, value in params:
            if name in ("operation", "method"):
                kwargs[name] = value
            elif name in names:
                kwargs[names[name]] = value
            elif name == "statusCode":
                kwargs["status_code"] = _number(name, value, 0, 599)
            elif name == "outcome":
                if value not in OUTCOMES:
                    raise QueryInvalid({name: [f"must be one of {', '.join(OUTCOMES)}"]})
                kwargs["outcome"] = value
            elif name == "refused":
                kwargs["refused"] = _flag(name, value)
            elif name == "includeUnauthenticated":
                kwargs["include_unauthenticated"] = _flag(name, value)
            elif name == "after":
                kwargs["after"] = _number(name, value, 0, 10**18)
            elif name == "limit":
                kwargs["limit"] = _number(name, value, 1, 1_000_000)
            else:
                raise QueryInvalid({name: ["unknown filter"]})
        return cls(**kwargs)


def _digest(secret: str) -> bytes:
    return hashlib.sha256(secret.encode("utf-8", "surrogatepass")).digest()


def _bearer(scope: Scope) -> str | None:
    for name, value in scope["headers"]:
        if name == b"authorization":
            scheme, _, token = value.decode("latin-1").strip().partition(" ")
            return token.strip() if scheme.lower() == "bearer" and token.strip() else None
    return None


def _header(headers: Iterable[tuple[bytes, bytes]], name: bytes) -> str | None:
    for key, value in headers:
        if key.lower() == name:
            return value.decode("latin-1")
    return None


class _Recorder:
    """The receive/send wrappers of one journaled request: replays the pre-read body, keeps the answer."""

    def __init__(self, receive: Receive, send: Send) -> None:
        self._receive = receive
        self._send = send
        self._replay: deque[Message] = deque()
        self.body = b""
        self.status = 0
        self.trace_id: str | None = None
        self._answer = bytearray()
        self._json_answer = False

    async def read_body(self) -> None:
        """Read the body up to the cap before the app does (a 401 answers before reading it)."""
        chunks: list[bytes] = []
        size = 0
        while size <= _BODY_CAP:
            message = await self._receive()
            self._replay.append(message)
            if message["type"] != "http.request":
                break
            chunk = message.get("body", b"")
            chunks.append(chunk)
            size += len(chunk)
            if not message.get("more_body", False):
                break
        self.body = b"".join(chunks)[:_BODY_CAP]

    async def receive(self) -> Message:
        if self._replay:
            return self._replay.popleft()
        return await self._receive()

    async def send(self, message: Message) -> None:
        if message["type"] == "http.response.start":
            self.status = message["status"]
            headers = message.get("headers", ())
            self.trace_id = _header(headers, b"x-trace-id")
            self._json_answer = "json" in (_header(headers, b"content-type") or "")
        elif message["type"] == "http.response.body" and self._json_answer and len(self._answer) < _BODY_CAP:
            self._answer += message.get("body", b"")
        await self._send(message)

    def error(self) -> tuple[str | None, Mapping[str, list[str]] | None]:
        """The error body's `errorCode` and `cause`, when the answer was one."""
        if self.status < 400:
            return None, None
        answer = _json_or_none(bytes(self._answer))
        if not isinstance(answer, dict):
            return None, None
        code = answer.get("errorCode")
        cause = answer.get("cause")
        return (code if isinstance(code, str) else None), (cause if isinstance(cause, dict) else None)


class RequestJournal:
    """ASGI wrapper recording every API request of the wrapped mock app; other attributes pass through.

    Args:
        app: The app built by `create_app()` (`app.state`, and any attribute, stay reachable on the wrapper).
        settings: The mock's settings (to name the merchant of a key); default `app.state.ctx.settings`.
        max_entries: Entries kept per merchant, oldest dropped first.
    """

    def __init__(self, app: ASGIApp, settings: Settings | None = None, *, max_entries: int = DEFAULT_MAX_ENTRIES):
        if max_entries < 1:
            raise ValueError(f"max_entries must be at least 1, got {max_entries}")
        self.app = app
        settings = settings if settings is not None else app.state.ctx.settings  # type: ignore[attr-defined]
        # Keys are looked up by digest: the journal never holds a raw secret.
        self._merchants: dict[bytes, Merchant] = {_digest(m.secret_key): m for m in settings.merchants}
        # The mock's 401 has an empty body under this setting (the real service sometimes did); the journal's too.
        self._empty_401 = settings.unauthorized_body == "empty"
        self.max_entries = max_entries
        self._entries: dict[str | None, deque[JournalEntry]] = {}
        self._lock = threading.Lock()
        self._next_id = 1

    def __getattr__(self, name: str) -> Any:
        # Only reached for attributes the wrapper lacks: `journaled.state.ctx` is the app's.
        return getattr(self.app, name)

    # -- reading ------------------------------------------------------------------------------

    def entries(self, site_id: str | None = None, query: JournalQuery | None = None) -> list[JournalEntry]:
        """Entries of one merchant (`site_id`; `None`: of every merchant), oldest first, filtered by `query`."""
        query = query or JournalQuery()
        with self._lock:
            if site_id is None:
                pool = sorted((e for entries in self._entries.values() for e in entries), key=lambda e: e.id)
            else:
                pool = list(self._entries.get(site_id, ()))
                if query.include_unauthenticated:
                    pool = sorted([*pool, *self._entries.get(None, ())], key=lambda e: e.id)
        found = [entry for entry in pool if query.matches(entry)]
        return found[-query.limit :] if query.limit is not None else found

    def clear(self, site_id: str | None = None) -> None:
        """Forget one merchant's entries (`None`: every entry)."""
        with self._lock:
            if site_id is None:
                self._entries.clear()
            else:
                self._entries.pop(site_id, None)

    def _merchant(self, scope: Scope) -> Merchant | None:
        token = _bearer(scope)
        return None if token is None else self._merchants.get(_digest(token))

    def _add(self, site_id: str | None, make: Any) -> None:
        with self._lock:
            entry: JournalEntry = make(self._next_id)
            self._next_id += 1
            bucket = self._entries.get(site_id)
            if bucket is None:
                bucket = self._entries[site_id] = deque(maxlen=self.max_entries)
            bucket.append(entry)

    # -- ASGI ---------------------------------------------------------------------------------

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        path: str = scope["path"]
        if path.startswith(_API_PREFIX):
            if _header(scope["headers"], _UNJOURNALED) is None:
                await self._journaled(scope, receive, send)
            else:
                await self.app(scope, receive, send)
        elif path == _REQUESTS_PATH:
            await self._requests(scope, send)
        elif path == _RESET_PATH and scope["method"] == "POST":
            merchant = self._merchant(scope)
            recorder = _Recorder(receive, send)
            await self.app(scope, receive, recorder.send)
            if merchant is not None and recorder.status == 200:
                self.clear(merchant.site_id)
        else:
            await self.app(scope, receive, send)

    async def _journaled(self, scope: Scope, receive: Receive, send: Send) -> None:
        now = datetime.now(UTC)
        received_at = now.replace(microsecond=now.microsecond // 1000 * 1000)  # what GET /_mock/requests can show
        started = _monotonic_ms()
        merchant = self._merchant(scope)
        recorder = _Recorder(receive, send)
        await recorder.read_body()
        raw_path: bytes = scope.get("raw_path") or scope["path"].encode("utf-8")
        raw = raw_path.split(b"?", 1)[0].decode("latin-1")
        segments = [unquote(s, errors="replace") for s in raw.removeprefix(_API_PREFIX + "bills/").split("/")]
        in_bills = raw.startswith(_API_PREFIX + "bills/")
        operation = operation_of(scope["method"], segments) if in_bills else None

        dropped = False

        def make(entry_id: int) -> JournalEntry:
            error_code, cause = (None, None) if dropped else recorder.error()
            status = 0 if dropped else recorder.status
            return JournalEntry(
                id=entry_id,
                received_at=received_at,
                method=scope["method"],
                path=raw,
                operation=operation,
                bill_id=segments[0] if in_bills and segments[0] else None,
                refund_id=segments[2] if operation in ("createRefund", "getRefund") else None,
                site_id=None if merchant is None else merchant.site_id,
                body=_json_or_none(recorder.body),
                raw_body=recorder.body.decode("utf-8", "replace"),
                status_code=status,
                error_code=error_code,
                cause=cause,
                trace_id=recorder.trace_id,
                outcome=_outcome(status, error_code),
                duration_ms=_monotonic_ms() - started,
            )

        try:
            await self.app(scope, recorder.receive, recorder.send)
        except BaseException:  # the app aborted the answer (a dropped connection, fault injection): status 0
            dropped = True
            raise
        finally:
            self._add(None if merchant is None else merchant.site_id, make)

    async def _requests(self, scope: Scope, send: Send) -> None:
        merchant = self._merchant(scope)
        method = scope["method"]
        if method not in ("GET", "HEAD", "DELETE"):
            await _answer_error(send, errors.METHOD_NOT_SUPPORTED, headers={"Allow": "DELETE, GET, HEAD"})
        elif merchant is None:
            await _answer_error(send, errors.UNAUTHORIZED, empty=self._empty_401)
        elif method == "DELETE":
            self.clear(merchant.site_id)
            await _answer(send, 200, {"status": "cleared"})
        else:
            try:
                query = JournalQuery.from_params(parse_qsl(scope.get("query_string", b"").decode("latin-1")))
            except QueryInvalid as exc:
                await _answer_error(send, errors.VALIDATION, cause=exc.cause)
                return
            found = self.entries(merchant.site_id, query)
            await _answer(send, 200, {"requests": [entry.to_dict() for entry in found]})


def with_journal(
    app: ASGIApp, settings: Settings | None = None, *, max_entries: int = DEFAULT_MAX_ENTRIES
) -> RequestJournal:
    """`app` with a request journal: wrapped in a new `RequestJournal`, or as it is when it already has one.

    Safe whoever applies the journal first (`create_app()` itself, the CLI, or the kit).
    """
    if isinstance(app, RequestJournal):
        return app
    return RequestJournal(app, settings, max_entries=max_entries)


def _monotonic_ms() -> float:
    return time.perf_counter() * 1000


async def _answer(send: Send, status: int, body: Any, headers: Mapping[str, str] | None = None) -> None:
    payload = dumps(body)
    raw_headers = [(b"content-type", b"application/json"), *_raw(headers or {}, b"%d" % len(payload))]
    await send({"type": "http.response.start", "status": status, "headers": raw_headers})
    await send({"type": "http.response.body", "body": payload})


def _raw(headers: Mapping[str, str], length: bytes) -> list[tuple[bytes, bytes]]:
    return [
        (b"content-length", length),
        *((k.lower().encode("latin-1"), v.encode("latin-1")) for k, v in headers.items()),
    ]


async def _answer_error(
    send: Send,
    kind: errors.ErrorKind,
    *,
    cause: Mapping[str, list[str]] | None = None,
    headers: Mapping[str, str] | None = None,
    empty: bool = False,
) -> None:
    # The mock's own error body (errors.error_body), with a traceId of its own, like every /_mock/ control.
    trace_id = secrets.token_hex(8)
    headers = {**(headers or {}), "X-Trace-Id": trace_id}
    if empty:
        await send({"type": "http.response.start", "status": kind.status, "headers": _raw(headers, b"0")})
        await send({"type": "http.response.body", "body": b""})
        return
    body = errors.error_body(kind, trace_id=trace_id, now_us=to_micros(datetime.now(UTC)), cause=cause)
    await _answer(send, kind.status, body, headers)
