"""What a sweep says: the table, the Pareto front of cut-ins against median latency, the
recommended setting, and the results as CSV, Parquet and a picture."""

from __future__ import annotations

import csv
import math
import textwrap
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from ..errors import TurnFsmError
from .grid import fmt_value
from .plan import SweepResult

OTHER_ERRORS = ("orphans", "missed_turns", "backchannel_turns", "noise_turns",
                "false_interruptions", "missed_interruptions")
RULE = ("the fewest cut-ins among the settings whose median latency is at most {max:g} s; "
        "ties: the lower p90 latency, then the lower median, then the fewer other errors "
        "(orphans, missed turns, backchannel and noise turns, false and missed "
        "interruptions), then the first in the grid")


def pareto_front(points: Sequence[tuple[float, float | None]]) -> list[int]:
    """The indices of the points no other point beats on both counts (fewer or as few
    cut-ins and as low or lower a median latency, one of them strictly), in order of
    cut-ins. Points without a latency (no turn got a response) are left out; equal points
    are all on the front."""
    order = sorted((i for i, (_x, y) in enumerate(points) if y is not None),
                   key=lambda i: (points[i][0], points[i][1], i))
    front: list[int] = []
    best = math.inf  # the lowest latency at fewer cut-ins
    k = 0
    while k < len(order):
        x = points[order[k]][0]
        group = []
        while k < len(order) and points[order[k]][0] == x:
            group.append(order[k])
            k += 1
        low = points[group[0]][1]
        assert low is not None
        if low < best:
            front += [i for i in group if points[i][1] == low]
            best = low
    return front


def recommend(rows: Sequence[dict[str, Any]], max_latency: float) -> int | None:
    """The index (into ``rows``) of the recommended setting under :data:`RULE`, or None
    when no setting's median latency is within ``max_latency``."""
    eligible = [i for i, r in enumerate(rows)
                if r["latency_p50"] is not None and r["latency_p50"] <= max_latency + 1e-9]
    if not eligible:
        return None
    return min(eligible, key=lambda i: (rows[i]["cut_ins"], rows[i]["latency_p90"],
                                        rows[i]["latency_p50"],
                                        sum(rows[i].get(k, 0) for k in OTHER_ERRORS), i))


def annotate(result: SweepResult, max_latency: float) -> list[dict[str, Any]]:
    """The result's rows with ``pareto`` and ``recommended`` flags."""
    rows = result.rows()
    front = set(pareto_front([(r["cut_ins"], r["latency_p50"]) for r in rows]))
    best = recommend(rows, max_latency)
    for i, r in enumerate(rows):
        r["pareto"] = i in front
        r["recommended"] = i == best
    return rows


# -- text ------------------------------------------------------------------------------------

COLUMNS = (("cut_ins", "cut-ins"), ("orphans", "orphans"), ("missed_turns", "missed"),
           ("backchannel_turns", "bc-turns"), ("noise_turns", "noise"),
           ("false_interruptions", "false-int"),
           ("missed_interruptions", "missed-int"), ("latency_p50", "p50"),
           ("latency_p90", "p90"), ("latency_max", "max"))


def _cell(v: Any) -> str:
    if v is None:
        return "-"
    if isinstance(v, float):
        return f"{v:.3f}"
    return str(v)


def table(result: SweepResult, rows: Sequence[dict[str, Any]]) -> str:
    """The table: one line per setting (``*`` on the front, ``R`` recommended)."""
    names = result.grid.varying() or result.grid.options
    head = ["#", *names, *(h for _k, h in COLUMNS), ""]
    body = [[str(r["setting"]), *(fmt_value(r[n]) for n in names),
             *(_cell(r[k]) for k, _h in COLUMNS),
             ("*" if r["pareto"] else "") + ("R" if r["recommended"] else "")] for r in rows]
    widths = [max(len(x) for x in col) for col in zip(head, *body, strict=True)]
    lines = ["  ".join(x.rjust(w) for x, w in zip(line, widths, strict=True)).rstrip()
             for line in [head, *body]]
    return "\n".join(lines) + "\n"


