"""The engine's contract, driven directly: time, requests and answers, options, fixes."""

from __future__ import annotations

import math
from functools import partial
from typing import Any

import pytest

from turnfsm import EndpointingOptions, EngineOptions, UserTurnLimit
from turnfsm import Engine as _Engine
from turnfsm import events as ev
from turnfsm import outputs as out
from turnfsm.errors import ConfigError, InputError
from turnfsm.testing import ScriptedAnswers, VirtualHost

# These examples pin the livekit profile's rules (the reference's, minus its defects); the
# default profile's own rules have their examples in test_profiles.py.
Engine = partial(_Engine, profile="livekit")


class Driver(VirtualHost):
    """The testing host, with this module's short names (``e``, ``outs``)."""

    def __init__(self, engine: Engine, *, accept: bool = True,
                 model: tuple[float, float | None] | None = None, fail: bool = False) -> None:
        p, thr = model or (1.0, None)
        super().__init__(engine, ScriptedAnswers(accept=accept, probability=p, threshold=thr,
                                                 model_fails=fail))
        self.e = engine
        self.outs = self.outputs


def speech(d: Driver, start: float, end: float, text: str | None, tick: float | None = None,
           final_at: float | None = None) -> None:
    d.at(start, ev.VadStartOfSpeech(t=start, speech_duration=0.2))
    tk = tick if tick is not None else end - 0.2
    d.at(tk, ev.VadInferenceDone(t=tk, raw_accumulated_speech=tk - start + 0.2))
    if text is not None and final_at is None:
        d.at(tk + 0.05, ev.SttFinal(t=tk + 0.05, text=text, language="en", confidence=0.9))
    d.at(end, ev.VadEndOfSpeech(t=end, silence_duration=0.5))
    if text is not None and final_at is not None:
        d.at(final_at, ev.SttFinal(t=final_at, text=text, language="en", confidence=0.9))


def test_end_of_turn_is_a_deadline_anchored_at_the_last_speech() -> None:
    """R30: the turn ends min_delay after the last speech window, via next_deadline/advance."""
    d = Driver(Engine(EngineOptions(endpointing=EndpointingOptions(min_delay=0.5))))
    speech(d, 1.0, 2.0, "hello")
    assert d.e.next_deadline() == 2.3  # last speech 1.8 + 0.5
    assert d.of(out.EndOfTurn) == []
    d.at(2.3)
    (eot,) = d.of(out.EndOfTurn)
    assert eot.t == 2.3 and eot.new_transcript == "hello" and eot.stopped_speaking_at == 1.8
    assert d.e.state()["turn"] == "idle" and d.e.next_deadline() is None


def test_resumed_speech_cancels_the_wait() -> None:
    """R33: a VAD start during the wait cancels it; the merged turn ends later."""
    d = Driver(Engine())
    speech(d, 1.0, 2.0, "I want")
    d.at(2.1, ev.VadStartOfSpeech(t=2.1, speech_duration=0.2))
    assert d.e.state()["turn"] == "open" and d.e.next_deadline() is None
    speech(d, 2.5, 3.5, "to go")
    d.at(10.0)
    assert [x.new_transcript for x in d.of(out.EndOfTurn)] == ["I want to go"]


def test_refused_turn_keeps_accumulating() -> None:
    """R32: a host that refuses the end of turn keeps the transcript for the next one."""
    d = Driver(Engine(), accept=False)
    speech(d, 1.0, 2.0, "yeah")
    d.at(3.0)
    d.accept = True
    speech(d, 4.0, 5.0, "what about Friday")
    d.at(10.0)
    assert [x.new_transcript for x in d.of(out.EndOfTurn)] == ["yeah", "yeah what about Friday"]


def test_inputs_wait_for_the_end_of_turn_answer() -> None:
    """An input arriving before EndOfTurn is answered is applied after the answer, in order."""
    e = Engine()
    for x in (ev.VadStartOfSpeech(t=1.0), ev.VadInferenceDone(t=1.2, raw_accumulated_speech=0.3),
              ev.SttFinal(t=1.3, text="hi")):
        e.handle(x)
    outs = e.handle(ev.VadEndOfSpeech(t=2.0))
    assert isinstance(outs[-1], out.EndOfTurn) and e.awaiting_answer
    assert e.handle(ev.SttFinal(t=2.1, text="there")) == []  # queued
    later = e.handle(ev.EndOfTurnAnswered(t=2.1, accepted=True))
    assert [o.text for o in later if isinstance(o, out.Transcript)] == ["there"]
    assert e.cx.turn.transcript == "there"


def test_model_probability_chooses_the_delay() -> None:
    """R29: p below the threshold waits max_delay; at or above it, min_delay."""
    for p, expected in ((0.05, 3.0), (0.5, 0.5)):
        d = Driver(Engine(EngineOptions(turn_detection="model")), model=(p, 0.1))
        speech(d, 1.0, 2.0, "book a table")
        d.at(20.0)
        (eot,) = d.of(out.EndOfTurn)
        assert eot.t == pytest.approx(1.8 + expected)


