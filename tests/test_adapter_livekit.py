"""The LiveKit Agents adapter: a real ``AgentSession`` in manual mode, with fake VAD, STT,
LLM, TTS and audio I/O written here (no network, no server), on turnfsm's virtual clock.

turnfsm decides; LiveKit commits (``on_user_turn_completed``) and stops the agent's audio
(``agent_state_changed``) at the instants a bare ``turnfsm.Engine`` fed the same events
predicts. Skipped when livekit-agents is not installed (the ``livekit`` extra)."""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import Callable
from typing import Any

import attrs
import pytest

pytest.importorskip("livekit.agents")

from livekit import rtc
from livekit.agents import (
    NOT_GIVEN,
    APIConnectOptions,
    LanguageCode,
    NotGivenOr,
    llm,
    stt,
    tts,
    utils,
)
from livekit.agents import vad as lk_vad
from livekit.agents.types import DEFAULT_API_CONNECT_OPTIONS
from livekit.agents.voice import Agent as LiveKitAgent
from livekit.agents.voice import AgentSession
from livekit.agents.voice.io import AudioInput, AudioOutput, AudioOutputCapabilities

from turnfsm import EndpointingOptions, Engine, EngineOptions, Scheduler
from turnfsm import events as ev
from turnfsm import outputs as out
from turnfsm.adapters.livekit import (
    TurnfsmAgent,
    TurnfsmTurnDetector,
    TurnfsmTurnTaking,
    user_turn_text,
)
from turnfsm.runtime import RuleBasedModel, run_virtual

from .adapter_pipelines import virtual

SAMPLE_RATE = 16000
FRAME = 0.05  # seconds of audio per input frame
VAD_WINDOW = 0.1  # seconds between VAD inference windows
VAD_ONSET = 0.1  # speech the VAD needs to declare a start
VAD_SILENCE = 0.3  # silence the VAD needs to declare an end


@attrs.frozen
class Utterance:
    """What the user says: speech from ``start`` to ``end`` (loop time), its final
    transcript ``final_delay`` after the end, an interim of its first words halfway."""

    start: float
    end: float
    text: str
    final_delay: float = 0.1


# -- the VAD and STT, scripted on the loop's clock -----------------------------------------


def vad_script(utterances: list[Utterance]) -> list[tuple[float, lk_vad.VADEvent]]:
    """Each utterance as a VAD hears it: a start, a window every 100 ms, an end."""
    events: list[tuple[float, lk_vad.VADEvent]] = []

    def add(t: float, kind: lk_vad.VADEventType, u: Utterance, **kw: Any) -> None:
        events.append((round(t, 6), lk_vad.VADEvent(
            type=kind, samples_index=0, timestamp=t,
            speech_duration=round(min(t, u.end) - u.start, 6),
            silence_duration=round(max(0.0, t - u.end), 6), **kw)))
    for u in utterances:
        add(u.start + VAD_ONSET, lk_vad.VADEventType.START_OF_SPEECH, u, speaking=True)
        n = 2
        while (t := round(u.start + n * VAD_WINDOW, 6)) <= u.end:
            add(t, lk_vad.VADEventType.INFERENCE_DONE, u, speaking=True, probability=0.9,
                raw_accumulated_speech=round(t - u.start, 6))
            n += 1
        add(u.end + VAD_SILENCE, lk_vad.VADEventType.END_OF_SPEECH, u,
            raw_accumulated_silence=VAD_SILENCE)
    return sorted(events, key=lambda x: x[0])


def stt_script(utterances: list[Utterance]) -> list[tuple[float, stt.SpeechEvent]]:
    """Each utterance as the STT reports it: an interim halfway, the final after the end."""
    events: list[tuple[float, stt.SpeechEvent]] = []
    for u in utterances:
        words = u.text.split()
        for t, kind, text in ((round((u.start + u.end) / 2, 6),
                               stt.SpeechEventType.INTERIM_TRANSCRIPT, " ".join(words[:2])),
                              (round(u.end + u.final_delay, 6),
                               stt.SpeechEventType.FINAL_TRANSCRIPT, u.text)):
            events.append((t, stt.SpeechEvent(type=kind, alternatives=[stt.SpeechData(
                language=LanguageCode("en"), text=text, confidence=0.9)])))
    return sorted(events, key=lambda x: x[0])


async def until(t: float) -> None:
    """Sleep until loop time ``t``."""
    loop = asyncio.get_running_loop()
    if t > loop.time():
        await asyncio.sleep(t - loop.time())


class FakeVAD(lk_vad.VAD):
    """A VAD whose every stream plays the script (events already past are skipped)."""

    def __init__(self, utterances: list[Utterance]) -> None:
        super().__init__(capabilities=lk_vad.VADCapabilities(update_interval=VAD_WINDOW))
        self.script = vad_script(utterances)

    def stream(self) -> lk_vad.VADStream:
        return FakeVADStream(self)


class FakeVADStream(lk_vad.VADStream):
    async def _main_task(self) -> None:
        assert isinstance(self._vad, FakeVAD)
        drain = asyncio.create_task(_drain(self._input_ch))
        try:
            now = asyncio.get_running_loop().time()
            for t, e in self._vad.script:
                if t >= now:
                    await until(t)
                    self._event_ch.send_nowait(e)
            await drain
        finally:
            await utils.aio.cancel_and_wait(drain)


