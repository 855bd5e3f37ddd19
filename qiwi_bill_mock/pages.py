"""The mock's payment pages: the hosted form behind ``payUrl``, the form-create flow and the Checkout Popup.

What a customer sees on ``oplata.qiwi.com``, reduced to what a merchant's integration test needs:

* ``GET /form/?invoice_uid=<uuid>`` (and ``/form?invoiceUid=<uuid>``): the bill with its payment methods and
  buttons to pay or decline. The documented ``payUrl`` options are honoured (API doc, "Возможности при открытии
  ссылки счета"): ``paySource``, ``allowedPaySources``, ``successUrl``, ``lifetime``; so are the bill's
  ``customFields.paySourcesFilter`` and ``themeCode``.
* ``GET /create?publicKey=...&amount=...``: the form-create flow (API doc, "Выставление счета через платежную
  форму"): issues the bill for the merchant owning the public key, or opens the existing one, then shows the form.
* ``POST /form/pay`` and ``POST /form/decline``: the buttons. Paying goes through the store's pay path, so the
  signed notification goes out exactly as for ``/_mock/bills/{billId}/pay``.
* ``GET /popup/v1.js``: ``QiwiCheckout.createInvoice`` / ``openInvoice`` (API doc, "Checkout Popup").

Every page is plain HTML with POST buttons (no JavaScript needed, except for the popup), escapes every value the
caller supplied, loads nothing from outside the mock and sends ``Referrer-Policy: no-referrer-when-downgrade``.
"""

from __future__ import annotations

import hashlib
import html
import re
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Final, Literal, Protocol
from urllib.parse import parse_qsl, urlencode, urlsplit

from starlette.requests import Request
from starlette.responses import FileResponse, HTMLResponse, RedirectResponse, Response
from starlette.routing import BaseRoute, Route

from qiwi_bill import MAX_AMOUNT, MOSCOW_TZ, InvalidFieldError, format_amount, generate_bill_id, parse_lifetime
from qiwi_bill_mock.store import Bill, BillConflict, BillDraft, DraftInvalid, Store, WrongBillStatus
from qiwi_bill_mock.wire import format_expiration, from_micros

__all__ = [
    "PAGE_HEADERS",
    "PAY_SOURCES",
    "BillView",
    "CreateParams",
    "FormOptions",
    "PageError",
    "PagesContext",
    "PaySourceChoice",
    "choose_pay_sources",
    "effective_status",
    "page_routes",
    "parse_create_params",
    "parse_form_options",
    "parse_invoice_uid",
    "render_amount_page",
    "render_bill_page",
    "render_error_page",
    "render_final_page",
    "validate_success_url",
]

_STATIC_DIR: Final = Path(__file__).parent / "static"

#: The payment methods of the Kassa form, in the order the form lists them (API doc, ``paySource`` table).
#: P2P dropped ``sovest`` in 2020-10; the mock keeps the Kassa list, a superset.
PAY_SOURCES: Final[Mapping[str, str]] = {
    "qw": "QIWI Wallet",
    "card": "Bank card",
    "mobile": "Mobile phone balance",
    "sovest": "Sovest card",
}

#: Sent with every page. ``Referrer-Policy``: from 2021-06 QIWI's P2P docs warned that payments opened without a
#: ``Referer`` could get the wallet blocked and asked merchants to use ``no-referrer-when-downgrade``; the mock's
#: own pages follow the same policy so the successUrl redirect carries one. The CSP allows only the mock's own
#: static files: no inline script or style, so an escaping slip still could not run code.
PAGE_HEADERS: Final[Mapping[str, str]] = {
    "Referrer-Policy": "no-referrer-when-downgrade",
    "Content-Security-Policy": (
        "default-src 'none'; style-src 'self'; script-src 'self'; img-src 'self' data:; base-uri 'none'"
    ),
    "X-Content-Type-Options": "nosniff",
    "Cache-Control": "no-store",
}

_MAX_TEXT: Final = 255  # comment and every customFields value: String(255) in the API doc
_MAX_BILL_ID: Final = 200  # billId: String(200)
_MAX_URL: Final = 2048
_BILL_ID_RE: Final = re.compile(r"[A-Za-z0-9_-]+")
_AMOUNT_RE: Final = re.compile(r"(?:0|[1-9][0-9]{0,5})(?:\.[0-9]{1,2})?")
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
# payUrl options, which the mock also accepts on /create because it redirects to the form with them.
_FORM_NAMES: Final = frozenset({"paySource", "allowedPaySources", "successUrl", "lifetime", "embedded", "billref"})

