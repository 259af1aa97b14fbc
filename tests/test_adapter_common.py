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


# -- the overlap detector and the held transcripts --------------------------------------------

import asyncio  # noqa: E402

from turnfsm.adapters.common import HeldTranscripts, OverlapDetector  # noqa: E402
from turnfsm.runtime import Session, run_virtual  # noqa: E402


def detect(windows: list[tuple[float, float]], *, speech_end: float | None = None,
           agent_starts: float = 0.0, onset: float = 1.0) -> tuple[list[Any], list[Any]]:
    """A session with the detector: the agent speaks from ``agent_starts``; user speech
    starts at ``onset`` (its VAD start 0.1 s later); ``windows`` are (time, probability);
    the VAD ends at ``speech_end``. Returns the verdicts and the Interruption outputs."""
    async def body() -> tuple[list[Any], list[Any]]:
        d = OverlapDetector(0.5)
        got: list[out.Output] = []

        class Hooks:
            def on_output(self, o: out.Output) -> None:
                got.append(o)
        s = Session({"interruption_detection": True}, detector=d, hooks=Hooks(),
                    telemetry=False)
        d.bind(s)
        events: list[tuple[float, Any]] = [(agent_starts, s.agent_speech_started),
                                           (onset + 0.1, lambda: s.push_vad(
                                               ev.VadStartOfSpeech(speech_duration=0.1)))]
        events += [(t, (lambda p=p: d.window(p))) for t, p in windows]
        if speech_end is not None:
            events.append((speech_end, lambda: s.push_vad(
                ev.VadEndOfSpeech(silence_duration=0.3))))
        for t, fn in sorted(events, key=lambda x: x[0]):
            await asyncio.sleep(max(0.0, t - s.now()))
            fn()
        await asyncio.sleep(0.5)
        await s.aclose()
        return d.verdicts, [o for o in got if isinstance(o, out.Interruption)]
    return run_virtual(body())


def voiced(start: float, end: float, step: float = 0.032) -> list[tuple[float, float]]:
    return [(round(start + k * step, 6), 0.9) for k in range(int((end - start) / step) + 1)]


def test_overlap_detector_calls_speech_going_on_past_min_duration() -> None:
    """Speech over the agent from 1.0 s with voiced windows to 1.8 s: an interruption at the
    first voiced window 0.5 s after the onset (1.5 s), pushed as a detector verdict."""
    verdicts, interruptions = detect(voiced(1.1, 1.8))
    assert [(round(a, 3), round(b, 3)) for a, b in verdicts] == [(1.0, 1.516)]
    assert [round(o.overlap_started_at, 3) for o in interruptions] == [1.0]
    assert interruptions[0].record.source == "detector"


def test_overlap_detector_ignores_the_silence_before_the_vads_end() -> None:
    """A 0.45 s "okay" (voiced windows to 1.45 s) then 0.55 s of silence (windows below the
    threshold) before the VAD's end: never an interruption, whatever the VAD's
    speech_duration says."""
    windows = voiced(1.1, 1.45) + [(round(1.45 + k * 0.032, 6), 0.1) for k in range(1, 18)]
    verdicts, interruptions = detect(windows, speech_end=2.0)
    assert verdicts == [] and interruptions == []


def test_overlap_detector_is_silent_without_an_overlap() -> None:
    """Speech while the agent is silent opens no overlap: no verdict however long."""
    verdicts, _ = detect(voiced(1.1, 2.5), agent_starts=10.0, speech_end=2.8)
    assert verdicts == []


def test_overlap_detector_judges_the_agent_starting_over_long_speech_at_once() -> None:
    """The agent starts at 2.0 s over speech going on since 1.0 s: already 1.0 s of
    overlap, an interruption at that instant."""
    verdicts, interruptions = detect(voiced(1.1, 2.5), agent_starts=2.0)
    assert [(round(a, 3), round(b, 3)) for a, b in verdicts] == [(1.0, 2.0)]
    assert len(interruptions) == 1


