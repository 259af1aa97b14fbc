"""Measure how much of turnfsm's behaviour lives outside the chart (the figures of issue 23).

Run from the repository root, with the package on the path::

    PYTHONPATH=src python scripts/chart_metrics.py            # every figure
    PYTHONPATH=src python scripts/chart_metrics.py walk       # one section (see SECTIONS)
    PYTHONPATH=src python scripts/chart_metrics.py --json     # machine-readable
    PYTHONPATH=src python scripts/chart_metrics.py baseline --out DIR   # replay digests

Sections:

* ``walk``: one VAD end of speech, from ``Session.push_vad`` to the ``on_end_of_turn`` hook,
  recorded with ``sys.setprofile`` on a real :class:`~turnfsm.runtime.Session` (default
  profile, telemetry on, virtual clock), filtered to frames of the ``turnfsm`` package:
  the functions and modules it runs, how often it changes module (a call into, or a return
  to, a frame of another module; frames outside the package are transparent), and how many
  of those changes go back to a module it had already left. Also the deepest nesting of
  chart dispatches and of package frames (below the input call) in the walk and in a held
  final released at the agent's end.
* ``events``: the files that name an input event kind today (its class, its chart event, its
  trace kind), for every kind: what a new kind has to touch.
* ``options``: the files that name an ``EngineOptions`` field (or its trace header key).
* ``decisions``: Python decision points in the engine's actions (the AST lint of
  ``tests/test_chart_decisions.py``) under ``core/rules/``, and the same lint over the rest
  of ``core/``.
* ``context``: the attributes of ``Context`` and the modules that assign each.
* ``shells``: where ``runtime/``, ``telemetry/``, ``adapters/`` (and ``replay/``) read region
  or state names.
* ``gate``: the transitions of the base gate and of the default profile's replacement.
* ``baseline`` (only when named): every conformance trace replayed under both runtimes,
  both backends (direct) and both profiles, with one digest per combination (see :func:`baseline`).
* ``structure``: the import structure: rooms (the package's top-level folders and modules;
  inside ``core/``, its modules with ``rules/`` as one room), floors (a room stands one
  floor above the highest room it imports) and arrows (room -> room imports).
"""

from __future__ import annotations

import ast
import json
import re
import sys
import tempfile
from collections import Counter, defaultdict
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
SRC = ROOT / "src" / "turnfsm"
sys.path.insert(0, str(ROOT))  # tests.test_chart_decisions holds the lint

# -- walk ----------------------------------------------------------------------------------

#: The virtual clock's ``time()`` is called by asyncio itself (a test loop, not the walk).
SKIP_MODULES = frozenset({"turnfsm.runtime.virtual"})


