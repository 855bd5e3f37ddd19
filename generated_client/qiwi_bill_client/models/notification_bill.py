from __future__ import annotations

import datetime
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, TypeVar

from attrs import define as _attrs_define
from attrs import field as _attrs_field

from ..types import UNSET, Unset

if TYPE_CHECKING:
    from ..models.amount import Amount
    from ..models.bill_custom_fields import BillCustomFields
    from ..models.bill_customer import BillCustomer
    from ..models.bill_status import BillStatus


T = TypeVar("T", bound="NotificationBill")


@_attrs_define
class NotificationBill:
    """A bill as carried in notifications: the API's bill without `payUrl` (neither doc sample
    has one). Empty `customer`/`customFields` and an absent `comment` are left out.

        Attributes:
            site_id (str): The merchant's site id (always a string; numeric for Kassa, like `9hh4jb-00` for P2P).
            bill_id (str):
            amount (Amount): A sum of money as the service returns it. The reference document's samples show
                JSON numbers (`100`, `2.42`, `50.50`); every real capture since 2018 shows strings with
                two decimals (bill-payments-java-sdk#11, #27, #28; the Node SDK README capture), and the
                Node SDK changed its verifier to strings in 2020 (PR #37).
            status (BillStatus):
            creation_date_time (datetime.datetime): Server time of creation, Moscow offset with milliseconds
                (`2020-06-14T04:29:53.027+03:00`).
            expiration_date_time (datetime.datetime): The requested expiry, echoed at the precision it was sent with.
            customer (BillCustomer | Unset): Who the bill is for, as the service returns it. The service omits `customer`
                from responses when
                it is empty (aioqiwi#22, 2020); it is optional since 2022 (bill-payments-java-sdk PR #24).
            custom_fields (BillCustomFields | Unset): The bill's custom fields as the service returns them: the request's
                non-null values, echoed
                (`paySourcesFilter` as sent, node-qiwi-sdk live test); the service adds `CHECKOUT_REFERER` to
                paid bills (bill-payments-java-sdk#11).
            comment (str | Unset):
            recipient_phone_number (str | Unset): P2P only, since 2022 (bill-payments-java-sdk#28).
    """

    site_id: str
    bill_id: str
    amount: Amount
    status: BillStatus
    creation_date_time: datetime.datetime
    expiration_date_time: datetime.datetime
    customer: BillCustomer | Unset = UNSET
    custom_fields: BillCustomFields | Unset = UNSET
    comment: str | Unset = UNSET
    recipient_phone_number: str | Unset = UNSET
    additional_properties: dict[str, Any] = _attrs_field(init=False, factory=dict)

    def to_dict(self) -> dict[str, Any]:
        site_id = self.site_id

        bill_id = self.bill_id

        amount = self.amount.to_dict()

        status = self.status.to_dict()

        creation_date_time = self.creation_date_time.isoformat()

        expiration_date_time = self.expiration_date_time.isoformat()

        customer: dict[str, Any] | Unset = UNSET
        if not isinstance(self.customer, Unset):
            customer = self.customer.to_dict()

        custom_fields: dict[str, Any] | Unset = UNSET
        if not isinstance(self.custom_fields, Unset):
            custom_fields = self.custom_fields.to_dict()

        comment = self.comment

        recipient_phone_number = self.recipient_phone_number

        field_dict: dict[str, Any] = {}
        field_dict.update(self.additional_properties)
        field_dict.update(
            {
                "siteId": site_id,
                "billId": bill_id,
                "amount": amount,
                "status": status,
                "creationDateTime": creation_date_time,
                "expirationDateTime": expiration_date_time,
            }
        )
        if customer is not UNSET:
            field_dict["customer"] = customer
        if custom_fields is not UNSET:
            field_dict["customFields"] = custom_fields
        if comment is not UNSET:
            field_dict["comment"] = comment
        if recipient_phone_number is not UNSET:
            field_dict["recipientPhoneNumber"] = recipient_phone_number

        return field_dict

    @classmethod
    def from_dict(cls: type[T], src_dict: Mapping[str, Any]) -> T:
        from ..models.amount import Amount  # noqa: PLC0415
        from ..models.bill_custom_fields import BillCustomFields  # noqa: PLC0415
        from ..models.bill_customer import BillCustomer  # noqa: PLC0415
        from ..models.bill_status import BillStatus  # noqa: PLC0415

        d = dict(src_dict)
        site_id = d.pop("siteId")

        bill_id = d.pop("billId")

        amount = Amount.from_dict(d.pop("amount"))

        status = BillStatus.from_dict(d.pop("status"))

        creation_date_time = datetime.datetime.fromisoformat(d.pop("creationDateTime"))

        expiration_date_time = datetime.datetime.fromisoformat(d.pop("expirationDateTime"))

        _customer = d.pop("customer", UNSET)
        customer: BillCustomer | Unset
        if isinstance(_customer, Unset):
            customer = UNSET
        else:
            customer = BillCustomer.from_dict(_customer)

        _custom_fields = d.pop("customFields", UNSET)
        custom_fields: BillCustomFields | Unset
        if isinstance(_custom_fields, Unset):
            custom_fields = UNSET
        else:
            custom_fields = BillCustomFields.from_dict(_custom_fields)

        comment = d.pop("comment", UNSET)

        recipient_phone_number = d.pop("recipientPhoneNumber", UNSET)

        notification_bill = cls(
            site_id=site_id,
            bill_id=bill_id,
            amount=amount,
            status=status,
            creation_date_time=creation_date_time,
            expiration_date_time=expiration_date_time,
            customer=customer,
            custom_fields=custom_fields,
            comment=comment,
            recipient_phone_number=recipient_phone_number,
        )

        notification_bill.additional_properties = d
        return notification_bill

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
