"""The session's own pauses (region ``pause_memory`` of the ``default`` profile).

A mid-turn pause is one after which the same turn went on: speech resumed while an
automatic end-of-turn wait ran, and cancelled it. Its length is counted from the wait's
anchor (the last speech heard) to the resumed speech being reported, the same clock the
wait's delay runs on, so it is exactly how long that wait would have had to last. The
latest ``pause_memory`` of them are remembered; a later automatic wait lasts at least the
longest of them plus ``pause_margin``, never more than ``max_delay`` (the wait the rules give
an utterance they judge unfinished: a turn that looks finished never waits longer than one
that does not). A commit's wait is never lengthened, nor learned from.
"""

from __future__ import annotations

from typing import Any

from ... import events as ev
from ..context import Context
from ..records import WaitRef
from ..registry import RULES
from .turn import model_unlikely

#: How many mid-turn pauses the session must have heard before they lengthen a wait. One
#: pause is what the text rules are for (it followed words they judged unfinished, or it
#: was shorter than the wait): lengthening every later wait on it costs every complete turn
#: after it the pause's length (measured: p90 latency 0.74 -> 1.31 s on the corpus for one
#: cut-in fewer). A second one says the user is one who pauses inside turns.
MIN_PAUSES = 2


def _remembered(cx: Context) -> list[float]:
    """The latest ``pause_memory`` mid-turn pauses of the session (none until it has heard
    ``MIN_PAUSES``)."""
    n = cx.options.pause_memory
    return cx.pauses[-n:] if n and len(cx.pauses) >= MIN_PAUSES else []


def _floor(cx: Context) -> float:
    """The least delay the remembered pauses ask of a wait (0: none)."""
    kept = _remembered(cx)
    if not kept:
        return 0.0
    return min(cx.endpointing.max_delay, max(kept) + cx.options.pause_margin)


#: The turn's states the guards read (a chart naming them must declare them).
_TURN = ("turn", frozenset({"predicting", "waiting"}))


@RULES.guard("pause_resumed", needs=_TURN)
def pause_resumed(cx: Context, e: Any) -> bool:
    """Speech resumed during an automatic end-of-turn wait (not a commit's) that it cancels
    (the turn is predicting or waiting; the chart adds: not a manual decision): a mid-turn
    pause to remember."""
    w = cx.wait
    return (cx.options.pause_memory > 0 and w is not None and not w.manual
            and w.anchor is not None and cx.now >= w.anchor
            and (cx.in_state("turn", "predicting") or cx.in_state("turn", "waiting")))


@RULES.action("remember_pause")
def remember_pause(cx: Context, e: Any) -> None:
    """Remember the pause: from the cancelled wait's anchor to now."""
    w = cx.wait
    assert w is not None  # the transition says so
    anchor = w.anchor
    assert anchor is not None  # the transition says so
    cx.pauses.append(round(cx.now - anchor, 6))
    del cx.pauses[:-cx.options.pause_memory]  # pause_memory > 0: the transition says so


def _delay_taken(cx: Context, e: Any) -> float | None:
    """The delay the wait takes on this event before the pauses are heard (None: it takes
    none yet, or the event is not for the pending wait)."""
    w = cx.wait
    if w is None:
        return None
    if isinstance(e, ev.EouModelAnswered):
        if w.wait_id != e.request_id:
            return None
        return cx.endpointing.max_delay if model_unlikely(e) else w.min_delay
    if isinstance(e, WaitRef) and e.wait_id == w.wait_id and \
            not cx.in_state("turn", "predicting"):
        return cx.endpointing.min_delay
    return None


@RULES.guard("pauses_outlast_wait", needs=_TURN)
def pauses_outlast_wait(cx: Context, e: Any) -> bool:
    """The pending automatic wait takes its delay now, and the session's remembered mid-turn
    pauses (longest plus ``pause_margin``, at most ``max_delay``) outlast it."""
    w = cx.wait
    taken = _delay_taken(cx, e)
    return w is not None and not w.manual and taken is not None and _floor(cx) > taken


@RULES.action("lengthen_wait")
def lengthen_wait(cx: Context, e: Any) -> None:
    """The wait lasts at least the remembered pauses' floor; its record says why."""
    w = cx.wait
    assert w is not None  # the transition says so
    longest = max(cx.pauses[-cx.options.pause_memory:])  # the guard saw MIN_PAUSES of them
    w.session_pause = longest
    w.pause_floor = min(cx.endpointing.max_delay, longest + cx.options.pause_margin)
