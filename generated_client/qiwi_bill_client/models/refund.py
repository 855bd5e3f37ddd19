from __future__ import annotations

import datetime
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, TypeVar

from attrs import define as _attrs_define
from attrs import field as _attrs_field

from ..models.refund_status import RefundStatus

if TYPE_CHECKING:
    from ..models.amount import Amount


T = TypeVar("T", bound="Refund")


@_attrs_define
class Refund:
    """
    Attributes:
        amount (Amount): A sum of money as the service returns it. The reference document's samples show
            JSON numbers (`100`, `2.42`, `50.50`); every real capture since 2018 shows strings with
            two decimals (bill-payments-java-sdk#11, #27, #28; the Node SDK README capture), and the
            Node SDK changed its verifier to strings in 2020 (PR #37).
        date_time (datetime.datetime): When the refund was made.
        refund_id (str):
        status (RefundStatus): `PARTIAL` until the refunds reach the bill amount, then `FULL` (final).
    """

    amount: Amount
    date_time: datetime.datetime
    refund_id: str
    status: RefundStatus
    additional_properties: dict[str, Any] = _attrs_field(init=False, factory=dict)

    def to_dict(self) -> dict[str, Any]:
        amount = self.amount.to_dict()

        date_time = self.date_time.isoformat()

        refund_id = self.refund_id

        status = self.status.value

        field_dict: dict[str, Any] = {}
        field_dict.update(self.additional_properties)
        field_dict.update(
            {
                "amount": amount,
                "dateTime": date_time,
                "refundId": refund_id,
                "status": status,
            }
        )

        return field_dict

    @classmethod
    def from_dict(cls: type[T], src_dict: Mapping[str, Any]) -> T:
        from ..models.amount import Amount  # noqa: PLC0415

        d = dict(src_dict)
        amount = Amount.from_dict(d.pop("amount"))

        date_time = datetime.datetime.fromisoformat(d.pop("dateTime"))

        refund_id = d.pop("refundId")

        status = RefundStatus(d.pop("status"))

        refund = cls(
            amount=amount,
            date_time=date_time,
            refund_id=refund_id,
            status=status,
        )

        refund.additional_properties = d
        return refund

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
