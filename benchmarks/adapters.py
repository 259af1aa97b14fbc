"""The adapters in each framework's real pipeline, on every labelled WAV: the framework's
defaults against turnfsm, one table.

    PYTHONPATH=src python benchmarks/adapters.py [--framework pipecat|livekit|both] [-v]

Each file runs through the framework's own pipeline and its own Silero VAD
(``tests/adapter_pipelines.py``: Pipecat 1.14's ``LLMUserAggregator`` with
``SileroVADAnalyzer``; LiveKit Agents 1.8's ``AgentSession`` with ``livekit-plugins-silero``),
with stand-ins only for the network services (an STT emitting the words sidecar's
transcripts at their times, a recording LLM, a TTS playing the agent channel), on a virtual
clock with the VAD inference inline (deterministic; CPU load does not change the figures);
``--realtime`` runs them in real time instead.

Columns: turns answered once with all their words (the framework completed the user turn:
Pipecat's context went to the LLM, LiveKit's ``on_user_turn_completed``); LLM runs (LiveKit's
preemptive generations included); cut-ins (a turn completed while a labelled turn was still
going on); backchannels that stopped the agent (its reply cancelled) / that were answered;
barge-ins that stopped the agent; the time from the barge-in's onset to the agent falling
silent (its audio paused or stopped: what the user hears) and to the interruption that
cancelled its reply (median, max); how long each backchannel paused the agent's audio
before it resumed; latency from the end of each answered turn to its completion (p50 /
p90); microphone frames lost, and agent audio frames (20 ms) not played in order.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests.adapter_pipelines import (
    Labelled,
    Score,
    labelled_files,
    pct,
    run_livekit,
    run_pipecat,
    score,
)


def total(scores: list[Score]) -> Score:
    """The scores of every file, added up."""
    t = Score()
    for s in scores:
        for f in ("turns", "answered", "llm_runs", "cut_ins", "backchannels", "bc_interrupting",
                  "bc_answered", "barge_ins", "barge_ins_stopped", "frames_lost", "audio_lost"):
            setattr(t, f, getattr(t, f) + getattr(s, f))
        t.stop_times += s.stop_times
        t.silent_times += s.silent_times
        t.bc_pauses += s.bc_pauses
        t.latencies += s.latencies
        t.problems += s.problems
    return t


def fmt(x: float | None) -> str:
    return "-" if x is None else f"{x:.2f}"


def row(s: Score) -> list[str]:
    return [f"{s.answered}/{s.turns}", str(s.llm_runs), str(s.cut_ins),
            f"{s.bc_interrupting} / {s.bc_answered}",
            f"{s.barge_ins_stopped}/{s.barge_ins}",
            f"{fmt(pct(s.silent_times, 0.5))} / {fmt(max(s.silent_times, default=None))} s",
            f"{fmt(pct(s.stop_times, 0.5))} / {fmt(max(s.stop_times, default=None))} s",
            (", ".join(f"{x:.2f}" for x in sorted(s.bc_pauses)) + " s") if s.bc_pauses
            else "none",
            f"{fmt(pct(s.latencies, 0.5))} / {fmt(pct(s.latencies, 0.9))} s",
            f"{s.frames_lost} / {s.audio_lost}"]


LABELS = ["turns answered", "LLM runs", "cut-ins", "backchannels interrupting / answered",
          "barge-ins stopped", "barge-in stop time (agent silent) p50 / max",
          "barge-in interruption (reply cancelled) p50 / max", "backchannel pauses",
          "latency p50 / p90", "frames lost: microphone / agent audio"]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--framework", choices=["pipecat", "livekit", "both"], default="both")
    ap.add_argument("-v", "--verbose", action="store_true", help="print each file's problems")
    ap.add_argument("--realtime", action="store_true",
                    help="run in real time on a real event loop, inference in the frameworks' "
                         "own threads (about 9 minutes; figures depend on the CPU's load)")
    ap.add_argument("--files", nargs="*", help="only these labelled files (stems)")
    ap.add_argument("--pause-after", type=float, default=None, metavar="S",
                    help="turnfsm's pause of the agent's audio: the overlap that pauses "
                         "(default: the adapters'); a negative value turns the pause off")
    ap.add_argument("--resume-after", type=float, default=None, metavar="S",
                    help="the unvoiced time after a paused utterance that resumes the agent")
    ap.add_argument("--modes", nargs="*", choices=["defaults", "turnfsm"],
                    default=["defaults", "turnfsm"], help="which columns to run")
    a = ap.parse_args()
    kw: dict[str, object] = {}
    if a.pause_after is not None:
        kw["pause_after"] = None if a.pause_after < 0 else a.pause_after
    if a.resume_after is not None:
        kw["resume_after"] = a.resume_after
    frameworks = ["pipecat", "livekit"] if a.framework == "both" else [a.framework]
    labs = [Labelled.load(p) for p in labelled_files() if not a.files or p.stem in a.files]
    columns: list[tuple[str, Score]] = []
    cpu0 = time.process_time()
    for fw in frameworks:
        run = run_pipecat if fw == "pipecat" else run_livekit
        for mode in a.modes:
            scores = []
            for lab in labs:
                opts = {("strategies_kw" if fw == "pipecat" else "taking_kw"): kw} \
                    if mode == "turnfsm" else {}
                s = score(lab, run(lab, mode, realtime=a.realtime, **opts))
                scores.append(s)
                if a.verbose and s.problems:
                    for p in s.problems:
                        print(f"{fw} {mode} {lab.name}: {p}", file=sys.stderr)
            columns.append((f"{'Pipecat 1.14' if fw == 'pipecat' else 'LiveKit 1.8'} "
                            f"{mode}", total(scores)))
    t = columns[0][1]
    head = (f"| {len(labs)} files, {t.turns} turns, {t.backchannels} backchannels, "
            f"{t.barge_ins} barge-ins | " + " | ".join(name for name, _ in columns) + " |")
    print(head)
    print("|---|" + "---|" * len(columns))
    rows = [row(s) for _, s in columns]
    for i, label in enumerate(LABELS):
        print(f"| {label} | " + " | ".join(r[i] for r in rows) + " |")
    print(f"\n(CPU {time.process_time() - cpu0:.0f} s)", file=sys.stderr)


if __name__ == "__main__":
    main()
