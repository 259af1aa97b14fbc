"""The built-in end-of-turn rules and backchannel phrases: data per language, no download.

:func:`end_of_turn_probability` reads the end of a transcript: an utterance that ends
unfinished (a trailing filler, conjunction, preposition, article or auxiliary, or a comma,
and no terminal punctuation) is unlikely over; one with terminal punctuation is likely over;
anything else is in between. The engine's ``default`` profile uses it when the host plugs
no model (:data:`BUILTIN_THRESHOLD`: below it the engine waits ``max_delay``);
:class:`turnfsm.runtime.RuleBasedModel` is the same rule as an asynchronous model.

:func:`is_backchannel_phrase` says whether a short utterance is a listener's acknowledgement
("uh huh", "yeah", "okay"), from ``backchannels.json``. English ships; other languages are
lists in the same files.
"""

from __future__ import annotations

import json
import re
from importlib import resources

TERMINAL = ".?!"
UNFINISHED_PUNCTUATION = ",;:-\u2014\u2026"
BUILTIN_THRESHOLD = 0.3
COMPLETE, UNFINISHED, NEUTRAL = 0.9, 0.05, 0.6
DEFAULT_LANGUAGE = "en"


_PUNCT = re.compile(r"[^\w\s'-]+")


def normalize(text: str) -> str:
    """Lower case, punctuation out, single spaces."""
    return " ".join(_PUNCT.sub(" ", text.lower()).split())


def _data(name: str) -> object:
    return json.loads((resources.files("turnfsm.core") / name).read_text(encoding="utf-8"))


def load_words() -> dict[str, frozenset[str]]:
    """Per language, the words after which an utterance is unfinished (the categories of
    ``end_of_turn_words.json``: fillers, conjunctions, prepositions, determiners,
    auxiliaries)."""
    data = _data("end_of_turn_words.json")
    assert isinstance(data, dict)
    return {lang: frozenset(w for words in cats.values() for w in words)
            for lang, cats in data.items()}


def load_backchannels() -> dict[str, frozenset[str]]:
    """Per language, the backchannel phrases (``backchannels.json``), normalized."""
    data = _data("backchannels.json")
    assert isinstance(data, dict)
    return {lang: frozenset(normalize(p) for p in phrases) for lang, phrases in data.items()}




WORDS = load_words()
BACKCHANNELS = load_backchannels()


def base_language(language: str | None) -> str:
    """``en-US`` -> ``en``; empty -> the default language."""
    if not language:
        return DEFAULT_LANGUAGE
    return language.split("-")[0].split("_")[0].lower()


def end_of_turn_probability(transcript: str, language: str | None = None, *,
                            words: dict[str, frozenset[str]] | None = None) -> float:
    """The rule on one transcript: :data:`COMPLETE`, :data:`UNFINISHED` or :data:`NEUTRAL`."""
    text = transcript.strip()
    if not text:
        return NEUTRAL
    if text[-1] in TERMINAL:
        return COMPLETE
    if text[-1] in UNFINISHED_PUNCTUATION:
        return UNFINISHED
    last = text.split()[-1].strip("\"'()[]").lower()
    table = WORDS if words is None else words
    if last in table.get(base_language(language), frozenset()):
        return UNFINISHED
    return NEUTRAL


def is_backchannel_phrase(text: str, language: str | None = None) -> bool:
    """Whether ``text`` is a backchannel phrase of its language (unknown language: none)."""
    return normalize(text) in BACKCHANNELS.get(base_language(language), frozenset())