BillStatus = Literal["WAITING", "PAID", "REJECTED", "EXPIRED"]


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


# --------------------------------------------------------------------------------------------------------------
# Parsing query parameters
# --------------------------------------------------------------------------------------------------------------


def _single(items: Sequence[tuple[str, str]]) -> dict[str, str]:
    """Map names to values, refusing a parameter given twice (which value the real form took is unknown)."""
    seen: dict[str, str] = {}
    for name, value in items:
        if name in seen:
            raise _bad(f"The parameter {name!r} is given more than once; give it once.")
        seen[name] = value
    return seen


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
    if len(value) > _MAX_URL:
        raise _bad(f"{name} is longer than {_MAX_URL} characters.")
    if any(ord(char) < 0x21 or ord(char) == 0x7F for char in value):
        raise _bad(f"{name} contains whitespace or control characters; URL-encode it.")
    try:
        parts = urlsplit(value)
    except ValueError:
        raise _bad(f"{name} is not a valid URL.") from None
    if parts.scheme.lower() not in ("http", "https") or not parts.hostname:
        raise _bad(f"{name} must be an absolute http:// or https:// URL of the merchant's site; this one is refused.")
    return value


def _lifetime(value: str, *, name: str = "lifetime") -> datetime:
    try:
        return parse_lifetime(value, field=name)
    except InvalidFieldError:
        # A colon (2021-05-01T14:47) was silently ignored by the real form, which then offered a month
        # (bill-payments-php-sdk#20); the mock says so instead of hiding the bug.
        hint = (
            " Write it without a colon." if re.fullmatch(r"[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}", value) else ""
        )
        raise _bad(
            f"{name} must be YYYY-MM-DDTHHmm in Moscow time, e.g. 2020-12-01T0509; got {value[:40]!r}.{hint}"
        ) from None


def _pay_source_list(value: str) -> tuple[tuple[str, ...], tuple[str, ...]]:
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
        notes: What the mock ignored, shown on the page so a tester sees it.
    """

    pay_source: str | None = None
    allowed_pay_sources: tuple[str, ...] | None = None
    success_url: str | None = None
    lifetime: datetime | None = None
    embedded: bool = False
    notes: tuple[str, ...] = ()
    raw: tuple[tuple[str, str], ...] = field(default=(), repr=False)

    def query(self, invoice_uid: str) -> str:
        """The form's query string for this bill with the same options, for links and redirects."""
        return urlencode([("invoice_uid", invoice_uid), *self.raw])


def parse_form_options(params: Mapping[str, str]) -> FormOptions:
    """Read the ``payUrl`` options from query parameters (other names are ignored).

    An unknown ``paySource`` is not an error: the doc says the form then picks the recommended method. Unknown
    names in ``allowedPaySources`` are dropped the same way; both are listed in :attr:`FormOptions.notes`.

    Raises:
        PageError: 400 for a refused ``successUrl`` or a malformed ``lifetime``.
    """
    notes: list[str] = []
    raw: list[tuple[str, str]] = []
    pay_source = params.get("paySource")
    if pay_source is not None:
        raw.append(("paySource", pay_source))
        if pay_source not in PAY_SOURCES:
            notes.append(f"paySource {pay_source!r} is not one of {', '.join(PAY_SOURCES)}; ignored.")
            pay_source = None
    allowed: tuple[str, ...] | None = None
    if (allowed_text := params.get("allowedPaySources")) is not None:
        raw.append(("allowedPaySources", allowed_text))
        allowed, unknown = _pay_source_list(allowed_text)
        if unknown:
            notes.append(f"allowedPaySources: unknown {', '.join(repr(name) for name in unknown)} ignored.")
    success_url = params.get("successUrl")
    if success_url is not None:
        success_url = validate_success_url(success_url)
        raw.append(("successUrl", success_url))
    lifetime = None
    if (lifetime_text := params.get("lifetime")) is not None:
        lifetime = _lifetime(lifetime_text)
        raw.append(("lifetime", lifetime_text))
    embedded = params.get("embedded") == "true"
    if embedded:
        raw.append(("embedded", "true"))
    return FormOptions(
        pay_source=pay_source,
        allowed_pay_sources=allowed,
        success_url=success_url,
        lifetime=lifetime,
        embedded=embedded,
        notes=tuple(notes),
        raw=tuple(raw),
    )


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
        phone: ``phone`` (customer).
        email: ``email`` (customer).
        account: ``account`` (customer).
        comment: ``comment``, at most 255 characters.
        custom_fields: ``customFields[<name>]`` values.
        lifetime: ``lifetime`` as an aware datetime (Moscow time).
        options: The ``payUrl`` options that go on to the form (``successUrl``, ``paySource``, ``embedded``...).
    """

    public_key: str
    bill_id: str | None = None
    amount: Decimal | None = None
    phone: str | None = None
    email: str | None = None
    account: str | None = None
    comment: str | None = None
    custom_fields: Mapping[str, str] = field(default_factory=dict)
    lifetime: datetime | None = None
    options: FormOptions = field(default_factory=FormOptions)

    @property
    def customer(self) -> dict[str, str]:
        """The bill's ``customer`` object (only the fields given)."""
        pairs = (("phone", self.phone), ("email", self.email), ("account", self.account))
        return {name: value for name, value in pairs if value}


