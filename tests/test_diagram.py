"""Diagrams of the state chart (turnfsm.diagram, `turnfsm diagram`) and the committed set.

Goldens for the fixture chart live next to it in tests/fixtures/; refresh them with
``TURNFSM_UPDATE_GOLDENS=1 pytest tests/test_diagram.py`` after a deliberate change. The
committed diagrams under diagrams/ are refreshed with ``turnfsm diagram --all -o diagrams/``.
The Mermaid check needs ``npm ci`` in tests/mermaid_check/ (skipped without node or it).
"""

from __future__ import annotations

import difflib
import json
import os
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from turnfsm.chart import Chart, load_chart
from turnfsm.chart.diagram import (
    SELF_MARK,
    TIMER_MARK,
    DiagramError,
    _mm_text,
    diagram_files,
    render_png,
    render_svg,
    to_dot,
    to_mermaid,
    write_diagrams,
)
from turnfsm.cli import main
from turnfsm.core import read_chart

ROOT = Path(__file__).resolve().parents[1]
DIAGRAMS = ROOT / "diagrams"
FIXTURES = Path(__file__).resolve().parent / "fixtures"
TINY = FIXTURES / "tiny_chart.yaml"
MERMAID_CHECK = Path(__file__).resolve().parent / "mermaid_check"
REFRESH = "turnfsm diagram --all -o diagrams/"
UPDATE_GOLDENS = "TURNFSM_UPDATE_GOLDENS"

needs_dot = pytest.mark.skipif(shutil.which("dot") is None,
                               reason="Graphviz's dot is not installed (apt-get install graphviz)")


def _tiny() -> Chart:
    return load_chart(TINY.read_text(encoding="utf-8"), TINY.name)


def _repo_chart() -> Chart:
    return read_chart(ROOT / "states.yaml")


def _problems(chart: Chart, root: Path) -> list[str]:
    """How the diagram set under ``root`` differs from what ``chart`` renders: text files
    (mmd, dot) by content, SVG files by presence."""
    expected = diagram_files(chart, svg=False)
    problems = []
    for rel, data in sorted(expected.items()):
        path = root / rel
        if not path.is_file():
            problems.append(f"missing    {rel}")
        elif path.read_bytes() != data:
            problems.append(f"out of date {rel}")
        svg = path.with_suffix(".svg")
        if rel.endswith(".dot") and not svg.is_file():
            problems.append(f"missing    {svg.relative_to(root).as_posix()}")
    for path in sorted(root.rglob("*")):
        rel = path.relative_to(root).as_posix()
        if rel.startswith("profiles/"):
            continue  # the profiles' own sets (checked against their charts)
        if path.suffix in (".mmd", ".dot") and rel not in expected:
            problems.append(f"left over  {rel}")
        if path.suffix == ".svg" and rel[:-4] + ".dot" not in expected:
            problems.append(f"left over  {rel}")
    return problems


# -- (a) the committed diagrams ------------------------------------------------------------


def test_committed_diagrams_match_every_profile() -> None:
    """diagrams/profiles/NAME/ holds what each profile other than livekit renders to now."""
    from turnfsm.core.profiles import PROFILES, get_profile
    for name in PROFILES:
        if name == "livekit":
            continue
        problems = _problems(get_profile(name).chart, DIAGRAMS / "profiles" / name)
        assert not problems, (
            f"diagrams/profiles/{name}/ is out of date:\n  " + "\n  ".join(problems)
            + f"\nRefresh with:\n    {REFRESH}")


def test_committed_diagrams_match_states_yaml() -> None:
    """diagrams/ holds exactly the Mermaid and DOT text that states.yaml renders to now."""
    problems = _problems(_repo_chart(), DIAGRAMS)
    assert not problems, (
        "diagrams/ is out of date with states.yaml:\n  " + "\n  ".join(problems)
        + f"\nRefresh the committed diagrams from the repository root with:\n    {REFRESH}\n"
        "(or: python -m turnfsm.cli diagram --all -o diagrams/), then commit diagrams/.")


