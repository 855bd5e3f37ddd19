from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, TypeVar

from attrs import define as _attrs_define
from attrs import field as _attrs_field

if TYPE_CHECKING:
    from ..models.notification_bill import NotificationBill


T = TypeVar("T", bound="BillNotification")


@_attrs_define
class BillNotification:
    """The notification body QIWI POSTs to the merchant.

    Attributes:
        bill (NotificationBill): A bill as carried in notifications: the API's bill without `payUrl` (neither doc sample
            has one). Empty `customer`/`customFields` and an absent `comment` are left out.
        version (str): `"1"` in both the Kassa and P2P docs (the SDK test fixtures use `"3"`; it is not signed).
    """

    bill: NotificationBill
    version: str
    additional_properties: dict[str, Any] = _attrs_field(init=False, factory=dict)

    def to_dict(self) -> dict[str, Any]:
        bill = self.bill.to_dict()

        version = self.version

        field_dict: dict[str, Any] = {}
        field_dict.update(self.additional_properties)
        field_dict.update(
            {
                "bill": bill,
                "version": version,
            }
        )

        return field_dict

    @classmethod
    def from_dict(cls: type[T], src_dict: Mapping[str, Any]) -> T:
        from ..models.notification_bill import NotificationBill  # noqa: PLC0415

        d = dict(src_dict)
        bill = NotificationBill.from_dict(d.pop("bill"))

        version = d.pop("version")

        bill_notification = cls(
            bill=bill,
            version=version,
        )

        bill_notification.additional_properties = d
        return bill_notification

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
