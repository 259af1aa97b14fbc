"""``turnfsm listen -``: live audio from standard input (a WAV stream, or raw 16 kHz 16-bit
mono PCM), decided as it arrives::

    sox -d -t wav - | turnfsm listen -
    arecord -f S16_LE -r 16000 -c 1 | turnfsm listen -
    ffmpeg -f pulse -i default -ac 1 -ar 16000 -f s16le - | turnfsm listen -

The audio is read one VAD window (32 ms) at a time; the user's VAD lines go to the engine
at once, in the order a file's trace has them, and the session's time is the audio's: a
timer due between two windows fires when the next window arrives (within 32 ms). Each
timeline line is printed when it happens. When the stream ends, decisions still pending are
waited for on the wall clock (when the audio came at its own pace; a file piped faster is
finished at once), then the run ends.

What a live stream cannot know in advance (it has no future to look at), it says when it
knows it: the agent's speech (a stereo stream's channel 1) starts and ends at its VAD's
back-dated times, or at the time the audio is read when that has passed; a Whisper final
comes when its segment closes (``--asr-latency`` after the segment's end, or when the
segment's end is known if that is later); the overlap rule judges an overlap as soon as
it can (the user still speaking ``interruption_after`` seconds after the onset, or the agent
stopping first, is an interruption; the user stopping first, a backchannel). Timed words
(``--words``) need a file's timeline and are refused here.
"""

from __future__ import annotations

import argparse
import heapq
import logging
import sys
import time
from collections.abc import Iterator
from typing import Any

import numpy as np

from ..chart import Chart
from ..core import StepRecord
from ..core.profiles import Profile
from ..errors import TurnFsmError
from ..outfiles import write_text
from ..replay import Trace, TraceInput
from ..replay.replay import Replay, ScriptedModel
from ..replay.timeline import TimelineObserver
from ..replay.trace import TURN_DETECTOR_DEFAULTS, dumps, parse_config
from .listen import ORDER, ListenOptions, _header, trace_lines
from .transcripts import Whisper, shared_whisper
from .vad import SileroVad, VadStream
from .wav import RATE, WavStream, to_int16

STEREO_LAG = 1.5  # seconds a stereo stream is decided behind its audio


