"""Diagrams of the state chart for review: Mermaid and Graphviz DOT text, SVG/PNG via ``dot``.

The output is deterministic (regions in dispatch order, states in declared order, edges
sorted by source then destination state, events in declaration order) so committed
diagrams diff cleanly when ``states.yaml`` changes.

Conventions, in both formats (each diagram carries a legend saying so):

* every region is a box of its own, numbered in dispatch order; regions run in parallel;
* a black dot points at a region's initial state;
* an arrow carries every transition between two states, one label line per group of
  events that share guards and actions: ``ev_a | ev_b [guard, not guard] / action, action``;
* internal transitions (no ``dest``: the event is handled, the state is kept) are listed
  inside the state's box, under its name, not drawn as self-loops;
* a transition whose ``dest`` is its own source is a loop arrow in Graphviz, and a ``↻``
  line in the state's box in Mermaid (whose self-loop labels overlap);
* timer events are prefixed with ``◷``; in Graphviz an arrow made only of timer events is
  dashed, and arrows (with their labels) are coloured so each label matches its arrow;
* data events never reach the machine, so they appear only in the whole-chart legend.

Graphviz stacks the regions top to bottom (states flow left to right inside each);
Mermaid puts concurrent regions side by side, so its whole-chart diagram is wide and the
per-region diagrams are the ones to read there.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from ..errors import TurnFsmError
from .model import Chart, Guard, Region, Transition

__all__ = [
    "LABEL_WIDTH",
    "SELF_MARK",
    "TIMER_MARK",
    "DiagramError",
    "diagram_files",
    "region_names",
    "render",
    "render_png",
    "render_svg",
    "to_dot",
    "to_mermaid",
    "write_diagrams",
]

TIMER_MARK = "\u25f7"  # ◷, a clock face most fonts have (⏱ is missing from many)
SELF_MARK = "\u21bb"  # ↻, Mermaid: a transition back into the same state
LABEL_WIDTH = 46  # Graphviz: wrap label lines longer than this many characters
MERMAID_WIDTH = 60  # Mermaid: wrap state description lines (it wraps arrow labels itself)
_INDENT = "\u00a0\u00a0\u00a0"  # continuation lines of a wrapped label line
# after each line in a Graphviz box: browsers draw text a little wider than dot measures it
_PAD = "\u00a0\u00a0"
_FONT = "Helvetica,Arial,sans-serif"
# arrow colours, cycled within a region, so each label is easy to match to its arrow
_EDGE_COLORS = ("#1f4e79", "#a12a2a", "#2e6b30", "#7a4f01", "#5b3a8c", "#006d6f", "#8a3b66",
                "#3d3d3d", "#c05600", "#0b72b9", "#6b6b00", "#b0306f")


class DiagramError(TurnFsmError):
    """A diagram cannot be made: unknown region, Graphviz missing or failing."""


# -- the model both renderers draw -----------------------------------------------------------


@dataclass(frozen=True)
class _Entry:
    """One label line: events that share guards and actions on one arrow (or one state)."""

    events: tuple[str, ...]
    guards: tuple[Guard, ...]
    actions: tuple[str, ...]


@dataclass(frozen=True)
class _Edge:
    source: str
    dest: str
    entries: tuple[_Entry, ...]
    timer_only: bool


@dataclass(frozen=True)
class _RegionView:
    region: Region
    number: int  # 1-based dispatch order
    edges: tuple[_Edge, ...]
    internal: dict[str, tuple[_Entry, ...]]  # state -> internal transitions


def region_names(chart: Chart) -> list[str]:
    """The chart's region names in dispatch order."""
    return [r.name for r in chart.regions]


def _select(chart: Chart, region: str | None) -> list[tuple[int, Region]]:
    numbered = list(enumerate(chart.regions, start=1))
    if region is None:
        return numbered
    for n, r in numbered:
        if r.name == region:
            return [(n, r)]
    raise DiagramError(f"unknown region {region!r} (regions: {', '.join(region_names(chart))})")


