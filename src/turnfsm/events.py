"""Input events: facts the engine is told, each with its time ``t`` (seconds, session clock).

Events are frozen attrs classes with keyword-only fields. ``ref`` is an opaque reference the
caller chooses (the trace replayer uses the trace line number); outputs caused by an input
carry it back so a host can match them.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any, ClassVar

import attrs

from ._methods import attrs_eq, attrs_hash, attrs_repr

UNSTAMPED = math.nan  # the time of an event made without one: a Session stamps it on arrival
#: The largest magnitude of any number an input carries (seconds for times: about 317
#: years, so Unix-epoch session times fit with microseconds to spare); beyond it an input is
#: refused, so no deadline computed from inputs overflows or loses its microseconds.
MAX_NUMBER = 1e10
#: The largest magnitude of a whole-number field (exact in a float).
MAX_INTEGER = 2**53
#: The longest duration an input may ask the engine to wait (a day, as options).
MAX_WAIT = 86_400.0


#: Field metadata: a trace refuses a negative value of a field of this name (any kind's).
NON_NEGATIVE: Mapping[str, Any] = {"non_negative": True}
#: Field metadata: a trace line that leaves the field out (or gives null) means ``t``.
AT_T: Mapping[str, Any] = {"trace_default": "t"}


def _nn(default: Any) -> Any:
    """A field that is never negative in a trace."""
    return attrs.field(default=default, metadata=NON_NEGATIVE)


def _word_confidences(v: Any) -> tuple[float, ...] | None:
    """A list of word confidences as a tuple (None: the recogniser gave none)."""
    return None if v is None else tuple(float(x) for x in v)


def stamped(t: float) -> bool:
    """Whether an event time was given (not :data:`UNSTAMPED`)."""
    return t == t


_OTHER_FIELDS: dict[type, tuple[str, ...]] = {}


def with_time(e: Any, t: float) -> Any:
    """A copy of event ``e`` at time ``t`` (``attrs.evolve`` without re-running the class's
    checks on values already checked: about half its cost, on every event a Session stamps)."""
    cls = type(e)
    names = _OTHER_FIELDS.get(cls)
    if names is None:
        names = _OTHER_FIELDS[cls] = tuple(a.name for a in attrs.fields(cls) if a.name != "t")
    new = object.__new__(cls)
    put = object.__setattr__
    for name in names:
        put(new, name, getattr(e, name))
    put(new, "t", t)
    return new


@attrs.define(frozen=True, kw_only=True, slots=True, repr=False, eq=False)
class Input:
    """Common base of every input event. ``t`` may be left out when the event goes through a
    :class:`turnfsm.runtime.Session`, which stamps it with session time on arrival; the
    engine itself refuses an event without a time."""

    __repr__ = attrs_repr
    __eq__ = attrs_eq
    __hash__ = attrs_hash

    t: float = UNSTAMPED
    ref: Any = None

    # What the rest of turnfsm derives from the class (declared here once):
    #: the chart event this input raises (None: data for the engine, or a switch);
    chart_event: ClassVar[str | None] = None
    #: a switch's chart events, raised by its ``enabled`` field: (on, off);
    chart_events: ClassVar[tuple[str, str] | None] = None
    #: its kind in a trace (None: no trace line carries it; answers are the replay's own);
    trace_kind: ClassVar[str | None] = None
    #: kinds of one group share their lines' fields (a VAD line accepts every VAD field);
    trace_group: ClassVar[str | None] = None
    #: fields its trace line carries that the event does not (the replay's glue reads
    #: them): name -> (trace type, default); a field's type otherwise follows its annotation
    trace_glue: ClassVar[Mapping[str, tuple[str, Any]]] = {}
    #: fields of the event no trace line carries (the replay sets them itself)
    trace_omits: ClassVar[tuple[str, ...]] = ()


# -- audio and voice activity -------------------------------------------------------------


@attrs.define(frozen=True, kw_only=True, slots=True, repr=False, eq=False)
class AudioPushed(Input):
    """``count`` audio frames of ``duration`` seconds each were pushed at ``t``."""

    trace_kind = "audio"

    duration: float = _nn(0.02)
    count: int = _nn(1)
    sample_rate: int = _nn(16000)
    skip_stt: bool = False


@attrs.define(frozen=True, kw_only=True, slots=True, repr=False, eq=False)
class VadStartOfSpeech(Input):
    """The VAD confirmed speech; it began ``speech_duration + inference_duration`` ago."""

    chart_event = "vad_start"
    trace_kind = "vad.start_of_speech"
    trace_group = "vad"

    speech_duration: float = _nn(0.0)
    inference_duration: float = _nn(0.0)


@attrs.define(frozen=True, kw_only=True, slots=True, repr=False, eq=False)
class VadInferenceDone(Input):
    """One VAD inference window (about 30 ms) was processed. Data only: changes no state."""

    trace_kind = "vad.inference_done"
    trace_group = "vad"

    raw_accumulated_speech: float = _nn(0.0)
    raw_accumulated_silence: float = _nn(0.0)
    speech_duration: float = _nn(0.0)
    probability: float = 0.0
    speaking: bool = False
    inference_duration: float = _nn(0.0)


@attrs.define(frozen=True, kw_only=True, slots=True, repr=False, eq=False)
class VadEndOfSpeech(Input):
    """The VAD declared the end of speech (``silence_duration + inference_duration`` ago)."""

    chart_event = "vad_end"
    trace_kind = "vad.end_of_speech"
    trace_group = "vad"

    silence_duration: float = _nn(0.0)
    inference_duration: float = _nn(0.0)
    speech_duration: float = _nn(0.0)


# -- speech to text -------------------------------------------------------------------------


@attrs.define(frozen=True, kw_only=True, slots=True, repr=False, eq=False)
class SttEvent(Input):
    """Base of STT events (they share the hold/release gate)."""

    request_id: str = ""


@attrs.define(frozen=True, kw_only=True, slots=True, repr=False, eq=False)
class SttTranscript(SttEvent):
    """Base of transcript events. ``start_time``/``end_time`` are STT-stream offsets."""

    text: str
    language: str = ""
    confidence: float = 0.0
    start_time: float = 0.0
    end_time: float = 0.0
    #: per word of ``text`` (split at white space), the recogniser's confidence in it (0 to
    #: 1), when it gives them (Whisper's word probabilities); None: it gives none
    word_confidences: tuple[float, ...] | None = attrs.field(
        default=None, converter=_word_confidences,
        metadata={"trace_type": "numbers-or-null"})


@attrs.define(frozen=True, kw_only=True, slots=True, repr=False, eq=False)
class SttInterim(SttTranscript):
    """A non-final hypothesis."""

    chart_event = "stt_interim"
    trace_kind = "stt.interim"


@attrs.define(frozen=True, kw_only=True, slots=True, repr=False, eq=False)
class SttPreflight(SttTranscript):
    """A stable-enough hypothesis usable for preemptive generation."""

    chart_event = "stt_preflight"
    trace_kind = "stt.preflight"


@attrs.define(frozen=True, kw_only=True, slots=True, repr=False, eq=False)
class SttFinal(SttTranscript):
    """A final transcript segment."""

    chart_event = "stt_final"
    trace_kind = "stt.final"


@attrs.define(frozen=True, kw_only=True, slots=True, repr=False, eq=False)
class SttStartOfSpeech(SttEvent):
    """The STT detected speech onset (``speech_start_time`` when the provider reports it)."""

    chart_event = "stt_start"
    trace_kind = "stt.start_of_speech"

    speech_start_time: float | None = None


@attrs.define(frozen=True, kw_only=True, slots=True, repr=False, eq=False)
class SttEndOfSpeech(SttEvent):
    """The STT detected the end of speech."""

    chart_event = "stt_end"
    trace_kind = "stt.end_of_speech"


@attrs.define(frozen=True, kw_only=True, slots=True, repr=False, eq=False)
class SttUsage(SttEvent):
    """Usage report: the turn notes its request id (dropped with no STT attached)."""

    chart_event = "stt_usage"
    trace_kind = "stt.usage"

    audio_duration: float = _nn(0.0)


# -- adaptive interruption detector ---------------------------------------------------------


@attrs.define(frozen=True, kw_only=True, slots=True, repr=False, eq=False)
class OverlapVerdict(Input):
    """The interruption detector's verdict on user speech overlapping agent speech."""

    chart_event = "overlap"
    trace_kind = "overlap"

    is_interruption: bool
    overlap_started_at: float | None = None
    detected_at: float | None = attrs.field(default=None, metadata=AT_T)
    created_at: float | None = attrs.field(default=None, metadata=AT_T)
    probability: float = 0.0
    total_duration: float = _nn(0.0)
    prediction_duration: float = _nn(0.0)
    detection_delay: float = _nn(0.0)
    num_requests: int = _nn(0)


