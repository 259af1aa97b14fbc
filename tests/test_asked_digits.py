"""What the agent asked for: "Please say your four digit PIN" makes four digits a whole
answer and fewer an answer still being read, in every shipped language; the agent's text
reaches the rules from the trace (``agent.speech_started`` ``text``), the runtime's model
and ``listen``'s words sidecar, and stays out of the reference's trace form."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import pytest

from turnfsm import events as ev
from turnfsm import outputs as out
from turnfsm.core.eou import (
    COMPLETE,
    NEUTRAL,
    UNFINISHED,
    asked_digits,
    end_of_turn_verdict,
)
from turnfsm.errors import TraceError
from turnfsm.replay.trace import parse_trace
from turnfsm.runtime.model import RuleBasedModel
from turnfsm.runtime.protocols import TurnContext

from .test_profiles import Run, speech

#: per language: the agent's question, the count it asks for, the whole answer in digit
#: words and its first half
ASKED: dict[str, tuple[str, int, str, str]] = {
    "en": ("Please say your four digit PIN.", 4, "four seven one nine", "four seven"),
    "es": ("Dígame su código de cuatro dígitos.", 4, "cuatro siete uno nueve",
           "cuatro siete"),
    "fr": ("Quel est votre code à quatre chiffres ?", 4, "quatre sept un neuf",
           "quatre sept"),
    "de": ("Bitte nennen Sie Ihre vierstellige PIN.", 4, "vier sieben eins neun",
           "vier sieben"),
    "pt": ("Qual é o seu código de quatro dígitos?", 4, "quatro sete um nove",
           "quatro sete"),
    "it": ("Mi dica il codice di quattro cifre.", 4, "quattro sette uno nove",
           "quattro sette"),
}


@pytest.mark.parametrize("language", sorted(ASKED))
def test_the_count_the_agent_asked_for_is_read_in_each_language(language: str) -> None:
    """Each language's question gives its count, as a word and as a numeral."""
    question, n, _, _ = ASKED[language]
    assert asked_digits(question, language) == n
    numeral = question.replace({"en": "four", "es": "cuatro", "fr": "quatre", "de": "vier",
                                "pt": "quatro", "it": "quattro"}[language], "6", 1)
    assert asked_digits(numeral, language) == 6, numeral


@pytest.mark.parametrize("language", sorted(ASKED))
def test_the_whole_answer_ends_and_a_part_goes_on(language: str) -> None:
    """The asked count of digits is complete (it waited max_delay as a group before); fewer
    are unfinished (two digits alone read neutral before); more fall to the other rules."""
    question, n, whole, part = ASKED[language]
    assert end_of_turn_verdict(whole, language, agent_text=question) == (
        COMPLETE, f"the {n} digits the agent asked for")
    assert end_of_turn_verdict(whole, language)[0] == UNFINISHED  # a group, unasked
    assert end_of_turn_verdict(part, language, agent_text=question) == (
        UNFINISHED, f"2 of the {n} digits the agent asked for")
    assert end_of_turn_verdict(part, language)[0] == NEUTRAL
    longer = f"{whole} {part}"  # six digits: not what was asked, the group rule reads it
    assert end_of_turn_verdict(longer, language, agent_text=question)[1] == "a group of 6 digits"


def test_the_count_is_read_only_where_it_is_one_count_of_digits() -> None:
    """Two different counts, a number that counts something else, no text or a language
    without lists: no count."""
    assert asked_digits("Your 16 digit card number and the 3 digit code, please.", "en") is None
    assert asked_digits("Your 16 digit card number: the 16 digits on the front.", "en") == 16
    assert asked_digits("I have four questions for you.", "en") is None
    assert asked_digits("What is your one digit choice?", "en") is None  # below the range
    assert asked_digits(None, "en") is None
    assert asked_digits("Say your four digit PIN.", "nl") is None
    assert asked_digits("Ihre 4-stellige PIN", "de") == 4


def test_an_answer_with_words_before_its_digits_counts_them_and_a_question_asks() -> None:
    """'my PIN is four seven one nine' is the whole PIN; digits then other words are not an
    answer of digits; a question mark asks back, whatever the count."""
    q = "Please say your four digit PIN."
    assert end_of_turn_verdict("my PIN is four seven one nine", "en", agent_text=q)[0] == \
        COMPLETE
    assert end_of_turn_verdict("4719.", "en", agent_text=q)[0] == COMPLETE
    assert "asked" not in end_of_turn_verdict("four seven one nine please", "en",
                                              agent_text=q)[1]
    assert end_of_turn_verdict("four seven?", "en", agent_text=q)[1] != \
        "2 of the 4 digits the agent asked for"