def _parse_amount(value: str, *, name: str = "amount") -> Decimal:
    """Read the form's ``amount``: ``Number(6.2)``, greater than zero, at most two decimals.

    The doc says the amount is "rounded down to 2 decimals"; the mock refuses more decimals rather than guess
    which rounding the merchant meant (the API's create refuses them too).

    Raises:
        PageError: 400 naming the parameter.
    """
    text = value.strip()
    if not _AMOUNT_RE.fullmatch(text):
        raise _bad(f"{name} must be a number like 100 or 42.24 (at most 2 decimals, a dot), got {value[:40]!r}.")
    amount = Decimal(text)
    if amount <= 0 or amount > MAX_AMOUNT:
        raise _bad(f"{name} must be between 0.01 and {MAX_AMOUNT}, got {value[:40]!r}.")
    return amount.quantize(Decimal("0.01"))


def parse_create_params(items: Sequence[tuple[str, str]]) -> CreateParams:
    """Validate the query of ``GET /create``.

    Args:
        items: The query parameters in order, repeated names included.

    Returns:
        The parameters, ready to create a bill.

    Raises:
        PageError: 400 naming the first invalid parameter.
    """
    params = _single(items)
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
    customer: dict[str, str | None] = {}
    for name in ("phone", "email", "account"):
        value = params.get(name) or None
        if value is not None and len(value) > _MAX_TEXT:
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
        phone=customer["phone"],
        email=customer["email"],
        account=customer["account"],
        comment=comment,
        custom_fields=custom_fields,
        lifetime=lifetime,
        options=options,
    )


# --------------------------------------------------------------------------------------------------------------
# What the page shows
# --------------------------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class BillView:
    """The parts of a bill the pages show; built from the store's bill so the HTML does not depend on its type.

    Attributes:
        invoice_uid: The id in the bill's ``payUrl``.
        site_id: The merchant's ``siteId``.
        bill_id: The merchant's ``billId``.
        amount: The amount.
        currency: ``RUB`` or ``KZT``.
        status: The bill's status as the store reports it now.
        expires_at: ``expirationDateTime`` (aware).
        comment: The bill's comment.
        custom_fields: The bill's ``customFields``.
    """

    invoice_uid: str
    site_id: str
    bill_id: str
    amount: Decimal
    currency: str
    status: BillStatus
    expires_at: datetime
    comment: str | None = None
    custom_fields: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class PaySourceChoice:
    """The payment methods a form offers and the one it preselects.

    Attributes:
        offered: The methods shown, in form order; never empty.
        selected: The preselected method, one of ``offered``.
        notes: Why some requested method is missing, for the page's notes panel.
    """

    offered: tuple[str, ...]
    selected: str
    notes: tuple[str, ...] = ()


