"""The pure turn-taking engine.

Theory of operation
===================

The engine decides who holds the floor. It is *pure*: no I/O, no asyncio, no clock reads.
A host feeds it timestamped input events (:mod:`turnfsm.events`) with :meth:`Engine.handle`,
tells it that time passed with :meth:`Engine.advance`, and receives outputs
(:mod:`turnfsm.outputs`): decisions (end of turn, preemptive generation, interruption),
observations (speech start/end, transcripts) and requests (ask the end-of-turn model,
flush the STT, control signals for the interruption detector). Answers to requests come
back as input events (``EouModelAnswered``, ``EndOfTurnAnswered``).

Control state lives in the chart, ``states.yaml``: parallel regions, each in exactly one
state. An event is offered to every region in chart order; in each region at most one
transition fires (guards are exclusive by construction). Transitions run their actions,
then enter their destination. Actions may raise internal events (``final``, ``eou_trigger``,
``wait_due``…), dispatched at once, so a decision is the chart's, not a flag's.

* ``lifecycle`` running/closed; ``mode`` vad/stt/manual/realtime (which inputs end a turn);
  ``vad_input``/``stt_input``/``detector`` whether each collaborator is attached.
* ``agent_speech`` and ``boundary`` (the start backchannel boundary timer); ``gate``: user
  STT events are *held* while the agent speaks and interruption detection is effective,
  and released (trimmed by the ignore window) when it stops, synchronously and in order;
  ``overlap``: an overlap being judged by the detector.
* ``vad_segment`` (onset capture), ``user_speech`` silent/speaking, ``turn``
  idle/open/predicting/waiting/delivering (at most one end-of-turn decision), ``authority``
  (who declared the turn over), ``commit`` (a commit waiting for a final).

Data that does not change which inputs are legal (transcript accumulators, anchors,
counters, the held buffer) lives in plain attributes, reset by the actions that the chart
names. VAD inference windows (~90% of all events) and STT usage reports are data events:
they are handled before the machine, without a dispatch.

Time is an input: every event carries ``t``; timers are deadlines kept here
(:meth:`next_deadline`), fired by :meth:`advance` in (deadline, scheduling order). Work the
reference recogniser performs in spawned tasks (the first step of an end-of-turn wait, a
commit's continuation) runs from a small FIFO of deferred jobs before ``handle`` returns,
so no later input can overtake it.
"""

from __future__ import annotations

import heapq
import itertools
import math
from collections import deque
from collections.abc import Callable, Iterator
from typing import Any

import attrs

from . import events as ev
from . import outputs as out
from .chart import Chart, default_chart
from .endpointing import EndpointingOptions, make_endpointing
from .errors import ChartError, ConfigError, InputError

# -- options ---------------------------------------------------------------------------------

TURN_DETECTION = ("vad", "stt", "manual", "realtime_llm", "model", None)
_NONSPECIFIC_LANGUAGES = frozenset({"", "multi", "auto"})
COMMIT_RECENCY = 0.5  # s: a commit does not wait for a final younger than this
FLUSH_FRAME = 0.2  # s: silent frame used to flush the STT on commit
MIN_LANGUAGE_TEXT = 5  # characters a transcript needs to switch the language


def _boundary(value: Any) -> tuple[float, float] | None:
    if value is None:
        return None
    if isinstance(value, bool):
        value = float(value)
    if isinstance(value, (int, float)):
        value = (value, value)
    if not isinstance(value, (list, tuple)):
        raise ConfigError("backchannel_boundary must be a number, two numbers, or null")
    if len(value) == 0:
        return None
    if len(value) != 2 or not all(
        isinstance(x, (int, float)) and math.isfinite(x) and x >= 0 for x in value
    ):
        raise ConfigError("backchannel_boundary must be a tuple of two non-negative floats")
    return (float(value[0]), float(value[1]))


def _limit(value: Any, name: str) -> float | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise ConfigError(f"user_turn_limit.{name} must be a number or null, not {value!r}")
    return float(value)


def _max_words(v: Any) -> float | None:
    return _limit(v, "max_words")


def _max_duration(v: Any) -> float | None:
    return _limit(v, "max_duration")


@attrs.frozen(kw_only=True)
class UserTurnLimit:
    """Report when the user's words or speaking time since the agent last spoke reach this."""

    max_words: float | None = attrs.field(default=None, converter=_max_words)
    max_duration: float | None = attrs.field(default=None, converter=_max_duration)

    @classmethod
    def from_mapping(cls, m: dict[str, Any] | None) -> UserTurnLimit:
        m = dict(m or {})
        unknown = set(m) - {"max_words", "max_duration"}
        if unknown:
            raise ConfigError(f"unknown user_turn_limit field(s): {sorted(unknown)}")
        return cls(max_words=m.get("max_words"), max_duration=m.get("max_duration"))


def _turn_detection(v: Any) -> str | None:
    if v not in TURN_DETECTION:
        raise ConfigError(f"turn_detection must be one of {TURN_DETECTION}, not {v!r}")
    return v  # type: ignore[no-any-return]


@attrs.frozen(kw_only=True)
class EngineOptions:
    """Options of one session. Defaults follow the reference except where a defect was fixed
    (the end backchannel cooldown is 1.0 s, not 3.5 s)."""

    turn_detection: str | None = attrs.field(default=None, converter=_turn_detection)
    endpointing: EndpointingOptions = attrs.field(factory=EndpointingOptions)
    backchannel_boundary: tuple[float, float] | None = attrs.field(
        default=(1.0, 1.0), converter=_boundary)
    user_turn_limit: UserTurnLimit = UserTurnLimit()
    vad: bool = True
    stt: bool = True
    interruption_detection: bool = False
    speech_feedback: bool = True


# -- registry ----------------------------------------------------------------------------------

GuardFn = Callable[["Engine", Any], bool]
ActionFn = Callable[["Engine", Any], None]
GUARDS: dict[str, GuardFn] = {}
ACTIONS: dict[str, ActionFn] = {}


def guard(name: str) -> Callable[[GuardFn], GuardFn]:
    def deco(fn: GuardFn) -> GuardFn:
        GUARDS[name] = fn
        return fn
    return deco


def action(name: str) -> Callable[[ActionFn], ActionFn]:
    def deco(fn: ActionFn) -> ActionFn:
        ACTIONS[name] = fn
        return fn
    return deco


# The regions, states and events the engine's code refers to by name: a chart must declare
# them (``check_chart``); everything else about a chart is free.
REQUIRED_STATES: dict[str, frozenset[str]] = {
    "lifecycle": frozenset({"running", "closed"}),
    "mode": frozenset({"vad", "stt", "manual", "realtime"}),
    "vad_input": frozenset({"attached", "detached"}),
    "stt_input": frozenset({"attached", "detached"}),
    "detector": frozenset({"attached", "detached"}),
    "agent_speech": frozenset({"speaking"}),
    "boundary": frozenset({"active"}),
    "overlap": frozenset({"open"}),
    "user_speech": frozenset({"speaking"}),
    "turn": frozenset({"idle", "open", "predicting"}),
    "authority": frozenset({"none", "manual_committed", "stt_committed"}),
    "commit": frozenset({"awaiting_final"}),
}
REQUIRED_EVENTS = frozenset({
    "to_vad", "to_stt", "to_manual", "to_realtime", "gate", "final", "preflight", "speech_onset",
    "speech_offset", "eou_trigger", "wait_due", "vad_stream_ended", "committed", "commit_done",
    "user_started", "user_ended", "eou_deadline", "commit_timeout", "boundary_expired",
    "vad_attach", "vad_detach", "stt_attach", "stt_detach", "detector_attach", "detector_detach",
    "decision_dropped", "decision_refused", "left_stt", "agent_over_user",
    *("vad_start", "vad_end", "stt_start", "stt_end", "stt_interim", "stt_preflight", "stt_final",
      "overlap", "detector_failed", "agent_start", "agent_end", "overlap_ended", "commit",
      "clear", "model_answered", "turn_answered", "close"),
})


