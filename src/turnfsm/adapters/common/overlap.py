"""turnfsm's interruption detector on a framework's VAD stream (see
:mod:`turnfsm.adapters.common`)."""

from __future__ import annotations

import contextlib
from typing import Protocol

from ... import events as ev
from ... import outputs as out
from ...runtime import Session, SessionClosed

DEFAULT_MIN_DURATION = 0.5  # seconds of overlap (onset to a voiced window) that interrupt
DEFAULT_JOIN = 0.5  # an overlap this close to the last one's last voiced window continues it



class OverlapListener(Protocol):
    """What the detector tells of its overlaps as they go (:class:`OutputPause` listens):
    a voiced window, a silent one, the verdict, the overlap reopened, closed undecided, or
    ended by the agent."""

    session: Session | None
    detector: OverlapDetector | None

    def voiced(self, onset: float, t: float) -> None: ...

    def silent(self, last_voiced: float, t: float) -> None: ...

    def decided(self) -> None: ...

    def reopened(self) -> None: ...

    def closed(self, resume_at: float) -> None: ...

    def end(self, outcome: str) -> None: ...


class OverlapDetector:
    """turnfsm's interruption detector on a framework's VAD (see the module): push every
    VAD window's speech probability with :meth:`window`; the verdict is an
    ``OverlapVerdict`` pushed into the session at the window that decides it, so turnfsm's
    gate, backchannel rules and records apply to it. ``min_duration``: the overlap, from the
    speech's onset to a voiced window, that makes an interruption; ``threshold``: the
    probability at or above which a window is voiced; ``join``: the pause (from the last
    voiced window of an overlap that closed undecided to the next one's onset) across
    which the next overlap continues it (0: never)."""

    def __init__(self, min_duration: float = DEFAULT_MIN_DURATION,
                 threshold: float = 0.5, join: float = DEFAULT_JOIN) -> None:
        if not min_duration >= 0:
            raise ValueError(f"min_duration must be >= 0 seconds, not {min_duration!r}")
        if not 0.0 < threshold <= 1.0:
            raise ValueError(f"threshold must be in (0, 1], not {threshold!r}")
        if not join >= 0:
            raise ValueError(f"join must be >= 0 seconds, not {join!r}")
        self.min_duration = float(min_duration)
        self.threshold = float(threshold)
        self.join = float(join)
        self.session: Session | None = None
        self._onset: float | None = None  # the onset of the overlap being judged
        self._last_voiced: float | None = None  # its last voiced window so far
        # (onset, last voiced window) of the overlap that closed undecided when the user
        # stopped, over the agent speech still going on
        self._closed: tuple[float, float] | None = None
        self.verdicts: list[tuple[float, float]] = []  # (onset, decided at) of each one
        self.pause: OverlapListener | None = None  # told the overlap's voiced windows and markers

    def bind(self, session: Session) -> None:
        """The session verdicts are pushed into."""
        self.session = session
        if self.pause is not None:
            self.pause.session = session

    def attach_pause(self, pause: OverlapListener | None) -> None:
        """Tell ``pause`` this detector's overlaps (None: no pausing)."""
        self.pause = pause
        if pause is not None:
            pause.detector = self
            pause.session = self.session

    @property
    def judging(self) -> bool:
        """An overlap is open and not decided yet."""
        return self._onset is not None

    def signal(self, signal: out.DetectorSignal) -> None:
        """The engine's markers: an overlap opens (judged from now on) or closes."""
        s = self.session
        if s is None:
            return
        pause = self.pause
        if signal.signal == "overlap_speech_ended":  # the user (or the agent) stopped
            if self._onset is not None and self._last_voiced is not None:
                self._closed = (self._onset, self._last_voiced)
            if pause is not None and self._onset is not None:  # closed undecided
                # resumed once a next overlap could no longer continue this one
                last = self._last_voiced if self._last_voiced is not None else s.now()
                pause.closed(last + self.join)
            self._onset = self._last_voiced = None
            return
        if signal.signal != "overlap_speech_started":  # the agent started or stopped
            self._onset = self._last_voiced = self._closed = None
            if pause is not None:
                pause.end("agent")
            return
        onset = s.now() if signal.started_at is None else signal.started_at
        closed, self._closed = self._closed, None
        if closed is not None and onset - closed[1] <= self.join + 1e-9:
            onset = closed[0]  # the same utterance, after a pause: judged whole
        self._onset, self._last_voiced = onset, None
        if pause is not None:
            pause.reopened()
        if (signal.speech_duration or 0.0) >= self.min_duration:
            # the agent started over speech already long enough: judged at this instant,
            # once the step that opened the overlap is over
            s.call_at(s.engine.now, self._verdict)

    def window(self, probability: float, at: float | None = None) -> None:
        """One VAD window's speech probability (``at``: the window's end in session time,
        default now)."""
        onset, s = self._onset, self.session
        if onset is None or s is None:
            return
        if probability < self.threshold:
            if self.pause is not None and self._last_voiced is not None:
                self.pause.silent(self._last_voiced, s.now() if at is None else at)
            return
        t = s.now() if at is None else at
        self._last_voiced = t
        if self.pause is not None:
            self.pause.voiced(onset, t)
        if t - onset >= self.min_duration - 1e-9:
            self._verdict()

    def _verdict(self) -> None:
        s, started = self.session, self._onset
        if s is None or started is None or s.closed:
            return
        self._onset = self._last_voiced = self._closed = None
        now = max(s.now(), s.engine.input_clock)
        self.verdicts.append((started, now))
        if self.pause is not None:
            self.pause.decided()
        with contextlib.suppress(SessionClosed):
            s.push_overlap(ev.OverlapVerdict(
                t=now, is_interruption=True, overlap_started_at=started, detected_at=now,
                probability=1.0, total_duration=now - started, detection_delay=now - started,
                num_requests=1))
