from __future__ import annotations

import datetime
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, TypeVar, cast

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
    """Body of `PUT /partner/bill/v1/bills/{billId}`. Unknown fields are ignored. An optional member
    sent as `null` is the same as one left out (what the Java and .NET SDKs send); a required one
    sent as `null` is refused like a missing one (400 `validation.error`, "must not be null").

        Attributes:
            amount (AmountRequest): A sum of money in a request. `value` is what real clients send: a string with up to two
                decimals (the Node, PHP, Java and .NET SDKs send `"10.00"`) or a JSON number (the docs' curl samples,
                aioqiwi). It must be more than 0 and at most 999999.99 ("Number(6.2)").
                A JSON number with more than two decimals is rounded down to two, as the reference
                document says ("округленная в меньшую сторону до 2 десятичных знаков"); hence the numeric
                `minimum` is 0.01. No `multipleOf` on purpose: Python validators reject 40.91 as not a
                multiple of 0.01 (python-jsonschema #648), and schemathesis would report false failures.
            expiration_date_time (datetime.datetime): Until when the bill can be paid; ISO 8601 **with an offset** (the
                service answered 400
                without one, bill-payments-php-sdk#6). Fractional seconds are accepted. It must lie in
                the future (inferred: nothing public says what a past expiry got; docs/sources.md,
                Decisions). The reference table's `ГГГГ-ММ-ДДTччмм+\\-чч:мм` is a typo for
                `YYYY-MM-DDThh:mm:ss±hh:mm`.
            comment (None | str | Unset):
            customer (Customer | None | Unset): Who the bill is for; `null` (the Java SDK's unset customer) means absent.
            custom_fields (CustomFields | None | Unset): Free-form string values; `null` means absent.
    """

    amount: AmountRequest
    expiration_date_time: datetime.datetime
    comment: None | str | Unset = UNSET
    customer: Customer | None | Unset = UNSET
    custom_fields: CustomFields | None | Unset = UNSET
    additional_properties: dict[str, Any] = _attrs_field(init=False, factory=dict)

    def to_dict(self) -> dict[str, Any]:
        from ..models.custom_fields import CustomFields  # noqa: PLC0415
        from ..models.customer import Customer  # noqa: PLC0415

        amount = self.amount.to_dict()

        expiration_date_time = self.expiration_date_time.isoformat()

        comment: None | str | Unset
        if isinstance(self.comment, Unset):
            comment = UNSET
        else:
            comment = self.comment

        customer: dict[str, Any] | None | Unset
        if isinstance(self.customer, Unset):
            customer = UNSET
        elif isinstance(self.customer, Customer):
            customer = self.customer.to_dict()
        else:
            customer = self.customer

        custom_fields: dict[str, Any] | None | Unset
        if isinstance(self.custom_fields, Unset):
            custom_fields = UNSET
        elif isinstance(self.custom_fields, CustomFields):
            custom_fields = self.custom_fields.to_dict()
        else:
            custom_fields = self.custom_fields

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

        def _parse_comment(data: object) -> None | str | Unset:
            if data is None:
                return data
            if isinstance(data, Unset):
                return data
            return cast(None | str | Unset, data)

        comment = _parse_comment(d.pop("comment", UNSET))

        def _parse_customer(data: object) -> Customer | None | Unset:
            if data is None:
                return data
            if isinstance(data, Unset):
                return data
            try:
                if not isinstance(data, dict):
                    raise TypeError()
                customer_type_0 = Customer.from_dict(data)

                return customer_type_0
            except (TypeError, ValueError, AttributeError, KeyError):
                pass
            return cast(Customer | None | Unset, data)

        customer = _parse_customer(d.pop("customer", UNSET))

        def _parse_custom_fields(data: object) -> CustomFields | None | Unset:
            if data is None:
                return data
            if isinstance(data, Unset):
                return data
            try:
                if not isinstance(data, dict):
                    raise TypeError()
                custom_fields_type_0 = CustomFields.from_dict(data)

                return custom_fields_type_0
            except (TypeError, ValueError, AttributeError, KeyError):
                pass
            return cast(CustomFields | None | Unset, data)

        custom_fields = _parse_custom_fields(d.pop("customFields", UNSET))

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
