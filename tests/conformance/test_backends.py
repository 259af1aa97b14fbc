"""The chart means the same whether it runs on the fast table or on `transitions`."""

from __future__ import annotations

import pytest

from tests.conformance.support import trace_path, traces
from turnfsm.replay import replay_file


@pytest.mark.parametrize("name", traces())
def test_transitions_backend_equals_table_backend(name: str) -> None:
    """Replaying with transitions' machines gives the table dispatcher's exact output."""
    path = trace_path(name)
    assert replay_file(path, diagnostics=True, backend="transitions") == replay_file(
        path, diagnostics=True)
