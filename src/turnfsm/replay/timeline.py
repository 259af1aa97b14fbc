"""A readable timeline of a replayed session, built by a step observer: each input, then
what it caused (the engine's outputs, the host's answers)."""

from __future__ import annotations

from typing import Any

from .. import events as ev
from .. import outputs as out
from ..chart import Chart
from ..core import StepRecord
from .replay import Replay
from .trace import Trace, TraceInput


def _fmt(v: Any) -> str:
    if isinstance(v, float):
        return f"{v:.3f}".rstrip("0").rstrip(".") if v == v else "nan"
    if isinstance(v, str):
        return repr(v)
    return str(v)


def describe_input(i: TraceInput) -> str:
    """One line for a trace input."""
    f = i.fields
    if "text" in f:
        return f"{i.kind} {f['text']!r}"
    if i.kind == "overlap":
        return "overlap " + ("interruption" if f.get("is_interruption") else "backchannel")
    if "enabled" in f:
        return f"{i.kind} {'on' if f['enabled'] else 'off'}"
    return i.kind


def describe_output(o: out.Output) -> str | None:
    """One line for an engine output (None: not shown)."""
    if isinstance(o, out.EndOfTurn):
        extra = ""
        if o.end_of_turn_delay is not None:
            extra = (f" (spoke {_fmt(o.started_speaking_at)}-{_fmt(o.stopped_speaking_at)}, "
                     f"decided {_fmt(o.end_of_turn_delay)} s after)")
        skip = " [no reply]" if o.skip_reply else ""
        return f"END OF TURN {o.new_transcript!r}{extra}{skip}"
    if isinstance(o, out.Transcript):
        return f"{o.type} transcript {o.text!r}"
    if isinstance(o, out.PreemptiveGeneration):
        return f"preemptive generation {o.new_transcript!r}"
    if isinstance(o, out.StartOfSpeech):
        return f"user started speaking (at {_fmt(o.speech_start_time)})"
    if isinstance(o, out.EndOfSpeech):
        return "user stopped speaking"
    if isinstance(o, out.Interruption):
        return "INTERRUPTION of the agent"
    if isinstance(o, out.DetectorSignal):
        return f"detector signal {o.signal}"
    if isinstance(o, out.TranscriptDropped):
        what = repr(o.text) if o.text else "speech without words"  # no STT attached
        return f"dropped {what} ({o.reason})"
    if isinstance(o, out.EouModelRequest):
        return f"asks the end-of-turn model about {o.transcript!r}"
    if isinstance(o, out.CommitResult):
        return f"commit {o.status}" + (f" {o.transcript!r}" if o.status == "ok" else "")
    if isinstance(o, out.UserTurnExceeded):
        return f"user turn limit reached ({o.accumulated_word_count} words, {_fmt(o.duration)} s)"
    if isinstance(o, out.InputDropped):
        return f"input dropped ({o.reason})"
    if isinstance(o, out.AudioFlushRequested):
        return f"flush the STT ({o.frames} frames)"
    if isinstance(o, out.BoundaryExpired):
        return "backchannel boundary expired"
    return None  # VAD windows and conversation look-ups


def explain(o: out.Output, diagnostics: bool = True) -> str | None:
    """The record behind a decision or a drop, as one line (None: nothing to explain);
    ``diagnostics``: with the spec rule a drop follows (``R47-E: ...``)."""
    if isinstance(o, out.EndOfTurn) and o.decision is not None:
        d = o.decision
        extra = []
        if d.rearmed:
            extra.append(f"{d.rearmed} earlier decision(s) replaced")
        if d.cancelled:
            extra.append(f"{d.cancelled} cancelled by speech")
        if d.model is not None and not d.model.failed and d.model.latency:
            extra.append(f"model answered in {_fmt(d.model.latency)} s")
        return d.why() + (f"; {', '.join(extra)}" if extra else "")
    if isinstance(o, out.Interruption) and o.record is not None:
        r = o.record
        parts = [f"p={_fmt(r.probability)}"]
        if r.overlap_started_at is not None:
            parts.append(f"overlap from {_fmt(r.overlap_started_at)} s")
        parts.append(f"detected at {_fmt(r.detected_at)} s")
        if r.in_backchannel_boundary:
            parts.append("inside the backchannel boundary")
        return ", ".join(parts)
    if isinstance(o, out.TranscriptDropped) and o.record is not None:
        dr = o.record
        times = ""
        if dr.ended_at is not None and dr.window is not None:
            times = f" (ended {_fmt(dr.ended_at)} s, window until {_fmt(dr.window)} s)"
        return f"{dr.rule}: {dr.detail}{times}" if diagnostics else f"{dr.detail}{times}"
    return None