def _hand_edited_states_yaml() -> str:
    doc = yaml.safe_load((ROOT / "states.yaml").read_text(encoding="utf-8"))
    doc["events"]["review_probe"] = {"internal": True, "doc": "added by hand"}
    doc["regions"].append({
        "name": "review_probe",
        "doc": "a region added by hand",
        "initial": "idle",
        "states": {"idle": {"doc": "before"}, "probed": {"doc": "after"}},
        "transitions": [{"event": "review_probe", "source": "idle", "dest": "probed"}],
        "ignore_in": {"probed": ["review_probe"]},
    })
    # and in an existing region (the first), a new state entered by a new transition
    chart = _repo_chart()
    first = doc["regions"][0]
    name = first["name"]
    alphabet = {t.event for t in chart.transitions if t.region == name}
    alphabet |= {e for (r, _s, e) in chart.ignored if r == name}
    first["transitions"].append({"event": "review_probe", "source": first["initial"],
                                 "dest": "probe_state"})
    ign = first.get("ignore_in") or {}
    first["ignore_in"] = ign
    for s in first["states"]:
        if s != first["initial"]:
            ign[s] = [*(ign.get(s) or []), "review_probe"]
    first["states"]["probe_state"] = {"doc": "added by hand"}
    ign["probe_state"] = sorted(alphabet | {"review_probe"})
    return yaml.safe_dump(doc, sort_keys=False, allow_unicode=True, width=200)


def test_hand_edited_chart_makes_the_committed_diagrams_stale() -> None:
    """A chart edited by hand (new region, state, transitions) makes diagrams/ stale."""
    # so the staleness check above fails when states.yaml changes without a refresh
    edited = load_chart(_hand_edited_states_yaml(), "states.yaml")
    problems = _problems(edited, DIAGRAMS)
    first = edited.regions[0].name
    assert "out of date chart.mmd" in problems
    assert "out of date chart.dot" in problems
    assert f"out of date regions/{first}.mmd" in problems
    assert f"out of date regions/{first}.dot" in problems
    assert "missing    regions/review_probe.mmd" in problems
    assert "probe_state" in to_mermaid(edited) and "probe_state" in to_dot(edited)
    assert "probe_state" not in (DIAGRAMS / "chart.mmd").read_text(encoding="utf-8")


def test_write_diagrams_removes_files_of_regions_that_are_gone(tmp_path: Path) -> None:
    """--all rewrites the set and deletes the files of a region the chart no longer has."""
    stale = tmp_path / "regions" / "renamed_region.mmd"
    stale.parent.mkdir(parents=True)
    stale.write_text("old", encoding="utf-8")
    keep = tmp_path / "regions" / "notes.txt"
    keep.write_text("not a diagram", encoding="utf-8")
    written, removed = write_diagrams(_tiny(), tmp_path, svg=False)
    assert removed == [stale] and not stale.exists() and keep.exists()
    assert sorted(p.relative_to(tmp_path).as_posix() for p in written) == [
        "chart.dot", "chart.mmd", "regions/turn.dot", "regions/turn.mmd",
        "regions/user_speech.dot", "regions/user_speech.mmd"]


# -- (b) goldens for the fixture chart ------------------------------------------------------


def _check_golden(name: str, text: str) -> None:
    path = FIXTURES / name
    if os.environ.get(UPDATE_GOLDENS) == "1":
        path.write_text(text, encoding="utf-8")
    expected = path.read_text(encoding="utf-8") if path.is_file() else ""
    if text != expected:
        diff = "".join(difflib.unified_diff(expected.splitlines(True), text.splitlines(True),
                                            f"tests/fixtures/{name} (golden)", "rendered"))
        pytest.fail(f"{name} differs from the golden:\n{diff}\nIf the change is intended: "
                    f"{UPDATE_GOLDENS}=1 pytest tests/test_diagram.py")


@pytest.mark.parametrize(("name", "region"), [("tiny_chart.mmd", None),
                                              ("tiny_chart.turn.mmd", "turn")])
def test_mermaid_golden(name: str, region: str | None) -> None:
    """The Mermaid text of the fixture chart (whole and one region) is exactly the golden."""
    _check_golden(name, to_mermaid(_tiny(), region))


@pytest.mark.parametrize(("name", "region"), [("tiny_chart.dot", None),
                                              ("tiny_chart.turn.dot", "turn")])
def test_dot_golden(name: str, region: str | None) -> None:
    """The DOT text of the fixture chart (whole and one region) is exactly the golden."""
    _check_golden(name, to_dot(_tiny(), region))


def test_output_does_not_depend_on_transition_order() -> None:
    """Reordering the transitions in the YAML leaves both texts unchanged (sorted output)."""
    doc = yaml.safe_load(TINY.read_text(encoding="utf-8"))
    for region in doc["regions"]:
        region["transitions"].reverse()
    shuffled = load_chart(yaml.safe_dump(doc, sort_keys=False), TINY.name)
    assert to_mermaid(shuffled) == to_mermaid(_tiny())
    assert to_dot(shuffled) == to_dot(_tiny())