def choose_pay_sources(custom_fields: Mapping[str, str], options: FormOptions) -> PaySourceChoice:
    """Apply ``customFields.paySourcesFilter`` (P2P, set at creation), then ``allowedPaySources`` (Kassa, on payUrl).

    Both narrow the list "if the methods are available" (API doc); a filter that would leave nothing is ignored
    rather than showing a form nobody can pay. ``paySource`` preselects a method if it is offered; otherwise the
    form picks the "recommended" one, which for the mock is the first offered (``qw`` when present).
    """
    offered = tuple(PAY_SOURCES)
    notes: list[str] = []
    if (filter_text := custom_fields.get("paySourcesFilter")) is not None:
        known, unknown = _pay_source_list(filter_text)
        if unknown:
            notes.append(f"customFields.paySourcesFilter: unknown {', '.join(repr(name) for name in unknown)} ignored.")
        if known:
            offered = known
        else:
            notes.append("customFields.paySourcesFilter names no known method; all methods are offered.")
    if options.allowed_pay_sources is not None:
        narrowed = tuple(source for source in offered if source in options.allowed_pay_sources)
        if narrowed:
            offered = narrowed
        else:
            notes.append("allowedPaySources leaves no available method; it is ignored.")
    selected = offered[0]
    if options.pay_source is not None:
        if options.pay_source in offered:
            selected = options.pay_source
        else:
            notes.append(f"paySource {options.pay_source!r} is not offered on this bill; {selected!r} is selected.")
    return PaySourceChoice(offered=offered, selected=selected, notes=(*options.notes, *notes))


def effective_status(bill: BillView, options: FormOptions, now: datetime) -> BillStatus:
    """The status the form acts on: the bill's, or ``EXPIRED`` once its expiry or the payUrl's ``lifetime`` passed.

    The form does not wait for the API: users saw it show "bill expired" while ``GET`` still answered ``WAITING``
    (node-qiwi-sdk#6, 2021-11), which the mock reproduces with ``--expiry-lag``. The doc says a bill past
    ``lifetime`` becomes ``EXPIRED``; for a ``lifetime`` appended to a payUrl (which anyone holding the link can
    edit) the mock only lets it shorten what the form accepts, never change the stored bill.
    """
    if bill.status != "WAITING":
        return bill.status
    deadline = min(bill.expires_at, options.lifetime) if options.lifetime else bill.expires_at
    return "EXPIRED" if now >= deadline else "WAITING"


# --------------------------------------------------------------------------------------------------------------
# HTML
# --------------------------------------------------------------------------------------------------------------


def _e(value: object) -> str:
    """Escape a value for HTML text and quoted attributes (every value a caller supplied goes through here)."""
    return html.escape(str(value), quote=True)


_CURRENCY_SIGNS: Final[Mapping[str, str]] = {"RUB": "₽", "KZT": "₸"}
_THEME_COUNT: Final = 6


def _money(amount: Decimal, currency: str) -> str:
    whole, _, cents = format_amount(amount).partition(".")
    grouped = f"{int(whole):,}".replace(",", "\u202f")  # a narrow no-break space, as Russian forms group digits
    return f"{grouped}.{cents}\u00a0{_CURRENCY_SIGNS.get(currency, currency)}"


def _when(value: datetime) -> str:
    return value.astimezone(MOSCOW_TZ).strftime("%d.%m.%Y %H:%M MSK")


def _theme_class(theme_code: str | None) -> str:
    # A real themeCode selects a style made in the merchant cabinet; the mock cannot know it, so it shows the code
    # and picks one of a few accent colours from its hash, so different codes visibly differ. Classes, not inline
    # styles: the CSP forbids inline styles.
    if not theme_code:
        return "theme-default"
    digest = hashlib.sha256(theme_code.encode()).digest()
    return f"theme-{digest[0] % _THEME_COUNT}"


_STATUS_LABELS: Final[Mapping[str, str]] = {
    "WAITING": "Waiting for payment",
    "PAID": "Paid",
    "REJECTED": "Rejected",
    "EXPIRED": "Expired",
}

# What the page inside the Checkout Popup reports to its parent (static/qiwi-form.js posts it).
_POPUP_EVENTS: Final[Mapping[str, str]] = {"PAID": "paid", "REJECTED": "failed", "EXPIRED": "failed"}