class FakeSTT(stt.STT):
    """A streaming STT whose every stream plays the script (events already past are skipped)."""

    def __init__(self, utterances: list[Utterance]) -> None:
        super().__init__(capabilities=stt.STTCapabilities(streaming=True, interim_results=True))
        self.script = stt_script(utterances)

    async def _recognize_impl(self, buffer: Any, *, language: NotGivenOr[str] = NOT_GIVEN,
                              conn_options: APIConnectOptions) -> stt.SpeechEvent:
        raise NotImplementedError

    def stream(self, *, language: NotGivenOr[str] = NOT_GIVEN,
               conn_options: APIConnectOptions = DEFAULT_API_CONNECT_OPTIONS
               ) -> stt.RecognizeStream:
        return FakeRecognizeStream(stt=self, conn_options=conn_options)


class FakeRecognizeStream(stt.RecognizeStream):
    async def _run(self) -> None:
        assert isinstance(self._stt, FakeSTT)
        drain = asyncio.create_task(_drain(self._input_ch))
        try:
            now = asyncio.get_running_loop().time()
            for t, e in self._stt.script:
                if t >= now:
                    await until(t)
                    self._event_ch.send_nowait(e)
            await drain
        finally:
            await utils.aio.cancel_and_wait(drain)


async def _drain(ch: Any) -> None:
    async for _ in ch:
        pass


# -- the LLM, TTS and audio I/O ------------------------------------------------------------


class FakeLLM(llm.LLM):
    """Answers every user turn with one short sentence after ``ttft`` seconds."""

    def __init__(self, ttft: float = 0.1) -> None:
        super().__init__()
        self.ttft = ttft

    def chat(self, *, chat_ctx: llm.ChatContext, tools: list[Any] | None = None,
             conn_options: APIConnectOptions = DEFAULT_API_CONNECT_OPTIONS,
             parallel_tool_calls: NotGivenOr[bool] = NOT_GIVEN,
             tool_choice: NotGivenOr[Any] = NOT_GIVEN,
             extra_kwargs: NotGivenOr[dict[str, Any]] = NOT_GIVEN) -> llm.LLMStream:
        return FakeLLMStream(self, chat_ctx=chat_ctx, tools=tools or [],
                             conn_options=conn_options)


class FakeLLMStream(llm.LLMStream):
    async def _run(self) -> None:
        assert isinstance(self._llm, FakeLLM)
        await asyncio.sleep(self._llm.ttft)
        self._event_ch.send_nowait(llm.ChatChunk(id="fake", delta=llm.ChoiceDelta(
            role="assistant", content="Sure, let me look at that for you.")))


class FakeTTS(tts.TTS):
    """Speaks every text as ``audio_duration`` seconds of silence."""

    def __init__(self, audio_duration: float) -> None:
        super().__init__(capabilities=tts.TTSCapabilities(streaming=False),
                         sample_rate=24000, num_channels=1)
        self.audio_duration = audio_duration

    def synthesize(self, text: str, *,
                   conn_options: APIConnectOptions = DEFAULT_API_CONNECT_OPTIONS
                   ) -> tts.ChunkedStream:
        return FakeChunkedStream(tts=self, input_text=text, conn_options=conn_options)


class FakeChunkedStream(tts.ChunkedStream):
    async def _run(self, output_emitter: tts.AudioEmitter) -> None:
        assert isinstance(self._tts, FakeTTS)
        output_emitter.initialize(request_id="fake", sample_rate=24000, num_channels=1,
                                  mime_type="audio/pcm")
        output_emitter.push(b"\x00\x00" * int(24000 * self._tts.audio_duration))
        output_emitter.flush()


class FakeAudioInput(AudioInput):
    """The microphone: a frame of silence every 50 ms of loop time (content is irrelevant:
    the fake VAD and STT play their scripts)."""

    def __init__(self) -> None:
        super().__init__(label="fake-mic")
        self._next = 0.0

    async def __anext__(self) -> rtc.AudioFrame:
        self._next = max(self._next, asyncio.get_running_loop().time()) + FRAME
        await until(self._next)
        n = int(SAMPLE_RATE * FRAME)
        return rtc.AudioFrame(data=b"\x00\x00" * n, sample_rate=SAMPLE_RATE, num_channels=1,
                              samples_per_channel=n)


