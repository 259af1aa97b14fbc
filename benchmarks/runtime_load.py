#!/usr/bin/env python3
"""Load benchmark of the asyncio runtime: many concurrent Sessions on one event loop, fed in
real time from scripted sources, in one process pinned to one core.

    python benchmarks/runtime_load.py                      # 250, 500, 1000 sessions, 30 s each
    python benchmarks/runtime_load.py --sessions 1000 --seconds 30 --json out.json
    python benchmarks/runtime_load.py --spans              # span observer cost per turn
    python benchmarks/runtime_load.py --profile 10         # where the time goes (cProfile)

Each session runs a scripted conversation in real time (the normal asyncio loop, no virtual
clock): an agent greeting, then user turns of 1-4 s (VAD start, a VAD inference window every
32 ms while the user speaks and through the trailing silence, one or two interims, a final,
VAD end; sometimes a pause inside the turn), then the agent's reply (agent speech started /
ended), a pause, the next user turn. One task per session sleeps (``asyncio.sleep``) until
each event's scripted time and pushes it, unstamped: the session stamps it with session time.

Measured over a window that starts once every session runs: the process's CPU share, the
lateness of end-of-turn deadlines (in ``on_end_of_turn``: ``session.now() - o.t``, for ends
of turn a timer decided, after the VAD end), events pushed per second, CPU per event, turns
completed. The same sources also feed a trivial sink (no engine) in the same run: the cost
of the feeding itself, so the engine and session's share above it is known.
"""

from __future__ import annotations

import argparse
import asyncio
import bisect
import cProfile
import datetime as _dt
import gc
import inspect
import io
import json
import logging
import math
import os
import platform
import pstats
import random
import resource
import statistics
import sys
import time
from array import array
from collections.abc import Callable, Iterator, Sequence
from typing import TYPE_CHECKING, Any

from turnfsm import EndpointingOptions, Engine, EngineOptions
from turnfsm import events as ev
from turnfsm import outputs as out

if TYPE_CHECKING:
    from turnfsm.runtime import Session

WINDOW = 0.032  # VAD inference window (s)
VAD_MIN_SPEECH = 0.1  # speech before the VAD confirms a start
VAD_INFERENCE = 0.004  # VAD inference time reported with its events
MIN_DELAY, MAX_DELAY = 0.6, 3.0  # endpointing (the packaged example session's)
TARGET_P99_MS = 5.0
LATE = 0.002  # ends of turn later than this are matched with the collector's pauses
QUIET_OTHERS = 0.15  # a second is quiet when other processes took less of the core than this
CPU_HEADROOM = 0.70

PHRASES = [
    "can you book a table for two tonight?", "I'd like to change my delivery address.",
    "what time does the pharmacy close on sundays?", "yes that works for me.",
    "no I meant the other account, the savings one.", "could you repeat the last part?",
    "I want to cancel my subscription.", "how much is the premium plan per month?",
    "my order number is four five seven two nine.", "sure, go ahead.",
    "is there anything earlier in the morning?", "please send it to my email.",
    "and one more thing about the invoice.", "I'll take the window seat.",
]

# kinds of scripted steps
VAD, VAD_END, STT, AGENT_START, AGENT_END, AUDIO = range(6)
Step = tuple[float, int, Any]  # (session time, kind, event or None)


# -- the scripted conversation -------------------------------------------------------------


def _utterance(rng: random.Random, s: float, d: float, text: str, origin: float,
               silence: float, out_: list[float], *, last: bool) -> Iterator[Step]:
    """One utterance from onset ``s`` lasting ``d`` s, its steps in time order: VAD start, a
    window every 32 ms (made when it is due, as a VAD would), interims, final, VAD end.
    ``out_`` receives the time of the last window with speech. The final comes 0.15-0.35 s
    after the speech, by the VAD end unless it is the turn's ``last`` utterance."""
    vad_end = s + d + silence
    sparse: list[Step] = [(s + VAD_MIN_SPEECH, VAD, ev.VadStartOfSpeech(
        speech_duration=VAD_MIN_SPEECH, inference_duration=VAD_INFERENCE))]
    words = text.split()
    fractions = [0.45] if rng.random() < 0.5 else [0.35, 0.7]
    for f in fractions:  # interims, each a little after the words they hold were spoken
        n = max(1, int(len(words) * f))
        sparse.append((s + d * f + rng.uniform(0.05, 0.2), STT, ev.SttInterim(
            text=" ".join(words[:n]), language="en", confidence=rng.uniform(0.5, 0.8),
            start_time=s - origin, end_time=s + d * f - origin)))
    late = rng.uniform(0.15, 0.35 if last else min(0.35, silence))
    sparse.append((s + d + late, STT, ev.SttFinal(
        text=text, language="en", confidence=rng.uniform(0.8, 0.98), start_time=s - origin,
        end_time=s + d - origin)))
    sparse.append((vad_end, VAD_END, ev.VadEndOfSpeech(
        silence_duration=silence, inference_duration=VAD_INFERENCE, speech_duration=d)))
    sparse.sort(key=lambda x: x[0])
    i, k = 0, 1
    while True:
        w = s + k * WINDOW
        if w >= vad_end:
            break
        while sparse[i][0] <= w:
            yield sparse[i]
            i += 1
        if w <= s + d:
            out_[0] = w
            yield w, VAD, ev.VadInferenceDone(
                raw_accumulated_speech=w - s, speech_duration=w - s, probability=0.92,
                speaking=w >= s + VAD_MIN_SPEECH, inference_duration=VAD_INFERENCE)
        else:
            yield w, VAD, ev.VadInferenceDone(
                raw_accumulated_silence=w - s - d, speech_duration=d, probability=0.08,
                speaking=True, inference_duration=VAD_INFERENCE)
        k += 1
    yield from sparse[i:]


