"""The frozen chart: regions in dispatch order, declared events, transitions.

A :class:`Chart` is made by :mod:`turnfsm.chart.loader` and never changes. Whatever is
derived from it for running (the engine's compiled dispatch table, the ``transitions``
machines) is kept in the chart's own :attr:`Chart.derived` slot, so it lives and dies with
the chart: no process-global cache keyed by ``id()``.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any, Literal

import attrs

from .._methods import attrs_eq, attrs_hash, attrs_repr

EventKind = Literal["input", "data", "timer", "internal"]


GuardKind = Literal["rule", "in", "option"]
#: The guard literals besides registered rule names (``in: REGION.STATE``, SCXML's ``In()``;
#: ``option: NAME`` or ``option: NAME == VALUE``).
LITERALS = ("in", "option")
_LITERAL = re.compile(r"(in|option)\s*:\s*(\S.*)")


@attrs.frozen(repr=False, eq=False)
class Guard:
    """A guard literal: ``name`` must be true (or false when ``negated``).

    ``name`` is a registered guard's name, or one of the literals, written canonically:
    ``in: REGION.STATE`` (the region is in that state) and ``option: NAME`` (a boolean
    option is on) or ``option: NAME == VALUE`` (an option has that value)."""

    __repr__ = attrs_repr
    __eq__ = attrs_eq
    __hash__ = attrs_hash

    name: str
    negated: bool = False

    def __str__(self) -> str:
        return f"not {self.name}" if self.negated else self.name

    @property
    def kind(self) -> GuardKind:
        """``rule`` (a registered guard), ``in`` or ``option``."""
        head = self.name.split(":", 1)[0]
        return head if head in LITERALS and ":" in self.name else "rule"  # type: ignore[return-value]

    @property
    def target(self) -> tuple[str, str | None]:
        """An ``in:`` literal's (region, state) or an ``option:`` literal's (name, value)
        (value None: a boolean option is on)."""
        body = self.name.split(":", 1)[1].strip()
        if self.kind == "in":
            region, _, state = body.partition(".")
            return region.strip(), state.strip()
        name, eq, value = body.partition("==")
        return name.strip(), value.strip() if eq else None


def guard_term(term: Any) -> Guard | None:
    """A guard as a chart writes it: a name (``g``, ``not g``), or a literal written as a
    one-key mapping (``{in: r.s}``, ``{not in: r.s}``, ``{option: o}``; YAML reads
    ``[g, in: r.s]`` so) or as a string (``"in: r.s"``). None when it is none of these."""
    if isinstance(term, dict) and len(term) == 1:
        ((key, value),) = term.items()
        if not isinstance(key, str) or not isinstance(value, str) or not value.strip():
            return None
        neg = key.startswith("not ")
        head = key[4:].strip() if neg else key.strip()
        if head not in LITERALS:
            return None
        term = f"{head}: {value}"
    elif not isinstance(term, str) or not term.strip():
        return None
    else:
        neg = term.startswith("not ")
        term = term[4:] if neg else term
    name = term.strip()
    m = _LITERAL.fullmatch(name)
    if m:
        body = m[2].strip()
        if m[1] == "in":
            body = ".".join(p.strip() for p in body.split(".", 1))
        elif "==" in body:
            left, right = body.split("==", 1)
            body = f"{left.strip()} == {right.strip()}"
        name = f"{m[1]}: {body}"
    return Guard(name, neg)


@attrs.frozen(repr=False, eq=False)
class Transition:
    """One transition of a region (``dest`` None = stay, an internal transition)."""

    __repr__ = attrs_repr
    __eq__ = attrs_eq
    __hash__ = attrs_hash

    region: str
    event: str
    source: str
    dest: str | None
    guards: tuple[Guard, ...]
    actions: tuple[str, ...]
    line: int


@attrs.frozen(repr=False, eq=False)
class Region:
    """A parallel region: its states, initial state and doc strings."""

    __repr__ = attrs_repr
    __eq__ = attrs_eq
    __hash__ = attrs_hash

    name: str
    initial: str
    states: tuple[str, ...]
    docs: Mapping[str, str]
    doc: str
    line: int
    state_lines: Mapping[str, int] = attrs.field(factory=dict)
    # a seam: a small region where profiles differ (a profile replaces it whole); a state
    # only a profile's replacement enters may be unreachable in this chart
    seam: bool = False


@attrs.frozen(repr=False, eq=False)
class EventSpec:
    """A declared event: ``kind`` is input, data, timer or internal; ``payload`` names the
    class of what the event carries (the input class for input and data events); ``after``
    (internal events) is its declared place in the internal queue."""

    __repr__ = attrs_repr
    __eq__ = attrs_eq
    __hash__ = attrs_hash

    name: str
    kind: EventKind
    input: str | None
    doc: str
    payload: str | None = None
    line: int = 0
    # internal events: processed ``after`` passes of the engine's internal queue after the
    # event that raised it (0: ``after: now``, dispatched at once, nested, where it is raised)
    after: int = 0


@attrs.frozen(repr=False, eq=False)
class Chart:
    """A validated chart: regions in dispatch order, events, transitions."""

    __repr__ = attrs_repr
    __eq__ = attrs_eq
    __hash__ = attrs_hash

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
        """Every registered guard the chart names (literals aside)."""
        return frozenset(g.name for t in self.transitions for g in t.guards
                         if g.kind == "rule")

    @property
    def action_names(self) -> frozenset[str]:
        """Every action name the chart uses."""
        return frozenset(a for t in self.transitions for a in t.actions)
