"""The end-of-turn model, asked on the engine's behalf (a session's requests)."""

from __future__ import annotations

import asyncio
import inspect
import logging
import math
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


async def maybe_await(v: Any) -> Any:
    """``v``, awaited if it is awaitable (protocol methods may be plain or async)."""
    return await v if inspect.isawaitable(v) else v


def _failed(session: Session, exc: BaseException, method: str) -> None:
    """A model failure is an answer (min_delay, D20): a warning, the traceback at debug."""
    log.warning("%s: the end-of-turn model failed in %s: %r (min_delay)", session.session_id,
                method, exc)
    log.debug("%s: model failure", session.session_id, exc_info=exc)


async def ask_model(session: Session, req: out.EouModelRequest) -> None:
    """Ask the session's model: does it support the language, the probability (with the
    session's timeout), the threshold; answer the engine. A timeout or an error is a
    failure; an answer for a wait that is gone is not given."""
    rid, lang = req.request_id, req.language
    model, engine = session.model, session.engine

    def pending() -> bool:
        return not session.closed and engine.model_request_pending(rid)

    def answer(**kw: Any) -> None:
        if pending():
            session.feed_answer(ev.EouModelAnswered(
                t=max(session.now(), engine.input_clock), request_id=rid, **kw))
    try:
        supported = bool(await maybe_await(model.supports_language(lang)))
    except Exception as exc:
        _failed(session, exc, "supports_language")
        answer(failed=True)
        return
    if not supported:
        answer(supported=False)
        return
    try:
        async with asyncio.timeout(session.model_timeout):
            p = float(await maybe_await(model.predict_end_of_turn(
                TurnContext(transcript=req.transcript, language=lang, request_id=rid),
                timeout=session.model_timeout)))
        if not math.isfinite(p):
            raise ValueError(f"probability {p!r}")
    except TimeoutError:
        log.warning("%s: the end-of-turn model timed out after %s s", session.session_id,
                    session.model_timeout)
        answer(failed=True)
        return
    except Exception as exc:
        _failed(session, exc, "predict_end_of_turn")
        answer(failed=True)
        return
    if not pending():
        return
    try:
        thr = await maybe_await(model.unlikely_threshold(lang))
    except Exception as exc:
        _failed(session, exc, "unlikely_threshold")
        answer(failed=True)
        return
    answer(probability=p, threshold=None if thr is None else float(thr))
