"""An asyncio event loop on a virtual clock: timers fire in order, instantly.

``loop.time()`` is a number the loop advances itself: when nothing is ready it jumps to the
next scheduled timer instead of sleeping. Real I/O still works (the loop polls its selector
without waiting first). Used by ``turnfsm replay --runtime asyncio`` and by the tests, so
nothing sleeps for real and runs are deterministic.

    with asyncio.Runner(loop_factory=VirtualClockLoop) as runner:
        runner.run(main())
"""

from __future__ import annotations

import asyncio
import math
import selectors
from collections.abc import Coroutine
from typing import Any, TypeVar

T = TypeVar("T")


class _VirtualSelector(selectors.DefaultSelector):
    """A selector whose waits advance the loop's virtual clock instead of blocking."""

    def __init__(self) -> None:
        super().__init__()
        self.loop: VirtualClockLoop | None = None

    def select(self, timeout: float | None = None) -> list[tuple[selectors.SelectorKey, int]]:
        ready = super().select(0)
        if ready or timeout is None or timeout <= 0:
            if not ready and timeout is None:
                return super().select(None)  # nothing scheduled: wait for real I/O
            return ready
        assert self.loop is not None
        self.loop.advance(timeout, to_next=True)
        return []


class VirtualClockLoop(asyncio.SelectorEventLoop):
    """A selector event loop whose clock is virtual (starts at 0.0)."""

    def __init__(self) -> None:
        selector = _VirtualSelector()
        super().__init__(selector)
        selector.loop = self
        self._virtual_now = 0.0
        self._base_resolution: float = self._clock_resolution

    def time(self) -> float:
        """The virtual clock."""
        return self._virtual_now

    def advance(self, seconds: float, *, to_next: bool = False) -> None:
        """Move the virtual clock forward (by at least one step of the float's precision;
        with ``to_next``, at least to the next timer: asyncio waits at most a day at a
        time, and a timer far ahead is reached in one step, not in days).

        asyncio runs a timer once ``when < time() + clock resolution``; at large clock
        values (2**24 s and beyond) adding a nanosecond changes nothing, so a timer due now
        would never run and the loop would spin: the resolution grows with the clock."""
        now = self._virtual_now + seconds
        scheduled = getattr(self, "_scheduled", None)
        if to_next and scheduled:
            now = max(now, scheduled[0].when())
        if now <= self._virtual_now:
            now = math.nextafter(self._virtual_now, math.inf)
        self._virtual_now = now
        self._clock_resolution = max(self._base_resolution, 4 * math.ulp(now))


def run_virtual(coro: Coroutine[Any, Any, T]) -> T:
    """Run ``coro`` to completion on a fresh virtual-clock loop."""
    with asyncio.Runner(loop_factory=VirtualClockLoop) as runner:
        return runner.run(coro)
