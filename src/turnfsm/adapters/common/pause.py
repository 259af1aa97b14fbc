"""The pause of the agent's audio on credible speech over it, resumed or stopped by turnfsm's
verdict (see :mod:`turnfsm.adapters.common`)."""

from __future__ import annotations

import logging
import math
from collections.abc import Callable

import attrs

from ... import outputs as out
from ...runtime import Session
from .overlap import OverlapDetector

log = logging.getLogger("turnfsm.adapters")

DEFAULT_PAUSE_AFTER = 0.15  # the overlap (onset to a voiced window) that pauses the agent
DEFAULT_RESUME_AFTER = 0.35  # unvoiced windows after the last voiced one that resume it
MAX_PAUSE = 3.0  # a pause no verdict ended by then is resumed


@attrs.define
class PauseRecord:
    """One pause of the agent's audio, in session time: ``onset`` of the overlap that
    caused it, ``paused_at``, ``ended_at`` (None while paused) and how it ended:
    ``resumed`` (a backchannel, or speech that ended undecided), ``stopped`` (an
    interruption: the framework cleared the audio), ``agent`` (the agent's speech ended
    or restarted), ``timeout`` (:data:`MAX_PAUSE`)."""

    onset: float
    paused_at: float
    ended_at: float | None = None
    outcome: str | None = None


class OutputPause:
    """Pauses the agent's audio as soon as speech over it is credible, long before the
    interruption verdict (see the module). ``after``: the overlap, from its onset to a
    voiced window, that pauses. The adapter gives the framework's ``pause`` and ``resume``
    (:meth:`attach`), attaches this to its :class:`OverlapDetector` (which tells it the
    overlap's voiced windows and the engine's markers), hands it every engine output
    (:meth:`on_output`) and calls :meth:`end` when it has stopped the audio. Every pause is
    kept in :attr:`records`."""

    def __init__(self, after: float = DEFAULT_PAUSE_AFTER,
                 resume_after: float | None = DEFAULT_RESUME_AFTER,
                 max_pause: float = MAX_PAUSE) -> None:
        if not 0 <= after < math.inf:
            raise ValueError(f"pause_after must be >= 0 seconds, not {after!r}")
        if resume_after is not None and not 0 < resume_after < math.inf:
            raise ValueError(f"resume_after must be > 0 seconds, not {resume_after!r}")
        if not 0 < max_pause < math.inf:
            raise ValueError(f"max_pause must be > 0 seconds, not {max_pause!r}")
        self.after = float(after)
        self.resume_after = None if resume_after is None else float(resume_after)
        self.max_pause = float(max_pause)
        self.session: Session | None = None
        self.detector: OverlapDetector | None = None  # set by OverlapDetector.attach_pause
        self._pause: Callable[[], bool] | None = None
        self._resume: Callable[[], None] | None = None
        self.records: list[PauseRecord] = []
        self._current: PauseRecord | None = None
        self._decided = False  # the detector called the paused overlap an interruption
        self._epoch = 0  # a scheduled resume or timeout of an older state is dead

    def attach(self, pause: Callable[[], bool], resume: Callable[[], None]) -> None:
        """The framework's output: ``pause()`` (False: it cannot pause now) and ``resume()``."""
        self._pause, self._resume = pause, resume

    @property
    def paused(self) -> bool:
        """The agent's audio is paused by turnfsm now."""
        return self._current is not None

    def voiced(self, onset: float, t: float) -> None:
        """A voiced window at ``t`` of the overlap begun at ``onset``."""
        s = self.session
        if self._current is not None or s is None or self._pause is None or \
                t - onset < self.after - 1e-9:
            return
        try:
            ok = self._pause()
        except Exception:
            log.exception("pausing the agent's audio failed")
            return
        if not ok:
            return
        self._current = PauseRecord(onset=onset, paused_at=s.now())
        self.records.append(self._current)
        self._decided = False
        self._epoch += 1
        epoch = self._epoch
        s.call_at(s.now() + self.max_pause, lambda: self._expire(epoch))

    def silent(self, last_voiced: float, t: float) -> None:
        """An unvoiced window at ``t`` of the open overlap: ``resume_after`` seconds past
        its last voiced window, the utterance is over undecided (too short for an
        interruption); the agent resumes (its words may still make it a turn)."""
        if self._current is not None and not self._decided and \
                self.resume_after is not None and t - last_voiced >= self.resume_after - 1e-9:
            self.end("resumed")

    def decided(self) -> None:
        """The detector called the overlap an interruption: the framework stops the audio."""
        self._decided = True

    def reopened(self) -> None:
        """An overlap opened while paused: it continues the paused one (no resume)."""
        s, cur = self.session, self._current
        if cur is None or s is None:
            return
        self._epoch += 1
        epoch = self._epoch
        s.call_at(max(s.now(), cur.paused_at + self.max_pause), lambda: self._expire(epoch))

    def closed(self, resume_at: float) -> None:
        """The overlap closed undecided: resume at ``resume_at`` unless one continues it."""
        s = self.session
        if self._current is None or self._decided or s is None:
            return
        self._epoch += 1
        epoch = self._epoch
        s.call_at(max(s.now(), resume_at), lambda: self._resume_if(epoch))

    def on_output(self, o: out.Output) -> None:
        """A backchannel dropped while the user is silent resumes the agent at once, also
        after the detector's interruption verdict: its words (a backchannel phrase) overruled
        that verdict, which the engine never reported."""
        if self._current is None or (self.detector is not None and self.detector.judging):
            return  # the user still speaks: the overlap decides
        if isinstance(o, out.UserTurnDropped) or (
                isinstance(o, out.TranscriptDropped) and o.reason == "backchannel"):
            self.end("resumed")

    @property
    def current(self) -> PauseRecord | None:
        """The pause going on (None: the audio is not paused by turnfsm)."""
        return self._current

    def end(self, outcome: str, record: PauseRecord | None = None) -> None:
        """End the pause (``record``: only if it is still that one; ``stopped``: the
        adapter has stopped the audio already)."""
        if record is not None and record is not self._current:
            return
        cur, self._current = self._current, None
        self._epoch += 1
        if cur is None:
            return
        s = self.session
        cur.ended_at, cur.outcome = (s.now() if s is not None else cur.paused_at), outcome
        if self._resume is not None:
            try:
                self._resume()
            except Exception:
                log.exception("resuming the agent's audio failed")

    def _resume_if(self, epoch: int) -> None:
        if epoch == self._epoch:
            self.end("resumed")

    def _expire(self, epoch: int) -> None:
        if epoch == self._epoch and self._current is not None:
            log.warning("the agent's audio was paused %.1f s without a verdict; resumed",
                        self.max_pause)
            self.end("timeout")


def attach_pause(detector: OverlapDetector | None, pause_after: float | None,
                 resume_after: float | None, pause: Callable[[], bool],
                 resume: Callable[[], None]) -> OutputPause | None:
    """The adapter's :class:`OutputPause` on ``detector`` (None without a built-in detector
    or with ``pause_after=None``)."""
    if detector is None or pause_after is None:
        return None
    p = OutputPause(pause_after, resume_after)
    p.attach(pause, resume)
    detector.attach_pause(p)
    return p