def _pin_turn(agent_text: str | None) -> Run:
    r = Run("default")
    r.at(0.0, ev.AgentSpeechStarted(t=0.0, text=agent_text))
    r.at(1.5, ev.AgentSpeechEnded(t=1.5))
    speech(r, 2.0, 3.4, "four seven one nine")
    return r.advance(10.0)


def test_the_engine_reads_the_agent_s_text_and_the_record_names_the_cue() -> None:
    """With the agent's question the PIN's turn ends after min_delay, not max_delay, and
    why() says what was read; the same turn without the text waits max_delay."""
    [asked] = _pin_turn("Please say your four digit PIN.").of(out.EndOfTurn)
    [plain] = _pin_turn(None).of(out.EndOfTurn)
    assert asked.decision is not None and asked.decision.model is not None
    assert asked.decision.model.cue == "the 4 digits the agent asked for"
    assert "read: the 4 digits the agent asked for" in asked.decision.why()
    assert plain.t - asked.t > 1.5


def test_a_host_model_is_given_the_agent_s_text() -> None:
    """The request carries what the agent said; the rule-based model reads it."""
    r = Run("default")
    r.e.handle(ev.UpdateOptions(t=0.0, set_turn_detection=True, turn_detection="model"))
    r.at(0.0, ev.AgentSpeechStarted(t=0.0, text="Your six digit code?"))
    r.at(1.0, ev.AgentSpeechEnded(t=1.0))
    speech(r, 1.5, 2.5, "one two three")
    r.advance(2.95)
    [req] = r.of(out.EouModelRequest)
    assert req.agent_text == "Your six digit code?"
    model = RuleBasedModel()
    ctx = TurnContext(transcript="one two three four five six", language="en", request_id=1,
                      agent_text=req.agent_text)
    assert asyncio.run(model.predict_end_of_turn(ctx)) == model.complete
    ctx = TurnContext(transcript="one two three", language="en", request_id=1,
                      agent_text=req.agent_text)
    assert asyncio.run(model.predict_end_of_turn(ctx)) == model.unfinished


def test_the_trace_field_is_text_or_null_and_named_when_wrong() -> None:
    """``text`` on agent.speech_started is optional text; anything else is refused with
    the line and field named."""
    head = '{"kind":"config"}\n'
    ok = parse_trace(head + '{"t":0,"kind":"agent.speech_started","text":"Your PIN?"}\n',
                     "t.jsonl")
    assert ok.inputs[0].fields.get("text") == "Your PIN?"
    with pytest.raises(TraceError, match=r"t.jsonl:2: field 'text'.*string or null"):
        parse_trace(head + '{"t":0,"kind":"agent.speech_started","text":4}\n', "t.jsonl")


def test_listen_puts_the_agent_s_words_on_its_speech_and_the_reference_form_drops_them(
        tmp_path: Path) -> None:
    """The words sidecar's agent words become the agent's text on its speech start; the
    reference's form of the same trace leaves the field out (its replayer refuses it)."""
    from turnfsm.audio.listen import ListenOptions, build_trace, trace_lines
    from turnfsm.audio.transcripts import read_words
    from turnfsm.audio.wav import read_wav
    corpus = Path(__file__).parent.parent / "examples" / "corpus"
    stem = corpus / "en10_digits_pin"
    sidecar = Path(f"{stem}.words.json")
    trace = build_trace(read_wav(f"{stem}.wav"), ListenOptions(),
                        words=read_words(sidecar),
                        agent_words=read_words(sidecar, "agent"))
    [start] = [i for i in trace.inputs if i.kind == "agent.speech_started"]
    assert start.fields["text"] == "Please say your four digit PIN"
    ours = [json.loads(x) for x in trace_lines(trace).splitlines()]
    ref = [json.loads(x) for x in trace_lines(trace, reference=True).splitlines()]
    assert any(x.get("text") == "Please say your four digit PIN" for x in ours)
    assert not any(x["kind"] == "agent.speech_started" and "text" in x for x in ref)
    assert any(x["kind"] == "stt.final" and "text" in x for x in ref)  # a final keeps its own


