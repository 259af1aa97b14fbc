"""turnfsm inside Pipecat: the user turn strategies of Pipecat's user aggregator, backed by
one :class:`~turnfsm.runtime.Session` per conversation.

    from pipecat.audio.vad.silero import SileroVADAnalyzer
    from pipecat.processors.aggregators.llm_response_universal import LLMContextAggregatorPair
    from turnfsm.adapters.pipecat import TurnfsmUserTurnStrategies

    strategies = TurnfsmUserTurnStrategies({"turn_detection": "model"}, hooks=my_hooks)
    params = strategies.user_params(vad_analyzer=SileroVADAnalyzer())  # the VAD goes here
    pair = LLMContextAggregatorPair(context, user_params=params)
    ...                                         # strategies.session: the Session, once started

The VAD analyzer must go through :meth:`TurnfsmUserTurnStrategies.user_params`: turnfsm then
reads its speech probability window by window (:class:`VadProbe`), which marks the last
speech precisely and feeds the built-in :class:`~turnfsm.adapters.common.OverlapDetector`
(on by default, ``barge_in=0.5``: a barge-in over the bot interrupts once a voiced window
comes 0.5 s after its onset; a backchannel neither interrupts nor becomes a turn), and sets
its ``start_secs`` (0.05 s) and ``stop_secs`` (0.5 s, at most ``min_delay``) for turn-taking.

**The seam.** Pipecat's ``LLMUserAggregator`` runs a ``UserTurnController`` that offers every
frame to its start strategies, then to its stop strategies, and acts on their triggers (turn
frames, interruption, the LLM run). :class:`TurnfsmUserTurnStrategies` is a
``UserTurnStrategies`` with one start and one stop strategy sharing a bridge to the session:

* the **start strategy** sees every frame first and pushes what it means into the session, in
  the order the aggregator sees it: ``VADUserStartedSpeakingFrame`` / ``UserSpeakingFrame`` /
  ``VADUserStoppedSpeakingFrame`` -> ``VadStartOfSpeech`` / ``VadInferenceDone`` /
  ``VadEndOfSpeech``; ``InterimTranscriptionFrame`` / ``TranscriptionFrame`` -> ``SttInterim`` /
  ``SttFinal``; ``BotStartedSpeakingFrame`` / ``BotStoppedSpeakingFrame`` ->
  ``agent_speech_started()`` / ``agent_speech_ended()``. A finalized transcription that
  arrives after its VAD segment ended (a segmented STT's, one per segment, in order) carries
  that segment's end as ``end_time``: when the STT lags a segment behind, turnfsm does not
  take it for the latest segment's final (the default profile waits for that one), and speech
  that ended before the agent's reply is not trimmed as a backchannel. Frames are only read:
  every frame goes on exactly as Pipecat sends it. turnfsm's ``StartOfSpeech`` starts
  Pipecat's turn; user speech over the bot that turnfsm judges (a detector attached, or the default
  profile's gate) waits for turnfsm's outputs: an ``Interruption``, its words let through (a
  ``Transcript``), or its drop as a backchannel. The adapter decides from these outputs and
  from the frames it sees, never from the chart's region or state names. The voiced windows
  of the probe (else the activity frames Pipecat's VAD sends while speech goes on) mark the
  last speech, from which turnfsm measures its delays; a VAD that sends neither makes its
  stop the last speech.
* the **stop strategy** is driven by the session's outputs: ``EndOfTurn`` ends Pipecat's turn
  (``trigger_user_turn_stopped``: inference, then finalization), ``PreemptiveGeneration``
  (opt-in) runs a speculative inference (``trigger_user_turn_inference_triggered(speculation=)``,
  held by the LLM service's speculation gate; confirmed or withdrawn at the end of turn), and
  ``Interruption`` (from an interruption detector) starts the turn and broadcasts Pipecat's
  ``InterruptionFrame``.

Pipecat's reactions run in the order turnfsm emitted the outputs: outputs of a frame are
acted on before the strategy returns (as Pipecat's own strategies do); outputs of turnfsm's
timer (the end-of-turn wait) are acted on from a task, as Pipecat's timeout strategies do.

**Caveats, from Pipecat's controller** (``pipecat/turns/user_turn_controller.py``):

* its stop watchdog (``user_turn_stop_timeout``, 5 s by default) ends a turn no strategy
  ended; it must stay above turnfsm's longest wait. :meth:`TurnfsmUserTurnStrategies.user_params`
  sets it to :attr:`TurnfsmUserTurnStrategies.user_turn_stop_timeout`; if it fires anyway, the
  adapter clears turnfsm's turn (Pipecat has answered it) and logs a warning.
* it ignores a stop while it believes the user is speaking (per the VAD), and still runs the
  inference. The adapter therefore refuses such an ``EndOfTurn`` (the answer turnfsm gets is
  ``accepted=False``: the turn goes on and is decided again when the user stops).
* the aggregator keeps its own transcript (every ``TranscriptionFrame`` it is given). When
  turnfsm discards transcripts (a backchannel trimmed when the bot stops, ``clear_user_turn``)
  the adapter resets the aggregation and gives the aggregator back the finals turnfsm kept, in
  order, as :class:`RestoredTranscriptionFrame` (a system frame, so it overtakes queued data
  frames; the aggregator consumes it, nothing downstream sees it).

Decision records and spans stay with the app: ``hooks`` receives every output (as a Session's
hooks do; ``on_end_of_turn``, asked only when Pipecat can take the turn, may refuse it),
``strategies.session`` is the Session (its ``spans``, ``engine``, ``push_*`` methods).

Use these strategies alone: another stop strategy ending Pipecat's turn makes turnfsm drop its
own (as the watchdog does). The adapter is for cascaded pipelines (STT, LLM, TTS); a realtime
LLM service that decides turns itself is outside it.
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import logging
from collections import deque
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any

from pipecat.audio.vad.vad_analyzer import VADAnalyzer
from pipecat.frames.frames import (
    BotStartedSpeakingFrame,
    BotStoppedSpeakingFrame,
    CancelFrame,
    EndFrame,
    Frame,
    InputAudioRawFrame,
    InterimTranscriptionFrame,
    InterruptionFrame,
    OutputAudioRawFrame,
    ProposedUserStartedSpeakingFrame,
    ProposedUserStoppedSpeakingFrame,
    SystemFrame,
    TranscriptionFrame,
    UserSpeakingFrame,
    UserStartedSpeakingFrame,
    UserStoppedSpeakingFrame,
    VADUserStartedSpeakingFrame,
    VADUserStoppedSpeakingFrame,
)
from pipecat.processors.aggregators.llm_response_universal import LLMUserAggregatorParams
from pipecat.processors.frame_processor import FrameDirection, FrameProcessorSetup
from pipecat.transports.base_output import BaseOutputTransport
from pipecat.turns.types import ProcessFrameResult, UserTurnSpeculation
from pipecat.turns.user_start import BaseUserTurnStartStrategy
from pipecat.turns.user_stop import BaseUserTurnStopStrategy, NormalizedMatch
from pipecat.turns.user_turn_strategies import UserTurnStrategies

from .. import events as ev
from .. import outputs as out
from ..core.profiles import Profile, get_profile
from ..errors import EngineFailed
from ..options import EngineOptions
from ..runtime import EouModel, Session, SessionClosed
from .common import (
    DEFAULT_MIN_DURATION,
    DEFAULT_PAUSE_AFTER,
    DEFAULT_RESUME_AFTER,
    OutputPause,
    OverlapDetector,
    attach_pause,
    call_hook,
)

__all__ = ["OutputGate", "OverlapDetector", "RestoredTranscriptionFrame",
           "TurnfsmUserTurnStartStrategy",
           "TurnfsmUserTurnStopStrategy", "TurnfsmUserTurnStrategies", "VadProbe",
           "watchdog_floor"]

log = logging.getLogger("turnfsm.adapters.pipecat")
Action = Callable[[], Awaitable[None]]
# margin kept between turnfsm's longest wait and Pipecat's stop watchdog
WATCHDOG_MARGIN = 1.0
# the watchdog when only commits end turns (a day: in effect, never)
MANUAL_WATCHDOG = 86400.0
# how long reactions wait for restored transcriptions to come back through the aggregator
RESTORE_TIMEOUT = 1.0
# the VAD's start_secs user_params() sets: a resumption is seen 0.05 s after it begins, not
# 0.2 s (Pipecat's default), so a 0.4-0.5 s pause is not taken for the end of the turn
VAD_START_SECS = 0.05
# the VAD's stop_secs user_params() sets (at most min_delay): the short pauses inside an
# utterance ("wait, stop") do not split it (0.2 s, Pipecat's default, does), so an overlap
# and a backchannel are judged whole, and a 0.45 s pause between sentences ends no segment;
# turnfsm's end-of-turn wait runs from the last voiced window, not from this stop
VAD_STOP_SECS = 0.5


class VadProbe:
    """Records the speech probability of every window a Pipecat ``VADAnalyzer`` scores
    (its ``voice_confidence``, which runs in the analyzer's thread), for the adapter to read
    on the event loop after each audio frame: turnfsm sees the user's speech window by
    window (the last speech; a voiced window for the overlap detector), not only the VAD's
    start and stop, which come ``start_secs`` / ``stop_secs`` late."""

    def __init__(self, analyzer: VADAnalyzer) -> None:
        self.analyzer = analyzer
        self._windows: deque[float] = deque()
        inner = analyzer.voice_confidence

        def voice_confidence(buffer: bytes) -> float:
            p = inner(buffer)
            item = getattr(p, "item", None)  # Silero's is a one-element numpy array
            self._windows.append(float(item() if item is not None else p))
            return p
        analyzer.voice_confidence = voice_confidence  # type: ignore[method-assign]

    @property
    def threshold(self) -> float:
        """The analyzer's confidence threshold (a window at or above it is voiced)."""
        return float(self.analyzer.params.confidence)

    @property
    def window_duration(self) -> float:
        """Seconds of audio per scored window."""
        rate = self.analyzer.sample_rate or 16000
        return self.analyzer.num_frames_required() / rate

    def take(self) -> list[float]:
        """The probabilities scored since the last call, oldest first."""
        out: list[float] = []
        while self._windows:
            out.append(self._windows.popleft())
        return out


class OutputGate:
    """Holds the bot's audio at a Pipecat output transport while turnfsm pauses it
    (:meth:`TurnfsmUserTurnStrategies.pausable` installs it). Pipecat's output transports
    have no pause: the transport's audio task writes its queued chunks one by one, and the
    gate makes the write of the next interruptible chunk wait while paused, so nothing is
    lost or reordered: resumed, the transport plays on from that chunk. An
    ``InterruptionFrame`` reaching the transport (after it has emptied its queue) drops the
    held chunk. Background audio of a mixer pauses with the bot."""

    def __init__(self, output: BaseOutputTransport) -> None:
        self.output = output
        self.held = False
        self._released = asyncio.Event()
        self._released.set()
        self._generation = 0  # bumped by each InterruptionFrame: held chunks are dropped
        self.on_interruption: Callable[[], None] | None = None
        write, process = output.write_audio_frame, output.process_frame

        async def write_audio_frame(frame: OutputAudioRawFrame) -> bool:
            generation = self._generation
            while self.held and frame.interruptible and generation == self._generation:
                await self._released.wait()
            if generation != self._generation and frame.interruptible:
                return False  # interrupted while held: never played
            return bool(await write(frame))

        async def process_frame(frame: Frame, direction: FrameDirection) -> None:
            await process(frame, direction)
            if isinstance(frame, InterruptionFrame):
                self._generation += 1
                self.release()
                if self.on_interruption is not None:
                    self.on_interruption()
        output.write_audio_frame = write_audio_frame  # type: ignore[method-assign]
        output.process_frame = process_frame  # type: ignore[method-assign]

    def hold(self) -> None:
        """Pause: the next interruptible chunk waits."""
        self.held = True
        self._released.clear()

    def release(self) -> None:
        """Resume: the held chunk plays (unless an interruption dropped it)."""
        self.held = False
        self._released.set()


@dataclass
class RestoredTranscriptionFrame(TranscriptionFrame, SystemFrame):
    """A final turnfsm kept, given back to the user aggregator after its aggregation was reset
    (``restored_from``: the id of the original frame). A system frame, so the aggregator
    takes it before any data frame queued behind; it consumes it like any transcription."""

    restored_from: int = 0


def _language(frame: TranscriptionFrame | InterimTranscriptionFrame) -> str:
    lang = frame.language
    return "" if lang is None else str(getattr(lang, "value", lang))


class _Bridge:
    """The session, the two strategies, and the ordered queue of Pipecat reactions."""

    def __init__(self, options: EngineOptions | Mapping[str, Any] | None, hooks: object | None,
                 model: EouModel | None, session_kwargs: dict[str, Any] | None,
                 preemptive_generation: bool, profile: str | Profile | None = None,
                 barge_in: float | None = DEFAULT_MIN_DURATION,
                 pause_after: float | None = DEFAULT_PAUSE_AFTER,
                 resume_after: float | None = DEFAULT_RESUME_AFTER) -> None:
        self.profile = get_profile(profile)
        self.session_kwargs = dict(session_kwargs or {})
        self.detector: OverlapDetector | None = None
        if self.session_kwargs.get("detector") is None and barge_in is not None:
            self.detector = self.session_kwargs["detector"] = OverlapDetector(barge_in)
        self.gate: OutputGate | None = None  # set by pausable(output)
        self._warned_gate = False
        self.pause: OutputPause | None = attach_pause(
            self.detector, pause_after, resume_after, self._pause_audio, self._resume_audio)
        if not isinstance(options, EngineOptions):
            options = self.profile.options({
                "interruption_detection": self.session_kwargs.get("detector") is not None,
                **(options or {})})
        self.options = options
        self.user_hooks = hooks
        self.model = model
        self.probe: VadProbe | None = None  # set by user_params(vad_analyzer=...)
        self._warned_probe = False
        self.bot_speaking = False  # from BotStarted/StoppedSpeakingFrame
        # user speech over the bot is judged (an interruption or a backchannel) before it is
        # a turn: a detector judges overlaps, or the profile's gate judges them by their
        # words (its rule ``holds_over_agent``); otherwise it starts a turn at once, as
        # Pipecat's own strategies do
        self.judges_overlaps = bool(self.options.interruption_detection and
                                    self.session_kwargs.get("detector") is not None) or \
            "holds_over_agent" in self.profile.chart.guard_names
        self.preemptive_generation = preemptive_generation
        self.session: Session | None = None
        self.start: TurnfsmUserTurnStartStrategy | None = None
        self.stop: TurnfsmUserTurnStopStrategy | None = None
        self._refs = 0
        self._actions: deque[Action] = deque()
        self._lock = asyncio.Lock()
        self._pushing = False  # inside a push from process_frame: the caller drains
        self._drain_task: asyncio.Task[None] | None = None
        self._tasks: set[asyncio.Task[Any]] = set()
        self._closing = False
        # Pipecat's view, kept from the frames and callbacks the controller also sees
        self.turn_open = False  # the controller's user turn (handle_user_turn_started/stopped)
        self.user_speaking = False  # the controller's _user_speaking (VAD and turn frames)
        self.stops_seen = 0  # handle_user_turn_stopped calls
        self.stopping = False  # a stop the adapter triggered is in progress
        # the VAD segment being mapped
        self._onset: float | None = None  # session time the VAD says speech began
        self._activity = False  # a UserSpeakingFrame arrived in this segment
        # finalized transcriptions (a segmented STT's, one per VAD segment, in order): the
        # ends (session time) of the VAD segments none has answered yet, and the STT's time
        # origin their timestamps are counted from
        self._unanswered: deque[float] = deque()
        self._answered_open = False  # the open VAD segment has its finalized transcription
        self._stt_origin: float | None = None
        # overlaps judged by an interruption detector
        self._deferred = False  # a start waits for the detector's verdict
        self._interrupted_from: float | None = None  # overlap start of the last interruption
        # speculation (preemptive generation) in flight
        self.speculation: str | None = None
        # the finals the aggregator holds (its aggregation), with their SttFinal refs
        self.aggregated: list[tuple[int, TranscriptionFrame]] = []
        self._answers: set[asyncio.Future[bool]] = set()  # end-of-turn answers not given
        self._dropped = 0
        self._restoring = 0  # restored transcriptions not back yet: reactions wait for them
        self._restore_timer: asyncio.TimerHandle | None = None
        self._warned_watchdog = False

    # -- lifecycle ---------------------------------------------------------------------------

    def setup(self) -> None:
        self._refs += 1
        if self.session is None or self.session.closed:
            self._closing = False
            self.session = Session(self.options, profile=self.profile, hooks=self,
                                   model=self.model, **self.session_kwargs)
            if self.detector is not None:
                self.detector.bind(self.session)
                if self.probe is not None:
                    self.detector.threshold = self.probe.threshold
            self._unanswered.clear()
            self._answered_open = False
            # audio reaches the STT from the pipeline's start: the origin of STT timestamps
            e = self.session.push(ev.AudioPushed(duration=0.02))
            self._stt_origin = e.t - e.duration

    def cleanup(self) -> None:
        self._refs -= 1
        if self._refs <= 0:
            # Pipecat re-applies strategies with cleanup() then setup(): close only if no
            # setup follows at once
            asyncio.get_running_loop().call_soon(self._close_if_unused)

    def _close_if_unused(self) -> None:
        if self._refs <= 0 and self.session is not None and not self.session.closed:
            self._spawn(self.aclose())

    async def aclose(self) -> None:
        """Close the session (a pending turn is settled; Pipecat's turn is not touched)."""
        self._closing = True
        self._actions.clear()
        if self._restore_timer is not None:
            self._restore_timer.cancel()
        for fut in list(self._answers):  # decisions Pipecat will not act on now
            if not fut.done():
                fut.set_result(False)
        if self.session is not None:
            await self.session.aclose()

    # -- frames -> session -------------------------------------------------------------------

    async def on_frame(self, frame: Frame) -> None:
        """Map one frame to session inputs (the start strategy calls this for every frame)."""
        self._track_pipecat(frame)
        s = self.session
        if s is None or s.closed or self._closing:
            return
        if isinstance(frame, RestoredTranscriptionFrame):  # turnfsm has it already
            if self._restoring:
                self._restoring -= 1
                if not self._restoring:
                    self._restored()
            return
        if isinstance(frame, EndFrame | CancelFrame):
            await self.aclose()
            return
        self._pushing = True
        try:
            self._push(s, frame)
        except (SessionClosed, EngineFailed) as exc:
            log.error("%s: turnfsm stopped deciding turns: %s", s.session_id, exc)
        finally:
            self._pushing = False
        await self.drain()

    def _track_pipecat(self, frame: Frame) -> None:
        """Mirror what the controller believes (it saw this frame just before us)."""
        if isinstance(frame, VADUserStartedSpeakingFrame | UserStartedSpeakingFrame
                      | ProposedUserStartedSpeakingFrame):
            self.user_speaking = True
        elif isinstance(frame, VADUserStoppedSpeakingFrame | UserStoppedSpeakingFrame
                        | ProposedUserStoppedSpeakingFrame):
            self.user_speaking = False
        elif isinstance(frame, BotStartedSpeakingFrame):
            self.bot_speaking = True
        elif isinstance(frame, BotStoppedSpeakingFrame):
            self.bot_speaking = False
        elif isinstance(frame, TranscriptionFrame) and frame.text.strip():
            ref = (frame.restored_from if isinstance(frame, RestoredTranscriptionFrame)
                   else frame.id)
            self.aggregated.append((ref, frame))  # the aggregator has appended it

    def _push(self, s: Session, frame: Frame) -> None:
        if isinstance(frame, InputAudioRawFrame):
            if self.probe is not None:
                self._windows(s, self.probe)
        elif isinstance(frame, VADUserStartedSpeakingFrame):
            self._onset = s.now() - frame.start_secs
            self._activity = False
            self._answered_open = False
            if self.probe is None and not self._warned_probe:
                self._warned_probe = True
                log.warning("the VAD analyzer did not go through "
                            "TurnfsmUserTurnStrategies.user_params(vad_analyzer=...): turnfsm "
                            "hears only Pipecat's VAD start and stop frames (backchannels "
                            "may interrupt, pauses may be cut)")
            s.push_vad(ev.VadStartOfSpeech(speech_duration=frame.start_secs, ref=frame.id))
        elif isinstance(frame, UserSpeakingFrame):
            self._activity = True
            if self.probe is None:  # with the probe, voiced windows mark the last speech
                self._speech_window(s, frame.id)
                if self.detector is not None:
                    self.detector.window(1.0)
        elif isinstance(frame, VADUserStoppedSpeakingFrame):
            if not self._activity and self._onset is not None:
                # a VAD without activity frames: its stop is the last speech we know of
                self._speech_window(s, None)
            speech = 0.0 if self._onset is None else max(0.0, s.now() - frame.stop_secs
                                                         - self._onset)
            if self._onset is not None and not self._answered_open:
                self._unanswered.append(s.now() - frame.stop_secs)
            self._onset = None
            self._answered_open = False
            s.push_vad(ev.VadEndOfSpeech(silence_duration=frame.stop_secs,
                                         speech_duration=speech, ref=frame.id))
        elif isinstance(frame, TranscriptionFrame):
            if frame.text.strip():
                s.push_stt(ev.SttFinal(text=frame.text, language=_language(frame),
                                       end_time=self._late_final_end(frame), ref=frame.id))
        elif isinstance(frame, InterimTranscriptionFrame):
            if frame.text.strip():
                s.push_stt(ev.SttInterim(text=frame.text, language=_language(frame),
                                         ref=frame.id))
        elif isinstance(frame, BotStartedSpeakingFrame):
            self._interrupted_from = None
            s.agent_speech_started()
        elif isinstance(frame, BotStoppedSpeakingFrame):
            until, self._interrupted_from = self._interrupted_from, None
            s.agent_speech_ended(ignore_user_transcript_until=until)

    def _late_final_end(self, frame: TranscriptionFrame) -> float:
        """The STT-stream end time of a finalized transcription that arrives after its VAD
        segment ended (a segmented STT's: one per segment, in order), so that turnfsm pairs
        it with that segment, not a later one, and knows when its speech ended (before the
        agent's reply, say); 0.0 (no timestamp) for any other."""
        if not frame.finalized:
            return 0.0
        if not self._unanswered:
            if self._onset is not None:
                self._answered_open = True  # a streaming STT's final, inside its segment
            return 0.0
        ended = self._unanswered.popleft()
        if self._stt_origin is None:
            return 0.0
        return max(ended - self._stt_origin, 1e-3)

    def _windows(self, s: Session, probe: VadProbe) -> None:
        """The windows the analyzer scored on this audio frame: voiced ones inside a VAD
        segment mark the last speech; all go to the overlap detector."""
        probs = probe.take()
        if not probs:
            return
        now, step = s.now(), probe.window_duration
        threshold = probe.threshold
        for i, p in enumerate(probs):
            at = round(now - (len(probs) - 1 - i) * step, 6)
            if p >= threshold and self._onset is not None:
                self._speech_window(s, None, at)
            if self.detector is not None:
                self.detector.window(p, at)

    def _speech_window(self, s: Session, ref: Any, at: float | None = None) -> None:
        now = s.now() if at is None else at
        onset = now if self._onset is None else self._onset
        speech = max(now - onset, 1e-3)
        s.push_vad(ev.VadInferenceDone(raw_accumulated_speech=speech, speech_duration=speech,
                                       speaking=True, probability=1.0, ref=ref))

    # -- session outputs (the Session's hooks) -----------------------------------------------

    def on_output(self, o: out.Output) -> None:
        self._forward("on_output", o)
        if self.pause is not None:
            self.pause.on_output(o)
        if self._deferred and isinstance(o, out.Transcript):
            # turnfsm let the words of the speech begun over the bot through (released, or
            # never held): they are the user's, the turn starts
            self._deferred = False
            self._enqueue(self._start_turn)

    def on_start_of_speech(self, o: out.StartOfSpeech) -> None:
        self._forward("on_start_of_speech", o)
        if self.bot_speaking and self.judges_overlaps:
            # over the bot: a backchannel or an interruption, turnfsm's outputs will say
            # (Interruption, its words let through, or dropped as a backchannel)
            self._deferred = True
            return
        self._enqueue(self._start_turn)

    def on_interruption(self, o: out.Interruption) -> None:
        self._forward("on_interruption", o)
        self._deferred = False
        over_agent = self.bot_speaking
        if over_agent:  # the held speech before this overlap is trimmed when the agent stops
            self._interrupted_from = (o.overlap_started_at if o.overlap_started_at is not None
                                      else o.detected_at)
        self._enqueue(lambda: self._interrupt(over_agent))

    def on_preemptive_generation(self, o: out.PreemptiveGeneration) -> None:
        self._forward("on_preemptive_generation", o)
        if self.preemptive_generation:
            text = o.new_transcript
            self._enqueue(lambda: self._speculate(text))

    def on_transcript_dropped(self, o: out.TranscriptDropped) -> None:
        self._forward("on_transcript_dropped", o)
        if o.reason == "backchannel":
            self._deferred = False  # it was no turn: nothing starts
        for i, (ref, _frame) in enumerate(self.aggregated):
            if ref == o.ref:
                del self.aggregated[i]
                self._dropped += 1
                self._enqueue(self._sync_aggregation)
                break

    def on_error(self, error: BaseException) -> None:
        self._forward("on_error", error)

    def on_end_of_turn(self, o: out.EndOfTurn) -> bool | Awaitable[bool]:
        if self._closing:  # Pipecat has flushed the aggregation itself: only the app hears it
            fn = getattr(self.user_hooks, "on_end_of_turn", None)
            return True if fn is None else fn(o)
        fut: asyncio.Future[bool] = asyncio.get_running_loop().create_future()
        self._answers.add(fut)
        fut.add_done_callback(self._answers.discard)
        self._enqueue(lambda: self._end_turn(o, fut))
        return fut

    def __getattr__(self, name: str) -> Any:
        # the other hooks (on_transcript, on_end_of_speech, ...) are the app's own
        if name.startswith("on_") and self.user_hooks is not None:
            return getattr(self.user_hooks, name)
        raise AttributeError(name)

    def _forward(self, name: str, o: Any) -> None:
        call_hook(self.user_hooks, name, o, self._spawn)

    # -- Pipecat reactions, in order ---------------------------------------------------------

    def _enqueue(self, action: Action) -> None:
        self._actions.append(action)
        if not self._pushing:  # an output of turnfsm's own timer or of a model answer
            self._drain_soon()

    def _drain_soon(self) -> None:
        if self._drain_task is None or self._drain_task.done():
            self._drain_task = self._spawn(self.drain())

    def _restored(self) -> None:
        """The restored transcriptions are back (or will not come): reactions go on."""
        self._restoring = 0
        if self._restore_timer is not None:
            self._restore_timer.cancel()
            self._restore_timer = None
        self._drain_soon()

    def _restore_timed_out(self) -> None:
        self._restore_timer = None
        if self._restoring:
            log.warning("%d restored transcription(s) did not reach the aggregator within "
                        "%g s (muted?)", self._restoring, RESTORE_TIMEOUT)
            self._restored()

    async def drain(self) -> None:
        """Run the queued reactions, one at a time, in order (paused while restored
        transcriptions are on their way back into the aggregation)."""
        async with self._lock:
            while self._actions and not self._closing and not self._restoring:
                action = self._actions.popleft()
                try:
                    await action()
                except Exception:
                    log.exception("a Pipecat reaction failed")

    async def _start_turn(self) -> None:
        if self.start is not None:
            await self.start.trigger_user_turn_started()

    def _pause_audio(self) -> bool:
        if self.gate is None:
            if not self._warned_gate:
                self._warned_gate = True
                log.warning("no output transport to pause: put the pipeline's output "
                            "through TurnfsmUserTurnStrategies.pausable(transport.output()); "
                            "barge-ins stop the bot at turnfsm's interruption verdict only")
            return False
        if not self.bot_speaking:
            return False
        self.gate.hold()
        return True

    def _resume_audio(self) -> None:
        if self.gate is not None:
            self.gate.release()

    def _gate_interrupted(self) -> None:
        """An InterruptionFrame reached the output: the bot's audio is stopped."""
        if self.pause is not None:
            self.pause.end("stopped")

    async def _interrupt(self, over_agent: bool) -> None:
        if self.start is None:
            return
        if not self.start.interrupts and self.pause is not None:
            self.pause.end("resumed")  # Pipecat will not stop the bot: it plays on
        if not self.turn_open:
            await self.start.trigger_user_turn_started()  # starts the turn and interrupts
        elif over_agent and self.start.interrupts:  # the turn's start did not stop the agent
            await self.start.broadcast_frame(InterruptionFrame)

    async def _speculate(self, text: str) -> None:
        if self.stop is None or not self.turn_open or text == self.speculation:
            return
        if self.speculation is not None:
            await self.stop.trigger_user_turn_speculation_cancelled()  # type: ignore[no-untyped-call]
        self.speculation = text
        await self.stop.trigger_user_turn_inference_triggered(
            speculation=UserTurnSpeculation(text=text))

    async def _sync_aggregation(self) -> None:
        """turnfsm discarded finals the aggregator holds: reset it, give back the rest."""
        if not self._dropped or self.start is None:
            return
        self._dropped = 0
        kept, self.aggregated = self.aggregated, []
        await self.start.trigger_reset_aggregation()  # type: ignore[no-untyped-call]
        if kept:  # later reactions (an end of turn) wait until the aggregator has them
            self._restoring = len(kept)
            self._restore_timer = asyncio.get_running_loop().call_later(
                RESTORE_TIMEOUT, self._restore_timed_out)
        for ref, f in kept:  # each comes back through _track_pipecat, in order
            restored = RestoredTranscriptionFrame(
                text=f.text, user_id=f.user_id, timestamp=f.timestamp, language=f.language,
                result=f.result, finalized=f.finalized, restored_from=ref)
            restored.includes_inter_frame_spaces = f.includes_inter_frame_spaces
            await self.start.push_frame(restored)

    async def _end_turn(self, o: out.EndOfTurn, fut: asyncio.Future[bool]) -> None:
        accepted = False
        try:
            accepted = await self._deliver(o)
        finally:
            if not fut.done():
                fut.set_result(accepted)

    async def _deliver(self, o: out.EndOfTurn) -> bool:
        start, stop = self.start, self.stop
        if start is None or stop is None or self.user_speaking:
            return False  # Pipecat would not stop the turn while the VAD says speech
        fn = getattr(self.user_hooks, "on_end_of_turn", None)
        if fn is not None:
            try:
                r = fn(o)
                if inspect.isawaitable(r):
                    r = await r
            except Exception:
                log.exception("hook on_end_of_turn raised on %r; the turn is refused (kept)", o)
                return False
            if not r:
                return False
        if not self.turn_open:  # words without a VAD start: the turn starts now
            await start.trigger_user_turn_started()
        spec, self.speculation = self.speculation, None
        seen = self.stops_seen
        self.stopping = True
        try:
            held = " ".join(f.text for _, f in self.aggregated)
            if spec is not None and _same(spec, o.new_transcript) and _same(spec, held):
                await stop.trigger_user_turn_finalized(confirms_speculation=True)
            else:
                if spec is not None:
                    await stop.trigger_user_turn_speculation_cancelled()  # type: ignore[no-untyped-call]
                if o.skip_reply:
                    await stop.trigger_user_turn_finalized(confirms_speculation=True)
                else:
                    await stop.trigger_user_turn_stopped()
        finally:
            self.stopping = False
        return self.stops_seen > seen

    # -- controller callbacks (through the stop strategy) ------------------------------------

    def turn_started(self) -> None:
        self.turn_open = True
        self._deferred = False

    async def turn_stopped(self) -> None:
        self.turn_open = False
        self.stops_seen += 1
        self.aggregated.clear()  # the aggregator pushes (and empties) its aggregation now
        self._dropped = 0
        spec, self.speculation = self.speculation, None
        if spec is not None and self.stop is not None:
            await self.stop.trigger_user_turn_speculation_cancelled()  # type: ignore[no-untyped-call]
        if self.stopping:
            return
        # Pipecat ended the turn without turnfsm (its stop watchdog): turnfsm lets it go
        s = self.session
        if s is None or s.closed or self._closing:
            return
        if not self._warned_watchdog:
            self._warned_watchdog = True
            log.warning("Pipecat ended the user turn before turnfsm decided (its stop "
                        "watchdog, or another stop strategy); turnfsm drops the turn. Use "
                        "user_turn_stop_timeout >= %.1f s and no other stop strategy",
                        watchdog_floor(s.options, s.model_timeout))
        if not s.engine.awaiting_answer:
            with contextlib.suppress(SessionClosed, EngineFailed):
                s.clear_user_turn()

    # -- tasks ---------------------------------------------------------------------------------

    def _spawn(self, coro: Any) -> asyncio.Task[Any]:
        task: asyncio.Task[Any] = asyncio.get_running_loop().create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task


def _same(a: str, b: str) -> bool:
    return bool(NormalizedMatch().matches(a, b))


def watchdog_floor(options: EngineOptions, model_timeout: float = 2.0) -> float:
    """The shortest safe ``user_turn_stop_timeout`` for these options: turnfsm's longest wait
    after the last VAD or transcript frame (``max_delay``, plus the model's answer time when a
    model is asked) and a margin; when only commits end turns (manual, realtime_llm), a day."""
    if options.turn_detection in ("manual", "realtime_llm"):
        return MANUAL_WATCHDOG  # only the app's commits end turns
    longest = options.endpointing.max_delay
    if options.turn_detection == "model":
        longest += model_timeout
    return longest + WATCHDOG_MARGIN


class TurnfsmUserTurnStartStrategy(BaseUserTurnStartStrategy):  # type: ignore[no-untyped-call]
    """Feeds every frame to the turnfsm session; starts Pipecat's turn on turnfsm's
    ``StartOfSpeech`` (or, with an interruption detector, on its ``Interruption``)."""

    def __init__(self, bridge: _Bridge, *, enable_interruptions: bool = True) -> None:
        super().__init__(enable_interruptions=enable_interruptions)
        self._bridge = bridge
        bridge.start = self

    @property
    def interrupts(self) -> bool:
        """Whether a turn start interrupts the bot."""
        return bool(self._enable_interruptions)

    async def setup(self, setup: FrameProcessorSetup) -> None:  # type: ignore[override]
        """Set up; the first strategy set up creates the session."""
        await super().setup(setup)
        self._bridge.setup()

    async def cleanup(self) -> None:
        """Clean up; the session closes when neither strategy is in use."""
        await super().cleanup()  # type: ignore[no-untyped-call]
        self._bridge.cleanup()

    async def process_frame(self, frame: Frame) -> ProcessFrameResult:
        """Push what the frame means into the session; act on what turnfsm decides."""
        await self._bridge.on_frame(frame)
        return ProcessFrameResult.CONTINUE


class TurnfsmUserTurnStopStrategy(BaseUserTurnStopStrategy):  # type: ignore[no-untyped-call]
    """Ends Pipecat's turn on turnfsm's ``EndOfTurn``; runs a speculative inference on its
    ``PreemptiveGeneration`` (opt-in). Reads no frame itself: the start strategy feeds the
    session."""

    def __init__(self, bridge: _Bridge) -> None:
        super().__init__()
        self._bridge = bridge
        bridge.stop = self

    async def setup(self, setup: FrameProcessorSetup) -> None:  # type: ignore[override]
        """Set up (the session is shared with the start strategy)."""
        await super().setup(setup)
        self._bridge.setup()

    async def cleanup(self) -> None:
        """Clean up; the session closes when neither strategy is in use."""
        await super().cleanup()  # type: ignore[no-untyped-call]
        self._bridge.cleanup()

    async def handle_user_turn_started(self) -> None:
        """Pipecat's turn started."""
        self._bridge.turn_started()

    async def handle_user_turn_stopped(self) -> None:
        """Pipecat's turn stopped (by this strategy, or by the controller's watchdog)."""
        await self._bridge.turn_stopped()

    async def process_frame(self, frame: Frame) -> ProcessFrameResult:
        """Nothing to read: the start strategy has pushed the frame already."""
        return ProcessFrameResult.CONTINUE


class TurnfsmUserTurnStrategies(UserTurnStrategies):
    """Pipecat ``UserTurnStrategies`` whose turn starts and ends turnfsm decides.

    ``profile`` is turnfsm's behaviour profile (default ``default``: backchannels neither
    start a turn nor interrupt the bot, with or without a detector; ``livekit`` for LiveKit's
    recogniser minus its defects); ``options`` (an :class:`EngineOptions`, or a mapping of
    changes over the profile's), ``model`` and ``session_kwargs`` (any other
    :class:`Session` argument:
    ``detector``, ``model_timeout``, ``conversation_id``, ``tracer_provider``, ...) make the
    session, created when the pipeline starts (:attr:`session`). ``hooks`` receives every
    output as a Session's hooks do. ``preemptive_generation`` turns turnfsm's
    ``PreemptiveGeneration`` into Pipecat speculative inferences; ``enable_interruptions``
    is Pipecat's (a turn start interrupts the bot). ``barge_in`` is the built-in overlap
    detector's duration (:class:`OverlapDetector`: user speech over the bot interrupts once
    a voiced VAD window comes ``barge_in`` seconds after its onset; shorter speech is judged
    by its words, a backchannel neither interrupts nor becomes a turn; None: no detector,
    the words alone decide). The detector reads the VAD window by window: give the VAD
    analyzer through :meth:`user_params` (``vad_analyzer=``).
    """

    def __init__(self, options: EngineOptions | Mapping[str, Any] | None = None, *,
                 profile: str | Profile | None = None, hooks: object | None = None,
                 model: EouModel | None = None, session_kwargs: dict[str, Any] | None = None,
                 preemptive_generation: bool = False, enable_interruptions: bool = True,
                 barge_in: float | None = DEFAULT_MIN_DURATION,
                 pause_after: float | None = DEFAULT_PAUSE_AFTER,
                 resume_after: float | None = DEFAULT_RESUME_AFTER) -> None:
        self._bridge = _Bridge(options, hooks, model, session_kwargs, preemptive_generation,
                               profile, barge_in, pause_after, resume_after)
        super().__init__(
            start=[TurnfsmUserTurnStartStrategy(self._bridge,
                                                enable_interruptions=enable_interruptions)],
            stop=[TurnfsmUserTurnStopStrategy(self._bridge)])

    @property
    def session(self) -> Session | None:
        """The conversation's Session (None until the pipeline has started)."""
        return self._bridge.session

    @property
    def options(self) -> EngineOptions:
        """The options the session is made with."""
        return self._bridge.options

    @property
    def user_turn_stop_timeout(self) -> float:
        """A ``user_turn_stop_timeout`` for Pipecat's controller that stays above turnfsm's
        longest wait (and never below Pipecat's default of 5 s)."""
        model_timeout = float(self._bridge.session_kwargs.get("model_timeout", 2.0))
        return max(5.0, watchdog_floor(self._bridge.options, model_timeout))

    @property
    def detector(self) -> OverlapDetector | None:
        """The built-in overlap detector (None with ``barge_in=None`` or a detector of the
        app's in ``session_kwargs``)."""
        return self._bridge.detector

    @property
    def pause(self) -> OutputPause | None:
        """The pause of the bot's audio on speech over it (None with ``pause_after=None``
        or no built-in detector); its ``records`` list every pause."""
        return self._bridge.pause

    def pausable(self, output: BaseOutputTransport) -> BaseOutputTransport:
        """``output`` (the pipeline's output transport), made pausable by turnfsm: put it in
        the pipeline as ``strategies.pausable(transport.output())``. Without it the bot
        stops only at turnfsm's interruption verdict."""
        gate = self._bridge.gate
        if gate is None or gate.output is not output:
            gate = self._bridge.gate = OutputGate(output)
            gate.on_interruption = self._bridge._gate_interrupted
        return output

    def user_params(self, *, vad_start_secs: float | None = VAD_START_SECS,
                    vad_stop_secs: float | None = VAD_STOP_SECS,
                    **kwargs: Any) -> LLMUserAggregatorParams:
        """``LLMUserAggregatorParams`` with these strategies and a safe
        ``user_turn_stop_timeout`` (other fields from ``kwargs``). Give the VAD here
        (``vad_analyzer=SileroVADAnalyzer()``): turnfsm then reads its speech probability
        window by window, its ``start_secs`` is set to ``vad_start_secs`` (0.05 s, so
        speech resuming after a short pause is seen before the end of turn is due) and its
        ``stop_secs`` to ``vad_stop_secs`` (0.5 s, at most turnfsm's ``min_delay``: a short
        pause inside an utterance does not split it, so an overlap is judged whole; the
        end-of-turn wait runs from the last voiced window, so this costs no latency). None
        keeps the analyzer's own value."""
        kwargs.setdefault("user_turn_stop_timeout", self.user_turn_stop_timeout)
        analyzer = kwargs.get("vad_analyzer")
        if analyzer is not None:
            if vad_stop_secs is not None:  # never past turnfsm's shortest wait
                vad_stop_secs = min(vad_stop_secs, self.options.endpointing.min_delay)
            update = {k: v for k, v in (("start_secs", vad_start_secs),
                                        ("stop_secs", vad_stop_secs)) if v is not None}
            if update:
                params = analyzer.params.model_copy(update=update)
                if analyzer.sample_rate:
                    analyzer.set_params(params)
                else:  # not started: the analyzer applies its params when it learns the rate
                    analyzer._params = params
            if self._bridge.probe is None or self._bridge.probe.analyzer is not analyzer:
                self._bridge.probe = VadProbe(analyzer)
            if self._bridge.detector is not None:
                self._bridge.detector.threshold = self._bridge.probe.threshold
        return LLMUserAggregatorParams(user_turn_strategies=self, **kwargs)

    async def aclose(self) -> None:
        """Close the session now (the pipeline's EndFrame or CancelFrame also does)."""
        await self._bridge.aclose()
