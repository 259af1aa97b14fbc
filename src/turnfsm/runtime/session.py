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

Collaborators are bounded and isolated: every call of the end-of-turn model shares the
``model_timeout`` and its answers are validated (a timeout, an error or an invalid answer is a
model failure: ``min_delay``, D20); an async hook, detector or STT call gets ``hook_timeout``
seconds. An ``on_end_of_turn`` that raises, is cancelled, or answers something whose truth
cannot be read refuses the turn (it is kept, so nothing is lost); one that does not answer
within ``hook_timeout`` counts as ``on_hook_timeout``: ``"keep"`` (the default: the turn goes
on accumulating and the next end of turn delivers its words again) or ``"take"`` (the turn is
taken: the host got it). Step observers (telemetry included) cannot stop a conversation: one
that raises is logged and the step's outputs are delivered all the same. An engine failure
(:class:`~turnfsm.errors.EngineFailed`) closes the session: it is reported to ``on_error``,
raised by the call that caused it, and raised again (as :class:`SessionClosed`) by every
later call. :meth:`Session.aclose` closes the conversation: the engine settles the pending
turn (R4: a running wait ends at once; what nothing will deliver is dropped with a record),
every commit awaitable is settled, no hook runs afterwards (I20), and no task the session
made is left pending. Close is bounded: a model answer or an end-of-turn answer still missing
after ``model_timeout + hook_timeout`` is given for it (a model failure; ``on_hook_timeout``),
and timers still pending then fire at once, so every queued input is processed and every final
the engine accepted is delivered or reported dropped with its reason.
"""

from __future__ import annotations

import asyncio
import inspect
import itertools
import logging
import math
import time
from collections.abc import AsyncIterable, Awaitable, Callable, Iterable, Mapping
from typing import Any, Literal, TypeVar

from .. import events as ev
from .. import outputs as out
from ..chart import Chart
from ..core import Engine, ObserverFailed, StepObserver, StepRecord
from ..core.profiles import Profile
from ..errors import ConfigError, EngineFailed
from ..host import Scheduler
from ..options import MAX_DURATION, EngineOptions
from .clock import HostItem, SessionClock
from .errors import CommitCancelled as CommitCancelled
from .errors import SessionClosed as SessionClosed
from .inputs import Inputs
from .model import RuleBasedModel
from .protocols import HOOK_NAMES, EouModel, InterruptionDetector, SttControl
from .requests import CallTimedOut, ask_model, bounded

log = logging.getLogger("turnfsm.runtime")
_ids = itertools.count(1)
E = TypeVar("E", bound=ev.Input)
HookTimeout = Literal["keep", "take"]
#: force rounds of a close before it gives up on a collaborator that never settles
_CLOSE_ROUNDS = 1000
#: how many times close cancels a task that ignores its cancellation
_DRAIN_ROUNDS = 4


def _seconds(name: str, v: Any) -> float:
    if isinstance(v, bool) or not isinstance(v, (int, float)) or \
            not (0 < v <= MAX_DURATION and math.isfinite(v)):
        raise ConfigError(f"{name} must be a positive number of seconds up to {MAX_DURATION:g}, "
                          f"not {v!r}")
    return float(v)


class _Isolated:
    """A step observer that cannot stop the conversation: what it raises is logged (the
    first time with its traceback) and counted; the step's outputs go on."""

    def __init__(self, fn: StepObserver, session_id: str) -> None:
        self.fn = fn
        self.session_id = session_id
        self.failures = 0

    def __call__(self, r: StepRecord) -> None:
        try:
            self.fn(r)
        except Exception:
            self.failures += 1
            if self.failures == 1:
                log.exception("%s: step observer %r raised on step %d; the conversation goes "
                              "on (later failures are logged at debug)", self.session_id,
                              self.fn, r.index)
            else:
                log.debug("%s: step observer %r raised on step %d (%d failures)",
                          self.session_id, self.fn, r.index, self.failures, exc_info=True)