def _entries(chart: Chart, ts: Iterable[Transition]) -> tuple[_Entry, ...]:
    order = {name: i for i, name in enumerate(chart.events)}
    groups: dict[tuple[tuple[Guard, ...], tuple[str, ...]], set[str]] = {}
    for t in ts:
        groups.setdefault((t.guards, t.actions), set()).add(t.event)
    entries = [
        _Entry(tuple(sorted(evs, key=lambda e: (order.get(e, len(order)), e))), guards, actions)
        for (guards, actions), evs in groups.items()
    ]
    entries.sort(key=lambda en: (order.get(en.events[0], len(order)), en.events,
                                 [str(g) for g in en.guards], en.actions))
    return tuple(entries)


def _view(chart: Chart, number: int, region: Region) -> _RegionView:
    idx = {s: i for i, s in enumerate(region.states)}
    ts = [t for t in chart.transitions if t.region == region.name]
    by_pair: dict[tuple[str, str], list[Transition]] = {}
    by_state: dict[str, list[Transition]] = {}
    for t in ts:
        if t.dest is None:
            by_state.setdefault(t.source, []).append(t)
        else:
            by_pair.setdefault((t.source, t.dest), []).append(t)
    edges = []
    for (src, dst), group in sorted(by_pair.items(), key=lambda kv: (idx[kv[0][0]],
                                                                     idx[kv[0][1]])):
        timer_only = all(_kind(chart, t.event) == "timer" for t in group)
        edges.append(_Edge(src, dst, _entries(chart, group), timer_only))
    internal = {s: _entries(chart, by_state[s]) for s in region.states if s in by_state}
    return _RegionView(region, number, tuple(edges), internal)


def _kind(chart: Chart, event: str) -> str:
    spec = chart.events.get(event)
    return spec.kind if spec is not None else "input"


def _pieces(chart: Chart, entry: _Entry) -> list[str]:
    """The words of a label line, with the places it may wrap between them."""
    out: list[str] = []
    for i, e in enumerate(entry.events):
        name = f"{TIMER_MARK} {e}" if _kind(chart, e) == "timer" else e
        spec = chart.events.get(e)
        if spec is not None and spec.kind == "internal" and spec.after != 1:
            name = f"{name} ({f'after {spec.after}' if spec.after else 'now'})"
        out.append(name if i == 0 else f"| {name}")
    gs = [str(g) for g in entry.guards]
    for i, g in enumerate(gs):
        out.append(("[" if i == 0 else "") + g + ("]" if i == len(gs) - 1 else ","))
    for i, a in enumerate(entry.actions):
        out.append(("/ " if i == 0 else "") + a + ("," if i < len(entry.actions) - 1 else ""))
    return out


def _wrap(pieces: Sequence[str], width: int = LABEL_WIDTH) -> list[str]:
    lines: list[str] = []
    cur = ""
    for p in pieces:
        if cur and len(cur) + 1 + len(p) > width:
            lines.append(cur)
            cur = _INDENT + p
        else:
            cur = f"{cur} {p}" if cur else p
    if cur:
        lines.append(cur)
    return lines


def _label_lines(chart: Chart, entries: Iterable[_Entry], width: int = LABEL_WIDTH,
                 prefix: str = "") -> list[str]:
    """Label lines for ``entries``, each wrapped at ``width`` (continuations indented)."""
    out: list[str] = []
    for en in entries:
        pieces = _pieces(chart, en)
        out.extend(_wrap([prefix + pieces[0], *pieces[1:]], width))
    return out


def _data_events(chart: Chart) -> list[str]:
    return [name for name, spec in chart.events.items() if spec.kind == "data"]


def _source_name(chart: Chart) -> str:
    return PurePosixPath(chart.source.replace("\\", "/")).name or "states.yaml"


