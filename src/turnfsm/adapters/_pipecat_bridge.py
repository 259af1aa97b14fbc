"""The bridge between Pipecat's user aggregator and a turnfsm Session
(:mod:`turnfsm.adapters.pipecat` documents the mapping): frames in, Pipecat reactions out,
in order."""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import logging
from collections import deque
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

from pipecat.frames.frames import (
    BotStartedSpeakingFrame,
    BotStoppedSpeakingFrame,
    CancelFrame,
    EndFrame,
    Frame,
    InputAudioRawFrame,
    InterimTranscriptionFrame,
    InterruptionFrame,
    ProposedUserStartedSpeakingFrame,
    ProposedUserStoppedSpeakingFrame,
    TranscriptionFrame,
    UserSpeakingFrame,
    UserStartedSpeakingFrame,
    UserStoppedSpeakingFrame,
    VADUserStartedSpeakingFrame,
    VADUserStoppedSpeakingFrame,
)
from pipecat.turns.types import UserTurnSpeculation
from pipecat.turns.user_start import BaseUserTurnStartStrategy
from pipecat.turns.user_stop import BaseUserTurnStopStrategy

from .. import events as ev
from .. import outputs as out
from ..core.profiles import Profile
from ..errors import EngineFailed
from ..options import EngineOptions
from ..runtime import EouModel, Session, SessionClosed
from ._pipecat_io import (
    RESTORE_TIMEOUT,
    OutputGate,
    RestoredTranscriptionFrame,
    VadProbe,
    frame_language,
    same_words,
    watchdog_floor,
)
from .common import (
    DEFAULT_MIN_DURATION,
    DEFAULT_PAUSE_AFTER,
    DEFAULT_RESUME_AFTER,
    OutputPause,
    OverlapDetector,
    call_hook,
    turn_taking,
)

log = logging.getLogger("turnfsm.adapters.pipecat")
Action = Callable[[], Awaitable[None]]


class _Bridge:
    """The session, the two strategies, and the ordered queue of Pipecat reactions."""

    def __init__(self, options: EngineOptions | Mapping[str, Any] | None, hooks: object | None,
                 model: EouModel | None, session_kwargs: dict[str, Any] | None,
                 preemptive_generation: bool, profile: str | Profile | None = None,
                 barge_in: float | None = DEFAULT_MIN_DURATION,
                 pause_after: float | None = DEFAULT_PAUSE_AFTER,
                 resume_after: float | None = DEFAULT_RESUME_AFTER) -> None:
        self.session_kwargs = dict(session_kwargs or {})
        app = self.session_kwargs.get("detector")
        made = turn_taking(profile, options, detector=app, barge_in=barge_in,
                           pause_after=pause_after, resume_after=resume_after,
                           pause=self._pause_audio, resume=self._resume_audio,
                           defaults={"interruption_detection": app is not None
                                     or barge_in is not None})
        self.profile, self.options = made.profile, made.options
        self.detector: OverlapDetector | None = made.builtin
        self.pause: OutputPause | None = made.pause
        if made.detector is not None:
            self.session_kwargs["detector"] = made.detector
        self.gate: OutputGate | None = None  # set by pausable(output)
        self._warned_gate = False
        self.user_hooks = hooks
        self.model = model
        self.probe: VadProbe | None = None  # set by user_params(vad_analyzer=...)
        self._warned_probe = False
        self.bot_speaking = False  # from BotStarted/StoppedSpeakingFrame
        # user speech over the bot is judged (an interruption or a backchannel) before it is
        # a turn: a detector judges overlaps, or the profile declares that it judges them
        # (by their words, Profile.judges_speech_over_agent); otherwise it starts a turn at
        # once, as Pipecat's own strategies do
        self.judges_overlaps = bool(self.options.interruption_detection and
                                    self.session_kwargs.get("detector") is not None) or \
            self.profile.judges_speech_over_agent
        self.preemptive_generation = preemptive_generation
        self.session: Session | None = None
        # the two strategies register themselves (turnfsm.adapters.pipecat); whether a turn
        # start interrupts the bot is the start strategy's enable_interruptions
        self.start: BaseUserTurnStartStrategy | None = None
        self.start_interrupts = True
        self.stop: BaseUserTurnStopStrategy | None = None
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
                s.push_stt(ev.SttFinal(text=frame.text, language=frame_language(frame),
                                       end_time=self._late_final_end(frame), ref=frame.id))
        elif isinstance(frame, InterimTranscriptionFrame):
            if frame.text.strip():
                s.push_stt(ev.SttInterim(text=frame.text, language=frame_language(frame),
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
        if not self.start_interrupts and self.pause is not None:
            self.pause.end("resumed")  # Pipecat will not stop the bot: it plays on
        if not self.turn_open:
            await self.start.trigger_user_turn_started()  # starts the turn and interrupts
        elif over_agent and self.start_interrupts:  # the turn's start did not stop the agent
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
            if spec is not None and same_words(spec, o.new_transcript) and same_words(spec, held):
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
