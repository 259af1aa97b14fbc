#!/usr/bin/env python3
"""Soak of the asyncio Session under injected faults: conservation and leaks.

    python benchmarks/soak.py                       # 100 slots x 10 virtual minutes, seed 1
    python benchmarks/soak.py --slots 200 --minutes 10 --seed 7 --json out.json

``--slots`` conversations run at once on one virtual-clock event loop for ``--minutes`` of
virtual time (nothing sleeps for real). Each slot runs sessions back to back: a session lives
a random time (exponential, mean ``--lifetime`` s) and is closed with ``aclose()`` wherever it
is (mid-utterance, a final in flight, a wait running, the model thinking, the host's answer
pending), then the slot starts the next one. Every session gets a random valid stream: user
utterances of 0.4-4 s (VAD start, a window every 0.1 s, interims, a final before or after the
VAD end, sometimes two finals, sometimes none), agent replies, sometimes a backchannel over the
agent, a push-to-talk commit or a clear; and, with probability ``--fault-rate``, one injected
fault (:mod:`turnfsm.runtime.faults`): a model method that hangs, is slow, raises, is cancelled
or answers NaN/inf/garbage; an ``on_end_of_turn`` that hangs, raises, is cancelled or answers
something whose truth cannot be read; every other hook raising; an observer raising on every
step; a broken tracer provider.

Reported: sessions, finals pushed, delivered (in an end of turn the host took), dropped by
reason, **lost** (neither: must be 0), ends of turn decided, the process's resident memory
at the start and the end (after a collection) and its peak, asyncio tasks left after the last
close (must be 0), CPU time. Exit status 1 when anything was lost or left.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import logging
import random
import resource
import sys
import time
from collections import Counter
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

from turnfsm import EndpointingOptions, EngineOptions
from turnfsm import events as ev
from turnfsm.runtime import Session
from turnfsm.runtime.faults import (
    HOOK_FAULTS,
    MODEL_FAULTS,
    BrokenTracerProvider,
    FaultyHooks,
    FaultyModel,
    Ledger,
    RaisingObserver,
)
from turnfsm.runtime.virtual import VirtualClockLoop

METHODS = ("supports_language", "predict_end_of_turn", "unlikely_threshold")
TRACER_FAULTS = ("get_tracer", "start_span", "end", "set_attribute", "span")


def rss_mb() -> float:
    """Current resident memory of this process (MB)."""
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * resource.getpagesize() / 2**20


class Totals:
    """What every session's ledger said, summed."""

    def __init__(self) -> None:
        self.sessions = 0
        self.pushed = 0
        self.delivered = 0
        self.dropped: Counter[str] = Counter()
        self.lost: list[tuple[str, str, str]] = []  # (session, fault, final)
        self.turns = 0
        self.taken = 0
        self.faults: Counter[str] = Counter()
        self.failed_sessions = 0

    def add(self, name: str, fault: str, ledger: Ledger) -> None:
        self.sessions += 1
        self.pushed += len(ledger.pushed)
        self.delivered += sum(1 for w in ledger.pushed if w in ledger.delivered)
        self.dropped.update(ledger.drop_reasons())
        self.lost += [(name, fault, w) for w in ledger.lost()]
        self.turns += ledger.turns
        self.taken += ledger.taken
        self.faults[fault.split(":")[0]] += 1


def pick_fault(rng: random.Random, rate: float) -> tuple[str, dict[str, Any]]:
    """One fault for a session (or none): its name and the Session's keyword arguments."""
    if rng.random() >= rate:
        return "none", {}
    kind = rng.choice(("model", "model", "hook", "hook", "hooks", "observer", "tracer"))
    times = rng.choice((1, 1, 3, 1000))
    if kind == "model":
        method, f = rng.choice(METHODS), rng.choice(MODEL_FAULTS)
        return f"model:{method}:{f}", {"model": FaultyModel({method: f}, times=times,
                                                            slow=rng.uniform(1.5, 40))}
    if kind == "hook":
        f = rng.choice(HOOK_FAULTS)
        return f"hook:{f}", {"hooks": FaultyHooks(f, times=times, slow=rng.uniform(1, 20)),
                             "on_hook_timeout": rng.choice(("keep", "take"))}
    if kind == "hooks":
        return "hooks:all", {"hooks": FaultyHooks(all_hooks=True)}
    if kind == "observer":
        kinds = rng.choice((("input",), ("timer",), ("answer",), ("input", "timer", "answer")))
        return f"observer:{'+'.join(kinds)}", {"observers": [RaisingObserver(kinds)]}
    where = rng.choice(TRACER_FAULTS)
    return f"tracer:{where}", {"tracer_provider": BrokenTracerProvider(where),
                               "telemetry": True}


