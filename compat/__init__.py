"""Real clients against the mock: QIWI's official Node SDK from npm, and the replayed Java, .NET and PHP SDK requests.

Run with `make compat`; `compat/results.md` (and `.json`) is the table of the last such run.
"""
