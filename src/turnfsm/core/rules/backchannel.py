"""Backchannels (``default`` profile): "uh huh" over agent speech is neither a turn nor an
interruption.

The default profile's gate holds user STT events while the agent speaks (with a VAD
attached) and judges each utterance that began over agent speech when it ends (its VAD end
of speech, or its final after that). It is a backchannel when the turn holds nothing else
and either the detector judged that overlap not an interruption, or (no verdict) its held
finals make a short utterance: at most ``backchannel_max_words`` words, or a phrase of the
language's backchannel list (:mod:`turnfsm.core.eou`). A backchannel's finals are dropped
with the reason ``backchannel`` and a record saying which test they met; the turn it opened
goes back to idle and its onset goes too (``backchannel_dropped``), so the onset never
leaks into the next turn. Without a detector, an utterance that grows past a backchannel while the
agent speaks interrupts: its words are the verdict (``Interruption`` with a ``words``
record), and what is held is released. An utterance still going on when the agent stops is
held until it ends (state ``judging``).

Every choice between dropping and releasing is a guarded transition of the profile's
``judge`` region; a guard that finds a backchannel keeps its reason (``Context.judged``) for
the drop record, so the drop action does not judge again.
"""

from __future__ import annotations

from typing import Any, cast

import attrs

from ... import events as ev
from ... import outputs as out
from ..context import Context
from ..eou import BACKCHANNELS, base_language, is_backchannel_phrase, normalize
from ..registry import RULES
from ..text import count_words
from ..timers import TimerKind
from .gate import trim, trim_kept
from .speech import report_speech_end, report_stream_stop, report_stt_stop
from .streams import interruption_out

#: the seam region a dropped backchannel moves (``backchannel_drop``), read by the guards
_DROP = ("backchannel_drop", frozenset({"dropped"}))
#: region ``utterance_verdict``: each state as the verdict (None: none yet, or the
#: detector's interruption verdict waits for the words, ``awaiting_words``)
_VERDICT: dict[str, bool | None] = {
    "none": None, "interruption": True, "not_interruption": False, "awaiting_words": None}
_UTTER = (("utterance", frozenset({"over_agent"})),
          ("utterance_verdict", frozenset({"none", "interruption", "not_interruption"})))
_AWAIT = ("utterance_verdict", frozenset({"awaiting_words"}))
#: a timer that found no speech past ``backchannel_max_duration`` looks again this much later
#: (while the VAD says the user speaks): about three VAD windows
WORDS_RECHECK = 0.1


def _awaiting(cx: Context) -> bool:
    """The detector's interruption verdict waits for the utterance's words (region
    ``utterance_verdict``, ``awaiting_words``) while the agent is held: once the agent
    stopped with the user still speaking, the verdict stands."""
    return cx.state_of("utterance_verdict") == "awaiting_words" and not (
        cx.user_speaking and not cx.agent_speaking)


def _segment(cx: Context) -> tuple[bool, bool | None]:
    """The latest VAD segment: whether it began over agent speech (region ``utterance``),
    and the verdict on it (the detector's, or its words'; None: none yet, or awaiting its
    words while the agent is held)."""
    state = cx.state_of("utterance_verdict")
    verdict = _VERDICT[state]
    if state == "awaiting_words" and not _awaiting(cx):
        verdict = True  # the agent stopped while the user speaks on: the verdict stands
    return cx.in_state("utterance", "over_agent"), verdict


def _phrase_prefix(text: str, language: str | None) -> bool:
    """``text`` is a backchannel phrase of its language, or the first words of one (an
    interim of "uh huh" reads "uh")."""
    t = normalize(text)
    phrases = BACKCHANNELS.get(base_language(language), frozenset())
    return t in phrases or any(p.startswith(t + " ") for p in phrases)


def _heard(cx: Context, e: Any = None) -> str:
    """What the utterance said so far: the held finals, then the latest interim after them
    (``e``'s text when it is that interim or a final not held yet)."""
    text = _held_text(cx)
    interim = ""
    for h in cx.held:
        if isinstance(h, ev.SttFinal):
            interim = ""
        elif isinstance(h, ev.SttInterim):
            interim = h.text.strip()
    if isinstance(e, ev.SttFinal) and not (cx.held and cx.held[-1] is e):
        return f"{text} {e.text.strip()}".strip()
    if isinstance(e, ev.SttInterim):
        interim = e.text.strip()
    return f"{text} {interim}".strip()


