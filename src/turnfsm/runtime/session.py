"""The asyncio shell: one :class:`Session` per conversation around one engine.

The session is the only place where asyncio meets the engine. Inputs arrive through push
methods (or async iterables given to :meth:`Session.run`) and are stamped with *session
time* (the loop's monotonic clock since the session started) unless they carry a time. Each
input is applied at once: due timers first, then the input, then its outputs are dispatched
in order to the host's hooks and to output iterators, and the requests among them are
performed: the end-of-turn model is asked (with a timeout; a timeout or an error is a model
failure, D20), detector signals go to the detector, flushes to the STT. A hook may push
inputs itself; they are applied at once, in place (the outputs they cause are dispatched
before the rest of the current outputs), exactly as the replayer does.

Time: one ``loop.call_at`` handle per session, re-armed only when the next deadline (of the
engine, or of the session's own timers through the host :class:`~turnfsm.host.Scheduler`)
changes, as aioquic does with ``get_timer()``/``handle_timer()``.

Failures: a hook that raises is logged with the session id, the output and the traceback,
and the session goes on (an ``on_end_of_turn`` that raises refuses the turn, so nothing is
lost). A model that fails or times out is a model failure. An engine failure
(:class:`~turnfsm.errors.EngineFailed`) closes the session: it is reported to ``on_error``,
raised by the call that caused it, and raised again (as :class:`SessionClosed`) by every
later call. :meth:`Session.aclose` closes the conversation: the engine settles the pending
turn (R4: a running wait ends at once; what nothing will deliver is dropped with a record),
every commit awaitable is settled, no hook runs afterwards (I20), and no task the session
made is left pending.
"""

from __future__ import annotations

import asyncio
import inspect
import itertools
import logging
import math
import time
from collections.abc import AsyncIterable, Awaitable, Callable, Iterable, Mapping
from typing import Any, TypeVar

from .. import events as ev
from .. import outputs as out
from ..chart import Chart
from ..core import Engine, StepObserver
from ..core.profiles import Profile
from ..errors import ConfigError, EngineFailed, TurnFsmError
from ..host import Scheduler
from ..options import EngineOptions
from .inputs import Inputs
from .model import RuleBasedModel
from .protocols import HOOK_NAMES, EouModel, InterruptionDetector, SttControl
from .requests import ask_model

log = logging.getLogger("turnfsm.runtime")
_ids = itertools.count(1)
E = TypeVar("E", bound=ev.Input)
HostItem = Callable[[], None]


class SessionClosed(TurnFsmError):
    """The session is closed (by :meth:`Session.aclose` or after an engine failure)."""


class CommitCancelled(TurnFsmError):
    """A commit's decision was dropped before delivery (a clear, a mode change, close)."""


