"""Scoring a session's end-of-turn decisions against its labels.

A truth file (``NAME.truth.json``, see ``examples/audio/README.md``) labels the user's turns
(``start``, ``intended_end``, pauses inside), backchannels and interruptions. Each end of
turn is attributed to the latest labelled user speech that started before it:

* a **cut-in**: an end of turn inside a labelled turn, before its intended end (the user
  goes on);
* the **response** to a turn: the first end of turn at or after its intended end (before the
  next labelled user speech); its **latency** is the end of turn minus the intended end;
* an **orphan**: any further end of turn in that span (a piece of the turn delivered on its
  own);
* a **backchannel turn**: an end of turn attributed to a labelled backchannel;
* a **missed turn**: a labelled turn with no response;
* a **noise turn**: an end of turn attributed to a labelled non-speech sound of the user's
  channel (``events``: a cough), one that does not lie inside a labelled turn (there the
  turn owns what follows it).

Interruptions: an ``on_interruption`` within a labelled interruption (from its start to one
second after its end) finds it; one found for none is a **false interruption**, a labelled
interruption found by none is a **missed interruption**.
"""

from __future__ import annotations

import json
import statistics
from pathlib import Path
from typing import Any

import attrs

from ..errors import TurnFsmError


class TruthError(TurnFsmError):
    """A truth file is malformed."""


@attrs.frozen
class Span:
    """A labelled span of user speech."""

    kind: str  # turn | backchannel | interruption | noise
    start: float
    end: float
    intended_end: float
    text: str


@attrs.frozen
class Truth:
    """The labels of one session."""

    path: str
    turns: tuple[Span, ...]
    backchannels: tuple[Span, ...]
    interruptions: tuple[Span, ...]
    #: the user's non-speech sounds (``events`` of the user's channel), as noise spans
    noises: tuple[Span, ...] = ()
    #: the dialogue's kinds (``kind``: "list", "spelling", ...; none in older files)
    kinds: tuple[str, ...] = ()
    #: the user's language (``language``), None when the file does not say
    language: str | None = None
    #: how the dialogue was synthesized (``synthesis``: "parts", "ssml"), None when unsaid
    synthesis: str | None = None


def read_truth(path: str | Path) -> Truth:
    """Read a truth file (TruthError naming the file and the entry when malformed)."""
    p = str(path)
    try:
        doc = json.loads(Path(p).read_text(encoding="utf-8"))
    except (OSError, ValueError) as e:
        raise TruthError(f"{p}: cannot read the truth file: {e}") from None
    if not isinstance(doc, dict):
        raise TruthError(f"{p}: the truth file must be an object")

    def spans(key: str, kind: str) -> tuple[Span, ...]:
        out = []
        for i, x in enumerate(doc.get(key) or []):
            try:
                start, end = float(x["start"]), float(x["end"])
                intended = float(x.get("intended_end", end))
            except (KeyError, TypeError, ValueError):
                raise TruthError(f"{p}: {key}[{i}] needs numeric start and end") from None
            if not 0 <= start <= end:
                raise TruthError(f"{p}: {key}[{i}]: start must be <= end")
            out.append(Span(kind, start, end, intended, str(x.get("text", ""))))
        return tuple(sorted(out, key=lambda s: s.start))
    kinds = doc.get("kind", [])
    if isinstance(kinds, str):
        kinds = [kinds]
    if not isinstance(kinds, list) or not all(isinstance(k, str) and k for k in kinds):
        raise TruthError(f"{p}: kind must be a list of names")
    language = doc.get("language")
    if language is not None and not (isinstance(language, str) and language):
        raise TruthError(f"{p}: language must be a language tag such as 'en'")
    synthesis = doc.get("synthesis")
    if synthesis is not None and not (isinstance(synthesis, str) and synthesis):
        raise TruthError(f"{p}: synthesis must be a name such as 'parts' or 'ssml'")
    noises = []
    for i, x in enumerate(doc.get("events") or []):
        if not isinstance(x, dict):
            raise TruthError(f"{p}: events[{i}] must be an object")
        if x.get("channel", "user") != "user":
            continue  # the agent's channel is scripted: its sounds are nobody's turn
        try:
            start, end = float(x["start"]), float(x["end"])
        except (KeyError, TypeError, ValueError):
            raise TruthError(f"{p}: events[{i}] needs numeric start and end") from None
        if not 0 <= start <= end:
            raise TruthError(f"{p}: events[{i}]: start must be <= end")
        noises.append(Span("noise", start, end, end, str(x.get("kind", "noise"))))
    return Truth(p, spans("turns", "turn"), spans("backchannels", "backchannel"),
                 spans("interruptions", "interruption"),
                 tuple(sorted(noises, key=lambda s: s.start)), tuple(kinds), language,
                 synthesis)