def _turn_has_words(cx: Context) -> bool:
    """The turn holds words of its own (a final or a preflight): an utterance joins it."""
    return bool(cx.turn.transcript or cx.turn.preflight)


def _held_text(cx: Context, held: list[ev.SttEvent] | None = None) -> str:
    return " ".join(h.text.strip() for h in (cx.held if held is None else held)
                    if isinstance(h, ev.SttFinal) and h.text.strip())


def _short(cx: Context, text: str, language: str | None) -> str | None:
    words = count_words(text)
    limit = cx.options.backchannel_max_words
    if words <= limit:
        return f"{words} word(s) over agent speech (backchannel_max_words {limit})"
    if is_backchannel_phrase(text, language or cx.last_language):
        return "a backchannel phrase over agent speech"
    return None


def backchannel_reason(cx: Context, text: str, language: str | None, *,
                       ended: bool) -> str | None:
    """Why the utterance ``text`` (its speech ``ended`` or not) is a backchannel, or None."""
    over_agent, verdict = _segment(cx)
    if not over_agent or _turn_has_words(cx) or not text.strip():
        return None
    if cx.in_state("mode", "manual") or cx.in_state("mode", "realtime"):
        return None  # the host commits: what the user says is the user's
    if verdict is True:
        return None
    if verdict is False:
        return "the interruption detector judged it not an interruption"
    if not ended:
        return None
    if _awaiting(cx):  # the detector called it an interruption; a phrase overrules that
        return (OVERRULED if is_backchannel_phrase(text, language or cx.last_language)
                else None)
    return _short(cx, text, language)


#: the drop record's reason when a backchannel phrase overrules the detector
OVERRULED = ("a backchannel phrase over agent speech, which overrules the interruption "
             "detector's verdict on its duration (the agent was held for its words)")


def _utterance(cx: Context, e: Any) -> str:
    """The held finals with ``e``'s text, whether the gate held ``e`` already (it is the last
    held event) or not."""
    held = cx.held[:-1] if cx.held and cx.held[-1] is e else cx.held
    extra = e.text if isinstance(e, ev.SttTranscript) else ""
    return f"{_held_text(cx, held)} {extra}".strip()


def _judged(cx: Context, why: str | None) -> bool:
    """Keep a guard's finding for the drop action that follows it (data, not a choice)."""
    if why is not None:
        cx.judged = why
    return why is not None


def _reason(cx: Context) -> str:
    """The reason the guard of the firing transition found (taken once)."""
    why, cx.judged = cx.judged, None
    return why or "backchannel"


def _exceeds(cx: Context, e: Any) -> bool:
    """The held finals with ``e`` are more than a backchannel (speech begun over the agent)."""
    over_agent, verdict = _segment(cx)
    if not over_agent or verdict is not None:
        return False
    text = _utterance(cx, e)
    return bool(text) and _short(cx, text, getattr(e, "language", None)) is None


def _speech_end(cx: Context, e: Any) -> float:
    """When the speech of the segment ending with ``e`` ended (a VAD end: ``silence +
    inference`` ago; the VAD stream's end: now)."""
    if isinstance(e, ev.VadEndOfSpeech):
        return cx.now - e.silence_duration - e.inference_duration
    return cx.now


def wordless_backchannel_reason(cx: Context, e: Any) -> str | None:
    """Why the VAD segment ending with ``e`` is a backchannel although no words can judge it
    (no STT attached: a speech-to-speech stack), or None. It began over agent speech, no
    earlier speech of the turn precedes it, and either the detector judged it not an
    interruption, or (no verdict) it lasted at most ``backchannel_max_duration``."""
    over_agent, verdict = _segment(cx)
    if not over_agent or cx.in_state("stt_input", "attached"):
        return None
    if cx.in_state("mode", "manual") or cx.in_state("mode", "realtime"):
        return None  # the host commits: what the user says is the user's
    onset = cx.segment_onset
    start = cx.turn.user_turn_start
    if onset is None or (start is not None and start < cx.onset_at(onset) - 1e-6):
        return None  # the turn holds speech from before it: this joins the turn
    if verdict is True:
        return None
    if verdict is False:
        return "the interruption detector judged it not an interruption"
    limit = cx.options.backchannel_max_duration
    duration = _speech_end(cx, e) - onset
    if duration <= limit:
        return (f"{duration:.2f} s of speech over agent speech, no words to judge "
                f"(backchannel_max_duration {limit:g})")
    return None


