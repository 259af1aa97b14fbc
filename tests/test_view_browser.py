"""`turnfsm view` pages in a real headless browser (Debian's chromium through Playwright's
Python package, pointed at the system browser: nothing is downloaded): no console error,
every decision on the page, the cursor's states highlighted in the diagram, the keys."""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from turnfsm import outputs as out

ROOT = Path(__file__).resolve().parents[1]
AUDIO = ROOT / "examples" / "audio"
BROWSER = os.environ.get("TURNFSM_CHROMIUM") or shutil.which("chromium") or shutil.which(
    "chromium-browser")

pytestmark = [pytest.mark.slow,
              pytest.mark.skipif(BROWSER is None, reason="no chromium (apt-get install chromium)")]
sync_api = pytest.importorskip("playwright.sync_api")

EXAMPLES = ["hesitation", "backchannel", "barge_in"]
TRACE = ROOT / "src" / "turnfsm" / "examples" / "session.jsonl"  # replay --example's


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    """One headless chromium for the module."""
    with sync_api.sync_playwright() as p:
        b = p.chromium.launch(executable_path=BROWSER, args=["--no-sandbox"])
        yield b
        b.close()


@pytest.fixture(scope="module")
def pages(tmp_path_factory: pytest.TempPathFactory) -> dict[str, tuple[Path, Any]]:
    """Each example's page (written by the command) and its run."""
    from turnfsm.cli import build_parser, main
    from turnfsm.view.run import run_session
    folder = tmp_path_factory.mktemp("view")
    made = {}
    here = Path.cwd()
    os.chdir(ROOT)  # the pages name the examples as the README's command does
    try:
        for name in EXAMPLES:
            argv = [f"examples/audio/{name}.wav", "--words", f"examples/audio/{name}.words.json"]
            page = folder / f"{name}.html"
            assert main(["view", *argv, "-o", str(page)]) == 0
            made[name] = (page, run_session(build_parser("view").parse_args(["view", *argv])))
        page = folder / "trace.html"  # a trace: no waveform, no audio
        assert main(["view", str(TRACE), "-o", str(page)]) == 0
        made["trace"] = (page, run_session(build_parser("view").parse_args(
            ["view", str(TRACE)])))
    finally:
        os.chdir(here)
    return made


def open_page(browser: Any, page: Path) -> tuple[Any, list[str]]:
    """The page opened from file://, and the console errors and warnings it logs."""
    tab = browser.new_page(viewport={"width": 1400, "height": 1000})
    problems: list[str] = []
    tab.on("console", lambda m: problems.append(f"{m.type}: {m.text}")
           if m.type in ("error", "warning") else None)
    tab.on("pageerror", lambda e: problems.append(f"page error: {e}"))
    tab.on("request", lambda r: problems.append(f"request: {r.url}")
           if not r.url.startswith(("file:", "data:")) else None)
    tab.goto(page.as_uri())
    tab.wait_for_function("window.turnfsmView && window.turnfsmView.ready")
    return tab, problems


def active(tab: Any) -> tuple[set[str], set[str]]:
    """The states highlighted in the diagram and in the regions table."""
    diagram = set(tab.eval_on_selector_all("#diagram g.node.active title",
                                           "els => els.map(e => e.textContent)"))
    table = set(tab.eval_on_selector_all(
        "#states tr", "rows => rows.map(r => r.cells[0].textContent + '/' + "
        "(r.querySelector('.st.active') || {textContent: '?'}).textContent)"))
    return diagram, table


@pytest.mark.parametrize("name", [*EXAMPLES, "trace"])
def test_page_shows_every_decision_and_its_states(browser: Any, pages: dict[str, Any],
                                                  name: str, tmp_path: Path) -> None:
    """No console error; every end of turn, interruption and drop is listed; stepping
    onto each decision shows its why and highlights the states its step record says."""
    page, run = pages[name]
    tab, problems = open_page(browser, page)
    decisions = [(r, o) for r in run.records for o in r.outputs
                 if isinstance(o, out.EndOfTurn | out.Interruption | out.TranscriptDropped)]
    assert decisions, name
    kinds = tab.eval_on_selector_all("#events .row", "els => els.map(e => e.dataset.kind)")
    assert sorted(kinds) == sorted(
        "eot" if isinstance(o, out.EndOfTurn) else "interruption"
        if isinstance(o, out.Interruption) else "drop" for _, o in decisions)
    from turnfsm.replay.timeline import explain
    tab.keyboard.press("Home")
    previous = None
    for rec, o in decisions:
        if rec is not previous:  # one stop per step (a step may decide twice)
            tab.keyboard.press("ArrowDown")
            previous = rec
        assert tab.evaluate("document.querySelector('#events .row.current') !== null")
        assert f"step {rec.index} at" in tab.inner_text("#cursor-time")
        # the first decision of the step in words, any other among the step's outputs
        why = explain(o)
        assert why is not None
        shown = tab.inner_text("#decision").replace("\n", " ")
        outputs = tab.inner_text("#step").replace("\n", " ")
        assert why in shown or why in outputs, (name, rec.index, why, shown)
        want = {f"{a}/{b}" for a, b in rec.state}
        diagram, table = active(tab)
        assert diagram == want and table == want, (name, rec.index)
    # the screenshot at the first end of turn (else the first decision), for people to
    # look at: TURNFSM_SCREENSHOTS=DIR keeps them (docs/pictures/view_hesitation.png)
    tab.keyboard.press("Home")
    tab.keyboard.press("ArrowDown")
    keep = os.environ.get("TURNFSM_SCREENSHOTS")
    shot = (Path(keep) if keep else tmp_path) / f"view_{name}.png"
    tab.screenshot(path=str(shot))
    assert shot.stat().st_size > 10_000
    if keep:  # kept pictures as 256 colours (a third of the size, the same to the eye)
        from PIL import Image
        with Image.open(shot) as im:
            im.convert("RGB").quantize(256).save(shot, optimize=True)
    assert problems == [], problems
    tab.close()