@attrs.define(frozen=True, kw_only=True, slots=True, repr=False, eq=False)
class DetectorFailed(Input):
    """The interruption detector's stream failed for good (no more verdicts)."""

    chart_event = "detector_failed"
    trace_kind = "detector_error"
    #: whether the host then detaches the detector (default: the trace's glue setting)
    trace_glue = {"fallback": ("bool", None)}


# -- agent speech and host signals -----------------------------------------------------------


@attrs.define(frozen=True, kw_only=True, slots=True, repr=False, eq=False)
class AgentSpeechStarted(Input):
    """The agent's audio started playing at ``started_at`` (default ``t``). ``text``: what
    the agent says, when the host knows it (the reply given to text-to-speech); the turn
    rules read it for what the agent asked ("Please say your four digit PIN": four digits
    make a whole answer). Optional; not in the reference's trace format."""

    chart_event = "agent_start"
    trace_kind = "agent.speech_started"

    started_at: float | None = None
    text: str | None = None


@attrs.define(frozen=True, kw_only=True, slots=True, repr=False, eq=False)
class AgentSpeechEnded(Input):
    """The agent stopped speaking; held user speech before the ignore bound may be dropped."""

    chart_event = "agent_end"
    trace_kind = "agent.speech_ended"

    ignore_user_transcript_until: float | None = None


