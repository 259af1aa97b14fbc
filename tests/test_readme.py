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


# -- every snippet runs as written ------------------------------------------------------------

#: sections whose snippets are fragments of an application that framework's docs complete
FRAGMENT_SECTIONS = ("## Use with LiveKit Agents", "## Use with Pipecat")


def _blocks(lang: str) -> list[tuple[str, str]]:
    """(section heading, code) of every ``lang`` block of the README."""
    text = (ROOT / "README.md").read_text()
    out, section = [], ""
    for part in re.split(r"(?m)^(#{2,3} .*)$", text):
        if re.match(r"#{2,3} ", part):
            section = part.strip()
            continue
        out += [(section, m.group(1)) for m in re.finditer(rf"```{lang}\n(.*?)```", part, re.S)]
    return out


def test_every_python_snippet_compiles_as_a_script() -> None:
    """No README Python block (the framework fragments aside) needs a top-level await or
    `async with`: each compiles as a module, as `python snippet.py` would."""
    blocks = [(s, code) for s, code in _blocks("python") if s not in FRAGMENT_SECTIONS]
    assert len(blocks) >= 3
    for section, code in blocks:
        compile(code, f"README.md {section}", "exec")  # a top-level await is a SyntaxError


def test_the_top_level_async_with_of_an_old_snippet_would_be_caught() -> None:
    """The check above refuses what the Session snippet used to be (top-level async with)."""
    import pytest
    with pytest.raises(SyntaxError):
        compile("async with x() as s:\n    await s.y()\n", "snippet", "exec")


def test_every_python_snippet_runs_as_a_script(tmp_path: Path) -> None:
    """Each README Python block (the framework fragments aside) runs as a script from the
    repository with this source; the Session snippet prints its committed turn."""
    import subprocess
    import sys
    outputs = []
    for k, (section, code) in enumerate(_blocks("python")):
        if section in FRAGMENT_SECTIONS:
            continue
        script = tmp_path / f"snippet{k}.py"
        script.write_text(code)
        r = subprocess.run([sys.executable, str(script)], cwd=ROOT, capture_output=True,
                           text=True, timeout=120, env={"PYTHONPATH": str(ROOT / "src")})
        assert r.returncode == 0, f"{section}: {r.stderr[-600:]}"
        outputs.append(r.stdout)
    assert any("committed: I want to book a table for" in o for o in outputs)


def test_files_the_readme_names_exist() -> None:
    """Every file path the README names in backquotes or links exists (in the repository or
    the package): no `runtime/end_of_turn_words.json` for a file in core/."""
    text = (ROOT / "README.md").read_text()
    names = set(re.findall(r"`([\w./-]+\.(?:json|yaml|py|md|png|svg))`", text))
    names |= set(re.findall(r"\]\(([\w./-]+\.(?:json|yaml|py|md|png|svg))\)", text))
    placeholders = {"my_profile.yaml", "snippet.py"}
    missing = [n for n in sorted(names) if n not in placeholders and "/" in n
               and not any((base / n).exists() for base in (ROOT, ROOT / "src"))]
    assert not missing


def test_no_readme_command_writes_into_the_repository_root() -> None:
    """Every output a README shell command writes (-o, --plot, --out-trace, >) goes to a
    temporary folder, not the checkout (the tune example once left grid.yaml,
    results.csv and pareto.png there)."""
    import itertools
    import shlex
    writes = []
    for _section, code in _blocks("sh"):
        tokens = shlex.split(code.replace("\\\n", " "), comments=True)
        for a, b in itertools.pairwise(tokens):
            if a in ("-o", "--output", "--plot", "--out-trace", ">"):
                writes.append(b)
    assert writes and all(w.startswith("$out/") for w in writes), writes


def test_the_tune_example_grid_is_the_documented_sweep() -> None:
    """The grid the README's tune example names exists and holds the 560 settings told."""
    from turnfsm.tuning.grid import read_grid
    grid = read_grid(ROOT / "examples" / "tuning" / "delays.yaml")
    assert len(grid.settings) == 560 and {s.profile for s in grid.settings} == {"default"}
