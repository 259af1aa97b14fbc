"""LiveKit pieces the adapter uses (:mod:`turnfsm.adapters.livekit`): the session's hooks,
the VAD that tells turnfsm every event, the mapping of LiveKit's STT events, the turn
detector, the log filter for the empty commit at close."""

from __future__ import annotations

import asyncio
import itertools
import logging
import weakref
from collections.abc import Awaitable, Callable
from typing import Any, Protocol

from livekit import rtc
from livekit.agents import llm, stt
from livekit.agents import vad as lk_vad
from livekit.agents.language import LanguageCode

from .. import events as ev
from .. import outputs as out
from ..runtime import RuleBasedModel, Session, TurnContext
from ..runtime.protocols import EouModel

log = logging.getLogger("turnfsm.adapters.livekit")


class TurnTaking(Protocol):
    """What these helpers use of :class:`turnfsm.adapters.livekit.TurnfsmTurnTaking` (the
    adapter they serve; named here so that this module does not import it back)."""

    fsm: Session
    _vad_failed: bool

    def _safe(self, fn: Callable[..., Any], *args: Any, **kw: Any) -> None: ...

    def _on_vad(self, e: lk_vad.VADEvent) -> None: ...

    def _on_output(self, o: out.Output) -> None: ...

    def _on_end_of_turn(self, o: out.EndOfTurn) -> bool | Awaitable[bool]: ...

    def _on_interruption(self, o: out.Interruption) -> None: ...


TRANSCRIPTS = (stt.SpeechEventType.INTERIM_TRANSCRIPT, stt.SpeechEventType.PREFLIGHT_TRANSCRIPT,
               stt.SpeechEventType.FINAL_TRANSCRIPT)


class _EmptyCloseCommit(logging.Filter):
    """Drops LiveKit's warning about an empty user turn skipped at close: in manual mode,
    ``AgentSession.aclose()`` commits the user turn after pausing speech scheduling, and
    with nothing to commit (turnfsm committed every turn) that warns on every close."""

    def filter(self, record: logging.LogRecord) -> bool:
        return not (record.getMessage() == "skipping user input, speech scheduling is paused"
                    and not getattr(record, "lk.pii.user_input", None))


CLOSE_FILTER = _EmptyCloseCommit()


class AdapterHooks:
    """What the turnfsm session calls: the adapter's own hooks, then the app's."""

    def __init__(self, owner: TurnTaking, app: object | None) -> None:
        self._owner = owner
        self._app = app

    def on_output(self, o: out.Output) -> object:
        self._owner._on_output(o)
        fn = getattr(self._app, "on_output", None)
        return None if fn is None else fn(o)

    def on_end_of_turn(self, o: out.EndOfTurn) -> bool | Awaitable[bool]:
        return self._owner._on_end_of_turn(o)

    def on_interruption(self, o: out.Interruption) -> object:
        self._owner._on_interruption(o)
        fn = getattr(self._app, "on_interruption", None)
        return None if fn is None else fn(o)

    def __getattr__(self, name: str) -> Any:
        if name.startswith("on_") and self._app is not None:
            return getattr(self._app, name)
        raise AttributeError(name)


def stt_input(e: stt.SpeechEvent, ref: int,
              session_time: Callable[[float], float]) -> ev.SttEvent | None:
    """The turnfsm input of one LiveKit STT event (None: none), ``session_time`` turning a
    wall-clock time into session time."""
    kind = e.type
    rid = e.request_id or ""
    if kind in TRANSCRIPTS:
        alt = e.alternatives[0] if e.alternatives else stt.SpeechData(
            language=LanguageCode(""), text="")
        cls = {stt.SpeechEventType.INTERIM_TRANSCRIPT: ev.SttInterim,
               stt.SpeechEventType.PREFLIGHT_TRANSCRIPT: ev.SttPreflight,
               stt.SpeechEventType.FINAL_TRANSCRIPT: ev.SttFinal}[kind]
        return cls(ref=ref, request_id=rid, text=alt.text, language=str(alt.language or ""),
                   confidence=alt.confidence, start_time=alt.start_time,
                   end_time=alt.end_time)
    if kind == stt.SpeechEventType.START_OF_SPEECH:
        onset = None if e.speech_start_time is None else session_time(e.speech_start_time)
        return ev.SttStartOfSpeech(ref=ref, request_id=rid, speech_start_time=onset)
    if kind == stt.SpeechEventType.END_OF_SPEECH:
        return ev.SttEndOfSpeech(ref=ref, request_id=rid)
    if kind == stt.SpeechEventType.RECOGNITION_USAGE:
        usage = e.recognition_usage
        return ev.SttUsage(ref=ref, request_id=rid,
                           audio_duration=usage.audio_duration if usage else 0.0)
    return None