def conversation(rng: random.Random) -> Iterator[Step]:
    """A session's script, endless, in session time: a greeting, then user turns and agent
    replies. Times only grow."""
    yield 0.0, AUDIO, ev.AudioPushed(duration=0.02)  # the STT stream's time origin
    yield 0.0, AGENT_START, None  # the agent greets: a random phase for every session
    t = rng.uniform(0.5, 6.0)
    yield t, AGENT_END, None
    silence = rng.uniform(0.3, 0.45)  # this user's VAD min silence
    while True:
        t += rng.uniform(0.3, 1.5)  # the user starts
        length = rng.uniform(1.0, 4.0)
        paused = rng.random() < 0.2 and length > 1.6  # a pause inside the turn
        parts = [length * 0.45, length * 0.55] if paused else [length]
        text = rng.choice(PHRASES)
        if paused:
            w = text.split()
            texts = [" ".join(w[: len(w) // 2]), " ".join(w[len(w) // 2:])]
        else:
            texts = [text]
        last = [t]
        for i, (d, txt) in enumerate(zip(parts, texts, strict=True)):
            yield from _utterance(rng, t, d, txt, 0.0, silence, last, last=i + 1 == len(parts))
            t += d + silence  # the VAD end
            if i + 1 < len(parts):
                t += rng.uniform(0.0, 0.15)  # the pause; the VAD start comes 0.1 s later
        # the agent replies once its reply is ready (end of turn + LLM/TTS latency)
        t = max(t, last[0] + MIN_DELAY) + rng.uniform(0.4, 1.2)
        yield t, AGENT_START, None
        t += rng.uniform(1.5, 5.0)
        yield t, AGENT_END, None


# -- sinks ---------------------------------------------------------------------------------


class Stats:
    """What one run counts (only while ``measuring``)."""

    def __init__(self) -> None:
        self.measuring = False
        self.events = 0
        self.turns = 0  # ends of turn delivered (accepted)
        # arrays, not lists: the collector does not walk them
        self.lateness = array("d")  # s, ends of turn a timer decided after the VAD end
        self.lateness_at = array("d")  # loop time of each
        self.not_timed = 0  # ends of turn due at or before the VAD end (no timer)
        self.feed_lateness = array("d")  # s, source wake-up after the scripted time
        self.feed_at = array("d")
        self.hook_errors = 0


class TurnHooks:
    """The session's hooks: accept every end of turn and measure its lateness."""

    __slots__ = ("session", "stats", "vad_end_t")

    def __init__(self, stats: Stats) -> None:
        self.stats = stats
        self.session: Session | None = None
        self.vad_end_t = -math.inf

    def on_end_of_turn(self, o: out.EndOfTurn) -> bool:
        now = self.session.now()  # type: ignore[union-attr]
        st = self.stats
        if st.measuring:
            st.turns += 1
            if o.decision is not None and o.t > self.vad_end_t:
                st.lateness.append(now - o.t)
                st.lateness_at.append(self.session.loop.time())  # type: ignore[union-attr]
            else:
                st.not_timed += 1
        return True

    def on_error(self, exc: BaseException) -> None:
        self.stats.hook_errors += 1


class EngineSink:
    """Feeds a real Session."""

    __slots__ = ("hooks", "session")
    telemetry = False  # a span observer per session (--session-telemetry)

    def __init__(self, stats: Stats, options: EngineOptions) -> None:
        from turnfsm.runtime import Session  # here: --spans runs without the runtime too

        self.hooks = TurnHooks(stats)
        self.session = Session(options, hooks=self.hooks, telemetry=self.telemetry)
        self.hooks.session = self.session

    def feed(self, kind: int, e: Any) -> None:
        s = self.session
        if kind == VAD:
            s.push_vad(e)
        elif kind == STT:
            s.push_stt(e)
        elif kind == VAD_END:
            self.hooks.vad_end_t = s.push(e).t  # push_vad, keeping the stamped time
        elif kind == AGENT_START:
            s.agent_speech_started()
        elif kind == AGENT_END:
            s.agent_speech_ended()
        else:
            s.push_audio(e.duration)

    async def aclose(self) -> None:
        await self.session.aclose()


class TrivialSink:
    """The baseline: takes the same calls and does nothing but count."""

    __slots__ = ("n",)

    def __init__(self, stats: Stats, options: EngineOptions) -> None:
        self.n = 0

    def feed(self, kind: int, e: Any) -> None:
        self.n += 1

    async def aclose(self) -> None:
        return None


# -- one run -------------------------------------------------------------------------------


class GcTimer:
    """Pauses of the cyclic garbage collector: per generation, in wall and in CPU time (a
    pause much longer in wall time than in CPU time was the process being descheduled)."""

    def __init__(self) -> None:
        self.on = False
        self.count = [0, 0, 0]
        self.wall = [0.0, 0.0, 0.0]
        self.cpu = [0.0, 0.0, 0.0]
        self.longest_wall = [0.0, 0.0, 0.0]
        self.longest_cpu = [0.0, 0.0, 0.0]
        self._w = self._c = self._m = 0.0
        self.pauses: list[tuple[float, float, int]] = []  # (start, end, generation), monotonic

    def __call__(self, phase: str, info: dict[str, int]) -> None:
        if phase == "start":
            self._w, self._c, self._m = time.perf_counter(), time.process_time(), time.monotonic()
        elif self.on:
            g = info["generation"]
            w, c = time.perf_counter() - self._w, time.process_time() - self._c
            self.count[g] += 1
            self.wall[g] += w
            self.cpu[g] += c
            self.longest_wall[g] = max(self.longest_wall[g], w)
            self.longest_cpu[g] = max(self.longest_cpu[g], c)
            self.pauses.append((self._m, self._m + w, g))

    def report(self) -> dict[str, Any]:
        return {"collections": sum(self.count), "total_ms": round(sum(self.wall) * 1e3, 1),
                "longest_ms": round(max(self.longest_wall) * 1e3, 2),
                "by_generation": [
                    {"count": self.count[g], "wall_ms": round(self.wall[g] * 1e3, 1),
                     "cpu_ms": round(self.cpu[g] * 1e3, 1),
                     "longest_wall_ms": round(self.longest_wall[g] * 1e3, 2),
                     "longest_cpu_ms": round(self.longest_cpu[g] * 1e3, 2)} for g in range(3)]}


def quietest_core(sample: float = 1.0) -> int:
    """The allowed core with the least busy time over ``sample`` seconds."""
    allowed = sorted(os.sched_getaffinity(0))
    before = {c: core_ticks(c) for c in allowed}
    time.sleep(sample)
    busy = {}
    for c in allowed:
        b, a = before[c], core_ticks(c)
        busy[c] = (a[0] - b[0]) / max(1, a[1] - b[1]) if a and b else 0.0
    return min(allowed, key=lambda c: (busy[c], -c))


def core_ticks(core: int) -> tuple[int, int] | None:
    """(busy, total) clock ticks of one core since boot, from /proc/stat."""
    try:
        with open("/proc/stat", encoding="utf-8") as f:
            for line in f:
                if line.startswith(f"cpu{core} "):
                    v = [int(x) for x in line.split()[1:]]
                    return sum(v) - v[3] - v[4], sum(v[:8])
    except OSError:
        pass
    return None


class LogCounter(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.n = 0
        self.first: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.n += 1
        if len(self.first) < 3:
            self.first.append(record.getMessage()[:200])


def _quantiles_ms(xs: Sequence[float]) -> dict[str, float | int | None]:
    if not xs:
        return {"count": 0, "p50": None, "p90": None, "p99": None, "max": None, "min": None}
    ys = sorted(xs)

    def q(p: float) -> float:
        return round(ys[min(len(ys) - 1, max(0, math.ceil(p * len(ys)) - 1))] * 1e3, 3)
    return {"count": len(ys), "p50": q(0.50), "p90": q(0.90), "p99": q(0.99),
            "max": round(ys[-1] * 1e3, 3), "min": round(ys[0] * 1e3, 3)}


async def _run(n: int, seconds: float, sink_cls: type, *, seed: int, stagger: float,
               warmup: float, options: EngineOptions, gc_freeze: bool = False
               ) -> dict[str, Any]:
    loop = asyncio.get_running_loop()
    stats = Stats()
    t_start = loop.time()
    win_start = t_start + stagger + warmup
    win_end = win_start + seconds
    sinks: list[Any] = []
    created = [0]

    async def drive(i: int) -> None:
        rng = random.Random(seed * 1_000_003 + i)
        await asyncio.sleep(rng.uniform(0.0, stagger))
        sink = sink_cls(stats, options)
        sinks.append(sink)
        created[0] += 1
        base = loop.time()
        feed = sink.feed
        st = stats
        lat, lat_at = st.feed_lateness, st.feed_at
        for at, kind, e in conversation(rng):
            due = base + at
            now = loop.time()
            if due > now:
                await asyncio.sleep(due - now)
                now = loop.time()
            if now >= win_end:
                return
            if st.measuring:
                st.events += 1
                lat.append(now - due)
                lat_at.append(now)
            feed(kind, e)

    gct = GcTimer()
    gc.callbacks.append(gct)
    tasks = [loop.create_task(drive(i)) for i in range(n)]
    # the measured window: CPU sampled every second for the spread
    await asyncio.sleep(max(0.0, win_start - loop.time()))
    assert created[0] == n, "every session must be running before the window opens"
    if gc_freeze:  # everything made so far leaves the collector's generations
        gc.freeze()
    core = sorted(os.sched_getaffinity(0))[0]
    stats.measuring = True
    gct.on = True
    ticks0 = core_ticks(core)
    ru0 = resource.getrusage(resource.RUSAGE_SELF)
    cpu0, wall0 = time.process_time(), loop.time()
    # every second: our CPU share and the core's busy share (all processes)
    seconds_: list[tuple[float, float, float, float | None]] = []
    prev_cpu, prev_wall, prev_ticks = cpu0, wall0, ticks0
    while True:
        left = win_end - loop.time()
        if left <= 0:
            break
        await asyncio.sleep(min(1.0, left))
        c, w, k = time.process_time(), loop.time(), core_ticks(core)
        busy = None
        if k and prev_ticks and k[1] > prev_ticks[1]:
            busy = (k[0] - prev_ticks[0]) / (k[1] - prev_ticks[1])
        if w - prev_wall > 0.5:
            seconds_.append((prev_wall, w, (c - prev_cpu) / (w - prev_wall), busy))
        prev_cpu, prev_wall, prev_ticks = c, w, k
    cpu1, wall1 = time.process_time(), loop.time()
    ru1 = resource.getrusage(resource.RUSAGE_SELF)
    ticks1 = core_ticks(core)
    stats.measuring = False
    gct.on = False
    gc.callbacks.remove(gct)
    for task in tasks:  # the sources stop with the window
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)
    t_close = time.perf_counter()
    await asyncio.gather(*(s.aclose() for s in sinks))
    close_s = time.perf_counter() - t_close
    if gc_freeze:
        gc.unfreeze()
    core_busy = None
    if ticks0 and ticks1 and ticks1[1] > ticks0[1]:
        core_busy = (ticks1[0] - ticks0[0]) / (ticks1[1] - ticks0[1])
    wall = wall1 - wall0
    cpu = cpu1 - cpu0
    # late ends of turn whose wait (deadline to emission) overlapped a collector pause
    by_gc = [0, 0, 0]
    n_late = 0
    for at, late in zip(stats.lateness_at, stats.lateness, strict=True):
        if late <= LATE:
            continue
        n_late += 1
        gens = [g for a, b, g in gct.pauses if a < at and b > at - late]
        if gens:
            by_gc[max(gens)] += 1
    # quiet seconds: other processes left the core alone (took under QUIET_OTHERS of it)
    quiet = [(a, b) for a, b, ours, busy in seconds_
             if busy is not None and busy - ours < QUIET_OTHERS]
    starts = [a for a, _b in quiet]

    def in_quiet(at: float) -> bool:
        i = bisect.bisect_right(starts, at) - 1
        return i >= 0 and at <= quiet[i][1]
    eot_quiet = [x for at, x in zip(stats.lateness_at, stats.lateness, strict=True)
                 if in_quiet(at)]
    feed_quiet = [x for at, x in zip(stats.feed_at, stats.feed_lateness, strict=True)
                  if in_quiet(at)]
    shares = [ours for _a, _b, ours, _busy in seconds_]
    others = [max(0.0, busy - ours) for _a, _b, ours, busy in seconds_ if busy is not None]
    return {
        "sessions": n, "wall_s": round(wall, 3), "cpu_s": round(cpu, 3),
        "cpu_share": round(cpu / wall, 4),
        "cpu_share_per_s": {"median": _r(statistics.median(shares)) if shares else None,
                            "min": _r(min(shares)) if shares else None,
                            "max": _r(max(shares)) if shares else None},
        "user_s": round(ru1.ru_utime - ru0.ru_utime, 3),
        "sys_s": round(ru1.ru_stime - ru0.ru_stime, 3),
        "involuntary_ctx_switches": ru1.ru_nivcsw - ru0.ru_nivcsw,
        "events": stats.events, "events_per_s": round(stats.events / wall, 1),
        "us_per_event": round(cpu / stats.events * 1e6, 2) if stats.events else None,
        "turns": stats.turns, "turns_per_s": round(stats.turns / wall, 2),
        "eot_lateness_ms": _quantiles_ms(stats.lateness),
        "eot_lateness_ms_quiet": _quantiles_ms(eot_quiet),
        "eot_not_timed": stats.not_timed,
        "eot_late_over_2ms": n_late,
        "eot_late_over_2ms_during_gc_by_generation": by_gc,
        "feed_lateness_ms": _quantiles_ms(stats.feed_lateness),
        "feed_lateness_ms_quiet": _quantiles_ms(feed_quiet),
        "gc": gct.report(),
        # the pinned core's busy share (every process) and what the others took of it
        "core_busy_share": None if core_busy is None else round(core_busy, 3),
        "others_share": None if core_busy is None else round(max(0.0, core_busy - cpu / wall),
                                                             3),
        "others_share_per_s_max": round(max(others), 3) if others else None,
        "quiet_seconds": round(sum(b - a for a, b in quiet), 1),
        "hook_errors": stats.hook_errors, "close_s": round(close_s, 3),
    }


def _r(x: float) -> float:
    return round(x, 4)


def run_once(n: int, seconds: float, sink_cls: type, **kw: Any) -> dict[str, Any]:
    gc.collect()
    logc = LogCounter()
    lg = logging.getLogger("turnfsm")
    lg.addHandler(logc)
    try:
        res = asyncio.run(_run(n, seconds, sink_cls, **kw))
    finally:
        lg.removeHandler(logc)
    res["log_warnings"] = logc.n
    if logc.first:
        res["log_first"] = logc.first
    res["loadavg_after"] = [round(x, 2) for x in os.getloadavg()]
    return res


# -- the span observer's cost (Engine directly, no asyncio) ------------------------------------


def scripted_events(turns: int, seed: int = 7) -> list[Step]:
    """A fixed conversation of ``turns`` user turns, stamped."""
    rng = random.Random(seed)
    steps: list[Step] = []
    n_agent_end = 0
    for step in conversation(rng):
        steps.append(step)
        if step[1] == AGENT_END:
            n_agent_end += 1
            if n_agent_end > turns:
                break
    return steps


def drive_engine(steps: list[Step], observer: Any = None) -> int:
    """Run ``steps`` through an Engine as a host would (timers fired in order, every end of
    turn accepted); return the ends of turn."""
    engine = Engine(_options())
    if observer is not None:
        engine.add_observer(observer)
    handle, advance = engine.handle, engine.advance
    eots = 0

    def settle(outs: list[out.Output], t: float) -> None:
        nonlocal eots
        for o in outs:
            if type(o) is out.EndOfTurn:
                eots += 1
                settle(handle(ev.EndOfTurnAnswered(t=o.t, accepted=True)), t)
    for at, kind, e in steps:
        while True:  # an advance stops at an end of turn: answer it, go on
            d = engine.next_deadline()
            if d is None or d > at:
                break
            settle(advance(d), at)
        if kind == AGENT_START:
            e = ev.AgentSpeechStarted(t=at)
        elif kind == AGENT_END:
            e = ev.AgentSpeechEnded(t=at)
        else:
            e = _stamp(e, at)
        settle(handle(e), at)
    return eots


def _stamp(e: ev.Input, t: float) -> ev.Input:
    import attrs
    return attrs.evolve(e, t=round(t, 6))


def _null_observer(record: Any) -> None:
    return None


def span_costs(turns: int, reps: int) -> dict[str, Any]:
    try:
        from turnfsm.telemetry import SpanObserver  # type: ignore[import-not-found]
    except ImportError as exc:
        return {"available": False, "why": str(exc)}
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

    steps = scripted_events(turns)
    sig = inspect.signature(SpanObserver)

    def make(provider: Any) -> Any:
        kw: dict[str, Any] = {}
        if "conversation_id" in sig.parameters:
            kw["conversation_id"] = "bench"
        return SpanObserver(provider, **kw)

    exporter = InMemorySpanExporter()
    sdk = TracerProvider()
    sdk.add_span_processor(SimpleSpanProcessor(exporter))
    variants: dict[str, Callable[[], Any]] = {
        "none": lambda: None,
        "null_observer": lambda: _null_observer,  # the step records alone
        "noop_provider": lambda: make(None),  # the global provider: a no-op unless set
        "sdk_in_memory": lambda: make(sdk),
    }
    times: dict[str, list[float]] = {k: [] for k in variants}
    eots: dict[str, int] = {}
    drive_engine(steps)  # warm up
    for _ in range(reps):
        for name, mk in variants.items():  # interleaved: drift hits every variant alike
            obs = mk()
            gc.collect()
            t0 = time.perf_counter()
            eots[name] = drive_engine(steps, obs)
            times[name].append(time.perf_counter() - t0)
            exporter.clear()
    spans_per_run = None
    obs = make(sdk)
    drive_engine(steps, obs)
    spans_per_run = len(exporter.get_finished_spans())
    exporter.clear()
    base = statistics.median(times["none"])
    res: dict[str, Any] = {"available": True, "turns": eots["none"], "events": len(steps),
                           "reps": reps, "sdk_spans_per_run": spans_per_run, "variants": {}}
    for name, ts in times.items():
        per_turn = [t / eots[name] * 1e6 for t in ts]
        res["variants"][name] = {
            "us_per_turn_median": round(statistics.median(per_turn), 1),
            "us_per_turn_min": round(min(per_turn), 1),
            "us_per_turn_max": round(max(per_turn), 1),
            "us_per_turn_above_none": round((statistics.median(ts) - base) / eots[name] * 1e6,
                                            1),
            "turns": eots[name]}
    return res


# -- profile -------------------------------------------------------------------------------


def profile_run(n: int, seconds: float, **kw: Any) -> str:
    prof = cProfile.Profile()
    prof.enable()
    run_once(n, seconds, EngineSink, **kw)
    prof.disable()
    buf = io.StringIO()
    st = pstats.Stats(prof, stream=buf)
    st.sort_stats("tottime").print_stats(25)
    buf.write("\n--- by cumulative time ---\n")
    st.sort_stats("cumulative").print_stats(35)
    return buf.getvalue()


# -- report --------------------------------------------------------------------------------


def machine() -> dict[str, Any]:
    model = "unknown"
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as f:
            for line in f:
                if line.startswith("model name"):
                    model = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    return {"cpu_model": model, "cores": os.cpu_count(),
            "affinity": sorted(os.sched_getaffinity(0)),
            "python": platform.python_version(), "implementation": platform.python_implementation(),
            "platform": platform.platform(), "loop": "asyncio default (selector)",
            "date": _dt.datetime.now(_dt.UTC).strftime("%Y-%m-%d %H:%M UTC")}


def _options() -> EngineOptions:
    return EngineOptions(turn_detection="vad",
                         endpointing=EndpointingOptions(min_delay=MIN_DELAY, max_delay=MAX_DELAY))


def _fmt(x: Any, nd: int = 2) -> str:
    if x is None:
        return "-"
    if isinstance(x, float):
        return f"{x:.{nd}f}"
    return str(x)


def print_table(m: dict[str, Any], runs: list[dict[str, Any]]) -> None:
    print(f"\nmachine: {m['cpu_model']}, {m['cores']} cores (pinned to {m['affinity']}); "
          f"{m['implementation']} {m['python']}; {m['date']}")
    print("EoT: end-of-turn lateness in ms, p50/p90/p99/max (count); 'quiet': only the seconds "
          f"in which other processes took under {QUIET_OTHERS * 100:.0f}% of the core")
    hdr = (f"{'sessions':>8} {'sink':>8} {'CPU %':>6} {'%/s med [min-max]':>17} "
           f"{'events/s':>8} {'us/ev':>6} {'turns':>5} {'EoT all':>30} {'EoT quiet':>30} "
           f"{'feed p50/p99/max':>18} {'gc tot/max':>10} {'others%':>7} {'quiet s':>7}")
    print(hdr)
    print("-" * len(hdr))

    def lat(d: dict[str, Any]) -> str:
        if not d["count"]:
            return "-"
        return (f"{_fmt(d['p50'])}/{_fmt(d['p90'])}/{_fmt(d['p99'])}/{_fmt(d['max'], 1)}"
                f" ({d['count']})")
    for r in runs:
        ps = r["cpu_share_per_s"]
        spread = (f"{ps['median'] * 100:.0f} [{ps['min'] * 100:.0f}-{ps['max'] * 100:.0f}]"
                  if ps["median"] is not None else "-")
        engine = r["sink"] == "engine"
        fl = r["feed_lateness_ms"]
        feed = f"{_fmt(fl['p50'])}/{_fmt(fl['p99'], 1)}/{_fmt(fl['max'], 0)}"
        others = None if r["others_share"] is None else r["others_share"] * 100
        print(f"{r['sessions']:>8} {r['sink']:>8} {r['cpu_share'] * 100:>6.1f} {spread:>17} "
              f"{r['events_per_s']:>8.0f} {_fmt(r['us_per_event'], 1):>6} "
              f"{r['turns'] if engine else '-':>5} "
              f"{lat(r['eot_lateness_ms']) if engine else '-':>30} "
              f"{lat(r['eot_lateness_ms_quiet']) if engine else '-':>30} {feed:>18} "
              f"{r['gc']['total_ms']:>4.0f}/{r['gc']['longest_ms']:<5.1f} "
              f"{_fmt(others, 0):>7} {r['quiet_seconds']:>7.0f}")


def _spread(xs: list[float | None]) -> dict[str, float | None]:
    ys = [x for x in xs if x is not None]
    if not ys:
        return {"median": None, "min": None, "max": None}
    return {"median": round(statistics.median(ys), 4), "min": min(ys), "max": max(ys)}


def summarize(runs: list[dict[str, Any]]) -> dict[str, Any]:
    """Per session count: medians and ranges over the repetitions, the engine and session's
    share above the baseline, the verdicts."""
    by_n: dict[int, dict[str, list[dict[str, Any]]]] = {}
    for r in runs:
        by_n.setdefault(r["sessions"], {}).setdefault(r["sink"], []).append(r)
    rows = []
    for n, d in sorted(by_n.items()):
        es, bs = d.get("engine", []), d.get("baseline", [])
        row: dict[str, Any] = {"sessions": n, "repetitions": len(es)}
        if es:
            cpu = _spread([e["cpu_share"] for e in es])
            row.update(
                cpu_share=cpu,
                events_per_s=_spread([e["events_per_s"] for e in es]),
                us_per_event=_spread([e["us_per_event"] for e in es]),
                turns=_spread([e["turns"] for e in es]),
                eot_p50_ms=_spread([e["eot_lateness_ms"]["p50"] for e in es]),
                eot_p90_ms=_spread([e["eot_lateness_ms"]["p90"] for e in es]),
                eot_p99_ms=_spread([e["eot_lateness_ms"]["p99"] for e in es]),
                eot_max_ms=_spread([e["eot_lateness_ms"]["max"] for e in es]),
                quiet_eot_p50_ms=_spread([e["eot_lateness_ms_quiet"]["p50"] for e in es]),
                quiet_eot_p99_ms=_spread([e["eot_lateness_ms_quiet"]["p99"] for e in es]),
                quiet_eot_max_ms=_spread([e["eot_lateness_ms_quiet"]["max"] for e in es]),
                quiet_seconds=_spread([e["quiet_seconds"] for e in es]),
                eot_count=_spread([e["eot_lateness_ms"]["count"] for e in es]),
                others_share=_spread([e["others_share"] for e in es]))
            # the verdict is on the quiet seconds when there are enough of them
            quiet_ok = (row["quiet_seconds"]["median"] or 0) >= 10
            p99 = row["quiet_eot_p99_ms" if quiet_ok else "eot_p99_ms"]["median"]
            row["verdict_on"] = "quiet seconds" if quiet_ok else "all seconds (core contended)"
            row["meets_p99_target"] = p99 is not None and p99 <= TARGET_P99_MS
            # saturated: the process alone, or with the other processes on its core, left
            # the loop no time to keep up (the sources' wake-ups fell far behind)
            behind = statistics.median(
                [(e["core_busy_share"] or 0) > 0.95 and (e["feed_lateness_ms"]["p99"] or 0) > 50
                 for e in es])
            row["saturated"] = cpu["median"] > 0.9 or bool(behind)
            row["under_headroom"] = cpu["median"] < CPU_HEADROOM and not row["saturated"]
        if bs:
            row["baseline_cpu_share"] = _spread([b["cpu_share"] for b in bs])
            row["baseline_us_per_event"] = _spread([b["us_per_event"] for b in bs])
        if es and bs:
            e_us = row["us_per_event"]["median"]
            b_us = row["baseline_us_per_event"]["median"]
            row["engine_session_us_per_event"] = round(e_us - b_us, 2)
            row["engine_session_cpu_share"] = round(
                (e_us - b_us) * 1e-6 * row["events_per_s"]["median"], 4)
        rows.append(row)
    ok = [r["sessions"] for r in rows if r.get("under_headroom")]
    return {"rows": rows, "largest_under_70pct": max(ok) if ok else None}


def print_summary(summary: dict[str, Any]) -> None:
    def rng(d: dict[str, Any], scale: float = 1.0, nd: int = 1) -> str:
        if d["median"] is None:
            return "-"
        if d["min"] == d["max"]:
            return f"{d['median'] * scale:.{nd}f}"
        return f"{d['median'] * scale:.{nd}f} [{d['min'] * scale:.{nd}f}-{d['max'] * scale:.{nd}f}]"
    print("\nsummary (median [min-max] over repetitions):")
    for row in summary["rows"]:
        if "cpu_share" not in row:
            continue
        line = (f"{row['sessions']:>5} sessions x{row['repetitions']}: CPU "
                f"{rng(row['cpu_share'], 100)}%{' (saturated)' if row['saturated'] else ''}; "
                f"EoT lateness ms p50 {rng(row['eot_p50_ms'], nd=2)}, p99 "
                f"{rng(row['eot_p99_ms'], nd=2)}, max {rng(row['eot_max_ms'], nd=1)}; in quiet "
                f"seconds ({rng(row['quiet_seconds'], nd=0)} s) p50 "
                f"{rng(row['quiet_eot_p50_ms'], nd=2)}, p99 {rng(row['quiet_eot_p99_ms'], nd=2)}"
                f", max {rng(row['quiet_eot_max_ms'], nd=1)} "
                f"({'meets' if row['meets_p99_target'] else 'misses'} the "
                f"{TARGET_P99_MS:g} ms p99 target, judged on {row['verdict_on']}); "
                f"{rng(row['events_per_s'], nd=0)} events/s, "
                f"{rng(row['us_per_event'], nd=1)} us/event")
        if "engine_session_us_per_event" in row:
            line += (f"; baseline {rng(row['baseline_us_per_event'], nd=1)} us/event, "
                     f"{rng(row['baseline_cpu_share'], 100)}% CPU; engine+session above it "
                     f"{row['engine_session_us_per_event']:.1f} us/event = "
                     f"{row['engine_session_cpu_share'] * 100:.1f}% CPU")
        line += f"; other processes took {rng(row['others_share'], 100, 0)}% of the core"
        print(line)
    print(f"largest session count under {CPU_HEADROOM * 100:.0f}% CPU: "
          f"{summary['largest_under_70pct']}")


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--sessions", default="250,500,1000",
                   help="session counts, comma-separated (default 250,500,1000)")
    p.add_argument("--seconds", type=float, default=30.0,
                   help="measured window of each engine run (default 30)")
    p.add_argument("--baseline-seconds", type=float, default=None,
                   help="measured window of each baseline run (default: --seconds; 0: none)")
    p.add_argument("--stagger", type=float, default=2.0,
                   help="sessions start at random times within this many seconds")
    p.add_argument("--warmup", type=float, default=2.0,
                   help="seconds between the last start and the window")
    p.add_argument("--repeat", type=int, default=1,
                   help="run every configuration this many times (medians and ranges)")
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--core", default="auto",
                   help="the core to pin to, or 'auto': the one other processes used least "
                        "over one second (default)")
    p.add_argument("--gc-freeze", action="store_true",
                   help="gc.freeze() once every session runs (a host-side mitigation of long "
                        "full collections)")
    p.add_argument("--session-telemetry", action="store_true",
                   help="Session(telemetry=True): a span observer per session (needs "
                        "turnfsm.telemetry); off by default")
    p.add_argument("--json", metavar="OUT", help="write the figures as JSON")
    p.add_argument("--spans", action="store_true",
                   help="measure the span observer's cost per turn instead (Engine, no asyncio)")
    p.add_argument("--span-turns", type=int, default=200)
    p.add_argument("--span-reps", type=int, default=7)
    p.add_argument("--profile", type=float, metavar="SECONDS", default=None,
                   help="profile one engine run (the largest count) with cProfile instead")
    a = p.parse_args(argv)

    core = quietest_core() if a.core == "auto" else int(a.core)
    os.sched_setaffinity(0, {core})
    m = machine()
    result: dict[str, Any] = {"machine": m, "config": {
        "min_delay": MIN_DELAY, "max_delay": MAX_DELAY, "vad_window_s": WINDOW,
        "turn_detection": "vad", "seed": a.seed, "stagger_s": a.stagger, "warmup_s": a.warmup,
        "target_p99_ms": TARGET_P99_MS}}

    if a.spans:
        res = span_costs(a.span_turns, a.span_reps)
        result["spans"] = res
        if not res["available"]:
            print(f"turnfsm.telemetry.SpanObserver is not available ({res['why']}); "
                  "nothing to measure.")
        else:
            print(f"span observer, Engine directly: {res['turns']} turns, {res['events']} "
                  f"events per run, {res['reps']} repetitions (medians); "
                  f"{res['sdk_spans_per_run']} spans per run with the SDK")
            print(f"{'observer':>16} {'us/turn med [min-max]':>24} {'above none':>11}")
            for name, v in res["variants"].items():
                print(f"{name:>16} {v['us_per_turn_median']:>10.1f} "
                      f"[{v['us_per_turn_min']:.1f}-{v['us_per_turn_max']:.1f}]"
                      f"{v['us_per_turn_above_none']:>11.1f}")
            print(f"\n{m['cpu_model']}, {m['cores']} cores (pinned to {m['affinity']}); "
                  f"{m['implementation']} {m['python']}; {m['date']}")
        if a.json:
            with open(a.json, "w", encoding="utf-8") as f:
                json.dump(result, f, indent=2)
        return 0

    counts = sorted({int(x) for x in a.sessions.split(",") if x.strip()})
    if a.session_telemetry:
        try:
            import turnfsm.telemetry  # noqa: F401
        except ImportError as exc:
            print(f"--session-telemetry needs turnfsm.telemetry ({exc})", file=sys.stderr)
            return 2
    EngineSink.telemetry = a.session_telemetry
    result["config"]["session_telemetry"] = a.session_telemetry
    kw = {"seed": a.seed, "stagger": a.stagger, "warmup": a.warmup, "options": _options(),
          "gc_freeze": a.gc_freeze}
    result["config"]["gc_freeze"] = a.gc_freeze
    if a.profile is not None:
        print(profile_run(counts[-1], a.profile, **kw))
        return 0
    runs: list[dict[str, Any]] = []
    plan = [("engine", EngineSink, a.seconds)]
    base_s = a.seconds if a.baseline_seconds is None else a.baseline_seconds
    if base_s > 0:
        plan.insert(0, ("baseline", TrivialSink, base_s))
    for n, rep in ((n, rep) for rep in range(a.repeat) for n in counts):
        for name, cls, secs in plan:
            print(f"[{n} sessions, {name}, repetition {rep + 1}/{a.repeat}: {secs:g} s "
                  "measured]", file=sys.stderr, flush=True)
            r = run_once(n, secs, cls, **kw)
            r["sink"] = name
            r["repetition"] = rep + 1
            runs.append(r)
            print(f"  CPU {r['cpu_share'] * 100:.1f}%, {r['events_per_s']:.0f} events/s, "
                  f"{r['us_per_event']} us/event, EoT p99 {r['eot_lateness_ms']['p99']} ms",
                  file=sys.stderr, flush=True)
    result["runs"] = runs
    result["summary"] = summarize(runs)
    print_table(m, runs)
    print_summary(result["summary"])
    if a.json:
        with open(a.json, "w", encoding="utf-8") as f:
            json.dump(result, f, indent=2)
    return 0


if __name__ == "__main__":
    sys.exit(main())
