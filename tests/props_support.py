"""Shared driver, host model and invariant checks for the property and exhaustive tests.

The :class:`Driver` is a thin shell around one :class:`~turnfsm.engine.Engine`, like
:mod:`turnfsm.replay`: it applies inputs in time order (timers due at or before an input
fire first), answers ``EouModelRequest`` (at once or after a scripted latency, as a pending
answer on the same virtual clock) and ``EndOfTurn`` (at once, accepted or refused by a
scripted host), and keeps a *shadow* of what the outputs said so far: the fate of every STT
final (by its ``ref``), the current turn's contributions, commits, boundary activations,
detector markers. After every engine call it runs every check in :data:`STEP_CHECKS`, one
function per invariant of spec section 7, and :meth:`Driver.settle` checks that the engine
gets quiet once inputs stop.

A few checks need facts the engine keeps private (the pending wait's snapshot, live timers);
they read them through the ``probe_*`` helpers below, which are the only places that touch
engine internals.

Every engine defect these properties found is fixed; its minimal reproduction stays as a
regression test (``test_bug_b*`` in ``tests/test_properties.py``, and ``tests/test_engine.py``).
"""

from __future__ import annotations

import copy
import itertools
import math
import string
import warnings
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from turnfsm import Engine, EngineOptions, UserTurnLimit
from turnfsm import events as ev
from turnfsm import outputs as out
from turnfsm.host import Scheduler

NONSPECIFIC_LANGUAGES = frozenset({"", "multi", "auto"})
# spec I3 (d), plus ``duplicate`` (README: a promoted interim's late final is kept once, D24)
DROP_REASONS = frozenset({"clear_user_turn", "backchannel_trim", "closed", "stream_reset",
                          "duplicate"})
_PUNCT = set(string.punctuation) | set("\u00b1\u2014\u2018\u2019\u201c\u201d\u2026")
EPS = 2e-6  # timer deadlines are rounded to 1 µs

# -- engine probes (white-box: the only places that read engine internals) --------------------


@dataclass(frozen=True)
class WaitProbe:
    """The pending end-of-turn wait's snapshot."""

    wait_id: int
    anchor: float | None
    manual: bool
    skip_reply: bool
    min_delay: float


def probe_wait(engine: Engine) -> WaitProbe | None:
    """The engine's pending end-of-turn wait (internal ``_wait``), or None."""
    w = engine.cx.wait
    if w is None:
        return None
    return WaitProbe(w.wait_id, w.anchor, w.manual, w.skip_reply, w.min_delay)


def probe_live_timers(engine: Engine) -> list[tuple[float, str]]:
    """(deadline, kind) of every timer the engine still considers live."""
    return sorted((t.deadline, t.kind.value) for t in engine.timers())


def probe_max_delay(engine: Engine) -> float:
    """The endpointing ``max_delay`` in force now."""
    return float(engine.cx.endpointing.max_delay)


def probe_turn_start(engine: Engine) -> float | None:
    """The current turn's start (None: the turn has no speech yet)."""
    return engine.cx.turn.user_turn_start


def probe_window(engine: Engine) -> float | None:
    """The engine's ignore window (None when no release is pending)."""
    return engine.cx.window


def clone(obj: Any) -> Any:
    """Deep copy of an engine or a driver that shares the (frozen) chart and profile."""
    memo: dict[int, Any] = {}
    eng = obj.engine if isinstance(obj, Driver) else obj
    memo[id(eng.chart)] = eng.chart
    memo[id(eng.chart.derived)] = eng.chart.derived
    memo[id(eng.profile)] = eng.profile  # frozen too (it keeps its composed chart document)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)  # itertools copy (py3.12+)
        new = copy.deepcopy(obj, memo)
    return new


# -- host model --------------------------------------------------------------------------------


@dataclass(frozen=True)
class ModelAnswer:
    """One scripted answer of the end-of-turn model."""

    latency: float = 0.0
    supported: bool = True
    probability: float | None = 1.0
    threshold: float | None = 0.1
    failed: bool = False
    stale_echo: bool = False  # also send the same answer again later (must be ignored)

    @property
    def unlikely(self) -> bool:
        return (self.supported and not self.failed and self.threshold is not None
                and self.probability is not None and self.probability < self.threshold)


@dataclass(frozen=True)
class HostScript:
    """How the simulated host answers: cycled lists of answers."""

    accept: tuple[bool, ...] = (True,)
    model: tuple[ModelAnswer, ...] = (ModelAnswer(),)
    interruption_feedback: bool = True


# -- shadow records -----------------------------------------------------------------------------


@dataclass
class FinalRec:
    """What happened so far to one non-empty STT final (by ref)."""

    ref: int
    text: str
    status: str  # sent, held, accepted, delivered, dropped, input_dropped, ignored


@dataclass
class CommitRec:
    skip_reply: bool
    refused: bool
    ignored: bool
    results: list[str] = field(default_factory=list)
    final_gen: int | None = None  # the turn generation in which the commit completed


@dataclass
class WaitRec:
    created: float
    stt_attached: bool
    exact: bool = True  # False: first seen after an engine.advance that fired several timers
    model: bool = False
    answer: ModelAnswer | None = None
    answered_at: float | None = None
    max_delay: float | None = None
    anchor: float | None = None  # the wait's anchor and whether a commit asked for it
    manual: bool = False
    agent_text: str | None = None  # what the agent said when the wait started
    # the turn's word confidences when the wait started and while it lived
    confidences: list[tuple[float | None, ...]] = field(default_factory=list)


@dataclass
class EotRec:
    """An EndOfTurn waiting for (and then given) the host's answer."""

    out: out.EndOfTurn
    refs: list[Any]
    contribs: list[tuple[Any, str]]
    wait: WaitProbe | None


@dataclass
class Step:
    """One engine call: what went in, what came out, the states around it."""

    kind: str  # input, timer, answer, model, advance
    inp: Any
    outputs: list[out.Output]
    before: dict[str, str]
    after: dict[str, str]
    t: float
    closed_before: bool


def normalized(text: str) -> str:
    """Text compared for duplicates: case-folded, punctuation removed, spaces collapsed."""
    return " ".join("".join(ch for ch in text.casefold() if ch not in _PUNCT).split())


def accumulate(parts: Iterable[str]) -> str:
    """The engine's accumulation rule (R18): single-space join, no leading space."""
    acc = ""
    for p in parts:
        acc = (acc + " " + p).lstrip()
    return acc


def mode_of(turn_detection: str | None) -> str:
    """The mode region's state for a turn_detection option."""
    return {"stt": "stt", "manual": "manual", "realtime_llm": "realtime"}.get(
        turn_detection or "", "vad")


class InvariantViolation(AssertionError):
    """An invariant of spec section 7 does not hold."""


# -- the driver ----------------------------------------------------------------------------