def test_parallel_transitions_share_one_arrow() -> None:
    """Transitions between the same two states are one arrow with one label line each."""
    dot = to_dot(_tiny(), "user_speech")
    edges = [ln for ln in dot.splitlines()
             if '"user_speech/silent" -> "user_speech/speaking"' in ln]
    assert len(edges) == 1
    assert ("vad_start [vad_live] / report_vad_start\\lspeech_onset / report_stt_start\\l"
            in edges[0])
    mmd = to_mermaid(_tiny(), "user_speech")
    assert mmd.count("user_speech__silent --> user_speech__speaking") == 1


def test_timers_internal_transitions_and_self_loops_are_marked() -> None:
    """Timer arrows, internal transitions and self-loops are each drawn distinctly."""
    # timer arrows carry the clock mark (dashed in DOT); internal transitions sit in the state
    # box; self-transitions are loop arrows in DOT and ↻ lines in Mermaid
    dot = to_dot(_tiny())
    timer = next(ln for ln in dot.splitlines() if '"turn/waiting" -> "turn/delivering"' in ln)
    assert f"{TIMER_MARK} eou_deadline / deliver_end_of_turn" in timer
    assert "style=dashed" in timer
    assert dot.count("style=dashed") == 1
    assert '"user_speech/speaking" -> "user_speech/speaking"' in dot
    assert "close / wait_due_now&#160;&#160;<BR" in dot  # inside the waiting box
    mmd = to_mermaid(_tiny())
    assert f"turn__waiting --> turn__delivering : {TIMER_MARK} eou_deadline" in mmd
    assert "turn__waiting : close / wait_due_now" in mmd
    assert f"user_speech__speaking : {SELF_MARK} speech_onset / report_stt_start" in mmd
    assert "user_speech__speaking --> user_speech__speaking" not in mmd


def test_real_chart_shows_every_region_state_and_transition() -> None:
    """Every region, state, (source, dest) arrow and transition event of the chart is drawn."""
    # each region is a cluster, each state a node, each (source, dest) pair one arrow, and
    # every transition's event (and guard) appears in its region's DOT and Mermaid text
    chart = _repo_chart()
    for region in chart.regions:
        dot = to_dot(chart, region.name)
        mmd = to_mermaid(chart, region.name)
        assert f'subgraph "cluster_{region.name}"' in dot
        for s in region.states:
            assert f'"{region.name}/{s}" [label=' in dot
            assert f'as {region.name}__{s}' in mmd
        assert f'"{region.name}/__initial" -> "{region.name}/{region.initial}";' in dot
        assert f"[*] --> {region.name}__{region.initial}" in mmd
        ts = [t for t in chart.transitions if t.region == region.name]
        pairs = {(t.source, t.dest) for t in ts if t.dest is not None}
        arrows = [ln for ln in dot.splitlines() if " -> " in ln and "__initial" not in ln]
        assert len(arrows) == len(pairs)
        for t in ts:
            assert t.event in dot and t.event in mmd
            for g in t.guards:  # Mermaid writes a literal's colon as an entity (in#58; r.s)
                assert str(g) in dot and _mm_text(str(g)) in mmd
    whole = to_dot(chart)
    assert whole.count('subgraph "cluster_') == len(chart.regions)


def test_unknown_region_names_the_valid_ones() -> None:
    """Asking for a region the chart lacks raises a DiagramError listing its regions."""
    with pytest.raises(DiagramError, match=r"unknown region 'nope' \(regions: user_speech, turn\)"):
        to_mermaid(_tiny(), "nope")
    with pytest.raises(DiagramError, match="unknown region 'nope'"):
        to_dot(_tiny(), "nope")


def test_missing_dot_gives_a_clear_error() -> None:
    """Rendering without Graphviz says which executable is missing and how to install it."""
    with pytest.raises(DiagramError, match=r"'no-such-dot-binary' executable was not found.*"
                                           r"apt-get install graphviz"):
        render_svg(to_dot(_tiny()), dot="no-such-dot-binary")


@needs_dot
def test_render_svg_and_png() -> None:
    """render_svg/render_png return an SVG document and a PNG image from the DOT text."""
    dot = to_dot(_tiny())
    svg = render_svg(dot)
    assert svg.lstrip().startswith(b"<?xml") and b"<svg" in svg
    assert b"cluster_turn" in svg and f"{TIMER_MARK} eou_deadline".encode() in svg
    assert render_png(dot).startswith(b"\x89PNG\r\n\x1a\n")