@RULES.guard("wordless_backchannel", needs=_UTTER)
def wordless_backchannel(cx: Context, e: Any) -> bool:
    """The speech that just ended, with no STT to transcribe it, is a backchannel (see
    :func:`wordless_backchannel_reason`)."""
    return _judged(cx, wordless_backchannel_reason(cx, e))


@RULES.action("drop_wordless_backchannel")
def drop_wordless_backchannel(cx: Context, e: Any) -> None:
    """Drop the wordless backchannel that just ended: a ``TranscriptDropped`` with no text
    records it (reason ``backchannel``, the guard's finding); the turn it opened goes with
    it."""
    why = _reason(cx)
    ended = _speech_end(cx, e)
    cx.emit(out.TranscriptDropped(
        t=cx.now, ref=e.ref if isinstance(e, ev.Input) else None, text="",
        reason="backchannel", record=out.DropRecord(rule="P3", detail=why, ended_at=ended)))
    held, cx.held = cx.held, []  # speech markers only (no STT: nothing else is held)
    _drop(cx, held, why)


@RULES.guard("backchannel_ended", needs=_DROP)
def backchannel_ended(cx: Context, e: Any) -> bool:
    """The speech that just ended was a dropped backchannel and nothing after it opened a
    turn: its end asks for no decision."""
    return after_backchannel(cx, e) and not _turn_has_words(cx)


@RULES.guard("after_backchannel", needs=_DROP)
def after_backchannel(cx: Context, e: Any) -> bool:
    """A backchannel of the current speech was dropped (region ``backchannel_drop``) and
    nothing after it opened the turn's span: the speech's end opens no turn."""
    return cx.in_state("backchannel_drop", "dropped") and not cx.turn.span_open


@RULES.guard("verdict_interrupts")
def verdict_interrupts(cx: Context, e: Any) -> bool:
    """The detector's verdict says the overlap is an interruption."""
    return isinstance(e, ev.OverlapVerdict) and e.is_interruption


@RULES.guard("holds_over_agent")
def holds_over_agent(cx: Context, e: Any) -> bool:
    """User speech over the agent is judged: a detector is effective, or a VAD is attached
    and turns are detected automatically (in manual and realtime modes the host's commit
    decides, and nothing it says is a backchannel)."""
    return cx.interruption_effective or (
        cx.in_state("vad_input", "attached")
        and (cx.in_state("mode", "vad") or cx.in_state("mode", "stt")))


@RULES.guard("backchannel_final", needs=_UTTER)
def backchannel_final(cx: Context, e: Any) -> bool:
    """The final, with what is held, is a backchannel whose speech ended (see the module)."""
    if not isinstance(e, ev.SttFinal):
        return False
    return _judged(cx, backchannel_reason(cx, _utterance(cx, e), e.language,
                                          ended=not cx.user_speaking))


@RULES.guard("words_interrupt", needs=_UTTER)
def words_interrupt(cx: Context, e: Any) -> bool:
    """No detector judges this overlap, and its words are more than a backchannel."""
    return not cx.interruption_effective and _exceeds(cx, e)


@RULES.guard("words_exceed", needs=_UTTER)
def words_exceed(cx: Context, e: Any) -> bool:
    """The utterance being judged is more than a backchannel: it is the user's turn."""
    return _exceeds(cx, e)


@RULES.guard("held_backchannel", needs=_UTTER)
def held_backchannel(cx: Context, e: Any) -> bool:
    """The speech just ended, and what is held of it is a backchannel."""
    return _judged(cx, backchannel_reason(cx, _held_text(cx), None, ended=True))


@RULES.guard("judged_backchannel", needs=_UTTER)
def judged_backchannel(cx: Context, e: Any) -> bool:
    """The detector judged the held utterance not an interruption, and the turn holds no
    words of its own: it is dropped whole (nothing trimmed)."""
    return (_segment(cx)[1] is False and bool(_held_text(cx))
            and not _turn_has_words(cx))


