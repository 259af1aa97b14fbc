"""A small rule-based end-of-turn model that needs no download.

The rule (:func:`turnfsm.core.eou.end_of_turn_probability`) reads the end of the transcript:
an utterance that ends unfinished (a trailing filler, conjunction, preposition, article or
comma, and no terminal punctuation) is unlikely over, so the engine waits ``max_delay``; one
that ends with terminal punctuation is likely over; anything else is in between
(``min_delay``). The word lists are data, per language (``turnfsm/core/end_of_turn_words.json``);
English ships. The engine's ``default`` profile applies the same rule itself when the host
plugs no model; a model the host plugs in replaces it.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ..core import eou
from .protocols import TurnContext

WORDS = eou.WORDS
TERMINAL = eou.TERMINAL


class RuleBasedModel:
    """End-of-turn probability from the transcript's last word and punctuation."""

    def __init__(self, words: Mapping[str, frozenset[str]] | None = None, *,
                 threshold: float = eou.BUILTIN_THRESHOLD, complete: float = eou.COMPLETE,
                 unfinished: float = eou.UNFINISHED, neutral: float = eou.NEUTRAL,
                 default_language: str = eou.DEFAULT_LANGUAGE) -> None:
        self.words = dict(WORDS if words is None else words)
        self.threshold = threshold
        self.complete = complete
        self.unfinished = unfinished
        self.neutral = neutral
        self.default_language = default_language

    def _lang(self, language: str | None) -> str:
        if not language:
            return self.default_language
        return eou.base_language(language)

    async def supports_language(self, language: str | None) -> bool:
        """Languages with a word list (an unknown language is taken as the default)."""
        return self._lang(language) in self.words

    async def unlikely_threshold(self, language: str | None) -> float | None:
        """Below this probability the turn is unlikely over."""
        return self.threshold

    async def predict_end_of_turn(self, context: TurnContext, *,
                                  timeout: float | None = None) -> float:
        """The probability that the user finished (see the module's rules)."""
        return self.answer(context)

    def answer(self, asked: Any) -> float:
        """:meth:`probability` for what a model is asked (a :class:`TurnContext` or the
        engine's ``EouModelRequest``: the transcript, its language, the agent's text and the
        words' confidences)."""
        return self.probability(asked.transcript, asked.language,
                                agent_text=asked.agent_text,
                                confidences=list(asked.word_confidences) or None)

    def probability(self, transcript: str, language: str | None = None, *,
                    agent_text: str | None = None,
                    confidences: list[float | None] | None = None) -> float:
        """The rule on one transcript (synchronous, for tests and tools)."""
        p = eou.end_of_turn_probability(transcript, self._lang(language), words=self.words,
                                        agent_text=agent_text, confidences=confidences)
        return {eou.COMPLETE: self.complete, eou.UNFINISHED: self.unfinished}.get(p, self.neutral)
