"""The engine's data records: what a turn accumulates, the pending decision, a commit, and
the payloads of internal events.

Control state lives in the chart; these records hold the data that does not change which
inputs are legal. Per-turn data is one :class:`TurnData` replaced whole (never reset field
by field): :meth:`~turnfsm.core.context.Context.new_turn` says in one place what a delivery
and a clear keep.
"""

from __future__ import annotations

from typing import Any, Literal

import attrs

from .._methods import attrs_eq, attrs_hash, attrs_repr
from ..outputs import ModelVerdict, TriggerKind


@attrs.define(slots=True, repr=False, eq=False)
class TurnData:
    """What the current user turn has accumulated; replaced whole when it is delivered or
    cleared (D36: no interim or preflight text survives a delivered turn)."""

    __repr__ = attrs_repr
    __eq__ = attrs_eq
    __hash__ = None  # type: ignore[assignment]  # mutable: unhashable

    transcript: str = ""  # accumulated finals
    interim: str = ""  # the latest interim (or preflight) text
    interim_language: str = ""
    interim_confidence: float = 0.0
    preflight: str = ""  # transcript + the latest preflight (what preemption saw)
    confidences: list[float] = attrs.field(factory=list)
    #: per word of ``transcript``, the recogniser's confidence (None: it gave none)
    word_confidences: list[float | None] = attrs.field(factory=list)
    last_final_time: float | None = None  # finals and preflights (transcription delay)
    last_real_final_time: float | None = None  # finals only (the commit's recency test, D24)
    span_open: bool = False
    user_turn_start: float | None = None
    request_ids: list[str] = attrs.field(factory=list)
    skip_reply_sticky: bool = False  # a commit asked for no reply (D15: until delivery)
    finals: list[tuple[Any, str]] = attrs.field(factory=list)  # (ref, text): drop records
    waits_replaced: int = 0  # decisions of this turn replaced by a new trigger
    waits_cancelled: int = 0  # decisions of this turn cancelled (speech, a mode change)

    def mean_confidence(self) -> float:
        """The mean confidence of this turn's finals (0 without any)."""
        c = self.confidences
        return sum(c) / len(c) if c else 0.0

    def current_transcript(self) -> str:
        """Accumulated finals plus the latest interim."""
        if self.interim:
            return self.transcript + " " + self.interim
        return self.transcript


@attrs.define(slots=True, repr=False, eq=False)
class LimitTracker:
    """The user's words and speaking time since the agent last spoke (user_turn_limit)."""

    __repr__ = attrs_repr
    __eq__ = attrs_eq
    __hash__ = None  # type: ignore[assignment]  # mutable: unhashable

    words: int = 0
    transcript: str = ""
    started_at: float | None = None


@attrs.define(slots=True, repr=False, eq=False)
class Wait:
    """The pending end-of-turn decision: its anchor and what it will report."""

    __repr__ = attrs_repr
    __eq__ = attrs_eq
    __hash__ = None  # type: ignore[assignment]  # mutable: unhashable

    wait_id: int
    anchor: float | None
    last_final: float | None
    turn_start: float | None
    skip_reply: bool
    manual: bool
    trigger: TriggerKind
    started_at: float
    rearmed: int
    cancelled: int
    min_delay: float = 0.0
    onsets: int = 0  # the session's speech onsets reported when this wait started
    # how it went, for its decision record
    delay: float = 0.0
    max_delay: float = 0.0
    delay_reason: str = "min_delay"
    model_asked_at: float | None = None
    model_language: str | None = None
    verdict: ModelVerdict | None = None
    closed_early: bool = False
    builtin: bool = False  # the built-in rules answered (default profile, no host model)
    cue: str | None = None  # what the built-in rules read (their verdict's cue)
    # default profile: the least delay the session's mid-turn pauses ask (0: none), and the
    # longest remembered pause behind it
    pause_floor: float = 0.0
    session_pause: float | None = None


@attrs.define(slots=True, repr=False, eq=False)
class Commit:
    """A commit request (``CommitUserTurn``); how far it got is region commit_result."""

    __repr__ = attrs_repr
    __eq__ = attrs_eq
    __hash__ = None  # type: ignore[assignment]  # mutable: unhashable

    cid: int
    ref: Any
    skip_reply: bool


# -- payloads of internal events ---------------------------------------------------------


@attrs.frozen(repr=False, eq=False)
class Trigger:
    """Payload of ``eou_trigger``: who asks for an end-of-turn decision."""

    __repr__ = attrs_repr
    __eq__ = attrs_eq
    __hash__ = attrs_hash

    kind: TriggerKind = "final_transcript"
    skip_reply: bool = False
    manual: bool = False  # a commit asks: the end-of-turn model does not apply (D18)


@attrs.frozen(kw_only=True, repr=False, eq=False)
class SpeechStart:
    """Payload of ``feedback_started``: the engine's own report that user speech started
    (the host signal ``UserSpeechStarted`` the reference feeds back to itself)."""

    __repr__ = attrs_repr
    __eq__ = attrs_eq
    __hash__ = attrs_hash

    started_at: float | None
    speech_duration: float = 0.0


@attrs.frozen(kw_only=True, repr=False, eq=False)
class SpeechEnd:
    """Payload of ``feedback_ended``: the engine's own report that user speech ended."""

    __repr__ = attrs_repr
    __eq__ = attrs_eq
    __hash__ = attrs_hash

    ended_at: float | None
    interruption: bool | None = None


@attrs.frozen(kw_only=True, repr=False, eq=False)
class FinalSettled:
    """Payload of ``final_settled``: a final was accepted into the turn."""

    __repr__ = attrs_repr
    __eq__ = attrs_eq
    __hash__ = attrs_hash

    changed: bool  # the transcript differs from what the last preflight preempted
    commit_waited: bool  # a commit was waiting for this final (it decides, not the final)


@attrs.frozen(repr=False, eq=False)
class WaitRef:
    """Payload of ``wait_begins`` and ``wait_due_soon``: the wait that raised it (by the
    time the queue reaches it, that wait may have been replaced or cancelled)."""

    __repr__ = attrs_repr
    __eq__ = attrs_eq
    __hash__ = attrs_hash

    wait_id: int


@attrs.frozen(repr=False, eq=False)
class CommitOutcome:
    """Payload of ``commit_resolved`` and ``commit_cancelled``: the result to report."""

    __repr__ = attrs_repr
    __eq__ = attrs_eq
    __hash__ = attrs_hash

    ref: Any
    status: Literal["ok", "cancelled"]
    transcript: str | None = None


PAYLOADS: tuple[type, ...] = (Trigger, SpeechStart, SpeechEnd, FinalSettled, WaitRef,
                              CommitOutcome)