class Driver:
    """Drives one engine in virtual time, answers its requests, checks invariants."""

    def __init__(self, options: EngineOptions | None = None, host: HostScript | None = None, *,
                 engine_factory: Callable[..., Engine] = Engine, check: bool = True,
                 checks: Iterable[Callable[[Driver, Step], None]] | None = None,
                 history: bool = True, profile: str = "livekit") -> None:
        self.options = options or EngineOptions()
        self.host = host or HostScript()
        self.profile = profile  # the invariants that differ between profiles read it
        self.engine = engine_factory(self.options, profile=profile)
        self.scheduler: Scheduler[tuple[tuple[float, int], ModelAnswer, bool]] = \
            Scheduler(self.engine)
        self.shell: list[tuple[float, int]] = []  # (deadline, request id) of pending answers
        self.check = check
        self.history = history  # keep the log and every output (off: cheaper to copy)
        self.checks = list(STEP_CHECKS if checks is None else checks)
        self.clock = 0.0
        self.word_confidences_sent = False  # a transcript carried word confidences
        self.refs = itertools.count(1)
        self.n_accept = 0
        self.n_model = 0
        self.log: list[str] = []
        self.outputs: list[out.Output] = []
        self.calls = 0
        self.failed = False  # a check failed: the engine may be left mid-step
        self.close_complete_call: int | None = None
        # shadow
        self.finals: dict[int, FinalRec] = {}
        self.anomalies: dict[str, list[str]] = {}
        self.last_accepted_ref = 0
        self.turn_contribs: list[tuple[Any, str]] = []
        self.preflight_acc = ""
        self.pending_eot: EotRec | None = None
        self.delivered_count: dict[Any, int] = {}
        # the last accepted delivery or clear: no turn reports an onset before it (I7)
        self.turn_boundary = -math.inf
        self.stt_utterance_ended = False  # stt mode: an STT end of speech since the last onset
        self.last_clear_ref = 0
        self.commits: dict[int, CommitRec] = {}
        self.turn_gen = 0  # bumped by every accepted delivery and clear
        self.active_commit: CommitRec | None = None
        self.finalize_order: list[CommitRec] = []
        self.waits: dict[int, WaitRec] = {}
        # every automatic wait the user's speech cancelled: how long after its anchor (the
        # default profile's session pauses are some of these)
        self.pauses: list[float] = []
        self.model_requests: dict[int, float] = {}
        self.boundary_live: float | None = None  # arm time of the live activation
        self.marker_state = "idle"
        self.tracker_prev = 0
        self.limit = self.options.user_turn_limit
        self.lang_specific_seen = False
        self.close_sent = False
        self.close_complete = False
        self.promoted: str | None = None  # promoted at a commit; until a final or new speech
        self.mode_change: tuple[str, str] | None = None
        # default profile, no STT and no detector: the onset of a VAD segment begun over
        # agent speech (the gate holding) in an empty turn, until another input intervenes
        self.wordless_onset: float | None = None
        self.wordless_due: float | None = None  # the candidate the current input ends

    # -- helpers --------------------------------------------------------------------------

    def next_ref(self) -> int:
        return next(self.refs)

    def _note(self, line: str) -> None:
        if self.history:
            self.log.append(line)

    def anomaly(self, inv: str, msg: str) -> None:
        self.anomalies.setdefault(inv, []).append(f"t={self.clock:.6g}: {msg}")

    def describe(self, last: int = 40) -> str:
        """The last driver actions, for failure messages."""
        return "\n".join(self.log[-last:])

    @property
    def state(self) -> dict[str, str]:
        return self.engine.state()

    # -- time and inputs --------------------------------------------------------------------

    def next_due(self) -> tuple[float, bool] | None:
        """The earliest engine timer or pending model answer: (deadline, is the engine's)."""
        return self.scheduler.next_due()

    def run_until(self, t: float) -> None:
        """Fire every timer and pending answer due at or before ``t``, in order."""
        while True:
            nd = self.next_due()
            if nd is None or nd[0] > t:
                return
            self.clock = max(self.clock, nd[0])
            if nd[1]:
                self._note(f"  timer @{nd[0]:.6g}")
                self._call("timer", None, self.engine.fire_next_timer)
            else:
                self._answer_due(self.scheduler.pop_host())
                self._note_close()

    def feed(self, e: ev.Input) -> list[out.Output]:
        """Apply one input at its time (timers due first); return the outputs of its call."""
        self.run_until(e.t)
        self.clock = max(self.clock, e.t)
        self._note(f"{e!r}")
        self._pre_input(e)
        if isinstance(e, ev.SttTranscript) and e.word_confidences:
            self.word_confidences_sent = True
        return self._call("input", e, lambda: self.engine.handle(e))

    def advance(self, t: float) -> None:
        """Let time pass to ``t`` (timers and answers due on the way fire)."""
        self.run_until(t)
        self.clock = max(self.clock, t)

    def engine_advance(self, t: float) -> None:
        """Let time pass to ``t`` through ``engine.advance`` (when no answer is due first)."""
        hd = self.scheduler.next_host_deadline()
        if hd is not None and hd <= t:
            self.advance(t)
            return
        self._note(f"  engine.advance({t!r})")
        while True:
            nt = self.engine.next_timer()
            if nt is None or nt.deadline > t:
                break
            self._call("advance", t, lambda: self.engine.advance(t))
            hd = self.scheduler.next_host_deadline()
            if hd is not None and hd <= t:
                self.run_until(t)
                break
        self.clock = max(self.clock, t)

    def settle(self, bound: float = 120.0, max_calls: int = 1000) -> None:
        """Fire timers and answers until none is left; check the engine got quiet in time."""
        start = self.clock
        calls = 0
        while True:
            nd = self.next_due()
            if nd is None or nd[0] > start + bound or calls >= max_calls:
                break
            calls += 1
            self.run_until(nd[0])
        check_no_stuck_state(self, bound)

    def close(self) -> None:
        """Close the session and let it settle."""
        self.feed(ev.Close(t=self.clock, ref=self.next_ref()))
        self.settle()
        check_close_accounts_for_everything(self)

    # -- engine calls ------------------------------------------------------------------------

    def _call(self, kind: str, inp: Any, fn: Callable[[], list[out.Output]]) -> list[out.Output]:
        eng = self.engine
        before = eng.state()
        closed_before = eng.closed
        outs = fn()
        self.clock = max(self.clock, eng.now)  # engine.advance may have fired later timers
        self.calls += 1
        if self.history:
            self.outputs.extend(outs)
            self.log.extend(f"    -> {o!r}" for o in outs)
        step = Step(kind, inp, outs, before, eng.state(), self.clock, closed_before)
        self._observe(step)
        if self.check:
            try:
                for chk in self.checks:
                    chk(self, step)
            except Exception:
                self.failed = True
                raise
        self.anomalies.clear()
        self._respond(outs)
        return outs

    def _respond(self, outs: list[out.Output]) -> None:
        # the host stops the agent after it has answered an end of turn of the same step (an
        # input fed while the answer is awaited would queue in the engine's inbox, which this
        # shadow does not model)
        outs = sorted(outs, key=lambda o: isinstance(o, out.Interruption))
        for o in outs:
            if isinstance(o, out.EouModelRequest):
                ans = self.host.model[self.n_model % len(self.host.model)]
                self.n_model += 1
                if ans.latency <= 0:
                    self._answer_model(o.request_id, ans)
                else:
                    self._answer_later(ans.latency, o.request_id, ans, force=False)
                if ans.stale_echo:
                    self._answer_later(ans.latency + 0.05, o.request_id, ans, force=True)
            elif isinstance(o, out.EndOfTurn):
                acc = self.host.accept[self.n_accept % len(self.host.accept)]
                self.n_accept += 1
                a = ev.EndOfTurnAnswered(t=max(self.clock, o.t), accepted=acc)
                self._note(f"  answer {a!r}")
                self._call("answer", a, lambda a=a: self.engine.handle(a))
            elif isinstance(o, out.Interruption) and self.host.interruption_feedback:
                until = o.detected_at if o.overlap_started_at is None else o.overlap_started_at
                self.feed(ev.AgentSpeechEnded(t=self.clock, ref=self.next_ref(),
                                              ignore_user_transcript_until=until))

    def _answer_later(self, delay: float, rid: int, ans: ModelAnswer, *, force: bool) -> None:
        """Schedule the model's answer on the host scheduler (``shell`` lists it meanwhile)."""
        entry = (round(self.clock + delay, 6), rid)
        self.shell.append(entry)
        self.scheduler.call_at(entry[0], (entry, ans, force))

    def _answer_due(self, item: tuple[tuple[float, int], ModelAnswer, bool]) -> None:
        entry, ans, force = item
        self.shell.remove(entry)
        self._answer_model(entry[1], ans, force=force)

    def _answer_model(self, rid: int, ans: ModelAnswer, *, force: bool = False) -> None:
        """Send the model's answer for ``rid`` (a stale one too when ``force``)."""
        eng = self.engine
        pending = eng.model_request_pending(rid)
        if not pending and not force:
            return
        # (an engine.advance that fired the request's timer moved the input clock past it)
        t = max(self.clock, eng.input_clock)
        if pending:
            w = self.waits.get(rid)
            if w is not None:
                w.answer, w.answered_at, w.max_delay = ans, t, probe_max_delay(eng)
        a = ev.EouModelAnswered(t=t, request_id=rid, supported=ans.supported,
                                probability=ans.probability, threshold=ans.threshold,
                                failed=ans.failed)
        self._note(f"  model {a!r}{' (stale)' if not pending else ''}")
        self._call("model", a, lambda: eng.handle(a))

    # -- shadow ------------------------------------------------------------------------------

    def _pre_input(self, e: ev.Input) -> None:
        eng = self.engine
        self._note_wordless(e)
        if isinstance(e, ev.SttFinal) and e.text.strip():  # whitespace counts as empty
            self.finals[e.ref] = FinalRec(e.ref, e.text, "ignored" if eng.closed else "sent")
        elif isinstance(e, ev.CommitUserTurn):
            c = self.commits[e.ref] = CommitRec(
                e.skip_reply, refused=not eng.in_state("stt_input", "attached") or eng.closed,
                ignored=eng.closed)
            if not c.refused:
                self.active_commit = c
        elif isinstance(e, ev.UpdateOptions):
            self.mode_change = None
            if e.set_turn_detection and not eng.closed:
                self.mode_change = (eng.state()["mode"], mode_of(e.turn_detection))
            if e.user_turn_limit is not None and not eng.closed:
                self.limit = UserTurnLimit.from_mapping(e.user_turn_limit)
        elif isinstance(e, ev.Close):
            self.close_sent = True
        elif isinstance(e, ev.EouModelAnswered) and eng.model_request_pending(e.request_id):
            # an answer fed as an input (the input catalogue's) is the model's answer too
            w = self.waits.get(e.request_id)
            if w is not None:
                w.answer = ModelAnswer(supported=e.supported, probability=e.probability,
                                       threshold=e.threshold, failed=e.failed)
                w.answered_at, w.max_delay = max(self.clock, eng.input_clock), \
                    probe_max_delay(eng)

    def _note_wordless(self, e: ev.Input) -> None:
        """Track the candidate of P4 (a wordless segment over agent speech)."""
        eng = self.engine
        onset, self.wordless_onset, self.wordless_due = self.wordless_onset, None, None
        if isinstance(e, ev.VadEndOfSpeech):
            self.wordless_due = onset
        elif isinstance(e, ev.VadInferenceDone | ev.AudioPushed | ev.AgentSpeechStarted
                        | ev.AgentSpeechEnded):
            self.wordless_onset = onset
        elif isinstance(e, ev.VadStartOfSpeech) and self.profile == "default" and \
                not eng.closed and not eng.awaiting_answer:
            st = eng.state()
            if (st["stt_input"], st["detector"], st["vad_input"], st["agent_speech"],
                    st["gate"], st["mode"], st["turn"]) == (
                    "detached", "detached", "attached", "speaking", "holding", "vad",
                    "idle") and probe_turn_start(eng) is None:
                self.wordless_onset = e.t - e.speech_duration - e.inference_duration

    def _observe(self, step: Step) -> None:
        eng = self.engine
        inp = step.inp
        # effects of the input that precede its outputs
        if isinstance(inp, ev.EndOfTurnAnswered) and self.pending_eot is not None:
            rec = self.pending_eot
            self.pending_eot = None
            if inp.accepted:
                for r in rec.refs:
                    if r is None:
                        continue  # a promoted interim
                    self.delivered_count[r] = self.delivered_count.get(r, 0) + 1
                    fr = self.finals.get(r)
                    if fr is not None and fr.status == "accepted":
                        fr.status = "delivered"
                self._new_turn(step.t)
        if isinstance(inp, ev.SetInterruptionDetection) and inp.enabled and \
                not step.closed_before:
            self.marker_state = "idle"  # a new stream
        if self.marker_state == "overlap" and isinstance(inp, ev.OverlapVerdict) and \
                step.before["detector"] == "attached":
            self.marker_state = "agent"  # a verdict closes the overlap inside the detector
        # outputs, in order
        last_transcript: tuple[str, bool] | None = None  # (type, changed)
        for o in step.outputs:
            if isinstance(o, out.StartOfSpeech):
                self.stt_utterance_ended = False
                self.promoted = None  # new speech: its finals are new words
            elif isinstance(o, out.Transcript):
                last_transcript = self._observe_transcript(o)
            elif isinstance(o, out.PreemptiveGeneration):
                self._observe_preemptive(o, last_transcript)
            elif isinstance(o, out.TranscriptDropped):
                self._observe_dropped(o)
            elif isinstance(o, out.InputDropped):
                fr = self.finals.get(o.ref) if isinstance(o.ref, int) else None
                if fr is not None and fr.status == "sent":
                    fr.status = "input_dropped"
            elif isinstance(o, out.EndOfTurn):
                if self.pending_eot is not None:
                    self.anomaly("I2", "a second EndOfTurn before the first was answered")
                self.pending_eot = EotRec(o, [r for r, _ in eng.cx.turn.finals],
                                          list(self.turn_contribs), probe_wait(eng))
            elif isinstance(o, out.CommitResult):
                c = self.commits.get(o.ref)
                if c is None:
                    self.anomaly("I2", f"CommitResult for unknown commit {o.ref!r}")
                    continue
                c.results.append(o.status)
            elif isinstance(o, out.EouModelRequest):
                self.model_requests[o.request_id] = step.t
                w = self.waits.get(o.request_id)
                if w is None:
                    w = self.waits[o.request_id] = WaitRec(
                        o.t, eng.in_state("stt_input", "attached"))
                w.model = True
            elif isinstance(o, out.DetectorSignal):
                self._observe_marker(o)
            elif isinstance(o, out.WaitCancelled):
                wc = self.waits.get(o.wait_id)
                if wc is not None and not wc.manual and wc.anchor is not None and \
                        step.after["turn"] == "open":
                    self.pauses.append(round(o.t - wc.anchor, 6))
            elif isinstance(o, out.BoundaryExpired):
                if self.boundary_live is None:
                    self.anomaly("I14", "BoundaryExpired without a live activation")
                else:
                    assert self.options.backchannel_boundary is not None
                    due = round(self.boundary_live + self.options.backchannel_boundary[0], 6)
                    if abs(o.t - due) > EPS:
                        self.anomaly("I14", f"boundary expired at {o.t}, due at {due}")
                    self.boundary_live = None
        # effects of the input that follow its outputs
        if isinstance(inp, ev.Input) and not step.closed_before:
            self._post_input(inp, step)
        w = probe_wait(eng)
        if w is not None and w.wait_id not in self.waits:
            self.waits[w.wait_id] = WaitRec(step.t, eng.in_state("stt_input", "attached"),
                                            exact=step.kind != "advance",
                                            agent_text=eng.cx.agent_text)
        if w is not None:
            self.waits[w.wait_id].anchor = w.anchor
            self.waits[w.wait_id].manual = w.manual
            confs = tuple(eng.cx.turn.word_confidences)
            if confs not in self.waits[w.wait_id].confidences:
                self.waits[w.wait_id].confidences.append(confs)
        lang = eng.cx.last_language
        if lang is not None and lang not in NONSPECIFIC_LANGUAGES:
            self.lang_specific_seen = True
        self._note_finalize()
        self._note_close()
        if len(self.waits) > 8:  # keep the bookkeeping small (it is copied by the BFS)
            live = {w.wait_id} if w is not None else set()
            live |= {r for r in self.model_requests if eng.model_request_pending(r)}
            live |= {rid for _d, rid in self.shell}
            self.waits = {k: v for k, v in self.waits.items() if k in live}
            self.model_requests = {k: v for k, v in self.model_requests.items()
                                   if k in live or k == max(self.model_requests)}

    def _note_finalize(self) -> None:
        """The active commit finalized in this step if the commit region is idle again."""
        c = self.active_commit
        if c is None or c.final_gen is not None or "cancelled" in c.results or \
                not self.engine.in_state("commit", "idle"):
            return
        c.final_gen = self.turn_gen
        self.finalize_order.append(c)

    def _note_close(self) -> None:
        eng = self.engine
        if (self.close_sent and eng.closed and not self.close_complete
                and not eng.awaiting_answer and eng.next_deadline() is None and not self.shell
                and not any(eng.model_request_pending(r) for r in self.model_requests)):
            self.close_complete = True
            self.close_complete_call = self.calls

    def _post_input(self, inp: ev.Input, step: Step) -> None:
        eng = self.engine
        if isinstance(inp, ev.SttFinal):
            fr = self.finals.get(inp.ref)
            if fr is not None and fr.status == "sent":
                if any(h.ref == inp.ref for h in eng.cx.held):
                    fr.status = "held"
                else:
                    self.anomaly("I3", f"final {inp.ref} {inp.text!r} was neither processed, "
                                       "held nor dropped")
        if isinstance(inp, ev.ClearUserTurn):
            self.last_clear_ref = inp.ref
            self._new_turn(step.t)
            self.promoted = None
        elif isinstance(inp, ev.AgentSpeechStarted):
            b = self.options.backchannel_boundary
            self.boundary_live = step.t if (b is not None and b[0] > 0) else None
        elif isinstance(inp, ev.AgentSpeechEnded | ev.Close) or (
                isinstance(inp, ev.SetInterruptionDetection) and not inp.enabled):
            self.boundary_live = None

    def _new_turn(self, t: float) -> None:
        self.turn_contribs = []
        self.preflight_acc = ""
        self.turn_boundary = t
        self.stt_utterance_ended = False
        self.turn_gen += 1

    def _observe_transcript(self, o: out.Transcript) -> tuple[str, bool] | None:
        if o.type == "preflight":
            if o.text:
                self.preflight_acc = accumulate([*(x for _, x in self.turn_contribs), o.text])
            return ("preflight", True)
        if o.type != "final":
            return None
        if o.ref is None:  # an interim promoted at commit
            self.turn_contribs.append((None, o.text))
            self.promoted = o.text
            return ("promoted", True)
        fr = self.finals.get(o.ref)
        if fr is None:
            self.anomaly("I3", f"Transcript final for unknown ref {o.ref!r}")
            return None
        if fr.status not in ("sent", "held"):
            self.anomaly("I4", f"final {o.ref} {fr.text!r} accepted again (was {fr.status})")
        if o.text != fr.text:
            self.anomaly("I3", f"final {o.ref} reported as {o.text!r}, sent as {fr.text!r}")
        if o.ref <= self.last_accepted_ref:
            self.anomaly("I5", f"final {o.ref} appended after final {self.last_accepted_ref}, "
                               "which arrived later")
        self.last_accepted_ref = max(self.last_accepted_ref, o.ref)
        fr.status = "accepted"
        if self.promoted is not None and normalized(o.text) == normalized(self.promoted):
            self.anomaly("I4", f"final {o.ref} {o.text!r} is the late final of the interim "
                               "a commit promoted, yet it was appended again")
        self.promoted = None
        self.turn_contribs.append((o.ref, o.text))
        after = accumulate(x for _, x in self.turn_contribs)
        changed = after != self.preflight_acc
        self.preflight_acc = ""
        return ("final", changed)

    def _observe_preemptive(self, o: out.PreemptiveGeneration,
                            last: tuple[str, bool] | None) -> None:
        acc = accumulate(x for _, x in self.turn_contribs)
        if not o.new_transcript:
            self.anomaly("I21", "PreemptiveGeneration with an empty transcript")
        if not o.new_transcript.startswith(acc):
            self.anomaly("I21", f"PreemptiveGeneration {o.new_transcript!r} does not extend "
                                f"the turn's text {acc!r}")
        if last is None or last[0] not in ("final", "preflight"):
            self.anomaly("I21", "PreemptiveGeneration not caused by a final or a preflight")
        elif last[0] == "final" and not last[1]:
            self.anomaly("I21", f"final left the text equal to the last preflight "
                                f"({acc!r}) yet a PreemptiveGeneration was emitted")

    def _observe_dropped(self, o: out.TranscriptDropped) -> None:
        reasons = DROP_REASONS | ({"backchannel"} if self.profile == "default" else set())
        if o.reason not in reasons:
            self.anomaly("I3", f"TranscriptDropped with undocumented reason {o.reason!r}")
        fr = self.finals.get(o.ref) if isinstance(o.ref, int) else None
        if fr is None:
            return  # an interim, a preflight or a promoted interim dropped with its turn
        if o.reason == "duplicate":
            if fr.status not in ("sent", "held") or self.promoted is None or \
                    normalized(self.promoted) != normalized(fr.text):
                self.anomaly("I3", f"final {o.ref} {fr.text!r} ({fr.status}) dropped as a "
                                   f"duplicate of the promoted interim {self.promoted!r}")
            self.promoted = None
        elif fr.status == "held":
            pass
        elif o.reason == "backchannel" and fr.status == "sent":
            pass  # the default profile judges a final over agent speech as it arrives
        elif fr.status == "accepted":
            if o.reason not in ("clear_user_turn", "closed"):
                self.anomaly("I3", f"accepted final {o.ref} dropped as {o.reason!r}")
        else:
            self.anomaly("I3", f"final {o.ref} dropped ({o.reason}) while {fr.status}")
        if o.text != fr.text:
            self.anomaly("I3", f"final {o.ref} dropped as {o.text!r}, sent as {fr.text!r}")
        fr.status = "dropped"

    def _observe_marker(self, o: out.DetectorSignal) -> None:
        s, sig = self.marker_state, o.signal
        bad: str | None = None
        if sig == "agent_speech_started":
            if s != "idle":
                bad = "agent_speech_started while the agent already started"
            s = "agent"
        elif sig == "overlap_speech_started":
            if s == "idle":
                bad = "overlap_speech_started while the agent is silent"
            s = "overlap"
        elif sig == "overlap_speech_ended":
            if s != "overlap":
                bad = f"overlap_speech_ended without an open overlap (state {s})"
            else:
                s = "agent"
        elif sig == "agent_speech_ended":
            if s == "idle":
                bad = "agent_speech_ended while the agent is silent"
            elif s == "overlap":
                bad = "an open overlap was not closed before agent_speech_ended"
            s = "idle"
        else:
            bad = f"unknown marker {sig!r}"
        self.marker_state = s
        if bad:
            self.anomaly("I15", bad)


