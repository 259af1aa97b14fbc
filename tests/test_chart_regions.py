"""Decisions the chart shows (issue 23, steps 9-11): the mode guards of the gate, the shadow
flags turned into regions, and the start transitions of the initial configuration."""

from __future__ import annotations

import pytest

from turnfsm import Engine, EngineOptions
from turnfsm import events as ev
from turnfsm import outputs as out

PROFILES = ["livekit", "default"]


def _gate_rows(engine: Engine, event: str) -> list[tuple[str, ...]]:
    return [tuple(str(g) for g in t.guards) for t in engine.chart.transitions
            if t.region == "gate" and t.event == event and t.source == "passthrough"
            and "not in: stt_input.attached" not in map(str, t.guards)]


@pytest.mark.parametrize("profile", PROFILES)
@pytest.mark.parametrize("event", ["stt_start", "stt_end"])
def test_the_gate_shows_that_stt_speech_events_act_only_in_stt_mode(profile: str,
                                                                     event: str) -> None:
    """The gate's passthrough rows for the STT's start/end of speech are split by
    ``in: mode.stt`` (the action no longer tests the mode)."""
    rows = _gate_rows(Engine(profile=profile), event)
    assert sorted(rows) == [("in: stt_input.attached", "in: mode.stt"),
                            ("in: stt_input.attached", "not in: mode.stt")]


@pytest.mark.parametrize("profile", PROFILES)
@pytest.mark.parametrize("mode, reports", [("vad", False), ("stt", True)])
def test_stt_speech_events_report_speech_only_in_stt_mode(profile: str, mode: str,
                                                          reports: bool) -> None:
    """An STT start and end of speech report the user's speech in stt mode only, both when
    they pass the gate at once and when they are held over agent speech and released."""
    for held in (False, True):
        e = Engine(EngineOptions(turn_detection=mode, interruption_detection=True),
                   profile=profile)
        outs: list[out.Output] = []
        if held:
            outs += e.handle(ev.AgentSpeechStarted(t=0.5))
        outs += e.handle(ev.SttStartOfSpeech(t=1.0))
        outs += e.handle(ev.SttFinal(t=1.2, text="hello there", language="en"))
        outs += e.handle(ev.SttEndOfSpeech(t=1.5))
        if held:
            assert not any(isinstance(o, (out.StartOfSpeech, out.EndOfSpeech)) for o in outs)
            outs += e.handle(ev.AgentSpeechEnded(t=2.0, ignore_user_transcript_until=0.0))
        starts = [o for o in outs if isinstance(o, out.StartOfSpeech)]
        ends = [o for o in outs if isinstance(o, out.EndOfSpeech)]
        assert (bool(starts), bool(ends)) == (reports, reports), (held, outs)


def _delivered(profile: str) -> Engine:
    """An engine whose first turn was delivered and awaits its answer."""
    e = Engine(EngineOptions(), profile=profile)
    outs = e.handle(ev.VadStartOfSpeech(t=1.0, speech_duration=0.2))
    outs += e.handle(ev.SttFinal(t=1.5, text="hello there", language="en"))
    outs += e.handle(ev.VadEndOfSpeech(t=2.0, silence_duration=0.3))
    outs += e.advance(10.0)
    assert any(isinstance(o, out.EndOfTurn) for o in outs), outs
    return e


@pytest.mark.parametrize("profile", PROFILES)
def test_awaiting_answer_is_the_turn_region_delivering(profile: str) -> None:
    """``awaiting_answer`` is a query of ``turn.delivering``: set by the delivery's
    transition, cleared by the answer's, with no flag of its own."""
    e = _delivered(profile)
    assert e.awaiting_answer and e.state()["turn"] == "delivering"
    assert "awaiting_answer" not in vars(e.cx)  # no flag: the property reads the region
    e.handle(ev.EndOfTurnAnswered(t=e.now, accepted=True))
    assert not e.awaiting_answer and e.state()["turn"] != "delivering"
    assert e.handle(ev.EndOfTurnAnswered(t=e.now, accepted=True)) == []  # none awaited


