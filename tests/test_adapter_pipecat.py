"""turnfsm.adapters.pipecat in Pipecat's own user aggregator, driven by Pipecat's test runner.

Each scenario is a script of timed frames (VAD, transcription, bot speaking) fed through
``pipecat.tests.utils.run_test`` to an ``LLMUserAggregator``, on turnfsm's virtual-clock loop
(Pipecat's timers and the session's all run on it, so the runs are exact and instant) and
once on the real loop. The instants Pipecat ends turns at are compared with a bare
``turnfsm.Engine`` fed the same events, and with Pipecat's own strategies on the same frames:
its default start strategies with its timeout stop strategy (the default Smart Turn stop
strategy judges audio, which a frame script does not carry).
"""

from __future__ import annotations

import asyncio
import logging
import subprocess
import sys
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("pipecat")

with warnings.catch_warnings():  # pipecat imports the deprecated audioop
    warnings.simplefilter("ignore", DeprecationWarning)
    from pipecat.frames.frames import (
        BotStartedSpeakingFrame,
        BotStoppedSpeakingFrame,
        EagerEndOfTurnCancelFrame,
        Frame,
        InterimTranscriptionFrame,
        InterruptionFrame,
        LLMContextFrame,
        StartFrame,
        TranscriptionFrame,
        UserSpeakingFrame,
        UserStartedSpeakingFrame,
        UserStoppedSpeakingFrame,
        VADUserStartedSpeakingFrame,
        VADUserStoppedSpeakingFrame,
    )
    from pipecat.pipeline.pipeline import Pipeline
    from pipecat.processors.aggregators.llm_context import LLMContext
    from pipecat.processors.aggregators.llm_response_universal import (
        LLMUserAggregator,
        LLMUserAggregatorParams,
    )
    from pipecat.processors.frame_processor import FrameDirection, FrameProcessor
    from pipecat.tests.utils import SleepFrame, run_test
    from pipecat.turns.user_stop import SpeechTimeoutUserTurnStopStrategy
    from pipecat.turns.user_turn_strategies import UserTurnStrategies

from turnfsm import EndpointingOptions, Engine, EngineOptions, StepRecord
from turnfsm import events as ev
from turnfsm import outputs as out
from turnfsm.adapters.pipecat import (
    RestoredTranscriptionFrame,
    TurnfsmUserTurnStrategies,
    watchdog_floor,
)
from turnfsm.runtime import RuleBasedModel, run_virtual

Script = list[tuple[float, Frame]]
EPS = 1e-6


# -- scripts ---------------------------------------------------------------------------------


def final(text: str) -> TranscriptionFrame:
    return TranscriptionFrame(text=text, user_id="user", timestamp="")


def interim(text: str) -> InterimTranscriptionFrame:
    return InterimTranscriptionFrame(text=text, user_id="user", timestamp="")


def utterance(start: float, length: float, text: str, *, partial: str | None = None
              ) -> Script:
    """What Pipecat's VAD and STT send for one utterance: a VAD start, activity frames every
    0.2 s while speech goes on, an interim half-way, the final 0.1 s after the speech, and the
    VAD stop (stop_secs 0.2) 0.2 s after the speech."""
    frames: Script = [(start, VADUserStartedSpeakingFrame(start_secs=0.2))]
    n = round(length / 0.2)
    frames += [(round(start + 0.2 * i, 6), UserSpeakingFrame()) for i in range(n + 1)]
    if partial:
        frames.append((round(start + length / 2 + 0.01, 6), interim(partial)))
    frames.append((round(start + length + 0.1, 6), final(text)))
    frames.append((round(start + length + 0.2, 6), VADUserStoppedSpeakingFrame(stop_secs=0.2)))
    return sorted(frames, key=lambda x: x[0])


def hesitation() -> Script:
    """Scenario A: "I want to book a table for" ... a 1.2 s pause ... "four people."."""
    return [*utterance(0.0, 1.2, "I want to book a table for", partial="I want to"),
            *utterance(2.4, 0.8, "four people.")]


def backchannel() -> Script:
    """Scenario B: the bot speaks from 0 to 5 s; the user says "uh huh" at 2 s."""
    return [(0.0, BotStartedSpeakingFrame()), *utterance(2.0, 0.4, "uh huh"),
            (5.0, BotStoppedSpeakingFrame())]


# -- the engine's own replay of the same events ----------------------------------------------