class Walk:
    """A profile hook recording every frame of the turnfsm package, in order."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, str]] = []  # (module, qualname) per call
        self.current: list[str] = []  # the module after every call/return into the package
        self.depth = 0  # package frames open below the first recorded frame
        self.max_depth = 0
        self.dispatch = 0  # chart dispatches open
        self.max_dispatch = 0
        self.on = False
        self.cross_calls = 0  # calls whose caller is in another module of the package
        self.cross_calls_back = 0  # ... into a module the walk had already left
        self._entered: set[str] = set()

    def __call__(self, frame: Any, event: str, arg: Any) -> None:
        if not self.on or event not in ("call", "return"):
            return
        mod = frame.f_globals.get("__name__", "")
        if not mod.startswith("turnfsm") or mod in SKIP_MODULES:
            return
        name = frame.f_code.co_qualname
        if event == "call":
            caller = self.current[-1] if self.current else None
            if caller is not None and caller != mod:
                self.cross_calls += 1
                if mod in self._entered:
                    self.cross_calls_back += 1
            self._entered.add(mod)
            self.calls.append((mod, name))
            self._at(mod)
            self.depth += 1
            self.max_depth = max(self.max_depth, self.depth)
            if name == "TableDispatcher.dispatch":
                self.dispatch += 1
                self.max_dispatch = max(self.max_dispatch, self.dispatch)
        else:
            self.depth = max(0, self.depth - 1)
            if name == "TableDispatcher.dispatch":
                self.dispatch -= 1
            back = frame.f_back
            if back is not None:
                bmod = back.f_globals.get("__name__", "")
                if bmod.startswith("turnfsm") and bmod not in SKIP_MODULES:
                    self._at(bmod)

    def _at(self, mod: str) -> None:
        if not self.current or self.current[-1] != mod:
            self.current.append(mod)

    def guard_counts(self) -> dict[str, int]:
        """How often each registered guard ran in the walk."""
        from turnfsm.core.registry import RULES

        guards = {(fn.__module__, fn.__qualname__) for fn in RULES.guards.values()}
        # the chart's guard literals (``in: r.s``, ``option: o``) run as these functions
        literals = {("turnfsm.core.dispatch", "in_state_guard"): "in: (literals)",
                    ("turnfsm.core.dispatch", "option_on_guard"): "option: (literals)",
                    ("turnfsm.core.dispatch", "option_is_guard"): "option: (literals)"}
        return dict(Counter(literals.get((m, n), n) for m, n in self.calls
                            if (m, n) in guards or (m, n) in literals).most_common())

    def figures(self) -> dict[str, Any]:
        """Functions, modules, module changes and returns to a module already left."""
        seen: set[str] = set()
        back = 0
        for i, mod in enumerate(self.current):
            if i and mod in seen:
                back += 1
            seen.add(mod)
        return {
            "calls": len(self.calls),
            "functions": len(set(self.calls)),
            "modules": len(set(m for m, _ in self.calls)),
            "module_changes": max(0, len(self.current) - 1),
            "back_to_a_module_left": back,
            "calls_across_modules": self.cross_calls,
            "calls_back_into_a_module_left": self.cross_calls_back,
            "max_dispatch_nesting": self.max_dispatch,
            "max_frame_depth": self.max_depth,
            "by_module": dict(Counter(m for m, _ in set(self.calls)).most_common()),
            "guards_evaluated": self.guard_counts(),
        }


def _walk_vad_end() -> dict[str, Any]:
    from turnfsm import events as ev
    from turnfsm.runtime import Session
    from turnfsm.runtime.virtual import run_virtual

    walk = Walk()

    class Hooks:
        def on_end_of_turn(self, o: Any) -> bool:
            walk.on = False
            sys.setprofile(None)
            self.delivered = o
            return True

    async def main() -> dict[str, Any]:
        hooks = Hooks()
        s = Session(hooks=hooks, session_id="walk")
        s.push_audio(0.02, count=10)
        s.push_vad(ev.VadStartOfSpeech(speech_duration=0.1))
        for _ in range(5):
            await s.sleep(0.1)
            s.push_vad(ev.VadInferenceDone(raw_accumulated_speech=0.1, speech_duration=0.1))
        await s.sleep(0.1)
        s.push_stt(ev.SttFinal(text="I would like a table for two tonight.", language="en",
                               confidence=0.9))
        await s.sleep(0.2)
        sys.setprofile(walk)
        walk.on = True
        s.push_vad(ev.VadEndOfSpeech(silence_duration=0.3))
        await s.sleep(5.0)
        sys.setprofile(None)
        assert hasattr(hooks, "delivered"), "the end of turn did not reach the hook"
        await s.aclose()
        return walk.figures()

    return run_virtual(main())


def _walk_held_release() -> dict[str, Any]:
    """The agent's end releases a held final (default profile, a detector attached)."""
    from turnfsm import events as ev
    from turnfsm.runtime import Session
    from turnfsm.runtime.virtual import run_virtual

    walk = Walk()

    async def main() -> dict[str, Any]:
        s = Session({"interruption_detection": True}, session_id="held", telemetry=True)
        s.push_audio(0.02, count=10)
        s.agent_speech_started()
        await s.sleep(0.5)
        s.push_vad(ev.VadStartOfSpeech(speech_duration=0.1))
        await s.sleep(0.6)
        s.push_stt(ev.SttFinal(text="wait I want to book a table for four people",
                               language="en", confidence=0.9))
        await s.sleep(0.1)
        s.push_vad(ev.VadEndOfSpeech(silence_duration=0.3))
        await s.sleep(0.2)
        held = s.engine.in_state("gate", "holding") and bool(s.engine.cx.held)
        sys.setprofile(walk)
        walk.on = True
        s.agent_speech_ended()
        walk.on = False
        sys.setprofile(None)
        await s.aclose()
        assert held, "nothing was held when the agent stopped"
        return walk.figures()

    return run_virtual(main())


