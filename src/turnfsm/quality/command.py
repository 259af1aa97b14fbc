"""``turnfsm score``: end-of-turn decisions against labels, per session and in total."""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

from ..core.profiles import DEFAULT_PROFILE, Profile, get_profile
from ..errors import TurnFsmError
from ..messages import one_line
from ..replay import Trace, read_trace, replay_trace
from .score import Score, Truth, read_truth, score_outputs

COLUMNS = ("turns", "cut_ins", "orphans", "missed_turns", "backchannel_turns",
           "noise_turns", "false_interruptions", "missed_interruptions", "latency_p50",
           "latency_p90", "latency_max")
#: The table's column headers (at most 10 characters each: the figures' names, shortened)
HEADERS = {"turns": "turns", "cut_ins": "cut-ins", "orphans": "orphans",
           "missed_turns": "missed", "backchannel_turns": "bc turns",
           "noise_turns": "noise",
           "false_interruptions": "false int", "missed_interruptions": "missed int",
           "latency_p50": "p50 (s)", "latency_p90": "p90 (s)", "latency_max": "max (s)"}
#: Where the reference replayer is looked for when --reference-script is not given
REFERENCE_SCRIPT_ENV = "TURNFSM_REFERENCE_SCRIPT"


def session_traces(path: Path, profiles: dict[str, Profile], *, asr: str = "none",
                   detector: bool = True, eou_models: tuple[str, ...] = ("rules",)
                   ) -> tuple[dict[tuple[str, str], Trace], Path]:
    """The trace of a session for each profile and end-of-turn model (``rules``, or
    ``smart-turn``: the host's model, ``turn_detection: model``), keyed ``(profile,
    eou_model)``, and its truth file. A WAV goes through `listen` once (its timed words
    when ``asr`` is ``none`` and a words sidecar is beside it, else ``asr``); each trace has
    its profile's option defaults in the header. ``detector``: the overlap rule on stereo
    files."""
    stem = path.with_suffix("")
    truth = Path(f"{stem}.truth.json")
    if not truth.exists():
        raise TurnFsmError(f"{path}: no labels ({truth.name} beside it)")
    if path.suffix == ".jsonl":
        if "smart-turn" in eou_models:
            raise TurnFsmError(f"{path}: --eou-model smart-turn hears audio: it scores WAV "
                               f"sessions, not traces")
        trace = read_trace(path)
        return {(name, m): trace for name in profiles for m in eou_models}, truth
    from ..audio.listen import ListenOptions, build_trace, with_options
    from ..audio.transcripts import read_words
    from ..audio.wav import read_wav
    words_path = Path(f"{stem}.words.json")
    words = read_words(words_path) if asr == "none" and words_path.exists() else None
    # what the agent says is the host's own knowledge, whatever hears the user
    agent_words = read_words(words_path, "agent") if words_path.exists() else None
    audio = read_wav(path)
    changes: dict[str, Any] = {
        "stt": words is not None or asr != "none",
        "interruption_detection": audio.channels > 1 and detector}
    traces: dict[tuple[str, str], Trace] = {}
    for m in eou_models:
        if m == "smart-turn":  # the host's model: the text rules and Smart Turn, fused
            changes = {**changes, "turn_detection": "model"}
        for name, prof in profiles.items():
            opts = ListenOptions(engine=prof.options(changes), asr=asr, profile=name)
            if not traces:
                traces[name, m] = build_trace(audio, opts, words=words,
                                              agent_words=agent_words)
            else:
                traces[name, m] = with_options(next(iter(traces.values())), opts)
    return traces, truth


def _session(path: Path, args: argparse.Namespace,
             profiles: dict[str, Profile]) -> tuple[dict[str, Trace], Path]:
    """The trace of a session for each profile under ``args``' options, and its truth
    file."""
    m = getattr(args, "eou_model", "rules")
    traces, truth = session_traces(path, profiles, asr=args.asr, detector=not args.no_detector,
                                   eou_models=(m,))
    return {name: traces[name, m] for name in profiles}, truth


def reference_script(given: str | None) -> Path:
    """The reference replayer: ``--reference-script``, else $TURNFSM_REFERENCE_SCRIPT, else
    the conformance kit's ``replay_livekit.py`` beside a source checkout (TurnFsmError
    saying where it comes from when there is none)."""
    import os
    candidates = [given] if given else [os.environ.get(REFERENCE_SCRIPT_ENV), str(
        Path(__file__).resolve().parents[3].parent / "shared" / "conformance" /
        "replay_livekit.py")]
    for c in candidates:
        if c and Path(c).is_file():
            return Path(c)
    if given:
        raise TurnFsmError(f"--reference-script {given}: no such file")
    raise TurnFsmError(
        "--reference needs the reference replayer, replay_livekit.py from the conformance "
        "kit that records livekit-agents 1.5.12 on a trace (not part of turnfsm): give "
        f"--reference-script PATH or set {REFERENCE_SCRIPT_ENV}")


def reference_outputs(trace: Trace, python: str, script: Path) -> list[dict[str, Any]]:
    """The reference's outputs on a trace (its replayer run by ``python``); the temporary
    trace file is removed whatever happens."""
    from ..audio.listen import trace_lines
    with tempfile.TemporaryDirectory(prefix="turnfsm-reference-") as tmp:
        path = Path(tmp) / "trace.jsonl"
        path.write_text(trace_lines(trace, reference=True), encoding="utf-8")
        try:
            r = subprocess.run([python, str(script), str(path)], capture_output=True,
                               text=True, check=False, timeout=600)
        except OSError as e:
            raise TurnFsmError(f"--reference {python}: cannot run it: {e.strerror or e}"
                               ) from None
        except subprocess.TimeoutExpired:
            raise TurnFsmError(f"--reference {python}: the reference replayer did not "
                               f"finish {trace.path} in 600 s") from None
    if r.returncode != 0:
        last = next((x for x in reversed(r.stderr.splitlines()) if x.strip()), "no message")
        raise TurnFsmError(f"--reference {python}: the reference replayer failed on "
                           f"{trace.path} (exit {r.returncode}): {last.strip()}")
    try:
        return [json.loads(line) for line in r.stdout.splitlines() if line.strip()]
    except ValueError:
        raise TurnFsmError(f"--reference {python}: the reference replayer printed something "
                           f"other than JSON Lines for {trace.path}") from None