# ===== invariant checks =========================================================================
# Each check raises InvariantViolation naming the invariant. Checks see the step that just
# ran (``step``) and the driver's shadow, already updated with the step's outputs.


def _fail(drv: Driver, inv: str, msg: str) -> None:
    raise InvariantViolation(f"{inv} violated: {msg}\n--- last driver actions ---\n"
                             f"{drv.describe()}")


def _anomalies(drv: Driver, inv: str) -> None:
    if drv.anomalies.get(inv):
        _fail(drv, inv, "; ".join(drv.anomalies[inv]))


def _eot(step: Step) -> out.EndOfTurn | None:
    for o in step.outputs:
        if isinstance(o, out.EndOfTurn):
            return o
    return None


def check_i1_no_auto_eou_while_speaking(drv: Driver, step: Step) -> None:
    """I1: an EndOfTurn emitted while the user speaks is a manual commit's decision: the
    commit's own wait, or (manual mode, authority manual_committed) the wait a final re-armed
    for that commit, which speech does not cancel by design (D16)."""
    o = _eot(step)
    if o is None or step.after["user_speech"] != "speaking":
        return
    rec = drv.pending_eot
    commit_owned = step.after["mode"] == "manual" and \
        step.after["authority"] == "manual_committed"
    if rec is None or rec.wait is None or not (rec.wait.manual or commit_owned):
        _fail(drv, "I1", f"automatic EndOfTurn {o.new_transcript!r} while the user speaks")


