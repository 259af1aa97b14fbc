"""The figures of one setting added up over sessions, small enough to send over a network.

A :class:`Tally` holds the counts of :class:`~turnfsm.quality.Score` and the response
latencies as a histogram of their exact values (a score rounds each latency to 1e-6 s, so
equal latencies are common and the histogram is exact). Adding tallies is commutative: the
figures do not depend on the order sessions were scored in, on which worker scored them, or
on how the sweep was cut into tasks; the quantiles are those of
:meth:`Score.latency <turnfsm.quality.Score.latency>` on all the latencies together.
"""

from __future__ import annotations

from typing import Any

import attrs

from ..quality.score import COUNTS, METRICS, Score

__all__ = ["COUNTS", "METRICS", "Tally"]


@attrs.define
class Tally:
    """Counts and latencies of one setting over some sessions."""

    sessions: int = 0
    turns: int = 0
    cut_ins: int = 0
    orphans: int = 0
    missed_turns: int = 0
    backchannel_turns: int = 0
    noise_turns: int = 0
    false_interruptions: int = 0
    missed_interruptions: int = 0
    latencies: dict[float, int] = attrs.field(factory=dict)

    def add(self, score: Score) -> None:
        """Add one session's score."""
        self.sessions += 1
        for name in COUNTS:
            setattr(self, name, getattr(self, name) + getattr(score, name))
        for x in score.latencies:
            self.latencies[x] = self.latencies.get(x, 0) + 1

    def merge(self, other: Tally) -> None:
        """Add another tally (of other sessions, same setting)."""
        self.sessions += other.sessions
        for name in COUNTS:
            setattr(self, name, getattr(self, name) + getattr(other, name))
        for x, n in other.latencies.items():
            self.latencies[x] = self.latencies.get(x, 0) + n

    @property
    def responses(self) -> int:
        """How many latencies (turns that got a response)."""
        return sum(self.latencies.values())

    def _nth(self, xs: list[float], k: int) -> float:
        seen = 0
        for x in xs:
            seen += self.latencies[x]
            if k < seen:
                return x
        raise IndexError(k)  # pragma: no cover - k < responses

    def latency(self, q: float) -> float | None:
        """A quantile of the latencies, exactly as :meth:`Score.latency` computes it."""
        n = self.responses
        if n == 0:
            return None
        xs = sorted(self.latencies)
        if q == 0.5:  # statistics.median
            if n % 2:
                return self._nth(xs, n // 2)
            return (self._nth(xs, n // 2 - 1) + self._nth(xs, n // 2)) / 2
        return self._nth(xs, min(n - 1, round(q * (n - 1))))

    def summary(self) -> dict[str, Any]:
        """The figures, with the keys of :meth:`Score.summary` (and ``sessions``)."""
        return {"sessions": self.sessions, **{k: getattr(self, k) for k in COUNTS},
                "latency_p50": self.latency(0.5), "latency_p90": self.latency(0.9),
                "latency_max": max(self.latencies) if self.latencies else None}
