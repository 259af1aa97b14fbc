"""The timeline picture of a ``listen`` run (matplotlib, extra ``plot``).

Rows, top to bottom, on one time axis: the signal energy of each channel; the speech the
VAD found (user) and the agent's speech; transcripts at their arrival (finals above,
interims below; held ones in orange, their release or drop marked); every end-of-turn wait
from its trigger to the end of turn, labelled with the trigger and the delay chosen, and
interruptions; and the state of the main chart regions over time, from the step records.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from .. import outputs as out
from ..core import StepRecord
from ..replay import Trace
from .vad import WINDOW, segments
from .wav import RATE, Audio, AudioError

# the regions drawn, those the chart has (final_wait: the default profile's)
REGIONS = ("user_speech", "agent_speech", "gate", "overlap", "final_wait", "turn", "authority")
COLORS = {"speaking": "#2e7d32", "silent": "#eeeeee", "holding": "#ef6c00",
          "judging": "#ffb74d", "settled": "#eeeeee", "pending": "#8d6e63",
          "passthrough": "#eeeeee", "open": "#90caf9", "idle": "#eeeeee",
          "predicting": "#ab47bc", "waiting": "#fbc02d", "delivering": "#c62828",
          "none": "#eeeeee", "stt_committed": "#5c6bc0", "stt_awaiting_final": "#9fa8da",
          "manual_committed": "#00897b"}
TRIGGERS = {"vad_end_of_speech": "VAD end", "final_transcript": "final",
            "stt_end_of_speech": "STT end", "commit": "commit",
            "final_overdue": "final overdue"}


GREY = "#eeeeee"  # a region's resting states (silent, idle, none, ...)


def label(text: str, width: int = 30, lines: int = 2) -> str:
    """``text`` wrapped to ``lines`` lines of at most ``width`` characters, the last cut
    with an ellipsis when the text is longer (a label never ends mid-word unmarked)."""
    import textwrap
    wrapped = textwrap.wrap(text, width) or [""]
    if len(wrapped) <= lines:
        return "\n".join(wrapped)
    last = " ".join(wrapped[lines - 1:])
    last = textwrap.shorten(last, width - 1, placeholder="") if len(last) >= width else last
    return "\n".join([*wrapped[:lines - 1], last.rstrip(" ,.;:") + "\u2026"])


def _spans(records: list[StepRecord], region: str, end: float) -> list[tuple[float, float, str]]:
    out: list[tuple[float, float, str]] = []
    state, since = None, 0.0
    for r in records:
        s = dict(r.state).get(region)
        if s != state:
            if state is not None and r.t > since:
                out.append((since, r.t, state))
            state, since = s, r.t
    if state is not None:
        out.append((since, end, state))
    return out


def plot_session(audio: Audio, trace: Trace, lines: list[dict[str, Any]],
                 records: list[StepRecord], path: str) -> None:
    """Draw the picture to ``path`` (PNG, SVG or PDF by its extension)."""
    fig = draw_session(audio, trace, lines, records)
    import matplotlib.pyplot as plt
    try:
        fig.savefig(path, dpi=110, bbox_inches="tight")
    finally:
        plt.close(fig)


def draw_session(audio: Audio, trace: Trace, lines: list[dict[str, Any]],
                 records: list[StepRecord]) -> Any:
    """The picture as a matplotlib figure (the caller saves and closes it)."""
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        raise AudioError("--plot needs matplotlib: pip install 'turnfsm[plot]'") from None
    from matplotlib.lines import Line2D
    from matplotlib.patches import Patch
    end = max(audio.duration, max((x["t"] for x in lines if x["kind"] != "close"),
                                  default=0.0) + 0.3)

    def right(t: float) -> bool:
        """A label at ``t`` runs leftwards (it would leave the frame to the right)."""
        return t > 0.72 * end

    def legend(ax: Any, handles: list[Any]) -> None:
        ax.legend(handles=handles, loc="upper left", bbox_to_anchor=(1.005, 1.0), fontsize=7.5,
                  frameon=False, borderaxespad=0.0)
    fig, axes = plt.subplots(5, 1, figsize=(14, 8.5), sharex=True,
                             gridspec_kw={"height_ratios": [1.2, 0.8, 1.5, 1.6, 1.8]})
    ax_sig, ax_vad, ax_txt, ax_dec, ax_st = axes
    fig.suptitle(f"turnfsm listen {audio.path}", fontsize=11, x=0.01, ha="left")

    # 1. signal energy per channel
    names = ["user", "agent"]
    for c in range(audio.channels):
        x = audio.samples[c]
        n = x.size // WINDOW
        rms = np.sqrt(np.mean(x[: n * WINDOW].reshape(n, WINDOW) ** 2, axis=1) + 1e-12)
        db = 20 * np.log10(rms)
        t = (np.arange(n) + 0.5) * WINDOW / RATE
        ax_sig.plot(t, db, lw=0.8, label=names[c], color=("#1565c0", "#6d4c41")[c])
    ax_sig.set_ylabel("energy\n(dBFS)")
    ax_sig.set_ylim(-80, 0)
    legend(ax_sig, [Line2D([], [], color=("#1565c0", "#6d4c41")[c], lw=1.2,
                           label=f"{names[c]} channel") for c in range(audio.channels)])

    # 2. VAD speech (user) and agent speech
    vad = [{"t": i.t, "kind": i.kind, **i.fields} for i in trace.inputs]
    for s in segments([x for x in vad if x["kind"].startswith("vad.")]):
        ax_vad.barh(1, s.end - s.start, left=s.start, height=0.6, color="#2e7d32")
    starts = [i.t for i in trace.inputs if i.kind == "agent.speech_started"]
    stops = [i.t for i in trace.inputs if i.kind == "agent.speech_ended"]
    for a, b in zip(starts, stops, strict=False):
        ax_vad.barh(0, b - a, left=a, height=0.6, color="#6d4c41")
    # speech dropped without words (a backchannel judged by the detector or its length)
    wordless = [w for r in records for w in r.outputs
                if isinstance(w, out.TranscriptDropped) and not w.text]
    for w in wordless:
        ax_vad.plot([w.t], [1.0], "x", color="#c62828", ms=8, mew=2)
        ax_vad.annotate(f"dropped ({w.reason})", (w.t, 1.0),
                        xytext=(-2 if right(w.t) else 2, -14), textcoords="offset points",
                        fontsize=7.5, color="#c62828", ha="right" if right(w.t) else "left",
                        va="center")
    ax_vad.set_yticks([0, 1], ["agent\nspeech", "user\n(VAD)"])
    ax_vad.set_ylim(-0.6, 1.6)
    legend(ax_vad, [Patch(color="#2e7d32", label="user speech (VAD)"),
                    *([Patch(color="#6d4c41", label="agent speech")] if starts else []),
                    *([Line2D([], [], marker="x", color="#c62828", ls="", mew=2,
                              label="speech dropped without words (why)")]
                      if wordless else [])])

    # 3. transcripts: every final at its arrival; held ones (orange) until released or
    # dropped (red, with the reason), from the step records
    shown: dict[Any, float] = {}  # input line -> when the final was reported
    dropped: dict[Any, tuple[float, str]] = {}
    for r in records:
        for o in r.outputs:
            if isinstance(o, out.Transcript) and o.type == "final" and o.ref is not None:
                shown.setdefault(o.ref, o.t)
            elif isinstance(o, out.TranscriptDropped):
                dropped[o.ref] = (o.t, o.reason)
    kinds: set[str] = set()
    for i in trace.inputs:
        if i.kind == "stt.interim":
            kinds.add("interim")
            ax_txt.plot([i.t], [0.35], ".", color="#9e9e9e", ms=4)
        if i.kind != "stt.final" or not i.fields.get("text"):
            continue
        text = i.fields["text"]
        if i.line in dropped:
            when, why = dropped[i.line]
            if when > i.t + 1e-6:
                ax_txt.plot([i.t, when], [1.0, 1.0], color="#ef6c00", lw=3, alpha=0.7)
            ax_txt.plot([when], [1.0], "x", color="#c62828", ms=8)
            kinds.update(("dropped", "held") if when > i.t + 1e-6 else ("dropped",))
            ax_txt.annotate(f"{label(repr(text), 34, 1)} dropped ({why})", (i.t, 1.0),
                            xytext=(-2 if right(i.t) else 2, -14), textcoords="offset points",
                            fontsize=7.5, color="#c62828", ha="right" if right(i.t) else "left")
            continue
        when = shown.get(i.line, i.t)
        if when > i.t + 1e-6:
            kinds.add("held")
            ax_txt.plot([i.t, when], [1.0, 1.0], color="#ef6c00", lw=3, alpha=0.7)
        kinds.add("final")
        ax_txt.plot([when], [1], "v", color="#1b5e20")
        flip = right(when)
        ax_txt.annotate(label(text, 40), (when, 1), xytext=(-2 if flip else 2, 5),
                        textcoords="offset points", fontsize=7.5, color="#1b5e20",
                        ha="right" if flip else "left", va="bottom")
    ax_txt.set_yticks([0.35, 1], ["interims", "finals"])
    ax_txt.set_ylim(0, 1.9)
    entries: dict[str, Any] = {
        "final": Line2D([], [], marker="v", color="#1b5e20", ls="", label="final (as reported)"),
        "interim": Line2D([], [], marker=".", color="#9e9e9e", ls="", label="interim"),
        "held": Line2D([], [], color="#ef6c00", lw=3, alpha=0.7,
                       label="held while the agent speaks"),
        "dropped": Line2D([], [], marker="x", color="#c62828", ls="", label="dropped (why)")}
    legend(ax_txt, [h for k, h in entries.items() if k in kinds])

    # 4. end-of-turn waits and interruptions
    eots = [x for x in lines if x["kind"] == "on_end_of_turn"]
    decisions = [o for r in records for o in r.outputs if isinstance(o, out.EndOfTurn)]
    shown_kinds: set[str] = set()
    for k, (x, o) in enumerate(zip(eots, decisions, strict=False)):
        d = o.decision
        y = 1.35 + (k % 2) * 0.55  # above the end-of-turn labels (up to 2 lines of text)
        flip = right(x["t"])
        if d is not None:
            if x["t"] - d.wait_started_at > 1e-3:  # a wait decided at once has no bar
                shown_kinds.add("wait")
                ax_dec.barh(y, x["t"] - d.wait_started_at, left=d.wait_started_at,
                            height=0.35, color="#fbc02d", alpha=0.8)
            if d.anchor is not None:  # the delay, measured from the last speech
                shown_kinds.add("delay")
                ax_dec.barh(y - 0.3, d.delay, left=d.anchor, height=0.12, color="#8d6e63",
                            alpha=0.6)
                ax_dec.plot([d.anchor, d.anchor], [y - 0.42, y - 0.12], color="#5d4037", lw=1)
            why = f"{TRIGGERS[d.trigger]}, {d.delay_reason} {d.delay:g} s"
            if d.model is not None and d.model.probability is not None:
                why += f", p={d.model.probability:.2f}"
            # above its bars, ending at the end of turn (starting there near the left edge)
            early = x["t"] < 0.25 * end
            ax_dec.annotate(why, (x["t"], y + 0.2), xytext=(3 if early else -3, 0),
                            textcoords="offset points", fontsize=7,
                            ha="left" if early else "right")
        shown_kinds.add("eot")
        ax_dec.axvline(x["t"], color="#c62828", lw=1.2)
        ax_dec.annotate(f"END OF TURN\n{label(repr(x['new_transcript']), 30)}",
                        (x["t"], 0.12), xytext=(-3 if flip else 3, 0),
                        textcoords="offset points", fontsize=7, color="#c62828",
                        ha="right" if flip else "left", va="bottom")
    for x in lines:
        if x["kind"] == "on_interruption":
            shown_kinds.add("interruption")
            flip = right(x["t"])
            ax_dec.axvline(x["t"], color="#6a1b9a", lw=1.5, ls="--")
            ax_dec.annotate("INTERRUPTION", (x["t"], 2.55), xytext=(-3 if flip else 3, 0),
                            textcoords="offset points", fontsize=7, color="#6a1b9a",
                            ha="right" if flip else "left", va="top")
    ax_dec.set_yticks([])
    ax_dec.set_ylim(0, 2.65)
    ax_dec.set_ylabel("decisions")
    entries = {
        "wait": Patch(color="#fbc02d", alpha=0.8, label="end-of-turn wait (trigger to end)"),
        "delay": Patch(color="#8d6e63", alpha=0.6, label="delay from the last speech"),
        "eot": Line2D([], [], color="#c62828", lw=1.2, label="end of turn"),
        "interruption": Line2D([], [], color="#6a1b9a", lw=1.5, ls="--", label="interruption")}
    legend(ax_dec, [h for k, h in entries.items() if k in shown_kinds])

    # 5. region states over time
    present = {name for r in records[:1] for name, _ in r.state}
    regions = [name for name in REGIONS if not records or name in present]
    used: dict[str, list[str]] = {}  # colour -> the states drawn in it
    for k, region in enumerate(regions):
        y = len(regions) - 1 - k
        for a, b, state in _spans(records, region, end):
            color = COLORS.get(state, "#bdbdbd")
            if state not in used.setdefault(color, []):
                used[color].append(state)
            ax_st.barh(y, b - a, left=a, height=0.7, color=color)
            if b - a > 0.25 and color != GREY:
                ax_st.annotate(state, ((a + b) / 2, y), ha="center", va="center", fontsize=6.5,
                               color="white")
    legend(ax_st, [Patch(color=c, label="resting (" + ", ".join(sorted(st)) + ")"
                         if c == GREY else " / ".join(st)) for c, st in used.items()])
    ax_st.set_yticks(range(len(regions)), list(reversed(regions)), fontsize=8)
    ax_st.set_xlabel("session time (s)")
    ax_st.set_xlim(0, end)
    for ax in axes:
        ax.grid(axis="x", color="#e0e0e0", lw=0.5)
    fig.tight_layout()
    return fig