@attrs.frozen
class Score:
    """The figures of one session (or of several, added up)."""

    turns: int = 0
    cut_ins: int = 0
    orphans: int = 0
    missed_turns: int = 0
    backchannel_turns: int = 0
    noise_turns: int = 0
    false_interruptions: int = 0
    missed_interruptions: int = 0
    latencies: tuple[float, ...] = ()
    details: tuple[str, ...] = ()

    def __add__(self, other: Score) -> Score:
        return Score(*(a + b for a, b in zip(attrs.astuple(self, recurse=False),
                                             attrs.astuple(other, recurse=False), strict=True)))

    def latency(self, q: float) -> float | None:
        """A quantile of the response latencies (0.5 the median), or None."""
        if not self.latencies:
            return None
        xs = sorted(self.latencies)
        if q == 0.5:
            return statistics.median(xs)
        return xs[min(len(xs) - 1, round(q * (len(xs) - 1)))]

    def summary(self) -> dict[str, Any]:
        """The figures as a mapping (for --json and tables)."""
        return {**{k: getattr(self, k) for k in COUNTS},
                "latency_p50": self.latency(0.5), "latency_p90": self.latency(0.9),
                "latency_max": max(self.latencies) if self.latencies else None}


#: The counted figures of a :class:`Score`, in order (the fields before the latencies).
COUNTS: tuple[str, ...] = tuple(a.name for a in attrs.fields(Score)
                                if a.name not in ("latencies", "details"))
#: Every figure of :meth:`Score.summary`, in order.
METRICS: tuple[str, ...] = (*COUNTS, "latency_p50", "latency_p90", "latency_max")


#: how much before a labelled end an end of turn may come and still be at it (rounding)
EPS = 1e-6


def _attribute(eots: list[float], truth: Truth
               ) -> tuple[list[Span], dict[int, list[float]]]:
    """The labelled spans an end of turn can belong to, in order, and the ends of turn
    attributed to each (by index): the latest span that started at or before it."""
    # a barge-in is labelled as an interruption and as a turn: it is scored once as speech
    extra = [i for i in truth.interruptions
             if not any(abs(i.start - t.start) < 0.05 for t in truth.turns)]
    # a sound inside a labelled turn (from its start to its intended end) belongs to it
    noises = [n for n in truth.noises
              if not any(t.start <= n.start < t.intended_end for t in truth.turns)]
    speech = sorted([*truth.turns, *truth.backchannels, *extra, *noises],
                    key=lambda s: s.start)
    attributed: dict[int, list[float]] = {}
    for t in eots:
        owner = None
        for k, s in enumerate(speech):
            if s.start <= t:
                owner = k
        if owner is not None:
            attributed.setdefault(owner, []).append(t)
    return speech, attributed


def _is_cut_in(t: float, s: Span) -> bool:
    """Whether an end of turn attributed to ``s`` answers it before it is over."""
    return s.kind not in ("noise", "backchannel") and t < s.intended_end - EPS


def cut_ins(outputs: list[dict[str, Any]], truth: Truth) -> list[tuple[float, Span]]:
    """The cut-ins of one session's output lines, as :func:`score_outputs` counts them:
    each end of turn inside a labelled turn, before its intended end, with that turn."""
    eots = sorted(x["t"] for x in outputs if x["kind"] == "on_end_of_turn")
    speech, attributed = _attribute(eots, truth)
    return [(t, s) for k, s in enumerate(speech) for t in attributed.get(k, [])
            if _is_cut_in(t, s)]


def score_outputs(outputs: list[dict[str, Any]], truth: Truth) -> Score:
    """Score one session's output lines (the replay output format) against its labels."""
    eots = sorted(x["t"] for x in outputs if x["kind"] == "on_end_of_turn")
    intr = sorted(x["t"] for x in outputs if x["kind"] == "on_interruption")
    speech, attributed = _attribute(eots, truth)
    cut_ins = orphans = missed = bc_turns = noise_turns = 0
    lat: list[float] = []
    notes: list[str] = []
    eps = EPS
    for k, s in enumerate(speech):
        times = attributed.get(k, [])
        if s.kind == "noise":
            noise_turns += len(times)
            notes += [f"noise turn at {t:.2f} s (a {s.text} at {s.start:.2f} s)"
                      for t in times]
            continue
        if s.kind == "backchannel":
            bc_turns += len(times)
            notes += [f"backchannel turn at {t:.2f} s ({s.text!r})" for t in times]
            continue
        before = [t for t in times if _is_cut_in(t, s)]
        after = [t for t in times if not _is_cut_in(t, s)]
        cut_ins += len(before)
        notes += [f"cut-in at {t:.2f} s inside {s.text!r} (ends {s.intended_end:.2f} s)"
                  for t in before]
        if after:
            lat.append(after[0] - s.intended_end)
            orphans += len(after) - 1
            notes += [f"orphan at {t:.2f} s after {s.text!r}" for t in after[1:]]
        elif s.kind == "turn":
            missed += 1
            notes.append(f"no response to {s.text!r}")
    found = set()
    false_i = 0
    for t in intr:
        hit = next((k for k, s in enumerate(truth.interruptions)
                    if s.start - eps <= t <= s.end + 1.0), None)
        if hit is None:
            false_i += 1
            notes.append(f"false interruption at {t:.2f} s")
        else:
            found.add(hit)
    missed_i = len(truth.interruptions) - len(found)
    notes += [f"missed interruption {s.text!r} at {s.start:.2f} s"
              for k, s in enumerate(truth.interruptions) if k not in found]
    return Score(turns=sum(1 for s in speech if s.kind in ("turn", "interruption")),
                 cut_ins=cut_ins, orphans=orphans, missed_turns=missed,
                 backchannel_turns=bc_turns, noise_turns=noise_turns,
                 false_interruptions=false_i, missed_interruptions=missed_i,
                 latencies=tuple(round(x, 6) for x in lat), details=tuple(notes))
