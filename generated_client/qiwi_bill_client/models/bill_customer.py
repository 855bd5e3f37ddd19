from __future__ import annotations

from collections.abc import Mapping
from typing import Any, TypeVar

from attrs import define as _attrs_define
from attrs import field as _attrs_field

from ..types import UNSET, Unset

T = TypeVar("T", bound="BillCustomer")


@_attrs_define
class BillCustomer:
    """Who the bill is for, as the service returns it. The service omits `customer` from responses when
    it is empty (aioqiwi#22, 2020); it is optional since 2022 (bill-payments-java-sdk PR #24).

        Attributes:
            phone (str | Unset): Phone in international format without `+`, e.g. `79123456789`.
            email (str | Unset):
            account (str | Unset):
    """

    phone: str | Unset = UNSET
    email: str | Unset = UNSET
    account: str | Unset = UNSET
    additional_properties: dict[str, Any] = _attrs_field(init=False, factory=dict)

    def to_dict(self) -> dict[str, Any]:
        phone = self.phone

        email = self.email

        account = self.account

        field_dict: dict[str, Any] = {}
        field_dict.update(self.additional_properties)
        field_dict.update({})
        if phone is not UNSET:
            field_dict["phone"] = phone
        if email is not UNSET:
            field_dict["email"] = email
        if account is not UNSET:
            field_dict["account"] = account

        return field_dict

    @classmethod
    def from_dict(cls: type[T], src_dict: Mapping[str, Any]) -> T:
        d = dict(src_dict)
        phone = d.pop("phone", UNSET)

        email = d.pop("email", UNSET)

        account = d.pop("account", UNSET)

        bill_customer = cls(
            phone=phone,
            email=email,
            account=account,
        )

        bill_customer.additional_properties = d
        return bill_customer

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