class Session(Inputs, SessionClock):
    """One conversation's turn-taking, in asyncio. Create it inside a running loop."""

    def __init__(self, options: EngineOptions | Mapping[str, Any] | None = None, *,
                 profile: str | Profile | None = None, chart: Chart | None = None,
                 hooks: object | None = None, model: EouModel | None = None,
                 detector: InterruptionDetector | None = None, stt: SttControl | None = None,
                 model_timeout: float = 2.0, hook_timeout: float = 5.0,
                 on_hook_timeout: HookTimeout = "keep", session_id: str | None = None,
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
        self.model_timeout = _seconds("model_timeout", model_timeout)
        self.hook_timeout = _seconds("hook_timeout", hook_timeout)
        if on_hook_timeout not in ("keep", "take"):
            raise ConfigError(f"on_hook_timeout must be 'keep' or 'take', not "
                              f"{on_hook_timeout!r}")
        self.on_hook_timeout: HookTimeout = on_hook_timeout
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
        self._sleeper: asyncio.Future[None] | None = None  # advance_to's sleep
        self._progress = asyncio.Event()  # set whenever outputs are dispatched
        self._failure: BaseException | None = None
        self._requests: dict[int, out.EouModelRequest] = {}  # model requests in flight
        self._asked: out.EndOfTurn | None = None  # the end of turn whose answer is awaited
        self.observer_failures = 0  # observer failures caught outside the session's wrappers
        self.spans: Any = None
        for fn in observers:
            self.engine.add_observer(_Isolated(fn, self.session_id))
        if telemetry:
            from ..telemetry import SpanObserver
            # span times: the wall clock at the session's start plus session time
            origin = time.time_ns() if time_origin_ns is None else time_origin_ns
            try:
                self.spans = SpanObserver(tracer_provider, conversation_id=conversation_id,
                                          time_origin_ns=origin)
            except Exception:
                log.exception("%s: the tracer provider failed; this session runs without "
                              "spans", self.session_id)
            else:
                self.engine.add_observer(_Isolated(self.spans, self.session_id))

    def _step(self, call: Callable[..., list[out.Output]], *args: Any) -> list[out.Output]:
        """One engine call; an observer added to the engine behind the session's back that
        raises loses nothing: the step completed, its outputs are returned."""
        try:
            return call(*args)
        except ObserverFailed as exc:
            self.observer_failures += 1
            log.error("%s: %s; the outputs are delivered", self.session_id, exc)
            return exc.outputs

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
            outs = self._step(engine.handle, e)
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
                self._requests[o.request_id] = o
                self._spawn(self._ask(o))
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

    async def _ask(self, o: out.EouModelRequest) -> None:
        try:
            await ask_model(self, o)
        finally:
            self._requests.pop(o.request_id, None)

    def _end_of_turn(self, o: out.EndOfTurn) -> None:
        self._asked = o
        fn = getattr(self.hooks, "on_end_of_turn", None)
        if fn is None:
            self._answer(o, True)
            return
        try:
            r = fn(o)
            if not inspect.isawaitable(r):
                accepted = _truth(r)
        except Exception:
            log.exception("%s: hook on_end_of_turn failed on %r; the turn is refused (kept)",
                          self.session_id, o)
            self._answer(o, False)
            return
        if not inspect.isawaitable(r):
            self._answer(o, accepted)
            return

        async def later(aw: Awaitable[Any]) -> None:
            try:
                accepted = _truth(await bounded(lambda: aw, within=self.hook_timeout,
                                                  keep=self._tasks))
            except CallTimedOut:
                log.warning("%s: hook on_end_of_turn did not answer within %g s on %r; the "
                            "turn is %s", self.session_id, self.hook_timeout, o,
                            "taken" if self.on_hook_timeout == "take" else "kept")
                accepted = self.on_hook_timeout == "take"
            except Exception:
                log.exception("%s: hook on_end_of_turn failed on %r; the turn is refused "
                              "(kept)", self.session_id, o)
                accepted = False
            if not self._closed:
                self._answer(o, accepted)
        self._spawn(later(r))

    def _answer(self, o: out.EndOfTurn, accepted: bool) -> None:
        if self._closed or not self.engine.awaiting_answer or self._asked is not o:
            return
        self._asked = None
        try:
            outs = self._step(self.engine.handle, ev.EndOfTurnAnswered(
                t=max(o.t, self.engine.input_clock), accepted=accepted))
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
                    await bounded(lambda: aw, within=self.hook_timeout, keep=self._tasks)
                except CallTimedOut:
                    log.warning("%s: %s did not finish within %g s on %r; it was cancelled",
                                self.session_id, what, self.hook_timeout, args[0])
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
            outs = self._step(self.engine.handle, a)
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

    def _unsettled(self) -> bool:
        e = self.engine
        return bool(self._requests or e.awaiting_answer or e.model_request_outstanding
                    or self.scheduler.next_deadline() is not None)

    def _force(self) -> None:
        """Settle one thing a close still waits for, at once: a model request (a failure),
        the pending end of turn's answer (``on_hook_timeout``), or the next timer."""
        e = self.engine
        for rid in list(self._requests):
            self._requests.pop(rid, None)
            if e.model_request_pending(rid):
                log.warning("%s: closing: the end-of-turn model did not answer request %d in "
                            "time (min_delay)", self.session_id, rid)
                self._feed_answer(ev.EouModelAnswered(t=max(self.now(), e.input_clock),
                                                      request_id=rid, failed=True))
                return
        if e.awaiting_answer:
            o = self._asked
            take = self.on_hook_timeout == "take"
            log.warning("%s: closing: on_end_of_turn did not answer in time; the turn is %s",
                        self.session_id, "taken" if take else "kept")
            if o is None:  # pragma: no cover - the session answers every end of turn it saw
                self._step(e.handle, ev.EndOfTurnAnswered(t=e.input_clock, accepted=take))
            else:
                self._answer(o, take)
            return
        n = self.scheduler.next_due()
        if n is not None:  # nothing can arrive any more that a timer waits for: fire it
            self._run_due(n[0])
            self._rearm()

    async def aclose(self) -> None:
        """Close the conversation: the engine settles the pending turn (a model answer in
        flight and the host's answer to a last end of turn are awaited within their
        timeouts, then given for them), every queued input runs, every commit settles, then
        the session stops."""
        if self._closed or self._closing:
            await self._drain_tasks()
            return
        self._closing = True
        try:
            if not self.engine.closed:
                self.push(ev.Close(t=max(self.now(), self.engine.input_clock)))
            limit = self.loop.time() + self.model_timeout + self.hook_timeout
            rounds = 0
            while self._unsettled() and not self._closed:
                waiting = bool(self._requests) or self.engine.awaiting_answer
                left = limit - self.loop.time()
                if waiting and left > 0:
                    self._progress.clear()
                    try:
                        async with asyncio.timeout(left):
                            await self._progress.wait()
                    except TimeoutError:
                        pass
                    await asyncio.sleep(0)
                    continue
                rounds += 1
                if rounds > _CLOSE_ROUNDS:  # pragma: no cover - a defence, never seen
                    log.error("%s: closing: the engine did not settle after %d rounds",
                              self.session_id, _CLOSE_ROUNDS)
                    break
                self._force()
                await asyncio.sleep(0)
                # what the forced step asks of a collaborator gets that collaborator's time
                limit = self.loop.time() + max(
                    self.hook_timeout if self.engine.awaiting_answer else 0.0,
                    self.model_timeout if self._requests else 0.0)
        except (SessionClosed, EngineFailed):
            pass
        finally:
            self._finish(SessionClosed(f"{self.session_id} closed"))
            await self._drain_tasks()

    async def _drain_tasks(self) -> None:
        """Cancel every task the session made (a collaborator's call that outlived its
        timeout included) and wait for them; one that keeps ignoring its cancellation is
        cancelled again a few times within ``hook_timeout``, then left behind (logged)."""
        current = asyncio.current_task()
        stuck: set[asyncio.Task[Any]] = set()
        for _ in range(_DRAIN_ROUNDS):
            pending = [t for t in self._tasks if t is not current and not t.done()]
            if not pending:
                return
            for t in pending:
                t.cancel()
            _done, stuck = await asyncio.wait(pending,
                                              timeout=self.hook_timeout / _DRAIN_ROUNDS)
        for t in stuck:
            log.error("%s: task %r ignored its cancellation at close; it is left behind",
                      self.session_id, t)

    async def __aenter__(self) -> Session:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()


def _truth(v: Any) -> bool:
    """The truth of a hook's answer (an answer whose truth cannot be read raises)."""
    return v if isinstance(v, bool) else bool(v)


def _retrieve(fut: asyncio.Future[Any]) -> None:
    if not fut.cancelled():
        fut.exception()  # the caller may never await it: no "never retrieved" noise