def engine_replay(options: EngineOptions, script: Script, until: float,
                  profile: str = "default") -> list[out.Output]:
    """A bare Engine fed the events the adapter documents for each frame, at the frame's
    time; the rule-based model answers at once; every end of turn is accepted."""
    engine, model, outs = Engine(options, profile=profile), RuleBasedModel(), []

    def take(os: list[out.Output]) -> None:
        for o in os:
            outs.append(o)
            if isinstance(o, out.EouModelRequest):
                p = model.probability(o.transcript, o.language)
                take(engine.handle(ev.EouModelAnswered(t=o.t, request_id=o.request_id,
                                                       probability=p, threshold=model.threshold)))
            elif isinstance(o, out.EndOfTurn):
                take(engine.handle(ev.EndOfTurnAnswered(t=o.t, accepted=True)))

    def run_until(t: float) -> None:
        while (d := engine.next_deadline()) is not None and d <= t:
            take(engine.fire_next_timer())

    onset, activity = 0.0, False
    for t, f in script:
        run_until(t)
        events: list[ev.Input] = []
        if isinstance(f, VADUserStartedSpeakingFrame):
            onset, activity = t - f.start_secs, False
            events.append(ev.VadStartOfSpeech(t=t, speech_duration=f.start_secs))
        elif isinstance(f, UserSpeakingFrame):
            activity = True
            s = max(t - onset, 1e-3)
            events.append(ev.VadInferenceDone(t=t, raw_accumulated_speech=s, speech_duration=s,
                                              speaking=True))
        elif isinstance(f, VADUserStoppedSpeakingFrame):
            if not activity:
                s = max(t - onset, 1e-3)
                events.append(ev.VadInferenceDone(t=t, raw_accumulated_speech=s,
                                                  speech_duration=s, speaking=True))
            events.append(ev.VadEndOfSpeech(t=t, silence_duration=f.stop_secs,
                                            speech_duration=max(0.0, t - f.stop_secs - onset)))
        elif isinstance(f, TranscriptionFrame):
            events.append(ev.SttFinal(t=t, text=f.text))
        elif isinstance(f, InterimTranscriptionFrame):
            events.append(ev.SttInterim(t=t, text=f.text))
        elif isinstance(f, BotStartedSpeakingFrame):
            events.append(ev.AgentSpeechStarted(t=t))
        elif isinstance(f, BotStoppedSpeakingFrame):
            events.append(ev.AgentSpeechEnded(t=t))
        for e in events:
            take(engine.handle(e))
    run_until(until)
    return outs


# -- driving Pipecat's aggregator ------------------------------------------------------------


@dataclass
class Run:
    """What one run produced, times relative to the script's start."""

    started: list[float] = field(default_factory=list)
    stopped: list[tuple[float, str]] = field(default_factory=list)
    down: Sequence[Frame] = ()
    up: Sequence[Frame] = ()
    context: list[Any] = field(default_factory=list)
    outputs: list[out.Output] = field(default_factory=list)  # turnfsm's, via the hooks
    inputs: list[ev.Input] = field(default_factory=list)  # what the session was pushed
    origin: float = 0.0  # the session time of the script's start
    session_closed: bool = False

    def of(self, kind: type[Any]) -> list[Any]:
        return [o for o in self.outputs if isinstance(o, kind)]

    def frames(self, kind: type[Frame]) -> list[Frame]:
        return [f for f in self.down if isinstance(f, kind)]

    def eot(self) -> list[out.EndOfTurn]:
        return self.of(out.EndOfTurn)


class Recorder:
    """The app's hooks: keeps every output (decision records included)."""

    def __init__(self, outputs: list[out.Output]) -> None:
        self.outputs = outputs

    def on_output(self, o: out.Output) -> None:
        self.outputs.append(o)


class Probe(FrameProcessor):
    """First in the pipeline: notes when the script's first frame arrives (loop time and
    session time) and from then records every input the session is pushed."""

    def __init__(self, run: Run, strategies: TurnfsmUserTurnStrategies | None,
                 first: float) -> None:
        super().__init__(enable_direct_mode=True)
        self.run, self.strategies, self.first = run, strategies, first
        self.t0: float | None = None  # the loop time of script time 0

    async def process_frame(self, frame: Frame, direction: FrameDirection) -> None:
        await super().process_frame(frame, direction)
        if self.t0 is None and not isinstance(frame, StartFrame):
            self.t0 = asyncio.get_running_loop().time() - self.first
            session = self.strategies.session if self.strategies is not None else None
            if session is not None:
                self.run.origin = session.now() - self.first
                session.engine.add_observer(self.record, vad_windows=True)
        await self.push_frame(frame, direction)

    def record(self, r: StepRecord) -> None:
        if r.input is not None:
            self.run.inputs.append(r.input)


def drive(script: Script, *, until: float,
          strategies: Callable[[Run], TurnfsmUserTurnStrategies] | None = None,
          user_turn_stop_timeout: float | None = None, virtual: bool = True) -> Run:
    """Run the script through an LLMUserAggregator with turnfsm's strategies (or, without
    ``strategies``, Pipecat's default start strategies and its timeout stop strategy)."""
    run = Run()

    async def main() -> None:
        loop = asyncio.get_running_loop()
        context = LLMContext()
        made = strategies(run) if strategies is not None else None
        if made is not None:
            kw = {} if user_turn_stop_timeout is None else {
                "user_turn_stop_timeout": user_turn_stop_timeout}
            params = made.user_params(**kw)
        else:
            params = LLMUserAggregatorParams(user_turn_strategies=UserTurnStrategies(
                stop=[SpeechTimeoutUserTurnStopStrategy()]))
        aggregator = LLMUserAggregator(context, params=params)
        probe = Probe(run, made, script[0][0])

        def since_start() -> float:
            assert probe.t0 is not None
            return loop.time() - probe.t0

        @aggregator.event_handler("on_user_turn_started")  # type: ignore[untyped-decorator]
        async def started(_a: Any, _s: Any) -> None:
            run.started.append(since_start())

        @aggregator.event_handler("on_user_turn_stopped")  # type: ignore[untyped-decorator]
        async def stopped(_a: Any, _s: Any, message: Any) -> None:
            run.stopped.append((since_start(), message.content))

        frames: list[Frame] = []
        now = 0.0
        for t, f in script:
            if t > now + EPS:
                frames.append(SleepFrame(sleep=t - now))
                now = t
            frames.append(f)
        frames.append(SleepFrame(sleep=until - now))
        run.down, run.up = await run_test(Pipeline([probe, aggregator]), frames_to_send=frames)
        run.context = list(context.messages)
        run.session_closed = made is not None and made.session is not None and \
            made.session.closed

    if virtual:
        run_virtual(main())
    else:
        asyncio.run(main())
    return run