def check_chart(chart: Chart) -> list[str]:
    """Problems that stop the engine from running ``chart`` (missing regions, states, events)."""
    problems = []
    regions = {r.name: r for r in chart.regions}
    for name, states in sorted(REQUIRED_STATES.items()):
        r = regions.get(name)
        if r is None:
            problems.append(f"{chart.source}:1: the engine needs a region {name!r}")
            continue
        for st in sorted(states - set(r.states)):
            problems.append(f"{chart.source}:{r.line}: region {name!r} needs a state {st!r}")
    for e in sorted(REQUIRED_EVENTS - set(chart.events)):
        problems.append(f"{chart.source}:1: the engine needs an event {e!r}")
    return problems


# -- compiled dispatch table ----------------------------------------------------------------

_CT = tuple[tuple[tuple[GuardFn, bool], ...], tuple[ActionFn, ...], "int | None"]


@attrs.frozen
class _Compiled:
    regions: tuple[str, ...]
    states: tuple[tuple[str, ...], ...]
    initial: tuple[int, ...]
    # event -> tuple of (region index, {state index: tuple of transitions})
    table: dict[str, tuple[tuple[int, dict[int, tuple[_CT, ...]]], ...]]


_COMPILED: dict[int, tuple[Chart, _Compiled]] = {}  # id -> (the chart, kept alive; table)


def _compile(chart: Chart) -> _Compiled:
    key = id(chart)
    hit = _COMPILED.get(key)
    if hit is not None and hit[0] is chart:
        return hit[1]
    regions = tuple(r.name for r in chart.regions)
    states = tuple(r.states for r in chart.regions)
    ridx = {r: i for i, r in enumerate(regions)}
    table: dict[str, dict[int, dict[int, list[_CT]]]] = {}
    for t in chart.transitions:
        ri = ridx[t.region]
        sidx = states[ri].index(t.source)
        dest = states[ri].index(t.dest) if t.dest is not None else None
        ct: _CT = (tuple((GUARDS[g.name], g.negated) for g in t.guards),
                   tuple(ACTIONS[a] for a in t.actions), dest)
        table.setdefault(t.event, {}).setdefault(ri, {}).setdefault(sidx, []).append(ct)
    frozen = {
        e: tuple((ri, {s: tuple(v) for s, v in by_state.items()})
                 for ri, by_state in sorted(by_region.items()))
        for e, by_region in table.items()
    }
    c = _Compiled(regions, states,
                  tuple(states[i].index(r.initial) for i, r in enumerate(chart.regions)), frozen)
    _COMPILED[key] = (chart, c)
    return c


# -- helpers ----------------------------------------------------------------------------------

_PUNCT = set("!\"#$%&'()*+,-./:;<=>?@[\\]^_`{|}~±—‘’“”…")  # noqa: RUF001


def _normalized(text: str) -> str:
    return " ".join("".join(ch for ch in text.casefold() if ch not in _PUNCT).split())


def count_words(text: str) -> int:
    """Words as the turn limit counts them: whitespace tokens not made only of punctuation."""
    n = 0
    for tok in text.split():
        if any(ch not in _PUNCT for ch in tok):
            n += 1
    return n


@attrs.define(slots=True)
class _Trigger:
    skip_reply: bool = False
    manual: bool = False


@attrs.define(slots=True)
class _Wait:
    wait_id: int
    anchor: float | None
    last_final: float | None
    turn_start: float | None
    skip_reply: bool
    manual: bool
    min_delay: float = 0.0


@attrs.define(slots=True)
class _Commit:
    cid: int
    ref: Any
    skip_reply: bool
    resolved: bool = False  # its CommitResult was emitted
    finalized: bool = False  # it committed the turn; the result follows the delivery


_INPUT_EVENT: dict[type, str] = {
    ev.VadStartOfSpeech: "vad_start",
    ev.VadEndOfSpeech: "vad_end",
    ev.SttStartOfSpeech: "stt_start",
    ev.SttEndOfSpeech: "stt_end",
    ev.SttInterim: "stt_interim",
    ev.SttPreflight: "stt_preflight",
    ev.SttFinal: "stt_final",
    ev.OverlapVerdict: "overlap",
    ev.DetectorFailed: "detector_failed",
    ev.AgentSpeechStarted: "agent_start",
    ev.AgentSpeechEnded: "agent_end",
    ev.UserSpeechStarted: "user_started",
    ev.UserSpeechEnded: "user_ended",
    ev.OverlapSpeechEnded: "overlap_ended",
    ev.CommitUserTurn: "commit",
    ev.ClearUserTurn: "clear",
    ev.EouModelAnswered: "model_answered",
    ev.EndOfTurnAnswered: "turn_answered",
    ev.Close: "close",
}


_KINDS: dict[type, tuple[tuple[str, str, bool], ...]] = {}
_TYPE_KIND = {"float": "number", "int": "integer", "bool": "bool", "str": "str",
              "dict[str, Any]": "dict"}


def _field_kinds(cls: type) -> tuple[tuple[str, str, bool], ...]:
    """(name, kind, optional) of each typed field of an input class (from its annotations)."""
    kinds = _KINDS.get(cls)
    if kinds is None:
        found = []
        for f in attrs.fields(cls):
            ann = str(f.type).replace(" ", "")
            optional = ann.endswith("|None")
            base = ann[:-5] if optional else ann
            kind = _TYPE_KIND.get(base.replace(",", ", "))
            if kind is not None and f.name != "ref":
                found.append((f.name, kind, optional))
        kinds = _KINDS[cls] = tuple(found)
    return kinds


def _check_fields(e: ev.Input) -> None:
    """Refuse wrong types, NaN and infinities before anything changes (InputError)."""
    for name, kind, optional in _field_kinds(type(e)):
        v = getattr(e, name)
        if v is None and optional:
            continue
        what = f"{type(e).__name__}.{name}"
        if kind in ("number", "integer"):
            if isinstance(v, bool) or not isinstance(v, (int, float)):
                raise InputError(f"{what} must be a number, not {v!r}")
            if not math.isfinite(v):
                raise InputError(f"{what} must be finite, not {v!r}")
            if kind == "integer" and v != int(v):
                raise InputError(f"{what} must be a whole number, not {v!r}")
        elif kind == "bool" and not isinstance(v, bool):
            raise InputError(f"{what} must be true or false, not {v!r}")
        elif kind == "str" and not isinstance(v, str):
            raise InputError(f"{what} must be a string, not {v!r}")
        elif kind == "dict" and not isinstance(v, dict):
            raise InputError(f"{what} must be a mapping, not {v!r}")


# -- the engine -------------------------------------------------------------------------------


