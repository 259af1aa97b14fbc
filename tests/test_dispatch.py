"""Dispatch: each guard runs at most once per region offer (decision trees), and what fires is
what first-match over the chart's transition list gives; the internal queue processes queued
events in their declared order (``after: N``)."""

from __future__ import annotations

import pickle
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from turnfsm import Engine, EngineOptions
from turnfsm import events as ev
from turnfsm.core.dispatch import Compiled, compiled, decision_tree
from turnfsm.core.machines import RegionMachines
from turnfsm.core.profiles import get_profile
from turnfsm.core.registry import RULES, ActionSpec, Registry

ROOT = Path(__file__).resolve().parents[1]

# -- the decision tree against first-match ----------------------------------------------------

GUARDS = 4
_transition = st.tuples(
    st.lists(st.tuples(st.integers(0, GUARDS - 1), st.booleans()), max_size=3),  # (guard, neg)
    st.integers(0, 9))  # an id for the transition


def _first_match(ts: list[tuple[list[tuple[int, bool]], int]], world: list[bool],
                 asked: list[int]) -> int | None:
    """What the list gives: the first transition whose guards all hold (each guard asked as
    the list names it, as the dispatcher did before decision trees)."""
    for guards, tid in ts:
        for g, neg in guards:
            asked.append(g)
            if world[g] == neg:
                break
        else:
            return tid
    return None


def _walk(node: Any, fns: list[Callable[[Any, Any], bool]]) -> int | None:
    while node is not None:
        fn = node[0]
        if fn is None:
            return int(node[2])
        node = node[1] if fn(None, None) else node[2]
    return None


@given(st.lists(_transition, max_size=6), st.lists(st.booleans(), min_size=GUARDS,
                                                     max_size=GUARDS))
def test_the_decision_tree_fires_what_first_match_fires_asking_each_guard_once(
        ts: list[tuple[list[tuple[int, bool]], int]], world: list[bool]) -> None:
    """For any transition list and any guard values, the tree fires the transition
    first-match fires, asks no guard twice, and asks only guards first-match asks (it skips
    guards already answered and transitions already ruled out, so the order may differ:
    guards only read)."""
    asked: list[int] = []
    fns: list[Callable[[Any, Any], bool]] = []
    for i in range(GUARDS):
        def fn(cx: Any, e: Any, i: int = i) -> bool:
            asked.append(i)
            return world[i]
        fns.append(fn)
    tree = decision_tree([(tuple((fns[g], neg) for g, neg in guards), (), tid)
                          for guards, tid in ts])
    got = _walk(tree, fns)
    tree_asked = list(asked)
    asked.clear()
    want = _first_match(ts, world, asked)
    assert got == want
    assert len(tree_asked) == len(set(tree_asked))
    assert set(tree_asked) <= set(asked)


def test_a_transition_needing_a_guard_both_ways_never_fires() -> None:
    """``[g, not g]`` can never hold: the tree skips it and fires the next one."""
    def g(cx: Any, e: Any) -> bool:
        return True
    tree = decision_tree([(((g, False), (g, True)), (), 1), ((), (), 2)])
    assert _walk(tree, [g]) == 2


# -- on a real chart, both backends -----------------------------------------------------------


def _counting(log: list[tuple[str, str]]) -> Registry:
    """The engine's registry with every guard and action logging its calls."""
    reg = Registry()
    reg.needs = dict(RULES.needs)
    for name, fn in RULES.guards.items():
        def guard(cx: Any, e: Any, fn: Any = fn, name: str = name) -> bool:
            log.append(("guard", name))
            return bool(fn(cx, e))
        reg.guards[name] = guard
    for name, spec in RULES.actions.items():
        def action(cx: Any, e: Any, fn: Any = spec.fn, name: str = name) -> None:
            log.append(("action", name))
            fn(cx, e)
        reg.actions[name] = ActionSpec(action, spec.accepts)
    return reg


@pytest.mark.parametrize("backend", ["table", "transitions"])
@pytest.mark.parametrize("profile", ["livekit", "default"])
def test_each_guard_runs_once_per_region_offer(backend: str, profile: str) -> None:
    """A turn with a model, an end of turn and an answer, a backchannel over the agent: in
    every region offer (its guards run before its actions, and nested offers after them) no
    guard runs twice; the same guard does run in several transitions of one offer."""
    chart = pickle.loads(pickle.dumps(get_profile(profile).chart))  # nothing derived yet
    log: list[tuple[str, str]] = []
    reg = _counting(log)
    c = compiled(chart, reg)
    assert isinstance(c, Compiled)
    chart.derived["transitions"] = RegionMachines(chart, reg)
    e = Engine(EngineOptions(turn_detection="model", interruption_detection=True),
               profile=profile, chart=chart, backend=backend)  # type: ignore[arg-type]
    e.observe_dispatch(lambda *a: log.append(("offer", a[2])))
    e.handle(ev.VadStartOfSpeech(t=1.0))
    e.handle(ev.SttFinal(t=1.3, text="book a table"))
    e.handle(ev.VadEndOfSpeech(t=1.5))
    e.handle(ev.EouModelAnswered(t=1.6, request_id=1, probability=0.9))
    e.advance(3.0)
    e.handle(ev.EndOfTurnAnswered(t=3.0, accepted=True))
    e.handle(ev.AgentSpeechStarted(t=3.5))
    e.handle(ev.VadStartOfSpeech(t=4.0))
    e.handle(ev.SttFinal(t=4.3, text="uh huh"))
    e.handle(ev.VadEndOfSpeech(t=4.5))
    e.handle(ev.AgentSpeechEnded(t=5.0))
    e.handle(ev.Close(t=6.0))
    segment: list[str] = []
    offers = 0
    for kind, name in log:
        if kind == "guard":
            assert name not in segment, f"guard {name} ran twice in one region offer"
            segment.append(name)
        else:  # an action starts (nested offers follow) or the offer ended
            offers += kind == "offer"
            segment = []
    assert offers > 50
    # the scenario does meet offers whose transitions share a guard
    shared = [t for t in chart.transitions if t.region == "turn" and t.event == "eou_trigger"
              and t.source == "open" and any(g.name == "may_decide" for g in t.guards)]
    assert len(shared) >= 2
    assert ("guard", "may_decide") in log


