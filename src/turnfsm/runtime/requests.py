"""The end-of-turn model, asked on the engine's behalf (a session's requests), and the
bounded, isolated call every collaborator of a session goes through.

Every model call (``supports_language``, ``predict_end_of_turn``, ``unlikely_threshold``)
shares one deadline, the session's ``model_timeout``; each answer is validated. A call that
times out, raises (``CancelledError`` included, unless the session itself cancelled the
request), or answers something invalid (a non-bool language check, a probability or
threshold that is not a finite number in [0, 1]) is a model failure: the engine is told
``failed`` and waits ``min_delay`` (D20). Exactly one answer is given for every request that
is still pending, so a turn never stays in ``predicting``.
"""

from __future__ import annotations

import asyncio
import inspect
import logging
import math
import numbers
from collections.abc import Awaitable, Callable
from typing import Any, Protocol

from .. import events as ev
from .. import outputs as out
from ..core import Engine
from .protocols import EouModel, TurnContext


class Session(Protocol):
    """What asking the model needs of a session."""

    model: EouModel
    engine: Engine
    model_timeout: float
    session_id: str

    @property
    def closed(self) -> bool:
        """The session is closed."""

    def now(self) -> float:
        """Session time."""

    def feed_answer(self, a: ev.EouModelAnswered) -> None:
        """Give the engine a model's answer."""

log = logging.getLogger("turnfsm.runtime")


class CallTimedOut(Exception):
    """A collaborator's call did not answer within its bound."""


class InvalidAnswer(ValueError):
    """A collaborator answered something that is not a valid answer."""


async def maybe_await(v: Any) -> Any:
    """``v``, awaited if it is awaitable (protocol methods may be plain or async)."""
    return await v if inspect.isawaitable(v) else v


async def bounded(fn: Callable[..., Any], *args: Any, within: float,
                  keep: set[asyncio.Task[Any]] | None = None, **kw: Any) -> Any:
    """Call ``fn(*args, **kw)`` (plain or async) and return its answer within ``within``
    seconds. The awaitable runs as its own task, so one that ignores its cancellation
    cannot hold the caller: it is cancelled and left behind (:class:`CallTimedOut`). A
    ``CancelledError`` raised by the callee (not by cancelling the caller) is an error of
    the callee (RuntimeError). A plain function runs inline: it cannot be interrupted.
    A call cancelled at its timeout that is still running joins ``keep`` (a session's
    tasks, cancelled again at close) until it ends."""
    try:
        r = fn(*args, **kw)
    except asyncio.CancelledError:  # a plain function cannot be cancelled: its own error
        raise RuntimeError("the call raised CancelledError") from None
    if not inspect.isawaitable(r):
        return r
    if within <= 0:
        _discard(r)
        raise CallTimedOut(f"no time left ({within:g} s)")
    task = asyncio.ensure_future(r)
    try:
        done, _ = await asyncio.wait({task}, timeout=within)
    except asyncio.CancelledError:
        task.cancel()
        raise
    if not done:
        task.cancel()
        task.add_done_callback(_retrieve)
        if keep is not None and not task.done():
            keep.add(task)
            task.add_done_callback(keep.discard)
        raise CallTimedOut(f"no answer within {within:g} s")
    try:
        return task.result()
    except asyncio.CancelledError:
        raise RuntimeError("the call raised CancelledError") from None


def _discard(aw: Awaitable[Any]) -> None:
    if inspect.iscoroutine(aw):
        aw.close()


def _retrieve(task: asyncio.Future[Any]) -> None:
    if not task.cancelled():
        task.exception()


def probability(v: Any, what: str) -> float:
    """``v`` as a probability: a finite real number in [0, 1] (InvalidAnswer otherwise)."""
    if isinstance(v, bool) or not isinstance(v, numbers.Real):
        raise InvalidAnswer(f"{what} must be a number in [0, 1], not {v!r}")
    try:
        p = float(v)
    except (TypeError, ValueError, OverflowError) as exc:
        raise InvalidAnswer(f"{what} must be a number in [0, 1], not {v!r}") from exc
    if not (math.isfinite(p) and 0.0 <= p <= 1.0):
        raise InvalidAnswer(f"{what} must be a number in [0, 1], not {v!r}")
    return p


def flag(v: Any, what: str) -> bool:
    """``v`` as a bool (True, False, or a NumPy bool; InvalidAnswer otherwise)."""
    if v is True or v is False:
        return v
    if type(v).__name__ == "bool_":  # numpy.bool_
        return bool(v)
    raise InvalidAnswer(f"{what} must be True or False, not {v!r}")


def _failed(session: Session, exc: BaseException, method: str) -> None:
    """A model failure is an answer (min_delay, D20): a warning, the traceback at debug."""
    if isinstance(exc, CallTimedOut):
        log.warning("%s: the end-of-turn model timed out in %s after %s s (min_delay)",
                    session.session_id, method, session.model_timeout)
        return
    log.warning("%s: the end-of-turn model failed in %s: %r (min_delay)", session.session_id,
                method, exc)
    log.debug("%s: model failure", session.session_id, exc_info=exc)


async def ask_model(session: Session, req: out.EouModelRequest) -> None:
    """Ask the session's model: does it support the language, the probability, the
    threshold (all within the session's ``model_timeout``, each answer validated); answer
    the engine. A timeout, an error or an invalid answer is a failure; an answer for a wait
    that is gone is not given."""
    rid, lang = req.request_id, req.language
    model, engine = session.model, session.engine
    loop = asyncio.get_running_loop()
    deadline = loop.time() + session.model_timeout

    def pending() -> bool:
        return not session.closed and engine.model_request_pending(rid)

    def answer(**kw: Any) -> None:
        if pending():
            session.feed_answer(ev.EouModelAnswered(
                t=max(session.now(), engine.input_clock), request_id=rid, **kw))

    async def call(method: str, *args: Any, **kw: Any) -> Any:
        return await bounded(getattr(model, method), *args,
                             within=deadline - loop.time(),
                             keep=getattr(session, "_tasks", None), **kw)
    method = "supports_language"
    try:
        supported = flag(await call(method, lang), "supports_language()")
        if not supported:
            answer(supported=False)
            return
        method = "predict_end_of_turn"
        p = probability(await call(method, TurnContext(transcript=req.transcript,
                                                       language=lang, request_id=rid,
                                                       agent_text=req.agent_text,
                                                       word_confidences=req.word_confidences),
                                   timeout=session.model_timeout),
                        "predict_end_of_turn()")
        if not pending():
            return
        method = "unlikely_threshold"
        thr = await call(method, lang)
        if thr is not None:
            thr = probability(thr, "unlikely_threshold()")
    except Exception as exc:
        _failed(session, exc, method)
        answer(failed=True)
        return
    answer(probability=p, threshold=thr)
