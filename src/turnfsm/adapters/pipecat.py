"""turnfsm inside Pipecat: the user turn strategies of Pipecat's user aggregator, backed by
one :class:`~turnfsm.runtime.Session` per conversation.

    from pipecat.audio.vad.silero import SileroVADAnalyzer
    from pipecat.processors.aggregators.llm_response_universal import LLMContextAggregatorPair
    from turnfsm.adapters.pipecat import TurnfsmUserTurnStrategies

    strategies = TurnfsmUserTurnStrategies({"turn_detection": "model"}, hooks=my_hooks)
    params = strategies.user_params(vad_analyzer=SileroVADAnalyzer())  # the VAD goes here
    pair = LLMContextAggregatorPair(context, user_params=params)
    pipeline = Pipeline([..., pair.user(), llm, tts,
                         strategies.pausable(transport.output()), pair.assistant()])
    ...                                         # strategies.session: the Session, once started

The VAD analyzer must go through :meth:`TurnfsmUserTurnStrategies.user_params`: turnfsm then
reads its speech probability window by window (:class:`VadProbe`), which marks the last
speech precisely and feeds the built-in :class:`~turnfsm.adapters.common.OverlapDetector`
(on by default, ``barge_in=0.5``: a barge-in over the bot interrupts once a voiced window
comes 0.5 s after its onset; a backchannel neither interrupts nor becomes a turn), and sets
its ``start_secs`` (0.05 s) and ``stop_secs`` (0.5 s, at most ``min_delay``) for turn-taking.
The output transport must go through :meth:`TurnfsmUserTurnStrategies.pausable`: speech over
the bot pauses its audio 0.15 s in (:class:`~turnfsm.adapters.common.OutputPause`, through
the transport's :class:`OutputGate`), a backchannel resumes it, an interruption stops it.

This module holds the strategies; the bridge between the aggregator's frames and the session
is in ``_pipecat_bridge``, the probe, the gate and the restored frame in ``_pipecat_io``.

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

import logging
from collections.abc import Mapping
from typing import Any

from pipecat.frames.frames import Frame
from pipecat.processors.aggregators.llm_response_universal import LLMUserAggregatorParams
from pipecat.processors.frame_processor import FrameProcessorSetup
from pipecat.transports.base_output import BaseOutputTransport
from pipecat.turns.types import ProcessFrameResult
from pipecat.turns.user_start import BaseUserTurnStartStrategy
from pipecat.turns.user_stop import BaseUserTurnStopStrategy
from pipecat.turns.user_turn_strategies import UserTurnStrategies

from ..core.profiles import Profile
from ..options import EngineOptions
from ..runtime import EouModel, Session
from ._pipecat_bridge import _Bridge
from ._pipecat_io import MANUAL_WATCHDOG as MANUAL_WATCHDOG
from ._pipecat_io import RESTORE_TIMEOUT as RESTORE_TIMEOUT
from ._pipecat_io import (
    VAD_START_SECS,
    VAD_STOP_SECS,
    OutputGate,
    RestoredTranscriptionFrame,
    VadProbe,
    watchdog_floor,
)
from ._pipecat_io import WATCHDOG_MARGIN as WATCHDOG_MARGIN
from .common import (
    DEFAULT_MIN_DURATION,
    DEFAULT_PAUSE_AFTER,
    DEFAULT_RESUME_AFTER,
    OutputPause,
    OverlapDetector,
)

__all__ = ["OutputGate", "OverlapDetector", "RestoredTranscriptionFrame",
           "TurnfsmUserTurnStartStrategy",
           "TurnfsmUserTurnStopStrategy", "TurnfsmUserTurnStrategies", "VadProbe",
           "watchdog_floor"]

log = logging.getLogger("turnfsm.adapters.pipecat")


class TurnfsmUserTurnStartStrategy(BaseUserTurnStartStrategy):  # type: ignore[no-untyped-call]
    """Feeds every frame to the turnfsm session; starts Pipecat's turn on turnfsm's
    ``StartOfSpeech`` (or, with an interruption detector, on its ``Interruption``)."""

    def __init__(self, bridge: _Bridge, *, enable_interruptions: bool = True) -> None:
        super().__init__(enable_interruptions=enable_interruptions)
        self._bridge = bridge
        bridge.start = self
        bridge.start_interrupts = bool(enable_interruptions)

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
    analyzer through :meth:`user_params` (``vad_analyzer=``). ``pause_after`` is the overlap
    (onset to a voiced window) that pauses the bot's audio until turnfsm's verdict, and
    ``resume_after`` the unvoiced time after a short utterance that resumes it (None: no
    pause; :class:`~turnfsm.adapters.common.OutputPause`); the output transport must go
    through :meth:`pausable`.
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