def detect_segments(segments: list[tuple[float, float]], join: float) -> list[Any]:
    """The agent speaks from 0; each (start, end) is a VAD segment of user speech (VAD start
    0.1 s after its onset, voiced windows to its end, the VAD's end 0.2 s later). Returns
    the Interruption outputs."""
    async def body() -> list[Any]:
        d = OverlapDetector(0.5, join=join)
        got: list[out.Output] = []

        class Hooks:
            def on_output(self, o: out.Output) -> None:
                got.append(o)
        s = Session({"interruption_detection": True}, detector=d, hooks=Hooks(),
                    telemetry=False)
        d.bind(s)
        events: list[tuple[float, Any]] = [(0.0, s.agent_speech_started)]
        for start, end in segments:
            events.append((start + 0.1, lambda: s.push_vad(
                ev.VadStartOfSpeech(speech_duration=0.1))))
            events += [(t, (lambda p=p: d.window(p))) for t, p in voiced(start + 0.1, end)]
            events.append((end + 0.2, lambda: s.push_vad(
                ev.VadEndOfSpeech(silence_duration=0.2))))
        for t, fn in sorted(events, key=lambda x: x[0]):
            await asyncio.sleep(max(0.0, t - s.now()))
            fn()
        await asyncio.sleep(0.5)
        await s.aclose()
        return [o for o in got if isinstance(o, out.Interruption)]
    return run_virtual(body())


def test_overlap_detector_joins_segments_split_by_a_short_pause() -> None:
    """"wait, ... stop" split by a VAD with a short stop_secs (speech 1.0-1.35 s, then
    1.65-2.0 s): judged whole from 1.0 s, an interruption at the first voiced window 0.5 s
    on; without the join each segment is too short and nothing interrupts."""
    interruptions = detect_segments([(1.0, 1.35), (1.65, 2.0)], join=0.5)
    assert [round(o.overlap_started_at, 3) for o in interruptions] == [1.0]
    assert round(interruptions[0].detected_at, 3) == 1.75
    assert detect_segments([(1.0, 1.35), (1.65, 2.0)], join=0.0) == []


def test_overlap_detector_does_not_join_across_a_long_pause() -> None:
    """Two backchannels over the agent 1.2 s apart (0.35 s each) are two overlaps, each
    too short: no interruption."""
    assert detect_segments([(1.0, 1.35), (2.55, 2.9)], join=0.5) == []


def test_overlap_detector_refuses_bad_options() -> None:
    """A negative duration or join, or a threshold outside (0, 1], is refused with its
    name."""
    import pytest
    with pytest.raises(ValueError, match="min_duration"):
        OverlapDetector(-1.0)
    with pytest.raises(ValueError, match="threshold"):
        OverlapDetector(0.5, threshold=0.0)
    with pytest.raises(ValueError, match="join"):
        OverlapDetector(0.5, join=-0.1)


def test_held_transcripts_send_on_release_and_forget_on_drop() -> None:
    """An event held by the engine is sent when its Transcript comes (in order), forgotten
    when dropped; a held interim is forgotten when a later final of it is settled; an event
    the engine neither holds nor reports is forgotten when its push returns."""
    sent: list[str] = []
    h: HeldTranscripts[str] = HeldTranscripts(sent.append)
    for ref, text, final in [(1, "uh", False), (2, "uh huh", True), (3, "wait", False)]:
        h.push(ref, text, final=final)
        h.on_output(out.TranscriptHeld(t=0.0, ref=ref, type="final" if final else "interim",
                                       text=text))
        h.pushed(ref)
    assert len(h) == 3 and sent == []
    h.on_output(out.TranscriptDropped(t=1.0, ref=2, text="uh huh", reason="backchannel"))
    assert len(h) == 1  # the final and its interim went
    h.on_output(out.Transcript(t=1.0, ref=3, type="interim", text="wait", language="en",
                               confidence=1.0, start_time=0.0, end_time=0.0, speaking=True))
    assert sent == ["wait"] and len(h) == 0
    h.push(4, "ignored", final=True)
    h.pushed(4)
    h.on_output(out.Transcript(t=2.0, ref=4, type="final", text="x", language="en",
                               confidence=1.0, start_time=0.0, end_time=0.0, speaking=False))
    assert sent == ["wait"]
