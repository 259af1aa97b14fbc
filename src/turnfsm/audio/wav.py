"""Reading WAV files: PCM 8/16/24/32-bit, mono or stereo, any common sample rate, resampled
to 16 kHz with numpy (band-limited, by FFT). Bad files get an :class:`AudioError` naming the
file and what is wrong."""

from __future__ import annotations

from pathlib import Path

import attrs
import numpy as np

from ..errors import TurnFsmError

RATE = 16000  # the pipeline's sample rate (Silero's)


class AudioError(TurnFsmError):
    """An audio file cannot be used (not a PCM WAV, unsupported, unreadable)."""


@attrs.frozen(eq=False)
class Audio:
    """Decoded audio: float32 samples in [-1, 1], one row per channel, at :data:`RATE`."""

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
        return np.asarray(np.clip(self.samples[channel], -1.0, 1.0) * 32767, dtype=np.int16)


def resample(x: np.ndarray, rate: int, to: int = RATE) -> np.ndarray:
    """Band-limited resampling of a 1-D signal by FFT (no aliasing above the new Nyquist)."""
    if rate == to or x.size == 0:
        return np.asarray(x, dtype=np.float32)
    n = round(x.size * to / rate)
    spec = np.fft.rfft(x.astype(np.float64))
    keep = min(spec.size, n // 2 + 1)
    out = np.zeros(n // 2 + 1, dtype=np.complex128)
    out[:keep] = spec[:keep]
    return np.asarray(np.fft.irfft(out, n) * (n / x.size), dtype=np.float32)


def _chunks(p: str, data: bytes) -> dict[bytes, bytes]:
    if len(data) < 12 or data[:4] != b"RIFF" or data[8:12] != b"WAVE":
        raise AudioError(f"{p}: not a WAV file (no RIFF/WAVE header)")
    found: dict[bytes, bytes] = {}
    i = 12
    while i + 8 <= len(data):
        cid, size = data[i:i + 4], int.from_bytes(data[i + 4:i + 8], "little")
        body = data[i + 8:i + 8 + size]
        found.setdefault(cid, body)
        i += 8 + size + (size & 1)
    return found


def read_wav(path: str | Path) -> Audio:
    """Read a WAV file (PCM 8/16/24/32-bit or 32-bit float, also in the extensible format);
    channel 0 is the user, channel 1 (if any) the agent."""
    p = str(path)
    try:
        raw_file = Path(p).read_bytes()
    except FileNotFoundError:
        raise AudioError(f"{p}: no such file") from None
    except OSError as e:
        raise AudioError(f"{p}: cannot read: {e.strerror or e}") from None
    chunks = _chunks(p, raw_file)
    fmt, raw = chunks.get(b"fmt "), chunks.get(b"data")
    if fmt is None or len(fmt) < 16:
        raise AudioError(f"{p}: the WAV file has no format chunk")
    if raw is None:
        raise AudioError(f"{p}: the WAV file has no data chunk")
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
    n = len(raw) // (width * channels)
    if n == 0:
        raise AudioError(f"{p}: no audio in the file")
    raw = raw[: n * width * channels]
    if tag == 3:
        data = np.frombuffer(raw, dtype="<f4").astype(np.float32)
        if not np.all(np.isfinite(data)):
            raise AudioError(f"{p}: the float samples hold NaN or infinity")
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
    data = data.reshape(-1, channels).T
    samples = np.stack([resample(c, rate) for c in data])
    return Audio(p, samples, rate)
