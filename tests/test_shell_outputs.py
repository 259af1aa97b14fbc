"""The shells (runtime, telemetry, adapters, and the replay, host and testing drivers) follow
the engine through its outputs and its queries (``awaiting_answer``,
``model_request_pending``, ``model_request_outstanding``, ``timers``), never through the
chart's region or state names: a profile that renames or splits a region cannot silently
change what a shell does (checked on the source with ``ast``). Plots and inspector pages that
draw the chart itself may read states; they live outside these folders."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from turnfsm.core.profiles import get_profile

SRC = Path(__file__).resolve().parents[1] / "src" / "turnfsm"
SHELLS = ("runtime", "telemetry", "adapters", "replay", "host", "testing")

#: engine/record members that expose the chart's configuration
FORBIDDEN_CALLS = {"in_state", "state"}  # engine.in_state(...), engine.state()
FORBIDDEN_ATTRIBUTES = {"moved", "regions", "state"}  # StepRecord.moved and .state, chart.regions
#: (file relative to src/turnfsm, line text fragment) -> why it may read a state; empty: none
EXCEPTIONS: dict[tuple[str, str], str] = {}


def _names() -> tuple[set[str], set[str]]:
    """Region names and ``region.state`` names of both built-in profiles."""
    regions: set[str] = set()
    dotted: set[str] = set()
    for name in ("livekit", "default"):
        for r in get_profile(name).chart.regions:
            regions.add(r.name)
            dotted.update(f"{r.name}.{s}" for s in r.states)
    return regions, dotted


def _files() -> list[Path]:
    return sorted(p for d in SHELLS for p in (SRC / d).rglob("*.py"))


def _names_region(node: ast.AST, regions: set[str]) -> bool:
    return isinstance(node, ast.Constant) and node.value in regions


def _reads(path: Path, regions: set[str], dotted: set[str]) -> list[str]:
    """Every place ``path`` reads a region or state name: a call of ``in_state``/``state``,
    a ``.moved``/``.state``/``.regions`` attribute, a region name given to a helper or mapping named
    for states, or a string naming ``region.state`` (an ``in:`` literal included). A bare
    region name elsewhere is no read: "detector", "commit", "mode" are also keys, kinds
    and words of the trace format and the frameworks."""
    text = path.read_text()
    lines = text.splitlines()
    tree = ast.parse(text, str(path))
    docstrings = {id(n.body[0].value) for n in ast.walk(tree)
                  if isinstance(n, (ast.Module, ast.ClassDef, ast.FunctionDef,
                                    ast.AsyncFunctionDef))
                  and n.body and isinstance(n.body[0], ast.Expr)
                  and isinstance(n.body[0].value, ast.Constant)}
    found: list[str] = []
    for node in ast.walk(tree):
        what = None
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and \
                node.func.attr in FORBIDDEN_CALLS:
            what = f".{node.func.attr}()"
        elif isinstance(node, ast.Attribute) and node.attr in FORBIDDEN_ATTRIBUTES:
            what = f".{node.attr}"
        elif isinstance(node, ast.Call) and "state" in ast.unparse(node.func).lower() and \
                any(_names_region(a, regions) for a in node.args):
            what = "a region name passed to a state helper"  # e.g. _state(r, "turn")
        elif isinstance(node, ast.Subscript) and "state" in ast.unparse(node.value).lower() \
                and _names_region(node.slice, regions):
            what = "a region name indexing states"  # e.g. engine.state()["turn"]
        elif isinstance(node, ast.Constant) and isinstance(node.value, str) and \
                id(node) not in docstrings:
            v = node.value
            if v in dotted or v.startswith(("in: ", "not in: ")):
                what = repr(v)
        if what is not None:
            rel = str(path.relative_to(SRC))
            line = lines[node.lineno - 1].strip()
            if not any(rel == f and frag in line for (f, frag) in EXCEPTIONS):
                found.append(f"{rel}:{node.lineno}: {what} in {line}")
    return found


def test_no_shell_reads_a_region_or_state_name() -> None:
    """No module under runtime/, telemetry/, adapters/, replay/, host/ or testing/ reads
    the chart's regions or states (EXCEPTIONS lists any, with its reason)."""
    regions, dotted = _names()
    assert {"turn", "gate", "user_speech", "detector"} <= regions  # the names are real
    found = [hit for p in _files() for hit in _reads(p, regions, dotted)]
    assert not found, "\n".join(found)


@pytest.mark.parametrize("source", [
    'def f(engine):\n    return engine.in_state("turn", "predicting")\n',
    "def f(engine):\n    return engine.state()\n",
    "def f(r):\n    return [m for m in r.moved]\n",
    'def f(r):\n    return _state(r, "gate")\n',
    'def f(states):\n    return states["user_speech"]\n',
    'X = "turn.delivering"\n',
])
def test_the_scan_finds_each_kind_of_read(tmp_path: Path, source: str) -> None:
    """The scan fails on each kind of read it forbids (a check that can fail)."""
    regions, dotted = _names()
    p = tmp_path / "shell.py"
    p.write_text(source)
    rel_src = SRC
    try:
        globals()["SRC"] = tmp_path
        assert _reads(p, regions, dotted)
    finally:
        globals()["SRC"] = rel_src


def test_the_scan_passes_a_query_and_a_docstring(tmp_path: Path) -> None:
    """Engine queries and prose that names a region are no reads."""
    regions, dotted = _names()
    p = tmp_path / "shell.py"
    p.write_text('"""The turn region."""\n\ndef f(engine):\n    """gate"""\n'
                 "    return engine.awaiting_answer or engine.model_request_outstanding\n")
    globals_src = SRC
    try:
        globals()["SRC"] = tmp_path
        assert _reads(p, regions, dotted) == []
    finally:
        globals()["SRC"] = globals_src
