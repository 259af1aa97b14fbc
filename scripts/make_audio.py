#!/usr/bin/env python3
"""Regenerate the labelled example audio under examples/audio/ and examples/dialogues/.

Usage: ``python scripts/make_audio.py`` (from anywhere). Needs espeak-ng (its shared library,
libespeak-ng.so.1, which the Debian package ``espeak-ng`` installs), sox and numpy.

Every file is rebuilt from scratch and the output is byte-reproducible:

* Each utterance ("clip") is synthesized by espeak-ng with a fixed voice and speed: the user is
  ``gmw/en-US`` (American English, default male) at 165 words a minute, the agent ``gmw/en+f3``
  (British English, female variant f3) at 175. Each clip is synthesized in a fresh process,
  because espeak-ng carries state from one synthesis to the next inside a process (the same
  text comes out slightly different the second time); a fresh process gives the same samples
  every time.
* The clip (22050 Hz from espeak-ng) is resampled to 16 kHz by sox with ``-R -D`` (repeatable,
  no dither) into 32-bit float, scaled to a peak of -6 dBFS, and trimmed: leading and trailing
  samples below -54 dBFS are cut, and the end is cut back to a whole millisecond, so a clip's
  speech span is exactly the samples placed. All clip placements are whole milliseconds, so
  every label below is exact at 3 decimals.
* A clip's speech span is split where espeak-ng put digital silence of 100 ms or more inside
  it (the pause it makes at a comma or full stop): ``speech`` lists those runs, and the gaps
  count as pauses inside the turn.
* Timelines are assembled in numpy by adding clips at exact sample offsets; background noise
  (the noisy variants) comes only from a seeded numpy generator, is added to the user channel
  only (the microphone; the agent channel is the agent's own clean output), and is pink-ish
  noise scaled to 15 dB below the mean power of the user's speech samples.
* WAVs are 16 kHz, 16-bit PCM, written by the ``wave`` module (no timestamps or metadata).

Word times (``NAME.words.json``) are real word boundaries from the synthesizer, not an
estimate: espeak-ng reports a word event with the sample at which it starts each word. A
word starts at that sample (moved forward to the first sample above the -54 dBFS threshold)
and ends at the last sample above the threshold before the next word's start (or at the clip's
end); times are rounded to the millisecond. espeak-ng speaks an unstressed function word
("the", "a") together with the word before it and gives the pair one event; such a group's
span is shared out among its words in proportion to their character counts (the one place
where word times are estimated). Words the agent never said because a barge-in cut
it off are left out, and a word the cut falls in ends at the cut.

Labels (``NAME.truth.json``): see examples/audio/README.md. In short, a user turn's
``intended_end`` is the end of the last speech of that turn (the moment after which the user
waits for the agent); its ``pauses`` are the silences between its speech runs, none of which
is a turn end. A backchannel is not a turn. A barge-in is both an interruption and the start
of a user turn.
"""

from __future__ import annotations

import ctypes
import json
import re
import shutil
import subprocess
import sys
import wave
from dataclasses import dataclass, field
from itertools import pairwise
from pathlib import Path

import numpy as np

SR = 16_000
MS = SR // 1000  # samples in a millisecond
ESPEAK_SR = 22_050
PEAK = 0.5  # each clip is scaled to this peak (-6 dBFS)
THRESH = 0.002  # -54 dBFS: below this, a clip's edge is silence
SILENCE_SPLIT = 0.1  # a digital silence this long (s) inside a clip splits its speech span
SILENT = 1e-4  # |x| below this (after resampling) counts as digital silence
LEAD = 0.3  # silence before the first speech (s)
TAIL = 1.0  # silence after the last speech (s)
SNR_DB = 15.0

USER_VOICE = ("gmw/en-US", 165)
AGENT_VOICE = ("gmw/en+f3", 175)

ROOT = Path(__file__).resolve().parent.parent
OUT_AUDIO = ROOT / "examples" / "audio"
OUT_DIALOGUES = ROOT / "examples" / "dialogues"


# --------------------------------------------------------------------------- synthesis


