"""The ``turnfsm listen`` command (the CLI parses, this runs)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..errors import ConfigError, TurnFsmError
from ..messages import one_line
from ..options import profile_options
from ..profile_cache import profile as get_profile
from ..replay.trace import dumps
from .listen import ListenOptions, Progress, stream_trace, trace_lines
from .transcripts import read_words
from .vad import VadOptions
from .wav import WavStream

if TYPE_CHECKING:
    from ..core.profiles import Profile


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
         "endpointing delays": "--min-delay/--max-delay",
         "vad.activation_threshold": "--vad-threshold",
         "vad.min_silence_duration": "--min-silence",
         **{k: info.flag for k, info in profile_options().items()}}


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
    if getattr(args, "eou_model", "rules") == "smart-turn":
        if args.turn_detection not in (None, "model"):
            raise ConfigError(f"--eou-model smart-turn is the end-of-turn model: it needs "
                              f"turn detection 'model', not {args.turn_detection!r}")
        changes["turn_detection"] = "model"
    endpointing = {k: v for k, v in (("mode", args.endpointing), ("min_delay", args.min_delay),
                                     ("max_delay", args.max_delay)) if v is not None}
    if endpointing:
        changes["endpointing"] = endpointing
    if args.interruption_detection != "auto":
        changes["interruption_detection"] = args.interruption_detection == "on"
    elif "interruption_detection" not in profile.option_defaults:
        changes["interruption_detection"] = stereo
    for k in profile_options():  # each flag's dest is its option's name
        if getattr(args, k) is not None:
            changes[k] = getattr(args, k)
    return changes


#: the output flags: (dest, flag, what each file gets in the flag's folder when ``listen``
#: runs several files)
_OUTPUTS = (("output", "-o", ".jsonl"), ("out_trace", "--out-trace", ".trace.jsonl"),
            ("plot", "--plot", ".png"))


def _check_outputs(args: argparse.Namespace) -> None:
    """Refuse, before the work, outputs that could not be written: files, or with several
    WAV files the folders they go in (made if missing; two WAV files of one name would
    write the same outputs)."""
    from ..outfiles import check_output_dir, check_output_file
    several = len(args.wav) > 1
    given = [(getattr(args, dest), flag) for dest, flag, _s in _OUTPUTS if getattr(args, dest)]
    for path, flag in given:
        if several:
            check_output_dir(path, flag)
        else:
            check_output_file(path, flag, (".png", ".svg", ".pdf") if flag == "--plot" else ())
    if getattr(args, "reference_trace", False) and not args.out_trace:
        raise TurnFsmError("--reference-trace says how to write --out-trace: give "
                           f"--out-trace {'FOLDER' if several else 'TRACE.jsonl'} too")
    if args.plot:
        import importlib.util
        if importlib.util.find_spec("matplotlib") is None:
            raise TurnFsmError("--plot needs matplotlib: pip install 'turnfsm[plot]'")
    if len({Path(path).resolve() for path, _f in given}) < len(given):
        raise TurnFsmError("-o, --out-trace and --plot must name different "
                           f"{'folders' if several else 'files'}")
    if several and given:
        seen: dict[str, str] = {}
        for w in args.wav:
            stem = Path(w).stem
            if stem in seen:
                raise TurnFsmError(f"{seen[stem]} and {w} have the same name: their outputs "
                                   "would overwrite each other in one folder")
            seen[stem] = w


def run_options(args: argparse.Namespace, profile: Profile, profile_name: str,
                stereo: bool) -> ListenOptions:
    """How a WAV file is run (``listen`` and ``view``): the engine's options (the profile's,
    with the flags given), the VAD's, the transcripts' (TurnFsmError naming the flag when a
    value is refused)."""
    latency: float | str = "measured" if args.asr_latency == "measured" else float(
        args.asr_latency)
    transcripts = bool(args.words) or args.asr != "none"
    try:
        engine = profile.options(engine_changes(args, profile, stereo, transcripts))
        vad = VadOptions(activation_threshold=args.vad_threshold,
                         deactivation_threshold=max(0.01, args.vad_threshold - 0.15),
                         min_silence_duration=args.min_silence)
    except (ConfigError, ValueError) as e:
        raise TurnFsmError(flag_names(str(e))) from None
    if args.asr == "whisper" and args.language and \
            args.language.split("-")[0].split("_")[0].lower() != "en":
        raise TurnFsmError(f"--language {args.language}: --asr whisper runs Whisper tiny.en, "
                           "which transcribes English only (give --words for other languages)")
    return ListenOptions(engine=engine, vad=vad, asr=args.asr, asr_latency=latency,
                         language=args.language, interims=not args.no_interims,
                         profile=_trace_profile(profile_name))


def wav_inputs(given: list[str]) -> list[str]:
    """The WAV files ``listen`` runs, in order: each file given, each folder's ``.wav``
    files (sorted by name); ``-`` (standard input) only alone."""
    if "-" in given:
        if len(given) > 1:
            raise TurnFsmError("`-` (standard input, live) runs alone: give it without files")
        return given
    out: list[str] = []
    for g in given:
        p = Path(g)
        if p.is_dir():
            found = sorted(str(x) for x in p.iterdir()
                           if x.suffix.lower() == ".wav" and x.is_file())
            if not found:
                raise TurnFsmError(f"{g}: a folder with no .wav files in it")
            out += found
        else:
            out.append(g)
    return out


def words_file(words: str | None, wav: str) -> str | None:
    """The timed words of ``wav``: ``--words``' file, or with ``--words auto`` the file's
    ``NAME.words.json`` beside it if there is one (None: no transcripts)."""
    if words != "auto":
        return words
    side = Path(wav).with_suffix(".words.json")
    return str(side) if side.is_file() else None


def _listen(args: argparse.Namespace) -> int:
    args.wav = wav_inputs(args.wav)
    _check_outputs(args)
    if len(args.wav) == 1:
        return _listen_file(args, args.wav[0])
    if args.words not in (None, "auto"):
        raise TurnFsmError(f"--words {args.words} is one file's words: with several WAV "
                           "files give --words auto (each file's NAME.words.json beside it)")
    failed = 0
    for k, wav in enumerate(args.wav):
        one = argparse.Namespace(**vars(args))
        for dest, _flag, suffix in _OUTPUTS:
            if getattr(args, dest):
                folder = Path(getattr(args, dest))
                folder.mkdir(parents=True, exist_ok=True)
                setattr(one, dest, str(folder / (Path(wav).stem + suffix)))
        if k and not args.quiet:
            sys.stdout.write("\n")
        try:
            _listen_file(one, wav)
        except TurnFsmError as e:  # the next files still run; the exit code says it
            msg = one_line(e)
            print(f"turnfsm listen: {msg if wav in msg else f'{wav}: {msg}'}",
                  file=sys.stderr)
            failed += 1
    if failed:
        print(f"turnfsm listen: {failed} of {len(args.wav)} files failed", file=sys.stderr)
    return 2 if failed else 0


def _listen_file(args: argparse.Namespace, wav: str) -> int:
    """Run one WAV file (or ``-``): ``args``' outputs are this file's."""
    from ..core import read_chart
    from ..replay.timeline import TimelineObserver

    # live: a WAV stream or raw 16 kHz 16-bit mono PCM
    stream = (WavStream(sys.stdin.buffer, "<stdin>", raw=None) if wav == "-" else
              WavStream(wav))
    if wav != "-":
        args.words = words_file(args.words, wav)
    profile = get_profile(args.profile)
    opts = run_options(args, profile, args.profile, stream.channels > 1)
    engine = opts.engine
    chart = read_chart(args.chart) if args.chart else None
    words = read_words(args.words) if args.words else None
    agent_words = read_words(args.words, "agent") if args.words else None
    if wav == "-":
        from .live import listen_live
        return listen_live(args, stream, opts, profile, chart)
    bar = Progress((stream.duration or 0.0) > 5.0)
    smart = getattr(args, "eou_model", "rules") == "smart-turn"
    trace, audio = stream_trace(stream, opts, words=words, progress=bar,
                                keep_audio=bool(args.plot) or smart, agent_words=agent_words)
    bar.done()
    duration = stream.duration if stream.duration is not None else (
        trace.inputs[-1].t if trace.inputs else 0.0)
    timeline = TimelineObserver(trace, args.diagnostics)
    head = (f"# {stream.path}: {duration:.2f} s, "
            f"{'stereo (user, agent)' if stream.channels > 1 else 'mono (user)'}, "
            f"transcripts: {'words' if words is not None else args.asr}, "
            f"profile: {profile.name}\n") + timeline.header
    if args.realtime and not args.quiet:  # each line printed when it happens
        from .live import Printing
        timeline = Printing(trace, diagnostics=args.diagnostics)
        sys.stdout.write(head)
        sys.stdout.flush()
    records: list[Any] = []

    def observe(rec: Any) -> None:
        timeline(rec)
        records.append(rec)
    if not args.realtime and engine.turn_detection != "model":
        # the direct replay (the same outputs as a Session's; no event loop to start)
        from ..replay.replay import Replay
        # (-q without --plot: nothing reads the steps, so none is observed)
        direct = Replay(trace, diagnostics=args.diagnostics, chart=chart, profile=profile,
                        observer=observe if args.plot else None if args.quiet else timeline)
        lines = direct.run()
        return _finish(args, trace, lines, records, audio, head, timeline)
    from ..runtime.model import RuleBasedModel
    from ..runtime.replay import RuntimeReplay
    if smart:  # the text rules and Smart Turn, fused, hearing the user's channel
        from .smart_turn import SmartTurn, fused_replay
        assert audio is not None
        replay = fused_replay(trace, audio.samples[0], profile=profile, chart=chart,
                              smart_turn=SmartTurn(), diagnostics=args.diagnostics,
                              observers=(timeline, records.append))
    else:
        replay = RuntimeReplay(trace, diagnostics=args.diagnostics, chart=chart,
                               observers=(timeline, records.append), profile=profile)
    if engine.turn_detection == "model" and not smart:
        rule = RuleBasedModel()
        replay.model_fn = rule.answer
        replay.model.opts["unlikely_threshold"] = rule.threshold
    lines = _realtime(replay, duration) if args.realtime else replay.run()
    if replay.model_answers:  # the trace reruns the model's answers, in order
        import attrs

        from ..runtime.replay import model_config
        trace = attrs.evolve(trace, config=model_config(trace.config, replay))
    return _finish(args, trace, lines, records, audio, head, timeline)


def _finish(args: argparse.Namespace, trace: Any, lines: list[dict[str, Any]],
            records: list[Any], audio: Any, head: str, timeline: Any) -> int:
    """Print the timeline, then write what was asked for (a failed write never loses the
    timeline)."""
    from ..outfiles import write_text
    if not args.quiet:
        if not args.realtime:  # (in real time the lines were printed as they happened)
            sys.stdout.write(head)
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
        write_text(args.out_trace, trace_lines(trace, reference=args.reference_trace),
                   "--out-trace")
    if args.plot:
        from .plot import plot_session
        assert audio is not None
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


def _realtime(replay: Any, duration: float) -> list[dict[str, Any]]:
    """Run the replay's session on the wall clock (inputs pushed as their times come); the
    run ends when the audio has played and no decision is pending."""
    import asyncio

    from ..options import MAX_DURATION
    from ..runtime.session import Session

    async def run() -> list[dict[str, Any]]:
        from ..replay import engine_options
        from ..runtime.replay import _Hooks, _ScriptedModel
        session = replay.session = Session(
            engine_options(replay.cfg), profile=replay.profile, chart=replay.chart,
            hooks=_Hooks(replay),
            model=_ScriptedModel(replay, replay.model), model_timeout=MAX_DURATION,
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
        end = max(duration, replay.trace.inputs[-1].t if replay.trace.inputs else 0.0)
        await asyncio.sleep(max(0.0, start + end - loop.time()))
        while True:  # the decisions still pending (a final awaited, an end of turn's delay)
            d = session.scheduler.next_deadline()
            if d is None or d > end + 30.0:
                break
            await asyncio.sleep(max(0.0, start + d - loop.time()) + 0.002)
            await session.settle()
        replay.rec(session.now(), "close")
        await session.aclose()
        lines: list[dict[str, Any]] = replay.lines
        return lines
    return asyncio.run(run())