class LiveInputs:
    """The inputs of a live stream, made as its audio arrives (an iterable of
    :class:`TraceInput` with the trace's ``config`` and ``path``)."""

    def __init__(self, stream: WavStream, o: ListenOptions,
                 whisper: Whisper | None = None, *, keep: bool = False) -> None:
        self.stream = stream
        self.o = o
        self.path = stream.path
        self.whisper = whisper

        def err(msg: str, field: str | None = None) -> Any:
            raise TurnFsmError(f"listen header: {field}: {msg}")
        self.config = parse_config(_header(stream.path, o), err)
        self.keep = keep  # every input kept, in order (for --out-trace)
        self.made: list[TraceInput] = []
        self.current: TraceInput | None = None  # the input being applied
        self.ended_at: float | None = None  # the audio's end (None while it streams)
        self.started = time.monotonic()
        self._line = 1
        self._last = 0.0
        self._heap: list[tuple[float, int, int, int, str, dict[str, Any]]] = []
        # a stereo stream is decided LAG seconds behind its audio: the agent's VAD places its
        # speech (back-dated onsets and ends) within that time
        self.lag = STEREO_LAG if stream.channels > 1 else 0.0
        self._seq = 0
        # speech now: the user's and the agent's open segments' onsets; the agent's last
        # closed segment; the overlap being judged (user onset, agent end or None)
        self._user_start: float | None = None
        self._agent_start: float | None = None
        self._agent_last: tuple[float, float] | None = None
        self._judging: tuple[float, float | None] | None = None
        self._kept: list[np.ndarray] = []  # the user's recent audio (for Whisper)
        self._kept_from = 0  # its first sample
        self.hear: Any = None  # given the user's audio as it comes (an audio model's ears)

    # -- the lines ------------------------------------------------------------------------

    def _later(self, t: float, kind: str, group: int = 1, **fields: Any) -> None:
        """A line, held until the audio's time (less the lag) reaches it; equal times go in
        the order of a file's trace (by kind, then the user's VAD, transcripts, the agent,
        verdicts)."""
        self._seq += 1
        heapq.heappush(self._heap, (round(t, 6), ORDER.get(kind, 5), group, self._seq, kind,
                                    fields))

    def _emit(self, t: float, kind: str, fields: dict[str, Any]) -> TraceInput:
        t = max(t, self._last)  # known only now: it comes now
        self._last = t
        if kind == "overlap":
            fields["detected_at"] = t
        self._line += 1
        i = self.current = TraceInput(float(t), kind, self._line, fields)
        if self.keep:
            self.made.append(i)
        return i

    def _due(self, t: float) -> Iterator[TraceInput]:
        heap = self._heap
        while heap and heap[0][0] <= t:
            ht, _o, _g, _s, kind, fields = heapq.heappop(heap)
            yield self._emit(ht, kind, fields)

    # -- the channels --------------------------------------------------------------------

    def _user(self, x: dict[str, Any], now: float) -> None:
        o = self.o
        if x["kind"] == "vad.start_of_speech":
            self._user_start = x["t"] - x["speech_duration"] - x["inference_duration"]
            start = self._user_start
            speaking, agent_end = self._agent_at(start)
            if speaking and o.engine.interruption_detection:
                self._judging = (start, agent_end)
        elif x["kind"] == "vad.end_of_speech" and self._user_start is not None:
            start = self._user_start
            end = x["t"] - x["silence_duration"] - x["inference_duration"]
            self._user_start = None
            if self._judging is not None:
                u0, a_end = self._judging
                self._judging = None
                decide = min(u0 + o.interruption_after, a_end if a_end is not None else 1e18)
                if end > decide:
                    self._verdict(u0, decide, True)
                else:
                    at = min(end, a_end if a_end is not None else end) + 0.05
                    self._verdict(u0, at, False)
            if self.whisper is not None:
                self._transcribe(start, end, now)

    def _agent_at(self, t: float) -> tuple[bool, float | None]:
        """Whether the agent speaks at ``t``, and when that speech ends (None: it goes on)."""
        if self._agent_start is not None and self._agent_start <= t:
            return True, None
        last = self._agent_last
        if last is not None and last[0] <= t < last[1]:
            return True, last[1]
        return False, None

    def _agent(self, x: dict[str, Any]) -> None:
        if x["kind"] == "vad.start_of_speech":
            start = round(x["t"] - x["speech_duration"] - x["inference_duration"], 6)
            self._agent_start = start
            self._later(start, "agent.speech_started", 2)
        elif x["kind"] == "vad.end_of_speech" and self._agent_start is not None:
            end = round(x["t"] - x["silence_duration"] - x["inference_duration"], 6)
            self._agent_last = (self._agent_start, end)
            self._agent_start = None
            self._later(end, "agent.speech_ended", 2)
            if self._judging is not None and self._judging[1] is None:
                # the agent had stopped before the user started: no overlap after all
                self._judging = None if end <= self._judging[0] else (self._judging[0], end)

    def _verdict(self, start: float, at: float, interruption: bool) -> None:
        self._later(at, "overlap", 3, is_interruption=interruption,
                    overlap_started_at=round(start, 6), probability=0.9 if interruption else 0.1)

    def _check_overlap(self, now: float) -> None:
        """An overlap still going on is an interruption once its time has come."""
        if self._judging is None or self._user_start is None:
            return
        u0, a_end = self._judging
        decide = min(u0 + self.o.interruption_after, a_end if a_end is not None else 1e18)
        if now >= decide:
            self._judging = None
            self._verdict(u0, decide, True)

    def _transcribe(self, start: float, end: float, now: float) -> None:
        assert self.whisper is not None
        pad = min(self.o.vad.prefix_padding, 0.3)
        buf = np.concatenate(self._kept) if self._kept else np.zeros(0, np.float32)
        a = max(0, int((start - pad) * RATE) - self._kept_from)
        b = max(a, min(buf.size, int((end + pad) * RATE) - self._kept_from))
        t0 = time.perf_counter()
        # with its words' probabilities, as the file's path gives them (the rules do not
        # read a doubted trailing word)
        [(text, probs)] = self.whisper.transcribe_spans_words(buf, [(a, b)])
        took = time.perf_counter() - t0
        lat = self.o.asr_latency
        delay = took if lat == "measured" else float(lat)
        if text:
            extra: dict[str, Any] = {"word_confidences": list(probs)} if probs else {}
            self._later(max(end + delay, now), "stt.final", text=text, language="en",
                        confidence=0.9, start_time=round(start, 6), end_time=round(end, 6),
                        **extra)

    def _keep(self, block: np.ndarray, now: float) -> None:
        """The user's audio, kept back to the open segment's onset (or 2 s)."""
        self._kept.append(block)
        since = (self._user_start if self._user_start is not None else now) - 2.0
        while len(self._kept) > 1 and (self._kept_from + self._kept[0].size) / RATE < since:
            self._kept_from += self._kept.pop(0).size

    # -- the stream ----------------------------------------------------------------------

    def __iter__(self) -> Iterator[TraceInput]:
        o = self.o
        channels = self.stream.channels
        vads = [VadStream(SileroVad(), o.vad) for _ in range(channels)]
        yield self._emit(0.0, "audio", {"duration": 0.0})
        blocks = self.stream.blocks(512 / RATE)
        while True:
            block = next(blocks, None)
            last = block is None
            if last:
                user = vads[0].close()
                agent = vads[1].close() if channels > 1 else []
            else:
                assert block is not None
                user = vads[0].push(to_int16(block[0]))
                agent = vads[1].push(to_int16(block[1])) if channels > 1 else []
            now = vads[0].time
            if self.whisper is not None and block is not None:
                self._keep(block[0], now)
            if self.hear is not None and block is not None:
                self.hear(block[0])
            for x in agent:
                self._agent(x)
            for x in user:
                self._user(x, now)
                kind = x.pop("kind")
                self._later(x.pop("t"), kind, 0, **x)
            self._check_overlap(now - self.lag)
            yield from self._due(now - self.lag)
            if last:
                break
        yield from self._due(float("inf"))
        self.ended_at = self._last

    def trace(self) -> Trace:
        """What was heard, as a trace ``turnfsm replay`` reruns."""
        return Trace(self.path, self.config, tuple(self.made))


