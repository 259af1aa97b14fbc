"""Audio input: WAV reading and resampling, the VAD's events, `turnfsm listen` on the
example audio (VAD spans and turn ends against their labels; listen -> trace -> replay)."""

from __future__ import annotations

import struct
from pathlib import Path

import numpy as np
import pytest

from turnfsm.audio.wav import RATE, AudioError, read_wav, resample

ROOT = Path(__file__).resolve().parents[1]


def wav_bytes(samples: np.ndarray, rate: int = 16000, *, tag: int = 1, bits: int = 16,
              channels: int = 1, extensible: bool = False) -> bytes:
    """A WAV file's bytes (PCM or float), optionally with an extensible format chunk."""
    if tag == 3:
        data = samples.astype("<f4").tobytes()
    elif bits == 16:
        data = (samples * 32767).astype("<i2").tobytes()
    else:
        data = (samples * 127 + 128).astype(np.uint8).tobytes()
    block = channels * bits // 8
    if extensible:
        fmt = struct.pack("<HHIIHHHHI16s", 0xFFFE, channels, rate, rate * block, block, bits,
                          22, bits, 0, struct.pack("<H", tag) + b"\x00" * 14)
    else:
        fmt = struct.pack("<HHIIHH", tag, channels, rate, rate * block, block, bits)
    body = b"WAVE" + b"fmt " + struct.pack("<I", len(fmt)) + fmt + b"data" + \
        struct.pack("<I", len(data)) + data
    return b"RIFF" + struct.pack("<I", len(body)) + body


def test_wav_reader_takes_pcm_float_and_extensible_files(tmp_path: Path) -> None:
    """16-bit, 8-bit, float and WAVE_FORMAT_EXTENSIBLE files read to the same samples."""
    x = 0.5 * np.sin(2 * np.pi * 440 * np.arange(1600) / RATE)
    for k, kw in enumerate([{}, {"bits": 8}, {"tag": 3, "bits": 32}, {"extensible": True}]):
        p = tmp_path / f"a{k}.wav"
        p.write_bytes(wav_bytes(x, **kw))  # type: ignore[arg-type]
        a = read_wav(p)
        assert a.channels == 1 and a.samples.shape == (1, 1600)
        assert np.max(np.abs(a.samples[0] - x)) < (0.02 if kw.get("bits") == 8 else 1e-3)


def test_resampling_keeps_the_frequency_and_the_length() -> None:
    """A 440 Hz tone at 44.1 kHz resampled to 16 kHz is still 440 Hz, 1 s long."""
    src = np.sin(2 * np.pi * 440 * np.arange(44100) / 44100)
    y = resample(src, 44100)
    assert y.size == RATE
    spectrum = np.abs(np.fft.rfft(y))
    assert abs(int(np.argmax(spectrum)) - 440) <= 1


@pytest.mark.parametrize("content, message", [
    (b"not a wav at all", "not a WAV file"),
    (wav_bytes(np.zeros(10), tag=2), "compressed WAV"),
    (wav_bytes(np.zeros(0)), "no audio"),
    (wav_bytes(np.zeros(30), channels=3), "3 channels"),
    (wav_bytes(np.full(10, np.nan), tag=3, bits=32), "NaN"),
    (wav_bytes(np.zeros(10), rate=1000), "not a common audio rate"),
], ids=["garbage", "compressed", "empty", "three-channels", "nan", "odd-rate"])
def test_bad_audio_files_get_a_clear_error(tmp_path: Path, content: bytes, message: str) -> None:
    """Bad WAV files are refused with an AudioError naming the file and the problem."""
    p = tmp_path / "bad.wav"
    p.write_bytes(content)
    with pytest.raises(AudioError, match=message) as info:
        read_wav(p)
    assert str(p) in str(info.value)


def test_a_missing_file_is_named(tmp_path: Path) -> None:
    """A missing file is an AudioError, not a traceback."""
    with pytest.raises(AudioError, match="no such file"):
        read_wav(tmp_path / "nope.wav")