def summary(result: SweepResult, rows: Sequence[dict[str, Any]], max_latency: float) -> str:
    """The front, the recommendation and the rule, as text."""
    grid = result.grid
    names = grid.varying() or grid.options
    settings = {s.index: s for s in grid.settings}
    out = [f"{len(result.sessions)} sessions x {len(grid.settings)} settings = "
           f"{result.replays:,} replays in {result.seconds:.1f} s ({result.runner})"]
    out += [f"note: {n}" for n in grid.notes]
    out.append("Pareto front (cut-ins against median latency; * in the table):")
    for group in _front_points(rows):
        r = group[0]
        same = ""
        if len(group) > 1:
            more = ", ".join(f"#{x['setting']}" for x in group[1:7])
            same = f"  (and {len(group) - 1} more with these two figures: {more}" + \
                (", ...)" if len(group) > 7 else ")")
        out.append(f"  #{r['setting']:<4d} cut-ins {r['cut_ins']:3d}  p50 "
                   f"{r['latency_p50']:.3f} s  p90 {_cell(r['latency_p90'])} s  "
                   f"{settings[r['setting']].label(names)}{same}")
    best = next((r for r in rows if r["recommended"]), None)
    out.append("Rule: " + RULE.format(max=max_latency) + ".")
    if best is None:
        lat = [r for r in rows if r["latency_p50"] is not None]
        low = min(lat, key=lambda r: r["latency_p50"]) if lat else None
        out.append(f"No setting has a median latency at most {max_latency:g} s" + (
            f" (the lowest: {low['latency_p50']:.3f} s, #{low['setting']}); raise "
            "--max-latency" if low is not None else "") + ".")
    else:
        out.append(f"Recommended: #{best['setting']}  {settings[best['setting']].label()}  "
                   f"(cut-ins {best['cut_ins']}, p50 {best['latency_p50']:.3f} s, p90 "
                   f"{_cell(best['latency_p90'])} s, other errors "
                   f"{sum(best[k] for k in OTHER_ERRORS)})")
    return "\n".join(out) + "\n"


def _front_points(rows: Sequence[dict[str, Any]]) -> list[list[dict[str, Any]]]:
    """The front's settings grouped by point (cut-ins, median), fewest cut-ins first."""
    groups: dict[tuple[int, float], list[dict[str, Any]]] = {}
    for r in rows:
        if r["pareto"]:
            groups.setdefault((r["cut_ins"], r["latency_p50"]), []).append(r)
    return [groups[k] for k in sorted(groups)]


# -- files -----------------------------------------------------------------------------------


def _columns(result: SweepResult) -> list[str]:
    from .tally import METRICS
    return ["setting", "profile", *result.grid.options, "sessions", *METRICS, "pareto",
            "recommended"]


def _csv_value(v: Any) -> str:
    if v is None:
        return ""
    if isinstance(v, (bool, tuple)):
        return fmt_value(v)
    if isinstance(v, float):  # latencies are to 1e-6 s (a median may average two)
        return repr(round(v, 6))
    return str(v)


def write_csv(result: SweepResult, rows: Sequence[dict[str, Any]], path: str | Path) -> None:
    """The rows as CSV (a header line; empty cells for no value)."""
    cols = _columns(result)
    with open(path, "w", newline="", encoding="utf-8") as f:
        w = csv.writer(f, lineterminator="\n")
        w.writerow(cols)
        for r in rows:
            w.writerow([_csv_value(r[c]) for c in cols])


def write_parquet(result: SweepResult, rows: Sequence[dict[str, Any]],
                  path: str | Path) -> None:
    """The rows as Parquet (needs pyarrow): numbers, flags and text in typed columns."""
    try:
        import pyarrow as pa  # type: ignore[import-not-found, import-untyped, unused-ignore]
        import pyarrow.parquet as pq  # type: ignore[import-not-found, import-untyped, unused-ignore]
    except ImportError:
        raise TurnFsmError(f"{path}: Parquet needs pyarrow: pip install pyarrow") from None
    data: dict[str, Any] = {}
    for c in _columns(result):
        values = [r[c] for r in rows]
        given = [v for v in values if v is not None]
        if given and all(isinstance(v, bool) for v in given):
            data[c] = pa.array(values, type=pa.bool_())
        elif given and all(isinstance(v, int) and not isinstance(v, bool) for v in given):
            data[c] = pa.array(values, type=pa.int64())
        elif given and all(isinstance(v, (int, float)) and not isinstance(v, bool)
                           for v in given):
            data[c] = pa.array([None if v is None else round(float(v), 6) for v in values],
                               type=pa.float64())
        else:
            data[c] = pa.array([None if v is None else fmt_value(v) for v in values],
                               type=pa.string())
    pq.write_table(pa.table(data), str(path))


def check_outputs(outputs: Sequence[str], plot: str | None) -> None:
    """Refuse, before a sweep runs, files it could not write at its end."""
    import importlib.util

    from ..outfiles import check_output_file
    for path in outputs:
        check_output_file(path, "-o")
        suffix = Path(path).suffix.lower()
        if suffix not in (".csv", ".parquet", ".pq"):
            raise TurnFsmError(f"{path}: -o writes .csv or .parquet")
        if suffix != ".csv" and importlib.util.find_spec("pyarrow") is None:
            raise TurnFsmError(f"{path}: Parquet needs pyarrow: pip install pyarrow")
    if plot is not None:
        check_output_file(plot, "--plot", (".png", ".svg", ".pdf"))
        if importlib.util.find_spec("matplotlib") is None:
            raise TurnFsmError("--plot needs matplotlib: pip install 'turnfsm[plot]'")


