"""Run the session a page shows: a WAV file as ``turnfsm listen`` runs it, a trace as
``turnfsm replay`` replays it, or a ``listen``/``replay`` output with its trace (checked:
the replay must give the same lines)."""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..core import StepRecord
from ..errors import TurnFsmError
from ..messages import one_line
from .session import SessionRun

if TYPE_CHECKING:
    from ..audio.envelope import PageAudio


def _first_line(path: str) -> dict[str, Any] | None:
    """The file's first JSON line (None: not JSON Lines)."""
    try:
        with open(path, encoding="utf-8") as f:
            line = f.readline()
    except UnicodeDecodeError:
        return None
    except OSError as e:
        raise TurnFsmError(f"{path}: cannot read it: {e.strerror or e}") from None
    try:
        obj = json.loads(line)
    except ValueError:
        return None
    return obj if isinstance(obj, dict) else None


def run_session(args: argparse.Namespace,
                defaults: dict[str, Any] | None = None) -> SessionRun:
    """The run of ``args.session`` (a WAV, a trace, or an output with ``--trace``);
    ``defaults``: the options' defaults (a WAV's run options given for a trace are refused)."""
    path = args.session
    if not Path(path).is_file():
        raise TurnFsmError(f"{path}: no such file")
    with open(path, "rb") as f:
        magic = f.read(4)
    if magic == b"RIFF" or path.lower().endswith(".wav"):
        if args.trace:
            raise TurnFsmError("--trace goes with a listen/replay output, not a WAV file")
        return run_wav(args)
    if defaults is not None:
        _refuse_wav_options(args, defaults)
    first = _first_line(path)
    if first is None:
        raise TurnFsmError(f"{path}:1: neither a WAV file nor JSON Lines (a trace, or a "
                           "listen/replay output with --trace)")
    if first.get("kind") == "config":
        if args.trace:
            raise TurnFsmError(f"{path} is a trace; --trace goes with an output file")
        return run_trace(path, args)
    if not args.trace:
        raise TurnFsmError(f"{path} is not a trace (its first line is not the config "
                           "header): for a listen/replay output, give its trace with --trace")
    return run_output(path, args)


def _refuse_wav_options(args: argparse.Namespace, defaults: dict[str, Any]) -> None:
    """The options of how a WAV is run mean nothing for a trace (its inputs are recorded):
    refuse them rather than ignore them."""
    keep = {"session", "output", "serve", "port", "trace", "audio", "profile", "chart", "func"}
    given = [k for k, v in vars(args).items() if k not in keep and v != defaults.get(k)]
    if given:
        flag = "--" + given[0].replace("_", "-")
        raise TurnFsmError(f"{flag} shapes how a WAV file is run; {args.session} is not a "
                           "WAV file (a trace's inputs are already recorded)")


def _profile_arg(args: argparse.Namespace) -> Any:
    if args.profile is None:
        return None
    from ..profile_cache import profile
    return profile(args.profile)


def run_trace(path: str, args: argparse.Namespace) -> SessionRun:
    """Replay a trace with a step observer."""
    from ..core import read_chart
    from ..replay import read_trace
    from ..replay.replay import Replay
    trace = read_trace(path)
    records: list[StepRecord] = []
    chart = read_chart(args.chart) if args.chart else None
    replay = Replay(trace, diagnostics=True, chart=chart, profile=_profile_arg(args),
                    observer=records.append)
    lines = replay.run()
    if replay.refused is not None or replay.engine is None:
        raise TurnFsmError(f"{path}:1: {replay.refused}")
    audio, notes = _trace_audio(trace, path, args)
    return SessionRun(trace=trace, lines=lines, records=records, chart=replay.engine.chart,
                      profile=str(trace.config.get("profile") or "livekit")
                      if args.profile is None else args.profile,
                      source=path, audio=audio, notes=notes)


def _page_audio(path: str, args: argparse.Namespace) -> PageAudio:
    """The envelope (and, as ``--audio`` says, a playable copy) of a WAV file."""
    from ..audio.envelope import PageAudio
    return PageAudio(path, audio={"on": True, "off": False}.get(args.audio))


