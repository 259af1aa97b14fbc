"""Outputs: decisions, observations and requests the engine emits, in order.

Every output carries ``t``, the session time at which it was emitted. Outputs that answer
to one input carry that input's ``ref``.
"""

from __future__ import annotations

from typing import Any, Literal

import attrs

from ._methods import attrs_eq, attrs_hash, attrs_repr

TranscriptType = Literal["interim", "preflight", "final"]
CommitStatus = Literal["ok", "cancelled"]
DropReason = Literal["clear_user_turn", "backchannel_trim", "stream_reset", "closed",
                     "duplicate", "backchannel"]
InputDropReason = Literal["vad_inactive", "stt_inactive", "detector_inactive"]
Signal = Literal["agent_speech_started", "agent_speech_ended", "overlap_speech_started",
                 "overlap_speech_ended"]
TriggerKind = Literal["vad_end_of_speech", "final_transcript", "stt_end_of_speech", "commit",
                      "final_overdue"]
DelayReason = Literal["min_delay", "max_delay", "session_pauses"]


# -- decision records: why the engine decided what it did ---------------------------------


@attrs.define(frozen=True, kw_only=True, slots=True, repr=False, eq=False)
class ModelVerdict:
    """What the end-of-turn model said for one decision."""

    __repr__ = attrs_repr
    __eq__ = attrs_eq
    __hash__ = attrs_hash

    language: str | None
    supported: bool
    probability: float | None
    threshold: float | None
    failed: bool
    latency: float  # seconds from the request to the answer (session time)
    model: Literal["host", "builtin"] = "host"  # the host's model, or the built-in rules
    cue: str | None = None  # the built-in rules: what they read ("an address still open")


@attrs.define(frozen=True, kw_only=True, slots=True, repr=False, eq=False)
class DecisionRecord:
    """Why an end of turn was delivered when it was ("why did this turn end?").

    ``trigger`` asked for the decision at ``wait_started_at``; the wait ran ``delay`` seconds
    from ``anchor`` (the last speech heard, or the trigger's time without one), chosen as
    ``delay_reason`` (``max_delay`` only when the model judged the turn unlikely over:
    probability below its threshold); ``model`` is None when the model was not asked (no
    model configured, no transcript, or a commit, D18). ``rearmed`` counts earlier decisions
    of this turn replaced by a new trigger, ``cancelled`` those the user's speech cancelled.
    ``closed_early``: the session closed and the wait ended at once (R4).
    ``delay_reason`` is ``session_pauses`` (default profile) when the session's own mid-turn
    pauses lengthened the wait: ``session_pause`` is the longest remembered one (the delay is
    it plus ``pause_margin``, at most ``max_delay``).
    """

    __repr__ = attrs_repr
    __eq__ = attrs_eq
    __hash__ = attrs_hash

    trigger: TriggerKind
    anchor: float | None
    wait_started_at: float
    delay: float
    delay_reason: DelayReason
    model: ModelVerdict | None
    endpointing_mode: str
    min_delay: float  # in force when the wait started (dynamic endpointing learns it)
    max_delay: float
    rearmed: int
    cancelled: int
    closed_early: bool
    skip_reply: bool
    options: Any  # the EngineOptions in force
    session_pause: float | None = None  # the mid-turn pause that lengthened the wait

    def why(self) -> str:
        """The decision as one sentence."""
        what = {"vad_end_of_speech": "the VAD end of speech", "final_transcript": "a final "
                "transcript", "stt_end_of_speech": "the STT end of speech",
                "commit": "a commit",
                "final_overdue": "the wait for the last speech's final transcript (it did "
                                 "not come in transcript_timeout)"}[self.trigger]
        if self.closed_early:
            return f"{what} asked at {self.wait_started_at:g} s; the session closed, so at once"
        if self.model is None:
            basis = "no model consulted"
        elif self.model.failed:
            basis = "the model failed (min_delay)"
        elif not self.model.supported and self.model.model == "builtin":
            basis = (f"the built-in rules have no word lists for language "
                     f"{self.model.language!r}")
        elif not self.model.supported:
            basis = f"the model does not support language {self.model.language!r}"
        elif self.model.probability is None or self.model.threshold is None:
            basis = f"model p={self.model.probability} with threshold {self.model.threshold}"
        else:
            cmp = "<" if self.delay_reason == "max_delay" else ">="
            who = "built-in rules" if self.model.model == "builtin" else "model"
            basis = (f"{who} p={self.model.probability:g} {cmp} threshold "
                     f"{self.model.threshold!r} ({self.model.language or 'no language'})")
            if self.model.cue:
                basis = f"{basis}, read: {self.model.cue}"
        if self.delay_reason == "session_pauses":
            basis = (f"{basis}; lengthened: the user paused {self.session_pause:g} s inside a "
                     f"turn earlier in this session")
        if self.anchor is None:
            return (f"{what} asked at {self.wait_started_at:g} s; waited {self.delay:g} s "
                    f"({self.delay_reason}: {basis})")
        due = self.anchor + self.delay
        when = (f"due at {due:g} s" if due > self.wait_started_at + 1e-9
                else "already past, so at once")
        return (f"{what} asked at {self.wait_started_at:g} s; {self.delay:g} s "
                f"({self.delay_reason}: {basis}) after the last speech at {self.anchor:g} s: "
                f"{when}")


