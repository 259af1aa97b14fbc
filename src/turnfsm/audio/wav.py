"""Reading WAV audio: PCM 8/16/24/32-bit or 32-bit float, mono or stereo, any common sample
rate, resampled to 16 kHz. Bad input gets an :class:`AudioError` naming the file and what is
wrong.

:class:`WavStream` reads a file or a stream (a pipe, standard input: a WAV stream or raw
16 kHz 16-bit mono PCM) in blocks and resamples them as they come (``soxr``, a streaming
polyphase resampler), so memory does not grow with the audio's length. :func:`read_wav`
reads a whole file into memory (16 kHz float32, 128 KB per channel-second) and refuses
files longer than :data:`MAX_READ_SECONDS`; ``turnfsm listen`` streams files of any length.

Audio already at 16 kHz in 16-bit PCM (the dialogues, a microphone's raw stream) can also be
read without numpy (:meth:`WavStream.pcm16_blocks`: the file's samples, per channel, as
``array('h')``), which spares a short ``listen`` the import of numpy (a third of its CPU).
"""

from __future__ import annotations

import io
import sys
from array import array
from collections.abc import Iterator
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any

import attrs

from .._methods import attrs_repr
from ..errors import TurnFsmError

if TYPE_CHECKING:
    import numpy as np

RATE = 16000  # the pipeline's sample rate (Silero's)
MAX_READ_SECONDS = 2 * 3600  # read_wav's limit: 2 hours (about 0.9 GB for a stereo file)
_UNKNOWN = 0xFFFFFFFF  # a streamed WAV's data size ("until the end")


class AudioError(TurnFsmError):
    """An audio file cannot be used (not a PCM WAV, unsupported, unreadable)."""


@attrs.frozen(eq=False, repr=False)
class Audio:
    """Decoded audio: float32 samples in [-1, 1], one row per channel, at :data:`RATE`."""

    __repr__ = attrs_repr

    path: str
    samples: np.ndarray  # shape (channels, n)
    source_rate: int

    @property
    def channels(self) -> int:
        """Number of channels (1 or 2)."""
        return int(self.samples.shape[0])

    @property
    def duration(self) -> float:
        """Seconds."""
        return float(self.samples.shape[1]) / RATE

    def int16(self, channel: int) -> np.ndarray:
        """One channel as int16 PCM (what the VAD reads)."""
        return to_int16(self.samples[channel])


def to_int16(x: np.ndarray) -> np.ndarray:
    """float samples in [-1, 1] as int16 PCM (what the VAD reads). A 16-bit sample ``s``
    read by :meth:`WavStream.blocks` comes back one step nearer zero (``s - sign(s)``:
    ``s / 32768 * 32767``, truncated)."""
    import numpy as np
    return np.asarray(np.clip(x, -1.0, 1.0) * 32767, dtype=np.int16)


def resample(x: np.ndarray, rate: int, to: int = RATE) -> np.ndarray:
    """Band-limited resampling of a 1-D signal (soxr, high quality)."""
    import numpy as np
    if rate == to or x.size == 0:
        return np.asarray(x, dtype=np.float32)
    import soxr
    return np.asarray(soxr.resample(np.asarray(x, dtype=np.float32), rate, to, quality="HQ"),
                      dtype=np.float32)


