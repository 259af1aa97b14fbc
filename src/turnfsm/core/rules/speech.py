"""The VAD segment and the user's speech: onsets, start/end reports and the engine's own
speech feedback (the reference feeds its start/end of speech back to itself as the host
signals ``UserSpeechStarted``/``UserSpeechEnded``; here they are the chart's internal events
``feedback_started``/``feedback_ended``, raised when ``speech_feedback`` is on)."""

from __future__ import annotations

from typing import Any

from ... import events as ev
from ... import outputs as out
from ..context import Context
from ..records import SpeechEnd, SpeechStart
from ..registry import RULES


def _feedback_start(cx: Context, started_at: float, speech_duration: float) -> None:
    cx.raise_("speech_started", SpeechStart(started_at=started_at,
                                            speech_duration=speech_duration))
    cx.verdict_interruption = False


def _feedback_end(cx: Context, ended_at: float) -> None:
    detached = cx.in_state("detector", "detached")
    interruption = None if detached else cx.verdict_interruption  # data: no detector, no verdict
    cx.raise_("speech_ended", SpeechEnd(ended_at=ended_at, interruption=interruption))


@RULES.action("feed_back_start", SpeechStart)
def feed_back_start(cx: Context, e: SpeechStart) -> None:
    """The engine's report that user speech started, fed back as the host's signal."""
    cx.raise_("feedback_started", e)


@RULES.action("feed_back_end", SpeechEnd)
def feed_back_end(cx: Context, e: SpeechEnd) -> None:
    """The engine's report that user speech ended, fed back as the host's signal."""
    cx.raise_("feedback_ended", e)


def _note_new_speech(cx: Context) -> None:
    cx.onsets += 1  # a wait started before this counts it: its speech is the next turn's


def _vad_onset(cx: Context, e: ev.VadStartOfSpeech) -> float:
    return cx.now - e.speech_duration - e.inference_duration


@RULES.action("capture_onset", ev.VadStartOfSpeech)
def capture_onset(cx: Context, e: ev.VadStartOfSpeech) -> None:
    """A new VAD segment sets the speech onset (never before the last delivery, I7)."""
    cx.speech_start_time = cx.onset_at(_vad_onset(cx, e))


@RULES.action("report_vad_start", ev.VadStartOfSpeech)
def report_vad_start(cx: Context, e: ev.VadStartOfSpeech) -> None:
    """Report the start of speech (a final from now on is new words, never a duplicate)."""
    cx.promoted = None
    _note_new_speech(cx)
    onset = _vad_onset(cx, e)
    cx.note_segment(onset)
    cx.ensure_span(onset)
    cx.emit(out.StartOfSpeech(t=cx.now, ref=e.ref, speech_start_time=onset))
    _feedback_start(cx, onset, e.speech_duration)


@RULES.action("report_vad_end", ev.VadEndOfSpeech)
def report_vad_end(cx: Context, e: ev.VadEndOfSpeech) -> None:
    """Report the end of speech (it ended ``silence + inference`` ago)."""
    report_speech_end(cx, e, open_turn=True)


def report_speech_end(cx: Context, e: ev.VadEndOfSpeech, *, open_turn: bool) -> None:
    """Report a VAD end of speech; ``open_turn``: it opens the turn's span if none is."""
    if open_turn:
        cx.ensure_span()
    cx.emit(out.EndOfSpeech(t=cx.now, ref=e.ref))
    _feedback_end(cx, cx.now - e.silence_duration - e.inference_duration)


@RULES.action("report_stream_end")
def report_stream_end(cx: Context, e: Any) -> None:
    """The VAD stream ended while the user spoke: their speech ends now."""
    report_stream_stop(cx, open_turn=True)


def report_stream_stop(cx: Context, *, open_turn: bool) -> None:
    """Report that the VAD stream ended the user's speech; ``open_turn``: it opens the
    turn's span if none is."""
    if open_turn:
        cx.ensure_span()
    cx.emit(out.EndOfSpeech(t=cx.now, ref=None))
    _feedback_end(cx, cx.now)


@RULES.action("report_stt_start", ev.SttStartOfSpeech)
def report_stt_start(cx: Context, e: ev.SttStartOfSpeech) -> None:
    """stt mode: the STT's start of speech is the user's (its onset if the provider gave one)."""
    cx.promoted = None
    _note_new_speech(cx)
    if cx.speech_start_time is None:
        cx.speech_start_time = cx.onset_at(e.speech_start_time if e.speech_start_time
                                           else cx.now)
    cx.ensure_span(cx.speech_start_time)
    cx.emit(out.StartOfSpeech(t=cx.now, ref=None, speech_start_time=cx.speech_start_time))
    _feedback_start(cx, cx.speech_start_time, 0.0)
    cx.last_speaking_time = cx.now


@RULES.action("report_stt_end")
def report_stt_end(cx: Context, e: Any) -> None:
    """stt mode: the STT's end of speech is the user's (after a dropped backchannel, see
    ``report_stt_end_after_backchannels``)."""
    report_stt_stop(cx, open_turn=True)


def report_stt_stop(cx: Context, *, open_turn: bool) -> None:
    """Report the STT's end of speech; ``open_turn``: it opens the turn's span if none is."""
    if open_turn:
        cx.ensure_span()
    cx.emit(out.EndOfSpeech(t=cx.now, ref=None))
    _feedback_end(cx, cx.now)
    cx.anchor_at_transcript()