@RULES.guard("trimmed_backchannel", needs=_UTTER)
def trimmed_backchannel(cx: Context, e: Any) -> bool:
    """The agent stopped: what is held minus the head inside its ignore window is a
    backchannel (its speech ended, or the verdict says so)."""
    kept = trim_kept(cx, cx.window)
    return _judged(cx, backchannel_reason(cx, _held_text(cx, kept), None,
                                          ended=not cx.user_speaking))


@RULES.guard("still_judging", needs=_UTTER)
def still_judging(cx: Context, e: Any) -> bool:
    """The agent stopped while an utterance begun over it goes on, and it may still be a
    backchannel."""
    over_agent, verdict = _segment(cx)
    if not (cx.user_speaking and over_agent and not _turn_has_words(cx)):
        return False
    if verdict is False and cx.in_state("stt_input", "detached"):
        return True  # no words will come: judged a backchannel, dropped when it ends
    if verdict is not None:
        return False  # judged: dropped (not an interruption) or released now
    text = _held_text(cx)
    return not text or _short(cx, text, None) is not None


def _drop(cx: Context, finals: list[ev.SttEvent], why: str) -> None:
    for h in finals:
        if isinstance(h, ev.SttFinal) and h.text.strip():
            cx.emit(out.TranscriptDropped(
                t=cx.now, ref=h.ref, text=h.text, reason="backchannel",
                record=out.DropRecord(rule="P3", detail=why, ended_at=cx.last_speaking_time)))
    cx.turn.interim = ""
    cx.segment_final = True  # its final came: nothing of it is due (final_wait)
    # a verdict-covered overlap whose words are gone stops counting as over the agent while
    # the user goes on (region utterance, on backchannel_dropped)
    cx.raise_("backchannel_dropped")


@RULES.action("drop_backchannel", ev.SttFinal)
def drop_backchannel(cx: Context, e: ev.SttFinal) -> None:
    """Drop a backchannel final that passed the gate (and what is held, if anything) with
    its record (the guard's finding); the turn it opened goes with it."""
    why = _reason(cx)
    held, cx.held = cx.held, []
    _drop(cx, [*held, e], why)


@RULES.action("drop_held_backchannel")
def drop_held_backchannel(cx: Context, e: Any) -> None:
    """Drop what is held, a backchannel (the guard's finding is the record's reason)."""
    why = _reason(cx)
    held, cx.held = cx.held, []
    _drop(cx, held, why)


@RULES.action("drop_judged_held")
def drop_judged_held(cx: Context, e: Any) -> None:
    """The agent stopped and the detector judged the held utterance not an interruption:
    drop it whole, before any trim."""
    held, cx.held = cx.held, []
    cx.window = None
    _drop(cx, held, "the interruption detector judged it not an interruption")


@RULES.action("drop_trimmed_backchannel")
def drop_trimmed_backchannel(cx: Context, e: Any) -> None:
    """The agent stopped: trim what is held (the ignore window) and drop the rest, a
    backchannel (the guard's finding is the record's reason)."""
    why = _reason(cx)
    kept = trim(cx, cx.window)
    cx.window = None
    _drop(cx, kept, why)


@RULES.action("forget_window")
def forget_window(cx: Context, e: Any) -> None:
    """The agent stopped with nothing held: its ignore window has nothing to trim."""
    cx.window = None


@RULES.action("trim_held")
def trim_held(cx: Context, e: Any) -> None:
    """The agent stopped while the user goes on: trim what is held (the ignore window) and
    keep holding the rest until the utterance ends."""
    cx.held = trim(cx, cx.window)
    cx.window = None


