"""The collaborators' streams: VAD, STT and interruption detector (attach, detach, intake),
and the data events handled before the machine (VAD windows, audio)."""

from __future__ import annotations

from typing import Any

from ... import events as ev
from ... import outputs as out
from ..context import Context
from ..registry import RULES

# -- VAD ---------------------------------------------------------------------------------


@RULES.action("end_vad_stream")
def end_vad_stream(cx: Context, e: Any) -> None:
    """A restarted or detached VAD stream reports its end a little later (its segment and
    the user's speech end then)."""
    cx.raise_("vad_stream_ended")


@RULES.action("end_vad_stream_now")
def end_vad_stream_now(cx: Context, e: Any) -> None:
    """At close the VAD stream ends at once."""
    cx.raise_("vad_stream_closed")


@RULES.action("drop_vad_input", ev.Input)
def drop_vad_input(cx: Context, e: ev.Input) -> None:
    """A VAD event with no VAD attached goes nowhere."""
    cx.emit(out.InputDropped(t=cx.now, ref=e.ref, reason="vad_inactive"))


def vad_window(cx: Context, e: ev.VadInferenceDone) -> out.Output:
    """R11: the anchor moves to every window with speech; the onset is set if unknown."""
    t = cx.now
    if cx.s[cx.vad_region] == cx.vad_detached:  # in_state("vad_input", "detached"), inlined
        return out.InputDropped(t=t, ref=e.ref, reason="vad_inactive")
    if e.raw_accumulated_speech > 0.0:  # silence moves nothing: no call
        cx.speech_window(e.raw_accumulated_speech)
    return out.VadInference(t=t, ref=e.ref)


def audio(cx: Context, e: ev.AudioPushed) -> None:
    """Audio frames set the STT stream's time origin (D12) and the sample rate."""
    if e.count <= 0:
        return
    if cx.input_started_at is None:
        cx.input_started_at = cx.now - e.duration
    cx.sample_rate = e.sample_rate


# -- STT ---------------------------------------------------------------------------------


@RULES.action("restart_stt")
def restart_stt(cx: Context, e: Any) -> None:
    """A new STT stream has a new time origin (D12; a clear restarts the stream too)."""
    cx.input_started_at = None


@RULES.action("drop_stt_input", ev.Input)
def drop_stt_input(cx: Context, e: ev.Input) -> None:
    """An STT event with no STT attached goes nowhere."""
    cx.emit(out.InputDropped(t=cx.now, ref=e.ref, reason="stt_inactive"))


@RULES.action("note_request_id", ev.SttEvent)
def note_request_id(cx: Context, e: ev.SttEvent) -> None:
    """The turn reports the STT request ids it heard."""
    note_request(cx, e.request_id)


def note_request(cx: Context, rid: str) -> None:
    """Remember an STT request id for the turn."""
    if rid and rid not in cx.turn.request_ids:
        cx.turn.request_ids.append(rid)


# -- interruption detector ---------------------------------------------------------------


@RULES.action("take_verdict", ev.OverlapVerdict)
def take_verdict(cx: Context, e: ev.OverlapVerdict) -> None:
    """Remember the verdict (region ``utterance_verdict`` reports an interruption)."""
    cx.verdict_interruption = e.is_interruption  # the segment's: region utterance_verdict


def interruption_out(cx: Context, e: ev.OverlapVerdict) -> out.Interruption:
    """The ``Interruption`` reporting the detector's verdict ``e``, emitted now."""
    detected = cx.now if e.detected_at is None else e.detected_at
    return out.Interruption(
        t=cx.now, ref=e.ref, detected_at=detected, overlap_started_at=e.overlap_started_at,
        probability=e.probability, record=out.InterruptionRecord(
            probability=e.probability, overlap_started_at=e.overlap_started_at,
            detected_at=detected, detection_delay=e.detection_delay,
            total_duration=e.total_duration, num_requests=e.num_requests,
            agent_started_at=cx.agent_started_at if cx.agent_speaking else None,  # data: a copy
            in_backchannel_boundary=cx.in_state("boundary", "active")))


@RULES.action("report_interruption", ev.OverlapVerdict)
def report_interruption(cx: Context, e: ev.OverlapVerdict) -> None:
    """The detector's interruption verdict is reported at once."""
    cx.emit(interruption_out(cx, e))


@RULES.action("drop_detector_input", ev.Input)
def drop_detector_input(cx: Context, e: ev.Input) -> None:
    """A verdict or failure with no live detector goes nowhere."""
    cx.emit(out.InputDropped(t=cx.now, ref=e.ref, reason="detector_inactive"))