def check_i2_single_decision(drv: Driver, step: Step) -> None:
    """I2: at most one wait (one live model request, one deadline) and one commit request."""
    _anomalies(drv, "I2")
    eng = drv.engine
    pending = [r for r in drv.model_requests if eng.model_request_pending(r)]
    if len(pending) > 1:
        _fail(drv, "I2", f"model requests {pending} all pending")
    predicting = step.after["turn"] == "predicting"
    if predicting != (len(pending) == 1) and not eng.awaiting_answer:
        _fail(drv, "I2", f"turn {step.after['turn']} but pending model requests {pending}")
    kinds = [k for _, k in probe_live_timers(eng)]
    for k in ("eou_deadline", "commit_timeout", "boundary_expired"):
        if kinds.count(k) > 1:
            _fail(drv, "I2", f"{kinds.count(k)} live {k} timers")
    if "eou_deadline" in kinds and step.after["turn"] not in ("waiting", "delivering"):
        _fail(drv, "I2", f"a live end-of-turn deadline in turn state {step.after['turn']}")
    open_commits = [r for r, c in drv.commits.items()
                    if not c.refused and not c.ignored and not c.results]
    if len(open_commits) > 1 and not eng.awaiting_answer:
        _fail(drv, "I2", f"several commit requests unresolved: {open_commits}")
    if step.after["commit"] == "awaiting_final" and not open_commits:
        _fail(drv, "I2", "the commit region waits for a final but no commit is unresolved")


def check_i18_commit_results_settle(drv: Driver, step: Step) -> None:
    """I18: every commit resolves at most once (exactly once by the end of close, checked
    there); an ok result emitted with a delivery carries that delivery's transcript."""
    for r, c in drv.commits.items():
        if len(c.results) > 1:
            _fail(drv, "I18", f"commit {r} resolved {len(c.results)} times: {c.results}")
    o = _eot(step)
    if o is None:
        return
    for x in step.outputs[step.outputs.index(o):]:
        if isinstance(x, out.CommitResult) and x.status == "ok" and \
                x.transcript != o.new_transcript:
            _fail(drv, "I18", f"commit {x.ref} resolved with {x.transcript!r} at the delivery "
                              f"of {o.new_transcript!r}")


def check_i18_dropped_decision_settles_its_commit(drv: Driver, step: Step) -> None:
    """I18/R39: when a pending decision is dropped without a delivery (speech, a mode change,
    a clear), a commit that scheduled it is settled in that step: its result reports the
    delivery it scheduled, never a later turn's."""
    if step.before["turn"] not in ("predicting", "waiting") or \
            step.after["turn"] not in ("idle", "open") or _eot(step) is not None:
        return
    for c in drv.finalize_order:
        if c.final_gen == drv.turn_gen and not c.results and drv.active_commit is c:
            _fail(drv, "I18", "a commit's decision was dropped and its result left pending")


def check_i3_transcript_conservation(drv: Driver, step: Step) -> None:
    """I3: every accepted non-empty final is in exactly one place: the turn, the hold
    buffer, one accepted delivery, or a documented drop; none vanishes at intake."""
    _anomalies(drv, "I3")
    eng = drv.engine
    held = [h.ref for h in eng.cx.held if isinstance(h, ev.SttFinal) and h.text.strip()]
    turn = [r for r, _ in eng.cx.turn.finals if r is not None]
    for r in set(held) | set(turn):
        if r not in drv.finals:
            _fail(drv, "I3", f"unknown final {r!r} inside the engine")
    for r, fr in drv.finals.items():
        nh, nt = held.count(r), turn.count(r)
        nd = drv.delivered_count.get(r, 0)
        where = {"held": (1, 0, 0), "accepted": (0, 1, 0), "delivered": (0, 0, 1),
                 "dropped": (0, 0, 0), "input_dropped": (0, 0, 0), "ignored": (0, 0, 0),
                 "sent": (0, 0, 0)}[fr.status]
        if (nh, nt, nd) != where:
            _fail(drv, "I3", f"final {r} {fr.text!r} ({fr.status}) is held {nh}x, in the "
                             f"turn {nt}x, delivered {nd}x")
    if drv.pending_eot is not None and _eot(step) is not None:
        rec = drv.pending_eot
        contrib_refs = [r for r, _ in rec.contribs]
        if [r for r in contrib_refs if r is not None] != [r for r in rec.refs if r is not None]:
            _fail(drv, "I3", f"turn finals {rec.refs} differ from accepted finals "
                             f"{contrib_refs}")
        for r in rec.refs:
            if r is None:
                continue
            text = drv.finals[r].text.strip()
            if text not in rec.out.new_transcript:
                _fail(drv, "I3", f"final {r} {text!r} missing from the delivered "
                                 f"{rec.out.new_transcript!r}")