def test_model_failure_means_min_delay() -> None:
    """D20: any model failure gives min_delay, never a stuck turn."""
    d = Driver(Engine(EngineOptions(turn_detection="model")), model=(0.0, 0.9), fail=True)
    speech(d, 1.0, 2.0, "book a table")
    d.at(20.0)
    assert [x.t for x in d.of(out.EndOfTurn)] == [2.3]


def test_stale_model_answer_is_ignored() -> None:
    """An answer to a cancelled request changes nothing."""
    e = Engine(EngineOptions(turn_detection="model"))
    for x in (ev.VadStartOfSpeech(t=1.0), ev.VadInferenceDone(t=1.5, raw_accumulated_speech=0.5),
              ev.SttFinal(t=1.6, text="hello"), ev.VadEndOfSpeech(t=2.0)):
        outs = e.handle(x)
    (req,) = [o for o in outs if isinstance(o, out.EouModelRequest)]
    e.handle(ev.VadStartOfSpeech(t=2.1))
    assert not e.model_request_pending(req.request_id)
    assert e.handle(ev.EouModelAnswered(t=2.2, request_id=req.request_id, probability=0.9)) == []
    assert e.state()["turn"] == "open"


def test_commit_never_consults_the_model() -> None:
    """D18: an explicit commit waits min_delay without asking the end-of-turn model."""
    d = Driver(Engine(EngineOptions(turn_detection="model")), model=(0.0, 0.9))
    d.at(1.0, ev.SttFinal(t=1.0, text="cancel it"))
    n = len(d.of(out.EouModelRequest))
    d.at(1.2, ev.CommitUserTurn(t=1.2))
    d.at(10.0)
    assert len(d.of(out.EouModelRequest)) == n
    assert d.of(out.CommitResult)[-1].transcript == "cancel it"


def test_commit_with_nothing_leaves_no_authority() -> None:
    """D17: a commit in stt mode with an empty transcript schedules nothing and commits nothing."""
    d = Driver(Engine(EngineOptions(turn_detection="stt")))
    d.at(1.0, ev.CommitUserTurn(t=1.0, transcript_timeout=0.2))
    d.at(2.0)
    assert d.e.state()["authority"] == "none"
    assert d.of(out.EndOfTurn) == []


def test_interim_does_not_survive_a_delivered_turn() -> None:
    """D36: after a delivery the next turn's current transcript starts empty."""
    d = Driver(Engine())
    speech(d, 1.0, 2.0, "hello")
    d.at(2.1, ev.SttInterim(t=2.1, text="hello th"))
    d.at(5.0)
    assert d.of(out.EndOfTurn) and d.e.current_transcript == ""


def held_session(boundary: tuple[float, float] | None = (1.0, 1.0)) -> Driver:
    d = Driver(Engine(EngineOptions(interruption_detection=True, backchannel_boundary=boundary)))
    d.at(0.0, ev.AudioPushed(t=0.02))
    d.at(1.0, ev.AgentSpeechStarted(t=1.0))
    d.at(3.0, ev.VadStartOfSpeech(t=3.0, speech_duration=0.2))
    d.at(3.4, ev.VadInferenceDone(t=3.4, raw_accumulated_speech=0.6))
    d.at(3.5, ev.SttFinal(t=3.5, ref="stop", text="stop", start_time=2.8, end_time=3.4))
    assert [h.ref for h in d.e.cx.held] == ["stop"]
    return d


def test_release_is_synchronous_so_a_start_of_speech_cannot_discard_it() -> None:
    """D5: an STT start of speech right after the agent stops never discards held finals."""
    d = held_session()
    d.at(3.6, ev.AgentSpeechEnded(t=3.6, ignore_user_transcript_until=3.0))
    d.at(3.6, ev.SttStartOfSpeech(t=3.6))
    assert [o.text for o in d.of(out.Transcript)] == ["stop"]


def test_forced_release_keeps_provider_order() -> None:
    """D26: after the detector is removed, held finals come before newer ones."""
    d = held_session()
    d.at(3.7, ev.SetInterruptionDetection(t=3.7, enabled=False))
    d.at(3.7, ev.SttFinal(t=3.7, text="please"))
    assert [o.text for o in d.of(out.Transcript)] == ["stop", "please"]
    assert d.e.cx.turn.transcript == "stop please"


def test_speech_before_the_agent_started_is_never_trimmed() -> None:
    """D7: a late final for speech that ended before the agent began is released."""
    d = Driver(Engine(EngineOptions(interruption_detection=True)))
    d.at(0.0, ev.AudioPushed(t=0.02))
    d.at(1.0, ev.AgentSpeechStarted(t=1.0))
    d.at(1.2, ev.SttFinal(t=1.2, text="my order number is five", start_time=0.2, end_time=0.9))
    d.at(6.0, ev.AgentSpeechEnded(t=6.0))
    assert [o.text for o in d.of(out.Transcript)] == ["my order number is five"]


def test_backchannel_is_dropped_with_a_record() -> None:
    """R47: held speech that ended before the ignore bound is dropped, with a drop record."""
    d = held_session()
    d.at(8.0, ev.AgentSpeechEnded(t=8.0))
    (drop,) = d.of(out.TranscriptDropped)
    assert (drop.ref, drop.reason) == ("stop", "backchannel_trim")
    assert d.of(out.Transcript) == []


