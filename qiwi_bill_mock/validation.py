"""Request validation against the OpenAPI document, compiled once (no hand-written second schema).

The document is located next to the package in a source checkout (`<repo>/openapi/`), or inside
the package (`qiwi_bill_mock/openapi/`) when that copy is shipped. One jsonschema-rs validator is
compiled per request body and path parameter at start-up; validating a body costs microseconds,
where openapi-core per request costs 4-8 ms (docs/sources.md, Toolchain pitfalls).

Failures raise the `errors` exceptions (docs/sources.md): unreadable JSON or wrong JSON types →
`Unreadable` (`http.message.conversion.failed`, the P2P docs' create-error sample); invalid values →
`InvalidValues` (`validation.error` with `cause` `{field: [message]}`).

JSON `null` means "absent" (issue 13): QIWI's Java SDK 1.5.0 (Jackson) sends `"customFields":{"checkoutReferer":
null}`, the .NET SDK `"themeCode":null`, pyqiwip2p 2.0.7 `"customer":{"phone":null}` (qiwi-sdks.md), and the real
(Java/Jackson) service read them as absent. `strip_nulls` drops every `null` member BEFORE the schema is applied,
so an optional `null` is accepted and a required one gets the same `validation.error` as a missing one. The
document stays the truth: this happens when it allows a `null` optional member (`SpecValidators.null_is_absent`,
probed at start-up); a document that refuses every `null` gets nulls refused.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Mapping
from datetime import datetime
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any

import jsonschema_rs
import yaml

from qiwi_bill import parse_datetime
from qiwi_bill_mock.errors import IncorrectRefundAmount, InvalidValues, Unreadable
from qiwi_bill_mock.models import BillDraft
from qiwi_bill_mock.rules import round_json_amount
from qiwi_bill_mock.wire import format_expiration

__all__ = [
    "MAX_BODY_BYTES",
    "SpecValidators",
    "check_json_content_type",
    "draft_from_body",
    "find_spec",
    "leaf_errors",
    "load_validators",
    "parse_expiration",
    "parse_json",
    "refund_amount_from_body",
    "strip_nulls",
]

#: Larger bodies are refused as unreadable (a bill body is well under 4 KiB).
MAX_BODY_BYTES = 1 << 20
_SPEC_NAME = "qiwi-bill-payments.yaml"


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


_PROBE = {"amount": {"value": "1.00", "currency": "RUB"}, "expirationDateTime": "2030-04-13T14:30:00+03:00"}
_NULL_PROBES: dict[str, Any] = {
    "comment": None,
    "customer": None,
    "customFields": {"checkoutReferer": None},  # QIWI's Java SDK 1.5.0 on every create
}


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
        #: The document allows `null` for an optional create member: read every `null` as absent (module docstring).
        self.null_is_absent = any(
            self.create_bill.is_valid({**_PROBE, name: value}) for name, value in _NULL_PROBES.items()
        )
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
            raise InvalidValues({name: [f"size must be between {low} and {high}"]})


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
        Unreadable: empty, not UTF-8, not JSON, NaN/Infinity, or too deeply nested.
    """
    try:
        text = raw.decode("utf-8")
        value = _DECODER.decode(text)
        # A lone surrogate can only come from a `\u` escape (strict UTF-8 decoding refuses encoded ones), so
        # bodies without one (every SDK's) skip the walk.
        if "\\u" in text:
            _check_text(value)
    except (ValueError, UnicodeError, RecursionError):
        raise Unreadable() from None
    return value


def strip_nulls(value: Any) -> Any:
    """`value` without its `null` object members, at any depth (`null` = absent, see the module docstring)."""
    if isinstance(value, dict):
        return {key: strip_nulls(item) for key, item in value.items() if item is not None}
    return value


def _field(path: list[str | int]) -> str:
    return ".".join(str(part) for part in path) or "body"


#: The `cause` message of each failed schema keyword. QIWI documents only the shape of `cause` (field -> messages,
#: qiwi-api-semantics.md); the wording is the mock's own [inf], in Java bean validation's style ("size must be between
#: 0 and 255"). `{limit}`, `{pattern}` and `{format}` come from the keyword's detail.
_MESSAGES = {
    "required": "must not be null",
    "maxLength": "size must be between 0 and {limit}",
    "minLength": "size must be at least {limit}",
    "minimum": "must be greater than or equal to {limit}",
    "maximum": "must be less than or equal to {limit}",
    "pattern": 'must match "{pattern}"',
    "format": "must be a valid {format} (ISO 8601 with an offset)",
}


def _message(kind: Any) -> str:
    template = _MESSAGES.get(kind.name)
    if template is None:
        return f"invalid value ({kind.name})"
    detail = kind.as_dict()
    return template.format(
        limit=detail.get("limit"), pattern=detail.get("pattern", ""), format=detail.get("format", "value")
    )


