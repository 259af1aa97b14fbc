"""Property-based tests of event orderings (spec section 7 invariants, CONVENTIONS item 12).

* :class:`TurnMachine`: a hypothesis state machine over every input kind, random options,
  random end-of-turn model answers and latencies and random host answers; the driver in
  ``tests/props_support.py`` checks every invariant after every engine call and at quiescence.
* every state x event pair: each input kind, offered in reachable configurations, moves to
  declared states or is declared ignored; invalid inputs raise ``InputError`` and change
  nothing.
* batch equals incremental, for the engine and for the trace replayer.
* mutation checks: a deliberately broken engine is caught by the invariant checks.
* every engine defect the properties found (all fixed), as a minimal reproduction that now
  runs as a regression test.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    initialize,
    rule,
    run_state_machine_as_test,
)

from tests import props_support as ps
from tests.props_support import (
    AGENT_TEXTS,
    CONFIDENCE,
    DT,
    HOST_SCRIPT,
    LANGUAGE,
    LIMITS,
    MAYBE_OFFSET,
    SMALL,
    STT_TIMES,
    TEXT,
    TURN_DETECTION,
    Driver,
    HostScript,
    InvariantViolation,
    at,
    clone,
    endpointing_changes,
    engine_options,
)
from turnfsm import EndpointingOptions, Engine, EngineOptions, default_chart
from turnfsm import events as ev
from turnfsm import outputs as out
from turnfsm.core import RULES
from turnfsm.errors import InputError, TurnFsmError

# ===== the state machine =======================================================================


class TurnMachine(RuleBasedStateMachine):
    """Random interleavings of every input kind, with the invariants checked by the driver."""

    options_strategy: Any = engine_options()
    host_strategy: Any = HOST_SCRIPT
    engine_factory: Any = Engine
    profile = "livekit"
    #: what the agent says at its starts (the mutation runs say nothing: their fixed-seed
    #: search then meets each mutant as it did before agents had text)
    agent_texts: Any = AGENT_TEXTS

    def __init__(self) -> None:
        super().__init__()
        self.drv: Driver | None = None

    @property
    def d(self) -> Driver:
        assert self.drv is not None
        return self.drv

    @initialize(data=st.data())
    def start(self, data: Any) -> None:
        """Create the engine with random options and a random host."""
        opts = data.draw(self.options_strategy, label="options")
        host = data.draw(self.host_strategy, label="host")
        self.drv = Driver(opts, host, engine_factory=type(self).engine_factory,
                          profile=self.profile)

    def feed(self, make: Any, dt: float) -> None:
        d = self.d
        d.feed(make(t=at(d, dt), ref=d.next_ref()))

    # -- VAD ------------------------------------------------------------------------------

    @rule(dt=DT, speech=SMALL, inference=st.sampled_from([0.0, 0.01, 0.03]))
    def vad_start(self, dt: float, speech: float, inference: float) -> None:
        """VAD start of speech."""
        self.feed(lambda **k: ev.VadStartOfSpeech(speech_duration=speech,
                                                  inference_duration=inference, **k), dt)

    @rule(dt=DT, raw=st.sampled_from([0.0, 0.0, 0.03, 0.3, 1.2]))
    def vad_inference(self, dt: float, raw: float) -> None:
        """VAD inference window (speech when raw > 0)."""
        self.feed(lambda **k: ev.VadInferenceDone(raw_accumulated_speech=raw,
                                                  speaking=raw > 0, **k), dt)

    @rule(dt=DT, silence=SMALL, inference=st.sampled_from([0.0, 0.01]))
    def vad_end(self, dt: float, silence: float, inference: float) -> None:
        """VAD end of speech."""
        self.feed(lambda **k: ev.VadEndOfSpeech(silence_duration=silence,
                                                inference_duration=inference, **k), dt)

    # -- STT ------------------------------------------------------------------------------

    def transcript(self, cls: Any, dt: float, text: str, lang: str, conf: float,
                   times: tuple[float, float], rid: str) -> None:
        self.feed(lambda **k: cls(text=text, language=lang, confidence=conf,
                                  start_time=times[0], end_time=times[1], request_id=rid, **k),
                  dt)

    @rule(dt=DT, text=TEXT, lang=LANGUAGE, conf=CONFIDENCE, times=STT_TIMES,
          rid=st.sampled_from(["", "r1", "r2"]))
    def stt_interim(self, dt: float, text: str, lang: str, conf: float,
                    times: tuple[float, float], rid: str) -> None:
        """STT interim transcript."""
        self.transcript(ev.SttInterim, dt, text, lang, conf, times, rid)

    @rule(dt=DT, text=TEXT, lang=LANGUAGE, conf=CONFIDENCE, times=STT_TIMES,
          rid=st.sampled_from(["", "r1", "r2"]))
    def stt_preflight(self, dt: float, text: str, lang: str, conf: float,
                      times: tuple[float, float], rid: str) -> None:
        """STT preflight transcript."""
        self.transcript(ev.SttPreflight, dt, text, lang, conf, times, rid)

    @rule(dt=DT, text=TEXT, lang=LANGUAGE, conf=CONFIDENCE, times=STT_TIMES,
          rid=st.sampled_from(["", "r1", "r2"]), doubt=st.sampled_from([False, False, True]))
    def stt_final(self, dt: float, text: str, lang: str, conf: float,
                  times: tuple[float, float], rid: str, doubt: bool) -> None:
        """STT final transcript (each with its own ref; ``doubt``: with word confidences,
        the last word doubted)."""
        n = len(text.split())
        words = tuple([0.9] * (n - 1) + [0.1]) if doubt and n else None
        self.feed(lambda **k: ev.SttFinal(text=text, language=lang, confidence=conf,
                                          start_time=times[0], end_time=times[1],
                                          request_id=rid, word_confidences=words, **k), dt)

    @rule(dt=DT, sst=st.sampled_from([None, None, 0.0, 0.5, 3.0, 20.0]))
    def stt_start(self, dt: float, sst: float | None) -> None:
        """STT start of speech."""
        self.feed(lambda **k: ev.SttStartOfSpeech(speech_start_time=sst, **k), dt)

    @rule(dt=DT)
    def stt_end(self, dt: float) -> None:
        """STT end of speech."""
        self.feed(lambda **k: ev.SttEndOfSpeech(**k), dt)

    @rule(dt=DT, rid=st.sampled_from(["", "r1", "r3"]))
    def stt_usage(self, dt: float, rid: str) -> None:
        """STT usage report."""
        self.feed(lambda **k: ev.SttUsage(request_id=rid, **k), dt)

    # -- detector, agent, host signals ------------------------------------------------------

    @rule(dt=DT, intr=st.booleans(), started=MAYBE_OFFSET, detected=MAYBE_OFFSET)
    def overlap_verdict(self, dt: float, intr: bool, started: float | None,
                        detected: float | None) -> None:
        """Interruption detector verdict."""
        t = at(self.d, dt)
        self.d.feed(ev.OverlapVerdict(
            t=t, ref=self.d.next_ref(), is_interruption=intr,
            overlap_started_at=None if started is None else max(0.0, t + started),
            detected_at=None if detected is None else max(0.0, t + detected), probability=0.9))

    @rule(dt=DT)
    def detector_failed(self, dt: float) -> None:
        """The detector stream failed."""
        self.feed(lambda **k: ev.DetectorFailed(**k), dt)

    @rule(dt=DT, started=MAYBE_OFFSET, data=st.data())
    def agent_start(self, dt: float, started: float | None, data: Any) -> None:
        """Agent speech started (maybe back-dated; maybe with its text, which may ask for a
        number of digits)."""
        said = data.draw(self.agent_texts, label="said")
        t = at(self.d, dt)
        self.d.feed(ev.AgentSpeechStarted(t=t, ref=self.d.next_ref(), started_at=None
                                          if started is None else max(0.0, t + started),
                                          text=said))

    @rule(dt=DT, until=MAYBE_OFFSET)
    def agent_end(self, dt: float, until: float | None) -> None:
        """Agent speech ended (maybe with an ignore-until bound)."""
        t = at(self.d, dt)
        self.d.feed(ev.AgentSpeechEnded(t=t, ref=self.d.next_ref(),
                                        ignore_user_transcript_until=None
                                        if until is None else max(0.0, t + until)))

    @rule(dt=DT, started=MAYBE_OFFSET, speech=SMALL)
    def user_started_signal(self, dt: float, started: float | None, speech: float) -> None:
        """Host signal: user speech started."""
        t = at(self.d, dt)
        self.d.feed(ev.UserSpeechStarted(t=t, ref=self.d.next_ref(), speech_duration=speech,
                                         started_at=None if started is None
                                         else max(0.0, t + started)))

    @rule(dt=DT, ended=MAYBE_OFFSET, intr=st.sampled_from([None, True, False]))
    def user_ended_signal(self, dt: float, ended: float | None, intr: bool | None) -> None:
        """Host signal: user speech ended."""
        t = at(self.d, dt)
        self.d.feed(ev.UserSpeechEnded(t=t, ref=self.d.next_ref(), interruption=intr,
                                       ended_at=None if ended is None else max(0.0, t + ended)))

    @rule(dt=DT, ended=MAYBE_OFFSET)
    def overlap_ended_signal(self, dt: float, ended: float | None) -> None:
        """Host signal: overlap ended."""
        t = at(self.d, dt)
        self.d.feed(ev.OverlapSpeechEnded(t=t, ref=self.d.next_ref(),
                                          ended_at=None if ended is None
                                          else max(0.0, t + ended)))

    # -- turn control, options, components -------------------------------------------------

    @rule(dt=DT, detached=st.booleans(), timeout=st.sampled_from([-1.0, 0.0, 0.3, 2.0]),
          flush=st.sampled_from([-1.0, 0.0, 0.5, 2.0]), skip=st.booleans())
    def commit(self, dt: float, detached: bool, timeout: float, flush: float,
               skip: bool) -> None:
        """Commit the user turn with random arguments."""
        self.feed(lambda **k: ev.CommitUserTurn(audio_detached=detached,
                                                transcript_timeout=timeout,
                                                stt_flush_duration=flush, skip_reply=skip, **k),
                  dt)

    @rule(dt=DT)
    def clear(self, dt: float) -> None:
        """Clear the user turn."""
        self.feed(lambda **k: ev.ClearUserTurn(**k), dt)

    @rule(dt=DT, endpointing=st.one_of(st.none(), endpointing_changes()),
          set_td=st.booleans(), td=TURN_DETECTION, limits=st.one_of(st.none(), LIMITS))
    def update_options(self, dt: float, endpointing: dict[str, Any] | None, set_td: bool,
                       td: str | None, limits: dict[str, Any] | None) -> None:
        """Change endpointing, mode and limits mid-session."""
        self.feed(lambda **k: ev.UpdateOptions(endpointing=endpointing, set_turn_detection=set_td,
                                               turn_detection=td, user_turn_limit=limits, **k),
                  dt)

    @rule(dt=DT, enabled=st.booleans())
    def set_vad(self, dt: float, enabled: bool) -> None:
        """Attach, restart or detach the VAD."""
        self.feed(lambda **k: ev.SetVad(enabled=enabled, **k), dt)

    @rule(dt=DT, enabled=st.booleans())
    def set_stt(self, dt: float, enabled: bool) -> None:
        """Attach, restart or detach the STT."""
        self.feed(lambda **k: ev.SetStt(enabled=enabled, **k), dt)

    @rule(dt=DT, enabled=st.booleans())
    def set_interruption_detection(self, dt: float, enabled: bool) -> None:
        """Attach, restart or detach the interruption detector."""
        self.feed(lambda **k: ev.SetInterruptionDetection(enabled=enabled, **k), dt)

    @rule(dt=DT, duration=st.sampled_from([0.0, 0.02, 0.2]), count=st.sampled_from([0, 1, 5]),
          rate=st.sampled_from([8000, 16000]))
    def audio(self, dt: float, duration: float, count: int, rate: int) -> None:
        """Audio frames pushed."""
        self.feed(lambda **k: ev.AudioPushed(duration=duration, count=count, sample_rate=rate,
                                             **k), dt)

    # -- time and answers ------------------------------------------------------------------

    @rule(dt=st.sampled_from([0.0, 0.01, 0.3, 0.5, 1.0, 2.9, 3.0, 8.0]),
          via_engine=st.booleans())
    def advance(self, dt: float, via_engine: bool) -> None:
        """Let time pass (through the driver or engine.advance)."""
        d = self.d
        (d.engine_advance if via_engine else d.advance)(d.clock + dt)

    @rule(offset=st.sampled_from([0.0, 0.0, 1e-6, 0.01, 0.3]), via_engine=st.booleans())
    def to_next_deadline(self, offset: float, via_engine: bool) -> None:
        """Advance exactly to (or just past) the next due timer."""
        d = self.d
        nd = d.next_due()
        if nd is not None:
            (d.engine_advance if via_engine else d.advance)(max(d.clock, nd[0]) + offset)

    @rule(back=st.integers(-2, 3), p=st.sampled_from([None, 0.0, 1.0]))
    def stale_model_answer(self, back: int, p: float | None) -> None:
        """An end-of-turn model answer for an old or unknown request (ignored)."""
        d = self.d
        rid = max(d.model_requests, default=0) - back
        if d.engine.model_request_pending(rid):
            return  # that would be a real answer, not a stale one
        d.feed(ev.EouModelAnswered(t=d.clock, ref=d.next_ref(), request_id=rid, probability=p,
                                   threshold=0.5))

    @rule(n=st.integers(0, 9))
    def close(self, n: int) -> None:
        """Close the session (rarely: later inputs must be ignored)."""
        if n == 0 and not self.d.close_sent:
            self.d.close()

    def teardown(self) -> None:
        """At quiescence: the engine is quiet, then close accounts for everything."""
        if self.drv is not None and not self.drv.failed:
            self.drv.settle()
            if not self.drv.close_sent:
                self.drv.close()


class HoldingTurnMachine(TurnMachine):
    """The same rules with adaptive detection on, so holds and releases happen often."""

    options_strategy = engine_options(detection=True)


class DefaultTurnMachine(TurnMachine):
    """The default profile's chart (final wait, built-in model, backchannels, one onset)."""

    profile = "default"


