"""``turnfsm score``: end-of-turn decisions against labels, per session and in total."""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

from ..core.profiles import DEFAULT_PROFILE, get_profile
from ..errors import TurnFsmError
from ..replay import Trace, read_trace, replay_trace
from .score import Score, read_truth, score_outputs

COLUMNS = ("turns", "cut_ins", "orphans", "missed_turns", "backchannel_turns",
           "false_interruptions", "missed_interruptions", "latency_p50", "latency_p90",
           "latency_max")


def _session(path: Path, args: argparse.Namespace) -> tuple[Trace, Path]:
    """The trace of a session (a WAV goes through `listen`) and its truth file."""
    stem = path.with_suffix("")
    truth = Path(f"{stem}.truth.json")
    if not truth.exists():
        raise TurnFsmError(f"{path}: no labels ({truth.name} beside it)")
    if path.suffix == ".jsonl":
        return read_trace(path), truth
    from ..audio.listen import ListenOptions, build_trace
    from ..audio.transcripts import read_words
    from ..audio.wav import read_wav
    from ..options import EngineOptions
    words_path = Path(f"{stem}.words.json")
    words = read_words(words_path) if args.asr == "none" and words_path.exists() else None
    audio = read_wav(path)
    transcripts = words is not None or args.asr != "none"
    opts = ListenOptions(engine=EngineOptions(
        stt=transcripts, interruption_detection=audio.channels > 1 and not args.no_detector),
        asr=args.asr, profile=(getattr(args, "profile", None) or [DEFAULT_PROFILE])[0])
    return build_trace(audio, opts, words=words), truth


def _reference(trace: Trace, python: str) -> list[dict[str, Any]]:
    from ..audio.listen import trace_lines
    script = Path(__file__).resolve().parents[3].parent / "shared" / "conformance" / \
        "replay_livekit.py"
    with tempfile.NamedTemporaryFile("w", suffix=".jsonl", delete=False) as f:
        f.write(trace_lines(trace, reference=True))
    r = subprocess.run([python, str(script), f.name], capture_output=True, text=True,
                       check=True)
    Path(f.name).unlink()
    return [json.loads(line) for line in r.stdout.splitlines() if line.strip()]


def _fmt(v: Any) -> str:
    if v is None:
        return "-"
    if isinstance(v, float):
        return f"{v:.2f}"
    return str(v)


def score_command(args: argparse.Namespace) -> int:
    """Run ``score``; return the exit code."""
    rows: dict[str, dict[str, Score]] = {}
    try:
        profiles = {name: get_profile(name)
                    for name in (getattr(args, "profile", None) or [DEFAULT_PROFILE])}
        paths: list[Path] = []
        for s in args.sessions:
            p = Path(s)
            paths += sorted([*p.glob("*.wav"), *p.glob("*.jsonl")]) if p.is_dir() else [p]
        for p in paths:
            trace, truth_path = _session(p, args)
            truth = read_truth(truth_path)
            row = {name: score_outputs(replay_trace(trace, profile=prof), truth)
                   for name, prof in profiles.items()}
            if args.reference:
                row["reference"] = score_outputs(_reference(trace, args.reference), truth)
            rows[p.name] = row
    except (TurnFsmError, subprocess.CalledProcessError) as e:
        print(f"turnfsm score: {e}", file=sys.stderr)
        return 2
    systems = [*profiles, *(["reference"] if args.reference else [])]
    totals = {s: sum((r[s] for r in rows.values()), Score()) for s in systems}
    if args.json:
        doc = {"sessions": {n: {s: r[s].summary() | {"details": list(r[s].details)}
                                for s in systems} for n, r in rows.items()},
               "total": {s: totals[s].summary() for s in systems}}
        print(json.dumps(doc, indent=1))
        return 0
    head = f"{'session':32s} {'system':9s} " + " ".join(f"{c[:10]:>10s}" for c in COLUMNS)
    print(head)
    for name, r in [*rows.items(), ("TOTAL", totals)]:
        for s in systems:
            v = r[s].summary()
            print(f"{name[:32]:32s} {s:9s} " + " ".join(f"{_fmt(v[c]):>10s}" for c in COLUMNS))
    if args.details:
        for name, r in rows.items():
            for s in systems:
                for d in r[s].details:
                    print(f"  {name} [{s}] {d}")
    return 0