def _document(
    *,
    root: str,
    title: str,
    body: str,
    body_class: str,
    embedded: bool,
    popup_event: str | None = None,
) -> str:
    data = f' data-popup-event="{_e(popup_event)}"' if embedded and popup_event else ""
    script = f'\n<script src="{_e(root)}/static/qiwi-form.js"></script>' if embedded else ""
    embedded_class = " embedded" if embedded else ""
    return f"""<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="referrer" content="no-referrer-when-downgrade">
<title>{_e(title)} · QIWI mock</title>
<link rel="stylesheet" href="{_e(root)}/static/qiwi-form.css">
</head>
<body class="{_e(body_class)}{embedded_class}"{data}>
<main class="sheet">
<header class="brand"><span class="logo">QIWI</span><span class="badge">mock · no real money</span></header>
{body}
</main>
<footer class="foot">qiwi-bill-mock: a test double of oplata.qiwi.com. Nothing is charged.</footer>{script}
</body>
</html>
"""


def _summary(bill: BillView, status: BillStatus, *, expires_at: datetime) -> str:
    theme = bill.custom_fields.get("themeCode")
    rows = [
        ("Bill", bill.bill_id),
        ("Merchant site", bill.site_id),
        ("Status", _STATUS_LABELS[status]),
        ("Pay before", _when(expires_at)),
    ]
    if theme:
        rows.append(("Theme", f"{theme} (the merchant's style with this code would apply)"))
    cells = "\n".join(
        f'<div class="row"><dt>{_e(label)}</dt><dd data-field="{_e(label.lower().replace(" ", "-"))}">{_e(value)}</dd>'
        "</div>"
        for label, value in rows
    )
    comment = f'<p class="comment" data-field="comment">{_e(bill.comment)}</p>' if bill.comment else ""
    return f"""<section class="summary">
<p class="amount" data-field="amount">{_e(_money(bill.amount, bill.currency))}</p>
{comment}
<dl class="facts">
{cells}
</dl>
</section>"""


def _notes(notes: Iterable[str]) -> str:
    items = "".join(f"<li>{_e(note)}</li>" for note in notes)
    return f'<aside class="notes"><h2>Mock notes</h2><ul>{items}</ul></aside>' if items else ""


def render_bill_page(bill: BillView, options: FormOptions, *, now: datetime, root: str = "") -> tuple[int, str]:
    """The form for a bill: the payment methods and the pay / decline buttons, or the final page.

    Args:
        bill: The bill.
        options: The payUrl options.
        now: The mock's current time.
        root: The ASGI ``root_path`` the mock is mounted under.

    Returns:
        The HTTP status and the HTML.
    """
    status = effective_status(bill, options, now)
    if status != "WAITING":
        return 200, render_final_page(bill, options, status=status, root=root)
    choice = choose_pay_sources(bill.custom_fields, options)
    expires_at = min(bill.expires_at, options.lifetime) if options.lifetime else bill.expires_at
    query = _e(options.query(bill.invoice_uid))
    methods = "\n".join(
        f'<label class="method"><input type="radio" name="paySource" value="{_e(source)}"'
        f"{' checked' if source == choice.selected else ''}>"
        f'<span class="method-icon method-{_e(source)}" aria-hidden="true"></span>'
        f'<span class="method-name">{_e(PAY_SOURCES[source])}</span></label>'
        for source in choice.offered
    )
    body = f"""<h1>Payment</h1>
{_summary(bill, status, expires_at=expires_at)}
<form class="pay" method="post" action="{_e(root)}/form/pay?{query}">
<fieldset class="methods"><legend>Payment method</legend>
{methods}
</fieldset>
<button type="submit" class="primary" id="pay">Pay {_e(_money(bill.amount, bill.currency))}</button>
</form>
<form class="decline" method="post" action="{_e(root)}/form/decline?{query}">
<button type="submit" class="secondary" id="decline">Decline the bill</button>
</form>
{_notes(choice.notes)}"""
    theme = _theme_class(bill.custom_fields.get("themeCode"))
    return 200, _document(
        root=root, title="Payment", body=body, body_class=f"page-form {theme}", embedded=options.embedded
    )


_FINAL_TEXT: Final[Mapping[str, tuple[str, str]]] = {
    "PAID": ("Paid", "The bill is paid. The merchant has been notified; you can close this page."),
    "REJECTED": ("Bill rejected", "The bill was rejected and can no longer be paid."),
    "EXPIRED": ("Bill expired", "The time to pay this bill has run out; it can no longer be paid."),
}


