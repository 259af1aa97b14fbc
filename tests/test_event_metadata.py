"""The tables derived from the input event classes' metadata (chart routing, required chart
events, the trace schema, the replay's input mapping) equal the hand-written literals they
replaced (kept here as the reference: a change to one is a change of the trace format)."""

from __future__ import annotations

from typing import Any

import attrs
import pytest

from turnfsm import events as ev
from turnfsm.core import engine, registry
from turnfsm.replay import trace
from turnfsm.replay.replay import BUILDERS
from turnfsm.replay.trace import TraceInput

_NUM, _BOOL, _STR, _OPTNUM, _ANY = "number", "bool", "string", "number-or-null", "any"
_OPTSTR = "string-or-null"
_VAD = {"speech_duration": (_NUM, 0.0), "silence_duration": (_NUM, 0.0),
        "inference_duration": (_NUM, 0.0), "probability": (_NUM, 0.0),
        "speaking": (_BOOL, False), "raw_accumulated_speech": (_NUM, 0.0),
        "raw_accumulated_silence": (_NUM, 0.0)}
_TRANSCRIPT = {"text": (_STR, None), "language": (_STR, ""), "confidence": (_NUM, 0.0),
               "start_time": (_NUM, 0.0), "end_time": (_NUM, 0.0), "request_id": (_STR, ""),
               "word_confidences": ("numbers-or-null", None)}
#: The trace schema as it was written by hand (replay/trace.py before the derivation).
SCHEMA: dict[str, dict[str, tuple[str, Any]]] = {
    "vad.start_of_speech": _VAD,
    "vad.inference_done": _VAD,
    "vad.end_of_speech": _VAD,
    "stt.start_of_speech": {"speech_start_time": (_OPTNUM, None), "request_id": (_STR, "")},
    "stt.interim": _TRANSCRIPT,
    "stt.preflight": _TRANSCRIPT,
    "stt.final": _TRANSCRIPT,
    "stt.end_of_speech": {"request_id": (_STR, "")},
    "stt.usage": {"audio_duration": (_NUM, 0.0), "request_id": (_STR, "")},
    "overlap": {"is_interruption": (_BOOL, None), "overlap_started_at": (_OPTNUM, None),
                "detected_at": (_OPTNUM, None), "created_at": (_OPTNUM, None),
                "probability": (_NUM, 0.0), "total_duration": (_NUM, 0.0),
                "prediction_duration": (_NUM, 0.0), "detection_delay": (_NUM, 0.0),
                "num_requests": (_NUM, 0)},
    "detector_error": {"fallback": (_BOOL, None)},
    "agent.speech_started": {"started_at": (_OPTNUM, None), "text": (_OPTSTR, None)},
    "agent.speech_ended": {"ignore_user_transcript_until": (_OPTNUM, None)},
    "signal.user_speech_started": {"started_at": (_OPTNUM, None), "speech_duration": (_NUM, 0.0)},
    "signal.user_speech_ended": {"ended_at": (_OPTNUM, None), "interruption": (_BOOL, None)},
    "signal.overlap_speech_ended": {"ended_at": (_OPTNUM, None)},
    "commit_user_turn": {"audio_detached": (_BOOL, False), "transcript_timeout": (_NUM, 2.0),
                         "stt_flush_duration": (_NUM, 2.0), "skip_reply": (_BOOL, False)},
    "clear_user_turn": {},
    "audio": {"duration": (_NUM, 0.02), "count": (_NUM, 1), "sample_rate": (_NUM, 16000),
              "skip_stt": (_BOOL, False)},
    "update_options": {"endpointing": (_ANY, None), "turn_detection": (_ANY, None),
                       "user_turn_limit": (_ANY, None)},
    "set_vad": {"enabled": (_BOOL, None)},
    "set_stt": {"enabled": (_BOOL, None)},
    "set_interruption_detection": {"enabled": (_BOOL, None)},
}
REQUIRED = {("stt.interim", "text"), ("stt.preflight", "text"), ("stt.final", "text"),
            ("overlap", "is_interruption"), ("set_vad", "enabled"), ("set_stt", "enabled"),
            ("set_interruption_detection", "enabled")}
NON_NEGATIVE = {"speech_duration", "silence_duration", "inference_duration",
                "raw_accumulated_speech", "raw_accumulated_silence", "audio_duration",
                "duration", "count", "sample_rate", "total_duration", "prediction_duration",
                "detection_delay", "num_requests", "stt_flush_duration"}
INTEGER = {"count", "sample_rate", "num_requests"}
#: core/engine.py's routing as it was written by hand.
INPUT_EVENT: dict[type, str] = {
    ev.VadStartOfSpeech: "vad_start", ev.VadEndOfSpeech: "vad_end",
    ev.SttStartOfSpeech: "stt_start", ev.SttEndOfSpeech: "stt_end",
    ev.SttInterim: "stt_interim", ev.SttPreflight: "stt_preflight", ev.SttFinal: "stt_final",
    ev.SttUsage: "stt_usage", ev.OverlapVerdict: "overlap", ev.DetectorFailed: "detector_failed",
    ev.AgentSpeechStarted: "agent_start", ev.AgentSpeechEnded: "agent_end",
    ev.UserSpeechStarted: "user_started", ev.UserSpeechEnded: "user_ended",
    ev.OverlapSpeechEnded: "overlap_ended", ev.CommitUserTurn: "commit",
    ev.ClearUserTurn: "clear", ev.EouModelAnswered: "model_answered",
    ev.EndOfTurnAnswered: "turn_answered", ev.Close: "close",
}
SWITCH_EVENT: dict[type, tuple[str, str]] = {
    ev.SetVad: ("vad_attach", "vad_detach"),
    ev.SetStt: ("stt_attach", "stt_detach"),
    ev.SetInterruptionDetection: ("detector_attach", "detector_detach"),
}
#: The input half of core/registry.py's REQUIRED_EVENTS as it was written by hand.
INPUT_REQUIRED = {"vad_start", "vad_end", "stt_start", "stt_end", "stt_interim",
                  "stt_preflight", "stt_final", "stt_usage", "overlap", "detector_failed",
                  "agent_start",
                  "agent_end", "user_started", "user_ended", "overlap_ended", "commit",
                  "clear", "model_answered", "turn_answered", "close", "vad_attach",
                  "vad_detach", "stt_attach", "stt_detach", "detector_attach",
                  "detector_detach"}