def with_turnfsm(options: EngineOptions, **kw: Any
                 ) -> Callable[[Run], TurnfsmUserTurnStrategies]:
    def make(run: Run) -> TurnfsmUserTurnStrategies:
        return TurnfsmUserTurnStrategies(options, hooks=Recorder(run.outputs), **kw)
    return make


def forwarded(script: Script, run: Run) -> None:
    """No frame lost or reordered: every script frame the aggregator passes on (all but the
    transcriptions it consumes) comes out once, in script order."""
    mine = {id(f): i for i, (_, f) in enumerate(script)}
    seen = [mine[id(f)] for f in run.down if id(f) in mine]
    expected = [i for i, (_, f) in enumerate(script)
                if not isinstance(f, TranscriptionFrame | InterimTranscriptionFrame)]
    assert seen == expected


def same_turn_ends(run: Run, oracle: list[out.Output]) -> None:
    """Pipecat ended its turns when, and with what, the bare engine's end of turn says, and
    turnfsm's decision records (times shifted by the session's start) are the engine's."""
    want = [o for o in oracle if isinstance(o, out.EndOfTurn)]
    got = run.eot()

    def key(o: out.EndOfTurn, origin: float) -> tuple[Any, ...]:
        d = o.decision
        assert d is not None
        return (round(o.t - origin, 6), o.new_transcript, d.trigger, d.delay, d.delay_reason,
                round(d.wait_started_at - origin, 6),
                None if d.anchor is None else round(d.anchor - origin, 6),
                None if d.model is None else (d.model.probability, d.model.threshold))

    assert [key(o, run.origin) for o in got] == [key(o, 0.0) for o in want]
    assert [(round(t, 6), text) for t, text in run.stopped] == \
        [(round(o.t, 6), o.new_transcript) for o in want]


def pushed_in_order(script: Script, run: Run) -> None:
    """turnfsm was told of every VAD and transcription frame, once, in script order."""
    mapped = (VADUserStartedSpeakingFrame, UserSpeakingFrame, VADUserStoppedSpeakingFrame,
              TranscriptionFrame, InterimTranscriptionFrame)
    assert [e.ref for e in run.inputs if e.ref is not None] == \
        [f.id for _, f in script if isinstance(f, mapped)]


MODEL = EngineOptions(turn_detection="model")


# -- scenario A: hesitation --------------------------------------------------------------------


def test_hesitation_is_one_turn_ended_where_the_engine_says() -> None:
    """Scenario A with turnfsm: one turn, ended at the engine's instant, no frame lost."""
    script = hesitation()
    run = drive(script, until=8.0, strategies=with_turnfsm(MODEL))
    oracle = engine_replay(MODEL, script, until=8.0)
    assert run.started == [0.0]
    assert [text for _, text in run.stopped] == ["I want to book a table for four people."]
    same_turn_ends(run, oracle)
    forwarded(script, run)
    pushed_in_order(script, run)
    [eot] = run.eot()
    assert eot.decision is not None and "max_delay" not in eot.decision.why()
    assert run.context == [{"role": "user",
                            "content": "I want to book a table for four people."}]
    assert len(run.frames(UserStartedSpeakingFrame)) == len(run.frames(InterruptionFrame)) == 1
    assert run.session_closed  # the EndFrame closed the session


def test_hesitation_waits_max_delay_after_the_unfinished_part() -> None:
    """Scenario A: after "...a table for" turnfsm asked the model and armed max_delay."""
    run = drive(hesitation(), until=8.0, strategies=with_turnfsm(MODEL))
    [first_request, _] = run.of(out.EouModelRequest)
    assert first_request.transcript == "I want to book a table for"
    assert round(first_request.t - run.origin, 6) == 1.4  # the VAD stop of the first part
    first_answer = next(e for e in run.inputs if isinstance(e, ev.EouModelAnswered))
    assert first_answer.probability is not None and first_answer.threshold is not None
    assert first_answer.probability < first_answer.threshold  # unlikely over: max_delay
    # the pause (1.2 s) is shorter than max_delay (3 s): the wait was cancelled by new speech
    assert not [o for o in run.eot() if o.t - run.origin < 2.4]


def test_hesitation_is_two_turns_with_pipecat_strategies() -> None:
    """Scenario A with Pipecat's strategies: the pause ends a turn; the rest is a second one."""
    script = hesitation()
    run = drive(script, until=8.0)
    assert run.started == [0.0, 2.4]
    assert [(round(t, 6), text) for t, text in run.stopped] == [
        (2.0, "I want to book a table for"), (4.0, "four people.")]  # VAD stop + 0.6 s
    forwarded(script, run)
    assert len(run.frames(InterruptionFrame)) == 2


# -- scenario B: backchannel -------------------------------------------------------------------


def test_backchannel_interrupts_with_pipecat_strategies() -> None:
    """Scenario B with Pipecat's strategies: "uh huh" interrupts the bot and is answered."""
    script = backchannel()
    run = drive(script, until=7.0)
    assert run.started == [2.0]
    assert [(round(t, 6), text) for t, text in run.stopped] == [(3.2, "uh huh")]
    assert len(run.frames(InterruptionFrame)) == 1
    assert run.context == [{"role": "user", "content": "uh huh"}]
    forwarded(script, run)


