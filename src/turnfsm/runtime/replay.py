"""Replaying a trace through a :class:`~turnfsm.runtime.Session` in virtual time.

The same trace, the same output lines as the direct replay (:mod:`turnfsm.replay`), but the
inputs go through the session's push methods, the header's scripted end-of-turn model sits
behind the model protocol (its latency is session time), and the host's answers are hooks.
``turnfsm replay --runtime asyncio`` runs it; a test holds it equal to the direct replay on
every trace.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from .. import events as ev
from .. import outputs as out
from ..chart import Chart
from ..core import StepObserver
from ..core.profiles import Profile
from ..errors import ConfigError, InputError, TraceError
from ..options import MAX_DURATION
from ..replay import Replay, Trace, dumps, read_trace
from ..replay.replay import ScriptedModel
from .protocols import TurnContext
from .session import Session
from .virtual import run_virtual


def live_answer(replay: Any, model_fn: Callable[[Any], float], request: Any,
                call: int) -> tuple[float, Exception | None]:
    """A live end-of-turn model's answer to call ``call`` of a replay, recorded for the trace
    it writes: ``(probability, None)``, or ``(0.0, the exception)`` when the model raised: a
    failed call, as the trace's ``fail_calls`` replays it (the engine decides as without a
    model; the run goes on)."""
    try:
        p = float(model_fn(request))
    except Exception as e:  # a collaborator's failure is the call's, never the run's
        replay.model_answers.append(0.0)
        replay.model_failed.append(call)
        return 0.0, e
    replay.model_answers.append(p)
    return p, None


def model_config(config: dict[str, Any], replay: Any,
                 threshold: float | None = None) -> dict[str, Any]:
    """``config`` (a trace header) with its scripted model replaced by what a replay's live
    model said: its answers in order, the calls it failed and (given) its threshold, so the
    trace replays the run byte for byte."""
    from ..replay.trace import TURN_DETECTOR_DEFAULTS
    detector = {**TURN_DETECTOR_DEFAULTS, **config["turn_detector"],
                "probabilities": list(replay.model_answers),
                "fail_calls": list(replay.model_failed)}
    if threshold is not None:
        detector["unlikely_threshold"] = threshold
    return {**config, "turn_detector": detector}


class _ScriptedModel:
    """The header's scripted model behind the model protocol; it writes the format's
    ``turn_detector`` lines as it is called."""

    def __init__(self, replay: RuntimeReplay, script: ScriptedModel) -> None:
        self.replay = replay
        self.script = script

    async def supports_language(self, language: str | None) -> bool:
        ok = self.script.supports(language)
        r = self.replay
        r.rec(r.session_now(), "turn_detector", method="supports_language", language=language,
              result=ok)
        return ok

    async def predict_end_of_turn(self, context: TurnContext, *,
                                  timeout: float | None = None) -> float:
        r = self.replay
        n, p, fail = self.script.predict()
        error = None
        if r.model_fn is not None:  # a live model: its answers are recorded for the trace
            p, error = live_answer(r, r.model_fn, context, n)
            fail = error is not None
        r.rec(r.session_now(), "turn_detector", method="predict_end_of_turn", call=n,
              transcript=context.transcript, result=None if fail else p)
        latency = float(self.script.opts["latency"])
        if latency > 0:
            assert r.session is not None
            due = round(r.session_now() + latency, 6)
            await r.session.sleep_until(due)
            r.now = max(r.now, due)
        if error is not None:  # the session isolates it (and says so)
            raise error
        if fail:
            raise RuntimeError("scripted model failure")
        return p

    async def unlikely_threshold(self, language: str | None) -> float | None:
        thr = self.script.threshold(language)
        r = self.replay
        r.rec(r.now, "turn_detector", method="unlikely_threshold", language=language,
              result=thr)
        return thr


class _Hooks:
    """The format's host behind the session's hooks."""

    def __init__(self, replay: RuntimeReplay) -> None:
        self.replay = replay

    def on_output(self, o: out.Output) -> None:
        if not isinstance(o, out.EouModelRequest):
            self.replay.record(o)

    def on_end_of_turn(self, o: out.EndOfTurn) -> bool:
        return self.replay.last_return

    def on_interruption(self, o: out.Interruption) -> None:
        until = self.replay.feedback_until(o)
        if until is not None:
            assert self.replay.session is not None
            self.replay.session.push(ev.AgentSpeechEnded(t=o.t,
                                                         ignore_user_transcript_until=until))


class RuntimeReplay(Replay):
    """One replay of a trace through a Session on a virtual-clock loop."""

    def __init__(self, trace: Trace, *, diagnostics: bool = False,
                 chart: Chart | None = None, observers: tuple[StepObserver, ...] = (),
                 profile: str | Profile | None = None) -> None:
        super().__init__(trace, diagnostics=diagnostics, chart=chart, profile=profile)
        self.session: Session | None = None
        self.observers = observers
        # a live end-of-turn model (what it is asked: a TurnContext) -> probability, in
        # place of the header's scripted answers; what it said is kept (``model_answers``)
        self.model_fn: Callable[[TurnContext], float] | None = None
        self.model_answers: list[float] = []
        self.model_failed: list[int] = []  # the calls it failed (the trace's fail_calls)

    def session_now(self) -> float:
        assert self.session is not None
        return self.session.engine.now

    def feed(self, e: ev.Input) -> None:
        assert self.session is not None
        self.session.push(e)

    def run(self) -> list[dict[str, Any]]:
        return run_virtual(self._run())

    async def _run(self) -> list[dict[str, Any]]:
        setup = self.setup()
        if setup is None:
            return self.lines
        opts, prof = setup
        session = self.session = Session(
            opts, profile=prof, chart=self.chart, hooks=_Hooks(self),
            model=_ScriptedModel(self, self.model),
            model_timeout=MAX_DURATION, telemetry=False, observers=self.observers)
        self.engine = session.engine
        try:
            assert isinstance(self.trace, Trace)
            inputs = self.trace.inputs
            for i in inputs:
                try:
                    await self._advance(i.t)
                    self.now = max(self.now, i.t)
                    self.apply(i)
                except (ConfigError, InputError) as exc:
                    raise TraceError(f"the engine refused this input: {exc}",
                                     path=self.trace.path, line=i.line) from None
                await session.settle()
            last_t = inputs[-1].t if inputs else 0.0
            limit = last_t + float(self.cfg["time_limit"])
            await self._advance(limit)
            if session.scheduler.next_deadline() is not None:
                self.rec(self.now, "error", source="harness",
                         message="virtual time limit reached")
            self.rec(self.now, "close")
            session.push(ev.Close(t=self.now))
            await session.settle()
            await self._advance(limit)  # a prediction in flight at close is still awaited
        finally:
            await session.aclose()
        return self.lines

    async def _advance(self, t: float) -> None:
        assert self.session is not None
        await self.session.advance_to(t, on_due=self._due)

    def _due(self, deadline: float) -> None:
        self.now = max(self.now, deadline)


def replay_runtime(trace: Trace, *, diagnostics: bool = False, chart: Chart | None = None,
                   profile: str | Profile | None = None) -> list[dict[str, Any]]:
    """Replay a parsed trace through a Session; return the output records."""
    return RuntimeReplay(trace, diagnostics=diagnostics, chart=chart, profile=profile).run()


def replay_runtime_file(path: str | Path, *, diagnostics: bool = False,
                        chart: Chart | None = None, profile: str | Profile | None = None) -> str:
    """Replay a trace file through a Session; return the output as JSON Lines text."""
    return replay_runtime_text(path, diagnostics=diagnostics, chart=chart, profile=profile)[0]


def replay_runtime_text(path: str | Path, *, diagnostics: bool = False,
                        chart: Chart | None = None, profile: str | Profile | None = None
                        ) -> tuple[str, str | None]:
    """The output as JSON Lines text, and why the engine refused the header (then the
    output is its error line), or None: as :func:`turnfsm.replay.replay.replay_stream`."""
    r = RuntimeReplay(read_trace(path), diagnostics=diagnostics, chart=chart, profile=profile)
    lines = r.run()
    return dumps(lines), r.refused
