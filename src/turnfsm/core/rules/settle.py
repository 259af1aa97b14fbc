"""The final wait (``default`` profile, region ``final_wait``): no orphaned transcripts.

After a VAD end of speech whose final transcript is still due (nothing of that VAD segment
transcribed yet, or an interim not yet made final), end-of-turn triggers wait
(``holds_for_final``) until that final arrives, or ``transcript_timeout`` passes, or the
STT stream restarts or detaches, or the session closes: then the decision is asked for
(trigger ``final_overdue``). Without this, the turn ends on an earlier segment's final and
the segment that just ended becomes a turn of its own.
"""

from __future__ import annotations

from typing import Any

from ..context import Context
from ..records import Trigger
from ..registry import RULES
from ..timers import TimerKind

_REGION = ("final_wait", frozenset({"settled", "open", "pending"}))
#: what the turn's guard reads of the seam (the base chart's two states; the default
#: profile's replacement adds ``open``)
_SEAM = ("final_wait", frozenset({"settled", "pending"}))


@RULES.guard("final_due")
def final_due(cx: Context, e: Any) -> bool:
    """vad mode with an STT attached, and no final yet of the VAD segment this end of speech
    closes (the transition's source, ``final_wait.open``, says one is open), or an interim
    not yet final."""
    return (cx.in_state("mode", "vad") and cx.in_state("stt_input", "attached")
            and (not cx.segment_final or bool(cx.turn.interim.strip())))


@RULES.guard("final_covers_speech")
def final_covers_speech(cx: Context, e: Any) -> bool:
    """The final just processed transcribes the latest segment (``Context.note_final``)."""
    return cx.segment_final


@RULES.guard("holds_for_final", needs=_SEAM)
def holds_for_final(cx: Context, e: Trigger) -> bool:
    """A final of speech already heard is due: an automatic decision waits for it (a
    commit does not, nor the wait's own end: its action runs before the region leaves
    ``pending``)."""
    return cx.in_state("final_wait", "pending") and not (
        isinstance(e, Trigger) and (e.manual or e.kind == "final_overdue"))


@RULES.action("arm_final_wait", needs=_REGION)
def arm_final_wait(cx: Context, e: Any) -> None:
    """Wait up to ``transcript_timeout`` for the final (a new epoch kills an earlier
    timer)."""
    cx.final_wait_epoch += 1
    cx.arm(TimerKind.FINAL_OVERDUE, cx.options.transcript_timeout, cx.final_wait_epoch)


@RULES.action("decide_without_final", needs=_REGION)
def decide_without_final(cx: Context, e: Any) -> None:
    """The final will not come in time: decide on what the turn has."""
    cx.request_decision(Trigger(kind="final_overdue"))
