"""Text rules: word counting, duplicate detection, the turn's language."""

from __future__ import annotations

_PUNCT = frozenset("!\"#$%&'()*+,-./:;<=>?@[\\]^_`{|}~±—‘’“”…")  # noqa: RUF001
NONSPECIFIC_LANGUAGES = frozenset({"", "multi", "auto"})
MIN_LANGUAGE_TEXT = 5  # characters a transcript needs to switch the language


def normalized(text: str) -> str:
    """``text`` case-folded, without punctuation, with single spaces (duplicate test)."""
    return " ".join("".join(ch for ch in text.casefold() if ch not in _PUNCT).split())


def count_words(text: str) -> int:
    """Words as the turn limit counts them: whitespace tokens not made only of punctuation."""
    n = 0
    for tok in text.split():
        if any(ch not in _PUNCT for ch in tok):
            n += 1
    return n


def language_update(current: str | None, language: str, text: str) -> str | None:
    """The turn's language after a transcript in ``language`` (D22: empty and non-specific
    codes never change it; a short text sets it only when none is known)."""
    if language in NONSPECIFIC_LANGUAGES:
        return current
    if current is None or len(text) > MIN_LANGUAGE_TEXT:
        return language
    return current
