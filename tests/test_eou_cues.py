"""The built-in rules' richer cues per language (en, es, fr, de, pt, it): an e-mail or web
address still being read, a day said before its month, a year after a month, phrases
complete as they are, a doubted group of digits, and the decision record naming the cue."""

from __future__ import annotations

import pytest

from turnfsm import outputs as out
from turnfsm.core import eou
from turnfsm.core.eou import (
    COMPLETE,
    NEUTRAL,
    UNFINISHED,
    address_open,
    end_of_turn_probability,
    end_of_turn_verdict,
)

from .test_profiles import Run, speech

LANGUAGES = ("en", "es", "fr", "de", "pt", "it")

#: per language: an address read in groups (each prefix ends a group: unfinished), the
#: whole address (complete), and sentences with the connector words that are not addresses
ADDRESSES: dict[str, tuple[list[str], str, list[str]]] = {
    "en": (["john dot smith", "john dot smith at example", "john underscore smith",
            "John.Smith.", "mary at gmail"],
           "john dot smith at example dot com",
           ["I'm at home.", "add a dash of salt.", "it costs two dot five.",
            "I live in the U.S.", "see you at five.", "I'll be at the office at noon."]),
    "es": (["juan punto pérez", "juan punto pérez arroba ejemplo", "juan guion bajo pérez"],
           "juan punto pérez arroba ejemplo punto es",
           ["llegamos a las ocho en punto.", "es un punto de vista.", "eso es punto final."]),
    "fr": (["jean point dupont", "jean point dupont arobase exemple", "jean tiret bas dupont"],
           "jean point dupont arobase exemple point fr",
           ["c'est un point de vue.", "au point mort.", "je suis à la maison."]),
    "de": (["hans punkt müller", "hans punkt müller at beispiel", "hans unterstrich müller"],
           "hans punkt müller ät beispiel punkt de",
           ["wir treffen uns um Punkt acht.", "das ist der Punkt.", "ein Punkt für dich."]),
    "pt": (["joão ponto silva", "joão ponto silva arroba exemplo", "joão underline silva"],
           "joão ponto silva arroba exemplo ponto com ponto br",
           ["esse é o ponto.", "ponto final.", "chegamos às oito em ponto."]),
    "it": (["mario punto rossi", "mario punto rossi chiocciola esempio", "mario trattino rossi"],
           "mario punto rossi chiocciola esempio punto it",
           ["a che punto siamo?", "il punto è questo.", "sono a casa."]),
}

#: per language: a day said before its month (unfinished), the date whole (not unfinished),
#: and a year after a month (complete)
DATES: dict[str, tuple[str, str, str]] = {
    "en": ("we arrive on the 14", "we arrive on the 14 of March.", "born March 3, 1985."),
    "es": ("llegamos el catorce", "llegamos el catorce de marzo.", "nací el 3 de marzo de 1985."),
    "fr": ("nous arrivons le quatorze", "nous arrivons le quatorze mars au soir.",
           "né le 3 mars 1985."),
    "de": ("wir kommen am vierzehnten", "wir kommen am vierzehnten März.",
           "geboren am 3. März 1985."),
    "pt": ("chegamos no dia catorze", "chegamos no dia catorze de março.",
           "nasci em 3 de março de 1985."),
    "it": ("arriviamo il quattordici", "arriviamo il quattordici marzo.",
           "sono nato il 3 marzo 1985."),
}

#: per language: a phrase complete as it is that ends on a listed word, and the same word
#: ending a clause that goes on
PHRASES: dict[str, tuple[str, str]] = {
    "en": ("Hold on.", "I think we could come on."),
    "es": ("Estoy en contra.", "Lo dejo en contra."),
    "fr": ("Je suis pour.", "C'est une table pour."),
    "de": ("Na und.", "Eier und."),
    "pt": ("Eu vou.", "Amanhã eu vou."),
    "it": ("Dai, su.", "Il libro è su."),
}