def vad_input(e: lk_vad.VADEvent) -> ev.Input | None:
    """The turnfsm input of one LiveKit VAD event (None: none)."""
    kind = e.type
    if kind == lk_vad.VADEventType.START_OF_SPEECH:
        return ev.VadStartOfSpeech(speech_duration=e.speech_duration,
                                   inference_duration=e.inference_duration)
    if kind == lk_vad.VADEventType.INFERENCE_DONE:
        return ev.VadInferenceDone(
            raw_accumulated_speech=e.raw_accumulated_speech,
            raw_accumulated_silence=e.raw_accumulated_silence,
            speech_duration=e.speech_duration, probability=e.probability,
            speaking=e.speaking, inference_duration=e.inference_duration)
    if kind == lk_vad.VADEventType.END_OF_SPEECH:
        return ev.VadEndOfSpeech(silence_duration=e.silence_duration,
                                 inference_duration=e.inference_duration,
                                 speech_duration=e.speech_duration)
    return None


class TeeVAD(lk_vad.VAD):
    """A VAD whose streams tell turnfsm every event they give LiveKit."""

    def __init__(self, inner: lk_vad.VAD, taking: TurnTaking) -> None:
        super().__init__(capabilities=inner.capabilities)
        self.inner = inner
        self._taking = weakref.ref(taking)
        inner.on("metrics_collected", lambda m: self.emit("metrics_collected", m))

    @property
    def model(self) -> str:
        return self.inner.model

    @property
    def provider(self) -> str:
        return self.inner.provider

    def __getattr__(self, name: str) -> Any:  # min_silence_duration and the like
        if name.startswith("__") or name == "inner":
            raise AttributeError(name)
        return getattr(self.inner, name)

    def stream(self) -> Any:
        return TeeStream(self.inner.stream(), self._taking)


class TeeStream:
    """A VAD stream's events, each told to turnfsm before LiveKit sees it."""

    def __init__(self, inner: lk_vad.VADStream,
                 taking: weakref.ref[TurnTaking]) -> None:
        self.inner = inner
        self._taking = taking

    def push_frame(self, frame: rtc.AudioFrame) -> None:
        self.inner.push_frame(frame)

    def flush(self) -> None:
        self.inner.flush()

    def end_input(self) -> None:
        self.inner.end_input()

    async def aclose(self) -> None:
        await self.inner.aclose()

    def __aiter__(self) -> TeeStream:
        return self

    async def __anext__(self) -> lk_vad.VADEvent:
        try:
            e = await self.inner.__anext__()
        except StopAsyncIteration:
            raise
        except Exception:
            tt = self._taking()
            if tt is not None and not tt.fsm.closed:  # turnfsm goes on without a VAD
                log.exception("LiveKit's VAD stream failed; turnfsm goes on without a VAD")
                tt._vad_failed = True
                tt._safe(tt.fsm.set_vad, False)
            raise
        tt = self._taking()
        if tt is not None and tt._vad_failed:  # a new stream after a failed one
            tt._vad_failed = False
            tt._safe(tt.fsm.set_vad, True)
        if tt is not None:
            try:
                tt._on_vad(e)
            except Exception:
                log.exception("turnfsm failed on a VAD event; LiveKit goes on")
        return e


class TurnfsmTurnDetector:
    """turnfsm's end-of-turn model behind LiveKit's turn-detector protocol
    (``supports_language``, ``unlikely_threshold``, ``predict_end_of_turn(chat_ctx)``): pass
    it as ``turn_handling={"turn_detection": TurnfsmTurnDetector()}``.

    It judges the user's latest turn (the trailing user messages of the chat context). LiveKit
    gives the language to ``supports_language`` just before each prediction, not to the
    prediction itself: the last language asked about is used, else ``language``.
    """

    def __init__(self, model: EouModel | None = None, *, language: str | None = None) -> None:
        self.eou_model: EouModel = model if model is not None else RuleBasedModel()
        self.language = language
        self._asked: str | None = None
        self._requests = itertools.count(1)

    @property
    def model(self) -> str:
        """The model's name, for LiveKit's metrics."""
        return type(self.eou_model).__name__

    @property
    def provider(self) -> str:
        """The provider's name, for LiveKit's metrics."""
        return "turnfsm"

    async def supports_language(self, language: LanguageCode | None) -> bool:
        """Whether the model judges this language."""
        lang = str(language) if language else None
        self._asked = lang
        return bool(await self.eou_model.supports_language(lang or self.language))

    async def unlikely_threshold(self, language: LanguageCode | None) -> float | None:
        """Below this probability LiveKit waits its ``max_delay``."""
        lang = str(language) if language else self.language
        thr = await self.eou_model.unlikely_threshold(lang)
        return None if thr is None else float(thr)

    async def predict_end_of_turn(self, chat_ctx: llm.ChatContext, *,
                                  timeout: float | None = None) -> float:
        """The probability that the user finished, from the user's latest turn."""
        lang = self._asked or self.language
        ctx = TurnContext(transcript=user_turn_text(chat_ctx), language=lang,
                          request_id=next(self._requests))
        return float(await self.eou_model.predict_end_of_turn(ctx, timeout=timeout))


def user_turn_text(chat_ctx: llm.ChatContext) -> str:
    """The text of the trailing user messages of a chat context (the turn being judged)."""
    parts: list[str] = []
    for item in reversed(chat_ctx.items):
        if item.type != "message" or item.role != "user":
            break
        if item.text_content:
            parts.append(item.text_content)
    return " ".join(reversed(parts)).strip()


def retrieve(fut: asyncio.Future[Any]) -> None:
    if not fut.cancelled():
        fut.exception()  # a commit nobody awaits raises no "never retrieved" noise
