"""Conformance: every trace reproduces the reference, or its listed deviation exactly."""

from __future__ import annotations

import pytest

from tests.conformance.support import (
    expected_path,
    first_difference,
    load_deviations,
    parse_lines,
    trace_path,
    traces,
)
from turnfsm.replay import replay_file

DEVIATIONS = load_deviations()


@pytest.mark.parametrize("name", traces())
def test_trace_matches_reference_or_listed_deviation(name: str) -> None:
    """The replay equals the reference output, or the deviation's own expected output."""
    actual = parse_lines(replay_file(trace_path(name)))
    reference = parse_lines(expected_path(name).read_text(encoding="utf-8"))
    dev = DEVIATIONS.get(name)
    if dev is None:
        diff = first_difference(reference, actual)
        assert diff is None, f"{name} differs from the reference, not a listed deviation:\n{diff}"
    else:
        diff = first_difference(parse_lines(dev["output"]), actual)
        assert diff is None, f"{name} differs from its listed deviation output:\n{diff}"
        assert first_difference(reference, actual) is not None, (
            f"{name} is listed as a deviation but now equals the reference: remove the entry")


def test_every_deviation_names_a_trace_and_a_defect() -> None:
    """Each deviation entry refers to an existing trace and to spec defect ids."""
    names = set(traces())
    for name, dev in DEVIATIONS.items():
        assert name in names, f"deviation for unknown trace {name}"
        assert dev["defects"] and all(str(d).startswith("D") for d in dev["defects"])
        for field in ("reference", "turnfsm", "why"):
            assert len(str(dev[field]).strip()) > 20, f"{name}: explain '{field}'"
