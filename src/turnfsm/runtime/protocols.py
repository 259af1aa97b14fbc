"""What a Session talks to: the end-of-turn model, the interruption detector, the STT, and
the host's hooks. Every method may be a plain function or a coroutine function."""

from __future__ import annotations

from collections.abc import Awaitable
from typing import Protocol, runtime_checkable

import attrs

from .. import outputs as out


@attrs.frozen(kw_only=True)
class TurnContext:
    """What the end-of-turn model is asked about: the user's turn so far, and what the agent
    said before it when the host told (``agent_text``), and the recogniser's confidence in
    each word of the transcript (``word_confidences``: None where it gave none)."""

    transcript: str
    language: str | None
    request_id: int
    agent_text: str | None = None
    word_confidences: tuple[float | None, ...] = ()


@runtime_checkable
class EouModel(Protocol):
    """An end-of-turn model, shaped like the turn detectors voice frameworks use: a
    probability that the user finished, and per language the threshold below which the turn
    is unlikely over (then the engine waits ``max_delay``)."""

    async def supports_language(self, language: str | None) -> bool:
        """Whether the model judges this language."""

    async def unlikely_threshold(self, language: str | None) -> float | None:
        """The probability below which a turn is unlikely over (None: never)."""

    async def predict_end_of_turn(self, context: TurnContext, *,
                                  timeout: float | None = None) -> float:
        """The probability that the user finished their turn."""


class InterruptionDetector(Protocol):
    """Receives the engine's control signals for the adaptive interruption detector."""

    def signal(self, signal: out.DetectorSignal) -> Awaitable[None] | None:
        """Agent speech started/ended, overlap started/ended (in order)."""


class SttControl(Protocol):
    """What the session asks of the STT: a flush with silent frames (commit, audio detached)."""

    def flush(self, frames: int, frame_duration: float) -> Awaitable[None] | None:
        """Push ``frames`` silent frames of ``frame_duration`` seconds to the STT."""


class Hooks(Protocol):
    """The host's hooks, one optional method per output kind (any subset; plain or async).

    ``on_end_of_turn`` returns whether the host takes the turn (True: the turn is delivered;
    False: it goes on accumulating); a hook that raises counts as False, so nothing is lost.
    Requests (model, detector, STT flush) are performed by the session; their outputs reach
    ``on_output`` and the output iterator like every other output.
    """

    def on_end_of_turn(self, o: out.EndOfTurn) -> bool | Awaitable[bool]: ...
    def on_preemptive_generation(self, o: out.PreemptiveGeneration) -> object: ...
    def on_interruption(self, o: out.Interruption) -> object: ...
    def on_start_of_speech(self, o: out.StartOfSpeech) -> object: ...
    def on_end_of_speech(self, o: out.EndOfSpeech) -> object: ...
    def on_transcript(self, o: out.Transcript) -> object: ...
    def on_transcript_dropped(self, o: out.TranscriptDropped) -> object: ...
    def on_user_turn_exceeded(self, o: out.UserTurnExceeded) -> object: ...
    def on_commit_result(self, o: out.CommitResult) -> object: ...
    def on_input_dropped(self, o: out.InputDropped) -> object: ...
    def on_boundary_expired(self, o: out.BoundaryExpired) -> object: ...
    def on_output(self, o: out.Output) -> object: ...
    def on_error(self, error: BaseException) -> object: ...


HOOK_NAMES: dict[type, str] = {
    out.EndOfTurn: "on_end_of_turn",
    out.PreemptiveGeneration: "on_preemptive_generation",
    out.Interruption: "on_interruption",
    out.StartOfSpeech: "on_start_of_speech",
    out.EndOfSpeech: "on_end_of_speech",
    out.Transcript: "on_transcript",
    out.TranscriptDropped: "on_transcript_dropped",
    out.UserTurnExceeded: "on_user_turn_exceeded",
    out.CommitResult: "on_commit_result",
    out.InputDropped: "on_input_dropped",
    out.BoundaryExpired: "on_boundary_expired",
}
