"""A session's input methods: one per kind of input a voice agent reports, and async
sources consumed as their events arrive. Each stamps and applies its event through
``push`` (see :class:`~turnfsm.runtime.session.Session`)."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterable
from typing import Any

from .. import events as ev
from ..core import Engine
from ..errors import EngineFailed, TurnFsmError
from ..options import EngineOptions

log = logging.getLogger("turnfsm.runtime")


class Inputs:
    """Input methods over ``push`` (mixed into the Session)."""

    session_id: str
    _closing: bool
    engine: Engine
    options: EngineOptions

    @property
    def closed(self) -> bool:  # pragma: no cover - the Session's
        raise NotImplementedError

    def push(self, e: Any) -> Any:  # pragma: no cover - the Session's
        raise NotImplementedError

    def _spawn(self, coro: Any, *, counted: bool = True) -> asyncio.Task[Any]:  # pragma: no cover
        raise NotImplementedError

    def push_vad(self, e: ev.VadStartOfSpeech | ev.VadInferenceDone | ev.VadEndOfSpeech
                 ) -> None:
        """A VAD event."""
        self.push(e)

    def push_stt(self, e: ev.SttEvent) -> None:
        """An STT event (start/end of speech, interim, preflight, final, usage)."""
        self.push(e)

    def push_overlap(self, e: ev.OverlapVerdict | ev.DetectorFailed) -> None:
        """The interruption detector's verdict (or its failure)."""
        self.push(e)

    def push_audio(self, duration: float, *, count: int = 1, sample_rate: int = 16000) -> None:
        """``count`` audio frames of ``duration`` seconds reached the STT."""
        self.push(ev.AudioPushed(duration=duration, count=count, sample_rate=sample_rate))

    def agent_speech_started(self, started_at: float | None = None, *,
                             text: str | None = None) -> None:
        """The agent's audio started playing (``text``: what it says, when known; the turn
        rules read what it asked for)."""
        self.push(ev.AgentSpeechStarted(started_at=started_at, text=text))

    def agent_speech_ended(self, ignore_user_transcript_until: float | None = None) -> None:
        """The agent's audio stopped."""
        self.push(ev.AgentSpeechEnded(ignore_user_transcript_until=ignore_user_transcript_until))

    def user_speech_started(self, started_at: float | None = None,
                            speech_duration: float = 0.0) -> None:
        """The host's own signal that the user started speaking (server VAD, for example)."""
        self.push(ev.UserSpeechStarted(started_at=started_at, speech_duration=speech_duration))

    def user_speech_ended(self, ended_at: float | None = None,
                          interruption: bool | None = None) -> None:
        """The host's own signal that the user stopped speaking."""
        self.push(ev.UserSpeechEnded(ended_at=ended_at, interruption=interruption))

    def clear_user_turn(self) -> None:
        """Discard the current user turn."""
        self.push(ev.ClearUserTurn())

    def update_options(self, *, endpointing: dict[str, Any] | None = None,
                       turn_detection: Any = ..., user_turn_limit: dict[str, Any] | None = None
                       ) -> None:
        """Change options mid-conversation (``turn_detection`` only when given)."""
        self.push(ev.UpdateOptions(endpointing=endpointing,
                                   set_turn_detection=turn_detection is not ...,
                                   turn_detection=None if turn_detection is ... else turn_detection,
                                   user_turn_limit=user_turn_limit))
        self.options = self.engine.options

    def set_vad(self, enabled: bool) -> None:
        """Attach (or restart) / detach the VAD."""
        self.push(ev.SetVad(enabled=enabled))

    def set_stt(self, enabled: bool) -> None:
        """Attach (or restart) / detach the STT."""
        self.push(ev.SetStt(enabled=enabled))

    def set_interruption_detection(self, enabled: bool) -> None:
        """Attach (or restart) / detach the interruption detector."""
        self.push(ev.SetInterruptionDetection(enabled=enabled))

    async def run(self, **sources: AsyncIterable[ev.Input]) -> None:
        """Consume async iterables of inputs (``vad=``, ``stt=``, ``overlap=``, ``agent=``,
        any names) until they end; each input is pushed as it arrives. A source that fails
        is logged and its component detached (a failed detector: ``DetectorFailed``)."""
        async def consume(name: str, src: AsyncIterable[ev.Input]) -> None:
            try:
                async for e in src:
                    if self.closed or self._closing:
                        return
                    self.push(e)
            except EngineFailed:
                return
            except TurnFsmError as exc:  # SessionClosed
                if self.closed or self._closing:
                    return
                raise exc
            except Exception:
                log.exception("%s: input source %r failed", self.session_id, name)
                if self.closed or self._closing:
                    return
                fail = {"vad": ev.SetVad(enabled=False), "stt": ev.SetStt(enabled=False),
                        "overlap": ev.DetectorFailed()}.get(name)
                if fail is not None:
                    self.push(fail)

        tasks = [self._spawn(consume(name, src), counted=False)
                 for name, src in sources.items()]
        if tasks:
            await asyncio.gather(*tasks)

