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


def _mulaw_codes(x: np.ndarray) -> bytes:
    """G.711 mu-law bytes of samples in [-1, 1]."""
    x = np.clip(x, -1.0, 1.0)
    y = np.sign(x) * np.log1p(255.0 * np.abs(x)) / np.log1p(255.0)
    q = np.round((y + 1.0) / 2.0 * 255.0).astype(np.int16)  # 0..255, 128 = 0
    mag = np.abs(q - 128).clip(0, 127)
    code = np.where(q >= 128, 0x80 | (127 - mag), 127 - mag).astype(np.uint8)
    data: bytes = code.tobytes()
    return data


def _wav_bytes(data: bytes) -> bytes:
    """A mono 8 kHz mu-law WAV file holding ``data``."""
    fmt = struct.pack("<HHIIHHH", 7, 1, AUDIO_RATE, AUDIO_RATE, 1, 8, 0)
    body = (b"WAVE" + b"fmt " + struct.pack("<I", len(fmt)) + fmt
            + b"fact" + struct.pack("<I", 4) + struct.pack("<I", len(data))
            + b"data" + struct.pack("<I", len(data)) + data + (b"\0" if len(data) % 2 else b""))
    return b"RIFF" + struct.pack("<I", len(body)) + body


class PageAudio:
    """A WAV file read once, in blocks (memory does not grow with its length but for what
    the page keeps: 100 bytes a second a channel, and 8 KB a second of audio if asked)."""

    def __init__(self, path: str, *, audio: bool | None) -> None:
        """``audio``: keep a playable copy; None: only if the file is at most
        :data:`AUDIO_AUTO_SECONDS` long."""
        import soxr

        from .wav import RATE, WavStream
        stream = WavStream(path)
        self.path = path
        self.channels = stream.channels
        seconds = stream.duration or 0.0
        keep = audio if audio is not None else seconds <= AUDIO_AUTO_SECONDS
        self.left_out = audio is None and not keep  # too long for the automatic choice
        hop = RATE // ENV_RATE
        levels: list[list[bytes]] = [[] for _ in range(stream.channels)]
        carry = np.zeros((stream.channels, 0), np.float32)
        codes: list[bytes] = []
        resample = soxr.ResampleStream(RATE, AUDIO_RATE, 1, dtype="float32") if keep else None
        n = 0
        blocks = stream.blocks()
        while True:
            block = next(blocks, None)
            last = block is None
            if block is not None:
                n += block.shape[1]
                x = np.concatenate([carry, block], axis=1) if carry.size else block
                whole = x.shape[1] // hop * hop
                carry = x[:, whole:]
                for c in range(stream.channels):
                    peak = np.abs(x[c, :whole].reshape(-1, hop)).max(axis=1) if whole else (
                        np.zeros(0, np.float32))
                    db = 20 * np.log10(np.maximum(peak, 1e-5))
                    levels[c].append(np.clip((db + 80.0) / 80.0 * 255.0, 0, 255)
                                     .astype(np.uint8).tobytes())
                mono = block.mean(axis=0) if block.shape[0] > 1 else block[0]
            else:
                mono = np.zeros(0, np.float32)
            if resample is not None:
                codes.append(_mulaw_codes(resample.resample_chunk(mono, last=last)))
            if last:
                break
        self.duration = n / RATE
        self.env = [base64.b64encode(b"".join(parts)).decode("ascii") for parts in levels]
        self.wav = _wav_bytes(b"".join(codes)) if resample is not None else None


#: sessions up to this long get their audio by default (8 KB a second: 9.6 MB for 20 min)
AUDIO_AUTO_SECONDS = 20 * 60.0
