"""The VAD's per-window decisions, made in one loop over each block's windows, give exactly
the lines of the plain per-window rule; the shortcuts (integer times, repeated windows'
floats reused, no window lines for a channel whose segments alone count) change nothing."""

from __future__ import annotations

import math
import random
from array import array
from collections.abc import Sequence
from typing import Any

import numpy as np
import pytest

from turnfsm.audio.vad import (
    _EXACT_RUNS,
    _EXACT_TIMES,
    STEP,
    WINDOW,
    VadOptions,
    VadStream,
    close_segments,
    segments,
    wav_floats,
)
from turnfsm.audio.wav import RATE, to_int16


def reference_lines(probabilities: Sequence[float], o: VadOptions) -> list[dict[str, Any]]:
    """The rule as it reads in the module's docstring, one window at a time (the code
    before the decisions were made in one loop per block)."""
    step = WINDOW / RATE
    out: list[dict[str, Any]] = []
    smoothed, speaking = 0.0, False
    run_speech = run_silence = raw_speech = raw_silence = pub_speech = 0.0
    history: list[float] = []
    last_loud = -1
    k = 0
    for k, p in enumerate(probabilities):
        history.append(p)
        if len(history) > 32:
            del history[0]
        if p >= o.offset_threshold:
            last_loud = k
        smoothed = o.smoothing * p + (1 - o.smoothing) * smoothed
        t = round((k + 1) * step + o.inference_duration, 6)
        if p >= (o.deactivation_threshold if speaking else o.activation_threshold):
            raw_speech += step
            raw_silence = 0.0
        else:
            raw_silence += step
            raw_speech = 0.0
        if smoothed >= o.activation_threshold or (speaking and
                                                  smoothed >= o.deactivation_threshold):
            run_speech += step
            run_silence = 0.0
            if speaking:
                pub_speech += step
            elif run_speech >= o.min_speech_duration:
                speaking = True
                j = len(history) - 1
                while j > 0 and history[j - 1] >= o.onset_threshold:
                    j -= 1
                heard = max(run_speech, raw_speech, (len(history) - j + 0.5) * step)
                pub_speech = heard
                out.append({"t": t, "kind": "vad.start_of_speech",
                            "speech_duration": round(heard, 6),
                            "inference_duration": o.inference_duration})
        else:
            run_silence += step
            run_speech = 0.0
            if speaking and run_silence >= o.min_silence_duration:
                speaking = False
                silent = max(run_silence, (k - last_loud) * step)
                out.append({"t": t, "kind": "vad.end_of_speech",
                            "silence_duration": round(silent, 6),
                            "speech_duration": round(pub_speech, 6),
                            "inference_duration": o.inference_duration})
                pub_speech = 0.0
        out.append({"t": t, "kind": "vad.inference_done",
                    "raw_accumulated_speech": round(raw_speech, 6),
                    "raw_accumulated_silence": round(raw_silence, 6),
                    "probability": round(p, 4), "speaking": speaking,
                    "inference_duration": o.inference_duration})
    if speaking:
        n = len(probabilities)
        out.append({"t": round(n * WINDOW / RATE + o.inference_duration, 6),
                    "kind": "vad.end_of_speech",
                    "silence_duration": round(max(0.0, (n - 1 - last_loud) * step), 6),
                    "speech_duration": round(pub_speech, 6),
                    "inference_duration": o.inference_duration})
    return out


class Scripted:
    """A VAD model that says the given probabilities, window after window (int16 path)."""

    def __init__(self, probabilities: Sequence[float]) -> None:
        self.script = list(probabilities)
        self.pos = 0

    def probability(self, window: np.ndarray) -> float:
        p = self.script[self.pos]
        self.pos += 1
        return p

    def reset(self) -> None:
        self.pos = 0


class ScriptedFloats(Scripted):
    """The same on the float entry point, remembering the floats each window was given."""

    def __init__(self, probabilities: Sequence[float]) -> None:
        super().__init__(probabilities)
        self.windows: list[list[float]] = []

    def probability_floats(self, samples: Sequence[float]) -> float:
        assert len(samples) == WINDOW
        self.windows.append(list(samples))
        return self.probability(np.zeros(0))


def _probabilities(r: random.Random, n: int) -> list[float]:
    """Runs of speech-like and silence-like probabilities (some longer than the 32 windows
    the onset looks back over, some exactly on the thresholds, some float32 values)."""
    out: list[float] = []
    while len(out) < n:
        kind = r.random()
        length = r.choice([1, 2, 3, 5, 17, 33, 40, 90])
        if kind < 0.4:
            out += [0.5 + r.random() * 0.5 for _ in range(length)]
        elif kind < 0.8:
            out += [r.random() * 0.12 for _ in range(length)]
        elif kind < 0.85:  # between the onset and the activation thresholds
            out += [0.1 + r.random() * 0.35 for _ in range(length)]
        elif kind < 0.9:
            out += [r.choice([0.1, 0.35, 0.5, 0.2, 0.3, 1.0, 0.0]) for _ in range(length)]
        else:
            out += [float(np.float32(r.random())) for _ in range(length)]
    return out[:n]


