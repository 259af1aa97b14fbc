"""Throughput of ``turnfsm tune``, and what running it in parallel costs.

    python benchmarks/tune_bench.py [--quick] [--sessions DIR ...] [--json results.json]

1. One core (the process pinned to one CPU), sessions prepared: replays scored per second
   (sessions x settings per second per core), per audio-second of the sessions, for
   engine-side settings with ``turn_detection: vad`` and with the rule-based model; the cost
   of preparing a session (reading it, the VAD model over it) and of building a trace from
   its recorded VAD.
2. A sweep end to end (sessions read, traces built, replays scored, tallies added),
   serially, on a process pool of every core, and on a local Dask cluster of as many
   single-threaded worker processes (its start-up reported apart): wall time, speed-up, and
   the overhead against the serial run (parallel core-seconds over serial seconds, minus
   one). (a) the sessions given as traces: the replays alone; (b) the WAV sessions: each
   prepared once (the VAD model over it), which dominates a sweep of a few hundred settings.

Medians over repetitions. The machine may be shared and noisy: read the ratios.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import platform
import shutil
import statistics
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]

from turnfsm.audio.listen import trace_lines  # noqa: E402
from turnfsm.quality.score import score_outputs  # noqa: E402
from turnfsm.tuning import parse_grid, sweep_pool, sweep_serial  # noqa: E402
from turnfsm.tuning.sessions import (  # noqa: E402
    build,
    clear_caches,
    prepare,
    replay_setting,
    session_paths,
)

ENGINE_GRID = """\
min_delay: {from: 0.2, to: 1.0, step: 0.1}
max_delay: [1.5, 2.0, 3.0]
endpointing_mode: [fixed, dynamic]
"""
MODEL_GRID = """\
turn_detection: [model]
unlikely_threshold: [0.2, 0.3, 0.5]
min_delay: {from: 0.2, to: 1.0, step: 0.1}
max_delay: [1.5, 3.0]
"""
TRACE_GRID = """\
min_delay: {from: 0.2, to: 1.0, step: 0.02}
max_delay: [1.5, 2.0, 2.5, 3.0]
turn_detection: [vad, model]
"""
SWEEP_GRID = """\
min_delay: {from: 0.2, to: 1.0, step: 0.1}
max_delay: [1.5, 3.0]
turn_detection: [vad, model]
min_silence: [0.3, 0.55]
"""


@contextlib.contextmanager
def one_cpu() -> Iterator[None]:
    """Pin this process to one CPU (Linux): the serial figures are one core's. (The VAD
    model runs its own threads; unpinned, a lone process spends more CPU on them.)"""
    if not hasattr(os, "sched_setaffinity"):
        yield
        return
    cpus = os.sched_getaffinity(0)
    os.sched_setaffinity(0, {min(cpus)})
    try:
        yield
    finally:
        os.sched_setaffinity(0, cpus)


def median_time(fn: Any, reps: int) -> tuple[float, list[float]]:
    xs = []
    for _ in range(reps):
        t = time.perf_counter()
        fn()
        xs.append(time.perf_counter() - t)
    return statistics.median(xs), xs


def single_core(paths: list[str], reps: int) -> dict[str, Any]:
    """Replays per second on one core, sessions prepared and traces built."""
    t0 = time.perf_counter()
    sessions = [prepare(p) for p in paths]
    prep = (time.perf_counter() - t0) / len(paths)
    traces = [build(s) for s in sessions]
    build_s, _ = median_time(lambda: [build(s) for s in sessions], reps)
    audio_s = sum(max((i.t for i in tr.inputs), default=0.0) for tr in traces)
    out: dict[str, Any] = {"sessions": len(paths), "audio_seconds": audio_s,
                           "prepare_s_per_session": prep,
                           "build_s_per_trace": build_s / len(paths)}
    for name, text in (("vad", ENGINE_GRID), ("model", MODEL_GRID)):
        settings = parse_grid(text).settings

        def run(settings: Any = settings) -> None:
            for s, tr in zip(sessions, traces, strict=True):
                for st in settings:
                    score_outputs(replay_setting(tr, st), s.truth)
        secs, xs = median_time(run, reps)
        n = len(settings) * len(paths)
        out[name] = {"settings": len(settings), "replays": n, "seconds": secs,
                     "replays_per_s": n / secs, "us_per_replay_audio_s": secs / n /
                     (audio_s / len(paths)) * 1e6, "spread_s": [min(xs), max(xs)]}
    return out


def end_to_end(paths: list[str], grid_text: str, reps: int, workers: int) -> dict[str, Any]:
    """The same sweep serially, on a pool and on a local Dask cluster."""
    grid = parse_grid(grid_text)
    out: dict[str, Any] = {"settings": len(grid.settings), "sessions": len(paths),
                           "replays": len(grid.settings) * len(paths), "workers": workers}

    def serial() -> Any:
        clear_caches()
        return sweep_serial(grid, paths)
    with one_cpu():
        ref = serial()
        out["serial_s"], _ = median_time(serial, reps)
    figures = [t.summary() for t in ref.tallies]
    pooled = sweep_pool(grid, paths, workers)
    assert [t.summary() for t in pooled.tallies] == figures
    out["pool_s"], _ = median_time(lambda: sweep_pool(grid, paths, workers), reps)
    try:
        from distributed import LocalCluster
    except ImportError:
        out["dask_s"] = None
        return out
    from turnfsm.tuning import sweep
    starts, runs = [], []
    for _ in range(reps):
        t = time.perf_counter()
        with LocalCluster(processes=True, n_workers=workers, threads_per_worker=1,
                          dashboard_address=None) as cluster:
            starts.append(time.perf_counter() - t)
            t = time.perf_counter()
            result = sweep(grid, paths, cluster=cluster.scheduler_address)
            runs.append(time.perf_counter() - t)
        assert [x.summary() for x in result.tallies] == figures
    out["dask_start_s"] = statistics.median(starts)
    out["dask_s"] = statistics.median(runs)
    return out


def as_traces(paths: list[str], folder: Path) -> list[str]:
    """The sessions as trace sessions (NAME.jsonl and its labels): no VAD to run."""
    out = []
    for p in paths:
        src = Path(p)
        dst = folder / (src.stem + ".jsonl")
        dst.write_text(trace_lines(build(prepare(src))), encoding="utf-8")
        shutil.copy(src.with_suffix("").as_posix() + ".truth.json",
                    folder / (src.stem + ".truth.json"))
        out.append(str(dst))
    return out


def print_e2e(title: str, e2e: dict[str, Any]) -> None:
    w = e2e["workers"]
    print(f"{title}: {e2e['sessions']} sessions x {e2e['settings']} settings = "
          f"{e2e['replays']:,} replays")
    print(f"{'':34s} {'wall s':>10s} {'speed-up':>10s} {'overhead':>10s}")
    s = e2e["serial_s"]
    rows = [("serial (1 core)", s, 1), (f"pool ({w} workers)", e2e["pool_s"], w)]
    if e2e.get("dask_s") is not None:
        rows.append((f"local Dask ({w} workers)", e2e["dask_s"], w))
    for name, t, n in rows:
        print(f"{name:34s} {t:10.2f} {s / t:10.2f} {(t * n / s - 1) * 100:9.0f}%")
    if e2e.get("dask_s") is not None:
        print(f"{'  (+ LocalCluster start-up)':34s} {e2e['dask_start_s']:10.2f}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--sessions", nargs="+", default=[str(ROOT / "examples" / "dialogues"),
                                                      str(ROOT / "examples" / "audio")])
    ap.add_argument("--quick", action="store_true", help="one repetition")
    ap.add_argument("--workers", type=int, default=os.cpu_count() or 1)
    ap.add_argument("--json", help="also write the figures here")
    args = ap.parse_args()
    reps = 1 if args.quick else 3
    paths = [str(p) for p in session_paths(args.sessions)]
    with one_cpu():
        one = single_core(paths, reps)
    with tempfile.TemporaryDirectory() as tmp:
        traces = end_to_end(as_traces(paths, Path(tmp)), TRACE_GRID, reps, args.workers)
    wavs = end_to_end(paths, SWEEP_GRID, reps, args.workers)
    print(f"# {platform.python_implementation()} {platform.python_version()}, "
          f"{os.cpu_count()} cores, {len(paths)} sessions, {one['audio_seconds']:.0f} s of "
          f"audio ({one['audio_seconds'] / len(paths):.1f} s each)")
    print()
    print("1. one core (pinned), sessions prepared")
    print(f"{'':34s} {'replays/s':>10s} {'ms/replay':>10s} {'us per replay-s':>16s}")
    for name in ("vad", "model"):
        r = one[name]
        print(f"{'replay + score, turn_detection ' + name:34s} {r['replays_per_s']:10.0f} "
              f"{1000 / r['replays_per_s']:10.2f} {r['us_per_replay_audio_s']:16.0f}")
    print(f"{'prepare a session (read, VAD)':34s} {'':10s} "
          f"{one['prepare_s_per_session'] * 1000:10.1f}")
    print(f"{'build a trace (recorded VAD)':34s} {'':10s} {one['build_s_per_trace'] * 1000:10.2f}")
    print()
    print_e2e("2a. end to end, sessions as traces (replays only)", traces)
    print()
    print_e2e("2b. end to end, WAV sessions (each prepared once: the VAD dominates)", wavs)
    if args.json:
        Path(args.json).write_text(json.dumps(
            {"single_core": one, "end_to_end_traces": traces, "end_to_end_wav": wavs},
            indent=1))


if __name__ == "__main__":
    sys.exit(main())