async def conversation(s: Session, ledger: Ledger, rng: random.Random, end: float,
                       tag: str) -> None:
    """A random valid stream of user and agent activity until loop time ``end``."""
    loop = asyncio.get_running_loop()
    n = 0

    async def wait(d: float) -> bool:
        await asyncio.sleep(d)
        return loop.time() < end and not s.closed

    while await wait(rng.uniform(0.2, 3.0)):
        r = rng.random()
        if r < 0.15:  # the agent speaks; sometimes the user backchannels over it
            s.agent_speech_started()
            if rng.random() < 0.4:
                if not await wait(rng.uniform(0.2, 1.0)):
                    return
                s.push_vad(ev.VadStartOfSpeech(speech_duration=0.1))
                if not await wait(0.3):
                    return
                n += 1
                ledger.final(s.push_stt, f"{tag}w{n}", language="en")
                s.push_vad(ev.VadEndOfSpeech(silence_duration=0.1))
            if not await wait(rng.uniform(0.5, 4.0)):
                return
            s.agent_speech_ended()
            continue
        if r < 0.18:
            s.clear_user_turn()
            continue
        length = rng.uniform(0.4, 4.0)
        s.push_vad(ev.VadStartOfSpeech(speech_duration=0.2))
        spoken = 0.0
        while spoken < length:
            step = min(0.1, length - spoken) + 1e-3
            if not await wait(step):
                return
            spoken += step
            s.push_vad(ev.VadInferenceDone(raw_accumulated_speech=spoken))
            if rng.random() < 0.05:
                s.push_stt(ev.SttInterim(text=f"{tag}i", language="en"))
        finals = rng.choice((0, 1, 1, 1, 2))
        early = rng.random() < 0.5
        for _ in range(finals if early else 0):
            n += 1
            ledger.final(s.push_stt, f"{tag}w{n}", language="en", confidence=0.9)
        s.push_vad(ev.VadEndOfSpeech(silence_duration=0.1))
        if not early and finals:
            if not await wait(rng.uniform(0.0, 1.5)):
                return
            for _ in range(finals):
                n += 1
                ledger.final(s.push_stt, f"{tag}w{n}", language="en", confidence=0.9)
        if rng.random() < 0.05:
            s.commit_user_turn(transcript_timeout=rng.uniform(0.0, 2.0))


async def slot(k: int, rng: random.Random, totals: Totals, args: argparse.Namespace) -> None:
    """Sessions back to back until the soak ends."""
    loop = asyncio.get_running_loop()
    end = args.minutes * 60.0
    i = 0
    while loop.time() < end:
        i += 1
        name = f"s{k}.{i}"
        fault, kw = pick_fault(rng, args.fault_rate)
        ledger = Ledger()
        kw.setdefault("hooks", FaultyHooks())
        kw["observers"] = [ledger, *kw.get("observers", [])]
        detection = rng.choice(("model", None, None))
        opts = EngineOptions(turn_detection=detection,
                             interruption_detection=rng.random() < 0.3,
                             endpointing=EndpointingOptions(min_delay=rng.uniform(0.3, 1.0),
                                                            max_delay=rng.uniform(1.5, 3.0)))
        s = Session(opts, profile=rng.choice(("default", "default", "livekit")),
                    model_timeout=rng.choice((0.5, 1.0, 2.0)),
                    hook_timeout=rng.choice((1.0, 5.0)), session_id=name,
                    telemetry=kw.pop("telemetry", rng.random() < 0.2), **kw)
        life = min(end, loop.time() + rng.expovariate(1 / args.lifetime))
        try:
            await conversation(s, ledger, rng, life, f"{k}.{i}.")
        finally:
            await s.aclose()
        totals.add(name, fault, ledger)


async def soak(args: argparse.Namespace) -> dict[str, Any]:
    rng = random.Random(args.seed)
    totals = Totals()
    gc.collect()
    rss0 = rss_mb()
    cpu0 = time.process_time()
    before = set(asyncio.all_tasks())
    await asyncio.gather(*(slot(k, random.Random(rng.random()), totals, args)
                           for k in range(args.slots)))
    await asyncio.sleep(0)
    left = [t for t in asyncio.all_tasks() - before
            if t is not asyncio.current_task() and not t.done()]
    cpu = time.process_time() - cpu0
    gc.collect()
    rss1 = rss_mb()
    return {
        "slots": args.slots, "virtual_minutes": args.minutes, "seed": args.seed,
        "sessions": totals.sessions, "faults": dict(totals.faults),
        "finals_pushed": totals.pushed, "delivered": totals.delivered,
        "dropped": dict(sorted(totals.dropped.items())),
        "lost": len(totals.lost), "lost_examples": totals.lost[:10],
        "ends_of_turn": totals.turns, "taken": totals.taken,
        "memory_start_mb": round(rss0, 1), "memory_end_mb": round(rss1, 1),
        "memory_peak_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
        "tasks_left": len(left), "cpu_s": round(cpu, 1),
    }


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--slots", type=int, default=100, help="conversations at once (100)")
    ap.add_argument("--minutes", type=float, default=10.0, help="virtual minutes (10)")
    ap.add_argument("--lifetime", type=float, default=90.0,
                    help="mean session lifetime, virtual seconds (90)")
    ap.add_argument("--fault-rate", type=float, default=0.6,
                    help="share of sessions with an injected fault (0.6)")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--json", help="also write the report here")
    args = ap.parse_args()
    logging.disable(logging.CRITICAL)  # the faults are logged by design; keep the report
    with asyncio.Runner(loop_factory=VirtualClockLoop) as runner:
        report = runner.run(soak(args))
    for k, v in report.items():
        print(f"{k:>16}: {v}")
    if args.json:
        Path(args.json).write_text(json.dumps(report, indent=2) + "\n")
    ok = report["lost"] == 0 and report["tasks_left"] == 0 and report["sessions"] >= 500
    print("OK" if ok else "FAILED: finals lost, tasks left, or fewer than 500 sessions")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