@RULES.action("interrupt_by_words", ev.SttTranscript)
def interrupt_by_words(cx: Context, e: ev.SttTranscript) -> None:
    """Without a detector, an utterance over agent speech longer than a backchannel is an
    interruption: report it (its record names the words and the agent's start: the judge
    runs this only while the gate holds and the agent speaks, its state ``idle``)."""
    onset = cx.segment_onset
    # ``e`` is held already: a final is among the held finals, an interim is not
    extra = "" if isinstance(e, ev.SttFinal) else e.text
    words = count_words(f"{_held_text(cx)} {extra}")
    cx.verdict_interruption = True
    cx.raise_("words_interrupted")  # region utterance_verdict
    cx.emit(out.Interruption(
        t=cx.now, ref=e.ref, detected_at=cx.now, overlap_started_at=onset, probability=1.0,
        record=out.InterruptionRecord(
            probability=1.0, overlap_started_at=onset, detected_at=cx.now,
            detection_delay=0.0, total_duration=round(cx.now - onset, 6) if onset else 0.0,
            num_requests=0, agent_started_at=cx.agent_started_at,
            in_backchannel_boundary=cx.in_state("boundary", "active"), source="words",
            words=words)))


@RULES.action("forget_backchannel")
def forget_backchannel(cx: Context, e: Any) -> None:
    """The turn a backchannel opened was none: its data and onset go (a new VAD segment sets
    its own onset; words that follow in the same segment, their arrival). A skip_reply commit
    already finalized for the turn stays in force (I10): the backchannel opened no turn of its
    own, so the next delivery is still that turn's."""
    sticky = cx.turn.skip_reply_sticky
    cx.new_turn(cleared=False)
    cx.turn.skip_reply_sticky = sticky
    cx.emit(out.UserTurnDropped(t=cx.now, reason="backchannel"))
    cx.speech_start_time = None
    cx.onset_floor = cx.now  # its speech run never re-derives the onset of the next turn
    # until new speech starts (region backchannel_drop), the backchannel's segment's end
    # opens no turn, and words that follow start one when they are transcribed


@RULES.action("report_vad_end_after_backchannels", ev.VadEndOfSpeech)
def report_vad_end_after_backchannels(cx: Context, e: ev.VadEndOfSpeech) -> None:
    """As ``report_vad_end``, for the end of a segment whose words were a dropped backchannel
    (and nothing after it, guard ``after_backchannel``): it opens no turn."""
    report_speech_end(cx, e, open_turn=False)


@RULES.action("report_stream_end_after_backchannels")
def report_stream_end_after_backchannels(cx: Context, e: Any) -> None:
    """As ``report_stream_end``, for the end of a segment whose words were a dropped
    backchannel (guard ``after_backchannel``): it opens no turn."""
    report_stream_stop(cx, open_turn=False)


@RULES.action("report_stt_end_after_backchannels")
def report_stt_end_after_backchannels(cx: Context, e: Any) -> None:
    """As ``report_stt_end``, for the STT's end of speech whose words were a dropped
    backchannel (guard ``after_backchannel``): it opens no turn's span."""
    report_stt_stop(cx, open_turn=False)


# -- the words overrule the detector (default profile, region utterance_verdict) -------------
#
# A detector that judges by the overlap's duration calls a long "mhm" over the agent an
# interruption. While the agent is held (its audio paused by the adapter, or simply still
# speaking), the utterance's words may overrule that verdict: it is not reported until the
# words show more than a backchannel phrase (state ``awaiting_words``). It is reported when
# an interim or final is not (the start of) a backchannel phrase, when the speech goes on
# past ``backchannel_max_duration`` (timer ``words_overdue``: no STT gives words that early),
# or when the agent stops while the user still speaks; a backchannel phrase whose speech
# ended is dropped instead.


@RULES.guard("words_may_overrule", needs=_UTTER)
def words_may_overrule(cx: Context, e: Any) -> bool:
    """The detector's interruption verdict ``e`` may still be overruled by the words: an
    STT will transcribe the utterance (attached, turns detected automatically), it began
    over the agent, which still speaks, the turn holds no words of its own, and what it
    said so far is nothing or the start of a backchannel phrase."""
    if not (cx.in_state("stt_input", "attached") and cx.agent_speaking
            and (cx.in_state("mode", "vad") or cx.in_state("mode", "stt"))):
        return False
    if not cx.in_state("utterance", "over_agent") or _turn_has_words(cx):
        return False
    heard = _heard(cx)
    return not heard or _phrase_prefix(heard, cx.last_language)


