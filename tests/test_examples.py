"""The examples under examples/ run and do what they say."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_embed_session_example_runs_and_explains_each_turn() -> None:
    """examples/embed_session.py: the hesitation waits for the rest; every turn says why."""
    r = subprocess.run([sys.executable, str(ROOT / "examples" / "embed_session.py"),
                        "--virtual"], capture_output=True, text=True, check=True, timeout=60)
    assert "END OF TURN 'I want to book a table for four people tonight.'" in r.stdout
    assert r.stdout.count("END OF TURN") == r.stdout.count("why: ") == 2
    assert "2 turns:" in r.stdout and not r.stderr
