"""Session time for the asyncio :class:`~turnfsm.runtime.session.Session` (mixed into it):
its clock (seconds since the session started, on the loop's monotonic clock), the one
``loop.call_at`` handle re-armed only when the next deadline changes (of the engine, or of
the session's own timers through the host :class:`~turnfsm.host.Scheduler`), sleeps
ordered with the engine's deadlines, and the virtual-time driver of replays and tests
(:meth:`SessionClock.advance_to`)."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

from .. import events as ev
from .. import outputs as out
from ..core import Engine
from ..errors import EngineFailed, InputError
from ..host import Scheduler
from .errors import SessionClosed

HostItem = Callable[[], None]


class SessionClock:
    """Session time and deadlines (mixed into the Session, which sets these attributes)."""

    loop: asyncio.AbstractEventLoop
    engine: Engine
    scheduler: Scheduler[HostItem]
    _t0: float
    _handle: asyncio.TimerHandle | None
    _armed_for: float | None
    _counted: set[asyncio.Task[Any]]
    _busy: int
    _driving: bool
    _closed: bool
    _sleeper: asyncio.Future[None] | None

    def _dispatch(self, outs: list[out.Output]) -> None:  # pragma: no cover - the Session's
        raise NotImplementedError

    def _step(self, call: Callable[..., list[out.Output]], *args: Any
              ) -> list[out.Output]:  # pragma: no cover - the Session's
        raise NotImplementedError

    def _fail(self, exc: BaseException) -> None:  # pragma: no cover - the Session's
        raise NotImplementedError

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
        if isinstance(t, bool) or not isinstance(t, (int, float)) or \
                not -ev.MAX_NUMBER <= t <= ev.MAX_NUMBER:
            raise InputError(f"advance_to: time must be a finite number of seconds up to "
                             f"{ev.MAX_NUMBER:g}, not {t!r}")
        self._driving = True
        self._rearm()  # disarm: this loop fires the deadlines
        try:
            while not self._closed:
                n = self.scheduler.next_due()
                due = n is not None and n[0] <= t
                # sleep to the next deadline (or to t); a task that changes the schedule
                # meanwhile (a model's answer arms a wait) wakes the sleep: look again
                if await self._sleep_to(self._t0 + (n[0] if due and n else t)):
                    continue
                if not due or n is None:
                    break
                d, is_engine = n
                if on_due is not None:
                    on_due(d)
                if is_engine:
                    try:
                        self._dispatch(self._step(self.engine.fire_next_timer))
                    except EngineFailed as exc:
                        self._fail(exc)
                        raise
                else:
                    self.scheduler.pop_host()()
                await self.settle()
        finally:
            self._driving = False
            self._rearm()

    async def _sleep_to(self, when: float) -> bool:
        """Sleep until loop time ``when`` (absolute: no drift from adding a difference to a
        large clock value); whether it slept."""
        if self.loop.time() >= when:
            return False
        fut: asyncio.Future[None] = self.loop.create_future()
        h = self.loop.call_at(when, _set, fut)
        self._sleeper = fut
        try:
            await fut
        finally:
            h.cancel()
            self._sleeper = None
        return True

    def _rearm(self) -> None:
        if self._closed:
            return
        if self._driving:  # advance_to fires deadlines itself
            if self._handle is not None:
                self._handle.cancel()
            self._handle, self._armed_for = None, None
            if self._sleeper is not None:  # the schedule may have changed: look again
                _set(self._sleeper)
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
            sched = self.scheduler
            while True:
                n = sched.next_due()
                if n is None or n[0] > t:
                    return
                if n[1]:
                    self._dispatch(self._step(self.engine.fire_next_timer))
                else:
                    sched.pop_host()()
        except EngineFailed as exc:
            self._fail(exc)
            raise


def _set(fut: asyncio.Future[None]) -> None:
    if not fut.done():
        fut.set_result(None)
