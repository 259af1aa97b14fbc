"""What the Pipecat and LiveKit adapters share: the audio overlap detector both ship on by
default, the chaining of the adapter's own hooks with the app's, and the bookkeeping of
transcripts the engine holds.

**The overlap detector** (:class:`OverlapDetector`) is the rule ``turnfsm listen`` uses for
overlaps, run on the framework's own VAD, window by window: user speech that begins while
the agent speaks is an interruption as soon as a *voiced* window comes ``min_duration``
seconds (0.5 s) after the speech's onset; speech that stops sooner is no interruption
(the engine then judges its words: a backchannel is dropped). Only voiced windows count
(the VAD's per-window speech probability at or above ``threshold``), never the silence a
VAD waits through before it reports the end of speech: a 0.45 s "okay" followed by 0.55 s
of silence never reaches 0.5 s, while "wait, stop" does as soon as "stop" begins. An
overlap that opens within ``join`` seconds (0.5 s) of the last voiced window of the one
before (over the same agent speech, no verdict yet) goes on from that one's onset: a VAD
whose ``stop_secs`` is shorter than the pauses of "wait, ... stop, ... that's wrong" splits
it into segments, and each alone is too short; judged whole, it interrupts as it would with
a longer ``stop_secs``.

**Transcripts the engine holds** (:class:`HeldTranscripts`): a shell that forwards the
user's transcripts to its framework keeps each one back while the engine reports it held
(``TranscriptHeld``) and sends it when the engine releases it (``Transcript`` with the same
ref), or forgets it when the engine drops it (``TranscriptDropped``); a held interim that
a later transcript of the same speech supersedes is forgotten then. The shell decides from
these outputs only, never from the chart's region or state names (profiles rename them).
"""

from __future__ import annotations

import contextlib
import inspect
import logging
from collections.abc import Awaitable, Callable
from typing import Any, Generic, TypeVar

import attrs

from .. import events as ev
from .. import outputs as out
from ..runtime import Session, SessionClosed

__all__ = ["DEFAULT_JOIN", "DEFAULT_MIN_DURATION", "DEFAULT_PAUSE_AFTER",
           "DEFAULT_RESUME_AFTER", "MAX_PAUSE",
           "HeldTranscripts", "OutputPause", "OverlapDetector", "PauseRecord", "attach_pause",
           "call_hook"]

log = logging.getLogger("turnfsm.adapters")

DEFAULT_MIN_DURATION = 0.5  # seconds of overlap (onset to a voiced window) that interrupt
DEFAULT_JOIN = 0.5  # an overlap this close to the last one's last voiced window continues it
DEFAULT_PAUSE_AFTER = 0.15  # the overlap (onset to a voiced window) that pauses the agent
DEFAULT_RESUME_AFTER = 0.35  # unvoiced windows after the last voiced one that resume it
MAX_PAUSE = 3.0  # a pause no verdict ended by then is resumed
T = TypeVar("T")


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
        self.pause: OutputPause | None = None  # told the overlap's voiced windows and markers

    def bind(self, session: Session) -> None:
        """The session verdicts are pushed into."""
        self.session = session
        if self.pause is not None:
            self.pause.session = session

    def attach_pause(self, pause: OutputPause | None) -> None:
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


@attrs.define
class PauseRecord:
    """One pause of the agent's audio, in session time: ``onset`` of the overlap that
    caused it, ``paused_at``, ``ended_at`` (None while paused) and how it ended:
    ``resumed`` (a backchannel, or speech that ended undecided), ``stopped`` (an
    interruption: the framework cleared the audio), ``agent`` (the agent's speech ended
    or restarted), ``timeout`` (:data:`MAX_PAUSE`), ``closed``."""

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
        if not after >= 0:
            raise ValueError(f"pause_after must be >= 0 seconds, not {after!r}")
        if resume_after is not None and not resume_after > 0:
            raise ValueError(f"resume_after must be > 0 seconds, not {resume_after!r}")
        if not max_pause > 0:
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
        """A backchannel dropped while the user is silent resumes the agent at once."""
        if self._current is None or self._decided or \
                (self.detector is not None and self.detector.judging):
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


class HeldTranscripts(Generic[T]):
    """The framework's transcript events the engine has not let through yet, by ref (see
    the module). :meth:`push` before pushing the event into the session; every output goes
    to :meth:`on_output`, which calls ``send`` for each event to hand to the framework now,
    in order."""

    def __init__(self, send: Callable[[T], None]) -> None:
        self._send = send
        self._pending: dict[Any, tuple[T, bool]] = {}  # ref -> (event, is a final)
        self._held: set[Any] = set()  # refs the engine reported held

    def push(self, ref: Any, event: T, *, final: bool) -> None:
        """An event is about to be pushed into the session with ``ref``."""
        self._pending[ref] = (event, final)

    def pushed(self, ref: Any) -> None:
        """The push of ``ref`` returned: unless the engine holds it, it is settled (sent
        with its ``Transcript``, or ignored by the engine: forgotten)."""
        if ref not in self._held:
            self._pending.pop(ref, None)

    def on_output(self, o: out.Output) -> None:
        """Act on one engine output."""
        if isinstance(o, out.TranscriptHeld):
            if o.ref in self._pending:
                self._held.add(o.ref)
        elif isinstance(o, out.Transcript):
            item = self._pending.pop(o.ref, None)
            self._held.discard(o.ref)
            if item is not None:
                self._send(item[0])
            if o.type == "final":
                self._supersede(o.ref)
        elif isinstance(o, out.TranscriptDropped) and \
                self._pending.pop(o.ref, None) is not None:
            self._held.discard(o.ref)
            self._supersede(o.ref)

    def _supersede(self, ref: Any) -> None:
        """A final was settled: the held interims before it are stale (forgotten)."""
        for r in [r for r, (_, final) in self._pending.items() if not final and r != ref]:
            if r in self._held and (not isinstance(r, int) or not isinstance(ref, int)
                                    or r < ref):
                del self._pending[r]
                self._held.discard(r)

    def clear(self) -> None:
        """Forget everything (the turn was cleared; the session closed)."""
        self._pending.clear()
        self._held.clear()

    def __len__(self) -> int:
        return len(self._held)


def call_hook(hooks: object | None, name: str, arg: Any,
              spawn: Callable[[Awaitable[Any]], object] | None = None) -> Any:
    """Call the app's hook ``name`` (if it has one) with ``arg``; a hook that raises is
    logged, never propagated; an awaitable result is handed to ``spawn`` (or returned)."""
    fn = getattr(hooks, name, None)
    if fn is None:
        return None
    try:
        r = fn(arg)
    except Exception:
        log.exception("hook %s raised on %r", name, arg)
        return None
    if inspect.isawaitable(r) and spawn is not None:
        spawn(_logged(r, f"hook {name}"))
        return None
    return r


async def _logged(aw: Awaitable[Any], what: str) -> None:
    try:
        await aw
    except Exception:
        log.exception("%s raised", what)
