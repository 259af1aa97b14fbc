"""Labelled sessions prepared for a sweep, and one session replayed under many settings.

A session is what ``turnfsm score`` takes: a WAV file with ``NAME.truth.json`` (and
``NAME.words.json``, the timed words) beside it, or a trace ``NAME.jsonl`` with
``NAME.truth.json``. :func:`prepare` reads it once: for a WAV file it runs the VAD model
over each channel and keeps its probabilities (the costly part of building a trace, and
the same for every audio-side setting), so a trace per audio-side setting is then built
from the probabilities alone (:func:`build`), exactly as ``listen`` builds it from the audio
(a test holds the two equal). :func:`run_task` scores sessions under a chunk of settings.
"""

from __future__ import annotations

import os
import threading
from collections import OrderedDict
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import attrs
import numpy as np

from .. import outputs as out
from ..audio.listen import ListenOptions, build_trace
from ..audio.transcripts import Word, read_words
from ..audio.vad import WINDOW, SileroVad, VadModel, VadOptions
from ..audio.wav import Audio, read_wav
from ..errors import TurnFsmError
from ..options import EngineOptions, profile_options
from ..quality.score import Truth, read_truth, score_outputs
from ..replay import Replay, ScriptedModel, Trace, read_trace, replay_trace
from ..runtime.model import RuleBasedModel
from .grid import PROFILES, Setting
from .tally import Tally


def session_paths(args: Sequence[str]) -> list[Path]:
    """The sessions named (a folder: its ``*.wav`` and ``*.jsonl``, as ``score`` reads)."""
    paths: list[Path] = []
    for s in args:
        p = Path(s)
        if p.is_dir():
            found = sorted([*p.glob("*.wav"), *p.glob("*.jsonl")])
            if not found:
                raise TurnFsmError(f"{p}: no *.wav or *.jsonl sessions in this folder")
            paths += found
        elif not p.exists():
            raise TurnFsmError(f"{p}: no such session")
        elif p.suffix not in (".wav", ".jsonl"):
            raise TurnFsmError(f"{p}: a session is a .wav file or a .jsonl trace")
        else:
            paths.append(p)
    for p in paths:
        _sidecars(p)  # the labels are there (checked before anything runs)
    return paths


@attrs.frozen(eq=False)
class Session:
    """A labelled session read once: its labels, and its trace or its VAD probabilities."""

    path: str
    truth: Truth
    trace: Trace | None = None  # a session given as a trace
    probabilities: tuple[tuple[float, ...], ...] = ()  # per channel (WAV sessions)
    words: tuple[Word, ...] | None = None
    agent_words: tuple[Word, ...] | None = None  # what the agent says (its speech's text)
    stamp: tuple[int, int] = (0, 0)  # the file's modification time (ns) and size

    @property
    def is_audio(self) -> bool:
        """A WAV session (audio-side options apply)."""
        return self.trace is None

    @property
    def channels(self) -> int:
        """Channels of the audio (1: the user; 2: user and agent)."""
        return len(self.probabilities)


class _Recording:
    """A VAD model that remembers what it said, per stream (channel)."""

    def __init__(self, model: VadModel) -> None:
        self.model = model
        self.streams: list[list[float]] = []

    def probability(self, window: np.ndarray) -> float:
        p = self.model.probability(window)
        self.streams[-1].append(p)
        return p

    def reset(self) -> None:
        self.model.reset()
        self.streams.append([])


class _Playback:
    """The recorded probabilities again, stream after stream, window after window."""

    def __init__(self, streams: tuple[tuple[float, ...], ...]) -> None:
        self.streams = streams
        self.stream = -1
        self.pos = 0

    def probability(self, window: np.ndarray) -> float:
        p = self.streams[self.stream][self.pos]
        self.pos += 1
        return p

    def reset(self) -> None:
        if self.stream >= 0 and self.pos != len(self.streams[self.stream]):
            raise AssertionError("the VAD was read in another order than it was recorded")
        self.stream += 1
        self.pos = 0


@attrs.frozen(eq=False)
class _Windows(Audio):
    """Audio of the right length and no sound: the VAD's probabilities come recorded."""

    windows: tuple[int, ...] = ()

    def int16(self, channel: int) -> np.ndarray:
        return np.zeros(self.windows[channel] * WINDOW, dtype=np.int16)


def _sidecars(path: Path) -> tuple[Path, Path]:
    stem = path.with_suffix("")
    truth = Path(f"{stem}.truth.json")
    if not truth.exists():
        raise TurnFsmError(f"{path}: no labels ({truth.name} beside it)")
    return truth, Path(f"{stem}.words.json")


