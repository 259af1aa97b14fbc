"""A readable timeline of a replayed session: each input, then what it caused."""

from __future__ import annotations

from typing import Any

from .chart import Chart
from .replay import Replay
from .trace import Trace, TraceInput

_SKIP = {"retrieve_chat_ctx", "on_vad_inference_done"}


def _fmt(v: Any) -> str:
    if isinstance(v, float):
        return f"{v:.3f}".rstrip("0").rstrip(".") if v == v else "nan"
    if isinstance(v, str):
        return repr(v)
    return str(v)


def _describe_input(i: TraceInput) -> str:
    f = i.fields
    if "text" in f:
        return f"{i.kind} {f['text']!r}"
    if i.kind == "overlap":
        return "overlap " + ("interruption" if f.get("is_interruption") else "backchannel")
    if "enabled" in f:
        return f"{i.kind} {'on' if f['enabled'] else 'off'}"
    return i.kind


def _describe_output(rec: dict[str, Any]) -> str:
    kind = rec["kind"]
    if kind == "on_end_of_turn":
        extra = ""
        if rec.get("end_of_turn_delay") is not None:
            extra = (f" (spoke {_fmt(rec['started_speaking_at'])}-"
                     f"{_fmt(rec['stopped_speaking_at'])}, decided "
                     f"{_fmt(rec['end_of_turn_delay'])} s after)")
        acc = "" if rec["returned"] else " [refused by host]"
        skip = " [no reply]" if rec["skip_reply"] else ""
        return f"END OF TURN {rec['new_transcript']!r}{extra}{skip}{acc}"
    if kind in ("on_final_transcript", "on_interim_transcript"):
        label = rec.get("type", "final")
        return f"{label} transcript {rec['text']!r}"
    if kind == "on_preemptive_generation":
        return f"preemptive generation {rec['new_transcript']!r}"
    if kind == "on_start_of_speech":
        return f"user started speaking (at {_fmt(rec['speech_start_time'])})"
    if kind == "on_end_of_speech":
        return "user stopped speaking"
    if kind == "on_interruption":
        return "INTERRUPTION of the agent"
    if kind == "overlap_signal":
        return f"detector signal {rec['signal']}"
    if kind == "transcript_dropped":
        return f"dropped {rec['text']!r} ({rec['reason']})"
    rest = ", ".join(f"{k}={_fmt(v)}" for k, v in rec.items() if k not in ("t", "kind"))
    return f"{kind} {rest}".strip()


class _TimelineReplay(Replay):
    def __init__(self, trace: Trace, chart: Chart | None = None) -> None:
        super().__init__(trace, diagnostics=True, chart=chart)
        self.rows: list[tuple[float, str, str]] = []
        self._seen = 0

    def _flush(self) -> None:
        for rec in self.lines[self._seen:]:
            if rec["kind"] not in _SKIP:
                self.rows.append((rec["t"], "   ->", _describe_output(rec)))
        self._seen = len(self.lines)

    def apply(self, i: TraceInput) -> None:
        self._flush()
        if i.kind not in ("vad.inference_done", "audio"):
            self.rows.append((i.t, f"{i.line:>4} ", _describe_input(i)))
        super().apply(i)
        self._flush()

    def run(self) -> list[dict[str, Any]]:
        lines = super().run()
        self._flush()
        return lines


def render_timeline(trace: Trace, chart: Chart | None = None) -> str:
    """The session as text: inputs (with their line) and the outputs they caused."""
    r = _TimelineReplay(trace, chart)
    r.run()
    head = f"# {trace.path}\n"
    comment = trace.config.get("comment")
    if comment:
        head += f"# {comment}\n"
    body = "".join(f"{t:8.3f}s {who} {what}\n" for t, who, what in r.rows)
    return head + "#   time   line  input / -> output\n" + body