def test_detector_markers_are_well_formed() -> None:
    """I15: agent_started, overlap started/ended, agent_ended: an overlap closes first."""
    d = held_session()
    d.at(3.6, ev.AgentSpeechEnded(t=3.6))
    d.at(3.7, ev.AgentSpeechEnded(t=3.7))
    assert [s.signal for s in d.of(out.DetectorSignal)] == [
        "agent_speech_started", "overlap_speech_started", "overlap_speech_ended",
        "agent_speech_ended"]


def test_agent_starting_over_user_speech_opens_an_overlap() -> None:
    """D10: the detector judges user speech that was already going when the agent started."""
    d = Driver(Engine(EngineOptions(interruption_detection=True)))
    d.at(1.0, ev.VadStartOfSpeech(t=1.0, speech_duration=0.2))
    d.at(1.5, ev.AgentSpeechStarted(t=1.5))
    sig = d.of(out.DetectorSignal)
    assert [s.signal for s in sig] == ["agent_speech_started", "overlap_speech_started"]
    assert sig[1].started_at == pytest.approx(0.8)
    assert d.e.state()["overlap"] == "open"


def test_mapped_stt_times_are_clamped_to_arrival() -> None:
    """D13: an STT time ahead of the wall clock counts as the arrival time."""
    d = Driver(Engine(EngineOptions(interruption_detection=True)))
    d.at(0.0, ev.AudioPushed(t=0.02))
    d.at(1.0, ev.AgentSpeechStarted(t=1.0))
    d.at(2.0, ev.SttFinal(t=2.0, text="uh-huh", start_time=8.5, end_time=9.0))
    d.at(5.0, ev.AgentSpeechEnded(t=5.0))  # bound 5.0 - 1.0: arrival 2.0 is before it
    assert [x.reason for x in d.of(out.TranscriptDropped)] == ["backchannel_trim"]


def test_turn_limit_counts_words_since_the_agent_spoke() -> None:
    """R25: words accumulate across turns until the agent speaks; punctuation is not a word."""
    d = Driver(Engine(EngineOptions(user_turn_limit=UserTurnLimit(max_words=4))))
    d.at(1.0, ev.SttFinal(t=1.0, text="one two -"))
    d.at(3.0, ev.SttFinal(t=3.0, text="three four"))
    (x,) = d.of(out.UserTurnExceeded)
    assert x.accumulated_word_count == 4 and x.accumulated_transcript == "one two - three four"
    d.at(4.0, ev.AgentSpeechStarted(t=4.0))
    assert d.e.cx.tracker.words == 0


def test_clear_is_total() -> None:
    """I11: after a clear no decision is pending and every final is dropped with a record."""
    d = Driver(Engine())
    speech(d, 1.0, 2.0, "forget it")
    d.at(2.1, ev.ClearUserTurn(t=2.1))
    assert d.e.next_deadline() is None and d.e.cx.turn.transcript == ""
    assert d.e.cx.tracker.words == 0 and d.e.state()["authority"] == "none"
    assert [x.reason for x in d.of(out.TranscriptDropped)] == ["clear_user_turn"]
    d.at(10.0)
    assert d.of(out.EndOfTurn) == []


def test_nothing_after_close() -> None:
    """I20: once closed, inputs are ignored and nothing is emitted."""
    e = Engine()
    e.handle(ev.Close(t=1.0))
    assert e.closed
    assert e.handle(ev.VadStartOfSpeech(t=2.0)) == []
    assert e.handle(ev.VadInferenceDone(t=2.1, raw_accumulated_speech=0.1)) == []


@pytest.mark.parametrize("bad", [
    ev.VadStartOfSpeech(t=math.nan),
    ev.VadStartOfSpeech(t=math.inf),
    ev.VadInferenceDone(t=math.nan),
    ev.VadInferenceDone(t=1.0, raw_accumulated_speech=math.nan),
    ev.SttFinal(t=1.0, text="x", confidence=math.nan),
])
def test_bad_inputs_raise_and_change_nothing(bad: ev.Input) -> None:
    """NaN or infinite values are refused with InputError; the engine is unchanged."""
    e = Engine()
    before = e.state()
    with pytest.raises(InputError):
        e.handle(bad)
    assert e.state() == before and e.cx.turn.transcript == ""


def test_time_going_backwards_is_refused() -> None:
    """An input older than the previous one is refused; the session goes on."""
    e = Engine()
    e.handle(ev.SttFinal(t=2.0, text="a"))
    with pytest.raises(InputError, match="back in time"):
        e.handle(ev.SttFinal(t=1.0, text="b"))
    with pytest.raises(InputError, match="back in time"):
        e.handle(ev.VadInferenceDone(t=1.0))
    e.handle(ev.SttFinal(t=2.5, text="c"))
    assert e.cx.turn.transcript == "a c"


