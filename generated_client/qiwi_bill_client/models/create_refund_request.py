from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, TypeVar

from attrs import define as _attrs_define
from attrs import field as _attrs_field

if TYPE_CHECKING:
    from ..models.amount_request import AmountRequest


T = TypeVar("T", bound="CreateRefundRequest")


@_attrs_define
class CreateRefundRequest:
    """Body of `PUT .../refunds/{refundId}`.

    Attributes:
        amount (AmountRequest): A sum of money in a request. `value` is what real clients send: a string with up to two
            decimals (the Node, PHP, Java and .NET SDKs send `"10.00"`) or a JSON number (the docs' curl samples,
            aioqiwi). It must be more than 0 and at most 999999.99 ("Number(6.2)").
            A JSON number with more than two decimals is rounded down to two, as the reference
            document says ("округленная в меньшую сторону до 2 десятичных знаков"); hence the numeric
            `minimum` is 0.01. No `multipleOf` on purpose: Python validators reject 40.91 as not a
            multiple of 0.01 (python-jsonschema #648), and schemathesis would report false failures.
    """

    amount: AmountRequest
    additional_properties: dict[str, Any] = _attrs_field(init=False, factory=dict)

    def to_dict(self) -> dict[str, Any]:
        amount = self.amount.to_dict()

        field_dict: dict[str, Any] = {}
        field_dict.update(self.additional_properties)
        field_dict.update(
            {
                "amount": amount,
            }
        )

        return field_dict

    @classmethod
    def from_dict(cls: type[T], src_dict: Mapping[str, Any]) -> T:
        from ..models.amount_request import AmountRequest  # noqa: PLC0415

        d = dict(src_dict)
        amount = AmountRequest.from_dict(d.pop("amount"))

        create_refund_request = cls(
            amount=amount,
        )

        create_refund_request.additional_properties = d
        return create_refund_request

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
