"""Time inside the engine: timers (deadlines the host fires).

**Timers** are typed records in a heap ordered by (deadline, arming order). A timer is
*live* while what armed it still stands (the engine decides, :meth:`Context.timer_live`):
cancelling the end-of-turn wait, a commit or the boundary makes its timer dead, and dead
timers are skipped. Each timer records the step that armed it, so a host scheduler can
merge engine timers with its own in creation order without sharing a counter with the
engine (:mod:`turnfsm.host.scheduler`).

Work the reference recogniser performs in tasks it spawns (some event-loop iterations after
the callback that spawned them, but before the next input) is not a timer: it is an internal
event the chart declares with ``after: N`` (N loop iterations), which the engine's internal
queue processes N passes later (:meth:`~turnfsm.core.context.Context.raise_`).
"""

from __future__ import annotations

import enum
import heapq
from collections.abc import Callable

import attrs

from .._methods import attrs_eq, attrs_hash, attrs_repr


class TimerKind(enum.Enum):
    """What a timer is for; its value is the chart event it fires."""

    EOU_DEADLINE = "eou_deadline"  # the endpointing delay of the pending decision elapsed
    COMMIT_TIMEOUT = "commit_timeout"  # no final arrived within a commit's transcript_timeout
    BOUNDARY_EXPIRED = "boundary_expired"  # the start backchannel boundary elapsed
    FINAL_OVERDUE = "final_overdue"  # default profile: a due final did not arrive in time
    WORDS_OVERDUE = "words_overdue"  # default profile: an awaited verdict's speech went on


@attrs.frozen(order=False, repr=False, eq=False)
class Timer:
    """An armed timer: fires ``kind`` at ``deadline`` unless it is dead by then."""

    __repr__ = attrs_repr
    __eq__ = attrs_eq
    __hash__ = attrs_hash

    deadline: float
    seq: int  # arming order within the engine
    step: int  # the engine step that armed it
    kind: TimerKind
    key: int  # the wait, commit or boundary epoch it belongs to


class TimerQueue:
    """Armed timers by (deadline, arming order)."""

    __slots__ = ("_heap", "_seq")

    def __init__(self) -> None:
        self._heap: list[tuple[float, int, Timer]] = []
        self._seq = 0

    def arm(self, deadline: float, step: int, kind: TimerKind, key: int) -> Timer:
        """Arm a timer; return it."""
        self._seq += 1
        timer = Timer(deadline, self._seq, step, kind, key)
        heapq.heappush(self._heap, (deadline, self._seq, timer))
        return timer

    def first(self, live: Callable[[Timer], bool]) -> Timer | None:
        """The earliest live timer (dead ones before it are discarded)."""
        heap = self._heap
        while heap and not live(heap[0][2]):
            heapq.heappop(heap)
        return heap[0][2] if heap else None

    def pop(self) -> Timer:
        """Remove and return the earliest timer."""
        return heapq.heappop(self._heap)[2]

    def pending(self, live: Callable[[Timer], bool]) -> list[Timer]:
        """Every live timer, earliest first."""
        return [t for _d, _s, t in sorted(self._heap) if live(t)]