class DefaultHoldingTurnMachine(HoldingTurnMachine):
    """The default profile with adaptive detection on."""

    profile = "default"


MACHINES = (TurnMachine, HoldingTurnMachine, DefaultTurnMachine, DefaultHoldingTurnMachine)


def _run_machine(i: int, examples: int) -> int:
    """Run one state machine for ``examples`` examples (in a worker process or here)."""
    run_state_machine_as_test(MACHINES[i], settings=settings(max_examples=examples))
    return examples


def test_random_orderings_keep_every_invariant(capsys: pytest.CaptureFixture[str]) -> None:
    """Every invariant holds over random orderings of every input kind."""
    # four state machines (two per profile); a large budget is split over two processes
    import os
    import time
    from concurrent.futures import ProcessPoolExecutor

    from tests.conftest import stateful_examples

    total = stateful_examples()
    per = -(-total // len(MACHINES))
    start = time.perf_counter()
    if total >= 1000 and (os.cpu_count() or 1) >= 2:
        with ProcessPoolExecutor(2) as pool:
            done = sum(pool.map(_run_machine, range(len(MACHINES)), [per] * len(MACHINES)))
    else:
        done = sum(_run_machine(i, per) for i in range(len(MACHINES)))
    with capsys.disabled():
        print(f"\nstateful: {done} examples ({len(MACHINES)} machines x {per}), "
              f"{time.perf_counter() - start:.0f} s")


# ===== engine defects the properties found: minimal reproductions, now regression tests ========
# Each test asserts the correct behaviour.


def run_scenario(options: EngineOptions, inputs: list[ev.Input],
                 host: HostScript | None = None) -> Driver:
    """Drive ``inputs`` (refs assigned in order) without invariant checks; settle."""
    d = Driver(options, host or HostScript(), check=False)
    for e in inputs:
        d.feed(e)
    d.settle()
    return d


def markers(d: Driver) -> list[str]:
    return [o.signal for o in d.outputs if isinstance(o, out.DetectorSignal)]


def test_bug_b1_leaving_manual_cancels_the_commit_wait() -> None:
    """I19: switching from manual to vad cancels the wait a commit scheduled."""
    d = Driver(EngineOptions(turn_detection="manual"), check=False)
    d.feed(ev.SttFinal(t=1.0, ref=1, text="hello"))
    d.feed(ev.CommitUserTurn(t=1.2, ref=2))
    d.feed(ev.UpdateOptions(t=1.3, ref=3, set_turn_detection=True, turn_detection="vad"))
    assert d.state["turn"] not in ("predicting", "waiting")
    assert d.state["authority"] == "none"


def test_bug_b2_speech_cancelling_a_commit_wait_resets_authority() -> None:
    """I9: when speech cancels a commit's wait outside manual mode, authority goes back to none."""
    d = Driver(EngineOptions(), check=False)
    d.feed(ev.VadStartOfSpeech(t=0.5, ref=1))
    d.feed(ev.SttFinal(t=1.0, ref=2, text="hello"))
    d.feed(ev.CommitUserTurn(t=1.2, ref=3))
    d.feed(ev.VadStartOfSpeech(t=1.3, ref=4))
    assert d.state["turn"] == "open"
    assert d.state["authority"] == "none"


def test_overlap_closed_before_agent_ended_marker() -> None:
    """I15: at agent end an open overlap is closed before agent_speech_ended, and only then."""
    d = run_scenario(EngineOptions(interruption_detection=True), [
        ev.AgentSpeechStarted(t=1.0, ref=1), ev.AgentSpeechEnded(t=2.0, ref=2),
        ev.AgentSpeechStarted(t=3.0, ref=3), ev.VadStartOfSpeech(t=3.5, ref=4),
        ev.AgentSpeechEnded(t=4.0, ref=5)])
    assert markers(d) == ["agent_speech_started", "agent_speech_ended", "agent_speech_started",
                          "overlap_speech_started", "overlap_speech_ended",
                          "agent_speech_ended"]


def test_repeated_agent_signals_send_no_extra_markers() -> None:
    """I15: a repeated agent start or an agent end while silent sends no second marker."""
    d = run_scenario(EngineOptions(interruption_detection=True), [
        ev.AgentSpeechEnded(t=0.5, ref=1), ev.AgentSpeechStarted(t=1.0, ref=2),
        ev.AgentSpeechStarted(t=1.5, ref=3), ev.AgentSpeechEnded(t=2.0, ref=4),
        ev.AgentSpeechEnded(t=2.5, ref=5)])
    assert markers(d) == ["agent_speech_started", "agent_speech_ended"]


def test_bug_b5_detection_effective_mid_speech_announces_the_agent() -> None:
    """I15: detection that becomes effective while the agent speaks starts with agent_started."""
    d = run_scenario(EngineOptions(), [
        ev.SetInterruptionDetection(t=0.0, ref=1, enabled=True), ev.SetVad(t=0.0, ref=2,
                                                                           enabled=False),
        ev.AgentSpeechStarted(t=0.0, ref=3), ev.SetVad(t=0.0, ref=4, enabled=True),
        ev.UserSpeechStarted(t=0.1, ref=5), ev.AgentSpeechEnded(t=1.0, ref=6)])
    m = markers(d)
    assert m and m[0] == "agent_speech_started", m


def test_bug_b6_invalid_update_options_changes_nothing() -> None:
    """errors: an UpdateOptions refused with ConfigError leaves options and clock untouched."""
    eng = Engine(EngineOptions())
    eng.handle(ev.VadStartOfSpeech(t=1.0))
    with pytest.raises(TurnFsmError):
        eng.handle(ev.UpdateOptions(t=2.0, endpointing={"min_delay": 0.1},
                                    set_turn_detection=True, turn_detection="bogus"))
    assert eng.cx.endpointing.min_delay == 0.5
    eng.handle(ev.VadEndOfSpeech(t=1.5))  # the refused input did not move the clock


def test_bug_b7_wrong_type_field_raises_input_error() -> None:
    """errors: a non-numeric value in a numeric field raises InputError, changing nothing."""
    eng = Engine(EngineOptions())
    with pytest.raises(InputError):
        eng.handle(ev.VadStartOfSpeech(t=3.0, speech_duration="x"))  # type: ignore[arg-type]
    assert eng.state()["user_speech"] == "silent"


def test_bug_b8_whitespace_preflight_gives_no_empty_preemptive() -> None:
    """I21: a whitespace-only preflight never produces an empty PreemptiveGeneration."""
    d = run_scenario(EngineOptions(), [ev.SttPreflight(t=1.0, ref=1, text=" ")])
    pg = [o for o in d.outputs if isinstance(o, out.PreemptiveGeneration)]
    assert all(o.new_transcript for o in pg), pg


def test_bug_b9_anchor_at_time_zero_counts() -> None:
    """I8: speech last heard at t=0 anchors the delay at 0 like any other time."""
    d = run_scenario(EngineOptions(), [
        ev.VadStartOfSpeech(t=0.0, ref=1), ev.VadInferenceDone(t=0.0, ref=2,
                                                               raw_accumulated_speech=0.1),
        ev.SttFinal(t=0.1, ref=3, text="hi"), ev.VadEndOfSpeech(t=0.2, ref=4)])
    eot = [o for o in d.outputs if isinstance(o, out.EndOfTurn)]
    assert [o.t for o in eot] == [0.5]


def test_a_dropped_vad_start_keeps_an_stt_commitment() -> None:
    """I9 (stt clause): a VAD start dropped because no VAD is attached is no speech onset: the
    STT's end-of-speech commitment stays, and the utterance's final ends the turn."""
    d = Driver(EngineOptions(turn_detection="stt", vad=False), check=True)
    d.feed(ev.SttEndOfSpeech(t=0.0, ref=1))
    d.feed(ev.VadStartOfSpeech(t=0.0, ref=2))
    assert d.state["authority"] == "stt_awaiting_final"
    d.feed(ev.SttFinal(t=0.0, ref=3, text=""))
    d.feed(ev.SttFinal(t=0.0, ref=4, text="a"))
    assert d.state["turn"] in ("predicting", "waiting")


def test_bug_b11_stt_end_on_empty_turn_commits_only_its_utterance() -> None:
    """I9/D17: an STT end of speech that decides nothing awaits its utterance's final; the
    next speech onset ends that, so the next utterance is not committed in advance."""
    d = Driver(EngineOptions(turn_detection="stt"), check=False)
    d.feed(ev.SttEndOfSpeech(t=0.0, ref=1))
    assert d.state["authority"] == "stt_awaiting_final"
    d.feed(ev.SttStartOfSpeech(t=1.0, ref=2))
    assert d.state["authority"] == "none"


def test_bug_b12_commit_waiting_for_a_final_keeps_skip_reply() -> None:
    """I10: the final a skip_reply commit waits for is delivered with skip_reply, once."""
    d = run_scenario(EngineOptions(), [
        ev.VadStartOfSpeech(t=0.5, ref=1, speech_duration=0.2),
        ev.VadInferenceDone(t=0.9, ref=2, raw_accumulated_speech=0.4),
        ev.VadEndOfSpeech(t=1.0, ref=3, silence_duration=0.1),
        ev.CommitUserTurn(t=1.2, ref=4, skip_reply=True),
        ev.SttFinal(t=1.5, ref=5, text="book a table"),
        ev.VadStartOfSpeech(t=3.0, ref=6),
        ev.VadInferenceDone(t=3.4, ref=7, raw_accumulated_speech=0.4),
        ev.VadEndOfSpeech(t=3.5, ref=8), ev.SttFinal(t=3.6, ref=9, text="for two")])
    eot = [(o.new_transcript, o.skip_reply) for o in d.outputs if isinstance(o, out.EndOfTurn)]
    res = [o.transcript for o in d.outputs if isinstance(o, out.CommitResult)]
    assert eot == [("book a table", True), ("for two", False)]
    assert res == ["book a table"]


def test_bug_b13_agent_restart_over_speech_keeps_marker_grammar() -> None:
    """I15: every overlap_speech_ended sent to the detector closes an overlap it saw opened."""
    d = run_scenario(EngineOptions(interruption_detection=True), [
        ev.AgentSpeechStarted(t=0.0, ref=1), ev.VadStartOfSpeech(t=0.1, ref=2),
        ev.UserSpeechEnded(t=0.2, ref=3), ev.AgentSpeechStarted(t=0.3, ref=4),
        ev.VadEndOfSpeech(t=0.5, ref=5)])
    m = markers(d)
    assert m.count("overlap_speech_ended") <= m.count("overlap_speech_started"), m


# ===== every state x event pair ==================================================================

WALK = st.lists(st.tuples(DT, st.sampled_from(range(len(ps.input_catalogue(0.0, 0, 0))))),
                max_size=14)


def walk_driver(opts: EngineOptions, host: HostScript, walk: list[tuple[float, int]],
                factory: Any = ps.CheckedEngine, check: bool = True) -> Driver:
    """A driver brought into some reachable configuration by a random walk."""
    d = Driver(opts, host, engine_factory=factory, check=check)
    for dt, k in walk:
        t = at(d, dt)
        rid = max(d.model_requests, default=0)
        e = ps.input_catalogue(t, d.next_ref(), rid)[k]
        if isinstance(e, ev.EndOfTurnAnswered | ev.Close) or (
                isinstance(e, ev.EouModelAnswered) and d.engine.model_request_pending(rid)):
            continue  # answers come from the host model; close ends the walk's interest
        d.feed(e)
    return d


@settings(suppress_health_check=[HealthCheck.too_slow])
@given(opts=engine_options(), host=HOST_SCRIPT, walk=WALK)
def test_every_state_event_pair_is_handled_or_ignored(opts: EngineOptions, host: HostScript,
                                                      walk: list[tuple[float, int]]) -> None:
    """Every input kind, in reachable configurations, is handled or declared ignored."""
    # ... and raises nothing and keeps every invariant
    d = walk_driver(opts, host, walk)
    plain = walk_driver(opts, host, walk, factory=Engine, check=False)
    assert plain.outputs == d.outputs, "CheckedEngine diverged from Engine"
    chart = default_chart()
    states = {r.name: set(r.states) for r in chart.regions}
    base = d.engine
    assert isinstance(base, ps.CheckedEngine)
    assert not base.fallthrough, base.fallthrough
    for i in range(len(ps.input_catalogue(0.0, 0, 0))):
        c = clone(d)
        e = ps.input_catalogue(c.clock + 0.05, c.next_ref(), max(c.model_requests, default=0))[i]
        c.feed(e)
        c.settle()
        assert not c.engine.fallthrough, (type(e).__name__, c.engine.fallthrough)
        for region, state in c.engine.state().items():
            assert state in states[region], (region, state)


def _bad_inputs(t: float, last: float) -> list[Any]:
    nan, inf = math.nan, math.inf
    bad: list[Any] = [
        ev.VadStartOfSpeech(t=nan), ev.SttFinal(t=inf, text="x"), ev.ClearUserTurn(t=-inf),
        ev.VadInferenceDone(t=nan), ev.VadInferenceDone(t=t, raw_accumulated_speech=nan),
        ev.VadStartOfSpeech(t=True), ev.CommitUserTurn(t="1.0"),  # type: ignore[arg-type]
        "not an event", None, 3.0,
        ev.VadStartOfSpeech(t=t, speech_duration=nan), ev.VadEndOfSpeech(t=t, silence_duration=inf),
        ev.SttFinal(t=t, text="x", confidence=nan), ev.SttInterim(t=t, text="x", end_time=inf),
        ev.OverlapVerdict(t=t, is_interruption=True, overlap_started_at=nan),
        ev.AgentSpeechEnded(t=t, ignore_user_transcript_until=inf),
        ev.CommitUserTurn(t=t, transcript_timeout=nan), ev.AudioPushed(t=t, duration=inf),
        ev.EouModelAnswered(t=t, request_id=1, probability=nan),
        ev.AgentSpeechStarted(t=t, started_at=-inf),
    ]
    if last > 0:
        bad += [ev.VadEndOfSpeech(t=last - 0.01), ev.SttFinal(t=last / 2, text="late")]
    bad += [ev.VadStartOfSpeech(t=t, speech_duration="x"),  # type: ignore[arg-type]
            ev.SttFinal(t=t, text=5)]  # type: ignore[arg-type]
    return bad


@settings(suppress_health_check=[HealthCheck.too_slow])
@given(opts=engine_options(), host=HOST_SCRIPT, walk=WALK, data=st.data())
def test_invalid_inputs_raise_input_error_and_change_nothing(
        opts: EngineOptions, host: HostScript, walk: list[tuple[float, int]], data: Any) -> None:
    """NaN, infinite, backwards or ill-typed inputs raise InputError and change nothing."""
    d = walk_driver(opts, host, walk, factory=Engine)
    last = d.engine.input_clock
    bad = data.draw(st.sampled_from(_bad_inputs(max(last, d.clock) + 0.1, last)), label="bad")
    before = clone(d)
    fp = ps.fingerprint(d.engine)
    with pytest.raises(InputError):
        d.engine.handle(bad)
    assert ps.fingerprint(d.engine) == fp
    for x in (d, before):  # the same continuation behaves the same
        x.feed(ev.VadStartOfSpeech(t=x.clock + 0.2, ref=999_999))
        x.feed(ev.SttFinal(t=x.clock + 0.3, ref=1_000_000, text="after"))
        x.feed(ev.VadEndOfSpeech(t=x.clock + 0.4, ref=1_000_001))
        x.settle()
    assert d.outputs[-40:] == before.outputs[-40:]


# ===== batch equals incremental ==================================================================

TIMELINE = st.lists(st.tuples(DT, st.sampled_from(range(len(ps.input_catalogue(0.0, 0, 0))))),
                    min_size=1, max_size=30)


def timeline_inputs(walk: list[tuple[float, int]]) -> list[ev.Input]:
    """Absolute-time inputs for a timeline (answers and close are left to the driver)."""
    t, res = 0.0, []
    for i, (dt, k) in enumerate(walk):
        t += 0.0 if dt == ps.AT_DEADLINE else dt
        e = ps.input_catalogue(t, i + 1, 1)[k]
        if not isinstance(e, ev.EndOfTurnAnswered | ev.EouModelAnswered | ev.Close):
            res.append(e)
    return res


@settings(suppress_health_check=[HealthCheck.too_slow])
@given(opts=engine_options(), host=HOST_SCRIPT, walk=TIMELINE,
       extra=st.lists(st.sampled_from([0.0, 0.1, 0.5, 0.9, 1.0]), min_size=1, max_size=60))
def test_batch_equals_incremental(opts: EngineOptions, host: HostScript,
                                  walk: list[tuple[float, int]], extra: list[float]) -> None:
    """A timeline gives identical outputs with or without extra no-op advance() calls."""
    inputs = timeline_inputs(walk)
    batch = Driver(opts, host, check=False)
    for e in inputs:
        batch.feed(e)
    batch.settle()
    inc = Driver(opts, host, check=False)
    j = 0
    for e in inputs:
        for _ in range(2):  # advance() to intermediate times, never past a pending answer
            f = extra[j % len(extra)]
            j += 1
            limit = min([e.t, *(d - 1e-9 for d, _rid in inc.shell)])
            target = inc.clock + f * (limit - inc.clock)
            if target >= inc.clock:
                inc.engine_advance(target)
            inc.engine_advance(inc.clock)  # a no-op advance to the current time
        inc.feed(e)
    inc.settle()
    assert inc.outputs == batch.outputs


@settings(suppress_health_check=[HealthCheck.too_slow])
@given(opts=engine_options(), host=HOST_SCRIPT, walk=TIMELINE)
def test_transitions_backend_equals_table_backend(opts: EngineOptions, host: HostScript,
                                                  walk: list[tuple[float, int]]) -> None:
    """The transitions-library backend and the compiled table give identical outputs."""
    inputs = timeline_inputs(walk)
    runs = []
    for backend in ("table", "transitions"):
        d = Driver(opts, host, check=False,
                   engine_factory=lambda o, backend=backend, **k: Engine(o, backend=backend, **k))
        for e in inputs:
            d.feed(e)
        d.settle()
        runs.append(d.outputs)
    assert runs[0] == runs[1]


TRACE_LINES: list[tuple[str, dict[str, Any]]] = [
    ("vad.start_of_speech", {"speech_duration": 0.2}),
    ("vad.inference_done", {"raw_accumulated_speech": 0.3, "speaking": True}),
    ("vad.end_of_speech", {"silence_duration": 0.5}),
    ("stt.interim", {"text": "go to"}), ("stt.preflight", {"text": "go"}),
    ("stt.final", {"text": "hello", "language": "en", "confidence": 0.9, "start_time": 0.1,
                   "end_time": 0.5}),
    ("stt.final", {"text": ""}), ("stt.final", {"text": "go to Paris"}),
    ("stt.start_of_speech", {}), ("stt.end_of_speech", {}), ("stt.usage", {"request_id": "r"}),
    ("overlap", {"is_interruption": True}), ("overlap", {"is_interruption": False}),
    ("detector_error", {}), ("agent.speech_started", {}), ("agent.speech_ended", {}),
    ("signal.user_speech_started", {}), ("signal.user_speech_ended", {}),
    ("signal.overlap_speech_ended", {}), ("commit_user_turn", {"skip_reply": True}),
    ("commit_user_turn", {"transcript_timeout": 0.3}), ("clear_user_turn", {}),
    ("audio", {"duration": 0.02}), ("update_options", {"turn_detection": "manual"}),
    ("update_options", {"endpointing": {"min_delay": 0.2}}), ("set_vad", {"enabled": False}),
    ("set_vad", {"enabled": True}), ("set_stt", {"enabled": True}),
    ("set_interruption_detection", {"enabled": True}),
]

TRACE_HEADER = st.fixed_dictionaries({"kind": st.just("config")}, optional={
    "turn_detection": st.sampled_from(["vad", "stt", "manual", "model", None]),
    "interruption_detection": st.booleans(), "vad": st.booleans(),
    "endpointing": st.just({"min_delay": 0.4, "max_delay": 2.0}),
    "turn_detector": st.sampled_from([{"probability": 0.05}, {"latency": 0.3}]),
    "end_of_turn_returns": st.sampled_from([True, [False, True]])})


@settings(suppress_health_check=[HealthCheck.too_slow])
@given(header=TRACE_HEADER,
       lines=st.lists(st.tuples(st.sampled_from([0.0, 0.1, 0.3, 0.6, 1.2, 3.0]),
                                st.sampled_from(range(len(TRACE_LINES)))), max_size=25),
       blanks=st.lists(st.sampled_from(["", "   ", "\t", "\r"]), max_size=30),
       where=st.lists(st.integers(0, 30), max_size=30),
       notes=st.lists(st.booleans(), max_size=25), crlf=st.booleans())
def test_trace_replay_ignores_blank_lines_and_notes(
        header: dict[str, Any], lines: list[tuple[float, int]], blanks: list[str],
        where: list[int], notes: list[bool], crlf: bool) -> None:
    """The trace replayer gives identical output when blank lines and notes are added."""
    from turnfsm.replay import parse_trace, replay_trace

    t, objs = 0.0, []
    for dt, k in lines:
        t = round(t + dt, 6)
        kind, fields = TRACE_LINES[k]
        objs.append({"t": t, "kind": kind, **fields})
    plain = [json.dumps(header)] + [json.dumps(o) for o in objs]
    # the variant: notes on some inputs, blank lines after the header; remember line numbers
    variant: list[str] = [plain[0]]
    origin: dict[int, int] = {}
    for i, o in enumerate(objs):
        for b, w in zip(blanks, where, strict=False):
            if w == i:
                variant.append(b)
        if i < len(notes) and notes[i]:
            o = {**o, "note": f"note {i} — ünïcode"}
        variant.append(json.dumps(o, ensure_ascii=False))
        origin[len(variant)] = i + 2
    variant += [b for b, w in zip(blanks, where, strict=False) if w >= len(objs)]
    sep = "\r\n" if crlf else "\n"
    want = replay_trace(parse_trace("\n".join(plain) + "\n"), diagnostics=True)
    got = replay_trace(parse_trace(sep.join(variant) + sep), diagnostics=True)
    for rec in got:
        if isinstance(rec.get("input"), int):
            rec["input"] = origin[rec["input"]]
    assert got == want


# ===== mutation checks: the invariant checks catch a broken engine ==============================


def _lossy_release(cx: Any, e: Any) -> None:
    """Mutant action: the release silently loses the first held non-empty final."""
    from turnfsm.core.rules import gate
    for i, h in enumerate(cx.held):
        if isinstance(h, ev.SttFinal) and h.text:
            del cx.held[i]
            break
    gate.release_trimmed(cx, e)


if "mutant_lossy_release" not in RULES.actions:  # the module may be imported twice
    RULES.action("mutant_lossy_release")(_lossy_release)


def _unguarded(name: str) -> Callable[[Any], Any]:
    """Transitions that required ``not name`` no longer do."""
    import attrs

    from turnfsm.chart import Guard

    def change(t: Any) -> Any:
        if Guard(name, True) in t.guards:
            t = attrs.evolve(t, guards=tuple(g for g in t.guards if g != Guard(name, True)))
        return t
    return change


def _silent_drop(cx: Any, e: Any) -> None:
    """A broken backchannel drop: what is held (the judge's held finals) vanishes without a
    record."""
    cx.held = []
    cx.fire("backchannel_dropped")


if "mutant_silent_drop" not in RULES.actions:
    RULES.action("mutant_silent_drop")(_silent_drop)


def _unfloored_accept(cx: Any, e: Any) -> None:
    """Mutant action: an accepted turn lets the next one start before it (the engine before
    the onset floor: the next window re-derives the onset from the whole speech run)."""
    cx.new_turn(cleared=False)
    cx.wait = None


if "mutant_unfloored_accept" not in RULES.actions:
    RULES.action("mutant_unfloored_accept")(_unfloored_accept)


def _keep_wordless(cx: Any, e: Any) -> None:
    """Mutant action: a wordless backchannel is kept (it becomes a turn)."""


if "mutant_keep_wordless" not in RULES.actions:
    RULES.action("mutant_keep_wordless")(_keep_wordless)


def rewired_chart(change: Callable[[Any], Any], profile: str = "livekit") -> Any:
    """The profile's chart with ``change`` applied to every transition (a mutant chart)."""
    import attrs

    from turnfsm.core.profiles import get_profile
    chart = get_profile(profile).chart
    mutant = attrs.evolve(chart, transitions=tuple(change(t) for t in chart.transitions))
    assert mutant != chart, "the mutation did not apply: update the mutant"
    return mutant


def _without(region: str, event: str, action: str) -> Callable[[Any], Any]:
    import attrs

    def change(t: Any) -> Any:
        if t.region == region and t.event == event and action in t.actions:
            t = attrs.evolve(t, actions=tuple(a for a in t.actions if a != action))
        return t
    return change


def _replace_action(old: str, new: str) -> Callable[[Any], Any]:
    import attrs

    def change(t: Any) -> Any:
        if old in t.actions:
            t = attrs.evolve(t, actions=tuple(new if a == old else a for a in t.actions))
        return t
    return change


def _redirect(region: str, event: str, source: str, dest: str,
              was: str | None = None) -> Callable[[Any], Any]:
    """Transitions of (region, event, source) (only those into ``was``, when given) go to
    ``dest`` instead."""
    import attrs

    def change(t: Any) -> Any:
        if t.region == region and t.event == event and t.source == source and (
                was is None or t.dest == was):
            t = attrs.evolve(t, dest=dest)
        return t
    return change


def mutant_chart(region: str, event: str, sources: set[str]) -> Any:
    """The default chart where (region, event) from ``sources`` stays put and runs no
    cancel_wait: the pending end-of-turn wait survives."""
    import attrs

    chart = default_chart()
    ts = []
    for tr in chart.transitions:
        if tr.region == region and tr.event == event and tr.source in sources:
            tr = attrs.evolve(tr, dest=None,
                              actions=tuple(a for a in tr.actions if a != "cancel_wait"))
        ts.append(tr)
    mutant = attrs.evolve(chart, transitions=tuple(ts))
    assert mutant != chart, "the mutation did not apply: update mutant_chart"
    return mutant


def chart_factory(chart: Any) -> Any:
    """Engines running ``chart``."""
    def make(o: EngineOptions, **k: Any) -> Engine:
        return Engine(o, chart=chart, **k)
    return make


STT_OPTIONS = st.builds(EngineOptions, turn_detection=st.just("stt"))
SLOW_DECISION_OPTIONS = st.builds(  # manual commits whose decisions wait for a mode change
    EngineOptions, turn_detection=st.just("manual"),
    endpointing=st.just(EndpointingOptions(min_delay=3.0, max_delay=4.0)))
HELD_OPTIONS = st.builds(EngineOptions, interruption_detection=st.just(True),
                         backchannel_boundary=st.sampled_from([None, (0.0, 0.0), (1.0, 1.0)]))
PLAIN_OPTIONS = st.builds(EngineOptions, turn_detection=st.sampled_from(["vad", None]))
WORDLESS_OPTIONS = st.builds(EngineOptions, stt=st.just(False))  # VAD only: no transcripts
STEADY_HOST = st.just(HostScript())


MUTANTS = [  # (engine factory, options, the invariant that catches it, profile)
    (chart_factory(rewired_chart(_replace_action("release_trimmed", "mutant_lossy_release"))),
     HELD_OPTIONS, "I3", "livekit"),
    (chart_factory(mutant_chart("turn", "clear", {"predicting", "waiting"})), PLAIN_OPTIONS,
     "I11", "livekit"),
    (chart_factory(mutant_chart("turn", "vad_start", {"predicting", "waiting"})),
     PLAIN_OPTIONS, "I1", "livekit"),
    # the three bugs of issue 10, put back
    (chart_factory(rewired_chart(_redirect("authority", "decision_declined", "stt_committed",
                                           "none", was="stt_awaiting_final"))),
     STT_OPTIONS, "I9", "livekit"),
    (chart_factory(rewired_chart(_without("turn", "decision_dropped", "abandon_commit"))),
     SLOW_DECISION_OPTIONS, "I18", "livekit"),
    (chart_factory(rewired_chart(_replace_action("accept_turn", "mutant_unfloored_accept"))),
     st.builds(EngineOptions), "I7", "livekit"),
    # the default profile's rules, broken
    (chart_factory(rewired_chart(_unguarded("holds_for_final"), "default")), PLAIN_OPTIONS,
     "P1", "default"),
    (chart_factory(rewired_chart(_without("turn", "backchannel_dropped", "forget_backchannel"),
                                 "default")), PLAIN_OPTIONS, "P3", "default"),
    (chart_factory(rewired_chart(_replace_action("drop_held_backchannel", "mutant_silent_drop"),
                                 "default")), PLAIN_OPTIONS, "I3", "default"),
    (chart_factory(rewired_chart(_replace_action("drop_wordless_backchannel",
                                                 "mutant_keep_wordless"), "default")),
     WORDLESS_OPTIONS, "P4", "default"),
]


@pytest.mark.slow
@pytest.mark.parametrize("mutant, options, expected, profile", MUTANTS, ids=[
    "release-drops-a-held-final", "clear-keeps-the-wait", "speech-keeps-the-wait",
    "stt-final-after-its-end-of-speech-undecided", "dropped-commit-decision-stays-pending",
    "delivered-onset-leaks-into-the-next-turn", "default-decides-before-a-due-final",
    "default-backchannel-onset-stays", "default-backchannel-vanishes",
    "default-wordless-backchannel-kept"])
def test_invariant_checks_catch_a_broken_engine(mutant: Any, options: Any, expected: str,
                                                profile: str) -> None:
    """A deliberately broken engine is caught by the invariant checks."""
    # fixed seed (derandomize), a small budget, no shrinking
    from hypothesis import Phase

    class Mutant(TurnMachine):
        options_strategy = options
        host_strategy = STEADY_HOST
        engine_factory = mutant
        agent_texts = st.none()

    Mutant.profile = profile
    # 5000: how soon the search meets each mutant also depends on how long engine calls take
    # (an empty 200-step loop in input validation made speech-keeps-the-wait escape 2000)
    with pytest.raises(InvariantViolation, match=expected):
        run_state_machine_as_test(Mutant, settings=settings(
            max_examples=5000, stateful_step_count=30, derandomize=True, database=None,
            deadline=None, phases=[Phase.generate], report_multiple_bugs=False,
            suppress_health_check=list(HealthCheck)))


RUN_THROUGH_DELIVERY = [  # vad mode: a commit delivered while one speech run goes on
    ev.VadStartOfSpeech(t=1.0, ref=1, speech_duration=0.2, inference_duration=0.02),
    ev.VadInferenceDone(t=1.5, ref=2, raw_accumulated_speech=0.72),
    ev.SttFinal(t=1.9, ref=3, text="Book a table", language="en", confidence=0.9),
    ev.VadInferenceDone(t=2.0, ref=4, raw_accumulated_speech=1.22),
    ev.CommitUserTurn(t=2.05, ref=5),
    ev.VadInferenceDone(t=2.3, ref=6, raw_accumulated_speech=1.52),
    ev.VadInferenceDone(t=2.7, ref=7, raw_accumulated_speech=1.92),
    ev.VadInferenceDone(t=3.1, ref=8, raw_accumulated_speech=2.32),
    ev.SttFinal(t=3.3, ref=9, text="for two please", language="en", confidence=0.8),
    ev.VadEndOfSpeech(t=3.5, ref=10, silence_duration=0.28),
]


@pytest.mark.parametrize("profile", ["livekit", "default"])
def test_i7_counts_only_the_speech_run_after_the_delivery(profile: str) -> None:
    """I7 (issue 20): a speech run going on through an accepted delivery starts the next
    turn at the delivery; the engine before that fix (the onset re-derived from the whole
    run, which the old check accepted as evidence) fails the tightened check."""
    d = Driver(EngineOptions(turn_detection="vad"), profile=profile)
    for e in RUN_THROUGH_DELIVERY:
        d.feed(e)
    d.settle()
    eots = [o for o in d.outputs if isinstance(o, out.EndOfTurn)]
    pre = [o for o in d.outputs if isinstance(o, out.PreemptiveGeneration)]
    assert [o.t for o in eots] == [2.5, 3.6]
    assert eots[1].started_speaking_at == 2.5 and eots[1].stopped_speaking_at == 3.1
    assert pre[-1].started_speaking_at == 2.5
    chart = rewired_chart(_replace_action("accept_turn", "mutant_unfloored_accept"), profile)
    m = Driver(EngineOptions(turn_detection="vad"), engine_factory=chart_factory(chart),
               profile=profile)
    with pytest.raises(InvariantViolation, match=r"I7 violated: preemptive generation's "
                                                 r"onset 0\.78\d* precedes the last "
                                                 r"delivery/clear at 2\.5"):
        for e in RUN_THROUGH_DELIVERY:
            m.feed(e)


def test_bug_b14_copied_engine_keeps_its_commit_timeout() -> None:
    """A deep copy or pickle of an engine waiting for a commit's final keeps the timeout."""
    import copy
    import pickle

    eng = Engine(EngineOptions())
    eng.handle(ev.CommitUserTurn(t=0.0))
    assert eng.next_timer() is not None
    assert copy.deepcopy(eng).next_timer() == eng.next_timer()
    assert pickle.loads(pickle.dumps(eng)).next_timer() == eng.next_timer()


@pytest.mark.slow
def test_bug_b15_engine_runs_its_own_chart_after_gc() -> None:
    """An engine runs its own chart even when it reuses the id of a collected chart."""
    import gc

    import attrs

    base = default_chart()
    for _ in range(25):  # CPython usually hands the freed slot to the next same-size object
        a = mutant_chart("turn", "clear", {"predicting", "waiting"})
        Engine(EngineOptions(), chart=a)
        freed = id(a)
        del a
        gc.collect()
        chart = attrs.evolve(base, transitions=tuple(base.transitions))
        if id(chart) == freed:
            break
    else:
        return  # no id was reused (the fixed cache keeps its charts alive): nothing to confuse
    eng = Engine(EngineOptions(), chart=chart)
    for x in [ev.VadStartOfSpeech(t=0.0), ev.SttFinal(t=0.1, text="hi"),
              ev.VadEndOfSpeech(t=0.2), ev.ClearUserTurn(t=0.3)]:
        eng.handle(x)
    assert eng.state()["turn"] == "idle"


def test_bug_b16_vad_reattach_does_not_reannounce_the_agent() -> None:
    """I15: re-attaching the VAD mid agent speech keeps one agent_started per agent_ended."""
    d = run_scenario(EngineOptions(interruption_detection=True), [
        ev.AgentSpeechStarted(t=0.0, ref=1), ev.SetVad(t=0.1, ref=2, enabled=False),
        ev.SetVad(t=0.2, ref=3, enabled=True), ev.AgentSpeechEnded(t=1.0, ref=4)])
    m = markers(d)
    assert m.count("agent_speech_started") == m.count("agent_speech_ended") == 1, m


def test_bug_b22_vad_detach_closes_the_detector_overlap() -> None:
    """I15: an overlap the detector saw opened is closed (to it) before agent_speech_ended."""
    d = run_scenario(EngineOptions(interruption_detection=True), [
        ev.AgentSpeechStarted(t=0.0, ref=1), ev.UserSpeechStarted(t=0.1, ref=2),
        ev.SetVad(t=0.2, ref=3, enabled=False), ev.AgentSpeechEnded(t=1.0, ref=4)])
    m = markers(d)
    assert m.index("overlap_speech_ended") < m.index("agent_speech_ended"), m


def test_bug_b23_detector_restart_while_ineffective_keeps_marker_pairs() -> None:
    """I15: a detector stream never hears agent_speech_ended without agent_speech_started."""
    d = run_scenario(EngineOptions(), [
        ev.AgentSpeechStarted(t=0.0, ref=1), ev.SetInterruptionDetection(t=0.0, ref=2,
                                                                         enabled=True),
        ev.SetVad(t=0.0, ref=3, enabled=False),
        ev.SetInterruptionDetection(t=0.0, ref=4, enabled=True),
        ev.AgentSpeechEnded(t=0.0, ref=5)])
    sig = [(o.signal, o.t) for o in d.outputs if isinstance(o, out.DetectorSignal)]
    assert sig == [("agent_speech_started", 0.0)], sig


def test_bug_b24_speech_released_at_the_agents_end_does_not_close_the_overlap_twice() -> None:
    """I15: an STT end of speech held during agent speech and released by the agent's end
    ends the user's speech, but the overlap's marker was already sent by the agent's end."""
    d = run_scenario(EngineOptions(turn_detection="stt", interruption_detection=True), [
        ev.AgentSpeechStarted(t=0.0, ref=1), ev.SttEndOfSpeech(t=0.0, ref=2),
        ev.UserSpeechStarted(t=0.0, ref=3, speech_duration=0.0),
        ev.SttFinal(t=0.0, ref=4, text=""), ev.AgentSpeechEnded(t=0.0, ref=5)])
    m = markers(d)
    assert m == ["agent_speech_started", "overlap_speech_started", "overlap_speech_ended",
                 "agent_speech_ended"], m
    assert any(isinstance(o, out.EndOfSpeech) for o in d.outputs)
