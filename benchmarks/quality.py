"""Every end-of-turn system on the labelled corpus, fed the same audio and the same
transcripts, scored by the rules of ``turnfsm score``: one table, and every cut-in named with
the transcript at the pause and its cause.

    PYTHONPATH=src python benchmarks/quality.py --out docs/quality.md

Systems (rows), each on the corpus' timed words (every dialogue) and on Whisper tiny.en's
transcripts (the English dialogues; Whisper tiny.en is English-only):

* **reference**: livekit-agents 1.5.12's user-turn recogniser itself, replayed on the same
  traces by the conformance kit's ``replay_livekit.py`` (``--reference-script``, else found
  beside a source checkout) in an interpreter where it is installed (``--reference
  PYTHON``, ``$REFERENCE_PYTHON``, else ``~/.venvs/livekit-ref/bin/python`` when it
  exists); the sessions where it differs from the ``livekit`` profile are named. Without
  one (or with ``--no-reference``) the row is the ``livekit`` profile, the reference minus
  its listed defects (``tests/conformance``), and the report says so.
* **Pipecat 1.14 defaults**: Pipecat's own pipeline (``LLMUserAggregator`` with
  ``SileroVADAnalyzer()`` and ``UserTurnStrategies()``: VAD and transcription starts, the
  ``LocalSmartTurnAnalyzerV3`` stop, Smart Turn v3.2 from the pipecat-ai wheel), driven by
  ``tests/adapter_pipelines.py`` on a virtual clock; its microphone gets the user channel
  followed by 5 s of silence (a live microphone goes on sending), its STT the same
  transcript lines the turnfsm rows replay. An end of turn is each context it sends to
  the LLM.
* **500 ms silence**: the end of turn is the VAD's end of speech when the embedded Silero
  VAD ends speech after 500 ms of silence (``min_silence`` 0.5 s); no words are read.
* **turnfsm** ``livekit`` and ``default`` profiles, each with the text rules alone and with
  the Smart Turn v3.2 audio model fused in (``--eou-model smart-turn``), as ``turnfsm
  score`` runs them.

The figures are deterministic (virtual time everywhere); the CPU time of each part goes to
standard error, not to ``--out``.
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import sys
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from turnfsm.audio.listen import ListenOptions, build_trace  # noqa: E402
from turnfsm.audio.vad import VadOptions  # noqa: E402
from turnfsm.audio.wav import read_wav  # noqa: E402
from turnfsm.core.profiles import get_profile  # noqa: E402
from turnfsm.errors import TurnFsmError  # noqa: E402
from turnfsm.quality.command import (  # noqa: E402
    reference_outputs,
    reference_script,
    session_traces,
)
from turnfsm.quality.score import Score, Span, Truth, cut_ins, read_truth, score_outputs  # noqa: E402
from turnfsm.replay import Trace, replay_trace  # noqa: E402

CORPUS = ROOT / "examples" / "corpus"
#: the notes of turnfsm score's details listed beside the cut-ins
OTHER_ERRORS = ("orphan", "no response", "backchannel turn", "noise turn")
PROFILES = ("livekit", "default")
SILENCE = 0.5  # the silence rule's VAD silence (s)
MIC_TAIL = 5.0  # seconds of silence the Pipecat microphone sends after the file
REFERENCE = "reference"
PIPECAT = "Pipecat 1.14 defaults"
SILENCE_ROW = "500 ms silence"
LABELS = {REFERENCE: "reference (livekit-agents 1.5.12)",
          PIPECAT: "Pipecat 1.14 defaults (Silero + Smart Turn v3.2)",
          SILENCE_ROW: "500 ms silence (VAD only)",
          "livekit": "turnfsm `livekit`", "livekit+st": "turnfsm `livekit` + Smart Turn",
          "default": "turnfsm **`default`**", "default+st": "turnfsm `default` + Smart Turn"}


@dataclasses.dataclass
class Run:
    """One system on one session: its score and its cut-ins (time, turn, words said)."""

    score: Score
    cuts: list[tuple[float, Span, str]]


@dataclasses.dataclass
class Cpu:
    """CPU seconds spent per part."""

    parts: Counter[str] = dataclasses.field(default_factory=Counter)

    def timed(self, part: str, fn: Callable[[], Any]) -> Any:
        t = cpu_seconds()
        try:
            return fn()
        finally:
            self.parts[part] += cpu_seconds() - t


def cpu_seconds() -> float:
    """CPU time of this process and of the children it waited for (the reference's
    replayer runs in its own interpreter)."""
    t = os.times()
    return t.user + t.system + t.children_user + t.children_system


def said_before(trace: Trace, turn: Span, t: float) -> str:
    """The transcripts' words of ``turn`` spoken before ``t`` (the finals whose speech ended
    by then): what the user had said at the pause."""
    texts = [str(i.fields.get("text", "")) for i in trace.inputs if i.kind == "stt.final"
             and turn.start - 0.3 <= float(i.fields.get("end_time", i.t)) <= t + 1e-6]
    return " ".join(x for x in texts if x) or "(no words yet)"


def silence_outputs(path: Path) -> list[dict[str, Any]]:
    """The 500 ms silence rule's ends of turn: the VAD's ends of speech with min_silence
    0.5 s (no transcripts)."""
    audio = read_wav(path)
    trace = build_trace(audio, ListenOptions(vad=VadOptions(min_silence_duration=SILENCE)))
    return [{"t": i.t, "kind": "on_end_of_turn"} for i in trace.inputs
            if i.kind == "vad.end_of_speech"]


def pipecat_outputs(path: Path, trace: Trace) -> list[dict[str, Any]]:
    """Pipecat 1.14's defaults in its own pipeline, hearing the file's user channel (then
    silence) and the trace's transcript lines; each LLM context push is an end of turn."""
    import numpy as np
    from tests.adapter_pipelines import Labelled, run_pipecat
    lab = Labelled.load(path)
    stt = [{"t": i.t, "kind": i.kind, "text": i.fields["text"]} for i in trace.inputs
           if i.kind in ("stt.interim", "stt.final")]
    lab = dataclasses.replace(
        lab, stt=stt, duration=lab.duration + MIC_TAIL,
        mic=np.concatenate([lab.mic, np.zeros(round(MIC_TAIL * 16000), np.int16)]))
    r = run_pipecat(lab, "defaults")
    return [{"t": at, "kind": "on_end_of_turn"} for at, _ in r.commits]


