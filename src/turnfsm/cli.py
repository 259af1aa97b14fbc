"""turnfsm: turn-taking for voice agents as a declared state machine. Run a WAV file
through it (listen), replay recorded sessions (replay), score and tune its decisions against
labelled sessions (score, tune), validate and draw the state chart (check, diagram)."""

from __future__ import annotations

import argparse
import gc
import os
import sys
from pathlib import Path
from typing import Any, NoReturn

from .argtypes import asr_latency as _latency
from .argtypes import count as _count
from .argtypes import language_tag as _language
from .argtypes import positive_seconds as _positive_seconds
from .argtypes import seconds as _seconds
from .argtypes import threshold as _threshold
from .errors import TurnFsmError
from .messages import one_line
from .options import profile_options
from .outfiles import OutputPathError, check_output_dir, check_output_file, write_text


def _replay_to(src: str, dst: str | None, opts: dict[str, Any],
               runtime: str) -> tuple[str, bool] | None:
    """Replay one trace into ``dst`` (stdout when None), one line at a time; return None, or
    the error message and whether it is a header the engine refused (the output then holds
    the format's error line). A file is written whole or not at all."""
    from .replay.replay import replay_stream
    refused: str | None = None
    try:
        if runtime == "asyncio":
            from .runtime.replay import replay_runtime_text
            text, refused = replay_runtime_text(src, **opts)
            if dst is None:
                sys.stdout.write(text)
            else:
                write_text(dst, text, "-o")
        elif dst is None:
            refused = replay_stream(src, sys.stdout, **opts)
        else:
            tmp = Path(dst).with_name(Path(dst).name + ".partial")
            try:
                with open(tmp, "w", encoding="utf-8") as f:
                    refused = replay_stream(src, f, **opts)
                tmp.replace(dst)
            except OSError as e:
                return f"turnfsm replay: -o {dst}: cannot write it: {e.strerror or e}", False
            finally:
                tmp.unlink(missing_ok=True)
    except TurnFsmError as e:
        return f"turnfsm replay: {one_line(e)}", False
    # the output holds the header's error line (the format's); the run still failed
    return None if refused is None else (f"turnfsm replay: {src}:1: {refused}", True)