class WavStream:
    """WAV audio (or raw PCM) read in blocks: :meth:`blocks` yields float32 arrays of shape
    (channels, n) at :data:`RATE`. ``source`` is a path, or a binary stream with ``name``
    for messages. ``raw``: the stream is headerless 16 kHz 16-bit mono PCM; ``raw=None``
    (a stream only) decides from the first four bytes (``RIFF``: a WAV stream)."""

    def __init__(self, source: str | Path | IO[bytes], name: str | None = None, *,
                 raw: bool | None = False) -> None:
        self._own = isinstance(source, (str, Path))
        self.path = str(source) if isinstance(source, (str, Path)) else (name or "<stdin>")
        p = self.path
        if isinstance(source, (str, Path)):
            try:
                self._f: IO[bytes] = open(source, "rb")  # noqa: SIM115 - closed by close()
                self._size: int | None = Path(source).stat().st_size
            except FileNotFoundError:
                raise AudioError(f"{p}: no such file") from None
            except OSError as e:
                raise AudioError(f"{p}: cannot read: {e.strerror or e}") from None
        else:
            self._f, self._size = source, None
        self._head = b""
        self._duration: float | None = None
        try:
            if raw is None:
                self._head = self._read(4)
                raw = self._head != b"RIFF"
            if raw:
                self.channels, self.source_rate, self._width, self._tag = 1, RATE, 2, 1
                self._left: int | None = None
            else:
                self._header()
        finally:
            if self._own:  # a path is reopened by blocks()
                self._data_at = self._f.tell()
                self._f.close()

    # -- header ------------------------------------------------------------------------------

    def _read(self, n: int) -> bytes:
        """Up to ``n`` bytes (fewer only at the end)."""
        head = b""
        if self._head:
            head, self._head = self._head[:n], self._head[n:]
            n -= len(head)
        parts = [head]
        while n > 0:
            try:
                b = self._f.read(n)
            except OSError as e:
                raise AudioError(f"{self.path}: cannot read: {e.strerror or e}") from None
            if not b:
                break
            parts.append(b)
            n -= len(b)
        return b"".join(parts)

    def _header(self) -> None:
        p = self.path
        riff = self._read(12)
        if len(riff) < 12 or riff[:4] != b"RIFF" or riff[8:12] != b"WAVE":
            raise AudioError(f"{p}: not a WAV file (no RIFF/WAVE header)")
        pos = 12
        fmt: bytes | None = None
        while True:
            h = self._read(8)
            if len(h) < 8:
                if fmt is None:
                    raise AudioError(f"{p}: the WAV file has no format chunk")
                raise AudioError(f"{p}: the WAV file has no data chunk")
            cid, size = h[:4], int.from_bytes(h[4:8], "little")
            pos += 8
            if cid == b"data":
                if fmt is None:
                    raise AudioError(f"{p}: the WAV file has no format chunk before its data")
                if size == _UNKNOWN or (size == 0 and self._size is None):
                    self._left = None  # a stream of unknown length: until the end
                else:
                    self._left = size if self._size is None else min(size, self._size - pos)
                break
            if size > 1 << 20 and cid == b"fmt ":
                raise AudioError(f"{p}: the WAV format chunk is too large ({size} bytes)")
            if cid == b"fmt " and fmt is None:
                fmt = self._read(size)
                if size & 1:
                    self._read(1)
            else:
                self._skip(size + (size & 1))
            pos += size + (size & 1)
        if len(fmt) < 16:
            raise AudioError(f"{p}: the WAV file has no format chunk")
        tag = int.from_bytes(fmt[0:2], "little")
        channels = int.from_bytes(fmt[2:4], "little")
        rate = int.from_bytes(fmt[4:8], "little")
        bits = int.from_bytes(fmt[14:16], "little")
        if tag == 0xFFFE and len(fmt) >= 26:  # WAVE_FORMAT_EXTENSIBLE: the subformat says
            tag = int.from_bytes(fmt[24:26], "little")
        if tag not in (1, 3):
            raise AudioError(f"{p}: compressed WAV (format {tag}); give PCM or float samples")
        width = bits // 8
        if channels not in (1, 2):
            raise AudioError(f"{p}: {channels} channels; give mono (the user) or stereo "
                             "(channel 0 the user, channel 1 the agent)")
        if not 4000 <= rate <= 192000:
            raise AudioError(f"{p}: sample rate {rate} Hz is not a common audio rate")
        if (tag == 1 and width not in (1, 2, 3, 4)) or (tag == 3 and width != 4) or bits % 8:
            raise AudioError(f"{p}: {bits}-bit {'float' if tag == 3 else 'PCM'} samples are "
                             "not supported")
        self.channels, self.source_rate, self._width, self._tag = channels, rate, width, tag
        if self._left is not None and self._left < width * channels:
            raise AudioError(f"{p}: no audio in the file")
        if self._left is not None:
            self._duration = self._left // (width * channels) / rate

    def _skip(self, n: int) -> None:
        if self._own and not self._head:
            self._f.seek(n, io.SEEK_CUR)
            return
        while n > 0:
            got = len(self._read(min(n, 1 << 16)))
            if not got:
                return
            n -= got

    # -- samples -----------------------------------------------------------------------------

    @property
    def duration(self) -> float | None:
        """Seconds of audio the header announces (None: a stream of unknown length)."""
        return self._duration

    @property
    def pcm16(self) -> bool:
        """Whether the audio is 16 kHz 16-bit PCM (:meth:`pcm16_blocks` reads it)."""
        return self.source_rate == RATE and self._tag == 1 and self._width == 2

    def _decode(self, raw: bytes) -> np.ndarray:
        import numpy as np
        width, tag = self._width, self._tag
        data: np.ndarray
        if tag == 3:
            data = np.frombuffer(raw, dtype="<f4").astype(np.float32)
            if not np.all(np.isfinite(data)):
                raise AudioError(f"{self.path}: the float samples hold NaN or infinity")
        elif width == 1:
            data = (np.frombuffer(raw, dtype=np.uint8).astype(np.float32) - 128.0) / 128.0
        elif width == 2:
            data = np.frombuffer(raw, dtype="<i2").astype(np.float32) / 32768.0
        elif width == 3:
            b = np.frombuffer(raw, dtype=np.uint8).reshape(-1, 3).astype(np.int32)
            v = b[:, 0] | (b[:, 1] << 8) | (b[:, 2] << 16)
            v = np.where(v >= 1 << 23, v - (1 << 24), v)
            data = v.astype(np.float32) / float(1 << 23)
        else:
            data = np.frombuffer(raw, dtype="<i4").astype(np.float32) / float(1 << 31)
        return data.reshape(-1, self.channels)

    def _raw_blocks(self, seconds: float) -> Iterator[tuple[bytes, bool]]:
        """(whole frames of raw sample bytes, last) about ``seconds`` long each; the file is
        closed at the end; AudioError if there is no audio at all."""
        if self._own:
            try:
                self._f = open(self.path, "rb")  # noqa: SIM115 - closed below
                self._f.seek(self._data_at)
            except OSError as e:
                raise AudioError(f"{self.path}: cannot read: {e.strerror or e}") from None
        frame = self._width * self.channels
        want = max(1, int(seconds * self.source_rate)) * frame
        rest = b""
        got_any = False
        try:
            while True:
                n = want if self._left is None else min(want, self._left)
                new = self._read(n) if n > 0 else b""
                if self._left is not None:
                    self._left -= len(new)
                last = len(new) < n or self._left == 0
                raw = rest + new
                end = len(raw) // frame * frame
                rest = raw[end:]
                got_any = got_any or end > 0
                yield raw[:end], last
                if last:
                    break
        finally:
            self.close()
        if not got_any:
            raise AudioError(f"{self.path}: no audio in the file")

    def blocks(self, seconds: float = 1.0) -> Iterator[np.ndarray]:
        """float32 blocks (channels, n) at :data:`RATE`, about ``seconds`` long each (the
        last may be shorter; a block is yielded as soon as its bytes are read)."""
        import numpy as np
        stream: Any = None
        if self.source_rate != RATE:
            import soxr
            stream = soxr.ResampleStream(self.source_rate, RATE, self.channels,
                                         dtype="float32", quality="HQ")
        got_any = False
        for raw, last in self._raw_blocks(seconds):
            x = self._decode(raw) if raw else np.zeros((0, self.channels), np.float32)
            got_any = got_any or bool(raw)
            if stream is not None and got_any:
                x = stream.resample_chunk(x, last=last)
            if x.size:
                yield np.ascontiguousarray(x.T)

    def pcm16_blocks(self, seconds: float = 1.0) -> Iterator[list[array[int]]]:
        """The samples of 16 kHz 16-bit PCM audio (:attr:`pcm16`) in blocks of about
        ``seconds``: a list with each channel's samples (``array('h')``), as the file holds
        them (:meth:`blocks` gives them as floats); no numpy."""
        if not self.pcm16:
            raise AudioError(f"{self.path}: not 16 kHz 16-bit PCM audio")
        swap = sys.byteorder == "big"  # WAV samples are little-endian
        for raw, _ in self._raw_blocks(seconds):
            if not raw:
                continue
            a = array("h", raw)
            if swap:
                a.byteswap()
            if self.channels == 1:
                yield [a]
            else:
                yield [a[c::self.channels] for c in range(self.channels)]

    def close(self) -> None:
        """Stop reading (a path's file is closed; a stream given is left open; a path's
        header is read and its file closed at once, so an unread stream holds nothing)."""
        if self._own:
            self._f.close()


def read_wav(path: str | Path) -> Audio:
    """Read a whole WAV file (PCM 8/16/24/32-bit or 32-bit float, also in the extensible
    format) into memory; channel 0 is the user, channel 1 (if any) the agent. Files longer
    than :data:`MAX_READ_SECONDS` are refused (``turnfsm listen`` streams any length)."""
    s = WavStream(path)
    if s.duration is not None and s.duration > MAX_READ_SECONDS:
        s.close()
        raise AudioError(f"{s.path}: {_span(s.duration)} of audio is more than the "
                         f"{_span(MAX_READ_SECONDS)} read whole into memory; "
                         "`turnfsm listen` streams longer files")
    import numpy as np
    parts = list(s.blocks(60.0))
    return Audio(s.path, np.concatenate(parts, axis=1), s.source_rate)


def _span(seconds: float) -> str:
    if seconds >= 3600:
        return f"{seconds / 3600:.1f} hours"
    if seconds >= 60:
        return f"{seconds / 60:.1f} minutes"
    return f"{seconds:.1f} s"