def test_backchannel_without_a_detector_neither_interrupts_nor_answers() -> None:
    """Scenario B with turnfsm's default profile and no interruption detector: "uh huh" is
    a backchannel (two words over the bot): no interruption, no turn, a drop record."""
    script = backchannel()
    run = drive(script, until=7.0, strategies=with_turnfsm(MODEL))
    same_turn_ends(run, engine_replay(MODEL, script, until=7.0))
    assert run.started == [] and run.stopped == [] and run.context == []
    assert not run.frames(InterruptionFrame) and not run.frames(UserStartedSpeakingFrame)
    [drop] = run.of(out.TranscriptDropped)
    assert (drop.text, drop.reason) == ("uh huh", "backchannel")
    assert drop.record is not None and "backchannel_max_words 2" in drop.record.detail
    forwarded(script, run)
    pushed_in_order(script, run)


def test_longer_speech_over_the_bot_without_a_detector_interrupts_on_its_words() -> None:
    """Without a detector, the default profile's words are the verdict: speech over the bot
    that grows past a backchannel interrupts at the interim that shows it."""
    script = [(0.0, BotStartedSpeakingFrame()),
              *utterance(2.0, 1.0, "wait, what about Tuesday?", partial="wait, what about"),
              (2.9, BotStoppedSpeakingFrame())]
    script.sort(key=lambda x: x[0])
    run = drive(script, until=6.0, strategies=with_turnfsm(MODEL))
    [interruption] = run.of(out.Interruption)
    assert interruption.record is not None and interruption.record.source == "words"
    assert run.started == [round(interruption.t - run.origin, 6)]
    assert len(run.frames(InterruptionFrame)) == 1
    assert [text for _, text in run.stopped] == ["wait, what about Tuesday?"]
    forwarded(script, run)


def test_backchannel_without_a_detector_interrupts_on_the_livekit_profile() -> None:
    """Scenario B on the livekit profile with no interruption detector: it interrupts, as
    Pipecat does."""
    script = backchannel()
    run = drive(script, until=7.0, strategies=with_turnfsm(MODEL, profile="livekit"))
    same_turn_ends(run, engine_replay(MODEL, script, until=7.0, profile="livekit"))
    assert run.started == [2.0]
    assert [text for _, text in run.stopped] == ["uh huh"]
    assert len(run.frames(InterruptionFrame)) == 1
    forwarded(script, run)
    pushed_in_order(script, run)


class VerdictDetector:
    """A stand-in for an audio interruption detector: its verdict ``delay`` seconds after
    an overlap starts (None: when the overlap ends)."""

    def __init__(self, is_interruption: bool, delay: float | None = None) -> None:
        self.is_interruption, self.delay = is_interruption, delay
        self.strategies: TurnfsmUserTurnStrategies | None = None
        self.signals: list[str] = []

    async def signal(self, o: out.DetectorSignal) -> None:
        self.signals.append(o.signal)
        assert self.strategies is not None and self.strategies.session is not None
        session = self.strategies.session
        if o.signal == "overlap_speech_started" and self.delay is not None:
            await session.sleep(self.delay)
        elif o.signal != "overlap_speech_ended" or self.delay is not None:
            return
        session.push_overlap(ev.OverlapVerdict(is_interruption=self.is_interruption,
                                               overlap_started_at=o.started_at,
                                               probability=0.9 if self.is_interruption else 0.1))


def with_detector(detector: VerdictDetector) -> Callable[[Run], TurnfsmUserTurnStrategies]:
    def make(run: Run) -> TurnfsmUserTurnStrategies:
        s = TurnfsmUserTurnStrategies(
            EngineOptions(turn_detection="model", interruption_detection=True),
            hooks=Recorder(run.outputs), session_kwargs={"detector": detector})
        detector.strategies = s
        return s
    return make


def test_backchannel_judged_by_a_detector_neither_interrupts_nor_answers() -> None:
    """Scenario B with turnfsm and a detector: no interruption, no turn, a drop record."""
    script = backchannel()
    detector = VerdictDetector(is_interruption=False)
    run = drive(script, until=7.0, strategies=with_detector(detector))
    assert run.started == [] and run.stopped == [] and run.context == []
    assert not run.frames(InterruptionFrame) and not run.frames(UserStartedSpeakingFrame)
    assert not run.frames(LLMContextFrame)
    [drop] = run.of(out.TranscriptDropped)
    assert (drop.text, drop.reason) == ("uh huh", "backchannel")
    # judged when its speech ended, by its words: the verdict comes at the overlap's end
    assert drop.record is not None and "backchannel_max_words" in drop.record.detail
    assert detector.signals == ["agent_speech_started", "overlap_speech_started",
                                "overlap_speech_ended", "agent_speech_ended"]
    forwarded(script, run)
    pushed_in_order(script, run)


