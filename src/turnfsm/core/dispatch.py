"""Dispatching an event through the chart's regions.

An event is offered to every region that names it, in chart order; in each region the first
transition of the current state whose guards hold fires (the loader proved at most one can):
its actions run, then its destination is entered. Actions may fire internal events, which
are dispatched at once (nested) before the outer dispatch goes on to the next region.

Two dispatchers implement this: :class:`TableDispatcher` (the default) reads a table
compiled once per chart and kept on the chart (``chart.derived``); the ``transitions``
dispatcher (:mod:`turnfsm.core.machines`) runs the same chart on ``transitions`` machines
and is proven equal on every trace.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, Protocol

import attrs

from ..chart import Chart
from .registry import RULES, ActionFn, GuardFn, Registry


class Regions(Protocol):
    """What a dispatcher reads and moves: the state vector (and names, for observers). The
    engine's :class:`~turnfsm.core.context.Context` is one; rules receive it whole."""

    s: list[int]

    @property
    def regions(self) -> Sequence[str]:
        """Region names, in chart order."""

    @property
    def states(self) -> Sequence[Sequence[str]]:
        """State names of every region."""

# (region, state, event, fired) for every region offered an event
DispatchObserver = Callable[[str, str, str, bool], None]
_CT = tuple[tuple[tuple[GuardFn, bool], ...], tuple[ActionFn, ...], "int | None"]


@attrs.frozen
class Compiled:
    """A chart compiled for dispatch (immutable: copies share it)."""

    def __deepcopy__(self, memo: dict[int, Any]) -> Compiled:
        return self

    regions: tuple[str, ...]
    states: tuple[tuple[str, ...], ...]
    initial: tuple[int, ...]
    # event -> ((region index, {state index: transitions}), ...)
    table: dict[str, tuple[tuple[int, dict[int, tuple[_CT, ...]]], ...]]


def compiled(chart: Chart, registry: Registry = RULES) -> Compiled:
    """The dispatch table of ``chart`` (compiled once, kept on the chart)."""
    hit = chart.derived.get("table")
    if isinstance(hit, Compiled):
        return hit
    regions = tuple(r.name for r in chart.regions)
    states = tuple(r.states for r in chart.regions)
    ridx = {r: i for i, r in enumerate(regions)}
    table: dict[str, dict[int, dict[int, list[_CT]]]] = {}
    for t in chart.transitions:
        ri = ridx[t.region]
        sidx = states[ri].index(t.source)
        dest = states[ri].index(t.dest) if t.dest is not None else None
        ct: _CT = (tuple((registry.guards[g.name], g.negated) for g in t.guards),
                   tuple(registry.actions[a].fn for a in t.actions), dest)
        table.setdefault(t.event, {}).setdefault(ri, {}).setdefault(sidx, []).append(ct)
    frozen = {
        e: tuple((ri, {s: tuple(v) for s, v in by_state.items()})
                 for ri, by_state in sorted(by_region.items()))
        for e, by_region in table.items()
    }
    c = Compiled(regions, states,
                 tuple(states[i].index(r.initial) for i, r in enumerate(chart.regions)), frozen)
    chart.derived["table"] = c
    return c


class Dispatcher(Protocol):
    """Runs one event through the regions of a context."""

    observer: DispatchObserver | None

    def dispatch(self, cx: Regions, event: str, payload: Any) -> None:
        """Offer ``event`` to every region, in chart order."""


class TableDispatcher:
    """Dispatch from the compiled table."""

    __slots__ = ("_table", "observer")

    def __init__(self, c: Compiled) -> None:
        self._table = c.table
        self.observer: DispatchObserver | None = None

    def __deepcopy__(self, memo: dict[int, Any]) -> TableDispatcher:
        """A copy shares the (immutable) compiled table."""
        d = TableDispatcher.__new__(TableDispatcher)
        d._table = self._table
        d.observer = self.observer
        return d

    def __getstate__(self) -> dict[str, Any]:
        return {"_table": self._table, "observer": self.observer}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self._table = state["_table"]
        self.observer = state["observer"]

    def dispatch(self, cx: Regions, event: str, payload: Any) -> None:
        """Offer ``event`` to every region, in chart order."""
        observe = self.observer
        s = cx.s
        for ri, by_state in self._table.get(event, ()):
            state = s[ri]
            fired = False
            for guards, actions, dest in by_state.get(state, ()):
                for fn, neg in guards:
                    if fn(cx, payload) == neg:
                        break
                else:
                    for act in actions:
                        act(cx, payload)
                    if dest is not None:
                        s[ri] = dest
                    fired = True
                    break
            if observe is not None:
                observe(cx.regions[ri], cx.states[ri][state], event, fired)
