"""The chart as ``transitions`` state machines: the only module that imports ``transitions``.

:func:`build_machines` turns a validated :class:`~turnfsm.chart.Chart` into one flat
``transitions.Machine`` per region (parallel regions are independent machines; guards that
read another region use the engine's state). Machines are built once per chart and shared
by every engine that uses this backend (``add_model``). Callbacks are callables, never
strings; ``auto_transitions`` is off; the ``transitions`` logger is set to ERROR.

The engine's default dispatch reads the same compiled table directly, which costs a fraction
of a ``transitions`` trigger (see CONVENTIONS: about 0.2 µs against 7.5 µs per event). The
``transitions`` backend (``Engine(..., backend="transitions")``) runs the identical chart
through the library; a test replays the conformance suite with both and requires identical
outputs, so the chart's semantics do not depend on the dispatcher.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from transitions import Machine

from .chart import Chart

logging.getLogger("transitions").setLevel(logging.ERROR)

Registry = dict[str, Callable[[Any, Any], Any]]


class RegionModel:
    """The per-engine model a region machine drives (it only holds ``state``)."""

    state: str

    def __init__(self, initial: str) -> None:
        self.state = initial


def _guard(fn: Callable[[Any, Any], Any]) -> Callable[[Any], bool]:
    def cond(event_data: Any) -> bool:
        kw = event_data.kwargs
        return bool(fn(kw["engine"], kw["payload"]))
    return cond


def _action(fn: Callable[[Any, Any], Any]) -> Callable[[Any], None]:
    def act(event_data: Any) -> None:
        kw = event_data.kwargs
        fn(kw["engine"], kw["payload"])
    return act


class RegionMachines:
    """One ``transitions.Machine`` per region of a chart."""

    def __init__(self, chart: Chart, guards: Registry, actions: Registry) -> None:
        self.chart = chart
        self.machines: dict[str, Machine] = {}
        self.events: dict[str, frozenset[str]] = {}
        for region in chart.regions:
            ts = [t for t in chart.transitions if t.region == region.name]
            specs = []
            for t in ts:
                spec: dict[str, Any] = {
                    "trigger": t.event, "source": t.source, "dest": t.dest,
                    "conditions": [_guard(guards[g.name]) for g in t.guards if not g.negated],
                    "unless": [_guard(guards[g.name]) for g in t.guards if g.negated],
                    "before": [_action(actions[a]) for a in t.actions],
                }
                specs.append(spec)
            m = Machine(model=None, states=list(region.states), initial=region.initial,
                        transitions=specs, auto_transitions=False, send_event=True,
                        ignore_invalid_triggers=True)
            self.machines[region.name] = m
            self.events[region.name] = frozenset(t.event for t in ts)

    def new_models(self) -> dict[str, RegionModel]:
        """Fresh models, one per region, attached to the shared machines."""
        models = {}
        for region in self.chart.regions:
            model = RegionModel(region.initial)
            self.machines[region.name].add_model(model, initial=region.initial)
            models[region.name] = model
        return models

    def release(self, models: dict[str, RegionModel]) -> None:
        """Detach an engine's models from the shared machines."""
        for name, model in models.items():
            self.machines[name].remove_model(model)

    def trigger(self, region: str, model: RegionModel, state: str, event: str,
                engine: Any, payload: Any) -> str:
        """Fire ``event`` on one region from ``state``; return the region's new state."""
        if event not in self.events[region]:
            return state
        if model.state != state:
            self.machines[region].set_state(state, model)
        model.trigger(event, engine=engine, payload=payload)  # type: ignore[attr-defined]
        return model.state


_BUILT: dict[int, RegionMachines] = {}  # id(chart) -> machines (which keep the chart alive)


def build_machines(chart: Chart, guards: Registry, actions: Registry) -> RegionMachines:
    """The region machines of ``chart``, built once per chart and process."""
    m = _BUILT.get(id(chart))
    if m is None or m.chart is not chart:
        m = _BUILT[id(chart)] = RegionMachines(chart, guards, actions)
    return m
