#!/usr/bin/env python3
"""Write the user's audio for the agent scenarios: examples/agent/audio/*.wav (16 kHz mono,
16-bit PCM), one file per scripted user turn.

Usage: ``python examples/agent/make_audio.py`` (from anywhere). Byte-for-byte reproducible:

* most clips are user turns and backchannels **cut from the labelled files** of
  ``examples/dialogues`` and ``examples/audio`` (the user channel, from the label's first
  speech sample to its last: the samples are copied as they are);
* the few kinds those files lack ("mm hmm", "right", a list read with pauses, a question that
  opens a long answer) are synthesized by ``scripts/make_audio.py``'s ``synth`` (espeak-ng in a
  fresh process, sox ``-R -D``, peak -6 dBFS, trimmed at -54 dBFS: the same voice and steps as
  the labelled files; needs espeak-ng and sox), the parts of a clip placed at whole
  milliseconds;
* the cough is two bursts of noise from a seeded generator, band-limited and shaped (no
  synthesizer).

Each clip's parts (the speech runs and the pauses between them) are printed; they are the
ground truth the scenarios' comments quote.
"""

from __future__ import annotations

import importlib.util
import json
import sys
import wave
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[2]
OUT = Path(__file__).resolve().parent / "audio"
SR = 16_000
MS = SR // 1000

# (name, source file under examples/, "turns" or "backchannels", index in that list)
CUTS = [
    ("hesitation_800ms", "dialogues/01_hesitation_800ms", "turns", 0),
    ("hesitation_1000ms", "dialogues/02_hesitation_1000ms", "turns", 0),
    ("hesitation_1500ms", "dialogues/03_hesitation_1500ms", "turns", 0),
    ("digits", "dialogues/04_digits", "turns", 0),
    ("email", "dialogues/05_email", "turns", 0),
    ("uh_huh", "dialogues/06_backchannel_early", "backchannels", 0),
    ("sounds_great", "dialogues/06_backchannel_early", "turns", 0),
    ("okay", "dialogues/07_backchannel_late", "backchannels", 0),
    ("thank_you", "dialogues/07_backchannel_late", "turns", 0),
    ("doctor_tuesday", "dialogues/08_barge_in_start", "turns", 0),
    ("no_i_said_tuesday", "dialogues/08_barge_in_start", "turns", 1),
    ("wait_stop", "dialogues/09_barge_in_middle", "turns", 0),
    ("three_pizzas", "dialogues/10_barge_in_end", "turns", 0),
    ("yes", "dialogues/12_yes_no", "turns", 0),
    ("no", "dialogues/12_yes_no", "turns", 1),
    ("monologue", "dialogues/13_monologue", "turns", 0),
    ("book_table", "audio/two_turns", "turns", 0),
]

# (name, [(gap before the part in seconds, text), ...]): synthesized as the labelled files are
SYNTH = [
    ("mm_hmm", [(0.0, "mm hmm")]),
    ("right", [(0.0, "right")]),
    ("list", [(0.0, "I would like a pizza"), (0.7, "a salad"), (0.7, "and two lemonades")]),
    ("opening_hours", [(0.0, "what are your opening hours on the weekend")]),
]


def _load_make_audio():  # type: ignore[no-untyped-def]
    spec = importlib.util.spec_from_file_location("make_audio", ROOT / "scripts" / "make_audio.py")
    assert spec is not None and spec.loader is not None
    mod = importlib.util.module_from_spec(spec)
    sys.modules["make_audio"] = mod  # its dataclasses look their module up
    spec.loader.exec_module(mod)
    return mod


def _write(name: str, pcm: np.ndarray) -> None:
    with wave.open(str(OUT / f"{name}.wav"), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(SR)
        w.writeframes(pcm.astype("<i2").tobytes())


def cut(name: str, source: str, kind: str, index: int) -> None:
    """The user channel of ``source`` over one labelled turn or backchannel, as it is."""
    stem = ROOT / "examples" / source
    truth = json.loads(stem.with_suffix(".truth.json").read_text())
    item = truth[kind][index]
    with wave.open(str(stem.with_suffix(".wav")), "rb") as w:
        channels = w.getnchannels()
        data = np.frombuffer(w.readframes(w.getnframes()), dtype="<i2")
    user = data.reshape(-1, channels)[:, 0]
    a, b = round(item["start"] * SR), round(item["end"] * SR)
    _write(name, user[a:b])
    pauses = item.get("pauses", [])
    print(f"{name}.wav  {(b - a) / SR:.3f} s  {item['text']!r}  pauses "
          f"{[round(q - p, 3) for p, q in pauses]}  (from {source})")


def synthesize(make_audio, name: str, parts: list[tuple[float, str]]) -> None:  # type: ignore[no-untyped-def]
    """Parts spoken by the user's voice, each ``gap`` seconds after the previous one."""
    clips = [(round(gap * 1000) * MS, make_audio.synth(make_audio.USER_VOICE, text))
             for gap, text in parts]
    total = sum(gap + len(c.audio) for gap, c in clips)
    out = np.zeros(total)
    at = 0
    for gap, c in clips:
        at += gap
        out[at : at + len(c.audio)] += c.audio
        at += len(c.audio)
    _write(name, np.round(out * 32767))
    print(f"{name}.wav  {total / SR:.3f} s  {' | '.join(t for _, t in parts)!r}  pauses "
          f"{[g for g, _ in parts[1:]]}  (espeak-ng)")


def cough(seed: int = 26) -> None:
    """Two short bursts of band-limited noise (a cough), peak -6 dBFS, from a seeded generator."""
    rng = np.random.default_rng(seed)
    parts = []
    for length, gap in ((0.22, 0.12), (0.16, 0.0)):
        n = round(length * 1000) * MS
        white = rng.standard_normal(n)
        spec = np.fft.rfft(white)
        f = np.fft.rfftfreq(n, 1 / SR)
        spec *= np.exp(-(((f - 900.0) / 700.0) ** 2))  # the energy of a cough: 0.3-2 kHz
        burst = np.fft.irfft(spec, n)
        t = np.arange(n) / SR
        burst *= (1 - np.exp(-t / 0.008)) * np.exp(-t / (length / 3))  # sharp onset, decay
        parts += [burst, np.zeros(round(gap * 1000) * MS)]
    out = np.concatenate(parts)
    out *= 0.5 / np.max(np.abs(out))
    _write("cough", np.round(out * 32767))
    print(f"cough.wav  {len(out) / SR:.3f} s  two noise bursts (seed {seed})")


def main() -> None:
    OUT.mkdir(exist_ok=True)
    for old in OUT.glob("*.wav"):
        old.unlink()
    for spec in CUTS:
        cut(*spec)
    make_audio = _load_make_audio()
    for name, parts in SYNTH:
        synthesize(make_audio, name, parts)
    cough()


if __name__ == "__main__":
    if len(sys.argv) > 1:
        raise SystemExit(__doc__)
    main()