def check_i4_no_duplication(drv: Driver, step: Step) -> None:
    """I4: no final is delivered twice; a delivery is exactly the turn's finals (and promoted
    interims) accumulated once each; a promoted interim and its own final count once."""
    _anomalies(drv, "I4")
    for r, n in drv.delivered_count.items():
        if n > 1:
            _fail(drv, "I4", f"final {r} delivered {n} times")
    o = _eot(step)
    if o is not None and drv.pending_eot is not None:
        want = accumulate(x for _, x in drv.pending_eot.contribs)
        if o.new_transcript != want:
            _fail(drv, "I4", f"delivered {o.new_transcript!r}, the turn's transcripts "
                             f"accumulate to {want!r}")
    if drv.engine.cx.turn.transcript != accumulate(x for _, x in drv.turn_contribs) and \
            not drv.engine.closed:
        _fail(drv, "I4", f"engine transcript {drv.engine.cx.turn.transcript!r} is not the turn's "
                         f"transcripts {[x for _, x in drv.turn_contribs]}")


def check_i5_provider_order(drv: Driver, step: Step) -> None:
    """I5: finals are appended to turns in their arrival order, across holds and releases."""
    _anomalies(drv, "I5")


def check_i6_bounded_hold(drv: Driver, step: Step) -> None:
    """I6: with the agent silent and no overlap open the hold buffer is empty after the step;
    a non-empty buffer means the gate is holding."""
    held = drv.engine.cx.held
    if not held:
        return
    if drv.profile == "default":  # held while the agent speaks, or while judging after it
        if step.after["gate"] != "holding":
            _fail(drv, "I6", f"{len(held)} events held with the gate {step.after['gate']}")
        return
    if step.after["agent_speech"] == "silent" and step.after["overlap"] == "none":
        _fail(drv, "I6", f"{len(held)} events held while the agent is silent")
    if step.after["gate"] != "holding":
        _fail(drv, "I6", f"{len(held)} events held with the gate {step.after['gate']}")


def check_i7_metrics_well_formed(drv: Driver, step: Step) -> None:
    """I7: delivery metrics all-or-none; started <= stopped <= t; delays >= 0; no turn start
    (an end of turn's, or a preemptive generation's) is earlier than the previous accepted
    delivery or clear. Of speech evidenced since then, only the part after it counts: a VAD
    start back-dated by its speech duration, a window's speech run, a provider's onset, or
    speech that started during the delivered wait all begin, for the new turn, at the
    delivery (README: the new turn starts at the delivery)."""
    for p in step.outputs:
        if isinstance(p, out.PreemptiveGeneration) and p.started_speaking_at is not None \
                and p.started_speaking_at < drv.turn_boundary - EPS:
            _fail(drv, "I7", f"preemptive generation's onset {p.started_speaking_at} precedes "
                             f"the last delivery/clear at {drv.turn_boundary}")
    o = _eot(step)
    if o is None:
        return
    f = (o.started_speaking_at, o.stopped_speaking_at, o.transcription_delay,
         o.end_of_turn_delay)
    if any(x is None for x in f) and not all(x is None for x in f):
        _fail(drv, "I7", f"partial metrics {f}")
    if not 0.0 <= o.transcript_confidence <= 1.0:
        _fail(drv, "I7", f"confidence {o.transcript_confidence} outside [0, 1]")
    if f[0] is None:
        return
    started, stopped, tdelay, edelay = f
    assert started is not None and stopped is not None and tdelay is not None
    assert edelay is not None
    if not started <= stopped <= o.t + EPS:
        _fail(drv, "I7", f"started {started} stopped {stopped} delivered {o.t}")
    if tdelay < 0 or edelay < -EPS:
        _fail(drv, "I7", f"negative delay: transcription {tdelay}, end of turn {edelay}")
    if started < drv.turn_boundary - EPS:
        _fail(drv, "I7", f"turn start {started} precedes the last delivery/clear at "
                         f"{drv.turn_boundary}")


def _session_pauses_delay(drv: Driver, d: out.DecisionRecord, delay: float) -> float:
    """A wait the session's mid-turn pauses lengthened (default profile, region
    pause_memory): the pause it names is one the user's speech cancelled a wait after, the
    delay is that pause plus pause_margin (at most max_delay) and longer than the one the
    rules or the model gave; returns the delay to check the delivery time with."""
    p = d.session_pause
    if p is None or not any(abs(p - q) <= EPS for q in drv.pauses):
        _fail(drv, "I8", f"session pause {p} is none of the pauses heard ({drv.pauses})")
    assert p is not None
    want = min(d.max_delay, p + drv.options.pause_margin)
    if abs(d.delay - want) > EPS or not d.delay > delay + EPS:
        _fail(drv, "I8", f"session-pause delay {d.delay} (pause {p}: {want}; without: {delay})")
    return d.delay


def check_i8_deadline(drv: Driver, step: Step) -> None:
    """I8: a delivery happens exactly at max(arm time, anchor + delay) (arm time + delay
    without an anchor; an anchor at t=0 is an anchor), where delay is max_delay iff the
    model answered a probability below a known threshold, else min_delay; deliveries at
    close are exempt."""
    o = _eot(step)
    rec = drv.pending_eot
    if o is None or rec is None or rec.wait is None or drv.close_sent:
        return
    w = rec.wait
    wr = drv.waits.get(w.wait_id)
    if wr is None:
        _fail(drv, "I8", f"delivery of an unseen wait {w.wait_id}")
        return
    verdict = o.decision.model if o.decision is not None else None
    if verdict is not None and verdict.model == "builtin":
        # the default profile's built-in rules answered when the wait started: max_delay
        # exactly when they judge the delivered transcript unfinished
        # (a language without word lists: unsupported, min_delay; word confidences: the
        # rules read the transcript less some trailing words, so one of its prefixes)
        from turnfsm.core.eou import (
            BUILTIN_THRESHOLD,
            end_of_turn_probability,
            end_of_turn_verdict,
            has_language,
        )
        # (the agent's text: what it said when the wait started, when it told)
        asked = wr.agent_text
        p = end_of_turn_probability(o.new_transcript, verdict.language, agent_text=asked)
        words = o.new_transcript.split()
        prefixes = {end_of_turn_probability(" ".join(words[:k]), verdict.language,
                                            agent_text=asked)
                    for k in range(len(words) + 1)} if drv.word_confidences_sent else {p}
        # the rules read the words' confidences too (a numeral the recogniser doubts is a
        # group of digits, not a whole number)
        prefixes |= {end_of_turn_probability(o.new_transcript, verdict.language,
                                             agent_text=asked, confidences=list(c))
                     for c in wr.confidences if len(c) == len(words)}
        if verdict.probability not in prefixes or verdict.threshold != BUILTIN_THRESHOLD or \
                verdict.supported != has_language(verdict.language):
            _fail(drv, "I8", f"built-in verdict {verdict} for {o.new_transcript!r} (rules: {p})")
        # the record names the cue the rules read (a supported language), none otherwise
        cue = end_of_turn_verdict(o.new_transcript, verdict.language, agent_text=asked)[1]
        if (verdict.cue is None) == verdict.supported or (
                not drv.word_confidences_sent and verdict.supported and verdict.cue != cue):
            _fail(drv, "I8", f"built-in cue {verdict.cue!r} for {o.new_transcript!r} "
                             f"(rules: {cue!r})")
        p = verdict.probability if verdict.probability is not None else p
        assert o.decision is not None
        want = "max_delay" if p < BUILTIN_THRESHOLD and verdict.supported else "min_delay"
        if want == "min_delay" and o.decision.delay_reason == "session_pauses":
            want = "session_pauses"
            _session_pauses_delay(drv, o.decision, w.min_delay)
        if o.decision.delay_reason != want:
            _fail(drv, "I8", f"delay {o.decision.delay_reason} for {o.new_transcript!r}, "
                             f"the rules say {want}")
        arm, delay = wr.created, o.decision.delay
        if not wr.exact:
            if w.anchor is not None and o.t < w.anchor + delay - EPS:
                _fail(drv, "I8", f"delivered at {o.t}, before anchor {w.anchor} + {delay}")
            return
    elif wr.model:
        if wr.answer is None or wr.answered_at is None:
            _fail(drv, "I8", f"delivery of wait {w.wait_id} before its model answer")
            return
        assert wr.max_delay is not None
        arm, delay = wr.answered_at, (wr.max_delay if wr.answer.unlikely else w.min_delay)
    else:
        arm, delay = wr.created, w.min_delay
        if not wr.exact:  # created inside an engine.advance: only the anchor bound is known
            if w.anchor is not None and o.t < w.anchor + delay - EPS:
                _fail(drv, "I8", f"delivered at {o.t}, before anchor {w.anchor} + {delay}")
            return
    if o.decision is not None and o.decision.delay_reason == "session_pauses" and not (
            verdict is not None and verdict.model == "builtin"):
        delay = _session_pauses_delay(drv, o.decision, delay)
    remaining = delay + (w.anchor - arm) if w.anchor is not None else delay
    due = round(arm + remaining, 6) if remaining > 0 else arm
    if abs(o.t - due) > EPS:
        _fail(drv, "I8", f"delivered at {o.t}, due at {due} (arm {arm}, anchor {w.anchor}, "
                         f"delay {delay}, model {wr.answer})")


