"""Loading and validating a state chart (``states.yaml``) into a frozen :class:`Chart`.

Every problem is reported with its YAML location (``states.yaml:LINE: regions[3] (gate)…``):
malformed YAML, unknown keys, unknown or unreachable states, undeclared events, events a
region handles in one state but neither handles nor ignores in another, two transitions
that could fire together, ``in:`` guard literals naming unknown regions or states, and,
given a :class:`Vocabulary` (the engine's registry), guard, action, option and payload names
it does not know, actions routed events whose payload they do not
accept, and regions, states or events the engine needs. This module imports no engine: the
registry is passed in.
"""

from __future__ import annotations

import functools
import os
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from ..errors import ChartError
from .model import Chart, EventSpec, Guard, Region, Transition, guard_term

if TYPE_CHECKING:
    import yaml


class Vocabulary(Protocol):
    """What a chart may name: the registry of the engine that will run it."""

    def knows_guard(self, name: str) -> bool:
        """Whether ``name`` is a registered guard."""

    def knows_action(self, name: str) -> bool:
        """Whether ``name`` is a registered action."""

    def knows_payload(self, name: str) -> bool:
        """Whether ``name`` is a class an event may carry (inputs and internal records)."""

    def action_accepts(self, action: str, payload: str | None) -> bool:
        """Whether ``action`` accepts a payload of class ``payload`` (None: no payload)."""

    def option_problem(self, name: str, value: str | None) -> str | None:
        """What is wrong with the guard literal ``option: name`` (``value`` None) or
        ``option: name == value``, or None."""

    def requirements(self, chart: Chart) -> list[str]:
        """Problems that stop the engine from running ``chart`` (regions, states, events)."""

# -- YAML with line numbers -----------------------------------------------------------------


class _LDict(dict[Any, Any]):
    line: int = 0


class _LList(list[Any]):
    line: int = 0


def _construct_map(loader: Any, node: yaml.MappingNode) -> _LDict:
    import yaml
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


def _construct_seq(loader: Any, node: yaml.SequenceNode) -> _LList:
    lst = _LList(loader.construct_object(n, deep=True) for n in node.value)
    lst.line = node.start_mark.line + 1
    return lst


@functools.cache
def _loader() -> Any:
    """The YAML loader whose mappings and lists know their line (yaml is imported on the
    first parse: a command that reads no chart, or a cached profile, never pays for it)."""
    import yaml

    class _Loader(getattr(yaml, "CSafeLoader", yaml.SafeLoader)):  # type: ignore[misc]
        pass

    _Loader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _construct_map)
    _Loader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_SEQUENCE_TAG, _construct_seq)
    return _Loader


def _line(obj: Any, default: int) -> int:
    return int(getattr(obj, "line", default) or default)


# -- loading -------------------------------------------------------------------------------

_TOP_KEYS = {"chart", "version", "events", "regions"}
_EVENT_KEYS = {"input", "data", "timer", "internal", "doc", "payload", "after"}
_REGION_KEYS = {"name", "doc", "initial", "states", "transitions", "ignore", "ignore_in",
                "seam"}
_TRANSITION_KEYS = {"event", "source", "dest", "guard", "actions", "doc"}


def _names(value: Any) -> list[str] | None:
    if isinstance(value, str):
        return [value]
    if isinstance(value, list) and all(isinstance(v, str) for v in value):
        return list(value)
    return None


def parse_yaml(text: str, source: str) -> Any:
    """YAML text as plain data whose mappings and lists know their line (ChartError when
    malformed)."""
    import yaml
    try:
        doc = yaml.load(text, Loader=_loader())
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None) or getattr(exc, "context_mark", None)
        line = mark.line + 1 if mark is not None else 1
        problem = getattr(exc, "problem", None) or str(exc)
        ctx, cmark = getattr(exc, "context", None), getattr(exc, "context_mark", None)
        if ctx and cmark is not None and cmark is not mark:
            problem += f" ({ctx} at line {cmark.line + 1})"
        raise ChartError([f"{source}:{line}: malformed YAML: {problem}"], source) from None
    except RecursionError:
        raise ChartError([f"{source}:1: malformed YAML: nested too deeply"], source) from None
    return doc