class _LiveReplay(Replay):
    """The direct replay over a live stream: after the audio ends, pending decisions are
    waited for on the wall clock (when the audio came in real time); a live end-of-turn
    model (``--turn-detection model``) answers from the transcript."""

    def __init__(self, inputs: LiveInputs, *, model_fn: Any = None,
                 threshold: float | None = None, **kw: Any) -> None:
        super().__init__(inputs, **kw)  # type: ignore[arg-type]
        self.inputs = inputs
        self.model_fn = model_fn
        self.threshold = threshold  # the model's unlikely threshold
        self.model_answers: list[float] = []
        self.model_failed: list[int] = []  # the calls it failed (the trace's fail_calls)
        self._req: Any = None  # the model request being answered
        if model_fn is not None:
            self.model = _RuleScript(self)

    def answer_model(self, req: Any) -> None:
        self._req = req
        super().answer_model(req)

    def run_timers(self, until: float) -> None:
        live = self.inputs
        if live.ended_at is not None and self.scheduler is not None:
            end = live.ended_at
            paced = time.monotonic() - live.started >= 0.5 * end
            while paced:
                d = self.scheduler.next_deadline()
                if d is None or d > min(until, end + 30.0):
                    break
                wait = live.started + d - time.monotonic()
                if wait > 0:
                    time.sleep(wait)
                super().run_timers(d)
        super().run_timers(until)


class _RuleScript(ScriptedModel):
    """The scripted model's place taken by a live model: the built-in rule-based one, or
    the text rules fused with Smart Turn (``--eou-model smart-turn``), answering the
    engine's request at once."""

    def __init__(self, replay: _LiveReplay) -> None:
        super().__init__({**TURN_DETECTOR_DEFAULTS, **replay.cfg["turn_detector"]})
        self.replay = replay
        self.opts["unlikely_threshold"] = replay.threshold

    def predict(self) -> tuple[int, float, bool]:
        from ..runtime.replay import live_answer
        self.calls += 1
        p, error = live_answer(self.replay, self.replay.model_fn, self.replay._req, self.calls)
        if error is not None:
            logging.getLogger(__name__).warning(
                "the end-of-turn model failed on call %d (%s: %s): the turn is decided "
                "without it", self.calls, type(error).__name__, error)
        return self.calls, p, error is not None