@pytest.mark.parametrize("profile", PROFILES)
def test_the_detector_hears_agent_markers_in_pairs_from_region_detector_marker(
        profile: str) -> None:
    """The detector_marker region sends agent_speech_started once (a re-attached VAD does
    not repeat it), agent_speech_ended at the agent's end, and a restarted detector stream
    hears the agent anew (D10/D11)."""
    e = Engine(EngineOptions(interruption_detection=True), profile=profile)

    def signals(outs: list[out.Output]) -> list[str]:
        return [o.signal for o in outs if isinstance(o, out.DetectorSignal)]

    assert signals(e.handle(ev.AgentSpeechStarted(t=1.0))) == ["agent_speech_started"]
    assert e.state()["detector_marker"] == "told"
    assert signals(e.handle(ev.SetVad(t=1.1, enabled=True))) == []  # told already
    assert signals(e.handle(ev.SetInterruptionDetection(t=1.2, enabled=True))) == [
        "agent_speech_started"]  # a new stream hears it
    assert signals(e.handle(ev.AgentSpeechEnded(t=2.0))) == ["agent_speech_ended"]
    assert e.state()["detector_marker"] == "silent"
    assert signals(e.handle(ev.AgentSpeechEnded(t=2.5))) == []
    e.handle(ev.AgentSpeechStarted(t=3.0))
    e.handle(ev.DetectorFailed(t=3.1))
    assert signals(e.handle(ev.AgentSpeechEnded(t=4.0))) == []  # a failed stream hears nothing
    assert e.state()["detector_marker"] == "silent"
    assert "detector_told_agent" not in vars(e.cx)


@pytest.mark.parametrize("profile", PROFILES)
def test_a_commit_result_is_reported_once_from_region_commit_result(profile: str) -> None:
    """Region commit_result holds how far a commit got: a superseded commit is cancelled, a
    finalized one reports ``ok`` at its delivery, and a cleared one ``cancelled``, each once;
    the Commit record keeps data only."""
    e = Engine(EngineOptions(turn_detection="manual"), profile=profile)

    def results(outs: list[out.Output]) -> list[tuple[object, str]]:
        return [(o.ref, o.status) for o in outs if isinstance(o, out.CommitResult)]

    outs = e.handle(ev.SttInterim(t=1.0, text="hello", language="en"))
    outs += e.handle(ev.CommitUserTurn(t=1.1, ref="a", transcript_timeout=1.0))
    assert e.state()["commit_result"] == "pending"
    outs += e.handle(ev.CommitUserTurn(t=1.2, ref="b", transcript_timeout=1.0))
    assert e.state()["commit_result"] == "pending"
    outs += e.advance(2.5)  # b's timeout: it finalizes (the interim is promoted)
    assert results(outs) == [("a", "cancelled")]
    assert e.state()["commit_result"] == "finalized"
    outs = e.advance(10.0)
    assert results(outs) == [("b", "ok")] and e.awaiting_answer
    assert e.state()["commit_result"] == "none"
    e.handle(ev.EndOfTurnAnswered(t=10.0, accepted=True))
    e.handle(ev.SttFinal(t=11.0, text="again", language="en"))
    e.handle(ev.CommitUserTurn(t=11.1, ref="c"))  # a recent final: it finalizes at once
    assert e.state()["commit_result"] == "finalized"
    assert results(e.handle(ev.ClearUserTurn(t=11.2))) == [("c", "cancelled")]
    assert e.state()["commit_result"] == "none"
    assert not hasattr(e.cx.commit, "resolved") and not hasattr(e.cx.commit, "finalized")


@pytest.mark.parametrize("profile", PROFILES)
@pytest.mark.parametrize("speaks", [False, True])
def test_speech_during_a_wait_is_counted_without_testing_the_wait(profile: str,
                                                                  speaks: bool) -> None:
    """A speech onset during a commit's wait (which it does not cancel, D16) belongs to the
    next turn: the accepted answer leaves the turn open. The wait compares the session's
    onset count with the one it started with; no action tests whether a wait exists."""
    e = Engine(EngineOptions(turn_detection="manual"), profile=profile)
    e.handle(ev.SttFinal(t=1.0, text="hello there", language="en"))
    e.handle(ev.CommitUserTurn(t=1.1))
    w = e.cx.wait
    assert w is not None and not hasattr(w, "new_speech")
    if speaks:
        e.handle(ev.VadStartOfSpeech(t=1.2, speech_duration=0.2))
        e.handle(ev.VadInferenceDone(t=1.3, raw_accumulated_speech=0.3))
    outs = e.advance(5.0)
    assert any(isinstance(o, out.EndOfTurn) for o in outs) and e.awaiting_answer
    e.handle(ev.EndOfTurnAnswered(t=e.now, accepted=True))
    assert e.state()["turn"] == ("open" if speaks else "idle")


