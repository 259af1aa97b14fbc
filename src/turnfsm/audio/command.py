"""The ``turnfsm listen`` command (the CLI parses, this runs)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from ..core.profiles import get_profile
from ..errors import TurnFsmError
from ..options import EndpointingOptions
from ..replay.trace import TURN_DETECTOR_DEFAULTS, dumps
from .listen import ListenOptions, Progress, stream_trace, trace_lines
from .transcripts import read_words
from .vad import VadOptions
from .wav import WavStream


def listen_command(args: argparse.Namespace) -> int:
    """Run ``listen``; return the exit code."""
    try:
        return _listen(args)
    except TurnFsmError as e:
        print(f"turnfsm listen: {e}", file=sys.stderr)
        return 2


def _listen(args: argparse.Namespace) -> int:
    from ..core import read_chart
    from ..replay.timeline import TimelineObserver

    if args.wav == "-":  # live: a WAV stream or raw 16 kHz 16-bit mono PCM
        stream = WavStream(sys.stdin.buffer, "<stdin>", raw=None)
    else:
        stream = WavStream(args.wav)
    latency: float | str = "measured" if args.asr_latency == "measured" else float(
        args.asr_latency)
    detection = (stream.channels > 1 if args.interruption_detection == "auto"
                 else args.interruption_detection == "on")
    transcripts = bool(args.words) or args.asr != "none"
    profile = get_profile(args.profile)
    changes: dict[str, Any] = {
        "turn_detection": args.turn_detection,
        "stt": transcripts,  # without transcripts the VAD alone ends turns (empty transcripts)
        "endpointing": EndpointingOptions(mode=args.endpointing, min_delay=args.min_delay,
                                          max_delay=args.max_delay),
        "interruption_detection": detection}
    if args.transcript_timeout is not None:
        changes["transcript_timeout"] = args.transcript_timeout
    if args.backchannel_max_words is not None:
        changes["backchannel_max_words"] = args.backchannel_max_words
    engine = profile.options(changes)
    vad = VadOptions(activation_threshold=args.vad_threshold,
                     deactivation_threshold=max(0.01, args.vad_threshold - 0.15),
                     min_silence_duration=args.min_silence)
    opts = ListenOptions(engine=engine, vad=vad, asr=args.asr, asr_latency=latency,
                         interims=not args.no_interims, profile=profile.name)
    chart = read_chart(args.chart) if args.chart else None
    words = read_words(args.words) if args.words else None
    if args.wav == "-":
        from .live import listen_live
        return listen_live(args, stream, opts, profile, chart)
    bar = Progress((stream.duration or 0.0) > 5.0)
    trace, audio = stream_trace(stream, opts, words=words, progress=bar,
                                keep_audio=bool(args.plot))
    bar.done()
    duration = stream.duration if stream.duration is not None else (
        trace.inputs[-1].t if trace.inputs else 0.0)
    head = (f"# {stream.path}: {duration:.2f} s, "
            f"{'stereo (user, agent)' if stream.channels > 1 else 'mono (user)'}, "
            f"transcripts: {'words' if words is not None else args.asr}, "
            f"profile: {profile.name}\n#   time   line  input / -> output\n")
    timeline = TimelineObserver(trace)
    if args.realtime and not args.quiet:  # each line printed when it happens
        from .live import Printing
        timeline = Printing(trace)
        sys.stdout.write(head)
        sys.stdout.flush()
    records: list[Any] = []
    def observe(rec: Any) -> None:
        timeline(rec)
        records.append(rec)
    if not args.realtime and args.turn_detection != "model":
        # the direct replay (the same outputs as a Session's; no event loop to start)
        from ..replay.replay import Replay
        direct = Replay(trace, diagnostics=args.diagnostics, chart=chart, profile=profile,
                        observer=observe if args.plot else timeline)
        lines = direct.run()
        return _finish(args, stream, trace, lines, records, audio, words, profile, head,
                       timeline)
    from ..runtime.model import RuleBasedModel
    from ..runtime.replay import RuntimeReplay
    replay = RuntimeReplay(trace, diagnostics=args.diagnostics, chart=chart,
                           observers=(timeline, records.append), profile=profile)
    if args.turn_detection == "model":
        rule = RuleBasedModel()
        replay.model_fn = rule.probability
        replay.model.opts["unlikely_threshold"] = rule.threshold
    lines = _realtime(replay, duration) if args.realtime else replay.run()
    if replay.model_answers:  # the trace reruns the model's answers, in order
        import attrs
        trace = attrs.evolve(trace, config={**trace.config, "turn_detector": {
            **TURN_DETECTOR_DEFAULTS, **trace.config["turn_detector"],
            "probabilities": list(replay.model_answers)}})
    return _finish(args, stream, trace, lines, records, audio, words, profile, head, timeline)


def _finish(args: argparse.Namespace, stream: WavStream, trace: Any,
            lines: list[dict[str, Any]], records: list[Any], audio: Any, words: Any,
            profile: Any, head: str, timeline: Any) -> int:
    """Write what was asked for and print the timeline."""
    if args.output:
        Path(args.output).write_text(dumps(lines), encoding="utf-8")
    if args.out_trace:
        Path(args.out_trace).write_text(trace_lines(trace), encoding="utf-8")
    if args.plot:
        from .plot import plot_session
        assert audio is not None
        plot_session(audio, trace, lines, records, args.plot)
    if not args.quiet:
        if not args.realtime:  # (in real time the lines were printed as they happened)
            sys.stdout.write(head)
            for t, who, what in timeline.rows:
                if what.startswith("vad.inference_done"):
                    continue
                sys.stdout.write(f"{t:8.3f}s {who} {what}\n")
        eots = [x for x in lines if x["kind"] == "on_end_of_turn"]
        sys.stdout.write(f"# {len(eots)} end(s) of turn\n")
    return 0


def _realtime(replay: Any, duration: float) -> list[dict[str, Any]]:
    """Run the replay's session on the wall clock (inputs pushed as their times come); the
    run ends when the audio has played and no decision is pending."""
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
