from __future__ import annotations

from collections.abc import Mapping
from typing import Any, TypeVar

from attrs import define as _attrs_define
from attrs import field as _attrs_field

from ..types import UNSET, Unset

T = TypeVar("T", bound="BillCustomFields")


@_attrs_define
class BillCustomFields:
    """The bill's custom fields as the service returns them: the request's non-null values, echoed
    (`paySourcesFilter` as sent, node-qiwi-sdk live test); the service adds `CHECKOUT_REFERER` to
    paid bills (bill-payments-java-sdk#11).

        Attributes:
            theme_code (str | Unset):
            pay_sources_filter (str | Unset):
    """

    theme_code: str | Unset = UNSET
    pay_sources_filter: str | Unset = UNSET
    additional_properties: dict[str, str] = _attrs_field(init=False, factory=dict)

    def to_dict(self) -> dict[str, Any]:
        theme_code = self.theme_code

        pay_sources_filter = self.pay_sources_filter

        field_dict: dict[str, Any] = {}
        field_dict.update(self.additional_properties)
        field_dict.update({})
        if theme_code is not UNSET:
            field_dict["themeCode"] = theme_code
        if pay_sources_filter is not UNSET:
            field_dict["paySourcesFilter"] = pay_sources_filter

        return field_dict

    @classmethod
    def from_dict(cls: type[T], src_dict: Mapping[str, Any]) -> T:
        d = dict(src_dict)
        theme_code = d.pop("themeCode", UNSET)

        pay_sources_filter = d.pop("paySourcesFilter", UNSET)

        bill_custom_fields = cls(
            theme_code=theme_code,
            pay_sources_filter=pay_sources_filter,
        )

        bill_custom_fields.additional_properties = d
        return bill_custom_fields

    @property
    def additional_keys(self) -> list[str]:
        return list(self.additional_properties.keys())

    def __getitem__(self, key: str) -> str:
        return self.additional_properties[key]

    def __setitem__(self, key: str, value: str) -> None:
        self.additional_properties[key] = value

    def __delitem__(self, key: str) -> None:
        del self.additional_properties[key]

    def __contains__(self, key: str) -> bool:
        return key in self.additional_properties
