"""The context rules see: the state vector, the records, and the few verbs a rule may use.

Guards and actions (:mod:`turnfsm.core.rules`) receive a :class:`Context` and the payload of
the event being dispatched. Through the context they read the regions (:meth:`in_state`) and
the records, and act only through its verbs: :meth:`emit` an output, :meth:`raise_` an
internal event (where the chart declares it: ``after: now``, nested, or ``after: N``, on the
internal queue), :meth:`arm` a timer. The
engine facade (:mod:`turnfsm.core.engine`) owns one context and is the only caller of
:meth:`run_queue`.
"""

from __future__ import annotations

import math
from collections import deque
from typing import TYPE_CHECKING, Any

from .. import events as ev
from .. import outputs as out
from ..chart import Chart
from ..options import EngineOptions
from .endpointing import make_endpointing
from .eou import word_confidences
from .records import Commit, LimitTracker, Trigger, TurnData, Wait
from .text import count_words, language_update
from .timers import Timer, TimerKind, TimerQueue

if TYPE_CHECKING:
    from .dispatch import Dispatcher


class Context:
    """One session's state: regions, records, outputs of the current step."""

    def __init__(self, chart: Chart, options: EngineOptions, regions: tuple[str, ...],
                 states: tuple[tuple[str, ...], ...], initial: tuple[int, ...]) -> None:
        self.chart = chart
        self.options = options
        self.regions = regions
        self.states = states
        self.s = list(initial)  # the state index of every region
        self._ri = {r: i for i, r in enumerate(regions)}
        self._si = [{s: i for i, s in enumerate(st)} for st in states]
        self.dispatcher: Dispatcher | None = None
        self.vad_region, self.vad_detached = self.index("vad_input", "detached")  # hot path
        self._turn_region, self._delivering = self.index("turn", "delivering")
        # time and the current step
        self.now = 0.0
        self.step = 0
        self.out: list[out.Output] = []
        # the internal queue: (event, payload, passes to go), see :meth:`raise_`
        self.queue: deque[tuple[str, Any, int]] = deque()
        self._after = {name: spec.after for name, spec in chart.events.items()}
        self.timers = TimerQueue()
        # configuration in force
        o = options
        self.eou_model = o.turn_detection == "model"
        self.endpointing_options = o.endpointing
        self.endpointing = make_endpointing(o.endpointing)
        self.limit = o.user_turn_limit
        self.boundary = o.backchannel_boundary
        # the turn and the user's speech
        self.turn = TurnData()
        self.tracker = LimitTracker()
        self.speech_start_time: float | None = None  # onset of the current speech
        self.last_speaking_time: float | None = None  # the end-of-turn anchor
        self.onsets = 0  # speech onsets reported so far (a wait notes how many it saw)
        # the last accepted delivery (or clear, or dropped backchannel): no turn's onset lies
        # before it (I7); see :meth:`onset_at`
        self.onset_floor: float | None = None
        self.promoted: str | None = None  # interim text a commit promoted to a final (D24)
        self.last_language: str | None = None
        # the collaborators' streams
        self.input_started_at: float | None = None  # the STT stream's time origin (D12)
        self.sample_rate: int | None = None
        self.held: list[ev.SttEvent] = []  # STT events held while the agent speaks
        self.judged: str | None = None  # a backchannel guard's finding, for its drop record
        self.window: float | None = None  # the ignore window of the last agent speech
        self.agent_started_at: float | None = None
        self.agent_text: str | None = None  # what the agent says (its last start's text)
        self.verdict_interruption = False
        # default profile: the detector's interruption verdict whose words are awaited
        # (region utterance_verdict, awaiting_words), and its timer's epoch
        self.awaited_verdict: ev.OverlapVerdict | None = None
        self.verdict_epoch = 0
        self.boundary_epoch = 0
        # the latest VAD segment (default profile: final wait and backchannels)
        self.segment_onset: float | None = None
        self.segment_final = False  # a final of it (or after it, untimed) arrived
        self.final_wait_epoch = 0
        # the session's mid-turn pauses, oldest first (default profile: pause_memory)
        self.pauses: list[float] = []
        # the pending decision and commit
        self.wait: Wait | None = None
        self.commit: Commit | None = None
        self._wait_ids = 0
        self._commit_ids = 0

    # -- regions ---------------------------------------------------------------------------

    def in_state(self, region: str, state: str) -> bool:
        """Whether ``region`` is in ``state``."""
        ri = self._ri[region]
        return self.s[ri] == self._si[ri][state]

    def state_of(self, region: str) -> str:
        """The current state of ``region``."""
        ri = self._ri[region]
        return self.states[ri][self.s[ri]]

    def index(self, region: str, state: str) -> tuple[int, int]:
        """(region index, state index), for hot paths."""
        ri = self._ri[region]
        return ri, self._si[ri][state]

    @property
    def awaiting_answer(self) -> bool:
        """An ``EndOfTurn`` waits for its ``EndOfTurnAnswered``: the turn region is
        ``delivering`` (entered by the delivery, left by the answer)."""
        return self.s[self._turn_region] == self._delivering

    # -- verbs -------------------------------------------------------------------------------

    def fire(self, event: str, payload: Any = None) -> None:
        """Dispatch an event now (every region, in chart order): the engine's inputs and
        timers; rules raise internal events with :meth:`raise_`."""
        assert self.dispatcher is not None
        self.dispatcher.dispatch(self, event, payload)

    def emit(self, o: out.Output) -> None:
        """Emit an output of the current step."""
        self.out.append(o)

    def raise_(self, event: str, payload: Any = None) -> None:
        """Raise the internal event ``event`` where the chart declares it: ``after: N``
        queues it, processed N passes of the internal queue later, once the event being
        dispatched is complete (an entry with passes to go goes back to the end of the
        queue); ``after: now`` dispatches it at once, nested, before the event being
        dispatched reaches the next region."""
        after = self._after[event]
        if after:
            self.queue.append((event, payload, after))
        else:
            assert self.dispatcher is not None
            self.dispatcher.dispatch(self, event, payload)

    def run_queue(self) -> None:
        """Process the internal queue, in order, each event to completion (not while an end
        of turn awaits its answer: the rest waits for it)."""
        queue = self.queue
        while queue and not self.awaiting_answer:
            event, payload, passes = queue.popleft()
            if passes > 1:
                queue.append((event, payload, passes - 1))
            else:
                assert self.dispatcher is not None
                self.dispatcher.dispatch(self, event, payload)

    def arm(self, kind: TimerKind, delay: float, key: int) -> Timer:
        """Arm a timer ``delay`` seconds from now."""
        return self.timers.arm(round(self.now + delay, 6), self.step, kind, key)

    def timer_live(self, timer: Timer) -> bool:
        """Whether what armed ``timer`` still stands."""
        kind = timer.kind
        if kind is TimerKind.EOU_DEADLINE:
            return self.wait is not None and self.wait.wait_id == timer.key
        if kind is TimerKind.COMMIT_TIMEOUT:
            return (self.commit is not None and self.commit.cid == timer.key
                    and self.in_state("commit", "awaiting_final"))
        if kind is TimerKind.FINAL_OVERDUE:
            return timer.key == self.final_wait_epoch and self.in_state("final_wait", "pending")
        if kind is TimerKind.WORDS_OVERDUE:
            return (timer.key == self.verdict_epoch
                    and self.state_of("utterance_verdict") == "awaiting_words")
        return timer.key == self.boundary_epoch

    def next_wait_id(self) -> int:
        """A fresh id for an end-of-turn wait (and its model request)."""
        self._wait_ids += 1
        return self._wait_ids

    def next_commit_id(self) -> int:
        """A fresh id for a commit."""
        self._commit_ids += 1
        return self._commit_ids

    # -- derived facts -------------------------------------------------------------------

    @property
    def closed(self) -> bool:
        """The session is closed."""
        return self.in_state("lifecycle", "closed")

    @property
    def interruption_effective(self) -> bool:
        """Interruption detection is effective: a detector channel and a VAD are attached."""
        return not self.in_state("detector", "detached") and self.in_state("vad_input", "attached")

    @property
    def agent_speaking(self) -> bool:
        """The agent is speaking."""
        return self.in_state("agent_speech", "speaking")

    @property
    def user_speaking(self) -> bool:
        """The user is speaking (per VAD, or per STT in stt mode)."""
        return self.in_state("user_speech", "speaking")

    def speaking_flag(self) -> bool | None:
        """What a transcript reports as ``speaking`` (None when nothing tracks speech)."""
        if self.in_state("vad_input", "attached") or self.in_state("mode", "stt"):
            return self.user_speaking
        return None

    # -- shared steps --------------------------------------------------------------------------

    def signal(self, signal: out.Signal, **kw: Any) -> None:
        """Send a control signal to the detector stream, when one is attached."""
        if self.in_state("detector", "attached"):
            self.emit(out.DetectorSignal(t=self.now, signal=signal, **kw))

    def onset_at(self, t: float) -> float:
        """A speech onset ``t`` as a turn may report it: never before the last accepted
        delivery or clear (I7). Speech that went on through a delivery starts the next turn
        at that delivery; only the part of it after the delivery belongs to the new turn."""
        floor = self.onset_floor
        return t if floor is None or t >= floor else floor

    def speech_window(self, speech: float) -> None:
        """R11, the one place a VAD window updates the turn: a window with speech
        (``speech``: the run's accumulated seconds) moves the end-of-turn anchor to now and
        sets the onset if it is unknown (the run's part after the last delivery, I7)."""
        if speech > 0.0:
            now = self.now
            self.last_speaking_time = now
            if self.speech_start_time is None:
                self.speech_start_time = self.onset_at(now - speech)

    def raise_onset_floor(self) -> None:
        """A turn ended here (accepted, cleared, or a dropped backchannel): later turns'
        onsets are not earlier; an onset already known moves up to now."""
        self.onset_floor = self.now
        if self.speech_start_time is not None and self.speech_start_time < self.now:
            self.speech_start_time = self.now

    def ensure_span(self, start: float | None = None) -> None:
        """Open the user-turn span (its start: ``start``, else now; never before the last
        delivery, :meth:`onset_at`) unless it is open."""
        turn = self.turn
        if not turn.span_open:
            turn.span_open = True
            self.emit(out.UserTurnOpened(t=self.now, started_at=self.now if start is None
                                         else start))
            if turn.user_turn_start is None:
                turn.user_turn_start = self.now if start is None else self.onset_at(start)

    def update_language(self, language: str, text: str) -> None:
        """The language of the turn, from a transcript (D22: non-specific codes ignored)."""
        self.last_language = language_update(self.last_language, language, text)

    def transcript_out(self, e: ev.SttTranscript, kind: out.TranscriptType) -> out.Transcript:
        """The output reporting transcript ``e``."""
        return out.Transcript(t=self.now, ref=e.ref, type=kind, text=e.text, language=e.language,
                              confidence=e.confidence, start_time=e.start_time,
                              end_time=e.end_time, speaking=self.speaking_flag())

    def note_segment(self, onset: float) -> None:
        """A VAD segment started at ``onset``: nothing of it is transcribed yet."""
        self.segment_onset = onset
        self.segment_final = False

    def note_final(self, e: ev.SttFinal) -> None:
        """A final arrived: it transcribes the latest segment unless its timestamps say it
        ended before that segment started (without timestamps, any final counts)."""
        origin, onset = self.input_started_at, self.segment_onset
        if (origin is not None and e.end_time > 0 and onset is not None
                and origin + e.end_time < onset - 0.05):
            return
        self.segment_final = True

    def accept_final(self, ref: Any, text: str, confidence: float,
                     words: tuple[float, ...] | None = None) -> None:
        """Append a final to the turn (``words``: its word confidences, if given)."""
        turn = self.turn
        turn.last_final_time = self.now
        turn.transcript = (turn.transcript + " " + text).lstrip()
        turn.confidences.append(confidence)
        turn.word_confidences += word_confidences(text, words)
        turn.finals.append((ref, text))

    def anchor_at_transcript(self) -> None:
        """Without a VAD (or before any speech window) a transcript is the last speech."""
        if self.in_state("vad_input", "detached") or self.last_speaking_time is None:
            self.last_speaking_time = self.now

    def check_turn_limit(self, text: str) -> None:
        """Count ``text`` against the user turn limit; report when it is reached."""
        lim = self.limit
        if lim.max_words is None and lim.max_duration is None:
            return
        tr = self.tracker
        if tr.started_at is None:
            tr.started_at = self.speech_start_time or self.now
        tr.words += count_words(text)
        tr.transcript = f"{tr.transcript} {text}".strip()
        duration = self.now - tr.started_at
        if (lim.max_duration is not None and duration >= lim.max_duration) or (
            lim.max_words is not None and tr.words >= lim.max_words
        ):
            self.emit(out.UserTurnExceeded(
                t=self.now, transcript=self.turn.current_transcript(),
                accumulated_transcript=tr.transcript, accumulated_word_count=tr.words,
                duration=duration))

    def request_decision(self, trigger: Trigger) -> None:
        """Ask for an end-of-turn decision (the chart decides whether one starts)."""
        self.emit(out.ConversationRequested(t=self.now))
        self.raise_("eou_trigger", trigger)

    def preempt(self, transcript: str, confidence: float, *, turn_onset: bool = False) -> None:
        """Offer preemptive generation of a reply to ``transcript``; it reports the latest
        speech onset, or with ``turn_onset`` the turn's (as the end of turn does)."""
        started = self.speech_start_time
        if turn_onset and self.turn.user_turn_start is not None:
            started = self.turn.user_turn_start
        self.emit(out.PreemptiveGeneration(t=self.now, new_transcript=transcript,
                                           transcript_confidence=confidence,
                                           started_speaking_at=started))

    def drop(self, e: ev.SttEvent, reason: out.DropReason,
             record: out.DropRecord | None = None) -> None:
        """Record that a held STT event was discarded."""
        if isinstance(e, ev.SttTranscript) and e.text:
            self.emit(out.TranscriptDropped(t=self.now, ref=e.ref, text=e.text, reason=reason,
                                            record=record or DROP_RULES[reason]))

    def drop_turn(self, reason: out.DropReason) -> None:
        """Record that every final of the turn was discarded."""
        for ref, text in self.turn.finals:
            self.emit(out.TranscriptDropped(t=self.now, ref=ref, text=text, reason=reason,
                                            record=DROP_RULES[reason]))
        self.turn.finals = []

    def new_turn(self, *, cleared: bool) -> None:
        """Start afresh after a delivery (``cleared`` False) or a clear.

        A delivery keeps the speech onset and anchor when the user spoke during the wait
        (the caller decides), the turn-limit tracker and a promoted interim; a clear drops
        them all.
        """
        self.turn = TurnData()
        if cleared:
            self.tracker = LimitTracker()
            self.promoted = None
            self.speech_start_time = None
            self.last_speaking_time = None

    def apply_options(self, options: EngineOptions) -> None:
        """Record the options in force (the chart's mode change is fired by the caller)."""
        self.options = options
        self.eou_model = options.turn_detection == "model"
        if options.endpointing is not self.endpointing_options:
            self.endpointing_options = options.endpointing
            self.endpointing = make_endpointing(options.endpointing)
        self.limit = options.user_turn_limit


DROP_RULES: dict[str, out.DropRecord] = {
    "clear_user_turn": out.DropRecord(rule="R40", detail="the host cleared the user turn"),
    "stream_reset": out.DropRecord(rule="R6", detail="held for an STT stream that restarted"),
    "closed": out.DropRecord(rule="D28", detail="the session closed before its delivery"),
    "duplicate": out.DropRecord(rule="D24", detail="the late final of an interim a commit "
                                                   "already promoted to a final"),
    "backchannel_trim": out.DropRecord(rule="R47-E", detail="held speech inside the agent's "
                                                            "ignore window"),
    "backchannel": out.DropRecord(rule="P3", detail="a backchannel over agent speech (default "
                                                    "profile): neither a turn nor an "
                                                    "interruption"),
}


def finite(v: Any) -> bool:
    """A finite number (not a bool)."""
    return not isinstance(v, bool) and isinstance(v, (int, float)) and math.isfinite(v)