def check_i9_authority_bound(drv: Driver, step: Step) -> None:
    """I9: authority != none => a wait or a commit request is pending; adapted for stt mode
    (DECIDE in the spec): stt_committed may also stay on an open turn while in stt mode, and
    an end of speech that found nothing to decide awaits its utterance's final."""
    a, turn = step.after["authority"], step.after["turn"]
    if a == "none" or drv.engine.closed:
        return
    deciding = turn in ("predicting", "waiting", "delivering")
    if deciding:
        return
    if a == "manual_committed" and step.after["commit"] != "awaiting_final":
        _fail(drv, "I9", f"manual_committed with turn {turn} and no commit pending")
    if a == "stt_committed" and not (step.after["mode"] == "stt" and turn == "open"):
        _fail(drv, "I9", f"stt_committed with turn {turn} in mode {step.after['mode']}")
    # an end of speech with nothing transcribed waits for its utterance's final (R18.9)
    if a == "stt_awaiting_final" and not (step.after["mode"] == "stt"
                                          and turn in ("idle", "open")):
        _fail(drv, "I9", f"stt_awaiting_final with turn {turn} in mode {step.after['mode']}")


def check_i9_stt_utterance_is_decided(drv: Driver, step: Step) -> None:
    """I9 (stt clause), R21/R18.9: in stt mode, an utterance the STT declared ended is decided
    as soon as it is transcribed: with the user silent, a turn with a transcript is not left
    open after its end of speech (until the next speech onset or delivery)."""
    eng = drv.engine
    inp = step.inp
    if isinstance(inp, ev.SttEndOfSpeech) and step.before["mode"] == "stt" and \
            step.before["gate"] == "passthrough" and step.before["stt_input"] == "attached" \
            and any(isinstance(o, out.EndOfSpeech) and o.ref is None for o in step.outputs):
        drv.stt_utterance_ended = True
    # a delivery, or a commit that settled (its decision_declined takes the STT's commitment with
    # it, D17), ends what the STT's end of speech committed
    if any(isinstance(o, out.EndOfTurn | out.CommitResult) for o in step.outputs) or \
            isinstance(inp, ev.ClearUserTurn | ev.UpdateOptions | ev.Close | ev.CommitUserTurn) or \
            step.after["mode"] != "stt":
        drv.stt_utterance_ended = False
    if not drv.stt_utterance_ended or eng.closed:
        return
    a = step.after
    if a["turn"] == "open" and eng.cx.turn.transcript and a["user_speech"] == "silent" \
            and a["commit"] == "idle" and a["gate"] == "passthrough":
        _fail(drv, "I9", "an stt-mode utterance ended by the STT and transcribed "
                         f"({eng.cx.turn.transcript!r}) is left undecided")


def check_i10_skip_reply_sticky(drv: Driver, step: Step) -> None:
    """I10: once a skip_reply commit completed in the current turn (and no later plain commit
    did), deliveries of that turn have skip_reply; skip_reply is never set without one. A
    commit completes (finalizes) when the commit region is idle again after it."""
    o = _eot(step)
    if o is None:
        return
    done = [c for c in drv.finalize_order if c.final_gen == drv.turn_gen]
    if done and done[-1].skip_reply and not o.skip_reply:
        _fail(drv, "I10", f"a skip_reply commit completed in this turn, yet "
                          f"{o.new_transcript!r} was delivered with skip_reply=False")
    if o.skip_reply and not any(c.skip_reply for c in done):
        _fail(drv, "I10", f"{o.new_transcript!r} delivered with skip_reply=True but no "
                          "skip_reply commit completed in this turn")


def check_i11_clear_is_total(drv: Driver, step: Step) -> None:
    """I11: right after a clear: no wait, empty accumulators and buffers, authority none,
    empty turn-limit tracker, a span only for speech that goes on; later deliveries contain
    nothing received before the clear."""
    eng = drv.engine
    o = _eot(step)
    if o is not None and drv.pending_eot is not None:
        old = [r for r in drv.pending_eot.refs if r is not None and r < drv.last_clear_ref]
        if old:
            _fail(drv, "I11", f"delivery contains finals {old} received before the clear")
    if not isinstance(step.inp, ev.ClearUserTurn) or step.closed_before:
        return
    problems = []
    if step.after["turn"] != "idle":
        problems.append(f"turn {step.after['turn']}")
    if probe_wait(eng) is not None:
        problems.append("a wait is pending")
    turn = eng.cx.turn
    if turn.transcript or turn.interim or turn.preflight or turn.finals or eng.cx.held:
        problems.append("accumulators not empty")
    if step.after["authority"] != "none":
        problems.append(f"authority {step.after['authority']}")
    if eng.cx.tracker.words or eng.cx.tracker.transcript:
        problems.append("turn-limit tracker not empty")
    if eng.cx.turn.span_open != (step.after["user_speech"] == "speaking"):
        problems.append(f"span_open={eng.cx.turn.span_open} with user {step.after['user_speech']}")
    if problems:
        _fail(drv, "I11", "after clear: " + ", ".join(problems))


def check_i12_nonempty_deliveries(drv: Driver, step: Step) -> None:
    """I12: an automatic (non-commit) delivery has a non-empty transcript when an STT is
    attached (at the delivery and when the wait began)."""
    o = _eot(step)
    rec = drv.pending_eot
    if o is None or rec is None or rec.wait is None or rec.wait.manual or o.new_transcript:
        return
    wr = drv.waits.get(rec.wait.wait_id)
    stt_then = wr.stt_attached if wr is not None else True
    if step.after["stt_input"] == "attached" and stt_then:
        _fail(drv, "I12", "automatic EndOfTurn with an empty transcript while an STT is "
                          "attached")


def check_i14_boundary_implies_agent_speech(drv: Driver, step: Step) -> None:
    """I14: boundary active => agent speaking; it expires once per activation, on time,
    never after a cancellation (agent end, detector removal, close)."""
    _anomalies(drv, "I14")
    if step.after["boundary"] == "active" and step.after["agent_speech"] != "speaking":
        _fail(drv, "I14", "boundary active while the agent is silent")
    if (step.after["boundary"] == "active") != (drv.boundary_live is not None) and \
            not drv.engine.closed:
        _fail(drv, "I14", f"boundary {step.after['boundary']} but the expected activation is "
                          f"{drv.boundary_live}")


def check_i15_detector_marker_grammar(drv: Driver, step: Step) -> None:
    """I15: markers follow (agent_started (overlap_started overlap_ended?)* agent_ended)* per
    detector stream; an overlap is never open while the agent is silent."""
    _anomalies(drv, "I15")
    if step.after["overlap"] == "open" and step.after["agent_speech"] != "speaking":
        _fail(drv, "I15", "overlap open while the agent is silent")


def check_i16_turn_limit_accounting(drv: Driver, step: Step) -> None:
    """I16: the tracker is empty right after an agent start (and a clear); its word count
    never decreases between resets; UserTurnExceeded only when a limit in force is met
    (repeats are allowed: DECIDE, turnfsm re-fires like the reference)."""
    eng = drv.engine
    words = eng.cx.tracker.words
    resets = isinstance(step.inp, ev.AgentSpeechStarted | ev.ClearUserTurn) and \
        not step.closed_before
    if resets and (words or eng.cx.tracker.transcript):
        _fail(drv, "I16", f"tracker holds {words} words right after {type(step.inp).__name__}")
    if not resets and words < drv.tracker_prev:
        _fail(drv, "I16", f"tracker words went down from {drv.tracker_prev} to {words}")
    lim = drv.limit
    for o in step.outputs:
        if isinstance(o, out.UserTurnExceeded):
            met = (lim.max_words is not None and o.accumulated_word_count >= lim.max_words) or (
                lim.max_duration is not None and o.duration >= lim.max_duration)
            if not met:
                _fail(drv, "I16", f"UserTurnExceeded ({o.accumulated_word_count} words, "
                                  f"{o.duration} s) below the limits {lim}")
            if o.accumulated_word_count > words:
                _fail(drv, "I16", f"exceeded event counts {o.accumulated_word_count} words, "
                                  f"tracker has {words}")
    drv.tracker_prev = words


def check_i17_language(drv: Driver, step: Step) -> None:
    """I17: once a specific language is known, last_language is never empty or non-specific."""
    lang = drv.engine.cx.last_language
    if drv.lang_specific_seen and (lang is None or lang in NONSPECIFIC_LANGUAGES):
        _fail(drv, "I17", f"last_language fell back to {lang!r}")


def check_i19_mode_switch_hygiene(drv: Driver, step: Step) -> None:
    """I19: after a mode change to or from manual, no wait is pending and authority is none."""
    if not isinstance(step.inp, ev.UpdateOptions) or drv.mode_change is None:
        return
    old, new = drv.mode_change
    drv.mode_change = None
    if old == new or "manual" not in (old, new):
        return
    if step.after["turn"] in ("predicting", "waiting"):
        _fail(drv, "I19", f"mode {old}->{new} left the turn {step.after['turn']}")
    if step.after["authority"] != "none":
        _fail(drv, "I19", f"mode {old}->{new} left authority {step.after['authority']}")


def check_i20_quiet_after_close(drv: Driver, step: Step) -> None:
    """I20: once close completed (nothing pending), nothing is emitted and no timer lives."""
    if drv.close_complete_call is None:
        return
    if drv.engine.next_deadline() is not None:
        _fail(drv, "I20", "a timer is live after close completed")
    if step.outputs and drv.calls > drv.close_complete_call:
        _fail(drv, "I20", f"outputs after close completed: {step.outputs}")