class Session(Inputs):
    """One conversation's turn-taking, in asyncio. Create it inside a running loop."""

    def __init__(self, options: EngineOptions | Mapping[str, Any] | None = None, *,
                 profile: str | Profile | None = None, chart: Chart | None = None,
                 hooks: object | None = None, model: EouModel | None = None,
                 detector: InterruptionDetector | None = None, stt: SttControl | None = None,
                 model_timeout: float = 2.0, session_id: str | None = None,
                 conversation_id: str | None = None, tracer_provider: Any = None,
                 telemetry: bool = True, time_origin_ns: int | None = None,
                 observers: Iterable[StepObserver] = ()) -> None:
        self.loop = asyncio.get_running_loop()
        self.engine = Engine(options, profile=profile, chart=chart)
        self.options = self.engine.options
        self.scheduler: Scheduler[HostItem] = Scheduler(self.engine)
        self.hooks = hooks
        self.model: EouModel = model if model is not None else RuleBasedModel()
        self.detector = detector
        self.stt = stt
        if isinstance(model_timeout, bool) or not isinstance(model_timeout, (int, float)) or \
                not (model_timeout > 0 and math.isfinite(model_timeout)):
            raise ConfigError(f"model_timeout must be a positive number of seconds, not "
                              f"{model_timeout!r}")
        self.model_timeout = model_timeout
        self.session_id = session_id or f"session-{next(_ids)}"
        self.conversation_id = conversation_id
        self._t0 = self.loop.time()
        self._handle: asyncio.TimerHandle | None = None
        self._armed_for: float | None = None
        self._tasks: set[asyncio.Task[Any]] = set()
        self._counted: set[asyncio.Task[Any]] = set()  # tasks settle() waits for
        self._busy = 0  # counted tasks running (not parked on session time)
        self._commits: dict[Any, asyncio.Future[str]] = {}
        self._commit_ids = itertools.count(1)
        self._subscribers: list[asyncio.Queue[out.Output | None]] = []
        self._closing = False
        self._closed = False
        self._driving = False
        self._progress = asyncio.Event()  # set whenever outputs are dispatched
        self._failure: BaseException | None = None
        self.spans: Any = None
        for fn in observers:
            self.engine.add_observer(fn)
        if telemetry:
            from ..telemetry import SpanObserver
            # span times: the wall clock at the session's start plus session time
            origin = time.time_ns() if time_origin_ns is None else time_origin_ns
            self.spans = SpanObserver(tracer_provider, conversation_id=conversation_id,
                                      time_origin_ns=origin)
            self.engine.add_observer(self.spans)

    # -- time --------------------------------------------------------------------------------

    def now(self) -> float:
        """Session time: seconds since the session started (the loop's monotonic clock)."""
        return round(self.loop.time() - self._t0, 6)

    def call_at(self, t: float, fn: HostItem) -> None:
        """Run ``fn`` at session time ``t``, in order with the engine's deadlines."""
        self.scheduler.call_at(t, fn)
        self._rearm()

    async def sleep_until(self, t: float) -> None:
        """Sleep until session time ``t``, ordered with the engine's deadlines (a task that
        sleeps here counts as idle for :meth:`settle`)."""
        fut: asyncio.Future[None] = self.loop.create_future()
        parked = asyncio.current_task() in self._counted
        woken = False

        def wake() -> None:
            nonlocal woken
            if not fut.done():
                fut.set_result(None)
                woken = True
                self._busy += parked  # runnable again: settle() waits for it from now
        self.call_at(t, wake)
        self._busy -= parked
        try:
            await fut
        finally:
            if not woken:
                self._busy += parked

    async def sleep(self, delay: float) -> None:
        """Sleep ``delay`` seconds of session time (see :meth:`sleep_until`)."""
        await self.sleep_until(self.engine.now + max(0.0, delay))

    async def settle(self, max_rounds: int = 10_000) -> None:
        """Yield until every task the session runs has finished or sleeps on session time."""
        for _ in range(max_rounds):
            if self._busy <= 0:
                return
            await asyncio.sleep(0)

    async def advance_to(self, t: float, *,
                         on_due: Callable[[float], None] | None = None) -> None:
        """For virtual-time drivers (replays, tests): fire every deadline up to session time
        ``t`` in order, letting the tasks each one wakes finish before the next, so ties
        resolve exactly as in a direct replay. The loop's clock must be virtual."""
        self._driving = True
        self._rearm()  # disarm: this loop fires the deadlines
        try:
            while not self._closed:
                n = self.scheduler.next_due()
                if n is None or n[0] > t:
                    break
                d, is_engine = n
                wait = self._t0 + d - self.loop.time()
                if wait > 0:
                    await asyncio.sleep(wait)
                    continue  # look again: the sleep may have let tasks add timers
                if on_due is not None:
                    on_due(d)
                if is_engine:
                    try:
                        self._dispatch(self.engine.fire_next_timer())
                    except EngineFailed as exc:
                        self._fail(exc)
                        raise
                else:
                    self.scheduler.pop_host()()
                await self.settle()
            wait = self._t0 + t - self.loop.time()
            if wait > 0 and not self._closed:
                await asyncio.sleep(wait)
        finally:
            self._driving = False
            self._rearm()

    def _rearm(self) -> None:
        if self._closed:
            return
        if self._driving:  # advance_to fires deadlines itself
            if self._handle is not None:
                self._handle.cancel()
            self._handle, self._armed_for = None, None
            return
        d = self.scheduler.next_deadline()
        if d == self._armed_for:
            return
        if self._handle is not None:
            self._handle.cancel()
            self._handle = None
        self._armed_for = d
        if d is not None:
            self._handle = self.loop.call_at(self._t0 + d, self._on_timer, d)

    def _on_timer(self, deadline: float) -> None:
        self._handle = None
        self._armed_for = None
        if self._closed or self._driving:
            return
        try:
            self._run_due(max(deadline, self.now()))
        except (SessionClosed, EngineFailed):
            return
        self._rearm()

    def _run_due(self, t: float) -> None:
        try:
            self.scheduler.run_until(t, self._dispatch, lambda fn: fn())
        except EngineFailed as exc:
            self._fail(exc)
            raise

    # -- inputs ------------------------------------------------------------------------------

    def push(self, e: E) -> E:
        """Apply an input now (stamped with session time if it has none); return it."""
        if self._failure is not None:
            raise SessionClosed(f"{self.session_id} failed: {self._failure}") from self._failure
        if self._closed or (self._closing and not isinstance(e, ev.Close | ev.EouModelAnswered
                                                            | ev.EndOfTurnAnswered)):
            raise SessionClosed(f"{self.session_id} is closed")
        engine = self.engine
        if not ev.stamped(e.t):
            e = ev.with_time(e, max(self.now(), engine.input_clock))
        # A VAD window (nine inputs in ten) before the armed deadline has nothing due before
        # it, and unless it took the engine's full path (a step was counted) it moved no timer.
        window = (type(e) is ev.VadInferenceDone and not self._driving
                  and (self._armed_for is None or e.t < self._armed_for))
        if not window:
            self._run_due(e.t)
        step = engine.steps
        try:
            outs = engine.handle(e)
        except EngineFailed as exc:
            self._fail(exc)
            raise
        if outs:
            self._dispatch(outs)
        if not window or engine.steps != step:
            self._rearm()
        return e

    def commit_user_turn(self, *, transcript_timeout: float = 2.0,
                         stt_flush_duration: float = 2.0, skip_reply: bool = False,
                         audio_detached: bool = False) -> asyncio.Future[str]:
        """End the user turn now (push-to-talk). The awaitable resolves to the committed
        transcript when its decision is delivered, or raises :class:`CommitCancelled`."""
        ref = ("commit", next(self._commit_ids))
        fut: asyncio.Future[str] = self.loop.create_future()
        fut.add_done_callback(_retrieve)
        self._commits[ref] = fut
        try:
            self.push(ev.CommitUserTurn(ref=ref, transcript_timeout=transcript_timeout,
                                        stt_flush_duration=stt_flush_duration,
                                        skip_reply=skip_reply, audio_detached=audio_detached))
        except BaseException:
            self._commits.pop(ref, None)
            fut.cancel()
            raise
        return fut

    # -- outputs -----------------------------------------------------------------------------

    async def outputs(self) -> AsyncIterable[out.Output]:
        """Every output from now on, in order, until the session closes."""
        q: asyncio.Queue[out.Output | None] = asyncio.Queue()
        self._subscribers.append(q)
        try:
            while True:
                o = await q.get()
                if o is None:
                    return
                yield o
        finally:
            if q in self._subscribers:
                self._subscribers.remove(q)

    def _dispatch(self, outs: list[out.Output]) -> None:
        if outs:
            self._progress.set()
        for o in outs:
            if self._closed:
                return  # nothing reaches the host after close completes (I20)
            for q in self._subscribers:
                q.put_nowait(o)
            if isinstance(o, out.EouModelRequest):
                self._spawn(ask_model(self, o))
            elif isinstance(o, out.DetectorSignal):
                if self.detector is not None:
                    self._call(self.detector.signal, o, what="detector")
            elif isinstance(o, out.AudioFlushRequested):
                if self.stt is not None:
                    self._call(self.stt.flush, o.frames, o.frame_duration, what="stt flush")
            elif isinstance(o, out.CommitResult):
                self._settle_commit(o)
            self._call_hook("on_output", o)
            name = HOOK_NAMES.get(type(o))
            if name == "on_end_of_turn":
                self._end_of_turn(o)  # type: ignore[arg-type]
            elif name is not None:
                self._call_hook(name, o)

    def _end_of_turn(self, o: out.EndOfTurn) -> None:
        fn = getattr(self.hooks, "on_end_of_turn", None)
        if fn is None:
            self._answer(o, True)
            return
        try:
            r = fn(o)
        except Exception:
            log.exception("%s: hook on_end_of_turn raised on %r; the turn is refused (kept)",
                          self.session_id, o)
            self._answer(o, False)
            return
        if not inspect.isawaitable(r):
            self._answer(o, bool(r))
            return

        async def later(aw: Awaitable[Any]) -> None:
            try:
                accepted = bool(await aw)
            except Exception:
                log.exception("%s: hook on_end_of_turn raised on %r; the turn is refused "
                              "(kept)", self.session_id, o)
                accepted = False
            if not self._closed:
                self._answer(o, accepted)
        self._spawn(later(r))

    def _answer(self, o: out.EndOfTurn, accepted: bool) -> None:
        if self._closed or not self.engine.awaiting_answer:
            return
        try:
            outs = self.engine.handle(ev.EndOfTurnAnswered(t=max(o.t, self.engine.input_clock),
                                                           accepted=accepted))
        except EngineFailed as exc:
            self._fail(exc)
            return
        self._dispatch(outs)
        self._rearm()

    def _call_hook(self, name: str, o: out.Output) -> None:
        fn = getattr(self.hooks, name, None)
        if fn is not None:
            self._call(fn, o, what=f"hook {name}")

    def _call(self, fn: Callable[..., Any], *args: Any, what: str) -> None:
        try:
            r = fn(*args)
        except Exception:
            log.exception("%s: %s raised on %r", self.session_id, what, args[0])
            return
        if inspect.isawaitable(r):
            async def wait(aw: Awaitable[Any]) -> None:
                try:
                    await aw
                except Exception:
                    log.exception("%s: %s raised on %r", self.session_id, what, args[0])
            self._spawn(wait(r))

    def _settle_commit(self, o: out.CommitResult) -> None:
        fut = self._commits.pop(o.ref, None)
        if fut is None or fut.done():
            return
        if o.status == "ok":
            fut.set_result(o.transcript or "")
        else:
            fut.set_exception(CommitCancelled(f"commit {o.ref} was cancelled"))

    def feed_answer(self, a: ev.EouModelAnswered) -> None:
        """Give the engine a model's answer (it responds to a request in progress: it does
        not wait for due timers)."""
        self._feed_answer(a)

    def _feed_answer(self, a: ev.EouModelAnswered) -> None:
        # an answer responds to a request in progress: it does not wait for due timers
        if self._closed:
            return
        try:
            outs = self.engine.handle(a)
        except EngineFailed as exc:
            self._fail(exc)
            return
        self._dispatch(outs)
        self._rearm()

    # -- tasks, failure, close ---------------------------------------------------------------

    def _spawn(self, coro: Any, *, counted: bool = True) -> asyncio.Task[Any]:
        async def run() -> Any:
            try:
                return await coro
            finally:
                if counted:
                    self._busy -= 1
        if counted:
            self._busy += 1
        task = self.loop.create_task(run())
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        if counted:
            self._counted.add(task)
            task.add_done_callback(self._counted.discard)
        return task

    def _fail(self, exc: BaseException) -> None:
        if self._failure is not None:
            return
        self._failure = exc
        log.error("%s: the engine failed; the session closes: %s", self.session_id, exc)
        fn = getattr(self.hooks, "on_error", None)
        if fn is not None:
            self._call(fn, exc, what="hook on_error")
        self._finish(CommitCancelled(f"the session failed: {exc}"))

    def _finish(self, why: BaseException) -> None:
        self._closed = True
        if self._handle is not None:
            self._handle.cancel()
            self._handle = None
        for fut in self._commits.values():
            if not fut.done():
                fut.set_exception(CommitCancelled(str(why)))
        self._commits.clear()
        for q in self._subscribers:
            q.put_nowait(None)
        current = asyncio.current_task()
        for task in list(self._tasks):
            if task is not current:
                task.cancel()

    @property
    def closed(self) -> bool:
        """The session is closed."""
        return self._closed

    async def aclose(self) -> None:
        """Close the conversation: let the engine settle the pending turn (a model answer in
        flight is awaited, up to the model timeout), settle every commit, then stop."""
        if self._closed or self._closing:
            await self._drain_tasks()
            return
        self._closing = True
        try:
            if not self.engine.closed:
                self.push(ev.Close(t=max(self.now(), self.engine.input_clock)))
            deadline = self.loop.time() + self.model_timeout
            while (self.engine.in_state("turn", "predicting") or self.engine.awaiting_answer
                   or self.scheduler.next_deadline() is not None) and not self._closed:
                left = deadline - self.loop.time()
                if left <= 0:
                    break
                self._progress.clear()
                try:
                    async with asyncio.timeout(left):
                        await self._progress.wait()
                except TimeoutError:
                    break
        except (SessionClosed, EngineFailed):
            pass
        finally:
            self._finish(SessionClosed(f"{self.session_id} closed"))
            await self._drain_tasks()

    async def _drain_tasks(self) -> None:
        current = asyncio.current_task()
        pending = [t for t in self._tasks if t is not current]
        for t in pending:
            t.cancel()
        if pending:
            await asyncio.gather(*pending, return_exceptions=True)

    async def __aenter__(self) -> Session:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()


def _retrieve(fut: asyncio.Future[Any]) -> None:
    if not fut.cancelled():
        fut.exception()  # the caller may never await it: no "never retrieved" noise


