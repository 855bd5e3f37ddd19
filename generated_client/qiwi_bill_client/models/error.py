from __future__ import annotations

import datetime
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, TypeVar

from attrs import define as _attrs_define
from attrs import field as _attrs_field

from ..types import UNSET, Unset

if TYPE_CHECKING:
    from ..models.error_cause import ErrorCause


T = TypeVar("T", bound="Error")


@_attrs_define
class Error:
    """QIWI's error body, on every non-2xx answer. The reference document's samples spell the
    timestamp `datetime`; the P2P docs, live SDK tests and the Java/.NET DTOs use `dateTime`.

        Attributes:
            service_name (str): `invoicing-api` in live answers.
            error_code (str): Machine-readable code: `auth.unauthorized`, `api.invoice.not.found`,
                `api.refund.not.found`, `validation.error`, `http.message.conversion.failed`,
                `refund.incorrect.amount`, `api.invoice.already.exists`, `http.media.type.not.supported`, ...
            description (str):
            user_message (str):
            date_time (datetime.datetime):
            trace_id (str):
            cause (ErrorCause | Unset): Field name → messages, for `validation.error` (successor API's shape).
    """

    service_name: str
    error_code: str
    description: str
    user_message: str
    date_time: datetime.datetime
    trace_id: str
    cause: ErrorCause | Unset = UNSET
    additional_properties: dict[str, Any] = _attrs_field(init=False, factory=dict)

    def to_dict(self) -> dict[str, Any]:
        service_name = self.service_name

        error_code = self.error_code

        description = self.description

        user_message = self.user_message

        date_time = self.date_time.isoformat()

        trace_id = self.trace_id

        cause: dict[str, Any] | Unset = UNSET
        if not isinstance(self.cause, Unset):
            cause = self.cause.to_dict()

        field_dict: dict[str, Any] = {}
        field_dict.update(self.additional_properties)
        field_dict.update(
            {
                "serviceName": service_name,
                "errorCode": error_code,
                "description": description,
                "userMessage": user_message,
                "dateTime": date_time,
                "traceId": trace_id,
            }
        )
        if cause is not UNSET:
            field_dict["cause"] = cause

        return field_dict

    @classmethod
    def from_dict(cls: type[T], src_dict: Mapping[str, Any]) -> T:
        from ..models.error_cause import ErrorCause  # noqa: PLC0415

        d = dict(src_dict)
        service_name = d.pop("serviceName")

        error_code = d.pop("errorCode")

        description = d.pop("description")

        user_message = d.pop("userMessage")

        date_time = datetime.datetime.fromisoformat(d.pop("dateTime"))

        trace_id = d.pop("traceId")

        _cause = d.pop("cause", UNSET)
        cause: ErrorCause | Unset
        if isinstance(_cause, Unset):
            cause = UNSET
        else:
            cause = ErrorCause.from_dict(_cause)

        error = cls(
            service_name=service_name,
            error_code=error_code,
            description=description,
            user_message=user_message,
            date_time=date_time,
            trace_id=trace_id,
            cause=cause,
        )

        error.additional_properties = d
        return error

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