def run_session(path: Path, asr: str, systems: list[str], a: argparse.Namespace, cpu: Cpu,
                cache: dict[str, Any]) -> tuple[Truth, dict[str, Run], list[str]]:
    """Every system on one session; the notes (the reference's differences)."""
    models = ("rules", "smart-turn") if not a.no_smart_turn else ("rules",)
    profiles = {n: get_profile(n) for n in PROFILES}
    part = "Whisper + VAD" if asr == "whisper" else "VAD"
    traces, truth_path = cpu.timed(part, lambda: session_traces(path, profiles, asr=asr,
                                                                eou_models=models))
    truth = read_truth(truth_path)
    base = traces["livekit", "rules"]
    outs: dict[str, list[dict[str, Any]]] = {}
    for name, prof in profiles.items():
        outs[name] = cpu.timed("turnfsm replays", lambda t=traces[name, "rules"], p=prof:
                               replay_trace(t, profile=p))
        if "smart-turn" in models:
            from turnfsm.audio.smart_turn import SmartTurn, replay_fused
            if "smart_turn" not in cache:
                cache["smart_turn"] = SmartTurn()
            heard = read_wav(path).samples[0]
            outs[f"{name}+st"] = cpu.timed(
                "turnfsm + Smart Turn", lambda t=traces[name, "smart-turn"], p=prof, h=heard:
                replay_fused(t, h, profile=p, smart_turn=cache["smart_turn"]))
    notes: list[str] = []
    if a.reference:
        outs[REFERENCE] = cpu.timed("reference", lambda: reference_outputs(
            base, a.reference, cache["script"]))
        ref = [(round(x["t"], 6), x["kind"]) for x in outs[REFERENCE]
               if x["kind"] in ("on_end_of_turn", "on_interruption")]
        mine = [(round(x["t"], 6), x["kind"]) for x in outs["livekit"]
                if x["kind"] in ("on_end_of_turn", "on_interruption")]
        if ref != mine:
            notes.append(f"{path.stem} ({asr}): the reference's ends of turn and "
                         f"interruptions differ from the livekit profile's")
    else:
        outs[REFERENCE] = outs["livekit"]
    if SILENCE_ROW in systems:
        if path.name not in cache.setdefault("silence", {}):
            cache["silence"][path.name] = cpu.timed("500 ms silence",
                                                    lambda: silence_outputs(path))
        outs[SILENCE_ROW] = cache["silence"][path.name]
    if PIPECAT in systems:
        outs[PIPECAT] = cpu.timed("Pipecat", lambda: pipecat_outputs(path, base))
    runs = {s: Run(score_outputs(outs[s], truth),
                   [(t, span, said_before(base, span, t)) for t, span in
                    cut_ins(outs[s], truth)]) for s in systems}
    return truth, runs, notes