def check_i21_preemptive_notifications(drv: Driver, step: Step) -> None:
    """I21: a PreemptiveGeneration has a non-empty transcript extending the turn's text and
    comes from a final that changed the text (or a preflight)."""
    _anomalies(drv, "I21")


def check_i22_no_release_pending(drv: Driver, step: Step) -> None:
    """I22 (adapted: turnfsm releases synchronously): after every step no release is pending
    (the window is unset) and the gate holds exactly while the agent speaks with
    interruption detection effective."""
    eng = drv.engine
    if eng.closed:
        return
    if probe_window(eng) is not None:
        _fail(drv, "I22", f"an ignore window {probe_window(eng)} survives the step")
    if drv.profile == "default":
        # the default gate holds while the agent speaks with a VAD attached (or judges, the
        # agent silent, an utterance begun over it); it passes through after an interruption
        gate, vad = step.after["gate"], step.after["vad_input"] == "attached"
        if gate == "holding" and step.after["judge"] == "judging":
            gate = "judging"  # the gate holds, the judge judges an utterance the agent left
        agent = step.after["agent_speech"] == "speaking"
        if (gate == "holding" and not (agent and vad)) or \
                (gate == "judging" and (agent or not vad)):
            _fail(drv, "I22", f"gate {gate} with agent {step.after['agent_speech']} and the "
                              f"VAD {step.after['vad_input']}")
        return
    effective = step.after["detector"] != "detached" and step.after["vad_input"] == "attached"
    want = step.after["agent_speech"] == "speaking" and effective
    if (step.after["gate"] == "holding") != want:
        _fail(drv, "I22", f"gate {step.after['gate']} with agent {step.after['agent_speech']} "
                          f"and detection {'effective' if effective else 'off'}")


def check_no_stuck_state(drv: Driver, bound: float = 120.0) -> None:
    """No stuck state: with inputs stopped and requests answered, the engine is quiet (no
    timer, turn idle or open, commit idle, nothing awaited) within ``bound`` seconds."""
    eng = drv.engine
    problems = []
    if drv.next_due() is not None:
        problems.append(f"still due: {drv.next_due()} after {bound} s")
    st = eng.state()
    if st["turn"] not in ("idle", "open"):
        problems.append(f"turn {st['turn']}")
    if st["commit"] != "idle":
        problems.append(f"commit {st['commit']}")
    if eng.awaiting_answer:
        problems.append("an end-of-turn answer is awaited")
    if problems:
        _fail(drv, "stuck", ", ".join(problems))


def check_close_accounts_for_everything(drv: Driver) -> None:
    """I3/I18 at close: no final is left held or in a turn, every commit resolved once."""
    left = {r: fr.status for r, fr in drv.finals.items() if fr.status in ("held", "accepted",
                                                                          "sent")}
    if left:
        _fail(drv, "I3", f"finals unaccounted for after close: {left}")
    for r, c in drv.commits.items():
        if not c.ignored and len(c.results) != 1:
            _fail(drv, "I18", f"commit {r} resolved {len(c.results)} times")
    if not drv.close_complete:
        _fail(drv, "I20", "close did not complete")


def check_p1_no_decision_before_a_due_final(drv: Driver, step: Step) -> None:
    """P1 (default profile): an automatic end of turn is never delivered while the final of
    speech already heard is due (final_wait pending); its wait started with it settled."""
    if drv.profile != "default":
        return
    o = _eot(step)
    rec = drv.pending_eot
    if o is None or rec is None or rec.wait is None or rec.wait.manual:
        return
    d = o.decision
    if d is not None and d.trigger == "final_overdue":
        return  # the wait for the final ended: the decision is what it allows
    if step.after["final_wait"] == "pending" and not drv.engine.closed:
        _fail(drv, "P1", "an automatic end of turn while the final of the last speech is due")


def check_p3_backchannel_leaves_no_turn(drv: Driver, step: Step) -> None:
    """P3 (default profile): a dropped backchannel leaves no turn behind: after the step the
    turn holds no words and no onset of it (its region idle, or deciding on words it had)."""
    if drv.profile != "default":
        return
    if not any(isinstance(o, out.TranscriptDropped) and o.reason == "backchannel"
               for o in step.outputs):
        return
    cx = drv.engine.cx
    if step.after["turn"] == "idle" and (cx.turn.user_turn_start is not None
                                         and step.after["user_speech"] == "silent"):
        _fail(drv, "P3", f"the turn keeps the onset {cx.turn.user_turn_start} of a dropped "
                         "backchannel")


def check_p4_wordless_backchannel_is_dropped(drv: Driver, step: Step) -> None:
    """P4 (default profile, no transcripts): a VAD segment begun over agent speech (the gate
    holding) in an empty turn, with no STT and no detector attached, that ends within
    ``backchannel_max_duration`` is dropped when it ends (a ``TranscriptDropped`` with no
    text, reason ``backchannel``): no end of turn, the turn idle with no onset. A wordless
    drop never happens with an STT attached."""
    wordless = [o for o in step.outputs if isinstance(o, out.TranscriptDropped)
                and o.reason == "backchannel" and not o.text]
    if wordless and step.before["stt_input"] == "attached":
        _fail(drv, "P4", "speech dropped as a wordless backchannel with an STT attached")
    if drv.profile != "default" or step.kind != "input" or \
            not isinstance(step.inp, ev.VadEndOfSpeech) or drv.wordless_due is None:
        return
    e = step.inp
    duration = e.t - e.silence_duration - e.inference_duration - drv.wordless_due
    limit = drv.options.backchannel_max_duration
    if abs(duration - limit) < EPS:
        return  # on the limit: rounding decides
    if duration < limit:
        if not wordless or _eot(step) is not None or step.after["turn"] != "idle" or \
                probe_turn_start(drv.engine) is not None:
            _fail(drv, "P4", f"a {duration:.3f} s wordless segment over agent speech (limit "
                             f"{limit}) was not dropped as a backchannel: turn "
                             f"{step.after['turn']}, outputs {step.outputs}")
    elif wordless:
        _fail(drv, "P4", f"a {duration:.3f} s wordless segment (limit {limit}) was dropped")


def check_p5_awaited_verdict(drv: Driver, step: Step) -> None:
    """P5 (default profile): the detector's interruption verdict waits for the words only
    while they can come and the agent is held (an STT attached; not the agent silent under
    the user's speech: then the verdict stands); a detector's ``Interruption`` is reported
    in the verdict's own step or, once, when an awaited verdict stands; a backchannel phrase
    that overrules the verdict is dropped with no ``Interruption``."""
    if drv.profile != "default":
        return
    before, after = step.before["utterance_verdict"], step.after["utterance_verdict"]
    if after == "awaiting_words" and not drv.engine.closed:
        if step.after["stt_input"] != "attached":
            _fail(drv, "P5", "a verdict awaits words with no STT attached")
        if step.after["user_speech"] == "speaking" and step.after["agent_speech"] == "silent":
            _fail(drv, "P5", "a verdict awaits words while the agent is silent under the "
                             "user's speech")
    detector = [o for o in step.outputs if isinstance(o, out.Interruption)
                and o.record is not None and o.record.source == "detector"]
    verdict = isinstance(step.inp, ev.OverlapVerdict) and step.inp.is_interruption
    if detector and not verdict and before != "awaiting_words":
        _fail(drv, "P5", f"a detector's interruption with no verdict to report: {detector}")
    if detector and before == "awaiting_words" and not verdict and after != "interruption":
        _fail(drv, "P5", "an awaited verdict reported without standing")
    overruled = [o for o in step.outputs if isinstance(o, out.TranscriptDropped)
                 and o.record is not None and "overrules" in o.record.detail]
    if overruled and (before != "awaiting_words" or detector):
        _fail(drv, "P5", f"a backchannel overruled no awaited verdict: {overruled}")


STEP_CHECKS: list[Callable[[Driver, Step], None]] = [
    check_p1_no_decision_before_a_due_final,
    check_p5_awaited_verdict,
    check_p3_backchannel_leaves_no_turn,
    check_p4_wordless_backchannel_is_dropped,
    check_i1_no_auto_eou_while_speaking,
    check_i2_single_decision,
    check_i3_transcript_conservation,
    check_i4_no_duplication,
    check_i5_provider_order,
    check_i6_bounded_hold,
    check_i7_metrics_well_formed,
    check_i8_deadline,
    check_i9_authority_bound,
    check_i9_stt_utterance_is_decided,
    check_i10_skip_reply_sticky,
    check_i11_clear_is_total,
    check_i12_nonempty_deliveries,
    check_i14_boundary_implies_agent_speech,
    check_i15_detector_marker_grammar,
    check_i16_turn_limit_accounting,
    check_i17_language,
    check_i18_commit_results_settle,
    check_i18_dropped_decision_settles_its_commit,
    check_i19_mode_switch_hygiene,
    check_i20_quiet_after_close,
    check_i21_preemptive_notifications,
    check_i22_no_release_pending,
]


# ===== generators ================================================================================

# Imported late so that the driver above stays usable without hypothesis.
from hypothesis import strategies as st  # noqa: E402

AT_DEADLINE = -1.0  # a dt sentinel: the input lands exactly on the next due timer

