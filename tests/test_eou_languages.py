"""The built-in end-of-turn rules per language (en, es, fr, de, pt, it): the word lists, the
richer unfinished cues (spelling, open numbers, dates, addresses), the complete-number price,
the backchannel phrases, and how the transcript's language reaches them (a words sidecar's
``language``, ``listen --language``, the STT final's ``language``)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from turnfsm import outputs as out
from turnfsm.audio.transcripts import Word, read_words, words_lines
from turnfsm.audio.vad import Segment
from turnfsm.audio.wav import AudioError
from turnfsm.core import eou
from turnfsm.core.eou import COMPLETE, NEUTRAL, UNFINISHED, end_of_turn_probability

from .test_profiles import Run, speech

LANGUAGES = ("en", "es", "fr", "de", "pt", "it")

#: per language: utterances cut at a pause (unfinished) and finished ones (complete)
CASES: dict[str, dict[str, list[str]]] = {
    "en": {"unfinished": ["I want a table for", "I need eggs and", "I'd like the um",
                          "my name is S M I", "it is K L", "john dot", "it was two hundred",
                          "on the fourteenth", "five five five"],
           "complete": ["I want a table for four.", "that's all.", "S M I T H?",
                        "my PIN is 4719.", "call me at 5552134862."]},
    "es": {"unfinished": ["quiero una mesa para", "necesito huevos y", "quiero eh",
                          "vamos a llegar a las", "me llamo G A", "juan arroba",
                          "cinco cinco cinco"],
           "complete": ["quiero una mesa para cuatro.", "eso es todo.", "mi PIN es 4719."]},
    "fr": {"unfinished": ["je voudrais une table pour", "du lait et", "je vais prendre euh",
                          "nous arrivons le", "ça s'écrit D U", "jean arobase",
                          "zéro six deux"],
           "complete": ["je voudrais une table pour deux.", "c'est tout.", "merci."]},
    "de": {"unfinished": ["ich möchte einen Tisch für", "Eier und", "ich nehme äh",
                          "ich brauche einen", "das schreibt man M E", "max Unterstrich",
                          "null eins fünf"],
           "complete": ["ich möchte einen Tisch für vier.", "warten Sie.", "das ist alles."]},
    "pt": {"unfinished": ["eu queria uma mesa para", "ovos e", "eu queria hum",
                          "a reunião é com", "se escreve R U", "joão arroba", "meia meia dois"],
           "complete": ["eu queria uma mesa para quatro.", "é isso.", "obrigado."]},
    "it": {"unfinished": ["vorrei un tavolo per", "uova e", "prendo ehm", "vorrei andare a",
                          "si scrive B I", "mario chiocciola", "zero sei due"],
           "complete": ["vorrei un tavolo per quattro.", "è tutto.", "grazie."]},
}

#: per language: backchannel phrases, and short turns that are not backchannels
BACKCHANNELS = {
    "en": (["mhm", "yeah", "okay got it"], ["book it"]),
    "es": (["vale", "sí", "de acuerdo"], ["para cuatro"]),
    "fr": (["ouais", "d'accord", "je vois"], ["pour deux"]),
    "de": (["ja genau", "alles klar", "mhm"], ["für vier"]),
    "pt": (["tá bom", "uhum", "pois é"], ["para quatro"]),
    "it": (["va bene", "sì", "d'accordo"], ["per quattro"]),
}


@pytest.mark.parametrize("language", LANGUAGES)
def test_every_shipped_language_has_every_list(language: str) -> None:
    """Each shipped language has the word lists, digit words and backchannel phrases."""
    assert eou.has_language(language) and eou.has_language(language + "-XX")
    assert eou.WORDS[language] and eou.DIGIT_WORDS[language] and eou.BACKCHANNELS[language]
    data = json.loads((Path(eou.__file__).parent / "end_of_turn_words.json").read_text())
    for cat in ("fillers", "conjunctions", "prepositions", "determiners", "connectors",
                "number_scales"):
        assert data[language][cat], (language, cat)
    for words in data[language].values():
        assert all(w == w.lower() and " " not in w for w in words)  # matched lower-cased


@pytest.mark.parametrize("language", LANGUAGES)
def test_unfinished_and_complete_utterances_per_language(language: str) -> None:
    """In each language, a trailing preposition, conjunction, filler, article, spelled
    letters, an open address and a digit group are unfinished; sentences are complete."""
    for text in CASES[language]["unfinished"]:
        assert end_of_turn_probability(text, language) == UNFINISHED, (language, text)
        assert end_of_turn_probability(text + ".", language) == UNFINISHED, (language, text)
    for text in CASES[language]["complete"]:
        assert end_of_turn_probability(text, language) == COMPLETE, (language, text)


@pytest.mark.parametrize("language", LANGUAGES)
def test_backchannel_phrases_per_language(language: str) -> None:
    """Each language's acknowledgements are backchannels in it; other short turns are not."""
    yes, no = BACKCHANNELS[language]
    for text in yes:
        assert eou.is_backchannel_phrase(text, language), (language, text)
    for text in no:
        assert not eou.is_backchannel_phrase(text, language), (language, text)