def _speech_through_a_clear(profile: str) -> tuple[Engine, list[out.Output]]:
    """The user speaks on through a clear: the speech after it is the next turn's, and the
    final of its last words arrives after the VAD end."""
    e = Engine(EngineOptions(), profile=profile)
    outs: list[out.Output] = []
    for x in [ev.VadStartOfSpeech(t=1.0, speech_duration=0.2),
              ev.VadInferenceDone(t=1.2, raw_accumulated_speech=0.4),
              ev.SttInterim(t=1.3, text="um so", language="en"),
              ev.ClearUserTurn(t=1.5),
              ev.VadInferenceDone(t=2.0, raw_accumulated_speech=1.2),
              ev.SttFinal(t=2.2, text="book a table", language="en"),
              ev.SttInterim(t=2.5, text="for two", language="en"),
              ev.VadInferenceDone(t=2.6, raw_accumulated_speech=1.8),
              ev.VadEndOfSpeech(t=2.9, silence_duration=0.3)]:
        outs += e.advance(x.t) + e.handle(x)
    return e, outs


def test_the_final_wait_keeps_a_segment_open_through_a_clear() -> None:
    """Default profile: region final_wait is ``open`` from a VAD start to its end, a clear
    notwithstanding (vad_segment closes at the clear, and resets the onset): the final of
    the words spoken after the clear is due, so the turn waits for it instead of ending on
    "book a table" and orphaning "for two"."""
    e, outs = _speech_through_a_clear("default")
    assert e.state()["vad_segment"] == "closed" and e.state()["final_wait"] == "pending"
    assert "segment_open" not in vars(e.cx)
    outs += e.advance(3.4) + e.handle(ev.SttFinal(t=3.4, text="for two", language="en"))
    outs += e.advance(10.0)
    assert [o.new_transcript for o in outs if isinstance(o, out.EndOfTurn)] == [
        "book a table for two"]


@pytest.mark.parametrize("backend", ["table", "transitions"])
@pytest.mark.parametrize("td, mode", [("vad", "vad"), ("model", "vad"), ("stt", "stt"),
                                      ("manual", "manual"), ("realtime_llm", "realtime")])
def test_the_start_transitions_set_the_initial_configuration(backend: str, td: str,
                                                             mode: str) -> None:
    """The engine's first step, ``start``, moves the mode and the streams by option
    literals (no state index is poked) on both backends, and leaves nothing queued."""
    for vad, stt, det in [(True, True, False), (False, True, True), (True, False, True)]:
        e = Engine(EngineOptions(turn_detection=td, vad=vad, stt=stt,
                                 interruption_detection=det), backend=backend)
        st = e.state()
        assert (st["mode"], st["vad_input"], st["stt_input"], st["detector"]) == (
            mode, "attached" if vad else "detached", "attached" if stt else "detached",
            "attached" if det else "detached")
        assert not e.cx.queue and not e.cx.out
    rows = [t for t in Engine().chart.transitions if t.event == "start"]
    assert {t.region for t in rows} == {"mode", "vad_input", "stt_input", "detector",
                                        "speech_feedback"}
    assert all(g.kind == "option" for t in rows for g in t.guards) and all(
        not t.actions for t in rows)


def test_a_start_step_that_emits_is_refused() -> None:
    """A chart whose start transitions emit an output (or raise an event) is refused with
    a one-line error naming the chart: the start step only sets the initial configuration."""
    from pathlib import Path

    from turnfsm.chart import load_chart
    from turnfsm.core.registry import RULES
    from turnfsm.errors import ChartError

    text = (Path(__file__).resolve().parents[1] / "states.yaml").read_text()
    old = "      - {event: close, source: running, dest: closed, actions: [close_session]}\n"
    assert old in text
    bad = text.replace(old, old + "      - {event: start, source: running, "
                                  "actions: [boundary_done]}\n").replace(
        "      closed: [close]\n", "      closed: [close, start]\n", 1)
    chart = load_chart(bad, "bad.yaml", registry=RULES)
    with pytest.raises(ChartError, match=r"bad\.yaml: the start step emitted"):
        Engine(chart=chart)