@pytest.mark.parametrize(("value", "expected"), [
    (None, None), (0.5, (0.5, 0.5)), ([1.0, 2.0], (1.0, 2.0)), ((), None), (True, (1.0, 1.0)),
])
def test_backchannel_boundary_forms(value: Any, expected: Any) -> None:
    """A number, a pair, or null (or empty) is accepted as the backchannel boundary."""
    assert EngineOptions(backchannel_boundary=value).backchannel_boundary == expected


@pytest.mark.parametrize("value", [[-1.0, 2.0], [1.0], [1.0, 2.0, 3.0], [math.nan, 1.0], "1",
                                   -0.5])
def test_invalid_backchannel_boundary_refused(value: Any) -> None:
    """Negative, NaN, wrong-length or non-numeric boundaries are refused with ConfigError."""
    with pytest.raises(ConfigError, match="backchannel_boundary"):
        EngineOptions(backchannel_boundary=value)


def test_invalid_options_refused() -> None:
    """Unknown modes, bad endpointing and bad limits are refused when options are built."""
    with pytest.raises(ConfigError):
        EngineOptions(turn_detection="sometimes")
    with pytest.raises(ConfigError):
        EndpointingOptions(mode="dynamic", alpha=0.0)
    with pytest.raises(ConfigError):
        EndpointingOptions(min_delay=-1.0)
    with pytest.raises(ConfigError):
        UserTurnLimit(max_words=math.nan)
    with pytest.raises(ConfigError):
        Engine(backend="threads")


def test_update_options_switches_modes_and_cancels_for_manual() -> None:
    """R9: switching to manual cancels a pending decision and resets authority."""
    d = Driver(Engine(EngineOptions(turn_detection="model")), model=(0.0, 0.9))
    speech(d, 1.0, 2.0, "hello")
    assert d.e.next_deadline() is not None
    d.at(2.1, ev.UpdateOptions(t=2.1, set_turn_detection=True, turn_detection="manual"))
    assert d.e.next_deadline() is None and d.e.state()["mode"] == "manual"
    d.at(10.0)
    assert d.of(out.EndOfTurn) == []


def test_commit_result_is_the_turn_it_committed() -> None:
    """I18: the commit resolves at delivery with the delivered transcript, late finals included."""
    d = Driver(Engine(EngineOptions(turn_detection="manual",
                                    endpointing=EndpointingOptions(min_delay=1.0))))
    d.at(1.0, ev.SttFinal(t=1.0, text="Call mom"))
    d.at(1.2, ev.CommitUserTurn(t=1.2, ref="c"))
    assert d.of(out.CommitResult) == []
    d.at(1.5, ev.SttFinal(t=1.5, text="on speaker"))
    d.at(5.0)
    (eot,) = d.of(out.EndOfTurn)
    (res,) = d.of(out.CommitResult)
    assert res.status == "ok" and res.transcript == eot.new_transcript == "Call mom on speaker"
    assert res.t == eot.t


def test_commit_cleared_before_delivery_is_cancelled() -> None:
    """A clear after a commit scheduled its decision resolves the commit as cancelled."""
    d = Driver(Engine(EngineOptions(turn_detection="manual",
                                    endpointing=EndpointingOptions(min_delay=1.0))))
    d.at(1.0, ev.SttFinal(t=1.0, text="never mind"))
    d.at(1.2, ev.CommitUserTurn(t=1.2, ref="c"))
    d.at(1.4, ev.ClearUserTurn(t=1.4))
    d.at(5.0)
    assert [(r.ref, r.status) for r in d.of(out.CommitResult)] == [("c", "cancelled")]
    assert d.of(out.EndOfTurn) == []


# -- regressions found by the property tests ----------------------------------------------


def test_leaving_manual_drops_the_commit_decision() -> None:
    """B1/I19: switching from manual to vad cancels the commit's pending decision."""
    d = Driver(Engine(EngineOptions(turn_detection="manual")))
    d.at(1.0, ev.SttFinal(t=1.0, text="hello"))
    d.at(1.2, ev.CommitUserTurn(t=1.2))
    d.at(1.3, ev.UpdateOptions(t=1.3, set_turn_detection=True, turn_detection="vad"))
    assert d.e.state()["turn"] == "open" and d.e.state()["authority"] == "none"
    d.at(5.0)
    assert d.of(out.EndOfTurn) == []


def test_speech_cancelling_a_commit_outside_manual_resets_authority() -> None:
    """B2/I9: in vad mode a VAD start cancels a commit's wait and its authority."""
    d = Driver(Engine())
    d.at(0.5, ev.VadStartOfSpeech(t=0.5))
    d.at(0.6, ev.VadEndOfSpeech(t=0.6))
    d.at(1.0, ev.SttFinal(t=1.0, text="hello"))
    d.at(1.01, ev.VadStartOfSpeech(t=1.01))
    d.at(1.2, ev.CommitUserTurn(t=1.2))
    d.at(1.3, ev.VadStartOfSpeech(t=1.3))
    assert d.e.state()["authority"] == "none"


def test_detector_attached_mid_agent_speech_hears_agent_started() -> None:
    """B5/I15: a detector that becomes effective while the agent speaks gets agent_started."""
    d = Driver(Engine(EngineOptions(interruption_detection=True, vad=False)))
    d.at(0.0, ev.AgentSpeechStarted(t=0.0))
    d.at(0.0, ev.SetVad(t=0.0, enabled=True))
    d.at(0.1, ev.UserSpeechStarted(t=0.1))
    assert [x.signal for x in d.of(out.DetectorSignal)] == [
        "agent_speech_started", "overlap_speech_started"]