def test_interruption_verdict_starts_the_turn_and_interrupts() -> None:
    """A detector's interruption verdict starts Pipecat's turn and broadcasts the
    InterruptionFrame, not at the VAD start: with no words yet, while the bot speaks, the
    verdict waits for them (a backchannel phrase would overrule it) and stands when the
    bot's output stops under the user's speech."""
    script = [(0.0, BotStartedSpeakingFrame()),
              *utterance(2.0, 1.0, "wait, what about Tuesday?"),
              (2.6, BotStoppedSpeakingFrame())]  # the bot's output stops (paused, say)
    script.sort(key=lambda x: x[0])
    detector = VerdictDetector(is_interruption=True, delay=0.4)
    run = drive(script, until=6.0, strategies=with_detector(detector))
    [interruption] = run.of(out.Interruption)
    assert round(interruption.t - run.origin, 6) == 2.6
    assert interruption.record is not None and \
        round(interruption.record.detected_at - run.origin, 6) == 2.4  # the detector's time
    assert run.started == [2.6]
    assert [text for _, text in run.stopped] == ["wait, what about Tuesday?"]
    assert len(run.frames(InterruptionFrame)) == 1
    forwarded(script, run)


def test_backchannel_then_interruption_keeps_only_the_interrupting_words() -> None:
    """A backchannel, then an interruption in the same bot utterance: the bot is interrupted
    once, and the aggregation (so the LLM) gets only what turnfsm kept, as turnfsm's turn."""
    script = [(0.0, BotStartedSpeakingFrame()), *utterance(1.0, 0.4, "uh huh"),
              *utterance(3.0, 1.0, "wait, what about Tuesday?", partial="wait, what"),
              (4.5, BotStoppedSpeakingFrame())]  # the output's stop arrives late
    script.sort(key=lambda x: x[0])
    detector = VerdictDetector(is_interruption=True, delay=0.4)
    detector_first = VerdictDetector(is_interruption=False)

    class Both(VerdictDetector):
        """Says "backchannel" for the first overlap, "interruption" for the second."""

        async def signal(self, o: out.DetectorSignal) -> None:
            self.signals.append(o.signal)
            which = detector_first if self.signals.count("overlap_speech_started") < 2 \
                else detector
            which.strategies = self.strategies
            await which.signal(o)

    both = Both(is_interruption=False)
    run = drive(script, until=8.0, strategies=with_detector(both))
    # the verdict (3.4 s) waits for words while the bot speaks: the interim "wait, what"
    # (3.51 s) is no backchannel phrase
    assert [round(o.t - run.origin, 6) for o in run.of(out.Interruption)] == [3.51]
    assert [(d.text, d.reason) for d in run.of(out.TranscriptDropped)] == [
        ("uh huh", "backchannel")]
    [eot] = run.eot()
    assert eot.new_transcript == "wait, what about Tuesday?"
    assert [text for _, text in run.stopped] == ["wait, what about Tuesday?"]
    assert run.context == [{"role": "user", "content": "wait, what about Tuesday?"}]
    assert run.started == [3.51] and len(run.frames(InterruptionFrame)) == 1
    assert not run.frames(RestoredTranscriptionFrame)  # consumed by the aggregator
    forwarded(script, run)
    pushed_in_order(script, run)


def test_interruption_of_a_bot_that_started_over_the_user() -> None:
    """The bot starts while the user speaks (their turn is open): the detector's
    interruption verdict broadcasts a second InterruptionFrame into the open turn."""
    script = [*utterance(0.0, 1.6, "no, I said four people"), (0.6, BotStartedSpeakingFrame()),
              (1.4, BotStoppedSpeakingFrame())]
    script.sort(key=lambda x: x[0])
    detector = VerdictDetector(is_interruption=True, delay=0.3)
    run = drive(script, until=5.0, strategies=with_detector(detector))
    assert "overlap_speech_started" in detector.signals
    assert [round(o.t - run.origin, 6) for o in run.of(out.Interruption)] == [0.9]
    assert run.started == [0.0] and len(run.frames(InterruptionFrame)) == 2
    assert [text for _, text in run.stopped] == ["no, I said four people"]
    forwarded(script, run)


# -- the controller's caveats ------------------------------------------------------------------


def test_end_of_turn_is_refused_while_the_vad_says_speech() -> None:
    """A commit while the VAD reports speech is refused (Pipecat would not stop); the turn
    ends when the user stops, with all of it."""
    holder: list[TurnfsmUserTurnStrategies] = []

    class CommitOnFirstFinal(Recorder):
        def on_transcript(self, o: out.Transcript) -> None:
            if o.type == "final" and o.text == "book a table":
                holder[0].session.commit_user_turn()  # type: ignore[union-attr]

    def make(run: Run) -> TurnfsmUserTurnStrategies:
        holder.append(TurnfsmUserTurnStrategies(hooks=CommitOnFirstFinal(run.outputs)))
        return holder[0]

    script = [(0.0, VADUserStartedSpeakingFrame(start_secs=0.2)), (0.0, UserSpeakingFrame()),
              (1.0, final("book a table")), (1.4, UserSpeakingFrame()),
              (1.6, final("for two")), (1.8, VADUserStoppedSpeakingFrame(stop_secs=0.2))]
    run = drive(script, until=4.0, strategies=make)
    first, second = run.eot()
    assert first.decision is not None and first.decision.trigger == "commit"
    assert round(first.t - run.origin, 6) == 1.0
    assert [text for _, text in run.stopped] == ["book a table for two"]
    assert round(run.stopped[0][0], 6) == round(second.t - run.origin, 6) == 1.9


