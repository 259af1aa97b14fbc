"""Outputs: decisions, observations and requests the engine emits, in order.

Every output carries ``t``, the session time at which it was emitted. Outputs that answer
to one input carry that input's ``ref``.
"""

from __future__ import annotations

from typing import Any, Literal

import attrs

TranscriptType = Literal["interim", "preflight", "final"]
CommitStatus = Literal["ok", "cancelled"]
DropReason = Literal["clear_user_turn", "backchannel_trim", "stream_reset", "closed",
                     "duplicate"]
InputDropReason = Literal["vad_inactive", "stt_inactive", "detector_inactive"]
Signal = Literal["agent_speech_started", "agent_speech_ended", "overlap_speech_started",
                 "overlap_speech_ended"]


@attrs.define(frozen=True, kw_only=True, slots=True)
class Output:
    """Common base of every output."""

    t: float


@attrs.define(frozen=True, kw_only=True, slots=True)
class StartOfSpeech(Output):
    """The user started speaking (``ref`` of the VAD event, or None when the STT said so)."""

    ref: Any
    speech_start_time: float


@attrs.define(frozen=True, kw_only=True, slots=True)
class VadInference(Output):
    """A VAD inference window was forwarded to the host."""

    ref: Any


@attrs.define(frozen=True, kw_only=True, slots=True)
class EndOfSpeech(Output):
    """The user stopped speaking (``ref`` None when not caused by a VAD event)."""

    ref: Any


@attrs.define(frozen=True, kw_only=True, slots=True)
class Transcript(Output):
    """A transcript reported to the host: ``type`` is interim, preflight or final."""

    ref: Any
    type: TranscriptType
    text: str
    language: str
    confidence: float
    start_time: float
    end_time: float
    speaking: bool | None


@attrs.define(frozen=True, kw_only=True, slots=True)
class PreemptiveGeneration(Output):
    """The host may start generating a reply to ``new_transcript`` now."""

    new_transcript: str
    transcript_confidence: float
    started_speaking_at: float | None


@attrs.define(frozen=True, kw_only=True, slots=True)
class EndOfTurn(Output):
    """The user's turn ended. Answer with ``EndOfTurnAnswered`` (accepted or not).

    The four timing fields are all None or all set (``started ≤ stopped ≤ t``).
    """

    new_transcript: str
    transcript_confidence: float
    skip_reply: bool
    started_speaking_at: float | None
    stopped_speaking_at: float | None
    transcription_delay: float | None
    end_of_turn_delay: float | None


@attrs.define(frozen=True, kw_only=True, slots=True)
class Interruption(Output):
    """The detector judged the overlapping user speech an interruption."""

    ref: Any
    detected_at: float
    overlap_started_at: float | None
    probability: float


@attrs.define(frozen=True, kw_only=True, slots=True)
class UserTurnExceeded(Output):
    """The user's words or speaking time since the agent last spoke reached a limit."""

    transcript: str
    accumulated_transcript: str
    accumulated_word_count: int
    duration: float


@attrs.define(frozen=True, kw_only=True, slots=True)
class ConversationRequested(Output):
    """The engine consulted the conversation history (before an end-of-turn attempt)."""


@attrs.define(frozen=True, kw_only=True, slots=True)
class DetectorSignal(Output):
    """A control signal for the interruption detector stream."""

    signal: Signal
    started_at: float | None = None
    speech_duration: float | None = None
    ended_at: float | None = None


@attrs.define(frozen=True, kw_only=True, slots=True)
class BoundaryExpired(Output):
    """The start backchannel boundary of the current agent speech expired."""


@attrs.define(frozen=True, kw_only=True, slots=True)
class AudioFlushRequested(Output):
    """Push ``frames`` silent frames of ``frame_duration`` seconds to the STT (commit flush)."""

    frames: int
    frame_duration: float


@attrs.define(frozen=True, kw_only=True, slots=True)
class CommitResult(Output):
    """A ``CommitUserTurn`` completed: ``ok`` with the committed transcript, or ``cancelled``."""

    ref: Any
    status: CommitStatus
    transcript: str | None = None


@attrs.define(frozen=True, kw_only=True, slots=True)
class EouModelRequest(Output):
    """Ask the end-of-turn model: answer with ``EouModelAnswered`` (same ``request_id``)."""

    request_id: int
    language: str | None
    transcript: str


@attrs.define(frozen=True, kw_only=True, slots=True)
class InputDropped(Output):
    """An input had nowhere to go (its component is not attached or has failed)."""

    ref: Any
    reason: InputDropReason


@attrs.define(frozen=True, kw_only=True, slots=True)
class TranscriptDropped(Output):
    """A user transcript was discarded under a documented rule (``reason``)."""

    ref: Any
    text: str
    reason: DropReason