def _synth_in_this_process(voice: str, rate: int, text: str, ssml: bool = False) -> None:
    """Child mode: synthesize ``text`` (SSML markup when ``ssml``) and print JSON {samples,
    words} to stdout."""

    class EventId(ctypes.Union):
        _fields_ = [
            ("number", ctypes.c_int),
            ("name", ctypes.c_char_p),
            ("string", ctypes.c_char * 8),
        ]

    class Event(ctypes.Structure):
        _fields_ = [
            ("type", ctypes.c_int),
            ("unique_identifier", ctypes.c_uint),
            ("text_position", ctypes.c_int),
            ("length", ctypes.c_int),
            ("audio_position", ctypes.c_int),
            ("sample", ctypes.c_int),
            ("user_data", ctypes.c_void_p),
            ("id", EventId),
        ]

    callback_type = ctypes.CFUNCTYPE(
        ctypes.c_int, ctypes.POINTER(ctypes.c_short), ctypes.c_int, ctypes.POINTER(Event)
    )
    lib = ctypes.CDLL("libespeak-ng.so.1")
    audio_output_synchronous, espeak_rate, chars_utf8, event_word = 2, 1, 1, 1
    espeak_ssml = 0x10
    if lib.espeak_Initialize(audio_output_synchronous, 0, None, 0) != ESPEAK_SR:
        raise SystemExit("espeak-ng did not initialise at 22050 Hz")
    samples: list[int] = []
    words: list[tuple[int, int]] = []  # (character offset in text, sample)

    def on_audio(wav, n, events):  # type: ignore[no-untyped-def]
        if wav and n > 0:
            samples.extend(wav[:n])
        i = 0
        while events[i].type != 0:
            if events[i].type == event_word:
                words.append((events[i].text_position - 1, events[i].sample))
            i += 1
        return 0

    keep = callback_type(on_audio)
    lib.espeak_SetSynthCallback(keep)
    if lib.espeak_SetVoiceByName(voice.encode()) != 0:
        raise SystemExit(f"espeak-ng has no voice {voice}")
    lib.espeak_SetParameter(espeak_rate, rate, 0)
    data = text.encode()
    lib.espeak_Synth(data, len(data) + 1, 0, 0, 0, chars_utf8 | (espeak_ssml if ssml else 0),
                     None, None)
    lib.espeak_Synchronize()
    json.dump({"samples": samples, "words": words}, sys.stdout)


@dataclass
class Clip:
    text: str
    audio: np.ndarray  # float64, 16 kHz, trimmed; len is a whole number of ms
    words: list[tuple[str, int, int]]  # (word, start, end) in samples from the clip start
    runs: list[tuple[int, int]]  # speech runs (start, end) in samples from the clip start


_cache: dict[tuple[str, int, str, bool], Clip] = {}


PUNCT = ".,?!;:¿¡"  # stripped from a word's ends


def _tokens(text: str, ssml: bool = False) -> list[tuple[str, int, int]]:
    """Words of ``text`` as (word without punctuation, start, end), in characters (espeak-ng
    reports a word's position in characters, not bytes); with ``ssml``, the markup
    (``<...>``) is not words."""
    if ssml:
        text = re.sub(r"<[^>]*>", lambda m: " " * len(m.group()), text)
    return [(m.group().strip(PUNCT), m.start(), m.end()) for m in re.finditer(r"\S+", text)]