class Engine:
    """One conversation's turn-taking state. Not thread-safe; cheap to create."""

    def __init__(self, options: EngineOptions | None = None, *, chart: Chart | None = None,
                 timer_sequence: Iterator[int] | None = None, backend: str = "table") -> None:
        self.options = options or EngineOptions()
        self.chart = chart or default_chart()
        if chart is not None:
            problems = check_chart(chart)
            if problems:
                raise ChartError(problems, chart.source)
        self._c = _compile(self.chart)
        if backend not in ("table", "transitions"):
            raise ConfigError(f"backend must be 'table' or 'transitions', not {backend!r}")
        self._machines: Any = None
        if backend == "transitions":
            from .adapter import build_machines
            self._machines = build_machines(self.chart, GUARDS, ACTIONS)
            self._models = self._machines.new_models()
        self._s = list(self._c.initial)
        self._ri = {r: i for i, r in enumerate(self._c.regions)}
        self._si = [{s: i for i, s in enumerate(st)} for st in self._c.states]
        # hot-path indices (VAD inference windows): region and state positions
        self._r_life = self._ri["lifecycle"]
        self._st_closed = self._si[self._r_life]["closed"]
        self._r_vad = self._ri["vad_input"]
        self._st_vad_off = self._si[self._r_vad]["detached"]
        o = self.options
        self.now = 0.0
        self._last_input_t = -math.inf
        self._out: list[out.Output] = []
        self._soon: deque[Callable[[], None]] = deque()
        self._timers: list[tuple[float, int, str, int, Any]] = []
        self._seq = timer_sequence if timer_sequence is not None else itertools.count()
        self._awaiting_answer = False
        self._inbox: deque[ev.Input] = deque()
        # configuration data
        self._eou_model = o.turn_detection == "model"
        self._endpointing_opts = o.endpointing
        self._endpointing = make_endpointing(o.endpointing)
        self._limit = o.user_turn_limit
        self._boundary = o.backchannel_boundary
        # turn data
        self.transcript = ""
        self.interim = ""
        self.interim_language = ""
        self.interim_confidence = 0.0
        self.promoted: str | None = None  # interim text a commit promoted to a final
        self.preflight = ""
        self.confidences: list[float] = []
        self.last_final_time: float | None = None
        self.last_real_final_time: float | None = None  # finals only (commit recency test)
        self.last_speaking_time: float | None = None
        self.speech_start_time: float | None = None
        self.user_turn_start: float | None = None
        self.span_open = False
        self.request_ids: list[str] = []
        self.turn_finals: list[tuple[Any, str]] = []  # (ref, text) of this turn's finals
        self.last_language: str | None = None
        self.skip_reply_sticky = False
        self.tracker_words = 0
        self.tracker_transcript = ""
        self.tracker_started_at: float | None = None
        # collaborators' data
        self.input_started_at: float | None = None
        self.sample_rate: int | None = None
        self.held: list[ev.SttEvent] = []
        self._window: float | None = None
        self._verdict_interruption = False
        self._wait: _Wait | None = None
        self._wait_ids = itertools.count(1)
        self._commit: _Commit | None = None
        self._boundary_epoch = 0
        self._staged: Callable[[], None] | None = None
        # tests and tooling: called with (region, state, event, fired) for every region offered
        # an event by the table dispatcher
        self.dispatch_observer: Callable[[str, str, str, bool], None] | None = None
        self._detector_told_agent = False  # the detector stream heard agent_speech_started
        self._commit_ids = itertools.count(1)
        self._agent_started_at: float | None = None
        # initial configuration as transitions
        if o.turn_detection in ("stt", "manual", "realtime_llm"):
            self._fire({"stt": "to_stt", "manual": "to_manual",
                        "realtime_llm": "to_realtime"}[o.turn_detection], None)
        if not o.vad:
            self._set("vad_input", "detached")
        if not o.stt:
            self._set("stt_input", "detached")
        if o.interruption_detection:
            self._set("detector", "attached")
        self._out.clear()

    # -- public API ------------------------------------------------------------------------

    def state(self) -> dict[str, str]:
        """The current state of every region."""
        return {r: self._c.states[i][self._s[i]] for i, r in enumerate(self._c.regions)}

    def in_state(self, region: str, state: str) -> bool:
        ri = self._ri[region]
        return self._s[ri] == self._si[ri][state]

    @property
    def current_transcript(self) -> str:
        """Accumulated finals plus the latest interim (what the user has said this turn)."""
        if self.interim:
            return self.transcript + " " + self.interim
        return self.transcript

    @property
    def closed(self) -> bool:
        return self.in_state("lifecycle", "closed")

    @property
    def awaiting_answer(self) -> bool:
        """An ``EndOfTurn`` was emitted and its ``EndOfTurnAnswered`` is awaited."""
        return self._awaiting_answer

    def model_request_pending(self, request_id: int) -> bool:
        """Whether an ``EouModelRequest`` with this id still waits for its answer."""
        return (self._wait is not None and self._wait.wait_id == request_id
                and self.in_state("turn", "predicting"))

    def next_deadline(self) -> float | None:
        """The earliest pending timer deadline, or None."""
        while self._timers and not self._timer_live(self._timers[0]):
            heapq.heappop(self._timers)
        return self._timers[0][0] if self._timers else None

    def next_timer(self) -> tuple[float, int] | None:
        """(deadline, scheduling sequence) of the earliest pending timer, or None."""
        if self.next_deadline() is None:
            return None
        return self._timers[0][0], self._timers[0][1]

    def advance(self, t: float) -> list[out.Output]:
        """Fire every timer due at or before ``t`` (timers win ties with inputs at ``t``)."""
        if isinstance(t, bool) or not isinstance(t, (int, float)) or not math.isfinite(t):
            raise InputError(f"advance: time must be a finite number, not {t!r}")
        outs: list[out.Output] = []
        while True:
            d = self.next_deadline()
            if d is None or d > t or self._awaiting_answer:
                break
            outs += self.fire_next_timer()
        return outs + self._take()

    def fire_next_timer(self) -> list[out.Output]:
        """Fire the earliest pending timer (and its consequences)."""
        if self.next_deadline() is None:
            return self._take()
        deadline, _seq, kind, _epoch, payload = heapq.heappop(self._timers)
        self.now = max(self.now, deadline)
        self._fire(kind, payload)
        self._drain()
        return self._take()

    def handle(self, e: ev.Input) -> list[out.Output]:
        """Apply one input event; return the outputs it caused, in order."""
        if type(e) is ev.VadInferenceDone and not self._awaiting_answer:
            return self._vad_tick(e)  # ~90% of all events: data only, no dispatch
        if not isinstance(e, ev.Input):
            raise InputError(f"not an input event: {e!r}")
        t = e.t
        if isinstance(t, bool) or not isinstance(t, (int, float)) or not math.isfinite(t):
            raise InputError(f"{type(e).__name__}.t must be a finite number, not {t!r}")
        if t < self._last_input_t:
            raise InputError(f"{type(e).__name__} at t={t} goes back in time "
                             f"(last input at {self._last_input_t})")
        _check_fields(e)
        if isinstance(e, ev.UpdateOptions):
            self._staged = self._stage_options(e)  # every part checked before any applies
        if self._awaiting_answer and not isinstance(e, ev.EndOfTurnAnswered):
            self._inbox.append(e)
            return []
        self._last_input_t = t
        self.now = max(self.now, t)
        self._apply(e)
        self._drain()
        while self._inbox and not self._awaiting_answer:
            nxt = self._inbox.popleft()
            self._last_input_t = max(self._last_input_t, nxt.t)
            self.now = max(self.now, nxt.t)
            self._apply(nxt)
            self._drain()
        return self._take()

    # -- dispatch ----------------------------------------------------------------------------

    def _apply(self, e: ev.Input) -> None:
        if self.closed and not isinstance(e, (ev.EouModelAnswered, ev.EndOfTurnAnswered)):
            return  # a closed session ignores inputs
        if isinstance(e, ev.VadInferenceDone):
            self._emit(self._vad_inference(e))
            return
        if isinstance(e, ev.AudioPushed):
            self._audio(e)
            return
        if isinstance(e, ev.SttUsage):
            if self.in_state("stt_input", "detached"):
                self._emit(out.InputDropped(t=self.now, ref=e.ref, reason="stt_inactive"))
            elif e.request_id and e.request_id not in self.request_ids:
                self.request_ids.append(e.request_id)
            return
        if isinstance(e, ev.UpdateOptions):
            self._update_options(e)
            return
        if isinstance(e, ev.SetVad):
            self._fire("vad_attach" if e.enabled else "vad_detach", e)
            return
        if isinstance(e, ev.SetStt):
            self._fire("stt_attach" if e.enabled else "stt_detach", e)
            return
        if isinstance(e, ev.SetInterruptionDetection):
            self._fire("detector_attach" if e.enabled else "detector_detach", e)
            return
        if isinstance(e, ev.EndOfTurnAnswered):
            if not self._awaiting_answer:
                return
            self._awaiting_answer = False
        self._fire(_INPUT_EVENT[type(e)], e)

    def _fire(self, event: str, payload: Any) -> None:
        if self._machines is not None:
            self._fire_transitions(event, payload)
            return
        observe = self.dispatch_observer
        for ri, by_state in self._c.table.get(event, ()):
            state = self._s[ri]
            cands = by_state.get(state)
            fired = False
            for guards, actions, dest in cands or ():
                ok = True
                for fn, neg in guards:
                    if fn(self, payload) == neg:
                        ok = False
                        break
                if not ok:
                    continue
                for act in actions:
                    act(self, payload)
                if dest is not None:
                    self._s[ri] = dest
                fired = True
                break
            if observe is not None:
                observe(self._c.regions[ri], self._c.states[ri][state], event, fired)

    def _fire_transitions(self, event: str, payload: Any) -> None:
        for ri, _ in self._c.table.get(event, ()):
            name = self._c.regions[ri]
            new = self._machines.trigger(name, self._models[name], self._c.states[ri][self._s[ri]],
                                         event, self, payload)
            self._s[ri] = self._si[ri][new]

    def _set(self, region: str, state: str) -> None:
        ri = self._ri[region]
        self._s[ri] = self._si[ri][state]

    def _drain(self) -> None:
        while self._soon and not self._awaiting_answer:
            self._soon.popleft()()

    def _later(self, fn: Callable[[], None], hops: int = 1) -> None:
        if hops <= 1:
            self._soon.append(fn)
        else:
            self._soon.append(lambda: self._later(fn, hops - 1))

    def _take(self) -> list[out.Output]:
        o, self._out = self._out, []
        return o

    def _emit(self, o: out.Output) -> None:
        self._out.append(o)

    # -- timers --------------------------------------------------------------------------------

    def _timer(self, delay: float, kind: str, epoch: int, payload: Any = None) -> None:
        deadline = round(self.now + delay, 6)
        heapq.heappush(self._timers, (deadline, next(self._seq), kind, epoch, payload))

    def _timer_live(self, item: tuple[float, int, str, int, Any]) -> bool:
        kind, epoch = item[2], item[3]
        if kind == "eou_deadline":
            return self._wait is not None and self._wait.wait_id == epoch
        if kind == "commit_timeout":
            return self._commit is not None and self._commit.cid == epoch and \
                self.in_state("commit", "awaiting_final")
        if kind == "boundary_expired":
            return epoch == self._boundary_epoch
        return True

    # -- derived facts ---------------------------------------------------------------------

    @property
    def adaptive_active(self) -> bool:
        """Interruption detection is effective: a detector channel and a VAD are attached."""
        return not self.in_state("detector", "detached") and self.in_state("vad_input", "attached")

    @property
    def agent_speaking(self) -> bool:
        return self.in_state("agent_speech", "speaking")

    @property
    def user_speaking(self) -> bool:
        return self.in_state("user_speech", "speaking")

    def _speaking_flag(self) -> bool | None:
        if self.in_state("vad_input", "attached") or self.in_state("mode", "stt"):
            return self.user_speaking
        return None

    def _signal(self, signal: str, **kw: Any) -> None:
        if self.in_state("detector", "attached"):
            self._emit(out.DetectorSignal(t=self.now, signal=signal, **kw))

    def _announce_agent(self) -> None:
        self._signal("agent_speech_started")
        self._detector_told_agent = self.in_state("detector", "attached")

    def _ensure_span(self, start: float | None = None) -> None:
        if not self.span_open:
            self.span_open = True
            if self.user_turn_start is None:
                self.user_turn_start = self.now if start is None else start

    # -- data events --------------------------------------------------------------------------

    def _vad_tick(self, e: ev.VadInferenceDone) -> list[out.Output]:
        t = e.t
        speech = e.raw_accumulated_speech
        # the same checks as handle(), on the two numbers this path reads
        if (not (self._last_input_t <= t < math.inf) or speech != speech or speech == math.inf
                or type(speech) not in (float, int) or type(t) not in (float, int)):
            if type(t) not in (float, int) or type(speech) not in (float, int):
                _check_fields(e)
                raise InputError(f"VadInferenceDone.t must be a number, not {t!r}")
            if t != t or t == math.inf:
                raise InputError(f"VadInferenceDone.t must be a finite number, not {t!r}")
            if t < self._last_input_t:
                raise InputError(f"VadInferenceDone at t={t} goes back in time "
                                 f"(last input at {self._last_input_t})")
            raise InputError(
                f"VadInferenceDone.raw_accumulated_speech must be finite, not {speech!r}")
        self._last_input_t = t
        if t > self.now:
            self.now = t
        if self._s[self._r_life] == self._st_closed:
            return []
        return [self._vad_inference(e)]

    def _vad_inference(self, e: ev.VadInferenceDone) -> out.Output:
        """R11: the anchor moves to every window with speech; the onset is set if unknown."""
        t = self.now
        if self._s[self._r_vad] == self._st_vad_off:
            return out.InputDropped(t=t, ref=e.ref, reason="vad_inactive")
        speech = e.raw_accumulated_speech
        if speech > 0.0:
            self.last_speaking_time = t
            if self.speech_start_time is None:
                self.speech_start_time = t - speech
        return out.VadInference(t=t, ref=e.ref)

    def _audio(self, e: ev.AudioPushed) -> None:
        if e.count <= 0:
            return
        if self.input_started_at is None:
            self.input_started_at = self.now - e.duration
        self.sample_rate = e.sample_rate

    # -- options --------------------------------------------------------------------------------

    def _stage_options(self, e: ev.UpdateOptions) -> Callable[[], None]:
        """Check every part of an option change; return the change, to apply all at once."""
        try:
            ep = (self._endpointing_opts.merged(e.endpointing)
                  if e.endpointing is not None else None)
            limit = (UserTurnLimit.from_mapping(e.user_turn_limit)
                     if e.user_turn_limit is not None else None)
            td = _turn_detection(e.turn_detection) if e.set_turn_detection else None
        except (ConfigError, TypeError, ValueError) as exc:
            raise ConfigError(f"UpdateOptions at t={e.t}: {exc}") from None

        def apply() -> None:
            if ep is not None:
                self._endpointing_opts = ep
                self._endpointing = make_endpointing(ep)
            if limit is not None:
                self._limit = limit
            if e.set_turn_detection:
                self._eou_model = td == "model"
                self._fire({"stt": "to_stt", "manual": "to_manual",
                            "realtime_llm": "to_realtime"}.get(td or "", "to_vad"), e)
        return apply

    def _update_options(self, e: ev.UpdateOptions) -> None:
        staged, self._staged = self._staged, None
        (staged or self._stage_options(e))()

    # -- STT processing (R18-R22), shared by the gate and releases ---------------------------

    def _update_language(self, language: str, text: str) -> None:
        if language in _NONSPECIFIC_LANGUAGES:
            return
        if self.last_language is None or len(text) > MIN_LANGUAGE_TEXT:
            self.last_language = language

    def _transcript_out(self, e: ev.SttTranscript, kind: str) -> out.Transcript:
        return out.Transcript(t=self.now, ref=e.ref, type=kind, text=e.text, language=e.language,
                              confidence=e.confidence, start_time=e.start_time,
                              end_time=e.end_time, speaking=self._speaking_flag())

    def _process_stt(self, e: ev.SttEvent) -> None:
        if isinstance(e, ev.SttFinal):
            self._process_final(e)
        elif isinstance(e, ev.SttPreflight):
            self._process_preflight(e)
        elif isinstance(e, ev.SttInterim):
            self._emit(self._transcript_out(e, "interim"))
            self._set_interim(e)
        elif isinstance(e, ev.SttEndOfSpeech):
            if self.in_state("mode", "stt"):
                self._fire("speech_offset", e)
                before = self._wait
                self._request_decision(_Trigger())
                if self._wait is None and before is None:
                    self._fire("decision_refused", e)  # nothing to commit: no authority left
        elif isinstance(e, ev.SttStartOfSpeech) and self.in_state("mode", "stt"):
            self._fire("speech_onset", e)

    def _set_interim(self, e: ev.SttTranscript) -> None:
        self.interim = e.text
        self.interim_language = e.language
        self.interim_confidence = e.confidence

    def _process_final(self, e: ev.SttFinal) -> None:
        self._update_language(e.language, e.text)
        text = e.text
        if not text.strip():  # empty or whitespace: nothing the user said
            self._fire("final", e)
            return
        promoted, self.promoted = self.promoted, None
        if promoted is not None and _normalized(promoted) == _normalized(text):
            # the late final of text a commit already promoted from an interim: keep it once
            self._emit(out.TranscriptDropped(t=self.now, ref=e.ref, text=text, reason="duplicate"))
            self._fire("final", e)
            return
        self._emit(self._transcript_out(e, "final"))
        self._accept_final(e.ref, text, e.confidence)
        self.last_real_final_time = self.now
        changed = self.transcript != self.preflight
        self.interim = ""
        self.preflight = ""
        if self.in_state("vad_input", "detached") or self.last_speaking_time is None:
            self.last_speaking_time = self.now
        self._check_turn_limit(text)
        commit_waits = self.in_state("commit", "awaiting_final")
        self._fire("final", e)
        if self.in_state("mode", "vad") or not self.in_state("authority", "none"):
            if changed:
                self._emit(out.PreemptiveGeneration(
                    t=self.now, new_transcript=self.transcript,
                    transcript_confidence=self._mean_confidence(),
                    started_speaking_at=self.speech_start_time))
            if not self.user_speaking and not commit_waits:
                # (a commit waiting for this final makes the decision itself, with its options)
                self._request_decision(_Trigger())

    def _accept_final(self, ref: Any, text: str, confidence: float) -> None:
        self.last_final_time = self.now
        self.transcript = (self.transcript + " " + text).lstrip()
        self.confidences.append(confidence)
        self.turn_finals.append((ref, text))

    def _process_preflight(self, e: ev.SttPreflight) -> None:
        self._emit(self._transcript_out(e, "preflight"))
        self._update_language(e.language, e.text)
        if not e.text.strip():
            return
        self.last_final_time = self.now
        self.preflight = (self.transcript + " " + e.text).lstrip()
        self._set_interim(e)
        if self.in_state("vad_input", "detached") or self.last_speaking_time is None:
            self.last_speaking_time = self.now
        self._fire("preflight", e)
        if not self.in_state("mode", "manual") or not self.in_state("authority", "none"):
            vals = [*self.confidences, e.confidence]
            self._emit(out.PreemptiveGeneration(
                t=self.now, new_transcript=self.preflight,
                transcript_confidence=sum(vals) / len(vals),
                started_speaking_at=self.speech_start_time))

    def _mean_confidence(self) -> float:
        c = self.confidences
        return sum(c) / len(c) if c else 0.0

    def _check_turn_limit(self, text: str) -> None:
        lim = self._limit
        if lim.max_words is None and lim.max_duration is None:
            return
        if self.tracker_started_at is None:
            self.tracker_started_at = self.speech_start_time or self.now
        self.tracker_words += count_words(text)
        self.tracker_transcript = f"{self.tracker_transcript} {text}".strip()
        duration = self.now - self.tracker_started_at
        if (lim.max_duration is not None and duration >= lim.max_duration) or (
            lim.max_words is not None and self.tracker_words >= lim.max_words
        ):
            self._emit(out.UserTurnExceeded(
                t=self.now, transcript=self.current_transcript,
                accumulated_transcript=self.tracker_transcript,
                accumulated_word_count=self.tracker_words, duration=duration))

    def _request_decision(self, trig: _Trigger) -> None:
        self._emit(out.ConversationRequested(t=self.now))
        self._fire("eou_trigger", trig)

    # -- end-of-turn wait -------------------------------------------------------------------

    def _wait_first_step(self, wait_id: int) -> None:
        w = self._wait
        if w is None or w.wait_id != wait_id:
            return
        w.min_delay = self._endpointing.min_delay
        self._ensure_span()
        if self.in_state("turn", "predicting"):
            self._emit(out.EouModelRequest(t=self.now, request_id=wait_id,
                                           language=self.last_language,
                                           transcript=self.transcript))
        else:
            self._arm(w, w.min_delay, direct=True)

    def _arm(self, w: _Wait, delay: float, *, direct: bool) -> None:
        remaining = delay + (w.anchor - self.now) if w.anchor is not None else delay
        if remaining > 0 and not self.closed:  # closing skips the wait (R4)
            self._timer(remaining, "eou_deadline", w.wait_id)
        elif direct:
            self._fire("wait_due", None)
        else:
            wid = w.wait_id
            self._later(lambda: self._due_if_current(wid))

    def _due_if_current(self, wait_id: int) -> None:
        if self._wait is not None and self._wait.wait_id == wait_id:
            self._fire("wait_due", None)

    # -- held transcripts ---------------------------------------------------------------------

    def _drop(self, e: ev.SttEvent, reason: str) -> None:
        if isinstance(e, ev.SttTranscript) and e.text:
            self._emit(out.TranscriptDropped(t=self.now, ref=e.ref, text=e.text, reason=reason))

    def _close_leftovers(self) -> None:
        if not (self.in_state("turn", "idle") or self.in_state("turn", "open")):
            return  # the pending decision delivers it; a refusal at close drops it
        _commit_abandoned(self)
        self._drop_turn("closed")

    def _drop_turn(self, reason: str) -> None:
        for ref, text in self.turn_finals:
            self._emit(out.TranscriptDropped(t=self.now, ref=ref, text=text, reason=reason))
        self.turn_finals = []

    def _release(self, events: list[ev.SttEvent]) -> None:
        for e in events:
            self._process_stt(e)

    def _trim(self, window: float | None) -> list[ev.SttEvent]:
        """Split the held buffer: drop the head that ended before ``window``; keep the rest."""
        buf, self.held = self.held, []
        if window is None:
            return buf
        origin = self.input_started_at
        start: int | None = None
        found = False
        for i, e in enumerate(buf):
            if not isinstance(e, ev.SttTranscript):
                start = i if start is None else min(start, i)
                continue
            if origin is not None and e.end_time > 0:
                ended = min(origin + e.end_time, e.t)  # a mapped time is never in the future
            elif origin is not None and e.start_time > 0:
                ended = None  # a start but no end: keep it, as the reference does
            else:
                ended = e.t  # no usable timestamps: the arrival time stands for the end
            agent_start = self._agent_started_at
            before_agent = ended is not None and agent_start is not None and ended < agent_start
            if ended is not None and ended < window and not before_agent:
                start = None
            else:
                start = i if start is None else min(start, i)
                found = True
                break
        keep = buf[start:] if (found and start is not None) else []
        cut = len(buf) - len(keep)
        for e in buf[:cut]:
            self._drop(e, "backchannel_trim")
        return keep