def walk() -> dict[str, Any]:
    """The walk of one VAD end of speech, and the nesting of a release at the agent's end."""
    return {"vad_end_to_hook": _walk_vad_end(), "held_final_at_agent_end": _walk_held_release()}


# -- files an event kind and an option touch -------------------------------------------------

_SCAN = ("src/turnfsm", "states.yaml", "profiles")


def _files() -> list[Path]:
    out: list[Path] = []
    for p in _SCAN:
        q = ROOT / p
        out.extend(sorted(q.rglob("*.py")) + sorted(q.rglob("*.yaml")) if q.is_dir() else [q])
    return [f for f in out if not f.is_symlink()]  # the package's links to the charts

#: Where an input event kind is plumbed through (the rest of the files naming it produce or
#: consume it: adapters, audio, tuning, plots).
PLUMBING = ("src/turnfsm/events.py", "states.yaml", "profiles/default.yaml",
            "src/turnfsm/core/engine.py", "src/turnfsm/core/registry.py",
            "src/turnfsm/core/rules/", "src/turnfsm/replay/trace.py",
            "src/turnfsm/replay/replay.py", "src/turnfsm/runtime/", "src/turnfsm/telemetry/",
            "src/turnfsm/core/context.py", "src/turnfsm/core/records.py")


def _naming(patterns: Iterable[str]) -> list[str]:
    rx = re.compile("|".join(patterns))
    return sorted(str(f.relative_to(ROOT)) for f in _files() if rx.search(f.read_text()))


def _trace_kinds() -> dict[str, set[str]]:
    """Input class -> trace kinds, read from the replay's ``apply`` (``k == "..."`` arms)."""
    tree = ast.parse((SRC / "replay" / "replay.py").read_text())
    kinds: dict[str, set[str]] = defaultdict(set)
    for fn in ast.walk(tree):
        if not (isinstance(fn, ast.FunctionDef) and fn.name == "apply"):
            continue
        for node in ast.walk(fn):
            if not isinstance(node, ast.If) or not isinstance(node.test, ast.Compare):
                continue
            names = [c.value for c in ast.walk(node.test)
                     if isinstance(c, ast.Constant) and isinstance(c.value, str)]
            classes = {a.attr for stmt in node.body for a in ast.walk(stmt)
                       if isinstance(a, ast.Attribute) and isinstance(a.value, ast.Name)
                       and a.value.id == "ev" and a.attr[:1].isupper()}
            for c in classes:
                kinds[c].update(names)
    return kinds


