"""How a sweep is cut into tasks, and how the tasks' tallies add up to its result."""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Sequence
from typing import Any

import attrs

from .grid import Grid, Setting
from .tally import Tally

TASKS_PER_WORKER = 16
MIN_CHUNK = 4  # settings per chunk, at least


@attrs.frozen
class Task:
    """Sessions (by their index) under a chunk of settings (by their index)."""

    sessions: tuple[int, ...]
    settings: tuple[int, ...]


@attrs.frozen
class Plan:
    """The tasks of a sweep; ``split``: the sessions are prepared first (stage one)."""

    tasks: tuple[Task, ...]
    split: bool


def plan(n_sessions: int, settings: Sequence[Setting], workers: int) -> Plan:
    """Cut ``n_sessions`` x ``settings`` into tasks for ``workers`` workers."""
    order = tuple(s.index for s in sorted(settings, key=lambda s: (repr(s.audio_key()),
                                                                     s.index)))
    target = max(1, workers) * TASKS_PER_WORKER
    if workers <= 1 or n_sessions >= target:
        group = max(1, n_sessions // target) if workers > 1 else 1
        tasks = tuple(Task(tuple(range(i, min(i + group, n_sessions))), order)
                      for i in range(0, n_sessions, group))
        return Plan(tasks, split=False)
    chunks = max(1, min(math.ceil(target / max(1, n_sessions)), len(order) // MIN_CHUNK))
    size = math.ceil(len(order) / chunks)
    tasks = tuple(Task((s,), order[i:i + size])
                  for s in range(n_sessions) for i in range(0, len(order), size))
    return Plan(tasks, split=chunks > 1)


@attrs.frozen
class SweepResult:
    """Per setting, the figures over every session."""

    grid: Grid
    sessions: tuple[str, ...]
    tallies: tuple[Tally, ...]  # in the order of grid.settings
    seconds: float
    runner: str  # serial | pool (N workers) | dask (address, N workers)

    @property
    def replays(self) -> int:
        """Sessions x settings."""
        return len(self.sessions) * len(self.grid.settings)

    def rows(self) -> list[dict[str, Any]]:
        """One row per setting: its index, profile, option values and figures."""
        return [{"setting": s.index, "profile": s.profile,
                 **{n: s.get(n) for n in self.grid.options}, **t.summary()}
                for s, t in zip(self.grid.settings, self.tallies, strict=True)]


Progress = Callable[[int, int, str], None]  # (replays done, replays in all, a note)


def merge(results: list[Tally | None], task: Task, tallies: list[Tally]) -> None:
    for i, t in zip(task.settings, tallies, strict=True):
        have = results[i]
        if have is None:
            results[i] = t
        else:
            have.merge(t)


def finish(grid: Grid, paths: Sequence[str], results: list[Tally | None], start: float,
            runner: str) -> SweepResult:
    tallies = tuple(t if t is not None else Tally() for t in results)
    return SweepResult(grid, tuple(paths), tallies, time.perf_counter() - start, runner)
