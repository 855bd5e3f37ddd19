"""Request validation against the OpenAPI document, compiled once (no hand-written second schema).

The document is located next to the package in a source checkout (`<repo>/openapi/`), or inside
the package (`qiwi_bill_mock/openapi/`) when that copy is shipped. One jsonschema-rs validator is
compiled per request body and path parameter at start-up; validating a body costs microseconds,
where openapi-core per request costs 4-8 ms (docs/sources.md, Toolchain pitfalls).

Failures map to QIWI's codes (docs/sources.md): unreadable JSON or wrong JSON types →
`http.message.conversion.failed` (the P2P docs' create-error sample); invalid values →
`validation.error` with `cause` `{field: [message]}`.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Mapping
from decimal import ROUND_DOWN, Decimal, InvalidOperation
from pathlib import Path
from typing import Any

import jsonschema_rs
import yaml

from qiwi_bill_mock.store import BillDraft
from qiwi_bill_mock.wire import format_expiration, parse_rfc3339

__all__ = [
    "MAX_BODY_BYTES",
    "RefundAmountNotPositive",
    "RequestInvalid",
    "SpecValidators",
    "check_json_content_type",
    "draft_from_body",
    "find_spec",
    "load_validators",
    "parse_json",
    "refund_amount_from_body",
]

#: Larger bodies are refused as unreadable (a bill body is well under 4 KiB).
MAX_BODY_BYTES = 1 << 20
_SPEC_NAME = "qiwi-bill-payments.yaml"
_CENT = Decimal("0.01")


class RequestInvalid(Exception):
    """The request is unreadable (`conversion=True`) or has invalid values (`cause`)."""

    def __init__(self, *, conversion: bool = False, cause: Mapping[str, list[str]] | None = None) -> None:
        super().__init__("unreadable request" if conversion else f"invalid request: {dict(cause or {})}")
        self.conversion = conversion
        self.cause = dict(cause or {})


def find_spec() -> Path:
    """The OpenAPI document: the repository's `openapi/` first, then a copy shipped in the package."""
    package_dir = Path(__file__).resolve().parent
    for candidate in (package_dir.parent / "openapi" / _SPEC_NAME, package_dir / "openapi" / _SPEC_NAME):
        if candidate.is_file():
            return candidate
    raise FileNotFoundError(
        f"{_SPEC_NAME} not found next to the package ({package_dir.parent / 'openapi'}) "
        f"or inside it ({package_dir / 'openapi'})"
    )


class SpecValidators:
    """Compiled validators for the request bodies and path parameters of the document."""

    def __init__(self, spec: Mapping[str, Any]) -> None:
        registry = jsonschema_rs.Registry([("urn:qiwi-bill-payments", dict(spec))])

        def compile_ref(pointer: str) -> Any:
            return jsonschema_rs.validator_for(
                {"$ref": f"urn:qiwi-bill-payments#{pointer}"}, registry=registry, validate_formats=True
            )

        self.create_bill = compile_ref("/components/schemas/CreateBillRequest")
        self.create_refund = compile_ref("/components/schemas/CreateRefundRequest")
        self.bill_id = compile_ref("/components/parameters/billId/schema")
        self.refund_id = compile_ref("/components/parameters/refundId/schema")
        params = spec["components"]["parameters"]
        self.path_limits = {
            name: (params[name]["schema"].get("minLength", 0), params[name]["schema"].get("maxLength"))
            for name in ("billId", "refundId")
        }

    def check_path(self, name: str, value: str) -> None:
        """Validate a path parameter (`billId` / `refundId`) against its schema."""
        validator = self.bill_id if name == "billId" else self.refund_id
        if not validator.is_valid(value):
            low, high = self.path_limits[name]
            raise RequestInvalid(cause={name: [f"size must be between {low} and {high}"]})


