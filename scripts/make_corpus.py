#!/usr/bin/env python3
"""Regenerate the labelled dialogue corpus under examples/corpus/.

Usage: ``python scripts/make_corpus.py`` (from anywhere). Needs what ``make_audio.py`` needs
(espeak-ng, sox, numpy) and reuses its synthesis, trimming, placement and label code, so the
corpus is made exactly as the examples are and is byte-reproducible the same way (a fresh
espeak-ng process per utterance, sox ``-R -D``, whole-millisecond placements, seeded noise).

What the corpus adds (see examples/corpus/README.md):

* several user voices and speeds (espeak-ng voices and variants, 140 to 200 words a minute)
  and languages (English, Spanish, French, German, Portuguese, Italian; the agent speaks the
  user's language);
* utterances whose pause sits *inside* one synthesized utterance: SSML with
  ``<break time="1200ms"/>``, so the part before the pause keeps the synthesizer's
  continuation prosody instead of a sentence-final fall; the pause is found from the samples
  (the digital silence espeak-ng leaves), as every comma pause is;
* background noise of two kinds, pink and babble-like (the spectrum and loudness envelope of
  eight synthetic talkers, with random phases), at 10 to 20 dB SNR against the user's
  speech, on the user channel only;
* a cough: a synthesized noise burst on the user channel over the agent's speech, labelled
  in ``events`` (not speech, not a turn);
* truth fields ``language``, ``kind``, ``voice``, ``rate``, ``agent_voice``, ``agent_rate``,
  ``synthesis`` and ``events``; the words sidecar carries ``language``.
"""

from __future__ import annotations

import json
import re
import shutil
import sys
import wave
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
import make_audio as ma
from make_audio import MS, SR, Clip, Placed, Scene, ms, pink_noise, synth

OUT = ma.ROOT / "examples" / "corpus"

#: The labelled kinds a dialogue can have (its ``kind`` list), with what each means.
KINDS: dict[str, str] = {
    "preposition": "a pause after a word that cannot end the sentence (a preposition, "
                   "an article, 'to'); the turn goes on",
    "list": "a list whose comma is lost: the items so far read as a finished sentence, "
            "then the next item ('I need eggs milk' ... 'and some bread')",
    "spelling": "letters spelled in groups ('S M I' ... 'T H')",
    "address": "a house number and then the street, in parts",
    "date": "a date in parts ('on the fourteenth' ... 'of March')",
    "number_words": "a number said as words, in parts ('two hundred' ... 'and fifty "
                    "dollars')",
    "digits": "digits read in groups with pauses between the groups",
    "digits_complete": "the price side: the last digit group completes the number (a PIN, "
                       "a phone or card number); the turn ends there and should not wait",
    "afterthought": "a full sentence ends a turn; 0.8 s later the user adds a second turn",
    "sentence_pause": "sentences with short pauses (0.35 to 0.4 s) between them, one turn",
    "filler": "a hesitation with a filler word (um, uh, eh, euh, äh, hum, ehm)",
    "yes_no": "short answers (yes, no) to the agent's questions",
    "backchannel": "backchannels over the agent (mhm, right, okay, yeah, vale): not turns",
    "cough": "a cough (a synthesized noise burst) over the agent: a non-speech event, not "
             "a turn",
    "barge_in": "the user barges in on the agent (at its start, middle or end)",
}

#: espeak-ng voices of the user (name, words a minute) and the agent per language.
LANGUAGES = ("en", "es", "fr", "de", "pt", "it")
AGENT = {
    "en": ("gmw/en+f3", 175), "es": ("roa/es+f3", 170), "fr": ("roa/fr+f3", 170),
    "de": ("gmw/de+f3", 170), "pt": ("roa/pt-BR+f3", 170), "it": ("roa/it+f3", 170),
}
V1 = ("gmw/en-US", 165)          # American English, male
V2 = ("gmw/en-US+f2", 175)       # American English, female variant f2
V3 = ("gmw/en+m3", 150)          # British English, male variant m3
V4 = ("gmw/en-US+f4", 190)       # American English, female variant f4, fast
V5 = ("gmw/en-GB-x-rp", 140)     # British English (RP), slow
V6 = ("gmw/en-US-nyc+m5", 200)   # American English (New York), male variant m5, fastest
V7 = ("gmw/en+f1", 160)          # British English, female variant f1

