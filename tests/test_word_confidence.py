"""Word confidences: the transcript events carry them (trace field ``word_confidences``),
Whisper's word probabilities and a words sidecar fill them, and the built-in end-of-turn
rules do not read a trailing word the recogniser doubts."""

from __future__ import annotations

import json
from pathlib import Path
from types import SimpleNamespace

import attrs
import pytest

from turnfsm import events as ev
from turnfsm import outputs as out
from turnfsm.audio.transcripts import _words_text, read_words, words_lines
from turnfsm.audio.vad import Segment
from turnfsm.audio.wav import AudioError
from turnfsm.core.eou import (
    COMPLETE,
    UNFINISHED,
    end_of_turn_probability,
    reliable_text,
    word_confidences,
)
from turnfsm.errors import TraceError
from turnfsm.replay import parse_trace, replay_trace

from .test_profiles import Run


def test_a_trailing_doubted_word_is_not_read() -> None:
    """'a table for it.' with 'it.' at 0.12: the rules read 'a table for', unfinished; the
    same words all trusted, or without confidences, read complete."""
    text = "I want a table for it."
    assert end_of_turn_probability(text, "en") == COMPLETE
    assert end_of_turn_probability(text, "en", confidences=[0.9] * 6) == COMPLETE
    doubted = [0.9, 0.9, 0.9, 0.9, 0.9, 0.12]
    assert reliable_text(text, doubted) == "I want a table for"
    assert end_of_turn_probability(text, "en", confidences=doubted) == UNFINISHED
    # a doubted cue word is still read: "of" (Whisper's "uh") keeps the turn open
    assert end_of_turn_probability("let me think of", "en", confidences=[0.9, 0.9, 0.9, 0.2]) \
        == UNFINISHED
    assert reliable_text("it it", [0.1, 0.2]) == ""  # nothing trusted: nothing read
    assert reliable_text("a b", [0.1]) == "a b"  # not one per word: the text as it is
    assert reliable_text("a b", [0.1, None]) == "a b"  # an unknown confidence is kept


@pytest.mark.parametrize("language, text", [
    ("es", "quiero una mesa para él."), ("fr", "une table pour il."),
    ("de", "einen Tisch für es."), ("pt", "uma mesa para ele."), ("it", "un tavolo per me."),
])
def test_a_doubted_word_in_each_language(language: str, text: str) -> None:
    """In each shipped language, a doubted trailing word after a preposition is not read."""
    n = len(text.split())
    assert end_of_turn_probability(text, language, confidences=[0.9] * n) == COMPLETE
    doubted: list[float | None] = [0.9] * (n - 1) + [0.2]
    assert end_of_turn_probability(text, language, confidences=doubted) == UNFINISHED


def test_word_confidences_line_up_with_the_words() -> None:
    """One per word when given so; otherwise None for each word."""
    assert word_confidences("a b c", (0.1, 0.2, 0.3)) == [0.1, 0.2, 0.3]
    assert word_confidences("a b c", (0.1,)) == [None, None, None]
    assert word_confidences("a b", None) == [None, None]


def trace(*finals: str) -> str:
    """A default-profile trace: speech, then the given stt.final lines' extra JSON."""
    lines = ['{"kind": "config", "profile": "default"}',
             '{"t": 0.1, "kind": "vad.start_of_speech"}']
    head = '{"t": 1.0, "kind": "stt.final", "text": "I want a table for it."'
    lines += [head + f + "}" for f in finals]
    lines.append('{"t": 1.2, "kind": "vad.end_of_speech"}')
    return "\n".join(lines) + "\n"


def test_the_trace_keeps_word_confidences_and_the_engine_reads_them() -> None:
    """A trace's stt.final with word confidences: a doubted trailing 'it.' makes the default
    profile wait max_delay; without the field it ends after min_delay."""
    def eot(text: str) -> list[float]:
        return [x["t"] for x in replay_trace(parse_trace(text)) if x["kind"] == "on_end_of_turn"]
    assert eot(trace("")) == [1.5]
    assert eot(trace(', "word_confidences": [0.9, 0.9, 0.9, 0.9, 0.9, 0.9]')) == [1.5]
    assert eot(trace(', "word_confidences": [0.9, 0.9, 0.9, 0.9, 0.9, 0.1]')) == [4.0]
    assert eot(trace(', "word_confidences": null')) == [1.5]


@pytest.mark.parametrize("value, what", [
    ('"high"', "must be a list of numbers from 0 to 1"),
    ("[0.5, 1.5]", r"\[1\] must be a number from 0 to 1"),
    ("[0.5, true]", r"\[1\] must be a number from 0 to 1"),
    ("[0.5, -0.1]", r"\[1\] must be a number from 0 to 1"),
])
def test_bad_word_confidences_are_refused(value: str, what: str) -> None:
    """A trace's word_confidences that are not numbers from 0 to 1 are refused on one line
    naming the field."""
    with pytest.raises(TraceError, match="word_confidences.*" + what):
        parse_trace(trace(f', "word_confidences": {value}'))