def _legend_lines(chart: Chart, whole: bool, *, self_loops: str, timers: str) -> list[str]:
    lines = [
        "Legend",
        "regions run in parallel, each event is offered to every region in the numbered order",
        "black dot \u2192 the region's initial state",
        "arrow label = event [guard, not guard] / action, action (all guards must hold)",
        "a | b = either event, with the same guards and actions",
        "one arrow carries every transition between its two states, one line each",
        "lines under a state's name = internal transitions (event handled, state kept)",
        self_loops,
        f"{TIMER_MARK} event = a timer (a deadline kept by the engine){timers}",
    ]
    afters = {spec.after for spec in chart.events.values() if spec.kind == "internal"}
    if afters - {0, 1}:
        lines.append("event (after n) = an internal event handled n passes of the internal "
                     "queue after the event that raised it (unmarked: the next pass)")
    if 0 in afters:
        lines.append("event (now) = an internal event handled where it is raised, before "
                     "the event that raised it reaches the next region")
    kinds = {g.kind for t in chart.transitions for g in t.guards}
    if "in" in kinds:
        lines.append("guard in: r.s = region r is in state s (SCXML In())")
    if "option" in kinds:
        lines.append("guard option: o = the option o is on; option: o == v = it is v")
    if whole:
        data = _data_events(chart)
        if data:
            lines.append("data events (handled before the machine) = " + ", ".join(data))
    return lines


# -- Mermaid ---------------------------------------------------------------------------------

_MM_SAFE = re.compile(r"[A-Za-z0-9 _\-.,\[\]/|()!?'+*=\u00a0\u0080-\uffff]")


def _mm_text(text: str) -> str:
    """Escape label text for Mermaid (entity codes for anything its grammar could read)."""
    return "".join(c if _MM_SAFE.fullmatch(c) else f"#{ord(c)};" for c in text)


def _mm_id(*parts: str) -> str:
    return "__".join(re.sub(r"[^A-Za-z0-9_]", "_", p) for p in parts)


def to_mermaid(chart: Chart, region: str | None = None) -> str:
    """Render ``chart`` (or one region of it) as a Mermaid ``stateDiagram-v2``.

    Each region is a composite state; the regions of the whole chart sit inside one
    composite state, separated by ``--`` (Mermaid's concurrency separator). Internal
    transitions, and transitions back into the same state (marked ``↻``, as Mermaid's
    self-loop labels overlap), are description lines of their state.
    """
    selected = _select(chart, region)
    whole = region is None
    src = _source_name(chart)
    out = [
        "stateDiagram-v2",
        f"    %% Generated by turnfsm.diagram from {src}; do not edit by hand.",
    ]
    ind = "    "
    used: set[str] = set()
    anchor = ""
    if whole:
        anchor = _mm_id("chart")
        used.add(anchor)
        out.append(f'    state "{_mm_text(f"{src}, {len(selected)} parallel regions")}"'
                   f" as {anchor} {{")
        ind = "        "
    for i, (number, r) in enumerate(selected):
        if i:
            out.append(f"{ind}--")
        rid, lines = _mm_region(chart, _view(chart, number, r), ind, used)
        out.extend(lines)
        anchor = anchor or rid
    if whole:
        out.append("    }")
    legend = _legend_lines(chart, whole, timers="",
                           self_loops=f"{SELF_MARK} line = a transition back into the same state")
    out.append(f"    note right of {anchor}")
    out.extend(f"        {_mm_text(ln)}" for ln in legend)
    out.append("    end note")
    return "\n".join(out) + "\n"