def test_invalid_update_options_changes_nothing() -> None:
    """B6: an invalid option change is refused whole: no part applied, the clock not moved."""
    e = Engine()
    with pytest.raises(ConfigError):
        e.handle(ev.UpdateOptions(t=2.0, endpointing={"min_delay": 0.1},
                                  set_turn_detection=True, turn_detection="bogus"))
    assert e.cx.endpointing.min_delay == 0.5
    e.handle(ev.SttFinal(t=1.5, text="still fine"))


def test_wrong_field_type_is_an_input_error() -> None:
    """B7: a field of the wrong type raises InputError before anything changes."""
    e = Engine()
    with pytest.raises(InputError, match="speech_duration must be a number"):
        e.handle(ev.VadStartOfSpeech(t=3.0, speech_duration="x"))  # type: ignore[arg-type]
    with pytest.raises(InputError, match="must be a number"):
        e.handle(ev.VadInferenceDone(t=3.0, raw_accumulated_speech="x"))  # type: ignore[arg-type]
    assert e.state()["user_speech"] == "silent"
    e.handle(ev.VadStartOfSpeech(t=1.0))


def test_whitespace_transcript_is_empty() -> None:
    """B8/I21: a whitespace-only final or preflight never makes an empty preemptive reply."""
    d = Driver(Engine())
    d.at(1.0, ev.SttPreflight(t=1.0, text=" "))
    d.at(1.1, ev.SttFinal(t=1.1, text="  "))
    assert d.of(out.PreemptiveGeneration) == [] and d.of(out.EndOfTurn) == []


def test_anchor_at_time_zero_is_a_time() -> None:
    """B9/I8: speech at t=0 anchors the delay like any other time."""
    d = Driver(Engine())
    d.at(0.0, ev.VadStartOfSpeech(t=0.0))
    d.at(0.0, ev.VadInferenceDone(t=0.0, raw_accumulated_speech=0.1))
    d.at(0.1, ev.SttFinal(t=0.1, text="hi"))
    d.at(0.2, ev.VadEndOfSpeech(t=0.2))
    d.at(5.0)
    assert [x.t for x in d.of(out.EndOfTurn)] == [0.5]


def test_stt_authority_does_not_outlive_its_utterance() -> None:
    """B11/I9/D17: an STT end of speech on an empty turn waits for its own utterance's final
    only: the next speech onset ends that; leaving stt mode ends any stt authority."""
    for onset in (ev.SttStartOfSpeech(t=1.0), ev.VadStartOfSpeech(t=1.0)):
        d = Driver(Engine(EngineOptions(turn_detection="stt")))
        d.at(0.0, ev.SttEndOfSpeech(t=0.0))
        assert d.e.state()["authority"] == "stt_awaiting_final"
        d.at(1.0, onset)
        assert d.e.state()["authority"] == "none"
        d.at(1.5, ev.SttFinal(t=1.5, text="new words"))
        assert not d.of(out.PreemptiveGeneration) and d.e.state()["turn"] == "open"
    d = Driver(Engine(EngineOptions(turn_detection="stt")))
    d.at(1.0, ev.SttFinal(t=1.0, text="hi"))
    d.at(1.1, ev.SttEndOfSpeech(t=1.1))
    assert d.e.state()["authority"] == "stt_committed"
    d.at(1.2, ev.UpdateOptions(t=1.2, set_turn_detection=True, turn_detection="vad"))
    assert d.e.state()["authority"] == "none"


def test_commit_waiting_for_a_final_makes_the_decision() -> None:
    """B12/I10: the final a commit waits for ends the turn with the commit's skip_reply."""
    d = Driver(Engine())
    d.at(0.5, ev.VadStartOfSpeech(t=0.5))
    d.at(0.9, ev.VadInferenceDone(t=0.9, raw_accumulated_speech=0.4))
    d.at(1.0, ev.VadEndOfSpeech(t=1.0))
    d.at(1.2, ev.CommitUserTurn(t=1.2, skip_reply=True, ref="c"))
    d.at(1.5, ev.SttFinal(t=1.5, text="book a table"))
    d.at(5.0)
    (eot,) = d.of(out.EndOfTurn)
    assert eot.new_transcript == "book a table" and eot.skip_reply is True
    assert d.of(out.CommitResult)[0].transcript == "book a table"
    assert d.e.cx.turn.skip_reply_sticky is False


def test_repeated_agent_start_does_not_reopen_an_overlap_silently() -> None:
    """B13/I15: a second agent start over ongoing speech opens no overlap the detector missed."""
    d = Driver(Engine(EngineOptions(interruption_detection=True)))
    d.at(0.0, ev.AgentSpeechStarted(t=0.0))
    d.at(0.1, ev.VadStartOfSpeech(t=0.1))
    d.at(0.2, ev.UserSpeechEnded(t=0.2))
    d.at(0.3, ev.AgentSpeechStarted(t=0.3))
    d.at(0.5, ev.VadEndOfSpeech(t=0.5))
    assert [x.signal for x in d.of(out.DetectorSignal)] == [
        "agent_speech_started", "overlap_speech_started", "overlap_speech_ended"]