# ===== guards =====================================================================================


@guard("manual_gate_drops")
def _g_manual_gate(s: Engine, e: Any) -> bool:
    # drop interims while a manual commit's decision is pending (they would be stale)
    return (isinstance(e, ev.SttInterim) and s.in_state("mode", "manual")
            and s.in_state("authority", "manual_committed") and s._wait is not None)


@guard("user_speaking")
def _g_user_speaking(s: Engine, e: Any) -> bool:
    return s.user_speaking


@guard("agent_speaking")
def _g_agent_speaking(s: Engine, e: Any) -> bool:
    return s.agent_speaking


@guard("interruption_effective")
def _g_interruption_effective(s: Engine, e: Any) -> bool:
    return s.adaptive_active


@guard("adaptive_active")
def _g_adaptive(s: Engine, e: Any) -> bool:
    return s.adaptive_active


@guard("boundary_configured")
def _g_boundary(s: Engine, e: Any) -> bool:
    return s._boundary is not None and s._boundary[0] > 0


@guard("vad_live")
def _g_vad_live(s: Engine, e: Any) -> bool:
    return s.in_state("vad_input", "attached")


@guard("answer_accepts")
def _g_answer_accepts(s: Engine, e: Any) -> bool:
    return isinstance(e, ev.EndOfTurnAnswered) and e.accepted