@attrs.define(frozen=True, kw_only=True, slots=True, repr=False, eq=False)
class UserSpeechStarted(Input):
    """The host says user speech started (realtime server VAD, audio-activity interruption)."""

    chart_event = "user_started"
    trace_kind = "signal.user_speech_started"

    started_at: float | None = None
    speech_duration: float = _nn(0.0)


@attrs.define(frozen=True, kw_only=True, slots=True, repr=False, eq=False)
class UserSpeechEnded(Input):
    """The host says user speech ended; ``interruption`` is the detector's last verdict if known."""

    chart_event = "user_ended"
    trace_kind = "signal.user_speech_ended"

    ended_at: float | None = None
    interruption: bool | None = None


@attrs.define(frozen=True, kw_only=True, slots=True, repr=False, eq=False)
class OverlapSpeechEnded(Input):
    """The host says an overlap of user and agent speech ended."""

    chart_event = "overlap_ended"
    trace_kind = "signal.overlap_speech_ended"

    ended_at: float | None = None


# -- turn control and configuration ----------------------------------------------------------


@attrs.define(frozen=True, kw_only=True, slots=True, repr=False, eq=False)
class CommitUserTurn(Input):
    """End the user turn now (push-to-talk). The result arrives as a ``CommitResult`` output."""

    chart_event = "commit"
    trace_kind = "commit_user_turn"

    audio_detached: bool = False
    transcript_timeout: float = 2.0
    stt_flush_duration: float = _nn(2.0)
    skip_reply: bool = False