def _replay(args: argparse.Namespace) -> int:
    from .core import read_chart
    from .replay import read_trace

    def fail(message: str) -> int:
        print(f"turnfsm replay: {message}", file=sys.stderr)
        return 2
    chart = None
    if args.chart:
        try:
            chart = read_chart(args.chart)
        except TurnFsmError as e:
            return fail(one_line(e))
    opts: dict[str, Any] = {"diagnostics": args.diagnostics, "chart": chart}
    if args.profile is not None:
        from .core.profiles import get_profile
        try:
            get_profile(args.profile)  # checked here; each replay resolves the name
            opts["profile"] = args.profile
        except TurnFsmError as e:
            return fail(one_line(e))
    if args.runtime == "asyncio":
        if args.backend != "table" or args.timeline:
            return fail("--runtime asyncio replays through a Session with the default "
                        "--backend and no --timeline")
    else:
        opts["backend"] = args.backend
    if args.jobs is not None and args.jobs < 1:
        return fail("--jobs must be at least 1")

    if args.dir:
        src = Path(args.dir)
        if not src.is_dir():
            return fail(f"--dir {src}: not a folder")
        if not args.output:
            return fail("--dir needs -o OUTDIR")
        try:
            check_output_dir(args.output, "-o")
            dst = Path(args.output)
            dst.mkdir(parents=True, exist_ok=True)
        except OutputPathError as e:
            return fail(one_line(e))
        except OSError as e:
            return fail(f"-o {args.output}: cannot create the folder: {e.strerror or e}")
        work = [(str(p), str(dst / p.name)) for p in sorted(src.glob("*.jsonl"))]
        jobs = min(args.jobs or os.cpu_count() or 1, max(1, len(work)))
        if jobs == 1:
            errors = [_replay_to(a, b, opts, args.runtime) for a, b in work]
        else:
            from concurrent.futures import ProcessPoolExecutor
            with ProcessPoolExecutor(max_workers=jobs) as pool:
                errors = list(pool.map(_replay_to, [a for a, _ in work], [b for _, b in work],
                                       [opts] * len(work), [args.runtime] * len(work),
                                       chunksize=max(1, len(work) // (jobs * 4))))
        # a header the engine refuses is that trace's output (the format's error line, as
        # the conformance suite expects): said on stderr, it fails only a one-trace replay;
        # a trace that could not be replayed fails the folder's
        failed = False
        for error in errors:
            if error is None:
                continue
            message, refused = error
            failed = failed or not refused
            print(message + (" (its output is the error line)" if refused else ""),
                  file=sys.stderr)
        return 2 if failed else 0
    if args.example:
        from importlib import resources
        args.trace = str(resources.files("turnfsm") / "examples" / "session.jsonl")
        args.timeline = args.timeline or not args.output
    if not args.trace:
        return fail("give a TRACE.jsonl, --example, or --dir TRACES -o OUTDIR")
    if args.timeline:
        if args.output:
            return fail("--timeline prints the timeline; drop -o (or --timeline)")
        try:
            from .replay.timeline import render_timeline
            print(render_timeline(read_trace(args.trace), chart,
                                  diagnostics=args.diagnostics), end="")
        except TurnFsmError as e:
            return fail(one_line(e))
        return 0
    if args.output:
        try:
            check_output_file(args.output, "-o")
        except OutputPathError as e:
            return fail(one_line(e))
    error = _replay_to(args.trace, args.output, opts, args.runtime)
    err = None if error is None else error[0]
    if err is not None:
        print(err, file=sys.stderr)
        return 2
    return 0


#: ``listen`` options whose default is the profile's: the flag's dest -> the option's path
#: in :class:`~turnfsm.options.EngineOptions` (``--help`` shows the default profile's value)
PROFILE_OPTIONS: dict[str, tuple[str, ...]] = {
    "turn_detection": ("turn_detection",), "min_delay": ("endpointing", "min_delay"),
    "max_delay": ("endpointing", "max_delay"), "endpointing": ("endpointing", "mode"),
    **{k: (k,) for k in profile_options()}}


def _profile_default(dest: str, profile: str | None = None) -> Any:
    """What a profile (the default one when None) sets for a ``listen`` option."""
    from .core.profiles import get_profile
    value: Any = get_profile(profile).options()
    for name in PROFILE_OPTIONS[dest]:
        value = getattr(value, name)
    return value


class _Help(argparse.HelpFormatter):
    """Help with every option's default: the value, or the profile's for options a
    profile sets (computed when the help is shown)."""

    def _get_help_string(self, action: argparse.Action) -> str | None:
        text = action.help or ""
        if not action.option_strings or "%(default)" in text or "default:" in text:
            return text
        if action.dest in PROFILE_OPTIONS and getattr(self, "_prog", "").endswith("listen"):
            from .core.profiles import DEFAULT_PROFILE
            value = _profile_default(action.dest)
            shown = "none" if value is None else value
            return f"{text} (default: the profile's; {shown} in the {DEFAULT_PROFILE} profile)"
        if action.default in (None, False, argparse.SUPPRESS) or isinstance(
                action, (argparse._HelpAction, argparse._VersionAction)):
            return text
        return f"{text} (default: %(default)s)"


class _Parser(argparse.ArgumentParser):
    """Errors as one line (the command, what is wrong, where the help is), exit 2."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: {message} (see {self.prog} --help)\n")


def _listen_arguments(lp: argparse.ArgumentParser) -> None:
    """The ``listen`` options. Those a profile sets default to None: the profile decides
    unless the flag is given."""
    lp.add_argument("wav", nargs="+", metavar="WAV",
                    help="a WAV file: mono (the user) or stereo (user, agent); several files "
                         "or folders of them run one after another in one process; `-` "
                         "reads standard input live (a WAV stream or raw 16 kHz 16-bit mono "
                         "PCM: sox -d -c 1 -t wav - | turnfsm listen -)")
    lp.add_argument("-o", "--output", metavar="OUT.jsonl",
                    help="write the outputs (JSON Lines, as replay does); with several files "
                         "a folder, one NAME.jsonl each")
    lp.add_argument("--out-trace", metavar="TRACE.jsonl",
                    help="write the inputs as a trace `turnfsm replay` reruns; with several "
                         "files a folder, one NAME.trace.jsonl each")
    lp.add_argument("--reference-trace", action="store_true",
                    help="write --out-trace in the reference's own trace format: without "
                         "the fields only turnfsm reads (the profile and its options, word "
                         "confidences), for the conformance kit's replayer; turnfsm replays "
                         "it with the livekit profile")
    lp.add_argument("--plot", metavar="PICTURE.png",
                    help="draw the session's timeline picture (.png, .svg or .pdf; extra "
                         "`plot`); with several files a folder, one NAME.png each")
    _run_arguments(lp)
    lp.add_argument("--diagnostics", action="store_true",
                    help="the timeline shows each input's trace line and the spec rule of "
                         "each drop; -o also gets a transcript_dropped line per discarded "
                         "transcript (replay the trace with --diagnostics to match)")
    lp.add_argument("--realtime", action="store_true",
                    help="pace the session by the wall clock instead of virtual time")
    lp.add_argument("--profile", default="default",
                    help="the behaviour profile: default, livekit, or a profile file (its "
                         "options are the defaults of the flags above); the trace written "
                         "by --out-trace names it")
    _profile_flags(lp)
    lp.add_argument("-q", "--quiet", action="store_true", help="no timeline")


def _run_arguments(lp: argparse.ArgumentParser) -> None:
    """The options of how a WAV file is run (``listen`` and ``view``)."""
    lp.add_argument("--words", metavar="WORDS.json",
                    help="a sidecar of timed words: the transcripts; `auto`: each WAV "
                         "file's NAME.words.json beside it, where there is one")
    lp.add_argument("--asr", choices=("none", "whisper"), default="none",
                    help="transcribe each VAD segment with local Whisper (extra `asr`)")
    lp.add_argument("--asr-latency", default="0.3", type=_latency, metavar="SECONDS",
                    help="seconds from a segment's end to its final (or 'measured')")
    lp.add_argument("--no-interims", action="store_true", help="finals only")
    lp.add_argument("--language", type=_language, default=None, metavar="TAG",
                    help="the user's language (en, es, fr, de, pt, it, ...): the transcripts "
                         "carry it and it chooses the end-of-turn word lists (default: the "
                         "words sidecar's 'language', else en; --asr whisper: en only)")
    lp.add_argument("--turn-detection", choices=("vad", "stt", "manual", "model"),
                    default=None, help="as EngineOptions.turn_detection ('model': the "
                    "built-in rule-based end-of-turn model)")
    lp.add_argument("--eou-model", choices=("rules", "smart-turn"), default="rules",
                    help="the end-of-turn model. rules: the profile's own (the default "
                         "profile's built-in text rules); smart-turn: the text rules fused "
                         "with Smart Turn v3.2 hearing the user's turn (a file or a live "
                         "stream; extra smart-turn: onnxruntime and pipecat-ai's model file)")
    lp.add_argument("--min-delay", type=_seconds, default=None, metavar="SECONDS",
                    help="the shortest wait after the last speech before a turn ends")
    lp.add_argument("--max-delay", type=_seconds, default=None, metavar="SECONDS",
                    help="the wait when the end-of-turn model or rules judge the utterance "
                         "unfinished")
    lp.add_argument("--endpointing", choices=("fixed", "dynamic"), default=None,
                    help="fixed delays, or dynamic (learnt from the conversation's pauses)")
    lp.add_argument("--interruption-detection", choices=("auto", "on", "off"), default="auto",
                    help="auto: on for stereo files (the overlap rule judges overlaps), or "
                         "as the profile sets it")
    lp.add_argument("--vad-threshold", type=_threshold, default=0.5, metavar="P",
                    help="VAD activation threshold (deactivation 0.15 lower)")
    lp.add_argument("--min-silence", type=_seconds, default=0.55, metavar="SECONDS",
                    help="VAD silence that ends speech (seconds)")
    lp.add_argument("--chart", help="run this state chart instead of the profile's")


def _profile_flags(lp: argparse.ArgumentParser) -> None:
    """The flags of the options a profile sets (declared on EngineOptions' fields)."""
    types = {"positive_seconds": _positive_seconds, "seconds": _seconds, "count": _count}
    for k, info in profile_options().items():  # declared on EngineOptions' fields
        lp.add_argument(info.flag, dest=k, type=types[info.cli_type], default=None,
                        metavar=info.metavar, help=info.cli_help)


def _listen(args: argparse.Namespace) -> int:
    from .audio.command import listen_command
    return listen_command(args)


def _view(args: argparse.Namespace) -> int:
    from .view.command import view_command
    defaults = vars(build_parser("view").parse_args(["view", args.session]))
    return view_command(args, defaults)


def _score(args: argparse.Namespace) -> int:
    from .quality.command import score_command
    return score_command(args)


def _tune(args: argparse.Namespace) -> int:
    from .tuning.command import tune_command
    return tune_command(args)


def _check(args: argparse.Namespace) -> int:
    from .core import read_chart

    try:
        if args.profile:
            from .core.profiles import get_profile
            chart = get_profile(args.profile).chart
        elif args.chart:
            chart = read_chart(args.chart)
        else:  # states.yaml, as the livekit profile's cache holds it (rebuilt if it changed)
            from .profile_cache import packaged_profile
            chart = packaged_profile("livekit").chart
    except TurnFsmError as e:
        print(str(e), file=sys.stderr)
        return 1
    print(f"{chart.source}: ok ({len(chart.regions)} regions, "
          f"{sum(len(r.states) for r in chart.regions)} states, "
          f"{len(chart.transitions)} transitions)")
    return 0


def _diagram(args: argparse.Namespace) -> int:
    from .chart import load_chart
    from .chart.diagram import (
        DiagramError,
        region_names,
        render,
        to_dot,
        to_mermaid,
        write_diagrams,
    )

    err = sys.stderr
    if args.all and (args.region or args.format):
        print("turnfsm diagram: --all writes every format and region; drop --format/--region",
              file=err)
        return 2
    if args.all and not args.output:
        print("turnfsm diagram: --all needs -o DIR (the committed set lives in diagrams/)",
              file=err)
        return 2
    if args.chart and args.profile:
        print("turnfsm diagram: give --chart or --profile, not both", file=err)
        return 2
    try:
        if args.profile:
            from .core.profiles import get_profile
            chart = get_profile(args.profile).chart
        elif args.chart and args.no_engine_check:
            path = Path(args.chart)
            try:
                text = path.read_text(encoding="utf-8")
            except OSError as exc:
                print(f"turnfsm diagram: {path}: cannot read the chart: {exc.strerror or exc}",
                      file=err)
                return 1
            chart = load_chart(text, str(path))
        else:
            from .core import read_chart
            from .core.profiles import get_profile
            chart = read_chart(args.chart) if args.chart else get_profile().chart
    except TurnFsmError as e:
        print(str(e), file=err)
        return 1
    if args.region is not None and args.region not in region_names(chart):
        print(f"turnfsm diagram: unknown region {args.region!r}; the regions of "
              f"{chart.source} are: {', '.join(region_names(chart))}", file=err)
        return 2
    try:
        if args.all and not (args.chart or args.profile):
            # the committed set: states.yaml (the livekit profile) at the root, each other
            # profile under profiles/NAME/
            from .core.profiles import PROFILES, get_profile
            written, removed = write_diagrams(get_profile("livekit").chart, args.output)
            for name in PROFILES:
                if name != "livekit":
                    w, r = write_diagrams(get_profile(name).chart,
                                          Path(args.output) / "profiles" / name)
                    written += w
                    removed += r
            for p in removed:
                print(f"removed {p}")
            print(f"wrote {len(written)} files under {args.output}")
            return 0
        if args.all:
            written, removed = write_diagrams(chart, args.output)
            for p in removed:
                print(f"removed {p}")
            print(f"wrote {len(written)} files under {args.output}")
            return 0
        fmt = args.format or "mermaid"
        if fmt == "mermaid":
            data = to_mermaid(chart, args.region).encode("utf-8")
        elif fmt == "dot":
            data = to_dot(chart, args.region).encode("utf-8")
        else:
            if not args.output and sys.stdout.isatty():
                print(f"turnfsm diagram: {fmt} is binary; give -o FILE", file=err)
                return 2
            data = render(to_dot(chart, args.region), fmt)
    except DiagramError as e:
        print(f"turnfsm diagram: {e}", file=err)
        return 1
    if args.output:
        out = Path(args.output)
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_bytes(data)
    else:
        sys.stdout.flush()
        sys.stdout.buffer.write(data)
        sys.stdout.buffer.flush()
    return 0


class _Unused:
    """The options of a command not being run: not built (argparse checks each option as it
    is added, a few ms per command at every start)."""

    def add_argument(self, *args: Any, **kw: Any) -> None:
        pass

    def set_defaults(self, **kw: Any) -> None:
        pass


def build_parser(command: str | None = None) -> argparse.ArgumentParser:
    """The command line's parser (every option with its help and default; with ``command``,
    only that command's options: every command is still listed)."""
    from . import __version__
    ap = _Parser(prog="turnfsm", description=__doc__, formatter_class=_Help)
    ap.add_argument("--version", action="version", version=f"turnfsm {__version__}",
                    help="print the version and exit")
    sub = ap.add_subparsers(dest="cmd", required=True, parser_class=_Parser)

    def add(name: str, **kw: Any) -> Any:
        p = sub.add_parser(name, formatter_class=_Help, **kw)
        return p if command is None or command == name else _Unused()
    rp = add("replay", help="replay a recorded session (trace) in virtual time")
    rp.add_argument("trace", nargs="?", help="trace file (JSON Lines)")
    rp.add_argument("--dir", help="replay every *.jsonl in this folder (a trace whose header "
                    "the engine refuses gets the format's error line as its output and a "
                    "note on stderr; the run fails only if a trace cannot be replayed)")
    rp.add_argument("-o", "--output", metavar="OUT",
                    help="output file (or folder with --dir); default: standard output")
    rp.add_argument("--timeline", action="store_true", help="print a readable timeline")
    rp.add_argument("--example", action="store_true",
                    help="replay the built-in example session (printed as a timeline)")
    rp.add_argument("--diagnostics", action="store_true",
                    help="also write transcript_dropped lines (why a transcript was "
                         "discarded); with --timeline, show each input's trace line and the "
                         "spec rule of each drop")
    rp.add_argument("--chart", help="run this state chart instead of the profile's")
    rp.add_argument("--profile", help="the behaviour profile (default, livekit, or a profile "
                    "file) instead of the one the trace's header names (none named: livekit)")
    rp.add_argument("--backend", choices=("table", "transitions"), default="table",
                    help="dispatch through the compiled table or transitions' machines")
    rp.add_argument("--jobs", "-j", type=int, default=None,
                    help="with --dir: replay this many traces at once (default: every core)")
    rp.add_argument("--runtime", choices=("direct", "asyncio"), default="direct",
                    help="drive the engine directly or through an asyncio Session "
                         "on a virtual clock (the same output)")
    rp.set_defaults(func=_replay)
    lp = add("listen", help="run a WAV file through a VAD, a recogniser and a "
                        "session, and show what turnfsm decides")
    _listen_arguments(lp)
    lp.set_defaults(func=_listen)
    vp = add("view", help="write a session inspector page (one self-contained HTML file): "
                        "the conversation on one time axis, the chart's states, step and "
                        "decision records at a cursor")
    vp.add_argument("session", help="a WAV file (run as listen runs it), a trace (replayed), "
                    "or a listen/replay output (JSON Lines) with its --trace")
    vp.add_argument("-o", "--output", metavar="PAGE.html",
                    help="the page to write (default: SESSION's name with .html, in the "
                         "current folder; none with --serve)")
    vp.add_argument("--serve", action="store_true",
                    help="serve the page on http://127.0.0.1:PORT/ until Ctrl-C (opens "
                         "nothing)")
    vp.add_argument("--port", type=_count, default=8000,
                    help="with --serve: the port (0: any free one)")
    vp.add_argument("--trace", metavar="TRACE.jsonl",
                    help="the trace of a listen/replay output given as SESSION (the page is "
                         "its replay, checked to give the output's lines)")
    vp.add_argument("--audio", choices=("auto", "on", "off"), default="auto",
                    help="put the audio in the page (8 kHz mu-law, 29 MB an hour): auto for "
                         "sessions up to 20 minutes")
    vp.add_argument("--profile", default=None,
                    help="the behaviour profile: default, livekit, or a profile file (a WAV: "
                         "default; a trace: the one its header names)")
    _run_arguments(vp)
    _profile_flags(vp)
    vp.set_defaults(func=_view)
    sp = add("score", help="score end-of-turn decisions against labelled sessions")
    sp.add_argument("sessions", nargs="+", help="WAV files or traces (or folders of them), "
                    "each with NAME.truth.json beside it (and NAME.words.json for a WAV)")
    sp.add_argument("--asr", choices=("none", "whisper"), default="none",
                    help="WAV sessions: transcribe with Whisper instead of the timed words")
    sp.add_argument("--no-detector", action="store_true",
                    help="stereo WAV sessions: no interruption detection")
    sp.add_argument("--reference", metavar="PYTHON",
                    help="also score the reference recogniser on the same traces: a Python "
                         "with livekit-agents 1.5.12 installed, which runs the reference "
                         "replayer (--reference-script)")
    sp.add_argument("--reference-script", metavar="FILE",
                    help="the reference replayer, replay_livekit.py of the conformance kit "
                         "(not part of turnfsm; default: $TURNFSM_REFERENCE_SCRIPT, else the "
                         "kit beside a source checkout)")
    sp.add_argument("--profile", action="append", default=None,
                    help="score this behaviour profile: default, livekit or a profile file, "
                         "whose option defaults apply to WAV sessions (repeat for several; "
                         "default: default)")
    sp.add_argument("--eou-model", choices=("rules", "smart-turn"), default="rules",
                    help="WAV sessions: the end-of-turn model. rules: the profile's own (the "
                         "default profile's built-in text rules); smart-turn: the text rules "
                         "fused with Smart Turn v3.2 hearing the user's turn (extra "
                         "smart-turn: onnxruntime, and the model file of the pipecat-ai "
                         "wheel)")
    sp.add_argument("--json", action="store_true", help="print the figures as JSON")
    sp.add_argument("--details", action="store_true", help="name each cut-in, orphan, ...")
    sp.add_argument("--by", action="append", choices=("kind", "language", "synthesis"),
                    default=None,
                    help="also add the figures up per dialogue kind, language or synthesis "
                         "(the truth file's 'kind', 'language' and 'synthesis': parts or "
                         "ssml; repeat for several)")
    sp.set_defaults(func=_score)
    tp = add("tune", help="replay labelled sessions under a grid of settings, score "
                        "each, and recommend one (see docs/tuning.md)")
    tp.add_argument("sessions", nargs="+", help="labelled sessions as `score` reads them "
                    "(WAV files or traces, or folders of them)")
    tp.add_argument("--grid", required=True, help="the settings to try (YAML)")
    tp.add_argument("--max-latency", type=float, default=1.0, metavar="SECONDS",
                    help="the recommended setting's median latency is at most this")
    tp.add_argument("-o", "--output", action="append", metavar="FILE",
                    help="write the results: .csv, or .parquet with pyarrow (repeatable)")
    tp.add_argument("--plot", metavar="PICTURE.png",
                    help="draw the Pareto front (.png, .svg or .pdf; extra `plot`)")
    tp.add_argument("--jobs", "-j", type=int, default=None,
                    help="worker processes (default: every core; 1: this process)")
    tp.add_argument("--cluster", metavar="ADDRESS",
                    help="run on a Dask cluster instead: tls://SCHEDULER:8786 with the --tls "
                         "options (tcp:// only on a network where everyone who can reach the "
                         "scheduler may run code on every worker: see docs/tuning.md)")
    tp.add_argument("--tls-ca-file", metavar="PEM",
                    help="with --cluster tls://: the certificate authority the scheduler's "
                         "and workers' certificates must be signed by")
    tp.add_argument("--tls-cert", metavar="PEM",
                    help="with --cluster tls://: this client's certificate (may hold the key)")
    tp.add_argument("--tls-key", metavar="PEM",
                    help="with --cluster tls://: this client's private key (if not in --tls-cert)")
    tp.add_argument("-q", "--quiet", action="store_true",
                    help="no table and no progress bar: the front and the recommendation")
    tp.set_defaults(func=_tune)
    ck = add("check", help="validate a state chart")
    ck.add_argument("chart", nargs="?", help="chart file (default: the built-in states.yaml)")
    ck.add_argument("--profile", help="check a behaviour profile (a name or a profile file): "
                    "its overlay composed with its base")
    ck.set_defaults(func=_check)
    dg = add("diagram", help="draw the state chart (Mermaid, Graphviz DOT, SVG, PNG)",
                        description="Draw the state chart. `turnfsm diagram --all -o "
                                    "diagrams/` rewrites the committed diagrams.")
    dg.add_argument("--chart", help="chart file (default: the default profile's chart)")
    dg.add_argument("--profile", help="draw this behaviour profile's chart (default, livekit = "
                    "states.yaml as written, or a profile file)")
    dg.add_argument("--no-engine-check", action="store_true",
                    help="check only the chart's own structure, not that the engine can run "
                         "it (registry names, required regions and events): for drafts")
    dg.add_argument("--format", choices=("mermaid", "dot", "svg", "png"),
                    help="output format (default: mermaid; svg and png need Graphviz's dot)")
    dg.add_argument("--region", help="draw only this region")
    dg.add_argument("--all", action="store_true",
                    help="write chart.{mmd,dot,svg} and regions/<region>.{mmd,dot,svg} "
                         "under -o DIR (without --chart/--profile: states.yaml there and "
                         "each other profile under DIR/profiles/NAME/)")
    dg.add_argument("-o", "--output", help="output file (folder with --all); default stdout")
    dg.set_defaults(func=_diagram)
    return ap


def main(argv: list[str] | None = None) -> int:
    args_given = sys.argv[1:] if argv is None else argv
    command = args_given[0] if args_given and not args_given[0].startswith("-") else None
    args = build_parser(command).parse_args(argv)
    try:
        return int(args.func(args))
    except BrokenPipeError:  # the reader went away (`| head`): stop quietly
        sys.stderr.close()
        return 1


def run() -> NoReturn:
    """``turnfsm``: :func:`main`, then exit with the live objects frozen out of the cyclic
    collector (its passes at exit walked some 24,000 objects to free nothing: 14 ms)."""
    rc = main()
    gc.freeze()
    sys.exit(rc)


if __name__ == "__main__":
    run()