def _mm_region(chart: Chart, view: _RegionView, ind: str,
               used: set[str]) -> tuple[str, list[str]]:
    r = view.region

    def uniq(base: str) -> str:
        name, n = base, 2
        while name in used:
            name, n = f"{base}_{n}", n + 1
        used.add(name)
        return name

    rid = uniq(_mm_id("region", r.name))
    ids = {s: uniq(_mm_id(r.name, s)) for s in r.states}
    inner = ind + "    "
    out = [f'{ind}state "{_mm_text(f"{view.number}. {r.name}")}" as {rid} {{']
    out.extend(f'{inner}state "{_mm_text(s)}" as {ids[s]}' for s in r.states)
    loops = {e.source: e.entries for e in view.edges if e.source == e.dest}
    for s in r.states:
        lines = _label_lines(chart, view.internal.get(s, ()), MERMAID_WIDTH)
        lines += _label_lines(chart, loops.get(s, ()), MERMAID_WIDTH, f"{SELF_MARK} ")
        out.extend(f"{inner}{ids[s]} : {_mm_text(ln.strip())}" for ln in lines)
    out.append(f"{inner}[*] --> {ids[r.initial]}")
    for e in view.edges:
        if e.source == e.dest:
            continue
        label = "<br/>".join(_mm_text(ln) for ln in _label_lines(chart, e.entries, 10_000))
        out.append(f"{inner}{ids[e.source]} --> {ids[e.dest]} : {label}")
    out.append(f"{ind}}}")
    return rid, out


# -- Graphviz DOT ----------------------------------------------------------------------------


def _q(text: str) -> str:
    """A DOT double-quoted string (no-break spaces spelled ``&#160;`` to stay visible)."""
    text = text.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")
    return '"' + text.replace("\u00a0", "&#160;") + '"'


def _html(text: str) -> str:
    return (text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
            .replace('"', "&quot;").replace("\u00a0", "&#160;"))


def _dot_lines(lines: Sequence[str]) -> str:
    """A left-justified multi-line plain DOT label."""
    return _q("".join(ln + "\n" for ln in lines)).replace("\\n", "\\l")


def to_dot(chart: Chart, region: str | None = None) -> str:
    """Render ``chart`` (or one region of it) as a Graphviz ``digraph``.

    Each region is a ``cluster_<region>`` subgraph; clusters are stacked top to bottom in
    dispatch order, and states flow left to right inside each one.
    """
    selected = _select(chart, region)
    whole = region is None
    src = _source_name(chart)
    if whole:
        title = f"{src}, {len(selected)} regions run in parallel"
        name = "turnfsm"
    else:
        title = f"{src}, region {selected[0][0]} of {len(chart.regions)}: {selected[0][1].name}"
        name = f"turnfsm_{selected[0][1].name}"
    out = [
        f"// Generated by turnfsm.diagram from {src}; do not edit by hand.",
        f"digraph {_q(name)} {{",
        f"    graph [rankdir=LR, newrank=true, fontname={_q(_FONT)}, labelloc=t, labeljust=l,"
        f" nodesep=0.3, ranksep=0.45, pad=0.3];",
        f"    node [fontname={_q(_FONT)}, fontsize=12, shape=box, style=\"rounded,filled\","
        f" fillcolor=white, color=\"#444444\", margin=\"0.12,0.06\"];",
        f"    edge [fontname={_q(_FONT)}, fontsize=10, color=\"#333333\","
        f" fontcolor=\"#1a1a1a\", arrowsize=0.7];",
    ]
    # With rankdir=LR, dot stacks unconnected clusters bottom to top in input order: emit
    # the regions in reverse dispatch order to read them top to bottom.
    for number, r in reversed(selected):
        out.extend(_dot_cluster(chart, _view(chart, number, r)))
    # the title and legend label the whole graph (set last, so no cluster inherits it)
    out.append(f"    label={_dot_legend(chart, title, whole)};")
    out.append("}")
    return "\n".join(out) + "\n"


