"""The session page: one self-contained HTML file (the data, the script, the styles and
the chart's diagram inlined; nothing loaded from the network)."""

from __future__ import annotations

import html
import json
from importlib import resources
from typing import Any

from ..chart import Chart


def diagram_svg(chart: Chart) -> str | None:
    """The chart's Graphviz diagram as inline SVG (node titles ``region/state``), or None
    when Graphviz's ``dot`` is not installed (the page then shows only its state table)."""
    from ..chart.diagram import DiagramError, render, to_dot
    try:
        svg = render(to_dot(chart), "svg").decode("utf-8")
    except DiagramError:
        return None
    return svg[svg.index("<svg"):]  # without the XML declaration and doctype


HELP = [("click, drag", "move the cursor"), ("\u2190 \u2192", "previous / next step"),
        ("\u2191 \u2193 or p n", "previous / next decision (end of turn, interruption, drop)"),
        ("Home End", "first / last step"), ("+ \u2212 0", "zoom in / out / whole session"),
        ("wheel, shift+wheel", "zoom / pan"), ("space", "play / pause from the cursor"),
        ("? or h", "this help (Esc closes it)")]


def render_page(data: dict[str, Any], svg: str | None) -> str:
    """The page's HTML."""
    here = resources.files("turnfsm.view")
    script = (here / "page.js").read_text(encoding="utf-8")
    style = (here / "page.css").read_text(encoding="utf-8")
    payload = json.dumps(data, ensure_ascii=False, separators=(",", ":"))
    payload = payload.replace("</", "<\\/")
    title = html.escape(f"turnfsm view {data['title']}")
    meta = (f"profile {data['profile']} \u00b7 {data['duration']:.2f} s \u00b7 "
            f"{len(data['turns'])} end(s) of turn \u00b7 {len(data['interruptions'])} "
            f"interruption(s) \u00b7 {len(data['drops'])} drop(s)")
    helprows = "".join(f"<tr><td><kbd>{html.escape(k)}</kbd></td><td>{html.escape(v)}</td></tr>"
                       for k, v in HELP)
    notes = html.escape("; ".join(data["notes"]))
    diagram = (f'<h2>Chart <button id="diagram-size" title="fit / full size">fit \u2194 full'
               f'</button></h2><div id="diagram" class="full">{svg}</div>' if svg is not None else
               '<h2>Chart</h2><p>(Graphviz is not installed: the table above is the chart\'s '
               'regions and states.)</p><button id="diagram-size" hidden></button>'
               '<div id="diagram"></div>')
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{title}</title>
<style>{style}</style></head>
<body>
<header><h1>{title}</h1><span class="meta">{html.escape(meta)}</span>
<span id="notes">{notes}</span>
<button id="help-btn" title="keyboard help (?)">? keys</button></header>
<main>
<section id="left">
<div id="timeline"><canvas id="canvas" tabindex="0" aria-label="session timeline"></canvas>
<div id="tip" hidden></div></div>
<div class="controls"><button id="play">play</button><button id="zoom-in">zoom +</button>
<button id="zoom-out">zoom \u2212</button><button id="fit">whole session</button>
<span class="pos" id="pos"></span><audio id="audio" preload="auto"></audio></div>
<div id="legend"></div>
<div id="events" aria-label="decisions"></div>
</section>
<aside id="right">
<div id="cursor-time"></div>
<h2>Decision</h2><div id="decision"></div>
<h2>Step record</h2><div id="step"></div>
<h2>Regions at the cursor</h2><table id="states"></table>
{diagram}
</aside></main>
<div id="help" hidden><b>Keys</b><table>{helprows}</table></div>
<script type="application/json" id="data">{payload}</script>
<script>{script}</script>
</body></html>
"""