@pytest.mark.parametrize("language", LANGUAGES)
def test_an_address_read_in_groups_is_open_until_its_domain(language: str) -> None:
    """Each group of an address read aloud leaves it open (with or without a segment's full
    stop); its top-level domain ends it."""
    groups, whole, _ = ADDRESSES[language]
    for text in groups:
        assert address_open(text, language), (language, text)
        assert end_of_turn_verdict(text.rstrip(".") + ".", language) == (
            UNFINISHED, "an address still open"), (language, text)
    assert not address_open(whole, language)
    assert end_of_turn_probability(whole + ".", language) == COMPLETE


@pytest.mark.parametrize("language", LANGUAGES)
def test_connector_words_in_sentences_are_not_addresses(language: str) -> None:
    """The dot word and a plain 'at' in ordinary sentences ('I'm at home.', 'en punto',
    'um Punkt acht', 'U.S.') do not make an address."""
    for text in ADDRESSES[language][2]:
        assert not address_open(text, language), (language, text)
        assert end_of_turn_probability(text, language) == COMPLETE, (language, text)


def test_written_addresses_and_long_tails() -> None:
    """A written address is read as spoken ('john.smith@example.com.' ends, 'John.Smith.'
    does not); a sentence going on after an address, or a list word after the connector,
    is no address end; a language without lists has no address words."""
    assert not address_open("john.smith@example.com.", "en")
    assert address_open("write to john.smith@example", "en")
    assert not address_open("john dot smith at example dot com and my phone is five", "en")
    assert not address_open("john dot smith and then some more words", "en")
    assert not address_open("jan punt de vries", "nl")
    assert eou.ADDRESS_WORDS["en"]["domains"] and eou.ADDRESS_WORDS["de"]["providers"]


@pytest.mark.parametrize("language", LANGUAGES)
def test_a_day_before_its_month_and_a_year_after_it(language: str) -> None:
    """A day said after its marker ('le quatorze') waits for the month; the whole date is not
    unfinished; a year after a month ends the turn although it is 4 digits."""
    open_, whole, year = DATES[language]
    assert end_of_turn_verdict(open_, language) == (UNFINISHED, "a day before its month")
    assert end_of_turn_verdict(open_ + ".", language)[0] == UNFINISHED
    assert end_of_turn_probability(whole, language) != UNFINISHED, (language, whole)
    assert end_of_turn_verdict(year, language) == (COMPLETE, "a year after a month")
    assert end_of_turn_verdict(year.rstrip("."), language) == (NEUTRAL, "a year after a month")
    assert end_of_turn_probability("1985", language) == UNFINISHED  # 4 digits alone: a group


@pytest.mark.parametrize("language", LANGUAGES)
def test_a_complete_phrase_ends_on_a_listed_word(language: str) -> None:
    """A phrase of the language's list is complete though its last word is a preposition or
    conjunction; the same word closing a longer clause still waits."""
    done, going_on = PHRASES[language]
    assert end_of_turn_verdict(done, language) == (COMPLETE, "a complete phrase")
    assert end_of_turn_probability(going_on, language) == UNFINISHED, (language, going_on)


def test_demonstratives_and_her_end_a_sentence() -> None:
    """'this', 'these', 'those' and 'her' end sentences as pronouns ('I meant to do this.'):
    they are not in the English articles; 'the' still is."""
    assert end_of_turn_probability("Sorry, I meant to do this.", "en") == COMPLETE
    assert end_of_turn_probability("I called her.", "en") == COMPLETE
    assert end_of_turn_probability("I'd like the", "en") == UNFINISHED