def events() -> dict[str, Any]:
    """For every input class: the files naming its class, chart event or trace kind."""
    from turnfsm import events as ev
    from turnfsm.core.profiles import get_profile

    chart = get_profile("livekit").chart
    chart_names: dict[str, set[str]] = defaultdict(set)
    for name, spec in chart.events.items():
        cls = getattr(spec, "input", None)
        if cls:
            chart_names[cls].add(name)
    kinds = _trace_kinds()
    classes = sorted(n for n, o in vars(ev).items()
                     if isinstance(o, type) and issubclass(o, ev.Input) and o is not ev.Input
                     and n not in ("SttEvent", "SttTranscript"))
    per: dict[str, list[str]] = {}
    plumbing: dict[str, list[str]] = {}
    for c in classes:
        # the class as code names it (ev.X, class X, an import, a chart's input: X)
        pats = [rf"\b(ev|events)\.{c}\b", rf"class {c}\b", rf"import [^\n]*\b{c}\b",
                rf"input: {c}\b"]
        # its chart events (a YAML key, a list item, an event: value, a quoted name)
        for n in chart_names.get(c, ()):
            pats += [rf"(^|\n)\s*{n}:", rf"event: {n}\b", rf"[\[,] ?{n}[\],]", rf"\"{n}\""]
        pats += [rf"[\"']{re.escape(k)}[\"']" for k in kinds.get(c, ())]  # its trace kinds
        per[c] = _naming(pats)
        plumbing[c] = [f for f in per[c] if f.startswith(PLUMBING)]
    counts = sorted(len(v) for v in per.values())
    plumb = sorted(len(v) for v in plumbing.values())
    return {"per_class": per, "plumbing_per_class": plumbing,
            "files": {c: len(v) for c, v in per.items()},
            "plumbing_files": {c: len(v) for c, v in plumbing.items()},
            "min": counts[0], "median": counts[len(counts) // 2], "max": counts[-1],
            "plumbing_min": plumb[0], "plumbing_median": plumb[len(plumb) // 2],
            "plumbing_max": plumb[-1]}


def options() -> dict[str, Any]:
    """For every EngineOptions field: the files that name it."""
    import attrs

    from turnfsm.options import EngineOptions

    per: dict[str, list[str]] = {}
    for f in attrs.fields(EngineOptions):
        n = f.name
        dashed = n.replace("_", "-")
        # a key or attribute (quoted, .name), a keyword argument, a CLI flag, a field/YAML key
        per[n] = _naming([rf"[\"'.]{n}\b", rf"\b{n}=", rf"--{dashed}\b", rf"(^|\n)\s*{n}:"])
    counts = sorted(len(v) for v in per.values())
    return {"per_option": per, "files": {k: len(v) for k, v in per.items()},
            "min": counts[0], "median": counts[len(counts) // 2], "max": counts[-1]}


# -- decision points ------------------------------------------------------------------------


def decisions() -> dict[str, Any]:
    """The AST lint's decision points: under core/rules/ (the test's scope) and elsewhere."""
    from tests.test_chart_decisions import CORE, decision_points

    rules = decision_points(sorted((CORE / "rules").glob("*.py")))
    other = decision_points([CORE / "context.py", CORE / "engine.py", CORE / "timers.py"],
                            methods=True)

    def summary(points: list[Any]) -> dict[str, Any]:
        return {"points": len(points),
                "functions": len({(p.file, p.function) for p in points}),
                "by_kind": dict(Counter(k for p in points for k in p.kinds)),
                "list": [f"{p.file}:{p.line} {p.function} [{','.join(p.kinds)}] {p.test}"
                         for p in points]}

    return {"core/rules": summary(rules), "core (context, engine, timers)": summary(other)}


# -- shadow state in Context -------------------------------------------------------------------


def context() -> dict[str, Any]:
    """Context's attributes (set in ``__init__``) and the modules that assign each."""
    tree = ast.parse((SRC / "core" / "context.py").read_text())
    init = next(n for n in ast.walk(tree)
                if isinstance(n, ast.FunctionDef) and n.name == "__init__")
    attrs_: list[str] = []
    for node in ast.walk(init):
        targets = node.targets if isinstance(node, ast.Assign) else (
            [node.target] if isinstance(node, ast.AnnAssign) else [])
        for t in targets:
            for el in (t.elts if isinstance(t, ast.Tuple) else [t]):
                if isinstance(el, ast.Attribute) and isinstance(el.value, ast.Name) and \
                        el.value.id == "self" and el.attr not in attrs_:
                    attrs_.append(el.attr)
    assigned: dict[str, set[str]] = defaultdict(set)
    for f in sorted((SRC / "core").rglob("*.py")):
        mod = str(f.relative_to(SRC))
        for node in ast.walk(ast.parse(f.read_text())):
            targets: list[ast.expr] = []
            if isinstance(node, ast.Assign):
                targets = node.targets
            elif isinstance(node, (ast.AugAssign, ast.AnnAssign)):
                targets = [node.target]
            for t in targets:
                for el in (t.elts if isinstance(t, ast.Tuple) else [t]):
                    if isinstance(el, ast.Subscript):
                        el = el.value
                    if isinstance(el, ast.Attribute) and isinstance(el.value, ast.Name) and \
                            el.value.id in ("cx", "self") and el.attr in attrs_ and \
                            mod != "core/context.py":
                        assigned[el.attr].add(mod)
    rules_mods = {m for ms in assigned.values() for m in ms if m.startswith("core/rules/")}
    return {"attributes": len(attrs_), "names": attrs_,
            "assigned_outside_context": {a: sorted(m) for a, m in sorted(assigned.items())},
            "attributes_assigned_by_rules": sorted(
                a for a, ms in assigned.items() if any(m.startswith("core/rules/") for m in ms)),
            "rule_modules_assigning": sorted(rules_mods)}


# -- shells reading region names ---------------------------------------------------------------

_SHELL_RX = re.compile(r"in_state\(|\.state\(\)|\br\.state\b|\.moved\b|_state\(r, |"
                       r"\.chart\.regions")
#: engine queries a shell may ask (they name no region; the core answers from its states)
_QUERY_RX = re.compile(r"awaiting_answer|model_request_pending\(|model_request_outstanding")


def shells() -> dict[str, Any]:
    """Lines of runtime/, telemetry/, adapters/ (and replay/, host/, testing/) that read the
    chart's regions or states (directly or through a StepRecord's ``state``/``moved``:
    ``hits``), and those that ask the engine a query instead (``queries``; section 6 of the
    design keeps them). ``tests/test_shell_outputs.py`` fails on a read."""
    hits: dict[str, list[str]] = {}
    queries: dict[str, list[str]] = {}
    for d in ("runtime", "telemetry", "adapters", "replay", "host", "testing"):
        for f in sorted((SRC / d).glob("*.py")):
            for i, line in enumerate(f.read_text().splitlines(), 1):
                if "def " in line:
                    continue
                for rx, into in ((_SHELL_RX, hits), (_QUERY_RX, queries)):
                    if rx.search(line):
                        into.setdefault(str(f.relative_to(ROOT)), []).append(
                            f"{i}: {line.strip()}")
    return {"files": len(hits), "lines": sum(len(v) for v in hits.values()), "hits": hits,
            "query_files": len(queries), "query_lines": sum(len(v) for v in queries.values()),
            "queries": queries}


def gate() -> dict[str, Any]:
    """The gate region's transitions, the base chart's and the default profile's; what the
    default profile replaces (seams only?) and how many of its rows restate a base row."""
    from turnfsm.core.profiles import get_profile

    def n(profile: str) -> int:
        return sum(1 for t in get_profile(profile).chart.transitions if t.region == "gate")

    import yaml
    raw = yaml.safe_load((ROOT / "profiles" / "default.yaml").read_text())
    chart = raw.get("chart") or {}
    regions = chart.get("regions") or []
    gate_src = next((r for r in regions if r["name"] == "gate"), {"transitions": []})
    base = yaml.safe_load((ROOT / "states.yaml").read_text())
    base_gate = next(r for r in base["regions"] if r["name"] == "gate")
    seams = {r["name"] for r in base["regions"] if r.get("seam")}
    replaced = [r["replaces"] for r in regions if "replaces" in r]

    def rows(ts: Any) -> list[str]:
        return [yaml.safe_dump(t, sort_keys=True) for t in ts or []]

    base_rows = {r["name"]: set(rows(r.get("transitions"))) for r in base["regions"]}
    restated = {r.get("replaces") or r["name"]: sum(
        1 for t in rows(r.get("transitions")) if t in base_rows.get(
            r.get("replaces") or r["name"], set())) for r in regions}
    added = [t for region, p in (chart.get("patch") or {}).items()
             for t in rows(p.get("add")) if t in base_rows.get(region, set())]
    return {"base_gate_rows": len(base_gate["transitions"]),
            "default_gate_rows": len(gate_src["transitions"]),
            "base_gate_transitions_expanded": n("livekit"),
            "default_gate_transitions_expanded": n("default"),
            "substitutions": len(chart.get("substitute") or {}),
            "patch_replacements": sum(len(p.get("replace") or [])
                                      for p in (chart.get("patch") or {}).values()),
            "seams_in_base": sorted(seams),
            "replaced_regions": replaced,
            "replaced_non_seams": sorted(set(replaced) - seams),
            "restated_base_rows": sum(restated.values()) + len(added),
            "restated_by_region": {k: v for k, v in restated.items() if v}}


# -- the import structure -----------------------------------------------------------------------


def _room_graph(base: Path, room_of: Callable[[Path], str | None]
                ) -> tuple[dict[str, int], dict[tuple[str, str], int]]:
    """Rooms (with their lines) and arrows (room -> room, with how many imports) of the
    package's run-time imports (``tests/test_imports.py`` reads them)."""
    from tests.test_imports import _imports, _module_name

    files = sorted(base.rglob("*.py"))
    by_module = {_module_name(f): f for f in sorted(SRC.rglob("*.py"))}
    lines: Counter[str] = Counter()
    arrows: Counter[tuple[str, str]] = Counter()
    for f in files:
        room = room_of(f)
        if room is None:
            continue
        lines[room] += len(f.read_text().splitlines())
        for mod, _line in _imports(f):
            target = by_module.get(mod)
            if target is None and mod.rpartition(".")[0] in by_module:
                target = by_module[mod.rpartition(".")[0]]  # from x import name
            if target is None or (target.name == "__init__.py" and
                                  target.parent in f.parents):
                continue  # `from .. import x` names the package only as the way to x
            to = room_of(target)
            if to is not None and to != room:
                arrows[(room, to)] += 1
    return dict(lines), dict(arrows)


def _floors(rooms: Iterable[str], arrows: Iterable[tuple[str, str]]) -> dict[str, int]:
    """Floor 1: rooms that import no other room; each room one floor above the highest it
    imports (a circle would never settle: it is reported as floor 0)."""
    out: dict[str, set[str]] = defaultdict(set)
    for a, b in arrows:
        out[a].add(b)
    floor: dict[str, int] = {}

    def f(r: str, seen: frozenset[str]) -> int:
        if r in floor:
            return floor[r]
        if r in seen:
            return 0
        v = 1 + max((f(b, seen | {r}) for b in out[r]), default=0)
        floor[r] = v
        return v
    for r in rooms:
        f(r, frozenset())
    return floor


def structure() -> dict[str, Any]:
    """The package's import structure: rooms (top-level folders and modules of turnfsm),
    floors and arrows; and the same inside core/ (its modules, rules/ as one room)."""
    def top(p: Path) -> str:
        rel = p.relative_to(SRC)
        return rel.parts[0] if len(rel.parts) > 1 else rel.name

    def in_core(p: Path) -> str | None:
        rel = p.relative_to(SRC)
        if rel.parts[0] != "core" or len(rel.parts) < 2:
            return None
        return "rules/" if rel.parts[1] == "rules" else rel.parts[1]

    result: dict[str, Any] = {}
    for name, base, room_of in (("package", SRC, top), ("core", SRC / "core", in_core)):
        lines, arrows = _room_graph(base, room_of)
        floors = _floors(lines, arrows)
        up = [f"{a} -> {b}" for (a, b) in arrows if floors[b] >= floors[a]]
        by_floor: dict[int, list[str]] = defaultdict(list)
        for r in sorted(lines, key=lambda r: -lines[r]):
            by_floor[floors[r]].append(f"{r} {lines[r]}")
        result[name] = {
            "rooms": len(lines), "floors": max(floors.values()), "arrows": len(arrows),
            "arrows_up_or_level": up,
            "by_floor": {str(k): ", ".join(v) for k, v in sorted(by_floor.items(),
                                                                 reverse=True)},
            "imported_by_most": sorted(
                ((sum(1 for (_a, b) in arrows if b == r), r) for r in lines), reverse=True)[:6],
        }
    return result


# -- the byte-identity baseline of the rebuild ---------------------------------------------------

BASELINE_DIR = Path(tempfile.gettempdir()) / "turnfsm-baseline"


def baseline(out: Path | None = None) -> dict[str, Any]:
    """Replay every conformance trace (tests/conformance/*/traces) under each runtime
    (direct with each backend, table and transitions; asyncio, which runs the table) and
    each profile (the trace's own, and default), with drop records (``--diagnostics``),
    through ``turnfsm replay --dir``; keep the outputs under ``out`` (``--out DIR``) and
    give one digest per combination. Run it before and after a change: equal digests
    (``diff -r`` on the folders) mean every trace replays byte-identical."""
    import hashlib
    import subprocess

    out = out or BASELINE_DIR
    digests: dict[str, str] = {}
    for traces in sorted((ROOT / "tests" / "conformance").glob("*/traces")):
        for runtime in ("direct", "asyncio"):
            # an asyncio replay runs a Session, which dispatches through the table
            for backend in ("table", "transitions") if runtime == "direct" else ("table",):
                for profile in (None, "default"):
                    name = (f"{traces.parent.name}-{runtime}-{backend}-"
                            f"{profile or 'trace'}")
                    dest = out / name
                    cmd = [sys.executable, "-c", "import sys; from turnfsm.cli import main; "
                           "sys.exit(main(sys.argv[1:]))", "replay", "--dir", str(traces),
                           "--runtime", runtime, "--backend", backend, "--diagnostics",
                           "-j", "1", "-o", str(dest)]
                    if profile:
                        cmd += ["--profile", profile]
                    run = subprocess.run(cmd, capture_output=True, text=True)
                    # a trace the engine refuses (an adversarial header) fails the run but
                    # not the others: its error line and the exit status are part of the
                    # digest, so a change in what is refused shows as a change
                    errors = [ln for ln in run.stderr.splitlines() if "turnfsm replay:" in ln]
                    if run.returncode != 0 and not errors:
                        raise SystemExit(f"chart_metrics: replay {name} failed: "
                                         f"{run.stderr.strip().splitlines()[-1:]}")
                    h = hashlib.sha256()
                    h.update(f"{run.returncode}\0".encode())
                    for line in errors:
                        h.update(line.replace(str(ROOT), "").encode() + b"\0")
                    for f in sorted(dest.glob("*.jsonl")):
                        h.update(f.name.encode() + b"\0" + f.read_bytes())
                    digests[name] = h.hexdigest()[:16]
    return {"folder": str(out), "digests": digests}


SECTIONS: dict[str, Callable[[], dict[str, Any]]] = {
    "walk": walk, "events": events, "options": options, "decisions": decisions,
    "context": context, "shells": shells, "gate": gate, "structure": structure,
}
#: Sections run only when named (they take a while).
ON_REQUEST: dict[str, Callable[..., dict[str, Any]]] = {"baseline": baseline}


def _print(name: str, data: dict[str, Any]) -> None:
    print(f"== {name}")
    for k, v in data.items():
        if isinstance(v, dict) and k in ("per_class", "per_option", "hits", "queries",
                                          "plumbing_per_class",
                                          "by_floor",
                                          "assigned_outside_context"):
            for kk, vv in v.items():
                shown = ", ".join(vv) if isinstance(vv, list) else vv
                print(f"  {k} {kk}: {shown}")
        elif isinstance(v, dict) and "list" in v:
            print(f"  {k}: {v['points']} decision points in {v['functions']} functions, "
                  f"by kind {v['by_kind']}")
            for line in v["list"]:
                print(f"    {line}")
        elif isinstance(v, list) and len(v) > 8:
            print(f"  {k} ({len(v)}): {', '.join(map(str, v))}")
        else:
            print(f"  {k}: {v}")


def main(argv: list[str]) -> int:
    as_json = "--json" in argv
    out: Path | None = None
    if "--out" in argv:
        i = argv.index("--out")
        if i + 1 >= len(argv):
            print("chart_metrics: --out needs a folder", file=sys.stderr)
            return 2
        out = Path(argv[i + 1])
        argv = argv[:i] + argv[i + 2:]
    names = [a for a in argv if not a.startswith("--")] or list(SECTIONS)
    known = {**SECTIONS, **ON_REQUEST}
    for n in names:
        if n not in known:
            print(f"chart_metrics: unknown section {n!r} (one of {', '.join(known)})",
                  file=sys.stderr)
            return 2
    result = {n: (baseline(out) if n == "baseline" else known[n]()) for n in names}
    if as_json:
        print(json.dumps(result, indent=2, sort_keys=True))
    else:
        for n, data in result.items():
            _print(n, data)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
