"""Loading and validating the state chart (``states.yaml``) into a frozen :class:`Chart`.

The chart is parsed once per process (:func:`default_chart`) and shared by every session.
Every problem is reported with its YAML location (``states.yaml:LINE: regions[3] (gate)…``):
malformed YAML, unknown keys, unknown or unreachable states, undeclared events, events a
region handles in one state but neither handles nor ignores in another, two transitions
that could fire together, and guard or action names the registry does not know.
"""

from __future__ import annotations

import functools
import os
from collections.abc import Iterable, Mapping
from importlib import resources
from pathlib import Path
from typing import Any

import attrs
import yaml

from .errors import ChartError

# -- frozen spec ---------------------------------------------------------------------------


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
    """A declared event. ``kind`` is input, data, timer or internal."""

    name: str
    kind: str
    input: str | None
    doc: str


@attrs.frozen
class Chart:
    """A validated chart: regions in dispatch order, events, transitions."""

    source: str
    regions: tuple[Region, ...]
    events: Mapping[str, EventSpec]
    transitions: tuple[Transition, ...]
    ignored: frozenset[tuple[str, str, str]]  # (region, state, event)

    def region(self, name: str) -> Region:
        for r in self.regions:
            if r.name == name:
                return r
        raise KeyError(name)

    @property
    def guard_names(self) -> frozenset[str]:
        return frozenset(g.name for t in self.transitions for g in t.guards)

    @property
    def action_names(self) -> frozenset[str]:
        return frozenset(a for t in self.transitions for a in t.actions)


# -- YAML with line numbers -----------------------------------------------------------------


class _LDict(dict[Any, Any]):
    line: int = 0


class _LList(list[Any]):
    line: int = 0


class _Loader(yaml.SafeLoader):
    pass


def _construct_map(loader: _Loader, node: yaml.MappingNode) -> _LDict:
    d = _LDict()
    d.line = node.start_mark.line + 1
    seen: set[Any] = set()
    for knode, vnode in node.value:
        k = loader.construct_object(knode, deep=True)
        if not isinstance(k, (str, int, float, bool)) and k is not None:
            raise yaml.constructor.ConstructorError(
                None, None, "mapping keys must be plain names or numbers", knode.start_mark)
        if k in seen:
            raise yaml.constructor.ConstructorError(
                None, None, f"duplicate key {k!r}", knode.start_mark)
        seen.add(k)
        d[k] = loader.construct_object(vnode, deep=True)
    return d


def _construct_seq(loader: _Loader, node: yaml.SequenceNode) -> _LList:
    lst = _LList(loader.construct_object(n, deep=True) for n in node.value)
    lst.line = node.start_mark.line + 1
    return lst


_Loader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _construct_map)
_Loader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_SEQUENCE_TAG, _construct_seq)


def _line(obj: Any, default: int) -> int:
    return int(getattr(obj, "line", default) or default)


# -- loading -------------------------------------------------------------------------------

_TOP_KEYS = {"chart", "version", "events", "regions"}
_EVENT_KEYS = {"input", "data", "timer", "internal", "doc"}
_REGION_KEYS = {"name", "doc", "initial", "states", "transitions", "ignore", "ignore_in"}
_TRANSITION_KEYS = {"event", "source", "dest", "guard", "actions", "doc"}


def _names(value: Any) -> list[str] | None:
    if isinstance(value, str):
        return [value]
    if isinstance(value, list) and all(isinstance(v, str) for v in value):
        return list(value)
    return None


