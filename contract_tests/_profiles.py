"""Test budgets: the hypothesis profiles ``dev`` (fast, the default) and ``ci`` (more examples).

``QIWI_HYPOTHESIS_PROFILE=ci`` selects the larger one, for the hypothesis tests and for the
schemathesis engine runs alike. ``QIWI_CONTRACT_SEED`` fixes the engine's seed; ``dev`` uses a fixed
seed (so ``make test`` is reproducible) and ``ci`` a fresh one, printed in the summary.
"""

from __future__ import annotations

import os
import secrets
from dataclasses import dataclass
from functools import cache

from hypothesis import HealthCheck, settings

__all__ = ["PROFILE_ENV", "Budget", "active_budget", "contract_settings", "register_profiles"]

PROFILE_ENV = "QIWI_HYPOTHESIS_PROFILE"


@dataclass(frozen=True, slots=True)
class Budget:
    """How much one profile tests.

    Attributes:
        name: The hypothesis profile name.
        examples: Examples per hypothesis test.
        engine_examples: schemathesis ``max-examples`` per operation and phase.
        engine_steps: Maximum steps of one stateful scenario.
        seed: The engine's seed.
    """

    name: str
    examples: int
    engine_examples: int
    engine_steps: int
    seed: int


_BUDGETS = {"dev": (15, 10, 8), "ci": (100, 100, 12)}


def register_profiles() -> None:
    """Register ``dev`` and ``ci`` with hypothesis (``pytest --hypothesis-profile ci`` works too).

    The selected profile is applied to the contract tests only, by :func:`contract_settings`: loading
    it globally would also change the example counts of the unit tests under ``tests/``.
    """
    # deadline=None: a TCP round trip on a shared 2-core runner is not a performance contract.
    common = settings(deadline=None, suppress_health_check=[HealthCheck.too_slow], print_blob=True)
    settings.register_profile("dev", common, max_examples=_BUDGETS["dev"][0], derandomize=True)
    settings.register_profile("ci", common, max_examples=_BUDGETS["ci"][0])


def contract_settings() -> settings:
    """Hypothesis settings of the active profile, for ``@contract_settings()`` on a contract test."""
    register_profiles()
    return settings.get_profile(active_budget().name)


@cache
def active_budget() -> Budget:
    """The budget named by ``QIWI_HYPOTHESIS_PROFILE`` (default ``dev``)."""
    name = os.environ.get(PROFILE_ENV, "dev").strip() or "dev"
    if name not in _BUDGETS:
        raise ValueError(f"{PROFILE_ENV} must be one of {', '.join(sorted(_BUDGETS))}, not {name!r}")
    examples, engine_examples, steps = _BUDGETS[name]
    seed_text = os.environ.get("QIWI_CONTRACT_SEED", "").strip()
    seed = int(seed_text) if seed_text else (20260221 if name == "dev" else secrets.randbits(32))
    return Budget(name=name, examples=examples, engine_examples=engine_examples, engine_steps=steps, seed=seed)
