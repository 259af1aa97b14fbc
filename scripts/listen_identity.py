"""Check that ``turnfsm listen`` decides exactly as a git revision does, on every example WAV.

Run from the repository root::

    python scripts/listen_identity.py a8903f4

For each WAV of ``examples/audio`` and ``examples/dialogues``, with and without its timed
words (``--words FILE.words.json``), it runs ``turnfsm listen WAV -o OUT --out-trace TRACE``
with this tree's ``src`` and with the revision's (checked out under /tmp), and compares the
printed timeline, the outputs (``-o``) and the trace (``--out-trace``) byte for byte. Exit
status 0 when every one is identical; otherwise it names the files that differ.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
WAVS = sorted((ROOT / "examples" / "audio").glob("*.wav")) + sorted(
    (ROOT / "examples" / "dialogues").glob("*.wav"))


def tree(rev: str, into: Path) -> Path:
    """The ``src`` folder of git revision ``rev``, extracted under ``into`` (with the whole
    tree: the packaged chart and profiles link to the repository's root)."""
    archive = subprocess.run(["git", "-C", str(ROOT), "archive", rev],
                             capture_output=True, check=True).stdout
    subprocess.run(["tar", "-x", "-C", str(into)], input=archive, check=True)
    return into / "src"


def run(src: Path, wav: Path, words: bool, out: Path) -> tuple[bytes, bytes, bytes]:
    """(timeline, outputs, trace) of ``turnfsm listen`` run from ``src``."""
    # bytecode (and the packaged profiles' cache beside it) written and used, as installed
    env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    env.update(PYTHONPATH=str(src), HF_HUB_OFFLINE="1")
    args = [sys.executable, "-m", "turnfsm.cli", "listen", str(wav), "-o", str(out / "o.jsonl"),
            "--out-trace", str(out / "t.jsonl")]
    if words:
        args += ["--words", str(wav.with_suffix(".words.json"))]
    p = subprocess.run(args, capture_output=True, env=env, cwd=ROOT)
    if p.returncode != 0:
        raise SystemExit(f"{wav.name}: turnfsm listen failed: {p.stderr.decode()[-300:]}")
    return p.stdout, (out / "o.jsonl").read_bytes(), (out / "t.jsonl").read_bytes()


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("rev", help="the git revision to compare with (e.g. a8903f4)")
    a = ap.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp:
        base = tree(a.rev, Path(tmp))
        cases = [(w, words) for w in WAVS for words in (False, True)]

        def compare(case: tuple[Path, bool]) -> str | None:
            wav, words = case
            outs = []
            for k, src in enumerate((ROOT / "src", base)):
                d = Path(tmp) / f"{wav.stem}-{int(words)}-{k}"
                d.mkdir()
                outs.append(run(src, wav, words, d))
            names = ("timeline", "-o", "--out-trace")
            diff = [n for n, x, y in zip(names, outs[0], outs[1], strict=True) if x != y]
            label = f"{wav.relative_to(ROOT)}{' --words' if words else ''}"
            return f"{label}: {', '.join(diff)} differ" if diff else None
        with ThreadPoolExecutor(2) as pool:
            problems = [p for p in pool.map(compare, cases) if p]
    for p in problems:
        print(p)
    print(f"{len(cases) - len(problems)} of {len(cases)} runs identical to {a.rev} "
          "(timeline, -o, --out-trace)")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
