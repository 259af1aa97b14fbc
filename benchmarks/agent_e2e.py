"""The offline voice agent (examples/agent) measured end to end by voicebench, with turnfsm's
user turn strategies and with Pipecat's default ones, on the same scenarios and audio.

    python benchmarks/agent_e2e.py                      # every scenario, both agents (~6 min)
    python benchmarks/agent_e2e.py --scenario barge_in --json out.json

Not a timed test: voicebench plays each scenario into the agent over a loopback WebSocket in
real time and derives everything from the recorded audio (its energy VAD on both tracks). For
each agent one server process (``examples/agent/agent.py --turns ...``) serves every scenario,
one conversation each, scenario by scenario (the agents' order alternating, so both meet
the same load). Printed: one row per agent, then one
per scenario and agent, with the machine's load (the figures are wall-clock: other work on the
machine delays the agent's STT and so its replies).

Columns (from voicebench's per-turn results):

* latency p50 / p90: voicebench's response latency (the user's speech offset to the onset of
  the agent's next speech) of the ``respond`` turns that were not cut in on;
* barge-in stop p50 / max: time from the onset of a barge-in (``expect: stop``) to the end of
  the agent's speech; success: the agent stopped within the turn's ``max_stop_ms`` (1 s);
* false barge-ins: an ``ignore`` turn (backchannel, cough) during agent speech after which the
  agent stopped within ``max_stop_ms``;
* backchannel turns: an ``ignore`` turn the agent answered (its speech started after it);
* cut-ins: agent speech that starts while the user's turn (first to last speech of the
  turn's audio, pauses included) is still going on;
* answered: ``respond`` and ``stop`` turns the agent replied to.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
AGENT = ROOT / "examples" / "agent" / "agent.py"
SCENARIOS = ROOT / "examples" / "agent" / "scenarios"
AGENTS = ("turnfsm", "pipecat")
EPS = 1e-9


@dataclass
class Tally:
    """One agent's figures over a set of sessions."""

    latencies: list[float] = field(default_factory=list)
    by_turn: dict[str, float] = field(default_factory=dict)  # turn id -> latency (ms)
    stops: list[float] = field(default_factory=list)
    barge_ins: int = 0
    stopped: int = 0
    ignores: int = 0
    false_barge_ins: int = 0
    backchannel_turns: int = 0
    cut_ins: int = 0
    turns: int = 0
    answered: int = 0
    notes: list[str] = field(default_factory=list)

    def add(self, other: Tally) -> None:
        for name in self.__dataclass_fields__:
            mine = getattr(self, name)
            if isinstance(mine, list):
                mine.extend(getattr(other, name))
            elif isinstance(mine, dict):
                mine.update(getattr(other, name))
            else:
                setattr(self, name, mine + getattr(other, name))

    def row(self) -> dict[str, Any]:
        lat = np.asarray(self.latencies, dtype=float)
        return {
            "latency_p50_ms": _pct(lat, 50), "latency_p90_ms": _pct(lat, 90),
            "latency_n": len(self.latencies),
            "stop_p50_ms": _pct(np.asarray(self.stops, dtype=float), 50),
            "stop_max_ms": round(max(self.stops)) if self.stops else None,
            "barge_in_success": f"{self.stopped}/{self.barge_ins}",
            "false_barge_ins": f"{self.false_barge_ins}/{self.ignores}",
            "backchannel_turns": self.backchannel_turns, "cut_ins": self.cut_ins,
            "answered": f"{self.answered}/{self.turns}",
        }


def _pct(values: np.ndarray, q: float) -> int | None:
    return None if values.size == 0 else round(float(np.percentile(values, q)))


def tally(session: Any) -> Tally:
    """Our figures from one voicebench session (its per-turn results and speech segments)."""
    t = Tally()
    agent = session.agent_segments
    user = session.user_segments
    for k, r in enumerate(session.turns):
        if r.user_onset_s is None:
            t.notes.append(f"{r.id}: {'; '.join(r.notes)}")
            if r.expect != "ignore":
                t.turns += 1
            continue
        onset, offset = r.user_onset_s, r.user_offset_s
        if r.expect == "ignore":
            t.ignores += 1
            t.false_barge_ins += bool(r.false_barge_in)
            nxt = session.turns[k + 1].start_s if k + 1 < len(session.turns) else None
            limit = offset + 5.0 if nxt is None else min(nxt, offset + 5.0)
            if any(onset + EPS < a.start <= limit for a in agent):
                t.backchannel_turns += 1
                t.notes.append(f"{r.id}: the agent answered it")
            continue
        t.turns += 1
        t.answered += bool(r.responded)
        # the turn's own speech: user segments inside the clip's window
        mine = [u for u in user if u.end > r.start_s + EPS and u.start < r.end_s - EPS]
        end = mine[-1].end if mine else offset
        cut = [a for a in agent if onset + EPS < a.start < end - EPS]
        t.cut_ins += len(cut)
        for a in cut:
            t.notes.append(f"{r.id}: agent speech at {a.start - onset:.2f} s into the turn, "
                           f"{end - a.start:.2f} s before it ended")
        if r.expect == "respond" and r.response_latency_ms is not None and not cut \
                and r.response_latency_ms >= 0:
            t.latencies.append(r.response_latency_ms)
            t.by_turn[r.id] = r.response_latency_ms
        if r.expect == "stop":
            t.barge_ins += 1
            t.stopped += bool(r.stopped)
            if r.stop_latency_ms is not None:
                t.stops.append(r.stop_latency_ms)
            if not r.stopped:
                t.notes.append(f"{r.id}: {'; '.join(r.notes)}")
    return t