class FakeAudioOutput(AudioOutput):
    """The speaker: plays what it is given in loop time; ``clear_buffer`` stops it at once.
    ``finished`` keeps (loop time, interrupted) of every playout that ended."""

    def __init__(self) -> None:
        super().__init__(label="fake-speaker", next_in_chain=None, sample_rate=None,
                         capabilities=AudioOutputCapabilities(pause=False))
        self._pushed = 0.0
        self._started: float | None = None
        self._done: asyncio.TimerHandle | None = None
        self.finished: list[tuple[float, bool]] = []

    async def capture_frame(self, frame: rtc.AudioFrame) -> None:
        await super().capture_frame(frame)
        self._pushed += frame.duration
        if self._started is None:
            self._started = asyncio.get_running_loop().time()
            self.on_playback_started(created_at=self._started)

    def flush(self) -> None:
        super().flush()
        if self._started is None:
            return
        loop = asyncio.get_running_loop()
        left = max(0.0, self._started + self._pushed - loop.time())
        self._done = loop.call_later(left, self._finish, self._pushed, False)

    def clear_buffer(self) -> None:
        if self._started is None:
            return
        played = min(self._pushed, asyncio.get_running_loop().time() - self._started)
        self._finish(played, True)

    def _finish(self, position: float, interrupted: bool) -> None:
        if self._done is not None:
            self._done.cancel()
            self._done = None
        self._pushed, self._started = 0.0, None
        self.finished.append((asyncio.get_running_loop().time(), interrupted))
        self.on_playback_finished(playback_position=position, interrupted=interrupted)


# -- a conversation ------------------------------------------------------------------------


class Agent(TurnfsmAgent):
    """Records when LiveKit completes each user turn (the commit landed) and with what."""

    def __init__(self) -> None:
        super().__init__(instructions="You are a test agent.")
        self.completed: list[tuple[float, str]] = []

    async def on_user_turn_completed(self, turn_ctx: llm.ChatContext,
                                     new_message: llm.ChatMessage) -> None:
        self.completed.append((asyncio.get_running_loop().time(),
                               new_message.text_content or ""))


class Recorder:
    """turnfsm hooks of the app: keeps every output."""

    def __init__(self) -> None:
        self.outputs: list[out.Output] = []

    def on_output(self, o: out.Output) -> None:
        self.outputs.append(o)


MIN_DURATION = 0.5  # the barge-in detector's speech duration (LiveKit's default)
OPTIONS = EngineOptions(turn_detection="model", interruption_detection=True,
                        endpointing=EndpointingOptions(min_delay=0.5, max_delay=2.0))


@attrs.define
class Run:
    """What one conversation did, in loop time (= turnfsm session time: both start at 0)."""

    completed: list[tuple[float, str]]  # LiveKit's on_user_turn_completed
    speaking: list[tuple[float, float]]  # the agent's audio: (started, stopped)
    interrupted_at: list[float]  # playouts the speaker stopped early
    taking: TurnfsmTurnTaking
    outputs: list[out.Output]
    inputs: list[ev.Input]  # what the turnfsm session consumed


Action = Callable[[TurnfsmTurnTaking], object]


def converse(utterances: list[Utterance], *, reply_audio: float, length: float,
             options: EngineOptions = OPTIONS, hooks: Recorder | None = None,
             actions: tuple[tuple[float, Action], ...] = (),
             setup: Callable[[TurnfsmTurnTaking, AgentSession[None]], None] | None = None,
             transcripts: list[Utterance] | None = None) -> Run:
    """Run one AgentSession in manual mode with turnfsm deciding, for ``length`` seconds of
    loop time (virtual: nothing sleeps); each action runs at its instant. ``transcripts``:
    what the STT says, when it differs from what the VAD hears (``utterances``)."""
    async def body() -> Run:
        loop = asyncio.get_running_loop()
        session: AgentSession[None] = AgentSession(
            vad=FakeVAD(utterances), stt=FakeSTT(transcripts or utterances), llm=FakeLLM(),
            tts=FakeTTS(reply_audio), aec_warmup_duration=None, user_away_timeout=None,
            turn_handling={"turn_detection": "manual",
                           "interruption": {"resume_false_interruption": False}})
        speaker = FakeAudioOutput()
        session.input.audio = FakeAudioInput()
        session.output.audio = speaker
        inputs: list[ev.Input] = []
        app = hooks or Recorder()
        taking = TurnfsmTurnTaking(session, options, hooks=app, barge_in=MIN_DURATION,
                                   telemetry=False, observers=[
                                       lambda r: inputs.append(r.input) if r.input else None])
        assert taking.fsm.now() == loop.time() == 0.0
        speaking: list[tuple[float, float]] = []

        def on_state(e: Any) -> None:
            if e.new_state == "speaking":
                speaking.append((loop.time(), float("inf")))
            elif e.old_state == "speaking":
                speaking[-1] = (speaking[-1][0], loop.time())
        session.on("agent_state_changed", on_state)
        if setup is not None:
            setup(taking, session)
        agent = Agent()
        await session.start(agent)
        for t, action in actions:
            await until(t)
            action(taking)
        await until(length)
        await session.aclose()
        await taking.aclose()
        return Run(agent.completed, speaking, [t for t, cut in speaker.finished if cut],
                   taking, app.outputs, inputs)
    return run_virtual(body())


# -- the prediction: a bare engine fed the same events ---------------------------------------


