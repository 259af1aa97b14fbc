"""The default profile's session pauses: mid-turn pauses lengthen later waits (region
pause_memory)."""

from __future__ import annotations

from typing import Any

import pytest

from tests.test_profiles import Run
from turnfsm import EngineOptions
from turnfsm import events as ev
from turnfsm import outputs as out
from turnfsm.errors import ConfigError


def speech(r: Run, start: float, end: float, text: str) -> Run:
    """A VAD segment whose last speech window is at ``end`` (the end-of-turn anchor), and
    its final 0.3 s later."""
    r.at(start + 0.1, ev.VadStartOfSpeech(t=start + 0.1, speech_duration=0.1))
    r.at(end, ev.VadInferenceDone(t=end, speech_duration=end - start, speaking=True,
                                  raw_accumulated_speech=end - start, probability=0.9))
    return _rest(r, end, text)


def _rest(r: Run, end: float, text: str) -> Run:
    r.at(end + 0.2, ev.VadEndOfSpeech(t=end + 0.2, silence_duration=0.2))
    return r.at(end + 0.3, ev.SttFinal(t=end + 0.3, text=text))


def pauser(profile: str = "default", **options: Any) -> Run:
    """Two pauses after unfinished words (the rules wait; the user goes on), then the same
    pause after words that look finished, then the rest of the turn."""
    r = Run(profile, options or None)
    speech(r, 0.0, 1.5, "I want to book a table for")
    speech(r, 2.3, 3.0, "four people and")
    speech(r, 3.8, 4.5, "a high chair.")
    speech(r, 5.3, 6.0, "Near the window please.")
    return r.advance(15.0)


def test_a_user_who_paused_twice_is_not_cut_in_on_at_a_finished_looking_pause() -> None:
    """After two mid-turn pauses of the session, the pause after "a high chair." is
    waited out: one turn, its record naming the session's pauses; with pause_memory 0 (or
    the livekit chart) the turn is cut at that pause."""
    [eot] = pauser().of(out.EndOfTurn)
    assert eot.new_transcript.endswith("a high chair. Near the window please.")
    off = pauser(pause_memory=0).turns()
    assert [t for _, t in off] == ["I want to book a table for four people and a high chair.",
                                   "Near the window please."]
    assert len(pauser("livekit").turns()) == 4


def test_the_lengthened_wait_says_why_and_is_the_longest_pause_plus_the_margin() -> None:
    """The final wait takes the longest remembered pause plus pause_margin; its decision
    record says delay_reason session_pauses and names the pause."""
    r = pauser(pause_margin=0.3)
    [eot] = r.of(out.EndOfTurn)
    d = eot.decision
    assert d is not None and d.delay_reason == "session_pauses"
    assert d.session_pause == pytest.approx(0.9)
    assert d.delay == pytest.approx(d.session_pause + 0.3)
    assert f"the user paused {d.session_pause:g} s inside a turn" in d.why()
    assert "built-in rules p=0.9 >= threshold" in d.why()
    assert eot.t == pytest.approx(d.anchor + d.delay)


def test_one_pause_alone_lengthens_nothing() -> None:
    """A single mid-turn pause (what the text rules are for) leaves later waits at
    min_delay: the finished-looking pause ends the turn."""
    r = Run("default")
    speech(r, 0.0, 1.5, "I want to book a table for")
    speech(r, 2.3, 3.0, "four people.")
    speech(r, 3.8, 4.5, "Near the window please.")
    r.advance(15.0)
    turns = r.of(out.EndOfTurn)
    assert len(turns) == 2 and turns[0].decision.delay_reason == "min_delay"
    assert turns[0].decision.session_pause is None


def test_the_lengthened_wait_is_at_most_max_delay() -> None:
    """A margin beyond max_delay is cut to max_delay: a finished-looking turn never waits
    longer than an unfinished one."""
    r = pauser(pause_margin=10.0)
    d = r.of(out.EndOfTurn)[-1].decision
    assert d is not None and d.delay_reason == "session_pauses" and d.delay == 3.0


def test_a_commit_is_not_lengthened() -> None:
    """A commit's wait ends at once though the session remembers long pauses."""
    from turnfsm import events as ev
    r = Run("default")
    speech(r, 0.0, 1.5, "I want to book a table for")
    speech(r, 2.3, 3.0, "four people and")
    speech(r, 3.8, 4.5, "a high chair.")
    r.at(4.85, ev.CommitUserTurn(t=4.85))
    r.advance(5.0)
    [eot] = r.of(out.EndOfTurn)
    assert eot.decision is not None and eot.decision.trigger == "commit"
    assert eot.decision.delay_reason == "min_delay" and eot.t <= 5.0 + 1e-9


@pytest.mark.parametrize("bad", [{"pause_memory": -1}, {"pause_memory": 1.5},
                                 {"pause_memory": True}, {"pause_margin": -0.1},
                                 {"pause_margin": float("nan")}])
def test_bad_pause_options_are_refused_by_name(bad: dict[str, Any]) -> None:
    """A bad pause_memory or pause_margin is a ConfigError naming it."""
    with pytest.raises(ConfigError, match=next(iter(bad))):
        EngineOptions(**bad)


def test_the_invariant_checker_follows_a_lengthened_wait() -> None:
    """The property suite's Driver (every invariant checked at each step, I8 with the
    session-pause rule) runs the pauser through the default profile without a violation,
    and its shadow heard the pause the record names."""
    from tests.props_support import Driver
    d = Driver(profile="default")

    def say(start: float, end: float, text: str) -> None:
        d.feed(ev.VadStartOfSpeech(t=start + 0.1, ref=next(d.refs), speech_duration=0.1))
        d.feed(ev.VadInferenceDone(t=end, ref=next(d.refs), speech_duration=end - start,
                                   speaking=True, raw_accumulated_speech=end - start,
                                   probability=0.9))
        d.feed(ev.VadEndOfSpeech(t=end + 0.2, ref=next(d.refs), silence_duration=0.2))
        d.feed(ev.SttFinal(t=end + 0.3, ref=next(d.refs), text=text))
    say(0.0, 1.5, "I want to book a table for")
    say(2.3, 3.0, "four people and")
    say(3.8, 4.5, "a high chair.")
    say(5.3, 6.0, "Near the window please.")
    d.settle()
    assert not d.failed and not d.anomalies
    [eot] = [o for o in d.outputs if isinstance(o, out.EndOfTurn)]
    assert eot.decision is not None and eot.decision.delay_reason == "session_pauses"
    assert eot.decision.session_pause in d.pauses
