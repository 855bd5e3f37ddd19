"""Hand-written helpers for the QIWI bill-payments API (see issue 3)."""