def as_input(t: float, e: lk_vad.VADEvent | stt.SpeechEvent) -> ev.Input:
    """A scripted LiveKit event as the turnfsm input it stands for."""
    if isinstance(e, lk_vad.VADEvent):
        if e.type == lk_vad.VADEventType.START_OF_SPEECH:
            return ev.VadStartOfSpeech(t=t, speech_duration=e.speech_duration)
        if e.type == lk_vad.VADEventType.END_OF_SPEECH:
            return ev.VadEndOfSpeech(t=t, silence_duration=e.silence_duration,
                                     speech_duration=e.speech_duration)
        return ev.VadInferenceDone(t=t, raw_accumulated_speech=e.raw_accumulated_speech,
                                   speech_duration=e.speech_duration, speaking=e.speaking,
                                   probability=e.probability)
    alt = e.alternatives[0]
    kind = (ev.SttFinal if e.type == stt.SpeechEventType.FINAL_TRANSCRIPT else ev.SttInterim)
    return kind(t=t, text=alt.text, language="en", confidence=alt.confidence)


def predict(utterances: list[Utterance], agent_speech: list[tuple[float, float]],
            agent_cut: list[float], options: EngineOptions = OPTIONS) -> list[out.Output]:
    """Replay the conversation's events through a bare Engine, answering as the adapter does:
    the rule-based model at once, every end of turn accepted, an overlap judged an
    interruption at the first VAD window holding ``MIN_DURATION`` of speech, and an
    interruption stopping the agent (so a stop the speaker reports as cut is the engine's
    own, not an input). Agent speech start and natural stop instants are LiveKit's."""
    engine = Engine(options)
    scheduler: Scheduler[Callable[[], None]] = Scheduler(engine)
    model = RuleBasedModel()
    outputs: list[out.Output] = []
    overlap: list[float] = []  # the onset of the overlap being judged
    timeline: list[tuple[float, int, ev.Input]] = []
    order = itertools.count()
    for t, e in [*vad_script(utterances), *stt_script(utterances)]:
        timeline.append((t, next(order), as_input(t, e)))
    for start, stop in agent_speech:
        timeline.append((round(start, 6), next(order), ev.AgentSpeechStarted(t=round(start, 6))))
        if not any(abs(stop - c) < 1e-6 for c in agent_cut) and stop != float("inf"):
            timeline.append((round(stop, 6), next(order), ev.AgentSpeechEnded(t=round(stop, 6))))
    timeline.sort(key=lambda x: (x[0], x[1]))

    def take(outs: list[out.Output]) -> None:
        for o in outs:
            outputs.append(o)
            if isinstance(o, out.EouModelRequest):
                take(engine.handle(ev.EouModelAnswered(
                    t=o.t, request_id=o.request_id, threshold=model.threshold,
                    probability=model.probability(o.transcript, o.language))))
            elif isinstance(o, out.EndOfTurn):
                take(engine.handle(ev.EndOfTurnAnswered(t=o.t, accepted=True)))
            elif isinstance(o, out.DetectorSignal):
                overlap[:] = ([o.started_at if o.started_at is not None else o.t]
                              if o.signal == "overlap_speech_started" else [])
            elif isinstance(o, out.Interruption):
                take(engine.handle(ev.AgentSpeechEnded(
                    t=o.t, ignore_user_transcript_until=o.overlap_started_at)))

    for t, _, e in timeline:
        scheduler.run_until(t, take, lambda fn: fn())
        take(engine.advance(t))
        take(engine.handle(e))
        if (isinstance(e, ev.VadInferenceDone) and overlap
                and e.speech_duration >= MIN_DURATION):
            onset = overlap.pop()
            take(engine.handle(ev.OverlapVerdict(t=t, is_interruption=True, probability=1.0,
                                                 overlap_started_at=onset, detected_at=t)))
    take(engine.advance(timeline[-1][0] + 10.0))
    return outputs


def of(outputs: list[out.Output], kind: type[Any]) -> list[Any]:
    return [o for o in outputs if isinstance(o, kind)]


# -- tests -------------------------------------------------------------------------------------


HESITATION = [Utterance(1.0, 2.0, "I want to book a table for"),
              Utterance(7.0, 7.8, "Four people, tonight.")]


def test_a_hesitation_commits_after_max_delay_where_the_engine_predicts() -> None:
    """An utterance ending on "for" waits max_delay: LiveKit completes the turn at 4.0 s (the
    last speech at 2.0 s + 2.0 s), a complete one at min_delay (7.8 + 0.5 = 8.3 s), exactly
    when a bare Engine fed the same events ends them."""
    run = converse(HESITATION, reply_audio=1.0, length=12.0)
    predicted = of(predict(HESITATION, run.speaking, run.interrupted_at), out.EndOfTurn)
    assert [(round(o.t, 6), o.new_transcript) for o in predicted] == [
        (4.0, "I want to book a table for"), (8.3, "Four people, tonight.")]
    assert [(t, text) for t, text in run.completed] == [
        (pytest.approx(o.t, abs=1e-6), o.new_transcript) for o in predicted]
    first, second = (o.decision for o in run.taking.turns)
    assert first is not None and first.delay_reason == "max_delay"
    assert first.model is not None and first.model.probability == pytest.approx(0.05)
    assert second is not None and second.delay_reason == "min_delay"
    assert [round(t, 6) for t, _ in run.completed] == [round(o.t, 6) for o in run.taking.turns]
    assert not run.taking.interruptions and not run.interrupted_at


