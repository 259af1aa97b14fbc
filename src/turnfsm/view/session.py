"""The data of a session page: run a WAV (as ``listen`` does) or replay a trace, keep the
step records, and turn them into the compact JSON the page reads.

Step records are kept when they did something (a region moved, a timer armed or
cancelled, an output other than a VAD window, or an input other than a VAD window): a
60-minute session has ~110,000 VAD windows, which the page does not need one by one. The
regions' states are encoded as changes from the previous kept step (the full state of the
first step, then only the regions that moved), so the page's size grows with what happened,
not with the steps.
"""

from __future__ import annotations

import base64
from typing import Any

import attrs

from .. import events as ev
from .. import outputs as out
from ..audio.envelope import ENV_RATE, PageAudio
from ..chart import Chart
from ..core import StepRecord
from ..replay import Trace
from ..replay.timeline import describe_input, describe_output, explain


@attrs.define
class SessionRun:
    """What one run of a session produced: its trace, output lines and step records, the
    chart it ran, and its audio's envelope (and playable copy) if it had any."""

    trace: Trace
    lines: list[dict[str, Any]]
    records: list[StepRecord]
    chart: Chart
    profile: str
    source: str
    audio: PageAudio | None = None
    notes: list[str] = attrs.field(factory=list)


def _num(x: float | None) -> float | None:
    return None if x is None else round(float(x), 4)


def _timer(timer: Any) -> str:
    return f"{timer.kind.value} due {timer.deadline:.3f} s"


def _step_input(rec: StepRecord, inputs: dict[int, Any]) -> str:
    e = rec.input
    if e is None:
        return f"timer {rec.timer.kind.value} fired" if rec.timer is not None else "(none)"
    i = inputs.get(e.ref) if isinstance(e.ref, int) else None
    if i is not None:
        return f"line {i.line}: {describe_input(i)}"
    if isinstance(e, ev.EndOfTurnAnswered):
        return "host: " + ("accepts the turn" if e.accepted else "refuses the turn")
    if isinstance(e, ev.EouModelAnswered):
        return ("host: model answers " + ("failed" if e.failed else
                f"p={e.probability} threshold={e.threshold}"))
    if isinstance(e, ev.Close):
        return "host: close"
    return "host: " + type(e).__name__


def _kept(rec: StepRecord) -> bool:
    """Whether the page keeps the step (see the module's docstring)."""
    if rec.moved or rec.armed or rec.cancelled or rec.timer is not None or rec.released:
        return True
    if rec.input is not None and not isinstance(rec.input, ev.VadInferenceDone):
        return True
    return any(not isinstance(o, out.VadInference) for o in rec.outputs)


