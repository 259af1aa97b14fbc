"""Commit requests (``CommitUserTurn``, push-to-talk) and their results.

A commit waits up to ``transcript_timeout`` for a final unless one is recent (D24: only a
real final counts), then finalizes: the latest interim is promoted to a final (D19) and an
end-of-turn decision is requested that never waits for the model (D18). Its result is
emitted when the decision it scheduled is delivered, with the delivered transcript (I18);
``cancelled`` when that decision is dropped or the turn cleared first; at once (``ok``) when
it scheduled nothing (D17).
"""

from __future__ import annotations

import math
from typing import Any

from ... import events as ev
from ... import outputs as out
from ..context import Context
from ..records import Commit, CommitOutcome, Trigger
from ..registry import RULES
from ..timers import TimerKind

COMMIT_RECENCY = 0.5  # s: a commit does not wait for a final younger than this
FLUSH_FRAME = 0.2  # s: silent frame used to flush the STT on commit


@RULES.guard("commit_possible")
def commit_possible(cx: Context, e: Any) -> bool:
    """A commit can do something: an STT is attached and the session runs."""
    return cx.in_state("stt_input", "attached") and not cx.closed


@RULES.guard("commit_needs_final")
def commit_needs_final(cx: Context, e: Any) -> bool:
    """No final is recent enough (D24: only a real final counts, a preflight may change)."""
    last = cx.turn.last_real_final_time
    return last is None or cx.now - last > COMMIT_RECENCY


@RULES.action("commit_refused", ev.CommitUserTurn)
def commit_refused(cx: Context, e: ev.CommitUserTurn) -> None:
    """A commit that can do nothing resolves at once, empty."""
    cx.emit(out.CommitResult(t=cx.now, ref=e.ref, status="ok", transcript=""))


@RULES.action("cancel_commit")
def cancel_commit(cx: Context, e: Any) -> None:
    """The superseded commit (unresolved: the transition says) reports ``cancelled`` (a
    little later)."""
    old = cx.commit
    assert old is not None
    cx.raise_("commit_cancelled", CommitOutcome(old.ref, "cancelled"))


@RULES.action("supersede_commit", ev.CommitUserTurn)
def supersede_commit(cx: Context, e: ev.CommitUserTurn) -> None:
    """A new commit replaces the pending one, which is cancelled (region commit_result)."""
    cx.raise_("commit_made")
    cx.commit = Commit(cx.next_commit_id(), e.ref, e.skip_reply)


@RULES.action("await_final", ev.CommitUserTurn)
def await_final(cx: Context, e: ev.CommitUserTurn) -> None:
    """Flush the STT (detached audio) and wait up to ``transcript_timeout`` for a final."""
    c = cx.commit
    assert c is not None
    if e.audio_detached and cx.sample_rate:
        frames = max(0, math.ceil(e.stt_flush_duration / FLUSH_FRAME))
        if frames:
            cx.emit(out.AudioFlushRequested(t=cx.now, frames=frames, frame_duration=FLUSH_FRAME))
            if cx.input_started_at is None:
                cx.input_started_at = cx.now - FLUSH_FRAME
    cx.arm(TimerKind.COMMIT_TIMEOUT, max(0.0, e.transcript_timeout), c.cid)


def finalize(cx: Context) -> None:
    """Commit the turn: promote the interim (D19), request the decision (D18); the commit
    is pending (neither finalized nor resolved: the transition says)."""
    c = cx.commit
    assert c is not None
    turn = cx.turn
    if turn.interim:
        # no final came: the latest interim becomes a final of the turn, processed as one
        text = turn.interim
        cx.emit(out.Transcript(t=cx.now, ref=None, type="final", text=text,
                               language=turn.interim_language,
                               confidence=turn.interim_confidence, start_time=0.0,
                               end_time=0.0, speaking=cx.speaking_flag()))
        cx.update_language(turn.interim_language, text)
        cx.accept_final(None, text, turn.interim_confidence)
        cx.anchor_at_transcript()
        cx.promoted = text
        turn.interim = ""
        turn.preflight = ""
        cx.check_turn_limit(text)
    turn.interim = ""
    if c.skip_reply:
        turn.skip_reply_sticky = True
    cx.request_decision(Trigger(kind="commit", skip_reply=c.skip_reply, manual=True))
    cx.raise_("commit_finalized")
    # the decision's outcome (decision_started: the delivery reports the result;
    # decision_declined: resolve_commit reports it now) is the chart's, not read back here


@RULES.action("resolve_commit")
def resolve_commit(cx: Context, e: Any) -> None:
    """The commit's decision was declined (nothing to decide): it reports ``ok`` with the
    turn's transcript at once, and leaves no authority (D17)."""
    c = cx.commit
    assert c is not None
    cx.emit(out.CommitResult(t=cx.now, ref=c.ref, status="ok", transcript=cx.turn.transcript))


@RULES.action("commit_delivered")
def commit_delivered(cx: Context, e: Any) -> None:
    """The decision the finalized commit scheduled was delivered: its result is ``ok``,
    with the delivered transcript (I18; the turn is replaced only at the answer)."""
    c = cx.commit
    assert c is not None
    cx.emit(out.CommitResult(t=cx.now, ref=c.ref, status="ok", transcript=cx.turn.transcript))


@RULES.action("commit_abandoned")
def commit_abandoned(cx: Context, e: Any) -> None:
    """The decision the finalized commit scheduled will never be delivered: ``cancelled``."""
    c = cx.commit
    assert c is not None
    cx.emit(out.CommitResult(t=cx.now, ref=c.ref, status="cancelled"))


def abandon_decision(cx: Context) -> None:
    """The pending decision will never be delivered: a finalized commit's result is
    ``cancelled`` (region commit_result decides)."""
    cx.raise_("decision_abandoned")


@RULES.action("abandon_commit")
def abandon_commit(cx: Context, e: Any) -> None:
    """The decision a commit scheduled was dropped (a mode change, R9): its result is
    ``cancelled`` now, never a later turn's (I18, R39)."""
    abandon_decision(cx)


@RULES.action("finalize_commit")
def finalize_commit(cx: Context, e: Any) -> None:
    """No final came in time (or the session closes): finalize now."""
    finalize(cx)


@RULES.action("finalize_commit_next")
def finalize_commit_next(cx: Context, e: Any) -> None:
    """A recent final: finalize right after the commit call."""
    cx.raise_("commit_finalizes")


@RULES.action("finalize_commit_after_final")
def finalize_commit_after_final(cx: Context, e: Any) -> None:
    """The awaited final arrived: finalize once it is processed."""
    cx.raise_("commit_finalizes_after_final")


@RULES.action("report_commit", CommitOutcome)
def report_commit(cx: Context, e: CommitOutcome) -> None:
    """Report a commit's result (queued: ``commit_resolved``, ``commit_cancelled``)."""
    cx.emit(out.CommitResult(t=cx.now, ref=e.ref, status=e.status, transcript=e.transcript))
