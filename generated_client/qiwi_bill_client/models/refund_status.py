from enum import StrEnum


class RefundStatus(StrEnum):
    FULL = "FULL"
    PARTIAL = "PARTIAL"

    def __str__(self) -> str:
        return str(self.value)
