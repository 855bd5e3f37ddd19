from enum import StrEnum


class BillStatusValue(StrEnum):
    EXPIRED = "EXPIRED"
    PAID = "PAID"
    REJECTED = "REJECTED"
    WAITING = "WAITING"

    def __str__(self) -> str:
        return str(self.value)
