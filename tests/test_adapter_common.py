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

#: the detector's sessions have no STT: its verdict is reported at once (with one, words that
#: are a backchannel phrase may overrule it while the agent speaks; see the tests below)
NO_STT = {"interruption_detection": True, "stt": False}


def detect(windows: list[tuple[float, float]], *, speech_end: float | None = None,
           agent_starts: float = 0.0, onset: float = 1.0) -> tuple[list[Any], list[Any]]:
    """A session with the detector (no STT): the agent speaks from ``agent_starts``; user
    speech starts at ``onset`` (its VAD start 0.1 s later); ``windows`` are (time,
    probability); the VAD ends at ``speech_end``. Returns the verdicts and the Interruption
    outputs."""
    options = NO_STT

    async def body() -> tuple[list[Any], list[Any]]:
        d = OverlapDetector(0.5)
        got: list[out.Output] = []

        class Hooks:
            def on_output(self, o: out.Output) -> None:
                got.append(o)
        s = Session(options, detector=d, hooks=Hooks(),
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
    options = NO_STT

    async def body() -> list[Any]:
        d = OverlapDetector(0.5, join=join)
        got: list[out.Output] = []

        class Hooks:
            def on_output(self, o: out.Output) -> None:
                got.append(o)
        s = Session(options, detector=d, hooks=Hooks(),
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


# -- the pause of the agent's audio -----------------------------------------------------------

from turnfsm.adapters.common import OutputPause, attach_pause  # noqa: E402


def paused(windows: list[tuple[float, float]], *, speech_end: float | None = None,
           extra: list[tuple[float, Any]] | None = None, can_pause: bool = True,
           stt: bool = False, **pause_kw: Any
           ) -> tuple[list[tuple[str, float]], OutputPause, list[Any]]:
    """The detector (0.5 s) with an OutputPause on a session (``stt``: an STT attached): the
    agent speaks from 0, user speech from 1.0 s (VAD start at 1.1 s), ``windows`` as in
    :func:`detect`; ``extra``: (time, fn(session)) calls. Returns the output's pause/resume
    calls (session time), the OutputPause and the Interruption outputs."""
    options = {"interruption_detection": True, "stt": stt}

    async def body() -> tuple[list[tuple[str, float]], OutputPause, list[Any]]:
        d = OverlapDetector(0.5)
        got: list[out.Output] = []
        calls: list[tuple[str, float]] = []
        holder: dict[str, Any] = {}

        class Hooks:
            def on_output(self, o: out.Output) -> None:
                got.append(o)
                holder["pause"].on_output(o)
        s = Session(options, detector=d, hooks=Hooks(),
                    telemetry=False)

        def pause() -> bool:
            calls.append(("pause", s.now()))
            return can_pause

        pause_obj = attach_pause(d, pause_kw.pop("after", 0.15), pause_kw.pop("resume", 0.35),
                                 pause, lambda: calls.append(("resume", s.now())))
        assert pause_obj is not None
        holder["pause"] = pause_obj
        d.bind(s)
        events: list[tuple[float, Any]] = [(0.0, s.agent_speech_started),
                                           (1.1, lambda: s.push_vad(
                                               ev.VadStartOfSpeech(speech_duration=0.1)))]
        events += [(t, (lambda p=p: d.window(p))) for t, p in windows]
        events += [(t, (lambda fn=fn: fn(s))) for t, fn in extra or []]
        if speech_end is not None:
            events.append((speech_end, lambda: s.push_vad(
                ev.VadEndOfSpeech(silence_duration=0.5))))
        for t, fn in sorted(events, key=lambda x: x[0]):
            await asyncio.sleep(max(0.0, t - s.now()))
            fn()
        await asyncio.sleep(4.0)
        await s.aclose()
        return ([(k, round(t, 3)) for k, t in calls], pause_obj,
                [o for o in got if isinstance(o, out.Interruption)])
    return run_virtual(body())


def silence(start: float, end: float) -> list[tuple[float, float]]:
    return [(t, 0.1) for t, _ in voiced(start, end)]


def test_pause_comes_at_the_first_voiced_window_past_pause_after_and_the_stop_keeps_it() -> None:
    """Speech over the agent from 1.0 s, voiced to 1.8 s: paused at the first voiced window
    0.15 s after the onset (1.164 s), then the interruption (1.516 s) comes while paused;
    the pause is not resumed by the silence that follows (the adapter stops the audio and
    ends the pause itself: here it never does, so the safety timeout resumes it at 4.164)."""
    calls, pause, interruptions = paused(voiced(1.1, 1.8) + silence(1.83, 2.5), speech_end=2.3)
    assert calls == [("pause", 1.164), ("resume", 4.164)]
    assert len(interruptions) == 1 and round(interruptions[0].detected_at, 3) == 1.516
    assert [(r.outcome, round(r.paused_at, 3)) for r in pause.records] == [("timeout", 1.164)]


def test_a_short_utterance_is_resumed_after_resume_after_of_unvoiced_windows() -> None:
    """A 0.4 s "okay" (voiced to 1.388 s), then unvoiced windows: paused at 1.164 s,
    resumed at the first unvoiced window 0.35 s past the last voiced one; no interruption."""
    calls, pause, interruptions = paused(voiced(1.1, 1.4) + silence(1.42, 2.0), speech_end=2.0)
    assert calls == [("pause", 1.164), ("resume", 1.74)]
    assert interruptions == [] and [r.outcome for r in pause.records] == ["resumed"]


def test_a_backchannel_drop_resumes_at_once_and_the_overlaps_close_otherwise() -> None:
    """No early resume (``resume_after=None``): a backchannel dropped while the user is
    silent resumes the agent at that instant; without one, the overlap's close (the VAD's
    end) resumes it once the join window past the last voiced window is over."""
    drop = [(1.6, lambda s: holder_output(s))]

    def holder_output(s: Session) -> None:
        s.detector.pause.on_output(out.TranscriptDropped(  # type: ignore[union-attr]
            t=s.now(), ref=1, text="okay", reason="backchannel"))
    calls, _, _ = paused(voiced(1.1, 1.4), speech_end=1.5, extra=drop, resume=None)
    assert calls == [("pause", 1.164), ("resume", 1.6)]
    calls, _, _ = paused(voiced(1.1, 1.4), speech_end=1.5, resume=None)
    assert calls == [("pause", 1.164), ("resume", 1.888)]  # 1.388 + join 0.5


def test_an_output_that_cannot_pause_is_asked_again_and_nothing_is_recorded() -> None:
    """An output that refuses to pause (False): no pause recorded, nothing resumed."""
    calls, pause, _ = paused(voiced(1.1, 1.4), speech_end=1.9, can_pause=False)
    assert calls and {k for k, _ in calls} == {"pause"} and pause.records == []


def test_output_pause_refuses_bad_options() -> None:
    """A negative or infinite pause_after, a resume_after or max_pause not above 0, or NaN,
    is refused with its name."""
    import pytest
    with pytest.raises(ValueError, match="pause_after"):
        OutputPause(-0.1)
    with pytest.raises(ValueError, match="pause_after"):
        OutputPause(float("nan"))
    with pytest.raises(ValueError, match="max_pause"):
        OutputPause(0.15, max_pause=float("inf"))
    with pytest.raises(ValueError, match="resume_after"):
        OutputPause(0.15, 0.0)
    with pytest.raises(ValueError, match="max_pause"):
        OutputPause(0.15, 0.35, max_pause=0.0)


def test_a_backchannel_phrase_overrules_the_verdict_and_the_paused_agent_resumes() -> None:
    """A 0.65 s "mhm" over the agent: the detector calls it an interruption at 0.5 s (the
    agent already paused), but with an STT its words may overrule that while the agent is
    held: the final "mhm" is a backchannel phrase, dropped when the speech ends, no
    Interruption, and the paused agent resumes then."""
    def final(s: Session) -> None:
        s.push_stt(ev.SttFinal(text="mhm", language="en"))

    calls, pause, interruptions = paused(voiced(1.1, 1.65) + silence(1.7, 2.3),
                                         speech_end=2.3, stt=True, extra=[(2.0, final)])
    assert interruptions == []
    assert [k for k, _ in calls] == ["pause", "resume"] and calls[1][1] == 2.3
    assert [r.outcome for r in pause.records] == ["resumed"]


def test_words_that_are_no_backchannel_phrase_make_the_awaited_verdict_stand() -> None:
    """The same overlap saying "hold on" (two words, but no backchannel phrase): the verdict
    (1.516 s) is reported at the final that shows it (2.0 s), with the detector's times."""
    def final(s: Session) -> None:
        s.push_stt(ev.SttFinal(text="hold on", language="en"))

    calls, pause, interruptions = paused(voiced(1.1, 1.65) + silence(1.7, 2.3),
                                         speech_end=2.3, stt=True, extra=[(2.0, final)])
    [i] = interruptions
    assert round(i.t, 3) == 2.0 and round(i.detected_at, 3) == 1.516
    assert i.record.source == "detector" and calls[0][0] == "pause"
    # (no framework here stops the audio on the Interruption: the pause times out)
    assert [r.outcome for r in pause.records] == ["timeout"]
