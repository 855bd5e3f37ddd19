"""What the payment pages show: the bill (the mock's own ``models.Bill``), the payment-method choice, and the HTML.

The HTML comes from the Jinja2 templates in ``templates/`` with autoescaping on, so every value a caller supplied
(comment, customFields, billId, the link's options) is escaped by the template engine, not by hand. No template has
inline script or style: the pages' CSP (``pages_guard.PAGE_HEADERS``) forbids both, so an escaping slip still could
not run code.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from pathlib import Path
from typing import Final, Literal, cast

from jinja2 import Environment, FileSystemLoader, StrictUndefined

from qiwi_bill import MOSCOW_TZ, PAY_SOURCES, format_amount
from qiwi_bill_mock.models import Bill
from qiwi_bill_mock.pages_params import FormOptions, PageError, pay_source_list
from qiwi_bill_mock.rules import FINAL_STATUSES

__all__ = [
    "PAY_SOURCE_LABELS",
    "BillStatus",
    "PaySourceChoice",
    "choose_pay_sources",
    "effective_status",
    "render_amount_page",
    "render_bill_page",
    "render_error_page",
    "render_final_page",
]

BillStatus = Literal["WAITING", "PAID", "REJECTED", "EXPIRED"]

#: What the form calls each payment method of ``qiwi_bill.PAY_SOURCES`` (API doc, ``paySource`` table), in the
#: order the form lists them. P2P dropped ``sovest`` in 2020-10; the mock keeps the Kassa list, a superset.
PAY_SOURCE_LABELS: Final[Mapping[str, str]] = {
    "qw": "QIWI Wallet",
    "card": "Bank card",
    "mobile": "Mobile phone balance",
    "sovest": "Sovest card",
}

_STATUS_LABELS: Final[Mapping[str, str]] = {
    "WAITING": "Waiting for payment",
    "PAID": "Paid",
    "REJECTED": "Rejected",
    "EXPIRED": "Expired",
}
_FINAL_TEXT: Final[Mapping[str, tuple[str, str]]] = {
    "PAID": ("Paid", "The bill is paid. The merchant has been notified; you can close this page."),
    "REJECTED": ("Bill rejected", "The bill was rejected and can no longer be paid."),
    "EXPIRED": ("Bill expired", "The time to pay this bill has run out; it can no longer be paid."),
}
# What the page inside the Checkout Popup reports to its parent (static/qiwi-form.js posts it).
_POPUP_EVENTS: Final[Mapping[str, str]] = {"PAID": "paid", "REJECTED": "failed", "EXPIRED": "failed"}
_CURRENCY_SIGNS: Final[Mapping[str, str]] = {"RUB": "₽", "KZT": "₸"}
_THEME_COUNT: Final = 6


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
    offered = PAY_SOURCES
    notes: list[str] = []
    if (filter_text := custom_fields.get("paySourcesFilter")) is not None:
        known, unknown = pay_source_list(filter_text)
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


def effective_status(bill: Bill, options: FormOptions, now: datetime) -> BillStatus:
    """The status the form acts on: the bill's, or ``EXPIRED`` once its expiry or the payUrl's ``lifetime`` passed.

    The form does not wait for the API: users saw it show "bill expired" while ``GET`` still answered ``WAITING``
    (node-qiwi-sdk#6, 2021-11), which the mock reproduces with ``--expiry-lag``. The doc says a bill past
    ``lifetime`` becomes ``EXPIRED``; for a ``lifetime`` appended to a payUrl (which anyone holding the link can
    edit) the mock only lets it shorten what the form accepts, never change the stored bill.
    """
    if bill.status in FINAL_STATUSES:
        return cast(BillStatus, bill.status)
    deadline = min(bill.expires, options.lifetime) if options.lifetime else bill.expires
    return "EXPIRED" if now >= deadline else "WAITING"


def _money(amount: Decimal, currency: str) -> str:
    whole, _, cents = format_amount(amount).partition(".")
    grouped = f"{int(whole):,}".replace(",", "\u202f")  # a narrow no-break space, as Russian forms group digits
    return f"{grouped}.{cents}\u00a0{_CURRENCY_SIGNS.get(currency, currency)}"


def _moscow(value: datetime) -> str:
    return value.astimezone(MOSCOW_TZ).strftime("%d.%m.%Y %H:%M MSK")


def _theme_class(theme_code: str | None) -> str:
    # A real themeCode selects a style made in the merchant cabinet; the mock cannot know it, so it shows the code
    # and picks one of a few accent colours from its hash, so different codes visibly differ. Classes, not inline
    # styles: the CSP forbids inline styles.
    if not theme_code:
        return "theme-default"
    digest = hashlib.sha256(theme_code.encode()).digest()
    return f"theme-{digest[0] % _THEME_COUNT}"


_TEMPLATES: Final = Environment(
    loader=FileSystemLoader(Path(__file__).parent / "templates"),
    autoescape=True,  # every page is HTML: escape every value, and .html is the only kind of template here
    undefined=StrictUndefined,  # a misspelt variable is an error in the tests, not an empty string on the page
    trim_blocks=True,
    lstrip_blocks=True,
    keep_trailing_newline=True,
)
_TEMPLATES.filters["money"] = _money
_TEMPLATES.filters["moscow"] = _moscow


def _page(name: str, **values: object) -> str:
    # Every page gets root, embedded and parent_origin from its caller; popup_event only the final and error pages.
    values.setdefault("popup_event", None)
    return _TEMPLATES.get_template(name).render(values)


def render_bill_page(
    bill: Bill, options: FormOptions, *, now: datetime, root: str = "", token: str = ""
) -> tuple[int, str]:
    """The form for a bill: the payment methods and the pay / decline buttons, or the final page.

    Args:
        bill: The bill.
        options: The payUrl options.
        now: The mock's current time.
        root: The ASGI ``root_path`` the mock is mounted under.
        token: The page token the Pay and Decline forms send back (``pages_guard.PageGuard.token``).

    Returns:
        The HTTP status and the HTML.
    """
    status = effective_status(bill, options, now)
    if status != "WAITING":
        return 200, render_final_page(bill, options, status=status, root=root)
    choice = choose_pay_sources(bill.custom_fields, options)
    return 200, _page(
        "form.html",
        root=root,
        embedded=options.embedded,
        parent_origin=options.frame_origin,
        title="Payment",
        body_class=f"page-form {_theme_class(bill.custom_fields.get('themeCode'))}",
        bill=bill,
        status_label=_STATUS_LABELS[status],
        expires_at=min(bill.expires, options.lifetime) if options.lifetime else bill.expires,
        choice=choice,
        labels=PAY_SOURCE_LABELS,
        query=options.query(bill.invoice_uid),
        token=token,
    )


def render_final_page(
    bill: Bill, options: FormOptions, *, status: BillStatus, root: str = "", note: str | None = None
) -> str:
    """The page of a bill that cannot be paid any more: paid, rejected or expired.

    Args:
        bill: The bill.
        options: The payUrl options (for ``embedded`` and the origin that frames it).
        status: ``PAID``, ``REJECTED`` or ``EXPIRED``.
        root: The ASGI ``root_path``.
        note: An extra sentence, e.g. why a payment attempt was refused.
    """
    headline, text = _FINAL_TEXT[status]
    return _page(
        "final.html",
        root=root,
        embedded=options.embedded,
        parent_origin=options.frame_origin,
        title=headline,
        body_class=f"page-final page-{status.lower()} {_theme_class(bill.custom_fields.get('themeCode'))}",
        popup_event=_POPUP_EVENTS[status],
        bill=bill,
        status=status,
        status_label=_STATUS_LABELS[status],
        headline=headline,
        text=text,
        note=note,
    )


def render_error_page(
    error: PageError, *, root: str = "", embedded: bool = False, parent_origin: str | None = None
) -> str:
    """A clear error page for a 4xx: the headline and what to fix, never a traceback.

    Inside the Checkout Popup (``embedded``) it reports ``failed`` to the popup, which rejects with
    ``PAYMENT_FAILED``.
    """
    return _page(
        "error.html",
        root=root,
        embedded=embedded,
        parent_origin=parent_origin,
        title=error.title,
        body_class="page-error theme-default",
        popup_event="failed",
        error=error,
    )


def render_amount_page(
    items: Sequence[tuple[str, str]], *, root: str = "", embedded: bool = False, parent_origin: str | None = None
) -> str:
    """The form-create flow without ``amount`` (optional in the doc): ask the customer for it.

    A plain ``GET`` form back to ``/create`` carrying every other parameter as a hidden field.
    """
    return _page(
        "amount.html",
        root=root,
        embedded=embedded,
        parent_origin=parent_origin,
        title="Amount",
        body_class="page-amount theme-default",
        hidden=[(name, value) for name, value in items if name != "amount"],
    )