BARGE_IN = [Utterance(1.0, 2.0, "What time do you open?"),
            Utterance(4.0, 5.5, "Actually, wait a moment please."),
            Utterance(7.5, 7.65, "Mm-hmm."),
            Utterance(11.0, 11.6, "Thanks, bye.")]


def test_a_barge_in_interrupts_and_a_backchannel_does_not() -> None:
    """Speech over the agent from 4.0 s holds 0.5 s of speech at 4.5 s: the detector calls
    it an interruption there; with no words yet, turnfsm waits for them while the agent is
    held (a backchannel phrase would overrule the verdict): the first interim (4.75 s) is
    more, turnfsm interrupts and LiveKit's audio stops at that instant; the interrupting
    words become the next turn (committed at 6.0 s). A 0.15 s "Mm-hmm" over the next reply
    does not interrupt, and turnfsm's gate drops it: LiveKit never hears it. All as a bare
    Engine predicts."""
    run = converse(BARGE_IN, reply_audio=4.0, length=17.0)
    outputs = predict(BARGE_IN, run.speaking, run.interrupted_at)
    (interruption,) = of(outputs, out.Interruption)
    assert (interruption.t, interruption.overlap_started_at) == pytest.approx((4.75, 4.0))
    assert interruption.detected_at == pytest.approx(4.5)
    assert [round(o.t, 6) for o in run.taking.interruptions] == [4.75]
    assert run.interrupted_at == [pytest.approx(4.75, abs=1e-6)]
    assert run.speaking[0] == pytest.approx((2.6, 4.75), abs=1e-6)  # the reply, cut short
    predicted = of(outputs, out.EndOfTurn)
    assert [(round(o.t, 6), o.new_transcript) for o in predicted] == [
        (2.5, "What time do you open?"), (6.0, "Actually, wait a moment please."),
        (12.1, "Thanks, bye.")]
    assert run.completed == [(pytest.approx(o.t, abs=1e-6), o.new_transcript)
                             for o in predicted]
    dropped = of(run.outputs, out.TranscriptDropped)  # its final, when its speech ended
    assert {(d.text, d.reason) for d in dropped} == {("Mm-hmm.", "backchannel")}
    assert all(run.speaking[1][0] < d.t < run.speaking[1][1] for d in dropped)
    assert [(d.text, round(d.t, 6)) for d in of(outputs, out.TranscriptDropped)] == [
        (d.text, round(d.t, 6)) for d in dropped]
    assert not len(run.taking._held)  # nothing held back from LiveKit is left over


def test_the_session_consumed_the_scripted_events_at_their_instants() -> None:
    """What reached the turnfsm session through the STT node and the VAD stream is the
    script, event for event and instant for instant (the adapter adds no delay; VAD windows
    are data events, seen through their VadInference outputs)."""
    run = converse(HESITATION, reply_audio=1.0, length=10.0)
    seen = [(round(e.t, 6), type(e).__name__) for e in run.inputs
            if isinstance(e, ev.VadStartOfSpeech | ev.VadEndOfSpeech | ev.SttInterim
                          | ev.SttFinal)]
    seen += [(round(o.t, 6), "VadInferenceDone") for o in of(run.outputs, out.VadInference)]
    script = sorted([(t, type(as_input(t, e)).__name__)
                     for t, e in [*vad_script(HESITATION), *stt_script(HESITATION)]])
    assert sorted(seen) == script


def test_a_final_released_with_its_end_of_turn_is_committed_with_its_text() -> None:
    """A final that comes after the endpointing delay has run out (vad mode, no model) ends
    the turn in the step that reports it, before LiveKit has taken that final: the commit
    is held until LiveKit reports it (user_input_transcribed), so the turn LiveKit
    completes at 2.9 s holds its text."""
    late = [Utterance(1.0, 2.0, "Hello there.", final_delay=0.9)]
    options = attrs.evolve(OPTIONS, turn_detection="vad")
    log: list[tuple[str, str]] = []

    def spy(taking: TurnfsmTurnTaking, session: AgentSession[None]) -> None:
        commit, decided = session.commit_user_turn, taking._commit

        def committing(**kw: Any) -> Any:
            log.append(("commit sent", ""))
            return commit(**kw)

        def deciding(o: out.EndOfTurn) -> None:
            log.append(("turn ended", f"LiveKit has yet to take {list(taking._unacked)}"))
            decided(o)
        session.commit_user_turn = committing  # type: ignore[method-assign]
        taking._commit = deciding  # type: ignore[method-assign]
        session.on("user_input_transcribed",
                   lambda e: log.append(("LiveKit took", e.transcript)) if e.is_final else None)
    run = converse(late, reply_audio=1.0, length=5.0, options=options, setup=spy)
    (predicted,) = of(predict(late, run.speaking, run.interrupted_at, options), out.EndOfTurn)
    assert (round(predicted.t, 6), predicted.new_transcript) == (2.9, "Hello there.")
    assert run.completed == [(pytest.approx(2.9, abs=1e-6), "Hello there.")]
    assert log == [("turn ended", "LiveKit has yet to take ['Hello there.']"),
                   ("LiveKit took", "Hello there."), ("commit sent", "")]
    assert not run.taking._unacked and not run.taking._deferred


