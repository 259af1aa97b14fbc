"""One scheduler for a host: the engine's timers and the host's, in one order.

A host has timers of its own (a model answer due after its latency, a retry, a pacing
tick) beside the engine's deadlines. :class:`Scheduler` fires both in (deadline, creation
order). The engine stamps each of its timers with the step that armed it; a host timer is
stamped with the engine steps completed when it was made, and at an equal deadline an engine
timer armed in step *n* precedes a host timer made after step *n*. So ties resolve in the
order the timers were made, without the engine and the host sharing a counter.

The replayer, the tests' virtual-time driver and the asyncio runtime all use it.
"""

from __future__ import annotations

import heapq
from collections.abc import Callable
from typing import Generic, TypeVar

from .. import outputs as out
from ..core import Engine

T = TypeVar("T")


class Scheduler(Generic[T]):
    """Engine deadlines merged with host timers. A host timer carries an item of the host's
    (data, or a callable): what to do with it is the host's, given to :meth:`run_until`, so
    a scheduler holding data can be copied with its host."""

    __slots__ = ("_heap", "_seq", "engine")

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self._heap: list[tuple[float, int, int, T]] = []
        self._seq = 0

    def call_at(self, deadline: float, item: T) -> None:
        """Schedule ``item`` at ``deadline`` (rounded to the microsecond, as engine
        deadlines)."""
        self._seq += 1
        heapq.heappush(self._heap, (round(deadline, 6), self.engine.steps, self._seq, item))

    def next_due(self) -> tuple[float, bool] | None:
        """(deadline, whether it is the engine's) of the next timer to fire."""
        engine = self.engine
        et = None if engine.awaiting_answer else engine.next_timer()
        if not self._heap:
            return None if et is None else (et.deadline, True)
        d, step, _seq, _fn = self._heap[0]
        if et is None or (d, step, 1) < (et.deadline, et.step, 0):
            return d, False
        return et.deadline, True

    def next_deadline(self) -> float | None:
        """When the next timer (the engine's or the host's) is due."""
        n = self.next_due()
        return None if n is None else n[0]

    def next_host_deadline(self) -> float | None:
        """When the next host timer is due."""
        return self._heap[0][0] if self._heap else None

    def host_pending(self) -> int:
        """How many host timers are pending."""
        return len(self._heap)

    def pop_host(self) -> T:
        """Remove the next host timer and return its item."""
        return heapq.heappop(self._heap)[3]

    def run_until(self, t: float, on_outputs: Callable[[list[out.Output]], None],
                  on_host: Callable[[T], None]) -> None:
        """Fire every timer due at or before ``t``, in order: the engine's outputs go to
        ``on_outputs``, the host's items to ``on_host`` (either may schedule more)."""
        while True:
            n = self.next_due()
            if n is None or n[0] > t:
                return
            if n[1]:
                on_outputs(self.engine.fire_next_timer())
            else:
                on_host(self.pop_host())
