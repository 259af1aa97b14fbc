"""What both framework adapters rely on: the engine reports every transcript its gate holds
(``TranscriptHeld``) and later releases it (``Transcript``, same ref) or drops it
(``TranscriptDropped``), so a shell forwards transcripts from outputs, never from region
names."""

from __future__ import annotations

from typing import Any

from turnfsm import Engine
from turnfsm import events as ev
from turnfsm import outputs as out


class Run:
    """An engine fed inputs at their times; every end of turn is accepted at once."""

    def __init__(self, profile: str = "default", options: Any = None) -> None:
        self.e = Engine(options, profile=profile)
        self.outs: list[out.Output] = []

    def at(self, t: float, e: ev.Input) -> Run:
        while (d := self.e.next_deadline()) is not None and d <= t:
            self._take(self.e.fire_next_timer())
        self._take(self.e.advance(t))
        self._take(self.e.handle(e))
        return self

    def _take(self, outs: list[out.Output]) -> None:
        for o in outs:
            self.outs.append(o)
            if isinstance(o, out.EndOfTurn):
                self._take(self.e.handle(ev.EndOfTurnAnswered(t=o.t, accepted=True)))

    def of(self, cls: type) -> list[Any]:
        return [o for o in self.outs if isinstance(o, cls)]


def over_agent(*, agent_stops: float, speech_ends: float, final: str,
               final_at: float) -> Run:
    """Default profile, no detector: the agent speaks from 0 to ``agent_stops``; the user
    speaks from 1.0 to ``speech_ends``: an interim "Yes" at 1.5, then ``final``."""
    r = Run("default", {"turn_detection": "vad", "vad": True, "stt": True})
    script: list[tuple[float, ev.Input]] = [
        (0.0, ev.AgentSpeechStarted(t=0.0)),
        (1.1, ev.VadStartOfSpeech(t=1.1, speech_duration=0.1)),
        (1.5, ev.SttInterim(t=1.5, text="Yes", language="en", ref="i")),
        (agent_stops, ev.AgentSpeechEnded(t=agent_stops)),
        (final_at, ev.SttFinal(t=final_at, text=final, language="en", ref="f")),
        (speech_ends + 0.3, ev.VadEndOfSpeech(t=speech_ends + 0.3, silence_duration=0.3))]
    for t, e in sorted(script, key=lambda x: x[0]):
        r.at(t, e)
    r.at(8.0, ev.AgentSpeechStarted(t=8.0))
    return r


def test_a_transcript_held_while_judged_is_reported_held_then_released() -> None:
    """The user goes on past the agent's end (the gate judges the utterance): the interim
    and the final are reported held, then released with their refs: one turn."""
    r = over_agent(agent_stops=1.6, speech_ends=2.7, final="Yes, for four people.",
                   final_at=2.5)
    held = r.of(out.TranscriptHeld)
    assert [(h.ref, h.type) for h in held] == [("i", "interim"), ("f", "final")]
    released = [(o.ref, round(o.t, 6)) for o in r.of(out.Transcript)]
    assert released == [("i", 2.5), ("f", 2.5)]
    assert [o.new_transcript for o in r.of(out.EndOfTurn)] == ["Yes, for four people."]


def test_a_held_backchannel_is_reported_held_then_dropped() -> None:
    """A short "Yes." that ends while the agent speaks is held, then dropped as a
    backchannel with the same ref; nothing is released and no turn ends."""
    r = over_agent(agent_stops=4.0, speech_ends=1.4, final="Yes.", final_at=1.6)
    assert [h.ref for h in r.of(out.TranscriptHeld)] == ["i", "f"]
    assert [(d.ref, d.reason) for d in r.of(out.TranscriptDropped)] == [("f", "backchannel")]
    assert not r.of(out.Transcript) and not r.of(out.EndOfTurn)


def test_a_transcript_not_held_is_not_reported_held() -> None:
    """A final while the agent is silent goes straight through: no TranscriptHeld."""
    r = Run("default", {"turn_detection": "vad", "vad": True, "stt": True})
    r.at(1.1, ev.VadStartOfSpeech(t=1.1, speech_duration=0.1))
    r.at(1.5, ev.SttFinal(t=1.5, text="Hello there.", language="en", ref="h"))
    assert not r.of(out.TranscriptHeld)
    assert [o.ref for o in r.of(out.Transcript)] == ["h"]