def test_the_language_chooses_the_list() -> None:
    """A word unfinished in one language is not in another: Italian 'a' (a preposition) is
    read with the Italian list, Spanish 'para' is not an English word, German 'Sie' ends."""
    assert end_of_turn_probability("quiero una mesa para", "es") == UNFINISHED
    assert end_of_turn_probability("quiero una mesa para", "en") == NEUTRAL
    assert end_of_turn_probability("vorrei andare a", "it") == UNFINISHED
    assert end_of_turn_probability("warten Sie", "de") == NEUTRAL
    assert end_of_turn_probability("null eins fünf", "de") == UNFINISHED
    assert end_of_turn_probability("null eins fünf", "en") == NEUTRAL  # not English digits


def test_spelling_needs_a_run_of_letters() -> None:
    """One single letter ('plan B', 'I') is not spelling; two or more trailing ones are."""
    assert eou.trailing_letters("plan B") == 1
    assert eou.trailing_letters("it is K. L.") == 2
    assert end_of_turn_probability("I want plan B.", "en") == COMPLETE
    assert end_of_turn_probability("B R", "en") == UNFINISHED


def test_a_whole_numeral_with_a_full_stop_does_not_wait() -> None:
    """'4719.' (one numeral, a full stop) is a whole code; '471 9' or '4719' without the
    stop, or digits as words, still read as a number in groups (the price)."""
    assert end_of_turn_probability("my PIN is 4719.", "en") == COMPLETE
    assert end_of_turn_probability("my PIN is 4719", "en") == UNFINISHED
    assert end_of_turn_probability("my PIN is 471 9.", "en") == UNFINISHED
    assert end_of_turn_probability("four seven one nine.", "en") == UNFINISHED
    assert end_of_turn_probability("it is 867.", "en") == UNFINISHED  # 3 digits: a group


def final_in(language: str, text: str) -> out.EndOfTurn:
    """The end of turn of one utterance whose final carries ``language`` (default profile)."""
    r = Run("default")
    speech(r, 0.0, 1.5, text, language=language)
    r.advance(10.0)
    [eot] = r.of(out.EndOfTurn)
    return eot


@pytest.mark.parametrize("language", LANGUAGES)
def test_the_final_s_language_reaches_the_rules(language: str) -> None:
    """An unfinished utterance in each language waits max_delay when its final says so."""
    eot = final_in(language, CASES[language]["unfinished"][0])
    d = eot.decision
    assert d is not None and d.model is not None
    assert (d.delay_reason, d.model.language, d.model.supported) == (
        "max_delay", language, True)


def test_a_language_without_lists_is_unsupported_and_the_record_says_so() -> None:
    """Dutch (no lists): the rules do not judge it, min_delay, and the record says why."""
    eot = final_in("nl", "ik wil een tafel voor")
    d = eot.decision
    assert d is not None and d.model is not None and d.model.model == "builtin"
    assert d.delay_reason == "min_delay" and not d.model.supported
    assert "the built-in rules have no word lists for language 'nl'" in d.why()


def segs(*spans: tuple[float, float]) -> list[Segment]:
    """VAD segments from (start, end) pairs."""
    return [Segment(a, b) for a, b in spans]


def write(tmp_path: Path, doc: Any) -> Path:
    """A words sidecar file."""
    p = tmp_path / "w.json"
    p.write_text(json.dumps(doc))
    return p


def test_a_sidecar_s_language_reaches_the_transcripts(tmp_path: Path) -> None:
    """The file's language tags every word unless a word names its own; the transcripts
    carry the utterance's (its last word's) language; ``language`` given overrides."""
    p = write(tmp_path, {"language": "es", "words": [
        {"word": "quiero", "start": 0.0, "end": 0.4},
        {"word": "para", "start": 0.5, "end": 0.8},
        {"word": "merci", "start": 2.0, "end": 2.4, "language": "fr"}]})
    words = read_words(p)
    assert [w.language for w in words] == ["es", "es", "fr"]
    lines = words_lines(words, segs((0.0, 0.8), (2.0, 2.4)), interim_every=None)
    assert [(x["text"], x["language"]) for x in lines] == [("quiero para", "es"),
                                                          ("merci", "fr")]
    lines = words_lines(words, segs((0.0, 0.8), (2.0, 2.4)), interim_every=None,
                        language="it")
    assert {x["language"] for x in lines} == {"it"}
    plain = [Word("hello", 0.0, 0.4)]
    assert words_lines(plain, segs((0.0, 0.4)), interim_every=None)[0]["language"] == "en"


