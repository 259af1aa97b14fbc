"""Smart Turn v3.2 as an end-of-turn model that hears the user, fused with the text rules.

Smart Turn (Daily, BSD-2-Clause, https://github.com/pipecat-ai/smart-turn) is a Whisper-tiny
encoder with a classifier head that reads up to the last 8 seconds of the user's speech and
says how likely the turn is complete (its prosody: a final fall, or a level continuation).
Its CPU build, ``smart-turn-v3.2-cpu.onnx`` (8.7 MB), ships inside the ``pipecat-ai`` wheel:
turnfsm runs that file with onnxruntime (extra ``smart-turn``; nothing downloads at run time)
and computes the model's input itself with numpy, as pipecat does.

The features are Whisper's log-mel spectrogram as ``transformers.WhisperFeatureExtractor``
computes it (chunk length 8 s), in the numpy-only form of pipecat's
``pipecat/audio/turn/smart_turn/_whisper_features.py`` (BSD-2-Clause, Copyright 2024-2026
Daily; portions derived from Hugging Face Transformers, Apache-2.0, Copyright 2022-2023 The
HuggingFace Inc. team). The audio is fed as pipecat's ``LocalSmartTurnAnalyzerV3`` feeds it:
the user's turn from 0.5 s before its first speech, the last 8 s of it, zeros in front when
shorter, 16 kHz mono float.

**Fusion with the text rules** (:class:`FusedModel`): the text rules
(:mod:`turnfsm.core.eou`) read the words, Smart Turn the sound. The turn is unlikely over
when either says so: the words end unfinished (a trailing preposition, conjunction, filler,
article, comma: the rules' probability below their threshold), or Smart Turn's probability
is below 0.5 (its own decision threshold). The fused probability is the smaller of the two,
each first put on one scale: the rules' answer is mapped so that their threshold falls on
0.5. One "unfinished" wins because a cut-in costs more than a wait: the engine then waits
``max_delay`` (after which the turn ends anyway), where a cut-in answers half a sentence.
"""

from __future__ import annotations

import importlib.util
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..core import eou
from ..errors import TurnFsmError

if TYPE_CHECKING:
    import numpy as np

    from ..runtime.protocols import TurnContext

MODEL_NAME = "smart-turn-v3.2-cpu.onnx"
SAMPLE_RATE = 16000
WINDOW_SECONDS = 8  # the model reads the last 8 s
PRE_SPEECH = 0.5  # s of audio before the turn's first speech (pipecat's pre_speech_ms)
THRESHOLD = 0.5  # below this Smart Turn says the turn is incomplete (pipecat's rule)

_N_FFT, _HOP, _N_MELS = 400, 160, 80


class SmartTurnError(TurnFsmError):
    """Smart Turn cannot run (its model file or onnxruntime is missing, or a bad input)."""


def bundled_model_path() -> Path:
    """The model file inside the installed ``pipecat-ai`` wheel (pipecat is not imported)."""
    spec = importlib.util.find_spec("pipecat")
    if spec is None or not spec.submodule_search_locations:
        raise SmartTurnError(f"smart-turn: {MODEL_NAME} ships with pipecat-ai, which is not "
                             f"installed (pip install 'turnfsm[smart-turn]'), or pass the "
                             f"model file's path")
    for root in spec.submodule_search_locations:
        p = Path(root) / "audio" / "turn" / "smart_turn" / "data" / MODEL_NAME
        if p.is_file():
            return p
    raise SmartTurnError(f"smart-turn: the installed pipecat-ai has no {MODEL_NAME} (it "
                         f"ships from pipecat-ai 1.x); pass the model file's path")


# -- features: Whisper's log-mel spectrogram, numpy only ------------------------------------


def _hz_to_mel(f: np.ndarray) -> np.ndarray:
    """Slaney's mel scale (linear below 1 kHz, logarithmic above)."""
    import numpy as np
    f = np.atleast_1d(np.asarray(f, dtype=np.float64))
    m = 3.0 * f / 200.0
    hi = f >= 1000.0
    m[hi] = 15.0 + np.log(f[hi] / 1000.0) * (27.0 / np.log(6.4))
    return m


