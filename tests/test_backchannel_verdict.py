"""The default profile's words overrule the detector's interruption verdict while the agent is
held (region ``utterance_verdict``, state ``awaiting_words``): every scenario runs under the
property suite's driver, so every invariant (P5 among them) is checked at every step."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from tests.props_support import Driver, HostScript
from turnfsm import Engine, EngineOptions
from turnfsm import events as ev
from turnfsm import outputs as out

OPTIONS = EngineOptions(interruption_detection=True, backchannel_boundary=None)
OVERRULED = "overrules the interruption detector"


def run(inputs: list[ev.Input], *, profile: str = "default",
        options: EngineOptions = OPTIONS, host: HostScript | None = None,
        engine_factory: Any = Engine) -> Driver:
    """The inputs through a checked driver (refs numbered), then everything due."""
    d = Driver(options, host, profile=profile, engine_factory=engine_factory)
    for i, e in enumerate(inputs, 1):
        d.feed(e if e.ref is not None else type(e)(**{**_fields(e), "ref": 1000 + i}))
    d.settle()
    return d


def _fields(e: ev.Input) -> dict[str, Any]:
    import attrs
    return attrs.asdict(e, recurse=False)


def of(d: Driver, cls: type) -> list[Any]:
    return [o for o in d.outputs if isinstance(o, cls)]


def windows(start: float, end: float, onset: float) -> list[ev.Input]:
    """VAD windows with speech from ``start`` to ``end`` (every 32 ms) of speech begun at
    ``onset``."""
    n = int((end - start) / 0.032) + 1
    return [ev.VadInferenceDone(t=round(start + k * 0.032, 6),
                                raw_accumulated_speech=round(start + k * 0.032 - onset, 6))
            for k in range(n)]


def mhm(text: str = "mhm", *, agent_end: float = 6.0, final_at: float = 2.3,
        speech_end: float = 2.0, vad_end: float = 2.55) -> list[ev.Input]:
    """The agent speaks from 0 to ``agent_end``; the user from 1.3 s (a 0.7 s hum) says
    ``text``: the detector calls it an interruption at 1.9 s."""
    script: list[ev.Input] = [
        ev.AgentSpeechStarted(t=0.0),
        ev.VadStartOfSpeech(t=1.4, speech_duration=0.1),
        *windows(1.42, speech_end, 1.3),
        ev.OverlapVerdict(t=1.9, is_interruption=True, overlap_started_at=1.3,
                          detected_at=1.9, probability=0.9),
        ev.SttFinal(t=final_at, text=text, language="en"),
        ev.VadEndOfSpeech(t=vad_end, silence_duration=vad_end - speech_end),
        ev.AgentSpeechEnded(t=agent_end)]
    return sorted(script, key=lambda e: e.t)


def test_a_backchannel_phrase_overrules_a_duration_verdict() -> None:
    """A 0.7 s "mhm" the detector calls an interruption: while the agent speaks its words
    are awaited; a backchannel phrase, dropped when the speech ends; no interruption, no
    turn. The livekit profile reports the verdict at once and makes it a turn."""
    d = run(mhm())
    assert not of(d, out.Interruption) and not of(d, out.EndOfTurn)
    [drop] = of(d, out.TranscriptDropped)
    assert drop.reason == "backchannel" and OVERRULED in drop.record.detail
    assert drop.t == pytest.approx(2.55)
    lk = run(mhm(), profile="livekit")
    assert [i.t for i in of(lk, out.Interruption)] == [1.9]


def test_whisper_writes_the_hum_in_capitals() -> None:
    """Whisper's "M-H-M." (its final after the VAD's end) is the same phrase."""
    d = run(mhm("M-H-M.", final_at=2.85))
    assert not of(d, out.Interruption) and not of(d, out.EndOfTurn)
    assert [x.text for x in of(d, out.TranscriptDropped)] == ["M-H-M."]


def test_words_that_are_more_than_a_phrase_report_the_verdict_then() -> None:
    """"hold on" (two words, no phrase): the verdict is reported at its final, keeping the
    detector's times; the words are the user's turn once the agent stops."""
    d = run(mhm("hold on"))
    [i] = of(d, out.Interruption)
    assert (i.t, i.detected_at, i.overlap_started_at) == (2.3, 1.9, 1.3)
    assert i.record.source == "detector"
    assert [o.new_transcript for o in of(d, out.EndOfTurn)] == ["hold on"]


def test_an_interim_that_leaves_the_phrases_reports_at_once() -> None:
    """An interim "uh" may still be "uh huh" (no report); "uh wait" may not: reported at
    that interim."""
    script = [e for e in mhm("uh wait, stop") if not isinstance(e, ev.SttFinal)]
    script += [ev.SttInterim(t=1.95, text="uh", language="en"),
               ev.SttInterim(t=2.1, text="uh wait", language="en"),
               ev.SttFinal(t=2.3, text="uh wait, stop", language="en")]
    d = run(sorted(script, key=lambda e: e.t))
    assert [i.t for i in of(d, out.Interruption)] == [2.1]


def test_the_agent_stopping_under_the_users_speech_makes_the_verdict_stand() -> None:
    """The agent stops (it yielded, or its output was paused and stopped) while the user
    still speaks and no words came: the verdict stands at that instant."""
    d = run(mhm("sorry I meant Tuesday", agent_end=1.95, final_at=2.3))
    assert [i.t for i in of(d, out.Interruption)] == [1.95]


def test_speech_past_backchannel_max_duration_reports_without_words() -> None:
    """No words yet (a segment-wise STT transcribes at the end), the speech goes on: the
    verdict is reported at the first look past backchannel_max_duration (1.0 s) from the
    onset (1.3 s) that finds a VAD window with speech after it."""
    script = [e for e in mhm("can I get Friday", speech_end=2.9, vad_end=3.45, final_at=3.7)]
    d = run(script)
    [i] = of(d, out.Interruption)
    assert i.t == pytest.approx(2.4) and i.detected_at == 1.9


def test_without_an_stt_the_verdict_is_reported_at_once() -> None:
    """No STT attached: no words will come, the verdict is reported when it arrives."""
    options = EngineOptions(interruption_detection=True, stt=False, backchannel_boundary=None)
    d = run([e for e in mhm() if not isinstance(e, ev.SttFinal)], options=options)
    assert [i.t for i in of(d, out.Interruption)] == [1.9]


def test_a_turn_with_words_of_its_own_is_reported_at_once() -> None:
    """The user spoke before the agent started and the turn holds words: the utterance
    joins it (never a backchannel), so the verdict is reported when it arrives."""
    script = [ev.VadStartOfSpeech(t=0.1, speech_duration=0.1),
              ev.SttFinal(t=0.5, text="I want to book", language="en"),
              *[e for e in mhm() if not isinstance(e, ev.SttFinal | ev.VadStartOfSpeech)]]
    script = [e for e in script if not isinstance(e, ev.VadInferenceDone)]
    script.insert(2, ev.AgentSpeechStarted(t=0.6))
    script = [e for e in script if not (isinstance(e, ev.AgentSpeechStarted) and e.t == 0.0)]
    d = run(sorted(script, key=lambda e: e.t))
    assert [i.t for i in of(d, out.Interruption)] == [1.9]


def test_p5_catches_a_verdict_left_waiting_while_the_agent_is_silent(tmp_path: Path) -> None:
    """The invariant is not vacuous: a chart whose awaited verdict ignores the agent
    stopping under the user's speech fails P5."""
    src = (Path(__file__).resolve().parents[1] / "profiles" / "default.yaml").read_text()
    row = ("        - {event: agent_end, source: awaiting_words, dest: interruption, guard: "
           "[in: user_speech.speaking], actions: [report_awaited_interruption], doc: the agent "
           "stopped under the user's speech; the verdict stands}\n")
    assert row in src
    broken = tmp_path / "broken.yaml"
    broken.write_text(src.replace(row, "        - {event: agent_end, source: awaiting_words, "
                                       "guard: [in: user_speech.speaking]}\n"))

    def factory(options: EngineOptions, profile: str) -> Engine:
        return Engine(options, profile=str(broken))

    with pytest.raises(AssertionError, match="P5"):
        run(mhm("sorry I meant Tuesday", agent_end=1.95), engine_factory=factory)


