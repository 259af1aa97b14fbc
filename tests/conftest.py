"""Hypothesis profiles and the ``slow`` marker.

Hypothesis profiles are chosen with the HYPOTHESIS_PROFILE environment variable.

* ``default``: quick, for local runs (the property tests take a few seconds).
* ``ci``: derandomized (reproducible in CI) with ``print_blob``; enough examples that the
  stateful tests run at least 20,000 examples in total while the suite stays within a few
  minutes on 2 cores.
* ``long``: a deeper random search for local bug hunting.

:data:`STATEFUL_EXAMPLES` is the total budget of the stateful tests per profile (they split
it over four state machines, two per behaviour profile, in two processes, see
``tests/test_properties.py``); the ``max_examples`` of a profile applies to every other
``@given`` test.

Tests marked ``slow`` (the bounded exhaustive exploration, the mutation runs and other tests
of more than about two seconds) run only with ``TURNFSM_SLOW=1`` in the environment or with
``pytest --slow``; otherwise they are skipped. CI sets ``TURNFSM_SLOW=1``.
"""

from __future__ import annotations

import os

import pytest
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


SLOW_ENV = "TURNFSM_SLOW"


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption("--slow", action="store_true", default=False,
                     help=f"also run the tests marked slow (same as {SLOW_ENV}=1)")


def run_slow(config: pytest.Config) -> bool:
    """Whether the tests marked ``slow`` run: ``--slow`` or TURNFSM_SLOW set (not 0)."""
    return bool(config.getoption("--slow")) or os.environ.get(SLOW_ENV, "") not in ("", "0")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if run_slow(config):
        return
    skip = pytest.mark.skip(reason=f"slow: run with {SLOW_ENV}=1 pytest (or pytest --slow)")
    for item in items:
        if item.get_closest_marker("slow") is not None:
            item.add_marker(skip)


@pytest.fixture
def rules_model_fails_once(monkeypatch: pytest.MonkeyPatch) -> None:
    """The built-in rules model raises on its first call ("model server gone"), then
    answers as it does."""
    from turnfsm.runtime.model import RuleBasedModel
    real, calls = RuleBasedModel.answer, [0]

    def answer(self: RuleBasedModel, asked: object) -> float:
        calls[0] += 1
        if calls[0] == 1:
            raise RuntimeError("model server gone")
        return real(self, asked)
    monkeypatch.setattr(RuleBasedModel, "answer", answer)