OPTIONS = [
    VadOptions(),
    VadOptions(inference_duration=0.1, smoothing=1.0, min_speech_duration=0.0),
    VadOptions(inference_duration=0.0123457),
    VadOptions(activation_threshold=0.3, deactivation_threshold=0.1, min_silence_duration=0.2,
               onset_threshold=0.05, offset_threshold=0.2, prefix_padding=0.2,
               min_speech_duration=0.13),
    VadOptions(activation_threshold=1, deactivation_threshold=0, smoothing=1,
               inference_duration=0, min_silence_duration=0, min_speech_duration=0),
    VadOptions(min_speech_duration=2.0, min_silence_duration=3.0, smoothing=0.05),
]


@pytest.mark.parametrize("o", OPTIONS)
def test_the_decision_loop_gives_the_per_window_rules_lines(o: VadOptions) -> None:
    """On random probabilities and block sizes, every line (every float to the bit) is the
    per-window rule's, through push (int16 model) and push_pcm16 (float model), with and
    without each window's line."""
    r = random.Random(repr(o))
    for _ in range(4):
        probs = _probabilities(r, r.randint(1, 900))
        expected = reference_lines(probs, o)
        pcm = np.zeros(len(probs) * WINDOW + r.randint(0, WINDOW - 1), dtype=np.int16)
        s = VadStream(Scripted(probs), o)
        got: list[dict[str, Any]] = []
        a = 0
        while a < pcm.size:
            b = a + r.choice([1, 100, WINDOW, 3 * WINDOW + 7, 16000])
            got += s.push(pcm[a:b])
            a = b
        got += s.close()
        assert [repr(x) for x in got] == [repr(x) for x in expected]
        floats = VadStream(ScriptedFloats(probs), o)
        got16 = floats.push_pcm16(array("h", pcm.tobytes())) + floats.close()
        assert [repr(x) for x in got16] == [repr(x) for x in expected]
        bare = VadStream(Scripted(probs), o, window_lines=False)
        lines = bare.push(pcm) + bare.close()
        assert lines == [x for x in expected if x["kind"] != "vad.inference_done"]
        assert segments(lines) == segments(expected)
        left: list[Any] = []
        close_segments(lines, left, None)
        assert left == segments(expected)


def test_times_and_runs_by_integers_are_what_round_gives() -> None:
    """A window's time and a run's accumulated seconds, rounded to the microsecond, are the
    integer quotients the loop uses (every k and n to 150,000, and a sample beyond up to the
    limits the loop trusts them to)."""
    acc = 0.0
    for n in range(1, 150_000):
        acc += STEP
        assert round(acc, 6) == n * 32 / 1000
        assert round(n * STEP + 0.0, 6) == n * 32 / 1000
    r = random.Random(7)
    for k in r.sample(range(150_000, _EXACT_TIMES), 20_000):
        assert round(k * STEP + 0.0, 6) == k * 32 / 1000
    assert _EXACT_RUNS < 953_063  # the first run whose sum of steps rounds otherwise


def test_a_repeated_window_gives_the_model_the_same_floats() -> None:
    """Windows equal to the one before (digital silence, a looped tone) are given the same
    floats as a fresh conversion, on both paths, across block boundaries."""
    tone = (np.sin(np.arange(WINDOW) * 2 * math.pi / 64) * 12000).astype(np.int16)
    x = np.concatenate([np.zeros(3 * WINDOW, np.int16), np.tile(tone, 5),
                        (np.arange(2 * WINDOW) % 700 - 350).astype(np.int16),
                        np.tile(tone, 2), np.zeros(2 * WINDOW, np.int16)])
    x[-1] = 3  # the last window differs from the one before by one sample
    n = x.size // WINDOW
    probs = [0.9 if k % 5 < 3 else 0.05 for k in range(n)]
    table = wav_floats()
    file_samples = x  # as a 16-bit file holds them
    floats_path = to_int16(file_samples.astype(np.float32) / 32768.0)
    expected = [[table[int(v)] for v in file_samples[k * WINDOW:(k + 1) * WINDOW]]
                for k in range(n)]
    assert expected == [(floats_path[k * WINDOW:(k + 1) * WINDOW] / 32767.0).tolist()
                        for k in range(n)]
    pcm16 = ScriptedFloats(probs)
    s16 = VadStream(pcm16)
    lines16: list[dict[str, Any]] = []
    raw = array("h", file_samples.tobytes())
    for a in range(0, len(raw), 700):
        lines16 += s16.push_pcm16(raw[a:a + 700])
    numpy_path = ScriptedFloats(probs)
    s = VadStream(numpy_path)
    lines: list[dict[str, Any]] = []
    for a in range(0, floats_path.size, 1100):
        lines += s.push(floats_path[a:a + 1100])
    as_float32 = [[float(np.float32(v)) for v in w] for w in expected]
    assert pcm16.windows == expected
    assert numpy_path.windows == as_float32
    assert lines16 == lines == reference_lines(probs, VadOptions())[:len(lines)]
