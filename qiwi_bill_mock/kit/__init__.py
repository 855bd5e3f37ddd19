"""The testing kit: the mock inside a user's own test suite, with no ports (see docs/testing.md).

- `mock` — `QiwiMock` (an in-process mock with a fresh merchant and every client) and `mock_qiwi` (interception
  of `https://api.qiwi.com`, moto style);
- `transports` — `AppRunner` and `MockTransport`: sync and async httpx transports over the app, lifespan running;
- `controls` — `MockControls` / `AsyncMockControls`: the typed `/_mock/` control client (in-process or over HTTP);
- `notifications` — `NotificationRouter` and `NotificationInbox`: notifications delivered in-process;
- `journal` — `RequestJournal`: every API request the mock received, and `GET /_mock/requests`;
- `server` — `MockServer`: the `qiwi-bill-mock` process with one merchant on a free port;
- `pytest_plugin` — the `qiwi_mock` and `qiwi_mock_server` fixtures (loaded through the `pytest11` entry point).

Everything public is re-exported by `qiwi_bill_mock.testing`.
"""