@guard("anchor_unchanged")
def _g_anchor_unchanged(s: Engine, e: Any) -> bool:
    return s._wait is not None and s.last_speaking_time == s._wait.anchor


@guard("manual_decision")
def _g_manual_decision(s: Engine, e: Any) -> bool:
    # a manual commit's decision is not cancelled by the user speaking again
    return s.in_state("mode", "manual") and s.in_state("authority", "manual_committed")


@guard("may_decide")
def _g_may_decide(s: Engine, e: Any) -> bool:
    return not (s.in_state("stt_input", "attached") and not s.transcript
                and not s.in_state("mode", "manual"))


@guard("model_applies")
def _g_model_applies(s: Engine, e: Any) -> bool:
    trig = e if isinstance(e, _Trigger) else _Trigger()
    return (s._eou_model and bool(s.transcript) and not s.in_state("mode", "manual")
            and not trig.manual)


@guard("answer_current")
def _g_answer_current(s: Engine, e: Any) -> bool:
    return isinstance(e, ev.EouModelAnswered) and s._wait is not None and \
        s._wait.wait_id == e.request_id


@guard("ends_on_vad_end")
def _g_ends_on_vad_end(s: Engine, e: Any) -> bool:
    return s.in_state("mode", "vad") or (
        s.in_state("mode", "stt") and s.in_state("authority", "stt_committed"))