def test_the_engine_keeps_confidences_across_finals() -> None:
    """Two finals, the second without confidences: only the first's are known, so the
    second's words are all read."""
    r2 = Run("default")
    r2.at(0.1, ev.VadStartOfSpeech(t=0.1, speech_duration=0.1))
    r2.at(0.5, ev.SttFinal(t=0.5, text="a table for it", word_confidences=(0.9, 0.9, 0.9, 0.1)))
    r2.at(0.9, ev.SttFinal(t=0.9, text="please"))
    r2.at(1.0, ev.VadEndOfSpeech(t=1.0, silence_duration=0.2))
    r2.advance(8.0)
    [eot] = r2.of(out.EndOfTurn)
    assert eot.new_transcript == "a table for it please"
    assert eot.decision is not None and eot.decision.delay_reason == "min_delay"


def test_whisper_words_give_one_probability_per_word() -> None:
    """Whisper's pieces: a piece glued to the one before ("'s") joins its word, which takes
    the lower probability."""
    w = [SimpleNamespace(word=" Apple", probability=0.9),
         SimpleNamespace(word="'s", probability=0.4),
         SimpleNamespace(word=" bananas.", probability=0.8)]
    assert _words_text(w) == ("Apple's bananas.", (0.4, 0.8))
    assert _words_text([]) == ("", ())


def test_a_sidecar_s_word_confidences_reach_the_final(tmp_path: Path) -> None:
    """Every word with a confidence: the final carries them; one missing: none; a bad one
    is refused naming the entry."""
    p = tmp_path / "w.json"
    p.write_text(json.dumps({"words": [
        {"word": "for", "start": 0.0, "end": 0.3, "confidence": 0.9},
        {"word": "it", "start": 0.3, "end": 0.5, "confidence": 0.1}]}))
    [final] = words_lines(read_words(p), [Segment(0.0, 0.5)], interim_every=None)
    assert final["word_confidences"] == [0.9, 0.1]
    p.write_text(json.dumps({"words": [
        {"word": "for", "start": 0.0, "end": 0.3, "confidence": 0.9},
        {"word": "it", "start": 0.3, "end": 0.5}]}))
    [final] = words_lines(read_words(p), [Segment(0.0, 0.5)], interim_every=None)
    assert "word_confidences" not in final
    p.write_text(json.dumps({"words": [{"word": "x", "start": 0, "end": 1, "confidence": 2}]}))
    with pytest.raises(AudioError, match=r"words\[0\]: confidence must be a number from 0"):
        read_words(p)


def test_the_reference_form_of_a_trace_leaves_word_confidences_out() -> None:
    """The reference's replayer refuses unknown fields: the trace `score --reference` and
    `listen --reference-trace` write for it has neither turnfsm's header fields nor word
    confidences, and turnfsm's own form keeps both."""
    from turnfsm.audio.listen import trace_lines
    from turnfsm.replay.trace import TURNFSM_FIELDS

    t = parse_trace(trace(', "word_confidences": [0.9, 0.9, 0.9, 0.9, 0.9, 0.1]'))
    t = attrs.evolve(t, config={**t.config, "profile": "default"})
    ours = [json.loads(x) for x in trace_lines(t).splitlines()]
    theirs = [json.loads(x) for x in trace_lines(t, reference=True).splitlines()]
    assert any("word_confidences" in x for x in ours) and ours[0]["profile"] == "default"
    assert not any("word_confidences" in x for x in theirs)
    assert not set(theirs[0]) & set(TURNFSM_FIELDS)
    assert [{k: v for k, v in x.items() if k != "word_confidences"} for x in ours[1:]] == \
        theirs[1:]


def test_a_word_whisper_places_in_the_silence_belongs_to_the_segment_before() -> None:
    """Packed segments: a word wholly inside the silence between two spans ('thanks.' at
    2.96 s between 2.44 and 3.44 s) goes to the earlier span; other words go by their
    middle (a word stretched across the silence, 'to' 1.18-2.78 s, stays with its span)."""
    from turnfsm.audio.transcripts import _span_of
    places = [(0, 0.0, 2.44), (1, 3.44, 5.37)]
    assert _span_of(2.96, 2.96, places) == 0
    assert _span_of(2.5, 3.4, places) == 0
    assert _span_of(3.5, 3.9, places) == 1
    assert _span_of(3.3, 3.9, places) == 1  # begins just before the span, ends in it
    assert _span_of(1.18, 2.78, [(0, 0.0, 1.67), (1, 2.67, 5.21)]) == 0
    assert _span_of(6.0, 6.5, places) == 1  # after the last span