def _trace_audio(trace: Any, path: str, args: argparse.Namespace
                 ) -> tuple[PageAudio | None, list[str]]:
    """The audio of a trace ``listen`` wrote, when the WAV its header names is still there
    (its envelope is drawn; a missing or unreadable file is said in a note)."""
    comment = str(trace.config.get("comment") or "")
    if not comment.startswith("turnfsm listen "):
        return None, []
    wav = Path(comment.removeprefix("turnfsm listen "))
    if not wav.is_file():
        return None, [f"the trace came from {wav}, not found: no waveform"]
    try:
        return _page_audio(str(wav), args), [f"waveform from {wav}"]
    except TurnFsmError as e:
        return None, [f"{one_line(e)}: no waveform"]


def run_output(path: str, args: argparse.Namespace) -> SessionRun:
    """Replay ``--trace`` and check it gives the output file's lines."""
    run = run_trace(args.trace, args)
    want: list[dict[str, Any]] = []
    with open(path, encoding="utf-8") as f:
        for n, line in enumerate(f, 1):
            if line.strip():
                try:
                    want.append(json.loads(line))
                except ValueError:
                    raise TurnFsmError(f"{path}:{n}: not a JSON line") from None
    got = [x for x in json.loads(json.dumps(run.lines))
           if x.get("kind") != "transcript_dropped"]
    want = [x for x in want if x.get("kind") != "transcript_dropped"]
    if got != want:
        n = next((k for k, (a, b) in enumerate(zip(got, want, strict=False)) if a != b),
                 min(len(got), len(want)))
        raise TurnFsmError(f"{path}:{n + 1}: the replay of {args.trace} differs from this "
                           "output here (another trace, profile or turnfsm version?)")
    run.source = f"{path} (trace {args.trace})"
    return run


def run_wav(args: argparse.Namespace) -> SessionRun:
    """Run a WAV file as ``turnfsm listen`` does, keeping the step records; then read it
    again for the page's envelope and audio (block by block: memory stays flat)."""
    from ..audio.command import run_options, words_file
    from ..audio.listen import stream_trace
    from ..audio.transcripts import read_words
    from ..audio.wav import WavStream
    from ..core import read_chart
    from ..profile_cache import profile as get_profile
    from ..replay.replay import Replay
    stream = WavStream(args.session)
    args.words = words_file(args.words, args.session)
    profile_name = args.profile or "default"
    profile = get_profile(profile_name)
    opts = run_options(args, profile, profile_name, stream.channels > 1)
    engine = opts.engine
    chart = read_chart(args.chart) if args.chart else None
    words = read_words(args.words) if args.words else None
    agent_words = read_words(args.words, "agent") if args.words else None
    smart = getattr(args, "eou_model", "rules") == "smart-turn"
    trace, heard = stream_trace(stream, opts, words=words, keep_audio=smart,
                                agent_words=agent_words)
    records: list[StepRecord] = []
    if smart:  # the text rules and Smart Turn, fused, hearing the user's channel
        from ..audio.smart_turn import fused_replay
        assert heard is not None
        rt = fused_replay(trace, heard.samples[0], profile=profile, chart=chart,
                          diagnostics=True, observers=(records.append,))
        lines = rt.run()
        used = rt.engine.chart if rt.engine is not None else profile.chart
    elif engine.turn_detection == "model":
        from ..runtime.model import RuleBasedModel
        from ..runtime.replay import RuntimeReplay
        rt = RuntimeReplay(trace, diagnostics=True, chart=chart, observers=(records.append,),
                           profile=profile)
        rule = RuleBasedModel()
        rt.model_fn = rule.answer
        rt.model.opts["unlikely_threshold"] = rule.threshold
        lines = rt.run()
        used = rt.engine.chart if rt.engine is not None else profile.chart
    else:
        replay = Replay(trace, diagnostics=True, chart=chart, profile=profile,
                        observer=records.append)
        lines = replay.run()
        used = replay.engine.chart if replay.engine is not None else profile.chart
    return SessionRun(trace=trace, lines=lines, records=records, chart=used,
                      profile=profile.name, source=args.session,
                      audio=_page_audio(args.session, args))
