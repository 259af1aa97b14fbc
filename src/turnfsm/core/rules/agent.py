"""Agent speech, the start backchannel boundary, and overlaps judged by the detector.

Detector markers follow ``(agent_started (overlap_started overlap_ended?)* agent_ended)*``
per detector stream (D10/D11): an overlap is opened only with its marker and closed with
its marker whenever it ends (I15).
"""

from __future__ import annotations

from typing import Any

from ... import events as ev
from ... import outputs as out
from ..context import Context
from ..records import SpeechEnd, SpeechStart
from ..registry import RULES
from ..timers import TimerKind


@RULES.guard("interruption_effective")
def interruption_effective(cx: Context, e: Any) -> bool:
    """Interruption detection is effective (a detector and a VAD are attached)."""
    return cx.interruption_effective


# -- agent speech ------------------------------------------------------------------------


def _started(cx: Context, e: ev.AgentSpeechStarted) -> float:
    return cx.now if e.started_at is None else e.started_at


@RULES.action("note_agent_start", ev.AgentSpeechStarted)
def note_agent_start(cx: Context, e: ev.AgentSpeechStarted) -> None:
    """Remember when the agent started (speech that ended before it is never trimmed, D7)."""
    cx.agent_started_at = _started(cx, e)


@RULES.action("agent_restarted", ev.AgentSpeechStarted)
def agent_restarted(cx: Context, e: ev.AgentSpeechStarted) -> None:
    """Agent speech (re)started: endpointing learns it; the turn-limit count restarts; the
    turn rules read what it says (none given: nothing is known of it)."""
    cx.endpointing.on_agent_start(_started(cx, e))
    cx.agent_text = e.text
    cx.tracker.words, cx.tracker.transcript, cx.tracker.started_at = 0, "", None


@RULES.action("announce_agent_start")
def announce_agent_start(cx: Context, e: Any) -> None:
    """Tell the detector stream the agent started speaking (region detector_marker)."""
    cx.raise_("announce_agent")


@RULES.action("judge_overlap_at_agent_start", ev.AgentSpeechStarted)
def judge_overlap_at_agent_start(cx: Context, e: ev.AgentSpeechStarted) -> None:
    """The agent starts over ongoing user speech: the detector judges that overlap."""
    onset = cx.speech_start_time if cx.speech_start_time is not None else cx.now
    cx.signal("overlap_speech_started", started_at=onset, speech_duration=max(0.0, cx.now - onset))
    cx.raise_("agent_over_user", e)


@RULES.action("announce_agent_speech")
def announce_agent_speech(cx: Context, e: Any) -> None:
    """A detector stream that becomes effective while the agent speaks hears it started
    (once: region detector_marker ignores the announcement once told)."""
    cx.raise_("announce_agent")


@RULES.action("send_agent_started")
def send_agent_started(cx: Context, e: Any) -> None:
    """The detector stream hears that the agent speaks."""
    cx.signal("agent_speech_started")


@RULES.action("send_agent_ended")
def send_agent_ended(cx: Context, e: Any) -> None:
    """The stream that heard the agent start hears it end."""
    cx.signal("agent_speech_ended")


@RULES.action("agent_ended", ev.AgentSpeechEnded)
def agent_ended(cx: Context, e: ev.AgentSpeechEnded) -> None:
    """Endpointing learns that the agent stopped (the transitions close an open overlap,
    before the agent marker of region detector_marker, and set or drop the window)."""
    cx.endpointing.on_agent_end(cx.now)


@RULES.action("set_window", ev.AgentSpeechEnded)
def set_window(cx: Context, e: ev.AgentSpeechEnded) -> None:
    """Interruption detection was effective: held speech that ended before the agent's
    ignore window (less the boundary's end cooldown) is trimmed at the release."""
    until = cx.now if e.ignore_user_transcript_until is None else e.ignore_user_transcript_until
    end_cooldown = cx.boundary[1] if cx.boundary else 0.0  # data: no boundary, no cooldown
    cx.window = until - end_cooldown


@RULES.action("no_window")
def no_window(cx: Context, e: Any) -> None:
    """Interruption detection was not effective: nothing is trimmed by this agent speech."""
    cx.window = None


# -- the start backchannel boundary --------------------------------------------------------


@RULES.guard("boundary_configured")
def boundary_configured(cx: Context, e: Any) -> bool:
    """A start backchannel boundary is configured."""
    return cx.boundary is not None and cx.boundary[0] > 0


@RULES.action("arm_boundary")
def arm_boundary(cx: Context, e: Any) -> None:
    """Start the boundary timer (a new epoch makes any earlier one dead)."""
    assert cx.boundary is not None
    cx.boundary_epoch += 1
    cx.arm(TimerKind.BOUNDARY_EXPIRED, cx.boundary[0], cx.boundary_epoch)


@RULES.action("cancel_boundary")
def cancel_boundary(cx: Context, e: Any) -> None:
    """Stop the boundary timer."""
    cx.boundary_epoch += 1


@RULES.action("boundary_done")
def boundary_done(cx: Context, e: Any) -> None:
    """Report that the boundary expired."""
    cx.emit(out.BoundaryExpired(t=cx.now))


# -- overlaps ----------------------------------------------------------------------------

UserStart = ev.UserSpeechStarted | SpeechStart
UserEnd = ev.UserSpeechEnded | SpeechEnd


@RULES.action("notify_user_start", ev.UserSpeechStarted, SpeechStart)
def notify_user_start(cx: Context, e: UserStart) -> None:
    """Endpointing learns that user speech started (and whether over the agent)."""
    cx.endpointing.on_user_start(cx.now if e.started_at is None else e.started_at,
                                 cx.agent_speaking)


@RULES.action("send_overlap_started", ev.UserSpeechStarted, SpeechStart)
def send_overlap_started(cx: Context, e: UserStart) -> None:
    """Open an overlap for the detector to judge."""
    cx.signal("overlap_speech_started", started_at=cx.now if e.started_at is None else e.started_at,
              speech_duration=e.speech_duration)


@RULES.action("notify_user_end", ev.UserSpeechEnded, SpeechEnd)
def notify_user_end(cx: Context, e: UserEnd) -> None:
    """Endpointing learns that user speech ended (a judged backchannel teaches nothing; the
    transitions run it only while the user speaks)."""
    ended = cx.now if e.ended_at is None else e.ended_at
    ignore = e.interruption is not None and not e.interruption and cx.agent_speaking
    cx.endpointing.on_user_end(ended, ignore)


@RULES.action("send_overlap_ended", ev.UserSpeechEnded, SpeechEnd, ev.OverlapSpeechEnded)
def send_overlap_ended(cx: Context, e: UserEnd | ev.OverlapSpeechEnded) -> None:
    """Close the overlap being judged, at the time the payload says."""
    cx.signal("overlap_speech_ended", ended_at=cx.now if e.ended_at is None else e.ended_at)


@RULES.action("close_overlap_now")
def close_overlap_now(cx: Context, e: Any) -> None:
    """Close the overlap being judged, now (its VAD went away, or the agent stopped, I15)."""
    cx.signal("overlap_speech_ended", ended_at=cx.now)