@attrs.define(frozen=True, kw_only=True, slots=True, repr=False, eq=False)
class InterruptionRecord:
    """What the detector's interruption verdict was based on."""

    __repr__ = attrs_repr
    __eq__ = attrs_eq
    __hash__ = attrs_hash

    probability: float
    overlap_started_at: float | None
    detected_at: float
    detection_delay: float
    total_duration: float
    num_requests: int
    agent_started_at: float | None
    in_backchannel_boundary: bool  # the agent started speaking less than the boundary ago
    # the detector's verdict, or (default profile, no detector) the utterance's words: more
    # than a backchannel while the agent spoke
    source: Literal["detector", "words"] = "detector"
    words: int | None = None  # how many words the utterance had (source "words")


@attrs.define(frozen=True, kw_only=True, slots=True, repr=False, eq=False)
class DropRecord:
    """Which rule discarded a transcript, and the times it compared."""

    __repr__ = attrs_repr
    __eq__ = attrs_eq
    __hash__ = attrs_hash

    rule: str  # the spec id of the rule or defect fix
    detail: str
    ended_at: float | None = None  # when the transcript's speech ended (backchannel trim)
    window: float | None = None  # the ignore window it was compared with


@attrs.define(frozen=True, kw_only=True, slots=True, repr=False, eq=False)
class Output:
    """Common base of every output."""

    __repr__ = attrs_repr
    __eq__ = attrs_eq
    __hash__ = attrs_hash

    t: float


@attrs.define(frozen=True, kw_only=True, slots=True, repr=False, eq=False)
class StartOfSpeech(Output):
    """The user started speaking (``ref`` of the VAD event, or None when the STT said so)."""

    ref: Any
    speech_start_time: float


@attrs.define(frozen=True, kw_only=True, slots=True, repr=False, eq=False)
class VadInference(Output):
    """A VAD inference window was forwarded to the host."""

    ref: Any


@attrs.define(frozen=True, kw_only=True, slots=True, repr=False, eq=False)
class EndOfSpeech(Output):
    """The user stopped speaking (``ref`` None when not caused by a VAD event)."""

    ref: Any


@attrs.define(frozen=True, kw_only=True, slots=True, repr=False, eq=False)
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


@attrs.define(frozen=True, kw_only=True, slots=True, repr=False, eq=False)
class PreemptiveGeneration(Output):
    """The host may start generating a reply to ``new_transcript`` now."""

    new_transcript: str
    transcript_confidence: float
    started_speaking_at: float | None


@attrs.define(frozen=True, kw_only=True, slots=True, repr=False, eq=False)
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
    decision: DecisionRecord | None = None
    #: the STT request ids of the turn's transcripts and usage reports (in order; telemetry's
    #: ``turnfsm.stt_request_ids``); not in the conformance output format
    stt_request_ids: tuple[str, ...] = ()


@attrs.define(frozen=True, kw_only=True, slots=True, repr=False, eq=False)
class Interruption(Output):
    """The detector judged the overlapping user speech an interruption."""

    ref: Any
    detected_at: float
    overlap_started_at: float | None
    probability: float
    record: InterruptionRecord | None = None