def test_a_released_preflight_preempts_with_its_own_text() -> None:
    """Why ``preflight`` is dispatched at once (``after: now``): a preflight and a final
    held over agent speech are released in order, and each preempts with its own text (a
    queued preflight would preempt after the final replaced it, with an empty text)."""
    e = Engine(EngineOptions(interruption_detection=True), profile="livekit")
    o = e.handle(ev.AgentSpeechStarted(t=0.5))
    o += e.handle(ev.VadStartOfSpeech(t=1.0, speech_duration=0.2))
    o += e.handle(ev.SttPreflight(t=1.2, text="book a", language="en"))
    o += e.handle(ev.SttFinal(t=1.4, text="book a table", language="en"))
    o += e.handle(ev.AgentSpeechEnded(t=2.0, ignore_user_transcript_until=0.0))
    assert [x.new_transcript for x in o if isinstance(x, out.PreemptiveGeneration)] == [
        "book a", "book a table"]
    assert e.chart.events["preflight"].after == 0  # now


@pytest.mark.parametrize("profile", PROFILES)
@pytest.mark.parametrize("feedback", [False, True])
def test_region_speech_feedback_feeds_the_reports_back_by_option(profile: str,
                                                                 feedback: bool) -> None:
    """The start step puts region speech_feedback ``on`` with the option; only then is the
    engine's report of user speech fed back (feedback_started/ended reach the overlap
    region), and the report actions no longer test the option."""
    e = Engine(EngineOptions(speech_feedback=feedback), profile=profile)
    assert e.state()["speech_feedback"] == ("on" if feedback else "off")
    seen: list[str] = []
    e.observe_dispatch(lambda r, s, ev_, fired: seen.append(ev_) if r == "overlap" else None)
    e.handle(ev.VadStartOfSpeech(t=1.0, speech_duration=0.2))
    e.handle(ev.VadEndOfSpeech(t=2.0, silence_duration=0.3))
    assert (("feedback_started" in seen), ("feedback_ended" in seen)) == (feedback, feedback)


@pytest.mark.parametrize("answer_at, close, eot_at, closed_early", [
    (1.4, False, 1.7, False),  # delay left: the deadline is armed (anchor 1.2 + 0.5)
    (3.0, False, 3.0, False),  # the answer came after the delay: the wait ends at once
    (1.4, True, 1.4, True),  # closing skips what is left (R4)
])
def test_the_model_answer_arms_or_ends_the_wait_by_transition(
        answer_at: float, close: bool, eot_at: float, closed_early: bool) -> None:
    """The model's answer moves the turn to waiting by one of three transitions (guard
    ``delay_left``, ``in: lifecycle.closed``) instead of a branch in the action."""
    e = Engine(EngineOptions(turn_detection="model"), profile="livekit")
    outs = e.handle(ev.VadStartOfSpeech(t=1.0, speech_duration=0.2))
    outs += e.handle(ev.SttFinal(t=1.2, text="hello there", language="en"))
    outs += e.handle(ev.VadEndOfSpeech(t=1.3, silence_duration=0.1))
    (req,) = [o for o in outs if isinstance(o, out.EouModelRequest)]
    if close:
        outs += e.handle(ev.Close(t=1.35))
    outs += e.handle(ev.EouModelAnswered(t=answer_at, request_id=req.request_id,
                                         probability=1.0, threshold=0.5))
    outs += e.advance(10.0)
    (eot,) = [o for o in outs if isinstance(o, out.EndOfTurn)]
    assert eot.t == pytest.approx(eot_at) and eot.decision.closed_early is closed_early


def test_stt_usage_goes_through_region_stt_input() -> None:
    """An STT usage report is a chart event of region stt_input: its request id joins the
    turn while the STT is attached; detached, it is dropped (stt_inactive)."""
    e = Engine(EngineOptions())
    assert e.handle(ev.SttUsage(t=1.0, request_id="r1")) == []
    assert e.cx.turn.request_ids == ["r1"]
    e.handle(ev.SetStt(t=1.1, enabled=False))
    (drop,) = e.handle(ev.SttUsage(t=1.2, request_id="r2"))
    assert isinstance(drop, out.InputDropped) and drop.reason == "stt_inactive"
    assert e.cx.turn.request_ids == ["r1"]
    assert e.chart.events["stt_usage"].kind == "input"  # not data