def test_trace_schema_is_derived_from_the_event_classes() -> None:
    """The derived schema, required fields, non-negative and whole-number fields equal the
    hand-written tables, and are the ones the reader uses."""
    schema, required, non_negative, integer = trace.derive_schema()
    assert schema == SCHEMA and required == REQUIRED
    assert non_negative == NON_NEGATIVE and integer == INTEGER
    assert trace.SCHEMA == SCHEMA and trace.REQUIRED == REQUIRED
    assert trace.NON_NEGATIVE == NON_NEGATIVE and trace.INTEGER == INTEGER


def test_engine_routing_and_required_events_are_derived() -> None:
    """The engine routes each input class to the chart event its class names, and a chart
    must declare every one of them."""
    assert engine.derive_routing() == (INPUT_EVENT, SWITCH_EVENT)
    assert (engine._INPUT_EVENT, engine._SWITCH_EVENT) == (INPUT_EVENT, SWITCH_EVENT)
    assert registry.input_chart_events() == INPUT_REQUIRED
    assert INPUT_REQUIRED <= registry.REQUIRED_EVENTS


def test_every_input_class_is_routed_or_data() -> None:
    """Every input class raises a chart event, is a switch, or is one of the three kinds the
    engine takes as data (a new class with none of these fails here, not mid-session)."""
    data = {ev.VadInferenceDone, ev.AudioPushed, ev.UpdateOptions}
    for cls in ev.input_classes():
        assert (cls.chart_event is not None) + (cls.chart_events is not None) \
            + (cls in data) == 1, cls.__name__


@pytest.mark.parametrize("kind", sorted(set(SCHEMA) - {"update_options"}))  # its own glue
def test_the_replay_builds_each_kind_as_the_hand_mapping_did(kind: str) -> None:
    """A line with every field given, and one with only the required fields, build the
    event the hand-written mapping built (defaults, ``t`` for a missing detected_at, whole
    numbers as int)."""
    cls = next(c for c in ev.input_classes() if c.trace_kind == kind)
    full = {"text": "hi", "is_interruption": True, "enabled": True, "speech_duration": 0.5,
            "inference_duration": 0.01, "raw_accumulated_speech": 0.3, "probability": 0.7,
            "speaking": True, "raw_accumulated_silence": 0.1, "silence_duration": 0.2,
            "language": "en", "confidence": 0.9, "start_time": 1.0, "end_time": 2.0,
            "request_id": "r", "speech_start_time": 0.4, "audio_duration": 3.0,
            "overlap_started_at": 4.0, "detected_at": 4.5, "created_at": 4.4,
            "total_duration": 1.0, "prediction_duration": 0.1, "detection_delay": 0.2,
            "num_requests": 3.0, "started_at": 4.0, "ignore_user_transcript_until": 5.0,
            "ended_at": 6.0, "interruption": False, "audio_detached": True,
            "transcript_timeout": 1.5, "stt_flush_duration": 0.5, "skip_reply": True,
            "duration": 0.01, "count": 2.0, "sample_rate": 8000.0, "skip_stt": True,
            "word_confidences": [0.25]}
    names = [a.name for a in attrs.fields(cls) if a.name not in ("t", "ref")
             and a.name not in cls.trace_omits]
    given = {n: full[n] for n in names}
    minimal = {n: full[n] for n in names if (kind, n) in REQUIRED}
    for fields in (given, minimal):
        e = BUILDERS[kind](7.0, 3, fields)
        assert type(e) is cls and e.t == 7.0 and e.ref == 3
        for a in attrs.fields(cls):
            if a.name in ("t", "ref") or a.name in cls.trace_omits:
                continue
            v = getattr(e, a.name)
            if a.name in fields:
                want = fields[a.name]
                if a.name == "word_confidences":
                    want = tuple(want)  # a trace's list, the event's tuple
            elif a.name in ("detected_at", "created_at"):
                want = 7.0
            else:
                want = a.default
            assert v == want and (type(v) is int) == (a.name in INTEGER), (kind, a.name, v)
    assert TraceInput(7.0, kind, 3, given).kind == kind



def test_input_type_hints_are_typing_s() -> None:
    """The input checks' type hints (each annotation evaluated once) are exactly what
    ``typing.get_type_hints`` gives, for every input class and a host's subclass."""
    import typing

    from turnfsm.core.validate import type_hints

    @attrs.define(frozen=True, kw_only=True, slots=True)
    class HostEvent(ev.SttFinal):
        """A host's own input class (another module: typing's own evaluation)."""

        extra: int | None = None

    classes = [c for c in vars(ev).values() if isinstance(c, type) and issubclass(c, ev.Input)]
    for cls in [*classes, HostEvent]:
        mine, theirs = type_hints(cls), typing.get_type_hints(cls)
        assert mine == theirs and list(mine) == list(theirs), cls