#: The babble's talkers: four sentences, each said by two voices.
BABBLE_TEXTS = [
    "the train to the city leaves every twenty minutes from platform two until midnight",
    "we should meet for lunch next week if the weather is good enough to sit outside",
    "I told him the report was due on Friday but he never answered my messages",
    "there is a small bakery around the corner that sells the best bread in town",
]
BABBLE_VOICES = [
    ("gmw/en-US+m3", 170), ("gmw/en+f4", 160), ("gmw/en-US-nyc", 185),
    ("gmw/en-GB-x-rp+f2", 150), ("gmw/en-US+f1", 175), ("gmw/en+m2", 155),
    ("gmw/en-US+m6", 165), ("gmw/en+f5", 170),
]


def ssml(*parts: str | int) -> str:
    """SSML for one utterance: strings are words, integers pauses in milliseconds."""
    body = " ".join(p if isinstance(p, str) else f'<break time="{p}ms"/>' for p in parts)
    return f"<speak>{body}</speak>"


def plain(text: str) -> str:
    """The words of a text, without SSML markup."""
    return " ".join(re.sub(r"<[^>]*>", " ", text).split())


def cough(seed: int, bursts: int = 1) -> Clip:
    """A cough-like noise burst (or several, 0.3 s apart): seeded noise shaped to a broad
    band around 800 Hz, a 5 ms attack and a 60 ms decay; whole milliseconds, peak 0.4."""
    rng = np.random.default_rng(seed)
    one = 220 * MS
    t = np.arange(one) / SR
    env = (1 - np.exp(-t / 0.005)) * np.exp(-t / 0.06)
    f = np.fft.rfftfreq(one, 1 / SR)
    shape = np.exp(-(np.log(np.maximum(f, 1.0) / 800.0) ** 2) / (2 * 0.7**2))
    out = np.zeros((bursts - 1) * 300 * MS + one)
    for k in range(bursts):
        burst = np.fft.irfft(np.fft.rfft(rng.standard_normal(one)) * shape, one) * env
        out[k * 300 * MS: k * 300 * MS + one] += burst * (1.0 if k == 0 else 0.7)
    out *= 0.4 / np.max(np.abs(out))
    return Clip(text="", audio=out, words=[], runs=[])


