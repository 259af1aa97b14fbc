"""Fault injection for a :class:`~turnfsm.runtime.Session`: collaborators that hang, raise,
are cancelled or answer garbage, observers and tracer providers that break, and a ledger
that accounts for every final transcript pushed.

Used by the fault-injection tests and the soak benchmark (``benchmarks/soak.py``), and by
anyone who wants to hold their own host to the same contract:

* **Conservation**: every final pushed (and accepted by :meth:`Session.push`) is delivered in
  an end of turn the host took, or reported dropped with a reason (``TranscriptDropped``,
  ``InputDropped``); :meth:`Ledger.lost` lists the rest, and must be empty.
* **Liveness**: after a fault, the session keeps deciding turns.

Every fault acts on the first ``times`` calls of its method, then the collaborator behaves.
"""

from __future__ import annotations

import asyncio
import math
from collections.abc import Mapping
from typing import Any

from .. import events as ev
from .. import outputs as out
from ..core import StepRecord

#: Faults of an end-of-turn model method (``supports_language``, ``predict_end_of_turn``,
#: ``unlikely_threshold``): what the call does instead of answering.
MODEL_FAULTS = ("hang", "slow", "raise", "cancel", "sync-raise", "sync-cancel", "nan", "inf",
                "-inf", "negative", "above-one", "text", "none", "bool", "huge-int")
#: Faults of ``on_end_of_turn``.
HOOK_FAULTS = ("hang", "slow", "raise", "async-raise", "cancel", "bad-bool", "async-bad-bool",
               "hang-ignoring-cancel")
_BAD: dict[str, Any] = {"nan": math.nan, "inf": math.inf, "-inf": -math.inf,
                        "negative": -0.25, "above-one": 1.5, "text": "0.9", "none": None,
                        "bool": True, "huge-int": 10**400}


class BadBool:
    """An answer whose truth cannot be read."""

    def __bool__(self) -> bool:
        raise RuntimeError("no truth value")


async def _forever() -> None:
    await asyncio.Event().wait()


async def _forever_ignoring_cancel() -> None:
    for _ in range(3):  # swallows a few cancellations, then gives up
        try:
            await asyncio.Event().wait()
        except asyncio.CancelledError:
            continue


class FaultyModel:
    """An end-of-turn model whose methods fail as told (``faults``: method -> fault) for
    their first ``times`` calls; otherwise it answers ``probability`` (and ``threshold``)."""

    def __init__(self, faults: Mapping[str, str] | None = None, *, times: int = 1,
                 probability: float = 0.9, threshold: float | None = 0.5,
                 slow: float = 30.0) -> None:
        self.faults = dict(faults or {})
        self.times = times
        self.probability = probability
        self.threshold = threshold
        self.slow = slow
        self.calls: dict[str, int] = {}

    def _fault(self, method: str) -> str | None:
        n = self.calls[method] = self.calls.get(method, 0) + 1
        f = self.faults.get(method)
        return f if f is not None and n <= self.times else None

    def _answer(self, method: str, good: Any) -> Any:
        f = self._fault(method)
        if f == "sync-raise":
            raise RuntimeError(f"{method} failed (injected)")
        if f == "sync-cancel":
            raise asyncio.CancelledError()
        return self._later(method, f, good)

    async def _later(self, method: str, f: str | None, good: Any) -> Any:
        await asyncio.sleep(0)
        if f is None:
            return good
        if f == "hang":
            await _forever()
        if f == "slow":
            await asyncio.sleep(self.slow)
            return good
        if f == "raise":
            raise RuntimeError(f"{method} failed (injected)")
        if f == "cancel":
            raise asyncio.CancelledError()
        return _BAD[f]

    def supports_language(self, language: str | None) -> Any:
        """Whether the language is supported (True), or the fault."""
        return self._answer("supports_language", True)

    def predict_end_of_turn(self, context: Any, *, timeout: float | None = None) -> Any:
        """The probability, or the fault."""
        return self._answer("predict_end_of_turn", self.probability)

    def unlikely_threshold(self, language: str | None) -> Any:
        """The threshold, or the fault."""
        return self._answer("unlikely_threshold", self.threshold)


