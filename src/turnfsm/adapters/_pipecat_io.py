"""Pipecat pieces the adapter uses (:mod:`turnfsm.adapters.pipecat`): the VAD probe, the
output gate that pauses the bot's audio, the restored transcription frame, the stop
watchdog's floor."""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass

from pipecat.audio.vad.vad_analyzer import VADAnalyzer
from pipecat.frames.frames import (
    Frame,
    InterimTranscriptionFrame,
    InterruptionFrame,
    OutputAudioRawFrame,
    SystemFrame,
    TranscriptionFrame,
)
from pipecat.processors.frame_processor import FrameDirection
from pipecat.transports.base_output import BaseOutputTransport
from pipecat.turns.user_stop import NormalizedMatch

from ..options import EngineOptions

log = logging.getLogger("turnfsm.adapters.pipecat")
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


def frame_language(frame: TranscriptionFrame | InterimTranscriptionFrame) -> str:
    lang = frame.language
    return "" if lang is None else str(getattr(lang, "value", lang))


def same_words(a: str, b: str) -> bool:
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
