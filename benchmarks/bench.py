"""turnfsm's benchmarks, each figure beside a baseline measured in the same run.

    python benchmarks/bench.py [--quick] [--only 2,6] [--baseline REV] [--json results.json]

1. Engine CPU per conversation-second and per event by kind, driven through the public API
   as a host would (events built beforehand, timers fired from ``next_deadline``/
   ``advance``, end-of-turn outputs answered at once), against a bare loop that stores one
   value per event. Twice: VAD windows as events (``handle``) and through the object-free
   ``vad_window``.
2. Whole-process ``turnfsm replay`` of a 60- and a 180-minute generated session (CPU
   seconds, start-up included), with peak memory, against the reference recogniser
   replaying the same trace (and ``--baseline REV``'s code, with its output compared; the
   three take turns) (when a Python with livekit-agents 1.5.12 is given:
   ``--reference PYTHON`` or ``$REFERENCE_PYTHON``, default
   ``~/.venvs/livekit-ref/bin/python`` when it exists).
3. Memory per idle and per active engine (tracemalloc over many engines).
4. The asyncio runtime: 1,000 Sessions on one event loop pinned to one core, fed in real
   time (``runtime_load.py``: CPU share, end-of-turn lateness, against a feeding-only
   baseline), and the span observer's cost per turn (``runtime_load.py --spans``).
5. The tuning sweep's throughput (``tune_bench.py``), when it is there.
6. The audio path (``audio_bench.py``): VAD CPU per channel-second against Pipecat's and
   LiveKit's analyzers, ``listen`` CPU per audio-second (no transcripts, timed words,
   Whisper), a 30-minute 44.1 kHz stereo file's CPU and peak memory, start-up CPU per
   command, soxr against a numpy resampler (``--baseline REV``: before and after).

Medians over repetitions, with the spread (min-max). The machine is shared and noisy: the
ratios, measured in the same run, are the figures to read.
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import platform
import resource
import statistics
import subprocess
import sys
import tempfile
import time
import tracemalloc
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(HERE))

from gen_session import write as write_session  # noqa: E402

from turnfsm import Engine, EngineOptions  # noqa: E402
from turnfsm import events as ev  # noqa: E402
from turnfsm import outputs as out  # noqa: E402
from turnfsm.replay import read_trace  # noqa: E402
from turnfsm.replay.replay import Replay  # noqa: E402


def stats(xs: list[float]) -> dict[str, float]:
    """Median and spread."""
    return {"median": statistics.median(xs), "min": min(xs), "max": max(xs), "n": len(xs)}


def fmt(s: dict[str, float], unit: str, digits: int = 1) -> str:
    return (f"{s['median']:.{digits}f} {unit} ({s['min']:.{digits}f}-{s['max']:.{digits}f}, "
            f"n={s['n']:g})")


# -- 1. the engine through its public API ------------------------------------------------


def session_events(minutes: float, *,
                   detector: bool = False) -> tuple[list[ev.Input], float]:
    """The inputs of a generated session (``detector``: with its verdicts), as engine events
    (built beforehand)."""
    with tempfile.NamedTemporaryFile("w", suffix=".jsonl", delete=False) as f:
        write_session(minutes, f, detector=detector)
        path = f.name
    trace = read_trace(path)
    os.unlink(path)
    events: list[ev.Input] = []
    r = Replay(trace)
    r.feed = events.append  # type: ignore[method-assign]  # collect instead of replaying
    r.engine = Engine(EngineOptions())
    for i in trace.inputs:
        r.apply(i)
    return events, trace.inputs[-1].t


def drive(events: list[ev.Input], *, windows_direct: bool,
          window_outputs: bool = True) -> float:
    """CPU seconds to run ``events`` through an engine as a host does."""
    e = Engine(EngineOptions(vad_window_outputs=window_outputs))
    handle, advance, vad_window = e.handle, e.advance, e.vad_window
    eot = out.EndOfTurn
    answered = ev.EndOfTurnAnswered
    window = ev.VadInferenceDone
    t0 = time.process_time()
    due = e.next_deadline()
    for x in events:
        t = x.t
        if due is not None and t >= due:
            for o in advance(t):
                if type(o) is eot:
                    handle(answered(t=o.t, accepted=True))
            due = e.next_deadline()
        if windows_direct and type(x) is window:
            vad_window(t, x.raw_accumulated_speech, x.ref)  # type: ignore[attr-defined]
            continue
        for o in handle(x):
            if type(o) is eot:
                handle(answered(t=o.t, accepted=True))
        due = e.next_deadline()
    return time.process_time() - t0


def bare(events: list[ev.Input]) -> float:
    """CPU seconds for a loop that stores one value per event (the floor)."""
    sink: list[float] = []
    store = sink.append
    t0 = time.process_time()
    for x in events:
        store(x.t)
    return time.process_time() - t0


def by_kind(events: list[ev.Input], reps: int) -> dict[str, dict[str, float]]:
    """µs per event of each kind, in the mix (the time of a kind = its events' share)."""
    kinds: dict[str, float] = {}
    counts: dict[str, int] = {}
    for _ in range(reps):
        e = Engine(EngineOptions())
        for x in events:
            name = type(x).__name__
            t = x.t
            t0 = time.perf_counter()
            for o in e.advance(t):
                if isinstance(o, out.EndOfTurn):
                    e.handle(ev.EndOfTurnAnswered(t=o.t, accepted=True))
            for o in e.handle(x):
                if isinstance(o, out.EndOfTurn):
                    e.handle(ev.EndOfTurnAnswered(t=o.t, accepted=True))
            kinds[name] = kinds.get(name, 0.0) + time.perf_counter() - t0
            counts[name] = counts.get(name, 0) + 1
    return {k: {"us_per_event": v * 1e6 / counts[k], "events": counts[k] / reps}
            for k, v in sorted(kinds.items(), key=lambda kv: -counts[kv[0]])}


# -- 2. whole-process replay --------------------------------------------------------------


# A child's peak memory is read from its own /proc/self/status (VmHWM) when it exits: the
# kernel's ru_maxrss for a child started from this (large) process also counts the pages this
# process had when the child was spawned, which is not the child's memory.
_PEAK = ("import runpy, sys\n"
         "target = sys.argv[1]; sys.argv = sys.argv[1:]\n"
         "try:\n"
         "    if target.endswith('.py'):\n"
         "        runpy.run_path(target, run_name='__main__')\n"
         "    else:\n"
         "        runpy.run_module(target, run_name='__main__', alter_sys=True)\n"
         "finally:\n"
         "    for line in open('/proc/self/status'):\n"
         "        if line.startswith('VmHWM:'):\n"
         "            sys.stderr.write('PEAK_KB ' + line.split()[1] + '\\n')\n")


# Children run as an installed package does: with bytecode caches (a shell that sets
# PYTHONDONTWRITEBYTECODE would make every start recompile every module; the first
# repetition writes the caches).
_CHILD_ENV = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}


