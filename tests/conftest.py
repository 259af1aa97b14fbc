"""Hypothesis profiles, chosen with the HYPOTHESIS_PROFILE environment variable.

* ``default``: quick, for local runs (the property tests take a few seconds).
* ``ci``: derandomized (reproducible in CI) with ``print_blob``; enough examples that the
  stateful tests run at least 20,000 examples in total while the suite stays within a few
  minutes on 2 cores.
* ``long``: a deeper random search for local bug hunting.

:data:`STATEFUL_EXAMPLES` is the total budget of the stateful tests per profile (they split
it over two state machines run in two processes, see ``tests/test_properties.py``); the
``max_examples`` of a profile applies to every other ``@given`` test.
"""

from __future__ import annotations

import os

from hypothesis import HealthCheck, settings

_SLOW = [HealthCheck.too_slow, HealthCheck.data_too_large]

settings.register_profile("default", max_examples=60, stateful_step_count=30,
                          deadline=None, suppress_health_check=_SLOW)
settings.register_profile("ci", max_examples=300, stateful_step_count=30, deadline=None,
                          derandomize=True, print_blob=True, suppress_health_check=_SLOW)
settings.register_profile("long", max_examples=20000, stateful_step_count=60, deadline=None,
                          suppress_health_check=_SLOW)
PROFILE = os.environ.get("HYPOTHESIS_PROFILE", "default")
STATEFUL_EXAMPLES = {"default": 120, "ci": 20_000, "long": 100_000}
settings.load_profile(PROFILE)


def stateful_examples() -> int:
    """The stateful tests' total example budget under the current profile."""
    return STATEFUL_EXAMPLES.get(PROFILE, 120)
