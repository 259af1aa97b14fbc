"""The README's commands and example work as written."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_readme_starts_with_setup_main_job_and_test_commands() -> None:
    """The first code block holds the set-up, the main job and the test command."""
    text = (ROOT / "README.md").read_text()
    block = re.search(r"```sh\n(.*?)```", text, re.S)
    assert block is not None
    lines = [x for x in block.group(1).splitlines() if x and not x.startswith("#")]
    assert "pip install -e '.[dev]'" in lines[0]
    assert lines[1] == ("turnfsm listen examples/audio/two_turns.wav "
                        "--words examples/audio/two_turns.words.json")
    assert lines[2] == "pytest"


def test_readme_main_job_runs() -> None:
    """The main job prints the timeline of two turns, each with why it ended."""
    import subprocess
    import sys
    r = subprocess.run([sys.executable, "-m", "turnfsm.cli", "listen",
                        "examples/audio/two_turns.wav", "--words",
                        "examples/audio/two_turns.words.json"], cwd=ROOT, capture_output=True,
                       text=True, check=True, timeout=120)
    assert r.stdout.count("END OF TURN") == 2 and r.stdout.count("why: ") >= 2
    assert "# 2 end(s) of turn" in r.stdout


def test_readme_python_example_runs() -> None:
    """The README's Python example runs and ends the turn at the printed deadline."""
    text = (ROOT / "README.md").read_text()
    code = re.search(r"```python\n(.*?)```", text, re.S)
    assert code is not None
    printed: list[object] = []
    ns: dict[str, object] = {"print": lambda *a, **k: printed.extend(a)}
    exec(compile(code.group(1), "README.md", "exec"), ns)
    engine = ns["engine"]
    assert ns["deadline"] == 1.9
    assert [type(p).__name__ for p in printed] == ["EndOfTurn"]
    assert printed[0].new_transcript == "book a table"  # type: ignore[attr-defined]
    assert engine.state()["turn"] == "idle"  # type: ignore[attr-defined]
