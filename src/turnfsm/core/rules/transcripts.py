"""What each STT event does once it passes the gate (R18-R22): finals, preflights,
interims, and the STT's start and end of speech.

The gate region routes each kind by its chart event to its processor here, at once or, for
held events, when they are released (their ``released_*`` events, :data:`.gate.RELEASED`).
"""

from __future__ import annotations

from typing import Any

from ... import events as ev
from ... import outputs as out
from ..context import DROP_RULES, Context
from ..records import FinalSettled, Trigger
from ..registry import RULES
from ..text import normalized


def _set_interim(cx: Context, e: ev.SttTranscript) -> None:
    turn = cx.turn
    turn.interim = e.text
    turn.interim_language = e.language
    turn.interim_confidence = e.confidence


@RULES.action("process_final", ev.SttFinal)
def process_final(cx: Context, e: ev.SttFinal) -> None:
    """Append a final to the turn (a promoted interim's repeat is dropped once, D24)."""
    take_final(cx, e, starts_turn=False)


@RULES.action("process_final_after_backchannel", ev.SttFinal)
def process_final_after_backchannel(cx: Context, e: ev.SttFinal) -> None:
    """As ``process_final``, for words after a dropped backchannel in its speech (guard
    ``after_backchannel``): the turn starts with them."""
    take_final(cx, e, starts_turn=True)


def take_final(cx: Context, e: ev.SttFinal, *, starts_turn: bool) -> None:
    """Append a final to the turn; ``starts_turn``: it opens the turn's span (now)."""
    cx.update_language(e.language, e.text)
    text = e.text
    cx.note_final(e)
    if not text.strip():  # empty or whitespace: nothing the user said
        cx.raise_("final", e)
        return
    promoted, cx.promoted = cx.promoted, None
    if promoted is not None and normalized(promoted) == normalized(text):
        # the late final of text a commit already promoted from an interim: keep it once
        cx.emit(out.TranscriptDropped(t=cx.now, ref=e.ref, text=text, reason="duplicate",
                                      record=DROP_RULES["duplicate"]))
        cx.raise_("final", e)
        return
    cx.emit(cx.transcript_out(e, "final"))
    if starts_turn:
        # words after a dropped backchannel, in its VAD segment: the turn starts with them
        if cx.speech_start_time is None:
            cx.speech_start_time = cx.now
        cx.ensure_span(cx.now)
    cx.accept_final(e.ref, text, e.confidence, e.word_confidences)
    turn = cx.turn
    turn.last_real_final_time = cx.now
    changed = turn.transcript != turn.preflight
    turn.interim = ""
    turn.preflight = ""
    cx.anchor_at_transcript()
    cx.check_turn_limit(text)
    commit_waited = cx.in_state("commit", "awaiting_final")
    cx.raise_("final", e)
    cx.raise_("final_settled", FinalSettled(changed=changed, commit_waited=commit_waited))


@RULES.action("process_preflight", ev.SttPreflight)
def process_preflight(cx: Context, e: ev.SttPreflight) -> None:
    """A preflight counts for the transcription delay but not as a final (D24)."""
    cx.emit(cx.transcript_out(e, "preflight"))
    cx.update_language(e.language, e.text)
    if not e.text.strip():
        return
    turn = cx.turn
    turn.last_final_time = cx.now
    turn.preflight = (turn.transcript + " " + e.text).lstrip()
    _set_interim(cx, e)
    cx.anchor_at_transcript()
    cx.raise_("preflight", e)


@RULES.action("process_interim", ev.SttInterim)
def process_interim(cx: Context, e: ev.SttInterim) -> None:
    """Report an interim; it is the turn's latest hypothesis."""
    cx.emit(cx.transcript_out(e, "interim"))
    _set_interim(cx, e)


@RULES.action("process_stt_start", ev.SttStartOfSpeech)
def process_stt_start(cx: Context, e: ev.SttStartOfSpeech) -> None:
    """stt mode (the gate's transition says, ``in: mode.stt``): the STT's start of speech
    is the user's."""
    cx.raise_("speech_onset", e)


@RULES.action("process_stt_end", ev.SttEndOfSpeech)
def process_stt_end(cx: Context, e: ev.SttEndOfSpeech) -> None:
    """stt mode (the gate's transition says, ``in: mode.stt``): the STT's end of speech
    commits the turn and asks for a decision (R21). With nothing transcribed yet the
    commitment waits for the utterance's final (R18.9, R26), bound to this utterance: the
    next speech onset ends it (D17): the authority region takes the decision's
    ``decision_declined``."""
    cx.raise_("speech_offset", e)
    cx.request_decision(Trigger(kind="stt_end_of_speech"))


# -- after a transcript (turn region) ------------------------------------------------------


@RULES.guard("decides_on_final")
def decides_on_final(cx: Context, e: Any) -> bool:
    """A final may end the turn: vad mode, or someone committed the turn."""
    return cx.in_state("mode", "vad") or not cx.in_state("authority", "none")


@RULES.action("preempt_final", FinalSettled)
def preempt_final(cx: Context, e: FinalSettled) -> None:
    """Offer preemptive generation when the transcript changed since the last preflight."""
    if e.changed:
        cx.preempt(cx.turn.transcript, cx.turn.mean_confidence())


@RULES.action("preempt_final_at_turn_onset", FinalSettled)
def preempt_final_at_turn_onset(cx: Context, e: FinalSettled) -> None:
    """As ``preempt_final``, reporting the turn's onset (the end of turn's)."""
    if e.changed:
        cx.preempt(cx.turn.transcript, cx.turn.mean_confidence(), turn_onset=True)


@RULES.action("decide_after_final", FinalSettled)
def decide_after_final(cx: Context, e: FinalSettled) -> None:
    """With the user silent (the transition says), a final asks for a decision (a waiting
    commit decides itself, with its own options)."""
    if not e.commit_waited:
        cx.request_decision(Trigger(kind="final_transcript"))


@RULES.guard("preempts_on_preflight")
def preempts_on_preflight(cx: Context, e: Any) -> bool:
    """A preflight is offered for preemption unless manual mode has no commit."""
    return not cx.in_state("mode", "manual") or not cx.in_state("authority", "none")


@RULES.action("preempt_preflight", ev.SttPreflight)
def preempt_preflight(cx: Context, e: ev.SttPreflight) -> None:
    """Offer preemptive generation of the transcript with the preflight."""
    vals = [*cx.turn.confidences, e.confidence]
    cx.preempt(cx.turn.preflight, sum(vals) / len(vals))


@RULES.action("preempt_preflight_at_turn_onset", ev.SttPreflight)
def preempt_preflight_at_turn_onset(cx: Context, e: ev.SttPreflight) -> None:
    """As ``preempt_preflight``, reporting the turn's onset (the end of turn's)."""
    vals = [*cx.turn.confidences, e.confidence]
    cx.preempt(cx.turn.preflight, sum(vals) / len(vals), turn_onset=True)