class _Both:
    """Two step observers as one (the engine takes one per replay)."""

    def __init__(self, first: Any, second: Any) -> None:
        self.first, self.second = first, second

    def __call__(self, rec: StepRecord) -> None:
        self.first(rec)
        self.second(rec)


class _Discard:
    """Output lines nobody asked for (no ``-o``): a live run keeps nothing but the count of
    its ends of turn."""

    def __init__(self) -> None:
        self.ends = 0

    def write(self, s: str) -> None:
        """Drop the line (count it if it ends a turn)."""
        if '"kind": "on_end_of_turn"' in s:
            self.ends += 1


class Printing(TimelineObserver):
    """Timeline rows printed as they are made (of a trace, or of a live stream's inputs as
    they come)."""

    def __init__(self, trace: Trace, inputs: LiveInputs | None = None,
                 diagnostics: bool = False) -> None:
        super().__init__(trace, diagnostics)
        self.live = inputs

    def __call__(self, rec: StepRecord) -> None:
        e = rec.input
        i = self.live.current if self.live is not None else None
        if e is not None and i is not None and e.ref == i.line:
            self._inputs = {i.line: i}
        n = len(self.rows)
        super().__call__(rec)
        for row in self.rows[n:]:
            if not row[2].startswith("vad.inference_done"):
                sys.stdout.write(self.format_row(row))
        if len(self.rows) > n:
            sys.stdout.flush()
        self.rows.clear()  # printed: nothing is kept


def listen_live(args: argparse.Namespace, stream: WavStream, opts: ListenOptions,
                profile: Profile, chart: Chart | None) -> int:
    """``listen -``: decide on the audio of standard input as it arrives."""
    if args.words:
        raise TurnFsmError("--words needs a file's timeline; a live stream takes "
                           "--asr none or --asr whisper")
    if args.plot:
        raise TurnFsmError("--plot needs a file; use --out-trace and listen to the file")
    whisper = shared_whisper() if opts.asr == "whisper" else None
    live = LiveInputs(stream, opts, whisper, keep=bool(args.out_trace))
    empty = Trace(live.path, live.config, ())
    timeline = Printing(empty, live, args.diagnostics)
    model_fn: Any = None
    threshold: float | None = None
    observer: Any = timeline if not args.quiet else None
    if getattr(args, "eou_model", "rules") == "smart-turn":  # hearing the user's channel
        from .smart_turn import THRESHOLD, FusedModel, LiveTurnAudio, SmartTurn
        heard = LiveTurnAudio()
        live.hear = heard.hear
        model_fn = FusedModel(lambda ctx: heard.until(replay.now),
                              smart_turn=SmartTurn()).probability
        threshold = THRESHOLD
        observer = heard if args.quiet else _Both(heard, timeline)
    elif opts.engine.turn_detection == "model":
        from ..runtime.model import RuleBasedModel
        rule = RuleBasedModel()
        model_fn, threshold = rule.answer, rule.threshold
    discard = None if args.output else _Discard()
    replay = _LiveReplay(live, model_fn=model_fn, threshold=threshold,
                         diagnostics=args.diagnostics, chart=chart, observer=observer,
                         profile=profile, sink=discard)
    if not args.quiet:
        sys.stdout.write(f"# {live.path}: live, "
                         f"{'stereo (user, agent)' if stream.channels > 1 else 'mono (user)'}"
                         f" at {stream.source_rate} Hz, transcripts: {opts.asr}, "
                         f"profile: {profile.name}\n")
        sys.stdout.write(timeline.header)
        sys.stdout.flush()
    lines = replay.run()
    trace = live.trace()
    if model_fn is not None:  # the trace reruns the model: its answers and its threshold
        from ..runtime.replay import model_config
        trace = Trace(trace.path, model_config(trace.config, replay, threshold), trace.inputs)
    if args.output:
        write_text(args.output, dumps(lines), "-o")
    if args.out_trace:
        write_text(args.out_trace, trace_lines(trace, reference=args.reference_trace),
                   "--out-trace")
    if not args.quiet:
        ends = (discard.ends if discard is not None else
                sum(1 for x in lines if x["kind"] == "on_end_of_turn"))
        sys.stdout.write(f"# {ends} end(s) of turn in {live.ended_at or 0.0:.2f} s\n")
    return 0
