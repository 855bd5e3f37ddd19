"""The payment pages' one door to the mock's bills: every service call of the pages, and the one place where a
service refusal becomes a page error.

The pages read a bill by its ``invoice_uid``, issue one from a form-create link, pay and decline; nothing else of
the service is theirs. :class:`PagesBackend` also remembers which bills a form-create link issued, so that the same
link opens its bill again while a public key never reaches a bill issued with the secret key (issue 16, item 3).
"""

from __future__ import annotations

from collections import OrderedDict
from datetime import datetime, timedelta
from typing import Final, Protocol

from qiwi_bill import MOSCOW_TZ, format_datetime, generate_bill_id
from qiwi_bill_mock.errors import BillConflict, InvalidValues, MockError, WrongBillStatus
from qiwi_bill_mock.models import Bill, BillDraft
from qiwi_bill_mock.pages_params import CreateParams, PageError
from qiwi_bill_mock.service import BillService

__all__ = ["PagesBackend", "PagesContext"]

# The form issues RUB bills only (P2P docs: "the form creates bills in rubles only").
_FORM_CURRENCY: Final = "RUB"
# "A bill is automatically moved to a final status 45 days after issue" (API doc, lifetime): the default lifetime
# and the cap on a longer one.
_MAX_LIFETIME: Final = timedelta(days=45)
# How many form-created bills the backend remembers; the oldest are forgotten first (their links then get the
# "already exists" page: the failure is a refusal, never a bill shown to the wrong link).
_REMEMBERED_LINKS: Final = 100_000
# The store's field names (the API's) spelled as the form's parameters, for error pages.
_FORM_FIELD_NAMES: Final = {
    "amount.value": "amount",
    "amount.currency": "currency (the form issues RUB bills)",
    "expirationDateTime": "lifetime",
}


class PagesContext(Protocol):
    """What the pages need from the mock's app context: its service facade (which carries the settings and the
    merchants' clocks)."""

    @property
    def service(self) -> BillService: ...


def _form_field_name(name: str) -> str:
    """The store's field name (the API's) as the form's parameter: ``customFields.x`` → ``customFields[x]``."""
    if name.startswith("customFields."):
        return f"customFields[{name.removeprefix('customFields.')}]"
    return _FORM_FIELD_NAMES.get(name, name)


def _page_error(error: MockError) -> PageError:
    """The one mapping of a service refusal to the page the customer sees (always a 4xx)."""
    if isinstance(error, InvalidValues) and not isinstance(error, WrongBillStatus):
        problems = "; ".join(
            f"{_form_field_name(name)}: {', '.join(messages)}" for name, messages in error.cause.items()
        )
        return PageError(400, "Invalid bill parameters", f"The bill cannot be issued: {problems}.")
    if isinstance(error, BillConflict):
        return _already_exists()
    return PageError(409, "Request refused", "The bill cannot be changed in its current status.")


def _already_exists() -> PageError:
    # The same page whether the bill came from the API or from another link: the link learns nothing about it.
    return PageError(
        409,
        "Bill already exists",
        "A bill with this billId exists and was not issued by this link; open its payUrl instead.",
    )


class PagesBackend:
    """The pages' calls into the mock's service, in page terms (the model's :class:`Bill`, :class:`PageError`).

    Args:
        ctx: The mock's app context; ``ctx.service`` is looked up on every call, so a context whose service is replaced
            (a reset, a test swapping services) keeps working.
    """

    def __init__(self, ctx: PagesContext) -> None:
        self._ctx = ctx
        # (siteId, billId) → (invoice_uid, the link's fingerprint) of each bill a form-create link issued. Kept in
        # memory: the service has no place for it yet, so after a restart such a link is refused, not reopened.
        self._links: OrderedDict[tuple[str, str], tuple[str, str]] = OrderedDict()

    def now(self, site_id: str) -> datetime:
        """The merchant's current time on the mock (its clock may have been advanced)."""
        return self._ctx.service.now(site_id)

    def public_url(self) -> str | None:
        """The mock's configured public base URL, if any (``payUrl`` points there)."""
        return self._ctx.service.settings.public_url

    def find(self, invoice_uid: str) -> Bill:
        """The bill behind a ``payUrl``.

        Raises:
            PageError: 404 when no bill has this ``invoice_uid``.
        """
        bill = self._ctx.service.get_bill_by_invoice_uid(invoice_uid)
        if bill is None:
            raise PageError(
                404, "Bill not found", "No bill has this invoice_uid. Open the payUrl that bill creation returned."
            )
        return bill

    def merchant_site(self, public_key: str) -> str:
        """The ``siteId`` of the merchant owning a public key.

        Raises:
            PageError: 403 for a public key no merchant of this mock has.
        """
        merchant = self._ctx.service.merchant_by_public_key(public_key)
        if merchant is None:
            raise PageError(403, "Unknown publicKey", "No merchant of this mock has this publicKey.")
        return merchant.site_id

    def issue(self, site_id: str, params: CreateParams) -> Bill:
        """Issue the bill a form-create link describes, or open the one this same link issued before.

        Args:
            site_id: The merchant (from :meth:`merchant_site`).
            params: The link; ``params.amount`` must be set.

        Returns:
            The bill to show.

        Raises:
            PageError: 400 for parameters the service refuses; 409 when the ``billId`` exists but this link did not
                issue it (a bill made through the API, another link, or one issued before a restart).
        """
        assert params.amount is not None, "ask for the amount first"
        service = self._ctx.service
        now = service.now(site_id)
        expiration = min(params.lifetime or now + _MAX_LIFETIME, now + _MAX_LIFETIME)
        expiration = expiration.astimezone(MOSCOW_TZ).replace(microsecond=0)
        draft = BillDraft(
            amount=params.amount,
            currency=_FORM_CURRENCY,
            expiration=expiration,
            expiration_text=format_datetime(expiration),
            comment=params.comment,
            customer=params.customer,
            custom_fields=dict(params.custom_fields),
        )
        try:
            bill, created = service.create_bill(site_id, params.bill_id or generate_bill_id(), draft)
        except MockError as error:
            raise _page_error(error) from None
        key = (site_id, bill.bill_id)
        if created:
            if params.bill_id is not None:  # a generated billId is never asked for again
                self._links[key] = (bill.invoice_uid, params.fingerprint())
                if len(self._links) > _REMEMBERED_LINKS:
                    self._links.popitem(last=False)
        elif self._links.get(key) != (bill.invoice_uid, params.fingerprint()):
            raise _already_exists()
        return bill

    def pay(self, bill: Bill, pay_source: str) -> bool:
        """Pay a bill through the service's one pay path (shared with ``/_mock/bills/{billId}/pay``: it queues the
        signed notification). Returns ``False`` when the bill was no longer ``WAITING``."""
        return self._transition(bill, pay_source)

    def decline(self, bill: Bill) -> bool:
        """Reject a bill as its customer; ``False`` when it was no longer ``WAITING``."""
        return self._transition(bill, None)

    def _transition(self, bill: Bill, pay_source: str | None) -> bool:
        service = self._ctx.service
        try:
            if pay_source is None:
                service.reject_bill(bill.site_id, bill.bill_id)
            else:
                service.pay_bill(bill.site_id, bill.bill_id, pay_source=pay_source)
        except WrongBillStatus:
            return False  # paid, rejected or expired meanwhile: the caller shows which
        return True