def load_chart(
    text: str,
    source: str = "states.yaml",
    *,
    guards: Iterable[str] | None = None,
    actions: Iterable[str] | None = None,
    inputs: Iterable[str] | None = None,
) -> Chart:
    """Parse and validate chart ``text``; raise :class:`ChartError` listing every problem.

    ``guards``/``actions`` are the registered names (None = not checked); ``inputs`` the
    known input class names.
    """
    problems: list[str] = []

    def bad(line: int, msg: str) -> None:
        problems.append(f"{source}:{line}: {msg}")

    try:
        doc = yaml.load(text, Loader=_Loader)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None) or getattr(exc, "context_mark", None)
        line = mark.line + 1 if mark is not None else 1
        problem = getattr(exc, "problem", None) or str(exc)
        ctx, cmark = getattr(exc, "context", None), getattr(exc, "context_mark", None)
        if ctx and cmark is not None and cmark is not mark:
            problem += f" ({ctx} at line {cmark.line + 1})"
        raise ChartError([f"{source}:{line}: malformed YAML: {problem}"], source) from None
    if not isinstance(doc, dict):
        raise ChartError([f"{source}:1: the chart must be a mapping with 'events' and 'regions'"],
                         source)
    for k in doc:
        if k not in _TOP_KEYS:
            bad(_line(doc, 1), f"unknown top-level key {k!r} (expected one of {sorted(_TOP_KEYS)})")

    # events
    events: dict[str, EventSpec] = {}
    raw_events = doc.get("events")
    if not isinstance(raw_events, dict) or not raw_events:
        bad(_line(doc, 1), "'events' must be a non-empty mapping of event names")
        raw_events = {}
    known_inputs = set(inputs) if inputs is not None else None
    for name, spec in raw_events.items():
        line = _line(spec, _line(raw_events, 1))
        if not isinstance(spec, dict):
            bad(line, f"events.{name}: must be a mapping")
            continue
        for k in spec:
            if k not in _EVENT_KEYS:
                bad(line, f"events.{name}: unknown key {k!r}")
        kinds = [k for k in ("data", "timer", "internal") if spec.get(k)]
        if len(kinds) > 1:
            bad(line, f"events.{name}: at most one of data/timer/internal")
        kind = kinds[0] if kinds else "input"
        inp = spec.get("input")
        if kind in ("input", "data"):
            if not isinstance(inp, str):
                bad(line, f"events.{name}: an input event needs 'input: <InputClass>'")
            elif known_inputs is not None and inp not in known_inputs:
                bad(line, f"events.{name}: unknown input class {inp!r}")
        events[name] = EventSpec(name, kind, inp if isinstance(inp, str) else None,
                                 str(spec.get("doc", "")))

    # regions
    regions: list[Region] = []
    transitions: list[Transition] = []
    ignored: set[tuple[str, str, str]] = set()
    raw_regions = doc.get("regions")
    if not isinstance(raw_regions, list) or not raw_regions:
        bad(_line(doc, 1), "'regions' must be a non-empty list")
        raw_regions = []
    seen_regions: set[str] = set()
    guard_set = set(guards) if guards is not None else None
    action_set = set(actions) if actions is not None else None
    for ri, raw in enumerate(raw_regions):
        rline = _line(raw, _line(raw_regions, 1))
        if not isinstance(raw, dict):
            bad(rline, f"regions[{ri}]: must be a mapping")
            continue
        rname = raw.get("name")
        where = f"regions[{ri}] ({rname})"
        if not isinstance(rname, str) or not rname:
            bad(rline, f"regions[{ri}]: needs a 'name'")
            continue
        if rname in seen_regions:
            bad(rline, f"{where}: duplicate region name")
        seen_regions.add(rname)
        for k in raw:
            if k not in _REGION_KEYS:
                bad(rline, f"{where}: unknown key {k!r} (expected one of {sorted(_REGION_KEYS)})")
        raw_states = raw.get("states")
        if not isinstance(raw_states, dict) or not raw_states:
            bad(rline, f"{where}: 'states' must be a non-empty mapping")
            continue
        states = tuple(str(s) for s in raw_states)
        docs = {str(s): str((v or {}).get("doc", "")) if isinstance(v, dict) else ""
                for s, v in raw_states.items()}
        initial = raw.get("initial")
        if initial not in states:
            bad(rline, f"{where}: initial state {initial!r} is not one of {list(states)}")
            initial = states[0]
        slines = {str(st): _line(v, _line(raw_states, rline)) for st, v in raw_states.items()}
        region = Region(rname, str(initial), states, docs, str(raw.get("doc", "")), rline, slines)
        regions.append(region)

        def check_state(s: Any, line: int, what: str, region: Region = region,
                        where: str = where) -> bool:
            if s not in region.states:
                bad(line, f"{where}: {what} names unknown state {s!r}"
                          f" (states: {', '.join(region.states)})")
                return False
            return True

        def check_event(e: Any, line: int, what: str, where: str = where) -> bool:
            if e not in events:
                bad(line, f"{where}: {what} names undeclared event {e!r}")
                return False
            if events[e].kind == "data":
                bad(line, f"{where}: {what} names data event {e!r}, handled before the machine")
                return False
            return True

        # ignores
        for e in _names(raw.get("ignore") or []) or []:
            if check_event(e, rline, "ignore"):
                for s in states:
                    ignored.add((rname, s, e))
        ign_in = raw.get("ignore_in") or {}
        if not isinstance(ign_in, dict):
            bad(rline, f"{where}: 'ignore_in' must map states to event lists")
            ign_in = {}
        for s, evs in ign_in.items():
            iline = _line(ign_in, rline)
            if not check_state(s, iline, "ignore_in"):
                continue
            names = _names(evs)
            if names is None:
                bad(iline, f"{where}: ignore_in.{s} must be a list of event names")
                continue
            for e in names:
                if check_event(e, iline, f"ignore_in.{s}"):
                    ignored.add((rname, str(s), e))

        raw_ts = raw.get("transitions") or []
        if not isinstance(raw_ts, list):
            bad(rline, f"{where}: 'transitions' must be a list")
            raw_ts = []
        for ti, rt in enumerate(raw_ts):
            tline = _line(rt, rline)
            twhere = f"{where}.transitions[{ti}]"
            if not isinstance(rt, dict):
                bad(tline, f"{twhere}: must be a mapping")
                continue
            for k in rt:
                if k not in _TRANSITION_KEYS:
                    bad(tline, f"{twhere}: unknown key {k!r} (expected {sorted(_TRANSITION_KEYS)})")
            evs = _names(rt.get("event"))
            if not evs:
                bad(tline, f"{twhere}: needs 'event' (a name or a list of names)")
                continue
            src_raw = rt.get("source")
            if src_raw == "*":
                sources = list(states)
            else:
                sources = _names(src_raw) or []
                if not sources:
                    bad(tline, f"{twhere}: needs 'source' (a state, a list, or '*')")
            dest = rt.get("dest")
            if dest is not None and not check_state(dest, tline, f"{twhere} dest"):
                dest = None
            gl: list[Guard] = []
            raw_guard = _names(rt.get("guard") or [])
            if raw_guard is None:
                bad(tline, f"{twhere}: 'guard' must be a guard name or a list of names")
                raw_guard = []
            for g in raw_guard:
                neg = g.startswith("not ")
                gname = g[4:].strip() if neg else g.strip()
                if guard_set is not None and gname not in guard_set:
                    bad(tline, f"{twhere}: guard {gname!r} is not registered")
                gl.append(Guard(gname, neg))
            acts = _names(rt.get("actions") or [])
            if acts is None:
                bad(tline, f"{twhere}: 'actions' must be a list of names")
                acts = []
            for a in acts:
                if action_set is not None and a not in action_set:
                    bad(tline, f"{twhere}: action {a!r} is not registered")
            for e in evs:
                if not check_event(e, tline, twhere):
                    continue
                for s in sources:
                    if check_state(s, tline, f"{twhere} source"):
                        transitions.append(Transition(rname, e, s, dest, tuple(gl), tuple(acts),
                                                      tline))

    chart = Chart(source, tuple(regions), events, tuple(transitions), frozenset(ignored))
    _semantic_checks(chart, bad)
    if problems:
        raise ChartError(problems, source)
    return chart


