"""The user turn and its end-of-turn decision (turn and authority regions).

At most one decision is pending (:class:`~turnfsm.core.records.Wait`). Its first step runs
right after the trigger (a deferred step): it asks the end-of-turn model (``predicting``)
or arms the endpointing deadline (``waiting``), measured from the anchor (the last speech).
When the wait is over the end of turn is delivered (``delivering``) and the host's answer
is awaited: accepted, the turn's data is replaced whole; refused, the turn goes on.
"""

from __future__ import annotations

from typing import Any

from ... import events as ev
from ... import outputs as out
from ..context import Context
from ..eou import BUILTIN_THRESHOLD, end_of_turn_verdict, has_language
from ..records import Trigger, Wait, WaitRef
from ..registry import RULES
from ..timers import TimerKind
from .commit import abandon_decision

# -- guards --------------------------------------------------------------------------------


@RULES.guard("answer_accepts")
def answer_accepts(cx: Context, e: Any) -> bool:
    """The host accepted the end of turn."""
    return isinstance(e, ev.EndOfTurnAnswered) and e.accepted


@RULES.guard("speech_went_on")
def speech_went_on(cx: Context, e: Any) -> bool:
    """New speech started during the wait and moved the anchor: it belongs to the next turn.
    (A late window or transcript of the delivered speech moves the anchor too, but starts
    nothing: that speech is delivered and its onset goes with it, I7/I23.)"""
    w = cx.wait
    return w is not None and cx.onsets != w.onsets and cx.last_speaking_time != w.anchor


@RULES.guard("decision_pending")
def decision_pending(cx: Context, e: Any) -> bool:
    """An end-of-turn decision is pending."""
    return cx.wait is not None


@RULES.guard("manual_decision")
def manual_decision(cx: Context, e: Any) -> bool:
    """A manual commit's decision is pending: new speech does not cancel it (D16)."""
    return cx.in_state("mode", "manual") and cx.in_state("authority", "manual_committed")


@RULES.guard("may_decide")
def may_decide(cx: Context, e: Any) -> bool:
    """There is something to decide: a transcript, no STT, or manual mode."""
    return not (cx.in_state("stt_input", "attached") and not cx.turn.transcript
                and not cx.in_state("mode", "manual"))


@RULES.guard("model_applies")
def model_applies(cx: Context, e: Trigger) -> bool:
    """The end-of-turn model refines the delay (never for a commit, D18)."""
    return (cx.eou_model and bool(cx.turn.transcript) and not cx.in_state("mode", "manual")
            and not e.manual)


@RULES.guard("builtin_model_applies")
def builtin_model_applies(cx: Context, e: Trigger) -> bool:
    """No model from the host: the built-in rules refine the delay (not for a commit)."""
    return (not cx.eou_model and bool(cx.turn.transcript)
            and not cx.in_state("mode", "manual") and not e.manual)


@RULES.guard("answer_current")
def answer_current(cx: Context, e: Any) -> bool:
    """The model's answer is for the pending wait."""
    return isinstance(e, ev.EouModelAnswered) and cx.wait is not None and \
        cx.wait.wait_id == e.request_id


@RULES.guard("ends_on_vad_end")
def ends_on_vad_end(cx: Context, e: Any) -> bool:
    """A VAD end of speech asks for a decision: vad mode, or stt mode once committed."""
    return cx.in_state("mode", "vad") or (
        cx.in_state("mode", "stt") and (cx.in_state("authority", "stt_committed")
                                        or cx.in_state("authority", "stt_awaiting_final")))


# -- the wait ------------------------------------------------------------------------------


@RULES.action("request_decision")
def request_decision(cx: Context, e: Any) -> None:
    """Ask for an end-of-turn decision."""
    cx.request_decision(Trigger(kind="vad_end_of_speech"))


@RULES.action("open_turn")
def open_turn(cx: Context, e: Any) -> None:
    """The turn starts at the known onset of its speech (unknown: metrics stay absent, D4)."""
    if cx.turn.user_turn_start is None and cx.speech_start_time is not None:
        cx.turn.user_turn_start = cx.speech_start_time