def load_chart(text: str, source: str = "states.yaml", *,
               registry: Vocabulary | None = None) -> Chart:
    """Parse and validate chart ``text``; raise :class:`ChartError` listing every problem.

    Without a ``registry`` only the chart's own consistency is checked.
    """
    return build_chart(parse_yaml(text, source), source, registry=registry)


def build_chart(doc: Any, source: str, *, registry: Vocabulary | None = None) -> Chart:
    """Validate a parsed chart document (see :func:`parse_yaml`) into a :class:`Chart`."""
    problems: list[str] = []

    def bad(line: int, msg: str) -> None:
        problems.append(f"{source}:{line}: {msg}")

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
        payload = spec.get("payload")
        if kind in ("input", "data"):
            if not isinstance(inp, str):
                bad(line, f"events.{name}: an input event needs 'input: <InputClass>'")
            elif registry is not None and not registry.knows_payload(inp):
                bad(line, f"events.{name}: unknown input class {inp!r}")
            if payload is not None:
                bad(line, f"events.{name}: an input event carries its input; drop 'payload'")
            payload = inp
        elif inp is not None:
            bad(line, f"events.{name}: only input and data events name an 'input'")
        elif payload is not None and not isinstance(payload, str):
            bad(line, f"events.{name}: 'payload' must be a class name")
            payload = None
        elif payload is not None and registry is not None and not registry.knows_payload(payload):
            bad(line, f"events.{name}: unknown payload class {payload!r}")
        # internal events: `after: now` (0) dispatches where raised, nested; `after: N`
        # (default 1) queues the event N passes of the internal queue later
        after = spec.get("after", 1 if kind == "internal" else 0)
        if "after" in spec and kind != "internal":
            bad(line, f"events.{name}: only internal events are queued ('after')")
            after = 0
        elif kind != "internal" or after == "now":
            after = 0
        elif isinstance(after, bool) or not isinstance(after, int) or after < 1:
            bad(line, f"events.{name}: 'after' must be 'now' or a whole number of queue "
                      f"passes >= 1, not {after!r}")
            after = 1
        events[name] = EventSpec(name, kind, inp if isinstance(inp, str) else None,  # type: ignore[arg-type]
                                 str(spec.get("doc", "")),
                                 payload if isinstance(payload, str) else None, line, after)

    # regions
    regions: list[Region] = []
    transitions: list[Transition] = []
    ignored: set[tuple[str, str, str]] = set()
    raw_regions = doc.get("regions")
    if not isinstance(raw_regions, list) or not raw_regions:
        bad(_line(doc, 1), "'regions' must be a non-empty list")
        raw_regions = []
    seen_regions: set[str] = set()
    # every region's states, for the `in:` literals (a guard may name a later region)
    declared = {raw["name"]: {str(st) for st in raw["states"]} for raw in raw_regions
                if isinstance(raw, dict) and isinstance(raw.get("name"), str)
                and isinstance(raw.get("states"), dict)}
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
        seam = raw.get("seam", False)
        if not isinstance(seam, bool):
            bad(rline, f"{where}: 'seam' must be true or false")
            seam = False
        region = Region(rname, str(initial), states, docs, str(raw.get("doc", "")), rline, slines,
                        seam)
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
            raw_guard = rt.get("guard") or []
            if not isinstance(raw_guard, list):
                raw_guard = [raw_guard]
            for term in raw_guard:
                g = guard_term(term)
                if g is None:
                    bad(tline, f"{twhere}: guard {term!r} is neither a guard name nor a "
                               "literal ('in: REGION.STATE', 'option: NAME', "
                               "'option: NAME == VALUE', each optionally 'not ...')")
                    continue
                problem = _guard_problem(g, declared, registry)
                if problem:
                    bad(tline, f"{twhere}: {problem}")
                gl.append(g)
            acts = _names(rt.get("actions") or [])
            if acts is None:
                bad(tline, f"{twhere}: 'actions' must be a list of names")
                acts = []
            known_acts = []
            for a in acts:
                if registry is not None and not registry.knows_action(a):
                    bad(tline, f"{twhere}: action {a!r} is not registered")
                else:
                    known_acts.append(a)
            for e in evs:
                if not check_event(e, tline, twhere):
                    continue
                carried = events[e].payload
                for a in known_acts:
                    if registry is not None and not registry.action_accepts(a, carried):
                        bad(tline, f"{twhere}: action {a!r} does not accept what event {e!r} "
                                   f"carries ({carried or 'nothing'})")
                for s in sources:
                    if check_state(s, tline, f"{twhere} source"):
                        transitions.append(Transition(rname, e, s, dest, tuple(gl), tuple(acts),
                                                      tline))

    chart = Chart(source, tuple(regions), events, tuple(transitions), frozenset(ignored))
    _semantic_checks(chart, bad)
    if registry is not None:
        problems.extend(registry.requirements(chart))
    if problems:
        raise ChartError(problems, source)
    return chart


