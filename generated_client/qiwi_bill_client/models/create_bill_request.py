from __future__ import annotations

import datetime
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, TypeVar

from attrs import define as _attrs_define
from attrs import field as _attrs_field

from ..types import UNSET, Unset

if TYPE_CHECKING:
    from ..models.amount_request import AmountRequest
    from ..models.custom_fields import CustomFields
    from ..models.customer import Customer


T = TypeVar("T", bound="CreateBillRequest")


@_attrs_define
class CreateBillRequest:
    """Body of `PUT /partner/bill/v1/bills/{billId}`. Unknown fields are ignored.

    Attributes:
        amount (AmountRequest): A sum of money in a request. `value` is what real clients send: a string with up to two
            decimals (Node, PHP, Java SDKs send `"10.00"`) or a JSON number (the docs' curl samples,
            aioqiwi). It must be more than 0 and at most 999999.99 ("Number(6.2)").
            A JSON number with more than two decimals is rounded down to two, as the reference
            document says ("округленная в меньшую сторону до 2 десятичных знаков"); hence the numeric
            `minimum` is 0.01. No `multipleOf` on purpose: Python validators reject 40.91 as not a
            multiple of 0.01 (python-jsonschema #648), and schemathesis would report false failures.
        expiration_date_time (datetime.datetime): Until when the bill can be paid; ISO 8601 **with an offset** (the
            service answered 400
            without one, bill-payments-php-sdk#6). Fractional seconds are accepted. It must lie in
            the future. The reference table's `ГГГГ-ММ-ДДTччмм+\\-чч:мм` is a typo for
            `YYYY-MM-DDThh:mm:ss±hh:mm`.
        comment (str | Unset):
        customer (Customer | Unset): Who the bill is for. The service omits `customer` from responses when it is empty
            (aioqiwi#22, 2020); it is optional since 2022 (bill-payments-java-sdk PR #24).
        custom_fields (CustomFields | Unset): Free-form string values, each String(255). Keys with meaning: `themeCode`
            (a form style
            from the merchant cabinet) and `paySourcesFilter` (comma-separated subset of `qw`, `card`,
            `mobile`: the payment methods the form offers). The official SDKs add
            `apiClient`/`apiClientVersion`; the service adds `CHECKOUT_REFERER` to paid bills.
    """

    amount: AmountRequest
    expiration_date_time: datetime.datetime
    comment: str | Unset = UNSET
    customer: Customer | Unset = UNSET
    custom_fields: CustomFields | Unset = UNSET
    additional_properties: dict[str, Any] = _attrs_field(init=False, factory=dict)

    def to_dict(self) -> dict[str, Any]:
        amount = self.amount.to_dict()

        expiration_date_time = self.expiration_date_time.isoformat()

        comment = self.comment

        customer: dict[str, Any] | Unset = UNSET
        if not isinstance(self.customer, Unset):
            customer = self.customer.to_dict()

        custom_fields: dict[str, Any] | Unset = UNSET
        if not isinstance(self.custom_fields, Unset):
            custom_fields = self.custom_fields.to_dict()

        field_dict: dict[str, Any] = {}
        field_dict.update(self.additional_properties)
        field_dict.update(
            {
                "amount": amount,
                "expirationDateTime": expiration_date_time,
            }
        )
        if comment is not UNSET:
            field_dict["comment"] = comment
        if customer is not UNSET:
            field_dict["customer"] = customer
        if custom_fields is not UNSET:
            field_dict["customFields"] = custom_fields

        return field_dict

    @classmethod
    def from_dict(cls: type[T], src_dict: Mapping[str, Any]) -> T:
        from ..models.amount_request import AmountRequest  # noqa: PLC0415
        from ..models.custom_fields import CustomFields  # noqa: PLC0415
        from ..models.customer import Customer  # noqa: PLC0415

        d = dict(src_dict)
        amount = AmountRequest.from_dict(d.pop("amount"))

        expiration_date_time = datetime.datetime.fromisoformat(d.pop("expirationDateTime"))

        comment = d.pop("comment", UNSET)

        _customer = d.pop("customer", UNSET)
        customer: Customer | Unset
        if isinstance(_customer, Unset):
            customer = UNSET
        else:
            customer = Customer.from_dict(_customer)

        _custom_fields = d.pop("customFields", UNSET)
        custom_fields: CustomFields | Unset
        if isinstance(_custom_fields, Unset):
            custom_fields = UNSET
        else:
            custom_fields = CustomFields.from_dict(_custom_fields)

        create_bill_request = cls(
            amount=amount,
            expiration_date_time=expiration_date_time,
            comment=comment,
            customer=customer,
            custom_fields=custom_fields,
        )

        create_bill_request.additional_properties = d
        return create_bill_request

    @property
    def additional_keys(self) -> list[str]:
        return list(self.additional_properties.keys())

    def __getitem__(self, key: str) -> Any:
        return self.additional_properties[key]

    def __setitem__(self, key: str, value: Any) -> None:
        self.additional_properties[key] = value

    def __delitem__(self, key: str) -> None:
        del self.additional_properties[key]

    def __contains__(self, key: str) -> bool:
        return key in self.additional_properties
