from __future__ import annotations

from collections.abc import Mapping
from typing import Any, TypeVar, cast

from attrs import define as _attrs_define
from attrs import field as _attrs_field

T = TypeVar("T", bound="AmountRequest")


@_attrs_define
class AmountRequest:
    """A sum of money in a request. `value` is what real clients send: a string with up to two
    decimals (the Node, PHP, Java and .NET SDKs send `"10.00"`) or a JSON number (the docs' curl samples,
    aioqiwi). It must be more than 0 and at most 999999.99 ("Number(6.2)").
    A JSON number with more than two decimals is rounded down to two, as the reference
    document says ("округленная в меньшую сторону до 2 десятичных знаков"); hence the numeric
    `minimum` is 0.01. No `multipleOf` on purpose: Python validators reject 40.91 as not a
    multiple of 0.01 (python-jsonschema #648), and schemathesis would report false failures.

        Attributes:
            currency (str): ISO 4217 alpha-3 code. QIWI P2P accepted `RUB` and `KZT` (2021 docs); QIWI Kassa never
                published a list. A server answers 400 `validation.error` for a currency it does not
                accept (the mock accepts `RUB` and `KZT` by default).
            value (float | str):
    """

    currency: str
    value: float | str
    additional_properties: dict[str, Any] = _attrs_field(init=False, factory=dict)

    def to_dict(self) -> dict[str, Any]:
        currency = self.currency

        value: float | str
        value = self.value

        field_dict: dict[str, Any] = {}
        field_dict.update(self.additional_properties)
        field_dict.update(
            {
                "currency": currency,
                "value": value,
            }
        )

        return field_dict

    @classmethod
    def from_dict(cls: type[T], src_dict: Mapping[str, Any]) -> T:
        d = dict(src_dict)
        currency = d.pop("currency")

        def _parse_value(data: object) -> float | str:
            return cast(float | str, data)

        value = _parse_value(d.pop("value"))

        amount_request = cls(
            currency=currency,
            value=value,
        )

        amount_request.additional_properties = d
        return amount_request

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