@functools.cache
def load_validators(path: Path | None = None) -> SpecValidators:
    """Load the document and compile its validators (cached: once per process)."""
    with (path or find_spec()).open(encoding="utf-8") as handle:
        spec = yaml.safe_load(handle)
    return SpecValidators(spec)


def check_json_content_type(content_type: str | None) -> bool:
    """Whether the body is declared as JSON (`application/json`, `...;charset=UTF-8`, `application/*+json`)."""
    if not content_type:
        return False
    media_type, *params = content_type.split(";")
    media_type = media_type.strip().lower()
    if media_type != "application/json" and not (
        media_type.startswith("application/") and media_type.endswith("+json")
    ):
        return False
    for param in params:
        key, _, value = param.partition("=")
        if key.strip().lower() == "charset" and value.strip().strip('"').lower() not in ("utf-8", "utf8"):
            return False
    return True


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


def _check_text(value: Any, depth: int = 0) -> None:
    """Refuse lone surrogates (`"\\ud800"`): valid JSON escapes, but not storable or re-encodable text."""
    if isinstance(value, str):
        value.encode("utf-8")
    elif isinstance(value, dict):
        for key, item in value.items():
            key.encode("utf-8")
            _check_text(item, depth + 1)
    elif isinstance(value, list):
        for item in value:
            _check_text(item, depth + 1)


# json.loads builds a new decoder per call when given options; this one is built once.
_DECODER = json.JSONDecoder(parse_float=Decimal, parse_constant=_reject_constant)


def parse_json(raw: bytes) -> Any:
    """Decode a JSON body exactly: numbers with a fraction become `Decimal`, never float.

    Raises:
        RequestInvalid: (conversion) empty, not UTF-8, not JSON, NaN/Infinity, or too deeply nested.
    """
    try:
        text = raw.decode("utf-8")
        value = _DECODER.decode(text)
        # A lone surrogate can only come from a `\u` escape (strict UTF-8 decoding refuses encoded ones), so
        # bodies without one (every SDK's) skip the walk.
        if "\\u" in text:
            _check_text(value)
    except (ValueError, UnicodeError, RecursionError):
        raise RequestInvalid(conversion=True) from None
    return value


def _field(path: list[str | int]) -> str:
    return ".".join(str(part) for part in path) or "body"


def _message(kind: Any) -> str:
    name = kind.name
    detail = kind.as_dict()
    limit = detail.get("limit")
    if name == "required":
        return "must not be null"
    if name == "maxLength":
        return f"size must be between 0 and {limit}"
    if name == "minLength":
        return f"size must be at least {limit}"
    if name == "minimum":
        return f"must be greater than or equal to {limit}"
    if name == "maximum":
        return f"must be less than or equal to {limit}"
    if name == "pattern":
        return f'must match "{detail.get("pattern", "")}"'
    if name == "format":
        return f"must be a valid {detail.get('format', 'value')} (ISO 8601 with an offset)"
    return f"invalid value ({name})"


def _leaf_errors(errors: list[Any]) -> list[Any]:
    """Errors under the spec's `anyOf: [X, {type: null}]` (an optional member that may be null) reported against X.

    jsonschema-rs reports one `anyOf` error for the member; what is wrong is what X says, not "is not null".
    """
    out: list[Any] = []
    for error in errors:
        if error.kind.name != "anyOf":
            out.append(error)
            continue
        subs = [
            sub
            for branch in error.kind.context
            for sub in branch
            if not (sub.kind.name == "type" and sub.kind.as_dict().get("types") == ["null"])
        ]
        out.extend(_leaf_errors(subs) if subs else [error])
    return out


