"""Bounded exhaustive exploration of event orderings (issue 6).

Breadth-first over every ordering of an abstract alphabet of ten input kinds, to depth
:data:`DEPTH`, from a few engine configurations. Each transition clones the driver (engine
plus the invariant shadow of ``tests/props_support.py``) and applies one letter; the driver
checks every invariant after every engine call, and every newly reached configuration is
also settled (on a copy) to check that it cannot get stuck. Configurations already seen are
not expanded again: the key is the engine's region states plus the data that decides what it
does next (texts, buffers, flags, the pending timers in deadline order and how the anchors
compare), so the search abstracts input refs and exact times away. Inputs come every
:data:`STEP` seconds, so the abstraction merges paths that differ only in how long ago
something happened.

Being breadth-first, the first violation found comes with a shortest event sequence.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from typing import Any

import pytest

from tests import props_support as ps
from tests.props_support import Driver, HostScript, InvariantViolation, ModelAnswer, clone
from turnfsm import EndpointingOptions, EngineOptions, UserTurnLimit
from turnfsm import events as ev

DEPTH = int(os.environ.get("TURNFSM_EXHAUSTIVE_DEPTH", "8"))
STEP = 0.2  # seconds between inputs


def _advance(d: Driver) -> bool:
    nd = d.next_due()
    if nd is None:
        return False  # nothing due: the letter is a no-op here
    d.advance(max(d.clock, nd[0]) + 0.01)
    return True


def _feed(make: Callable[..., ev.Input]) -> Callable[[Driver], bool]:
    def apply(d: Driver) -> bool:
        d.feed(make(t=d.clock + STEP, ref=d.next_ref()))
        return True
    return apply


ALPHABET: dict[str, Callable[[Driver], bool]] = {
    "vad_start": _feed(lambda **k: ev.VadStartOfSpeech(speech_duration=0.1, **k)),
    "vad_end": _feed(lambda **k: ev.VadEndOfSpeech(silence_duration=0.2, **k)),
    "final_a": _feed(lambda **k: ev.SttFinal(text="a", **k)),
    "final_empty": _feed(lambda **k: ev.SttFinal(text="", **k)),
    "agent_start": _feed(lambda **k: ev.AgentSpeechStarted(**k)),
    "agent_end": _feed(lambda **k: ev.AgentSpeechEnded(**k)),
    "overlap_interruption": _feed(lambda **k: ev.OverlapVerdict(is_interruption=True, **k)),
    "commit": _feed(lambda **k: ev.CommitUserTurn(transcript_timeout=0.3, **k)),
    "clear": _feed(lambda **k: ev.ClearUserTurn(**k)),
    "advance_past_deadline": _advance,
}

#: (name, options, host) explored; each runs in its own process when two cores are free.
# the default profile's own letter: a final longer than a backchannel (over the agent without
# a detector, its words interrupt); "a" is one word, a backchannel by its length
DEFAULT_LETTERS: dict[str, Callable[[Driver], bool]] = {
    "final_long": _feed(lambda **k: ev.SttFinal(text="wait what about tuesday", **k)),
}

# (name, options, host, profile)
SETUPS: list[tuple[str, EngineOptions, HostScript, str]] = [
    ("vad+detector", EngineOptions(interruption_detection=True, backchannel_boundary=(0.3, 1.0)),
     HostScript(interruption_feedback=True), "livekit"),
    ("manual", EngineOptions(turn_detection="manual"), HostScript(), "livekit"),
    ("model+refusals", EngineOptions(turn_detection="model"),
     HostScript(accept=(False, True), model=(ModelAnswer(latency=0.3, probability=0.05),)),
     "livekit"),
    ("stt+limit+dynamic", EngineOptions(
        turn_detection="stt", user_turn_limit=UserTurnLimit(max_words=2),
        endpointing=EndpointingOptions(mode="dynamic", min_delay=0.3, max_delay=1.0)),
     HostScript(), "livekit"),
    ("default", EngineOptions(transcript_timeout=0.5), HostScript(interruption_feedback=True),
     "default"),
    ("default+detector+refusals", EngineOptions(interruption_detection=True,
                                                transcript_timeout=0.5),
     HostScript(accept=(False, True), interruption_feedback=True), "default"),
]


def _set(x: float | None) -> bool:
    return x is not None


def _order(*xs: float | None) -> tuple[int, ...]:
    """The rank of each known time among the others (None: -1): times abstracted to order."""
    known = sorted({round(x, 6) for x in xs if x is not None})
    return tuple(-1 if x is None else known.index(round(x, 6)) for x in xs)


#: Seam regions set on the very event that reads them (which model refines the decision
#: just asked for; whether the gate holds at an agent start or attach): what they hold is
#: that event's decision, never read on a later one, so it decides no future.
_MEMO = frozenset({"model_source", "hold_policy"})


def config_key(d: Driver) -> tuple[Any, ...]:
    """What decides the future, with times abstracted to their order (and refs dropped):
    region states, texts and buffers, flags, the pending timers in deadline order, how the
    anchors compare, the host's position in its script, and the shadow the checks use."""
    e = d.engine
    w = ps.probe_wait(e)
    cx = e.cx
    c, turn = cx.commit, cx.turn
    return (
        tuple(s for r, s in e.state().items() if r not in _MEMO), turn.transcript,
        turn.interim, turn.preflight, cx.promoted,
        tuple(x for _, x in turn.finals),
        tuple((type(h).__name__, getattr(h, "text", None)) for h in cx.held),
        cx.tracker.words, turn.skip_reply_sticky, cx.last_language, turn.span_open,
        _order(cx.speech_start_time, cx.last_speaking_time, turn.user_turn_start,
               turn.last_final_time,
               None if w is None else w.anchor, d.turn_boundary if d.turn_boundary > -1 else None,
               cx.onset_floor),
        tuple(k for _, k in ps.probe_live_timers(e)) + tuple("answer" for _ in d.shell),
        None if w is None else (_set(w.anchor), w.manual, w.skip_reply, w.min_delay),
        None if c is None else c.skip_reply,
        e.cx.endpointing.overlapping, e.cx.verdict_interruption,
        d.n_accept % len(d.host.accept), d.n_model % len(d.host.model),
        d.marker_state, _set(d.boundary_live),
        tuple(x for _, x in d.turn_contribs), d.preflight_acc,
        tuple((cr.skip_reply, cr.final_gen == d.turn_gen, tuple(cr.results))
              for cr in d.commits.values() if not cr.results or cr is d.active_commit),
        d.tracker_prev, d.lang_specific_seen,
        # the default profile's segment (final wait, backchannels)
        cx.segment_final,
    )