@RULES.action("replace_wait")
def replace_wait(cx: Context, e: Any) -> None:
    """A new trigger replaces the pending wait (counted in the decision record)."""
    cx.turn.waits_replaced += 1


@RULES.action("start_wait", Trigger)
def start_wait(cx: Context, trig: Trigger) -> None:
    """Start the end-of-turn wait; its first step follows at once (deferred)."""
    skip = trig.skip_reply or cx.turn.skip_reply_sticky
    wid = cx.next_wait_id()
    turn = cx.turn
    cx.wait = Wait(wid, cx.last_speaking_time, turn.last_final_time, turn.user_turn_start,
                   skip, trig.manual, trig.kind, cx.now, turn.waits_replaced,
                   turn.waits_cancelled, onsets=cx.onsets)
    cx.raise_("wait_begins", WaitRef(wid))
    cx.raise_("decision_started", trig)


@RULES.action("decline_decision", Trigger)
def decline_decision(cx: Context, trig: Trigger) -> None:
    """Nothing to decide (or the final of speech already heard is due): say so."""
    cx.raise_("decision_declined", trig)


@RULES.guard("manual_trigger")
def manual_trigger(cx: Context, e: Any) -> bool:
    """The decision was asked for by a commit."""
    return isinstance(e, Trigger) and e.manual


@RULES.guard("stt_end_trigger")
def stt_end_trigger(cx: Context, e: Any) -> bool:
    """The decision was asked for by the STT's end of speech."""
    return isinstance(e, Trigger) and e.kind == "stt_end_of_speech"


@RULES.guard("wait_current")
def wait_current(cx: Context, e: Any) -> bool:
    """The wait that raised this queued event is still the pending one."""
    return isinstance(e, WaitRef) and cx.wait is not None and cx.wait.wait_id == e.wait_id


def _first_step(cx: Context) -> Wait:
    """What every first step of a wait does: take the delays in force, open the span."""
    w = cx.wait
    assert w is not None
    w.min_delay = cx.endpointing.min_delay
    w.max_delay = cx.endpointing.max_delay
    cx.ensure_span()
    return w


@RULES.action("ask_model", WaitRef)
def ask_model(cx: Context, e: WaitRef) -> None:
    """The wait's first step with the host's end-of-turn model: ask it."""
    w = _first_step(cx)
    w.model_asked_at, w.model_language = cx.now, cx.last_language
    cx.emit(out.EouModelRequest(t=cx.now, request_id=e.wait_id, language=cx.last_language,
                                transcript=cx.turn.transcript, agent_text=cx.agent_text,
                                word_confidences=tuple(cx.turn.word_confidences)))


@RULES.action("answer_builtin", WaitRef)
def answer_builtin(cx: Context, e: WaitRef) -> None:
    """The wait's first step without a host model: the built-in rules answer at once (a
    language without word lists: unsupported, so ``min_delay``, and the record says so)."""
    w = _first_step(cx)
    w.model_asked_at, w.model_language = cx.now, cx.last_language
    w.builtin = True
    p, w.cue = end_of_turn_verdict(cx.turn.transcript, cx.last_language,
                                   confidences=cx.turn.word_confidences,
                                   agent_text=cx.agent_text)
    cx.fire("model_answered", ev.EouModelAnswered(  # the input, as a host model answers
        t=cx.now, request_id=e.wait_id, probability=p, threshold=BUILTIN_THRESHOLD,
        supported=has_language(cx.last_language)))


def model_unlikely(e: ev.EouModelAnswered) -> bool:
    """The model says the turn is unlikely over (any failure: it says nothing, D20)."""
    return bool(e.supported and not e.failed and e.threshold is not None
                and e.probability is not None and e.probability < e.threshold)


def _remaining(cx: Context, w: Wait, delay: float) -> float:
    """What is left of ``delay`` counted from the wait's anchor (the last speech)."""
    return delay + (w.anchor - cx.now) if w.anchor is not None else delay