@needs_dot
def test_invalid_dot_text_is_reported() -> None:
    """A DOT syntax error from Graphviz becomes a DiagramError with dot's message."""
    with pytest.raises(DiagramError, match="syntax error"):
        render_svg("digraph { a -> }")


# -- (c) Mermaid validity, with the real mermaid package ------------------------------------


def _mermaid_check(paths: list[Path]) -> tuple[int, list[dict[str, Any]]]:
    node = shutil.which("node")
    if node is None:
        pytest.skip("node is not installed")
    if not (MERMAID_CHECK / "node_modules" / "mermaid" / "package.json").is_file():
        pytest.skip("the mermaid package is not installed: cd tests/mermaid_check && npm ci")
    proc = subprocess.run([node, str(MERMAID_CHECK / "check.mjs"), *map(str, paths)],
                          capture_output=True, text=True, timeout=300, check=False)
    results = [json.loads(ln) for ln in proc.stdout.splitlines() if ln.startswith("{")]
    assert len(results) == len(paths), proc.stderr
    return proc.returncode, results


def _mermaid_sources(tmp_path: Path) -> Iterator[Path]:
    yield from sorted(DIAGRAMS.rglob("*.mmd"))
    yield from sorted(FIXTURES.glob("*.mmd"))
    fresh = diagram_files(_repo_chart(), svg=False)
    for rel, data in sorted(fresh.items()):
        if rel.endswith(".mmd"):
            path = tmp_path / "fresh" / rel
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(data)
            yield path


def test_mermaid_package_parses_every_diagram(tmp_path: Path) -> None:
    """mermaid.parse accepts the committed, golden and freshly rendered Mermaid files."""
    paths = list(_mermaid_sources(tmp_path))
    assert any(p.name == "chart.mmd" for p in paths)
    code, results = _mermaid_check(paths)
    bad = [f"{r['file']}: {r.get('error')}" for r in results if not r["ok"]]
    assert code == 0 and not bad, "Mermaid could not parse:\n" + "\n".join(bad)
    assert {r["type"] for r in results} == {"stateDiagram"}


def test_mermaid_reads_the_chart_as_drawn(tmp_path: Path) -> None:
    """Mermaid's own graph of the chart text has exactly the chart's states and arrows."""
    # every region, state, initial arrow, arrow between states and internal transition line
    # the chart declares, and no other arrow between states
    for chart in (_tiny(), _repo_chart()):
        path = tmp_path / f"{Path(chart.source).stem}.mmd"
        path.write_text(to_mermaid(chart), encoding="utf-8")
        code, [result] = _mermaid_check([path])
        assert code == 0, result.get("error")
        nodes = {n["id"]: n for n in result["nodes"]}
        where: dict[str, tuple[str, str]] = {}
        for number, region in enumerate(chart.regions, start=1):
            [group] = [n for n in result["nodes"] if n["label"] == f"{number}. {region.name}"]
            states = {n["label"]: n for n in result["nodes"] if n["parent"] == group["id"]
                      and n["shape"].startswith("rect")}
            assert sorted(states) == sorted(region.states)
            for s, n in states.items():
                where[n["id"]] = (region.name, s)
            starts = [e for e in result["edges"] if nodes[e["start"]]["shape"] == "stateStart"
                      and nodes[e["start"]]["parent"] == group["id"]]
            assert [where.get(e["end"]) for e in starts] == [(region.name, region.initial)]
            for t in chart.transitions:
                if t.region == region.name and (t.dest is None or t.dest == t.source):
                    desc = " ".join(states[t.source]["description"])
                    assert t.event in desc, (region.name, t.source, t.event)
        drawn = {(*where[e["start"]], where[e["end"]][1]) for e in result["edges"]
                 if e["start"] in where and e["end"] in where}
        declared = {(t.region, t.source, t.dest) for t in chart.transitions
                    if t.dest is not None and t.dest != t.source}
        assert drawn == declared


def test_mermaid_check_rejects_broken_text(tmp_path: Path) -> None:
    """The checker really parses: malformed state-diagram text is reported as an error."""
    bad = tmp_path / "bad.mmd"
    text = to_mermaid(_tiny()).replace(" --> ", " -> ", 1)
    bad.write_text(text, encoding="utf-8")
    code, [result] = _mermaid_check([bad])
    assert code == 1 and not result["ok"] and "error on line" in result["error"]


# -- (d) the command line -------------------------------------------------------------------


