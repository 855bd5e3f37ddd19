"""The payment pages' input: the ``payUrl`` options, the form-create link's parameters, and the page errors.

Pure functions of query parameters (no HTTP, no store): what a link may say, what the mock refuses and with which
message. The rules the API shares come from ``qiwi_bill`` (pay sources, amount range and rounding, the form's
Moscow-time ``lifetime``), so the pages and the helpers cannot disagree.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime
from decimal import Decimal
from typing import Any, Final
from urllib.parse import urlencode, urlsplit

from qiwi_bill import MAX_AMOUNT, MIN_AMOUNT, PAY_SOURCES, InvalidFieldError, format_amount, parse_lifetime

__all__ = [
    "CreateParams",
    "FormOptions",
    "PageError",
    "origin_of",
    "parse_create_params",
    "parse_form_options",
    "parse_invoice_uid",
    "pay_source_list",
    "single_values",
    "validate_success_url",
]

_MAX_TEXT: Final = 255  # comment, customer fields and every customFields value: String(255) in the API doc
_MAX_BILL_ID: Final = 200  # billId: String(200)
_MAX_URL: Final = 2048
_BILL_ID_RE: Final = re.compile(r"[A-Za-z0-9_-]+")
# How a link spells a number (digits, one dot, no sign or exponent); range and decimals are qiwi_bill's rules.
_AMOUNT_SPELLING_RE: Final = re.compile(r"(?:0|[1-9][0-9]*)(?:\.[0-9]+)?")
_CUSTOM_FIELD_RE: Final = re.compile(r"customFields\[([^\[\]]+)\]")
_LIFETIME_WITH_COLON_RE: Final = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}")

# The 2017 form (``/form/create``) used snake_case names; a merchant still sending them gets told the v1 name.
_LEGACY_NAMES: Final[Mapping[str, str]] = {
    "public_key": "publicKey",
    "bill_id": "billId",
    "success_url": "successUrl",
    "pay_source": "paySource",
}
# Added by the popup SDK to its iframe URL (bill-payments-popup-js-sdk, src/components/CheckoutIframe.js), plus the
# payUrl options, which the mock also accepts on /create because it redirects to the form with them. ``frameOrigin``
# is the mock's own: the origin allowed to frame an embedded page (see pages_guard.frame_ancestor).
_FORM_NAMES: Final = frozenset(
    {"paySource", "allowedPaySources", "successUrl", "lifetime", "embedded", "billref", "frameOrigin"}
)


class PageError(Exception):
    """A request the pages cannot serve; rendered as an HTML error page with ``status_code`` (always a 4xx).

    Attributes:
        status_code: The HTTP status of the error page.
        title: A short headline.
        detail: What is wrong and how to fix it, naming the parameter.
    """

    def __init__(self, status_code: int, title: str, detail: str) -> None:
        super().__init__(f"{status_code} {title}: {detail}")
        self.status_code = status_code
        self.title = title
        self.detail = detail


def _bad(detail: str, title: str = "Invalid payment link") -> PageError:
    return PageError(400, title, detail)


def single_values(items: Sequence[tuple[str, str]]) -> dict[str, str]:
    """Map names to values, refusing a parameter given twice (which value the real form took is unknown).

    Raises:
        PageError: 400 naming the repeated parameter.
    """
    seen: dict[str, str] = {}
    for name, value in items:
        if name in seen:
            raise _bad(f"The parameter {name!r} is given more than once; give it once.")
        seen[name] = value
    return seen


def _checked_url(value: str, name: str) -> str:
    if len(value) > _MAX_URL:
        raise _bad(f"{name} is longer than {_MAX_URL} characters.")
    if any(ord(char) < 0x21 or ord(char) == 0x7F for char in value):
        raise _bad(f"{name} contains whitespace or control characters; URL-encode it.")
    try:
        parts = urlsplit(value)
        parts.port  # noqa: B018  # a port that is not a number raises here, not later
    except ValueError:
        raise _bad(f"{name} is not a valid URL.") from None
    if parts.scheme.lower() not in ("http", "https") or not parts.hostname:
        raise _bad(f"{name} must be an absolute http:// or https:// URL of the merchant's site; this one is refused.")
    return value


def validate_success_url(value: str, *, name: str = "successUrl") -> str:
    """Check a ``successUrl``: an absolute ``http``/``https`` URL with a host.

    The doc only says the link "must lead to the merchant's site"; the mock refuses anything else because the
    form redirects the customer's browser there, and a ``javascript:`` or ``data:`` URL would run code.

    Args:
        value: The URL as received.
        name: The parameter name for the error message.

    Returns:
        The URL, unchanged.

    Raises:
        PageError: 400 naming the parameter.
    """
    return _checked_url(value, name)


def origin_of(url: str, *, name: str = "frameOrigin") -> str:
    """The origin (``scheme://host[:port]``, lower case, no default port) of an absolute http(s) URL.

    Raises:
        PageError: 400 naming ``name`` if ``url`` is not an absolute http(s) URL.
    """
    parts = urlsplit(_checked_url(url, name))
    scheme = parts.scheme.lower()
    host = (parts.hostname or "").lower()
    if ":" in host:  # an IPv6 literal keeps its brackets in an origin
        host = f"[{host}]"
    default = 443 if scheme == "https" else 80
    port = "" if parts.port in (None, default) else f":{parts.port}"
    return f"{scheme}://{host}{port}"


def _lifetime(value: str, *, name: str = "lifetime") -> datetime:
    try:
        return parse_lifetime(value, field=name)
    except InvalidFieldError:
        # A colon (2021-05-01T14:47) was silently ignored by the real form, which then offered a month
        # (bill-payments-php-sdk#20); the mock says so instead of hiding the bug.
        hint = " Write it without a colon." if _LIFETIME_WITH_COLON_RE.fullmatch(value) else ""
        raise _bad(
            f"{name} must be YYYY-MM-DDTHHmm in Moscow time, e.g. 2020-12-01T0509; got {value[:40]!r}.{hint}"
        ) from None


def pay_source_list(value: str) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """Split a comma-separated list into (known pay sources in form order, unknown names)."""
    names = [part.strip() for part in value.split(",") if part.strip()]
    known = tuple(source for source in PAY_SOURCES if source in names)
    unknown = tuple(dict.fromkeys(name for name in names if name not in PAY_SOURCES))
    return known, unknown


@dataclass(frozen=True, slots=True)
class FormOptions:
    """The options appended to a ``payUrl`` (API doc, "Возможности при открытии ссылки счета").

    Attributes:
        pay_source: ``paySource``: the method selected when the form opens.
        allowed_pay_sources: ``allowedPaySources``: only these are shown; ``None`` when absent.
        success_url: ``successUrl``: where the browser goes after paying.
        lifetime: ``lifetime``: the form refuses payment after it (Moscow time).
        embedded: ``embedded=true``: the page is inside the Checkout Popup's iframe and reports to its parent.
        frame_origin: ``frameOrigin`` (the mock's own): the origin that may frame an embedded page.
        notes: What the mock ignored, shown on the page so a tester sees it.
        raw: The options as given, carried on to the form's links and redirects.
    """

    pay_source: str | None = None
    allowed_pay_sources: tuple[str, ...] | None = None
    success_url: str | None = None
    lifetime: datetime | None = None
    embedded: bool = False
    frame_origin: str | None = None
    notes: tuple[str, ...] = ()
    raw: tuple[tuple[str, str], ...] = field(default=(), repr=False)

    def query(self, invoice_uid: str) -> str:
        """The form's query string for this bill with the same options, for links and redirects."""
        return urlencode([("invoice_uid", invoice_uid), *self.raw])

    def given(self, name: str, text: str, **fields: Any) -> FormOptions:
        """These options with the query parameter ``name=text`` carried on (replacing an earlier one) and the
        attributes it sets: the one place an option becomes both a field and part of :attr:`raw`."""
        raw = tuple(item for item in self.raw if item[0] != name)
        return replace(self, raw=(*raw, (name, text)), **fields)

    def noting(self, note: str) -> FormOptions:
        """These options with one more line in :attr:`notes`."""
        return replace(self, notes=(*self.notes, note))

    def framed_by(self, origin: str) -> FormOptions:
        """These options with ``frameOrigin`` set, so the page's own links keep the origin allowed to frame it."""
        if self.frame_origin == origin:
            return self
        return self.given("frameOrigin", origin, frame_origin=origin)


def parse_form_options(params: Mapping[str, str]) -> FormOptions:
    """Read the ``payUrl`` options from query parameters (other names are ignored).

    An unknown ``paySource`` is not an error: the doc says the form then picks the recommended method. Unknown
    names in ``allowedPaySources`` are dropped the same way; both are listed in :attr:`FormOptions.notes`.

    Raises:
        PageError: 400 for a refused ``successUrl`` or ``frameOrigin``, or a malformed ``lifetime``.
    """
    options = FormOptions()
    if (pay_source := params.get("paySource")) is not None:
        known = pay_source in PAY_SOURCES
        options = options.given("paySource", pay_source, pay_source=pay_source if known else None)
        if not known:
            options = options.noting(f"paySource {pay_source!r} is not one of {', '.join(PAY_SOURCES)}; ignored.")
    if (allowed_text := params.get("allowedPaySources")) is not None:
        allowed, unknown = pay_source_list(allowed_text)
        options = options.given("allowedPaySources", allowed_text, allowed_pay_sources=allowed)
        if unknown:
            options = options.noting(f"allowedPaySources: unknown {', '.join(repr(name) for name in unknown)} ignored.")
    if (success_url := params.get("successUrl")) is not None:
        success_url = validate_success_url(success_url)
        options = options.given("successUrl", success_url, success_url=success_url)
    if (lifetime_text := params.get("lifetime")) is not None:
        options = options.given("lifetime", lifetime_text, lifetime=_lifetime(lifetime_text))
    embedded = params.get("embedded") == "true"
    if embedded:
        options = options.given("embedded", "true", embedded=True)
    if embedded and (frame_text := params.get("frameOrigin")) is not None:
        options = options.framed_by(origin_of(frame_text))
    return options


def parse_invoice_uid(params: Mapping[str, str]) -> str:
    """The bill's form id from ``invoice_uid`` (what ``payUrl`` carries) or ``invoiceUid`` (the doc's spelling).

    Raises:
        PageError: 400 if neither is given or they disagree.
    """
    snake, camel = params.get("invoice_uid"), params.get("invoiceUid")
    if snake is not None and camel is not None and snake != camel:
        raise _bad("invoice_uid and invoiceUid name different bills; give one of them.")
    value = snake if snake is not None else camel
    if not value:
        raise _bad("The link has no invoice_uid: open the payUrl that bill creation returned.")
    return value


@dataclass(frozen=True, slots=True)
class CreateParams:
    """The parameters of ``GET /create`` (API doc, "Выставление счета через платежную форму").

    Attributes:
        public_key: ``publicKey``: identifies the merchant.
        bill_id: ``billId``; ``None`` lets the mock generate one (as the form did).
        amount: ``amount``; ``None`` makes the form ask the customer for it.
        customer: The bill's ``customer`` object from ``phone``, ``email`` and ``account`` (only those given).
        comment: ``comment``, at most 255 characters.
        custom_fields: ``customFields[<name>]`` values.
        lifetime: ``lifetime`` as an aware datetime (Moscow time).
        options: The ``payUrl`` options that go on to the form (``successUrl``, ``paySource``, ``embedded``...).
    """

    public_key: str
    bill_id: str | None = None
    amount: Decimal | None = None
    customer: Mapping[str, str] = field(default_factory=dict)
    comment: str | None = None
    custom_fields: Mapping[str, str] = field(default_factory=dict)
    lifetime: datetime | None = None
    options: FormOptions = field(default_factory=FormOptions)

    def fingerprint(self) -> str:
        """A digest of what the link says about the bill (not the form options), to tell the same link again.

        A form-created bill is opened again only by a link with the same fingerprint (issue 16: a public key must
        never reach a bill issued otherwise). ``successUrl``, ``paySource`` and the other form options may differ:
        they change the page, not the bill.
        """
        facts = {
            "publicKey": self.public_key,
            "billId": self.bill_id,
            "amount": None if self.amount is None else format_amount(self.amount),
            "customer": dict(self.customer),
            "comment": self.comment,
            "customFields": dict(sorted(self.custom_fields.items())),
            "lifetime": None if self.lifetime is None else self.lifetime.isoformat(),
        }
        return hashlib.sha256(json.dumps(facts, sort_keys=True).encode()).hexdigest()


def _parse_amount(value: str, *, name: str = "amount") -> Decimal:
    """Read the form's ``amount``: ``Number(6.2)``, greater than zero, at most two decimals.

    The doc says the amount is "rounded down to 2 decimals"; the mock refuses more decimals rather than guess
    which rounding the merchant meant (the API's create refuses them too): qiwi_bill's ``format_amount`` with
    ``strict=True`` is that rule.

    Raises:
        PageError: 400 naming the parameter.
    """
    text = value.strip()
    try:
        if not _AMOUNT_SPELLING_RE.fullmatch(text):
            raise InvalidFieldError(name, "not a number like 100 or 42.24 (digits and a dot)")
        return Decimal(format_amount(text, strict=True, field=name))
    except InvalidFieldError as error:
        raise _bad(
            f"{name} must be a number between {MIN_AMOUNT} and {MAX_AMOUNT} with at most 2 decimals "
            f"(a dot, like 42.24), got {value[:40]!r}: {error.reason}."
        ) from None


def parse_create_params(items: Sequence[tuple[str, str]]) -> CreateParams:
    """Validate the query of ``GET /create``.

    Args:
        items: The query parameters in order, repeated names included.

    Returns:
        The parameters, ready to create a bill.

    Raises:
        PageError: 400 naming the first invalid parameter.
    """
    params = single_values(items)
    for legacy, current in _LEGACY_NAMES.items():
        if legacy in params:
            raise _bad(f"{legacy!r} is the 2017 form's name; the v1 form takes {current!r}.")
    if "customFields" in params:
        # The Node SDK serialises an object as customFields=[object Object] (docs/sources.md, Official SDKs).
        raise _bad("customFields must be sent one field at a time: customFields[themeCode]=..., not customFields=...")
    public_key = params.get("publicKey", "").strip()
    if not public_key:
        raise _bad("publicKey is required: the merchant's public key from the key pair.")
    bill_id = params.get("billId") or None
    if bill_id is not None and (len(bill_id) > _MAX_BILL_ID or not _BILL_ID_RE.fullmatch(bill_id)):
        raise _bad(f"billId must be 1 to {_MAX_BILL_ID} characters of A-Z, a-z, 0-9, '_' and '-'.")
    amount = _parse_amount(params["amount"]) if params.get("amount") else None
    comment = params.get("comment") or None
    if comment is not None and len(comment) > _MAX_TEXT:
        raise _bad(f"comment is {len(comment)} characters long; at most {_MAX_TEXT} are allowed.")
    customer: dict[str, str] = {}
    for name in ("phone", "email", "account"):
        if value := params.get(name):
            if len(value) > _MAX_TEXT:
                raise _bad(f"{name} is longer than {_MAX_TEXT} characters.")
            customer[name] = value
    custom_fields: dict[str, str] = {}
    for name, value in params.items():
        if match := _CUSTOM_FIELD_RE.fullmatch(name):
            if len(value) > _MAX_TEXT:
                raise _bad(f"{name} is longer than {_MAX_TEXT} characters.")
            custom_fields[match[1]] = value
        elif name.startswith("customFields"):
            raise _bad(f"{name[:60]!r} is not a custom field; write customFields[<name>]=<value>.")
    lifetime = _lifetime(params["lifetime"]) if params.get("lifetime") else None
    options = parse_form_options({name: value for name, value in params.items() if name in _FORM_NAMES - {"lifetime"}})
    return CreateParams(
        public_key=public_key,
        bill_id=bill_id,
        amount=amount,
        customer=customer,
        comment=comment,
        custom_fields=custom_fields,
        lifetime=lifetime,
        options=options,
    )