class PushToTalk(Recorder):
    """An app that takes only the turns it commits itself."""

    def on_end_of_turn(self, o: out.EndOfTurn) -> bool:
        return o.decision is not None and o.decision.trigger == "commit"


def test_push_to_talk_and_clear_go_through_turnfsm_to_livekit() -> None:
    """The app refuses turnfsm's own decisions, clears at 3.0 s (both sides forget "Book a
    table for two.") and commits at 5.2 s (a final came 0.3 s before: no wait for another):
    the commit's decision lands min_delay after the last speech (4.8 + 0.5 = 5.3 s, as
    LiveKit's own commit does), and LiveKit completes that one turn then, with only what was
    said after the clear."""
    said = [Utterance(1.0, 2.0, "Book a table for two."), Utterance(4.0, 4.8, "Make it three.")]
    app = PushToTalk()
    run = converse(said, reply_audio=1.0, length=8.0, hooks=app, actions=(
        (3.0, lambda taking: taking.clear_user_turn()),
        (5.2, lambda taking: taking.commit_user_turn())))
    assert run.completed == [(pytest.approx(5.3, abs=1e-6), "Make it three.")]
    (turn,) = run.taking.turns
    assert turn.new_transcript == "Make it three." and turn.decision is not None
    assert (turn.decision.trigger, turn.decision.wait_started_at, turn.decision.anchor) == \
        ("commit", pytest.approx(5.2), pytest.approx(4.8))
    dropped = of(app.outputs, out.TranscriptDropped)
    assert [(d.text, d.reason) for d in dropped] == [("Book a table for two.", "clear_user_turn")]
    refused = [o for o in of(app.outputs, out.EndOfTurn) if o.decision.trigger != "commit"]
    assert [round(o.t, 6) for o in refused] == [2.5]  # offered at min_delay, refused


# -- the turn detector alone ---------------------------------------------------------------


def chat(*messages: tuple[str, str]) -> llm.ChatContext:
    ctx = llm.ChatContext.empty()
    for role, text in messages:
        ctx.add_message(role=role, content=text)  # type: ignore[arg-type]
    return ctx


def test_turn_detector_follows_livekits_protocol() -> None:
    """TurnfsmTurnDetector answers LiveKit's turn-detector calls: a complete utterance is
    likely over (0.9), one ending on a preposition unlikely (0.05 < threshold 0.3), and
    only the trailing user messages are judged."""
    async def body() -> None:
        d = TurnfsmTurnDetector()
        en = LanguageCode("en-US")
        assert await d.supports_language(en)
        assert await d.unlikely_threshold(en) == 0.3
        assert (d.model, d.provider) == ("RuleBasedModel", "turnfsm")
        done = chat(("assistant", "How can I help?"), ("user", "Book a table for four."))
        cut = chat(("user", "Book a table."), ("assistant", "For how many?"),
                   ("user", "I want to book a table for"))
        assert await d.predict_end_of_turn(done) == pytest.approx(0.9)
        assert await d.predict_end_of_turn(cut, timeout=1.0) == pytest.approx(0.05)
        assert user_turn_text(cut) == "I want to book a table for"
        assert await d.predict_end_of_turn(chat(("user", "Book a table for four"))) == \
            pytest.approx(0.6)
    run_virtual(body())


def test_turn_detector_drives_livekits_own_recogniser() -> None:
    """With LiveKit's own recogniser (turn detection not manual) and TurnfsmTurnDetector as
    its turn detector, "I want to book a table for" waits LiveKit's max_delay (turn at about
    4.0 s) and "Four people, tonight." its min_delay (about 8.3 s). LiveKit anchors these
    on the wall clock, which follows the virtual clock here (so CPU load cannot move
    them)."""
    async def body() -> None:
        session: AgentSession[None] = AgentSession(
            vad=FakeVAD(HESITATION), stt=FakeSTT(HESITATION), llm=FakeLLM(),
            tts=FakeTTS(1.0), aec_warmup_duration=None, user_away_timeout=None,
            turn_handling={"turn_detection": TurnfsmTurnDetector(),
                           "endpointing": {"min_delay": 0.5, "max_delay": 2.0},
                           "interruption": {"resume_false_interruption": False}})
        session.input.audio = FakeAudioInput()
        session.output.audio = FakeAudioOutput()
        agent = Agent()
        await session.start(agent)
        await until(11.0)
        await session.aclose()
        completed.extend(agent.completed)
    completed: list[tuple[float, str]] = []
    virtual(body)
    assert [(round(t, 1), text) for t, text in completed] == [
        (4.0, "I want to book a table for"), (8.3, "Four people, tonight.")]


