"""Running a sweep: every setting on every session, serially, on a process pool, or on a
Dask cluster, with the same figures each way.

The sweep is cut into tasks (:func:`plan`). With many sessions, a task is a group of
sessions under every setting: a worker prepares each session once (reads it, runs the VAD
model) and replays it under all the settings. With few sessions (fewer than about 16 tasks
per worker), each session's settings are split into chunks: the sessions are prepared first
(one task each), then each chunk task gets its prepared session. Settings are ordered by
their audio-side values, so a chunk builds few traces. A task returns one
:class:`~turnfsm.tuning.tally.Tally` per setting, added up over its sessions; tallies add
up in any order to the same figures, so the way a sweep is run does not change its result.
"""

from __future__ import annotations

import math
import multiprocessing
import multiprocessing.context
import os
import sys
import time
from collections.abc import Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from typing import Any

from ..errors import TurnFsmError
from .grid import Grid
from .plan import Progress, SweepResult, Task, finish, merge, plan
from .sessions import Session, prepare, run_task, set_settings
from .tally import Tally


def sweep(grid: Grid, paths: Sequence[str], *, jobs: int | None = None,
          cluster: str | Any | None = None, progress: Progress | None = None,
          security: Any = None) -> SweepResult:
    """Replay every session under every setting of ``grid`` and score it.

    ``jobs``: worker processes (default: every core; 1 runs in this process). ``cluster``:
    a Dask scheduler's address (``tcp://host:8786``) or a ``distributed.Client``; the
    workers must have this version of turnfsm and see the sessions under the same paths.
    ``security``: for a ``tls://`` address, the TLS files (``ca_file``, ``cert``, ``key``)
    or a ``distributed.Security`` (see :func:`turnfsm.tuning.cluster.security`).
    """
    if cluster is not None:
        from .cluster import sweep_dask
        return sweep_dask(grid, paths, cluster, progress=progress, security=security)
    n = jobs if jobs is not None else (os.cpu_count() or 1)
    if n < 1:
        raise TurnFsmError("--jobs must be at least 1")
    if n == 1:
        return sweep_serial(grid, paths, progress=progress)
    return sweep_pool(grid, paths, n, progress=progress)


def sweep_serial(grid: Grid, paths: Sequence[str], *,
                 progress: Progress | None = None) -> SweepResult:
    """The sweep in this process, one task after another."""
    start = time.perf_counter()
    p = plan(len(paths), grid.settings, 1)
    results: list[Tally | None] = [None] * len(grid.settings)
    done, total = 0, len(paths) * len(grid.settings)
    for task in p.tasks:
        merge(results, task, run_task([str(paths[i]) for i in task.sessions], task.settings,
                                       grid.settings))
        done += len(task.sessions) * len(task.settings)
        if progress is not None:
            progress(done, total, "")
    return finish(grid, paths, results, start, "serial")


def sweep_pool(grid: Grid, paths: Sequence[str], jobs: int, *,
               progress: Progress | None = None) -> SweepResult:
    """The sweep on ``jobs`` worker processes (the settings go to each worker once)."""
    start = time.perf_counter()
    p = plan(len(paths), grid.settings, jobs)
    results: list[Tally | None] = [None] * len(grid.settings)
    total = len(paths) * len(grid.settings)
    with ProcessPoolExecutor(max_workers=jobs, mp_context=_context(),
                             initializer=set_settings, initargs=(grid.settings,)) as pool:
        pending: dict[Future[Any], tuple[str, Any]] = {}
        chunks: dict[int, list[Task]] = {}
        if p.split:  # read each session, then run its chunks as soon as it is read
            for task in p.tasks:
                chunks.setdefault(task.sessions[0], []).append(task)
            for i in chunks:
                pending[pool.submit(prepare, str(paths[i]))] = ("prepare", i)
        else:
            for task in p.tasks:
                pending[pool.submit(run_task, [str(paths[i]) for i in task.sessions],
                                    task.settings)] = ("run", task)
        try:
            done = prepared = 0
            while pending:
                finished, _ = wait(pending, return_when=FIRST_COMPLETED)
                for f in finished:
                    kind, what = pending.pop(f)
                    if kind == "prepare":
                        session: Session = f.result()
                        for task in chunks[what]:
                            pending[pool.submit(run_task, [session], task.settings)] = \
                                ("run", task)
                        prepared += 1
                    else:
                        merge(results, what, f.result())
                        done += len(what.sessions) * len(what.settings)
                    if progress is not None:
                        progress(done, total, f"{prepared}/{len(chunks)} sessions prepared"
                                 if prepared < len(chunks) else "")
        except BaseException:  # a session failed, or ^C: the rest is not run
            pool.shutdown(wait=True, cancel_futures=True)
            raise
    return finish(grid, paths, results, start, f"pool ({jobs} workers)")


def _context() -> multiprocessing.context.BaseContext:
    """Workers start from a fresh server process, not forked from this one: the VAD model
    runs threads, and a process forked from one that ran it can hang."""
    if "forkserver" not in multiprocessing.get_all_start_methods():
        return multiprocessing.get_context("spawn")
    ctx = multiprocessing.get_context("forkserver")
    ctx.set_forkserver_preload(["turnfsm.tuning.sessions"])
    return ctx


class ProgressBar:
    """``[#####.....] 45%  1,234/5,000 replays  12 s left`` on stderr, only on a terminal."""

    def __init__(self, enabled: bool = True) -> None:
        self.enabled = enabled and sys.stderr.isatty()
        self.first: tuple[float, int] | None = None
        self.width = 0

    def __call__(self, done: int, total: int, note: str = "") -> None:
        if not self.enabled or total <= 0:
            return
        f = done / total
        now = time.perf_counter()
        if done and self.first is None:
            self.first = (now, done)  # the rate is measured from here (after preparing)
        left = math.nan
        if self.first is not None and done > self.first[1]:
            t0, d0 = self.first
            left = (now - t0) / (done - d0) * (total - done)
        eta = "" if math.isnan(left) else f"  {_duration(left)} left"
        n = int(f * 30)
        line = f"\rtune [{'#' * n}{'.' * (30 - n)}] {f * 100:3.0f}%  {done:,}/{total:,} " \
               f"replays{eta}" + (f"  ({note})" if note else "")
        sys.stderr.write(line + " " * max(0, self.width - len(line)))
        sys.stderr.flush()
        self.width = len(line)

    def done(self) -> None:
        """Clear the bar."""
        if self.enabled and self.width:
            sys.stderr.write("\r" + " " * self.width + "\r")
            sys.stderr.flush()


def _duration(s: float) -> str:
    if s < 90:
        return f"{s:.0f} s"
    if s < 5400:
        return f"{s / 60:.0f} min"
    return f"{s / 3600:.1f} h"