def render_final_page(
    bill: BillView, options: FormOptions, *, status: BillStatus, root: str = "", note: str | None = None
) -> str:
    """The page of a bill that cannot be paid any more: paid, rejected or expired.

    Args:
        bill: The bill.
        options: The payUrl options (for ``embedded``).
        status: ``PAID``, ``REJECTED`` or ``EXPIRED``.
        root: The ASGI ``root_path``.
        note: An extra sentence, e.g. why a payment attempt was refused.
    """
    headline, text = _FINAL_TEXT[status]
    extra = f'<p class="refused">{_e(note)}</p>' if note else ""
    body = f"""<h1 class="status-{_e(status.lower())}">{_e(headline)}</h1>
<p class="lead">{_e(text)}</p>
{extra}
{_summary(bill, status, expires_at=bill.expires_at)}"""
    theme = _theme_class(bill.custom_fields.get("themeCode"))
    return _document(
        root=root,
        title=headline,
        body=body,
        body_class=f"page-final page-{status.lower()} {theme}",
        embedded=options.embedded,
        popup_event=_POPUP_EVENTS[status],
    )


def render_error_page(error: PageError, *, root: str = "", embedded: bool = False) -> str:
    """A clear error page for a 4xx: the headline and what to fix, never a traceback."""
    body = f"""<h1 class="status-error">{_e(error.title)}</h1>
<p class="lead" data-field="error">{_e(error.detail)}</p>
<p class="code">HTTP {error.status_code}</p>"""
    return _document(
        root=root,
        title=error.title,
        body=body,
        body_class="page-error theme-default",
        embedded=embedded,
        popup_event="failed",
    )


def render_amount_page(items: Sequence[tuple[str, str]], *, root: str = "", embedded: bool = False) -> str:
    """The form-create flow without ``amount`` (optional in the doc): ask the customer for it.

    A plain ``GET`` form back to ``/create`` carrying every other parameter as a hidden field.
    """
    hidden = "\n".join(
        f'<input type="hidden" name="{_e(name)}" value="{_e(value)}">' for name, value in items if name != "amount"
    )
    body = f"""<h1>Enter the amount</h1>
<form class="amount-entry" method="get" action="{_e(root)}/create">
{hidden}
<label for="amount">Amount, ₽</label>
<input id="amount" name="amount" inputmode="decimal" required pattern="[0-9]{{1,6}}([.][0-9]{{1,2}})?"
 placeholder="100.00" autocomplete="off">
<button type="submit" class="primary" id="continue">Continue</button>
</form>"""
    return _document(root=root, title="Amount", body=body, body_class="page-amount theme-default", embedded=embedded)


# --------------------------------------------------------------------------------------------------------------
# Routes
# --------------------------------------------------------------------------------------------------------------


class PagesContext(Protocol):
    """What the pages need from the mock's app context: its store (which carries the settings and the clock)."""

    @property
    def store(self) -> Store: ...


# The form issues RUB bills only (P2P docs: "the form creates bills in rubles only").
_FORM_CURRENCY: Final = "RUB"
# "A bill is automatically moved to a final status 45 days after issue" (API doc, lifetime): the default lifetime
# and the cap on a longer one.
_MAX_LIFETIME: Final = timedelta(days=45)
_MAX_BODY: Final = 16 * 1024
_STATIC_FILES: Final[Mapping[str, str]] = {
    "qiwi-form.css": "text/css; charset=utf-8",
    "qiwi-form.js": "text/javascript; charset=utf-8",
}
# The store's field names (the API's) spelled as the form's parameters, for error pages.
_FORM_FIELD_NAMES: Final[Mapping[str, str]] = {
    "amount.value": "amount",
    "amount.currency": "currency (the form issues RUB bills)",
    "expirationDateTime": "lifetime",
}


def _view(bill: Bill) -> BillView:
    status = bill.status if bill.status in _STATUS_LABELS else "WAITING"
    return BillView(
        invoice_uid=bill.invoice_uid,
        site_id=bill.site_id,
        bill_id=bill.bill_id,
        amount=bill.amount,
        currency=bill.currency,
        status=status,  # type: ignore[arg-type]  # checked against _STATUS_LABELS above
        expires_at=from_micros(bill.expires_us, MOSCOW_TZ),
        comment=bill.comment,
        custom_fields=dict(bill.custom_fields),
    )


