"""The frozen chart: regions in dispatch order, declared events, transitions.

A :class:`Chart` is made by :mod:`turnfsm.chart.loader` and never changes. Whatever is
derived from it for running (the engine's compiled dispatch table, the ``transitions``
machines) is kept in the chart's own :attr:`Chart.derived` slot, so it lives and dies with
the chart: no process-global cache keyed by ``id()``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Literal

import attrs

EventKind = Literal["input", "data", "timer", "internal"]


@attrs.frozen
class Guard:
    """A guard literal: ``name`` must be true (or false when ``negated``)."""

    name: str
    negated: bool = False

    def __str__(self) -> str:
        return f"not {self.name}" if self.negated else self.name


@attrs.frozen
class Transition:
    """One transition of a region (``dest`` None = stay, an internal transition)."""

    region: str
    event: str
    source: str
    dest: str | None
    guards: tuple[Guard, ...]
    actions: tuple[str, ...]
    line: int


@attrs.frozen
class Region:
    """A parallel region: its states, initial state and doc strings."""

    name: str
    initial: str
    states: tuple[str, ...]
    docs: Mapping[str, str]
    doc: str
    line: int
    state_lines: Mapping[str, int] = attrs.field(factory=dict)


@attrs.frozen
class EventSpec:
    """A declared event: ``kind`` is input, data, timer or internal; ``payload`` names the
    class of what the event carries (the input class for input and data events)."""

    name: str
    kind: EventKind
    input: str | None
    doc: str
    payload: str | None = None
    line: int = 0


@attrs.frozen
class Chart:
    """A validated chart: regions in dispatch order, events, transitions."""

    source: str
    regions: tuple[Region, ...]
    events: Mapping[str, EventSpec]
    transitions: tuple[Transition, ...]
    ignored: frozenset[tuple[str, str, str]]  # (region, state, event)
    # what runners derive from the chart (compiled tables, machines), kept with it
    derived: dict[str, Any] = attrs.field(factory=dict, init=False, eq=False, repr=False)

    def __getstate__(self) -> dict[str, Any]:
        """Pickle the chart, not what runners derived from it (rebuilt on demand)."""
        return {f.name: getattr(self, f.name) for f in attrs.fields(Chart) if f.name != "derived"}

    def __setstate__(self, state: dict[str, Any]) -> None:
        for k, v in state.items():
            object.__setattr__(self, k, v)
        object.__setattr__(self, "derived", {})

    @property
    def guard_names(self) -> frozenset[str]:
        """Every guard name the chart uses."""
        return frozenset(g.name for t in self.transitions for g in t.guards)

    @property
    def action_names(self) -> frozenset[str]:
        """Every action name the chart uses."""
        return frozenset(a for t in self.transitions for a in t.actions)