@action("request_decision")
def _a_request_decision(s: Engine, e: Any) -> None:
    s._request_decision(_Trigger())


@guard("commit_possible")
def _g_commit_possible(s: Engine, e: Any) -> bool:
    return s.in_state("stt_input", "attached") and not s.closed


@guard("commit_needs_final")
def _g_commit_needs_final(s: Engine, e: Any) -> bool:
    # only a real final counts as recent: a preflight may still be revised (D24)
    last = s.last_real_final_time
    return last is None or s.now - last > COMMIT_RECENCY


# ===== actions ====================================================================================


@action("close_session")
def _a_close(s: Engine, e: Any) -> None:
    # whatever is still undelivered once the closing decision settled is dropped ("closed")
    s._later(s._close_leftovers, hops=4)


@action("drop_pending_decision")
def _a_drop_pending(s: Engine, e: Any) -> None:
    # a change to or from manual drops the pending decision and its authority (R9)
    s._fire("decision_dropped", e)


@action("leave_stt")
def _a_leave_stt(s: Engine, e: Any) -> None:
    s._fire("left_stt", e)  # the STT's end-of-speech authority belongs to stt mode


@action("announce_agent_speech")
def _a_announce_agent_speech(s: Engine, e: Any) -> None:
    # a detector stream that becomes effective while the agent speaks hears it started
    if not s._detector_told_agent:
        s._announce_agent()


@action("end_vad_stream")
def _a_end_vad_stream(s: Engine, e: Any) -> None:
    if isinstance(e, ev.Close):
        s._fire("vad_stream_ended", e)
        return

    def ended() -> None:
        s._fire("vad_stream_ended", None)
    s._later(ended, hops=2)


@action("drop_vad_input")
def _a_drop_vad(s: Engine, e: Any) -> None:
    s._emit(out.InputDropped(t=s.now, ref=e.ref, reason="vad_inactive"))


@action("restart_stt")
def _a_restart_stt(s: Engine, e: Any) -> None:
    s.input_started_at = None


@action("drop_stt_input")
def _a_drop_stt(s: Engine, e: Any) -> None:
    s._emit(out.InputDropped(t=s.now, ref=e.ref, reason="stt_inactive"))


@action("note_request_id")
def _a_note_rid(s: Engine, e: Any) -> None:
    rid = getattr(e, "request_id", "")
    if rid and rid not in s.request_ids:
        s.request_ids.append(rid)


@action("to_gate")
def _a_to_gate(s: Engine, e: Any) -> None:
    s._fire("gate", e)


@action("restart_detector")
def _a_restart_detector(s: Engine, e: Any) -> None:
    s._detector_told_agent = False  # a new stream has heard nothing yet


@action("detector_removed")
def _a_detector_removed(s: Engine, e: Any) -> None:
    s._detector_told_agent = False