def _html(text: str, status_code: int = 200) -> HTMLResponse:
    return HTMLResponse(text, status_code=status_code, headers=dict(PAGE_HEADERS))


def _redirect(url: str) -> RedirectResponse:
    # 303: the browser follows a POST's answer with a GET, so reloading the result never pays twice.
    return RedirectResponse(url, status_code=303, headers=dict(PAGE_HEADERS))


def _root(request: Request) -> str:
    return str(request.scope.get("root_path", "")).rstrip("/")


def _query(request: Request) -> dict[str, str]:
    return _single(request.query_params.multi_items())


def _form_field_name(name: str) -> str:
    """The store's field name (the API's) as the form's parameter: ``customFields.x`` → ``customFields[x]``."""
    if name.startswith("customFields."):
        return f"customFields[{name.removeprefix('customFields.')}]"
    return _FORM_FIELD_NAMES.get(name, name)


def _draft_error(error: DraftInvalid) -> PageError:
    problems = "; ".join(f"{_form_field_name(name)}: {', '.join(messages)}" for name, messages in error.cause.items())
    return _bad(f"The bill cannot be issued: {problems}.", title="Invalid bill parameters")


def page_routes(ctx: PagesContext) -> list[BaseRoute]:
    """The routes of the payment pages, for the mock's Starlette app.

    Args:
        ctx: The mock's app context; only ``ctx.store`` is used (looked up on every request, so a context whose
            store is replaced, e.g. by a reset, keeps working).

    Returns:
        ``/form``, ``/form/``, ``/form/pay``, ``/form/decline``, ``/create``, ``/popup/v1.js`` and
        ``/static/{name}``.
    """

    def guarded(
        handler: Callable[[Request], Awaitable[Response]],
    ) -> Callable[[Request], Awaitable[Response]]:
        async def endpoint(request: Request) -> Response:
            try:
                return await handler(request)
            except PageError as error:
                embedded = request.query_params.get("embedded") == "true"
                return _html(render_error_page(error, root=_root(request), embedded=embedded), error.status_code)

        return endpoint

    def find(invoice_uid: str) -> Bill:
        bill = ctx.store.get_bill_by_invoice_uid(invoice_uid)
        if bill is None:
            raise PageError(
                404, "Bill not found", "No bill has this invoice_uid. Open the payUrl that bill creation returned."
            )
        return bill

    async def form_page(request: Request) -> Response:
        params = _query(request)
        invoice_uid = parse_invoice_uid(params)
        options = parse_form_options(params)
        bill = find(invoice_uid)
        status, text = render_bill_page(_view(bill), options, now=ctx.store.now(bill.site_id), root=_root(request))
        return _html(text, status)

    async def read_form_body(request: Request) -> dict[str, str]:
        # Read no more than the limit: `request.body()` would buffer an endless (chunked) body without bound.
        chunks: list[bytes] = []
        size = 0
        async for chunk in request.stream():
            size += len(chunk)
            if size > _MAX_BODY:
                raise PageError(413, "Request too large", "The form sent more data than a payment form can.")
            chunks.append(chunk)
        body = b"".join(chunks)
        try:
            return _single(parse_qsl(body.decode("utf-8"), keep_blank_values=True))
        except UnicodeDecodeError:
            raise _bad("The form data is not UTF-8.", title="Invalid form data") from None

    def refuse_unless_waiting(bill: Bill, options: FormOptions, root: str, action: str) -> Response | None:
        view = _view(bill)
        status = effective_status(view, options, ctx.store.now(bill.site_id))
        if status == "WAITING":
            return None
        note = f"Nothing was done: this bill is {status.lower()} and cannot be {action}."
        return _html(render_final_page(view, options, status=status, root=root, note=note), 409)

    async def pay(request: Request) -> Response:
        params = _query(request)
        options = parse_form_options(params)
        bill = find(parse_invoice_uid(params))
        form = await read_form_body(request)
        root = _root(request)
        if refused := refuse_unless_waiting(bill, options, root, "paid"):
            return refused
        choice = choose_pay_sources(bill.custom_fields, options)
        pay_source = form.get("paySource") or choice.selected
        if pay_source not in choice.offered:
            raise _bad(f"paySource {pay_source!r} is not offered on this bill.", title="Payment method not available")
        try:
            # The one pay path, shared with /_mock/bills/{billId}/pay: it queues the signed notification.
            ctx.store.pay_bill(bill.site_id, bill.bill_id, pay_source=pay_source)
        except WrongBillStatus:
            return refuse_unless_waiting(find(bill.invoice_uid), options, root, "paid") or _redirect(
                f"{root}/form/?{options.query(bill.invoice_uid)}"
            )
        if options.success_url and not options.embedded:
            return _redirect(options.success_url)
        return _redirect(f"{root}/form/?{options.query(bill.invoice_uid)}")

    async def decline(request: Request) -> Response:
        params = _query(request)
        options = parse_form_options(params)
        bill = find(parse_invoice_uid(params))
        await read_form_body(request)
        root = _root(request)
        if refused := refuse_unless_waiting(bill, options, root, "declined"):
            return refused
        try:
            ctx.store.reject_bill(bill.site_id, bill.bill_id)
        except WrongBillStatus:
            pass  # paid or expired meanwhile: the form below shows which
        return _redirect(f"{root}/form/?{options.query(bill.invoice_uid)}")

    async def back_to_form(request: Request) -> Response:
        # A GET of a button's URL (a bookmark, a reload after the browser dropped the POST): show the form instead
        # of a bare 405; nothing is paid or declined by a GET.
        params = _query(request)
        options = parse_form_options(params)
        return _redirect(f"{_root(request)}/form/?{options.query(parse_invoice_uid(params))}")

    async def create(request: Request) -> Response:
        items = request.query_params.multi_items()
        params = parse_create_params(items)
        root = _root(request)
        store = ctx.store
        merchant = store.settings.merchant_by_public_key(params.public_key)
        if merchant is None:
            raise PageError(403, "Unknown publicKey", "No merchant of this mock has this publicKey.")
        existing = store.get_bill(merchant.site_id, params.bill_id) if params.bill_id else None
        if existing is None:
            if params.amount is None:
                return _html(render_amount_page(items, root=root, embedded=params.options.embedded))
            now = store.now(merchant.site_id)
            expiration = min(params.lifetime or now + _MAX_LIFETIME, now + _MAX_LIFETIME)
            expiration = expiration.astimezone(MOSCOW_TZ).replace(microsecond=0)
            draft = BillDraft(
                amount=params.amount,
                currency=_FORM_CURRENCY,
                expiration=expiration,
                expiration_text=format_expiration(expiration, with_fraction=False),
                comment=params.comment,
                customer=params.customer,
                custom_fields=dict(params.custom_fields),
            )
            try:
                existing, _ = store.create_bill(merchant.site_id, params.bill_id or generate_bill_id(), draft)
            except DraftInvalid as error:
                raise _draft_error(error) from None
            except BillConflict:
                raise PageError(
                    409, "Bill already exists", "A bill with this billId exists with other parameters."
                ) from None
        return _redirect(f"{root}/form/?{params.options.query(existing.invoice_uid)}")

    async def popup_script(_: Request) -> Response:
        return FileResponse(
            _STATIC_DIR / "popup-v1.js",
            media_type="text/javascript; charset=utf-8",
            headers={"Cache-Control": "no-cache", "X-Content-Type-Options": "nosniff"},
        )

    async def static(request: Request) -> Response:
        name = request.path_params["name"]
        if name not in _STATIC_FILES:
            return _html(render_error_page(PageError(404, "Not found", "No such file."), root=_root(request)), 404)
        return FileResponse(
            _STATIC_DIR / name,
            media_type=_STATIC_FILES[name],
            headers={"Cache-Control": "no-cache", "X-Content-Type-Options": "nosniff"},
        )

    return [
        Route("/form", guarded(form_page), methods=["GET"]),
        Route("/form/", guarded(form_page), methods=["GET"]),
        Route("/form/pay", guarded(pay), methods=["POST"]),
        Route("/form/decline", guarded(decline), methods=["POST"]),
        Route("/form/pay", guarded(back_to_form), methods=["GET"]),
        Route("/form/decline", guarded(back_to_form), methods=["GET"]),
        Route("/create", guarded(create), methods=["GET"]),
        Route("/popup/v1.js", popup_script, methods=["GET"]),
        Route("/static/{name}", static, methods=["GET"]),
    ]
