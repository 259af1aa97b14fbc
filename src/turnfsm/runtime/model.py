"""A small rule-based end-of-turn model that needs no download.

It reads the end of the transcript: an utterance that ends unfinished (a trailing filler,
conjunction, preposition, article or comma, and no terminal punctuation) is unlikely over,
so the engine waits ``max_delay``; one that ends with terminal punctuation is likely over;
anything else is in between (``min_delay``). The word lists are data, per language
(:data:`WORDS`); English ships. A model the host plugs in replaces it.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from importlib import resources

from .protocols import TurnContext


def load_words() -> dict[str, frozenset[str]]:
    """The packaged word lists (``end_of_turn_words.json``): per language, by category
    (fillers, conjunctions, prepositions, determiners, auxiliaries), the words after which
    an utterance is unfinished."""
    data = json.loads((resources.files("turnfsm.runtime") / "end_of_turn_words.json")
                      .read_text(encoding="utf-8"))
    return {lang: frozenset(w for words in cats.values() for w in words)
            for lang, cats in data.items()}


WORDS = load_words()
TERMINAL = ".?!"


class RuleBasedModel:
    """End-of-turn probability from the transcript's last word and punctuation."""

    def __init__(self, words: Mapping[str, frozenset[str]] | None = None, *,
                 threshold: float = 0.3, complete: float = 0.9, unfinished: float = 0.05,
                 neutral: float = 0.6, default_language: str = "en") -> None:
        self.words = dict(WORDS if words is None else words)
        self.threshold = threshold
        self.complete = complete
        self.unfinished = unfinished
        self.neutral = neutral
        self.default_language = default_language

    def _lang(self, language: str | None) -> str:
        if not language:
            return self.default_language
        return language.split("-")[0].split("_")[0].lower()

    async def supports_language(self, language: str | None) -> bool:
        """Languages with a word list (an unknown language is taken as the default)."""
        return self._lang(language) in self.words

    async def unlikely_threshold(self, language: str | None) -> float | None:
        """Below this probability the turn is unlikely over."""
        return self.threshold

    async def predict_end_of_turn(self, context: TurnContext, *,
                                  timeout: float | None = None) -> float:
        """The probability that the user finished (see the module's rules)."""
        return self.probability(context.transcript, context.language)

    def probability(self, transcript: str, language: str | None = None) -> float:
        """The rule on one transcript (synchronous, for tests and tools)."""
        text = transcript.strip()
        if not text:
            return self.neutral
        if text[-1] in TERMINAL:
            return self.complete
        if text[-1] in ",;:-\u2014\u2026":
            return self.unfinished
        last = text.split()[-1].strip("\"'()[]").lower()
        if last in self.words.get(self._lang(language), frozenset()):
            return self.unfinished
        return self.neutral
