"""The hold gate: user STT events are held while the agent speaks and interruption
detection is effective (region ``hold_policy``), and released when it stops (region
``judge``), synchronously and in order (D5/D26), after trimming the head that ended before
the ignore window (backchannels the detector did not call an interruption). Every discarded
transcript leaves a drop record (D28).

A released event is raised again as its ``released_*`` internal event (:data:`RELEASED`),
which the gate region routes to the same action as one that passes at once."""

from __future__ import annotations

from typing import Any

from ... import events as ev
from ... import outputs as out
from ..context import Context
from ..registry import RULES

#: The internal event a released STT event is raised as (the chart routes each).
RELEASED: dict[type, str] = {
    ev.SttFinal: "released_final",
    ev.SttPreflight: "released_preflight",
    ev.SttInterim: "released_interim",
    ev.SttStartOfSpeech: "released_start",
    ev.SttEndOfSpeech: "released_end",
}


@RULES.guard("manual_gate_drops")
def manual_gate_drops(cx: Context, e: Any) -> bool:
    """Interims are dropped while a manual commit's decision is pending (they are stale)."""
    return (cx.in_state("mode", "manual") and cx.in_state("authority", "manual_committed")
            and cx.wait is not None)


@RULES.action("hold_stt", ev.SttEvent)
def hold_stt(cx: Context, e: ev.SttEvent) -> None:
    """Hold an STT event until the agent stops; a held transcript is reported
    (``TranscriptHeld``) so a host that forwards transcripts knows to wait for its release."""
    if isinstance(e, ev.SttFinal):
        cx.note_final(e)
    cx.held.append(e)
    if isinstance(e, ev.SttTranscript):
        kind: out.TranscriptType = "final" if isinstance(e, ev.SttFinal) else (
            "preflight" if isinstance(e, ev.SttPreflight) else "interim")
        cx.emit(out.TranscriptHeld(t=cx.now, ref=e.ref, type=kind, text=e.text))


def release_events(cx: Context, events: list[ev.SttEvent]) -> None:
    """Release events in order, as if they arrived now: each is raised as its
    ``released_*`` event (``after: now``, processed where it is raised)."""
    for e in events:
        cx.raise_(RELEASED[type(e)], e)


@RULES.action("open_gate")
def open_gate(cx: Context, e: Any) -> None:
    """What was held is released or dropped: the gate passes STT events again."""
    cx.raise_("gate_opened")


@RULES.action("release_trimmed")
def release_trimmed(cx: Context, e: Any) -> None:
    """The agent stopped: release what is held, minus the head inside the ignore window."""
    release_events(cx, trim(cx, cx.window))
    cx.window = None


@RULES.action("release_all")
def release_all(cx: Context, e: Any) -> None:
    """Detection stopped being effective: release everything held (D27)."""
    release_events(cx, trim(cx, None))


def _drop_held(cx: Context, reason: Any) -> None:
    for h in cx.held:
        cx.drop(h, reason)
    cx.held = []


@RULES.action("drop_held_cleared")
def drop_held_cleared(cx: Context, e: Any) -> None:
    """The turn was cleared: what is held goes with it."""
    _drop_held(cx, "clear_user_turn")


@RULES.action("drop_held_reset")
def drop_held_reset(cx: Context, e: Any) -> None:
    """The STT stream restarted: what is held belonged to the old stream."""
    _drop_held(cx, "stream_reset")


@RULES.action("drop_held_at_close")
def drop_held_at_close(cx: Context, e: Any) -> None:
    """Closed while the agent spoke: what is held is dropped, with a record (D28)."""
    _drop_held(cx, "closed")


def trim_kept(cx: Context, window: float | None) -> list[ev.SttEvent]:
    """What :func:`trim` would keep of the held buffer (nothing changed)."""
    return cx.held[_trim_start(cx, cx.held, window):]


def trim(cx: Context, window: float | None) -> list[ev.SttEvent]:
    """Empty the held buffer: drop the head that ended before ``window``; return the rest."""
    buf, cx.held = cx.held, []
    cut = _trim_start(cx, buf, window)
    origin = cx.input_started_at
    for e in buf[:cut]:
        ended = e.t
        if isinstance(e, ev.SttTranscript) and origin is not None and e.end_time > 0:
            ended = min(origin + e.end_time, e.t)
        cx.drop(e, "backchannel_trim", out.DropRecord(
            rule="R47-E", detail="held speech that ended inside the agent's ignore window",
            ended_at=ended, window=window))
    return buf[cut:]


def _trim_start(cx: Context, buf: list[ev.SttEvent], window: float | None) -> int:
    """Where the kept part of ``buf`` starts: the head that ended before ``window`` goes."""
    if window is None:
        return 0
    origin = cx.input_started_at
    start: int | None = None
    found = False
    for i, e in enumerate(buf):
        if not isinstance(e, ev.SttTranscript):
            start = i if start is None else min(start, i)
            continue
        if origin is not None and e.end_time > 0:
            ended = min(origin + e.end_time, e.t)  # D13: a mapped time is never in the future
        elif origin is not None and e.start_time > 0:
            ended = None  # a start but no end: keep it, as the reference does
        else:
            ended = e.t  # D6: no usable timestamps: the arrival time stands for the end
        agent_start = cx.agent_started_at
        # D7: speech that ended before the agent started is never trimmed
        before_agent = ended is not None and agent_start is not None and ended < agent_start
        if ended is not None and ended < window and not before_agent:
            start = None
        else:
            start = i if start is None else min(start, i)
            found = True
            break
    keep = buf[start:] if (found and start is not None) else []
    return len(buf) - len(keep)