def leaf_errors(errors: list[Any]) -> list[Any]:
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
        out.extend(leaf_errors(subs) if subs else [error])
    return out


def validate(validator: Any, body: Any) -> None:
    """Validate a parsed body; wrong JSON types are unreadable, other violations invalid values."""
    cause: dict[str, list[str]] = {}
    try:
        if validator.is_valid(body):  # the common case, without building an error iterator
            return
        errors = leaf_errors(list(validator.iter_errors(body)))
    except (ValueError, OverflowError, TypeError):
        # jsonschema-rs cannot represent the value (e.g. a huge exponent): treat it as unreadable.
        raise Unreadable() from None
    for error in errors:
        if error.kind.name == "type":
            # Spring/Jackson could not bind the body to the DTO: "http.message.conversion.failed" [doc, P2P].
            raise Unreadable()
        path = list(error.instance_path)
        if error.kind.name == "required":
            path.append(error.kind.as_dict()["property"])
        cause.setdefault(_field(path), []).append(_message(error.kind))
    if cause:
        raise InvalidValues(cause)


def _amount(value: Any) -> Decimal:
    """A schema-valid amount value as an exact Decimal (a JSON number rounded by `rules.round_json_amount`)."""
    try:
        if isinstance(value, str):
            return Decimal(value)
        return round_json_amount(value)
    except (InvalidOperation, ValueError, TypeError):
        raise InvalidValues({"amount.value": ["must be a number with at most 2 decimals"]}) from None


def parse_expiration(text: str) -> tuple[datetime, bool]:
    """A schema-valid `expirationDateTime` (RFC 3339 with an offset): the aware datetime, and whether it had a fraction.

    Raises:
        InvalidValues: no offset, or not a date-time `qiwi_bill.parse_datetime` can read.
    """
    if text[10:11] == "T" and text[-1:] != "z":
        # The spelling every SDK sends (`2030-04-13T14:30:00+03:00`, `.123`): the C parser reads it exactly, and
        # about 5 us faster per create than the general parser below (`python -m bench.profile put`).
        try:
            moment = datetime.fromisoformat(text)
        except ValueError:
            pass
        else:
            if moment.utcoffset() is not None:
                return moment, "." in text[19:]
    try:
        moment = parse_datetime(text, require_offset=True, field="expirationDateTime")
    except ValueError:
        message = "must be an ISO 8601 date-time with an offset, e.g. 2030-04-13T14:30:00+03:00"
        raise InvalidValues({"expirationDateTime": [message]}) from None
    return moment, "." in text[19:] or "," in text[19:]


def draft_from_body(validators: SpecValidators, body: Any) -> BillDraft:
    """Validate a create body against the document and turn it into a `BillDraft`.

    Unknown fields are ignored, as the real service ignored them (the SDKs' extra keys); `null` members are absent.
    """
    if validators.null_is_absent:
        body = strip_nulls(body)
    validate(validators.create_bill, body)
    amount = _amount(body["amount"]["value"])
    expiration, with_fraction = parse_expiration(body["expirationDateTime"])
    customer = body.get("customer") or {}
    return BillDraft(
        amount=amount,
        currency=body["amount"]["currency"],
        expiration=expiration,
        expiration_text=format_expiration(expiration, with_fraction=with_fraction),
        comment=body.get("comment"),
        customer={k: customer[k] for k in ("phone", "email", "account") if isinstance(customer.get(k), str)},
        custom_fields=dict(body.get("customFields") or {}),
    )


def _not_positive(value: Any) -> bool:
    if isinstance(value, bool) or not isinstance(value, str | int | Decimal):
        return False
    try:
        return Decimal(value) <= 0
    except (InvalidOperation, ValueError):
        return False


def refund_amount_from_body(validators: SpecValidators, body: Any) -> tuple[Decimal, str]:
    """Validate a refund body (`null` members are absent); returns the exact amount and currency.

    Raises:
        IncorrectRefundAmount: the body is valid but for an amount of zero or less (legacy rule: the refund
            amount must be positive; the only documented refund error is `refund.incorrect.amount`).
        InvalidValues: invalid values.
        Unreadable: unreadable body.
    """
    if validators.null_is_absent:
        body = strip_nulls(body)
    try:
        validate(validators.create_refund, body)
    except InvalidValues as exc:
        amount = body.get("amount") if isinstance(body, dict) else None
        value = amount.get("value") if isinstance(amount, dict) else None
        if set(exc.cause) == {"amount.value"} and _not_positive(value):
            raise IncorrectRefundAmount("the refund amount must be positive") from None
        raise
    return _amount(body["amount"]["value"]), body["amount"]["currency"]
