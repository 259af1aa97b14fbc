"""The built-in end-of-turn rules and backchannel phrases: data per language, no download.

:func:`end_of_turn_probability` reads the end of a transcript: an utterance that ends
unfinished (a trailing comma or ellipsis, or a trailing filler, conjunction, preposition,
article or auxiliary, even before a full stop: recognisers that transcribe each segment on
its own end every one with a full stop) is unlikely over; one with other terminal
punctuation is likely over; anything else is in between. The engine's ``default`` profile
uses it when the host plugs no model (:data:`BUILTIN_THRESHOLD`: below it the engine waits
``max_delay``); :class:`turnfsm.runtime.RuleBasedModel` is the same rule as an asynchronous
model.

A number read in groups ("eight six seven", "867"): a trailing run of 3 to 6 digits is
unfinished too (:data:`DIGIT_GROUP`); a whole phone number (7 or more) or a short answer
("two") is not. The price: a 3-6 digit code said last waits ``max_delay``, unless the
recogniser wrote it as one numeral with a full stop ("4719."): it formatted the number as
whole, so the turn is over.

Letters being spelled ("S M I", "K L"): a trailing run of :data:`SPELLING_RUN` or more
single letters is unfinished (the price: a spelling's last group waits ``max_delay``). The
other cues are words of the lists: an address or e-mail still open ("john dot", "at"), a
number said in words still open ("two hundred"), a date still open ("on the fourteenth").

The lists are per language (``en``, ``es``, ``fr``, ``de``, ``pt``, ``it``); the transcript's
language chooses them (:func:`has_language`: a language without lists is not judged, and
the decision record says so). German lists no auxiliaries (its verbs end clauses) and no
prepositions that are also separable particles ("an", "auf", "mit", "zu"); no list holds a
word that often ends a sentence in its language (pronouns, "ça va").

Word confidences (one per word, from the recogniser: Whisper's word probabilities): trailing
words below :data:`LOW_WORD_CONFIDENCE` cannot make the end look finished: the rule reads
the text without them too (:func:`reliable_text`) and keeps the more cautious verdict, so a
hallucinated "it" after "for" does not hide the preposition.

:func:`is_backchannel_phrase` says whether a short utterance is a listener's acknowledgement
("uh huh", "yeah", "okay", "vale", "d'accord", "alles klar", "tá bom", "va bene"), from
``backchannels.json``, per language as the word lists.
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




def load_digit_words() -> dict[str, frozenset[str]]:
    """Per language, the words for single digits (``digit_words.json``)."""
    data = _data("digit_words.json")
    assert isinstance(data, dict)
    return {lang: frozenset(words) for lang, words in data.items()}


WORDS = load_words()
BACKCHANNELS = load_backchannels()
DIGIT_WORDS = load_digit_words()
#: A trailing run of this many digits (as numerals or digit words) is a number still being
#: read: a phone number or a code goes on in groups (fewer: an answer such as "two"; more:
#: a whole number).
DIGIT_GROUP = (3, 6)
#: A word the recogniser gave less confidence than this at the end of a transcript is not
#: read by the rules (Whisper's hallucinated "it" after "for": probability 0.1 to 0.3; its
#: real words are mostly above 0.5).
LOW_WORD_CONFIDENCE = 0.3
#: A trailing run of at least this many single letters is a word being spelled.
SPELLING_RUN = 2


def word_confidences(text: str, given: tuple[float, ...] | None) -> list[float | None]:
    """One confidence (or None) per word of ``text``: ``given`` when it has one per word
    (split at white space), else None for each (a recogniser that gives none, or a list
    that does not match the words)."""
    n = len(text.split())
    if given is not None and len(given) == n:
        return list(given)
    return [None] * n


def reliable_text(text: str, confidences: list[float | None] | None) -> str:
    """``text`` without its trailing words of confidence below :data:`LOW_WORD_CONFIDENCE`
    (``confidences``: one per word; otherwise the text as it is)."""
    words = text.split()
    if not confidences or len(confidences) != len(words):
        return text
    n = len(words)
    while n and (c := confidences[n - 1]) is not None and c < LOW_WORD_CONFIDENCE:
        n -= 1
    return " ".join(words[:n])


def has_language(language: str | None, words: dict[str, frozenset[str]] | None = None
                 ) -> bool:
    """Whether the built-in rules have word lists for ``language`` (none given: the
    default language)."""
    return base_language(language) in (WORDS if words is None else words)


#: Letters a recogniser wrote as one word in capitals ("SMI", "KL", "D-H"): 2 to 4 of them.
_CAPITAL_LETTERS = re.compile(r"[A-Z](?:-?[A-Z]){1,3}")


def trailing_letters(text: str) -> int:
    """How many letters being spelled end ``text``: single letters ("S M I", "K. L."), and
    when the whole text is letters, words of 2 to 4 capitals as Whisper writes a spelled
    group ("SMI.", "D-H"; not a backchannel such as "OK" or "M-H-M", nor an acronym after
    other words: "I work at IBM." is a sentence)."""
    n = caps = 0
    for token in reversed(text.split()):
        token = token.strip("\"'()[],;:.!?")
        if len(token) == 1 and token.isalpha():
            n += 1
        elif _CAPITAL_LETTERS.fullmatch(token) and \
                token.replace("-", "").lower() not in BACKCHANNELS.get(DEFAULT_LANGUAGE,
                                                                       frozenset()):
            caps += sum(c.isalpha() for c in token)
        else:
            return n if not caps else 0
    return n + caps


def _whole_numeral(text: str) -> bool:
    """The transcript ends with one numeral of 4 or more digits and a full stop ("4719."):
    the recogniser formatted a whole number."""
    last = text.split()[-1]
    return last.endswith(".") and last[:-1].isdigit() and len(last) - 1 >= 4


def trailing_digits(text: str, language: str | None = None) -> int:
    """How many digits end ``text`` (numerals count each digit; digit words count one)."""
    digits = DIGIT_WORDS.get(base_language(language), frozenset())
    n = 0
    for token in reversed(re.split(r"[\s,;:/-]+", text.lower())):
        token = token.strip("\"'()[].!?")
        if not token:
            continue
        if token.isdigit():
            n += len(token)
        elif token in digits:
            n += 1
        else:
            break
    return n


def base_language(language: str | None) -> str:
    """``en-US`` -> ``en``; empty -> the default language."""
    if not language:
        return DEFAULT_LANGUAGE
    return language.split("-")[0].split("_")[0].lower()


def end_of_turn_probability(transcript: str, language: str | None = None, *,
                            words: dict[str, frozenset[str]] | None = None,
                            confidences: list[float | None] | None = None) -> float:
    """The rule on one transcript: :data:`COMPLETE`, :data:`UNFINISHED` or :data:`NEUTRAL`.
    ``confidences``, one per word: trailing words the recogniser doubts cannot make the end
    look finished; the rule reads the text with and without them and keeps the more
    cautious verdict ("a table for it." with "it." doubted: unfinished, as "a table for";
    "let me think of" with "of" doubted: unfinished still)."""
    text = transcript.strip()
    p = _rule(text, language, words)
    trusted = reliable_text(text, confidences)
    return p if trusted == text else min(p, _rule(trusted, language, words))


def _rule(text: str, language: str | None, words: dict[str, frozenset[str]] | None) -> float:
    if not text:
        return NEUTRAL
    if text.endswith("..") or text[-1] in UNFINISHED_PUNCTUATION:
        return UNFINISHED  # a trailing ellipsis or comma: the speaker stopped mid-way
    last = text.split()[-1].strip("\"'()[].").lower()
    table = WORDS if words is None else words
    if last in table.get(base_language(language), frozenset()) and text[-1] not in "?!":
        # "... a table for" or "... come on." (recognisers that transcribe each segment on
        # its own end every one with a full stop): unfinished
        return UNFINISHED
    if trailing_letters(text) >= SPELLING_RUN and text[-1] not in "?!":
        return UNFINISHED  # "S M I": a word being spelled goes on ("S M I T H?" asks)
    if DIGIT_GROUP[0] <= trailing_digits(text, language) <= DIGIT_GROUP[1] and \
            not _whole_numeral(text):
        return UNFINISHED  # "eight six seven": a number read in groups goes on
    if text[-1] in TERMINAL:
        return COMPLETE
    return NEUTRAL


def is_backchannel_phrase(text: str, language: str | None = None) -> bool:
    """Whether ``text`` is a backchannel phrase of its language (unknown language: none)."""
    return normalize(text) in BACKCHANNELS.get(base_language(language), frozenset())