def reference_python(given: str | None) -> str | None:
    """The interpreter with livekit-agents 1.5.12: ``given``, $REFERENCE_PYTHON, or
    ``~/.venvs/livekit-ref/bin/python`` when it exists (None: none)."""
    if given:
        return given
    for c in (os.environ.get("REFERENCE_PYTHON"),
              str(Path.home() / ".venvs" / "livekit-ref" / "bin" / "python")):
        if c and Path(c).is_file():
            return c
    return None


def fmt_s(v: float | None) -> str:
    return "-" if v is None else f"{v:.2f}"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--corpus", type=Path, default=CORPUS, help="the labelled dialogues")
    ap.add_argument("--files", nargs="*", help="only these dialogues (stems)")
    ap.add_argument("--out", type=Path, help="also write the report here (Markdown)")
    ap.add_argument("--no-whisper", action="store_true", help="timed words only")
    ap.add_argument("--no-pipecat", action="store_true", help="leave Pipecat's row out")
    ap.add_argument("--no-smart-turn", action="store_true",
                    help="leave the Smart Turn rows out")
    ap.add_argument("--reference", metavar="PYTHON",
                    help="an interpreter with livekit-agents 1.5.12: the reference row is "
                         "then the reference itself (replay_livekit.py, --reference-script)")
    ap.add_argument("--reference-script", metavar="PATH", help="the reference's replayer")
    ap.add_argument("--no-reference", action="store_true",
                    help="the reference row is the livekit profile (no reference replayed)")
    a = ap.parse_args(argv)
    cpu0 = cpu_seconds()
    cpu = Cpu()
    cache: dict[str, Any] = {}
    given = a.reference
    a.reference = None if a.no_reference else reference_python(a.reference)
    if a.reference:
        try:
            cache["script"] = reference_script(a.reference_script)
        except TurnFsmError as e:
            if given:
                print(f"quality.py: {e}", file=sys.stderr)
                return 2
            print(f"quality.py: {e}; the reference row is the livekit profile",
                  file=sys.stderr)
            a.reference = None
    wavs = sorted(a.corpus.glob("*.wav"))
    if not wavs:
        print(f"quality.py: {a.corpus}: no labelled dialogues (*.wav) there", file=sys.stderr)
        return 2
    if a.files:
        wavs = [p for p in wavs if p.stem in a.files]
        missing = set(a.files) - {p.stem for p in wavs}
        if missing:
            print(f"quality.py: no such dialogue in {a.corpus}: {', '.join(sorted(missing))}",
                  file=sys.stderr)
            return 2
    if not a.no_pipecat:
        from loguru import logger
        logger.remove()  # Pipecat logs every frame at DEBUG
    systems = [REFERENCE, *([] if a.no_pipecat else [PIPECAT]), SILENCE_ROW]
    for n in PROFILES:
        systems += [n] if a.no_smart_turn else [n, f"{n}+st"]
    sources = [("timed words", "none", wavs)]
    if not a.no_whisper:
        sources.append(("Whisper tiny.en", "whisper",
                        [p for p in wavs if (read_truth(p.with_suffix(".truth.json")).language
                                             or "en") == "en"]))
    results: list[tuple[str, list[Path], dict[str, Score], list[tuple[str, str, Run]],
                        dict[str, Truth]]] = []
    notes: list[str] = []
    for label, asr, files in sources:
        totals = {s: Score() for s in systems}
        per: list[tuple[str, str, Run]] = []
        truths: dict[str, Truth] = {}
        for k, p in enumerate(files):
            print(f"\r{label}: {k + 1}/{len(files)} {p.stem:40s}", end="", file=sys.stderr)
            truth, runs, n = run_session(p, asr, systems, a, cpu, cache)
            truths[p.stem] = truth
            notes += n
            for s in systems:
                totals[s] = totals[s] + runs[s].score
                per.append((p.stem, s, runs[s]))
        print(file=sys.stderr)
        results.append((label, files, totals, per, truths))
    report = render(results, systems, notes, a)
    print(report)
    if a.out:
        a.out.write_text(report, encoding="utf-8")
    for part, sec in sorted(cpu.parts.items()):
        print(f"CPU {part}: {sec:.1f} s", file=sys.stderr)
    print(f"CPU total: {cpu_seconds() - cpu0:.1f} s (the reference's replayer included)",
          file=sys.stderr)
    return 0


