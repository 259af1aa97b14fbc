"""The registry: the guards and actions a chart may name, and what the engine needs of a chart.

Rules register themselves with :data:`RULES` (``@RULES.guard("name")``,
``@RULES.action("name", Payload, ...)``). An action declares the payload classes it reads;
the chart loader checks every event routed to it against them (``input:`` of input events,
``payload:`` of internal events), so a chart cannot route an event to an action that would
misread it. :class:`Registry` is the :class:`~turnfsm.chart.Vocabulary` the loader takes.
"""

from __future__ import annotations

import typing
from collections.abc import Callable
from typing import Any, TypeVar

import attrs

from .. import events as ev
from .._methods import attrs_eq, attrs_hash, attrs_repr
from ..chart import Chart
from ..options import EngineOptions
from .records import PAYLOADS

# rules take (the Context, the event's payload); the registry does not need to know the
# Context's type (which would tie it to every rule's world)
GuardFn = Callable[[Any, Any], bool]
ActionFn = Callable[[Any, Any], None]
G = TypeVar("G", bound=Callable[..., bool])
A = TypeVar("A", bound=Callable[..., None])


@attrs.frozen(repr=False, eq=False)
class ActionSpec:
    """A registered action and the payload classes it accepts."""

    __repr__ = attrs_repr
    __eq__ = attrs_eq
    __hash__ = attrs_hash

    fn: ActionFn
    accepts: tuple[type, ...]


# The regions, states and events the engine's code refers to by name: a chart must declare
# them; everything else about a chart is free.
REQUIRED_STATES: dict[str, frozenset[str]] = {
    "lifecycle": frozenset({"running", "closed"}),
    "mode": frozenset({"vad", "stt", "manual", "realtime"}),
    "vad_input": frozenset({"attached", "detached"}),
    "stt_input": frozenset({"attached", "detached"}),
    "detector": frozenset({"attached", "detached"}),
    "agent_speech": frozenset({"speaking"}),
    "boundary": frozenset({"active"}),
    "overlap": frozenset({"open"}),
    "user_speech": frozenset({"speaking"}),
    "turn": frozenset({"idle", "open", "predicting", "delivering"}),
    "authority": frozenset({"none", "manual_committed", "stt_committed", "stt_awaiting_final"}),
    "commit": frozenset({"awaiting_final"}),
}
def input_chart_events() -> frozenset[str]:
    """The chart events the input classes raise (their ``chart_event``/``chart_events``)."""
    names: set[str] = set()
    for cls in ev.input_classes():
        if cls.chart_event is not None:
            names.add(cls.chart_event)
        if cls.chart_events is not None:
            names.update(cls.chart_events)
    return frozenset(names)


REQUIRED_EVENTS = frozenset({
    "to_vad", "to_stt", "to_manual", "to_realtime", "final", "final_settled", "preflight",
    "speech_onset", "speech_offset", "eou_trigger", "wait_due", "vad_stream_ended",
    "decision_started", "decision_declined", "feedback_started", "feedback_ended", "eou_deadline",
    "commit_timeout", "boundary_expired", "vad_attach", "vad_detach", "stt_attach",
    "stt_detach", "detector_attach", "detector_detach", "decision_dropped",
    "left_stt", "agent_over_user", "wait_begins", "wait_due_soon", "vad_stream_closed",
    "start", "speech_started", "speech_ended",
    "announce_agent", "commit_made", "commit_finalized", "turn_delivered",
    "decision_abandoned",
    "commit_finalizes", "commit_finalizes_after_final", "commit_cancelled", "close_settled",
    "released_final", "released_preflight", "released_interim", "released_start",
    "released_end", "gate_opened", "words_interrupted",
    *input_chart_events(),  # the input classes' own (turnfsm.events)
})


# The internal events the engine's rules raise onto the internal queue
# (:meth:`~turnfsm.core.context.Context.raise_`): a chart declares their place, ``after: N``.
QUEUED_EVENTS = frozenset({
    "wait_begins", "wait_due_soon", "vad_stream_ended", "commit_finalizes",
    "commit_finalizes_after_final", "commit_cancelled", "close_settled",
})


def _input_classes() -> dict[str, type]:
    # from the module's namespace, not Input.__subclasses__(): attrs replaces each slotted
    # class, and the replaced originals linger among the subclasses until collected
    return {name: obj for name, obj in vars(ev).items()
            if isinstance(obj, type) and issubclass(obj, ev.Input)}


#: A region and the states of it a rule reads.
Need = tuple[str, frozenset[str]]