def validate(validator: Any, body: Any) -> None:
    """Validate a parsed body; wrong JSON types are unreadable, other violations invalid values.

    A `null` where the document allows none is a required member sent as null (optional members may be null,
    meaning absent): 400 `validation.error` "must not be null", as for a missing one. The real service was
    Java/Jackson with bean validation, which reads null as absent and reports `@NotNull` as "must not be null"
    (issue 13; Java SDK live test: create with a null amount → 400). A `null` body stays unreadable.
    """
    cause: dict[str, list[str]] = {}
    try:
        if validator.is_valid(body):  # the common case, without building an error iterator
            return
        errors = _leaf_errors(list(validator.iter_errors(body)))
    except (ValueError, OverflowError, TypeError):
        # jsonschema-rs cannot represent the value (e.g. a huge exponent): treat it as unreadable.
        raise RequestInvalid(conversion=True) from None
    for error in errors:
        path = list(error.instance_path)
        if error.kind.name == "type" and error.instance is None and path:
            cause.setdefault(_field(path), []).append("must not be null")
            continue
        if error.kind.name == "type":
            # Spring/Jackson could not bind the body to the DTO: "http.message.conversion.failed" [doc, P2P].
            raise RequestInvalid(conversion=True)
        if error.kind.name == "required":
            path.append(error.kind.as_dict()["property"])
        cause.setdefault(_field(path), []).append(_message(error.kind))
    if cause:
        raise RequestInvalid(cause=cause)


def _amount(value: Any) -> Decimal:
    """A schema-valid amount value as an exact Decimal; JSON numbers are rounded DOWN to 2 decimals.

    "округленная в меньшую сторону до 2 десятичных знаков" (reference document, `amount.value`).
    """
    try:
        if isinstance(value, str):
            return Decimal(value)
        return Decimal(value).quantize(_CENT, rounding=ROUND_DOWN)
    except (InvalidOperation, ValueError, TypeError):
        raise RequestInvalid(cause={"amount.value": ["must be a number with at most 2 decimals"]}) from None


def draft_from_body(validators: SpecValidators, body: Any) -> BillDraft:
    """Validate a create body against the document and turn it into a `BillDraft`.

    Unknown fields are ignored, as the real service ignored them (the SDKs' extra keys).
    """
    validate(validators.create_bill, body)
    amount = _amount(body["amount"]["value"])
    try:
        expiration, with_fraction = parse_rfc3339(body["expirationDateTime"])
    except ValueError as exc:
        raise RequestInvalid(cause={"expirationDateTime": [str(exc)]}) from None
    # null = absent for every optional member (issue 13), nested ones and customFields values included.
    customer = body.get("customer") or {}
    custom_fields = body.get("customFields") or {}
    return BillDraft(
        amount=amount,
        currency=body["amount"]["currency"],
        expiration=expiration,
        expiration_text=format_expiration(expiration, with_fraction=with_fraction),
        comment=body.get("comment"),
        customer={k: customer[k] for k in ("phone", "email", "account") if isinstance(customer.get(k), str)},
        custom_fields={key: value for key, value in custom_fields.items() if value is not None},
    )


class RefundAmountNotPositive(RequestInvalid):
    """A refund of zero or less: `refund.incorrect.amount` per the decision table, not `validation.error`."""


def _not_positive(value: Any) -> bool:
    if isinstance(value, bool) or not isinstance(value, str | int | Decimal):
        return False
    try:
        return Decimal(value) <= 0
    except (InvalidOperation, ValueError):
        return False


def refund_amount_from_body(validators: SpecValidators, body: Any) -> tuple[Decimal, str]:
    """Validate a refund body; returns the exact amount and currency.

    Raises:
        RefundAmountNotPositive: the body is valid but for an amount of zero or less (legacy rule: the refund
            amount must be positive; the only documented refund error is `refund.incorrect.amount`).
        RequestInvalid: any other problem.
    """
    try:
        validate(validators.create_refund, body)
    except RequestInvalid as exc:
        amount = body.get("amount") if isinstance(body, dict) else None
        value = amount.get("value") if isinstance(amount, dict) else None
        if not exc.conversion and set(exc.cause) == {"amount.value"} and _not_positive(value):
            raise RefundAmountNotPositive(cause={"amount": ["the refund amount must be positive"]}) from None
        raise
    return _amount(body["amount"]["value"]), body["amount"]["currency"]
