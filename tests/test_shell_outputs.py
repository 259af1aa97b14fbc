"""The shells (runtime, telemetry, adapters, and the replay, host and testing drivers) follow
the engine through its outputs and its queries (``awaiting_answer``,
``model_request_pending``, ``model_request_outstanding``, ``timers``), never through the
chart's region or state names: a profile that renames or splits a region cannot silently
change what a shell does (checked on the source with ``ast``). Plots and inspector pages that
draw the chart itself may read states; they live outside these folders."""

from __future__ import annotations

import ast
from pathlib import Path
from typing import Any

import pytest

from turnfsm import Engine, EngineOptions
from turnfsm import events as ev
from turnfsm import outputs as out
from turnfsm.core.profiles import get_profile
from turnfsm.testing import ScriptedAnswers, VirtualHost

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


# -- the outputs the shells read instead --------------------------------------------------

def _host(profile: str = "livekit", **options: Any) -> VirtualHost:
    return VirtualHost(Engine(EngineOptions(**options), profile=profile),
                       ScriptedAnswers(probability=0.2))


def test_new_speech_during_a_wait_cancels_it_by_id() -> None:
    """A start of speech while the model is asked emits WaitCancelled with the request's id,
    once, and no EndOfTurn comes of that wait."""
    h = _host(turn_detection="model")
    h.at(1.0, ev.VadStartOfSpeech(t=1.0, speech_duration=0.2))
    h.at(1.9, ev.SttFinal(t=1.9, text="hello", language="en", confidence=0.9))
    h.at(2.0, ev.VadEndOfSpeech(t=2.0, silence_duration=0.2))
    [req] = h.of(out.EouModelRequest)
    assert h.of(out.WaitCancelled) == []
    h.at(2.05, ev.VadStartOfSpeech(t=2.05, speech_duration=0.05))
    assert [(o.t, o.wait_id) for o in h.of(out.WaitCancelled)] == [(2.05, req.request_id)]


def test_the_user_turn_opens_once_at_its_onset_and_the_delivery_names_its_stt_ids() -> None:
    """UserTurnOpened comes once per turn, at its first sign, with the speech onset; the
    EndOfTurn carries the STT request ids the turn heard, in order, once each."""
    h = _host(turn_detection="vad")
    h.at(1.0, ev.VadStartOfSpeech(t=1.0, speech_duration=0.2))
    h.at(1.5, ev.SttInterim(t=1.5, text="hel", request_id="a"))
    h.at(1.9, ev.SttFinal(t=1.9, text="hello", language="en", confidence=0.9,
                          request_id="a"))
    h.at(1.95, ev.SttUsage(t=1.95, request_id="b"))
    h.at(2.0, ev.VadEndOfSpeech(t=2.0, silence_duration=0.2))
    h.at(5.0)
    [opened] = h.of(out.UserTurnOpened)
    [start] = h.of(out.StartOfSpeech)
    assert (opened.t, opened.started_at) == (1.0, start.speech_start_time)
    assert h.outputs.index(opened) < h.outputs.index(start)
    [eot] = h.of(out.EndOfTurn)
    assert eot.stt_request_ids == ("a", "b")
    h.at(6.0, ev.VadStartOfSpeech(t=6.0, speech_duration=0.2))
    assert [o.t for o in h.of(out.UserTurnOpened)] == [1.0, 6.0]  # the next turn's


def test_a_dropped_backchannel_reports_its_turn_dropped_after_the_drop() -> None:
    """Default profile: a wordless backchannel over the agent opens a turn that is dropped:
    UserTurnDropped follows its TranscriptDropped (reason backchannel), and no EndOfTurn."""
    h = _host("default", stt=False)
    h.at(0.0, ev.AgentSpeechStarted(t=0.0))
    h.at(2.1, ev.VadStartOfSpeech(t=2.1, speech_duration=0.1))
    h.at(2.3, ev.VadInferenceDone(t=2.3, raw_accumulated_speech=0.3))
    h.at(2.6, ev.VadEndOfSpeech(t=2.6, silence_duration=0.2))
    h.at(6.0, ev.AgentSpeechEnded(t=6.0))
    h.at(9.0)
    [drop] = h.of(out.TranscriptDropped)
    [gone] = h.of(out.UserTurnDropped)
    assert gone.reason == drop.reason == "backchannel"
    assert h.outputs.index(drop) < h.outputs.index(gone)
    assert not h.of(out.EndOfTurn)