def test_commit_timeout_survives_a_copy() -> None:
    """B14: a copied engine keeps its commit's timeout (timers are not keyed by object id)."""
    import copy

    e = Engine()
    e.handle(ev.CommitUserTurn(t=0.0))
    assert copy.deepcopy(e).next_timer() == e.next_timer() is not None


def test_vad_reattach_does_not_reannounce_the_agent() -> None:
    """B16/I15: re-attaching the VAD while the agent speaks sends no second agent_started."""
    d = Driver(Engine(EngineOptions(interruption_detection=True)))
    d.at(0.0, ev.AgentSpeechStarted(t=0.0))
    d.at(0.1, ev.SetVad(t=0.1, enabled=False))
    d.at(0.2, ev.SetVad(t=0.2, enabled=True))
    d.at(0.3, ev.AgentSpeechEnded(t=0.3))
    assert [x.signal for x in d.of(out.DetectorSignal)] == [
        "agent_speech_started", "agent_speech_ended"]


def test_vad_detach_closes_the_open_overlap_with_its_marker() -> None:
    """B22/I15: detaching the VAD mid-overlap sends overlap_speech_ended first."""
    d = Driver(Engine(EngineOptions(interruption_detection=True)))
    d.at(0.0, ev.AgentSpeechStarted(t=0.0))
    d.at(0.1, ev.UserSpeechStarted(t=0.1))
    d.at(0.2, ev.SetVad(t=0.2, enabled=False))
    d.at(1.0, ev.AgentSpeechEnded(t=1.0))
    assert [x.signal for x in d.of(out.DetectorSignal)] == [
        "agent_speech_started", "overlap_speech_started", "overlap_speech_ended",
        "agent_speech_ended"]


def test_restarted_detector_stream_hears_a_whole_agent_speech() -> None:
    """B23/I15: a detector restarted while ineffective is told of the agent when it becomes so."""
    d = Driver(Engine(EngineOptions(interruption_detection=False)))
    d.at(0.0, ev.AgentSpeechStarted(t=0.0))
    d.at(0.0, ev.SetInterruptionDetection(t=0.0, enabled=True))
    d.at(0.0, ev.SetVad(t=0.0, enabled=False))
    d.at(0.0, ev.SetInterruptionDetection(t=0.0, enabled=True))
    d.at(0.0, ev.SetVad(t=0.0, enabled=True))
    d.at(0.1, ev.UserSpeechStarted(t=0.1))
    d.at(0.5, ev.AgentSpeechEnded(t=0.5))
    assert [x.signal for x in d.of(out.DetectorSignal)] == [
        "agent_speech_started",  # first stream
        "agent_speech_started", "overlap_speech_started", "overlap_speech_ended",
        "agent_speech_ended"]  # second stream


def test_repeated_answer_after_new_speech_is_not_a_duplicate() -> None:
    """D24 bound: the same words said again (new speech) are not taken for a late final."""
    d = Driver(Engine(EngineOptions(turn_detection="manual")))
    d.at(1.0, ev.VadStartOfSpeech(t=1.0))
    d.at(1.2, ev.SttInterim(t=1.2, text="yes"))
    d.at(1.3, ev.VadEndOfSpeech(t=1.3))
    d.at(1.5, ev.CommitUserTurn(t=1.5, transcript_timeout=0.1))
    d.at(3.0, ev.VadStartOfSpeech(t=3.0))
    d.at(3.4, ev.SttFinal(t=3.4, text="yes"))
    assert [x.text for x in d.of(out.TranscriptDropped)] == []
    assert d.e.cx.turn.transcript == "yes"


def test_transcripts_held_at_close_are_dropped_with_a_record() -> None:
    """D28/I3: transcripts held at close are dropped with reason 'closed', never silently."""
    d = held_session()
    d.at(4.0, ev.Close(t=4.0))
    assert [(x.ref, x.reason) for x in d.of(out.TranscriptDropped)] == [("stop", "closed")]


def test_release_on_vad_detach_closes_the_overlap_with_its_marker() -> None:
    """I15: an STT end released by detaching the VAD closes the open overlap with a marker."""
    d = Driver(Engine(EngineOptions(turn_detection="stt", interruption_detection=True,
                                    backchannel_boundary=None)))
    d.at(0.0, ev.AgentSpeechStarted(t=0.0))
    d.at(0.0, ev.UserSpeechStarted(t=0.0))
    d.at(0.0, ev.SttEndOfSpeech(t=0.0))
    d.at(0.0, ev.SetVad(t=0.0, enabled=False))
    d.at(0.0, ev.AgentSpeechEnded(t=0.0))
    assert [x.signal for x in d.of(out.DetectorSignal)] == [
        "agent_speech_started", "overlap_speech_started", "overlap_speech_ended",
        "agent_speech_ended"]