def write_output(result: SweepResult, rows: Sequence[dict[str, Any]], path: str) -> None:
    """``-o FILE``: CSV or Parquet by the file's extension, written whole or not at all
    (a temporary file beside it, renamed when complete)."""
    suffix = Path(path).suffix.lower()
    if suffix not in (".csv", ".parquet", ".pq"):
        raise TurnFsmError(f"{path}: -o writes .csv or .parquet")
    tmp = Path(path).with_name(Path(path).name + ".partial")
    try:
        if suffix == ".csv":
            write_csv(result, rows, tmp)
        else:
            write_parquet(result, rows, tmp)
        tmp.replace(path)
    finally:
        tmp.unlink(missing_ok=True)


# -- picture ---------------------------------------------------------------------------------


#: characters of the front's list under the picture (8.5 pt monospace on 10 inches)
NOTE_WIDTH = 118


def plot_pareto(result: SweepResult, rows: Sequence[dict[str, Any]], path: str,
                max_latency: float) -> None:
    """Every setting as a point (median latency, cut-ins; larger where several settings
    share it), the front highlighted and labelled (its settings listed under the plot),
    the recommended setting marked (PNG; needs matplotlib)."""
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
        from matplotlib.ticker import MaxNLocator
    except ImportError:
        raise TurnFsmError("--plot needs matplotlib: pip install 'turnfsm[plot]'") from None
    names = result.grid.varying() or result.grid.options
    settings = {s.index: s for s in result.grid.settings}
    pts = [r for r in rows if r["latency_p50"] is not None]
    counts: dict[tuple[int, float], int] = {}
    for r in pts:
        key = (r["cut_ins"], r["latency_p50"])
        counts[key] = counts.get(key, 0) + 1
    groups = _front_points(rows)
    best = next((r for r in rows if r["recommended"]), None)
    lines = []  # the front's settings, each wrapped to the picture's width
    for g in groups:
        r = g[0]
        more = f"  (+{len(g) - 1} more at this point)" if len(g) > 1 else ""
        cuts = f"{r['cut_ins']} cut-in" + ("" if r["cut_ins"] == 1 else "s")
        lines += textwrap.wrap(f"#{r['setting']}: {cuts}, median {r['latency_p50']:.3f} s  -  "
                               f"{settings[r['setting']].label(names)}{more}",
                               width=NOTE_WIDTH, subsequent_indent="      ")
    text_h = 0.17 * (len(lines) + 1)  # inches for the list of the front's settings
    fig, (ax, notes) = plt.subplots(2, 1, figsize=(10, 5.6 + text_h),
                                    gridspec_kw={"height_ratios": [5.6, text_h]})
    ax.scatter([lat for _c, lat in counts], [c for c, _lat in counts],
               s=[min(240, 16 + 8 * (n - 1)) for n in counts.values()], color="#9e9e9e",
               alpha=0.55, zorder=2,
               label=f"every setting ({len(pts)}; larger: several at one point)")
    if groups:
        stairs = sorted((g[0]["latency_p50"], g[0]["cut_ins"]) for g in groups)
        xs, ys = [x for x, _y in stairs], [y for _x, y in stairs]
        ax.step(xs, ys, where="post", color="#1565c0", lw=1.2, alpha=0.7, zorder=3)
        ax.scatter(xs, ys, s=60, color="#1565c0", label="Pareto front", zorder=4)
        for g in groups:
            r = g[0]
            ax.annotate(f"#{r['setting']}", (r["latency_p50"], r["cut_ins"]),
                        textcoords="offset points", xytext=(7, 5), fontsize=9,
                        color="#0d47a1", weight="bold")
    if best is not None:
        ax.scatter([best["latency_p50"]], [best["cut_ins"]], s=300, marker="*",
                   color="#e65100", zorder=5, label=f"recommended (#{best['setting']})")
    ax.axvline(max_latency, color="#e65100", ls="--", lw=1,
               label=f"--max-latency {max_latency:g} s")
    ax.set_xlabel("median response latency (s): the end of turn after the labelled end")
    ax.set_ylabel("cut-ins (ends of turn inside a turn)")
    ax.yaxis.set_major_locator(MaxNLocator(integer=True))
    ax.grid(alpha=0.3)
    ax.legend(loc="best", fontsize=8)  # where it hides the fewest points
    ax.set_title(f"turnfsm tune: {len(result.sessions)} sessions x "
                 f"{len(result.grid.settings)} settings\nswept: {', '.join(names)}",
                 fontsize=10)
    notes.axis("off")
    notes.text(0.0, 1.0, "Pareto front (fewest cut-ins first):\n" + "\n".join(lines),
               va="top", ha="left", fontsize=8.5, family="monospace",
               transform=notes.transAxes)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