def _mel_to_hz(m: np.ndarray) -> np.ndarray:
    import numpy as np
    m = np.atleast_1d(np.asarray(m, dtype=np.float64))
    f = 200.0 * m / 3.0
    hi = m >= 15.0
    f[hi] = 1000.0 * np.exp((np.log(6.4) / 27.0) * (m[hi] - 15.0))
    return f


def _mel_filters() -> np.ndarray:
    """Slaney-normalised triangular filters, shape (201 frequency bins, 80 mels)."""
    import numpy as np
    n_bins = _N_FFT // 2 + 1
    mels = np.linspace(_hz_to_mel(np.array([0.0]))[0],
                       _hz_to_mel(np.array([SAMPLE_RATE / 2.0]))[0], _N_MELS + 2)
    edges = _mel_to_hz(mels)
    fft_freqs = np.linspace(0, SAMPLE_RATE // 2, n_bins)
    diff = np.diff(edges)
    slopes = edges[None, :] - fft_freqs[:, None]
    down = -slopes[:, :-2] / diff[:-1]
    up = slopes[:, 2:] / diff[1:]
    filters = np.maximum(0.0, np.minimum(down, up))
    out: np.ndarray = filters * (2.0 / (edges[2:_N_MELS + 2] - edges[:_N_MELS]))[None, :]
    return out


_FILTERS: Any = None
_WINDOW: Any = None


def log_mel(audio: np.ndarray) -> np.ndarray:
    """Whisper's log-mel features of 8 s of 16 kHz audio (padded with zeros at the end or
    cut to the first 8 s), waveform normalised first: float32, shape (80, 800)."""
    import numpy as np
    from numpy.lib.stride_tricks import sliding_window_view
    global _FILTERS, _WINDOW
    if _FILTERS is None:
        _FILTERS = _mel_filters()
        _WINDOW = np.hanning(_N_FFT + 1)[:-1]  # periodic Hann (torch.hann_window)
    x = np.asarray(audio, dtype=np.float32).reshape(-1)
    n = SAMPLE_RATE * WINDOW_SECONDS
    x = np.pad(x, (0, n - x.size)) if x.size < n else x[:n]
    x = (x - x.mean()) / np.sqrt(x.var() + 1e-7)
    padded = np.pad(x.astype(np.float64), (_N_FFT // 2, _N_FFT // 2), mode="reflect")
    frames = sliding_window_view(padded, _N_FFT)[::_HOP]
    power = (np.abs(np.fft.rfft(frames * _WINDOW, axis=-1)) ** 2).T
    spec = np.log10(np.maximum(1e-10, _FILTERS.T @ power))[:, :-1]
    spec = np.maximum(spec, spec.max() - 8.0)
    return np.asarray((spec + 4.0) / 4.0, dtype=np.float32)


def last_window(audio: np.ndarray) -> np.ndarray:
    """The last 8 s of ``audio`` (16 kHz), zeros in front when it is shorter."""
    import numpy as np
    n = SAMPLE_RATE * WINDOW_SECONDS
    x = np.asarray(audio, dtype=np.float32).reshape(-1)
    return x[-n:] if x.size >= n else np.pad(x, (n - x.size, 0))


class SmartTurn:
    """The ONNX model: ``probability(audio)`` that the turn in ``audio`` is complete."""

    def __init__(self, model_path: str | Path | None = None, *, threads: int = 1) -> None:
        try:
            import onnxruntime as ort
        except ImportError:
            raise SmartTurnError("smart-turn needs onnxruntime (pip install "
                                 "'turnfsm[smart-turn]')") from None
        path = Path(model_path) if model_path is not None else bundled_model_path()
        if not path.is_file():
            raise SmartTurnError(f"smart-turn: {path}: no such model file")
        so = ort.SessionOptions()
        so.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
        so.inter_op_num_threads = 1
        so.intra_op_num_threads = threads
        so.log_severity_level = 3
        try:
            self._session = ort.InferenceSession(str(path), sess_options=so,
                                                 providers=["CPUExecutionProvider"])
        except Exception as e:  # onnxruntime raises its own classes for a bad file
            raise SmartTurnError(f"smart-turn: {path}: not a model onnxruntime can load "
                                 f"({type(e).__name__})") from None
        self.path = path

    def probability(self, audio: np.ndarray) -> float:
        """How likely the turn heard in ``audio`` (16 kHz mono float in [-1, 1], the turn
        up to now) is complete, in [0, 1]."""
        import numpy as np
        x = np.asarray(audio, dtype=np.float32).reshape(-1)
        if x.size == 0 or not np.isfinite(x).all():
            raise SmartTurnError("smart-turn: the audio is empty or not finite")
        feats = log_mel(last_window(x))[None, :, :]
        out = self._session.run(None, {"input_features": feats})
        return float(np.asarray(out[0]).reshape(-1)[0])


def rules_on_model_scale(p: float, threshold: float = eou.BUILTIN_THRESHOLD) -> float:
    """The text rules' probability mapped piecewise-linearly so that their threshold falls
    on :data:`THRESHOLD` (0 stays 0, 1 stays 1): one scale for both."""
    if p < threshold:
        return p / threshold * THRESHOLD
    return THRESHOLD + (p - threshold) / (1.0 - threshold) * (1.0 - THRESHOLD)


def fuse(text: float, audio: float) -> float:
    """The fused probability (see the module): the smaller of the rules' (on Smart Turn's
    scale) and Smart Turn's; below :data:`THRESHOLD` the turn is unlikely over."""
    return min(rules_on_model_scale(text), audio)


class FusedModel:
    """An :class:`~turnfsm.runtime.protocols.EouModel`: the text rules and Smart Turn, fused
    (see the module). ``audio(context)`` gives the user's turn so far (16 kHz mono float,
    from :data:`PRE_SPEECH` before its first speech), or None when there is none: then the
    text rules answer alone."""

    def __init__(self, audio: Callable[[TurnContext], np.ndarray | None], *,
                 smart_turn: SmartTurn | None = None) -> None:
        from ..runtime.model import RuleBasedModel
        self.audio = audio
        self.smart_turn = smart_turn or SmartTurn()
        self.rules = RuleBasedModel()
        self.last: tuple[float, float | None] | None = None  # (text, audio) of the last call

    async def supports_language(self, language: str | None) -> bool:
        """Smart Turn hears any language (its training set has 23); the text rules read the
        languages with a word list and take the others as their default."""
        return True

    async def unlikely_threshold(self, language: str | None) -> float | None:
        """Below :data:`THRESHOLD` the fused probability says the turn is unlikely over."""
        return THRESHOLD

    async def predict_end_of_turn(self, context: TurnContext, *,
                                  timeout: float | None = None) -> float:
        """The fused probability for the turn so far."""
        return self.probability(context)

    def probability(self, context: TurnContext) -> float:
        """Synchronous :meth:`predict_end_of_turn` (for replays and tools)."""
        text = self.rules.answer(context)
        samples = self.audio(context)
        if samples is None or len(samples) == 0:
            self.last = (text, None)
            return rules_on_model_scale(text)
        heard = self.smart_turn.probability(samples)
        self.last = (text, heard)
        return fuse(text, heard)


# -- a recorded session's audio, fed to the model as the session runs ------------------------


class TurnAudio:
    """The user's turn so far, cut from a recording as a session runs: an observer of the
    engine's steps notes the turn's first speech onset (the first ``StartOfSpeech`` after an
    end of turn), and :meth:`until` gives the audio from :data:`PRE_SPEECH` before it up to
    a session time (the last 8 s at most)."""

    def __init__(self, samples: np.ndarray) -> None:
        self.samples = samples  # the user's channel, 16 kHz mono float
        self.turn_start: float | None = None

    def __call__(self, step: Any) -> None:
        from .. import outputs as out
        for o in step.outputs:
            if isinstance(o, out.StartOfSpeech) and self.turn_start is None:
                self.turn_start = (o.speech_start_time if o.speech_start_time is not None
                                   else o.t)
            elif isinstance(o, out.EndOfTurn):
                self.turn_start = None

    def until(self, now: float) -> np.ndarray | None:
        """The turn's audio up to ``now`` (None: no speech heard in this turn)."""
        if self.turn_start is None:
            return None
        start = max(0.0, self.turn_start - PRE_SPEECH, now - WINDOW_SECONDS)
        a, b = round(start * SAMPLE_RATE), round(now * SAMPLE_RATE)
        return self.samples[a:min(b, self.samples.shape[-1])]


class LiveTurnAudio(TurnAudio):
    """:class:`TurnAudio` of a live stream: the user's audio is fed as it arrives
    (:meth:`hear`) into a ring of the last :data:`WINDOW_SECONDS` plus one second, all
    :meth:`until` can ask for (the turn's audio is at most its last 8 s): memory stays
    bounded whatever the stream's length."""

    CAPACITY = (WINDOW_SECONDS + 1) * SAMPLE_RATE

    def __init__(self) -> None:
        import numpy as np
        super().__init__(np.zeros(self.CAPACITY, np.float32))  # the ring
        self.end = 0  # samples heard so far (the stream's index of the next one)

    def hear(self, block: np.ndarray) -> None:
        """The next samples of the user's channel (16 kHz mono float)."""
        n, cap = block.size, self.CAPACITY
        if n >= cap:
            block, self.end, n = block[n - cap:], self.end + n - cap, cap
        at = self.end % cap
        first = min(n, cap - at)
        self.samples[at:at + first] = block[:first]
        self.samples[:n - first] = block[first:]
        self.end += n

    def until(self, now: float) -> np.ndarray | None:
        """The turn's audio up to ``now`` (None: no speech heard in this turn)."""
        import numpy as np
        if self.turn_start is None:
            return None
        start = max(0.0, self.turn_start - PRE_SPEECH, now - WINDOW_SECONDS)
        cap = self.CAPACITY
        b = min(round(now * SAMPLE_RATE), self.end)
        a = min(max(round(start * SAMPLE_RATE), self.end - cap, 0), b)
        i, n = a % cap, b - a
        if i + n <= cap:
            return self.samples[i:i + n].copy()
        return np.concatenate([self.samples[i:], self.samples[:i + n - cap]])


def fused_replay(trace: Any, samples: np.ndarray, *, profile: Any = None,
                 smart_turn: SmartTurn | None = None, diagnostics: bool = False,
                 chart: Any = None, observers: tuple[Any, ...] = ()) -> Any:
    """A replay (not run yet) of a trace whose header says ``turn_detection: model``
    through a Session, with :class:`FusedModel` as its end-of-turn model, hearing
    ``samples`` (the user's channel of the recording the trace was made from, 16 kHz).
    Its ``run()`` gives the output lines; ``model_answers`` what the model said, in order.
    The model answers at once in session time (its CPU time is not simulated)."""
    from ..runtime.replay import RuntimeReplay
    heard = TurnAudio(samples)
    replay = RuntimeReplay(trace, diagnostics=diagnostics, profile=profile, chart=chart,
                           observers=(heard, *observers))
    fused = FusedModel(lambda ctx: heard.until(replay.session_now()), smart_turn=smart_turn)
    replay.model_fn = fused.probability
    replay.model.opts["unlikely_threshold"] = THRESHOLD
    return replay


def replay_fused(trace: Any, samples: np.ndarray, **kw: Any) -> list[dict[str, Any]]:
    """:func:`fused_replay`, run: its output lines."""
    lines: list[dict[str, Any]] = fused_replay(trace, samples, **kw).run()
    return lines