def test_the_livekit_example_runs_offline() -> None:
    """examples/livekit_app.py on a virtual clock: the hesitation joins the next words into
    one turn, the barge-in interrupts at its first interim (5.6 s: the detector's verdict at
    5.5 s waits for the words, which could be a backchannel phrase), the "Mm-hmm." is
    dropped, and LiveKit
    commits exactly the two turns turnfsm ended."""
    import subprocess
    import sys
    from pathlib import Path
    example = Path(__file__).resolve().parents[1] / "examples" / "livekit_app.py"
    r = subprocess.run([sys.executable, str(example), "--virtual"], capture_output=True,
                       text=True, check=True, timeout=60)
    assert "END OF TURN 'I want to book a table for four people tonight.'" in r.stdout
    assert "5.60 s  INTERRUPTION (user speech since 5.00 s)" in r.stdout
    assert "dropped 'Mm-hmm.' (backchannel)" in r.stdout
    assert r.stdout.count("END OF TURN") == r.stdout.count("LiveKit committed") == 2
    assert "2 turns committed: ['I want to book a table for four people tonight.', " \
           "'Actually, make it five.']" in r.stdout


# -- outputs, not region names; wiring; one VAD stream ----------------------------------------


JUDGED = [Utterance(1.0, 2.0, "I want to book a table."), Utterance(4.4, 6.0, "")]
JUDGED_STT = [Utterance(1.0, 2.0, "I want to book a table."),
              Utterance(4.4, 4.9, "Yes.", final_delay=0.0),
              Utterance(5.0, 5.9, "For four people please.")]


def test_a_final_held_while_the_gate_judges_reaches_livekit() -> None:
    """The user starts "Yes." over the reply's last 0.2 s and goes on after it: the default
    gate judges the utterance until it ends, so the final "Yes." (one word, maybe a
    backchannel) is held; "For four people please." shows it is a turn and turnfsm releases
    both: LiveKit receives the held final and completes the turn with all its words."""
    run = converse(JUDGED, reply_audio=2.0, length=9.0, transcripts=JUDGED_STT)
    assert run.speaking[0] == pytest.approx((2.6, 4.6), abs=0.03)
    held = [(o.type, o.text) for o in of(run.outputs, out.TranscriptHeld)]
    assert ("final", "Yes.") in held
    assert [text for _, text in run.completed] == [
        "I want to book a table.", "Yes. For four people please."]
    assert not run.interrupted_at and not len(run.taking._held)


class Plain(LiveKitAgent):
    """A plain LiveKit agent: its STT node does not run through turnfsm."""


def test_wiring_mistakes_raise() -> None:
    """A plain Agent given to session.start() raises TypeError before the session starts;
    TurnfsmTurnTaking created after session.start() raises RuntimeError."""
    async def body() -> tuple[str, str]:
        session: AgentSession[None] = AgentSession(
            vad=FakeVAD([]), stt=FakeSTT([]), llm=FakeLLM(), tts=FakeTTS(1.0),
            aec_warmup_duration=None, user_away_timeout=None)
        session.input.audio = FakeAudioInput()
        session.output.audio = FakeAudioOutput()
        TurnfsmTurnTaking(session, telemetry=False)
        with pytest.raises(TypeError, match="plain livekit Agent") as plain:
            await session.start(Plain(instructions="x"))
        await session.start(Agent())
        with pytest.raises(RuntimeError, match=r"before session\.start") as late:
            TurnfsmTurnTaking(session, telemetry=False)
        await session.aclose()
        return str(plain.value), str(late.value)
    plain, late = run_virtual(body())
    assert "TurnfsmAgent" in plain and "no turn" in late


def test_start_says_what_manual_mode_turns_off(caplog: pytest.LogCaptureFixture) -> None:
    """session.start() logs one line naming LiveKit's features turnfsm's manual mode turns
    off (preemptive generation, the interruption options); closing the session after
    turnfsm committed every turn logs no warning about an empty turn."""
    with caplog.at_level("INFO"):
        converse(HESITATION, reply_audio=1.0, length=10.0)
    lines = [r.getMessage() for r in caplog.records if "manual mode" in r.getMessage()]
    assert len(lines) == 1
    assert "preemptive generation" in lines[0] and "min_duration=0.5" in lines[0]
    assert not [r for r in caplog.records if "scheduling is paused" in r.getMessage()]


def test_livekits_false_interruption_pause_is_turned_off_and_named(
        caplog: pytest.LogCaptureFixture) -> None:
    """On a session with LiveKit's default false-interruption pause (on), TurnfsmTurnTaking
    turns it off in the session's options (it would pause and cancel replies beside turnfsm)
    and the start-up line names it with turnfsm's own pause (0.15 s); pause_after=None
    leaves the agent's audio unpaused, and the line says so."""
    async def body() -> tuple[bool, str, str]:
        session: AgentSession[None] = AgentSession(vad=FakeVAD([]), user_away_timeout=None)
        assert session.options.interruption["resume_false_interruption"] is True
        taking = TurnfsmTurnTaking(session, telemetry=False)
        with caplog.at_level("INFO", logger="turnfsm.adapters.livekit"):
            taking._announce()
            off = AgentSession(vad=FakeVAD([]), user_away_timeout=None)
            unpaused = TurnfsmTurnTaking(off, telemetry=False, pause_after=None)
            unpaused._announce()
        await taking.aclose()
        await unpaused.aclose()
        lines = [r.getMessage() for r in caplog.records if "manual mode" in r.getMessage()]
        return bool(session.options.interruption["resume_false_interruption"]), lines[0], \
            lines[1]
    flag, line, unpaused_line = run_virtual(body())
    assert flag is False
    assert "its false-interruption pause and resume (turnfsm pauses the agent's audio " \
        "0.15 s into speech over it)" in line
    assert "turnfsm does not pause the agent's audio" in unpaused_line