def run_process(python: str, target: str, args: list[str], out_path: Path,
                src: Path | None = None) -> tuple[float, float]:
    """(CPU seconds, peak RSS MB) of ``python target args`` writing stdout to out_path;
    target is a script (``.py``) or a module name (imported from ``src`` when given). CPU,
    not wall time: the machine is shared, and another process's load stretches wall time,
    not CPU time."""
    env = _CHILD_ENV if src is None else {**_CHILD_ENV, "PYTHONPATH": str(src)}
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    with open(out_path, "w") as f:
        p = subprocess.run([python, "-c", _PEAK, target, *args], stdout=f,
                           stderr=subprocess.PIPE, text=True, env=env)
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = after.ru_utime + after.ru_stime - before.ru_utime - before.ru_stime
    if p.returncode != 0:
        raise RuntimeError(f"{target} {args} exited {p.returncode}: {p.stderr[-500:]}")
    peak = [ln for ln in p.stderr.splitlines() if ln.startswith("PEAK_KB ")]
    return cpu, int(peak[-1].split()[1]) / 1024 if peak else float("nan")


def same_but_onsets(ref: Path, ours: Path) -> tuple[bool, int]:
    """Whether two replay outputs are the same line for line but for reported onsets
    (``started_speaking_at``: turnfsm never reports one before the previous accepted
    delivery, spec D4, where the reference does); and how many lines differ so."""
    import json
    a, b = ref.read_text().splitlines(), ours.read_text().splitlines()
    if len(a) != len(b):
        return False, 0
    onsets = 0
    for x, y in zip(a, b, strict=True):
        if x == y:
            continue
        dx, dy = json.loads(x), json.loads(y)
        if dx.pop("started_speaking_at", None) is None or \
                dy.pop("started_speaking_at", None) is None or dx != dy:
            return False, onsets
        onsets += 1
    return True, onsets


