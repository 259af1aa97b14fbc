"""A session's audio as a page carries it: each channel's level envelope and a compact
playable copy (``turnfsm view``)."""

from __future__ import annotations

import base64
import struct

import numpy as np

#: envelope values per second (one per 10 ms)
ENV_RATE = 100
#: the embedded audio's sample rate (speech: 8 kHz mu-law, 8 KB a second)
AUDIO_RATE = 8000


def envelope(samples: np.ndarray, rate: int = 16000) -> list[str]:
    """Each channel's peak level per 10 ms as bytes (0: -80 dBFS or below, 255: 0 dBFS),
    base64."""
    hop = rate // ENV_RATE
    res = []
    for x in samples:
        n = x.size // hop
        if n == 0:
            res.append("")
            continue
        peak = np.abs(x[: n * hop].reshape(n, hop)).max(axis=1)
        db = 20 * np.log10(np.maximum(peak, 1e-5))
        level = np.clip((db + 80.0) / 80.0 * 255.0, 0, 255).astype(np.uint8)
        res.append(base64.b64encode(level.tobytes()).decode("ascii"))
    return res


def mulaw_wav(samples: np.ndarray, rate: int = 16000) -> bytes:
    """The channels mixed to mono, 8 kHz, 8-bit mu-law (G.711), as a WAV file's bytes."""
    import soxr
    mono = samples.mean(axis=0) if samples.shape[0] > 1 else samples[0]
    x: np.ndarray = soxr.resample(mono.astype(np.float32), rate, AUDIO_RATE)
    x = np.clip(x, -1.0, 1.0)
    mu = 255.0
    y = np.sign(x) * np.log1p(mu * np.abs(x)) / np.log1p(mu)  # in [-1, 1]
    # G.711 bytes are the inverted sign-magnitude code of the compressed value
    q = np.round((y + 1.0) / 2.0 * 255.0).astype(np.int16)  # 0..255, 128 = 0
    mag = np.abs(q - 128).clip(0, 127)
    code = np.where(q >= 128, 0x80 | (127 - mag), 127 - mag).astype(np.uint8)
    data: bytes = code.tobytes()
    fmt = struct.pack("<HHIIHHH", 7, 1, AUDIO_RATE, AUDIO_RATE, 1, 8, 0)
    fact = struct.pack("<I", len(data))
    body = (b"WAVE" + b"fmt " + struct.pack("<I", len(fmt)) + fmt
            + b"fact" + struct.pack("<I", 4) + fact
            + b"data" + struct.pack("<I", len(data)) + data + (b"\0" if len(data) % 2 else b""))
    return b"RIFF" + struct.pack("<I", len(body)) + body