@pytest.mark.parametrize("language", LANGUAGES)
def test_a_doubted_group_of_digits_is_not_a_whole_number(language: str) -> None:
    """'867. 5300.' with '5300.' doubted (0.33): 7 digits would read as a whole phone number,
    but the recogniser is unsure of the group, so the number goes on; trusted, it ends; the
    last group of the whole number ('9124.', trusted) ends it."""
    assert end_of_turn_verdict("867. 5300.", language, confidences=[0.78, 0.33]) == (
        UNFINISHED, "a doubted group of digits")
    assert end_of_turn_probability("867. 5300.", language, confidences=[0.78, 0.9]) == COMPLETE
    assert end_of_turn_probability("867. 5300. 9124.", language,
                                   confidences=[0.78, 0.33, 0.67]) == COMPLETE
    assert end_of_turn_verdict("9124.", language, confidences=[0.67]) == (
        COMPLETE, "a whole numeral")
    assert end_of_turn_verdict("9124.", language, confidences=[0.4])[0] == UNFINISHED


@pytest.mark.parametrize("language, text, cue", [
    ("en", "john dot smith at example", "an address still open"),
    ("es", "juan punto pérez", "an address still open"),
    ("fr", "nous arrivons le quatorze", "a day before its month"),
    ("de", "Na und.", "a complete phrase"),
    ("pt", "quero uma mesa para", "a trailing preposition 'para'"),
    ("it", "si scrive B L", "spelled letters"),
])
def test_the_decision_record_names_the_cue(language: str, text: str, cue: str) -> None:
    """The end of turn's record says what the built-in rules read, in why() too."""
    r = Run("default")
    speech(r, 0.0, 1.5, text, language=language)
    r.advance(10.0)
    [eot] = r.of(out.EndOfTurn)
    d = eot.decision
    assert d is not None and d.model is not None and d.model.cue == cue
    assert f"read: {cue}" in d.why()


def test_a_doubted_trailing_word_is_named_in_the_cue() -> None:
    """When the cautious verdict comes from the text without its doubted words, the cue says
    so."""
    assert end_of_turn_verdict("I want a table for it.", "en",
                               confidences=[0.9] * 5 + [0.1]) == (
        UNFINISHED, "a trailing preposition 'for', doubted trailing words not read")


#: per language: an elliptical answer that ends on an auxiliary (complete where the
#: language lists auxiliaries; Italian and German list none, so a plain clause checks it)
ELLIPTICAL = {"en": "Yes, I do.", "es": "Estoy en contra.", "fr": "Je suis contre.",
              "de": "Na und.", "pt": "Eu vou.", "it": "Forza, su."}


@pytest.mark.parametrize("language", LANGUAGES)
def test_a_short_answer_is_complete_but_the_same_word_later_waits(language: str) -> None:
    """'Yes, I do.' (and each language's phrase) ends; the list word after more words still
    waits: the phrase must be the whole clause or sentence."""
    text = ELLIPTICAL[language]
    assert end_of_turn_verdict(text, language) == (COMPLETE, "a complete phrase")
    longer = "and then " + text.lower().replace(",", "").rstrip(".")
    assert end_of_turn_verdict(longer, language)[1] != "a complete phrase", longer
    assert end_of_turn_probability("the problem is", "en") == UNFINISHED
    assert end_of_turn_probability("Oh, that'll do.", "en") == COMPLETE


@pytest.mark.parametrize("language", LANGUAGES)
def test_a_card_number_s_groups_so_far_are_unfinished(language: str) -> None:
    """8 and 12 digits (a card read in fours) are groups so far in every language's digit
    words; 7, 10 and 11 (a whole phone number) and 16 (the whole card) are not."""
    one = {"en": "one", "es": "uno", "fr": "deux", "de": "eins", "pt": "dois",
           "it": "uno"}[language]
    for n, want in ((8, UNFINISHED), (12, UNFINISHED), (7, NEUTRAL), (10, NEUTRAL),
                    (11, NEUTRAL), (16, NEUTRAL)):
        assert end_of_turn_probability(" ".join([one] * n), language) == want, (language, n)
    assert end_of_turn_verdict("4111 2222", language) == (UNFINISHED, "a group of 8 digits")