def _dot_legend(chart: Chart, title: str, whole: bool) -> str:
    lines = _legend_lines(chart, whole, timers=", timer-only arrows are dashed",
                          self_loops="a loop arrow = a transition back into the same state")
    rows = [f'<TR><TD ALIGN="LEFT"><B>{_html(lines[0])}</B></TD></TR>']
    rows += [f'<TR><TD ALIGN="LEFT">{_html(ln + _PAD)}</TD></TR>' for ln in lines[1:]]
    legend = ('<TABLE BORDER="1" STYLE="rounded" COLOR="#999999" CELLBORDER="0" CELLSPACING="1"'
              ' CELLPADDING="3">' + "".join(rows) + "</TABLE>")
    return ('<<TABLE BORDER="0" CELLBORDER="0" CELLSPACING="0" CELLPADDING="4">'
            f'<TR><TD ALIGN="LEFT"><FONT POINT-SIZE="18">{_html(title)}</FONT></TD></TR>'
            f'<TR><TD ALIGN="LEFT"><FONT POINT-SIZE="11">{legend}</FONT></TD></TR>'
            "</TABLE>>")


def _dot_state_label(chart: Chart, state: str, internal: Sequence[_Entry]) -> str:
    head = f"<B>{_html(state)}</B>"
    lines = _label_lines(chart, internal)
    if not lines:
        return f"<{head}>"
    body = "<BR ALIGN=\"LEFT\"/>".join(_html(ln + _PAD) for ln in lines) + '<BR ALIGN="LEFT"/>'
    return ('<<TABLE BORDER="0" CELLBORDER="0" CELLSPACING="0" CELLPADDING="3">'
            f"<TR><TD>{head}</TD></TR><HR/>"
            f'<TR><TD ALIGN="LEFT"><FONT POINT-SIZE="10" COLOR="#333333">{body}</FONT></TD></TR>'
            "</TABLE>>")


def _dot_cluster(chart: Chart, view: _RegionView) -> list[str]:
    r = view.region
    label = ('<<TABLE BORDER="0" CELLBORDER="0" CELLSPACING="0" CELLPADDING="1">'
             f'<TR><TD ALIGN="LEFT"><B>{view.number}. {_html(r.name)}</B></TD></TR>')
    if r.doc:
        label += (f'<TR><TD ALIGN="LEFT"><FONT POINT-SIZE="10" COLOR="#555555">{_html(r.doc)}'
                  "</FONT></TD></TR>")
    label += "</TABLE>>"
    ind = "        "
    out = [
        f"    subgraph {_q('cluster_' + r.name)} {{",
        f'{ind}graph [label={label}, fontsize=13, style="rounded,filled", fillcolor="#f3f6fb",'
        f' color="#7b8fb0", margin=12, tooltip={_q(r.doc or r.name)}];',
        f'{ind}{_q(f"{r.name}/__initial")} [shape=point, width=0.14, style=filled,'
        f' fillcolor=black, color=black, label=""];',
    ]
    for s in r.states:
        attrs = [f"label={_dot_state_label(chart, s, view.internal.get(s, ()))}"]
        doc = r.docs.get(s, "")
        attrs.append(f"tooltip={_q(doc or s)}")
        if s == r.initial:
            attrs.append("penwidth=1.8")
        out.append(f"{ind}{_q(f'{r.name}/{s}')} [{', '.join(attrs)}];")
    out.append(f"{ind}{_q(f'{r.name}/__initial')} -> {_q(f'{r.name}/{r.initial}')};")
    for i, e in enumerate(view.edges):
        color = _EDGE_COLORS[i % len(_EDGE_COLORS)]
        attrs = [f"label={_dot_lines(_label_lines(chart, e.entries))}",
                 f'color="{color}"', f'fontcolor="{color}"']
        if e.timer_only:
            attrs.append("style=dashed")
        out.append(f"{ind}{_q(f'{r.name}/{e.source}')} -> {_q(f'{r.name}/{e.dest}')}"
                   f" [{', '.join(attrs)}];")
    out.append("    }")
    return out


# -- rendering with Graphviz -----------------------------------------------------------------