def test_stt_final_after_its_end_of_speech_ends_the_turn() -> None:
    """Bug 1 (R21, R18.9): in stt mode a final arriving after its utterance's STT end of
    speech is preempted and decided: the turn ends min_delay after its anchor, alone."""
    d = Driver(Engine(EngineOptions(turn_detection="stt", vad=False)))
    d.at(0.9, ev.SttStartOfSpeech(t=0.9))
    d.at(2.0, ev.SttEndOfSpeech(t=2.0))
    assert d.e.state()["authority"] == "stt_awaiting_final" and not d.of(out.EndOfTurn)
    d.at(2.1, ev.SttFinal(t=2.1, text="What time is it"))
    assert [p.new_transcript for p in d.of(out.PreemptiveGeneration)] == ["What time is it"]
    assert d.e.state()["authority"] == "stt_committed"
    d.at(5.0)
    (eot,) = d.of(out.EndOfTurn)
    assert eot.t == 2.6 and eot.new_transcript == "What time is it"
    assert eot.started_speaking_at == 0.9


def test_a_commit_whose_decision_a_mode_change_drops_is_cancelled_then() -> None:
    """Bug 2 (I18, R39): the commit's result is cancelled when the mode change drops its
    decision, never resolved later with another turn's words."""
    d = Driver(Engine(EngineOptions(endpointing=EndpointingOptions(min_delay=2.0))))
    d.at(1.0, ev.VadStartOfSpeech(t=1.0))
    d.at(1.5, ev.VadInferenceDone(t=1.5, raw_accumulated_speech=0.5))
    d.at(1.6, ev.SttFinal(t=1.6, text="Book a table"))
    d.at(1.8, ev.VadEndOfSpeech(t=1.8))
    d.at(1.9, ev.CommitUserTurn(t=1.9, ref="c"))
    assert not d.of(out.CommitResult) and d.e.state()["turn"] in ("predicting", "waiting")
    d.at(2.5, ev.UpdateOptions(t=2.5, set_turn_detection=True, turn_detection="manual"))
    (res,) = d.of(out.CommitResult)
    assert (res.t, res.ref, res.status) == (2.5, "c", "cancelled")
    d.at(2.6, ev.UpdateOptions(t=2.6, set_turn_detection=True, turn_detection="vad"))
    d.at(5.0, ev.VadStartOfSpeech(t=5.0))
    d.at(5.5, ev.VadInferenceDone(t=5.5, raw_accumulated_speech=0.5))
    d.at(5.6, ev.SttFinal(t=5.6, text="for two"))
    d.at(5.8, ev.VadEndOfSpeech(t=5.8))
    d.at(9.0)
    assert [e.new_transcript for e in d.of(out.EndOfTurn)] == ["Book a table for two"]
    assert len(d.of(out.CommitResult)) == 1


def test_an_accepted_delivery_takes_its_onset_along_when_no_new_speech_started() -> None:
    """Bug 3 (D4, I7, I23): a late window moving the anchor during the wait does not make the
    delivered turn's onset the next turn's; speech that started during the wait keeps it."""
    d = Driver(Engine(EngineOptions(turn_detection="stt",
                                    endpointing=EndpointingOptions(min_delay=1.0))))
    d.at(12.5, ev.VadStartOfSpeech(t=12.5, speech_duration=0.2, inference_duration=0.02))
    d.at(13.2, ev.VadInferenceDone(t=13.2, raw_accumulated_speech=0.7))
    d.at(13.3, ev.SttFinal(t=13.3, text="Call my mother"))
    d.at(13.5, ev.VadEndOfSpeech(t=13.5))
    d.at(13.55, ev.SttEndOfSpeech(t=13.55))
    d.at(13.8, ev.VadInferenceDone(t=13.8, raw_accumulated_speech=0.1))  # late: anchor moves
    d.at(20.0)
    assert [e.started_speaking_at for e in d.of(out.EndOfTurn)] == [pytest.approx(12.28)]
    assert d.e.cx.speech_start_time is None and d.e.state()["turn"] == "idle"
    d.at(21.2, ev.SttStartOfSpeech(t=21.2, speech_start_time=21.1))
    assert d.of(out.StartOfSpeech)[-1].speech_start_time == 21.1


def test_a_commit_whose_decision_speech_cancels_is_cancelled_then() -> None:
    """I18: outside manual mode the user speaking again cancels a commit's decision; its
    result is cancelled then, and the words go on into the turn (nothing lost)."""
    d = Driver(Engine(EngineOptions(endpointing=EndpointingOptions(min_delay=2.0))))
    d.at(1.0, ev.VadStartOfSpeech(t=1.0))
    d.at(1.5, ev.VadInferenceDone(t=1.5, raw_accumulated_speech=0.5))
    d.at(1.6, ev.SttFinal(t=1.6, text="Book a table"))
    d.at(1.8, ev.VadEndOfSpeech(t=1.8))
    d.at(1.9, ev.CommitUserTurn(t=1.9, ref="c"))
    d.at(2.2, ev.VadStartOfSpeech(t=2.2))
    (res,) = d.of(out.CommitResult)
    assert (res.t, res.status) == (2.2, "cancelled")
    d.at(2.8, ev.VadInferenceDone(t=2.8, raw_accumulated_speech=0.6))
    d.at(2.9, ev.SttFinal(t=2.9, text="for two"))
    d.at(3.0, ev.VadEndOfSpeech(t=3.0))
    d.at(9.0)
    assert [e.new_transcript for e in d.of(out.EndOfTurn)] == ["Book a table for two"]
    assert len(d.of(out.CommitResult)) == 1


