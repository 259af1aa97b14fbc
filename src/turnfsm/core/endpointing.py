"""Endpointing strategies: how long to wait after the user stops speaking.

``fixed`` uses the configured delays. ``dynamic`` learns ``min_delay`` from observed pauses
with a clamped exponential moving average, as the reference recogniser does; unlike it, the
``max_delay`` ceiling is not learned from the gap before the agent speaks (that gap measures
the agent's own latency, defect D33).
"""

from __future__ import annotations

from ..options import EndpointingOptions

LEADING_SILENCE_GRACE = 0.25  # s: user speech this close to agent start is not a backchannel


class _ExpFilter:
    __slots__ = ("alpha", "max_val", "min_val", "value")

    def __init__(self, alpha: float, initial: float, min_val: float, max_val: float) -> None:
        self.alpha = alpha
        self.value = initial
        self.min_val = min_val
        self.max_val = max_val

    def apply(self, sample: float) -> None:
        self.value = self.alpha * self.value + (1 - self.alpha) * sample
        if self.value > self.max_val:
            self.value = self.max_val
        if self.value < self.min_val:
            self.value = self.min_val


class Endpointing:
    """Fixed endpointing; also tracks whether the user's speech overlaps the agent's."""

    __slots__ = ("_max", "_min", "overlapping")

    def __init__(self, opts: EndpointingOptions) -> None:
        self._min = float(opts.min_delay)
        self._max = float(opts.max_delay)
        self.overlapping = False

    @property
    def min_delay(self) -> float:
        return self._min

    @property
    def max_delay(self) -> float:
        return self._max

    def on_user_start(self, t: float, overlapping: bool) -> None:
        self.overlapping = overlapping

    def on_user_end(self, t: float, ignore: bool) -> None:
        self.overlapping = False

    def on_agent_start(self, t: float) -> None:
        pass

    def on_agent_end(self, t: float) -> None:
        pass


class DynamicEndpointing(Endpointing):
    """``min_delay`` learned from pauses between utterances (and before immediate
    interruptions); ``max_delay`` is the configured ceiling."""

    __slots__ = ("_agent_end", "_agent_start", "_utt", "_utt_end", "_utt_start")

    def __init__(self, opts: EndpointingOptions) -> None:
        super().__init__(opts)
        a = float(opts.alpha)
        self._utt = _ExpFilter(a, self._min, self._min, self._max)
        self._utt_start: float | None = None
        self._utt_end: float | None = None
        self._agent_start: float | None = None
        self._agent_end: float | None = None

    @property
    def min_delay(self) -> float:
        return self._utt.value

    @property
    def max_delay(self) -> float:
        # the ceiling is not learned: the gap before the agent speaks measures the agent's
        # latency, not the user's pauses
        return max(self._max, self.min_delay)

    def _between_utterance(self) -> float:
        if self._utt_end is None or self._utt_start is None:
            return 0.0
        return max(0.0, self._utt_start - self._utt_end)

    def _between_turn(self) -> float:
        if self._agent_start is None or self._utt_end is None:
            return 0.0
        return max(0.0, self._agent_start - self._utt_end)

    def on_agent_start(self, t: float) -> None:
        self._agent_start = t
        self._agent_end = None
        self.overlapping = False

    def on_agent_end(self, t: float) -> None:
        if self._agent_start is not None and (
            self._agent_end is None or self._agent_end < self._agent_start
        ):
            self._agent_end = t
        self.overlapping = False

    def on_user_start(self, t: float, overlapping: bool) -> None:
        if self.overlapping:
            return  # duplicate notification
        if (
            self._utt_start is not None
            and self._utt_end is not None
            and self._agent_start is not None
            and self._utt_end < self._utt_start
            and overlapping
        ):
            self._utt_end = self._agent_start - 1e-3
        self._utt_start = t
        self.overlapping = overlapping

    def on_user_end(self, t: float, ignore: bool) -> None:
        if ignore and self.overlapping:
            within_grace = (
                self._utt_start is not None
                and self._agent_start is not None
                and abs(self._utt_start - self._agent_start) < LEADING_SILENCE_GRACE
            )
            if not within_grace:  # probably a backchannel: learn nothing from it
                self.overlapping = False
                self._utt_start = None
                self._utt_end = None
                return
        if self.overlapping or (self._agent_start is not None and self._agent_end is None):
            if self._utt_start is None or self._agent_start is None:
                turn_delay, interruption_delay = 0.0, 0.0
            else:
                turn_delay = self._between_turn()
                interruption_delay = abs(self._between_utterance() - turn_delay)
            pause = self._between_utterance()
            if (
                0 < interruption_delay <= self.min_delay
                and 0 < turn_delay <= self.max_delay
                and pause > 0
            ):
                self._utt.apply(pause)
        elif (
            self._between_turn() <= 0  # a gap before agent speech teaches nothing
            and (pause := self._between_utterance()) > 0
            and self._agent_end is None
            and self._agent_start is None
        ):
            self._utt.apply(pause)
        self._utt_end = t
        self._agent_start = None
        self._agent_end = None
        self.overlapping = False


def make_endpointing(opts: EndpointingOptions) -> Endpointing:
    """A fresh endpointing state for ``opts``."""
    return DynamicEndpointing(opts) if opts.mode == "dynamic" else Endpointing(opts)
