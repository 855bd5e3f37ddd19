"""The mock's payment pages: the hosted form behind ``payUrl``, the form-create flow and the Checkout Popup.

What a customer sees on ``oplata.qiwi.com``, reduced to what a merchant's integration test needs:

* ``GET /form/?invoice_uid=<uuid>`` (and ``/form?invoiceUid=<uuid>``): the bill with its payment methods and
  buttons to pay or decline. The documented ``payUrl`` options are honoured (API doc, "Возможности при открытии
  ссылки счета"): ``paySource``, ``allowedPaySources``, ``successUrl``, ``lifetime``; so are the bill's
  ``customFields.paySourcesFilter`` and ``themeCode``.
* ``GET /create?publicKey=...&amount=...``: the form-create flow (API doc, "Выставление счета через платежную
  форму"): issues the bill for the merchant owning the public key, or opens the one this same link issued, then
  shows the form. A bill issued any other way (the API, another link) is never opened by a public key.
* ``POST /form/pay`` and ``POST /form/decline``: the buttons, accepted only from the mock's own page. Paying goes
  through the service's pay path, so the signed notification goes out exactly as for ``/_mock/bills/{billId}/pay``.
* ``GET /popup/v1.js``: ``QiwiCheckout.createInvoice`` / ``openInvoice`` (API doc, "Checkout Popup").

This module holds the thin route handlers: read the query → parse (``pages_params``) → check (``pages_guard``) →
call the service (``pages_backend``, the only place that does) → render (``pages_views``, Jinja2 templates) → respond.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from pathlib import Path
from typing import Final
from urllib.parse import parse_qsl

from starlette.requests import Request
from starlette.responses import FileResponse, HTMLResponse, RedirectResponse, Response
from starlette.routing import BaseRoute, Route

from qiwi_bill_mock.models import Bill
from qiwi_bill_mock.pages_backend import PagesBackend, PagesContext
from qiwi_bill_mock.pages_guard import PAGE_HEADERS, PageGuard, frame_ancestor, page_headers
from qiwi_bill_mock.pages_params import (
    CreateParams,
    FormOptions,
    PageError,
    parse_create_params,
    parse_form_options,
    parse_invoice_uid,
    single_values,
    validate_success_url,
)
from qiwi_bill_mock.pages_views import (
    PaySourceChoice,
    choose_pay_sources,
    effective_status,
    render_amount_page,
    render_bill_page,
    render_error_page,
    render_final_page,
)

__all__ = [
    "PAGE_HEADERS",
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
_MAX_BODY: Final = 16 * 1024
_STATIC_FILES: Final[Mapping[str, str]] = {
    "qiwi-form.css": "text/css; charset=utf-8",
    "qiwi-form.js": "text/javascript; charset=utf-8",
}
_ASSET_HEADERS: Final[Mapping[str, str]] = {"Cache-Control": "no-cache", "X-Content-Type-Options": "nosniff"}


def _root(request: Request) -> str:
    return str(request.scope.get("root_path", "")).rstrip("/")


def _own_origins(request: Request, backend: PagesBackend) -> list[str]:
    """The origins the mock is reached at: as this request addressed it, and its configured public URL."""
    own = [f"{request.url.scheme}://{request.headers.get('host', '')}"]
    if public_url := backend.public_url():
        own.append(public_url)
    return own


def _ancestor(request: Request, backend: PagesBackend, query: Mapping[str, str]) -> str | None:
    """Who may frame the page answering this request (``None``: nobody); see ``pages_guard.frame_ancestor``."""
    return frame_ancestor(
        embedded=query.get("embedded") == "true",
        frame_origin=query.get("frameOrigin"),
        success_url=query.get("successUrl"),
        referer=request.headers.get("referer"),
        own_origins=_own_origins(request, backend),
    )


def _html(text: str, status_code: int = 200, *, ancestor: str | None = None) -> HTMLResponse:
    return HTMLResponse(text, status_code=status_code, headers=page_headers(ancestor))


def _redirect(url: str) -> RedirectResponse:
    # 303: the browser follows a POST's answer with a GET, so reloading the result never pays twice.
    return RedirectResponse(url, status_code=303, headers=dict(PAGE_HEADERS))


async def _read_form_body(request: Request) -> dict[str, str]:
    # Read no more than the limit: `request.body()` would buffer an endless (chunked) body without bound.
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > _MAX_BODY:
            raise PageError(413, "Request too large", "The form sent more data than a payment form can.")
        chunks.append(chunk)
    try:
        return single_values(parse_qsl(b"".join(chunks).decode("utf-8"), keep_blank_values=True))
    except UnicodeDecodeError:
        raise PageError(400, "Invalid form data", "The form data is not UTF-8.") from None


def page_routes(ctx: PagesContext) -> list[BaseRoute]:
    """The routes of the payment pages, for the mock's Starlette app.

    Args:
        ctx: The mock's app context; only ``ctx.service`` is used (looked up on every request, so a context whose
            service is replaced, e.g. by a reset, keeps working).

    Returns:
        ``/form``, ``/form/``, ``/form/pay``, ``/form/decline``, ``/create``, ``/popup/v1.js`` and
        ``/static/{name}``.
    """
    backend = PagesBackend(ctx)
    guard = PageGuard()

    def guarded(handler: Callable[[Request], Awaitable[Response]]) -> Callable[[Request], Awaitable[Response]]:
        async def endpoint(request: Request) -> Response:
            try:
                return await handler(request)
            except PageError as error:
                query = request.query_params
                ancestor = _ancestor(request, backend, query)
                embedded = query.get("embedded") == "true"
                text = render_error_page(error, root=_root(request), embedded=embedded, parent_origin=ancestor)
                return _html(text, error.status_code, ancestor=ancestor)

        return endpoint

    def read_options(request: Request, query: Mapping[str, str]) -> FormOptions:
        # The options, with the origin allowed to frame an embedded page fixed, so the page's links carry it on.
        options = parse_form_options(query)
        ancestor = _ancestor(request, backend, query)
        return options.framed_by(ancestor) if ancestor is not None else options

    def bill_page(bill: Bill, options: FormOptions, root: str) -> Response:
        status, text = render_bill_page(
            bill, options, now=backend.now(bill.site_id), root=root, token=guard.token(bill.invoice_uid)
        )
        return _html(text, status, ancestor=options.frame_origin)

    def refuse_unless_waiting(bill: Bill, options: FormOptions, root: str, action: str) -> Response | None:
        status = effective_status(bill, options, backend.now(bill.site_id))
        if status == "WAITING":
            return None
        note = f"Nothing was done: this bill is {status.lower()} and cannot be {action}."
        text = render_final_page(bill, options, status=status, root=root, note=note)
        return _html(text, 409, ancestor=options.frame_origin)

    def back_to_the_form(bill: Bill, options: FormOptions, root: str) -> Response:
        return _redirect(f"{root}/form/?{options.query(bill.invoice_uid)}")

    async def read_action(request: Request) -> tuple[Bill, FormOptions, dict[str, str]]:
        # What Pay and Decline share: the bill, its options, the form fields, and the check that the request came
        # from the bill's own page on the mock's origin.
        query = single_values(request.query_params.multi_items())
        options = read_options(request, query)
        bill = backend.find(parse_invoice_uid(query))
        form = await _read_form_body(request)
        guard.check_action(
            invoice_uid=bill.invoice_uid,
            token=form.get("token"),
            headers=request.headers,
            own_origins=_own_origins(request, backend),
        )
        return bill, options, form

    async def form_page(request: Request) -> Response:
        query = single_values(request.query_params.multi_items())
        invoice_uid = parse_invoice_uid(query)
        options = read_options(request, query)
        return bill_page(backend.find(invoice_uid), options, _root(request))

    async def pay(request: Request) -> Response:
        bill, options, form = await read_action(request)
        root = _root(request)
        if refused := refuse_unless_waiting(bill, options, root, "paid"):
            return refused
        choice = choose_pay_sources(bill.custom_fields, options)
        pay_source = form.get("paySource") or choice.selected
        if pay_source not in choice.offered:
            raise PageError(
                400, "Payment method not available", f"paySource {pay_source!r} is not offered on this bill."
            )
        if not backend.pay(bill, pay_source):
            return refuse_unless_waiting(backend.find(bill.invoice_uid), options, root, "paid") or back_to_the_form(
                bill, options, root
            )
        if options.success_url and not options.embedded:
            return _redirect(options.success_url)
        return back_to_the_form(bill, options, root)

    async def decline(request: Request) -> Response:
        bill, options, _ = await read_action(request)
        root = _root(request)
        if refused := refuse_unless_waiting(bill, options, root, "declined"):
            return refused
        backend.decline(bill)  # if it was paid or expired meanwhile, the form below shows which
        return back_to_the_form(bill, options, root)

    async def button_url(request: Request) -> Response:
        # A GET of a button's URL (a bookmark, a reload after the browser dropped the POST): show the form instead
        # of a bare 405; nothing is paid or declined by a GET.
        query = single_values(request.query_params.multi_items())
        options = read_options(request, query)
        return _redirect(f"{_root(request)}/form/?{options.query(parse_invoice_uid(query))}")

    async def create(request: Request) -> Response:
        items = request.query_params.multi_items()
        params = parse_create_params(items)
        root = _root(request)
        site_id = backend.merchant_site(params.public_key)
        ancestor = _ancestor(request, backend, dict(items))
        options = params.options.framed_by(ancestor) if ancestor is not None else params.options
        if params.amount is None:
            # Asked whether or not the billId exists: the page reveals nothing about other bills.
            hidden = [(name, value) for name, value in items if name != "frameOrigin"]
            if ancestor is not None:
                hidden.append(("frameOrigin", ancestor))
            text = render_amount_page(hidden, root=root, embedded=options.embedded, parent_origin=ancestor)
            return _html(text, ancestor=ancestor)
        bill = backend.issue(site_id, params)
        return back_to_the_form(bill, options, root)

    async def popup_script(_: Request) -> Response:
        return FileResponse(
            _STATIC_DIR / "popup-v1.js", media_type="text/javascript; charset=utf-8", headers=dict(_ASSET_HEADERS)
        )

    async def static(request: Request) -> Response:
        name = request.path_params["name"]
        if name not in _STATIC_FILES:
            return _html(render_error_page(PageError(404, "Not found", "No such file."), root=_root(request)), 404)
        return FileResponse(_STATIC_DIR / name, media_type=_STATIC_FILES[name], headers=dict(_ASSET_HEADERS))

    return [
        Route("/form", guarded(form_page), methods=["GET"]),
        Route("/form/", guarded(form_page), methods=["GET"]),
        Route("/form/pay", guarded(pay), methods=["POST"]),
        Route("/form/decline", guarded(decline), methods=["POST"]),
        Route("/form/pay", guarded(button_url), methods=["GET"]),
        Route("/form/decline", guarded(button_url), methods=["GET"]),
        Route("/create", guarded(create), methods=["GET"]),
        Route("/popup/v1.js", popup_script, methods=["GET"]),
        Route("/static/{name}", static, methods=["GET"]),
    ]
