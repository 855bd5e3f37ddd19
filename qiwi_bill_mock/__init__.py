"""A faithful, stateful mock of the QIWI bill-payments API v1, with signed notifications.

```python
from qiwi_bill_mock import Merchant, Settings, create_app

app = create_app(Settings(merchants=[Merchant(site_id="270305", secret_key="sk", public_key="pk")]))
```

Run it as a server with `qiwi-bill-mock` (or `python -m qiwi_bill_mock`).
"""

from qiwi_bill_mock.app import MockApp, create_app
from qiwi_bill_mock.context import MockContext
from qiwi_bill_mock.settings import BROKEN_BEHAVIOURS, Fault, Merchant, Settings, SettingsError, demo_merchant

__all__ = [
    "BROKEN_BEHAVIOURS",
    "Fault",
    "Merchant",
    "MockApp",
    "MockContext",
    "Settings",
    "SettingsError",
    "create_app",
    "demo_merchant",
]