def test_a_host_without_vad_windows_is_interrupted_at_the_end_of_long_speech() -> None:
    """No VAD windows reach the engine (the timer has nothing to read) and no words come
    before the end: the VAD's end of speech says 1.6 s of speech, longer than a
    backchannel: the verdict is reported then; a 0.7 s one waits for its words."""
    long = [e for e in mhm("can I get Friday", speech_end=2.9, vad_end=3.45, final_at=3.7)
            if not isinstance(e, ev.VadInferenceDone)]
    d = run(long)
    assert [i.t for i in of(d, out.Interruption)] == [3.45]
    short = [e for e in mhm(final_at=2.85) if not isinstance(e, ev.VadInferenceDone)]
    d = run(short)
    assert not of(d, out.Interruption) and not of(d, out.EndOfTurn)


def test_an_awaited_verdict_with_no_windows_does_not_keep_waking_the_engine() -> None:
    """The user speaks on over the agent, no VAD windows and no words reach the engine: the
    timer looks once more, then lets the words or the end of speech decide; the engine gets
    quiet (no timer every 0.1 s for as long as the speech lasts)."""
    d = run([ev.AgentSpeechStarted(t=0.0), ev.VadStartOfSpeech(t=1.4, speech_duration=0.1),
             ev.OverlapVerdict(t=1.9, is_interruption=True, overlap_started_at=1.3)])
    assert d.next_due() is None and d.state["utterance_verdict"] == "awaiting_words"
    assert not of(d, out.Interruption)


@pytest.mark.parametrize("agent_speaking", [True, False])
def test_the_stt_detached_while_words_are_awaited_lets_the_verdict_stand(
        agent_speaking: bool) -> None:
    """Words that can no longer come cannot overrule: detaching the STT while the verdict
    awaits them reports it while the agent speaks, and lets it lapse once the agent is
    silent (the stateful search found the verdict left awaiting with no STT)."""
    script: list[ev.Input] = [
        ev.AgentSpeechStarted(t=0.0),
        ev.VadStartOfSpeech(t=1.4, speech_duration=0.1),
        *windows(1.42, 1.8, 1.3),
        ev.OverlapVerdict(t=1.9, is_interruption=True, overlap_started_at=1.3,
                          detected_at=1.9, probability=0.9),
    ]
    if not agent_speaking:
        script += [ev.VadEndOfSpeech(t=1.95, silence_duration=0.1),
                   ev.AgentSpeechEnded(t=1.96)]
    assert run(script).engine.in_state("utterance_verdict", "awaiting_words")
    script.append(ev.SetStt(t=2.0, enabled=False))
    d = run(script)
    assert d.engine.in_state("utterance_verdict", "interruption")
    assert len(of(d, out.Interruption)) == (1 if agent_speaking else 0)