@RULES.guard("delay_left")
def delay_left(cx: Context, e: Any) -> bool:
    """The delay the wait takes now (its first step without a model: ``min_delay``; the
    model's answer: ``max_delay`` when the turn is unlikely over, else ``min_delay``) ends
    after now, counted from the anchor (at least the session's pauses' floor, region
    pause_memory); otherwise the wait is over at once."""
    w = cx.wait
    if w is None:
        return False
    if isinstance(e, ev.EouModelAnswered):
        delay = cx.endpointing.max_delay if model_unlikely(e) else w.min_delay
    else:
        delay = cx.endpointing.min_delay
    return _remaining(cx, w, max(delay, w.pause_floor)) > 0


@RULES.action("take_min_delay", WaitRef)
def take_min_delay(cx: Context, e: WaitRef) -> None:
    """The wait's first step without a model: it waits ``min_delay`` from the anchor (or the
    session's pauses' floor, when region pause_memory set one)."""
    w = _first_step(cx)
    w.delay = max(w.min_delay, w.pause_floor)
    if w.pause_floor > w.min_delay:  # data: the record names the session's pauses
        w.delay_reason = "session_pauses"


@RULES.action("take_answer", ev.EouModelAnswered)
def take_answer(cx: Context, e: ev.EouModelAnswered) -> None:
    """The model answered: the wait takes ``max_delay`` if the turn is unlikely over, else
    ``min_delay`` (any failure: ``min_delay``, D20), or the session's pauses' floor when
    region pause_memory set a longer one; the verdict goes to its record."""
    w = cx.wait
    assert w is not None
    w.max_delay = cx.endpointing.max_delay
    unlikely = model_unlikely(e)
    w.delay = w.max_delay if unlikely else w.min_delay
    if unlikely:
        w.delay_reason = "max_delay"
    if w.pause_floor > w.delay:  # data: the record names the session's pauses
        w.delay, w.delay_reason = w.pause_floor, "session_pauses"
    asked = w.model_asked_at if w.model_asked_at is not None else cx.now
    w.verdict = out.ModelVerdict(language=w.model_language, supported=e.supported,
                                 probability=e.probability, threshold=e.threshold,
                                 failed=e.failed, latency=round(cx.now - asked, 6),
                                 model="builtin" if w.builtin else "host",
                                 cue=w.cue if w.builtin and e.supported else None)


@RULES.action("arm_wait_deadline")
def arm_wait_deadline(cx: Context, e: Any) -> None:
    """Arm the wait's deadline: its delay from the anchor (the transition says some is left
    and the session runs)."""
    w = cx.wait
    assert w is not None
    cx.arm(TimerKind.EOU_DEADLINE, _remaining(cx, w, w.delay), w.wait_id)


@RULES.action("close_early")
def close_early(cx: Context, e: Any) -> None:
    """Closing skips what is left of the wait (R4): its record says so."""
    w = cx.wait
    assert w is not None
    w.closed_early = True


@RULES.action("end_wait")
def end_wait(cx: Context, e: Any) -> None:
    """The wait's first step found it over: it ends (queued ``wait_due``)."""
    cx.raise_("wait_due")


@RULES.action("end_wait_soon")
def end_wait_soon(cx: Context, e: Any) -> None:
    """The model's answer found the wait over: it ends (queued ``wait_due_soon``)."""
    w = cx.wait
    assert w is not None
    _due_soon(cx, w.wait_id)


def _due_soon(cx: Context, wait_id: int) -> None:
    cx.raise_("wait_due_soon", WaitRef(wait_id))


@RULES.action("wait_due_now")
def wait_due_now(cx: Context, e: Any) -> None:
    """Closing ends a running wait at once (R4)."""
    w = cx.wait
    assert w is not None  # the turn region is waiting
    w.closed_early = True
    _due_soon(cx, w.wait_id)


@RULES.action("cancel_wait")
def cancel_wait(cx: Context, e: Any) -> None:
    """Drop the pending decision (its timer dies with it; the turn region was predicting or
    waiting)."""
    assert cx.wait is not None
    cx.turn.waits_cancelled += 1
    cx.emit(out.WaitCancelled(t=cx.now, wait_id=cx.wait.wait_id))
    cx.wait = None


