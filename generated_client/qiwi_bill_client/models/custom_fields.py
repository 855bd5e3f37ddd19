from __future__ import annotations

from collections.abc import Mapping
from typing import Any, TypeVar, cast

from attrs import define as _attrs_define
from attrs import field as _attrs_field

from ..types import UNSET, Unset

T = TypeVar("T", bound="CustomFields")


@_attrs_define
class CustomFields:
    """Free-form string values, each String(255) (request). Keys with meaning: `themeCode` (a form style
    from the merchant cabinet) and `paySourcesFilter` (comma-separated subset of `qw`, `card`,
    `mobile`: the payment methods the form offers). The official SDKs add
    `apiClient`/`apiClientVersion`. A `null` value means the key is absent (the Java SDK sends
    `"checkoutReferer":null`, the .NET SDK `"themeCode":null`).

        Attributes:
            theme_code (None | str | Unset): Form style code created in the merchant cabinet.
            pay_sources_filter (None | str | Unset): Comma-separated payment methods to offer, e.g. `qw,card` (echoed as
                sent).
    """

    theme_code: None | str | Unset = UNSET
    pay_sources_filter: None | str | Unset = UNSET
    additional_properties: dict[str, None | str] = _attrs_field(init=False, factory=dict)

    def to_dict(self) -> dict[str, Any]:
        theme_code: None | str | Unset
        if isinstance(self.theme_code, Unset):
            theme_code = UNSET
        else:
            theme_code = self.theme_code

        pay_sources_filter: None | str | Unset
        if isinstance(self.pay_sources_filter, Unset):
            pay_sources_filter = UNSET
        else:
            pay_sources_filter = self.pay_sources_filter

        field_dict: dict[str, Any] = {}
        for prop_name, prop in self.additional_properties.items():
            field_dict[prop_name] = prop

        field_dict.update({})
        if theme_code is not UNSET:
            field_dict["themeCode"] = theme_code
        if pay_sources_filter is not UNSET:
            field_dict["paySourcesFilter"] = pay_sources_filter

        return field_dict

    @classmethod
    def from_dict(cls: type[T], src_dict: Mapping[str, Any]) -> T:
        d = dict(src_dict)

        def _parse_theme_code(data: object) -> None | str | Unset:
            if data is None:
                return data
            if isinstance(data, Unset):
                return data
            return cast(None | str | Unset, data)

        theme_code = _parse_theme_code(d.pop("themeCode", UNSET))

        def _parse_pay_sources_filter(data: object) -> None | str | Unset:
            if data is None:
                return data
            if isinstance(data, Unset):
                return data
            return cast(None | str | Unset, data)

        pay_sources_filter = _parse_pay_sources_filter(d.pop("paySourcesFilter", UNSET))

        custom_fields = cls(
            theme_code=theme_code,
            pay_sources_filter=pay_sources_filter,
        )

        additional_properties = {}
        for prop_name, prop_dict in d.items():

            def _parse_additional_property(data: object) -> None | str:
                if data is None:
                    return data
                return cast(None | str, data)

            additional_property = _parse_additional_property(prop_dict)

            additional_properties[prop_name] = additional_property

        custom_fields.additional_properties = additional_properties
        return custom_fields

    @property
    def additional_keys(self) -> list[str]:
        return list(self.additional_properties.keys())

    def __getitem__(self, key: str) -> None | str:
        return self.additional_properties[key]

    def __setitem__(self, key: str, value: None | str) -> None:
        self.additional_properties[key] = value

    def __delitem__(self, key: str) -> None:
        del self.additional_properties[key]

    def __contains__(self, key: str) -> bool:
        return key in self.additional_properties
