"""How the payment pages defend themselves: their response headers, who may frame them, who may press Pay.

* Every page sends a strict CSP (the mock's own files only, no inline code), ``Cache-Control: no-store`` and
  QIWI's ``Referrer-Policy``; a page is never framed (``frame-ancestors 'none'``, ``X-Frame-Options: DENY``),
  except a Checkout Popup page (``embedded=true``), which only the merchant's origin may frame (issue 16, item 8).
* ``POST /form/pay`` and ``/form/decline`` are accepted only from the mock's own page (issue 16, item 3): the
  request must carry the page's token, and a browser's ``Sec-Fetch-Site`` / ``Origin`` must say the mock's own
  origin, so a page on another origin that auto-submits a form cannot pay or decline a bill.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from collections.abc import Collection, Mapping
from typing import Final

from qiwi_bill_mock.pages_params import PageError, origin_of

__all__ = ["PAGE_HEADERS", "PageGuard", "frame_ancestor", "page_headers"]

_CSP: Final = "default-src 'none'; style-src 'self'; script-src 'self'; img-src 'self' data:; base-uri 'none'"

#: Sent with every page that nobody may frame. ``Referrer-Policy``: from 2021-06 QIWI's P2P docs warned that
#: payments opened without a ``Referer`` could get the wallet blocked and asked merchants to use
#: ``no-referrer-when-downgrade``; the mock's own pages follow the same policy so the successUrl redirect carries one.
#: The CSP allows only the mock's own static files: no inline script or style, so an escaping slip still could not
#: run code. ``frame-ancestors`` does not fall back to ``default-src`` (CSP 3), hence both it and the older
#: ``X-Frame-Options`` (for browsers without CSP 3): a page on another origin must not frame the one-click Pay form.
PAGE_HEADERS: Final[Mapping[str, str]] = {
    "Referrer-Policy": "no-referrer-when-downgrade",
    "Content-Security-Policy": f"{_CSP}; frame-ancestors 'none'",
    "X-Frame-Options": "DENY",
    "X-Content-Type-Options": "nosniff",
    "Cache-Control": "no-store",
}


def page_headers(ancestor: str | None = None) -> dict[str, str]:
    """The headers of a page: :data:`PAGE_HEADERS`, or for an embedded page framed by ``ancestor`` (an origin)
    the same with ``frame-ancestors <ancestor>`` and no ``X-Frame-Options`` (its ``ALLOW-FROM`` is obsolete)."""
    headers = dict(PAGE_HEADERS)
    if ancestor is not None:
        del headers["X-Frame-Options"]
        headers["Content-Security-Policy"] = f"{_CSP}; frame-ancestors {ancestor}"
    return headers


def _netloc(origin: str) -> str:
    # Compared without the scheme: behind a TLS-terminating proxy the mock sees http while the browser says https.
    return origin.partition("://")[2]


def _origin_or_none(url: str | None, name: str) -> str | None:
    if not url:
        return None
    try:
        return origin_of(url, name=name)
    except PageError:
        return None


def frame_ancestor(
    *,
    embedded: bool,
    frame_origin: str | None,
    success_url: str | None,
    referer: str | None,
    own_origins: Collection[str],
) -> str | None:
    """The one origin allowed to frame a page, or ``None`` when nobody may (then ``frame-ancestors 'none'``).

    Only an embedded page (``embedded=true``, the Checkout Popup's iframe) may be framed, and only by the merchant's
    origin as far as the mock can know it, in this order: ``frameOrigin`` (the mock's popup script adds the origin of
    the page it runs in, and the form's own links carry it on), the origin of ``successUrl`` (the merchant's site),
    then the ``Referer`` of the request that opened the iframe when it is another origin than the mock's (the
    popup's opener; under the default referrer policy browsers send at least its origin). The mock's settings name
    no shop origin, and QIWI's popup runs on any merchant's site, so this cannot stop a site that opens a bill's
    embedded link itself; it stops every other origin, including one that frames the merchant's page.

    Invalid values count as absent: this never raises.
    """
    if not embedded:
        return None
    for candidate, name in ((frame_origin, "frameOrigin"), (success_url, "successUrl")):
        if (origin := _origin_or_none(candidate, name)) is not None:
            return origin
    origin = _origin_or_none(referer, "Referer")
    if origin is not None and _netloc(origin) not in {_netloc(own) for own in own_origins}:
        return origin
    return None


class PageGuard:
    """The per-process secret of the page tokens, and the check that a Pay or Decline came from the mock's page.

    Args:
        secret: The HMAC key; a fresh random one by default. Tokens do not survive a restart of the mock: a page
            opened before one gets a 403 asking to reload it.
    """

    def __init__(self, secret: bytes | None = None) -> None:
        self._secret = secret if secret is not None else secrets.token_bytes(32)

    def token(self, invoice_uid: str) -> str:
        """The token of a bill's form page: HMAC-SHA256 of its ``invoice_uid``, sent back as a hidden field."""
        return hmac.new(self._secret, b"qiwi-bill-mock form\0" + invoice_uid.encode(), hashlib.sha256).hexdigest()

    def check_action(
        self,
        *,
        invoice_uid: str,
        token: str | None,
        headers: Mapping[str, str],
        own_origins: Collection[str],
    ) -> None:
        """Refuse a Pay or Decline that did not come from this bill's page on the mock's own origin.

        ``Sec-Fetch-Site`` (sent by every current browser) must be ``same-origin``; ``Origin``, when sent, must be
        the mock's own (the request's ``Host`` or the configured public URL; ``null``, sent by sandboxed or
        privacy-redirected documents, is refused). An HTTP client that sends neither header passes this part, but
        it must still carry the page's token, which only the mock's page has.

        Args:
            invoice_uid: The bill's form id.
            token: The ``token`` form field.
            headers: The request headers (case-insensitive lookup).
            own_origins: The mock's origins.

        Raises:
            PageError: 403 saying to use the mock's own page.
        """
        site = headers.get("sec-fetch-site")
        origin = headers.get("origin")
        own = {_netloc(own) for own in own_origins}
        foreign = site is not None and site != "same-origin"
        if origin is not None and not foreign:
            claimed = _origin_or_none(origin, "Origin")
            foreign = claimed is None or _netloc(claimed) not in own
        if foreign:
            raise PageError(
                403,
                "Request refused",
                "Pay and Decline work only on the mock's own payment page; this request came from another site.",
            )
        if token is None or not hmac.compare_digest(token.encode(), self.token(invoice_uid).encode()):
            raise PageError(
                403,
                "Request refused",
                "This form is outdated or did not come from the mock's payment page: open the payUrl again "
                "and press the button there.",
            )