def synth(voice: tuple[str, int], text: str, ssml: bool = False) -> Clip:
    """``text`` said by ``voice`` (espeak-ng voice name, words a minute), synthesized in a
    fresh process; ``ssml``: the text is SSML (``<speak>...<break time="1s"/>...</speak>``)."""
    key = (voice[0], voice[1], text, ssml)
    if key in _cache:
        return _cache[key]
    proc = subprocess.run(
        [sys.executable, __file__, "--synth", voice[0], str(voice[1]), text,
         *(["ssml"] if ssml else [])],
        capture_output=True,
        check=True,
    )
    got = json.loads(proc.stdout)
    raw = np.asarray(got["samples"], dtype="<i2")
    res = subprocess.run(
        ["sox", "-R", "-D", "-t", "raw", "-r", str(ESPEAK_SR), "-e", "signed-integer",
         "-b", "16", "-c", "1", "-L", "-", "-t", "raw", "-r", str(SR), "-e", "floating-point",
         "-b", "32", "-c", "1", "-L", "-", "vol", "0.5", "rate", "-v"],
        input=raw.tobytes(),
        capture_output=True,
        check=True,
    )
    x = np.frombuffer(res.stdout, dtype="<f4").astype(np.float64)
    x = x * (PEAK / np.max(np.abs(x)))
    loud = np.nonzero(np.abs(x) > THRESH)[0]
    first, last = int(loud[0]), int(loud[-1]) + 1
    last = first + (last - first) // MS * MS
    audio = x[first:last].copy()
    n = len(audio)

    # speech runs: split at digital silences of SILENCE_SPLIT or more
    quiet = np.abs(audio) < SILENT
    runs: list[tuple[int, int]] = []
    start = 0
    i = 0
    while i < n:
        if quiet[i]:
            j = i
            while j < n and quiet[j]:
                j += 1
            if j - i >= SILENCE_SPLIT * SR and i > 0 and j < n:
                # widen to whole ms into the silence: the run keeps all of its speech
                end_ms = -(-i // MS) * MS
                nxt_ms = j // MS * MS
                runs.append((start, end_ms))
                start = nxt_ms
            i = j
        else:
            i += 1
    runs.append((start, n))

    # words: espeak-ng's word start samples, mapped to the trimmed 16 kHz clip
    tokens = _tokens(text, ssml)
    starts: dict[int, int] = {}
    for offset, sample in got["words"]:
        for k, (_, b0, b1) in enumerate(tokens):
            if b0 <= offset < b1:
                pos = round(sample * SR / ESPEAK_SR) - first
                starts.setdefault(k, min(max(pos, 0), n))
    if 0 not in starts:
        starts[0] = 0
    # espeak-ng gives an unstressed function word ("the", "a") no event of its own: it speaks
    # it with the word before (one event for "on the"). Such a group's span is shared out
    # among its words in proportion to their character counts.
    bounds = [0] * len(tokens) + [n]
    k = 0
    while k < len(tokens):
        j = k + 1
        while j < len(tokens) and j not in starts:
            j += 1
        g0, g1 = starts[k], starts[j] if j < len(tokens) else n
        chars = [len(tokens[m][0]) for m in range(k, j)]
        acc = 0
        for m in range(k, j):
            bounds[m] = g0 + (g1 - g0) * acc // sum(chars)
            acc += chars[m - k]
        k = j
    words = []
    for k, (word, _, _) in enumerate(tokens):
        seg = np.nonzero(np.abs(audio[bounds[k] : bounds[k + 1]]) > THRESH)[0]
        if len(seg) == 0:
            w0, w1 = bounds[k], bounds[k + 1]
        else:
            w0, w1 = bounds[k] + int(seg[0]), bounds[k] + int(seg[-1]) + 1
        words.append((word, w0, w1))
    clip = Clip(text=text, audio=audio, words=words, runs=runs)
    _cache[key] = clip
    return clip


# --------------------------------------------------------------------------- timelines


def ms(seconds: float) -> int:
    """Seconds to samples, on a whole millisecond."""
    return round(seconds * 1000) * MS


@dataclass
class Placed:
    who: str  # "user" | "agent"
    clip: Clip
    start: int  # samples
    cut: int | None = None  # samples kept from the clip's start (a barge-in cut the agent off)

    @property
    def length(self) -> int:
        return len(self.clip.audio) if self.cut is None else self.cut

    @property
    def end(self) -> int:
        return self.start + self.length

    def runs(self) -> list[tuple[int, int]]:
        out = []
        for a, b in self.clip.runs:
            if a < self.length:
                out.append((self.start + a, self.start + min(b, self.length)))
        return out

    def words(self) -> list[tuple[str, int, int]]:
        out = []
        for w, a, b in self.clip.words:
            if a < self.length:
                out.append((w, self.start + a, self.start + min(b, self.length)))
        return out


@dataclass
class UserTurn:
    parts: list[Placed]


@dataclass
class Scene:
    name: str
    stereo: bool
    description: str
    noise_seed: int | None = None
    items: list[Placed] = field(default_factory=list)
    turns: list[UserTurn] = field(default_factory=list)
    backchannels: list[Placed] = field(default_factory=list)
    interruptions: list[tuple[Placed, Placed]] = field(default_factory=list)  # (user, agent)
    cursor: int = ms(LEAD)

    def _place(self, who: str, text: str, start: int) -> Placed:
        clip = synth(USER_VOICE if who == "user" else AGENT_VOICE, text)
        p = Placed(who, clip, start)
        self.items.append(p)
        self.cursor = max(self.cursor, p.end)
        return p

    def agent(self, text: str, gap: float = 0.5) -> Placed:
        """The agent says ``text`` ``gap`` seconds after the last speech so far."""
        assert self.stereo
        start = self.cursor + ms(gap) if self.items else ms(LEAD)
        return self._place("agent", text, start)

    def user(self, text: str, gap: float = 0.5, same_turn: bool = False) -> Placed:
        """The user says ``text`` ``gap`` s after the last speech; ``same_turn``: a pause."""
        start = self.cursor + ms(gap) if self.items else ms(LEAD)
        p = self._place("user", text, start)
        if same_turn:
            self.turns[-1].parts.append(p)
        else:
            self.turns.append(UserTurn([p]))
        return p

    def backchannel(self, text: str, over: Placed, at: float) -> Placed:
        """The user says ``text`` ``at`` s into the agent's ``over``; the agent goes on."""
        p = self._place("user", text, over.start + ms(at))
        assert p.end < over.end, "a backchannel lies inside the agent's speech"
        self.backchannels.append(p)
        return p

    def barge_in(self, text: str, over: Placed, at: float, stop_after: float = 0.3) -> Placed:
        """The user says ``text`` ``at`` s into ``over``; the agent stops ``stop_after`` later."""
        p = self._place("user", text, over.start + ms(at))
        over.cut = p.start + ms(stop_after) - over.start
        assert 0 < over.cut < len(over.clip.audio), "the cut falls inside the agent's speech"
        self.cursor = max(it.end for it in self.items)
        self.turns.append(UserTurn([p]))
        self.interruptions.append((p, over))
        return p

    # ----------------------------------------------------------------- rendering

    def render(self) -> np.ndarray:
        total = self.cursor + ms(TAIL)
        chans = {"user": np.zeros(total), "agent": np.zeros(total)}
        for p in self.items:
            a = p.clip.audio[: p.length].copy()
            if p.cut is not None:  # the agent stops: a 10 ms fade inside what it still says
                fade = 10 * MS
                a[-fade:] *= np.linspace(1.0, 0.0, fade)
            chans[p.who][p.start : p.end] += a
        if self.noise_seed is not None:
            user = chans["user"]
            mask = np.zeros(total, dtype=bool)
            for a, b in self.spans("user"):
                mask[a:b] = True
            speech_power = float(np.mean(user[mask] ** 2))
            noise = pink_noise(total, self.noise_seed)
            noise *= np.sqrt(speech_power / 10 ** (SNR_DB / 10) / np.mean(noise**2))
            chans["user"] = user + noise
        out = np.stack([chans["user"], chans["agent"]], axis=1)
        return out if self.stereo else out[:, :1]

    def spans(self, who: str) -> list[tuple[int, int]]:
        return sorted(r for p in self.items if p.who == who for r in p.runs())

    def truth(self) -> dict[str, object]:
        def s(x: int) -> float:
            assert x % MS == 0
            return round(x / SR, 3)

        interrupted_at = {id(agent): user.start for user, agent in self.interruptions}
        turns = []
        for t in self.turns:
            runs = sorted(r for p in t.parts for r in p.runs())
            turns.append({
                "start": s(runs[0][0]),
                "end": s(runs[-1][1]),
                "intended_end": s(runs[-1][1]),
                "text": " ".join(p.clip.text for p in t.parts),
                "pauses": [[s(a[1]), s(b[0])] for a, b in pairwise(runs)],
            })
        agent_turns = []
        for p in self.items:
            if p.who == "agent":
                cut = interrupted_at.get(id(p))
                agent_turns.append({
                    "start": s(p.start),
                    "end": s(p.end),
                    "text": p.clip.text,
                    "interrupted_at": None if cut is None else s(cut),
                })
        return {
            "sample_rate": SR,
            "channels": ["user", "agent"] if self.stereo else ["user"],
            "duration": s(self.cursor + ms(TAIL)),
            "speech": {
                "user": [[s(a), s(b)] for a, b in self.spans("user")],
                "agent": [[s(a), s(b)] for a, b in self.spans("agent")],
            },
            "turns": turns,
            "agent_turns": agent_turns,
            "backchannels": [
                {"start": s(p.start), "end": s(p.end), "text": p.clip.text}
                for p in self.backchannels
            ],
            "interruptions": [
                {"start": s(u.start), "end": s(u.end), "text": u.clip.text,
                 "agent_stops_at": s(a.end)}
                for u, a in self.interruptions
            ],
            "noise": None if self.noise_seed is None else {
                "channel": "user", "snr_db": SNR_DB, "seed": self.noise_seed, "kind": "pink"},
            "description": self.description,
        }

    def words(self) -> dict[str, object]:
        rows = sorted(
            (b, w, p.who, e) for p in self.items for (w, b, e) in p.words()
        )
        return {"words": [
            {"channel": who, "word": w, "start": round(b / SR, 3), "end": round(e / SR, 3)}
            for b, w, who, e in rows
        ]}


def pink_noise(n: int, seed: int) -> np.ndarray:
    """Seeded noise with a 1/f power spectrum above 50 Hz (a room/fan-like background)."""
    rng = np.random.default_rng(seed)
    white = rng.standard_normal(n)
    spec = np.fft.rfft(white)
    f = np.fft.rfftfreq(n, 1 / SR)
    spec *= 1 / np.sqrt(np.maximum(f, 50.0))
    return np.fft.irfft(spec, n)


def _dumps(obj: dict[str, object]) -> str:
    """JSON with one top-level key a line and one list item (a span, a turn) a line."""

    def one(v: object) -> str:
        return json.dumps(v, ensure_ascii=False)

    lines = []
    for key, value in obj.items():
        if isinstance(value, dict) and value and all(isinstance(v, list) for v in value.values()):
            inner = ",\n".join(f"  {one(k)}: {one(v)}" for k, v in value.items())
            text = "{\n" + inner + "\n }"
        elif isinstance(value, list) and value and isinstance(value[0], dict):
            text = "[\n" + ",\n".join(f"  {one(v)}" for v in value) + "\n ]"
        else:
            text = one(value)
        lines.append(f" {one(key)}: {text}")
    return "{\n" + ",\n".join(lines) + "\n}\n"


def write(scene: Scene, folder: Path) -> None:
    data = scene.render()
    peak = float(np.max(np.abs(data)))
    assert peak < 0.95, f"{scene.name}: peak {peak:.3f} would clip"
    pcm = np.round(data * 32767).astype("<i2")
    path = folder / f"{scene.name}.wav"
    with wave.open(str(path), "wb") as w:
        w.setnchannels(pcm.shape[1])
        w.setsampwidth(2)
        w.setframerate(SR)
        w.writeframes(pcm.tobytes())
    (folder / f"{scene.name}.truth.json").write_text(_dumps(scene.truth()))
    rows = [json.dumps(w, ensure_ascii=False) for w in scene.words()["words"]]
    words = '{"words": [\n' + ",\n".join(rows) + "\n]}\n"
    (folder / f"{scene.name}.words.json").write_text(words)


# --------------------------------------------------------------------------- the examples


def audio_examples() -> list[Scene]:
    out = []

    s = Scene("hesitation", False, "One user turn with a 1.2 s mid-sentence hesitation: "
              "'I want to book a table for' ... 'four people'. The pause is not a turn end.")
    s.user("I want to book a table for")
    s.user("four people", gap=1.2, same_turn=True)
    out.append(s)

    s = Scene("two_turns", True, "A user turn, the agent's answer, a second user turn.")
    s.user("Hi I would like to book a table for tonight")
    s.agent("Sure, how many people will be joining you?", gap=0.6)
    s.user("just the two of us", gap=0.5)
    out.append(s)

    s = Scene("digits", False, "One user turn: a phone number read in three digit groups "
              "with 0.8 s pauses between them; the pauses are not turn ends.")
    s.user("five five five")
    s.user("one two three", gap=0.8, same_turn=True)
    s.user("four five six seven", gap=0.8, same_turn=True)
    out.append(s)

    s = Scene("backchannel", True, "The agent speaks one long sentence; the user says "
              "'uh huh' in the middle of it (a backchannel, not an interruption); the agent "
              "goes on to the end.")
    a = s.agent("Your table is booked for Friday at seven thirty and we will send a reminder "
                "to your phone one hour before you arrive.")
    s.backchannel("uh huh", a, at=2.6)
    out.append(s)

    s = Scene("barge_in", True, "The agent speaks; 1.6 s in, the user barges in with "
              "'wait, stop, that's wrong' and the agent stops 0.3 s after the user starts. "
              "The interruption is also the user's turn.")
    a = s.agent("Okay I have booked you on the early flight to Denver on Thursday and the "
                "total comes to four hundred dollars.")
    s.barge_in("wait, stop, that's wrong", a, at=1.6)
    out.append(s)

    s = Scene("noisy", False, "hesitation.wav with pink background noise on the user channel "
              "(seeded, SNR 15 dB against the speech); same labels as hesitation.",
              noise_seed=1)
    s.user("I want to book a table for")
    s.user("four people", gap=1.2, same_turn=True)
    out.append(s)
    return out


def _hesitation(name: str, prompt: str, before: str, pause: float, after: str,
                noise_seed: int | None = None) -> Scene:
    desc = (f"The agent asks; the user answers in one turn with a {pause:.1f} s hesitation "
            f"inside it ('{before}' ... '{after}'); the pause is not a turn end.")
    if noise_seed is not None:
        desc += " Pink background noise on the user channel (seeded, SNR 15 dB)."
    s = Scene(name, True, desc, noise_seed=noise_seed)
    s.agent(prompt)
    s.user(before, gap=0.5)
    s.user(after, gap=pause, same_turn=True)
    return s


def _barge_in_middle(name: str, noise_seed: int | None = None) -> Scene:
    desc = ("Barge-in in the middle of the agent's speech: 2.2 s into it the user says "
            "'wait, stop, that's wrong'; the agent stops 0.3 s after the user starts. The "
            "interruption is also the user's turn.")
    if noise_seed is not None:
        desc += " Pink background noise on the user channel (seeded, SNR 15 dB)."
    s = Scene(name, True, desc, noise_seed=noise_seed)
    a = s.agent("I found three flights for you and the first one leaves at six in the morning "
                "and costs two hundred dollars.")
    s.barge_in("wait, stop, that's wrong", a, at=2.2)
    return s


def dialogues() -> list[Scene]:
    out = [
        _hesitation("01_hesitation_800ms", "What day would you like to come in?",
                    "I think we could come on", 0.8, "Friday evening"),
        _hesitation("02_hesitation_1000ms", "How many people will be joining you?",
                    "we will be a group of", 1.0, "seven"),
        _hesitation("03_hesitation_1500ms", "Where would you like to fly to?",
                    "I need a flight to", 1.5, "San Francisco on Monday morning"),
    ]

    s = Scene("04_digits", True, "The agent asks for a phone number; the user reads it in "
              "digit groups with 0.8 s pauses, all one turn.")
    s.agent("What is the best number to reach you?")
    s.user("eight six seven", gap=0.5)
    s.user("five three zero", gap=0.8, same_turn=True)
    s.user("nine one two four", gap=0.8, same_turn=True)
    out.append(s)

    s = Scene("05_email", True, "The agent asks for an email address; the user spells it "
              "out in pieces with 0.8 s pauses ('john dot smith' ... 'at example' ... "
              "'dot com'), all one turn.")
    s.agent("And what is your email address?")
    s.user("john dot smith", gap=0.5)
    s.user("at example", gap=0.8, same_turn=True)
    s.user("dot com", gap=0.8, same_turn=True)
    out.append(s)

    s = Scene("06_backchannel_early", True, "A backchannel early in the agent's speech: the "
              "user says 'uh huh' 0.7 s into it and the agent goes on; after the agent "
              "finishes, the user's one turn.")
    a = s.agent("I have a table for four on Friday at seven thirty right next to the window.")
    s.backchannel("uh huh", a, at=0.7)
    s.user("that sounds great", gap=0.5)
    out.append(s)

    s = Scene("07_backchannel_late", True, "A backchannel late in the agent's speech: the "
              "user says 'okay' 0.9 s before the agent's end and the agent goes on; after the "
              "agent finishes, the user's one turn.")
    a = s.agent("Your flight leaves at nine in the morning and you can check in online "
                "from tonight.")
    s.backchannel("okay", a, at=len(a.clip.audio) / SR - 0.9)
    s.user("thank you", gap=0.5)
    out.append(s)

    s = Scene("08_barge_in_start", True, "The user asks for Tuesday; the agent answers with "
              "Thursday and the user barges in at the start of the agent's speech: 0.4 s "
              "into it the user says 'no I said Tuesday'; the agent stops 0.3 s after the "
              "user starts. The interruption is also the user's second turn.")
    s.user("can I see the doctor on Tuesday")
    a = s.agent("Your appointment is on Thursday at ten in the morning with doctor Lee.",
                gap=0.6)
    s.barge_in("no I said Tuesday", a, at=0.4)
    out.append(s)

    out.append(_barge_in_middle("09_barge_in_middle"))

    s = Scene("10_barge_in_end", True, "Barge-in at the end of the agent's speech: 0.5 s "
              "before the agent would have finished, the user says 'no make it three "
              "pizzas'; the agent stops 0.3 s after the user starts. The interruption is "
              "also the user's turn.")
    a = s.agent("So that is two large pizzas and one salad delivered to your home address.")
    s.barge_in("no make it three pizzas", a, at=len(a.clip.audio) / SR - 0.5)
    out.append(s)

    s = Scene("11_afterthought", True, "An afterthought: the user ends a turn ('no thank "
              "you that's all'), pauses 1.5 s, then adds 'oh and a window seat please'. "
              "Labelled as two turns: the first truly ends at 'that's all' (a commit in the "
              "pause is right); the afterthought is a new turn.")
    s.agent("Is there anything else I can do for you?")
    s.user("no thank you that's all", gap=0.5)
    s.user("oh and a window seat please", gap=1.5)
    out.append(s)

    s = Scene("12_yes_no", True, "Quick yes/no answers: the agent asks, the user answers "
              "'yes' 0.3 s later; the agent asks again, the user answers 'no'. Two one-word "
              "turns.")
    s.agent("Is the booking for tonight?")
    s.user("yes", gap=0.3)
    s.agent("And will you need parking?", gap=0.6)
    s.user("no", gap=0.3)
    out.append(s)

    s = Scene("13_monologue", True, "A long monologue: four sentences with short pauses "
              "(0.4 to 0.5 s) between them, all one turn.")
    s.agent("Tell me what happened.")
    s.user("my internet stopped working this morning", gap=0.5)
    s.user("I restarted the router twice", gap=0.4, same_turn=True)
    s.user("the lights are green but nothing loads", gap=0.5, same_turn=True)
    s.user("can you help me", gap=0.4, same_turn=True)
    out.append(s)

    out.append(_hesitation("14_noisy_hesitation_1000ms", "How many people will be joining you?",
                           "we will be a group of", 1.0, "seven", noise_seed=14))
    out.append(_barge_in_middle("15_noisy_barge_in_middle", noise_seed=15))
    return out


def main() -> None:
    if len(sys.argv) in (5, 6) and sys.argv[1] == "--synth":
        _synth_in_this_process(sys.argv[2], int(sys.argv[3]), sys.argv[4],
                               ssml=sys.argv[5:] == ["ssml"])
        return
    if shutil.which("sox") is None:
        raise SystemExit("sox is needed (apt-get install sox)")
    for folder, scenes in ((OUT_AUDIO, audio_examples()), (OUT_DIALOGUES, dialogues())):
        folder.mkdir(parents=True, exist_ok=True)
        for old in folder.glob("*.wav"):
            old.unlink()
        for old in folder.glob("*.json"):
            old.unlink()
        for scene in scenes:
            write(scene, folder)
            print(f"{folder.relative_to(ROOT)}/{scene.name}.wav")


if __name__ == "__main__":
    main()