def prepare(path: str | Path) -> Session:
    """Read a labelled session (a WAV file: run the VAD model over it once)."""
    p = Path(path)
    truth_path, words_path = _sidecars(p)
    truth = read_truth(truth_path)
    st = p.stat()
    stamp = (st.st_mtime_ns, st.st_size)
    if p.suffix == ".jsonl":
        return Session(str(p), truth, trace=read_trace(p), stamp=stamp)
    audio = read_wav(p)
    words = read_words(words_path) if words_path.exists() else None
    agent_words = read_words(words_path, "agent") if words_path.exists() else None
    rec = _Recording(SileroVad())
    build_trace(audio, _listen_options(audio.channels, words is not None, ()), words=words,
                vad=rec, agent_words=agent_words)
    return Session(str(p), truth, probabilities=tuple(tuple(s) for s in rec.streams),
                   words=None if words is None else tuple(words),
                   agent_words=None if agent_words is None else tuple(agent_words), stamp=stamp)


def _listen_options(channels: int, transcripts: bool, audio_key: tuple[tuple[str, Any], ...]
                    ) -> ListenOptions:
    """What ``score`` runs a WAV session with, changed by the audio-side settings."""
    a = dict(audio_key)
    detection = a.get("interruption_detection", channels > 1)
    vad = VadOptions()
    if "vad_threshold" in a or "min_silence" in a:
        thr = a.get("vad_threshold", vad.activation_threshold)
        vad = VadOptions(activation_threshold=thr,
                         deactivation_threshold=(vad.deactivation_threshold
                                                 if "vad_threshold" not in a
                                                 else max(0.01, thr - 0.15)),
                         min_silence_duration=a.get("min_silence", vad.min_silence_duration))
    extra: dict[str, Any] = {}
    if "interruption_after" in a:
        extra["interruption_after"] = a["interruption_after"]
    return ListenOptions(engine=EngineOptions(stt=transcripts,
                                              interruption_detection=detection),
                         vad=vad, **extra)


def build(session: Session, audio_key: tuple[tuple[str, Any], ...] = ()) -> Trace:
    """The session's trace under these audio-side settings (a trace session: itself)."""
    if session.trace is not None:
        return session.trace
    windows = tuple(len(s) for s in session.probabilities)
    audio = _Windows(session.path, np.zeros((len(windows), 0), dtype=np.float32), 16000,
                     windows=windows)
    words = None if session.words is None else list(session.words)
    playback = _Playback(session.probabilities)
    trace = build_trace(audio, _listen_options(len(windows), words is not None, audio_key),
                        words=words, vad=playback,
                        agent_words=None if session.agent_words is None
                        else list(session.agent_words))
    playback.reset()  # checks every recorded window was read
    return trace


# -- one setting ------------------------------------------------------------------------------


def apply(trace: Trace, setting: Setting) -> Trace:
    """The trace with the setting's engine-side options in its header."""
    if setting.profile not in PROFILES:  # pragma: no cover - the grid checked it
        raise TurnFsmError(f"unknown profile {setting.profile!r}")
    v = setting.as_dict()
    cfg = dict(trace.config)
    cfg["profile"] = setting.profile
    for name in profile_options():  # turnfsm's own header keys
        if name in v:
            cfg[name] = v[name]
    ep = dict(cfg["endpointing"])
    for name, field in (("min_delay", "min_delay"), ("max_delay", "max_delay"),
                        ("endpointing_mode", "mode"), ("alpha", "alpha")):
        if name in v:
            ep[field] = v[name]
    cfg["endpointing"] = ep
    if "turn_detection" in v:
        cfg["turn_detection"] = v["turn_detection"]
    if v.get("eou_model") == "smart-turn":  # Smart Turn and the rules: the host's model
        cfg["turn_detection"] = "model"
    if v.get("turn_detection") == "model":
        cfg["turn_detector"] = {**cfg["turn_detector"], "unlikely_threshold": v.get(
            "unlikely_threshold", _rule_model().threshold), "probabilities": None,
            "fail_calls": [], "latency": 0.0, "languages": None}
    if "backchannel_boundary" in v:
        b = v["backchannel_boundary"]
        cfg["backchannel_boundary"] = None if b is None else list(b)
    return attrs.evolve(trace, config=cfg)


_RULE: list[RuleBasedModel] = []


def _rule_model() -> RuleBasedModel:
    if not _RULE:
        _RULE.append(RuleBasedModel())
    return _RULE[0]


class _LiveModel(ScriptedModel):
    """The header's model, answering with a live model on the transcript it is asked about
    (as ``listen --turn-detection model`` does)."""

    def __init__(self, opts: dict[str, Any], fn: Callable[[Any], float]) -> None:
        super().__init__(opts)
        self.fn = fn
        self.asked: Any = None  # the model request being answered

    def predict(self) -> tuple[int, float, bool]:
        n, _scripted, _fail = super().predict()
        return n, float(self.fn(self.asked)), False