def test_a_watchdog_below_turnfsm_wait_is_reported_and_wins(
        caplog: pytest.LogCaptureFixture) -> None:
    """Pipecat's stop watchdog below max_delay ends the turn first: a warning, and turnfsm
    drops its own turn (it is never answered twice)."""
    script = utterance(0.0, 1.0, "I want to book a table for")
    with caplog.at_level(logging.WARNING, logger="turnfsm.adapters.pipecat"):
        run = drive(script, until=7.0, strategies=with_turnfsm(MODEL), user_turn_stop_timeout=1.0)
    assert [(round(t, 6), text) for t, text in run.stopped] == [
        (2.2, "I want to book a table for")]  # the VAD stop (1.2 s) + 1 s
    assert run.eot() == []
    assert [d.reason for d in run.of(out.TranscriptDropped)] == ["clear_user_turn"]
    assert "user_turn_stop_timeout >= 6.0" in caplog.text


def test_user_params_keep_the_watchdog_above_turnfsm_longest_wait() -> None:
    """user_params() sets user_turn_stop_timeout above max_delay plus the model's time."""
    s = TurnfsmUserTurnStrategies(EngineOptions(
        turn_detection="model", endpointing=EndpointingOptions(max_delay=6.0)),
        session_kwargs={"model_timeout": 1.5})
    params = s.user_params(user_idle_timeout=3.0)
    assert params.user_turn_strategies is s and params.user_idle_timeout == 3.0
    assert params.user_turn_stop_timeout == s.user_turn_stop_timeout == 8.5
    assert TurnfsmUserTurnStrategies().user_turn_stop_timeout == 5.0  # Pipecat's default
    assert watchdog_floor(EngineOptions(turn_detection="manual")) >= 3600


# -- the rest of the mapping -------------------------------------------------------------------


def test_preemptive_generation_speculates_and_the_end_of_turn_confirms() -> None:
    """PreemptiveGeneration runs speculative inferences; the end of turn confirms the last
    one (no second inference) after withdrawing the stale one."""
    script = hesitation()
    run = drive(script, until=8.0, strategies=with_turnfsm(MODEL, preemptive_generation=True))
    inferences = run.frames(LLMContextFrame)
    assert [f.speculation for f in inferences] == [True, True]  # type: ignore[attr-defined]
    assert len(run.frames(EagerEndOfTurnCancelFrame)) == 1
    assert [text for _, text in run.stopped] == ["I want to book a table for four people."]
    down = list(run.down)
    assert down.index(inferences[1]) < down.index(run.frames(UserStoppedSpeakingFrame)[0])
    assert run.context == [{"role": "user",
                            "content": "I want to book a table for four people."}]


def test_a_transcript_without_vad_still_makes_a_turn() -> None:
    """Words with no VAD frame: turnfsm ends the turn on the final; Pipecat's turn is
    started and stopped then."""
    script: Script = [(0.5, final("hello there"))]
    run = drive(script, until=3.0, strategies=with_turnfsm(EngineOptions()))
    assert run.started == [1.0]
    assert [(round(t, 6), text) for t, text in run.stopped] == [(1.0, "hello there")]
    same_turn_ends(run, engine_replay(EngineOptions(), script, until=3.0))


def test_runs_on_the_real_event_loop() -> None:
    """On asyncio's real loop the turn ends within 0.1 s of the engine's instant."""
    options = EngineOptions(endpointing=EndpointingOptions(min_delay=0.1, max_delay=0.5))
    script = utterance(0.0, 0.4, "two coffees, please.")
    run = drive(script, until=1.0, strategies=with_turnfsm(options), virtual=False)
    [want] = [o for o in engine_replay(options, script, 1.0) if isinstance(o, out.EndOfTurn)]
    [(t, text)] = run.stopped
    assert text == "two coffees, please." and abs(t - want.t) < 0.1
    [eot] = run.eot()
    assert eot.decision is not None and eot.decision.why()
    assert run.session_closed


def test_example_app_runs_offline() -> None:
    """examples/pipecat_app.py (virtual clock): one turn for the hesitation, the backchannel
    dropped, the interruption taken, each turn with its reason."""
    example = Path(__file__).resolve().parents[1] / "examples" / "pipecat_app.py"
    r = subprocess.run([sys.executable, str(example), "--virtual"], capture_output=True,
                       text=True, check=True, timeout=120)
    assert "END OF TURN 'I want to book a table for four people tonight.'" in r.stdout
    assert "dropped 'uh huh' (backchannel)" in r.stdout
    assert "bot stops speaking (interrupted)" in r.stdout
    assert r.stdout.count("END OF TURN") == r.stdout.count("why: ") == 3
    assert "3 turns:" in r.stdout and "Traceback" not in r.stderr


def test_user_params_take_the_vad_window_by_window() -> None:
    """user_params(vad_analyzer=...) sets the analyzer's start_secs to 0.05 s and its
    stop_secs to 0.5 s (at most min_delay), gives the overlap detector its confidence
    threshold and records every window the analyzer scores; None keeps the analyzer's own."""
    from pipecat.audio.vad.silero import SileroVADAnalyzer
    from pipecat.audio.vad.vad_analyzer import VADParams

    strategies = TurnfsmUserTurnStrategies()
    analyzer = SileroVADAnalyzer(params=VADParams(confidence=0.6))
    params = strategies.user_params(vad_analyzer=analyzer)
    assert params.vad_analyzer is analyzer and params.user_turn_strategies is strategies
    assert (analyzer.params.start_secs, analyzer.params.stop_secs) == (0.05, 0.5)
    assert strategies.detector is not None and strategies.detector.threshold == 0.6
    analyzer.set_sample_rate(16000)
    analyzer.voice_confidence(b"\x00\x00" * 512)
    probe = strategies._bridge.probe
    assert probe is not None and len(probe.take()) == 1 and probe.take() == []
    short = TurnfsmUserTurnStrategies({"endpointing": {"min_delay": 0.3}})
    other = SileroVADAnalyzer()
    short.user_params(vad_analyzer=other, vad_start_secs=None)
    assert (other.params.start_secs, other.params.stop_secs) == (VADParams().start_secs, 0.3)
    assert TurnfsmUserTurnStrategies(barge_in=None).detector is None


