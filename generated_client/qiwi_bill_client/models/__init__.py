"""Contains all the data models used in inputs/outputs"""

from .amount import Amount
from .amount_request import AmountRequest
from .bill import Bill
from .bill_custom_fields import BillCustomFields
from .bill_customer import BillCustomer
from .bill_notification import BillNotification
from .bill_status import BillStatus
from .bill_status_value import BillStatusValue
from .create_bill_request import CreateBillRequest
from .create_refund_request import CreateRefundRequest
from .custom_fields import CustomFields
from .customer import Customer
from .error import Error
from .error_cause import ErrorCause
from .notification_ack import NotificationAck
from .notification_bill import NotificationBill
from .refund import Refund
from .refund_status import RefundStatus

__all__ = (
    "Amount",
    "AmountRequest",
    "Bill",
    "BillCustomer",
    "BillCustomFields",
    "BillNotification",
    "BillStatus",
    "BillStatusValue",
    "CreateBillRequest",
    "CreateRefundRequest",
    "Customer",
    "CustomFields",
    "Error",
    "ErrorCause",
    "NotificationAck",
    "NotificationBill",
    "Refund",
    "RefundStatus",
)
