"""turnfsm inside LiveKit Agents (1.8): turnfsm decides who holds the floor, LiveKit does the rest.

    session = AgentSession(vad=silero.VAD.load(), stt=..., llm=..., tts=...)
    taking = TurnfsmTurnTaking(session)          # 1. before session.start()
    await session.start(TurnfsmAgent(instructions="..."), room=ctx.room)  # 2. a TurnfsmAgent

The order and the agent class matter, and are checked: ``TurnfsmTurnTaking`` created after
``session.start()`` raises ``RuntimeError``, and starting the session (or ``update_agent``)
with an agent whose STT node does not run through turnfsm (a plain ``Agent``) raises
``TypeError``: otherwise no turn would ever be committed.

LiveKit Agents has no public seam to replace its user-turn recogniser (``AgentActivity``
builds its ``AudioRecognition`` itself). The supported takeover is manual turn detection plus
the session's public turn API, and that is what :class:`TurnfsmTurnTaking` does:

* it puts the ``AgentSession`` in manual mode (``update_options(turn_detection="manual")``,
  with a zero endpointing delay, so LiveKit adds no wait of its own to a commit);
* it listens to the user through LiveKit's own VAD stream (:class:`TurnfsmAgent` gives
  LiveKit a VAD that also tells turnfsm every event: one VAD stream, on the real microphone
  audio, even during LiveKit's AEC warm-up and uninterruptible speech, when the STT is fed
  silence) and through the agent's STT node (every STT event goes to a turnfsm
  :class:`~turnfsm.runtime.Session`); and to the agent through the session's
  ``agent_state_changed`` events (the agent's audio started / stopped);
* STT transcripts reach LiveKit only when turnfsm lets them through: a transcript the engine
  reports held (``TranscriptHeld``: the agent speaks, or an utterance begun over it is being
  judged) waits for its release (``Transcript``) or drop (``TranscriptDropped``), so
  LiveKit's turn holds exactly the transcripts turnfsm kept;
* at the instants turnfsm decides, it acts through the public API: an ``EndOfTurn`` commits
  (``session.commit_user_turn``), an ``Interruption`` interrupts (``session.interrupt()``),
  and :meth:`TurnfsmTurnTaking.clear_user_turn` clears both sides.

In manual mode LiveKit's own barge-in is off, so interruptions come from turnfsm: by default
an :class:`~turnfsm.adapters.common.OverlapDetector` on LiveKit's VAD windows calls user
speech over the agent an interruption once a voiced window comes ``barge_in`` seconds (0.5)
after its onset; shorter speech is judged by its words (a backchannel is dropped: it neither
stops the agent nor becomes a turn). Before the verdict, speech over the agent pauses its
audio 0.15 s in (``session.output.audio.pause()``), and a backchannel resumes it
(:class:`~turnfsm.adapters.common.OutputPause`); LiveKit's own false-interruption pause is
turned off. What manual mode turns off is said in one log line at
``session.start()``: LiveKit's preemptive generation (a ``PreemptiveGeneration`` reaches your
``on_preemptive_generation`` hook only) and its interruption options (``min_duration``,
``min_words``, ``mode``; turnfsm's detector judges overlaps).

:class:`TurnfsmTurnDetector` is the other, smaller use: turnfsm's rule-based end-of-turn model
behind LiveKit's turn-detector protocol, for ``turn_handling={"turn_detection": ...}`` with
LiveKit's own recogniser.

This module holds the turn-taking and the agent; the hooks, the VAD tee, the mapping of
LiveKit's events and the turn detector are in ``_livekit_io``.
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import itertools
import logging
import time
import weakref
from collections import deque
from collections.abc import AsyncIterable, AsyncIterator, Awaitable, Callable, Mapping
from typing import Any

from livekit import rtc
from livekit.agents import stt, utils
from livekit.agents import vad as lk_vad
from livekit.agents.voice import Agent, AgentSession, ModelSettings
from livekit.agents.voice.events import (
    AgentStateChangedEvent,
    CloseEvent,
    UserInputTranscribedEvent,
)

from .. import outputs as out
from ..core.profiles import Profile
from ..options import EngineOptions
from ..runtime import RuleBasedModel, Session, SessionClosed
from ..runtime.protocols import EouModel
from ._livekit_io import (
    CLOSE_FILTER,
    TRANSCRIPTS,
    AdapterHooks,
    TeeVAD,
    TurnfsmTurnDetector,
    retrieve,
    stt_input,
    vad_input,
)
from ._livekit_io import user_turn_text as user_turn_text
from .common import (
    DEFAULT_MIN_DURATION,
    DEFAULT_PAUSE_AFTER,
    DEFAULT_RESUME_AFTER,
    HeldTranscripts,
    OutputPause,
    OverlapDetector,
    turn_taking,
)

log = logging.getLogger("turnfsm.adapters.livekit")

SttNode = Callable[[Agent, AsyncIterable[rtc.AudioFrame], ModelSettings], Any]
_SESSIONS: weakref.WeakKeyDictionary[AgentSession[Any], TurnfsmTurnTaking] = (
    weakref.WeakKeyDictionary())

__all__ = ["BargeInDetector", "OverlapDetector", "TurnfsmAgent", "TurnfsmTurnDetector",
           "TurnfsmTurnTaking"]


BargeInDetector = OverlapDetector  # the name this adapter's detector had


class TurnfsmTurnTaking:
    """turnfsm's turn-taking for one ``AgentSession``. Create it inside a running loop,
    before ``session.start()``, and give the session an agent whose STT node runs through it
    (:class:`TurnfsmAgent`).

    ``profile`` is turnfsm's behaviour profile (default ``default``; ``livekit`` for the
    recogniser LiveKit ships, minus its defects); ``options`` are turnfsm's, over the
    profile's (an :class:`EngineOptions`, or a mapping of changes; default: the end-of-turn
    model decides, barge-in detection on); ``hooks`` is an object with any of turnfsm's
    hook methods (``on_end_of_turn`` returning False keeps the turn open;
    ``on_preemptive_generation``; ``on_output``; ...);
    ``model`` an end-of-turn model (default :class:`~turnfsm.runtime.RuleBasedModel`);
    ``vad`` the VAD LiveKit and turnfsm listen with (default: the agent's, else
    ``session.vad``); ``barge_in`` the overlap (onset to a voiced VAD window) that makes an
    interruption (None: no built-in detector; see :class:`OverlapDetector`);
    ``pause_after`` the overlap (onset to a voiced window) that pauses the agent's audio
    (``session.output.audio.pause()``) until turnfsm's verdict, and ``resume_after`` the
    unvoiced time after a short utterance that resumes it (None: no pause; see
    :class:`~turnfsm.adapters.common.OutputPause`; the pauses are in ``pause.records``);
    ``ack_timeout`` how long a commit waits for LiveKit to take the final transcripts
    turnfsm released. Other keywords go to :class:`~turnfsm.runtime.Session`
    (``telemetry``, ``tracer_provider``, ``conversation_id``, ``model_timeout``,
    ``observers``, ``detector``).

    Every delivered ``EndOfTurn`` (with its ``decision`` record) is kept in :attr:`turns`,
    every ``Interruption`` in :attr:`interruptions`, the futures LiveKit's commits return
    in :attr:`commits`; :attr:`fsm` is the turnfsm session (its ``spans``, its ``engine``).
    """

    def __init__(self, session: AgentSession[Any],
                 options: EngineOptions | Mapping[str, Any] | None = None, *,
                 profile: str | Profile | None = None,
                 hooks: object | None = None, model: EouModel | None = None,
                 vad: lk_vad.VAD | None = None,
                 barge_in: float | None = DEFAULT_MIN_DURATION,
                 pause_after: float | None = DEFAULT_PAUSE_AFTER,
                 resume_after: float | None = DEFAULT_RESUME_AFTER,
                 ack_timeout: float = 1.0, **session_kwargs: Any) -> None:
        if getattr(session, "_started", False):
            raise RuntimeError("create TurnfsmTurnTaking before session.start(): a running "
                               "session's agent already listens without turnfsm, and no turn "
                               "would be committed")
        detector = session_kwargs.pop("detector", None)
        made = turn_taking(profile, options, detector=detector, barge_in=barge_in,
                           pause_after=pause_after, resume_after=resume_after,
                           pause=self._pause_audio, resume=self._resume_audio,
                           defaults={"turn_detection": "model",
                                     "interruption_detection": barge_in is not None})
        if made.options.turn_detection == "manual":
            raise ValueError("turnfsm decides the turns here: use a turnfsm mode other than "
                             "'manual' (commit_user_turn() still works for push-to-talk)")
        self.profile, options, detector = made.profile, made.options, made.detector
        self.detector: OverlapDetector | None = made.builtin
        self.pause: OutputPause | None = made.pause
        self.session = session
        self.hooks = hooks
        self.vad = vad
        self.ack_timeout = ack_timeout
        self._warned_pause = False
        self._stt_input: utils.aio.Chan[rtc.AudioFrame] | None = None  # the STT's audio
        self._sample_rate: int | None = None
        self.fsm = Session(options, profile=self.profile, hooks=AdapterHooks(self, hooks),
                           model=model if model is not None else RuleBasedModel(),
                           detector=detector, stt=self, **session_kwargs)
        if self.detector is not None:
            self.detector.bind(self.fsm)
        self.loop = self.fsm.loop
        self.turns: list[out.EndOfTurn] = []
        self.interruptions: list[out.Interruption] = []
        self.commits: list[asyncio.Future[str]] = []
        self._refs = itertools.count(1)
        # transcripts turnfsm holds: (event, the queue it goes to), sent when released
        self._held: HeldTranscripts[tuple[stt.SpeechEvent,
                                          asyncio.Queue[stt.SpeechEvent | None]]]
        self._held = HeldTranscripts(self._send)
        self._tees: dict[int, TeeVAD] = {}  # the VADs LiveKit runs, told to turnfsm
        self._unacked: deque[str] = deque()  # finals sent to LiveKit it has not taken yet
        self._deferred: list[out.EndOfTurn] = []  # commits waiting for those
        self._ack_timer: asyncio.TimerHandle | None = None
        self._interrupted_at: float | None = None  # the overlap an interruption stopped
        self._closing: asyncio.Task[None] | None = None
        self._vad_failed = False
        _SESSIONS[session] = self
        lk_log = logging.getLogger("livekit.agents")
        if CLOSE_FILTER not in lk_log.filters:
            lk_log.addFilter(CLOSE_FILTER)
        session.update_options(turn_detection="manual",
                               endpointing_opts={"mode": "fixed", "min_delay": 0.0})
        # LiveKit's false-interruption pause (on user speech while a reply is due, cancelled
        # by the next final transcript) would decide turns beside turnfsm: off
        self._lk_resume = bool(session.options.interruption.get("resume_false_interruption"))
        session.options.interruption["resume_false_interruption"] = False
        session.on("agent_state_changed", self._on_agent_state)
        session.on("user_input_transcribed", self._on_transcribed)
        session.on("close", self._on_close)
        self._wrap_start(session)

    @classmethod
    def of(cls, session: AgentSession[Any]) -> TurnfsmTurnTaking | None:
        """The turn-taking attached to ``session``, if any."""
        return _SESSIONS.get(session)

    @property
    def spans(self) -> Any:
        """The session's OpenTelemetry span observer (None with ``telemetry=False``)."""
        return self.fsm.spans

    # -- wiring ---------------------------------------------------------------------------------

    def _wrap_start(self, session: AgentSession[Any]) -> None:
        """Check the agent at ``session.start()`` and ``update_agent()`` (an agent whose STT
        node bypasses turnfsm would never have a turn committed), and say at start what
        manual mode turns off."""
        start, update = session.start, session.update_agent

        async def checked_start(agent: Agent, *args: Any, **kwargs: Any) -> Any:
            check_agent(agent)
            self._announce()
            return await start(agent, *args, **kwargs)

        def checked_update(agent: Agent) -> None:
            check_agent(agent)
            update(agent)
        session.start = checked_start  # type: ignore[method-assign]
        session.update_agent = checked_update  # type: ignore[method-assign]

    def _announce(self) -> None:
        """One log line naming what LiveKit features are off under turnfsm."""
        opts = self.session.options
        pre = opts.preemptive_generation.get("enabled", True)
        inter = opts.interruption
        lost = [f"LiveKit's preemptive generation ({'on' if pre else 'off'} in the session; "
                "turnfsm's PreemptiveGeneration reaches on_preemptive_generation only)",
                "its interruption options (" + ", ".join(
                    f"{k}={inter[k]!r}" for k in ("mode", "min_duration", "min_words")
                    if k in inter) + "; turnfsm's "
                + (f"OverlapDetector(min_duration={self.detector.min_duration:g}) judges "
                   "overlaps" if self.detector is not None else "detector judges overlaps")
                + ")", "its end-of-turn delays and turn detector"]
        if self._lk_resume:
            lost.append("its false-interruption pause and resume (turnfsm " + (
                f"pauses the agent's audio {self.pause.after:g} s into speech over it"
                if self.pause is not None else "does not pause the agent's audio") + ")")
        (log.warning if pre else log.info)(
            "turnfsm decides turns in LiveKit's manual mode (profile %s, turn_detection %s); "
            "not used: %s", self.profile.name, self.fsm.options.turn_detection,
            "; ".join(lost))

    def tee(self, vad: lk_vad.VAD) -> lk_vad.VAD:
        """``vad`` as LiveKit should run it: every event it emits also goes to turnfsm (one
        VAD stream, on the microphone's audio). :class:`TurnfsmAgent` does this itself."""
        if isinstance(vad, TeeVAD):
            return vad
        tee = self._tees.get(id(vad))
        if tee is None:
            tee = self._tees[id(vad)] = TeeVAD(vad, self)
        return tee

    # -- app-facing turn control ---------------------------------------------------------------

    def commit_user_turn(self, *, transcript_timeout: float = 2.0,
                         stt_flush_duration: float = 2.0, skip_reply: bool = False
                         ) -> asyncio.Future[str]:
        """Push-to-talk: end the user turn through turnfsm, whose ``EndOfTurn`` then commits
        LiveKit's. As LiveKit's own commit, it waits up to ``transcript_timeout`` for a final
        transcript unless one came in the last 0.5 s (with the audio input detached, the STT
        is first fed ``stt_flush_duration`` of silence). Resolves to the committed
        transcript."""
        return self.fsm.commit_user_turn(transcript_timeout=transcript_timeout,
                                         stt_flush_duration=stt_flush_duration,
                                         skip_reply=skip_reply,
                                         audio_detached=not self.session.input.audio_enabled)

    def flush(self, frames: int, frame_duration: float) -> None:
        """turnfsm's STT control: feed the STT ``frames`` silent frames (a commit's flush
        when the audio input is detached)."""
        ch, rate = self._stt_input, self._sample_rate
        if ch is None or ch.closed or rate is None:
            return
        for _ in range(frames):
            ch.send_nowait(rtc.AudioFrame.create(rate, 1, int(rate * frame_duration)))

    def clear_user_turn(self) -> None:
        """Discard the current user turn in turnfsm and in LiveKit."""
        self._forget()
        self._safe(self.fsm.clear_user_turn)
        self.session.clear_user_turn()

    async def aclose(self) -> None:
        """Close the turnfsm session (LiveKit's closing does it too)."""
        if self._ack_timer is not None:
            self._ack_timer.cancel()
            self._ack_timer = None
        await self.fsm.aclose()
        if _SESSIONS.get(self.session) is self:
            del _SESSIONS[self.session]

    # -- inputs: the STT node ------------------------------------------------------------------

    async def stt_node(self, agent: Agent, audio: AsyncIterable[rtc.AudioFrame],
                       model_settings: ModelSettings, *, node: SttNode | None = None
                       ) -> AsyncIterator[stt.SpeechEvent]:
        """Run ``node`` (default ``Agent.default.stt_node``) with turnfsm watching: frames go
        to the VAD and the STT, VAD and STT events to turnfsm; STT events come out when
        turnfsm has processed them. Call it from your agent's ``stt_node``."""
        if utils.is_given(agent.turn_detection) and agent.turn_detection != "manual":
            log.warning("agent %s sets turn_detection=%r, which overrides the session's manual "
                        "mode: turnfsm cannot commit its turns", agent.label,
                        agent.turn_detection)
        inner: SttNode = node if node is not None else Agent.default.stt_node
        sink: asyncio.Queue[stt.SpeechEvent | None] = asyncio.Queue()
        to_stt = self._stt_input = utils.aio.Chan[rtc.AudioFrame]()
        vad_stream = None
        livekits = agent.vad if utils.is_given(agent.vad) else self.session.vad
        if not isinstance(livekits, TeeVAD):
            # LiveKit's VAD does not reach turnfsm: a stream of its own, on the STT's audio
            # (silence during LiveKit's AEC warm-up and uninterruptible speech)
            vad = self.vad if self.vad is not None else self.session.vad
            vad_stream = vad.stream() if vad is not None else None
            if vad_stream is not None:
                log.warning("agent %s is no TurnfsmAgent: turnfsm runs a second VAD stream "
                            "on the STT's audio; give the agent turnfsm's VAD "
                            "(Agent(vad=taking.tee(vad))) to listen to the microphone",
                            agent.label)

        if vad_stream is not None and self._vad_failed:
            self._vad_failed = False
            self._safe(self.fsm.set_vad, True)  # a new stream after a failed one

        async def feed() -> None:
            vad_in = vad_stream
            try:
                async for frame in audio:
                    self._sample_rate = frame.sample_rate
                    self._safe(self.fsm.push_audio, frame.duration,
                               sample_rate=frame.sample_rate)
                    if vad_in is not None:
                        try:
                            vad_in.push_frame(frame)
                        except RuntimeError:  # the VAD stream closed: the STT goes on
                            vad_in = None
                    to_stt.send_nowait(frame)
            finally:
                to_stt.close()

        async def read_vad(stream: lk_vad.VADStream) -> None:
            try:
                async for e in stream:
                    self._on_vad(e)
            except Exception:
                log.exception("the VAD stream failed; turnfsm goes on without a VAD")
                self._vad_failed = True
                self._safe(self.fsm.set_vad, False)

        async def read_stt() -> None:
            try:
                events = inner(agent, to_stt, model_settings)
                if inspect.isawaitable(events):
                    events = await events
                if isinstance(events, AsyncIterable):
                    async for e in events:
                        self._on_stt(e, sink)
            finally:
                sink.put_nowait(None)

        tasks = [asyncio.create_task(feed(), name="turnfsm_feed"),
                 asyncio.create_task(read_stt(), name="turnfsm_stt")]
        if vad_stream is not None:
            tasks.append(asyncio.create_task(read_vad(vad_stream), name="turnfsm_vad"))
        try:
            while (e := await sink.get()) is not None:
                yield e
            await tasks[1]  # the STT node's own failure surfaces here
        finally:
            await utils.aio.cancel_and_wait(*tasks)
            if vad_stream is not None:
                await vad_stream.aclose()

    def _on_vad(self, e: lk_vad.VADEvent) -> None:
        if self.fsm.closed:
            return
        event = vad_input(e)
        if event is not None:
            self._safe(self.fsm.push_vad, event)
        if self.detector is not None and e.type == lk_vad.VADEventType.INFERENCE_DONE:
            self.detector.window(e.probability)

    def _on_stt(self, e: stt.SpeechEvent,
                sink: asyncio.Queue[stt.SpeechEvent | None]) -> None:
        if self.fsm.closed:  # turnfsm no longer decides: LiveKit hears everything
            sink.put_nowait(e)
            return
        ref = next(self._refs)
        fsm_event = stt_input(e, ref, self._session_time)
        gated = (e.type in TRANSCRIPTS and bool(e.alternatives)
                 and bool(e.alternatives[0].text.strip()))
        if not gated:  # nothing of the turn's text: LiveKit hears it at once
            sink.put_nowait(e)
        if fsm_event is None:
            return
        if gated:  # sent when turnfsm reports it (now, or when it releases what it held)
            self._held.push(ref, (e, sink), final=e.type == stt.SpeechEventType.FINAL_TRANSCRIPT)
        self._safe(self.fsm.push_stt, fsm_event)
        if gated:
            self._held.pushed(ref)

    def _session_time(self, wall: float) -> float:
        """A wall-clock time (LiveKit's) as turnfsm session time."""
        return max(0.0, min(self.fsm.now(), self.fsm.now() - (time.time() - wall)))

    # -- inputs: the agent ---------------------------------------------------------------------

    def _on_agent_state(self, e: AgentStateChangedEvent) -> None:
        if e.new_state == "speaking" and e.old_state != "speaking":
            self._safe(self.fsm.agent_speech_started)
        elif e.old_state == "speaking" and e.new_state != "speaking":
            until, self._interrupted_at = self._interrupted_at, None
            self._safe(self.fsm.agent_speech_ended, ignore_user_transcript_until=until)

    def _on_transcribed(self, e: UserInputTranscribedEvent) -> None:
        """LiveKit took a final transcript: a commit waiting for it may go."""
        if not e.is_final or e.transcript not in self._unacked:
            return
        while self._unacked.popleft() != e.transcript:
            pass
        if not self._unacked and self._deferred:
            self.loop.call_soon(self._commit_deferred)

    def _on_close(self, e: CloseEvent) -> None:
        if self._closing is None:
            self._closing = self.loop.create_task(self.aclose())

    # -- outputs -------------------------------------------------------------------------------

    def _on_output(self, o: out.Output) -> None:
        self._held.on_output(o)
        if self.pause is not None:
            self.pause.on_output(o)

    def _pause_audio(self) -> bool:
        """Pause the agent's audio output (False: there is none, or it cannot pause, or the
        speech playing does not allow interruptions)."""
        audio = self.session.output.audio
        speech = self.session.current_speech
        if audio is None or not self.session.output.audio_enabled or \
                (speech is not None and not speech.allow_interruptions):
            return False
        if not audio.can_pause:
            if not self._warned_pause:
                self._warned_pause = True
                log.warning("the session's audio output cannot pause: barge-ins stop the "
                            "agent at turnfsm's interruption verdict only")
            return False
        audio.pause()
        return True

    def _resume_audio(self) -> None:
        audio = self.session.output.audio
        if audio is not None:
            audio.resume()

    def _send(self, item: tuple[stt.SpeechEvent, asyncio.Queue[stt.SpeechEvent | None]]
              ) -> None:
        """Hand a transcript turnfsm let through to LiveKit."""
        e, sink = item
        if e.type == stt.SpeechEventType.FINAL_TRANSCRIPT:
            self._unacked.append(e.alternatives[0].text)
        sink.put_nowait(e)

    def _on_end_of_turn(self, o: out.EndOfTurn) -> bool | Awaitable[bool]:
        fn = getattr(self.hooks, "on_end_of_turn", None)
        if fn is None:
            self._commit(o)
            return True
        r = fn(o)
        if not inspect.isawaitable(r):
            if r:
                self._commit(o)
            return bool(r)

        async def later(aw: Awaitable[Any]) -> bool:
            accepted = bool(await aw)
            if accepted:
                self._commit(o)
            return accepted
        return later(r)

    def _commit(self, o: out.EndOfTurn) -> None:
        self.turns.append(o)
        self._deferred.append(o)
        if self._unacked:  # LiveKit has not taken every final turnfsm released yet
            if self._ack_timer is None:
                self._ack_timer = self.loop.call_later(self.ack_timeout, self._commit_deferred)
            return
        self._commit_deferred()

    def _commit_deferred(self) -> None:
        if self._ack_timer is not None:
            self._ack_timer.cancel()
            self._ack_timer = None
        if self._unacked:
            log.warning("LiveKit did not take the final transcript(s) %r in %s s; committing",
                        list(self._unacked), self.ack_timeout)
            self._unacked.clear()
        pending, self._deferred = self._deferred, []
        for o in pending:
            try:
                fut = self.session.commit_user_turn(transcript_timeout=0.0,
                                                    skip_reply=o.skip_reply)
            except RuntimeError as exc:  # the session is not running (closing)
                log.debug("commit of %r not sent: %s", o.new_transcript, exc)
                continue
            fut.add_done_callback(retrieve)
            self.commits.append(fut)

    def _on_interruption(self, o: out.Interruption) -> None:
        self.interruptions.append(o)
        self._interrupted_at = (o.detected_at if o.overlap_started_at is None
                                else o.overlap_started_at)
        pause = self.pause
        try:
            done = self.session.interrupt()
        except RuntimeError as exc:  # the current speech does not allow interruptions
            log.debug("interruption not applied: %s", exc)
            if pause is not None:
                pause.end("resumed")
            return
        if pause is not None and (rec := pause.current) is not None:
            # resumed once LiveKit has cleared the output's buffer: nothing of it plays
            done.add_done_callback(lambda _: pause.end("stopped", rec))

    # -- helpers -------------------------------------------------------------------------------

    def _forget(self) -> None:
        self._held.clear()
        self._unacked.clear()

    def _safe(self, fn: Callable[..., Any], *args: Any, **kw: Any) -> None:
        """Push into the turnfsm session unless it is closed (LiveKit may still talk)."""
        with contextlib.suppress(SessionClosed):
            fn(*args, **kw)


