"""A faithful, stateful mock of the QIWI bill-payments API v1 (see issue 4)."""