def test_a_vad_not_given_through_user_params_is_reported(
        caplog: pytest.LogCaptureFixture) -> None:
    """Without user_params(vad_analyzer=...), the first VAD start logs a warning saying
    turnfsm hears only Pipecat's VAD frames."""
    with caplog.at_level("WARNING", logger="turnfsm.adapters.pipecat"):
        drive(hesitation(), until=8.0, strategies=with_turnfsm(MODEL))
    assert sum("user_params(vad_analyzer" in r.getMessage() for r in caplog.records) == 1


def segmented_final(text: str) -> TranscriptionFrame:
    """A segmented STT's transcription of one VAD segment (Pipecat marks it finalized)."""
    f = final(text)
    f.finalized = True
    return f


def lagging_segments() -> Script:
    """An order said in two parts (0.6 s pause), transcribed by a segmented STT one segment
    behind: the first part's final arrives while the second is spoken, the second's 0.8 s
    after its VAD stop (after min_delay has passed)."""
    frames: Script = [(0.0, VADUserStartedSpeakingFrame(start_secs=0.2))]
    frames += [(round(0.2 * i, 6), UserSpeakingFrame()) for i in range(5)]
    frames += [(1.1, VADUserStoppedSpeakingFrame(stop_secs=0.2)),
               (1.5, VADUserStartedSpeakingFrame(start_secs=0.2))]
    frames += [(round(1.5 + 0.2 * i, 6), UserSpeakingFrame()) for i in range(5)]
    frames += [(1.8, segmented_final("I would like a pizza")),
               (2.6, VADUserStoppedSpeakingFrame(stop_secs=0.2)),
               (3.4, segmented_final("and a salad please"))]
    return sorted(frames, key=lambda x: x[0])


def test_a_lagging_segmented_stt_final_is_not_taken_for_the_last_segment() -> None:
    """A segmented STT one segment behind: the first part's final, arriving during the
    second part, is stamped with its own segment's end, so turnfsm waits for the second
    part's final (no orphan): one turn with both parts, ended when the last final came."""
    script = lagging_segments()
    run = drive(script, until=6.0, strategies=with_turnfsm(EngineOptions()))
    assert [text for _, text in run.stopped] == ["I would like a pizza and a salad please"]
    [(t, _)] = run.stopped
    assert t == pytest.approx(3.4)  # at the second part's final, not min_delay earlier
    [first, second] = [e for e in run.inputs if isinstance(e, ev.SttFinal)]
    # each stamped with the end of its own segment's speech (VAD stop - stop_secs: 0.9, 2.4)
    assert first.end_time > 0
    assert second.end_time - first.end_time == pytest.approx(1.5)


def test_a_late_final_of_speech_before_the_reply_is_not_trimmed() -> None:
    """A segmented STT's final that comes while the bot already replies (its speech ended
    before the bot started) is not trimmed as a backchannel when the bot stops: it is held
    and then makes the next turn."""
    script: Script = [(0.0, VADUserStartedSpeakingFrame(start_secs=0.2))]
    script += [(round(0.2 * i, 6), UserSpeakingFrame()) for i in range(5)]
    script += [(1.1, VADUserStoppedSpeakingFrame(stop_secs=0.2)),
               (1.3, segmented_final("book a table")),
               (1.5, VADUserStartedSpeakingFrame(start_secs=0.2))]
    script += [(round(1.5 + 0.2 * i, 6), UserSpeakingFrame()) for i in range(3)]
    script += [(2.2, VADUserStoppedSpeakingFrame(stop_secs=0.2)),
               (4.0, BotStartedSpeakingFrame()),  # the reply to the first turn
               (4.6, segmented_final("for two")),  # 2.6 s late (transcript_timeout 1.5 s)
               (6.0, BotStoppedSpeakingFrame())]
    script.sort(key=lambda x: x[0])

    def make(run: Run) -> TurnfsmUserTurnStrategies:  # a detector: held speech is trimmed
        detector = VerdictDetector(is_interruption=False)
        s = TurnfsmUserTurnStrategies(EngineOptions(interruption_detection=True),
                                      hooks=Recorder(run.outputs),
                                      session_kwargs={"detector": detector})
        detector.strategies = s
        return s

    run = drive(script, until=9.0, strategies=make)
    assert not [o for o in run.of(out.TranscriptDropped) if o.text == "for two"]
    assert [text for _, text in run.stopped] == ["book a table", "for two"]
    forwarded(script, run)
    pushed_in_order(script, run)


def test_finals_of_each_segment_in_time_are_not_stamped() -> None:
    """A final that arrives before the next segment begins transcribes the latest segment:
    pushed as it comes, without timestamps (the engine's default pairing)."""
    script = [*utterance(0.0, 0.8, "I would like a pizza"),
              *utterance(1.2, 0.8, "and a salad please")]
    for _, f in script:
        if isinstance(f, TranscriptionFrame):
            f.finalized = True
    run = drive(script, until=6.0, strategies=with_turnfsm(EngineOptions()))
    assert [e.end_time for e in run.inputs if isinstance(e, ev.SttFinal)] == [0.0, 0.0]
    assert [text for _, text in run.stopped] == ["I would like a pizza and a salad please"]
    same_turn_ends(run, engine_replay(EngineOptions(), script, until=6.0))