def test_keys_and_clicks_move_the_cursor(browser: Any, pages: dict[str, Any]) -> None:
    """Arrows step, Home/End reach the ends, a click sets the time, ? opens the help,
    + and 0 zoom in and back out, all without a console error."""
    page, _ = pages["hesitation"]
    tab, problems = open_page(browser, page)
    step = "window.turnfsmView.cursor.step"
    tab.keyboard.press("Home")
    assert tab.evaluate(step) == 0
    tab.keyboard.press("ArrowRight")
    tab.keyboard.press("ArrowRight")
    assert tab.evaluate(step) == 2
    tab.keyboard.press("ArrowLeft")
    assert tab.evaluate(step) == 1
    tab.keyboard.press("End")
    n = tab.evaluate("JSON.parse(document.getElementById('data').textContent).steps.length")
    assert tab.evaluate(step) == n - 1
    tab.keyboard.press("ArrowUp")  # the last decision before the end
    assert tab.evaluate(step) < n - 1
    box = tab.locator("#canvas").bounding_box()
    duration = tab.evaluate("window.turnfsmView.view.t1")
    x = 118 + 0.5 * (box["width"] - 118)
    tab.mouse.click(box["x"] + x, box["y"] + 50)
    regions = tab.evaluate("JSON.parse(document.getElementById('data').textContent).regions")
    last = len(regions) - 1  # the timeline's last row (rows: level, speech, transcripts,
    # decisions, then one per region, 4 px apart, as page.js lays them out)
    assert abs(tab.evaluate("window.turnfsmView.cursor.t") - duration / 2) < 0.05
    # a drag moves the cursor with the mouse, onto the step at or before it
    tab.mouse.move(box["x"] + x, box["y"] + 50)
    tab.mouse.down()
    tab.mouse.move(box["x"] + 118 + 0.9 * (box["width"] - 118), box["y"] + 60, steps=5)
    tab.mouse.up()
    t = tab.evaluate("window.turnfsmView.cursor.t")
    assert abs(t - 0.9 * duration) < 0.05
    assert tab.evaluate(f"window.turnfsmView.stepAt({t})") == tab.evaluate(step)
    tab.mouse.move(box["x"] + x, box["y"] + 4 + 34 + 4 + 30 + 4 + 62 + 4 + 56 + 4 + 15 * last + 5)
    assert tab.is_visible("#tip")
    assert tab.inner_text("#tip").startswith(regions[last]["name"] + ": ")
    assert tab.is_hidden("#help")
    tab.keyboard.press("?")
    assert tab.is_visible("#help") and "previous / next decision" in tab.inner_text("#help")
    tab.keyboard.press("Escape")
    tab.keyboard.press("+")
    assert tab.evaluate("window.turnfsmView.view.t1 - window.turnfsmView.view.t0") < duration
    tab.keyboard.press("0")
    assert tab.evaluate("window.turnfsmView.view.t1") == duration
    assert problems == [], problems
    tab.close()


def test_audio_plays_from_the_cursor(browser: Any, pages: dict[str, Any]) -> None:
    """The page's audio decodes; space plays from the cursor and the cursor follows."""
    page, _ = pages["barge_in"]
    tab, problems = open_page(browser, page)
    tab.wait_for_function("document.getElementById('audio').readyState >= 1")
    assert tab.evaluate("document.getElementById('audio').duration") > 1.0
    tab.evaluate("window.turnfsmView.setCursor(1.0)")
    tab.keyboard.press(" ")
    tab.wait_for_timeout(400)
    t = tab.evaluate("window.turnfsmView.cursor.t")
    playing = tab.evaluate("!document.getElementById('audio').paused")
    tab.keyboard.press(" ")
    assert playing and t > 1.0, t
    assert problems == [], problems
    tab.close()
