"""A built wheel carries the chart the code runs."""

from __future__ import annotations

import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def test_wheel_contains_the_root_chart_and_examples(tmp_path: Path) -> None:
    """`pip wheel .` packs states.yaml and the profiles (identical to the root ones), the
    built-in rules' data, and the example session."""
    pytest.importorskip("hatchling")
    src = tmp_path / "src"
    shutil.copytree(ROOT, src, ignore=shutil.ignore_patterns(
        ".venv", ".git", ".ci", "node_modules", "__pycache__", ".hypothesis", "*.egg-info"))
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation",
                    "-q", "-w", str(tmp_path / "dist"), str(src)], check=True)
    (wheel,) = (tmp_path / "dist").glob("turnfsm-*.whl")
    with zipfile.ZipFile(wheel) as z:
        assert z.read("turnfsm/states.yaml") == (ROOT / "states.yaml").read_bytes()
        assert z.read("turnfsm/profiles/default.yaml") == \
            (ROOT / "profiles" / "default.yaml").read_bytes()
        names = z.namelist()
        assert {"turnfsm/core/end_of_turn_words.json", "turnfsm/core/backchannels.json"} <= \
            set(names)
        assert "turnfsm/examples/session.jsonl" in z.namelist()
        assert "turnfsm/py.typed" in z.namelist()