class TimelineObserver:
    """Collects timeline rows from the engine's step records: ``(time, who, what)``, where
    ``who`` is an input's trace line number, ``"host"``, ``"->"`` (an output) or ``""`` (the
    explanation under it). :meth:`format_row` prints one; ``diagnostics`` keeps the trace's
    line numbers and the spec rules of drops, which only a reader of the trace needs."""

    HEADER = "#   time   input / -> output\n"
    HEADER_DIAGNOSTICS = "#   time   line  input / -> output\n"

    def __init__(self, trace: Trace, diagnostics: bool = False) -> None:
        self._inputs = {i.line: i for i in trace.inputs}
        self.diagnostics = diagnostics
        self.rows: list[tuple[float, str, str]] = []

    def __call__(self, rec: StepRecord) -> None:
        e = rec.input
        i = self._inputs.get(e.ref) if e is not None and isinstance(e.ref, int) else None
        if i is not None:
            if i.kind not in ("vad.inference_done", "audio"):
                self.rows.append((i.t, str(i.line), describe_input(i)))
        elif isinstance(e, ev.EndOfTurnAnswered):
            self.rows.append((rec.t, "host", "accepts the turn" if e.accepted
                              else "refuses the turn (it goes on)"))
        elif isinstance(e, ev.EouModelAnswered):
            verdict = ("failed" if e.failed else "unsupported language" if not e.supported
                       else f"p={_fmt(e.probability)} threshold={_fmt(e.threshold)}")
            self.rows.append((rec.t, "host", f"model answers: {verdict}"))
        elif isinstance(e, ev.Close):
            self.rows.append((rec.t, "host", "close"))
        for o in rec.outputs:
            what = describe_output(o)
            if what is not None:
                self.rows.append((o.t, "->", what))
            why = explain(o, self.diagnostics)
            if why:
                self.rows.append((o.t, "", f"   why: {why}"))

    @property
    def header(self) -> str:
        """The column header line."""
        return self.HEADER_DIAGNOSTICS if self.diagnostics else self.HEADER

    def format_row(self, row: tuple[float, str, str]) -> str:
        """One row as a line of text (with its newline)."""
        t, who, what = row
        if self.diagnostics:
            col = f"{who:>4} " if who.isdigit() else f"{who:>5}"
            return f"{t:8.3f}s {col} {what}\n"
        if who.isdigit():
            return f"{t:8.3f}s  {what}\n"
        if who == "host":
            return f"{t:8.3f}s  host {what}\n"
        return f"{t:8.3f}s    {who:2s} {what}\n"


def render_timeline(trace: Trace, chart: Chart | None = None, *,
                    diagnostics: bool = False) -> str:
    """The session as text: inputs and the outputs they caused (``diagnostics``: with each
    input's trace line and the spec rule of each drop)."""
    obs = TimelineObserver(trace, diagnostics)
    Replay(trace, diagnostics=True, chart=chart, observer=obs).run()
    head = f"# {trace.path}\n"
    comment = trace.config.get("comment")
    if comment:
        head += f"# {comment}\n"
    return head + obs.header + "".join(obs.format_row(r) for r in obs.rows)