# Mostly sampled_from: one choice per field keeps hypothesis' drawing cheap (it dominates the
# run time) while the lists cover zeros, ties, tiny and large gaps and odd values.
DT = st.sampled_from([0.0, 0.0, 0.001, 0.02, 0.1, 0.25, 0.3, 0.5, 0.5, 0.7, 1.0, 1.37, 2.0,
                      3.0, 4.0, 5.5, AT_DEADLINE, AT_DEADLINE])
_WORDS = ["a", "b c", "hello", "yes please", "mm-hmm", "stop", "ok.", "你好", "what about Friday",
          "é", "Hello!", "a b", "b", ".", "ab ba", "una mesa para", "S M", "4719.",
          "eins zwei drei", "john dot smith", "at example", "dot com", "le quatorze",
          "March 3, 1985", "Hold on.", "4111 2222", "four seven", "one two three four"]
TEXT = st.sampled_from(["", "", *_WORDS, " ", "a ", " b"])  # whitespace counts as empty
LANGUAGE = st.sampled_from(["", "en", "fr", "multi", "auto", "de-DE", "es", "nl"])
CONFIDENCE = st.sampled_from([0.0, 0.5, 0.93, 1.0])
STT_TIMES = st.sampled_from([(0.0, 0.0), (0.0, 0.0), (0.1, 0.5), (0.0, 1.2), (1.0, 0.5),
                             (2.5, 3.1), (6.0, 9.0), (0.0, 20.0)])
SMALL = st.sampled_from([0.0, 0.01, 0.02, 0.1, 0.3, 0.6, 1.5])
MAYBE_OFFSET = st.sampled_from([None, None, -3.0, -0.5, -0.01, 0.0, 0.4])
#: what the agent says (mostly untold; some ask for a number of digits)
AGENT_TEXTS = st.sampled_from([None, None, "Please say your four digit PIN.",
                               "Quel est votre code à deux chiffres ?", "Hello."])


@st.composite
def endpointing_changes(draw: Any) -> dict[str, Any]:
    keys = draw(st.sets(st.sampled_from(["mode", "min_delay", "max_delay", "alpha"]),
                        min_size=1))
    vals = {"mode": st.sampled_from(["fixed", "dynamic"]),
            "min_delay": st.sampled_from([0.0, 0.2, 0.5, 1.0]),
            "max_delay": st.sampled_from([0.0, 0.5, 1.0, 3.0]),
            "alpha": st.sampled_from([0.5, 0.9, 1.0])}
    return {k: draw(vals[k]) for k in sorted(keys)}


TURN_DETECTION = st.sampled_from(["vad", "stt", "manual", "realtime_llm", "model", None])
LIMITS = st.fixed_dictionaries({}, optional={
    "max_words": st.sampled_from([None, 0, 1, 2, 3, 5]),
    "max_duration": st.sampled_from([None, 0.0, 1.0, 2.5, 5.0])})


@st.composite
def engine_options(draw: Any, detection: bool | None = None) -> EngineOptions:
    """Random options; ``detection=True`` forces adaptive detection on (VAD and STT too)."""
    from turnfsm import EndpointingOptions

    ep = draw(endpointing_changes())
    boundary = draw(st.one_of(st.none(), st.just(()), st.sampled_from([0.0, 0.5, 1.0]),
                              st.tuples(st.sampled_from([0.0, 0.3, 1.0, 2.0]),
                                        st.sampled_from([0.0, 0.5, 1.0, 3.5]))))
    return EngineOptions(
        turn_detection=draw(TURN_DETECTION),
        endpointing=EndpointingOptions().merged(ep),
        backchannel_boundary=boundary,
        user_turn_limit=UserTurnLimit.from_mapping(draw(LIMITS)),
        vad=True if detection else draw(st.sampled_from([True, True, True, False])),
        stt=True if detection else draw(st.sampled_from([True, True, True, False])),
        interruption_detection=detection if detection is not None else draw(st.booleans()),
        speech_feedback=draw(st.sampled_from([True, True, False])),
        backchannel_max_duration=draw(st.sampled_from([1.0, 1.0, 0.0, 0.5, 3.0])),
    )


MODEL_ANSWER = st.builds(
    ModelAnswer,
    latency=st.sampled_from([0.0, 0.0, 0.05, 0.3, 1.0, 4.0]),
    supported=st.sampled_from([True, True, True, False]),
    probability=st.sampled_from([None, 0.0, 0.05, 0.5, 1.0]),
    threshold=st.sampled_from([None, 0.1, 0.5]),
    failed=st.sampled_from([False, False, False, True]),
    stale_echo=st.sampled_from([False, False, True]))

HOST_SCRIPT = st.builds(
    HostScript,
    accept=st.lists(st.sampled_from([True, True, False]), min_size=1, max_size=4).map(tuple),
    model=st.lists(MODEL_ANSWER, min_size=1, max_size=4).map(tuple),
    interruption_feedback=st.booleans())


def at(drv: Driver, dt: float) -> float:
    """The time of the next input: ``dt`` after the driver's clock, or on the next timer."""
    if dt == AT_DEADLINE:
        nd = drv.next_due()
        return drv.clock if nd is None else max(drv.clock, nd[0])
    return drv.clock + dt


# ===== every state x event pair ==================================================================


class CheckedEngine(Engine):
    """An engine that records every event a region neither handled nor declared ignored.

    It observes the engine's own dispatch (``observe_dispatch``) and notes (region, state,
    event) when the region has no transition for the event in its state and the chart does
    not list it as ignored, or when it has transitions but none of their guards held.
    """

    def __init__(self, *a: Any, **k: Any) -> None:
        self.fallthrough: list[tuple[str, str, str]] = []
        self.seen_pairs: set[tuple[str, str, str]] = set()
        super().__init__(*a, **k)
        self.observe_dispatch(self._observe)

    def _observe(self, region: str, state: str, event: str, fired: bool) -> None:
        self.seen_pairs.add((region, state, event))
        if not fired and (region, state, event) not in self.chart.ignored:
            self.fallthrough.append((region, state, event))


def input_catalogue(t: float, ref: int, rid: int) -> list[ev.Input]:
    """One valid input of every kind (and both values of the attach/detach switches)."""
    return [
        ev.AudioPushed(t=t, ref=ref, duration=0.02), ev.VadStartOfSpeech(t=t, ref=ref),
        ev.VadInferenceDone(t=t, ref=ref, raw_accumulated_speech=0.2),
        ev.VadInferenceDone(t=t, ref=ref), ev.VadEndOfSpeech(t=t, ref=ref),
        ev.SttStartOfSpeech(t=t, ref=ref), ev.SttEndOfSpeech(t=t, ref=ref),
        ev.SttInterim(t=t, ref=ref, text="x"), ev.SttPreflight(t=t, ref=ref, text="x"),
        ev.SttFinal(t=t, ref=ref, text="x", language="en"), ev.SttFinal(t=t, ref=ref, text=""),
        ev.SttUsage(t=t, ref=ref, request_id="u"),
        ev.OverlapVerdict(t=t, ref=ref, is_interruption=True),
        ev.OverlapVerdict(t=t, ref=ref, is_interruption=False),
        ev.DetectorFailed(t=t, ref=ref), ev.AgentSpeechStarted(t=t, ref=ref),
        ev.AgentSpeechEnded(t=t, ref=ref), ev.UserSpeechStarted(t=t, ref=ref),
        ev.UserSpeechEnded(t=t, ref=ref, interruption=False),
        ev.OverlapSpeechEnded(t=t, ref=ref), ev.CommitUserTurn(t=t, ref=ref),
        ev.ClearUserTurn(t=t, ref=ref),
        ev.UpdateOptions(t=t, ref=ref, endpointing={"min_delay": 0.2}),
        *(ev.UpdateOptions(t=t, ref=ref, set_turn_detection=True, turn_detection=m)
          for m in ("vad", "stt", "manual", "realtime_llm", "model", None)),
        ev.UpdateOptions(t=t, ref=ref, user_turn_limit={"max_words": 1}),
        *(cls(t=t, ref=ref, enabled=b) for cls in (ev.SetVad, ev.SetStt,
                                                    ev.SetInterruptionDetection)
          for b in (True, False)),
        ev.EouModelAnswered(t=t, ref=ref, request_id=rid, probability=0.0, threshold=0.5),
        ev.EndOfTurnAnswered(t=t, ref=ref, accepted=True), ev.Close(t=t, ref=ref),
    ]


def fingerprint(engine: Engine) -> str:
    """Everything observable about an engine's state (plus its clock and pending wait)."""
    e, cx = engine, engine.cx
    nt = e.next_timer()
    return repr((e.state(), cx.turn.transcript, cx.turn.interim, cx.turn.preflight, cx.held,
                 cx.turn.finals, cx.last_language, cx.tracker.words, cx.tracker.transcript,
                 cx.speech_start_time, cx.last_speaking_time, cx.onset_floor,
                 cx.turn.user_turn_start,
                 cx.turn.span_open, e.awaiting_answer, None if nt is None else nt.deadline,
                 e.now, e.input_clock, probe_wait(e), cx.turn.request_ids, probe_live_timers(e),
                 e.current_transcript))
