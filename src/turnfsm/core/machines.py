"""The chart on ``transitions`` machines: the only module that imports ``transitions``.

One flat ``transitions.Machine`` per region (parallel regions are independent machines;
guards that read another region use the context; each guard runs once per region offer, as
in the table), built once per chart and kept on it (``chart.derived``), shared by every
engine of that chart through ``add_model``. Callbacks
are callables, never strings; ``auto_transitions`` is off; invalid triggers are never sent
(an event goes to a region only in states that handle it, as the compiled table says), so
a trigger the machine would refuse is a bug and raises. The ``transitions`` logger is left
as the host configured it: the machines are built so that they log nothing per event.

Each engine's region models are removed from the shared machines when its dispatcher is
garbage-collected (``weakref.finalize``), so machines do not accumulate dead sessions.
"""

from __future__ import annotations

import weakref
from typing import Any

from transitions import Machine

from ..chart import Chart
from .dispatch import Compiled, DispatchObserver, Regions, guard_functions
from .registry import RULES, Registry


class RegionModel:
    """The per-engine model a region machine drives (it only holds ``state``)."""

    state: str

    def __init__(self, initial: str) -> None:
        self.state = initial


def _guard(fn: Any) -> Any:
    def cond(event_data: Any) -> bool:
        # each guard runs once per region offer: the answers are kept in the offer's memo
        kw = event_data.kwargs
        memo: dict[Any, bool] = kw["memo"]
        hit = memo.get(fn)
        if hit is None:
            hit = memo[fn] = bool(fn(kw["cx"], kw["payload"]))
        return hit
    return cond


def _action(fn: Any) -> Any:
    def act(event_data: Any) -> None:
        kw = event_data.kwargs
        fn(kw["cx"], kw["payload"])
    return act


class RegionMachines:
    """One ``transitions.Machine`` per region of a chart."""

    def __init__(self, chart: Chart, registry: Registry) -> None:
        self.machines: dict[str, Machine] = {}
        guards = {name: _guard(fn) for name, fn in guard_functions(chart, registry).items()}
        for region in chart.regions:
            specs = []
            for t in chart.transitions:
                if t.region != region.name:
                    continue
                specs.append({
                    "trigger": t.event, "source": t.source, "dest": t.dest,
                    "conditions": [guards[g.name] for g in t.guards if not g.negated],
                    "unless": [guards[g.name] for g in t.guards if g.negated],
                    "before": [_action(registry.actions[a].fn) for a in t.actions],
                })
            self.machines[region.name] = Machine(
                model=None, states=list(region.states), initial=region.initial,
                transitions=specs, auto_transitions=False, send_event=True)

    def attach(self, regions: tuple[str, ...], states: list[str]) -> dict[str, RegionModel]:
        """New models, one per region, in the given states."""
        models = {}
        for name, state in zip(regions, states, strict=True):
            model = RegionModel(state)
            self.machines[name].add_model(model, initial=state)
            models[name] = model
        return models

    def detach(self, models: dict[str, RegionModel]) -> None:
        """Remove an engine's models from the shared machines."""
        for name, model in models.items():
            self.machines[name].remove_model(model)

    def model_count(self) -> int:
        """Models attached now (all regions), for leak tests."""
        return sum(len(m.models) for m in self.machines.values())


def region_machines(chart: Chart, registry: Registry = RULES) -> RegionMachines:
    """The machines of ``chart`` (built once, kept on the chart)."""
    m = chart.derived.get("transitions")
    if not isinstance(m, RegionMachines):
        m = chart.derived["transitions"] = RegionMachines(chart, registry)
    return m


class TransitionsDispatcher:
    """Dispatch through ``transitions`` machines (a real alternative to the table)."""

    def __init__(self, chart: Chart, c: Compiled, cx: Regions) -> None:
        self._table = c.table
        self._names = c.regions
        self.machines = region_machines(chart)
        self.models = self.machines.attach(
            c.regions, [c.states[i][s] for i, s in enumerate(cx.s)])
        self._models = [self.models[name] for name in c.regions]
        self._index = [{s: i for i, s in enumerate(st)} for st in c.states]
        self.observer: DispatchObserver | None = None
        weakref.finalize(self, self.machines.detach, self.models)

    def dispatch(self, cx: Regions, event: str, payload: Any) -> None:
        """Offer ``event`` to every region that handles it in its current state."""
        observe = self.observer
        s = cx.s
        for ri, by_state in self._table.get(event, ()):
            state = s[ri]
            fired = False
            if state in by_state:  # otherwise the state ignores the event
                model = self._models[ri]
                fired = bool(model.trigger(  # type: ignore[attr-defined]
                    event, cx=cx, payload=payload, memo={}))
                s[ri] = self._index[ri][model.state]
            if observe is not None:
                observe(cx.regions[ri], cx.states[ri][state], event, fired)