# -- delivery and the host's answer ----------------------------------------------------------


_REASONS: dict[str, out.DelayReason] = {"max_delay": "max_delay",
                                         "session_pauses": "session_pauses"}


@RULES.action("deliver_end_of_turn")
def deliver_end_of_turn(cx: Context, e: Any) -> None:
    """Emit the end of turn; metrics are all set or all absent (D4)."""
    w = cx.wait
    assert w is not None
    started = stopped = tdelay = eou_delay = None
    if (w.last_final is not None and w.anchor is not None and w.turn_start is not None
            and w.turn_start <= w.anchor <= cx.now):
        started, stopped = w.turn_start, w.anchor
        tdelay = max(w.last_final - w.anchor, 0.0)
        eou_delay = cx.now - w.anchor
    turn = cx.turn
    ep = cx.endpointing_options
    record = out.DecisionRecord(
        trigger=w.trigger, anchor=w.anchor, wait_started_at=w.started_at, delay=w.delay,
        delay_reason=_REASONS.get(w.delay_reason, "min_delay"), session_pause=w.session_pause
        if w.delay_reason == "session_pauses" else None,
        model=w.verdict, endpointing_mode=ep.mode, min_delay=w.min_delay,
        max_delay=w.max_delay, rearmed=w.rearmed, cancelled=w.cancelled,
        closed_early=w.closed_early, skip_reply=w.skip_reply, options=cx.options)
    cx.emit(out.EndOfTurn(t=cx.now, new_transcript=turn.transcript,
                          transcript_confidence=turn.mean_confidence(), skip_reply=w.skip_reply,
                          started_speaking_at=started, stopped_speaking_at=stopped,
                          transcription_delay=tdelay, end_of_turn_delay=eou_delay,
                          decision=record, stt_request_ids=tuple(turn.request_ids)))
    cx.raise_("turn_delivered")


@RULES.action("accept_turn")
def accept_turn(cx: Context, e: Any) -> None:
    """The host took the turn: a new one starts, and no later turn starts before now (I7:
    speech that goes on through the delivery starts the next turn at it)."""
    cx.new_turn(cleared=False)
    cx.wait = None
    cx.raise_onset_floor()


@RULES.action("forget_speech")
def forget_speech(cx: Context, e: Any) -> None:
    """The delivered speech's onset goes with it (D4, I7: the next turn's start is captured
    when it opens, from speech after the delivery). Its anchor keeps the reference's rule
    (R32, spec 6.3): it goes only if no speech moved it during the wait, so the next end of
    turn is timed from the user's real last speech. Speech that started during the wait
    keeps both (transition ``speech_went_on``)."""
    cx.speech_start_time = None
    w = cx.wait
    assert w is not None  # the turn region was delivering
    if cx.last_speaking_time == w.anchor:
        cx.last_speaking_time = None


@RULES.action("refuse_turn")
def refuse_turn(cx: Context, e: Any) -> None:
    """The host refused the turn: it goes on."""
    cx.wait = None


@RULES.action("drop_closed_turn")
def drop_closed_turn(cx: Context, e: Any) -> None:
    """A turn refused at close is dropped (D28)."""
    cx.drop_turn("closed")


@RULES.action("clear_turn")
def clear_turn(cx: Context, e: Any) -> None:
    """Discard the turn (D1-D3: its decision, start and turn-limit count go with it)."""
    cx.drop_turn("clear_user_turn")
    abandon_decision(cx)
    cx.new_turn(cleared=True)
    cx.onset_floor = cx.now  # nothing before the clear starts a later turn (D2, I7)


@RULES.action("turn_after_clear")
def turn_after_clear(cx: Context, e: Any) -> None:
    """Speech that goes on after a clear starts a new turn now (the transition says the
    user speaks)."""
    cx.speech_start_time = cx.now
    cx.ensure_span(cx.now)