def explore(name: str, options: EngineOptions, host: HostScript, depth: int = DEPTH,
            engine_factory: Callable[..., Any] | None = None,
            profile: str = "livekit") -> dict[str, Any]:
    """Breadth-first search; returns counts, or the shortest failing sequence."""
    start = time.perf_counter()
    extra = {} if engine_factory is None else {"engine_factory": engine_factory}
    root = Driver(options, host, history=False, profile=profile, **extra)
    alphabet = {**ALPHABET, **(DEFAULT_LETTERS if profile == "default" else {})}
    seen = {config_key(root)}
    frontier: list[tuple[Driver, tuple[str, ...]]] = [(root, ())]
    transitions = 0
    for _level in range(depth):
        nxt: list[tuple[Driver, tuple[str, ...]]] = []
        for d, path in frontier:
            for letter, apply in alphabet.items():
                c = clone(d)
                seq = (*path, letter)
                try:
                    if not apply(c):
                        continue
                    transitions += 1
                    k = config_key(c)
                    if k in seen:
                        continue
                    seen.add(k)
                    if c.next_due() is None:  # a reached configuration must not get stuck
                        ps.check_no_stuck_state(c)
                    else:
                        clone(c).settle()
                except InvariantViolation as exc:
                    return {"name": name, "failure": seq, "depth": depth,
                            "error": str(exc).split("\n")[0],
                            "configurations": len(seen), "transitions": transitions}
                nxt.append((c, seq))
        frontier = nxt
        if not frontier:
            break
    return {"name": name, "failure": None, "configurations": len(seen), "depth": depth,
            "transitions": transitions, "seconds": round(time.perf_counter() - start, 1)}


def _run(i: int) -> dict[str, Any]:
    name, options, host, profile = SETUPS[i]
    # the default profile's chart has more configurations per depth (its final wait, its
    # judging gate and one more letter): one level less keeps the run to a few minutes
    depth = DEPTH - 1 if profile == "default" else DEPTH
    return explore(name, options, host, depth=depth, profile=profile)


@pytest.mark.slow
def test_bounded_exhaustive_orderings(capsys: pytest.CaptureFixture[str]) -> None:
    """Every ordering of ten input kinds up to depth 8 keeps every invariant (BFS, deduped)."""
    assert DEPTH >= 1 and len(ALPHABET) >= 8
    workers = min(len(SETUPS), os.cpu_count() or 1, 2)
    if workers > 1:
        with ProcessPoolExecutor(workers) as pool:
            results = list(pool.map(_run, range(len(SETUPS))))
    else:
        results = [_run(i) for i in range(len(SETUPS))]
    with capsys.disabled():
        for r in results:
            print(f"\nexhaustive[{r['name']}] depth {r['depth']}: {r['configurations']} "
                  f"configurations, {r['transitions']} transitions"
                  + (f", {r['seconds']} s" if "seconds" in r else ""))
    failures = [r for r in results if r["failure"]]
    assert not failures, "\n".join(
        f"{r['name']}: shortest failing sequence {' -> '.join(r['failure'])}\n  {r['error']}"
        for r in failures)


def test_exhaustive_search_reports_the_shortest_failing_sequence() -> None:
    """On a broken engine the search reports a shortest sequence that breaks an invariant."""
    # the mutant: clear keeps the pending end-of-turn wait (spec D1)
    from tests.test_properties import chart_factory, mutant_chart

    chart = mutant_chart("turn", "clear", {"predicting", "waiting"})
    r = explore("broken", EngineOptions(), HostScript(), depth=5,
                engine_factory=chart_factory(chart))
    assert r["failure"] == ("final_a", "clear"), r
    assert r["error"].startswith("I11 violated"), r


def test_a_commit_finalized_while_a_final_decides_resolves_once() -> None:
    """A sequence the search found when ``eou_trigger`` was queued (default profile): a
    commit awaiting its final is finalized by a released interrupting final while that
    final's own decision is delivering; the commit reports its result once (I18)."""
    _name, options, host, profile = next(s for s in SETUPS if s[0] == "default")
    d = Driver(options, host, history=False, profile=profile)
    alphabet = {**ALPHABET, **DEFAULT_LETTERS}
    for letter in ("final_a", "agent_start", "vad_start", "vad_end", "final_a", "commit",
                   "final_long"):
        assert alphabet[letter](d), letter
    clone(d).settle()  # raises InvariantViolation on a second result
