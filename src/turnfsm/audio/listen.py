"""``turnfsm listen``: real audio through a VAD, a recogniser and a Session.

A WAV file (channel 0 the user; channel 1, if any, the agent) becomes the inputs a voice
agent would see: the user's VAD events every 32 ms, transcripts (timed words or Whisper),
the agent's speech start and end (from its channel), and, with interruption detection on,
the detector's verdict on each overlap. Those inputs are a trace in the conformance format
(``--out-trace``); they are fed through a :class:`~turnfsm.runtime.Session` in virtual time,
so ``turnfsm replay`` of the written trace reproduces the outputs exactly.

The overlap rule (a stand-in for an interruption detector, documented so runs can be
explained): user speech that starts while the agent speaks is an interruption if it goes on
for ``interruption_after`` seconds (0.6 s), or until the agent stops (it yielded to the
user), whichever comes first; if it ends before that, it is a backchannel (verdict "not an
interruption" at its end).
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import attrs

from ..options import EngineOptions, profile_options
from ..replay import Trace, TraceInput
from ..replay.trace import parse_config
from .transcripts import Whisper, Word, shared_whisper, whisper_lines, words_lines
from .vad import (
    Segment,
    SileroVad,
    VadModel,
    VadOptions,
    VadStream,
    close_segments,
    segments,
    vad_lines,
)
from .wav import Audio, WavStream, to_int16

if TYPE_CHECKING:
    import numpy as np

ORDER = {"audio": 0, "agent.speech_started": 1, "vad.start_of_speech": 2,
         "vad.inference_done": 3, "stt.start_of_speech": 4, "stt.interim": 5,
         "stt.preflight": 5, "stt.final": 6, "stt.end_of_speech": 7, "overlap": 8,
         "vad.end_of_speech": 9, "agent.speech_ended": 10}


#: A 16 kHz 16-bit file of at least this many channel-seconds goes through numpy all the
#: same: its import (about 0.1 s of CPU) is repaid by the windows' floats, about 5 µs a
#: window from numpy against 13-18 µs from the file's samples in Python (measured on a
#: 10-minute stereo recording: 0.4 s less; a window equal to the one before, digital
#: silence, costs nothing either way, so half as much on the dialogues looped).
NUMPY_AFTER = 1200.0


@attrs.frozen(kw_only=True)
class ListenOptions:
    """What ``listen`` runs: engine options, the VAD, transcripts and the overlap rule."""

    engine: EngineOptions = attrs.field(factory=EngineOptions)
    profile: str = "default"  # the behaviour profile the trace names (its header's ``profile``)
    vad: VadOptions = attrs.field(factory=VadOptions)
    asr: str = "none"  # none | whisper
    asr_latency: float | str = 0.3  # seconds, or "measured"
    interims: bool = True
    interruption_after: float = 0.6
    model: dict[str, Any] | None = None  # the trace header's turn_detector (scripted model)
    #: the user's language (a tag such as ``es``) for every transcript; None: the words
    #: sidecar's, else English
    language: str | None = None


def _header(path: str, o: ListenOptions) -> dict[str, Any]:
    e = o.engine
    ep = e.endpointing
    h: dict[str, Any] = {
        "kind": "config", "comment": f"turnfsm listen {path}", "profile": o.profile,
        "turn_detection": e.turn_detection, "vad": e.vad, "stt": e.stt,
        "interruption_detection": e.interruption_detection,
        "endpointing": {"mode": ep.mode, "min_delay": ep.min_delay, "max_delay": ep.max_delay,
                        "alpha": ep.alpha},
        "backchannel_boundary": (list(e.backchannel_boundary)
                                 if e.backchannel_boundary is not None else None),
        "user_turn_limit": {"max_words": e.user_turn_limit.max_words,
                            "max_duration": e.user_turn_limit.max_duration},
    }
    if o.model is not None:
        h["turn_detector"] = o.model
    if o.profile != "livekit":
        for k in profile_options():  # turnfsm's own header keys
            h[k] = getattr(e, k)
    return h


#: An agent word belongs to the speech segment its middle lies in, or within this of it (s).
AGENT_WORD_REACH = 0.3


def _agent_lines(agent_segments: list[Any], agent_words: list[Word] | None = None
                 ) -> list[dict[str, Any]]:
    """The agent's speech start and end, when its audio starts and stops (as its player
    reports them); with the agent's timed words, each start carries what the agent says in
    that stretch of speech (``text``: the host knows its reply before it plays it)."""
    import bisect
    out: list[dict[str, Any]] = []
    # the words' middles in order, with their places (a segment's words in spoken order)
    mids = sorted(((w.start + w.end) / 2, k) for k, w in enumerate(agent_words or ()))
    keys = [m for m, _k in mids]
    for s in agent_segments:
        start: dict[str, Any] = {"t": round(s.start, 6), "kind": "agent.speech_started"}
        lo = bisect.bisect_left(keys, s.start - AGENT_WORD_REACH)
        hi = bisect.bisect_right(keys, s.end + AGENT_WORD_REACH)
        if agent_words and hi > lo:
            start["text"] = " ".join(agent_words[k].word
                                     for k in sorted(k for _m, k in mids[lo:hi]))
        out.append(start)
        out.append({"t": round(s.end, 6), "kind": "agent.speech_ended"})
    return out


def _overlap_lines(user_segments: list[Any], agent_segments: list[Any],
                   after: float) -> list[dict[str, Any]]:
    """The overlap rule's verdicts (see the module's docstring)."""
    out: list[dict[str, Any]] = []
    for u in user_segments:
        agent = next((a for a in agent_segments if a.start <= u.start < a.end), None)
        if agent is None:
            continue
        # judged after ``after`` seconds, or when the agent stops first (it yielded)
        decide = min(u.start + after, agent.end)
        if u.end > decide:
            out.append({"t": round(decide, 6), "kind": "overlap", "is_interruption": True,
                        "overlap_started_at": round(u.start, 6), "probability": 0.9,
                        "detected_at": round(decide, 6)})
        else:
            at = round(min(u.end, agent.end) + 0.05, 6)
            out.append({"t": at, "kind": "overlap", "is_interruption": False,
                        "overlap_started_at": round(u.start, 6), "probability": 0.1,
                        "detected_at": at})
    return out


def build_trace(audio: Audio, options: ListenOptions | None = None, *,
                words: list[Word] | None = None, vad: VadModel | None = None,
                progress: Callable[[str, float], None] | None = None,
                whisper: Whisper | None = None,
                agent_words: list[Word] | None = None) -> Trace:
    """The trace a voice agent would have seen for this audio (in memory; one VAD model
    reads the user's channel, then the agent's; ``agent_words``: the agent's timed words,
    what it says, on its speech starts)."""
    o = options or ListenOptions()
    own: SileroVad | None = None
    if vad is None:
        vad = own = _model()
    model = vad

    def step(what: str) -> Callable[[float], None] | None:
        return None if progress is None else (lambda f: progress(what, f))
    user = list(vad_lines(audio.int16(0), model, o.vad, progress=step("user VAD")))
    agent_segs = None
    if audio.channels > 1:  # the agent's speech segments alone are used: no window lines
        agent_segs = segments(list(vad_lines(audio.int16(1), model, o.vad,
                                             progress=step("agent VAD"), window_lines=False)))
    if own is not None:
        _IDLE.append(own)
    return _assemble(audio.path, o, user, agent_segs, words,
                     (lambda: audio.samples[0]), step("Whisper"), whisper, agent_words)


def stream_trace(stream: WavStream, options: ListenOptions | None = None, *,
                 words: list[Word] | None = None,
                 progress: Callable[[str, float], None] | None = None,
                 keep_audio: bool = False, whisper: Whisper | None = None,
                 agent_words: list[Word] | None = None) -> tuple[Trace, Audio | None]:
    """The trace of :func:`build_trace` for audio read in blocks: both channels go through
    the VAD as the blocks come (a model each), so memory does not grow with the audio's
    length (the user's samples are kept only for Whisper, all samples for ``keep_audio``);
    the same trace as :func:`build_trace` on the same samples."""
    o = options or ListenOptions()
    # the agent's channel gives its speech segments alone: no line per window
    models = [_model() for _ in range(stream.channels)]
    vads = [VadStream(m, o.vad, window_lines=c == 0) for c, m in enumerate(models)]
    user: list[dict[str, Any]] = []
    agent: list[Segment] = []
    agent_open: float | None = None
    total = stream.duration
    need_samples = keep_audio or (o.asr == "whisper" and words is None)
    if stream.pcm16 and not need_samples and (
            stream.duration is None or stream.duration * stream.channels < NUMPY_AFTER):
        # 16 kHz 16-bit PCM and no samples to keep: the file's own samples, no numpy (the
        # same windows, so the same lines, as the float path below)
        for pcm in stream.pcm16_blocks():
            user += vads[0].push_pcm16(pcm[0])
            if len(vads) > 1:
                agent_open = close_segments(vads[1].push_pcm16(pcm[1]), agent, agent_open)
            if progress is not None and total:
                progress("VAD", min(1.0, vads[0].time / total))
        user += vads[0].close()
        if len(vads) > 1:
            close_segments(vads[1].close(), agent, agent_open)
        _IDLE.extend(models)
        trace = _assemble(stream.path, o, user, agent if len(vads) > 1 else None, words,
                          _no_samples, None, whisper, agent_words)
        return trace, None
    import numpy as np
    keep: list[np.ndarray] = []
    for block in stream.blocks():
        user += vads[0].push(to_int16(block[0]))
        if len(vads) > 1:
            agent_open = close_segments(vads[1].push(to_int16(block[1])), agent, agent_open)
        if keep_audio:
            keep.append(block)
        elif need_samples:
            keep.append(block[:1])
        if progress is not None and total:
            progress("VAD", min(1.0, vads[0].time / total))
    user += vads[0].close()
    if len(vads) > 1:
        close_segments(vads[1].close(), agent, agent_open)
    _IDLE.extend(models)
    samples = (np.concatenate(keep, axis=1) if keep else
               np.zeros((stream.channels if keep_audio else 1, 0), np.float32))
    audio = Audio(stream.path, samples, stream.source_rate) if keep_audio else None
    trace = _assemble(stream.path, o, user, agent if len(vads) > 1 else None, words,
                      (lambda: samples[0]),
                      None if progress is None else (lambda f: progress("Whisper", f)),
                      whisper, agent_words)
    return trace, audio


#: VAD models done with (a process that reads several files loads one per channel once:
#: loading costs about 0.7 ms of CPU, a reset nothing; a stream resets the model it is
#: given, so a reused model hears what a new one would). At most one per channel of the
#: widest file is kept, about 2.5 MB each.
_IDLE: list[SileroVad] = []


def _model() -> SileroVad:
    """A VAD model: one done with, else a new one."""
    try:
        return _IDLE.pop()
    except IndexError:
        return SileroVad()


def _no_samples() -> np.ndarray:
    raise AssertionError("the user's samples were not kept (no Whisper asked for)")


def _assemble(path: str, o: ListenOptions, user: list[dict[str, Any]],
              agent_segs: list[Segment] | None, words: list[Word] | None,
              user_samples: Callable[[], np.ndarray],
              progress: Callable[[float], None] | None,
              whisper: Whisper | None, agent_words: list[Word] | None = None) -> Trace:
    """The trace from the user's VAD lines and the agent's speech segments."""
    lines: list[dict[str, Any]] = [{"t": 0.0, "kind": "audio", "duration": 0.0}]
    lines += user
    user_segs = segments(user)
    if words is not None:
        lines += words_lines(words, user_segs, latency=float(o.asr_latency)
                             if o.asr_latency != "measured" else 0.3,
                             interim_every=0.5 if o.interims else None,
                             language=o.language)
    elif o.asr == "whisper":
        lines += whisper_lines(user_samples(), user_segs, whisper or shared_whisper(),
                               latency=o.asr_latency, padding=min(o.vad.prefix_padding, 0.3),
                               progress=progress)
    if agent_segs is not None:
        lines += _agent_lines(agent_segs, agent_words)
        if o.engine.interruption_detection:
            lines += _overlap_lines(user_segs, agent_segs, o.interruption_after)
    header = _header(path, o)

    def err(msg: str, field: str | None = None) -> Any:
        raise ValueError(f"listen header: {field}: {msg}")
    cfg = parse_config(header, err)
    return Trace(path, cfg, _inputs(lines))


def _inputs(lines: list[dict[str, Any]]) -> tuple[TraceInput, ...]:
    """The lines as trace inputs, in time order (equal times: :data:`ORDER`'s, then the
    order given), each one's ``t`` and ``kind`` taken out of its fields (the lines are
    changed)."""
    keyed = sorted((float(x["t"]), ORDER.get(x["kind"], 5), k, x) for k, x in enumerate(lines))
    out = []
    for line, (t, _order, _k, x) in enumerate(keyed, 2):
        del x["t"]
        out.append(TraceInput(t, x.pop("kind"), line, x))
    return tuple(out)


def with_options(trace: Trace, options: ListenOptions) -> Trace:
    """The same inputs under another header: ``options``' engine options and profile (the
    inputs must not depend on them: same VAD, transcripts and interruption detection)."""
    def err(msg: str, field: str | None = None) -> Any:
        raise ValueError(f"listen header: {field}: {msg}")
    return attrs.evolve(trace, config=parse_config(_header(trace.path, options), err))


def trace_lines(trace: Trace, *, reference: bool = False) -> str:
    """The trace as JSON Lines (header first), ready for ``turnfsm replay`` (``reference``:
    without the header and input fields only turnfsm reads, for the reference's replayer,
    which refuses unknown fields; ``turnfsm replay`` then runs it with the livekit
    profile)."""
    import json

    from ..replay.trace import TURNFSM_FIELDS, TURNFSM_INPUT_FIELDS, TURNFSM_KIND_FIELDS

    def dump(obj: dict[str, Any]) -> str:
        return json.dumps(obj, separators=(",", ":")) + "\n"
    config = {k: v for k, v in trace.config.items() if not (reference and k in TURNFSM_FIELDS)}
    head = dump({"kind": "config", **config})
    if not reference:
        return head + "".join(dump({"t": i.t, "kind": i.kind, **i.fields})
                              for i in trace.inputs)
    return head + "".join(
        dump({"t": i.t, "kind": i.kind,
              **{k: v for k, v in i.fields.items() if k not in TURNFSM_INPUT_FIELDS
                 and k not in TURNFSM_KIND_FIELDS.get(i.kind, ())}})
        for i in trace.inputs)


class Progress:
    """A one-line progress bar on stderr (only for files longer than a few seconds)."""

    def __init__(self, enabled: bool) -> None:
        self.enabled = enabled and sys.stderr.isatty()
        self.last = ""

    def __call__(self, what: str, fraction: float) -> None:
        if not self.enabled:
            return
        n = int(fraction * 30)
        line = f"\r{what:10s} [{'#' * n}{'.' * (30 - n)}] {fraction * 100:3.0f}%"
        if line != self.last:
            sys.stderr.write(line)
            sys.stderr.flush()
            self.last = line

    def done(self) -> None:
        if self.enabled and self.last:
            sys.stderr.write("\r" + " " * len(self.last) + "\r")
            sys.stderr.flush()
