"""The cost of the chart dispatch: decision trees against first-match lists, same run.

    python benchmarks/dispatch_bench.py [--minutes 10] [--reps 7] [--json FILE]

The engine's table dispatcher compiles each (region, state, event) into a decision tree that
asks each guard once per region offer (``turnfsm.core.dispatch.decision_tree``). The
baseline is the dispatcher it replaced, kept here: first match over the transition list,
asking every guard of every transition it tries (a guard shared by several transitions runs
once per transition). Both run the same events through otherwise identical engines: a
generated session (``gen_session.py``, with and without the interruption detector), both
profiles, VAD windows through the object-free ``vad_window`` (they bypass the chart, so the
engine's CPU is mostly dispatch), ends of turn answered at once. Reported per case: the
median CPU (``time.process_time``) of each over interleaved repetitions, their ratio (trees
/ lists; below 1 is faster), guard calls per dispatched input for each (counted in a separate
untimed run), and a check that both gave the same outputs.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))


from turnfsm import Engine, EngineOptions  # noqa: E402
from turnfsm import events as ev  # noqa: E402
from turnfsm import outputs as out  # noqa: E402
from turnfsm.chart import Chart  # noqa: E402
from turnfsm.core.dispatch import Regions, guard_functions  # noqa: E402
from turnfsm.core.registry import RULES  # noqa: E402


class ListDispatcher:
    """The baseline: first match over each (region, state, event)'s transition list."""

    def __init__(self, chart: Chart, wrap: Any = None) -> None:
        guards = guard_functions(chart)
        if wrap is not None:
            guards = {name: wrap(fn) for name, fn in guards.items()}
        regions = [r.name for r in chart.regions]
        states = [r.states for r in chart.regions]
        table: dict[str, dict[int, dict[int, list[Any]]]] = {}
        for t in chart.transitions:
            ri = regions.index(t.region)
            dest = states[ri].index(t.dest) if t.dest is not None else None
            ct = (tuple((guards[g.name], g.negated) for g in t.guards),
                  tuple(RULES.actions[a].fn for a in t.actions), dest)
            table.setdefault(t.event, {}).setdefault(ri, {}).setdefault(
                states[ri].index(t.source), []).append(ct)
        self._table = {e: tuple(sorted(by.items())) for e, by in table.items()}
        self.observer = None

    def dispatch(self, cx: Regions, event: str, payload: Any) -> None:
        """First match, region by region (the dispatcher before decision trees)."""
        s = cx.s
        for ri, by_state in self._table.get(event, ()):
            for guards, actions, dest in by_state.get(s[ri], ()):
                for fn, neg in guards:
                    if fn(cx, payload) == neg:
                        break
                else:
                    for act in actions:
                        act(cx, payload)
                    if dest is not None:
                        s[ri] = dest
                    break


def session_events(minutes: float, detector: bool) -> list[ev.Input]:
    """A generated session's inputs, built beforehand (as bench.py builds them)."""
    from bench import session_events as build
    return build(minutes, detector=detector)[0]


def engine(profile: str, detector: bool, kind: str, wrap: Any = None) -> Engine:
    """An engine of ``profile`` whose dispatcher is the tree (``kind`` "tree") or the list."""
    e = Engine(EngineOptions(interruption_detection=detector, vad_window_outputs=False),
               profile=profile)
    if kind == "list":
        e.cx.dispatcher = ListDispatcher(e.chart, wrap)  # type: ignore[assignment]
    return e


def drive(e: Engine, events: list[ev.Input]) -> tuple[float, list[Any]]:
    """CPU seconds to run ``events`` (windows through ``vad_window``), and the outputs."""
    handle, advance, vad_window = e.handle, e.advance, e.vad_window
    eot, answered, window = out.EndOfTurn, ev.EndOfTurnAnswered, ev.VadInferenceDone
    outs: list[Any] = []
    keep = outs.extend
    t0 = time.process_time()
    due = e.next_deadline()
    for x in events:
        t = x.t
        if due is not None and t >= due:
            got = advance(t)
            keep(got)
            for o in got:
                if type(o) is eot:
                    keep(handle(answered(t=o.t, accepted=True)))
        if type(x) is window:
            vad_window(t, x.raw_accumulated_speech, x.ref)  # type: ignore[attr-defined]
        else:
            got = handle(x)
            keep(got)
            for o in got:
                if type(o) is eot:
                    keep(handle(answered(t=o.t, accepted=True)))
        due = e.next_deadline()
    return time.process_time() - t0, outs


def guard_calls(profile: str, detector: bool, kind: str, events: list[ev.Input]) -> int:
    """Guard calls in one untimed run (every guard, literals too, wrapped by a counter)."""
    n = [0]

    def counted(fn: Any) -> Any:
        def g(cx: Any, e: Any) -> bool:
            n[0] += 1
            return bool(fn(cx, e))
        return g
    e = engine(profile, detector, "list", counted)
    if kind == "tree":
        from turnfsm.core.dispatch import TableDispatcher, decision_tree
        lists = e.cx.dispatcher._table  # type: ignore[union-attr]
        tree = TableDispatcher.__new__(TableDispatcher)
        tree._table = {ev_: tuple((ri, {s: decision_tree(v) for s, v in by.items()})
                                  for ri, by in regions) for ev_, regions in lists.items()}
        tree.observer = None
        e.cx.dispatcher = tree
    drive(e, events)
    return n[0]


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--minutes", type=float, default=10.0)
    p.add_argument("--reps", type=int, default=7)
    p.add_argument("--json")
    a = p.parse_args(argv)
    rows = []
    for detector in (False, True):
        events = session_events(a.minutes, detector)
        dispatched = sum(type(x) is not ev.VadInferenceDone for x in events)
        for profile in ("livekit", "default"):
            cpu: dict[str, list[float]] = {"tree": [], "list": []}
            results: dict[str, list[Any]] = {}
            for _ in range(a.reps):
                for kind in ("list", "tree"):
                    s, outs = drive(engine(profile, detector, kind), events)
                    cpu[kind].append(s)
                    results[kind] = outs
            same = results["tree"] == results["list"]
            tree, lst = statistics.median(cpu["tree"]), statistics.median(cpu["list"])
            ratios = sorted(t / b for t, b in zip(cpu["tree"], cpu["list"], strict=True))
            row = {"profile": profile, "detector": detector, "inputs": dispatched,
                   "tree_cpu_s": tree, "list_cpu_s": lst, "ratio": tree / lst,
                   "ratio_min": ratios[0], "ratio_max": ratios[-1],
                   "guards_per_input_tree": guard_calls(profile, detector, "tree", events)
                   / dispatched,
                   "guards_per_input_list": guard_calls(profile, detector, "list", events)
                   / dispatched,
                   "same_outputs": same}
            rows.append(row)
            print(f"{profile:8} detector={'on ' if detector else 'off'} {dispatched} inputs: "
                  f"trees {tree * 1e3:.0f} ms, lists {lst * 1e3:.0f} ms CPU, ratio "
                  f"{row['ratio']:.3f} ({row['ratio_min']:.3f}-{row['ratio_max']:.3f}); "
                  f"guard calls per input {row['guards_per_input_tree']:.2f} vs "
                  f"{row['guards_per_input_list']:.2f}; same outputs: {same}")
            if not same:
                print("dispatch_bench: the two dispatchers gave different outputs",
                      file=sys.stderr)
                return 1
    if a.json:
        Path(a.json).write_text(json.dumps(rows, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
