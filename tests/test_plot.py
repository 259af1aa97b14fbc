"""The `listen --plot` picture: labels cut with an ellipsis, inside the frame, and a legend
for every colour of every panel."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[1]
pytest.importorskip("matplotlib")


def test_labels_wrap_and_mark_a_cut_with_an_ellipsis() -> None:
    """A long label wraps on words, and a cut one ends with an ellipsis, never mid-word."""
    from turnfsm.audio.plot import label
    assert label("just the two of us", 30) == "just the two of us"
    two = label("Hi I would like to book a table for tonight", 30)
    assert two == "Hi I would like to book a\ntable for tonight"
    cut = label("my internet stopped working this morning I restarted the router twice", 30)
    lines = cut.split("\n")
    assert len(lines) == 2 and all(len(x) <= 30 for x in lines) and cut.endswith("\u2026")
    text = "my internet stopped working this morning I restarted the router twice"
    assert all(w in text.split(" ") for w in cut.rstrip("\u2026").split())  # whole words


_FIGURES: dict[str, Any] = {}


def _figure(tmp_path: Path, name: str) -> Any:
    """Run listen --plot on a labelled dialogue and keep the figure it draws (once per
    dialogue for the module)."""
    if name in _FIGURES:
        return _FIGURES[name]
    import turnfsm.audio.plot as plot
    from turnfsm.cli import main
    kept: list[Any] = []

    def keep(audio: Any, trace: Any, lines: Any, records: Any, path: str) -> None:
        kept.append(plot.draw_session(audio, trace, lines, records))
    wav = ROOT / "examples" / "dialogues" / f"{name}.wav"
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(plot, "plot_session", keep)
        assert main(["listen", str(wav), "--words", str(wav.with_suffix(".words.json")), "-q",
                     "--plot", str(tmp_path / "p.png")]) == 0
    fig = kept[0]
    fig.canvas.draw()
    _FIGURES[name] = fig
    return fig


@pytest.mark.parametrize("name", ["13_monologue", "09_barge_in_middle"])
def test_every_label_stays_inside_its_panel(name: str, tmp_path: Path) -> None:
    """Every text drawn in a panel (transcripts, decisions, ends of turn, states) lies
    inside the panel's frame, left to right; an end of turn's long transcript is cut with
    an ellipsis."""
    fig = _figure(tmp_path, name)
    renderer = fig.canvas.get_renderer()
    texts = 0
    for ax in fig.axes:
        box = ax.get_window_extent(renderer)
        for t in ax.texts:
            e = t.get_window_extent(renderer)
            texts += 1
            assert box.x0 - 1 <= e.x0 and e.x1 <= box.x1 + 1, (name, t.get_text())
    assert texts >= 3
    if name == "13_monologue":
        eot = [t.get_text() for ax in fig.axes for t in ax.texts
               if t.get_text().startswith("END OF TURN")]
        assert eot and all(x.endswith("\u2026'") or x.endswith("\u2026") for x in eot), eot


def test_every_colour_of_every_panel_is_in_its_legend(tmp_path: Path) -> None:
    """Each panel has a legend, and every bar or line colour drawn in it has an entry."""
    from matplotlib.colors import to_hex
    from matplotlib.lines import Line2D
    from matplotlib.patches import Rectangle
    fig = _figure(tmp_path, "09_barge_in_middle")
    for ax in fig.axes:
        legend = ax.get_legend()
        assert legend is not None, ax.get_ylabel()
        handles = legend.legend_handles
        known = {to_hex(h.get_facecolor()) for h in handles if hasattr(h, "get_facecolor")} | \
            {to_hex(h.get_color()) for h in handles if isinstance(h, Line2D)}
        drawn = {to_hex(p.get_facecolor()) for p in ax.patches if isinstance(p, Rectangle)}
        drawn |= {to_hex(x.get_color()) for x in ax.lines}
        drawn -= {to_hex("#5d4037")}  # the anchor tick, drawn with its delay bar
        missing = drawn - known
        assert not missing, (ax.get_ylabel(), missing)


def teardown_module() -> None:
    """Close the kept figures."""
    import matplotlib.pyplot as plt
    for fig in _FIGURES.values():
        plt.close(fig)
    _FIGURES.clear()


def test_speech_dropped_without_words_is_marked_on_the_vad_row(tmp_path: Path) -> None:
    """Without transcripts, a backchannel dropped over the agent shows on the VAD row with
    its reason, and the legend names the mark."""
    import turnfsm.audio.plot as plot
    from turnfsm.cli import main
    kept: list[Any] = []

    def keep(audio: Any, trace: Any, lines: Any, records: Any, path: str) -> None:
        kept.append(plot.draw_session(audio, trace, lines, records))
    wav = ROOT / "examples" / "dialogues" / "07_backchannel_late.wav"
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(plot, "plot_session", keep)
        assert main(["listen", str(wav), "-q", "--plot", str(tmp_path / "p.png")]) == 0
    ax_vad = kept[0].axes[1]
    assert [t.get_text() for t in ax_vad.texts] == ["dropped (backchannel)"]
    names = [t.get_text() for t in ax_vad.get_legend().get_texts()]
    assert "speech dropped without words (why)" in names