def _run(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    code = main(argv)
    out, err = capsys.readouterr()
    return code, out, err


@pytest.mark.parametrize(("fmt", "render"), [("mermaid", to_mermaid), ("dot", to_dot)])
@pytest.mark.parametrize("region", [None, "turn"])
def test_cli_text_formats(fmt: str, render: Any, region: str | None, tmp_path: Path,
                          capsys: pytest.CaptureFixture[str]) -> None:
    """`turnfsm diagram --format mermaid|dot` writes the same text as the library, to -o."""
    out = tmp_path / f"tiny.{fmt}"
    argv = ["diagram", "--chart", str(TINY), "--no-engine-check", "--format", fmt, "-o", str(out)]
    if region:
        argv += ["--region", region]
    code, _, err = _run(argv, capsys)
    assert code == 0, err
    assert out.read_text(encoding="utf-8") == render(_tiny(), region)


def test_cli_defaults_to_mermaid_on_stdout(capsys: pytest.CaptureFixture[str]) -> None:
    """Without --format or -o the Mermaid text of the chart goes to standard output."""
    code, out, err = _run(["diagram", "--chart", str(TINY), "--no-engine-check"], capsys)
    assert code == 0, err
    assert out.startswith("stateDiagram-v2\n")


@needs_dot
@pytest.mark.parametrize(("fmt", "magic"), [("svg", b"<svg"), ("png", b"\x89PNG")])
def test_cli_image_formats(fmt: str, magic: bytes, tmp_path: Path,
                           capsys: pytest.CaptureFixture[str]) -> None:
    """`turnfsm diagram --format svg|png -o FILE` writes the image Graphviz draws."""
    out = tmp_path / "sub" / f"tiny.{fmt}"
    code, _, err = _run(["diagram", "--chart", str(TINY), "--no-engine-check", "--format", fmt,
                         "--region", "turn", "-o", str(out)], capsys)
    assert code == 0, err
    assert magic in out.read_bytes()[:400]


@needs_dot
def test_cli_all_writes_the_set(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """`turnfsm diagram --all -o DIR` writes chart.* and regions/<region>.* (mmd, dot, svg)."""
    code, out, err = _run(["diagram", "--chart", str(TINY), "--no-engine-check", "--all",
                           "-o", str(tmp_path)], capsys)
    assert code == 0, err
    assert "wrote 9 files" in out
    names = sorted(p.relative_to(tmp_path).as_posix() for p in tmp_path.rglob("*.*"))
    assert names == [f"{stem}.{ext}" for stem in ("chart", "regions/turn", "regions/user_speech")
                     for ext in ("dot", "mmd", "svg")]
    assert not _problems(_tiny(), tmp_path)


def test_cli_unknown_region_exits_2(capsys: pytest.CaptureFixture[str]) -> None:
    """An unknown --region is a usage error (exit 2) naming the chart's regions."""
    code, out, err = _run(["diagram", "--chart", str(TINY), "--no-engine-check",
                           "--region", "nope"], capsys)
    assert code == 2 and not out
    assert "unknown region 'nope'" in err and "user_speech, turn" in err


def test_cli_validates_charts_against_the_engine(capsys: pytest.CaptureFixture[str]) -> None:
    """Without --no-engine-check a chart the engine cannot run is refused (exit 1)."""
    code, out, err = _run(["diagram", "--chart", str(TINY)], capsys)
    assert code == 1 and not out
    assert "tiny_chart.yaml" in err and "the engine needs" in err


def test_cli_usage_errors(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    """--all needs -o and takes no --format/--region; a missing chart file is reported."""
    assert _run(["diagram", "--all"], capsys)[0] == 2
    assert _run(["diagram", "--all", "--format", "dot", "-o", str(tmp_path)], capsys)[0] == 2
    code, _, err = _run(["diagram", "--chart", str(tmp_path / "none.yaml"),
                         "--no-engine-check"], capsys)
    assert code == 1 and "cannot read the chart" in err


def test_cli_default_chart_is_states_yaml(capsys: pytest.CaptureFixture[str],
                                          monkeypatch: pytest.MonkeyPatch) -> None:
    """Without --chart the default profile's chart is drawn; --profile livekit draws the
    repository's states.yaml as written."""
    from turnfsm.core.profiles import get_profile
    code, out, err = _run(["diagram", "--format", "dot", "--region", "turn"], capsys)
    assert code == 0, err
    assert out == to_dot(get_profile("default").chart, "turn")
    code, out, err = _run(["diagram", "--profile", "livekit", "--format", "dot", "--region",
                           "turn"], capsys)
    assert code == 0, err
    assert out == to_dot(_repo_chart(), "turn")
