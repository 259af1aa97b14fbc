"""The engine facade: one session's turn-taking, pure (no I/O, no asyncio, no clock reads).

Theory of operation
===================

The engine decides who holds the floor between a user and a voice agent. A host feeds it
timestamped input events (:mod:`turnfsm.events`) with :meth:`Engine.handle`, tells it that
time passed with :meth:`Engine.advance` (or fires one timer with
:meth:`Engine.fire_next_timer`), and receives outputs (:mod:`turnfsm.outputs`): decisions
(end of turn, preemptive generation, interruption), observations (speech start/end,
transcripts) and requests (ask the end-of-turn model, flush the STT, control signals for the
interruption detector). Answers to requests come back as input events
(``EouModelAnswered``, ``EndOfTurnAnswered``).

Control state lives in the chart, ``states.yaml``: parallel regions, each in exactly one
state (lifecycle, mode, the VAD/STT/detector streams, agent speech, the backchannel
boundary, the hold gate, the overlap being judged, the VAD segment, user speech, the turn
and its decision, who committed it, a pending commit). An event is offered to every region
in chart order (:mod:`turnfsm.core.dispatch`); the guards and actions it names are the
rules in :mod:`turnfsm.core.rules`, which see only a :class:`~turnfsm.core.context.Context`.
Data that does not change which inputs are legal lives in records
(:mod:`turnfsm.core.records`). VAD inference windows (~90% of all events) and audio are
data events, handled before the machine.

**Steps.** Each ``handle``/``fire_next_timer`` call is one atomic step: the input (or
timer), the internal events it causes (nested, and those it queues: ``after: N`` in the
chart), and, for an ``EndOfTurnAnswered``, the inputs that queued while the answer was
awaited. A step either completes or fails closed: on an exception inside it, its outputs are
discarded, the engine enters its terminal error state, and this and every later call raises
:class:`~turnfsm.errors.EngineFailed` (as h11 does). Bad input is refused before anything
changes (:class:`~turnfsm.errors.InputError`, :class:`~turnfsm.errors.ConfigError`) and does
not fail the engine. Observers (:meth:`Engine.add_observer`) receive one frozen
:class:`StepRecord` per step; with none registered, records are not built.

**Time** is an input: every event carries ``t`` and must not go back (nor before an
``advance``). Timers are deadlines kept here (:meth:`next_deadline`), fired in (deadline,
arming order); a host merges them with its own timers through
:class:`turnfsm.host.Scheduler`.

**The answer inbox.** Between an ``EndOfTurn`` and its ``EndOfTurnAnswered`` the engine
processes nothing: inputs queue (with their staged option changes) and run, in order, in the
answer's step. The inbox holds at most :data:`MAX_INBOX` inputs; past that ``handle``
refuses input (InputError) until the host answers.
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Callable, Mapping
from typing import Any, Literal

import attrs

from .. import events as ev
from .. import outputs as out
from .._methods import attrs_eq, attrs_hash, attrs_repr
from ..chart import Chart
from ..errors import ChartError, ConfigError, EngineFailed, InputError, TurnFsmError
from ..options import EngineOptions
from . import rules as _rules  # noqa: F401  (registers every guard and action)
from .context import Context
from .dispatch import DispatchObserver, TableDispatcher, compiled
from .profiles import Profile, get_profile
from .registry import RULES
from .rules import session, streams
from .timers import Timer
from .validate import check_input

MAX_INBOX = 100_000
Backend = Literal["table", "transitions"]


def derive_routing() -> tuple[dict[type, str], dict[type, tuple[str, str]]]:
    """The engine's routing from the input classes: class -> the chart event it raises, and
    switch class -> (on, off) by its ``enabled`` field (:mod:`turnfsm.events` metadata)."""
    classes = ev.input_classes()
    return ({c: c.chart_event for c in classes if c.chart_event is not None},
            {c: c.chart_events for c in classes if c.chart_events is not None})


#: input class -> chart event; switch class -> (on, off): from the classes
_INPUT_EVENT, _SWITCH_EVENT = derive_routing()
_ANSWERS = (ev.EouModelAnswered, ev.EndOfTurnAnswered)
_NUM = (float, int)
_MAX = ev.MAX_NUMBER


@attrs.frozen(repr=False, eq=False)
class StepRecord:
    """What one engine step did: for observers (timelines, telemetry, plots)."""

    __repr__ = attrs_repr
    __eq__ = attrs_eq
    __hash__ = attrs_hash

    index: int
    t: float  # session time at the end of the step
    input: ev.Input | None  # the input processed (None when a timer fired)
    timer: Timer | None  # the timer fired (None for an input)
    released: tuple[ev.Input, ...]  # inputs queued during an answer wait, run in this step
    moved: tuple[tuple[str, str, str], ...]  # (region, from, to) of every region that moved
    armed: tuple[Timer, ...]
    cancelled: tuple[Timer, ...]
    outputs: tuple[out.Output, ...]
    state: tuple[tuple[str, str], ...]  # (region, state) of every region after the step


StepObserver = Callable[[StepRecord], None]


class ObserverFailed(TurnFsmError):
    """A step observer raised. The step itself completed: ``outputs`` are its outputs."""

    def __init__(self, message: str, outputs: list[out.Output]) -> None:
        self.outputs = outputs
        super().__init__(message)


def _chart_problems(chart: Chart) -> list[str]:
    problems = RULES.requirements(chart)
    for name in sorted(chart.guard_names - set(RULES.guards)):
        problems.append(f"{chart.source}: guard {name!r} is not registered")
    for name in sorted(chart.action_names - set(RULES.actions)):
        problems.append(f"{chart.source}: action {name!r} is not registered")
    return problems


class Engine:
    """One conversation's turn-taking state. Not thread-safe; cheap to create."""

    def __init__(self, options: EngineOptions | Mapping[str, Any] | None = None, *,
                 profile: str | Profile | None = None, chart: Chart | None = None,
                 backend: Backend = "table") -> None:
        prof = get_profile(profile)
        if options is None or isinstance(options, Mapping):
            options = prof.options(options)
        elif not isinstance(options, EngineOptions):
            raise ConfigError(f"options must be EngineOptions or a mapping, not {options!r}")
        self.profile = prof
        if chart is None:
            chart = prof.chart
        else:
            problems = _chart_problems(chart)
            if problems:
                raise ChartError(problems, chart.source)
        if backend not in ("table", "transitions"):
            raise ConfigError(f"backend must be 'table' or 'transitions', not {backend!r}")
        c = compiled(chart)
        self.chart = chart
        self.cx = cx = Context(chart, options, c.regions, c.states, c.initial)
        if backend == "transitions":
            from .machines import TransitionsDispatcher
            cx.dispatcher = TransitionsDispatcher(chart, c, cx)
        else:
            cx.dispatcher = TableDispatcher(c)
        # the initial configuration: the chart's initial states, then its transitions on
        # `start` (guarded by the options in force), which emit and raise nothing
        cx.fire("start")
        if cx.out or cx.queue:
            raise ChartError([f"{chart.source}: the start step emitted or raised something "
                              f"({cx.out or list(cx.queue)}); it must only set the initial "
                              "configuration"], chart.source)
        self._projected = options  # the options once every queued change applies
        self._inbox: deque[tuple[ev.Input, EngineOptions | None]] = deque()
        self._last_input_t = -math.inf
        self._failed: EngineFailed | None = None
        self._observers: list[StepObserver] = []
        self._watch: list[tuple[StepObserver, bool]] = []
        self._window_observers = 0  # observers that asked for VAD window steps too
        self._r_life, self._st_closed = cx.index("lifecycle", "closed")

    # -- queries -----------------------------------------------------------------------------

    @property
    def options(self) -> EngineOptions:
        """The options in force (changed by ``UpdateOptions``)."""
        return self.cx.options

    @property
    def now(self) -> float:
        """Session time: the latest input or timer."""
        return self.cx.now

    @property
    def input_clock(self) -> float:
        """The time the next input must not precede (the latest input or ``advance``)."""
        return self._last_input_t

    @property
    def steps(self) -> int:
        """How many steps have run (a timer records the step that armed it)."""
        return self.cx.step

    @property
    def failed(self) -> EngineFailed | None:
        """The failure that put the engine in its terminal error state, if any."""
        return self._failed

    def state(self) -> dict[str, str]:
        """The current state of every region."""
        cx = self.cx
        return {r: cx.states[i][cx.s[i]] for i, r in enumerate(cx.regions)}

    def in_state(self, region: str, state: str) -> bool:
        """Whether ``region`` is in ``state``."""
        return self.cx.in_state(region, state)

    @property
    def current_transcript(self) -> str:
        """Accumulated finals plus the latest interim (what the user has said this turn)."""
        return self.cx.turn.current_transcript()

    @property
    def closed(self) -> bool:
        """The session is closed."""
        return self.cx.closed

    @property
    def awaiting_answer(self) -> bool:
        """An ``EndOfTurn`` was emitted and its ``EndOfTurnAnswered`` is awaited (the turn
        region is ``delivering``)."""
        return self.cx.awaiting_answer

    @property
    def model_request_outstanding(self) -> bool:
        """An ``EouModelRequest`` was emitted and still waits for its answer (whatever its
        id): the end-of-turn decision hangs on the model."""
        return self.cx.in_state("turn", "predicting")

    def model_request_pending(self, request_id: int) -> bool:
        """Whether an ``EouModelRequest`` with this id still waits for its answer."""
        w = self.cx.wait
        return w is not None and w.wait_id == request_id and self.cx.in_state("turn", "predicting")

    def next_timer(self) -> Timer | None:
        """The earliest live timer, or None."""
        return self.cx.timers.first(self.cx.timer_live)

    def next_deadline(self) -> float | None:
        """The earliest pending timer deadline, or None."""
        t = self.cx.timers.first(self.cx.timer_live)
        return None if t is None else t.deadline

    def timers(self) -> list[Timer]:
        """Every live timer, earliest first."""
        return self.cx.timers.pending(self.cx.timer_live)

    # -- observers ---------------------------------------------------------------------------

    def add_observer(self, fn: StepObserver, *, vad_windows: bool = False) -> None:
        """Call ``fn`` with the :class:`StepRecord` of every later step. VAD inference
        windows (most inputs; they change no state) are steps only for observers that ask
        for them (``vad_windows=True``); otherwise they stay on the engine's fast path."""
        self._observers.append(fn)
        self._watch.append((fn, vad_windows))
        self._window_observers = sum(w for _f, w in self._watch)

    def remove_observer(self, fn: StepObserver) -> None:
        """Stop calling ``fn``."""
        self._observers.remove(fn)
        for i, (f, _w) in enumerate(self._watch):
            if f == fn:
                del self._watch[i]
                break
        self._window_observers = sum(w for _f, w in self._watch)

    def observe_dispatch(self, fn: DispatchObserver | None) -> None:
        """Call ``fn(region, state, event, fired)`` for every region offered an event."""
        assert self.cx.dispatcher is not None
        self.cx.dispatcher.observer = fn

    # -- steps -------------------------------------------------------------------------------

    def handle(self, e: ev.Input) -> list[out.Output]:
        """Apply one input event; return the outputs it caused, in order."""
        if self._failed is not None:
            self._refuse()
        cx = self.cx
        if type(e) is ev.VadInferenceDone and not cx.awaiting_answer and \
                not self._window_observers:
            return self._vad_window(e)  # ~90% of all events: data only, no dispatch
        staged = self._check(e)
        if cx.awaiting_answer and not isinstance(e, ev.EndOfTurnAnswered):
            if len(self._inbox) >= MAX_INBOX:
                raise InputError(f"{type(e).__name__} at t={e.t}: {MAX_INBOX} inputs wait for "
                                 "the EndOfTurnAnswered of the pending end of turn; answer it")
            self._inbox.append((e, staged))
            self._accept_time(e.t, staged)
            return []
        self._accept_time(e.t, staged)
        snap = self._begin()
        released: list[ev.Input] = []
        current = e
        try:
            self._run(e, staged)
            while self._inbox and not cx.awaiting_answer:
                nxt, nst = self._inbox.popleft()
                released.append(nxt)
                current = nxt
                self._run(nxt, nst)
        except Exception as exc:  # fail closed: the step's outputs are discarded
            self._fail(current, exc, None if current is e else e)
        return self._end(snap, e, None, released)

    def fire_next_timer(self) -> list[out.Output]:
        """Fire the earliest pending timer (and its consequences)."""
        if self._failed is not None:
            self._refuse()
        cx = self.cx
        timer = cx.timers.first(cx.timer_live)
        if timer is None or cx.awaiting_answer:
            return []
        snap = self._begin()
        cx.timers.pop()
        try:
            cx.now = max(cx.now, timer.deadline)
            self._last_input_t = max(self._last_input_t, timer.deadline)
            cx.fire(timer.kind.value)
            cx.run_queue()
        except Exception as exc:
            self._fail(timer, exc)
        return self._end(snap, None, timer, [])

    def advance(self, t: float) -> list[out.Output]:
        """Fire every timer due at or before ``t`` (timers win ties with inputs at ``t``);
        later inputs must not be earlier than ``t``. An ``EndOfTurn`` stops the advance at
        its time: answer it, then advance again."""
        if self._failed is not None:
            self._refuse()
        if isinstance(t, bool) or not isinstance(t, (int, float)) or \
                not -ev.MAX_NUMBER <= t <= ev.MAX_NUMBER:
            raise InputError(f"advance: time must be a finite number of seconds up to "
                             f"{ev.MAX_NUMBER:g}, not {t!r}")
        if t < self._last_input_t:
            raise InputError(f"advance to t={t} goes back in time "
                             f"(last input at {self._last_input_t})")
        outs: list[out.Output] = []
        while True:
            d = self.next_deadline()
            if d is None or d > t or self.cx.awaiting_answer:
                break
            outs += self.fire_next_timer()
        if not self.cx.awaiting_answer:  # stopped early for an answer: time reached the EOT
            self._last_input_t = max(self._last_input_t, t)
        return outs

    # -- internals ---------------------------------------------------------------------------

    def _check(self, e: ev.Input) -> EngineOptions | None:
        """Validate ``e`` (nothing changes on failure); stage an option change."""
        if not isinstance(e, ev.Input):
            raise InputError(f"not an input event: {e!r}")
        t = e.t
        if isinstance(t, float) and t != t:
            raise InputError(f"{type(e).__name__} has no time: give it t=..., or push it "
                             "through a runtime Session, which stamps it")
        if isinstance(t, bool) or not isinstance(t, (int, float)) or \
                not -ev.MAX_NUMBER <= t <= ev.MAX_NUMBER:
            raise InputError(f"{type(e).__name__}.t must be a finite number of seconds up to "
                             f"{ev.MAX_NUMBER:g}, not {t!r}")
        if t < self._last_input_t:
            raise InputError(f"{type(e).__name__} at t={t} goes back in time "
                             f"(last input at {self._last_input_t})")
        check_input(e)
        if isinstance(e, ev.UpdateOptions):
            return session.staged_options(self._projected, e)
        return None

    def _accept_time(self, t: float, staged: EngineOptions | None) -> None:
        self._last_input_t = t
        if staged is not None:
            self._projected = staged

    def _run(self, e: ev.Input, staged: EngineOptions | None) -> None:
        cx = self.cx
        cx.now = max(cx.now, e.t)
        self._apply(e, staged)
        cx.run_queue()

    def _apply(self, e: ev.Input, staged: EngineOptions | None) -> None:
        cx = self.cx
        if cx.closed and not isinstance(e, _ANSWERS):
            return  # a closed session ignores inputs
        kind = type(e)
        name = _INPUT_EVENT.get(kind)
        if name is not None:
            if kind is ev.EndOfTurnAnswered and not cx.awaiting_answer:
                return  # no end of turn awaits it (the turn region leaves delivering on it)
            cx.fire(name, e)
        elif kind in _SWITCH_EVENT:
            on, off = _SWITCH_EVENT[kind]
            cx.fire(on if e.enabled else off, e)  # type: ignore[attr-defined]
        elif kind is ev.VadInferenceDone:
            cx.emit(streams.vad_window(cx, e))  # type: ignore[arg-type]
        elif kind is ev.AudioPushed:
            streams.audio(cx, e)  # type: ignore[arg-type]
        elif kind is ev.UpdateOptions:
            assert staged is not None
            session.apply_options(cx, e, staged)  # type: ignore[arg-type]
        else:  # pragma: no cover - every input class is routed above
            raise InputError(f"no route for input {kind.__name__}")

    def vad_window(self, t: float, raw_accumulated_speech: float, ref: Any = None) -> int:
        """A VAD inference window, without event or output objects (the hot path of hosts
        that forward windows themselves): 1 forwarded, 0 dropped (no VAD attached), -1
        ignored (closed). Checked and applied exactly as ``handle(VadInferenceDone(...))``,
        which it falls back to whenever that path would do more than data."""
        cx = self.cx
        if self._failed is not None or cx.awaiting_answer or self._window_observers:
            outs = self.handle(ev.VadInferenceDone(t=t, ref=ref,
                                                   raw_accumulated_speech=raw_accumulated_speech))
            if not outs:
                return -1
            return 1 if isinstance(outs[0], out.VadInference) else 0
        speech = raw_accumulated_speech
        if (type(speech) not in _NUM or type(t) not in _NUM
                or not (self._last_input_t <= t <= _MAX) or not (-_MAX <= speech <= _MAX)):
            self._vad_window(ev.VadInferenceDone(t=t, ref=ref, raw_accumulated_speech=speech))
        self._last_input_t = t
        if t > cx.now:
            cx.now = t
        s = cx.s
        if s[self._r_life] == self._st_closed:
            return -1
        if s[cx.vad_region] == cx.vad_detached:
            return 0
        if speech > 0.0:  # silence moves nothing: no call on the hot path
            cx.speech_window(speech)
        return 1

    def _vad_window(self, e: ev.VadInferenceDone) -> list[out.Output]:
        cx = self.cx
        t = e.t
        speech = e.raw_accumulated_speech
        # the same checks as handle(), on every number of the window (type first: a
        # comparison with a non-number would raise TypeError; a chained range refuses NaN)
        # the other numbers at once: a sum of magnitudes is NaN, inf or large when one is
        # (a text raises TypeError), and the exact checks then name the field
        try:
            ok = (type(t) in _NUM and type(speech) in _NUM
                  and self._last_input_t <= t <= _MAX and -_MAX <= speech <= _MAX
                  and abs(e.raw_accumulated_silence) + abs(e.speech_duration)
                  + abs(e.probability) <= _MAX and type(e.speaking) is bool)
        except TypeError:
            ok = False
        if not ok:
            self._check(e)  # raises, naming the field, unless a sum was merely large
        self._last_input_t = t
        if t > cx.now:
            cx.now = t
        if cx.s[self._r_life] == self._st_closed:
            return []
        if not cx.options.vad_window_outputs and cx.s[cx.vad_region] != cx.vad_detached:
            if e.raw_accumulated_speech > 0.0:  # as streams.vad_window, without its output
                cx.speech_window(e.raw_accumulated_speech)
            return []
        return [streams.vad_window(cx, e)]

    def _begin(self) -> Any:
        cx = self.cx
        cx.step += 1
        if not self._observers:
            return None
        return list(cx.s), cx.timers.pending(cx.timer_live)

    def _end(self, snap: Any, e: ev.Input | None, timer: Timer | None,
             released: list[ev.Input]) -> list[out.Output]:
        cx = self.cx
        outs, cx.out = cx.out, []
        if snap is None:
            return outs
        before, live_before = snap
        live_after = cx.timers.pending(cx.timer_live)
        after_set = set(live_after)
        record = StepRecord(
            index=cx.step, t=cx.now, input=e, timer=timer, released=tuple(released),
            moved=tuple((cx.regions[i], cx.states[i][b], cx.states[i][a])
                        for i, (b, a) in enumerate(zip(before, cx.s, strict=True)) if a != b),
            armed=tuple(t for t in live_after if t.step == cx.step),
            cancelled=tuple(t for t in live_before if t not in after_set and t is not timer),
            outputs=tuple(outs),
            state=tuple((r, cx.states[i][cx.s[i]]) for i, r in enumerate(cx.regions)))
        for fn in list(self._observers):
            try:
                fn(record)
            except Exception as exc:
                raise ObserverFailed(f"step observer {fn!r} raised {exc!r} on step "
                                     f"{record.index}", outs) from exc
        return outs

    def _fail(self, source: object, exc: Exception, via: ev.Input | None = None) -> None:
        self.cx.out = []
        what = (f"{type(source).__name__} at t={source.t}" if isinstance(source, ev.Input)
                else f"timer {source!r}")
        if via is not None:  # a queued input, released by the answer
            what += (f" (queued while an end of turn awaited its answer, released by "
                     f"{type(via).__name__} at t={via.t})")
        self._failed = EngineFailed(
            f"the engine failed while processing {what}: {type(exc).__name__}: {exc}; its "
            "outputs were discarded and it accepts no more input", input=source)
        raise self._failed from exc

    def _refuse(self) -> None:
        assert self._failed is not None
        raise EngineFailed(f"the engine failed earlier and accepts no more calls "
                           f"({self._failed})", input=self._failed.input) from self._failed