@attrs.define(frozen=True, kw_only=True, slots=True, repr=False, eq=False)
class UserTurnExceeded(Output):
    """The user's words or speaking time since the agent last spoke reached a limit."""

    transcript: str
    accumulated_transcript: str
    accumulated_word_count: int
    duration: float


@attrs.define(frozen=True, kw_only=True, slots=True, repr=False, eq=False)
class ConversationRequested(Output):
    """The engine consulted the conversation history (before an end-of-turn attempt)."""


@attrs.define(frozen=True, kw_only=True, slots=True, repr=False, eq=False)
class DetectorSignal(Output):
    """A control signal for the interruption detector stream."""

    signal: Signal
    started_at: float | None = None
    speech_duration: float | None = None
    ended_at: float | None = None


@attrs.define(frozen=True, kw_only=True, slots=True, repr=False, eq=False)
class BoundaryExpired(Output):
    """The start backchannel boundary of the current agent speech expired."""


@attrs.define(frozen=True, kw_only=True, slots=True, repr=False, eq=False)
class AudioFlushRequested(Output):
    """Push ``frames`` silent frames of ``frame_duration`` seconds to the STT (commit flush)."""

    frames: int
    frame_duration: float


@attrs.define(frozen=True, kw_only=True, slots=True, repr=False, eq=False)
class CommitResult(Output):
    """A ``CommitUserTurn`` completed: ``ok`` with the committed transcript, or ``cancelled``."""

    ref: Any
    status: CommitStatus
    transcript: str | None = None


@attrs.define(frozen=True, kw_only=True, slots=True, repr=False, eq=False)
class EouModelRequest(Output):
    """Ask the end-of-turn model: answer with ``EouModelAnswered`` (same ``request_id``).
    ``agent_text``: what the agent said last, when the host told (a model that reads the
    conversation, as LiveKit's turn detector reads its chat context, can use it);
    ``word_confidences``: per word of ``transcript``, the recogniser's confidence (None
    where it gave none)."""

    request_id: int
    language: str | None
    transcript: str
    agent_text: str | None = None
    word_confidences: tuple[float | None, ...] = ()


@attrs.define(frozen=True, kw_only=True, slots=True, repr=False, eq=False)
class UserTurnOpened(Output):
    """The engine's user turn opened (its first sign: a start or end of speech, a wait,
    words after a dropped backchannel, speech going on through a clear); ``started_at``: the
    time that sign gives the turn (telemetry's ``user_turn`` span starts there, I7 aside).
    Not in the conformance output format."""

    started_at: float


@attrs.define(frozen=True, kw_only=True, slots=True, repr=False, eq=False)
class UserTurnDropped(Output):
    """The open user turn was no turn: a backchannel the default profile dropped (its
    ``TranscriptDropped``, reason ``backchannel``, comes first); no ``EndOfTurn`` comes of
    it. Not in the conformance output format."""

    reason: Literal["backchannel"] = "backchannel"


@attrs.define(frozen=True, kw_only=True, slots=True, repr=False, eq=False)
class WaitCancelled(Output):
    """The pending end-of-turn wait ``wait_id`` (an ``EouModelRequest``'s ``request_id`` when
    the model was asked) was cancelled: new speech, a clear, or a decision dropped by a mode
    change. No ``EndOfTurn`` comes of it. Not in the conformance output format: shells
    (telemetry's ``eou_wait`` span) read it instead of the engine's states."""

    wait_id: int


@attrs.define(frozen=True, kw_only=True, slots=True, repr=False, eq=False)
class InputDropped(Output):
    """An input had nowhere to go (its component is not attached or has failed)."""

    ref: Any
    reason: InputDropReason


@attrs.define(frozen=True, kw_only=True, slots=True, repr=False, eq=False)
class TranscriptHeld(Output):
    """A user transcript is held by the gate (the agent speaks, or an utterance begun over
    it is being judged): it is reported later as a ``Transcript`` with the same ``ref``
    when released, or as a ``TranscriptDropped`` when discarded (an interim may instead be
    superseded by a later transcript of the same speech)."""

    ref: Any
    type: TranscriptType
    text: str


@attrs.define(frozen=True, kw_only=True, slots=True, repr=False, eq=False)
class TranscriptDropped(Output):
    """A user transcript was discarded under a documented rule (``reason``)."""

    ref: Any
    text: str
    reason: DropReason
    record: DropRecord | None = None