def _fmt(v: Any) -> str:
    if v is None:
        return "-"
    if isinstance(v, float):
        return f"{v:.2f}"
    return str(v)


#: What ``--by`` groups sessions by: the truth file's field
GROUPINGS = ("kind", "language", "synthesis")


def _groups(field: str, rows: dict[str, dict[str, Score]], truths: dict[str, Truth],
            systems: list[str]) -> dict[str, tuple[int, dict[str, Score]]]:
    """The sessions' scores added up per value of a truth field (``kind``: a session counts
    under each of its kinds; ``-`` where the file names none), in order of the values; each
    with how many sessions it holds."""
    keyed: dict[str, list[str]] = {}
    for name in rows:
        t = truths[name]
        keys = (t.kinds or ("-",)) if field == "kind" else (
            (t.synthesis or "-",) if field == "synthesis" else (t.language or "-",))
        for k in keys:
            keyed.setdefault(k, []).append(name)
    return {k: (len(names), {s: sum((rows[n][s] for n in names), Score()) for s in systems})
            for k, names in sorted(keyed.items(), key=lambda kv: (kv[0] == "-", kv[0]))}


def score_command(args: argparse.Namespace) -> int:
    """Run ``score``; return the exit code."""
    rows: dict[str, dict[str, Score]] = {}
    truths: dict[str, Truth] = {}
    try:
        profiles = {name: get_profile(name)
                    for name in (getattr(args, "profile", None) or [DEFAULT_PROFILE])}
        script = reference_script(args.reference_script) if args.reference else None
        paths: list[Path] = []
        model: Any = None  # Smart Turn, loaded once (--eou-model smart-turn)
        for s in args.sessions:
            p = Path(s)
            paths += sorted([*p.glob("*.wav"), *p.glob("*.jsonl")]) if p.is_dir() else [p]
        for p in paths:
            if not p.exists():
                raise TurnFsmError(f"{p}: no such file or folder")
            traces, truth_path = _session(p, args, profiles)
            truth = read_truth(truth_path)
            if getattr(args, "eou_model", "rules") == "smart-turn":
                from ..audio.smart_turn import SmartTurn, replay_fused
                from ..audio.wav import read_wav
                heard = read_wav(p).samples[0]  # the user's channel, as the model hears it
                model = model or SmartTurn()
                row = {name: score_outputs(replay_fused(traces[name], heard, profile=prof,
                                                        smart_turn=model), truth)
                       for name, prof in profiles.items()}
            else:
                row = {name: score_outputs(replay_trace(traces[name], profile=prof), truth)
                       for name, prof in profiles.items()}
            if script is not None:
                first = next(iter(traces.values()))
                row["reference"] = score_outputs(reference_outputs(first, args.reference, script),
                                                 truth)
            rows[p.name] = row
            truths[p.name] = truth
    except TurnFsmError as e:
        print(f"turnfsm score: {one_line(e)}", file=sys.stderr)
        return 2
    systems = [*profiles, *(["reference"] if args.reference else [])]
    totals = {s: sum((r[s] for r in rows.values()), Score()) for s in systems}
    by: list[str] = getattr(args, "by", None) or []
    groups = {field: _groups(field, rows, truths, systems) for field in by}
    if args.json:
        doc: dict[str, Any] = {
            "sessions": {n: {s: r[s].summary() | {"details": list(r[s].details)}
                             for s in systems} for n, r in rows.items()},
            "total": {s: totals[s].summary() for s in systems}}
        for field, g in groups.items():
            doc[f"by_{field}"] = {k: {s: v[s].summary() | {"sessions": n}
                                      for s in systems} for k, (n, v) in g.items()}
        print(json.dumps(doc, indent=1))
        return 0
    w = max(9, *(len(x) for x in systems))
    head = f"{'session':32s} {'system':{w}s} " + " ".join(f"{HEADERS[c]:>10s}" for c in COLUMNS)
    print(head)
    legend = ("# bc turns: backchannels that became turns; noise: sounds (a cough) that became "
              "turns; false int / missed int: interruptions")
    for name, r in [*rows.items(), ("TOTAL", totals)]:
        for s in systems:
            v = r[s].summary()
            print(f"{name[:32]:32s} {s:{w}s} " + " ".join(f"{_fmt(v[c]):>10s}" for c in COLUMNS))
    for field, g in groups.items():
        print()
        print(f"{'by ' + field:32s} {'system':{w}s} "
              + " ".join(f"{HEADERS[c]:>10s}" for c in COLUMNS))
        for key, (n, v) in g.items():
            label = f"{key} ({n} session{'s' if n != 1 else ''})"
            for s in systems:
                fig = v[s].summary()
                print(f"{label[:32]:32s} {s:{w}s} "
                      + " ".join(f"{_fmt(fig[c]):>10s}" for c in COLUMNS))
    print(legend + "; p50, p90, max: response latency")
    if by:
        print("# by kind: a session counts under each of its kinds (its truth file's 'kind'); "
              "'-': the truth file names none")
    if args.details:
        for name, r in rows.items():
            for s in systems:
                for d in r[s].details:
                    print(f"  {name} [{s}] {d}")
    return 0