def test_a_vad_start_dropped_for_want_of_a_vad_changes_nothing() -> None:
    """A VAD start with no VAD attached is reported dropped and neither opens a turn nor
    cancels a pending decision (every region that takes vad_start checks vad_live)."""
    d = Driver(Engine(EngineOptions(vad=False)))
    d.at(0.5, ev.VadStartOfSpeech(t=0.5))
    assert d.e.state()["turn"] == "idle" and d.of(out.InputDropped)
    d.at(1.0, ev.SttFinal(t=1.0, text="hello"))
    assert d.e.state()["turn"] == "waiting"
    d.at(1.2, ev.VadStartOfSpeech(t=1.2))
    assert d.e.state()["turn"] == "waiting"
    d.at(3.0)
    assert [e.new_transcript for e in d.of(out.EndOfTurn)] == ["hello"]


def test_decision_record_explains_a_model_answer_without_a_threshold() -> None:
    """why() reads a supported model answer with no probability or threshold without error."""
    d = Driver(Engine(EngineOptions(turn_detection="model")), model=(0.4, None))
    d.at(1.0, ev.VadStartOfSpeech(t=1.0))
    d.at(1.5, ev.SttFinal(t=1.5, text="hello"))
    d.at(1.6, ev.VadEndOfSpeech(t=1.6))
    d.at(5.0)
    (eot,) = d.of(out.EndOfTurn)
    assert "threshold None" in eot.decision.why()


def test_no_turn_span_or_metric_starts_before_the_previous_delivery() -> None:
    """I7 (issue 20), spans included: a speech run through an accepted delivery (a commit
    while the user talks on) starts the next turn, its span and its preemptive generation at
    the delivery; a clear raises the same floor."""
    from tests.test_telemetry import Spans, attrs_of, ns
    from turnfsm.telemetry import SpanObserver
    from turnfsm.telemetry import spans as sp

    spans = Spans()
    engine = Engine(EngineOptions(turn_detection="vad"))
    engine.add_observer(SpanObserver(spans.provider))
    d = Driver(engine)
    d.at(1.0, ev.VadStartOfSpeech(t=1.0, speech_duration=0.2, inference_duration=0.02))
    d.at(1.9, ev.SttFinal(t=1.9, text="Book a table", language="en", confidence=0.9))
    d.at(2.0, ev.VadInferenceDone(t=2.0, raw_accumulated_speech=1.22))
    d.at(2.05, ev.CommitUserTurn(t=2.05))
    d.at(2.7, ev.VadInferenceDone(t=2.7, raw_accumulated_speech=1.92))  # delivered at 2.5
    d.at(3.3, ev.SttFinal(t=3.3, text="for two", language="en", confidence=0.8))
    d.at(3.5, ev.VadEndOfSpeech(t=3.5, silence_duration=0.28))
    d.at(3.7, ev.ClearUserTurn(t=3.7))
    d.at(9.0)
    assert [(o.t, o.started_speaking_at) for o in d.of(out.EndOfTurn)] == [(2.5, 0.78),
                                                                           (3.5, 2.5)]
    assert [o.started_speaking_at for o in d.of(out.PreemptiveGeneration)] == [0.78, 2.5]
    first, second = spans.named(sp.USER_TURN)
    assert first.end_time == ns(2.5) and second.start_time >= ns(2.5)
    assert attrs_of(second)[sp.STARTED_SPEAKING_AT] == 2.5
    assert engine.cx.onset_floor == 3.7  # the clear


def test_a_wordless_backchannel_leaves_no_turn_span() -> None:
    """Default profile without an STT (issue 20): the user_turn span a backchannel opened is
    ended bare and marked dropped; its end of speech opens no other span."""
    from tests.test_telemetry import Spans, attrs_of
    from turnfsm.telemetry import SpanObserver
    from turnfsm.telemetry import spans as sp

    spans = Spans()
    engine = _Engine(EngineOptions(stt=False), profile="default")
    engine.add_observer(SpanObserver(spans.provider))
    d = Driver(engine)
    d.at(0.0, ev.AgentSpeechStarted(t=0.0))
    d.at(2.1, ev.VadStartOfSpeech(t=2.1, speech_duration=0.1))
    d.at(2.3, ev.VadInferenceDone(t=2.3, raw_accumulated_speech=0.3))
    d.at(2.6, ev.VadEndOfSpeech(t=2.6, silence_duration=0.2))
    d.at(6.0, ev.AgentSpeechEnded(t=6.0))
    d.at(9.0)
    assert not d.of(out.EndOfTurn)
    [drop] = d.of(out.TranscriptDropped)
    assert (drop.text, drop.reason) == ("", "backchannel")
    [span] = spans.named(sp.USER_TURN)
    assert attrs_of(span)[sp.DROPPED] == "backchannel"