class LiveModelReplay(Replay):
    """A direct replay whose end-of-turn model is a live model (the rule-based one)."""

    def __init__(self, trace: Trace, fn: Callable[[Any], float]) -> None:
        super().__init__(trace)
        self.live = _LiveModel(self.cfg["turn_detector"], fn)
        self.model = self.live

    def answer_model(self, req: out.EouModelRequest) -> None:
        self.live.asked = req
        super().answer_model(req)


_SMART_TURN: list[Any] = []


def _smart_turn() -> Any:
    """Smart Turn v3.2, loaded once per process."""
    if not _SMART_TURN:
        from ..audio.smart_turn import SmartTurn
        _SMART_TURN.append(SmartTurn())
    return _SMART_TURN[0]


def replay_setting(trace: Trace, setting: Setting,
                   heard: Callable[[], np.ndarray] | None = None) -> list[dict[str, Any]]:
    """The output lines of a trace (already built for the setting's audio side) under the
    setting (``heard``: the user's channel, for ``eou_model: smart-turn``)."""
    t = apply(trace, setting)
    if setting.get("eou_model") == "smart-turn":
        if heard is None:
            raise TurnFsmError(f"{trace.path}: eou_model smart-turn hears audio: it sweeps WAV "
                               "sessions, not traces")
        from ..audio.smart_turn import replay_fused
        from ..core.profiles import get_profile
        return replay_fused(t, heard(), profile=get_profile(setting.profile),
                            smart_turn=_smart_turn())
    if setting.get("turn_detection") == "model":
        return LiveModelReplay(t, _rule_model().answer).run()
    return replay_trace(t)


# -- a task: sessions x a chunk of settings ---------------------------------------------------

_SESSIONS: OrderedDict[tuple[str, int, int], Session] = OrderedDict()
_TRACES: OrderedDict[tuple[str, tuple[int, int], tuple[tuple[str, Any], ...]], Trace] = \
    OrderedDict()
CACHED_SESSIONS = 16
CACHED_TRACES = 32
_LOCK = threading.Lock()  # a Dask worker may run tasks on several threads
_SETTINGS: list[tuple[Setting, ...]] = []  # the sweep's settings in a pool worker


def cached_session(path: str) -> Session:
    """:func:`prepare` once per process (the file's size and time are in the key)."""
    try:
        st = os.stat(path)
    except OSError as e:
        raise TurnFsmError(f"{path}: cannot read the session: {e.strerror or e}") from None
    key = (path, st.st_mtime_ns, st.st_size)
    with _LOCK:
        s = _SESSIONS.get(key)
        if s is not None:
            _SESSIONS.move_to_end(key)
            return s
    s = prepare(path)
    with _LOCK:
        _SESSIONS[key] = s
        while len(_SESSIONS) > CACHED_SESSIONS:
            _SESSIONS.popitem(last=False)
    return s


def _cached_trace(session: Session, key: tuple[tuple[str, Any], ...]) -> Trace:
    if session.trace is not None:
        return session.trace
    k = (session.path, session.stamp, key)
    with _LOCK:
        t = _TRACES.get(k)
        if t is not None:
            _TRACES.move_to_end(k)
            return t
    t = build(session, key)
    with _LOCK:
        _TRACES[k] = t
        while len(_TRACES) > CACHED_TRACES:
            _TRACES.popitem(last=False)
    return t


def _heard(session: Session) -> Callable[[], np.ndarray]:
    """The session's user channel, read when first asked for (Smart Turn hears it)."""
    got: list[np.ndarray] = []

    def read() -> np.ndarray:
        if not got:
            got.append(read_wav(session.path).samples[0])
        return got[0]
    return read


def clear_caches() -> None:
    """Forget the sessions and traces this process prepared."""
    with _LOCK:
        _SESSIONS.clear()
        _TRACES.clear()


def set_settings(settings: tuple[Setting, ...]) -> None:
    """A pool worker's initialiser: the sweep's settings, sent once per worker."""
    _SETTINGS[:] = [settings]


def run_task(sessions: Sequence[str | Session], which: Sequence[int],
             settings: Sequence[Setting] | None = None) -> list[Tally]:
    """Score ``sessions`` (paths, or sessions already prepared) under the settings numbered
    ``which`` (of ``settings``, else of the worker's :func:`set_settings`); one tally per
    setting, over the sessions."""
    table = settings if settings is not None else _SETTINGS[0]
    chosen = [table[i] for i in which]
    tallies = [Tally() for _ in chosen]
    for src in sessions:
        session = cached_session(src) if isinstance(src, str) else src
        heard = _heard(session) if session.is_audio else None
        for setting, tally in zip(chosen, tallies, strict=True):
            key = setting.audio_key() if session.is_audio else ()
            lines = replay_setting(_cached_trace(session, key), setting, heard)
            tally.add(score_outputs(lines, session.truth))
    return tallies