def _exclusive(a: Transition, b: Transition) -> bool:
    return any(Guard(g.name, not g.negated) in b.guards for g in a.guards)


def _semantic_checks(chart: Chart, bad: Any) -> None:
    by_region: dict[str, list[Transition]] = {}
    for t in chart.transitions:
        by_region.setdefault(t.region, []).append(t)
    handled_events: set[str] = set()
    for region in chart.regions:
        ts = by_region.get(region.name, [])
        where = f"region {region.name!r}"
        # reachability
        reach = {region.initial}
        frontier = [region.initial]
        while frontier:
            s = frontier.pop()
            for t in ts:
                if t.source == s and t.dest is not None and t.dest not in reach:
                    reach.add(t.dest)
                    frontier.append(t.dest)
        for s in region.states:
            if s not in reach:
                bad(region.state_lines.get(s, region.line),
                    f"{where}: state {s!r} is unreachable from {region.initial!r}")
        # conflicts
        groups: dict[tuple[str, str], list[Transition]] = {}
        for t in ts:
            groups.setdefault((t.source, t.event), []).append(t)
        for (s, e), group in sorted(groups.items()):
            for i, a in enumerate(group):
                for b in group[i + 1:]:
                    if not _exclusive(a, b):
                        bad(b.line, f"{where}: transitions at lines {a.line} and {b.line} could "
                                    f"both fire on {e!r} in state {s!r}; make their guards "
                                    f"exclusive (one needs 'g', the other 'not g')")
        # completeness within the region's alphabet
        alphabet = {t.event for t in ts} | {e for (r, _s, e) in chart.ignored if r == region.name}
        handled_events |= {t.event for t in ts}
        for e in sorted(alphabet):
            for s in region.states:
                if (s, e) not in groups and (region.name, s, e) not in chart.ignored:
                    bad(region.state_lines.get(s, region.line),
                        f"{where}: state {s!r} neither handles nor ignores event "
                                     f"{e!r} (add a transition or list it under ignore_in.{s})")
                if (s, e) in groups and (region.name, s, e) in chart.ignored:
                    bad(region.state_lines.get(s, region.line),
                        f"{where}: state {s!r} both handles and ignores {e!r}")
    for name, ev in chart.events.items():
        if ev.kind != "data" and name not in handled_events:
            bad(1, f"event {name!r} is declared but no region handles it")


