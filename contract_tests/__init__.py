"""The contract suite: any server against openapi/qiwi-bill-payments.yaml (``qiwi-contract``, ``make contract``).

PYTEST_DONT_REWRITE: ``qiwi-contract`` imports this package before it starts pytest, and pytest marks every
top-level package of a distribution with a ``pytest11`` entry point (the testing kit's plugin) for assertion
rewriting; an already-imported package would then raise ``PytestAssertRewriteWarning`` (an error under the suite's
``filterwarnings``). The suite's checks raise their own failures, so they need no rewritten asserts.
"""