class FaultyHooks:
    """Hooks whose ``on_end_of_turn`` fails as told for its first ``times`` calls (then takes
    the turn); ``all_hooks`` makes every other hook raise too."""

    def __init__(self, fault: str | None = None, *, times: int = 1, slow: float = 30.0,
                 all_hooks: bool = False) -> None:
        self.fault = fault
        self.times = times
        self.slow = slow
        self.all_hooks = all_hooks
        self.calls = 0
        self.end_of_turns: list[out.EndOfTurn] = []

    def on_end_of_turn(self, o: out.EndOfTurn) -> Any:
        """Take the turn, or fail as told."""
        self.calls += 1
        self.end_of_turns.append(o)
        f = self.fault if self.calls <= self.times else None
        if f is None:
            return True
        if f == "raise":
            raise RuntimeError("on_end_of_turn failed (injected)")
        if f == "bad-bool":
            return BadBool()
        return self._later(f)

    async def _later(self, f: str) -> Any:
        await asyncio.sleep(0)
        if f == "hang":
            await _forever()
        if f == "hang-ignoring-cancel":
            await _forever_ignoring_cancel()
        if f == "slow":
            await asyncio.sleep(self.slow)
            return True
        if f == "async-raise":
            raise RuntimeError("on_end_of_turn failed (injected)")
        if f == "cancel":
            raise asyncio.CancelledError()
        if f == "async-bad-bool":
            return BadBool()
        return True

    def _other(self, o: out.Output) -> None:
        if self.all_hooks:
            raise RuntimeError(f"hook failed on {type(o).__name__} (injected)")

    on_output = on_interruption = on_transcript = on_start_of_speech = _other
    on_end_of_speech = on_transcript_dropped = on_preemptive_generation = _other
    on_commit_result = on_input_dropped = _other


class RaisingObserver:
    """A step observer that raises on every step (or on steps of the given kinds:
    ``input``, ``timer``, ``answer``)."""

    def __init__(self, kinds: tuple[str, ...] = ("input", "timer", "answer")) -> None:
        self.kinds = kinds
        self.calls = 0

    def __call__(self, r: StepRecord) -> None:
        self.calls += 1
        kind = "timer" if r.timer is not None else (
            "answer" if isinstance(r.input, ev.EndOfTurnAnswered | ev.EouModelAnswered)
            else "input")
        if kind in self.kinds:
            raise RuntimeError(f"observer failed on a {kind} step (injected)")


class _BrokenSpan:
    def __init__(self, where: str) -> None:
        self.where = where

    def __getattr__(self, name: str) -> Any:
        if name == self.where or self.where == "span":
            raise RuntimeError(f"span.{name} failed (injected)")
        return lambda *a, **k: None


class _BrokenTracer:
    def __init__(self, where: str) -> None:
        self.where = where

    def start_span(self, *a: Any, **k: Any) -> Any:
        if self.where == "start_span":
            raise RuntimeError("start_span failed (injected)")
        return _BrokenSpan(self.where)


class BrokenTracerProvider:
    """An OpenTelemetry tracer provider that fails at ``where``: ``get_tracer``,
    ``start_span``, a span's ``end`` or ``set_attribute``, or every ``span`` method."""

    def __init__(self, where: str = "start_span") -> None:
        self.where = where

    def get_tracer(self, *a: Any, **k: Any) -> Any:
        """A tracer (or the fault)."""
        if self.where == "get_tracer":
            raise RuntimeError("get_tracer failed (injected)")
        return _BrokenTracer(self.where)


class Ledger:
    """A step observer that accounts for every final pushed through :meth:`final`:
    delivered (in an end of turn the host took), dropped (with its reason), or lost."""

    def __init__(self) -> None:
        self.pushed: list[str] = []
        self.delivered: set[str] = set()
        self.dropped: dict[str, str] = {}
        self.turns = 0  # end of turns decided
        self.taken = 0  # ... and taken by the host
        self._asked: out.EndOfTurn | None = None

    def final(self, push: Any, text: str, **fields: Any) -> bool:
        """Push a final ``text`` (one token, unique in the session) with ``push``; whether
        the session accepted it (a closed session refuses: not counted)."""
        try:
            push(ev.SttFinal(text=text, ref=("final", text), **fields))
        except Exception:
            return False
        self.pushed.append(text)
        return True

    def __call__(self, r: StepRecord) -> None:
        e = r.input
        if isinstance(e, ev.EndOfTurnAnswered) and self._asked is not None:
            if e.accepted:
                self.taken += 1
                self.delivered.update(self._asked.new_transcript.split())
            self._asked = None
        for o in r.outputs:
            if isinstance(o, out.EndOfTurn):
                self.turns += 1
                self._asked = o
            elif isinstance(o, out.TranscriptDropped):
                for w in o.text.split():
                    self.dropped.setdefault(w, o.reason)
            elif isinstance(o, out.InputDropped) and isinstance(o.ref, tuple) and \
                    len(o.ref) == 2 and o.ref[0] == "final":
                self.dropped.setdefault(str(o.ref[1]), o.reason)

    def lost(self) -> list[str]:
        """Finals pushed that were neither delivered nor reported dropped."""
        return [t for t in self.pushed if t not in self.delivered and t not in self.dropped]

    def drop_reasons(self) -> dict[str, int]:
        """How many pushed finals were dropped, by reason (not those also delivered)."""
        counts: dict[str, int] = {}
        for t in self.pushed:
            if t not in self.delivered and t in self.dropped:
                counts[self.dropped[t]] = counts.get(self.dropped[t], 0) + 1
        return counts