# -- the default chart ----------------------------------------------------------------------

ENV_CHART = "TURNFSM_CHART"


def default_chart_path() -> Path:
    """Where the chart the code runs lives: the repository's root ``states.yaml`` in a
    checkout, else the copy installed inside the package."""
    env = os.environ.get(ENV_CHART)
    if env:
        return Path(env)
    here = Path(__file__).resolve()
    repo = here.parents[2] / "states.yaml"
    if repo.is_file() and (here.parents[2] / "src" / "turnfsm").is_dir():
        return repo
    return Path(str(resources.files("turnfsm") / "states.yaml"))


def read_chart(path: str | os.PathLike[str] | None = None) -> Chart:
    """Load and validate a chart file against the engine's registry."""
    from .engine import ACTIONS, GUARDS, check_chart  # the registry lives with the engine
    from .events import Input

    p = Path(path) if path is not None else default_chart_path()
    try:
        text = p.read_text(encoding="utf-8")
    except OSError as exc:
        raise ChartError([f"{p}: cannot read the chart: {exc.strerror or exc}"],
                         str(p)) from None
    names = {c.__name__ for c in _all_subclasses(Input)}
    chart = load_chart(text, str(p), guards=GUARDS, actions=ACTIONS, inputs=names)
    problems = check_chart(chart)
    if problems:
        raise ChartError(problems, str(p))
    return chart


def _all_subclasses(cls: type) -> set[type]:
    out: set[type] = set()
    sub: type
    for sub in cls.__subclasses__():
        out.add(sub)
        out |= _all_subclasses(sub)
    return out


@functools.cache
def default_chart() -> Chart:
    """The default chart, parsed and validated once per process."""
    return read_chart(None)
