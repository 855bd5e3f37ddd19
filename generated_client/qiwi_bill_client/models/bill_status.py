from __future__ import annotations

import datetime
from collections.abc import Mapping
from typing import Any, TypeVar

from attrs import define as _attrs_define
from attrs import field as _attrs_field

from ..models.bill_status_value import BillStatusValue

T = TypeVar("T", bound="BillStatus")


@_attrs_define
class BillStatus:
    """
    Attributes:
        value (BillStatusValue): `WAITING` is the only non-final status; `PAID`, `REJECTED`, `EXPIRED` are final.
        changed_date_time (datetime.datetime): When the status last changed; equals `creationDateTime` for a new bill.
            (The Kassa
            notification sample spells it `datetime`; the P2P sample and every bill response use
            `changedDateTime`.)
    """

    value: BillStatusValue
    changed_date_time: datetime.datetime
    additional_properties: dict[str, Any] = _attrs_field(init=False, factory=dict)

    def to_dict(self) -> dict[str, Any]:
        value = self.value.value

        changed_date_time = self.changed_date_time.isoformat()

        field_dict: dict[str, Any] = {}
        field_dict.update(self.additional_properties)
        field_dict.update(
            {
                "value": value,
                "changedDateTime": changed_date_time,
            }
        )

        return field_dict

    @classmethod
    def from_dict(cls: type[T], src_dict: Mapping[str, Any]) -> T:
        d = dict(src_dict)
        value = BillStatusValue(d.pop("value"))

        changed_date_time = datetime.datetime.fromisoformat(d.pop("changedDateTime"))

        bill_status = cls(
            value=value,
            changed_date_time=changed_date_time,
        )

        bill_status.additional_properties = d
        return bill_status

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