@action("take_verdict")
def _a_take_verdict(s: Engine, e: ev.OverlapVerdict) -> None:
    s._verdict_interruption = e.is_interruption
    if e.is_interruption:
        s._emit(out.Interruption(t=s.now, ref=e.ref,
                                 detected_at=s.now if e.detected_at is None else e.detected_at,
                                 overlap_started_at=e.overlap_started_at,
                                 probability=e.probability))


@action("drop_detector_input")
def _a_drop_detector(s: Engine, e: Any) -> None:
    s._emit(out.InputDropped(t=s.now, ref=e.ref, reason="detector_inactive"))


@action("agent_restarted")
def _a_agent_restarted(s: Engine, e: ev.AgentSpeechStarted) -> None:
    started = s.now if e.started_at is None else e.started_at
    s._endpointing.on_agent_start(started)
    s.tracker_words, s.tracker_transcript, s.tracker_started_at = 0, "", None


@action("agent_started")
def _a_agent_started(s: Engine, e: ev.AgentSpeechStarted) -> None:
    started = s.now if e.started_at is None else e.started_at
    s._agent_started_at = started
    _a_agent_restarted(s, e)
    if s.adaptive_active:
        s._announce_agent()
        if s.user_speaking:  # the agent starts over ongoing user speech: judge that overlap
            onset = s.speech_start_time if s.speech_start_time is not None else s.now
            s._signal("overlap_speech_started", started_at=onset,
                      speech_duration=max(0.0, s.now - onset))
            s._fire("agent_over_user", e)


@action("agent_ended")
def _a_agent_ended(s: Engine, e: ev.AgentSpeechEnded) -> None:
    s._endpointing.on_agent_end(s.now)
    if s.in_state("overlap", "open"):  # close the overlap before the agent-ended marker
        s._signal("overlap_speech_ended", ended_at=s.now)
    if s._detector_told_agent:  # the stream that heard "started" hears "ended"
        s._signal("agent_speech_ended")
        s._detector_told_agent = False
    if not s.adaptive_active:
        s._window = None
        return
    until = s.now if e.ignore_user_transcript_until is None else e.ignore_user_transcript_until
    end_cooldown = s._boundary[1] if s._boundary else 0.0
    s._window = until - end_cooldown


@action("arm_boundary")
def _a_arm_boundary(s: Engine, e: Any) -> None:
    assert s._boundary is not None
    s._boundary_epoch += 1
    s._timer(s._boundary[0], "boundary_expired", s._boundary_epoch)


@action("cancel_boundary")
def _a_cancel_boundary(s: Engine, e: Any) -> None:
    s._boundary_epoch += 1


@action("boundary_done")
def _a_boundary_done(s: Engine, e: Any) -> None:
    s._emit(out.BoundaryExpired(t=s.now))


@action("process_stt")
def _a_process_stt(s: Engine, e: ev.SttEvent) -> None:
    s._process_stt(e)


@action("hold_stt")
def _a_hold(s: Engine, e: ev.SttEvent) -> None:
    s.held.append(e)


@action("release_trimmed")
def _a_release_trimmed(s: Engine, e: Any) -> None:
    s._release(s._trim(s._window))
    s._window = None


@action("release_all")
def _a_release_all(s: Engine, e: Any) -> None:
    s._release(s._trim(None))


@action("discard_held")
def _a_discard_held(s: Engine, e: Any) -> None:
    reason = "clear_user_turn" if isinstance(e, ev.ClearUserTurn) else "stream_reset"
    for h in s.held:
        s._drop(h, reason)
    s.held = []


@action("drop_held_at_close")
def _a_drop_held_close(s: Engine, e: Any) -> None:
    for h in s.held:
        s._drop(h, "closed")
    s.held = []


@action("notify_user_start")
def _a_notify_user_start(s: Engine, e: ev.UserSpeechStarted) -> None:
    s._endpointing.on_user_start(s.now if e.started_at is None else e.started_at,
                                 s.agent_speaking)


@action("send_overlap_started")
def _a_send_overlap_started(s: Engine, e: ev.UserSpeechStarted) -> None:
    s._signal("overlap_speech_started",
              started_at=s.now if e.started_at is None else e.started_at,
              speech_duration=e.speech_duration)


@action("notify_user_end")
def _a_notify_user_end(s: Engine, e: ev.UserSpeechEnded) -> None:
    if s.user_speaking:
        ended = s.now if e.ended_at is None else e.ended_at
        ignore = e.interruption is not None and not e.interruption and s.agent_speaking
        s._endpointing.on_user_end(ended, ignore)


@action("send_overlap_ended")
def _a_send_overlap_ended(s: Engine, e: Any) -> None:
    ended = getattr(e, "ended_at", None)
    s._signal("overlap_speech_ended", ended_at=s.now if ended is None else ended)


@action("capture_onset")
def _a_capture_onset(s: Engine, e: ev.VadStartOfSpeech) -> None:
    s.speech_start_time = s.now - e.speech_duration - e.inference_duration


def _feedback_start(s: Engine, started_at: float, speech_duration: float) -> None:
    if s.options.speech_feedback:
        s._fire("user_started", ev.UserSpeechStarted(t=s.now, started_at=started_at,
                                                      speech_duration=speech_duration))
    s._verdict_interruption = False


def _feedback_end(s: Engine, ended_at: float) -> None:
    if s.options.speech_feedback:
        interruption = s._verdict_interruption if not s.in_state("detector", "detached") else None
        s._fire("user_ended", ev.UserSpeechEnded(t=s.now, ended_at=ended_at,
                                                  interruption=interruption))


@action("report_vad_start")
def _a_report_vad_start(s: Engine, e: ev.VadStartOfSpeech) -> None:
    s.promoted = None  # new speech: a final from now on is new words, never a duplicate
    onset = s.now - e.speech_duration - e.inference_duration
    s._ensure_span(onset)
    s._emit(out.StartOfSpeech(t=s.now, ref=e.ref, speech_start_time=onset))
    _feedback_start(s, onset, e.speech_duration)


@action("report_vad_end")
def _a_report_vad_end(s: Engine, e: ev.VadEndOfSpeech) -> None:
    s._ensure_span()
    s._emit(out.EndOfSpeech(t=s.now, ref=e.ref))
    _feedback_end(s, s.now - e.silence_duration - e.inference_duration)


@action("report_stream_end")
def _a_report_stream_end(s: Engine, e: Any) -> None:
    s._ensure_span()
    s._emit(out.EndOfSpeech(t=s.now, ref=None))
    _feedback_end(s, s.now)


@action("report_stt_start")
def _a_report_stt_start(s: Engine, e: ev.SttStartOfSpeech) -> None:
    s.promoted = None
    if s.speech_start_time is None:
        s.speech_start_time = e.speech_start_time if e.speech_start_time else s.now
    s._ensure_span(s.speech_start_time)
    s._emit(out.StartOfSpeech(t=s.now, ref=None, speech_start_time=s.speech_start_time))
    _feedback_start(s, s.speech_start_time, 0.0)
    s.last_speaking_time = s.now


@action("report_stt_end")
def _a_report_stt_end(s: Engine, e: Any) -> None:
    s._ensure_span()
    s._emit(out.EndOfSpeech(t=s.now, ref=None))
    _feedback_end(s, s.now)
    if s.in_state("vad_input", "attached"):
        _a_end_vad_stream(s, None)  # restart the VAD stream (its segment is closed above)
    if s.in_state("vad_input", "detached") or s.last_speaking_time is None:
        s.last_speaking_time = s.now


