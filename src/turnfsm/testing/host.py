"""A virtual-time host: drives one engine through the host scheduler, answers its requests
from a script, and keeps every output. Nothing sleeps; time is what the inputs say.

    host = VirtualHost(Engine())
    host.at(1.0, ev.VadStartOfSpeech(t=1.0))
    host.at(1.3, ev.SttFinal(t=1.3, text="hi"))
    host.at(2.0, ev.VadEndOfSpeech(t=2.0))
    host.at(5.0)                              # let time pass: timers fire, answers arrive
    [eot] = host.of(outputs.EndOfTurn)
"""

from __future__ import annotations

from typing import Any, TypeVar

import attrs

from .. import events as ev
from .. import outputs as out
from ..core import Engine
from ..host import Scheduler

OutputT = TypeVar("OutputT", bound=out.Output)


@attrs.frozen(kw_only=True)
class ScriptedAnswers:
    """How the host answers: end-of-turn acceptance, the model's verdict and latency, and
    whether an interruption stops the agent (the host's usual reaction)."""

    accept: bool = True
    probability: float | None = 1.0
    threshold: float | None = None
    model_fails: bool = False
    model_supported: bool = True
    model_latency: float = 0.0
    interruption_stops_agent: bool = False


class VirtualHost:
    """Feeds an engine in virtual time, answers its requests, and keeps every output."""

    def __init__(self, engine: Engine, answers: ScriptedAnswers | None = None) -> None:
        self.engine = engine
        self.answers = answers or ScriptedAnswers()
        self.outputs: list[out.Output] = []
        # items: (model request id, when its answer is due)
        self.scheduler: Scheduler[tuple[int, float]] = Scheduler(engine)

    def at(self, t: float, e: ev.Input | None = None) -> VirtualHost:
        """Let time pass to ``t`` (timers and answers due fire), then apply ``e``."""
        self.scheduler.run_until(t, self._take, self._answer_model)
        self._take(self.engine.advance(t))
        if e is not None:
            self._take(self.engine.handle(e))
        return self

    def of(self, kind: type[OutputT]) -> list[OutputT]:
        """Every output of this kind, in order."""
        return [o for o in self.outputs if isinstance(o, kind)]

    def _take(self, outs: list[out.Output]) -> None:
        a = self.answers
        for o in outs:
            self.outputs.append(o)
            if isinstance(o, out.EndOfTurn):
                self._take(self.engine.handle(ev.EndOfTurnAnswered(t=o.t, accepted=a.accept)))
            elif isinstance(o, out.EouModelRequest):
                if a.model_latency > 0:
                    due = round(o.t + a.model_latency, 6)
                    self.scheduler.call_at(due, (o.request_id, due))
                else:
                    self._answer_model((o.request_id, o.t))
            elif isinstance(o, out.Interruption) and a.interruption_stops_agent:
                until = o.detected_at if o.overlap_started_at is None else o.overlap_started_at
                self._take(self.engine.handle(
                    ev.AgentSpeechEnded(t=o.t, ignore_user_transcript_until=until)))

    def _answer_model(self, item: tuple[int, float]) -> None:
        request_id, due = item
        e = self.engine
        if not e.model_request_pending(request_id):
            return  # the wait it was for is gone
        a = self.answers
        answer: Any = ev.EouModelAnswered(
            t=max(due, e.input_clock), request_id=request_id, supported=a.model_supported,
            probability=a.probability, threshold=a.threshold, failed=a.model_fails)
        self._take(e.handle(answer))