@pytest.mark.parametrize("doc, what", [
    ({"language": 3, "words": []}, "language must be a language tag"),
    ({"language": "español", "words": []}, "language must be a language tag"),
    ({"words": [{"word": "a", "start": 0, "end": 1, "language": ""}]}, "words[0]: language"),
])
def test_a_bad_sidecar_language_is_refused(tmp_path: Path, doc: Any, what: str) -> None:
    """A language that is not a tag is refused with one line naming the file and entry."""
    with pytest.raises(AudioError, match=what.replace("[", r"\[")):
        read_words(write(tmp_path, doc))


def test_listen_language_option(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """`listen --language` tags the transcripts (the trace's finals carry it); a bad tag, or
    a language other than English with Whisper tiny.en, is refused."""
    from turnfsm.cli import main
    root = Path(__file__).resolve().parents[1] / "examples" / "corpus"
    wav, words = root / "es01_preposition.wav", root / "es01_preposition.words.json"
    trace = tmp_path / "t.jsonl"
    assert main(["listen", str(wav), "--words", str(words), "-q",
                 "--out-trace", str(trace)]) == 0
    finals = [json.loads(x) for x in trace.read_text().splitlines()[1:]]
    assert {x["language"] for x in finals if x["kind"] == "stt.final"} == {"es"}
    assert main(["listen", str(wav), "--words", str(words), "-q", "--language", "pt",
                 "--out-trace", str(trace)]) == 0
    finals = [json.loads(x) for x in trace.read_text().splitlines()[1:]]
    assert {x["language"] for x in finals if x["kind"] == "stt.final"} == {"pt"}
    with pytest.raises(SystemExit):
        main(["listen", str(wav), "--language", "spanish!"])
    assert "expected a language tag" in capsys.readouterr().err
    assert main(["listen", str(wav), "--asr", "whisper", "--language", "es", "-q"]) != 0
    assert "English only" in capsys.readouterr().err


@pytest.mark.parametrize("name, turn", [
    ("es01_preposition", "quiero una mesa para cuatro personas"),
    ("it04_ssml_preposition", "vorrei andare a Milano domani"),
    ("de03_filler", "ich nehme äh das Hähnchen mit Reis"),
])
def test_corpus_dialogues_are_read_in_their_language(
        name: str, turn: str, capsys: pytest.CaptureFixture[str]) -> None:
    """Corpus dialogues whose pause follows a preposition or filler of their language (the
    sidecar says which): the default profile waits through the pause, one turn."""
    from turnfsm.cli import main
    root = Path(__file__).resolve().parents[1] / "examples" / "corpus"
    assert main(["listen", str(root / f"{name}.wav"), "--words",
                 str(root / f"{name}.words.json")]) == 0
    text = capsys.readouterr().out
    assert "# 1 end(s) of turn" in text and f"END OF TURN '{turn}'" in text


def test_whisper_s_forms_of_spelling_and_dates() -> None:
    """Whisper writes a spelled group as one word in capitals ("SMI.", "D-H") and a day as
    "14th": both unfinished; an acronym after other words, and "OK", are not spelling."""
    for text in ("SMI.", "D-H.", "SMI. D-H", "on the 14th", "March 3rd"):
        assert end_of_turn_probability(text, "en") == UNFINISHED, text
    for text in ("I work at IBM.", "OK.", "It is KL M.", "M-H-M.", "MMM."):
        assert end_of_turn_probability(text, "en") == COMPLETE, text
    assert eou.trailing_letters("It is KL") == 0


@pytest.mark.parametrize("language, words", [
    ("en", ["I", "need", "eggs,", "milk,"]), ("es", ["necesito", "huevos,", "leche,"]),
    ("fr", ["des", "œufs,", "du", "lait,"]), ("de", ["Eier,", "Milch,"]),
    ("pt", ["ovos,", "leite,"]), ("it", ["uova,", "latte,"]),
])
def test_punctuation_in_a_sidecar_reaches_the_rules(tmp_path: Path, language: str,
                                                     words: list[str]) -> None:
    """A words sidecar's punctuation is kept in the transcript: a list whose last item has
    its comma is still open, in each language."""
    doc = {"language": language, "words": [
        {"word": w, "start": 0.3 * i, "end": 0.3 * i + 0.25} for i, w in enumerate(words)]}
    [final] = words_lines(read_words(write(tmp_path, doc)), segs((0.0, 0.3 * len(words))),
                          interim_every=None)
    assert final["text"] == " ".join(words) and final["text"].endswith(",")
    assert end_of_turn_probability(final["text"], final["language"]) == UNFINISHED
    assert end_of_turn_probability(final["text"].rstrip(",") + ".", language) == COMPLETE