# -- the internal queue -----------------------------------------------------------------------


def _queue_run(tmp_path: Path, cancelled_after: int) -> list[Any]:
    """Outputs when commit_cancelled (for ref "a") is queued before decision_declined of a
    commit (ref "b", which then reports ok), with commit_cancelled declared
    ``after: cancelled_after`` in a user chart."""
    from turnfsm import outputs as out
    from turnfsm.core import read_chart
    from turnfsm.core.records import Commit, CommitOutcome, Trigger

    text = (ROOT / "states.yaml").read_text()
    old = "  commit_cancelled:   {internal: true, after: 3,"
    assert old in text
    p = tmp_path / f"after{cancelled_after}.yaml"
    p.write_text(text.replace(old, old.replace("after: 3", f"after: {cancelled_after}")))
    e = Engine(chart=read_chart(p))
    cx = e.cx
    cx.commit = Commit(1, "b", False)
    cx.raise_("commit_cancelled", CommitOutcome("a", "cancelled"))
    cx.raise_("decision_declined", Trigger(kind="commit", manual=True))
    cx.run_queue()
    return [(o.ref, o.status) for o in cx.out if isinstance(o, out.CommitResult)]


def test_queued_events_run_in_their_declared_order(tmp_path: Path) -> None:
    """An event declared after: 3 raised before one declared after: 1 is processed after it
    (it goes back to the end of the queue twice); declared after: 1, it keeps its place."""
    assert _queue_run(tmp_path, 3) == [("b", "ok"), ("a", "cancelled")]
    assert _queue_run(tmp_path, 1) == [("a", "cancelled"), ("b", "ok")]


def test_a_chart_must_declare_where_the_engine_queues_its_events(tmp_path: Path) -> None:
    """A chart whose wait_begins is dispatched `after: now` (its handlers would run before
    the transition that raised it enters its state) is refused, naming the event and its
    line; `after` on a non-internal event, or neither `now` nor a whole number >= 1, is
    refused too; without `after` an internal event is queued for the next pass."""
    from turnfsm.chart import load_chart
    from turnfsm.errors import ChartError

    text = (ROOT / "states.yaml").read_text()
    old = "  wait_begins:        {internal: true, after: 1,"
    assert old in text
    with pytest.raises(ChartError) as info:
        load_chart(text.replace(old, "  wait_begins:        {internal: true, after: now,"),
                   "c.yaml", registry=RULES)
    assert any("the engine queues event 'wait_begins'" in p and p.startswith("c.yaml:")
               for p in info.value.problems), info.value.problems
    for bad in ("after: 0", "after: two", "after: true"):
        with pytest.raises(ChartError) as info:
            load_chart(text.replace("after: 1,", bad + ",", 1), "c.yaml")
        assert any("'after' must be 'now' or a whole number" in p
                   for p in info.value.problems), bad
    plain = load_chart(text.replace(old, "  wait_begins:        {internal: true,"), "c.yaml",
                       registry=RULES)
    assert plain.events["wait_begins"].after == 1 and plain.events["final"].after == 0
    old = "  eou_deadline:       {timer: true,"
    with pytest.raises(ChartError) as info:
        load_chart(text.replace(old, old + " after: 1,"), "c.yaml")
    assert any("only internal events are queued" in p for p in info.value.problems)


def test_the_queue_waits_while_an_end_of_turn_awaits_its_answer() -> None:
    """What is queued when an end of turn is delivered is processed once it is answered."""
    from turnfsm import outputs as out
    from turnfsm.core.records import CommitOutcome

    e = Engine(EngineOptions())
    cx = e.cx
    ri, delivering = cx.index("turn", "delivering")
    idle = cx.s[ri]
    cx.s[ri] = delivering  # an end of turn awaits its answer (the query reads the region)
    assert cx.awaiting_answer and e.awaiting_answer
    cx.raise_("commit_cancelled", CommitOutcome("b", "cancelled"))
    cx.run_queue()
    assert not any(isinstance(o, out.CommitResult) for o in cx.out) and len(cx.queue) == 1
    cx.s[ri] = idle
    assert not cx.awaiting_answer
    cx.run_queue()
    assert [o.ref for o in cx.out if isinstance(o, out.CommitResult)] == ["b"]