@action("cancel_wait")
def _a_cancel_wait(s: Engine, e: Any) -> None:
    s._wait = None


@action("open_turn")
def _a_open_turn(s: Engine, e: Any) -> None:
    # the turn starts at the known onset of its speech (unknown onset: metrics stay absent)
    if s.user_turn_start is None and s.speech_start_time is not None:
        s.user_turn_start = s.speech_start_time


@action("clear_turn")
def _a_clear_turn(s: Engine, e: Any) -> None:
    s._drop_turn("clear_user_turn")
    _commit_abandoned(s)
    s.transcript = s.interim = s.preflight = ""
    s.promoted = None
    s.confidences = []
    s.last_final_time = None
    s.last_real_final_time = None
    s.speech_start_time = None
    s.last_speaking_time = None
    s.span_open = False
    s.user_turn_start = None
    s.request_ids = []
    s.skip_reply_sticky = False
    s.tracker_words, s.tracker_transcript, s.tracker_started_at = 0, "", None
    if s.in_state("stt_input", "attached"):
        s.input_started_at = None  # a fresh STT stream has a new time origin
    if s.user_speaking:  # speech that goes on after a clear starts a new turn now
        s.speech_start_time = s.now
        s._ensure_span(s.now)


@action("start_wait")
def _a_start_wait(s: Engine, trig: _Trigger) -> None:
    skip = trig.skip_reply or s.skip_reply_sticky
    wid = next(s._wait_ids)
    s._wait = _Wait(wid, s.last_speaking_time, s.last_final_time, s.user_turn_start, skip,
                    trig.manual)
    s._later(lambda: s._wait_first_step(wid))


@action("arm_deadline")
def _a_arm_deadline(s: Engine, e: ev.EouModelAnswered) -> None:
    w = s._wait
    assert w is not None
    delay = w.min_delay
    if (e.supported and not e.failed and e.threshold is not None and e.probability is not None
            and e.probability < e.threshold):
        delay = s._endpointing.max_delay
    s._arm(w, delay, direct=False)


@action("wait_due_now")
def _a_wait_due_now(s: Engine, e: Any) -> None:
    if s._wait is not None:
        wid = s._wait.wait_id
        s._later(lambda: s._due_if_current(wid))


@action("deliver_end_of_turn")
def _a_deliver(s: Engine, e: Any) -> None:
    w = s._wait
    assert w is not None
    started = stopped = tdelay = eou_delay = None
    if (w.last_final is not None and w.anchor is not None and w.turn_start is not None
            and w.turn_start <= w.anchor <= s.now):
        started, stopped = w.turn_start, w.anchor
        tdelay = max(w.last_final - w.anchor, 0.0)
        eou_delay = s.now - w.anchor
    s._emit(out.EndOfTurn(t=s.now, new_transcript=s.transcript,
                          transcript_confidence=s._mean_confidence(), skip_reply=w.skip_reply,
                          started_speaking_at=started, stopped_speaking_at=stopped,
                          transcription_delay=tdelay, end_of_turn_delay=eou_delay))
    _commit_delivered(s, s.transcript)
    s._awaiting_answer = True


@action("accept_turn")
def _a_accept(s: Engine, e: Any) -> None:
    w = s._wait
    assert w is not None
    s.span_open = False
    s.user_turn_start = None
    s.request_ids = []
    s.transcript = ""
    s.confidences = []
    s.last_final_time = None
    s.last_real_final_time = None
    s.interim = ""
    s.preflight = ""
    s.skip_reply_sticky = False
    s.turn_finals = []
    if s.last_speaking_time == w.anchor:
        s.speech_start_time = None
        s.last_speaking_time = None
    s._wait = None


@action("refuse_turn")
def _a_refuse(s: Engine, e: Any) -> None:
    s._wait = None
    if s.closed:
        s._drop_turn("closed")


@action("commit_refused")
def _a_commit_refused(s: Engine, e: ev.CommitUserTurn) -> None:
    s._emit(out.CommitResult(t=s.now, ref=e.ref, status="ok", transcript=""))


def _cancel_commit(s: Engine) -> None:
    old = s._commit
    if old is None or old.resolved:
        return
    old.resolved = True

    def cancelled() -> None:
        s._emit(out.CommitResult(t=s.now, ref=old.ref, status="cancelled"))
    s._later(cancelled, hops=3)


@action("supersede_commit")
def _a_supersede(s: Engine, e: ev.CommitUserTurn) -> None:
    _cancel_commit(s)
    s._commit = _Commit(next(s._commit_ids), e.ref, e.skip_reply)


@action("await_final")
def _a_await_final(s: Engine, e: ev.CommitUserTurn) -> None:
    c = s._commit
    assert c is not None
    if e.audio_detached and s.sample_rate:
        frames = max(0, math.ceil(e.stt_flush_duration / FLUSH_FRAME))
        if frames:
            s._emit(out.AudioFlushRequested(t=s.now, frames=frames, frame_duration=FLUSH_FRAME))
            if s.input_started_at is None:
                s.input_started_at = s.now - FLUSH_FRAME
    s._timer(max(0.0, e.transcript_timeout), "commit_timeout", c.cid)


def _finalize(s: Engine) -> None:
    c = s._commit
    if c is None or c.resolved or c.finalized:
        return
    if s.interim:
        # no final came: the latest interim becomes a final of the turn, processed as one
        text = s.interim
        s._emit(out.Transcript(t=s.now, ref=None, type="final", text=text,
                               language=s.interim_language, confidence=s.interim_confidence,
                               start_time=0.0, end_time=0.0, speaking=s._speaking_flag()))
        s._update_language(s.interim_language, text)
        s._accept_final(None, text, s.interim_confidence)
        if s.in_state("vad_input", "detached") or s.last_speaking_time is None:
            s.last_speaking_time = s.now
        s.promoted = text
        s.interim = ""
        s.preflight = ""
        s._check_turn_limit(text)
    result = s.transcript
    s.interim = ""
    if c.skip_reply:
        s.skip_reply_sticky = True
    s._emit(out.ConversationRequested(t=s.now))
    before = s._wait
    s._fire("eou_trigger", _Trigger(skip_reply=c.skip_reply, manual=True))
    c.finalized = True
    if s._wait is not None and s._wait is not before:
        s._fire("committed", None)  # the result is the transcript the decision delivers
        return
    s._fire("commit_done", None)
    c.resolved = True

    def resolved() -> None:
        s._emit(out.CommitResult(t=s.now, ref=c.ref, status="ok", transcript=result))
    s._later(resolved)


def _commit_delivered(s: Engine, transcript: str) -> None:
    c = s._commit
    if c is not None and c.finalized and not c.resolved:
        c.resolved = True
        s._emit(out.CommitResult(t=s.now, ref=c.ref, status="ok", transcript=transcript))


def _commit_abandoned(s: Engine) -> None:
    c = s._commit
    if c is not None and c.finalized and not c.resolved:
        c.resolved = True
        s._emit(out.CommitResult(t=s.now, ref=c.ref, status="cancelled"))


@action("finalize_commit")
def _a_finalize_commit(s: Engine, e: Any) -> None:
    if isinstance(e, ev.CommitUserTurn):
        s._later(lambda: _finalize(s))
    else:
        _finalize(s)


@action("finalize_commit_soon")
def _a_finalize_soon(s: Engine, e: Any) -> None:
    s._later(lambda: _finalize(s), hops=3)