def render(dot_text: str, fmt: str = "svg", *, dot: str | None = None) -> bytes:
    """Run Graphviz ``dot -T<fmt>`` on ``dot_text`` and return its output.

    ``dot`` is the executable (default: ``$TURNFSM_DOT`` or ``dot`` on the PATH). Raises
    :class:`DiagramError` when it is missing or fails.
    """
    exe = dot or os.environ.get("TURNFSM_DOT") or "dot"
    path = shutil.which(exe)
    if path is None:
        raise DiagramError(
            f"Graphviz's {exe!r} executable was not found on the PATH, so {fmt} cannot be "
            "rendered. Install Graphviz (Debian/Ubuntu: apt-get install graphviz; macOS: "
            "brew install graphviz) or use --format mermaid or --format dot.")
    try:
        proc = subprocess.run([path, f"-T{fmt}"], input=dot_text.encode("utf-8"),
                              capture_output=True, check=False, timeout=120)
    except (OSError, subprocess.TimeoutExpired) as e:
        raise DiagramError(f"running {path} -T{fmt} failed: {e}") from None
    if proc.returncode != 0:
        err = proc.stderr.decode("utf-8", "replace").strip()
        raise DiagramError(f"{path} -T{fmt} exited with status {proc.returncode}: {err}")
    return proc.stdout


def render_svg(dot_text: str, *, dot: str | None = None) -> bytes:
    """SVG bytes for ``dot_text`` (needs Graphviz's ``dot``)."""
    return render(dot_text, "svg", dot=dot)


def render_png(dot_text: str, *, dot: str | None = None) -> bytes:
    """PNG bytes for ``dot_text`` (needs Graphviz's ``dot``)."""
    return render(dot_text, "png", dot=dot)


# -- the committed set -----------------------------------------------------------------------

TEXT_SUFFIXES = (".mmd", ".dot")
ALL_SUFFIXES = (".mmd", ".dot", ".svg")


def _file_stem(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]", "_", name)


def diagram_files(chart: Chart, *, svg: bool = True, dot: str | None = None) -> dict[str, bytes]:
    """The diagram set as ``{relative path: content}``: ``chart.mmd``, ``chart.dot`` and
    ``chart.svg`` for the whole chart, ``regions/<region>.{mmd,dot,svg}`` per region.
    ``svg=False`` leaves out the SVG files (no Graphviz needed)."""
    files: dict[str, bytes] = {}
    targets: list[tuple[str, str | None]] = [("chart", None)]
    targets += [(f"regions/{_file_stem(r.name)}", r.name) for r in chart.regions]
    for stem, region in targets:
        dot_text = to_dot(chart, region)
        files[f"{stem}.mmd"] = to_mermaid(chart, region).encode("utf-8")
        files[f"{stem}.dot"] = dot_text.encode("utf-8")
        if svg:
            files[f"{stem}.svg"] = render_svg(dot_text, dot=dot)
    return files


def write_diagrams(chart: Chart, outdir: str | os.PathLike[str], *, svg: bool = True,
                   dot: str | None = None) -> tuple[list[Path], list[Path]]:
    """(Re)write the diagram set under ``outdir``; remove region files of regions that no
    longer exist. Returns (written, removed) paths."""
    root = Path(outdir)
    files = diagram_files(chart, svg=svg, dot=dot)
    written: list[Path] = []
    for rel, data in files.items():
        p = root / rel
        p.parent.mkdir(parents=True, exist_ok=True)
        if not p.is_file() or p.read_bytes() != data:
            p.write_bytes(data)
        written.append(p)
    removed: list[Path] = []
    regions_dir = root / "regions"
    if regions_dir.is_dir():
        suffixes = ALL_SUFFIXES if svg else TEXT_SUFFIXES
        for p in sorted(regions_dir.iterdir()):
            rel = f"regions/{p.name}"
            if p.is_file() and p.suffix in suffixes and rel not in files:
                p.unlink()
                removed.append(p)
    return written, removed
