"""Dispatching an event through the chart's regions.

An event is offered to every region that names it, in chart order; in each region the first
transition of the current state whose guards hold fires (the loader proved at most one can):
its actions run, then its destination is entered. Actions may fire internal events, which
are dispatched at once (nested) before the outer dispatch goes on to the next region.

Within one region's offer each guard runs at most once: the transitions of a (region, state,
event) are compiled into a decision tree (:func:`decision_tree`) that asks each guard once
and remembers its answer down the branch (guards are pure: they read, never write). The tree
follows the transitions in the order they are listed, skipping guards already answered and
transitions an answer already ruled out, and fires the first transition whose guards all
hold: what fires is exactly what the list gives.

Two dispatchers implement this: :class:`TableDispatcher` (the default) reads a table
compiled once per chart and kept on the chart (``chart.derived``); the ``transitions``
dispatcher (:mod:`turnfsm.core.machines`) runs the same chart on ``transitions`` machines
and is proven equal on every trace.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Sequence
from typing import Any, Protocol

import attrs

from .._methods import attrs_eq, attrs_hash, attrs_repr
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
# A decision tree: a branch ``(guard, if_true, if_false)``, a leaf ``(None, actions, dest)``
# (that transition fires), or None (no transition fires).
Node = tuple[Any, Any, Any] | None


def decision_tree(transitions: Sequence[_CT]) -> Node:
    """The decision tree of one (region, state, event): first-match over ``transitions``
    (each ``(guards, actions, dest)``, guards as ``(fn, negated)``), asking each guard at
    most once on any path."""
    cands: list[tuple[dict[GuardFn, bool], tuple[ActionFn, ...], int | None]] = []
    for guards, actions, dest in transitions:
        need: dict[GuardFn, bool] = {}
        for fn, neg in guards:
            if need.setdefault(fn, not neg) is neg:
                break  # needs a guard both ways: it never fires
        else:
            cands.append((need, actions, dest))
    return _tree(cands)


def _tree(cands: list[tuple[dict[GuardFn, bool], tuple[ActionFn, ...], int | None]]) -> Node:
    if not cands:
        return None
    need, actions, dest = cands[0]
    if not need:
        return (None, actions, dest)
    g = next(iter(need))
    yes, no = [], []
    for n, a, d in cands:
        want = n.get(g)
        rest = {k: v for k, v in n.items() if k is not g}
        if want is not False:
            yes.append((rest, a, d))
        if want is not True:
            no.append((rest, a, d))
    return (g, _tree(yes), _tree(no))


@attrs.frozen(repr=False, eq=False)
class Compiled:
    """A chart compiled for dispatch (immutable: copies share it)."""

    __repr__ = attrs_repr
    __eq__ = attrs_eq
    __hash__ = attrs_hash

    def __deepcopy__(self, memo: dict[int, Any]) -> Compiled:
        return self

    regions: tuple[str, ...]
    states: tuple[tuple[str, ...], ...]
    initial: tuple[int, ...]
    # event -> ((region index, {state index: decision tree}), ...); a state that ignores the
    # event is not a key
    table: dict[str, tuple[tuple[int, dict[int, Node]], ...]]


def guard_functions(chart: Chart, registry: Registry = RULES) -> dict[str, GuardFn]:
    """The function of every guard ``chart`` names: registered rules, and one function per
    literal (``in: REGION.STATE`` compares the state vector; ``option: NAME`` reads the
    options in force), shared by every transition that writes it (decision trees ask a
    guard once by its function)."""
    regions = [r.name for r in chart.regions]
    fns: dict[str, GuardFn] = {}
    for t in chart.transitions:
        for g in t.guards:
            if g.name in fns:
                continue
            if g.kind == "rule":
                fns[g.name] = registry.guards[g.name]
            elif g.kind == "in":
                region, state = g.target
                ri = regions.index(region)
                fns[g.name] = _in_state(ri, chart.regions[ri].states.index(str(state)))
            else:
                fns[g.name] = _option(*g.target)
    return fns


def _in_state(ri: int, si: int) -> GuardFn:
    # partials of module functions: an engine (its table included) pickles and copies
    return functools.partial(in_state_guard, ri, si)


def _option(name: str, value: str | None) -> GuardFn:
    if value is None:
        return functools.partial(option_on_guard, name)
    return functools.partial(option_is_guard, name, value)


def in_state_guard(ri: int, si: int, cx: Any, e: Any) -> bool:
    """The guard literal ``in: REGION.STATE`` (region ``ri`` is in state ``si``)."""
    return bool(cx.s[ri] == si)


def option_on_guard(name: str, cx: Any, e: Any) -> bool:
    """The guard literal ``option: NAME`` (a boolean option is on)."""
    return bool(getattr(cx.options, name))


def option_is_guard(name: str, value: str, cx: Any, e: Any) -> bool:
    """The guard literal ``option: NAME == VALUE``."""
    return bool(getattr(cx.options, name) == value)


def compiled(chart: Chart, registry: Registry = RULES) -> Compiled:
    """The dispatch table of ``chart`` (compiled once, kept on the chart)."""
    hit = chart.derived.get("table")
    if isinstance(hit, Compiled):
        return hit
    regions = tuple(r.name for r in chart.regions)
    states = tuple(r.states for r in chart.regions)
    ridx = {r: i for i, r in enumerate(regions)}
    guards = guard_functions(chart, registry)
    table: dict[str, dict[int, dict[int, list[_CT]]]] = {}
    for t in chart.transitions:
        ri = ridx[t.region]
        sidx = states[ri].index(t.source)
        dest = states[ri].index(t.dest) if t.dest is not None else None
        ct: _CT = (tuple((guards[g.name], g.negated) for g in t.guards),
                   tuple(registry.actions[a].fn for a in t.actions), dest)
        table.setdefault(t.event, {}).setdefault(ri, {}).setdefault(sidx, []).append(ct)
    frozen = {
        e: tuple((ri, {s: decision_tree(v) for s, v in by_state.items()})
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
            node = by_state.get(state)
            while node is not None:
                fn = node[0]
                if fn is None:  # a leaf: this transition fires
                    for act in node[1]:
                        act(cx, payload)
                    if node[2] is not None:
                        s[ri] = node[2]
                    fired = True
                    break
                node = node[1] if fn(cx, payload) else node[2]
            if observe is not None:
                observe(cx.regions[ri], cx.states[ri][state], event, fired)