@RULES.guard("words_not_backchannel", needs=_AWAIT)
def words_not_backchannel(cx: Context, e: Any) -> bool:
    """The transcript ``e`` shows the utterance whose verdict is awaited is more than a
    backchannel phrase: not the start of one (a final whose speech ended: not one)."""
    heard = _heard(cx, e)
    if not heard:
        return False
    language = getattr(e, "language", None) or cx.last_language
    if isinstance(e, ev.SttFinal) and not cx.user_speaking:
        return not is_backchannel_phrase(heard, language)
    return not _phrase_prefix(heard, language)


def _awaited_onset(cx: Context) -> float | None:
    """The onset of the utterance whose verdict is awaited: the verdict's, else the VAD
    segment's (None: neither known)."""
    v = cx.awaited_verdict
    if v is not None and v.overlap_started_at is not None:  # data: the verdict's onset
        return v.overlap_started_at
    return cx.segment_onset


@RULES.guard("speech_outlasts_backchannel", needs=_AWAIT)
def speech_outlasts_backchannel(cx: Context, e: Any) -> bool:
    """The utterance whose verdict is awaited was heard (a VAD window with speech) more than
    ``backchannel_max_duration`` after its onset: longer than a backchannel."""
    onset, last = _awaited_onset(cx), cx.last_speaking_time
    return onset is not None and last is not None and \
        last > onset + cx.options.backchannel_max_duration + 1e-9


def _words_due(cx: Context) -> float:
    """When the awaited verdict's speech has outlasted a backchannel (at least a window
    after ``backchannel_max_duration`` from its onset), from now."""
    onset = _awaited_onset(cx)
    onset = cx.now if onset is None else onset  # data: no onset known
    return max(0.0, onset + cx.options.backchannel_max_duration + WORDS_RECHECK - cx.now)


@RULES.action("await_words", ev.OverlapVerdict)
def await_words(cx: Context, e: ev.OverlapVerdict) -> None:
    """Keep the detector's interruption verdict back until the words can judge it (region
    ``utterance_verdict``, ``awaiting_words``); its timer looks whether the speech outlasts
    a backchannel."""
    # reported later, it keeps the instant the detector decided (its arrival, if unstamped)
    cx.awaited_verdict = e if e.detected_at is not None else attrs.evolve(e, detected_at=cx.now)
    cx.verdict_interruption = False  # reported by report_awaited_interruption
    cx.verdict_epoch += 1
    cx.arm(TimerKind.WORDS_OVERDUE, _words_due(cx), cx.verdict_epoch)


@RULES.action("check_words_later")
def check_words_later(cx: Context, e: Any) -> None:
    """The speech has not outlasted a backchannel yet and goes on: look again shortly."""
    cx.verdict_epoch += 1
    cx.arm(TimerKind.WORDS_OVERDUE, WORDS_RECHECK, cx.verdict_epoch)


@RULES.action("report_awaited_interruption")
def report_awaited_interruption(cx: Context, e: Any) -> None:
    """The awaited verdict stands: report the detector's interruption now (its record keeps
    the detector's times; the output's ``t`` is now)."""
    v = cast(ev.OverlapVerdict, cx.awaited_verdict)
    cx.awaited_verdict = None
    cx.verdict_interruption = True
    cx.emit(interruption_out(cx, v))


@RULES.action("forget_awaited")
def forget_awaited(cx: Context, e: Any) -> None:
    """The awaited verdict lapsed (the words were a backchannel, the agent is silent, or a
    new segment is judged anew)."""
    cx.awaited_verdict = None


@RULES.guard("ended_speech_outlasts_backchannel", needs=_AWAIT)
def ended_speech_outlasts_backchannel(cx: Context, e: Any) -> bool:
    """The VAD end of speech ``e`` says the utterance whose verdict is awaited lasted more
    than ``backchannel_max_duration`` from its onset (a host that sends no VAD windows: the
    timer had nothing to read)."""
    onset = _awaited_onset(cx)
    return onset is not None and \
        _speech_end(cx, e) > onset + cx.options.backchannel_max_duration + 1e-9


@RULES.guard("speech_still_heard", needs=_AWAIT)
def speech_still_heard(cx: Context, e: Any) -> bool:
    """VAD windows with speech are still arriving (the last within two looks): worth looking
    again; otherwise (a pause, or a host that sends no windows) the words or the end of
    speech decide, and no timer keeps waking the engine."""
    last = cx.last_speaking_time
    return last is not None and last >= cx.now - 2 * WORDS_RECHECK - 1e-9
