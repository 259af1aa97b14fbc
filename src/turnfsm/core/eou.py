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

An address read in groups ends each group on an ordinary word ("john dot smith" ... "at
example" ... "dot com"): :func:`address_open` reads the address's shape
(``address_words.json``: each language's dot word, separators, at signs and the plain
"at", with the top-level domains and mail providers they share) and keeps it open until a
domain follows a dot. A day said as a cardinal after its marker ("le quatorze", "el
catorce", "am vierzehnten") waits for its month; a 4-digit year shortly after a month
("March 3, 1985") is a whole date, not a digit group; a phrase complete as it is ends the
turn although its last word is listed ("Hold on.", "Yes, I do.", "je suis pour"; the
phrase must be the whole last clause or sentence): ``cue_words.json``. 8 and 12 digits are
a card number's groups so far (:data:`DIGIT_GROUPS_SO_FAR`); a numeral of 3 or more digits
the recogniser doubts (below :data:`WHOLE_NUMERAL_CONFIDENCE`) is a group, not a whole
number ("867. 5300." with "5300." at 0.33). :func:`end_of_turn_verdict` names the cue it
read; the decision record carries it (``ModelVerdict.cue``, and ``why()``).

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

import functools
import json
import os
import re

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
    """A JSON data file of this package folder (read beside this module, as
    ``importlib.resources`` would for a package installed as files, without its imports)."""
    with open(os.path.join(os.path.dirname(__file__), name), encoding="utf-8") as f:
        return json.load(f)


def load_words() -> dict[str, frozenset[str]]:
    """Per language, the words after which an utterance is unfinished (the categories of
    ``end_of_turn_words.json``: fillers, conjunctions, prepositions, determiners,
    auxiliaries)."""
    data = _data("end_of_turn_words.json")
    assert isinstance(data, dict)
    return {lang: frozenset(w for words in cats.values() for w in words)
            for lang, cats in data.items()}


#: What the decision record calls a word of each list (``end_of_turn_words.json``).
CATEGORY_NAMES = {"fillers": "filler", "conjunctions": "conjunction",
                  "prepositions": "preposition", "determiners": "article",
                  "auxiliaries": "auxiliary", "connectors": "address connector",
                  "number_scales": "number word", "ordinals": "day"}


def load_categories() -> dict[str, dict[str, str]]:
    """Per language, each listed word's category as the decision record names it."""
    data = _data("end_of_turn_words.json")
    assert isinstance(data, dict)
    return {lang: {w: CATEGORY_NAMES.get(cat, cat) for cat, words in cats.items()
                   for w in words} for lang, cats in data.items()}


def load_cue_words() -> dict[str, dict[str, frozenset[str]]]:
    """Per language, the other cues' words (``cue_words.json``): month names (a year after
    one ends a date), day markers and day numbers ("le quatorze": a date still open), and
    complete phrases that end on a listed word ("hold on", "je suis pour")."""
    data = _data("cue_words.json")
    assert isinstance(data, dict)
    return {lang: {k: frozenset(v) for k, v in cats.items()} for lang, cats in data.items()}


def load_backchannels() -> dict[str, frozenset[str]]:
    """Per language, the backchannel phrases (``backchannels.json``), normalized."""
    data = _data("backchannels.json")
    assert isinstance(data, dict)
    return {lang: frozenset(normalize(p) for p in phrases) for lang, phrases in data.items()}




def load_address_words() -> dict[str, dict[str, tuple[str, ...]]]:
    """Per language, the words of an address read aloud (``address_words.json``): the dot
    word, other separators, the weak at ("at": also an ordinary preposition) and the at
    signs, phrases where the dot word is a noun ("punto final"), with the top-level domains
    and mail providers every language shares (``*``).
    Several-word entries ("guion bajo") come first, longest first."""
    data = _data("address_words.json")
    assert isinstance(data, dict)
    shared = data.pop("*")
    out: dict[str, dict[str, tuple[str, ...]]] = {}
    for lang, cats in data.items():
        merged = {**shared, **cats}
        out[lang] = {k: tuple(sorted(v, key=lambda w: (-len(w.split()), w)))
                     for k, v in merged.items()}
    return out


def load_digit_words() -> dict[str, frozenset[str]]:
    """Per language, the words for single digits (``digit_words.json``)."""
    data = _data("digit_words.json")
    assert isinstance(data, dict)
    return {lang: frozenset(words) for lang, words in data.items()}


def load_asked_digits() -> dict[str, tuple[frozenset[str], tuple[str, ...], dict[str, int],
                                           dict[str, int]]]:
    """Per language, how an agent asks for a number of digits (``asked_digits.json``): the
    nouns that follow the count ("four digit PIN", "de cuatro dígitos", "à quatre
    chiffres", "vier Ziffern"), the suffixes joined to it (German "vierstellige"), the
    counts said as words (numerals count too), and the things whose number has a known
    count ("card number": 16, as a payment card's is read)."""
    data = _data("asked_digits.json")
    assert isinstance(data, dict)
    return {lang: (frozenset(c["nouns"]), tuple(c["suffixes"]), dict(c["numbers"]),
                   {normalize(k): v for k, v in c.get("implied", {}).items()})
            for lang, c in data.items()}


WORDS = load_words()
CATEGORIES = load_categories()
CUE_WORDS = load_cue_words()
BACKCHANNELS = load_backchannels()
DIGIT_WORDS = load_digit_words()
ADDRESS_WORDS = load_address_words()
ASKED_DIGITS = load_asked_digits()
#: The counts of digits an agent's question is read for ("your two digit code" to "your
#: twenty digit reference"); other numbers before "digits" are not a count asked for.
ASKED_RANGE = (2, 20)
#: A trailing run of this many digits (as numerals or digit words) is a number still being
#: read: a phone number or a code goes on in groups (fewer: an answer such as "two"; more:
#: a whole number).
DIGIT_GROUP = (3, 6)
#: Runs of more digits that are still groups: a card number (16 digits) is read in fours,
#: so 8 and 12 digits are its groups so far (a whole phone number has 7, 10 or 11).
DIGIT_GROUPS_SO_FAR = frozenset({8, 12})
#: A word the recogniser gave less confidence than this at the end of a transcript is not
#: read by the rules (Whisper's hallucinated "it" after "for": probability 0.1 to 0.3; its
#: real words are mostly above 0.5).
LOW_WORD_CONFIDENCE = 0.3
#: A trailing run of at least this many single letters is a word being spelled.
SPELLING_RUN = 2
#: A numeral the recogniser gave less confidence than this is not evidence that it wrote a
#: whole number ("5300." at 0.33 for "five three zero": a group it misheard); its real
#: words are mostly above it (see :data:`LOW_WORD_CONFIDENCE`).
WHOLE_NUMERAL_CONFIDENCE = 0.5


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


def _whole_numeral(text: str, confidence: float | None = None) -> bool:
    """The transcript ends with one numeral of 4 or more digits and a full stop ("4719."):
    the recogniser formatted a whole number (unless it doubted it: ``confidence``, the
    numeral's, below :data:`WHOLE_NUMERAL_CONFIDENCE`)."""
    last = text.split()[-1]
    return last.endswith(".") and last[:-1].isdigit() and len(last) - 1 >= 4 and \
        (confidence is None or confidence >= WHOLE_NUMERAL_CONFIDENCE)


def _doubted_group(text: str, confidence: float | None) -> bool:
    """The transcript ends with a numeral of 3 or more digits ("5300.", "4-1-1-1") that the
    recogniser gave less than :data:`WHOLE_NUMERAL_CONFIDENCE`."""
    last = text.split()[-1].strip("\"'()[],;:.!?").replace("-", "")
    return confidence is not None and confidence < WHOLE_NUMERAL_CONFIDENCE and \
        last.isdigit() and len(last) >= DIGIT_GROUP[0]


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


#: How many words may follow an address's last connector while it is still being read
#: ("john dot smith", "at example", "smith eighty"): more is a sentence going on.
ADDRESS_TAIL = 2
#: How far back (in address pieces) a separator makes a plain "at" an address's at.
ADDRESS_REACH = 4
_ADDRESS_MARKS = re.compile(r"([@._])")
_NUMBER = re.compile(r"\d+")


#: per language, the address words as (kind, words) in the order they are matched (at signs,
#: separators, the dot word, the plain at; several-word entries first within each)
_ADDRESS_PHRASES: dict[str, tuple[tuple[str, tuple[str, ...]], ...]] = {
    lang: tuple((kind, tuple(w.split())) for kind in ("at_signs", "separators", "dot", "at")
                for w in table[kind])
    for lang, table in ADDRESS_WORDS.items()}


def _address_tokens(text: str, language: str | None) -> list[tuple[str, str]]:
    """``text`` as address pieces: ``(kind, word)`` with kind ``dot``, ``sep`` (another
    separator), ``at`` (a plain "at"), ``at_sign`` (a word only an address has: "arroba",
    or a written "@"), ``num`` (a numeral or digit word) or ``word``. Written forms are
    split ("john.smith@example.com"); the punctuation around words is not read (a
    segment-wise recogniser ends each group with a full stop)."""
    lang = base_language(language)
    digits = DIGIT_WORDS.get(lang, frozenset())
    pieces: list[str] = []
    for raw in text.lower().split():
        tok = raw.strip("\"'()[],;:.!?\u2026")
        for part in _ADDRESS_MARKS.split(tok):
            if part:
                pieces.append(part)
    kinds: list[tuple[str, str]] = []
    phrases = _ADDRESS_PHRASES.get(lang, ())
    i = 0
    while i < len(pieces):
        for kind, words in phrases:
            if tuple(pieces[i:i + len(words)]) == words:
                kinds.append(({"at_signs": "at_sign", "separators": "sep"}.get(kind, kind),
                              " ".join(words)))
                i += len(words)
                break
        else:
            w = pieces[i]
            mark = {"@": "at_sign", ".": "dot", "_": "sep"}.get(w)
            if mark is None:
                mark = "num" if _NUMBER.fullmatch(w) or w in digits else "word"
            kinds.append((mark, w))
            i += 1
    return kinds


def address_open(text: str, language: str | None = None, *,
                 words: dict[str, frozenset[str]] | None = None) -> bool:
    """Whether ``text`` ends inside an e-mail or web address read aloud: its last connector
    ("dot", "underscore", "dash", "at" and each language's words,
    ``address_words.json``) is followed by at most :data:`ADDRESS_TAIL` pieces, none a word
    of the lists, and no top-level domain came after a dot ("john dot smith", "john dot
    smith at example", "juan punto pérez arroba"; "dot com" ends it). A connector counts
    only in an address's shape: a separator between two pieces that are not words of the
    lists nor both numbers ("a dash of salt", "two dot five", "um Punkt acht" and "U.S."
    are not addresses), and a plain "at" only after a separator within
    :data:`ADDRESS_REACH` pieces or before a mail provider ("I'm at home." ends)."""
    lang = base_language(language)
    table = ADDRESS_WORDS.get(lang)
    if table is None:
        return False
    function = (WORDS if words is None else words).get(lang, frozenset())
    toks = _address_tokens(text, lang)
    connectors = ("dot", "sep", "at", "at_sign")
    last = max((i for i, (k, _w) in enumerate(toks) if k in connectors), default=None)
    if last is None:
        return False
    tail = toks[last + 1:]
    if not tail or len(tail) > ADDRESS_TAIL or any(w in function for _k, w in tail):
        return False  # a trailing connector is the word lists' cue; a sentence goes on
    kind, _word = toks[last]
    if kind == "dot" and tail[0][1] in table["domains"]:
        return False  # "dot com": the address is whole
    if f"{toks[last][1]} {tail[0][1]}" in table["phrases"]:
        return False  # "punto final": a phrase of the language, not an address

    def piece(i: int) -> bool:
        return 0 <= i < len(toks) and toks[i][0] in ("word", "num") and \
            toks[i][1] not in function

    def separator(i: int) -> bool:
        k = toks[i][0]
        if k not in ("dot", "sep") or not (piece(i - 1) and piece(i + 1)):
            return False
        left, right = toks[i - 1], toks[i + 1]
        if left[0] == "num" and right[0] == "num":
            return False  # a number: "two dot five", "3.50"
        if k == "dot" and left[0] == "word" and right[0] == "num" and \
                all(t[0] == "num" for t in toks[i + 1:]):
            return False  # a time: "um Punkt acht"
        return not (len(left[1]) == 1 and len(right[1]) == 1)  # initials: "U.S."

    if kind == "at_sign":
        return True
    if kind == "at":
        return piece(last - 1) and (
            any(separator(i) for i in range(max(0, last - ADDRESS_REACH), last))
            or tail[0][1] in table["providers"])
    return separator(last)


def base_language(language: str | None) -> str:
    """``en-US`` -> ``en``; empty -> the default language."""
    if not language:
        return DEFAULT_LANGUAGE
    return language.split("-")[0].split("_")[0].lower()


def end_of_turn_probability(transcript: str, language: str | None = None, *,
                            words: dict[str, frozenset[str]] | None = None,
                            confidences: list[float | None] | None = None,
                            agent_text: str | None = None) -> float:
    """The rule on one transcript: :data:`COMPLETE`, :data:`UNFINISHED` or :data:`NEUTRAL`
    (:func:`end_of_turn_verdict` without its cue)."""
    return end_of_turn_verdict(transcript, language, words=words, confidences=confidences,
                               agent_text=agent_text)[0]


def end_of_turn_verdict(transcript: str, language: str | None = None, *,
                        words: dict[str, frozenset[str]] | None = None,
                        confidences: list[float | None] | None = None,
                        agent_text: str | None = None) -> tuple[float, str]:
    """The rule on one transcript and the cue it read (the decision record names it):
    :data:`COMPLETE`, :data:`UNFINISHED` or :data:`NEUTRAL`. ``confidences``, one per word:
    trailing words the recogniser doubts cannot make the end look finished; the rule reads
    the text with and without them and keeps the more cautious verdict ("a table for it."
    with "it." doubted: unfinished, as "a table for"; "let me think of" with "of" doubted:
    unfinished still). ``agent_text``, what the agent said before the turn: when it asked
    for a number of digits, an answer of that many digits is whole and one of fewer goes on
    (:func:`asked_digits`)."""
    text = transcript.strip()
    confs = confidences if confidences and len(confidences) == len(text.split()) else None
    asked = asked_digits(agent_text, language)
    p, cue = _rule(text, language, words, confs[-1] if confs else None, asked)
    trusted = reliable_text(text, confs)
    if trusted == text:
        return p, cue
    q, why = _rule(trusted, language, words, None, asked)
    return (q, f"{why}, doubted trailing words not read") if q < p else (p, cue)


def _last_parts(text: str) -> set[str]:
    """The last clause of ``text`` (after its last comma or sentence mark) and its last
    sentence, normalized."""
    out = set()
    for marks in (r"[.!?,;:\u2026]+", r"[.!?\u2026]+"):
        parts = [c for c in re.split(marks, text) if c.strip()]
        if parts:
            out.add(normalize(parts[-1]))
    return out


@functools.lru_cache(maxsize=256)  # one agent text is read at every wait of the turns after it
def asked_digits(agent_text: str | None, language: str | None = None) -> int | None:
    """How many digits the agent asked for ("Please say your four digit PIN." -> 4;
    "Ihre vierstellige PIN" -> 4; "el código de 6 dígitos" -> 6; without a count, a thing
    whose number has a known length: "Please read me the card number." -> 16), or None: no
    count, or
    two different counts ("a 16 digit card number and its 3 digit code": the answer's
    length says nothing then)."""
    if not agent_text:
        return None
    table = ASKED_DIGITS.get(base_language(language))
    if table is None:
        return None
    nouns, suffixes, numbers, implied = table
    toks = [t for t in re.split(r"[\s\-\u2010\u2011]+", normalize(agent_text)) if t]

    def count(tok: str) -> int | None:
        n = int(tok) if tok.isdigit() else numbers.get(tok)
        return n if n is not None and ASKED_RANGE[0] <= n <= ASKED_RANGE[1] else None
    found: set[int] = set()
    for i, tok in enumerate(toks):
        n = count(tok)
        if n is not None and i + 1 < len(toks) and (toks[i + 1] in nouns
                                                  or toks[i + 1] in suffixes):
            found.add(n)
            continue
        for suffix in suffixes:  # "vierstellige"
            if tok.endswith(suffix) and (n := count(tok[:-len(suffix)])) is not None:
                found.add(n)
    if not found:  # "the card number": a payment card's 16 digits
        said = f" {' '.join(toks)} "
        found = {n for thing, n in implied.items() if f" {thing} " in said}
    return found.pop() if len(found) == 1 else None


def _all_digits(text: str, language: str | None) -> int | None:
    """How many digits the transcript holds when it is all digits (numerals count each
    digit, digit words one), but for words before its first digit ("my PIN is four seven
    one nine"), else None (no digit, or a digit then other words)."""
    digits = DIGIT_WORDS.get(base_language(language), frozenset())
    n = 0
    for token in re.split(r"[\s,;:/-]+", text.lower()):
        token = token.strip("\"'()[].!?")
        if token.isdigit():
            n += len(token)
        elif token in digits:
            n += 1
        elif token and n:
            return None  # other words after a digit
    return n or None


def _year_of_date(text: str, cues: dict[str, frozenset[str]]) -> bool:
    """The transcript ends with a year (one numeral of 4 digits) shortly after a month
    ("March 3, 1985", "14 mars 1985"): a whole date, not digits read in groups."""
    toks = [t.strip("\"'()[],;:.!?") for t in text.lower().split()]
    if not toks or not (len(toks[-1]) == 4 and toks[-1].isdigit()):
        return False
    return any(t in cues.get("months", frozenset()) for t in toks[-4:-1])


def _open_date(text: str, cues: dict[str, frozenset[str]]) -> bool:
    """The transcript ends with a day said as a cardinal after its marker ("le quatorze",
    "el catorce", "il quattordici", "dia catorze", "am vierzehnten", "the 14"): the month
    is still to come."""
    toks = [t.strip("\"'()[],;:.!?") for t in text.lower().split()]
    if len(toks) < 2 or toks[-2] not in cues.get("day_markers", frozenset()):
        return False
    day = toks[-1]
    return day in cues.get("days", frozenset()) or (day.isdigit() and 1 <= int(day) <= 31)


def _rule(text: str, language: str | None, words: dict[str, frozenset[str]] | None,
          last_confidence: float | None, asked: int | None = None) -> tuple[float, str]:
    if not text:
        return NEUTRAL, "no words"
    if text.endswith("..") or text[-1] in UNFINISHED_PUNCTUATION:
        # a trailing ellipsis or comma: the speaker stopped mid-way
        return UNFINISHED, "a trailing comma or ellipsis"
    lang = base_language(language)
    # before the word lists: a digit word may be listed too (French "un", an article)
    if asked is not None and text[-1] not in "?!" and \
            (got := _all_digits(text, language)) is not None:
        if got == asked:  # "four seven one nine" for a four digit PIN: the whole answer
            return COMPLETE, f"the {asked} digits the agent asked for"
        if got < asked:  # "four one one one" of sixteen: the card number goes on
            return UNFINISHED, f"{got} of the {asked} digits the agent asked for"
    cues = CUE_WORDS.get(lang, {})
    last = text.split()[-1].strip("\"'()[].").lower()
    table = WORDS if words is None else words
    if last in table.get(lang, frozenset()) and text[-1] not in "?!":
        # "... a table for" or "... come on." (recognisers that transcribe each segment on
        # its own end every one with a full stop): unfinished, unless the clause is a
        # phrase complete as it is ("Hold on.", "je suis pour")
        if _last_parts(text) & cues.get("complete_phrases", frozenset()):
            return (COMPLETE if text[-1] in TERMINAL else NEUTRAL), "a complete phrase"
        kind = CATEGORIES.get(lang, {}).get(last, "listed word") if words is None \
            else "listed word"
        return UNFINISHED, f"a trailing {kind} {last!r}"
    if text[-1] not in "?!" and address_open(text, lang, words=words):
        return UNFINISHED, "an address still open"  # "john dot smith", "at example"
    if text[-1] not in "?!" and _open_date(text, cues):
        return UNFINISHED, "a day before its month"  # "nous arrivons le quatorze"
    if trailing_letters(text) >= SPELLING_RUN and text[-1] not in "?!":
        return UNFINISHED, "spelled letters"  # "S M I" goes on ("S M I T H?" asks)
    if _year_of_date(text, cues):
        return (COMPLETE if text[-1] in TERMINAL else NEUTRAL), "a year after a month"
    n = trailing_digits(text, language)
    if n > DIGIT_GROUP[0] and _doubted_group(text, last_confidence):
        # "867. 5300." with "5300." doubted: 7 digits would read as a whole phone number,
        # but the recogniser is not sure of its last group (it misheard "five three zero")
        return UNFINISHED, "a doubted group of digits"
    if DIGIT_GROUP[0] <= n <= DIGIT_GROUP[1] or n in DIGIT_GROUPS_SO_FAR:
        if _whole_numeral(text, last_confidence):
            return COMPLETE, "a whole numeral"  # "4719.": the recogniser wrote it whole
        return UNFINISHED, f"a group of {n} digits"  # "eight six seven" goes on
    if text[-1] in TERMINAL:
        return COMPLETE, "a sentence end"
    return NEUTRAL, "no cue"


def is_backchannel_phrase(text: str, language: str | None = None) -> bool:
    """Whether ``text`` is a backchannel phrase of its language (unknown language: none)."""
    return normalize(text) in BACKCHANNELS.get(base_language(language), frozenset())