def test_a_host_model_is_given_the_word_confidences_and_the_rules_read_them() -> None:
    """The request carries the recogniser's per-word confidence; the rule-based model does
    not read a doubted trailing word (Whisper's 'it' after 'for')."""
    r = Run("default")
    r.e.handle(ev.UpdateOptions(t=0.0, set_turn_detection=True, turn_detection="model"))
    speech(r, 0.5, 1.5, "a table for it.", word_confidences=(0.9, 0.9, 0.9, 0.1))
    r.advance(2.2)
    [req] = r.of(out.EouModelRequest)
    assert req.word_confidences == (0.9, 0.9, 0.9, 0.1)
    model = RuleBasedModel()
    ctx = TurnContext(transcript=req.transcript, language="en", request_id=1,
                      word_confidences=req.word_confidences)
    assert asyncio.run(model.predict_end_of_turn(ctx)) == model.unfinished
    plain = TurnContext(transcript=req.transcript, language="en", request_id=1)
    assert asyncio.run(model.predict_end_of_turn(plain)) == model.complete


def test_a_replay_s_live_model_is_asked_with_the_agent_s_text() -> None:
    """`--turn-detection model` replays (listen, view, tune) ask the live model with the
    whole request: the agent's text reaches it, and the rule-based model ends the PIN."""
    from turnfsm.runtime.replay import RuntimeReplay
    lines = [
        {"kind": "config", "turn_detection": "model"},
        {"t": 0.0, "kind": "agent.speech_started", "text": "Please say your four digit PIN."},
        {"t": 1.5, "kind": "agent.speech_ended"},
        {"t": 2.1, "kind": "vad.start_of_speech", "speech_duration": 0.1},
        {"t": 3.6, "kind": "vad.end_of_speech", "silence_duration": 0.2},
        {"t": 3.7, "kind": "stt.final", "text": "four seven one nine", "language": "en"},
    ]
    trace = parse_trace("".join(json.dumps(x) + "\n" for x in lines), "pin.jsonl")
    seen: list[TurnContext] = []
    model = RuleBasedModel()

    def fn(ctx: TurnContext) -> float:
        seen.append(ctx)
        return model.answer(ctx)
    r = RuntimeReplay(trace)
    r.model_fn = fn
    r.model.opts["unlikely_threshold"] = model.threshold
    outs = r.run()
    assert seen and seen[-1].agent_text == "Please say your four digit PIN."
    [eot] = [o for o in outs if o["kind"] == "on_end_of_turn"]
    assert eot["t"] < 3.7 + 1.0  # min_delay, not max_delay


def test_a_session_takes_the_agent_s_text_and_ends_the_asked_pin_at_min_delay() -> None:
    """Session.agent_speech_started(text=...) reaches the rules: the PIN's turn ends
    min_delay after the speech, where without the text it waits max_delay."""
    from turnfsm.runtime.session import Session

    from .test_runtime import Recorder, speak, virtual

    def run(text: str | None) -> float:
        got: list[float] = []

        async def body() -> None:
            rec = Recorder()
            s = Session(profile="default", hooks=rec, telemetry=False)
            await s.advance_to(0.0)
            s.agent_speech_started(text=text)
            await s.advance_to(1.0)
            s.agent_speech_ended()
            await speak(s, "four seven one nine", at=1.5)
            await s.advance_to(8.0)
            got.extend(o.t for o in rec.outputs if isinstance(o, out.EndOfTurn))
            await s.aclose()
        virtual(body)
        assert len(got) == 1
        return got[0]
    assert run("Please say your four digit PIN.") < 3.0 < run(None)


@pytest.mark.parametrize(("language", "question", "card"), [
    ("en", "Please read me the card number.", "four one one one " * 4),
    ("es", "Dígame el número de tarjeta.", "cuatro uno uno uno " * 4),
    ("fr", "Quel est le numéro de votre carte ?", "quatre un un un " * 4),
    ("de", "Ihre Kartennummer, bitte.", "vier eins eins eins " * 4),
    ("pt", "Qual é o número do cartão?", "quatro um um um " * 4),
    ("it", "Mi dica il numero della carta.", "quattro uno uno uno " * 4),
])
def test_a_card_number_asked_for_is_sixteen_digits(language: str, question: str,
                                                   card: str) -> None:
    """'The card number' asks for a payment card's 16 digits: all 16 end the turn, 12 go
    on; an explicit count wins; a card without a number asks for none."""
    assert asked_digits(question, language) == 16
    words = card.split()
    assert end_of_turn_verdict(card.strip(), language, agent_text=question)[0] == COMPLETE
    assert end_of_turn_verdict(" ".join(words[:12]), language, agent_text=question) == (
        UNFINISHED, "12 of the 16 digits the agent asked for")
    assert asked_digits("Your 15 digit card number", "en") == 15
    assert asked_digits("Is this a card game?", "en") is None