def test_output_gate_holds_the_next_chunk_and_an_interruption_drops_it() -> None:
    """strategies.pausable(output) returns the output with a gate on its writes: while held,
    the next interruptible chunk waits (written in order once released), an uninterruptible
    one is written at once; an InterruptionFrame reaching the output drops the held chunk
    (never written) and tells the pause the bot is stopped."""
    from pipecat.frames.frames import OutputAudioRawFrame
    from pipecat.transports.base_output import BaseOutputTransport
    from pipecat.transports.base_transport import TransportParams

    async def body() -> tuple[list[bytes], list[bool], list[str]]:
        written: list[bytes] = []

        class Out(BaseOutputTransport):
            async def write_audio_frame(self, frame: OutputAudioRawFrame) -> bool:
                written.append(frame.audio)
                return True

        output = Out(TransportParams(audio_out_enabled=True))

        async def process(frame: Frame, direction: FrameDirection) -> None:
            return None  # the transport's own handling is not under test here
        output.process_frame = process  # type: ignore[method-assign]
        strategies = TurnfsmUserTurnStrategies()
        assert strategies.pausable(output) is output and strategies.pause is not None
        gate = strategies._bridge.gate
        assert gate is not None
        ended: list[str] = []
        strategies.pause.end = lambda outcome, record=None: ended.append(outcome)  # type: ignore[method-assign]

        def chunk(b: bytes, interruptible: bool = True) -> OutputAudioRawFrame:
            f = OutputAudioRawFrame(audio=b * 4, sample_rate=16000, num_channels=1)
            f.interruptible = interruptible
            return f
        results: list[bool] = []
        assert await output.write_audio_frame(chunk(b"a"))
        gate.hold()
        held = asyncio.create_task(output.write_audio_frame(chunk(b"b")))
        await asyncio.sleep(0.1)
        assert not held.done() and written == [b"aaaa"]
        results.append(await output.write_audio_frame(chunk(b"u", interruptible=False)))
        gate.release()
        results.append(await held)
        gate.hold()
        dropped = asyncio.create_task(output.write_audio_frame(chunk(b"c")))
        await asyncio.sleep(0.1)
        await output.process_frame(InterruptionFrame(), FrameDirection.DOWNSTREAM)
        results.append(await dropped)
        return written, results, ended
    written, results, ended = run_virtual(body())
    assert written == [b"aaaa", b"uuuu", b"bbbb"]
    assert results == [True, True, False] and ended == ["stopped"]


def test_pause_after_none_and_no_detector_leave_no_pause(
        caplog: pytest.LogCaptureFixture) -> None:
    """The pause is on by default (0.15 s, resumed after 0.35 s of unvoiced windows);
    pause_after=None or barge_in=None turns it off; without pausable(output), asking to
    pause says once what to do and pauses nothing."""
    s = TurnfsmUserTurnStrategies()
    assert s.pause is not None and (s.pause.after, s.pause.resume_after) == (0.15, 0.35)
    assert TurnfsmUserTurnStrategies(pause_after=None).pause is None
    assert TurnfsmUserTurnStrategies(barge_in=None).pause is None
    with caplog.at_level("WARNING", logger="turnfsm.adapters.pipecat"):
        assert s._bridge._pause_audio() is False and s._bridge._pause_audio() is False
    assert len([r for r in caplog.records if "pausable" in r.getMessage()]) == 1


def test_the_bridge_reads_the_profiles_declared_judgement_of_speech_over_the_bot(
        tmp_path: Path) -> None:
    """Whether speech over the bot waits for turnfsm's verdict before it is a turn is the
    profile's declared property (``judges_speech_over_agent``), not a guard name of its chart:
    the default profile declares it, livekit does not, a profile file inherits its base's or
    sets its own, and anything but a boolean is a one-line error naming the file."""
    from turnfsm.core.profiles import get_profile
    from turnfsm.errors import ChartError
    assert get_profile("default").judges_speech_over_agent is True
    assert get_profile("livekit").judges_speech_over_agent is False

    def bridge(profile: Any) -> Any:
        return TurnfsmUserTurnStrategies(barge_in=None, profile=profile)._bridge

    assert bridge("default").judges_overlaps and not bridge("livekit").judges_overlaps
    inherits = tmp_path / "inherits.yaml"
    inherits.write_text("profile: mine\nbase: default\n")
    off = tmp_path / "off.yaml"
    off.write_text("profile: quiet\nbase: default\njudges_speech_over_agent: false\n")
    assert bridge(str(inherits)).judges_overlaps and not bridge(str(off)).judges_overlaps
    # the chart still names the guard: the bridge no longer reads it
    assert "holds_over_agent" in get_profile(str(off)).chart.guard_names
    bad = tmp_path / "bad.yaml"
    bad.write_text("profile: bad\nbase: default\njudges_speech_over_agent: maybe\n")
    with pytest.raises(ChartError, match="judges_speech_over_agent' must be true or false"):
        get_profile(str(bad))
    # with a detector, speech over the bot is judged whatever the profile says
    assert TurnfsmUserTurnStrategies(profile=str(off))._bridge.judges_overlaps
