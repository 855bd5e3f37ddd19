from __future__ import annotations

from collections.abc import Mapping
from typing import Any, TypeVar

from attrs import define as _attrs_define
from attrs import field as _attrs_field

T = TypeVar("T", bound="Amount")


@_attrs_define
class Amount:
    """A sum of money as the service returns it. The reference document's samples show
    JSON numbers (`100`, `2.42`, `50.50`); every real capture since 2018 shows strings with
    two decimals (bill-payments-java-sdk#11, #27, #28; the Node SDK README capture), and the
    Node SDK changed its verifier to strings in 2020 (PR #37).

        Attributes:
            currency (str): ISO 4217 alpha-3 code. QIWI P2P accepted `RUB` and `KZT` (2021 docs); QIWI Kassa never
                published a list. A server answers 400 `validation.error` for a currency it does not
                accept (the mock accepts `RUB` and `KZT` by default).
            value (str): Exact decimal with two fraction digits, as the service returns it (`"10.00"`).
    """

    currency: str
    value: str
    additional_properties: dict[str, Any] = _attrs_field(init=False, factory=dict)

    def to_dict(self) -> dict[str, Any]:
        currency = self.currency

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

        value = d.pop("value")

        amount = cls(
            currency=currency,
            value=value,
        )

        amount.additional_properties = d
        return amount

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