@attrs.define(frozen=True, kw_only=True, slots=True, repr=False, eq=False)
class ClearUserTurn(Input):
    """Discard the current user turn and restart the STT stream."""

    chart_event = "clear"
    trace_kind = "clear_user_turn"


@attrs.define(frozen=True, kw_only=True, slots=True, repr=False, eq=False)
class UpdateOptions(Input):
    """Change options mid-session. ``None`` fields are left as they are.

    ``endpointing`` is a partial mapping merged over the current settings (fresh statistics);
    ``turn_detection`` is set when ``set_turn_detection`` is true (it may be set to None);
    ``user_turn_limit`` replaces the limits (missing keys mean no limit).
    """

    trace_kind = "update_options"
    #: a trace line sets ``turn_detection`` by naming it (null included)
    trace_omits = ("set_turn_detection",)

    endpointing: dict[str, Any] | None = None
    set_turn_detection: bool = False
    turn_detection: str | None = attrs.field(default=None, metadata={"trace_type": "any"})
    user_turn_limit: dict[str, Any] | None = None


@attrs.define(frozen=True, kw_only=True, slots=True, repr=False, eq=False)
class SetVad(Input):
    """Attach (or restart) / detach the VAD."""

    chart_events = ("vad_attach", "vad_detach")
    trace_kind = "set_vad"

    enabled: bool


@attrs.define(frozen=True, kw_only=True, slots=True, repr=False, eq=False)
class SetStt(Input):
    """Attach (or restart) / detach the STT."""

    chart_events = ("stt_attach", "stt_detach")
    trace_kind = "set_stt"

    enabled: bool


@attrs.define(frozen=True, kw_only=True, slots=True, repr=False, eq=False)
class SetInterruptionDetection(Input):
    """Attach (or restart) / detach the adaptive interruption detector."""

    chart_events = ("detector_attach", "detector_detach")
    trace_kind = "set_interruption_detection"

    enabled: bool


# -- answers to the engine's requests --------------------------------------------------------


@attrs.define(frozen=True, kw_only=True, slots=True, repr=False, eq=False)
class EouModelAnswered(Input):
    """The end-of-turn model's answer to an ``EouModelRequest`` (same ``request_id``)."""

    chart_event = "model_answered"

    request_id: int
    supported: bool = True
    probability: float | None = None
    threshold: float | None = None
    failed: bool = False


@attrs.define(frozen=True, kw_only=True, slots=True, repr=False, eq=False)
class EndOfTurnAnswered(Input):
    """The host's answer to an ``EndOfTurn``: accepted, or refused (keep accumulating)."""

    chart_event = "turn_answered"

    accepted: bool = True


@attrs.define(frozen=True, kw_only=True, slots=True, repr=False, eq=False)
class Close(Input):
    """Close the session: pending decisions are settled, then nothing more is emitted."""

    chart_event = "close"


#: Fields with a narrower range than any number: (class, field) -> (lowest, highest).
FIELD_RANGES: dict[tuple[type, str], tuple[float, float]] = {
    (EouModelAnswered, "probability"): (0.0, 1.0),
    (EouModelAnswered, "threshold"): (0.0, 1.0),
    (CommitUserTurn, "transcript_timeout"): (-MAX_WAIT, MAX_WAIT),  # below 0: at once
    (CommitUserTurn, "stt_flush_duration"): (-MAX_WAIT, MAX_WAIT),
}


def input_classes() -> tuple[type[Input], ...]:
    """Every concrete input event class, in the order this module declares them (from its
    namespace, not ``Input.__subclasses__()``: attrs replaces each slotted class, and the
    replaced originals linger among the subclasses until collected)."""
    bases = (Input, SttEvent, SttTranscript)
    return tuple(c for c in globals().values() if isinstance(c, type) and issubclass(c, Input)
                 and c not in bases)