class Agent:
    """The agent's server process, started and stopped by us (its PID only)."""

    def __init__(self, turns: str, port: int, extra: list[str] | None = None) -> None:
        env = dict(os.environ)
        env["PYTHONPATH"] = os.pathsep.join(
            [str(ROOT / "src"), *filter(None, [env.get("PYTHONPATH")])])
        self.proc = subprocess.Popen(
            [sys.executable, str(AGENT), "--turns", turns, "--port", str(port), *(extra or [])],
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env)
        self.ready = threading.Semaphore(0)
        self.log: list[str] = []
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self.log.append(line)
            if " listening on ws://" in line:
                self.ready.release()

    def wait_ready(self, timeout: float = 120.0) -> None:
        if not self.ready.acquire(timeout=timeout):
            tail = "".join(self.log[-20:])
            raise SystemExit(f"the agent did not get ready in {timeout:g} s:\n{tail}")

    def cpu_seconds(self) -> float:
        """User + system CPU time of the agent process so far (from /proc)."""
        try:
            fields = Path(f"/proc/{self.proc.pid}/stat").read_text().rsplit(")", 1)[1].split()
            return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
        except OSError:
            return float("nan")

    def stop(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


async def run_scenario(path: Path, url: str) -> Any:
    from voicebench.bench import run_benchmark
    from voicebench.scenario import load_scenario

    result = await run_benchmark(load_scenario(path), adapter="pipecat", options={"url": url})
    return result.sessions[0]


def run_agents(agents: list[str], port: int, scenarios: list[Path],
               extra: dict[str, list[str]]) -> dict[str, dict[str, Any]]:
    """Every scenario against every agent, interleaved (scenario by scenario, the order of the
    agents alternating), so both meet the same load on a shared machine."""
    procs = {a: Agent(a, port + i, extra.get(a)) for i, a in enumerate(agents)}
    out: dict[str, dict[str, Any]] = {a: {"scenarios": {}} for a in agents}
    try:
        for k, path in enumerate(scenarios):
            for a in agents if k % 2 == 0 else agents[::-1]:
                procs[a].wait_ready()
                url = f"ws://127.0.0.1:{port + agents.index(a)}"
                session = asyncio.run(run_scenario(path, url))
                t = tally(session)
                t.by_turn = {f"{path.stem}/{turn}": v for turn, v in t.by_turn.items()}
                out[a]["scenarios"][path.stem] = {"tally": t, "session": session}
                print(f"  {a:8s} {path.stem:14s} {_brief(t)}", flush=True)
        for a in agents:
            out[a]["cpu_s"] = procs[a].cpu_seconds()
    finally:
        for a in agents:
            procs[a].stop()
            out[a]["log"] = procs[a].log
    return out


def _brief(t: Tally) -> str:
    r = t.row()
    return (f"latency p50 {r['latency_p50_ms']} ms, stops {r['barge_in_success']}, "
            f"false {r['false_barge_ins']}, backchannel turns {r['backchannel_turns']}, "
            f"cut-ins {r['cut_ins']}, answered {r['answered']}")


COLUMNS = [("latency p50", "latency_p50_ms", "ms"), ("p90", "latency_p90_ms", "ms"),
           ("barge-in stop p50", "stop_p50_ms", "ms"), ("max", "stop_max_ms", "ms"),
           ("barge-in success", "barge_in_success", ""),
           ("false barge-ins", "false_barge_ins", ""),
           ("backchannel turns", "backchannel_turns", ""), ("cut-ins", "cut_ins", ""),
           ("turns answered", "answered", "")]


def table(rows: list[tuple[str, dict[str, Any]]]) -> str:
    head = "| agent | " + " | ".join(c[0] for c in COLUMNS) + " |"
    lines = [head, "|" + "---|" * (len(COLUMNS) + 1)]
    for name, row in rows:
        cells = []
        for _, key, unit in COLUMNS:
            v = row[key]
            cells.append("-" if v is None else f"{v} {unit}".strip())
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--scenario", action="append", default=[], metavar="NAME",
                    help="only this scenario of examples/agent/scenarios (repeatable)")
    ap.add_argument("--agent", action="append", choices=AGENTS, default=[],
                    help="only this agent (repeatable; default both)")
    ap.add_argument("--port", type=int, default=8790,
                    help="the first agent's port (the second's is the next)")
    ap.add_argument("--barge-in-speech", type=float, metavar="SECONDS",
                    help="turnfsm's agent: the overlap detector's barge_in (user speech "
                         "over the agent interrupts once a voiced VAD window comes this long "
                         "after its onset; the agent's default: 0.7)")
    ap.add_argument("--vad-stop-secs", type=float, metavar="SECONDS",
                    help="turnfsm's agent: the VAD's stop_secs given to user_params (the "
                         "agent's default: 0.2, Pipecat's)")
    ap.add_argument("--pause-after", type=float, metavar="SECONDS",
                    help="turnfsm's agent: the speech over the agent that pauses its audio "
                         "(the agent's default: 0.15; negative: no pause)")
    ap.add_argument("--json", type=Path, help="write the figures and notes here")
    ap.add_argument("--notes", action="store_true", help="print each agent's notes per turn")
    args = ap.parse_args(argv)
    try:
        import voicebench  # noqa: F401
    except ImportError:
        print("error: voicebench is needed: pip install -e '.[agent]'", file=sys.stderr)
        return 2
    names = args.scenario or sorted(p.stem for p in SCENARIOS.glob("*.yaml"))
    paths = []
    for name in names:
        p = SCENARIOS / f"{name}.yaml"
        if not p.is_file():
            print(f"error: no scenario {name!r} in {SCENARIOS}", file=sys.stderr)
            return 2
        paths.append(p)
    agents = args.agent or list(AGENTS)
    load0, t0 = os.getloadavg(), time.time()
    print(f"{len(paths)} scenarios x {len(agents)} agents, real time; load average "
          f"{load0[0]:.2f} on {os.cpu_count()} cores", flush=True)
    extra: dict[str, list[str]] = {"turnfsm": [], "pipecat": []}
    if args.barge_in_speech is not None:
        extra["turnfsm"] += ["--barge-in-speech", str(args.barge_in_speech)]
    if args.vad_stop_secs is not None:
        extra["turnfsm"] += ["--vad-stop-secs", str(args.vad_stop_secs)]
    if args.pause_after is not None:
        extra["turnfsm"] += ["--pause-after", str(args.pause_after)]
    results = run_agents(agents, args.port, paths, extra)
    load1 = os.getloadavg()

    totals = []
    per_scenario = []
    for a in agents:
        total = Tally()
        for name, r in results[a]["scenarios"].items():
            total.add(r["tally"])
            per_scenario.append((f"{a}: {name}", r["tally"].row()))
        totals.append((a, total.row()))
        results[a]["total"] = total
    print()
    print(table(totals))
    print()
    print(table(sorted(per_scenario, key=lambda x: (x[0].split(": ")[1], x[0]))))
    print(f"\nwall {time.time() - t0:.0f} s; load average {load0[0]:.2f} before, "
          f"{load1[0]:.2f} (1 min) / {load1[1]:.2f} (5 min) after, {os.cpu_count()} cores; "
          + ", ".join(f"{a} agent CPU {results[a]['cpu_s']:.0f} s" for a in agents))
    if len(agents) == 2:
        p50 = [dict(totals)[a]["latency_p50_ms"] for a in agents]
        if None not in p50:
            print(f"p50 latency: {agents[0]} {p50[0]} ms, {agents[1]} {p50[1]} ms "
                  f"({p50[0] - p50[1]:+d} ms)")
        # the same turns for both: those both answered after the user's turn (no cut-in)
        both = sorted(set.intersection(*(set(results[a]["total"].by_turn) for a in agents)))
        if both:
            paired = [_pct(np.asarray([results[a]["total"].by_turn[k] for k in both]), 50)
                      for a in agents]
            print(f"p50 latency on the {len(both)} turns both answered without a cut-in: "
                  f"{agents[0]} {paired[0]} ms, {agents[1]} {paired[1]} ms")
    if args.notes:
        for a in agents:
            print(f"\n{a}:")
            for r in results[a]["scenarios"].values():
                for n in r["tally"].notes:
                    print(f"  {n}")
    if args.json:
        doc = {"load_before": load0, "load_after": load1, "agents": {
            a: {"total": dict(totals)[a], "cpu_s": results[a]["cpu_s"],
                "scenarios": {n: {"row": r["tally"].row(), "notes": r["tally"].notes,
                                  "turns": [vars(t) for t in r["session"].turns]}
                              for n, r in results[a]["scenarios"].items()},
                "log": [ln.strip() for ln in results[a]["log"]
                        if re.search(r"user turn |turnfsm: |detector: |heard |WARNING|ERROR",
                                     ln)]}
            for a in agents}}
        args.json.write_text(json.dumps(doc, indent=1, default=str))
    return 0


if __name__ == "__main__":
    sys.exit(main())