def babble(n: int, seed: int) -> np.ndarray:
    """Babble-like noise: the long-term spectrum and the loudness envelope of eight talkers
    (BABBLE_VOICES saying BABBLE_TEXTS, each played backwards and looped from a seeded
    offset), with seeded random phases, so it has speech's spectrum and rhythm but no
    speech in it. (The talkers themselves, even at 20 dB below the user, keep the Silero
    VAD on for the whole file: a test of the VAD, not of the turn rules.)"""
    rng = np.random.default_rng(seed)
    talkers = np.zeros(n)
    for k, voice in enumerate(BABBLE_VOICES):
        x = synth(voice, BABBLE_TEXTS[k % len(BABBLE_TEXTS)]).audio[::-1]
        looped = np.tile(x, -(-n // len(x)) + 1)
        start = int(rng.integers(0, len(x)))
        talkers += looped[start:start + n]
    width = max(1, round(20 * n / SR))  # smooth the magnitude over 20 Hz
    mag = np.convolve(np.abs(np.fft.rfft(talkers)), np.ones(width) / width, mode="same")
    shaped = np.fft.irfft(mag * np.exp(2j * np.pi * rng.random(len(mag))), n)
    env = np.convolve(np.abs(talkers), np.ones(50 * MS) / (50 * MS), mode="same")
    return shaped * env / np.mean(env)


def within_words(clip: Clip) -> Clip:
    """The clip with its speech runs joined across a digital silence that lies inside a
    word (the closure of a double consonant, as in Italian "quattro", can be 100 ms of
    silence): a pause is a gap between words."""
    runs = [clip.runs[0]]
    for a, b in clip.runs[1:]:
        if any(w0 < runs[-1][1] and a < w1 for _, w0, w1 in clip.words):
            runs[-1] = (runs[-1][0], b)
        else:
            runs.append((a, b))
    return clip if runs == clip.runs else replace(clip, runs=runs)


@dataclass
class Dialogue(Scene):
    """A corpus scene: the user's voice and language, labelled kinds, noise, coughs."""

    language: str = "en"
    voice: tuple[str, int] = V1
    kind: list[str] = field(default_factory=list)
    noise: tuple[str, float, int] | None = None  # (pink | babble, SNR dB, seed)
    events: list[tuple[str, Placed]] = field(default_factory=list)

    def _place(self, who: str, text: str, start: int) -> Placed:
        voice = self.voice if who == "user" else AGENT[self.language]
        clip = within_words(synth(voice, text, ssml=text.startswith("<speak>")))
        p = Placed(who, clip, start)
        self.items.append(p)
        self.cursor = max(self.cursor, p.end)
        return p

    def cough(self, over: Placed, at: float, seed: int, bursts: int = 1) -> Placed:
        """A cough on the user channel ``at`` s into the agent's ``over``."""
        p = Placed("user", cough(seed, bursts), over.start + ms(at))
        assert p.end < over.end, "the cough lies inside the agent's speech"
        self.items.append(p)
        self.events.append(("cough", p))
        return p

    @property
    def synthesis(self) -> str:
        ssml_used = any(p.clip.text.startswith("<speak>") for p in self.items if p.who == "user")
        return "ssml" if ssml_used else "parts"

    def render(self) -> np.ndarray:
        out = super().render()
        if self.noise is not None:
            kind, snr, seed = self.noise
            user = out[:, 0]
            mask = np.zeros(len(user), dtype=bool)
            for a, b in self.spans("user"):
                mask[a:b] = True
            speech_power = float(np.mean(user[mask] ** 2))
            noise = pink_noise(len(user), seed) if kind == "pink" else babble(len(user), seed)
            noise *= np.sqrt(speech_power / 10 ** (snr / 10) / np.mean(noise**2))
            out[:, 0] = user + noise
        return out

    def truth(self) -> dict[str, object]:
        d = super().truth()
        for key in ("turns", "agent_turns", "backchannels", "interruptions"):
            for x in d[key]:  # type: ignore[attr-defined]
                x["text"] = plain(x["text"])
        if self.noise is not None:
            kind, snr, seed = self.noise
            d["noise"] = {"channel": "user", "snr_db": snr, "seed": seed, "kind": kind}
        d.update({
            "language": self.language,
            "kind": self.kind,
            "voice": self.voice[0],
            "rate": self.voice[1],
            "agent_voice": AGENT[self.language][0],
            "agent_rate": AGENT[self.language][1],
            "synthesis": self.synthesis,
            "events": [{"channel": "user", "kind": k, "start": round(p.start / SR, 3),
                        "end": round(p.end / SR, 3)} for k, p in self.events],
        })
        return d


def write(scene: Dialogue, folder: Path) -> None:
    """The WAV and its two sidecars (the words sidecar names the language)."""
    data = scene.render()
    peak = float(np.max(np.abs(data)))
    assert peak < 0.95, f"{scene.name}: peak {peak:.3f} would clip"
    pcm = np.round(data * 32767).astype("<i2")
    with wave.open(str(folder / f"{scene.name}.wav"), "wb") as w:
        w.setnchannels(pcm.shape[1])
        w.setsampwidth(2)
        w.setframerate(SR)
        w.writeframes(pcm.tobytes())
    (folder / f"{scene.name}.truth.json").write_text(ma._dumps(scene.truth()))
    rows = [json.dumps(w, ensure_ascii=False) for w in scene.words()["words"]]
    words = (f'{{"language": {json.dumps(scene.language)}, "words": [\n'
             + ",\n".join(rows) + "\n]}\n")
    (folder / f"{scene.name}.words.json").write_text(words)


# --------------------------------------------------------------------------- the dialogues


def D(name: str, kind: list[str], description: str, voice: tuple[str, int] = V1,
      language: str = "en", noise: tuple[str, float, int] | None = None) -> Dialogue:
    if noise is not None:
        description += (f" {noise[0].capitalize()} background noise on the user channel "
                        f"(seeded, SNR {noise[1]:g} dB).")
    return Dialogue(name, True, description, language=language, voice=voice, kind=kind,
                    noise=noise)


def pause_turn(name: str, kind: list[str], prompt: str, parts: list[str | float],
               voice: tuple[str, int] = V1, language: str = "en",
               noise: tuple[str, float, int] | None = None, what: str = "") -> Dialogue:
    """The agent asks; the user answers in one turn of parts with the given pauses (s)."""
    texts = [p for p in parts if isinstance(p, str)]
    gaps = [p for p in parts if not isinstance(p, str)]
    shown = " ... ".join(f"'{t}'" for t in texts)
    desc = (f"{what}The agent asks; the user answers in one turn in parts ({shown}) with "
            f"pauses of {', '.join(f'{g:g}' for g in gaps)} s, none of them a turn end.")
    s = D(name, kind, desc, voice, language, noise)
    s.agent(prompt)
    s.user(texts[0], gap=0.5)
    for g, t in zip(gaps, texts[1:], strict=True):
        s.user(t, gap=g, same_turn=True)
    return s


def ssml_turn(name: str, kind: list[str], prompt: str, parts: list[str | int],
              voice: tuple[str, int] = V1, language: str = "en") -> Dialogue:
    """The agent asks; the user answers in ONE synthesized utterance with SSML breaks."""
    texts = [p for p in parts if isinstance(p, str)]
    breaks = [p for p in parts if not isinstance(p, str)]
    desc = ("The agent asks; the user answers in one turn, synthesized as one SSML "
            f"utterance ({' ... '.join(repr(t) for t in texts)}) with "
            f"{', '.join(f'{b} ms' for b in breaks)} <break> inside it, so the words before "
            "the pause keep their continuation prosody; the pause is not a turn end.")
    s = D(name, kind, desc, voice, language)
    s.agent(prompt)
    s.user(ssml(*parts), gap=0.5)
    return s


Recipe = tuple[str, Callable[[], Dialogue]]


def recipe(make: Callable[..., Dialogue], name: str, *args: Any, **kwargs: Any) -> Recipe:
    """A dialogue's name and how to make it (nothing is synthesized until it is made)."""
    return name, lambda: make(name, *args, **kwargs)


def afterthought(name: str, voice: tuple[str, int], prompt: str, first: str,
                 second: str) -> Dialogue:
    """A turn that ends, then 0.8 s later an afterthought: two turns."""
    s = D(name, ["afterthought"], f"An afterthought: the user ends a turn ('{first}'), "
          f"pauses 0.8 s, then adds '{second}'. Two turns: a commit in the pause is right.",
          voice)
    s.agent(prompt)
    s.user(first, gap=0.5)
    s.user(second, gap=0.8)
    return s


def barge_in(name: str, voice: tuple[str, int], line: str, text: str, at: float,
             noise: tuple[str, float, int] | None = None, language: str = "en") -> Dialogue:
    """The user barges in with ``text`` ``at`` s into the agent's ``line`` (from its end
    when negative); the agent stops 0.3 s after the user starts."""
    where = "end" if at < 0 else "start" if at < 1 else "middle"
    s = D(name, ["barge_in"], f"Barge-in at the {where} of the agent's speech: the user "
          f"says '{text}'; the agent stops 0.3 s after the user starts. The interruption is "
          "also the user's turn.", voice, language, noise)
    a = s.agent(line)
    s.barge_in(text, a, at=at if at >= 0 else len(a.clip.audio) / SR + at)
    return s


def english() -> list[Recipe]:
    out = [
        recipe(pause_turn, "en01_list_eggs", ["list"], "What would you like from the shop?",
               ["I need eggs milk", 0.9, "and some bread"], V1),
        recipe(pause_turn, "en02_list_fruit", ["list"], "What should I add to your order?",
               ["apples bananas", 0.8, "oranges and grapes"], V2),
        recipe(pause_turn, "en03_spelling_smith", ["spelling"],
               "Could you spell your last name please?",
               ["S M I", 0.8, "T H"], V1),
        recipe(pause_turn, "en04_spelling_code", ["spelling"], "What is your booking reference?",
               ["it is K L", 0.9, "M four two"], V4),
        recipe(pause_turn, "en05_address_baker", ["address"], "What is the delivery address?",
               ["twenty two", 1.0, "Baker Street"], V2),
        recipe(pause_turn, "en06_address_elm", ["address"], "And your street address?",
               ["one four five", 0.9, "Elm Avenue apartment six"], V6),
        recipe(pause_turn, "en07_date_march", ["date"], "When would you like to check in?",
               ["on the fourteenth", 0.9, "of March"], V3),
        recipe(pause_turn, "en08_date_birth", ["date"], "What is your date of birth?",
               ["March third", 1.0, "nineteen eighty five"], V7),
        recipe(pause_turn, "en09_number_words_price", ["number_words"], "How much did you pay?",
               ["it was two hundred", 0.9, "and fifty dollars"], V1),
    ]

    def make() -> Dialogue:
        s = D("en10_digits_pin", ["digits_complete"], "The agent asks for a four digit PIN; the "
              "user says it in one go and the turn ends with the last digit (a complete number: "
              "waiting longer only costs latency).", V2)
        s.agent("Please say your four digit PIN.")
        s.user("four seven one nine", gap=0.5)
        return s
    out.append(("en10_digits_pin", make))
    out.append(recipe(pause_turn, "en11_digits_phone", ["digits", "digits_complete"],
                      "What number can we call you on?",
                      ["five five five", 0.7, "two one three", 0.7, "four eight six two"], V3,
                      what="A phone number whose last group completes it. "))
    out.append(recipe(pause_turn, "en12_digits_card", ["digits", "digits_complete"],
                      "Please read me the card number.",
                      ["four one one one", 0.8, "two two two two", 0.8,
                       "three three three three", 0.8, "four four four four"], V6,
                      what="A sixteen digit card number in four groups. "))
    out += [
        recipe(pause_turn, "en13_preposition_fly", ["preposition"], "Where are you flying to?",
               ["I would like to fly to", 1.2, "Boston on Friday"], V7),
    ]

    out += [recipe(afterthought, *row) for row in [
        ("en14_afterthought_card", V1, "Is there anything else for your order?",
         "no that is everything thanks", "oh can I pay by card"),
        ("en15_afterthought_two", V4, "Is that all for today?", "yes that is all",
         "actually make it two"),
    ]]

    out.append(recipe(pause_turn, "en16_sentence_pause_card", ["sentence_pause"],
                      "How can I help you today?",
                      ["I lost my card yesterday", 0.4, "I need a new one"], V2))
    out.append(recipe(pause_turn, "en17_sentence_pause_order", ["sentence_pause"],
                      "What seems to be the problem?",
                      ["my order never arrived", 0.4, "it was due on Monday", 0.35,
                      "can you check"], V6))
    out += [
        recipe(pause_turn, "en18_filler_um", ["filler"], "What would you like for dinner?",
               ["I would like the um", 1.0, "grilled salmon"], V3),
        recipe(pause_turn, "en19_filler_uh", ["filler"], "Which day suits you best?",
               ["let me think uh", 0.9, "Thursday works"], V7),
        recipe(pause_turn, "en20_filler_alone", ["filler"], "What is your account number?",
               ["uh", 0.8, "four four two one"], V1),
    ]

    def make() -> Dialogue:
        s = D("en21_yes_no", ["yes_no"], "Three quick answers ('yeah', 'nope', 'yes'), each "
              "0.3 s after the agent's question: three one-word turns.", V4)
        s.agent("Shall I book it?")
        s.user("yeah", gap=0.3)
        s.agent("Do you want a receipt?", gap=0.6)
        s.user("nope", gap=0.3)
        s.agent("Is this your first visit?", gap=0.6)
        s.user("yes", gap=0.3)
        return s
    out.append(("en21_yes_no", make))

    def make() -> Dialogue:
        s = D("en22_backchannel_mhm_right", ["backchannel"], "Two backchannels over one agent "
              "sentence ('mhm' 1.0 s in, 'right' 3.5 s in); the agent goes on; then the user's "
              "turn.", V2)
        a = s.agent("Your room is on the third floor and breakfast is served from seven until "
                    "ten in the dining room next to the lobby.")
        s.backchannel("mhm", a, at=1.0)
        s.backchannel("right", a, at=3.5)
        s.user("great thanks", gap=0.5)
        return s
    out.append(("en22_backchannel_mhm_right", make))

    def make() -> Dialogue:
        s = D("en23_backchannel_yeah_okay", ["backchannel"], "Backchannels 'yeah' (1.5 s in) "
              "and 'okay' (0.9 s before the end) over the agent's sentence; then the user's "
              "turn.", V6)
        a = s.agent("The technician will arrive between nine and eleven tomorrow and will call "
                    "you about thirty minutes before.")
        s.backchannel("yeah", a, at=1.5)
        s.backchannel("okay", a, at=len(a.clip.audio) / SR - 0.9)
        s.user("sounds good", gap=0.5)
        return s
    out.append(("en23_backchannel_yeah_okay", make))

    def make() -> Dialogue:
        s = D("en24_cough", ["cough"], "The user coughs (a synthesized noise burst, labelled "
              "in events) 1.2 s into the agent's sentence; the agent goes on; then the user's "
              "turn. The cough is not speech and not a turn.", V1)
        a = s.agent("We have a table at eight or one at half past nine if you prefer it later.")
        s.cough(a, at=1.2, seed=28)
        s.user("eight works for me", gap=0.5)
        return s
    out.append(("en24_cough", make))

    def make() -> Dialogue:
        s = D("en25_cough_backchannel", ["cough", "backchannel"], "A double cough 0.8 s into "
              "the agent's sentence and a backchannel 'mhm' 3.2 s in; the agent goes on; then the "
              "user's turn.", V3)
        a = s.agent("The total for the two nights is three hundred and ten pounds including "
                    "breakfast and the city tax.")
        s.cough(a, at=0.8, seed=29, bursts=2)
        s.backchannel("mhm", a, at=3.2)
        s.user("okay book it", gap=0.5)
        return s
    out.append(("en25_cough_backchannel", make))

    out += [recipe(barge_in, *row) for row in [
        ("en26_barge_in_start", V7, "Your appointment is on Thursday at ten in the morning "
         "with doctor Patel.", "sorry I meant Tuesday", 0.3),
        ("en27_barge_in_middle", V4, "I found four hotels near the station and the cheapest "
         "one costs ninety dollars a night.", "hold on", 2.0),
        ("en28_barge_in_end", V5, "So that is one large pizza and two cans of soda to your "
         "home address.", "no that is wrong", -0.4),
        ("en29_noisy_barge_in", V3, "The next available delivery slot is on Saturday "
         "between two and four in the afternoon.", "can I get Friday", 1.6,
         ("babble", 15.0, 33)),
    ]]

    out += [
        recipe(pause_turn, "en30_noisy_list", ["list"], "What else do you need?",
               ["get some rice pasta", 0.9, "and tomatoes"], V1,
               noise=("babble", 10.0, 34)),
        recipe(pause_turn, "en31_noisy_spelling", ["spelling"], "How do you spell that?",
               ["B R", 0.8, "O W N"], V2, noise=("pink", 20.0, 35)),
        recipe(pause_turn, "en32_noisy_filler", ["filler"], "When did it stop working?",
               ["I think it was uh", 1.0, "last Tuesday"], V6, noise=("pink", 12.0, 36)),
    ]
    def make() -> Dialogue:
        s = D("en33_noisy_backchannel", ["backchannel"], "A backchannel 'right' 1.2 s into the "
              "agent's sentence; then the user's turn.", V7, noise=("babble", 18.0, 37))
        a = s.agent("I can move your booking to next week but the room will be on the ground "
                    "floor.")
        s.backchannel("right", a, at=1.2)
        s.user("that is fine", gap=0.5)
        return s
    out.append(("en33_noisy_backchannel", make))

    out += [
        recipe(ssml_turn, "en41_ssml_preposition", ["preposition"], "How can I help you?",
               ["I want to book a table for", 1200, "four people"], V1),
        recipe(ssml_turn, "en42_ssml_list", ["list"], "What would you like from the shop?",
               ["I need eggs milk", 900, "and some bread"], V2),
        recipe(ssml_turn, "en43_ssml_spelling", ["spelling"],
               "Could you spell your last name please?",
               ["S M I", 800, "T H"], V3),
        recipe(ssml_turn, "en44_ssml_address", ["address"], "What is the delivery address?",
               ["twenty two", 1000, "Baker Street"], V4),
        recipe(ssml_turn, "en45_ssml_number_words", ["number_words"], "How much did you pay?",
               ["it was two hundred", 1000, "and fifty dollars"], V5),
        recipe(ssml_turn, "en46_ssml_filler", ["filler"], "What would you like for dinner?",
               ["I would like the um", 1000, "grilled salmon"], V7),
        recipe(ssml_turn, "en47_ssml_date", ["date"], "When would you like to check in?",
               ["on the fourteenth", 900, "of March"], V6),
    ]
    return out


def other_languages() -> list[Recipe]:
    es, es2, es3 = ("roa/es", 160), ("roa/es-419+f2", 175), ("roa/es+m3", 150)
    fr, fr2, fr3 = ("roa/fr", 165), ("roa/fr+f2", 175), ("roa/fr+m3", 150)
    de, de2, de3 = ("gmw/de", 160), ("gmw/de+f2", 170), ("gmw/de+m3", 145)
    pt, pt2, pt3 = ("roa/pt-BR", 165), ("roa/pt-BR+f2", 175), ("roa/pt", 150)
    it, it2, it3 = ("roa/it", 165), ("roa/it+f2", 175), ("roa/it+m3", 150)
    out = [
        recipe(pause_turn, "es01_preposition", ["preposition"], "¿En qué puedo ayudarle?",
               ["quiero una mesa para", 1.0, "cuatro personas"], es, "es"),
        recipe(pause_turn, "es02_list", ["list"], "¿Qué necesita de la tienda?",
               ["necesito huevos leche", 0.9, "y un poco de pan"], es2, "es"),
        recipe(pause_turn, "es03_filler", ["filler"], "¿Qué desea cenar?",
               ["quiero eh", 1.0, "el pollo con arroz"], es3, "es"),
        recipe(ssml_turn, "es04_ssml_preposition", ["preposition"], "¿A qué hora llegan?",
               ["vamos a llegar a las", 1200, "ocho y media"], es, "es"),
    ]
    def make() -> Dialogue:
        s = D("es05_backchannel_yes_no", ["backchannel", "yes_no"], "A backchannel 'vale' over "
              "the agent's sentence, which ends in a question; the user answers 'sí' 0.3 s "
              "later: one turn.", es2, "es")
        a = s.agent("Tengo una mesa junto a la ventana a las nueve de la noche. ¿Se la reservo?")
        s.backchannel("vale", a, at=1.4)
        s.user("sí", gap=0.3)
        return s
    out.append(("es05_backchannel_yes_no", make))
    out += [
        recipe(pause_turn, "fr01_preposition", ["preposition"], "Que puis-je faire pour vous?",
               ["je voudrais une table pour", 1.0, "deux personnes"], fr, "fr"),
        recipe(pause_turn, "fr02_list", ["list"], "Qu'est-ce qu'il vous faut?",
               ["il me faut des œufs du lait", 0.9, "et du pain"], fr2, "fr"),
        recipe(pause_turn, "fr03_filler", ["filler"], "Qu'est-ce que vous prenez?",
               ["je vais prendre euh", 1.0, "le poulet rôti"], fr3, "fr"),
        recipe(ssml_turn, "fr04_ssml_date", ["date"], "Quand arrivez-vous?",
               ["nous arrivons le quatorze", 1000, "mars au soir"], fr, "fr"),
        recipe(pause_turn, "de01_preposition", ["preposition"], "Was kann ich für Sie tun?",
               ["ich möchte einen Tisch für", 1.0, "vier Personen"], de, "de"),
        recipe(pause_turn, "de02_list", ["list"], "Was brauchen Sie noch?",
               ["ich brauche Eier Milch", 0.9, "und etwas Brot"], de2, "de"),
        recipe(pause_turn, "de03_filler", ["filler"], "Was möchten Sie essen?",
               ["ich nehme äh", 1.0, "das Hähnchen mit Reis"], de3, "de"),
        recipe(ssml_turn, "de04_ssml_digits", ["digits", "digits_complete"], "Wie ist Ihre "
               "Telefonnummer?", ["null eins fünf", 900, "zwei drei vier acht"], de, "de"),
    ]
    def make() -> Dialogue:
        s = D("de05_barge_in", ["barge_in"], "Barge-in in the middle of the agent's speech: the "
              "user says 'nein warten Sie'; the agent stops 0.3 s after the user starts. The "
              "interruption is also the user's turn.", de2, "de")
        a = s.agent("Ich habe Ihren Flug nach Hamburg für Donnerstag um sieben Uhr morgens "
                    "gebucht.")
        s.barge_in("nein warten Sie", a, at=1.8)
        return s
    out.append(("de05_barge_in", make))
    out += [
        recipe(pause_turn, "pt01_preposition", ["preposition"], "Em que posso ajudar?",
               ["eu queria uma mesa para", 1.0, "quatro pessoas"], pt, "pt"),
        recipe(pause_turn, "pt02_list", ["list"], "Do que você precisa?",
               ["preciso de ovos leite", 0.9, "e um pouco de pão"], pt2, "pt"),
        recipe(pause_turn, "pt03_filler", ["filler"], "O que deseja jantar?",
               ["eu queria hum", 1.0, "o frango com arroz"], pt3, "pt"),
        recipe(ssml_turn, "pt04_ssml_preposition", ["preposition"], "Com quem é a reunião?",
               ["a reunião é com", 1100, "o doutor Silva"], pt, "pt"),
        recipe(pause_turn, "it01_preposition", ["preposition"], "Come posso aiutarla?",
               ["vorrei un tavolo per", 1.0, "quattro persone"], it, "it"),
        recipe(pause_turn, "it02_list", ["list"], "Che cosa le serve?",
               ["mi servono uova latte", 0.9, "e del pane"], it2, "it"),
        recipe(pause_turn, "it03_filler", ["filler"], "Che cosa prende?",
               ["prendo ehm", 1.0, "il pollo arrosto"], it3, "it"),
        recipe(ssml_turn, "it04_ssml_preposition", ["preposition"], "Dove vuole andare?",
               ["vorrei andare a", 1200, "Milano domani"], it, "it"),
    ]
    return out


def recipes() -> list[Recipe]:
    """Every dialogue of the corpus, in order, unmade."""
    return english() + other_languages()


def corpus_scenes(names: set[str] | None = None) -> Iterator[Dialogue]:
    """The dialogues (those named, or all), made one at a time."""
    known = [name for name, _ in recipes()]
    unknown = sorted((names or set()) - set(known))
    if unknown:
        raise SystemExit(f"no such dialogue: {', '.join(unknown)}")
    for name, make in recipes():
        if names is None or name in names:
            yield make()


def main() -> None:
    """Rebuild the corpus (or, given names, only those dialogues)."""
    if shutil.which("sox") is None:
        raise SystemExit("sox is needed (apt-get install sox)")
    only = set(sys.argv[1:]) or None
    OUT.mkdir(parents=True, exist_ok=True)
    if only is None:
        for old in [*OUT.glob("*.wav"), *OUT.glob("*.json")]:
            old.unlink()
    for scene in corpus_scenes(only):
        write(scene, OUT)
        print(f"{OUT.relative_to(ma.ROOT)}/{scene.name}.wav")


if __name__ == "__main__":
    main()