def _guard_problem(g: Guard, declared: dict[str, set[str]],
                   registry: Vocabulary | None) -> str | None:
    """What is wrong with guard ``g`` (None: nothing)."""
    if g.kind == "in":
        region, state = g.target
        if region not in declared:
            return (f"guard '{g.name}' names unknown region {region!r} "
                    f"(regions: {', '.join(declared)})")
        if state not in declared[region]:
            return (f"guard '{g.name}' names unknown state {state!r} of region {region!r} "
                    f"(states: {', '.join(sorted(declared[region]))})")
        return None
    if g.kind == "option":
        if registry is None:
            return None
        name, value = g.target
        return registry.option_problem(name, value)
    if registry is not None and not registry.knows_guard(g.name):
        return f"guard {g.name!r} is not registered"
    return None


def _exclusive(a: Transition, b: Transition) -> bool:
    if any(Guard(g.name, not g.negated) in b.guards for g in a.guards):
        return True
    # `in: r.x` and `in: r.y`: one region is in one state at a time; `option: o == x` and
    # `option: o == y`: an option has one value at a time
    for kind in ("in", "option"):
        held = {g.target for g in a.guards if g.kind == kind and not g.negated
                and g.target[1] is not None}
        if any(g.kind == kind and not g.negated and g.target[0] == r and
               g.target[1] is not None and g.target[1] != v
               for g in b.guards for r, v in held):
            return True
    return False


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
            if s not in reach and not region.seam:
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


# -- chart files -----------------------------------------------------------------------------


def packaged_dir() -> Path:
    """The installed package's folder (``turnfsm/``), where its data files are: what
    ``importlib.resources.files("turnfsm")`` gives for a package installed as files, without
    importing ``importlib.resources`` (with ``tempfile``, ``shutil``, ``zipfile`` and the
    compression modules, some 6 ms of every command's start-up)."""
    return Path(__file__).parent.parent


def packaged_chart_path() -> Path:
    """The chart installed with the package (``turnfsm/states.yaml``, package data; in a
    checkout it is the repository's root ``states.yaml``)."""
    return packaged_dir() / "states.yaml"


#: The largest chart or profile file read (bytes): the packaged chart is about 60 kB.
MAX_CHART_BYTES = 4 * 1024 * 1024


def read_text_file(path: str | os.PathLike[str], what: str, source: str | None = None,
                   limit: int = MAX_CHART_BYTES) -> str:
    """The UTF-8 text of a regular file of at most ``limit`` bytes (ChartError naming
    ``source``, else the file, otherwise: a device such as /dev/zero is not read)."""
    p = Path(path)
    where = source or str(p)
    try:
        with open(p, "rb") as f:
            import stat
            if not stat.S_ISREG(os.fstat(f.fileno()).st_mode):
                raise ChartError([f"{where}: cannot read the {what} {p}: not a regular file"],
                                 where)
            data = f.read(limit + 1)
    except OSError as exc:
        raise ChartError([f"{where}: cannot read the {what} {p}: {exc.strerror or exc}"],
                         where) from None
    if len(data) > limit:
        raise ChartError([f"{where}: the {what} {p} is larger than {limit >> 20} MB"], where)
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = data[:exc.start].count(b"\n") + 1
        raise ChartError([f"{p}:{line}: the {what} is not UTF-8 text (byte {exc.start + 1})"],
                         str(p)) from None


def read_chart(path: str | os.PathLike[str], *, registry: Vocabulary | None = None) -> Chart:
    """Load and validate a chart file (against ``registry`` when given)."""
    p = Path(path)
    return load_chart(read_text_file(p, "chart"), str(p), registry=registry)
