"""Replaying a trace through the engine in virtual time, with the host glue of the format.

The replayer is a thin shell around :class:`~turnfsm.core.Engine`: it applies each input
at its time (timers due at that instant fire first, through the host
:class:`~turnfsm.host.Scheduler`), answers the engine's requests (the scripted end-of-turn
model of the header, the host's end-of-turn answers), simulates the host reactions the
format specifies (interruption feedback, detector-error fallback, boundary callback) and
records every output as a line of the output format.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import IO, Any

import attrs

from .. import events as ev
from .. import outputs as out
from ..chart import Chart
from ..core import Engine, StepObserver, TimerKind
from ..core.engine import Backend
from ..core.profiles import Profile
from ..errors import ConfigError, InputError, TraceError
from ..host import Scheduler
from ..options import EngineOptions, UserTurnLimit, profile_options
from ..profile_cache import profile as get_profile
from .trace import (
    TRACE_PROFILE,
    Trace,
    TraceInput,
    TraceStream,
    dumps,
    output_line,
    output_text,
    read_trace,
)


def trace_profile(cfg: dict[str, Any], within: str | Path | None = None) -> Profile:
    """The profile a trace header names (``livekit`` when it names none); a profile file
    must lie in ``within`` (the trace's folder) or below."""
    return get_profile(cfg.get("profile") or TRACE_PROFILE, within=within)


def engine_options(cfg: dict[str, Any], within: str | Path | None = None) -> EngineOptions:
    """Engine options for a trace header (defaults already filled), over its profile's. A
    header that names a profile other than the format's sets only the options it gives: the
    profile's own option defaults hold for the others (a header read by :func:`parse_config`
    knows which fields it gave; any other mapping sets them all)."""
    profile = trace_profile(cfg, within)
    given = getattr(cfg, "given", None)
    if given is None or cfg.get("profile") in (None, TRACE_PROFILE):
        def keep(name: str) -> bool:
            return True
    else:
        def keep(name: str) -> bool:
            return name in given
    ep = cfg["endpointing"]
    changes: dict[str, Any] = {}
    endpointing = {k: ep[k] for k in ("mode", "min_delay", "max_delay", "alpha")
                   if keep("endpointing") or keep(f"endpointing.{k}")}
    if endpointing:
        changes["endpointing"] = endpointing
    for k in ("turn_detection", "backchannel_boundary", "vad", "stt",
              "interruption_detection"):
        if keep(k):
            changes[k] = cfg[k]
    if keep("user_turn_limit") or any(keep(f"user_turn_limit.{k}")
                                      for k in cfg["user_turn_limit"]):
        changes["user_turn_limit"] = UserTurnLimit.from_mapping(cfg["user_turn_limit"])
    if keep("glue.speech_feedback"):
        changes["speech_feedback"] = cfg["glue"]["speech_feedback"]
    for k in profile_options():  # turnfsm's own header keys
        if k in cfg:
            changes[k] = cfg[k]
    return profile.options(changes)


class ScriptedModel:
    """The header's scripted end-of-turn model."""

    def __init__(self, opts: dict[str, Any]) -> None:
        self.opts = opts
        self.calls = 0

    def supports(self, language: str | None) -> bool:
        langs = self.opts["languages"]
        return True if langs is None else language in langs

    def threshold(self, language: str | None) -> float | None:
        thr = self.opts["unlikely_threshold"]
        if isinstance(thr, dict):
            if language is not None and language in thr:
                return thr[language]  # type: ignore[no-any-return]
            return thr.get("*")
        return thr  # type: ignore[no-any-return]

    def predict(self) -> tuple[int, float, bool]:
        self.calls += 1
        n = self.calls
        probs = self.opts["probabilities"]
        p = probs[min(n, len(probs)) - 1] if probs else self.opts["probability"]
        return n, float(p), n in (self.opts["fail_calls"] or [])


def input_builder(cls: type[ev.Input]) -> Callable[[float, Any, dict[str, Any]], ev.Input]:
    """A function ``(t, ref, fields) -> event`` for the trace lines of input class ``cls``:
    each of its fields (but ``t``, ``ref`` and its ``trace_omits``) from the line's field of
    that name, else the class default (or ``t``, with ``trace_default`` metadata ``"t"``);
    whole numbers as ``int``. Compiled once per class, as attrs compiles ``__init__``: the
    replay builds about two thousand events a second of conversation."""
    args = []
    for a in attrs.fields(cls):
        n = a.name
        if n in ("t", "ref") or n in cls.trace_omits:
            continue
        if a.default is attrs.NOTHING:
            v = f"f[{n!r}]"  # required: the reader checked it is there
        elif a.metadata.get("trace_default") == "t":
            v = f"t if g({n!r}) is None else f[{n!r}]"
        elif a.default is None:
            v = f"g({n!r})"
        else:
            v = f"g({n!r}, {a.default!r})"
        args.append(f"{n}=int({v})" if a.type == "int" else f"{n}={v}")
    src = ("def build(t, ref, f):\n    g = f.get\n"
           f"    return cls(t=t, ref=ref{''.join(', ' + x for x in args)})\n")
    scope: dict[str, Any] = {"cls": cls}
    exec(compile(src, f"<trace builder {cls.__name__}>", "exec"), scope)
    return scope["build"]  # type: ignore[no-any-return]


class _Builders(dict[str, Callable[[float, Any, dict[str, Any]], ev.Input]]):
    """Trace kind -> the builder of its event, compiled on the kind's first use (a replay
    meets a few of the kinds; compiling all of them cost a short run 3 ms); KeyError for
    a kind no input class has."""

    def __missing__(self, kind: str) -> Callable[[float, Any, dict[str, Any]], ev.Input]:
        build = self[kind] = input_builder(_KINDS[kind])
        return build


_KINDS = {c.trace_kind: c for c in ev.input_classes() if c.trace_kind is not None}
#: Trace kind -> the builder of its event.
BUILDERS = _Builders()
#: Kinds whose replay does more than feed the line's event (what a host adds around it).
_GLUE = frozenset({"detector_error", "agent.speech_started", "update_options",
                   "set_interruption_detection"})


class Replay:
    """One replay of a trace."""

    def __init__(self, trace: Trace | TraceStream, *, diagnostics: bool = False,
                 backend: Backend = "table", chart: Chart | None = None,
                 observer: StepObserver | None = None,
                 sink: IO[str] | _Batched | None = None,
                 profile: str | Profile | None = None) -> None:
        self.trace = trace
        self.profile = profile  # overrides the header's
        self.refused: str | None = None  # why the engine refused the header, if it did
        self.sink = sink  # stream each line to it (else keep them in ``lines``)
        self.backend: Backend = backend
        self.chart = chart
        self.observer = observer
        self.cfg = trace.config
        self.glue = self.cfg["glue"]
        self.diagnostics = diagnostics
        self.lines: list[dict[str, Any]] = []
        self.now = 0.0
        self.scheduler: Scheduler[Callable[[], None]] | None = None
        self.model = ScriptedModel(self.cfg["turn_detector"])
        self.detection_enabled = bool(self.cfg["interruption_detection"])
        self.boundary_registered = False
        self.eot_calls = 0
        self.last_return = True  # the host's answer to the last EndOfTurn recorded
        self.engine: Engine | None = None

    # -- recording -------------------------------------------------------------------------

    def rec(self, t: float, kind: str, **fields: Any) -> None:
        if self.sink is None:
            self.lines.append(output_line(t, kind, **fields))
        else:
            self.sink.write(output_text(t, kind, **fields))

    def rec_window(self, t: float, ref: int) -> None:
        """``on_vad_inference_done`` (the most frequent line), formatted directly."""
        if self.sink is None:
            self.lines.append({"t": round(t, 3) or 0.0, "kind": "on_vad_inference_done",
                               "input": ref})
        else:
            self.sink.write(_WINDOW_LINE % (round(t, 3) or 0.0, ref))

    def feed(self, e: ev.Input) -> None:
        assert self.engine is not None
        self.process(self.engine.handle(e))

    def process(self, outputs: list[out.Output]) -> None:
        for o in outputs:
            self.one(o)

    def one(self, o: out.Output) -> None:
        """Record an output and react as the format's host does."""
        if isinstance(o, out.EouModelRequest):
            self.answer_model(o)
            return
        self.record(o)
        if isinstance(o, out.EndOfTurn):
            self.feed(ev.EndOfTurnAnswered(t=o.t, accepted=self.last_return))
        elif isinstance(o, out.Interruption):
            until = self.feedback_until(o)
            if until is not None:
                self.feed(ev.AgentSpeechEnded(t=o.t, ignore_user_transcript_until=until))

    def feedback_until(self, o: out.Interruption) -> float | None:
        """With interruption feedback on, the host stops the agent: the ignore bound."""
        if not self.glue["interruption_feedback"]:
            return None
        return o.detected_at if o.overlap_started_at is None else o.overlap_started_at

    def record(self, o: out.Output) -> None:
        """The output's line(s) in the output format (EndOfTurn: also the host's answer)."""
        t = o.t
        if isinstance(o, out.StartOfSpeech):
            self.rec(t, "on_start_of_speech", input=o.ref, speech_start_time=o.speech_start_time)
        elif isinstance(o, out.VadInference):
            self.rec(t, "on_vad_inference_done", input=o.ref)
        elif isinstance(o, out.EndOfSpeech):
            self.rec(t, "on_end_of_speech", input=o.ref)
        elif isinstance(o, out.Transcript):
            f = dict(input=o.ref, text=o.text, language=o.language, confidence=o.confidence,
                     start_time=o.start_time, end_time=o.end_time, speaking=o.speaking)
            if o.type == "final":
                self.rec(t, "on_final_transcript", **f)
            else:
                self.rec(t, "on_interim_transcript", type=o.type, **f)
        elif isinstance(o, out.PreemptiveGeneration):
            self.rec(t, "on_preemptive_generation", new_transcript=o.new_transcript,
                     transcript_confidence=o.transcript_confidence,
                     started_speaking_at=o.started_speaking_at)
        elif isinstance(o, out.EndOfTurn):
            self.eot_calls += 1
            ret = self.cfg["end_of_turn_returns"]
            if isinstance(ret, list):
                ret = ret[min(self.eot_calls, len(ret)) - 1]
            self.rec(t, "on_end_of_turn", new_transcript=o.new_transcript,
                     transcript_confidence=o.transcript_confidence, skip_reply=o.skip_reply,
                     started_speaking_at=o.started_speaking_at,
                     stopped_speaking_at=o.stopped_speaking_at,
                     transcription_delay=o.transcription_delay or 0.0,
                     end_of_turn_delay=o.end_of_turn_delay, returned=bool(ret))
            self.last_return = bool(ret)
        elif isinstance(o, out.Interruption):
            self.rec(t, "on_interruption", input=o.ref, is_interruption=True,
                     detected_at=o.detected_at, overlap_started_at=o.overlap_started_at,
                     probability=o.probability)
        elif isinstance(o, out.UserTurnExceeded):
            self.rec(t, "on_user_turn_exceeded", transcript=o.transcript,
                     accumulated_transcript=o.accumulated_transcript,
                     accumulated_word_count=o.accumulated_word_count, duration=o.duration)
        elif isinstance(o, out.ConversationRequested):
            self.rec(t, "retrieve_chat_ctx")
        elif isinstance(o, out.DetectorSignal):
            f2: dict[str, Any] = {}
            if o.signal == "overlap_speech_started":
                f2 = {"started_at": o.started_at, "speech_duration": o.speech_duration}
            elif o.signal == "overlap_speech_ended":
                f2 = {"ended_at": o.ended_at}
            self.rec(t, "overlap_signal", signal=o.signal, **f2)
        elif isinstance(o, out.BoundaryExpired):
            if self.boundary_registered:
                self.boundary_registered = False
                self.rec(t, "backchannel_boundary_expired")
        elif isinstance(o, out.AudioFlushRequested):
            self.rec(t, "audio_flush", frames=o.frames, frame_duration=o.frame_duration)
        elif isinstance(o, out.CommitResult):
            f3: dict[str, Any] = {"input": o.ref, "status": o.status}
            if o.status == "ok":
                f3["transcript"] = o.transcript
            self.rec(t, "commit_result", **f3)
        elif isinstance(o, out.InputDropped):
            self.rec(t, "input_dropped", input=o.ref, reason=o.reason)
        elif isinstance(o, out.TranscriptHeld):
            pass  # not in the output format: the release or the drop that follows is
        elif isinstance(o, (out.UserTurnOpened, out.UserTurnDropped, out.WaitCancelled)):
            pass  # not in the output format: the reference reports no turn or wait as such
        elif isinstance(o, out.TranscriptDropped):
            if self.diagnostics:
                self.rec(t, "transcript_dropped", input=o.ref, text=o.text, reason=o.reason)
        else:  # pragma: no cover - every output kind is handled above
            raise TypeError(f"unhandled output {o!r}")

    # -- scripted end-of-turn model ----------------------------------------------------------

    def answer_model(self, req: out.EouModelRequest) -> None:
        m = self.model
        lang = req.language
        t = req.t
        ok = m.supports(lang)
        self.rec(t, "turn_detector", method="supports_language", language=lang, result=ok)
        if not ok:
            self.feed(ev.EouModelAnswered(t=t, request_id=req.request_id, supported=False))
            return
        n, p, fail = m.predict()
        self.rec(t, "turn_detector", method="predict_end_of_turn", call=n,
                 transcript=req.transcript, result=None if fail else p)

        def answer() -> None:
            assert self.engine is not None
            if not self.engine.model_request_pending(req.request_id):
                return
            if fail:
                self.feed(ev.EouModelAnswered(t=self.now, request_id=req.request_id,
                                              failed=True))
                return
            thr = m.threshold(lang)
            self.rec(self.now, "turn_detector", method="unlikely_threshold", language=lang,
                     result=thr)
            self.feed(ev.EouModelAnswered(t=self.now, request_id=req.request_id,
                                          probability=p, threshold=thr))

        latency = float(m.opts["latency"])
        if latency > 0:
            assert self.scheduler is not None
            deadline = round(t + latency, 6)

            def at_deadline() -> None:
                self.now = max(self.now, deadline)
                answer()
            self.scheduler.call_at(deadline, at_deadline)
        else:
            answer()

    # -- time --------------------------------------------------------------------------------

    def run_timers(self, until: float) -> None:
        """Fire the engine's and the replay's timers due by ``until``, in order."""
        assert self.scheduler is not None and self.engine is not None
        engine = self.engine

        def outputs(outs: list[out.Output]) -> None:
            self.now = max(self.now, engine.now)
            self.process(outs)
        self.scheduler.run_until(until, outputs, lambda fn: fn())

    # -- inputs --------------------------------------------------------------------------------

    def apply(self, i: TraceInput) -> None:
        """Feed the event of one trace input (built from the event classes' metadata), with
        the glue a host would add around four kinds."""
        assert self.engine is not None
        k, f, t, ref = i.kind, i.fields, i.t, i.line
        build = BUILDERS[k]  # the reader refuses unknown kinds
        if k not in _GLUE:
            self.feed(build(t, ref, f))
        elif k == "detector_error":
            fallback = f.get("fallback")
            if fallback is None:
                fallback = self.glue["detector_error_fallback"]
            outs = self.engine.handle(build(t, ref, f))
            # a failure with no live detector is dropped as such: the detector was not live
            live = not any(isinstance(o, out.InputDropped) and o.reason == "detector_inactive"
                           for o in outs)
            self.process(outs)
            if live and fallback and self.detection_enabled:
                self.detection_enabled = False
                self.feed(ev.SetInterruptionDetection(t=t, ref=ref, enabled=False))
        elif k == "agent.speech_started":
            self.feed(build(t, ref, f))
            self.boundary_registered = bool(
                self.glue["boundary_callback"] and self.detection_enabled
                and any(tm.kind is TimerKind.BOUNDARY_EXPIRED for tm in self.engine.timers()))
        elif k == "update_options":
            # a line sets turn_detection by naming it; a limit replaces the limits
            self.feed(ev.UpdateOptions(
                t=t, ref=ref, endpointing=f.get("endpointing"),
                set_turn_detection="turn_detection" in f, turn_detection=f.get("turn_detection"),
                user_turn_limit=(dict(USER_LIMIT_NONE, **(f["user_turn_limit"] or {}))
                                 if "user_turn_limit" in f else None)))
        else:  # set_interruption_detection
            self.detection_enabled = bool(f["enabled"])
            self.feed(build(t, ref, f))

    # -- main ------------------------------------------------------------------------------

    def setup(self) -> tuple[EngineOptions, Profile] | None:
        """The engine options and the profile of this replay (the override, else the
        header's); None after recording the error of a header the engine refuses."""
        cfg = self.cfg if self.profile is None else {**self.cfg, "profile": self.profile}
        # a header's profile file lies beside the trace (an override is the user's own)
        path = getattr(self.trace, "path", "<trace>")
        within = Path(path).parent if self.profile is None and path != "<trace>" else None
        try:
            return engine_options(cfg, within), trace_profile(cfg, within)
        except ConfigError as e:
            self.refused = f"the engine refused the header: {e}"
            self.rec(0.0, "error", source="setup", exception=f"ValueError: {e}")
            return None

    def run(self) -> list[dict[str, Any]]:
        setup = self.setup()
        if setup is None:
            return self.lines
        opts, prof = setup
        self.engine = Engine(opts, profile=prof, chart=self.chart, backend=self.backend)
        if self.observer is not None:
            self.engine.add_observer(self.observer)
        scheduler: Scheduler[Callable[[], None]] = Scheduler(self.engine)
        self.scheduler = scheduler
        engine = self.engine
        cx = engine.cx  # (its ``now`` is the engine's: read directly on the hot path)
        inputs: Iterable[TraceInput] = (self.trace.inputs if isinstance(self.trace, Trace)
                                        else self.trace)
        last_t = 0.0
        due = -math.inf  # nothing is due before this (VAD windows never arm a timer)
        fast = self.observer is None
        window = "vad.inference_done"
        vad_window = engine.vad_window
        next_deadline = scheduler.next_deadline
        inf = math.inf
        # window lines go straight into the batch (the most frequent line by far)
        parts = self.sink.parts if isinstance(self.sink, _Batched) else None
        items: Iterable[TraceInput | tuple[int, Any]] = inputs
        if fast and isinstance(self.trace, TraceStream):
            items = self.trace.items()  # window lines as (line, checked struct)
        for i in items:
            if type(i) is tuple:  # a window line from the stream's typed decoder
                ref, w = i  # type: ignore[misc]  # (not TraceInput: a plain tuple)
                t = last_t = w.t
                if t >= due:
                    self.run_timers(t)
                    d = next_deadline()
                    due = inf if d is None else d
                if t > self.now:
                    self.now = t
                try:
                    code = vad_window(t, w.raw_accumulated_speech, ref)
                except (ConfigError, InputError) as exc:
                    raise TraceError(f"the engine refused this input: {exc}",
                                     path=self.trace.path, line=ref) from None
                if code == 1:
                    if parts is not None:
                        # the time as ``repr(round(now, 3))`` writes it, from whole
                        # milliseconds when ``now`` is one (see _MS_FRACTIONS)
                        now = cx.now
                        ms = round(now * 1000.0)
                        if 0 < ms < _MS_LIMIT and ms / 1000.0 == now:
                            s, frac = divmod(ms, 1000)
                            parts.append(_WINDOW_LINE_MS % (s, _MS_FRACTIONS[frac], ref))
                        else:
                            parts.append(_WINDOW_LINE % (round(now, 3) or 0.0, ref))
                        if len(parts) >= 4096:
                            self.sink.flush()  # type: ignore[union-attr]
                    else:
                        self.rec_window(engine.now, ref)
                elif code == 0:
                    self.rec(engine.now, "input_dropped", input=ref, reason="vad_inactive")
                continue
            assert isinstance(i, TraceInput)
            t = last_t = i.t
            if t >= due:
                self.run_timers(t)
                d = next_deadline()
                due = inf if d is None else d
            if t > self.now:
                self.now = t
            try:
                if fast and i.kind == window:
                    code = vad_window(t, i.fields.get("raw_accumulated_speech", 0.0), i.line)
                    if code == 1:
                        if parts is not None:
                            parts.append(_WINDOW_LINE % (round(engine.now, 3) or 0.0, i.line))
                            if len(parts) >= 4096:
                                self.sink.flush()  # type: ignore[union-attr]
                        else:
                            self.rec_window(engine.now, i.line)
                    elif code == 0:
                        self.rec(engine.now, "input_dropped", input=i.line,
                                 reason="vad_inactive")
                    continue
                self.apply(i)
            except (ConfigError, InputError) as exc:
                raise TraceError(f"the engine refused this input: {exc}",
                                 path=self.trace.path, line=i.line) from None
            d = next_deadline()
            due = inf if d is None else d
        limit = last_t + float(self.cfg["time_limit"])
        self.run_timers(limit)
        if self.scheduler.next_deadline() is not None:
            self.rec(self.now, "error", source="harness", message="virtual time limit reached")
        self.rec(self.now, "close")
        self.feed(ev.Close(t=self.now))
        self.run_timers(limit)  # a prediction in flight at close is still awaited
        return self.lines


USER_LIMIT_NONE: dict[str, Any] = {"max_words": None, "max_duration": None}
_WINDOW_LINE = '{"t": %r, "kind": "on_vad_inference_done", "input": %d}\n'
_WINDOW_LINE_MS = '{"t": %d%s, "kind": "on_vad_inference_done", "input": %d}\n'
#: A time ``x`` that is the double nearest to a whole number of milliseconds ``ms``
#: (``ms / 1000.0 == x``, 0 < ms < _MS_LIMIT) has ``round(x, 3) == x`` (x is within half an
#: ulp of ms/1000, far less than half a millisecond), and ``repr(x)`` is that decimal with
#: its trailing zeros dropped: it round-trips, and a shorter decimal is another multiple of
#: 0.001, which is more than the ulp away; below 10**12 s repr writes no exponent. So the
#: text is the whole seconds and these fractions (a test compares it with repr on many
#: times): a third less CPU than ``round`` and ``%r`` on the replay's most frequent line.
_MS_FRACTIONS = tuple("." + (f"{k:03d}".rstrip("0") or "0") for k in range(1000))
_MS_LIMIT = 10**15


def replay_trace(trace: Trace, *, diagnostics: bool = False, backend: Backend = "table",
                 chart: Chart | None = None, profile: str | Profile | None = None
                 ) -> list[dict[str, Any]]:
    """Replay a parsed trace; return the output records. ``profile`` overrides the one
    the header names (none named: ``livekit``)."""
    return Replay(trace, diagnostics=diagnostics, backend=backend, chart=chart,
                  profile=profile).run()


def replay_file(path: str | Path, *, diagnostics: bool = False, backend: Backend = "table",
                chart: Chart | None = None, profile: str | Profile | None = None) -> str:
    """Replay a trace file; return the output as JSON Lines text."""
    return dumps(replay_trace(read_trace(path), diagnostics=diagnostics, backend=backend,
                              chart=chart, profile=profile))


def replay_stream(path: str | Path, out: IO[str], *, diagnostics: bool = False,
                  backend: Backend = "table", chart: Chart | None = None,
                  profile: str | Profile | None = None) -> str | None:
    """Replay a trace file one line at a time, writing each output line to ``out`` as it is
    made: memory does not grow with the trace's length. The output equals
    :func:`replay_file`'s (a malformed line raises TraceError when it is reached, after the
    lines before it were written). Returns why the engine refused the header (its error
    line is the output), or None."""
    batched = _Batched(out)
    try:
        with TraceStream(path) as stream:
            r = Replay(stream, diagnostics=diagnostics, backend=backend, chart=chart,
                       sink=batched, profile=profile)
            r.run()
    finally:
        batched.flush()
    return r.refused


class _Batched:
    """Output lines gathered and written a few thousand at a time (one ``write`` per line
    cost more than the engine's work on a VAD window); memory stays bounded."""

    __slots__ = ("out", "parts")

    def __init__(self, out: IO[str]) -> None:
        self.out = out
        self.parts: list[str] = []

    def write(self, s: str) -> None:
        parts = self.parts
        parts.append(s)
        if len(parts) >= 4096:
            self.flush()

    def flush(self) -> None:
        if self.parts:
            self.out.write("".join(self.parts))
            self.parts.clear()