def render(results: list[tuple[str, list[Path], dict[str, Score], list[tuple[str, str, Run]],
                               dict[str, Truth]]],
           systems: list[str], notes: list[str], a: argparse.Namespace) -> str:
    """The report: the table, the cut-ins by kind, every cut-in, the other errors."""
    LABELS[REFERENCE] = ("reference (livekit-agents 1.5.12)" if a.reference else
                         "reference (its `livekit` profile)")
    ref = ("livekit-agents 1.5.12's own user-turn recogniser, replayed on the same traces "
           "by the conformance kit's replay_livekit.py" if a.reference else
           "the `livekit` profile, which equals livekit-agents 1.5.12 minus its listed "
           "defects (no interpreter with livekit-agents 1.5.12 was given: --reference PYTHON)")
    flags = "".join(f" {f}" for f, on in (("--no-whisper", a.no_whisper),
                                           ("--no-pipecat", a.no_pipecat),
                                           ("--no-smart-turn", a.no_smart_turn),
                                           ("--no-reference", a.no_reference)) if on)
    out = ["# End-of-turn quality on the labelled corpus", "",
           f"Generated by `PYTHONPATH=src python benchmarks/quality.py{flags} --out "
           f"docs/quality.md`, scored by the rules of `turnfsm score`. Reference: {ref}.", ""]
    out += ["| transcripts | system | turns | cut-ins | orphans | missed | backchannel turns "
            "| noise turns | latency p50 | p90 | max |",
            "|---|---|---|---|---|---|---|---|---|---|---|"]
    for label, files, totals, _, truths in results:
        bcs = sum(len(t.backchannels) for t in truths.values())
        noises = sum(len(t.noises) for t in truths.values())
        first = True
        for s in systems:
            v = totals[s].summary()
            src = (f"{label} ({len(files)} dialogue{'s' if len(files) != 1 else ''})"
                   if first else "")
            first = False
            out.append(f"| {src} | {LABELS[s]} | {v['turns']} | {v['cut_ins']} | "
                       f"{v['orphans']} | {v['missed_turns']} | "
                       f"{v['backchannel_turns']} of {bcs} | {v['noise_turns']} of {noises} | "
                       f"{fmt_s(v['latency_p50'])} s | {fmt_s(v['latency_p90'])} s | "
                       f"{fmt_s(v['latency_max'])} s |")
    out += ["", "(turns: labelled user turns and barge-ins; backchannel turns: backchannels "
            "answered as turns, of those labelled; noise turns: coughs answered as turns; "
            "latency: from the labelled end of each answered turn to its end of turn.)", ""]
    for label, _, _, per, truths in results:
        kinds = sorted({k for t in truths.values() for k in t.kinds})
        out += [f"## Cut-ins by kind, {label}", "",
                "| system | " + " | ".join(kinds) + " |",
                "|---|" + "---|" * len(kinds)]
        for s in systems:
            c: Counter[str] = Counter()
            for stem, sys_, run in per:
                if sys_ == s:
                    for _ in run.cuts:
                        c.update(truths[stem].kinds)
            out.append(f"| {LABELS[s]} | " + " | ".join(str(c[k]) for k in kinds) + " |")
        out += ["", "(a dialogue counts under each of its kinds, from its truth file)", ""]
    for label, _, _, per, truths in results:
        out += [f"## Every cut-in, {label}", "",
                "| system | dialogue | turn | at | said before the cut-in | kind |",
                "|---|---|---|---|---|---|"]
        for s in systems:
            for stem, sys_, run in per:
                if sys_ != s:
                    continue
                for t, span, said in run.cuts:
                    out.append(f"| {LABELS[s]} | `{stem}` | “{span.text}” | "
                               f"{t:.2f} s ({span.intended_end - t:.2f} s before its end) | "
                               f"“{said}” | {', '.join(truths[stem].kinds) or '-'} |")
        out.append("")
    for label, _, _, per, _ in results:
        out += [f"## Orphans, missed turns, backchannel and noise turns, {label}", "",
                "| system | dialogue | what |", "|---|---|---|"]
        for s in systems:
            out += [f"| {LABELS[s]} | `{stem}` | {d} |" for stem, sys_, run in per
                    if sys_ == s for d in run.score.details if d.startswith(OTHER_ERRORS)]
        out.append("")
    if a.reference:
        out += ["## The reference against the `livekit` profile", ""]
        out += [f"* {n}" for n in notes] or ["* equal on every session (ends of turn and "
                                             "interruptions, to the microsecond)"]
        out.append("")
    return "\n".join(out)


if __name__ == "__main__":
    sys.exit(main())
