"""The ``turnfsm listen`` command (the CLI parses, this runs)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

import attrs

from ..core.profiles import get_profile
from ..errors import TurnFsmError
from ..messages import one_line
from ..replay.trace import TURN_DETECTOR_DEFAULTS, dumps
from .listen import ListenOptions, Progress, build_trace, trace_lines
from .transcripts import read_words
from .vad import VadOptions
from .wav import read_wav


def listen_command(args: argparse.Namespace) -> int:
    """Run ``listen``; return the exit code."""
    try:
        return _listen(args)
    except TurnFsmError as e:
        print(f"turnfsm listen: {one_line(e)}", file=sys.stderr)
        return 2


#: EngineOptions fields (as ConfigError names them) -> the ``listen`` flag that sets them
FLAGS = {"endpointing.min_delay": "--min-delay", "endpointing.max_delay": "--max-delay",
         "min_delay": "--min-delay", "max_delay": "--max-delay",
         "endpointing.mode": "--endpointing", "turn_detection": "--turn-detection",
         "transcript_timeout": "--transcript-timeout",
         "backchannel_max_words": "--backchannel-max-words",
         "backchannel_max_duration": "--backchannel-max-duration",
         "endpointing delays": "--min-delay/--max-delay",
         "vad.activation_threshold": "--vad-threshold",
         "vad.min_silence_duration": "--min-silence"}


def flag_names(message: str) -> str:
    """An option error with the ``listen`` flags in place of the option fields."""
    import re
    message = message.removeprefix("options: ")
    for field in sorted(FLAGS, key=len, reverse=True):
        message = re.sub(rf"(?<![\w.-]){re.escape(field)}(?![\w])", FLAGS[field], message)
    return message


def engine_changes(args: argparse.Namespace, profile: Any, stereo: bool,
                   transcripts: bool) -> dict[str, Any]:
    """The options ``listen`` changes over the profile's: only the flags given (the others
    keep the profile's values), what the input has (transcripts or not) and, for
    ``--interruption-detection auto``, a stereo file's overlap rule unless the profile
    sets the option."""
    changes: dict[str, Any] = {
        "stt": transcripts}  # without transcripts the VAD alone ends turns (empty transcripts)
    if args.turn_detection is not None:
        changes["turn_detection"] = args.turn_detection
    endpointing = {k: v for k, v in (("mode", args.endpointing), ("min_delay", args.min_delay),
                                     ("max_delay", args.max_delay)) if v is not None}
    if endpointing:
        changes["endpointing"] = endpointing
    if args.interruption_detection != "auto":
        changes["interruption_detection"] = args.interruption_detection == "on"
    elif "interruption_detection" not in profile.option_defaults:
        changes["interruption_detection"] = stereo
    if args.transcript_timeout is not None:
        changes["transcript_timeout"] = args.transcript_timeout
    if args.backchannel_max_words is not None:
        changes["backchannel_max_words"] = args.backchannel_max_words
    return changes


def _check_outputs(args: argparse.Namespace) -> None:
    """Refuse, before the work, output files that could not be written."""
    from ..outfiles import check_output_file
    if args.output:
        check_output_file(args.output, "-o")
    if args.out_trace:
        check_output_file(args.out_trace, "--out-trace")
    if args.plot:
        check_output_file(args.plot, "--plot", (".png", ".svg", ".pdf"))
        import importlib.util
        if importlib.util.find_spec("matplotlib") is None:
            raise TurnFsmError("--plot needs matplotlib: pip install 'turnfsm[plot]'")
    outs = [x for x in (args.output, args.out_trace, args.plot) if x]
    same = {Path(x).resolve() for x in outs}
    if len(same) < len(outs):
        raise TurnFsmError("-o, --out-trace and --plot must name different files")


def _listen(args: argparse.Namespace) -> int:
    from ..core import read_chart
    from ..errors import ConfigError
    from ..outfiles import write_text
    from ..replay.timeline import TimelineObserver
    from ..runtime.model import RuleBasedModel
    from ..runtime.replay import RuntimeReplay

    _check_outputs(args)
    audio = read_wav(args.wav)
    latency: float | str = "measured" if args.asr_latency == "measured" else float(
        args.asr_latency)
    transcripts = bool(args.words) or args.asr != "none"
    profile = get_profile(args.profile)
    try:
        engine = profile.options(engine_changes(args, profile, audio.channels > 1,
                                                transcripts))
        vad = VadOptions(activation_threshold=args.vad_threshold,
                         deactivation_threshold=max(0.01, args.vad_threshold - 0.15),
                         min_silence_duration=args.min_silence)
    except (ConfigError, ValueError) as e:
        raise TurnFsmError(flag_names(str(e))) from None
    opts = ListenOptions(engine=engine, vad=vad, asr=args.asr, asr_latency=latency,
                         interims=not args.no_interims,
                         profile=_trace_profile(args.profile))
    chart = read_chart(args.chart) if args.chart else None
    words = read_words(args.words) if args.words else None
    bar = Progress(audio.duration > 5.0)
    trace = build_trace(audio, opts, words=words, progress=bar)
    bar.done()
    timeline = TimelineObserver(trace, args.diagnostics)
    records: list[Any] = []
    replay = RuntimeReplay(trace, diagnostics=args.diagnostics, chart=chart,
                           observers=(timeline, records.append), profile=profile)
    if engine.turn_detection == "model":
        rule = RuleBasedModel()
        replay.model_fn = rule.probability
        replay.model.opts["unlikely_threshold"] = rule.threshold
    lines = _realtime(replay) if args.realtime else replay.run()
    if replay.model_answers:  # the trace reruns the model's answers, in order
        trace = attrs.evolve(trace, config={**trace.config, "turn_detector": {
            **TURN_DETECTOR_DEFAULTS, **trace.config["turn_detector"],
            "probabilities": list(replay.model_answers)}})
    if not args.quiet:  # the timeline first: a failed write below never loses it
        sys.stdout.write(f"# {audio.path}: {audio.duration:.2f} s, "
                         f"{'stereo (user, agent)' if audio.channels > 1 else 'mono (user)'}, "
                         f"transcripts: {'words' if words is not None else args.asr}, "
                         f"profile: {profile.name}\n")
        sys.stdout.write(timeline.header)
        for row in timeline.rows:
            if row[2].startswith("vad.inference_done"):
                continue
            sys.stdout.write(timeline.format_row(row))
        eots = [x for x in lines if x["kind"] == "on_end_of_turn"]
        sys.stdout.write(f"# {len(eots)} end(s) of turn\n")
        sys.stdout.flush()
    if args.output:
        write_text(args.output, dumps(lines), "-o")
    if args.out_trace:
        write_text(args.out_trace, trace_lines(trace), "--out-trace")
    if args.plot:
        from .plot import plot_session
        try:
            plot_session(audio, trace, lines, records, args.plot)
        except OSError as e:
            raise TurnFsmError(f"--plot {args.plot}: cannot write it: {e.strerror or e}"
                               ) from None
    return 0


def _trace_profile(given: str) -> str:
    """What the written trace's header names: a packaged profile by name, a profile file by
    its path (absolute, so the trace replays from any folder)."""
    from ..core.profiles import PROFILES
    return given if given in PROFILES else str(Path(given).resolve())


def _realtime(replay: Any) -> list[dict[str, Any]]:
    """Run the replay's session on the wall clock (inputs pushed as their times come)."""
    import asyncio

    from ..runtime.session import Session

    async def run() -> list[dict[str, Any]]:
        from ..replay import engine_options
        from ..runtime.replay import _Hooks, _ScriptedModel
        session = replay.session = Session(
            engine_options(replay.cfg), profile=replay.profile, chart=replay.chart,
            hooks=_Hooks(replay),
            model=_ScriptedModel(replay, replay.model), model_timeout=1e9,
            observers=replay.observers)
        replay.engine = session.engine
        loop = asyncio.get_running_loop()
        start = loop.time()
        for i in replay.trace.inputs:
            delay = start + i.t - loop.time()
            if delay > 0:
                await asyncio.sleep(delay)
            replay.now = max(replay.now, i.t)
            replay.apply(i)
        await asyncio.sleep(max(0.0, replay.cfg["endpointing"]["max_delay"] + 0.5))
        replay.rec(session.now(), "close")
        await session.aclose()
        lines: list[dict[str, Any]] = replay.lines
        return lines
    return asyncio.run(run())