class TurnfsmAgent(Agent):
    """An ``Agent`` whose STT node and VAD run through the session's
    :class:`TurnfsmTurnTaking` (without one attached, it is a plain ``Agent``)."""

    @property
    def vad(self) -> Any:
        """The VAD LiveKit runs for this agent (its own, else the session's), telling
        turnfsm every event."""
        own = self._vad
        activity = getattr(self, "_activity", None)
        tt = None if activity is None else TurnfsmTurnTaking.of(activity.session)
        if tt is None:
            return own
        base = tt.vad if tt.vad is not None else (own if utils.is_given(own)
                                                  else tt.session.vad)
        return own if base is None else tt.tee(base)

    async def stt_node(self, audio: AsyncIterable[rtc.AudioFrame],
                       model_settings: ModelSettings) -> AsyncIterator[stt.SpeechEvent]:
        tt = TurnfsmTurnTaking.of(self.session)
        if tt is None:
            async for e in Agent.default.stt_node(self, audio, model_settings):
                yield e
            return
        async for e in tt.stt_node(self, audio, model_settings):
            yield e


def check_agent(agent: Agent) -> None:
    """Refuse an agent whose STT node cannot run through turnfsm (``TypeError``)."""
    if isinstance(agent, TurnfsmAgent) or type(agent).stt_node is not Agent.stt_node:
        return  # a TurnfsmAgent, or an stt_node of the app's (it calls taking.stt_node)
    raise TypeError(f"{type(agent).__name__} is a plain livekit Agent: turnfsm would never "
                    "hear the user and no turn would be committed; use "
                    "turnfsm.adapters.livekit.TurnfsmAgent, or call TurnfsmTurnTaking.stt_node "
                    "from your agent's stt_node")


