"""`turnfsm view` on a long session: the page's size per hour and its open time.

    python benchmarks/view_bench.py [--minutes 60] [--browser /usr/bin/chromium]

A seeded session of ``--minutes`` (``gen_session.py``, the detector on: barge-ins and
backchannels) is written as a trace whose header names a WAV of the same length (the
labelled examples tiled, stereo), so the page carries that WAV's envelope; the page is made
without and with the audio. Printed: each page's size (and per hour), the CPU time the
``view`` process took (its own ``getrusage`` of the child), and, with a browser, the time
from navigation to the page being drawn and ready (``window.turnfsmView.ready``) in
headless chromium, with the time to jump to the last decision.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
import wave
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))
from gen_session import session  # noqa: E402


def tiled_wav(path: Path, seconds: float) -> None:
    """A stereo 16 kHz WAV of ``seconds``: the stereo examples one after another."""
    clips = []
    for name in ("barge_in", "backchannel"):
        with wave.open(str(ROOT / "examples" / "audio" / f"{name}.wav")) as w:
            clips.append(np.frombuffer(w.readframes(w.getnframes()), np.int16).reshape(-1, 2))
    block = np.concatenate(clips)
    n = int(seconds * 16000)
    with wave.open(str(path), "wb") as w:
        w.setnchannels(2)
        w.setsampwidth(2)
        w.setframerate(16000)
        done = 0
        while done < n:
            part = block[: n - done]
            w.writeframes(part.tobytes())
            done += len(part)


def run_view(argv: list[str]) -> tuple[float, float]:
    """Run ``turnfsm view`` in a child; return its CPU seconds and peak memory (MB, the
    child's own ``VmHWM``)."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    proc = subprocess.Popen(
        [sys.executable, "-c", "import sys, turnfsm.cli as c; r = c.main(sys.argv[1:]); "
         "print(open('/proc/self/status').read().split('VmHWM:')[1].split()[0]); sys.exit(r)",
         "view", *argv], stdout=subprocess.PIPE, text=True,
        env={**os.environ, "PYTHONPATH": str(ROOT / "src")})
    out, _ = proc.communicate()
    if proc.returncode:
        raise SystemExit(f"turnfsm view failed ({proc.returncode})")
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return cpu, int(out.split()[-1]) / 1024


def open_time(page: Path, browser: str) -> tuple[float, float]:
    """Seconds from navigation to ready, and to jump to the last decision (End, then
    Up), in headless chromium."""
    from playwright.sync_api import sync_playwright
    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=browser, args=["--no-sandbox"])
        tab = b.new_page(viewport={"width": 1500, "height": 900})
        errors: list[str] = []
        tab.on("pageerror", lambda e: errors.append(str(e)))
        start = time.perf_counter()
        tab.goto(page.as_uri())
        tab.wait_for_function("window.turnfsmView && window.turnfsmView.ready", timeout=120_000)
        ready = time.perf_counter() - start
        start = time.perf_counter()
        tab.keyboard.press("End")
        tab.keyboard.press("ArrowUp")
        tab.evaluate("window.turnfsmView.cursor.step")
        jump = time.perf_counter() - start
        b.close()
        if errors:
            raise SystemExit(f"page errors: {errors}")
    return ready, jump


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--minutes", type=float, default=60.0)
    ap.add_argument("--browser", default="/usr/bin/chromium")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as d:
        folder = Path(d)
        wav = folder / "session.wav"
        tiled_wav(wav, args.minutes * 60)
        trace = folder / "session.jsonl"
        with open(trace, "w", encoding="utf-8") as f:
            for k, line in enumerate(session(args.minutes, detector=True)):
                if k == 0:
                    head = json.loads(line)
                    head["comment"] = f"turnfsm listen {wav}"
                    line = json.dumps(head) + "\n"
                f.write(line)
        hours = args.minutes / 60
        print(f"session: {args.minutes:g} min, trace {trace.stat().st_size / 1e6:.1f} MB")
        for audio in ("off", "on"):
            page = folder / f"page-{audio}.html"
            cpu, peak = run_view([str(trace), "-o", str(page), "--audio", audio])
            size = page.stat().st_size / 1e6
            data = page.read_text(encoding="utf-8")
            i = data.index('id="data">') + len('id="data">')
            payload = json.loads(data[i:data.index("</script>", i)].replace("<\\/", "</"))
            line = (f"audio {audio:3s}: {size:6.2f} MB ({size / hours:.2f} MB/hour), "
                    f"view {cpu:.1f} s CPU, {peak:.0f} MB peak, "
                    f"{len(payload['steps'])} steps kept, "
                    f"{len(payload['turns'])} ends of turn, {len(payload['drops'])} drops, "
                    f"{len(payload['interruptions'])} interruptions")
            if Path(args.browser).exists():
                ready, jump = open_time(page, args.browser)
                line += f"; opens in {ready:.2f} s, jump to the last decision {jump:.3f} s"
            print(line, flush=True)


if __name__ == "__main__":
    main()
