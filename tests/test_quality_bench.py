"""benchmarks/quality.py, the corpus-wide quality table, on two dialogues: its rows, its
cut-in list with the transcript at the pause and the cause, and that it is deterministic."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

import pytest

ROOT = Path(__file__).resolve().parents[1]
FILES = ["--files", "en01_list_eggs", "en24_cough"]


def _quality() -> ModuleType:
    spec = importlib.util.spec_from_file_location("quality_bench",
                                                  ROOT / "benchmarks" / "quality.py")
    assert spec is not None and spec.loader is not None
    mod = importlib.util.module_from_spec(spec)
    sys.modules["quality_bench"] = mod
    spec.loader.exec_module(mod)
    return mod


def _run(capsys: pytest.CaptureFixture[str], *args: str) -> str:
    assert _quality().main([*FILES, *args]) == 0
    return capsys.readouterr().out


def test_quality_table_without_models_names_each_cut_in(
        capsys: pytest.CaptureFixture[str]) -> None:
    """Timed words, no model rows: the list's pause is a cut-in for every system, named with
    the words before it and its kind; the cough is no noise turn."""
    out = _run(capsys, "--no-whisper", "--no-pipecat", "--no-smart-turn", "--no-reference")
    rows = [x for x in out.splitlines() if x.startswith("| ") and " s |" in x]
    assert [r.split(" | ")[1] for r in rows[:4]] == [
        "reference (its `livekit` profile)", "500 ms silence (VAD only)", "turnfsm `livekit`",
        "turnfsm **`default`**"]
    assert all(r.split(" | ")[3] == "1" and r.split(" | ")[7] == "0 of 1" for r in rows)
    cuts = [x for x in out.splitlines() if "`en01_list_eggs`" in x]
    assert len(cuts) == 4
    assert all("“I need eggs milk”" in c and c.endswith("| list |") for c in cuts)
    assert "Whisper" not in out and "Pipecat" not in out


@pytest.mark.slow
# Pipecat's audio utilities import audioop (deprecated in Python 3.11)
@pytest.mark.filterwarnings("ignore:'audioop' is deprecated:DeprecationWarning")
def test_quality_table_with_every_system_is_deterministic(
        capsys: pytest.CaptureFixture[str]) -> None:
    """Every row (Pipecat's pipeline, Smart Turn, Whisper) on two dialogues, twice: the same
    report, with Pipecat and Whisper rows."""
    first = _run(capsys)
    assert first == _run(capsys)
    assert "Pipecat 1.14 defaults" in first and "| Whisper tiny.en (2 dialogues) |" in first
    assert "turnfsm `default` + Smart Turn" in first


def test_quality_bad_input_is_one_line(tmp_path: Path,
                                       capsys: pytest.CaptureFixture[str]) -> None:
    """A folder without dialogues, an unknown dialogue, a missing replayer: one line each,
    exit 2, before any work."""
    q = _quality()
    assert q.main(["--corpus", str(tmp_path)]) == 2
    assert "no labelled dialogues" in capsys.readouterr().err
    assert q.main(["--files", "en99_nothing", "--no-reference"]) == 2
    assert "no such dialogue" in capsys.readouterr().err
    assert q.main(["--reference", sys.executable, "--reference-script",
                   str(tmp_path / "none.py"), "--files", "en01_list_eggs"]) == 2
    err = capsys.readouterr().err
    assert "none.py: no such file" in err and err.count("\n") == 1