def reference_python(given: str | None) -> str | None:
    for c in (given, os.environ.get("REFERENCE_PYTHON"),
              str(Path.home() / ".venvs" / "livekit-ref" / "bin" / "python")):
        if c and Path(c).exists():
            return c
    return None


# -- 3. memory ------------------------------------------------------------------------------


def memory_per_engine(n: int, active: bool) -> float:
    """Bytes per engine (tracemalloc) over ``n`` engines; active: mid-turn with a wait."""
    gc.collect()
    tracemalloc.start()
    before = tracemalloc.get_traced_memory()[0]
    engines = []
    for _ in range(n):
        e = Engine(EngineOptions())
        if active:
            e.handle(ev.VadStartOfSpeech(t=1.0, speech_duration=0.2))
            e.handle(ev.VadInferenceDone(t=1.3, raw_accumulated_speech=0.5))
            e.handle(ev.SttFinal(t=1.4, text="book a table for two please", confidence=0.9))
            e.handle(ev.VadEndOfSpeech(t=1.5))
        engines.append(e)
    after = tracemalloc.get_traced_memory()[0]
    tracemalloc.stop()
    return (after - before) / n


# -- main ---------------------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--quick", action="store_true", help="fewer repetitions, shorter sessions")
    ap.add_argument("--reference", help="a Python with livekit-agents 1.5.12 installed")
    ap.add_argument("--json", help="write the figures here")
    ap.add_argument("--baseline", help="a git revision the replay and audio figures are "
                    "measured against (sections 2 and 6)")
    ap.add_argument("--only", help="the sections to run, e.g. 2,6 (default: all)")
    a = ap.parse_args(argv)
    only = {int(x) for x in a.only.split(",")} if a.only else None

    def want(section: int) -> bool:
        return only is None or section in only
    reps = 3 if a.quick else 7
    results: dict[str, Any] = {
        "machine": {"python": platform.python_version(), "platform": platform.platform(),
                    "cpu": _cpu(), "cores": os.cpu_count(),
                    "date": time.strftime("%Y-%m-%d")}}
    print(f"# turnfsm benchmarks, {results['machine']['date']}, Python "
          f"{results['machine']['python']}, {results['machine']['cpu']} "
          f"({results['machine']['cores']} cores)\n")

    # 1
    if want(1):
        minutes = 10.0 if a.quick else 30.0
        events, seconds = session_events(minutes)
        eng = [drive(events, windows_direct=False) for _ in range(reps)]
        eng_direct = [drive(events, windows_direct=True) for _ in range(reps)]
        eng_quiet = [drive(events, windows_direct=False, window_outputs=False)
                     for _ in range(reps)]
        floor = [bare(events) for _ in range(reps)]
        per_s = stats([x * 1e6 / seconds for x in eng])
        per_s_direct = stats([x * 1e6 / seconds for x in eng_direct])
        per_s_quiet = stats([x * 1e6 / seconds for x in eng_quiet])
        per_s_bare = stats([x * 1e6 / seconds for x in floor])
        results["engine"] = {"conversation_seconds": seconds, "events": len(events),
                             "us_per_conversation_second": per_s,
                             "us_per_conversation_second_vad_window": per_s_direct,
                             "us_per_conversation_second_no_window_outputs": per_s_quiet,
                             "bare_loop_us_per_conversation_second": per_s_bare,
                             "by_kind": by_kind(events, 1)}
        print(f"1. engine, {len(events)} events over {seconds / 60:.0f} min, public API:")
        print(f"   VAD windows as events:        {fmt(per_s, 'us CPU per conversation-second')}")
        print(f"   windows as events, no window outputs: "
              f"{fmt(per_s_quiet, 'us CPU per conversation-second')}")
        print(f"   windows via vad_window(): {fmt(per_s_direct, 'us CPU per conversation-second')}")
        print("   bare loop (baseline):         "
              f"{fmt(per_s_bare, 'us CPU per conversation-second', 2)}")
        print(f"   -> {1e6 / per_s_direct['median']:,.0f} real-time conversations per core "
              f"({1e6 / per_s['median']:,.0f} with window events)")
        for k, v in results["engine"]["by_kind"].items():
            print(f"   {k:24s} {v['us_per_event']:7.2f} us/event  ({v['events']:.0f} events)")

    # 2
    if want(2):
        ref = reference_python(a.reference)
        results["replay"] = {}
        print("\n2. whole-process replay (CPU seconds, start-up included; peak RSS):")
        lengths = [10.0, 30.0] if a.quick else [60.0, 180.0]
        script = str(ROOT.parent / "shared" / "conformance" / "replay_livekit.py")
        with tempfile.TemporaryDirectory() as tmp:
            warm = Path(tmp) / "warm.jsonl"  # one untimed start each writes the bytecode caches
            with open(warm, "w") as f:
                write_session(0.2, f)
            run_process(sys.executable, "turnfsm.cli", ["replay", str(warm)], Path(tmp) / "w")
            base = None
            if a.baseline:  # the same replay with a git revision's code, in the same run
                from audio_bench import baseline_src
                base = baseline_src(a.baseline)
                run_process(sys.executable, "turnfsm.cli", ["replay", str(warm)],
                            Path(tmp) / "w", base)
            if ref is not None:
                run_process(ref, script, [str(warm)], Path(tmp) / "w")
            for m in lengths:
                trace = Path(tmp) / f"s{m:g}.jsonl"
                with open(trace, "w") as f:
                    n = write_session(m, f)
                # turnfsm, the baseline and the reference take turns, so a change in the
                # machine's load falls on all of them
                ours, before, theirs = [], [], []
                for k in range(max(3, reps // 2)):
                    ours.append(run_process(sys.executable, "turnfsm.cli",
                                            ["replay", str(trace)], Path(tmp) / "ours.jsonl"))
                    if base is not None:
                        before.append(run_process(sys.executable, "turnfsm.cli",
                                                  ["replay", str(trace)],
                                                  Path(tmp) / "base.jsonl", base))
                    if ref is not None and k < 2:
                        theirs.append(run_process(ref, script, [str(trace)],
                                                  Path(tmp) / "ref.jsonl"))
                row: dict[str, Any] = {"inputs": n, "turnfsm_s": stats([w for w, _ in ours]),
                                       "turnfsm_peak_mb": stats([mb for _, mb in ours])}
                line = (f"   {m:g} min ({n} inputs): turnfsm {fmt(row['turnfsm_s'], 's', 2)}, "
                        f"peak {row['turnfsm_peak_mb']['median']:.0f} MB")
                if before:
                    row["baseline_s"] = stats([w for w, _ in before])
                    row["baseline_same_output"] = ((Path(tmp) / "base.jsonl").read_bytes()
                                                   == (Path(tmp) / "ours.jsonl").read_bytes())
                    line += (f"; {a.baseline} {fmt(row['baseline_s'], 's', 2)}"
                             f"{'' if row['baseline_same_output'] else ' (OUTPUTS DIFFER)'}")
                if ref is not None:
                    row["same_output"], row["onsets_corrected"] = same_but_onsets(
                        Path(tmp) / "ref.jsonl", Path(tmp) / "ours.jsonl")
                    row["reference_s"] = stats([w for w, _ in theirs])
                    row["reference_peak_mb"] = stats([mb for _, mb in theirs])
                    row["speedup"] = row["reference_s"]["median"] / row["turnfsm_s"]["median"]
                    line += (f"; reference {fmt(row['reference_s'], 's', 2)}, peak "
                             f"{row['reference_peak_mb']['median']:.0f} MB -> "
                             f"{row['speedup']:.1f}x faster"
                             f"{'' if row['same_output'] else ' (OUTPUTS DIFFER)'}"
                             f" (same output but {row['onsets_corrected']} onsets D4 corrects)")
                results["replay"][f"{m:g}min"] = row
                print(line)
        if ref is None:
            print("   (no reference Python: give --reference or $REFERENCE_PYTHON)")

    # 3
    if want(3):
        n = 2000 if a.quick else 10000
        idle = [memory_per_engine(n, False) for _ in range(2)]
        active = [memory_per_engine(n, True) for _ in range(2)]
        results["memory"] = {"idle_bytes": stats(idle), "active_bytes": stats(active)}
        print(f"\n3. memory per engine ({n} engines, tracemalloc): idle "
              f"{statistics.median(idle) / 1024:.1f} KB, mid-turn "
              f"{statistics.median(active) / 1024:.1f} KB")
    # 4
    if want(4):
        print("\n4. asyncio runtime (runtime_load.py: Sessions on one event loop, one core, real "
              "time):")
        load = (["--sessions", "200", "--seconds", "5", "--baseline-seconds", "5"] if a.quick else
                ["--sessions", "1000", "--seconds", "30", "--baseline-seconds", "15"])
        spans = (["--spans", "--span-turns", "50", "--span-reps", "3"] if a.quick else
                 ["--spans"])
        for args in (load, spans):
            p = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "runtime_load.py"),
                                *args], capture_output=True, text=True)
            text = p.stdout.splitlines()
            if p.returncode != 0:
                print(f"   runtime_load.py {' '.join(args)} failed: {p.stderr[-300:]}")
                continue
            if args is load:  # the summary paragraph
                start = next((i for i, ln in enumerate(text) if ln.startswith("summary")), 0)
                text = text[start + 1:]
            else:  # the table
                text = [ln for ln in text if ln.strip() and not ln.startswith("AMD")
                        and "pinned to" not in ln]
            for ln in text:
                print(f"   {ln.rstrip() if args is spans else ln.strip()}")

    # 5
    if want(5):
        tune = ROOT / "benchmarks" / "tune_bench.py"
        if tune.exists():
            print("\n5. tuning sweep (tune_bench.py):")
            p = subprocess.run([sys.executable, str(tune), *(["--quick"] if a.quick else [])],
                               capture_output=True, text=True)
            for ln in (p.stdout if p.returncode == 0 else p.stderr[-500:]).splitlines():
                if ln.strip():
                    print(f"   {ln.strip()}")

    # 6
    if want(6):
        print("\n6. the audio path (audio_bench.py):")
        audio_json = Path(tempfile.mkstemp(suffix=".json")[1])
        p = subprocess.run([sys.executable, str(HERE / "audio_bench.py"), "--json", str(audio_json),
                            *(["--quick"] if a.quick else []),
                            *(["--baseline", a.baseline] if a.baseline else [])],
                           capture_output=True, text=True)
        for ln in (p.stdout if p.returncode == 0 else p.stderr[-800:]).splitlines():
            if ln.strip():
                print(f"   {ln.rstrip()}")
        if p.returncode == 0:
            results["audio"] = json.loads(audio_json.read_text())
        audio_json.unlink(missing_ok=True)

    print(f"\nprocess peak RSS of this run: "
          f"{resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} MB")
    if a.json:
        Path(a.json).write_text(json.dumps(results, indent=1))
    return 0


def _cpu() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown CPU"



if __name__ == "__main__":
    sys.exit(main())