class Registry:
    """Named guards and actions, and the classes events may carry."""

    def __init__(self) -> None:
        self.guards: dict[str, GuardFn] = {}
        self.actions: dict[str, ActionSpec] = {}
        self.payloads: dict[str, type] = {c.__name__: c for c in PAYLOADS}
        self.payloads.update(_input_classes())
        # rules that read regions only some charts have: a chart naming them needs them
        self.needs: dict[str, tuple[Need, ...]] = {}

    def _needs(self, name: str, needs: Need | tuple[Need, ...] | None) -> None:
        if needs is not None:
            self.needs[name] = (needs,) if isinstance(needs[0], str) else needs

    def guard(self, name: str, *, needs: Need | tuple[Need, ...] | None = None
              ) -> Callable[[G], G]:
        """Register a guard under ``name`` (``needs``: a region and the states it reads, or
        several such pairs, which a chart naming the guard must declare)."""
        def deco(fn: G) -> G:
            if name in self.guards:
                raise ValueError(f"guard {name!r} is registered twice")
            self.guards[name] = fn
            self._needs(name, needs)
            return fn
        return deco

    def action(self, name: str, *accepts: type,
               needs: Need | tuple[Need, ...] | None = None) -> Callable[[A], A]:
        """Register an action under ``name``; ``accepts`` are the payload classes it reads
        (none given: it does not read its payload); ``needs`` as for :meth:`guard`."""
        def deco(fn: A) -> A:
            if name in self.actions:
                raise ValueError(f"action {name!r} is registered twice")
            self.actions[name] = ActionSpec(fn, accepts or (object,))
            self._needs(name, needs)
            return fn
        return deco

    # -- the chart loader's vocabulary -------------------------------------------------------

    def knows_guard(self, name: str) -> bool:
        """Whether ``name`` is a registered guard."""
        return name in self.guards

    def knows_action(self, name: str) -> bool:
        """Whether ``name`` is a registered action."""
        return name in self.actions

    def knows_payload(self, name: str) -> bool:
        """Whether ``name`` is a class an event may carry."""
        return name in self.payloads

    def option_problem(self, name: str, value: str | None) -> str | None:
        """What is wrong with the guard literal ``option: name`` (a boolean option is on) or
        ``option: name == value`` (an option with a set of named values has that one)."""
        fields = attrs.fields_dict(EngineOptions)
        if name not in fields:
            return (f"guard 'option: {name}' names unknown option {name!r} "
                    f"(options: {', '.join(fields)})")
        kind = typing.get_type_hints(EngineOptions)[name]
        if value is None:
            if kind is not bool:
                return (f"guard 'option: {name}' needs a boolean option; {name} is not one "
                        f"(write 'option: {name} == VALUE')")
            return None
        values = [a for arg in typing.get_args(kind) for a in
                  (typing.get_args(arg) or (arg,)) if isinstance(a, str)]
        if value not in values:
            return (f"guard 'option: {name} == {value}': {name} is never {value!r}"
                    + (f" (values: {', '.join(values)})" if values else ""))
        return None

    def action_accepts(self, action: str, payload: str | None) -> bool:
        """Whether ``action`` accepts a payload of class ``payload`` (None: no payload)."""
        cls = type(None) if payload is None else self.payloads.get(payload)
        return cls is not None and issubclass(cls, self.actions[action].accepts)

    def requirements(self, chart: Chart) -> list[str]:
        """Problems that stop the engine from running ``chart``."""
        problems = []
        regions = {r.name: r for r in chart.regions}
        for name, states in sorted(REQUIRED_STATES.items()):
            r = regions.get(name)
            if r is None:
                problems.append(f"{chart.source}:1: the engine needs a region {name!r}")
                continue
            for st in sorted(states - set(r.states)):
                problems.append(f"{chart.source}:{r.line}: region {name!r} needs a state {st!r}")
        for e in sorted(REQUIRED_EVENTS - set(chart.events)):
            problems.append(f"{chart.source}:1: the engine needs an event {e!r}")
        for e in sorted(QUEUED_EVENTS & set(chart.events)):
            spec = chart.events[e]
            if spec.kind != "internal" or spec.after < 1:
                problems.append(f"{chart.source}:{spec.line}: the engine queues event {e!r} "
                                "(its handlers read what the raising transition did): "
                                "declare it internal, with 'after: N' (N >= 1), not 'now'")
        for name in sorted((chart.guard_names | chart.action_names) & set(self.needs)):
            for rname, states in self.needs[name]:
                r = regions.get(rname)
                if r is None or not states <= set(r.states):
                    problems.append(f"{chart.source}:1: {name!r} reads region {rname!r} with "
                                    f"states {sorted(states)}; the chart does not declare them")
        return problems


RULES = Registry()