def test_turnfsm_listens_through_livekits_own_vad_stream() -> None:
    """With a TurnfsmAgent, LiveKit runs one VAD stream (its own, on the microphone) and
    turnfsm hears every event of it: no second stream on the STT's audio."""
    streams: list[Any] = []

    def count(taking: TurnfsmTurnTaking, session: AgentSession[None]) -> None:
        vad = session.vad
        assert isinstance(vad, FakeVAD)
        make = vad.stream

        def stream() -> lk_vad.VADStream:
            streams.append(make())
            return streams[-1]
        vad.stream = stream  # type: ignore[method-assign]
    run = converse(HESITATION, reply_audio=1.0, length=10.0, setup=count)
    assert len(streams) == 1
    starts = [round(e.t, 6) for e in run.inputs if isinstance(e, ev.VadStartOfSpeech)]
    assert starts == [1.1, 7.1]


class OwnNode(LiveKitAgent):
    """An app's agent with an STT node of its own that runs through turnfsm."""

    async def stt_node(self, audio: Any, model_settings: Any) -> Any:
        taking = TurnfsmTurnTaking.of(self.session)
        assert taking is not None
        async for e in taking.stt_node(self, audio, model_settings):
            yield e


@pytest.mark.parametrize("teed", [True, False])
def test_an_agent_of_the_apps_own_listens_once(teed: bool,
                                              caplog: pytest.LogCaptureFixture) -> None:
    """An agent that is no TurnfsmAgent but calls taking.stt_node: given turnfsm's VAD
    (taking.tee), LiveKit's one VAD stream reaches turnfsm; without it, turnfsm runs a
    second stream on the STT's audio and says so. Either way each VAD start reaches turnfsm
    once."""
    streams: list[Any] = []

    async def body() -> list[ev.Input]:
        vad = FakeVAD(HESITATION)
        make = vad.stream

        def stream() -> lk_vad.VADStream:
            streams.append(make())
            return streams[-1]
        vad.stream = stream  # type: ignore[method-assign]
        session: AgentSession[None] = AgentSession(
            vad=vad, stt=FakeSTT(HESITATION), llm=FakeLLM(), tts=FakeTTS(1.0),
            aec_warmup_duration=None, user_away_timeout=None)
        session.input.audio = FakeAudioInput()
        session.output.audio = FakeAudioOutput()
        inputs: list[ev.Input] = []
        taking = TurnfsmTurnTaking(session, telemetry=False, observers=[
            lambda r: inputs.append(r.input) if r.input else None])
        agent = OwnNode(instructions="x", **({"vad": taking.tee(vad)} if teed else {}))
        await session.start(agent)
        await until(9.0)
        await session.aclose()
        await taking.aclose()
        return inputs
    with caplog.at_level("WARNING", logger="turnfsm.adapters.livekit"):
        inputs = run_virtual(body())
    starts = [round(e.t, 6) for e in inputs if isinstance(e, ev.VadStartOfSpeech)]
    assert starts == [1.1, 7.1]
    assert len(streams) == (1 if teed else 2)
    warned = any("second VAD stream" in r.getMessage() for r in caplog.records)
    assert warned is not teed


class FailingVAD(FakeVAD):
    """A VAD whose stream fails at 3.0 s."""

    def stream(self) -> lk_vad.VADStream:
        return FailingVADStream(self)


class FailingVADStream(lk_vad.VADStream):
    async def _main_task(self) -> None:
        drain = asyncio.create_task(_drain(self._input_ch))
        try:
            await until(3.0)
            raise RuntimeError("VAD model crashed")
        finally:
            await utils.aio.cancel_and_wait(drain)


def test_a_failed_livekit_vad_stream_detaches_turnfsms_vad(
        caplog: pytest.LogCaptureFixture) -> None:
    """LiveKit's VAD stream failing (the one turnfsm listens through) tells turnfsm: its VAD
    input is detached, so it decides from the STT alone instead of waiting for a VAD."""
    seen: list[bool] = []

    async def body() -> None:
        session: AgentSession[None] = AgentSession(
            vad=FailingVAD([]), stt=FakeSTT([]), llm=FakeLLM(), tts=FakeTTS(1.0),
            aec_warmup_duration=None, user_away_timeout=None)
        session.input.audio = FakeAudioInput()
        session.output.audio = FakeAudioOutput()
        taking = TurnfsmTurnTaking(session, telemetry=False)
        await session.start(Agent())
        await until(2.0)
        seen.append(taking.fsm.engine.in_state("vad_input", "attached"))
        await until(4.0)
        seen.append(taking.fsm.engine.in_state("vad_input", "attached"))
        await session.aclose()
        await taking.aclose()
    with caplog.at_level("ERROR"):
        run_virtual(body())
    assert seen == [True, False]
    assert any("VAD stream failed" in r.getMessage() for r in caplog.records)
