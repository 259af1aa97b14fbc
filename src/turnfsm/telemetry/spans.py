"""OpenTelemetry spans of the user turn, built from the engine's step records.

Theory of operation
===================

:class:`SpanObserver` is a step observer (:meth:`turnfsm.Engine.add_observer`): it reads one
:class:`~turnfsm.core.StepRecord` per step and never calls the engine; it reads the step's
inputs, outputs and armed timers, never a region's state (the engine reports what it needs
as outputs). It keeps a mirror of the three things the spans describe, each a span while it
lasts:

* ``user_turn``: the user's turn, as the engine tracks it (R51, R52). It opens at the first
  sign of the turn: a start of speech (at its onset), an end of speech, an end-of-turn wait
  starting, or a clear while the user still speaks (the engine's ``UserTurnOpened``); a
  dropped backchannel's turn ends bare (``UserTurnDropped``); otherwise it ends when the
  host *accepts* the turn's ``EndOfTurn`` (with the delivery's transcript, metrics and
  decision record as attributes), bare when the turn is cleared, and at close (D30 fixed).
  A refused delivery keeps it open: the turn goes on. At most one is open at a time; a turn
  whose speech onset lies before the previous turn's end starts at that end (as its
  ``turnfsm.started_speaking_at`` attribute does, I7).
* ``eou_wait``: one end-of-turn wait (decision), child of ``user_turn``: from the wait's
  start to its delivery (``outcome`` ``delivered``, or ``closed`` when the session's close
  cut it short), its cancellation by new speech, a clear or a mode change (``cancelled``:
  the engine's ``WaitCancelled``), its replacement by a later trigger (``replaced``), or the
  close (``closed``). Waits are
  recognised by their model request (``EouModelRequest.request_id``), their deadline timer
  (``Timer.key``; both are the engine's wait id) or their ``EndOfTurn``
  (``DecisionRecord.wait_started_at``).
* ``eou_detection``: one question to the end-of-turn model, child of ``user_turn`` (R53):
  from the ``EouModelRequest`` to its ``EouModelAnswered`` (or the wait's end when the answer
  never came). The delay the answer chose is known for certain only from the delivery's
  decision record, so an answered span is ended (at the answer's time) when its wait ends.

Times are session times (the record's ``t``, an output's ``t``, a speech onset, a decision's
``wait_started_at``) turned into nanoseconds as ``time_origin_ns + round(t * 1e9)``; the
wall clock is never read, and spans are started with ``start_time`` and ended with
``end_time``, never made current. Steps that touch nothing tracked cost a few type checks.

Inputs released in an answer's step (queued while the ``EndOfTurn`` awaited its answer) run
at one instant; the record keeps their outputs in order but not which input caused which, so
a clear among them ends the turn's spans where it dropped the turn's finals
(``TranscriptDropped``, reason ``clear_user_turn``), or, having dropped none, before the
step's outputs; and a wait started and cancelled among them leaves no trace in the record.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Final

from opentelemetry import trace
from opentelemetry.context import Context
from opentelemetry.trace import Span, TracerProvider
from opentelemetry.util.types import AttributeValue

from .. import events as ev
from .. import outputs as out
from ..core import StepRecord, TimerKind

# -- span names (those LiveKit Agents emits, so dashboards built on them keep working) -----

USER_TURN: Final = "user_turn"
DROPPED: Final = "turnfsm.dropped"  # a user_turn span that was no turn (a backchannel)
EOU_WAIT: Final = "eou_wait"
EOU_DETECTION: Final = "eou_detection"

# -- attributes ----------------------------------------------------------------------------

CONVERSATION_ID: Final = "gen_ai.conversation.id"  # every span, when a conversation id is given
# user_turn, at an accepted delivery (the EndOfTurn and its DecisionRecord)
TRANSCRIPT: Final = "turnfsm.transcript"
TRANSCRIPT_CONFIDENCE: Final = "turnfsm.transcript_confidence"
TRANSCRIPTION_DELAY: Final = "turnfsm.transcription_delay"
END_OF_TURN_DELAY: Final = "turnfsm.end_of_turn_delay"
STARTED_SPEAKING_AT: Final = "turnfsm.started_speaking_at"
STOPPED_SPEAKING_AT: Final = "turnfsm.stopped_speaking_at"
SKIP_REPLY: Final = "turnfsm.skip_reply"
STT_REQUEST_IDS: Final = "turnfsm.stt_request_ids"
ANCHOR: Final = "turnfsm.anchor"
WAIT_STARTED_AT: Final = "turnfsm.wait_started_at"
ENDPOINTING_MODE: Final = "turnfsm.endpointing_mode"
MIN_DELAY: Final = "turnfsm.min_delay"
MAX_DELAY: Final = "turnfsm.max_delay"
# user_turn and eou_wait (from the decision record)
TRIGGER: Final = "turnfsm.trigger"
DELAY: Final = "turnfsm.delay"  # also on eou_detection: the delay the model's answer chose
DELAY_REASON: Final = "turnfsm.delay_reason"
REARMED: Final = "turnfsm.rearmed"
CANCELLED: Final = "turnfsm.cancelled"
CLOSED_EARLY: Final = "turnfsm.closed_early"
# eou_wait
OUTCOME: Final = "turnfsm.outcome"
WAIT_ID: Final = "turnfsm.wait_id"
# eou_detection, and user_turn (from the decision's ModelVerdict)
MODEL_REQUEST_ID: Final = "turnfsm.model.request_id"
MODEL_LANGUAGE: Final = "turnfsm.model.language"
MODEL_SUPPORTED: Final = "turnfsm.model.supported"
MODEL_FAILED: Final = "turnfsm.model.failed"
MODEL_PROBABILITY: Final = "turnfsm.model.probability"
MODEL_THRESHOLD: Final = "turnfsm.model.threshold"
MODEL_LATENCY: Final = "turnfsm.model.latency"

Attributes = dict[str, AttributeValue]

# the inputs the observer reads (everything else reaches it through outputs)
_INPUTS: Final = frozenset({ev.EndOfTurnAnswered, ev.EouModelAnswered, ev.ClearUserTurn,
                            ev.Close})
_EOU_DEADLINE: Final = TimerKind.EOU_DEADLINE


class _Wait:
    """An open ``eou_wait`` span and what identifies its wait."""

    __slots__ = ("key", "span", "start")

    def __init__(self, span: Span, key: int | None, start: float) -> None:
        self.span = span
        self.key = key  # the engine's wait id, when known
        self.start = start


class _Detection:
    """An ``eou_detection`` span not yet ended (answered: ends at ``answered_at``)."""

    __slots__ = ("answered_at", "request_id", "span")

    def __init__(self, span: Span, request_id: int) -> None:
        self.span = span
        self.request_id = request_id
        self.answered_at: float | None = None


def decision_attributes(d: out.DecisionRecord) -> Attributes:
    """The span attributes of a decision record (unknown values are left out, D21)."""
    a: Attributes = {
        TRIGGER: d.trigger, WAIT_STARTED_AT: d.wait_started_at, DELAY: d.delay,
        DELAY_REASON: d.delay_reason, ENDPOINTING_MODE: d.endpointing_mode,
        MIN_DELAY: d.min_delay, MAX_DELAY: d.max_delay, REARMED: d.rearmed,
        CANCELLED: d.cancelled, CLOSED_EARLY: d.closed_early,
    }
    if d.anchor is not None:
        a[ANCHOR] = d.anchor
    m = d.model
    if m is not None:
        a[MODEL_SUPPORTED] = m.supported
        a[MODEL_FAILED] = m.failed
        a[MODEL_LATENCY] = m.latency
        if m.language is not None:
            a[MODEL_LANGUAGE] = m.language
        if m.probability is not None and not m.failed:
            a[MODEL_PROBABILITY] = m.probability
        if m.threshold is not None:
            a[MODEL_THRESHOLD] = m.threshold
    return a


def end_of_turn_attributes(eot: out.EndOfTurn) -> Attributes:
    """The ``user_turn`` attributes of a delivery: transcript, metrics (when known) and
    the decision record."""
    a: Attributes = {TRANSCRIPT: eot.new_transcript,
                     TRANSCRIPT_CONFIDENCE: eot.transcript_confidence,
                     SKIP_REPLY: eot.skip_reply}
    for key, value in ((TRANSCRIPTION_DELAY, eot.transcription_delay),
                       (END_OF_TURN_DELAY, eot.end_of_turn_delay),
                       (STARTED_SPEAKING_AT, eot.started_speaking_at),
                       (STOPPED_SPEAKING_AT, eot.stopped_speaking_at)):
        if value is not None:
            a[key] = value
    if eot.decision is not None:
        a.update(decision_attributes(eot.decision))
    return a


class SpanObserver:
    """Builds ``user_turn``, ``eou_wait`` and ``eou_detection`` spans from an engine's step
    records. Attach one per engine: ``engine.add_observer(SpanObserver(provider))``.

    ``tracer_provider``: where spans go (None: the global provider). ``conversation_id`` is
    set as ``gen_ai.conversation.id`` on every span, with ``attributes`` (constant attributes
    such as a participant id). ``time_origin_ns``: the epoch time, in nanoseconds, of session
    time 0 (spans carry ``time_origin_ns + round(t * 1e9)``). ``parent_context``: the context
    ``user_turn`` spans are children of (a session span's, say); by default each is a root.
    """

    def __init__(self, tracer_provider: TracerProvider | None = None, *,
                 conversation_id: str | None = None, time_origin_ns: int = 0,
                 attributes: Mapping[str, AttributeValue] | None = None,
                 parent_context: Context | None = None) -> None:
        provider = tracer_provider if tracer_provider is not None else trace.get_tracer_provider()
        self._tracer = provider.get_tracer("turnfsm.telemetry")
        common: Attributes = dict(attributes or {})
        if conversation_id is not None:
            common[CONVERSATION_ID] = conversation_id
        self._common = common
        self._origin = int(time_origin_ns)
        self._root = parent_context if parent_context is not None else Context()
        self._turn: Span | None = None
        self._turn_ctx = self._root  # the context children of the open user_turn start in
        self._turn_start = 0.0
        self._turn_floor = float("-inf")  # when the last user_turn ended
        # a backchannel was dropped (default profile) and no speech started since: its
        # segment's end opens no turn, a final after it does
        self._after_backchannel = False
        self._delivered: out.EndOfTurn | None = None  # delivered; the host's answer awaited
        self._wait: _Wait | None = None
        self._detection: _Detection | None = None
        self._closed = False

    # -- queries -------------------------------------------------------------------------------

    @property
    def closed(self) -> bool:
        """The session closed (or :meth:`end_open_spans` ran): later steps are ignored."""
        return self._closed

    @property
    def user_turn_open(self) -> bool:
        """A ``user_turn`` span is open."""
        return self._turn is not None

    @property
    def wait_open(self) -> bool:
        """An ``eou_wait`` span is open."""
        return self._wait is not None

    @property
    def detection_pending(self) -> bool:
        """An ``eou_detection`` span waits for the model's answer."""
        d = self._detection
        return d is not None and d.answered_at is None

    # -- the observer ----------------------------------------------------------------------

    def __call__(self, r: StepRecord) -> None:
        """Read one step record."""
        if self._closed:
            return
        closing = False
        e = r.input
        if e is not None and type(e) in _INPUTS:
            closing = self._input(e, r, False)[0]
        outs = r.outputs
        if r.released and not closing:
            closing, cleared = self._released(r)
            if cleared:  # at its drops of the turn's finals if it made any, else first
                at = next((i for i, o in enumerate(outs) if isinstance(o, out.TranscriptDropped)
                           and o.reason == "clear_user_turn"), 0)
                self._outputs(outs[:at], r)
                self._cleared(r)
                outs = outs[at:]
        self._outputs(outs, r)
        for timer in r.armed:
            if timer.kind is _EOU_DEADLINE:
                self._start_wait(timer.key, r.t)
        if closing:
            self.end_open_spans(r.t)

    def end_open_spans(self, t: float) -> None:
        """End every open span at session time ``t`` and ignore later steps: the session is
        over (a ``Close`` step does this itself). A turn delivered but not yet answered keeps
        its delivery's attributes."""
        self._end_wait(t, "closed")
        eot, self._delivered = self._delivered, None
        self._end_turn(t, None if eot is None else self._turn_attributes(eot))
        self._closed = True

    # -- inputs ----------------------------------------------------------------------------

    def _input(self, e: ev.Input, r: StepRecord, released: bool) -> tuple[bool, bool]:
        """Apply one input; say whether it closes and whether it is a clear ``released`` in
        an answer's step (its spans are ended by the caller, in place among the step's
        outputs)."""
        if isinstance(e, ev.EndOfTurnAnswered):
            self._answered(e)
        elif isinstance(e, ev.EouModelAnswered):
            self._model_answered(e)
        elif isinstance(e, ev.ClearUserTurn):
            if released:
                return False, True
            self._cleared(r)
        elif isinstance(e, ev.Close):
            return True, False
        return False, False

    def _released(self, r: StepRecord) -> tuple[bool, bool]:
        """Apply the inputs released in an answer's step, in order, up to a close (the
        engine ignores what follows it); say whether they close and hold a clear."""
        cleared = False
        for e in r.released:
            if type(e) in _INPUTS:
                closing, clear = self._input(e, r, True)
                cleared = cleared or clear
                if closing:
                    return True, cleared
        return False, cleared

    def _answered(self, e: ev.EndOfTurnAnswered) -> None:
        eot, self._delivered = self._delivered, None
        if eot is None:
            return  # no delivery awaited its answer: the engine ignores it
        if e.accepted:  # R52: the turn is over; the engine starts a new one
            self._end_turn(e.t, self._turn_attributes(eot))

    def _model_answered(self, e: ev.EouModelAnswered) -> None:
        d = self._detection
        if d is None or d.request_id != e.request_id or d.answered_at is not None:
            return  # a stale answer: the engine ignores it too
        d.answered_at = e.t
        a: Attributes = {MODEL_SUPPORTED: e.supported, MODEL_FAILED: e.failed}
        if e.probability is not None and not e.failed:  # D21: unknown values are left out
            a[MODEL_PROBABILITY] = e.probability
        if e.threshold is not None:
            a[MODEL_THRESHOLD] = e.threshold
        d.span.set_attributes(a)

    def _cleared(self, r: StepRecord) -> None:
        self._end_wait(r.t, "cancelled")
        self._end_turn(r.t, None)  # R52: ended bare (speech going on after it starts a new
        # turn now: the clear's UserTurnOpened, among the step's outputs)

    # -- outputs ---------------------------------------------------------------------------

    def _outputs(self, outs: tuple[out.Output, ...], r: StepRecord) -> None:
        for o in outs:
            if isinstance(o, out.StartOfSpeech):  # (an STT's onset may lie ahead: not after t)
                self._after_backchannel = False
                self._ensure_turn(min(o.speech_start_time, o.t))
            elif isinstance(o, out.EndOfSpeech):
                if not self._after_backchannel:  # a dropped backchannel's end opens nothing
                    self._ensure_turn(o.t)
            elif isinstance(o, out.Transcript) and o.type == "final" and \
                    self._after_backchannel:
                self._ensure_turn(o.t)  # words after it in its segment start the turn
            elif isinstance(o, out.EouModelRequest):
                self._requested(o)
            elif isinstance(o, out.EndOfTurn):
                self._delivered_turn(o, r)
            elif isinstance(o, out.WaitCancelled):
                self._end_wait(o.t, "cancelled")  # new speech, a clear or a mode change
            elif isinstance(o, out.UserTurnOpened):
                self._ensure_turn(min(o.started_at, o.t))
            elif isinstance(o, out.UserTurnDropped):
                # a dropped backchannel was no turn: its span ends bare, marked, and its
                # onset never becomes the next turn's
                if self._turn is not None:
                    self._turn.set_attribute(DROPPED, "backchannel")
                self._end_turn(o.t, None)
                self._after_backchannel = True  # until new speech starts

    def _requested(self, o: out.EouModelRequest) -> None:
        self._start_wait(o.request_id, o.t)
        a = dict(self._common)
        a[MODEL_REQUEST_ID] = o.request_id
        if o.language is not None:
            a[MODEL_LANGUAGE] = o.language
        span = self._tracer.start_span(EOU_DETECTION, context=self._turn_ctx,
                                       start_time=self._ns(o.t), attributes=a)
        self._detection = _Detection(span, o.request_id)

    def _delivered_turn(self, o: out.EndOfTurn, r: StepRecord) -> None:
        d = o.decision
        w = self._wait
        if w is not None and d is not None and w.start != d.wait_started_at and not (
                r.timer is not None and r.timer.kind is _EOU_DEADLINE and r.timer.key == w.key):
            self._end_wait(o.t, "replaced")  # a new wait, delivered at once, replaced it
            w = None
        if w is None:  # a wait that ended as it started (its deadline was already past)
            start = o.t if d is None else d.wait_started_at
            self._ensure_turn(start)
            self._start_wait(None, max(start, self._turn_start))
        outcome = "closed" if d is not None and d.closed_early else "delivered"
        self._end_wait(o.t, outcome, d)
        self._delivered = o

    # -- spans -----------------------------------------------------------------------------

    def _ns(self, t: float) -> int:
        return max(0, self._origin + round(t * 1e9))

    def _turn_attributes(self, eot: out.EndOfTurn) -> Attributes:
        a = end_of_turn_attributes(eot)
        if eot.stt_request_ids:  # the engine's, for the delivered turn
            a[STT_REQUEST_IDS] = eot.stt_request_ids
        return a

    def _ensure_turn(self, start: float) -> None:
        """Open the ``user_turn`` span unless one is open (R51: an open one is reused)."""
        if self._turn is not None:
            return
        start = max(start, self._turn_floor)
        span = self._tracer.start_span(USER_TURN, context=self._root,
                                       start_time=self._ns(start), attributes=self._common)
        self._turn = span
        self._turn_ctx = trace.set_span_in_context(span, self._root)
        self._turn_start = start

    def _end_turn(self, t: float, attributes: Attributes | None) -> None:
        span = self._turn
        if span is None:
            return
        if attributes:
            span.set_attributes(attributes)
        span.end(end_time=self._ns(t))
        self._turn = None
        self._turn_ctx = self._root
        self._turn_floor = t

    def _start_wait(self, key: int | None, t: float) -> None:
        """Open the ``eou_wait`` span of wait ``key`` (replacing another one)."""
        w = self._wait
        if w is not None:
            if w.key == key:
                return  # the model answered: the same wait armed its deadline
            self._end_wait(t, "replaced")
        self._ensure_turn(t)
        a = dict(self._common)
        if key is not None:
            a[WAIT_ID] = key
        span = self._tracer.start_span(EOU_WAIT, context=self._turn_ctx,
                                       start_time=self._ns(t), attributes=a)
        self._wait = _Wait(span, key, t)

    def _end_wait(self, t: float, outcome: str, d: out.DecisionRecord | None = None) -> None:
        """End the open wait (and its model question first) with ``outcome``."""
        det = self._detection
        if det is not None:
            if d is not None and d.model is not None:
                det.span.set_attributes({DELAY: d.delay, DELAY_REASON: d.delay_reason})
            end = det.answered_at if det.answered_at is not None else t
            det.span.end(end_time=self._ns(end))
            self._detection = None
        w = self._wait
        if w is None:
            return
        a: Attributes = {OUTCOME: outcome}
        if d is not None:
            a.update({TRIGGER: d.trigger, DELAY: d.delay, DELAY_REASON: d.delay_reason,
                      REARMED: d.rearmed, CANCELLED: d.cancelled, CLOSED_EARLY: d.closed_early})
        w.span.set_attributes(a)
        w.span.end(end_time=self._ns(t))
        self._wait = None