def page_data(run: SessionRun) -> dict[str, Any]:
    """The JSON the page reads (see ``page.js`` for how each field is drawn)."""
    chart, trace = run.chart, run.trace
    regions = [{"name": r.name, "states": list(r.states), "initial": r.initial,
                "doc": r.doc, "docs": {s: r.docs.get(s, "") for s in r.states}}
               for r in chart.regions]
    rindex = {r.name: k for k, r in enumerate(chart.regions)}
    sindex = [{s: j for j, s in enumerate(r.states)} for r in chart.regions]
    inputs = {i.line: i for i in trace.inputs}
    end = max([0.0, *(i.t for i in trace.inputs), *(x["t"] for x in run.lines)])
    if run.audio is not None:
        end = max(end, run.audio.duration)

    steps: list[dict[str, Any]] = []
    last: dict[str, str] = {}
    turns: list[dict[str, Any]] = []
    interruptions: list[dict[str, Any]] = []
    drops: list[dict[str, Any]] = []
    cancels: list[dict[str, Any]] = []
    held: dict[Any, dict[str, Any]] = {}
    finals: dict[Any, dict[str, Any]] = {}
    dropped_steps = 0
    for rec in run.records:
        if not _kept(rec):
            dropped_steps += 1
            continue
        k = len(steps)
        changes = []
        for name, state in rec.state:
            if last.get(name) != state and name in rindex:
                changes.append([rindex[name], sindex[rindex[name]].get(state, -1)])
                last[name] = state
        outs = []
        for o in rec.outputs:
            if isinstance(o, out.VadInference):
                continue
            what = describe_output(o) or type(o).__name__
            why = explain(o)
            outs.append(what + (f" (why: {why})" if why else ""))
            if isinstance(o, out.EndOfTurn):
                d = o.decision
                turns.append({
                    "t": _num(o.t), "step": k, "text": o.new_transcript,
                    "started": _num(o.started_speaking_at),
                    "stopped": _num(o.stopped_speaking_at), "skip": o.skip_reply,
                    "trigger": d.trigger if d else None,
                    "waitFrom": _num(d.wait_started_at) if d else None,
                    "anchor": _num(d.anchor) if d else None,
                    "delay": _num(d.delay) if d else None,
                    "reason": d.delay_reason if d else None,
                    "why": explain(o) or "no decision record"})
            elif isinstance(o, out.Interruption):
                interruptions.append({
                    "t": _num(o.t), "step": k, "from": _num(o.overlap_started_at),
                    "p": _num(o.probability), "why": explain(o) or ""})
            elif isinstance(o, out.WaitCancelled):
                cancels.append({"t": _num(o.t), "step": k})
            elif isinstance(o, out.TranscriptHeld):
                held[o.ref] = {"t": _num(o.t), "step": k}
            elif isinstance(o, out.Transcript) and o.type == "final":
                finals.setdefault(o.ref, {"t": _num(o.t), "step": k, "text": o.text,
                                          "from": _num(o.start_time), "to": _num(o.end_time)})
            elif isinstance(o, out.TranscriptDropped):
                drops.append({"t": _num(o.t), "step": k, "text": o.text, "reason": o.reason,
                              "ref": o.ref if isinstance(o.ref, int) else None,
                              "why": explain(o) or o.reason})
        steps.append({"i": rec.index, "t": _num(rec.t), "in": _step_input(rec, inputs),
                      "mv": [list(m) for m in rec.moved],
                      "ar": [_timer(x) for x in rec.armed],
                      "ca": [_timer(x) for x in rec.cancelled],
                      "out": outs, "ch": changes})

    transcripts: list[dict[str, Any]] = []
    for i in trace.inputs:
        if i.kind not in ("stt.interim", "stt.final", "stt.preflight"):
            continue
        text = i.fields.get("text", "")
        item: dict[str, Any] = {"t": _num(i.t), "line": i.line, "type": i.kind[4:],
                                "text": text}
        if i.line in held:
            item["held"] = held[i.line]["t"]
        if i.line in finals:
            item["shown"] = finals[i.line]["t"]
        transcripts.append(item)
    vad: list[list[float | None]] = []
    agent: list[list[float | None]] = []
    user_open: float | None = None
    agent_open: float | None = None
    for i in trace.inputs:
        if i.kind == "vad.start_of_speech":
            user_open = i.t
        elif i.kind == "vad.end_of_speech" and user_open is not None:
            vad.append([_num(user_open), _num(i.t)])
            user_open = None
        elif i.kind == "agent.speech_started":
            agent_open = i.t
        elif i.kind == "agent.speech_ended" and agent_open is not None:
            agent.append([_num(agent_open), _num(i.t)])
            agent_open = None
    if user_open is not None:
        vad.append([_num(user_open), _num(end)])
    if agent_open is not None:
        agent.append([_num(agent_open), _num(end)])

    data: dict[str, Any] = {
        "title": run.source, "profile": run.profile, "chart": chart.source,
        "duration": _num(end), "regions": regions, "steps": steps,
        "stepsOmitted": dropped_steps, "turns": turns, "interruptions": interruptions,
        "drops": drops, "cancels": cancels, "transcripts": transcripts, "vad": vad,
        "agent": agent,
        "envRate": ENV_RATE, "env": [], "channels": [], "audio": None, "notes": run.notes}
    if run.audio is not None:
        data["env"] = run.audio.env
        data["channels"] = ["user", "agent"][: run.audio.channels]
        if run.audio.wav is not None:
            data["audio"] = ("data:audio/wav;base64,"
                             + base64.b64encode(run.audio.wav).decode("ascii"))
    return data
